/*
 * live_bench: live output (issue 15) on real `cronix` processes over
 * loopback, measuring
 *
 *   latency   a job prints a line holding the wall-clock ns at which it
 *             wrote it (`date +%s%N`), every 20 ms, 200 lines; an SSE
 *             client of GET /job/output?follow=1 takes, per line, its
 *             arrival time minus that stamp: p50 / p99 / max;
 *   fan-out   a job writing ~1 MB/s for ~4 s (48 KiB, then 50 ms sleep,
 *             80 times), followed by 100 SSE clients at once: its run time
 *             (the run row's end - start) next to the same job with no
 *             follower, the CPU seconds the admin and node processes used
 *             during the run, their peak RSS (VmHWM), and the bytes each
 *             follower received or was told it missed.
 *
 *   live_bench CRONIX_BIN standalone|cluster
 *
 * cluster: etcd + MariaDB (tests/support/services.h), `cronix admin` and
 * `cronix node --listen` with a cluster.secret. Prints "key value" lines.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "support/services.h"
#include "util/util.h"

#include "bench.h"

BENCH_TEST_TMPDIR

#define DIE(...) bench_die(__VA_ARGS__)

#define SECRET "bench-cluster-secret-0123456789"
#define FOLLOWERS 100

static unsigned g_port;
static char g_node_uuid[64];
static char g_tok[160];

/* ---- API calls (libcurl) --------------------------------------------------
 */

static size_t sink(char *p, size_t size, size_t n, void *ctx)
{
  cx_buf_append(ctx, p, size * n);
  return size * n;
}

static json_t *api(const char *path, const char *body)
{
  char url[512], auth[200];
  struct cx_buf b = {0};
  snprintf(url, sizeof url, "http://127.0.0.1:%u%s", g_port, path);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", g_tok);
  CURL *c = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, auth);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  if (body != NULL)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  long st = 0;
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  if (st != 200)
    fprintf(stderr, "live_bench: %s: HTTP %ld %.*s\n", path, st, (int)b.len,
            b.data ? b.data : "");
  json_t *j = st == 200 ? json_loadb(b.data, b.len, 0, NULL) : NULL;
  cx_buf_free(&b);
  json_t *d = j ? json_incref(json_object_get(j, "data")) : NULL;
  json_decref(j);
  return d;
}

static int64_t job_once(const char *name, const char *cmd)
{
  json_t *o =
      json_pack("{s:s, s:s, s:i, s:s, s:s, s:i, s:s}", "name", name, "spec",
                "0 0 0 1 1 *", "type", 1, "command", cmd, "timezone", "UTC",
                "allocation", 1, "run_on", g_node_uuid);
  char *body = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  json_t *d = api("/job/add", body);
  free(body);
  if (d == NULL)
    DIE("/job/add failed");
  int64_t job = json_integer_value(json_object_get(d, "id"));
  json_decref(d);
  char b[64];
  snprintf(b, sizeof b, "{\"job_id\":%lld}", (long long)job);
  json_decref(api("/job/once", b));
  for (int i = 0; i < 400; i++) {
    d = api("/job/running", b);
    json_t *first = json_array_get(json_object_get(d, "list"), 0);
    int64_t run =
        first ? json_integer_value(json_object_get(first, "run_id")) : 0;
    json_decref(d);
    if (run > 0)
      return run;
    usleep(10 * 1000);
  }
  DIE("run of %s never listed", name);
}

/* Waits for the run to end; its run time in ms. */
static int64_t run_ms(int64_t run)
{
  char path[64];
  snprintf(path, sizeof path, "/job/run?id=%lld", (long long)run);
  for (int i = 0; i < 600; i++) {
    json_t *d = api(path, NULL);
    int64_t end = json_integer_value(json_object_get(d, "end_time"));
    int64_t start = json_integer_value(json_object_get(d, "start_time"));
    json_decref(d);
    if (end > 0)
      return end - start;
    usleep(100 * 1000);
  }
  DIE("run %lld never ended", (long long)run);
}

