/*
 * store: UTF-8 checks and the sanitizer for run output (see store.h: invalid
 * sequences become U+FFFD, NUL becomes U+2400, identically on every
 * back-end).
 */
#include "store/store-int.h"

#include <errno.h>
#include <string.h>

/* Length of the valid UTF-8 sequence starting at p (n bytes left), or 0.
 * Rejects overlong forms, surrogates and code points above U+10FFFF. */
static size_t seq_len(const unsigned char *p, size_t n)
{
  unsigned c = p[0];
  if (c < 0x80)
    return 1;
  if (c < 0xc2 || c > 0xf4)
    return 0;
  if (c < 0xe0)
    return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c < 0xf0) {
    if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
      return 0;
    if (c == 0xe0 && p[1] < 0xa0) /* overlong */
      return 0;
    if (c == 0xed && p[1] >= 0xa0) /* surrogate */
      return 0;
    return 3;
  }
  if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
      (p[3] & 0xc0) != 0x80)
    return 0;
  if (c == 0xf0 && p[1] < 0x90) /* overlong */
    return 0;
  if (c == 0xf4 && p[1] >= 0x90) /* above U+10FFFF */
    return 0;
  return 4;
}

int cx__utf8_valid(const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    size_t k = p[i] == 0 ? 0 : seq_len(p + i, len - i);
    if (k == 0)
      return 0;
    i += k;
  }
  return 1;
}

size_t cx__utf8_chars(const char *s, size_t len)
{
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)s[i] & 0xc0) != 0x80)
      n++;
  return n;
}

int cx__utf8_sanitize(const char *s, size_t len, char **out, size_t *outlen)
{
  static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
  static const char nul[] = "\xe2\x90\x80";  /* U+2400 */
  const unsigned char *p = (const unsigned char *)s;
  /* Worst case: every byte becomes three. */
  if (len > (SIZE_MAX - 1) / 3)
    return -ENOMEM;
  char *o = cx_malloc(len * 3 + 1);
  if (o == NULL)
    return -ENOMEM;
  size_t i = 0, j = 0;
  while (i < len) {
    size_t k = p[i] == 0 ? 0 : seq_len(p + i, len - i);
    if (k > 0) {
      memcpy(o + j, p + i, k);
      j += k;
      i += k;
    } else {
      memcpy(o + j, p[i] == 0 ? nul : repl, 3);
      j += 3;
      i++;
    }
  }
  o[j] = '\0';
  *out = o;
  *outlen = j;
  return 0;
}
