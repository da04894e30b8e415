/*
 * node_bench: the execution node on real etcd + MariaDB over loopback
 * (tests/support/services.h), the node in this process (so its fire hook
 * can be read), measuring in one run:
 *
 *   etcd floor   put -> watch callback of a raw cx_coord watch;
 *   once->start  once key put -> the job's process writes a line into a
 *                FIFO this program reads (the process has started and run
 *                its first command); through the node's watch, the claim in
 *                MariaDB, fork+exec of the shell;
 *   fire accuracy  (instant the node hands a fire to its pool) - (the
 *                scheduled instant), 1000 jobs "* * * * * *";
 *   runs/s       runs finished per second (claim + exec `true` + finish in
 *                MariaDB) with 3000 fires offered per second, next to a bare
 *                fork+exec+wait loop of `/bin/sh -c true` in C with as many
 *                threads as the node has workers (the floor);
 *   RSS          node memory with 100k jobs loaded and idle (VmRSS growth
 *                of this process from before the node was made).
 *
 *   node_bench [--quick]
 *
 * Prints a Markdown table on stdout (progress on stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "coord/coord.h"
#include "cron/cron.h"
#include "job/job.h"
#include "node/node.h"
#include "store/store.h"
#include "support/services.h"
#include "util/util.h"

#include "bench.h"

static char tmpdir[256];
static struct cx_svc_etcd etcd;
static struct cx_svc_mariadb db;

const char *cx_test_tmpdir(void);
const char *cx_test_tmpdir(void)
{
  return tmpdir;
}

#define DIE(...)                                                               \
  do {                                                                         \
    fprintf(stderr, "node_bench: " __VA_ARGS__);                               \
    fputc('\n', stderr);                                                       \
    exit(1);                                                                   \
  } while (0)

static double now_us(void)
{
  return (double)cx_mono_now();
}

/* ---- etcd floor ---------------------------------------------------------- */

static atomic_llong floor_got;
static double floor_sent;
static struct lat floor_lat = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void floor_ev(void *arg, const struct cx_coord_event *ev)
{
  (void)arg;
  if (ev->type == CX_COORD_EV_PUT) {
    lat_add(&floor_lat, now_us() - floor_sent);
    atomic_fetch_add(&floor_got, 1);
  }
}

static void floor_resync(void *arg, const struct cx_coord_kvs *kvs)
{
  (void)arg;
  (void)kvs;
}

static void measure_floor(struct cx_coord *c, int n)
{
  struct cx_coord_watch *w;
  char err[CX_ERR_LEN];
  struct cx_coord_watch_cbs cbs = {.event = floor_ev, .resync = floor_resync};
  if (cx_coord_watch(c, "/bench/floor/", 13, 0, &cbs, NULL, &w, err) != 0)
    DIE("watch: %s", err);
  cx_sleep_us(300000);
  for (int i = 0; i < n; i++) {
    long long want = atomic_load(&floor_got) + 1;
    floor_sent = now_us();
    if (cx_coord_put(c, "/bench/floor/k", 14, "v", 1, 0, NULL, err) != 0)
      DIE("put: %s", err);
    for (int k = 0; k < 20000 && atomic_load(&floor_got) < want; k++)
      cx_sleep_us(50);
    cx_sleep_us(5000);
  }
  cx_coord_watch_cancel(w);
}

/* ---- node ---------------------------------------------------------------- */

static struct lat fire_lat = {.mu = PTHREAD_MUTEX_INITIALIZER};
static atomic_int fire_on;

static void fire_hook(void *arg, int64_t id, int64_t at_ms, int64_t fired_ms)
{
  (void)arg;
  (void)id;
  if (atomic_load(&fire_on))
    lat_add(&fire_lat, (double)(fired_ms - at_ms));
}

struct node {
  struct cx_config cfg;
  struct cx_noded *n;
  char uuid[37];
};

