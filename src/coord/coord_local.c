/*
 * coord in-process backend: etcd's data model in memory, for standalone mode
 * and as the test double of the admin and node tests.
 *
 *   - keys: a sorted array of pointers (binary search; O(n) insert, fine for
 *     the thousands of keys of one machine);
 *   - revisions: one counter; each put/delete/txn that changes something
 *     takes the next revision (a txn's changes share one);
 *   - history: every change appended as an event; compaction (explicit, or
 *     automatic past local_history events or 64 MiB) drops events below a
 *     revision, and watches that still needed them get a resync;
 *   - leases: expiry on the monotonic clock, enforced by a clock thread that
 *     deletes the lease's keys like a revoke;
 *   - watches: one thread each, copying batches of events out under the lock
 *     and calling back without it.
 *
 * One mutex guards everything; one condition variable is broadcast on every
 * change (watch threads and the clock thread wait on it).
 */
#include "coord-int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

#define HIST_MAX_BYTES ((size_t)64 << 20)
#define WATCH_BATCH 256

struct lkv {
  char *key, *val;
  size_t klen, vlen;
  int64_t create, mod, version, lease;
};

struct lev {
  int type;
  char *key, *val, *prev;
  size_t klen, vlen, plen;
  int64_t mod, create, version, lease;
};

struct llease {
  int64_t id, ttl;
  cx_mono expires;
  struct llease *next;
};

struct local {
  struct cx__coord_conf conf;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct lkv **kvs;
  size_t n, cap;
  int64_t rev;
  int64_t compact_rev; /* events with mod < compact_rev are gone */
  struct lev *hist;
  size_t hn, hcap, hbytes;
  struct llease *leases;
  int64_t lease_seq;
  int stop;
  pthread_t clock;
};

struct lwatch {
  struct local *l;
  char *prefix;
  size_t plen;
  int64_t next_rev;
  struct cx_coord_watch_cbs cbs;
  void *arg;
  _Atomic int stop;
  pthread_t thread;
};

/* ---- helpers ----------------------------------------------------------- */

static int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
  int r = memcmp(a, b, al < bl ? al : bl);
  if (r != 0)
    return r;
  return al < bl ? -1 : al > bl;
}

static int has_prefix(const char *k, size_t kl, const char *p, size_t pl)
{
  return kl >= pl && memcmp(k, p, pl) == 0;
}

