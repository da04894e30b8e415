/*
 * The admin's life cycle and the helpers shared by the route files:
 * authentication, backend error replies, coordination keys, JSON field
 * readers, paging, and the first-start admin user.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin-int.h"
#include "admin/alerts.h"
#include "webui/webui.h"
#include "admin/cluster.h"
#include "cron/cron.h"

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

/* The auth cache. A hit skips the token and user lookups (two store round
 * trips per request). Trade-off: a logout, user deletion or role change
 * made through ANOTHER admin process takes effect here within
 * server.auth_cache_ttl (default 1 s); through this admin, at once (every
 * such route flushes). A token's expiry is checked on every hit, so an
 * expired token is refused exactly at its expiry. Only successful lookups
 * are cached, so a new token works at once. A fill that began before a
 * flush is dropped (auth_gen), so a stale read cannot outlive a flush. */
static int token_sha(const char *token, unsigned char out[32])
{
  unsigned int n = 0;
  return EVP_Digest(token, strlen(token), out, &n, EVP_sha256(), NULL) == 1 &&
                 n == 32
             ? 0
             : -EIO;
}

static int auth_cached(struct cx_admin *a, const unsigned char h[32],
                       struct cx__admin_who *who, int64_t *expires)
{
  cx_mono ttl = (cx_mono)a->cfg->auth_cache_ttl * 1000000;
  cx_mono now = cx_mono_now();
  int hit = 0;
  pthread_mutex_lock(&a->auth_mu);
  struct cx__auth_entry *set = a->auth[h[0] % CX__AUTH_SETS];
  for (int i = 0; i < CX__AUTH_WAYS; i++) {
    struct cx__auth_entry *e = &set[i];
    if (e->at != 0 && now - e->at < ttl && memcmp(e->hash, h, 32) == 0) {
      who->user_id = e->user_id;
      who->role = (enum cx_role)e->role;
      memcpy(who->username, e->username, sizeof who->username);
      *expires = e->expires;
      hit = 1;
      break;
    }
  }
  pthread_mutex_unlock(&a->auth_mu);
  return hit;
}

static void auth_fill(struct cx_admin *a, const unsigned char h[32],
                      const struct cx__admin_who *who, int64_t expires,
                      uint64_t gen)
{
  pthread_mutex_lock(&a->auth_mu);
  if (gen == a->auth_gen) {
    struct cx__auth_entry *set = a->auth[h[0] % CX__AUTH_SETS], *e = &set[0];
    for (int i = 0; i < CX__AUTH_WAYS; i++) {
      if (memcmp(set[i].hash, h, 32) == 0 || set[i].at == 0) {
        e = &set[i];
        break;
      }
      if (set[i].at < e->at)
        e = &set[i];
    }
    memcpy(e->hash, h, 32);
    e->user_id = who->user_id;
    e->role = (int)who->role;
    e->expires = expires;
    memcpy(e->username, who->username, sizeof e->username);
    e->at = cx_mono_now();
  }
  pthread_mutex_unlock(&a->auth_mu);
}

void cx__admin_auth_flush(struct cx_admin *a)
{
  pthread_mutex_lock(&a->auth_mu);
  a->auth_gen++;
  memset(a->auth, 0, sizeof a->auth);
  pthread_mutex_unlock(&a->auth_mu);
}

/* Reads token's user from the store into who; on failure replies. */
static int auth_lookup(struct cx_admin *a, struct cx_http_req *req,
                       const char *token, struct cx__admin_who *who,
                       int64_t *expires)
{
  char err[CX_ERR_LEN];
  struct cx_token tok;
  struct cx_user user;
  int rc = cx_store_token_lookup(a->store, token, cx_wall_s(), &tok, err);
  if (rc == CX_ENOTFOUND) {
    cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, NULL,
                        "invalid or expired token");
    return -1;
  }
  if (rc != 0) {
    /* The caller is not known yet: the detail goes to the log only. */
    CX_LOG(CX_LOG_ERROR, "admin", "token lookup: %s", err);
    cx__admin_reply_backend_error(req, rc, "token", NULL);
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
    CX_LOG(CX_LOG_ERROR, "admin", "token's user lookup: %s", err);
    cx__admin_reply_backend_error(req, rc, "user", NULL);
    return -1;
  }
  who->user_id = user.id;
  who->role = cx__admin_role_parse(user.role);
  snprintf(who->username, sizeof who->username, "%s",
           user.username ? user.username : "");
  *expires = tok.expires;
  cx_user_clear(&user);
  return 0;
}

