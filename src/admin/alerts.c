/*
 * admin: alerts sent by the leader from the store. See alerts.h for the
 * outbox and its one documented duplicate.
 *
 * Each admin runs the thread; it works only while cluster.c says this
 * admin leads (standalone leads its in-process coordination, so it sends
 * the same way). A round: take in the flagged runs (up to TAKE_MAX), then
 * send the due rows (up to DUE_MAX), each under a claim of CLAIM_MS past
 * the channel's timeout so that two leaders for a moment do not both send
 * it. A transient refusal (connection refused, timeout, SMTP 4xx, HTTP
 * 5xx/429) leaves the row pending with a doubling delay, up to
 * notify.retries more attempts; anything else fails it at once. Each
 * outcome is one log line and one row in /notify/log.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin-int.h"
#include "admin/alerts.h"
#include "admin/cluster.h"
#include "job/job.h"
#include "notify/notify.h"

#define LOGC "alerts"
#define ROUND_MS 250 /* pause between rounds while leading */
#define TAKE_MAX 64  /* flagged runs taken in per round */
#define DUE_MAX 500  /* due rows read per round */
#define BURST_MAX 5  /* messages per channel per window, then a digest */
#define WINDOW_US 60000000
#define CLAIM_MS 30000 /* claim beyond the send timeout */
#define BACKOFF_MS 1000
#define BACKOFF_MAX_MS 60000
#define N_CH (CX_NOTIFY_TYPE_MAX + 1) /* counter slots: none, each type */
#define OVERDUE_US 5000000  /* runs past max_duration looked for this often */
#define SETTINGS_US 2000000 /* settings re-read at least this often */

enum { R_SENT, R_FAILED, R_SKIPPED, R_RETRIED, R_N };
static const char *const result_name[R_N] = {"sent", "failed", "skipped",
                                             "retried"};

struct cx__alerts {
  struct cx_admin *a;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
  uint64_t count[N_CH][R_N];
  uint64_t tests[N_CH][2]; /* POST /notify/test: [ch][delivered] */
  struct win {
    cx_mono start; /* of the channel's current window */
    int sent;      /* messages sent in it */
    int held;      /* alerts wait for its end (a digest) */
  } win[N_CH];
  int store_down; /* the last round's store error was logged */
  int dirty;      /* settings changed through this admin (under mu) */
  /* The sender's notifier, built from the settings text n_text (read at
   * n_at); only the alert thread touches these. */
  struct cx_notify *n;
  char *n_text;
  cx_mono n_at;
  cx_mono overdue_at; /* the last look for runs past max_duration */
};

static const char *channel_name(int ch)
{
  static const char *const names[N_CH] = {
      "none", "email", "feishu", "dingtalk", "wecom", "slack", "webhook"};
  return ch > 0 && ch < N_CH ? names[ch] : names[0];
}

static void count(struct cx__alerts *al, int ch, int result)
{
  pthread_mutex_lock(&al->mu);
  al->count[ch > 0 && ch < N_CH ? ch : 0][result]++;
  pthread_mutex_unlock(&al->mu);
}

/* json_dumps as a cx_malloc'd string (the row's fields are cx_free'd). */
static char *dump(const json_t *v)
{
  char *j = v ? json_dumps(v, JSON_COMPACT) : NULL;
  char *s = j ? cx_strdup(j) : NULL;
  free(j);
  return s;
}

static int leading(struct cx_admin *a)
{
  struct cx_admin_cluster_stats st;
  cx_admin_cluster_stats(a, &st);
  return st.leader;
}

/* ---- settings ----------------------------------------------------------- */

/* Rebuilds the notifier when the stored settings changed. */
static int refresh(struct cx__alerts *al, char *err)
{
  cx_mono now = cx_mono_now();
  pthread_mutex_lock(&al->mu);
  int dirty = al->dirty;
  al->dirty = 0;
  pthread_mutex_unlock(&al->mu);
  if (!dirty && al->n_text != NULL && now - al->n_at < SETTINGS_US)
    return 0;
  json_t *doc = NULL;
  int rc = cx__nset_load(al->a, &doc, err);
  if (rc != 0)
    return rc;
  char *text = dump(doc);
  al->n_at = now;
  if (text != NULL && al->n_text != NULL && strcmp(text, al->n_text) == 0) {
    cx_free(text);
    json_decref(doc);
    return 0;
  }
  struct cx_notify *n = NULL;
  char nerr[CX_ERR_LEN] = "";
  if (text == NULL)
    rc = -ENOMEM;
  else if (cx__nset_notify(al->a->cfg, doc, &n, nerr) != 0)
    CX_LOG(CX_LOG_ERROR, LOGC, "notification settings unusable: %s", nerr);
  json_decref(doc);
  if (rc != 0)
    return rc;
  cx_notify_destroy(al->n, 0);
  al->n = n;
  cx_free(al->n_text);
  al->n_text = text;
  CX_LOG(CX_LOG_INFO, LOGC,
         "notification settings loaded (email %s, feishu %s)",
         cx_notify_channel_on(n, CX_NOTIFY_EMAIL) ? "on" : "off",
         cx_notify_channel_on(n, CX_NOTIFY_FEISHU) ? "on" : "off");
  return 0;
}

