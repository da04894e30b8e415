/*
 * coord against a real etcd (started per test on loopback by
 * tests/support/services.h): the shared suite of tests/unit/coord/cases.inc,
 * then what only a real server can show — restarts and compaction under a
 * live watch, a paused server (silent watch, keep-alive gap), auth, bad and
 * dead endpoints, fail-over.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coord/coord.h"
#include "support/run.h"
#include "support/services.h"
#include "support/test.h"
#include "util/util.h"

#define CASE(name) TEST_TIMEOUT(coord_etcd_##name, 90)

static struct cx_svc_etcd etcd;
static int etcd_up;

static void etcd_start(void)
{
  char err[CX_ERR_LEN] = "";
  struct cx_svc_etcd_opts o = {0};
  o.progress_notify_interval = "500ms";
  int rc = cx_svc_etcd_start(&etcd, &o, err);
  if (rc != 0)
    cx_test_fail(__FILE__, __LINE__, "etcd start: %s", err);
  etcd_up = 1;
}

static struct cx_coord *open_with(const struct cx_coord_cfg *cfg)
{
  struct cx_coord *c = NULL;
  char err[CX_ERR_LEN] = "";
  int rc = cx_coord_open(cfg, &c, err);
  if (rc != 0)
    cx_test_fail(__FILE__, __LINE__, "open: %s (%s)", cx_err_name(rc), err);
  return c;
}

static struct cx_coord *case_open(void)
{
  if (!etcd_up)
    etcd_start();
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = etcd.endpoints;
  cfg.request_timeout_ms = 3000;
  return open_with(&cfg);
}

static struct cx_coord *case_open_peer(struct cx_coord *c)
{
  (void)c;
  return case_open();
}

static void case_close_peer(struct cx_coord *c, struct cx_coord *peer)
{
  if (peer != c)
    cx_coord_close(peer);
}

#include "../../unit/coord/cases.inc"

/* ---- endpoints ---------------------------------------------------------- */

CASE(is_the_etcd_backend)
{
  struct cx_coord *c = case_open();
  ASSERT_STREQ(cx_coord_backend(c), "etcd");
  cx_coord_close(c);
}

CASE(garbage_endpoints_are_refused_clearly)
{
  static const char *const bad[] = {
      "127.0.0.1:2379",       "ftp://127.0.0.1:2379", "http://",
      "http://a b:1",         "http://h:1/v3/kv",     "http://h:1?x=1",
      "http://h:1,",          ",http://h:1",          "http://h:99999",
      "http://h:1,,http://g", "http://h:1\n",
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    struct cx_coord_cfg cfg = {0};
    struct cx_coord *c = (void *)1;
    char err[CX_ERR_LEN] = "";
    cfg.endpoints = bad[i];
    int rc = cx_coord_open(&cfg, &c, err);
    ASSERT_MSG(rc == CX_EPARSE, "\"%s\": %s (%s)", bad[i], cx_err_name(rc),
               err);
    ASSERT(c == NULL);
    ASSERT_CONTAINS(err, "endpoint");
  }
}

CASE(dead_endpoint_is_unavail)
{
  int port = 0;
  char ep[64], err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx_svc_port_alloc(&port, err), 0);
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = ep;
  struct cx_coord *c = open_with(&cfg);
  int rc = cx_coord_put(c, S("/k"), S("v"), 0, NULL, err);
  ASSERT_EQ(rc, CX_EUNAVAIL);
  ASSERT_CONTAINS(err, ep);
  struct cx_coord_kvs kvs;
  ASSERT_EQ(cx_coord_range(c, S("/"), &kvs, err), CX_EUNAVAIL);
  int64_t id;
  ASSERT_EQ(cx_coord_lease_grant(c, 5, 1, NULL, NULL, &id, NULL, err),
            CX_EUNAVAIL);
  cx_coord_close(c);
}

CASE(non_etcd_reply_is_a_protocol_error)
{
  /* The peer port speaks HTTP, but not the v3 gateway. */
  if (!etcd_up)
    etcd_start();
  char ep[64], err[CX_ERR_LEN] = "";
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", etcd.m[0].peer_port);
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = ep;
  struct cx_coord *c = open_with(&cfg);
  int rc = cx_coord_put(c, S("/k"), S("v"), 0, NULL, err);
  ASSERT_MSG(rc == CX_EPROTO, "%s (%s)", cx_err_name(rc), err);
  ASSERT_CONTAINS(err, "JSON");
  cx_coord_close(c);
}

