/*
 * The client side of `cronix`: options every client command takes, the
 * connection and its credentials, `cronix login` / `logout`, and output.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli/remote-int.h"
#include "client/client.h"
#include "cron/cron.h"
#include "util/util.h"

#define MAX_PAGES 100
#define PAGE_SIZE 500

int rc_fail(const struct rc_ctx *c, int code, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "cronix %s: ", c->cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return code;
}

/* ---- command line ---------------------------------------------------- */

static const struct rc_opt *find_opt(const struct rc_opt *opts,
                                     const char *name, size_t len)
{
  for (const struct rc_opt *o = opts; o != NULL && o->name != NULL; o++) {
    if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
      return o;
    if (o->alias != NULL && strlen(o->alias) == len &&
        strncmp(o->alias, name, len) == 0)
      return o;
  }
  return NULL;
}

int rc_parse(struct rc_ctx *c, int argc, char **argv, int first,
             const struct rc_opt *opts, struct rc_list *pos, const char *usage)
{
  const char *output = NULL;
  const struct rc_opt common[] = {
      {"--server", NULL, RC_VALUE, &c->server},
      {"--token", NULL, RC_VALUE, &c->token},
      {"--cacert", NULL, RC_VALUE, &c->cacert},
      {"--api-timeout", NULL, RC_VALUE, &c->timeout},
      {"--output", "-o", RC_VALUE, &output},
      {NULL, NULL, 0, NULL},
  };
  int only_pos = 0;
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
      if (pos == NULL || pos->n >= RC_MAX_LIST)
        return rc_fail(c, 2, "unexpected argument '%.100s'", a);
      pos->v[pos->n++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      return RC_HELP;
    }
    const char *eq = strchr(a, '=');
    size_t len = eq != NULL && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
    const struct rc_opt *o = find_opt(opts, a, len);
    if (o == NULL)
      o = find_opt(common, a, len);
    if (o == NULL) {
      rc_fail(c, 2, "unknown option '%.100s'", a);
      fputs(usage, stderr);
      return 2;
    }
    if (o->kind == RC_FLAG) {
      if (a[len] == '=')
        return rc_fail(c, 2, "%s takes no value", o->name);
      *(int *)o->dst = 1;
      continue;
    }
    const char *v;
    if (a[len] == '=')
      v = a + len + 1;
    else if (i + 1 < argc)
      v = argv[++i];
    else
      return rc_fail(c, 2, "%s needs a value", o->name);
    if (o->kind == RC_VALUE) {
      *(const char **)o->dst = v;
    } else {
      struct rc_list *l = o->dst;
      if (l->n >= RC_MAX_LIST)
        return rc_fail(c, 2, "%s: at most %d times", o->name, RC_MAX_LIST);
      l->v[l->n++] = v;
    }
  }
  if (output != NULL) {
    if (strcmp(output, "json") == 0)
      c->output = RC_OUT_JSON;
    else if (strcmp(output, "wide") == 0)
      c->output = RC_OUT_WIDE;
    else if (strcmp(output, "table") == 0)
      c->output = RC_OUT_TABLE;
    else
      return rc_fail(c, 2, "-o must be table, wide or json, got '%.100s'",
                     output);
  }
  const char *nc = getenv("NO_COLOR");
  c->color = isatty(STDOUT_FILENO) && (nc == NULL || nc[0] == '\0');
  return 0;
}

/* ---- credentials ----------------------------------------------------- */

int rc_cred_path(char *buf, size_t cap)
{
  const char *x = getenv("XDG_CONFIG_HOME");
  const char *home = getenv("HOME");
  int n;
  if (x != NULL && x[0] == '/')
    n = snprintf(buf, cap, "%s/cronix/credentials", x);
  else if (home != NULL && home[0] == '/')
    n = snprintf(buf, cap, "%s/.config/cronix/credentials", home);
  else
    return -1;
  return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Loads the credentials file when there is one (missing is fine). */
static void cred_load(struct rc_ctx *c)
{
  char path[4096], line[4096];
  if (rc_cred_path(path, sizeof path) != 0)
    return;
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return;
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0)
    fprintf(stderr,
            "cronix: warning: %s can be read by others; chmod 600 it (or "
            "cronix login again)\n",
            path);
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    char **slot = NULL;
    size_t klen = 0;
    if (strncmp(line, "server = ", 9) == 0)
      slot = &c->cred_server, klen = 9;
    else if (strncmp(line, "token = ", 8) == 0)
      slot = &c->cred_token, klen = 8;
    else if (strncmp(line, "cacert = ", 9) == 0)
      slot = &c->cred_cacert, klen = 9;
    if (slot != NULL && *slot == NULL)
      *slot = cx_strdup(line + klen);
  }
  explicit_bzero(line, sizeof line);
  fclose(f);
}