void cx__alerts_settings_changed(struct cx_admin *a)
{
  struct cx__alerts *al = a->alerts;
  if (al == NULL)
    return;
  pthread_mutex_lock(&al->mu);
  al->dirty = 1;
  pthread_cond_signal(&al->cv);
  pthread_mutex_unlock(&al->mu);
}

/* ---- taking in flagged runs --------------------------------------------- */

static int is_failure(const char *status)
{
  static const char *const f[] = {"failed", "timeout", "killed", "lost",
                                  "missed"};
  for (size_t i = 0; i < CX_ARRAY_LEN(f); i++)
    if (strcmp(status, f[i]) == 0)
      return 1;
  return 0;
}

/* The event flagged run f of job j is, into ev: its status for a
 * failure, "max_duration" for a run still going past it, "recovered" for
 * the first success after a failure, "success" for any other; "" for none
 * or one the job does not alert on. */
static int event_of(struct cx_store *s, const struct cx_alert_flag *f,
                    const struct cx_job *j, char ev[17], char *err)
{
  char prev[17];
  ev[0] = '\0';
  if (is_failure(f->status) || strcmp(f->status, "running") == 0) {
    const char *e = is_failure(f->status) ? f->status : "max_duration";
    if (cx_job_alerts_on(j, e))
      snprintf(ev, 17, "%s", e);
    return 0;
  }
  if (strcmp(f->status, "success") != 0)
    return 0;
  if (cx_job_alerts_on(j, "recovered")) {
    int rc = cx_store_alert_prev_status(s, f, prev, err);
    if (rc != 0)
      return rc;
    if (is_failure(prev)) {
      snprintf(ev, 17, "recovered");
      return 0;
    }
  }
  if (cx_job_alerts_on(j, "success"))
    snprintf(ev, 17, "success");
  return 0;
}

/* Queues the alerts of the n runs in f: flagged runs (unflagged after),
 * or, with overdue, runs past their max_duration. */
static int take(struct cx__alerts *al, struct cx_alert_flag *f, size_t n,
                int overdue, char *err)
{
  struct cx_store *s = al->a->store;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    struct cx_job j;
    char ukey[96], ev[17] = "";
    cx_job_init(&j);
    rc = cx_store_job_find(s, f[i].job_id, &j, err);
    if (rc == 0)
      rc = event_of(s, &f[i], &j, ev, err);
    if (rc == 0 && ev[0] != '\0') {
      snprintf(ukey, sizeof ukey, "run:%lld:%s", (long long)f[i].run_id, ev);
      struct cx_alert x = {.ukey = ukey,
                           .event = ev,
                           .run_id = f[i].run_id,
                           .job_id = f[i].job_id,
                           .channel = j.notify_type};
      rc = cx_store_alert_add(s, &x, err);
      if (rc == 0)
        CX_LOG(CX_LOG_DEBUG, LOGC, "run %lld %s: alert %lld queued",
               (long long)f[i].run_id, ev, (long long)x.id);
    }
    cx_job_clear(&j);
    /* Taken in already (a re-sent finish, a leader that died before
     * clearing, an overdue run seen again), or the job is gone: either
     * way the flag has done its job. */
    if (rc == CX_EEXISTS || rc == CX_ENOTFOUND)
      rc = 0;
    if (rc == 0 && !overdue)
      rc = cx_store_alert_unflag(s, &f[i], err);
  }
  return rc;
}

static int take_in(struct cx__alerts *al, char *err)
{
  struct cx_alert_flag f[TAKE_MAX];
  size_t n = 0;
  int rc = cx_store_alert_flagged(al->a->store, f, TAKE_MAX, &n, err);
  if (rc == 0)
    rc = take(al, f, n, 0, err);
  cx_mono now = cx_mono_now();
  if (rc == 0 && now - al->overdue_at >= OVERDUE_US) {
    al->overdue_at = now;
    rc = cx_store_alert_overdue(al->a->store, cx_wall_ms(), f, TAKE_MAX, &n,
                                err);
    if (rc == 0)
      rc = take(al, f, n, 1, err);
  }
  return rc;
}

/* ---- recipients --------------------------------------------------------- */

