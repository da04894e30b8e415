/*
 * admin: the job write protocol (SPEC §5.2, §5.3) -- placement, the job's
 * published value, and every write that touches both the store and the
 * coordination key <prefix>/job/<node>/<id>. The HTTP routes
 * (routes_job.c) and the leader's failover and reconciliation (cluster.c)
 * both write through here.
 *
 * The store is the truth; the key is its published copy. Every write goes
 * store first, coordination second, and undoes the store write when the
 * coordination write fails, so the only half-made state a crash (of this
 * process, between the two writes) can leave is "a row without its key"
 * -- never "a key without its row":
 *
 *   create   insert row -> put key; put fails: delete row (and, in case
 *            the put did apply after all -- a timeout is ambiguous -- a
 *            best-effort delete of the key).
 *   update   store update guarded by `updated` -> one coord txn that
 *            deletes the old key (when the node changes) and puts the new
 *            one; txn fails: write the old row back.
 *   move     (failover) store move guarded by "still on from" -> one txn
 *            deleting the old key and putting the new one, guarded by the
 *            caller (the leader's revision); refused: move the row back.
 *   del      delete key -> delete row; row delete fails: put the key back.
 *   pause    set enabled -> put key; put fails: set enabled back.
 *
 * What the reconciler (the leader's job, SPEC §10) must repair, and can,
 * because the store is authoritative and every key names its row:
 *   - a row whose key is missing or differs (crash between the writes, or
 *     a compensation that failed too): publish the row;
 *   - a key whose row is gone or names another node (an ambiguous put that
 *     applied after its timeout, while the compensation could not reach
 *     coordination): delete the key;
 *   - two admins interleaving updates of one job across the two stores
 *     (store order A,B; coordination order B,A): rewrite from the row.
 * Within one admin process, writes to one job are serialised by a striped
 * lock (cx__jobs_lock), so they reach both stores in the same order.
 *
 * Placement: auto = the alive node (key under <prefix>/node/) whose
 * labels match the job's node_selector with the fewest jobs in the store,
 * ties to the lowest uuid (deterministic, and sequential adds still spread
 * because each add changes the counts). Manual placement and an auto job
 * staying on its node need that node alive and matching too (cx__jobs_fit);
 * failover picks like auto placement, so a job never moves to a node its
 * selector excludes. A drained node (/node/drain) is no candidate at all:
 * it keeps its manual jobs, and the leader moves its auto jobs away.
 *
 * Broadcast (allocation 3): no placement. The row keeps run_on = "" and
 * the published copy is one key, <prefix>/bcast/<id>, that every node
 * watches; a node takes the jobs whose node_selector its own labels match.
 * So a node that joins later needs nobody to publish to it, a dead node
 * is simply absent, and no failover applies. The same write protocol
 * holds with this key in place of the node's (cx__jobs_key).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin-int.h"
#include "job/job.h"

#define JOB_LOCKS 64 /* stripes of the per-job lock */

/* Shared by every admin in the process: over-serialising two admins in
 * one test process is harmless. */
static pthread_mutex_t job_locks[JOB_LOCKS] = {[0 ... JOB_LOCKS - 1] =
                                                   PTHREAD_MUTEX_INITIALIZER};

pthread_mutex_t *cx__jobs_lock(int64_t id)
{
  return &job_locks[(uint64_t)id % JOB_LOCKS];
}

/* ---- placement ----------------------------------------------------------- */

/* Job counts per node for the API's placements. Counting every job (GROUP
 * BY over the whole table) on each add would cost O(jobs) per add; the
 * counts are read at most every LOAD_TTL_US instead and kept current in
 * between by this process's own placements. Other admins' placements and
 * deletions show at the next refresh: the balance may be off for up to
 * LOAD_TTL_US, never longer. Shared by the admins of one process (a
 * different store forces a refresh). The leader's failover reads the
 * counts fresh instead (cx__jobs_placement with fresh = 1). */
