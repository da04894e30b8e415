/*
 * admin: the notification channel settings kept in the store (setting
 * "notify", a JSON object with one object per channel named like the
 * config sections: {"email": {...}, "feishu": {...}, "dingtalk", "wecom",
 * "slack", "webhook"}). See alerts.h.
 *
 * The config file's [notify.*] values are only the first default: the
 * first admin to start on an empty store writes them (setting_add, which
 * never overwrites), and from then on the store is the truth, edited with
 * POST /notify/settings. The document kept is always whole (every field
 * of the table below present), so a reader never guesses a default.
 * Secrets are write-only: the API shows them as "set" or "unset".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin-int.h"
#include "admin/alerts.h"
#include "notify/notify.h"

#define SETTING "notify"
#define VALUE_MAX 2048 /* bytes of one string setting */

enum fkind { F_STR, F_SECRET, F_BOOL, F_STARTTLS, F_HEADERS };

static const struct field {
  const char *ch, *name;
  enum fkind kind;
} fields[] = {
    {"email", "smtp_url", F_STR},      {"email", "from", F_STR},
    {"email", "username", F_STR},      {"email", "password", F_SECRET},
    {"email", "starttls", F_STARTTLS}, {"email", "tls_verify", F_BOOL},
    {"email", "ca_file", F_STR},       {"feishu", "webhook_url", F_STR},
    {"feishu", "secret", F_SECRET},    {"dingtalk", "webhook_url", F_STR},
    {"dingtalk", "secret", F_SECRET},  {"wecom", "webhook_url", F_STR},
    {"slack", "webhook_url", F_STR},   {"webhook", "url", F_STR},
    {"webhook", "secret", F_SECRET},   {"webhook", "headers", F_HEADERS},
};
/* The setting that turns each notify_type on. */
static const char *const on_field[][2] = {{NULL, NULL},
                                          {"email", "smtp_url"},
                                          {"feishu", "webhook_url"},
                                          {"dingtalk", "webhook_url"},
                                          {"wecom", "webhook_url"},
                                          {"slack", "webhook_url"},
                                          {"webhook", "url"}};

