/*
 * Broadcast jobs (allocation 3, issue 18) on real processes: one `cronix
 * admin` and three `cronix node`s on MariaDB and etcd. A `* * * * * *`
 * broadcast job runs on every node each second with distinct shard
 * indexes (CRONIX_SHARD_INDEX/_TOTAL in its environment), one with a
 * node_selector only on the matching nodes; a node killed and restarted
 * leaves, per (fire, node), exactly one row (its run, or a missed range)
 * and no duplicate.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "support/run.h"
#include "support/services.h"
#include "support/test.h"
#include "util/util.h"

#define NNODES 3

static struct {
  struct cx_svc_etcd etcd;
  struct cx_svc_mariadb db;
  struct cx_svc_proc admin, node[NNODES];
  int port;
  char admin_dir[CX_SVC_PATH_LEN], node_dir[NNODES][CX_SVC_PATH_LEN];
  char uuid[NNODES][64];
  char token[128];
  struct cx_store *store;
} B;

static void start(struct cx_svc_proc *p, const char *role, const char *dir,
                  const char *name, const char *labels)
{
  char err[CX_ERR_LEN], listen[64], log[CX_SVC_PATH_LEN + 16], lab[128];
  const char *argv[24] = {cx_test_cronix_bin(),
                          role,
                          "--data-dir",
                          dir,
                          "--store",
                          B.db.url,
                          "--etcd",
                          B.etcd.endpoints,
                          "--set",
                          "node.ttl=3s",
                          "--set",
                          "system.default_timezone=UTC"};
  if (strcmp(role, "admin") == 0) {
    snprintf(listen, sizeof listen, "127.0.0.1:%d", B.port);
    argv[12] = "--listen";
    argv[13] = listen;
    argv[14] = "--set";
    argv[15] = "system.cmd_auto_allocation=true";
  } else {
    snprintf(lab, sizeof lab, "node.labels=%s", labels);
    argv[12] = "--set";
    argv[13] = lab;
  }
  snprintf(log, sizeof log, "%s/%s.log", dir, role);
  ASSERT_MSG(cx_svc_proc_set_argv(p, name, log, argv, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_proc_start(p, err) == 0, "%s", err);
}

static const char *const labels[NNODES] = {"role=web", "role=web", "role=db"};

static void node_start(int i)
{
  char name[16];
  snprintf(name, sizeof name, "node%d", i);
  start(&B.node[i], "node", B.node_dir[i], name, labels[i]);
}

static int read_text(const char *path, char *buf, size_t cap)
{
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (int)n;
}

static long api(const char *method, const char *path, const char *body,
                char *resp, size_t cap)
{
  char url[256];
  long status = 0;
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", B.port, path);
  cx_svc_http_auth(method, url, B.token, body, 10000, &status, resp, cap, NULL);
  return status;
}

static void wait_token(void)
{
  char path[CX_SVC_PATH_LEN + 32], text[1024], *p;
  snprintf(path, sizeof path, "%s/initial-admin.txt", B.admin_dir);
  for (int t = 0; t < 1200; t++) {
    if (read_text(path, text, sizeof text) > 0 &&
        (p = strstr(text, "token = ")) != NULL) {
      p += 8;
      size_t n = strcspn(p, "\r\n");
      ASSERT(n > 0 && n < sizeof B.token);
      memcpy(B.token, p, n);
      B.token[n] = '\0';
      return;
    }
    ASSERT_MSG(cx_svc_proc_alive(&B.admin), "admin exited; see %s",
               B.admin.log_path);
    cx_sleep_us(50000);
  }
  ASSERT_MSG(0, "no token in %s", path);
}

static void wait_uuid(int i)
{
  char path[CX_SVC_PATH_LEN + 16], text[256];
  snprintf(path, sizeof path, "%s/node.id", B.node_dir[i]);
  for (int t = 0; t < 600; t++) {
    if (read_text(path, text, sizeof text) > 0) {
      size_t n = strcspn(text, " \r\n");
      ASSERT(n > 0 && n < sizeof B.uuid[i]);
      memcpy(B.uuid[i], text, n);
      B.uuid[i][n] = '\0';
      return;
    }
    cx_sleep_us(100000);
  }
  ASSERT_MSG(0, "no %s", path);
}

/* Adds a job from its JSON body (retrying while the nodes register). */
static int64_t add(const char *body)
{
  static char resp[65536];
  long st = 0;
  for (int t = 0; t < 100 && st != 200; t++) {
    st = api("POST", "/job/add", body, resp, sizeof resp);
    if (st != 200)
      cx_sleep_us(300000);
  }
  ASSERT_MSG(st == 200, "/job/add %ld: %s", st, resp);
  json_t *o = json_loads(resp, 0, NULL);
  int64_t id =
      json_integer_value(json_object_get(json_object_get(o, "data"), "id"));
  json_decref(o);
  ASSERT(id > 0);
  return id;
}

