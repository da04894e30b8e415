/*
 * admin: the audit log -- writing a row for every change (SPEC §4's writes,
 * logins, settings) with secrets hidden, and POST /audit/search (admins).
 *
 * A row is written in the same store transaction as the change it records
 * (cx_store_tx_begin; admin-int.h shows the pattern), so there is never a
 * change without its row, nor a row for a change that did not happen. The
 * job protocol (jobs.c) does the same for its store write and deletes the
 * row again when a compensation undoes the change.
 *
 * Rows store before/after in their viewer form: whoever may read the audit
 * log (admins) sees secrets elsewhere anyway, but the log outlives the
 * secrets' rotation and gets copied around, so it never holds them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin-int.h"
#include "job/job.h"

struct cx__actor cx__admin_actor(struct cx_http_req *req,
                                 const struct cx__admin_who *who)
{
  struct cx__actor w = {0, "", cx_http_req_remote(req)};
  if (who != NULL) {
    w.user_id = who->user_id;
    w.username = who->username;
  }
  return w;
}

/* A member name that holds a secret (ASCII case-insensitive). */
static int secret_name(const char *k)
{
  static const char *const words[] = {"password", "secret", "token", "webhook",
                                      "authorization"};
  char low[64];
  size_t n = strlen(k);
  if (n >= sizeof low)
    n = sizeof low - 1;
  for (size_t i = 0; i < n; i++)
    low[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
  low[n] = '\0';
  for (size_t i = 0; i < CX_ARRAY_LEN(words); i++)
    if (strstr(low, words[i]) != NULL)
      return 1;
  return 0;
}

/* Hides secrets in o (a deep copy of the caller's value). */
static int redact(json_t *o, int depth)
{
  const char *k;
  json_t *v;
  if (depth > 16)
    return 0;
  if (json_is_array(o)) {
    size_t i;
    json_array_foreach(o, i, v)
    {
      if (redact(v, depth + 1) != 0)
        return -ENOMEM;
    }
    return 0;
  }
  if (!json_is_object(o))
    return 0;
  if (cx_job_redact_json(o) != 0)
    return -ENOMEM;
  json_object_foreach(o, k, v)
  {
    if (secret_name(k) && !(json_is_string(v) && json_string_length(v) == 0)) {
      if (json_object_set_new(o, k, json_string(CX_JOB_REDACTED)) != 0)
        return -ENOMEM;
    } else if (redact(v, depth + 1) != 0) {
      return -ENOMEM;
    }
  }
  return 0;
}

/* The stored text of before/after: "" for NULL. *out is cx_malloc'd. */
static int state_text(const json_t *v, char **out)
{
  *out = NULL;
  if (v == NULL)
    return 0;
  json_t *c = json_deep_copy(v);
  char *t = NULL;
  if (c != NULL && redact(c, 0) == 0)
    t = json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(c);
  if (t == NULL)
    return -ENOMEM;
  *out = cx_strdup(t);
  free(t); /* jansson's allocator */
  return *out ? 0 : -ENOMEM;
}

int cx__admin_audit(struct cx_admin *a, const struct cx__actor *who,
                    const char *kind, const char *target, const json_t *before,
                    const json_t *after, int64_t *id, char *err)
{
  struct cx_audit row = {0};
  char *b = NULL, *f = NULL;
  int rc = state_text(before, &b);
  if (rc == 0)
    rc = state_text(after, &f);
  if (rc == 0) {
    row.user_id = who->user_id;
    row.username = (char *)who->username;
    row.addr = (char *)who->addr;
    row.kind = (char *)kind;
    row.target = (char *)target;
    row.before = b;
    row.after = f;
    rc = cx_store_audit_add(a->store, &row, err);
  } else {
    cx_err_set(err, "audit: out of memory");
  }
  if (rc == 0 && id != NULL)
    *id = row.id;
  cx_free(b);
  cx_free(f);
  return rc;
}

int cx__admin_audit_req(struct cx_admin *a, struct cx_http_req *req,
                        const struct cx__admin_who *who, const char *kind,
                        const char *target, const json_t *before,
                        const json_t *after, char *err)
{
  struct cx__actor w = cx__admin_actor(req, who);
  return cx__admin_audit(a, &w, kind, target, before, after, NULL, err);
}

int cx__admin_audit_end(struct cx_admin *a, int rc, char *err)
{
  if (rc != 0) {
    cx_store_tx_end(a->store, 0, NULL);
    return rc;
  }
  return cx_store_tx_end(a->store, 1, err);
}

int cx__admin_audit_commit(struct cx_admin *a, int rc,
                           const struct cx__actor *who, const char *kind,
                           const char *target, const json_t *before,
                           const json_t *after, char *err)
{
  if (rc == 0)
    rc = cx__admin_audit(a, who, kind, target, before, after, NULL, err);
  return cx__admin_audit_end(a, rc, err);
}

json_t *cx__admin_audit_job(const struct cx_job *j)
{
  return j != NULL ? cx_job_to_json(j) : NULL;
}

/* ---- POST /audit/search ----------------------------------------------------
 */

static json_t *row_json(const struct cx_audit *r)
{
  json_t *o = json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:s}", "id",
                        (json_int_t)r->id, "at", (json_int_t)r->at, "user_id",
                        (json_int_t)r->user_id, "username", r->username, "addr",
                        r->addr, "kind", r->kind, "target", r->target);
  const char *names[] = {"before", "after"};
  const char *texts[] = {r->before, r->after};
  for (int i = 0; o != NULL && i < 2; i++) {
    json_t *v =
        texts[i][0] ? json_loads(texts[i], JSON_DECODE_ANY, NULL) : json_null();
    if (v == NULL) /* not ours: show the text */
      v = json_string(texts[i]);
    if (v == NULL || json_object_set_new(o, names[i], v) != 0) {
      json_decref(o);
      o = NULL;
    }
  }
  return o;
}

