/*
 * cron: vectors from public cron test suites, adapted to the Cronix dialect.
 *
 * Sources (cited per row):
 *   robfig   robfig/cron spec_test.go (TestActivation, TestNext), 6 fields
 *            seconds first, like ours. robfig's 5-field rows are seconds
 *            first without dow; here they get a trailing " *" (6 fields).
 *            TestActivation rows check Next(t - 1s) == t; their "false"
 *            rows are turned into the real next fire, derived by hand.
 *   ccron    staticlibs/ccronexpr ccronexpr_test.c test_expr (UTC, 6 fields).
 *   croniter kiorky/croniter src/croniter/tests/test_croniter.py (5 fields;
 *            croniter's 6th field is seconds LAST, so those rows are moved
 *            to our seconds-first form). Naive datetimes are read as UTC.
 *   cronie   cronie crontab(5) documented examples.
 * Deliberate differences from a source are marked "ADAPTED:" with why:
 *   - DST: Cronix applies the ISC rule to fixed-time expressions (a fire
 *     in a skipped hour runs at the first instant after the jump, a fire
 *     in a repeated hour runs once), where robfig skips / runs twice.
 *   - Vixie star rule: a day field starting with '*' (e.g. '*\/10') is
 *     unrestricted, so the days are ANDed.
 */
#include "support/test.h"
#include "util/util.h"
#include "unit/cron/crontest.h"

#define NY "America/New_York"

