/*
 * Execution node tests. Most drive a node in process against the
 * in-process coord and SQLite, writing job/once/kill keys the way the admin
 * does (SPEC §7) and reading outcomes back from the run log. The failure
 * tests use real etcd and MariaDB, and `cronix node` as a real process.
 * Counts are "at least / at most" with slack; no tight timing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/cluster.h"
#include "config/config.h"
#include "coord/coord.h"
#include "cron/cron.h"
#include "job/job.h"
#include "node/exec.h"
#include "node/node.h"
#include "store/store.h"
#include "support/run.h"
#include "support/services.h"
#include "support/test.h"

struct fx {
  struct cx_config cfg;
  struct cx_store *store;
  struct cx_coord *coord;
  struct cx_noded *node;
  char dir[512];
  const char *uuid;
  int shared; /* store and coord are shared_with's */
  const struct fx *shared_with;
};

/* Starts a node; extra is NULL or a NULL-terminated list of setting,
 * value pairs applied over the test defaults; with (or NULL) is a running
 * fx whose store and coordination the node shares. */
static void fx_start(struct fx *f, const char *store_url, const char *etcd,
                     const char *sub, const char *const *extra,
                     const struct fx *with)
{
  char err[CX_ERR_LEN], url[700];
  memset(f, 0, sizeof *f);
  f->shared = with != NULL;
  f->shared_with = with;
  snprintf(f->dir, sizeof f->dir, "%s/%s", cx_test_tmpdir(), sub);
  mkdir(f->dir, 0700);
  ASSERT(cx_config_init(&f->cfg) == 0);
  ASSERT(cx_config_set(&f->cfg, "server.data_dir", f->dir, err) == 0);
  ASSERT(cx_config_set(&f->cfg, "system.default_timezone", "UTC", err) == 0);
  ASSERT_MSG(cx_config_set(&f->cfg, "node.kill_grace", "1s", err) == 0, "%s",
             err);
  ASSERT(cx_config_set(&f->cfg, "node.shutdown_grace", "2s", err) == 0);
  ASSERT(cx_config_set(&f->cfg, "node.ttl", "5s", err) == 0);
  /* As root, jobs run as root unless a case says otherwise (they write
   * into f->dir, which is 0700). */
  if (geteuid() == 0)
    ASSERT(cx_config_set(&f->cfg, "node.run_as", "root", err) == 0);
  for (size_t i = 0; extra && extra[i]; i += 2)
    ASSERT_MSG(cx_config_set(&f->cfg, extra[i], extra[i + 1], err) == 0, "%s",
               err);
  if (store_url == NULL) {
    snprintf(url, sizeof url, "sqlite://%s/cronix.db", f->dir);
    store_url = url;
  }
  ASSERT(cx_config_set(&f->cfg, "store.url", store_url, err) == 0);
  ASSERT_MSG(cx_config_finish(&f->cfg, err) == 0, "%s", err);
  cx_tz_set_default("UTC", err);
  if (f->shared) {
    f->store = f->shared_with->store;
    f->coord = f->shared_with->coord;
  } else {
    ASSERT_MSG(cx_store_open(store_url, &f->store, err) == 0, "%s", err);
    struct cx_coord_cfg cc = {.endpoints = etcd};
    ASSERT_MSG(cx_coord_open(&cc, &f->coord, err) == 0, "%s", err);
  }
  struct cx_noded_opts o = {
      .cfg = &f->cfg, .store = f->store, .coord = f->coord, .version = "t"};
  ASSERT_MSG(cx_noded_create(&o, &f->node, err) == 0, "%s", err);
  ASSERT_MSG(cx_noded_start(f->node, err) == 0, "%s", err);
  f->uuid = cx_noded_uuid(f->node);
}

static void fx_up(struct fx *f, const char *store_url, const char *etcd,
                  const char *sub)
{
  fx_start(f, store_url, etcd, sub, NULL, NULL);
}

/* A second node on first's store and coordination (first outlives it). */
static void fx_up_beside(struct fx *f, const struct fx *first, const char *sub)
{
  fx_start(f, first->cfg.store_url, NULL, sub, NULL, first);
}

static void fx_down(struct fx *f)
{
  cx_noded_destroy(f->node);
  if (!f->shared) {
    cx_coord_close(f->coord);
    cx_store_close(f->store);
  }
  cx_config_free(&f->cfg);
}

static void job_base(struct cx_job *j, int64_t id, const char *cmd,
                     const char *spec)
{
  cx_job_init(j);
  j->id = id;
  j->name = "t";
  j->command = (char *)cmd;
  j->type = CX_JOB_CMD;
  j->spec = (char *)spec;
  j->allocation = CX_ALLOC_AUTO;
  j->created = cx_wall_s() - 5;
  j->updated = j->created;
  j->misfire = "skip";
}

static void put_raw(struct fx *f, const char *kind, int64_t id, const char *val)
{
  char key[256], err[CX_ERR_LEN];
  snprintf(key, sizeof key, "/cronix/%s/%s/%lld", kind, f->uuid, (long long)id);
  ASSERT_MSG(cx_coord_put(f->coord, key, strlen(key), val, strlen(val), 0, NULL,
                          err) == 0,
             "%s", err);
}

static void put_job(struct fx *f, const struct cx_job *j)
{
  json_t *o = cx_job_to_json(j);
  ASSERT(o != NULL);
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  put_raw(f, "job", j->id, text);
  free(text);
}

static void once(struct fx *f, int64_t id)
{
  put_raw(f, "once", id, "{\"request_id\":\"t\",\"at\":1}");
}

/* Publishes j and asks for a run now (once key). */
static void put_once(struct fx *f, const struct cx_job *j)
{
  put_job(f, j);
  cx_sleep_us(200000);
  once(f, j->id);
}

static int key_exists(struct fx *f, const char *kind, int64_t id)
{
  char key[256];
  struct cx_coord_kvs kvs;
  snprintf(key, sizeof key, "/cronix/%s/%s/%lld", kind, f->uuid, (long long)id);
  int rc = cx_coord_get(f->coord, key, strlen(key), &kvs, NULL);
  if (rc == 0)
    cx_coord_kvs_free(&kvs);
  return rc == 0;
}

/* Finished runs of job id (newest first), into *l. Missed rows are left
 * out: job_base's job was created 5 s before the node gets it, so its
 * fires of those seconds are missed (see every_second_once). */
static size_t runs(struct fx *f, int64_t id, struct cx_run_list *l)
{
  struct cx_run_filter flt = {.job_id = id, .page_size = 500};
  char err[CX_ERR_LEN];
  ASSERT_MSG(cx_store_run_search(f->store, &flt, l, err) == 0, "%s", err);
  size_t k = 0, keep = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (strcmp(l->items[i].status, "missed") == 0)
      cx_run_clear(&l->items[i]);
    else
      l->items[keep++] = l->items[i];
  }
  l->n = keep;
  for (size_t i = 0; i < l->n; i++)
    k += strcmp(l->items[i].status, "running") != 0;
  return k;
}

/* Every row of job id, missed ones too, into *l. */
static void all_rows(struct cx_store *store, int64_t id, struct cx_run_list *l)
{
  struct cx_run_filter flt = {.job_id = id, .page_size = 500};
  char err[CX_ERR_LEN];
  ASSERT_MSG(cx_store_run_search(store, &flt, l, err) == 0, "%s", err);
}

static size_t wait_runs(struct fx *f, int64_t id, size_t want, int secs,
                        struct cx_run_list *l)
{
  size_t k = 0;
  for (int i = 0; i < secs * 10; i++) {
    k = runs(f, id, l);
    if (k >= want)
      return k;
    cx_run_list_free(l);
    cx_sleep_us(100000);
  }
  return runs(f, id, l);
}

static const struct cx_run *first_done(const struct cx_run_list *l)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->items[i].status, "running") != 0)
      return &l->items[i];
  return NULL;
}

static size_t count_status(const struct cx_run_list *l, const char *st)
{
  size_t k = 0;
  for (size_t i = 0; i < l->n; i++)
    k += strcmp(l->items[i].status, st) == 0;
  return k;
}

/* A spec that fires by itself only half a year from now (runs come from
 * once keys). "0 0 0 1 1 *" fired in any test running at New Year. */
static const char *never(void)
{
  static char spec[64];
  return cx_test_spec_days_ahead(180, spec, sizeof spec);
}

/* Waits until job id has a run that is still open after its first
 * attempt (waiting for a retry); returns its id, or 0 after secs. */
static int64_t wait_retry_pending(struct fx *f, int64_t id, int secs)
{
  struct cx_run_list l;
  for (int i = 0; i < secs * 10; i++) {
    runs(f, id, &l);
    int64_t run = 0;
    for (size_t k = 0; k < l.n; k++)
      if (strcmp(l.items[k].status, "running") == 0 && l.items[k].attempts >= 1)
        run = l.items[k].id;
    cx_run_list_free(&l);
    if (run > 0)
      return run;
    cx_sleep_us(100000);
  }
  return 0;
}

/* ---- identity ------------------------------------------------------------ */

TEST(node_identity_persists_across_restarts)
{
  struct fx f;
  char uuid[40], path[700];
  struct stat st;
  fx_up(&f, NULL, NULL, "n");
  snprintf(uuid, sizeof uuid, "%s", f.uuid);
  ASSERT_EQ(strlen(uuid), 36);
  fx_down(&f);
  snprintf(path, sizeof path, "%s/n/node.id", cx_test_tmpdir());
  ASSERT(stat(path, &st) == 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);
  fx_up(&f, NULL, NULL, "n");
  ASSERT_STREQ(f.uuid, uuid);
  struct cx_node row;
  ASSERT(cx_store_node_find(f.store, uuid, &row, NULL) == 0);
  ASSERT_EQ(row.status, CX_NODE_UP);
  cx_node_clear(&row);
  fx_down(&f);
}

TEST(node_stop_marks_row_down_and_drops_node_key)
{
  struct fx f;
  char uuid[40], key[128];
  fx_up(&f, NULL, NULL, "n");
  snprintf(uuid, sizeof uuid, "%s", f.uuid);
  snprintf(key, sizeof key, "/cronix/node/%s", uuid);
  struct cx_coord_kvs kvs;
  ASSERT(cx_coord_get(f.coord, key, strlen(key), &kvs, NULL) == 0);
  ASSERT(strstr(kvs.kvs[0].value, uuid) != NULL);
  cx_coord_kvs_free(&kvs);
  cx_noded_stop(f.node);
  ASSERT(cx_coord_get(f.coord, key, strlen(key), &kvs, NULL) == CX_ENOTFOUND);
  struct cx_node row;
  ASSERT(cx_store_node_find(f.store, uuid, &row, NULL) == 0);
  ASSERT_EQ(row.status, CX_NODE_DOWN);
  cx_node_clear(&row);
  fx_down(&f);
}

