/*
 * admin: the cluster duties (SPEC §10) -- leader election, node failover,
 * the unassigned sweep, reconciliation, log retention. See cluster.h.
 *
 * One worker thread per admin. While a follower it campaigns: a leased
 * create-if-absent txn on <prefix>/leader, again whenever a watch on that
 * key sees it deleted (and at least every second). While leader it serves
 * the queue that a watch on <prefix>/node/ fills (dead nodes, appearing
 * nodes, resyncs) and the timers (reconciliation, retention). The leader
 * steps down at once when its lease is lost or the key is seen deleted or
 * re-created by someone else.
 *
 * Guard. Every coordination write of the leader is one txn whose first
 * compare is CREATE(<prefix>/leader) == the revision it won with. A leader
 * that was deposed (lease expired while it was paused) cannot write, even
 * before it notices. Store writes are guarded by their own compare
 * (cx_store_job_move only if the row is still on the dead node), so two
 * leaders for a moment never move one job twice; a move whose txn was
 * refused is undone in the store (only if still where it put it) and the
 * real leader's reconciliation settles the rest.
 *
 * Unassigned jobs. A job with no alive node to go to keeps run_on = its
 * dead node, in the store and in coordination (its key stays under the
 * dead node): nothing is lost, the node gets it back if it returns with
 * the same uuid, and the sweep -- run when a node key appears and in every
 * reconciliation -- moves it as soon as any node is alive. Manual jobs
 * stay pinned to their node; the node's death is alerted to the admins.
 *
 * Reconciliation (the store is the truth; see jobs.c's header for
 * the drift it repairs): read every job key first, then every row, so a
 * row is never older than the key compared with it; each repair is a txn
 * that also compares the key's mod revision from the snapshot (create 0
 * when absent), so a repair never overwrites an API write that happened
 * after the snapshot -- it is skipped and the next round looks again.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin-int.h"
#include "admin/alerts.h"
#include "admin/cluster.h"
#include "cron/cron.h"
#include "job/job.h"
#include "notify/notify.h"

#define PURGE_BATCH 10000 /* rows per cx_store_run_purge call */
#define IDLE_MS 1000      /* longest sleep of the worker */
#define RETRY_MIN_MS 500  /* first retry of a failover that met an error */
#define RETRY_MAX_MS 4000 /* retries back off to this */
#define NODE_ALERT_S 600  /* a recent death is alerted by reconciliation */

struct cx__cluster {
  struct cx_admin *a;
  struct cx_admin_cluster_opts o;
  pthread_mutex_t mu; /* everything below, except work_mu's own */
  pthread_cond_t cv;
  pthread_mutex_t work_mu; /* serialises the leader's work */
  pthread_t th;
  int running, stop, wake;
  char id[160];
  char lkey[CX_KEY_LEN];
  size_t lkey_len;
  int64_t lease;   /* current lease; 0 = none */
  int leader;      /* leads now */
  int64_t rev;     /* create revision of the leader key while leading */
  int64_t won_rev; /* the last revision won (kept after stepping down) */
  char **dead;     /* dead node uuids queued by the watch */
  size_t ndead, capdead;
  int sweep, resync;
  struct cx_coord_watch *wnode, *wleader;
  struct cx_admin_cluster_stats st;
};

/* ---- small helpers ------------------------------------------------------ */

static struct cx__cluster *cl_of(struct cx_admin *a)
{
  return a->cluster;
}

static int64_t now_ms(void)
{
  return cx_mono_now() / 1000;
}

/* The uuid of key if it is a key of kind, into out; 0 if not one. */
static int key_uuid(const struct cx_admin *a, enum cx_key_kind kind,
                    const char *key, size_t klen, char out[CX_KEY_UUID_MAX + 1])
{
  struct cx_key k;
  if (!cx__admin_key_is(a, kind, key, klen, &k))
    return 0;
  memcpy(out, k.uuid, sizeof k.uuid);
  return 1;
}

