/*
 * sched: the timer core. Ordering, replace and remove through the virtual
 * clock (cx_sched_run_due), callbacks that change the scheduler (also the
 * instant being fired), instants appearing and going away, randomized runs
 * against a reference model (shared and distinct instants), FIFO across
 * many puts, allocation failures, memory per entry, and the
 * real-clock loop (cross-thread put, stop). Real-clock tests assert only
 * "fired, and not before its time"; lateness is printed as information.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "sched/sched.h"
#include "support/test.h"
#include "util/util.h"

/* ---- helpers ------------------------------------------------------------- */

struct fired {
  int64_t id, at;
  void *data;
};

/* Records fires; optionally acts on the scheduler from the callback. */
struct rec {
  struct fired *v;
  size_t n, cap;
  struct cx_sched *s;
  int readd; /* re-put the fired id at at + step ... */
  int64_t readd_step;
  int64_t readd_until; /* ... while at + step <= readd_until */
  int64_t remove_id;   /* >= 0: remove this id on the first fire */
  int64_t remove_rc;   /* result of that remove */
  int64_t self_rm_rc;  /* result of removing the fired id itself */
  int64_t stop_after;  /* > 0: cx_sched_stop after this many fires */
  int64_t late_max;    /* real clock: largest (wall - at) seen */
  int64_t early;       /* real clock: fires seen before their instant */
  atomic_int done;
};

static void rec_init(struct rec *r, struct cx_sched *s)
{
  memset(r, 0, sizeof(*r));
  r->s = s;
  r->remove_id = -1;
}

static void rec_cb(void *ctx, int64_t id, int64_t at, void *data)
{
  struct rec *r = ctx;
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 64;
    r->v = realloc(r->v, r->cap * sizeof(*r->v));
    ASSERT(r->v != NULL);
  }
  r->v[r->n].id = id;
  r->v[r->n].at = at;
  r->v[r->n].data = data;
  r->n++;
  r->self_rm_rc = cx_sched_remove(r->s, id, NULL);
  if (r->remove_id >= 0) {
    r->remove_rc = cx_sched_remove(r->s, r->remove_id, NULL);
    r->remove_id = -1;
  }
  if (r->readd && at + r->readd_step <= r->readd_until)
    ASSERT_EQ(cx_sched_put(r->s, id, at + r->readd_step, data, NULL), 0);
  if (r->stop_after > 0 && (int64_t)r->n >= r->stop_after) {
    cx_sched_stop(r->s);
    atomic_store(&r->done, 1);
  }
}

static void rec_free(struct rec *r)
{
  free(r->v);
}

static struct cx_sched *new_sched(void)
{
  struct cx_sched *s = NULL;
  ASSERT_EQ(cx_sched_create(&s), 0);
  ASSERT(s != NULL);
  return s;
}

static void assert_valid(struct cx_sched *s)
{
  char err[CX_ERR_LEN] = "";
  int rc = cx_sched_verify(s, err);
  ASSERT_MSG(rc == 0, "verify: %s", err);
}

