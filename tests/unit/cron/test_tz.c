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
#include <ftw.h>
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
static void compare_step(const struct cx_tz *z, int64_t from, int64_t to,
                         int64_t step)
{
  struct tm tm;
  long prev = glibc_off(from);
  for (int64_t t = from; t < to; t += step) {
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
      ASSERT_MSG(p.start > t - step, "%s: change before %lld missed",
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

static void compare_with_glibc(const struct cx_tz *z, int64_t from, int64_t to)
{
  compare_step(z, from, to, 6 * HOUR);
}

static void oracle(const char *name)
{
  const struct cx_tz *z = zone(name);
  ASSERT_STREQ(cx_tz_name(z), name);
  glibc_zone(name);
  compare_with_glibc(z, utc(1970, 1, 1, 0, 0, 0), utc(2037, 12, 31, 0, 0, 0));
}

/* ---- glibc oracle, 1970..2037 ------------------------------------------ */

TEST(cron_tz_matches_glibc_new_york)
{
  oracle("America/New_York");
}

TEST(cron_tz_matches_glibc_london)
{
  oracle("Europe/London");
}

TEST(cron_tz_matches_glibc_lord_howe)
{
  oracle("Australia/Lord_Howe");
}

TEST(cron_tz_matches_glibc_sao_paulo)
{
  oracle("America/Sao_Paulo");
}

TEST(cron_tz_matches_glibc_kolkata)
{
  oracle("Asia/Kolkata");
}

TEST(cron_tz_matches_glibc_chatham)
{
  oracle("Pacific/Chatham");
}

TEST(cron_tz_matches_glibc_dublin_negative_dst)
{
  oracle("Europe/Dublin");
}

TEST(cron_tz_matches_glibc_casablanca)
{
  oracle("Africa/Casablanca");
}

TEST(cron_tz_matches_glibc_apia)
{
  oracle("Pacific/Apia");
}

TEST(cron_tz_matches_glibc_tehran)
{
  oracle("Asia/Tehran");
}

TEST(cron_tz_matches_glibc_st_johns)
{
  oracle("America/St_Johns");
}

TEST(cron_tz_matches_glibc_utc)
{
  oracle("UTC");
}

/* ---- specific facts ---------------------------------------------------- */

/* Day number of the first Sunday of a month (computed by hand, not by the
 * code under test). */
static int64_t first_sunday(int y, int m)
{
  int64_t d = cx_days_from_civil(y, m, 1);
  int wday = (int)(((d % 7) + 11) % 7);
  return d + (7 - wday) % 7;
}

static struct cx_tz_period period(const char *name, int64_t t)
{
  struct cx_tz_period p;
  cx_tz_period_at(zone(name), t, &p);
  return p;
}

TEST(cron_tz_new_york_2026_edt_period_is_exact)
{
  int64_t on = utc(2026, 3, 8, 7, 0, 0), off = utc(2026, 11, 1, 6, 0, 0);
  struct cx_tz_period p = period("America/New_York", on);
  ASSERT_EQ(p.start, on);
  ASSERT_EQ(p.end, off);
  ASSERT_EQ(p.offset, -4 * HOUR);
  ASSERT_EQ(p.is_dst, 1);
  ASSERT_STREQ(p.abbr, "EDT");
  p = period("America/New_York", off - 1);
  ASSERT_EQ(p.start, on);
  ASSERT_EQ(p.end, off);
}

TEST(cron_tz_new_york_2026_est_periods_end_and_start_at_the_shifts)
{
  int64_t on = utc(2026, 3, 8, 7, 0, 0), off = utc(2026, 11, 1, 6, 0, 0);
  struct cx_tz_period before = period("America/New_York", on - 1);
  struct cx_tz_period after = period("America/New_York", off);
  ASSERT_EQ(before.end, on);
  ASSERT_EQ(before.offset, -5 * HOUR);
  ASSERT_STREQ(before.abbr, "EST");
  ASSERT_EQ(before.is_dst, 0);
  ASSERT_EQ(after.start, off);
  ASSERT_EQ(after.offset, -5 * HOUR);
  ASSERT_EQ(after.end, utc(2027, 3, 14, 7, 0, 0));
}

TEST(cron_tz_lord_howe_shifts_by_thirty_minutes)
{
  /* DST (+11) ends 2026-04-05 02:00 local, starts 2026-10-04 02:00 (+10:30)
   */
  int64_t end = utc(2026, 4, 4, 15, 0, 0), start = utc(2026, 10, 3, 15, 30, 0);
  struct cx_tz_period p = period("Australia/Lord_Howe", end);
  ASSERT_EQ(p.start, end);
  ASSERT_EQ(p.end, start);
  ASSERT_EQ(p.offset, 10 * HOUR + 1800);
  ASSERT_EQ(cx_tz_offset(zone("Australia/Lord_Howe"), end - 1), 11 * HOUR);
  ASSERT_EQ(cx_tz_offset(zone("Australia/Lord_Howe"), start), 11 * HOUR);
}

TEST(cron_tz_sao_paulo_2018_midnight_jump)
{
  /* 2018-11-04 00:00 -03 became 01:00 -02: 03:00Z. */
  int64_t jump = utc(2018, 11, 4, 3, 0, 0);
  struct cx_tz_period p = period("America/Sao_Paulo", jump);
  ASSERT_EQ(p.start, jump);
  ASSERT_EQ(p.offset, -2 * HOUR);
  ASSERT_EQ(cx_tz_offset(zone("America/Sao_Paulo"), jump - 1), -3 * HOUR);
}

TEST(cron_tz_sao_paulo_after_2019_is_one_endless_period)
{
  /* DST was abolished; the last change (2019-02-17 00:00 -02 -> 23:00 -03
   * the day before) starts a period that never ends (footer "<-03>3"). */
  struct cx_tz_period p = period("America/Sao_Paulo", utc(2040, 1, 1, 0, 0, 0));
  ASSERT_EQ(p.start, utc(2019, 2, 17, 2, 0, 0));
  ASSERT_EQ(p.end, INT64_MAX);
  ASSERT_EQ(p.offset, -3 * HOUR);
  ASSERT_STREQ(p.abbr, "-03");
}

TEST(cron_tz_new_york_2060_follows_the_footer_rule)
{
  /* Second Sunday of March 02:00 EST to first Sunday of November 02:00
   * EDT, computed by hand. */
  int64_t on = (first_sunday(2060, 3) + 7) * DAY + 7 * HOUR;
  int64_t off = first_sunday(2060, 11) * DAY + 6 * HOUR;
  struct cx_tz_period p = period("America/New_York", utc(2060, 7, 4, 12, 0, 0));
  ASSERT_EQ(p.start, on);
  ASSERT_EQ(p.end, off);
  ASSERT_EQ(p.offset, -4 * HOUR);
  ASSERT_STREQ(p.abbr, "EDT");
  p = period("America/New_York", on - 1);
  ASSERT_EQ(p.end, on);
  ASSERT_EQ(p.offset, -5 * HOUR);
  ASSERT_EQ(p.start, first_sunday(2059, 11) * DAY + 6 * HOUR);
}

TEST(cron_tz_sydney_2050_dst_spans_the_year_end)
{
  /* AEST-10AEDT,M10.1.0,M4.1.0/3: DST from the first Sunday of October
   * 02:00 AEST to the first Sunday of April 03:00 AEDT (16:00Z the day
   * before, both). */
  int64_t on = first_sunday(2049, 10) * DAY - 8 * HOUR;
  int64_t off = first_sunday(2050, 4) * DAY - 8 * HOUR;
  struct cx_tz_period p = period("Australia/Sydney", utc(2050, 1, 15, 0, 0, 0));
  ASSERT_EQ(p.start, on);
  ASSERT_EQ(p.end, off);
  ASSERT_EQ(p.offset, 11 * HOUR);
  ASSERT_EQ(p.is_dst, 1);
  ASSERT_STREQ(p.abbr, "AEDT");
}

TEST(cron_tz_dublin_winter_is_negative_dst)
{
  struct cx_tz_period w = period("Europe/Dublin", utc(2055, 1, 10, 0, 0, 0));
  struct cx_tz_period s = period("Europe/Dublin", utc(2055, 7, 10, 0, 0, 0));
  ASSERT_EQ(w.offset, 0);
  ASSERT_EQ(w.is_dst, 1);
  ASSERT_STREQ(w.abbr, "GMT");
  ASSERT_EQ(s.offset, HOUR);
  ASSERT_EQ(s.is_dst, 0);
  ASSERT_STREQ(s.abbr, "IST");
  ASSERT_EQ(w.end, s.start); /* last Sunday of March, 01:00Z */
  ASSERT_EQ(s.start, (first_sunday(2055, 4) - 7) * DAY + HOUR);
}

TEST(cron_tz_abbreviation_only_change_is_not_a_boundary)
{
  /* London 1968-10-27: BST turned from DST into standard time, both +1. */
  int64_t flip = utc(1968, 10, 26, 23, 0, 0);
  struct cx_tz_period a = period("Europe/London", flip - 1);
  struct cx_tz_period b = period("Europe/London", flip);
  ASSERT_EQ(a.is_dst, 1);
  ASSERT_EQ(b.is_dst, 0);
  ASSERT_EQ(a.start, utc(1968, 2, 18, 2, 0, 0));
  ASSERT_EQ(a.start, b.start);
  ASSERT_EQ(a.end, b.end);
  ASSERT_EQ(b.end, utc(1971, 10, 31, 2, 0, 0));
}

TEST(cron_tz_apia_skips_december_30_2011)
{
  int64_t jump = utc(2011, 12, 30, 10, 0, 0);
  struct cx_tz_period p = period("Pacific/Apia", jump);
  ASSERT_EQ(p.start, jump);
  ASSERT_EQ(p.offset, 14 * HOUR);
  ASSERT_EQ(cx_tz_offset(zone("Pacific/Apia"), jump - 1), -10 * HOUR);
}

/* ---- glibc oracle past the tables (the footer) -------------------------- */

static void oracle_future(const char *name)
{
  const struct cx_tz *z = zone(name);
  glibc_zone(name);
  compare_with_glibc(z, utc(2036, 1, 1, 0, 0, 0), utc(2100, 1, 1, 0, 0, 0));
}

TEST(cron_tz_footer_matches_glibc_to_2100)
{
  /* glibc 2.36 applies the same footer; the New York 2060 and Sydney 2050
   * tests above check it against hand-computed rules. */
  static const char *zones[] = {
      "America/New_York",  "Europe/London",    "Australia/Lord_Howe",
      "Australia/Sydney",  "Pacific/Chatham",  "Europe/Dublin",
      "Africa/Casablanca", "America/St_Johns", "America/Sao_Paulo",
      "Asia/Tehran",       "America/Nuuk",     "America/Santiago",
      "Pacific/Auckland",  "Europe/Berlin",    "Asia/Kolkata",
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(zones); i++)
    oracle_future(zones[i]);
}

TEST(cron_tz_footer_matches_glibc_across_the_precomputed_span)
{
  /* Footer transitions are precomputed up to 2300 and evaluated lazily
   * after that: both sides of the seam, and the seam itself, must agree. */
  static const char *zones[] = {"America/New_York", "Australia/Sydney",
                                "Europe/Dublin", "Australia/Lord_Howe"};
  for (size_t i = 0; i < CX_ARRAY_LEN(zones); i++) {
    const struct cx_tz *z = zone(zones[i]);
    glibc_zone(zones[i]);
    compare_with_glibc(z, utc(2290, 1, 1, 0, 0, 0), utc(2320, 1, 1, 0, 0, 0));
    compare_step(z, utc(2320, 1, 1, 0, 0, 0), utc(3000, 1, 1, 0, 0, 0),
                 3 * DAY + 5 * HOUR);
  }
}

/* ---- footers built by hand, with glibc reading the same TZ string ------ */

/* Writes a TZif file (version `ver`, '2'..'4' or 0) with the given
 * transitions, types and footer; returns its length in buf. Types are
 * {offset, isdst} with abbreviations "A0", "A1", ... */
struct tzb_type {
  int32_t off;
  int dst;
};

static void put32(unsigned char **p, uint32_t v)
{
  (*p)[0] = (unsigned char)(v >> 24);
  (*p)[1] = (unsigned char)(v >> 16);
  (*p)[2] = (unsigned char)(v >> 8);
  (*p)[3] = (unsigned char)v;
  *p += 4;
}

static void put_block(unsigned char **p, int tsz, const int64_t *times,
                      const unsigned char *idx, int n,
                      const struct tzb_type *types, int ntypes)
{
  for (int i = 0; i < n; i++) {
    if (tsz == 8)
      put32(p, (uint32_t)((uint64_t)times[i] >> 32));
    put32(p, (uint32_t)times[i]);
  }
  for (int i = 0; i < n; i++)
    *(*p)++ = idx[i];
  for (int i = 0; i < ntypes; i++) {
    put32(p, (uint32_t)types[i].off);
    *(*p)++ = (unsigned char)types[i].dst;
    *(*p)++ = (unsigned char)(i * 3);
  }
  for (int i = 0; i < ntypes; i++) {
    *(*p)++ = 'A';
    *(*p)++ = (unsigned char)('0' + i);
    *(*p)++ = 0;
  }
}

static void put_header(unsigned char **p, int ver, int n, int ntypes)
{
  memcpy(*p, "TZif", 4);
  (*p)[4] = (unsigned char)ver;
  memset(*p + 5, 0, 15);
  *p += 20;
  put32(p, 0);           /* isutcnt */
  put32(p, 0);           /* isstdcnt */
  put32(p, 0);           /* leapcnt */
  put32(p, (uint32_t)n); /* timecnt */
  put32(p, (uint32_t)ntypes);
  put32(p, (uint32_t)ntypes * 3); /* charcnt */
}

static size_t tzif_build(unsigned char *buf, int ver, const int64_t *times,
                         const unsigned char *idx, int n,
                         const struct tzb_type *types, int ntypes,
                         const char *footer)
{
  unsigned char *p = buf;
  put_header(&p, ver, n, ntypes);
  put_block(&p, 4, times, idx, n, types, ntypes);
  if (ver == 0)
    return (size_t)(p - buf);
  put_header(&p, ver, n, ntypes);
  put_block(&p, 8, times, idx, n, types, ntypes);
  *p++ = '\n';
  memcpy(p, footer, strlen(footer));
  p += strlen(footer);
  *p++ = '\n';
  return (size_t)(p - buf);
}

/* Writes bytes as zone `name` under a fresh TZDIR (the test's tmpdir). */
static void write_zone(const char *name, const void *data, size_t len)
{
  char path[1024];
  ASSERT_EQ(setenv("TZDIR", cx_test_tmpdir(), 1), 0);
  snprintf(path, sizeof path, "%s/%s", cx_test_tmpdir(), name);
  char *slash = strrchr(path, '/');
  if (slash > path + strlen(cx_test_tmpdir())) {
    *slash = '\0';
    mkdir(path, 0700);
    *slash = '/';
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT(fd >= 0);
  ASSERT_EQ(write(fd, data, len), (ssize_t)len);
  close(fd);
}

/* A zone with no transitions whose footer is `rule`, compared with glibc
 * reading `rule` as TZ, 1970..2100. */
static void footer_oracle(const char *rule, int32_t std_off)
{
  unsigned char buf[512];
  struct tzb_type t0 = {std_off, 0};
  size_t len = tzif_build(buf, '3', NULL, NULL, 0, &t0, 1, rule);
  write_zone("Test/Rule", buf, len);
  const struct cx_tz *z = zone("Test/Rule");
  glibc_zone(rule);
  struct tm tm;
  for (int64_t t = utc(1970, 1, 1, 0, 0, 0); t < utc(2100, 1, 1, 0, 0, 0);
       t += 6 * HOUR) {
    glibc_at(t, &tm);
    ASSERT_MSG(cx_tz_offset(z, t) == tm.tm_gmtoff,
               "%s at %lld: offset %d, glibc %ld", rule, (long long)t,
               (int)cx_tz_offset(z, t), tm.tm_gmtoff);
  }
  compare_with_glibc(z, utc(1970, 1, 1, 0, 0, 0), utc(2100, 1, 1, 0, 0, 0));
}

TEST(cron_tz_footer_us_rule)
{
  footer_oracle("EST5EDT,M3.2.0,M11.1.0", -5 * HOUR);
}

TEST(cron_tz_footer_quoted_names_and_half_hours)
{
  footer_oracle("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", 10 * HOUR + 1800);
}

TEST(cron_tz_footer_without_dst)
{
  footer_oracle("<-03>3", -3 * HOUR);
}

TEST(cron_tz_footer_southern_rule_with_time)
{
  footer_oracle("AEST-10AEDT,M10.1.0,M4.1.0/3", 10 * HOUR);
}

TEST(cron_tz_footer_negative_dst)
{
  footer_oracle("IST-1GMT0,M10.5.0,M3.5.0/1", HOUR);
}

TEST(cron_tz_footer_julian_day_forms)
{
  footer_oracle("XXX3YYY,J60/2,J300/1:30", -3 * HOUR);
}

TEST(cron_tz_footer_zero_based_day_forms)
{
  footer_oracle("XXX3YYY,59/2,299/2", -3 * HOUR);
}

TEST(cron_tz_footer_negative_rule_time)
{
  footer_oracle("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", -2 * HOUR);
}

TEST(cron_tz_footer_dst_all_year)
{
  /* zic's encoding of permanent DST (RFC 8536 3.3.1): DST ends each year
   * exactly when it starts the next, so it is one period forever. glibc
   * gets the hour around each new year wrong here (it evaluates one year at
   * a time), so this is checked against the RFC instead. */
  unsigned char buf[512];
  struct tzb_type t0 = {-5 * HOUR, 0};
  size_t len =
      tzif_build(buf, '3', NULL, NULL, 0, &t0, 1, "EST5EDT4,0/0,J365/25");
  write_zone("Test/Rule", buf, len);
  const struct cx_tz *z = zone("Test/Rule");
  for (int64_t t = utc(1970, 1, 1, 0, 0, 0); t < utc(2100, 1, 1, 0, 0, 0);
       t += HOUR) {
    struct cx_tz_period p;
    cx_tz_period_at(z, t, &p);
    ASSERT_EQ(p.offset, -4 * HOUR);
    ASSERT_EQ(p.is_dst, 1);
    ASSERT_STREQ(p.abbr, "EDT");
    ASSERT_EQ(p.start, INT64_MIN);
    ASSERT_EQ(p.end, INT64_MAX);
  }
}

TEST(cron_tz_footer_extreme_rule_hours)
{
  footer_oracle("<-0330>3:30<-0230>2:30,M1.1.0/167,M12.5.6/-167",
                -3 * HOUR - 1800);
}

/* ---- hostile files ----------------------------------------------------- */

/* A valid v2 file: New York-like, two transitions and a footer. */
static size_t sample_zone(unsigned char *buf)
{
  static const int64_t times[] = {1772953200, 1793512800};
  static const unsigned char idx[] = {1, 0};
  static const struct tzb_type types[] = {{-5 * HOUR, 0}, {-4 * HOUR, 1}};
  return tzif_build(buf, '2', times, idx, 2, types, 2,
                    "EST5EDT,M3.2.0,M11.1.0");
}

/* Loads bytes as a zone; expects CX_EPARSE with a message naming it. */
static void expect_corrupt(const void *data, size_t len, const char *needle)
{
  const struct cx_tz *z = NULL;
  char err[CX_ERR_LEN] = "";
  write_zone("Bad/Zone", data, len);
  ASSERT_EQ(cx_tz_get("Bad/Zone", &z, err), CX_EPARSE);
  ASSERT(z == NULL);
  ASSERT_CONTAINS(err, "Bad/Zone");
  ASSERT_CONTAINS(err, needle);
}

TEST(cron_tz_sample_zone_loads)
{
  /* The base the corruption tests start from is itself valid. */
  unsigned char buf[512];
  size_t len = sample_zone(buf);
  write_zone("Good/Zone", buf, len);
  const struct cx_tz *z = zone("Good/Zone");
  ASSERT_EQ(cx_tz_offset(z, 1772953200 - 1), -5 * HOUR);
  ASSERT_EQ(cx_tz_offset(z, 1772953200), -4 * HOUR);
  ASSERT_EQ(cx_tz_offset(z, utc(2040, 7, 1, 0, 0, 0)), -4 * HOUR);
}

TEST(cron_tz_version1_file_uses_its_last_type_forever)
{
  static const int64_t times[] = {1000000};
  static const unsigned char idx[] = {1};
  static const struct tzb_type types[] = {{HOUR, 0}, {2 * HOUR, 0}};
  unsigned char buf[512];
  size_t len = tzif_build(buf, 0, times, idx, 1, types, 2, "");
  write_zone("Old/Zone", buf, len);
  struct cx_tz_period p;
  cx_tz_period_at(zone("Old/Zone"), utc(2100, 1, 1, 0, 0, 0), &p);
  ASSERT_EQ(p.offset, 2 * HOUR);
  ASSERT_EQ(p.start, 1000000);
  ASSERT_EQ(p.end, INT64_MAX);
  ASSERT_EQ(cx_tz_offset(zone("Old/Zone"), 999999), HOUR);
}

TEST(cron_tz_rejects_wrong_magic)
{
  unsigned char buf[512];
  size_t len = sample_zone(buf);
  buf[0] = 'X';
  expect_corrupt(buf, len, "magic");
}

TEST(cron_tz_rejects_every_truncation)
{
  unsigned char buf[512];
  size_t len = sample_zone(buf);
  for (size_t n = 0; n < len; n++)
    expect_corrupt(buf, n, "");
}

TEST(cron_tz_rejects_huge_counts)
{
  unsigned char buf[512];
  size_t len = sample_zone(buf);
  memset(buf + 32, 0xff, 4); /* v1 timecnt = 4294967295 */
  expect_corrupt(buf, len, "truncated");
}

TEST(cron_tz_rejects_out_of_range_type_index)
{
  unsigned char buf[512];
  size_t len = sample_zone(buf);
  /* v2 block: header at 44 + v1 block (2*4 + 2 + 2*6 + 6 = 28), then
   * 44 more, 16 bytes of times, then the two indexes. */
  size_t idx2 = 44 + 28 + 44 + 16;
  ASSERT_EQ(buf[idx2], 1);
  buf[idx2] = 7;
  expect_corrupt(buf, len, "type 7");
}

TEST(cron_tz_rejects_zero_types)
{
  unsigned char buf[512];
  size_t len = sample_zone(buf);
  memset(buf + 36, 0, 4);
  expect_corrupt(buf, len, "typecnt");
}

TEST(cron_tz_rejects_descending_transitions)
{
  static const int64_t times[] = {2000, 1000};
  static const unsigned char idx[] = {1, 0};
  static const struct tzb_type types[] = {{0, 0}, {HOUR, 1}};
  unsigned char buf[512];
  size_t len = tzif_build(buf, '2', times, idx, 2, types, 2, "A0");
  expect_corrupt(buf, len, "not after");
}

TEST(cron_tz_rejects_abbreviation_index_past_the_table)
{
  unsigned char buf[512];
  size_t len = sample_zone(buf);
  size_t tt2 = 44 + 28 + 44 + 16 + 2; /* v2 ttinfo[0] */
  buf[tt2 + 5] = 200;
  expect_corrupt(buf, len, "abbreviation index");
}

TEST(cron_tz_rejects_offsets_beyond_a_day)
{
  static const struct tzb_type types[] = {{25 * HOUR, 0}};
  unsigned char buf[512];
  size_t len = tzif_build(buf, '2', NULL, NULL, 0, types, 1, "");
  expect_corrupt(buf, len, "offset");
}

TEST(cron_tz_rejects_leap_second_zones)
{
  /* A v1 file with one leap-second record ("right/" zones count seconds
   * differently from unix time). */
  static const struct tzb_type t0 = {0, 0};
  unsigned char buf[512];
  size_t len = tzif_build(buf, 0, NULL, NULL, 0, &t0, 1, "");
  buf[31] = 1;
  memset(buf + len, 0, 8);
  expect_corrupt(buf, len + 8, "leap-second");
}

TEST(cron_tz_rejects_bad_footers)
{
  static const char *bad[] = {
      "EST5EDT,M13.1.0,M11.1.0",    /* month 13 */
      "EST5EDT,M3.6.0,M11.1.0",     /* week 6 */
      "EST5EDT,M3.2.7,M11.1.0",     /* weekday 7 */
      "EST5EDT,J0,J100",            /* J is 1-based */
      "EST5EDT,366,100",            /* day beyond 365 */
      "EST5EDT,M3.2.0/168,M11.1.0", /* hour beyond 167 */
      "EST5EDT,M3.2.0",             /* one rule */
      "ES5",                        /* name too short */
      "<EST5",                      /* unterminated <...> */
      "EST25",                      /* offset beyond 24 h */
      "EST",                        /* no offset */
      "EST5EDT,M3.2.0,M11.1.0x",    /* trailing junk */
  };
  unsigned char buf[512];
  struct tzb_type t0 = {0, 0};
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    size_t len = tzif_build(buf, '2', NULL, NULL, 0, &t0, 1, bad[i]);
    expect_corrupt(buf, len, "footer");
  }
}

TEST(cron_tz_rejects_files_over_256k)
{
  size_t big = 300 * 1024;
  unsigned char *buf = calloc(1, big);
  ASSERT(buf != NULL);
  sample_zone(buf); /* a valid start, then zeros */
  expect_corrupt(buf, big, "larger than");
  free(buf);
}

TEST(cron_tz_random_corruption_never_crashes)
{
  /* Flip bytes of a valid file at random (fixed seed): each load either
   * fails with CX_EPARSE or gives a zone whose periods are consistent. */
  unsigned char good[512], buf[512];
  size_t len = sample_zone(good);
  uint64_t seed = 88172645463325252ull;
  for (int round = 0; round < 2000; round++) {
    memcpy(buf, good, len);
    for (int k = 0; k < 3; k++) {
      seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
      buf[seed % len] = (unsigned char)(seed >> 32);
    }
    char name[32], err[CX_ERR_LEN];
    snprintf(name, sizeof name, "Fuzz/Z%d", round);
    write_zone(name, buf, len);
    const struct cx_tz *z;
    int rc = cx_tz_get(name, &z, err);
    ASSERT_MSG(rc == 0 || rc == CX_EPARSE, "round %d: rc %d", round, rc);
    if (rc != 0)
      continue;
    for (int64_t t = -4000000000; t < 4000000000; t += 99999999) {
      struct cx_tz_period p;
      cx_tz_period_at(z, t, &p);
      ASSERT(p.start <= t && t < p.end);
      ASSERT_EQ(p.offset, cx_tz_offset(z, t));
    }
  }
}

/* ---- names and lookup -------------------------------------------------- */

TEST(cron_tz_rejects_bad_names)
{
  static const char *bad[] = {
      "../etc/passwd",
      "/etc/passwd",
      "Europe/../Europe/London",
      "America/New York",
      "Europe/London.bak",
      "Europe\\London",
      "Zone$",
      "a/b;rm",
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    const struct cx_tz *z = (const struct cx_tz *)1;
    char err[CX_ERR_LEN] = "";
    ASSERT_EQ(cx_tz_get(bad[i], &z, err), CX_EPARSE);
    ASSERT(z == NULL);
    ASSERT_MSG(err[0] != '\0', "no message for %s", bad[i]);
  }
}

TEST(cron_tz_rejects_names_over_128_bytes)
{
  char name[200];
  memset(name, 'a', sizeof name);
  name[129] = '\0';
  const struct cx_tz *z;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_tz_get(name, &z, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "128");
  name[128] = '\0'; /* exactly 128 is a valid (unknown) name */
  ASSERT_EQ(cx_tz_get(name, &z, err), CX_ENOTFOUND);
}

TEST(cron_tz_unknown_zone_is_not_found)
{
  const struct cx_tz *z;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_tz_get("Mars/Olympus_Mons", &z, err), CX_ENOTFOUND);
  ASSERT_CONTAINS(err, "Mars/Olympus_Mons");
  ASSERT_EQ(cx_tz_get("America", &z, err), CX_ENOTFOUND); /* a directory */
}

TEST(cron_tz_utc_works_without_a_database)
{
  ASSERT_EQ(setenv("TZDIR", cx_test_tmpdir(), 1), 0); /* empty dir */
  const struct cx_tz *z = zone("UTC");
  struct cx_tz_period p;
  cx_tz_period_at(z, 1234567890, &p);
  ASSERT_EQ(p.offset, 0);
  ASSERT_EQ(p.start, INT64_MIN);
  ASSERT_EQ(p.end, INT64_MAX);
  ASSERT_STREQ(p.abbr, "UTC");
  const struct cx_tz *other;
  ASSERT_EQ(cx_tz_get("Europe/London", &other, NULL), CX_ENOTFOUND);
}

TEST(cron_tz_zones_are_cached_until_cleanup)
{
  unsigned char buf[512];
  size_t len = sample_zone(buf);
  write_zone("Cached/Zone", buf, len);
  const struct cx_tz *a = zone("Cached/Zone");
  char path[1024];
  snprintf(path, sizeof path, "%s/Cached/Zone", cx_test_tmpdir());
  ASSERT_EQ(unlink(path), 0);
  ASSERT(zone("Cached/Zone") == a);
  cx_tz_cleanup();
  const struct cx_tz *b;
  ASSERT_EQ(cx_tz_get("Cached/Zone", &b, NULL), CX_ENOTFOUND);
}

static void *get_many(void *arg)
{
  const struct cx_tz **out = arg;
  static const char *names[] = {"Europe/Paris", "Asia/Tokyo", "America/Chicago",
                                "Europe/Paris", NULL};
  for (int i = 0; i < 200; i++) {
    for (size_t k = 0; k < CX_ARRAY_LEN(names); k++) {
      if (cx_tz_get(names[k], &out[k], NULL) != 0)
        return (void *)1;
      struct cx_tz_period p;
      cx_tz_period_at(out[k], 1800000000 + i * 3600, &p);
    }
  }
  return NULL;
}

TEST(cron_tz_concurrent_lookups_share_one_zone)
{
  pthread_t th[4];
  ASSERT_EQ(setenv("TZ", "Asia/Kolkata", 1), 0);
  const struct cx_tz *got[4][5];
  for (int i = 0; i < 4; i++)
    ASSERT_EQ(pthread_create(&th[i], NULL, get_many, got[i]), 0);
  for (int i = 0; i < 4; i++) {
    void *rv;
    ASSERT_EQ(pthread_join(th[i], &rv), 0);
    ASSERT(rv == NULL);
  }
  for (int i = 1; i < 4; i++)
    for (int k = 0; k < 5; k++)
      ASSERT(got[i][k] == got[0][k]);
  ASSERT(got[0][0] == got[0][3]);
  ASSERT_STREQ(cx_tz_name(got[0][4]), "Asia/Kolkata"); /* the host zone */
}

/* ---- the default and host zones ---------------------------------------- */

TEST(cron_tz_host_zone_from_tz_with_colon)
{
  ASSERT_EQ(setenv("TZ", ":America/New_York", 1), 0);
  ASSERT_STREQ(cx_tz_name(zone(NULL)), "America/New_York");
  ASSERT(zone("") == zone("America/New_York"));
}

TEST(cron_tz_host_zone_from_tz_without_colon)
{
  ASSERT_EQ(setenv("TZ", "Asia/Kolkata", 1), 0);
  ASSERT_EQ(cx_tz_offset(zone(NULL), 0), 5 * HOUR + 1800);
}

TEST(cron_tz_host_zone_from_tz_path)
{
  ASSERT_EQ(setenv("TZ", ":/usr/share/zoneinfo/Europe/Berlin", 1), 0);
  ASSERT_STREQ(cx_tz_name(zone(NULL)), "Europe/Berlin");
}

TEST(cron_tz_host_zone_empty_tz_is_utc)
{
  ASSERT_EQ(setenv("TZ", "", 1), 0);
  ASSERT_STREQ(cx_tz_name(zone(NULL)), "UTC");
}

/* What /etc/timezone names, or "" when the host has none. */
static void etc_timezone(char *out, size_t len)
{
  out[0] = '\0';
  FILE *f = fopen("/etc/timezone", "r");
  if (f == NULL)
    return;
  if (fgets(out, (int)len, f) == NULL)
    out[0] = '\0';
  fclose(f);
  out[strcspn(out, " \t\r\n")] = '\0';
}

TEST(cron_tz_host_zone_without_tz_reads_etc_timezone)
{
  char want[256];
  etc_timezone(want, sizeof want);
  if (want[0] == '\0' || strcmp(want, "UTC") == 0)
    cx_test_skip("host has no usable /etc/timezone");
  ASSERT_EQ(unsetenv("TZ"), 0);
  /* Put New York's data under that name in a private TZDIR: the host zone
   * must carry the name and the data found there. */
  FILE *f = fopen("/usr/share/zoneinfo/America/New_York", "rb");
  ASSERT(f != NULL);
  unsigned char data[8192];
  size_t len = fread(data, 1, sizeof data, f);
  fclose(f);
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/%s", cx_test_tmpdir(), want);
  for (char *s = dir + strlen(cx_test_tmpdir()) + 1; *s; s++)
    if (*s == '/') {
      *s = '\0';
      mkdir(dir, 0700);
      *s = '/';
    }
  write_zone(want, data, len);
  const struct cx_tz *z = zone(NULL);
  ASSERT_STREQ(cx_tz_name(z), want);
  ASSERT_EQ(cx_tz_offset(z, utc(2026, 7, 1, 0, 0, 0)), -4 * HOUR);
}

TEST(cron_tz_host_zone_ignores_unknown_tz)
{
  char want[256];
  etc_timezone(want, sizeof want);
  if (want[0] == '\0')
    cx_test_skip("host has no /etc/timezone");
  ASSERT_EQ(setenv("TZ", "Nowhere/Land", 1), 0);
  ASSERT_STREQ(cx_tz_name(zone(NULL)), want);
}

TEST(cron_tz_set_default_overrides_the_host)
{
  ASSERT_EQ(setenv("TZ", "America/New_York", 1), 0);
  ASSERT_EQ(cx_tz_set_default("Asia/Tokyo", NULL), 0);
  ASSERT_STREQ(cx_tz_name(zone(NULL)), "Asia/Tokyo");
  ASSERT_EQ(cx_tz_set_default(NULL, NULL), 0);
  ASSERT_STREQ(cx_tz_name(zone(NULL)), "America/New_York");
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_tz_set_default("Bad/Name/X", err), CX_ENOTFOUND);
  ASSERT_STREQ(cx_tz_name(zone(NULL)), "America/New_York");
}

/* ---- RFC 3339 ---------------------------------------------------------- */

static const char *fmt(int64_t t, const char *zname)
{
  static char buf[64];
  size_t n = cx_time_format(t, zname ? zone(zname) : NULL, buf, sizeof buf);
  ASSERT_EQ(n, strlen(buf));
  return buf;
}

TEST(cron_tz_format_uses_the_offset_in_effect)
{
  int64_t on = utc(2026, 3, 8, 7, 0, 0);
  ASSERT_STREQ(fmt(on, "America/New_York"), "2026-03-08T03:00:00-04:00");
  ASSERT_STREQ(fmt(on - 1, "America/New_York"), "2026-03-08T01:59:59-05:00");
  ASSERT_STREQ(fmt(on, NULL), "2026-03-08T07:00:00+00:00");
  ASSERT_STREQ(fmt(on, "UTC"), "2026-03-08T07:00:00+00:00");
  ASSERT_STREQ(fmt(on, "Asia/Kolkata"), "2026-03-08T12:30:00+05:30");
  ASSERT_STREQ(fmt(on, "Pacific/Chatham"), "2026-03-08T20:45:00+13:45");
}

TEST(cron_tz_format_rounds_offsets_with_seconds)
{
  /* New York LMT is -4:56:02: printed as -04:56 with the clock for -04:56,
   * so the text still names exactly the same instant. */
  int64_t t = utc(1850, 1, 1, 12, 0, 0);
  ASSERT_EQ(cx_tz_offset(zone("America/New_York"), t),
            -(4 * HOUR + 56 * 60 + 2));
  ASSERT_STREQ(fmt(t, "America/New_York"), "1850-01-01T07:04:00-04:56");
  int64_t back;
  ASSERT_EQ(cx_time_parse(fmt(t, "America/New_York"), &back), 0);
  ASSERT_EQ(back, t);
}

TEST(cron_tz_format_refuses_small_buffers_and_far_years)
{
  char buf[64];
  ASSERT_EQ(cx_time_format(0, NULL, buf, 25), 0);
  ASSERT_STREQ(buf, "");
  ASSERT_EQ(cx_time_format(0, NULL, buf, 26), 25);
  ASSERT_EQ(cx_time_format(-62167219200, NULL, buf, sizeof buf), 25);
  ASSERT_STREQ(buf, "0000-01-01T00:00:00+00:00");
  ASSERT_EQ(
      cx_time_format(-62167219200, zone("America/New_York"), buf, sizeof buf),
      0); /* local year -1 */
  ASSERT_EQ(cx_time_format(INT64_MAX, NULL, buf, sizeof buf), 0);
  ASSERT_EQ(
      cx_time_format(INT64_MIN, zone("America/New_York"), buf, sizeof buf), 0);
  ASSERT_EQ(cx_time_format(utc(10000, 1, 1, 0, 0, 0), NULL, buf, sizeof buf),
            0);
}

TEST(cron_tz_format_parse_round_trip)
{
  static const char *zones[] = {"America/New_York", "Australia/Lord_Howe",
                                "America/St_Johns", "Pacific/Chatham",
                                "Europe/Dublin",    NULL};
  for (size_t i = 0; i < CX_ARRAY_LEN(zones); i++) {
    for (int64_t t = -2208988800; t < 4102444800; t += 7777777) {
      int64_t back = -1;
      const char *s = fmt(t, zones[i]);
      ASSERT_EQ(cx_time_parse(s, &back), 0);
      ASSERT_MSG(back == t, "%s -> %lld, want %lld", s, (long long)back,
                 (long long)t);
    }
  }
}

TEST(cron_tz_parse_accepts_rfc3339_variants)
{
  static const struct {
    const char *s;
    int64_t want;
  } ok[] = {
      {"2026-03-08T03:00:00-04:00", 1772953200},
      {"2026-03-08t07:00:00z", 1772953200},
      {"2026-03-08 07:00:00Z", 1772953200},
      {"2026-03-08T07:00:00.999999999Z", 1772953200}, /* floored */
      {"2026-03-08T07:00:00-00:00", 1772953200},
      {"2026-03-08T12:30:00.5+05:30", 1772953200},
      {"1969-12-31T23:59:59.9Z", -1}, /* floor, not toward zero */
      {"2024-02-29T00:00:00Z", 1709164800},
      {"0000-01-01T00:00:00Z", -62167219200},
      {"9999-12-31T23:59:59Z", 253402300799},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(ok); i++) {
    int64_t t = 0;
    ASSERT_MSG(cx_time_parse(ok[i].s, &t) == 0, "rejected %s", ok[i].s);
    ASSERT_MSG(t == ok[i].want, "%s -> %lld", ok[i].s, (long long)t);
  }
}

TEST(cron_tz_parse_rejects_malformed_and_out_of_range)
{
  static const char *bad[] = {
      "",
      "2026-13-01T00:00:00Z",      /* month 13 */
      "2026-00-01T00:00:00Z",      /* month 0 */
      "2026-02-30T00:00:00Z",      /* Feb 30 */
      "2023-02-29T00:00:00Z",      /* not a leap year */
      "2026-04-31T00:00:00Z",      /* April 31 */
      "2026-01-00T00:00:00Z",      /* day 0 */
      "2026-01-01T24:00:00Z",      /* hour 24 */
      "2026-01-01T00:60:00Z",      /* minute 60 */
      "2026-01-01T00:00:60Z",      /* leap second */
      "2026-01-01T00:00:00+24:00", /* offset hour 24 */
      "2026-01-01T00:00:00+01:60", /* offset minute 60 */
      "2026-01-01T00:00:00",       /* no offset */
      "2026-01-01T00:00:00+0100",  /* offset without colon */
      "2026-01-01T00:00:00+01",    /* short offset */
      "2026-01-01T00:00:00Zjunk",  /* trailing text */
      "2026-01-01T00:00:00.Z",     /* empty fraction */
      "2026-1-01T00:00:00Z",       /* short month */
      "26-01-01T00:00:00Z",        /* short year */
      "2026-01-01X00:00:00Z",      /* bad separator */
      "2026-01-01T00:00Z",         /* no seconds */
      "+2026-01-01T00:00:00Z",     /* sign */
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    int64_t t = 42;
    ASSERT_MSG(cx_time_parse(bad[i], &t) == CX_EPARSE, "accepted %s", bad[i]);
    ASSERT_EQ(t, 42);
  }
  int64_t t;
  ASSERT_EQ(cx_time_parse(NULL, &t), CX_EPARSE);
  /* Valid but longer than 64 bytes (a 45-digit fraction). */
  char longer[80] = "2026-01-01T00:00:00.";
  memset(longer + 20, '0', 45);
  memcpy(longer + 65, "Z", 2);
  ASSERT_EQ(cx_time_parse(longer, &t), CX_EPARSE);
  longer[20 + 43] = 'Z'; /* 64 bytes: accepted */
  longer[20 + 44] = '\0';
  ASSERT_EQ(cx_time_parse(longer, &t), 0);
}

TEST(cron_tz_host_zone_from_posix_tz_string)
{
  /* Not a file: read as a POSIX rule, as glibc does. */
  ASSERT_EQ(setenv("TZ", "<+0330>-3:30<+0430>,J79/24,J263/24", 1), 0);
  const struct cx_tz *z = zone(NULL);
  ASSERT_STREQ(cx_tz_name(z), "localtime");
  glibc_zone("<+0330>-3:30<+0430>,J79/24,J263/24");
  compare_with_glibc(z, utc(2000, 1, 1, 0, 0, 0), utc(2060, 1, 1, 0, 0, 0));
}

/* ---- every zone on the host -------------------------------------------- */

static int is_tzif(const char *path)
{
  char magic[4];
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return 0;
  size_t n = fread(magic, 1, 4, f);
  fclose(f);
  return n == 4 && memcmp(magic, "TZif", 4) == 0;
}

static int zones_checked;

static int check_one_zone(const char *path, const struct stat *st, int flag,
                          struct FTW *ftw)
{
  static const char root[] = "/usr/share/zoneinfo/";
  const char *name = path + strlen(root);
  (void)st;
  (void)ftw;
  if (flag != FTW_F || strncmp(path, root, strlen(root)) != 0 ||
      strncmp(name, "posix/", 6) == 0 || strncmp(name, "right/", 6) == 0 ||
      strchr(name, '.') != NULL || !is_tzif(path))
    return 0;
  const struct cx_tz *z = zone(name);
  glibc_zone(name);
  compare_step(z, utc(1900, 1, 1, 0, 0, 0), utc(2100, 1, 1, 0, 0, 0),
               5 * DAY + 7 * HOUR);
  zones_checked++;
  return 0;
}

TEST_TIMEOUT(cron_tz_every_host_zone_matches_glibc, 300)
{
  /* Every TZif file of the host database, 1900..2100: sampled offsets,
   * abbreviations and isdst, and every period boundary at b-1 and b. */
  ASSERT_EQ(nftw("/usr/share/zoneinfo", check_one_zone, 16, FTW_PHYS), 0);
  ASSERT_OP(zones_checked, >, 300);
}

/* ---- allocation failures ----------------------------------------------- */

/* LeakSanitizer's on-demand check, present only in sanitizer builds (the
 * harness ends tests with _exit, which skips the automatic one). */
extern void __lsan_do_leak_check(void) __attribute__((weak));

TEST(cron_tz_load_survives_every_allocation_failure)
{
  /* Fail the 1st, 2nd, ... allocation of a load: each attempt must fail
   * cleanly with -ENOMEM and leak nothing, until one succeeds. */
  int rc = -1;
  for (long n = 1; n < 100 && rc != 0; n++) {
    const struct cx_tz *z = NULL;
    char err[CX_ERR_LEN] = "";
    cx_alloc_fail_after(n);
    rc = cx_tz_get("America/New_York", &z, err);
    cx_alloc_fail_after(0);
    if (rc != 0) {
      ASSERT_EQ(rc, -ENOMEM);
      ASSERT_CONTAINS(err, "out of memory");
      ASSERT(z == NULL);
    }
  }
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(cx_tz_offset(zone("America/New_York"), utc(2060, 7, 1, 0, 0, 0)),
            -4 * HOUR);
  cx_tz_cleanup();
  if (__lsan_do_leak_check != NULL)
    __lsan_do_leak_check();
}
