/*
 * cron: our own edge cases -- calendar corners, Quartz extras, 7-field
 * years, @every anchoring, and daylight saving in four zones for both
 * fixed-time (ISC rule) and wildcard (real time) expressions. Calendar
 * facts (weekdays, transition instants) were checked against Python's
 * zoneinfo/calendar while writing the rows.
 */
#include "cron/cron.h"
#include "support/test.h"
#include "unit/cron/crontest.h"
#include "util/util.h"

static const struct cron_row calendar_rows[] = {
    {"0 0 29 2 *", 0, "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z",
     "2100 is not a leap year: 8-year gap"},
    {"0 0 29 2 *", 0, "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z",
     "leap day to leap day"},
    {"0 0 0 29 2 ? 2100", 0, "2026-01-01T00:00:00Z", "NONE",
     "7 fields: Feb 29 2100 does not exist"},
    {"0 0 * 2 mon#5", 0, "2016-03-01T00:00:00Z",
     "2044-02-29T00:00:00Z,2072-02-29T00:00:00Z",
     "fifth Monday of February: only on Feb 29 that is a Monday (28 years)"},
    {"0 0 31 * *", 0, "2026-01-31T00:00:00Z",
     "2026-03-31T00:00:00Z,2026-05-31T00:00:00Z,2026-07-31T00:00:00Z",
     "31st skips short months"},
    {"0 0 L * *", 0, "2024-01-31T00:00:00Z",
     "2024-02-29T00:00:00Z,2024-03-31T00:00:00Z,2024-04-30T00:00:00Z",
     "L = last day, leap February"},
    {"0 0 L-2 * *", 0, "2026-02-01T00:00:00Z",
     "2026-02-26T00:00:00Z,2026-03-29T00:00:00Z,2026-04-28T00:00:00Z",
     "L-2 = two days before the last"},
    {"0 0 L-30 * *", 0, "2026-01-02T00:00:00Z",
     "2026-03-01T00:00:00Z,2026-05-01T00:00:00Z",
     "L-30 only exists in 31-day months"},
    {"0 0 15W * *", 0, "2026-08-01T00:00:00Z", "2026-08-14T00:00:00Z",
     "15W: Sat Aug 15 -> Fri 14"},
    {"0 0 15W * *", 0, "2026-11-01T00:00:00Z", "2026-11-16T00:00:00Z",
     "15W: Sun Nov 15 -> Mon 16"},
    {"0 0 1W * *", 0, "2026-07-31T00:00:00Z", "2026-08-03T00:00:00Z",
     "1W: Sat Aug 1 -> Mon 3 (never crosses into July)"},
    {"0 0 1W * *", 0, "2026-02-28T00:00:00Z", "2026-03-02T00:00:00Z",
     "1W: Sun Mar 1 -> Mon 2"},
    {"0 0 1W * *", 0, "2026-01-01T00:00:00Z", "2026-02-02T00:00:00Z",
     "1W: Thu Jan 1 is the fire itself (not after it); Sun Feb 1 -> Mon 2"},
    {"0 0 31W * *", 0, "2026-05-01T00:00:00Z",
     "2026-05-29T00:00:00Z,2026-07-31T00:00:00Z",
     "31W: Sun May 31 -> Fri 29 (not June 1); 30-day June has no 31"},
    {"0 0 LW * *", 0, "2026-01-01T00:00:00Z",
     "2026-01-30T00:00:00Z,2026-02-27T00:00:00Z,2026-03-31T00:00:00Z",
     "LW: Sat Jan 31 -> 30, Sat Feb 28 -> 27, Tue Mar 31"},
    {"0 0 * * 5L", 0, "2026-01-01T00:00:00Z",
     "2026-01-30T00:00:00Z,2026-02-27T00:00:00Z,2026-03-27T00:00:00Z",
     "5L = last Friday"},
    {"0 0 * * friL", 0, "2026-01-01T00:00:00Z", "2026-01-30T00:00:00Z",
     "friL = 5L"},
    {"0 0 * * fri#3", 0, "2026-01-01T00:00:00Z",
     "2026-01-16T00:00:00Z,2026-02-20T00:00:00Z,2026-03-20T00:00:00Z",
     "fri#3 = third Friday"},
    {"0 0 * * 1#5", 0, "2026-01-01T00:00:00Z",
     "2026-03-30T00:00:00Z,2026-06-29T00:00:00Z,2026-08-31T00:00:00Z,"
     "2026-11-30T00:00:00Z",
     "1#5: only months with five Mondays"},
    {"0 0 * * 1#1,5L", 0, "2026-01-01T00:00:00Z",
     "2026-01-05T00:00:00Z,2026-01-30T00:00:00Z,2026-02-02T00:00:00Z",
     "list of # and L"},
    {"0 0 13 * 5", 0, "2026-02-01T00:00:00Z",
     "2026-02-06T00:00:00Z,2026-02-13T00:00:00Z,2026-02-20T00:00:00Z",
     "both restricted: 13th OR Friday"},
    {"0 0 L * 5L", 0, "2026-01-01T00:00:00Z",
     "2026-01-30T00:00:00Z,2026-01-31T00:00:00Z,2026-02-27T00:00:00Z,"
     "2026-02-28T00:00:00Z",
     "L OR 5L"},
    {"0 0 ? * 7", 0, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z",
     "? in dom, 7 = Sunday"},
    {"0 0 * * fri-sun", 0, "2026-01-01T00:00:00Z",
     "2026-01-02T00:00:00Z,2026-01-03T00:00:00Z,2026-01-04T00:00:00Z,"
     "2026-01-09T00:00:00Z",
     "fri-sun: a range ending with sun means 5-7"},
    {"0 0 * * 5-7", 0, "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z",
     "5-7 numerically"},
    {"0 0 * * */2", 0, "2026-01-01T00:00:00Z",
     "2026-01-03T00:00:00Z,2026-01-04T00:00:00Z,2026-01-06T00:00:00Z",
     "*/2 in dow = sun,tue,thu,sat (Jan 1 2026 is a Thursday)"},
    {"0 0 */10 * sun", 0, "2012-07-14T23:59:59Z", "2012-10-21T00:00:00Z",
     "Vixie: */10 starts with * so dom and dow are ANDed (tech.md 3.1)"},
    {"0 16 */2 * sat", 0, "2026-01-01T00:00:00Z",
     "2026-01-03T16:00:00Z,2026-01-17T16:00:00Z,2026-01-31T16:00:00Z",
     "croniter testDomDowVixieCronBug pair: odd days AND Saturday"},
    {"0 0 12 1 1 ? 2030,2035", 0, "2026-01-01T00:00:00Z",
     "2030-01-01T12:00:00Z,2035-01-01T12:00:00Z,NONE", "7-field year list"},
    {"0 0 0 1 1 ? 1970-1971", 0, "2026-01-01T00:00:00Z", "NONE",
     "7-field years in the past"},
    {"0 0 0 * * ? 2199", 0, "2199-12-30T12:00:00Z", "2199-12-31T00:00:00Z,NONE",
     "last supported year"},
    {"* * * * * * 2027/2", 0, "2026-06-01T00:00:00Z",
     "2027-01-01T00:00:00Z,2027-01-01T00:00:01Z", "year step"},
    {"0 0 0 1 1 * 2067", 0, "2026-01-01T00:00:00Z", "NONE",
     "beyond the 40-year horizon"},
    {"0 0 0 1 1 * 2065", 0, "2025-01-01T00:00:00Z", "2065-01-01T00:00:00Z",
     "exactly the horizon year"},
    {"59 59 23 31 12 *", 0, "2026-12-31T23:59:58Z",
     "2026-12-31T23:59:59Z,2027-12-31T23:59:59Z", "last second of a year"},
    {"0 0 0 1 1 *", 0, "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
     "the epoch"},
    {"30 * * * *", 0, "1960-06-01T00:00:00Z", "1960-06-01T00:30:00Z",
     "before the epoch (negative instants)"},
    {"@weekly", 0, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z",
     "@weekly = Sunday midnight"},
    {"@hourly", 0, "2026-01-01T00:59:59Z", "2026-01-01T01:00:00Z", "@hourly"},
    {"  0   12  *  *  *  ", 0, "2026-01-01T00:00:00Z", "2026-01-01T12:00:00Z",
     "extra whitespace"},
    {"0\t12\t*\t*\t*", 0, "2026-01-01T00:00:00Z", "2026-01-01T12:00:00Z",
     "tabs"},
    {"0 0 1 JAN,jul *", 0, "2026-01-01T00:00:00Z", "2026-07-01T00:00:00Z",
     "names are case-insensitive"},
    {"0 0 1 1/5 *", 0, "2026-01-01T00:00:00Z",
     "2026-06-01T00:00:00Z,2026-11-01T00:00:00Z,2027-01-01T00:00:00Z",
     "N/S in month = N-12/S"},
};

