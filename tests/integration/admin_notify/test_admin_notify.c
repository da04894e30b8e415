/*
 * POST /notify/test against a real SMTP server (aiosmtpd on loopback):
 * the admin resolves user ids to addresses, the message arrives, the
 * server's answer comes back; and every refusal says why.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "config/config.h"
#include "coord/coord.h"
#include "notify/notify.h"
#include "store/store.h"
#include "support/smtp_sink.h"
#include "support/test.h"

struct env {
  struct cx_config cfg;
  struct cx_store *store;
  struct cx_coord *coord;
  struct cx_admin *admin;
  char base[64];
  char admin_tok[CX_STORE_TOKEN_LEN], viewer_tok[CX_STORE_TOKEN_LEN];
  int64_t ops_id, nomail_id;
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

/* smtp_url NULL: the admin has no notifier. */
static void setup(const char *smtp_url)
{
  char err[CX_ERR_LEN] = "", url[512];
  memset(&E, 0, sizeof E);
  snprintf(url, sizeof url, "sqlite://%s/cronix.db", cx_test_tmpdir());
  ASSERT_EQ(cx_config_init(&E.cfg), 0);
  ASSERT_EQ(cx_config_set(&E.cfg, "server.data_dir", cx_test_tmpdir(), err), 0);
  ASSERT_MSG(cx_store_open(url, &E.store, err) == 0, "%s", err);
  struct cx_coord_cfg cc = {.endpoints = ""};
  ASSERT_MSG(cx_coord_open(&cc, &E.coord, err) == 0, "%s", err);
  if (smtp_url != NULL) { /* the first default of the store's settings */
    ASSERT_EQ(cx_config_set(&E.cfg, "notify.email.smtp_url", smtp_url, err), 0);
    ASSERT_EQ(cx_config_set(&E.cfg, "notify.email.from",
                            "Cronix <cron@cronix.test>", err),
              0);
    ASSERT_EQ(cx_config_set(&E.cfg, "notify.email.starttls", "off", err), 0);
  }
  ASSERT_MSG(cx_config_finish(&E.cfg, err) == 0, "%s", err);
  struct cx_admin_opts o = {.cfg = &E.cfg,
                            .store = E.store,
                            .coord = E.coord,
                            .listen = "127.0.0.1:0"};
  ASSERT_MSG(cx_admin_create(&o, &E.admin, err) == 0, "%s", err);
  ASSERT_MSG(cx_admin_start(E.admin, err) == 0, "%s", err);
  snprintf(E.base, sizeof E.base, "http://127.0.0.1:%u",
           cx_admin_port(E.admin));
  mk_user("root", "admin", "root@cronix.test", E.admin_tok);
  mk_user("watcher", "viewer", "", E.viewer_tok);
  E.ops_id = mk_user("ops", "operator", "ops@cronix.test", NULL);
  E.nomail_id = mk_user("nomail", "operator", "", NULL);
}

static void teardown(void)
{
  cx_admin_destroy(E.admin);
  cx_coord_close(E.coord);
  cx_store_close(E.store);
  cx_config_free(&E.cfg);
}

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
  cx_buf_append(ctx, p, size * n);
  return size * n;
}

/* Calls path (GET when body is NULL, else POST body); asserts the status
 * and code (unless want_code < 0); returns the reply (json_decref it). */
