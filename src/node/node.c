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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "coord/coord.h"
#include "cron/cron.h"
#include "job/job.h"
#include "live/live.h"
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

static void job_left(struct cx_noded *n, int64_t id);

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
      job_left(n, id);
      return d;
    }
  }
  return NULL;
}

/* ---- queue and active runs (under n->mu) --------------------------------- */

/* Items that count as a run of their job (concurrency, kills). */
static int item_active(int kind)
{
  return kind == CX__ITEM_RUN || kind == CX__ITEM_MISFIRE;
}

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

static void pend_free(struct cx__nitem *it);

static void item_free(struct cx__nitem *it)
{
  if (it == NULL)
    return;
  pend_free(it);
  cx_live_unref(it->live);
  cx_exec_result_free(&it->res);
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

/* Kills run a (under n->mu): its attempt now if one runs (the exec kill
 * is sticky, so one about to start returns at once); a run waiting on the
 * timer for a retry is taken off it and queued to be recorded as killed,
 * with why noted in its output. If the timer fired it meanwhile, the
 * worker that gets it sees `killed` and records it without another
 * attempt. */
static void item_kill_locked(struct cx_noded *n, struct cx__nitem *a,
                             const char *why)
{
  a->killed = 1;
  a->kill_why = why;
  if (a->x)
    cx_exec_kill(a->x);
  if (a->retry_key != 0) {
    a->retry_cancelled = 1;
    if (cx_sched_remove(n->sched, a->retry_key, NULL) == 0) {
      a->retry_key = 0;
      a->finish = 1;
      queue_push(n, a);
    }
  }
}

/* Job id left this node (deleted, moved, refused; under n->mu): its runs
 * waiting for a retry (on the timer, or due and queued) end now, as
 * killed; a run in an attempt finishes that attempt and is not retried. */
static void job_left(struct cx_noded *n, int64_t id)
{
  for (struct cx__nitem *a = n->active; a; a = a->anext) {
    if (a->def->job.id != id)
      continue;
    a->orphan = 1;
    if (a->retry_key != 0)
      item_kill_locked(n, a, "the job left this node");
  }
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
  if (item_active(kind))
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
    for (struct cx__nitem *a = n->active; a; a = a->anext)
      if (a->def->job.id == d->job.id)
        item_kill_locked(n, a, "replaced by a new run (concurrency replace)");
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
  if (job_id < 0) { /* a retry's wait is over: back to the pool */
    struct cx__nitem *it = data;
    pthread_mutex_lock(&n->mu);
    it->retry_key = 0;
    queue_push(n, it);
    pthread_mutex_unlock(&n->mu);
    return;
  }
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
  struct cx__nitem *skip;
  if (atomic_load(&n->fenced)) {
    n->st.fenced++;
  } else if (atomic_load(&n->drained)) { /* recorded, not run */
    if ((skip = item_new(n, d, CX__ITEM_SKIP, "cron", 1, at_s)) != NULL) {
      skip->skip_why = "skipped: the node is drained (/node/drain)";
      queue_push(n, skip);
    }
  } else {
    int64_t lease = atomic_load(&n->lease);
    if (s->fire_lease != lease) {
      s->fire_lease = lease;
      s->fire_first = at_s;
    }
    fire_locked(n, d, CX__ITEM_RUN, "cron", 1, at_s);
  }
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
  /* A drained node catches up nothing either. */
  if (arriving && d->job.enabled && !n->stopping && !atomic_load(&n->fenced) &&
      !atomic_load(&n->drained)) {
    /* The gap ends before any fire this node already queued under its
     * lease (a re-listing after a lost lease: the timer runs first). */
    int64_t gap_to = now_s;
    if (s->fire_lease == atomic_load(&n->lease) && s->fire_first <= gap_to)
      gap_to = s->fire_first - 1;
    int64_t cand = misfire_candidate(d, gap_to);
    if (cand > 0) /* run (or skip: forbid) the latest; the gap before it */
      fire_locked(n, d, CX__ITEM_MISFIRE, "misfire", 1, cand);
    /* On its own item, queued by the maintenance thread within a second:
     * a takeover's runs go first, not behind the store reads of gaps. */
    struct cx__nitem *g = item_new(n, d, CX__ITEM_GAP, "cron", 1, cand);
    if (g != NULL) {
      g->gap_to = cand > 0 ? cand - 1 : gap_to;
      g->next = n->gaps;
      n->gaps = g;
    }
  }
  pthread_mutex_unlock(&n->mu);
  def_unref(old);
}

static int def_bcast(const struct cx__ndef *d)
{
  return d != NULL && d->job.allocation == CX_ALLOC_BROADCAST;
}

void cx__noded_job_del(struct cx_noded *n, int64_t id, int bcast)
{
  struct cx__ndef *old = NULL;
  pthread_mutex_lock(&n->mu);
  struct cx__nslot *s = slot_find(n, id);
  if (s != NULL && def_bcast(s->def) == bcast)
    old = slot_del(n, id);
  pthread_mutex_unlock(&n->mu);
  def_unref(old);
}

/* The selector of a broadcast job's value, read without the whole job. */
static int bcast_matches(struct cx_noded *n, const char *val, size_t len)
{
  json_t *o = json_loadb(val, len, 0, NULL);
  json_t *sel = json_object_get(o, "node_selector");
  int m = sel == NULL || cx_selector_match(json_string_value(sel), &n->labels);
  json_decref(o);
  return m;
}

void cx__noded_bcast_put(struct cx_noded *n, int64_t id, const char *val,
                         size_t len, int arriving)
{
  if (bcast_matches(n, val, len))
    cx__noded_job_put(n, id, val, len, arriving);
  else
    cx__noded_job_del(n, id, 1);
}

void cx__noded_rebuild(struct cx_noded *n, const struct cx_coord_kvs *kvs,
                       int arriving, int bcast)
{
  pthread_mutex_lock(&n->mu);
  n->gen++;
  pthread_mutex_unlock(&n->mu);
  for (size_t i = 0; i < kvs->n; i++) {
    const struct cx_coord_kv *kv = &kvs->kvs[i];
    struct cx_key k;
    int64_t id = 0;
    if (!bcast)
      id = cx__noded_key_id(n, CX_KEY_JOB, kv->key, kv->key_len);
    else if (cx_key_parse(n->prefix, kv->key, kv->key_len, &k) == 0 &&
             k.kind == CX_KEY_BCAST &&
             bcast_matches(n, kv->value, kv->value_len))
      id = k.id;
    if (id == 0)
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
        if (s->gen != n->gen && def_bcast(s->def) == bcast) {
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

/* Queues a once run of d (under n->mu). */
static int once_locked(struct cx_noded *n, struct cx__ndef *d)
{
  if (n->stopping)
    return 0;
  struct cx__nitem *it = item_new(n, d, CX__ITEM_RUN, "once", 0, 0);
  if (it == NULL)
    return -ENOMEM;
  n->st.fired++;
  queue_push(n, it);
  return 0;
}

/* Once key: run job id now. Returns 0, or CX_ENOTFOUND for an unknown job. */
int cx__noded_once(struct cx_noded *n, int64_t id)
{
  int rc;
  pthread_mutex_lock(&n->mu);
  struct cx__nslot *s = slot_find(n, id);
  if (s == NULL || s->def == NULL)
    rc = CX_ENOTFOUND;
  else
    rc = once_locked(n, s->def);
  pthread_mutex_unlock(&n->mu);
  return rc;
}

int cx__noded_once_job(struct cx_noded *n, const struct cx_job *j)
{
  char err[CX_ERR_LEN] = "";
  struct cx__ndef *d = NULL;
  json_t *o = cx_job_to_json(j);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  if (o)
    json_decref(o);
  if (text == NULL)
    return -ENOMEM;
  int rc = def_make(text, strlen(text), j->id, &d, err);
  free(text);
  if (rc != 0) {
    CX_LOG(CX_LOG_ERROR, LOGC, "once for job %lld refused: %s",
           (long long)j->id, err);
    cx__noded_record_bad(n, j->id, err);
    return rc;
  }
  pthread_mutex_lock(&n->mu);
  rc = once_locked(n, d);
  pthread_mutex_unlock(&n->mu);
  def_unref(d);
  return rc;
}

/* Kill key: kills every queued or running run of job id; returns how many. */
int cx__noded_kill(struct cx_noded *n, int64_t id)
{
  int k = 0;
  pthread_mutex_lock(&n->mu);
  for (struct cx__nitem *a = n->active; a; a = a->anext) {
    if (a->def->job.id == id) {
      item_kill_locked(n, a, "killed (kill request)");
      k++;
    }
  }
  pthread_mutex_unlock(&n->mu);
  return k;
}

/* ---- one run ------------------------------------------------------------- */

struct spawn_ctx {
  struct cx_noded *n;
  struct cx__nitem *it;
  int64_t run_id;
  int attempt;
  char key[CX_KEY_LEN];
  size_t key_len;
};

static void proc_put(struct spawn_ctx *sc, const char *tail)
{
  struct cx_noded *n = sc->n;
  struct cx__nitem *it = sc->it;
  sc->key_len = cx_key_build(sc->key, sizeof sc->key, n->prefix, CX_KEY_PROC,
                             n->uuid, it->def->job.id, tail);
  if (sc->key_len == 0)
    return;
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
  r->per_node = j->allocation == CX_ALLOC_BROADCAST;
  cx__noded_token(r->claim_token);
}

/* The claim key part of j's rows on this node (see cx_store_run_claim). */
static const char *claim_node(const struct cx_noded *n, const struct cx_job *j)
{
  return j->allocation == CX_ALLOC_BROADCAST ? n->uuid : "";
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
  case CX_EXEC_ERROR:
    return "error"; /* no answer to judge: not started, or no http status */
  default:
    return "failed";
  }
}

/* What an attempt says: its output, or when it has none (an http request
 * that got no status, a timeout with no body, a job that could not
 * start) the reason it ended. Borrowed from res. */
static const char *res_output(const struct cx_exec_result *res, size_t *len)
{
  if (res->output && res->output_len > 0 &&
      !(res->status == CX_EXEC_ERROR && res->error[0])) {
    *len = res->output_len;
    return res->output;
  }
  *len = strlen(res->error);
  return res->error;
}

/* Records it's fire as not run here (status "skipped" or "missed", why
 * in msg), through the spool when the store is down, and counts it. */
static void record_unrun(struct cx_noded *n, struct cx__nitem *it,
                         const char *status, const char *msg, uint64_t *counter)
{
  struct cx_run r;
  run_fill(n, it, &r);
  r.status = (char *)status;
  r.end_time = r.start_time;
  r.output = (char *)msg;
  r.output_len = strlen(msg);
  if (cx__noded_record(n, &r, 0, NULL, 0) == 0) {
    pthread_mutex_lock(&n->mu);
    (*counter)++;
    pthread_mutex_unlock(&n->mu);
  }
}

static void do_skip(struct cx_noded *n, struct cx__nitem *it)
{
  const char *msg =
      it->skip_why ? it->skip_why
                   : "skipped: the previous run is still going (concurrency "
                     "forbid)";
  record_unrun(n, it, "skipped", msg, &n->st.skipped);
}

/* ---- fires no node ran -------------------------------------------------- */

/* Writes fires [first, last] (count of them) of it's job as one missed
 * row; why ends the reason. */
static int missed_write(struct cx_noded *n, struct cx__nitem *it, int64_t first,
                        int64_t last, int64_t count, const char *why)
{
  char err[CX_ERR_LEN] = "", a[32], b[32];
  int64_t id = 0;
  struct cx_buf out = {0};
  struct cx_run r;
  cx_time_format(first, NULL, a, sizeof a);
  cx_time_format(last, NULL, b, sizeof b);
  cx_buf_printf(&out, "missed: %lld fire%s from %s to %s; %s", (long long)count,
                count > 1 ? "s" : "", a, b, why);
  run_fill(n, it, &r);
  cx_run_set_missed(&r, first, last, count);
  r.end_time = r.start_time;
  if (!cx_buf_failed(&out)) {
    r.output = out.data;
    r.output_len = out.len;
  }
  int rc = cx_store_run_missed(n->store, &r, &id, err);
  cx_buf_free(&out);
  if (rc == 0) {
    pthread_mutex_lock(&n->mu);
    n->st.missed += (uint64_t)count;
    pthread_mutex_unlock(&n->mu);
  } else if (rc != CX_EEXISTS) {
    CX_LOG(CX_LOG_WARN, LOGC, "job %lld: %lld missed fires not recorded: %s",
           (long long)it->def->job.id, (long long)count, err);
  }
  return rc;
}

/* How far behind the last recorded fire holes are looked for: fires of a
 * job are recorded out of order (a forbid skip on one worker before the
 * run queued ahead of it claims on another), so a node that died or was
 * stopped may leave holes just below the last recorded fire. */
#define HOLE_WINDOW_S 120
/* Missed rows one arrival writes for holes (each may be a range). */
#define HOLE_ROWS_MAX 16
#define HOLE_WHY                                                               \
  "no node ran them (queued on a node that died, was stopped or lost its "     \
  "lease)"

/* Fires of it's job in the hole window below last that have no row. */
static void holes_account(struct cx_noded *n, struct cx__nitem *it,
                          int64_t last, int64_t floor)
{
  char err[CX_ERR_LEN] = "";
  const struct cx_job *j = &it->def->job;
  int64_t after = last - HOLE_WINDOW_S - 1, prev = 0;
  if (after < floor)
    after = floor;
  /* a range row from before the window may reach into it */
  if (cx_store_run_last_fire(n->store, j->id, claim_node(n, j), after, &prev,
                             NULL) == 0 &&
      prev > after)
    after = prev;
  struct cx_run_span *sp = NULL;
  size_t nsp = 0, k = 0;
  if (after >= last ||
      cx_store_run_spans(n->store, j->id, claim_node(n, j), after + 1, last,
                         2 * HOLE_WINDOW_S + 2, &sp, &nsp, err) != 0)
    return;
  int64_t t = after, f, hfirst = 0, hlast = 0, hcount = 0;
  int rows = 0;
  while (rows < HOLE_ROWS_MAX && cx_cron_next(it->def->cron, t, &f) == 0 &&
         f <= last) {
    while (k < nsp && sp[k].last < f)
      k++;
    int covered = k < nsp && sp[k].first <= f;
    if (!covered) {
      if (hcount++ == 0)
        hfirst = f;
      hlast = f;
    }
    if ((covered || f == last) && hcount > 0) {
      missed_write(n, it, hfirst, hlast, hcount, HOLE_WHY);
      rows++;
      hcount = 0;
    }
    t = f;
  }
  if (hcount > 0 && rows < HOLE_ROWS_MAX) /* last is not a fire of this spec */
    missed_write(n, it, hfirst, hlast, hcount, HOLE_WHY);
  cx_free(sp);
}

/* How far back a gap is accounted: one range row whatever its length, but
 * counting its fires costs a cron step each (a week of a job firing every
 * second: ~600 000 steps, well under a second). Older fires are not. */
#define GAP_LOOKBACK_S (7 * 86400)

/* Fires of c in (after, upto]: how many, the first and the last. */
static int64_t fires_in(const struct cx_cron *c, int64_t after, int64_t upto,
                        int64_t *first, int64_t *last)
{
  int64_t count = 0, t = after, f;
  while (t < upto && cx_cron_next(c, t, &f) == 0 && f <= upto) {
    if (count++ == 0)
      *first = f;
    *last = f;
    t = f;
  }
  return count;
}

/* On a job's arrival (node start, takeover, re-listing after a lost lease):
 * the fires due up to it->gap_to that no node ran — its node died, was
 * stopped or fenced with them queued, or nobody held the job — are written
 * as `missed` rows: one range for those after the last recorded fire, and
 * one per hole just below it. it->sched_s > 0 is the fire misfire run_once
 * runs instead (gap_to is just before it). Only the job's holder does
 * this, under its lease, and a node that lost its lease never claims the
 * fires it had queued (fail closed), so no fire in a range can be claimed
 * later; the store refuses overlapping ranges. Returns 1 when the store
 * could not be reached (to be tried again), else 0. */
static int gap_account_once(struct cx_noded *n, struct cx__nitem *it);

/* gap_account_once, again when its range was refused because a row came
 * in meanwhile (the leader writes the gaps of a dead node's jobs; the
 * node may have returned while it did): the rest after that row. */
static int gap_account(struct cx_noded *n, struct cx__nitem *it)
{
  int rc = CX_EEXISTS;
  for (int i = 0; i < 3 && rc == CX_EEXISTS; i++)
    rc = gap_account_once(n, it);
  return rc == CX_EUNAVAIL;
}

/* One pass of gap_account: 0, or the range's CX_EEXISTS / CX_EUNAVAIL. */
static int gap_account_once(struct cx_noded *n, struct cx__nitem *it)
{
  char err[CX_ERR_LEN] = "", a[32], why[160];
  const struct cx_job *j = &it->def->job;
  int64_t last = 0, first = 0, end = 0;
  int64_t floor = it->gap_to - GAP_LOOKBACK_S;
  if (floor < j->created)
    floor = j->created; /* a fire in its second of creation was not due */
  int rc = cx_store_run_last_fire(n->store, j->id, claim_node(n, j), it->gap_to,
                                  &last, err);
  if (rc == CX_ENOTFOUND && j->allocation == CX_ALLOC_BROADCAST) {
    return 0; /* a node new to a broadcast job runs it from its next fire */
  } else if (rc == CX_ENOTFOUND) {
    last = floor;
  } else if (rc != 0) {
    CX_LOG(CX_LOG_WARN, LOGC, "job %lld: missed fires not accounted: %s",
           (long long)j->id, err);
    return rc == CX_EUNAVAIL ? rc : 0;
  } else if (last > floor) {
    holes_account(n, it, last, floor);
  }
  int misfire = it->sched_s > 0;
  if (last < floor)
    last = floor;
  int64_t count = fires_in(it->def->cron, last, it->gap_to, &first, &end);
  if (count == 0)
    return 0;
  const char *base = "no node ran them (its node was down, stopped or cut "
                     "off, or the job was moving)";
  if (misfire) {
    cx_time_format(it->sched_s, NULL, a, sizeof a);
    snprintf(why, sizeof why, "%s; misfire run_once runs only the latest, %s",
             base, a);
  } else if (j->misfire && strcmp(j->misfire, "skip") == 0) {
    snprintf(why, sizeof why, "%s; misfire skip runs none of them", base);
  } else {
    snprintf(why, sizeof why, "%s; all past starting_deadline (%d s)", base,
             j->starting_deadline);
  }
  rc = missed_write(n, it, first, end, count, why);
  return rc == CX_EUNAVAIL || rc == CX_EEXISTS ? rc : 0;
}

/* Keeps a GAP item whose store was unavailable for cx__noded_gaps_retry
 * (which queues it again each second), for about a minute: 1 if kept. */
static int gap_defer(struct cx_noded *n, struct cx__nitem *it)
{
  pthread_mutex_lock(&n->mu);
  int keep = !n->stopping && ++it->attempt <= 60;
  if (keep) {
    it->next = n->gaps;
    n->gaps = it;
  }
  pthread_mutex_unlock(&n->mu);
  return keep;
}

void cx__noded_gaps_retry(struct cx_noded *n)
{
  pthread_mutex_lock(&n->mu);
  while (n->gaps != NULL && !n->stopping) {
    struct cx__nitem *it = n->gaps;
    n->gaps = it->next;
    queue_push(n, it);
  }
  pthread_mutex_unlock(&n->mu);
}

/* The output limit now (SIGHUP may change it), clamped as exec does, for
 * a run's live output. */
static size_t live_limit(struct cx_noded *n)
{
  struct cx__nsettings set;
  cx__noded_settings(n, &set);
  int64_t v =
      set.output_limit ? set.output_limit : CX_EXEC_OUTPUT_LIMIT_DEFAULT;
  if (v < CX_EXEC_OUTPUT_LIMIT_MIN)
    v = CX_EXEC_OUTPUT_LIMIT_MIN;
  if (v > CX_EXEC_OUTPUT_LIMIT_MAX)
    v = CX_EXEC_OUTPUT_LIMIT_MAX;
  return (size_t)v;
}

/* A broadcast run's place among the fire's nodes; with max_running, the
 * fire's runners are the max_running nodes from a start that rotates with
 * the fire (its second), so the load spreads and every node agreeing on
 * the set picks the same ones without talking. The others record the fire
 * as skipped. Returns -1 when this node does not run it (recorded). */
static int shard_place(struct cx_noded *n, struct cx__nitem *it)
{
  char err[CX_ERR_LEN] = "";
  const struct cx_job *j = &it->def->job;
  int idx = 0, total = 1;
  if (cx__noded_shard(n, j, &idx, &total, err) != 0) {
    it->skip_why = "skipped: the node set of this broadcast fire could not be "
                   "read from coordination";
    CX_LOG(CX_LOG_WARN, LOGC, "job %lld: %s", (long long)j->id, err);
    do_skip(n, it);
    return -1;
  }
  it->shard_index = idx;
  it->shard_total = total;
  int64_t turn = it->has_sched ? it->sched_s : it->queued_ms / 1000;
  if (j->max_running > 0 && j->max_running < total &&
      ((int64_t)idx - turn % total + total) % total >= j->max_running) {
    it->skip_why = "skipped: max_running nodes run this broadcast fire, this "
                   "one is not among them";
    do_skip(n, it);
    return -1;
  }
  return 0;
}

/* A misfire fire (the latest one missed before the job arrived here) that
 * the store cannot confirm unclaimed: not run blind, since the job's
 * previous node may have run it before it lost the job (a run claimed
 * there and one spooled here would be two runs of one fire). Recorded as
 * missed instead, through the spool when the store is down; a row already
 * there (that node's run) makes the record a no-op. */
static void misfire_unconfirmed(struct cx_noded *n, struct cx__nitem *it,
                                const char *err)
{
  char msg[CX_ERR_LEN + 160];
  snprintf(msg, sizeof msg,
           "missed: the store could not be reached when this node took the "
           "job over (%s), so its latest missed fire was not run: the "
           "previous node may have run it",
           err);
  CX_LOG(CX_LOG_WARN, LOGC, "job %lld: misfire %lld not run: %s",
         (long long)it->def->job.id, (long long)it->sched_s, err);
  record_unrun(n, it, "missed", msg, &n->st.missed);
}

/* Claims the fire (or, store down, goes on to spool it). Returns 0 when
 * the run starts, -1 when there is nothing to run. */
static int run_start(struct cx_noded *n, struct cx__nitem *it)
{
  char err[CX_ERR_LEN] = "";
  const struct cx_job *j = &it->def->job;
  int64_t id = 0;

  if (it->kind == CX__ITEM_MISFIRE) {
    int64_t last = 0;
    int rc = cx_store_run_last_fire(n->store, j->id, claim_node(n, j),
                                    it->sched_s, &last, err);
    if (rc == 0 && last >= it->sched_s)
      return -1; /* it has a row already (run, claimed, or missed) */
    if (rc == CX_ENOTFOUND && j->allocation == CX_ALLOC_BROADCAST)
      return -1; /* new to this node: from its next fire on */
    if (rc != 0 && rc != CX_ENOTFOUND) {
      misfire_unconfirmed(n, it, err);
      return -1;
    }
  }
  if (j->allocation == CX_ALLOC_BROADCAST && shard_place(n, it) != 0)
    return -1;
  struct cx_exec *x = NULL;
  if (cx_exec_create(&x) != 0) {
    CX_LOG(CX_LOG_ERROR, LOGC, "job %lld: no exec handle, fire dropped",
           (long long)j->id);
    return -1;
  }
  pthread_mutex_lock(&n->mu);
  it->x = x;
  if (it->killed)
    cx_exec_kill(x);
  pthread_mutex_unlock(&n->mu);
  run_fill(n, it, &it->run);
  int rc = cx_store_run_claim(n->store, &it->run, &id, err);
  if (rc == CX_EEXISTS) {
    pthread_mutex_lock(&n->mu);
    n->st.lost_claims++;
    pthread_mutex_unlock(&n->mu);
    return -1;
  }
  if (rc != 0 && it->kind == CX__ITEM_MISFIRE) {
    misfire_unconfirmed(n, it, err);
    return -1;
  }
  it->claimed = rc == 0;
  it->started = 1;
  if (it->claimed) {
    it->run.id = id;
    it->live = cx_live_open(n->live, id, live_limit(n)); /* NULL: none */
    pthread_mutex_lock(&n->mu);
    n->st.claimed++;
    pthread_mutex_unlock(&n->mu);
  } else {
    CX_LOG(CX_LOG_WARN, LOGC,
           "job %lld: claim failed (%s); running and spooling the record",
           (long long)j->id, err);
  }
  return 0;
}

/* The job's env (or headers) plus, for a broadcast run, its shard: the
 * pairs into kv (CX_EXEC_ENV_MAX + 2), numbers into buf. */
static const struct cx_exec_kv *shard_kv(const struct cx__nitem *it,
                                         const struct cx_exec_kv *v, size_t nv,
                                         int http, struct cx_exec_kv *kv,
                                         char (*buf)[24])
{
  if (it->shard_total <= 0 || nv > CX_EXEC_ENV_MAX)
    return v;
  for (size_t i = 0; i < nv; i++)
    kv[i] = v[i];
  snprintf(buf[0], sizeof buf[0], "%d", it->shard_index);
  snprintf(buf[1], sizeof buf[1], "%d", it->shard_total);
  kv[nv] = (struct cx_exec_kv){
      http ? "X-Cronix-Shard-Index" : "CRONIX_SHARD_INDEX", buf[0]};
  kv[nv + 1] = (struct cx_exec_kv){
      http ? "X-Cronix-Shard-Total" : "CRONIX_SHARD_TOTAL", buf[1]};
  return kv;
}

/* Runs the run's next attempt into it->res. */
static void attempt_run(struct cx_noded *n, struct cx__nitem *it)
{
  struct cx_exec_kv kv[CX_EXEC_ENV_MAX + 2];
  char sbuf[2][24];
  struct cx__nsettings set;
  const struct cx_job *j = &it->def->job;
  cx__noded_settings(n, &set);
  struct cx_exec_opts xo = {
      .shell = set.shell,
      .output_limit = (size_t)set.output_limit,
      .kill_grace_ms = set.kill_grace_s * 1000,
      .live = it->live,
  };
  cx_exec_result_free(&it->res);
  it->attempt++;
  struct spawn_ctx sc = {
      .n = n, .it = it, .run_id = it->run.id, .attempt = it->attempt};
  if (it->attempt == 1 && it->has_sched)
    cx__noded_late_observe(n, j->id, cx_wall_ms() - it->sched_s * 1000);
  if (j->type == CX_JOB_HTTP) {
    char tail[64];
    if (it->run.id > 0)
      snprintf(tail, sizeof tail, "r%lld", (long long)it->run.id);
    else
      snprintf(tail, sizeof tail, "r%.16s", it->run.claim_token);
    proc_put(&sc, tail);
    struct cx_exec_http req = {
        .url = j->command,
        .method = j->http_method,
        .headers = shard_kv(it, it->def->hdr, it->def->nhdr, 1, kv, sbuf),
        .nheaders = it->def->nhdr + (it->shard_total > 0 ? 2 : 0),
        .body = j->http_body,
        .body_len = j->http_body ? strlen(j->http_body) : 0,
        .timeout_ms = (int64_t)j->timeout * 1000,
    };
    cx_exec_run_http(it->x, &xo, &req, &it->res, NULL);
  } else {
    struct cx__jobuser ju;
    char why[CX_ERR_LEN];
    if (cx__nuser_job(&n->user, j->run_as, &ju, why) != 0) {
      /* Recorded as an error with the reason, never run as another. */
      memset(&it->res, 0, sizeof it->res);
      it->res.status = CX_EXEC_ERROR;
      it->res.exit_code = -1;
      it->res.start_ms = it->res.end_ms = cx_wall_ms();
      snprintf(it->res.error, sizeof it->res.error, "%s", why);
      proc_del(&sc);
      return;
    }
    xo.base_env = ju.envp;
    xo.cgroup_dir = n->user.cgroup[0] ? n->user.cgroup : NULL;
    struct cx_exec_cmd cmd = {
        .command = j->command,
        .env = shard_kv(it, it->def->env, it->def->nenv, 0, kv, sbuf),
        .nenv = it->def->nenv + (it->shard_total > 0 ? 2 : 0),
        .workdir = (j->workdir && j->workdir[0]) ? j->workdir : set.workdir,
        .timeout_ms = (int64_t)j->timeout * 1000,
        .set_user = ju.set_user,
        .uid = ju.uid,
        .gid = ju.gid,
        .limits = {.memory_mb = j->limit_memory_mb,
                   .nproc = j->limit_nproc,
                   .cpu_s = j->limit_cpu_s,
                   .nofile = j->limit_nofile},
    };
    cx_exec_run_cmd(it->x, &xo, &cmd, on_spawn, &sc, &it->res, NULL);
  }
  proc_del(&sc);
  if (it->attempt == 1 && it->res.start_ms > 0)
    it->run.start_time = it->res.start_ms; /* spawned or sent, not claimed */
}

/* Queues the last attempt to be stored (a copy: it->res is reused). */
static int attempt_keep(struct cx__nitem *it)
{
  size_t len;
  const char *out = res_output(&it->res, &len);
  struct cx_run_attempt *v =
      cx_realloc(it->pend, (it->npend + 1) * sizeof *it->pend);
  if (v == NULL)
    return -ENOMEM;
  it->pend = v;
  struct cx_run_attempt *a = &v[it->npend];
  memset(a, 0, sizeof *a);
  a->output = cx_malloc(len + 1);
  if (a->output == NULL)
    return -ENOMEM;
  memcpy(a->output, out, len);
  a->output[len] = '\0';
  a->output_len = len;
  a->run_id = it->run.id;
  a->attempt = it->attempt;
  a->start_time = it->res.start_ms;
  a->end_time = it->res.end_ms;
  a->status = (char *)status_of(it->res.status);
  a->exit_code = it->res.exit_code;
  it->npend++;
  return 0;
}

static void pend_free(struct cx__nitem *it)
{
  for (size_t i = 0; i < it->npend; i++)
    cx_free(it->pend[i].output);
  cx_free(it->pend);
  it->pend = NULL;
  it->npend = 0;
}

/* Before a retry wait: stores the attempts so far and the run row's
 * progress (attempts, last exit code and output; still running), so the
 * log shows them during the wait. What the store does not take now goes
 * with the final record. */
static void attempt_progress(struct cx_noded *n, struct cx__nitem *it)
{
  char err[CX_ERR_LEN] = "";
  size_t done = 0;
  int rc = 0;
  if (!it->claimed)
    return;
  for (; done < it->npend; done++)
    if ((rc = cx_store_run_attempt_put(n->store, &it->pend[done], err)) != 0)
      break;
  for (size_t i = 0; i < done; i++)
    cx_free(it->pend[i].output);
  memmove(it->pend, it->pend + done, (it->npend - done) * sizeof *it->pend);
  it->npend -= done;
  if (rc == 0) {
    struct cx_run r = it->run;
    r.attempts = it->attempt;
    r.exit_code = it->res.exit_code;
    r.output = (char *)res_output(&it->res, &r.output_len);
    rc = cx_store_run_finish(n->store, &r, err);
  }
  if (rc != 0)
    CX_LOG(CX_LOG_WARN, LOGC, "job %lld run %lld attempt %d: %s",
           (long long)it->run.job_id, (long long)it->run.id, it->attempt, err);
}

/* After an attempt: 1 if the run goes back on the timer for a retry (the
 * item is then the timer's until it fires), 0 if it ends now. */
static int retry_park(struct cx_noded *n, struct cx__nitem *it)
{
  const struct cx_job *j = &it->def->job;
  enum cx_exec_status st = it->res.status;
  if (st == CX_EXEC_SUCCESS || st == CX_EXEC_KILLED ||
      it->attempt > j->retry_times)
    return 0;
  struct cx__nsettings set;
  cx__noded_settings(n, &set);
  int64_t wait_s = j->retry_interval > 0
                       ? j->retry_interval
                       : (int64_t)it->attempt * set.retry_base_s;
  if (attempt_keep(it) != 0)
    return 0;
  attempt_progress(n, it);
  int parked = 0;
  pthread_mutex_lock(&n->mu);
  if (!it->killed && !it->orphan && !n->stopping) {
    int64_t key = -++n->retry_seq;
    if (cx_sched_put(n->sched, key, cx_wall_ms() + wait_s * 1000, it, NULL) ==
        0) {
      it->retry_key = key;
      parked = 1;
    }
  }
  pthread_mutex_unlock(&n->mu);
  return parked;
}

/* Records the run as its last attempt left it. */
static void run_finish(struct cx_noded *n, struct cx__nitem *it)
{
  struct cx_run *r = &it->run;
  struct cx_buf out = {0};
  enum cx_exec_status st = it->res.status;
  const char *why;

  pthread_mutex_lock(&n->mu);
  if (it->killed && st != CX_EXEC_SUCCESS)
    st = CX_EXEC_KILLED;
  why = it->retry_cancelled ? it->kill_why : NULL;
  pthread_mutex_unlock(&n->mu);
  /* A retried run keeps each attempt; one that never retried is its own
   * single attempt (the store makes it from the row). */
  if (it->attempt > 1 &&
      (it->npend == 0 || it->pend[it->npend - 1].attempt != it->attempt))
    attempt_keep(it);
  r->attempts = it->attempt;
  r->status = (char *)status_of(st);
  r->success = st == CX_EXEC_SUCCESS;
  r->exit_code = it->res.exit_code;
  r->end_time = cx_wall_ms();
  r->output = (char *)res_output(&it->res, &r->output_len);
  if (why != NULL) {
    cx_buf_append(&out, r->output, r->output_len);
    cx_buf_printf(
        &out, "%s[retry cancelled: %s]\n",
        r->output_len && r->output[r->output_len - 1] != '\n' ? "\n" : "", why);
    if (!cx_buf_failed(&out)) {
      r->output = out.data;
      r->output_len = out.len;
    }
  }
  cx__noded_record(n, r, it->claimed, it->pend, it->npend);
  /* After the record is handed on: a follower told "ended" reads on from
   * the window (it lingers), then from the store. */
  cx_live_end(it->live, r->status, r->exit_code);
  pthread_mutex_lock(&n->mu);
  n->st.runs++;
  pthread_mutex_unlock(&n->mu);
  cx_buf_free(&out);
  pend_free(it);
}

/* One turn of a run on a worker: its claim and first attempt, or its next
 * attempt after a retry wait, or (finish) just its record. Returns 1 when
 * it went back on the timer to wait for a retry, 0 when it is over. */
static int do_run(struct cx_noded *n, struct cx__nitem *it)
{
  if (!it->started && run_start(n, it) != 0)
    return 0;
  pthread_mutex_lock(&n->mu);
  if (it->attempt > 0 && !it->finish && (it->killed || it->orphan)) {
    /* Killed, or its job left, while its retry was due and queued. */
    it->retry_cancelled = 1;
    if (!it->killed) {
      it->killed = 1;
      it->kill_why = "the job left this node";
    }
  }
  int more = !it->finish && !(it->killed && it->attempt > 0);
  pthread_mutex_unlock(&n->mu);
  if (more) {
    attempt_run(n, it);
    if (retry_park(n, it))
      return 1;
  }
  run_finish(n, it);
  return 0;
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
    int parked = 0;
    /* A fire may have waited here while the process was stopped: fail
     * closed unless the lease is still ours (SPEC §10). A run already
     * under way is then closed with its last attempt, not retried. */
    if (it->lease != atomic_load(&n->lease) || !cx__noded_lease_held(n)) {
      pthread_mutex_lock(&n->mu);
      n->st.fenced++;
      it->finish = 1;
      pthread_mutex_unlock(&n->mu);
      if (it->started)
        run_finish(n, it);
    } else if (it->kind == CX__ITEM_SKIP) {
      do_skip(n, it);
    } else if (it->kind == CX__ITEM_GAP) {
      parked = gap_account(n, it) && gap_defer(n, it);
    } else {
      parked = do_run(n, it);
    }
    pthread_mutex_lock(&n->mu);
    if (parked) /* the timer (or the gap list) has it now */
      continue;
    if (item_active(it->kind))
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
  if (cx_random_bytes(b, sizeof b) != 0) {
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
           cfg->node_workdir[0] ? cfg->node_workdir : "/");
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
  /* Every timed wait here measures a duration: on the monotonic clock. */
  cx_cond_init_mono(&n->qcond);
  cx_cond_init_mono(&n->idle);
  cx_cond_init_mono(&n->mcond);
  cx_cond_init_mono(&n->pcond);
  n->store = o->store;
  n->live = o->live;
  if (n->live == NULL) {
    if ((rc = cx_live_table_create(&n->live)) != 0)
      goto fail;
    n->live_owned = 1;
  }
  n->coord = o->coord;
  n->fire_hook = o->fire_hook;
  n->fire_hook_arg = o->fire_hook_arg;
  snprintf(n->version, sizeof n->version, "%s", o->version ? o->version : "");
  snprintf(n->data_dir, sizeof n->data_dir, "%s", o->cfg->data_dir);
  snprintf(n->prefix, sizeof n->prefix, "%s", o->cfg->etcd_prefix);
  size_t pl = strlen(n->prefix);
  while (pl > 0 && n->prefix[pl - 1] == '/')
    n->prefix[--pl] = '\0';
  n->ttl = o->cfg->node_ttl;
  snprintf(n->live_listen, sizeof n->live_listen, "%s",
           o->cfg->node_listen ? o->cfg->node_listen : "");
  snprintf(n->live_secret, sizeof n->live_secret, "%s",
           o->cfg->cluster_secret ? o->cfg->cluster_secret : "");
  if (cx_labels_parse(o->cfg->node_labels ? o->cfg->node_labels : "",
                      &n->labels, err) != 0) {
    rc = CX_EPARSE;
    goto fail;
  }
  n->nworkers = (int)o->cfg->node_max_concurrent;
  if (n->nworkers < 1)
    n->nworkers = 1;
  cx_noded_reload(n, o->cfg);
  if ((rc = cx__nuser_init(&n->user, o->cfg, err)) != 0)
    goto fail;
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

struct cx_live_table *cx_noded_live(struct cx_noded *n)
{
  return n->live;
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
  /* Before registering: the node key advertises the listener's port. */
  if ((rc = cx__noded_live_start(n, n->live_listen, n->live_secret, err)) != 0)
    return rc;
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
  /* Queued fires that have not started are dropped (never claimed); runs
   * under way (a retry due, or waiting on the stopped timer) are recorded
   * as their last attempt left them, no more attempts. */
  struct cx__nitem *drop = NULL;
  pthread_mutex_lock(&n->mu);
  struct cx__nitem **pp = &n->qhead;
  n->qtail = NULL;
  while (*pp) {
    struct cx__nitem *it = *pp;
    if (it->kind != CX__ITEM_SKIP && !it->started) {
      *pp = it->next;
      if (item_active(it->kind))
        active_unlink(n, it);
      it->next = drop;
      drop = it;
    } else {
      it->finish = 1;
      n->qtail = it;
      pp = &it->next;
    }
  }
  for (struct cx__nitem *a = n->active; a; a = a->anext) {
    if (a->retry_key != 0 &&
        cx_sched_remove(n->sched, a->retry_key, NULL) == 0) {
      a->retry_key = 0;
      a->finish = 1;
      queue_push(n, a);
    }
  }
  struct cx__nsettings set;
  cx__noded_settings(n, &set);
  cx_mono until = cx_mono_now() + (cx_mono)set.shutdown_grace_s * 1000000;
  while (n->nactive > 0 && cx_mono_now() < until)
    cx_cond_wait_ms(&n->idle, &n->mu, 100);
  if (n->nactive > 0)
    CX_LOG(CX_LOG_WARN, LOGC, "shutdown grace over: killing %zu runs",
           n->nactive);
  for (struct cx__nitem *a = n->active; a; a = a->anext) {
    a->killed = 1;
    if (a->x)
      cx_exec_kill(a->x);
  }
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
  /* gaps still waiting for the store: the next start accounts for them */
  while (n->gaps) {
    struct cx__nitem *next = n->gaps->next;
    item_free(n->gaps);
    n->gaps = next;
  }
  cx__noded_procs_stop(n);
  cx__noded_live_stop(n); /* the runs are over: followers had their end */
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
  if (n->live_owned)
    cx_live_table_destroy(n->live);
  cx__nuser_fini(&n->user);
  pthread_mutex_destroy(&n->mu);
  pthread_mutex_destroy(&n->setmu);
  pthread_mutex_destroy(&n->spmu);
  pthread_mutex_destroy(&n->lease_mu);
  pthread_mutex_destroy(&n->pmu);
  pthread_cond_destroy(&n->pcond);
  pthread_cond_destroy(&n->qcond);
  pthread_cond_destroy(&n->idle);
  pthread_cond_destroy(&n->mcond);
  cx_free(n);
}
