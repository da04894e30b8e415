/*
 * node_run_bench: does a node keep up (issue 12)? An admin and a node in
 * this process, as `cronix standalone` runs them (SQLite, in-process
 * coordination) and, in "cluster" mode, on a real MariaDB and etcd over
 * loopback; jobs are added and deleted through the HTTP API, and every
 * number is read back from the run log:
 *
 *   floor   processes started per second by a bare C loop (64 threads,
 *           fork + exec + wait of `/bin/sh -c true`), measured first, in
 *           this run;
 *   light   100 jobs `S/10 * * * * *` (S = 0..9: ten jobs due each
 *           second): lateness = start_time - scheduled_at, where
 *           start_time is the moment the job's process was spawned;
 *   burst   N = floor / 2 jobs `* * * * * *` (all due at the same
 *           instant), concurrency forbid (the default): fires without a
 *           row, skipped fires, lateness; meanwhile POST /job/search page 1,
 *           and at the end POST /job/del of all N jobs, timed;
 *   1000    1000 jobs `* * * * * *` (forbid): the same numbers as the
 *           burst plus the node's queue, with no target (what happens);
 *   steady  three times as many `allow` jobs `* * * * * *` as the floor (more
 *           than can run: the node's own limit shows): runs finished per
 *           second, then (after deleting them and draining) every run
 *           the node started has its row and none is left "running".
 *
 *   node_run_bench [standalone|cluster]...   (default: both)
 *   BENCH_LIGHT_SECONDS (30), BENCH_BURST_SECONDS (60),
 *   BENCH_STEADY_SECONDS (20), BENCH_THOUSAND_SECONDS (20), BENCH_BURST_N
 * (floor / 2), BENCH_STEADY_JOBS (3 x floor): fixed sizes, to compare two
 * builds
 *
 * Prints a Markdown table on stdout (progress on stderr).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin/admin.h"
#include "config/config.h"
#include "coord/coord.h"
#include "cron/cron.h"
#include "node/node.h"
#include "store/store-int.h"
#include "store/store.h"
#include "support/services.h"
#include "util/util.h"

#include "bench.h"

BENCH_TEST_TMPDIR

#define DIE(...) bench_die(__VA_ARGS__)
#define env_int bench_env_int

/* ---- the system under test ------------------------------------------------
 */

struct sut {
  const char *name;
  int dist;
  struct cx_svc_etcd etcd;
  struct cx_svc_mariadb db;
  struct cx_store *store;
  struct cx_coord *coord;
  struct cx_config cfg;
  struct cx_noded *node;
  struct cx_admin *admin;
  char token[CX_STORE_TOKEN_LEN];
  char base[64];
  char uuid[37];
};

static void sut_up(struct sut *s)
{
  char err[CX_ERR_LEN] = "", url[600], dir[400];
  struct cx_coord_cfg cc = {.max_reply_bytes = (size_t)64 << 20};
  snprintf(dir, sizeof dir, "%s/%s", bench_tmp, s->name);
  mkdir(dir, 0700);
  if (s->dist) {
    struct cx_svc_etcd_opts eo = {.progress_notify_interval = "5s"};
    if (cx_svc_etcd_start(&s->etcd, &eo, err) != 0)
      DIE("etcd: %s", err);
    if (cx_svc_mariadb_start(&s->db, NULL, err) != 0)
      DIE("mariadb: %s", err);
    snprintf(url, sizeof url, "%s?pool=16", s->db.url);
    cc.endpoints = s->etcd.endpoints;
  } else {
    snprintf(url, sizeof url, "sqlite://%s/cronix.db", dir);
  }
  if (cx_store_open(url, &s->store, err) != 0)
    DIE("store: %s", err);
  if (cx_coord_open(&cc, &s->coord, err) != 0)
    DIE("coord: %s", err);
  if (cx_config_init(&s->cfg) != 0 ||
      cx_config_set(&s->cfg, "server.data_dir", dir, err) != 0 ||
      cx_config_set(&s->cfg, "store.url", url, err) != 0 ||
      cx_config_set(&s->cfg, "system.default_timezone", "UTC", err) != 0 ||
      cx_config_finish(&s->cfg, err) != 0)
    DIE("config: %s", err);
  struct cx_noded_opts no = {
      .cfg = &s->cfg, .store = s->store, .coord = s->coord, .version = "b"};
  if (cx_noded_create(&no, &s->node, err) != 0 ||
      cx_noded_start(s->node, err) != 0)
    DIE("node: %s", err);
  snprintf(s->uuid, sizeof s->uuid, "%s", cx_noded_uuid(s->node));
  struct cx_admin_opts ao = {.cfg = &s->cfg,
                             .store = s->store,
                             .coord = s->coord,
                             .listen = "127.0.0.1:0"};
  if (cx_admin_create(&ao, &s->admin, err) != 0 ||
      cx_admin_start(s->admin, err) != 0)
    DIE("admin: %s", err);
  snprintf(s->base, sizeof s->base, "http://127.0.0.1:%u",
           cx_admin_port(s->admin));
  if (bench_operator_token(s->store, s->token, err) != 0)
    DIE("user: %s", err);
}