static json_t *call(const char *path, const char *token, const char *body,
                    long want_status, int want_code)
{
  char url[128], auth[128];
  struct cx_buf b = {0};
  struct curl_slist *h = NULL;
  long status = 0;
  CURL *c = curl_easy_init();
  snprintf(url, sizeof url, "%s%s", E.base, path);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
  h = curl_slist_append(h, auth);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (body != NULL)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  ASSERT_EQ(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  cx_buf_puts(&b, "");
  json_t *j = json_loads(b.data, 0, NULL);
  ASSERT_MSG(j != NULL, "not JSON: %s", b.data);
  ASSERT_MSG(want_code < 0 ||
                 (status == want_status &&
                  json_integer_value(json_object_get(j, "code")) == want_code),
             "want %ld/%d, got %ld: %s", want_status, want_code, status,
             b.data);
  cx_buf_free(&b);
  return j;
}

/* GET /metrics as the admin (a text reply; cx_buf_free it). */
static void metrics(struct cx_buf *b)
{
  char url[128], auth[128];
  struct curl_slist *h = NULL;
  CURL *c = curl_easy_init();
  snprintf(url, sizeof url, "%s/metrics", E.base);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", E.admin_tok);
  h = curl_slist_append(h, auth);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  ASSERT_EQ(curl_easy_perform(c), CURLE_OK);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  cx_buf_puts(b, "");
}

/* POSTs body to /notify/test (see call). */
static json_t *post(const char *token, const char *body, long want_status,
                    int want_code)
{
  return call("/notify/test", token, body, want_status, want_code);
}

TEST_TIMEOUT(admin_notify_test_email_arrives_with_the_servers_answer, 60)
{
  struct cx_test_smtp sink;
  char body[256];
  cx_test_smtp_start(&sink, NULL);
  setup(sink.url);
  /* ops has an address, nomail has none, 999 does not exist. */
  snprintf(body, sizeof body,
           "{\"notify_type\":1,\"notify_to_array\":[%lld,%lld,999]}",
           (long long)E.ops_id, (long long)E.nomail_id);
  json_t *j = post(E.admin_tok, body, 200, 0);
  json_t *d = json_object_get(j, "data");
  ASSERT_CONTAINS(json_string_value(json_object_get(d, "answer")), "250");
  ASSERT_EQ(json_integer_value(json_object_get(d, "sent_to")), 1);
  ASSERT_EQ(json_array_size(json_object_get(d, "skipped")), 2);
  json_decref(j);
  ASSERT_EQ(cx_test_smtp_wait(&sink, 1, 10000), 1);
  char *env = cx_test_smtp_read(&sink, 1, "env");
  ASSERT_CONTAINS(env, "ops@cronix.test");
  ASSERT(strstr(env, "root@cronix.test") == NULL);
  cx_free(env);
  /* The test went through the counted path: /metrics shows it. */
  struct cx_buf m = {0};
  metrics(&m);
  ASSERT_CONTAINS(
      m.data,
      "cronix_notify_tests_total{channel=\"email\",result=\"sent\"} 1\n");
  ASSERT_CONTAINS(
      m.data,
      "cronix_notify_tests_total{channel=\"email\",result=\"failed\"} 0\n");
  cx_buf_free(&m);
  teardown();
  cx_test_smtp_stop(&sink);
}

TEST_TIMEOUT(admin_notify_test_refusals_name_their_reason, 60)
{
  struct cx_test_smtp sink;
  char body[256];
  cx_test_smtp_start(&sink, NULL);
  setup(sink.url);
  snprintf(body, sizeof body, "{\"notify_type\":1,\"notify_to_array\":[%lld]}",
           (long long)E.ops_id);
  json_decref(post(E.viewer_tok, body, 403, 1102));
  json_decref(post("not-a-token", body, 401, 1101));
  json_decref(post(E.admin_tok, "{\"notify_to_array\":[1]}", 400, 1001));
  json_decref(post(E.admin_tok, "{\"notify_type\":3,\"notify_to_array\":[1]}",
                   400, 1001));
  json_decref(post(E.admin_tok, "{\"notify_type\":1,\"notify_to_array\":[]}",
                   400, 1001));
  json_decref(post(E.admin_tok,
                   "{\"notify_type\":1,\"notify_to_array\":[\"x\"]}", 400,
                   1001));
  json_decref(post(E.admin_tok,
                   "{\"notify_type\":1,\"notify_to_array\":[1],\"x\":1}", 400,
                   1001));
  /* Only users without an address: nothing to send to. */
  snprintf(body, sizeof body, "{\"notify_type\":1,\"notify_to_array\":[%lld]}",
           (long long)E.nomail_id);
  json_t *j = post(E.admin_tok, body, 400, 1001);
  ASSERT_CONTAINS(json_string_value(json_object_get(j, "msg")), "email");
  json_decref(j);
  /* Feishu is not configured on this admin. */
  snprintf(body, sizeof body, "{\"notify_type\":2,\"notify_to_array\":[%lld]}",
           (long long)E.ops_id);
  json_decref(post(E.admin_tok, body, 400, 1001));
  ASSERT_EQ(cx_test_smtp_count(&sink), 0);
  /* The mail server down: 503 with the reason, nothing hangs. */
  cx_test_smtp_stop(&sink);
  snprintf(body, sizeof body, "{\"notify_type\":1,\"notify_to_array\":[%lld]}",
           (long long)E.ops_id);
  json_decref(post(E.admin_tok, body, 503, 1302));
  struct cx_buf m = {0};
  metrics(&m);
  ASSERT_CONTAINS(
      m.data,
      "cronix_notify_tests_total{channel=\"email\",result=\"failed\"} 1\n");
  cx_buf_free(&m);
  teardown();
}

TEST_TIMEOUT(admin_notify_test_without_a_channel_says_what_to_configure, 30)
{
  setup(NULL);
  json_t *j = post(E.admin_tok, "{\"notify_type\":1,\"notify_to_array\":[1]}",
                   400, 1001);
  ASSERT_CONTAINS(json_string_value(json_object_get(j, "msg")),
                  "notify.email.smtp_url");
  json_decref(j);
  teardown();
}

/* data.<ch>.<name> of a /notify/settings reply, as a string ("" if not). */
static const char *setting(const json_t *reply, const char *ch,
                           const char *name)
{
  const char *v = json_string_value(json_object_get(
      json_object_get(json_object_get(reply, "data"), ch), name));
  return v ? v : "";
}

TEST_TIMEOUT(admin_notify_settings_seeded_from_config_secrets_write_only, 30)
{
  char err[CX_ERR_LEN] = "", *stored = NULL;
  /* The config's values are the first default. */
  setup("smtp://127.0.0.1:9/helo.test");
  json_t *j = call("/notify/settings", E.admin_tok, NULL, 200, 0);
  ASSERT_STREQ(setting(j, "email", "smtp_url"), "smtp://127.0.0.1:9/helo.test");
  ASSERT_STREQ(setting(j, "email", "from"), "Cronix <cron@cronix.test>");
  ASSERT_STREQ(setting(j, "email", "starttls"), "off");
  ASSERT_STREQ(setting(j, "email", "password"), "unset");
  ASSERT_STREQ(setting(j, "feishu", "webhook_url"), "");
  ASSERT_STREQ(setting(j, "feishu", "secret"), "unset");
  ASSERT_STREQ(json_string_value(
                   json_object_get(json_object_get(j, "data"), "language")),
               "en");
  json_decref(j);
  j = call("/notify/settings", E.admin_tok, "{\"language\":\"zh-CN\"}", 200, 0);
  ASSERT_STREQ(json_string_value(
                   json_object_get(json_object_get(j, "data"), "language")),
               "zh-CN");
  json_decref(j);
  /* A partial body changes only what it names; secrets read set/unset. */
  j = call("/notify/settings", E.admin_tok,
           "{\"email\":{\"password\":\"hunter2-secret\"},\"feishu\":"
           "{\"webhook_url\":\"http://127.0.0.1:9/hook\",\"secret\":\"s3\"}}",
           200, 0);
  ASSERT_STREQ(setting(j, "email", "password"), "set");
  ASSERT_STREQ(setting(j, "feishu", "secret"), "set");
  ASSERT_STREQ(setting(j, "email", "smtp_url"), "smtp://127.0.0.1:9/helo.test");
  json_decref(j);
  j = call("/notify/settings", E.admin_tok, NULL, 200, 0);
  char *text = json_dumps(j, 0);
  ASSERT(strstr(text, "hunter2") == NULL && strstr(text, "s3\"") == NULL);
  free(text);
  ASSERT_STREQ(setting(j, "feishu", "webhook_url"), "http://127.0.0.1:9/hook");
  ASSERT_STREQ(setting(j, "email", "from"), "Cronix <cron@cronix.test>");
  json_decref(j);
  ASSERT_EQ(cx_store_setting_get(E.store, "notify", &stored, err), 0);
  ASSERT_CONTAINS(stored, "hunter2-secret");
  cx_free(stored);
  /* "" (or null) unsets. */
  j = call("/notify/settings", E.admin_tok,
           "{\"email\":{\"password\":\"\"},\"feishu\":{\"secret\":null}}", 200,
           0);
  ASSERT_STREQ(setting(j, "email", "password"), "unset");
  ASSERT_STREQ(setting(j, "feishu", "secret"), "unset");
  json_decref(j);
  /* Admins only. */
  json_decref(call("/notify/settings", E.viewer_tok, NULL, 403, 1102));
  json_decref(call("/notify/settings", E.viewer_tok, "{}", 403, 1102));
  teardown();
}

/* A change of the settings leaves one audit row (a refused one none), and
 * the row holds no secret: not the password, the signing secret, the
 * webhook's token nor the password in the SMTP URL. */
TEST_TIMEOUT(admin_notify_settings_change_is_audited_without_secrets, 30)
{
  char err[CX_ERR_LEN] = "";
  struct cx_audit_filter f = {.kind = "notify.settings"};
  struct cx_audit_list l;
  setup("smtp://127.0.0.1:9/helo.test");
  json_decref(call("/notify/settings", E.admin_tok,
                   "{\"email\":{\"smtp_url\":\"smtp://mailer:pw-in-url@"
                   "127.0.0.1:9/helo.test\",\"password\":\"hunter2-secret\"},"
                   "\"feishu\":{\"webhook_url\":\"http://127.0.0.1:9/hook/"
                   "tok-abc\",\"secret\":\"s3cr3t\"},\"language\":\"zh-CN\"}",
                   200, 0));
  json_decref(call("/notify/settings", E.admin_tok, "{\"language\":\"fr\"}",
                   400, 1001));
  ASSERT_MSG(cx_store_audit_search(E.store, &f, &l, err) == 0, "%s", err);
  ASSERT_EQ(l.total, 1);
  ASSERT_STREQ(l.items[0].username, "root");
  ASSERT_CONTAINS(l.items[0].before, "\"en\"");
  ASSERT_CONTAINS(l.items[0].after, "\"zh-CN\"");
  ASSERT_CONTAINS(l.items[0].after, "127.0.0.1:9/helo.test");
  static const char *const secrets[] = {"pw-in-url", "hunter2", "tok-abc",
                                        "s3cr3t"};
  for (size_t i = 0; i < CX_ARRAY_LEN(secrets); i++)
    ASSERT_MSG(strstr(l.items[0].before, secrets[i]) == NULL &&
                   strstr(l.items[0].after, secrets[i]) == NULL,
               "%s in the audit row: %s", secrets[i], l.items[0].after);
  cx_audit_list_free(&l);
  teardown();
}

TEST_TIMEOUT(admin_notify_settings_refusals_name_the_field, 30)
{
  static const struct {
    const char *body, *field;
  } bad[] = {
      {"{\"sms\":{}}", "sms"},
      {"{\"email\":1}", "email"},
      {"{\"email\":{\"smtp\":\"x\"}}", "email.smtp"},
      {"{\"email\":{\"tls_verify\":\"yes\"}}", "email.tls_verify"},
      {"{\"email\":{\"starttls\":\"maybe\"}}", "email.starttls"},
      {"{\"email\":{\"smtp_url\":\"ftp://x\"}}", "email.smtp_url"},
      {"{\"email\":{\"from\":\"\"}}", "email.from"}, /* url needs it */
      {"{\"feishu\":{\"webhook_url\":\"gopher://x\"}}", "feishu.webhook_url"},
      {"{\"email\":{\"username\":5}}", "email.username"},
      {"{\"language\":\"fr\"}", "language"},
      {"{\"webhook\":{\"headers\":{\"X-A\":\"b\\r\\nX: y\"},"
       "\"url\":\"http://x\"}}",
       "webhook.headers"},
  };
  setup("smtp://127.0.0.1:9/helo.test");
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    json_t *j = call("/notify/settings", E.admin_tok, bad[i].body, 400, 1001);
    ASSERT_MSG(json_is_string(json_object_get(j, "field")) &&
                   strcmp(json_string_value(json_object_get(j, "field")),
                          bad[i].field) == 0,
               "%s: field %s, want %s", bad[i].body,
               json_string_value(json_object_get(j, "field")), bad[i].field);
    json_decref(j);
  }
  /* Nothing of a refused body was kept. */
  json_t *j = call("/notify/settings", E.admin_tok, NULL, 200, 0);
  ASSERT_STREQ(setting(j, "email", "smtp_url"), "smtp://127.0.0.1:9/helo.test");
  ASSERT_STREQ(setting(j, "email", "from"), "Cronix <cron@cronix.test>");
  json_decref(j);
  teardown();
}