/* Deterministic PRNG (splitmix64). */
static uint64_t rng_next(uint64_t *st)
{
  uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Expected order: (at, put order). */
struct want {
  int64_t at;
  uint64_t seq;
  int64_t id;
};

static int want_cmp(const void *a, const void *b)
{
  const struct want *x = a, *y = b;
  if (x->at != y->at)
    return x->at < y->at ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void assert_fired(const struct rec *r, const int64_t *ids,
                         const int64_t *ats, size_t n)
{
  ASSERT_EQ(r->n, n);
  for (size_t i = 0; i < n; i++) {
    ASSERT_MSG(r->v[i].id == ids[i] && r->v[i].at == ats[i],
               "fire %zu: got id %" PRId64 " at %" PRId64 ", want id %" PRId64
               " at %" PRId64,
               i, r->v[i].id, r->v[i].at, ids[i], ats[i]);
  }
}

/* ---- basics -------------------------------------------------------------- */

TEST(sched_empty_next_at_is_int64_max)
{
  struct cx_sched *s = new_sched();
  struct rec r;
  rec_init(&r, s);
  ASSERT_EQ(cx_sched_next_at(s), INT64_MAX);
  ASSERT_EQ(cx_sched_count(s), 0);
  ASSERT_EQ(cx_sched_run_due(s, INT64_MAX, rec_cb, &r), 0);
  ASSERT_EQ(r.n, 0);
  ASSERT_EQ(cx_sched_put(s, 7, 1000, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_next_at(s), 1000);
  ASSERT_EQ(cx_sched_run_due(s, 1000, rec_cb, &r), 1);
  ASSERT_EQ(cx_sched_next_at(s), INT64_MAX);
  ASSERT_EQ(cx_sched_count(s), 0);
  assert_valid(s);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_null_arguments_rejected)
{
  struct cx_sched *s = new_sched();
  void *d = &d;
  ASSERT_EQ(cx_sched_put(NULL, 1, 1, NULL, &d), -EINVAL);
  ASSERT(d == NULL);
  ASSERT_EQ(cx_sched_remove(NULL, 1, NULL), -EINVAL);
  ASSERT_EQ(cx_sched_get(NULL, 1, NULL, NULL), -EINVAL);
  ASSERT_EQ(cx_sched_run_due(s, 0, NULL, NULL), -EINVAL);
  ASSERT_EQ(cx_sched_run(s, NULL, NULL), -EINVAL);
  ASSERT_EQ(cx_sched_reserve(NULL, 1), -EINVAL);
  ASSERT_EQ(cx_sched_reserve(s, CX_SCHED_MAX_ENTRIES + 1), CX_ETOOBIG);
  ASSERT_EQ(cx_sched_next_at(NULL), INT64_MAX);
  ASSERT_EQ(cx_sched_count(NULL), 0);
  cx_sched_stop(NULL);
  cx_sched_destroy(NULL);
  cx_sched_destroy(s);
}

TEST(sched_random_entries_fire_in_sorted_order_fifo_on_ties)
{
  /* 20k entries over 1000 distinct instants (about 20 per instant), put
   * in a shuffled id order; fired order must be (at, put order). */
  enum { N = 20000 };
  struct cx_sched *s = new_sched();
  struct want *w = calloc(N, sizeof(*w));
  struct rec r;
  uint64_t st = 42;
  size_t due = 0;
  int rc;

  rec_init(&r, s);
  for (int i = 0; i < N; i++) {
    int64_t id = (int64_t)(rng_next(&st) % 1000000000) * N + i; /* unique */
    w[i].at = 1700000000000 + (int64_t)(rng_next(&st) % 1000);
    w[i].seq = (uint64_t)i;
    w[i].id = id;
    ASSERT_EQ(cx_sched_put(s, id, w[i].at, (void *)(uintptr_t)(i + 1), NULL),
              0);
  }
  assert_valid(s);
  ASSERT_EQ(cx_sched_count(s), N);
  qsort(w, N, sizeof(*w), want_cmp);
  ASSERT_EQ(cx_sched_next_at(s), w[0].at);

  /* First half of the instants, then the rest. */
  while (due < N && w[due].at <= 1700000000499)
    due++;
  rc = cx_sched_run_due(s, 1700000000499, rec_cb, &r);
  ASSERT_EQ(rc, due);
  assert_valid(s);
  rc = cx_sched_run_due(s, INT64_MAX, rec_cb, &r);
  ASSERT_EQ(rc, N - due);
  ASSERT_EQ(r.n, N);
  for (size_t i = 0; i < N; i++) {
    ASSERT_EQ(r.v[i].id, w[i].id);
    ASSERT_EQ(r.v[i].at, w[i].at);
    ASSERT_EQ((uintptr_t)r.v[i].data, w[i].seq + 1);
  }
  ASSERT_EQ(cx_sched_count(s), 0);
  rec_free(&r);
  free(w);
  cx_sched_destroy(s);
}

TEST(sched_not_due_entries_stay)
{
  struct cx_sched *s = new_sched();
  struct rec r;
  rec_init(&r, s);
  ASSERT_EQ(cx_sched_put(s, 1, 100, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 2, 101, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_run_due(s, 99, rec_cb, &r), 0);
  ASSERT_EQ(cx_sched_run_due(s, 100, rec_cb, &r), 1);
  ASSERT_EQ(cx_sched_count(s), 1);
  ASSERT_EQ(cx_sched_next_at(s), 101);
  rec_free(&r);
  cx_sched_destroy(s);
}

/* ---- replace and remove -------------------------------------------------- */

TEST(sched_replace_moves_entry_earlier)
{
  struct cx_sched *s = new_sched();
  struct rec r;
  int a = 0, b = 0;
  void *old = NULL;
  rec_init(&r, s);
  ASSERT_EQ(cx_sched_put(s, 1, 100, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 2, 200, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 3, 300, &a, &old), 0);
  ASSERT(old == NULL);
  ASSERT_EQ(cx_sched_put(s, 3, 50, &b, &old), 0);
  ASSERT(old == &a);
  ASSERT_EQ(cx_sched_count(s), 3);
  ASSERT_EQ(cx_sched_next_at(s), 50);
  assert_valid(s);
  ASSERT_EQ(cx_sched_run_due(s, INT64_MAX, rec_cb, &r), 3);
  assert_fired(&r, (int64_t[]){3, 1, 2}, (int64_t[]){50, 100, 200}, 3);
  ASSERT(r.v[0].data == &b);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_replace_moves_entry_later)
{
  struct cx_sched *s = new_sched();
  struct rec r;
  int64_t at = 0;
  rec_init(&r, s);
  ASSERT_EQ(cx_sched_put(s, 1, 100, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 2, 200, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 3, 300, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 1, 250, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_get(s, 1, &at, NULL), 0);
  ASSERT_EQ(at, 250);
  ASSERT_EQ(cx_sched_next_at(s), 200);
  assert_valid(s);
  ASSERT_EQ(cx_sched_run_due(s, INT64_MAX, rec_cb, &r), 3);
  assert_fired(&r, (int64_t[]){2, 1, 3}, (int64_t[]){200, 250, 300}, 3);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_replace_same_instant_goes_behind_ties)
{
  struct cx_sched *s = new_sched();
  struct rec r;
  rec_init(&r, s);
  ASSERT_EQ(cx_sched_put(s, 1, 100, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 2, 100, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 3, 100, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 1, 100, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_run_due(s, 100, rec_cb, &r), 3);
  assert_fired(&r, (int64_t[]){2, 3, 1}, (int64_t[]){100, 100, 100}, 3);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_remove_from_middle)
{
  struct cx_sched *s = new_sched();
  struct rec r;
  int data[10];
  void *got = NULL;
  int64_t ids[8], ats[8];
  size_t k = 0;

  rec_init(&r, s);
  for (int i = 1; i <= 9; i++)
    ASSERT_EQ(cx_sched_put(s, i, 10 * i, &data[i], NULL), 0);
  ASSERT_EQ(cx_sched_remove(s, 5, &got), 0);
  ASSERT(got == &data[5]);
  ASSERT_EQ(cx_sched_remove(s, 5, &got), CX_ENOTFOUND);
  ASSERT(got == NULL);
  ASSERT_EQ(cx_sched_get(s, 5, NULL, NULL), CX_ENOTFOUND);
  ASSERT_EQ(cx_sched_remove(s, 42, NULL), CX_ENOTFOUND);
  ASSERT_EQ(cx_sched_count(s), 8);
  assert_valid(s);
  ASSERT_EQ(cx_sched_run_due(s, INT64_MAX, rec_cb, &r), 8);
  for (int i = 1; i <= 9; i++) {
    if (i == 5)
      continue;
    ids[k] = i;
    ats[k++] = 10 * i;
  }
  assert_fired(&r, ids, ats, 8);
  rec_free(&r);
  cx_sched_destroy(s);
}

/* ---- callbacks that change the scheduler --------------------------------- */

TEST(sched_callback_readds_fired_entry)
{
  /* The usual cron pattern: each fire puts the job's next instant. */
  struct cx_sched *s = new_sched();
  struct rec r;
  int64_t ats[6];

  rec_init(&r, s);
  r.readd = 1;
  r.readd_step = 60;
  r.readd_until = 1000;
  ASSERT_EQ(cx_sched_put(s, 9, 0, NULL, NULL), 0);
  while (cx_sched_next_at(s) <= 300)
    ASSERT_OP(cx_sched_run_due(s, 300, rec_cb, &r), >, 0);
  for (int i = 0; i < 6; i++)
    ats[i] = 60 * i;
  assert_fired(&r, (int64_t[]){9, 9, 9, 9, 9, 9}, ats, 6);
  /* Removing itself from its callback found nothing: it was popped. */
  ASSERT_EQ(r.self_rm_rc, CX_ENOTFOUND);
  ASSERT_EQ(cx_sched_count(s), 1);
  ASSERT_EQ(cx_sched_next_at(s), 360);
  assert_valid(s);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_callback_removes_other_entry)
{
  struct cx_sched *s = new_sched();
  struct rec r;
  rec_init(&r, s);
  r.remove_id = 2;
  ASSERT_EQ(cx_sched_put(s, 1, 10, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 2, 20, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 3, 30, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_run_due(s, 100, rec_cb, &r), 2);
  ASSERT_EQ(r.remove_rc, 0);
  assert_fired(&r, (int64_t[]){1, 3}, (int64_t[]){10, 30}, 2);
  ASSERT_EQ(cx_sched_count(s), 0);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_callback_readding_due_entry_does_not_loop)
{
  /* A callback that re-puts its entry at the same instant (a bug in the
   * caller) must not hang run_due: one call fires as many entries as it
   * held when it began, and the total order stays (at, put order). */
  struct cx_sched *s = new_sched();
  struct rec r;
  rec_init(&r, s);
  r.readd = 1;
  r.readd_step = 0;
  r.readd_until = INT64_MAX;
  ASSERT_EQ(cx_sched_put(s, 1, 10, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 2, 10, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_run_due(s, 10, rec_cb, &r), 2);
  ASSERT_EQ(cx_sched_run_due(s, 10, rec_cb, &r), 2);
  assert_fired(&r, (int64_t[]){1, 2, 1, 2}, (int64_t[]){10, 10, 10, 10}, 4);
  ASSERT_EQ(cx_sched_count(s), 2);
  assert_valid(s);
  rec_free(&r);
  cx_sched_destroy(s);
}

/* ---- entries sharing an instant ------------------------------------------ */

/* Acts on the scheduler from the callback of chosen ids, checking every
 * invariant while the instant being fired is half done. */
struct tie_ctx {
  struct rec r;
  int bad; /* a verify from a callback failed */
};

static void tie_cb(void *ctx, int64_t id, int64_t at, void *data)
{
  struct tie_ctx *t = ctx;
  struct cx_sched *s = t->r.s;
  rec_cb(&t->r, id, at, data);
  if (id == 0) /* an earlier instant, due now: fires before the ties */
    ASSERT_EQ(cx_sched_put(s, 30, 50, NULL, NULL), 0);
  if (id == 2) {
    ASSERT_EQ(cx_sched_remove(s, 5, NULL), 0); /* not fired yet */
    ASSERT_EQ(cx_sched_remove(s, 3, NULL), 0); /* the very next one */
    ASSERT_EQ(cx_sched_remove(s, 1, NULL), CX_ENOTFOUND); /* fired */
    ASSERT_EQ(cx_sched_put(s, 7, 100, NULL, NULL), 0);    /* behind the ties */
    ASSERT_EQ(cx_sched_put(s, 20, 100, NULL, NULL), 0);   /* new, behind 7 */
  }
  t->bad |= cx_sched_verify(s, NULL) != 0;
}

TEST(sched_same_instant_callbacks_change_their_own_instant)
{
  /* Ten entries at one instant, two at a later one. Callbacks remove
   * unfired entries of the instant being fired, re-put one (it goes behind
   * its ties), add one at that instant and one at an earlier due instant;
   * the run fires exactly the (at, put order) sequence of what is left,
   * within the budget of the 12 entries held when it began. */
  struct cx_sched *s = new_sched();
  struct tie_ctx t = {0};

  rec_init(&t.r, s);
  for (int i = 0; i < 10; i++)
    ASSERT_EQ(cx_sched_put(s, i, 100, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 10, 200, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 11, 200, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_run_due(s, 200, tie_cb, &t), 12);
  assert_fired(
      &t.r, (int64_t[]){0, 30, 1, 2, 4, 6, 8, 9, 7, 20, 10, 11},
      (int64_t[]){100, 50, 100, 100, 100, 100, 100, 100, 100, 100, 200, 200},
      12);
  ASSERT_EQ(t.r.self_rm_rc, CX_ENOTFOUND);
  ASSERT_EQ(t.bad, 0);
  ASSERT_EQ(cx_sched_count(s), 0);
  ASSERT_EQ(cx_sched_next_at(s), INT64_MAX);
  assert_valid(s);
  rec_free(&t.r);
  cx_sched_destroy(s);
}

static void remove_rest_cb(void *ctx, int64_t id, int64_t at, void *data)
{
  struct rec *r = ctx;
  rec_cb(r, id, at, data);
  if (id == 0)
    for (int64_t i = 1; i < 5; i++)
      ASSERT_EQ(cx_sched_remove(r->s, i, NULL), 0);
}

TEST(sched_callback_removing_rest_of_its_instant_drops_it)
{
  /* The first fire removes every other entry of its instant: the instant
   * goes away mid-run and the next one is the earliest. */
  struct cx_sched *s = new_sched();
  struct rec r;

  rec_init(&r, s);
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(cx_sched_put(s, i, 100, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 9, 300, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_run_due(s, 100, remove_rest_cb, &r), 1);
  ASSERT_EQ(cx_sched_count(s), 1);
  ASSERT_EQ(cx_sched_next_at(s), 300);
  assert_valid(s);
  ASSERT_EQ(cx_sched_run_due(s, 299, remove_rest_cb, &r), 0);
  ASSERT_EQ(cx_sched_run_due(s, 300, remove_rest_cb, &r), 1);
  assert_fired(&r, (int64_t[]){0, 9}, (int64_t[]){100, 300}, 2);
  ASSERT_EQ(cx_sched_count(s), 0);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_last_removal_drops_instant)
{
  /* An instant lives while it has entries: removing or moving its last
   * one makes the next instant the earliest; putting at it again makes a
   * fresh instant, with a fresh FIFO order. */
  struct cx_sched *s = new_sched();
  struct rec r;
  int64_t at = 0;

  rec_init(&r, s);
  for (int i = 1; i <= 3; i++)
    ASSERT_EQ(cx_sched_put(s, i, 100, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 4, 200, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 5, 300, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_remove(s, 2, NULL), 0);
  ASSERT_EQ(cx_sched_remove(s, 1, NULL), 0);
  ASSERT_EQ(cx_sched_next_at(s), 100);
  ASSERT_EQ(cx_sched_put(s, 3, 300, NULL, NULL), 0); /* last one moves */
  ASSERT_EQ(cx_sched_next_at(s), 200);
  assert_valid(s);
  ASSERT_EQ(cx_sched_put(s, 4, 250, NULL, NULL), 0); /* alone: re-keyed */
  ASSERT_EQ(cx_sched_get(s, 4, &at, NULL), 0);
  ASSERT_EQ(at, 250);
  ASSERT_EQ(cx_sched_next_at(s), 250);
  ASSERT_EQ(cx_sched_put(s, 6, 100, NULL, NULL), 0); /* 100 again */
  ASSERT_EQ(cx_sched_put(s, 1, 100, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_next_at(s), 100);
  assert_valid(s);
  ASSERT_EQ(cx_sched_run_due(s, INT64_MAX, rec_cb, &r), 5);
  assert_fired(&r, (int64_t[]){6, 1, 4, 5, 3},
               (int64_t[]){100, 100, 250, 300, 300}, 5);
  ASSERT_EQ(cx_sched_next_at(s), INT64_MAX);
  assert_valid(s);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_replace_to_new_instant_out_of_memory_changes_nothing)
{
  /* A replace that takes an entry out of a shared instant to an instant
   * no entry has is the one replace that may allocate (a new instant).
   * Keep id 1 sharing its instant and move it with every allocation
   * failing until the instant table is full and one move fails: that put
   * returns -ENOMEM and changes nothing. */
  struct cx_sched *s = new_sched();
  int a = 0, b = 0, failed = 0;
  int64_t at = 0, where = 100;
  void *got = NULL;

  ASSERT_EQ(cx_sched_put(s, 1, where, &a, NULL), 0);
  for (int k = 0; k < 1000 && !failed; k++) {
    void *old = &old;
    int rc;
    ASSERT_EQ(cx_sched_put(s, 1000 + k, where, NULL, NULL), 0); /* share */
    cx_alloc_fail_after(1);
    rc = cx_sched_put(s, 1, 1000000 + k, &b, &old);
    cx_alloc_fail_after(0);
    if (rc == 0) {
      ASSERT(old == &a);
      ASSERT_EQ(cx_sched_put(s, 1, where = 1000000 + k, &a, NULL), 0);
      continue;
    }
    failed = 1;
    ASSERT_EQ(rc, -ENOMEM);
    ASSERT(old == NULL);
    ASSERT_EQ(cx_sched_get(s, 1, &at, &got), 0);
    ASSERT_EQ(at, where);
    ASSERT(got == &a);
    ASSERT_EQ(cx_sched_count(s), (size_t)k + 2);
    assert_valid(s);
    ASSERT_EQ(cx_sched_put(s, 1, 1000000 + k, &b, NULL), 0); /* retry */
  }
  ASSERT_EQ(failed, 1);
  assert_valid(s);
  cx_sched_destroy(s);
}

/* ---- randomized run against a reference model ---------------------------- */

/* ids entries put, then ops random puts (adds and replaces), removes,
 * gets and virtual-clock steps over those ids, checked against plain
 * arrays (deterministic seed); then a full drain must come out in exactly
 * the model's (at, put order). Instants are multiples of grain ms over
 * about two days. */
static void model_run(int ids, int ops, int64_t grain)
{
  struct cx_sched *s = new_sched();
  int64_t *at = calloc(ids, sizeof(*at));
  uint64_t *seq = calloc(ids, sizeof(*seq));
  char *live = calloc(ids, 1);
  struct want *w = NULL;
  struct rec r;
  uint64_t st = 20261124, put_seq = 0;
  int64_t now = 1000000, live_n = 0, fired = 0, replaced = 0;

  ASSERT(at != NULL && seq != NULL && live != NULL);
  rec_init(&r, s);
  for (int op = -ids; op < ops; op++) {
    uint64_t x = rng_next(&st);
    int64_t id = op < 0 ? op + ids : (int64_t)(x % ids);
    unsigned kind = op < 0 ? 0 : (unsigned)((x >> 32) % 100);
    if (kind < 60) { /* put: instants from the past to ~2 days ahead */
      int64_t when = now - 5000 + (int64_t)(rng_next(&st) % 172800000);
      void *old = &old;
      when -= when % grain;
      ASSERT_EQ(cx_sched_put(s, id, when, &live[id], &old), 0);
      ASSERT(old == (live[id] ? (void *)&live[id] : NULL));
      live_n += !live[id];
      replaced += live[id];
      live[id] = 1;
      at[id] = when;
      seq[id] = put_seq++;
    } else if (kind < 85) { /* remove */
      void *got = NULL;
      int rc = cx_sched_remove(s, id, &got);
      ASSERT_EQ(rc, live[id] ? 0 : CX_ENOTFOUND);
      ASSERT(got == (live[id] ? (void *)&live[id] : NULL));
      live_n -= live[id];
      live[id] = 0;
    } else if (kind < 99) { /* get */
      int64_t got_at = -1;
      int rc = cx_sched_get(s, id, &got_at, NULL);
      ASSERT_EQ(rc, live[id] ? 0 : CX_ENOTFOUND);
      if (live[id])
        ASSERT_EQ(got_at, at[id]);
    } else { /* virtual clock step: every fire must match the model */
      size_t first = r.n;
      int n;
      now += 60000;
      n = cx_sched_run_due(s, now, rec_cb, &r);
      ASSERT_OP(n, >=, 0);
      for (size_t i = first; i < r.n; i++) {
        int64_t fid = r.v[i].id;
        ASSERT(fid >= 0 && fid < ids && live[fid]);
        ASSERT_EQ(r.v[i].at, at[fid]);
        ASSERT_OP(r.v[i].at, <=, now);
        if (i > first)
          ASSERT(r.v[i - 1].at < r.v[i].at ||
                 (r.v[i - 1].at == r.v[i].at && seq[r.v[i - 1].id] < seq[fid]));
        live[fid] = 0;
        live_n--;
      }
      fired += (int64_t)(r.n - first);
      ASSERT_OP(cx_sched_next_at(s), >, now);
      r.n = first; /* keep the record small */
    }
    ASSERT_EQ(cx_sched_count(s), live_n);
    if (op % 500000 == 0)
      assert_valid(s);
  }
  assert_valid(s);
  /* The mix really exercised every path (not a vacuous pass). */
  fprintf(stderr,
          "info: %" PRId64 " fired, %" PRId64 " replaced, %" PRId64 " live\n",
          fired, replaced, live_n);
  ASSERT_OP(fired, >, ops / 10);
  ASSERT_OP(replaced, >, ops / 20);
  ASSERT_OP(live_n, >, ids / 20);

  /* Drain everything and compare with the sorted model. */
  w = calloc((size_t)live_n + 1, sizeof(*w));
  ASSERT(w != NULL);
  for (int64_t id = 0, k = 0; id < ids; id++)
    if (live[id]) {
      w[k].at = at[id];
      w[k].seq = seq[id];
      w[k++].id = id;
    }
  qsort(w, (size_t)live_n, sizeof(*w), want_cmp);
  r.n = 0;
  ASSERT_EQ(cx_sched_run_due(s, INT64_MAX, rec_cb, &r), live_n);
  for (int64_t i = 0; i < live_n; i++) {
    ASSERT_EQ(r.v[i].id, w[i].id);
    ASSERT_EQ(r.v[i].at, w[i].at);
  }
  ASSERT_EQ(cx_sched_count(s), 0);
  rec_free(&r);
  free(w);
  free(at);
  free(seq);
  free(live);
  cx_sched_destroy(s);
}

TEST_TIMEOUT(sched_matches_reference_model_1m_entries, 300)
{
  /* 1M entries and 2M operations at whole seconds: about six entries per
   * instant, so ties, shared instants and their lists carry the load. */
  model_run(1000000, 2000000, 1000);
}

TEST_TIMEOUT(sched_matches_reference_model_distinct_instants, 300)
{
  /* Millisecond instants over two days: nearly every instant distinct, so
   * every put creates an instant and every fire or remove drops one (the
   * heap-bound worst case). */
  model_run(300000, 600000, 1);
}

/* ---- limits -------------------------------------------------------------- */

TEST(sched_huge_at_is_clamped)
{
  struct cx_sched *s = new_sched();
  struct rec r;
  int64_t at = 0;
  rec_init(&r, s);
  ASSERT_EQ(cx_sched_put(s, 1, INT64_MAX, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 2, CX_SCHED_AT_MAX, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 3, INT64_MIN, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_get(s, 1, &at, NULL), 0);
  ASSERT_EQ(at, CX_SCHED_AT_MAX);
  ASSERT_EQ(cx_sched_next_at(s), INT64_MIN);
  ASSERT_EQ(cx_sched_run_due(s, INT64_MIN, rec_cb, &r), 1);
  /* A far-future entry is not "empty". */
  ASSERT_EQ(cx_sched_next_at(s), CX_SCHED_AT_MAX);
  ASSERT(cx_sched_next_at(s) != INT64_MAX);
  ASSERT_EQ(cx_sched_run_due(s, CX_SCHED_AT_MAX - 1, rec_cb, &r), 0);
  ASSERT_EQ(cx_sched_run_due(s, INT64_MAX, rec_cb, &r), 2);
  assert_fired(&r, (int64_t[]){3, 1, 2},
               (int64_t[]){INT64_MIN, CX_SCHED_AT_MAX, CX_SCHED_AT_MAX}, 3);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_fifo_across_interleaved_instants_and_replace)
{
  /* FIFO across two interleaved instants, and a replace goes behind its
   * ties. */
  struct cx_sched *s = new_sched();
  struct rec r;
  int64_t ids[40], ats[40];
  size_t k = 0;

  rec_init(&r, s);
  for (int i = 0; i < 20; i++)
    ASSERT_EQ(cx_sched_put(s, i, 100 + (i % 2) * 100, NULL, NULL), 0);
  assert_valid(s);
  ASSERT_EQ(cx_sched_put(s, 4, 100, NULL, NULL), 0); /* replace: behind */
  for (int i = 20; i < 30; i++)
    ASSERT_EQ(cx_sched_put(s, i, 100, NULL, NULL), 0);
  assert_valid(s);
  for (int i = 0; i < 20; i += 2)
    if (i != 4) {
      ids[k] = i;
      ats[k++] = 100;
    }
  ids[k] = 4;
  ats[k++] = 100;
  for (int i = 20; i < 30; i++) {
    ids[k] = i;
    ats[k++] = 100;
  }
  for (int i = 1; i < 20; i += 2) {
    ids[k] = i;
    ats[k++] = 200;
  }
  ASSERT_EQ(cx_sched_run_due(s, 200, rec_cb, &r), 30);
  assert_fired(&r, ids, ats, 30);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_put_out_of_memory_changes_nothing)
{
  /* Torture style: each put of 300 first fails its 1st, 2nd, then 3rd
   * allocation (when it makes that many). A failed put returns -ENOMEM
   * and leaves the entries exactly as they were; replaces allocate
   * nothing and always succeed. */
  struct cx_sched *s = new_sched();
  int failures = 0;

  for (int n = 0; n < 300; n++) {
    for (long k = 1; k <= 3; k++) {
      void *old = &old;
      int rc;
      cx_alloc_fail_after(k);
      rc = cx_sched_put(s, n, 1000 - n, &failures, &old);
      cx_alloc_fail_after(0);
      if (rc == 0)
        break;
      failures++;
      ASSERT_EQ(rc, -ENOMEM);
      ASSERT(old == NULL);
      ASSERT_EQ(cx_sched_count(s), n);
      ASSERT_EQ(cx_sched_get(s, n, NULL, NULL), CX_ENOTFOUND);
      assert_valid(s);
    }
    if (cx_sched_get(s, n, NULL, NULL) != 0)
      ASSERT_EQ(cx_sched_put(s, n, 1000 - n, &failures, NULL), 0);
    cx_alloc_fail_after(1);
    ASSERT_EQ(cx_sched_put(s, n / 2, n, &failures, NULL), 0); /* replace */
    cx_alloc_fail_after(0);
  }
  ASSERT_OP(failures, >=, 4); /* several growths really failed */
  ASSERT_EQ(cx_sched_count(s), 300);
  assert_valid(s);
  cx_sched_destroy(s);
}

static size_t fill(struct cx_sched *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    ASSERT_EQ(cx_sched_put(s, (int64_t)i * 7919,
                           1700000000000 + (int64_t)(i % 60000), NULL, NULL),
              0);
  return cx_sched_mem_bytes(s);
}

TEST_TIMEOUT(sched_memory_per_entry_at_1m, 120)
{
  /* <= 64 bytes per entry at 1M entries, grown by puts or reserved. */
  static const size_t sizes[] = {10000, 100000, 1000000};
  for (size_t i = 0; i < CX_ARRAY_LEN(sizes); i++) {
    struct cx_sched *grown = new_sched(), *reserved = new_sched();
    size_t g, rs;
    ASSERT_EQ(cx_sched_reserve(reserved, sizes[i]), 0);
    g = fill(grown, sizes[i]);
    rs = fill(reserved, sizes[i]);
    fprintf(stderr, "info: %zu entries: %.1f B/entry grown, %.1f reserved\n",
            sizes[i], (double)g / (double)sizes[i],
            (double)rs / (double)sizes[i]);
    if (sizes[i] == 1000000) {
      ASSERT_OP(g, <=, 64 * sizes[i]);
      ASSERT_OP(rs, <=, 50 * sizes[i]);
    }
    cx_sched_destroy(grown);
    cx_sched_destroy(reserved);
  }
}

TEST(sched_destroy_with_entries_left)
{
  /* Entries are dropped, their data untouched (the test frees it after:
   * ASan would report a double free or a leak). */
  struct cx_sched *s = new_sched();
  char *bufs[1000];
  for (int i = 0; i < 1000; i++) {
    bufs[i] = cx_malloc(16);
    ASSERT(bufs[i] != NULL);
    bufs[i][0] = (char)i;
    ASSERT_EQ(cx_sched_put(s, i, i, bufs[i], NULL), 0);
  }
  for (int i = 0; i < 500; i += 3)
    ASSERT_EQ(cx_sched_remove(s, i, NULL), 0);
  ASSERT_EQ(cx_sched_count(s), 1000 - 167);
  cx_sched_destroy(s);
  for (int i = 0; i < 1000; i++) {
    ASSERT_EQ(bufs[i][0], (char)i);
    cx_free(bufs[i]);
  }
}

/* ---- the real-clock loop ------------------------------------------------- */

struct runner {
  pthread_t th;
  struct cx_sched *s;
  struct rec *r;
  int rc;
};

static void real_cb(void *ctx, int64_t id, int64_t at, void *data)
{
  struct rec *r = ctx;
  int64_t late = cx_wall_ms() - at;
  if (late < 0)
    r->early++;
  if (late > r->late_max)
    r->late_max = late;
  rec_cb(ctx, id, at, data);
}

static void *run_thread(void *arg)
{
  struct runner *t = arg;
  t->rc = cx_sched_run(t->s, real_cb, t->r);
  return NULL;
}

static void runner_start(struct runner *t, struct cx_sched *s, struct rec *r)
{
  t->s = s;
  t->r = r;
  t->rc = 1;
  ASSERT_EQ(pthread_create(&t->th, NULL, run_thread, t), 0);
}

static void runner_join(struct runner *t)
{
  ASSERT_EQ(pthread_join(t->th, NULL), 0);
}

static void wait_done(struct rec *r)
{
  while (!atomic_load(&r->done))
    cx_sleep_us(1000); /* the test timeout bounds this */
}

TEST(sched_run_fires_entry_put_from_other_thread)
{
  struct cx_sched *s = new_sched();
  struct runner t;
  struct rec r;
  int64_t due;

  rec_init(&r, s);
  r.stop_after = 1;
  runner_start(&t, s, &r);
  cx_sleep_us(20000); /* let run() go to sleep on the empty scheduler */
  due = cx_wall_ms() + 50;
  ASSERT_EQ(cx_sched_put(s, 77, due, &t, NULL), 0);
  wait_done(&r);
  runner_join(&t);
  ASSERT_EQ(t.rc, 0);
  assert_fired(&r, (int64_t[]){77}, (int64_t[]){due}, 1);
  ASSERT(r.v[0].data == &t);
  ASSERT_EQ(r.early, 0);
  fprintf(stderr, "info: lateness %" PRId64 " ms\n", r.late_max);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_run_fires_past_entries_in_order_then_stops_from_callback)
{
  struct cx_sched *s = new_sched();
  struct runner t;
  struct rec r;
  int64_t now = cx_wall_ms();

  rec_init(&r, s);
  r.stop_after = 50;
  for (int i = 0; i < 50; i++)
    ASSERT_EQ(cx_sched_put(s, i, now - 1000 + (i * 37) % 50, NULL, NULL), 0);
  ASSERT_EQ(cx_sched_put(s, 99, now + 3600000, NULL, NULL), 0);
  runner_start(&t, s, &r);
  runner_join(&t); /* the 50th callback stops it */
  ASSERT_EQ(t.rc, 0);
  ASSERT_EQ(r.n, 50);
  for (size_t i = 1; i < r.n; i++)
    ASSERT_OP(r.v[i - 1].at, <=, r.v[i].at);
  ASSERT_EQ(cx_sched_count(s), 1);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_stop_wakes_sleeping_run)
{
  struct cx_sched *s = new_sched();
  struct runner t;
  struct rec r;
  cx_mono t0;

  rec_init(&r, s);
  ASSERT_EQ(cx_sched_put(s, 1, cx_wall_ms() + 3600000, NULL, NULL), 0);
  runner_start(&t, s, &r);
  cx_sleep_us(50000);
  t0 = cx_mono_now();
  cx_sched_stop(s);
  runner_join(&t);
  fprintf(stderr, "info: run returned %" PRId64 " us after stop\n",
          cx_mono_now() - t0);
  ASSERT_EQ(t.rc, 0);
  ASSERT_EQ(r.n, 0);
  ASSERT_EQ(cx_sched_count(s), 1);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_stop_before_run_is_consumed)
{
  /* A stop requested before run() makes it return at once without firing;
   * the request is consumed, so the next run() works. */
  struct cx_sched *s = new_sched();
  struct runner t;
  struct rec r;

  rec_init(&r, s);
  ASSERT_EQ(cx_sched_put(s, 1, 0, NULL, NULL), 0);
  cx_sched_stop(s);
  ASSERT_EQ(cx_sched_run(s, real_cb, &r), 0);
  ASSERT_EQ(r.n, 0);
  r.stop_after = 1;
  runner_start(&t, s, &r);
  runner_join(&t);
  ASSERT_EQ(t.rc, 0);
  ASSERT_EQ(r.n, 1);
  rec_free(&r);
  cx_sched_destroy(s);
}

TEST(sched_second_concurrent_run_is_busy)
{
  struct cx_sched *s = new_sched();
  struct runner t;
  struct rec r;

  rec_init(&r, s);
  r.stop_after = 1000; /* the callback marks nothing done by itself */
  ASSERT_EQ(cx_sched_put(s, 1, 0, NULL, NULL), 0);
  runner_start(&t, s, &r);
  while (cx_sched_count(s) != 0) /* fired: the runner is inside run() */
    cx_sleep_us(1000);
  ASSERT_EQ(cx_sched_run(s, real_cb, &r), -EBUSY);
  cx_sched_stop(s);
  runner_join(&t);
  ASSERT_EQ(t.rc, 0);
  rec_free(&r);
  cx_sched_destroy(s);
}

struct producer {
  pthread_t th;
  struct cx_sched *s;
  int64_t first_id;
  int count;
};

static void *produce(void *arg)
{
  struct producer *p = arg;
  uint64_t st = (uint64_t)p->first_id;
  for (int i = 0; i < p->count; i++) {
    int64_t id = p->first_id + i;
    /* Put, then half the time replace or remove-and-put again. */
    ASSERT_EQ(cx_sched_put(p->s, id, cx_wall_ms() + 3600000, NULL, NULL), 0);
    if (rng_next(&st) % 2)
      ASSERT_EQ(cx_sched_remove(p->s, id, NULL), 0);
    ASSERT_EQ(cx_sched_put(p->s, id,
                           cx_wall_ms() + (int64_t)(rng_next(&st) % 30),
                           (void *)(uintptr_t)id, NULL),
              0);
  }
  return NULL;
}

TEST(sched_run_with_concurrent_producers_fires_each_once)
{
  /* Two threads put, replace and remove while run() fires: every id fires
   * exactly once, with its last data, never before its instant. */
  enum { PER = 5000 };
  struct cx_sched *s = new_sched();
  struct producer p[2];
  struct runner t;
  struct rec r;
  char *seen = calloc(2 * PER, 1);

  rec_init(&r, s);
  r.stop_after = 2 * PER;
  runner_start(&t, s, &r);
  for (int i = 0; i < 2; i++) {
    p[i].s = s;
    p[i].first_id = (int64_t)i * PER;
    p[i].count = PER;
    ASSERT_EQ(pthread_create(&p[i].th, NULL, produce, &p[i]), 0);
  }
  for (int i = 0; i < 2; i++)
    ASSERT_EQ(pthread_join(p[i].th, NULL), 0);
  wait_done(&r);
  runner_join(&t);
  ASSERT_EQ(t.rc, 0);
  ASSERT_EQ(r.n, 2 * PER);
  ASSERT_EQ(r.early, 0);
  for (size_t i = 0; i < r.n; i++) {
    int64_t id = r.v[i].id;
    ASSERT(id >= 0 && id < 2 * PER && !seen[id]);
    ASSERT_EQ((uintptr_t)r.v[i].data, (uintptr_t)id);
    seen[id] = 1;
  }
  ASSERT_EQ(cx_sched_count(s), 0);
  assert_valid(s);
  fprintf(stderr, "info: max lateness %" PRId64 " ms\n", r.late_max);
  free(seen);
  rec_free(&r);
  cx_sched_destroy(s);
}

struct idle_ctx {
  struct cx_sched *s;
  int fired, idle_calls, work_left;
  int fired_before_idle; /* fires seen by the first idle call */
};

static void idle_fire_cb(void *ctx, int64_t id, int64_t at_ms, void *data)
{
  struct idle_ctx *c = ctx;
  (void)id;
  (void)at_ms;
  (void)data;
  c->fired++;
}

static int idle_cb(void *ctx)
{
  struct idle_ctx *c = ctx;
  if (c->idle_calls++ == 0)
    c->fired_before_idle = c->fired;
  if (c->work_left > 0) {
    c->work_left--;
    return 1;
  }
  if (c->fired == 50)
    cx_sched_stop(c->s);
  return 0;
}

TEST(sched_run_calls_idle_after_the_batch_until_it_is_done)
{
  /* 50 entries due at once: all fire before the first idle call, and the
   * loop keeps calling idle while it reports more work. */
  struct cx_sched *s = new_sched();
  struct idle_ctx c = {.s = s, .work_left = 5};
  int64_t now = cx_wall_ms();
  for (int i = 0; i < 50; i++)
    ASSERT_EQ(cx_sched_put(s, i, now - 10, NULL, NULL), 0);
  cx_sched_set_idle(s, idle_cb, &c);
  ASSERT_EQ(cx_sched_run(s, idle_fire_cb, &c), 0);
  ASSERT_EQ(c.fired, 50);
  ASSERT_EQ(c.fired_before_idle, 50);
  ASSERT_OP(c.idle_calls, >=, 6);
  cx_sched_destroy(s);
}
