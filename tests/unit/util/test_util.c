/* util: calendar arithmetic, integer parsing, buffers, errors, alloc hook. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/test.h"
#include "util/util.h"

TEST(util_civil_roundtrip_every_day_1900_2200)
{
  /* Walk every day and check the conversion against a naive counter. */
  int y = 1900, m = 1, d = 1, wday = 1; /* 1900-01-01 was a Monday */
  int64_t days = cx_days_from_civil(1900, 1, 1);
  while (y < 2200) {
    struct cx_civil c;
    ASSERT_EQ(cx_days_from_civil(y, m, d), days);
    cx_civil_from_seconds(days * 86400 + 3661, &c);
    ASSERT_EQ(c.year, y);
    ASSERT_EQ(c.month, m);
    ASSERT_EQ(c.day, d);
    ASSERT_EQ(c.hour, 1);
    ASSERT_EQ(c.min, 1);
    ASSERT_EQ(c.sec, 1);
    ASSERT_EQ(c.wday, wday);
    ASSERT_EQ(cx_civil_to_seconds(&c), days * 86400 + 3661);
    days++;
    wday = (wday + 1) % 7;
    if (++d > cx_days_in_month(y, m)) {
      d = 1;
      if (++m > 12) {
        m = 1;
        y++;
      }
    }
  }
}

TEST(util_civil_negative_seconds_floor)
{
  struct cx_civil c;
  cx_civil_from_seconds(-1, &c);
  ASSERT_EQ(c.year, 1969);
  ASSERT_EQ(c.month, 12);
  ASSERT_EQ(c.day, 31);
  ASSERT_EQ(c.hour, 23);
  ASSERT_EQ(c.sec, 59);
  ASSERT_EQ(c.wday, 3);
}

TEST(util_leap_years)
{
  ASSERT(cx_is_leap_year(2000));
  ASSERT(!cx_is_leap_year(2100));
  ASSERT(cx_is_leap_year(2024));
  ASSERT(!cx_is_leap_year(2026));
  ASSERT_EQ(cx_days_in_month(2100, 2), 28);
  ASSERT_EQ(cx_days_in_month(2104, 2), 29);
}

TEST(util_parse_int64_bounds_and_junk)
{
  int64_t v = 0;
  ASSERT_EQ(cx_parse_int64("42", 0, 100, &v), 0);
  ASSERT_EQ(v, 42);
  ASSERT_EQ(cx_parse_int64("-9223372036854775808", INT64_MIN, 0, &v), 0);
  ASSERT_EQ(v, INT64_MIN);
  ASSERT_EQ(cx_parse_int64("9223372036854775808", 0, INT64_MAX, &v), CX_EPARSE);
  ASSERT_EQ(cx_parse_int64("99999999999999999999999", 0, INT64_MAX, &v),
            CX_EPARSE);
  ASSERT_EQ(cx_parse_int64("", 0, 1, &v), CX_EPARSE);
  ASSERT_EQ(cx_parse_int64("-", 0, 1, &v), CX_EPARSE);
  ASSERT_EQ(cx_parse_int64("12a", 0, 100, &v), CX_EPARSE);
  ASSERT_EQ(cx_parse_int64(" 1", 0, 100, &v), CX_EPARSE);
  ASSERT_EQ(cx_parse_int64("101", 0, 100, &v), CX_EPARSE);
}

TEST(util_buf_grows_and_steals)
{
  struct cx_buf b = {0};
  for (int i = 0; i < 1000; i++)
    cx_buf_printf(&b, "%04d,", i);
  ASSERT_EQ(b.len, 5000);
  ASSERT_EQ(b.data[b.len], '\0');
  ASSERT(!cx_buf_failed(&b));
  char *s = cx_buf_steal(&b);
  ASSERT_EQ(strlen(s), 5000);
  ASSERT(strncmp(s, "0000,0001,", 10) == 0);
  ASSERT(b.data == NULL);
  cx_free(s);
}

