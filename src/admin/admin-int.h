/*
 * Internal to src/admin: the admin's state and the helpers every route file
 * shares. Route files: routes_job.c (jobs, placement, publication),
 * routes_run.c (one run and its attempts), routes_user.c (login, users),
 * routes_node.c (nodes, statistics, health, metrics).
 */
#ifndef CX_ADMIN_INT_H
#define CX_ADMIN_INT_H

#include <jansson.h>
#include <pthread.h>

#include "admin/admin.h"
#include "http/http.h"
#include "keys/keys.h"

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
  int64_t seen;  /* the newest revision the set reflects */
  char **uuids;  /* sorted, owned */
  char **labels; /* per uuid: its key's labels as "k=v,k=v", owned */
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
  struct cx_live_table *live;  /* borrowed; runs running in this process */
  struct {                     /* live_proxy.c */
    pthread_mutex_t mu;        /* n, stop */
    pthread_cond_t cv;
    int n;                         /* fetcher threads running */
    int stop;                      /* admin stopping: fetchers leave */
    struct cx_live_table *mirrors; /* copies of remote runs' output */
  } proxy;
  void (*metrics)(void *arg, struct cx_buf *b); /* optional extra metrics */
  void *metrics_arg;
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
/* cx__admin_node_alive, and the node's labels (from its key) into labels
 * (may be NULL; none when the node is not alive). */
int cx__admin_node_labels(struct cx_admin *a, const char *uuid, int *alive,
                          struct cx_labels *labels, char *err);
/* The alive uuids, sorted, into *out, and (labels not NULL) each one's
 * labels as "k=v,k=v" text in *labels (free each and the arrays with
 * cx_free); 0 or a coordination error. fresh: read the coordination
 * service now (the leader's failover must not act on a watch that lags);
 * else the watched set when it streams. */
int cx__admin_alive_list(struct cx_admin *a, int fresh, char ***out,
                         char ***labels, size_t *n, char *err);

/* ---- the audit log (audit.c) ------------------------------------------- */

/* Who makes a change, for its audit row (strings borrowed). NULL where the
 * job protocol takes one = a change by the system (the leader's
 * failover), not audited. */
struct cx__actor {
  int64_t user_id;      /* 0 = not known (a failed login) */
  const char *username; /* as authenticated, or as typed at /login */
  const char *addr;     /* the client's address */
};
/* The actor of an authenticated request. */
struct cx__actor cx__admin_actor(struct cx_http_req *req,
                                 const struct cx__admin_who *who);

/* Writes one audit row: who did kind ("job.add", "user.update",
 * "notify.settings", ...: 1..32 of a-z 0-9 . _) to target ("job 7"; may be
 * NULL) with the state before and after (borrowed, may be NULL; stored as
 * compact JSON in their viewer form: a job's secrets as cx_job_redact_json
 * hides them, and every member whose name contains password, secret,
 * token, webhook or authorization as "***", at any depth). *id (optional)
 * gets the row's id. 0, or the store's error (the caller must then not
 * make -- or must undo -- the change: no change without its row).
 *
 * To make the row part of a store change, write both inside one store
 * transaction on this thread (cx__admin_audit_commit writes the row and
 * commits, or rolls back when the change failed):
 *
 *   rc = cx_store_tx_begin(a->store, err);
 *   if (rc == 0) {
 *     rc = <the store write(s)>;
 *     rc = cx__admin_audit_commit(a, rc, &actor, "x.y", target, before,
 *                                 after, err);
 *   }
 *
 * A change that is not a store write (a coordination key, a file) writes
 * its row first and deletes it (cx_store_audit_delete) if the change then
 * fails. */
int cx__admin_audit(struct cx_admin *a, const struct cx__actor *who,
                    const char *kind, const char *target, const json_t *before,
                    const json_t *after, int64_t *id, char *err);
/* One-call form for a route: the actor from req and who. */
int cx__admin_audit_req(struct cx_admin *a, struct cx_http_req *req,
                        const struct cx__admin_who *who, const char *kind,
                        const char *target, const json_t *before,
                        const json_t *after, char *err);
/* Ends this thread's store transaction: commits when rc is 0, else rolls
 * back. Returns rc, or the commit's error. */
int cx__admin_audit_end(struct cx_admin *a, int rc, char *err);
/* rc == 0 (the change in this thread's transaction succeeded): writes its
 * row (as cx__admin_audit) and commits; else, or if that fails, rolls
 * back. Returns the first failure, or 0. */
int cx__admin_audit_commit(struct cx_admin *a, int rc,
                           const struct cx__actor *who, const char *kind,
                           const char *target, const json_t *before,
                           const json_t *after, char *err);
/* A job as an audit row's before/after (NULL on allocation failure). */
struct cx_job;
json_t *cx__admin_audit_job(const struct cx_job *j);

/* ---- the job write protocol (jobs.c; see its header) ------------------- */

struct cx_job;
struct cx_coord_op;

