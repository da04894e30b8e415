/*
 * cluster_bench: the admin cluster's numbers (SPEC §10, issue 7).
 *
 *   cluster_bench takeover [TRIALS]   leader takeover after SIGKILL of the
 *       leader admin (a child process), leader lease TTL 2 s, real etcd:
 *       time from the kill until the other admin holds <prefix>/leader.
 *   cluster_bench reconcile [JOBS]    one reconciliation round over JOBS
 *       jobs (MariaDB + etcd, all on one alive node): clean, and with 1% of
 *       the keys deleted (each republished).
 *   cluster_bench failover [TRIALS] [TTL_S]   node failover with real
 *       processes: one `cronix admin` and 3 `cronix node` ($CX_CRONIX_BIN,
 *       else BUILD/cronix beside this program) with node.ttl = TTL_S (5),
 *       on etcd and MariaDB; 30 http jobs firing every second call this
 *       program's HTTP server (job index in the path). Each trial SIGKILLs
 *       a node that owns jobs; a job's delay is the kill -> its first
 *       request after the kill (so from another node), the trial's is the
 *       slowest of them; the victim is restarted and the cluster settles
 *       before the next one. A watch on etcd splits the delay (kill ->
 *       node key deleted -> job key put under another node -> request),
 *       and 40 unrenewed leases measure etcd's own expiry lag.
 *
 * Prints "key value" lines. Servers run on loopback in a fresh directory
 * under $TMPDIR (left in place, as tests/support/services.h does for
 * programs without a test runner).
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
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

/* ---- failover: real `cronix admin` + 3 `cronix node` processes ---------- */

#define FO_NODES 3
#define FO_JOBS 30
#define FO_LAG 40 /* leases for the expiry-lag floor */

static struct {
  struct cx_svc_mariadb db;
  struct cx_svc_proc admin, node[FO_NODES];
  char admin_dir[CX_SVC_PATH_LEN], node_dir[FO_NODES][CX_SVC_PATH_LEN];
  char uuid[FO_NODES][64];
  char token[128];
  int admin_port, http_port, ttl;
  int64_t id[FO_JOBS];
  pthread_mutex_t mu;     /* everything below */
  cx_mono last[FO_JOBS];  /* latest request of job i */
  cx_mono first[FO_JOBS]; /* first request at or after `mark` */
  cx_mono mark;           /* 0 = no trial running */
  int victim;             /* node index while a trial runs */
  cx_mono del;            /* the victim's node key seen deleted */
  cx_mono moved[FO_JOBS]; /* job i's key seen put under another node */
  cx_mono lag_sent[FO_LAG], lag_del[FO_LAG]; /* etcd's own lease expiry */
} F = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int job_index(int64_t id)
{
  for (int i = 0; i < FO_JOBS; i++)
    if (F.id[i] == id)
      return i;
  return -1;
}

