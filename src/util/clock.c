/* Clocks, monotonic condition-variable waits and proleptic Gregorian
 * calendar arithmetic. */
#include "util.h"

#include <errno.h>
#include <time.h>

cx_mono cx_mono_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cx_wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cx_wall_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec;
}

void cx_sleep_us(int64_t us)
{
  struct timespec ts;
  if (us <= 0)
    return;
  ts.tv_sec = us / 1000000;
  ts.tv_nsec = (long)(us % 1000000) * 1000;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

int cx_cond_init_mono(pthread_cond_t *cv)
{
  pthread_condattr_t ca;
  int rc = pthread_condattr_init(&ca);
  if (rc != 0)
    return -rc;
  rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  if (rc == 0)
    rc = pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
  return -rc;
}

void cx_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, cx_mono until)
{
  struct timespec ts;
  if (until < 0)
    until = 0;
  ts.tv_sec = (time_t)(until / 1000000);
  ts.tv_nsec = (long)(until % 1000000) * 1000;
  pthread_cond_timedwait(cv, mu, &ts);
}

void cx_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
  cx_mono now = cx_mono_now();
  if (ms < 0)
    ms = 0;
  if (ms > (INT64_MAX - now) / 1000) /* clamp, as a far deadline */
    ms = (INT64_MAX - now) / 1000;
  cx_cond_wait_until(cv, mu, now + ms * 1000);
}

int cx_is_leap_year(int y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int cx_days_in_month(int y, int m)
{
  static const unsigned char days[12] = {31, 28, 31, 30, 31, 30,
                                         31, 31, 30, 31, 30, 31};
  if (m == 2)
    return cx_is_leap_year(y) ? 29 : 28;
  return days[m - 1];
}

/* Howard Hinnant's days_from_civil: exact for all years, no loops. */
int64_t cx_days_from_civil(int year, int month, int day)
{
  int64_t y = (int64_t)year - (month <= 2);
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t mp = (month + 9) % 12;
  int64_t doy = (153 * mp + 2) / 5 + day - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int64_t floor_div(int64_t a, int64_t b)
{
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

void cx_civil_from_seconds(int64_t s, struct cx_civil *out)
{
  int64_t days = floor_div(s, 86400);
  int64_t rem = s - days * 86400;
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  int64_t y = yoe + era * 400 + (m <= 2);

  out->year = (int)y;
  out->month = (int)m;
  out->day = (int)d;
  out->hour = (int)(rem / 3600);
  out->min = (int)(rem / 60 % 60);
  out->sec = (int)(rem % 60);
  out->wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
}

int64_t cx_civil_to_seconds(const struct cx_civil *c)
{
  return cx_days_from_civil(c->year, c->month, c->day) * 86400 +
         (int64_t)c->hour * 3600 + (int64_t)c->min * 60 + c->sec;
}
