/*
 * coord front end: argument checks shared by both backends, the lease
 * keep-alive thread, and dispatch through struct cx_coord_ops.
 *
 * Keep-alive: one thread per handle renews every kept-alive lease at TTL/3.
 * A lease whose renewal the server refuses (no TTL in the reply) or that
 * could not be renewed within its TTL is reported lost once, dropped from
 * the set and revoked best-effort (fail closed: its keys must not outlive
 * the holder's belief that it holds them).
 */
#include "coord-int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

struct ka_lease {
  int64_t id, ttl;
  cx_mono next;    /* next renewal due */
  cx_mono expires; /* last success + ttl: lost after this */
  cx_coord_lease_lost_fn lost;
  void *arg;
  struct ka_lease *next_l;
};

struct cx_coord {
  const struct cx_coord_ops *ops;
  void *impl;
  struct cx__coord_conf conf;
  char *strs[6]; /* owned copies of the cfg strings */

  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct ka_lease *leases;
  int ka_running, ka_stop;
  pthread_t ka_thread;
};

struct cx_coord_watch {
  const struct cx_coord_ops *ops;
  void *impl;
};

/* ---- shared helpers ---------------------------------------------------- */

size_t cx__coord_prefix_end(const unsigned char *p, size_t len,
                            unsigned char *out)
{
  for (size_t i = len; i-- > 0;) {
    if (p[i] < 0xff) {
      memcpy(out, p, i);
      out[i] = (unsigned char)(p[i] + 1);
      return i + 1;
    }
  }
  out[0] = 0;
  return 1;
}

int cx__coord_kvs_push(struct cx_coord_kvs *kvs, const void *key,
                       size_t key_len, const void *value, size_t value_len,
                       int64_t create_rev, int64_t mod_rev, int64_t version,
                       int64_t lease)
{
  /* Capacity is implicit: 4, then doubled whenever n reaches a power of 2. */
  size_t n = kvs->n;
  if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
    size_t cap = n ? n * 2 : 4;
    struct cx_coord_kv *p = cx_realloc(kvs->kvs, cap * sizeof *p);
    if (p == NULL)
      return -ENOMEM;
    kvs->kvs = p;
  }
  struct cx_coord_kv *kv = &kvs->kvs[n];
  memset(kv, 0, sizeof *kv);
  kv->key = cx_malloc(key_len + 1);
  kv->value = cx_malloc(value_len + 1);
  if (kv->key == NULL || kv->value == NULL) {
    cx_free(kv->key);
    cx_free(kv->value);
    return -ENOMEM;
  }
  if (key_len)
    memcpy(kv->key, key, key_len);
  kv->key[key_len] = '\0';
  if (value_len)
    memcpy(kv->value, value, value_len);
  kv->value[value_len] = '\0';
  kv->key_len = key_len;
  kv->value_len = value_len;
  kv->create_rev = create_rev;
  kv->mod_rev = mod_rev;
  kv->version = version;
  kv->lease = lease;
  kvs->n = n + 1;
  return 0;
}

void cx_coord_kvs_free(struct cx_coord_kvs *kvs)
{
  if (kvs == NULL)
    return;
  for (size_t i = 0; i < kvs->n; i++) {
    cx_free(kvs->kvs[i].key);
    cx_free(kvs->kvs[i].value);
  }
  cx_free(kvs->kvs);
  kvs->kvs = NULL;
  kvs->n = 0;
}

static int check_key(const void *key, size_t len, const char *what, char *err)
{
  if (key == NULL || len == 0) {
    cx_err_set(err, "%s: empty", what);
    return CX_EPARSE;
  }
  if (len > CX_COORD_MAX_KEY) {
    cx_err_set(err, "%s: %zu bytes, more than %d", what, len, CX_COORD_MAX_KEY);
    return CX_ETOOBIG;
  }
  return 0;
}

static int check_value(const void *v, size_t len, char *err)
{
  if (v == NULL && len > 0) {
    cx_err_set(err, "value: NULL with length %zu", len);
    return CX_EPARSE;
  }
  if (len > CX_COORD_MAX_VALUE) {
    cx_err_set(err, "value: %zu bytes, more than %d", len, CX_COORD_MAX_VALUE);
    return CX_ETOOBIG;
  }
  return 0;
}

/* ---- open / close ------------------------------------------------------ */

static int dup_str(struct cx_coord *c, int i, const char *s, const char **dst)
{
  *dst = NULL;
  if (s == NULL)
    return 0;
  c->strs[i] = cx_strdup(s);
  if (c->strs[i] == NULL)
    return -ENOMEM;
  *dst = c->strs[i];
  return 0;
}