static const char *first_set(const char *a, const char *env)
{
  if (a != NULL && a[0] != '\0')
    return a;
  const char *e = getenv(env);
  return e != NULL && e[0] != '\0' ? e : NULL;
}

int rc_connect(struct rc_ctx *c)
{
  char err[CX_ERR_LEN] = "";
  if (c->client != NULL)
    return 0;
  cred_load(c);
  const char *server = first_set(c->server, "CRONIX_SERVER");
  const char *token = first_set(c->token, "CRONIX_TOKEN");
  const char *cacert = first_set(c->cacert, "CRONIX_CACERT");
  if (server == NULL)
    server = c->cred_server;
  if (server == NULL)
    return rc_fail(c, 2,
                   "no server: give --server URL, set CRONIX_SERVER or run "
                   "`cronix login --server URL`");
  /* The stored session belongs to the server it came from: never send it
   * to another one. */
  int same = c->cred_server != NULL && strcmp(c->cred_server, server) == 0;
  if (token == NULL && same)
    token = c->cred_token;
  if (cacert == NULL && same)
    cacert = c->cred_cacert;
  int64_t timeout = 60;
  if (c->timeout != NULL && rc_duration(c->timeout, 86400, &timeout) != 0)
    return rc_fail(c, 2,
                   "--api-timeout: a duration like 30s or 2m, got '%.50s'",
                   c->timeout);
  struct cx_client_conf conf = {.server = server,
                                .token = token,
                                .cacert = cacert,
                                .timeout_ms = timeout * 1000};
  int rc = cx_client_create(&conf, &c->client, err);
  if (rc != 0)
    return rc_fail(c, rc == CX_CLIENT_USAGE ? 2 : 1, "%s", err);
  c->server = server;
  return 0;
}

void rc_close(struct rc_ctx *c)
{
  cx_client_destroy(c->client);
  c->client = NULL;
  if (c->cred_token != NULL)
    explicit_bzero(c->cred_token, strlen(c->cred_token));
  cx_free(c->cred_server);
  cx_free(c->cred_token);
  cx_free(c->cred_cacert);
  c->cred_server = c->cred_token = c->cred_cacert = NULL;
}

int rc_call(struct rc_ctx *c, const char *path, const json_t *body,
            json_t **data)
{
  struct cx_client_result r;
  if (data != NULL)
    *data = NULL;
  int rc = rc_connect(c);
  if (rc != 0)
    return rc;
  rc = cx_client_call(c->client, path, body, &r);
  if (rc == CX_CLIENT_OK) {
    if (data != NULL)
      *data = json_incref(r.data);
  } else if (rc == CX_CLIENT_REFUSED) {
    if (r.field[0] != '\0' && strncmp(r.msg, r.field, strlen(r.field)) != 0)
      rc_fail(c, 1, "%s (field %s)", r.msg, r.field);
    else
      rc_fail(c, 1, "%s", r.msg);
    if (r.http_status == 401)
      fprintf(stderr,
              "cronix %s: log in with `cronix login` or pass "
              "--token\n",
              c->cmd);
  } else if (rc == CX_CLIENT_UNREACHABLE) {
    rc_fail(c, 3, "cannot reach the server: %s", r.msg);
  } else {
    rc = rc_fail(c, rc == CX_CLIENT_USAGE ? 2 : 1, "%s", r.msg);
  }
  cx_client_result_free(&r);
  return rc < 0 ? 1 : rc;
}

int rc_post(struct rc_ctx *c, const char *path, json_t *body, json_t **data)
{
  if (body == NULL)
    return rc_fail(c, 1, "out of memory");
  int rc = rc_call(c, path, body, data);
  json_decref(body);
  return rc;
}

