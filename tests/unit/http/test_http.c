/* http: the server over real loopback HTTP (libcurl as the client), and the
 * same pipeline in memory through cx_http_dispatch. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "http/http.h"
#include "support/rawhttp.h"
#include "support/test.h"
#include "util/util.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* ---- test routes -------------------------------------------------------- */

/* GET /echo: data = {method, path, remote, auth, query: [[name, value]..]} */
static void h_echo(struct cx_http_req *req, void *ctx)
{
  json_t *q = json_array();
  (void)ctx;
  for (size_t i = 0; i < cx_http_req_query_count(req); i++) {
    const char *n, *v;
    cx_http_req_query_at(req, i, &n, &v);
    json_array_append_new(q, json_pack("[ss]", n, v));
  }
  const char *first = cx_http_req_query(req, "id");
  const char *auth = cx_http_req_header(req, "authorization");
  cx_http_reply_ok(req, json_pack("{s:s, s:s, s:s, s:o, s:s?, s:s?}", "method",
                                  cx_http_req_method(req), "path",
                                  cx_http_req_path(req), "remote",
                                  cx_http_req_remote(req), "query", q,
                                  "first_id", first, "auth", auth));
}

/* POST /json (F_JSON): data = the parsed body */
static void h_json(struct cx_http_req *req, void *ctx)
{
  (void)ctx;
  cx_http_reply_ok(req, json_incref(cx_http_req_json(req)));
}

/* POST /raw (F_BODY): data = {len, sum of bytes} */
static void h_raw(struct cx_http_req *req, void *ctx)
{
  size_t len;
  const char *b = cx_http_req_body(req, &len);
  json_int_t sum = 0;
  (void)ctx;
  for (size_t i = 0; i < len; i++)
    sum += (unsigned char)b[i];
  cx_http_reply_ok(req,
                   json_pack("{s:I, s:I}", "len", (json_int_t)len, "sum", sum));
}

/* POST /nobody (no body flag): data = body length the handler sees */
static void h_nobody(struct cx_http_req *req, void *ctx)
{
  size_t len;
  (void)ctx;
  cx_http_req_body(req, &len);
  cx_http_reply_ok(req, json_pack("{s:I}", "len", (json_int_t)len));
}

static void h_err(struct cx_http_req *req, void *ctx)
{
  (void)ctx;
  cx_http_reply_error(req, CX_HTTP_BAD_SPEC, "spec",
                      "minute: step 0 must be >= 1");
}

static void h_ok_x(struct cx_http_req *req, void *ctx)
{
  (void)ctx;
  cx_http_reply_ok(req, json_pack("{s:i}", "x", 1));
}

static void h_metrics(struct cx_http_req *req, void *ctx)
{
  static const char text[] = "# TYPE t counter\nt 1\n";
  (void)ctx;
  cx_http_reply_raw(req, 200, CX_HTTP_CT_PROMETHEUS, text, sizeof text - 1);
}

static void h_silent(struct cx_http_req *req, void *ctx)
{
  (void)req;
  (void)ctx;
}

static void h_badutf8(struct cx_http_req *req, void *ctx)
{
  (void)ctx;
  cx_http_reply_error(req, CX_HTTP_CONFLICT, "na\xffme", "name '%s' taken",
                      "bad\xff\xfe");
}

/* GET /inject: tries header injection; data = the return codes */
static void h_inject(struct cx_http_req *req, void *ctx)
{
  (void)ctx;
  int a = cx_http_reply_header(req, "X-Evil", "a\r\nSet-Cookie: x=1");
  int b = cx_http_reply_header(req, "X-Ok", "fine");
  int c = cx_http_reply_header(req, "Bad Name", "v");
  cx_http_reply_ok(
      req, json_pack("{s:i, s:i, s:i}", "crlf", a, "ok", b, "space", c));
}

static void h_multi(struct cx_http_req *req, void *ctx)
{
  (void)ctx;
  cx_http_reply_ok(req, NULL);
}

/* GET /meet: waits (10 s at most) until a second request is inside this
 * handler at the same time; data = {"met": bool}. */
static pthread_mutex_t meet_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t meet_cv = PTHREAD_COND_INITIALIZER;
static int meet_n;

static void h_meet(struct cx_http_req *req, void *ctx)
{
  struct timespec until;
  (void)ctx;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  pthread_mutex_lock(&meet_mu);
  meet_n++;
  pthread_cond_broadcast(&meet_cv);
  while (meet_n < 2 && pthread_cond_timedwait(&meet_cv, &meet_mu, &until) == 0)
    ;
  int met = meet_n >= 2;
  pthread_mutex_unlock(&meet_mu);
  cx_http_reply_ok(req, json_pack("{s:b}", "met", met));
}

static struct cx_http *new_server_opts(struct cx_http_opts *o);

static struct cx_http *new_server(const char *listen, unsigned timeout_s)
{
  struct cx_http_opts o = {0};
  o.listen = listen;
  o.timeout_s = timeout_s;
  return new_server_opts(&o);
}

static struct cx_http *new_server_opts(struct cx_http_opts *o)
{
  struct cx_http *h = NULL;
  char err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_http_create(o, &h, err) == 0, "create: %s", err);
  ASSERT_EQ(cx_http_route(h, "GET", "/echo", 0, h_echo, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "POST", "/json", CX_HTTP_F_JSON, h_json, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "POST", "/raw", CX_HTTP_F_BODY, h_raw, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "POST", "/nobody", 0, h_nobody, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "GET", "/err", 0, h_err, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "GET", "/okx", 0, h_ok_x, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "GET", "/metrics", 0, h_metrics, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "GET", "/silent", 0, h_silent, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "GET", "/badutf8", 0, h_badutf8, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "GET", "/inject", 0, h_inject, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "PUT", "/multi", 0, h_multi, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "DELETE", "/multi", 0, h_multi, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "GET", "/meet", 0, h_meet, NULL), 0);
  return h;
}

static struct cx_http *start_server(unsigned timeout_s)
{
  struct cx_http *h = new_server("127.0.0.1:0", timeout_s);
  char err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_http_start(h, err) == 0, "start: %s", err);
  ASSERT(cx_http_port(h) > 0);
  return h;
}

/* ---- a libcurl client --------------------------------------------------- */

struct resp {
  long status;
  struct cx_buf body;
  struct cx_buf headers;
  CURLcode rc;
  json_t *json; /* parsed body, if JSON */
};

static size_t on_write(char *p, size_t sz, size_t n, void *ud)
{
  cx_buf_append(ud, p, sz * n);
  return sz * n;
}

/* A request body produced in chunks without a Content-Length. */
struct chunked_src {
  size_t left;
};

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
  struct chunked_src *s = ud;
  size_t k = sz * n < s->left ? sz * n : s->left;
  memset(buf, 'a', k);
  s->left -= k;
  return k;
}

static void curl_init_once(void)
{
  curl_global_init(CURL_GLOBAL_ALL);
}