CASE(fails_over_to_a_live_endpoint)
{
  if (!etcd_up)
    etcd_start();
  int port = 0;
  char eps[sizeof etcd.endpoints + 64], err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx_svc_port_alloc(&port, err), 0);
  snprintf(eps, sizeof eps, "http://127.0.0.1:%d, %s", port, etcd.endpoints);
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = eps;
  struct cx_coord *c = open_with(&cfg);
  put_s(c, "/fo", "v");
  char *v = get_s(c, "/fo");
  ASSERT_STREQ(v, "v");
  cx_free(v);
  /* Watches fail over too. */
  struct collector col;
  col_init(&col);
  struct cx_coord_watch *w = watch_prefix(c, "/fo", 0, &col);
  cx_mono until = cx_mono_now() + 20 * 1000000LL;
  while (col_wait(&col, &col.n, 1, 0) < 1 && cx_mono_now() < until) {
    put_s(c, "/fo", "again");
    cx_sleep_us(300000);
  }
  cx_coord_watch_cancel(w);
  ASSERT_OP(col.n, >=, 1);
  col_free(&col);
  cx_coord_close(c);
}

/* ---- failures under a live watch --------------------------------------- */

CASE(watch_resumes_across_restart_exactly_once)
{
  struct cx_coord *c = case_open();
  struct collector col;
  col_init(&col);
  struct cx_coord_watch *w = watch_prefix(c, "/r/", current_rev(c) + 1, &col);
  int64_t revs[40];
  char k[32], v[32], err[CX_ERR_LEN] = "";
  for (int i = 0; i < 40; i++) {
    if (i == 20) {
      ASSERT_MSG(cx_svc_etcd_restart(&etcd, err) == 0, "%s", err);
    }
    snprintf(k, sizeof k, "/r/%d", i % 13);
    snprintf(v, sizeof v, "v%d", i);
    int rc;
    cx_mono until = cx_mono_now() + 20 * 1000000LL;
    /* A write may meet the server still settling: retry until acked. */
    while ((rc = cx_coord_put(c, S(k), S(v), 0, &revs[i], err)) != 0 &&
           cx_mono_now() < until)
      cx_sleep_us(200000);
    ASSERT_MSG(rc == 0, "put %s: %s", k, err);
  }
  ASSERT_EQ(col_wait(&col, &col.n, 40, 30), 40);
  cx_sleep_us(1000000);
  cx_coord_watch_cancel(w);
  ASSERT_EQ(col.n, 40);
  ASSERT_OP(col.downs, >=, 1); /* it really was cut off */
  ASSERT_EQ(col.resyncs, 0);
  for (int i = 0; i < 40; i++) {
    snprintf(k, sizeof k, "/r/%d", i % 13);
    snprintf(v, sizeof v, "v%d", i);
    ASSERT_STREQ(col.r[i].key, k);
    ASSERT_STREQ(col.r[i].val, v);
    ASSERT_EQ(col.r[i].rev, revs[i]);
  }
  col_free(&col);
  cx_coord_close(c);
}

CASE(watch_resyncs_when_compacted_while_disconnected)
{
  struct cx_coord *c = case_open();
  struct collector col;
  col_init(&col);
  col.gate_on_down = 1;
  col.gate_closed = 1;
  struct cx_coord_watch *w = watch_prefix(c, "/cp/", current_rev(c) + 1, &col);
  put_s(c, "/cp/a", "1");
  put_s(c, "/cp/gone", "x");
  ASSERT_EQ(col_wait(&col, &col.n, 2, 20), 2);
  /* Cut the watch off; its thread now waits at the gate. */
  char err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_svc_etcd_restart(&etcd, err) == 0, "%s", err);
  ASSERT_EQ(col_wait(&col, &col.downs, 1, 20), 1);
  put_s(c, "/cp/a", "2");
  put_s(c, "/cp/b", "3");
  ASSERT_EQ(cx_coord_delete(c, S("/cp/gone"), NULL, NULL, NULL), 0);
  int64_t now = put_s(c, "/other", "x");
  ASSERT_MSG(cx_coord_compact(c, now, err) == 0, "%s", err);
  pthread_mutex_lock(&col.mu);
  col.gate_closed = 0;
  pthread_cond_broadcast(&col.cv);
  pthread_mutex_unlock(&col.mu);
  ASSERT_EQ(col_wait(&col, &col.resyncs, 1, 30), 1);
  pthread_mutex_lock(&col.mu);
  ASSERT_EQ(col.n, 2); /* the changes in between came only as the state */
  ASSERT_EQ(col.sync.n, 2);
  ASSERT_STREQ(col.sync.kvs[0].key, "/cp/a");
  ASSERT_STREQ(col.sync.kvs[0].value, "2");
  ASSERT_STREQ(col.sync.kvs[1].key, "/cp/b");
  ASSERT_OP(col.sync.revision, >=, now);
  pthread_mutex_unlock(&col.mu);
  int64_t next = put_s(c, "/cp/c", "4");
  ASSERT_EQ(col_wait(&col, &col.n, 3, 30), 3);
  ASSERT_STREQ(col.r[2].key, "/cp/c");
  ASSERT_EQ(col.r[2].rev, next);
  cx_coord_watch_cancel(w);
  col_free(&col);
  cx_coord_close(c);
}

