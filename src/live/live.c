/*
 * live: see live.h. One mutex per output guards its bytes, state and
 * watchers; the table's mutex guards the list. References are atomic: the
 * table holds one while an output is listed, so find can take another
 * under the table's mutex.
 */
#include "live/live.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct watcher {
  cx_live_notify_fn fn;
  void *arg;
};

struct cx_live {
  struct cx_live *next; /* table list (under the table's mutex) */
  atomic_int refs;
  int64_t run_id;
  _Atomic int64_t ended_ms; /* when it ended (wall ms); 0 = running */
  pthread_mutex_t mu;
  pthread_cond_t cond;
  char *buf; /* head [0, head_cap), ring [head_cap, head_cap + ring_cap) */
  size_t head_cap, ring_cap;
  uint64_t total;
  uint64_t valid_from; /* ring bytes before it were never written (a gap) */
  uint64_t head_valid; /* head bytes from it on are a gap (UINT64_MAX: none) */
  int ended;
  char status[CX_LIVE_STATUS_LEN];
  int exit_code;
  struct watcher *w;
  size_t nw, capw;
};

struct cx_live_table {
  pthread_mutex_t mu;
  struct cx_live *head;
};

int cx_live_table_create(struct cx_live_table **out)
{
  struct cx_live_table *t = cx_calloc(1, sizeof *t);
  if (t == NULL)
    return -ENOMEM;
  pthread_mutex_init(&t->mu, NULL);
  *out = t;
  return 0;
}

static void live_free(struct cx_live *l)
{
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cond);
  cx_free(l->w);
  cx_free(l->buf);
  cx_free(l);
}

/* Drops *pp from the table (the table's mutex held) with its reference. */
static void unlink_locked(struct cx_live **pp)
{
  struct cx_live *l = *pp;
  *pp = l->next;
  l->next = NULL;
  cx_live_unref(l);
}

void cx_live_table_destroy(struct cx_live_table *t)
{
  if (t == NULL)
    return;
  pthread_mutex_lock(&t->mu);
  while (t->head != NULL)
    unlink_locked(&t->head);
  pthread_mutex_unlock(&t->mu);
  pthread_mutex_destroy(&t->mu);
  cx_free(t);
}

/* Drops outputs that ended more than CX_LIVE_LINGER_MS ago, and (id > 0)
 * the one of run id. */
static void purge_locked(struct cx_live_table *t, int64_t id)
{
  int64_t now = cx_wall_ms();
  struct cx_live **pp = &t->head;
  while (*pp != NULL) {
    struct cx_live *l = *pp;
    int64_t ended = atomic_load(&l->ended_ms);
    if (l->run_id == id || (ended != 0 && now - ended > CX_LIVE_LINGER_MS))
      unlink_locked(pp);
    else
      pp = &l->next;
  }
}

static struct cx_live *live_new(int64_t run_id, size_t limit)
{
  struct cx_live *l = cx_calloc(1, sizeof *l);
  if (l == NULL)
    return NULL;
  l->buf = cx_malloc(limit);
  if (l->buf == NULL) {
    cx_free(l);
    return NULL;
  }
  l->head_cap = limit / 2;
  l->ring_cap = limit - l->head_cap;
  l->run_id = run_id;
  l->exit_code = -1;
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cond, NULL);
  l->head_valid = UINT64_MAX;
  atomic_init(&l->refs, 2); /* the table's and the caller's */
  return l;
}

struct cx_live *cx_live_open(struct cx_live_table *t, int64_t run_id,
                             size_t limit)
{
  if (t == NULL || limit < 2)
    return NULL;
  struct cx_live *l = live_new(run_id, limit);
  if (l == NULL)
    return NULL;
  pthread_mutex_lock(&t->mu);
  purge_locked(t, run_id);
  l->next = t->head;
  t->head = l;
  pthread_mutex_unlock(&t->mu);
  return l;
}

