/*
 * store benchmark: the same measurements on SQLite (a file in a temporary
 * directory) and on a MariaDB started on loopback by the test-services
 * harness.
 *
 *   1. claim+finish: runs/s recorded through the public interface (one
 *      cx_store_run_claim + one cx_store_run_finish per run), with 1 and 4
 *      writer threads, BENCH_STORE_SECONDS (default 4) each;
 *   2. with 100k jobs and 1M run-log rows loaded: job search (page of 20,
 *      random page among the first 1000, without and with a name filter)
 *      and run-log search (page of 20 newest first: all runs, and one
 *      job's runs) latency p50/p99, through the public interface.
 *
 * The bulk load is not part of what is measured, so it takes a short cut:
 * INSERT ... SELECT over a generated sequence, through the back-end's
 * statement interface (store-int.h), in chunks of 100k rows with a
 * progress line each. Everything measured goes through store.h.
 *
 *   store_bench [sqlite|mysql]...   (default: both)
 */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store-int.h"
#include "store/store.h"
#include "support/services.h"
#include "util/util.h"

#define JOBS 100000
#define LOG_ROWS 1000000
#define CHUNK 100000
#define MAX_SAMPLES 400

static char tmpdir[256];

/* The harness's services look for the test's directory; a benchmark
 * makes its own and removes it at exit. */
const char *cx_test_tmpdir(void);
const char *cx_test_tmpdir(void)
{
  return tmpdir;
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static void cleanup(void)
{
  if (tmpdir[0] != '\0')
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *what, int rc, const char *err)
{
  fprintf(stderr, "store_bench: %s: %s (%s)\n", what, cx_err_name(rc), err);
  exit(1);
}

/* ---- claim + finish throughput ----------------------------------------- */

struct writer {
  struct cx_store *s;
  int64_t job;
  cx_mono until;
  long runs;
  long errors;
};

static void *write_runs(void *arg)
{
  struct writer *w = arg;
  char err[CX_ERR_LEN];
  for (int64_t k = 0; cx_mono_now() < w->until; k++) {
    struct cx_run r;
    int64_t id;
    memset(&r, 0, sizeof r);
    r.job_id = w->job;
    r.name = (char *)"bench";
    r.node_uuid = (char *)"node-bench";
    r.command = (char *)"true";
    r.has_scheduled_at = 1;
    r.scheduled_at = 1700000000 + k;
    r.start_time = cx_wall_ms();
    int rc = cx_store_run_claim(w->s, &r, &id, err);
    if (rc != 0) {
      w->errors++;
      continue;
    }
    r.id = id;
    r.status = (char *)"success";
    r.success = 1;
    r.end_time = cx_wall_ms();
    r.attempts = 1;
    r.output = (char *)"hello from the benchmark\n";
    r.output_len = strlen(r.output);
    if (cx_store_run_finish(w->s, &r, err) != 0)
      w->errors++;
    else
      w->runs++;
  }
  return NULL;
}

static double claim_finish(struct cx_store *s, int threads, int seconds,
                           int64_t job_base)
{
  struct writer w[8];
  pthread_t t[8];
  cx_mono start = cx_mono_now();
  long runs = 0, errors = 0;
  for (int i = 0; i < threads; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].s = s;
    w[i].job = job_base + i;
    w[i].until = start + (cx_mono)seconds * 1000000;
    pthread_create(&t[i], NULL, write_runs, &w[i]);
  }
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    runs += w[i].runs;
    errors += w[i].errors;
  }
  double secs = (double)(cx_mono_now() - start) / 1e6;
  if (errors > 0)
    fprintf(stderr, "  (%ld errors)\n", errors);
  return (double)runs / secs;
}

/* ---- bulk load --------------------------------------------------------- */

static const struct cx__stmt load_jobs = {
    CX__STMT_MAX - 6,
    {"WITH RECURSIVE seq(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM seq"
     " WHERE x < ?) INSERT INTO cronix_job (name, command, type, spec,"
     " allocation, run_on, notify_to_array, note, created, updated,"
     " http_headers, http_body, env) SELECT 'bench-job-' || x, 'echo hello',"
     " 1 + x % 2, '*/5 * * * *', 2, 'node-' || (x % 10), '[]', '',"
     " 1700000000, 1700000000, '{}', '', '{}' FROM seq",
     "INSERT INTO cronix_job (name, command, type, spec, allocation, run_on,"
     " notify_to_array, note, created, updated, http_headers, http_body, env)"
     " SELECT CONCAT('bench-job-', x), 'echo hello', 1 + x % 2,"
     " '*/5 * * * *', 2, CONCAT('node-', x % 10), '[]', '', 1700000000,"
     " 1700000000, '{}', '', '{}' FROM (SELECT seq + ? - 1 AS x FROM"
     " seq_1_to_100000) s WHERE x <= ?"},
    0};