static CURL *new_easy(const char *url)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, curl_init_once);
  CURL *c = curl_easy_init();
  ASSERT(c != NULL);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  return c;
}

/* Runs c (and frees it and hl) into *r: status, headers, body, JSON. */
static void perform(CURL *c, struct curl_slist *hl, struct resp *r)
{
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
  if (hl != NULL)
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  r->rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_cleanup(c);
  curl_slist_free_all(hl);
  if (r->body.data)
    r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

static void request(unsigned port, const char *method, const char *target,
                    const void *body, long blen, const char *header,
                    struct resp *r)
{
  char url[8192];
  struct curl_slist *hl = NULL;
  memset(r, 0, sizeof *r);
  snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, target);
  CURL *c = new_easy(url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body != NULL) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, blen);
  }
  hl = curl_slist_append(hl, "Expect:"); /* send bodies at once */
  if (header)
    hl = curl_slist_append(hl, header);
  perform(c, hl, r);
}

static void resp_free(struct resp *r)
{
  cx_buf_free(&r->body);
  cx_buf_free(&r->headers);
  json_decref(r->json);
}

static json_int_t jcode(const struct resp *r)
{
  return json_integer_value(json_object_get(r->json, "code"));
}

static const char *jmsg(const struct resp *r)
{
  return json_string_value(json_object_get(r->json, "msg"));
}

static json_t *jdata(const struct resp *r)
{
  return json_object_get(r->json, "data");
}

/* ---- routing ------------------------------------------------------------ */

TEST(http_known_route_answers_200_envelope)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  request(cx_http_port(h), "GET", "/echo", NULL, 0, NULL, &r);
  ASSERT_EQ(r.rc, CURLE_OK);
  ASSERT_EQ(r.status, 200);
  ASSERT(r.json != NULL);
  ASSERT_EQ(jcode(&r), 0);
  ASSERT_STREQ(jmsg(&r), "ok");
  ASSERT_STREQ(json_string_value(json_object_get(jdata(&r), "path")), "/echo");
  ASSERT_STREQ(json_string_value(json_object_get(jdata(&r), "method")), "GET");
  ASSERT_STREQ(json_string_value(json_object_get(jdata(&r), "remote")),
               "127.0.0.1");
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_unknown_route_404_code_1204)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  request(cx_http_port(h), "GET", "/job/nope?x=1", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 404);
  ASSERT_EQ(jcode(&r), 1204);
  ASSERT_CONTAINS(jmsg(&r), "/job/nope");
  ASSERT(json_object_get(r.json, "data") == NULL);
  resp_free(&r);
  /* A prefix or a trailing slash is not a match. */
  request(cx_http_port(h), "GET", "/echo/", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 404);
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_wrong_method_405_with_allow_header)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  request(cx_http_port(h), "GET", "/json", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 405);
  ASSERT_EQ(jcode(&r), 1205);
  ASSERT_CONTAINS(r.headers.data, "Allow: POST\r\n");
  resp_free(&r);
  request(cx_http_port(h), "POST", "/multi", "", 0, NULL, &r);
  ASSERT_EQ(r.status, 405);
  ASSERT_CONTAINS(r.headers.data, "Allow: PUT, DELETE\r\n");
  resp_free(&r);
  request(cx_http_port(h), "DELETE", "/multi", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 200);
  resp_free(&r);
  cx_http_destroy(h);
}

/* An answer decided before the body (here 404 and 405) still reaches a
 * client that is busy sending one: the body is read and dropped first. */
TEST(http_early_answer_reaches_client_sending_a_body)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  size_t n = CX_HTTP_MAX_DRAIN; /* the client is still writing */
  char *body = malloc(n);
  ASSERT(body != NULL);
  memset(body, 'd', n);
  for (int i = 0; i < 5; i++) {
    request(cx_http_port(h), "POST", "/nowhere", body, (long)n, NULL, &r);
    ASSERT_MSG(r.status == 404, "status %ld curl %d", r.status, (int)r.rc);
    ASSERT_EQ(jcode(&r), 1204);
    resp_free(&r);
    request(cx_http_port(h), "PUT", "/json", body, (long)n, NULL, &r);
    ASSERT_MSG(r.status == 405, "status %ld curl %d", r.status, (int)r.rc);
    resp_free(&r);
  }
  free(body);
  cx_http_destroy(h);
}

TEST(http_route_registration_rules)
{
  struct cx_http *h = new_server("127.0.0.1:0", 0);
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_http_route(h, "GET", "/echo", 0, h_echo, NULL), CX_EPARSE);
  ASSERT_EQ(cx_http_route(h, "GET", "echo", 0, h_echo, NULL), CX_EPARSE);
  ASSERT_EQ(cx_http_route(h, "GET", "/a?b", 0, h_echo, NULL), CX_EPARSE);
  ASSERT_EQ(cx_http_route(h, "", "/a", 0, h_echo, NULL), CX_EPARSE);
  ASSERT_EQ(cx_http_route(h, "GET", "/a\n", 0, h_echo, NULL), CX_EPARSE);
  ASSERT_EQ(cx_http_route(h, "GET", "/a", 0, NULL, NULL), CX_EPARSE);
  ASSERT_EQ(cx_http_start(h, err), 0);
  ASSERT_EQ(cx_http_route(h, "GET", "/late", 0, h_echo, NULL), -EBUSY);
  cx_http_destroy(h);
}

/* ---- query strings ------------------------------------------------------ */

TEST(http_query_percent_and_plus_decoding)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  request(cx_http_port(h), "GET",
          "/echo?name=a%20b+c&zh=%E4%B8%AD&flag&empty=&amp=%26%3D", NULL, 0,
          NULL, &r);
  ASSERT_EQ(r.status, 200);
  json_t *q = json_object_get(jdata(&r), "query");
  ASSERT_EQ(json_array_size(q), 5);
  ASSERT_STREQ(json_string_value(json_array_get(json_array_get(q, 0), 1)),
               "a b c");
  ASSERT_STREQ(json_string_value(json_array_get(json_array_get(q, 1), 1)),
               "\xe4\xb8\xad");
  ASSERT_STREQ(json_string_value(json_array_get(json_array_get(q, 2), 0)),
               "flag");
  ASSERT_STREQ(json_string_value(json_array_get(json_array_get(q, 2), 1)), "");
  ASSERT_STREQ(json_string_value(json_array_get(json_array_get(q, 3), 1)), "");
  ASSERT_STREQ(json_string_value(json_array_get(json_array_get(q, 4), 1)),
               "&=");
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_query_repeated_keys_kept_in_order)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  request(cx_http_port(h), "GET", "/echo?id=7&x=1&id=9", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 200);
  json_t *q = json_object_get(jdata(&r), "query");
  ASSERT_EQ(json_array_size(q), 3);
  ASSERT_STREQ(json_string_value(json_array_get(json_array_get(q, 2), 1)), "9");
  ASSERT_STREQ(json_string_value(json_object_get(jdata(&r), "first_id")), "7");
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_query_too_long_or_too_many_400)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  static char target[CX_HTTP_MAX_QUERY + 64];
  int n = snprintf(target, sizeof target, "/echo?a=");
  memset(target + n, 'x', CX_HTTP_MAX_QUERY);
  target[n + CX_HTTP_MAX_QUERY - 1] = '\0'; /* query = MAX - 1 + "a=" */
  request(cx_http_port(h), "GET", target, NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 400);
  ASSERT_EQ(jcode(&r), 1001);
  ASSERT_CONTAINS(jmsg(&r), "query string too long");
  resp_free(&r);

  /* Exactly at the limit is fine. */
  target[n + CX_HTTP_MAX_QUERY - 2] = '\0';
  request(cx_http_port(h), "GET", target, NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 200);
  resp_free(&r);

  struct cx_buf b = {0};
  cx_buf_puts(&b, "/echo?");
  for (int i = 0; i <= CX_HTTP_MAX_PARAMS; i++)
    cx_buf_printf(&b, "k%d=%d&", i, i);
  request(cx_http_port(h), "GET", b.data, NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 400);
  ASSERT_CONTAINS(jmsg(&r), "too many query parameters");
  resp_free(&r);
  cx_buf_free(&b);
  cx_http_destroy(h);
}

