/*
 * The e2e cases (cases.inc) on real `cronix admin` + `cronix node`
 * processes with MariaDB and etcd, and the failures only a cluster has:
 * MariaDB down for 10 s, the node killed with SIGKILL and restarted.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "util/util.h"

#define E2E_ENV E2E_CLUSTER
#define E2E_NAME cluster
#include "cases.inc"

/* Checks the runs of job id: no scheduled_at twice, and every second
 * from the first to the last present (the job fires each second). what
 * names the case. Returns the number of runs. */
static int check_every_second_once(int64_t id, const char *what, int64_t *first,
                                   int64_t *last)
{
  json_t *l = e2e_runs(id, 500);
  size_t n = json_array_size(l), i;
  int64_t lo = INT64_MAX, hi = 0;
  json_t *r;
  CHECK(n > 0 && n < 500, "%s: %zu runs", what, n);
  json_array_foreach(l, i, r)
  {
    int64_t sa = e2e_int(r, "scheduled_at");
    CHECK(sa > 0, "%s: run %lld without scheduled_at (trigger %s)", what,
          (long long)e2e_int(r, "id"), e2e_str(r, "trigger"));
    lo = sa < lo ? sa : lo;
    hi = sa > hi ? sa : hi;
  }
  CHECK(hi - lo < 1000, "%s: span %lld s", what, (long long)(hi - lo));
  char seen[1000] = {0};
  json_array_foreach(l, i, r)
  {
    int64_t sa = e2e_int(r, "scheduled_at");
    CHECK(!seen[sa - lo], "%s: scheduled_at %lld recorded twice", what,
          (long long)sa);
    seen[sa - lo] = 1;
  }
  for (int64_t t = lo; t <= hi; t++)
    CHECK(seen[t - lo], "%s: no run for the fire at %lld (runs %lld..%lld)",
          what, (long long)t, (long long)lo, (long long)hi);
  json_decref(l);
  *first = lo;
  *last = hi;
  return (int)n;
}

/* No two rows of job id have the same scheduled_at (what names the case). */
static void no_fire_twice(int64_t id, const char *what)
{
  json_t *l = e2e_runs(id, 500);
  size_t i, k;
  json_t *a, *b;
  json_array_foreach(l, i, a) json_array_foreach(l, k, b)
  {
    if (k <= i || json_is_null(json_object_get(a, "scheduled_at")))
      continue;
    CHECK(e2e_int(a, "scheduled_at") != e2e_int(b, "scheduled_at"),
          "%s: scheduled_at %lld recorded twice", what,
          (long long)e2e_int(a, "scheduled_at"));
  }
  json_decref(l);
}

CASE(mariadb_down_10s_every_fire_recorded_once, 150)
{
  char err[CX_ERR_LEN] = "";
  int64_t lo, hi;
  e2e_up(E2E_ENV);
  int64_t id = e2e_job_put(0, "tick", "* * * * * *", 1, "echo tick", NULL);
  json_decref(e2e_wait_runs(id, 2, 20, "mariadb: before the outage"));
  int64_t down_at = cx_wall_s();
  CHECK(cx_svc_mariadb_stop(&E.db, err) == 0, "mariadb stop: %s", err);
  cx_sleep_us(10 * 1000000);
  CHECK(cx_svc_mariadb_restart(&E.db, err) == 0, "mariadb restart: %s", err);
  int64_t up_at = cx_wall_s();
  /* wait until the fires of the outage are in the log (the spool flushed)
   * and a few after it */
  int64_t until = cx_wall_ms() + 60000;
  int complete = 0;
  while (!complete && cx_wall_ms() < until) {
    char body[96];
    snprintf(body, sizeof body, "{\"job_id\":%lld,\"page_size\":500}",
             (long long)id);
    json_t *d = e2e_api_try("/job/log", body);
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(json_object_get(d, "list"), i, r)
    {
      int64_t sa = e2e_int(r, "scheduled_at");
      n += sa >= down_at && sa <= up_at + 2;
    }
    json_decref(d);
    complete = (int64_t)n >= up_at + 2 - down_at + 1;
    if (!complete)
      cx_sleep_us(500000);
  }
  e2e_job_action("pause", id);
  cx_sleep_us(2500000); /* the last fires finish and are recorded */
  check_every_second_once(id, "mariadb down 10 s", &lo, &hi);
  CHECK(lo < down_at && hi > up_at + 1,
        "mariadb down 10 s: runs cover %lld..%lld, the outage was "
        "%lld..%lld",
        (long long)lo, (long long)hi, (long long)down_at, (long long)up_at);
  e2e_down();
}

