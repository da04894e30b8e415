/*
 * API benchmark: POST /job/add and POST /job/search over real HTTP with
 * keep-alive, from C concurrent clients (threads, one libcurl handle
 * each), against an admin created in this process, on
 *   standalone   SQLite + in-process coordination;
 *   distributed  MariaDB + etcd started on loopback by the test services;
 * and, for the distributed case, the floor: the same store insert plus
 * etcd put done directly (cx_store_job_create + cx_job_to_json +
 * cx_coord_put) by the same number of threads, measured in the same run.
 *
 * /job/add adds auto-allocated http jobs (one fake node registered), so
 * each request pays auth (token + user lookups), validation, placement
 * (node range + job count per node), the insert and the put.
 * /job/search asks for page 1, then for a random page of 20 among the
 * first 5000 pages (BENCH_API_PAGES), of JOBS jobs (bulk-loaded first with
 * INSERT ... SELECT, not measured).
 *
 *   api_bench [standalone|distributed]...  (default both)
 *   BENCH_API_SECONDS  seconds per measurement (default 5)
 *   BENCH_API_CLIENTS  concurrent clients (default 8)
 * Prints a markdown table on stdout; progress on stderr.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "config/config.h"
#include "coord/coord.h"
#include "job/job.h"
#include "store/store-int.h"
#include "store/store.h"
#include "support/services.h"
#include "util/util.h"

#include "bench.h"

#define JOBS 100000

/* Search pages are drawn from 1..pages (BENCH_API_PAGES, default 5000). */
static int pages = 5000;
/* server.http_threads of the admin (BENCH_API_HTTP_THREADS, default 16:
 * handlers block on the store and etcd, so the pool bounds concurrency). */
static const char *http_threads = "16";

static char tmpdir[256];

const char *cx_test_tmpdir(void);
const char *cx_test_tmpdir(void)
{
  return tmpdir;
}

/* The SQLite file is removed at exit; the servers' directories stay, as
 * the test services leave them for a program without a test runner. */
static void cleanup(void)
{
  static const char *const suffix[] = {"", "-wal", "-shm"};
  char path[512];
  for (size_t i = 0; tmpdir[0] != '\0' && i < CX_ARRAY_LEN(suffix); i++) {
    snprintf(path, sizeof path, "%s/bench.db%s", tmpdir, suffix[i]);
    unlink(path);
  }
}

_Noreturn static void die(const char *what, const char *err)
{
  fprintf(stderr, "api_bench: %s: %s\n", what, err);
  exit(1);
}

/* ---- the system under test ---------------------------------------------- */

struct sut {
  const char *name;
  struct cx_svc_etcd etcd;
  struct cx_svc_mariadb db;
  struct cx_config cfg;
  struct cx_store *store;
  struct cx_coord *coord;
  struct cx_admin *admin;
  unsigned port;
  char token[CX_STORE_TOKEN_LEN];
  int64_t lease;
};

static void sut_start(struct sut *s, int dist)
{
  char err[CX_ERR_LEN] = "", url[1024];
  struct cx_coord_cfg ccfg = {0};
  if (dist) {
    fprintf(stderr, "starting etcd and MariaDB...\n");
    if (cx_svc_etcd_start(&s->etcd, NULL, err) != 0)
      die("etcd", err);
    if (cx_svc_mariadb_start(&s->db, NULL, err) != 0)
      die("mariadb", err);
    ccfg.endpoints = s->etcd.endpoints;
    snprintf(url, sizeof url, "%s?pool=16", s->db.url);
  } else {
    snprintf(url, sizeof url, "sqlite://%s/bench.db", tmpdir);
  }
  if (cx_store_open(url, &s->store, err) != 0)
    die("store", err);
  if (cx_coord_open(&ccfg, &s->coord, err) != 0)
    die("coord", err);
  if (cx_config_init(&s->cfg) != 0 ||
      cx_config_set(&s->cfg, "system.default_timezone", "UTC", err) != 0 ||
      cx_config_set(&s->cfg, "server.http_threads", http_threads, err) != 0)
    die("config", err);
  struct cx_admin_opts o = {.cfg = &s->cfg,
                            .store = s->store,
                            .coord = s->coord,
                            .listen = "127.0.0.1:0"};
  if (cx_admin_create(&o, &s->admin, err) != 0 ||
      cx_admin_start(s->admin, err) != 0)
    die("admin", err);
  s->port = cx_admin_port(s->admin);
  if (bench_operator_token(s->store, s->token, err) != 0)
    die("user", err);
  if (cx_coord_lease_grant(s->coord, 600, 1, NULL, NULL, &s->lease, NULL,
                           err) != 0 ||
      cx_coord_put(s->coord, "/cronix/node/n1", 15, "{}", 2, s->lease, NULL,
                   err) != 0)
    die("node", err);
}

