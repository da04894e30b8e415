/*
 * node: the execution node daemon (SPEC §9): identity, registration under a
 * lease, the job table fed by etcd watches, the scheduler thread, the
 * worker pool that claims, runs, retries and records fires, once/kill keys,
 * and shutdown. The spool (store down) lives in spool.c; see node.h for
 * the guarantees.
 *
 * Locking: n->mu guards the job table, the run queue, the active list, the
 * flags and the counters. cx_sched has its own lock and never calls back
 * while holding it, so calling cx_sched_put under n->mu is safe. No store,
 * coord or exec call is made under n->mu (cx_exec_kill excepted: it only
 * writes an eventfd).
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "coord/coord.h"
#include "cron/cron.h"
#include "job/job.h"
#include "node/exec.h"
#include "node/node-int.h"
#include "node/node.h"
#include "notify/notify.h"
#include "sched/sched.h"
#include "store/store.h"

#define LOGC "node"

/* ---- job definitions ---------------------------------------------------- */

static void def_unref(struct cx__ndef *d)
{
  if (d == NULL || atomic_fetch_sub(&d->refs, 1) != 1)
    return;
  cx_job_clear(&d->job);
  cx_cron_free(d->cron);
  cx_free(d->env);
  cx_free(d->hdr);
  if (d->envj)
    json_decref(d->envj);
  if (d->hdrj)
    json_decref(d->hdrj);
  cx_free(d->notify_to);
  cx_free(d);
}

static void def_ref(struct cx__ndef *d)
{
  atomic_fetch_add(&d->refs, 1);
}

/* Turns a JSON object text of string values into kv pairs borrowing from
 * *keep. */
static int kv_parse(const char *text, const char *field, json_t **keep,
                    struct cx_exec_kv **out, size_t *nout, char *err)
{
  *keep = NULL;
  *out = NULL;
  *nout = 0;
  if (text == NULL || text[0] == '\0' || strcmp(text, "{}") == 0)
    return 0;
  json_t *o = json_loads(text, 0, NULL);
  if (!json_is_object(o)) {
    if (o)
      json_decref(o);
    cx_err_set(err, "%s: not a JSON object", field);
    return CX_EPARSE;
  }
  size_t n = json_object_size(o), i = 0;
  struct cx_exec_kv *kv = cx_calloc(n ? n : 1, sizeof *kv);
  if (kv == NULL) {
    json_decref(o);
    return -ENOMEM;
  }
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v)
  {
    if (!json_is_string(v)) {
      cx_err_set(err, "%s: value of '%s' is not a string", field, k);
      cx_free(kv);
      json_decref(o);
      return CX_EPARSE;
    }
    kv[i].name = k;
    kv[i].value = json_string_value(v);
    i++;
  }
  *keep = o;
  *out = kv;
  *nout = i;
  return 0;
}

static int ids_parse(const char *text, int64_t **out, size_t *nout)
{
  *out = NULL;
  *nout = 0;
  if (text == NULL || strcmp(text, "[]") == 0)
    return 0;
  json_t *a = json_loads(text, 0, NULL);
  if (!json_is_array(a)) {
    if (a)
      json_decref(a);
    return 0;
  }
  size_t n = json_array_size(a);
  int64_t *v = cx_calloc(n ? n : 1, sizeof *v);
  if (v == NULL) {
    json_decref(a);
    return -ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(a, i);
    if (json_is_integer(e))
      v[k++] = json_integer_value(e);
  }
  json_decref(a);
  *out = v;
  *nout = k;
  return 0;
}

/* Parses and validates a job value published for id. */
static int def_make(const char *val, size_t len, int64_t id,
                    struct cx__ndef **out, char *err)
{
  char field[CX_JOB_FIELD_LEN] = "", msg[CX_ERR_LEN] = "";
  enum cx_job_invalid why;
  json_error_t jerr;
  int rc;
  struct cx__ndef *d = cx_calloc(1, sizeof *d);
  *out = NULL;
  if (d == NULL)
    return -ENOMEM;
  atomic_init(&d->refs, 1);
  cx_job_init(&d->job);
  json_t *o = json_loadb(val, len, 0, &jerr);
  if (!json_is_object(o)) {
    cx_err_set(err, "job value is not a JSON object: %s", jerr.text);
    rc = CX_EPARSE;
    goto fail;
  }
  rc = cx_job_from_json(o, &d->job, field, msg);
  json_decref(o);
  if (rc != 0) {
    cx_err_set(err, "%s", msg);
    goto fail;
  }
  if (d->job.id == 0)
    d->job.id = id;
  if (d->job.id != id) {
    cx_err_set(err, "id: %lld does not match the key's %lld",
               (long long)d->job.id, (long long)id);
    rc = CX_EPARSE;
    goto fail;
  }
  rc = cx_job_validate(&d->job, cx_wall_s(), &why, field, msg);
  if (rc != 0) {
    cx_err_set(err, "%s", msg);
    goto fail;
  }
  struct cx_cron_opts copts = {.timezone = d->job.timezone,
                               .anchor = d->job.created};
  rc = cx_cron_parse(d->job.spec, &copts, &d->cron, msg);
  if (rc != 0) {
    cx_err_set(err, "spec: %s", msg);
    goto fail;
  }
  if ((rc = kv_parse(d->job.env, "env", &d->envj, &d->env, &d->nenv, err)) !=
          0 ||
      (rc = kv_parse(d->job.http_headers, "http_headers", &d->hdrj, &d->hdr,
                     &d->nhdr, err)) != 0 ||
      (rc = ids_parse(d->job.notify_to_array, &d->notify_to, &d->nnotify)) != 0)
    goto fail;
  *out = d;
  return 0;
fail:
  def_unref(d);
  return rc;
}

