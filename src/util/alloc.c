/*
 * Allocation wrappers. Tests call cx_alloc_fail_after(n) to make the nth
 * allocation from then on fail, the way curl's torture mode and SQLite's
 * OOM tests walk every failure path.
 */
#include "util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown; /* 0 = never fail */

void cx_alloc_fail_after(long n)
{
  atomic_store(&fail_countdown, n);
}

static int should_fail(void)
{
  long v = atomic_load(&fail_countdown);
  while (v > 0) {
    if (v == 1)
      return 1; /* stays at 1: every later allocation fails too */
    if (atomic_compare_exchange_weak(&fail_countdown, &v, v - 1))
      return 0;
  }
  return 0;
}

void *cx_malloc(size_t n)
{
  if (should_fail())
    return NULL;
  return malloc(n == 0 ? 1 : n);
}

void *cx_calloc(size_t count, size_t size)
{
  if (should_fail())
    return NULL;
  if (count == 0 || size == 0)
    count = size = 1;
  return calloc(count, size);
}

void *cx_realloc(void *p, size_t n)
{
  if (should_fail())
    return NULL;
  return realloc(p, n == 0 ? 1 : n);
}

void cx_free(void *p)
{
  free(p);
}

char *cx_strndup(const char *s, size_t n)
{
  size_t len = strnlen(s, n);
  char *d = cx_malloc(len + 1);
  if (d == NULL)
    return NULL;
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

char *cx_strdup(const char *s)
{
  return cx_strndup(s, strlen(s));
}
