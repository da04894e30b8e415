/*
 * Failure alerts end to end (SPEC §11): a job added through the admin API
 * fails on a real node, is retried, and after the LAST attempt exactly one
 * email reaches a real SMTP server (aiosmtpd on loopback) addressed to the
 * users in notify_to_array. What `cronix standalone` runs: SQLite, the
 * in-process coordination backend, the node and the admin in one process;
 * the admin (its own leader) sends it from the store.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "admin/admin.h"
#include "config/config.h"
#include "coord/coord.h"
#include "node/node.h"
#include "notify/notify.h"
#include "store/store.h"
#include "support/http_sink.h"
#include "support/smtp_sink.h"
#include "support/test.h"

struct env {
  struct cx_test_smtp sink;
  struct cx_config cfg;
  struct cx_store *store;
  struct cx_coord *coord;
  struct cx_noded *node;
  struct cx_admin *admin;
  char base[64];
  char tok[CX_STORE_TOKEN_LEN];
  int64_t ops_id, dev_id;
};
static struct env E;

static int64_t mk_user(const char *name, const char *role, const char *email,
                       char *tok)
{
  char err[CX_ERR_LEN] = "", field[CX_ADMIN_FIELD_LEN];
  int64_t id = 0;
  struct cx_admin_user_spec s = {.username = name,
                                 .password = "a-long-password",
                                 .role = role,
                                 .email = email};
  ASSERT_MSG(cx_admin_user_create(E.store, &s, &id, field, err) == 0, "%s",
             err);
  if (tok != NULL) {
    ASSERT_EQ(cx_store_token_generate(tok), 0);
    ASSERT_EQ(cx_store_token_create(E.store, tok, id, "api", 0, err), 0);
  }
  return id;
}

static void setup(void)
{
  char err[CX_ERR_LEN] = "", url[512];
  memset(&E, 0, sizeof E);
  cx_test_smtp_start(&E.sink, NULL);
  snprintf(url, sizeof url, "sqlite://%s/cronix.db", cx_test_tmpdir());
  ASSERT_EQ(cx_config_init(&E.cfg), 0);
  ASSERT_EQ(cx_config_set(&E.cfg, "server.data_dir", cx_test_tmpdir(), err), 0);
  ASSERT_EQ(cx_config_set(&E.cfg, "store.url", url, err), 0);
  /* The admin's first default for the settings in the store. */
  ASSERT_EQ(cx_config_set(&E.cfg, "notify.email.smtp_url", E.sink.url, err), 0);
  ASSERT_EQ(cx_config_set(&E.cfg, "notify.email.from",
                          "Cronix <cron@cronix.test>", err),
            0);
  ASSERT_EQ(cx_config_set(&E.cfg, "notify.email.starttls", "off", err), 0);
  if (geteuid() == 0) /* jobs as root, as before node.run_as */
    ASSERT_EQ(cx_config_set(&E.cfg, "node.run_as", "root", err), 0);
  ASSERT_MSG(cx_config_finish(&E.cfg, err) == 0, "%s", err);
  ASSERT_MSG(cx_store_open(url, &E.store, err) == 0, "%s", err);
  struct cx_coord_cfg cc = {.endpoints = ""};
  ASSERT_MSG(cx_coord_open(&cc, &E.coord, err) == 0, "%s", err);
  /* The node has no notifier: alerts go out from the admin (the leader). */
  struct cx_noded_opts no = {
      .cfg = &E.cfg, .store = E.store, .coord = E.coord, .version = "test"};
  ASSERT_MSG(cx_noded_create(&no, &E.node, err) == 0, "%s", err);
  ASSERT_MSG(cx_noded_start(E.node, err) == 0, "%s", err);
  struct cx_admin_opts ao = {.cfg = &E.cfg,
                             .store = E.store,
                             .coord = E.coord,
                             .listen = "127.0.0.1:0"};
  ASSERT_MSG(cx_admin_create(&ao, &E.admin, err) == 0, "%s", err);
  ASSERT_MSG(cx_admin_start(E.admin, err) == 0, "%s", err);
  snprintf(E.base, sizeof E.base, "http://127.0.0.1:%u",
           cx_admin_port(E.admin));
  mk_user("root", "admin", "root@cronix.test", E.tok);
  E.ops_id = mk_user("ops", "operator", "ops@cronix.test", NULL);
  E.dev_id = mk_user("dev", "viewer", "dev@cronix.test", NULL);
}

