/* Error codes: text and names for Cronix codes and -errno values. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *cx_strerror(int err)
{
  switch (err) {
  case 0:
    return "success";
#define CX__ERR_TEXT(name, code, msg)                                          \
  case code:                                                                   \
    return msg;
    CX_ERRNO_MAP(CX__ERR_TEXT)
#undef CX__ERR_TEXT
  default:
    break;
  }
  if (err < 0 && err > -4000)
    return strerror(-err); /* glibc's table is static and thread-safe */
  return "unknown error";
}

const char *cx_err_name(int err)
{
  switch (err) {
  case 0:
    return "OK";
#define CX__ERR_NAME(name, code, msg)                                          \
  case code:                                                                   \
    return "CX_E" #name;
    CX_ERRNO_MAP(CX__ERR_NAME)
#undef CX__ERR_NAME
  default:
    break;
  }
  if (err < 0 && err > -4000) {
    const char *n = strerrorname_np(-err);
    if (n != NULL)
      return n;
  }
  return "UNKNOWN";
}

void cx_err_set(char *err, const char *fmt, ...)
{
  va_list ap;

  if (err == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(err, CX_ERR_LEN, fmt, ap);
  va_end(ap);
}

int cx_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
  int neg = 0;
  uint64_t v = 0;
  const char *p = s;

  if (s == NULL || *p == '\0')
    return CX_EPARSE;
  if (*p == '-' || *p == '+') {
    neg = *p == '-';
    p++;
  }
  if (*p == '\0')
    return CX_EPARSE;
  for (; *p; p++) {
    if (*p < '0' || *p > '9')
      return CX_EPARSE;
    if (v > (UINT64_MAX - 9) / 10)
      return CX_EPARSE;
    v = v * 10 + (uint64_t)(*p - '0');
    if (v > (uint64_t)INT64_MAX + 1)
      return CX_EPARSE;
  }
  int64_t r;
  if (neg)
    r = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
  else if (v > (uint64_t)INT64_MAX)
    return CX_EPARSE;
  else
    r = (int64_t)v;
  if (r < min || r > max)
    return CX_EPARSE;
  *out = r;
  return 0;
}
