/*
 * Job JSON decoding, encoding and validation, driven by the field table
 * of record.c (cx__job_fields): its JSON name, kind, bounds, length limit
 * and where it lives in struct cx_job, so decoding, encoding and the
 * store's checks cannot drift apart.
 */
#include "job/job-int.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "cron/cron.h"

_Static_assert(CX_JOB_MAX_SPEC <= CX_CRON_MAX_EXPR,
               "a spec the job accepts must be one the parser reads");

#define FIELD_PTR(j, f) ((char *)(j) + (f)->offset)

static int set_str(char **slot, const char *v, size_t len)
{
  char *dup = cx_strndup(v, len);
  if (dup == NULL)
    return -ENOMEM;
  cx_free(*slot);
  *slot = dup;
  return 0;
}

static int bad(char *field, char *err, const char *name, const char *fmt,
               const char *detail)
{
  if (field != NULL)
    snprintf(field, CX_JOB_FIELD_LEN, "%s", name);
  if (err != NULL) {
    char msg[CX_ERR_LEN];
    snprintf(msg, sizeof msg, fmt, detail ? detail : "");
    cx_err_set(err, "%s: %s", name, msg);
  }
  return CX_EPARSE;
}

#define XSTR2(x) #x
#define XSTR(x) XSTR2(x)

/* Stores v's JSON text (the column's form) in *slot, within f's limit. */
static int set_json_text(const struct cx__job_field *f, const json_t *v,
                         size_t flags, char **slot, char *field, char *err)
{
  char *text = json_dumps(v, flags);
  if (text == NULL)
    return -ENOMEM;
  size_t len = strlen(text);
  int rc = CX_EPARSE;
  if (cx__job_fits(f, text, len))
    rc = set_str(slot, text, len);
  else
    cx__job_too_long(f, field, err);
  free(text); /* json_dumps allocates with jansson's allocator */
  return rc;
}

/* Header names are HTTP tokens; env names are shell identifiers. */
static int valid_map_key(const char *field, const char *k)
{
  if (*k == '\0' || strlen(k) > CX_JOB_MAX_MAP_KEY)
    return 0;
  if (strcmp(field, "env") == 0) {
    if (!(isalpha((unsigned char)*k) || *k == '_'))
      return 0;
    for (; *k; k++)
      if (!(isalnum((unsigned char)*k) || *k == '_'))
        return 0;
    return 1;
  }
  for (; *k; k++)
    if (!(isalnum((unsigned char)*k) || strchr("!#$%&'*+-.^_`|~", *k)))
      return 0;
  return 1;
}

static int decode_map(const struct cx__job_field *f, const json_t *v,
                      char **slot, char *field, char *err)
{
  const char *k;
  json_t *val;

  if (!json_is_object(v))
    return bad(field, err, f->name, "must be an object of strings%s", NULL);
  if ((int64_t)json_object_size(v) > f->max)
    return bad(field, err, f->name,
               "more than " XSTR(CX_JOB_MAX_MAP) " entries%s", NULL);
  json_object_foreach((json_t *)v, k, val)
  {
    if (!valid_map_key(f->name, k))
      return bad(field, err, f->name, "invalid name '%s'", k);
    if (!json_is_string(val))
      return bad(field, err, f->name, "value of '%s' must be a string", k);
    const char *s = json_string_value(val);
    size_t len = json_string_length(val);
    if (strlen(s) != len || len > CX_JOB_MAX_MAP_VALUE)
      return bad(field, err, f->name,
                 "value of '%s' has a NUL byte or is over " XSTR(
                     CX_JOB_MAX_MAP_VALUE) " bytes",
                 k);
    if (strcmp(f->name, "http_headers") == 0 && strpbrk(s, "\r\n") != NULL)
      return bad(field, err, f->name, "value of '%s' has a line break", k);
  }
  return set_json_text(f, v, JSON_COMPACT | JSON_SORT_KEYS, slot, field, err);
}

static int decode_ids(const struct cx__job_field *f, const json_t *v,
                      char **slot, char *field, char *err)
{
  size_t i;
  json_t *e;

  if (!json_is_array(v))
    return bad(field, err, f->name, "must be an array of user ids%s", NULL);
  if ((int64_t)json_array_size(v) > f->max)
    return bad(field, err, f->name,
               "more than " XSTR(CX_JOB_MAX_NOTIFY_TO) " user ids%s", NULL);
  json_array_foreach(v, i, e)
  {
    if (!json_is_integer(e) || json_integer_value(e) < 1)
      return bad(field, err, f->name, "entries must be positive integers%s",
                 NULL);
  }
  return set_json_text(f, v, JSON_COMPACT, slot, field, err);
}