CASE(watchdog_reconnects_a_silent_watch)
{
  if (!etcd_up)
    etcd_start();
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = etcd.endpoints;
  cfg.watch_idle_ms = 1500; /* the server notifies progress every 500 ms */
  struct cx_coord *c = open_with(&cfg);
  struct collector col;
  col_init(&col);
  struct cx_coord_watch *w = watch_prefix(c, "/wd/", current_rev(c) + 1, &col);
  int64_t r1 = put_s(c, "/wd/a", "1");
  ASSERT_EQ(col_wait(&col, &col.n, 1, 20), 1);
  ASSERT_EQ(col.downs, 0);
  char err[CX_ERR_LEN] = "";
  /* A paused server keeps the TCP connection open and says nothing. */
  ASSERT_EQ(cx_svc_etcd_member_pause(&etcd, 0, err), 0);
  ASSERT_MSG(col_wait(&col, &col.downs, 1, 20) >= 1,
             "the silent watch was never declared dead");
  ASSERT_EQ(cx_svc_etcd_member_resume(&etcd, 0, err), 0);
  int64_t r2 = put_s(c, "/wd/b", "2");
  ASSERT_EQ(col_wait(&col, &col.n, 2, 30), 2);
  cx_sleep_us(500000);
  cx_coord_watch_cancel(w);
  ASSERT_EQ(col.n, 2);
  ASSERT_EQ(col.r[0].rev, r1);
  ASSERT_EQ(col.r[1].rev, r2);
  col_free(&col);
  cx_coord_close(c);
}

/* Reads the whole file at path into buf (NUL-terminated, cut at cap). */
static void read_text(const char *path, char *buf, size_t cap)
{
  FILE *f = fopen(path, "r");
  ASSERT_MSG(f != NULL, "%s", path);
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
}

CASE(stock_etcd_idle_watch_is_probed_not_reconnected)
{
  /* etcd as Debian ships it: no progress-notify flag, so an idle watch
   * hears nothing for up to 20 minutes (progress every 10 min). Silence is
   * normal there: the watch must stay connected and quiet, probing the
   * server instead, and still notice a server that stopped answering. */
  char err[CX_ERR_LEN] = "", log[CX_SVC_PATH_LEN + 16], text[65536];
  ASSERT_MSG(cx_svc_etcd_start(&etcd, NULL, err) == 0, "%s", err);
  etcd_up = 1;
  snprintf(log, sizeof log, "%s/coord.log", cx_test_tmpdir());
  FILE *lf = fopen(log, "w");
  ASSERT(lf != NULL);
  cx_log_set_fd(fileno(lf));
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = etcd.endpoints;
  cfg.watch_idle_ms = 200; /* a probe after 200 ms of silence */
  cfg.request_timeout_ms = 1000;
  struct cx_coord *c = open_with(&cfg);
  struct collector col;
  col_init(&col);
  struct cx_coord_watch *w =
      watch_prefix(c, "/stock/", current_rev(c) + 1, &col);
  int64_t r1 = put_s(c, "/stock/a", "1");
  ASSERT_EQ(col_wait(&col, &col.n, 1, 20), 1);
  cx_sleep_us(3000000); /* 15 probe intervals of silence */
  int64_t r2 = put_s(c, "/stock/b", "2");
  ASSERT_EQ(col_wait(&col, &col.n, 2, 20), 2);
  ASSERT_EQ(col.downs, 0);
  read_text(log, text, sizeof text);
  ASSERT_MSG(strstr(text, "WARN") == NULL, "an idle watch warned:\n%s", text);
  /* A paused server keeps the TCP connection (and TCP keep-alives)
   * answered by the kernel: only the probe can tell. */
  ASSERT_EQ(cx_svc_etcd_member_pause(&etcd, 0, err), 0);
  ASSERT_MSG(col_wait(&col, &col.downs, 1, 20) >= 1,
             "a watch on a stopped server was never declared dead");
  ASSERT_EQ(cx_svc_etcd_member_resume(&etcd, 0, err), 0);
  int64_t r3 = put_s(c, "/stock/c", "3");
  ASSERT_EQ(col_wait(&col, &col.n, 3, 30), 3);
  cx_coord_watch_cancel(w);
  ASSERT_EQ(col.r[0].rev, r1);
  ASSERT_EQ(col.r[1].rev, r2);
  ASSERT_EQ(col.r[2].rev, r3);
  col_free(&col);
  cx_coord_close(c);
  cx_log_set_fd(2);
  fclose(lf);
}

