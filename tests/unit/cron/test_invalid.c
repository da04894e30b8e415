/*
 * cron: invalid expressions are rejected with CX_EPARSE and a message that
 * names the field and the problem. Rows marked with a source come from
 * public suites (robfig/cron TestErrors, ccronexpr check_expr_invalid,
 * croniter testError, robfig issue #144 for zero steps); the rest probe our
 * own grammar's corners.
 */
#include <stdio.h>
#include <string.h>

#include "cron/cron.h"
#include "support/test.h"
#include "util/util.h"

struct bad_row {
  const char *expr;
  const char *needle; /* substring the message must contain */
};

static const struct bad_row bad_rows[] = {
    {"", "empty expression"},
    {"   \t ", "empty expression"},
    {"CRON_TZ=UTC", "empty expression"},
    {"* * * *", "expected 5, 6 or 7 fields, got 4"}, /* croniter testError */
    {"xyz", "expected 5, 6 or 7 fields, got 1"},     /* robfig TestErrors */
    {"* * * * * * * *", "expected 5, 6 or 7 fields, got 8"},
    {"* * * * * * 2030 x y z", "got 10"},
    {"60 * * * *", "minute: value 60 out of range 0-59"},
    {"0 60 * * * *", "minute: value 60 out of range 0-59"}, /* robfig */
    {"60 0 * * * *", "second: value 60 out of range 0-59"}, /* robfig */
    {"77 * * * * *", "second: value 77"},                   /* ccronexpr */
    {"44-77 * * * * *", "second: value 77"},                /* ccronexpr */
    {"* 77 * * * *", "minute: value 77"},                   /* ccronexpr */
    {"* * 27 * * *", "hour: value 27 out of range 0-23"},   /* ccronexpr */
    {"* * 23-28 * * *", "hour: value 28"},                  /* ccronexpr */
    {"* * * 45 * *", "dom: value 45 out of range 1-31"},    /* ccronexpr */
    {"0 0 0 25 13 ?", "month: value 13 out of range 1-12"}, /* ccronexpr */
    {"0 0 0 25 0 ?", "month: value 0"},                     /* ccronexpr */
    {"0 0 0 32 12 ?", "dom: value 32"},                     /* ccronexpr */
    {"* 1 1 0 * *", "dom: value 0 out of range 1-31"},      /* ccronexpr */
    {"* * * * 11-13 *", "month: value 13"},                 /* ccronexpr */
    {"-5 * * * * *", "second: expected a number, got '-'"}, /* ccronexpr */
    {"3-2 */5 * * * *", "second: range 3-2 is reversed"},   /* ccronexpr */
    {"/5 * * * * *", "second: expected a number, got '/'"}, /* ccronexpr */
    {"*/0 * * * * *", "second: step 0 must be 1..60"},      /* robfig #144 */
    {"*/-0 * * * * *", "second: expected a step number"},   /* ccronexpr */
    {"15/0 * * * *", "minute: step 0 must be 1..60"},       /* robfig #144 */
    {"* */0 * * *", "hour: step 0 must be 1..24"},
    {"*/-1 * * * *", "minute: expected a step number, got '-'"},
    {"*/61 * * * *", "minute: step 61 must be 1..60"},
    {"* */25 * * *", "hour: step 25 must be 1..24"},
    {"* * */32 * *", "dom: step 32 must be 1..31"},
    {"* * * */13 *", "month: step 13 must be 1..12"},
    {"* * * * */8", "dow: step 8 must be 1..7"},
    {"0 0 0 1 1 ? */300", "year: step 300 must be 1..230"},
    {"* * 5-1 * *", "dom: range 5-1 is reversed"}, /* croniter testError */
    {"* * 20-10 * *", "dom: range 20-10 is reversed"},
    {"* * * dec-jan *", "month: range 12-1 is reversed"},
    {"* * * * sat-mon", "dow: range 6-1 is reversed"},
    {"0 0 0 1 1 ? 2030-2020", "year: range 2030-2020 is reversed"},
    {"* * * * 8", "dow: value 8 out of range 0-7"},
    {"0 0 0 1 1 ? 1969", "year: value 1969 out of range 1970-2199"},
    {"0 0 0 1 1 ? 2200", "year: value 2200"},
    {"0 0 * * XYZ", "dow: unknown name 'XYZ'"}, /* robfig TestErrors */
    {"* * * * fry", "dow: unknown name 'fry'"},
    {"0 0 * * sunday", "dow: unknown name 'sunday'"},
    {"* * * janu-jun *", "month: unknown name 'janu'"}, /* croniter */
    {"* * * foo *", "month: unknown name 'foo'"},
    {"a * * * *", "minute: unexpected 'a'"}, /* croniter testError */
    {"-90 * * * *", "minute: expected a number, got '-'"}, /* croniter */
    {"1-1_0 * * * *", "minute: unexpected '_'"},           /* croniter */
    {"0-10/ * * * *", "minute: expected a step number"},   /* croniter */
    {"0-1& * * * *", "minute: unexpected '&'"},            /* croniter */
    {"? * * * *", "minute: '?' is only allowed in dom and dow"},
    {"* ? * * *", "hour: '?' is only allowed in dom and dow"},
    {"* * * ? *", "month: '?' is only allowed in dom and dow"},
    {"? * * * * *", "second: '?' is only allowed"},
    {"* * ?,1 * *", "dom: '?' must be the whole field"},
    {"* * * * 1,?", "dow: '?' must be the whole field"},
    {"5--5 * * * *", "minute: expected a number, got '-'"},
    {"*//2 * * * *", "minute: expected a step number, got '/'"},
    {"* * * * #6", "dow: expected a day before '#'"},
    {"* * * * 5#6", "dow: occurrence 6 in '5#6' must be 1..5"},
    {"* * * * 5#0", "dow: occurrence 0"},
    {"* * * * 5#", "dow: expected an occurrence after '#'"},
    {"* * * * mon#2#3", "dow: unexpected '#'"},
    {"* * * * 9#2", "dow: value 9 out of range 0-7"},
    {"* * * * L", "dow: 'L' needs a day before it"},
    {"* * * * 1-5L", "dow: unexpected '-'"},
    {"L * * * *", "minute: unexpected 'L'"},
    {"* L * * *", "hour: unexpected 'L'"},
    {"* * * L *", "month: unknown name 'L'"},
    {"* * L-31 * *", "dom: offset 31 in 'L-31' must be 0..30"},
    {"* * L-x * *", "dom: expected a day offset after 'L-'"},
    {"* * L/2 * *", "dom: expected L, LW or L-N, got 'L/2'"},
    {"* * LX * *", "dom: expected L, LW or L-N"},
    {"* * 32W * *", "dom: value 32 out of range 1-31"},
    {"* * 1-5W * *", "dom: 'W' takes a single day"},
    {"* * W * *", "dom: unexpected 'W'"},
    {"* * 5#2 * *", "dom: unexpected '#'"},
    {"1,,2 * * * *", "minute: empty list item"},
    {",1 * * * *", "minute: empty list item"},
    {"1, * * * *", "minute: empty list item"},
    {"12345 * * * *", "minute: number '12345' is too long"},
    {"99999999999999999999 * * * *", "minute: number"},
    {"* * * * * */99999", "dow: number '99999' is too long"},
    {"1-2-3 * * * *", "minute: unexpected '-'"},
    {"1/2/3 * * * *", "minute: unexpected '/'"},
    {"*5 * * * *", "minute: unexpected '5'"},
    {"5* * * * *", "minute: unexpected '*'"},
    {"*-5 * * * *", "minute: unexpected '-'"},
    {"@reboot", "@reboot is not supported"},
    {"@REBOOT", "@reboot is not supported"},
    {"@foo", "unknown descriptor '@foo'"},
    {"@", "unknown descriptor '@'"},
    {"@daily 5", "@daily takes no arguments"},
    {"@every", "@every: missing duration"},
    {"@every 0", "@every: duration must be at least 1s"},
    {"@every 0s", "@every: duration must be at least 1s"},
    {"@every 999ms", "@every: duration must be at least 1s"},
    {"@every 999999999ns", "@every: duration must be at least 1s"},
    {"@every -1h", "@every: duration must be at least 1s"},
    {"@every 1x", "@every: unknown unit at '1x'"},
    {"@every 10", "@every: missing unit"},
    {"@every 1h 2m", "@every: invalid duration"},
    {"@every h", "@every: invalid duration"},
    {"@every .s", "@every: invalid duration"},
    {"@every 1hh", "@every: invalid duration"},
    {"@every 3000000h", "@every: duration '3000000h' is too large"},
    {"@every 99999999999999999999s", "@every: duration"},
    {"@every 2562047h47m17s", "too large"},
    {"CRON_TZ= 0 0 * * *", "timezone: missing zone name"},
    {"TZ=", "timezone: missing zone name"},
};