/* One request expected to fail: HTTP status, envelope code and a part of
 * the message; the reply must itself be valid JSON. */
struct bad_case {
  const char *method, *target, *body;
  long status;
  int code;
  const char *msg_part;
};

static void expect_bad(struct cx_http *h, const struct bad_case *c)
{
  struct resp r;
  request(cx_http_port(h), c->method, c->target, c->body,
          c->body ? (long)strlen(c->body) : 0, NULL, &r);
  ASSERT_MSG(r.status == c->status && r.json != NULL && jcode(&r) == c->code,
             "%s %s %s: got %ld %s", c->method, c->target,
             c->body ? c->body : "", r.status, r.body.data ? r.body.data : "");
  ASSERT_CONTAINS(jmsg(&r), c->msg_part);
  resp_free(&r);
}

static void expect_all_bad(const struct bad_case *cases, size_t n)
{
  struct cx_http *h = start_server(0);
  for (size_t i = 0; i < n; i++)
    expect_bad(h, &cases[i]);
  cx_http_destroy(h);
}

#define BADQ(target)                                                           \
  {                                                                            \
    "GET", target, NULL, 400, 1001, "query parameter"                          \
  }

TEST(http_query_bad_escapes_nul_and_bad_utf8_400)
{
  static const struct bad_case cases[] = {
      BADQ("/echo?a=%zz"), BADQ("/echo?a=%4"),        BADQ("/echo?a=%"),
      BADQ("/echo?a=%00"), BADQ("/echo?a=%ff"),       BADQ("/echo?a=%C3("),
      BADQ("/echo?=v"),    BADQ("/echo?%ED%A0%80=1"),
  };
  expect_all_bad(cases, CX_ARRAY_LEN(cases));
}

static void post_json(unsigned port, const char *body, size_t len,
                      struct resp *r)
{
  request(port, "POST", "/json", body, (long)len, NULL, r);
}

TEST(http_json_valid_object_reaches_handler)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  const char *body = "{\"name\":\"\xe4\xb8\xad\",\"n\":9007199254740993}";
  post_json(cx_http_port(h), body, strlen(body), &r);
  ASSERT_EQ(r.status, 200);
  ASSERT_STREQ(json_string_value(json_object_get(jdata(&r), "name")),
               "\xe4\xb8\xad");
  ASSERT_EQ(json_integer_value(json_object_get(jdata(&r), "n")),
            9007199254740993LL);
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_json_empty_body_is_empty_object)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  post_json(cx_http_port(h), "", 0, &r);
  ASSERT_EQ(r.status, 200);
  ASSERT(json_is_object(jdata(&r)));
  ASSERT_EQ(json_object_size(jdata(&r)), 0);
  resp_free(&r);
  cx_http_destroy(h);
}

#define BADJ(body, part)                                                       \
  {                                                                            \
    "POST", "/json", body, 400, 1001, part                                     \
  }

TEST(http_json_malformed_400_says_line_and_column)
{
  static const struct bad_case cases[] = {
      BADJ("{\n  \"a\": 1,\n  \"b\" 2\n}", "malformed JSON at line 3, column"),
      BADJ("{\"a\": 1}}", "malformed JSON at line 1, column"),
  };
  expect_all_bad(cases, CX_ARRAY_LEN(cases));
}

TEST(http_json_truncated_400)
{
  static const struct bad_case cases[] = {
      BADJ("{\"a\": [1, 2", "malformed JSON"),
      BADJ("{\"a\": \"abc", "malformed JSON"),
      BADJ("{", "malformed JSON"),
  };
  expect_all_bad(cases, CX_ARRAY_LEN(cases));
}

TEST(http_json_non_object_400)
{
  static const struct bad_case cases[] = {
      BADJ("[1,2]", "must be a JSON object"),
      BADJ("\"x\"", "must be a JSON object"),
      BADJ("5", "must be a JSON object"),
      BADJ("null", "must be a JSON object"),
      BADJ("true", "must be a JSON object"),
  };
  expect_all_bad(cases, CX_ARRAY_LEN(cases));
}

TEST(http_json_invalid_utf8_and_nul_400)
{
  static const struct bad_case cases[] = {
      BADJ("{\"a\":\"\xff\"}", "malformed JSON"),
      BADJ("{\"a\":\"\xc3\x28\"}", "malformed JSON"),
      BADJ("{\"\xed\xa0\x80\":1}", "malformed JSON"),
      BADJ("{\"a\":\"\\u0000\"}", "malformed JSON"),
  };
  expect_all_bad(cases, CX_ARRAY_LEN(cases));
}

TEST(http_json_duplicate_keys_400)
{
  static const struct bad_case cases[] = {
      BADJ("{\"id\":1,\"id\":2}", "duplicate"),
  };
  expect_all_bad(cases, CX_ARRAY_LEN(cases));
}

TEST(http_json_deep_nesting_is_rejected_not_a_crash)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  size_t n = 200000;
  char *body = malloc(n);
  ASSERT(body != NULL);
  memset(body, '[', n);
  body[0] = '{';
  post_json(cx_http_port(h), body, n, &r);
  ASSERT_EQ(r.status, 400);
  ASSERT_EQ(jcode(&r), 1001);
  resp_free(&r);
  memset(body, '{', n);
  post_json(cx_http_port(h), body, n, &r);
  ASSERT_EQ(r.status, 400);
  resp_free(&r);
  free(body);
  request(cx_http_port(h), "GET", "/okx", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 200);
  resp_free(&r);
  cx_http_destroy(h);
}

/* ---- body size ---------------------------------------------------------- */

