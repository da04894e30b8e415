/*
 * keys: building and parsing the coordination keys (see keys.h). Both
 * directions share one table of kind names so that the two cannot drift.
 */
#include "keys/keys.h"

#include <stdio.h>
#include <string.h>

#include "util/util.h"

static const char *const kind_name[] = {
    [CX_KEY_JOB] = "job",   [CX_KEY_NODE] = "node", [CX_KEY_PROC] = "proc",
    [CX_KEY_ONCE] = "once", [CX_KEY_KILL] = "kill", [CX_KEY_LEADER] = "leader",
};

int cx_key_uuid_ok(const char *u)
{
  size_t n = u ? strlen(u) : 0;
  if (n == 0 || n > CX_KEY_UUID_MAX || strcmp(u, ".") == 0 ||
      strcmp(u, "..") == 0)
    return 0;
  for (; *u; u++)
    if (!((*u >= 'a' && *u <= 'z') || (*u >= 'A' && *u <= 'Z') ||
          (*u >= '0' && *u <= '9') || *u == '.' || *u == '_' || *u == '-'))
      return 0;
  return 1;
}

static size_t fit(int n, size_t cap)
{
  return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t cx_key_build(char *buf, size_t cap, const char *prefix,
                    enum cx_key_kind kind, const char *uuid, int64_t id,
                    const char *tail)
{
  const char *k = kind_name[kind];
  if (kind == CX_KEY_LEADER)
    return fit(snprintf(buf, cap, "%s/%s", prefix, k), cap);
  if (!cx_key_uuid_ok(uuid))
    return 0;
  if (kind == CX_KEY_NODE)
    return fit(snprintf(buf, cap, "%s/%s/%s", prefix, k, uuid), cap);
  if (id < 1)
    return 0;
  if (kind != CX_KEY_PROC)
    return fit(
        snprintf(buf, cap, "%s/%s/%s/%lld", prefix, k, uuid, (long long)id),
        cap);
  if (tail == NULL || tail[0] == '\0' || strchr(tail, '/') != NULL)
    return 0;
  return fit(snprintf(buf, cap, "%s/%s/%s/%lld/%s", prefix, k, uuid,
                      (long long)id, tail),
             cap);
}

size_t cx_key_dir(char *buf, size_t cap, const char *prefix,
                  enum cx_key_kind kind, const char *uuid)
{
  if (kind == CX_KEY_LEADER)
    return 0;
  if (uuid == NULL)
    return fit(snprintf(buf, cap, "%s/%s/", prefix, kind_name[kind]), cap);
  if (!cx_key_uuid_ok(uuid))
    return 0;
  return fit(snprintf(buf, cap, "%s/%s/%s/", prefix, kind_name[kind], uuid),
             cap);
}

/* A job id: 1..INT64_MAX as plain digits (no sign, no spaces). */
static int parse_id(const char *s, size_t n, int64_t *out)
{
  char tmp[24];
  if (n == 0 || n >= sizeof tmp)
    return CX_EPARSE;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return CX_EPARSE;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  return cx_parse_int64(tmp, 1, INT64_MAX, out);
}

int cx_key_parse(const char *prefix, const char *key, size_t len,
                 struct cx_key *out)
{
  size_t pl = strlen(prefix);
  memset(out, 0, sizeof *out);
  if (len <= pl + 1 || memcmp(key, prefix, pl) != 0 || key[pl] != '/' ||
      memchr(key, '\0', len) != NULL)
    return CX_EPARSE;
  const char *p = key + pl + 1, *end = key + len;
  /* The kind: up to the next '/' (the leader key has none). */
  const char *slash = memchr(p, '/', (size_t)(end - p));
  size_t kl = (size_t)((slash ? slash : end) - p);
  int kind = -1;
  for (size_t i = 0; i < CX_ARRAY_LEN(kind_name); i++)
    if (strlen(kind_name[i]) == kl && memcmp(p, kind_name[i], kl) == 0)
      kind = (int)i;
  if (kind < 0)
    return CX_EPARSE;
  out->kind = (enum cx_key_kind)kind;
  if (kind == CX_KEY_LEADER)
    return slash == NULL ? 0 : CX_EPARSE;
  if (slash == NULL)
    return CX_EPARSE;
  /* The uuid. */
  p = slash + 1;
  slash = memchr(p, '/', (size_t)(end - p));
  size_t ul = (size_t)((slash ? slash : end) - p);
  if (ul == 0 || ul > CX_KEY_UUID_MAX)
    return CX_EPARSE;
  memcpy(out->uuid, p, ul);
  out->uuid[ul] = '\0';
  if (!cx_key_uuid_ok(out->uuid))
    return CX_EPARSE;
  if (kind == CX_KEY_NODE)
    return slash == NULL ? 0 : CX_EPARSE;
  if (slash == NULL)
    return CX_EPARSE;
  /* The job id, and a proc key's tail. */
  p = slash + 1;
  slash = memchr(p, '/', (size_t)(end - p));
  if ((kind == CX_KEY_PROC) != (slash != NULL))
    return CX_EPARSE;
  if (parse_id(p, (size_t)((slash ? slash : end) - p), &out->id) != 0)
    return CX_EPARSE;
  if (kind == CX_KEY_PROC) {
    out->tail = slash + 1;
    out->tail_len = (size_t)(end - out->tail);
    if (out->tail_len == 0 || memchr(out->tail, '/', out->tail_len) != NULL)
      return CX_EPARSE;
  }
  return 0;
}