struct cx_live *cx_live_get(struct cx_live_table *t, int64_t run_id,
                            size_t limit, int *created)
{
  struct cx_live *l;
  *created = 0;
  if (t == NULL || limit < 2)
    return NULL;
  pthread_mutex_lock(&t->mu);
  purge_locked(t, 0);
  for (l = t->head; l != NULL && l->run_id != run_id; l = l->next)
    ;
  if (l != NULL) {
    atomic_fetch_add(&l->refs, 1);
  } else if ((l = live_new(run_id, limit)) != NULL) {
    l->next = t->head;
    t->head = l;
    *created = 1;
  }
  pthread_mutex_unlock(&t->mu);
  return l;
}

struct cx_live *cx_live_find(struct cx_live_table *t, int64_t run_id)
{
  struct cx_live *l;
  if (t == NULL)
    return NULL;
  pthread_mutex_lock(&t->mu);
  purge_locked(t, 0);
  for (l = t->head; l != NULL && l->run_id != run_id; l = l->next)
    ;
  if (l != NULL)
    atomic_fetch_add(&l->refs, 1);
  pthread_mutex_unlock(&t->mu);
  return l;
}

size_t cx_live_running(struct cx_live_table *t, int64_t *ids, size_t max)
{
  size_t n = 0;
  if (t == NULL)
    return 0;
  pthread_mutex_lock(&t->mu);
  purge_locked(t, 0);
  for (struct cx_live *l = t->head; l != NULL; l = l->next) {
    if (atomic_load(&l->ended_ms) != 0)
      continue;
    if (n < max)
      ids[n] = l->run_id;
    n++;
  }
  pthread_mutex_unlock(&t->mu);
  return n;
}

void cx_live_ref(struct cx_live *l)
{
  atomic_fetch_add(&l->refs, 1);
}

void cx_live_unref(struct cx_live *l)
{
  if (l != NULL && atomic_fetch_sub(&l->refs, 1) == 1)
    live_free(l);
}

static void notify_locked(struct cx_live *l)
{
  pthread_cond_broadcast(&l->cond);
  for (size_t i = 0; i < l->nw; i++)
    l->w[i].fn(l->w[i].arg);
}

void cx_live_add(struct cx_live *l, const char *p, size_t n)
{
  if (l == NULL || n == 0)
    return;
  pthread_mutex_lock(&l->mu);
  if (l->total < l->head_cap) {
    size_t k = l->head_cap - (size_t)l->total;
    if (k > n)
      k = n;
    memcpy(l->buf + l->total, p, k);
    l->total += k;
    p += k;
    n -= k;
  }
  if (n > l->ring_cap) { /* only the last ring_cap bytes can survive */
    l->total += n - l->ring_cap;
    p += n - l->ring_cap;
    n = l->ring_cap;
  }
  /* Byte at absolute offset a (>= head_cap) lives at ring[(a - head_cap)
   * % ring_cap]. */
  char *ring = l->buf + l->head_cap;
  while (n > 0) {
    size_t at = (size_t)((l->total - l->head_cap) % l->ring_cap);
    size_t k = l->ring_cap - at;
    if (k > n)
      k = n;
    memcpy(ring + at, p, k);
    l->total += k;
    p += k;
    n -= k;
  }
  notify_locked(l);
  pthread_mutex_unlock(&l->mu);
}

void cx_live_add_at(struct cx_live *l, uint64_t off, const char *p, size_t n)
{
  if (l == NULL)
    return;
  pthread_mutex_lock(&l->mu);
  if (off > l->total) {
    /* Lost bytes: the ring's older bytes stay readable only up to the
     * gap, so mark everything before it as gone (simple, and gaps are
     * rare: the copy fell behind its source's ring). */
    if (l->total < l->head_cap && l->head_valid == UINT64_MAX)
      l->head_valid = l->total;
    l->total = off;
    l->valid_from = off;
  }
  uint64_t skip = l->total - off;
  pthread_mutex_unlock(&l->mu);
  if (skip < n)
    cx_live_add(l, p + skip, n - (size_t)skip);
}

