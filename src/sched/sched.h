/*
 * sched: the timer core. One entry per job id, keyed by an absolute
 * wall-clock instant in milliseconds since the epoch (UTC, the unit of
 * cx_wall_ms()). The node puts each job's next fire time here; the core
 * hands due entries to a callback together with the instant they were
 * scheduled for, so lateness and misfires are the caller's decision.
 *
 * Costs (n = entries, k = distinct instants held, k <= n): entries due at
 * the same instant hang on one FIFO list, and only the distinct instants
 * are ordered (a 4-ary min-heap), so put, replace and remove are O(1)
 * expected plus one O(log k) heap step when they create or empty an
 * instant; next_at is O(1); a fire is O(1) plus one O(log k) pop when it
 * empties its instant. Every instant distinct (the worst case) is O(log n)
 * per operation; a cron workload (whole seconds, thousands of entries per
 * second) fires in O(1). Nothing ever scans or sorts all entries per tick.
 * Memory: 28 bytes per entry and 20 per distinct instant (heap node,
 * back-link), each with an 8-byte hash slot at load <= 3/4; arrays grow by
 * doubling (cx_sched_reserve sizes the entries exactly). Measured at 1M
 * entries (cx_sched_mem_bytes): 46 bytes per entry over 60 instants, 49
 * over 60,000, 84 when all 1M instants differ (the heap of entries this
 * replaced took 46 in every case).
 *
 * Order: by instant, and entries due at the same instant fire in the order
 * they were put (FIFO; a replace counts as a new put, like restarting a
 * libuv timer). Instants above CX_SCHED_AT_MAX are clamped to it.
 *
 * Two ways to drive it:
 *   - cx_sched_run_due(s, now, ...): a virtual-clock step, for tests and
 *     for callers that keep their own clock;
 *   - cx_sched_run(s, ...): the real-clock loop; it sleeps until the
 *     earliest entry is due (a put from another thread that makes an
 *     earlier entry wakes it) and returns after cx_sched_stop().
 *
 * Every function but destroy is thread-safe: one mutex guards the
 * structure and is released while a callback runs, so callbacks may call
 * put/remove/stop (including on the entry being fired: it was already
 * removed). The data pointers are the caller's; the scheduler never
 * dereferences or frees them.
 */
#ifndef CX_SCHED_H
#define CX_SCHED_H

#include <stddef.h>
#include <stdint.h>

/* Largest instant stored; larger ones are clamped to it. Kept below
 * INT64_MAX so that cx_sched_next_at() on an empty scheduler (INT64_MAX)
 * is distinguishable from one holding a far-future entry. */
#define CX_SCHED_AT_MAX (INT64_MAX - 1)

/* Most entries one scheduler holds (put returns CX_ETOOBIG beyond). */
#define CX_SCHED_MAX_ENTRIES ((size_t)1 << 30)

/* Longest single sleep of cx_sched_run(), in ms of the wall clock. The
 * sleep ends at an absolute CLOCK_REALTIME instant, so the kernel already
 * ends it early when the clock steps past it; the cap bounds how long the
 * loop goes without re-reading the clock in any case. */
#define CX_SCHED_MAX_WAIT_MS 1000

struct cx_sched; /* opaque */

/* Called for each due entry, with the scheduler unlocked. job_id, at_ms
 * (the instant the entry was scheduled for, after clamping) and data are
 * those of the entry, which has already been removed: to fire again the
 * callback puts the id again. ctx is the caller's pointer given to
 * run/run_due. */
typedef void (*cx_sched_fire_cb)(void *ctx, int64_t job_id, int64_t at_ms,
                                 void *data);

/* Creates an empty scheduler in *out (NULL on failure). Returns 0, -ENOMEM,
 * or the -errno of a failed pthread init. */
int cx_sched_create(struct cx_sched **out);

/* Frees the scheduler (NULL is allowed). Entries still in it are dropped
 * without touching their data pointers (they stay the caller's). Must not
 * race with any other call on s, nor run while cx_sched_run() runs. */
void cx_sched_destroy(struct cx_sched *s);

/* Preallocates room for n entries so that puts up to n allocate nothing
 * for entries (and their memory has no growth slack); the table of
 * distinct instants still grows, by doubling, when a put brings an instant
 * no entry has. Returns 0, -EINVAL (s NULL), CX_ETOOBIG
 * (n > CX_SCHED_MAX_ENTRIES) or -ENOMEM; on failure the entries are
 * unchanged (part of the growth may have been kept). */
int cx_sched_reserve(struct cx_sched *s, size_t n);

