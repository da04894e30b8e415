/*
 * Masking the secrets a URL may carry, so that no message, log line or
 * `config show` prints them: the password of the user info, and with
 * CX_URL_REDACT_PATH the token a webhook keeps in its path or query.
 * Writes straight into the caller's buffer: no allocation can fail half
 * way and leave the secret in place.
 */
#include "util.h"

#include <string.h>

struct out {
  char *p;
  size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
  size_t room = o->cap - 1 - o->len;
  if (n > room)
    n = room;
  memcpy(o->p + o->len, s, n);
  o->len += n;
  o->p[o->len] = '\0';
}

static const char *find(const char *s, const char *end, char c)
{
  const char *p = memchr(s, c, (size_t)(end - s));
  return p != NULL ? p : end;
}

/* The query after '?' (or a fragment after '#'), each value masked. */
static void put_query(struct out *o, const char *q, const char *end)
{
  while (q < end) {
    const char *amp = find(q, end, '&');
    const char *eq = find(q, amp, '=');
    if (eq < amp) {
      put(o, q, (size_t)(eq + 1 - q));
      if (eq + 1 < amp)
        put(o, "***", 3);
    } else if (q < amp) {
      put(o, "***", 3);
    }
    if (amp < end)
      put(o, "&", 1);
    q = amp + (amp < end);
  }
}

static void redact_one(const char *u, const char *end, unsigned flags,
                       struct out *o)
{
  const char *rest = u;
  for (const char *p = u; p + 3 <= end; p++)
    if (memcmp(p, "://", 3) == 0) {
      rest = p + 3;
      break;
    }
  /* The authority ends at the first '/' or '?', as the store's parser
   * reads it; a '#' or '@' in a password stays inside and is masked. */
  const char *stop = rest;
  while (stop < end && *stop != '/' && *stop != '?')
    stop++;
  const char *at = NULL;
  for (const char *p = rest; p < stop; p++)
    if (*p == '@')
      at = p;
  const char *colon = at != NULL ? find(rest, at, ':') : NULL;
  if (colon != NULL && colon < at) {
    put(o, u, (size_t)(colon + 1 - u));
    put(o, "***", 3);
    put(o, at, (size_t)(stop - at));
  } else {
    put(o, u, (size_t)(stop - u));
  }
  if (!(flags & CX_URL_REDACT_PATH)) {
    put(o, stop, (size_t)(end - stop));
    return;
  }
  const char *q = stop;
  while (q < end && *q != '?' && *q != '#')
    q++;
  const char *last = NULL;
  for (const char *p = stop; p < q; p++)
    if (*p == '/')
      last = p;
  if (last != NULL && last + 1 < q) {
    put(o, stop, (size_t)(last + 1 - stop));
    put(o, "***", 3);
  } else {
    put(o, stop, (size_t)(q - stop));
  }
  if (q < end && *q == '?') {
    const char *hash = find(q, end, '#');
    put(o, "?", 1);
    put_query(o, q + 1, hash);
    q = hash;
  }
  if (q < end)
    put(o, "#***", 4);
}

void cx_url_redact(const char *url, unsigned flags, char *out, size_t outlen)
{
  struct out o = {out, outlen, 0};
  if (outlen == 0)
    return;
  out[0] = '\0';
  if (url == NULL)
    return;
  const char *end = url + strlen(url);
  if (!(flags & CX_URL_REDACT_LIST)) {
    redact_one(url, end, flags, &o);
    return;
  }
  for (const char *p = url;;) {
    const char *comma = find(p, end, ',');
    redact_one(p, comma, flags, &o);
    if (comma == end)
      break;
    put(&o, ",", 1);
    p = comma + 1;
  }
}