static int decode_field(const struct cx__job_field *f, const json_t *v,
                        struct cx_job *j, char *field, char *err)
{
  char *p = FIELD_PTR(j, f);

  switch (f->kind) {
  case CX__K_IGNORED:
    return 0;
  case CX__K_INT:
  case CX__K_ID64: {
    if (!json_is_integer(v))
      return bad(field, err, f->name, "must be an integer%s", NULL);
    json_int_t x = json_integer_value(v);
    if (x < f->min || x > f->max) {
      char range[64];
      snprintf(range, sizeof range, "%lld..%lld", (long long)f->min,
               (long long)f->max);
      return bad(field, err, f->name, "out of range %s", range);
    }
    if (f->kind == CX__K_INT)
      *(int *)p = (int)x;
    else
      *(int64_t *)p = (int64_t)x;
    return 0;
  }
  case CX__K_BOOL:
    if (json_is_boolean(v))
      *(int *)p = json_is_true(v);
    else if (json_is_integer(v) &&
             (json_integer_value(v) == 0 || json_integer_value(v) == 1))
      *(int *)p = (int)json_integer_value(v);
    else
      return bad(field, err, f->name, "must be true or false%s", NULL);
    return 0;
  case CX__K_STR: {
    if (!json_is_string(v))
      return bad(field, err, f->name, "must be a string%s", NULL);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len)
      return bad(field, err, f->name, "contains a NUL byte%s", NULL);
    /* Names are trimmed and may hold no control characters. */
    if (strcmp(f->name, "name") == 0) {
      while (*s == ' ' || *s == '\t')
        s++, len--;
      while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
      for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
          return bad(field, err, f->name, "contains a control character%s",
                     NULL);
    }
    if (!cx__job_fits(f, s, len)) {
      cx__job_too_long(f, field, err);
      return CX_EPARSE;
    }
    return set_str((char **)p, s, len);
  }
  case CX__K_ENUM: {
    if (!json_is_string(v))
      return bad(field, err, f->name, "must be a string%s", NULL);
    const char *s = json_string_value(v);
    for (const char *const *c = f->choices; *c; c++) {
      if (strcasecmp(s, *c) == 0)
        return set_str((char **)p, *c, strlen(*c));
    }
    char list[128] = "";
    for (const char *const *c = f->choices; *c; c++) {
      strncat(list, *c, sizeof list - strlen(list) - 1);
      if (c[1] != NULL)
        strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    return bad(field, err, f->name, "must be one of %s", list);
  }
  case CX__K_IDS:
    return decode_ids(f, v, (char **)p, field, err);
  case CX__K_MAP:
    return decode_map(f, v, (char **)p, field, err);
  }
  return CX_EPARSE;
}

