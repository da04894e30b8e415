/*
 * The API client: one curl easy handle per cx_client, reused so that a
 * command making many calls (job ls asks each job's last run) keeps one
 * connection.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "client/client.h"
#include "util/util.h"

struct cx_client {
  CURL *curl;
  char *base; /* server without a trailing '/' */
  char *auth; /* "Authorization: Bearer ...", or NULL */
  char *cacert;
  long connect_timeout_ms, timeout_ms;
  char curl_err[CURL_ERROR_SIZE];
};

static int url_ok(const char *s, char *err)
{
  size_t n = strlen(s);
  const char *host;
  if (strncmp(s, "http://", 7) == 0)
    host = s + 7;
  else if (strncmp(s, "https://", 8) == 0)
    host = s + 8;
  else {
    cx_err_set(err, "server: '%.200s' is not an http:// or https:// URL", s);
    return -1;
  }
  if (n > 2048 || *host == '\0' || *host == '/') {
    cx_err_set(err, "server: '%.200s' names no host", s);
    return -1;
  }
  for (const char *p = s; *p; p++) {
    if (*p == '?' || *p == '#' || (unsigned char)*p <= ' ' || *p == 0x7f) {
      cx_err_set(err,
                 "server: '%.200s' must be a base URL (no query, fragment "
                 "or spaces)",
                 s);
      return -1;
    }
  }
  return 0;
}

int cx_client_create(const struct cx_client_conf *conf, struct cx_client **out,
                     char *err)
{
  *out = NULL;
  if (conf->server == NULL || conf->server[0] == '\0') {
    cx_err_set(err, "server: no server given");
    return CX_CLIENT_USAGE;
  }
  if (url_ok(conf->server, err) != 0)
    return CX_CLIENT_USAGE;
  if (conf->token != NULL) {
    for (const char *p = conf->token; *p; p++)
      if ((unsigned char)*p <= ' ' || *p == 0x7f) {
        cx_err_set(err, "token: must be printable, without spaces");
        return CX_CLIENT_USAGE;
      }
    if (strlen(conf->token) > 1024) {
      cx_err_set(err, "token: longer than 1024 bytes");
      return CX_CLIENT_USAGE;
    }
  }
  struct cx_client *c = cx_calloc(1, sizeof *c);
  if (c == NULL)
    return -ENOMEM;
  c->base = cx_strdup(conf->server);
  if (c->base == NULL)
    goto nomem;
  size_t n = strlen(c->base);
  while (n > 0 && c->base[n - 1] == '/')
    c->base[--n] = '\0';
  if (conf->token != NULL && conf->token[0] != '\0') {
    size_t len = strlen(conf->token) + 32;
    c->auth = cx_malloc(len);
    if (c->auth == NULL)
      goto nomem;
    snprintf(c->auth, len, "Authorization: Bearer %s", conf->token);
  }
  if (conf->cacert != NULL && conf->cacert[0] != '\0' &&
      (c->cacert = cx_strdup(conf->cacert)) == NULL)
    goto nomem;
  c->connect_timeout_ms =
      conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : 10000;
  c->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 60000;
  c->curl = curl_easy_init();
  if (c->curl == NULL)
    goto nomem;
  *out = c;
  return CX_CLIENT_OK;
nomem:
  cx_client_destroy(c);
  cx_err_set(err, "out of memory");
  return -ENOMEM;
}

void cx_client_destroy(struct cx_client *c)
{
  if (c == NULL)
    return;
  if (c->curl != NULL)
    curl_easy_cleanup(c->curl);
  if (c->auth != NULL) {
    explicit_bzero(c->auth, strlen(c->auth));
    cx_free(c->auth);
  }
  cx_free(c->base);
  cx_free(c->cacert);
  cx_free(c);
}

void cx_client_result_free(struct cx_client_result *r)
{
  json_decref(r->data);
  r->data = NULL;
}

static size_t sink(char *p, size_t size, size_t n, void *ctx)
{
  struct cx_buf *b = ctx;
  if (b->len + size * n > CX_CLIENT_MAX_REPLY)
    return 0; /* curl stops with CURLE_WRITE_ERROR */
  cx_buf_append(b, p, size * n);
  return cx_buf_failed(b) ? 0 : size * n;
}

/* Copies a string member of the envelope into dst (cut to fit). */
static void member(const json_t *env, const char *key, char *dst, size_t cap)
{
  const char *s = json_string_value(json_object_get(env, key));
  snprintf(dst, cap, "%s", s != NULL ? s : "");
}