static void sut_down(struct sut *s)
{
  cx_admin_destroy(s->admin);
  cx_noded_destroy(s->node);
  cx_coord_close(s->coord);
  cx_store_close(s->store);
  cx_config_free(&s->cfg);
  if (s->dist) {
    cx_svc_mariadb_destroy(&s->db);
    cx_svc_etcd_destroy(&s->etcd);
  }
}

/* POST path with body; returns the envelope's data (caller decrefs) or
 * dies. *ms gets the round trip. */
static json_t *api(struct sut *s, const char *path, const char *body,
                   double *ms)
{
  static char resp[1 << 20];
  char url[128], err[CX_ERR_LEN] = "";
  long status = 0;
  snprintf(url, sizeof url, "%s%s", s->base, path);
  cx_mono t0 = cx_mono_now();
  int rc = cx_svc_http_auth("POST", url, s->token, body, 120000, &status, resp,
                            sizeof resp, err);
  if (ms)
    *ms = (double)(cx_mono_now() - t0) / 1000;
  if (rc != 0 || status != 200)
    DIE("%s: %s (HTTP %ld) %.300s", path, err, status, resp);
  json_t *o = json_loads(resp, 0, NULL);
  if (o == NULL || json_integer_value(json_object_get(o, "code")) != 0)
    DIE("%s: %.300s", path, resp);
  json_t *d = json_incref(json_object_get(o, "data"));
  json_decref(o);
  return d;
}

/* Adds n cmd jobs `true` on the node; spec_of(i) gives each one's spec.
 * Returns the ids (contiguous: one admin adds them in turn). */
static int64_t *add_jobs(struct sut *s, int n, const char *tag,
                         const char *spec_fmt, int mod, int allow)
{
  int64_t *ids = calloc((size_t)n, sizeof *ids);
  char body[1024], spec[64];
  for (int i = 0; i < n; i++) {
    snprintf(spec, sizeof spec, spec_fmt, mod ? i % mod : 0);
    snprintf(body, sizeof body,
             "{\"name\":\"%s%d\",\"command\":\"true\",\"type\":1,"
             "\"spec\":\"%s\",\"allocation\":1,\"run_on\":\"%s\"%s}",
             tag, i, spec, s->uuid, allow ? ",\"concurrency\":\"allow\"" : "");
    json_t *d = api(s, "/job/add", body, NULL);
    ids[i] = json_integer_value(json_object_get(d, "id"));
    json_decref(d);
    if (i > 0 && ids[i] != ids[i - 1] + 1)
      DIE("job ids not contiguous");
  }
  return ids;
}

/* POST /job/del of all ids, 1000 per request (the API's limit): the
 * time of all requests. */
static double del_jobs(struct sut *s, const int64_t *ids, int n)
{
  double total = 0;
  for (int at = 0; at < n; at += 1000) {
    struct cx_buf b = {0};
    double ms = 0;
    cx_buf_puts(&b, "{\"ids\":[");
    for (int i = at; i < n && i < at + 1000; i++)
      cx_buf_printf(&b, "%s%lld", i > at ? "," : "", (long long)ids[i]);
    cx_buf_puts(&b, "]}");
    json_decref(api(s, "/job/del", b.data, &ms));
    cx_buf_free(&b);
    total += ms;
  }
  return total;
}

/* Waits until the node has no run queued or running (at most secs). */
static void drain(struct sut *s, int secs)
{
  struct cx_noded_stats st;
  for (int i = 0; i < secs * 10; i++) {
    cx_noded_stats_get(s->node, &st);
    if (st.active == 0)
      return;
    cx_sleep_us(100000);
  }
  fprintf(stderr, "  still %llu runs active after %d s\n",
          (unsigned long long)st.active, secs);
}