/* ---- SSE followers (raw sockets, HTTP/1.0) --------------------------------
 */

struct follower {
  int fd;
  struct cx_buf in;
  size_t at;
  int head_done, ended;
  int got_end; /* the end (or lost) event came */
  uint64_t bytes, missed;
};

/* Follower i connects from 127.0.1.(1 + i / 32): the admin allows 64
 * connections per address (server per-IP cap). */
static void follow_open(struct follower *f, int64_t run, int i)
{
  char req[512];
  memset(f, 0, sizeof *f);
  f->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in src = {.sin_family = AF_INET};
  src.sin_addr.s_addr = htonl(0x7f000101u + (unsigned)(i / 32));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&src, sizeof src) != 0 ||
      connect(f->fd, (struct sockaddr *)&a, sizeof a) != 0)
    DIE("connect: %s", strerror(errno));
  int n = snprintf(req, sizeof req,
                   "GET /job/output?run_id=%lld&follow=1 HTTP/1.0\r\n"
                   "Authorization: Bearer %s\r\n\r\n",
                   (long long)run, g_tok);
  if (write(f->fd, req, (size_t)n) != n)
    DIE("write");
}

/* Calls on_line(line, arrival ns) for each output line, counts bytes and
 * missed; returns 0 at the end event or close. */
typedef void (*line_fn)(const char *line, int64_t now_ns);

static int64_t wall_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void follow_parse(struct follower *f, line_fn fn)
{
  int64_t now = wall_ns();
  for (;;) {
    char *s = f->in.data + f->at;
    if (!f->head_done) {
      char *e = strstr(s, "\r\n\r\n");
      if (e == NULL)
        return;
      f->head_done = 1;
      f->at = (size_t)(e + 4 - f->in.data);
      continue;
    }
    char *e = strstr(s, "\n\n");
    if (e == NULL)
      return;
    *e = '\0';
    f->at = (size_t)(e + 2 - f->in.data);
    if (strncmp(s, "event: end", 10) == 0 || strncmp(s, "event: lost", 11) == 0)
      f->ended = f->got_end = 1;
    char *d = strstr(s, "\ndata: ");
    if (d == NULL)
      continue;
    if (strncmp(s, "event: cut", 10) == 0) {
      char *m = strstr(d, "\"missed\":");
      if (m)
        f->missed += strtoull(m + 9, NULL, 10);
      continue;
    }
    if (strncmp(s, "event: output", 13) != 0)
      continue;
    json_t *j = json_loads(d + 7, JSON_DECODE_ANY, NULL);
    const char *t = json_string_value(j);
    f->bytes += json_string_length(j);
    for (const char *p = t; fn && p && *p;) {
      const char *nl = strchr(p, '\n');
      char line[64];
      size_t len = nl ? (size_t)(nl - p) : strlen(p);
      if (len < sizeof line) {
        memcpy(line, p, len);
        line[len] = '\0';
        fn(line, now);
      }
      p = nl ? nl + 1 : NULL;
    }
    json_decref(j);
  }
}

/* Reads every follower until each has its end event (or 60 s pass). */
static void follow_run(struct follower *fs, int n, line_fn fn)
{
  struct pollfd *p = calloc((size_t)n, sizeof *p);
  int64_t until = cx_wall_ms() + 60000;
  for (;;) {
    int open = 0;
    for (int i = 0; i < n; i++) {
      p[i].fd = fs[i].ended ? -1 : fs[i].fd;
      p[i].events = POLLIN;
      open += !fs[i].ended;
    }
    if (open == 0 || cx_wall_ms() > until)
      break;
    if (poll(p, (nfds_t)n, 1000) <= 0)
      continue;
    for (int i = 0; i < n; i++) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      char b[65536];
      ssize_t r = read(fs[i].fd, b, sizeof b);
      if (r <= 0) {
        fs[i].ended = 1;
        continue;
      }
      cx_buf_append(&fs[i].in, b, (size_t)r);
      follow_parse(&fs[i], fn);
    }
  }
  for (int i = 0; i < n; i++) {
    close(fs[i].fd);
    cx_buf_free(&fs[i].in);
  }
  free(p);
}

