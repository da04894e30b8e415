/*
 * The admin's life cycle and the helpers shared by the route files:
 * authentication, backend error replies, coordination keys, JSON field
 * readers, paging, and the first-start admin user.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin-int.h"

static const char *const role_names[] = {"none", "viewer", "operator", "admin"};

enum cx_role cx__admin_role_parse(const char *s)
{
  for (int r = CX_ROLE_VIEWER; r <= CX_ROLE_ADMIN; r++)
    if (s != NULL && strcmp(s, role_names[r]) == 0)
      return (enum cx_role)r;
  return CX_ROLE_NONE;
}

const char *cx__admin_role_name(enum cx_role r)
{
  return r >= CX_ROLE_NONE && r <= CX_ROLE_ADMIN ? role_names[r] : "none";
}

int cx__admin_auth(struct cx_admin *a, struct cx_http_req *req,
                   enum cx_role need, struct cx__admin_who *who)
{
  char err[CX_ERR_LEN];
  struct cx_token tok;
  struct cx_user user;
  const char *h = cx_http_req_header(req, "Authorization");

  if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0' ||
      strlen(h + 7) > 256) {
    cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, NULL,
                        "missing credentials: send Authorization: Bearer "
                        "<token> (POST /login gives one)");
    return -1;
  }
  int rc = cx_store_token_lookup(a->store, h + 7, cx_wall_s(), &tok, err);
  if (rc == CX_ENOTFOUND) {
    cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, NULL,
                        "invalid or expired token");
    return -1;
  }
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "token", err);
    return -1;
  }
  memset(&user, 0, sizeof user);
  rc = cx_store_user_find(a->store, tok.user_id, &user, err);
  if (rc == CX_ENOTFOUND) {
    cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, NULL,
                        "the token's user no longer exists");
    return -1;
  }
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "user", err);
    return -1;
  }
  enum cx_role role = cx__admin_role_parse(user.role);
  if (who != NULL) {
    who->user_id = user.id;
    who->role = role;
    snprintf(who->username, sizeof who->username, "%s",
             user.username ? user.username : "");
  }
  cx_user_clear(&user);
  if (role < need) {
    cx_http_reply_error(req, CX_HTTP_FORBIDDEN, NULL,
                        "role %s may not do this (needs %s)",
                        cx__admin_role_name(role), cx__admin_role_name(need));
    return -1;
  }
  return 0;
}

void cx__admin_reply_backend_error(struct cx_http_req *req, int rc,
                                   const char *what, const char *detail)
{
  const char *d =
      detail != NULL && detail[0] != '\0' ? detail : cx_strerror(rc);
  switch (rc) {
  case CX_ENOTFOUND:
    cx_http_reply_error(req, CX_HTTP_NOT_FOUND, NULL, "no such %s", what);
    break;
  case CX_EEXISTS:
  case CX_ECONFLICT:
    cx_http_reply_error(req, CX_HTTP_CONFLICT, NULL, "%s: %s", what, d);
    break;
  default:
    CX_LOG(CX_LOG_ERROR, "admin", "%s: backend error %s: %s", what,
           cx_err_name(rc), d);
    cx_http_reply_error(req, CX_HTTP_UNAVAIL, NULL,
                        "%s: store or coordination service unavailable: %s",
                        what, d);
  }
}

size_t cx__admin_key(const struct cx_admin *a, char *buf, size_t len,
                     const char *fmt, ...)
{
  va_list ap;
  int n = snprintf(buf, len, "%s/", a->prefix);
  if (n < 0 || (size_t)n >= len)
    return 0;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, len - (size_t)n, fmt, ap);
  va_end(ap);
  if (m < 0 || (size_t)(n + m) >= len)
    return 0;
  return (size_t)(n + m);
}

int cx__admin_json_int(struct cx_http_req *req, const json_t *body,
                       const char *name, int64_t min, int64_t max, int64_t *out)
{
  json_t *v = json_object_get(body, name);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_integer(v)) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, name, "%s: must be an integer",
                        name);
    return -1;
  }
  json_int_t x = json_integer_value(v);
  if (x < min || x > max) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, name,
                        "%s: out of range %lld..%lld", name, (long long)min,
                        (long long)max);
    return -1;
  }
  *out = (int64_t)x;
  return 1;
}

int cx__admin_json_str(struct cx_http_req *req, const json_t *body,
                       const char *name, size_t max_len, const char **out)
{
  json_t *v = json_object_get(body, name);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v)) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, name, "%s: must be a string",
                        name);
    return -1;
  }
  const char *s = json_string_value(v);
  if (json_string_length(v) != strlen(s) || strlen(s) > max_len) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, name,
                        "%s: longer than %zu bytes or contains NUL", name,
                        max_len);
    return -1;
  }
  *out = s;
  return 1;
}

int cx__admin_paging(struct cx_http_req *req, const json_t *body, int *page,
                     int *page_size)
{
  int64_t p = 1, s = 20;
  if (cx__admin_json_int(req, body, "page", 1, 1000000000, &p) < 0 ||
      cx__admin_json_int(req, body, "page_size", 1, 1000000, &s) < 0)
    return -1;
  *page = (int)p;
  *page_size = s > 500 ? 500 : (int)s;
  return 0;
}

void cx__admin_reply_page(struct cx_http_req *req, json_t *list, int64_t total,
                          int page, int page_size)
{
  json_t *data =
      json_pack("{s:o, s:I, s:i, s:i}", "list", list, "total",
                (json_int_t)total, "page", page, "page_size", page_size);
  if (data == NULL) {
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    return;
  }
  cx_http_reply_ok(req, data);
}

int cx__admin_json_only(struct cx_http_req *req, const json_t *body,
                        const char *const *allowed)
{
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)body, k, v)
  {
    size_t i = 0;
    while (allowed[i] != NULL && strcmp(allowed[i], k) != 0)
      i++;
    if (allowed[i] == NULL) {
      cx_http_reply_error(req, CX_HTTP_BAD_INPUT, k, "%s: unknown field", k);
      return -1;
    }
  }
  return 0;
}

int cx__admin_register(struct cx_admin *a, const struct cx__admin_route *r,
                       size_t n)
{
  for (size_t i = 0; i < n; i++) {
    unsigned flags = strcmp(r[i].method, "POST") == 0 ? CX_HTTP_F_JSON : 0;
    int rc = cx_http_route(a->http, r[i].method, r[i].path, flags, r[i].fn, a);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int cx_admin_create(const struct cx_admin_opts *opts, struct cx_admin **out,
                    char *err)
{
  struct cx_admin *a = cx_calloc(1, sizeof *a);
  int rc;

  *out = NULL;
  if (a == NULL)
    return -ENOMEM;
  a->cfg = opts->cfg;
  a->store = opts->store;
  a->coord = opts->coord;
  snprintf(a->prefix, sizeof a->prefix, "%s", opts->cfg->etcd_prefix);
  size_t pl = strlen(a->prefix);
  while (pl > 0 && a->prefix[pl - 1] == '/')
    a->prefix[--pl] = '\0';

  struct cx_http_opts hopts = {
      .listen = opts->listen ? opts->listen : opts->cfg->listen,
      .threads = (unsigned)opts->cfg->http_threads,
  };
  rc = cx_http_create(&hopts, &a->http, err);
  if (rc != 0)
    goto err;
  if ((rc = cx__admin_routes_users(a)) != 0 ||
      (rc = cx__admin_routes_jobs(a)) != 0 ||
      (rc = cx__admin_routes_nodes(a)) != 0) {
    cx_err_set(err, "registering routes: %s", cx_strerror(rc));
    goto err;
  }
  *out = a;
  return 0;
err:
  cx_http_destroy(a->http);
  cx_free(a);
  return rc;
}

int cx_admin_start(struct cx_admin *a, char *err)
{
  int rc = cx_http_start(a->http, err);
  if (rc == 0) {
    a->started = 1;
    CX_LOG(CX_LOG_INFO, "admin", "API listening on port %u",
           cx_http_port(a->http));
  }
  return rc;
}

unsigned cx_admin_port(const struct cx_admin *a)
{
  return cx_http_port(a->http);
}

void cx_admin_stop(struct cx_admin *a)
{
  if (a != NULL && a->started) {
    cx_http_stop(a->http);
    a->started = 0;
  }
}

void cx_admin_destroy(struct cx_admin *a)
{
  if (a == NULL)
    return;
  cx_admin_stop(a);
  cx_http_destroy(a->http);
  cx_free(a);
}

/* A random password of 24 characters from an unambiguous alphabet. */
static int random_password(char *out, size_t len)
{
  static const char alphabet[] =
      "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  unsigned char raw[24];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ssize_t n = read(fd, raw, sizeof raw);
  close(fd);
  if (n != (ssize_t)sizeof raw || len < sizeof raw + 1)
    return -EIO;
  for (size_t i = 0; i < sizeof raw; i++)
    out[i] = alphabet[raw[i] % (sizeof alphabet - 1)];
  out[sizeof raw] = '\0';
  return 0;
}