/* node.labels reach the admins through the node key, as a JSON object. */
TEST(node_key_carries_its_labels)
{
  struct fx f;
  char key[128];
  static const char *const extra[] = {"node.labels", " zone=a , role=db", NULL};
  fx_start(&f, NULL, NULL, "n", extra, NULL);
  snprintf(key, sizeof key, "/cronix/node/%s", f.uuid);
  struct cx_coord_kvs kvs;
  ASSERT(cx_coord_get(f.coord, key, strlen(key), &kvs, NULL) == 0);
  json_t *v = json_loadb(kvs.kvs[0].value, kvs.kvs[0].value_len, 0, NULL);
  cx_coord_kvs_free(&kvs);
  json_t *l = json_object_get(v, "labels");
  ASSERT_EQ(json_object_size(l), 2);
  ASSERT_STREQ(json_string_value(json_object_get(l, "zone")), "a");
  ASSERT_STREQ(json_string_value(json_object_get(l, "role")), "db");
  json_decref(v);
  fx_down(&f);
}

/* A drained node (its <prefix>/drain/<uuid> key, read when it registers
 * and about every second after) records its cron fires as skipped, naming
 * the drain, and runs them again once undrained. The node restarts drained
 * here, as in a rolling upgrade, so no fire can run before it knows. */
TEST_TIMEOUT(node_drained_records_fires_as_skipped, 60)
{
  struct fx base, f;
  struct cx_job j;
  struct cx_run_list l;
  char key[128], err[CX_ERR_LEN];
  fx_up(&base, NULL, NULL, "base");
  fx_start(&f, NULL, NULL, "n", NULL, &base);
  snprintf(key, sizeof key, "/cronix/drain/%s", f.uuid);
  fx_down(&f);
  ASSERT_MSG(
      cx_coord_put(base.coord, key, strlen(key), "{}", 2, 0, NULL, err) == 0,
      "%s", err);
  fx_start(&f, NULL, NULL, "n", NULL, &base);
  job_base(&j, 31, "echo ran", "* * * * * *");
  put_job(&f, &j);
  size_t sk = 0;
  for (int t = 0; t < 150 && sk < 2; t++) {
    cx_sleep_us(100000);
    runs(&f, 31, &l);
    sk = count_status(&l, "skipped");
    cx_run_list_free(&l);
  }
  runs(&f, 31, &l);
  ASSERT_MSG(count_status(&l, "skipped") >= 2, "%zu skipped", sk);
  ASSERT_EQ(count_status(&l, "success"), 0);
  ASSERT_CONTAINS(l.items[0].output, "drained");
  cx_run_list_free(&l);
  ASSERT(cx_coord_delete(base.coord, key, strlen(key), NULL, NULL, err) == 0);
  size_t ok = 0;
  for (int t = 0; t < 150 && ok == 0; t++) {
    cx_sleep_us(100000);
    runs(&f, 31, &l);
    ok = count_status(&l, "success");
    cx_run_list_free(&l);
  }
  ASSERT_MSG(ok >= 1, "no run after undrain");
  fx_down(&f);
  fx_down(&base);
}

/* ---- schedule ------------------------------------------------------------ */

TEST_TIMEOUT(node_six_field_every_two_seconds_on_the_second, 40)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 7, "echo tick", "*/2 * * * * *");
  put_job(&f, &j);
  size_t k = wait_runs(&f, 7, 3, 15, &l);
  ASSERT_MSG(k >= 3, "only %zu runs", k);
  for (size_t i = 0; i < l.n; i++) {
    const struct cx_run *r = &l.items[i];
    if (strcmp(r->status, "running") == 0)
      continue;
    ASSERT_STREQ(r->status, "success");
    ASSERT_STREQ(r->trigger, "cron");
    ASSERT(r->has_scheduled_at);
    ASSERT_EQ(r->scheduled_at % 2, 0);
    /* on the second: started within the scheduled second (slack 900 ms) */
    ASSERT_MSG(r->start_time >= r->scheduled_at * 1000 &&
                   r->start_time < r->scheduled_at * 1000 + 900,
               "start %lld for %lld", (long long)r->start_time,
               (long long)r->scheduled_at);
    ASSERT_STREQ(r->output, "tick\n");
    ASSERT_EQ(r->attempts, 1);
  }
  cx_run_list_free(&l);
  fx_down(&f);
}

/* The first midnight after wall time t (s) in a zone off seconds east of
 * UTC, in ms. */
static int64_t next_midnight_ms(int64_t t, int64_t off)
{
  return (((t + off) / 86400 + 1) * 86400 - off) * 1000;
}

/* Waits until job id's next fire is the coming midnight of a zone off
 * seconds east; the wanted midnight is taken from the clock before and
 * after each look, so a day boundary passing meanwhile does not fail it. */
static int64_t wait_next_midnight(struct fx *f, int64_t id, int64_t off)
{
  int64_t at = 0;
  for (int i = 0; i < 100; i++) {
    int64_t before = cx_wall_s();
    int rc = cx_noded_next_fire(f->node, id, &at);
    int64_t after = cx_wall_s();
    if (rc == 0 && (at == next_midnight_ms(before, off) ||
                    at == next_midnight_ms(after, off)))
      return at;
    cx_sleep_us(50000);
  }
  ASSERT_MSG(0, "job %lld: next fire %lld, want %lld", (long long)id,
             (long long)at, (long long)next_midnight_ms(cx_wall_s(), off));
  return 0;
}

TEST(node_daily_midnight_scheduled_for_next_midnight)
{
  struct fx f;
  struct cx_job j;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 8, "true", "0 0 * * *");
  j.timezone = "UTC";
  put_job(&f, &j);
  wait_next_midnight(&f, 8, 0);
  /* Asia/Shanghai midnight is 16:00 UTC. */
  j.timezone = "Asia/Shanghai";
  put_job(&f, &j);
  wait_next_midnight(&f, 8, 8 * 3600);
  fx_down(&f);
}

/* ---- timeout, retry ------------------------------------------------------ */

/* The node says how far behind it is: queue depth, runs active and the
 * start lateness of every cron fire's first attempt (issue 12). */
TEST_TIMEOUT(node_metrics_queue_depth_and_start_lateness, 40)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  struct cx_buf b = {0};
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 9, "true", "* * * * * *");
  put_job(&f, &j);
  size_t k = wait_runs(&f, 9, 2, 15, &l);
  ASSERT_MSG(k >= 2, "only %zu runs", k);
  cx_run_list_free(&l);
  cx_noded_metrics(f.node, &b);
  ASSERT(!cx_buf_failed(&b));
  const char *t = b.data;
  ASSERT_CONTAINS(t, "# TYPE cronix_node_queue_depth gauge\n");
  ASSERT_CONTAINS(t, "\ncronix_node_queue_depth ");
  ASSERT_CONTAINS(t, "\ncronix_node_runs_active ");
  ASSERT_CONTAINS(t, "# TYPE cronix_node_start_lateness_seconds histogram\n");
  const char *c = strstr(t, "\ncronix_node_start_lateness_seconds_count ");
  const char *inf =
      strstr(t, "cronix_node_start_lateness_seconds_bucket{le=\"+Inf\"} ");
  ASSERT(c != NULL && inf != NULL);
  long long count = strtoll(strchr(c + 1, ' ') + 1, NULL, 10);
  long long all = strtoll(strrchr(inf, ' ') + 1, NULL, 10);
  ASSERT_OP(count, >=, 2);
  ASSERT_OP(all, ==, count);
  cx_buf_free(&b);
  fx_down(&f);
}

/* A node with more due work than workers warns, rate-limited: one worker,
 * a job due every second that runs for 1.5 s, so each start is 0.5 s
 * later than the one before; past 1 s late the log says so. */
TEST_TIMEOUT(node_falling_behind_is_logged, 60)
{
  struct fx f;
  struct cx_job j;
  char path[600], text[8192];
  snprintf(path, sizeof path, "%s/log.txt", cx_test_tmpdir());
  int fd = open(path, O_CREAT | O_RDWR | O_APPEND | O_CLOEXEC, 0600);
  ASSERT(fd >= 0);
  cx_log_set_fd(fd);
  static const char *const one_worker[] = {"node.max_concurrent", "1", NULL};
  fx_start(&f, NULL, NULL, "n", one_worker, NULL);
  job_base(&j, 10, "sleep 1.5", "* * * * * *");
  j.concurrency = "allow";
  put_job(&f, &j);
  int found = 0;
  for (int i = 0; i < 300 && !found; i++) {
    cx_sleep_us(100000);
    ssize_t r = pread(fd, text, sizeof text - 1, 0);
    text[r > 0 ? r : 0] = '\0';
    found = strstr(text, "falling behind: job 10 started") != NULL;
  }
  ASSERT_MSG(found, "no warning in: %s", text);
  ASSERT_CONTAINS(text, "fires queued");
  /* Rate-limited: one line although the next starts are later still. */
  cx_sleep_us(3000000);
  ssize_t r = pread(fd, text, sizeof text - 1, 0);
  text[r > 0 ? r : 0] = '\0';
  const char *first = strstr(text, "falling behind");
  ASSERT(strstr(first + 1, "falling behind") == NULL);
  cx_log_set_fd(2);
  fx_down(&f);
  close(fd);
}

TEST(node_timeout_kills_whole_group_and_records_timeout)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  char cmd[1400], path[700];
  fx_up(&f, NULL, NULL, "n");
  snprintf(path, sizeof path, "%s/pgid", f.dir);
  snprintf(cmd, sizeof cmd, "echo $$ > %s; sleep 100 & sleep 100; wait", path);
  job_base(&j, 9, cmd, never());
  j.timeout = 1;
  put_once(&f, &j);
  ASSERT(wait_runs(&f, 9, 1, 15, &l) == 1);
  const struct cx_run *r = first_done(&l);
  ASSERT_STREQ(r->status, "timeout");
  ASSERT_EQ(r->success, 0);
  ASSERT_STREQ(r->trigger, "once");
  ASSERT_EQ(r->has_scheduled_at, 0);
  cx_run_list_free(&l);
  FILE *fp = fopen(path, "r");
  ASSERT(fp != NULL);
  int pgid = 0;
  ASSERT(fscanf(fp, "%d", &pgid) == 1);
  fclose(fp);
  ASSERT(pgid > 1);
  ASSERT_EQ(cx_exec_group_alive(pgid), 0);
  fx_down(&f);
}

TEST(node_retry_counts_attempts_and_waits)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 10, "echo try; exit 3", never());
  j.retry_times = 2;
  j.retry_interval = 1;
  put_once(&f, &j);
  ASSERT(wait_runs(&f, 10, 1, 20, &l) == 1);
  const struct cx_run *r = first_done(&l);
  ASSERT_STREQ(r->status, "failed");
  ASSERT_EQ(r->attempts, 3);
  ASSERT_EQ(r->exit_code, 3);
  ASSERT_MSG(r->end_time - r->start_time >= 2000, "took %lld ms",
             (long long)(r->end_time - r->start_time));
  /* Every attempt is kept, in order, each a second or more after the
   * last one ended. */
  struct cx_run_attempt *v = NULL;
  size_t n = 0;
  char err[CX_ERR_LEN];
  ASSERT_MSG(cx_store_run_attempt_list(f.store, r->id, &v, &n, err) == 0, "%s",
             err);
  ASSERT_EQ(n, 3);
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ(v[i].attempt, (int)i + 1);
    ASSERT_STREQ(v[i].status, "failed");
    ASSERT_EQ(v[i].exit_code, 3);
    ASSERT_STREQ(v[i].output, "try\n");
    ASSERT_OP(v[i].end_time, >=, v[i].start_time);
    if (i > 0)
      ASSERT_OP(v[i].start_time - v[i - 1].end_time, >=, 900);
  }
  cx_run_attempts_free(v, n);
  cx_run_list_free(&l);
  fx_down(&f);
}