int rc_list_all(struct rc_ctx *c, const char *path, const json_t *body,
                json_t **list)
{
  json_t *all = json_array();
  json_t *req = body != NULL ? json_deep_copy(body) : json_object();
  *list = NULL;
  if (all == NULL || req == NULL) {
    json_decref(all);
    json_decref(req);
    return rc_fail(c, 1, "out of memory");
  }
  for (int page = 1; page <= MAX_PAGES; page++) {
    json_t *d = NULL;
    json_object_set_new(req, "page", json_integer(page));
    json_object_set_new(req, "page_size", json_integer(PAGE_SIZE));
    int rc = rc_call(c, path, req, &d);
    if (rc != 0) {
      json_decref(all);
      json_decref(req);
      return rc;
    }
    json_t *l = json_object_get(d, "list");
    size_t got = json_array_size(l);
    json_array_extend(all, l);
    int64_t total = rc_int(d, "total");
    json_decref(d);
    if (got < PAGE_SIZE || (int64_t)json_array_size(all) >= total)
      break;
    if (page == MAX_PAGES) {
      /* Never act on a silently cut list (apply --prune would). */
      json_decref(all);
      json_decref(req);
      return rc_fail(c, 1, "%s: more than %d items; narrow the request", path,
                     MAX_PAGES * PAGE_SIZE);
    }
  }
  json_decref(req);
  *list = all;
  return 0;
}

/* ---- reading secrets ------------------------------------------------- */

int rc_read_line(const char *prompt, int secret, char *buf, size_t cap)
{
  struct termios old, quiet;
  int tty = isatty(STDIN_FILENO), echo_off = 0;
  if (tty) {
    fputs(prompt, stderr);
    fflush(stderr);
    if (secret && tcgetattr(STDIN_FILENO, &old) == 0) {
      quiet = old;
      quiet.c_lflag &= ~(tcflag_t)ECHO;
      echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
  }
  size_t n = 0;
  int ch, rc = 0;
  while ((ch = fgetc(stdin)) != EOF && ch != '\n') {
    if (ch == '\0' || n + 1 >= cap) {
      rc = -1;
      break;
    }
    buf[n++] = (char)ch;
  }
  if (ch == EOF && n == 0)
    rc = -1;
  if (n > 0 && buf[n - 1] == '\r')
    n--;
  buf[n] = '\0';
  if (echo_off) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
  }
  return rc;
}

/* ---- login / logout -------------------------------------------------- */

/* Writes the credentials file: a new file made 0600 in the (0700)
 * directory, then renamed over the old one, so no other user can read or
 * swap it at any moment. */
static int cred_save(struct rc_ctx *c, const char *server, const char *token,
                     const char *cacert)
{
  char path[4096], tmp[4200];
  if (rc_cred_path(path, sizeof path) != 0)
    return rc_fail(c, 2, "no home directory for the credentials (set HOME)");
  /* mkdir -p of the directories, each 0700 when made. */
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    int r = mkdir(path, 0700);
    int e = errno;
    *p = '/';
    if (r != 0 && e != EEXIST)
      return rc_fail(c, 1, "cannot create the directory of %s: %s", path,
                     strerror(e));
  }
  snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
  int fd = mkstemp(tmp); /* O_EXCL, mode 0600 */
  if (fd < 0)
    return rc_fail(c, 1, "cannot write %s: %s", path, strerror(errno));
  FILE *f = fdopen(fd, "w");
  if (f == NULL) {
    close(fd);
    unlink(tmp);
    return rc_fail(c, 1, "cannot write %s: %s", path, strerror(errno));
  }
  fchmod(fd, 0600);
  fprintf(f, "# cronix login: a session token; keep this file private\n");
  fprintf(f, "server = %s\ntoken = %s\n", server, token);
  if (cacert != NULL)
    fprintf(f, "cacert = %s\n", cacert);
  int bad = fflush(f) != 0 || fsync(fd) != 0;
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return rc_fail(c, 1, "cannot write %s: %s", path, strerror(e));
  }
  return 0;
}

static const char login_usage[] =
    "usage: cronix login --server URL [--username U] [--password-stdin]\n"
    "                    [--cacert FILE]\n"
    "\n"
    "Asks the server for a session token (POST /login) and keeps it with the\n"
    "server's URL in ~/.config/cronix/credentials (mode 0600), where every\n"
    "client command finds it. Without --password-stdin the password is\n"
    "asked on the terminal.\n";

