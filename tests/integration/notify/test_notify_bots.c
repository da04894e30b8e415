/* notify, the robots of issue 14 (DingTalk, WeCom, Slack, generic
 * webhook), each against a real HTTP server on loopback (libmicrohttpd in
 * the test, standing in for the service): the exact request its service
 * documents (method, path, query, headers, JSON shape, signature, mentions,
 * size limits), and what each of its error replies means (transient:
 * retried later; permanent: given up). */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify.h"
#include "support/http_sink.h"
#include "support/test.h"

static struct cx_test_sink S;

static void sink_start(void)
{
  cx_test_sink_start(&S);
}

static void sink_stop(void)
{
  cx_test_sink_stop(&S);
}

static void script(size_t i, unsigned status, const char *reply)
{
  cx_test_sink_script(&S, i, status, reply);
}

/* A failed run with the given job name and output. */
static struct cx_notify_run run_of(const char *job, const char *output)
{
  struct cx_notify_run r = {.job_name = job,
                            .job_id = 7,
                            .run_id = 42,
                            .node_uuid = "node-a",
                            .node_host = "host-a",
                            .scheduled = 1700000000,
                            .trigger = "cron",
                            .attempts = 3,
                            .status = "failed",
                            .has_exit_code = 1,
                            .exit_code = 3,
                            .duration_ms = 1500,
                            .output = output,
                            .output_len = output ? strlen(output) : 0};
  return r;
}

static struct cx_notify *make(struct cx_notify_conf *c)
{
  struct cx_notify *n = NULL;
  char err[CX_ERR_LEN] = "";
  c->feishu.timeout_ms = 5000;
  c->retries = 0;
  ASSERT_MSG(cx_notify_create(c, &n, err) == 0, "%s", err);
  return n;
}

static int send_run(struct cx_notify *n, int type, const char *const *to,
                    size_t nto, const char *job, char *err)
{
  struct cx_notify_run r = run_of(job, "line 1\nline 2\n");
  char ans[CX_NOTIFY_ANSWER_LEN];
  return cx_notify_send_run(n, type, to, nto, &r, ans, sizeof ans, err);
}

static json_t *body_of(size_t i)
{
  json_t *j = json_loads(S.r[i].body, 0, NULL);
  ASSERT_MSG(j != NULL, "request %zu: body is not JSON: %s", i, S.r[i].body);
  return j;
}

static const char *jstr(const json_t *o, const char *path1, const char *path2)
{
  const json_t *v = json_object_get(o, path1);
  if (path2 != NULL)
    v = json_object_get(v, path2);
  return json_string_value(v) ? json_string_value(v) : "";
}

static char *arg(size_t i, const char *k, char *out, size_t cap)
{
  return cx_test_sink_arg(&S, i, k, out, cap);
}

