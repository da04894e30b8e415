/*
 * coord: the coordination store (etcd-like) behind one interface.
 *
 * Two backends, chosen by cx_coord_cfg.endpoints:
 *   - etcd v3 through its JSON gateway (libcurl, HTTP/1.1), several endpoints
 *     with fail-over, optional username/password and TLS client certs;
 *   - in-process (endpoints NULL or ""): the same semantics in memory, for
 *     `cronix standalone` and as the test double of the admin/node tests.
 *
 * The model is etcd's: a flat, ordered space of binary keys; every change
 * bumps one global revision; each key has create/mod revision and version;
 * keys may be attached to a lease that expires unless kept alive; a watch
 * delivers the changes of a prefix from a revision, in order.
 *
 * Keys and values are binary-safe byte strings (pointer + length). The
 * module adds no prefix: SPEC §7's "/cronix" is the caller's business.
 *
 * Every function is thread-safe on one handle unless it says otherwise.
 * Errors: CX_EUNAVAIL (no endpoint answers), CX_ENOTFOUND (missing key or
 * lease), CX_ELEASE (lease gone), CX_ECOMPACTED (revision compacted),
 * CX_EPROTO (garbage reply), CX_EAUTH (credentials), CX_ETOOBIG (size caps),
 * CX_EPARSE (bad argument or configuration), -ENOMEM; details in `err`.
 */
#ifndef CX_COORD_H
#define CX_COORD_H

#include <stddef.h>
#include <stdint.h>

/* Size caps. etcd refuses requests over 1.5 MiB (--max-request-bytes); a
 * value is capped below that so key and framing still fit. */
#define CX_COORD_MAX_KEY 4096
#define CX_COORD_MAX_VALUE (1536 * 1024 - 8192)
#define CX_COORD_MAX_TXN_OPS 128

struct cx_coord;
struct cx_coord_watch;

struct cx_coord_cfg {
  /* Comma-separated "http(s)://host:port" list; NULL or "" = in-process. */
  const char *endpoints;
  const char *username; /* NULL = no auth */
  const char *password;
  const char *ca_file;    /* TLS: CA bundle to verify the server (optional) */
  const char *cert_file;  /* TLS client certificate (optional) */
  const char *key_file;   /* its private key (optional) */
  int connect_timeout_ms; /* 0 = 3000 */
  int request_timeout_ms; /* unary requests; 0 = 5000 */
  /* A watch that receives nothing for this long checks that its server
   * still serves (a one-key read on the same endpoint, bounded by
   * request_timeout_ms) and reconnects elsewhere only if it does not; the
   * stream's TCP keep-alive starts after this idle time too. 0 = 30000.
   * Works with a stock etcd. --experimental-watch-progress-notify-interval
   * (say 10s) is still worth setting: progress keeps an idle watch's resume
   * point current, so a reconnect after a compaction needs no re-list. */
  int watch_idle_ms;
  size_t max_reply_bytes; /* cap on one reply or watch message; 0 = 64 MiB */
  /* In-process backend: events kept for watches from an old revision;
   * older history is compacted automatically. 0 = 100000. */
  size_t local_history;
};

/* Opens a handle. cfg is copied. Returns 0 and *out, or CX_EPARSE (bad
 * endpoint URL, named in err), CX_EAUTH (wrong credentials), CX_EUNAVAIL
 * (auth configured and no endpoint answers), -ENOMEM. The etcd backend does
 * not contact the server unless credentials are given. */
int cx_coord_open(const struct cx_coord_cfg *cfg, struct cx_coord **out,
                  char *err);
/* Stops lease keep-alives (without revoking) and frees the handle. Every
 * watch must have been cancelled first. NULL is allowed. */
void cx_coord_close(struct cx_coord *c);
/* "etcd" or "local". */
const char *cx_coord_backend(const struct cx_coord *c);

/* ---- key/values ---------------------------------------------------------- */

struct cx_coord_kv {
  char *key; /* NUL-terminated for convenience; key_len bytes are the key */
  size_t key_len;
  char *value; /* NUL-terminated too; may contain NULs */
  size_t value_len;
  int64_t create_rev, mod_rev, version;
  int64_t lease; /* 0 = none */
};

