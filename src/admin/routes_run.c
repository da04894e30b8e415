/*
 * GET /job/run?id=RUN_ID (role viewer): one run of the run log with every
 * attempt it made. The run is the /job/log row; attempt_list holds one
 * entry per attempt, in order: {attempt, start_time, end_time (unix ms),
 * status, exit_code, output} (output capped by node.output_limit like the
 * run's). A run that never retried lists its one attempt (the run row
 * itself); a run still in its first attempt lists none yet.
 * Errors: 400/1001 bad id, 404/1201 no such run, 503/1302 store down.
 */
#include <string.h>

#include "admin/admin-int.h"
#include "store/store.h"

static json_t *attempt_json(const struct cx_run_attempt *t)
{
  json_t *out = cx__admin_json_bytes(t->output, t->output_len);
  if (out == NULL)
    return NULL;
  return json_pack(
      "{s:i, s:I, s:I, s:s, s:i, s:o}", "attempt", t->attempt, "start_time",
      (json_int_t)t->start_time, "end_time", (json_int_t)t->end_time, "status",
      t->status ? t->status : "", "exit_code", t->exit_code, "output", out);
}

static void h_job_run(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  char err[CX_ERR_LEN] = "";
  const char *s = cx_http_req_query(req, "id");
  struct cx_run_attempt *att = NULL;
  struct cx_run r;
  size_t n = 0;
  int64_t id;
  struct cx__admin_who who;

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, &who) != 0)
    return;
  if (s == NULL || cx_parse_int64(s, 1, INT64_MAX, &id) != 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "id",
                        "id: required, a positive integer (a run id)");
    return;
  }
  memset(&r, 0, sizeof r);
  int rc = cx_store_run_find(a->store, id, &r, err);
  if (rc == 0)
    rc = cx_store_run_attempt_list(a->store, id, &att, &n, err);
  if (rc != 0) {
    cx_run_clear(&r);
    cx__admin_reply_backend_error(req, rc, "run", err);
    return;
  }
  json_t *o = cx__admin_run_json(&r, who.role < CX_ROLE_OPERATOR);
  json_t *list = json_array();
  for (size_t i = 0; o && list && i < n; i++) {
    json_t *e = attempt_json(&att[i]);
    if (e == NULL || json_array_append_new(list, e) != 0) {
      json_decref(list);
      list = NULL;
    }
  }
  if (o == NULL || list == NULL ||
      json_object_set_new(o, "attempt_list", list) != 0) {
    json_decref(o);
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
  } else {
    cx_http_reply_ok(req, o);
  }
  cx_run_attempts_free(att, n);
  cx_run_clear(&r);
}

int cx__admin_routes_runs(struct cx_admin *a)
{
  static const struct cx__admin_route routes[] = {
      {"GET", "/job/run", h_job_run},
  };
  return cx__admin_register(a, routes, CX_ARRAY_LEN(routes));
}
