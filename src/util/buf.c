/* Growable NUL-terminated byte buffer with a sticky failure flag. */
#include "util.h"

#include <stdio.h>
#include <string.h>

static int reserve(struct cx_buf *b, size_t extra)
{
  if (b->failed)
    return -1;
  if (b->len + extra + 1 <= b->cap)
    return 0;
  if (extra > SIZE_MAX / 2 - b->len) {
    b->failed = 1;
    return -1;
  }
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra + 1)
    cap *= 2;
  char *p = cx_realloc(b->data, cap);
  if (p == NULL) {
    b->failed = 1;
    return -1;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

void cx_buf_append(struct cx_buf *b, const void *data, size_t len)
{
  if (reserve(b, len) != 0)
    return;
  if (len > 0)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
}

void cx_buf_puts(struct cx_buf *b, const char *s)
{
  cx_buf_append(b, s, strlen(s));
}

void cx_buf_printf(struct cx_buf *b, const char *fmt, ...)
{
  va_list ap;
  char small[256];

  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  if ((size_t)n < sizeof small) {
    cx_buf_append(b, small, (size_t)n);
    return;
  }
  if (reserve(b, (size_t)n) != 0)
    return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void cx_buf_reset(struct cx_buf *b)
{
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

void cx_buf_free(struct cx_buf *b)
{
  cx_free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}

int cx_buf_failed(const struct cx_buf *b)
{
  return b->failed;
}

char *cx_buf_steal(struct cx_buf *b)
{
  char *p;
  if (b->failed) {
    cx_buf_free(b);
    return NULL;
  }
  if (b->data == NULL)
    return cx_strdup("");
  p = b->data;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}
