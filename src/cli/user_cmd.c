/*
 * `cronix user add NAME --role admin|operator|viewer [--email E]
 * [--feishu-id F] [--password-stdin] [--token] [config flags]`: creates a
 * user directly in the configured store (SQLite or MySQL/MariaDB), with the
 * checks of POST /user/add (cx_admin_user_create).
 *
 * Without --password-stdin a random password (128 bits, 32 hex digits) is
 * made and printed once; --token also makes an API token that never
 * expires and prints it once. Output on stdout, one `key = value` line each
 * (username, password when generated, token when asked), like
 * initial-admin.txt. Exit 0; 2 on bad input (message names the field); 1
 * when the store fails or the name is taken.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "cli/cli.h"
#include "config/config.h"
#include "store/store.h"
#include "util/util.h"

#define MAX_ARGS 64

static const char user_usage[] =
    "usage: cronix user add NAME --role admin|operator|viewer [options]\n"
    "\n"
    "  --role ROLE         admin, operator or viewer (required)\n"
    "  --email ADDR        email address for notifications\n"
    "  --feishu-id ID      Feishu user id for notifications\n"
    "  --password-stdin    read the password from standard input (one line)\n"
    "                      instead of generating and printing one\n"
    "  --token             also create an API token (never expires); printed\n"
    "                      once\n";

/* Reads one line (the password) from stdin into buf; -1 if too long. */
static int read_password(char *buf, size_t cap)
{
  size_t n = fread(buf, 1, cap - 1, stdin);
  buf[n] = '\0';
  if (n == cap - 1 && fgetc(stdin) != EOF)
    return -1;
  if (n > 0 && buf[n - 1] == '\n')
    buf[--n] = '\0';
  if (n > 0 && buf[n - 1] == '\r')
    buf[--n] = '\0';
  if (strlen(buf) != n || memchr(buf, '\n', n) != NULL)
    return -2;
  return 0;
}

/* The audit row of a change made from the shell: who is "cli:<login>"
 * from "local" (the API's rows name a user and an address). */
static int audit(struct cx_store *store, const char *kind, int64_t id,
                 const char *what, char *err)
{
  char who[96], target[48], after[64];
  const char *login = getlogin(); /* NULL without a terminal */
  if (login != NULL)
    snprintf(who, sizeof who, "cli:%.64s", login);
  else
    snprintf(who, sizeof who, "cli:uid %u", (unsigned)geteuid());
  snprintf(target, sizeof target, "user %lld", (long long)id);
  snprintf(after, sizeof after, "{\"%s\":\"%s\"}",
           strcmp(kind, "user.add") == 0 ? "role" : "kind", what);
  struct cx_audit a = {0};
  a.username = who;
  a.addr = "local";
  a.kind = (char *)kind;
  a.target = target;
  a.after = after;
  return cx_store_audit_add(store, &a, err);
}

