/*
 * cron/tz: the TZif reader, POSIX TZ footers, periods, zone lookup and
 * RFC 3339, checked against glibc as the oracle.
 *
 * Each test runs in its own forked, single-threaded process, so setting
 * TZ / TZDIR and calling tzset() and localtime_r here is safe; the library
 * itself never does either.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cron/cron.h"
#include "support/test.h"

#define HOUR 3600
#define DAY 86400

/* ---- helpers ------------------------------------------------------------ */

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
  return cx_days_from_civil(y, mo, d) * DAY + h * HOUR + mi * 60 + s;
}

static const struct cx_tz *zone(const char *name)
{
  const struct cx_tz *z = NULL;
  char err[CX_ERR_LEN] = "";
  int rc = cx_tz_get(name, &z, err);
  ASSERT_MSG(rc == 0 && z != NULL, "cx_tz_get(%s): %d %s", name, rc, err);
  return z;
}

static void glibc_zone(const char *tz)
{
  ASSERT_EQ(setenv("TZ", tz, 1), 0);
  tzset();
}

static void glibc_at(int64_t t, struct tm *tm)
{
  time_t tt = (time_t)t;
  ASSERT(localtime_r(&tt, tm) != NULL);
}

static long glibc_off(int64_t t)
{
  struct tm tm;
  glibc_at(t, &tm);
  return tm.tm_gmtoff;
}

/* Compares zone z with glibc (already set to the same zone) on [from, to):
 *  - offset, abbreviation and isdst every 6 hours;
 *  - every period: contains its probe instant, has the probe's offset,
 *    and its ends are real offset changes in glibc (checked at b-1 and b);
 *  - every offset change glibc shows between two samples lies inside the
 *    sampled step, i.e. the period of the later sample starts after the
 *    earlier sample (no change is missed). */
static void compare_with_glibc(const struct cx_tz *z, int64_t from, int64_t to)
{
  struct tm tm;
  long prev = glibc_off(from);
  for (int64_t t = from; t < to; t += 6 * HOUR) {
    struct cx_tz_period p;
    glibc_at(t, &tm);
    cx_tz_period_at(z, t, &p);
    ASSERT_MSG(cx_tz_offset(z, t) == tm.tm_gmtoff,
               "%s at %lld: offset %d, glibc %ld", cx_tz_name(z), (long long)t,
               (int)cx_tz_offset(z, t), tm.tm_gmtoff);
    ASSERT_EQ(p.offset, tm.tm_gmtoff);
    ASSERT_EQ(p.is_dst, tm.tm_isdst);
    ASSERT_MSG(strcmp(p.abbr, tm.tm_zone) == 0, "%s at %lld: abbr %s vs %s",
               cx_tz_name(z), (long long)t, p.abbr, tm.tm_zone);
    ASSERT(p.start <= t && t < p.end);
    if (tm.tm_gmtoff != prev)
      ASSERT_MSG(p.start > t - 6 * HOUR, "%s: change before %lld missed",
                 cx_tz_name(z), (long long)t);
    prev = tm.tm_gmtoff;
  }
  for (int64_t t = from; t < to;) {
    struct cx_tz_period p;
    cx_tz_period_at(z, t, &p);
    ASSERT(p.start <= t && t < p.end);
    ASSERT_EQ(p.offset, glibc_off(t));
    if (p.start != INT64_MIN && p.start > from) {
      ASSERT_EQ(glibc_off(p.start), p.offset);
      ASSERT_MSG(glibc_off(p.start - 1) != p.offset,
                 "%s: period start %lld is not an offset change", cx_tz_name(z),
                 (long long)p.start);
    }
    if (p.end == INT64_MAX)
      break;
    ASSERT_EQ(glibc_off(p.end - 1), p.offset);
    ASSERT_MSG(glibc_off(p.end) != p.offset,
               "%s: period end %lld is not an offset change", cx_tz_name(z),
               (long long)p.end);
    t = p.end;
  }
}

static void oracle(const char *name)
{
  const struct cx_tz *z = zone(name);
  ASSERT_STREQ(cx_tz_name(z), name);
  glibc_zone(name);
  compare_with_glibc(z, utc(1970, 1, 1, 0, 0, 0), utc(2037, 12, 31, 0, 0, 0));
}

/* ---- glibc oracle, 1970..2037 ------------------------------------------ */

TEST(tz_matches_glibc_new_york)
{
  oracle("America/New_York");
}

TEST(tz_matches_glibc_london)
{
  oracle("Europe/London");
}

TEST(tz_matches_glibc_lord_howe)
{
  oracle("Australia/Lord_Howe");
}

TEST(tz_matches_glibc_sao_paulo)
{
  oracle("America/Sao_Paulo");
}

TEST(tz_matches_glibc_kolkata)
{
  oracle("Asia/Kolkata");
}

TEST(tz_matches_glibc_chatham)
{
  oracle("Pacific/Chatham");
}

TEST(tz_matches_glibc_dublin_negative_dst)
{
  oracle("Europe/Dublin");
}

TEST(tz_matches_glibc_casablanca)
{
  oracle("Africa/Casablanca");
}

TEST(tz_matches_glibc_apia)
{
  oracle("Pacific/Apia");
}

TEST(tz_matches_glibc_tehran)
{
  oracle("Asia/Tehran");
}

TEST(tz_matches_glibc_st_johns)
{
  oracle("America/St_Johns");
}

TEST(tz_matches_glibc_utc)
{
  oracle("UTC");
}
