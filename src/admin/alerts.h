/*
 * Internal to src/admin: alerts sent by the leader from the store (issue
 * 14). alerts.c.
 *
 * The outbox. A run's final record flags the run (notify_pending, set in
 * the same UPDATE as its status, so a recorded failure always carries its
 * flag); node deaths are written as alert rows by the leader that sees
 * them. The leader's alert thread turns flagged runs into rows of
 * cronix_notify_log (unique per run and event, then clears the flag),
 * claims each due row for a bounded time, sends it with one attempt and
 * records the outcome on the row. So an event is neither lost (it is in
 * the store before anyone tries to send it) nor repeated by a leader
 * change (the row says sent). The one duplicate: a leader that dies after
 * the server accepted a message and before the row says so; its claim
 * expires and the next leader sends again.
 *
 * A thread of its own rather than a step of the cluster loop: a send may
 * wait for an SMTP server's timeout, which must not hold up failover.
 */
#ifndef CX_ADMIN_ALERTS_H
#define CX_ADMIN_ALERTS_H

#include <stddef.h>

struct cx_admin;
struct cx_buf;

/* admin.c: start after the cluster, stop before it; accept "not set". */
int cx__alerts_start(struct cx_admin *a, char *err);
void cx__alerts_stop(struct cx_admin *a);
/* cluster.c: node uuid died holding the named manual jobs; queues the
 * alert to the admins in the store (never blocks on a channel). */
void cx__alerts_node_down(struct cx_admin *a, const char *uuid,
                          const char *const *jobs, size_t n_jobs);
/* routes_node.c: Prometheus counters of this admin's sends. */
void cx__alerts_metrics(struct cx_admin *a, struct cx_buf *b);

#endif