/* ---- job table (chained hash by id) -------------------------------------- */

static size_t slot_hash(int64_t id, size_t mask)
{
  uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ull;
  return (size_t)(x >> 17) & mask;
}

static struct cx__nslot *slot_find(struct cx_noded *n, int64_t id)
{
  if (n->nbuckets == 0)
    return NULL;
  for (struct cx__nslot *s = n->buckets[slot_hash(id, n->nbuckets - 1)]; s;
       s = s->next)
    if (s->id == id)
      return s;
  return NULL;
}

static int table_grow(struct cx_noded *n)
{
  size_t nb = n->nbuckets ? n->nbuckets * 2 : 1024;
  struct cx__nslot **b = cx_calloc(nb, sizeof *b);
  if (b == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n->nbuckets; i++) {
    struct cx__nslot *s = n->buckets[i], *next;
    for (; s; s = next) {
      next = s->next;
      size_t h = slot_hash(s->id, nb - 1);
      s->next = b[h];
      b[h] = s;
    }
  }
  cx_free(n->buckets);
  n->buckets = b;
  n->nbuckets = nb;
  return 0;
}

static struct cx__nslot *slot_add(struct cx_noded *n, int64_t id)
{
  if (n->njobs + 1 > n->nbuckets && table_grow(n) != 0)
    return NULL;
  struct cx__nslot *s = cx_calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->id = id;
  size_t h = slot_hash(id, n->nbuckets - 1);
  s->next = n->buckets[h];
  n->buckets[h] = s;
  n->njobs++;
  return s;
}

/* Removes the slot of id; returns its def (the caller unrefs). */
static struct cx__ndef *slot_del(struct cx_noded *n, int64_t id)
{
  if (n->nbuckets == 0)
    return NULL;
  struct cx__nslot **pp = &n->buckets[slot_hash(id, n->nbuckets - 1)];
  for (; *pp; pp = &(*pp)->next) {
    if ((*pp)->id == id) {
      struct cx__nslot *s = *pp;
      struct cx__ndef *d = s->def;
      *pp = s->next;
      cx_free(s);
      n->njobs--;
      cx_sched_remove(n->sched, id, NULL);
      return d;
    }
  }
  return NULL;
}

/* ---- queue and active runs (under n->mu) --------------------------------- */

static void active_link(struct cx_noded *n, struct cx__nitem *it)
{
  it->aprev = NULL;
  it->anext = n->active;
  if (n->active)
    n->active->aprev = it;
  n->active = it;
  n->nactive++;
  struct cx__nslot *s = slot_find(n, it->def->job.id);
  if (s)
    s->active++;
}

static void active_unlink(struct cx_noded *n, struct cx__nitem *it)
{
  if (it->aprev)
    it->aprev->anext = it->anext;
  else
    n->active = it->anext;
  if (it->anext)
    it->anext->aprev = it->aprev;
  n->nactive--;
  struct cx__nslot *s = slot_find(n, it->def->job.id);
  if (s && s->active > 0)
    s->active--;
}

/* Runs of job_id queued or running: O(1) through its slot. A slot removed
 * and added again while runs go on starts from 0 (the old runs are then
 * not counted: a forbid job deleted and re-created may overlap once). */
static int active_of(struct cx_noded *n, int64_t job_id)
{
  struct cx__nslot *s = slot_find(n, job_id);
  return s ? s->active : 0;
}

static void item_free(struct cx__nitem *it)
{
  if (it == NULL)
    return;
  cx_exec_destroy(it->x);
  def_unref(it->def);
  cx_free(it);
}

static void queue_push(struct cx_noded *n, struct cx__nitem *it)
{
  it->next = NULL;
  if (n->qtail)
    n->qtail->next = it;
  else
    n->qhead = it;
  n->qtail = it;
  pthread_cond_signal(&n->qcond);
}

/* Makes an item for def (under n->mu). kind RUN and MISFIRE items join the
 * active list at once, so forbid and kill see queued runs too; their exec
 * handle is made by the worker (a kill before that only sets `killed`). */
static struct cx__nitem *item_new(struct cx_noded *n, struct cx__ndef *d,
                                  int kind, const char *trigger, int has_sched,
                                  int64_t sched_s)
{
  struct cx__nitem *it = cx_calloc(1, sizeof *it);
  if (it == NULL)
    return NULL;
  def_ref(d);
  it->def = d;
  it->kind = kind;
  it->trigger = trigger;
  it->has_sched = has_sched;
  it->sched_s = sched_s;
  it->queued_ms = cx_wall_ms();
  it->lease = atomic_load(&n->lease);
  if (kind != CX__ITEM_SKIP)
    active_link(n, it);
  return it;
}