int cx_job_from_json(const json_t *obj, struct cx_job *j, char *field,
                     char *err)
{
  const char *key;
  json_t *v;

  if (!json_is_object(obj))
    return bad(field, err, "body", "must be a JSON object%s", NULL);
  json_object_foreach((json_t *)obj, key, v)
  {
    const struct cx__job_field *f = NULL;
    for (size_t i = 0; i < cx__job_nfields && f == NULL; i++)
      if (strcmp(cx__job_fields[i].name, key) == 0)
        f = &cx__job_fields[i];
    if (f == NULL) {
      char name[CX_JOB_FIELD_LEN];
      snprintf(name, sizeof name, "%s", key);
      return bad(field, err, name, "unknown field%s", NULL);
    }
    if (json_is_null(v) && f->kind != CX__K_ID64)
      continue; /* null = keep the current or default value */
    int rc = decode_field(f, v, j, field, err);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* An absolute http(s) URL with a host, no spaces or control characters. */
/* "" (the node's default) or a portable user name (POSIX's portable
 * filename characters, as useradd takes them). */
static int user_name_ok(const char *u)
{
  if (u[0] == '-')
    return 0;
  for (const char *p = u; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
      return 0;
  return 1;
}

static int valid_url(const char *u)
{
  const char *rest;
  if (strncasecmp(u, "http://", 7) == 0)
    rest = u + 7;
  else if (strncasecmp(u, "https://", 8) == 0)
    rest = u + 8;
  else
    return 0;
  if (*rest == '\0' || *rest == '/' || *rest == ':' || *rest == '?' ||
      *rest == '#')
    return 0;
  for (const char *p = u; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f)
      return 0;
  return strlen(u) <= 4096;
}

int cx_job_validate(const struct cx_job *j, int64_t now,
                    enum cx_job_invalid *why, char *field, char *err)
{
  char cron_err[CX_ERR_LEN];

  *why = CX_JOB_BAD_FIELD;
  if (j->name == NULL || j->name[0] == '\0')
    return bad(field, err, "name", "required (1..128 characters)%s", NULL);
  if (j->command == NULL || j->command[0] == '\0')
    return bad(field, err, "command", "required%s", NULL);
  if (j->type != CX_JOB_CMD && j->type != CX_JOB_HTTP)
    return bad(field, err, "type", "required: 1 (cmd) or 2 (http)%s", NULL);
  if (j->allocation != CX_ALLOC_MANUAL && j->allocation != CX_ALLOC_AUTO &&
      j->allocation != CX_ALLOC_BROADCAST)
    return bad(field, err, "allocation",
               "required: 1 (manual), 2 (auto) or 3 (broadcast)%s", NULL);
  if (j->spec == NULL || j->spec[0] == '\0')
    return bad(field, err, "spec", "required%s", NULL);
  if (cx_job_check_limits(j, field, err) != 0)
    return CX_EPARSE;
  if (j->allocation == CX_ALLOC_MANUAL &&
      (j->run_on == NULL || j->run_on[0] == '\0'))
    return bad(field, err, "run_on", "required when allocation is 1 (manual)%s",
               NULL);
  if (j->max_running != 0 && j->allocation != CX_ALLOC_BROADCAST)
    return bad(field, err, "max_running",
               "only for allocation 3 (broadcast); 0 otherwise%s", NULL);
  if (j->type == CX_JOB_HTTP && !valid_url(j->command))
    return bad(field, err, "command",
               "an http job's command must be an http:// or https:// URL "
               "with a host%s",
               NULL);
  if (j->notify_status == 1 && (j->notify_type < 1 || j->notify_type > 6))
    return bad(field, err, "notify_type",
               "must be 1 (email), 2 (Feishu), 3 (DingTalk), 4 (WeCom), 5 "
               "(Slack) or 6 (webhook) when notify_status is 1%s",
               NULL);
  if (j->notify_events != NULL && j->notify_events[0] != '\0' &&
      cx_job_events_check(j->notify_events) != 0)
    return bad(field, err, "notify_events",
               "comma-separated names from failed, timeout, killed, lost, "
               "missed, recovered, success, max_duration%s",
               NULL);
  if (j->workdir != NULL && j->workdir[0] != '\0' && j->workdir[0] != '/')
    return bad(field, err, "workdir", "must be an absolute path%s", NULL);
  if (j->run_as != NULL && !user_name_ok(j->run_as))
    return bad(field, err, "run_as",
               "must be a user name: letters, digits, '.', '_', '-', not "
               "starting with '-'%s",
               NULL);
  if (j->node_selector != NULL &&
      cx_selector_check(j->node_selector, cron_err) != 0)
    return bad(field, err, "node_selector", "%s", cron_err);
  if (j->timezone != NULL && j->timezone[0] != '\0') {
    const struct cx_tz *tz;
    if (cx_tz_get(j->timezone, &tz, cron_err) != 0)
      return bad(field, err, "timezone", "%s", cron_err);
  }
  struct cx_cron_opts opts = {.timezone = j->timezone,
                              .anchor = j->created ? j->created : now};
  if (cx_cron_check(j->spec, &opts, now, cron_err) != 0) {
    *why = CX_JOB_BAD_SPEC;
    return bad(field, err, "spec", "%s", cron_err);
  }
  return 0;
}

json_t *cx_job_to_json(const struct cx_job *j)
{
  json_t *o = json_object();
  if (o == NULL)
    return NULL;
  for (size_t i = 0; i < cx__job_nfields; i++) {
    const struct cx__job_field *f = &cx__job_fields[i];
    const char *p = (const char *)j + f->offset;
    json_t *v = NULL;
    switch (f->kind) {
    case CX__K_IGNORED:
      continue;
    case CX__K_INT:
      v = json_integer(*(const int *)p);
      break;
    case CX__K_ID64:
      v = json_integer(*(const int64_t *)p);
      break;
    case CX__K_BOOL:
      v = json_boolean(*(const int *)p);
      break;
    case CX__K_STR: {
      const char *s = *(char *const *)p;
      v = json_string(s ? s : "");
      break;
    }
    case CX__K_ENUM: {
      const char *s = *(char *const *)p;
      v = json_string(s && s[0] ? s : f->choices[0]);
      break;
    }
    case CX__K_IDS:
    case CX__K_MAP: {
      const char *s = *(char *const *)p;
      v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
      if (v == NULL)
        v = f->kind == CX__K_IDS ? json_array() : json_object();
      break;
    }
    }
    if (v == NULL || json_object_set_new(o, f->name, v) != 0) {
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

static const char *const events_known[] = {
    "failed",    "timeout", "killed",       "lost", "missed",
    "recovered", "success", "max_duration", NULL};

/* Calls fn for each comma-separated name of list (spaces ignored); stops
 * at the first non-zero. */
static int events_each(const char *list,
                       int (*fn)(const char *, size_t, void *), void *ctx)
{
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == ',')
      p++;
    size_t n = strcspn(p, ", ");
    if (n > 0 && fn(p, n, ctx) != 0)
      return 1;
    p += n;
  }
  return 0;
}

static int ev_unknown(const char *s, size_t n, void *ctx)
{
  (void)ctx;
  for (size_t i = 0; events_known[i]; i++)
    if (strlen(events_known[i]) == n && strncmp(s, events_known[i], n) == 0)
      return 0;
  return 1;
}

static int ev_is(const char *s, size_t n, void *ctx)
{
  return strlen(ctx) == n && strncmp(s, ctx, n) == 0;
}

int cx_job_events_check(const char *list)
{
  return events_each(list, ev_unknown, NULL) ? CX_EPARSE : 0;
}

int cx_job_alerts_on(const struct cx_job *j, const char *event)
{
  const char *l = j->notify_events;
  if (l == NULL || l[0] == '\0')
    return strcmp(event, "success") != 0 && strcmp(event, "max_duration") != 0;
  return events_each(l, ev_is, (void *)event);
}
/* ---- the viewer's form -------------------------------------------------- */

/* Ends a URL written in a command: whitespace and the quotes around it. */
static int url_end(char c)
{
  return c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
         c == '"' || c == '\'' || c == '`' || c == '<' || c == '>';
}

/* Each "...://..." stretch (up to the URL's end) goes through
 * cx_url_redact, the one rule for masking a URL's password (util). */
char *cx_job_redact_command(const char *s)
{
  struct cx_buf b = {0};
  const char *p = s ? s : "";
  for (;;) {
    const char *sep = strstr(p, "://");
    if (sep == NULL)
      break;
    const char *end = sep + 3;
    while (!url_end(*end))
      end++;
    size_t n = (size_t)(end - p);
    char *seg = cx_strndup(p, n), *out = cx_malloc(n + 4); /* +"***" */
    if (seg != NULL && out != NULL) {
      cx_url_redact(seg, 0, out, n + 4);
      cx_buf_puts(&b, out);
    } else {
      b.failed = 1;
    }
    cx_free(seg);
    cx_free(out);
    p = end;
  }
  cx_buf_puts(&b, p);
  return cx_buf_steal(&b);
}

int cx_job_redact_json(json_t *o)
{
  static const char *const maps[] = {"http_headers", "env"};
  for (size_t i = 0; i < CX_ARRAY_LEN(maps); i++) {
    json_t *m = json_object_get(o, maps[i]);
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
      if (json_object_set_new(m, k, json_string(CX_JOB_REDACTED)) != 0)
        return -ENOMEM;
    }
  }
  json_t *cmd = json_object_get(o, "command");
  if (json_is_string(cmd)) {
    char *r = cx_job_redact_command(json_string_value(cmd));
    int rc = r ? json_object_set_new(o, "command", json_string(r)) : -1;
    cx_free(r);
    if (rc != 0)
      return -ENOMEM;
  }
  return 0;
}