int cx_coord_open(const struct cx_coord_cfg *cfg, struct cx_coord **out,
                  char *err)
{
  struct cx_coord_cfg empty = {0};
  struct cx_coord *c = NULL;
  int rc;

  *out = NULL;
  if (cfg == NULL)
    cfg = &empty;
  c = cx_calloc(1, sizeof *c);
  if (c == NULL)
    return -ENOMEM;
  pthread_mutex_init(&c->mu, NULL);
  cx_cond_init_mono(&c->cv);

  struct cx__coord_conf *k = &c->conf;
  k->cfg = *cfg;
  if ((rc = dup_str(c, 0, cfg->endpoints, &k->cfg.endpoints)) ||
      (rc = dup_str(c, 1, cfg->username, &k->cfg.username)) ||
      (rc = dup_str(c, 2, cfg->password, &k->cfg.password)) ||
      (rc = dup_str(c, 3, cfg->ca_file, &k->cfg.ca_file)) ||
      (rc = dup_str(c, 4, cfg->cert_file, &k->cfg.cert_file)) ||
      (rc = dup_str(c, 5, cfg->key_file, &k->cfg.key_file)))
    goto fail;
  k->connect_timeout_ms =
      cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 3000;
  k->request_timeout_ms =
      cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 5000;
  k->watch_idle_ms = cfg->watch_idle_ms > 0 ? cfg->watch_idle_ms : 30000;
  k->max_reply_bytes =
      cfg->max_reply_bytes > 0 ? cfg->max_reply_bytes : 64u << 20;
  k->local_history = cfg->local_history > 0 ? cfg->local_history : 100000;

  if (cfg->endpoints == NULL || cfg->endpoints[0] == '\0')
    c->ops = &cx__coord_local_ops;
  else
    c->ops = &cx__coord_etcd_ops;
  rc = c->ops->open(k, &c->impl, err);
  if (rc != 0)
    goto fail;
  *out = c;
  return 0;
fail:
  for (size_t i = 0; i < CX_ARRAY_LEN(c->strs); i++)
    cx_free(c->strs[i]);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  cx_free(c);
  return rc;
}

void cx_coord_close(struct cx_coord *c)
{
  if (c == NULL)
    return;
  pthread_mutex_lock(&c->mu);
  c->ka_stop = 1;
  pthread_cond_broadcast(&c->cv);
  int running = c->ka_running;
  pthread_mutex_unlock(&c->mu);
  if (running)
    pthread_join(c->ka_thread, NULL);
  while (c->leases) {
    struct ka_lease *l = c->leases;
    c->leases = l->next_l;
    cx_free(l);
  }
  c->ops->close(c->impl);
  for (size_t i = 0; i < CX_ARRAY_LEN(c->strs); i++)
    cx_free(c->strs[i]);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  cx_free(c);
}

const char *cx_coord_backend(const struct cx_coord *c)
{
  return c->ops->name;
}

/* ---- key/values -------------------------------------------------------- */

int cx_coord_get(struct cx_coord *c, const void *key, size_t key_len,
                 struct cx_coord_kvs *out, char *err)
{
  memset(out, 0, sizeof *out);
  int rc = check_key(key, key_len, "key", err);
  if (rc == 0)
    rc = c->ops->range(c->impl, key, key_len, 0, out, err);
  if (rc == 0 && out->n == 0) {
    cx_err_set(err, "key not found");
    rc = CX_ENOTFOUND;
  }
  if (rc != 0) {
    int64_t rev = out->revision;
    cx_coord_kvs_free(out);
    out->revision = rev;
  }
  return rc;
}

int cx_coord_range(struct cx_coord *c, const void *prefix, size_t prefix_len,
                   struct cx_coord_kvs *out, char *err)
{
  memset(out, 0, sizeof *out);
  if (prefix_len > CX_COORD_MAX_KEY || (prefix == NULL && prefix_len)) {
    cx_err_set(err, "prefix: bad (%zu bytes)", prefix_len);
    return prefix_len > CX_COORD_MAX_KEY ? CX_ETOOBIG : CX_EPARSE;
  }
  int rc =
      c->ops->range(c->impl, prefix_len ? prefix : "", prefix_len, 1, out, err);
  if (rc != 0)
    cx_coord_kvs_free(out);
  return rc;
}

