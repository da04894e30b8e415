/*
 * Parse and next-fire throughput of the cron engine over the fixed mix in
 * bench/exprs.txt -- the same mix and method as bench/go/robfig_bench.go's
 * `exprs` mode, so bench/run.sh can print the two side by side.
 *
 *   cron_bench FILE      prints "parse_ns_per_op X" and "next_ns_per_op Y"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron/cron.h"
#include "util/util.h"

#define MAX_EXPRS 64

/* bench programs link tests/support without its runner */
const char *cx_test_tmpdir(void);
const char *cx_test_tmpdir(void)
{
  return "/tmp";
}

int main(int argc, char **argv)
{
  char *exprs[MAX_EXPRS];
  struct cx_cron *scheds[MAX_EXPRS];
  char line[CX_CRON_MAX_EXPR + 2], err[CX_ERR_LEN];
  int n = 0;
  struct cx_cron_opts opts = {.timezone = "UTC", .anchor = 0};

  if (argc != 2) {
    fprintf(stderr, "usage: cron_bench EXPRS_FILE\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "r");
  if (f == NULL) {
    perror(argv[1]);
    return 1;
  }
  while (n < MAX_EXPRS && fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (line[0] == '\0' || line[0] == '#')
      continue;
    exprs[n] = cx_strdup(line);
    if (cx_cron_parse(exprs[n], &opts, &scheds[n], err) != 0) {
      fprintf(stderr, "cronix rejects '%s': %s\n", exprs[n], err);
      return 1;
    }
    n++;
  }
  fclose(f);

  /* Parse: at least one second of whole passes over the mix. */
  long iters = 0;
  cx_mono start = cx_mono_now();
  while (cx_mono_now() - start < 1000000) {
    for (int i = 0; i < n; i++) {
      struct cx_cron *c;
      if (cx_cron_parse(exprs[i], &opts, &c, err) != 0)
        return 1;
      cx_cron_free(c);
      iters++;
    }
  }
  printf("parse_ns_per_op %.1f\n",
         (double)(cx_mono_now() - start) * 1000.0 / (double)iters);

  /* Next: each schedule walks 100 fires forward from 2026-01-01 UTC. */
  int64_t base = cx_days_from_civil(2026, 1, 1) * 86400, sink = 0;
  iters = 0;
  start = cx_mono_now();
  while (cx_mono_now() - start < 2000000) {
    for (int i = 0; i < n; i++) {
      int64_t t = base;
      for (int k = 0; k < 100; k++) {
        if (cx_cron_next(scheds[i], t, &t) != 0)
          return 1;
        iters++;
      }
      sink += t;
    }
  }
  printf("next_ns_per_op %.1f\n",
         (double)(cx_mono_now() - start) * 1000.0 / (double)iters);
  if (sink == 42)
    putchar('\n');

  for (int i = 0; i < n; i++) {
    cx_cron_free(scheds[i]);
    cx_free(exprs[i]);
  }
  cx_tz_cleanup();
  return 0;
}