int rc_login(int argc, char **argv)
{
  struct rc_ctx c = {.cmd = "login"};
  const char *user = NULL;
  int pw_stdin = 0;
  char name[300], password[1100];
  const struct rc_opt opts[] = {
      {"--username", "-u", RC_VALUE, &user},
      {"--password-stdin", NULL, RC_FLAG, &pw_stdin},
      {NULL, NULL, 0, NULL},
  };
  int rc = rc_parse(&c, argc, argv, 1, opts, NULL, login_usage);
  if (rc != 0)
    return rc == RC_HELP ? 0 : rc;
  /* A login starts from the server named here, not a stored session. */
  c.server = first_set(c.server, "CRONIX_SERVER");
  if (c.server == NULL)
    return rc_fail(&c, 2, "--server URL is required");
  if (user == NULL) {
    if (pw_stdin || !isatty(STDIN_FILENO))
      return rc_fail(&c, 2, "--username is required");
    if (rc_read_line("Username: ", 0, name, sizeof name) != 0)
      return rc_fail(&c, 2, "no username");
    user = name;
  }
  if (!pw_stdin && !isatty(STDIN_FILENO))
    return rc_fail(&c, 2,
                   "no terminal to ask the password on: use --password-stdin");
  if (rc_read_line("Password: ", 1, password, sizeof password) != 0)
    return rc_fail(&c, 2, "password: one line of at most 1024 bytes expected");
  c.token = ""; /* send none */
  json_t *body =
      json_pack("{s:s, s:s}", "username", user, "password", password);
  explicit_bzero(password, sizeof password);
  json_t *d = NULL;
  rc = body == NULL ? rc_fail(&c, 2, "username: must be valid UTF-8")
                    : rc_post(&c, "/login", body, &d);
  if (rc == 0) {
    const char *tok = rc_str(d, "token");
    if (tok[0] == '\0')
      rc = rc_fail(&c, 3, "the server answered no token");
    else
      rc = cred_save(&c, c.server, tok, first_set(c.cacert, "CRONIX_CACERT"));
    if (rc == 0) {
      char when[64];
      rc_time(rc_int(d, "expires"), NULL, when, sizeof when);
      fprintf(stderr, "logged in to %s as %s (%s) until %s\n", c.server, user,
              rc_str(json_object_get(d, "user"), "role"), when);
    }
  }
  json_decref(d);
  rc_close(&c);
  return rc;
}

static const char logout_usage[] =
    "usage: cronix logout\n"
    "\n"
    "Revokes the stored session (POST /logout) and removes\n"
    "~/.config/cronix/credentials.\n";

int rc_logout(int argc, char **argv)
{
  struct rc_ctx c = {.cmd = "logout"};
  char path[4096];
  int rc = rc_parse(&c, argc, argv, 1, NULL, NULL, logout_usage);
  if (rc != 0)
    return rc == RC_HELP ? 0 : rc;
  if (rc_cred_path(path, sizeof path) != 0 || access(path, F_OK) != 0)
    return rc_fail(&c, 2, "not logged in (no credentials file)");
  cred_load(&c);
  /* Revoke what the file holds, on the server it came from. */
  c.server = c.cred_server;
  c.token = c.cred_token;
  rc = c.server != NULL && c.token != NULL
           ? rc_post(&c, "/logout", json_object(), NULL)
           : 0;
  if (unlink(path) != 0 && errno != ENOENT) {
    rc_fail(&c, 1, "cannot remove %s: %s", path, strerror(errno));
    rc = 1;
  } else if (rc == 3) {
    fprintf(stderr,
            "cronix logout: credentials removed, but the session could not "
            "be revoked: it stays valid on the server until it expires\n");
  } else if (rc == 1) {
    rc = 0; /* an expired or revoked session: nothing left to revoke */
  }
  if (rc == 0)
    fprintf(stderr, "logged out\n");
  rc_close(&c);
  return rc;
}

/* ---- output ---------------------------------------------------------- */

void rc_print_json(const json_t *v)
{
  char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  if (s != NULL) {
    puts(s);
    free(s);
  }
}

void rc_table_row(struct rc_table *t, const char *const *cells,
                  const enum rc_color *colors)
{
  if (t->nrows == t->cap) {
    int cap = t->cap ? t->cap * 2 : 64;
    char **nc = cx_realloc(t->cells, sizeof *nc * (size_t)cap * t->ncol);
    if (nc == NULL)
      return;
    t->cells = nc;
    unsigned char *ncol = cx_realloc(t->colors, (size_t)cap * t->ncol);
    if (ncol == NULL)
      return;
    t->colors = ncol;
    t->cap = cap;
  }
  for (int i = 0; i < t->ncol; i++) {
    char *cell = cx_strdup(cells[i] != NULL && cells[i][0] ? cells[i] : "-");
    /* A value from the server must not drive the terminal (escape
     * sequences) or break the row (newlines, tabs). */
    for (unsigned char *p = (unsigned char *)cell; p != NULL && *p; p++)
      if (*p < 0x20 || *p == 0x7f)
        *p = '?';
    t->cells[t->nrows * t->ncol + i] = cell;
    t->colors[t->nrows * t->ncol + i] =
        colors != NULL ? (unsigned char)colors[i] : RC_PLAIN;
  }
  t->nrows++;
}

