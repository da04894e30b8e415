/*
 * sched: the timer core (see sched.h for the contract).
 *
 * Layout, chosen for memory per entry and cache misses per operation:
 *
 *   ents[]   a slab of entries {job_id, data}; freed slots form a free
 *            list (linked through pos[]), so a fire or a replace never
 *            mallocs.
 *   pos[]    per entry, its position in the heap: the back-link that
 *            makes remove and replace O(log n). A separate 4-byte array
 *            rather than a field, so the writes every heap move makes
 *            land in 4 MB instead of 24 MB at 1M entries (fewer cache
 *            misses), and an entry is 16 bytes.
 *   heap[]   a 4-ary min-heap of 16-byte nodes {at, seq, entry index},
 *            ordered by (at, seq). The key sits in the node itself, so a
 *            sift compares without touching the entries, and the array
 *            is placed so that each group of four siblings fills exactly
 *            one 64-byte cache line.
 *   slots[]  an open-addressing hash (linear probing, backward-shift
 *            deletion, so no tombstones) of 4-byte entry indices, keyed
 *            by job id through a seeded 64-bit mixer.
 *
 * This follows libuv's heap-inl.h design (rule 14) in what it is for:
 * each entry has its heap link, equal instants fire FIFO by a start
 * counter, huge instants are clamped, and a fired entry may be deleted or
 * re-added from its own callback. It departs in the representation: libuv
 * embeds three pointers per node (24 bytes) in caller-owned timers; here
 * entries are internal, so an implicit array heap with a 4-byte back-link
 * costs less memory and fewer cache misses for the same O(log n).
 *
 * The tie counter is 32 bits to keep a node at 16 bytes. When it would
 * wrap (once per 2^32 puts) the heap is sorted by (at, seq) -- a sorted
 * array is a valid heap -- and renumbered 0..n-1, which keeps every
 * relative order. Callbacks run with the mutex released; a fired entry is
 * popped before its callback, so nothing needs a deferred free.
 */
#include "sched/sched.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

#define NONE UINT32_MAX
#define ARITY 4
#define CACHE_LINE 64
#define MIN_CAP 64
#define MIN_SLOTS 16

struct node {
  int64_t at;   /* clamped instant, ms since the epoch */
  uint32_t seq; /* put order, breaks ties */
  uint32_t idx; /* index of the entry in ents[] */
};

struct entry {
  int64_t id;
  void *data;
};

struct cx_sched {
  pthread_mutex_t mu;
  pthread_cond_t cv;

  struct node *heap; /* see heap_alloc for the alignment trick */
  void *heap_raw;
  struct entry *ents;
  uint32_t *pos; /* per entry: heap position if live, else next free */
  uint32_t n;    /* live entries == heap size */
  uint32_t cap;  /* capacity of ents[] and heap[] */
  uint32_t used; /* ents[] high-water mark */
  uint32_t free_head;

  uint32_t *slots; /* entry index + 1; 0 = empty */
  uint32_t slot_mask;
  uint64_t seed;

  uint32_t seq;        /* next tie counter */
  int stop;            /* a stop was requested */
  int running;         /* a thread is inside cx_sched_run */
  int64_t sleep_until; /* instant run() sleeps until; INT64_MAX if awake */
};

/* ---- hash ---------------------------------------------------------------- */

/* A 64-bit finaliser (xor-shift-multiply rounds) so sequential ids spread
 * over the table; the seed keeps the layout per instance. */
