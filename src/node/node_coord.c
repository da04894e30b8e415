/*
 * node/node_coord: the node's side of SPEC §7: registration under a
 * kept-alive lease (node key + cronix_node row), the watches of its job,
 * once and kill prefixes, and the maintenance thread that re-registers and
 * re-lists after a lost lease (fail closed until then), retries the node row
 * and flushes the spool.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coord/coord.h"
#include "node/node-int.h"
#include "store/store.h"

#define LOGC "node"

/* The watched prefixes: the key kinds under <prefix>/<kind>/<uuid>/, and
 * the broadcast jobs under <prefix>/bcast/ (every node's). */
enum { W_JOB, W_ONCE, W_KILL, W_BCAST };
static const enum cx_key_kind w_kind[] = {CX_KEY_JOB, CX_KEY_ONCE, CX_KEY_KILL,
                                          CX_KEY_BCAST};

static int prefix_of(const struct cx_noded *n, int kind, char *buf, size_t cap)
{
  size_t len = cx_key_dir(buf, cap, n->prefix, w_kind[kind],
                          kind == W_BCAST ? NULL : n->uuid);
  return len > 0 ? (int)len : -1;
}

int64_t cx__noded_key_id(const struct cx_noded *n, enum cx_key_kind kind,
                         const char *key, size_t key_len)
{
  struct cx_key k;
  if (cx_key_parse(n->prefix, key, key_len, &k) != 0 || k.kind != kind ||
      strcmp(k.uuid, n->uuid) != 0)
    return 0;
  return k.id;
}

static void on_lease_lost(void *arg, int64_t lease, int reason)
{
  struct cx_noded *n = arg;
  if (atomic_load(&n->lease) != lease || atomic_exchange(&n->fenced, 1))
    return;
  CX_LOG(CX_LOG_ERROR, LOGC,
         "lease %llx lost (%s): no new runs until re-registered",
         (unsigned long long)lease, cx_strerror(reason));
  pthread_mutex_lock(&n->mu);
  n->st.lease_losses++;
  pthread_cond_broadcast(&n->mcond);
  pthread_mutex_unlock(&n->mu);
}

int cx__noded_lease_held(struct cx_noded *n)
{
  char err[CX_ERR_LEN] = "";
  int64_t lease = atomic_load(&n->lease);
  if (atomic_load(&n->fenced) || lease == 0)
    return 0;
  if (cx_mono_now() < cx_coord_lease_held_until(n->coord, lease))
    return 1;
  /* Past the last renewal's TTL: the keep-alive thread is late (a busy
   * machine) or the process was stopped. Ask etcd rather than guess. */
  pthread_mutex_lock(&n->lease_mu);
  int held = !atomic_load(&n->fenced) && atomic_load(&n->lease) == lease;
  if (held && cx_mono_now() >= cx_coord_lease_held_until(n->coord, lease)) {
    int rc = cx_coord_lease_keepalive(n->coord, lease, NULL, err);
    held = rc == 0;
    if (rc == CX_ENOTFOUND)
      on_lease_lost(n, lease, CX_ELEASE);
    else if (rc != 0)
      CX_LOG(CX_LOG_WARN, LOGC, "lease %llx not confirmed: %s",
             (unsigned long long)lease, err);
  }
  pthread_mutex_unlock(&n->lease_mu);
  return held;
}

static int row_upsert(struct cx_noded *n, int status)
{
  char err[CX_ERR_LEN];
  struct cx_node row = {
      .uuid = n->uuid,
      .hostname = n->hostname,
      .ip = n->ip,
      .pid = (int)getpid(),
      .version = n->version,
      .status = status,
      .up = cx_wall_s(),
  };
  int rc = cx_store_node_upsert(n->store, &row, err);
  if (rc != 0)
    CX_LOG(CX_LOG_WARN, LOGC, "node row: %s (retrying)", err);
  return rc;
}

/* A drained node (/node/drain puts <prefix>/drain/<uuid>) records its cron
 * fires as skipped instead of running them. Read here, about once a second,
 * rather than watched: one more key read per node and second, and an
 * unreachable coordination service leaves the last state. */