static enum MHD_Result fo_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
  (void)cls, (void)method, (void)version, (void)data, (void)size, (void)con_cls;
  cx_mono now = cx_mono_now();
  long i = strncmp(url, "/j/", 3) == 0 ? strtol(url + 3, NULL, 10) : -1;
  if (i >= 0 && i < FO_JOBS) {
    pthread_mutex_lock(&F.mu);
    F.last[i] = now;
    if (F.mark != 0 && now >= F.mark && F.first[i] == 0)
      F.first[i] = now;
    pthread_mutex_unlock(&F.mu);
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(
      3, (void *)"ok\n", MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(conn, 200, r);
  MHD_destroy_response(r);
  return ret;
}

/* The bench's own view of the changes: when the victim's node key goes
 * and when each of its jobs is put under another node. */
static void fo_event(void *arg, const struct cx_coord_event *ev)
{
  (void)arg;
  cx_mono now = cx_mono_now();
  char key[256];
  snprintf(key, sizeof key, "%.*s",
           (int)(ev->key_len < 255 ? ev->key_len : 255), ev->key);
  pthread_mutex_lock(&F.mu);
  if (ev->type == CX_COORD_EV_DELETE && strncmp(key, "/cronix/lag/", 12) == 0) {
    long i = strtol(key + 12, NULL, 10);
    if (i >= 0 && i < FO_LAG && F.lag_del[i] == 0)
      F.lag_del[i] = now;
  }
  if (F.mark != 0) {
    const char *v = F.uuid[F.victim];
    size_t vl = strlen(v);
    if (ev->type == CX_COORD_EV_DELETE &&
        strncmp(key, "/cronix/node/", 13) == 0 && strcmp(key + 13, v) == 0 &&
        F.del == 0)
      F.del = now;
    if (ev->type == CX_COORD_EV_PUT && strncmp(key, "/cronix/job/", 12) == 0 &&
        !(strncmp(key + 12, v, vl) == 0 && key[12 + vl] == '/')) {
      const char *slash = strrchr(key, '/');
      int i = job_index(strtoll(slash + 1, NULL, 10));
      if (i >= 0 && F.moved[i] == 0)
        F.moved[i] = now;
    }
  }
  pthread_mutex_unlock(&F.mu);
}

static void fo_resync(void *arg, const struct cx_coord_kvs *kvs)
{
  (void)arg, (void)kvs;
}

/* One API call to the admin with the bench's token; the HTTP status (0: no
 * answer). A body longer than cap is cut. */
static long fo_api(const char *method, const char *path, const char *body,
                   char *resp, size_t cap)
{
  char url[256];
  long status = 0;
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", F.admin_port, path);
  cx_svc_http_auth(method, url, F.token, body, 10000, &status, resp, cap, NULL);
  return status;
}

/* The cronix binary: $CX_CRONIX_BIN, else BUILD/cronix next to
 * BUILD/bench/cluster_bench. */
static const char *cronix_bin(void)
{
  static char path[600];
  char self[512];
  const char *env = getenv("CX_CRONIX_BIN");
  if (env != NULL && env[0] != '\0')
    return env;
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  self[n > 0 ? n : 0] = '\0';
  char *slash = strrchr(self, '/');
  if (slash != NULL)
    *slash = '\0';
  snprintf(path, sizeof path, "%s/../cronix", self);
  return path;
}

/* Starts `cronix admin` (i < 0) or `cronix node` i. */
static int fo_start(int i, char *err)
{
  char ttl[32], listen[64], log[CX_SVC_PATH_LEN + 16], name[16];
  struct cx_svc_proc *p = i < 0 ? &F.admin : &F.node[i];
  const char *dir = i < 0 ? F.admin_dir : F.node_dir[i];
  const char *role = i < 0 ? "admin" : "node";
  snprintf(ttl, sizeof ttl, "node.ttl=%ds", F.ttl);
  snprintf(listen, sizeof listen, "127.0.0.1:%d", F.admin_port);
  const char *argv[24] = {
      cronix_bin(), role,     "--data-dir", dir,
      "--store",    F.db.url, "--etcd",     etcd.endpoints,
      "--set",      ttl,      "--set",      "system.default_timezone=UTC"};
  if (i < 0) {
    argv[12] = "--listen";
    argv[13] = listen;
    argv[14] = "--set";
    argv[15] = "system.cmd_auto_allocation=true";
  }
  snprintf(log, sizeof log, "%s/%s.log", dir, role);
  snprintf(name, sizeof name, "%s%d", role, i < 0 ? 0 : i);
  int rc = cx_svc_proc_set_argv(p, name, log, argv, err);
  return rc != 0 ? rc : cx_svc_proc_start(p, err);
}

/* Reads the first token of dir/file into out[cap] once it is there. */
static int wait_file_word(const char *dir, const char *file, const char *after,
                          char *out, size_t cap)
{
  char path[CX_SVC_PATH_LEN + 32], text[1024];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  for (int t = 0; t < 600; t++) {
    FILE *f = fopen(path, "r");
    if (f != NULL) {
      size_t n = fread(text, 1, sizeof text - 1, f);
      fclose(f);
      text[n] = '\0';
      char *p = after ? strstr(text, after) : text;
      if (p != NULL) {
        p += after ? strlen(after) : 0;
        size_t k = strcspn(p, " \r\n");
        if (k > 0 && k < cap) {
          memcpy(out, p, k);
          out[k] = '\0';
          return 0;
        }
      }
    }
    cx_sleep_us(100000);
  }
  fprintf(stderr, "no %s after 60 s\n", path);
  return -1;
}

/* Owner node index of every job (-1: under no known alive node); the
 * number of alive nodes, or -1 on a read error. */
static int fo_owners(struct cx_coord *c, int owner[FO_JOBS],
                     int alive[FO_NODES])
{
  struct cx_coord_kvs kvs;
  for (int i = 0; i < FO_NODES; i++)
    alive[i] = 0;
  for (int j = 0; j < FO_JOBS; j++)
    owner[j] = -1;
  if (cx_coord_range(c, "/cronix/node/", 13, &kvs, NULL) != 0)
    return -1;
  int n = 0;
  for (size_t k = 0; k < kvs.n; k++)
    for (int i = 0; i < FO_NODES; i++)
      if (strcmp(kvs.kvs[k].key + 13, F.uuid[i]) == 0)
        n += alive[i] = 1;
  cx_coord_kvs_free(&kvs);
  if (cx_coord_range(c, "/cronix/job/", 12, &kvs, NULL) != 0)
    return -1;
  for (size_t k = 0; k < kvs.n; k++) {
    const char *key = kvs.kvs[k].key + 12, *slash = strchr(key, '/');
    int j = slash ? job_index(strtoll(slash + 1, NULL, 10)) : -1;
    for (int i = 0; j >= 0 && i < FO_NODES; i++)
      if (alive[i] && strlen(F.uuid[i]) == (size_t)(slash - key) &&
          strncmp(key, F.uuid[i], (size_t)(slash - key)) == 0)
        owner[j] = i;
  }
  cx_coord_kvs_free(&kvs);
  return n;
}

/* Steady state: every node alive, every job on an alive node and fired in
 * the last 1.5 s. */
static int fo_settle(struct cx_coord *c, int owner[FO_JOBS])
{
  int alive[FO_NODES];
  for (int t = 0; t < 1200; t++) {
    int ok = fo_owners(c, owner, alive) == FO_NODES;
    cx_mono now = cx_mono_now();
    pthread_mutex_lock(&F.mu);
    for (int j = 0; ok && j < FO_JOBS; j++)
      ok = owner[j] >= 0 && now - F.last[j] < 1500000;
    pthread_mutex_unlock(&F.mu);
    if (ok)
      return 0;
    cx_sleep_us(100000);
  }
  fprintf(stderr, "cluster did not settle in 120 s\n");
  return -1;
}

static int fo_setup(char *err)
{
  static char resp[65536];
  char body[512];
  if (cx_svc_mariadb_start(&F.db, NULL, err) != 0 ||
      cx_svc_port_alloc(&F.admin_port, err) != 0 ||
      cx_svc_dir_make("admin", F.admin_dir, CX_SVC_PATH_LEN, err) != 0)
    return -1;
  for (int i = 0; i < FO_NODES; i++)
    if (cx_svc_dir_make("node", F.node_dir[i], CX_SVC_PATH_LEN, err) != 0)
      return -1;
  if (fo_start(-1, err) != 0 ||
      wait_file_word(F.admin_dir, "initial-admin.txt", "token = ", F.token,
                     sizeof F.token) != 0)
    return -1;
  for (int i = 0; i < FO_NODES; i++)
    if (fo_start(i, err) != 0)
      return -1;
  for (int i = 0; i < FO_NODES; i++)
    if (wait_file_word(F.node_dir[i], "node.id", NULL, F.uuid[i],
                       sizeof F.uuid[i]) != 0)
      return -1;
  for (int j = 0; j < FO_JOBS; j++) {
    snprintf(body, sizeof body,
             "{\"name\":\"failover-%02d\",\"command\":\"http://127.0.0.1:%d/"
             "j/%d\",\"type\":2,\"spec\":\"* * * * * *\",\"allocation\":2,"
             "\"timezone\":\"UTC\",\"timeout\":10}",
             j, F.http_port, j);
    long st = 0;
    for (int t = 0; t < 200 && st != 200; t++) {
      st = fo_api("POST", "/job/add", body, resp, sizeof resp);
      if (st != 200)
        cx_sleep_us(300000);
    }
    json_t *o = json_loads(resp, 0, NULL);
    json_t *id = json_object_get(json_object_get(o, "data"), "id");
    F.id[j] = json_is_integer(id) ? json_integer_value(id) : 0;
    json_decref(o);
    if (st != 200 || F.id[j] <= 0) {
      snprintf(err, CX_ERR_LEN, "/job/add: %ld %.200s", st, resp);
      return -1;
    }
  }
  return 0;
}

static void fo_stats(const char *name, double *v, size_t n)
{
  qsort(v, n, sizeof *v, cmp_d);
  printf("%s_p50_ms %.0f\n%s_p99_ms %.0f\n%s_max_ms %.0f\n", name,
         pct(v, n, 50), name, pct(v, n, 99), name, v[n - 1]);
}

/* etcd's own expiry lag, the floor under every failover: FO_LAG leases
 * of ttl s granted about 50 ms apart, never renewed, a key each;
 * lag = the key's DELETE seen by the watch - (grant request sent + ttl). */
static int fo_lag(struct cx_coord *c, int ttl, double *lag, char *err)
{
  for (int i = 0; i < FO_LAG; i++) {
    char key[32];
    int64_t lease;
    cx_sleep_us((int64_t)(rand() % 100) * 1000);
    cx_mono sent = cx_mono_now();
    int kl = snprintf(key, sizeof key, "/cronix/lag/%d", i);
    if (cx_coord_lease_grant(c, ttl, 0, NULL, NULL, &lease, NULL, err) != 0 ||
        cx_coord_put(c, key, (size_t)kl, "x", 1, lease, NULL, err) != 0)
      return -1;
    pthread_mutex_lock(&F.mu);
    F.lag_sent[i] = sent;
    pthread_mutex_unlock(&F.mu);
  }
  for (int t = 0; t < (ttl + 10) * 50; t++) {
    int done = 1;
    pthread_mutex_lock(&F.mu);
    for (int i = 0; i < FO_LAG; i++)
      done &= F.lag_del[i] != 0;
    pthread_mutex_unlock(&F.mu);
    if (done)
      break;
    cx_sleep_us(20000);
  }
  pthread_mutex_lock(&F.mu);
  for (int i = 0; i < FO_LAG; i++)
    lag[i] =
        F.lag_del[i] == 0
            ? 1e9
            : (double)(F.lag_del[i] - F.lag_sent[i]) / 1000.0 - ttl * 1000.0;
  pthread_mutex_unlock(&F.mu);
  return 0;
}

static int failover(int trials, int ttl)
{
  char err[CX_ERR_LEN] = "";
  int rc = 1, owner[FO_JOBS], victim = FO_NODES - 1;
  struct cx_coord *c = NULL;
  struct cx_coord_watch *w = NULL;
  struct MHD_Daemon *httpd = NULL;
  size_t cap = (size_t)trials * FO_JOBS, nj = 0;
  double *trial = calloc((size_t)trials, sizeof(double));
  double *job = calloc(cap, sizeof(double));
  double *expiry = calloc((size_t)trials, sizeof(double));
  double *move = calloc((size_t)trials, sizeof(double));
  double *start = calloc(cap, sizeof(double));
  double lag[FO_LAG];
  size_t ns = 0;
  struct cx_coord_cfg cc = {.endpoints = etcd.endpoints};
  struct cx_coord_watch_cbs cbs = {.event = fo_event, .resync = fo_resync};
  F.ttl = ttl;
  srand((unsigned)cx_wall_ms());
  if (!trial || !job || !expiry || !move || !start)
    goto out;
  if (cx_svc_port_alloc(&F.http_port, err) != 0)
    goto out;
  httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD,
                           (uint16_t)F.http_port, NULL, NULL, fo_request, NULL,
                           MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_END);
  if (httpd == NULL || fo_setup(err) != 0 || cx_coord_open(&cc, &c, err) != 0 ||
      cx_coord_watch(c, "/cronix/", 8, 0, &cbs, NULL, &w, err) != 0)
    goto out;
  if (fo_lag(c, ttl, lag, err) != 0)
    goto out;
  fprintf(stderr, "failover: %d jobs on %d nodes, node.ttl %d s, %s\n", FO_JOBS,
          FO_NODES, ttl, cronix_bin());
  for (int t = 0; t < trials; t++) {
    if (fo_settle(c, owner) != 0)
      goto out;
    cx_sleep_us((int64_t)(rand() % 1000) * 1000); /* any phase */
    if (fo_settle(c, owner) != 0)
      goto out;
    int n = 0;
    for (int k = 0; k < FO_NODES && n == 0; k++) { /* next node with jobs */
      victim = (victim + 1) % FO_NODES;
      for (int j = 0; j < FO_JOBS; j++)
        n += owner[j] == victim;
    }
    pthread_mutex_lock(&F.mu);
    F.victim = victim;
    F.del = 0;
    for (int j = 0; j < FO_JOBS; j++)
      F.first[j] = F.moved[j] = 0;
    pthread_mutex_unlock(&F.mu);
    cx_mono t0 = cx_mono_now();
    cx_svc_proc_signal(&F.node[victim], SIGKILL, err);
    cx_svc_proc_stop(&F.node[victim], 0, err); /* reaps */
    pthread_mutex_lock(&F.mu);
    F.mark = cx_mono_now(); /* nothing of the victim can arrive after */
    pthread_mutex_unlock(&F.mu);
    int done = 0;
    for (int k = 0; k < (ttl + 60) * 50 && !done; k++) {
      cx_sleep_us(20000);
      done = 1;
      pthread_mutex_lock(&F.mu);
      for (int j = 0; j < FO_JOBS; j++)
        done &= owner[j] != victim || F.first[j] != 0;
      pthread_mutex_unlock(&F.mu);
    }
    pthread_mutex_lock(&F.mu);
    F.mark = 0;
    double worst = 0, last_move = 0, first_move = 1e18;
    for (int j = 0; done && j < FO_JOBS; j++) {
      if (owner[j] != victim)
        continue;
      double d = (double)(F.first[j] - t0) / 1000.0;
      double m = F.moved[j] ? (double)(F.moved[j] - t0) / 1000.0 : -1;
      job[nj++] = d;
      worst = d > worst ? d : worst;
      last_move = m > last_move ? m : last_move;
      first_move = m >= 0 && m < first_move ? m : first_move;
      if (F.moved[j] != 0 && F.first[j] >= F.moved[j])
        start[ns++] = (double)(F.first[j] - F.moved[j]) / 1000.0;
    }
    double del = F.del ? (double)(F.del - t0) / 1000.0 : -1;
    pthread_mutex_unlock(&F.mu);
    if (!done) {
      fprintf(stderr, "trial %d: node%d's jobs never ran elsewhere\n", t,
              victim);
      goto out;
    }
    trial[t] = worst;
    expiry[t] = del;
    move[t] = last_move - del;
    fprintf(stderr,
            "trial %2d/%d node%d %2d jobs: key deleted +%.0f ms, moved "
            "+%.0f..+%.0f ms, all ran elsewhere +%.0f ms\n",
            t + 1, trials, victim, n, del, first_move, last_move, worst);
    if (fo_start(victim, err) != 0)
      goto out;
  }
  printf("failover_ttl_s %d\nfailover_jobs %d\nfailover_nodes %d\n"
         "trials %d\n",
         ttl, FO_JOBS, FO_NODES, trials);
  fo_stats("trial_delay", trial, (size_t)trials);
  fo_stats("job_delay", job, nj);
  fo_stats("kill_to_key_delete", expiry, (size_t)trials);
  fo_stats("key_delete_to_last_move", move, (size_t)trials);
  if (ns > 0)
    fo_stats("move_to_first_request", start, ns);
  fo_stats("etcd_lease_expiry_lag", lag, FO_LAG);
  rc = 0;
out:
  if (rc != 0 && err[0] != '\0')
    fprintf(stderr, "failover: %s\n", err);
  cx_coord_watch_cancel(w);
  if (c != NULL)
    cx_coord_close(c);
  for (int i = 0; i < FO_NODES; i++)
    cx_svc_proc_stop(&F.node[i], 5000, err);
  cx_svc_proc_stop(&F.admin, 5000, err);
  if (httpd != NULL)
    MHD_stop_daemon(httpd);
  cx_svc_mariadb_destroy(&F.db);
  free(trial);
  free(job);
  free(expiry);
  free(move);
  free(start);
  return rc;
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
  else if (strcmp(what, "failover") == 0) {
    long ttl = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
    rc = failover(arg > 0 && arg <= 1000 ? (int)arg : 50,
                  ttl > 0 && ttl <= 60 ? (int)ttl : 5);
  } else {
    fprintf(stderr, "usage: cluster_bench takeover|reconcile [N] | "
                    "failover [TRIALS] [TTL_S]\n");
    rc = 2;
  }
  cx_svc_etcd_destroy(&etcd);
  return rc;
}