/* Runs waiting for their retry hold no worker: with 2 workers and 3 runs
 * waiting an hour for their retry, another job still fires and runs.
 * (Before, each wait slept inside a worker and the node ran nothing
 * else.) On stop, the waiting runs end with their last attempt. */
TEST_TIMEOUT(node_retry_waits_hold_no_worker, 90)
{
  static const char *const two[] = {"node.max_concurrent", "2", NULL};
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_start(&f, NULL, NULL, "n", two, NULL);
  for (int64_t id = 60; id < 63; id++) {
    job_base(&j, id, "echo no; exit 4", never());
    j.retry_times = 1;
    j.retry_interval = 3600;
    put_once(&f, &j);
  }
  cx_sleep_us(1500000);
  job_base(&j, 63, "echo ok", "* * * * * *");
  put_job(&f, &j);
  ASSERT(wait_runs(&f, 63, 3, 30, &l) >= 3);
  ASSERT_EQ(count_status(&l, "success"), l.n - count_status(&l, "running"));
  cx_run_list_free(&l);
  for (int64_t id = 60; id < 63; id++) {
    int64_t run = wait_retry_pending(&f, id, 10);
    ASSERT_MSG(run > 0, "job %lld: no run waiting for its retry",
               (long long)id);
    struct cx_run_attempt *v = NULL;
    size_t n = 0;
    ASSERT(cx_store_run_attempt_list(f.store, run, &v, &n, NULL) == 0);
    ASSERT_EQ(n, 1);
    ASSERT_STREQ(v[0].status, "failed");
    ASSERT_EQ(v[0].exit_code, 4);
    cx_run_attempts_free(v, n);
  }
  cx_noded_stop(f.node);
  for (int64_t id = 60; id < 63; id++) {
    ASSERT_EQ(runs(&f, id, &l), 1);
    const struct cx_run *r = first_done(&l);
    ASSERT_STREQ(r->status, "failed");
    ASSERT_EQ(r->attempts, 1);
    ASSERT_EQ(r->exit_code, 4);
    ASSERT_STREQ(r->output, "no\n");
    ASSERT_OP(r->end_time, >, 0);
    cx_run_list_free(&l);
  }
  fx_down(&f);
}

/* A kill key, or the job leaving the node, ends a run waiting for its
 * retry at once, as killed, with its last attempt's output. */
TEST_TIMEOUT(node_kill_or_delete_cancels_a_waiting_retry, 60)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  char key[128];
  fx_up(&f, NULL, NULL, "n");
  for (int64_t id = 64; id < 66; id++) {
    job_base(&j, id, "echo k; exit 5", never());
    j.retry_times = 3;
    j.retry_interval = 3600;
    put_once(&f, &j);
    ASSERT(wait_retry_pending(&f, id, 15) > 0);
  }
  put_raw(&f, "kill", 64, "{\"request_id\":\"k\",\"at\":1}");
  snprintf(key, sizeof key, "/cronix/job/%s/65", f.uuid);
  ASSERT(cx_coord_delete(f.coord, key, strlen(key), NULL, NULL, NULL) == 0);
  for (int64_t id = 64; id < 66; id++) {
    ASSERT_MSG(wait_runs(&f, id, 1, 15, &l) == 1, "job %lld still waiting",
               (long long)id);
    const struct cx_run *r = first_done(&l);
    ASSERT_STREQ(r->status, "killed");
    ASSERT_EQ(r->attempts, 1);
    ASSERT_EQ(r->exit_code, 5);
    ASSERT_CONTAINS(r->output, "k\n");
    ASSERT_CONTAINS(r->output, "retry cancelled");
    cx_run_list_free(&l);
  }
  fx_down(&f);
}

TEST(node_retry_stops_at_first_success)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  char cmd[1400];
  fx_up(&f, NULL, NULL, "n");
  /* fails once, then succeeds (a marker file remembers the first try) */
  snprintf(cmd, sizeof cmd, "test -e %s/m && exit 0; touch %s/m; exit 1", f.dir,
           f.dir);
  job_base(&j, 11, cmd, never());
  j.retry_times = 5;
  j.retry_interval = 1;
  put_once(&f, &j);
  ASSERT(wait_runs(&f, 11, 1, 20, &l) == 1);
  const struct cx_run *r = first_done(&l);
  ASSERT_STREQ(r->status, "success");
  ASSERT_EQ(r->attempts, 2);
  cx_run_list_free(&l);
  fx_down(&f);
}

/* The same when the retry was already due but queued behind a busy
 * worker: the job left the node, so the retry does not run. */
TEST_TIMEOUT(node_delete_cancels_a_due_retry_still_queued, 60)
{
  static const char *const one[] = {"node.max_concurrent", "1", NULL};
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  char key[128];
  fx_start(&f, NULL, NULL, "n", one, NULL);
  job_base(&j, 66, "echo q; exit 6", never());
  j.retry_times = 2;
  j.retry_interval = 5;
  put_once(&f, &j);
  ASSERT(wait_retry_pending(&f, 66, 15) > 0);
  /* The only worker is busy when the retry comes due. */
  job_base(&j, 67, "sleep 30", never());
  put_once(&f, &j);
  cx_sleep_us(6500000);
  snprintf(key, sizeof key, "/cronix/job/%s/66", f.uuid);
  ASSERT(cx_coord_delete(f.coord, key, strlen(key), NULL, NULL, NULL) == 0);
  cx_sleep_us(300000);
  put_raw(&f, "kill", 67, "{\"request_id\":\"k\",\"at\":1}");
  ASSERT(wait_runs(&f, 66, 1, 15, &l) == 1);
  const struct cx_run *r = first_done(&l);
  ASSERT_STREQ(r->status, "killed");
  ASSERT_EQ(r->attempts, 1);
  ASSERT_CONTAINS(r->output, "q\n");
  ASSERT_CONTAINS(r->output, "retry cancelled: the job left this node");
  cx_run_list_free(&l);
  fx_down(&f);
}

/* ---- concurrency --------------------------------------------------------- */

TEST_TIMEOUT(node_forbid_skips_and_records_the_skip, 40)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 12, "sleep 3", "* * * * * *");
  j.concurrency = "forbid";
  put_job(&f, &j);
  cx_sleep_us(6500000);
  j.enabled = 0;
  put_job(&f, &j);
  cx_sleep_us(4000000);
  runs(&f, 12, &l);
  size_t sk = count_status(&l, "skipped"), ok = count_status(&l, "success");
  ASSERT_MSG(sk >= 3, "%zu skipped", sk);
  ASSERT_MSG(ok >= 1 && ok <= 3, "%zu succeeded", ok);
  /* never two at once: successful runs do not overlap */
  for (size_t a = 0; a < l.n; a++)
    for (size_t b = 0; b < l.n; b++) {
      const struct cx_run *x = &l.items[a], *y = &l.items[b];
      if (a == b || strcmp(x->status, "success") ||
          strcmp(y->status, "success"))
        continue;
      ASSERT(!(x->start_time < y->start_time && y->start_time < x->end_time));
    }
  struct cx_noded_stats st;
  cx_noded_stats_get(f.node, &st);
  ASSERT_EQ(st.skipped, sk);
  cx_run_list_free(&l);
  fx_down(&f);
}

TEST_TIMEOUT(node_replace_kills_the_running_one, 40)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 13, "sleep 30", "*/2 * * * * *");
  j.concurrency = "replace";
  put_job(&f, &j);
  size_t k = 0;
  for (int i = 0; i < 150; i++) {
    runs(&f, 13, &l);
    k = count_status(&l, "killed");
    cx_run_list_free(&l);
    if (k >= 2)
      break;
    cx_sleep_us(100000);
  }
  ASSERT_MSG(k >= 2, "%zu killed", k);
  fx_down(&f);
}

TEST_TIMEOUT(node_allow_overlaps, 40)
{
  struct fx f;
  struct cx_job j;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 14, "sleep 4", "* * * * * *");
  j.concurrency = "allow";
  put_job(&f, &j);
  uint64_t most = 0;
  for (int i = 0; i < 80 && most < 3; i++) {
    struct cx_noded_stats st;
    cx_noded_stats_get(f.node, &st);
    if (st.active > most)
      most = st.active;
    cx_sleep_us(100000);
  }
  ASSERT_MSG(most >= 3, "at most %llu at once", (unsigned long long)most);
  fx_down(&f);
}

/* ---- once, kill, pause, update ------------------------------------------- */

TEST(node_once_runs_now_and_deletes_the_key)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 15, "echo once", never());
  put_once(&f, &j);
  ASSERT(wait_runs(&f, 15, 1, 10, &l) == 1);
  ASSERT_STREQ(first_done(&l)->output, "once\n");
  ASSERT_STREQ(first_done(&l)->trigger, "once");
  cx_run_list_free(&l);
  for (int i = 0; i < 50 && key_exists(&f, "once", 15); i++)
    cx_sleep_us(100000);
  ASSERT(!key_exists(&f, "once", 15));
  fx_down(&f);
}

/* An operator's API call to admin a: path, body; the reply's data (a new
 * reference) after checking the HTTP status and the reply's code. */
static json_t *api(struct cx_admin *a, const char *token, const char *path,
                   const char *body, long want_status, int want_code)
{
  char url[128], resp[8192], err[CX_ERR_LEN];
  long status = 0;
  snprintf(url, sizeof url, "http://127.0.0.1:%u%s", cx_admin_port(a), path);
  ASSERT_MSG(cx_svc_http_auth("POST", url, token, body, 10000, &status, resp,
                              sizeof resp, err) == 0,
             "%s: %s", path, err);
  json_t *o = json_loads(resp, 0, NULL);
  ASSERT_MSG(status == want_status && o != NULL &&
                 json_integer_value(json_object_get(o, "code")) == want_code,
             "%s: HTTP %ld %s", path, status, resp);
  json_t *d = json_incref(json_object_get(o, "data"));
  json_decref(o);
  return d;
}

/* SPEC §4: /job/once naming a live node that does not hold the job runs
 * it there, once, recorded with that node's uuid; the job's own node runs
 * nothing. (Before, the other node ignored the key and nothing ran.) */