/* A result set, owned by the caller: free with cx_coord_kvs_free. */
struct cx_coord_kvs {
  struct cx_coord_kv *kvs; /* sorted by key (bytewise) */
  size_t n;
  int64_t revision; /* the store revision the read saw */
};
void cx_coord_kvs_free(struct cx_coord_kvs *kvs);

/* Reads one key into out (n = 1), or CX_ENOTFOUND (out->revision still
 * set). out is overwritten, not freed first. */
int cx_coord_get(struct cx_coord *c, const void *key, size_t key_len,
                 struct cx_coord_kvs *out, char *err);
/* Reads every key starting with prefix (prefix_len 0 = the whole space).
 * No match is not an error: n = 0. */
int cx_coord_range(struct cx_coord *c, const void *prefix, size_t prefix_len,
                   struct cx_coord_kvs *out, char *err);
/* Writes key = value, attached to lease (0 = none). *rev (optional) gets
 * the revision of the write. CX_ENOTFOUND if the lease does not exist. */
int cx_coord_put(struct cx_coord *c, const void *key, size_t key_len,
                 const void *value, size_t value_len, int64_t lease,
                 int64_t *rev, char *err);
/* Deletes one key; a missing key is not an error (*deleted = 0).
 * deleted and rev are optional. */
int cx_coord_delete(struct cx_coord *c, const void *key, size_t key_len,
                    int64_t *deleted, int64_t *rev, char *err);
/* Deletes every key starting with prefix (prefix_len must be > 0). */
int cx_coord_delete_prefix(struct cx_coord *c, const void *prefix,
                           size_t prefix_len, int64_t *deleted, int64_t *rev,
                           char *err);
/* Drops history before rev: watches from older revisions get resynced.
 * CX_ECOMPACTED if rev is already compacted, CX_EPARSE if in the future. */
int cx_coord_compact(struct cx_coord *c, int64_t rev, char *err);

/* ---- transactions -------------------------------------------------------- */

enum cx_coord_target {
  CX_COORD_CREATE,  /* create revision (0 = key absent) */
  CX_COORD_MOD,     /* mod revision */
  CX_COORD_VERSION, /* version (0 = key absent) */
  CX_COORD_VALUE    /* value bytes */
};
enum cx_coord_cmp_op {
  CX_COORD_EQUAL,
  CX_COORD_NOT_EQUAL,
  CX_COORD_LESS,
  CX_COORD_GREATER
};
struct cx_coord_cmp {
  const void *key;
  size_t key_len;
  enum cx_coord_target target;
  enum cx_coord_cmp_op op;
  int64_t num;       /* for CREATE / MOD / VERSION */
  const void *value; /* for VALUE */
  size_t value_len;
};

enum cx_coord_op_type {
  CX_COORD_OP_PUT,
  CX_COORD_OP_DELETE,       /* one key */
  CX_COORD_OP_DELETE_PREFIX /* every key starting with key */
};
struct cx_coord_op {
  enum cx_coord_op_type type;
  const void *key;
  size_t key_len;
  const void *value; /* PUT only */
  size_t value_len;
  int64_t lease; /* PUT only; 0 = none */
};

/* If every compare holds, applies `success`, else `failure`, atomically at
 * one revision. A compare on a missing key sees create/mod/version 0, and
 * a VALUE compare on a missing key never holds (etcd's rule). At most
 * CX_COORD_MAX_TXN_OPS ops per branch, no key put twice in one branch
 * (CX_EPARSE). *succeeded gets 1/0; *rev (optional) the store revision after
 * the txn. A txn is never repeated behind the caller's back: CX_EUNAVAIL
 * after the request may have reached the server means the outcome is
 * unknown (read back to find out). */
struct cx_coord_txn {
  const struct cx_coord_cmp *cmps;
  size_t ncmps;
  const struct cx_coord_op *success;
  size_t nsuccess;
  const struct cx_coord_op *failure;
  size_t nfailure;
};
int cx_coord_txn(struct cx_coord *c, const struct cx_coord_txn *txn,
                 int *succeeded, int64_t *rev, char *err);

/* ---- leases -------------------------------------------------------------- */