/* ---- leases ------------------------------------------------------------- */

static int wait_lost(struct lost_rec *l, int timeout_s)
{
  cx_mono until = cx_mono_now() + timeout_s * 1000000LL;
  while (lost_calls(l) == 0 && cx_mono_now() < until)
    cx_sleep_us(50000);
  return lost_calls(l);
}

CASE(lease_lost_when_keepalive_gap_exceeds_ttl)
{
  if (!etcd_up)
    etcd_start();
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = etcd.endpoints;
  cfg.request_timeout_ms = 1000;
  struct cx_coord *c = open_with(&cfg);
  struct lost_rec lost = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
  int64_t id = 0, ttl = 0;
  char err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_coord_lease_grant(c, 3, 1, on_lost, &lost, &id, &ttl, err) == 0,
             "%s", err);
  ASSERT_EQ(cx_coord_put(c, S("/ll/k"), S("x"), id, NULL, NULL), 0);
  ASSERT_EQ(cx_svc_etcd_member_pause(&etcd, 0, err), 0);
  int calls = wait_lost(&lost, ttl + 15);
  ASSERT_EQ(cx_svc_etcd_member_resume(&etcd, 0, err), 0);
  ASSERT_EQ(calls, 1);
  ASSERT_EQ(lost.reason, CX_EUNAVAIL);
  ASSERT_EQ(lost.lease, id);
  ASSERT_MSG(wait_gone(c, "/ll/k", 20), "the lost lease's key survived");
  cx_sleep_us(1500000);
  ASSERT_EQ(lost_calls(&lost), 1); /* reported once */
  cx_coord_close(c);
}

CASE(lease_lost_when_revoked_elsewhere)
{
  struct cx_coord *c = case_open(), *peer = case_open();
  struct lost_rec lost = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
  int64_t id = 0;
  ASSERT_EQ(cx_coord_lease_grant(c, 3, 1, on_lost, &lost, &id, NULL, NULL), 0);
  ASSERT_EQ(cx_coord_lease_revoke(peer, id, NULL), 0);
  ASSERT_EQ(wait_lost(&lost, 15), 1);
  ASSERT_EQ(lost.reason, CX_ELEASE);
  cx_coord_close(peer);
  cx_coord_close(c);
}

/* ---- auth --------------------------------------------------------------- */

static void gateway(const char *path, const char *body)
{
  char url[256], resp[1024], err[CX_ERR_LEN] = "";
  long status = 0;
  snprintf(url, sizeof url, "%s%s", etcd.m[0].endpoint, path);
  int rc =
      cx_svc_http("POST", url, body, 5000, &status, resp, sizeof resp, err);
  ASSERT_MSG(rc == 0 && status == 200, "%s: %ld %s %s", path, status, resp,
             err);
}

CASE(auth_wrong_password_is_eauth_and_right_one_works)
{
  if (!etcd_up)
    etcd_start();
  gateway("/v3/auth/user/add", "{\"name\":\"root\",\"password\":\"s3cret\"}");
  gateway("/v3/auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}");
  gateway("/v3/auth/enable", "{}");

  struct cx_coord_cfg cfg = {0};
  struct cx_coord *c = (void *)1;
  char err[CX_ERR_LEN] = "";
  cfg.endpoints = etcd.endpoints;
  cfg.username = "root";
  cfg.password = "wrong";
  ASSERT_EQ(cx_coord_open(&cfg, &c, err), CX_EAUTH);
  ASSERT(c == NULL);
  ASSERT_CONTAINS(err, "authentication failed");
  ASSERT(strstr(err, "wrong") == NULL); /* never echo the password */

  cfg.username = NULL;
  cfg.password = NULL;
  c = open_with(&cfg);
  ASSERT_EQ(cx_coord_put(c, S("/au"), S("x"), 0, NULL, err), CX_EAUTH);
  cx_coord_close(c);

  cfg.username = "root";
  cfg.password = "s3cret";
  c = open_with(&cfg);
  put_s(c, "/au/k", "v");
  char *v = get_s(c, "/au/k");
  ASSERT_STREQ(v, "v");
  cx_free(v);
  struct collector col;
  col_init(&col);
  struct cx_coord_watch *w = watch_prefix(c, "/au/", 1, &col);
  ASSERT_EQ(col_wait(&col, &col.n, 1, 20), 1);
  ASSERT_STREQ(col.r[0].key, "/au/k");
  cx_coord_watch_cancel(w);
  col_free(&col);
  int64_t id;
  ASSERT_EQ(cx_coord_lease_grant(c, 5, 1, NULL, NULL, &id, NULL, err), 0);
  ASSERT_EQ(cx_coord_lease_revoke(c, id, err), 0);
  cx_coord_close(c);
}

