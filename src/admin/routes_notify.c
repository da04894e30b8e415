/*
 * POST /notify/test {notify_type, notify_to_array} (role admin): sends one
 * test message through the configured channel to the given users, now and
 * without retries, and reports the server's answer, so an operator can
 * check the notification settings before a real failure needs them. It
 * uses the settings in the store and the senders the leader's alerts use,
 * and is recorded in the alert log (event "test").
 *
 * POST /notify/log (role operator): every alert with its event, channel,
 * recipients, result, attempts and the server's answer, newest first.
 *
 * GET /notify/settings, POST /notify/settings (role admin): the channel
 * settings in the store (notify_settings.c); POST changes only what its
 * body names and replies with the result; secrets read "set"/"unset".
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin-int.h"
#include "admin/alerts.h"
#include "notify/notify.h"

#define MAX_TO CX_NOTIFY_MAX_RCPT
#define ADDR_LEN 300

/* The test goes into the alert log like any alert (POST /notify/log). */
static void log_test(struct cx_admin *a, int type, const char *const *to,
                     size_t nto, int rc, const char *answer, const char *err)
{
  static atomic_uint seq;
  char ukey[64], lerr[CX_ERR_LEN] = "";
  json_t *rcpt = json_array();
  for (size_t i = 0; rcpt != NULL && i < nto; i++)
    json_array_append_new(rcpt, json_string(to[i]));
  char *r = rcpt ? json_dumps(rcpt, JSON_COMPACT) : NULL;
  json_decref(rcpt);
  int64_t now = cx_wall_ms();
  snprintf(ukey, sizeof ukey, "test:%lld:%d:%u", (long long)now, (int)getpid(),
           atomic_fetch_add(&seq, 1));
  struct cx_alert x = {.ukey = ukey,
                       .event = "test",
                       .channel = type,
                       .recipients = r,
                       .state = rc == 0 ? "sent" : "failed",
                       .attempts = 1,
                       .answer = (char *)(answer[0] ? answer : err),
                       .done_at = now};
  if (cx_store_alert_add(a->store, &x, lerr) != 0)
    CX_LOG(CX_LOG_WARN, "admin", "notify test: not logged: %s", lerr);
  free(r);
}