/* A fire of d at sched_s (under n->mu), applying concurrency. */
static void fire_locked(struct cx_noded *n, struct cx__ndef *d, int kind,
                        const char *trigger, int has_sched, int64_t sched_s)
{
  const char *conc = d->job.concurrency ? d->job.concurrency : "forbid";
  int running = active_of(n, d->job.id);
  if (running > 0 && strcmp(conc, "forbid") == 0) {
    struct cx__nitem *it =
        item_new(n, d, CX__ITEM_SKIP, trigger, has_sched, sched_s);
    if (it)
      queue_push(n, it);
    return;
  }
  if (running > 0 && strcmp(conc, "replace") == 0) {
    for (struct cx__nitem *a = n->active; a; a = a->anext) {
      if (a->def->job.id == d->job.id) {
        a->killed = 1;
        if (a->x)
          cx_exec_kill(a->x);
      }
    }
    pthread_cond_broadcast(&n->kick);
  }
  struct cx__nitem *it = item_new(n, d, kind, trigger, has_sched, sched_s);
  if (it == NULL) {
    CX_LOG(CX_LOG_ERROR, LOGC, "job %lld: out of memory, fire dropped",
           (long long)d->job.id);
    return;
  }
  n->st.fired++;
  queue_push(n, it);
}

/* ---- scheduler callback -------------------------------------------------- */

static void on_fire(void *ctx, int64_t job_id, int64_t at_ms, void *data)
{
  struct cx_noded *n = ctx;
  (void)data;
  pthread_mutex_lock(&n->mu);
  struct cx__nslot *s = slot_find(n, job_id);
  if (s == NULL || s->def == NULL || !s->def->job.enabled || n->stopping) {
    pthread_mutex_unlock(&n->mu);
    return;
  }
  struct cx__ndef *d = s->def;
  int64_t at_s = at_ms / 1000, next;
  if (cx_cron_next(d->cron, at_s, &next) == 0)
    cx_sched_put(n->sched, job_id, next * 1000, NULL, NULL);
  if (atomic_load(&n->fenced))
    n->st.fenced++;
  else
    fire_locked(n, d, CX__ITEM_RUN, "cron", 1, at_s);
  pthread_mutex_unlock(&n->mu);
  if (n->fire_hook)
    n->fire_hook(n->fire_hook_arg, job_id, at_ms, cx_wall_ms());
}

/* ---- misfire ------------------------------------------------------------- */

/* The latest fire of d in [max(now - deadline, created + 1), now], or 0.
 * `created` is whole seconds: a fire in the second of creation came
 * before the job existed. */
static int64_t misfire_candidate(const struct cx__ndef *d, int64_t now_s)
{
  if (d->job.misfire && strcmp(d->job.misfire, "skip") == 0)
    return 0;
  int64_t from = now_s - d->job.starting_deadline;
  if (from <= d->job.created)
    from = d->job.created + 1;
  int64_t t = from - 1, last = 0, f;
  for (int i = 0; i < 100000; i++) {
    if (cx_cron_next(d->cron, t, &f) != 0 || f > now_s)
      break;
    last = f;
    t = f;
  }
  return last;
}

/* ---- upsert / remove ----------------------------------------------------- */

void cx__noded_job_put(struct cx_noded *n, int64_t id, const char *val,
                       size_t len, int arriving)
{
  char err[CX_ERR_LEN] = "";
  struct cx__ndef *d = NULL;
  int rc = def_make(val, len, id, &d, err);
  if (rc != 0) {
    CX_LOG(CX_LOG_ERROR, LOGC, "job %lld refused: %s", (long long)id, err);
    pthread_mutex_lock(&n->mu);
    n->st.bad_jobs++;
    struct cx__ndef *old = slot_del(n, id);
    pthread_mutex_unlock(&n->mu);
    def_unref(old);
    cx__noded_record_bad(n, id, err);
    return;
  }
  int64_t now_s = cx_wall_s(), next;
  pthread_mutex_lock(&n->mu);
  struct cx__nslot *s = slot_find(n, id);
  if (s == NULL)
    s = slot_add(n, id);
  if (s == NULL) {
    pthread_mutex_unlock(&n->mu);
    def_unref(d);
    CX_LOG(CX_LOG_ERROR, LOGC, "job %lld: out of memory", (long long)id);
    return;
  }
  struct cx__ndef *old = s->def;
  s->def = d;
  s->gen = n->gen;
  if (old == NULL)
    arriving = 1;
  if (d->job.enabled && cx_cron_next(d->cron, now_s, &next) == 0)
    cx_sched_put(n->sched, id, next * 1000, NULL, NULL);
  else
    cx_sched_remove(n->sched, id, NULL);
  if (arriving && d->job.enabled && !n->stopping && !atomic_load(&n->fenced)) {
    int64_t cand = misfire_candidate(d, now_s);
    if (cand > 0)
      fire_locked(n, d, CX__ITEM_MISFIRE, "misfire", 1, cand);
  }
  pthread_mutex_unlock(&n->mu);
  def_unref(old);
}