CASE(client_survives_a_server_restart)
{
  struct cx_coord *c = case_open();
  put_s(c, "/sr", "1");
  char err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_svc_etcd_restart(&etcd, err) == 0, "%s", err);
  /* Pooled connections are stale now; the next call still works. */
  put_s(c, "/sr", "2");
  char *v = get_s(c, "/sr");
  ASSERT_STREQ(v, "2");
  cx_free(v);
  cx_coord_close(c);
}

static void etcdctl(const char *user, const char *a1, const char *a2)
{
  char ep[96];
  snprintf(ep, sizeof ep, "--endpoints=%s", etcd.m[0].endpoint);
  char *argv[8];
  int n = 0;
  argv[n++] = "/usr/bin/etcdctl";
  argv[n++] = ep;
  if (user)
    argv[n++] = (char *)user;
  argv[n++] = (char *)a1;
  argv[n++] = (char *)a2;
  argv[n] = NULL;
  struct cx_test_output o;
  cx_test_run(argv, 30, &o);
  ASSERT_MSG(o.status == 0, "etcdctl %s %s: %s%s", a1, a2, o.out, o.err);
  cx_test_output_free(&o);
}

CASE(auth_reauthenticates_when_the_token_is_invalidated)
{
  if (!etcd_up)
    etcd_start();
  gateway("/v3/auth/user/add", "{\"name\":\"root\",\"password\":\"s3cret\"}");
  gateway("/v3/auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}");
  gateway("/v3/auth/enable", "{}");
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = etcd.endpoints;
  cfg.username = "root";
  cfg.password = "s3cret";
  struct cx_coord *c = open_with(&cfg);
  put_s(c, "/ra", "1");
  /* Disabling auth drops every issued token; enabling it again leaves the
   * client holding a token the server no longer knows. */
  etcdctl("--user=root:s3cret", "auth", "disable");
  etcdctl(NULL, "auth", "enable");
  put_s(c, "/ra", "2");
  char *v = get_s(c, "/ra");
  ASSERT_STREQ(v, "2");
  cx_free(v);
  cx_coord_close(c);
}

CASE(auth_watch_reauthenticates_after_a_restart)
{
  if (!etcd_up)
    etcd_start();
  gateway("/v3/auth/user/add", "{\"name\":\"root\",\"password\":\"s3cret\"}");
  gateway("/v3/auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}");
  gateway("/v3/auth/enable", "{}");
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = etcd.endpoints;
  cfg.username = "root";
  cfg.password = "s3cret";
  struct cx_coord *c = open_with(&cfg);
  struct collector col;
  col_init(&col);
  struct cx_coord_watch *w = watch_prefix(c, "/rw/", current_rev(c) + 1, &col);
  put_s(c, "/rw/a", "1");
  ASSERT_EQ(col_wait(&col, &col.n, 1, 20), 1);
  /* Tokens live in the server's memory: after a restart the watch's token
   * is unknown, and only the watch itself can notice (the writer below is
   * another client, so no unary call refreshes c's token for it). */
  char err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_svc_etcd_restart(&etcd, err) == 0, "%s", err);
  struct cx_coord *writer = open_with(&cfg);
  put_s(writer, "/rw/b", "2");
  ASSERT_EQ(col_wait(&col, &col.n, 2, 30), 2);
  ASSERT_STREQ(col.r[1].key, "/rw/b");
  cx_coord_watch_cancel(w);
  col_free(&col);
  cx_coord_close(writer);
  cx_coord_close(c);
}