/* Adds the entry of job_id due at at_ms, or atomically replaces the
 * existing entry of job_id (its instant, its data, and its place among
 * ties: it goes behind entries already due at the same instant). at_ms
 * above CX_SCHED_AT_MAX is clamped. If replaced is not NULL it receives
 * the previous data pointer on a replace and NULL on an add, so the caller
 * can release what it owns. Wakes a sleeping cx_sched_run() if the entry is
 * due before the instant it sleeps until.
 * Returns 0; -EINVAL (s NULL); CX_ETOOBIG (CX_SCHED_MAX_ENTRIES reached);
 * -ENOMEM (an add, or a replace that moves an entry sharing its instant to
 * an instant no entry has, may need room). On failure nothing changed and
 * *replaced is NULL. */
int cx_sched_put(struct cx_sched *s, int64_t job_id, int64_t at_ms, void *data,
                 void **replaced);

/* Removes the entry of job_id. data_out (optional) receives its data.
 * Returns 0, -EINVAL (s NULL) or CX_ENOTFOUND (no entry: never put,
 * removed, or already fired). */
int cx_sched_remove(struct cx_sched *s, int64_t job_id, void **data_out);

/* Looks the entry of job_id up without changing it; at_out and data_out
 * are optional (*data_out is set to NULL when there is no entry).
 * Returns 0, -EINVAL (s NULL) or CX_ENOTFOUND. */
int cx_sched_get(struct cx_sched *s, int64_t job_id, int64_t *at_out,
                 void **data_out);

/* The earliest instant in the scheduler, INT64_MAX if it is empty (or s is
 * NULL). */
int64_t cx_sched_next_at(struct cx_sched *s);

/* Number of entries (0 for NULL). */
size_t cx_sched_count(struct cx_sched *s);

/* Bytes of memory the scheduler holds (structure plus arrays at their
 * current capacity; allocator overhead not counted; 0 for NULL). O(1). */
size_t cx_sched_mem_bytes(struct cx_sched *s);

/* Virtual-clock step: pops the entries due at or before now_ms in (instant,
 * FIFO) order and calls cb for each, unlocked. It fires at most as many
 * entries as the scheduler held when the call began, so a callback that
 * keeps putting due entries cannot make it loop forever; call again while
 * cx_sched_next_at() <= now_ms to drain such entries. Returns the number
 * fired (>= 0) or -EINVAL (s or cb NULL; then cb is never called). */
int cx_sched_run_due(struct cx_sched *s, int64_t now_ms, cx_sched_fire_cb cb,
                     void *ctx);

/* Real-clock loop: until cx_sched_stop(), waits for the earliest entry to
 * be due on the wall clock (cx_wall_ms) and fires due entries as
 * cx_sched_run_due would, on the calling thread. It sleeps on a
 * CLOCK_REALTIME condition variable at most CX_SCHED_MAX_WAIT_MS at a time:
 * a forward step of the clock makes entries due at once, a backward step
 * makes them wait, as wall-clock deadlines should. Entries already due (in
 * the past) fire immediately. A stop requested before the call makes it
 * return at once; the stop request is consumed, so the scheduler can be
 * run again. Returns 0 after a stop, -EINVAL (s or cb NULL) or -EBUSY
 * (another thread is already in cx_sched_run on s). */
int cx_sched_run(struct cx_sched *s, cx_sched_fire_cb cb, void *ctx);

/* Makes cx_sched_run() return: wakes it if it sleeps, or stops it after the
 * callback in progress. Thread-safe (any thread, including from a
 * callback); not async-signal-safe. */
void cx_sched_stop(struct cx_sched *s);

/* Checks every internal invariant (heap order and back-links, the
 * instant lists, both hashes) in O(n). Returns 0, -EINVAL (s NULL) or
 * CX_EPROTO naming the broken invariant in err (optional, CX_ERR_LEN
 * bytes). For tests and debugging. */
int cx_sched_verify(struct cx_sched *s, char *err);

/* Deferred work for the real-clock loop. When cx_sched_run has fired
 * everything due and is about to sleep, it calls idle(ctx) with the lock
 * released; idle returns 1 if it has more to do (the loop then fires what
 * has come due meanwhile and calls it again) or 0 (the loop sleeps). Keep
 * each call short (a bounded chunk of work): due entries wait for it.
 * The point: a fire callback only hands its fire over, and the slower work
 * of every fire of an instant -- computing next fires, re-arming -- runs
 * after the whole batch, so the last entry of a crowded instant is not
 * late by the others' work. NULL idle removes the hook. Set it before
 * cx_sched_run starts. */
typedef int (*cx_sched_idle_cb)(void *ctx);
void cx_sched_set_idle(struct cx_sched *s, cx_sched_idle_cb idle, void *ctx);

#endif