int cx__admin_auth(struct cx_admin *a, struct cx_http_req *req,
                   enum cx_role need, struct cx__admin_who *who)
{
  struct cx__admin_who w;
  unsigned char h[32];
  int64_t expires = 0;
  const char *hdr = cx_http_req_header(req, "Authorization");
  size_t note_len = 0;
  const void *note = cx_http_req_note(req, &note_len);

  if (note != NULL && note_len == sizeof w) {
    /* the gate authenticated this request before its body was read */
    memcpy(&w, note, sizeof w);
    goto check_role;
  }
  if (hdr == NULL || strncasecmp(hdr, "Bearer ", 7) != 0 || hdr[7] == '\0' ||
      strlen(hdr + 7) > 256) {
    cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, NULL,
                        "missing credentials: send Authorization: Bearer "
                        "<token> (POST /login gives one)");
    return -1;
  }
  memset(&w, 0, sizeof w);
  int cache = a->cfg->auth_cache_ttl > 0 && token_sha(hdr + 7, h) == 0;
  if (!cache || !auth_cached(a, h, &w, &expires)) {
    pthread_mutex_lock(&a->auth_mu);
    uint64_t gen = a->auth_gen;
    pthread_mutex_unlock(&a->auth_mu);
    if (auth_lookup(a, req, hdr + 7, &w, &expires) != 0)
      return -1;
    if (cache)
      auth_fill(a, h, &w, expires, gen);
  } else if (expires > 0 && expires <= cx_wall_s()) {
    cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, NULL,
                        "invalid or expired token");
    return -1;
  }
  w.token = hdr + 7; /* set here, never cached: it lives in this request */
