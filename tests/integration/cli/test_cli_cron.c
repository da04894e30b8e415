/*
 * `cronix cron next` and `cronix cron check` as a user runs them (SPEC §2):
 * the real binary, its stdout, stderr and exit codes.
 */
#include <stdlib.h>

#include "cli.h"
#include "support/test.h"

static int count_lines(const char *s)
{
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

TEST(cli_cron_next_prints_five_by_default)
{
  struct cx_test_output o;
  cx_test_run(CRONIX("cron", "next", "0 0 * * *", "--from",
                     "2026-01-01T00:00:00Z", "--tz", "UTC"),
              10, &o);
  ASSERT_EQ(o.status, 0);
  ASSERT_STREQ(o.out, "2026-01-02T00:00:00+00:00\n"
                      "2026-01-03T00:00:00+00:00\n"
                      "2026-01-04T00:00:00+00:00\n"
                      "2026-01-05T00:00:00+00:00\n"
                      "2026-01-06T00:00:00+00:00\n");
  cx_test_output_free(&o);
}

TEST(cli_cron_next_count_and_seconds_field)
{
  struct cx_test_output o;
  cx_test_run(CRONIX("cron", "next", "*/20 * * * * *", "--count", "4", "--from",
                     "2026-06-30T23:59:30Z", "--tz", "UTC"),
              10, &o);
  ASSERT_EQ(o.status, 0);
  ASSERT_STREQ(o.out, "2026-06-30T23:59:40+00:00\n"
                      "2026-07-01T00:00:00+00:00\n"
                      "2026-07-01T00:00:20+00:00\n"
                      "2026-07-01T00:00:40+00:00\n");
  cx_test_output_free(&o);
}

TEST(cli_cron_next_prints_zone_offset_across_dst)
{
  /* New York springs forward on 2026-03-08: the offset in the output
   * changes from -05:00 to -04:00. */
  struct cx_test_output o;
  cx_test_run(CRONIX("cron", "next", "0 12 * * *", "--count", "2", "--from",
                     "2026-03-07T00:00:00Z", "--tz", "America/New_York"),
              10, &o);
  ASSERT_EQ(o.status, 0);
  ASSERT_STREQ(o.out, "2026-03-07T12:00:00-05:00\n"
                      "2026-03-08T12:00:00-04:00\n");
  cx_test_output_free(&o);
}

TEST(cli_cron_next_cron_tz_prefix_wins_over_flag)
{
  struct cx_test_output o;
  cx_test_run(CRONIX("cron", "next", "CRON_TZ=Asia/Tokyo 0 9 * * *", "--count",
                     "1", "--from", "2025-12-31T12:00:00Z", "--tz", "UTC"),
              10, &o);
  ASSERT_EQ(o.status, 0);
  ASSERT_STREQ(o.out, "2026-01-01T09:00:00+09:00\n");
  cx_test_output_free(&o);
}

TEST(cli_cron_next_stops_early_when_schedule_ends)
{
  /* The 7-field form with a year: fires twice, then never again. */
  struct cx_test_output o;
  cx_test_run(CRONIX("cron", "next", "0 0 0 1 1 * 2030,2031", "--count", "5",
                     "--from", "2026-01-01T00:00:00Z", "--tz", "UTC"),
              10, &o);
  ASSERT_EQ(o.status, 0);
  ASSERT_EQ(count_lines(o.out), 2);
  ASSERT_STREQ(o.out, "2030-01-01T00:00:00+00:00\n"
                      "2031-01-01T00:00:00+00:00\n");
  ASSERT_CONTAINS(o.err, "no fire after 2031-01-01T00:00:00+00:00");
  cx_test_output_free(&o);
}

TEST(cli_cron_next_refuses_from_outside_years_1_to_9999)
{
  /* The engine answers for years 1..9999 only; outside them it used to
   * print nothing and exit 0, as if the schedule never fired. */
  static const char *const bad[] = {"0000-01-01T00:00:00Z",
                                    "0001-01-01T00:00:00+01:00",
                                    "9999-12-31T23:59:59Z"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cli_expect(CRONIX("cron", "next", "* * * * *", "--from", (char *)bad[i]), 2,
               NULL, "--from must be between 0001-01-01T00:00:00Z");
  /* The first second of year 1 is fine, and so is a time before 1970. */
  cli_expect(CRONIX("cron", "next", "0 0 1 1 *", "--count", "1", "--from",
                    "0001-01-01T00:00:00Z", "--tz", "UTC"),
             0, "0002-01-01T00:00:00+00:00\n", NULL);
  cli_expect(CRONIX("cron", "next", "0 0 1 1 *", "--count", "1", "--from",
                    "1969-06-01T00:00:00Z", "--tz", "UTC"),
             0, "1970-01-01T00:00:00+00:00\n", NULL);
}

TEST(cli_cron_next_invalid_expression_exits_2_with_reason)
{
  struct cx_test_output o;
  cx_test_run(CRONIX("cron", "next", "61 * * * *"), 10, &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_EQ(o.out_len, 0);
  ASSERT_CONTAINS(o.err, "minute");
  cx_test_output_free(&o);
}

TEST(cli_cron_next_rejects_bad_flags)
{
  struct cx_test_output o;
  cx_test_run(CRONIX("cron", "next", "* * * * *", "--count", "0"), 10, &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "--count");
  cx_test_output_free(&o);
  cx_test_run(CRONIX("cron", "next", "* * * * *", "--from", "yesterday"), 10,
              &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "--from");
  cx_test_output_free(&o);
  cx_test_run(CRONIX("cron", "next", "* * * * *", "--tz", "Mars/Olympus"), 10,
              &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "--tz");
  cx_test_output_free(&o);
}

TEST(cli_cron_check_accepts_and_rejects)
{
  struct cx_test_output o;
  cx_test_run(CRONIX("cron", "check", "0 0 L * *"), 10, &o);
  ASSERT_EQ(o.status, 0);
  cx_test_output_free(&o);
  cx_test_run(CRONIX("cron", "check", "*/0 * * * *"), 10, &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "minute");
  cx_test_output_free(&o);
  cx_test_run(CRONIX("cron", "check", "0 0 30 2 *"), 10, &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "never");
  cx_test_output_free(&o);
}

TEST(cli_unknown_command_and_help)
{
  struct cx_test_output o;
  cx_test_run(CRONIX("frobnicate"), 10, &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "unknown command");
  cx_test_output_free(&o);
  cx_test_run(CRONIX("--help"), 10, &o);
  ASSERT_EQ(o.status, 0);
  ASSERT_CONTAINS(o.out, "cron next");
  cx_test_output_free(&o);
  cx_test_run(CRONIX("cron", "--help"), 10, &o);
  ASSERT_EQ(o.status, 0);
  ASSERT_CONTAINS(o.out, "--from");
  cx_test_output_free(&o);
  cx_test_run(CRONIX("version"), 10, &o);
  ASSERT_EQ(o.status, 0);
  ASSERT_CONTAINS(o.out, "cronix ");
  cx_test_output_free(&o);
}
