/*
 * The chaos test of the cluster (issue 7, SPEC §9-§10): real processes,
 * real faults, and a checker of every fire.
 *
 * On loopback: a 3-member etcd cluster, MariaDB, 2 `cronix admin` and 3
 * `cronix node` processes (the binary under test), node.ttl = 2 s. 200
 * jobs are loaded through the API (cmd and http, auto and manual, firing
 * every 1-5 s). Then, for CX_CHAOS_SECONDS (default 120), faults are
 * injected one at a time at random moments from a seeded RNG
 * (CX_CHAOS_SEED, printed): SIGKILL a node and restart it, SIGKILL the
 * leader admin and restart it, SIGSTOP a node longer than the TTL then
 * SIGCONT it, restart one etcd member, restart MariaDB.
 *
 * The checker reads cronix_job_log over libmariadb and recomputes every
 * job's fires with cx_cron_next over the checked span:
 * - duplicates: more than one row for a (job_id, scheduled_at), or a job
 *   that executed more often than it has rows (a fire that ran twice): http
 *   jobs call the driver's own HTTP server, which counts requests per job,
 *   and a third of the cmd jobs append a line to a marker file per run.
 *   Must be 0.
 * - every fire accounted for (issue 12): each expected fire must have
 *   exactly one row — its own (a run, skipped, lost) or a `missed` row,
 *   which may stand for a range (scheduled_at .. missed_last). A fire with
 *   no row at all ("no-row") must be 0 under every fault, and so must a
 *   fire with two (its own and a range: "overlap"). A fire may be missed
 *   only when the node that owned its job (the node of the job's latest
 *   recorded non-missed fire before it, or run_on for a manual job) was
 *   made unavailable by an injected node fault (SIGKILL or SIGSTOP at k):
 *     auto job:   k - 1 s <= fire <= k + ttl + 1 s + SLACK
 *                 (SPEC §10: failover costs at most ttl + 1 s; the misfire
 *                 policy run_once runs only the LATEST missed fire, so the
 *                 earlier ones in that span are legitimately collapsed)
 *     manual job: k - 1 s <= fire <= back + ttl + 1 s + SLACK, back = the
 *                 node's restart / SIGCONT (manual jobs wait for their node)
 *   SLACK (CHAOS_SLACK_S) is processing time on a busy sanitizer build.
 *   Leader kills, etcd member restarts and MariaDB restarts get NO window:
 *   the standby admin takes over, etcd keeps quorum, and the node's spool
 *   keeps the run records (SPEC §9.7). Missed fires outside the windows
 *   ("missed-out") must be 0.
 * - max failover delay: node fault at k -> the first later run of a job the
 *   node owned, on another node (auto jobs).
 * A negative control follows: one recorded fire's row is deleted and a
 * second pass must count exactly one more fire without a row.
 * The summary table (per fault kind and overall) goes to stderr and, when
 * CX_CHAOS_REPORT names a file, to that file (`make chaos` prints it).
 */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <mysql.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cron/cron.h"
#include "support/run.h"
#include "support/services.h"
#include "support/test.h"
#include "util/util.h"

#define NJOBS 200
#define NBCAST 2 /* broadcast jobs (allocation 3) besides the NJOBS */
#define NNODES 3
#define NADMINS 2
#define TTL_S 2
#define CHAOS_SLACK_S 4
#define MAX_FAULTS 512
#define MAX_DELAYS 65536

enum fault_kind {
  F_NODE_KILL,
  F_LEADER_KILL,
  F_PARTITION,
  F_ETCD,
  F_MARIADB,
  F_NKINDS
};
static const char *const kind_name[F_NKINDS] = {
    "node_kill", "leader_kill", "partition", "etcd_restart", "mariadb_restart"};

struct fault {
  enum fault_kind kind;
  int target;       /* node / admin / etcd member index */
  int64_t start_ms; /* when the fault began */
  int64_t back_ms;  /* when the component was restarted / resumed */
  char node_uuid[64];
  /* the checker's: its moved jobs, and the latest first fire after it */
  long moves;
  int64_t worst_late_ms, worst_job;
};

struct job {
  int64_t id;
  int type, manual, period;
  char spec[32];
  char run_on[64];
  struct cx_cron *cron;
  long hits; /* http jobs: requests the driver's server answered */
};

static struct {
  struct cx_svc_etcd etcd;
  struct cx_svc_mariadb db;
  struct cx_svc_proc admin[NADMINS], node[NNODES];
  int admin_port[NADMINS];
  char admin_dir[NADMINS][CX_SVC_PATH_LEN];
  char node_dir[NNODES][CX_SVC_PATH_LEN];
  char node_uuid[NNODES][64];
  char token[128];
  struct MHD_Daemon *httpd;
  int http_port;
  pthread_mutex_t mu;
  struct job jobs[NJOBS];
  struct job bjobs[NBCAST];
  struct fault faults[MAX_FAULTS];
  int nfaults;
  uint64_t rng;
  FILE *report;
  int64_t delays[MAX_DELAYS]; /* failover delays, ms (the checker's) */
  int64_t lates[MAX_DELAYS];  /* the first due fire's lateness, ms */
  size_t ndelays;
  int quiet; /* the checker's second pass (negative control) prints nothing */
  char marks[CX_SVC_PATH_LEN]; /* cmd jobs i % 6 == 0 append a line here */
} C = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- small helpers ------------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
  va_list ap;
  if (C.quiet)
    return;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (C.report != NULL) {
    va_start(ap, fmt);
    vfprintf(C.report, fmt, ap);
    va_end(ap);
    fflush(C.report);
  }
}

static uint64_t rnd(void) /* xorshift64*, seeded */
{
  C.rng ^= C.rng >> 12;
  C.rng ^= C.rng << 25;
  C.rng ^= C.rng >> 27;
  return C.rng * 2685821657736338717ULL;
}
static int rnd_in(int lo, int hi)
{
  return lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
}

static int chaos_seconds(void)
{
  const char *s = getenv("CX_CHAOS_SECONDS");
  long v = s ? strtol(s, NULL, 10) : 0;
  return v > 0 && v < 86400 ? (int)v : 120;
}

