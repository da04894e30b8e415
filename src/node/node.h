/*
 * node: the execution node daemon (SPEC §9). It keeps an identity in
 * <data_dir>/node.id, registers <prefix>/node/<uuid> under a kept-alive
 * lease, watches <prefix>/job/<uuid>/ (and once/, kill/), schedules every
 * job in one cx_sched, and runs fires on a pool of node.max_concurrent
 * worker threads (cx_exec for one attempt), recording each run in the store.
 *
 * Guarantees and the choices behind them:
 *   - A fire is claimed in the store before it runs ((job_id, scheduled_at)
 *     unique); CX_EEXISTS means another node has it: skipped silently.
 *   - Fail closed: from the moment the lease is lost no fire is started
 *     (fires due meanwhile are dropped, counted in stats.fenced); the node
 *     re-grants a lease, re-registers and re-lists its jobs, and the jobs
 *     then get the misfire treatment below. "Lost" is judged before each
 *     run starts, not only when the keep-alive thread reports it: past the
 *     last renewal's send time + TTL (a SIGSTOPped or starved process) the
 *     worker asks etcd before claiming, and a fire queued under an earlier
 *     lease never runs under a later one.
 *   - Store down: the claim cannot be arbitrated. The node keeps running its
 *     schedule (SPEC §9.7) and spools the whole record (with a locally made
 *     claim_token) to <data_dir>/spool.jsonl, one JSON record per line,
 *     flushed in order once the store answers (claim with the same token,
 *     then finish: a re-sent line is stored once). Trade-off: during a store
 *     outage a fire is run at most once per node holding the job, i.e.
 *     exactly once unless the job also failed over during the outage; if
 *     the flush then finds the fire claimed by another node, the record is
 *     still kept, as an unscheduled row whose output says it was a duplicate
 *     (nothing lost, the double run visible). A spooled "skipped" record
 *     whose fire was claimed elsewhere is dropped: nothing ran here.
 *   - Misfire: when a job arrives (start, failover, re-list), the latest
 *     fire in [now - starting_deadline, now] that is after the job's
 *     created time and after the last recorded scheduled_at runs once
 *     (trigger "misfire", claimed like any fire) when misfire = run_once.
 *   - concurrency: forbid = a fire while a run of the job is queued or
 *     running is recorded as a run with status "skipped"; replace = the
 *     running ones are killed (recorded "killed") and the fire starts;
 *     allow = overlap. Once runs ignore the policy.
 *   - Retries: a failed attempt with retries left puts its run back on the
 *     scheduler (keys below 0, beside the job ids) and frees the worker;
 *     the run, still active (forbid skips, kill finds it), rejoins the
 *     queue when due: same claim, same row. A kill, a replace or the job
 *     leaving the node ends a waiting run as "killed"; stop ends it with
 *     its last attempt. Each attempt of a run that retries is stored
 *     (cx_store_run_attempt_put) as it ends.
 *   - Once keys for a job the node does not hold (/job/once may name any
 *     alive node) run the job as the store has it, once, without taking
 *     it into the table.
 *   - An invalid job value is logged, recorded as a failed unscheduled run
 *     whose output says why (when the key names a job id), and unscheduled.
 *
 * Thread-safety: create/destroy from one thread; the other functions may be
 * called from any thread.
 */
#ifndef CX_NODE_H
#define CX_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct cx_config;
struct cx_store;
struct cx_coord;
struct cx_live_table;

/* Spool file name inside data_dir. */
#define CX_NODED_SPOOL "spool.jsonl"
/* Identity file name inside data_dir. */
#define CX_NODED_ID_FILE "node.id"

struct cx_noded_opts {
  const struct cx_config *cfg; /* read at create (copied) */
  struct cx_store *store;      /* required; borrowed, outlives the node */
  struct cx_coord *coord;      /* required; borrowed */
  const char *version;         /* for the node key/row; NULL = "" */
  /* Optional, for benchmarks and tests: called on the scheduler thread for
   * each cron fire with the instant it was due and the wall-clock ms at
   * which the node handed it on. Must not block. */
  void (*fire_hook)(void *arg, int64_t job_id, int64_t at_ms, int64_t fired_ms);
  void *fire_hook_arg;
  /* Optional: the table the output of running runs goes to (standalone
   * shares one with its admin); NULL = the node makes its own. */
  struct cx_live_table *live;
};

struct cx_noded_stats {
  uint64_t fired;       /* fires handed to the pool (cron + misfire) */
  uint64_t claimed;     /* claims won */
  uint64_t lost_claims; /* CX_EEXISTS: another node had the fire */
  uint64_t skipped;     /* forbid skips recorded */
  uint64_t runs;        /* runs finished (any status) */
  uint64_t spooled;     /* records written to the spool */
  uint64_t flushed;     /* spool records sent to the store */
  uint64_t fenced;      /* fires dropped because the lease was lost */
  uint64_t missed;      /* fires recorded as missed (range rows counted) */
  uint64_t bad_jobs;    /* job values refused */
  uint64_t lease_losses;
  uint64_t jobs;    /* jobs in the table now */
  uint64_t active;  /* runs queued or running now */
  uint64_t pending; /* spool records not yet flushed */
};

struct cx_noded;

/* Makes the node: reads or creates the identity file (0600) in
 * cfg->data_dir, opens the spool. Nothing runs yet. Errors: CX_EPARSE
 * (corrupt node.id), -errno (files), -ENOMEM; err says which. */
int cx_noded_create(const struct cx_noded_opts *opts, struct cx_noded **out,
                    char *err);

/* Registers (lease, node key, node row), lists and watches the jobs, and
 * starts the scheduler, the workers and the maintenance thread. A store
 * that is down at start is not fatal (the row is upserted later);
 * etcd being down is (CX_EUNAVAIL). */
int cx_noded_start(struct cx_noded *n, char *err);

/* The node's uuid (borrowed, valid until destroy). */
const char *cx_noded_uuid(const struct cx_noded *n);

/* The instant (unix ms) the job is next scheduled to fire, for tests and
 * the UI. CX_ENOTFOUND when the job is unknown or paused. */
int cx_noded_next_fire(struct cx_noded *n, int64_t job_id, int64_t *at_ms);

/* The live output of the runs running here (live.h); valid until
 * destroy. */
struct cx_live_table *cx_noded_live(struct cx_noded *n);

/* Counters (a snapshot). */
void cx_noded_stats_get(struct cx_noded *n, struct cx_noded_stats *out);

/* Appends this node's gauges and histograms (Prometheus text): fires
 * queued for a worker, runs queued or running, and the start lateness of
 * cron fires (spawned or sent − scheduled). For an admin's /metrics in
 * the same process (standalone). */
void cx_noded_metrics(struct cx_noded *n, struct cx_buf *b);

/* Applies the settings that can change while running (SIGHUP): shell,
 * output limit, retry base, kill grace, shutdown grace, workdir. */
void cx_noded_reload(struct cx_noded *n, const struct cx_config *cfg);

/* Flushes the spool now if the store answers. Returns the records still
 * pending (>= 0) or a negative error. */
int cx_noded_flush(struct cx_noded *n);

/* SIGTERM behaviour: stops firing and watching, drops queued fires, lets
 * running runs finish for up to node.shutdown_grace, then kills and records
 * the rest, flushes the spool, marks the node row down and revokes the
 * lease. Idempotent. */
void cx_noded_stop(struct cx_noded *n);

/* Stops (if not stopped) and frees. NULL allowed. */
void cx_noded_destroy(struct cx_noded *n);

#endif
