/* Shared helpers for the cron tests (see crontest.h). */
#include <stdio.h>
#include <string.h>

#include "cron/cron.h"
#include "support/test.h"
#include "unit/cron/crontest.h"

static int digits(const char *s, int n)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

int64_t ct_time(const char *s)
{
  size_t n = strlen(s);
  ASSERT_MSG(n >= 19 && s[4] == '-' && s[7] == '-' && s[10] == 'T' &&
                 s[13] == ':' && s[16] == ':',
             "bad time literal '%s'", s);
  struct cx_civil c = {0};
  c.year = digits(s, 4);
  c.month = digits(s + 5, 2);
  c.day = digits(s + 8, 2);
  c.hour = digits(s + 11, 2);
  c.min = digits(s + 14, 2);
  c.sec = digits(s + 17, 2);
  ASSERT_MSG(c.year >= 0 && c.month >= 1 && c.day >= 1 && c.hour >= 0 &&
                 c.min >= 0 && c.sec >= 0,
             "bad time literal '%s'", s);
  int64_t t = cx_civil_to_seconds(&c);
  const char *z = s + 19;
  if (*z == '\0' || strcmp(z, "Z") == 0)
    return t;
  ASSERT_MSG(*z == '+' || *z == '-', "bad offset in '%s'", s);
  int hh = digits(z + 1, 2);
  int mm = z[3] == ':' ? digits(z + 4, 2) : digits(z + 3, 2);
  ASSERT_MSG(hh >= 0 && mm >= 0, "bad offset in '%s'", s);
  int64_t off = hh * 3600 + mm * 60;
  return *z == '+' ? t - off : t + off;
}

const char *ct_utc(int64_t t)
{
  static char buf[4][32];
  static int slot;
  char *b = buf[slot++ % 4];
  struct cx_civil c;
  cx_civil_from_seconds(t, &c);
  snprintf(b, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year, c.month, c.day,
           c.hour, c.min, c.sec);
  return b;
}

int ct_next(const char *expr, const char *zone, int64_t after, int64_t *next)
{
  struct cx_cron_opts o = {zone ? zone : "UTC", 0};
  struct cx_cron *c = NULL;
  char err[CX_ERR_LEN] = "";
  int rc = cx_cron_parse(expr, &o, &c, err);
  ASSERT_MSG(rc == 0, "parse '%s' (%s): %s", expr, o.timezone, err);
  rc = cx_cron_next(c, after, next);
  cx_cron_free(c);
  return rc;
}

/* Checks one row; returns 0 or prints why and returns -1. */
static int run_row(const struct cron_row *r, int64_t anchor)
{
  struct cx_cron_opts o = {r->zone ? r->zone : "UTC", anchor};
  struct cx_cron *c = NULL;
  char err[CX_ERR_LEN] = "";
  int rc = cx_cron_parse(r->expr, &o, &c, err);
  if (rc != 0) {
    printf("  '%s' [%s]: parse failed: %s\n", r->expr, o.timezone, err);
    return -1;
  }
  int64_t t = ct_time(r->start);
  const char *p = r->expected;
  int ok = 0, i = 0;
  for (;;) {
    char one[40];
    size_t len = strcspn(p, ",");
    if (len >= sizeof one) {
      printf("  '%s': bad expected literal\n", r->expr);
      ok = -1;
      break;
    }
    memcpy(one, p, len);
    one[len] = '\0';
    int64_t next = 0;
    rc = cx_cron_next(c, t, &next);
    if (strcmp(one, "NONE") == 0) {
      if (rc != CX_ENEVER) {
        printf("  '%s' [%s] from %s: expected NONE, got rc=%d %s (%s)\n",
               r->expr, o.timezone, r->start, rc, ct_utc(next), r->source);
        ok = -1;
      }
      break;
    }
    int64_t want = ct_time(one);
    if (rc != 0 || next != want) {
      printf("  '%s' [%s] from %s fire %d: expected %s (%s), got rc=%d %s "
             "(%s)\n",
             r->expr, o.timezone, r->start, i + 1, one, ct_utc(want), rc,
             rc == 0 ? ct_utc(next) : "-", r->source);
      ok = -1;
      break;
    }
    t = next;
    i++;
    p += len;
    if (*p == '\0')
      break;
    p++;
  }
  cx_cron_free(c);
  return ok;
}

void ct_run_rows(const struct cron_row *rows, int n, int64_t anchor)
{
  int failed = 0;
  for (int i = 0; i < n; i++)
    if (run_row(&rows[i], anchor) != 0)
      failed++;
  ASSERT_MSG(failed == 0, "%d of %d rows failed (listed above)", failed, n);
}
