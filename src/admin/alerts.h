/*
 * Internal to src/admin: alerts sent by the leader from the store (issue
 * 14). alerts.c.
 *
 * The outbox. A run's final record flags the run (notify_pending, set in
 * the same UPDATE as its status, so a recorded failure always carries its
 * flag); node deaths and returns are written as alert rows by the
 * leader that sees them, keyed by the event (not by who saw it when). The
 * leader's alert thread turns flagged runs into rows of cronix_notify_log
 * (unique per run and event, then clears the flag), claims each due row for a
 * bounded time, sends it with one attempt and records the outcome on the row.
 * So an event is neither lost (it is in the store before anyone tries to send
 * it) nor repeated by a leader change (the row says sent). The one duplicate: a
 * leader that dies after the server accepted a message and before the row says
 * so; its claim expires and the next leader sends again.
 *
 * A thread of its own rather than a step of the cluster loop: a send may
 * wait for an SMTP server's timeout, which must not hold up failover.
 */
#ifndef CX_ADMIN_ALERTS_H
#define CX_ADMIN_ALERTS_H

#include <jansson.h>
#include <stddef.h>

struct cx_admin;
struct cx_buf;
struct cx_config;
struct cx_http_req;
struct cx_job;
struct cx_notify;

/* admin.c: start after the cluster, stop before it; accept "not set". */
int cx__alerts_start(struct cx_admin *a, char *err);
void cx__alerts_stop(struct cx_admin *a);
/* cluster.c: node uuid died holding the named manual jobs; queues the
 * alert to the admins in the store (never blocks on a channel). The
 * event is the end of the node row's session (its `up`): repeated calls,
 * by this leader or the next, queue it once. */
void cx__alerts_node_down(struct cx_admin *a, const char *uuid,
                          const char *const *jobs, size_t n_jobs);
/* cluster.c: node uuid is alive; if the last node event queued for it is
 * a death, queues "back up" to the admins, once per death (its ukey
 * names the death's row). Cheap: one read on the ukey index. */
void cx__alerts_node_up(struct cx_admin *a, const char *uuid);
/* routes_node.c: Prometheus counters of this admin's sends. */
void cx__alerts_metrics(struct cx_admin *a, struct cx_buf *b);
/* routes_notify.c: a POST /notify/test on channel ch was delivered (ok 1)
 * or not, for cronix_notify_tests_total. */
void cx__alerts_test_done(struct cx_admin *a, int ch, int ok);
/* routes_notify.c: the settings changed through this admin; the sender
 * reads them again now (other admins' changes show within 2 s). */
void cx__alerts_settings_changed(struct cx_admin *a);

/* The address user u is reached at on channel ch (notify_type), in the
 * form src/notify wants ("id:..."/"mobile:..." for DingTalk and WeCom):
 * 1 with out set, or 0 when u has none. The name of what is missing. */
struct cx_user;
int cx__alerts_address(const struct cx_user *u, int ch, char *out, size_t cap);
const char *cx__alerts_address_name(int ch);

/* job_notify.c, for /job/add (create and update): checks j's alert
 * fields (see job_notify.c). Returns 0 with *warnings a new array of
 * texts for the reply's data.warnings (maybe empty); or -1 after replying
 * 400/1001 (field notify_to_array or notify_type) or a store error. */
int cx__alerts_job_check(struct cx_admin *a, struct cx_http_req *req,
                         const struct cx_job *j, json_t **warnings);

/* ---- notify_settings.c: the channel settings in the store ---------------
 * Setting "notify": {"email": {smtp_url, from, username, password,
 * starttls, tls_verify, ca_file}, "feishu": {webhook_url, secret},
 * "dingtalk": {webhook_url, secret}, "wecom": {webhook_url}, "slack":
 * {webhook_url}, "webhook": {url, secret, headers}, "language": "en" |
 * "zh-CN"}, always whole.
 * password and secret are write-only. */

/* The settings from the config file's [notify.*] (the first default). */
json_t *cx__nset_default(const struct cx_config *cfg);
/* Reads the settings into *doc (new reference); on a store without them
 * writes cx__nset_default first (never over another admin's). 0 or a
 * store error. */
int cx__nset_load(struct cx_admin *a, json_t **doc, char *err);
/* Writes doc as the settings. */
int cx__nset_save(struct cx_admin *a, const json_t *doc, char *err);
/* Merges a POST body into doc: only the members it names change; "" or
 * null unsets. CX_EPARSE with field (CX_ADMIN_FIELD_LEN bytes, e.g.
 * "email.from") and err when a member is unknown or bad, or the result
 * would not make a working notifier. */
int cx__nset_patch(const struct cx_config *cfg, json_t *doc, const json_t *body,
                   char *field, char *err);
/* A notifier for doc (timeouts, retries, public_url from cfg); free with
 * cx_notify_destroy. cx_notify_create's errors. */
int cx__nset_notify(const struct cx_config *cfg, const json_t *doc,
                    struct cx_notify **out, char *err);
/* 1 when doc configures the channel of notify_type type. */
int cx__nset_configured(const json_t *doc, int type);
/* doc with each secret replaced by "set" or "unset" (new reference). */
json_t *cx__nset_public(const json_t *doc);

#endif
