/*
 * store: the sanitizer for run output (see store.h: invalid sequences
 * become U+FFFD, NUL becomes U+2400, identically on every back-end). The
 * UTF-8 rule itself is util's.
 */
#include "store/store-int.h"

#include <errno.h>
#include <string.h>

int cx__utf8_sanitize(const char *s, size_t len, char **out, size_t *outlen)
{
  struct cx_buf b = {0};
  size_t i = 0;
  while (i < len) {
    const char *nul = memchr(s + i, 0, len - i);
    size_t end = nul ? (size_t)(nul - s) : len;
    cx_utf8_clean(&b, s + i, end - i, CX_UTF8_REPL, SIZE_MAX);
    if (nul != NULL)
      cx_buf_puts(&b, "\xe2\x90\x80"); /* U+2400 */
    i = nul ? end + 1 : end;
  }
  cx_buf_append(&b, "", 0);
  if (cx_buf_failed(&b)) {
    cx_buf_free(&b);
    return -ENOMEM;
  }
  *outlen = b.len;
  *out = cx_buf_steal(&b);
  return 0;
}