CASE(cluster_member_loss_fails_over_without_losing_events)
{
  static struct cx_svc_etcd cl;
  struct cx_svc_etcd_opts o = {0};
  char err[CX_ERR_LEN] = "";
  o.members = 3;
  ASSERT_MSG(cx_svc_etcd_start(&cl, &o, err) == 0, "%s", err);
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = cl.endpoints;
  cfg.request_timeout_ms = 3000;
  struct cx_coord *c = open_with(&cfg);
  struct collector col;
  col_init(&col);
  struct cx_coord_watch *w = watch_prefix(c, "/m/", current_rev(c) + 1, &col);
  int64_t revs[30];
  char k[16], v[16];
  for (int i = 0; i < 30; i++) {
    if (i == 10) /* the member both the client and the watch talk to */
      ASSERT_MSG(cx_svc_etcd_member_kill(&cl, 0, err) == 0, "%s", err);
    snprintf(k, sizeof k, "/m/%d", i % 7);
    snprintf(v, sizeof v, "v%d", i);
    int rc;
    cx_mono until = cx_mono_now() + 30 * 1000000LL;
    while ((rc = cx_coord_put(c, S(k), S(v), 0, &revs[i], err)) != 0 &&
           cx_mono_now() < until)
      cx_sleep_us(200000);
    ASSERT_MSG(rc == 0, "put %s: %s", k, err);
  }
  ASSERT_EQ(col_wait(&col, &col.n, 30, 30), 30);
  cx_sleep_us(500000);
  cx_coord_watch_cancel(w);
  ASSERT_EQ(col.n, 30);
  for (int i = 0; i < 30; i++) {
    snprintf(v, sizeof v, "v%d", i);
    ASSERT_STREQ(col.r[i].val, v);
    ASSERT_EQ(col.r[i].rev, revs[i]);
  }
  ASSERT_OP(col.downs, >=, 1);
  col_free(&col);
  cx_coord_close(c);
  cx_svc_etcd_destroy(&cl);
}

CASE(replies_over_the_cap_are_refused)
{
  if (!etcd_up)
    etcd_start();
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = etcd.endpoints;
  cfg.max_reply_bytes = 4096;
  struct cx_coord *c = open_with(&cfg);
  char big[8192];
  memset(big, 'b', sizeof big);
  char err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx_coord_put(c, S("/cap"), big, sizeof big, 0, NULL, err), 0);
  struct cx_coord_kvs kvs;
  ASSERT_EQ(cx_coord_get(c, S("/cap"), &kvs, err), CX_ETOOBIG);
  ASSERT_CONTAINS(err, "4096");
  put_s(c, "/small", "ok"); /* the handle is still fine */
  cx_coord_close(c);
}

/* ---- a server that answers garbage ------------------------------------- */

struct canned {
  int fd;
  const char *reply; /* the whole HTTP response */
};

static void *canned_main(void *arg)
{
  struct canned *s = arg;
  for (;;) {
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
      return NULL;
    char buf[65536];
    size_t len = 0;
    /* Read headers and the Content-Length body, then answer and close. */
    for (;;) {
      ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
      if (n <= 0)
        break;
      len += (size_t)n;
      buf[len] = '\0';
      char *end = strstr(buf, "\r\n\r\n");
      char *cl = strcasestr(buf, "content-length:");
      if (end && cl &&
          (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10) <= len)
        break;
    }
    ssize_t w = write(c, s->reply, strlen(s->reply));
    (void)w;
    close(c);
  }
}

static void canned_start(struct canned *s, char *ep, size_t cap)
{
  struct sockaddr_in a = {0};
  socklen_t alen = sizeof a;
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT(s->fd >= 0);
  ASSERT_EQ(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
  ASSERT_EQ(listen(s->fd, 16), 0);
  ASSERT_EQ(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
  snprintf(ep, cap, "http://127.0.0.1:%d", ntohs(a.sin_port));
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, NULL, canned_main, s), 0);
  pthread_detach(t);
}

#define HTTP200 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"

static int garbage_get(const char *body, char *err)
{
  static char reply[4096];
  snprintf(reply, sizeof reply,
           HTTP200 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
           strlen(body), body);
  struct canned s = {-1, reply};
  char ep[64];
  canned_start(&s, ep, sizeof ep);
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = ep;
  struct cx_coord *c = open_with(&cfg);
  struct cx_coord_kvs kvs;
  int rc = cx_coord_get(c, S("/k"), &kvs, err);
  if (rc == 0)
    cx_coord_kvs_free(&kvs);
  cx_coord_close(c);
  shutdown(s.fd, SHUT_RDWR);
  return rc;
}