static const struct cron_row robfig_rows[] = {
    /* TestActivation: every fifteen minutes */
    {"0 0/15 * * * *", 0, "2012-07-09T14:59:59Z", "2012-07-09T15:00:00Z",
     "robfig TestActivation 0 0/15 * * * (+dow)"},
    {"0 0/15 * * * *", 0, "2012-07-09T15:44:59Z", "2012-07-09T15:45:00Z",
     "robfig TestActivation"},
    {"0 0/15 * * * *", 0, "2012-07-09T15:39:59Z", "2012-07-09T15:45:00Z",
     "robfig TestActivation 15:40 false -> next 15:45"},
    {"0 5/15 * * * *", 0, "2012-07-09T15:04:59Z", "2012-07-09T15:05:00Z",
     "robfig TestActivation"},
    {"0 5/15 * * * *", 0, "2012-07-09T15:19:59Z", "2012-07-09T15:20:00Z",
     "robfig TestActivation"},
    {"0 5/15 * * * *", 0, "2012-07-09T15:49:59Z", "2012-07-09T15:50:00Z",
     "robfig TestActivation"},
    {"0 0/15 * * Jul *", 0, "2012-07-15T14:59:59Z", "2012-07-15T15:00:00Z",
     "robfig TestActivation named month"},
    {"0 0/15 * * Jun *", 0, "2012-07-15T14:59:59Z", "2013-06-01T00:00:00Z",
     "robfig TestActivation Jun false -> next June"},
    {"0 30 08 ? Jul Sun", 0, "2012-07-15T08:29:59Z", "2012-07-15T08:30:00Z",
     "robfig TestActivation everything set"},
    {"0 30 08 15 Jul ?", 0, "2012-07-15T08:29:59Z", "2012-07-15T08:30:00Z",
     "robfig TestActivation"},
    {"0 30 08 ? Jul Sun", 0, "2012-07-16T08:29:59Z", "2012-07-22T08:30:00Z",
     "robfig TestActivation false -> next Sunday"},
    {"0 30 08 15 Jul ?", 0, "2012-07-16T08:29:59Z", "2013-07-15T08:30:00Z",
     "robfig TestActivation false -> next year"},
    {"@hourly", 0, "2012-07-09T14:59:59Z", "2012-07-09T15:00:00Z",
     "robfig TestActivation"},
    {"@hourly", 0, "2012-07-09T15:03:59Z", "2012-07-09T16:00:00Z",
     "robfig TestActivation 15:04 false"},
    {"@daily", 0, "2012-07-09T14:59:59Z", "2012-07-10T00:00:00Z",
     "robfig TestActivation 15:00 false"},
    {"@daily", 0, "2012-07-08T23:59:59Z", "2012-07-09T00:00:00Z",
     "robfig TestActivation"},
    {"@weekly", 0, "2012-07-08T23:59:59Z", "2012-07-15T00:00:00Z",
     "robfig TestActivation Mon false"},
    {"@weekly", 0, "2012-07-07T23:59:59Z", "2012-07-08T00:00:00Z",
     "robfig TestActivation"},
    {"@weekly", 0, "2012-07-08T00:59:59Z", "2012-07-15T00:00:00Z",
     "robfig TestActivation 01:00 false"},
    {"@monthly", 0, "2012-07-07T23:59:59Z", "2012-08-01T00:00:00Z",
     "robfig TestActivation Jul 8 false"},
    {"@monthly", 0, "2012-06-30T23:59:59Z", "2012-07-01T00:00:00Z",
     "robfig TestActivation"},
    {"0 * * 1,15 * Sun", 0, "2012-07-14T23:59:59Z", "2012-07-15T00:00:00Z",
     "robfig TestActivation dom/dow OR"},
    {"0 * * 1,15 * Sun", 0, "2012-06-14T23:59:59Z", "2012-06-15T00:00:00Z",
     "robfig TestActivation dom/dow OR (Friday the 15th)"},
    {"0 * * 1,15 * Sun", 0, "2012-07-31T23:59:59Z", "2012-08-01T00:00:00Z",
     "robfig TestActivation dom/dow OR (Wednesday the 1st)"},
    {"0 * * * * Mon", 0, "2012-07-14T23:59:59Z", "2012-07-16T00:00:00Z",
     "robfig TestActivation star AND: Sunday false -> Monday"},
    {"0 * * */10 * Sun", 0, "2012-07-14T23:59:59Z", "2012-10-21T00:00:00Z",
     "robfig TestActivation false; Vixie AND: first Sunday on 1/11/21/31"},
    {"0 * * 1,15 * *", 0, "2012-07-08T23:59:59Z", "2012-07-15T00:00:00Z",
     "robfig TestActivation Jul 9 false"},
    {"0 * * 1,15 * *", 0, "2012-07-14T23:59:59Z", "2012-07-15T00:00:00Z",
     "robfig TestActivation"},
    {"0 * * */2 * Sun", 0, "2012-07-14T23:59:59Z", "2012-07-15T00:00:00Z",
     "robfig TestActivation star AND"},
    /* TestNext */
    {"0 0/15 * * * *", 0, "2012-07-09T14:45:00Z", "2012-07-09T15:00:00Z",
     "robfig TestNext simple"},
    {"0 0/15 * * * *", 0, "2012-07-09T14:59:00Z", "2012-07-09T15:00:00Z",
     "robfig TestNext simple"},
    {"0 0/15 * * * *", 0, "2012-07-09T14:59:59Z", "2012-07-09T15:00:00Z",
     "robfig TestNext simple"},
    {"0 20-35/15 * * * *", 0, "2012-07-09T15:45:00Z", "2012-07-09T16:20:00Z",
     "robfig TestNext wrap hours"},
    {"0 */15 * * * *", 0, "2012-07-09T23:46:00Z", "2012-07-10T00:00:00Z",
     "robfig TestNext wrap days"},
    {"0 20-35/15 * * * *", 0, "2012-07-09T23:45:00Z", "2012-07-10T00:20:00Z",
     "robfig TestNext wrap days"},
    {"15/35 20-35/15 * * * *", 0, "2012-07-09T23:35:51Z",
     "2012-07-10T00:20:15Z", "robfig TestNext wrap days"},
    {"15/35 20-35/15 1/2 * * *", 0, "2012-07-09T23:35:51Z",
     "2012-07-10T01:20:15Z", "robfig TestNext"},
    {"15/35 20-35/15 10-12 * * *", 0, "2012-07-09T23:35:51Z",
     "2012-07-10T10:20:15Z", "robfig TestNext"},
    {"15/35 20-35/15 1/2 */2 * *", 0, "2012-07-09T23:35:51Z",
     "2012-07-11T01:20:15Z", "robfig TestNext"},
    {"15/35 20-35/15 * 9-20 * *", 0, "2012-07-09T23:35:51Z",
     "2012-07-10T00:20:15Z", "robfig TestNext"},
    {"15/35 20-35/15 * 9-20 Jul *", 0, "2012-07-09T23:35:51Z",
     "2012-07-10T00:20:15Z", "robfig TestNext"},
    {"0 0 0 9 Apr-Oct ?", 0, "2012-07-09T23:35:00Z", "2012-08-09T00:00:00Z",
     "robfig TestNext wrap months"},
    {"0 0 0 */5 Apr,Aug,Oct Mon", 0, "2012-07-09T23:35:00Z",
     "2012-08-06T00:00:00Z", "robfig TestNext (star AND)"},
    {"0 0 0 */5 Oct Mon", 0, "2012-07-09T23:35:00Z", "2012-10-01T00:00:00Z",
     "robfig TestNext"},
    {"0 0 0 * Feb Mon", 0, "2012-07-09T23:35:00Z", "2013-02-04T00:00:00Z",
     "robfig TestNext wrap years"},
    {"0 0 0 * Feb Mon/2", 0, "2012-07-09T23:35:00Z", "2013-02-01T00:00:00Z",
     "robfig TestNext Mon/2 = Mon,Wed,Fri"},
    {"0 * * * * *", 0, "2012-12-31T23:59:45Z", "2013-01-01T00:00:00Z",
     "robfig TestNext wrap everything"},
    {"0 0 0 29 Feb ?", 0, "2012-07-09T23:35:00Z", "2016-02-29T00:00:00Z",
     "robfig TestNext leap year"},
    {"0 30 2 11 Mar ?", NY, "2012-03-11T00:00:00-05:00",
     "2012-03-11T03:00:00-04:00,2013-03-11T02:30:00-04:00",
     "robfig TestNext; ADAPTED: ISC rule runs the skipped 02:30 at 03:00 "
     "(robfig skips to 2013)"},
    {"0 0 * * * ?", NY, "2012-03-11T00:00:00-05:00",
     "2012-03-11T01:00:00-05:00,2012-03-11T03:00:00-04:00,"
     "2012-03-11T04:00:00-04:00,2012-03-11T05:00:00-04:00",
     "robfig TestNext hourly across spring forward (wildcard: real time)"},
    {"0 0 1 * * ?", NY, "2012-03-11T00:00:00-05:00",
     "2012-03-11T01:00:00-05:00,2012-03-12T01:00:00-04:00",
     "robfig TestNext 1am nightly"},
    {"0 0 2 * * ?", NY, "2012-03-11T00:00:00-05:00",
     "2012-03-11T03:00:00-04:00,2012-03-12T02:00:00-04:00",
     "robfig TestNext 2am nightly; ADAPTED: ISC runs it at 03:00 (robfig "
     "skips the day)"},
    {"0 30 2 04 Nov ?", NY, "2012-11-04T00:00:00-04:00",
     "2012-11-04T02:30:00-05:00", "robfig TestNext fall back"},
    {"0 30 1 04 Nov ?", NY, "2012-11-04T01:45:00-04:00",
     "2013-11-04T01:30:00-05:00",
     "robfig TestNext; ADAPTED: ISC fires a repeated time only at its first "
     "occurrence (01:30 EDT, before the start); robfig fires 01:30 EST"},
    {"0 0 * * * ?", NY, "2012-11-04T00:00:00-04:00",
     "2012-11-04T01:00:00-04:00,2012-11-04T01:00:00-05:00,"
     "2012-11-04T02:00:00-05:00",
     "robfig TestNext hourly across fall back (wildcard: both 01:00s)"},
    {"0 0 1 * * ?", NY, "2012-11-04T00:00:00-04:00",
     "2012-11-04T01:00:00-04:00,2012-11-05T01:00:00-05:00",
     "robfig TestNext 1am nightly; ADAPTED: ISC runs it once (robfig twice)"},
    {"0 0 1 * * ?", NY, "2012-11-04T01:00:00-05:00",
     "2012-11-05T01:00:00-05:00", "robfig TestNext"},
    {"0 0 2 * * ?", NY, "2012-11-04T00:00:00-04:00",
     "2012-11-04T02:00:00-05:00,2012-11-05T02:00:00-05:00",
     "robfig TestNext 2am nightly"},
    {"0 0 3 * * ?", NY, "2012-11-04T00:00:00-04:00",
     "2012-11-04T03:00:00-05:00,2012-11-05T03:00:00-05:00",
     "robfig TestNext 3am nightly"},
    {"0 0 0 30 Feb ?", 0, "2012-07-09T23:35:00Z", "NONE",
     "robfig TestNext unsatisfiable"},
    {"0 0 0 31 Apr ?", 0, "2012-07-09T23:35:00Z", "NONE",
     "robfig TestNext unsatisfiable"},
};