static void h_audit_search(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"page", "page_size", "username", "kind",
                                        "from", "to",        NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  char err[CX_ERR_LEN] = "";
  struct cx_audit_filter f;
  struct cx_audit_list l = {0};

  memset(&f, 0, sizeof f);
  if (cx__admin_auth(a, req, CX_ROLE_ADMIN, NULL) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0 ||
      cx__admin_paging(req, body, &f.page, &f.page_size) != 0 ||
      cx__admin_json_str(req, body, "username", 256, &f.username) < 0 ||
      cx__admin_json_str(req, body, "kind", 32, &f.kind) < 0 ||
      cx__admin_json_time_ms(req, body, "from", &f.from) != 0 ||
      cx__admin_json_time_ms(req, body, "to", &f.to) != 0)
    return;
  if (f.username != NULL && f.username[0] == '\0')
    f.username = NULL;
  if (f.kind != NULL && f.kind[0] == '\0')
    f.kind = NULL;
  int rc = cx_store_audit_search(a->store, &f, &l, err);
  if (rc == CX_EPARSE || rc == CX_ETOOBIG) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, NULL, "%s", err);
    return;
  }
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "audit log", err);
    return;
  }
  json_t *list = json_array();
  for (size_t i = 0; list != NULL && i < l.n; i++)
    if (json_array_append_new(list, row_json(&l.items[i])) != 0) {
      json_decref(list);
      list = NULL;
    }
  int64_t total = l.total;
  cx_audit_list_free(&l);
  if (list == NULL) {
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    return;
  }
  cx__admin_reply_page(req, list, total, f.page, f.page_size);
}

int cx__admin_routes_audit(struct cx_admin *a)
{
  static const struct cx__admin_route routes[] = {
      {"POST", "/audit/search", h_audit_search},
  };
  return cx__admin_register(a, routes, CX_ARRAY_LEN(routes));
}