CASE(garbage_replies_are_protocol_errors)
{
  static const char *const bodies[] = {
      "not json",
      "[1,2]",
      "{\"kvs\":{}}",
      "{\"kvs\":[7]}",
      "{\"kvs\":[{\"key\":\"!!!!\"}]}",
      "{\"kvs\":[{\"key\":\"aw==\",\"value\":\"a\"}]}",
      "{\"kvs\":[{\"key\":\"aw==\",\"mod_revision\":\"12x\"}]}",
      "{\"kvs\":[{\"key\":\"aw==\",\"version\":{}}]}",
      "{\"kvs\":[{\"key\":\"aw==\",\"lease\":\"99999999999999999999\"}]}",
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(bodies); i++) {
    char err[CX_ERR_LEN] = "";
    int rc = garbage_get(bodies[i], err);
    ASSERT_MSG(rc == CX_EPROTO, "%s -> %s (%s)", bodies[i], cx_err_name(rc),
               err);
  }
}

CASE(garbage_watch_stream_is_dropped_and_retried)
{
  /* A stream that sends a broken line: the watch must neither crash nor
   * deliver anything, and must keep retrying until cancelled. */
  static const char reply[] = HTTP200
      "Connection: close\r\n\r\n"
      "{\"result\":{\"created\":true,\"header\":{\"revision\":\"5\"}}}\n"
      "{\"result\":{\"events\":[{\"kv\":{\"key\":\"%%%\"}}]}}\n"
      "{\"result\":{\"events\":[{\"kv\":{\"key\":\"L2cvYQ==\","
      "\"mod_revision\":\"9\"}}]}}\n";
  struct canned s = {-1, reply};
  char ep[64];
  canned_start(&s, ep, sizeof ep);
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = ep;
  struct cx_coord *c = open_with(&cfg);
  struct collector col;
  col_init(&col);
  struct cx_coord_watch *w = watch_prefix(c, "/g/", 0, &col);
  ASSERT_OP(col_wait(&col, &col.downs, 2, 20), >=, 2); /* retried */
  cx_coord_watch_cancel(w);
  ASSERT_EQ(col.n, 0); /* nothing after the broken event was believed */
  col_free(&col);
  cx_coord_close(c);
  shutdown(s.fd, SHUT_RDWR);
}

/* ---- TLS with client certificates --------------------------------------- */

static void sh_run(const char *dir, const char *cmd)
{
  char script[2048];
  snprintf(script, sizeof script, "cd '%s' && %s", dir, cmd);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  struct cx_test_output o;
  cx_test_run(argv, 60, &o);
  ASSERT_MSG(o.status == 0, "%s: %s%s", cmd, o.out, o.err);
  cx_test_output_free(&o);
}

/* A CA, a server cert for 127.0.0.1 and a client cert, all made here. */
static void make_certs(const char *d)
{
  static const char *const steps[] = {
      "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,"
      "clientAuth\\n' > srv.ext && printf 'extendedKeyUsage=clientAuth\\n' > "
      "cli.ext",
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=cx-test-ca",
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -keyout other.key -out other.crt -days 2 -subj /CN=other-ca",
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout srv.key -out srv.csr -subj /CN=127.0.0.1",
      "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key "
      "-CAcreateserial -out srv.crt -days 2 -extfile srv.ext",
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout cli.key -out cli.csr -subj /CN=cronix",
      "openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key "
      "-CAcreateserial -out cli.crt -days 2 -extfile cli.ext",
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(steps); i++)
    sh_run(d, steps[i]);
}

