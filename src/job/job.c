/*
 * Job JSON decoding, encoding and validation. Every field has one row in
 * `fields` below: its JSON name, kind, bounds and where it lives in
 * struct cx_job, so decoding and encoding cannot drift apart.
 */
#include "job/job.h"

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>

#include "cron/cron.h"

enum kind {
  K_INT,     /* int field within [min, max] */
  K_STR,     /* string, at most max bytes (or characters, see chars) */
  K_ENUM,    /* string from a fixed list */
  K_BOOL,    /* true/false (or 0/1) into an int */
  K_IDS,     /* array of positive integers, kept as JSON text */
  K_MAP,     /* object of string -> string, kept as JSON text */
  K_ID64,    /* int64: id, created, updated */
  K_IGNORED, /* read-only reply fields accepted and dropped */
};

struct field {
  const char *name;
  enum kind kind;
  size_t offset;
  int64_t min, max;
  const char *const *choices; /* K_ENUM */
  int chars;                  /* K_STR: max counts UTF-8 characters */
};

/* The first choice of each list is the default (SPEC §3). */
static const char *const concurrency_choices[] = {"forbid", "allow", "replace",
                                                  NULL};
static const char *const misfire_choices[] = {"run_once", "skip", NULL};
static const char *const method_choices[] = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", NULL};

#define OFF(f) offsetof(struct cx_job, f)
static const struct field fields[] = {
    {"id", K_ID64, OFF(id), 1, INT64_MAX, NULL, 0},
    {"name", K_STR, OFF(name), 0, CX_JOB_MAX_NAME, NULL, 1},
    {"command", K_STR, OFF(command), 0, CX_JOB_MAX_COMMAND, NULL, 0},
    {"type", K_INT, OFF(type), CX_JOB_CMD, CX_JOB_HTTP, NULL, 0},
    {"spec", K_STR, OFF(spec), 0, CX_CRON_MAX_EXPR, NULL, 0},
    {"timeout", K_INT, OFF(timeout), 0, CX_JOB_MAX_TIMEOUT, NULL, 0},
    {"retry_times", K_INT, OFF(retry_times), 0, CX_JOB_MAX_RETRIES, NULL, 0},
    {"retry_interval", K_INT, OFF(retry_interval), 0, CX_JOB_MAX_INTERVAL, NULL,
     0},
    {"allocation", K_INT, OFF(allocation), CX_ALLOC_MANUAL, CX_ALLOC_AUTO, NULL,
     0},
    {"run_on", K_STR, OFF(run_on), 0, 64, NULL, 0},
    {"notify_status", K_INT, OFF(notify_status), 1, 2, NULL, 0},
    {"notify_type", K_INT, OFF(notify_type), 0, 2, NULL, 0},
    {"notify_to_array", K_IDS, OFF(notify_to_array), 1, INT64_MAX, NULL, 0},
    {"note", K_STR, OFF(note), 0, CX_JOB_MAX_NOTE, NULL, 1},
    {"created", K_ID64, OFF(created), 0, INT64_MAX, NULL, 0},
    {"updated", K_ID64, OFF(updated), 0, INT64_MAX, NULL, 0},
    {"timezone", K_STR, OFF(timezone), 0, 128, NULL, 0},
    {"enabled", K_BOOL, OFF(enabled), 0, 1, NULL, 0},
    {"concurrency", K_ENUM, OFF(concurrency), 0, 0, concurrency_choices, 0},
    {"misfire", K_ENUM, OFF(misfire), 0, 0, misfire_choices, 0},
    {"starting_deadline", K_INT, OFF(starting_deadline), 0, CX_JOB_MAX_DEADLINE,
     NULL, 0},
    {"http_method", K_ENUM, OFF(http_method), 0, 0, method_choices, 0},
    {"http_headers", K_MAP, OFF(http_headers), 0, CX_JOB_MAX_MAP, NULL, 0},
    {"http_body", K_STR, OFF(http_body), 0, CX_JOB_MAX_COMMAND, NULL, 0},
    {"env", K_MAP, OFF(env), 0, CX_JOB_MAX_MAP, NULL, 0},
    {"workdir", K_STR, OFF(workdir), 0, 4096, NULL, 0},
    /* Reply-only fields: accepted so a reply can be posted back. */
    {"next", K_IGNORED, 0, 0, 0, NULL, 0},
    {"node_state", K_IGNORED, 0, 0, 0, NULL, 0},
};
#undef OFF