static const struct cron_row ccron_rows[] = {
#define CC(e, a, b)                                                            \
  {                                                                            \
    e, 0, a "Z", b "Z", "ccronexpr test_expr"                                  \
  }
    CC("*/15 * 1-4 * * *", "2012-07-01T09:53:50", "2012-07-02T01:00:00"),
    CC("*/15 * 1-4 * * *", "2012-07-01T09:53:00", "2012-07-02T01:00:00"),
    CC("0 */2 1-4 * * *", "2012-07-01T09:00:00", "2012-07-02T01:00:00"),
    CC("0 */2 * * * *", "2012-07-01T09:00:00", "2012-07-01T09:02:00"),
    CC("0 */2 * * * *", "2013-07-01T09:00:00", "2013-07-01T09:02:00"),
    CC("0 */2 * * * *", "2018-09-14T14:24:00", "2018-09-14T14:26:00"),
    CC("0 */2 * * * *", "2018-09-14T14:25:00", "2018-09-14T14:26:00"),
    CC("0 */20 * * * *", "2018-09-14T14:24:00", "2018-09-14T14:40:00"),
    CC("* * * * * *", "2012-07-01T09:00:00", "2012-07-01T09:00:01"),
    CC("* * * * * *", "2012-12-01T09:00:58", "2012-12-01T09:00:59"),
    CC("10 * * * * *", "2012-12-01T09:42:09", "2012-12-01T09:42:10"),
    CC("11 * * * * *", "2012-12-01T09:42:10", "2012-12-01T09:42:11"),
    CC("10 * * * * *", "2012-12-01T09:42:10", "2012-12-01T09:43:10"),
    CC("10-15 * * * * *", "2012-12-01T09:42:09", "2012-12-01T09:42:10"),
    CC("10-15 * * * * *", "2012-12-01T21:42:14", "2012-12-01T21:42:15"),
    CC("0 * * * * *", "2012-12-01T21:10:42", "2012-12-01T21:11:00"),
    CC("0 * * * * *", "2012-12-01T21:11:00", "2012-12-01T21:12:00"),
    CC("0 11 * * * *", "2012-12-01T21:10:42", "2012-12-01T21:11:00"),
    CC("0 10 * * * *", "2012-12-01T21:11:00", "2012-12-01T22:10:00"),
    CC("0 0 * * * *", "2012-09-30T11:01:00", "2012-09-30T12:00:00"),
    CC("0 0 * * * *", "2012-09-30T12:00:00", "2012-09-30T13:00:00"),
    CC("0 0 * * * *", "2012-09-10T23:01:00", "2012-09-11T00:00:00"),
    CC("0 0 * * * *", "2012-09-11T00:00:00", "2012-09-11T01:00:00"),
    CC("0 0 0 * * *", "2012-09-01T14:42:43", "2012-09-02T00:00:00"),
    CC("0 0 0 * * *", "2012-09-02T00:00:00", "2012-09-03T00:00:00"),
    CC("* * * 10 * *", "2012-10-09T15:12:42", "2012-10-10T00:00:00"),
    CC("* * * 10 * *", "2012-10-11T15:12:42", "2012-11-10T00:00:00"),
    CC("0 0 0 * * *", "2012-09-30T15:12:42", "2012-10-01T00:00:00"),
    CC("0 0 0 * * *", "2012-10-01T00:00:00", "2012-10-02T00:00:00"),
    CC("0 0 0 * * *", "2012-08-30T15:12:42", "2012-08-31T00:00:00"),
    CC("0 0 0 * * *", "2012-08-31T00:00:00", "2012-09-01T00:00:00"),
    CC("0 0 0 * * *", "2012-10-30T15:12:42", "2012-10-31T00:00:00"),
    CC("0 0 0 * * *", "2012-10-31T00:00:00", "2012-11-01T00:00:00"),
    CC("0 0 0 1 * *", "2012-10-30T15:12:42", "2012-11-01T00:00:00"),
    CC("0 0 0 1 * *", "2012-11-01T00:00:00", "2012-12-01T00:00:00"),
    CC("0 0 0 1 * *", "2010-12-31T15:12:42", "2011-01-01T00:00:00"),
    CC("0 0 0 1 * *", "2011-01-01T00:00:00", "2011-02-01T00:00:00"),
    CC("0 0 0 31 * *", "2011-10-30T15:12:42", "2011-10-31T00:00:00"),
    CC("0 0 0 1 * *", "2011-10-30T15:12:42", "2011-11-01T00:00:00"),
    CC("* * * * * 2", "2010-10-25T15:12:42", "2010-10-26T00:00:00"),
    CC("* * * * * 2", "2010-10-20T15:12:42", "2010-10-26T00:00:00"),
    CC("* * * * * 2", "2010-10-27T15:12:42", "2010-11-02T00:00:00"),
    CC("55 5 * * * *", "2010-10-27T15:04:54", "2010-10-27T15:05:55"),
    CC("55 5 * * * *", "2010-10-27T15:05:55", "2010-10-27T16:05:55"),
    CC("55 * 10 * * *", "2010-10-27T09:04:54", "2010-10-27T10:00:55"),
    CC("55 * 10 * * *", "2010-10-27T10:00:55", "2010-10-27T10:01:55"),
    CC("* 5 10 * * *", "2010-10-27T09:04:55", "2010-10-27T10:05:00"),
    CC("* 5 10 * * *", "2010-10-27T10:05:00", "2010-10-27T10:05:01"),
    CC("55 * * 3 * *", "2010-10-02T10:05:54", "2010-10-03T00:00:55"),
    CC("55 * * 3 * *", "2010-10-03T00:00:55", "2010-10-03T00:01:55"),
    CC("* * * 3 11 *", "2010-10-02T14:42:55", "2010-11-03T00:00:00"),
    CC("* * * 3 11 *", "2010-11-03T00:00:00", "2010-11-03T00:00:01"),
    CC("0 0 0 29 2 *", "2007-02-10T14:42:55", "2008-02-29T00:00:00"),
    CC("0 0 0 29 2 *", "2008-02-29T00:00:00", "2012-02-29T00:00:00"),
    CC("0 0 7 ? * MON-FRI", "2009-09-26T00:42:55", "2009-09-28T07:00:00"),
    CC("0 0 7 ? * MON-FRI", "2009-09-28T07:00:00", "2009-09-29T07:00:00"),
    CC("0 30 23 30 1/3 ?", "2010-12-30T00:00:00", "2011-01-30T23:30:00"),
    CC("0 30 23 30 1/3 ?", "2011-01-30T23:30:00", "2011-04-30T23:30:00"),
    CC("0 30 23 30 1/3 ?", "2011-04-30T23:30:00", "2011-07-30T23:30:00"),
    {"0 0 0 31 6 *", 0, "2012-07-01T09:53:50Z", "NONE",
     "ccronexpr check_calc_invalid (June has 30 days)"},
#undef CC
};