TEST(http_body_exactly_1mib_is_accepted)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  size_t n = CX_HTTP_MAX_BODY_DEFAULT;
  char *body = malloc(n);
  ASSERT(body != NULL);
  memset(body, 'b', n);
  request(cx_http_port(h), "POST", "/raw", body, (long)n, NULL, &r);
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(json_integer_value(json_object_get(jdata(&r), "len")), n);
  ASSERT_EQ(json_integer_value(json_object_get(jdata(&r), "sum")), n * 'b');
  resp_free(&r);
  free(body);
  cx_http_destroy(h);
}

static void expect_413_then_healthy(struct cx_http *h, const char *target,
                                    size_t n)
{
  struct resp r;
  char *body = malloc(n);
  ASSERT(body != NULL);
  memset(body, 'c', n);
  request(cx_http_port(h), "POST", target, body, (long)n, NULL, &r);
  ASSERT_MSG(r.status == 413, "status %ld curl %d", r.status, (int)r.rc);
  ASSERT_EQ(jcode(&r), 1203);
  resp_free(&r);
  free(body);
  request(cx_http_port(h), "GET", "/okx", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 200);
  resp_free(&r);
}

TEST(http_body_1mib_plus_1_is_413_and_server_stays_healthy)
{
  struct cx_http *h = start_server(0);
  expect_413_then_healthy(h, "/json", CX_HTTP_MAX_BODY_DEFAULT + 1);
  expect_413_then_healthy(h, "/raw", CX_HTTP_MAX_BODY_DEFAULT + 1);
  cx_http_destroy(h);
}

TEST(http_body_2mib_is_413)
{
  struct cx_http *h = start_server(0);
  expect_413_then_healthy(h, "/json", 2 * CX_HTTP_MAX_BODY_DEFAULT);
  /* The limit applies to routes that drop their body too. */
  expect_413_then_healthy(h, "/nobody", 2 * CX_HTTP_MAX_BODY_DEFAULT);
  cx_http_destroy(h);
}

/* curl's default for big bodies: "Expect: 100-continue". The 413 comes
 * instead of the 100, so the body is never sent at all. */
TEST(http_body_over_limit_with_expect_100_gets_413_unsent)
{
  struct cx_http *h = start_server(0);
  struct resp r = {0};
  char url[64];
  struct chunked_src src = {2 * CX_HTTP_MAX_BODY_DEFAULT};
  struct curl_slist *hl = curl_slist_append(NULL, "Expect: 100-continue");
  snprintf(url, sizeof url, "http://127.0.0.1:%u/json", cx_http_port(h));
  CURL *c = new_easy(url);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)src.left);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(c, CURLOPT_READDATA, &src);
  perform(c, hl, &r);
  ASSERT_EQ(r.rc, CURLE_OK);
  ASSERT_EQ(r.status, 413);
  ASSERT_EQ(src.left, 2 * CX_HTTP_MAX_BODY_DEFAULT); /* nothing was read */
  ASSERT_CONTAINS(r.body.data, "\"code\":1203");
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_chunked_body_over_limit_never_reaches_handler)
{
  struct cx_http *h = start_server(0);
  struct resp r = {0};
  char url[64];
  struct chunked_src src = {64 * CX_HTTP_MAX_BODY_DEFAULT};
  struct curl_slist *hl = NULL;
  snprintf(url, sizeof url, "http://127.0.0.1:%u/raw", cx_http_port(h));
  CURL *c = new_easy(url);
  hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
  hl = curl_slist_append(hl, "Expect:");
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(c, CURLOPT_READDATA, &src);
  perform(c, hl, &r);
  /* Either a 413 or a closed connection; never the handler's 200. */
  ASSERT_MSG(r.status == 413 || (r.status == 0 && r.rc != CURLE_OK),
             "status %ld curl %d", r.status, (int)r.rc);
  /* The client was not made to send everything. */
  ASSERT_OP(src.left, >, 0);
  resp_free(&r);
  request(cx_http_port(h), "GET", "/okx", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 200);
  resp_free(&r);
  cx_http_destroy(h);
}

/* ---- slow and many clients ---------------------------------------------- */

