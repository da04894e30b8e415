/*
 * keys: building and parsing the coordination keys (see keys.h). Both
 * directions share one table of kind names so that the two cannot drift.
 */
#include "keys/keys.h"

#include <stdio.h>
#include <string.h>

#include "util/util.h"

static const char *const kind_name[] = {
    [CX_KEY_JOB] = "job",     [CX_KEY_NODE] = "node",
    [CX_KEY_PROC] = "proc",   [CX_KEY_ONCE] = "once",
    [CX_KEY_KILL] = "kill",   [CX_KEY_LEADER] = "leader",
    [CX_KEY_DRAIN] = "drain", [CX_KEY_BCAST] = "bcast",
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
  if (kind == CX_KEY_BCAST)
    return id < 1
               ? 0
               : fit(snprintf(buf, cap, "%s/%s/%lld", prefix, k, (long long)id),
                     cap);
  if (!cx_key_uuid_ok(uuid))
    return 0;
  if (kind == CX_KEY_NODE || kind == CX_KEY_DRAIN)
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
  if (kind == CX_KEY_BCAST || !cx_key_uuid_ok(uuid))
    return 0;
  return fit(snprintf(buf, cap, "%s/%s/%s/", prefix, kind_name[kind], uuid),
             cap);
}

/* A job id: 1..INT64_MAX as plain digits (no sign, no spaces, no leading
 * zero), so that a parsed key is exactly the one cx_key_build makes. */
static int parse_id(const char *s, size_t n, int64_t *out)
{
  char tmp[24];
  if (n == 0 || n >= sizeof tmp || s[0] == '0')
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
  /* The parts after the prefix: kind, uuid, id, tail (a trailing '/'
   * makes an empty last part). */
  static const size_t nparts[] = {
      [CX_KEY_JOB] = 3,   [CX_KEY_NODE] = 2,  [CX_KEY_PROC] = 4,
      [CX_KEY_ONCE] = 3,  [CX_KEY_KILL] = 3,  [CX_KEY_LEADER] = 1,
      [CX_KEY_DRAIN] = 2, [CX_KEY_BCAST] = 2,
  };
  struct {
    const char *p;
    size_t n;
  } part[4];
  size_t np = 0;
  const char *p = key + pl + 1, *end = key + len;
  for (;;) {
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (np == CX_ARRAY_LEN(part))
      return CX_EPARSE;
    part[np].p = p;
    part[np++].n = (size_t)((slash ? slash : end) - p);
    if (slash == NULL)
      break;
    p = slash + 1;
  }
  int kind = -1;
  for (size_t i = 0; i < CX_ARRAY_LEN(kind_name); i++)
    if (strlen(kind_name[i]) == part[0].n &&
        memcmp(part[0].p, kind_name[i], part[0].n) == 0)
      kind = (int)i;
  if (kind < 0 || np != nparts[kind])
    return CX_EPARSE;
  out->kind = (enum cx_key_kind)kind;
  if (kind == CX_KEY_BCAST)
    return parse_id(part[1].p, part[1].n, &out->id);
  if (np >= 2) {
    if (part[1].n == 0 || part[1].n > CX_KEY_UUID_MAX)
      return CX_EPARSE;
    memcpy(out->uuid, part[1].p, part[1].n);
    out->uuid[part[1].n] = '\0';
    if (!cx_key_uuid_ok(out->uuid))
      return CX_EPARSE;
  }
  if (np >= 3 && parse_id(part[2].p, part[2].n, &out->id) != 0)
    return CX_EPARSE;
  if (np == 4) {
    if (part[3].n == 0)
      return CX_EPARSE;
    out->tail = part[3].p;
    out->tail_len = part[3].n;
  }
  return 0;
}
