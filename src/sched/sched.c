/*
 * sched: the timer core (see sched.h for the contract).
 *
 * A calendar of instants. Entries that share an instant (a cron node has
 * thousands per second at scale, all due at the same whole second) hang
 * together on one list, so firing them costs O(1) each; only the distinct
 * instants are ordered by a heap.
 *
 *   ents[]   a slab of entries {job_id, data, next, prev}; next/prev link
 *            the entry into the circular FIFO list of its instant, and
 *            freed slots form a free list through next, so a fire or a
 *            replace never mallocs. 24 bytes.
 *   eins[]   per entry, the instant it hangs on (NONE when free). Only
 *            remove, replace and get read it (put and fire write it), so
 *            it lives apart and entries stay 24 bytes. (A 32-byte entry
 *            holding it measured within noise of this at 1M.)
 *   heap[]   a 4-ary min-heap of the distinct instants, 16-byte nodes
 *            {at, head entry, instant index}, ordered by at (distinct, so
 *            no tie counter). Placed so that each group of four siblings
 *            fills one 64-byte cache line; firing reads heap[0].head
 *            without touching any other array.
 *   ipos[]   per instant index, its heap position (the back-link that
 *            makes dropping an instant O(log instants)); free indexes
 *            form a free list through it.
 *   tab[ID]  an open-addressing hash (linear probing, backward-shift
 *            deletion, no tombstones) of entry indexes keyed by job id;
 *   tab[AT]  the same of instant indexes keyed by at. A slot is 8 bytes,
 *            the index and the key's 32-bit hash: probes compare hashes
 *            and deletion re-homes by them, so neither reads an entry
 *            (at 1M entries each such read was a cache miss, and they made
 *            most of the cost of a fire).
 *
 * put:    O(1) expected to find the entry and the instant, plus one heap
 *         push when the instant is new: O(log instants).
 * remove: O(1) unlink, plus one heap removal when the instant empties.
 * fire:   the head of heap[0]'s list, O(1), plus one heap pop when its
 *         list empties.
 * Every instant distinct (the worst case) makes each operation one heap
 * operation, O(log n), as a heap of entries would.
 *
 * Memory: 28 bytes per entry and 20 per distinct instant, each with an
 * 8-byte hash slot at load <= 3/4; the instant arrays grow by doubling
 * independently of the entries (cron instants are whole seconds, so a cron
 * workload has far fewer instants than entries).
 *
 * FIFO among ties comes from the lists themselves: a put appends, a
 * replace re-appends. Callbacks run with the mutex released; a fired entry
 * is unlinked before its callback and every step re-reads heap[0], so
 * callbacks may put or remove anything, including entries of the instant
 * being fired (which the loop then simply finds or does not find).
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
#define MIN_ICAP 16
#define MIN_SLOTS 16

/* A distinct instant: its place in the heap is its position in heap[]. */
struct node {
  int64_t at;    /* clamped instant, ms since the epoch */
  uint32_t head; /* first entry of its FIFO list (never empty) */
  uint32_t ins;  /* its instant index (ipos[ins] == position) */
};

struct entry {
  int64_t id;
  void *data;
  uint32_t next, prev; /* circular list of the instant; next: free list */
};

enum { ID, AT }; /* the two hash tables */

/* A hash slot keeps the full 32-bit hash of its key next to the index, so
 * probing and deletion compare and rehome without reading the entries
 * (each such read would be a cache miss at 1M entries). */
struct slot {
  uint32_t v;    /* value index + 1; 0 = empty */
  uint32_t hash; /* hash_of(key); its low bits are the home slot */
};

struct table {
  struct slot *slots;
  uint32_t mask; /* slots - 1; a power of two, at most 2^31 */
};

struct cx_sched {
  pthread_mutex_t mu;
  pthread_cond_t cv;

  struct entry *ents;
  uint32_t *eins; /* per entry: its instant index, NONE if free */
  uint32_t n;     /* live entries */
  uint32_t cap;   /* capacity of ents[] and eins[] */
  uint32_t used;  /* ents[] high-water mark */
  uint32_t free_head;