static void node_up(struct node *nd, struct cx_store *s, struct cx_coord *c,
                    const char *sub)
{
  char err[CX_ERR_LEN], dir[512];
  snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
  mkdir(dir, 0700);
  if (cx_config_init(&nd->cfg) != 0 ||
      cx_config_set(&nd->cfg, "server.data_dir", dir, err) != 0 ||
      cx_config_set(&nd->cfg, "store.url", db.url, err) != 0 ||
      cx_config_set(&nd->cfg, "etcd.endpoints", etcd.endpoints, err) != 0 ||
      cx_config_set(&nd->cfg, "system.default_timezone", "UTC", err) != 0 ||
      cx_config_set(&nd->cfg, "log.level", "warn", err) != 0 ||
      (geteuid() == 0 &&
       cx_config_set(&nd->cfg, "node.run_as", "root", err) != 0) ||
      cx_config_finish(&nd->cfg, err) != 0)
    DIE("config: %s", err);
  struct cx_noded_opts o = {.cfg = &nd->cfg,
                            .store = s,
                            .coord = c,
                            .version = "bench",
                            .fire_hook = fire_hook};
  if (cx_noded_create(&o, &nd->n, err) != 0 || cx_noded_start(nd->n, err) != 0)
    DIE("node: %s", err);
  snprintf(nd->uuid, sizeof nd->uuid, "%s", cx_noded_uuid(nd->n));
}

static void node_down(struct node *nd)
{
  cx_noded_destroy(nd->n);
  cx_config_free(&nd->cfg);
}

static char *job_json(int64_t id, const char *cmd, const char *spec)
{
  struct cx_job j;
  char name[32];
  cx_job_init(&j);
  snprintf(name, sizeof name, "b%lld", (long long)id);
  j.id = id;
  j.name = name;
  j.command = (char *)cmd;
  j.type = CX_JOB_CMD;
  j.spec = (char *)spec;
  j.allocation = CX_ALLOC_AUTO;
  j.created = cx_wall_s() - 10;
  j.misfire = "skip";
  j.concurrency = "allow";
  json_t *o = cx_job_to_json(&j);
  char *t = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return t;
}

/* Publishes jobs [from, to) for uuid, 100 per transaction. */
static void put_jobs(struct cx_coord *c, const char *uuid, int64_t from,
                     int64_t to, const char *cmd, const char *spec)
{
  char err[CX_ERR_LEN];
  enum { B = 100 };
  static char keys[B][128];
  char *vals[B];
  struct cx_coord_op ops[B];
  for (int64_t id = from; id < to;) {
    int k = 0;
    for (; k < B && id < to; k++, id++) {
      snprintf(keys[k], sizeof keys[k], "/cronix/job/%s/%lld", uuid,
               (long long)id);
      vals[k] = job_json(id, cmd, spec);
      ops[k] = (struct cx_coord_op){.type = CX_COORD_OP_PUT,
                                    .key = keys[k],
                                    .key_len = strlen(keys[k]),
                                    .value = vals[k],
                                    .value_len = strlen(vals[k])};
    }
    struct cx_coord_txn t = {.success = ops, .nsuccess = (size_t)k};
    int ok = 0;
    if (cx_coord_txn(c, &t, &ok, NULL, err) != 0)
      DIE("txn: %s", err);
    for (int i = 0; i < k; i++)
      free(vals[i]);
  }
}

static void del_jobs(struct cx_coord *c, const char *uuid)
{
  char p[128];
  snprintf(p, sizeof p, "/cronix/job/%s/", uuid);
  cx_coord_delete_prefix(c, p, strlen(p), NULL, NULL, NULL);
}

/* ---- once -> start ------------------------------------------------------- */

static int fifo_fd;
static atomic_llong fifo_lines;
static double fifo_at;

static void *fifo_reader(void *arg)
{
  (void)arg;
  char buf[256];
  for (;;) {
    ssize_t r = read(fifo_fd, buf, sizeof buf);
    if (r <= 0)
      break;
    fifo_at = now_us();
    if (buf[0] == 'q')
      break;
    for (ssize_t i = 0; i < r; i++)
      if (buf[i] == '\n')
        atomic_fetch_add(&fifo_lines, 1);
  }
  return NULL;
}

