/*
 * What several benchmarks share (header only: each bench/<name>.c is its
 * own program): the program's temp dir and fatal errors, latency samples
 * and percentiles, the bare fork+exec floor, an operator's API token.
 */
#ifndef CX_BENCH_H
#define CX_BENCH_H

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "util/util.h"

/* ---- the program: fatal errors, temp dir, knobs ---- */

/* Prints "<program>: <message>" on stderr and exits 1. */
__attribute__((format(printf, 1, 2), noreturn)) static inline void
bench_die(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", program_invocation_short_name);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* The program's temp dir (tests/support/services.c puts the servers it
 * starts there, through cx_test_tmpdir). */
static char bench_tmp[256] __attribute__((unused));

/* Defines cx_test_tmpdir() as bench_tmp: once per program that links
 * tests/support. */
#define BENCH_TEST_TMPDIR                                                      \
  const char *cx_test_tmpdir(void);                                            \
  const char *cx_test_tmpdir(void)                                             \
  {                                                                            \
    return bench_tmp;                                                          \
  }

/* Makes bench_tmp: $TMPDIR (or /tmp)/<name>.XXXXXX; dies on failure. */
static inline void bench_tmpdir_make(const char *name)
{
  const char *t = getenv("TMPDIR");
  snprintf(bench_tmp, sizeof bench_tmp, "%s/%s.XXXXXX", t && *t ? t : "/tmp",
           name);
  if (mkdtemp(bench_tmp) == NULL)
    bench_die("mkdtemp %s", bench_tmp);
}

/* Removes bench_tmp and all in it; 0 on success. */
static inline int bench_tmpdir_remove(void)
{
  char rm[300];
  snprintf(rm, sizeof rm, "rm -rf '%s'", bench_tmp);
  return system(rm) == 0 ? 0 : -1;
}

/* The positive integer in environment variable name, else def. */
static inline int bench_env_int(const char *name, int def)
{
  const char *v = getenv(name);
  return v && atoi(v) > 0 ? atoi(v) : def;
}

/* Samples; initialise with {.mu = PTHREAD_MUTEX_INITIALIZER}. */
struct lat {
  double *v;
  size_t n, cap;
  pthread_mutex_t mu;
};

static inline void lat_add(struct lat *l, double x)
{
  pthread_mutex_lock(&l->mu);
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 1024;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
    if (l->v == NULL)
      abort();
  }
  l->v[l->n++] = x;
  pthread_mutex_unlock(&l->mu);
}

static inline int bench_cmp_d(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank; 100 = max); NAN without samples. */
static inline double pct(struct lat *l, double p)
{
  if (l->n == 0)
    return NAN;
  qsort(l->v, l->n, sizeof *l->v, bench_cmp_d);
  size_t i = (size_t)(p / 100.0 * (double)(l->n - 1) + 0.5);
  return l->v[i];
}

/* ---- the floor: processes a bare C loop starts per second ---- */

static atomic_llong bench_floor_runs;
static atomic_int bench_floor_stop;

static inline void *bench_spawn_loop(void *arg)
{
  (void)arg;
  char *argv[] = {"/bin/sh", "-c", "true", NULL};
  while (!atomic_load(&bench_floor_stop)) {
    pid_t p = fork();
    if (p == 0) {
      execv(argv[0], argv);
      _exit(127);
    }
    if (p > 0 && waitpid(p, NULL, 0) == p)
      atomic_fetch_add(&bench_floor_runs, 1);
  }
  return NULL;
}

/* fork + exec + wait of `/bin/sh -c true` in `threads` threads (<= 256)
 * for secs seconds: processes per second. */
static inline double bench_spawn_floor(int threads, int secs)
{
  pthread_t th[256];
  if (threads > 256)
    threads = 256;
  atomic_store(&bench_floor_runs, 0);
  atomic_store(&bench_floor_stop, 0);
  for (int i = 0; i < threads; i++)
    pthread_create(&th[i], NULL, bench_spawn_loop, NULL);
  cx_sleep_us((int64_t)secs * 1000000);
  atomic_store(&bench_floor_stop, 1);
  long long n = atomic_load(&bench_floor_runs);
  for (int i = 0; i < threads; i++)
    pthread_join(th[i], NULL);
  return (double)n / secs;
}

/* Creates user "bench" (operator) with an API token into token. */
static inline int bench_operator_token(struct cx_store *s,
                                       char token[CX_STORE_TOKEN_LEN],
                                       char *err)
{
  struct cx_user u = {0};
  u.username = (char *)"bench";
  u.password_hash = (char *)"$y$unused";
  u.role = (char *)"operator";
  u.email = u.feishu_id = (char *)"";
  int rc = cx_store_user_create(s, &u, err);
  if (rc == 0)
    rc = cx_store_token_generate(token);
  if (rc == 0)
    rc = cx_store_token_create(s, token, u.id, "api", 0, err);
  return rc;
}

#endif