static int read_file(const char *path, char *buf, size_t cap)
{
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
  return (int)n;
}

/* Copies src into dst[cap], cut to fit. */
static void copy_str(char *dst, size_t cap, const char *src)
{
  size_t n = strlen(src);
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* ---- the http jobs' target ----------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
  (void)cls, (void)method, (void)version, (void)data, (void)size, (void)con_cls;
  if (strncmp(url, "/j/", 3) == 0) {
    long i = strtol(url + 3, NULL, 10);
    if (i >= 0 && i < NJOBS) {
      pthread_mutex_lock(&C.mu);
      C.jobs[i].hits++;
      pthread_mutex_unlock(&C.mu);
    }
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(
      3, (void *)"ok\n", MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(conn, 200, r);
  MHD_destroy_response(r);
  return ret;
}

/* ---- processes ----------------------------------------------------------- */

/* Starts `cronix ROLE` (admin or node i) on the shared store and etcd, with
 * node.ttl = 2 s; an admin also listens and may auto-place cmd jobs. */
static void daemon_start(const char *role, int i)
{
  char err[CX_ERR_LEN], listen[64], log[CX_SVC_PATH_LEN + 16], name[16];
  int admin = strcmp(role, "admin") == 0;
  const char *dir = admin ? C.admin_dir[i] : C.node_dir[i];
  struct cx_svc_proc *p = admin ? &C.admin[i] : &C.node[i];
  const char *argv[24] = {cx_test_cronix_bin(),
                          role,
                          "--data-dir",
                          dir,
                          "--store",
                          C.db.url,
                          "--etcd",
                          C.etcd.endpoints,
                          "--set",
                          "node.ttl=2s",
                          "--set",
                          "system.default_timezone=UTC"};
  if (admin) {
    snprintf(listen, sizeof listen, "127.0.0.1:%d", C.admin_port[i]);
    argv[12] = "--listen";
    argv[13] = listen;
    argv[14] = "--set";
    argv[15] = "system.cmd_auto_allocation=true";
  }
  snprintf(log, sizeof log, "%s/%s.log", dir, role);
  snprintf(name, sizeof name, "%s%d", role, i);
  ASSERT_MSG(cx_svc_proc_set_argv(p, name, log, argv, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_proc_start(p, err) == 0, "%s", err);
}

static void admin_start(int i)
{
  daemon_start("admin", i);
}
static void node_start(int i)
{
  daemon_start("node", i);
}

/* ---- the API ------------------------------------------------------------- */

/* One authenticated API call to admin i; the HTTP status (0: no answer).
 * A body longer than cap is cut. */
static long api(int i, const char *method, const char *path, const char *body,
                char *resp, size_t cap)
{
  char url[256];
  long status = 0;
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", C.admin_port[i], path);
  cx_svc_http_auth(method, url, C.token, body, 10000, &status, resp, cap, NULL);
  return status;
}

/* Index of the admin whose /metrics says cronix_leader 1, or -1. */
static int find_leader(void)
{
  static char resp[65536];
  for (int i = 0; i < NADMINS; i++)
    if (cx_svc_proc_alive(&C.admin[i]) &&
        api(i, "GET", "/metrics", NULL, resp, sizeof resp) == 200 &&
        strstr(resp, "\ncronix_leader 1") != NULL)
      return i;
  return -1;
}

/* ---- set-up -------------------------------------------------------------- */

static void wait_token(void)
{
  char path[CX_SVC_PATH_LEN + 32], text[1024];
  snprintf(path, sizeof path, "%s/initial-admin.txt", C.admin_dir[0]);
  for (int t = 0; t < 1200; t++) {
    char *p;
    if (read_file(path, text, sizeof text) > 0 &&
        (p = strstr(text, "token = ")) != NULL) {
      p += 8;
      size_t n = strcspn(p, "\r\n");
      if (n > 0 && n < sizeof C.token) {
        memcpy(C.token, p, n);
        C.token[n] = '\0';
        return;
      }
    }
    ASSERT_MSG(cx_svc_proc_alive(&C.admin[0]), "admin0 exited; see %s",
               C.admin[0].log_path);
    cx_sleep_us(50000);
  }
  ASSERT_MSG(0, "no token in %s after 60 s", path);
}

static void wait_api(int i)
{
  static char resp[65536];
  for (int t = 0; t < 600; t++) {
    if (api(i, "GET", "/metrics", NULL, resp, sizeof resp) == 200)
      return;
    ASSERT_MSG(cx_svc_proc_alive(&C.admin[i]), "admin%d exited; see %s", i,
               C.admin[i].log_path);
    cx_sleep_us(100000);
  }
  ASSERT_MSG(0, "admin%d API not up after 60 s", i);
}

static void wait_node_id(int i)
{
  char path[CX_SVC_PATH_LEN + 16], text[256];
  snprintf(path, sizeof path, "%s/node.id", C.node_dir[i]);
  for (int t = 0; t < 600; t++) {
    if (read_file(path, text, sizeof text) > 0) {
      size_t n = strcspn(text, " \r\n");
      if (n > 0 && n < sizeof C.node_uuid[i]) {
        memcpy(C.node_uuid[i], text, n);
        C.node_uuid[i][n] = '\0';
        return;
      }
    }
    ASSERT_MSG(cx_svc_proc_alive(&C.node[i]), "node%d exited; see %s", i,
               C.node[i].log_path);
    cx_sleep_us(100000);
  }
  ASSERT_MSG(0, "no %s after 60 s", path);
}

static void load_jobs(void)
{
  static char resp[65536];
  char body[1024], err[CX_ERR_LEN];
  for (int i = 0; i < NJOBS; i++) {
    struct job *j = &C.jobs[i];
    j->period = 1 + i % 5;
    j->type = i % 2 ? 2 : 1;
    j->manual = i % 4 == 3;
    if (j->period == 1)
      snprintf(j->spec, sizeof j->spec, "* * * * * *");
    else
      snprintf(j->spec, sizeof j->spec, "*/%d * * * * *", j->period);
    char cmd[CX_SVC_PATH_LEN + 64];
    if (j->type == 2)
      snprintf(cmd, sizeof cmd, "http://127.0.0.1:%d/j/%d", C.http_port, i);
    else if (i % 3 == 0) /* a line per run: evidence of double runs */
      snprintf(cmd, sizeof cmd, "echo x >> %s/%d", C.marks, i);
    else
      snprintf(cmd, sizeof cmd, "true");
    if (j->manual)
      copy_str(j->run_on, sizeof j->run_on, C.node_uuid[i % NNODES]);
    snprintf(body, sizeof body,
             "{\"name\":\"chaos-%03d\",\"command\":\"%s\",\"type\":%d,"
             "\"spec\":\"%s\",\"allocation\":%d,\"run_on\":\"%s\","
             "\"timezone\":\"UTC\",\"timeout\":20}",
             i, cmd, j->type, j->spec, j->manual ? 1 : 2, j->run_on);
    long st = 0;
    for (int t = 0; t < 100; t++) { /* nodes may still be registering */
      st = api(i % NADMINS, "POST", "/job/add", body, resp, sizeof resp);
      if (st == 200)
        break;
      cx_sleep_us(300000);
    }
    ASSERT_MSG(st == 200, "job %d: /job/add %ld: %s", i, st, resp);
    json_error_t je;
    json_t *o = json_loads(resp, 0, &je);
    json_t *id = json_object_get(json_object_get(o, "data"), "id");
    ASSERT_MSG(json_is_integer(id), "job %d: no id in %s", i, resp);
    j->id = json_integer_value(id);
    json_decref(o);
    struct cx_cron_opts co = {.timezone = "UTC"};
    ASSERT_MSG(cx_cron_parse(j->spec, &co, &j->cron, err) == 0, "%s", err);
  }
}

/* Broadcast jobs: a cmd job every second and an http one every 3 s, run
 * by every node. */
static void load_bcast(void)
{
  static char resp[65536];
  char body[1024], err[CX_ERR_LEN];
  for (int i = 0; i < NBCAST; i++) {
    struct job *j = &C.bjobs[i];
    j->type = i == 0 ? 1 : 2;
    j->period = i == 0 ? 1 : 3;
    snprintf(j->spec, sizeof j->spec, i == 0 ? "* * * * * *" : "*/3 * * * * *");
    char cmd[128];
    if (j->type == 2)
      snprintf(cmd, sizeof cmd, "http://127.0.0.1:%d/b/%d", C.http_port, i);
    else
      snprintf(cmd, sizeof cmd, "true");
    snprintf(body, sizeof body,
             "{\"name\":\"chaos-bcast-%d\",\"command\":\"%s\",\"type\":%d,"
             "\"spec\":\"%s\",\"allocation\":3,\"timezone\":\"UTC\","
             "\"timeout\":20}",
             i, cmd, j->type, j->spec);
    long st = api(0, "POST", "/job/add", body, resp, sizeof resp);
    ASSERT_MSG(st == 200, "bcast %d: /job/add %ld: %s", i, st, resp);
    json_t *o = json_loads(resp, 0, NULL);
    j->id =
        json_integer_value(json_object_get(json_object_get(o, "data"), "id"));
    json_decref(o);
    ASSERT(j->id > 0);
    struct cx_cron_opts co = {.timezone = "UTC"};
    ASSERT_MSG(cx_cron_parse(j->spec, &co, &j->cron, err) == 0, "%s", err);
  }
}

/* ---- faults -------------------------------------------------------------- */

static double rel(int64_t ms, int64_t t0_ms)
{
  return (double)(ms - t0_ms) / 1e3;
}

static void sleep_s(int s)
{
  cx_sleep_us((int64_t)s * 1000000);
}

static void kill_reap(struct cx_svc_proc *p)
{
  char err[CX_ERR_LEN];
  cx_svc_proc_signal(p, SIGKILL, err);
  cx_svc_proc_stop(p, 0, err); /* reaps */
}

static void inject(struct fault *f, int64_t t0_ms)
{
  char err[CX_ERR_LEN] = "";
  int i;
  f->start_ms = cx_wall_ms();
  switch (f->kind) {
  case F_NODE_KILL:
    i = f->target = rnd_in(0, NNODES - 1);
    copy_str(f->node_uuid, sizeof f->node_uuid, C.node_uuid[i]);
    kill_reap(&C.node[i]);
    sleep_s(TTL_S + rnd_in(1, 5));
    node_start(i);
    break;
  case F_LEADER_KILL:
    i = f->target = find_leader();
    if (i < 0) {
      say("  +%.1fs leader_kill: no leader found, skipped\n",
          rel(f->start_ms, t0_ms));
      f->kind = F_NKINDS;
      return;
    }
    kill_reap(&C.admin[i]);
    sleep_s(rnd_in(1, 3));
    admin_start(i);
    break;
  case F_PARTITION:
    i = f->target = rnd_in(0, NNODES - 1);
    copy_str(f->node_uuid, sizeof f->node_uuid, C.node_uuid[i]);
    cx_svc_proc_signal(&C.node[i], SIGSTOP, err);
    sleep_s(TTL_S + 1 + rnd_in(1, 4));
    cx_svc_proc_signal(&C.node[i], SIGCONT, err);
    break;
  case F_ETCD:
    i = f->target = rnd_in(0, C.etcd.n - 1);
    ASSERT_MSG(cx_svc_etcd_member_stop(&C.etcd, i, err) == 0, "%s", err);
    sleep_s(rnd_in(1, 3));
    ASSERT_MSG(cx_svc_etcd_member_start(&C.etcd, i, err) == 0, "%s", err);
    ASSERT_MSG(cx_svc_etcd_wait_healthy(&C.etcd, -1, 30000, err) == 0, "%s",
               err);
    break;
  case F_MARIADB:
    f->target = 0;
    ASSERT_MSG(cx_svc_mariadb_restart(&C.db, err) == 0, "%s", err);
    break;
  default:
    break;
  }
  f->back_ms = cx_wall_ms();
  say("  +%.1fs %-15s target %d %s back at +%.1fs\n", rel(f->start_ms, t0_ms),
      kind_name[f->kind], f->target, f->node_uuid, rel(f->back_ms, t0_ms));
}

/* ---- the checker --------------------------------------------------------- */

struct row {
  int64_t job_id, sched, start_ms;
  int64_t last; /* the last fire it accounts for: sched, or a range's end */
  char node[40];
  char status[12];
};

static int is_missed(const struct row *r)
{
  return strcmp(r->status, "missed") == 0;
}

struct tally {
  long expected, recorded, dup, lost_allowed, lost_outside;
  long silent;  /* fires without any row: must be 0, faults or not */
  long overlap; /* fires with a row of their own AND in a missed range */
  long skipped; /* recorded as skipped: concurrency forbid (SPEC §3) */
  long stray_skips, stale_runs; /* findings, shown (see the functions) */
  long open_runs;               /* rows left "running" at the end */
  int64_t max_failover_ms;      /* node fault -> first run elsewhere */
  int64_t max_late_ms; /* the job's next fire after the fault -> ditto */
  long failovers;
  /* broadcast jobs, per (fire, node) from the node's first row on */
  long b_expected, b_dup, b_unaccounted;
};

static int i64_cmp(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int row_cmp(const void *a, const void *b)
{
  const struct row *x = a, *y = b;
  if (x->job_id != y->job_id)
    return x->job_id < y->job_id ? -1 : 1;
  if (x->sched != y->sched)
    return x->sched < y->sched ? -1 : 1;
  return (x->start_ms > y->start_ms) - (x->start_ms < y->start_ms);
}

static struct row *load_rows(MYSQL *m, size_t *n)
{
  ASSERT_MSG(mysql_query(m, "SELECT job_id, scheduled_at, start_time,"
                            " node_uuid, status, missed_last"
                            " FROM cronix_job_log"
                            " WHERE scheduled_at IS NOT NULL") == 0,
             "%s", mysql_error(m));
  MYSQL_RES *res = mysql_store_result(m);
  ASSERT_MSG(res != NULL, "%s", mysql_error(m));
  size_t cap = mysql_num_rows(res) + 1, k = 0;
  struct row *r = cx_calloc(cap, sizeof *r);
  ASSERT(r != NULL);
  MYSQL_ROW mr;
  while ((mr = mysql_fetch_row(res)) != NULL && k < cap) {
    r[k].job_id = strtoll(mr[0], NULL, 10);
    r[k].sched = strtoll(mr[1], NULL, 10);
    r[k].start_ms = strtoll(mr[2], NULL, 10);
    snprintf(r[k].node, sizeof r[k].node, "%s", mr[3] ? mr[3] : "");
    snprintf(r[k].status, sizeof r[k].status, "%s", mr[4] ? mr[4] : "");
    r[k].last = mr[5] ? strtoll(mr[5], NULL, 10) : 0;
    if (r[k].last < r[k].sched)
      r[k].last = r[k].sched;
    k++;
  }
  mysql_free_result(res);
  qsort(r, k, sizeof *r, row_cmp);
  *n = k;
  return r;
}

/* Fires of job id that executed (cron, misfire, retry, once rows that are
 * not skips), each counted once: a node's "[duplicate: ...]" row (a fire it
 * ran while the store was down and another node had claimed; kept with
 * scheduled_at NULL, src/node/spool.c) is a second execution of a fire
 * already counted, so it is left out here and counted by stray_rows(). */
static long rows_of_job(MYSQL *m, int64_t id)
{
  char q[256];
  snprintf(q, sizeof q,
           "SELECT COUNT(*) FROM cronix_job_log WHERE job_id=%lld AND"
           " status NOT IN ('skipped', 'missed') AND"
           " (scheduled_at IS NOT NULL OR"
           " `trigger` NOT IN ('cron', 'misfire'))",
           (long long)id);
  ASSERT_MSG(mysql_query(m, q) == 0, "%s", mysql_error(m));
  MYSQL_RES *res = mysql_store_result(m);
  ASSERT(res != NULL);
  MYSQL_ROW mr = mysql_fetch_row(res);
  long v = mr && mr[0] ? strtol(mr[0], NULL, 10) : -1;
  mysql_free_result(res);
  return v;
}

/* Cron and misfire rows without scheduled_at: the node writes one when a
 * fire it handled turns out claimed by another node (src/node/spool.c
 * store_put). One that ran (not a skip) is a fire executed twice: a
 * duplicate. A skipped one ran nothing and must not be recorded at all (a
 * stray record, asserted 0). */
static void stray_rows(MYSQL *m, int64_t t0_ms, struct tally *all)
{
  ASSERT_MSG(mysql_query(m, "SELECT job_id, status, `trigger`, node_uuid,"
                            " start_time, LEFT(output, 100)"
                            " FROM cronix_job_log WHERE scheduled_at IS NULL"
                            " AND `trigger` IN ('cron', 'misfire')"
                            " ORDER BY start_time") == 0,
             "%s", mysql_error(m));
  MYSQL_RES *res = mysql_store_result(m);
  ASSERT(res != NULL);
  MYSQL_ROW mr;
  while ((mr = mysql_fetch_row(res)) != NULL) {
    int skip = mr[1] && strcmp(mr[1], "skipped") == 0;
    if (skip)
      all->stray_skips++;
    else
      all->dup++;
    if (!skip || all->stray_skips <= 5)
      say("%s job %s %s row on %s at +%.1fs, scheduled_at NULL: %.*s\n",
          skip ? "STRAY SKIP" : "DUPLICATE RUN", mr[0], mr[2] ? mr[2] : "?",
          mr[3] ? mr[3] : "?", rel(mr[4] ? strtoll(mr[4], NULL, 10) : 0, t0_ms),
          mr[5] ? (int)strcspn(mr[5], "\n") : 0, mr[5] ? mr[5] : "");
  }
  mysql_free_result(res);
}

/* Fires due while a node was SIGSTOPped that the node itself ran after
 * SIGCONT, for jobs that had meanwhile moved to another node (ran there
 * between SIGSTOP and SIGCONT): the node had lost its lease, so fail-closed
 * (SPEC §10) says it starts nothing. The unique claim would still keep
 * such a fire to one run; asserted 0 all the same. */
static void stale_runs(const struct row *r, size_t b, size_t e, int64_t t0_ms,
                       struct tally *all)
{
  for (int fi = 0; fi < C.nfaults; fi++) {
    const struct fault *x = &C.faults[fi];
    if (x->kind != F_PARTITION)
      continue;
    int moved = 0;
    for (size_t q = b; q < e && !moved; q++)
      moved = r[q].start_ms >= x->start_ms && r[q].start_ms <= x->back_ms &&
              strcmp(r[q].node, x->node_uuid) != 0;
    if (!moved)
      continue;
    for (size_t q = b; q < e; q++)
      if (strcmp(r[q].node, x->node_uuid) == 0 && r[q].start_ms >= x->back_ms &&
          r[q].sched * 1000 >= x->start_ms && r[q].sched * 1000 < x->back_ms &&
          strcmp(r[q].status, "skipped") != 0 && !is_missed(&r[q])) {
        if (++all->stale_runs <= 5)
          say("STALE RUN job %lld scheduled_at %lld (+%.1fs) started on %s "
              "at +%.1fs, %.1f s after its SIGCONT; the job had moved\n",
              (long long)r[q].job_id, (long long)r[q].sched,
              rel(r[q].sched * 1000, t0_ms), r[q].node,
              rel(r[q].start_ms, t0_ms), (r[q].start_ms - x->back_ms) / 1e3);
      }
  }
}

/* Lines in job i's marker file (its runs), or -1 when it has none. */
static long marker_lines(int i)
{
  char path[CX_SVC_PATH_LEN + 16];
  if (C.jobs[i].type != 1 || i % 3 != 0)
    return -1;
  snprintf(path, sizeof path, "%s/%d", C.marks, i);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  long n = 0;
  int c;
  while ((c = fgetc(f)) != EOF)
    n += c == '\n';
  fclose(f);
  return n;
}

/* Rows per status, for the summary; *running gets the rows still
 * "running" once every node has stopped (a SIGKILLed node's runs are
 * closed as lost by the leader or by the node's restart: must be 0). */
static void status_tally(MYSQL *m, long *running)
{
  *running = 0;
  ASSERT_MSG(mysql_query(m, "SELECT status, COUNT(*) FROM cronix_job_log"
                            " GROUP BY status ORDER BY status") == 0,
             "%s", mysql_error(m));
  MYSQL_RES *res = mysql_store_result(m);
  ASSERT(res != NULL);
  MYSQL_ROW mr;
  say("rows by status:");
  while ((mr = mysql_fetch_row(res)) != NULL) {
    say(" %s %s", mr[0] ? mr[0] : "?", mr[1] ? mr[1] : "?");
    if (mr[0] && mr[1] && strcmp(mr[0], "running") == 0)
      *running = strtol(mr[1], NULL, 10);
  }
  say("\n");
  mysql_free_result(res);
}

/* The fault whose disruption span holds t_ms (latest start wins), or -1. */
static int fault_at(int64_t t_ms)
{
  int who = -1;
  for (int f = 0; f < C.nfaults; f++) {
    const struct fault *x = &C.faults[f];
    if (x->kind == F_NKINDS)
      continue;
    if (t_ms >= x->start_ms - 1000 &&
        t_ms <= x->back_ms + (TTL_S + 1 + CHAOS_SLACK_S) * 1000)
      who = f;
  }
  return who;
}

/* 1 if t_ms lies in any node fault's window, however long (see
 * allowed_lost): the fires outside all of them cannot be missed. */
static int in_node_fault(int64_t t_ms)
{
  for (int f = 0; f < C.nfaults; f++) {
    const struct fault *x = &C.faults[f];
    if ((x->kind == F_NODE_KILL || x->kind == F_PARTITION) &&
        t_ms >= x->start_ms - 1000 &&
        t_ms <= x->back_ms + (TTL_S + 1 + CHAOS_SLACK_S) * 1000)
      return 1;
  }
  return 0;
}

/* 1 if a lost fire at t (s) of job j, whose owner node is `owner`, lies in
 * the allowed window of an injected node fault (see the top comment). */
static int allowed_lost(const struct job *j, const char *owner, int64_t t)
{
  int64_t t_ms = t * 1000;
  for (int f = 0; f < C.nfaults; f++) {
    const struct fault *x = &C.faults[f];
    if ((x->kind != F_NODE_KILL && x->kind != F_PARTITION) ||
        strcmp(x->node_uuid, owner) != 0)
      continue;
    int64_t end = (j->manual ? x->back_ms : x->start_ms) +
                  (TTL_S + 1 + CHAOS_SLACK_S) * 1000;
    if (t_ms >= x->start_ms - 1000 && t_ms <= end)
      return 1;
  }
  return 0;
}

/* 1 when node (a uuid) was out by an injected node fault around fire t. */
static int node_out(const char *node, int64_t t)
{
  for (int fi = 0; fi < C.nfaults; fi++) {
    const struct fault *x = &C.faults[fi];
    if ((x->kind == F_NODE_KILL || x->kind == F_PARTITION) &&
        strcmp(x->node_uuid, node) == 0 && t * 1000 >= x->start_ms - 1000 &&
        t * 1000 <= x->back_ms + (TTL_S + 1 + CHAOS_SLACK_S) * 1000)
      return 1;
  }
  return 0;
}

/* Broadcast jobs: per node, from its first row of the job to t1, every
 * fire needs exactly one row of that node (its run, or its missed range);
 * none outside the node's own fault windows may lack one, and no (fire,
 * node) may have two. */
static void check_bcast(const struct row *r, size_t nr, int64_t t1,
                        struct tally *all)
{
  for (int b = 0; b < NBCAST; b++) {
    const struct job *j = &C.bjobs[b];
    for (int i = 0; i < NNODES; i++) {
      const char *node = C.node_uuid[i];
      int64_t first = 0;
      for (size_t k = 0; k < nr; k++)
        if (r[k].job_id == j->id && strcmp(r[k].node, node) == 0 &&
            (first == 0 || r[k].sched < first))
          first = r[k].sched;
      if (first == 0)
        continue;
      for (int64_t t = first - 1, f;
           cx_cron_next(j->cron, t, &f) == 0 && f <= t1; t = f) {
        int n = 0;
        for (size_t k = 0; k < nr; k++)
          n += r[k].job_id == j->id && strcmp(r[k].node, node) == 0 &&
               r[k].sched <= f && r[k].last >= f &&
               (r[k].sched == f || is_missed(&r[k]));
        all->b_expected++;
        if (n > 1) {
          all->b_dup++;
          say("BROADCAST DUPLICATE job %lld fire %lld node %s: %d rows\n",
              (long long)j->id, (long long)f, node, n);
        } else if (n == 0 && !node_out(node, f)) {
          all->b_unaccounted++;
          if (all->b_unaccounted <= 20)
            say("BROADCAST NO ROW job %lld fire %lld node %s\n",
                (long long)j->id, (long long)f, node);
        }
      }
    }
  }
  say("broadcast: %ld (fire, node) pairs expected, %ld duplicates, %ld "
      "without a row outside the node's own fault windows\n",
      all->b_expected, all->b_dup, all->b_unaccounted);
}

static void check(int64_t t0, int64_t t1, int64_t t0_ms, struct tally *all)
{
  char err[CX_ERR_LEN];
  struct tally per[F_NKINDS + 1];
  memset(per, 0, sizeof per);
  memset(all, 0, sizeof *all);
  for (int fi = 0; fi < C.nfaults; fi++)
    C.faults[fi].moves = C.faults[fi].worst_late_ms = 0;
  MYSQL *m = cx_svc_mariadb_connect(&C.db, err);
  ASSERT_MSG(m != NULL, "%s", err);
  C.ndelays = 0;
  size_t nr = 0;
  struct row *r = load_rows(m, &nr);
  status_tally(m, &all->open_runs);
  stray_rows(m, t0_ms, all);
  say("checker: %zu fire rows in cronix_job_log, span +0..+%llds\n", nr,
      (long long)(t1 - t0));

  for (int i = 0; i < NJOBS; i++) {
    const struct job *j = &C.jobs[i];
    size_t lo = 0, hi = nr;
    while (lo < hi) { /* first row of the job */
      size_t mid = (lo + hi) / 2;
      if (r[mid].job_id < j->id)
        lo = mid + 1;
      else
        hi = mid;
    }
    size_t b = lo, e = lo;
    while (e < nr && r[e].job_id == j->id)
      e++;
    /* duplicates over every row of the job */
    for (size_t k = b + 1; k < e; k++)
      if (r[k].sched == r[k - 1].sched) {
        int fk = fault_at(r[k].sched * 1000);
        per[fk < 0 ? F_NKINDS : C.faults[fk].kind].dup++;
        all->dup++;
        say("DUPLICATE job %lld scheduled_at %lld: rows on %s (%s) and %s "
            "(%s)\n",
            (long long)j->id, (long long)r[k].sched, r[k - 1].node,
            r[k - 1].status, r[k].node, r[k].status);
      }
    /* a fire that ran twice: more requests (http) or marker lines (cmd)
     * than the job has rows of any kind */
    long hits = j->type == 2 ? j->hits : marker_lines(i);
    if (hits >= 0) {
      long rows = rows_of_job(m, j->id);
      if (hits > rows) {
        all->dup += hits - rows;
        per[F_NKINDS].dup += hits - rows;
        say("DOUBLE RUN job %lld: %ld executions seen for %ld run rows\n",
            (long long)j->id, hits, rows);
      }
    }
    /* expected fires in (t0, t1]: each needs exactly one row, its own or
     * a missed range's; missed only in a node fault's window */
    size_t k = b;
    const char *owner = j->manual ? j->run_on : "";
    int64_t t = t0, f, cover = 0; /* the end of the missed ranges passed */
    while (cx_cron_next(j->cron, t, &f) == 0 && f <= t1) {
      t = f;
      while (k < e && r[k].sched < f) {
        if (is_missed(&r[k])) {
          if (r[k].last > cover)
            cover = r[k].last;
        } else if (!j->manual) {
          owner = r[k].node; /* a missed row names its writer, not owner */
        }
        k++;
      }
      int fk = fault_at(f * 1000);
      struct tally *pk = &per[fk < 0 ? F_NKINDS : C.faults[fk].kind];
      pk->expected++;
      all->expected++;
      int own = k < e && r[k].sched == f, ranged = cover >= f;
      const char *why = NULL;
      if (own && ranged) {
        pk->overlap++;
        all->overlap++;
        why = "TWO ROWS (its own and a missed range)";
      }
      if (own && !is_missed(&r[k])) {
        int sk = strcmp(r[k].status, "skipped") == 0;
        pk->recorded++;
        all->recorded++;
        pk->skipped += sk;
        all->skipped += sk;
      } else if (!own && !ranged) {
        pk->silent++;
        all->silent++;
        why = "NO ROW";
      } else if (allowed_lost(j, owner, f)) {
        pk->lost_allowed++;
        all->lost_allowed++;
      } else {
        pk->lost_outside++;
        all->lost_outside++;
        why = "MISSED outside a node fault's window";
      }
      if (why != NULL && all->lost_outside + all->silent + all->overlap <= 50)
        say("%s: job %lld (%s, %s, %s) scheduled_at %lld (+%.1fs), owner "
            "%s, during %s\n",
            why, (long long)j->id, j->spec, j->type == 1 ? "cmd" : "http",
            j->manual ? "manual" : "auto", (long long)f, rel(f * 1000, t0_ms),
            owner[0] ? owner : "?",
            fk < 0 ? "no fault" : kind_name[C.faults[fk].kind]);
    }
    if (!j->manual)
      stale_runs(r, b, e, t0_ms, all);
    /* failover delay of auto jobs: node fault -> first run elsewhere */
    if (!j->manual)
      for (int fi = 0; fi < C.nfaults; fi++) {
        const struct fault *x = &C.faults[fi];
        if (x->kind != F_NODE_KILL && x->kind != F_PARTITION)
          continue;
        const char *own = "";
        size_t q = b;
        for (; q < e && r[q].start_ms <= x->start_ms; q++)
          if (!is_missed(&r[q]))
            own = r[q].node;
        if (strcmp(own, x->node_uuid) != 0)
          continue;
        for (; q < e; q++)
          if (strcmp(r[q].node, x->node_uuid) != 0 && !is_missed(&r[q])) {
            int64_t d = r[q].start_ms - x->start_ms, next = 0;
            int64_t from = x->start_ms;
            if (cx_cron_next(j->cron, (x->start_ms + 999) / 1000 - 1, &next) ==
                    0 &&
                next * 1000 > from)
              from = next * 1000;
            int64_t late = r[q].start_ms - from;
            if (late > per[x->kind].max_late_ms)
              per[x->kind].max_late_ms = late;
            if (late > all->max_late_ms)
              all->max_late_ms = late;
            C.faults[fi].moves++;
            if (late > C.faults[fi].worst_late_ms) {
              C.faults[fi].worst_late_ms = late;
              C.faults[fi].worst_job = j->id;
            }
            if (C.ndelays < MAX_DELAYS) {
              C.lates[C.ndelays] = late < 0 ? 0 : late;
              C.delays[C.ndelays++] = d;
            }
            per[x->kind].failovers++;
            all->failovers++;
            if (d > per[x->kind].max_failover_ms)
              per[x->kind].max_failover_ms = d;
            if (d > all->max_failover_ms)
              all->max_failover_ms = d;
            break;
          }
      }
  }
  check_bcast(r, nr, t1, all);
  cx_free(r);
  mysql_close(m);
  (void)err;

  say("\n%-16s %9s %9s %8s %5s %8s %9s %11s %7s %9s %12s %10s\n", "fault kind",
      "expected", "recorded", "skipped", "dups", "overlap", "missed-in",
      "missed-out", "no-row", "failovers", "max-failover", "max-late");
  for (int k = 0; k <= F_NKINDS; k++) {
    int n = 0;
    for (int f = 0; f < C.nfaults; f++)
      n += (int)C.faults[f].kind == k;
    char label[32];
    if (k < F_NKINDS)
      snprintf(label, sizeof label, "%s(%d)", kind_name[k], n);
    else
      snprintf(label, sizeof label, "no fault");
    say("%-16s %9ld %9ld %8ld %5ld %8ld %9ld %11ld %7ld %9ld %10.1f s %8.1f "
        "s\n",
        label, per[k].expected, per[k].recorded, per[k].skipped, per[k].dup,
        per[k].overlap, per[k].lost_allowed, per[k].lost_outside, per[k].silent,
        per[k].failovers, per[k].max_failover_ms / 1e3,
        per[k].max_late_ms / 1e3);
  }
  say("%-16s %9ld %9ld %8ld %5ld %8ld %9ld %11ld %7ld %9ld %10.1f s %8.1f "
      "s\n",
      "overall", all->expected, all->recorded, all->skipped, all->dup,
      all->overlap, all->lost_allowed, all->lost_outside, all->silent,
      all->failovers, all->max_failover_ms / 1e3, all->max_late_ms / 1e3);
  if (C.ndelays > 0) {
    qsort(C.delays, C.ndelays, sizeof *C.delays, i64_cmp);
    say("failover delay (node fault -> first run elsewhere, %zu job moves): "
        "p50 %.1f s, p99 %.1f s, max %.1f s\n",
        C.ndelays, C.delays[C.ndelays / 2] / 1e3,
        C.delays[(C.ndelays * 99) / 100] / 1e3, C.delays[C.ndelays - 1] / 1e3);
    qsort(C.lates, C.ndelays, sizeof *C.lates, i64_cmp);
    say("lateness of the first fire due after the fault (SPEC §10: <= ttl + "
        "1 s = %d s): p50 %.1f s, p99 %.1f s, max %.1f s\n",
        TTL_S + 1, C.lates[C.ndelays / 2] / 1e3,
        C.lates[(C.ndelays * 99) / 100] / 1e3, C.lates[C.ndelays - 1] / 1e3);
  }
  /* The node faults whose slowest first fire was later than the target:
   * where to look in the admins' and nodes' logs (CX_TEST_KEEP=2). */
  for (int fi = 0, shown = 0; fi < C.nfaults && shown < 30; fi++) {
    const struct fault *x = &C.faults[fi];
    if (x->moves == 0 || x->worst_late_ms <= (TTL_S + 1) * 1000)
      continue;
    shown++;
    say("slow: %s at +%.1fs node %s: %ld job(s), slowest job %lld late "
        "%.1f s\n",
        kind_name[x->kind], rel(x->start_ms, t0_ms), x->node_uuid, x->moves,
        (long long)x->worst_job, x->worst_late_ms / 1e3);
  }
  say("stray skipped rows (scheduled_at NULL): %ld; runs started by a "
      "resumed node for jobs that had moved: %ld\n",
      all->stray_skips, all->stale_runs);
  say("max-failover: node fault -> the job's first run on another node; "
      "max-late: the job's first fire due after the fault -> that run\n");
}

/* ---- the test ------------------------------------------------------------ */

static int chaos_timeout(void)
{
  return chaos_seconds() + 420;
}

TEST_TIMEOUT(chaos_no_duplicate_and_no_lost_fire, chaos_timeout())
{
  char err[CX_ERR_LEN];
  const char *rep = getenv("CX_CHAOS_REPORT");
  const char *seed = getenv("CX_CHAOS_SEED");
  int secs = chaos_seconds();

  C.rng = seed && seed[0] ? strtoull(seed, NULL, 10) : (uint64_t)cx_wall_ms();
  if (C.rng == 0)
    C.rng = 1;
  if (rep != NULL && rep[0] != '\0')
    C.report = fopen(rep, "w");
  say("chaos: %d s, seed %llu, %d jobs, %d nodes, %d admins, node.ttl %d s\n",
      secs, (unsigned long long)C.rng, NJOBS, NNODES, NADMINS, TTL_S);

  struct cx_svc_etcd_opts eo = {.members = 3};
  ASSERT_MSG(cx_svc_etcd_start(&C.etcd, &eo, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_mariadb_start(&C.db, NULL, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_port_alloc(&C.http_port, err) == 0, "%s", err);
  C.httpd = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)C.http_port, NULL, NULL,
      on_request, NULL, MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_END);
  ASSERT_MSG(C.httpd != NULL, "http target on port %d", C.http_port);
  for (int i = 0; i < NADMINS; i++) {
    ASSERT_MSG(cx_svc_dir_make("admin", C.admin_dir[i], CX_SVC_PATH_LEN, err) ==
                   0,
               "%s", err);
    ASSERT_MSG(cx_svc_port_alloc(&C.admin_port[i], err) == 0, "%s", err);
  }
  ASSERT_MSG(cx_svc_dir_make("marks", C.marks, sizeof C.marks, err) == 0, "%s",
             err);
  for (int i = 0; i < NNODES; i++)
    ASSERT_MSG(cx_svc_dir_make("node", C.node_dir[i], CX_SVC_PATH_LEN, err) ==
                   0,
               "%s", err);
  admin_start(0);
  wait_token();
  wait_api(0);
  admin_start(1);
  wait_api(1);
  for (int i = 0; i < NNODES; i++)
    node_start(i);
  for (int i = 0; i < NNODES; i++)
    wait_node_id(i);
  load_jobs();
  load_bcast();
  say("loaded %d jobs\n", NJOBS);

  int64_t t0 = cx_wall_s() + 3, t0_ms = t0 * 1000;
  while (cx_wall_ms() < t0_ms)
    cx_sleep_us(50000);
  int64_t end_ms = t0_ms + (int64_t)secs * 1000;
  say("faults (time from the start of the checked span):\n");
  while (C.nfaults < MAX_FAULTS) {
    int gap = rnd_in(2, 6);
    if (cx_wall_ms() + gap * 1000 + 12000 > end_ms)
      break;
    sleep_s(gap);
    struct fault *f = &C.faults[C.nfaults++];
    memset(f, 0, sizeof *f);
    f->kind = (enum fault_kind)(rnd() % F_NKINDS);
    inject(f, t0_ms);
  }
  while (cx_wall_ms() < end_ms)
    cx_sleep_us(100000);
  int64_t t1 = cx_wall_s();
  /* let the last fires finish and spools flush, then stop (drain) */
  sleep_s(2 * TTL_S + 8);
  for (int i = 0; i < NNODES; i++) {
    ASSERT_MSG(cx_svc_proc_alive(&C.node[i]), "node%d died; see %s", i,
               C.node[i].log_path);
    cx_svc_proc_stop(&C.node[i], 40000, err);
  }
  for (int i = 0; i < NADMINS; i++)
    cx_svc_proc_stop(&C.admin[i], 10000, err);
  MHD_stop_daemon(C.httpd);

  struct tally all, again;
  check(t0, t1, t0_ms, &all);
  if (C.report != NULL)
    fclose(C.report);
  C.report = NULL;
  ASSERT_MSG(all.expected > 0 && all.recorded > 0, "nothing fired");
  ASSERT_EQ(all.dup, 0);
  ASSERT_MSG(all.b_expected > 0, "no broadcast fire");
  ASSERT_EQ(all.b_dup, 0);
  ASSERT_EQ(all.b_unaccounted, 0);
  ASSERT_EQ(all.lost_outside, 0);
  ASSERT_EQ(all.silent, 0);
  ASSERT_EQ(all.overlap, 0);
  ASSERT_EQ(all.stray_skips, 0);
  ASSERT_EQ(all.stale_runs, 0);
  ASSERT_EQ(all.open_runs, 0);
  /* SPEC §10's measure, over a run long enough for a p99 (issue 12 asks
   * it of the 30-minute run): the first fire due after a node fault runs
   * within TTL + 1 s. check() left C.lates sorted. */
  if (secs >= 1800 && C.ndelays > 0)
    ASSERT_OP(C.lates[(C.ndelays * 99) / 100], <=, (TTL_S + 1) * 1000);

  /* Negative control: the checker must see a fire that is missing. Delete
   * the row of one recorded fire of a `true` job (no marker, no requests)
   * outside every node fault's window (so not a missed one: missed-out is
   * 0 above; other faults' windows are fine now that a fire without a row
   * counts anywhere); a second pass must count one more fire without a
   * row. */
  int64_t victim = 0, at = 0;
  for (int i = 1; i < NJOBS && victim == 0; i++) {
    const struct job *j = &C.jobs[i];
    if (j->type != 1 || i % 3 == 0)
      continue;
    int64_t f = 0;
    for (int64_t t = t0; cx_cron_next(j->cron, t, &f) == 0 && f <= t1; t = f)
      if (!in_node_fault(f * 1000) && f > t0 + 1) {
        victim = j->id;
        at = f;
        break;
      }
  }
  ASSERT_MSG(victim != 0, "no fire outside the node faults' windows");
  char sql[256];
  snprintf(sql, sizeof sql,
           "DELETE FROM cronix_test.cronix_job_log WHERE job_id=%lld AND "
           "scheduled_at=%lld AND status <> 'missed'",
           (long long)victim, (long long)at);
  ASSERT_MSG(cx_svc_mariadb_admin(&C.db, sql, err) == 0, "%s", err);
  C.quiet = 1;
  check(t0, t1, t0_ms, &again);
  ASSERT_EQ(again.silent, all.silent + 1);
  ASSERT_EQ(again.dup, all.dup);

  for (int i = 0; i < NJOBS; i++)
    cx_cron_free(C.jobs[i].cron);
  cx_svc_mariadb_destroy(&C.db);
  cx_svc_etcd_destroy(&C.etcd);
}