static void drain_poll(struct cx_noded *n)
{
  char key[CX_KEY_LEN];
  struct cx_coord_kvs kvs;
  size_t kl =
      cx_key_build(key, sizeof key, n->prefix, CX_KEY_DRAIN, n->uuid, 0, NULL);
  int rc = kl ? cx_coord_get(n->coord, key, kl, &kvs, NULL) : CX_ENOTFOUND;
  if (rc == 0)
    cx_coord_kvs_free(&kvs);
  if (rc != 0 && rc != CX_ENOTFOUND)
    return;
  if (atomic_exchange(&n->drained, rc == 0) != (rc == 0))
    CX_LOG(CX_LOG_INFO, LOGC, "%s: cron fires are %s",
           rc == 0 ? "drained" : "undrained",
           rc == 0 ? "recorded as skipped" : "run again");
}

int cx__noded_register(struct cx_noded *n, char *err)
{
  int64_t lease = 0;
  char key[CX_KEY_LEN];
  int rc = cx_coord_lease_grant(n->coord, n->ttl, 1, on_lease_lost, n, &lease,
                                NULL, err);
  if (rc != 0)
    return rc;
  atomic_store(&n->lease, lease);
  size_t kl =
      cx_key_build(key, sizeof key, n->prefix, CX_KEY_NODE, n->uuid, 0, NULL);
  json_t *o =
      json_pack("{s:s,s:s,s:s,s:I,s:s,s:I,s:{}}", "uuid", n->uuid, "hostname",
                n->hostname, "ip", n->ip, "pid", (json_int_t)getpid(),
                "version", n->version, "up", (json_int_t)cx_wall_s(), "labels");
  if (o && n->live_url[0] &&
      json_object_set_new(o, "live", json_string(n->live_url)) != 0) {
    json_decref(o);
    o = NULL;
  }
  /* The admins place jobs by these (a job's node_selector). */
  json_t *lo = o ? json_object_get(o, "labels") : NULL;
  for (size_t i = 0; lo != NULL && i < n->labels.n; i++)
    if (json_object_set_new(lo, n->labels.v[i].key,
                            json_string(n->labels.v[i].value)) != 0)
      lo = NULL;
  char *val = o && lo ? json_dumps(o, JSON_COMPACT) : NULL;
  if (o)
    json_decref(o);
  if (val == NULL)
    return -ENOMEM;
  rc = cx_coord_put(n->coord, key, kl, val, strlen(val), lease, NULL, err);
  free(val); /* json_dumps allocates with jansson's allocator */
  if (rc != 0)
    return rc;
  drain_poll(n); /* before the first fire after (re)start */
  if (!n->row_ok)
    n->row_ok = row_upsert(n, CX_NODE_UP) == 0;
  else
    cx_store_node_set_status(n->store, n->uuid, CX_NODE_UP, cx_wall_s(), NULL);
  return 0;
}

void cx__noded_unregister(struct cx_noded *n)
{
  char err[CX_ERR_LEN];
  if (cx_store_node_set_status(n->store, n->uuid, CX_NODE_DOWN, cx_wall_s(),
                               err) != 0)
    CX_LOG(CX_LOG_WARN, LOGC, "marking the node down: %s", err);
  int64_t lease = atomic_exchange(&n->lease, 0);
  if (lease != 0 && cx_coord_lease_revoke(n->coord, lease, err) != 0)
    CX_LOG(CX_LOG_WARN, LOGC, "revoking the lease: %s", err);
}

/* ---- broadcast shards ---------------------------------------------------- */