static const struct cx__stmt load_runs = {
    CX__STMT_MAX - 5,
    {"WITH RECURSIVE seq(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM seq"
     " WHERE x < ?) INSERT INTO cronix_job_log (job_id, name, node_uuid,"
     " hostname, ip, command, spec, scheduled_at, start_time, end_time,"
     " success, status, exit_code, attempts, output) SELECT 1 + x % 100000,"
     " 'bench-job', 'node-' || (x % 10), 'host', '10.0.0.1', 'echo hello',"
     " '*/5 * * * *', 1600000000 + x, 1600000000000 + x * 1000,"
     " 1600000000500 + x * 1000, x % 10 != 0, CASE WHEN x % 10 != 0 THEN"
     " 'success' ELSE 'failed' END, 0, 1, 'hello' FROM seq",
     "INSERT INTO cronix_job_log (job_id, name, node_uuid, hostname, ip,"
     " command, spec, scheduled_at, start_time, end_time, success, status,"
     " exit_code, attempts, output) SELECT 1 + x % 100000, 'bench-job',"
     " CONCAT('node-', x % 10), 'host', '10.0.0.1', 'echo hello',"
     " '*/5 * * * *', 1600000000 + x, 1600000000000 + x * 1000,"
     " 1600000000500 + x * 1000, x % 10 != 0, CASE WHEN x % 10 != 0 THEN"
     " 'success' ELSE 'failed' END, 0, 1, 'hello' FROM (SELECT seq + ? - 1"
     " AS x FROM seq_1_to_100000) s WHERE x <= ?"},
    0};

static void load(struct cx_store *s, const struct cx__stmt *q, int64_t total,
                 const char *what)
{
  char err[CX_ERR_LEN] = "";
  cx_mono t0 = cx_mono_now();
  for (int64_t from = 1; from <= total; from += CHUNK) {
    int64_t to = from + CHUNK - 1 < total ? from + CHUNK - 1 : total;
    struct cx__val p[2] = {{CX__V_INT, from, NULL, 0},
                           {CX__V_INT, to, NULL, 0}};
    struct cx__exec_result res;
    int rc = s->ops->exec(s, q, p, 2, NULL, NULL, &res, err);
    if (rc != 0)
      die(what, rc, err);
    fprintf(stderr, "  loading %s: %lld / %lld (%.1f s)\n", what, (long long)to,
            (long long)total, (double)(cx_mono_now() - t0) / 1e6);
    fflush(stderr);
  }
}

/* ---- latency ----------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

struct lat {
  double p50_ms, p99_ms;
  int n;
};

enum query { Q_JOBS, Q_JOBS_NAME, Q_RUNS, Q_RUNS_CAPPED, Q_RUNS_JOB, NQ };

static int one_query(struct cx_store *s, enum query q, unsigned *seed,
                     char *err)
{
  char name[32];
  *seed = *seed * 1103515245u + 12345u;
  unsigned r = *seed >> 8;
  int rc;
  if (q == Q_JOBS || q == Q_JOBS_NAME) {
    struct cx_job_filter f = {.page_size = 20};
    struct cx_job_list l;
    f.page = 1 + (int)(r % 1000);
    if (q == Q_JOBS_NAME) {
      /* "job-123" style: matches 1..111 of the 100k names. */
      snprintf(name, sizeof name, "job-%u", 100 + r % 900);
      f.name = name;
      f.page = 1;
    }
    rc = cx_store_job_search(s, &f, &l, err);
    cx_job_list_free(&l);
  } else {
    struct cx_run_filter f = {.page_size = 20};
    struct cx_run_list l;
    f.page = 1 + (int)(r % 100);
    if (q == Q_RUNS_CAPPED)
      f.count_limit = 10000;
    if (q == Q_RUNS_JOB) {
      f.job_id = 1 + (int64_t)(r % JOBS);
      f.page = 1;
    }
    rc = cx_store_run_search(s, &f, &l, err);
    cx_run_list_free(&l);
  }
  return rc;
}