/* First index whose key is >= key. */
static size_t lower_bound(struct local *l, const char *key, size_t klen)
{
  size_t lo = 0, hi = l->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (key_cmp(l->kvs[mid]->key, l->kvs[mid]->klen, key, klen) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static struct lkv *find(struct local *l, const char *key, size_t klen,
                        size_t *pos)
{
  size_t i = lower_bound(l, key, klen);
  if (pos)
    *pos = i;
  if (i < l->n && key_cmp(l->kvs[i]->key, l->kvs[i]->klen, key, klen) == 0)
    return l->kvs[i];
  return NULL;
}

static char *memdup0(const void *p, size_t n)
{
  char *s = cx_malloc(n + 1);
  if (s == NULL)
    return NULL;
  if (n)
    memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

static void ev_free(struct lev *e)
{
  cx_free(e->key);
  cx_free(e->val);
  cx_free(e->prev);
}

static struct llease *lease_find(struct local *l, int64_t id)
{
  for (struct llease *x = l->leases; x; x = x->next)
    if (x->id == id)
      return x;
  return NULL;
}

/* Drops history events below rev. */
static void hist_compact(struct local *l, int64_t rev)
{
  size_t i = 0;
  while (i < l->hn && l->hist[i].mod < rev) {
    l->hbytes -= l->hist[i].klen + l->hist[i].vlen + l->hist[i].plen;
    ev_free(&l->hist[i]);
    i++;
  }
  if (i > 0) {
    memmove(l->hist, l->hist + i, (l->hn - i) * sizeof *l->hist);
    l->hn -= i;
  }
  if (rev > l->compact_rev)
    l->compact_rev = rev;
}

/* Records one change at revision mod. On allocation failure the event is
 * dropped and history compacted past it, so watches resync instead of
 * silently missing it. */
static void hist_add(struct local *l, int type, const struct lkv *kv,
                     const char *prev, size_t plen, int has_prev)
{
  struct lev e = {0};
  e.type = type;
  e.mod = kv->mod;
  e.create = kv->create;
  e.version = kv->version;
  e.lease = kv->lease;
  e.klen = kv->klen;
  e.vlen = type == CX_COORD_EV_PUT ? kv->vlen : 0;
  e.plen = has_prev ? plen : 0;
  e.key = memdup0(kv->key, kv->klen);
  e.val = memdup0(type == CX_COORD_EV_PUT ? kv->val : "", e.vlen);
  e.prev = has_prev ? memdup0(prev, plen) : NULL;
  if (l->hn == l->hcap && e.key && e.val) {
    size_t cap = l->hcap ? l->hcap * 2 : 256;
    struct lev *p = cx_realloc(l->hist, cap * sizeof *p);
    if (p) {
      l->hist = p;
      l->hcap = cap;
    }
  }
  if (e.key == NULL || e.val == NULL || (has_prev && e.prev == NULL) ||
      l->hn == l->hcap) {
    ev_free(&e);
    hist_compact(l, kv->mod + 1);
    return;
  }
  l->hist[l->hn++] = e;
  l->hbytes += e.klen + e.vlen + e.plen;
  if (l->hn > l->conf.local_history || l->hbytes > HIST_MAX_BYTES) {
    /* Keep the newer half, cut at a revision boundary. */
    hist_compact(l, l->hist[l->hn / 2].mod); /* keeps the newest event */
  }
}

/* ---- write primitives (lock held; `rev` is the revision being written) -- */

/* A put's allocations, made before anything changes so that a txn is
 * applied whole or not at all. */
struct prep {
  struct lkv *fresh; /* used if the key does not exist when applied */
  char *val;
};

static void prep_free(struct prep *p)
{
  if (p->fresh)
    cx_free(p->fresh->key);
  cx_free(p->fresh);
  cx_free(p->val);
  p->fresh = NULL;
  p->val = NULL;
}

static int prep_put(const char *key, size_t klen, const char *val, size_t vlen,
                    struct prep *p)
{
  p->val = memdup0(val, vlen);
  p->fresh = cx_calloc(1, sizeof *p->fresh);
  if (p->fresh)
    p->fresh->key = memdup0(key, klen);
  if (p->val == NULL || p->fresh == NULL || p->fresh->key == NULL) {
    prep_free(p);
    return -ENOMEM;
  }
  p->fresh->klen = klen;
  return 0;
}

/* Room for `more` new keys in the sorted array. */
static int reserve_keys(struct local *l, size_t more)
{
  if (l->n + more <= l->cap)
    return 0;
  size_t cap = l->cap ? l->cap : 64;
  while (cap < l->n + more)
    cap *= 2;
  struct lkv **p = cx_realloc(l->kvs, cap * sizeof *p);
  if (p == NULL)
    return -ENOMEM;
  l->kvs = p;
  l->cap = cap;
  return 0;
}

/* Applies a prepared put (takes p's memory); cannot fail once
 * reserve_keys made room. */
static void do_put(struct local *l, int64_t rev, size_t vlen, int64_t lease,
                   struct prep *p)
{
  size_t pos;
  struct lkv *kv = find(l, p->fresh->key, p->fresh->klen, &pos);
  if (kv == NULL) {
    kv = p->fresh;
    p->fresh = NULL;
    kv->create = rev;
    memmove(l->kvs + pos + 1, l->kvs + pos, (l->n - pos) * sizeof *l->kvs);
    l->kvs[pos] = kv;
    l->n++;
  }
  char *old = kv->val;
  size_t oldlen = kv->vlen;
  kv->val = p->val;
  p->val = NULL;
  kv->vlen = vlen;
  kv->mod = rev;
  kv->version++;
  kv->lease = lease;
  hist_add(l, CX_COORD_EV_PUT, kv, old, oldlen, old != NULL);
  cx_free(old);
  prep_free(p);
}

static void do_del_at(struct local *l, int64_t rev, size_t pos)
{
  struct lkv *kv = l->kvs[pos];
  struct lkv tomb = *kv;
  tomb.mod = rev;
  tomb.create = 0;
  tomb.version = 0;
  tomb.lease = 0;
  hist_add(l, CX_COORD_EV_DELETE, &tomb, kv->val, kv->vlen, 1);
  memmove(l->kvs + pos, l->kvs + pos + 1, (l->n - pos - 1) * sizeof *l->kvs);
  l->n--;
  cx_free(kv->key);
  cx_free(kv->val);
  cx_free(kv);
}

static int64_t do_del(struct local *l, int64_t rev, const char *key,
                      size_t klen, int prefix)
{
  int64_t n = 0;
  size_t pos;
  if (!prefix) {
    if (find(l, key, klen, &pos)) {
      do_del_at(l, rev, pos);
      n = 1;
    }
    return n;
  }
  pos = lower_bound(l, key, klen);
  while (pos < l->n &&
         has_prefix(l->kvs[pos]->key, l->kvs[pos]->klen, key, klen)) {
    do_del_at(l, rev, pos);
    n++;
  }
  return n;
}

/* Deletes the lease's keys and the lease itself, at one revision. */
static void lease_drop(struct local *l, struct llease *x)
{
  int64_t rev = l->rev + 1, n = 0;
  for (size_t i = 0; i < l->n;) {
    if (l->kvs[i]->lease == x->id) {
      do_del_at(l, rev, i);
      n++;
    } else {
      i++;
    }
  }
  if (n)
    l->rev = rev;
  for (struct llease **pp = &l->leases; *pp; pp = &(*pp)->next) {
    if (*pp == x) {
      *pp = x->next;
      break;
    }
  }
  cx_free(x);
  pthread_cond_broadcast(&l->cv);
}

/* ---- clock thread ------------------------------------------------------ */

static void *clock_main(void *arg)
{
  struct local *l = arg;
  pthread_mutex_lock(&l->mu);
  while (!l->stop) {
    cx_mono now = cx_mono_now();
    cx_mono wake = now + 1000000;
    struct llease *x = l->leases;
    while (x) {
      if (x->expires <= now) {
        struct llease *nx = x->next;
        lease_drop(l, x);
        x = nx;
        continue;
      }
      if (x->expires < wake)
        wake = x->expires;
      x = x->next;
    }
    cx_cond_wait_until(&l->cv, &l->mu, wake);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* ---- ops --------------------------------------------------------------- */

static int local_open(const struct cx__coord_conf *conf, void **impl, char *err)
{
  struct local *l = cx_calloc(1, sizeof *l);
  if (l == NULL)
    return -ENOMEM;
  l->conf = *conf;
  l->rev = 1; /* like a fresh etcd */
  l->compact_rev = 0;
  l->lease_seq = 0x1c0ffee000LL;
  pthread_mutex_init(&l->mu, NULL);
  cx_cond_init_mono(&l->cv);
  int rc = pthread_create(&l->clock, NULL, clock_main, l);
  if (rc != 0) {
    cx_err_set(err, "clock thread: %s", strerror(rc));
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    cx_free(l);
    return -rc;
  }
  *impl = l;
  return 0;
}

static void local_close(void *impl)
{
  struct local *l = impl;
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  pthread_join(l->clock, NULL);
  for (size_t i = 0; i < l->n; i++) {
    cx_free(l->kvs[i]->key);
    cx_free(l->kvs[i]->val);
    cx_free(l->kvs[i]);
  }
  cx_free(l->kvs);
  for (size_t i = 0; i < l->hn; i++)
    ev_free(&l->hist[i]);
  cx_free(l->hist);
  while (l->leases) {
    struct llease *x = l->leases;
    l->leases = x->next;
    cx_free(x);
  }
  pthread_cond_destroy(&l->cv);
  pthread_mutex_destroy(&l->mu);
  cx_free(l);
}

/* Copies the prefix (or single key) into out; lock held. */
static int snapshot(struct local *l, const char *key, size_t klen, int prefix,
                    struct cx_coord_kvs *out)
{
  out->revision = l->rev;
  size_t pos = lower_bound(l, key, klen);
  for (; pos < l->n; pos++) {
    struct lkv *kv = l->kvs[pos];
    if (prefix ? !has_prefix(kv->key, kv->klen, key, klen)
               : key_cmp(kv->key, kv->klen, key, klen) != 0)
      break;
    int rc = cx__coord_kvs_push(out, kv->key, kv->klen, kv->val, kv->vlen,
                                kv->create, kv->mod, kv->version, kv->lease);
    if (rc)
      return rc;
  }
  return 0;
}

static int local_range(void *impl, const void *key, size_t key_len, int prefix,
                       struct cx_coord_kvs *out, char *err)
{
  struct local *l = impl;
  (void)err;
  pthread_mutex_lock(&l->mu);
  int rc = snapshot(l, key, key_len, prefix, out);
  pthread_mutex_unlock(&l->mu);
  return rc;
}

static int local_put(void *impl, const void *key, size_t key_len,
                     const void *value, size_t value_len, int64_t lease,
                     int64_t *rev, char *err)
{
  struct local *l = impl;
  int rc = 0;
  pthread_mutex_lock(&l->mu);
  if (lease && lease_find(l, lease) == NULL) {
    cx_err_set(err, "lease %" PRId64 " not found", lease);
    rc = CX_ENOTFOUND;
  } else {
    struct prep p;
    rc = prep_put(key, key_len, value, value_len, &p);
    if (rc == 0 && (rc = reserve_keys(l, 1)) != 0)
      prep_free(&p);
    if (rc == 0) {
      do_put(l, l->rev + 1, value_len, lease, &p);
      l->rev++;
      pthread_cond_broadcast(&l->cv);
    }
  }
  if (rev)
    *rev = l->rev;
  pthread_mutex_unlock(&l->mu);
  return rc;
}

static int local_del(void *impl, const void *key, size_t key_len, int prefix,
                     int64_t *deleted, int64_t *rev, char *err)
{
  struct local *l = impl;
  (void)err;
  pthread_mutex_lock(&l->mu);
  int64_t n = do_del(l, l->rev + 1, key, key_len, prefix);
  if (n) {
    l->rev++;
    pthread_cond_broadcast(&l->cv);
  }
  *deleted = n;
  *rev = l->rev;
  pthread_mutex_unlock(&l->mu);
  return 0;
}

static int local_compact(void *impl, int64_t rev, char *err)
{
  struct local *l = impl;
  int rc = 0;
  pthread_mutex_lock(&l->mu);
  if (rev <= l->compact_rev) {
    cx_err_set(err, "revision %" PRId64 " already compacted", rev);
    rc = CX_ECOMPACTED;
  } else if (rev > l->rev) {
    cx_err_set(err, "revision %" PRId64 " is in the future", rev);
    rc = CX_EPARSE;
  } else {
    hist_compact(l, rev);
    pthread_cond_broadcast(&l->cv);
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

static int cmp_holds(struct local *l, const struct cx_coord_cmp *m)
{
  struct lkv *kv = find(l, m->key, m->key_len, NULL);
  int r;
  if (m->target == CX_COORD_VALUE) {
    if (kv == NULL)
      return 0; /* etcd: a value compare on a missing key is false */
    r = key_cmp(kv->val, kv->vlen, m->value ? m->value : "", m->value_len);
  } else {
    int64_t have = 0;
    if (kv)
      have = m->target == CX_COORD_CREATE ? kv->create
             : m->target == CX_COORD_MOD  ? kv->mod
                                          : kv->version;
    r = have < m->num ? -1 : have > m->num;
  }
  switch (m->op) {
  case CX_COORD_EQUAL:
    return r == 0;
  case CX_COORD_NOT_EQUAL:
    return r != 0;
  case CX_COORD_LESS:
    return r < 0;
  case CX_COORD_GREATER:
    return r > 0;
  }
  return 0;
}

static int local_txn(void *impl, const struct cx_coord_txn *t, int *succeeded,
                     int64_t *rev, char *err)
{
  struct local *l = impl;
  int rc = 0, ok = 1;
  pthread_mutex_lock(&l->mu);
  for (size_t i = 0; i < t->ncmps && ok; i++)
    ok = cmp_holds(l, &t->cmps[i]);
  const struct cx_coord_op *ops = ok ? t->success : t->failure;
  size_t n = ok ? t->nsuccess : t->nfailure;
  for (size_t i = 0; i < n; i++) {
    if (ops[i].type == CX_COORD_OP_PUT && ops[i].lease &&
        lease_find(l, ops[i].lease) == NULL) {
      cx_err_set(err, "txn op %zu: lease %" PRId64 " not found", i,
                 ops[i].lease);
      rc = CX_ENOTFOUND;
      goto out;
    }
  }
  /* Allocate everything first: past this point nothing can fail. */
  struct prep preps[CX_COORD_MAX_TXN_OPS] = {{0}};
  size_t nputs = 0;
  for (size_t i = 0; i < n && rc == 0; i++)
    if (ops[i].type == CX_COORD_OP_PUT) {
      rc =
          prep_put(ops[i].key, ops[i].key_len, ops[i].value ? ops[i].value : "",
                   ops[i].value_len, &preps[i]);
      nputs++;
    }
  if (rc == 0)
    rc = reserve_keys(l, nputs);
  if (rc != 0) {
    for (size_t i = 0; i < n; i++)
      prep_free(&preps[i]);
    goto out;
  }
  int64_t wrev = l->rev + 1, changed = 0;
  for (size_t i = 0; i < n; i++) {
    const struct cx_coord_op *o = &ops[i];
    if (o->type == CX_COORD_OP_PUT) {
      do_put(l, wrev, o->value_len, o->lease, &preps[i]);
      changed++;
    } else {
      changed += do_del(l, wrev, o->key, o->key_len,
                        o->type == CX_COORD_OP_DELETE_PREFIX);
    }
  }
  if (changed) {
    l->rev = wrev;
    pthread_cond_broadcast(&l->cv);
  }
  *succeeded = ok;
out:
  *rev = l->rev;
  pthread_mutex_unlock(&l->mu);
  return rc;
}

static int local_lease_grant(void *impl, int64_t ttl, int64_t *id,
                             int64_t *granted, char *err)
{
  struct local *l = impl;
  (void)err;
  struct llease *x = cx_calloc(1, sizeof *x);
  if (x == NULL)
    return -ENOMEM;
  pthread_mutex_lock(&l->mu);
  x->id = ++l->lease_seq;
  x->ttl = ttl < 2 ? 2 : ttl; /* etcd raises a TTL of 1 to 2 */
  x->expires = cx_mono_now() + x->ttl * 1000000LL;
  x->next = l->leases;
  l->leases = x;
  *id = x->id;
  *granted = x->ttl;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  return 0;
}

static int local_lease_keepalive(void *impl, int64_t id, int timeout_ms,
                                 int64_t *ttl, char *err)
{
  (void)timeout_ms;
  struct local *l = impl;
  int rc = 0;
  pthread_mutex_lock(&l->mu);
  struct llease *x = lease_find(l, id);
  if (x == NULL || x->expires <= cx_mono_now()) {
    cx_err_set(err, "lease %" PRId64 " not found", id);
    rc = CX_ENOTFOUND;
  } else {
    x->expires = cx_mono_now() + x->ttl * 1000000LL;
    *ttl = x->ttl;
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

static int local_lease_revoke(void *impl, int64_t id, char *err)
{
  struct local *l = impl;
  int rc = 0;
  pthread_mutex_lock(&l->mu);
  struct llease *x = lease_find(l, id);
  if (x == NULL) {
    cx_err_set(err, "lease %" PRId64 " not found", id);
    rc = CX_ENOTFOUND;
  } else {
    lease_drop(l, x);
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

/* ---- watches ----------------------------------------------------------- */

/* First history index with mod >= rev. */
static size_t hist_from(struct local *l, int64_t rev)
{
  size_t lo = 0, hi = l->hn;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (l->hist[mid].mod < rev)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int ev_copy(struct lev *dst, const struct lev *src)
{
  *dst = *src;
  dst->key = memdup0(src->key, src->klen);
  dst->val = memdup0(src->val, src->vlen);
  dst->prev = src->prev ? memdup0(src->prev, src->plen) : NULL;
  if (dst->key == NULL || dst->val == NULL || (src->prev && !dst->prev)) {
    ev_free(dst);
    return -ENOMEM;
  }
  return 0;
}

/* Copies the events of whole revisions from w->next_rev on (about
 * WATCH_BATCH of them) into *batch; *upto gets the last revision scanned.
 * Lock held. 0 or -ENOMEM (batch emptied). */
static int collect(struct lwatch *w, struct lev **batch, size_t *cap,
                   size_t *nb, int64_t *upto)
{
  struct local *l = w->l;
  *upto = l->rev;
  for (size_t i = hist_from(l, w->next_rev); i < l->hn; i++) {
    const struct lev *e = &l->hist[i];
    if (*nb >= WATCH_BATCH && e->mod != (*batch)[*nb - 1].mod) {
      *upto = e->mod - 1;
      break;
    }
    if (!has_prefix(e->key, e->klen, w->prefix, w->plen))
      continue;
    if (*nb == *cap) {
      size_t nc = *cap ? *cap * 2 : 64;
      struct lev *p = cx_realloc(*batch, nc * sizeof *p);
      if (p == NULL)
        goto oom;
      *batch = p;
      *cap = nc;
    }
    if (ev_copy(&(*batch)[*nb], e) != 0)
      goto oom;
    (*nb)++;
  }
  return 0;
oom:
  while (*nb > 0)
    ev_free(&(*batch)[--*nb]);
  return -ENOMEM;
}

static void deliver(struct lwatch *w, struct lev *e)
{
  struct cx_coord_event ev = {0};
  ev.type = e->type;
  ev.key = e->key;
  ev.key_len = e->klen;
  ev.value = e->val;
  ev.value_len = e->vlen;
  ev.prev_value = e->prev;
  ev.prev_value_len = e->plen;
  ev.mod_rev = e->mod;
  ev.create_rev = e->create;
  ev.version = e->version;
  ev.lease = e->lease;
  w->cbs.event(w->arg, &ev);
}

static void *watch_main(void *arg)
{
  struct lwatch *w = arg;
  struct local *l = w->l;
  struct lev *batch = NULL;
  size_t cap = 0;

  pthread_mutex_lock(&l->mu);
  while (!w->stop) {
    if (w->next_rev < l->compact_rev) {
      struct cx_coord_kvs kvs = {0};
      int rc = snapshot(l, w->prefix, w->plen, 1, &kvs);
      pthread_mutex_unlock(&l->mu);
      if (rc == 0) {
        w->next_rev = kvs.revision + 1;
        w->cbs.resync(w->arg, &kvs);
      } else {
        cx_sleep_us(100000);
      }
      cx_coord_kvs_free(&kvs);
      pthread_mutex_lock(&l->mu);
      continue;
    }
    size_t nb = 0;
    int64_t upto = 0;
    if (collect(w, &batch, &cap, &nb, &upto) != 0) {
      pthread_mutex_unlock(&l->mu);
      cx_sleep_us(100000);
      pthread_mutex_lock(&l->mu);
      continue;
    }
    if (nb == 0) {
      if (upto + 1 > w->next_rev) /* never back: start_rev may be ahead */
        w->next_rev = upto + 1;
      pthread_cond_wait(&l->cv, &l->mu);
      continue;
    }
    pthread_mutex_unlock(&l->mu);
    for (size_t k = 0; k < nb; k++) {
      if (!w->stop)
        deliver(w, &batch[k]);
      ev_free(&batch[k]);
    }
    if (upto + 1 > w->next_rev)
      w->next_rev = upto + 1;
    pthread_mutex_lock(&l->mu);
  }
  pthread_mutex_unlock(&l->mu);
  cx_free(batch);
  return NULL;
}

static int local_watch(void *impl, const struct cx__coord_watch_args *a,
                       void **out, char *err)
{
  struct local *l = impl;
  struct lwatch *w = cx_calloc(1, sizeof *w);
  if (w == NULL || (w->prefix = memdup0(a->prefix, a->prefix_len)) == NULL) {
    cx_free(w);
    return -ENOMEM;
  }
  w->l = l;
  w->plen = a->prefix_len;
  w->cbs = a->cbs;
  w->arg = a->arg;
  pthread_mutex_lock(&l->mu);
  w->next_rev = a->start_rev ? a->start_rev : l->rev + 1;
  pthread_mutex_unlock(&l->mu);
  int rc = pthread_create(&w->thread, NULL, watch_main, w);
  if (rc != 0) {
    cx_err_set(err, "watch thread: %s", strerror(rc));
    cx_free(w->prefix);
    cx_free(w);
    return -rc;
  }
  *out = w;
  return 0;
}

static void local_watch_cancel(void *impl)
{
  struct lwatch *w = impl;
  struct local *l = w->l;
  pthread_mutex_lock(&l->mu);
  w->stop = 1;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  pthread_join(w->thread, NULL);
  cx_free(w->prefix);
  cx_free(w);
}

const struct cx_coord_ops cx__coord_local_ops = {
    .name = "local",
    .open = local_open,
    .close = local_close,
    .range = local_range,
    .put = local_put,
    .del = local_del,
    .txn = local_txn,
    .compact = local_compact,
    .lease_grant = local_lease_grant,
    .lease_keepalive = local_lease_keepalive,
    .lease_revoke = local_lease_revoke,
    .watch = local_watch,
    .watch_cancel = local_watch_cancel,
};