TEST_TIMEOUT(notify_bots_dingtalk_signed_text_with_at_and_its_errcodes, 60)
{
  char url[160], err[CX_ERR_LEN] = "", ts[32], sign[128];
  sink_start();
  snprintf(url, sizeof url,
           "http://127.0.0.1:%d/robot/send?access_token=TOKEN1", S.port);
  struct cx_notify_conf c = {0};
  c.dingtalk.webhook_url = url;
  c.dingtalk.secret = "SECtest+secret/=";
  struct cx_notify *n = make(&c);
  const char *to[] = {"mobile:13800000000", "id:manager7", "bad id"};
  script(1, 200, "{\"errcode\":130101,\"errmsg\":\"send too fast\"}");
  script(2, 200, "{\"errcode\":310000,\"errmsg\":\"sign not match\"}");
  int64_t before = cx_wall_ms();
  ASSERT_MSG(send_run(n, CX_NOTIFY_DINGTALK, to, 3, "db-backup", err) == 0,
             "%s", err);
  ASSERT_EQ(send_run(n, CX_NOTIFY_DINGTALK, to, 2, "db-backup", err),
            CX_EUNAVAIL); /* rate limited: try again later */
  ASSERT_CONTAINS(err, "130101");
  ASSERT_EQ(send_run(n, CX_NOTIFY_DINGTALK, to, 2, "db-backup", err), CX_EAUTH);
  ASSERT_CONTAINS(err, "310000");
  ASSERT_EQ(S.n, 3);
  ASSERT_STREQ(S.r[0].method, "POST");
  ASSERT_STREQ(S.r[0].path, "/robot/send");
  ASSERT_STREQ(arg(0, "access_token", sign, sizeof sign), "TOKEN1");
  /* timestamp in ms; sign = base64(HMAC-SHA256(secret, ts "\n" secret)),
   * sent urlencoded (the server decoded it for us) */
  arg(0, "timestamp", ts, sizeof ts);
  int64_t t = strtoll(ts, NULL, 10);
  ASSERT_OP(t, >=, before);
  ASSERT_OP(t, <=, cx_wall_ms());
  char msg[128];
  unsigned char md[32], b64[64];
  unsigned mdlen = 0;
  int ml = snprintf(msg, sizeof msg, "%s\n%s", ts, c.dingtalk.secret);
  HMAC(EVP_sha256(), c.dingtalk.secret, (int)strlen(c.dingtalk.secret),
       (unsigned char *)msg, (size_t)ml, md, &mdlen);
  EVP_EncodeBlock(b64, md, 32);
  ASSERT_STREQ(arg(0, "sign", sign, sizeof sign), (char *)b64);
  ASSERT_CONTAINS(S.r[0].headers, "Content-Type: application/json");
  json_t *b = body_of(0);
  ASSERT_STREQ(jstr(b, "msgtype", NULL), "text");
  const char *content = jstr(b, "text", "content");
  ASSERT_CONTAINS(content, "db-backup");
  ASSERT_CONTAINS(content, "@13800000000");
  ASSERT_CONTAINS(content, "@manager7");
  json_t *at = json_object_get(b, "at");
  ASSERT_STREQ(
      json_string_value(json_array_get(json_object_get(at, "atMobiles"), 0)),
      "13800000000");
  ASSERT_EQ(json_array_size(json_object_get(at, "atUserIds")), 1);
  ASSERT_STREQ(
      json_string_value(json_array_get(json_object_get(at, "atUserIds"), 0)),
      "manager7");
  ASSERT(json_is_false(json_object_get(at, "isAtAll")));
  json_decref(b);
  cx_notify_destroy(n, 0);
  sink_stop();
}

TEST_TIMEOUT(notify_bots_wecom_text_mentions_cut_to_2048_bytes_and_45009, 60)
{
  char url[160], err[CX_ERR_LEN] = "", key[64];
  sink_start();
  snprintf(url, sizeof url,
           "http://127.0.0.1:%d/cgi-bin/webhook/send?key=KEY-1", S.port);
  struct cx_notify_conf c = {0};
  c.wecom.webhook_url = url;
  struct cx_notify *n = make(&c);
  const char *to[] = {"id:wangqing", "mobile:13800001111"};
  /* 100 KB of output of 3-byte characters: the content must be cut to
   * WeCom's 2048 bytes on a character boundary. */
  struct cx_buf big = {0};
  for (int i = 0; i < 30000; i++)
    cx_buf_puts(&big, "错");
  struct cx_notify_run r = run_of("etl", big.data);
  char ans[CX_NOTIFY_ANSWER_LEN];
  script(1, 200, "{\"errcode\":45009,\"errmsg\":\"api freq out of limit\"}");
  script(2, 200, "{\"errcode\":93000,\"errmsg\":\"invalid webhook url\"}");
  ASSERT_MSG(cx_notify_send_run(n, CX_NOTIFY_WECOM, to, 2, &r, ans, sizeof ans,
                                err) == 0,
             "%s", err);
  ASSERT_EQ(send_run(n, CX_NOTIFY_WECOM, to, 2, "etl", err), CX_EUNAVAIL);
  ASSERT_CONTAINS(err, "45009");
  ASSERT_EQ(send_run(n, CX_NOTIFY_WECOM, to, 2, "etl", err), CX_EAUTH);
  ASSERT_STREQ(S.r[0].method, "POST");
  ASSERT_STREQ(S.r[0].path, "/cgi-bin/webhook/send");
  ASSERT_STREQ(arg(0, "key", key, sizeof key), "KEY-1");
  json_t *b = body_of(0);
  ASSERT_STREQ(jstr(b, "msgtype", NULL), "text");
  const char *content = jstr(b, "text", "content");
  ASSERT_CONTAINS(content, "etl");
  ASSERT_OP(strlen(content), <=, 2048);
  ASSERT_OP(strlen(content), >, 2000);
  ASSERT(json_is_string(json_object_get(json_object_get(b, "text"),
                                        "content"))); /* valid UTF-8 */
  json_t *t = json_object_get(b, "text");
  ASSERT_STREQ(json_string_value(
                   json_array_get(json_object_get(t, "mentioned_list"), 0)),
               "wangqing");
  ASSERT_STREQ(json_string_value(json_array_get(
                   json_object_get(t, "mentioned_mobile_list"), 0)),
               "13800001111");
  json_decref(b);
  cx_buf_free(&big);
  cx_notify_destroy(n, 0);
  sink_stop();
}