static void teardown(void)
{
  cx_admin_destroy(E.admin);
  cx_noded_stop(E.node);
  cx_noded_destroy(E.node);
  cx_coord_close(E.coord);
  cx_store_close(E.store);
  cx_config_free(&E.cfg);
  cx_test_smtp_stop(&E.sink);
}

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
  cx_buf_append(ctx, p, size * n);
  return size * n;
}

/* POST path with body; asserts a 200 envelope and returns its data. */
static json_t *api(const char *path, const char *body)
{
  char url[256], auth[128];
  struct cx_buf b = {0};
  struct curl_slist *h = NULL;
  long status = 0;
  CURL *c = curl_easy_init();
  snprintf(url, sizeof url, "%s%s", E.base, path);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", E.tok);
  h = curl_slist_append(h, auth);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  ASSERT_EQ(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  cx_buf_puts(&b, "");
  json_t *j = json_loads(b.data, 0, NULL);
  ASSERT_MSG(j != NULL && status == 200, "%s: %ld %s", path, status, b.data);
  json_t *d = json_incref(json_object_get(j, "data"));
  json_decref(j);
  cx_buf_free(&b);
  return d;
}

/* Adds a job on this node firing once (alerting users ops and dev; an id
 * that is no user is refused by /job/add), at the next second s with
 * s % 60 == fire_sec (>= 3 s ahead), in UTC; returns its id. */
static int64_t add_job_to(const char *name, const char *command, int notify,
                          int type, const char *to, int64_t *fire_at)
{
  char body[1024];
  int64_t now = cx_wall_s(), at = now + 3;
  struct cx_civil c;
  cx_civil_from_seconds(at, &c);
  *fire_at = at;
  snprintf(body, sizeof body,
           "{\"name\":\"%s\",\"command\":\"%s\",\"type\":1,"
           "\"spec\":\"%d %d %d %d %d * %d\",\"timezone\":\"UTC\","
           "\"allocation\":1,\"run_on\":\"%s\",\"retry_times\":2,"
           "\"retry_interval\":1,\"notify_status\":%d,\"notify_type\":%d,"
           "\"notify_to_array\":%s}",
           name, command, c.sec, c.min, c.hour, c.day, c.month, c.year,
           cx_noded_uuid(E.node), notify, type, to);
  json_t *d = api("/job/add", body);
  int64_t id = json_integer_value(json_object_get(d, "id"));
  json_decref(d);
  return id;
}

static int64_t add_job(const char *name, const char *command, int notify,
                       int64_t *fire_at)
{
  char to[64];
  snprintf(to, sizeof to, "[%lld,%lld]", (long long)E.ops_id,
           (long long)E.dev_id);
  return add_job_to(name, command, notify, 1, to, fire_at);
}

/* Waits (bounded) until job id has a finished run; returns it. */
static json_t *wait_run(int64_t id, int timeout_s)
{
  char body[128];
  snprintf(body, sizeof body, "{\"job_id\":%lld,\"page_size\":5}",
           (long long)id);
  for (int i = 0; i < timeout_s * 10; i++) {
    json_t *d = api("/job/log", body);
    json_t *first = json_array_get(json_object_get(d, "list"), 0);
    if (first != NULL &&
        json_integer_value(json_object_get(first, "end_time")) > 0) {
      json_t *r = json_incref(first);
      json_decref(d);
      return r;
    }
    json_decref(d);
    cx_sleep_us(100000);
  }
  ASSERT_MSG(0, "job %lld: no finished run after %d s", (long long)id,
             timeout_s);
  return NULL;
}

TEST_TIMEOUT(notify_e2e_failing_job_sends_one_email_after_the_last_attempt, 90)
{
  int64_t at;
  setup();
  int64_t id = add_job("nightly-backup", "echo disk full; exit 3", 1, &at);
  json_t *run = wait_run(id, 30);
  ASSERT_STREQ(json_string_value(json_object_get(run, "status")), "failed");
  ASSERT_EQ(json_integer_value(json_object_get(run, "attempts")), 3);
  ASSERT_EQ(json_integer_value(json_object_get(run, "scheduled_at")), at);
  int64_t end_ms = json_integer_value(json_object_get(run, "end_time"));
  json_decref(run);
  /* The message arrived after the last attempt ended: the earlier
   * attempts' failures did not alert. */
  ASSERT_EQ(cx_test_smtp_wait(&E.sink, 1, 15000), 1);
  char path[CX_SVC_PATH_LEN + 16];
  struct stat st;
  snprintf(path, sizeof path, "%s/1.eml", E.sink.dir);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_OP((int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000,
            >=, end_ms);
  cx_sleep_us(3000000); /* no second message trails behind */
  ASSERT_EQ(cx_test_smtp_count(&E.sink), 1);
  char *env = cx_test_smtp_read(&E.sink, 1, "env");
  ASSERT_CONTAINS(env, "ops@cronix.test");
  ASSERT_CONTAINS(env, "dev@cronix.test");
  ASSERT(strstr(env, "root@cronix.test") == NULL);
  cx_free(env);
  char *eml = cx_test_smtp_read(&E.sink, 1, "eml");
  ASSERT_CONTAINS(eml, "nightly-backup");
  cx_free(eml);
  teardown();
}

TEST_TIMEOUT(notify_e2e_success_and_notify_off_send_nothing, 90)
{
  int64_t at1, at2;
  setup();
  int64_t ok = add_job("fine", "true", 1, &at1);
  int64_t quiet = add_job("quiet-failure", "exit 5", 2, &at2);
  json_t *r1 = wait_run(ok, 30), *r2 = wait_run(quiet, 30);
  ASSERT_STREQ(json_string_value(json_object_get(r1, "status")), "success");
  ASSERT_STREQ(json_string_value(json_object_get(r2, "status")), "failed");
  json_decref(r1);
  json_decref(r2);
  cx_sleep_us(3000000);
  ASSERT_EQ(cx_test_smtp_count(&E.sink), 0);
  teardown();
}

TEST_TIMEOUT(notify_e2e_dingtalk_alert_mentions_users_by_id_or_mobile, 90)
{
  struct cx_test_sink hook;
  char body[512], to[64], ts[32];
  int64_t at;
  setup();
  cx_test_sink_start(&hook);
  snprintf(body, sizeof body,
           "{\"dingtalk\":{\"webhook_url\":\"http://127.0.0.1:%d/robot/"
           "send?access_token=TK\",\"secret\":\"SECe2e\"}}",
           hook.port);
  json_decref(api("/notify/settings", body));
  json_t *d = api("/user/add", "{\"username\":\"oncall\",\"password\":"
                               "\"a-long-password\",\"role\":\"viewer\","
                               "\"mobile\":\"13800000000\"}");
  int64_t oncall = json_integer_value(json_object_get(d, "id"));
  ASSERT_STREQ(json_string_value(json_object_get(d, "mobile")), "13800000000");
  json_decref(d);
  d = api("/user/add", "{\"username\":\"mgr\",\"password\":"
                       "\"a-long-password\",\"role\":\"viewer\","
                       "\"mobile\":\"13900000000\",\"dingtalk_id\":\"mgr7\"}");
  int64_t mgr = json_integer_value(json_object_get(d, "id"));
  json_decref(d);
  snprintf(to, sizeof to, "[%lld,%lld]", (long long)oncall, (long long)mgr);
  int64_t id = add_job_to("ding-job", "exit 2", 1, 3, to, &at);
  json_decref(wait_run(id, 30));
  ASSERT_EQ(cx_test_sink_wait(&hook, 1, 15000), 1);
  ASSERT_STREQ(hook.r[0].path, "/robot/send");
  ASSERT_STREQ(cx_test_sink_arg(&hook, 0, "access_token", ts, sizeof ts), "TK");
  ASSERT(cx_test_sink_arg(&hook, 0, "sign", ts, sizeof ts)[0] != '\0');
  json_t *b = json_loads(hook.r[0].body, 0, NULL);
  json_t *atj = json_object_get(b, "at");
  /* By id when the user has one, else by mobile. */
  ASSERT_STREQ(
      json_string_value(json_array_get(json_object_get(atj, "atUserIds"), 0)),
      "mgr7");
  ASSERT_EQ(json_array_size(json_object_get(atj, "atMobiles")), 1);
  ASSERT_STREQ(
      json_string_value(json_array_get(json_object_get(atj, "atMobiles"), 0)),
      "13800000000");
  ASSERT_CONTAINS(
      json_string_value(json_object_get(json_object_get(b, "text"), "content")),
      "ding-job");
  json_decref(b);
  /* The outbox row says what happened (recorded once the reply is in:
   * wait for it, bounded). */
  char err[CX_ERR_LEN] = "";
  struct cx_alert_list l;
  for (int i = 0;; i++) {
    ASSERT_EQ(cx_store_alert_search(E.store, NULL, 1, 10, &l, err), 0);
    ASSERT_EQ(l.n, 1);
    if (strcmp(l.items[0].state, "sending") != 0 || i == 100)
      break;
    cx_alert_list_free(&l);
    cx_sleep_us(100000);
  }
  ASSERT_STREQ(l.items[0].state, "sent");
  ASSERT_EQ(l.items[0].channel, 3);
  ASSERT_CONTAINS(l.items[0].recipients, "mobile:13800000000");
  ASSERT_CONTAINS(l.items[0].recipients, "id:mgr7");
  ASSERT_EQ(l.items[0].attempts, 1);
  cx_alert_list_free(&l);
  /* ... and POST /notify/log shows it. */
  d = api("/notify/log", "{\"page_size\":5}");
  ASSERT_EQ(json_integer_value(json_object_get(d, "total")), 1);
  json_t *row = json_array_get(json_object_get(d, "list"), 0);
  ASSERT_STREQ(json_string_value(json_object_get(row, "event")), "failed");
  ASSERT_STREQ(json_string_value(json_object_get(row, "channel_name")),
               "dingtalk");
  ASSERT_STREQ(json_string_value(json_object_get(row, "result")), "sent");
  ASSERT_EQ(json_integer_value(json_object_get(row, "attempts")), 1);
  ASSERT_EQ(json_array_size(json_object_get(row, "recipients")), 2);
  ASSERT_CONTAINS(json_string_value(json_object_get(row, "answer")),
                  "\"errcode\":0");
  ASSERT_EQ(json_integer_value(json_object_get(row, "job_id")), id);
  json_decref(d);
  cx_sleep_us(2000000);
  ASSERT_EQ(cx_test_sink_wait(&hook, 2, 0), 1); /* sent once */
  cx_test_sink_stop(&hook);
  teardown();
}

/* Waits until job id has n finished runs; returns the newest one's
 * status. */
static char *run_once_wait(int64_t id, int n)
{
  char body[128];
  snprintf(body, sizeof body, "{\"job_id\":%lld,\"page_size\":1}",
           (long long)id);
  for (int i = 0; i < 300; i++) {
    json_t *d = api("/job/log", body);
    json_t *first = json_array_get(json_object_get(d, "list"), 0);
    if (json_integer_value(json_object_get(d, "total")) == n &&
        json_integer_value(json_object_get(first, "end_time")) > 0) {
      char *st = cx_strdup(json_string_value(json_object_get(first, "status")));
      json_decref(d);
      return st;
    }
    json_decref(d);
    cx_sleep_us(100000);
  }
  ASSERT_MSG(0, "job %lld: run %d did not finish in 30 s", (long long)id, n);
  return NULL;
}

/* Runs job id now (/job/once) and waits until it has n finished runs;
 * returns the newest one's status. */
static char *run_once(int64_t id, int n)
{
  char body[128];
  snprintf(body, sizeof body, "{\"job_id\":%lld}", (long long)id);
  json_decref(api("/job/once", body));
  return run_once_wait(id, n);
}

TEST_TIMEOUT(notify_e2e_first_success_after_a_failure_is_a_recovery, 90)
{
  char body[1024];
  setup();
  /* Fails the first time, succeeds after (a flag file). */
  snprintf(body, sizeof body,
           "{\"name\":\"flaky\",\"command\":\"f=%s/flag; [ -f $f ] && exit 0; "
           "touch $f; exit 1\",\"type\":1,\"spec\":\"0 0 0 1 1 *\","
           "\"allocation\":1,\"run_on\":\"%s\",\"notify_status\":1,"
           "\"notify_type\":1,\"notify_to_array\":[%lld]}",
           cx_test_tmpdir(), cx_noded_uuid(E.node), (long long)E.ops_id);
  json_t *d = api("/job/add", body);
  int64_t id = json_integer_value(json_object_get(d, "id"));
  json_decref(d);
  char *st = run_once(id, 1);
  ASSERT_STREQ(st, "failed");
  cx_free(st);
  ASSERT_EQ(cx_test_smtp_wait(&E.sink, 1, 15000), 1);
  st = run_once(id, 2);
  ASSERT_STREQ(st, "success");
  cx_free(st);
  ASSERT_EQ(cx_test_smtp_wait(&E.sink, 2, 15000), 2);
  char *eml = cx_test_smtp_read(&E.sink, 2, "eml");
  ASSERT_CONTAINS(eml, "Subject: [cronix] job \"flaky\" recovered");
  cx_free(eml);
  eml = cx_test_smtp_read(&E.sink, 1, "eml");
  ASSERT_CONTAINS(eml, "Subject: [cronix] job \"flaky\" failed");
  cx_free(eml);
  /* Another success is no event. */
  st = run_once(id, 3);
  ASSERT_STREQ(st, "success");
  cx_free(st);
  cx_sleep_us(3000000);
  ASSERT_EQ(cx_test_smtp_count(&E.sink), 2);
  teardown();
}

/* A burst: 12 jobs failing at once. Each channel sends at most 5 messages
 * a minute; the other 7 alerts wait and go out as one digest when the
 * minute ends, each job listed with its count. */
TEST_TIMEOUT(notify_e2e_a_burst_becomes_five_messages_and_one_digest, 180)
{
  char body[1024];
  struct cx_civil c;
  setup();
  cx_civil_from_seconds(cx_wall_s() + 4, &c);
  for (int i = 0; i < 12; i++) {
    snprintf(body, sizeof body,
             "{\"name\":\"burst-%02d\",\"command\":\"exit 1\",\"type\":1,"
             "\"spec\":\"%d %d %d %d %d * %d\",\"timezone\":\"UTC\","
             "\"allocation\":1,\"run_on\":\"%s\",\"notify_status\":1,"
             "\"notify_type\":1,\"notify_to_array\":[%lld]}",
             i, c.sec, c.min, c.hour, c.day, c.month, c.year,
             cx_noded_uuid(E.node), (long long)E.ops_id);
    json_decref(api("/job/add", body));
  }
  ASSERT_EQ(cx_test_smtp_wait(&E.sink, 6, 120000), 6);
  cx_sleep_us(3000000);
  ASSERT_EQ(cx_test_smtp_count(&E.sink), 6);
  int digests = 0;
  for (int k = 1; k <= 6; k++) {
    char *eml = cx_test_smtp_read(&E.sink, k, "eml");
    if (strstr(eml, "7 alerts in a minute (7 distinct)") != NULL)
      digests++;
    cx_free(eml);
  }
  ASSERT_EQ(digests, 1);
  /* Every alert is in the log as sent (each row is written once its
   * message's reply is in: wait, bounded); 7 of them by the digest. */
  size_t i, sent = 0, in_digest = 0;
  for (int k = 0; k < 300 && sent < 12; k++) {
    json_t *d = api("/notify/log", "{\"page_size\":50}");
    json_t *row;
    ASSERT_EQ(json_integer_value(json_object_get(d, "total")), 12);
    sent = in_digest = 0;
    json_array_foreach(json_object_get(d, "list"), i, row)
    {
      sent += strcmp(json_string_value(json_object_get(row, "result")),
                     "sent") == 0;
      in_digest += strncmp(json_string_value(json_object_get(row, "answer")),
                           "digest of 7: ", 13) == 0;
    }
    json_decref(d);
    if (sent < 12)
      cx_sleep_us(100000);
  }
  ASSERT_EQ(sent, 12);
  ASSERT_EQ(in_digest, 7);
  teardown();
}

/* Adds a job on this node that only runs when triggered (/job/once),
 * alerting ops by email on the events in `events`; extra JSON members
 * (may be ""). */
static int64_t add_manual_job(const char *name, const char *command,
                              const char *events, const char *extra)
{
  char body[1024];
  snprintf(body, sizeof body,
           "{\"name\":\"%s\",\"command\":\"%s\",\"type\":1,"
           "\"spec\":\"0 0 0 1 1 *\",\"allocation\":1,\"run_on\":\"%s\","
           "\"notify_status\":1,\"notify_type\":1,\"notify_to_array\":[%lld],"
           "\"notify_events\":\"%s\"%s}",
           name, command, cx_noded_uuid(E.node), (long long)E.ops_id, events,
           extra);
  json_t *d = api("/job/add", body);
  int64_t id = json_integer_value(json_object_get(d, "id"));
  json_decref(d);
  return id;
}

TEST_TIMEOUT(notify_e2e_events_chosen_per_job_success_and_not_failure, 90)
{
  setup();
  int64_t ok = add_manual_job("every-success", "true", "success", "");
  int64_t bad = add_manual_job("failures-muted", "exit 1", "success", "");
  char *st = run_once(bad, 1);
  ASSERT_STREQ(st, "failed");
  cx_free(st);
  st = run_once(ok, 1);
  ASSERT_STREQ(st, "success");
  cx_free(st);
  ASSERT_EQ(cx_test_smtp_wait(&E.sink, 1, 15000), 1);
  cx_sleep_us(3000000);
  ASSERT_EQ(cx_test_smtp_count(&E.sink), 1); /* not the muted failure */
  char *eml = cx_test_smtp_read(&E.sink, 1, "eml");
  ASSERT_CONTAINS(eml, "Subject: [cronix] job \"every-success\" succeeded");
  cx_free(eml);
  teardown();
}

TEST_TIMEOUT(notify_e2e_a_run_past_max_duration_alerts_once_while_running, 90)
{
  char body[64];
  setup();
  int64_t id = add_manual_job("slowpoke", "sleep 8", "max_duration",
                              ",\"max_duration\":1");
  snprintf(body, sizeof body, "{\"job_id\":%lld}", (long long)id);
  json_decref(api("/job/once", body));
  /* The alert comes while the run goes on (it takes 8 s). */
  ASSERT_EQ(cx_test_smtp_wait(&E.sink, 1, 20000), 1);
  char *eml = cx_test_smtp_read(&E.sink, 1, "eml");
  ASSERT_CONTAINS(eml, "has run longer than its max_duration");
  cx_free(eml);
  char *st = run_once_wait(id, 1);
  ASSERT_STREQ(st, "success");
  cx_free(st);
  cx_sleep_us(2000000);
  ASSERT_EQ(cx_test_smtp_count(&E.sink), 1); /* once, not every 5 s */
  teardown();
}

/* The burst: 500 jobs fail in the same moment (their final
 * records written to the store as a node writes them). The channel sends
 * 5 messages, and when its minute ends the other 495 go out as one
 * digest that counts them; every alert keeps its row. */
TEST_TIMEOUT(notify_e2e_500_failing_jobs_make_five_messages_and_a_digest, 240)
{
  char err[CX_ERR_LEN] = "", name[32], to[32], spec[64];
  setup();
  snprintf(to, sizeof to, "[%lld]", (long long)E.ops_id);
  cx_test_spec_days_ahead(300, spec, sizeof spec);
  int64_t now = cx_wall_ms();
  for (int i = 0; i < 500; i++) {
    struct cx_job j;
    struct cx_run r;
    int64_t run = 0;
    cx_job_init(&j);
    snprintf(name, sizeof name, "db-%03d", i);
    j.name = name;
    j.command = (char *)"exit 1";
    j.type = CX_JOB_CMD;
    j.spec = spec;
    j.timezone = (char *)"UTC";
    j.allocation = CX_ALLOC_MANUAL;
    j.run_on = (char *)cx_noded_uuid(E.node);
    j.notify_status = 1;
    j.notify_type = 1;
    j.notify_to_array = to;
    j.enabled = 0;
    ASSERT_MSG(cx_store_job_create(E.store, &j, err) == 0, "%s", err);
    memset(&r, 0, sizeof r);
    r.job_id = j.id;
    r.name = name;
    r.node_uuid = (char *)cx_noded_uuid(E.node);
    r.hostname = (char *)"host-a";
    r.ip = (char *)"127.0.0.1";
    r.command = (char *)"exit 1";
    r.spec = spec;
    r.trigger = (char *)"once";
    r.start_time = now;
    ASSERT_MSG(cx_store_run_claim(E.store, &r, &run, err) == 0, "%s", err);
    r.id = run;
    r.status = (char *)"failed";
    r.exit_code = 1;
    r.end_time = now + 10;
    r.attempts = 1;
    ASSERT_MSG(cx_store_run_finish(E.store, &r, err) == 0, "%s", err);
  }
  ASSERT_EQ(cx_test_smtp_wait(&E.sink, 6, 180000), 6);
  cx_sleep_us(3000000);
  ASSERT_EQ(cx_test_smtp_count(&E.sink), 6);
  int digests = 0;
  for (int k = 1; k <= 6; k++) {
    char *eml = cx_test_smtp_read(&E.sink, k, "eml");
    digests += strstr(eml, "495 alerts in a minute (495 distinct)") != NULL;
    cx_free(eml);
  }
  ASSERT_EQ(digests, 1);
  json_t *d = api("/notify/log", "{\"page_size\":1}");
  ASSERT_EQ(json_integer_value(json_object_get(d, "total")), 500);
  json_decref(d);
  teardown();
}