static const struct cron_row every_rows[] = {
    /* anchor 2026-01-01T00:00:00Z */
    {"@every 1h30m", 0, "2025-12-31T23:59:50Z",
     "2026-01-01T01:30:00Z,2026-01-01T03:00:00Z",
     "before the anchor: first fire is anchor + d"},
    {"@every 1h30m", 0, "2026-01-01T00:00:00Z", "2026-01-01T01:30:00Z",
     "at the anchor: k >= 1"},
    {"@every 1h30m", 0, "2026-01-01T01:29:59Z", "2026-01-01T01:30:00Z",
     "just before a fire"},
    {"@every 1h30m", 0, "2026-01-01T01:30:00Z", "2026-01-01T03:00:00Z",
     "at a fire: strictly later"},
    {"@every 45s", 0, "2026-03-01T00:00:00Z",
     "2026-03-01T00:00:45Z,2026-03-01T00:01:30Z",
     "aligned to the anchor, not the wall clock (59 days = 113280 x 45s)"},
    {"@every 25h44m24s", 0, "2026-01-01T00:00:00Z",
     "2026-01-02T01:44:24Z,2026-01-03T03:28:48Z", "longer than a day"},
    {"@every 1.5h", 0, "2026-01-01T00:00:00Z", "2026-01-01T01:30:00Z",
     "fractional hours"},
    {"@every 1500ms", 0, "2026-01-01T00:00:00Z",
     "2026-01-01T00:00:01Z,2026-01-01T00:00:02Z",
     "truncated to whole seconds (as robfig/cron)"},
    {"@every 1m0.9s", 0, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z",
     "fraction below a second is dropped"},
    {"@every 1000000000ns", 0, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z",
     "ns units totalling 1s"},
    {"CRON_TZ=America/New_York @every 1h", 0, "2026-03-08T06:30:00Z",
     "2026-03-08T07:00:00Z,2026-03-08T08:00:00Z",
     "@every ignores the zone: real hours across DST"},
};

