/*
 * libFuzzer target: store URLs and the run-output sanitizer. The input
 * (cut at the first NUL) is parsed as a store URL, on its own or after a
 * mysql:// prefix holding a known password: a rejection must come with a
 * message, which never contains that password; an acceptance must give a
 * scheme-consistent result; the redacted form never contains the password
 * either. The raw bytes are then sanitized:
 * the result must be valid UTF-8 of the expected length bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store-int.h"

/* What the store keeps as text: valid UTF-8 without NUL bytes. */
static int text_ok(const char *s, size_t n)
{
  return memchr(s, 0, n) == NULL && cx_utf8_valid(s, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MARKER "Pw9-MARK-xq"

/* Occurrences of MARKER in s. */
static int marks(const char *s)
{
  int n = 0;
  for (const char *p = strstr(s, MARKER); p; p = strstr(p + 1, MARKER))
    n++;
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char buf[4300], red[4400];
  char err[CX_ERR_LEN] = "";
  struct cx__url u;
  size_t n = size < 4096 ? size : 4096;
  /* Odd first byte: the input is the whole URL. Even: it follows a
   * mysql:// prefix holding a known password, which must never show up
   * in a message or in the redacted URL more often than the input
   * itself has it. */
  size_t pre = 0;
  if (n > 0 && (data[0] & 1) == 0) {
    static const char prefix[] = "mysql://user:" MARKER "@";
    pre = sizeof prefix - 1;
    memcpy(buf, prefix, pre);
    n--;
  }
  memcpy(buf + pre, data + (pre > 0), n);
  buf[pre + n] = '\0';
  int own = marks(buf + pre);
  int rc = cx__url_parse(buf, &u, err);
  if (rc != 0) {
    if (err[0] == '\0')
      abort();
    if (pre > 0 && marks(err) > own)
      abort();
  } else {
    if (u.scheme == CX__SQLITE && (u.path == NULL || u.path[0] == '\0'))
      abort();
    if (u.scheme == CX__MYSQL &&
        (u.host == NULL || u.db == NULL || u.port < 1 || u.port > 65535))
      abort();
    cx__url_free(&u);
  }
  cx_store_url_redact(buf, red, sizeof red);
  if (pre > 0 && marks(red) > own)
    abort();

  char *out = NULL;
  size_t outlen = 0;
  if (cx__utf8_sanitize((const char *)data, size, &out, &outlen) == 0) {
    if (!text_ok(out, outlen) || outlen < size || outlen > 3 * size)
      abort();
    if (text_ok((const char *)data, size) &&
        (outlen != size || memcmp(out, data, size) != 0))
      abort();
    cx_free(out);
  }
  return 0;
}