static int connect_port(unsigned port)
{
  struct sockaddr_in a = {0};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT(fd >= 0);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

TEST(http_stalled_client_is_closed_and_others_are_served)
{
  struct cx_http *h = start_server(1); /* 1 s idle timeout */
  const char *part = "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 100"
                     "\r\n\r\n{\"a\":";
  int stalled[4];
  for (size_t i = 0; i < CX_ARRAY_LEN(stalled); i++) {
    stalled[i] = connect_port(cx_http_port(h));
    ASSERT_EQ(write(stalled[i], part, strlen(part)), (ssize_t)strlen(part));
  }
  int headers_only = connect_port(cx_http_port(h));
  ASSERT(write(headers_only, "GET /okx HTTP/1.1\r\nHo", 21) == 21);

  /* Others are served while those stall. */
  for (int i = 0; i < 20; i++) {
    struct resp r;
    request(cx_http_port(h), "GET", "/okx", NULL, 0, NULL, &r);
    ASSERT_EQ(r.status, 200);
    resp_free(&r);
  }
  /* The stalled connections are closed by the server (EOF), well within
   * the generous bound of 15 s (the timeout is 1 s). */
  struct timeval tv = {15, 0};
  for (size_t i = 0; i <= CX_ARRAY_LEN(stalled); i++) {
    int fd = i < CX_ARRAY_LEN(stalled) ? stalled[i] : headers_only;
    char buf[512];
    ssize_t n;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    do
      n = read(fd, buf, sizeof buf);
    while (n > 0); /* (MHD may or may not write a reply before closing) */
    ASSERT_MSG(n == 0 || errno == ECONNRESET, "read: %zd %s", n,
               strerror(errno));
    close(fd);
  }
  cx_http_destroy(h);
}

TEST(http_connection_limit_holds_extra_connections_back)
{
  struct cx_http_opts o = {
      .listen = "127.0.0.1:0", .threads = 1, .max_connections = 2};
  struct cx_http *h = NULL;
  char err[CX_ERR_LEN] = "", buf[64];
  struct resp r;
  ASSERT_EQ(cx_http_create(&o, &h, err), 0);
  ASSERT_EQ(cx_http_route(h, "GET", "/okx", 0, h_ok_x, NULL), 0);
  ASSERT_MSG(cx_http_start(h, err) == 0, "%s", err);
  int a = connect_port(cx_http_port(h)), b = connect_port(cx_http_port(h));
  ASSERT(write(a, "GET /okx HTTP/1.1\r\n", 19) == 19);
  ASSERT(write(b, "GET /okx HTTP/1.1\r\n", 19) == 19);
  cx_sleep_us(200000); /* let the server accept both */
  /* A third connection waits (in the kernel's backlog) and gets no reply
   * while the two hold their slots... */
  int c = connect_port(cx_http_port(h));
  struct timeval tv = {0, 500000};
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const char *req = "GET /okx HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write(c, req, strlen(req)), (ssize_t)strlen(req));
  ssize_t n = read(c, buf, sizeof buf - 1);
  ASSERT_MSG(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "read %zd: %s",
             n, n > 0 ? buf : strerror(errno));
  /* ... and is served once they leave. */
  close(a);
  close(b);
  tv.tv_sec = 15;
  tv.tv_usec = 0;
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  n = read(c, buf, sizeof buf - 1);
  ASSERT_OP(n, >, 0);
  buf[n] = '\0';
  ASSERT_CONTAINS(buf, "HTTP/1.1 200");
  close(c);
  request(cx_http_port(h), "GET", "/okx", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 200);
  resp_free(&r);
  cx_http_destroy(h);
}

struct worker {
  unsigned port;
  int id;
  int ok;
};

static void *worker_main(void *arg)
{
  struct worker *w = arg;
  char target[64], want[32];
  for (int i = 0; i < 200; i++) {
    struct resp r;
    snprintf(target, sizeof target, "/echo?id=%d-%d", w->id, i);
    snprintf(want, sizeof want, "%d-%d", w->id, i);
    request(w->port, "GET", target, NULL, 0, NULL, &r);
    const char *got = json_string_value(json_object_get(jdata(&r), "first_id"));
    if (r.status == 200 && got && strcmp(got, want) == 0)
      w->ok++;
    else
      printf("worker %d request %d: status %ld curl %d body %s\n", w->id, i,
             r.status, (int)r.rc, r.body.data ? r.body.data : "");
    resp_free(&r);
  }
  return NULL;
}

static void count_stat(const char *method, const char *path, int status,
                       uint64_t count, void *ctx)
{
  uint64_t *n = ctx;
  if (method && strcmp(method, "GET") == 0 && strcmp(path, "/echo") == 0 &&
      status == 200)
    *n += count;
}

static void run_workers(struct cx_http *h)
{
  pthread_t t[8];
  struct worker w[8];
  cx_log_set_level(CX_LOG_WARN); /* 1600 access lines are noise here */
  for (int i = 0; i < 8; i++) {
    w[i] = (struct worker){cx_http_port(h), i, 0};
    ASSERT_EQ(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    ASSERT_EQ(w[i].ok, 200);
  }
  uint64_t n = 0;
  cx_http_stats_each(h, count_stat, &n);
  ASSERT_EQ(n, 1600);
}

TEST_TIMEOUT(http_concurrent_clients_all_answered, 120)
{
  struct cx_http *h = start_server(0);
  run_workers(h);
  cx_http_destroy(h);
}

static struct cx_http *start_per_connection(void)
{
  struct cx_http_opts o = {.listen = "127.0.0.1:0", .thread_per_connection = 1};
  struct cx_http *h = new_server_opts(&o);
  char err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_http_start(h, err) == 0, "start: %s", err);
  return h;
}

TEST_TIMEOUT(http_concurrent_clients_thread_per_connection, 120)
{
  struct cx_http *h = start_per_connection();
  run_workers(h);
  cx_http_destroy(h);
}

struct meet_arg {
  unsigned port;
  int met;
};

static void *meet_main(void *arg)
{
  struct meet_arg *m = arg;
  struct resp r;
  request(m->port, "GET", "/meet", NULL, 0, NULL, &r);
  m->met = r.status == 200 && json_is_true(json_object_get(jdata(&r), "met"));
  resp_free(&r);
  return NULL;
}

/* Per-connection threads: a handler that blocks delays nobody else, and
 * two handlers really run at the same time. */
TEST(http_thread_per_connection_runs_handlers_concurrently)
{
  struct cx_http *h = start_per_connection();
  struct meet_arg a = {cx_http_port(h), 0};
  pthread_t t;
  struct resp r;
  ASSERT_EQ(pthread_create(&t, NULL, meet_main, &a), 0);
  for (;;) { /* wait until the first /meet is inside its handler */
    pthread_mutex_lock(&meet_mu);
    int in = meet_n;
    pthread_mutex_unlock(&meet_mu);
    if (in)
      break;
    cx_sleep_us(1000);
  }
  request(cx_http_port(h), "GET", "/okx", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 200);
  resp_free(&r);
  request(cx_http_port(h), "GET", "/meet", NULL, 0, NULL, &r);
  ASSERT(json_is_true(json_object_get(jdata(&r), "met")));
  resp_free(&r);
  pthread_join(t, NULL);
  ASSERT(a.met);
  cx_http_destroy(h);
}

/* ---- the envelope and other replies -------------------------------------- */

TEST(http_envelope_success_is_exact)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  request(cx_http_port(h), "GET", "/okx", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 200);
  ASSERT_STREQ(r.body.data, "{\"code\":0,\"msg\":\"ok\",\"data\":{\"x\":1}}");
  ASSERT_CONTAINS(r.headers.data,
                  "Content-Type: application/json; charset=utf-8\r\n");
  resp_free(&r);
  request(cx_http_port(h), "PUT", "/multi", NULL, 0, NULL, &r);
  ASSERT_STREQ(r.body.data, "{\"code\":0,\"msg\":\"ok\",\"data\":null}");
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_envelope_error_is_exact)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  request(cx_http_port(h), "GET", "/err", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 400);
  ASSERT_STREQ(r.body.data, "{\"code\":1002,\"msg\":\"minute: step 0 must be "
                            ">= 1\",\"field\":\"spec\"}");
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_code_table_matches_spec)
{
  /* SPEC §4's table, plus the three codes http.h appends. */
  static const int want[][2] = {
      {1001, 400}, {1002, 400}, {1003, 400}, {1004, 400}, {1101, 401},
      {1102, 403}, {1201, 404}, {1202, 409}, {1203, 413}, {1301, 503},
      {1302, 503}, {1204, 404}, {1205, 405}, {1303, 500}, {0, 200}};
  for (size_t i = 0; i < CX_ARRAY_LEN(want); i++) {
    ASSERT_EQ(cx_http_code_status(want[i][0]), want[i][1]);
    ASSERT(cx_http_code_msg(want[i][0]) != NULL);
  }
  ASSERT_EQ(cx_http_code_status(1000), 0);
  ASSERT(cx_http_code_msg(42) == NULL);
}

TEST(http_handler_without_reply_is_500)
{
  static const struct bad_case cases[] = {
      {"GET", "/silent", NULL, 500, 1303, "gave no reply"},
  };
  expect_all_bad(cases, CX_ARRAY_LEN(cases));
}

TEST(http_raw_reply_keeps_content_type)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  request(cx_http_port(h), "GET", "/metrics", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 200);
  ASSERT_STREQ(r.body.data, "# TYPE t counter\nt 1\n");
  ASSERT_CONTAINS(r.headers.data, "Content-Type: text/plain; version=0.0.4; "
                                  "charset=utf-8\r\n");
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_reply_header_refuses_injection)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  request(cx_http_port(h), "GET", "/inject", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(json_integer_value(json_object_get(jdata(&r), "crlf")), CX_EPARSE);
  ASSERT_EQ(json_integer_value(json_object_get(jdata(&r), "ok")), 0);
  ASSERT_EQ(json_integer_value(json_object_get(jdata(&r), "space")), CX_EPARSE);
  ASSERT_CONTAINS(r.headers.data, "X-Ok: fine\r\n");
  ASSERT(strstr(r.headers.data, "Set-Cookie") == NULL);
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_error_text_with_bad_utf8_stays_valid_json)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  request(cx_http_port(h), "GET", "/badutf8", NULL, 0, NULL, &r);
  ASSERT_EQ(r.status, 409);
  ASSERT(r.json != NULL);
  ASSERT_STREQ(jmsg(&r), "name 'bad?"
                         "?' taken");
  ASSERT_STREQ(json_string_value(json_object_get(r.json, "field")), "na?me");
  resp_free(&r);
  cx_http_destroy(h);
}