TEST_TIMEOUT(node_once_on_a_node_that_does_not_hold_the_job, 60)
{
  struct fx a, b;
  struct cx_admin *adm = NULL;
  struct cx_run_list l;
  char err[CX_ERR_LEN], tok[CX_STORE_TOKEN_LEN], body[512];
  fx_up(&a, NULL, NULL, "a");
  fx_up_beside(&b, &a, "b");
  struct cx_admin_opts ao = {.cfg = &a.cfg,
                             .store = a.store,
                             .coord = a.coord,
                             .listen = "127.0.0.1:0"};
  ASSERT_MSG(cx_admin_create(&ao, &adm, err) == 0, "%s", err);
  ASSERT(cx_admin_cluster_set(adm, &(struct cx_admin_cluster_opts){.off = 1}) ==
         0);
  ASSERT_MSG(cx_admin_start(adm, err) == 0, "%s", err);
  struct cx_user u = {.username = "op",
                      .password_hash = "$y$j9T$notused$notused",
                      .role = "operator",
                      .email = "",
                      .feishu_id = ""};
  ASSERT_MSG(cx_store_user_create(a.store, &u, err) == 0, "%s", err);
  ASSERT(cx_store_token_generate(tok) == 0);
  ASSERT(cx_store_token_create(a.store, tok, u.id, "api", 0, err) == 0);

  snprintf(body, sizeof body,
           "{\"name\":\"elsewhere\",\"command\":\"echo here\",\"type\":1,"
           "\"spec\":\"0 0 0 1 1 *\",\"allocation\":1,\"run_on\":\"%s\"}",
           a.uuid);
  json_t *job = api(adm, tok, "/job/add", body, 200, 0);
  int64_t id = json_integer_value(json_object_get(job, "id"));
  json_decref(job);
  ASSERT_OP(id, >, 0);
  snprintf(body, sizeof body, "{\"job_id\":%lld,\"node_uuid\":\"%s\"}",
           (long long)id, b.uuid);
  json_decref(api(adm, tok, "/job/once", body, 200, 0));
  ASSERT(wait_runs(&a, id, 1, 20, &l) == 1);
  const struct cx_run *r = first_done(&l);
  ASSERT_STREQ(r->node_uuid, b.uuid);
  ASSERT_STREQ(r->trigger, "once");
  ASSERT_STREQ(r->status, "success");
  ASSERT_STREQ(r->output, "here\n");
  cx_run_list_free(&l);
  /* Once only, and node b did not take the job on: nothing more runs. */
  cx_sleep_us(1500000);
  ASSERT_EQ(runs(&a, id, &l), 1);
  cx_run_list_free(&l);
  int64_t at;
  ASSERT_EQ(cx_noded_next_fire(b.node, id, &at), CX_ENOTFOUND);
  ASSERT_EQ(cx_noded_next_fire(a.node, id, &at), 0);
  /* A node that is not alive is refused. */
  snprintf(body, sizeof body,
           "{\"job_id\":%lld,\"node_uuid\":\"no-such-node\"}", (long long)id);
  json_decref(api(adm, tok, "/job/once", body, 400, 1003));
  cx_admin_destroy(adm);
  fx_down(&b);
  fx_down(&a);
}

/* Keys under <prefix>/proc/<uuid>/<job>/ (in-process coord). */
static size_t proc_keys(struct fx *f, int64_t id, char *val, size_t cap)
{
  char p[256];
  struct cx_coord_kvs kvs;
  snprintf(p, sizeof p, "/cronix/proc/%s/%lld/", f->uuid, (long long)id);
  ASSERT(cx_coord_range(f->coord, p, strlen(p), &kvs, NULL) == 0);
  size_t k = kvs.n;
  if (k > 0 && val)
    snprintf(val, cap, "%.*s", (int)kvs.kvs[0].value_len, kvs.kvs[0].value);
  cx_coord_kvs_free(&kvs);
  return k;
}

/* SPEC §7: a running process is visible under proc/ while it runs (the key
 * is written by the node's proc-key thread, off the run path) and gone once
 * the run is recorded. */
TEST(node_proc_key_while_running_then_gone)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  char val[512] = "";
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 16, "sleep 2", never());
  put_once(&f, &j);
  size_t seen = 0;
  for (int i = 0; i < 100 && seen == 0; i++) {
    seen = proc_keys(&f, 16, val, sizeof val);
    cx_sleep_us(50000);
  }
  ASSERT_EQ(seen, 1);
  ASSERT_CONTAINS(val, "\"job_id\":16");
  ASSERT_CONTAINS(val, "\"attempt\":1");
  ASSERT(wait_runs(&f, 16, 1, 10, &l) == 1);
  cx_run_list_free(&l);
  for (int i = 0; i < 50 && proc_keys(&f, 16, NULL, 0) > 0; i++)
    cx_sleep_us(100000);
  ASSERT_EQ(proc_keys(&f, 16, NULL, 0), 0);
  fx_down(&f);
}

TEST(node_kill_key_kills_and_records_killed)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 16, "sleep 100", never());
  put_once(&f, &j);
  struct cx_noded_stats st;
  for (int i = 0; i < 50; i++) {
    cx_noded_stats_get(f.node, &st);
    if (st.active == 1)
      break;
    cx_sleep_us(100000);
  }
  cx_sleep_us(300000);
  put_raw(&f, "kill", 16, "{\"request_id\":\"k\",\"at\":1}");
  ASSERT(wait_runs(&f, 16, 1, 10, &l) == 1);
  ASSERT_STREQ(first_done(&l)->status, "killed");
  cx_run_list_free(&l);
  for (int i = 0; i < 50 && key_exists(&f, "kill", 16); i++)
    cx_sleep_us(100000);
  ASSERT(!key_exists(&f, "kill", 16));
  fx_down(&f);
}

TEST_TIMEOUT(node_pause_and_resume, 40)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  int64_t at;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 17, "true", "* * * * * *");
  j.enabled = 0;
  put_job(&f, &j);
  cx_sleep_us(2500000);
  ASSERT_EQ(runs(&f, 17, &l), 0);
  cx_run_list_free(&l);
  ASSERT(cx_noded_next_fire(f.node, 17, &at) == CX_ENOTFOUND);
  j.enabled = 1;
  put_job(&f, &j);
  ASSERT(wait_runs(&f, 17, 2, 10, &l) >= 2);
  cx_run_list_free(&l);
  j.enabled = 0;
  put_job(&f, &j);
  cx_sleep_us(1500000);
  size_t before = runs(&f, 17, &l);
  cx_run_list_free(&l);
  cx_sleep_us(2500000);
  ASSERT_EQ(runs(&f, 17, &l), before);
  cx_run_list_free(&l);
  fx_down(&f);
}

TEST(node_job_updated_while_running)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 18, "sleep 2; echo old", never());
  put_once(&f, &j);
  cx_sleep_us(700000);
  j.command = "echo new";
  put_job(&f, &j);
  ASSERT(wait_runs(&f, 18, 1, 10, &l) == 1);
  ASSERT_STREQ(first_done(&l)->output, "old\n");
  cx_run_list_free(&l);
  once(&f, 18);
  ASSERT(wait_runs(&f, 18, 2, 10, &l) == 2);
  ASSERT_STREQ(l.items[0].output, "new\n");
  cx_run_list_free(&l);
  fx_down(&f);
}

TEST(node_delete_unschedules)
{
  struct fx f;
  struct cx_job j;
  int64_t at;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 19, "true", never());
  put_job(&f, &j);
  for (int i = 0; i < 50 && cx_noded_next_fire(f.node, 19, &at) != 0; i++)
    cx_sleep_us(50000);
  ASSERT(cx_noded_next_fire(f.node, 19, &at) == 0);
  char key[128];
  snprintf(key, sizeof key, "/cronix/job/%s/19", f.uuid);
  ASSERT(cx_coord_delete(f.coord, key, strlen(key), NULL, NULL, NULL) == 0);
  for (int i = 0; i < 50 && cx_noded_next_fire(f.node, 19, &at) == 0; i++)
    cx_sleep_us(50000);
  ASSERT(cx_noded_next_fire(f.node, 19, &at) == CX_ENOTFOUND);
  fx_down(&f);
}

TEST(node_bad_job_is_recorded_and_node_survives)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up(&f, NULL, NULL, "n");
  put_raw(&f, "job", 20, "{not json");
  job_base(&j, 21, "true", "99 * * * *");
  put_job(&f, &j);
  ASSERT(wait_runs(&f, 20, 1, 10, &l) == 1);
  ASSERT_STREQ(first_done(&l)->status, "failed");
  ASSERT(strstr(first_done(&l)->output, "JSON") != NULL);
  cx_run_list_free(&l);
  ASSERT(wait_runs(&f, 21, 1, 10, &l) == 1);
  ASSERT(strstr(first_done(&l)->output, "minute") != NULL ||
         strstr(first_done(&l)->output, "spec") != NULL);
  cx_run_list_free(&l);
  struct cx_noded_stats st;
  cx_noded_stats_get(f.node, &st);
  ASSERT_EQ(st.bad_jobs, 2);
  /* still works */
  job_base(&j, 22, "echo fine", never());
  put_once(&f, &j);
  ASSERT(wait_runs(&f, 22, 1, 10, &l) == 1);
  ASSERT_STREQ(first_done(&l)->output, "fine\n");
  cx_run_list_free(&l);
  fx_down(&f);
}

/* ---- output shapes ------------------------------------------------------- */

static const struct cx_run *once_run(struct fx *f, int64_t id, const char *cmd,
                                     int timeout, struct cx_run_list *l)
{
  struct cx_job j;
  job_base(&j, id, cmd, never());
  j.timeout = timeout;
  put_once(f, &j);
  ASSERT(wait_runs(f, id, 1, 20, l) == 1);
  return first_done(l);
}

TEST(node_outputs_big_binary_none_notfound_closed)
{
  struct fx f;
  struct cx_run_list l;
  const struct cx_run *r;
  fx_up(&f, NULL, NULL, "n");
  r = once_run(&f, 30, "head -c 10485760 /dev/zero | tr '\\0' x", 0, &l);
  ASSERT_STREQ(r->status, "success");
  ASSERT(r->output_len <= 64 * 1024 + 16);
  ASSERT(strstr(r->output, "bytes cut") != NULL);
  cx_run_list_free(&l);
  r = once_run(&f, 31, "printf 'a\\000b\\377c'", 0, &l);
  ASSERT_STREQ(r->status, "success");
  ASSERT(r->output_len >= 5);
  ASSERT(r->output[0] == 'a');
  cx_run_list_free(&l);
  r = once_run(&f, 32, "true", 0, &l);
  ASSERT_STREQ(r->status, "success");
  ASSERT_EQ(r->output_len, 0);
  cx_run_list_free(&l);
  r = once_run(&f, 33, "no-such-command-cronix", 0, &l);
  ASSERT_STREQ(r->status, "failed");
  ASSERT_EQ(r->exit_code, 127);
  cx_run_list_free(&l);
  r = once_run(&f, 34, "exec >&- 2>&-; sleep 1; exit 0", 10, &l);
  ASSERT_STREQ(r->status, "success");
  ASSERT(r->end_time - r->start_time >= 900);
  cx_run_list_free(&l);
  fx_down(&f);
}

/* ---- http ---------------------------------------------------------------- */

struct srv {
  int fd, port;
  pthread_t th;
};