static void notify_test(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"notify_type", "notify_to_array", NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  int64_t type = 0;
  char err[CX_ERR_LEN] = "", answer[CX_NOTIFY_ANSWER_LEN] = "";
  const char *to[MAX_TO];
  char(*addr)[ADDR_LEN] = NULL; /* to[k] points into it */
  size_t nto = 0;

  if (cx__admin_auth(a, req, CX_ROLE_ADMIN, NULL) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0)
    return;
  if (cx__admin_json_int(req, body, "notify_type", 1, CX_NOTIFY_TYPE_MAX,
                         &type) <= 0) {
    if (type == 0 && json_object_get(body, "notify_type") == NULL)
      cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "notify_type",
                          "notify_type: required, 1 (email), 2 (Feishu), 3 "
                          "(DingTalk), 4 (WeCom), 5 (Slack) or 6 (webhook)");
    return;
  }
  json_t *ids = json_object_get(body, "notify_to_array");
  if (!json_is_array(ids) || json_array_size(ids) == 0 ||
      json_array_size(ids) > MAX_TO) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "notify_to_array",
                        "notify_to_array: 1..%d user ids", MAX_TO);
    return;
  }
  json_t *doc = NULL;
  struct cx_notify *n = NULL;
  int rc = cx__nset_load(a, &doc, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "notification settings", err);
    return;
  }
  if (!cx__nset_configured(doc, (int)type)) {
    json_decref(doc);
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "notify_type",
                        "notify_type %d: its channel is not configured: set "
                        "it with POST /notify/settings (the first default is "
                        "[notify.*] in the config, e.g. "
                        "notify.email.smtp_url)",
                        (int)type);
    return;
  }
  rc = cx__nset_notify(a->cfg, doc, &n, err);
  json_decref(doc);
  if (rc != 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "notify_type",
                        "notification settings unusable: %s", err);
    return;
  }
  json_t *skipped = json_array();
  if ((addr = cx_calloc(MAX_TO, sizeof *addr)) == NULL) {
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    goto out;
  }
  size_t i;
  json_t *v;
  json_array_foreach(ids, i, v)
  {
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
      cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "notify_to_array",
                          "notify_to_array: entries must be positive "
                          "integers");
      goto out;
    }
    struct cx_user u = {0};
    rc = cx_store_user_find(a->store, json_integer_value(v), &u, err);
    if (rc == CX_ENOTFOUND) {
      json_array_append_new(skipped, json_integer(json_integer_value(v)));
      continue;
    }
    if (rc != 0) {
      cx__admin_reply_backend_error(req, rc, "user", err);
      goto out;
    }
    if (cx__alerts_address(&u, (int)type, addr[nto], ADDR_LEN)) {
      to[nto] = addr[nto];
      nto++;
    } else {
      json_array_append_new(skipped, json_integer(u.id));
    }
    cx_user_clear(&u);
  }
  if (nto == 0 && type <= 2) { /* the robots post to their group anyway */
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "notify_to_array",
                        "none of these users has %s",
                        type == 1 ? "an email address" : "a feishu_id");
    goto out;
  }
  rc = cx_notify_send_test(n, (int)type, to, nto, answer, sizeof answer, err);
  log_test(a, (int)type, to, nto, rc, answer, err);
  cx__alerts_test_done(a, (int)type, rc == 0);
  json_t *data = json_pack("{s:s, s:I, s:O}", "answer", answer, "sent_to",
                           (json_int_t)nto, "skipped", skipped);
  if (rc == 0) {
    cx_http_reply_ok(req, data);
  } else {
    /* The channel refused or did not answer: nothing of ours is wrong, so
     * this is the "service unavailable" of §4, with the server's words. */
    CX_LOG(CX_LOG_WARN, "admin", "notify test (type %d) failed: %s", (int)type,
           err);
    cx_http_reply_error_data(
        req, rc == CX_EPARSE ? CX_HTTP_BAD_INPUT : CX_HTTP_UNAVAIL,
        rc == CX_EPARSE ? "notify_type" : NULL, data,
        "test message not delivered: %s", err);
  }
out:
  cx_notify_destroy(n, 0);
  json_decref(skipped);
  cx_free(addr);
}

/* Checks the admin role and loads the settings; -1 after replying. */
static int settings_begin(struct cx_admin *a, struct cx_http_req *req,
                          struct cx__admin_who *who, json_t **doc)
{
  char err[CX_ERR_LEN] = "";
  if (cx__admin_auth(a, req, CX_ROLE_ADMIN, who) != 0)
    return -1;
  int rc = cx__nset_load(a, doc, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "notification settings", err);
    return -1;
  }
  return 0;
}

static void settings_get(struct cx_http_req *req, void *ctx)
{
  json_t *doc = NULL;
  if (settings_begin(ctx, req, NULL, &doc) != 0)
    return;
  cx_http_reply_ok(req, cx__nset_public(doc));
  json_decref(doc);
}

/* The settings as an audit row holds them: secrets as GET shows them
 * (audit.c then hides every secret-named member) and the SMTP URL's
 * password masked, since its name does not say it holds one. */
static json_t *settings_audit(const json_t *doc)
{
  json_t *o = cx__nset_public(doc);
  json_t *email = json_object_get(o, "email");
  const char *url = json_string_value(json_object_get(email, "smtp_url"));
  if (url != NULL) {
    char masked[2048 + 4];
    cx_url_redact(url, 0, masked, sizeof masked);
    if (json_object_set_new(email, "smtp_url", json_string(masked)) != 0) {
      json_decref(o);
      o = NULL;
    }
  }
  return o;
}

