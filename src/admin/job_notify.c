/*
 * admin: the checks /job/add makes of a job's alert fields (issue 14), so
 * that a job cannot promise alerts that will go nowhere:
 *
 *   - every id in notify_to_array is a user (else 400/1001, field
 *     notify_to_array, naming the ids);
 *   - with notify_status 1, the channel of notify_type is configured in
 *     the store's settings (else 400/1001, field notify_type);
 *   - a recipient without the address that channel needs is accepted, but
 *     named in the reply's data.warnings (and logged when an alert skips
 *     them, alerts.c).
 */
#include <stdio.h>
#include <string.h>

#include "admin/admin-int.h"
#include "admin/alerts.h"
#include "job/job.h"
#include "notify/notify.h"

/* The users of ids: unknown ids appended to missing (a text), users
 * without an address for type (when alerting) to warn. */
static int check_users(struct cx_admin *a, const json_t *ids, int type,
                       struct cx_buf *missing, json_t *warn, char *err)
{
  size_t i;
  json_t *v;
  json_array_foreach(ids, i, v)
  {
    struct cx_user u = {0};
    int64_t id = json_integer_value(v);
    int rc = cx_store_user_find(a->store, id, &u, err);
    if (rc == CX_ENOTFOUND) {
      cx_buf_printf(missing, "%s%lld", missing->len ? ", " : "", (long long)id);
      continue;
    }
    if (rc != 0)
      return rc;
    char addr[300], w[300];
    if (type != 0 && !cx__alerts_address(&u, type, addr, sizeof addr)) {
      snprintf(w, sizeof w,
               "notify_to_array: user %lld (%.64s) has no %s: alerts will "
               "not reach them",
               (long long)id, u.username, cx__alerts_address_name(type));
      json_array_append_new(warn, json_string(w));
    }
    cx_user_clear(&u);
  }
  return 0;
}

int cx__alerts_job_check(struct cx_admin *a, struct cx_http_req *req,
                         const struct cx_job *j, json_t **warnings)
{
  char err[CX_ERR_LEN] = "";
  struct cx_buf missing = {0};
  json_t *ids =
      json_loads(j->notify_to_array ? j->notify_to_array : "[]", 0, NULL);
  json_t *doc = NULL, *warn = json_array();
  int alerting = j->notify_status == 1, rc = 0;
  *warnings = NULL;
  if (warn == NULL || (ids != NULL && !json_is_array(ids))) {
    rc = -1;
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    goto out;
  }
  if (alerting && (rc = cx__nset_load(a, &doc, err)) != 0)
    goto backend;
  if (alerting && !cx__nset_configured(doc, j->notify_type)) {
    rc = -1;
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "notify_type",
                        "notify_type %d: that channel is not configured "
                        "(GET/POST /notify/settings)",
                        j->notify_type);
    goto out;
  }
  rc = check_users(a, ids, alerting ? j->notify_type : 0, &missing, warn, err);
  if (rc != 0)
    goto backend;
  cx_buf_puts(&missing, "");
  if (missing.len > 0) {
    rc = -1;
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "notify_to_array",
                        "notify_to_array: not users: %.900s", missing.data);
    goto out;
  }
  *warnings = warn;
  warn = NULL;
  goto out;
backend:
  cx__admin_reply_backend_error(req, rc, "users or settings", err);
  rc = -1;
out:
  cx_buf_free(&missing);
  json_decref(warn);
  json_decref(doc);
  json_decref(ids);
  return rc;
}
