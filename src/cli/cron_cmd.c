/*
 * `cronix cron next EXPR [--from RFC3339] [--count N] [--tz ZONE]` and
 * `cronix cron check EXPR [--tz ZONE]` (SPEC §2).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cron/cron.h"
#include "util/util.h"

#define MAX_COUNT 10000
/* The instants cx_cron_next answers for (years 1..9999 UTC); before or
 * after them it finds nothing, which would look like "never fires". */
#define FROM_MIN (-62135596800LL)     /* 0001-01-01T00:00:00Z */
#define FROM_MAX (253402300799LL - 1) /* 9999-12-31T23:59:58Z */

static const char cron_usage[] =
    "usage: cronix cron next EXPR [--from RFC3339] [--count N] [--tz ZONE]\n"
    "       cronix cron check EXPR [--tz ZONE]\n"
    "\n"
    "next   prints the next N (default 5) fire times strictly after --from\n"
    "       (default: now; years 0001..9999), one RFC 3339 line each in the\n"
    "       expression's zone; stops early, with a note on stderr, if the\n"
    "       schedule never fires again.\n"
    "check  exits 0 if EXPR is valid and fires again, else prints why and\n"
    "       exits 2.\n"
    "--tz   the IANA zone EXPR is read in unless it has a CRON_TZ= prefix\n"
    "       (default: the host's zone).\n";

int cx_cli_cron(int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : NULL;
  const char *expr = NULL, *from = NULL, *tz = NULL, *count_s = NULL;
  char err[CX_ERR_LEN];
  int64_t count = 5, after;

  if (sub == NULL) {
    fputs(cron_usage, stderr);
    return 2;
  }
  if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
    fputs(cron_usage, stdout);
    return 0;
  }
  int is_next = strcmp(sub, "next") == 0;
  if (!is_next && strcmp(sub, "check") != 0) {
    fprintf(stderr, "cronix cron: unknown subcommand '%s'\n%s", sub,
            cron_usage);
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(cron_usage, stdout);
      return 0;
    }
    if (strcmp(a, "--tz") == 0)
      slot = &tz;
    else if (is_next && strcmp(a, "--from") == 0)
      slot = &from;
    else if (is_next && strcmp(a, "--count") == 0)
      slot = &count_s;
    if (slot != NULL) {
      if (i + 1 >= argc) {
        fprintf(stderr, "cronix cron %s: %s needs a value\n", sub, a);
        return 2;
      }
      *slot = argv[++i];
      continue;
    }
    if (a[0] == '-' && a[1] == '-') {
      fprintf(stderr, "cronix cron %s: unknown option '%s'\n", sub, a);
      return 2;
    }
    if (expr != NULL) {
      fprintf(stderr,
              "cronix cron %s: one expression expected (quote it): extra "
              "'%s'\n",
              sub, a);
      return 2;
    }
    expr = a;
  }
  if (expr == NULL) {
    fprintf(stderr, "cronix cron %s: missing EXPR\n", sub);
    return 2;
  }
  if (count_s != NULL && cx_parse_int64(count_s, 1, MAX_COUNT, &count) != 0) {
    fprintf(stderr, "cronix cron next: --count must be 1..%d, got '%s'\n",
            MAX_COUNT, count_s);
    return 2;
  }
  after = cx_wall_s();
  if (from != NULL && cx_time_parse(from, &after) != 0) {
    fprintf(stderr,
            "cronix cron next: --from must be RFC 3339 like "
            "2026-01-02T03:04:05Z, got '%s'\n",
            from);
    return 2;
  }
  if (after < FROM_MIN || after > FROM_MAX) {
    fprintf(stderr,
            "cronix cron next: --from must be between "
            "0001-01-01T00:00:00Z and 9999-12-31T23:59:58Z, got '%s'\n",
            from ? from : "now");
    return 2;
  }
  if (tz != NULL && tz[0] != '\0') {
    const struct cx_tz *zone;
    if (cx_tz_get(tz, &zone, err) != 0) {
      fprintf(stderr, "cronix cron %s: --tz: %s\n", sub, err);
      return 2;
    }
  }

  struct cx_cron_opts opts = {.timezone = tz, .anchor = after};
  if (!is_next) {
    int rc = cx_cron_check(expr, &opts, after, err);
    if (rc != 0) {
      fprintf(stderr, "cronix cron check: %s\n", err);
      return 2;
    }
    printf("ok\n");
    return 0;
  }

  struct cx_cron *c = NULL;
  if (cx_cron_parse(expr, &opts, &c, err) != 0) {
    fprintf(stderr, "cronix cron next: %s\n", err);
    return 2;
  }
  for (int64_t i = 0; i < count; i++) {
    char line[64];
    int64_t next;
    if (cx_cron_next(c, after, &next) != 0 ||
        cx_time_format(next, cx_cron_tz(c), line, sizeof line) == 0) {
      /* Never fires again: stop early (SPEC §2), and say so where a
       * script reading the times does not see it. */
      cx_time_format(after, cx_cron_tz(c), line, sizeof line);
      fprintf(stderr,
              "cronix cron next: no fire after %s within %d years (or "
              "before year 10000)\n",
              line, CX_CRON_HORIZON_YEARS);
      break;
    }
    puts(line);
    after = next;
  }
  cx_cron_free(c);
  cx_tz_cleanup();
  return 0;
}
