/* live: head-and-tail bytes from any offset, missed counts, end, watchers. */
#include <string.h>

#include "live/live.h"
#include "support/test.h"

/* Writes total bytes in chunks, then reads everything from offset 0 in
 * reads of rmax: the bytes seen plus the bytes missed cover [0, total)
 * exactly, each byte seen is the one written at its offset, and the head
 * and the last ring bytes are all seen. */
TEST(live_read_covers_every_offset_once)
{
  static const size_t limits[] = {2, 10, 257};
  static const size_t chunks[] = {1, 7, 300};
  for (size_t li = 0; li < CX_ARRAY_LEN(limits); li++) {
    size_t limit = limits[li], head = limit / 2, ring = limit - head;
    for (size_t total = 0; total < 3 * limit + 20; total += 5) {
      for (size_t ci = 0; ci < CX_ARRAY_LEN(chunks); ci++) {
        struct cx_live_table *t;
        ASSERT_EQ(cx_live_table_create(&t), 0);
        struct cx_live *l = cx_live_open(t, 7, limit);
        ASSERT(l != NULL);
        char data[2048];
        for (size_t i = 0; i < total; i++)
          data[i] = (char)('a' + (i * 7 + i / 26) % 26);
        for (size_t off = 0; off < total;) {
          size_t n = chunks[ci] < total - off ? chunks[ci] : total - off;
          cx_live_add(l, data + off, n);
          off += n;
        }
        uint64_t off = 0, missed = 0, seen = 0;
        char buf[64];
        struct cx_live_state st;
        for (;;) {
          uint64_t before = off;
          size_t got = cx_live_read(l, &off, buf, 3, &st);
          missed += st.missed;
          ASSERT_EQ(off, before + st.missed + got);
          ASSERT(memcmp(buf, data + before + st.missed, got) == 0);
          seen += got;
          if (got == 0)
            break;
        }
        ASSERT_EQ(off, total);
        ASSERT_EQ(st.total, total);
        ASSERT_EQ(seen + missed, total);
        size_t keep = total <= limit ? total : head + ring;
        ASSERT_EQ(seen, keep);
        ASSERT_EQ(st.ended, 0);
        cx_live_unref(l);
        cx_live_table_destroy(t);
      }
    }
  }
}

static int g_woken;
static void on_wake(void *arg)
{
  ++*(int *)arg;
}

TEST(live_end_wakes_and_lingers)
{
  struct cx_live_table *t;
  ASSERT_EQ(cx_live_table_create(&t), 0);
  struct cx_live *l = cx_live_open(t, 42, 100);
  ASSERT(l != NULL);
  ASSERT_EQ(cx_live_watch(l, on_wake, &g_woken), 0);
  int64_t ids[4];
  ASSERT_EQ(cx_live_running(t, ids, 4), 1);
  ASSERT_EQ(ids[0], 42);
  ASSERT_EQ(cx_live_wait(l, 0, 10), 0);
  cx_live_add(l, "hi\n", 3);
  ASSERT_EQ(g_woken, 1);
  ASSERT_EQ(cx_live_wait(l, 0, 10), 1);
  ASSERT_EQ(cx_live_wait(l, 3, 10), 0);
  /* Past the end: nothing, offset kept. */
  uint64_t off = 10;
  char buf[8];
  struct cx_live_state st;
  ASSERT_EQ(cx_live_read(l, &off, buf, sizeof buf, &st), 0);
  ASSERT_EQ(off, 10);
  cx_live_end(l, "failed", 3);
  ASSERT_EQ(g_woken, 2);
  ASSERT_EQ(cx_live_wait(l, 3, 10), 1);
  cx_live_unwatch(l, on_wake, &g_woken);
  cx_live_add(l, "x", 1);
  ASSERT_EQ(g_woken, 2);
  off = 0;
  ASSERT_EQ(cx_live_read(l, &off, buf, sizeof buf, &st), 4);
  ASSERT(st.ended);
  ASSERT_STREQ(st.status, "failed");
  ASSERT_EQ(st.exit_code, 3);
  /* Ended: no longer running, still found while it lingers. */
  ASSERT_EQ(cx_live_running(t, ids, 4), 0);
  struct cx_live *f = cx_live_find(t, 42);
  ASSERT(f == l);
  cx_live_unref(f);
  ASSERT(cx_live_find(t, 43) == NULL);
  cx_live_unref(l);
  cx_live_table_destroy(t);
}

/* A copy fed with add_at: bytes past a gap are read after a "missed" of
 * exactly the gap, nothing from before the gap is invented, and bytes
 * already there are not written twice. */
TEST(live_add_at_counts_gaps_as_missed)
{
  struct cx_live_table *t;
  ASSERT_EQ(cx_live_table_create(&t), 0);
  struct cx_live *l = cx_live_open(t, 1, 20); /* head 10, ring 10 */
  ASSERT(l != NULL);
  cx_live_add_at(l, 0, "0123456789abc", 13);
  cx_live_add_at(l, 10, "abcdef", 6); /* overlaps: only "def" is new */
  cx_live_add_at(l, 40, "XYZ", 3);    /* bytes 16..40 were lost */
  char buf[64];
  struct cx_live_state st;
  uint64_t off = 0;
  size_t got = cx_live_read(l, &off, buf, sizeof buf, &st);
  ASSERT_EQ(got, 10);
  ASSERT(memcmp(buf, "0123456789", 10) == 0);
  got = cx_live_read(l, &off, buf, sizeof buf, &st);
  ASSERT_EQ(st.missed, 30);
  ASSERT_EQ(got, 3);
  ASSERT(memcmp(buf, "XYZ", 3) == 0);
  ASSERT_EQ(off, 43);
  ASSERT_EQ(st.total, 43);
  cx_live_unref(l);
  cx_live_table_destroy(t);
}
