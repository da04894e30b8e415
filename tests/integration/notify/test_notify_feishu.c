/* notify, Feishu channel, against a real HTTP server on loopback
 * (libmicrohttpd in the test, standing in for the webhook): the body as
 * received is valid JSON for hostile input and fits 20 KB, mentions and
 * the signature verify, reply codes and 429 are handled, the rate limit
 * holds on arrival times, a full queue drops its oldest message, and
 * shutdown drains. */
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify.h"
#include "support/services.h"
#include "support/test.h"

#define MAX_REQ 64

struct reply {
  unsigned status;
  const char *body;
};

struct hook {
  struct MHD_Daemon *d;
  int port;
  char url[64];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int gate_closed; /* requests wait while set */
  const struct reply *script;
  size_t n_script;
  size_t n;                 /* requests completed */
  size_t started;           /* requests whose handler ran */
  char *bodies[MAX_REQ];    /* as received */
  cx_mono arrived[MAX_REQ]; /* first call of the handler */
};

struct conn {
  struct cx_buf body;
  cx_mono t;
};

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *data,
                               size_t *data_size, void **con_cls)
{
  struct hook *h = cls;
  struct conn *k = *con_cls;
  struct reply r = {200, "{\"code\":0,\"msg\":\"success\",\"data\":{}}"};
  (void)url, (void)method, (void)version;

  if (k == NULL) {
    k = calloc(1, sizeof *k);
    k->t = cx_mono_now();
    *con_cls = k;
    pthread_mutex_lock(&h->mu);
    h->started++;
    pthread_mutex_unlock(&h->mu);
    return MHD_YES;
  }
  if (*data_size > 0) {
    cx_buf_append(&k->body, data, *data_size);
    *data_size = 0;
    return MHD_YES;
  }
  pthread_mutex_lock(&h->mu);
  while (h->gate_closed)
    pthread_cond_wait(&h->cv, &h->mu);
  if (h->n < MAX_REQ) {
    if (h->n < h->n_script)
      r = h->script[h->n];
    h->bodies[h->n] = strdup(k->body.data ? k->body.data : "");
    h->arrived[h->n] = k->t;
    h->n++;
  }
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      strlen(r.body), (void *)r.body, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(c, r.status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void done_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
  struct conn *k = *con_cls;
  (void)cls, (void)c, (void)toe;
  if (k) {
    cx_buf_free(&k->body);
    free(k);
  }
  *con_cls = NULL;
}

static void hook_start(struct hook *h, const struct reply *script, size_t n)
{
  char err[CX_ERR_LEN];
  memset(h, 0, sizeof *h);
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  h->script = script;
  h->n_script = n;
  ASSERT_MSG(cx_svc_port_alloc(&h->port, err) == 0, "%s", err);
  h->d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
      (uint16_t)h->port, NULL, NULL, handler, h, MHD_OPTION_NOTIFY_COMPLETED,
      done_cb, h, MHD_OPTION_END);
  ASSERT(h->d != NULL);
  snprintf(h->url, sizeof h->url,
           "http://127.0.0.1:%d/open-apis/bot/v2/"
           "hook/T",
           h->port);
}

