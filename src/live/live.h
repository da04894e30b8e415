/*
 * live: the output of running runs, as it is produced (issue 15).
 *
 * A run's live output is kept head-and-tail like its stored output (node/
 * exec): the first limit/2 bytes, then a ring of the last limit - limit/2
 * bytes, so memory is bounded however fast a job prints. Offsets are
 * absolute byte offsets in everything the run wrote (all its attempts, one
 * after the other). A reader asks for bytes from an offset: bytes still
 * kept are copied; bytes the ring has overwritten are skipped and counted
 * ("missed"), the read resuming at the oldest byte kept. That is the only
 * buffering a reader gets: a slow reader never makes the writer wait or
 * the buffer grow, it misses bytes instead.
 *
 * The table maps run ids to live outputs. An ended run stays in the table
 * for CX_LIVE_LINGER_MS (so followers read its last bytes and its end with
 * exact offsets), then is dropped at the next open/find/list.
 *
 * Thread-safety: every function is thread-safe. Watch callbacks run on the
 * writer's thread with the output's lock held: they must only signal (no
 * call back into this module).
 */
#ifndef CX_LIVE_H
#define CX_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define CX_LIVE_LINGER_MS 30000
#define CX_LIVE_WATCHERS_MAX 1024 /* watchers of one run */
#define CX_LIVE_STATUS_LEN 16

struct cx_live_table;
struct cx_live;

/* 0 or -ENOMEM. */
int cx_live_table_create(struct cx_live_table **out);
/* Frees the table; outputs still referenced live on until unref'd. */
void cx_live_table_destroy(struct cx_live_table *t);

/* A new live output for run_id (replacing one of the same id) keeping
 * limit bytes (>= 2). Returns it with a reference for the caller, or NULL
 * when out of memory. */
struct cx_live *cx_live_open(struct cx_live_table *t, int64_t run_id,
                             size_t limit);
/* run_id's live output with a reference; when there is none, a new one
 * as cx_live_open makes (then *created = 1). NULL when out of memory. */
struct cx_live *cx_live_get(struct cx_live_table *t, int64_t run_id,
                            size_t limit, int *created);
/* run_id's live output with a reference, or NULL. */
struct cx_live *cx_live_find(struct cx_live_table *t, int64_t run_id);
/* The ids of the runs not yet ended, up to max of them into ids; returns
 * how many there are (may exceed max). */
size_t cx_live_running(struct cx_live_table *t, int64_t *ids, size_t max);
/* Takes / drops a reference (the last one frees it). */
void cx_live_ref(struct cx_live *l);
void cx_live_unref(struct cx_live *l);

/* Appends what the run wrote and wakes the watchers. NULL l is ignored. */
void cx_live_add(struct cx_live *l, const char *p, size_t n);
/* Appends n bytes that sit at absolute offset off (a copy of another
 * live output): when off is past the end, the bytes between were lost and
 * readers count them as missed; bytes before the end are not written
 * again. */
void cx_live_add_at(struct cx_live *l, uint64_t off, const char *p, size_t n);
/* Marks the run ended with its status ("success", ...; cut to
 * CX_LIVE_STATUS_LEN - 1) and exit code, and wakes the watchers. */
void cx_live_end(struct cx_live *l, const char *status, int exit_code);

/* Where a reader stands after cx_live_read. */
struct cx_live_state {
  uint64_t missed; /* bytes skipped before the copied ones (cut) */
  uint64_t total;  /* bytes written so far */
  int ended;       /* the run has ended (then status, exit_code) */
  char status[CX_LIVE_STATUS_LEN];
  int exit_code;
};

/* Copies up to max bytes from offset *off into buf, advancing *off past
 * the missed and copied bytes; returns how many were copied (0: nothing
 * new yet, or *off is at or past the end). An offset past the end is left
 * as it is (its bytes have not been written yet). */
size_t cx_live_read(struct cx_live *l, uint64_t *off, char *buf, size_t max,
                    struct cx_live_state *st);

/* Waits up to timeout_ms for bytes past off or the end. 1 if there are
 * (or the run ended), 0 on timeout. */
int cx_live_wait(struct cx_live *l, uint64_t off, int64_t timeout_ms);

/* fn(arg) is called after every add and at the end until unwatched.
 * 0, or CX_ETOOBIG past CX_LIVE_WATCHERS_MAX, or -ENOMEM. Once
 * cx_live_unwatch returns, fn is not running and will not be called. */
typedef void (*cx_live_notify_fn)(void *arg);
int cx_live_watch(struct cx_live *l, cx_live_notify_fn fn, void *arg);
void cx_live_unwatch(struct cx_live *l, cx_live_notify_fn fn, void *arg);

#endif
