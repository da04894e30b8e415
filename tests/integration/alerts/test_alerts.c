/*
 * Alerts from the center (issue 14), on real processes: MariaDB, etcd,
 * aiosmtpd, two `cronix admin` and one `cronix node` started with nothing
 * but --store and --etcd (no notification settings at all). Failures are
 * mailed by the leader admin from the store: exactly once, also when the
 * leader is killed while the failing run is on its way.
 *
 * The leader is the admin whose /metrics says cronix_leader 1; admin A is
 * started alone first, so it leads until killed.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "notify/notify.h"
#include "support/daemon.h"
#include "support/http_sink.h"
#include "support/run.h"
#include "support/services.h"
#include "support/smtp_sink.h"
#include "support/test.h"
#include "util/util.h"

#define TTL "2s"

struct admin {
  struct cx_svc_proc p;
  char dir[CX_SVC_PATH_LEN];
  char base[64];
};

static struct {
  struct cx_svc_etcd etcd;
  struct cx_svc_mariadb db;
  struct cx_test_smtp smtp;
  struct admin a[2];
  struct cx_svc_proc node;
  char node_dir[CX_SVC_PATH_LEN];
  char tok[160];
  int64_t ops_id;
} E;

static void dump_logs(void)
{
  for (int i = 0; i < 2; i++)
    if (E.a[i].p.log_path[0])
      cx_svc_log_dump(E.a[i].p.log_path, 6000);
  if (E.node.log_path[0])
    cx_svc_log_dump(E.node.log_path, 4000);
}

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      dump_logs();                                                             \
      cx_test_fail(__FILE__, __LINE__, __VA_ARGS__);                           \
    }                                                                          \
  } while (0)

static void start(struct cx_svc_proc *p, const struct cx_test_daemon *d)
{
  char err[CX_ERR_LEN] = "";
  CHECK(cx_test_daemon_start(p, d, err) == 0, "%s: %s", d->name, err);
}

/* One API call on admin i; returns the reply's data on HTTP 200 and code
 * 0 (new reference), else NULL. */
static json_t *api_try(int i, const char *path, const char *body)
{
  char url[128], err[CX_ERR_LEN] = "";
  static char resp[1 << 16];
  long status = 0;
  snprintf(url, sizeof url, "%s%s", E.a[i].base, path);
  if (cx_svc_http_auth(body ? "POST" : "GET", url, E.tok, body, 20000, &status,
                       resp, sizeof resp, err) != 0 ||
      status != 200)
    return NULL;
  json_t *j = json_loads(resp, 0, NULL);
  json_t *d = json_incref(json_object_get(j, "data"));
  json_decref(j);
  return d;
}

static json_t *api(int i, const char *path, const char *body)
{
  json_t *d = api_try(i, path, body);
  CHECK(d != NULL, "admin %d %s %s failed", i, path, body ? body : "");
  return d;
}

/* Admin i's /metrics text (a static buffer), or NULL. */
static const char *metrics(int i)
{
  char url[128], err[CX_ERR_LEN] = "";
  static char resp[1 << 17];
  long status = 0;
  snprintf(url, sizeof url, "%s/metrics", E.a[i].base);
  if (cx_svc_http_auth("GET", url, E.tok, NULL, 5000, &status, resp,
                       sizeof resp, err) != 0 ||
      status != 200)
    return NULL;
  return resp;
}

/* 1 when admin i's /metrics says it leads. */
static int leads(int i)
{
  const char *m = metrics(i);
  return m != NULL && strstr(m, "\ncronix_leader 1\n") != NULL;
}

static int with_config; /* the admins get [notify.email] in their config */