TEST_TIMEOUT(notify_bots_slack_text_escaped_mentions_errors_and_pace, 60)
{
  char url[160], err[CX_ERR_LEN] = "";
  sink_start();
  snprintf(url, sizeof url, "http://127.0.0.1:%d/services/T1/B2/XYZ", S.port);
  struct cx_notify_conf c = {0};
  c.slack.webhook_url = url;
  struct cx_notify *n = make(&c);
  const char *to[] = {"U123ABC"};
  script(0, 200, "ok");
  script(1, 404, "channel_not_found");
  script(2, 429, "rate_limited");
  ASSERT_MSG(send_run(n, CX_NOTIFY_SLACK, to, 1, "<!channel> & <b>", err) == 0,
             "%s", err);
  ASSERT_EQ(send_run(n, CX_NOTIFY_SLACK, to, 1, "x", err), CX_EPROTO);
  ASSERT_CONTAINS(err, "channel_not_found");
  ASSERT_EQ(send_run(n, CX_NOTIFY_SLACK, to, 1, "x", err), CX_EUNAVAIL);
  ASSERT_EQ(S.n, 3);
  ASSERT_STREQ(S.r[0].path, "/services/T1/B2/XYZ");
  json_t *b = body_of(0);
  const char *text = jstr(b, "text", NULL);
  ASSERT_CONTAINS(text, "<@U123ABC>");
  ASSERT_CONTAINS(text, "&lt;!channel&gt; &amp; &lt;b&gt;");
  ASSERT(strstr(text, "<!channel>") == NULL); /* no mention from a job */
  json_decref(b);
  /* About one message a second: the sends were paced. */
  ASSERT_OP(S.r[1].at - S.r[0].at, >=, 1000000);
  ASSERT_OP(S.r[2].at - S.r[1].at, >=, 1000000);
  cx_notify_destroy(n, 0);
  sink_stop();
}

/* Characters (code points) of UTF-8 text s: Slack's limits count them. */
static size_t chars(const char *s)
{
  size_t k = 0;
  for (; s && *s; s++)
    k += ((unsigned char)*s & 0xC0) != 0x80;
  return k;
}

/* The Block Kit limits Slack documents (docs.slack.dev/reference/block-kit):
 * at most 50 blocks; a header's plain_text at most 150 characters; a
 * section's text at most 3000, its fields at most 10 of at most 2000
 * each; a context's elements at most 10. Fails the test otherwise. */
static void check_block_kit(const json_t *blocks)
{
  size_t i, k;
  json_t *b, *f;
  ASSERT(json_is_array(blocks));
  ASSERT_OP(json_array_size(blocks), >=, 1);
  ASSERT_OP(json_array_size(blocks), <=, 50);
  json_array_foreach(blocks, i, b)
  {
    const char *type = jstr(b, "type", NULL);
    json_t *text = json_object_get(b, "text");
    if (strcmp(type, "header") == 0) {
      ASSERT_STREQ(jstr(text, "type", NULL), "plain_text");
      ASSERT_OP(chars(jstr(text, "text", NULL)), <=, 150);
    } else if (strcmp(type, "section") == 0) {
      json_t *fields = json_object_get(b, "fields");
      ASSERT(text != NULL || fields != NULL);
      if (text != NULL) {
        ASSERT_STREQ(jstr(text, "type", NULL), "mrkdwn");
        ASSERT_OP(chars(jstr(text, "text", NULL)), <=, 3000);
      }
      ASSERT_OP(json_array_size(fields), <=, 10);
      json_array_foreach(fields, k, f)
      {
        ASSERT_STREQ(jstr(f, "type", NULL), "mrkdwn");
        ASSERT_OP(chars(jstr(f, "text", NULL)), <=, 2000);
      }
    } else if (strcmp(type, "context") == 0) {
      json_t *el = json_object_get(b, "elements");
      ASSERT_OP(json_array_size(el), >=, 1);
      ASSERT_OP(json_array_size(el), <=, 10);
    } else {
      ASSERT_MSG(0, "block %zu: unexpected type \"%s\"", i, type);
    }
  }
}

/* Every mrkdwn text of the blocks, one per line. */
static void blocks_text(const json_t *blocks, struct cx_buf *out)
{
  size_t i, k;
  json_t *b, *f;
  json_array_foreach(blocks, i, b)
  {
    if (strcmp(jstr(b, "type", NULL), "header") == 0)
      continue; /* plain_text: Slack parses no markup there */
    cx_buf_printf(out, "%s\n", jstr(b, "text", "text"));
    json_array_foreach(json_object_get(b, "fields"), k, f)
        cx_buf_printf(out, "%s\n", jstr(f, "text", NULL));
    json_array_foreach(json_object_get(b, "elements"), k, f)
        cx_buf_printf(out, "%s\n", jstr(f, "text", NULL));
  }
}

