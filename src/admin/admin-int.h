/*
 * Internal to src/admin: the admin's state and the helpers every route file
 * shares. Route files: routes_job.c (jobs, placement, publication),
 * routes_user.c (login, users), routes_node.c (nodes, statistics, health,
 * metrics).
 */
#ifndef CX_ADMIN_INT_H
#define CX_ADMIN_INT_H

#include <jansson.h>
#include <pthread.h>

#include "admin/admin.h"
#include "http/http.h"

/* Auth cache (admin.c): SHA-256 of a bearer token -> who it is, for
 * server.auth_cache_ttl seconds. 4-way sets, oldest entry replaced. */
#define CX__AUTH_SETS 64
#define CX__AUTH_WAYS 4
struct cx__auth_entry {
  unsigned char hash[32];
  int64_t user_id;
  int role;
  int64_t expires; /* the token's expiry, unix s; 0 = never */
  cx_mono at;      /* when read from the store; 0 = empty */
  char username[128];
};

/* Alive nodes (alive.c): the uuids under <prefix>/node/, kept by a watch. */
struct cx__alive {
  pthread_mutex_t mu;
  struct cx_coord_watch *watch;
  int connected; /* the watch streams */
  int synced;    /* the set was read whole at least once (at revision rev) */
  int64_t rev;
  int64_t seen; /* the newest revision the set reflects */
  char **uuids; /* sorted, owned */
  size_t n, cap;
};

struct cx_admin {
  const struct cx_config *cfg;
  struct cx_store *store;
  struct cx_coord *coord;
  struct cx_http *http;
  char prefix[256]; /* coordination key prefix without a trailing '/' */
  int started;
  struct cx__cluster *cluster; /* cluster.c (election, failover, ...) */
  struct cx__alerts *alerts;   /* alerts.c (the leader's alert sender) */
  struct cx_notify *notify;    /* borrowed; NULL = no channel configured */
  pthread_mutex_t auth_mu;
  uint64_t auth_gen; /* bumped by every flush: fills begun before are dropped */
  struct cx__auth_entry auth[CX__AUTH_SETS][CX__AUTH_WAYS];
  struct cx__alive alive;
  /* /job/search totals (routes_job.c): bumped by every local job write. */
  pthread_mutex_t total_mu;
  uint64_t job_gen;
  struct cx__total_entry {
    char key[600];
    int64_t total;
    uint64_t gen;
    cx_mono at;
  } totals[16];
  unsigned totals_next;
};

/* Roles, ordered: a higher role may do what a lower one may. */
enum cx_role {
  CX_ROLE_NONE = 0,
  CX_ROLE_VIEWER = 1,
  CX_ROLE_OPERATOR = 2,
  CX_ROLE_ADMIN = 3,
};

/* Parses "viewer|operator|admin"; CX_ROLE_NONE for anything else. */
enum cx_role cx__admin_role_parse(const char *s);
const char *cx__admin_role_name(enum cx_role r);

/* Who made a request. */
struct cx__admin_who {
  int64_t user_id;
  enum cx_role role;
  char username[128];
  const char *token; /* the bearer token, inside the request's header */
};

/* Checks the request's `Authorization: Bearer <token>` and the role. On
 * failure it has already replied (401/1101 or 403/1102, or 503/1302 when
 * the store is down) and returns -1; on success fills who (may be NULL) and
 * returns 0. */
int cx__admin_auth(struct cx_admin *a, struct cx_http_req *req,
                   enum cx_role need, struct cx__admin_who *who);

/* Forgets every cached token (auth cache): call after /logout and after
 * any change to a user (delete, update, role, password), whatever its
 * outcome. Tokens of this admin are then re-read from the store at once;
 * another admin process's change shows within server.auth_cache_ttl. */
void cx__admin_auth_flush(struct cx_admin *a);

/* Alive nodes, kept from a watch on <prefix>/node/ (alive.c); with the
 * watch not streaming, both read the coordination service directly. */
int cx__admin_alive_start(struct cx_admin *a, char *err);
void cx__admin_alive_stop(struct cx_admin *a);
/* *alive = 1 when node uuid is registered. 0 or a coordination error. */
int cx__admin_node_alive(struct cx_admin *a, const char *uuid, int *alive,
                         char *err);
/* The newest coordination revision the alive set reflects (tests wait
 * for a node's deletion to be seen with it). */
int64_t cx__admin_alive_seen(struct cx_admin *a);
/* The alive uuids, sorted, into *out (free each and the array with
 * cx_free); 0 or a coordination error. */
int cx__admin_alive_list(struct cx_admin *a, char ***out, size_t *n, char *err);

/* Replies with the §4 error matching a store or coord failure code rc:
 * CX_ENOTFOUND 404/1201, CX_EEXISTS / CX_ECONFLICT 409/1202, CX_EUNAVAIL
 * (and anything unexpected from a backend) 503/1302. what names the object
 * ("job 7"), detail is the backend's message (may be NULL). */
void cx__admin_reply_backend_error(struct cx_http_req *req, int rc,
                                   const char *what, const char *detail);

/* Builds a coordination key "<prefix>/<fmt...>" into buf (len bytes).
 * Returns the key length, or 0 if it does not fit. */
size_t cx__admin_key(const struct cx_admin *a, char *buf, size_t len,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads an optional integer member of a JSON body within [min, max]:
 * returns 0 (absent: *out untouched) or 1 (set); on a wrong type or range
 * it replies 400/1001 naming the field and returns -1. */
int cx__admin_json_int(struct cx_http_req *req, const json_t *body,
                       const char *name, int64_t min, int64_t max,
                       int64_t *out);
/* Same for strings up to max_len bytes (no NUL bytes). */
int cx__admin_json_str(struct cx_http_req *req, const json_t *body,
                       const char *name, size_t max_len, const char **out);
/* Reads `page` and `page_size` (defaults 1 and 20, page_size capped at
 * 500) from a JSON body; -1 after replying on bad values. */
int cx__admin_paging(struct cx_http_req *req, const json_t *body, int *page,
                     int *page_size);
/* Replies {"list": list, "total": total, "page": page, "page_size": size};
 * takes ownership of list. */
void cx__admin_reply_page(struct cx_http_req *req, json_t *list, int64_t total,
                          int page, int page_size);

/* Replies 400/1001 naming the first member of body that is not in allowed
 * (a NULL-terminated list) and returns -1; 0 when all are known. */
int cx__admin_json_only(struct cx_http_req *req, const json_t *body,
                        const char *const *allowed);

/* One route of a route file: POST routes take a JSON object body
 * (CX_HTTP_F_JSON), others no body. ctx of the handler is the admin. */
struct cx__admin_route {
  const char *method, *path;
  cx_http_handler fn;
};
/* Registers n routes; 0 or cx_http_route's error. */
int cx__admin_register(struct cx_admin *a, const struct cx__admin_route *r,
                       size_t n);

/* Route registration, one per route file. Return 0 or a negative code. */
int cx__admin_routes_jobs(struct cx_admin *a);
int cx__admin_routes_users(struct cx_admin *a);
int cx__admin_routes_nodes(struct cx_admin *a);
int cx__admin_routes_notify(struct cx_admin *a);

#endif
