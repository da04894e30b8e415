/*
 * The Cronix test harness.
 *
 * A suite is one binary; each TEST() in it runs in its own forked process,
 * in its own process group, with a fresh temporary directory and a timeout.
 * When the test ends (passed, failed, crashed or timed out) the runner kills
 * the whole process group, so servers a test started never outlive it, and
 * removes the directory. Output of a test is shown only when it fails.
 *
 *   TEST(cron_parse_rejects_zero_step) { ASSERT_EQ(...); }
 *   TEST_TIMEOUT(store_survives_restart, 120) { ... }
 *
 * Run a suite with no arguments for every test, or with substrings to run
 * the matching ones ("=name" matches exactly one); `--list` prints the names.
 * The last line is "N passed, N failed" (and ", N skipped" when some were).
 */
#ifndef CX_TEST_H
#define CX_TEST_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

void cx_test_register(const char *name, void (*fn)(void), int timeout_s);
_Noreturn void cx_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends the current test as skipped, with a reason. Use only for a real
 * missing capability (make test installs everything, so CI skips nothing). */
_Noreturn void cx_test_skip(const char *why);
/* The test's own temporary directory (removed after the test). */
const char *cx_test_tmpdir(void);

/* Processes a test started with a marker as the last word of their
 * command line (`sh -c 'sleep 300; : MARKER'`): how many are alive
 * (zombies have no command line), and a cleanup that SIGKILLs them and
 * their children, so a failing case leaves nothing running. */
int cx_test_marked_procs(const char *marker);
void cx_test_marked_kill(const char *marker);
/* Path of the directory holding the suite binaries (for helper programs:
 * e.g. "build/san/tests"); the cronix binary is one level up. */
const char *cx_test_bindir(void);

/* A seven-field cron spec "0 0 0 D M * YYYY" firing once: at 00:00 UTC of
 * the day holding wall time now + days * 86400, so between days - 1 and
 * days days from now (days >= 1). For tests that need fires strictly
 * ordered, or no fire by itself, on whatever date they run. Returns buf. */
const char *cx_test_spec_days_ahead(int days, char *buf, size_t cap);

#define TEST_TIMEOUT(name, secs)                                               \
  static void name(void);                                                      \
  __attribute__((constructor)) static void name##__register(void)              \
  {                                                                            \
    cx_test_register(#name, name, (secs));                                     \
  }                                                                            \
  static void name(void)

#define TEST(name) TEST_TIMEOUT(name, 30)

#define ASSERT(cond)                                                           \
  do {                                                                         \
    if (!(cond))                                                               \
      cx_test_fail(__FILE__, __LINE__, "assertion failed: %s", #cond);         \
  } while (0)

#define ASSERT_MSG(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond))                                                               \
      cx_test_fail(__FILE__, __LINE__, __VA_ARGS__);                           \
  } while (0)

#define ASSERT_EQ(a, b)                                                        \
  do {                                                                         \
    int64_t cx__a = (int64_t)(a), cx__b = (int64_t)(b);                        \
    if (cx__a != cx__b)                                                        \
      cx_test_fail(__FILE__, __LINE__, "%s == %s: %" PRId64 " != %" PRId64,    \
                   #a, #b, cx__a, cx__b);                                      \
  } while (0)

#define ASSERT_OP(a, op, b)                                                    \
  do {                                                                         \
    int64_t cx__a = (int64_t)(a), cx__b = (int64_t)(b);                        \
    if (!(cx__a op cx__b))                                                     \
      cx_test_fail(__FILE__, __LINE__, "%s %s %s: %" PRId64 " vs %" PRId64,    \
                   #a, #op, #b, cx__a, cx__b);                                 \
  } while (0)

#define ASSERT_STREQ(a, b)                                                     \
  do {                                                                         \
    const char *cx__a = (a), *cx__b = (b);                                     \
    if (cx__a == NULL || cx__b == NULL || strcmp(cx__a, cx__b) != 0)           \
      cx_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,   \
                   cx__a ? cx__a : "(null)", cx__b ? cx__b : "(null)");        \
  } while (0)

#define ASSERT_CONTAINS(hay, needle)                                           \
  do {                                                                         \
    const char *cx__h = (hay), *cx__n = (needle);                              \
    if (cx__h == NULL || strstr(cx__h, cx__n) == NULL)                         \
      cx_test_fail(__FILE__, __LINE__, "%s contains \"%s\": got \"%s\"", #hay, \
                   cx__n, cx__h ? cx__h : "(null)");                           \
  } while (0)

#endif