/* Called once, on the keep-alive thread, when a kept-alive lease is lost:
 * the server said it is gone (reason CX_ELEASE), or it could not be renewed
 * before its TTL ran out (CX_EUNAVAIL; a revoke is then attempted so the
 * keys go as soon as the server is back). The lease is no longer kept
 * alive. Must not call cx_coord_close. */
typedef void (*cx_coord_lease_lost_fn)(void *arg, int64_t lease, int reason);

/* Grants a lease of ttl_s seconds (1..86400; a server may raise it) and,
 * if keepalive, renews it every TTL/3 on a dedicated thread and connection
 * until revoked, lost or the handle closes. lost (optional) is called as
 * above. *lease gets the id, *granted_ttl (optional) the TTL granted. */
int cx_coord_lease_grant(struct cx_coord *c, int64_t ttl_s, int keepalive,
                         cx_coord_lease_lost_fn lost, void *arg, int64_t *lease,
                         int64_t *granted_ttl, char *err);
/* One explicit renewal: *ttl (optional) gets the remaining TTL.
 * CX_ENOTFOUND when the lease is gone. A kept-alive lease's held-until
 * time (below) moves forward with it. */
int cx_coord_lease_keepalive(struct cx_coord *c, int64_t lease, int64_t *ttl,
                             char *err);
/* Revokes a lease (its keys are deleted) and stops its keep-alive; the lost
 * callback is not called. CX_ENOTFOUND if it does not exist. */
int cx_coord_lease_revoke(struct cx_coord *c, int64_t lease, char *err);
/* Until when this handle knows a kept-alive lease is held, in microseconds
 * on CLOCK_MONOTONIC (util.h's cx_mono_now): the moment the last successful
 * renewal (or the grant) was SENT plus the TTL granted, so never later than
 * the server's own expiry. 0 when the lease is not kept alive here (lost,
 * revoked, never granted by this handle). A holder that must not act
 * without its lease (a node starting runs) compares this with the clock:
 * after a stop (SIGSTOP, a stalled thread) it knows at once that the lease
 * may be gone, before the keep-alive thread has had a chance to find out.
 * Thread-safe. */
int64_t cx_coord_lease_held_until(struct cx_coord *c, int64_t lease);

/* ---- watches ------------------------------------------------------------- */

enum cx_coord_event_type { CX_COORD_EV_PUT, CX_COORD_EV_DELETE };

/* Borrowed for the duration of the callback. */
struct cx_coord_event {
  enum cx_coord_event_type type;
  const char *key;
  size_t key_len;
  const char *value; /* PUT: the new value; DELETE: "" */
  size_t value_len;
  const char *prev_value; /* previous value, NULL if unknown/none */
  size_t prev_value_len;
  int64_t mod_rev; /* the revision of the change */
  int64_t create_rev, version, lease;
};

struct cx_coord_watch_cbs {
  /* Every change under the prefix, in revision order, exactly once. */
  void (*event)(void *arg, const struct cx_coord_event *ev);
  /* The changes since the last delivered revision are gone (compaction):
   * here is the whole current state of the prefix at kvs->revision; forget
   * what you knew and rebuild from it. Events resume after kvs->revision.
   * kvs is borrowed. */
  void (*resync)(void *arg, const struct cx_coord_kvs *kvs);
  /* Optional: connection state, 1 = streaming, 0 = lost (retrying). */
  void (*state)(void *arg, int connected);
};

/* Watches every key under prefix from start_rev (0 = changes after now;
 * typically: range, then watch from kvs.revision + 1). Callbacks run on the
 * watch's own thread, never concurrently for one watch. Disconnects are
 * resumed from the last delivered revision + 1 (on another endpoint if
 * needed); a watch silent for watch_idle_ms probes its server and is
 * reconnected if the server does not answer. cbs is copied;
 * event and resync are required. */
int cx_coord_watch(struct cx_coord *c, const void *prefix, size_t prefix_len,
                   int64_t start_rev, const struct cx_coord_watch_cbs *cbs,
                   void *arg, struct cx_coord_watch **out, char *err);
/* Stops the watch and waits for its thread: no callback runs after it
 * returns. Must not be called from the watch's own callbacks. NULL ok. */
void cx_coord_watch_cancel(struct cx_coord_watch *w);

#endif