static void sleep_to_second(void)
{
  int64_t ms = cx_wall_ms();
  cx_sleep_us((1000 - ms % 1000) * 1000 + 20000);
}

/* ---- the run log ------------------------------------------------------------
 */

static const struct cx__stmt q_rows = {
    CX__STMT_MAX - 8, /* a tool id (store-int.h) */
    {"SELECT job_id, scheduled_at, start_time, status FROM cronix_job_log"
     " WHERE job_id >= ? AND job_id <= ? AND scheduled_at >= ? AND"
     " scheduled_at < ?",
     NULL},
    CX__Q_RETRY};

struct tally {
  int64_t lo, from;
  int span, njobs;
  int mod; /* 0: every job due every second; else due when s % mod == j % mod */
  unsigned char *seen;
  int64_t rows, skipped, running, dups, missed;
  struct lat late;
};

static int tally_row(void *ctx, const struct cx__val *c, int n)
{
  struct tally *t = ctx;
  if (n != 4)
    return -EIO;
  int64_t j = c[0].i - t->lo, sec = c[1].i - t->from;
  t->rows++;
  if (t->seen && j >= 0 && j < t->njobs && sec >= 0 && sec < t->span) {
    unsigned char *k = &t->seen[j * t->span + sec];
    if (*k)
      t->dups++;
    *k = 1;
  }
  if (strcmp(c[3].s, "skipped") == 0)
    t->skipped++;
  else if (strcmp(c[3].s, "running") == 0)
    t->running++;
  else if (strcmp(c[3].s, "missed") == 0)
    t->missed++;
  else
    lat_add(&t->late, (double)(c[2].i - c[1].i * 1000));
  return 0;
}

/* Reads the rows of jobs [lo, lo + njobs) due in [from, to). */
static void tally(struct sut *s, struct tally *t, int64_t lo, int njobs,
                  int64_t from, int64_t to, int mod)
{
  char err[CX_ERR_LEN] = "";
  memset(t, 0, sizeof *t);
  pthread_mutex_init(&t->late.mu, NULL);
  t->lo = lo;
  t->njobs = njobs;
  t->from = from;
  t->span = (int)(to - from);
  t->mod = mod;
  /* Per-fire bookkeeping only for a window of seconds (not "all"). */
  if (to - from <= 100000)
    t->seen = calloc((size_t)njobs * (size_t)t->span, 1);
  struct cx__val p[4] = {{CX__V_INT, lo, NULL, 0},
                         {CX__V_INT, lo + njobs - 1, NULL, 0},
                         {CX__V_INT, from, NULL, 0},
                         {CX__V_INT, to, NULL, 0}};
  if (s->store->ops->exec(s->store, &q_rows, p, 4, tally_row, t, NULL, err))
    DIE("rows: %s", err);
}

/* Fires due in the window without a row. */
static int64_t missing(const struct tally *t)
{
  int64_t m = 0;
  for (int j = 0; j < t->njobs; j++)
    for (int sec = 0; sec < t->span; sec++) {
      int due = t->mod == 0 || (t->from + sec) % t->mod == j % t->mod;
      if (due && !t->seen[j * t->span + sec])
        m++;
    }
  return m;
}

static int64_t expected(const struct tally *t)
{
  int64_t e = 0;
  for (int j = 0; j < t->njobs; j++)
    for (int sec = 0; sec < t->span; sec++)
      e += t->mod == 0 || (t->from + sec) % t->mod == j % t->mod;
  return e;
}

/* ---- output ---------------------------------------------------------------
 */

static void row(const struct sut *s, const char *measure, const char *value,
                const char *target, int met)
{
  printf("| %s | %s | %s | %s | %s |\n", s->name, measure, value, target,
         target[0] ? (met ? "met" : "MISSED") : "");
  fflush(stdout);
}

/* ---- scenarios
 * --------------------------------------------------------------- */

