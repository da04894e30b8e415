/* Node labels and job node selectors (util/labels.c). */
#include <stdio.h>
#include <string.h>

#include "support/test.h"
#include "util/util.h"

TEST(labels_parse_and_get)
{
  struct cx_labels l;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_labels_parse(" zone = a ,role=db.primary ", &l, err), 0);
  ASSERT_EQ(l.n, 2);
  ASSERT(strcmp(cx_labels_get(&l, "zone"), "a") == 0);
  ASSERT(strcmp(cx_labels_get(&l, "role"), "db.primary") == 0);
  ASSERT(cx_labels_get(&l, "rack") == NULL);
  ASSERT_EQ(cx_labels_parse("", &l, err), 0);
  ASSERT_EQ(l.n, 0);
  ASSERT_EQ(cx_labels_parse("a=1,", &l, err), 0); /* trailing comma */
  ASSERT_EQ(l.n, 1);
}

TEST(labels_refuse_bad_text)
{
  struct cx_labels l;
  char err[CX_ERR_LEN], big[80], many[400] = "";
  const char *bad[] = {
      "zone",  "zone=", "=a",  "zone=a b", "z=a;b", "zone=a,zone=b",
      "k=v=w", "k:v",   "ä=1", ",",        NULL};
  for (int i = 0; bad[i]; i++)
    ASSERT_MSG(cx_labels_parse(bad[i], &l, err) == CX_EPARSE, "%s", bad[i]);
  memset(big, 'x', 64);
  memcpy(big + 64, "=1", 3);
  ASSERT_EQ(cx_labels_parse(big, &l, err), CX_EPARSE); /* key of 64 bytes */
  memcpy(big, "k=", 2); /* value of 62 x + "=1": '=' is not a value char */
  ASSERT_EQ(cx_labels_parse(big, &l, err), CX_EPARSE);
  big[65] = '\0'; /* "k=" + 63 x: the longest value */
  memset(big + 2, 'x', 63);
  ASSERT_EQ(cx_labels_parse(big, &l, err), 0);
  for (int i = 0; i < 17; i++) {
    char one[16];
    snprintf(one, sizeof one, "k%d=v,", i);
    strcat(many, one);
  }
  ASSERT_EQ(cx_labels_parse(many, &l, err), CX_EPARSE); /* 17 labels */
  ASSERT(strstr(err, "16") != NULL);
}

TEST(selector_check_grammar)
{
  char err[CX_ERR_LEN];
  const char *good[] = {"",
                        "zone=a",
                        "zone=a,role=db",
                        " zone = a , role != db ",
                        "zone in (a, b),role!=db",
                        "zone in(a)",
                        NULL};
  const char *bad[] = {
      "zone",         "zone==a",    "zone=",        "zone in a",
      "zone in (a",   "zone in ()", "zone in (a,)", "zone=a role=b",
      "zone inx (a)", "=a",         "zone=a,,b=c",  NULL};
  for (int i = 0; good[i]; i++)
    ASSERT_MSG(cx_selector_check(good[i], err) == 0, "%s: %s", good[i], err);
  for (int i = 0; bad[i]; i++)
    ASSERT_MSG(cx_selector_check(bad[i], err) == CX_EPARSE, "%s", bad[i]);
}

TEST(selector_match_semantics)
{
  struct cx_labels l, none;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_labels_parse("zone=a,role=db", &l, err), 0);
  ASSERT_EQ(cx_labels_parse("", &none, err), 0);
  ASSERT(cx_selector_match("", &l));
  ASSERT(cx_selector_match(NULL, &none));
  ASSERT(cx_selector_match("zone=a", &l));
  ASSERT(cx_selector_match("zone=a,role=db", &l));
  ASSERT(!cx_selector_match("zone=a,role=web", &l)); /* all must match */
  ASSERT(!cx_selector_match("zone=a", &none));
  ASSERT(cx_selector_match("role!=web", &l));
  ASSERT(!cx_selector_match("role!=db", &l));
  ASSERT(cx_selector_match("role!=db", &none)); /* no key: not db */
  ASSERT(cx_selector_match("zone in (b,a)", &l));
  ASSERT(!cx_selector_match("zone in (b,c)", &l));
  ASSERT(!cx_selector_match("zone in (a)", &none));
  ASSERT(!cx_selector_match("zone=", &l)); /* invalid: matches nothing */
}
