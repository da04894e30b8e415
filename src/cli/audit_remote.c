/*
 * `cronix audit ls`: the audit log through the API (POST /audit/search,
 * admin only), newest first.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/remote-int.h"
#include "util/util.h"

static const char audit_usage[] =
    "usage: cronix audit ls [--user NAME] [--kind KIND] [--since D]\n"
    "                       [--from T] [--to T] [-n N] [-o wide|json]\n"
    "\n"
    "  --user NAME   rows of this user\n"
    "  --kind KIND   this kind (job.update), or a family ending in '.'\n"
    "                (job.)\n"
    "  --since D     the last D (90s, 5m, 2h, 1d)\n"
    "  --from T, --to T\n"
    "                RFC 3339 times or unix ms: rows in [from, to)\n"
    "  -n N          at most N rows (default 50, at most 500)\n"
    "-o wide adds the before/after JSON; -o json prints the rows.\n";

static void audit_row(struct rc_table *tb, const json_t *r, void *arg)
{
  const struct rc_ctx *c = arg;
  char id[24], at[48];
  char *before = NULL, *after = NULL;
  snprintf(id, sizeof id, "%lld", (long long)rc_int(r, "id"));
  rc_time(rc_int(r, "at") / 1000, NULL, at, sizeof at);
  if (c->output == RC_OUT_WIDE) {
    json_t *b = json_object_get(r, "before"), *a = json_object_get(r, "after");
    before = b && !json_is_null(b)
                 ? json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS)
                 : NULL;
    after = a && !json_is_null(a) ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS)
                                  : NULL;
  }
  const char *cells[7] = {id,
                          at,
                          rc_str(r, "username"),
                          rc_str(r, "addr"),
                          rc_str(r, "kind"),
                          rc_str(r, "target"),
                          NULL};
  /* One table, two shapes: BEFORE and AFTER only in -o wide. */
  const char *wide[8] = {cells[0], cells[1], cells[2], cells[3],
                         cells[4], cells[5], before,   after};
  rc_table_row(tb, c->output == RC_OUT_WIDE ? wide : cells, NULL);
  free(before);
  free(after);
}

static int audit_ls(struct rc_ctx *c, int argc, char **argv)
{
  const char *user = NULL, *kind = NULL, *since = NULL, *from = NULL,
             *to = NULL, *n_s = NULL;
  const struct rc_opt opts[] = {
      {"--user", NULL, RC_VALUE, &user},
      {"--kind", NULL, RC_VALUE, &kind},
      {"--since", NULL, RC_VALUE, &since},
      {"--from", NULL, RC_VALUE, &from},
      {"--to", NULL, RC_VALUE, &to},
      {"--count", "-n", RC_VALUE, &n_s},
      {NULL, NULL, 0, NULL},
  };
  int64_t n = 50, ago, ms;
  int rc = rc_parse(c, argc, argv, 1, opts, NULL, audit_usage);
  if (rc != 0)
    return rc;
  if (n_s != NULL && cx_parse_int64(n_s, 1, 500, &n) != 0)
    return rc_fail(c, 2, "-n must be 1..500");
  if (since != NULL && from != NULL)
    return rc_fail(c, 2, "give --since or --from, not both");
  if (since != NULL && rc_duration(since, 100LL * 366 * 86400, &ago) != 0)
    return rc_fail(c, 2, "--since: a duration like 90s, 5m, 2h or 1d");
  json_t *q = json_pack("{s:i, s:i}", "page", 1, "page_size", (int)n);
  if (user != NULL)
    json_object_set_new(q, "username", json_string(user));
  if (kind != NULL)
    json_object_set_new(q, "kind", json_string(kind));
  if (since != NULL)
    json_object_set_new(q, "from", json_integer(cx_wall_ms() - ago * 1000));
  /* A time is unix ms when it is a number, else the server reads it as
   * RFC 3339 (and names the member when it cannot). */
  const char *const tv[2] = {from, to}, *const tk[2] = {"from", "to"};
  for (int i = 0; i < 2; i++)
    if (tv[i] != NULL)
      json_object_set_new(q, tk[i],
                          cx_parse_int64(tv[i], 0, INT64_MAX, &ms) == 0
                              ? json_integer(ms)
                              : json_string(tv[i]));
  json_t *d = NULL;
  rc = rc_post(c, "/audit/search", q, &d);
  if (rc != 0)
    return rc;
  json_t *list = json_incref(json_object_get(d, "list"));
  json_decref(d);
  if (list == NULL)
    return rc_fail(c, 3, "the reply has no list");
  struct rc_table tb = {
      .ncol = c->output == RC_OUT_WIDE ? 8 : 6,
      .head = {"ID", "AT", "USER", "ADDR", "KIND", "TARGET", "BEFORE", "AFTER"},
      .shrink = {0, 0, 1, 1, 0, 1, 1, 1},
  };
  return rc_print_list(c, list, &tb, audit_row, c);
}

int rc_audit(int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : "";
  if (strcmp(sub, "ls") != 0) {
    int help = strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0;
    fputs(audit_usage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  struct rc_ctx c = {.cmd = "audit ls"};
  int rc = audit_ls(&c, argc - 1, argv + 1);
  rc_close(&c);
  return rc == RC_HELP ? 0 : rc;
}