/* ---- counters and the access log ---------------------------------------- */

static void collect(const char *method, const char *path, int status,
                    uint64_t count, void *ctx)
{
  struct cx_buf *b = ctx;
  cx_buf_printf(b, "%s %s %d %" PRIu64 "\n", method ? method : "-",
                path ? path : "-", status, count);
}

TEST(http_counters_by_route_and_status)
{
  struct cx_http *h = start_server(0);
  struct resp r;
  struct cx_buf b = {0};
  for (int i = 0; i < 3; i++) {
    request(cx_http_port(h), "GET", "/okx", NULL, 0, NULL, &r);
    resp_free(&r);
  }
  request(cx_http_port(h), "GET", "/err", NULL, 0, NULL, &r);
  resp_free(&r);
  post_json(cx_http_port(h), "[", 1, &r);
  resp_free(&r);
  request(cx_http_port(h), "GET", "/nowhere", NULL, 0, NULL, &r);
  resp_free(&r);
  request(cx_http_port(h), "GET", "/nowhere2", NULL, 0, NULL, &r);
  resp_free(&r);
  cx_http_stats_each(h, collect, &b);
  ASSERT_STREQ(b.data, "POST /json 400 1\n"
                       "GET /err 400 1\n"
                       "GET /okx 200 3\n"
                       "- - 404 2\n");
  cx_buf_free(&b);
  cx_http_destroy(h);
}

TEST(http_access_log_line_without_secrets)
{
  char path[512];
  snprintf(path, sizeof path, "%s/access.log", cx_test_tmpdir());
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT(fd >= 0);
  cx_log_set_fd(fd);
  cx_log_set_level(CX_LOG_INFO);
  struct cx_http *h = start_server(0);
  struct resp r;
  request(cx_http_port(h), "GET", "/echo?token=QUERYSECRET", NULL, 0,
          "Authorization: Bearer HEADERSECRET", &r);
  ASSERT_EQ(r.status, 200);
  ASSERT_STREQ(json_string_value(json_object_get(jdata(&r), "auth")),
               "Bearer HEADERSECRET");
  resp_free(&r);
  const char *body = "{\"password\":\"BODYSECRET\"}";
  post_json(cx_http_port(h), body, strlen(body), &r);
  resp_free(&r);
  cx_http_destroy(h); /* the log lines are written by then */
  cx_log_set_fd(2);
  close(fd);

  FILE *f = fopen(path, "r");
  char text[8192];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  ASSERT_CONTAINS(text, "http: GET /echo 200 ");
  ASSERT_CONTAINS(text, " ms from 127.0.0.1");
  ASSERT_CONTAINS(text, "http: POST /json 200 ");
  ASSERT(strstr(text, "SECRET") == NULL);
}

/* ---- listen addresses and life cycle ------------------------------------ */

TEST(http_listen_strings_parsed_or_rejected)
{
  static const char *const bad[] = {"8089",    "127.0.0.1", "::1:80",
                                    "[::1]",   "[::1]80",   "host:-1",
                                    "h:65536", "h:80x",     "h:"};
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    struct cx_http_opts o = {.listen = bad[i]};
    struct cx_http *h = NULL;
    char err[CX_ERR_LEN] = "";
    ASSERT_MSG(cx_http_create(&o, &h, err) == CX_EPARSE, "%s", bad[i]);
    ASSERT_CONTAINS(err, "listen");
  }
}

TEST(http_listen_any_address_with_port_zero)
{
  struct cx_http *h = new_server(":0", 0);
  char err[CX_ERR_LEN] = "";
  struct resp r;
  ASSERT_MSG(cx_http_start(h, err) == 0, "%s", err);
  ASSERT(cx_http_port(h) > 0);
  request(cx_http_port(h), "GET", "/okx", NULL, 0, NULL, &r); /* 127.0.0.1 */
  ASSERT_EQ(r.status, 200);
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_listen_ipv6_loopback)
{
  struct cx_http *h = new_server("[::1]:0", 0);
  char err[CX_ERR_LEN] = "", url[64];
  struct resp r = {0};
  int s = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                           .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
    if (s >= 0)
      close(s);
    cx_http_destroy(h);
    cx_test_skip("no IPv6 loopback on this host");
  }
  close(s);
  ASSERT_MSG(cx_http_start(h, err) == 0, "%s", err);
  snprintf(url, sizeof url, "http://[::1]:%u/echo", cx_http_port(h));
  perform(new_easy(url), NULL, &r);
  ASSERT_EQ(r.rc, CURLE_OK);
  ASSERT_EQ(r.status, 200);
  ASSERT_STREQ(json_string_value(json_object_get(jdata(&r), "remote")), "::1");
  resp_free(&r);
  cx_http_destroy(h);
}

TEST(http_port_in_use_is_an_error)
{
  struct cx_http *a = start_server(0), *b;
  char listen[64], err[CX_ERR_LEN] = "";
  snprintf(listen, sizeof listen, "127.0.0.1:%u", cx_http_port(a));
  b = new_server(listen, 0);
  ASSERT_EQ(cx_http_start(b, err), CX_EUNAVAIL);
  ASSERT_CONTAINS(err, "cannot listen");
  ASSERT_EQ(cx_http_port(b), 0);
  cx_http_destroy(b);
  cx_http_destroy(a);
}

TEST(http_stop_closes_listener_and_is_idempotent)
{
  struct cx_http *h = start_server(0);
  unsigned port = cx_http_port(h);
  struct resp r;
  cx_http_stop(h);
  cx_http_stop(h);
  ASSERT_EQ(cx_http_port(h), 0);
  request(port, "GET", "/okx", NULL, 0, NULL, &r);
  ASSERT_EQ(r.rc, CURLE_COULDNT_CONNECT);
  resp_free(&r);
  cx_http_destroy(h);
  cx_http_destroy(NULL);
}

/* Everything a request can allocate is freed by the time the server is
 * destroyed, whatever way the request ended. */