struct rcpt {
  char **to; /* owned, in the channel's form */
  size_t n;
  json_t *used; /* the addresses, for the row */
};

static void rcpt_free(struct rcpt *r)
{
  for (size_t i = 0; i < r->n; i++)
    cx_free(r->to[i]);
  cx_free(r->to);
  json_decref(r->used);
  memset(r, 0, sizeof *r);
}

int cx__alerts_address(const struct cx_user *u, int ch, char *out, size_t cap)
{
  const char *v = NULL, *pre = "";
#define SET(x) (v == NULL && (x) != NULL && (x)[0] != '\0' ? (v = (x)) : NULL)
  switch (ch) {
  case CX_NOTIFY_EMAIL:
    SET(u->email);
    break;
  case CX_NOTIFY_FEISHU:
    SET(u->feishu_id);
    break;
  case CX_NOTIFY_DINGTALK:
  case CX_NOTIFY_WECOM: /* mentioned by id, else by mobile */
    pre = SET(ch == CX_NOTIFY_DINGTALK ? u->dingtalk_id : u->wecom_id) ? "id:"
          : SET(u->mobile) ? "mobile:"
                           : "";
    break;
  case CX_NOTIFY_SLACK:
    SET(u->slack_id);
    break;
  case CX_NOTIFY_WEBHOOK:
    SET(u->username);
    break;
  }
#undef SET
  if (v == NULL)
    return 0;
  snprintf(out, cap, "%s%s", pre, v);
  return 1;
}

const char *cx__alerts_address_name(int ch)
{
  static const char *const names[] = {"?",
                                      "email",
                                      "feishu_id",
                                      "dingtalk_id or mobile",
                                      "wecom_id or mobile",
                                      "slack_id",
                                      "username"};
  return ch >= 1 && ch <= CX_NOTIFY_TYPE_MAX ? names[ch] : "?";
}

/* Adds user u if it has an address for ch (else logs that it is left
 * out). */
static int rcpt_add(struct rcpt *r, const struct cx_user *u, int ch,
                    int64_t alert)
{
  char a[300];
  if (!cx__alerts_address(u, ch, a, sizeof a)) {
    CX_LOG(CX_LOG_WARN, LOGC, "alert %lld: user %lld (%s) has no %s; left out",
           (long long)alert, (long long)u->id, u->username,
           cx__alerts_address_name(ch));
    return 0;
  }
  if ((r->to[r->n] = cx_strdup(a)) == NULL)
    return -ENOMEM;
  r->n++;
  json_array_append_new(r->used, json_string(a));
  return 0;
}

static int rcpt_init(struct rcpt *r, size_t max)
{
  r->to = cx_calloc(max + 1, sizeof *r->to);
  r->used = json_array();
  return r->to && r->used ? 0 : -ENOMEM;
}

/* The job's notify_to_array users (ids that are no user are logged). */
static int rcpt_job(struct cx_store *s, const char *ids, int ch, int64_t alert,
                    struct rcpt *r, char *err)
{
  json_t *arr = json_loads(ids ? ids : "[]", 0, NULL);
  size_t m = json_is_array(arr) ? json_array_size(arr) : 0;
  if (m > CX_NOTIFY_MAX_RCPT)
    m = CX_NOTIFY_MAX_RCPT;
  int rc = rcpt_init(r, m);
  for (size_t i = 0; rc == 0 && i < m; i++) {
    int64_t id = json_integer_value(json_array_get(arr, i));
    struct cx_user u = {0};
    rc = cx_store_user_find(s, id, &u, err);
    if (rc == CX_ENOTFOUND) {
      CX_LOG(CX_LOG_WARN, LOGC, "alert %lld: recipient %lld is no user",
             (long long)alert, (long long)id);
      rc = 0;
      continue;
    }
    if (rc == 0)
      rc = rcpt_add(r, &u, ch, alert);
    cx_user_clear(&u);
  }
  json_decref(arr);
  return rc;
}

/* Every user with role admin. */
static int rcpt_admins(struct cx_store *s, int ch, int64_t alert,
                       struct rcpt *r, char *err)
{
  struct cx_user_list ul = {0};
  int rc = cx_store_user_search(s, NULL, 1, CX_STORE_PAGE_MAX, &ul, err);
  if (rc != 0)
    return rc;
  rc = rcpt_init(r, ul.n);
  for (size_t i = 0; rc == 0 && i < ul.n; i++)
    if (ul.items[i].role != NULL && strcmp(ul.items[i].role, "admin") == 0)
      rc = rcpt_add(r, &ul.items[i], ch, alert);
  cx_user_list_free(&ul);
  return rc;
}

/* Email and Feishu need someone to send to; the robots post to their
 * group, mentions or not. */