static void admin_start(int i)
{
  char err[CX_ERR_LEN] = "", listen[64], name[16], smtp[160];
  struct admin *a = &E.a[i];
  int port = 0;
  if (a->dir[0] == '\0') {
    CHECK(cx_svc_port_alloc(&port, err) == 0, "%s", err);
    snprintf(a->base, sizeof a->base, "http://127.0.0.1:%d", port);
    snprintf(a->dir, sizeof a->dir, "%s/admin%d", cx_test_tmpdir(), i);
    CHECK(mkdir(a->dir, 0700) == 0, "mkdir %s", a->dir);
  }
  snprintf(listen, sizeof listen, "%s", a->base + strlen("http://"));
  snprintf(name, sizeof name, "admin%d", i);
  snprintf(smtp, sizeof smtp, "notify.email.smtp_url=%s", E.smtp.url);
  static const char *const sets[] = {"node.ttl=" TTL,
                                     "system.cmd_auto_allocation=true", NULL};
  const char *const mail[] = {smtp,
                              "notify.email.from=Cronix <cron@cronix.test>",
                              "notify.email.starttls=off", NULL};
  struct cx_test_daemon d = {.cmd = "admin",
                             .name = name,
                             .data_dir = a->dir,
                             .listen = listen,
                             .store = E.db.url,
                             .etcd = E.etcd.endpoints,
                             .sets = sets,
                             .more = with_config ? mail : NULL};
  start(&a->p, &d);
}

static void wait_for(int (*cond)(void), int timeout_s, const char *what)
{
  for (int i = 0; i < timeout_s * 10; i++) {
    if (cond())
      return;
    cx_sleep_us(100000);
  }
  CHECK(0, "%s: not within %d s", what, timeout_s);
}

static int a0_leads(void)
{
  return E.tok[0] != '\0' ||
                 cx_test_daemon_token(E.a[0].dir, E.tok, sizeof E.tok) == 0
             ? leads(0)
             : 0;
}
static int a1_leads(void)
{
  return leads(1);
}
static int node_alive(void)
{
  json_t *d = api_try(1, "/node/search", "{}");
  json_t *first = json_array_get(json_object_get(d, "list"), 0);
  int ok = first != NULL && json_is_true(json_object_get(first, "alive"));
  json_decref(d);
  return ok;
}

/* The node: only where the store and etcd are, no [notify.*] at all. */
static void node_start(void)
{
  static const char *const sets[] = {"node.ttl=" TTL, NULL};
  struct cx_test_daemon d = {.cmd = "node",
                             .name = "node",
                             .data_dir = E.node_dir,
                             .store = E.db.url,
                             .etcd = E.etcd.endpoints,
                             .sets = sets};
  start(&E.node, &d);
}

/* etcd, MariaDB, aiosmtpd (unless smtp_later), admin 0 (the leader),
 * admin 1, the node, and user "ops" (operator, ops@cronix.test). config:
 * the admins' config files have [notify.email] for the sink. */
static void up(int config, int smtp_later)
{
  char err[CX_ERR_LEN] = "";
  memset(&E, 0, sizeof E);
  with_config = config;
  if (!smtp_later)
    cx_test_smtp_start(&E.smtp, NULL);
  CHECK(cx_svc_etcd_start(&E.etcd, NULL, err) == 0, "etcd: %s", err);
  CHECK(cx_svc_mariadb_start(&E.db, NULL, err) == 0, "mariadb: %s", err);
  admin_start(0);
  wait_for(a0_leads, 60, "admin 0 leads");
  admin_start(1);
  snprintf(E.node_dir, sizeof E.node_dir, "%s/node", cx_test_tmpdir());
  CHECK(mkdir(E.node_dir, 0700) == 0, "mkdir node");
  node_start();
  wait_for(node_alive, 60, "node alive (seen by admin 1)");
  json_t *d = api(1, "/user/add",
                  "{\"username\":\"ops\",\"password\":\"a-long-password\","
                  "\"role\":\"operator\",\"email\":\"ops@cronix.test\"}");
  E.ops_id = json_integer_value(json_object_get(d, "id"));
  json_decref(d);
  CHECK(E.ops_id > 0, "no user id");
}

static void down(void)
{
  char err[CX_ERR_LEN];
  cx_svc_proc_stop(&E.node, 20000, err);
  for (int i = 0; i < 2; i++)
    cx_svc_proc_stop(&E.a[i].p, 20000, err);
  cx_svc_mariadb_destroy(&E.db);
  cx_svc_etcd_destroy(&E.etcd);
  if (E.smtp.port > 0)
    cx_test_smtp_stop(&E.smtp);
}

/* Adds (through admin i) a job that fires once, 3 s from now, runs
 * command and alerts ops by email on failure; returns its id. */