static void gate(struct hook *h, int closed)
{
  pthread_mutex_lock(&h->mu);
  h->gate_closed = closed;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

/* Waits (bounded) until the server has completed `want` requests. */
static size_t hook_wait(struct hook *h, size_t want, int timeout_ms)
{
  cx_mono end = cx_mono_now() + (cx_mono)timeout_ms * 1000;
  size_t n;
  for (;;) {
    pthread_mutex_lock(&h->mu);
    n = h->n;
    pthread_mutex_unlock(&h->mu);
    if (n >= want || cx_mono_now() > end)
      return n;
    cx_sleep_us(10000);
  }
}

/* Waits (bounded) until a request has reached the handler. */
static void hook_wait_started(struct hook *h)
{
  for (int k = 0; k < 1000; k++) {
    pthread_mutex_lock(&h->mu);
    size_t started = h->started;
    pthread_mutex_unlock(&h->mu);
    if (started > 0)
      return;
    cx_sleep_us(10000);
  }
  ASSERT_MSG(0, "no request reached the server");
}

static void hook_stop(struct hook *h)
{
  gate(h, 0);
  MHD_stop_daemon(h->d);
  for (size_t i = 0; i < h->n; i++)
    free(h->bodies[i]);
}

static struct cx_notify *mk(const struct hook *h, const char *secret,
                            int queue_size, int retries)
{
  struct cx_notify_conf c = {0};
  struct cx_notify *n = NULL;
  char err[CX_ERR_LEN];
  c.feishu.webhook_url = h->url;
  c.feishu.secret = secret;
  c.feishu.timeout_ms = 10000;
  c.public_url = "https://cron.example.org";
  c.queue_size = queue_size;
  c.retries = retries;
  c.backoff_ms = 20;
  ASSERT_MSG(cx_notify_create(&c, &n, err) == 0, "%s", err);
  return n;
}

static struct cx_notify_run run_named(const char *name)
{
  struct cx_notify_run r = {0};
  r.job_name = name;
  r.job_id = 7;
  r.run_id = 99;
  r.node_uuid = "uuid-7";
  r.node_host = "node-a";
  r.scheduled = 1795000000;
  r.trigger = "schedule";
  r.attempts = 2;
  r.status = "failed";
  r.has_exit_code = 1;
  r.exit_code = 1;
  r.duration_ms = 50;
  return r;
}

static const char *const ids[] = {"ou_aaa111", "ou_bbb222"};

/* Waits until sent + failed reaches want. */
static void wait_done(struct cx_notify *n, uint64_t want)
{
  struct cx_notify_stats st;
  for (int i = 0; i < 2000; i++) {
    cx_notify_stats_get(n, &st);
    if (st.sent + st.failed >= want)
      return;
    cx_sleep_us(10000);
  }
  ASSERT_MSG(0, "only %" PRIu64 " of %" PRIu64 " messages finished",
             st.sent + st.failed, want);
}

/* The text of every text element, concatenated; counts "at" elements. */
static char *post_text(json_t *root, int *ats, const char **at_ids)
{
  struct cx_buf b = {0};
  json_t *paras = json_object_get(
      json_object_get(json_object_get(json_object_get(root, "content"), "post"),
                      "zh_cn"),
      "content");
  size_t i, j;
  json_t *p, *el;
  *ats = 0;
  json_array_foreach(paras, i, p) json_array_foreach(p, j, el)
  {
    const char *tag = json_string_value(json_object_get(el, "tag"));
    if (strcmp(tag, "at") == 0) {
      at_ids[(*ats)++] = json_string_value(json_object_get(el, "user_id"));
      continue;
    }
    cx_buf_puts(&b, json_string_value(json_object_get(el, "text")));
    cx_buf_puts(&b, "\n");
  }
  return cx_buf_steal(&b);
}

TEST(notify_feishu_hostile_job_and_1mib_output_arrive_as_valid_json)
{
  struct hook h;
  hook_start(&h, NULL, 0);
  struct cx_notify *n = mk(&h, NULL, 10, 0);
  size_t big = 1 << 20;
  char *out = malloc(big);
  for (size_t i = 0; i < big; i++)
    out[i] = (char)(i * 13 % 256); /* every byte, invalid UTF-8, NULs */
  memcpy(out + big - 10, "\"\\TAIL\x01\n", 9);
  struct cx_notify_run r = run_named("q\"uote\\back\nnew\x02line\xc3\x28");
  r.output = out;
  r.output_len = big;
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_FEISHU, ids, 2, &r), 0);
  wait_done(n, 1);
  ASSERT_EQ(hook_wait(&h, 1, 5000), 1);
  ASSERT_OP(strlen(h.bodies[0]), <=, CX_NOTIFY_FEISHU_BODY_MAX);
  json_error_t je;
  json_t *root = json_loads(h.bodies[0], 0, &je);
  ASSERT_MSG(root != NULL, "invalid JSON: %s", je.text);
  ASSERT_STREQ(json_string_value(json_object_get(root, "msg_type")), "post");
  ASSERT(json_object_get(root, "sign") == NULL); /* no secret */
  int ats;
  const char *at_ids[8];
  char *text = post_text(root, &ats, at_ids);
  ASSERT_EQ(ats, 2);
  ASSERT_STREQ(at_ids[0], "ou_aaa111");
  ASSERT_STREQ(at_ids[1], "ou_bbb222");
  ASSERT_CONTAINS(text, "Job: q\"uote\\back new line\xEF\xBF\xBD( (id 7)");
  ASSERT_CONTAINS(text, "Node: node-a (uuid-7)");
  ASSERT_CONTAINS(text, "Scheduled: 2026-11-18T11:06:40Z");
  ASSERT_CONTAINS(text, "Attempts: 2");
  ASSERT_CONTAINS(text, "Exit code: 1");
  ASSERT_CONTAINS(text, "\"\\TAIL\xEF\xBF\xBD\n");
  ASSERT_CONTAINS(text, "earlier bytes left out");
  json_t *title = json_object_get(
      json_object_get(json_object_get(json_object_get(root, "content"), "post"),
                      "zh_cn"),
      "title");
  ASSERT_CONTAINS(json_string_value(title), "[cronix] job \"q\"uote");
  free(text);
  json_decref(root);
  free(out);
  cx_notify_destroy(n, 1000);
  hook_stop(&h);
}

