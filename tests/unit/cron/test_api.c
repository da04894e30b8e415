/*
 * cron: the API around parse/next -- flags, zone getter, cx_cron_check,
 * argument bounds, allocation behaviour, and equivalent spellings.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cron/cron.h"
#include "support/test.h"
#include "unit/cron/crontest.h"
#include "util/util.h"

static struct cx_cron *parse_ok(const char *expr, const char *zone)
{
  struct cx_cron_opts o = {zone, 0};
  struct cx_cron *c = NULL;
  char err[CX_ERR_LEN] = "";
  int rc = cx_cron_parse(expr, &o, &c, err);
  ASSERT_MSG(rc == 0 && c != NULL, "parse '%s': %s", expr, err);
  return c;
}

static int fixed(const char *expr)
{
  struct cx_cron *c = parse_ok(expr, "UTC");
  int f = cx_cron_is_fixed_time(c);
  cx_cron_free(c);
  return f;
}

TEST(cron_fixed_time_flag_follows_first_characters)
{
  ASSERT_EQ(fixed("30 2 * * *"), 1);
  ASSERT_EQ(fixed("0-59 0 * * *"), 1); /* starts with a digit */
  ASSERT_EQ(fixed("* 30 2 * * *"), 1); /* seconds do not count */
  ASSERT_EQ(fixed("@daily"), 1);
  ASSERT_EQ(fixed("@weekly"), 1);
  ASSERT_EQ(fixed("*/5 2 * * *"), 0);
  ASSERT_EQ(fixed("0 * * * *"), 0);
  ASSERT_EQ(fixed("0 */2 * * *"), 0);
  ASSERT_EQ(fixed("@hourly"), 0);
  ASSERT_EQ(fixed("@every 1h"), 0);
}

TEST(cron_zone_from_prefix_then_opts_then_default)
{
  struct cx_cron *c = parse_ok("CRON_TZ=Europe/London 0 0 * * *", "UTC");
  ASSERT_STREQ(cx_tz_name(cx_cron_tz(c)), "Europe/London");
  cx_cron_free(c);
  c = parse_ok("TZ=Asia/Tokyo 0 0 * * *", "UTC");
  ASSERT_STREQ(cx_tz_name(cx_cron_tz(c)), "Asia/Tokyo");
  cx_cron_free(c);
  c = parse_ok("0 0 * * *", "America/New_York");
  ASSERT_STREQ(cx_tz_name(cx_cron_tz(c)), "America/New_York");
  cx_cron_free(c);
  const struct cx_tz *def = NULL;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_tz_get(NULL, &def, err), 0);
  c = parse_ok("0 0 * * *", NULL);
  ASSERT(cx_cron_tz(c) == def);
  cx_cron_free(c);
  c = parse_ok("0 0 * * *", "");
  ASSERT(cx_cron_tz(c) == def);
  cx_cron_free(c);
}

TEST(cron_check_accepts_firing_expression)
{
  char err[CX_ERR_LEN] = "";
  struct cx_cron_opts o = {"UTC", 0};
  ASSERT_EQ(
      cx_cron_check("0 0 29 2 *", &o, ct_time("2026-01-01T00:00:00Z"), err), 0);
}

TEST(cron_check_reports_never)
{
  char err[CX_ERR_LEN] = "";
  struct cx_cron_opts o = {"UTC", 0};
  int64_t now = ct_time("2026-01-01T00:00:00Z");
  ASSERT_EQ(cx_cron_check("0 0 30 2 *", &o, now, err), CX_ENEVER);
  ASSERT_CONTAINS(err, "never fires after 2026-01-01T00:00:00");
  err[0] = '\0';
  ASSERT_EQ(cx_cron_check("0 0 0 1 1 ? 2020", &o, now, err), CX_ENEVER);
  ASSERT_CONTAINS(err, "never fires after");
}

TEST(cron_check_reports_parse_errors)
{
  char err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx_cron_check("0 0 * * fry", NULL, 0, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "dow: unknown name 'fry'");
}

TEST(cron_next_is_strictly_later_every_second)
{
  struct cx_cron *c = parse_ok("* * * * * *", "America/New_York");
  /* Across the 2026 fall-back hour, every second fires once per instant. */
  int64_t t = ct_time("2026-11-01T05:30:00Z");
  for (int i = 0; i < 7200; i++) {
    int64_t n;
    ASSERT_EQ(cx_cron_next(c, t, &n), 0);
    ASSERT_EQ(n, t + 1);
    t = n;
  }
  cx_cron_free(c);
}

TEST(cron_next_out_of_range_arguments)
{
  struct cx_cron *c = parse_ok("* * * * *", "UTC");
  int64_t n = 0;
  ASSERT_EQ(cx_cron_next(c, INT64_MAX, &n), CX_ENEVER);
  ASSERT_EQ(cx_cron_next(c, INT64_MIN, &n), CX_ENEVER);
  ASSERT_EQ(cx_cron_next(c, 253402300799LL, &n), CX_ENEVER); /* 9999 end */
  ASSERT_EQ(cx_cron_next(c, 253402300000LL, &n), 0);
  ASSERT_EQ(n, 253402300020LL);
  cx_cron_free(c);
}