static void measure_once(struct cx_coord *c, struct node *nd, int n,
                         struct lat *l)
{
  char fifo[512], cmd[700], key[256], err[CX_ERR_LEN];
  snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
  if (mkfifo(fifo, 0600) != 0)
    DIE("mkfifo: %s", strerror(errno));
  fifo_fd = open(fifo, O_RDWR | O_CLOEXEC);
  pthread_t th;
  pthread_create(&th, NULL, fifo_reader, NULL);
  snprintf(cmd, sizeof cmd, "echo x > %s", fifo);
  put_jobs(c, nd->uuid, 1, 2, cmd, "0 0 0 1 1 *");
  cx_sleep_us(500000);
  snprintf(key, sizeof key, "/cronix/once/%s/1", nd->uuid);
  for (int i = 0; i < n; i++) {
    long long want = atomic_load(&fifo_lines) + 1;
    double t0 = now_us();
    if (cx_coord_put(c, key, strlen(key), "{\"request_id\":\"b\",\"at\":1}", 26,
                     0, NULL, err) != 0)
      DIE("put once: %s", err);
    double until = t0 + 3e6;
    while (atomic_load(&fifo_lines) < want && now_us() < until)
      cx_sleep_us(20);
    if (atomic_load(&fifo_lines) >= want) {
      lat_add(l, fifo_at - t0);
    } else {
      struct cx_noded_stats st;
      cx_noded_stats_get(nd->n, &st);
      fprintf(stderr,
              "once %d: no start within 3 s (fired %llu runs %llu jobs "
              "%llu bad %llu)\n",
              i, (unsigned long long)st.fired, (unsigned long long)st.runs,
              (unsigned long long)st.jobs, (unsigned long long)st.bad_jobs);
    }
    cx_sleep_us(20000);
  }
  del_jobs(c, nd->uuid);
  cx_sleep_us(200000);
  if (write(fifo_fd, "q", 1) != 1)
    DIE("fifo write");
  pthread_join(th, NULL);
  close(fifo_fd);
}

static long rss_kib(void)
{
  FILE *fp = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  while (fp && fgets(line, sizeof line, fp))
    if (strncmp(line, "VmRSS:", 6) == 0)
      v = strtol(line + 6, NULL, 10);
  if (fp)
    fclose(fp);
  return v;
}

