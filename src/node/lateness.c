/*
 * node/lateness: how late runs start, for /metrics and the log. Lateness
 * is (the moment a run's process is spawned or its request sent) − (the
 * fire's scheduled instant), observed at the first attempt of each cron
 * fire. A node with more due work than it can run says so: a histogram, a
 * queue-depth gauge, and a WARN line (at most one per LATE_WARN_EVERY_MS)
 * when a run starts more than LATE_WARN_MS late.
 */
#include <stdio.h>

#include "node/node-int.h"

#define LOGC "node"
#define LATE_WARN_MS 1000
#define LATE_WARN_EVERY_MS 10000

/* Upper bounds of the histogram buckets, ms (Prometheus `le`). */
static const int64_t bounds_ms[CX__LATE_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000};

/* Fires waiting for a worker, and runs queued or running. */
static void queue_counts(struct cx_noded *n, size_t *queued, size_t *active)
{
  pthread_mutex_lock(&n->mu);
  *queued = 0;
  for (struct cx__nitem *it = n->qhead; it; it = it->next)
    (*queued)++;
  *active = n->nactive;
  pthread_mutex_unlock(&n->mu);
}

void cx__noded_late_observe(struct cx_noded *n, int64_t job_id, int64_t late_ms)
{
  struct cx__late *l = &n->late;
  if (late_ms < 0)
    late_ms = 0;
  int i = 0;
  while (i < CX__LATE_BUCKETS && late_ms > bounds_ms[i])
    i++;
  atomic_fetch_add(&l->bucket[i], 1);
  atomic_fetch_add(&l->sum_ms, late_ms);
  if (late_ms <= LATE_WARN_MS)
    return;
  atomic_fetch_add(&l->late_since, 1);
  int64_t worst = atomic_load(&l->worst_since);
  while (late_ms > worst &&
         !atomic_compare_exchange_weak(&l->worst_since, &worst, late_ms)) {
  }
  int64_t now = cx_mono_now() / 1000, last = atomic_load(&l->warned_ms);
  if (last != 0 && now - last < LATE_WARN_EVERY_MS)
    return;
  if (!atomic_compare_exchange_strong(&l->warned_ms, &last, now))
    return; /* another worker is warning */
  uint64_t many = atomic_exchange(&l->late_since, 0);
  int64_t w = atomic_exchange(&l->worst_since, 0);
  size_t queued, active;
  queue_counts(n, &queued, &active);
  CX_LOG(CX_LOG_WARN, LOGC,
         "falling behind: job %lld started %lld ms after its scheduled "
         "instant; %llu runs started more than %d ms late since the last "
         "warning (worst %lld ms); %zu fires queued, %zu queued or running, "
         "%d workers (node.max_concurrent)",
         (long long)job_id, (long long)late_ms, (unsigned long long)many,
         LATE_WARN_MS, (long long)w, queued, active, n->nworkers);
}

void cx_noded_metrics(struct cx_noded *n, struct cx_buf *b)
{
  struct cx__late *l = &n->late;
  size_t queued, active;
  queue_counts(n, &queued, &active);
  cx_buf_printf(b,
                "# HELP cronix_node_queue_depth Fires due and waiting for a "
                "worker on this node.\n"
                "# TYPE cronix_node_queue_depth gauge\n"
                "cronix_node_queue_depth %zu\n"
                "# HELP cronix_node_runs_active Runs queued or running on "
                "this node.\n"
                "# TYPE cronix_node_runs_active gauge\n"
                "cronix_node_runs_active %zu\n",
                queued, active);
  cx_buf_puts(b, "# HELP cronix_node_start_lateness_seconds Process spawned "
                 "(or request sent) minus the scheduled instant, first "
                 "attempt of each cron fire.\n"
                 "# TYPE cronix_node_start_lateness_seconds histogram\n");
  uint64_t cum = 0;
  for (int i = 0; i < CX__LATE_BUCKETS; i++) {
    cum += atomic_load(&l->bucket[i]);
    cx_buf_printf(b,
                  "cronix_node_start_lateness_seconds_bucket{le=\"%g\"} "
                  "%llu\n",
                  (double)bounds_ms[i] / 1000, (unsigned long long)cum);
  }
  cum += atomic_load(&l->bucket[CX__LATE_BUCKETS]);
  cx_buf_printf(b,
                "cronix_node_start_lateness_seconds_bucket{le=\"+Inf\"} "
                "%llu\n"
                "cronix_node_start_lateness_seconds_sum %.3f\n"
                "cronix_node_start_lateness_seconds_count %llu\n",
                (unsigned long long)cum, (double)atomic_load(&l->sum_ms) / 1000,
                (unsigned long long)cum);
}