static uint64_t mix(uint64_t x)
{
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

static uint32_t home_slot(const struct cx_sched *s, int64_t id)
{
  return (uint32_t)mix((uint64_t)id ^ s->seed) & s->slot_mask;
}

/* Slot holding id, or NONE. */
static uint32_t slot_find(const struct cx_sched *s, int64_t id)
{
  uint32_t i, v;
  if (s->slots == NULL)
    return NONE;
  i = home_slot(s, id);
  while ((v = s->slots[i]) != 0) {
    if (s->ents[v - 1].id == id)
      return i;
    i = (i + 1) & s->slot_mask;
  }
  return NONE;
}

/* Inserts an entry index known to be absent; the table has room. */
static void slot_insert(struct cx_sched *s, uint32_t idx)
{
  uint32_t i = home_slot(s, s->ents[idx].id);
  while (s->slots[i] != 0)
    i = (i + 1) & s->slot_mask;
  s->slots[i] = idx + 1;
}

/* Empties slot i, shifting later members of its probe run back so that
 * every key stays reachable from its home slot without tombstones. */
static void slot_delete(struct cx_sched *s, uint32_t i)
{
  uint32_t j = i, home, v;
  for (;;) {
    j = (j + 1) & s->slot_mask;
    v = s->slots[j];
    if (v == 0)
      break;
    home = home_slot(s, s->ents[v - 1].id);
    /* Move v into the hole at i unless its home lies cyclically in (i, j]:
     * then the hole is before its home and it must stay. */
    if (((j - home) & s->slot_mask) >= ((j - i) & s->slot_mask)) {
      s->slots[i] = v;
      i = j;
    }
  }
  s->slots[i] = 0;
}

/* Makes the hash hold `want` entries at load <= 3/4. */
static int slots_reserve(struct cx_sched *s, size_t want)
{
  size_t nslots = s->slots ? (size_t)s->slot_mask + 1 : 0;
  size_t newn = nslots ? nslots : MIN_SLOTS;
  uint32_t *ns, *old = s->slots, i;

  if (want * 4 <= nslots * 3)
    return 0;
  while (want * 4 > newn * 3)
    newn *= 2;
  ns = cx_calloc(newn, sizeof(*ns));
  if (ns == NULL)
    return -ENOMEM;
  s->slots = ns;
  s->slot_mask = (uint32_t)(newn - 1);
  for (i = 0; i < s->n; i++)
    slot_insert(s, s->heap[i].idx);
  cx_free(old);
  return 0;
}

/* ---- heap ---------------------------------------------------------------- */

static int node_less(const struct node *a, const struct node *b)
{
  return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_set(struct cx_sched *s, uint32_t pos, struct node nd)
{
  s->heap[pos] = nd;
  s->pos[nd.idx] = pos;
}

static void sift_up(struct cx_sched *s, uint32_t pos)
{
  struct node nd = s->heap[pos];
  while (pos > 0) {
    uint32_t parent = (pos - 1) / ARITY;
    if (!node_less(&nd, &s->heap[parent]))
      break;
    heap_set(s, pos, s->heap[parent]);
    pos = parent;
  }
  heap_set(s, pos, nd);
}

static void sift_down(struct cx_sched *s, uint32_t pos)
{
  struct node nd = s->heap[pos];
  for (;;) {
    uint64_t first = (uint64_t)pos * ARITY + 1, c, end, best;
    if (first >= s->n)
      break;
    end = first + ARITY < s->n ? first + ARITY : s->n;
    best = first;
    for (c = first + 1; c < end; c++)
      if (node_less(&s->heap[c], &s->heap[best]))
        best = c;
    if (!node_less(&s->heap[best], &nd))
      break;
    heap_set(s, pos, s->heap[best]);
    pos = (uint32_t)best;
  }
  heap_set(s, pos, nd);
}

/* Restores order around pos after its key changed either way. */
static void heap_fix(struct cx_sched *s, uint32_t pos)
{
  if (pos > 0 && node_less(&s->heap[pos], &s->heap[(pos - 1) / ARITY]))
    sift_up(s, pos);
  else
    sift_down(s, pos);
}

/* Unlinks the node at pos from the heap (not the entry from the hash). */
static void heap_remove_at(struct cx_sched *s, uint32_t pos)
{
  s->n--;
  if (pos == s->n)
    return;
  heap_set(s, pos, s->heap[s->n]);
  heap_fix(s, pos);
}

/* Allocates a heap of cap nodes placed so that &heap[1] is cache-line
 * aligned: the children of i are 4i+1..4i+4, so each sibling group is one
 * line. */
static struct node *heap_alloc(uint32_t cap, void **raw)
{
  uintptr_t p;
  *raw = cx_malloc((size_t)cap * sizeof(struct node) + CACHE_LINE);
  if (*raw == NULL)
    return NULL;
  p = (uintptr_t)*raw + sizeof(struct node);
  p = (p + CACHE_LINE - 1) & ~(uintptr_t)(CACHE_LINE - 1);
  return (struct node *)(p - sizeof(struct node));
}

static int node_cmp(const void *a, const void *b)
{
  const struct node *x = a, *y = b;
  if (x->at != y->at)
    return x->at < y->at ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The tie counter ran out: sort (a sorted array is a heap) and renumber,
 * keeping every relative order. */
static void renumber(struct cx_sched *s)
{
  uint32_t i;
  qsort(s->heap, s->n, sizeof(struct node), node_cmp);
  for (i = 0; i < s->n; i++) {
    s->heap[i].seq = i;
    s->pos[s->heap[i].idx] = i;
  }
  s->seq = s->n;
}

static uint32_t next_seq(struct cx_sched *s)
{
  if (s->seq == UINT32_MAX)
    renumber(s);
  return s->seq++;
}

/* ---- capacity ------------------------------------------------------------ */

/* Grows ents[] and heap[] to hold at least want entries: exactly want if
 * exact, else by doubling (amortised O(1) per put). */
static int ents_reserve(struct cx_sched *s, size_t want, int exact)
{
  size_t newcap = exact ? want : s->cap ? s->cap : MIN_CAP;
  struct entry *ne;
  uint32_t *np;
  struct node *nh;
  void *raw;

  if (want <= s->cap)
    return 0;
  while (newcap < want)
    newcap *= 2;
  if (newcap > CX_SCHED_MAX_ENTRIES)
    newcap = CX_SCHED_MAX_ENTRIES;
  nh = heap_alloc((uint32_t)newcap, &raw);
  if (nh == NULL)
    return -ENOMEM;
  /* A realloc that succeeds is kept even if a later step fails: the
   * arrays are only larger than cap says, which is harmless. */
  ne = cx_realloc(s->ents, newcap * sizeof(*ne));
  if (ne != NULL)
    s->ents = ne;
  np = ne ? cx_realloc(s->pos, newcap * sizeof(*np)) : NULL;
  if (np == NULL) {
    cx_free(raw);
    return -ENOMEM;
  }
  s->pos = np;
  if (s->n > 0)
    memcpy(nh, s->heap, (size_t)s->n * sizeof(*nh));
  cx_free(s->heap_raw);
  s->heap = nh;
  s->heap_raw = raw;
  s->cap = (uint32_t)newcap;
  return 0;
}

static int reserve_locked(struct cx_sched *s, size_t want, int exact)
{
  int rc;
  if (want > CX_SCHED_MAX_ENTRIES)
    return CX_ETOOBIG;
  rc = slots_reserve(s, want);
  if (rc == 0)
    rc = ents_reserve(s, want, exact);
  return rc;
}

/* ---- entries ------------------------------------------------------------- */

static int64_t clamp_at(int64_t at)
{
  return at > CX_SCHED_AT_MAX ? CX_SCHED_AT_MAX : at;
}

/* Removes the live entry at heap position pos, returning it to the free
 * list; slot is its hash slot. */
static void entry_release(struct cx_sched *s, uint32_t pos, uint32_t slot)
{
  uint32_t idx = s->heap[pos].idx;
  slot_delete(s, slot);
  heap_remove_at(s, pos);
  s->ents[idx].data = NULL;
  s->pos[idx] = s->free_head;
  s->free_head = idx;
}

static void wake_if_earlier(struct cx_sched *s, int64_t at)
{
  if (at < s->sleep_until)
    pthread_cond_signal(&s->cv);
}

int cx_sched_create(struct cx_sched **out)
{
  struct cx_sched *s = NULL;
  pthread_condattr_t ca;
  int rc, have_attr = 0, have_mu = 0;

  *out = NULL;
  s = cx_calloc(1, sizeof(*s));
  if (s == NULL)
    return -ENOMEM;
  rc = -pthread_mutex_init(&s->mu, NULL);
  if (rc != 0)
    goto err;
  have_mu = 1;
  rc = -pthread_condattr_init(&ca);
  if (rc != 0)
    goto err;
  have_attr = 1;
  /* Fire times are wall-clock instants: wait on the wall clock. */
  rc = -pthread_condattr_setclock(&ca, CLOCK_REALTIME);
  if (rc == 0)
    rc = -pthread_cond_init(&s->cv, &ca);
  if (rc != 0)
    goto err;
  pthread_condattr_destroy(&ca);
  s->free_head = NONE;
  s->sleep_until = INT64_MAX;
  s->seed = mix((uint64_t)(uintptr_t)s ^ (uint64_t)cx_mono_now());
  *out = s;
  return 0;

err:
  if (have_attr)
    pthread_condattr_destroy(&ca);
  if (have_mu)
    pthread_mutex_destroy(&s->mu);
  cx_free(s);
  return rc;
}

void cx_sched_destroy(struct cx_sched *s)
{
  if (s == NULL)
    return;
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  cx_free(s->slots);
  cx_free(s->heap_raw);
  cx_free(s->ents);
  cx_free(s->pos);
  cx_free(s);
}

int cx_sched_reserve(struct cx_sched *s, size_t n)
{
  int rc;
  if (s == NULL)
    return -EINVAL;
  pthread_mutex_lock(&s->mu);
  rc = reserve_locked(s, n, 1);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int cx_sched_put(struct cx_sched *s, int64_t job_id, int64_t at_ms, void *data,
                 void **replaced)
{
  uint32_t slot, idx, pos, seq;
  int rc = 0;

  if (replaced != NULL)
    *replaced = NULL;
  if (s == NULL)
    return -EINVAL;
  at_ms = clamp_at(at_ms);
  pthread_mutex_lock(&s->mu);
  slot = slot_find(s, job_id);
  if (slot != NONE) {
    /* Replace in place: same entry, new key, new place among ties. */
    idx = s->slots[slot] - 1;
    if (replaced != NULL)
      *replaced = s->ents[idx].data;
    s->ents[idx].data = data;
    seq = next_seq(s); /* may renumber, moving nodes: */
    pos = s->pos[idx]; /* read the position after it */
    s->heap[pos].at = at_ms;
    s->heap[pos].seq = seq;
    heap_fix(s, pos);
  } else {
    if (s->n >= CX_SCHED_MAX_ENTRIES) {
      rc = CX_ETOOBIG;
      goto out;
    }
    /* Allocate first, so that a failure leaves everything unchanged. */
    rc = reserve_locked(s, (size_t)s->n + 1, 0);
    if (rc != 0)
      goto out;
    seq = next_seq(s); /* before the new node exists: it may renumber */
    if (s->free_head != NONE) {
      idx = s->free_head;
      s->free_head = s->pos[idx];
    } else {
      idx = s->used++;
    }
    s->ents[idx].id = job_id;
    s->ents[idx].data = data;
    slot_insert(s, idx);
    pos = s->n++;
    s->heap[pos].at = at_ms;
    s->heap[pos].seq = seq;
    s->heap[pos].idx = idx;
    sift_up(s, pos);
  }
  wake_if_earlier(s, at_ms);
out:
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* Finds job_id's entry, reports its instant and data, and removes it if
 * take. Returns 0, -EINVAL or CX_ENOTFOUND. */
static int lookup(struct cx_sched *s, int64_t job_id, int take, int64_t *at_out,
                  void **data_out)
{
  uint32_t slot, idx;
  int rc = 0;

  if (data_out != NULL)
    *data_out = NULL;
  if (s == NULL)
    return -EINVAL;
  pthread_mutex_lock(&s->mu);
  slot = slot_find(s, job_id);
  if (slot == NONE) {
    rc = CX_ENOTFOUND;
    goto out;
  }
  idx = s->slots[slot] - 1;
  if (at_out != NULL)
    *at_out = s->heap[s->pos[idx]].at;
  if (data_out != NULL)
    *data_out = s->ents[idx].data;
  /* A remove does not wake a sleeping run(): its deadline can only be
   * too early now, and it re-checks when it wakes. */
  if (take)
    entry_release(s, s->pos[idx], slot);
out:
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int cx_sched_remove(struct cx_sched *s, int64_t job_id, void **data_out)
{
  return lookup(s, job_id, 1, NULL, data_out);
}

int cx_sched_get(struct cx_sched *s, int64_t job_id, int64_t *at_out,
                 void **data_out)
{
  return lookup(s, job_id, 0, at_out, data_out);
}

int64_t cx_sched_next_at(struct cx_sched *s)
{
  int64_t at;
  if (s == NULL)
    return INT64_MAX;
  pthread_mutex_lock(&s->mu);
  at = s->n > 0 ? s->heap[0].at : INT64_MAX;
  pthread_mutex_unlock(&s->mu);
  return at;
}

size_t cx_sched_count(struct cx_sched *s)
{
  size_t n;
  if (s == NULL)
    return 0;
  pthread_mutex_lock(&s->mu);
  n = s->n;
  pthread_mutex_unlock(&s->mu);
  return n;
}

size_t cx_sched_mem_bytes(struct cx_sched *s)
{
  size_t b = sizeof(*s);
  if (s == NULL)
    return 0;
  pthread_mutex_lock(&s->mu);
  if (s->heap_raw != NULL)
    b += (size_t)s->cap * sizeof(struct node) + CACHE_LINE;
  b += (size_t)s->cap * (sizeof(struct entry) + sizeof(uint32_t));
  if (s->slots != NULL)
    b += ((size_t)s->slot_mask + 1) * sizeof(uint32_t);
  pthread_mutex_unlock(&s->mu);
  return b;
}

/* ---- firing -------------------------------------------------------------- */

/* With the mutex held: fires up to the entries held now that are due at
 * now_ms, stopping early on a stop request if honour_stop. Returns the
 * number fired; the mutex is held again on return. */
static int fire_due(struct cx_sched *s, int64_t now_ms, cx_sched_fire_cb cb,
                    void *ctx, int honour_stop)
{
  uint32_t budget = s->n;
  int fired = 0;

  while (budget > 0 && s->n > 0 && s->heap[0].at <= now_ms) {
    uint32_t idx = s->heap[0].idx;
    int64_t id = s->ents[idx].id, at = s->heap[0].at;
    void *data = s->ents[idx].data;

    if (honour_stop && s->stop)
      break;
    entry_release(s, 0, slot_find(s, id));
    budget--;
    fired++;
    pthread_mutex_unlock(&s->mu);
    cb(ctx, id, at, data);
    pthread_mutex_lock(&s->mu);
  }
  return fired;
}

int cx_sched_run_due(struct cx_sched *s, int64_t now_ms, cx_sched_fire_cb cb,
                     void *ctx)
{
  int fired;
  if (s == NULL || cb == NULL)
    return -EINVAL;
  pthread_mutex_lock(&s->mu);
  fired = fire_due(s, now_ms, cb, ctx, 0);
  pthread_mutex_unlock(&s->mu);
  return fired;
}

static int64_t floor_div(int64_t a, int64_t b)
{
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

int cx_sched_run(struct cx_sched *s, cx_sched_fire_cb cb, void *ctx)
{
  if (s == NULL || cb == NULL)
    return -EINVAL;
  pthread_mutex_lock(&s->mu);
  if (s->running) {
    pthread_mutex_unlock(&s->mu);
    return -EBUSY;
  }
  s->running = 1;
  while (!s->stop) {
    /* One clock reading per round (rule 13): fire what is due at it. */
    int64_t now = cx_wall_ms(), until;
    struct timespec ts;

    if (s->n > 0 && s->heap[0].at <= now) {
      fire_due(s, now, cb, ctx, 1);
      continue;
    }
    until = s->n > 0 ? s->heap[0].at : INT64_MAX;
    if (until > now + CX_SCHED_MAX_WAIT_MS)
      until = now + CX_SCHED_MAX_WAIT_MS;
    ts.tv_sec = (time_t)floor_div(until, 1000);
    ts.tv_nsec = (long)(until - floor_div(until, 1000) * 1000) * 1000000L;
    s->sleep_until = until;
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    s->sleep_until = INT64_MAX;
  }
  s->stop = 0;
  s->running = 0;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

void cx_sched_stop(struct cx_sched *s)
{
  if (s == NULL)
    return;
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* ---- checks -------------------------------------------------------------- */

static int verify_locked(struct cx_sched *s, char *err)
{
  uint32_t i, live = 0, filled = 0;

  for (i = 0; i < s->n; i++) {
    uint32_t idx = s->heap[i].idx;
    if (idx >= s->used || s->pos[idx] != i) {
      cx_err_set(err, "heap[%u] -> entry %u: bad back-link", i, idx);
      return CX_EPROTO;
    }
    if (i > 0 && node_less(&s->heap[i], &s->heap[(i - 1) / ARITY])) {
      cx_err_set(err, "heap[%u] is before its parent", i);
      return CX_EPROTO;
    }
    if (s->heap[i].seq >= s->seq) {
      cx_err_set(err, "heap[%u] seq %u >= counter %u", i, s->heap[i].seq,
                 s->seq);
      return CX_EPROTO;
    }
    if (slot_find(s, s->ents[idx].id) == NONE ||
        s->slots[slot_find(s, s->ents[idx].id)] != idx + 1) {
      cx_err_set(err, "entry %u (id %lld) unreachable in the hash", idx,
                 (long long)s->ents[idx].id);
      return CX_EPROTO;
    }
  }
  for (i = 0; i < s->used; i++)
    live += s->pos[i] < s->n && s->heap[s->pos[i]].idx == i;
  if (s->slots != NULL)
    for (i = 0; i <= s->slot_mask; i++)
      filled += s->slots[i] != 0;
  if (live != s->n || filled != s->n) {
    cx_err_set(err, "%u live entries, %u hash slots, heap of %u", live, filled,
               s->n);
    return CX_EPROTO;
  }
  return 0;
}

int cx_sched_verify(struct cx_sched *s, char *err)
{
  int rc;
  if (s == NULL)
    return -EINVAL;
  pthread_mutex_lock(&s->mu);
  rc = verify_locked(s, err);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void cx_sched_test_set_counter(struct cx_sched *s, uint32_t next)
{
  uint32_t i;
  pthread_mutex_lock(&s->mu);
  /* Keep existing entries ordered below the new counter. */
  for (i = 0; i < s->n; i++)
    if (s->heap[i].seq >= next) {
      renumber(s);
      break;
    }
  /* Now every seq is below next, or renumbered below n. */
  s->seq = next > s->n ? next : s->n;
  pthread_mutex_unlock(&s->mu);
}
