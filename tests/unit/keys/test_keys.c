/* keys: building and parsing the coordination key layout, hostile keys. */
#include <string.h>

#include "keys/keys.h"
#include "support/test.h"
#include "util/util.h"

#define U "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"

static int parse(const char *key, struct cx_key *k)
{
  return cx_key_parse("/cronix", key, strlen(key), k);
}

TEST(keys_build_every_kind)
{
  char b[CX_KEY_LEN];
  ASSERT_EQ(cx_key_build(b, sizeof b, "/cronix", CX_KEY_JOB, U, 42, NULL),
            strlen("/cronix/job/" U "/42"));
  ASSERT_STREQ(b, "/cronix/job/" U "/42");
  cx_key_build(b, sizeof b, "/cronix", CX_KEY_NODE, U, 0, NULL);
  ASSERT_STREQ(b, "/cronix/node/" U);
  cx_key_build(b, sizeof b, "/cronix", CX_KEY_PROC, U, 7, "r12");
  ASSERT_STREQ(b, "/cronix/proc/" U "/7/r12");
  cx_key_build(b, sizeof b, "/cronix", CX_KEY_ONCE, U, 7, NULL);
  ASSERT_STREQ(b, "/cronix/once/" U "/7");
  cx_key_build(b, sizeof b, "/cronix", CX_KEY_KILL, U, 7, NULL);
  ASSERT_STREQ(b, "/cronix/kill/" U "/7");
  cx_key_build(b, sizeof b, "/cronix", CX_KEY_LEADER, NULL, 0, NULL);
  ASSERT_STREQ(b, "/cronix/leader");
  cx_key_build(b, sizeof b, "/cronix", CX_KEY_DRAIN, U, 0, NULL);
  ASSERT_STREQ(b, "/cronix/drain/" U);
  ASSERT_EQ(cx_key_dir(b, sizeof b, "/cronix", CX_KEY_NODE, NULL),
            strlen("/cronix/node/"));
  ASSERT_STREQ(b, "/cronix/node/");
  cx_key_dir(b, sizeof b, "/cronix", CX_KEY_ONCE, U);
  ASSERT_STREQ(b, "/cronix/once/" U "/");
  ASSERT_EQ(cx_key_dir(b, sizeof b, "/cronix", CX_KEY_LEADER, NULL), 0);
}

TEST(keys_build_refuses_bad_parts_and_small_buffers)
{
  char b[CX_KEY_LEN], small[20];
  ASSERT_EQ(cx_key_build(b, sizeof b, "/c", CX_KEY_JOB, "a/b", 1, NULL), 0);
  ASSERT_EQ(cx_key_build(b, sizeof b, "/c", CX_KEY_JOB, "", 1, NULL), 0);
  ASSERT_EQ(cx_key_build(b, sizeof b, "/c", CX_KEY_JOB, NULL, 1, NULL), 0);
  ASSERT_EQ(cx_key_build(b, sizeof b, "/c", CX_KEY_JOB, "..", 1, NULL), 0);
  ASSERT_EQ(cx_key_build(b, sizeof b, "/c", CX_KEY_JOB, U, 0, NULL), 0);
  ASSERT_EQ(cx_key_build(b, sizeof b, "/c", CX_KEY_PROC, U, 1, "a/b"), 0);
  ASSERT_EQ(cx_key_build(b, sizeof b, "/c", CX_KEY_PROC, U, 1, ""), 0);
  ASSERT_EQ(cx_key_build(small, sizeof small, "/c", CX_KEY_NODE, U, 0, NULL),
            0);
  ASSERT_EQ(cx_key_dir(b, sizeof b, "/c", CX_KEY_JOB, "x y"), 0);
}

TEST(keys_uuid_rule)
{
  char u65[66];
  memset(u65, 'a', 65);
  u65[65] = '\0';
  ASSERT(cx_key_uuid_ok(U));
  ASSERT(cx_key_uuid_ok("node-1.a_b"));
  ASSERT(cx_key_uuid_ok(u65 + 1)); /* 64 bytes */
  ASSERT(!cx_key_uuid_ok(u65));
  ASSERT(!cx_key_uuid_ok(""));
  ASSERT(!cx_key_uuid_ok(NULL));
  ASSERT(!cx_key_uuid_ok("."));
  ASSERT(!cx_key_uuid_ok(".."));
  ASSERT(!cx_key_uuid_ok("a/b"));
  ASSERT(!cx_key_uuid_ok("a b"));
  ASSERT(!cx_key_uuid_ok("\xc3\xa9"));
}

TEST(keys_parse_every_kind)
{
  struct cx_key k;
  ASSERT_EQ(parse("/cronix/job/" U "/42", &k), 0);
  ASSERT_EQ(k.kind, CX_KEY_JOB);
  ASSERT_STREQ(k.uuid, U);
  ASSERT_EQ(k.id, 42);
  ASSERT_EQ(parse("/cronix/drain/" U, &k), 0);
  ASSERT_EQ(k.kind, CX_KEY_DRAIN);
  ASSERT_STREQ(k.uuid, U);
  ASSERT(parse("/cronix/drain/" U "/1", &k) != 0);
  ASSERT_EQ(parse("/cronix/node/" U, &k), 0);
  ASSERT_EQ(k.kind, CX_KEY_NODE);
  ASSERT_STREQ(k.uuid, U);
  ASSERT_EQ(k.id, 0);
  ASSERT_EQ(parse("/cronix/proc/" U "/9/12345", &k), 0);
  ASSERT_EQ(k.kind, CX_KEY_PROC);
  ASSERT_EQ(k.id, 9);
  ASSERT_EQ(k.tail_len, 5);
  ASSERT(memcmp(k.tail, "12345", 5) == 0);
  ASSERT_EQ(parse("/cronix/once/" U "/9223372036854775807", &k), 0);
  ASSERT_EQ(k.kind, CX_KEY_ONCE);
  ASSERT_EQ(k.id, INT64_MAX);
  ASSERT_EQ(parse("/cronix/kill/" U "/1", &k), 0);
  ASSERT_EQ(k.kind, CX_KEY_KILL);
  ASSERT_EQ(parse("/cronix/leader", &k), 0);
  ASSERT_EQ(k.kind, CX_KEY_LEADER);
  ASSERT_STREQ(k.uuid, "");
  /* An empty prefix (configured as "/"). */
  ASSERT_EQ(cx_key_parse("", "/node/abc", 9, &k), 0);
  ASSERT_STREQ(k.uuid, "abc");
  /* Not NUL-terminated: only len bytes count. */
  ASSERT_EQ(cx_key_parse("/cronix", "/cronix/job/abc/12XYZ", 18, &k), 0);
  ASSERT_EQ(k.id, 12);
}