static size_t width_of(const char *s)
{
  return s != NULL ? cx_utf8_chars(s, strlen(s)) : 0;
}

/* Prints s in w characters: cut with "~" when longer, padded when pad. */
static void put_cell(const char *s, size_t w, int pad, int color, int use_color)
{
  static const char *const codes[] = {"", "\033[32m", "\033[31m", "\033[33m",
                                      "\033[2m"};
  size_t n = strlen(s), chars = cx_utf8_chars(s, n), shown = chars;
  if (use_color && color != RC_PLAIN)
    fputs(codes[color], stdout);
  if (chars > w) {
    /* Keep w - 1 characters and mark the cut. */
    size_t at = 0, k = 0;
    while (at < n && k + 1 < w) {
      at = cx_utf8_ceil(s, n, at + 1);
      k++;
    }
    fwrite(s, 1, at, stdout);
    if (w > 0)
      fputc('~', stdout);
    shown = w;
  } else {
    fputs(s, stdout);
  }
  if (use_color && color != RC_PLAIN)
    fputs("\033[0m", stdout);
  for (; pad && shown < w; shown++)
    fputc(' ', stdout);
}

static size_t terminal_width(void)
{
  struct winsize ws;
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
      ws.ws_col > 0)
    return ws.ws_col;
  int64_t cols;
  const char *e = getenv("COLUMNS");
  if (e != NULL && cx_parse_int64(e, 20, 10000, &cols) == 0)
    return (size_t)cols;
  return 0;
}

void rc_table_print(struct rc_table *t, const struct rc_ctx *c)
{
  size_t w[RC_MAX_COLS], total = 0, limit = terminal_width();
  for (int i = 0; i < t->ncol; i++) {
    w[i] = width_of(t->head[i]);
    for (int r = 0; r < t->nrows; r++) {
      size_t x = width_of(t->cells[r * t->ncol + i]);
      if (x > w[i])
        w[i] = x;
    }
    total += w[i] + (i + 1 < t->ncol ? 2 : 0);
  }
  /* Too wide: take a character at a time from the widest column that may
   * shrink, down to its heading's width (at least 4). */
  while (limit > 0 && total > limit) {
    int widest = -1;
    for (int i = 0; i < t->ncol; i++) {
      size_t floor = width_of(t->head[i]) > 4 ? width_of(t->head[i]) : 4;
      if (t->shrink[i] && w[i] > floor && (widest < 0 || w[i] > w[widest]))
        widest = i;
    }
    if (widest < 0)
      break;
    w[widest]--;
    total--;
  }
  for (int r = -1; r < t->nrows; r++) {
    for (int i = 0; i < t->ncol; i++) {
      const char *s = r < 0 ? t->head[i] : t->cells[r * t->ncol + i];
      int color = r < 0 ? RC_PLAIN : t->colors[r * t->ncol + i];
      put_cell(s != NULL ? s : "", w[i], i + 1 < t->ncol, color, c->color);
      if (i + 1 < t->ncol)
        fputs("  ", stdout);
    }
    fputc('\n', stdout);
  }
  for (int k = 0; k < t->nrows * t->ncol; k++)
    cx_free(t->cells[k]);
  cx_free(t->cells);
  cx_free(t->colors);
  t->cells = NULL;
  t->colors = NULL;
  t->nrows = t->cap = 0;
}

/* ---- small helpers --------------------------------------------------- */

const char *rc_str(const json_t *o, const char *key)
{
  const char *s = json_string_value(json_object_get(o, key));
  return s != NULL ? s : "";
}

int64_t rc_int(const json_t *o, const char *key)
{
  return (int64_t)json_integer_value(json_object_get(o, key));
}