static void rows(int64_t id, struct cx_run_list *l)
{
  char err[CX_ERR_LEN];
  struct cx_run_filter f = {.job_id = id, .page_size = 500};
  ASSERT_MSG(cx_store_run_search(B.store, &f, l, err) == 0, "%s", err);
  ASSERT_MSG(l->total <= 500, "more rows than a page: %lld",
             (long long)l->total);
}

static int node_of(const char *uuid)
{
  for (int i = 0; i < NNODES; i++)
    if (strcmp(uuid, B.uuid[i]) == 0)
      return i;
  return -1;
}

/* Rows of node i accounting for fire t: its own, or a missed range's. */
static int accounted(const struct cx_run_list *l, int i, int64_t t)
{
  int k = 0;
  for (size_t r = 0; r < l->n; r++) {
    const struct cx_run *x = &l->items[r];
    if (!x->has_scheduled_at || node_of(x->node_uuid) != i)
      continue;
    ASSERT_MSG(x->per_node, "a broadcast row without its claim node");
    if (x->scheduled_at == t || (strcmp(x->status, "missed") == 0 &&
                                 x->scheduled_at < t && x->missed_last >= t))
      k++;
  }
  return k;
}

/* Seconds since which node i has run job id (its first success). */
static int64_t first_success(int64_t id, int i)
{
  struct cx_run_list l;
  int64_t first = 0;
  rows(id, &l);
  for (size_t r = 0; r < l.n; r++)
    if (node_of(l.items[r].node_uuid) == i &&
        strcmp(l.items[r].status, "success") == 0 &&
        (first == 0 || l.items[r].scheduled_at < first))
      first = l.items[r].scheduled_at;
  cx_run_list_free(&l);
  return first;
}

static int64_t wait_success_after(int64_t id, int i, int64_t after)
{
  for (int t = 0; t < 300; t++) {
    struct cx_run_list l;
    rows(id, &l);
    int64_t got = 0;
    for (size_t r = 0; r < l.n; r++)
      if (node_of(l.items[r].node_uuid) == i &&
          strcmp(l.items[r].status, "success") == 0 &&
          l.items[r].scheduled_at > after)
        got = l.items[r].scheduled_at;
    cx_run_list_free(&l);
    if (got)
      return got;
    cx_sleep_us(100000);
  }
  ASSERT_MSG(0, "node%d ran job %lld not after %lld", i, (long long)id,
             (long long)after);
  return 0;
}

/* Every fire in [from, to]: per node in want (a bit mask) exactly one
 * success row whose output is its shard "i/total" with distinct indexes;
 * no row from the other nodes. */
static void shards_ok(int64_t id, int64_t from, int64_t to, unsigned want,
                      int total)
{
  struct cx_run_list l;
  rows(id, &l);
  for (int64_t t = from; t <= to; t++) {
    unsigned seen = 0, idx = 0;
    for (size_t r = 0; r < l.n; r++) {
      const struct cx_run *x = &l.items[r];
      if (!x->has_scheduled_at || x->scheduled_at != t)
        continue;
      int i = node_of(x->node_uuid);
      ASSERT_MSG(i >= 0 && (want >> i & 1), "job %lld fire %lld on node%d",
                 (long long)id, (long long)t, i);
      ASSERT_MSG(!(seen >> i & 1), "job %lld fire %lld twice on node%d",
                 (long long)id, (long long)t, i);
      seen |= 1u << i;
      ASSERT_STREQ(x->status, "success");
      int si = -1, st = -1;
      ASSERT_MSG(sscanf(x->output, "%d/%d", &si, &st) == 2, "output %s",
                 x->output);
      ASSERT_EQ(st, total);
      ASSERT_MSG(si >= 0 && si < total && !(idx >> si & 1),
                 "fire %lld: shard %d twice or out of range", (long long)t, si);
      idx |= 1u << si;
    }
    ASSERT_MSG(seen == want, "job %lld fire %lld: nodes %x, want %x",
               (long long)id, (long long)t, seen, want);
  }
  cx_run_list_free(&l);
}

