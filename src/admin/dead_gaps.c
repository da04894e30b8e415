/*
 * admin: the leader's `missed` rows for the jobs that stay on a dead node
 * (manual jobs pinned to it, and auto jobs with nowhere to go). They do
 * not fail over, so no node learns of their gap; the leader writes it, at
 * the node's death and at every reconciliation while it stays dead.
 *
 * Decisions:
 *   - Only fires nobody may still claim: a dead node fails closed (it
 *     never claims a fire queued under a lease it lost), and a node that
 *     takes the job later (the node back, or a move) runs at most one
 *     fire from before its arrival (misfire run_once): the latest one due
 *     then, which is no earlier than the latest fire due when the leader
 *     saw the node dead (seen_s). So the leader covers the fires due by
 *     seen_s - DEAD_SKEW_S (the skew allows for the node's clock) except
 *     the latest of them. The rest is written by the node on its return
 *     (src/node's gap accounting) or by a later pass.
 *   - One row per contiguous run of fires without a row (a range), at
 *     most DEAD_ROWS_MAX per job per pass, looking back at most
 *     DEAD_LOOKBACK_S and re-checking DEAD_HOLE_S below the last recorded
 *     fire (fires are recorded out of order, so the node may have died
 *     with holes there). A day of downtime of an every-second job is one
 *     row per pass (1440 with the 60 s reconciliation), not 86 400.
 *   - At most once: the store refuses a range that overlaps any row
 *     (CX_EEXISTS, a normal outcome when the node came back and wrote its
 *     own, or another leader did).
 *   - Broadcast jobs (allocation 3): a dead node is simply absent, so its
 *     own rows (claim_node = its uuid) are accounted up to its death only
 *     (once, when the leader sees it die, not at every reconciliation),
 *     every fire due by seen_s included, with no skew: no other node takes
 *     its fires over, a node claims nothing once its lease is past (by its
 *     monotonic clock, which ends no later than etcd's expiry, which the
 *     leader saw), and a claim it might still make inside the range is
 *     refused by the store as already recorded. A claim committed between
 *     the leader's read of the rows and its write makes the store refuse
 *     the range; the pass is then redone once on fresh rows. A node that
 *     never ran the job is left alone (it may not match the selector, or
 *     joined after).
 */
#include <stdio.h>
#include <string.h>

#include "admin/admin-int.h"
#include "admin/cluster.h"
#include "cron/cron.h"
#include "job/job.h"

#define DEAD_SKEW_S 2
#define DEAD_LOOKBACK_S (7 * 86400)
#define DEAD_HOLE_S 120
#define DEAD_ROWS_MAX 16
#define DEAD_SPANS_MAX (4 * DEAD_HOLE_S + 4)

/* One missed row of fires [first, last] (count) of j. CX_EEXISTS when a
 * row already covers part of it. */
static int write_range(struct cx_admin *a, const struct cx_job *j,
                       const char *uuid, int64_t first, int64_t last,
                       int64_t count)
{
  char err[CX_ERR_LEN] = "", fa[32], fb[32], out[400];
  int64_t id = 0;
  struct cx_run r;
  cx_time_format(first, NULL, fa, sizeof fa);
  cx_time_format(last, NULL, fb, sizeof fb);
  int bcast = j->allocation == CX_ALLOC_BROADCAST;
  int len = snprintf(out, sizeof out,
                     "missed: %lld fire%s from %s to %s; %s %s is down%s "
                     "(written by the leader)",
                     (long long)count, count > 1 ? "s" : "", fa, fb,
                     bcast ? "this broadcast job's node"
                           : "no node ran them: "
                             "node",
                     uuid, bcast ? "" : " and the job stays on it");
  memset(&r, 0, sizeof r);
  r.per_node = bcast;
  r.job_id = j->id;
  r.name = j->name;
  r.node_uuid = (char *)uuid;
  r.command = j->command;
  r.spec = j->spec;
  cx_run_set_missed(&r, first, last, count);
  r.start_time = r.end_time = cx_wall_ms();
  r.output = out;
  r.output_len = len > 0 && (size_t)len < sizeof out ? (size_t)len : 0;
  int rc = cx_store_run_missed(a->store, &r, &id, err);
  if (rc != 0 && rc != CX_EEXISTS)
    CX_LOG(CX_LOG_WARN, "cluster",
           "job %lld on dead node %s: %lld missed fires not recorded: %s",
           (long long)j->id, uuid, (long long)count, err);
  return rc;
}

