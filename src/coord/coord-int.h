/*
 * coord internals: the backend vtable and helpers shared by the backends.
 * coord.c validates arguments, runs lease keep-alives and dispatches to a
 * backend (coord_etcd.c or coord_local.c) through struct cx_coord_ops.
 */
#ifndef CX_COORD_INT_H
#define CX_COORD_INT_H

#include <pthread.h>

#include "coord.h"
#include "util/util.h"

/* Resolved configuration (defaults applied) handed to a backend. */
struct cx__coord_conf {
  struct cx_coord_cfg cfg; /* strings are borrowed from the cx_coord */
  int connect_timeout_ms, request_timeout_ms, watch_idle_ms;
  size_t max_reply_bytes, local_history;
};

struct cx__coord_watch_args {
  const char *prefix;
  size_t prefix_len;
  int64_t start_rev;
  struct cx_coord_watch_cbs cbs;
  void *arg;
};

struct cx_coord_ops {
  const char *name;
  int (*open)(const struct cx__coord_conf *conf, void **impl, char *err);
  void (*close)(void *impl);
  /* prefix = 0: the single key; 1: every key starting with key. */
  int (*range)(void *impl, const void *key, size_t key_len, int prefix,
               struct cx_coord_kvs *out, char *err);
  int (*put)(void *impl, const void *key, size_t key_len, const void *value,
             size_t value_len, int64_t lease, int64_t *rev, char *err);
  int (*del)(void *impl, const void *key, size_t key_len, int prefix,
             int64_t *deleted, int64_t *rev, char *err);
  int (*txn)(void *impl, const struct cx_coord_txn *txn, int *succeeded,
             int64_t *rev, char *err);
  int (*compact)(void *impl, int64_t rev, char *err);
  int (*lease_grant)(void *impl, int64_t ttl, int64_t *id, int64_t *granted,
                     char *err);
  /* CX_ENOTFOUND when the lease is gone. timeout_ms 0 = the default. */
  int (*lease_keepalive)(void *impl, int64_t id, int timeout_ms, int64_t *ttl,
                         char *err);
  int (*lease_revoke)(void *impl, int64_t id, char *err);
  int (*watch)(void *impl, const struct cx__coord_watch_args *a, void **w,
               char *err);
  void (*watch_cancel)(void *w);
};

extern const struct cx_coord_ops cx__coord_local_ops;
extern const struct cx_coord_ops cx__coord_etcd_ops;

/* etcd's "prefix end": the smallest key greater than every key starting
 * with p. out must hold len bytes (len >= 1); returns its length. All-0xff
 * (or empty) prefixes give "\0", meaning "to the end of the key space". */
size_t cx__coord_prefix_end(const unsigned char *p, size_t len,
                            unsigned char *out);

/* Appends a copy of one kv to kvs (growing it). 0 or -ENOMEM. */
int cx__coord_kvs_push(struct cx_coord_kvs *kvs, const void *key,
                       size_t key_len, const void *value, size_t value_len,
                       int64_t create_rev, int64_t mod_rev, int64_t version,
                       int64_t lease);

/* Test hook (tests/fuzz/coord_reply.c): parses data as an etcd range reply
 * into range_out (returning that result), then feeds it to a watch's
 * stream parser in chunks of `chunk` bytes, calling cbs as a live watch
 * would (no network; the stream ends where a connection would). */
int cx__coord_etcd_replay(const char *data, size_t len, size_t chunk,
                          const struct cx_coord_watch_cbs *cbs, void *arg,
                          struct cx_coord_kvs *range_out);

#endif