TEST_TIMEOUT(admin_notify_test_uses_the_settings_posted_to_the_api, 60)
{
  struct cx_test_smtp sink;
  char body[512];
  cx_test_smtp_start(&sink, NULL);
  setup(NULL); /* nothing in the config */
  snprintf(body, sizeof body,
           "{\"email\":{\"smtp_url\":\"%s\",\"from\":\"cron@cronix.test\","
           "\"starttls\":\"off\"}}",
           sink.url);
  json_decref(call("/notify/settings", E.admin_tok, body, 200, 0));
  snprintf(body, sizeof body, "{\"notify_type\":1,\"notify_to_array\":[%lld]}",
           (long long)E.ops_id);
  json_decref(post(E.admin_tok, body, 200, 0));
  ASSERT_EQ(cx_test_smtp_wait(&sink, 1, 10000), 1);
  /* The test is in the alert log like any alert. */
  json_t *j = call("/notify/log", E.admin_tok, "{}", 200, 0);
  json_t *row =
      json_array_get(json_object_get(json_object_get(j, "data"), "list"), 0);
  ASSERT_STREQ(json_string_value(json_object_get(row, "event")), "test");
  ASSERT_STREQ(json_string_value(json_object_get(row, "result")), "sent");
  ASSERT_STREQ(json_string_value(json_object_get(row, "channel_name")),
               "email");
  ASSERT_STREQ(
      json_string_value(json_array_get(json_object_get(row, "recipients"), 0)),
      "ops@cronix.test");
  json_decref(j);
  json_decref(call("/notify/log", E.viewer_tok, "{}", 403, 1102));
  teardown();
  cx_test_smtp_stop(&sink);
}

