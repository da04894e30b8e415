/*
 * The timer core under load, measured the way bench/go/robfig_bench.go's
 * `timer` mode measures robfig/cron: N entries, each the schedule
 * "S * * * * *" for a random second S (one parsed cx_cron per entry, as a
 * node holds one per job), fired from cx_sched_run on its own thread.
 *
 * The fire callback does what a node's does: it hands the fire over (here:
 * records its lateness and appends it to a list) and returns. The loop's
 * idle hook (cx_sched_set_idle) then computes each listed entry's next
 * instant with cx_cron_next and puts it back, in chunks, once everything due
 * has fired. Dispatch first, reschedule after: ~16.7k entries share each
 * instant at 1M entries, and computing their next fires inside the
 * callback would make the last of them wait for all the others' calendar
 * maths. With `inline` as a third argument the callback reschedules itself
 * (the slower way, for comparison).
 *
 *   sched_bench N SECONDS
 *
 * Prints fires/s (and the expected N/60), CPU per fire and CPU %, heap bytes
 * per entry (scheduler + parsed schedule), and lateness p50/p99 (the wall
 * clock at the callback minus the scheduled instant).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cron/cron.h"
#include "sched/sched.h"
#include "util/util.h"

/* bench programs link tests/support without its runner */
const char *cx_test_tmpdir(void);
const char *cx_test_tmpdir(void)
{
  return "/tmp";
}

struct fire {
  int64_t id, at_ms;
  void *data;
};

struct bench {
  struct cx_sched *sched;
  int inline_resched;
  /* fires waiting to be rescheduled: filled by the callback, drained by the
   * idle hook, both on the scheduler's thread */
  struct fire *queue;
  size_t nqueue, qhead, qcap;
  volatile int recording;
  float *lateness_ms; /* one per recorded fire */
  size_t nlate, cap;
  long fires;
  int failed;
};