#define LOAD_TTL_US 2000000
struct load_entry {
  char uuid[CX_KEY_UUID_MAX + 1];
  int64_t count;
};
static struct {
  pthread_mutex_t mu;
  const struct cx_store *store;
  cx_mono at;
  struct load_entry *v;
  size_t n, cap;
} load = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* With load.mu held. */
static struct load_entry *load_find(const char *uuid, int add)
{
  for (size_t i = 0; i < load.n; i++)
    if (strcmp(load.v[i].uuid, uuid) == 0)
      return &load.v[i];
  if (!add || strlen(uuid) > CX_KEY_UUID_MAX)
    return NULL;
  if (load.n == load.cap) {
    size_t cap = load.cap ? load.cap * 2 : 16;
    struct load_entry *v = cx_realloc(load.v, cap * sizeof *v);
    if (v == NULL)
      return NULL;
    load.v = v;
    load.cap = cap;
  }
  struct load_entry *e = &load.v[load.n++];
  snprintf(e->uuid, sizeof e->uuid, "%s", uuid);
  e->count = 0;
  return e;
}

/* With load.mu held: re-reads the counts when stale. */
static int load_refresh(struct cx_admin *a, char *err)
{
  struct cx_node_jobs *counts = NULL;
  size_t n = 0;
  cx_mono now = cx_mono_now();
  if (load.store == a->store && load.at != 0 && now - load.at < LOAD_TTL_US)
    return 0;
  int rc = cx_store_job_count_by_node(a->store, &counts, &n, err);
  if (rc != 0)
    return rc;
  load.n = 0;
  for (size_t i = 0; i < n; i++) {
    struct load_entry *e = load_find(counts[i].run_on, 1);
    if (e != NULL)
      e->count = counts[i].count;
  }
  cx_node_jobs_free(counts, n);
  load.store = a->store;
  load.at = now;
  return 0;
}

void cx__jobs_placed(const char *node)
{
  pthread_mutex_lock(&load.mu);
  struct load_entry *e = load_find(node, 1);
  if (e != NULL)
    e->count++;
  pthread_mutex_unlock(&load.mu);
}

void cx__jobs_load_forget(void)
{
  pthread_mutex_lock(&load.mu);
  load.at = 0;
  pthread_mutex_unlock(&load.mu);
}

int cx__jobs_placement(struct cx_admin *a, int fresh, struct cx__placement *p,
                       const char **what, char *err)
{
  struct cx_node_jobs *v = NULL;
  size_t nv = 0;
  memset(p, 0, sizeof *p);
  p->cached = !fresh;
  *what = "coordination";
  char **labels = NULL;
  int rc = cx__admin_alive_list(a, fresh, &p->alive, &labels, &p->n, err);
  if (rc != 0)
    return rc;
  if (p->n > 0 && (p->labels = cx_calloc(p->n, sizeof *p->labels)) == NULL)
    rc = -ENOMEM;
  for (size_t k = 0; k < p->n; k++) {
    if (p->labels != NULL)
      cx_labels_parse(labels[k], &p->labels[k], NULL); /* checked: alive.c */
    cx_free(labels[k]);
  }
  cx_free(labels);
  char **drained = NULL;
  size_t nd = 0;
  if (rc == 0)
    rc = cx__jobs_drained(a, &drained, &nd, err);
  size_t kept = 0; /* drop the drained nodes, keeping the order */
  for (size_t k = 0; rc == 0 && k < p->n; k++) {
    if (cx__jobs_listed(drained, nd, p->alive[k])) {
      cx_free(p->alive[k]);
      continue;
    }
    p->alive[kept] = p->alive[k];
    p->labels[kept++] = p->labels[k];
  }
  if (rc == 0)
    p->n = kept;
  for (size_t k = 0; k < nd; k++)
    cx_free(drained[k]);
  cx_free(drained);
  if (rc != 0) {
    cx__jobs_placement_free(p);
    return rc;
  }
  *what = "store";
  if (!fresh && p->n == 0) {
    rc = 0; /* nowhere to place: the counts do not matter */
  } else if (!fresh) {
    pthread_mutex_lock(&load.mu);
    rc = load_refresh(a, err);
    pthread_mutex_unlock(&load.mu);
  } else if ((p->jobs = cx_calloc(p->n + 1, sizeof *p->jobs)) == NULL) {
    rc = -ENOMEM;
  } else if ((rc = cx_store_job_count_by_node(a->store, &v, &nv, err)) == 0) {
    for (size_t i = 0; i < nv; i++)
      for (size_t k = 0; k < p->n; k++)
        if (strcmp(p->alive[k], v[i].run_on) == 0)
          p->jobs[k] = v[i].count;
    cx_node_jobs_free(v, nv);
  }
  if (rc != 0)
    cx__jobs_placement_free(p);
  return rc;
}