static int64_t add_failing_job(int i, const char *name, const char *command)
{
  char body[1024];
  struct cx_civil c;
  cx_civil_from_seconds(cx_wall_s() + 3, &c);
  snprintf(body, sizeof body,
           "{\"name\":\"%s\",\"command\":\"%s\",\"type\":1,"
           "\"spec\":\"%d %d %d %d %d * %d\",\"timezone\":\"UTC\","
           "\"allocation\":2,\"notify_status\":1,\"notify_type\":1,"
           "\"notify_to_array\":[%lld]}",
           name, command, c.sec, c.min, c.hour, c.day, c.month, c.year,
           (long long)E.ops_id);
  json_t *d = api(i, "/job/add", body);
  int64_t id = json_integer_value(json_object_get(d, "id"));
  json_decref(d);
  CHECK(id > 0, "/job/add: no id");
  return id;
}

/* The newest run of job id through admin i when its status is st
 * ("running" or a final one); else NULL. */
static json_t *run_in(int i, int64_t id, const char *st)
{
  char body[96];
  snprintf(body, sizeof body, "{\"job_id\":%lld,\"page_size\":1}",
           (long long)id);
  json_t *d = api_try(i, "/job/log", body);
  json_t *r = json_array_get(json_object_get(d, "list"), 0);
  const char *s = json_string_value(json_object_get(r, "status"));
  json_t *out = s && strcmp(s, st) == 0 ? json_incref(r) : NULL;
  json_decref(d);
  return out;
}

static json_t *wait_run(int i, int64_t id, const char *st, int timeout_s)
{
  for (int k = 0; k < timeout_s * 10; k++) {
    json_t *r = run_in(i, id, st);
    if (r != NULL)
      return r;
    cx_sleep_us(100000);
  }
  CHECK(0, "job %lld: no %s run within %d s", (long long)id, st, timeout_s);
  return NULL;
}

/* Exactly one message arrives (waiting up to 60 s: a leader killed while
 * it held the row's claim leaves it to expire, notify.timeout + 30 s), and
 * no second one in the 3 s after it; it names the job and goes to ops
 * alone. */
static void expect_one_mail(const char *job)
{
  CHECK(cx_test_smtp_wait(&E.smtp, 1, 60000) == 1, "no alert mail in 60 s");
  cx_sleep_us(3000000);
  CHECK(cx_test_smtp_count(&E.smtp) == 1, "%d mails, want 1",
        cx_test_smtp_count(&E.smtp));
  char *env = cx_test_smtp_read(&E.smtp, 1, "env");
  char *eml = cx_test_smtp_read(&E.smtp, 1, "eml");
  CHECK(env && strstr(env, "ops@cronix.test"), "rcpt: %s", env);
  CHECK(eml && strstr(eml, job), "the mail does not name %s", job);
  cx_free(env);
  cx_free(eml);
}

TEST_TIMEOUT(alerts_cluster_node_without_settings_failure_mailed_once, 240)
{
  up(1, 0);
  int64_t id = add_failing_job(0, "db-backup", "echo disk full; exit 3");
  json_t *r = wait_run(1, id, "failed", 30);
  json_decref(r);
  expect_one_mail("db-backup");
  down();
}

TEST_TIMEOUT(alerts_leader_killed_during_the_run_next_leader_mails_once, 240)
{
  char err[CX_ERR_LEN] = "";
  up(1, 0);
  int64_t id = add_failing_job(1, "slow-failure", "sleep 3; exit 4");
  json_decref(wait_run(1, id, "running", 30));
  /* The leader dies before the failure is recorded: nobody leads when the
   * node records it; the outbox holds it for the next leader. */
  CHECK(cx_svc_proc_signal(&E.a[0].p, SIGKILL, err) == 0, "%s", err);
  json_decref(wait_run(1, id, "failed", 30));
  wait_for(a1_leads, 30, "admin 1 leads");
  expect_one_mail("slow-failure");
  down();
}

/* 1 when admin i's log has a line holding what. */
static int log_has(int i, const char *what)
{
  FILE *f = fopen(E.a[i].p.log_path, "r");
  char line[2048];
  int found = 0;
  while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
    found = strstr(line, what) != NULL;
  if (f != NULL)
    fclose(f);
  return found;
}