static const struct cron_row croniter_rows[] = {
    {"15,25 * * * * *", 0, "2012-04-06T13:26:10Z",
     "2012-04-06T13:26:15Z,2012-04-06T13:26:25Z,2012-04-06T13:27:15Z",
     "croniter testSecondSec (seconds moved first)"},
    {"*/1 * * * * *", 0, "2012-04-06T13:26:10Z", "2012-04-06T13:26:11Z",
     "croniter testSecond"},
    {"*/15 * * * * *", 0, "2012-04-06T13:26:36Z",
     "2012-04-06T13:26:45Z,2012-04-06T13:27:00Z,2012-04-06T13:27:15Z",
     "croniter testSecondRepeat (seconds moved first)"},
    {"*/1 * * * *", 0, "2010-01-23T12:18:00Z", "2010-01-23T12:19:00Z",
     "croniter testMinute"},
    {"*/5 * * * *", 0, "2010-01-23T12:18:00Z",
     "2010-01-23T12:20:00Z,2010-01-23T12:25:00Z", "croniter testMinute"},
    {"*/5 * * * *", 0, "2010-01-23T12:50:00Z",
     "2010-01-23T12:55:00Z,2010-01-23T13:00:00Z", "croniter testMinute"},
    {"0 */3 * * *", 0, "2010-01-24T12:02:00Z",
     "2010-01-24T15:00:00Z,2010-01-24T18:00:00Z,2010-01-24T21:00:00Z,"
     "2010-01-25T00:00:00Z",
     "croniter testHour"},
    {"0 0 */3 * *", 0, "2010-02-24T12:09:00Z",
     "2010-02-25T00:00:00Z,2010-02-28T00:00:00Z,2010-03-01T00:00:00Z",
     "croniter testDay"},
    {"0 0 * * *", 0, "1996-02-27T00:00:00Z",
     "1996-02-28T00:00:00Z,1996-02-29T00:00:00Z", "croniter testDay leap"},
    {"0 0 * * *", 0, "2000-02-27T00:00:00Z",
     "2000-02-28T00:00:00Z,2000-02-29T00:00:00Z", "croniter testDay leap"},
    {"0 0 * * sat", 0, "2010-02-25T00:00:00Z",
     "2010-02-27T00:00:00Z,2010-03-06T00:00:00Z", "croniter testWeekDay"},
    {"0 0 1 * wed", 0, "2010-01-25T00:00:00Z",
     "2010-01-27T00:00:00Z,2010-02-01T00:00:00Z,2010-02-03T00:00:00Z",
     "croniter testWeekDay (dom/dow OR)"},
    {"0 0 * * sat#1", 0, "2010-02-25T00:00:00Z",
     "2010-03-06T00:00:00Z,2010-04-03T00:00:00Z", "croniter testNthWeekDay"},
    {"0 0 * * wed#5", 0, "2010-01-25T00:00:00Z",
     "2010-03-31T00:00:00Z,2010-06-30T00:00:00Z,2010-09-29T00:00:00Z",
     "croniter testNthWeekDay"},
    {"0 0 1 * *", 0, "2010-01-25T00:00:00Z",
     "2010-02-01T00:00:00Z,2010-03-01T00:00:00Z", "croniter testMonth"},
    {"0 0 1 * *", 0, "2010-11-25T00:00:00Z",
     "2010-12-01T00:00:00Z,2011-01-01T00:00:00Z", "croniter testMonth"},
    {"0 0 l * *", 0, "2015-09-04T00:00:00Z",
     "2015-09-30T00:00:00Z,2015-10-31T00:00:00Z,2015-11-30T00:00:00Z,"
     "2015-12-31T00:00:00Z",
     "croniter testLastDayOfMonth"},
    {"30 22 * * sun-thu", 0, "2010-08-25T15:56:00Z", "2010-08-25T22:30:00Z",
     "croniter testSundayToThursdayWithAlphaConversion"},
    {"0 0 * * 7", 0, "2010-02-25T00:00:00Z",
     "2010-02-28T00:00:00Z,2010-03-07T00:00:00Z", "croniter testISOWeekday"},
    {"0 * * 3 *", 0, "2012-01-01T00:00:00Z",
     "2012-03-01T00:00:00Z,2012-03-01T01:00:00Z,2012-03-01T02:00:00Z",
     "croniter testBug2"},
    {"00 03 16,30 * *", 0, "2013-03-01T12:17:34Z",
     "2013-03-16T03:00:00Z,2013-03-30T03:00:00Z,2013-04-16T03:00:00Z",
     "croniter testBug3"},
    {"* * 31 2 *", 0, "2012-02-24T00:00:00Z", "NONE", "croniter test_bug34"},
    {"0 4/6 * * *", 0, "2012-02-24T00:00:00Z", "2012-02-24T04:00:00Z",
     "croniter testBug57"},
    {"0 0/6 * * *", 0, "2012-02-24T00:00:00Z", "2012-02-24T06:00:00Z",
     "croniter testBug57"},
    {"0 0 1 3,6,9,12 *", 0, "2016-03-01T00:00:00Z", "2016-06-01T00:00:00Z",
     "croniter test_multiple_months"},
    {"0 0 1 3,6,9,12 *", 0, "2016-02-15T00:00:00Z", "2016-03-01T00:00:00Z",
     "croniter test_multiple_months"},
    {"0 0 1 3,6,9,12 *", 0, "2016-12-03T10:00:00Z", "2017-03-01T00:00:00Z",
     "croniter test_multiple_months"},
    {"1-9/2 0 1 * *", 0, "2013-03-04T00:00:00Z",
     "2013-04-01T00:01:00Z,2013-04-01T00:03:00Z,2013-04-01T00:05:00Z,"
     "2013-04-01T00:07:00Z,2013-04-01T00:09:00Z",
     "croniter test_rangeGenerator"},
    {"*/30 * * * *", "Europe/Athens", "2013-10-27T02:00:00+03:00",
     "2013-10-27T02:30:00+03:00,2013-10-27T03:00:00+03:00,"
     "2013-10-27T03:30:00+03:00,2013-10-27T03:00:00+02:00,"
     "2013-10-27T03:30:00+02:00,2013-10-27T04:00:00+02:00,"
     "2013-10-27T04:30:00+02:00",
     "croniter testTimezoneWinterTime (wildcard: repeated hour twice)"},
    {"*/30 * * * *", "Europe/Athens", "2013-03-31T01:00:00+02:00",
     "2013-03-31T01:30:00+02:00,2013-03-31T02:00:00+02:00,"
     "2013-03-31T02:30:00+02:00,2013-03-31T04:00:00+03:00,"
     "2013-03-31T04:30:00+03:00",
     "croniter testTimezoneSummerTime (wildcard: skipped hour skipped)"},
    {"0 0 * * *", "Europe/Warsaw", "2017-03-26T00:00:00+01:00",
     "2017-03-27T00:00:00+02:00", "croniter test_std_dst"},
    {"0 * * * *", "Europe/Warsaw", "2017-03-26T01:00:00+01:00",
     "2017-03-26T03:00:00+02:00", "croniter test_std_dst"},
    {"0 0 * * *", "Europe/Warsaw", "2017-10-29T00:00:00+02:00",
     "2017-10-30T00:00:00+01:00", "croniter test_std_dst"},
    {"0 * * * *", "Europe/Warsaw", "2017-10-29T01:59:00+02:00",
     "2017-10-29T02:00:00+02:00,2017-10-29T02:00:00+01:00,"
     "2017-10-29T03:00:00+01:00,2017-10-29T04:00:00+01:00",
     "croniter test_std_dst (wildcard: 02:00 twice)"},
    {"0 0 * * *", "America/Sao_Paulo", "2018-02-17T21:00:00-02:00",
     "2018-02-18T00:00:00-03:00", "croniter test_std_dst2"},
    {"0 0 * * *", "America/Sao_Paulo", "2018-02-17T23:00:00-03:00",
     "2018-02-18T00:00:00-03:00,2018-02-19T00:00:00-03:00",
     "croniter test_std_dst2"},
    {"0 0 * * *", "America/Sao_Paulo", "2018-02-17T22:05:00-02:00",
     "2018-02-18T00:00:00-03:00", "croniter test_std_dst2"},
};