/* Decodes the envelope in b into r; the outcome. */
static int decode(const struct cx_buf *b, struct cx_client_result *r)
{
  json_error_t jerr;
  json_t *env = b->data != NULL ? json_loadb(b->data, b->len, 0, &jerr) : NULL;
  json_t *code = json_object_get(env, "code");
  if (!json_is_object(env) || !json_is_integer(code)) {
    json_decref(env);
    snprintf(r->msg, sizeof r->msg,
             "HTTP %ld with a reply that is not the Cronix API's "
             "(is the URL the admin's?)",
             r->http_status);
    return CX_CLIENT_UNREACHABLE;
  }
  r->code = (long)json_integer_value(code);
  member(env, "msg", r->msg, sizeof r->msg);
  member(env, "field", r->field, sizeof r->field);
  r->data = json_incref(json_object_get(env, "data"));
  json_decref(env);
  if (r->code == 0 && r->http_status >= 200 && r->http_status < 300)
    return CX_CLIENT_OK;
  if (r->code == 0)
    r->code = -1; /* an error status with code 0: still a refusal */
  if (r->msg[0] == '\0')
    snprintf(r->msg, sizeof r->msg, "HTTP %ld", r->http_status);
  return CX_CLIENT_REFUSED;
}

int cx_client_call(struct cx_client *c, const char *path, const json_t *body,
                   struct cx_client_result *r)
{
  struct cx_buf reply = {0};
  struct curl_slist *h = NULL;
  char *text = NULL, *url = NULL;
  int rc = CX_CLIENT_UNREACHABLE;

  memset(r, 0, sizeof *r);
  if (path == NULL || path[0] != '/') {
    snprintf(r->msg, sizeof r->msg, "path must start with '/'");
    return CX_CLIENT_USAGE;
  }
  size_t ulen = strlen(c->base) + strlen(path) + 1;
  url = cx_malloc(ulen);
  if (body != NULL)
    text = json_dumps(body, JSON_COMPACT);
  if (url == NULL || (body != NULL && text == NULL)) {
    snprintf(r->msg, sizeof r->msg, "out of memory");
    rc = -ENOMEM;
    goto out;
  }
  snprintf(url, ulen, "%s%s", c->base, path);
  if (c->auth != NULL)
    h = curl_slist_append(h, c->auth);
  h = curl_slist_append(h, "Accept: application/json");
  if (body != NULL)
    h = curl_slist_append(h, "Content-Type: application/json");

  CURL *e = c->curl;
  curl_easy_reset(e);
  c->curl_err[0] = '\0';
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_err);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  /* The token goes only where it was meant to: never follow redirects. */
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "cronix-cli");
  if (c->cacert != NULL)
    curl_easy_setopt(e, CURLOPT_CAINFO, c->cacert);
  if (text != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &reply);

  CURLcode cc = curl_easy_perform(e);
  if (cc != CURLE_OK) {
    if (cc == CURLE_WRITE_ERROR)
      snprintf(r->msg, sizeof r->msg, "%s: reply larger than %u bytes", url,
               CX_CLIENT_MAX_REPLY);
    else
      snprintf(r->msg, sizeof r->msg, "%s: %s", c->base,
               c->curl_err[0] ? c->curl_err : curl_easy_strerror(cc));
    goto out;
  }
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->http_status);
  rc = decode(&reply, r);
out:
  curl_slist_free_all(h);
  if (text != NULL)
    free(text); /* jansson's allocator */
  cx_free(url);
  cx_buf_free(&reply);
  return rc;
}

int cx_client_query(char *path, size_t cap, const char *name, const char *value)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(path);
  char sep = strchr(path, '?') != NULL ? '&' : '?';
  int w = snprintf(path + n, cap - n, "%c%s=", sep, name);
  if (w < 0 || (size_t)w >= cap - n) {
    path[n] = '\0';
    return -ENOSPC;
  }
  size_t at = n + (size_t)w;
  for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
    int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL;
    if (at + (plain ? 1 : 3) >= cap) {
      path[n] = '\0';
      return -ENOSPC;
    }
    if (plain) {
      path[at++] = (char)*p;
    } else {
      path[at++] = '%';
      path[at++] = hex[*p >> 4];
      path[at++] = hex[*p & 15];
    }
  }
  path[at] = '\0';
  return 0;
}