TEST(cron_invalid_rejected_with_field_in_message)
{
  int failed = 0;
  for (size_t i = 0; i < CX_ARRAY_LEN(bad_rows); i++) {
    const struct bad_row *r = &bad_rows[i];
    struct cx_cron_opts o = {"UTC", 0};
    struct cx_cron *c = (struct cx_cron *)&o; /* must be reset to NULL */
    char err[CX_ERR_LEN] = "";
    int rc = cx_cron_parse(r->expr, &o, &c, err);
    if (rc != CX_EPARSE || c != NULL || strstr(err, r->needle) == NULL) {
      printf("  '%s': rc=%d out=%p err='%s', wanted '%s'\n", r->expr, rc,
             (void *)c, err, r->needle);
      failed++;
      if (rc == 0)
        cx_cron_free(c);
    }
  }
  ASSERT_MSG(failed == 0, "%d of %zu invalid rows misbehaved", failed,
             CX_ARRAY_LEN(bad_rows));
}

TEST(cron_invalid_one_mib_expression)
{
  size_t n = 1 << 20;
  char *big = cx_malloc(n + 1);
  ASSERT(big != NULL);
  for (size_t i = 0; i < n; i++)
    big[i] = i % 2 ? ' ' : '*';
  big[n] = '\0';
  struct cx_cron *c = NULL;
  char err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx_cron_parse(big, NULL, &c, err), CX_EPARSE);
  ASSERT(c == NULL);
  ASSERT_CONTAINS(err, "expression longer than 1024 bytes");
  cx_free(big);
}