int cx_admin_bootstrap(struct cx_store *store, const char *data_dir,
                       int *created, char *err)
{
  char password[32], hash[CX_STORE_HASH_LEN], token[CX_STORE_TOKEN_LEN];
  char path[4096];
  int64_t count = 0;
  int rc;

  *created = 0;
  if ((rc = cx_store_user_count(store, &count, err)) != 0)
    return rc;
  if (count > 0)
    return 0;
  if ((rc = random_password(password, sizeof password)) != 0 ||
      (rc = cx_store_token_generate(token)) != 0) {
    cx_err_set(err, "no randomness: %s", cx_strerror(rc));
    return rc;
  }
  if ((rc = cx_store_password_hash(password, hash, err)) != 0)
    return rc;
  /* Write the file first: a user whose password nobody knows is worse
   * than a file with credentials that never got used. */
  if ((size_t)snprintf(path, sizeof path, "%s/initial-admin.txt", data_dir) >=
      sizeof path) {
    cx_err_set(err, "data_dir too long");
    return -ENAMETOOLONG;
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = -errno;
    cx_err_set(err, "%s: %s", path, strerror(errno));
    return rc;
  }
  fchmod(fd, 0600);
  char text[512];
  int len = snprintf(text, sizeof text,
                     "username = admin\npassword = %s\ntoken = %s\n", password,
                     token);
  if (write(fd, text, (size_t)len) != len || fsync(fd) != 0) {
    rc = -errno;
    close(fd);
    cx_err_set(err, "%s: %s", path, strerror(-rc));
    return rc;
  }
  close(fd);

  struct cx_user u = {0};
  u.username = "admin";
  u.password_hash = hash;
  u.role = "admin";
  u.email = "";
  u.feishu_id = "";
  if ((rc = cx_store_user_create(store, &u, err)) != 0)
    return rc == CX_EEXISTS ? 0 : rc; /* another admin won the race */
  if ((rc = cx_store_token_create(store, token, u.id, "api", 0, err)) != 0)
    return rc;
  *created = 1;
  return 0;
}
