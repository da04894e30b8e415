/*
 * Helpers shared by the cron unit tests: RFC 3339 parsing and printing
 * done independently of src/cron (so the tests do not trust the code under
 * test), and a runner for tables of (expr, zone, start, fires...) rows.
 */
#ifndef CX_CRONTEST_H
#define CX_CRONTEST_H

#include <stdint.h>

/* One row: expected is a comma-separated list of RFC 3339 times, each the
 * next fire strictly after the previous one (the first after start), or
 * "NONE" when the expression never fires after start. */
struct cron_row {
  const char *expr;
  const char *zone; /* NULL = UTC */
  const char *start;
  const char *expected;
  const char *source; /* where the row comes from, and why it differs */
};

/* "YYYY-MM-DDTHH:MM:SS" then "Z", "+HH:MM", "-HH:MM", "+HHMM" or nothing
 * (= UTC). Aborts the test on a malformed literal. */
int64_t ct_time(const char *s);
/* UTC text for messages: a static buffer per call slot (4 slots). */
const char *ct_utc(int64_t t);
/* Runs rows; prints every failing row and fails the test if any did.
 * anchor is passed to @every rows. */
void ct_run_rows(const struct cron_row *rows, int n, int64_t anchor);
/* Asserts expr parses (in zone) and returns the fires after start. */
int ct_next(const char *expr, const char *zone, int64_t after, int64_t *next);

#endif