void cx__noded_job_del(struct cx_noded *n, int64_t id)
{
  pthread_mutex_lock(&n->mu);
  struct cx__ndef *old = slot_del(n, id);
  pthread_mutex_unlock(&n->mu);
  def_unref(old);
}

void cx__noded_rebuild(struct cx_noded *n, const struct cx_coord_kvs *kvs,
                       size_t plen, int arriving)
{
  pthread_mutex_lock(&n->mu);
  n->gen++;
  pthread_mutex_unlock(&n->mu);
  for (size_t i = 0; i < kvs->n; i++) {
    int64_t id;
    const struct cx_coord_kv *kv = &kvs->kvs[i];
    if (kv->key_len <= plen ||
        cx_parse_int64(kv->key + plen, 1, INT64_MAX, &id) != 0)
      continue;
    cx__noded_job_put(n, id, kv->value, kv->value_len, arriving);
  }
  /* Drop what the listing no longer has. */
  for (;;) {
    struct cx__ndef *old = NULL;
    int found = 0;
    pthread_mutex_lock(&n->mu);
    for (size_t b = 0; b < n->nbuckets && !found; b++) {
      for (struct cx__nslot *s = n->buckets[b]; s; s = s->next) {
        if (s->gen != n->gen) {
          old = slot_del(n, s->id);
          found = 1;
          break;
        }
      }
    }
    pthread_mutex_unlock(&n->mu);
    def_unref(old);
    if (!found)
      break;
  }
}

/* Once key: run job id now. Returns 0, or CX_ENOTFOUND for an unknown job. */
int cx__noded_once(struct cx_noded *n, int64_t id)
{
  int rc = 0;
  pthread_mutex_lock(&n->mu);
  struct cx__nslot *s = slot_find(n, id);
  if (s == NULL || s->def == NULL) {
    rc = CX_ENOTFOUND;
  } else if (!n->stopping) {
    struct cx__nitem *it = item_new(n, s->def, CX__ITEM_RUN, "once", 0, 0);
    if (it) {
      n->st.fired++;
      queue_push(n, it);
    } else {
      rc = -ENOMEM;
    }
  }
  pthread_mutex_unlock(&n->mu);
  return rc;
}

/* Kill key: kills every queued or running run of job id; returns how many. */
int cx__noded_kill(struct cx_noded *n, int64_t id)
{
  int k = 0;
  pthread_mutex_lock(&n->mu);
  for (struct cx__nitem *a = n->active; a; a = a->anext) {
    if (a->def->job.id == id) {
      a->killed = 1;
      if (a->x)
        cx_exec_kill(a->x);
      k++;
    }
  }
  pthread_cond_broadcast(&n->kick);
  pthread_mutex_unlock(&n->mu);
  return k;
}

/* ---- one run ------------------------------------------------------------- */

struct spawn_ctx {
  struct cx_noded *n;
  struct cx__nitem *it;
  int64_t run_id;
  int attempt;
  char key[512];
  size_t key_len;
};

static void proc_put(struct spawn_ctx *sc, const char *tail)
{
  struct cx_noded *n = sc->n;
  struct cx__nitem *it = sc->it;
  int len = snprintf(sc->key, sizeof sc->key, "%s/proc/%s/%lld/%s", n->prefix,
                     n->uuid, (long long)it->def->job.id, tail);
  if (len < 0 || (size_t)len >= sizeof sc->key) {
    sc->key_len = 0;
    return;
  }
  sc->key_len = (size_t)len;
  char val[512];
  int vl = snprintf(val, sizeof val,
                    "{\"pid\":%s,\"job_id\":%lld,\"run_id\":%lld,"
                    "\"start\":%lld,\"scheduled_at\":%lld,\"attempt\":%d}",
                    tail[0] == 'r' ? "0" : tail, (long long)it->def->job.id,
                    (long long)sc->run_id, (long long)cx_wall_s(),
                    (long long)(it->has_sched ? it->sched_s : 0), sc->attempt);
  int64_t lease = atomic_load(&n->lease);
  if (vl > 0 && (size_t)vl < sizeof val && lease != 0)
    cx__noded_proc_put(n, sc->key, sc->key_len, val, (size_t)vl, lease);
  else
    sc->key_len = 0;
}

static void proc_del(struct spawn_ctx *sc)
{
  if (sc->key_len)
    cx__noded_proc_del(sc->n, sc->key, sc->key_len);
  sc->key_len = 0;
}

static void on_spawn(void *ctx, pid_t pid, pid_t pgid)
{
  struct spawn_ctx *sc = ctx;
  char tail[32];
  (void)pgid;
  snprintf(tail, sizeof tail, "%d", (int)pid);
  proc_put(sc, tail);
}

/* Waits ms or until the item is killed or the node drains. 1 if woken by a
 * kill. */