#define FIELD_PTR(j, f) ((char *)(j) + (f)->offset)

static size_t utf8_chars(const char *s)
{
  size_t n = 0;
  for (; *s; s++)
    n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

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

/* Header names are HTTP tokens; env names are shell identifiers. */
static int valid_map_key(const char *field, const char *k)
{
  if (*k == '\0' || strlen(k) > 256)
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

static int decode_map(const struct field *f, const json_t *v, char **slot,
                      char *field, char *err)
{
  const char *k;
  json_t *val;

  if (!json_is_object(v))
    return bad(field, err, f->name, "must be an object of strings%s", NULL);
  if ((int64_t)json_object_size(v) > f->max)
    return bad(field, err, f->name, "more than 128 entries%s", NULL);
  json_object_foreach((json_t *)v, k, val)
  {
    if (!valid_map_key(f->name, k))
      return bad(field, err, f->name, "invalid name '%s'", k);
    if (!json_is_string(val))
      return bad(field, err, f->name, "value of '%s' must be a string", k);
    const char *s = json_string_value(val);
    size_t len = json_string_length(val);
    if (strlen(s) != len || len > 8192)
      return bad(field, err, f->name,
                 "value of '%s' has a NUL byte or is over 8192 bytes", k);
    if (strcmp(f->name, "http_headers") == 0 && strpbrk(s, "\r\n") != NULL)
      return bad(field, err, f->name, "value of '%s' has a line break", k);
  }
  char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
  if (text == NULL)
    return -ENOMEM;
  int rc = set_str(slot, text, strlen(text));
  free(text);
  return rc;
}

static int decode_ids(const struct field *f, const json_t *v, char **slot,
                      char *field, char *err)
{
  size_t i;
  json_t *e;

  if (!json_is_array(v))
    return bad(field, err, f->name, "must be an array of user ids%s", NULL);
  if (json_array_size(v) > CX_JOB_MAX_NOTIFY_TO)
    return bad(field, err, f->name, "more than 100 user ids%s", NULL);
  json_array_foreach(v, i, e)
  {
    if (!json_is_integer(e) || json_integer_value(e) < 1)
      return bad(field, err, f->name, "entries must be positive integers%s",
                 NULL);
  }
  char *text = json_dumps(v, JSON_COMPACT);
  if (text == NULL)
    return -ENOMEM;
  int rc = set_str(slot, text, strlen(text));
  free(text);
  return rc;
}

static int decode_field(const struct field *f, const json_t *v,
                        struct cx_job *j, char *field, char *err)
{
  char *p = FIELD_PTR(j, f);

  switch (f->kind) {
  case K_IGNORED:
    return 0;
  case K_INT:
  case K_ID64: {
    if (!json_is_integer(v))
      return bad(field, err, f->name, "must be an integer%s", NULL);
    json_int_t x = json_integer_value(v);
    if (x < f->min || x > f->max) {
      char range[64];
      snprintf(range, sizeof range, "%lld..%lld", (long long)f->min,
               (long long)f->max);
      return bad(field, err, f->name, "out of range %s", range);
    }
    if (f->kind == K_INT)
      *(int *)p = (int)x;
    else
      *(int64_t *)p = (int64_t)x;
    return 0;
  }
  case K_BOOL:
    if (json_is_boolean(v))
      *(int *)p = json_is_true(v);
    else if (json_is_integer(v) &&
             (json_integer_value(v) == 0 || json_integer_value(v) == 1))
      *(int *)p = (int)json_integer_value(v);
    else
      return bad(field, err, f->name, "must be true or false%s", NULL);
    return 0;
  case K_STR: {
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
    char *tmp = cx_strndup(s, len);
    if (tmp == NULL)
      return -ENOMEM;
    size_t size = f->chars ? utf8_chars(tmp) : len;
    if ((int64_t)size > f->max) {
      cx_free(tmp);
      char lim[48];
      snprintf(lim, sizeof lim, "%lld %s", (long long)f->max,
               f->chars ? "characters" : "bytes");
      return bad(field, err, f->name, "longer than %s", lim);
    }
    cx_free(*(char **)p);
    *(char **)p = tmp;
    return 0;
  }
  case K_ENUM: {
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
  case K_IDS:
    return decode_ids(f, v, (char **)p, field, err);
  case K_MAP:
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
    const struct field *f = NULL;
    for (size_t i = 0; i < CX_ARRAY_LEN(fields) && f == NULL; i++)
      if (strcmp(fields[i].name, key) == 0)
        f = &fields[i];
    if (f == NULL) {
      char name[CX_JOB_FIELD_LEN];
      snprintf(name, sizeof name, "%s", key);
      return bad(field, err, name, "unknown field%s", NULL);
    }
    if (json_is_null(v) && f->kind != K_ID64)
      continue; /* null = keep the current or default value */
    int rc = decode_field(f, v, j, field, err);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* An absolute http(s) URL with a host, no spaces or control characters. */
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
  if (j->allocation != CX_ALLOC_MANUAL && j->allocation != CX_ALLOC_AUTO)
    return bad(field, err, "allocation", "required: 1 (manual) or 2 (auto)%s",
               NULL);
  if (j->spec == NULL || j->spec[0] == '\0')
    return bad(field, err, "spec", "required%s", NULL);
  if (j->allocation == CX_ALLOC_MANUAL &&
      (j->run_on == NULL || j->run_on[0] == '\0'))
    return bad(field, err, "run_on", "required when allocation is 1 (manual)%s",
               NULL);
  if (j->type == CX_JOB_HTTP && !valid_url(j->command))
    return bad(field, err, "command",
               "an http job's command must be an http:// or https:// URL "
               "with a host%s",
               NULL);
  if (j->notify_status == 1 && j->notify_type != 1 && j->notify_type != 2)
    return bad(field, err, "notify_type",
               "must be 1 (email) or 2 (Feishu) when notify_status is 1%s",
               NULL);
  if (j->workdir != NULL && j->workdir[0] != '\0' && j->workdir[0] != '/')
    return bad(field, err, "workdir", "must be an absolute path%s", NULL);
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
  for (size_t i = 0; i < CX_ARRAY_LEN(fields); i++) {
    const struct field *f = &fields[i];
    const char *p = (const char *)j + f->offset;
    json_t *v = NULL;
    switch (f->kind) {
    case K_IGNORED:
      continue;
    case K_INT:
      v = json_integer(*(const int *)p);
      break;
    case K_ID64:
      v = json_integer(*(const int64_t *)p);
      break;
    case K_BOOL:
      v = json_boolean(*(const int *)p);
      break;
    case K_STR: {
      const char *s = *(char *const *)p;
      v = json_string(s ? s : "");
      break;
    }
    case K_ENUM: {
      const char *s = *(char *const *)p;
      v = json_string(s && s[0] ? s : f->choices[0]);
      break;
    }
    case K_IDS:
    case K_MAP: {
      const char *s = *(char *const *)p;
      v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
      if (v == NULL)
        v = f->kind == K_IDS ? json_array() : json_object();
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

int cx_job_copy(struct cx_job *dst, const struct cx_job *src)
{
  *dst = *src;
  for (size_t i = 0; i < CX_ARRAY_LEN(fields); i++) {
    const struct field *f = &fields[i];
    if (f->kind != K_STR && f->kind != K_ENUM && f->kind != K_IDS &&
        f->kind != K_MAP)
      continue;
    char **slot = (char **)FIELD_PTR(dst, f);
    if (*slot != NULL && (*slot = cx_strdup(*slot)) == NULL) {
      /* Undo: free what was copied so far, leave dst empty. */
      for (size_t k = 0; k < i; k++) {
        const struct field *g = &fields[k];
        if (g->kind == K_STR || g->kind == K_ENUM || g->kind == K_IDS ||
            g->kind == K_MAP)
          cx_free(*(char **)FIELD_PTR(dst, g));
      }
      memset(dst, 0, sizeof *dst);
      return -ENOMEM;
    }
  }
  return 0;
}