#define NY "America/New_York"
#define LON "Europe/London"
#define LH "Australia/Lord_Howe"
#define SP "America/Sao_Paulo"

static const struct cron_row dst_rows[] = {
    /* New York spring forward 2026-03-08 02:00 EST -> 03:00 EDT */
    {"30 2 * * *", NY, "2026-03-07T12:00:00-05:00",
     "2026-03-08T03:00:00-04:00,2026-03-09T02:30:00-04:00",
     "fixed time in the gap fires at the jump"},
    {"0,30 2 * * *", NY, "2026-03-08T00:00:00-05:00",
     "2026-03-08T03:00:00-04:00,2026-03-09T02:00:00-04:00",
     "two fixed times in the gap fire once"},
    {"0 2,3 * * *", NY, "2026-03-08T00:00:00-05:00",
     "2026-03-08T03:00:00-04:00,2026-03-09T02:00:00-04:00",
     "02:00 mapped onto 03:00 which also matches: one fire"},
    {"15 30 2 * * *", NY, "2026-03-08T00:00:00-05:00",
     "2026-03-08T03:00:00-04:00", "seconds field: the first instant"},
    {"0 3 * * *", NY, "2026-03-08T00:00:00-05:00", "2026-03-08T03:00:00-04:00",
     "03:00 exists"},
    {"*/30 * * * *", NY, "2026-03-08T01:00:00-05:00",
     "2026-03-08T01:30:00-05:00,2026-03-08T03:00:00-04:00,"
     "2026-03-08T03:30:00-04:00",
     "wildcard: skipped times never fire"},
    {"30 * * * *", NY, "2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00",
     "wildcard minute, any hour: 02:30 skipped"},
    {"* 2 * * *", NY, "2026-03-07T12:00:00-05:00", "2026-03-09T02:00:00-04:00",
     "minute starts with *: real time, the whole 2 am hour is skipped"},
    {"@daily", NY, "2026-03-07T12:00:00-05:00",
     "2026-03-08T00:00:00-05:00,2026-03-09T00:00:00-04:00", "@daily"},
    /* New York fall back 2026-11-01 02:00 EDT -> 01:00 EST */
    {"30 1 * * *", NY, "2026-11-01T00:00:00-04:00",
     "2026-11-01T01:30:00-04:00,2026-11-02T01:30:00-05:00",
     "fixed time in the repeated hour fires once, first occurrence"},
    {"30 1 * * *", NY, "2026-11-01T01:10:00-05:00", "2026-11-02T01:30:00-05:00",
     "start inside the second 01:xx: 01:30 EST is not a new fire"},
    {"0 2 * * *", NY, "2026-11-01T00:00:00-04:00", "2026-11-01T02:00:00-05:00",
     "02:00 happens once"},
    {"30 * * * *", NY, "2026-11-01T00:00:00-04:00",
     "2026-11-01T00:30:00-04:00,2026-11-01T01:30:00-04:00,"
     "2026-11-01T01:30:00-05:00,2026-11-01T02:30:00-05:00",
     "wildcard: repeated times fire in each occurrence"},
    {"*/20 1 * * *", NY, "2026-11-01T00:59:00-04:00",
     "2026-11-01T01:00:00-04:00,2026-11-01T01:20:00-04:00,"
     "2026-11-01T01:40:00-04:00,2026-11-01T01:00:00-05:00,"
     "2026-11-01T01:20:00-05:00,2026-11-01T01:40:00-05:00,"
     "2026-11-02T01:00:00-05:00",
     "minute starts with *: real time even with a fixed hour"},
    /* London 2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 -> 01:00 */
    {"30 1 * * *", LON, "2026-03-28T12:00:00Z",
     "2026-03-29T02:00:00+01:00,2026-03-30T01:30:00+01:00",
     "London gap: fires at 02:00 BST"},
    {"0 1 * * *", LON, "2026-10-25T00:00:00+01:00",
     "2026-10-25T01:00:00+01:00,2026-10-26T01:00:00+00:00",
     "London repeated 01:00 fires once"},
    {"0 * * * *", LON, "2026-10-25T00:30:00+01:00",
     "2026-10-25T01:00:00+01:00,2026-10-25T01:00:00+00:00,"
     "2026-10-25T02:00:00+00:00",
     "London wildcard fires both 01:00s"},
    /* Lord Howe: 30-minute shifts. 2026-10-04 02:00 +10:30 -> 02:30 +11;
     * 2026-04-05 02:00 +11 -> 01:30 +10:30 */
    {"15 2 * * *", LH, "2026-10-03T12:00:00+10:30",
     "2026-10-04T02:30:00+11:00,2026-10-05T02:15:00+11:00",
     "Lord Howe gap of 30 min: 02:15 runs at 02:30"},
    {"*/15 * * * *", LH, "2026-10-04T01:50:00+10:30",
     "2026-10-04T02:30:00+11:00,2026-10-04T02:45:00+11:00",
     "Lord Howe wildcard: 02:00 and 02:15 do not exist"},
    {"45 1 * * *", LH, "2026-04-05T00:00:00+11:00",
     "2026-04-05T01:45:00+11:00,2026-04-06T01:45:00+10:30",
     "Lord Howe repeated half hour: once"},
    {"*/15 * * * *", LH, "2026-04-05T01:20:00+11:00",
     "2026-04-05T01:30:00+11:00,2026-04-05T01:45:00+11:00,"
     "2026-04-05T01:30:00+10:30,2026-04-05T01:45:00+10:30,"
     "2026-04-05T02:00:00+10:30",
     "Lord Howe wildcard: repeated half hour twice"},
    /* Sao Paulo 2018-11-04: midnight skipped (00:00 -03 -> 01:00 -02) */
    {"0 0 * * *", SP, "2018-11-03T12:00:00-03:00",
     "2018-11-04T01:00:00-02:00,2018-11-05T00:00:00-02:00",
     "daily at midnight runs at 01:00 on the day midnight is skipped"},
    {"0 * * * *", SP, "2018-11-03T23:00:00-03:00",
     "2018-11-04T01:00:00-02:00,2018-11-04T02:00:00-02:00",
     "wildcard: the skipped midnight does not fire"},
    {"CRON_TZ=America/Sao_Paulo 0 0 * * *", 0, "2018-11-03T12:00:00-03:00",
     "2018-11-04T01:00:00-02:00", "CRON_TZ prefix overrides opts"},
    {"TZ=America/New_York 0 9 * * *", "Europe/London", "2026-01-05T00:00:00Z",
     "2026-01-05T09:00:00-05:00", "TZ= prefix overrides opts"},
    {"0 0 29 2 *", NY, "2096-03-01T00:00:00-05:00",
     "2104-02-29T00:00:00-05:00,2108-02-29T00:00:00-05:00",
     "rare fire across 16 DST periods (2100 not leap)"},
    {"0 0 30 2 *", NY, "2026-01-01T00:00:00-05:00", "NONE",
     "never, in a DST zone"},
    {"0 12 * * *", "Pacific/Apia", "2011-12-29T13:00:00-10:00",
     "2011-12-31T00:00:00+14:00,2011-12-31T12:00:00+14:00",
     "Apia skipped all of 2011-12-30: a fixed-time fire runs after the jump"},
    {"0 * * * *", "Pacific/Apia", "2011-12-29T23:30:00-10:00",
     "2011-12-31T00:00:00+14:00,2011-12-31T01:00:00+14:00",
     "Apia, wildcard: the skipped day's hours never fire"},
    {"0 12 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z",
     "2026-01-01T12:00:00+05:30", "fixed offset zone"},
};

TEST(cron_edge_calendar)
{
  ct_run_rows(calendar_rows, (int)CX_ARRAY_LEN(calendar_rows), 0);
}

TEST(cron_edge_every_anchor)
{
  ct_run_rows(every_rows, (int)CX_ARRAY_LEN(every_rows),
              ct_time("2026-01-01T00:00:00Z"));
}

TEST(cron_edge_dst)
{
  ct_run_rows(dst_rows, (int)CX_ARRAY_LEN(dst_rows), 0);
}
