/* util: calendar arithmetic, integer parsing, buffers, errors, alloc hook. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