check_role:
  if (who != NULL)
    *who = w;
  if (w.role < need) {
    cx_http_reply_error(req, CX_HTTP_FORBIDDEN, NULL,
                        "role %s may not do this (needs %s)",
                        cx__admin_role_name(w.role), cx__admin_role_name(need));
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

int cx__admin_key_is(const struct cx_admin *a, enum cx_key_kind kind,
                     const char *key, size_t len, struct cx_key *out)
{
  return cx_key_parse(a->prefix, key, len, out) == 0 && out->kind == kind;
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

int cx__admin_json_time_ms(struct cx_http_req *req, const json_t *body,
                           const char *name, int64_t *out)
{
  json_t *v = json_object_get(body, name);
  if (json_is_string(v)) {
    int64_t t;
    if (cx_time_parse(json_string_value(v), &t) != 0 || t < 0 ||
        t > INT64_MAX / 1000) {
      cx_http_reply_error(req, CX_HTTP_BAD_INPUT, name,
                          "%s: not an RFC 3339 time", name);
      return -1;
    }
    *out = t * 1000;
    return 0;
  }
  return cx__admin_json_int(req, body, name, 0, INT64_MAX / 2, out) < 0 ? -1
                                                                        : 0;
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

/* The gate (cx_http_set_gate): every route but the public ones needs a
 * valid token before its body is read, so nobody unauthenticated can make
 * the admin buffer or parse a body. The role is the handler's to check;
 * the identity found here is left in the request for it. */
static int auth_gate(struct cx_http_req *req, void *ctx)
{
  struct cx__admin_who w;
  if (cx__admin_auth(ctx, req, CX_ROLE_NONE, &w) != 0)
    return -1;
  return cx_http_req_set_note(req, &w, sizeof w) == 0 ? 0 : -1;
}

/* The routes anyone may call: logging in, the health probe, the API
 * description, and /metrics
 * when server.metrics_public says so. Every other route is gated. */
static int is_public(const struct cx_admin *a, const char *path)
{
  return strcmp(path, "/login") == 0 || strcmp(path, "/healthz") == 0 ||
         strcmp(path, "/openapi.json") == 0 ||
         (strcmp(path, "/metrics") == 0 && a->cfg->metrics_public);
}

int cx__admin_register(struct cx_admin *a, const struct cx__admin_route *r,
                       size_t n)
{
  for (size_t i = 0; i < n; i++) {
    unsigned flags = strcmp(r[i].method, "POST") == 0 ? CX_HTTP_F_JSON : 0;
    if (is_public(a, r[i].path))
      flags |= CX_HTTP_F_PUBLIC;
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
  a->live = opts->live;
  if ((rc = cx__admin_proxy_init(a)) != 0) {
    cx__admin_proxy_free(a);
    cx_free(a);
    return rc;
  }
  a->metrics = opts->metrics;
  a->metrics_arg = opts->metrics_arg;
  pthread_mutex_init(&a->auth_mu, NULL);
  pthread_mutex_init(&a->total_mu, NULL);
  pthread_mutex_init(&a->alive.mu, NULL);
  snprintf(a->prefix, sizeof a->prefix, "%s", opts->cfg->etcd_prefix);
  size_t pl = strlen(a->prefix);
  while (pl > 0 && a->prefix[pl - 1] == '/')
    a->prefix[--pl] = '\0';

  struct cx_http_opts hopts = {
      .listen = opts->listen ? opts->listen : opts->cfg->listen,
      .threads = (unsigned)opts->cfg->http_threads,
      .tls_cert = opts->cfg->tls_cert[0] ? opts->cfg->tls_cert : NULL,
      .tls_key = opts->cfg->tls_key[0] ? opts->cfg->tls_key : NULL,
  };
  rc = cx_http_create(&hopts, &a->http, err);
  if (rc != 0)
    goto err;
  cx_http_set_gate(a->http, auth_gate, a);
  if ((rc = cx__admin_routes_users(a)) != 0 ||
      (rc = cx__admin_routes_jobs(a)) != 0 ||
      (rc = cx__admin_routes_nodes(a)) != 0 ||
      (rc = cx__admin_routes_notify(a)) != 0 ||
      (rc = cx__admin_routes_runs(a)) != 0 ||
      (rc = cx__admin_routes_audit(a)) != 0 ||
      (rc = cx__admin_routes_output(a)) != 0 ||
      (rc = cx__admin_routes_cron(a)) != 0 ||
      (rc = cx_webui_register(a->http, a->cfg->web_root[0] ? a->cfg->web_root
                                                           : NULL)) != 0) {
    cx_err_set(err, "registering routes: %s", cx_strerror(rc));
    goto err;
  }
  *out = a;
  return 0;
err:
  cx_http_destroy(a->http);
  cx__admin_proxy_free(a);
  cx_free(a);
  return rc;
}

int cx_admin_start(struct cx_admin *a, char *err)
{
  int rc = cx__admin_alive_start(a, err);
  if (rc != 0)
    return rc;
  rc = cx_http_start(a->http, err);
  if (rc == 0 && (rc = cx__cluster_start(a, err)) != 0)
    cx_http_stop(a->http);
  if (rc == 0 && (rc = cx__alerts_start(a, err)) != 0) {
    cx__cluster_stop(a);
    cx_http_stop(a->http);
  }
  if (rc != 0)
    cx__admin_alive_stop(a);
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
    cx__alerts_stop(a);
    cx__cluster_stop(a);
    cx_http_stop(a->http);
    cx__admin_proxy_stop(a);
    cx__admin_alive_stop(a);
    a->started = 0;
  }
}

void cx_admin_destroy(struct cx_admin *a)
{
  if (a == NULL)
    return;
  cx_admin_stop(a);
  cx__cluster_free(a);
  cx_http_destroy(a->http);
  cx__admin_proxy_free(a);
  pthread_mutex_destroy(&a->auth_mu);
  pthread_mutex_destroy(&a->total_mu);
  pthread_mutex_destroy(&a->alive.mu);
  cx_free(a);
}

/* A random password of 24 characters from an unambiguous alphabet. */
static int random_password(char *out, size_t len)
{
  static const char alphabet[] =
      "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  unsigned char raw[24];
  int rc = cx_random_bytes(raw, sizeof raw);
  if (rc != 0)
    return rc;
  if (len < sizeof raw + 1)
    return -EIO;
  for (size_t i = 0; i < sizeof raw; i++)
    out[i] = alphabet[raw[i] % (sizeof alphabet - 1)];
  out[sizeof raw] = '\0';
  return 0;
}

/* Writes the first admin's credentials to a new file at path: O_EXCL and
 * O_NOFOLLOW, so a file or symlink planted there (by whoever could write
 * the data dir) is refused, never followed or overwritten. */
static int write_credentials(const char *path, const char *password,
                             const char *token, int64_t expires, char *err)
{
  char text[768], when[32] = "never";
  int fd =
      open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    int rc = -errno;
    if (errno == EEXIST || errno == ELOOP)
      cx_err_set(err,
                 "%s already exists (left from an earlier first start, or "
                 "planted): refusing to overwrite or follow it; remove it "
                 "and start again",
                 path);
    else
      cx_err_set(err, "%s: %s", path, strerror(errno));
    return rc;
  }
  if (expires > 0) {
    struct cx_civil c;
    cx_civil_from_seconds(expires, &c);
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year,
             c.month, c.day, c.hour, c.min, c.sec);
  }
  int len = snprintf(text, sizeof text,
                     "username = admin\npassword = %s\ntoken = %s\n"
                     "token_expires = %s\n"
                     "# Log in, change this password (that also revokes the "
                     "token above),\n# then delete this file.\n",
                     password, token, when);
  int rc = 0;
  if (write(fd, text, (size_t)len) != len || fsync(fd) != 0) {
    rc = errno != 0 ? -errno : -EIO;
    cx_err_set(err, "%s: %s", path, strerror(-rc));
  }
  explicit_bzero(text, sizeof text);
  close(fd);
  if (rc != 0)
    unlink(path);
  return rc;
}

int cx_admin_bootstrap(struct cx_store *store, const char *data_dir,
                       int64_t token_ttl, int *created, char *err)
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
    goto out;
  if ((size_t)snprintf(path, sizeof path, "%s/initial-admin.txt", data_dir) >=
      sizeof path) {
    cx_err_set(err, "data_dir too long");
    rc = -ENAMETOOLONG;
    goto out;
  }
  /* Write the file first: a user whose password nobody knows is worse
   * than a file with credentials that never got used (removed below). */
  int64_t expires = token_ttl > 0 ? cx_wall_s() + token_ttl : 0;
  if ((rc = write_credentials(path, password, token, expires, err)) != 0)
    goto out;
  struct cx_user u = {0};
  u.username = "admin";
  u.password_hash = hash;
  u.role = "admin";
  u.email = "";
  u.feishu_id = "";
  if ((rc = cx_store_user_create(store, &u, err)) != 0) {
    unlink(path); /* credentials that do not work */
    if (rc == CX_EEXISTS)
      rc = 0; /* another admin process won the race */
    goto out;
  }
  /* The password in the file works from here on, token or not. */
  *created = 1;
  rc = cx_store_token_create(store, token, u.id, "initial", expires, err);
out:
  explicit_bzero(password, sizeof password);
  explicit_bzero(token, sizeof token);
  return rc;
}