/* The striped lock that serialises one job's writes in this process. */
pthread_mutex_t *cx__jobs_lock(int64_t id);

/* Where auto jobs can go: the alive nodes (sorted) and their job counts. */
struct cx__placement {
  char **alive;
  struct cx_labels *labels; /* per alive node */
  size_t n;
  int64_t *jobs; /* per alive node (fresh only) */
  int cached;    /* counts from the process's cache (API placements) */
};
/* Reads the alive set and the job counts: fresh (the leader) reads both
 * now; else the watched set and the counts cache (at most 2 s old, kept
 * current by this process's placements). 0 or a backend error (*what:
 * "coordination" or "store"). Free with cx__jobs_placement_free. */
int cx__jobs_placement(struct cx_admin *a, int fresh, struct cx__placement *p,
                       const char **what, char *err);
/* The index of the node matching selector (a job's node_selector; NULL or
 * "" = any) with the fewest jobs, ties to the lowest uuid; -1 when none
 * is alive and matching. A cached placement counts the pick at once (a
 * fresh one leaves that to the caller: p->jobs[k]++ once the move is
 * made). */
long cx__jobs_pick(struct cx__placement *p, const char *selector);
/* Whether node uuid may run a job with selector: CX__FIT_DEAD (not
 * alive), CX__FIT_MISMATCH (alive, its labels do not match),
 * CX__FIT_DRAINED (alive, drained by /node/drain) or CX__FIT_OK into *fit.
 * 0 or a coordination error. */
enum { CX__FIT_DEAD, CX__FIT_MISMATCH, CX__FIT_DRAINED, CX__FIT_OK };
int cx__jobs_fit(struct cx_admin *a, const char *uuid, const char *selector,
                 int *fit, char *err);
int cx__jobs_placement_has(const struct cx__placement *p, const char *uuid);
void cx__jobs_placement_free(struct cx__placement *p);
/* The nodes a broadcast job with selector runs on now: alive, not
 * drained, matching; sorted (their shard order) into *out (free each and
 * the array with cx_free). 0 or a coordination error. */
int cx__jobs_bcast_nodes(struct cx_admin *a, const char *selector, char ***out,
                         size_t *n, char *err);
/* The drained nodes (keys <prefix>/drain/<uuid>, put by /node/drain),
 * sorted, into *out (free each and the array with cx_free). Placement
 * leaves them out; the leader moves their auto jobs away. 0 or a
 * coordination error. */
int cx__jobs_drained(struct cx_admin *a, char ***out, size_t *n, char *err);
/* 1 when uuid is in the sorted list v[0..n). */
int cx__jobs_listed(char *const *v, size_t n, const char *uuid);
/* Counts one more job on node (a manual placement of this process). */
void cx__jobs_placed(const char *node);
/* Forces a re-read of the counts cache (after deletions and moves). */
void cx__jobs_load_forget(void);

/* The job's published value (its JSON, compact); free() it. NULL on
 * allocation failure. */
/* The key job j is published under: <prefix>/bcast/<id> for a broadcast
 * job, <prefix>/job/<run_on>/<id> otherwise; its length, 0 when it has
 * none (unassigned) or it does not fit. */
size_t cx__jobs_key(struct cx_admin *a, const struct cx_job *j,
                    char key[CX_KEY_LEN]);
char *cx__jobs_value(const struct cx_job *j);
/* Runs ops as one coordination transaction: 0 applied, CX_ECONFLICT
 * refused, or a backend error (cluster.c's leader-guarded txn). */
typedef int (*cx__jobs_txn_fn)(void *arg, const struct cx_coord_op *ops,
                               size_t nops, char *err);
/* Puts j's key <prefix>/job/<j->run_on>/<id>, deleting the key under
 * old_node (NULL: none) in the same transaction when it differs; old_node
 * "" (the job was broadcast or unassigned) deletes its bcast key instead,
 * unless j is broadcast.
 * txn NULL: an unguarded put or txn. */
int cx__jobs_publish(struct cx_admin *a, const struct cx_job *j,
                     const char *old_node, cx__jobs_txn_fn txn, void *arg,
                     char *err);
/* Best-effort removal of a job's key (a compensation); logs failures. */
void cx__jobs_unpublish(struct cx_admin *a, const struct cx_job *j);

/* The writes, each with its compensation (jobs.c's header). They return 0
 * or the failing code; *in_coord tells a coordination failure (the store
 * write was undone) from a store one (nothing changed). */
/* Inserts j (placed; id, created and updated are set) and publishes it. */
/* who: the user making the change, whose audit row is written with the
 * store write (NULL: the system's own, unaudited). */
int cx__jobs_create(struct cx_admin *a, struct cx_job *j,
                    const struct cx__actor *who, int *in_coord, char *err);
/* Writes j over old (the stored row; its `updated` is overwritten), the
 * caller holding cx__jobs_lock(j->id). CX_ECONFLICT: stale `updated`;
 * CX_EEXISTS: name taken. */