long cx__jobs_pick(struct cx__placement *p, const char *selector)
{
  long best = -1;
  int64_t bc = 0;
  if (p->cached)
    pthread_mutex_lock(&load.mu);
  for (size_t k = 0; k < p->n; k++) {
    if (!cx_selector_match(selector, &p->labels[k]))
      continue;
    int64_t c = p->jobs ? p->jobs[k] : 0;
    if (p->cached) {
      struct load_entry *e = load_find(p->alive[k], 0);
      c = e ? e->count : 0;
    }
    if (best < 0 || c < bc) { /* sorted: ties keep the lowest */
      best = (long)k;
      bc = c;
    }
  }
  if (best >= 0 && p->cached) {
    struct load_entry *e = load_find(p->alive[best], 1);
    if (e != NULL)
      e->count++;
  }
  if (p->cached)
    pthread_mutex_unlock(&load.mu);
  return best;
}

int cx__jobs_bcast_nodes(struct cx_admin *a, const char *selector, char ***out,
                         size_t *n, char *err)
{
  struct cx__placement p;
  const char *what;
  *out = NULL;
  *n = 0;
  int rc = cx__jobs_placement(a, 0, &p, &what, err);
  if (rc != 0)
    return rc;
  char **v = cx_calloc(p.n + 1, sizeof *v);
  for (size_t k = 0; v != NULL && k < p.n; k++)
    if (cx_selector_match(selector, &p.labels[k])) {
      v[*n] = p.alive[k]; /* sorted, as the nodes sort their shards */
      p.alive[k] = NULL;
      (*n)++;
    }
  cx__jobs_placement_free(&p);
  if (v == NULL)
    return -ENOMEM;
  *out = v;
  return 0;
}

int cx__jobs_placement_has(const struct cx__placement *p, const char *uuid)
{
  for (size_t k = 0; uuid != NULL && k < p->n; k++)
    if (strcmp(p->alive[k], uuid) == 0)
      return 1;
  return 0;
}

int cx__jobs_fit(struct cx_admin *a, const char *uuid, const char *selector,
                 int *fit, char *err)
{
  struct cx_labels l;
  int alive = 0;
  int rc = cx__admin_node_labels(a, uuid, &alive, &l, err);
  *fit = !alive                            ? CX__FIT_DEAD
         : cx_selector_match(selector, &l) ? CX__FIT_OK
                                           : CX__FIT_MISMATCH;
  char key[CX_KEY_LEN];
  struct cx_coord_kvs kvs;
  size_t kl =
      cx_key_build(key, sizeof key, a->prefix, CX_KEY_DRAIN, uuid, 0, NULL);
  if (rc == 0 && *fit == CX__FIT_OK && kl > 0) {
    rc = cx_coord_get(a->coord, key, kl, &kvs, err);
    if (rc == 0) {
      *fit = CX__FIT_DRAINED;
      cx_coord_kvs_free(&kvs);
    }
    if (rc == CX_ENOTFOUND)
      rc = 0;
  }
  return rc;
}

static int cmp_str(const void *x, const void *y)
{
  return strcmp(*(char *const *)x, *(char *const *)y);
}

int cx__jobs_drained(struct cx_admin *a, char ***out, size_t *n, char *err)
{
  char dir[CX_KEY_LEN];
  struct cx_coord_kvs kvs = {0};
  struct cx_key k;
  size_t m = 0;
  *out = NULL;
  *n = 0;
  size_t dl = cx_key_dir(dir, sizeof dir, a->prefix, CX_KEY_DRAIN, NULL);
  int rc = cx_coord_range(a->coord, dir, dl, &kvs, err);
  if (rc != 0)
    return rc;
  char **v = kvs.n ? cx_calloc(kvs.n, sizeof *v) : NULL;
  if (kvs.n > 0 && v == NULL)
    rc = -ENOMEM;
  for (size_t i = 0; rc == 0 && i < kvs.n; i++)
    if (cx__admin_key_is(a, CX_KEY_DRAIN, kvs.kvs[i].key, kvs.kvs[i].key_len,
                         &k) &&
        (v[m++] = cx_strdup(k.uuid)) == NULL)
      rc = -ENOMEM;
  cx_coord_kvs_free(&kvs);
  if (rc != 0) {
    for (size_t i = 0; i < m; i++)
      cx_free(v[i]);
    cx_free(v);
    return rc;
  }
  if (m > 1)
    qsort(v, m, sizeof *v, cmp_str);
  *out = v;
  *n = m;
  return 0;
}