/* /job/add with the given alert fields for a job on node n1. */
static json_t *add_job(const char *name, int status, int type, const char *to,
                       long want_status, int want_code)
{
  char body[512];
  snprintf(body, sizeof body,
           "{\"name\":\"%s\",\"type\":1,\"command\":\"exit 1\","
           "\"spec\":\"0 3 * * *\",\"allocation\":1,\"run_on\":\"n1\","
           "\"notify_status\":%d,\"notify_type\":%d,\"notify_to_array\":%s}",
           name, status, type, to);
  return call("/job/add", E.admin_tok, body, want_status, want_code);
}

static const char *field_of(const json_t *reply)
{
  const char *f = json_string_value(json_object_get(reply, "field"));
  return f ? f : "";
}

TEST_TIMEOUT(admin_notify_job_add_refuses_alerts_that_would_go_nowhere, 60)
{
  char err[CX_ERR_LEN] = "", key[300], to[128];
  setup("smtp://127.0.0.1:9/helo.test"); /* email configured, Feishu not */
  size_t kl =
      (size_t)snprintf(key, sizeof key, "%s/node/n1", E.cfg.etcd_prefix);
  ASSERT_MSG(cx_coord_put(E.coord, key, kl, "{}", 2, 0, NULL, err) == 0, "%s",
             err);
  for (int i = 0; i < 100; i++) { /* the admin's watch sees the node */
    json_t *j = add_job("probe", 2, 0, "[]", 0, -1);
    int ok = json_integer_value(json_object_get(j, "code")) == 0;
    json_decref(j);
    if (ok)
      break;
    cx_sleep_us(50000);
  }
  /* Ids that are no user: refused, naming them, whatever notify_status. */
  snprintf(to, sizeof to, "[%lld,99999,88888]", (long long)E.ops_id);
  json_t *j = add_job("a", 1, 1, to, 400, 1001);
  ASSERT_STREQ(field_of(j), "notify_to_array");
  ASSERT_CONTAINS(json_string_value(json_object_get(j, "msg")), "99999, 88888");
  json_decref(j);
  j = add_job("b", 2, 0, "[77777]", 400, 1001);
  ASSERT_STREQ(field_of(j), "notify_to_array");
  json_decref(j);
  /* A channel that is not configured, when alerting: refused. */
  snprintf(to, sizeof to, "[%lld]", (long long)E.ops_id);
  j = add_job("c", 1, 2, to, 400, 1001);
  ASSERT_STREQ(field_of(j), "notify_type");
  json_decref(j);
  /* ... and accepted once it is configured. */
  json_decref(call("/notify/settings", E.admin_tok,
                   "{\"feishu\":{\"webhook_url\":\"http://127.0.0.1:9/h\"}}",
                   200, 0));
  j = add_job("c", 1, 2, to, 200, 0);
  json_t *data = json_object_get(j, "data");
  ASSERT_CONTAINS(
      json_string_value(json_array_get(json_object_get(data, "warnings"), 0)),
      "has no feishu_id");
  int64_t id = json_integer_value(json_object_get(data, "id"));
  json_decref(j);
  /* A recipient without the address: accepted with a warning naming them;
   * one with it: no warnings member at all. */
  snprintf(to, sizeof to, "[%lld,%lld]", (long long)E.ops_id,
           (long long)E.nomail_id);
  j = add_job("d", 1, 1, to, 200, 0);
  data = json_object_get(j, "data");
  ASSERT_EQ(json_array_size(json_object_get(data, "warnings")), 1);
  ASSERT_CONTAINS(
      json_string_value(json_array_get(json_object_get(data, "warnings"), 0)),
      "(nomail) has no email");
  json_decref(j);
  snprintf(to, sizeof to, "[%lld]", (long long)E.ops_id);
  j = add_job("e", 1, 1, to, 200, 0);
  ASSERT(json_object_get(json_object_get(j, "data"), "warnings") == NULL);
  json_decref(j);
  /* An update is checked the same way. */
  char body[128];
  snprintf(body, sizeof body, "{\"id\":%lld,\"notify_to_array\":[66666]}",
           (long long)id);
  j = call("/job/add", E.admin_tok, body, 400, 1001);
  ASSERT_STREQ(field_of(j), "notify_to_array");
  json_decref(j);
  teardown();
}