/* 1 once admin 0's log shows a send that will be retried. */
static int a0_retrying(void)
{
  return log_has(0, "retried after 1 attempt");
}

static void post_smtp_settings(int i, const char *url)
{
  char body[512];
  snprintf(body, sizeof body,
           "{\"email\":{\"smtp_url\":\"%s\",\"from\":\"cron@cronix.test\","
           "\"starttls\":\"off\"}}",
           url);
  json_decref(api(i, "/notify/settings", body));
}

TEST_TIMEOUT(alerts_settings_from_the_api_leader_killed_after_a_failed_send,
             240)
{
  char err[CX_ERR_LEN] = "", dead[64];
  int port = 0;
  /* No [notify.*] anywhere: the settings come from the API, posted to the
   * follower, and point at a port where no mail server listens yet. */
  up(0, 1);
  CHECK(cx_svc_port_alloc(&port, err) == 0, "%s", err);
  snprintf(dead, sizeof dead, "smtp://127.0.0.1:%d/helo.test", port);
  post_smtp_settings(1, dead);
  int64_t id = add_failing_job(1, "nightly-etl", "exit 9");
  json_decref(wait_run(1, id, "failed", 30));
  /* The leader took the failure in and tried: refused, kept for a retry. */
  wait_for(a0_retrying, 30, "admin 0 tried and will retry");
  CHECK(cx_svc_proc_signal(&E.a[0].p, SIGKILL, err) == 0, "%s", err);
  cx_test_smtp_start(&E.smtp, NULL);
  post_smtp_settings(1, E.smtp.url);
  wait_for(a1_leads, 30, "admin 1 leads");
  expect_one_mail("nightly-etl");
  down();
}

TEST_TIMEOUT(alerts_node_death_is_mailed_to_the_admins_once, 240)
{
  char err[CX_ERR_LEN] = "";
  up(1, 0);
  json_decref(api(1, "/user/add",
                  "{\"username\":\"boss\",\"password\":\"a-long-password\","
                  "\"role\":\"admin\",\"email\":\"boss@cronix.test\"}"));
  CHECK(cx_svc_proc_signal(&E.node, SIGKILL, err) == 0, "%s", err);
  CHECK(cx_test_smtp_wait(&E.smtp, 1, 30000) == 1, "no node-down mail");
  cx_sleep_us(3000000);
  CHECK(cx_test_smtp_count(&E.smtp) == 1, "%d mails, want 1",
        cx_test_smtp_count(&E.smtp));
  char *env = cx_test_smtp_read(&E.smtp, 1, "env");
  char *eml = cx_test_smtp_read(&E.smtp, 1, "eml");
  CHECK(env && strstr(env, "boss@cronix.test") &&
            !strstr(env, "ops@cronix.test"),
        "rcpt: %s", env); /* admins only */
  CHECK(eml && strstr(eml, "is down"), "not a node-down mail");
  cx_free(env);
  cx_free(eml);
  down();
}

/* Message k (from 1) whose subject holds what: its number, or 0. */
static int mail_with(const char *what, const char *rcpt)
{
  int n = cx_test_smtp_count(&E.smtp), found = 0;
  for (int k = 1; k <= n && !found; k++) {
    char *env = cx_test_smtp_read(&E.smtp, k, "env");
    char *eml = cx_test_smtp_read(&E.smtp, k, "eml");
    if (eml && strstr(eml, what) && env && strstr(env, rcpt))
      found = k;
    cx_free(env);
    cx_free(eml);
  }
  return found;
}

static int mails_with(const char *what)
{
  int n = cx_test_smtp_count(&E.smtp), k, found = 0;
  for (k = 1; k <= n; k++) {
    char *eml = cx_test_smtp_read(&E.smtp, k, "eml");
    found += eml && strstr(eml, what);
    cx_free(eml);
  }
  return found;
}

static struct cx_test_sink H; /* the generic webhook's receiver */

/* The value of the /metrics line of admin i starting with name; -1 when
 * absent. */