/* The change and its audit row ("notify.settings") are one store
 * transaction, like every other change through the API. */
static void settings_post(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  char err[CX_ERR_LEN] = "", field[CX_ADMIN_FIELD_LEN] = "";
  struct cx__admin_who who;
  json_t *doc = NULL, *before = NULL, *after = NULL;
  if (settings_begin(a, req, &who, &doc) != 0)
    return;
  before = settings_audit(doc);
  int rc = cx__nset_patch(a->cfg, doc, cx_http_req_json(req), field, err);
  if (rc != 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, field[0] ? field : NULL, "%s",
                        err);
    goto out;
  }
  after = settings_audit(doc);
  if (before == NULL || after == NULL)
    rc = -ENOMEM;
  if (rc == 0 && (rc = cx_store_tx_begin(a->store, err)) == 0) {
    struct cx__actor actor = cx__admin_actor(req, &who);
    rc = cx__nset_save(a, doc, err);
    rc = cx__admin_audit_commit(a, rc, &actor, "notify.settings", NULL, before,
                                after, err);
  }
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "notification settings", err);
  } else {
    cx__alerts_settings_changed(a);
    CX_LOG(CX_LOG_INFO, "admin", "notification settings changed");
    cx_http_reply_ok(req, cx__nset_public(doc));
  }
out:
  json_decref(before);
  json_decref(after);
  json_decref(doc);
}

/* POST /notify/log {page, page_size, event} (role operator): the alert
 * log, newest first. */
static void notify_log(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"page", "page_size", "event", NULL};
  static const char *const channels[] = {"none",  "email", "feishu", "dingtalk",
                                         "wecom", "slack", "webhook"};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  const char *event = NULL;
  char err[CX_ERR_LEN] = "";
  int page = 1, size = 20;
  struct cx_alert_list l = {0};
  if (cx__admin_auth(a, req, CX_ROLE_OPERATOR, NULL) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0 ||
      cx__admin_paging(req, body, &page, &size) != 0 ||
      cx__admin_json_str(req, body, "event", 16, &event) < 0)
    return;
  int rc = cx_store_alert_search(a->store, event, page, size, &l, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "alert log", err);
    return;
  }
  json_t *list = json_array();
  for (size_t i = 0; list != NULL && i < l.n; i++) {
    const struct cx_alert *x = &l.items[i];
    json_t *to = json_loads(x->recipients ? x->recipients : "[]", 0, NULL);
    int ch =
        x->channel >= 0 && x->channel <= CX_NOTIFY_TYPE_MAX ? x->channel : 0;
    json_array_append_new(
        list,
        json_pack("{s:I, s:s, s:I, s:I, s:s, s:i, s:s, s:o, s:s, s:i, s:s, "
                  "s:I, s:I, s:I}",
                  "id", (json_int_t)x->id, "event", x->event, "run_id",
                  (json_int_t)x->run_id, "job_id", (json_int_t)x->job_id,
                  "node_uuid", x->node_uuid, "channel", x->channel,
                  "channel_name", channels[ch], "recipients",
                  json_is_array(to) ? to : json_array(), "result", x->state,
                  "attempts", x->attempts, "answer", x->answer, "created",
                  (json_int_t)x->created, "next_at", (json_int_t)x->next_at,
                  "done_at", (json_int_t)x->done_at));
    if (!json_is_array(to))
      json_decref(to);
  }
  int64_t total = l.total;
  cx_alert_list_free(&l);
  if (list == NULL) {
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    return;
  }
  cx__admin_reply_page(req, list, total, page, size);
}

int cx__admin_routes_notify(struct cx_admin *a)
{
  static const struct cx__admin_route routes[] = {
      {"POST", "/notify/test", notify_test},
      {"GET", "/notify/settings", settings_get},
      {"POST", "/notify/settings", settings_post},
      {"POST", "/notify/log", notify_log},
  };
  return cx__admin_register(a, routes, CX_ARRAY_LEN(routes));
}