static int needs_rcpt(int ch)
{
  return ch == CX_NOTIFY_EMAIL || ch == CX_NOTIFY_FEISHU;
}

/* ---- sending ------------------------------------------------------------ */

/* Sends a run alert: the send's code with *tried = 1; or, before any
 * send, CX_EPARSE / CX_ENOTFOUND (nothing to send: skipped) or a store
 * error (try again later). */
static int send_run(struct cx__alerts *al, struct cx_alert *x, struct rcpt *r,
                    int *tried, char *ans, size_t cap, char *err)
{
  struct cx_store *s = al->a->store;
  struct cx_run run = {0};
  struct cx_job j;
  cx_job_init(&j);
  int rc = cx_store_run_find(s, x->run_id, &run, err);
  if (rc == 0) {
    rc = cx_store_job_find(s, x->job_id, &j, err);
    if (rc == CX_ENOTFOUND) { /* deleted since: nobody to tell */
      cx_err_set(err, "job %lld was deleted", (long long)x->job_id);
      rc = CX_EPARSE;
    }
  }
  if (rc == 0)
    rc = rcpt_job(s, j.notify_to_array, x->channel, x->id, r, err);
  if (rc == 0 && r->n == 0 && needs_rcpt(x->channel)) {
    cx_err_set(err, "no recipient has a %s address", channel_name(x->channel));
    rc = CX_EPARSE;
  }
  if (rc == 0) {
    int http = j.type == CX_JOB_HTTP;
    int missed = run.status != NULL && strcmp(run.status, "missed") == 0;
    struct cx_notify_run m = {
        .event = x->event,
        .job_name = run.name && run.name[0] ? run.name : j.name,
        .job_id = run.job_id,
        .run_id = run.id,
        .node_uuid = run.node_uuid,
        .node_host = run.hostname,
        .scheduled = run.has_scheduled_at ? run.scheduled_at : -1,
        .trigger = run.trigger,
        .attempts = run.attempts,
        .status = run.status,
        .has_exit_code = !http,
        .exit_code = run.exit_code,
        .http_status = http ? run.exit_code : 0,
        .duration_ms =
            run.end_time > run.start_time ? run.end_time - run.start_time : 0,
        .output = run.output,
        .output_len = run.output ? strlen(run.output) : 0,
        .missed_count = missed ? run.missed_count : 0,
        .missed_last = missed ? run.missed_last : 0,
    };
    *tried = 1;
    rc = cx_notify_send_run(al->n, x->channel, (const char *const *)r->to, r->n,
                            &m, ans, cap, err);
  }
  cx_job_clear(&j);
  cx_run_clear(&run);
  return rc;
}

/* A node event (to the admins) rather than a run's. */
static int is_node(const struct cx_alert *x)
{
  return strcmp(x->event, "node_down") == 0 || strcmp(x->event, "node_up") == 0;
}

static int send_node(struct cx__alerts *al, struct cx_alert *x, struct rcpt *r,
                     int *tried, char *ans, size_t cap, char *err)
{
  int rc = rcpt_admins(al->a->store, x->channel, x->id, r, err);
  if (rc == 0 && r->n == 0 && needs_rcpt(x->channel)) {
    cx_err_set(err, "no admin has a %s address", channel_name(x->channel));
    rc = CX_EPARSE;
  }
  if (rc != 0)
    return rc;
  json_t *names = json_loads(x->detail ? x->detail : "[]", 0, NULL);
  size_t nn = json_is_array(names) ? json_array_size(names) : 0;
  const char **jobs = cx_calloc(nn + 1, sizeof *jobs);
  if (jobs == NULL) {
    json_decref(names);
    return -ENOMEM;
  }
  for (size_t i = 0; i < nn; i++) {
    const char *v = json_string_value(json_array_get(names, i));
    jobs[i] = v ? v : "";
  }
  struct cx_node row = {0};
  cx_store_node_find(al->a->store, x->node_uuid, &row, NULL);
  struct cx_notify_node nd = {
      .up = strcmp(x->event, "node_up") == 0,
      .node_uuid = x->node_uuid,
      .hostname = row.hostname && row.hostname[0] ? row.hostname : NULL,
      .last_seen = -1,
      .jobs = jobs,
      .n_jobs = nn};
  *tried = 1;
  rc = cx_notify_send_node(al->n, x->channel, (const char *const *)r->to, r->n,
                           &nd, ans, cap, err);
  cx_node_clear(&row);
  cx_free(jobs);
  json_decref(names);
  return rc;
}