/* Every fire in [from, to] of a job with max_running m among NNODES nodes:
 * m success rows and NNODES - m skipped ones naming max_running, one per
 * node; the skipped nodes rotate with the fire (each node sits out some
 * fire when the window is long enough). */
static void max_running_ok(int64_t id, int64_t from, int64_t to, int m)
{
  struct cx_run_list l;
  unsigned sat_out = 0;
  rows(id, &l);
  for (int64_t t = from; t <= to; t++) {
    unsigned seen = 0;
    int ran = 0, skipped = 0;
    for (size_t r = 0; r < l.n; r++) {
      const struct cx_run *x = &l.items[r];
      if (!x->has_scheduled_at || x->scheduled_at != t)
        continue;
      int i = node_of(x->node_uuid);
      ASSERT_MSG(i >= 0 && !(seen >> i & 1),
                 "fire %lld: node%d twice or "
                 "unknown",
                 (long long)t, i);
      seen |= 1u << i;
      if (strcmp(x->status, "success") == 0) {
        ran++;
      } else {
        ASSERT_STREQ(x->status, "skipped");
        ASSERT_CONTAINS(x->output, "max_running");
        skipped++;
        sat_out |= 1u << i;
      }
    }
    ASSERT_MSG(ran == m && skipped == NNODES - m,
               "job %lld fire %lld: %d ran, %d skipped; want %d and %d",
               (long long)id, (long long)t, ran, skipped, m, NNODES - m);
  }
  ASSERT_MSG(to - from + 1 < NNODES || sat_out == (1u << NNODES) - 1,
             "the skipped node does not rotate: %x", sat_out);
  cx_run_list_free(&l);
}