static int64_t gaps_pass(struct cx_admin *a, const char *uuid,
                         const struct cx_job *j, int64_t seen_s, int *conflict)
{
  char err[CX_ERR_LEN] = "";
  struct cx_cron_opts opts = {.timezone = j->timezone, .anchor = j->created};
  struct cx_cron *c = NULL;
  struct cx_run_span *sp = NULL;
  size_t nsp = 0, k = 0;
  int64_t written = 0;
  int bcast = j->allocation == CX_ALLOC_BROADCAST;
  const char *claim = bcast ? uuid : "";
  if (!j->enabled || j->spec == NULL || j->spec[0] == '\0')
    return 0;
  int64_t end = bcast ? seen_s : seen_s - DEAD_SKEW_S;
  int64_t floor = end - DEAD_LOOKBACK_S, last = 0, prev = 0;
  if (floor < j->created)
    floor = j->created; /* a fire in its second of creation was not due */
  if (end <= floor)
    return 0;
  int rc = cx_store_run_last_fire(a->store, j->id, claim, end, &last, err);
  if (rc == CX_ENOTFOUND && bcast)
    return 0; /* the node never ran it */
  if (rc == CX_ENOTFOUND)
    last = floor;
  else if (rc != 0)
    return 0;
  /* holes below the last fire are re-checked, except for a broadcast node,
   * whose first fire of the job may lie anywhere below it */
  int64_t from = bcast                        ? last
                 : last - DEAD_HOLE_S < floor ? floor
                                              : last - DEAD_HOLE_S;
  /* a range row from before the window may reach into it */
  if (cx_store_run_last_fire(a->store, j->id, claim, from, &prev, NULL) == 0 &&
      prev > from)
    from = prev;
  if (from >= end || cx_cron_parse(j->spec, &opts, &c, NULL) != 0)
    return 0;
  if (cx_store_run_spans(a->store, j->id, claim, from + 1, end, DEAD_SPANS_MAX,
                         &sp, &nsp, err) != 0) {
    cx_cron_free(c);
    return 0;
  }
  int64_t f = 0, nf = 0, hfirst = 0, hlast = 0, hcount = 0;
  int rows = 0, due = cx_cron_next(c, from, &f) == 0 && f <= end;
  for (;;) {
    /* f counts only if a later fire is due too: the latest due one is left
     * to whoever takes the job (misfire run_once may run it); a broadcast
     * node's fires are nobody else's, so all of them count. */
    int more;
    if (bcast) {
      more = due && rows < DEAD_ROWS_MAX && f <= end;
      if (more && cx_cron_next(c, f, &nf) != 0)
        nf = INT64_MAX;
    } else {
      more = due && rows < DEAD_ROWS_MAX && cx_cron_next(c, f, &nf) == 0 &&
             nf <= end;
    }
    int covered = 0;
    if (more) {
      while (k < nsp && sp[k].last < f)
        k++;
      covered = k < nsp && sp[k].first <= f;
      if (!covered) {
        if (hcount++ == 0)
          hfirst = f;
        hlast = f;
      }
    }
    if ((!more || covered) && hcount > 0) {
      int wrc = write_range(a, j, uuid, hfirst, hlast, hcount);
      if (wrc == 0)
        written += hcount;
      else if (wrc == CX_EEXISTS)
        *conflict = 1;
      rows++;
      hcount = 0;
    }
    if (!more)
      break;
    f = nf;
  }
  cx_free(sp);
  cx_cron_free(c);
  return written;
}

int64_t cx__cluster_dead_gaps(struct cx_admin *a, const char *uuid,
                              const struct cx_job *j, int64_t seen_s)
{
  int conflict = 0;
  int64_t written = gaps_pass(a, uuid, j, seen_s, &conflict);
  if (conflict && j->allocation == CX_ALLOC_BROADCAST)
    written += gaps_pass(a, uuid, j, seen_s, &conflict);
  return written;
}