TEST_TIMEOUT(http_no_leaks_after_stop, 60)
{
#ifndef HAVE_LSAN
  cx_test_skip("built without AddressSanitizer");
#else
  struct cx_http *h = start_server(1);
  struct resp r;
  char *big = malloc(2 * CX_HTTP_MAX_BODY_DEFAULT);
  ASSERT(big != NULL);
  memset(big, 'x', 2 * CX_HTTP_MAX_BODY_DEFAULT);
  request(cx_http_port(h), "GET", "/echo?a=1&b=%E4%B8%AD", NULL, 0,
          "Authorization: Bearer t", &r);
  resp_free(&r);
  post_json(cx_http_port(h), "{\"a\":[1,2,{}]}", 14, &r);
  resp_free(&r);
  post_json(cx_http_port(h), "{\"a\":", 5, &r);
  resp_free(&r);
  post_json(cx_http_port(h), big, 2 * CX_HTTP_MAX_BODY_DEFAULT, &r);
  resp_free(&r);
  request(cx_http_port(h), "GET", "/echo?a=%zz", NULL, 0, NULL, &r);
  resp_free(&r);
  request(cx_http_port(h), "GET", "/json", NULL, 0, NULL, &r);
  resp_free(&r);
  request(cx_http_port(h), "GET", "/silent", NULL, 0, NULL, &r);
  resp_free(&r);
  request(cx_http_port(h), "GET", "/inject", NULL, 0, NULL, &r);
  resp_free(&r);
  /* Headers over libmicrohttpd's per-connection memory: it answers itself
   * (431 or 414), after our request object exists. */
  struct cx_buf hb = {0};
  cx_buf_puts(&hb, "X-Big: ");
  for (int i = 0; i < 40000; i++)
    cx_buf_append(&hb, "y", 1);
  request(cx_http_port(h), "GET", "/okx", NULL, 0, hb.data, &r);
  ASSERT_OP(r.status, >=, 400);
  resp_free(&r);
  cx_buf_free(&hb);
  free(big);
  /* One stalled request cut by the timeout, one left open at stop. */
  int fd1 = connect_port(cx_http_port(h));
  const char *part = "POST /raw HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n"
                     "\r\nab";
  ASSERT_EQ(write(fd1, part, strlen(part)), (ssize_t)strlen(part));
  char buf[256];
  struct timeval tv = {15, 0};
  setsockopt(fd1, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (read(fd1, buf, sizeof buf) > 0)
    ;
  close(fd1);
  int fd2 = connect_port(cx_http_port(h));
  ASSERT(write(fd2, "GET /okx?a=b HTTP/1.1\r\nHo", 25) == 25);
  cx_sleep_us(100000);
  cx_http_destroy(h);
  close(fd2);
  curl_global_cleanup();
  ASSERT_EQ(__lsan_do_recoverable_leak_check(), 0);
#endif
}

/* A prefix route (the console's deep links) answers every path under it
 * that no exact route has; an exact route's path keeps its own 405. */
TEST(http_prefix_route_answers_paths_below_it)
{
  struct cx_http *h = NULL;
  char err[CX_ERR_LEN];
  ASSERT(cx_http_create(NULL, &h, err) == 0);
  ASSERT(cx_http_route(h, "GET", "/p/", CX_HTTP_F_PREFIX, h_echo, NULL) == 0);
  ASSERT(cx_http_route(h, "POST", "/p/x", CX_HTTP_F_JSON, h_json, NULL) == 0);
  static const struct {
    const char *method, *uri;
    int status;
    const char *path; /* the echo's path, NULL = not the echo */
  } cases[] = {
      {"GET", "/p/", 200, "/p/"},  {"GET", "/p/jobs/12?a=b", 200, "/p/jobs/12"},
      {"GET", "/p", 404, NULL},    {"GET", "/q/p/", 404, NULL},
      {"POST", "/p/x", 200, NULL}, {"GET", "/p/x", 405, NULL},
      {"POST", "/p/y", 405, NULL},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(cases); i++) {
    struct cx_http_output out;
    struct cx_http_input in = {
        cases[i].method, cases[i].uri, NULL, 0, NULL, 0, NULL};
    ASSERT_EQ(cx_http_dispatch(h, &in, &out), 0);
    ASSERT_MSG(out.status == cases[i].status, "%s %s: %d %s", cases[i].method,
               cases[i].uri, out.status, out.body);
    if (cases[i].path != NULL) {
      json_t *j = json_loads(out.body, 0, NULL);
      json_t *d = json_object_get(j, "data");
      ASSERT_STREQ(json_string_value(json_object_get(d, "path")),
                   cases[i].path);
      json_decref(j);
    }
    cx_http_output_free(&out);
  }
  cx_http_destroy(h);
}

/* ---- the pipeline in memory --------------------------------------------- */

TEST(http_dispatch_runs_the_same_pipeline)
{
  struct cx_http *h = new_server("127.0.0.1:0", 0); /* never started */
  struct cx_http_output out;
  struct cx_http_header hd[] = {{"Authorization", "Bearer x"}};
  struct cx_http_input in = {"POST",        "/json?q=1", hd,        1,
                             "{\"k\":[1]}", 9,           "10.0.0.1"};
  ASSERT_EQ(cx_http_dispatch(h, &in, &out), 0);
  ASSERT_EQ(out.status, 200);
  ASSERT_STREQ(out.content_type, CX_HTTP_CT_JSON);
  ASSERT_STREQ(out.body, "{\"code\":0,\"msg\":\"ok\",\"data\":{\"k\":[1]}}");
  cx_http_output_free(&out);

  struct cx_http_input get = {"GET", "/json", NULL, 0, NULL, 0, NULL};
  ASSERT_EQ(cx_http_dispatch(h, &get, &out), 0);
  ASSERT_EQ(out.status, 405);
  ASSERT_EQ(out.n_headers, 1);
  ASSERT_STREQ(out.headers[0].name, "Allow");
  cx_http_output_free(&out);

  struct cx_http_input echo = {"GET", "/echo", hd, 1, NULL, 0, "10.0.0.1"};
  ASSERT_EQ(cx_http_dispatch(h, &echo, &out), 0);
  json_t *j = json_loads(out.body, 0, NULL);
  json_t *d = json_object_get(j, "data");
  ASSERT_STREQ(json_string_value(json_object_get(d, "auth")), "Bearer x");
  ASSERT_STREQ(json_string_value(json_object_get(d, "remote")), "10.0.0.1");
  json_decref(j);
  cx_http_output_free(&out);

  size_t n = CX_HTTP_MAX_BODY_DEFAULT + 1;
  char *big = calloc(1, n);
  struct cx_http_input large = {"POST", "/raw", NULL, 0, big, n, NULL};
  ASSERT_EQ(cx_http_dispatch(h, &large, &out), 0);
  ASSERT_EQ(out.status, 413);
  cx_http_output_free(&out);
  free(big);
  cx_http_destroy(h);
}

TEST(http_dispatch_survives_allocation_failures)
{
  struct cx_http *h = new_server("127.0.0.1:0", 0);
  struct cx_http_input in = {
      "POST", "/json?a=1&b=2", NULL, 0, "{\"k\":[1,2,3]}", 13, NULL};
  /* Fail the n-th allocation for growing n: every run ends in a reply
   * (200 or 500) or a clean -ENOMEM; ASan checks nothing leaks or breaks. */
  int saw_ok = 0;
  for (long n = 1; n < 200 && !saw_ok; n++) {
    struct cx_http_output out;
    cx_alloc_fail_after(n);
    int rc = cx_http_dispatch(h, &in, &out);
    cx_alloc_fail_after(0);
    if (rc == 0) {
      ASSERT(out.status == 200 || out.status == 500);
      ASSERT(out.body != NULL);
      saw_ok = out.status == 200;
      cx_http_output_free(&out);
    } else {
      ASSERT_EQ(rc, -ENOMEM);
    }
  }
  ASSERT(saw_ok);
  cx_http_destroy(h);
}

/* ---- streamed replies -----------------------------------------------------
 */

/* A source a producer thread writes "tick N\n" into, waking the stream;
 * the stream's fill hands out what is there, 0 when nothing is, and ends
 * after the last tick. */
struct ticks {
  pthread_mutex_t mu;
  struct cx_buf data;
  size_t sent;
  int produced, total, done_calls, interval_ms;
  struct cx_http_stream *hs;
  pthread_t th;
};
static struct ticks g_ticks = {.mu = PTHREAD_MUTEX_INITIALIZER};

static ssize_t ticks_fill(void *ctx, char *buf, size_t max)
{
  struct ticks *t = ctx;
  pthread_mutex_lock(&t->mu);
  size_t n = t->data.len - t->sent;
  int end = n == 0 && t->produced == t->total;
  if (n > max)
    n = max;
  if (n > 0)
    memcpy(buf, t->data.data + t->sent, n);
  t->sent += n;
  pthread_mutex_unlock(&t->mu);
  return end ? CX_HTTP_STREAM_END : (ssize_t)n;
}

static void *ticks_main(void *arg)
{
  struct ticks *t = arg;
  for (int i = 1; i <= t->total; i++) {
    usleep((useconds_t)t->interval_ms * 1000);
    pthread_mutex_lock(&t->mu);
    if (t->done_calls > 0) { /* the reply is over: stop producing */
      pthread_mutex_unlock(&t->mu);
      break;
    }
    cx_buf_printf(&t->data, "tick %d\n", i);
    t->produced = i;
    if (t->hs != NULL && t->done_calls == 0)
      cx_http_stream_wake(t->hs);
    pthread_mutex_unlock(&t->mu);
  }
  return NULL;
}

static void ticks_done(void *ctx)
{
  struct ticks *t = ctx;
  pthread_mutex_lock(&t->mu);
  t->done_calls++; /* the producer wakes no more after this */
  pthread_mutex_unlock(&t->mu);
}

static void h_ticks(struct cx_http_req *req, void *ctx)
{
  struct ticks *t = ctx;
  struct cx_http_stream *hs = NULL;
  ASSERT_EQ(cx_http_reply_stream(req, 200, "text/plain", ticks_fill, ticks_done,
                                 t, &hs),
            0);
  pthread_mutex_lock(&t->mu);
  t->hs = hs;
  pthread_mutex_unlock(&t->mu);
  pthread_create(&t->th, NULL, ticks_main, t);
}

static void stream_case(int per_conn)
{
  struct cx_http_opts o = {.listen = "127.0.0.1:0",
                           .thread_per_connection = per_conn};
  struct cx_http *h = new_server_opts(&o);
  char err[CX_ERR_LEN] = "";
  g_ticks.total = 5;
  g_ticks.interval_ms = 100;
  ASSERT_EQ(cx_http_route(h, "GET", "/ticks", 0, h_ticks, &g_ticks), 0);
  ASSERT_MSG(cx_http_start(h, err) == 0, "start: %s", err);
  struct resp r;
  request(cx_http_port(h), "GET", "/ticks", NULL, 0, NULL, &r);
  pthread_join(g_ticks.th, NULL);
  ASSERT_EQ(r.status, 200);
  cx_buf_append(&r.body, "", 1);
  ASSERT_STREQ(r.body.data, "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n");
  ASSERT_CONTAINS(r.headers.data, "text/plain");
  cx_http_destroy(h);
  ASSERT_EQ(g_ticks.done_calls, 1);
  resp_free(&r);
}

/* The reply parks between ticks (no thread held) and each wake sends the
 * new bytes; the stream ends when fill says so; done runs once. */
TEST(http_stream_sends_bytes_as_woken_then_ends)
{
  stream_case(0);
}

TEST(http_stream_with_a_thread_per_connection)
{
  stream_case(1);
}

/* A client that leaves mid-stream: the tick notices, done runs. */
TEST(http_stream_client_gone_runs_done)
{
  char err[CX_ERR_LEN] = "";
  struct cx_http_opts o = {.listen = "127.0.0.1:0"};
  struct cx_http *h = new_server_opts(&o);
  g_ticks.total = 1000; /* far longer than the client stays */
  g_ticks.interval_ms = 20;
  ASSERT_EQ(cx_http_route(h, "GET", "/ticks", 0, h_ticks, &g_ticks), 0);
  ASSERT_MSG(cx_http_start(h, err) == 0, "start: %s", err);
  int fd = cx_raw_connect(NULL, cx_http_port(h));
  ASSERT(fd >= 0);
  const char *req = "GET /ticks HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(cx_raw_send(fd, req, strlen(req)), 0);
  char buf[256];
  ASSERT(read(fd, buf, sizeof buf) > 0);
  close(fd);
  int done = 0;
  for (int i = 0; i < 200 && !done; i++) {
    usleep(50 * 1000);
    pthread_mutex_lock(&g_ticks.mu);
    done = g_ticks.done_calls;
    pthread_mutex_unlock(&g_ticks.mu);
  }
  ASSERT_EQ(done, 1);
  pthread_join(g_ticks.th, NULL);
  cx_http_destroy(h);
}

/* Without sockets the body is what fill gives until it has nothing. */
static ssize_t once_fill(void *ctx, char *buf, size_t max)
{
  int *n = ctx;
  if ((*n)++ > 0 || max < 5)
    return 0;
  memcpy(buf, "hello", 5);
  return 5;
}
static int g_once_done;
static void once_done(void *ctx)
{
  (void)ctx;
  g_once_done++;
}
static void h_once_stream(struct cx_http_req *req, void *ctx)
{
  cx_http_reply_stream(req, 200, "text/plain", once_fill, once_done, ctx, NULL);
}

TEST(http_stream_through_dispatch)
{
  struct cx_http *h = NULL;
  char err[CX_ERR_LEN] = "";
  int calls = 0;
  ASSERT_EQ(cx_http_create(NULL, &h, err), 0);
  ASSERT_EQ(cx_http_route(h, "GET", "/s", 0, h_once_stream, &calls), 0);
  struct cx_http_input in = {.method = "GET", .uri = "/s"};
  struct cx_http_output out;
  ASSERT_EQ(cx_http_dispatch(h, &in, &out), 0);
  ASSERT_EQ(out.status, 200);
  ASSERT_STREQ(out.body, "hello");
  ASSERT_EQ(g_once_done, 1);
  cx_http_output_free(&out);
  cx_http_destroy(h);
}