static void sut_stop(struct sut *s, int dist)
{
  cx_admin_destroy(s->admin);
  cx_coord_close(s->coord);
  cx_store_close(s->store);
  cx_config_free(&s->cfg);
  if (dist) {
    cx_svc_etcd_destroy(&s->etcd);
    cx_svc_mariadb_destroy(&s->db);
  }
}

static const struct cx__stmt load_jobs = {
    CX__STMT_MAX - 6, /* a tool id (store-int.h), as in store_bench */
    {"WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq"
     " WHERE x < ?) INSERT INTO cronix_job (name, command, type, spec,"
     " allocation, run_on, notify_to_array, note, created, updated,"
     " http_headers, http_body, env) SELECT 'seed-' || x, 'http://h/', 2,"
     " '*/5 * * * *', 2, 'seed-node', '[]', '', 1700000000, 1700000000,"
     " '{}', '', '{}' FROM seq",
     "INSERT INTO cronix_job (name, command, type, spec, allocation, run_on,"
     " notify_to_array, note, created, updated, http_headers, http_body, env)"
     " SELECT CONCAT('seed-', seq), 'http://h/', 2, '*/5 * * * *', 2,"
     " 'seed-node', '[]', '', 1700000000, 1700000000, '{}', '', '{}' FROM"
     " seq_1_to_100000 WHERE seq <= ?"},
    0};

static void preload(struct sut *s, int64_t n)
{
  char err[CX_ERR_LEN] = "";
  struct cx__val p[1] = {{CX__V_INT, n, NULL, 0}};
  struct cx__exec_result res;
  cx_mono t0 = cx_mono_now();
  if (s->store->ops->exec(s->store, &load_jobs, p, 1, NULL, NULL, &res, err))
    die("preload", err);
  struct cx_job_filter f = {0};
  struct cx_job_list l = {0};
  if (cx_store_job_search(s->store, &f, &l, err) != 0)
    die("count", err);
  fprintf(stderr, "  %lld jobs in the store after %.1f s\n", (long long)l.total,
          (double)(cx_mono_now() - t0) / 1e6);
  cx_job_list_free(&l);
}

/* ---- load generation ------------------------------------------------------
 */

enum op {
  OP_ADD,
  OP_ADD_MANUAL,
  OP_SEARCH,
  OP_SEARCH_FIRST,
  OP_FLOOR,
  OP_SEARCH_FLOOR
};

struct worker {
  struct sut *s;
  enum op op;
  int idx;
  cx_mono until;
  int64_t *lat; /* µs */
  size_t n, cap;
  long errors;
  unsigned seed;
};

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
  (void)p;
  (void)ud;
  return sz * n;
}

static void record(struct worker *w, int64_t us)
{
  if (w->n == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 4096;
    w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
    if (w->lat == NULL)
      die("latency", "out of memory");
  }
  w->lat[w->n++] = us;
}

/* The floor: what /job/add must do at least -- insert the row, put the
 * key -- without HTTP, auth, validation or placement. */
static int floor_once(struct worker *w, long i)
{
  char name[64], key[128], err[CX_ERR_LEN];
  struct cx_job j;
  cx_job_init(&j);
  snprintf(name, sizeof name, "floor-%d-%ld", w->idx, i);
  j.name = name;
  j.command = (char *)"http://127.0.0.1:1/x";
  j.type = CX_JOB_HTTP;
  j.spec = (char *)"*/5 * * * *";
  j.allocation = CX_ALLOC_AUTO;
  j.run_on = (char *)"n1";
  int rc = cx_store_job_create(w->s->store, &j, err);
  if (rc == 0) {
    json_t *o = cx_job_to_json(&j);
    char *v = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int kl = snprintf(key, sizeof key, "/cronix/job/n1/%lld", (long long)j.id);
    rc = cx_coord_put(w->s->coord, key, (size_t)kl, v, strlen(v), 0, NULL, err);
    free(v);
  }
  return rc;
}