TEST(cron_invalid_longest_expression_accepted)
{
  /* Exactly CX_CRON_MAX_EXPR bytes parses; one more does not. */
  char buf[CX_CRON_MAX_EXPR + 2];
  memset(buf, ' ', sizeof buf);
  memcpy(buf, "* * * * *", 9);
  buf[CX_CRON_MAX_EXPR] = '\0';
  struct cx_cron *c = NULL;
  char err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx_cron_parse(buf, NULL, &c, err), 0);
  cx_cron_free(c);
  buf[CX_CRON_MAX_EXPR] = ' ';
  buf[CX_CRON_MAX_EXPR + 1] = '\0';
  ASSERT_EQ(cx_cron_parse(buf, NULL, &c, err), CX_EPARSE);
}

TEST(cron_invalid_too_many_list_items)
{
  /* 129 items of "1," fit in 1024 bytes; the list cap stops them. */
  char buf[CX_CRON_MAX_EXPR];
  size_t n = 0;
  for (int i = 0; i < 129; i++)
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s1", i ? "," : "");
  snprintf(buf + n, sizeof buf - n, " * * * *");
  struct cx_cron *c = NULL;
  char err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx_cron_parse(buf, NULL, &c, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "minute: more than 128 list items");
}

TEST(cron_invalid_zone_name_too_long)
{
  char buf[400];
  memset(buf, 'A', sizeof buf);
  memcpy(buf, "TZ=", 3);
  snprintf(buf + 300, sizeof buf - 300, " * * * * *");
  struct cx_cron *c = NULL;
  char err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx_cron_parse(buf, NULL, &c, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "timezone: zone name longer than");
}

TEST(cron_invalid_unknown_zone)
{
  struct cx_cron *c = NULL;
  char err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx_cron_parse("CRON_TZ=Nowhere/Atlantis 0 0 * * *", NULL, &c, err),
            CX_EPARSE);
  ASSERT(c == NULL);
  ASSERT_CONTAINS(err, "Nowhere/Atlantis");
  struct cx_cron_opts o = {"Mars/Olympus_Mons", 0};
  ASSERT_EQ(cx_cron_parse("0 0 * * *", &o, &c, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "Mars/Olympus_Mons");
}

TEST(cron_invalid_zone_path_traversal)
{
  struct cx_cron *c = NULL;
  char err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx_cron_parse("TZ=../../etc/passwd 0 0 * * *", NULL, &c, err),
            CX_EPARSE);
  ASSERT(c == NULL);
  ASSERT(err[0] != '\0');
}

TEST(cron_invalid_null_expression)
{
  struct cx_cron *c = NULL;
  char err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx_cron_parse(NULL, NULL, &c, err), CX_EPARSE);
  ASSERT_EQ(cx_cron_parse("* * * *", NULL, &c, NULL), CX_EPARSE);
}