static void *srv_conn(void *arg)
{
  int c = (int)(intptr_t)arg;
  char buf[4096];
  ssize_t n = read(c, buf, sizeof buf - 1);
  if (n <= 0) {
    close(c);
    return NULL;
  }
  buf[n] = '\0';
  const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                     "Connection: close\r\n\r\nok";
  if (strncmp(buf, "GET /err", 8) == 0)
    resp = "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n"
           "Connection: close\r\n\r\nbad!";
  else if (strncmp(buf, "GET /slow", 9) == 0)
    sleep(2);
  else if (strncmp(buf, "GET /never", 10) == 0) {
    sleep(20);
    close(c);
    return NULL;
  }
  ssize_t w = write(c, resp, strlen(resp));
  (void)w;
  close(c);
  return NULL;
}

static void *srv_main(void *arg)
{
  struct srv *s = arg;
  for (;;) {
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
      return NULL;
    pthread_t t;
    pthread_create(&t, NULL, srv_conn, (void *)(intptr_t)c);
    pthread_detach(t);
  }
}

TEST_TIMEOUT(node_http_job_200_500_slow_never, 60)
{
  struct fx f;
  struct cx_run_list l;
  const struct cx_run *r;
  struct srv s;
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t al = sizeof a;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s.fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT(bind(s.fd, (struct sockaddr *)&a, sizeof a) == 0);
  ASSERT(listen(s.fd, 16) == 0);
  getsockname(s.fd, (struct sockaddr *)&a, &al);
  s.port = ntohs(a.sin_port);
  pthread_create(&s.th, NULL, srv_main, &s);
  fx_up(&f, NULL, NULL, "n");
  const char *paths[] = {"ok", "err", "slow", "never"};
  const char *want[] = {"success", "failed", "success", "timeout"};
  for (int i = 0; i < 4; i++) {
    char url[128];
    struct cx_job j;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", s.port, paths[i]);
    job_base(&j, 40 + i, url, never());
    j.type = CX_JOB_HTTP;
    j.timeout = 5 - 2 * (i == 3);
    put_job(&f, &j);
  }
  cx_sleep_us(300000);
  for (int i = 0; i < 4; i++)
    once(&f, 40 + i);
  for (int i = 0; i < 4; i++) {
    ASSERT(wait_runs(&f, 40 + i, 1, 20, &l) == 1);
    r = first_done(&l);
    ASSERT_MSG(strcmp(r->status, want[i]) == 0, "%s: %s", paths[i], r->status);
    if (i == 0)
      ASSERT_STREQ(r->output, "ok");
    if (i == 1) {
      ASSERT_EQ(r->exit_code, 500);
      ASSERT_STREQ(r->output, "bad!");
    }
    cx_run_list_free(&l);
  }
  fx_down(&f);
  shutdown(s.fd, SHUT_RDWR);
  close(s.fd);
  pthread_join(s.th, NULL);
}

/* An http job whose request gets no status at all is "error" with the
 * reason in output, told apart from a 500 ("failed", exit_code 500). */
TEST(node_http_job_refused_records_error_and_why)
{
  struct fx f;
  struct cx_run_list l;
  struct cx_job j;
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t al = sizeof a;
  char url[128];
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* A loopback port that was just free: bound, then closed unlistened. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  getsockname(fd, (struct sockaddr *)&a, &al);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
  close(fd);
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 44, url, never());
  j.type = CX_JOB_HTTP;
  j.timeout = 5;
  put_once(&f, &j);
  ASSERT(wait_runs(&f, 44, 1, 20, &l) == 1);
  const struct cx_run *r = first_done(&l);
  ASSERT_STREQ(r->status, "error");
  ASSERT_EQ(r->success, 0);
  ASSERT_EQ(r->exit_code, -1);
  ASSERT_CONTAINS(r->output, "Connection refused");
  ASSERT_CONTAINS(r->output, "(curl 7)");
  cx_run_list_free(&l);
  fx_down(&f);
}

/* ---- misfire ------------------------------------------------------------- */

TEST(node_misfire_run_once_on_arrival)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 50, "echo late", "0 * * * * *");
  j.created = cx_wall_s() - 3600;
  j.misfire = "run_once";
  j.starting_deadline = 600;
  put_job(&f, &j);
  /* The latest fire runs; the hour of fires before it is one missed row
   * (written within a second or so of the job's arrival). */
  const struct cx_run *r = NULL, *m = NULL;
  memset(&l, 0, sizeof l);
  for (int w = 0; w < 100 && (r == NULL || m == NULL); w++) {
    cx_run_list_free(&l);
    cx_sleep_us(100000);
    all_rows(f.store, 50, &l);
    r = m = NULL;
    for (size_t i = 0; i < l.n; i++) {
      if (strcmp(l.items[i].trigger, "misfire") == 0)
        r = &l.items[i];
      if (strcmp(l.items[i].status, "missed") == 0)
        m = &l.items[i];
    }
  }
  ASSERT(r != NULL && m != NULL);
  ASSERT_EQ(r->scheduled_at % 60, 0);
  ASSERT(r->scheduled_at <= cx_wall_s());
  ASSERT_EQ(m->missed_last, r->scheduled_at - 60);
  ASSERT_EQ(m->scheduled_at, (j.created / 60 + 1) * 60);
  ASSERT_EQ(m->missed_count, (m->missed_last - m->scheduled_at) / 60 + 1);
  ASSERT_CONTAINS(m->output, "misfire run_once runs only the latest");
  cx_run_list_free(&l);
  /* skip policy: nothing runs; every fire since creation is missed */
  job_base(&j, 51, "echo late", "0 * * * * *");
  j.created = cx_wall_s() - 3600;
  j.misfire = "skip";
  int64_t t0 = cx_wall_s();
  put_job(&f, &j);
  for (int i = 0; i < 100 && l.n == 0; i++) {
    cx_sleep_us(100000);
    all_rows(f.store, 51, &l);
    if (l.n == 0)
      cx_run_list_free(&l);
  }
  ASSERT(l.n >= 1);
  for (size_t i = 0; i < l.n; i++)
    if (strcmp(l.items[i].status, "missed") == 0) {
      ASSERT_EQ(l.items[i].scheduled_at, (j.created / 60 + 1) * 60);
      ASSERT_OP(l.items[i].missed_last, >=, t0 / 60 * 60);
      ASSERT_EQ(l.items[i].missed_last % 60, 0);
      ASSERT_EQ(l.items[i].missed_count,
                (l.items[i].missed_last - l.items[i].scheduled_at) / 60 + 1);
      ASSERT_CONTAINS(l.items[i].output, "misfire skip");
    } else {
      ASSERT(l.items[i].scheduled_at > t0);
    }
  cx_run_list_free(&l);
  fx_down(&f);
}

/* ---- store down (real MariaDB, real etcd) -------------------------------- */

static int distinct_scheduled(const struct cx_run_list *l, int64_t lo,
                              int64_t hi, int *dups)
{
  int k = 0;
  *dups = 0;
  for (int64_t t = lo; t <= hi; t++) {
    int c = 0;
    for (size_t i = 0; i < l->n; i++)
      c += l->items[i].has_scheduled_at && l->items[i].scheduled_at == t;
    k += c > 0;
    *dups += c > 1;
  }
  return k;
}

/* A node on a fresh etcd (NULL: in-process coordination) and MariaDB
 * whose store calls give up quickly, so an outage shows within seconds. */