TEST_TIMEOUT(notify_bots_slack_block_kit_shape_mentions_and_fallback, 60)
{
  char url[160], err[CX_ERR_LEN] = "", ans[CX_NOTIFY_ANSWER_LEN];
  struct cx_buf out = {0}, all = {0};
  sink_start();
  snprintf(url, sizeof url, "http://127.0.0.1:%d/services/T1/B2/XYZ", S.port);
  struct cx_notify_conf c = {0};
  c.slack.webhook_url = url;
  c.public_url = "https://cron.example.org";
  c.output_max = 16384;
  struct cx_notify *n = make(&c);
  /* A long name (the header's limit), output full of markup and longer
   * than a section may hold, two mentions. */
  for (int i = 0; i < 1200; i++)
    cx_buf_puts(&out, "<!here> & <https://evil.example|click> é\n");
  cx_buf_puts(&out, "LAST-LINE\n");
  struct cx_buf name = {0};
  for (int i = 0; i < 40; i++)
    cx_buf_puts(&name, "nightly-<!channel>-");
  struct cx_notify_run r = run_of(name.data, out.data);
  const char *to[] = {"U123ABC", "W0PQR"};
  script(0, 200, "ok");
  ASSERT_MSG(cx_notify_send_run(n, CX_NOTIFY_SLACK, to, 2, &r, ans, sizeof ans,
                                err) == 0,
             "%s", err);
  ASSERT_EQ(S.n, 1);
  ASSERT_STREQ(S.r[0].method, "POST");
  json_t *b = body_of(0);
  json_t *blocks = json_object_get(b, "blocks");
  check_block_kit(blocks);
  ASSERT_STREQ(jstr(json_array_get(blocks, 0), "type", NULL), "header");
  ASSERT_CONTAINS(jstr(json_array_get(blocks, 0), "text", "text"), "nightly-");
  blocks_text(blocks, &all);
  cx_buf_puts(&all, "");
  /* the facts, the mentions, the output's end and the run link */
  ASSERT_CONTAINS(all.data, "*Exit code*\n3");
  ASSERT_CONTAINS(all.data, "<@U123ABC> <@W0PQR>");
  ASSERT_CONTAINS(all.data, "LAST-LINE");
  ASSERT_CONTAINS(all.data, "```");
  ASSERT_CONTAINS(all.data, "https://cron.example.org/runs/42");
  ASSERT_CONTAINS(all.data, "&lt;!here&gt; &amp; &lt;https://evil.example");
  /* no markup of the job's reaches Slack unescaped */
  ASSERT(strstr(all.data, "<!here>") == NULL);
  ASSERT(strstr(all.data, "<!channel>") == NULL);
  ASSERT(strstr(all.data, "<https://evil") == NULL);
  /* the fallback text: everything, mentions first, escaped */
  const char *text = jstr(b, "text", NULL);
  ASSERT(strncmp(text, "<@U123ABC> <@W0PQR> ", 20) == 0);
  ASSERT(strstr(text, "<!here>") == NULL && strstr(text, "<!channel>") == NULL);
  json_decref(b);
  cx_buf_free(&all);
  cx_buf_free(&out);
  cx_buf_free(&name);
  cx_notify_destroy(n, 0);
  sink_stop();
}