TEST_TIMEOUT(admin_notify_users_carry_the_ids_the_robots_mention, 30)
{
  char body[256];
  setup(NULL);
  json_t *j = call("/user/add", E.admin_tok,
                   "{\"username\":\"bot-fan\",\"password\":\"a-long-password\","
                   "\"role\":\"viewer\",\"mobile\":\"+86-13800000000\","
                   "\"wecom_id\":\"zhang.san\"}",
                   200, 0);
  json_t *d = json_object_get(j, "data");
  int64_t id = json_integer_value(json_object_get(d, "id"));
  ASSERT_STREQ(json_string_value(json_object_get(d, "mobile")),
               "+86-13800000000");
  ASSERT_STREQ(json_string_value(json_object_get(d, "wecom_id")), "zhang.san");
  ASSERT_STREQ(json_string_value(json_object_get(d, "slack_id")), "");
  json_decref(j);
  snprintf(body, sizeof body, "{\"id\":%lld,\"slack_id\":\"U0123ABCD\"}",
           (long long)id);
  j = call("/user/update", E.admin_tok, body, 200, 0);
  d = json_object_get(j, "data");
  ASSERT_STREQ(json_string_value(json_object_get(d, "slack_id")), "U0123ABCD");
  ASSERT_STREQ(json_string_value(json_object_get(d, "wecom_id")), "zhang.san");
  json_decref(j);
  static const char *const bad[][2] = {
      {"mobile", "call me"}, {"slack_id", "<@U1>"}, {"dingtalk_id", "a b"}};
  for (size_t i = 0; i < 3; i++) {
    snprintf(body, sizeof body, "{\"id\":%lld,\"%s\":\"%s\"}", (long long)id,
             bad[i][0], bad[i][1]);
    j = call("/user/update", E.admin_tok, body, 400, 1001);
    ASSERT_STREQ(field_of(j), bad[i][0]);
    json_decref(j);
  }
  teardown();
}
