/*
 * The e2e cases (cases.inc) on one real `cronix standalone` process.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "util/util.h"

#define E2E_ENV E2E_STANDALONE
#define E2E_NAME standalone
#include "cases.inc"

/* ---- every fire accounted for (issue 12) --------------------------------- */

/* A standalone stopped (SIGSTOP) for 5 s, and one shut down (SIGTERM) for
 * 5 s then started again: every second of both gaps is in the run log —
 * run late, or recorded missed — once. */
TEST_TIMEOUT(e2e_standalone_stopped_5s_every_second_of_the_gap_in_the_log, 120)
{
  char err[CX_ERR_LEN] = "";
  e2e_up(E2E_STANDALONE);
  int64_t id =
      e2e_job_put(0, "gap", "* * * * * *", 1, "true", "{\"misfire\":\"skip\"}");
  json_t *l = e2e_wait_runs(id, 2, 20, "the first runs");
  int64_t from = INT64_MAX;
  size_t i;
  json_t *r;
  json_array_foreach(l, i, r)
  {
    int64_t s = e2e_int(r, "scheduled_at");
    if (s < from)
      from = s;
  }
  json_decref(l);

  CHECK(cx_svc_proc_signal(&E.main, SIGSTOP, err) == 0, "%s", err);
  cx_sleep_us(5 * 1000000);
  CHECK(cx_svc_proc_signal(&E.main, SIGCONT, err) == 0, "%s", err);
  int64_t cont_s = cx_wall_s();
  long missed = e2e_each_second_once(id, from, cont_s);
  fprintf(stderr, "SIGSTOP 5 s: %lld s checked, %ld missed\n",
          (long long)(cont_s - from + 1), missed);

  CHECK(cx_svc_proc_stop(&E.main, 20000, err) == 0, "%s", err);
  int64_t down_s = cx_wall_s();
  cx_sleep_us(5 * 1000000);
  CHECK(cx_svc_proc_start(&E.main, err) == 0, "%s", err);
  int64_t up_s = cx_wall_s();
  json_t *d = NULL;
  for (int w = 0; w < 200 && d == NULL; w++) {
    d = e2e_api_try("/node/search", "{}");
    if (d == NULL)
      cx_sleep_us(100000);
  }
  CHECK(d != NULL, "the API is not back");
  json_decref(d);
  missed = e2e_each_second_once(id, from, up_s);
  fprintf(stderr, "down 5 s: %lld s checked, %ld missed\n",
          (long long)(up_s - from + 1), missed);
  /* at least the seconds it was down, as one range row */
  CHECK(missed >= up_s - down_s - 1, "%ld missed, down %lld s", missed,
        (long long)(up_s - down_s));
  e2e_down();
}

/* The whole file (small), or NULL. Caller frees. */
static char *slurp(const char *path)
{
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return NULL;
  char *buf = calloc(1, 65536);
  if (buf != NULL && fread(buf, 1, 65535, f) == 0 && ferror(f)) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  return buf;
}

/* Through the API, on `cronix standalone` as root with node.run_as: a job
 * runs unprivileged and cannot read the first admin's credentials in the
 * data directory, nor change them. */
TEST_TIMEOUT(e2e_standalone_cmd_job_runs_unprivileged, 60)
{
  static const char *const sets[] = {"node.run_as=nobody", "node.workdir=/",
                                     NULL};
  char cmd[4 * CX_SVC_PATH_LEN + 256], path[CX_SVC_PATH_LEN + 32];
  if (geteuid() != 0)
    cx_test_skip("needs root (the node switches users only as root)");
  e2e_up_with(E2E_STANDALONE, sets);
  snprintf(path, sizeof path, "%s/initial-admin.txt", E.main_dir);
  char *before = slurp(path);
  CHECK(before != NULL, "cannot read %s", path);
  snprintf(cmd, sizeof cmd,
           "id -u; cat %s; echo x >> %s; sqlite3 %s/cronix.db "
           "\"update cronix_user set role='admin'\"; exit 0",
           path, path, E.main_dir);
  int64_t id = e2e_job_put(0, "whoami", NEVER, 1, cmd, NULL);
  e2e_job_action("once", id);
  json_t *r = e2e_wait_run(id, "success", 20, "unprivileged");
  const char *out = e2e_str(r, "output");
  CHECK(strncmp(out, "65534\n", 6) == 0, "id -u: %s", out);
  CHECK(strstr(out, "Permission denied") != NULL, "no refusal: %s", out);
  CHECK(strstr(out, E.tok) == NULL, "the admin token leaked: %s", out);
  json_decref(r);
  char *after = slurp(path);
  CHECK(after != NULL && strcmp(before, after) == 0,
        "initial-admin.txt changed");
  free(before);
  free(after);
  e2e_down();
}

/* ---- placement (issue 18) ------------------------------------------------ */

/* A broadcast job on a standalone runs on its one node, every fire once, as
 * shard 0 of 1; /job/find lists that node. */
TEST_TIMEOUT(e2e_standalone_broadcast_job_runs_as_shard_0_of_1, 60)
{
  static const char *const sets[] = {"system.cmd_auto_allocation=true", NULL};
  e2e_up_with(E2E_STANDALONE, sets);
  json_t *d = e2e_api("/job/add",
                      "{\"name\":\"everywhere\",\"type\":1,\"spec\":\"* * * * "
                      "* *\",\"timezone\":\"UTC\",\"allocation\":3,"
                      "\"command\":\"echo "
                      "$CRONIX_SHARD_INDEX/$CRONIX_SHARD_TOTAL\"}");
  int64_t id = e2e_int(d, "id");
  json_decref(d);
  json_t *runs = e2e_wait_runs(id, 3, 20, "broadcast runs");
  int64_t from = INT64_MAX, to = 0;
  for (size_t i = 0; i < json_array_size(runs); i++) {
    json_t *r = json_array_get(runs, i);
    if (strcmp(e2e_str(r, "status"), "success") != 0)
      continue;
    CHECK(strcmp(e2e_str(r, "output"), "0/1\n") == 0, "shard: %s",
          e2e_str(r, "output"));
    int64_t s = e2e_int(r, "scheduled_at");
    from = s < from ? s : from;
    to = s > to ? s : to;
  }
  json_decref(runs);
  CHECK(to > from, "fewer than two successful fires");
  e2e_each_second_once(id, from, to);
  char path[64];
  snprintf(path, sizeof path, "/job/find?id=%lld", (long long)id);
  d = e2e_api(path, NULL);
  CHECK(strcmp(e2e_str(d, "node_state"), "broadcast") == 0, "node_state %s",
        e2e_str(d, "node_state"));
  CHECK(json_array_size(json_object_get(d, "nodes")) == 1, "nodes: %zu",
        json_array_size(json_object_get(d, "nodes")));
  json_decref(d);
  e2e_down();
}
