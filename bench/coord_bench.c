/*
 * coord_bench: what the coord client adds to etcd's own latency.
 *
 * Starts one etcd member (tests/support/services.h) in a private temporary
 * directory and measures, in one run:
 *
 *   raw    the etcd JSON gateway driven by a bare libcurl loop: one reused
 *          connection, request bodies base64-encoded ahead of time, replies
 *          not parsed. This is etcd's own latency over the very same
 *          transport (HTTP/1.1 + JSON gateway), the yardstick for the
 *          client's overhead;
 *   client the same puts through cx_coord_put (base64, jansson build and
 *          parse, the handle pool, error mapping);
 *   watch  put -> event in a cx_coord_watch callback;
 *   etcdctl  Debian's etcdctl (native gRPC): `check perf --load=s` (60 s,
 *          its own concurrency) and a timed loop of `etcdctl put`, with
 *          the cost of starting an etcdctl process (`etcdctl version`, no
 *          network) subtracted, since a process loop mostly measures
 *          process start-up.
 *
 * raw and client alternate in blocks so drift of the machine (fsync
 * latency, other load) hits both alike. Sequential and 4-thread runs.
 *
 *   coord_bench [--quick]     (--quick: fewer puts, no `check perf`)
 *
 * Prints a Markdown table, then key=value lines for scripts.
 */
#include <curl/curl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coord/coord.h"
#include "support/services.h"
#include "util/util.h"

#define VALUE_LEN 128
#define THREADS 4

static struct cx_svc_etcd etcd;
static char tmpdir[256];
static char value[VALUE_LEN + 1];

/* ---- stats -------------------------------------------------------------- */

struct lat {
  double *us;
  size_t n, cap;
  double wall_s; /* wall time of the run (for ops/s) */
  pthread_mutex_t mu;
};

static void lat_add(struct lat *l, double us)
{
  pthread_mutex_lock(&l->mu);
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 1024;
    l->us = realloc(l->us, l->cap * sizeof *l->us);
    if (l->us == NULL)
      abort();
  }
  l->us[l->n++] = us;
  pthread_mutex_unlock(&l->mu);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(struct lat *l, double p)
{
  if (l->n == 0)
    return NAN;
  qsort(l->us, l->n, sizeof *l->us, cmp_double);
  size_t i = (size_t)(p / 100.0 * (double)(l->n - 1) + 0.5);
  return l->us[i];
}

/* ---- raw gateway loop -----------------------------------------------------
 */

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
  (void)p;
  (void)ud;
  return s * n;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void enc(const char *in, size_t len, char *out)
{
  size_t i = 0, o = 0;
  for (; i + 2 < len; i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 |
                 (unsigned char)in[i + 2];
    out[o++] = b64[v >> 18 & 63];
    out[o++] = b64[v >> 12 & 63];
    out[o++] = b64[v >> 6 & 63];
    out[o++] = b64[v & 63];
  }
  if (i < len) {
    unsigned v = (unsigned char)in[i] << 16;
    if (i + 1 < len)
      v |= (unsigned char)in[i + 1] << 8;
    out[o++] = b64[v >> 18 & 63];
    out[o++] = b64[v >> 12 & 63];
    out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
    out[o++] = '=';
  }
  out[o] = '\0';
}

struct worker {
  int id, n, raw;
  struct lat *lat;
  struct cx_coord *c;
};

static void *raw_main(void *arg)
{
  struct worker *w = arg;
  CURL *h = curl_easy_init();
  char url[128], body[1024], k64[128], v64[256], key[64];
  struct curl_slist *hdrs =
      curl_slist_append(NULL, "Content-Type: application/json");
  snprintf(url, sizeof url, "%s/v3/kv/put", etcd.m[0].endpoint);
  enc(value, VALUE_LEN, v64);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  /* Bodies encoded before the clock starts. */
  char(*bodies)[sizeof body] = malloc((size_t)w->n * sizeof body);
  for (int i = 0; i < w->n; i++) {
    snprintf(key, sizeof key, "/bench/raw/%d/%d", w->id, i % 100);
    enc(key, strlen(key), k64);
    snprintf(bodies[i], sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k64,
             v64);
  }
  for (int i = 0; i < w->n; i++) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, bodies[i]);
    cx_mono t0 = cx_mono_now();
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK || status != 200) {
      fprintf(stderr, "raw put: %s %ld\n", curl_easy_strerror(cc), status);
      exit(1);
    }
    lat_add(w->lat, (double)(cx_mono_now() - t0));
  }
  free(bodies);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return NULL;
}