static long metric(int i, const char *name)
{
  const char *resp = metrics(i);
  if (resp == NULL)
    return -1;
  for (const char *l = resp; l != NULL && *l;
       l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
    if (strncmp(l, name, strlen(name)) == 0 && l[strlen(name)] == ' ')
      return strtol(l + strlen(name) + 1, NULL, 10);
  return -1;
}

/* The webhook body (parsed) of a run alert whose subject holds what. */
static json_t *hook_with(const char *what)
{
  for (size_t i = 0; i < H.n && i < CX_TEST_SINK_MAX; i++) {
    json_t *b = json_loads(H.r[i].body, 0, NULL);
    const char *subj = json_string_value(json_object_get(b, "subject"));
    if (subj && strstr(subj, what))
      return b;
    json_decref(b);
  }
  return NULL;
}

static const char *fact(const json_t *b, const char *label)
{
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(b, "facts"), i, f)
  {
    const char *l = json_string_value(json_object_get(f, "label"));
    if (l && strcmp(l, label) == 0)
      return json_string_value(json_object_get(f, "value"));
  }
  return NULL;
}

/* A node without notification settings stops for a few seconds: the
 * admins get "down" and "back up" (mail and the webhook, the channels
 * configured), and the job that fires every second gets its missed
 * fires alerted, the range named, through the outbox the missed row was
 * flagged in. */
TEST_TIMEOUT(alerts_node_down_missed_fires_and_node_up_alerted_once, 300)
{
  char err[CX_ERR_LEN] = "", body[1024];
  up(1, 0);
  cx_test_sink_start(&H);
  snprintf(body, sizeof body,
           "{\"webhook\":{\"url\":\"http://127.0.0.1:%d/hook\"}}", H.port);
  json_decref(api(1, "/notify/settings", body));
  json_decref(api(1, "/user/add",
                  "{\"username\":\"boss\",\"password\":\"a-long-password\","
                  "\"role\":\"admin\",\"email\":\"boss@cronix.test\"}"));
  /* An admin without an address: left out of the mail, with a log line. */
  json_decref(api(1, "/user/add",
                  "{\"username\":\"nomail\",\"password\":\"a-long-password\","
                  "\"role\":\"admin\"}"));
  snprintf(body, sizeof body,
           "{\"name\":\"every-second\",\"command\":\"true\",\"type\":1,"
           "\"spec\":\"* * * * * *\",\"timezone\":\"UTC\",\"allocation\":2,"
           "\"misfire\":\"skip\",\"notify_status\":1,\"notify_type\":6,"
           "\"notify_events\":\"missed\",\"notify_to_array\":[%lld]}",
           (long long)E.ops_id);
  json_t *d = api(1, "/job/add", body);
  int64_t id = json_integer_value(json_object_get(d, "id"));
  json_decref(d);
  json_decref(wait_run(1, id, "success", 30));
  /* A clean stop: its lease is revoked, the leader sees the key go. */
  CHECK(cx_svc_proc_stop(&E.node, 20000, err) == 0, "%s", err);
  for (int i = 0; i < 300 && !mail_with("is down", "boss@cronix.test"); i++)
    cx_sleep_us(100000);
  CHECK(mail_with("is down", "boss@cronix.test"), "no node-down mail");
  cx_sleep_us(4000000); /* fires nobody runs */
  node_start();
  wait_for(node_alive, 60, "node alive again");
  for (int i = 0; i < 300 && !mail_with("is back up", "boss@cronix.test"); i++)
    cx_sleep_us(100000);
  CHECK(mail_with("is back up", "boss@cronix.test"), "no node-up mail");
  json_t *b = NULL;
  for (int i = 0; i < 300 && (b = hook_with("missed its fire")) == NULL; i++)
    cx_sleep_us(100000);
  CHECK(b != NULL, "no missed alert at the webhook (%zu requests)", H.n);
  const char *range = fact(b, "Missed fires");
  CHECK(range != NULL && strstr(range, " .. ") != NULL,
        "the missed alert names no range: %s", range ? range : "(none)");
  CHECK(strstr(json_string_value(json_object_get(b, "subject")),
               "every-second") != NULL,
        "the missed alert names no job");
  json_decref(b);
  /* The webhook, configured, had the node events too. */
  b = hook_with("is down");
  CHECK(b != NULL, "no node-down at the webhook");
  json_decref(b);
  b = hook_with("is back up");
  CHECK(b != NULL, "no node-up at the webhook");
  json_decref(b);
  /* Once each: reconciliation and the next leader see the same events. */
  cx_sleep_us(3000000);
  CHECK(mails_with("is down") == 1 && mails_with("is back up") == 1,
        "node mails: %d down, %d up", mails_with("is down"),
        mails_with("is back up"));
  json_t *log = api(1, "/notify/log", "{\"event\":\"missed\"}");
  CHECK(json_integer_value(json_object_get(log, "total")) >= 1,
        "no missed row in /notify/log");
  json_decref(log);
  CHECK(log_has(0, "(nomail) has no email; left out"),
        "no log line for the admin without an address");
  /* The leader counted its sends per channel and result. */
  CHECK(metric(0, "cronix_alerts_total{channel=\"email\",result=\"sent\"}") >=
            2,
        "email sent counter");
  CHECK(metric(0, "cronix_alerts_total{channel=\"webhook\",result=\"sent\"}") >=
            3,
        "webhook sent counter");
  /* A new leader reconciles at once: it repeats none of the node events. */
  CHECK(cx_svc_proc_signal(&E.a[0].p, SIGKILL, err) == 0, "%s", err);
  wait_for(a1_leads, 30, "admin 1 leads");
  cx_sleep_us(4000000);
  CHECK(mails_with("is down") == 1 && mails_with("is back up") == 1,
        "after the leader change: %d down, %d up mails", mails_with("is down"),
        mails_with("is back up"));
  cx_test_sink_stop(&H);
  down();
}