TEST(notify_feishu_signature_verifies_at_the_server)
{
  struct hook h;
  hook_start(&h, NULL, 0);
  struct cx_notify *n = mk(&h, "top-secret", 10, 0);
  struct cx_notify_run r = run_named("signed");
  int64_t before = cx_wall_s();
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_FEISHU, ids, 1, &r), 0);
  ASSERT_EQ(hook_wait(&h, 1, 10000), 1);
  json_t *root = json_loads(h.bodies[0], 0, NULL);
  ASSERT(root != NULL);
  const char *ts = json_string_value(json_object_get(root, "timestamp"));
  const char *sign = json_string_value(json_object_get(root, "sign"));
  ASSERT(ts != NULL && sign != NULL);
  int64_t t;
  ASSERT_EQ(cx_parse_int64(ts, 0, INT64_MAX, &t), 0);
  ASSERT(t >= before && t <= cx_wall_s());
  /* recompute independently: HMAC-SHA256(key = ts "\n" secret, "") */
  char key[128];
  unsigned char md[32], b64[64];
  unsigned mdlen = 0;
  snprintf(key, sizeof key, "%s\ntop-secret", ts);
  HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)"", 0, md,
       &mdlen);
  EVP_EncodeBlock(b64, md, (int)mdlen);
  ASSERT_STREQ(sign, (char *)b64);
  json_decref(root);
  cx_notify_destroy(n, 1000);
  hook_stop(&h);
}

TEST(notify_feishu_rate_limit_code_and_429_are_retried)
{
  static const struct reply script[] = {
      {200, "{\"code\":11232,\"msg\":\"frequency limited\"}"},
      {429, "{\"code\":11232}"},
      {503, "busy"},
  };
  struct hook h;
  hook_start(&h, script, 3);
  struct cx_notify *n = mk(&h, NULL, 10, 3);
  struct cx_notify_run r = run_named("retried");
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_FEISHU, ids, 2, &r), 0);
  wait_done(n, 1);
  struct cx_notify_stats st;
  cx_notify_stats_get(n, &st);
  ASSERT_EQ(st.sent, 1);
  ASSERT_EQ(st.retried, 3);
  ASSERT_EQ(st.failed, 0);
  ASSERT_EQ(h.n, 4);
  cx_notify_destroy(n, 1000);
  hook_stop(&h);
}

TEST(notify_feishu_sign_failure_is_permanent)
{
  static const struct reply script[] = {
      {200, "{\"code\":19021,\"msg\":\"sign match fail or timestamp is not "
            "within one hour from current time\"}"},
  };
  struct hook h;
  hook_start(&h, script, 1);
  struct cx_notify *n = mk(&h, "wrong", 10, 3);
  struct cx_notify_run r = run_named("badsign");
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_FEISHU, ids, 1, &r), 0);
  wait_done(n, 1);
  struct cx_notify_stats st;
  cx_notify_stats_get(n, &st);
  ASSERT_EQ(st.failed, 1);
  ASSERT_EQ(st.retried, 0);
  ASSERT_EQ(st.sent, 0);
  ASSERT_EQ(h.n, 1);
  /* the synchronous test send reports the code and the server's answer */
  char answer[CX_NOTIFY_ANSWER_LEN], err[CX_ERR_LEN];
  ASSERT_EQ(cx_notify_send_test(n, CX_NOTIFY_FEISHU, ids, 1, answer,
                                sizeof answer, err),
            0); /* the script is used up: the default reply is code 0 */
  ASSERT_CONTAINS(answer, "\"code\":0");
  cx_notify_destroy(n, 1000);
  hook_stop(&h);
}

TEST(notify_feishu_send_test_reports_refusal)
{
  static const struct reply script[] = {
      {200, "{\"code\":19024,\"msg\":\"Key Words Not Found\"}"},
      {404, "not here"},
  };
  struct hook h;
  hook_start(&h, script, 2);
  struct cx_notify *n = mk(&h, NULL, 10, 3);
  char answer[CX_NOTIFY_ANSWER_LEN], err[CX_ERR_LEN];
  ASSERT_EQ(cx_notify_send_test(n, CX_NOTIFY_FEISHU, ids, 1, answer,
                                sizeof answer, err),
            CX_EPROTO);
  ASSERT_CONTAINS(err, "19024");
  ASSERT_CONTAINS(answer, "Key Words Not Found");
  ASSERT_EQ(cx_notify_send_test(n, CX_NOTIFY_FEISHU, ids, 1, answer,
                                sizeof answer, err),
            CX_EPROTO);
  ASSERT_CONTAINS(err, "HTTP 404");
  ASSERT_EQ(h.n, 2);
  cx_notify_destroy(n, 1000);
  hook_stop(&h);
}