/* cronie crontab(5) EXAMPLE CRON FILE and its notes. */
static const struct cron_row cronie_rows[] = {
    {"5 0 * * *", 0, "2026-01-01T00:05:00Z",
     "2026-01-02T00:05:00Z,2026-01-03T00:05:00Z",
     "cronie crontab(5): five minutes after midnight, every day"},
    {"15 14 1 * *", 0, "2026-01-01T14:15:00Z",
     "2026-02-01T14:15:00Z,2026-03-01T14:15:00Z",
     "cronie crontab(5): 2:15pm on the first of every month"},
    {"0 22 * * 1-5", 0, "2026-01-02T22:00:00Z",
     "2026-01-05T22:00:00Z,2026-01-06T22:00:00Z",
     "cronie crontab(5): 10 pm on weekdays (2026-01-02 is a Friday)"},
    {"23 0-23/2 * * *", 0, "2026-01-01T00:00:00Z",
     "2026-01-01T00:23:00Z,2026-01-01T02:23:00Z,2026-01-01T04:23:00Z",
     "cronie crontab(5): 23 minutes after midnight, 2am, 4am ..."},
    {"5 4 * * sun", 0, "2026-01-01T00:00:00Z",
     "2026-01-04T04:05:00Z,2026-01-11T04:05:00Z",
     "cronie crontab(5): 4:05 every Sunday"},
    {"30 4 1,15 * 5", 0, "2026-01-01T00:00:00Z",
     "2026-01-01T04:30:00Z,2026-01-02T04:30:00Z,2026-01-09T04:30:00Z,"
     "2026-01-15T04:30:00Z,2026-01-16T04:30:00Z",
     "cronie crontab(5): 4:30 on the 1st and 15th plus every Friday (OR)"},
    {"0 */2 * * *", 0, "2026-01-01T01:00:00Z",
     "2026-01-01T02:00:00Z,2026-01-01T04:00:00Z",
     "cronie crontab(5): step values, every other hour"},
    {"0 0 * * 7", 0, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z",
     "cronie crontab(5): 0 or 7 is Sunday"},
    {"0 0 * jan-mar mon-fri", 0, "2026-03-31T00:00:00Z", "2027-01-01T00:00:00Z",
     "cronie crontab(5): names for month and dow (2027-01-01 is a Friday)"},
    {"@yearly", 0, "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z",
     "cronie crontab(5) @yearly = 0 0 1 1 *"},
    {"@annually", 0, "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z",
     "cronie crontab(5) @annually"},
    {"@midnight", 0, "2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z",
     "cronie crontab(5) @midnight"},
};

TEST(cron_vectors_robfig)
{
  ct_run_rows(robfig_rows, (int)CX_ARRAY_LEN(robfig_rows), 0);
}

TEST(cron_vectors_ccronexpr)
{
  ct_run_rows(ccron_rows, (int)CX_ARRAY_LEN(ccron_rows), 0);
}

TEST(cron_vectors_croniter)
{
  ct_run_rows(croniter_rows, (int)CX_ARRAY_LEN(croniter_rows), 0);
}

TEST(cron_vectors_cronie)
{
  ct_run_rows(cronie_rows, (int)CX_ARRAY_LEN(cronie_rows), 0);
}