static int64_t backoff_ms(int attempts)
{
  int64_t ms = BACKOFF_MS;
  for (int i = 1; i < attempts && ms < BACKOFF_MAX_MS; i++)
    ms *= 2;
  return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* Sends claimed alert x and records the outcome on its row. */
/* Records on row x the outcome of a send: rc, whether a send was tried,
 * the recipients used (n of them), the server's answer or err; prefix
 * goes before the answer (a digest names itself). */
static int record(struct cx__alerts *al, struct cx_alert *x, int rc, int tried,
                  const json_t *used, size_t n, const char *prefix,
                  const char *ans, const char *err)
{
  int64_t now = cx_wall_ms();
  int retries = (int)al->a->cfg->notify_retries, result;
  struct cx_buf b = {0};
  x->attempts += tried;
  cx_free(x->state);
  cx_free(x->answer);
  cx_free(x->recipients);
  x->recipients = dump(used);
  if (rc == 0) {
    result = R_SENT;
    x->state = cx_strdup("sent");
  } else if (!tried) {
    result = R_SKIPPED;
    x->state = cx_strdup("skipped");
  } else if (rc == CX_EUNAVAIL && x->attempts <= retries) {
    result = R_RETRIED;
    x->state = cx_strdup("pending");
    x->next_at = now + backoff_ms(x->attempts);
  } else {
    result = R_FAILED;
    x->state = cx_strdup("failed");
  }
  if (result != R_RETRIED)
    x->done_at = now;
  /* The answer: the server's reply when it gave one, else what happened. */
  cx_buf_printf(&b, "%s%s", prefix, ans[0] ? ans : err);
  x->answer = cx_buf_steal(&b);
  count(al, x->channel, result);
  CX_LOG(result == R_SENT ? CX_LOG_INFO : CX_LOG_WARN, LOGC,
         "alert %lld (%s, run %lld, %s to %zu recipient(s)): %s after %d "
         "attempt(s): %s",
         (long long)x->id, x->event, (long long)x->run_id,
         channel_name(x->channel), n, result_name[result], x->attempts,
         x->answer ? x->answer : "");
  char uerr[CX_ERR_LEN] = "";
  if (x->state == NULL || x->answer == NULL)
    return -ENOMEM;
  rc = cx_store_alert_update(al->a->store, x, uerr);
  if (rc != 0) /* the claim expires: sent again (the one duplicate) */
    CX_LOG(CX_LOG_WARN, LOGC, "alert %lld: recording the outcome: %s",
           (long long)x->id, uerr);
  return rc;
}

/* Sends claimed alert x and records the outcome on its row. */
static int send_one(struct cx__alerts *al, struct cx_alert *x)
{
  char err[CX_ERR_LEN] = "", ans[CX_NOTIFY_ANSWER_LEN] = "";
  struct rcpt r = {0};
  int tried = 0, rc;
  if (!cx_notify_channel_on(al->n, x->channel)) {
    /* Queued from the store's settings, which another admin may have
     * changed since this sender last read them: read them again before
     * giving up on the row. */
    pthread_mutex_lock(&al->mu);
    al->dirty = 1;
    pthread_mutex_unlock(&al->mu);
    if (refresh(al, err) != 0)
      return -EAGAIN; /* the store failed: the claim expires, due again */
  }
  if (!cx_notify_channel_on(al->n, x->channel)) {
    cx_err_set(err, "channel %d (%s) is not configured", x->channel,
               channel_name(x->channel));
    rc = CX_EPARSE;
  } else if (is_node(x)) {
    rc = send_node(al, x, &r, &tried, ans, sizeof ans, err);
  } else {
    rc = send_run(al, x, &r, &tried, ans, sizeof ans, err);
  }
  if (!tried && rc != CX_EPARSE && rc != CX_ENOTFOUND) {
    /* The store failed before a send: keep the claim; it expires and the
     * row is due again. */
    rcpt_free(&r);
    CX_LOG(CX_LOG_WARN, LOGC, "alert %lld: %s (will retry)", (long long)x->id,
           err);
    return rc;
  }
  rc = record(al, x, rc, tried, r.used, r.n, "", ans, err);
  rcpt_free(&r);
  return rc;
}

/* ---- bursts: one digest per channel per minute --------------------------
 * Each channel may send BURST_MAX messages in a window of WINDOW_US; the
 * alerts due after that wait, and when the window ends they go out as one
 * digest per group of recipients, listing each job and event with its
 * count ("failed x57"). So 500 jobs failing in a minute make BURST_MAX
 * messages and a digest, and one job failing every second is counted, not
 * repeated. */

/* What a digest groups by and lists, per claimed row. */
struct item {
  struct cx_alert *x;
  char key[CX_JOB_MAX_NOTIFY_TEXT + 8]; /* recipient set */
  char name[160];                       /* job name, or the node */
  int done;
};

static int item_of(struct cx__alerts *al, struct cx_alert *x, struct item *it,
                   char *err)
{
  it->x = x;
  if (is_node(x)) {
    snprintf(it->key, sizeof it->key, "admins");
    snprintf(it->name, sizeof it->name, "node %.64s", x->node_uuid);
    return 0;
  }
  struct cx_job j;
  cx_job_init(&j);
  int rc = cx_store_job_find(al->a->store, x->job_id, &j, err);
  if (rc == 0) {
    snprintf(it->key, sizeof it->key, "job:%s", j.notify_to_array);
    snprintf(it->name, sizeof it->name, "%.128s (job %lld)", j.name,
             (long long)j.id);
  }
  cx_job_clear(&j);
  return rc;
}

/* Sends one digest for the items sharing items[first]'s key. */
static void digest_group(struct cx__alerts *al, struct item *items, size_t n,
                         size_t first)
{
  char err[CX_ERR_LEN] = "", ans[CX_NOTIFY_ANSWER_LEN] = "", prefix[64];
  struct cx_buf list = {0};
  struct rcpt r = {0};
  size_t count = 0, lines = 0;
  const struct cx_alert *x0 = items[first].x;
  /* one line per job and event, with its count, in first-seen order */
  for (size_t i = first; i < n; i++) {
    if (items[i].done || strcmp(items[i].key, items[first].key) != 0)
      continue;
    count++;
    int seen = 0;
    for (size_t k = first; k < i && !seen; k++)
      seen = strcmp(items[k].key, items[first].key) == 0 &&
             strcmp(items[k].name, items[i].name) == 0 &&
             strcmp(items[k].x->event, items[i].x->event) == 0;
    if (seen)
      continue;
    size_t same = 0;
    for (size_t k = i; k < n; k++)
      same += strcmp(items[k].key, items[first].key) == 0 &&
              strcmp(items[k].name, items[i].name) == 0 &&
              strcmp(items[k].x->event, items[i].x->event) == 0;
    if (++lines <= 200)
      cx_buf_printf(&list, "%s: %s x%zu\n", items[i].name, items[i].x->event,
                    same);
  }
  if (lines > 200)
    cx_buf_printf(&list, "... and %zu more\n", lines - 200);
  cx_buf_puts(&list, "");

  int rc = strcmp(items[first].key, "admins") == 0
               ? rcpt_admins(al->a->store, x0->channel, x0->id, &r, err)
               : 0;
  if (rc == 0 && strcmp(items[first].key, "admins") != 0) {
    struct cx_job j;
    cx_job_init(&j);
    rc = cx_store_job_find(al->a->store, x0->job_id, &j, err);
    if (rc == 0)
      rc = rcpt_job(al->a->store, j.notify_to_array, x0->channel, x0->id, &r,
                    err);
    cx_job_clear(&j);
  }
  int tried = 0;
  if (rc == 0 && (r.n > 0 || !needs_rcpt(x0->channel)) &&
      !cx_buf_failed(&list)) {
    tried = 1;
    rc = cx_notify_send_digest(al->n, x0->channel, (const char *const *)r.to,
                               r.n, count, lines, list.data, ans, sizeof ans,
                               err);
  } else if (rc == 0) {
    cx_err_set(err, "no recipient has a %s address", channel_name(x0->channel));
    rc = CX_EPARSE;
  }
  snprintf(prefix, sizeof prefix, "digest of %zu: ", count);
  for (size_t i = first; i < n; i++)
    if (!items[i].done && strcmp(items[i].key, items[first].key) == 0) {
      items[i].done = 1;
      if (tried || rc == CX_EPARSE) /* else the claims expire: due again */
        record(al, items[i].x, rc, tried, r.used, r.n, prefix, ans, err);
    }
  rcpt_free(&r);
  cx_buf_free(&list);
}

/* Claims the due rows of channel ch and sends them as digests. */
static int digest(struct cx__alerts *al, struct cx_alert_list *l, int ch,
                  int64_t lease, char *err)
{
  struct item *items = cx_calloc(l->n + 1, sizeof *items);
  size_t n = 0;
  int rc = items ? 0 : -ENOMEM;
  for (size_t i = 0; rc == 0 && i < l->n; i++) {
    int got = 0;
    int64_t now = cx_wall_ms();
    if (l->items[i].channel != ch)
      continue;
    rc = cx_store_alert_claim(al->a->store, l->items[i].id, now, now + lease,
                              &got, err);
    if (rc == 0 && got && item_of(al, &l->items[i], &items[n], err) == 0)
      n++;
  }
  for (size_t i = 0; i < n; i++)
    if (!items[i].done)
      digest_group(al, items, n, i);
  cx_free(items);
  return rc;
}

static int send_due(struct cx__alerts *al, char *err)
{
  struct cx_alert_list l = {0};
  int64_t now = cx_wall_ms();
  int rc = cx_store_alert_due(al->a->store, now, DUE_MAX, &l, err);
  int64_t lease = al->a->cfg->notify_timeout * 1000 + CLAIM_MS;
  cx_mono t = cx_mono_now();
  for (int ch = 0; rc == 0 && ch < N_CH && leading(al->a); ch++) {
    struct win *w = &al->win[ch];
    size_t k = 0;
    for (size_t i = 0; i < l.n; i++)
      k += l.items[i].channel == ch ||
           (ch == 0 && (l.items[i].channel < 0 || l.items[i].channel >= N_CH));
    if (t - w->start >= WINDOW_US) {
      int held = w->held && k > 0;
      w->start = t;
      w->sent = held; /* the digest is this window's first message */
      w->held = 0;
      if (held) {
        rc = digest(al, &l, ch, lease, err);
        continue;
      }
    }
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
      int c = l.items[i].channel, got = 0;
      if (c != ch && !(ch == 0 && (c < 0 || c >= N_CH)))
        continue;
      if (w->sent >= BURST_MAX) {
        w->held = 1; /* the rest wait for the window's digest */
        break;
      }
      now = cx_wall_ms();
      rc = cx_store_alert_claim(al->a->store, l.items[i].id, now, now + lease,
                                &got, err);
      if (rc == 0 && got) {
        send_one(al, &l.items[i]);
        w->sent++;
      }
    }
  }
  cx_alert_list_free(&l);
  return rc;
}