TEST_TIMEOUT(broadcast_every_node_shards_and_a_restart_leaves_no_gap, 240)
{
  static char resp[65536];
  char err[CX_ERR_LEN], body[512];
  ASSERT_MSG(cx_svc_etcd_start(&B.etcd, NULL, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_mariadb_start(&B.db, NULL, err) == 0, "%s", err);
  ASSERT(cx_svc_port_alloc(&B.port, err) == 0);
  ASSERT(cx_svc_dir_make("admin", B.admin_dir, sizeof B.admin_dir, err) == 0);
  start(&B.admin, "admin", B.admin_dir, "admin", NULL);
  wait_token();
  ASSERT_MSG(cx_store_open(B.db.url, &B.store, err) == 0, "%s", err);
  for (int i = 0; i < NNODES; i++) {
    ASSERT(cx_svc_dir_make("node", B.node_dir[i], sizeof B.node_dir[i], err) ==
           0);
    node_start(i);
    wait_uuid(i);
  }
  const char *cmd = "echo $CRONIX_SHARD_INDEX/$CRONIX_SHARD_TOTAL";
  snprintf(body, sizeof body,
           "{\"name\":\"all\",\"type\":1,\"command\":\"%s\",\"spec\":\"* * * "
           "* * *\",\"allocation\":3,\"timezone\":\"UTC\"}",
           cmd);
  int64_t all = add(body);
  snprintf(body, sizeof body,
           "{\"name\":\"web\",\"type\":1,\"command\":\"%s\",\"spec\":\"* * * "
           "* * *\",\"allocation\":3,\"timezone\":\"UTC\","
           "\"node_selector\":\"role=web\"}",
           cmd);
  int64_t web = add(body);
  /* max_running 2 of 3: one node sits each fire out, in turn. */
  snprintf(body, sizeof body,
           "{\"name\":\"two\",\"type\":1,\"command\":\"true\",\"spec\":"
           "\"* * * * * *\",\"allocation\":3,\"timezone\":\"UTC\","
           "\"max_running\":2}");
  int64_t two = add(body);

  /* Every node running both (the web one on two): from then on, 4 s of
   * fires with every shard once. */
  int64_t from = 0;
  for (int i = 0; i < NNODES; i++) {
    int64_t f = wait_success_after(all, i, 0);
    from = f > from ? f : from;
  }
  for (int i = 0; i < 2; i++) {
    int64_t f = wait_success_after(web, i, 0);
    from = f > from ? f : from;
  }
  for (int i = 0; i < NNODES; i++) {
    int64_t f = wait_success_after(two, i, 0);
    from = f > from ? f : from;
  }
  from += 1;
  cx_sleep_us(5000000);
  int64_t to = cx_wall_s() - 2;
  shards_ok(all, from, to, 7, 3);
  shards_ok(web, from, to, 3, 2);
  max_running_ok(two, from, to, 2);
  ASSERT_EQ(first_success(web, 2), 0);

  char path[64];
  snprintf(path, sizeof path, "/job/find?id=%lld", (long long)all);
  ASSERT_EQ(api("GET", path, NULL, resp, sizeof resp), 200);
  json_t *o = json_loads(resp, 0, NULL);
  json_t *nodes = json_object_get(json_object_get(o, "data"), "nodes");
  ASSERT_EQ(json_array_size(nodes), NNODES);
  json_decref(o);

  /* SIGKILL node1 for 5 s, then restart it. */
  ASSERT(cx_svc_proc_signal(&B.node[1], SIGKILL, err) == 0);
  cx_svc_proc_stop(&B.node[1], 1000, err);
  int64_t killed = cx_wall_s();
  cx_sleep_us(5000000);
  node_start(1);
  int64_t back = wait_success_after(all, 1, killed + 4);
  cx_sleep_us(3000000);
  int64_t end = cx_wall_s() - 2;
  /* node2 dies for good: the leader accounts its fires up to its death as
   * missed, once: every fire due by the second it saw the lease end, which
   * is at least TTL - TTL/3 = 2 s after the kill (the last renewal is at
   * most TTL/3 old), so at least the one after the kill. killed2 is read
   * before the signal: a second boundary crossed while the process is
   * reaped must not move it later (CI hit that). */
  int64_t killed2 = cx_wall_s();
  ASSERT(cx_svc_proc_signal(&B.node[2], SIGKILL, err) == 0);
  cx_svc_proc_stop(&B.node[2], 1000, err);
  cx_sleep_us(8000000);
  for (int i = 0; i < 2; i++)
    ASSERT(cx_svc_proc_stop(&B.node[i], 10000, err) == 0);

  struct cx_run_list l;
  rows(all, &l);
  long missed = 0;
  for (int i = 0; i < NNODES; i++)
    for (int64_t t = from; t <= end; t++) {
      int k = accounted(&l, i, t);
      ASSERT_MSG(k == 1, "node%d fire %lld (%+lld s from the kill): %d rows", i,
                 (long long)t, (long long)(t - killed), k);
      missed += i == 1 && t > killed && t < back;
    }
  cx_run_list_free(&l);
  ASSERT_MSG(missed > 0, "node1 was down yet missed nothing");
  rows(all, &l);
  int by_leader = 0;
  for (int64_t t = end + 1; t <= killed2 + 1; t++)
    ASSERT_MSG(accounted(&l, 2, t) == 1,
               "dead node2 fire %lld (%+lld s from "
               "its death): %d rows",
               (long long)t, (long long)(t - killed2), accounted(&l, 2, t));
  for (size_t r = 0; r < l.n; r++)
    by_leader += node_of(l.items[r].node_uuid) == 2 &&
                 strcmp(l.items[r].status, "missed") == 0 &&
                 strstr(l.items[r].output, "written by the leader") != NULL;
  ASSERT_MSG(by_leader == 1, "%d missed rows by the leader for node2",
             by_leader);
  cx_run_list_free(&l);
  cx_svc_proc_stop(&B.admin, 10000, err);
  cx_store_close(B.store);
  cx_svc_mariadb_destroy(&B.db);
  cx_svc_etcd_destroy(&B.etcd);
}