  struct node *heap; /* see heap_alloc for the alignment trick */
  void *heap_raw;
  uint32_t *ipos; /* per instant: heap position if live, else next free */
  uint32_t ni;    /* live instants == heap size */
  uint32_t icap;  /* capacity of heap[] and ipos[] */
  uint32_t iused; /* ipos[] high-water mark */
  uint32_t ifree;

  struct table tab[2];
  uint64_t seed;

  cx_sched_idle_cb idle; /* deferred work before sleeping (optional) */
  void *idle_ctx;
  int stop;            /* a stop was requested */
  int running;         /* a thread is inside cx_sched_run */
  int64_t sleep_until; /* instant run() sleeps until; INT64_MIN if none
                        * sleeps (run() re-reads the heap under the mutex
                        * before it sleeps, so no put needs to wake it) */
};

/* ---- hash tables --------------------------------------------------------- */

/* A 64-bit finaliser (xor-shift-multiply rounds) so sequential keys spread
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

/* The key of value v (an index) in table t. */
static int64_t key_of(const struct cx_sched *s, int t, uint32_t v)
{
  return t == ID ? s->ents[v].id : s->heap[s->ipos[v]].at;
}

static uint32_t hash_of(const struct cx_sched *s, int t, int64_t key)
{
  uint64_t salt = t == ID ? s->seed : ~s->seed;
  return (uint32_t)mix((uint64_t)key ^ salt);
}

/* Slot holding key in table t, or NONE. Only a slot whose stored hash
 * matches costs a look at the key. */
static uint32_t slot_find(const struct cx_sched *s, int t, int64_t key)
{
  const struct table *tb = &s->tab[t];
  uint32_t h = hash_of(s, t, key), i, v;
  if (tb->slots == NULL)
    return NONE;
  for (i = h & tb->mask; (v = tb->slots[i].v) != 0; i = (i + 1) & tb->mask)
    if (tb->slots[i].hash == h && key_of(s, t, v - 1) == key)
      return i;
  return NONE;
}

/* Slot of index v, known to be in table t under key: no key is read. */
static uint32_t slot_of(const struct cx_sched *s, int t, int64_t key,
                        uint32_t v)
{
  const struct table *tb = &s->tab[t];
  uint32_t i = hash_of(s, t, key) & tb->mask;
  while (tb->slots[i].v != v + 1)
    i = (i + 1) & tb->mask;
  return i;
}

/* Value (index) stored under key in table t, or NONE. */
static uint32_t table_get(const struct cx_sched *s, int t, int64_t key)
{
  uint32_t i = slot_find(s, t, key);
  return i == NONE ? NONE : s->tab[t].slots[i].v - 1;
}

/* Stores slot value sv (index + 1 and hash) in a table with room. */
static void slot_put(struct table *tb, struct slot sv)
{
  uint32_t i = sv.hash & tb->mask;
  while (tb->slots[i].v != 0)
    i = (i + 1) & tb->mask;
  tb->slots[i] = sv;
}

/* Inserts index v, whose key is known to be absent; the table has room. */
static void slot_insert(struct cx_sched *s, int t, uint32_t v)
{
  struct slot sv = {v + 1, hash_of(s, t, key_of(s, t, v))};
  slot_put(&s->tab[t], sv);
}

/* Empties slot i, shifting later members of its probe run back so that
 * every key stays reachable from its home slot without tombstones. */
static void slot_delete(struct cx_sched *s, int t, uint32_t i)
{
  struct table *tb = &s->tab[t];
  uint32_t j = i, home;
  for (;;) {
    j = (j + 1) & tb->mask;
    if (tb->slots[j].v == 0)
      break;
    home = tb->slots[j].hash & tb->mask;
    /* Move j into the hole at i unless its home lies cyclically in (i, j]:
     * then the hole is before its home and it must stay. */
    if (((j - home) & tb->mask) >= ((j - i) & tb->mask)) {
      tb->slots[i] = tb->slots[j];
      i = j;
    }
  }
  tb->slots[i].v = 0;
}

/* Makes table t hold `want` keys at load <= 3/4. The stored hashes make a
 * rehash read nothing but the old table. */