TEST(keys_parse_refuses_hostile_keys)
{
  static const char *const bad[] = {
      "",
      "/cronix",
      "/cronix/",
      "/cronixx/job/" U "/1",                  /* another prefix */
      "/other/job/" U "/1",                    /* another prefix */
      "/cronix/jobs/" U "/1",                  /* unknown kind */
      "/cronix/job",                           /* missing parts */
      "/cronix/job/",                          /* missing uuid */
      "/cronix/job/" U,                        /* missing id */
      "/cronix/job/" U "/",                    /* empty id */
      "/cronix/job/" U "/1/",                  /* trailing slash */
      "/cronix/job/" U "/1/2",                 /* one part too many */
      "/cronix/job//1",                        /* empty uuid */
      "/cronix/job/" U "/abc",                 /* non-numeric id */
      "/cronix/job/" U "/-1",                  /* sign */
      "/cronix/job/" U "/+1",                  /* sign */
      "/cronix/job/" U "/ 1",                  /* space */
      "/cronix/job/" U "/0",                   /* not an id */
      "/cronix/job/" U "/042",                 /* not as built */
      "/cronix/job/" U "/9223372036854775808", /* past INT64_MAX */
      "/cronix/job/" U "/99999999999999999999999",
      "/cronix/job/a b/1",        /* uuid rule */
      "/cronix/job/../1",         /* uuid rule */
      "/cronix/node/" U "/",      /* trailing slash */
      "/cronix/node/" U "/x",     /* one part too many */
      "/cronix/node/",            /* missing uuid */
      "/cronix/proc/" U "/1",     /* missing tail */
      "/cronix/proc/" U "/1/",    /* empty tail */
      "/cronix/proc/" U "/1/2/3", /* tail with a slash */
      "/cronix/leader/",          /* trailing slash */
      "/cronix/leader/x",
  };
  struct cx_key k;
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++)
    ASSERT_MSG(parse(bad[i], &k) == CX_EPARSE, "accepted %s", bad[i]);
  /* Too long a uuid. */
  char key[CX_KEY_LEN] = "/cronix/node/";
  memset(key + strlen(key), 'a', 65);
  ASSERT_EQ(parse(key, &k), CX_EPARSE);
  key[strlen(key) - 1] = '\0'; /* 64: fine */
  ASSERT_EQ(parse(key, &k), 0);
  /* A NUL inside. */
  ASSERT_EQ(cx_key_parse("/cronix", "/cronix/node/a\0b", 16, &k), CX_EPARSE);
}

TEST(keys_build_then_parse_round_trips)
{
  static const enum cx_key_kind kinds[] = {
      CX_KEY_JOB,  CX_KEY_NODE,   CX_KEY_PROC,  CX_KEY_ONCE,
      CX_KEY_KILL, CX_KEY_LEADER, CX_KEY_DRAIN, CX_KEY_BCAST};
  for (size_t i = 0; i < CX_ARRAY_LEN(kinds); i++) {
    char b[CX_KEY_LEN];
    struct cx_key k;
    size_t n = cx_key_build(b, sizeof b, "/p/q", kinds[i], U, 77, "123");
    ASSERT(n > 0);
    ASSERT_EQ(cx_key_parse("/p/q", b, n, &k), 0);
    ASSERT_EQ(k.kind, kinds[i]);
  }
}

/* <prefix>/bcast/<id>: no uuid; the id as for job keys; the directory
 * only without a uuid. */
TEST(keys_bcast_layout)
{
  char b[CX_KEY_LEN];
  struct cx_key k;
  size_t n = cx_key_build(b, sizeof b, "/cronix", CX_KEY_BCAST, NULL, 42, NULL);
  ASSERT_STREQ(b, "/cronix/bcast/42");
  ASSERT_EQ(cx_key_parse("/cronix", b, n, &k), 0);
  ASSERT_EQ(k.kind, CX_KEY_BCAST);
  ASSERT_EQ(k.id, 42);
  ASSERT_STREQ(k.uuid, "");
  ASSERT_EQ(cx_key_build(b, sizeof b, "/cronix", CX_KEY_BCAST, NULL, 0, NULL),
            0);
  ASSERT_EQ(cx_key_dir(b, sizeof b, "/cronix", CX_KEY_BCAST, NULL), 14);
  ASSERT_EQ(cx_key_dir(b, sizeof b, "/cronix", CX_KEY_BCAST, U), 0);
  ASSERT_EQ(cx_key_parse("/cronix", "/cronix/bcast/042", 17, &k), CX_EPARSE);
  ASSERT_EQ(cx_key_parse("/cronix", "/cronix/bcast/n1/4", 18, &k), CX_EPARSE);
  ASSERT_EQ(cx_key_parse("/cronix", "/cronix/bcast/", 14, &k), CX_EPARSE);
}