static int retry_wait(struct cx_noded *n, struct cx__nitem *it, int64_t ms)
{
  int64_t until = cx_wall_ms() + ms;
  int killed;
  pthread_mutex_lock(&n->mu);
  while (!(killed = it->killed) && !n->draining && cx_wall_ms() < until) {
    int64_t left = until - cx_wall_ms();
    if (left > 200)
      left = 200;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)(left % 1000) * 1000000L;
    ts.tv_sec += left / 1000 + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&n->kick, &n->mu, &ts);
  }
  int stop = killed || n->draining;
  pthread_mutex_unlock(&n->mu);
  return stop;
}

static void run_fill(struct cx_noded *n, const struct cx__nitem *it,
                     struct cx_run *r)
{
  const struct cx_job *j = &it->def->job;
  memset(r, 0, sizeof *r);
  r->job_id = j->id;
  r->name = j->name;
  r->node_uuid = n->uuid;
  r->hostname = n->hostname;
  r->ip = n->ip;
  r->command = j->command;
  r->spec = j->spec;
  r->trigger = (char *)it->trigger;
  r->has_scheduled_at = it->has_sched;
  r->scheduled_at = it->sched_s;
  r->start_time = cx_wall_ms();
  r->status = "running";
  cx__noded_token(r->claim_token);
}

static const char *status_of(enum cx_exec_status s)
{
  switch (s) {
  case CX_EXEC_SUCCESS:
    return "success";
  case CX_EXEC_TIMEOUT:
    return "timeout";
  case CX_EXEC_KILLED:
    return "killed";
  default:
    return "failed";
  }
}

static void do_skip(struct cx_noded *n, struct cx__nitem *it)
{
  struct cx_run r;
  static const char msg[] =
      "skipped: the previous run is still going (concurrency forbid)";
  run_fill(n, it, &r);
  r.status = "skipped";
  r.end_time = r.start_time;
  r.output = (char *)msg;
  r.output_len = sizeof msg - 1;
  if (cx__noded_record(n, &r, 0) == 0) {
    pthread_mutex_lock(&n->mu);
    n->st.skipped++;
    pthread_mutex_unlock(&n->mu);
  }
}

static void do_run(struct cx_noded *n, struct cx__nitem *it)
{
  struct cx_run r;
  struct cx__nsettings set;
  char err[CX_ERR_LEN] = "";
  const struct cx_job *j = &it->def->job;
  int64_t id = 0;

  if (it->kind == CX__ITEM_MISFIRE) {
    int64_t last = 0;
    int rc = cx_store_run_last_scheduled(n->store, j->id, &last, NULL);
    if (rc == 0 && last >= it->sched_s)
      return; /* it did run (or was claimed) */
  }
  struct cx_exec *x = NULL;
  if (cx_exec_create(&x) != 0) {
    CX_LOG(CX_LOG_ERROR, LOGC, "job %lld: no exec handle, fire dropped",
           (long long)j->id);
    return;
  }
  pthread_mutex_lock(&n->mu);
  it->x = x;
  if (it->killed)
    cx_exec_kill(x);
  pthread_mutex_unlock(&n->mu);
  cx__noded_settings(n, &set);
  run_fill(n, it, &r);
  int rc = cx_store_run_claim(n->store, &r, &id, err);
  if (rc == CX_EEXISTS) {
    pthread_mutex_lock(&n->mu);
    n->st.lost_claims++;
    pthread_mutex_unlock(&n->mu);
    return;
  }
  int claimed = rc == 0;
  if (claimed) {
    r.id = id;
    pthread_mutex_lock(&n->mu);
    n->st.claimed++;
    pthread_mutex_unlock(&n->mu);
  } else {
    CX_LOG(CX_LOG_WARN, LOGC,
           "job %lld: claim failed (%s); running and spooling the record",
           (long long)j->id, err);
  }

  struct cx_exec_opts xo = {
      .shell = set.shell,
      .output_limit = (size_t)set.output_limit,
      .kill_grace_ms = set.kill_grace_s * 1000,
  };
  struct cx_exec_result res;
  memset(&res, 0, sizeof res);
  struct spawn_ctx sc = {.n = n, .it = it, .run_id = id};
  int attempts = 0;
  for (int k = 0; k <= j->retry_times; k++) {
    if (k > 0) {
      int64_t wait_s = j->retry_interval > 0 ? j->retry_interval
                                             : (int64_t)k * set.retry_base_s;
      if (retry_wait(n, it, wait_s * 1000))
        break;
      cx_exec_result_free(&res);
    }
    attempts = k + 1;
    sc.attempt = attempts;
    if (j->type == CX_JOB_HTTP) {
      char tail[64];
      if (id > 0)
        snprintf(tail, sizeof tail, "r%lld", (long long)id);
      else
        snprintf(tail, sizeof tail, "r%.16s", r.claim_token);
      proc_put(&sc, tail);
      struct cx_exec_http req = {
          .url = j->command,
          .method = j->http_method,
          .headers = it->def->hdr,
          .nheaders = it->def->nhdr,
          .body = j->http_body,
          .body_len = j->http_body ? strlen(j->http_body) : 0,
          .timeout_ms = (int64_t)j->timeout * 1000,
      };
      cx_exec_run_http(it->x, &xo, &req, &res, NULL);
    } else {
      struct cx_exec_cmd cmd = {
          .command = j->command,
          .env = it->def->env,
          .nenv = it->def->nenv,
          .workdir = (j->workdir && j->workdir[0]) ? j->workdir : set.workdir,
          .timeout_ms = (int64_t)j->timeout * 1000,
      };
      cx_exec_run_cmd(it->x, &xo, &cmd, on_spawn, &sc, &res, NULL);
    }
    proc_del(&sc);
    if (res.status == CX_EXEC_SUCCESS || res.status == CX_EXEC_KILLED ||
        it->killed)
      break;
  }
  if (it->killed && res.status != CX_EXEC_SUCCESS)
    res.status = CX_EXEC_KILLED;
  r.attempts = attempts;
  r.status = (char *)status_of(res.status);
  r.success = res.status == CX_EXEC_SUCCESS;
  r.exit_code = res.exit_code;
  r.end_time = cx_wall_ms();
  if (res.status == CX_EXEC_ERROR && res.error[0]) {
    r.output = res.error;
    r.output_len = strlen(res.error);
  } else {
    r.output = res.output;
    r.output_len = res.output ? res.output_len : 0;
  }
  cx__noded_record(n, &r, claimed);
  pthread_mutex_lock(&n->mu);
  n->st.runs++;
  pthread_mutex_unlock(&n->mu);
  cx_exec_result_free(&res);
}