static void *client_main(void *arg)
{
  struct worker *w = arg;
  char key[64], err[CX_ERR_LEN];
  for (int i = 0; i < w->n; i++) {
    snprintf(key, sizeof key, "/bench/cx/%d/%d", w->id, i % 100);
    cx_mono t0 = cx_mono_now();
    int rc =
        cx_coord_put(w->c, key, strlen(key), value, VALUE_LEN, 0, NULL, err);
    if (rc != 0) {
      fprintf(stderr, "client put: %s\n", err);
      exit(1);
    }
    lat_add(w->lat, (double)(cx_mono_now() - t0));
  }
  return NULL;
}

/* Runs `threads` workers of n puts each; adds the wall time to l. */
static void run(struct cx_coord *c, int raw, int threads, int n, struct lat *l)
{
  pthread_t th[THREADS];
  struct worker w[THREADS];
  cx_mono t0 = cx_mono_now();
  for (int i = 0; i < threads; i++) {
    w[i] = (struct worker){i, n, raw, l, c};
    pthread_create(&th[i], NULL, raw ? raw_main : client_main, &w[i]);
  }
  for (int i = 0; i < threads; i++)
    pthread_join(th[i], NULL);
  l->wall_s += (double)(cx_mono_now() - t0) / 1e6;
}

/* ---- watch delivery ------------------------------------------------------ */

struct wstate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  long events;
  cx_mono last; /* when the latest event reached the callback */
};