/* ---- latency ------------------------------------------------------------- */

static double g_lat[4096];
static int g_nlat;

static void on_line(const char *line, int64_t now_ns)
{
  char *end;
  long long ts = strtoll(line, &end, 10);
  if (end != line && *end == '\0' && ts > 0 && g_nlat < 4096)
    g_lat[g_nlat++] = (double)(now_ns - ts) / 1e6;
}

/* ---- processes ------------------------------------------------------------
 */

static struct cx_svc_proc g_admin, g_node;
static struct cx_svc_etcd g_etcd;
static struct cx_svc_mariadb g_db;

static void start(struct cx_svc_proc *p, const char *name,
                  const char *const *argv)
{
  char err[CX_ERR_LEN], log[512];
  snprintf(log, sizeof log, "%s/%s.log", bench_tmp, name);
  if (cx_svc_proc_set_argv(p, name, log, argv, err) != 0 ||
      cx_svc_proc_start(p, err) != 0)
    DIE("%s: %s", name, err);
}

/* utime + stime of pid, in seconds. */
static double cpu_s(pid_t pid)
{
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
             &st) != 2)
    return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long hwm_kb(pid_t pid)
{
  char path[64], line[256];
  long kb = 0;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0)
      kb = atol(line + 6);
  if (f)
    fclose(f);
  return kb;
}

static void read_token(const char *dir)
{
  char path[600], line[512];
  snprintf(path, sizeof path, "%s/initial-admin.txt", dir);
  for (int i = 0; i < 300; i++) {
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
      if (sscanf(line, "token = %159s", g_tok) == 1) {
        fclose(f);
        return;
      }
    if (f)
      fclose(f);
    usleep(50 * 1000);
  }
  DIE("no token in %s", path);
}

static int free_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &l) != 0)
    DIE("free port");
  close(fd);
  return ntohs(a.sin_port);
}

