/*
 * `cronix token ls [--user NAME|ID]` and `cronix token rm ID...`: the API
 * tokens and sessions of a user (POST /user/token/search, /user/token/del).
 * Token texts are never shown: the server keeps only their hashes.
 */
#include <string.h>

#include "cli/remote-int.h"
#include "util/util.h"

static const char token_usage[] =
    "usage: cronix token ls [--user NAME|ID] [-o json]\n"
    "       cronix token rm ID...\n"
    "\n"
    "ls lists your tokens (an admin: everyone's, or --user's); the one in\n"
    "use is marked. rm revokes tokens by id.\n";

static void token_row(struct rc_table *tb, const json_t *t, void *arg)
{
  (void)arg;
  char id[32], uid_s[24], created[48], expires[48];
  snprintf(id, sizeof id, "%lld%s", (long long)rc_int(t, "id"),
           json_is_true(json_object_get(t, "current")) ? " *" : "");
  snprintf(uid_s, sizeof uid_s, "%lld", (long long)rc_int(t, "user_id"));
  rc_time(rc_int(t, "created"), NULL, created, sizeof created);
  if (rc_int(t, "expires") == 0)
    snprintf(expires, sizeof expires, "never");
  else
    rc_time(rc_int(t, "expires"), NULL, expires, sizeof expires);
  const char *cells[5] = {id, uid_s, rc_str(t, "kind"), created, expires};
  rc_table_row(tb, cells, NULL);
}

static int token_ls(struct rc_ctx *c, int argc, char **argv)
{
  const char *user = NULL;
  const struct rc_opt opts[] = {{"--user", NULL, RC_VALUE, &user},
                                {NULL, NULL, 0, NULL}};
  json_t *q = json_object();
  int64_t uid;
  struct rc_table tb = {
      .ncol = 5,
      .head = {"ID", "USER", "KIND", "CREATED", "EXPIRES"},
  };
  int rc = rc_parse(c, argc, argv, 1, opts, NULL, token_usage);
  if (rc == 0 && user != NULL &&
      (rc = rc_resolve(c, user, "/user/search", "username", &uid)) == 0)
    json_object_set_new(q, "user_id", json_integer(uid));
  if (rc == 0)
    rc = rc_list_print(c, "/user/token/search", q, &tb, token_row, NULL);
  json_decref(q);
  return rc;
}

static int token_rm(struct rc_ctx *c, int argc, char **argv)
{
  struct rc_list pos = {0};
  int rc = rc_parse(c, argc, argv, 1, NULL, &pos, token_usage);
  if (rc != 0)
    return rc;
  if (pos.n == 0)
    return rc_fail(c, 2, "which tokens? give their ids (cronix token ls)");
  for (int i = 0; i < pos.n && rc == 0; i++) {
    int64_t id;
    if (cx_parse_int64(pos.v[i], 1, INT64_MAX, &id) != 0)
      return rc_fail(c, 2, "'%.60s' is not a token id", pos.v[i]);
    rc = rc_post(c, "/user/token/del", json_pack("{s:I}", "id", (json_int_t)id),
                 NULL);
    if (rc == 0)
      printf("revoked token %lld\n", (long long)id);
  }
  return rc;
}

int rc_token(int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : "";
  if (strcmp(sub, "ls") != 0 && strcmp(sub, "rm") != 0) {
    int help = strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0;
    fputs(token_usage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  char cmd[32];
  snprintf(cmd, sizeof cmd, "token %s", sub);
  struct rc_ctx c = {.cmd = cmd};
  int rc = strcmp(sub, "ls") == 0 ? token_ls(&c, argc - 1, argv + 1)
                                  : token_rm(&c, argc - 1, argv + 1);
  rc_close(&c);
  return rc == RC_HELP ? 0 : rc;
}