int cx__jobs_listed(char *const *v, size_t n, const char *uuid)
{
  return uuid != NULL && n > 0 &&
         bsearch(&uuid, v, n, sizeof *v, cmp_str) != NULL;
}

void cx__jobs_placement_free(struct cx__placement *p)
{
  for (size_t k = 0; k < p->n; k++)
    cx_free(p->alive[k]);
  cx_free(p->alive);
  cx_free(p->labels);
  cx_free(p->jobs);
  memset(p, 0, sizeof *p);
}

/* ---- publication --------------------------------------------------------- */

char *cx__jobs_value(const struct cx_job *j)
{
  json_t *o = cx_job_to_json(j);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

size_t cx__jobs_key(struct cx_admin *a, const struct cx_job *j,
                    char key[CX_KEY_LEN])
{
  if (j->allocation == CX_ALLOC_BROADCAST)
    return cx_key_build(key, CX_KEY_LEN, a->prefix, CX_KEY_BCAST, NULL, j->id,
                        NULL);
  return j->run_on && j->run_on[0]
             ? cx_key_build(key, CX_KEY_LEN, a->prefix, CX_KEY_JOB, j->run_on,
                            j->id, NULL)
             : 0;
}

/* The ops that publish j (its put, after the delete of its key under
 * old_node when that differs: see cx__jobs_publish) into ops[0..2), with
 * key and old as their key buffers and *val the put's value (free() it).
 * Returns how many ops, or a negative code. */
static int publish_ops(struct cx_admin *a, const struct cx_job *j,
                       const char *old_node, struct cx_coord_op ops[2],
                       char key[CX_KEY_LEN], char old[CX_KEY_LEN], char **val,
                       char *err)
{
  int nops = 0;
  size_t kl = cx__jobs_key(a, j, key);
  if (kl == 0) {
    cx_err_set(err, "job key too long");
    return CX_ETOOBIG;
  }
  *val = cx__jobs_value(j);
  if (*val == NULL)
    return -ENOMEM;
  size_t ol = 0;
  if (old_node != NULL && old_node[0] != '\0' &&
      strcmp(old_node, j->run_on) != 0)
    ol = cx_key_build(old, CX_KEY_LEN, a->prefix, CX_KEY_JOB, old_node, j->id,
                      NULL);
  else if (old_node != NULL && old_node[0] == '\0' &&
           j->allocation != CX_ALLOC_BROADCAST)
    /* was broadcast (or unassigned: then the delete finds nothing) */
    ol = cx_key_build(old, CX_KEY_LEN, a->prefix, CX_KEY_BCAST, NULL, j->id,
                      NULL);
  if (ol > 0)
    ops[nops++] = (struct cx_coord_op){
        .type = CX_COORD_OP_DELETE, .key = old, .key_len = ol};
  ops[nops++] = (struct cx_coord_op){.type = CX_COORD_OP_PUT,
                                     .key = key,
                                     .key_len = kl,
                                     .value = *val,
                                     .value_len = strlen(*val)};
  return nops;
}

int cx__jobs_publish(struct cx_admin *a, const struct cx_job *j,
                     const char *old_node, cx__jobs_txn_fn txn, void *arg,
                     char *err)
{
  char key[CX_KEY_LEN], old[CX_KEY_LEN], *val = NULL;
  struct cx_coord_op ops[2];
  int ok = 0, rc;
  int nops = publish_ops(a, j, old_node, ops, key, old, &val, err);
  if (nops < 0)
    return nops;
  struct cx_coord_txn t = {.success = ops, .nsuccess = (size_t)nops};
  if (txn != NULL)
    rc = txn(arg, ops, (size_t)nops, err);
  else if (nops == 1)
    rc = cx_coord_put(a->coord, key, ops[0].key_len, val, strlen(val), 0, NULL,
                      err);
  else
    rc = cx_coord_txn(a->coord, &t, &ok, NULL, err);
  free(val); /* json_dumps allocates with jansson's allocator */
  return rc;
}

void cx__jobs_unpublish(struct cx_admin *a, const struct cx_job *j)
{
  char key[CX_KEY_LEN], err[CX_ERR_LEN];
  size_t kl = cx__jobs_key(a, j, key);
  if (kl > 0 && cx_coord_delete(a->coord, key, kl, NULL, NULL, err) != 0)
    CX_LOG(CX_LOG_ERROR, "admin",
           "job %lld: could not remove key %s (%s); the reconciler must",
           (long long)j->id, key, err);
}

/* ---- the writes ---------------------------------------------------------- */

/* A job change made for a user (who != NULL) writes its audit row in the
 * same store transaction as the row; a compensation that undoes the change
 * deletes that audit row in its own transaction with the undo. The
 * system's own writes (who NULL: the leader's moves) are not audited. */
static int tx_begin(struct cx_admin *a, const struct cx__actor *who, char *err)
{
  return who != NULL ? cx_store_tx_begin(a->store, err) : 0;
}

static int tx_end(struct cx_admin *a, const struct cx__actor *who, int rc,
                  char *err)
{
  return who != NULL ? cx__admin_audit_end(a, rc, err) : rc;
}

/* The audit row of a change to job id; takes ownership of before/after. */
static int audit_job(struct cx_admin *a, const struct cx__actor *who,
                     const char *kind, int64_t id, json_t *before,
                     json_t *after, int need, int64_t *row, char *err)
{
  char target[32];
  int rc = 0;
  if (who != NULL) {
    snprintf(target, sizeof target, "job %lld", (long long)id);
    if (((need & 1) && before == NULL) || ((need & 2) && after == NULL)) {
      cx_err_set(err, "audit: out of memory");
      rc = -ENOMEM;
    } else {
      rc = cx__admin_audit(a, who, kind, target, before, after, row, err);
    }
  }
  json_decref(before);
  json_decref(after);
  return rc;
}

static json_t *enabled_json(int enabled)
{
  return json_pack("{s:b}", "enabled", enabled);
}

/* What a compensation puts back. */
enum undo_kind { UNDO_CREATE, UNDO_UPDATE, UNDO_ENABLED };
struct undo {
  enum undo_kind kind;
  int64_t id;
  struct cx_job *old; /* UNDO_UPDATE */
  int enabled;        /* UNDO_ENABLED */
};

/* Undoes a change in the store, and its audit row `row` with it. */
static int undo_store(struct cx_admin *a, const struct cx__actor *who,
                      int64_t row, const struct undo *u, char *err)
{
  int rc = tx_begin(a, who, err);
  if (rc != 0)
    return rc;
  if (u->kind == UNDO_CREATE)
    rc = cx_store_job_delete(a->store, u->id, err);
  else if (u->kind == UNDO_UPDATE)
    rc = cx_store_job_update(a->store, u->old, err);
  else
    rc = cx_store_job_set_enabled(a->store, u->id, u->enabled, err);
  if (rc == 0 && who != NULL && row > 0)
    rc = cx_store_audit_delete(a->store, row, err);
  return tx_end(a, who, rc, err);
}

int cx__jobs_create(struct cx_admin *a, struct cx_job *j,
                    const struct cx__actor *who, int *in_coord, char *err)
{
  char serr[CX_ERR_LEN] = "";
  int64_t row = 0;
  *in_coord = 0;
  j->id = 0;
  j->created = j->updated = 0;
  int rc = tx_begin(a, who, err);
  if (rc != 0)
    return rc;
  rc = cx_store_job_create(a->store, j, err);
  if (rc == 0)
    rc = audit_job(a, who, "job.add", j->id, NULL, cx__admin_audit_job(j), 2,
                   &row, err);
  rc = tx_end(a, who, rc, err);
  if (rc != 0)
    return rc;
  pthread_mutex_t *mu = cx__jobs_lock(j->id);
  pthread_mutex_lock(mu);
  rc = cx__jobs_publish(a, j, NULL, NULL, NULL, err);
  if (rc != 0) {
    *in_coord = 1;
    /* Undo the row; the put may still apply late (timeouts are
     * ambiguous), so try to drop the key too. */
    struct undo u = {UNDO_CREATE, j->id, NULL, 0};
    int drc = undo_store(a, who, row, &u, serr);
    if (drc != 0 && drc != CX_ENOTFOUND)
      drc = undo_store(a, who, row, &u, serr);
    if (drc != 0 && drc != CX_ENOTFOUND)
      CX_LOG(CX_LOG_ERROR, "admin",
             "job %lld: unpublished row left in the store (%s); the "
             "reconciler will publish it",
             (long long)j->id, serr);
    cx__jobs_unpublish(a, j);
  }
  pthread_mutex_unlock(mu);
  return rc;
}

int cx__jobs_update(struct cx_admin *a, struct cx_job *j, struct cx_job *old,
                    const struct cx__actor *who, int *in_coord, char *err)
{
  char serr[CX_ERR_LEN] = "";
  int64_t row = 0;
  *in_coord = 0;
  int rc = tx_begin(a, who, err);
  if (rc != 0)
    return rc;
  rc = cx_store_job_update(a->store, j, err);
  if (rc == 0)
    rc = audit_job(a, who, "job.update", j->id, cx__admin_audit_job(old),
                   cx__admin_audit_job(j), 3, &row, err);
  rc = tx_end(a, who, rc, err);
  if (rc != 0)
    return rc;
  rc = cx__jobs_publish(a, j, old->run_on, NULL, NULL, err);
  if (rc != 0) {
    *in_coord = 1;
    /* Put the old row back (guarded by the `updated` just written). */
    old->updated = j->updated;
    struct undo u = {UNDO_UPDATE, j->id, old, 0};
    if (undo_store(a, who, row, &u, serr) != 0)
      CX_LOG(CX_LOG_ERROR, "admin",
             "job %lld: could not restore the row after a failed publish "
             "(%s); the reconciler will publish the stored version",
             (long long)j->id, serr);
    return rc;
  }
  if (strcmp(old->run_on, j->run_on) != 0)
    cx__jobs_load_forget(); /* the old node has one job less */
  return 0;
}

int cx__jobs_delete(struct cx_admin *a, int64_t id, const struct cx__actor *who,
                    char *err)
{
  struct cx_job j;
  char key[CX_KEY_LEN], cerr[CX_ERR_LEN] = "";
  pthread_mutex_t *mu = cx__jobs_lock(id);
  int rc;

  memset(&j, 0, sizeof j);
  pthread_mutex_lock(mu);
  rc = cx_store_job_find(a->store, id, &j, err);
  size_t kl = rc == 0 ? cx__jobs_key(a, &j, key) : 0;
  if (kl > 0) {
    rc = cx_coord_delete(a->coord, key, kl, NULL, NULL, cerr);
    if (rc != 0)
      cx_err_set(err, "%s", cerr);
  }
  if (rc == 0) {
    rc = tx_begin(a, who, err);
    if (rc == 0) {
      rc = cx_store_job_delete(a->store, j.id, err);
      if (rc == 0)
        rc = audit_job(a, who, "job.del", j.id, cx__admin_audit_job(&j), NULL,
                       1, NULL, err);
      rc = tx_end(a, who, rc, err);
    }
    if (rc == CX_ENOTFOUND)
      rc = 0;
    else if (rc != 0 && kl > 0 &&
             cx__jobs_publish(a, &j, NULL, NULL, NULL, cerr) != 0)
      CX_LOG(CX_LOG_ERROR, "admin",
             "job %lld: row kept, key gone (%s); the reconciler will "
             "republish it",
             (long long)j.id, cerr);
  }
  pthread_mutex_unlock(mu);
  cx_job_clear(&j);
  return rc;
}

int cx__jobs_set_enabled(struct cx_admin *a, int64_t id, int enabled,
                         const struct cx__actor *who, struct cx_job *out,
                         char *err)
{
  char cerr[CX_ERR_LEN] = "";
  pthread_mutex_t *mu = cx__jobs_lock(id);
  int was = 1, rc, began = 0;
  int64_t row = 0;

  pthread_mutex_lock(mu);
  rc = cx_store_job_find(a->store, id, out, err);
  if (rc == 0) {
    was = out->enabled;
    rc = tx_begin(a, who, err);
    began = rc == 0;
  }
  if (rc == 0)
    rc = cx_store_job_set_enabled(a->store, id, enabled, err);
  if (rc == 0) {
    cx_job_clear(out);
    rc = cx_store_job_find(a->store, id, out, err);
  }
  if (rc == 0)
    rc = audit_job(a, who, enabled ? "job.resume" : "job.pause", id,
                   enabled_json(was), enabled_json(enabled), 3, &row, err);
  if (began)
    rc = tx_end(a, who, rc, err);
  if (rc == 0 &&
      (out->run_on[0] != '\0' || out->allocation == CX_ALLOC_BROADCAST) &&
      (rc = cx__jobs_publish(a, out, NULL, NULL, NULL, cerr)) != 0) {
    cx_err_set(err, "%s", cerr);
    char berr[CX_ERR_LEN];
    struct undo u = {UNDO_ENABLED, id, NULL, was};
    if (undo_store(a, who, row, &u, berr) != 0)
      CX_LOG(CX_LOG_ERROR, "admin",
             "job %lld: enabled left at %d unpublished (%s); the "
             "reconciler will publish it",
             (long long)id, enabled, berr);
  }
  pthread_mutex_unlock(mu);
  return rc;
}

/* Puts the store rows of the batch back on node from (a refused txn). */
static void unmove(struct cx_admin *a, const struct cx__jobs_move *mv, size_t n,
                   const char *from)
{
  char err[CX_ERR_LEN];
  for (size_t i = 0; i < n; i++)
    if (mv[i].moved &&
        cx_store_job_move(a->store, mv[i].id, mv[i].to, from, err) != 0)
      CX_LOG(CX_LOG_WARN, "cluster", "job %lld: undoing a refused move: %s",
             (long long)mv[i].id, err);
}

int cx__jobs_move_batch(struct cx_admin *a, struct cx__jobs_move *mv, size_t n,
                        const char *from, cx__jobs_txn_fn txn, void *arg,
                        char *err)
{
  size_t nops = 0;
  int rc = 0;
  if (n == 0 || n > CX_JOBS_MOVE_MAX)
    return -EINVAL;
  if (!cx_key_uuid_ok(from))
    return -ENOMEM; /* as a key that cannot be built */
  /* Every row in one store transaction: one commit (one fsync) a batch. */
  if ((rc = cx_store_tx_begin(a->store, err)) != 0)
    return rc;
  for (size_t i = 0; i < n && rc == 0; i++) {
    char e2[CX_ERR_LEN] = "";
    mv[i].moved = 0;
    memset(&mv[i].job, 0, sizeof mv[i].job);
    int mrc = cx_store_job_move(a->store, mv[i].id, from, mv[i].to, e2);
    if (mrc == 0)
      mrc = cx_store_job_find(a->store, mv[i].id, &mv[i].job, e2);
    if (mrc == 0)
      mv[i].moved = 1;
    else if (mrc == CX_ENOTFOUND || mrc == CX_ECONFLICT)
      CX_LOG(CX_LOG_INFO, "cluster", "job %lld: not moved off node %s: %s",
             (long long)mv[i].id, from, e2); /* deleted, or moved by a user */
    else {
      rc = mrc;
      cx_err_set(err, "%s", e2);
    }
  }
  char e3[CX_ERR_LEN] = "";
  int erc = cx_store_tx_end(a->store, rc == 0, e3);
  if (rc == 0 && erc != 0) {
    rc = erc;
    cx_err_set(err, "%s", e3);
  }
  if (rc != 0) {
    for (size_t i = 0; i < n; i++)
      mv[i].moved = 0; /* rolled back (or unknown: the reconciler sees) */
    return rc;
  }
  /* Every key in one guarded coordination transaction. */
  struct cx_coord_op *ops = cx_calloc(2 * n, sizeof *ops);
  char(*keys)[CX_KEY_LEN] = cx_calloc(2 * n, CX_KEY_LEN);
  char **vals = cx_calloc(n, sizeof *vals);
  if (ops == NULL || keys == NULL || vals == NULL)
    rc = -ENOMEM;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (!mv[i].moved)
      continue;
    int k = publish_ops(a, &mv[i].job, from, &ops[nops], keys[2 * i],
                        keys[2 * i + 1], &vals[i], err);
    if (k < 0)
      rc = k == CX_ETOOBIG ? -ENOMEM : k;
    else
      nops += (size_t)k;
  }
  if (rc == 0 && nops > 0)
    rc = txn(arg, ops, nops, err);
  if (rc == CX_ECONFLICT)
    unmove(a, mv, n, from);
  if (rc != 0) /* the rows stay moved otherwise: the reconciler publishes */
    for (size_t i = 0; i < n; i++)
      mv[i].moved = 0;
  for (size_t i = 0; vals != NULL && i < n; i++)
    free(vals[i]); /* json_dumps allocates with jansson's allocator */
  cx_free(vals);
  cx_free(keys);
  cx_free(ops);
  return rc;
}