static int64_t wall_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double cpu_seconds(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
         ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static void resched(struct bench *b, int64_t id, int64_t at_ms, void *data)
{
  int64_t next;
  if (cx_cron_next(data, at_ms / 1000, &next) != 0 ||
      cx_sched_put(b->sched, id, next * 1000, data, NULL) != 0)
    b->failed = 1;
}

static void on_fire(void *ctx, int64_t id, int64_t at_ms, void *data)
{
  struct bench *b = ctx;
  int64_t now = wall_us();

  if (b->recording) {
    b->fires++;
    if (b->nlate < b->cap)
      b->lateness_ms[b->nlate++] = (float)((double)(now - at_ms * 1000) / 1e3);
  }
  if (b->inline_resched) {
    resched(b, id, at_ms, data);
    return;
  }
  if (b->nqueue == b->qcap)
    b->failed = 1; /* sized for every entry: cannot happen */
  else
    b->queue[b->nqueue++] = (struct fire){id, at_ms, data};
}

/* Reschedules up to a chunk of listed fires; 1 while some are left. */
static int on_idle(void *ctx)
{
  struct bench *b = ctx;
  size_t end = b->qhead + 1024 < b->nqueue ? b->qhead + 1024 : b->nqueue;
  for (; b->qhead < end; b->qhead++) {
    const struct fire *f = &b->queue[b->qhead];
    resched(b, f->id, f->at_ms, f->data);
  }
  if (b->qhead < b->nqueue)
    return 1;
  b->qhead = b->nqueue = 0;
  return 0;
}

static void *run_thread(void *arg)
{
  struct bench *b = arg;
  cx_sched_run(b->sched, on_fire, b);
  return NULL;
}

static int cmp_float(const void *a, const void *b)
{
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
  struct bench b = {0};
  struct cx_cron_opts opts = {.timezone = "UTC", .anchor = 0};
  char expr[32], err[CX_ERR_LEN];
  int64_t n, secs;

  if (argc < 3 || argc > 4 || cx_parse_int64(argv[1], 1, 10000000, &n) != 0 ||
      cx_parse_int64(argv[2], 1, 3600, &secs) != 0 ||
      (argc == 4 && strcmp(argv[3], "inline") != 0)) {
    fprintf(stderr, "usage: sched_bench N SECONDS [inline]\n");
    return 2;
  }
  b.inline_resched = argc == 4;
  b.qcap = (size_t)n + 1;
  b.queue = cx_malloc(b.qcap * sizeof *b.queue);
  struct cx_cron **crons = cx_calloc((size_t)n, sizeof *crons);
  b.cap = (size_t)(n / 60 + 1) * (size_t)(secs + 5) * 2;
  b.lateness_ms = cx_malloc(b.cap * sizeof *b.lateness_ms);
  if (crons == NULL || b.lateness_ms == NULL || b.queue == NULL)
    return 1;

  /* Heap bytes per entry: what the scheduler and the parsed schedules take
   * (the bookkeeping arrays above are the benchmark's, not counted). */
  struct mallinfo2 m0 = mallinfo2();
  if (cx_sched_create(&b.sched) != 0)
    return 1;
  srandom(1);
  int64_t now_s = cx_wall_s();
  for (int64_t i = 0; i < n; i++) {
    int64_t next;
    snprintf(expr, sizeof expr, "%ld * * * * *", random() % 60);
    if (cx_cron_parse(expr, &opts, &crons[i], err) != 0 ||
        cx_cron_next(crons[i], now_s + 1, &next) != 0 ||
        cx_sched_put(b.sched, i + 1, next * 1000, crons[i], NULL) != 0) {
      fprintf(stderr, "setup failed at entry %ld: %s\n", (long)i, err);
      return 1;
    }
  }
  struct mallinfo2 m1 = mallinfo2();
  printf("mem_bytes_per_entry %.1f\n",
         (double)(m1.uordblks - m0.uordblks) / (double)n);

  pthread_t th;
  if (!b.inline_resched)
    cx_sched_set_idle(b.sched, on_idle, &b);
  pthread_create(&th, NULL, run_thread, &b);
  cx_sleep_us(2000000); /* warm up, as the Go harness does */
  b.recording = 1;
  double cpu0 = cpu_seconds();
  cx_mono t0 = cx_mono_now();
  for (int64_t i = 0; i < secs; i++) {
    cx_sleep_us(1000000);
    fprintf(stderr, "  cronix timer n=%ld: %ld/%ld s\n", (long)n, (long)i + 1,
            (long)secs);
  }
  b.recording = 0;
  double elapsed = (double)(cx_mono_now() - t0) / 1e6;
  double cpu = cpu_seconds() - cpu0;
  long fires = b.fires;
  cx_sched_stop(b.sched);
  pthread_join(th, NULL);

  qsort(b.lateness_ms, b.nlate, sizeof *b.lateness_ms, cmp_float);
  double p50 =
      b.nlate ? b.lateness_ms[(size_t)(0.50 * (double)(b.nlate - 1))] : -1;
  double p99 =
      b.nlate ? b.lateness_ms[(size_t)(0.99 * (double)(b.nlate - 1))] : -1;
  printf("expected_fires_per_s %.1f\n", (double)n / 60.0);
  printf("fires_per_s %.1f\n", (double)fires / elapsed);
  if (fires > 0)
    printf("cpu_us_per_fire %.2f\n", cpu * 1e6 / (double)fires);
  printf("cpu_percent %.1f\n", cpu * 100 / elapsed);
  printf("lateness_p50_ms %.3f\n", p50);
  printf("lateness_p99_ms %.3f\n", p99);
  if (b.failed)
    fprintf(stderr, "warning: a fire could not be rescheduled\n");

  cx_sched_destroy(b.sched);
  for (int64_t i = 0; i < n; i++)
    cx_cron_free(crons[i]);
  cx_free(crons);
  cx_free(b.lateness_ms);
  cx_free(b.queue);
  cx_tz_cleanup();
  return b.failed;
}
