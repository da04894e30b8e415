/*
 * store: group commit of run claims and finishes (see store-int.h).
 *
 * Why: every run makes two writes (claim, finish), and each used to be its
 * own transaction, so its own fsync, under SQLite's single writer: a node
 * with many due runs queued them behind the disk (~100 commits/s here).
 * One writer thread per store now runs whatever the callers queued as one
 * transaction; the callers sleep on their own call until it is durable.
 *
 * The writer starts with the first call and stops in cx_store_close after
 * running what is queued. If it cannot be started, calls run alone.
 */
#include "store/store-int.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

/* Enough to amortise a commit; bounded so one transaction stays short
 * (the admin API's writes wait for it on SQLite). */
#define BATCH_MAX 256
/* A writer that was idle this long before a call came waits GATHER_US
 * for the calls that come with it (fires due at the same instant reach
 * the store within about a millisecond of one another): one commit
 * instead of two. A busy writer takes what is queued at once. */
#define IDLE_US 5000
#define GATHER_US 1000

int cx__batch_fail_at;

struct call {
  struct call *next;
  cx__batch_fn fn;
  void *ctx;
  int rc;
  int done;
  int fail;          /* test hook: refuse this call */
  pthread_cond_t cv; /* its caller waits here (a broadcast woke them all) */
  char err[CX_ERR_LEN];
};

struct cx__batcher {
  pthread_mutex_t mu;
  pthread_cond_t work;
  struct call *head, *tail;
  size_t queued;
  int started, failed_start, stop, hold;
  pthread_t th;
  struct cx__batch_counts counts;
};

int cx__texec(struct cx_store *s, void *tx, const struct cx__stmt *q,
              const struct cx__val *p, int np, cx__row_fn fn, void *ctx,
              struct cx__exec_result *res, char *err)
{
  if (tx != NULL)
    return s->ops->txn_exec(s, tx, q, p, np, fn, ctx, res, err);
  return s->ops->exec(s, q, p, np, fn, ctx, res, err);
}

static int row_outcome(int rc)
{
  return rc == 0 || rc == CX_EEXISTS || rc == CX_ENOTFOUND;
}

static int call_alone(struct cx_store *s, struct call *c)
{
  c->err[0] = '\0';
  if (c->fail) {
    cx_err_set(c->err, "store: refused by the test hook");
    return -EIO;
  }
  return c->fn(s, NULL, c->ctx, c->err);
}

/* Runs the calls of one batch; every call gets rc and err. */
static void run_batch(struct cx_store *s, struct call *first, size_t n)
{
  struct cx__batcher *b = s->batch;
  void *tx = NULL;
  char err[CX_ERR_LEN] = "";
  int ok = 0;
  if (n > 1 && s->ops->txn_begin(s, &tx, err) == 0) {
    ok = 1;
    struct call *c = first;
    for (size_t i = 0; i < n && ok; i++, c = c->next) {
      c->err[0] = '\0';
      c->rc = c->fail ? -EIO : c->fn(s, tx, c->ctx, c->err);
      ok = row_outcome(c->rc);
    }
    if (s->ops->txn_end(s, tx, ok, err) != 0)
      ok = 0;
    if (!ok) {
      CX_LOG(CX_LOG_DEBUG, "store", "group commit of %zu calls redone: %s", n,
             err);
      pthread_mutex_lock(&b->mu);
      b->counts.redone++;
      pthread_mutex_unlock(&b->mu);
    }
  }
  /* A lone call, no transaction to be had, or a rolled-back batch: each
   * call on its own, as before group commit. */
  if (!ok) {
    struct call *c = first;
    for (size_t i = 0; i < n; i++, c = c->next)
      c->rc = call_alone(s, c);
  }
}

/* Waits on b->work (b->mu held) until the mono instant until_us. */
static void wait_until(struct cx__batcher *b, cx_mono until_us)
{
  struct timespec ts;
  cx_mono left = until_us - cx_mono_now();
  if (left <= 0)
    return;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += (long)(left % 1000000) * 1000;
  ts.tv_sec += (time_t)(left / 1000000) + ts.tv_nsec / 1000000000L;
  ts.tv_nsec %= 1000000000L;
  pthread_cond_timedwait(&b->work, &b->mu, &ts);
}