static void *work(void *arg)
{
  struct worker *w = arg;
  char url[128], auth[128], body[512];
  CURL *c = curl_easy_init();
  struct curl_slist *hl = NULL;
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", w->s->token);
  hl = curl_slist_append(hl, auth);
  hl = curl_slist_append(hl, "Content-Type: application/json");
  hl = curl_slist_append(hl, "Expect:");
  snprintf(url, sizeof url, "http://127.0.0.1:%u/job/%s", w->s->port,
           w->op == OP_SEARCH || w->op == OP_SEARCH_FIRST ? "search" : "add");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  for (long i = 0; cx_mono_now() < w->until; i++) {
    cx_mono t0 = cx_mono_now();
    int ok;
    if (w->op == OP_FLOOR) {
      ok = floor_once(w, i) == 0;
    } else if (w->op == OP_SEARCH_FLOOR) {
      char err[CX_ERR_LEN];
      struct cx_job_filter f = {
          .page = 1 + (int)(rand_r(&w->seed) % (unsigned)pages),
          .page_size = 20};
      struct cx_job_list l = {0};
      ok = cx_store_job_search(w->s->store, &f, &l, err) == 0;
      cx_job_list_free(&l);
    } else {
      if (w->op == OP_ADD)
        snprintf(body, sizeof body,
                 "{\"name\":\"%s-%d-%ld\",\"type\":2,"
                 "\"command\":\"http://127.0.0.1:1/x\","
                 "\"spec\":\"*/5 * * * *\",\"allocation\":2}",
                 w->s->name, w->idx, i);
      else if (w->op == OP_ADD_MANUAL)
        snprintf(body, sizeof body,
                 "{\"name\":\"%s-m%d-%ld\",\"type\":2,"
                 "\"command\":\"http://127.0.0.1:1/x\","
                 "\"spec\":\"*/5 * * * *\",\"allocation\":1,"
                 "\"run_on\":\"n1\"}",
                 w->s->name, w->idx, i);
      else
        snprintf(body, sizeof body, "{\"page\":%d,\"page_size\":20}",
                 w->op == OP_SEARCH_FIRST
                     ? 1
                     : 1 + (int)(rand_r(&w->seed) % (unsigned)pages));
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
      long status = 0;
      ok = curl_easy_perform(c) == CURLE_OK &&
           curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
           status == 200;
    }
    if (ok)
      record(w, cx_mono_now() - t0);
    else
      w->errors++;
  }
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  return NULL;
}

struct result {
  double rps, p50_ms, p99_ms;
  long n, errors;
};

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static struct result run(struct sut *s, enum op op, int clients, int seconds)
{
  struct worker *w = calloc((size_t)clients, sizeof *w);
  pthread_t *t = calloc((size_t)clients, sizeof *t);
  struct result r = {0};
  cx_mono start = cx_mono_now();
  for (int i = 0; i < clients; i++) {
    w[i].s = s;
    w[i].op = op;
    w[i].idx = i;
    w[i].seed = (unsigned)i * 7919u + 1;
    w[i].until = start + (cx_mono)seconds * 1000000;
    pthread_create(&t[i], NULL, work, &w[i]);
  }
  size_t total = 0;
  for (int i = 0; i < clients; i++) {
    pthread_join(t[i], NULL);
    total += w[i].n;
    r.errors += w[i].errors;
  }
  double secs = (double)(cx_mono_now() - start) / 1e6;
  int64_t *all = malloc((total + 1) * sizeof *all);
  size_t k = 0;
  for (int i = 0; i < clients; i++) {
    memcpy(all + k, w[i].lat, w[i].n * sizeof *all);
    k += w[i].n;
    free(w[i].lat);
  }
  qsort(all, total, sizeof *all, cmp_i64);
  r.n = (long)total;
  r.rps = (double)total / secs;
  if (total > 0) {
    r.p50_ms = (double)all[total / 2] / 1000.0;
    r.p99_ms = (double)all[(total * 99) / 100] / 1000.0;
  }
  free(all);
  free(w);
  free(t);
  return r;
}

