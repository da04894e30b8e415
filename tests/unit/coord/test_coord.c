/* coord: the shared suite (cases.inc) on the in-process backend, plus
 * behaviour only it has (automatic history compaction). */
#include <errno.h>
#include <stdio.h>

#include "coord/coord.h"
#include "support/test.h"
#include "util/util.h"

#define CASE(name) TEST_TIMEOUT(coord_##name, 60)

static struct cx_coord *case_open(void)
{
  struct cx_coord *c = NULL;
  char err[CX_ERR_LEN] = "";
  struct cx_coord_cfg cfg = {0};
  int rc = cx_coord_open(&cfg, &c, err);
  if (rc != 0)
    cx_test_fail(__FILE__, __LINE__, "open: %s", err);
  return c;
}

static struct cx_coord *case_open_peer(struct cx_coord *c)
{
  return c; /* one store per in-process handle */
}

static void case_close_peer(struct cx_coord *c, struct cx_coord *peer)
{
  (void)c;
  (void)peer;
}

#include "cases.inc"

TEST(coord_local_is_the_default_backend)
{
  struct cx_coord *c = case_open();
  ASSERT_STREQ(cx_coord_backend(c), "local");
  cx_coord_close(c);
}

TEST(coord_local_history_is_bounded_and_old_watches_resync)
{
  struct cx_coord *c = NULL;
  struct cx_coord_cfg cfg = {0};
  cfg.local_history = 50;
  ASSERT_EQ(cx_coord_open(&cfg, &c, NULL), 0);
  int64_t first = put_s(c, "/b/0", "0");
  char k[32];
  for (int i = 1; i < 200; i++) {
    snprintf(k, sizeof k, "/b/%d", i % 7);
    put_s(c, k, "x");
  }
  struct collector col;
  col_init(&col);
  struct cx_coord_watch *w = watch_prefix(c, "/b/", first, &col);
  ASSERT_EQ(col_wait(&col, &col.resyncs, 1, 20), 1);
  ASSERT_EQ(col.sync.n, 7);
  int64_t next = put_s(c, "/b/new", "y");
  ASSERT_EQ(col_wait(&col, &col.n, 1, 20), 1);
  ASSERT_EQ(col.r[0].rev, next);
  cx_coord_watch_cancel(w);
  col_free(&col);
  cx_coord_close(c);
}

TEST(coord_local_watch_batches_span_many_revisions)
{
  /* More events than one delivery batch, across several watches. */
  struct cx_coord *c = case_open();
  int64_t from = current_rev(c) + 1;
  struct collector a, b;
  col_init(&a);
  col_init(&b);
  struct cx_coord_watch *wa = watch_prefix(c, "/m/", from, &a);
  char k[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(k, sizeof k, "/m/%04d", i);
    put_s(c, k, "v");
  }
  struct cx_coord_watch *wb = watch_prefix(c, "/m/", from, &b);
  ASSERT_EQ(col_wait(&a, &a.n, 1000, 20), 1000);
  ASSERT_EQ(col_wait(&b, &b.n, 1000, 20), 1000);
  for (int i = 0; i < 1000; i++) {
    snprintf(k, sizeof k, "/m/%04d", i);
    ASSERT_STREQ(a.r[i].key, k);
    ASSERT_STREQ(b.r[i].key, k);
    ASSERT_EQ(a.r[i].rev, from + i);
  }
  cx_coord_watch_cancel(wa);
  cx_coord_watch_cancel(wb);
  col_free(&a);
  col_free(&b);
  cx_coord_close(c);
}

/* One pass of everything, tolerating -ENOMEM anywhere. */
static void exercise(struct cx_coord *c)
{
  struct cx_coord_kvs kvs;
  struct cx_coord_watch *w = NULL;
  struct cx_coord_watch_cbs cbs = {count_event, ignore_resync, NULL};
  int64_t id = 0;
  int ok;
  int rc = cx_coord_watch(c, S("/o/"), 1, &cbs, NULL, &w, NULL);
  ASSERT(rc == 0 || rc == -ENOMEM);
  int put_rc = cx_coord_put(c, S("/o/a"), S("1"), 0, NULL, NULL);
  ASSERT(put_rc == 0 || put_rc == -ENOMEM);
  rc = cx_coord_lease_grant(c, 30, 1, NULL, NULL, &id, NULL, NULL);
  ASSERT(rc == 0 || rc == -ENOMEM);
  struct cx_coord_op ops[] = {{CX_COORD_OP_PUT, S("/o/b"), S("2"), 0},
                              {CX_COORD_OP_DELETE, S("/o/a"), NULL, 0, 0}};
  struct cx_coord_txn t = {NULL, 0, ops, 2, NULL, 0};
  rc = cx_coord_txn(c, &t, &ok, NULL, NULL);
  ASSERT(rc == 0 || rc == -ENOMEM);
  if (rc == -ENOMEM) {
    /* All or nothing: stop failing and look. */
    cx_alloc_fail_after(0);
    ASSERT(!exists(c, "/o/b"));
    ASSERT_EQ(exists(c, "/o/a"), put_rc == 0);
  }
  rc = cx_coord_range(c, S("/o/"), &kvs, NULL);
  ASSERT(rc == 0 || rc == -ENOMEM);
  if (rc == 0)
    cx_coord_kvs_free(&kvs);
  rc = cx_coord_get(c, S("/o/b"), &kvs, NULL);
  ASSERT(rc == 0 || rc == -ENOMEM || rc == CX_ENOTFOUND);
  if (rc == 0)
    cx_coord_kvs_free(&kvs);
  if (id)
    cx_coord_lease_revoke(c, id, NULL);
  cx_coord_watch_cancel(w);
}

TEST(coord_local_survives_allocation_failures)
{
  for (long n = 1; n < 120; n++) {
    struct cx_coord *c = NULL;
    struct cx_coord_cfg cfg = {0};
    cx_alloc_fail_after(n);
    int rc = cx_coord_open(&cfg, &c, NULL);
    if (rc == 0) {
      exercise(c);
      cx_coord_close(c);
    } else {
      ASSERT_EQ(rc, -ENOMEM);
    }
    cx_alloc_fail_after(0);
  }
  /* And after all that, a healthy handle works normally. */
  struct cx_coord *c = case_open();
  put_s(c, "/after", "ok");
  char *v = get_s(c, "/after");
  ASSERT_STREQ(v, "ok");
  cx_free(v);
  cx_coord_close(c);
}
