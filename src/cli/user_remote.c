/*
 * `cronix user ls|add|rm|passwd` through the API. `cronix user add` with
 * store flags (--store, --config, --data-dir, --set) and no server keeps
 * writing the store directly (src/cli/user_cmd.c), for bootstrap.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/remote-int.h"
#include "util/util.h"

static const char user_usage[] =
    "usage: cronix user ls [-o json]\n"
    "       cronix user add NAME --role admin|operator|viewer [--email E]\n"
    "                      [--feishu-id F] [--password-stdin]\n"
    "       cronix user rm NAME|ID...\n"
    "       cronix user passwd [NAME|ID] [--password-stdin]\n"
    "\n"
    "add without --password-stdin makes a random password and prints it\n"
    "once. passwd without NAME changes your own password (the old one is\n"
    "asked first; with --password-stdin: old and new, one line each); with\n"
    "NAME an admin sets another user's (--password-stdin: one line).\n"
    "`cronix user add NAME --store URL ...` writes the store directly.\n";

static void user_row(struct rc_table *tb, const json_t *u, void *arg)
{
  (void)arg;
  char id[24];
  snprintf(id, sizeof id, "%lld", (long long)rc_int(u, "id"));
  const char *cells[5] = {id, rc_str(u, "username"), rc_str(u, "role"),
                          rc_str(u, "email"), rc_str(u, "feishu_id")};
  rc_table_row(tb, cells, NULL);
}

static int user_ls(struct rc_ctx *c, int argc, char **argv)
{
  struct rc_table tb = {
      .ncol = 5,
      .head = {"ID", "USERNAME", "ROLE", "EMAIL", "FEISHU"},
      .shrink = {0, 1, 0, 1, 1},
  };
  int rc = rc_parse(c, argc, argv, 1, NULL, NULL, user_usage);
  return rc != 0 ? rc
                 : rc_list_print(c, "/user/search", NULL, &tb, user_row, NULL);
}

/* A user id from ID or an exact username. */
static int user_id(struct rc_ctx *c, const char *arg, int64_t *id)
{
  return rc_resolve(c, arg, "/user/search", "username", id);
}

static int user_add(struct rc_ctx *c, int argc, char **argv)
{
  struct rc_list pos = {0};
  const char *role = NULL, *email = NULL, *feishu = NULL;
  int pw_stdin = 0;
  char pw[1100];
  const struct rc_opt opts[] = {
      {"--role", NULL, RC_VALUE, &role},
      {"--email", NULL, RC_VALUE, &email},
      {"--feishu-id", NULL, RC_VALUE, &feishu},
      {"--password-stdin", NULL, RC_FLAG, &pw_stdin},
      {NULL, NULL, 0, NULL},
  };
  int rc = rc_parse(c, argc, argv, 1, opts, &pos, user_usage);
  if (rc != 0)
    return rc;
  if (pos.n != 1 || role == NULL)
    return rc_fail(c, 2, "NAME and --role are required");
  if (pw_stdin) {
    if (rc_read_line("Password: ", 1, pw, sizeof pw) != 0)
      return rc_fail(c, 2, "password: one line of at most 1024 bytes");
  } else if (cx_random_hex(pw, 16) != 0) {
    return rc_fail(c, 1, "no randomness for a password");
  }
  json_t *body = json_pack("{s:s, s:s, s:s}", "username", pos.v[0], "password",
                           pw, "role", role);
  if (body != NULL && email != NULL)
    json_object_set_new(body, "email", json_string(email));
  if (body != NULL && feishu != NULL)
    json_object_set_new(body, "feishu_id", json_string(feishu));
  json_t *u = NULL;
  rc = body == NULL ? rc_fail(c, 2, "NAME: not valid UTF-8")
                    : rc_post(c, "/user/add", body, &u);
  if (rc == 0) {
    if (c->output == RC_OUT_JSON) {
      rc_print_json(u);
    } else {
      printf("username = %s\n", rc_str(u, "username"));
      if (!pw_stdin)
        printf("password = %s\n", pw);
      fprintf(stderr, "created user %s (id %lld, role %s)%s\n",
              rc_str(u, "username"), (long long)rc_int(u, "id"),
              rc_str(u, "role"),
              pw_stdin ? "" : "; the password is shown only this once");
    }
  }
  explicit_bzero(pw, sizeof pw);
  json_decref(u);
  return rc;
}