static void row(const char *setup, const char *what, struct result r)
{
  printf("| %s | %s | %.0f | %.2f | %.2f | %ld | %ld |\n", setup, what, r.rps,
         r.p50_ms, r.p99_ms, r.n, r.errors);
  fflush(stdout);
}

/* An integer setting from the environment, def when unset; dies when
 * malformed or out of [min, max]. */
static int64_t env_int(const char *name, int64_t min, int64_t max, int64_t def)
{
  const char *v = getenv(name);
  int64_t x = def;
  if (v != NULL && cx_parse_int64(v, min, max, &x) != 0)
    die(name, "not an integer in range");
  return x;
}

int main(int argc, char **argv)
{
  int seconds = (int)env_int("BENCH_API_SECONDS", 1, 3600, 5);
  int clients = (int)env_int("BENCH_API_CLIENTS", 1, 256, 8);
  int want[2] = {argc < 2, argc < 2};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "standalone") == 0)
      want[0] = 1;
    else if (strcmp(argv[i], "distributed") == 0)
      want[1] = 1;
    else
      die("usage", "api_bench [standalone|distributed]...");
  }
  pages = (int)env_int("BENCH_API_PAGES", 1, 1000000, 5000);
  if (getenv("BENCH_API_HTTP_THREADS"))
    http_threads = getenv("BENCH_API_HTTP_THREADS");
  char err[CX_ERR_LEN] = "";
  if (cx_svc_dir_make("api-bench", tmpdir, sizeof tmpdir, err) != 0)
    die("temporary directory", err);
  atexit(cleanup);
  cx_log_set_level(CX_LOG_WARN);
  curl_global_init(CURL_GLOBAL_ALL);

  printf("## api: /job/add and /job/search, %d clients, %d s each, "
         "keep-alive, %ld cores\n\n",
         clients, seconds, sysconf(_SC_NPROCESSORS_ONLN));
  printf("| setup | what | req/s | p50 ms | p99 ms | requests | errors |\n");
  printf("|---|---|---:|---:|---:|---:|---:|\n");
  for (int dist = 0; dist < 2; dist++) {
    if (!want[dist])
      continue;
    static struct sut s;
    memset(&s, 0, sizeof s);
    s.name = dist ? "dist" : "standalone";
    sut_start(&s, dist);
    fprintf(stderr, "%s: /job/add...\n", s.name);
    struct result add = run(&s, OP_ADD, clients, seconds);
    row(s.name, "POST /job/add (auto, http job)", add);
    struct result man = run(&s, OP_ADD_MANUAL, clients, seconds);
    row(s.name, "POST /job/add (manual, http job)", man);
    if (dist) {
      fprintf(stderr, "%s: floor...\n", s.name);
      struct result fl = run(&s, OP_FLOOR, clients, seconds);
      row(s.name, "floor: store insert + etcd put, direct", fl);
      printf("| %s | API cost over the floor (time per add) | %+.0f%% | "
             "%+.0f%% | %+.0f%% | | |\n",
             s.name, add.rps > 0 ? (fl.rps / add.rps - 1) * 100 : 0,
             fl.p50_ms > 0 ? (add.p50_ms / fl.p50_ms - 1) * 100 : 0,
             fl.p99_ms > 0 ? (add.p99_ms / fl.p99_ms - 1) * 100 : 0);
    }
    fprintf(stderr, "%s: loading %d jobs...\n", s.name, JOBS);
    preload(&s, JOBS);
    fprintf(stderr, "%s: /job/search...\n", s.name);
    struct result s1 = run(&s, OP_SEARCH_FIRST, clients, seconds);
    row(s.name, "POST /job/search (page 1 of 20, 100k+ jobs)", s1);
    struct result se = run(&s, OP_SEARCH, clients, seconds);
    char what[96];
    snprintf(what, sizeof what,
             "POST /job/search (random page of 20 among the first %d)", pages);
    row(s.name, what, se);
    struct result sf = run(&s, OP_SEARCH_FLOOR, clients, seconds);
    row(s.name, "floor: cx_store_job_search, direct", sf);
    sut_stop(&s, dist);
  }
  return 0;
}