static const char *str(const json_t *doc, const char *ch, const char *name)
{
  const char *v =
      json_string_value(json_object_get(json_object_get(doc, ch), name));
  return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Sets doc[ch][name] = v (stolen), creating the channel object. */
static void put(json_t *doc, const char *ch, const char *name, json_t *v)
{
  json_t *o = json_object_get(doc, ch);
  if (!json_is_object(o)) {
    o = json_object();
    json_object_set_new(doc, ch, o);
  }
  json_object_set_new(o, name, v);
}

static json_t *default_of(const struct field *f)
{
  switch (f->kind) {
  case F_BOOL:
    return json_true();
  case F_STARTTLS:
    return json_string("try");
  case F_HEADERS:
    return json_object();
  default:
    return json_string("");
  }
}

/* Fills every absent field with its default. */
static void normalize(json_t *doc)
{
  if (!json_is_string(json_object_get(doc, "language")))
    json_object_set_new(doc, "language", json_string("en"));
  for (size_t i = 0; i < CX_ARRAY_LEN(fields); i++) {
    const struct field *f = &fields[i];
    if (json_object_get(json_object_get(doc, f->ch), f->name) == NULL)
      put(doc, f->ch, f->name, default_of(f));
  }
}

json_t *cx__nset_default(const struct cx_config *cfg)
{
  /* notify.language is not a config setting here (yet): "en" until set
   * through the API. */
  json_t *doc = json_pack(
      "{s:{s:s, s:s, s:s, s:s, s:s, s:b, s:s}, s:{s:s, s:s}}", "email",
      "smtp_url", cfg->email_smtp_url, "from", cfg->email_from, "username",
      cfg->email_username, "password", cfg->email_password, "starttls",
      cfg->email_starttls[0] ? cfg->email_starttls : "try", "tls_verify",
      cfg->email_tls_verify, "ca_file", cfg->email_ca_file, "feishu",
      "webhook_url", cfg->feishu_webhook_url, "secret", cfg->feishu_secret);
  if (doc != NULL)
    normalize(doc);
  return doc;
}

int cx__nset_load(struct cx_admin *a, json_t **doc, char *err)
{
  char *text = NULL;
  *doc = NULL;
  int rc = cx_store_setting_get(a->store, SETTING, &text, err);
  if (rc == CX_ENOTFOUND) { /* first start: the config file's values */
    json_t *d = cx__nset_default(a->cfg);
    char *t = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    rc = t ? cx_store_setting_add(a->store, SETTING, t, err) : -ENOMEM;
    free(t);
    json_decref(d);
    if (rc == 0 || rc == CX_EEXISTS) /* another admin seeded it first */
      rc = cx_store_setting_get(a->store, SETTING, &text, err);
  }
  if (rc != 0)
    return rc;
  json_t *d = json_loads(text, 0, NULL);
  cx_free(text);
  if (!json_is_object(d)) {
    json_decref(d);
    cx_err_set(err, "setting notify: not a JSON object");
    return CX_EPROTO;
  }
  normalize(d);
  *doc = d;
  return 0;
}

int cx__nset_save(struct cx_admin *a, const json_t *doc, char *err)
{
  char *t = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
  int rc = t ? cx_store_setting_put(a->store, SETTING, t, err) : -ENOMEM;
  free(t);
  return rc;
}

/* Fills c from doc (strings borrowed from doc) and cfg. */
static void conf_of(const struct cx_config *cfg, const json_t *doc,
                    struct cx_notify_conf *c)
{
  const json_t *e = json_object_get(doc, "email");
  const char *st = str(doc, "email", "starttls");
  memset(c, 0, sizeof *c);
  c->email.smtp_url = str(doc, "email", "smtp_url");
  c->email.from = str(doc, "email", "from");
  c->email.username = str(doc, "email", "username");
  c->email.password = str(doc, "email", "password");
  c->email.starttls = st && strcmp(st, "required") == 0
                          ? CX_NOTIFY_STARTTLS_REQUIRED
                      : st && strcmp(st, "off") == 0 ? CX_NOTIFY_STARTTLS_OFF
                                                     : CX_NOTIFY_STARTTLS_TRY;
  c->email.tls_insecure = json_is_false(json_object_get(e, "tls_verify"));
  c->email.ca_file = str(doc, "email", "ca_file");
  c->email.timeout_ms = (int)cfg->notify_timeout * 1000;
  c->feishu.webhook_url = str(doc, "feishu", "webhook_url");
  c->feishu.secret = str(doc, "feishu", "secret");
  c->feishu.timeout_ms = (int)cfg->notify_timeout * 1000;
  c->dingtalk.webhook_url = str(doc, "dingtalk", "webhook_url");
  c->dingtalk.secret = str(doc, "dingtalk", "secret");
  c->wecom.webhook_url = str(doc, "wecom", "webhook_url");
  c->slack.webhook_url = str(doc, "slack", "webhook_url");
  c->webhook.url = str(doc, "webhook", "url");
  c->webhook.secret = str(doc, "webhook", "secret");
  c->language = json_string_value(json_object_get(doc, "language"));
  c->public_url = cfg->public_url[0] ? cfg->public_url : NULL;
  c->retries = (int)cfg->notify_retries;
  c->queue_size = 16; /* the queue is not used: sends are synchronous */
}

int cx__nset_notify(const struct cx_config *cfg, const json_t *doc,
                    struct cx_notify **out, char *err)
{
  struct cx_notify_conf c;
  const char *k;
  json_t *v, *h = json_object_get(json_object_get(doc, "webhook"), "headers");
  char *lines[CX_NOTIFY_MAX_HEADERS + 1];
  size_t n = 0;
  int rc = 0;
  conf_of(cfg, doc, &c);
  json_object_foreach(h, k, v)
  {
    if (n == CX_NOTIFY_MAX_HEADERS) { /* cx_notify_create says "too many" */
      n++;
      break;
    }
    struct cx_buf b = {0};
    cx_buf_printf(&b, "%s: %s", k, json_string_value(v));
    if ((lines[n++] = cx_buf_steal(&b)) == NULL)
      rc = -ENOMEM;
  }
  c.webhook.headers = (const char *const *)lines;
  c.webhook.n_headers = n;
  if (rc == 0)
    rc = cx_notify_create(&c, out, err);
  for (size_t i = 0; i < n && i < CX_NOTIFY_MAX_HEADERS; i++)
    cx_free(lines[i]);
  return rc;
}

int cx__nset_configured(const json_t *doc, int type)
{
  if (type < 1 || type >= (int)CX_ARRAY_LEN(on_field))
    return 0;
  return str(doc, on_field[type][0], on_field[type][1]) != NULL;
}

json_t *cx__nset_public(const json_t *doc)
{
  json_t *out = json_deep_copy(doc);
  for (size_t i = 0; out != NULL && i < CX_ARRAY_LEN(fields); i++)
    if (fields[i].kind == F_SECRET)
      put(out, fields[i].ch, fields[i].name,
          json_string(str(doc, fields[i].ch, fields[i].name) ? "set"
                                                             : "unset"));
  return out;
}

/* Checks one member v of body[ch] against f; 0 or CX_EPARSE. */
static int check(const struct field *f, const json_t *v, char *err)
{
  switch (f->kind) {
  case F_BOOL:
    if (json_is_boolean(v))
      return 0;
    cx_err_set(err, "%s.%s: true or false", f->ch, f->name);
    return CX_EPARSE;
  case F_STARTTLS: {
    const char *s = json_string_value(v);
    if (s && (!strcmp(s, "try") || !strcmp(s, "required") || !strcmp(s, "off")))
      return 0;
    cx_err_set(err, "%s.%s: \"try\", \"required\" or \"off\"", f->ch, f->name);
    return CX_EPARSE;
  }
  case F_HEADERS: {
    const char *k;
    json_t *x;
    if (!json_is_object(v) || json_object_size(v) > CX_NOTIFY_MAX_HEADERS) {
      cx_err_set(err, "%s.%s: an object of at most %d \"Name\": \"value\"",
                 f->ch, f->name, CX_NOTIFY_MAX_HEADERS);
      return CX_EPARSE;
    }
    json_object_foreach((json_t *)v, k, x)
    {
      if (!json_is_string(x) || json_string_length(x) > 1024) {
        cx_err_set(err, "%s.%s: %.64s: a string of at most 1024 bytes", f->ch,
                   f->name, k);
        return CX_EPARSE;
      }
    }
    return 0;
  }
  default:
    if (json_is_null(v) ||
        (json_is_string(v) && json_string_length(v) <= VALUE_MAX &&
         strlen(json_string_value(v)) == json_string_length(v)))
      return 0;
    cx_err_set(err,
               "%s.%s: a string of at most %d bytes (\"\" or null "
               "unsets it)",
               f->ch, f->name, VALUE_MAX);
    return CX_EPARSE;
  }
}

static const struct field *lookup(const char *ch, const char *name)
{
  for (size_t i = 0; i < CX_ARRAY_LEN(fields); i++)
    if (!strcmp(fields[i].ch, ch) &&
        (name == NULL || !strcmp(fields[i].name, name)))
      return &fields[i];
  return NULL;
}

int cx__nset_patch(const struct cx_config *cfg, json_t *doc, const json_t *body,
                   char *field, char *err)
{
  const char *ch, *name;
  json_t *o, *v;
  field[0] = '\0';
  json_object_foreach((json_t *)body, ch, o)
  {
    snprintf(field, CX_ADMIN_FIELD_LEN, "%s", ch);
    if (strcmp(ch, "language") == 0) { /* the messages' language */
      const char *l = json_string_value(o);
      if (l == NULL || (strcmp(l, "en") != 0 && strcmp(l, "zh-CN") != 0)) {
        cx_err_set(err, "language: \"en\" or \"zh-CN\"");
        return CX_EPARSE;
      }
      json_object_set(doc, "language", o);
      continue;
    }
    if (lookup(ch, NULL) == NULL) {
      cx_err_set(err,
                 "%s: not a channel (email, feishu, dingtalk, wecom, slack, "
                 "webhook)",
                 ch);
      return CX_EPARSE;
    }
    if (!json_is_object(o)) {
      cx_err_set(err, "%s: must be an object", ch);
      return CX_EPARSE;
    }
    json_object_foreach(o, name, v)
    {
      const struct field *f = lookup(ch, name);
      snprintf(field, CX_ADMIN_FIELD_LEN, "%s.%s", ch, name);
      if (f == NULL) {
        cx_err_set(err, "%s.%s: unknown setting", ch, name);
        return CX_EPARSE;
      }
      int rc = check(f, v, err);
      if (rc != 0)
        return rc;
      put(doc, ch, name, json_is_null(v) ? default_of(f) : json_incref(v));
    }
  }
  /* The merged settings must make a working notifier: its checks name the
   * setting (bad URL scheme, from missing with smtp_url, ...). */
  struct cx_notify *n = NULL;
  int rc = cx__nset_notify(cfg, doc, &n, err);
  cx_notify_destroy(n, 0);
  if (rc != 0) { /* "notify.email.from: required ..." names email.from */
    size_t k = strncmp(err, "notify.", 7) == 0 ? strcspn(err + 7, ":") : 0;
    snprintf(field, CX_ADMIN_FIELD_LEN, "%.*s", (int)k, err + 7);
    return rc;
  }
  field[0] = '\0';
  return 0;
}