static void fx_up_mariadb(struct fx *f, struct cx_svc_etcd *etcd,
                          struct cx_svc_mariadb *db)
{
  char err[CX_ERR_LEN], url[256];
  if (etcd != NULL)
    ASSERT_MSG(cx_svc_etcd_start(etcd, NULL, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_mariadb_start(db, NULL, err) == 0, "%s", err);
  snprintf(url, sizeof url, "%s?connect_timeout=2&read_timeout=3", db->url);
  fx_up(f, url, etcd != NULL ? etcd->endpoints : NULL, "n");
}

TEST_TIMEOUT(node_mariadb_down_10s_every_run_recorded_once, 120)
{
  static struct cx_svc_etcd etcd;
  static struct cx_svc_mariadb db;
  char err[CX_ERR_LEN];
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up_mariadb(&f, &etcd, &db);
  job_base(&j, 60, "echo $((1+1))", "* * * * * *");
  put_job(&f, &j);
  ASSERT(wait_runs(&f, 60, 2, 10, &l) >= 2);
  cx_run_list_free(&l);
  int64_t down_at = cx_wall_s();
  ASSERT_MSG(cx_svc_mariadb_stop(&db, err) == 0, "%s", err);
  cx_sleep_us(10 * 1000000);
  ASSERT_MSG(cx_svc_mariadb_restart(&db, err) == 0, "%s", err);
  int64_t up_at = cx_wall_s();
  struct cx_noded_stats st;
  for (int i = 0; i < 200; i++) {
    cx_noded_stats_get(f.node, &st);
    if (st.spooled > 0 && st.pending == 0)
      break;
    cx_sleep_us(100000);
  }
  ASSERT_MSG(st.spooled > 0, "nothing spooled");
  ASSERT_EQ(st.pending, 0);
  cx_sleep_us(1500000);
  runs(&f, 60, &l);
  int dups;
  int got = distinct_scheduled(&l, down_at + 1, up_at - 1, &dups);
  int span = (int)(up_at - 1 - down_at);
  ASSERT_EQ(dups, 0);
  /* every second of the outage ran and was recorded (slack: one second
   * at each edge, spent noticing the store was gone) */
  ASSERT_MSG(got >= span - 2, "%d of %d seconds recorded", got, span);
  for (size_t i = 0; i < l.n; i++)
    if (strcmp(l.items[i].status, "running") != 0)
      ASSERT_STREQ(l.items[i].output, "2\n");
  cx_run_list_free(&l);
  fx_down(&f);
  cx_svc_mariadb_destroy(&db);
  cx_svc_etcd_destroy(&etcd);
}

/* A run that retried while the store was down: its record and every
 * attempt go to the spool and reach the store once it is back. */
/* A job arrives while MariaDB is down: the fires it had due before (no
 * node ran them) are written as missed once the store is back. */
TEST_TIMEOUT(node_gap_found_while_the_store_is_down_is_written_after, 120)
{
  static struct cx_svc_etcd etcd;
  static struct cx_svc_mariadb db;
  char err[CX_ERR_LEN];
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up_mariadb(&f, &etcd, &db);
  ASSERT_MSG(cx_svc_mariadb_stop(&db, err) == 0, "%s", err);
  job_base(&j, 64, "true", "0 0 0 * * *"); /* daily */
  j.created = cx_wall_s() - 3 * 86400;     /* two or three fires due */
  put_job(&f, &j);
  cx_sleep_us(4 * 1000000); /* the node tries, and fails */
  ASSERT_MSG(cx_svc_mariadb_restart(&db, err) == 0, "%s", err);
  memset(&l, 0, sizeof l);
  for (int i = 0; i < 300 && l.n == 0; i++) {
    cx_sleep_us(100000);
    all_rows(f.store, 64, &l);
    if (l.n == 0)
      cx_run_list_free(&l);
  }
  /* (a midnight passing meanwhile adds a run of its own) */
  const struct cx_run *m = NULL;
  for (size_t i = 0; i < l.n; i++)
    if (strcmp(l.items[i].status, "missed") == 0)
      m = &l.items[i];
  ASSERT_MSG(m != NULL, "%zu rows, none missed", l.n);
  ASSERT_OP(m->missed_count, >=, 2);
  ASSERT_EQ(m->scheduled_at % 86400, 0);
  ASSERT_CONTAINS(m->output, "misfire skip");
  cx_run_list_free(&l);
  fx_down(&f);
  cx_svc_mariadb_destroy(&db);
  cx_svc_etcd_destroy(&etcd);
}

/* Jobs taken over while MariaDB is down: the latest fire each missed
 * (misfire run_once) cannot be checked against the store, and the job's
 * previous node may have run it. It is not run blind (that run, spooled,
 * would meet the other node's claim: two runs of one fire, as a 30-minute
 * chaos run found); it is recorded as missed, which the store drops for
 * the fire that has its run already. Daily jobs whose fire was an hour ago
 * (the next is 23 hours away, whatever the time of day). */
TEST_TIMEOUT(node_misfire_while_the_store_is_down_is_not_run_blind, 120)
{
  static struct cx_svc_etcd etcd;
  static struct cx_svc_mariadb db;
  char err[CX_ERR_LEN], spec[64], cmd[2][700], mark[2][600];
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up_mariadb(&f, &etcd, &db);
  int64_t fire = cx_wall_s() - 3600;
  struct tm tm;
  time_t ft = (time_t)fire;
  gmtime_r(&ft, &tm);
  snprintf(spec, sizeof spec, "%d %d %d * * *", tm.tm_sec, tm.tm_min,
           tm.tm_hour);
  /* Job 65's fire was run by its previous node; job 66's by nobody. */
  struct cx_run r;
  int64_t id = 0;
  memset(&r, 0, sizeof r);
  r.job_id = 65;
  r.name = "t";
  r.node_uuid = "previous-node";
  r.has_scheduled_at = 1;
  r.scheduled_at = fire;
  r.start_time = fire * 1000;
  ASSERT_MSG(cx_store_run_claim(f.store, &r, &id, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_mariadb_stop(&db, err) == 0, "%s", err);
  for (int i = 0; i < 2; i++) {
    snprintf(mark[i], sizeof mark[i], "%s/ran-%d", f.dir, 65 + i);
    snprintf(cmd[i], sizeof cmd[i], "touch %s", mark[i]);
    job_base(&j, 65 + i, cmd[i], spec);
    j.created = fire - 3 * 86400;
    j.misfire = "run_once";
    j.starting_deadline = 7200;
    put_job(&f, &j);
  }
  cx_sleep_us(4 * 1000000); /* the node takes them over, store down */
  ASSERT_MSG(cx_svc_mariadb_restart(&db, err) == 0, "%s", err);
  struct cx_noded_stats st;
  for (int i = 0; i < 200; i++) {
    cx_noded_stats_get(f.node, &st);
    if (st.pending == 0 && st.missed > 0)
      break;
    cx_sleep_us(100000);
  }
  cx_sleep_us(1000000);
  for (int i = 0; i < 2; i++)
    ASSERT_MSG(access(mark[i], F_OK) != 0, "job %d ran blind", 65 + i);
  all_rows(f.store, 65, &l);
  for (size_t i = 0; i < l.n; i++) {
    ASSERT_MSG(l.items[i].scheduled_at != 0, "job 65: an unscheduled row: %s",
               l.items[i].output ? l.items[i].output : "");
    if (l.items[i].scheduled_at == fire)
      ASSERT_STREQ(l.items[i].node_uuid, "previous-node");
  }
  cx_run_list_free(&l);
  all_rows(f.store, 66, &l);
  const struct cx_run *m = NULL;
  for (size_t i = 0; i < l.n; i++)
    if (l.items[i].scheduled_at == fire)
      m = &l.items[i];
  ASSERT_MSG(m != NULL, "job 66: no row for its latest fire (%zu rows)", l.n);
  ASSERT_STREQ(m->status, "missed");
  ASSERT_CONTAINS(m->output, "could not be reached");
  cx_run_list_free(&l);
  fx_down(&f);
  cx_svc_mariadb_destroy(&db);
  cx_svc_etcd_destroy(&etcd);
}

TEST_TIMEOUT(node_store_down_retried_run_keeps_attempts_via_spool, 120)
{
  static struct cx_svc_mariadb db;
  char err[CX_ERR_LEN];
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  struct cx_noded_stats st;
  fx_up_mariadb(&f, NULL, &db);
  job_base(&j, 70, "echo try; exit 2", never());
  j.retry_times = 2;
  j.retry_interval = 1;
  put_job(&f, &j);
  cx_sleep_us(300000);
  ASSERT_MSG(cx_svc_mariadb_stop(&db, err) == 0, "%s", err);
  once(&f, 70);
  for (int i = 0; i < 600; i++) {
    cx_noded_stats_get(f.node, &st);
    if (st.runs > 0 && st.pending > 0)
      break;
    cx_sleep_us(100000);
  }
  ASSERT_MSG(st.runs > 0 && st.pending > 0, "runs %llu, pending %llu",
             (unsigned long long)st.runs, (unsigned long long)st.pending);
  ASSERT_MSG(cx_svc_mariadb_restart(&db, err) == 0, "%s", err);
  for (int i = 0; i < 300 && st.pending > 0; i++) {
    cx_sleep_us(100000);
    cx_noded_stats_get(f.node, &st);
  }
  ASSERT_EQ(st.pending, 0);
  ASSERT_EQ(runs(&f, 70, &l), 1);
  const struct cx_run *r = first_done(&l);
  ASSERT_STREQ(r->status, "failed");
  ASSERT_EQ(r->attempts, 3);
  struct cx_run_attempt *v = NULL;
  size_t n = 0;
  ASSERT_MSG(cx_store_run_attempt_list(f.store, r->id, &v, &n, err) == 0, "%s",
             err);
  ASSERT_EQ(n, 3);
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ(v[i].attempt, (int)i + 1);
    ASSERT_EQ(v[i].exit_code, 2);
    ASSERT_STREQ(v[i].output, "try\n");
  }
  cx_run_attempts_free(v, n);
  cx_run_list_free(&l);
  fx_down(&f);
  cx_svc_mariadb_destroy(&db);
}

/* ---- SIGKILL and restart of a real `cronix node` --------------------------
 */

/* A `cronix node` process; set is NULL or one more --set value. */
static pid_t node_spawn_set(const char *dir, const char *store,
                            const char *etcd, const char *set)
{
  char log[700];
  snprintf(log, sizeof log, "%s/node.log", dir);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(cx_test_cronix_bin(), "cronix", "node", "--data-dir", dir, "--store",
          store, "--etcd", etcd, "--set", "node.ttl=3s", "--set",
          "system.default_timezone=UTC", set ? "--set" : (char *)NULL, set,
          (char *)NULL);
    _exit(127);
  }
  return pid;
}

static pid_t node_spawn(const char *dir, const char *store, const char *etcd)
{
  return node_spawn_set(dir, store, etcd, NULL);
}

static int read_uuid(const char *dir, char out[40])
{
  char path[700];
  snprintf(path, sizeof path, "%s/node.id", dir);
  for (int i = 0; i < 100; i++) {
    FILE *fp = fopen(path, "r");
    if (fp) {
      int ok = fscanf(fp, "%36s", out) == 1;
      fclose(fp);
      if (ok)
        return 0;
    }
    cx_sleep_us(100000);
  }
  return -1;
}