TEST_TIMEOUT(notify_bots_webhook_json_signed_with_extra_headers, 60)
{
  char url[160], err[CX_ERR_LEN] = "";
  sink_start();
  snprintf(url, sizeof url, "http://127.0.0.1:%d/cronix/alerts", S.port);
  struct cx_notify_conf c = {0};
  const char *hdrs[] = {"X-Env: prod", "Authorization: Bearer abc"};
  c.webhook.url = url;
  c.webhook.secret = "whsec";
  c.webhook.headers = hdrs;
  c.webhook.n_headers = 2;
  struct cx_notify *n = make(&c);
  const char *to[] = {"ops"};
  script(0, 204, "");
  script(1, 503, "busy");
  script(2, 400, "bad");
  ASSERT_MSG(send_run(n, CX_NOTIFY_WEBHOOK, to, 1, "nightly", err) == 0, "%s",
             err);
  ASSERT_EQ(send_run(n, CX_NOTIFY_WEBHOOK, NULL, 0, "nightly", err),
            CX_EUNAVAIL);
  ASSERT_EQ(send_run(n, CX_NOTIFY_WEBHOOK, NULL, 0, "nightly", err), CX_EPROTO);
  ASSERT_STREQ(S.r[0].method, "POST");
  ASSERT_STREQ(S.r[0].path, "/cronix/alerts");
  ASSERT_CONTAINS(S.r[0].headers, "X-Env: prod\n");
  ASSERT_CONTAINS(S.r[0].headers, "Authorization: Bearer abc\n");
  ASSERT_CONTAINS(S.r[0].headers, "Content-Type: application/json");
  unsigned char md[32];
  unsigned mdlen = 0;
  char want[100];
  HMAC(EVP_sha256(), "whsec", 5, (unsigned char *)S.r[0].body,
       strlen(S.r[0].body), md, &mdlen);
  int len = snprintf(want, sizeof want, "X-Cronix-Signature: sha256=");
  for (int i = 0; i < 32; i++)
    len += snprintf(want + len, sizeof want - (size_t)len, "%02x", md[i]);
  ASSERT_CONTAINS(S.r[0].headers, want);
  json_t *b = body_of(0);
  ASSERT_EQ(json_integer_value(json_object_get(b, "version")), 1);
  ASSERT_STREQ(jstr(b, "kind", NULL), "run");
  ASSERT_CONTAINS(jstr(b, "subject", NULL), "nightly");
  ASSERT_STREQ(
      json_string_value(json_array_get(json_object_get(b, "recipients"), 0)),
      "ops");
  ASSERT_STREQ(jstr(b, "output", NULL), "line 1\nline 2\n");
  json_t *f0 = json_array_get(json_object_get(b, "facts"), 0);
  ASSERT(json_is_string(json_object_get(f0, "label")) &&
         json_is_string(json_object_get(f0, "value")));
  json_decref(b);
  /* Without recipients the group still gets it (no "to" needed). */
  ASSERT_EQ(S.n, 3);
  cx_notify_destroy(n, 0);
  sink_stop();
}

TEST_TIMEOUT(notify_bots_settings_refused_name_the_setting, 30)
{
  struct {
    struct cx_notify_conf c;
    const char *want;
  } bad[4];
  const char *nl[] = {"X-A: b\r\nX-Evil: 1"}, *ct[] = {"Content-Type: x"};
  char err[CX_ERR_LEN];
  struct cx_notify *n = NULL;
  memset(bad, 0, sizeof bad);
  bad[0].c.dingtalk.webhook_url = "ftp://x";
  bad[0].want = "dingtalk.webhook_url";
  bad[1].c.webhook.url = "http://x";
  bad[1].c.webhook.headers = nl;
  bad[1].c.webhook.n_headers = 1;
  bad[1].want = "webhook.headers";
  bad[2].c.webhook.url = "http://x";
  bad[2].c.webhook.headers = ct;
  bad[2].c.webhook.n_headers = 1;
  bad[2].want = "set by Cronix";
  bad[3].c.slack.webhook_url = "hooks.slack.com";
  bad[3].want = "slack.webhook_url";
  for (size_t i = 0; i < 4; i++) {
    err[0] = '\0';
    ASSERT_EQ(cx_notify_create(&bad[i].c, &n, err), CX_EPARSE);
    ASSERT_CONTAINS(err, bad[i].want);
  }
}

TEST_TIMEOUT(notify_bots_language_zh_cn_translates_subject_and_labels, 30)
{
  char url[160], err[CX_ERR_LEN] = "";
  sink_start();
  snprintf(url, sizeof url, "http://127.0.0.1:%d/services/T/B/Z", S.port);
  struct cx_notify_conf c = {0};
  c.slack.webhook_url = url;
  c.language = "zh-CN";
  struct cx_notify *n = make(&c);
  script(0, 200, "ok");
  ASSERT_MSG(send_run(n, CX_NOTIFY_SLACK, NULL, 0, "nightly", err) == 0, "%s",
             err);
  json_t *b = body_of(0);
  const char *text = jstr(b, "text", NULL);
  ASSERT_CONTAINS(text, "[cronix] 任务「nightly」失败（host-a）");
  ASSERT_CONTAINS(text, "退出码: 3");
  ASSERT_CONTAINS(text, "尝试次数: 3");
  ASSERT_CONTAINS(text, "输出:\nline 1");
  json_decref(b);
  cx_notify_destroy(n, 0);
  sink_stop();
  struct cx_notify_conf bad = {0};
  bad.language = "fr";
  ASSERT_EQ(cx_notify_create(&bad, &n, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "notify.language");
}
