/*
 * cluster_bench: the admin cluster's numbers (SPEC §10, issue 7).
 *
 *   cluster_bench takeover [TRIALS]   leader takeover after SIGKILL of the
 *       leader admin (a child process), leader lease TTL 2 s, real etcd:
 *       time from the kill until the other admin holds <prefix>/leader.
 *   cluster_bench reconcile [JOBS]    one reconciliation round over JOBS
 *       jobs (MariaDB + etcd, all on one alive node): clean, and with 1% of
 *       the keys deleted (each republished).
 *
 * Prints "key value" lines. Servers run on loopback in a fresh directory
 * under $TMPDIR (left in place, as tests/support/services.h does for
 * programs without a test runner).
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/cluster.h"
#include "config/config.h"
#include "coord/coord.h"
#include "job/job.h"
#include "store/store.h"
#include "support/services.h"

static char tmpdir[256];

const char *cx_test_tmpdir(void);
const char *cx_test_tmpdir(void)
{
  return tmpdir;
}

static struct cx_svc_etcd etcd;

static int cmp_d(const void *x, const void *y)
{
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

static double pct(double *v, size_t n, int p)
{
  size_t i = (size_t)((double)p / 100.0 * (double)(n - 1) + 0.5);
  return v[i < n ? i : n - 1];
}

/* An admin in this (child) process until killed. */
static _Noreturn void child_admin(const char *store_url)
{
  char err[CX_ERR_LEN];
  struct cx_store *s;
  struct cx_coord *c;
  struct cx_config cfg;
  struct cx_admin *a;
  struct cx_coord_cfg cc = {.endpoints = etcd.endpoints};
  cx_log_set_level(CX_LOG_WARN);
  if (cx_store_open(store_url, &s, err) != 0 ||
      cx_coord_open(&cc, &c, err) != 0 || cx_config_init(&cfg) != 0) {
    fprintf(stderr, "child: %s\n", err);
    _exit(1);
  }
  struct cx_admin_opts o = {
      .cfg = &cfg, .store = s, .coord = c, .listen = "127.0.0.1:0"};
  struct cx_admin_cluster_opts co = {.leader_ttl_s = 2};
  if (cx_admin_create(&o, &a, err) != 0 || cx_admin_cluster_set(a, &co) != 0 ||
      cx_admin_start(a, err) != 0) {
    fprintf(stderr, "child admin: %s\n", err);
    _exit(1);
  }
  for (;;)
    pause();
}

/* pid of the leader per <prefix>/leader ("host:pid:rand"), 0 = none. */
static long leader_pid(struct cx_coord *c, int64_t *lease)
{
  struct cx_coord_kvs kvs;
  if (cx_coord_get(c, "/cronix/leader", 14, &kvs, NULL) != 0)
    return 0;
  const char *p = strchr(kvs.kvs[0].value, ':');
  long pid = p ? strtol(p + 1, NULL, 10) : 0;
  if (lease)
    *lease = kvs.kvs[0].lease;
  cx_coord_kvs_free(&kvs);
  return pid;
}

static int wait_leader_pid(struct cx_coord *c, pid_t want, int secs)
{
  for (int i = 0; i < secs * 200; i++) {
    if (leader_pid(c, NULL) == (long)want)
      return 0;
    cx_sleep_us(5000);
  }
  return -1;
}

static int takeover(int trials)
{
  char err[CX_ERR_LEN], url[600];
  struct cx_coord *c;
  struct cx_coord_cfg cc = {.endpoints = etcd.endpoints};
  if (cx_coord_open(&cc, &c, err) != 0)
    return 1;
  snprintf(url, sizeof url, "sqlite://%s/cronix.db", tmpdir);
  double *ms = calloc((size_t)trials, sizeof *ms);
  for (int t = 0; t < trials; t++) {
    pid_t a = fork();
    if (a == 0)
      child_admin(url);
    if (wait_leader_pid(c, a, 20) != 0) {
      fprintf(stderr, "trial %d: first admin never led\n", t);
      return 1;
    }
    pid_t b = fork();
    if (b == 0)
      child_admin(url);
    cx_sleep_us(700000); /* b is up and watching */
    cx_mono t0 = cx_mono_now();
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
    if (wait_leader_pid(c, b, 20) != 0) {
      fprintf(stderr, "trial %d: no takeover\n", t);
      return 1;
    }
    ms[t] = (double)(cx_mono_now() - t0) / 1000.0;
    int64_t lease = 0;
    kill(b, SIGKILL);
    waitpid(b, NULL, 0);
    if (leader_pid(c, &lease) != 0 && lease != 0)
      cx_coord_lease_revoke(c, lease, NULL);
  }
  qsort(ms, (size_t)trials, sizeof *ms, cmp_d);
  printf("takeover_trials %d\ntakeover_ttl_s 2\n", trials);
  printf("takeover_p50_ms %.0f\ntakeover_p99_ms %.0f\ntakeover_max_ms %.0f\n",
         pct(ms, (size_t)trials, 50), pct(ms, (size_t)trials, 99),
         ms[trials - 1]);
  free(ms);
  cx_coord_close(c);
  return 0;
}