TEST_TIMEOUT(notify_feishu_never_more_than_5_in_any_second, 60)
{
  struct hook h;
  hook_start(&h, NULL, 0);
  struct cx_notify_conf c = {0};
  struct cx_notify *n = NULL;
  c.feishu.webhook_url = h.url;
  c.workers = 2;
  ASSERT_EQ(cx_notify_create(&c, &n, NULL), 0);
  struct cx_notify_run r = run_named("burst");
  for (int i = 0; i < 12; i++)
    ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_FEISHU, ids, 1, &r), 0);
  wait_done(n, 12);
  ASSERT_EQ(hook_wait(&h, 12, 5000), 12);
  /* arrival times, sorted (two workers may overtake each other) */
  cx_mono t[12];
  memcpy(t, h.arrived, sizeof t);
  for (int i = 1; i < 12; i++)
    for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
      cx_mono x = t[j];
      t[j] = t[j - 1];
      t[j - 1] = x;
    }
  for (int i = 0; i + 5 < 12; i++)
    ASSERT_MSG(t[i + 5] - t[i] >= 1000000,
               "requests %d and %d arrived %" PRId64 " us apart", i, i + 5,
               (int64_t)(t[i + 5] - t[i]));
  cx_notify_destroy(n, 1000);
  hook_stop(&h);
}

TEST(notify_feishu_full_queue_drops_the_oldest)
{
  struct hook h;
  hook_start(&h, NULL, 0);
  gate(&h, 1); /* hold the first request in flight */
  struct cx_notify *n = mk(&h, NULL, 3, 0);
  char names[10][16];
  for (int i = 0; i < 10; i++) {
    snprintf(names[i], sizeof names[i], "job-%d", i);
    struct cx_notify_run r = run_named(names[i]);
    ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_FEISHU, ids, 1, &r), 0);
    if (i == 0) /* wait until job-0 is at the server */
      hook_wait_started(&h);
  }
  struct cx_notify_stats st;
  cx_notify_stats_get(n, &st);
  ASSERT_EQ(st.queued, 10);
  ASSERT_EQ(st.dropped, 7);
  ASSERT_EQ(st.pending, 3);
  gate(&h, 0);
  wait_done(n, 3);
  ASSERT_EQ(hook_wait(&h, 3, 5000), 3);
  cx_sleep_us(200000);
  ASSERT_EQ(h.n, 3);
  ASSERT_CONTAINS(h.bodies[0], "job-0");
  ASSERT_CONTAINS(h.bodies[1], "job-8");
  ASSERT_CONTAINS(h.bodies[2], "job-9");
  cx_notify_destroy(n, 1000);
  hook_stop(&h);
}

TEST(notify_feishu_shutdown_drains_the_queue)
{
  struct hook h;
  hook_start(&h, NULL, 0);
  struct cx_notify *n = mk(&h, NULL, 10, 0);
  struct cx_notify_run r = run_named("drain");
  for (int i = 0; i < 4; i++)
    ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_FEISHU, ids, 1, &r), 0);
  cx_notify_destroy(n, 10000);
  ASSERT_EQ(h.n, 4);
  hook_stop(&h);
}

TEST(notify_feishu_no_recipient_sends_nothing)
{
  struct hook h;
  hook_start(&h, NULL, 0);
  struct cx_notify *n = mk(&h, NULL, 10, 0);
  struct cx_notify_run r = run_named("nobody");
  const char *const bad[] = {"<at user_id=\"all\">", ""};
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_FEISHU, NULL, 0, &r), 0);
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_FEISHU, bad, 2, &r), 0);
  ASSERT_EQ(cx_notify_run_failed(n, 3, ids, 2, &r), 0);
  cx_notify_destroy(n, 1000);
  ASSERT_EQ(h.n, 0);
  hook_stop(&h);
}

TEST(notify_feishu_shutdown_deadline_aborts_a_stuck_send)
{
  struct hook h;
  hook_start(&h, NULL, 0);
  gate(&h, 1); /* the server never answers while closed */
  struct cx_notify *n = mk(&h, NULL, 10, 3); /* attempt timeout 10 s */
  struct cx_notify_run r = run_named("stuck");
  for (int i = 0; i < 3; i++)
    ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_FEISHU, ids, 1, &r), 0);
  hook_wait_started(&h);
  cx_mono t0 = cx_mono_now();
  cx_notify_destroy(n, 300);
  /* the transfer is aborted (curl's progress callback runs at least once a
   * second), not waited out for its 10 s timeout */
  ASSERT_OP(cx_mono_now() - t0, <, 8000000);
  ASSERT_EQ(h.n, 0);
  hook_stop(&h);
}