static void on_event(void *arg, const struct cx_coord_event *ev)
{
  struct wstate *s = arg;
  cx_mono now = cx_mono_now();
  (void)ev;
  pthread_mutex_lock(&s->mu);
  s->events++;
  s->last = now;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void on_resync(void *arg, const struct cx_coord_kvs *kvs)
{
  (void)arg;
  (void)kvs;
}

/* Sequential: put, wait for its event, take (event time - send time). The
 * event may arrive before the put's reply; the time is taken in the
 * callback either way. */
static void bench_watch(struct cx_coord *c, int n, struct lat *out)
{
  struct wstate s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  struct cx_coord_watch_cbs cbs = {on_event, on_resync, NULL};
  struct cx_coord_watch *w = NULL;
  char err[CX_ERR_LEN];
  if (cx_coord_watch(c, "/bench/w/", 9, 0, &cbs, &s, &w, err) != 0) {
    fprintf(stderr, "watch: %s\n", err);
    exit(1);
  }
  cx_sleep_us(500000); /* let it connect */
  for (int i = 0; i < n; i++) {
    cx_mono sent = cx_mono_now();
    if (cx_coord_put(c, "/bench/w/k", 10, value, VALUE_LEN, 0, NULL, err)) {
      fprintf(stderr, "put: %s\n", err);
      exit(1);
    }
    pthread_mutex_lock(&s.mu);
    while (s.events < i + 1)
      pthread_cond_wait(&s.cv, &s.mu);
    cx_mono got = s.last;
    pthread_mutex_unlock(&s.mu);
    lat_add(out, (double)(got - sent));
  }
  cx_coord_watch_cancel(w);
}

/* ---- etcdctl ------------------------------------------------------------ */

static double run_cmd_us(const char *cmd)
{
  cx_mono t0 = cx_mono_now();
  int rc = system(cmd);
  if (rc != 0) {
    fprintf(stderr, "failed: %s\n", cmd);
    exit(1);
  }
  return (double)(cx_mono_now() - t0);
}

static void etcdctl_loop(int n, double *put_us, double *start_us)
{
  char put[512], ver[256];
  snprintf(put, sizeof put,
           "ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:%d put /bench/ctl/k "
           "%s >/dev/null",
           etcd.m[0].client_port, value);
  snprintf(ver, sizeof ver, "ETCDCTL_API=3 etcdctl version >/dev/null");
  double p = 0, v = 0;
  for (int i = 0; i < n; i++) {
    p += run_cmd_us(put);
    v += run_cmd_us(ver);
  }
  *put_us = p / n;
  *start_us = v / n;
}

/* `etcdctl check perf --load=s`: its throughput and slowest request. */
static void check_perf(double *wps, double *slowest_s)
{
  char cmd[256], line[512];
  snprintf(cmd, sizeof cmd,
           "ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:%d check perf "
           "--load=s --auto-compact 2>&1",
           etcd.m[0].client_port);
  FILE *f = popen(cmd, "r");
  *wps = NAN;
  *slowest_s = NAN;
  if (f == NULL)
    return;
  while (fgets(line, sizeof line, f)) {
    char *p;
    if ((p = strstr(line, "Throughput is ")))
      *wps = strtod(p + 14, NULL);
    if ((p = strstr(line, "Slowest request took ")))
      *slowest_s = strtod(p + 21, NULL);
  }
  pclose(f);
}

/* ---- main --------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void cleanup(void)
{
  cx_svc_etcd_destroy(&etcd);
  if (tmpdir[0])
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void row(const char *what, struct lat *l, double base_p50,
                double base_p99)
{
  double p50 = pct(l, 50), p99 = pct(l, 99);
  printf("| %s | %zu | %.0f | %.0f | %.0f |", what, l->n, p50, p99,
         (double)l->n / l->wall_s);
  if (base_p50 > 0)
    printf(" %+.1f%% / %+.1f%% |\n", (p50 / base_p50 - 1) * 100,
           (p99 / base_p99 - 1) * 100);
  else
    printf(" |\n");
}

int main(int argc, char **argv)
{
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  int rounds = quick ? 2 : 5, per = quick ? 200 : 400;
  int per_thread = quick ? 200 : 500, nwatch = quick ? 200 : 1000;
  char err[CX_ERR_LEN] = "";

  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/coord_bench.XXXXXX",
           base ? base : "/tmp");
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  setenv("CX_TEST_TMPDIR", tmpdir, 1);
  atexit(cleanup);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  memset(value, 'v', VALUE_LEN);
  if (cx_svc_etcd_start(&etcd, NULL, err) != 0) {
    fprintf(stderr, "etcd: %s\n", err);
    return 1;
  }
  struct cx_coord_cfg cfg = {0};
  cfg.endpoints = etcd.endpoints;
  struct cx_coord *c = NULL;
  if (cx_coord_open(&cfg, &c, err) != 0) {
    fprintf(stderr, "open: %s\n", err);
    return 1;
  }

  struct lat warm = {.mu = PTHREAD_MUTEX_INITIALIZER};
  run(c, 1, 1, 200, &warm);
  run(c, 0, 1, 200, &warm);

  struct lat raw1 = {.mu = PTHREAD_MUTEX_INITIALIZER};
  struct lat cx1 = {.mu = PTHREAD_MUTEX_INITIALIZER};
  struct lat raw4 = {.mu = PTHREAD_MUTEX_INITIALIZER};
  struct lat cx4 = {.mu = PTHREAD_MUTEX_INITIALIZER};
  for (int r = 0; r < rounds; r++) {
    run(c, 1, 1, per, &raw1);
    run(c, 0, 1, per, &cx1);
  }
  for (int r = 0; r < rounds; r++) {
    run(c, 1, THREADS, per_thread / rounds * 2, &raw4);
    run(c, 0, THREADS, per_thread / rounds * 2, &cx4);
  }
  struct lat wl = {.mu = PTHREAD_MUTEX_INITIALIZER};
  bench_watch(c, nwatch, &wl);
  wl.wall_s = 1e300; /* ops/s is meaningless for this row */

  double ctl_put = 0, ctl_start = 0, wps = NAN, slowest = NAN;
  etcdctl_loop(quick ? 10 : 40, &ctl_put, &ctl_start);
  if (!quick)
    check_perf(&wps, &slowest);

  double b50 = pct(&raw1, 50), b99 = pct(&raw1, 99);
  double b450 = pct(&raw4, 50), b499 = pct(&raw4, 99);
  printf("## coord: etcd put and watch latency (1 etcd %s member, "
         "%d-byte values, %d cores)\n\n",
         "3.4", VALUE_LEN, (int)sysconf(_SC_NPROCESSORS_ONLN));
  printf("| what | ops | p50 µs | p99 µs | ops/s | client vs raw "
         "(p50 / p99) |\n|---|---:|---:|---:|---:|---:|\n");
  row("raw gateway, 1 conn (etcd's own)", &raw1, 0, 0);
  row("cx_coord_put, 1 thread", &cx1, b50, b99);
  row("raw gateway, 4 conns", &raw4, 0, 0);
  row("cx_coord_put, 4 threads", &cx4, b450, b499);
  printf("| watch delivery (put -> callback) | %zu | %.0f | %.0f | - | |\n",
         wl.n, pct(&wl, 50), pct(&wl, 99));
  printf("| etcdctl put loop (mean, minus process start %.0f µs) | %d | "
         "%.0f | - | - | |\n",
         ctl_start, quick ? 10 : 40, ctl_put - ctl_start);
  if (!quick)
    printf("| etcdctl check perf --load=s (gRPC, 50 clients, paced at 150 "
           "writes/s) | - | - | "
           "slowest %.0f | %.0f | |\n",
           slowest * 1e6, wps);
  printf("\nclient_p50_overhead_pct=%.1f\nclient_p99_overhead_pct=%.1f\n",
         (pct(&cx1, 50) / b50 - 1) * 100, (pct(&cx1, 99) / b99 - 1) * 100);
  printf("client4_p50_overhead_pct=%.1f\n", (pct(&cx4, 50) / b450 - 1) * 100);
  printf("watch_p50_us=%.0f\nwatch_p99_us=%.0f\n", pct(&wl, 50), pct(&wl, 99));
  cx_coord_close(c);
  free(raw1.us);
  free(cx1.us);
  free(raw4.us);
  free(cx4.us);
  free(wl.us);
  free(warm.us);
  return 0;
}
