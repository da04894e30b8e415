/*
 * Random bytes and tokens from one source, the kernel's getrandom(2): the
 * same entropy for node ids, tokens, passwords and message ids, and one
 * place that handles short reads and EINTR.
 */
#include "util.h"

#include <errno.h>
#include <sys/random.h>

int cx_random_bytes(void *buf, size_t n)
{
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom((char *)buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    got += (size_t)r;
  }
  return 0;
}

void cx_hex(const void *in, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  const unsigned char *p = in;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

int cx_random_hex(char *out, size_t nbytes)
{
  unsigned char b[64];
  if (nbytes > sizeof b)
    return -EINVAL;
  int rc = cx_random_bytes(b, nbytes);
  if (rc == 0)
    cx_hex(b, nbytes, out);
  return rc;
}
