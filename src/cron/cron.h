/*
 * cron: cron expressions and time zones (SPEC §8).
 *
 * A parsed expression (struct cx_cron) is immutable: share it between
 * threads freely. Time is in whole unix seconds (UTC instants); the
 * calendar is evaluated in the expression's IANA zone, read from the system
 * tz database by src/cron/tz.c -- the only file that knows about zones. No
 * function here touches the TZ environment variable or libc's localtime.
 *
 * Grammar (case-insensitive):
 *   5 fields  min hour dom month dow
 *   6 fields  sec min hour dom month dow
 *   7 fields  sec min hour dom month dow year        (year 1970..2199)
 *   per field: *  ?(dom/dow only)  N  N-M  *\/S  N-M/S  N/S (= N-max/S)
 *              (here "*\/" stands for star-slash, which would end this
 *              comment)
 *              and comma lists of those; month names jan..dec, day names
 *              sun..sat; dow 0..7 (0 and 7 = Sunday; a range ending in
 *              "sun" ends at 7, so fri-sun works).
 *   dom extras: L (last day), L-N (N days before the last), NW (nearest
 *              weekday to N, within the month), LW (last weekday).
 *   dow extras: NL (last N-day of the month, 5L = last Friday),
 *              N#K (K-th N-day, 1 <= K <= 5).
 *   descriptors: @yearly @annually @monthly @weekly @daily @midnight
 *              @hourly, and @every <Go duration> (e.g. 1h30m, 45s; >= 1s;
 *              fires at anchor + k*d, k >= 1).
 *   prefix:    CRON_TZ=Zone or TZ=Zone, then the expression.
 * Day rule (Vixie): if dom or dow starts with '*' or is '?', a day must
 * match both; if both are restricted a day matching either fires.
 *
 * Daylight saving (ISC cron rule): an expression whose minute and hour
 * fields both start with something other than '*' is "fixed time": a fire
 * in a skipped interval happens once at the first instant after the jump,
 * a fire in a repeated interval happens once, at the first occurrence. All
 * other expressions follow real time: skipped local times never fire,
 * repeated ones fire in each occurrence. cx_cron_next is always strictly
 * later than its argument.
 */
#ifndef CX_CRON_H
#define CX_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* Longest expression accepted, in bytes. */
#define CX_CRON_MAX_EXPR 1024
/* cx_cron_next searches this many years past its argument, no further. */
#define CX_CRON_HORIZON_YEARS 40

struct cx_cron;
struct cx_tz;

struct cx_cron_opts {
  /* IANA zone the expression is read in when it has no CRON_TZ= prefix.
   * NULL or "" = the default zone (cx_tz_set_default, else the host's). */
  const char *timezone;
  /* Anchor for @every, unix seconds (the job's `created`). */
  int64_t anchor;
};

/* Parses expr. On success *out owns a new schedule (free with
 * cx_cron_free) and 0 is returned. On failure *out is NULL and it returns
 * CX_EPARSE (or -ENOMEM) and, if err is not NULL, writes a message naming
 * the field and the problem, e.g. "dow: unknown name 'fry'" or
 * "hour: step 0 must be 1..24"; an unknown zone gives cx_tz_get's message.
 * Limits: CX_CRON_MAX_EXPR bytes, numbers of at most 4 digits, at most 128
 * list items per field, steps 1..span of the field, L-N with N <= 30.
 * @every totals are truncated to whole seconds (as robfig/cron does) after
 * checking they reach 1 s. A well-formed expression that can never fire
 * (feb 30) still parses; see cx_cron_check. opts may be NULL. One
 * allocation. Thread-safe. */
int cx_cron_parse(const char *expr, const struct cx_cron_opts *opts,
                  struct cx_cron **out, char *err);
/* Frees c; NULL is fine. */
void cx_cron_free(struct cx_cron *c);

/* The first fire strictly after `after` (unix s). Returns 0 and sets *next,
 * or CX_ENEVER when there is none within CX_CRON_HORIZON_YEARS (or `after`
 * lies outside years 1..9999). Never allocates; thread-safe. */
int cx_cron_next(const struct cx_cron *c, int64_t after, int64_t *next);

/* Parses and checks that the expression fires at least once after `now`;
 * the validation the admin and `cronix cron check` use. Returns 0,
 * CX_EPARSE or CX_ENEVER, with a message in err. */
int cx_cron_check(const char *expr, const struct cx_cron_opts *opts,
                  int64_t now, char *err);

