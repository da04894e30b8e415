/* Placeholder until the tz database reader lands: UTC only. */
#include <stdio.h>
#include <string.h>

#include "cron/cron.h"

struct cx_tz {
  char name[8];
};

static const struct cx_tz utc = {"UTC"};

int cx_tz_get(const char *name, const struct cx_tz **out, char *err)
{
  if (name == NULL || name[0] == '\0' || strcmp(name, "UTC") == 0) {
    *out = &utc;
    return 0;
  }
  cx_err_set(err, "time zone '%s' not available yet", name);
  return CX_ENOTFOUND;
}

const char *cx_tz_name(const struct cx_tz *tz)
{
  return tz->name;
}

void cx_tz_period_at(const struct cx_tz *tz, int64_t t,
                     struct cx_tz_period *out)
{
  (void)tz;
  (void)t;
  memset(out, 0, sizeof *out);
  out->start = INT64_MIN;
  out->end = INT64_MAX;
  snprintf(out->abbr, sizeof out->abbr, "UTC");
}

int32_t cx_tz_offset(const struct cx_tz *tz, int64_t t)
{
  (void)tz;
  (void)t;
  return 0;
}

int cx_tz_set_default(const char *name, char *err)
{
  const struct cx_tz *tz;
  return cx_tz_get(name, &tz, err);
}

void cx_tz_cleanup(void)
{
}

size_t cx_time_format(int64_t t, const struct cx_tz *tz, char *buf, size_t len)
{
  struct cx_civil c;
  int32_t off = tz ? cx_tz_offset(tz, t) : 0;
  cx_civil_from_seconds(t + off, &c);
  int n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
                   c.year, c.month, c.day, c.hour, c.min, c.sec,
                   off < 0 ? '-' : '+', (off < 0 ? -off : off) / 3600,
                   (off < 0 ? -off : off) / 60 % 60);
  return n < 0 ? 0 : (size_t)n;
}

int cx_time_parse(const char *s, int64_t *t)
{
  (void)s;
  (void)t;
  return CX_EPARSE;
}