static int reconcile_bench(int n)
{
  char err[CX_ERR_LEN];
  struct cx_svc_mariadb db;
  struct cx_store *s;
  struct cx_coord *c;
  struct cx_config cfg;
  struct cx_admin *a;
  if (cx_svc_mariadb_start(&db, NULL, err) != 0) {
    fprintf(stderr, "mariadb: %s\n", err);
    return 1;
  }
  struct cx_coord_cfg cc = {.endpoints = etcd.endpoints,
                            .max_reply_bytes = (size_t)1 << 30,
                            .request_timeout_ms = 120000};
  if (cx_store_open(db.url, &s, err) != 0 || cx_coord_open(&cc, &c, err) != 0 ||
      cx_config_init(&cfg) != 0) {
    fprintf(stderr, "open: %s\n", err);
    return 1;
  }
  int64_t lease;
  cx_coord_lease_grant(c, 600, 1, NULL, NULL, &lease, NULL, NULL);
  cx_coord_put(c, "/cronix/node/n1", 15, "{}", 2, lease, NULL, NULL);
  cx_mono t0 = cx_mono_now();
  enum { BATCH = 128 };
  struct cx_coord_op ops[BATCH];
  char keys[BATCH][64];
  char *vals[BATCH];
  size_t nb = 0;
  for (int i = 0; i < n; i++) {
    struct cx_job j;
    char name[32];
    cx_job_init(&j);
    snprintf(name, sizeof name, "job-%d", i);
    j.name = name;
    j.type = CX_JOB_HTTP;
    j.command = (char *)"http://127.0.0.1:9/x";
    j.spec = (char *)"0 */5 * * * *";
    j.allocation = CX_ALLOC_AUTO;
    j.run_on = (char *)"n1";
    if (cx_store_job_create(s, &j, err) != 0) {
      fprintf(stderr, "create: %s\n", err);
      return 1;
    }
    json_t *o = cx_job_to_json(&j);
    vals[nb] = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int kl = snprintf(keys[nb], sizeof keys[nb], "/cronix/job/n1/%lld",
                      (long long)j.id);
    ops[nb] = (struct cx_coord_op){.type = CX_COORD_OP_PUT,
                                   .key = keys[nb],
                                   .key_len = (size_t)kl,
                                   .value = vals[nb],
                                   .value_len = strlen(vals[nb])};
    if (++nb == BATCH || i == n - 1) {
      struct cx_coord_txn t = {.success = ops, .nsuccess = nb};
      int ok;
      if (cx_coord_txn(c, &t, &ok, NULL, err) != 0) {
        fprintf(stderr, "publish: %s\n", err);
        return 1;
      }
      for (size_t k = 0; k < nb; k++)
        free(vals[k]);
      nb = 0;
    }
  }
  printf("reconcile_jobs %d\nreconcile_seed_s %.1f\n", n,
         (double)(cx_mono_now() - t0) / 1e6);
  struct cx_admin_opts o = {
      .cfg = &cfg, .store = s, .coord = c, .listen = "127.0.0.1:0"};
  struct cx_admin_cluster_opts co = {.leader_ttl_s = 5,
                                     .reconcile_ms = 3600000};
  cx_log_set_level(CX_LOG_WARN);
  if (cx_admin_create(&o, &a, err) != 0 || cx_admin_cluster_set(a, &co) != 0 ||
      cx_admin_start(a, err) != 0) {
    fprintf(stderr, "admin: %s\n", err);
    return 1;
  }
  struct cx_admin_cluster_stats st;
  for (int i = 0; i < 6000; i++) {
    cx_admin_cluster_stats(a, &st);
    if (st.reconciles > 0)
      break;
    cx_sleep_us(20000);
  }
  double best = 1e18;
  for (int r = 0; r < 3; r++) {
    cx_mono r0 = cx_mono_now();
    if (cx_admin_cluster_reconcile(a, err) != 0) {
      fprintf(stderr, "reconcile: %s\n", err);
      return 1;
    }
    double ms = (double)(cx_mono_now() - r0) / 1000.0;
    best = ms < best ? ms : best;
  }
  printf("reconcile_clean_ms %.0f\n", best);
  /* 1% drift: keys deleted behind the admin's back. */
  int drift = n / 100 > 0 ? n / 100 : 1;
  for (int i = 1; i <= drift; i++) {
    char key[64];
    int kl = snprintf(key, sizeof key, "/cronix/job/n1/%d", i * 97 % n + 1);
    cx_coord_delete(c, key, (size_t)kl, NULL, NULL, NULL);
  }
  cx_admin_cluster_stats(a, &st);
  uint64_t before = st.fix_published;
  cx_mono r0 = cx_mono_now();
  if (cx_admin_cluster_reconcile(a, err) != 0) {
    fprintf(stderr, "reconcile: %s\n", err);
    return 1;
  }
  double ms = (double)(cx_mono_now() - r0) / 1000.0;
  cx_admin_cluster_stats(a, &st);
  printf("reconcile_drift_keys %d\nreconcile_drift_repaired %llu\n"
         "reconcile_drift_ms %.0f\n",
         drift, (unsigned long long)(st.fix_published - before), ms);
  cx_admin_destroy(a);
  cx_coord_lease_revoke(c, lease, NULL);
  cx_coord_close(c);
  cx_store_close(s);
  cx_config_free(&cfg);
  cx_svc_mariadb_destroy(&db);
  return 0;
}

int main(int argc, char **argv)
{
  char err[CX_ERR_LEN];
  const char *what = argc > 1 ? argv[1] : "takeover";
  long arg = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/cluster_bench.XXXXXX",
           base ? base : "/tmp");
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  setenv("CX_TEST_TMPDIR", tmpdir, 1);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (cx_svc_etcd_start(&etcd, NULL, err) != 0) {
    fprintf(stderr, "etcd: %s\n", err);
    return 1;
  }
  int rc;
  if (strcmp(what, "takeover") == 0)
    rc = takeover(arg > 0 && arg <= 1000 ? (int)arg : 20);
  else if (strcmp(what, "reconcile") == 0)
    rc = reconcile_bench(arg > 0 && arg <= 10000000 ? (int)arg : 100000);
  else {
    fprintf(stderr, "usage: cluster_bench takeover|reconcile [N]\n");
    rc = 2;
  }
  cx_svc_etcd_destroy(&etcd);
  return rc;
}