static int table_reserve(struct cx_sched *s, int t, size_t want)
{
  struct table *tb = &s->tab[t];
  size_t nslots = tb->slots ? (size_t)tb->mask + 1 : 0;
  size_t newn = nslots ? nslots : MIN_SLOTS, i;
  struct slot *old = tb->slots;

  if (want * 4 <= nslots * 3)
    return 0;
  while (want * 4 > newn * 3)
    newn *= 2;
  tb->slots = cx_calloc(newn, sizeof(*tb->slots));
  if (tb->slots == NULL) {
    tb->slots = old;
    return -ENOMEM;
  }
  tb->mask = (uint32_t)(newn - 1);
  for (i = 0; i < nslots; i++)
    if (old[i].v != 0)
      slot_put(tb, old[i]);
  cx_free(old);
  return 0;
}

/* ---- heap of instants ---------------------------------------------------- */

static void heap_set(struct cx_sched *s, uint32_t pos, struct node nd)
{
  s->heap[pos] = nd;
  s->ipos[nd.ins] = pos;
}

static void sift_up(struct cx_sched *s, uint32_t pos)
{
  struct node nd = s->heap[pos];
  while (pos > 0) {
    uint32_t parent = (pos - 1) / ARITY;
    if (nd.at >= s->heap[parent].at)
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
    if (first >= s->ni)
      break;
    end = first + ARITY < s->ni ? first + ARITY : s->ni;
    best = first;
    for (c = first + 1; c < end; c++)
      if (s->heap[c].at < s->heap[best].at)
        best = c;
    if (s->heap[best].at >= nd.at)
      break;
    heap_set(s, pos, s->heap[best]);
    pos = (uint32_t)best;
  }
  heap_set(s, pos, nd);
}