CASE(node_sigkill_restart_same_uuid_no_duplicate_fires, 120)
{
  char err[CX_ERR_LEN] = "", uuid[64];
  e2e_up(E2E_ENV);
  snprintf(uuid, sizeof uuid, "%s", E.node_uuid);
  int64_t id = e2e_job_put(0, "tick", "* * * * * *", 1, "echo tick", NULL);
  json_t *l0 = e2e_wait_runs(id, 2, 20, "sigkill: before the kill");
  int64_t from = INT64_MAX;
  size_t i0;
  json_t *r0;
  json_array_foreach(l0, i0, r0) if (e2e_int(r0, "scheduled_at") < from) from =
      e2e_int(r0, "scheduled_at");
  json_decref(l0);
  CHECK(cx_svc_proc_signal(&E.node, SIGKILL, err) == 0, "SIGKILL: %s", err);
  while (cx_svc_proc_alive(&E.node))
    cx_sleep_us(20000);
  cx_sleep_us(1000000);
  int64_t restart_at = cx_wall_s();
  e2e_node_start();

  /* the same node comes back, alone, alive */
  int64_t until = cx_wall_ms() + 30000;
  int ok = 0;
  while (!ok && cx_wall_ms() < until) {
    json_t *d = e2e_api("/node/search", "{}");
    json_t *l = json_object_get(d, "list");
    json_t *n0 = json_array_get(l, 0);
    ok = json_array_size(l) == 1 && strcmp(e2e_str(n0, "uuid"), uuid) == 0 &&
         json_is_true(json_object_get(n0, "alive")) &&
         e2e_int(n0, "pid") == E.node.pid;
    json_decref(d);
    if (!ok)
      cx_sleep_us(200000);
  }
  CHECK(ok, "sigkill: node %s not back alone and alive (pid %d) in 30 s", uuid,
        (int)E.node.pid);

  /* the job keeps running on it */
  until = cx_wall_ms() + 30000;
  int later = 0;
  while (later < 3 && cx_wall_ms() < until) {
    json_t *l = e2e_runs(id, 100);
    size_t i;
    json_t *r;
    later = 0;
    json_array_foreach(l, i, r) later +=
        e2e_int(r, "scheduled_at") > restart_at + 1 &&
        e2e_int(r, "end_time") > 0 &&
        strcmp(e2e_str(r, "node_uuid"), uuid) == 0;
    json_decref(l);
    cx_sleep_us(200000);
  }
  CHECK(later >= 3, "sigkill: %d runs after the restart in 30 s", later);
  e2e_job_action("pause", id);
  cx_sleep_us(2500000);
  /* every fire up to the restart has exactly one entry: a run, or missed
   * (the seconds no node ran, before the one misfire run_once runs: the
   * restarted node writes them; with a 1 s outage there may be none) */
  e2e_each_second_once(id, from, restart_at);
  no_fire_twice(id, "sigkill");
  e2e_down();
}

/* The node holding a manual (pinned) every-second job is killed and stays
 * dead: its job does not fail over, so the leader writes the gap as
 * missed range rows (at the death, and at each reconciliation while the
 * node stays dead: every 60 s); the node, back, writes the rest and no
 * fire has two rows. */
CASE(dead_node_pinned_job_gap_written_by_leader_once, 200)
{
  char err[CX_ERR_LEN] = "", extra[200];
  e2e_up(E2E_ENV);
  snprintf(extra, sizeof extra, "{\"allocation\":1,\"run_on\":\"%s\"}",
           E.node_uuid);
  int64_t id = e2e_job_put(0, "pinned", "* * * * * *", 1, "echo tick", extra);
  json_t *l0 = e2e_wait_runs(id, 2, 20, "dead node: before the kill");
  int64_t from = INT64_MAX;
  size_t i0;
  json_t *r0;
  json_array_foreach(l0, i0, r0) if (e2e_int(r0, "scheduled_at") < from) from =
      e2e_int(r0, "scheduled_at");
  json_decref(l0);
  CHECK(cx_svc_proc_signal(&E.node, SIGKILL, err) == 0, "SIGKILL: %s", err);
  while (cx_svc_proc_alive(&E.node))
    cx_sleep_us(20000);
  int64_t kill_at = cx_wall_s();

  /* the leader's rows reach well past the kill within a reconciliation */
  int64_t until = cx_wall_ms() + 90000, reach = 0;
  int leader_rows = 0;
  while (reach < kill_at + 10 && cx_wall_ms() < until) {
    json_t *l = e2e_runs(id, 500);
    size_t i;
    json_t *r;
    leader_rows = 0;
    json_array_foreach(l, i, r)
    {
      if (strcmp(e2e_str(r, "status"), "missed") != 0 ||
          strstr(e2e_str(r, "output"), "written by the leader") == NULL)
        continue;
      leader_rows++;
      CHECK(strcmp(e2e_str(r, "node_uuid"), E.node_uuid) == 0,
            "dead node: leader's row names node %s", e2e_str(r, "node_uuid"));
      if (e2e_int(r, "missed_last") > reach)
        reach = e2e_int(r, "missed_last");
    }
    json_decref(l);
    cx_sleep_us(500000);
  }
  CHECK(reach >= kill_at + 10,
        "dead node: the leader's %d missed row(s) reach %lld, the node died "
        "at %lld",
        leader_rows, (long long)reach, (long long)kill_at);
  CHECK(leader_rows <= 3, "dead node: %d leader rows for one gap", leader_rows);
  /* every second up to there has its one row while the node is dead */
  long missed = e2e_each_second_once(id, from, reach);
  CHECK(missed >= reach - kill_at, "dead node: %ld missed of %lld s", missed,
        (long long)(reach - kill_at));

  /* the node comes back: it writes the rest, nothing twice */
  int64_t restart_at = cx_wall_s();
  e2e_node_start();
  until = cx_wall_ms() + 30000;
  int later = 0;
  while (later < 3 && cx_wall_ms() < until) {
    json_t *l = e2e_runs(id, 100);
    size_t i;
    json_t *r;
    later = 0;
    json_array_foreach(l, i, r) later +=
        e2e_int(r, "scheduled_at") > restart_at + 1 &&
        strcmp(e2e_str(r, "status"), "success") == 0;
    json_decref(l);
    cx_sleep_us(200000);
  }
  CHECK(later >= 3, "dead node: %d runs after the restart in 30 s", later);
  e2e_job_action("pause", id);
  cx_sleep_us(2500000);
  e2e_each_second_once(id, from, restart_at);
  no_fire_twice(id, "dead node");
  e2e_down();
}