static void *worker_main(void *arg)
{
  struct cx_noded *n = arg;
  pthread_mutex_lock(&n->mu);
  for (;;) {
    while (n->qhead == NULL && !n->workers_quit)
      pthread_cond_wait(&n->qcond, &n->mu);
    if (n->qhead == NULL)
      break;
    struct cx__nitem *it = n->qhead;
    n->qhead = it->next;
    if (n->qhead == NULL)
      n->qtail = NULL;
    pthread_mutex_unlock(&n->mu);
    /* A fire may have waited here while the process was stopped: fail
     * closed unless the lease is still ours (SPEC §10). */
    if (it->lease != atomic_load(&n->lease) || !cx__noded_lease_held(n)) {
      pthread_mutex_lock(&n->mu);
      n->st.fenced++;
      pthread_mutex_unlock(&n->mu);
    } else if (it->kind == CX__ITEM_SKIP) {
      do_skip(n, it);
    } else {
      do_run(n, it);
    }
    pthread_mutex_lock(&n->mu);
    if (it->kind != CX__ITEM_SKIP)
      active_unlink(n, it);
    pthread_cond_broadcast(&n->idle);
    pthread_mutex_unlock(&n->mu);
    item_free(it);
    pthread_mutex_lock(&n->mu);
  }
  pthread_mutex_unlock(&n->mu);
  return NULL;
}

/* ---- identity ------------------------------------------------------------ */

static int uuid_load(const char *dir, char out[37], char *err)
{
  char path[4096];
  unsigned char b[16];
  int fd, rc = 0;
  snprintf(path, sizeof path, "%s/%s", dir, CX_NODED_ID_FILE);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[64];
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got < 36) {
      cx_err_set(err, "%s: not a uuid", path);
      return CX_EPARSE;
    }
    buf[got] = '\0';
    for (int i = 0; i < 36; i++) {
      int dash = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash ? buf[i] != '-'
               : !strchr("0123456789abcdef", buf[i]) || buf[i] == '\0') {
        cx_err_set(err, "%s: not a uuid", path);
        return CX_EPARSE;
      }
    }
    memcpy(out, buf, 36);
    out[36] = '\0';
    return 0;
  }
  if (errno != ENOENT) {
    rc = -errno;
    cx_err_set(err, "%s: %s", path, strerror(errno));
    return rc;
  }
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
    cx_err_set(err, "getrandom failed");
    return -EIO;
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  snprintf(out, 37,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x"
           "%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
           b[11], b[12], b[13], b[14], b[15]);
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, out, 36) != 36 || write(fd, "\n", 1) != 1 ||
      fsync(fd) != 0) {
    rc = -errno;
    cx_err_set(err, "%s: %s", tmp, strerror(errno));
    if (fd >= 0)
      close(fd);
    return rc;
  }
  close(fd);
  if (rename(tmp, path) != 0) {
    rc = -errno;
    cx_err_set(err, "%s: %s", path, strerror(errno));
  }
  return rc;
}

static void host_ip(char *host, size_t hl, char *ip, size_t il)
{
  struct ifaddrs *ifa = NULL;
  if (gethostname(host, hl) != 0)
    snprintf(host, hl, "unknown");
  host[hl - 1] = '\0';
  snprintf(ip, il, "127.0.0.1");
  if (getifaddrs(&ifa) != 0)
    return;
  for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
    if (p->ifa_addr == NULL || p->ifa_addr->sa_family != AF_INET)
      continue;
    struct sockaddr_in *sin = (struct sockaddr_in *)(void *)p->ifa_addr;
    if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127)
      continue;
    inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)il);
    break;
  }
  freeifaddrs(ifa);
}

/* ---- settings ------------------------------------------------------------ */