static void light(struct sut *s, int secs)
{
  const int n = 100;
  double target = s->dist ? 50 : 20;
  fprintf(stderr, "%s: light, %d jobs S/10 * * * * *, %d s\n", s->name, n,
          secs);
  int64_t *ids = add_jobs(s, n, "light", "%d/10 * * * * *", 10, 0);
  cx_sleep_us(2000000);
  sleep_to_second();
  int64_t from = cx_wall_s();
  cx_sleep_us((int64_t)secs * 1000000);
  int64_t to = cx_wall_s();
  cx_sleep_us(1000000);
  del_jobs(s, ids, n);
  drain(s, 30);
  struct tally t;
  tally(s, &t, ids[0], n, from, to, 10);
  char v[256], tg[64];
  double p99 = pct(&t.late, 99);
  snprintf(v, sizeof v,
           "p50 %.1f / p99 %.1f / max %.1f ms (%zu runs; %lld due, %lld "
           "without a row, %lld skipped)",
           pct(&t.late, 50), p99, pct(&t.late, 100), t.late.n,
           (long long)expected(&t), (long long)missing(&t),
           (long long)t.skipped);
  snprintf(tg, sizeof tg, "p99 <= %.0f ms", target);
  row(s, "light: 100 jobs `S/10 * * * * *`, start_time - scheduled_at", v, tg,
      p99 <= target);
  free(t.seen);
  free(t.late.v);
  free(ids);
}

/* n jobs `* * * * * *` (forbid) for secs: rows, lateness, the node's
 * queue, and the API meanwhile. what names the scenario in the table;
 * judged 0 = no targets (report what happens). */
static void burst(struct sut *s, const char *what, int judged, int n, int secs,
                  double floor_rate)
{
  char m[128];
  fprintf(stderr, "%s: %s, %d jobs * * * * * *, %d s\n", s->name, what, n,
          secs);
  int64_t *ids = add_jobs(s, n, "burst", "* * * * * *", 0, 0);
  cx_sleep_us(3000000);
  sleep_to_second();
  int64_t from = cx_wall_s();
  struct lat search = {.mu = PTHREAD_MUTEX_INITIALIZER};
  int64_t until = from + secs;
  /* /job/search page 1 while the node is busy, every 0.5 s in the middle
   * of the window. */
  uint64_t qmax = 0; /* runs queued or running, sampled */
  while (cx_wall_s() < until) {
    struct cx_noded_stats st;
    cx_noded_stats_get(s->node, &st);
    qmax = st.active > qmax ? st.active : qmax;
    int64_t now = cx_wall_s();
    if (now >= from + secs / 4 && now < until - secs / 4) {
      double ms;
      json_decref(api(s, "/job/search", "{\"page\":1}", &ms));
      lat_add(&search, ms);
    }
    cx_sleep_us(500000);
  }
  int64_t to = cx_wall_s();
  double del_ms = del_jobs(s, ids, n);
  drain(s, 120);
  struct tally t;
  tally(s, &t, ids[0], n, from, to, 0);
  double bound_ms = n / (0.6 * floor_rate) * 1000;
  double p99 = pct(&t.late, 99);
  int64_t miss = missing(&t);
  char v[300], tg[128];
  snprintf(v, sizeof v,
           "%lld due, %lld without a row, %lld skipped, %lld missed, %lld "
           "duplicate rows, %lld left running",
           (long long)expected(&t), (long long)miss, (long long)t.skipped,
           (long long)t.missed, (long long)t.dups, (long long)t.running);
  snprintf(m, sizeof m, "%s: fires recorded", what);
  row(s, m, v, judged ? "0 skipped, 0 without a row" : "",
      t.skipped == 0 && miss == 0 && t.dups == 0);
  snprintf(v, sizeof v, "p50 %.0f / p99 %.0f / max %.0f ms (%zu runs)",
           pct(&t.late, 50), p99, pct(&t.late, 100), t.late.n);
  snprintf(tg, sizeof tg, "p99 <= N / (0.6 x floor) = %.0f ms", bound_ms);
  snprintf(m, sizeof m, "%s: start_time - scheduled_at", what);
  row(s, m, v, judged ? tg : "", p99 <= bound_ms);
  snprintf(v, sizeof v, "max %llu", (unsigned long long)qmax);
  snprintf(m, sizeof m, "%s: runs queued or running (node), sampled", what);
  row(s, m, v, "", 1);
  snprintf(v, sizeof v, "p50 %.1f / p99 %.1f / max %.1f ms (%zu requests)",
           pct(&search, 50), pct(&search, 99), pct(&search, 100), search.n);
  snprintf(m, sizeof m, "%s: POST /job/search page 1 meanwhile", what);
  row(s, m, v, judged ? "<= 100 ms" : "", pct(&search, 100) <= 100);
  snprintf(v, sizeof v, "%.0f ms", del_ms);
  snprintf(m, sizeof m, "%s: POST /job/del of all its jobs", what);
  row(s, m, v, judged ? "<= 10 s" : "", del_ms <= 10000);
  free(t.seen);
  free(t.late.v);
  free(search.v);
  free(ids);
}