/* One receiver per robot channel (3 DingTalk .. 6 webhook, and 2 Feishu). */
static struct cx_test_sink R[CX_NOTIFY_TYPE_MAX + 1];

/* Runs job id now through admin 1 and waits for a run with status st. */
static void once(int64_t id, const char *st, int nth)
{
  char body[64];
  snprintf(body, sizeof body, "{\"job_id\":%lld}", (long long)id);
  json_decref(api(1, "/job/once", body));
  for (int i = 0; i < 300; i++) {
    snprintf(body, sizeof body, "{\"job_id\":%lld,\"page_size\":1}",
             (long long)id);
    json_t *d = api_try(1, "/job/log", body);
    json_t *r = json_array_get(json_object_get(d, "list"), 0);
    const char *s = json_string_value(json_object_get(r, "status"));
    int done = json_integer_value(json_object_get(d, "total")) == nth && s &&
               strcmp(s, st) == 0;
    json_decref(d);
    if (done)
      return;
    cx_sleep_us(100000);
  }
  CHECK(0, "job %lld: run %d not %s in 30 s", (long long)id, nth, st);
}

/* Requests at sink s whose raw body holds what. */
static int sink_has(const struct cx_test_sink *s, const char *what)
{
  int k = 0;
  for (size_t i = 0; i < s->n && i < CX_TEST_SINK_MAX; i++)
    k += strstr(s->r[i].body, what) != NULL;
  return k;
}

/* The Done-when of issue 14 on a real cluster whose node has no
 * notification settings: failure, timeout and recovery alerts reach
 * aiosmtpd and the local receiver of every other channel, once each; then
 * missed fires of a stopped node reach every channel too. */