TEST(cron_every_extreme_anchor)
{
  struct cx_cron_opts o = {"UTC", INT64_MAX};
  struct cx_cron *c = NULL;
  char err[CX_ERR_LEN];
  int64_t n = 0;
  ASSERT_EQ(cx_cron_parse("@every 1s", &o, &c, err), 0);
  ASSERT_EQ(cx_cron_next(c, 0, &n), CX_ENEVER);
  cx_cron_free(c);
  o.anchor = INT64_MIN;
  ASSERT_EQ(cx_cron_parse("@every 7s", &o, &c, err), 0);
  ASSERT_EQ(cx_cron_next(c, 1000, &n), 0);
  ASSERT_OP(n, >, 1000);
  ASSERT_OP(n, <=, 1007);
  ASSERT(((__int128)n - INT64_MIN) % 7 == 0);
  cx_cron_free(c);
}

TEST(cron_parse_allocates_once)
{
  struct cx_cron *c = parse_ok("0 0 * * *", "UTC"); /* warm the zone cache */
  cx_cron_free(c);
  c = NULL;
  char err[CX_ERR_LEN] = "";
  struct cx_cron_opts o = {"UTC", 0};
  cx_alloc_fail_after(2); /* the second allocation would fail */
  int rc = cx_cron_parse("*/5 1-4 L,15W * 5L,1#2", &o, &c, err);
  cx_alloc_fail_after(0);
  ASSERT_MSG(rc == 0, "%s", err);
  int64_t n;
  cx_alloc_fail_after(1); /* next() must not allocate at all */
  rc = cx_cron_next(c, 0, &n);
  cx_alloc_fail_after(0);
  ASSERT_EQ(rc, 0);
  cx_cron_free(c);
}

TEST(cron_parse_out_of_memory)
{
  struct cx_cron *c = parse_ok("0 0 * * *", "UTC");
  cx_cron_free(c);
  c = NULL;
  char err[CX_ERR_LEN] = "";
  struct cx_cron_opts o = {"UTC", 0};
  cx_alloc_fail_after(1);
  int rc = cx_cron_parse("0 0 * * *", &o, &c, err);
  cx_alloc_fail_after(0);
  ASSERT_EQ(rc, -ENOMEM);
  ASSERT(c == NULL);
  cx_cron_free(NULL); /* accepted */
}

/* Two spellings give the same next 200 fires. ccronexpr test_parse
 * check_same rows, moved to our grammar, plus our own. */
static void same(const char *a, const char *b)
{
  struct cx_cron *x = parse_ok(a, "UTC"), *y = parse_ok(b, "UTC");
  int64_t tx = ct_time("2026-01-01T00:00:00Z"), ty = tx;
  for (int i = 0; i < 200; i++) {
    int rx = cx_cron_next(x, tx, &tx), ry = cx_cron_next(y, ty, &ty);
    ASSERT_MSG(rx == ry && tx == ty, "'%s' vs '%s' fire %d: %s vs %s", a, b, i,
               ct_utc(tx), ct_utc(ty));
    if (rx != 0)
      break;
  }
  cx_cron_free(x);
  cx_cron_free(y);
}

TEST(cron_equivalent_spellings)
{
  same("* * * 2 * *", "* * * 2 * ?");              /* ccronexpr */
  same("57,59 * * * * *", "57/2 * * * * *");       /* ccronexpr */
  same("1,3,5 * * * * *", "1-6/2 * * * * *");      /* ccronexpr */
  same("* * 4,8,12,16,20 * * *", "* * 4/4 * * *"); /* ccronexpr */
  same("* * * * * 0-6", "* * * * * TUE,WED,THU,FRI,SAT,SUN,MON");
  same("* * * * * 0", "* * * * * SUN"); /* ccronexpr */
  same("* * * * * 0", "* * * * * 7");   /* ccronexpr */
  same("* * * * 1-12 *", "* * * * FEB,JAN,MAR,APR,MAY,JUN,JUL,AUG,SEP,OCT,"
                         "NOV,DEC *");   /* ccronexpr */
  same("* * * * 2 *", "* * * * Feb *");  /* ccronexpr */
  same("*  *  * *  1 *", "* * * * 1 *"); /* ccronexpr */
  same("0 * * * *", "0 0 * * * *");
  same("@daily", "0 0 * * *");
  same("@monthly", "0 0 1 * *");
  same("*/15 * * * *", "0,15,30,45 * * * *");
  same("0 0 * * 1-7", "0 0 * * *");
  same("0 0 * * mon-sun", "0 0 * * 1-7");
  same("0 0 L-0 * *", "0 0 L * *");
  same("0 0 * * 5#1,5#2,5#3,5#4,5#5", "0 0 * * 5");
  same("0 0 ? * *", "0 0 * * ?");
  same("0 0 * * * * *", "0 0 * * * *");
  same("cron_tz=UTC 0 0 * * *", "0 0 * * *");
}