static void *writer_main(void *arg)
{
  struct cx_store *s = arg;
  struct cx__batcher *b = s->batch;
  cx_mono last_end = 0;
  pthread_mutex_lock(&b->mu);
  for (;;) {
    while ((b->head == NULL || b->hold) && !b->stop)
      pthread_cond_wait(&b->work, &b->mu);
    if (b->head == NULL)
      break; /* stopping, nothing left */
    if (!b->stop && b->queued < BATCH_MAX &&
        cx_mono_now() - last_end > IDLE_US) {
      cx_mono until = cx_mono_now() + GATHER_US;
      while (!b->stop && b->queued < BATCH_MAX && cx_mono_now() < until)
        wait_until(b, until);
    }
    struct call *first = b->head, *last = first;
    size_t n = 1;
    while (n < BATCH_MAX && last->next != NULL) {
      last = last->next;
      n++;
    }
    b->head = last->next;
    if (b->head == NULL)
      b->tail = NULL;
    b->queued -= n;
    struct call *c = first;
    for (size_t i = 0; i < n; i++, c = c->next) {
      if (__atomic_load_n(&cx__batch_fail_at, __ATOMIC_RELAXED) > 0 &&
          __atomic_sub_fetch(&cx__batch_fail_at, 1, __ATOMIC_RELAXED) == 0)
        c->fail = 1;
    }
    b->counts.batches++;
    b->counts.calls += n;
    pthread_mutex_unlock(&b->mu);
    run_batch(s, first, n);
    last_end = cx_mono_now();
    pthread_mutex_lock(&b->mu);
    c = first;
    for (size_t i = 0; i < n; i++) {
      struct call *next = c->next;
      c->done = 1; /* c belongs to its caller again from here */
      pthread_cond_signal(&c->cv);
      c = next;
    }
  }
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

/* The store's batcher, made at the first call. NULL if out of memory. */
static struct cx__batcher *batcher(struct cx_store *s)
{
  static pthread_mutex_t make_mu = PTHREAD_MUTEX_INITIALIZER;
  struct cx__batcher *b = __atomic_load_n(&s->batch, __ATOMIC_ACQUIRE);
  if (b != NULL)
    return b;
  pthread_mutex_lock(&make_mu);
  b = s->batch;
  if (b == NULL && (b = cx_calloc(1, sizeof *b)) != NULL) {
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->work, NULL);
    __atomic_store_n(&s->batch, b, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&make_mu);
  return b;
}

int cx__batch_run(struct cx_store *s, cx__batch_fn fn, void *ctx, char *err)
{
  struct cx__batcher *b = batcher(s);
  struct call c = {.fn = fn, .ctx = ctx};
  if (b == NULL || cx__store_in_tx(s))
    return fn(s, NULL, ctx, err);
  pthread_mutex_lock(&b->mu);
  if (!b->started && !b->failed_start && !b->stop) {
    if (pthread_create(&b->th, NULL, writer_main, s) == 0) {
      b->started = 1;
    } else {
      b->failed_start = 1;
      CX_LOG(CX_LOG_WARN, "store",
             "no group-commit writer thread: writes commit one by one");
    }
  }
  if (!b->started || b->stop) {
    pthread_mutex_unlock(&b->mu);
    return fn(s, NULL, ctx, err);
  }
  if (b->tail)
    b->tail->next = &c;
  else
    b->head = &c;
  b->tail = &c;
  b->queued++;
  pthread_cond_init(&c.cv, NULL);
  pthread_cond_signal(&b->work);
  while (!c.done)
    pthread_cond_wait(&c.cv, &b->mu);
  pthread_mutex_unlock(&b->mu);
  pthread_cond_destroy(&c.cv);
  if (err != NULL && c.err[0])
    cx_err_set(err, "%s", c.err);
  return c.rc;
}

void cx__batch_stop(struct cx_store *s)
{
  struct cx__batcher *b = s->batch;
  if (b == NULL)
    return;
  pthread_mutex_lock(&b->mu);
  b->stop = 1;
  b->hold = 0;
  pthread_cond_broadcast(&b->work);
  int started = b->started;
  pthread_mutex_unlock(&b->mu);
  if (started)
    pthread_join(b->th, NULL);
  pthread_mutex_destroy(&b->mu);
  pthread_cond_destroy(&b->work);
  cx_free(b);
  s->batch = NULL;
}

void cx__batch_hold(struct cx_store *s, int hold)
{
  struct cx__batcher *b = batcher(s);
  if (b == NULL)
    return;
  pthread_mutex_lock(&b->mu);
  b->hold = hold;
  pthread_cond_broadcast(&b->work);
  pthread_mutex_unlock(&b->mu);
}

size_t cx__batch_queued(struct cx_store *s)
{
  struct cx__batcher *b = batcher(s);
  size_t n = 0;
  if (b == NULL)
    return 0;
  pthread_mutex_lock(&b->mu);
  n = b->queued;
  pthread_mutex_unlock(&b->mu);
  return n;
}

void cx__batch_counts(struct cx_store *s, struct cx__batch_counts *out)
{
  struct cx__batcher *b = batcher(s);
  memset(out, 0, sizeof *out);
  if (b == NULL)
    return;
  pthread_mutex_lock(&b->mu);
  *out = b->counts;
  pthread_mutex_unlock(&b->mu);
}