TEST(util_buf_failure_is_sticky)
{
  struct cx_buf b = {0};
  cx_buf_puts(&b, "x");
  cx_alloc_fail_after(1);
  for (int i = 0; i < 100; i++)
    cx_buf_puts(&b, "0123456789");
  cx_alloc_fail_after(0);
  ASSERT(cx_buf_failed(&b));
  ASSERT(cx_buf_steal(&b) == NULL);
}

TEST(util_alloc_fail_after_counts_calls)
{
  cx_alloc_fail_after(3);
  void *a = cx_malloc(8), *b = cx_malloc(8), *c = cx_malloc(8);
  void *d = cx_malloc(8);
  cx_alloc_fail_after(0);
  ASSERT(a != NULL && b != NULL);
  ASSERT(c == NULL && d == NULL);
  cx_free(a);
  cx_free(b);
}

TEST(util_errors_have_text_and_names)
{
  ASSERT_STREQ(cx_err_name(CX_EPARSE), "CX_EPARSE");
  ASSERT_STREQ(cx_strerror(CX_ENEVER), "schedule never fires");
  ASSERT_STREQ(cx_err_name(-ENOENT), "ENOENT");
  ASSERT_STREQ(cx_strerror(-4999), "unknown error");
  char err[CX_ERR_LEN];
  cx_err_set(err, "field %s", "name");
  ASSERT_STREQ(err, "field name");
  cx_err_set(NULL, "ignored");
}