/* ---- thread ------------------------------------------------------------- */

static void round_once(struct cx__alerts *al)
{
  char err[CX_ERR_LEN] = "";
  int rc = take_in(al, err);
  if (rc == 0)
    rc = refresh(al, err);
  if (rc == 0)
    rc = send_due(al, err);
  if (rc != 0 && !al->store_down)
    CX_LOG(CX_LOG_WARN, LOGC, "store: %s (alerts wait for it)", err);
  al->store_down = rc != 0;
}

static void *alerts_main(void *arg)
{
  struct cx__alerts *al = arg;
  pthread_mutex_lock(&al->mu);
  while (!al->stop) {
    pthread_mutex_unlock(&al->mu);
    if (leading(al->a))
      round_once(al);
    pthread_mutex_lock(&al->mu);
    if (al->stop)
      break;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += ROUND_MS * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&al->cv, &al->mu, &ts);
  }
  pthread_mutex_unlock(&al->mu);
  return NULL;
}

int cx__alerts_start(struct cx_admin *a, char *err)
{
  struct cx__alerts *al = cx_calloc(1, sizeof *al);
  pthread_condattr_t ca;
  if (al == NULL)
    return -ENOMEM;
  al->a = a;
  pthread_mutex_init(&al->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&al->cv, &ca);
  pthread_condattr_destroy(&ca);
  int rc = pthread_create(&al->th, NULL, alerts_main, al);
  if (rc != 0) {
    cx_err_set(err, "alerts thread: %s", strerror(rc));
    pthread_mutex_destroy(&al->mu);
    pthread_cond_destroy(&al->cv);
    cx_free(al);
    return -rc;
  }
  a->alerts = al;
  /* First start on an empty store: the config file's settings go in now,
   * so GET /notify/settings shows them before any alert. */
  json_t *doc = NULL;
  char serr[CX_ERR_LEN] = "";
  if (cx__nset_load(a, &doc, serr) != 0)
    CX_LOG(CX_LOG_WARN, LOGC, "notification settings: %s", serr);
  json_decref(doc);
  return 0;
}