int cx_coord_put(struct cx_coord *c, const void *key, size_t key_len,
                 const void *value, size_t value_len, int64_t lease,
                 int64_t *rev, char *err)
{
  int rc = check_key(key, key_len, "key", err);
  if (rc == 0)
    rc = check_value(value, value_len, err);
  if (rc == 0 && lease < 0) {
    cx_err_set(err, "lease: negative id");
    rc = CX_EPARSE;
  }
  if (rc != 0)
    return rc;
  return c->ops->put(c->impl, key, key_len, value ? value : "", value_len,
                     lease, rev, err);
}

int cx_coord_delete(struct cx_coord *c, const void *key, size_t key_len,
                    int64_t *deleted, int64_t *rev, char *err)
{
  int64_t d = 0, r = 0;
  int rc = check_key(key, key_len, "key", err);
  if (rc == 0)
    rc = c->ops->del(c->impl, key, key_len, 0, &d, &r, err);
  if (rc == 0 && deleted)
    *deleted = d;
  if (rc == 0 && rev)
    *rev = r;
  return rc;
}

int cx_coord_delete_prefix(struct cx_coord *c, const void *prefix,
                           size_t prefix_len, int64_t *deleted, int64_t *rev,
                           char *err)
{
  int64_t d = 0, r = 0;
  int rc = check_key(prefix, prefix_len, "prefix", err);
  if (rc == 0)
    rc = c->ops->del(c->impl, prefix, prefix_len, 1, &d, &r, err);
  if (rc == 0 && deleted)
    *deleted = d;
  if (rc == 0 && rev)
    *rev = r;
  return rc;
}

int cx_coord_compact(struct cx_coord *c, int64_t rev, char *err)
{
  if (rev <= 0) {
    cx_err_set(err, "compact: revision %" PRId64 " not positive", rev);
    return CX_EPARSE;
  }
  return c->ops->compact(c->impl, rev, err);
}

static int check_ops(const struct cx_coord_op *ops, size_t n,
                     const char *branch, size_t *bytes, char *err)
{
  if (n > CX_COORD_MAX_TXN_OPS) {
    cx_err_set(err, "txn %s: %zu ops, more than %d", branch, n,
               CX_COORD_MAX_TXN_OPS);
    return CX_ETOOBIG;
  }
  if (n > 0 && ops == NULL) {
    cx_err_set(err, "txn %s: NULL ops", branch);
    return CX_EPARSE;
  }
  for (size_t i = 0; i < n; i++) {
    const struct cx_coord_op *o = &ops[i];
    int rc = check_key(o->key, o->key_len, "txn op key", err);
    if (rc)
      return rc;
    if (o->type != CX_COORD_OP_PUT && o->type != CX_COORD_OP_DELETE &&
        o->type != CX_COORD_OP_DELETE_PREFIX) {
      cx_err_set(err, "txn %s op %zu: bad type %d", branch, i, (int)o->type);
      return CX_EPARSE;
    }
    if (o->type == CX_COORD_OP_PUT) {
      if ((rc = check_value(o->value, o->value_len, err)))
        return rc;
      if (o->lease < 0) {
        cx_err_set(err, "txn %s op %zu: negative lease", branch, i);
        return CX_EPARSE;
      }
      for (size_t j = 0; j < i; j++) {
        if (ops[j].type == CX_COORD_OP_PUT && ops[j].key_len == o->key_len &&
            memcmp(ops[j].key, o->key, o->key_len) == 0) {
          cx_err_set(err, "txn %s: key put twice (ops %zu and %zu)", branch, j,
                     i);
          return CX_EPARSE;
        }
      }
    }
    *bytes += o->key_len + o->value_len;
  }
  return 0;
}

int cx_coord_txn(struct cx_coord *c, const struct cx_coord_txn *txn,
                 int *succeeded, int64_t *rev, char *err)
{
  size_t bytes = 0;
  int rc;
  int ok = 0;
  int64_t r = 0;

  if (txn == NULL || (txn->ncmps && txn->cmps == NULL)) {
    cx_err_set(err, "txn: NULL");
    return CX_EPARSE;
  }
  if (txn->ncmps > CX_COORD_MAX_TXN_OPS) {
    cx_err_set(err, "txn: %zu compares, more than %d", txn->ncmps,
               CX_COORD_MAX_TXN_OPS);
    return CX_ETOOBIG;
  }
  for (size_t i = 0; i < txn->ncmps; i++) {
    const struct cx_coord_cmp *m = &txn->cmps[i];
    if ((rc = check_key(m->key, m->key_len, "txn compare key", err)))
      return rc;
    if ((unsigned)m->target > CX_COORD_VALUE ||
        (unsigned)m->op > CX_COORD_GREATER) {
      cx_err_set(err, "txn compare %zu: bad target or operator", i);
      return CX_EPARSE;
    }
    if (m->target == CX_COORD_VALUE &&
        (rc = check_value(m->value, m->value_len, err)))
      return rc;
    bytes += m->key_len + m->value_len;
  }
  if ((rc = check_ops(txn->success, txn->nsuccess, "success", &bytes, err)) ||
      (rc = check_ops(txn->failure, txn->nfailure, "failure", &bytes, err)))
    return rc;
  if (bytes > CX_COORD_MAX_VALUE) {
    cx_err_set(err, "txn: %zu bytes of keys and values, more than %d", bytes,
               CX_COORD_MAX_VALUE);
    return CX_ETOOBIG;
  }
  rc = c->ops->txn(c->impl, txn, &ok, &r, err);
  if (rc == 0 && succeeded)
    *succeeded = ok;
  if (rc == 0 && rev)
    *rev = r;
  return rc;
}

