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
