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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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
};

/* One more setting for the next fx_up (then cleared), e.g.
 * node.max_concurrent. */
static const char *fx_set_name, *fx_set_value;

static void fx_up(struct fx *f, const char *store_url, const char *etcd,
                  const char *sub)
{
  char err[CX_ERR_LEN], url[700];
  memset(f, 0, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "%s/%s", cx_test_tmpdir(), sub);
  mkdir(f->dir, 0700);
  ASSERT(cx_config_init(&f->cfg) == 0);
  ASSERT(cx_config_set(&f->cfg, "server.data_dir", f->dir, err) == 0);
  ASSERT(cx_config_set(&f->cfg, "system.default_timezone", "UTC", err) == 0);
  ASSERT_MSG(cx_config_set(&f->cfg, "node.kill_grace", "1s", err) == 0, "%s",
             err);
  ASSERT(cx_config_set(&f->cfg, "node.shutdown_grace", "2s", err) == 0);
  ASSERT(cx_config_set(&f->cfg, "node.ttl", "5s", err) == 0);
  if (store_url == NULL) {
    snprintf(url, sizeof url, "sqlite://%s/cronix.db", f->dir);
    store_url = url;
  }
  ASSERT(cx_config_set(&f->cfg, "store.url", store_url, err) == 0);
  if (fx_set_name != NULL)
    ASSERT_MSG(cx_config_set(&f->cfg, fx_set_name, fx_set_value, err) == 0,
               "%s", err);
  fx_set_name = fx_set_value = NULL;
  ASSERT_MSG(cx_config_finish(&f->cfg, err) == 0, "%s", err);
  cx_tz_set_default("UTC", err);
  ASSERT_MSG(cx_store_open(store_url, &f->store, err) == 0, "%s", err);
  struct cx_coord_cfg cc = {.endpoints = etcd};
  ASSERT_MSG(cx_coord_open(&cc, &f->coord, err) == 0, "%s", err);
  struct cx_noded_opts o = {
      .cfg = &f->cfg, .store = f->store, .coord = f->coord, .version = "t"};
  ASSERT_MSG(cx_noded_create(&o, &f->node, err) == 0, "%s", err);
  ASSERT_MSG(cx_noded_start(f->node, err) == 0, "%s", err);
  f->uuid = cx_noded_uuid(f->node);
}