TEST_TIMEOUT(node_sigkill_restart_same_uuid_no_duplicates, 120)
{
  static struct cx_svc_etcd etcd;
  static struct cx_svc_mariadb db;
  char err[CX_ERR_LEN], dir[600], uuid[40], uuid2[40];
  struct cx_store *store;
  struct cx_coord *coord;
  ASSERT_MSG(cx_svc_etcd_start(&etcd, NULL, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_mariadb_start(&db, NULL, err) == 0, "%s", err);
  ASSERT_MSG(cx_store_open(db.url, &store, err) == 0, "%s", err);
  struct cx_coord_cfg cc = {.endpoints = etcd.endpoints};
  ASSERT(cx_coord_open(&cc, &coord, err) == 0);
  snprintf(dir, sizeof dir, "%s/proc-node", cx_test_tmpdir());
  mkdir(dir, 0700);
  pid_t pid = node_spawn(dir, db.url, etcd.endpoints);
  ASSERT(read_uuid(dir, uuid) == 0);
  struct cx_job j;
  job_base(&j, 70, "echo x", "* * * * * *");
  json_t *o = cx_job_to_json(&j);
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  char key[256];
  snprintf(key, sizeof key, "/cronix/job/%s/70", uuid);
  ASSERT(cx_coord_put(coord, key, strlen(key), text, strlen(text), 0, NULL,
                      err) == 0);
  free(text);
  struct cx_run_filter flt = {.job_id = 70, .page_size = 500};
  struct cx_run_list l;
  for (int i = 0; i < 100; i++) {
    ASSERT(cx_store_run_search(store, &flt, &l, err) == 0);
    size_t n = l.n;
    cx_run_list_free(&l);
    if (n >= 3)
      break;
    cx_sleep_us(100000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  int64_t killed_at = cx_wall_s();
  cx_sleep_us(1000000);
  pid = node_spawn(dir, db.url, etcd.endpoints);
  ASSERT(read_uuid(dir, uuid2) == 0);
  ASSERT_STREQ(uuid, uuid2);
  size_t n = 0;
  for (int i = 0; i < 150; i++) {
    ASSERT(cx_store_run_search(store, &flt, &l, err) == 0);
    n = 0;
    for (size_t k = 0; k < l.n; k++)
      n += l.items[k].start_time / 1000 > killed_at + 1;
    cx_run_list_free(&l);
    if (n >= 3)
      break;
    cx_sleep_us(100000);
  }
  ASSERT_MSG(n >= 3, "only %zu runs after the restart", n);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT(cx_store_run_search(store, &flt, &l, err) == 0);
  int dups = 0;
  for (size_t a = 0; a < l.n; a++)
    for (size_t b = a + 1; b < l.n; b++)
      dups += l.items[a].has_scheduled_at &&
              l.items[a].scheduled_at == l.items[b].scheduled_at;
  ASSERT_EQ(dups, 0);
  cx_run_list_free(&l);
  struct cx_node row;
  ASSERT(cx_store_node_find(store, uuid, &row, err) == 0);
  ASSERT_EQ(row.status, CX_NODE_DOWN);
  cx_node_clear(&row);
  cx_coord_close(coord);
  cx_store_close(store);
  cx_svc_mariadb_destroy(&db);
  cx_svc_etcd_destroy(&etcd);
}

/* ---- a stopped node: nothing under a lease it may have lost -------------- */

/* Runs of job id (any status) with trigger cron and scheduled_at in
 * [from_s, to_s]. */
static size_t cron_rows_in(struct cx_store *store, int64_t id, int64_t from_s,
                           int64_t to_s)
{
  char err[CX_ERR_LEN];
  struct cx_run_filter flt = {.job_id = id, .page_size = 500};
  struct cx_run_list l;
  ASSERT_MSG(cx_store_run_search(store, &flt, &l, err) == 0, "%s", err);
  size_t k = 0;
  for (size_t i = 0; i < l.n; i++)
    k += l.items[i].has_scheduled_at && l.items[i].scheduled_at >= from_s &&
         l.items[i].scheduled_at <= to_s &&
         strcmp(l.items[i].trigger, "cron") == 0 &&
         strcmp(l.items[i].status, "missed") != 0;
  cx_run_list_free(&l);
  return k;
}

/* Rows of job id that account for fire t: its own row, or a missed row
 * whose range holds it (the caller knows t is a fire of the job). */
static int rows_for_fire(const struct cx_run_list *l, int64_t t)
{
  int k = 0;
  for (size_t i = 0; i < l->n; i++) {
    const struct cx_run *r = &l->items[i];
    if (!r->has_scheduled_at)
      continue;
    if (r->scheduled_at == t)
      k++;
    else if (strcmp(r->status, "missed") == 0 && r->scheduled_at < t &&
             r->missed_last >= t)
      k++;
  }
  return k;
}

/* Asserts that every second in [from_s, to_s] is accounted for by exactly
 * one row of job id (a `* * * * * *` job) and *missed gets how many of
 * them are missed. */
static void every_second_once(struct cx_store *store, int64_t id,
                              int64_t from_s, int64_t to_s, long *missed)
{
  char err[CX_ERR_LEN];
  struct cx_run_filter flt = {.job_id = id, .page_size = 500};
  struct cx_run_list l;
  ASSERT_MSG(cx_store_run_search(store, &flt, &l, err) == 0, "%s", err);
  *missed = 0;
  for (int64_t t = from_s; t <= to_s; t++) {
    int k = rows_for_fire(&l, t);
    ASSERT_MSG(k == 1, "job %lld fire %lld (%+lld s): %d rows", (long long)id,
               (long long)t, (long long)(t - from_s), k);
  }
  for (size_t i = 0; i < l.n; i++) {
    const struct cx_run *r = &l.items[i];
    if (strcmp(r->status, "missed") == 0) {
      ASSERT_CONTAINS(r->output, "missed: ");
      ASSERT_EQ(r->missed_count, r->missed_last - r->scheduled_at + 1);
      for (int64_t t = r->scheduled_at; t <= r->missed_last; t++)
        *missed += t >= from_s && t <= to_s;
    }
  }
  cx_run_list_free(&l);
}

/* A `cronix node` process on a real etcd and SQLite, for the tests that
 * signal it (static in the test: the service handles are large). */
struct pnode {
  struct cx_svc_etcd etcd;
  struct cx_store *store;
  struct cx_coord *coord;
  char dir[600], url[700], uuid[40];
  pid_t pid;
};

static void pnode_up_set(struct pnode *p, const char *sub, const char *set);

static void pnode_up(struct pnode *p, const char *sub)
{
  pnode_up_set(p, sub, NULL);
}

static void pnode_up_set(struct pnode *p, const char *sub, const char *set)
{
  char err[CX_ERR_LEN];
  ASSERT_MSG(cx_svc_etcd_start(&p->etcd, NULL, err) == 0, "%s", err);
  snprintf(p->dir, sizeof p->dir, "%s/%s", cx_test_tmpdir(), sub);
  mkdir(p->dir, 0700);
  snprintf(p->url, sizeof p->url, "sqlite://%s/cronix.db", p->dir);
  ASSERT_MSG(cx_store_open(p->url, &p->store, err) == 0, "%s", err);
  struct cx_coord_cfg cc = {.endpoints = p->etcd.endpoints};
  ASSERT(cx_coord_open(&cc, &p->coord, err) == 0);
  p->pid = node_spawn_set(p->dir, p->url, p->etcd.endpoints, set);
  ASSERT(read_uuid(p->dir, p->uuid) == 0);
}

/* Writes <prefix>/<kind>/<uuid>/<id> (kind job: j's JSON; else "{}"). */
static void pnode_put(struct pnode *p, const char *kind, const struct cx_job *j)
{
  char err[CX_ERR_LEN], key[256];
  json_t *o = strcmp(kind, "job") == 0 ? cx_job_to_json(j) : json_object();
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  snprintf(key, sizeof key, "/cronix/%s/%s/%lld", kind, p->uuid,
           (long long)j->id);
  ASSERT_MSG(cx_coord_put(p->coord, key, strlen(key), text, strlen(text), 0,
                          NULL, err) == 0,
             "%s", err);
  free(text);
}

/* SIGTERM; the node must drain and exit 0. */
static void pnode_down(struct pnode *p)
{
  int status = 0;
  kill(p->pid, SIGTERM);
  waitpid(p->pid, &status, 0);
  ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  cx_coord_close(p->coord);
  cx_store_close(p->store);
  cx_svc_etcd_destroy(&p->etcd);
}

/* SIGSTOP past the TTL then SIGCONT (a partition as the node sees it): the
 * timers that fell due while stopped fire at once on resume, before the
 * keep-alive thread has learnt that the lease expired. None of them may
 * start: the node must notice it is past its lease first (SPEC §10, fail
 * closed), then re-register and go on. */
TEST_TIMEOUT(node_resumed_past_ttl_starts_nothing_missed, 90)
{
  static struct pnode p;
  struct cx_job j;
  pnode_up(&p, "stopped-node");
  job_base(&j, 90, "true", "* * * * * *"); /* misfire skip */
  pnode_put(&p, "job", &j);
  int64_t t = cx_wall_s();
  for (int i = 0; i < 100 && cron_rows_in(p.store, 90, t, t + 100) < 2; i++)
    cx_sleep_us(100000);
  ASSERT(cron_rows_in(p.store, 90, t, t + 100) >= 2);

  kill(p.pid, SIGSTOP);
  int64_t stopped_s = cx_wall_s();
  cx_sleep_us(6 * 1000000); /* node.ttl is 3 s */
  int64_t resumed_s = cx_wall_s();
  kill(p.pid, SIGCONT);

  /* Back to work under a new lease: fires after the resume run. */
  size_t after = 0;
  for (int i = 0; i < 150 && after < 2; i++) {
    after = cron_rows_in(p.store, 90, resumed_s + 1, resumed_s + 100);
    cx_sleep_us(100000);
  }
  ASSERT_MSG(after >= 2, "only %zu runs after the resume", after);
  /* The fires due while stopped (after the second it stopped in, up to the
   * second it resumed in) ran nowhere: misfire is skip and nothing else
   * holds the job. */
  ASSERT_EQ(cron_rows_in(p.store, 90, stopped_s + 1, resumed_s), 0);
  /* ... and the run log says so: each of them is in a missed row. */
  long missed = 0;
  every_second_once(p.store, 90, t + 1, resumed_s + 1, &missed);
  ASSERT_OP(missed, >=, resumed_s - stopped_s);
  pnode_down(&p);
}

/* A node SIGKILLed with a queue of due fires (one worker, three jobs that
 * each sleep two seconds every second): when it comes back, every fire of
 * every job up to its return has exactly one row — a run, a skip, the run
 * it was in the middle of (lost), or missed (the fires it had queued, the
 * seconds it was down). */
TEST_TIMEOUT(node_sigkill_with_queued_fires_leaves_a_row_for_each, 120)
{
  static struct pnode p;
  struct cx_job j[3];
  char err[CX_ERR_LEN];
  pnode_up_set(&p, "queue-node", "node.max_concurrent=1");
  for (int i = 0; i < 3; i++) {
    job_base(&j[i], 95 + i, "sleep 2", "* * * * * *");
    j[i].misfire = i == 0 ? "skip" : "run_once";
    pnode_put(&p, "job", &j[i]);
  }
  struct cx_run_filter flt = {.page_size = 500};
  struct cx_run_list l;
  for (int i = 0; i < 100; i++) {
    ASSERT(cx_store_run_search(p.store, &flt, &l, err) == 0);
    size_t n = l.n;
    cx_run_list_free(&l);
    if (n >= 8)
      break;
    cx_sleep_us(100000);
  }
  kill(p.pid, SIGKILL);
  waitpid(p.pid, NULL, 0);
  cx_sleep_us(2000000);
  int64_t back_s = cx_wall_s();
  p.pid =
      node_spawn_set(p.dir, p.url, p.etcd.endpoints, "node.max_concurrent=1");
  /* the restarted node accounts for the gap on arrival */
  long missed[3] = {0};
  for (int i = 0; i < 3; i++) {
    for (int w = 0; w < 100; w++) {
      ASSERT(cx_store_run_search(
                 p.store,
                 &(struct cx_run_filter){.job_id = 95 + i, .page_size = 500},
                 &l, err) == 0);
      int done = 1;
      for (int64_t t = j[i].created + 1; t <= back_s && done; t++)
        done = rows_for_fire(&l, t) > 0;
      cx_run_list_free(&l);
      if (done)
        break;
      cx_sleep_us(100000);
    }
    every_second_once(p.store, 95 + i, j[i].created + 1, back_s, &missed[i]);
    /* at least the two seconds it was down */
    ASSERT_OP(missed[i], >=, 2);
  }
  pnode_down(&p);
}

/* A node SIGKILLed in the middle of a run comes back and closes that run
 * as lost: nobody else will record how it ended. */
TEST_TIMEOUT(node_restart_marks_its_orphaned_run_lost, 90)
{
  static struct pnode p;
  char err[CX_ERR_LEN];
  struct cx_job j;
  pnode_up(&p, "orphan-node");
  job_base(&j, 91, "sleep 8", never());
  pnode_put(&p, "job", &j);
  cx_sleep_us(300000);
  pnode_put(&p, "once", &j);
  struct cx_run_filter flt = {.job_id = 91, .page_size = 10};
  struct cx_run_list l = {0};
  for (int i = 0; i < 100; i++) {
    ASSERT(cx_store_run_search(p.store, &flt, &l, err) == 0);
    if (l.n == 1 && strcmp(l.items[0].status, "running") == 0)
      break;
    cx_run_list_free(&l);
    cx_sleep_us(100000);
  }
  ASSERT_MSG(l.n == 1, "the once run never started");
  int64_t run_id = l.items[0].id;
  cx_run_list_free(&l);
  kill(p.pid, SIGKILL);
  waitpid(p.pid, NULL, 0);
  p.pid = node_spawn(p.dir, p.url, p.etcd.endpoints);
  struct cx_run r;
  memset(&r, 0, sizeof r);
  for (int i = 0; i < 100; i++) {
    ASSERT(cx_store_run_find(p.store, run_id, &r, err) == 0);
    if (strcmp(r.status, "running") != 0)
      break;
    cx_run_clear(&r);
    cx_sleep_us(100000);
  }
  ASSERT_STREQ(r.status, "lost");
  ASSERT_CONTAINS(r.output, p.uuid);
  cx_run_clear(&r);
  pnode_down(&p);
}

/* ---- lease loss: fail closed, re-register, re-list (real etcd) ----------- */

TEST_TIMEOUT(node_lease_lost_reregisters_and_keeps_running, 90)
{
  static struct cx_svc_etcd etcd;
  char err[CX_ERR_LEN], key[128];
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  struct cx_coord_kvs kvs;
  ASSERT_MSG(cx_svc_etcd_start(&etcd, NULL, err) == 0, "%s", err);
  fx_up(&f, NULL, etcd.endpoints, "n");
  job_base(&j, 80, "true", "* * * * * *");
  put_job(&f, &j);
  ASSERT(wait_runs(&f, 80, 1, 10, &l) >= 1);
  cx_run_list_free(&l);
  snprintf(key, sizeof key, "/cronix/node/%s", f.uuid);
  ASSERT(cx_coord_get(f.coord, key, strlen(key), &kvs, err) == 0);
  int64_t lease = kvs.kvs[0].lease;
  cx_coord_kvs_free(&kvs);
  /* Someone else revokes the node's lease (as an expiry would). */
  struct cx_coord *other;
  struct cx_coord_cfg cc = {.endpoints = etcd.endpoints};
  ASSERT(cx_coord_open(&cc, &other, err) == 0);
  ASSERT_MSG(cx_coord_lease_revoke(other, lease, err) == 0, "%s", err);
  cx_coord_close(other);
  struct cx_noded_stats st;
  int64_t lease2 = 0;
  for (int i = 0; i < 200; i++) {
    if (cx_coord_get(f.coord, key, strlen(key), &kvs, NULL) == 0) {
      lease2 = kvs.kvs[0].lease;
      cx_coord_kvs_free(&kvs);
      if (lease2 != lease)
        break;
    }
    cx_sleep_us(100000);
  }
  ASSERT_MSG(lease2 != 0 && lease2 != lease, "node key not re-registered");
  cx_noded_stats_get(f.node, &st);
  ASSERT_EQ(st.lease_losses, 1);
  size_t before = runs(&f, 80, &l);
  cx_run_list_free(&l);
  ASSERT(wait_runs(&f, 80, before + 2, 10, &l) >= before + 2);
  cx_run_list_free(&l);
  fx_down(&f);
  cx_svc_etcd_destroy(&etcd);
}

/* ---- stop: drain within the grace, kill and record the rest -------------- */

TEST(node_stop_drains_then_kills_and_records)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  fx_up(&f, NULL, NULL, "n"); /* node.shutdown_grace = 2s */
  job_base(&j, 90, "sleep 1; echo done", never());
  put_once(&f, &j);
  job_base(&j, 91, "sleep 100", never());
  put_once(&f, &j);
  struct cx_noded_stats st;
  for (int i = 0; i < 50; i++) {
    cx_noded_stats_get(f.node, &st);
    if (st.active == 2)
      break;
    cx_sleep_us(50000);
  }
  cx_sleep_us(300000);
  int64_t t0 = cx_wall_ms();
  cx_noded_stop(f.node);
  int64_t took = cx_wall_ms() - t0;
  ASSERT_MSG(took < 10000, "stop took %lld ms", (long long)took);
  ASSERT_EQ(runs(&f, 90, &l), 1);
  ASSERT_STREQ(first_done(&l)->status, "success");
  ASSERT_STREQ(first_done(&l)->output, "done\n");
  cx_run_list_free(&l);
  ASSERT_EQ(runs(&f, 91, &l), 1);
  ASSERT_STREQ(first_done(&l)->status, "killed");
  cx_run_list_free(&l);
  fx_down(&f);
}

/* ---- jobs cannot become the scheduler (issue 13) ------------------------- */

static void need_root(void)
{
  if (geteuid() != 0)
    cx_test_skip("needs root (the node switches users only as root)");
}

/* What a job could do as root: read the first admin's token, the daemon's
 * environment (CRONIX_* settings carry passwords), write the database.
 * As node.run_as = nobody each attempt fails and changes nothing. */
TEST_TIMEOUT(node_job_runs_unprivileged_and_cannot_read_the_node, 60)
{
  struct fx f;
  struct cx_run_list l;
  char cmd[4096], secret[700], db[700];
  need_root();
  setenv("CRONIX_TEST_PASSWORD", "hunter2-env", 1);
  static const char *const extra[] = {"node.run_as", "nobody", "node.workdir",
                                      "/", NULL};
  fx_start(&f, NULL, NULL, "n", extra, NULL);
  snprintf(secret, sizeof secret, "%s/initial-admin.txt", f.dir);
  snprintf(db, sizeof db, "%s/cronix.db", f.dir);
  FILE *fp = fopen(secret, "w");
  ASSERT(fp != NULL);
  fputs("token-abc\n", fp);
  fclose(fp);
  ASSERT_EQ(chmod(secret, 0600), 0);
  struct stat before;
  ASSERT_EQ(stat(db, &before), 0);
  snprintf(cmd, sizeof cmd,
           "id -u; id -G; echo \"env:$CRONIX_TEST_PASSWORD\"; "
           "cat %s; cat /proc/%ld/environ; echo x >> %s; "
           "echo x >> %s; ls %s; exit 0",
           secret, (long)getpid(), secret, db, f.dir);
  const struct cx_run *r = once_run(&f, 41, cmd, 10, &l);
  ASSERT_STREQ(r->status, "success");
  ASSERT(strncmp(r->output, "65534\n65534\nenv:\n", 17) == 0);
  ASSERT_CONTAINS(r->output, "Permission denied");
  ASSERT(strstr(r->output, "token-abc") == NULL);
  ASSERT(strstr(r->output, "hunter2") == NULL);
  ASSERT(strstr(r->output, "\ncronix.db\n") == NULL); /* not even ls */
  cx_run_list_free(&l);
  /* nothing changed */
  char line[64] = "";
  fp = fopen(secret, "r");
  ASSERT(fp != NULL && fgets(line, sizeof line, fp) != NULL);
  ASSERT(fgetc(fp) == EOF);
  fclose(fp);
  ASSERT_STREQ(line, "token-abc\n");
  struct stat after;
  ASSERT_EQ(stat(db, &after), 0);
  ASSERT_EQ(after.st_mtime, before.st_mtime);
  ASSERT_EQ(after.st_size, before.st_size);
  fx_down(&f);
}

/* A job's run_as works only from node.run_as_allow; anything else is
 * recorded as an error with the reason and does not run at all. */
TEST_TIMEOUT(node_job_run_as_only_from_the_allow_list, 60)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  char cmd[1024], mark[700];
  need_root();
  static const char *const extra[] = {
      "node.run_as", "nobody",       "node.run_as_allow",
      "daemon, bin", "node.workdir", "/",
      NULL};
  fx_start(&f, NULL, NULL, "n", extra, NULL);
  snprintf(mark, sizeof mark, "/tmp/cx-runas-%ld", (long)getpid());
  unlink(mark);
  snprintf(cmd, sizeof cmd, "id -u; : > %s", mark);
  job_base(&j, 42, cmd, never());
  j.run_as = "root";
  put_once(&f, &j);
  ASSERT(wait_runs(&f, 42, 1, 20, &l) == 1);
  ASSERT_STREQ(first_done(&l)->status, "error");
  ASSERT_CONTAINS(first_done(&l)->output, "run_as \"root\"");
  ASSERT_CONTAINS(first_done(&l)->output, "node.run_as_allow");
  ASSERT(access(mark, F_OK) != 0); /* never ran */
  cx_run_list_free(&l);
  job_base(&j, 43, "id -u; echo $HOME $USER", never());
  j.run_as = "daemon";
  put_once(&f, &j);
  ASSERT(wait_runs(&f, 43, 1, 20, &l) == 1);
  ASSERT_STREQ(first_done(&l)->status, "success");
  ASSERT_STREQ(first_done(&l)->output, "1\n/usr/sbin daemon\n");
  cx_run_list_free(&l);
  fx_down(&f);
}

/* Root without a user to run jobs as refuses to start, naming the fix. */
TEST(node_as_root_refuses_to_start_without_a_job_user)
{
  char err[CX_ERR_LEN], url[700];
  struct cx_config cfg;
  struct cx_store *s;
  struct cx_coord *c;
  struct cx_noded *n = NULL;
  need_root();
  snprintf(url, sizeof url, "sqlite://%s/cronix.db", cx_test_tmpdir());
  ASSERT(cx_config_init(&cfg) == 0);
  ASSERT(cx_config_set(&cfg, "server.data_dir", cx_test_tmpdir(), err) == 0);
  ASSERT(cx_config_set(&cfg, "store.url", url, err) == 0);
  ASSERT(cx_config_set(&cfg, "node.run_as", "no-such-user-cx", err) == 0);
  ASSERT_MSG(cx_config_finish(&cfg, err) == 0, "%s", err);
  ASSERT(cx_store_open(url, &s, err) == 0);
  struct cx_coord_cfg cc = {.endpoints = NULL};
  ASSERT(cx_coord_open(&cc, &c, err) == 0);
  struct cx_noded_opts o = {.cfg = &cfg, .store = s, .coord = c};
  ASSERT(cx_noded_create(&o, &n, err) != 0);
  ASSERT(n == NULL);
  ASSERT_CONTAINS(err, "node.run_as");
  ASSERT_CONTAINS(err, "no-such-user-cx");
  /* the default is the "cronix" user: refused unless it exists */
  ASSERT(cx_config_set(&cfg, "node.run_as", "", err) == 0);
  int have = getpwnam("cronix") != NULL;
  int rc = cx_noded_create(&o, &n, err);
  if (have) {
    ASSERT_EQ(rc, 0);
    cx_noded_destroy(n);
  } else {
    ASSERT(rc != 0);
    ASSERT_CONTAINS(err, "useradd --system");
  }
  cx_coord_close(c);
  cx_store_close(s);
  cx_config_free(&cfg);
}

/* A run's processes that left its session or double-forked die with it,
 * on a timeout and on a kill. */
static void escape_run(int by_kill)
{
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  char cmd[1024], marker[64];
  need_root();
  static const char *const extra[] = {"node.run_as", "nobody", "node.workdir",
                                      "/", NULL};
  fx_start(&f, NULL, NULL, "n", extra, NULL);
  snprintf(marker, sizeof marker, "cxesc%ld%d", (long)getpid(), by_kill);
  snprintf(cmd, sizeof cmd,
           "setsid sh -c 'sleep 300; : %s' >/dev/null 2>&1 & "
           "(sh -c 'sleep 300; : %s' >/dev/null 2>&1 &); sleep 300",
           marker, marker);
  job_base(&j, 44, cmd, never());
  j.timeout = by_kill ? 0 : 1;
  put_once(&f, &j);
  if (by_kill) {
    for (int i = 0; i < 200 && cx_test_marked_procs(marker) < 2; i++)
      cx_sleep_us(50000);
    ASSERT_EQ(cx_test_marked_procs(marker), 2);
    put_raw(&f, "kill", 44, "{\"request_id\":\"k\",\"at\":1}");
  }
  ASSERT(wait_runs(&f, 44, 1, 20, &l) == 1);
  ASSERT_STREQ(first_done(&l)->status, by_kill ? "killed" : "timeout");
  cx_run_list_free(&l);
  int left = cx_test_marked_procs(marker);
  if (left)
    cx_test_marked_kill(marker);
  ASSERT_EQ(left, 0);
  fx_down(&f);
}

TEST_TIMEOUT(node_timeout_kills_escaped_children, 60)
{
  escape_run(0);
}

TEST_TIMEOUT(node_kill_kills_escaped_children, 60)
{
  escape_run(1);
}