void cx__alerts_stop(struct cx_admin *a)
{
  struct cx__alerts *al = a->alerts;
  if (al == NULL)
    return;
  pthread_mutex_lock(&al->mu);
  al->stop = 1;
  pthread_cond_signal(&al->cv);
  pthread_mutex_unlock(&al->mu);
  pthread_join(al->th, NULL);
  cx_notify_destroy(al->n, 0);
  cx_free(al->n_text);
  pthread_mutex_destroy(&al->mu);
  pthread_cond_destroy(&al->cv);
  cx_free(al);
  a->alerts = NULL;
}

/* Queues node event ev (node_down / node_up) of node uuid to the admins:
 * one row per configured channel, ukey "node:<uuid>:<down|up>:<tag>:<ch>"
 * so that every leader that sees the same event writes the same rows
 * (CX_EEXISTS: taken in already). */
static void node_event(struct cx_admin *a, const char *ev, const char *uuid,
                       int64_t tag, const char *detail)
{
  char err[CX_ERR_LEN] = "", ukey[192];
  json_t *doc = NULL;
  if (cx__nset_load(a, &doc, err) != 0) {
    CX_LOG(CX_LOG_WARN, LOGC, "node %s %s: alert not queued: %s", uuid, ev,
           err);
    return;
  }
  for (int ch = 1; ch <= CX_NOTIFY_TYPE_MAX; ch++) {
    if (!cx__nset_configured(doc, ch))
      continue;
    snprintf(ukey, sizeof ukey, "node:%.64s:%s:%lld:%d", uuid, ev + 5,
             (long long)tag, ch);
    struct cx_alert x = {.ukey = ukey,
                         .event = (char *)ev,
                         .node_uuid = (char *)uuid,
                         .detail = (char *)detail,
                         .channel = ch};
    int rc = cx_store_alert_add(a->store, &x, err);
    if (rc == 0)
      CX_LOG(CX_LOG_INFO, LOGC, "node %s %s: alert %lld queued (%s)", uuid,
             ev + 5, (long long)x.id, channel_name(ch));
    else if (rc != CX_EEXISTS)
      CX_LOG(CX_LOG_WARN, LOGC, "node %s %s: alert not queued: %s", uuid, ev,
             err);
  }
  json_decref(doc);
}