void rc_time(int64_t t, const char *zone, char *buf, size_t cap)
{
  const struct cx_tz *tz = NULL;
  char full[64];
  if (t <= 0 || t > 253402300799LL /* 9999-12-31 */ ||
      cx_tz_get(zone, &tz, NULL) != 0 ||
      cx_time_format(t, tz, full, sizeof full) == 0) {
    snprintf(buf, cap, "-");
    return;
  }
  /* "2026-12-07T02:00:00+08:00" -> "2026-12-07 02:00" */
  full[10] = ' ';
  full[16] = '\0';
  snprintf(buf, cap, "%s", full);
}

int64_t rc_run_ms(const json_t *run)
{
  int64_t st = rc_int(run, "start_time"), en = rc_int(run, "end_time");
  /* Values from the server: no overflow whatever they are. */
  if (st < 0 || en < st || en > INT64_MAX / 2)
    return -1;
  return en - st;
}

void rc_age(int64_t t, int64_t now, char *buf, size_t cap)
{
  /* Beyond ~30000 years either way: not a time (and no overflow). */
  if (t < now - 1000000000000LL || t > now + 1000000000000LL) {
    snprintf(buf, cap, "-");
    return;
  }
  int64_t d = now - t;
  const char *sign = "";
  if (d < 0) {
    d = -d;
    sign = "in ";
  }
  if (d < 120)
    snprintf(buf, cap, "%s%llds", sign, (long long)d);
  else if (d < 7200)
    snprintf(buf, cap, "%s%lldm", sign, (long long)(d / 60));
  else if (d < 172800)
    snprintf(buf, cap, "%s%lldh", sign, (long long)(d / 3600));
  else
    snprintf(buf, cap, "%s%lldd", sign, (long long)(d / 86400));
}

int rc_duration(const char *s, int64_t max, int64_t *out)
{
  char num[24];
  size_t n = strlen(s);
  int64_t unit = 1, v;
  if (n == 0 || n >= sizeof num)
    return -1;
  memcpy(num, s, n + 1);
  const char *units = "smhd";
  static const int64_t secs[] = {1, 60, 3600, 86400};
  const char *u = strchr(units, num[n - 1]);
  if (u != NULL && *u != '\0') {
    unit = secs[u - units];
    num[n - 1] = '\0';
  }
  if (cx_parse_int64(num, 0, max / unit, &v) != 0)
    return -1;
  *out = v * unit;
  return 0;
}

int rc_resolve(struct rc_ctx *c, const char *arg, const char *path,
               const char *key, int64_t *id)
{
  if (cx_parse_int64(arg, 1, INT64_MAX, id) == 0)
    return 0;
  if (arg[0] == '\0' || strlen(arg) > 512)
    return rc_fail(c, 2, "'%.60s' is neither an id nor a %s", arg, key);
  json_t *body = json_pack("{s:s}", key, arg), *list = NULL;
  if (body == NULL)
    return rc_fail(c, 2, "%s: must be valid UTF-8", key);
  int rc = rc_list_all(c, path, body, &list);
  json_decref(body);
  if (rc != 0)
    return rc;
  size_t i;
  json_t *j;
  *id = 0;
  json_array_foreach(list, i, j)
  {
    if (strcmp(rc_str(j, key), arg) == 0)
      *id = rc_int(j, "id");
  }
  json_decref(list);
  if (*id == 0)
    return rc_fail(c, 1, "no %s '%.200s'", key, arg);
  return 0;
}

int rc_job_id(struct rc_ctx *c, const char *arg, int64_t *id)
{
  return rc_resolve(c, arg, "/job/search", "name", id);
}

int rc_json_out(const struct rc_ctx *c, json_t *v)
{
  if (c->output != RC_OUT_JSON)
    return 0;
  rc_print_json(v);
  json_decref(v);
  return 1;
}

int rc_print_list(const struct rc_ctx *c, json_t *list, struct rc_table *t,
                  rc_row_fn *row, void *arg)
{
  if (rc_json_out(c, list))
    return 0;
  size_t i;
  json_t *item;
  json_array_foreach(list, i, item)
  {
    row(t, item, arg);
  }
  rc_table_print(t, c);
  json_decref(list);
  return 0;
}

int rc_list_print(struct rc_ctx *c, const char *path, const json_t *body,
                  struct rc_table *t, rc_row_fn *row, void *arg)
{
  json_t *list = NULL;
  int rc = rc_list_all(c, path, body, &list);
  return rc != 0 ? rc : rc_print_list(c, list, t, row, arg);
}