static void steady(struct sut *s, int n, int secs, double floor_rate)
{
  struct cx_noded_stats a, b, c;
  fprintf(stderr, "%s: steady, %d allow jobs * * * * * *, %d s\n", s->name, n,
          secs);
  cx_noded_stats_get(s->node, &a);
  int64_t *ids = add_jobs(s, n, "steady", "* * * * * *", 0, 1);
  cx_sleep_us(3000000);
  cx_noded_stats_get(s->node, &b);
  cx_mono t0 = cx_mono_now();
  cx_sleep_us((int64_t)secs * 1000000);
  cx_noded_stats_get(s->node, &c);
  double rate =
      (double)(c.runs - b.runs) / ((double)(cx_mono_now() - t0) / 1e6);
  del_jobs(s, ids, n);
  drain(s, 300);
  cx_noded_stats_get(s->node, &c);
  struct tally t;
  tally(s, &t, ids[0], n, 0, INT32_MAX, 0);
  free(t.seen);
  free(t.late.v);
  uint64_t started = c.runs - a.runs;
  char v[300], tg[64];
  snprintf(v, sizeof v, "%.0f runs/s (%.0f%% of the floor)", rate,
           100 * rate / floor_rate);
  snprintf(tg, sizeof tg, ">= %.0f (60%% of the floor)", 0.6 * floor_rate);
  row(s, "steady: `true` runs finished per second", v, tg,
      rate >= 0.6 * floor_rate);
  snprintf(v, sizeof v,
           "%llu runs finished by the node, %lld rows, %lld left running",
           (unsigned long long)started, (long long)t.rows,
           (long long)t.running);
  row(s, "steady: every run recorded", v, "rows = runs, 0 running",
      (uint64_t)t.rows == started && t.running == 0);
  free(ids);
}

int main(int argc, char **argv)
{
  char err[CX_ERR_LEN];
  bench_tmpdir_make("cx-node-run-bench");
  cx_log_set_level(getenv("BENCH_DEBUG") ? CX_LOG_DEBUG : CX_LOG_ERROR);
  cx_tz_set_default("UTC", err);
  int do_sa = argc < 2, do_cl = argc < 2;
  for (int i = 1; i < argc; i++) {
    do_sa |= strcmp(argv[i], "standalone") == 0;
    do_cl |= strcmp(argv[i], "cluster") == 0;
  }
  int light_s = env_int("BENCH_LIGHT_SECONDS", 30);
  int burst_s = env_int("BENCH_BURST_SECONDS", 60);
  int steady_s = env_int("BENCH_STEADY_SECONDS", 20);
  int thousand_s = env_int("BENCH_THOUSAND_SECONDS", 20);

  fprintf(stderr, "floor: fork+exec+wait of sh -c true, 64 threads, 5 s\n");
  double floor_rate = bench_spawn_floor(64, 5);
  int n = env_int("BENCH_BURST_N", (int)(floor_rate / 2));
  printf("## node run path (issue 12): admin + node in one process, jobs "
         "through the API, numbers from the run log\n\n");
  printf("bare fork+exec+wait of `/bin/sh -c true`, 64 threads (floor): "
         "%.0f processes/s; burst N = %d; %d cores\n\n",
         floor_rate, n, (int)sysconf(_SC_NPROCESSORS_ONLN));
  printf("| mode | measure | value | target | |\n|---|---|---|---|---|\n");
  fflush(stdout);
  struct sut sa = {.name = "standalone (SQLite)", .dist = 0};
  struct sut cl = {.name = "MariaDB + etcd", .dist = 1};
  struct sut *runs[2] = {do_sa ? &sa : NULL, do_cl ? &cl : NULL};
  for (int i = 0; i < 2; i++) {
    struct sut *s = runs[i];
    if (s == NULL)
      continue;
    sut_up(s);
    light(s, light_s);
    burst(s, "burst", 1, n, burst_s, floor_rate);
    burst(s, "1000 jobs every second", 0, 1000, thousand_s, floor_rate);
    steady(s, env_int("BENCH_STEADY_JOBS", (int)(3 * floor_rate)), steady_s,
           floor_rate);
    sut_down(s);
  }
  return 0;
}
