/* http: the server's security boundary under attack (issue 13) -- slow
 * clients from many addresses, the head deadline, the gate that refuses
 * before any body byte is read, and framing a proxy could read otherwise.
 * Raw sockets (tests/support/rawhttp.h), since libcurl is too polite. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http/http.h"
#include "support/rawhttp.h"
#include "support/test.h"
#include "util/util.h"

static _Atomic int handled; /* handler calls, to prove nothing ran */

static void h_ok(struct cx_http_req *req, void *ctx)
{
  size_t n = 0;
  (void)ctx;
  atomic_fetch_add(&handled, 1);
  const char *who = cx_http_req_note(req, &n);
  cx_http_reply_ok(req, json_pack("{s:s%}", "who", who ? who : "", n));
}

/* Admits "Authorization: Bearer good" and leaves a note for the handler. */
static int gate(struct cx_http_req *req, void *ctx)
{
  const char *a = cx_http_req_header(req, "Authorization");
  (void)ctx;
  if (a == NULL || strcmp(a, "Bearer good") != 0) {
    cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, NULL, "no");
    return -1;
  }
  return cx_http_req_set_note(req, "alice", 5);
}

/* A public route whose handler takes 2.5 s (a store timing out). */
static void h_slow(struct cx_http_req *req, void *ctx)
{
  (void)ctx;
  cx_sleep_us(2500000);
  cx_http_reply_ok(req, NULL);
}

static struct cx_http *start(struct cx_http_opts *o)
{
  struct cx_http *h = NULL;
  char err[CX_ERR_LEN] = "";
  o->listen = "127.0.0.1:0";
  ASSERT_MSG(cx_http_create(o, &h, err) == 0, "create: %s", err);
  ASSERT_EQ(cx_http_route(h, "GET", "/ok", 0, h_ok, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "POST", "/json", CX_HTTP_F_JSON, h_ok, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "POST", "/open", CX_HTTP_F_JSON | CX_HTTP_F_PUBLIC,
                          h_ok, NULL),
            0);
  ASSERT_EQ(cx_http_route(h, "GET", "/slow", CX_HTTP_F_PUBLIC, h_slow, NULL),
            0);
  ASSERT_EQ(cx_http_set_gate(h, gate, NULL), 0);
  ASSERT_MSG(cx_http_start(h, err) == 0, "start: %s", err);
  return h;
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
  (void)p;
  (void)ud;
  return sz * n;
}

/* GET /ok with the good token, allowed at most limit_ms; the status. */
static long authed_get(unsigned port, long limit_ms)
{
  char url[64];
  long status = 0;
  struct curl_slist *hl = curl_slist_append(NULL, "Authorization: Bearer good");
  snprintf(url, sizeof url, "http://127.0.0.1:%u/ok", port);
  CURL *c = curl_easy_init();
  ASSERT(c != NULL);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, limit_ms);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(hl);
  return status;
}

/* ---- many slow clients ----------------------------------------------------
 */

#define SLOW 600
#define SLOW_ADDRS 5 /* 120 each: more than the per-address cap of 64 */

TEST_TIMEOUT(http_600_slow_clients_from_other_addresses_do_not_lock_out, 60)
{
  static int fds[SLOW];
  struct cx_http_opts o = {0};
  ASSERT_OP(cx_raw_raise_nofile(), >=, 2 * SLOW + 100);
  struct cx_http *h = start(&o);
  const char half[] = "GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  for (int i = 0; i < SLOW; i++) {
    char src[32];
    snprintf(src, sizeof src, "127.0.1.%d", 1 + i % SLOW_ADDRS);
    fds[i] = cx_raw_connect(src, cx_http_port(h));
    ASSERT_MSG(fds[i] >= 0, "connect %d from %s: %s", i, src,
               strerror(-fds[i]));
    ASSERT_EQ(cx_raw_send(fds[i], half, sizeof half - 1), 0);
  }
  /* An authenticated client on 127.0.0.1 is still answered, each request
   * within 2 s. */
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(authed_get(cx_http_port(h), 2000), 200);
  /* The cap closed what one address held past 64: at least 600 - 5 * 64. */
  int closed = 0;
  for (int i = 0; i < SLOW; i++)
    closed += cx_raw_closed_within(fds[i], 5);
  ASSERT_OP(closed, >=, SLOW - SLOW_ADDRS * CX_HTTP_PER_IP_DEFAULT);
  for (int i = 0; i < SLOW; i++)
    close(fds[i]);
  cx_http_destroy(h);
}