static int user_rm(struct rc_ctx *c, int argc, char **argv)
{
  struct rc_list pos = {0};
  int rc = rc_parse(c, argc, argv, 1, NULL, &pos, user_usage);
  if (rc != 0)
    return rc;
  if (pos.n == 0 || pos.n > 100)
    return rc_fail(c, 2, "give 1..100 users (NAME or ID)");
  json_t *ids = json_array();
  for (int i = 0; i < pos.n && rc == 0; i++) {
    int64_t id;
    if ((rc = user_id(c, pos.v[i], &id)) == 0)
      json_array_append_new(ids, json_integer(id));
  }
  if (rc == 0)
    rc = rc_post(c, "/user/del", json_pack("{s:O}", "ids", ids), NULL);
  if (rc == 0)
    for (int i = 0; i < pos.n; i++)
      printf("deleted user %s\n", pos.v[i]);
  json_decref(ids);
  return rc;
}

static int user_passwd(struct rc_ctx *c, int argc, char **argv)
{
  struct rc_list pos = {0};
  int pw_stdin = 0;
  char old[1100] = "", pw[1100];
  const struct rc_opt opts[] = {
      {"--password-stdin", NULL, RC_FLAG, &pw_stdin},
      {NULL, NULL, 0, NULL},
  };
  int64_t id = 0;
  int rc = rc_parse(c, argc, argv, 1, opts, &pos, user_usage);
  if (rc != 0)
    return rc;
  if (pos.n > 1)
    return rc_fail(c, 2, "at most one user");
  if (!pw_stdin && !isatty(STDIN_FILENO))
    return rc_fail(c, 2, "no terminal to ask on: use --password-stdin");
  if (pos.n == 1 && (rc = user_id(c, pos.v[0], &id)) != 0)
    return rc;
  if (id == 0 && rc_read_line("Old password: ", 1, old, sizeof old) != 0)
    return rc_fail(c, 2, "old password: one line of at most 1024 bytes");
  if (rc_read_line("New password: ", 1, pw, sizeof pw) != 0) {
    explicit_bzero(old, sizeof old);
    return rc_fail(c, 2, "new password: one line of at most 1024 bytes");
  }
  json_t *body = json_pack("{s:s}", "new_password", pw);
  if (body != NULL && id > 0)
    json_object_set_new(body, "id", json_integer(id));
  else if (body != NULL)
    json_object_set_new(body, "old_password", json_string(old));
  explicit_bzero(old, sizeof old);
  explicit_bzero(pw, sizeof pw);
  rc = body == NULL ? rc_fail(c, 2, "password: not valid UTF-8")
                    : rc_post(c, "/user/change_pw", body, NULL);
  if (rc == 0)
    fprintf(stderr, "password changed\n");
  return rc;
}

int rc_user_remote(int argc, char **argv)
{
  char cmd[64];
  const char *sub = argv[1];
  snprintf(cmd, sizeof cmd, "user %.40s", sub);
  struct rc_ctx c = {.cmd = cmd};
  int rc;
  if (strcmp(sub, "ls") == 0)
    rc = user_ls(&c, argc - 1, argv + 1);
  else if (strcmp(sub, "add") == 0)
    rc = user_add(&c, argc - 1, argv + 1);
  else if (strcmp(sub, "rm") == 0)
    rc = user_rm(&c, argc - 1, argv + 1);
  else
    rc = user_passwd(&c, argc - 1, argv + 1);
  rc_close(&c);
  return rc == RC_HELP ? 0 : rc;
}

int rc_user_add_is_remote(int argc, char **argv)
{
  static const char *const store_flags[] = {"--store", "--config", "--data-dir",
                                            "--set"};
  int server = 0;
  for (int i = 1; i < argc; i++) {
    for (size_t k = 0; k < CX_ARRAY_LEN(store_flags); k++)
      if (strncmp(argv[i], store_flags[k], strlen(store_flags[k])) == 0)
        return 0;
    server |= strncmp(argv[i], "--server", 8) == 0 ||
              strncmp(argv[i], "--token", 7) == 0;
  }
  char path[4096];
  const char *env = getenv("CRONIX_SERVER");
  return server || (env != NULL && env[0] != '\0') ||
         (rc_cred_path(path, sizeof path) == 0 && access(path, F_OK) == 0);
}