void cx_live_end(struct cx_live *l, const char *status, int exit_code)
{
  if (l == NULL)
    return;
  pthread_mutex_lock(&l->mu);
  l->ended = 1;
  snprintf(l->status, sizeof l->status, "%s", status ? status : "");
  l->exit_code = exit_code;
  notify_locked(l);
  pthread_mutex_unlock(&l->mu);
  atomic_store(&l->ended_ms, cx_wall_ms());
}

size_t cx_live_read(struct cx_live *l, uint64_t *off, char *buf, size_t max,
                    struct cx_live_state *st)
{
  size_t got = 0;
  memset(st, 0, sizeof *st);
  pthread_mutex_lock(&l->mu);
  uint64_t o = *off;
  uint64_t end = l->total < l->head_cap ? l->total : l->head_cap;
  if (end > l->head_valid)
    end = l->head_valid;
  if (o < end) {
    got = (size_t)(end - o) < max ? (size_t)(end - o) : max;
    memcpy(buf, l->buf + o, got);
    o += got;
  }
  if (got == 0 && o < l->total) {
    uint64_t kept_from = l->total - l->ring_cap;
    if (l->total < l->head_cap + l->ring_cap)
      kept_from = l->head_cap;
    if (kept_from < l->valid_from)
      kept_from = l->valid_from;
    if (o < kept_from) {
      st->missed = kept_from - o;
      o = kept_from;
    }
    const char *ring = l->buf + l->head_cap;
    while (got < max && o < l->total) {
      size_t at = (size_t)((o - l->head_cap) % l->ring_cap);
      size_t k = l->ring_cap - at;
      if ((uint64_t)k > l->total - o)
        k = (size_t)(l->total - o);
      if (k > max - got)
        k = max - got;
      memcpy(buf + got, ring + at, k);
      got += k;
      o += k;
    }
  }
  *off = o;
  st->total = l->total;
  st->ended = l->ended;
  memcpy(st->status, l->status, sizeof st->status);
  st->exit_code = l->exit_code;
  pthread_mutex_unlock(&l->mu);
  return got;
}

int cx_live_wait(struct cx_live *l, uint64_t off, int64_t timeout_ms)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += (time_t)(timeout_ms / 1000);
  ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&l->mu);
  int rc = 0;
  while (!l->ended && l->total <= off && rc == 0)
    rc = pthread_cond_timedwait(&l->cond, &l->mu, &ts);
  int ready = l->ended || l->total > off;
  pthread_mutex_unlock(&l->mu);
  return ready;
}

int cx_live_watch(struct cx_live *l, cx_live_notify_fn fn, void *arg)
{
  int rc = 0;
  pthread_mutex_lock(&l->mu);
  if (l->nw >= CX_LIVE_WATCHERS_MAX) {
    rc = CX_ETOOBIG;
  } else if (l->nw == l->capw) {
    size_t cap = l->capw ? l->capw * 2 : 8;
    struct watcher *w = cx_realloc(l->w, cap * sizeof *w);
    if (w == NULL)
      rc = -ENOMEM;
    else {
      l->w = w;
      l->capw = cap;
    }
  }
  if (rc == 0)
    l->w[l->nw++] = (struct watcher){fn, arg};
  pthread_mutex_unlock(&l->mu);
  return rc;
}

void cx_live_unwatch(struct cx_live *l, cx_live_notify_fn fn, void *arg)
{
  pthread_mutex_lock(&l->mu);
  for (size_t i = 0; i < l->nw; i++) {
    if (l->w[i].fn == fn && l->w[i].arg == arg) {
      l->w[i] = l->w[--l->nw];
      break;
    }
  }
  pthread_mutex_unlock(&l->mu);
}