int main(int argc, char **argv)
{
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  char err[CX_ERR_LEN];
  snprintf(tmpdir, sizeof tmpdir, "%s/cx-node-bench.XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (mkdtemp(tmpdir) == NULL)
    DIE("mkdtemp");
  cx_log_set_level(getenv("BENCH_DEBUG") ? CX_LOG_DEBUG : CX_LOG_WARN);
  cx_tz_set_default("UTC", err);
  struct cx_svc_etcd_opts eo = {.progress_notify_interval = "5s"};
  fprintf(stderr, "starting etcd and MariaDB in %s\n", tmpdir);
  if (cx_svc_etcd_start(&etcd, &eo, err) != 0)
    DIE("etcd: %s", err);
  if (cx_svc_mariadb_start(&db, NULL, err) != 0)
    DIE("mariadb: %s", err);
  struct cx_store *store;
  struct cx_coord *coord;
  char url[256];
  snprintf(url, sizeof url, "%s?pool=16", db.url);
  if (cx_store_open(url, &store, err) != 0)
    DIE("store: %s", err);
  struct cx_coord_cfg cc = {.endpoints = etcd.endpoints,
                            .max_reply_bytes = (size_t)512 << 20};
  if (cx_coord_open(&cc, &coord, err) != 0)
    DIE("coord: %s", err);

  int nonce = quick ? 100 : 300;
  fprintf(stderr, "etcd floor: %d put->watch\n", nonce);
  measure_floor(coord, nonce);

  struct node nd;
  node_up(&nd, store, coord, "node1");
  struct lat once_lat = {.mu = PTHREAD_MUTEX_INITIALIZER};
  fprintf(stderr, "once -> start: %d\n", nonce);
  measure_once(coord, &nd, nonce, &once_lat);

  int secs = quick ? 5 : 10;
  fprintf(stderr, "fire accuracy: 1000 jobs every second, %d s\n", secs);
  put_jobs(coord, nd.uuid, 1000, 2000, "true", "* * * * * *");
  cx_sleep_us(2500000);
  struct cx_noded_stats s0, s1;
  atomic_store(&fire_on, 1);
  cx_noded_stats_get(nd.n, &s0);
  cx_sleep_us((int64_t)secs * 1000000);
  cx_noded_stats_get(nd.n, &s1);
  atomic_store(&fire_on, 0);
  double runs1000 = (double)(s1.runs - s0.runs) / secs;

  fprintf(stderr, "runs/s: 3000 fires offered per second, %d s\n", secs);
  put_jobs(coord, nd.uuid, 2000, 4000, "true", "* * * * * *");
  cx_sleep_us(3000000);
  cx_noded_stats_get(nd.n, &s0);
  cx_sleep_us((int64_t)secs * 1000000);
  cx_noded_stats_get(nd.n, &s1);
  double runs_max = (double)(s1.runs - s0.runs) / secs;
  uint64_t backlog = s1.active;
  del_jobs(coord, nd.uuid);
  for (int i = 0; i < 600; i++) {
    cx_noded_stats_get(nd.n, &s1);
    if (s1.active == 0 && s1.jobs == 0)
      break;
    cx_sleep_us(100000);
  }
  node_down(&nd);
  int threads = (int)64;
  fprintf(stderr, "fork+exec floor, %d threads\n", threads);
  double floor_rate = bench_spawn_floor(threads, quick ? 3 : 5);

  int njobs = quick ? 20000 : 100000;
  fprintf(stderr, "RSS with %d jobs\n", njobs);
  struct node nd2;
  memset(&nd2, 0, sizeof nd2);
  /* The node's uuid is chosen up front so the jobs can be published first. */
  char dir2[512], idp[600];
  snprintf(dir2, sizeof dir2, "%s/node2", tmpdir);
  mkdir(dir2, 0700);
  snprintf(idp, sizeof idp, "%s/node.id", dir2);
  const char *u2 = "0badbe11-0000-4000-8000-000000000002";
  FILE *fp = fopen(idp, "w");
  if (fp == NULL)
    DIE("node.id");
  fprintf(fp, "%s\n", u2);
  fclose(fp);
  put_jobs(coord, u2, 1, njobs + 1, "true", "0 0 0 1 1 *");
  malloc_trim(0);
  long rss0 = rss_kib();
  node_up(&nd2, store, coord, "node2");
  struct cx_noded_stats s2;
  for (int i = 0; i < 600; i++) {
    cx_noded_stats_get(nd2.n, &s2);
    if (s2.jobs >= (uint64_t)njobs)
      break;
    cx_sleep_us(100000);
  }
  cx_sleep_us(2000000);
  malloc_trim(0);
  long rss1 = rss_kib();
  node_down(&nd2);

  double fl50 = pct(&floor_lat, 50) / 1000, fl99 = pct(&floor_lat, 99) / 1000;
  double o50 = pct(&once_lat, 50) / 1000, o99 = pct(&once_lat, 99) / 1000;
  double f50 = pct(&fire_lat, 50), f99 = pct(&fire_lat, 99);
  printf("| node measure | value | target |\n|---|---|---|\n");
  printf("| etcd put -> watch (floor), p50 / p99 | %.2f / %.2f ms | |\n", fl50,
         fl99);
  printf("| once -> process started, p50 / p99 (%zu) | %.2f / %.2f ms | p99 "
         "<= %.2f ms (2 x floor p99 + 5) %s |\n",
         once_lat.n, o50, o99, 2 * fl99 + 5,
         o99 <= 2 * fl99 + 5 ? "met" : "MISSED");
  printf("| fire accuracy, 1000 jobs/s, p50 / p99 (%zu fires) | %.0f / %.0f ms "
         "| p99 <= 10 ms %s |\n",
         fire_lat.n, f50, f99, f99 <= 10 ? "met" : "MISSED");
  printf("| runs finished/s with 1000 fires/s offered | %.0f | |\n", runs1000);
  printf("| runs finished/s with 3000 fires/s offered (backlog at end %llu) | "
         "%.0f | >= %.0f (50%% of floor) %s |\n",
         (unsigned long long)backlog, runs_max, floor_rate / 2,
         runs_max >= floor_rate / 2 ? "met" : "MISSED");
  printf("| bare fork+exec+wait of sh -c true, %d threads (floor) | %.0f /s | "
         "|\n",
         threads, floor_rate);
  printf("| node RSS growth with %d jobs loaded, idle | %.1f MiB (%.0f B/job; "
         "process %.1f MiB) | |\n",
         njobs, (double)(rss1 - rss0) / 1024,
         (double)(rss1 - rss0) * 1024 / njobs, (double)rss1 / 1024);
  cx_coord_close(coord);
  cx_store_close(store);
  cx_svc_mariadb_destroy(&db);
  cx_svc_etcd_destroy(&etcd);
  return 0;
}