void cx__alerts_node_down(struct cx_admin *a, const char *uuid,
                          const char *const *jobs, size_t n_jobs)
{
  /* The session that ended: the node row's last `up` (a node that
   * registers again gets a new one), so a death is one event whichever
   * leader sees it, and how often. */
  struct cx_node row = {0};
  int64_t session = 0;
  if (cx_store_node_find(a->store, uuid, &row, NULL) == 0)
    session = row.up;
  cx_node_clear(&row);
  json_t *names = json_array();
  for (size_t i = 0; names != NULL && i < n_jobs; i++)
    json_array_append_new(names, json_string(jobs[i]));
  char *detail = dump(names);
  json_decref(names);
  node_event(a, "node_down", uuid, session, detail ? detail : "[]");
  cx_free(detail);
}

void cx__alerts_node_up(struct cx_admin *a, const char *uuid)
{
  char prefix[96], err[CX_ERR_LEN] = "";
  struct cx_alert last = {0};
  snprintf(prefix, sizeof prefix, "node:%.64s:", uuid);
  int rc = cx_store_alert_last(a->store, prefix, &last, err);
  if (rc == 0 && strcmp(last.event, "node_down") == 0)
    node_event(a, "node_up", uuid, last.id, "[]"); /* once per death */
  else if (rc != 0 && rc != CX_ENOTFOUND)
    CX_LOG(CX_LOG_WARN, LOGC, "node %s up: %s", uuid, err);
  cx_alert_clear(&last);
}

void cx__alerts_test_done(struct cx_admin *a, int ch, int ok)
{
  struct cx__alerts *al = a->alerts;
  if (al == NULL)
    return;
  pthread_mutex_lock(&al->mu);
  al->tests[ch > 0 && ch < N_CH ? ch : 0][ok != 0]++;
  pthread_mutex_unlock(&al->mu);
}

void cx__alerts_metrics(struct cx_admin *a, struct cx_buf *b)
{
  struct cx__alerts *al = a->alerts;
  uint64_t c[N_CH][R_N] = {{0}}, t[N_CH][2] = {{0}};
  if (al != NULL) {
    pthread_mutex_lock(&al->mu);
    memcpy(c, al->count, sizeof c);
    memcpy(t, al->tests, sizeof t);
    pthread_mutex_unlock(&al->mu);
  }
  cx_buf_puts(b, "# HELP cronix_notify_tests_total Test messages of POST "
                 "/notify/test through this admin, by channel and result.\n"
                 "# TYPE cronix_notify_tests_total counter\n");
  for (int ch = 1; ch < N_CH; ch++)
    for (int r = 0; r < 2; r++)
      cx_buf_printf(
          b, "cronix_notify_tests_total{channel=\"%s\",result=\"%s\"} %llu\n",
          channel_name(ch), r ? "sent" : "failed",
          (unsigned long long)t[ch][r]);
  cx_buf_puts(b, "# HELP cronix_alerts_total Alerts this admin handled as "
                 "leader, by channel and result.\n"
                 "# TYPE cronix_alerts_total counter\n");
  for (int ch = 0; ch < N_CH; ch++)
    for (int r = 0; r < R_N; r++)
      cx_buf_printf(
          b, "cronix_alerts_total{channel=\"%s\",result=\"%s\"} %llu\n",
          channel_name(ch), result_name[r], (unsigned long long)c[ch][r]);
}