int cx_cli_user(int argc, char **argv)
{
  struct cx_admin_user_spec spec = {0};
  char *rest[MAX_ARGS + 1];
  int nrest = 0, pw_stdin = 0, want_token = 0, rc = 2;
  char password[1100], token[CX_STORE_TOKEN_LEN] = "";
  char err[CX_ERR_LEN] = "", field[CX_ADMIN_FIELD_LEN] = "";
  struct cx_config cfg;
  struct cx_store *store = NULL;
  int64_t id = 0;

  if (argc < 2 || strcmp(argv[1], "add") != 0) {
    int help = argc >= 2 &&
               (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    fprintf(help ? stdout : stderr, "%s\n", user_usage);
    cx_cli_config_flags_print(help ? stdout : stderr, "user add");
    return help ? 0 : 2;
  }
  rest[nrest++] = "user add";
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      printf("%s\n", user_usage);
      cx_cli_config_flags_print(stdout, "user add");
      return 0;
    }
    if (strcmp(a, "--role") == 0)
      slot = &spec.role;
    else if (strcmp(a, "--email") == 0)
      slot = &spec.email;
    else if (strcmp(a, "--feishu-id") == 0)
      slot = &spec.feishu_id;
    if (slot != NULL) {
      if (i + 1 >= argc) {
        fprintf(stderr, "cronix user add: %s needs a value\n", a);
        return 2;
      }
      *slot = argv[++i];
    } else if (strcmp(a, "--password-stdin") == 0) {
      pw_stdin = 1;
    } else if (strcmp(a, "--token") == 0) {
      want_token = 1;
    } else if (a[0] != '-' && spec.username == NULL) {
      spec.username = a;
    } else if (a[0] != '-') {
      fprintf(stderr, "cronix user add: unexpected argument '%s'\n", a);
      return 2;
    } else {
      /* A config flag and its value, for cx_cli_load_config. */
      if (nrest + 2 > MAX_ARGS) {
        fprintf(stderr, "cronix user add: too many arguments\n");
        return 2;
      }
      rest[nrest++] = argv[i];
      if (i + 1 < argc)
        rest[nrest++] = argv[++i];
    }
  }
  rest[nrest] = NULL;
  if (spec.username == NULL || spec.role == NULL) {
    fprintf(stderr, "cronix user add: %s\n%s",
            spec.username == NULL ? "NAME is required" : "--role is required",
            user_usage);
    return 2;
  }
  if (pw_stdin) {
    int r = read_password(password, sizeof password);
    if (r != 0) {
      fprintf(stderr, "cronix user add: password: %s\n",
              r == -1 ? "longer than 1024 bytes"
                      : "must be one line without NUL bytes");
      return 2;
    }
  } else if (cx_store_token_generate(token) != 0) {
    fprintf(stderr, "cronix user add: no randomness for a password\n");
    return 1;
  } else {
    snprintf(password, sizeof password, "%.32s", token);
    token[0] = '\0';
  }
  spec.password = password;
  if (cx_admin_user_check(&spec, field, err) != 0) {
    fprintf(stderr, "cronix user add: %s\n", err);
    rc = 2;
    goto out;
  }

  if ((rc = cx_cli_load_config(nrest, rest, &cfg)) != 0)
    goto out;
  rc = cx_store_open(cfg.store_url, &store, err);
  if (rc != 0) {
    char shown[1024];
    cx_store_url_redact(cfg.store_url, shown, sizeof shown);
    fprintf(stderr, "cronix user add: store %s: %s\n", shown, err);
    rc = rc == CX_EPARSE ? 2 : 1;
    goto out_cfg;
  }
  /* The user, its token and their audit rows: all or nothing. */
  rc = cx_store_tx_begin(store, err);
  if (rc == 0) {
    rc = cx_admin_user_create(store, &spec, &id, field, err);
    if (rc == 0)
      rc = audit(store, "user.add", id, spec.role, err);
    if (rc == 0 && want_token) {
      rc = cx_store_token_generate(token);
      if (rc == 0)
        rc = cx_store_token_create(store, token, id, "api", 0, err);
      if (rc == 0)
        rc = audit(store, "token.create", id, "api", err);
    }
    int erc = cx_store_tx_end(store, rc == 0, rc == 0 ? err : NULL);
    rc = rc != 0 ? rc : erc;
  }
  if (rc != 0) {
    fprintf(stderr, "cronix user add: %s\n", err);
    rc = rc == CX_EPARSE || rc == CX_ETOOBIG ? 2 : 1;
    goto out_cfg;
  }
  printf("username = %s\n", spec.username);
  if (!pw_stdin)
    printf("password = %s\n", password);
  if (want_token)
    printf("token = %s\n", token);
  fprintf(stderr, "cronix user add: user %s (id %lld, role %s) created%s\n",
          spec.username, (long long)id, spec.role,
          pw_stdin ? "" : "; the password is shown only this once");
  rc = 0;
out_cfg:
  cx_store_close(store);
  cx_config_free(&cfg);
out:
  explicit_bzero(password, sizeof password);
  explicit_bzero(token, sizeof token);
  return rc;
}