TEST(http_head_deadline_closes_a_client_trickling_its_head)
{
  struct cx_http_opts o = {.head_timeout_s = 1, .timeout_s = 30};
  struct cx_http *h = start(&o);
  int fd = cx_raw_connect(NULL, cx_http_port(h));
  ASSERT(fd >= 0);
  ASSERT_EQ(cx_raw_send(fd, "GET /ok HTTP/1.1\r\nX-A: ", 23), 0);
  /* A byte every 200 ms keeps MHD's 30 s idle timeout from ever firing;
   * the 1 s head deadline must close it anyway (bounded: 15 s). */
  int closed = 0;
  for (int i = 0; i < 75 && !closed; i++) {
    if (cx_raw_send(fd, "a", 1) != 0)
      closed = 1;
    else
      closed = cx_raw_closed_within(fd, 200);
  }
  ASSERT_MSG(closed, "a trickling client was still connected after 15 s");
  close(fd);
  ASSERT_EQ(handled, 0);
  /* Others are unaffected; a quick client is not cut by the deadline. */
  ASSERT_EQ(authed_get(cx_http_port(h), 10000), 200);
  cx_http_destroy(h);
}

TEST(http_admitted_request_body_is_not_cut_by_the_head_deadline)
{
  struct cx_http_opts o = {.head_timeout_s = 1, .timeout_s = 30};
  struct cx_http *h = start(&o);
  char buf[4096];
  int fd = cx_raw_connect(NULL, cx_http_port(h));
  const char head[] = "POST /json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      "good\r\nContent-Length: 2\r\n\r\n{";
  ASSERT_EQ(cx_raw_send(fd, head, sizeof head - 1), 0);
  cx_sleep_us(2500000); /* past the head deadline, within the idle one */
  ASSERT_EQ(cx_raw_send(fd, "}", 1), 0);
  ASSERT_OP(cx_raw_read_reply(fd, buf, sizeof buf, 10000), >, 0);
  ASSERT_EQ(cx_raw_status(buf), 200);
  ASSERT_CONTAINS(buf, "\"who\":\"alice\"");
  close(fd);
  cx_http_destroy(h);
}

TEST(http_head_deadline_does_not_cut_a_slow_handler)
{
  struct cx_http_opts o = {.head_timeout_s = 1, .timeout_s = 30};
  struct cx_http *h = start(&o);
  char buf[4096];
  int fd = cx_raw_connect(NULL, cx_http_port(h));
  const char req[] = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(cx_raw_send(fd, req, sizeof req - 1), 0);
  ASSERT_OP(cx_raw_read_reply(fd, buf, sizeof buf, 15000), >, 0);
  ASSERT_EQ(cx_raw_status(buf), 200);
  close(fd);
  cx_http_destroy(h);
}

TEST(http_kept_alive_connection_may_idle_past_the_head_deadline)
{
  struct cx_http_opts o = {.head_timeout_s = 1, .timeout_s = 30};
  struct cx_http *h = start(&o);
  char buf[4096];
  int fd = cx_raw_connect(NULL, cx_http_port(h));
  const char req[] = "GET /ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     "good\r\n\r\n";
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(cx_raw_send(fd, req, sizeof req - 1), 0);
    ASSERT_OP(cx_raw_read_reply(fd, buf, sizeof buf, 10000), >, 0);
    ASSERT_EQ(cx_raw_status(buf), 200);
    if (i == 0)
      cx_sleep_us(2500000); /* idle between requests, within timeout_s */
  }
  close(fd);
  ASSERT_EQ(handled, 2);
  cx_http_destroy(h);
}

/* ---- the gate ---------------------------------------------------------------
 */

TEST(http_gate_refuses_an_unauthenticated_body_before_reading_it)
{
  struct cx_http_opts o = {0};
  struct cx_http *h = start(&o);
  char buf[4096];
  int fd = cx_raw_connect(NULL, cx_http_port(h));
  const char head[] = "POST /json HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: 1048576\r\n\r\n";
  ASSERT_EQ(cx_raw_send(fd, head, sizeof head - 1), 0);
  /* The answer comes with not one body byte sent... */
  ASSERT_OP(cx_raw_read_reply(fd, buf, sizeof buf, 10000), >, 0);
  ASSERT_EQ(cx_raw_status(buf), 401);
  ASSERT_CONTAINS(buf, "\"code\":1101");
  /* ... and the connection is closed: the body is never read. */
  ASSERT(cx_raw_closed_within(fd, 10000));
  close(fd);
  ASSERT_EQ(handled, 0);
  /* A public route takes the same request from anyone. */
  fd = cx_raw_connect(NULL, cx_http_port(h));
  const char pub[] = "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 2"
                     "\r\n\r\n{}";
  ASSERT_EQ(cx_raw_send(fd, pub, sizeof pub - 1), 0);
  ASSERT_OP(cx_raw_read_reply(fd, buf, sizeof buf, 10000), >, 0);
  ASSERT_EQ(cx_raw_status(buf), 200);
  ASSERT_CONTAINS(buf, "\"who\":\"\"");
  close(fd);
  ASSERT_EQ(handled, 1);
  cx_http_destroy(h);
}