/* Restores order around pos after its key changed either way. */
static void heap_fix(struct cx_sched *s, uint32_t pos)
{
  if (pos > 0 && s->heap[pos].at < s->heap[(pos - 1) / ARITY].at)
    sift_up(s, pos);
  else
    sift_down(s, pos);
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

/* ---- instants ------------------------------------------------------------ */

static struct node *node_of(struct cx_sched *s, uint32_t ins)
{
  return &s->heap[s->ipos[ins]];
}

/* A new instant at `at` whose list is the lone entry e; the arrays and the
 * AT table have room (ins_reserve). */
static void ins_new(struct cx_sched *s, int64_t at, uint32_t e)
{
  uint32_t ins, pos = s->ni++;
  if (s->ifree != NONE) {
    ins = s->ifree;
    s->ifree = s->ipos[ins];
  } else {
    ins = s->iused++;
  }
  s->ents[e].next = s->ents[e].prev = e;
  s->eins[e] = ins;
  s->heap[pos].at = at;
  s->heap[pos].head = e;
  s->heap[pos].ins = ins;
  s->ipos[ins] = pos;
  slot_insert(s, AT, ins);
  sift_up(s, pos);
}

/* Drops an instant whose list just became empty. */
static void ins_drop(struct cx_sched *s, uint32_t ins)
{
  uint32_t pos = s->ipos[ins];
  slot_delete(s, AT, slot_of(s, AT, s->heap[pos].at, ins));
  s->ni--;
  if (pos != s->ni) {
    heap_set(s, pos, s->heap[s->ni]);
    heap_fix(s, pos);
  }
  s->ipos[ins] = s->ifree;
  s->ifree = ins;
}

/* Moves an instant whose only entry is being replaced to a new `at` no
 * other instant has: no allocation, one heap fix. */
static void ins_rekey(struct cx_sched *s, uint32_t ins, int64_t at)
{
  struct node *nd = node_of(s, ins);
  slot_delete(s, AT, slot_of(s, AT, nd->at, ins));
  nd->at = at;
  slot_insert(s, AT, ins);
  heap_fix(s, s->ipos[ins]);
}

/* Appends entry e at the tail of instant ins's list. */
static void list_append(struct cx_sched *s, uint32_t ins, uint32_t e)
{
  uint32_t head = node_of(s, ins)->head, tail = s->ents[head].prev;
  s->ents[e].prev = tail;
  s->ents[e].next = head;
  s->ents[tail].next = e;
  s->ents[head].prev = e;
  s->eins[e] = ins;
}

/* Unlinks entry e from its instant's list; drops the instant if e was its
 * last entry. */
static void list_unlink(struct cx_sched *s, uint32_t e)
{
  struct entry *en = &s->ents[e];
  uint32_t ins = s->eins[e];
  struct node *nd;

  if (en->next == e) {
    ins_drop(s, ins);
    return;
  }
  s->ents[en->prev].next = en->next;
  s->ents[en->next].prev = en->prev;
  nd = node_of(s, ins);
  if (nd->head == e)
    nd->head = en->next;
}

/* ---- capacity ------------------------------------------------------------ */

static size_t next_cap(size_t cap, size_t min, size_t want, int exact)
{
  size_t c = exact ? want : cap ? cap : min;
  while (c < want)
    c *= 2;
  return c > CX_SCHED_MAX_ENTRIES ? CX_SCHED_MAX_ENTRIES : c;
}

/* Room for `want` entries: exactly want if exact, else by doubling
 * (amortised O(1) per put). A grown array is kept even if a later step
 * fails: it is only larger than cap says, which is harmless. */
static int ents_reserve(struct cx_sched *s, size_t want, int exact)
{
  struct entry *ne;
  uint32_t *ni;
  size_t newcap;
  int rc;
  if (want > CX_SCHED_MAX_ENTRIES)
    return CX_ETOOBIG;
  rc = table_reserve(s, ID, want);
  if (rc != 0 || want <= s->cap)
    return rc;
  newcap = next_cap(s->cap, MIN_CAP, want, exact);
  ne = cx_realloc(s->ents, newcap * sizeof(*ne));
  if (ne == NULL)
    return -ENOMEM;
  s->ents = ne;
  ni = cx_realloc(s->eins, newcap * sizeof(*ni));
  if (ni == NULL)
    return -ENOMEM;
  s->eins = ni;
  s->cap = (uint32_t)newcap;
  return 0;
}

/* Room for one more instant (doubling). */
static int ins_reserve(struct cx_sched *s)
{
  size_t want = (size_t)s->ni + 1, newcap;
  struct node *nh;
  uint32_t *np;
  void *raw;
  int rc = table_reserve(s, AT, want);

  if (rc != 0 || want <= s->icap)
    return rc;
  newcap = next_cap(s->icap, MIN_ICAP, want, 0);
  nh = heap_alloc((uint32_t)newcap, &raw);
  if (nh == NULL)
    return -ENOMEM;
  np = cx_realloc(s->ipos, newcap * sizeof(*np));
  if (np == NULL) {
    cx_free(raw);
    return -ENOMEM;
  }
  s->ipos = np;
  if (s->ni > 0)
    memcpy(nh, s->heap, (size_t)s->ni * sizeof(*nh));
  cx_free(s->heap_raw);
  s->heap = nh;
  s->heap_raw = raw;
  s->icap = (uint32_t)newcap;
  return 0;
}

/* ---- entries ------------------------------------------------------------- */

static int64_t clamp_at(int64_t at)
{
  return at > CX_SCHED_AT_MAX ? CX_SCHED_AT_MAX : at;
}

/* Removes live entry e (hash slot `slot`), returning it to the free list. */
static void entry_release(struct cx_sched *s, uint32_t e, uint32_t slot)
{
  list_unlink(s, e);
  slot_delete(s, ID, slot);
  s->ents[e].data = NULL;
  s->ents[e].next = s->free_head;
  s->eins[e] = NONE;
  s->free_head = e;
  s->n--;
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
  s->ifree = NONE;
  s->sleep_until = INT64_MIN;
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
  cx_free(s->tab[ID].slots);
  cx_free(s->tab[AT].slots);
  cx_free(s->heap_raw);
  cx_free(s->ipos);
  cx_free(s->ents);
  cx_free(s->eins);
  cx_free(s);
}

int cx_sched_reserve(struct cx_sched *s, size_t n)
{
  int rc;
  if (s == NULL)
    return -EINVAL;
  pthread_mutex_lock(&s->mu);
  rc = ents_reserve(s, n, 1);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* Moves live entry e to instant `at` behind its ties. Allocates only when
 * e shares its instant and no instant `at` exists yet (a new instant may
 * need room); on failure nothing changed. */
static int entry_move(struct cx_sched *s, uint32_t e, int64_t at)
{
  uint32_t from = s->eins[e], to = table_get(s, AT, at);
  int alone = s->ents[e].next == e, rc;

  if (to == from) {
    if (!alone) { /* behind its ties: unlink and re-append */
      list_unlink(s, e);
      list_append(s, to, e);
    }
  } else if (to != NONE) {
    list_unlink(s, e); /* may drop `from`: `to` is found by index */
    list_append(s, to, e);
  } else if (alone) {
    ins_rekey(s, from, at);
  } else {
    rc = ins_reserve(s);
    if (rc != 0)
      return rc;
    list_unlink(s, e);
    ins_new(s, at, e);
  }
  return 0;
}

/* Adds job_id's entry at `at`; job_id is absent. Returns 0, CX_ETOOBIG or
 * -ENOMEM (nothing changed). */
static int entry_add(struct cx_sched *s, int64_t job_id, int64_t at, void *data)
{
  uint32_t e, to;
  int rc;

  if (s->n >= CX_SCHED_MAX_ENTRIES)
    return CX_ETOOBIG;
  /* Allocate first, so that a failure leaves everything unchanged. */
  rc = ents_reserve(s, (size_t)s->n + 1, 0);
  to = table_get(s, AT, at);
  if (rc == 0 && to == NONE)
    rc = ins_reserve(s);
  if (rc != 0)
    return rc;
  if (s->free_head != NONE) {
    e = s->free_head;
    s->free_head = s->ents[e].next;
  } else {
    e = s->used++;
  }
  s->ents[e].id = job_id;
  s->ents[e].data = data;
  s->n++;
  if (to == NONE)
    ins_new(s, at, e);
  else
    list_append(s, to, e);
  slot_insert(s, ID, e);
  return 0;
}

int cx_sched_put(struct cx_sched *s, int64_t job_id, int64_t at_ms, void *data,
                 void **replaced)
{
  uint32_t e;
  int rc;

  if (replaced != NULL)
    *replaced = NULL;
  if (s == NULL)
    return -EINVAL;
  at_ms = clamp_at(at_ms);
  pthread_mutex_lock(&s->mu);
  e = table_get(s, ID, job_id);
  if (e != NONE) {
    rc = entry_move(s, e, at_ms);
    if (rc == 0) {
      if (replaced != NULL)
        *replaced = s->ents[e].data;
      s->ents[e].data = data;
    }
  } else {
    rc = entry_add(s, job_id, at_ms, data);
  }
  if (rc == 0)
    wake_if_earlier(s, at_ms);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* Finds job_id's entry, reports its instant and data, and removes it if
 * take. Returns 0, -EINVAL or CX_ENOTFOUND. */
static int lookup(struct cx_sched *s, int64_t job_id, int take, int64_t *at_out,
                  void **data_out)
{
  uint32_t slot, e;
  int rc = 0;

  if (data_out != NULL)
    *data_out = NULL;
  if (s == NULL)
    return -EINVAL;
  pthread_mutex_lock(&s->mu);
  slot = slot_find(s, ID, job_id);
  if (slot == NONE) {
    rc = CX_ENOTFOUND;
    goto out;
  }
  e = s->tab[ID].slots[slot].v - 1;
  if (at_out != NULL)
    *at_out = node_of(s, s->eins[e])->at;
  if (data_out != NULL)
    *data_out = s->ents[e].data;
  /* A remove does not wake a sleeping run(): its deadline can only be
   * too early now, and it re-checks when it wakes. */
  if (take)
    entry_release(s, e, slot);
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
  at = s->ni > 0 ? s->heap[0].at : INT64_MAX;
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
  b += (size_t)s->cap * (sizeof(struct entry) + sizeof(uint32_t));
  if (s->heap_raw != NULL)
    b += (size_t)s->icap * sizeof(struct node) + CACHE_LINE;
  b += (size_t)s->icap * sizeof(uint32_t);
  for (int t = ID; t <= AT; t++)
    if (s->tab[t].slots != NULL)
      b += ((size_t)s->tab[t].mask + 1) * sizeof(struct slot);
  pthread_mutex_unlock(&s->mu);
  return b;
}

/* ---- firing -------------------------------------------------------------- */

/* With the mutex held: fires up to the entries held now that are due at
 * now_ms, stopping early on a stop request if honour_stop. Returns the
 * number fired; the mutex is held again on return. Each step takes the
 * head of the earliest instant afresh, so whatever a callback changed is
 * seen by the next step. */
static int fire_due(struct cx_sched *s, int64_t now_ms, cx_sched_fire_cb cb,
                    void *ctx, int honour_stop)
{
  uint32_t budget = s->n;
  int fired = 0;

  while (budget > 0 && s->ni > 0 && s->heap[0].at <= now_ms) {
    uint32_t e = s->heap[0].head;
    int64_t id = s->ents[e].id, at = s->heap[0].at;
    void *data = s->ents[e].data;

    if (honour_stop && s->stop)
      break;
    entry_release(s, e, slot_of(s, ID, id, e));
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

    if (s->ni > 0 && s->heap[0].at <= now) {
      fire_due(s, now, cb, ctx, 1);
      continue;
    }
    if (s->idle != NULL) {
      cx_sched_idle_cb idle = s->idle;
      void *ictx = s->idle_ctx;
      pthread_mutex_unlock(&s->mu);
      int more = idle(ictx);
      pthread_mutex_lock(&s->mu);
      if (more || s->stop) /* idle may have stopped the loop */
        continue;
    }
    until = s->ni > 0 ? s->heap[0].at : INT64_MAX;
    if (until > now + CX_SCHED_MAX_WAIT_MS)
      until = now + CX_SCHED_MAX_WAIT_MS;
    ts.tv_sec = (time_t)floor_div(until, 1000);
    ts.tv_nsec = (long)(until - floor_div(until, 1000) * 1000) * 1000000L;
    s->sleep_until = until;
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    s->sleep_until = INT64_MIN;
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

/* Instant at heap position i: back-link, order, hash, and its list. Adds
 * the list's length to *listed. */
static int verify_instant(struct cx_sched *s, uint32_t i, uint32_t *listed,
                          char *err)
{
  const struct node *nd = &s->heap[i];
  uint32_t e = nd->head, len = 0;

  if (nd->ins >= s->iused || s->ipos[nd->ins] != i) {
    cx_err_set(err, "heap[%u] -> instant %u: bad back-link", i, nd->ins);
    return CX_EPROTO;
  }
  if (i > 0 && nd->at <= s->heap[(i - 1) / ARITY].at) {
    cx_err_set(err, "heap[%u] is not after its parent", i);
    return CX_EPROTO;
  }
  if (table_get(s, AT, nd->at) != nd->ins) {
    cx_err_set(err, "instant %lld unreachable in its hash", (long long)nd->at);
    return CX_EPROTO;
  }
  do {
    if (e >= s->used || s->eins[e] != nd->ins ||
        s->ents[s->ents[e].next].prev != e || ++len > s->n) {
      cx_err_set(err, "instant %lld: broken list at entry %u",
                 (long long)nd->at, e);
      return CX_EPROTO;
    }
    if (table_get(s, ID, s->ents[e].id) != e) {
      cx_err_set(err, "entry %u (id %lld) unreachable in the hash", e,
                 (long long)s->ents[e].id);
      return CX_EPROTO;
    }
    e = s->ents[e].next;
  } while (e != nd->head);
  *listed += len;
  return 0;
}

static uint32_t filled(const struct table *tb)
{
  uint32_t i, k = 0;
  if (tb->slots != NULL)
    for (i = 0; i <= tb->mask; i++)
      k += tb->slots[i].v != 0;
  return k;
}

static int verify_locked(struct cx_sched *s, char *err)
{
  uint32_t i, listed = 0, live = 0;
  int rc;

  for (i = 0; i < s->ni; i++) {
    rc = verify_instant(s, i, &listed, err);
    if (rc != 0)
      return rc;
  }
  for (i = 0; i < s->used; i++)
    live += s->eins[i] != NONE;
  if (listed != s->n || live != s->n || filled(&s->tab[ID]) != s->n ||
      filled(&s->tab[AT]) != s->ni) {
    cx_err_set(err,
               "%u entries: %u listed, %u live, %u id slots; %u instants, "
               "%u at slots",
               s->n, listed, live, filled(&s->tab[ID]), s->ni,
               filled(&s->tab[AT]));
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

void cx_sched_set_idle(struct cx_sched *s, cx_sched_idle_cb idle, void *ctx)
{
  pthread_mutex_lock(&s->mu);
  s->idle = idle;
  s->idle_ctx = ctx;
  pthread_mutex_unlock(&s->mu);
}