void cx__noded_settings(struct cx_noded *n, struct cx__nsettings *out)
{
  pthread_mutex_lock(&n->setmu);
  *out = n->set;
  pthread_mutex_unlock(&n->setmu);
}

void cx_noded_reload(struct cx_noded *n, const struct cx_config *cfg)
{
  struct cx__nsettings s = {0};
  snprintf(s.shell, sizeof s.shell, "%s", cfg->node_shell);
  s.output_limit = cfg->node_output_limit;
  s.retry_base_s = cfg->node_retry_base;
  s.kill_grace_s = cfg->node_kill_grace;
  s.shutdown_grace_s = cfg->node_shutdown_grace;
  snprintf(s.workdir, sizeof s.workdir, "%s",
           cfg->node_workdir[0] ? cfg->node_workdir : cfg->data_dir);
  pthread_mutex_lock(&n->setmu);
  n->set = s;
  pthread_mutex_unlock(&n->setmu);
}

/* ---- create / start / stop ----------------------------------------------- */

int cx_noded_create(const struct cx_noded_opts *o, struct cx_noded **out,
                    char *err)
{
  int rc;
  *out = NULL;
  if (o == NULL || o->cfg == NULL || o->store == NULL || o->coord == NULL) {
    cx_err_set(err, "node: cfg, store and coord are required");
    return -EINVAL;
  }
  struct cx_noded *n = cx_calloc(1, sizeof *n);
  if (n == NULL)
    return -ENOMEM;
  pthread_mutex_init(&n->mu, NULL);
  pthread_mutex_init(&n->setmu, NULL);
  pthread_mutex_init(&n->spmu, NULL);
  pthread_mutex_init(&n->lease_mu, NULL);
  pthread_mutex_init(&n->pmu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_REALTIME);
  pthread_cond_init(&n->qcond, &ca);
  pthread_cond_init(&n->kick, &ca);
  pthread_cond_init(&n->idle, &ca);
  pthread_cond_init(&n->mcond, &ca);
  pthread_cond_init(&n->pcond, &ca);
  pthread_condattr_destroy(&ca);
  n->store = o->store;
  n->coord = o->coord;
  n->notify = o->notify;
  n->fire_hook = o->fire_hook;
  n->fire_hook_arg = o->fire_hook_arg;
  snprintf(n->version, sizeof n->version, "%s", o->version ? o->version : "");
  snprintf(n->data_dir, sizeof n->data_dir, "%s", o->cfg->data_dir);
  snprintf(n->prefix, sizeof n->prefix, "%s", o->cfg->etcd_prefix);
  size_t pl = strlen(n->prefix);
  while (pl > 0 && n->prefix[pl - 1] == '/')
    n->prefix[--pl] = '\0';
  n->ttl = o->cfg->node_ttl;
  n->nworkers = (int)o->cfg->node_max_concurrent;
  if (n->nworkers < 1)
    n->nworkers = 1;
  cx_noded_reload(n, o->cfg);
  host_ip(n->hostname, sizeof n->hostname, n->ip, sizeof n->ip);
  if ((rc = uuid_load(n->data_dir, n->uuid, err)) != 0 ||
      (rc = cx__noded_spool_open(n, err)) != 0 ||
      (rc = cx_sched_create(&n->sched)) != 0)
    goto fail;
  *out = n;
  return 0;
fail:
  cx_noded_destroy(n);
  return rc;
}

const char *cx_noded_uuid(const struct cx_noded *n)
{
  return n->uuid;
}

int cx_noded_next_fire(struct cx_noded *n, int64_t job_id, int64_t *at_ms)
{
  return cx_sched_get(n->sched, job_id, at_ms, NULL);
}

void cx_noded_stats_get(struct cx_noded *n, struct cx_noded_stats *out)
{
  pthread_mutex_lock(&n->mu);
  *out = n->st;
  out->jobs = n->njobs;
  out->active = n->nactive;
  pthread_mutex_unlock(&n->mu);
  pthread_mutex_lock(&n->spmu);
  out->pending = n->sp_pending;
  out->spooled = n->sp_spooled;
  out->flushed = n->sp_flushed;
  pthread_mutex_unlock(&n->spmu);
}

static void *sched_main(void *arg)
{
  struct cx_noded *n = arg;
  cx_sched_run(n->sched, on_fire, n);
  return NULL;
}

/* Runs this node left "running" when it last died (SIGKILL, power loss):
 * nobody will finish them. The spool flush that follows overwrites the
 * ones whose end it did record. */
static void close_orphans(struct cx_noded *n)
{
  char err[CX_ERR_LEN] = "", why[160];
  int64_t marked = 0;
  snprintf(why, sizeof why,
           "lost: node %s stopped while this run was going (restarted at "
           "%lld); how it ended is unknown",
           n->uuid, (long long)cx_wall_s());
  if (cx_store_run_mark_lost(n->store, n->uuid, cx_wall_ms(), why, &marked,
                             err) != 0)
    CX_LOG(CX_LOG_WARN, LOGC, "runs left running by the last start: %s", err);
  else if (marked > 0)
    CX_LOG(CX_LOG_WARN, LOGC,
           "%lld run(s) left running by the last start marked lost",
           (long long)marked);
}