TEST(http_gate_applies_to_dispatch_too)
{
  struct cx_http_opts o = {0};
  struct cx_http *h = NULL;
  struct cx_http_output out;
  struct cx_http_header auth = {"Authorization", "Bearer good"};
  struct cx_http_input in = {
      .method = "POST", .uri = "/json", .body = "{}", .body_len = 2};
  ASSERT_EQ(cx_http_create(&o, &h, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "POST", "/json", CX_HTTP_F_JSON, h_ok, NULL), 0);
  ASSERT_EQ(cx_http_set_gate(h, gate, NULL), 0);
  ASSERT_EQ(cx_http_dispatch(h, &in, &out), 0);
  ASSERT_EQ(out.status, 401);
  cx_http_output_free(&out);
  ASSERT_EQ(handled, 0);
  in.headers = &auth;
  in.n_headers = 1;
  ASSERT_EQ(cx_http_dispatch(h, &in, &out), 0);
  ASSERT_EQ(out.status, 200);
  ASSERT_CONTAINS(out.body, "alice");
  cx_http_output_free(&out);
  cx_http_destroy(h);
}

/* ---- framing
 * ------------------------------------------------------------------ */

struct framing_case {
  const char *headers; /* between the request line and the blank line */
  int status;          /* expected */
};

/* Each case is followed, in the same write, by a second request that a
 * server reading the framing another way would see and answer: only one
 * reply may come, and then the connection must close. */
TEST(http_ambiguous_framing_is_refused_and_the_connection_closed)
{
  static const struct framing_case cases[] = {
      {"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", 400},
      {"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", 400},
      {"Content-Length: 4\r\nContent-Length: 40\r\n", 400},
      {"Transfer-Encoding: gzip\r\n", 501},
      {"Transfer-Encoding: gzip, chunked\r\n", 501},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 501},
      {"Content-Length: +4\r\n", 400},
      {"Content-Length: 4, 4\r\n", 400},
  };
  struct cx_http_opts o = {0};
  struct cx_http *h = start(&o);
  char req[1024], buf[8192];
  for (size_t i = 0; i < CX_ARRAY_LEN(cases); i++) {
    int fd = cx_raw_connect(NULL, cx_http_port(h));
    int n = snprintf(req, sizeof req,
                     "POST /json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     "good\r\n%s\r\n0\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer good\r\n\r\n",
                     cases[i].headers);
    ASSERT_EQ(cx_raw_send(fd, req, (size_t)n), 0);
    size_t got = cx_raw_read_reply(fd, buf, sizeof buf, 10000);
    ASSERT_MSG(got > 0, "case %zu: no reply", i);
    ASSERT_MSG(cx_raw_status(buf) == cases[i].status,
               "case %zu (%s): wanted %d, got: %.200s", i, cases[i].headers,
               cases[i].status, buf);
    /* nothing more: no second reply, the connection ends */
    char rest[512];
    size_t more = cx_raw_read_reply(fd, rest, sizeof rest, 3000);
    ASSERT_MSG(more == 0, "case %zu: a second reply: %.200s", i, rest);
    ASSERT_MSG(cx_raw_closed_within(fd, 10000), "case %zu: still open", i);
    close(fd);
  }
  ASSERT_EQ(handled, 0);
  /* Plain chunked and plain Content-Length still work. */
  int fd = cx_raw_connect(NULL, cx_http_port(h));
  const char ok[] = "POST /json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                    "good\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0"
                    "\r\n\r\n";
  ASSERT_EQ(cx_raw_send(fd, ok, sizeof ok - 1), 0);
  ASSERT_OP(cx_raw_read_reply(fd, buf, sizeof buf, 10000), >, 0);
  ASSERT_EQ(cx_raw_status(buf), 200);
  close(fd);
  cx_http_destroy(h);
}

TEST(http_dispatch_refuses_content_length_with_transfer_encoding)
{
  struct cx_http *h = NULL;
  struct cx_http_output out;
  struct cx_http_header hs[] = {{"Authorization", "Bearer good"},
                                {"Content-Length", "2"},
                                {"Transfer-Encoding", "chunked"}};
  struct cx_http_input in = {.method = "POST",
                             .uri = "/json",
                             .headers = hs,
                             .n_headers = 3,
                             .body = "{}",
                             .body_len = 2};
  ASSERT_EQ(cx_http_create(NULL, &h, NULL), 0);
  ASSERT_EQ(cx_http_route(h, "POST", "/json", CX_HTTP_F_JSON, h_ok, NULL), 0);
  ASSERT_EQ(cx_http_dispatch(h, &in, &out), 0);
  ASSERT_EQ(out.status, 400);
  cx_http_output_free(&out);
  ASSERT_EQ(handled, 0);
  cx_http_destroy(h);
}