TEST(util_utf8_valid_rejects_the_classics)
{
  ASSERT(cx_utf8_valid("plain", 5));
  const char *ok = "中文 ✓ \xf0\x9f\x98\x80";
  ASSERT(cx_utf8_valid(ok, strlen(ok)));
  ASSERT(cx_utf8_valid("a\0b", 3));              /* NUL is the caller's */
  ASSERT(!cx_utf8_valid("\xc0\x80", 2));         /* overlong NUL */
  ASSERT(!cx_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
  ASSERT(!cx_utf8_valid("\xf0\x8f\xbf\xbf", 4)); /* overlong */
  ASSERT(!cx_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
  ASSERT(!cx_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
  ASSERT(!cx_utf8_valid("\xf5\x80\x80\x80", 4)); /* no such lead */
  ASSERT(!cx_utf8_valid("\xe4\xb8", 2));         /* cut */
  ASSERT(!cx_utf8_valid("\x80", 1));             /* stray continuation */
  ASSERT(cx_utf8_valid("\xed\x9f\xbf", 3));      /* U+D7FF */
  ASSERT(cx_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
  ASSERT_EQ(cx_utf8_chars("中文ab", 8), 4);
}

TEST(util_utf8_next_decodes_code_points)
{
  uint32_t cp = 0;
  ASSERT_EQ(cx_utf8_next("A", 1, &cp), 1);
  ASSERT_EQ(cp, 0x41);
  ASSERT_EQ(cx_utf8_next("\xe2\x80\xa8", 3, &cp), 3);
  ASSERT_EQ(cp, 0x2028);
  ASSERT_EQ(cx_utf8_next("\xf0\x9f\x98\x80", 4, &cp), 4);
  ASSERT_EQ(cp, 0x1F600);
  ASSERT_EQ(cx_utf8_next("\xf0\x9f\x98\x80", 3, NULL), 0); /* cut */
  ASSERT_EQ(cx_utf8_next("x", 0, NULL), 0);
}

TEST(util_utf8_floor_and_ceil_stay_on_boundaries)
{
  const char *s = "a中b"; /* a, e4 b8 ad, b */
  ASSERT_EQ(cx_utf8_floor(s, 5, 0), 0);
  ASSERT_EQ(cx_utf8_floor(s, 5, 2), 1);
  ASSERT_EQ(cx_utf8_floor(s, 5, 3), 1);
  ASSERT_EQ(cx_utf8_floor(s, 5, 4), 4);
  ASSERT_EQ(cx_utf8_floor(s, 5, 9), 5);
  ASSERT_EQ(cx_utf8_ceil(s, 5, 2), 4);
  ASSERT_EQ(cx_utf8_ceil(s, 5, 1), 1);
  ASSERT_EQ(cx_utf8_ceil(s, 3, 2), 3); /* bounded by n */
}

TEST(util_utf8_clean_replaces_and_cuts_between_characters)
{
  struct cx_buf b = {0};
  cx_utf8_clean(&b, "a\xff中\xe4\xb8", 7, CX_UTF8_REPL, SIZE_MAX);
  ASSERT_STREQ(b.data, "a\xef\xbf\xbd中\xef\xbf\xbd\xef\xbf\xbd");
  cx_buf_reset(&b);
  cx_utf8_clean(&b, "ab\xff中", 6, "?", 5); /* 中 would pass 5 bytes */
  ASSERT_STREQ(b.data, "ab?");
  cx_buf_reset(&b);
  cx_buf_puts(&b, "pre:"); /* max counts only the appended part */
  cx_utf8_clean(&b, "abcdef", 6, "?", 3);
  ASSERT_STREQ(b.data, "pre:abc");
  cx_buf_free(&b);
}

TEST(util_random_bytes_and_hex_tokens)
{
  unsigned char a[32] = {0}, z[32] = {0};
  ASSERT_EQ(cx_random_bytes(a, sizeof a), 0);
  ASSERT(memcmp(a, z, sizeof a) != 0); /* 2^-256 to fail */
  char h1[33], h2[33];
  ASSERT_EQ(cx_random_hex(h1, 16), 0);
  ASSERT_EQ(cx_random_hex(h2, 16), 0);
  ASSERT_EQ(strlen(h1), 32);
  ASSERT_EQ(strspn(h1, "0123456789abcdef"), 32);
  ASSERT(strcmp(h1, h2) != 0);
  char big[200];
  ASSERT_EQ(cx_random_hex(big, 65), -EINVAL);
  char hx[5];
  cx_hex("\x01\xfe", 2, hx);
  ASSERT_STREQ(hx, "01fe");
}

static pthread_mutex_t cond_mu = PTHREAD_MUTEX_INITIALIZER;

TEST(util_cond_wait_ms_times_out_on_the_monotonic_clock)
{
  pthread_cond_t cv;
  cx_cond_init_mono(&cv);
  pthread_mutex_lock(&cond_mu);
  cx_mono t0 = cx_mono_now();
  while (cx_mono_now() - t0 < 20000) /* spurious wake-ups are allowed */
    cx_cond_wait_ms(&cv, &cond_mu, 20);
  cx_cond_wait_ms(&cv, &cond_mu, -5); /* past: returns at once */
  cx_cond_wait_until(&cv, &cond_mu, 0);
  pthread_mutex_unlock(&cond_mu);
  ASSERT_OP(cx_mono_now() - t0, >=, 20000);
  pthread_cond_destroy(&cv);
}

/* Logs fmt's message through a pipe and returns the line written. */
static void log_capture(char *out, size_t cap, const char *msg)
{
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  cx_log_set_fd(p[1]);
  cx_log_set_level(CX_LOG_INFO);
  CX_LOG(CX_LOG_WARN, "test", "user '%s' said", msg);
  cx_log_set_fd(2);
  close(p[1]);
  ssize_t n = read(p[0], out, cap - 1);
  close(p[0]);
  ASSERT_OP(n, >, 0);
  out[n] = '\0';
}

TEST(util_log_escapes_control_bytes_in_messages)
{
  char line[4096], big[3000];
  log_capture(line, sizeof line, "evil\x1b[2J\x1b]0;pwned\x07 \x7f tab\there");
  /* one line, no control byte but its final newline */
  size_t n = strlen(line);
  ASSERT_EQ(line[n - 1], '\n');
  for (size_t i = 0; i + 1 < n; i++)
    ASSERT_MSG((unsigned char)line[i] >= 0x20 && line[i] != 0x7f,
               "control byte 0x%02x at %zu in: %s", (unsigned char)line[i], i,
               line);
  ASSERT_CONTAINS(line, "WARN  test: user 'evil\\x1b[2J\\x1b]0;pwned\\x07 "
                        "\\x7f tab\\x09here' said\n");
  /* line breaks still fold to spaces: no forged second line */
  log_capture(line, sizeof line, "a\nFAKE ERROR admin: b\r");
  ASSERT_CONTAINS(line, "user 'a FAKE ERROR admin: b ' said\n");
  /* UTF-8 passes through untouched */
  log_capture(line, sizeof line, "J\xc3\xbcrgen");
  ASSERT_CONTAINS(line, "user 'J\xc3\xbcrgen' said");
  /* a message of nothing but escapes is cut, still one bounded line */
  memset(big, 0x01, sizeof big - 1);
  big[sizeof big - 1] = '\0';
  log_capture(line, sizeof line, big);
  n = strlen(line);
  ASSERT_OP(n, <=, 2048);
  ASSERT_EQ(line[n - 1], '\n');
  ASSERT(strchr(line, 0x01) == NULL);
}

TEST(util_url_redact_masks_passwords_and_webhook_tokens)
{
  /* input, flags, expected output (outlen 256). */
  static const struct {
    const char *in;
    unsigned flags;
    const char *want;
  } cases[] = {
      {"mysql://cronix:hunter2@db:3306/cronix?tls=verify", 0,
       "mysql://cronix:***@db:3306/cronix?tls=verify"},
      /* '@', ':' and '#' inside a password: masked whole. */
      {"mysql://a:p@s:s#x@db/c", 0, "mysql://a:***@db/c"},
      {"smtp://u:pw@mail.example.org:587", 0,
       "smtp://u:***@mail.example.org:587"},
      /* No password, no user info, no scheme: as is. */
      {"mysql://cronix@db/c", 0, "mysql://cronix@db/c"},
      {"http://127.0.0.1:2379", 0, "http://127.0.0.1:2379"},
      {"sqlite:///var/x:y@z.db", 0, "sqlite:///var/x:y@z.db"},
      {"", 0, ""},
      {"u:pw@host", 0, "u:***@host"},
      /* Lists: each item. */
      {"http://a:1@h1:2379,http://h2:2379,http://b:2@h3", CX_URL_REDACT_LIST,
       "http://a:***@h1:2379,http://h2:2379,http://b:***@h3"},
      /* Webhooks: the token in the path, query values, fragments. */
      {"https://open.feishu.cn/open-apis/bot/v2/hook/0f1e-2d3c",
       CX_URL_REDACT_PATH, "https://open.feishu.cn/open-apis/bot/v2/hook/***"},
      {"https://oapi.dingtalk.com/robot/send?access_token=abc&x=&y",
       CX_URL_REDACT_PATH,
       "https://oapi.dingtalk.com/robot/***?access_token=***&x=&***"},
      {"https://u:p@h/a/?k=v#frag", CX_URL_REDACT_PATH,
       "https://u:***@h/a/?k=***#***"},
      {"https://h", CX_URL_REDACT_PATH, "https://h"},
  };
  char out[256];
  for (size_t i = 0; i < CX_ARRAY_LEN(cases); i++) {
    cx_url_redact(cases[i].in, cases[i].flags, out, sizeof out);
    ASSERT_MSG(strcmp(out, cases[i].want) == 0, "%s -> %s, want %s",
               cases[i].in, out, cases[i].want);
  }
  /* A cut never shows what was masked; a NULL URL is empty. */
  for (size_t n = 1; n < 40; n++) {
    cx_url_redact("mysql://u:secretpassword@h/d", 0, out, n);
    ASSERT(strlen(out) < n);
    ASSERT(strstr(out, "secr") == NULL);
  }
  cx_url_redact(NULL, 0, out, sizeof out);
  ASSERT_STREQ(out, "");
}