int cx_noded_start(struct cx_noded *n, char *err)
{
  int rc;
  close_orphans(n);
  if ((rc = cx__noded_register(n, err)) != 0)
    return rc;
  if ((rc = cx__noded_watch_all(n, 0, err)) != 0)
    return rc;
  if ((rc = cx__noded_procs_start(n, err)) != 0)
    return rc;
  n->workers = cx_calloc((size_t)n->nworkers, sizeof *n->workers);
  if (n->workers == NULL)
    return -ENOMEM;
  for (int i = 0; i < n->nworkers; i++) {
    if ((rc = pthread_create(&n->workers[i], NULL, worker_main, n)) != 0) {
      cx_err_set(err, "worker thread: %s", strerror(rc));
      return -rc;
    }
    n->nstarted++;
  }
  if ((rc = pthread_create(&n->sched_thread, NULL, sched_main, n)) != 0) {
    cx_err_set(err, "scheduler thread: %s", strerror(rc));
    return -rc;
  }
  n->sched_started = 1;
  if ((rc = pthread_create(&n->maint_thread, NULL, cx__noded_maint_main, n)) !=
      0) {
    cx_err_set(err, "maintenance thread: %s", strerror(rc));
    return -rc;
  }
  n->maint_started = 1;
  n->started = 1;
  CX_LOG(CX_LOG_INFO, LOGC, "node %s up (%s, %s), %zu jobs", n->uuid,
         n->hostname, n->ip, n->njobs);
  return 0;
}

void cx_noded_stop(struct cx_noded *n)
{
  if (n == NULL || n->stopped)
    return;
  n->stopped = 1;
  pthread_mutex_lock(&n->mu);
  n->stopping = 1;
  pthread_mutex_unlock(&n->mu);
  if (n->sched_started) {
    cx_sched_stop(n->sched);
    pthread_join(n->sched_thread, NULL);
    n->sched_started = 0;
  }
  if (n->maint_started) {
    pthread_mutex_lock(&n->mu);
    n->maint_quit = 1;
    pthread_cond_broadcast(&n->mcond);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->maint_thread, NULL);
    n->maint_started = 0;
  }
  cx__noded_unwatch(n);
  /* Queued fires that have not started are dropped (never claimed). */
  struct cx__nitem *drop = NULL;
  pthread_mutex_lock(&n->mu);
  struct cx__nitem **pp = &n->qhead;
  n->qtail = NULL;
  while (*pp) {
    struct cx__nitem *it = *pp;
    if (it->kind != CX__ITEM_SKIP) {
      *pp = it->next;
      active_unlink(n, it);
      it->next = drop;
      drop = it;
    } else {
      n->qtail = it;
      pp = &it->next;
    }
  }
  struct cx__nsettings set;
  cx__noded_settings(n, &set);
  int64_t until = cx_wall_ms() + set.shutdown_grace_s * 1000;
  while (n->nactive > 0 && cx_wall_ms() < until) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&n->idle, &n->mu, &ts);
  }
  if (n->nactive > 0)
    CX_LOG(CX_LOG_WARN, LOGC, "shutdown grace over: killing %zu runs",
           n->nactive);
  n->draining = 1;
  for (struct cx__nitem *a = n->active; a; a = a->anext) {
    a->killed = 1;
    if (a->x)
      cx_exec_kill(a->x);
  }
  pthread_cond_broadcast(&n->kick);
  n->workers_quit = 1;
  pthread_cond_broadcast(&n->qcond);
  pthread_mutex_unlock(&n->mu);
  while (drop) {
    struct cx__nitem *next = drop->next;
    item_free(drop);
    drop = next;
  }
  for (int i = 0; i < n->nstarted; i++)
    pthread_join(n->workers[i], NULL);
  n->nstarted = 0;
  cx__noded_procs_stop(n);
  if (n->started) {
    cx_noded_flush(n);
    cx__noded_unregister(n);
  }
  CX_LOG(CX_LOG_INFO, LOGC, "node %s stopped", n->uuid);
}

void cx_noded_destroy(struct cx_noded *n)
{
  if (n == NULL)
    return;
  cx_noded_stop(n);
  for (size_t b = 0; b < n->nbuckets; b++) {
    struct cx__nslot *s = n->buckets[b], *next;
    for (; s; s = next) {
      next = s->next;
      def_unref(s->def);
      cx_free(s);
    }
  }
  cx_free(n->buckets);
  cx_free(n->workers);
  cx_sched_destroy(n->sched);
  cx__noded_spool_close(n);
  pthread_mutex_destroy(&n->mu);
  pthread_mutex_destroy(&n->setmu);
  pthread_mutex_destroy(&n->spmu);
  pthread_mutex_destroy(&n->lease_mu);
  pthread_mutex_destroy(&n->pmu);
  pthread_cond_destroy(&n->pcond);
  pthread_cond_destroy(&n->qcond);
  pthread_cond_destroy(&n->kick);
  pthread_cond_destroy(&n->idle);
  pthread_cond_destroy(&n->mcond);
  cx_free(n);
}
