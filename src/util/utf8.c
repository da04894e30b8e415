/*
 * UTF-8 checks and cleaning, one strict decoder for every module: RFC 3629
 * sequences only (no overlong forms, no surrogates, nothing past U+10FFFF),
 * so "valid" means the same to the HTTP layer, the store and the notifier.
 */
#include "util.h"

#include <string.h>

static int is_cont(unsigned char c)
{
  return (c & 0xc0) == 0x80;
}

size_t cx_utf8_next(const char *s, size_t n, uint32_t *cp)
{
  const unsigned char *p = (const unsigned char *)s;
  unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
  size_t len;
  uint32_t v;
  if (n == 0)
    return 0;
  if (p[0] < 0x80) {
    if (cp)
      *cp = p[0];
    return 1;
  }
  if (p[0] >= 0xc2 && p[0] <= 0xdf) {
    len = 2, v = p[0] & 0x1f;
  } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
    len = 3, v = p[0] & 0x0f;
    if (p[0] == 0xe0)
      lo = 0xa0; /* overlong */
    else if (p[0] == 0xed)
      hi = 0x9f; /* surrogates */
  } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
    len = 4, v = p[0] & 0x07;
    if (p[0] == 0xf0)
      lo = 0x90; /* overlong */
    else if (p[0] == 0xf4)
      hi = 0x8f; /* past U+10FFFF */
  } else {
    return 0;
  }
  if (n < len || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if (!is_cont(p[i]))
      return 0;
    v = v << 6 | (p[i] & 0x3f);
  }
  if (cp)
    *cp = v;
  return len;
}

int cx_utf8_valid(const char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    size_t k = cx_utf8_next(s + i, n - i, NULL);
    if (k == 0)
      return 0;
    i += k;
  }
  return 1;
}

size_t cx_utf8_chars(const char *s, size_t n)
{
  size_t chars = 0;
  for (size_t i = 0; i < n; i++)
    chars += !is_cont((unsigned char)s[i]);
  return chars;
}

size_t cx_utf8_floor(const char *s, size_t n, size_t i)
{
  if (i >= n)
    return n;
  while (i > 0 && is_cont((unsigned char)s[i]))
    i--;
  return i;
}

size_t cx_utf8_ceil(const char *s, size_t n, size_t i)
{
  while (i < n && is_cont((unsigned char)s[i]))
    i++;
  return i;
}

void cx_utf8_clean(struct cx_buf *out, const char *s, size_t n,
                   const char *repl, size_t max)
{
  size_t rl = strlen(repl), start = out->len, i = 0;
  while (i < n) {
    size_t k = cx_utf8_next(s + i, n - i, NULL);
    if (out->len - start + (k ? k : rl) > max)
      break;
    if (k == 0) {
      cx_buf_append(out, repl, rl);
      i++;
    } else {
      cx_buf_append(out, s + i, k);
      i += k;
    }
  }
}