/* ---- leases ------------------------------------------------------------ */

static void *keepalive_main(void *arg)
{
  struct cx_coord *c = arg;
  char err[CX_ERR_LEN];

  pthread_mutex_lock(&c->mu);
  while (!c->ka_stop) {
    cx_mono now = cx_mono_now();
    struct ka_lease *due = NULL;
    cx_mono wake = now + 60 * 1000000LL;
    for (struct ka_lease *l = c->leases; l; l = l->next_l) {
      if (l->next <= now) {
        due = l;
        break;
      }
      if (l->next < wake)
        wake = l->next;
    }
    if (due == NULL) {
      cx_cond_wait_until(&c->cv, &c->mu, wake);
      continue;
    }
    int64_t id = due->id, ttl = 0;
    /* Never wait on one renewal past the lease's end: a loss must be
     * reported while it can still matter (at least 500 ms per try). */
    int64_t left_ms = (due->expires - now) / 1000;
    int timeout_ms = c->conf.request_timeout_ms;
    if (left_ms < timeout_ms)
      timeout_ms = left_ms > 500 ? (int)left_ms : 500;
    pthread_mutex_unlock(&c->mu);
    err[0] = '\0';
    /* The server counts the TTL from when it receives the renewal, so the
     * send time plus TTL is a lower bound of the lease's real end. */
    cx_mono sent = cx_mono_now();
    int rc = c->ops->lease_keepalive(c->impl, id, timeout_ms, &ttl, err);
    now = cx_mono_now();
    pthread_mutex_lock(&c->mu);
    /* The lease may have been revoked meanwhile: look it up again. */
    struct ka_lease **pp = &c->leases;
    while (*pp && (*pp)->id != id)
      pp = &(*pp)->next_l;
    struct ka_lease *l = *pp;
    if (l == NULL)
      continue;
    int reason = 0;
    if (rc == 0 && ttl > 0) {
      l->ttl = ttl;
      l->expires = sent + ttl * 1000000LL;
      l->next = sent + ttl * 1000000LL / 3;
    } else if (rc == 0 || rc == CX_ENOTFOUND) {
      reason = CX_ELEASE;
    } else if (now >= l->expires) {
      reason = CX_EUNAVAIL;
    } else {
      /* Transient failure: retry soon, well before the lease runs out. */
      cx_mono retry = now + 500000;
      l->next = retry < l->expires ? retry : l->expires;
      CX_LOG(CX_LOG_WARN, "coord", "lease %" PRId64 " keep-alive: %s (%s)", id,
             cx_strerror(rc), err);
    }
    if (reason == 0)
      continue;
    *pp = l->next_l;
    pthread_mutex_unlock(&c->mu);
    CX_LOG(CX_LOG_WARN, "coord", "lease %" PRId64 " lost: %s", id,
           reason == CX_ELEASE ? "expired on the server"
                               : "not renewed within its TTL");
    if (reason == CX_EUNAVAIL)
      c->ops->lease_revoke(c->impl, id, err); /* best effort */
    if (l->lost)
      l->lost(l->arg, id, reason);
    cx_free(l);
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

int cx_coord_lease_grant(struct cx_coord *c, int64_t ttl_s, int keepalive,
                         cx_coord_lease_lost_fn lost, void *arg, int64_t *lease,
                         int64_t *granted_ttl, char *err)
{
  int64_t id = 0, granted = 0;
  struct ka_lease *l = NULL;

  if (ttl_s < 1 || ttl_s > 86400) {
    cx_err_set(err, "lease ttl: %" PRId64 " not in 1..86400", ttl_s);
    return CX_EPARSE;
  }
  if (keepalive && (l = cx_calloc(1, sizeof *l)) == NULL)
    return -ENOMEM;
  cx_mono sent = cx_mono_now();
  int rc = c->ops->lease_grant(c->impl, ttl_s, &id, &granted, err);
  if (rc != 0) {
    cx_free(l);
    return rc;
  }
  if (keepalive) {
    l->id = id;
    l->ttl = granted;
    l->expires = sent + granted * 1000000LL;
    l->next = sent + granted * 1000000LL / 3;
    l->lost = lost;
    l->arg = arg;
    pthread_mutex_lock(&c->mu);
    if (!c->ka_running) {
      rc = pthread_create(&c->ka_thread, NULL, keepalive_main, c);
      if (rc == 0)
        c->ka_running = 1;
    }
    if (rc == 0) {
      l->next_l = c->leases;
      c->leases = l;
      pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    if (rc != 0) {
      cx_free(l);
      c->ops->lease_revoke(c->impl, id, NULL);
      cx_err_set(err, "keep-alive thread: %s", strerror(rc));
      return -rc;
    }
  }
  *lease = id;
  if (granted_ttl)
    *granted_ttl = granted;
  return 0;
}

/* The kept-alive lease id, or NULL (c->mu held). */
static struct ka_lease *ka_find(struct cx_coord *c, int64_t id)
{
  struct ka_lease *l = c->leases;
  while (l != NULL && l->id != id)
    l = l->next_l;
  return l;
}

int cx_coord_lease_keepalive(struct cx_coord *c, int64_t lease, int64_t *ttl,
                             char *err)
{
  int64_t t = 0;
  cx_mono sent = cx_mono_now();
  int rc = c->ops->lease_keepalive(c->impl, lease, 0, &t, err);
  if (rc == 0 && t <= 0) {
    cx_err_set(err, "lease %" PRId64 " not found", lease);
    rc = CX_ENOTFOUND;
  }
  if (rc == 0) { /* a kept-alive lease is now known held for longer */
    pthread_mutex_lock(&c->mu);
    struct ka_lease *l = ka_find(c, lease);
    if (l != NULL && l->expires < sent + t * 1000000LL)
      l->expires = sent + t * 1000000LL;
    pthread_mutex_unlock(&c->mu);
  }
  if (rc == 0 && ttl)
    *ttl = t;
  return rc;
}

int64_t cx_coord_lease_held_until(struct cx_coord *c, int64_t lease)
{
  pthread_mutex_lock(&c->mu);
  struct ka_lease *l = ka_find(c, lease);
  int64_t until = l != NULL ? l->expires : 0;
  pthread_mutex_unlock(&c->mu);
  return until;
}

int cx_coord_lease_revoke(struct cx_coord *c, int64_t lease, char *err)
{
  pthread_mutex_lock(&c->mu);
  for (struct ka_lease **pp = &c->leases; *pp; pp = &(*pp)->next_l) {
    if ((*pp)->id == lease) {
      struct ka_lease *l = *pp;
      *pp = l->next_l;
      cx_free(l);
      break;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return c->ops->lease_revoke(c->impl, lease, err);
}

/* ---- watches ----------------------------------------------------------- */

int cx_coord_watch(struct cx_coord *c, const void *prefix, size_t prefix_len,
                   int64_t start_rev, const struct cx_coord_watch_cbs *cbs,
                   void *arg, struct cx_coord_watch **out, char *err)
{
  *out = NULL;
  if (cbs == NULL || cbs->event == NULL || cbs->resync == NULL) {
    cx_err_set(err, "watch: event and resync callbacks are required");
    return CX_EPARSE;
  }
  if (start_rev < 0) {
    cx_err_set(err, "watch: negative start revision");
    return CX_EPARSE;
  }
  int rc = check_key(prefix, prefix_len, "watch prefix", err);
  if (rc)
    return rc;
  struct cx_coord_watch *w = cx_calloc(1, sizeof *w);
  if (w == NULL)
    return -ENOMEM;
  struct cx__coord_watch_args a = {prefix, prefix_len, start_rev, *cbs, arg};
  w->ops = c->ops;
  rc = c->ops->watch(c->impl, &a, &w->impl, err);
  if (rc != 0) {
    cx_free(w);
    return rc;
  }
  *out = w;
  return 0;
}

void cx_coord_watch_cancel(struct cx_coord_watch *w)
{
  if (w == NULL)
    return;
  w->ops->watch_cancel(w->impl);
  cx_free(w);
}