CASE(tls_client_certificate_is_required_and_used)
{
  char d[CX_SVC_PATH_LEN], err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_svc_dir_make("etcd-tls", d, sizeof d, err) == 0, "%s", err);
  make_certs(d);
  int cport = 0, pport = 0;
  ASSERT_EQ(cx_svc_port_alloc(&cport, err), 0);
  ASSERT_EQ(cx_svc_port_alloc(&pport, err), 0);
  char a[12][CX_SVC_PATH_LEN + 64];
  snprintf(a[0], sizeof a[0], "--data-dir=%s/data", d);
  snprintf(a[1], sizeof a[1], "--listen-client-urls=https://127.0.0.1:%d",
           cport);
  snprintf(a[2], sizeof a[2], "--advertise-client-urls=https://127.0.0.1:%d",
           cport);
  snprintf(a[3], sizeof a[3], "--listen-peer-urls=http://127.0.0.1:%d", pport);
  snprintf(a[4], sizeof a[4],
           "--initial-advertise-peer-urls=http://127.0.0.1:%d", pport);
  snprintf(a[5], sizeof a[5], "--initial-cluster=t=http://127.0.0.1:%d", pport);
  snprintf(a[6], sizeof a[6], "--cert-file=%s/srv.crt", d);
  snprintf(a[7], sizeof a[7], "--key-file=%s/srv.key", d);
  snprintf(a[8], sizeof a[8], "--trusted-ca-file=%s/ca.crt", d);
  snprintf(a[9], sizeof a[9], "%s/etcd.log", d);
  const char *argv[] = {"etcd",
                        "--name=t",
                        a[0],
                        a[1],
                        a[2],
                        a[3],
                        a[4],
                        a[5],
                        a[6],
                        a[7],
                        a[8],
                        "--client-cert-auth",
                        "--log-level=warn",
                        NULL};
  static struct cx_svc_proc p;
  ASSERT_MSG(cx_svc_proc_set_argv(&p, "etcd tls", a[9], argv, err) == 0, "%s",
             err);
  ASSERT_MSG(cx_svc_proc_start(&p, err) == 0, "%s", err);

  char ep[64], ca[CX_SVC_PATH_LEN + 16], crt[CX_SVC_PATH_LEN + 16],
      key[CX_SVC_PATH_LEN + 16], other[CX_SVC_PATH_LEN + 16];
  snprintf(ep, sizeof ep, "https://127.0.0.1:%d", cport);
  snprintf(ca, sizeof ca, "%s/ca.crt", d);
  snprintf(crt, sizeof crt, "%s/cli.crt", d);
  snprintf(key, sizeof key, "%s/cli.key", d);
  snprintf(other, sizeof other, "%s/other.crt", d);
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = ep;
  cfg.ca_file = ca;
  cfg.cert_file = crt;
  cfg.key_file = key;
  struct cx_coord *c = open_with(&cfg);
  int rc;
  cx_mono until = cx_mono_now() + 30 * 1000000LL;
  while ((rc = cx_coord_put(c, S("/tls"), S("yes"), 0, NULL, err)) != 0 &&
         cx_mono_now() < until)
    cx_sleep_us(200000);
  if (rc != 0)
    cx_svc_log_dump(a[9], 4096);
  ASSERT_MSG(rc == 0, "put over TLS: %s", err);
  char *v = get_s(c, "/tls");
  ASSERT_STREQ(v, "yes");
  cx_free(v);
  struct collector col;
  col_init(&col);
  struct cx_coord_watch *w = watch_prefix(c, "/tls", 1, &col);
  ASSERT_EQ(col_wait(&col, &col.n, 1, 20), 1);
  cx_coord_watch_cancel(w);
  col_free(&col);
  cx_coord_close(c);

  /* Without the client certificate the server refuses the handshake. */
  cfg.cert_file = cfg.key_file = NULL;
  c = open_with(&cfg);
  ASSERT_EQ(cx_coord_put(c, S("/tls"), S("no"), 0, NULL, err), CX_EUNAVAIL);
  cx_coord_close(c);
  /* A server not signed by the configured CA is not trusted. */
  cfg.cert_file = crt;
  cfg.key_file = key;
  cfg.ca_file = other;
  c = open_with(&cfg);
  ASSERT_EQ(cx_coord_put(c, S("/tls"), S("no"), 0, NULL, err), CX_EUNAVAIL);
  ASSERT_CONTAINS(err, "SSL");
  cx_coord_close(c);
  cx_svc_proc_stop(&p, 5000, NULL);
}

CASE(idle_watch_progress_survives_compaction_without_resync)
{
  /* The watched prefix is quiet while the rest of the store moves on and
   * gets compacted; progress notifications (every 500 ms here) keep the
   * watch's resume point current, so a reconnect needs no re-list. */
  struct cx_coord *c = case_open();
  struct collector col;
  col_init(&col);
  struct cx_coord_watch *w =
      watch_prefix(c, "/idle/", current_rev(c) + 1, &col);
  put_s(c, "/idle/a", "1");
  ASSERT_EQ(col_wait(&col, &col.n, 1, 20), 1);
  int64_t now = 0;
  for (int i = 0; i < 20; i++)
    now = put_s(c, "/busy", "x");
  cx_sleep_us(3000000); /* several progress notifications */
  char err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_coord_compact(c, now, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_etcd_restart(&etcd, err) == 0, "%s", err);
  int64_t next = put_s(c, "/idle/b", "2");
  ASSERT_EQ(col_wait(&col, &col.n, 2, 30), 2);
  ASSERT_EQ(col.r[1].rev, next);
  ASSERT_OP(col.downs, >=, 1);
  ASSERT_EQ(col.resyncs, 0);
  cx_coord_watch_cancel(w);
  col_free(&col);
  cx_coord_close(c);
}
