/*
 * The e2e cases (cases.inc) on one real `cronix standalone` process.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "util/util.h"

#define E2E_ENV E2E_STANDALONE
#define E2E_NAME standalone
#include "cases.inc"

/* ---- every fire accounted for (issue 12) --------------------------------- */

/* Rows of the run list l that account for fire t: its own, or a missed
 * row whose range holds it. */
static int rows_for(const json_t *l, int64_t t)
{
  size_t i;
  const json_t *r;
  int k = 0;
  json_array_foreach(l, i, r)
  {
    const json_t *sa = json_object_get(r, "scheduled_at");
    if (!json_is_integer(sa))
      continue;
    int64_t first = json_integer_value(sa);
    if (first == t)
      k++;
    else if (strcmp(e2e_str(r, "status"), "missed") == 0 && first < t &&
             e2e_int(r, "missed_last") >= t)
      k++;
  }
  return k;
}

/* Checks that each second in [from, to] has exactly one row of job id
 * (a `* * * * * *` job); returns how many of them are missed. Polls for
 * up to 20 s until each has at least one (the node writes the gap's rows
 * on its way up). */
static long each_second_once(int64_t id, int64_t from, int64_t to)
{
  json_t *l = NULL;
  int64_t t = from;
  for (int w = 0; w < 200; w++) {
    json_decref(l);
    l = e2e_runs(id, 500);
    for (t = from; t <= to && rows_for(l, t) > 0; t++)
      ;
    if (t > to)
      break;
    cx_sleep_us(100000);
  }
  for (t = from; t <= to; t++) {
    int k = rows_for(l, t);
    CHECK(k == 1, "fire %lld (%+lld s): %d rows", (long long)t,
          (long long)(t - from), k);
  }
  long missed = 0;
  size_t i;
  json_t *r;
  json_array_foreach(l, i, r)
  {
    if (strcmp(e2e_str(r, "status"), "missed") != 0)
      continue;
    int64_t first = e2e_int(r, "scheduled_at"),
            last = e2e_int(r, "missed_last");
    CHECK(e2e_int(r, "missed_count") == last - first + 1, "missed_count");
    CHECK(strstr(e2e_str(r, "output"), "missed: ") != NULL, "reason");
    CHECK(e2e_int(r, "success") == 0, "success");
    for (int64_t s = first; s <= last; s++)
      missed += s >= from && s <= to;
  }
  json_decref(l);
  return missed;
}

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
  long missed = each_second_once(id, from, cont_s);
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
  missed = each_second_once(id, from, up_s);
  fprintf(stderr, "down 5 s: %lld s checked, %ld missed\n",
          (long long)(up_s - from + 1), missed);
  /* at least the seconds it was down, as one range row */
  CHECK(missed >= up_s - down_s - 1, "%ld missed, down %lld s", missed,
        (long long)(up_s - down_s));
  e2e_down();
}