int cx__jobs_update(struct cx_admin *a, struct cx_job *j, struct cx_job *old,
                    const struct cx__actor *who, int *in_coord, char *err);
/* Deletes job id's key, then its row. CX_ENOTFOUND when already gone. */
int cx__jobs_delete(struct cx_admin *a, int64_t id, const struct cx__actor *who,
                    char *err);
/* Sets enabled and publishes; out gets the job as now stored (caller
 * zeroes it before and clears it after). CX_ENOTFOUND when gone. */
int cx__jobs_set_enabled(struct cx_admin *a, int64_t id, int enabled,
                         const struct cx__actor *who, struct cx_job *out,
                         char *err);
/* One job of a batch move: id to node `to` (in); moved and the moved
 * row (out; cx_job_clear it). */
struct cx__jobs_move {
  int64_t id;
  const char *to;
  int moved;
  struct cx_job job;
};
/* Most jobs a batch moves: two ops each, within etcd's default limit of
 * 128 ops per transaction. */
#define CX_JOBS_MOVE_MAX 32
/* Moves the n jobs of mv off node from: each row only if still on from
 * (then its key, the delete under from and the put under `to`), all rows
 * in one store transaction and all keys in one txn through txn: a job that
 * is gone or no longer on from is skipped (moved 0); any other failure
 * moves none (a refused txn puts the rows back; after a coordination
 * failure the rows stay moved and the reconciler publishes them). */
int cx__jobs_move_batch(struct cx_admin *a, struct cx__jobs_move *mv, size_t n,
                        const char *from, cx__jobs_txn_fn txn, void *arg,
                        char *err);

/* Replies with the §4 error matching a store or coord failure code rc:
 * CX_ENOTFOUND 404/1201, CX_EEXISTS / CX_ECONFLICT 409/1202, CX_EUNAVAIL
 * (and anything unexpected from a backend) 503/1302. what names the object
 * ("job 7"), detail is the backend's message (may be NULL). */
void cx__admin_reply_backend_error(struct cx_http_req *req, int rc,
                                   const char *what, const char *detail);

/* 1 if key[0..len) is a coordination key of kind under this admin's
 * prefix (keys.h's layout and uuid rule), parsed into *out; 0 if not. */
int cx__admin_key_is(const struct cx_admin *a, enum cx_key_kind kind,
                     const char *key, size_t len, struct cx_key *out);

/* Reads an optional integer member of a JSON body within [min, max]:
 * returns 0 (absent: *out untouched) or 1 (set); on a wrong type or range
 * it replies 400/1001 naming the field and returns -1. */
int cx__admin_json_int(struct cx_http_req *req, const json_t *body,
                       const char *name, int64_t min, int64_t max,
                       int64_t *out);
/* Same for strings up to max_len bytes (no NUL bytes). */
int cx__admin_json_str(struct cx_http_req *req, const json_t *body,
                       const char *name, size_t max_len, const char **out);
/* Reads an optional time bound (unix ms, or an RFC 3339 string) into
 * *out (absent: untouched); 0, or -1 after replying 400 naming it. */
int cx__admin_json_time_ms(struct cx_http_req *req, const json_t *body,
                           const char *name, int64_t *out);
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

/* routes_job.c: a run-log row as JSON (the columns of SPEC §6, output
 * as below); with redact, the command in its viewer form
 * (cx_job_redact_command). NULL when out of memory. */
struct cx_run;
json_t *cx__admin_run_json(const struct cx_run *r, int redact);
/* A JSON string of bytes that may not be valid UTF-8 (run output):
 * invalid bytes become U+FFFD. s NULL = "". NULL when out of memory. */
json_t *cx__admin_json_bytes(const char *s, size_t len);

/* Route registration, one per route file. Return 0 or a negative code. */
int cx__admin_routes_jobs(struct cx_admin *a);
int cx__admin_routes_users(struct cx_admin *a);
int cx__admin_routes_nodes(struct cx_admin *a);
int cx__admin_routes_notify(struct cx_admin *a);
int cx__admin_routes_runs(struct cx_admin *a);
/* routes_output.c: /job/output (live and stored output), /job/running. */
int cx__admin_routes_output(struct cx_admin *a);

/* live_proxy.c: run_id's output as it comes from node (which runs it) --
 * a mirror with a reference, fed by a fetcher thread -- or NULL when it
 * cannot be had: no cluster.secret, the node has no listener (*lost 0),
 * or its key is gone (*lost 1). */
struct cx_live;
struct cx_live *cx__admin_live_remote(struct cx_admin *a, int64_t run_id,
                                      const char *node, int *lost);
int cx__admin_proxy_init(struct cx_admin *a);
/* Stops the fetchers and waits for them (idempotent). */
void cx__admin_proxy_stop(struct cx_admin *a);
void cx__admin_proxy_free(struct cx_admin *a);
int cx__admin_routes_cron(struct cx_admin *a); /* routes_cron.c */
int cx__admin_routes_audit(struct cx_admin *a);

#endif