static int cmp_str(const void *x, const void *y)
{
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The alive node uuids, sorted (free with strv_free). */
struct strv {
  char **v;
  size_t n;
};

static void strv_free(struct strv *s)
{
  for (size_t i = 0; i < s->n; i++)
    cx_free(s->v[i]);
  cx_free(s->v);
  s->v = NULL;
  s->n = 0;
}

static int strv_has(const struct strv *s, const char *u)
{
  /* v is NULL when nothing is alive: bsearch must not see it */
  return u != NULL && s->n > 0 &&
         bsearch(&u, s->v, s->n, sizeof *s->v, cmp_str) != NULL;
}

static int alive_read(struct cx_admin *a, struct strv *out, char *err)
{
  return cx__admin_alive_list(a, 1, &out->v, NULL, &out->n, err);
}

/* ---- guarded writes ----------------------------------------------------- */

/* One txn: CREATE(leader) == rev, then extra compares (may be none); ops on
 * success. 0 if applied; CX_ECONFLICT if not (the guard or an extra
 * compare); backend errors. A refusal by the guard steps down. */
static int gtxn(struct cx__cluster *cl, int64_t rev,
                const struct cx_coord_cmp *extra, size_t nextra,
                const struct cx_coord_op *ops, size_t nops, char *err)
{
  struct cx_admin *a = cl->a;
  struct cx_coord_cmp cmps[4] = {{
      .key = cl->lkey,
      .key_len = cl->lkey_len,
      .target = CX_COORD_CREATE,
      .op = CX_COORD_EQUAL,
      .num = rev,
  }};
  for (size_t i = 0; i < nextra && i < 3; i++)
    cmps[1 + i] = extra[i];
  struct cx_coord_txn t = {.cmps = cmps,
                           .ncmps = 1 + (nextra < 3 ? nextra : 3),
                           .success = ops,
                           .nsuccess = nops};
  int ok = 0;
  int rc = cx_coord_txn(a->coord, &t, &ok, NULL, err);
  if (rc != 0)
    return rc;
  if (ok)
    return 0;
  struct cx_coord_kvs kvs;
  rc = cx_coord_get(a->coord, cl->lkey, cl->lkey_len, &kvs, err);
  int64_t cur = rc == 0 ? kvs.kvs[0].create_rev : 0;
  if (rc == 0)
    cx_coord_kvs_free(&kvs);
  if ((rc == 0 || rc == CX_ENOTFOUND) && cur != rev) {
    pthread_mutex_lock(&cl->mu);
    cl->st.refused++;
    if (cl->leader && cl->rev == rev) {
      cl->leader = 0;
      cl->rev = 0;
      CX_LOG(CX_LOG_WARN, "cluster",
             "leader write refused: leader key revision %lld is not ours "
             "(%lld); stepping down",
             (long long)cur, (long long)rev);
    }
    pthread_mutex_unlock(&cl->mu);
    cx_err_set(err, "not the leader (revision guard)");
  } else {
    cx_err_set(err, "key changed since it was read");
  }
  return CX_ECONFLICT;
}

static int64_t lead_rev(struct cx__cluster *cl)
{
  pthread_mutex_lock(&cl->mu);
  int64_t r = cl->leader && !cl->stop ? cl->rev : 0;
  pthread_mutex_unlock(&cl->mu);
  return r;
}

static void count(struct cx__cluster *cl, uint64_t *c)
{
  pthread_mutex_lock(&cl->mu);
  (*c)++;
  pthread_mutex_unlock(&cl->mu);
}

/* The guard of the leader's job writes through jobs.c: its revision and,
 * for a repair, the snapshot revision of the key written last. */
struct guard {
  struct cx__cluster *cl;
  int64_t rev;
  int cmp;         /* compare the last op's key with mod_rev */
  int64_t mod_rev; /* 0: the key must be absent */
};

/* cx__jobs_txn_fn: the leader's revision-guarded txn. */
static int guarded(void *arg, const struct cx_coord_op *ops, size_t nops,
                   char *err)
{
  const struct guard *g = arg;
  const struct cx_coord_op *last = &ops[nops - 1];
  struct cx_coord_cmp c = {.key = last->key,
                           .key_len = last->key_len,
                           .target =
                               g->mod_rev ? CX_COORD_MOD : CX_COORD_CREATE,
                           .op = CX_COORD_EQUAL,
                           .num = g->mod_rev};
  return gtxn(g->cl, g->rev, &c, g->cmp ? 1 : 0, ops, nops, err);
}

/* ---- failover ----------------------------------------------------------- */

/* Moves the n jobs of mv off dead node from as one batch (jobs.c: one
 * store transaction, one guarded txn); logs and counts each job moved. */
static int move_batch(struct cx__cluster *cl, int64_t rev,
                      struct cx__jobs_move *mv, size_t n, const char *from,
                      char *err)
{
  struct guard g = {.cl = cl, .rev = rev};
  int rc = cx__jobs_move_batch(cl->a, mv, n, from, guarded, &g, err);
  for (size_t i = 0; i < n; i++) {
    if (mv[i].moved) {
      count(cl, &cl->st.failovers);
      CX_LOG(CX_LOG_INFO, "cluster", "job %lld (%s) moved from node %s to %s",
             (long long)mv[i].id, mv[i].job.name ? mv[i].job.name : "", from,
             mv[i].to);
    }
    cx_job_clear(&mv[i].job);
  }
  return rc;
}

/* Queues the node-down alert to the admins (alerts.c sends it; a repeat
 * queues nothing); loud logs the stranded jobs. */
static void alert_admins(struct cx__cluster *cl, const char *uuid,
                         const char *const *names, size_t nn, int loud)
{
  if (nn > 0 && loud)
    CX_LOG(CX_LOG_WARN, "cluster",
           "node %s is down holding %zu manual job(s); they wait for it", uuid,
           nn);
  cx__alerts_node_down(cl->a, uuid, names, nn);
}

/* A job of a dead node and its next fire: the moves go soonest fire first,
 * so a job due in a second does not wait behind one due in an hour. */
struct due {
  size_t i;
  int64_t next; /* INT64_MAX: never, or the spec does not parse */
};

static int cmp_due(const void *x, const void *y)
{
  const struct due *p = x, *q = y;
  if (p->next != q->next)
    return p->next < q->next ? -1 : 1;
  return p->i < q->i ? -1 : p->i > q->i;
}

static struct due *soonest_first(const struct cx_job_list *jl)
{
  struct due *d = cx_calloc(jl->n + 1, sizeof *d);
  int64_t now = cx_wall_s();
  if (d == NULL)
    return NULL;
  for (size_t i = 0; i < jl->n; i++) {
    const struct cx_job *j = &jl->items[i];
    struct cx_cron_opts opts = {.timezone = j->timezone, .anchor = j->created};
    struct cx_cron *c = NULL;
    d[i].i = i;
    d[i].next = INT64_MAX;
    if (j->spec != NULL && cx_cron_parse(j->spec, &opts, &c, NULL) == 0 &&
        cx_cron_next(c, now - 1, &d[i].next) != 0)
      d[i].next = INT64_MAX;
    cx_cron_free(c);
  }
  qsort(d, jl->n, sizeof *d, cmp_due);
  return d;
}

/* Logs and counts the fires of dead node uuid's jobs (kind: "" or
 * "broadcast ") that the leader just recorded as missed. */
static void dead_missed(struct cx__cluster *cl, const char *uuid, int64_t fires,
                        const char *kind)
{
  if (fires <= 0)
    return;
  CX_LOG(CX_LOG_INFO, "cluster",
         "node %s is down: %lld missed fire(s) of its %sjobs recorded", uuid,
         (long long)fires, kind);
  pthread_mutex_lock(&cl->mu);
  cl->st.dead_missed += (uint64_t)fires;
  pthread_mutex_unlock(&cl->mu);
}

/* The gaps of the n jobs left on node uuid, if it is dead (not merely
 * drained: a drained node records its fires itself). */
static void stay_gaps(struct cx__cluster *cl, const char *uuid,
                      const struct cx_job *const *v, size_t n)
{
  int64_t fires = 0, seen_s = cx_wall_s(); /* before the read */
  int alive = 1;
  if (n == 0 || cx__admin_node_alive(cl->a, uuid, &alive, NULL) != 0 || alive)
    return;
  for (size_t i = 0; i < n; i++)
    fires += cx__cluster_dead_gaps(cl->a, uuid, v[i], seen_s);
  dead_missed(cl, uuid, fires, "");
}

/* The fires of the broadcast jobs node uuid ran that fell due before it
 * was seen dead and have no row: once, at its death. */
static void bcast_gaps(struct cx__cluster *cl, const char *uuid)
{
  char err[CX_ERR_LEN] = "";
  struct cx_job_list jl = {0};
  int64_t fires = 0, seen_s = cx_wall_s();
  int alive = 1;
  if (cx__admin_node_alive(cl->a, uuid, &alive, NULL) != 0 || alive)
    return;
  if (cx_store_job_list(cl->a->store, NULL, CX_ALLOC_BROADCAST, &jl, err) !=
      0) {
    CX_LOG(CX_LOG_WARN, "cluster", "node %s: broadcast gaps: %s", uuid, err);
    return;
  }
  for (size_t i = 0; i < jl.n; i++)
    fires += cx__cluster_dead_gaps(cl->a, uuid, &jl.items[i], seen_s);
  cx_job_list_free(&jl);
  dead_missed(cl, uuid, fires, "broadcast ");
}

/* Moves every movable job off node uuid (if it is dead) and records the
 * gaps of those that stay; alert: 0, or queue the node-down alert
 * (ALERT_LOUD also logs the stranded jobs). */
enum { ALERT_NO, ALERT_LOUD, ALERT_QUIET };
static int failover_node(struct cx__cluster *cl, int64_t rev, const char *uuid,
                         int alert, char *err)
{
  struct cx_admin *a = cl->a;
  struct cx__placement l;
  struct cx_job_list jl = {0};
  const char **manual = NULL;
  const struct cx_job **stay = NULL; /* the jobs left on the dead node */
  struct due *order = NULL;
  size_t nman = 0, stuck = 0, nstay = 0;
  size_t unmoved = 0; /* jobs whose batch met an error */
  char move_err[CX_ERR_LEN] = "";
  const char *what;
  int rc = cx__jobs_placement(a, 1, &l, &what, err);
  if (rc != 0)
    return rc;
  if (cx__jobs_placement_has(&l, uuid))
    goto out; /* it came back */
  rc = cx_store_job_list(a->store, uuid, 0, &jl, err);
  if (rc != 0)
    goto out;
  manual = cx_calloc(jl.n + 1, sizeof *manual);
  stay = cx_calloc(jl.n + 1, sizeof *stay);
  if (manual == NULL || stay == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  /* Still the leader? (a read-only guarded txn): a deposed leader leaves
   * the store alone. */
  if ((rc = gtxn(cl, rev, NULL, 0, NULL, 0, err)) != 0)
    goto out;
  order = soonest_first(&jl);
  if (order == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  /* Batches of 1, 2, 4, ... CX_JOBS_MOVE_MAX jobs, soonest fire first: the
   * soonest job waits for one move, not for the whole node's, and a node
   * of hundreds of jobs moves in a few round trips, not one per job. */
  for (size_t o = 0, cap = 1; o < jl.n;
       cap = cap * 2 < CX_JOBS_MOVE_MAX ? cap * 2 : CX_JOBS_MOVE_MAX) {
    struct cx__jobs_move mv[CX_JOBS_MOVE_MAX];
    size_t nb = 0;
    for (; o < jl.n && nb < cap; o++) {
      const struct cx_job *j = &jl.items[order[o].i];
      if (j->allocation != CX_ALLOC_AUTO ||
          (j->type == CX_JOB_CMD && !a->cfg->cmd_auto_allocation)) {
        manual[nman++] = j->name;
        stay[nstay++] = j;
        continue;
      }
      long k = cx__jobs_pick(&l, j->node_selector);
      if (k < 0) {
        stuck++;
        stay[nstay++] = j;
        continue;
      }
      l.jobs[k]++; /* the next pick sees it there */
      mv[nb++] = (struct cx__jobs_move){.id = j->id, .to = l.alive[k]};
    }
    if (nb == 0)
      continue;
    if (lead_rev(cl) != rev) {
      rc = CX_ECONFLICT;
      cx_err_set(err, "no longer the leader");
      goto out;
    }
    char e2[CX_ERR_LEN] = "";
    int mrc = move_batch(cl, rev, mv, nb, uuid, e2);
    if (mrc == CX_ECONFLICT && lead_rev(cl) != rev) {
      rc = CX_ECONFLICT; /* deposed: stop */
      cx_err_set(err, "%s", e2);
      goto out;
    } else if (mrc != 0 && mrc != CX_ECONFLICT) {
      CX_LOG(CX_LOG_WARN, "cluster", "%zu job(s): moving off node %s: %s", nb,
             uuid, e2);
      if (unmoved == 0)
        snprintf(move_err, sizeof move_err, "%s", e2);
      unmoved += nb;
    }
  }
  if (stuck > 0) {
    pthread_mutex_lock(&cl->mu);
    cl->st.unassigned += stuck;
    pthread_mutex_unlock(&cl->mu);
    CX_LOG(CX_LOG_WARN, "cluster",
           "node %s is down and no (matching) node is alive: %zu job(s) wait "
           "unassigned",
           uuid, stuck);
  }
  if (alert) /* every death goes to the admins, listing stranded jobs */
    alert_admins(cl, uuid, manual, nman, alert == ALERT_LOUD);
  stay_gaps(cl, uuid, stay, nstay);
  if (unmoved > 0) { /* the caller retries the whole node */
    rc = CX_EUNAVAIL;
    cx_err_set(err, "%zu job(s) not moved: %s", unmoved, move_err);
  }
out:
  cx_free(stay);
  cx_free(order);
  cx_free(manual);
  cx_job_list_free(&jl);
  cx__jobs_placement_free(&l);
  return rc;
}

/* No node is alive: every job stays where it is; records their gaps. */
static int all_dead_gaps(struct cx__cluster *cl, char *err)
{
  struct cx_node_jobs *v = NULL;
  size_t nv = 0;
  int rc = cx_store_job_count_by_node(cl->a->store, &v, &nv, err);
  for (size_t i = 0; rc == 0 && i < nv; i++) {
    struct cx_job_list jl = {0};
    const struct cx_job **p = NULL;
    if (v[i].run_on == NULL || v[i].run_on[0] == '\0')
      continue;
    rc = cx_store_job_list(cl->a->store, v[i].run_on, 0, &jl, err);
    if (rc == 0 && (p = cx_calloc(jl.n + 1, sizeof *p)) != NULL) {
      for (size_t k = 0; k < jl.n; k++)
        p[k] = &jl.items[k];
      stay_gaps(cl, v[i].run_on, p, jl.n);
    }
    cx_free(p);
    cx_job_list_free(&jl);
  }
  cx_node_jobs_free(v, nv);
  return rc;
}

/* Fails over every node that holds jobs in the store and is not alive. */
static int sweep(struct cx__cluster *cl, int64_t rev, char *err)
{
  struct cx_admin *a = cl->a;
  struct cx_node_jobs *v = NULL;
  size_t nv = 0;
  struct strv alive;
  int rc = alive_read(a, &alive, err);
  if (rc != 0)
    return rc;
  if (alive.n == 0) { /* nowhere to go: only the gaps of those left */
    strv_free(&alive);
    return all_dead_gaps(cl, err);
  }
  /* A drained node counts as gone: its auto jobs move away too. */
  struct strv drained = {0};
  rc = cx__jobs_drained(a, &drained.v, &drained.n, err);
  if (rc == 0)
    rc = cx_store_job_count_by_node(a->store, &v, &nv, err);
  for (size_t i = 0; rc == 0 && i < nv; i++)
    if (!strv_has(&alive, v[i].run_on) ||
        cx__jobs_listed(drained.v, drained.n, v[i].run_on))
      rc = failover_node(cl, rev, v[i].run_on, ALERT_NO, err);
  cx_node_jobs_free(v, nv);
  strv_free(&alive);
  strv_free(&drained);
  return rc;
}

/* A dead node's runs still "running" will never be finished by it: mark
 * those started before `before` (ms) lost (a partitioned node that comes
 * back overwrites this with the real end). 0, or the store's error. */
static int close_runs(struct cx__cluster *cl, const char *uuid, int64_t before)
{
  char err[CX_ERR_LEN] = "", why[200];
  int64_t marked = 0;
  snprintf(why, sizeof why,
           "lost: node %s went down (its lease ended) while this run was "
           "going; how it ended is unknown",
           uuid);
  int rc =
      cx_store_run_mark_lost(cl->a->store, uuid, before, why, &marked, err);
  if (rc != 0) {
    CX_LOG(CX_LOG_WARN, "cluster", "node %s: closing its runs: %s", uuid, err);
  } else if (marked > 0) {
    CX_LOG(CX_LOG_INFO, "cluster", "node %s: %lld running run(s) marked lost",
           uuid, (long long)marked);
    pthread_mutex_lock(&cl->mu);
    cl->st.lost_runs += (uint64_t)marked;
    pthread_mutex_unlock(&cl->mu);
  }
  return rc;
}

/* What of a node's death is still to do (node_dead's result, the retry
 * list's entries). */
enum { DEAD_MOVE = 1, DEAD_CLOSE = 2 };

/* The jobs move first: closing the node's runs waits for the rows its own
 * open transaction holds -- a node stopped in the middle of a group
 * commit (SIGSTOP, a frozen VM) keeps them locked until it resumes, and
 * its jobs' fires must not wait for that (the chaos run's partition tail:
 * the moves came after the node was back, so they never happened). The
 * row is marked down only after the failover queued the node-down alert:
 * a leader that dies in between leaves the row up, and the next leader's
 * reconcile_nodes queues the same alert (same ukey) and marks it. Returns
 * the DEAD_* parts that failed. */
static int node_dead(struct cx__cluster *cl, int64_t rev, const char *uuid,
                     int64_t seen_ms)
{
  char err[CX_ERR_LEN] = "";
  int todo = 0;
  CX_LOG(CX_LOG_INFO, "cluster", "node %s is down: failing its jobs over",
         uuid);
  if (failover_node(cl, rev, uuid, ALERT_LOUD, err) != 0) {
    CX_LOG(CX_LOG_WARN, "cluster",
           "node %s: failover incomplete (%s); retried within seconds", uuid,
           err);
    todo |= DEAD_MOVE;
  }
  if (close_runs(cl, uuid, seen_ms) != 0)
    todo |= DEAD_CLOSE;
  bcast_gaps(cl, uuid);
  int rc = cx_store_node_set_status(cl->a->store, uuid, CX_NODE_DOWN,
                                    cx_wall_s(), err);
  if (rc != 0 && rc != CX_ENOTFOUND)
    CX_LOG(CX_LOG_WARN, "cluster", "node %s: marking it down: %s", uuid, err);
  return todo;
}

/* Dead nodes whose failover or run closing met an error (MariaDB
 * restarting, etcd unreachable, rows locked by the node's stalled
 * transaction) are retried within seconds by the worker, not left to the
 * next reconciliation a minute later: their jobs' fires are waiting. The
 * failover checks the node is still dead; runs are closed only if they
 * started before the death was seen, so a node that came back keeps its
 * new ones. */
struct retry_item {
  char *uuid;
  int todo;        /* DEAD_* */
  int64_t seen_ms; /* when its death was seen */
};

struct retry {
  struct retry_item *v;
  size_t n;
  int64_t rev;   /* the leadership they were queued under */
  int64_t at_ms; /* the next attempt */
  int64_t wait_ms;
};

static void retry_clear(struct retry *r)
{
  for (size_t i = 0; i < r->n; i++)
    cx_free(r->v[i].uuid);
  cx_free(r->v);
  r->v = NULL;
  r->n = 0;
  r->wait_ms = RETRY_MIN_MS;
}

/* Queues uuid (taking it); drops the queue of an older leadership. */
static void retry_add(struct retry *r, int64_t rev, char *uuid, int todo,
                      int64_t seen_ms)
{
  if (r->n > 0 && r->rev != rev)
    retry_clear(r);
  struct retry_item *nv = cx_realloc(r->v, (r->n + 1) * sizeof *nv);
  if (nv == NULL) { /* reconciliation is the fallback */
    cx_free(uuid);
    return;
  }
  r->v = nv;
  r->v[r->n++] = (struct retry_item){uuid, todo, seen_ms};
  if (r->n == 1)
    r->at_ms = now_ms() + r->wait_ms;
  r->rev = rev;
}

static void retry_run(struct cx__cluster *cl, struct retry *r, int64_t rev)
{
  int64_t next_ms =
      r->wait_ms * 2 < RETRY_MAX_MS ? r->wait_ms * 2 : RETRY_MAX_MS;
  size_t keep = 0;
  for (size_t i = 0; i < r->n; i++) {
    struct retry_item *it = &r->v[i];
    char err[CX_ERR_LEN] = "";
    if (lead_rev(cl) != rev) {
      cx_free(it->uuid);
      continue;
    }
    if ((it->todo & DEAD_MOVE) &&
        failover_node(cl, rev, it->uuid, ALERT_QUIET, err) == 0) {
      CX_LOG(CX_LOG_INFO, "cluster", "node %s: failover retry done", it->uuid);
      it->todo &= ~DEAD_MOVE;
    }
    if ((it->todo & DEAD_CLOSE) && close_runs(cl, it->uuid, it->seen_ms) == 0)
      it->todo &= ~DEAD_CLOSE;
    if (it->todo == 0) {
      cx_free(it->uuid);
      continue;
    }
    if (it->todo & DEAD_MOVE)
      CX_LOG(CX_LOG_WARN, "cluster",
             "node %s: failover retry failed (%s); again in %lld ms", it->uuid,
             err, (long long)next_ms);
    r->v[keep++] = *it;
  }
  r->n = keep;
  if (keep == 0) {
    retry_clear(r);
    return;
  }
  r->wait_ms = next_ms;
  r->at_ms = now_ms() + r->wait_ms;
}

/* Node-up alerts: every alive node whose last alerted event is a death
 * (alerts.c decides, once per death). */
static void nodes_up(struct cx__cluster *cl)
{
  struct strv alive;
  if (alive_read(cl->a, &alive, NULL) != 0)
    return;
  for (size_t i = 0; i < alive.n; i++)
    cx__alerts_node_up(cl->a, alive.v[i]);
  strv_free(&alive);
}

/* ---- reconciliation ----------------------------------------------------- */

struct kref {
  int64_t id;
  size_t i; /* index into kvs */
};

static int cmp_kref(const void *x, const void *y)
{
  const struct kref *p = x, *q = y;
  if (p->id != q->id)
    return p->id < q->id ? -1 : 1;
  return p->i < q->i ? -1 : p->i > q->i;
}

/* A repair: one guarded txn comparing the key's snapshot mod revision,
 * deleting key (j NULL) or publishing row j there (through jobs.c; key is
 * then j's own key). */
static int repair(struct cx__cluster *cl, int64_t rev, const char *key,
                  size_t kl, int64_t mod_rev, const struct cx_job *j,
                  uint64_t *ctr, const char *what)
{
  char err[CX_ERR_LEN] = "";
  struct guard g = {.cl = cl, .rev = rev, .cmp = 1, .mod_rev = mod_rev};
  struct cx_coord_op op = {
      .type = CX_COORD_OP_DELETE, .key = key, .key_len = kl};
  int rc = j ? cx__jobs_publish(cl->a, j, NULL, guarded, &g, err)
             : guarded(&g, &op, 1, err);
  if (rc == 0) {
    count(cl, ctr);
    CX_LOG(CX_LOG_INFO, "cluster", "reconcile: %s %.*s", what, (int)kl, key);
  } else if (rc != CX_ECONFLICT || lead_rev(cl) == rev) {
    CX_LOG(CX_LOG_INFO, "cluster", "reconcile: %s %.*s skipped: %s", what,
           (int)kl, key, err);
  }
  return rc == CX_ECONFLICT && lead_rev(cl) != rev ? rc : 0;
}

/* Whether a key's value says what val (a row's published form) says: the
 * same bytes, or the same JSON. */
static int value_same(const struct cx_coord_kv *kv, const char *val)
{
  if (kv->value_len == strlen(val) &&
      memcmp(kv->value, val, kv->value_len) == 0)
    return 1;
  json_t *x = json_loadb(kv->value, kv->value_len, 0, NULL),
         *y = json_loads(val, 0, NULL);
  int same = x != NULL && y != NULL && json_equal(x, y);
  json_decref(x);
  json_decref(y);
  return same;
}

/* The row's key, compared with the keys that carry its id. */
static int reconcile_row(struct cx__cluster *cl, int64_t rev,
                         const struct cx_job *j, const struct cx_coord_kvs *kvs,
                         const struct kref *kr, size_t nk)
{
  struct cx_admin *a = cl->a;
  char key[CX_KEY_LEN], u[CX_KEY_UUID_MAX + 1];
  int have = 0, rc = 0;
  char *val = NULL;
  for (size_t i = 0; i < nk && rc == 0; i++) {
    const struct cx_coord_kv *kv = &kvs->kvs[kr[i].i];
    if (key_uuid(a, CX_KEY_JOB, kv->key, kv->key_len, u) && j->run_on != NULL &&
        strcmp(u, j->run_on) == 0) {
      have = 1;
      if (val == NULL && (val = cx__jobs_value(j)) == NULL)
        return -ENOMEM;
      if (!value_same(kv, val))
        rc = repair(cl, rev, kv->key, kv->key_len, kv->mod_rev, j,
                    &cl->st.fix_rewritten, "rewrote");
    } else {
      rc = repair(cl, rev, kv->key, kv->key_len, kv->mod_rev, NULL,
                  &cl->st.fix_removed, "removed (its row is on another node)");
    }
  }
  if (rc == 0 && !have && j->run_on != NULL && j->run_on[0] != '\0') {
    size_t kl = cx_key_build(key, sizeof key, a->prefix, CX_KEY_JOB, j->run_on,
                             j->id, NULL);
    if (kl == 0)
      rc = -ENOMEM;
    else
      rc = repair(cl, rev, key, kl, 0, j, &cl->st.fix_published, "published");
  }
  free(val);
  return rc;
}

static int reconcile_jobs(struct cx__cluster *cl, int64_t rev, char *err)
{
  struct cx_admin *a = cl->a;
  char key[CX_KEY_LEN];
  struct cx_coord_kvs kvs = {0};
  struct cx_job_list jl = {0};
  struct kref *kr = NULL;
  size_t nk = 0;
  size_t kl = cx_key_dir(key, sizeof key, a->prefix, CX_KEY_JOB, NULL);
  int rc = cx_coord_range(a->coord, key, kl, &kvs, err); /* keys first */
  if (rc != 0)
    return rc;
  rc = cx_store_job_list(a->store, NULL, 0, &jl, err);
  if (rc != 0)
    goto out;
  kr = cx_calloc(kvs.n + 1, sizeof *kr);
  if (kr == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < kvs.n; i++) {
    struct cx_key k;
    int64_t id = 0; /* malformed: no row can own it */
    if (cx__admin_key_is(a, CX_KEY_JOB, kvs.kvs[i].key, kvs.kvs[i].key_len, &k))
      id = k.id;
    kr[nk++] = (struct kref){.id = id, .i = i};
  }
  qsort(kr, nk, sizeof *kr, cmp_kref);
  size_t k = 0, r = 0;
  while (rc == 0 && (k < nk || r < jl.n)) {
    int64_t kid = k < nk ? kr[k].id : INT64_MAX;
    int64_t rid = r < jl.n ? jl.items[r].id : INT64_MAX;
    size_t k2 = k;
    if (kid < rid) { /* keys without a row */
      while (k2 < nk && kr[k2].id == kid) {
        const struct cx_coord_kv *kv = &kvs.kvs[kr[k2].i];
        rc = repair(cl, rev, kv->key, kv->key_len, kv->mod_rev, NULL,
                    &cl->st.fix_removed, "removed (no row)");
        k2++;
      }
      k = k2;
      continue;
    }
    while (k2 < nk && kr[k2].id == rid)
      k2++;
    rc = reconcile_row(cl, rev, &jl.items[r], &kvs, kr + k, k2 - k);
    k = k2;
    r++;
  }
  if (rc == CX_ECONFLICT)
    cx_err_set(err, "deposed during reconciliation");
out:
  cx_free(kr);
  cx_job_list_free(&jl);
  cx_coord_kvs_free(&kvs);
  return rc;
}

/* The broadcast keys (<prefix>/bcast/<id>) against the broadcast rows:
 * a key whose row is gone or no longer broadcast is removed, a stale one
 * rewritten, a missing one published. */
static int reconcile_bcast(struct cx__cluster *cl, int64_t rev, char *err)
{
  struct cx_admin *a = cl->a;
  char key[CX_KEY_LEN];
  struct cx_coord_kvs kvs = {0};
  struct cx_job_list jl = {0};
  unsigned char *have = NULL;
  size_t kl = cx_key_dir(key, sizeof key, a->prefix, CX_KEY_BCAST, NULL);
  int rc = kl == 0 ? -ENOMEM : cx_coord_range(a->coord, key, kl, &kvs, err);
  if (rc != 0)
    return rc;
  rc = cx_store_job_list(a->store, NULL, CX_ALLOC_BROADCAST, &jl, err);
  if (rc == 0 && (have = cx_calloc(jl.n + 1, 1)) == NULL)
    rc = -ENOMEM;
  for (size_t i = 0; rc == 0 && i < kvs.n; i++) {
    const struct cx_coord_kv *kv = &kvs.kvs[i];
    struct cx_key k;
    const struct cx_job *j = NULL;
    size_t r = jl.n;
    if (cx__admin_key_is(a, CX_KEY_BCAST, kv->key, kv->key_len, &k)) {
      size_t lo = 0, hi = jl.n; /* the rows come ordered by id */
      while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (jl.items[mid].id < k.id)
          lo = mid + 1;
        else
          hi = mid;
      }
      if (lo < jl.n && jl.items[lo].id == k.id)
        r = lo;
    }
    if (r == jl.n) {
      rc = repair(cl, rev, kv->key, kv->key_len, kv->mod_rev, NULL,
                  &cl->st.fix_removed, "removed (no broadcast row)");
      continue;
    }
    j = &jl.items[r];
    have[r] = 1;
    char *val = cx__jobs_value(j);
    if (val == NULL) {
      rc = -ENOMEM;
      break;
    }
    int same = value_same(kv, val);
    free(val);
    if (!same)
      rc = repair(cl, rev, kv->key, kv->key_len, kv->mod_rev, j,
                  &cl->st.fix_rewritten, "rewrote");
  }
  for (size_t r = 0; rc == 0 && r < jl.n; r++) {
    if (have[r])
      continue;
    kl = cx_key_build(key, sizeof key, a->prefix, CX_KEY_BCAST, NULL,
                      jl.items[r].id, NULL);
    rc = kl == 0 ? -ENOMEM
                 : repair(cl, rev, key, kl, 0, &jl.items[r],
                          &cl->st.fix_published, "published");
  }
  if (rc == CX_ECONFLICT)
    cx_err_set(err, "deposed during reconciliation");
  cx_free(have);
  cx_job_list_free(&jl);
  cx_coord_kvs_free(&kvs);
  return rc;
}

/* Proc keys of dead nodes; node rows still up whose key is gone. */
static int reconcile_nodes(struct cx__cluster *cl, int64_t rev, char *err)
{
  struct cx_admin *a = cl->a;
  char key[CX_KEY_LEN], u[CX_KEY_UUID_MAX + 1];
  struct cx_coord_kvs kvs;
  struct strv alive;
  int rc = alive_read(a, &alive, err);
  if (rc != 0)
    return rc;
  size_t kl = cx_key_dir(key, sizeof key, a->prefix, CX_KEY_PROC, NULL);
  rc = cx_coord_range(a->coord, key, kl, &kvs, err);
  if (rc != 0)
    goto out;
  for (size_t i = 0; rc == 0 && i < kvs.n; i++) {
    const struct cx_coord_kv *kv = &kvs.kvs[i];
    if (key_uuid(a, CX_KEY_PROC, kv->key, kv->key_len, u) &&
        strv_has(&alive, u))
      continue;
    rc = repair(cl, rev, kv->key, kv->key_len, kv->mod_rev, NULL,
                &cl->st.fix_proc, "removed stale proc key");
  }
  cx_coord_kvs_free(&kvs);
  /* Rows: an up row whose key is gone died unseen (no leader then, or one
   * that died before marking it): alert, close its runs, mark it down. A
   * row marked down in the last NODE_ALERT_S (the node stopping itself
   * marks its own row) gets its alert again in case the leader that saw
   * it died first -- the same ukey, so at most once. Alive rows may owe a
   * "back up". */
  int64_t now_s = cx_wall_s();
  for (int page = 1; rc == 0; page++) {
    struct cx_node_list nl = {0};
    if (cx_store_node_search(a->store, 0, page, CX_STORE_PAGE_MAX, &nl, err) !=
        0)
      break;
    for (size_t i = 0; i < nl.n; i++) {
      const struct cx_node *nd = &nl.items[i];
      char e2[CX_ERR_LEN] = "";
      if (strv_has(&alive, nd->uuid)) {
        cx__alerts_node_up(a, nd->uuid);
      } else if (nd->status == CX_NODE_UP) {
        CX_LOG(CX_LOG_INFO, "cluster", "reconcile: node %s marked down",
               nd->uuid);
        /* moves first, as in node_dead */
        failover_node(cl, rev, nd->uuid, ALERT_LOUD, e2);
        close_runs(cl, nd->uuid, cx_wall_ms());
        bcast_gaps(cl, nd->uuid);
        cx_store_node_set_status(a->store, nd->uuid, CX_NODE_DOWN, now_s, NULL);
      } else if (nd->down >= now_s - NODE_ALERT_S) {
        failover_node(cl, rev, nd->uuid, ALERT_QUIET, e2);
      }
    }
    size_t n = nl.n;
    cx_node_list_free(&nl);
    if (n < CX_STORE_PAGE_MAX)
      break;
  }
out:
  strv_free(&alive);
  return rc;
}

static int reconcile(struct cx__cluster *cl, int64_t rev, char *err)
{
  cx_mono t0 = cx_mono_now();
  int rc = reconcile_jobs(cl, rev, err);
  if (rc == 0)
    rc = reconcile_bcast(cl, rev, err);
  if (rc == 0)
    rc = sweep(cl, rev, err);
  if (rc == 0)
    rc = reconcile_nodes(cl, rev, err);
  double ms = (double)(cx_mono_now() - t0) / 1000.0;
  if (rc == 0) {
    pthread_mutex_lock(&cl->mu);
    cl->st.reconciles++;
    cl->st.last_reconcile_ms = ms;
    pthread_mutex_unlock(&cl->mu);
  }
  CX_LOG(ms >= 1000 ? CX_LOG_WARN : CX_LOG_DEBUG, "cluster",
         "reconciliation took %.0f ms%s", ms, rc == 0 ? "" : " (incomplete)");
  return rc;
}

/* ---- log retention ------------------------------------------------------ */

/* One retention purge: fn removes rows older than days in batches of
 * PURGE_BATCH, repeated while batches come back full and this process
 * still leads. Returns the rows removed; failures are logged as what. */
typedef int (*purge_fn)(struct cx_store *s, int days, int64_t now_ms,
                        int64_t max_rows, int64_t *deleted, char *err);
static int64_t purge_old(struct cx__cluster *cl, purge_fn fn, int64_t days,
                         const char *what)
{
  int64_t total = 0;
  char err[CX_ERR_LEN] = "";
  if (days <= 0)
    return 0;
  for (;;) {
    int64_t d = 0;
    int rc = fn(cl->a->store, (int)days, cx_wall_ms(), PURGE_BATCH, &d, err);
    total += d;
    if (rc != 0) {
      CX_LOG(CX_LOG_WARN, "cluster", "%s retention: %s", what, err);
      break;
    }
    if (d < PURGE_BATCH || lead_rev(cl) == 0)
      break;
  }
  return total;
}

/* The run log's retention (system.log_retention_days) and the audit log's
 * (system.audit_retention_days). */
static void purge(struct cx__cluster *cl)
{
  struct cx_admin *a = cl->a;
  int64_t days = a->cfg->log_retention_days;
  int64_t total = purge_old(cl, cx_store_run_purge, days, "log");
  if (total > 0) {
    pthread_mutex_lock(&cl->mu);
    cl->st.purged += (uint64_t)total;
    pthread_mutex_unlock(&cl->mu);
    CX_LOG(CX_LOG_INFO, "cluster",
           "log retention: removed %lld run(s) older than %lld day(s)",
           (long long)total, (long long)days);
  }
  days = a->cfg->audit_retention_days;
  total = purge_old(cl, cx_store_audit_purge, days, "audit");
  if (total > 0)
    CX_LOG(CX_LOG_INFO, "cluster",
           "audit retention: removed %lld row(s) older than %lld day(s)",
           (long long)total, (long long)days);
}

/* ---- election ----------------------------------------------------------- */

static void step_down(struct cx__cluster *cl, const char *why)
{
  if (cl->leader) {
    CX_LOG(CX_LOG_WARN, "cluster", "stepping down as leader: %s", why);
    cl->leader = 0;
    cl->rev = 0;
  }
  cl->wake = 1;
  pthread_cond_signal(&cl->cv);
}

static void on_lease_lost(void *arg, int64_t lease, int reason)
{
  struct cx__cluster *cl = arg;
  pthread_mutex_lock(&cl->mu);
  if (lease == cl->lease) {
    cl->lease = 0;
    step_down(cl, reason == CX_ELEASE ? "lease gone" : "lease not renewed");
  }
  pthread_mutex_unlock(&cl->mu);
}

static void on_leader_event(void *arg, const struct cx_coord_event *ev)
{
  struct cx__cluster *cl = arg;
  pthread_mutex_lock(&cl->mu);
  if (ev->type == CX_COORD_EV_DELETE) {
    if (cl->leader && ev->mod_rev > cl->rev)
      step_down(cl, "leader key deleted");
    cl->wake = 1;
    pthread_cond_signal(&cl->cv);
  } else if (cl->leader && ev->create_rev != cl->rev && ev->mod_rev > cl->rev) {
    step_down(cl, "leader key taken by another admin");
  }
  pthread_mutex_unlock(&cl->mu);
}

static void on_leader_resync(void *arg, const struct cx_coord_kvs *kvs)
{
  struct cx__cluster *cl = arg;
  pthread_mutex_lock(&cl->mu);
  if (cl->leader && (kvs->n == 0 || kvs->kvs[0].create_rev != cl->rev))
    step_down(cl, "leader key not ours after resync");
  cl->wake = 1;
  pthread_cond_signal(&cl->cv);
  pthread_mutex_unlock(&cl->mu);
}

static void on_node_event(void *arg, const struct cx_coord_event *ev)
{
  struct cx__cluster *cl = arg;
  char u[CX_KEY_UUID_MAX + 1];
  if (!key_uuid(cl->a, CX_KEY_NODE, ev->key, ev->key_len, u))
    return;
  pthread_mutex_lock(&cl->mu);
  if (cl->leader) {
    if (ev->type == CX_COORD_EV_PUT) {
      if (ev->version == 1)
        cl->sweep = 1;
    } else if (cl->ndead < 100000) {
      if (cl->ndead == cl->capdead) {
        size_t nc = cl->capdead ? cl->capdead * 2 : 8;
        char **nv = cx_calloc(nc, sizeof *nv);
        if (nv != NULL) {
          if (cl->ndead)
            memcpy(nv, cl->dead, cl->ndead * sizeof *nv);
          cx_free(cl->dead);
          cl->dead = nv;
          cl->capdead = nc;
        }
      }
      if (cl->ndead < cl->capdead && (cl->dead[cl->ndead] = cx_strdup(u))) {
        cl->ndead++;
        CX_LOG(CX_LOG_INFO, "cluster", "node %s: key gone; failover queued", u);
      } else
        cl->resync = 1; /* out of memory: reconcile instead */
    }
    cl->wake = 1;
    pthread_cond_signal(&cl->cv);
  }
  pthread_mutex_unlock(&cl->mu);
}

static void on_node_resync(void *arg, const struct cx_coord_kvs *kvs)
{
  struct cx__cluster *cl = arg;
  (void)kvs;
  pthread_mutex_lock(&cl->mu);
  cl->resync = 1;
  cl->wake = 1;
  pthread_cond_signal(&cl->cv);
  pthread_mutex_unlock(&cl->mu);
}

/* One campaign: a lease (kept alive) and a create-if-absent txn. */
static void campaign(struct cx__cluster *cl)
{
  struct cx_admin *a = cl->a;
  char err[CX_ERR_LEN] = "";
  int64_t lease;
  pthread_mutex_lock(&cl->mu);
  lease = cl->lease;
  pthread_mutex_unlock(&cl->mu);
  if (lease == 0) {
    int64_t ttl = cl->o.leader_ttl_s > 0
                      ? cl->o.leader_ttl_s
                      : (a->cfg->node_ttl > 0 ? a->cfg->node_ttl : 10);
    if (cx_coord_lease_grant(a->coord, ttl, 1, on_lease_lost, cl, &lease, NULL,
                             err) != 0) {
      CX_LOG(CX_LOG_DEBUG, "cluster", "campaign: lease: %s", err);
      return;
    }
    pthread_mutex_lock(&cl->mu);
    cl->lease = lease;
    pthread_mutex_unlock(&cl->mu);
  }
  struct cx_coord_cmp c = {.key = cl->lkey,
                           .key_len = cl->lkey_len,
                           .target = CX_COORD_CREATE,
                           .op = CX_COORD_EQUAL,
                           .num = 0};
  struct cx_coord_op op = {.type = CX_COORD_OP_PUT,
                           .key = cl->lkey,
                           .key_len = cl->lkey_len,
                           .value = cl->id,
                           .value_len = strlen(cl->id),
                           .lease = lease};
  struct cx_coord_txn t = {
      .cmps = &c, .ncmps = 1, .success = &op, .nsuccess = 1};
  int ok = 0;
  if (cx_coord_txn(a->coord, &t, &ok, NULL, err) != 0) {
    CX_LOG(CX_LOG_DEBUG, "cluster", "campaign: %s", err);
    /* a lease that expired while unreachable is replaced next time */
    if (cx_coord_lease_keepalive(a->coord, lease, NULL, err) == CX_ENOTFOUND) {
      pthread_mutex_lock(&cl->mu);
      if (cl->lease == lease)
        cl->lease = 0;
      pthread_mutex_unlock(&cl->mu);
    }
    return;
  }
  if (!ok)
    return;
  struct cx_coord_kvs kvs;
  if (cx_coord_get(a->coord, cl->lkey, cl->lkey_len, &kvs, err) != 0)
    return; /* the watch or the lease tells what happened */
  const struct cx_coord_kv *kv = &kvs.kvs[0];
  pthread_mutex_lock(&cl->mu);
  if (kv->lease == lease && kv->value_len == strlen(cl->id) &&
      memcmp(kv->value, cl->id, kv->value_len) == 0 && cl->lease == lease &&
      !cl->stop) {
    cl->leader = 1;
    cl->rev = cl->won_rev = kv->create_rev;
    cl->st.elections_won++;
    for (size_t i = 0; i < cl->ndead; i++)
      cx_free(cl->dead[i]);
    cl->ndead = 0;
    cl->sweep = 0;
    cl->resync = 1; /* reconcile at once */
    CX_LOG(CX_LOG_INFO, "cluster", "%s is the leader (revision %lld)", cl->id,
           (long long)cl->rev);
  }
  pthread_mutex_unlock(&cl->mu);
  cx_coord_kvs_free(&kvs);
}

static void wait_ms(struct cx__cluster *cl, int64_t ms)
{
  if (cl->wake || cl->stop)
    return;
  cx_cond_wait_ms(&cl->cv, &cl->mu, ms);
}

static void *worker(void *arg)
{
  struct cx__cluster *cl = arg;
  int64_t next_rec = 0, next_purge = 0;
  struct retry retry = {.wait_ms = RETRY_MIN_MS};
  int64_t rec_ms = cl->o.reconcile_ms > 0 ? cl->o.reconcile_ms : 60000;
  int64_t purge_ms = cl->o.purge_ms > 0 ? cl->o.purge_ms : 3600000;
  pthread_mutex_lock(&cl->mu);
  while (!cl->stop) {
    cl->wake = 0;
    if (!cl->leader) {
      pthread_mutex_unlock(&cl->mu);
      campaign(cl);
      pthread_mutex_lock(&cl->mu);
      if (!cl->leader)
        wait_ms(cl, IDLE_MS);
      else
        next_purge = 0;
      continue;
    }
    int64_t rev = cl->rev;
    char **dead = cl->dead;
    size_t ndead = cl->ndead;
    int sw = cl->sweep, rs = cl->resync;
    cl->dead = NULL;
    cl->ndead = cl->capdead = 0;
    cl->sweep = cl->resync = 0;
    pthread_mutex_unlock(&cl->mu);

    char err[CX_ERR_LEN] = "";
    pthread_mutex_lock(&cl->work_mu);
    for (size_t i = 0; i < ndead; i++) {
      int64_t seen_ms = cx_wall_ms();
      int todo = 0;
      if (lead_rev(cl) == rev &&
          (todo = node_dead(cl, rev, dead[i], seen_ms)) != 0)
        retry_add(&retry, rev, dead[i], todo, seen_ms);
      else
        cx_free(dead[i]);
    }
    cx_free(dead);
    if (retry.n > 0 && (retry.rev != rev || lead_rev(cl) != rev))
      retry_clear(&retry); /* a new leadership reconciles at once */
    if (retry.n > 0 && now_ms() >= retry.at_ms)
      retry_run(cl, &retry, rev);
    if (sw && lead_rev(cl) == rev && sweep(cl, rev, err) != 0)
      CX_LOG(CX_LOG_WARN, "cluster", "unassigned sweep: %s", err);
    if (sw && lead_rev(cl) == rev) /* a node key appeared */
      nodes_up(cl);
    int64_t t = now_ms();
    if ((rs || t >= next_rec) && lead_rev(cl) == rev) {
      if (reconcile(cl, rev, err) != 0)
        CX_LOG(CX_LOG_WARN, "cluster", "reconciliation: %s", err);
      next_rec = now_ms() + rec_ms;
    }
    if (t >= next_purge && lead_rev(cl) == rev) {
      purge(cl);
      next_purge = now_ms() + purge_ms;
    }
    pthread_mutex_unlock(&cl->work_mu);

    pthread_mutex_lock(&cl->mu);
    int64_t due = next_rec < next_purge ? next_rec : next_purge;
    if (retry.n > 0 && retry.at_ms < due)
      due = retry.at_ms;
    due -= now_ms();
    if (cl->ndead == 0 && !cl->sweep && !cl->resync)
      wait_ms(cl, due < 1 ? 1 : (due > IDLE_MS ? IDLE_MS : due));
  }
  pthread_mutex_unlock(&cl->mu);
  retry_clear(&retry);
  return NULL;
}

/* ---- public ------------------------------------------------------------- */

static struct cx__cluster *cl_get(struct cx_admin *a)
{
  if (a->cluster != NULL)
    return a->cluster;
  struct cx__cluster *cl = cx_calloc(1, sizeof *cl);
  if (cl == NULL)
    return NULL;
  cl->a = a;
  pthread_mutex_init(&cl->mu, NULL);
  pthread_mutex_init(&cl->work_mu, NULL);
  cx_cond_init_mono(&cl->cv);
  a->cluster = cl;
  return cl;
}

int cx_admin_cluster_set(struct cx_admin *a,
                         const struct cx_admin_cluster_opts *o)
{
  struct cx__cluster *cl = cl_get(a);
  if (cl == NULL)
    return -ENOMEM;
  cl->o = *o;
  return 0;
}

void cx_admin_cluster_stats(struct cx_admin *a,
                            struct cx_admin_cluster_stats *out)
{
  struct cx__cluster *cl = cl_of(a);
  memset(out, 0, sizeof *out);
  if (cl == NULL)
    return;
  pthread_mutex_lock(&cl->mu);
  *out = cl->st;
  out->leader = cl->leader;
  out->leader_rev = cl->rev;
  pthread_mutex_unlock(&cl->mu);
}

int cx_admin_cluster_reconcile(struct cx_admin *a, char *err)
{
  struct cx__cluster *cl = cl_of(a);
  int64_t rev = cl ? lead_rev(cl) : 0;
  if (rev == 0) {
    cx_err_set(err, "not the leader");
    return CX_ECONFLICT;
  }
  pthread_mutex_lock(&cl->work_mu);
  int rc = reconcile(cl, rev, err);
  pthread_mutex_unlock(&cl->work_mu);
  return rc;
}

int cx_admin_cluster_move(struct cx_admin *a, int64_t id, const char *from,
                          const char *to, char *err)
{
  struct cx__cluster *cl = cl_of(a);
  int64_t rev;
  if (cl == NULL)
    return CX_ECONFLICT;
  pthread_mutex_lock(&cl->mu);
  rev = cl->won_rev; /* as a leader that has not yet noticed its deposal */
  pthread_mutex_unlock(&cl->mu);
  if (rev == 0) {
    cx_err_set(err, "never was the leader");
    return CX_ECONFLICT;
  }
  /* Still the leader? (a read-only guarded txn): a deposed leader then
   * leaves the store alone. The guarded move closes the window (a refused
   * one puts the row back, with `updated` bumped: the reconciler
   * republishes it). Failover checks once per node instead. */
  struct cx__jobs_move mv = {.id = id, .to = to};
  pthread_mutex_lock(&cl->work_mu);
  int rc = gtxn(cl, rev, NULL, 0, NULL, 0, err);
  if (rc == 0)
    rc = move_batch(cl, rev, &mv, 1, from, err);
  pthread_mutex_unlock(&cl->work_mu);
  if (rc == 0 && !mv.moved) {
    cx_err_set(err, "job %lld: not on node %s", (long long)id, from);
    rc = CX_ECONFLICT;
  }
  return rc;
}

int cx__cluster_start(struct cx_admin *a, char *err)
{
  struct cx__cluster *cl = cl_get(a);
  char host[128] = "", key[CX_KEY_LEN];
  char rnd[13];
  int rc;
  if (cl == NULL)
    return -ENOMEM;
  if (cl->running || cl->o.off)
    return 0;
  gethostname(host, sizeof host - 1);
  if (cx_random_hex(rnd, 6) != 0)
    snprintf(rnd, sizeof rnd, "000000000000");
  snprintf(cl->id, sizeof cl->id, "%s:%ld:%s", host, (long)getpid(), rnd);
  cl->lkey_len = cx_key_build(cl->lkey, sizeof cl->lkey, a->prefix,
                              CX_KEY_LEADER, NULL, 0, NULL);
  cl->stop = 0;
  struct cx_coord_watch_cbs lc = {.event = on_leader_event,
                                  .resync = on_leader_resync};
  rc = cx_coord_watch(a->coord, cl->lkey, cl->lkey_len, 0, &lc, cl,
                      &cl->wleader, err);
  if (rc != 0)
    return rc;
  size_t kl = cx_key_dir(key, sizeof key, a->prefix, CX_KEY_NODE, NULL);
  struct cx_coord_watch_cbs nc = {.event = on_node_event,
                                  .resync = on_node_resync};
  rc = cx_coord_watch(a->coord, key, kl, 0, &nc, cl, &cl->wnode, err);
  if (rc != 0)
    goto fail;
  rc = pthread_create(&cl->th, NULL, worker, cl);
  if (rc != 0) {
    rc = -rc;
    cx_err_set(err, "cluster thread: %s", strerror(-rc));
    goto fail;
  }
  cl->running = 1;
  return 0;
fail:
  cx_coord_watch_cancel(cl->wnode);
  cx_coord_watch_cancel(cl->wleader);
  cl->wnode = cl->wleader = NULL;
  return rc;
}

void cx__cluster_stop(struct cx_admin *a)
{
  struct cx__cluster *cl = cl_of(a);
  if (cl == NULL || !cl->running)
    return;
  pthread_mutex_lock(&cl->mu);
  cl->stop = 1;
  cl->wake = 1;
  pthread_cond_signal(&cl->cv);
  pthread_mutex_unlock(&cl->mu);
  pthread_join(cl->th, NULL);
  cx_coord_watch_cancel(cl->wnode);
  cx_coord_watch_cancel(cl->wleader);
  cl->wnode = cl->wleader = NULL;
  pthread_mutex_lock(&cl->mu);
  int64_t lease = cl->lease;
  cl->lease = 0;
  cl->leader = 0;
  cl->rev = 0;
  for (size_t i = 0; i < cl->ndead; i++)
    cx_free(cl->dead[i]);
  cx_free(cl->dead);
  cl->dead = NULL;
  cl->ndead = cl->capdead = 0;
  pthread_mutex_unlock(&cl->mu);
  if (lease != 0) /* the key goes with it: a follower takes over at once */
    cx_coord_lease_revoke(a->coord, lease, NULL);
  cl->running = 0;
}

void cx__cluster_free(struct cx_admin *a)
{
  struct cx__cluster *cl = cl_of(a);
  if (cl == NULL)
    return;
  cx__cluster_stop(a);
  pthread_mutex_destroy(&cl->mu);
  pthread_mutex_destroy(&cl->work_mu);
  pthread_cond_destroy(&cl->cv);
  cx_free(cl);
  a->cluster = NULL;
}

void cx__cluster_kick(struct cx_admin *a)
{
  struct cx__cluster *cl = cl_of(a);
  if (cl == NULL)
    return;
  pthread_mutex_lock(&cl->mu);
  if (cl->leader) {
    cl->sweep = 1;
    cl->wake = 1;
    pthread_cond_signal(&cl->cv);
  }
  pthread_mutex_unlock(&cl->mu);
}

void cx__cluster_metrics(struct cx_admin *a, struct cx_buf *b)
{
  struct cx_admin_cluster_stats s;
  cx_admin_cluster_stats(a, &s);
  cx_buf_printf(b,
                "# HELP cronix_leader 1 while this admin is the leader.\n"
                "# TYPE cronix_leader gauge\ncronix_leader %d\n",
                s.leader);
  cx_buf_printf(b,
                "# HELP cronix_failover_jobs_total Jobs moved off dead "
                "nodes by this admin.\n# TYPE cronix_failover_jobs_total "
                "counter\ncronix_failover_jobs_total %llu\n",
                (unsigned long long)s.failovers);
  cx_buf_printf(
      b,
      "# HELP cronix_reconcile_repairs_total Repairs made by "
      "reconciliation, by kind.\n# TYPE "
      "cronix_reconcile_repairs_total counter\n"
      "cronix_reconcile_repairs_total{kind=\"rewritten\"} %llu\n"
      "cronix_reconcile_repairs_total{kind=\"published\"} %llu\n"
      "cronix_reconcile_repairs_total{kind=\"removed\"} %llu\n"
      "cronix_reconcile_repairs_total{kind=\"proc\"} %llu\n",
      (unsigned long long)s.fix_rewritten, (unsigned long long)s.fix_published,
      (unsigned long long)s.fix_removed, (unsigned long long)s.fix_proc);
  cx_buf_printf(b,
                "# HELP cronix_lost_runs_total Runs of dead nodes marked "
                "lost by this admin.\n# TYPE cronix_lost_runs_total counter\n"
                "cronix_lost_runs_total %llu\n",
                (unsigned long long)s.lost_runs);
  cx_buf_printf(b,
                "# HELP cronix_reconcile_runs_total Reconciliation rounds "
                "completed.\n# TYPE cronix_reconcile_runs_total counter\n"
                "cronix_reconcile_runs_total %llu\n",
                (unsigned long long)s.reconciles);
  cx_buf_printf(b,
                "# HELP cronix_leader_refused_total Leader writes refused by "
                "the revision guard.\n# TYPE cronix_leader_refused_total "
                "counter\ncronix_leader_refused_total %llu\n",
                (unsigned long long)s.refused);
}