int main(int argc, char **argv)
{
  char err[CX_ERR_LEN], listen[64], adir[300], ndir[300];
  if (argc != 3)
    DIE("usage: live_bench CRONIX_BIN standalone|cluster");
  int cluster = strcmp(argv[2], "cluster") == 0;
  bench_tmpdir_make("cx-live-bench");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  g_port = (unsigned)free_port();
  snprintf(listen, sizeof listen, "127.0.0.1:%u", g_port);
  snprintf(adir, sizeof adir, "%s/admin", bench_tmp);
  snprintf(ndir, sizeof ndir, "%s/node", bench_tmp);
  mkdir(adir, 0700);
  mkdir(ndir, 0700);
  if (!cluster) {
    const char *av[] = {argv[1],    "standalone", "--data-dir", adir,
                        "--listen", listen,       NULL};
    start(&g_admin, "standalone", av);
  } else {
    if (cx_svc_etcd_start(&g_etcd, NULL, err) != 0)
      DIE("etcd: %s", err);
    if (cx_svc_mariadb_start(&g_db, NULL, err) != 0)
      DIE("mariadb: %s", err);
    const char *av[] = {argv[1],      "admin",
                        "--data-dir", adir,
                        "--listen",   listen,
                        "--store",    g_db.url,
                        "--etcd",     g_etcd.endpoints,
                        "--set",      "system.cmd_auto_allocation=true",
                        "--set",      "cluster.secret=" SECRET,
                        NULL};
    start(&g_admin, "admin", av);
    const char *nv[] = {
        argv[1],    "node",        "--data-dir", ndir,
        "--store",  g_db.url,      "--etcd",     g_etcd.endpoints,
        "--listen", "127.0.0.1:0", "--set",      "cluster.secret=" SECRET,
        NULL};
    start(&g_node, "node", nv);
  }
  read_token(adir);
  /* The node must be alive before jobs are placed. */
  for (int i = 0; i < 200; i++) {
    json_t *d = api("/node/search", "{}");
    const char *u = json_string_value(
        json_object_get(json_array_get(json_object_get(d, "list"), 0), "uuid"));
    if (u != NULL)
      snprintf(g_node_uuid, sizeof g_node_uuid, "%s", u);
    json_decref(d);
    if (u != NULL)
      break;
    usleep(100 * 1000);
  }
  pid_t node_pid = cluster ? g_node.pid : g_admin.pid;

  /* Latency. */
  int64_t run = job_once("latency", "i=0; while [ $i -lt 200 ]; do date "
                                    "+%s%N; sleep 0.02; i=$((i+1)); done");
  struct follower one;
  follow_open(&one, run, 0);
  follow_run(&one, 1, on_line);
  run_ms(run);
  qsort(g_lat, (size_t)g_nlat, sizeof *g_lat, bench_cmp_d);
  printf("lines %d\n", g_nlat);
  if (g_nlat > 0) {
    printf("latency_p50_ms %.1f\n", g_lat[g_nlat / 2]);
    printf("latency_p99_ms %.1f\n", g_lat[(g_nlat * 99) / 100]);
    printf("latency_max_ms %.1f\n", g_lat[g_nlat - 1]);
  }

  /* Fan-out: the chatty job alone, then with 100 followers. */
  const char *chatty = "i=0; while [ $i -lt 80 ]; do head -c 49152 /dev/zero "
                       "| tr '\\0' x; echo; sleep 0.05; i=$((i+1)); done";
  int64_t r0 = job_once("chatty-alone", chatty);
  int64_t alone = run_ms(r0);
  double a0 = cpu_s(g_admin.pid), n0 = cluster ? cpu_s(node_pid) : 0;
  int64_t r1 = job_once("chatty-followed", chatty);
  struct follower *fs = calloc(FOLLOWERS, sizeof *fs);
  for (int i = 0; i < FOLLOWERS; i++)
    follow_open(&fs[i], r1, i);
  follow_run(fs, FOLLOWERS, NULL);
  int64_t followed = run_ms(r1);
  double a1 = cpu_s(g_admin.pid), n1 = cluster ? cpu_s(node_pid) : 0;
  uint64_t minb = UINT64_MAX, maxm = 0, sumb = 0;
  int ended = 0;
  for (int i = 0; i < FOLLOWERS; i++) {
    ended += fs[i].got_end;
    minb = fs[i].bytes < minb ? fs[i].bytes : minb;
    maxm = fs[i].missed > maxm ? fs[i].missed : maxm;
    sumb += fs[i].bytes;
  }
  printf("job_alone_ms %lld\n", (long long)alone);
  printf("job_followed_ms %lld\n", (long long)followed);
  printf("followers %d\n", FOLLOWERS);
  printf("follower_bytes_min %llu\n", (unsigned long long)minb);
  printf("follower_bytes_avg %llu\n", (unsigned long long)(sumb / FOLLOWERS));
  printf("follower_missed_max %llu\n", (unsigned long long)maxm);
  printf("followers_ended %d\n", ended);
  printf("admin_cpu_s %.2f\n", a1 - a0);
  printf("admin_hwm_mb %.1f\n", (double)hwm_kb(g_admin.pid) / 1024);
  if (cluster) {
    printf("node_cpu_s %.2f\n", n1 - n0);
    printf("node_hwm_mb %.1f\n", (double)hwm_kb(node_pid) / 1024);
  }
  free(fs);
  cx_svc_proc_stop(&g_node, 10000, err);
  cx_svc_proc_stop(&g_admin, 10000, err);
  if (cluster) {
    cx_svc_mariadb_destroy(&g_db);
    cx_svc_etcd_destroy(&g_etcd);
  }
  return bench_tmpdir_remove() == 0 ? 0 : 1; /* data dirs and logs */
}