static int cmp_uuid(const void *x, const void *y)
{
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The labels of a node key's value ({"labels":{"k":"v"}}). */
static void key_labels(const struct cx_coord_kv *kv, struct cx_labels *l)
{
  json_t *o = json_loadb(kv->value, kv->value_len, 0, NULL);
  const char *k;
  json_t *v;
  memset(l, 0, sizeof *l);
  json_object_foreach(json_object_get(o, "labels"), k, v)
  {
    const char *s = json_string_value(v);
    if (l->n == CX_LABELS_MAX || s == NULL || strlen(k) > CX_LABEL_MAX ||
        strlen(s) > CX_LABEL_MAX)
      continue;
    snprintf(l->v[l->n].key, sizeof l->v[l->n].key, "%s", k);
    snprintf(l->v[l->n].value, sizeof l->v[l->n].value, "%s", s);
    l->n++;
  }
  json_decref(o);
}

int cx__noded_shard(struct cx_noded *n, const struct cx_job *j, int *index,
                    int *total, char *err)
{
  char p[CX_KEY_LEN];
  struct cx_coord_kvs nodes = {0}, drains = {0};
  size_t pl = cx_key_dir(p, sizeof p, n->prefix, CX_KEY_NODE, NULL);
  int rc = pl ? cx_coord_range(n->coord, p, pl, &nodes, err) : CX_ETOOBIG;
  if (rc == 0) {
    pl = cx_key_dir(p, sizeof p, n->prefix, CX_KEY_DRAIN, NULL);
    rc = pl ? cx_coord_range(n->coord, p, pl, &drains, err) : CX_ETOOBIG;
  }
  const char **v = rc == 0 ? cx_calloc(nodes.n + 1, sizeof *v) : NULL;
  if (rc == 0 && v == NULL)
    rc = -ENOMEM;
  size_t nv = 0;
  for (size_t i = 0; rc == 0 && i < nodes.n; i++) {
    struct cx_key k, d;
    struct cx_labels l;
    const struct cx_coord_kv *kv = &nodes.kvs[i];
    if (cx_key_parse(n->prefix, kv->key, kv->key_len, &k) != 0 ||
        k.kind != CX_KEY_NODE || strcmp(k.uuid, n->uuid) == 0)
      continue;
    int drained = 0;
    for (size_t m = 0; m < drains.n && !drained; m++)
      drained = cx_key_parse(n->prefix, drains.kvs[m].key,
                             drains.kvs[m].key_len, &d) == 0 &&
                strcmp(d.uuid, k.uuid) == 0;
    key_labels(kv, &l);
    if (!drained && cx_selector_match(j->node_selector, &l))
      v[nv++] = kv->key + (kv->key_len - strlen(k.uuid)); /* the uuid */
  }
  if (rc == 0) {
    v[nv++] = n->uuid; /* it runs the fire, so it is in the set */
    qsort(v, nv, sizeof *v, cmp_uuid);
    for (size_t i = 0; i < nv; i++)
      if (v[i] == n->uuid)
        *index = (int)i;
    *total = (int)nv;
  }
  cx_free(v);
  cx_coord_kvs_free(&nodes);
  cx_coord_kvs_free(&drains);
  return rc;
}

/* ---- watches ------------------------------------------------------------- */

static void job_event(void *arg, const struct cx_coord_event *ev)
{
  struct cx_noded *n = arg;
  int64_t id = cx__noded_key_id(n, CX_KEY_JOB, ev->key, ev->key_len);
  if (id == 0) {
    CX_LOG(CX_LOG_WARN, LOGC, "ignoring job key %.*s", (int)ev->key_len,
           ev->key);
    return;
  }
  if (ev->type == CX_COORD_EV_PUT)
    cx__noded_job_put(n, id, ev->value, ev->value_len, 0);
  else
    cx__noded_job_del(n, id, 0);
}

static void job_resync(void *arg, const struct cx_coord_kvs *kvs)
{
  struct cx_noded *n = arg;
  CX_LOG(CX_LOG_INFO, LOGC, "job watch resync: %zu jobs", kvs->n);
  cx__noded_rebuild(n, kvs, 0, 0);
}

static void bcast_event(void *arg, const struct cx_coord_event *ev)
{
  struct cx_noded *n = arg;
  struct cx_key k;
  if (cx_key_parse(n->prefix, ev->key, ev->key_len, &k) != 0 ||
      k.kind != CX_KEY_BCAST) {
    CX_LOG(CX_LOG_WARN, LOGC, "ignoring broadcast key %.*s", (int)ev->key_len,
           ev->key);
    return;
  }
  if (ev->type == CX_COORD_EV_PUT)
    cx__noded_bcast_put(n, k.id, ev->value, ev->value_len, 0);
  else
    cx__noded_job_del(n, k.id, 1);
}

static void bcast_resync(void *arg, const struct cx_coord_kvs *kvs)
{
  struct cx_noded *n = arg;
  CX_LOG(CX_LOG_INFO, LOGC, "broadcast watch resync: %zu jobs", kvs->n);
  cx__noded_rebuild(n, kvs, 0, 1);
}

/* A once key for a job this node does not hold: /job/once may name any
 * alive node (SPEC §4), so the job is read from the store (the truth; the
 * admin read the same row to write the key) and run here once. */
static int once_from_store(struct cx_noded *n, int64_t id)
{
  char err[CX_ERR_LEN] = "";
  struct cx_job j;
  memset(&j, 0, sizeof j);
  int rc = cx_store_job_find(n->store, id, &j, err);
  if (rc == 0)
    rc = cx__noded_once_job(n, &j);
  else
    CX_LOG(CX_LOG_WARN, LOGC, "once for job %lld: reading it: %s",
           (long long)id, err);
  cx_job_clear(&j);
  return rc;
}

/* A once key can arrive before its job: the three prefixes are separate
 * watches, and `/job/add` followed at once by `/job/once` writes the job key
 * a revision earlier. Read the job's key now instead of dropping the
 * request; the job watch delivers the same PUT later, which is harmless.
 * No key at all: the job is another node's (once_from_store). */
static int once_unseen_job(struct cx_noded *n, int64_t id)
{
  char key[CX_KEY_LEN], err[CX_ERR_LEN];
  struct cx_coord_kvs kvs = {0};
  size_t kl =
      cx_key_build(key, sizeof key, n->prefix, CX_KEY_JOB, n->uuid, id, NULL);
  if (kl == 0)
    return CX_ENOTFOUND;
  int rc = cx_coord_get(n->coord, key, kl, &kvs, err);
  if (rc == 0 && kvs.n == 1) {
    cx__noded_job_put(n, id, kvs.kvs[0].value, kvs.kvs[0].value_len, 0);
    rc = cx__noded_once(n, id);
  } else if (rc == 0 || rc == CX_ENOTFOUND) {
    rc = once_from_store(n, id);
  }
  cx_coord_kvs_free(&kvs);
  return rc;
}

static void once_kill_one(struct cx_noded *n, int kind, const char *key,
                          size_t key_len)
{
  int64_t id = cx__noded_key_id(n, w_kind[kind], key, key_len);
  if (atomic_load(&n->fenced))
    return; /* acted on after the re-list */
  if (id == 0) {
    CX_LOG(CX_LOG_WARN, LOGC, "ignoring key %.*s", (int)key_len, key);
  } else if (kind == W_ONCE) {
    int rc = cx__noded_once(n, id);
    if (rc == CX_ENOTFOUND)
      rc = once_unseen_job(n, id);
    if (rc != 0)
      CX_LOG(CX_LOG_WARN, LOGC, "once for job %lld: %s", (long long)id,
             cx_strerror(rc));
  } else {
    int k = cx__noded_kill(n, id);
    CX_LOG(CX_LOG_INFO, LOGC, "kill job %lld: %d runs", (long long)id, k);
  }
  cx_coord_delete(n->coord, key, key_len, NULL, NULL, NULL);
}

static void once_event(void *arg, const struct cx_coord_event *ev)
{
  if (ev->type == CX_COORD_EV_PUT)
    once_kill_one(arg, W_ONCE, ev->key, ev->key_len);
}

static void kill_event(void *arg, const struct cx_coord_event *ev)
{
  if (ev->type == CX_COORD_EV_PUT)
    once_kill_one(arg, W_KILL, ev->key, ev->key_len);
}

static void once_resync(void *arg, const struct cx_coord_kvs *kvs)
{
  for (size_t i = 0; i < kvs->n; i++)
    once_kill_one(arg, W_ONCE, kvs->kvs[i].key, kvs->kvs[i].key_len);
}

static void kill_resync(void *arg, const struct cx_coord_kvs *kvs)
{
  for (size_t i = 0; i < kvs->n; i++)
    once_kill_one(arg, W_KILL, kvs->kvs[i].key, kvs->kvs[i].key_len);
}

static int watch_one(struct cx_noded *n, int kind, int arriving,
                     struct cx_coord_watch **w, char *err)
{
  static const struct cx_coord_watch_cbs cbs[] = {
      {.event = job_event, .resync = job_resync},
      {.event = once_event, .resync = once_resync},
      {.event = kill_event, .resync = kill_resync},
      {.event = bcast_event, .resync = bcast_resync},
  };
  char p[CX_KEY_LEN];
  struct cx_coord_kvs kvs;
  int pl = prefix_of(n, kind, p, sizeof p);
  if (pl < 0) {
    cx_err_set(err, "etcd prefix too long");
    return CX_ETOOBIG;
  }
  int rc = cx_coord_range(n->coord, p, (size_t)pl, &kvs, err);
  if (rc != 0)
    return rc;
  if (kind == W_JOB || kind == W_BCAST) {
    cx__noded_rebuild(n, &kvs, arriving, kind == W_BCAST);
    if (n->sched_started == 0) {
      /* before the scheduler runs, nothing to do */
    }
  } else {
    for (size_t i = 0; i < kvs.n; i++)
      once_kill_one(n, kind, kvs.kvs[i].key, kvs.kvs[i].key_len);
  }
  int64_t rev = kvs.revision + 1;
  cx_coord_kvs_free(&kvs);
  return cx_coord_watch(n->coord, p, (size_t)pl, rev, &cbs[kind], n, w, err);
}

int cx__noded_watch_all(struct cx_noded *n, int arriving, char *err)
{
  int rc;
  if ((rc = watch_one(n, W_JOB, arriving, &n->wjob, err)) != 0 ||
      (rc = watch_one(n, W_ONCE, 0, &n->wonce, err)) != 0 ||
      (rc = watch_one(n, W_BCAST, arriving, &n->wbcast, err)) != 0 ||
      (rc = watch_one(n, W_KILL, 0, &n->wkill, err)) != 0)
    cx__noded_unwatch(n);
  return rc;
}

void cx__noded_unwatch(struct cx_noded *n)
{
  cx_coord_watch_cancel(n->wjob);
  cx_coord_watch_cancel(n->wonce);
  cx_coord_watch_cancel(n->wkill);
  cx_coord_watch_cancel(n->wbcast);
  n->wjob = n->wonce = n->wkill = n->wbcast = NULL;
}

/* ---- maintenance --------------------------------------------------------- */

static void refence(struct cx_noded *n)
{
  char err[CX_ERR_LEN] = "";
  cx__noded_unwatch(n);
  int64_t old = atomic_exchange(&n->lease, 0);
  if (old != 0)
    cx_coord_lease_revoke(n->coord, old, NULL);
  int rc = cx__noded_register(n, err);
  if (rc == 0) {
    /* Runs may start again before the re-list so that the misfire pass of
     * the re-list sees the node unfenced. */
    atomic_store(&n->fenced, 0);
    rc = cx__noded_watch_all(n, 1, err);
    if (rc != 0)
      atomic_store(&n->fenced, 1);
  }
  if (rc != 0) {
    CX_LOG(CX_LOG_WARN, LOGC, "re-registering: %s (retrying)", err);
    return;
  }
  CX_LOG(CX_LOG_INFO, LOGC, "re-registered and re-listed after a lost lease");
}

void *cx__noded_maint_main(void *arg)
{
  struct cx_noded *n = arg;
  for (;;) {
    pthread_mutex_lock(&n->mu);
    if (!n->maint_quit && !atomic_load(&n->fenced)) {
      cx_cond_wait_ms(&n->mcond, &n->mu, 1000);
    }
    int quit = n->maint_quit;
    pthread_mutex_unlock(&n->mu);
    if (quit)
      break;
    if (atomic_load(&n->fenced)) {
      refence(n);
      if (atomic_load(&n->fenced)) {
        pthread_mutex_lock(&n->mu);
        if (!n->maint_quit) {
          cx_cond_wait_ms(&n->mcond, &n->mu, 1000);
        }
        pthread_mutex_unlock(&n->mu);
      }
    }
    if (!n->row_ok)
      n->row_ok = row_upsert(n, CX_NODE_UP) == 0;
    if (!atomic_load(&n->fenced))
      drain_poll(n);
    cx_noded_flush(n);
    cx__noded_gaps_retry(n);
  }
  return NULL;
}
