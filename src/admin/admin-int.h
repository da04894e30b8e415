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

struct cx_admin {
  const struct cx_config *cfg;
  struct cx_store *store;
  struct cx_coord *coord;
  struct cx_http *http;
  char prefix[256]; /* coordination key prefix without a trailing '/' */
  int started;
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
};

/* Checks the request's `Authorization: Bearer <token>` and the role. On
 * failure it has already replied (401/1101 or 403/1102, or 503/1302 when
 * the store is down) and returns -1; on success fills who (may be NULL) and
 * returns 0. */
int cx__admin_auth(struct cx_admin *a, struct cx_http_req *req,
                   enum cx_role need, struct cx__admin_who *who);

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

#endif