static struct lat measure(struct cx_store *s, enum query q, double budget_s)
{
  static int64_t us[MAX_SAMPLES];
  char err[CX_ERR_LEN] = "";
  unsigned seed = 12345;
  struct lat out = {0, 0, 0};
  cx_mono start = cx_mono_now();
  int n = 0;
  while (n < MAX_SAMPLES &&
         (n < 20 || cx_mono_now() - start < (cx_mono)(budget_s * 1e6))) {
    cx_mono t0 = cx_mono_now();
    int rc = one_query(s, q, &seed, err);
    if (rc != 0)
      die("search", rc, err);
    us[n++] = cx_mono_now() - t0;
  }
  qsort(us, (size_t)n, sizeof us[0], cmp_i64);
  out.n = n;
  out.p50_ms = (double)us[n / 2] / 1000.0;
  out.p99_ms = (double)us[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1000.0;
  return out;
}

/* ---- one back-end ------------------------------------------------------ */

struct result {
  const char *backend;
  double rps1, rps4;
  struct lat lat[NQ];
  double load_s;
};

static void bench_backend(const char *url, const char *loader_url,
                          struct result *res, int seconds)
{
  struct cx_store *s, *loader;
  char err[CX_ERR_LEN] = "";
  int rc = cx_store_open(url, &s, err);
  if (rc != 0)
    die("open", rc, err);
  res->backend = cx_store_backend(s);
  fprintf(stderr, "[%s] claim+finish, 1 writer, %d s\n", res->backend, seconds);
  fflush(stderr);
  res->rps1 = claim_finish(s, 1, seconds, 900001);
  fprintf(stderr, "[%s] claim+finish, 4 writers, %d s\n", res->backend,
          seconds);
  fflush(stderr);
  res->rps4 = claim_finish(s, 4, seconds, 900010);
  /* A one-connection handle for the loader so each chunk is one
   * statement on one connection. */
  rc = cx_store_open(loader_url, &loader, err);
  if (rc != 0)
    die("open loader", rc, err);
  cx_mono t0 = cx_mono_now();
  load(loader, &load_jobs, JOBS, "jobs");
  load(loader, &load_runs, LOG_ROWS, "run-log rows");
  res->load_s = (double)(cx_mono_now() - t0) / 1e6;
  cx_store_close(loader);
  const char *names[] = {
      "job search", "job search + name", "run-log search (exact total)",
      "run-log search (total capped at 10k)", "run-log search + job_id"};
  for (int q = 0; q < NQ; q++) {
    fprintf(stderr, "[%s] %s latency\n", res->backend, names[q]);
    fflush(stderr);
    res->lat[q] = measure(s, (enum query)q, 5.0);
  }
  cx_store_close(s);
}

int main(int argc, char **argv)
{
  struct result r[2];
  int nr = 0, want_sqlite = argc < 2, want_mysql = argc < 2;
  int seconds = 4;
  const char *env = getenv("BENCH_STORE_SECONDS");
  int64_t v;
  if (env != NULL && cx_parse_int64(env, 1, 600, &v) == 0)
    seconds = (int)v;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "sqlite") == 0)
      want_sqlite = 1;
    else if (strcmp(argv[i], "mysql") == 0)
      want_mysql = 1;
    else {
      fprintf(stderr, "usage: store_bench [sqlite|mysql]...\n");
      return 2;
    }
  }
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(tmpdir, sizeof tmpdir, "%s/cx-store-bench.XXXXXX", base);
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  atexit(cleanup);
  setenv("CX_TEST_TMPDIR", tmpdir, 1);
  cx_log_set_level(CX_LOG_WARN);

  if (want_sqlite) {
    char url[512];
    snprintf(url, sizeof url, "sqlite://%s/bench.db", tmpdir);
    bench_backend(url, url, &r[nr++], seconds);
  }
  if (want_mysql) {
    static struct cx_svc_mariadb db;
    char err[CX_ERR_LEN] = "", loader[256];
    fprintf(stderr, "[mysql] starting MariaDB\n");
    fflush(stderr);
    int rc = cx_svc_mariadb_start(&db, NULL, err);
    if (rc != 0)
      die("mariadb", rc, err);
    snprintf(loader, sizeof loader, "%s?pool=1&read_timeout=600", db.url);
    bench_backend(db.url, loader, &r[nr++], seconds);
    cx_svc_mariadb_destroy(&db);
  }

  printf("## store: claim+finish throughput, and search latency with %d "
         "jobs and %d run-log rows (%ld cores; MariaDB from the test "
         "harness, innodb_flush_log_at_trx_commit=2; SQLite WAL, "
         "synchronous=FULL)\n",
         JOBS, LOG_ROWS, sysconf(_SC_NPROCESSORS_ONLN));
  printf("| measurement |");
  for (int i = 0; i < nr; i++)
    printf(" %s |", r[i].backend);
  printf("\n|---|");
  for (int i = 0; i < nr; i++)
    printf("---:|");
  printf("\n| claim+finish, 1 writer (runs/s) |");
  for (int i = 0; i < nr; i++)
    printf(" %.0f |", r[i].rps1);
  printf("\n| claim+finish, 4 writers (runs/s) |");
  for (int i = 0; i < nr; i++)
    printf(" %.0f |", r[i].rps4);
  const char *names[] = {"job search, page of 20 (p50 / p99 ms)",
                         "job search + name filter (p50 / p99 ms)",
                         "run-log search, exact total (p50 / p99 ms)",
                         "run-log search, total capped at 10k (p50 / p99 ms)",
                         "run-log search + job_id (p50 / p99 ms)"};
  for (int q = 0; q < NQ; q++) {
    printf("\n| %s |", names[q]);
    for (int i = 0; i < nr; i++)
      printf(" %.2f / %.2f |", r[i].lat[q].p50_ms, r[i].lat[q].p99_ms);
  }
  printf("\n| bulk load of the 100k + 1M rows, not via the API (s) |");
  for (int i = 0; i < nr; i++)
    printf(" %.1f |", r[i].load_s);
  printf("\n");
  fflush(stdout);
  return 0;
}