static void fx_down(struct fx *f)
{
  cx_noded_destroy(f->node);
  cx_coord_close(f->coord);
  cx_store_close(f->store);
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

/* Finished runs of job id (newest first), into *l. */
static size_t runs(struct fx *f, int64_t id, struct cx_run_list *l)
{
  struct cx_run_filter flt = {.job_id = id, .page_size = 500};
  char err[CX_ERR_LEN];
  ASSERT_MSG(cx_store_run_search(f->store, &flt, l, err) == 0, "%s", err);
  size_t k = 0;
  for (size_t i = 0; i < l->n; i++)
    k += strcmp(l->items[i].status, "running") != 0;
  return k;
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

static const char *yearly = "0 0 0 1 1 *";

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

TEST(node_daily_midnight_scheduled_for_next_midnight)
{
  struct fx f;
  struct cx_job j;
  int64_t at = 0;
  fx_up(&f, NULL, NULL, "n");
  job_base(&j, 8, "true", "0 0 * * *");
  j.timezone = "UTC";
  put_job(&f, &j);
  for (int i = 0; i < 50 && cx_noded_next_fire(f.node, 8, &at) != 0; i++)
    cx_sleep_us(50000);
  int64_t now = cx_wall_s();
  int64_t want = (now / 86400 + 1) * 86400;
  ASSERT_EQ(at, want * 1000);
  /* Asia/Shanghai midnight is 16:00 UTC. */
  j.timezone = "Asia/Shanghai";
  put_job(&f, &j);
  int64_t w2 = ((now + 8 * 3600) / 86400 + 1) * 86400 - 8 * 3600;
  for (int i = 0; i < 50; i++) {
    cx_noded_next_fire(f.node, 8, &at);
    if (at == w2 * 1000)
      break;
    cx_sleep_us(50000);
  }
  ASSERT_EQ(at, w2 * 1000);
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
  fx_set_name = "node.max_concurrent";
  fx_set_value = "1";
  fx_up(&f, NULL, NULL, "n");
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
  job_base(&j, 9, cmd, yearly);
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
  job_base(&j, 10, "echo try; exit 3", yearly);
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
  cx_run_list_free(&l);
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
  job_base(&j, 11, cmd, yearly);
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

/* ---- concurrency --------------------------------------------------------- */

static size_t count_status(const struct cx_run_list *l, const char *st)
{
  size_t k = 0;
  for (size_t i = 0; i < l->n; i++)
    k += strcmp(l->items[i].status, st) == 0;
  return k;
}

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
  job_base(&j, 15, "echo once", yearly);
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
  job_base(&j, 16, "sleep 2", yearly);
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
  job_base(&j, 16, "sleep 100", yearly);
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
  job_base(&j, 18, "sleep 2; echo old", yearly);
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
  job_base(&j, 19, "true", yearly);
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
  job_base(&j, 22, "echo fine", yearly);
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
  job_base(&j, id, cmd, yearly);
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
    job_base(&j, 40 + i, url, yearly);
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
  ASSERT(wait_runs(&f, 50, 1, 10, &l) >= 1);
  const struct cx_run *r = &l.items[l.n - 1];
  ASSERT_STREQ(r->trigger, "misfire");
  ASSERT_EQ(r->scheduled_at % 60, 0);
  ASSERT(r->scheduled_at <= cx_wall_s());
  cx_run_list_free(&l);
  /* skip policy: nothing */
  job_base(&j, 51, "echo late", "0 * * * * *");
  j.created = cx_wall_s() - 3600;
  j.misfire = "skip";
  int64_t t0 = cx_wall_s();
  put_job(&f, &j);
  cx_sleep_us(1500000);
  runs(&f, 51, &l);
  for (size_t i = 0; i < l.n; i++)
    ASSERT(l.items[i].scheduled_at > t0);
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

TEST_TIMEOUT(node_mariadb_down_10s_every_run_recorded_once, 120)
{
  static struct cx_svc_etcd etcd;
  static struct cx_svc_mariadb db;
  char err[CX_ERR_LEN];
  struct fx f;
  struct cx_job j;
  struct cx_run_list l;
  ASSERT_MSG(cx_svc_etcd_start(&etcd, NULL, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_mariadb_start(&db, NULL, err) == 0, "%s", err);
  char url[256];
  snprintf(url, sizeof url, "%s?connect_timeout=2&read_timeout=3", db.url);
  fx_up(&f, url, etcd.endpoints, "n");
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

/* ---- SIGKILL and restart of a real `cronix node` --------------------------
 */

static pid_t node_spawn(const char *dir, const char *store, const char *etcd)
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
          "system.default_timezone=UTC", (char *)NULL);
    _exit(127);
  }
  return pid;
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
         strcmp(l.items[i].trigger, "cron") == 0;
  cx_run_list_free(&l);
  return k;
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

static void pnode_up(struct pnode *p, const char *sub)
{
  char err[CX_ERR_LEN];
  ASSERT_MSG(cx_svc_etcd_start(&p->etcd, NULL, err) == 0, "%s", err);
  snprintf(p->dir, sizeof p->dir, "%s/%s", cx_test_tmpdir(), sub);
  mkdir(p->dir, 0700);
  snprintf(p->url, sizeof p->url, "sqlite://%s/cronix.db", p->dir);
  ASSERT_MSG(cx_store_open(p->url, &p->store, err) == 0, "%s", err);
  struct cx_coord_cfg cc = {.endpoints = p->etcd.endpoints};
  ASSERT(cx_coord_open(&cc, &p->coord, err) == 0);
  p->pid = node_spawn(p->dir, p->url, p->etcd.endpoints);
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
  job_base(&j, 91, "sleep 8", yearly);
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
  job_base(&j, 90, "sleep 1; echo done", yearly);
  put_once(&f, &j);
  job_base(&j, 91, "sleep 100", yearly);
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