TEST_TIMEOUT(alerts_cluster_failure_timeout_recovery_missed_on_every_channel,
             360)
{
  char body[2048], id_s[96];
  static const char *const feishu_ok = "{\"code\":0,\"msg\":\"success\"}";
  up(1, 0);
  for (int c = 2; c <= CX_NOTIFY_TYPE_MAX; c++) {
    cx_test_sink_start(&R[c]);
    for (size_t k = 0; c == 2 && k < CX_TEST_SINK_MAX; k++)
      cx_test_sink_script(&R[c], k, 200, feishu_ok);
  }
  snprintf(body, sizeof body,
           "{\"feishu\":{\"webhook_url\":\"http://127.0.0.1:%d/open-apis/bot/"
           "v2/hook/T\"},\"dingtalk\":{\"webhook_url\":\"http://127.0.0.1:%d/"
           "robot/send?access_token=TK\",\"secret\":\"SECx\"},\"wecom\":{"
           "\"webhook_url\":\"http://127.0.0.1:%d/cgi-bin/webhook/send?key=K\"}"
           ",\"slack\":{\"webhook_url\":\"http://127.0.0.1:%d/services/T/B/X\"}"
           ",\"webhook\":{\"url\":\"http://127.0.0.1:%d/hook\",\"secret\":"
           "\"whsec\"}}",
           R[2].port, R[3].port, R[4].port, R[5].port, R[6].port);
  json_decref(api(1, "/notify/settings", body));
  json_t *d = api(1, "/user/add",
                  "{\"username\":\"oncall\",\"password\":\"a-long-password\","
                  "\"role\":\"operator\",\"email\":\"oncall@cronix.test\","
                  "\"feishu_id\":\"ou_oncall\",\"dingtalk_id\":\"ding7\","
                  "\"wecom_id\":\"wc7\",\"slack_id\":\"U0ONCALL\"}");
  int64_t oncall = json_integer_value(json_object_get(d, "id"));
  json_decref(d);
  int64_t job[CX_NOTIFY_TYPE_MAX + 1], slow[CX_NOTIFY_TYPE_MAX + 1];
  char never[64]; /* fires only when run with /job/once */
  cx_test_spec_days_ahead(300, never, sizeof never);
  for (int c = 1; c <= CX_NOTIFY_TYPE_MAX; c++) {
    for (int t = 0; t < 2; t++) {
      snprintf(body, sizeof body,
               "{\"name\":\"%s%d\",\"command\":\"%s\",\"type\":1,"
               "\"spec\":\"%s\",\"timezone\":\"UTC\","
               "\"allocation\":2,\"timeout\":%d,\"notify_status\":1,"
               "\"notify_type\":%d,\"notify_to_array\":[%lld]}",
               t ? "slow" : "ch", c, t ? "sleep 20" : "exit 3", never,
               t ? 1 : 0, c, (long long)oncall);
      d = api(1, "/job/add", body);
      (t ? slow : job)[c] = json_integer_value(json_object_get(d, "id"));
      json_decref(d);
    }
  }
  for (int c = 1; c <= CX_NOTIFY_TYPE_MAX; c++) {
    once(job[c], "failed", 1);
    once(slow[c], "timeout", 1);
    snprintf(body, sizeof body, "{\"id\":%lld,\"command\":\"true\"}",
             (long long)job[c]);
    json_decref(api(1, "/job/add", body));
    once(job[c], "success", 2);
  }
  /* Three alerts on each channel: failed, timeout, recovered. */
  CHECK(cx_test_smtp_wait(&E.smtp, 3, 60000) == 3, "%d mails, want 3",
        cx_test_smtp_count(&E.smtp));
  for (int c = 2; c <= CX_NOTIFY_TYPE_MAX; c++)
    CHECK(cx_test_sink_wait(&R[c], 3, 60000) == 3, "channel %d: %zu requests",
          c, R[c].n);
  cx_sleep_us(3000000); /* and no more */
  CHECK(cx_test_smtp_count(&E.smtp) == 3, "%d mails",
        cx_test_smtp_count(&E.smtp));
  CHECK(mails_with("\"ch1\" failed") == 1 &&
            mails_with("\"slow1\" timed out") == 1 &&
            mails_with("\"ch1\" recovered") == 1,
        "mail subjects");
  CHECK(mail_with("recovered", "oncall@cronix.test"), "mail recipient");
  for (int c = 2; c <= CX_NOTIFY_TYPE_MAX; c++) {
    CHECK(R[c].n == 3, "channel %d: %zu requests", c, R[c].n);
    snprintf(id_s, sizeof id_s, "ch%d\\\" failed", c);
    CHECK(sink_has(&R[c], id_s) == 1, "channel %d: no %s", c, id_s);
    snprintf(id_s, sizeof id_s, "slow%d\\\" timed out", c);
    CHECK(sink_has(&R[c], id_s) == 1, "channel %d: no %s", c, id_s);
    snprintf(id_s, sizeof id_s, "ch%d\\\" recovered", c);
    CHECK(sink_has(&R[c], id_s) == 1, "channel %d: no %s", c, id_s);
  }
  /* each channel reached the user by its own id */
  CHECK(sink_has(&R[2], "ou_oncall") == 3, "feishu mention");
  CHECK(sink_has(&R[3], "ding7") == 3, "dingtalk mention");
  CHECK(sink_has(&R[4], "wc7") == 3, "wecom mention");
  CHECK(sink_has(&R[5], "<@U0ONCALL>") == 3, "slack mention");
  CHECK(sink_has(&R[5], "\"blocks\"") == 3, "slack blocks");
  CHECK(strstr(R[6].r[0].headers, "X-Cronix-Signature: sha256=") != NULL,
        "webhook signature");

  /* Missed fires on every channel: a job per channel firing every second,
   * its only node stopped for 4 s; the missed range is alerted once on
   * each (node down/up alerts to the admins may come too: counted by
   * their own words, not here). */
  int64_t miss[CX_NOTIFY_TYPE_MAX + 1];
  for (int c = 1; c <= CX_NOTIFY_TYPE_MAX; c++) {
    snprintf(body, sizeof body,
             "{\"name\":\"miss%d\",\"command\":\"true\",\"type\":1,"
             "\"spec\":\"* * * * * *\",\"timezone\":\"UTC\","
             "\"allocation\":2,\"misfire\":\"skip\",\"notify_status\":1,"
             "\"notify_type\":%d,\"notify_events\":\"missed\","
             "\"notify_to_array\":[%lld]}",
             c, c, (long long)oncall);
    d = api(1, "/job/add", body);
    miss[c] = json_integer_value(json_object_get(d, "id"));
    json_decref(d);
  }
  for (int c = 1; c <= CX_NOTIFY_TYPE_MAX; c++)
    json_decref(wait_run(1, miss[c], "success", 30));
  char err[CX_ERR_LEN] = "";
  CHECK(cx_svc_proc_stop(&E.node, 20000, err) == 0, "%s", err);
  cx_sleep_us(4000000);
  node_start();
  wait_for(node_alive, 60, "node alive again");
  /* Each channel has had five messages this minute (failed, timeout,
   * recovered, node down and up), so the missed alert may wait for the
   * window's digest: the log says which, the receivers hold the job. */
  int sent = 0;
  for (int i = 0; i < 900 && sent != CX_NOTIFY_TYPE_MAX; i++) {
    json_t *log =
        api_try(1, "/notify/log", "{\"event\":\"missed\",\"page_size\":100}");
    size_t k;
    json_t *row;
    unsigned seen = 0;
    json_array_foreach(json_object_get(log, "list"), k, row)
    {
      const char *res = json_string_value(json_object_get(row, "result"));
      int64_t jid = json_integer_value(json_object_get(row, "job_id"));
      int64_t ch = json_integer_value(json_object_get(row, "channel"));
      if (res && strcmp(res, "sent") == 0 && ch >= 1 &&
          ch <= CX_NOTIFY_TYPE_MAX && jid == miss[ch])
        seen |= 1u << ch;
    }
    json_decref(log);
    sent = __builtin_popcount(seen);
    if (sent != CX_NOTIFY_TYPE_MAX)
      cx_sleep_us(100000);
  }
  CHECK(sent == CX_NOTIFY_TYPE_MAX, "missed alerts sent on %d of %d channels",
        sent, CX_NOTIFY_TYPE_MAX);
  CHECK(cx_test_smtp_count(&E.smtp) >= 4, "no missed mail");
  for (int c = 2; c <= CX_NOTIFY_TYPE_MAX; c++) { /* alone, or in a digest */
    char in_digest[64];
    snprintf(id_s, sizeof id_s, "miss%d\\\" missed its fire", c);
    snprintf(in_digest, sizeof in_digest, "miss%d (job %lld): missed", c,
             (long long)miss[c]);
    CHECK(sink_has(&R[c], id_s) + sink_has(&R[c], in_digest) >= 1,
          "channel %d: neither %s nor %s", c, id_s, in_digest);
  }
  for (int c = 2; c <= CX_NOTIFY_TYPE_MAX; c++)
    cx_test_sink_stop(&R[c]);
  down();
}
