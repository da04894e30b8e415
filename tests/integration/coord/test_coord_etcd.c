/*
 * coord against a real etcd (started per test on loopback by
 * tests/support/services.h): the shared suite of tests/unit/coord/cases.inc,
 * then what only a real server can show — restarts and compaction under a
 * live watch, a paused server (silent watch, keep-alive gap), auth, bad and
 * dead endpoints, fail-over.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "coord/coord.h"
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
