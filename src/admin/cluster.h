/*
 * Internal to src/admin: the cluster duties of an admin (SPEC §10) --
 * leader election over coord, node failover, the unassigned sweep,
 * reconciliation of store and coordination, log retention. cluster.c.
 *
 * Every admin runs the election; only the leader does the rest. The leader
 * holds <prefix>/leader (value "hostname:pid:random") under its own lease,
 * created with a create-if-absent txn; every leader-only coordination
 * write is a txn guarded by CREATE(<prefix>/leader) == the create revision
 * the leader won with, so a deposed leader's write is refused.
 */
#ifndef CX_ADMIN_CLUSTER_H
#define CX_ADMIN_CLUSTER_H

#include <stdint.h>

struct cx_admin;

/* Tunables; zero fields take the defaults shown. */
struct cx_admin_cluster_opts {
  int64_t leader_ttl_s; /* lease of the leader key; 0 = cfg node_ttl */
  int64_t reconcile_ms; /* period of reconciliation; 0 = 60000 */
  int64_t purge_ms;     /* period of log retention; 0 = 3600000 */
  /* 1 = serve the API only: no election, no cluster duties (tests of the
   * API alone, where failover or retention would race the test). */
  int off;
};

/* Counters since the admin was created (a snapshot). */
struct cx_admin_cluster_stats {
  int leader;             /* 1 while this admin leads */
  int64_t leader_rev;     /* create revision of the leader key it won */
  uint64_t elections_won; /* times this admin became leader */
  uint64_t failovers;     /* jobs moved off a dead node */
  uint64_t unassigned;    /* jobs left on a dead node: nowhere to go */
  uint64_t reconciles;    /* reconciliation rounds completed */
  uint64_t fix_rewritten; /* keys rewritten from their row */
  uint64_t fix_published; /* rows published (key was missing) */
  uint64_t fix_removed;   /* keys removed (no row, or row elsewhere) */
  uint64_t fix_proc;      /* stale proc keys of dead nodes removed */
  uint64_t lost_runs;     /* dead nodes' running runs marked lost */
  uint64_t refused;       /* leader writes refused by the revision guard */
  uint64_t purged;        /* run rows removed by log retention */
  uint64_t dead_missed;   /* fires of dead nodes' jobs recorded missed */
  double last_reconcile_ms;
};

/* Sets the tunables; call before cx_admin_start. 0 or -ENOMEM. */
int cx_admin_cluster_set(struct cx_admin *a,
                         const struct cx_admin_cluster_opts *o);
void cx_admin_cluster_stats(struct cx_admin *a,
                            struct cx_admin_cluster_stats *out);

struct cx_job;
/* Writes `missed` range rows for the fires of job j (left on dead node
 * uuid: it does not fail over) that have no row and that nobody may still
 * claim, given that the node was seen dead at seen_s (unix s). Returns the
 * fires written. For a broadcast job, the node's own fires up to its death
 * (see dead_gaps.c). */
int64_t cx__cluster_dead_gaps(struct cx_admin *a, const char *uuid,
                              const struct cx_job *j, int64_t seen_s);

/* For tests and benchmarks: runs one reconciliation round now in the
 * calling thread (only while leader: CX_ECONFLICT otherwise). */
int cx_admin_cluster_reconcile(struct cx_admin *a, char *err);
/* For tests: moves job id from node `from` to `to` as failover does
 * (store only if still on `from`, then one guarded txn). 0; CX_ECONFLICT
 * when the store row is elsewhere or the guard refused the txn (not
 * leader, or deposed); backend errors otherwise. */
int cx_admin_cluster_move(struct cx_admin *a, int64_t id, const char *from,
                          const char *to, char *err);

/* admin.c hooks: start after the alive watch, stop before it; free in
 * destroy. Start failures are returned; stop and free accept "not set". */
int cx__cluster_start(struct cx_admin *a, char *err);
void cx__cluster_stop(struct cx_admin *a);
void cx__cluster_free(struct cx_admin *a);
/* Asks the leader (if this admin is it) to place the jobs of dead nodes
 * now: /node/del calls it. Never blocks. */
void cx__cluster_kick(struct cx_admin *a);
/* Appends the cluster counters to a Prometheus text buffer (routes_node). */
struct cx_buf;
void cx__cluster_metrics(struct cx_admin *a, struct cx_buf *b);

#endif