/* The zone the schedule is evaluated in (borrowed, lives as long as c). */
const struct cx_tz *cx_cron_tz(const struct cx_cron *c);
/* 1 if the ISC "fixed time" DST rule applies to the expression. */
int cx_cron_is_fixed_time(const struct cx_cron *c);

/* ---- time zones (src/cron/tz.c) ---------------------------------------- */

/* A period of constant UTC offset: [start, end) in unix seconds, maximal:
 * transitions that change only the abbreviation or isdst are not period
 * boundaries. start is INT64_MIN before the first change, end is INT64_MAX
 * after the last. offset, is_dst and abbr are those in effect at the
 * instant asked about. */
struct cx_tz_period {
  int64_t start;
  int64_t end;
  int32_t offset; /* seconds east of UTC, |offset| < 24 h */
  int is_dst;
  char abbr[16];
};

/* Looks a zone up by IANA name ("Europe/London", "UTC") in the system tz
 * database ($TZDIR, else /usr/share/zoneinfo; TZif versions 1-4, files up
 * to 256 KiB). "UTC" is built in and works without a database.
 *
 * NULL or "" gives the default zone: the one set with cx_tz_set_default,
 * else the host's, found once: $TZ (":Area/City", "Area/City", a path, or
 * a POSIX rule such as "JST-9"; "" means UTC), else /etc/timezone, else
 * the name after "zoneinfo/" in the /etc/localtime link, else the
 * /etc/localtime file itself (named "localtime"), else UTC.
 *
 * Zones are loaded once and cached for the life of the process; *out is
 * borrowed and stays valid until cx_tz_cleanup. Names longer than 128
 * bytes, with "..", a leading '/', or characters outside [A-Za-z0-9/_+-]
 * are refused. Returns 0; CX_ENOTFOUND (no such zone, or the file cannot
 * be opened); CX_EPARSE (bad name, or a corrupt file: bad magic, counts
 * beyond the file, bad indexes, a bad TZ footer, leap-second "right/"
 * zones, offsets of 24 h or more); -ENOMEM. A message naming the zone goes
 * in err (may be NULL). *out is NULL on failure. Thread-safe. */
int cx_tz_get(const char *name, const struct cx_tz **out, char *err);
/* The zone's name as given (or the host zone's name, "localtime" if the
 * host zone has no name). tz NULL = UTC. */
const char *cx_tz_name(const struct cx_tz *tz);
/* The period containing instant t (any int64). O(log n) in the zone's
 * table; past the table the zone's POSIX footer rule is applied (years
 * up to 2300 are precomputed at load, later ones cost O(1) per year
 * scanned). tz NULL = UTC. Thread-safe. */
void cx_tz_period_at(const struct cx_tz *tz, int64_t t,
                     struct cx_tz_period *out);
/* Offset in seconds east of UTC at instant t (the period's offset). */
int32_t cx_tz_offset(const struct cx_tz *tz, int64_t t);
/* Sets the zone that NULL/"" means (system.default_timezone); NULL or ""
 * goes back to the host's zone. Call before starting threads. Returns as
 * cx_tz_get; on failure the default is unchanged. */
int cx_tz_set_default(const char *name, char *err);
/* Frees every cached zone and forgets the default and host zones. Only at
 * exit, when no thread uses a zone. */
void cx_tz_cleanup(void);

/* ---- RFC 3339 ---------------------------------------------------------- */

/* Formats instant t as "2026-03-08T03:00:00-04:00" using the offset of tz
 * at t (tz NULL = UTC, printed as "+00:00"). An offset with seconds (LMT,
 * e.g. New York's -4:56:02 before 1883) is rounded to the nearest minute
 * and the clock is printed for the rounded offset, so the text still names
 * exactly t. buf needs 26 bytes (32 is plenty). Returns the length written
 * (25), or 0 with buf set to "" when len is too small or the local year is
 * outside 0000..9999. Thread-safe. */
size_t cx_time_format(int64_t t, const struct cx_tz *tz, char *buf, size_t len);
/* Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" (also ' ' or 't'
 * for 'T', 'z' for 'Z'; "-00:00" is UTC), at most 64 bytes. Every field
 * must be in range for its month (no Feb 30, hour 24, second 60, offset
 * hour 24). The fraction is dropped (floor to the second, which keeps
 * "strictly after" exact). Returns 0, or CX_EPARSE leaving *t untouched.
 * Thread-safe. */
int cx_time_parse(const char *s, int64_t *t);

#endif
