/*
 * coord etcd backend: etcd v3 through its gRPC-JSON gateway (/v3/...) over
 * HTTP/1.1 with libcurl and jansson. Facts relied on are in
 * shared/reference/tech.md §1: keys/values are base64, int64s come back as
 * strings, default fields are left out of replies, stream messages are
 * newline-framed, a keep-alive is one POST, a compacted watch start gets
 * `canceled` + `compact_revision`.
 *
 * Unary calls take an easy handle from a small mutex-protected pool (so a
 * thread never shares a connection with another at the same time) and try
 * the endpoints in turn starting with the last one that answered. A write
 * that may have reached the server is retried on another endpoint only
 * where repeating it is harmless (put, delete, lease calls); a txn is
 * retried only when the connection was never made. Lease keep-alives use
 * a handle (so a connection) of their own.
 *
 * Each watch has its own thread, easy handle and multi handle (so cancel
 * can wake it at once with curl_multi_wakeup). It resumes from the last
 * delivered revision + 1 after any disconnect, re-lists the prefix after a
 * compaction, and probes the server when the stream has been silent for
 * watch_idle_ms (see "Liveness" above watch_connect).
 */
#include "coord-int.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define MAX_ENDPOINTS 16
#define MAX_ENDPOINT_LEN 1024
#define POOL_MAX 8

struct etcd {
  struct cx__coord_conf conf;
  char *eps[MAX_ENDPOINTS];
  int nep;
  _Atomic int cur; /* the endpoint that answered last */
  pthread_mutex_t mu;
  CURL *pool[POOL_MAX];
  int npool;
  char *token; /* auth token, NULL without auth */
  /* Lease keep-alives have a connection of their own, so a renewal never
   * waits for a free pooled handle or behind a big range. */
  pthread_mutex_t ka_mu;
  CURL *ka;
};

/* ---- base64 (standard alphabet, padded) -------------------------------- */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const void *data, size_t len, size_t *outlen)
{
  const unsigned char *p = data;
  size_t n = (len + 2) / 3 * 4;
  char *out = cx_malloc(n + 1), *o = out;
  if (out == NULL)
    return NULL;
  size_t i = 0;
  for (; i + 2 < len; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *o++ = b64chars[v >> 18 & 63];
    *o++ = b64chars[v >> 12 & 63];
    *o++ = b64chars[v >> 6 & 63];
    *o++ = b64chars[v & 63];
  }
  if (i < len) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)p[i + 1] << 8;
    *o++ = b64chars[v >> 18 & 63];
    *o++ = b64chars[v >> 12 & 63];
    *o++ = i + 1 < len ? b64chars[v >> 6 & 63] : '=';
    *o++ = '=';
  }
  *o = '\0';
  *outlen = n;
  return out;
}

static int b64_val(unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Decodes into a fresh NUL-terminated buffer. CX_EPROTO on bad input. */
static int b64_decode(const char *s, size_t len, char **out, size_t *outlen)
{
  if (len % 4 != 0)
    return CX_EPROTO;
  char *buf = cx_malloc(len / 4 * 3 + 1);
  if (buf == NULL)
    return -ENOMEM;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      unsigned char c = (unsigned char)s[i + k];
      if (c == '=' && i + 4 == len && k >= 2) {
        v[k] = 0;
        pad++;
      } else if (pad || (v[k] = b64_val(c)) < 0) {
        cx_free(buf);
        return CX_EPROTO;
      }
    }
    uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)v[2] << 6 | (uint32_t)v[3];
    buf[o++] = (char)(x >> 16);
    if (pad < 2)
      buf[o++] = (char)(x >> 8 & 0xff);
    if (pad < 1)
      buf[o++] = (char)(x & 0xff);
  }
  buf[o] = '\0';
  *out = buf;
  *outlen = o;
  return 0;
}

/* ---- JSON helpers ------------------------------------------------------ */

/* Frees json_dumps output with jansson's own free, in case the program
 * installed its allocators. */
static void jfree(void *p)
{
  json_malloc_t m;
  json_free_t f;
  json_get_alloc_funcs(&m, &f);
  f(p);
}

/* int64 field sent as a string (or a number); missing = 0. */
static int j_i64(const json_t *obj, const char *name, int64_t *out)
{
  json_t *v = json_object_get(obj, name);
  *out = 0;
  if (v == NULL || json_is_null(v))
    return 0;
  if (json_is_integer(v)) {
    *out = (int64_t)json_integer_value(v);
    return 0;
  }
  if (json_is_string(v) &&
      cx_parse_int64(json_string_value(v), INT64_MIN, INT64_MAX, out) == 0)
    return 0;
  return CX_EPROTO;
}

/* base64 bytes field; missing = empty. */
static int j_bytes(const json_t *obj, const char *name, char **out, size_t *len)
{
  json_t *v = json_object_get(obj, name);
  if (v == NULL || json_is_null(v))
    return b64_decode("", 0, out, len);
  if (!json_is_string(v))
    return CX_EPROTO;
  return b64_decode(json_string_value(v), json_string_length(v), out, len);
}

static int j_set_b64(json_t *obj, const char *name, const void *data,
                     size_t len)
{
  size_t n;
  char *s = b64_encode(data, len, &n);
  if (s == NULL)
    return -ENOMEM;
  int rc = json_object_set_new(obj, name, json_stringn(s, n));
  cx_free(s);
  return rc == 0 ? 0 : -ENOMEM;
}

static int j_set_i64(json_t *obj, const char *name, int64_t v)
{
  char s[32];
  snprintf(s, sizeof s, "%" PRId64, v);
  return json_object_set_new(obj, name, json_string(s)) == 0 ? 0 : -ENOMEM;
}

/* Sets key (and range_end for a prefix) the way etcd expects. */
static int j_set_range(json_t *obj, const void *key, size_t klen, int prefix)
{
  if (prefix && klen == 0) {
    /* The whole key space: key "\0", range_end "\0". */
    if (j_set_b64(obj, "key", "", 1) || j_set_b64(obj, "range_end", "", 1))
      return -ENOMEM;
    return 0;
  }
  if (j_set_b64(obj, "key", key, klen))
    return -ENOMEM;
  if (prefix) {
    unsigned char *end = cx_malloc(klen);
    if (end == NULL)
      return -ENOMEM;
    size_t elen = cx__coord_prefix_end(key, klen, end);
    int rc = j_set_b64(obj, "range_end", end, elen);
    cx_free(end);
    return rc;
  }
  return 0;
}

static int64_t header_rev(const json_t *reply)
{
  int64_t rev = 0;
  j_i64(json_object_get(reply, "header"), "revision", &rev);
  return rev;
}

/* The revision after rev, which comes from the wire: a hostile or broken
 * reply may say INT64_MAX (the fuzzer did), and one past it overflows. */
static int64_t rev_after(int64_t rev)
{
  return rev < INT64_MAX ? rev + 1 : INT64_MAX;
}

/* Appends one etcd KeyValue to kvs. */
static int push_kv(struct cx_coord_kvs *kvs, const json_t *kv)
{
  char *k = NULL, *v = NULL;
  size_t kl = 0, vl = 0;
  int64_t cr, mr, ver, lease;
  int rc;
  if (!json_is_object(kv))
    return CX_EPROTO;
  if ((rc = j_bytes(kv, "key", &k, &kl)) ||
      (rc = j_bytes(kv, "value", &v, &vl)))
    goto out;
  if (j_i64(kv, "create_revision", &cr) || j_i64(kv, "mod_revision", &mr) ||
      j_i64(kv, "version", &ver) || j_i64(kv, "lease", &lease)) {
    rc = CX_EPROTO;
    goto out;
  }
  rc = cx__coord_kvs_push(kvs, k, kl, v, vl, cr, mr, ver, lease);
out:
  cx_free(k);
  cx_free(v);
  return rc;
}

/* ---- HTTP -------------------------------------------------------------- */

struct sink {
  struct cx_buf buf;
  size_t cap;
  int too_big;
};

static size_t sink_write(char *p, size_t size, size_t n, void *ud)
{
  struct sink *s = ud;
  size_t len = size * n;
  if (s->buf.len + len > s->cap) {
    s->too_big = 1;
    return 0;
  }
  cx_buf_append(&s->buf, p, len);
  return cx_buf_failed(&s->buf) ? 0 : len;
}

static void curl_init_once(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

static CURL *pool_get(struct etcd *e)
{
  CURL *h = NULL;
  pthread_mutex_lock(&e->mu);
  if (e->npool > 0)
    h = e->pool[--e->npool];
  pthread_mutex_unlock(&e->mu);
  return h ? h : curl_easy_init();
}

static void pool_put(struct etcd *e, CURL *h)
{
  pthread_mutex_lock(&e->mu);
  if (e->npool < POOL_MAX) {
    e->pool[e->npool++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&e->mu);
  if (h)
    curl_easy_cleanup(h);
}

/* Options common to unary calls and watches. */
static void setup_handle(struct etcd *e, CURL *h, const char *url,
                         struct curl_slist *hdrs, const char *body, size_t len)
{
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)e->conf.connect_timeout_ms);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  /* Endpoints are cluster-internal: an http_proxy meant for the outside
   * world must not silently sit between a node and etcd. */
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  if (e->conf.cfg.ca_file)
    curl_easy_setopt(h, CURLOPT_CAINFO, e->conf.cfg.ca_file);
  if (e->conf.cfg.cert_file)
    curl_easy_setopt(h, CURLOPT_SSLCERT, e->conf.cfg.cert_file);
  if (e->conf.cfg.key_file)
    curl_easy_setopt(h, CURLOPT_SSLKEY, e->conf.cfg.key_file);
}

static struct curl_slist *make_headers(struct etcd *e, int with_token)
{
  struct curl_slist *h =
      curl_slist_append(NULL, "Content-Type: application/json");
  if (h == NULL)
    return NULL;
  /* No "Expect: 100-continue" round trip for big bodies. */
  struct curl_slist *t = curl_slist_append(h, "Expect:");
  if (t == NULL)
    goto fail;
  if (with_token) {
    pthread_mutex_lock(&e->mu);
    struct cx_buf b = {0};
    if (e->token) {
      cx_buf_puts(&b, "Authorization: ");
      cx_buf_puts(&b, e->token);
    }
    pthread_mutex_unlock(&e->mu);
    if (b.len) {
      t = cx_buf_failed(&b) ? NULL : curl_slist_append(h, b.data);
      cx_buf_free(&b);
      if (t == NULL)
        goto fail;
    }
  }
  return h;
fail:
  curl_slist_free_all(h);
  return NULL;
}

static int contains(const char *s, const char *needle)
{
  return s && strstr(s, needle) != NULL;
}

/* Error classes for the retry logic. */
enum { RETRY_NO, RETRY_NEXT, RETRY_REAUTH };

/* Maps an etcd error reply to a code; *retry says what to do. */
static int map_error(long status, const json_t *j, const char *where,
                     int *retry, char *err)
{
  int64_t code = 0;
  const char *msg = NULL;
  json_t *ev = json_object_get(j, "error");
  if (json_is_object(ev)) { /* in-band stream error */
    j_i64(ev, "grpc_code", &code);
    msg = json_string_value(json_object_get(ev, "message"));
  } else {
    j_i64(j, "code", &code);
    msg = json_string_value(json_object_get(j, "message"));
    if (msg == NULL)
      msg = json_string_value(ev);
  }
  if (msg == NULL)
    msg = "(no message)";
  *retry = RETRY_NO;
  cx_err_set(err, "etcd %s: HTTP %ld: %s", where, status, msg);
  if (code == 16 || status == 401 || contains(msg, "invalid auth token") ||
      contains(msg, "user name is empty")) {
    *retry = RETRY_REAUTH;
    return CX_EAUTH;
  }
  if (contains(msg, "authentication failed") || code == 7 ||
      contains(msg, "permission denied") || contains(msg, "auth"))
    return CX_EAUTH;
  if (code == 5)
    return CX_ENOTFOUND;
  if (contains(msg, "compacted"))
    return CX_ECOMPACTED;
  if (contains(msg, "too large") || code == 8)
    return CX_ETOOBIG;
  if (code == 14 || status == 503 || contains(msg, "no leader") ||
      contains(msg, "timed out")) {
    *retry = RETRY_NEXT;
    return CX_EUNAVAIL;
  }
  if (code == 3 || code == 11 || status == 400)
    return CX_EPARSE;
  return CX_EPROTO;
}

/* Connection-level failures where the request cannot have been applied. */
static int never_sent(CURLcode cc)
{
  return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
         cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_SSL_CONNECT_ERROR ||
         cc == CURLE_UNSUPPORTED_PROTOCOL;
}

static int authenticate(struct etcd *e, int idx, char *err);

/* POSTs body to path; on success *out is the parsed reply. safe = the
 * request may be repeated after a failure mid-flight. timeout_ms 0 = the
 * configured request timeout. own: a handle to use instead of the pool. */
static int call_ex(struct etcd *e, const char *path, json_t *body, int safe,
                   int with_token, int timeout_ms, CURL *own, json_t **out,
                   char *err)
{
  char *payload = json_dumps(body, JSON_COMPACT);
  CURL *h = own;
  struct sink s = {{0}, e->conf.max_reply_bytes, 0};
  int rc = CX_EUNAVAIL, reauthed = 0;
  char url[MAX_ENDPOINT_LEN + 64];

  *out = NULL;
  if (payload == NULL || (h == NULL && (h = pool_get(e)) == NULL)) {
    rc = -ENOMEM;
    goto out;
  }
  int start = e->cur;
  for (int tries = 0; tries < e->nep;) {
    int idx = (start + tries) % e->nep;
    struct curl_slist *hdrs = make_headers(e, with_token);
    if (hdrs == NULL) {
      rc = -ENOMEM;
      break;
    }
    snprintf(url, sizeof url, "%s%s", e->eps[idx], path);
    cx_buf_reset(&s.buf);
    s.too_big = 0;
    setup_handle(e, h, url, hdrs, payload, strlen(payload));
    curl_easy_setopt(
        h, CURLOPT_TIMEOUT_MS,
        (long)(timeout_ms > 0 ? timeout_ms : e->conf.request_timeout_ms));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (cc != CURLE_OK) {
      if (s.too_big) {
        cx_err_set(err, "etcd %s: reply larger than %zu bytes", url,
                   e->conf.max_reply_bytes);
        rc = CX_ETOOBIG;
        break;
      }
      cx_err_set(err, "etcd %s: %s", url, curl_easy_strerror(cc));
      rc = cc == CURLE_OUT_OF_MEMORY ? -ENOMEM : CX_EUNAVAIL;
      if (rc == CX_EUNAVAIL && (safe || never_sent(cc))) {
        tries++;
        continue;
      }
      break;
    }
    json_error_t jerr;
    json_t *j = json_loadb(s.buf.data ? s.buf.data : "", s.buf.len, 0, &jerr);
    if (j == NULL || !json_is_object(j)) {
      json_decref(j);
      cx_err_set(err, "etcd %s: HTTP %ld: reply is not a JSON object (%s)", url,
                 status, j ? "wrong type" : jerr.text);
      rc = CX_EPROTO;
      if (status == 404 || status >= 500) { /* not an etcd gateway? */
        tries++;
        continue;
      }
      break;
    }
    if (status == 200 && !json_is_string(json_object_get(j, "error"))) {
      e->cur = idx;
      *out = j;
      rc = 0;
      break;
    }
    int retry;
    rc = map_error(status, j, url, &retry, err);
    json_decref(j);
    if (retry == RETRY_REAUTH && e->conf.cfg.username && with_token &&
        !reauthed) {
      reauthed = 1;
      int arc = authenticate(e, idx, err);
      if (arc == 0)
        continue;
      rc = arc;
      break;
    }
    /* "request timed out" may still commit: only repeat what is safe. */
    if (retry == RETRY_NEXT && safe) {
      tries++;
      continue;
    }
    break;
  }
out:
  if (h && h != own)
    pool_put(e, h);
  jfree(payload);
  cx_buf_free(&s.buf);
  return rc;
}

static int call(struct etcd *e, const char *path, json_t *body, int safe,
                json_t **out, char *err)
{
  return call_ex(e, path, body, safe, 1, 0, NULL, out, err);
}

static int authenticate(struct etcd *e, int idx, char *err)
{
  json_t *body = json_object(), *reply = NULL;
  int rc = -ENOMEM;
  (void)idx;
  if (body == NULL ||
      json_object_set_new(body, "name", json_string(e->conf.cfg.username)) ||
      json_object_set_new(
          body, "password",
          json_string(e->conf.cfg.password ? e->conf.cfg.password : "")))
    goto out;
  rc = call_ex(e, "/v3/auth/authenticate", body, 1, 0, 0, NULL, &reply, err);
  if (rc == CX_EPARSE || rc == CX_EPROTO) {
    /* "authentication failed, invalid user ID or password" is code 3. */
    rc = CX_EAUTH;
  }
  if (rc != 0)
    goto out;
  const char *tok = json_string_value(json_object_get(reply, "token"));
  if (tok == NULL || tok[0] == '\0' || strlen(tok) > 4096 ||
      strpbrk(tok, "\r\n")) {
    cx_err_set(err, "etcd auth: no usable token in the reply");
    rc = CX_EPROTO;
    goto out;
  }
  char *t = cx_strdup(tok);
  if (t == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  pthread_mutex_lock(&e->mu);
  cx_free(e->token);
  e->token = t;
  pthread_mutex_unlock(&e->mu);
  rc = 0;
out:
  json_decref(body);
  json_decref(reply);
  return rc;
}

/* ---- open / close ------------------------------------------------------ */

/* Messages show ep with any password masked (cx_url_redact). */
static int check_endpoint(const char *ep, char *err)
{
  char shown[MAX_ENDPOINT_LEN + 8];
  cx_url_redact(ep, 0, shown, sizeof shown);
  for (const char *p = ep; *p; p++) {
    if ((unsigned char)*p <= ' ' || *p == 0x7f) {
      cx_err_set(err,
                 "coord endpoint \"%s\": contains a space or control "
                 "character",
                 shown);
      return CX_EPARSE;
    }
  }
  if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) {
    cx_err_set(err,
               "coord endpoint \"%s\": must start with http:// or "
               "https://",
               shown);
    return CX_EPARSE;
  }
  CURLU *u = curl_url();
  if (u == NULL)
    return -ENOMEM;
  int rc = 0;
  char *host = NULL, *path = NULL, *query = NULL, *user = NULL;
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, ep, 0);
  if (uc != CURLUE_OK) {
    cx_err_set(err, "coord endpoint \"%s\": %s", shown, curl_url_strerror(uc));
    rc = CX_EPARSE;
    goto out;
  }
  curl_url_get(u, CURLUPART_HOST, &host, 0);
  curl_url_get(u, CURLUPART_PATH, &path, 0);
  curl_url_get(u, CURLUPART_QUERY, &query, 0);
  curl_url_get(u, CURLUPART_USER, &user, 0);
  if (host == NULL || host[0] == '\0') {
    cx_err_set(err, "coord endpoint \"%s\": no host", shown);
    rc = CX_EPARSE;
  } else if (user != NULL) {
    /* Sent as HTTP basic auth, which etcd ignores; and a URL is printed
     * in too many places to hold a password. */
    cx_err_set(err,
               "coord endpoint \"%s\": no credentials in the URL; set "
               "etcd.username and etcd.password",
               shown);
    rc = CX_EPARSE;
  } else if ((path && strcmp(path, "/") != 0) || query) {
    cx_err_set(err,
               "coord endpoint \"%s\": must be scheme://host:port "
               "without a path or query",
               shown);
    rc = CX_EPARSE;
  }
out:
  curl_free(host);
  curl_free(path);
  curl_free(query);
  curl_free(user);
  curl_url_cleanup(u);
  return rc;
}

static int parse_endpoints(struct etcd *e, const char *list, char *err)
{
  char shown[MAX_ENDPOINT_LEN + 8];
  const char *p = list;
  cx_url_redact(list, CX_URL_REDACT_LIST, shown, sizeof shown);
  while (*p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    while (len && (*p == ' ' || *p == '\t')) {
      p++;
      len--;
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
      len--;
    while (len && p[len - 1] == '/')
      len--;
    if (len == 0) {
      cx_err_set(err, "coord endpoints \"%s\": empty entry", shown);
      return CX_EPARSE;
    }
    if (len > MAX_ENDPOINT_LEN || e->nep == MAX_ENDPOINTS) {
      cx_err_set(err,
                 "coord endpoints: more than %d entries or one longer "
                 "than %d bytes",
                 MAX_ENDPOINTS, MAX_ENDPOINT_LEN);
      return CX_EPARSE;
    }
    char *ep = cx_strndup(p, len);
    if (ep == NULL)
      return -ENOMEM;
    e->eps[e->nep++] = ep;
    int rc = check_endpoint(ep, err);
    if (rc)
      return rc;
    if (comma == NULL)
      break;
    p = comma + 1;
    if (*p == '\0') {
      cx_err_set(err, "coord endpoints \"%s\": trailing comma", shown);
      return CX_EPARSE;
    }
  }
  if (e->nep == 0) {
    cx_err_set(err, "coord endpoints: none given");
    return CX_EPARSE;
  }
  return 0;
}

static void etcd_close(void *impl)
{
  struct etcd *e = impl;
  if (e == NULL)
    return;
  for (int i = 0; i < e->npool; i++)
    curl_easy_cleanup(e->pool[i]);
  for (int i = 0; i < e->nep; i++)
    cx_free(e->eps[i]);
  cx_free(e->token);
  if (e->ka)
    curl_easy_cleanup(e->ka);
  pthread_mutex_destroy(&e->ka_mu);
  pthread_mutex_destroy(&e->mu);
  cx_free(e);
}

static int etcd_open(const struct cx__coord_conf *conf, void **impl, char *err)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, curl_init_once);
  struct etcd *e = cx_calloc(1, sizeof *e);
  if (e == NULL)
    return -ENOMEM;
  e->conf = *conf;
  pthread_mutex_init(&e->mu, NULL);
  pthread_mutex_init(&e->ka_mu, NULL);
  e->ka = curl_easy_init();
  int rc = e->ka ? parse_endpoints(e, conf->cfg.endpoints, err) : -ENOMEM;
  if (rc == 0 && conf->cfg.username) {
    if (conf->cfg.username[0] == '\0') {
      cx_err_set(err, "coord username: empty");
      rc = CX_EPARSE;
    } else {
      rc = authenticate(e, 0, err);
    }
  }
  if (rc != 0) {
    etcd_close(e);
    return rc;
  }
  *impl = e;
  return 0;
}

/* ---- KV ---------------------------------------------------------------- */

/* Fills out from a range reply. */
static int parse_range(const json_t *reply, struct cx_coord_kvs *out, char *err)
{
  int rc = 0;
  out->revision = header_rev(reply);
  json_t *kvs = json_object_get(reply, "kvs");
  if (kvs && !json_is_array(kvs))
    rc = CX_EPROTO;
  for (size_t i = 0; i < json_array_size(kvs) && rc == 0; i++)
    rc = push_kv(out, json_array_get(kvs, i));
  if (rc == CX_EPROTO)
    cx_err_set(err, "etcd range: malformed kvs in the reply");
  return rc;
}

static int etcd_range(void *impl, const void *key, size_t key_len, int prefix,
                      struct cx_coord_kvs *out, char *err)
{
  struct etcd *e = impl;
  json_t *body = json_object(), *reply = NULL;
  int rc = -ENOMEM;
  if (body == NULL || j_set_range(body, key, key_len, prefix))
    goto out;
  if ((rc = call(e, "/v3/kv/range", body, 1, &reply, err)))
    goto out;
  rc = parse_range(reply, out, err);
out:
  json_decref(body);
  json_decref(reply);
  return rc;
}

static int build_put(json_t *obj, const void *key, size_t key_len,
                     const void *value, size_t value_len, int64_t lease)
{
  if (j_set_b64(obj, "key", key, key_len) ||
      j_set_b64(obj, "value", value, value_len))
    return -ENOMEM;
  if (lease && j_set_i64(obj, "lease", lease))
    return -ENOMEM;
  return 0;
}

static int etcd_put(void *impl, const void *key, size_t key_len,
                    const void *value, size_t value_len, int64_t lease,
                    int64_t *rev, char *err)
{
  struct etcd *e = impl;
  json_t *body = json_object(), *reply = NULL;
  int rc = -ENOMEM;
  if (body == NULL || build_put(body, key, key_len, value, value_len, lease))
    goto out;
  if ((rc = call(e, "/v3/kv/put", body, 1, &reply, err)))
    goto out;
  if (rev)
    *rev = header_rev(reply);
out:
  json_decref(body);
  json_decref(reply);
  return rc;
}

static int etcd_del(void *impl, const void *key, size_t key_len, int prefix,
                    int64_t *deleted, int64_t *rev, char *err)
{
  struct etcd *e = impl;
  json_t *body = json_object(), *reply = NULL;
  int rc = -ENOMEM;
  if (body == NULL || j_set_range(body, key, key_len, prefix))
    goto out;
  if ((rc = call(e, "/v3/kv/deleterange", body, 1, &reply, err)))
    goto out;
  if (j_i64(reply, "deleted", deleted)) {
    cx_err_set(err, "etcd deleterange: bad \"deleted\"");
    rc = CX_EPROTO;
  }
  *rev = header_rev(reply);
out:
  json_decref(body);
  json_decref(reply);
  return rc;
}

static int etcd_compact(void *impl, int64_t rev, char *err)
{
  struct etcd *e = impl;
  json_t *body = json_object(), *reply = NULL;
  int rc = -ENOMEM;
  if (body == NULL || j_set_i64(body, "revision", rev) ||
      json_object_set_new(body, "physical", json_true()))
    goto out;
  rc = call(e, "/v3/kv/compaction", body, 0, &reply, err);
out:
  json_decref(body);
  json_decref(reply);
  return rc;
}

static json_t *txn_ops(const struct cx_coord_op *ops, size_t n)
{
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++) {
    const struct cx_coord_op *o = &ops[i];
    json_t *req = json_object(), *wrap = json_object();
    int bad = req == NULL || wrap == NULL;
    if (!bad && o->type == CX_COORD_OP_PUT)
      bad = build_put(req, o->key, o->key_len, o->value ? o->value : "",
                      o->value_len, o->lease) != 0 ||
            json_object_set_new(wrap, "request_put", req) != 0;
    else if (!bad)
      bad = j_set_range(req, o->key, o->key_len,
                        o->type == CX_COORD_OP_DELETE_PREFIX) != 0 ||
            json_object_set_new(wrap, "request_delete_range", req) != 0;
    else
      json_decref(req);
    if (bad || json_array_append_new(arr, wrap) != 0) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

static json_t *txn_cmp(const struct cx_coord_cmp *m)
{
  static const char *const targets[] = {"CREATE", "MOD", "VERSION", "VALUE"};
  static const char *const fields[] = {"create_revision", "mod_revision",
                                       "version", "value"};
  static const char *const results[] = {"EQUAL", "NOT_EQUAL", "LESS",
                                        "GREATER"};
  json_t *c = json_object();
  if (c == NULL || j_set_b64(c, "key", m->key, m->key_len) ||
      json_object_set_new(c, "target", json_string(targets[m->target])) ||
      json_object_set_new(c, "result", json_string(results[m->op])))
    goto fail;
  if (m->target == CX_COORD_VALUE) {
    if (j_set_b64(c, "value", m->value ? m->value : "", m->value_len))
      goto fail;
  } else if (j_set_i64(c, fields[m->target], m->num)) {
    goto fail;
  }
  return c;
fail:
  json_decref(c);
  return NULL;
}

static int etcd_txn(void *impl, const struct cx_coord_txn *t, int *succeeded,
                    int64_t *rev, char *err)
{
  struct etcd *e = impl;
  json_t *body = json_object(), *reply = NULL, *cmps = json_array();
  int rc = -ENOMEM;
  if (body == NULL || cmps == NULL)
    goto out;
  for (size_t i = 0; i < t->ncmps; i++)
    if (json_array_append_new(cmps, txn_cmp(&t->cmps[i])) != 0)
      goto out;
  if (json_object_set(body, "compare", cmps) ||
      json_object_set_new(body, "success", txn_ops(t->success, t->nsuccess)) ||
      json_object_set_new(body, "failure", txn_ops(t->failure, t->nfailure)))
    goto out;
  if ((rc = call(e, "/v3/kv/txn", body, 0, &reply, err)))
    goto out;
  *succeeded = json_is_true(json_object_get(reply, "succeeded"));
  *rev = header_rev(reply);
out:
  json_decref(cmps);
  json_decref(body);
  json_decref(reply);
  return rc;
}

/* ---- leases ------------------------------------------------------------ */

static int etcd_lease_grant(void *impl, int64_t ttl, int64_t *id,
                            int64_t *granted, char *err)
{
  struct etcd *e = impl;
  json_t *body = json_object(), *reply = NULL;
  int rc = -ENOMEM;
  if (body == NULL || j_set_i64(body, "TTL", ttl))
    goto out;
  if ((rc = call(e, "/v3/lease/grant", body, 1, &reply, err)))
    goto out;
  const char *emsg = json_string_value(json_object_get(reply, "error"));
  if (emsg && emsg[0]) {
    cx_err_set(err, "etcd lease grant: %s", emsg);
    rc = CX_EUNAVAIL;
  } else if (j_i64(reply, "ID", id) || j_i64(reply, "TTL", granted) ||
             *id <= 0 || *granted <= 0) {
    cx_err_set(err, "etcd lease grant: reply without a valid ID/TTL");
    rc = CX_EPROTO;
  }
out:
  json_decref(body);
  json_decref(reply);
  return rc;
}

static int etcd_lease_keepalive(void *impl, int64_t id, int timeout_ms,
                                int64_t *ttl, char *err)
{
  struct etcd *e = impl;
  json_t *body = json_object(), *reply = NULL;
  int rc = -ENOMEM;
  *ttl = 0;
  if (body == NULL || j_set_i64(body, "ID", id))
    goto out;
  pthread_mutex_lock(&e->ka_mu);
  rc = call_ex(e, "/v3/lease/keepalive", body, 1, 1, timeout_ms, e->ka, &reply,
               err);
  pthread_mutex_unlock(&e->ka_mu);
  if (rc != 0)
    goto out;
  json_t *res = json_object_get(reply, "result");
  if (json_is_object(json_object_get(reply, "error"))) {
    int retry;
    rc = map_error(200, reply, "lease keepalive", &retry, err);
    if (rc == CX_EPARSE || rc == CX_EPROTO)
      rc = CX_EUNAVAIL;
  } else if (!json_is_object(res) || j_i64(res, "TTL", ttl)) {
    cx_err_set(err, "etcd lease keepalive: malformed reply");
    rc = CX_EPROTO;
  } else if (*ttl <= 0) {
    cx_err_set(err, "lease %" PRId64 " not found", id);
    rc = CX_ENOTFOUND;
  }
out:
  json_decref(body);
  json_decref(reply);
  return rc;
}

static int etcd_lease_revoke(void *impl, int64_t id, char *err)
{
  struct etcd *e = impl;
  json_t *body = json_object(), *reply = NULL;
  int rc = -ENOMEM;
  if (body == NULL || j_set_i64(body, "ID", id))
    goto out;
  rc = call(e, "/v3/lease/revoke", body, 1, &reply, err);
out:
  json_decref(body);
  json_decref(reply);
  return rc;
}

/* ---- watches ----------------------------------------------------------- */

struct ewatch {
  struct etcd *e;
  char *prefix;
  size_t plen;
  int64_t next_rev; /* next revision to deliver; 0 = "from now" */
  struct cx_coord_watch_cbs cbs;
  void *arg;
  _Atomic int stop;
  pthread_t thread;
  CURL *h;
  CURLM *m;
  /* per connection */
  struct cx_buf line;
  cx_mono last_data;
  int connected;  /* `created` seen */
  int resync;     /* compaction seen: re-list before reconnecting */
  int broken;     /* stream said something that ends it */
  int progressed; /* any message since connecting */
  /* liveness probe (watch_probe_start) */
  CURL *ph;
  struct sink probe_reply;
  struct curl_slist *probe_hdrs;
  char *probe_body;
  int probing;        /* ph is in the multi handle */
  cx_mono checked_at; /* last data on the stream or last good probe */
};

static void set_connected(struct ewatch *w, int on)
{
  if (w->connected == on)
    return;
  w->connected = on;
  if (w->cbs.state)
    w->cbs.state(w->arg, on);
}

static int deliver_event(struct ewatch *w, const json_t *ev)
{
  json_t *kv = json_object_get(ev, "kv");
  json_t *prev = json_object_get(ev, "prev_kv");
  const char *type = json_string_value(json_object_get(ev, "type"));
  struct cx_coord_event out = {0};
  char *k = NULL, *v = NULL, *pv = NULL;
  size_t kl = 0, vl = 0, pl = 0;
  int rc = CX_EPROTO;

  if (!json_is_object(kv))
    goto out;
  if (j_bytes(kv, "key", &k, &kl) || j_bytes(kv, "value", &v, &vl) ||
      j_i64(kv, "mod_revision", &out.mod_rev) ||
      j_i64(kv, "create_revision", &out.create_rev) ||
      j_i64(kv, "version", &out.version) || j_i64(kv, "lease", &out.lease))
    goto out;
  if (json_is_object(prev) && j_bytes(prev, "value", &pv, &pl))
    goto out;
  if (out.mod_rev <= 0)
    goto out;
  rc = 0;
  if (out.mod_rev < w->next_rev)
    goto out; /* already delivered before a reconnect */
  out.type = type && strcmp(type, "DELETE") == 0 ? CX_COORD_EV_DELETE
                                                 : CX_COORD_EV_PUT;
  out.key = k;
  out.key_len = kl;
  out.value = out.type == CX_COORD_EV_PUT ? v : "";
  out.value_len = out.type == CX_COORD_EV_PUT ? vl : 0;
  out.prev_value = pv;
  out.prev_value_len = pl;
  if (!w->stop)
    w->cbs.event(w->arg, &out);
  /* Events of one revision arrive in one message, so the next revision is
   * safe to resume from once this message has been fully delivered; until
   * then resume from this one (deduplicated above only by revision, so
   * advance only at the end of the message). */
out:
  cx_free(k);
  cx_free(v);
  cx_free(pv);
  return rc;
}

/* One newline-framed message. Returns 0 to keep streaming, -1 to end. */
static int watch_message(struct ewatch *w, const char *s, size_t len)
{
  json_error_t jerr;
  json_t *j = json_loadb(s, len, 0, &jerr);
  int rc = -1;
  if (j == NULL || !json_is_object(j)) {
    CX_LOG(CX_LOG_WARN, "coord", "etcd watch: unparsable message (%s)",
           j ? "not an object" : jerr.text);
    goto out;
  }
  json_t *res = json_object_get(j, "result");
  if (!json_is_object(res)) {
    char err[CX_ERR_LEN];
    int retry;
    map_error(200, j, "watch", &retry, err);
    CX_LOG(CX_LOG_WARN, "coord", "%s", err);
    if (retry == RETRY_REAUTH && w->e->conf.cfg.username)
      authenticate(w->e, 0, NULL);
    goto out;
  }
  if (json_is_true(json_object_get(res, "canceled"))) {
    int64_t crev = 0;
    j_i64(res, "compact_revision", &crev);
    if (crev > 0) {
      CX_LOG(CX_LOG_INFO, "coord",
             "etcd watch: revision %" PRId64 " compacted (at %" PRId64
             "); re-listing",
             w->next_rev, crev);
      w->resync = 1;
    } else {
      const char *why =
          json_string_value(json_object_get(res, "cancel_reason"));
      CX_LOG(CX_LOG_WARN, "coord", "etcd watch canceled: %s",
             why ? why : "(no reason)");
      if (contains(why, "auth") && w->e->conf.cfg.username)
        authenticate(w->e, 0, NULL);
    }
    goto out;
  }
  int created = json_is_true(json_object_get(res, "created"));
  if (created) {
    if (w->next_rev == 0)
      w->next_rev = rev_after(header_rev(res));
    set_connected(w, 1);
  }
  json_t *evs = json_object_get(res, "events");
  if (evs && !json_is_array(evs))
    goto out;
  if (evs == NULL && !created) {
    /* A timed progress notification: etcd sends it only to a watcher that
     * has been sent every event up to header.revision, through the same
     * ordered channel (etcd#15220 concerns requested progress, which this
     * client never asks for; watch_id -1 marks those). Advancing keeps an
     * idle prefix from resyncing after compactions it did not need. */
    int64_t wid = 0, rev = header_rev(res);
    j_i64(res, "watch_id", &wid);
    if (wid != -1 && rev >= w->next_rev)
      w->next_rev = rev_after(rev);
  }
  int64_t last = 0;
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    if (deliver_event(w, ev) != 0) {
      CX_LOG(CX_LOG_WARN, "coord", "etcd watch: malformed event");
      goto out;
    }
    int64_t mr = 0;
    j_i64(json_object_get(ev, "kv"), "mod_revision", &mr);
    if (mr > last)
      last = mr;
  }
  if (last >= w->next_rev)
    w->next_rev = rev_after(last);
  rc = 0;
out:
  json_decref(j);
  return rc;
}

static size_t watch_write(char *p, size_t size, size_t n, void *ud)
{
  struct ewatch *w = ud;
  size_t len = size * n;
  w->last_data = cx_mono_now();
  w->progressed = 1;
  if (w->line.len + len > w->e->conf.max_reply_bytes) {
    CX_LOG(CX_LOG_WARN, "coord", "etcd watch: message larger than %zu bytes",
           w->e->conf.max_reply_bytes);
    return 0;
  }
  cx_buf_append(&w->line, p, len);
  if (cx_buf_failed(&w->line))
    return 0;
  size_t start = 0;
  for (size_t i = w->line.len - len; i < w->line.len; i++) {
    if (w->line.data[i] != '\n')
      continue;
    if (i > start && watch_message(w, w->line.data + start, i - start) != 0) {
      w->broken = 1;
      return 0;
    }
    if (w->stop || w->resync)
      return 0;
    start = i + 1;
  }
  if (start > 0) {
    memmove(w->line.data, w->line.data + start, w->line.len - start);
    w->line.len -= start;
    w->line.data[w->line.len] = '\0';
  }
  return len;
}

/* Re-lists the prefix after a compaction and hands it to the caller. */
static int watch_relist(struct ewatch *w)
{
  struct cx_coord_kvs kvs = {0};
  char err[CX_ERR_LEN] = "";
  int rc = etcd_range(w->e, w->prefix, w->plen, 1, &kvs, err);
  if (rc == 0) {
    w->next_rev = rev_after(kvs.revision);
    w->resync = 0;
    if (!w->stop)
      w->cbs.resync(w->arg, &kvs);
  } else {
    CX_LOG(CX_LOG_WARN, "coord", "etcd watch re-list: %s", err);
  }
  cx_coord_kvs_free(&kvs);
  return rc;
}

/* Waits up to ms, returning early when the watch is cancelled. */
static void watch_sleep(struct ewatch *w, int ms)
{
  cx_mono until = cx_mono_now() + (cx_mono)ms * 1000;
  while (!w->stop) {
    cx_mono now = cx_mono_now();
    if (now >= until)
      break;
    curl_multi_poll(w->m, NULL, 0, (int)((until - now) / 1000) + 1, NULL);
  }
}

static char *watch_body(struct ewatch *w)
{
  json_t *req = json_object(), *body = json_object();
  char *s = NULL;
  if (req == NULL || body == NULL || j_set_range(req, w->prefix, w->plen, 1) ||
      json_object_set_new(req, "prev_kv", json_true()) ||
      json_object_set_new(req, "progress_notify", json_true()) ||
      (w->next_rev > 0 && j_set_i64(req, "start_revision", w->next_rev)))
    goto out;
  if (json_object_set(body, "create_request", req) == 0)
    s = json_dumps(body, JSON_COMPACT);
out:
  json_decref(req);
  json_decref(body);
  return s;
}

/*
 * Liveness. An idle watch hears nothing from etcd unless etcd was started
 * with --experimental-watch-progress-notify-interval short; a stock etcd
 * (Debian's etcd-server) sends progress only every 10 minutes, and after an
 * event not before the next tick but one, so silence of up to ~20 minutes
 * is normal. Treating 30 s of silence as death made every idle watch warn
 * and reconnect twice a minute. What a silent watch can actually suffer:
 *
 *   - the member stopped or hangs (SIGSTOP, stuck disk, dead host): the
 *     watch's TCP connection stays open, and a hung process's kernel even
 *     answers TCP keep-alives;
 *   - the member lost its cluster (partition, no leader): it stays up but
 *     gets no new revisions, so the watch says nothing;
 *   - a middlebox dropped the connection without a reset.
 *
 * Over the gateway the watch stream is one-way once the request body is
 * sent (tech.md §1.4), so a progress_request cannot be asked for later. So
 * after watch_idle_ms of silence the watch sends a probe on a second
 * connection to the SAME endpoint: a linearizable range of one key (the
 * prefix itself; count only). It must go through the member's raft
 * ReadIndex, so it fails or times out (request_timeout_ms) when the member
 * is down, hung or without a leader -- then the watch warns and moves to the
 * next endpoint, resuming from its revision. A good answer costs etcd one
 * index lookup and restarts the quiet period; nothing is logged. The third
 * case is for TCP keep-alive on the watch's own connection, probing after
 * watch_idle_ms idle (then every third of it): a dropped connection errors
 * out within about four idle periods. libcurl's low-speed limit was no
 * option: it is the same "silence = death" rule again.
 *
 * What the probe cannot see is a stream stuck inside a healthy member (an
 * etcd bug). For that, a stream with no message at all for STALE_MS (longer
 * than two stock progress intervals) is re-watched from its revision, at
 * INFO: on a stock etcd a healthy stream is never that quiet.
 */
#define STALE_MS (25 * 60 * 1000)

/* Sends the probe (see above) without waiting for it. */
static void watch_probe_start(struct ewatch *w, int idx)
{
  struct etcd *e = w->e;
  char url[MAX_ENDPOINT_LEN + 64];
  json_t *body = json_object();
  curl_slist_free_all(w->probe_hdrs);
  jfree(w->probe_body);
  w->probe_body = NULL;
  w->probe_hdrs = make_headers(e, 1);
  if (body == NULL || w->probe_hdrs == NULL ||
      j_set_range(body, w->plen ? w->prefix : "", w->plen ? w->plen : 1, 0) ||
      json_object_set_new(body, "count_only", json_true()) ||
      (w->probe_body = json_dumps(body, JSON_COMPACT)) == NULL) {
    json_decref(body);
    w->checked_at = cx_mono_now(); /* out of memory: try again later */
    return;
  }
  json_decref(body);
  snprintf(url, sizeof url, "%s/v3/kv/range", e->eps[idx]);
  cx_buf_reset(&w->probe_reply.buf);
  w->probe_reply.too_big = 0;
  setup_handle(e, w->ph, url, w->probe_hdrs, w->probe_body,
               strlen(w->probe_body));
  curl_easy_setopt(w->ph, CURLOPT_TIMEOUT_MS, (long)e->conf.request_timeout_ms);
  curl_easy_setopt(w->ph, CURLOPT_WRITEFUNCTION, sink_write);
  curl_easy_setopt(w->ph, CURLOPT_WRITEDATA, &w->probe_reply);
  if (curl_multi_add_handle(w->m, w->ph) == CURLM_OK)
    w->probing = 1;
}

static void watch_probe_stop(struct ewatch *w)
{
  if (w->probing)
    curl_multi_remove_handle(w->m, w->ph);
  w->probing = 0;
}

/* The probe's answer: 0 = the member serves, -1 = give up this stream. */
static int watch_probe_done(struct ewatch *w, int idx, CURLcode cc)
{
  struct etcd *e = w->e;
  char err[CX_ERR_LEN] = "";
  long status = 0;
  int rc = -1;
  watch_probe_stop(w);
  curl_easy_getinfo(w->ph, CURLINFO_RESPONSE_CODE, &status);
  json_t *j =
      cc == CURLE_OK
          ? json_loadb(w->probe_reply.buf.data ? w->probe_reply.buf.data : "",
                       w->probe_reply.buf.len, 0, NULL)
          : NULL;
  if (cc != CURLE_OK) {
    cx_err_set(err, "%s", curl_easy_strerror(cc));
  } else if (!json_is_object(j)) {
    cx_err_set(err, "HTTP %ld, not a JSON object", status);
  } else if (status == 200 && json_object_get(j, "error") == NULL) {
    rc = 0;
  } else {
    int retry;
    map_error(status, j, "range", &retry, err);
    if (retry == RETRY_REAUTH && e->conf.cfg.username) {
      /* It answered; the token expired. Renew it for the next call. */
      authenticate(e, idx, NULL);
      rc = 0;
    }
  }
  json_decref(j);
  if (rc == 0)
    w->checked_at = cx_mono_now();
  else
    CX_LOG(CX_LOG_WARN, "coord",
           "etcd watch on %s: silent for %d ms and the server does not "
           "answer a read (%s); reconnecting",
           e->eps[idx], e->conf.watch_idle_ms, err);
  return rc;
}

/* One connection: stream until it ends, is cancelled, or its server stops
 * answering (see "Liveness" above). */
static void watch_connect(struct ewatch *w, int idx)
{
  struct etcd *e = w->e;
  char url[MAX_ENDPOINT_LEN + 64];
  w->broken = 0;
  w->progressed = 0;
  char *body = watch_body(w);
  struct curl_slist *hdrs = make_headers(e, 1);
  if (body == NULL || hdrs == NULL)
    goto out;
  snprintf(url, sizeof url, "%s/v3/watch", e->eps[idx]);
  cx_buf_reset(&w->line);
  w->last_data = w->checked_at = cx_mono_now();
  setup_handle(e, w->h, url, hdrs, body, strlen(body));
  curl_easy_setopt(w->h, CURLOPT_TIMEOUT_MS, 0L);
  long ka_s = e->conf.watch_idle_ms >= 2000 ? e->conf.watch_idle_ms / 1000 : 1;
  curl_easy_setopt(w->h, CURLOPT_TCP_KEEPIDLE, ka_s);
  curl_easy_setopt(w->h, CURLOPT_TCP_KEEPINTVL, ka_s >= 3 ? ka_s / 3 : 1L);
  curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, watch_write);
  curl_easy_setopt(w->h, CURLOPT_WRITEDATA, w);
  curl_multi_add_handle(w->m, w->h);
  cx_mono idle = (cx_mono)e->conf.watch_idle_ms * 1000;
  cx_mono stale =
      (cx_mono)STALE_MS * 1000 > 2 * idle ? (cx_mono)STALE_MS * 1000 : 2 * idle;
  int running = 1, done = 0;
  while (!done && !w->stop) {
    if (curl_multi_perform(w->m, &running) != CURLM_OK)
      break;
    int msgs;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(w->m, &msgs)) != NULL) {
      if (msg->msg != CURLMSG_DONE)
        continue;
      if (msg->easy_handle == w->ph) {
        if (watch_probe_done(w, idx, msg->data.result) != 0)
          w->broken = done = 1;
        continue;
      }
      done = 1; /* the stream ended */
      if (msg->data.result != CURLE_OK &&
          msg->data.result != CURLE_WRITE_ERROR && !w->stop)
        CX_LOG(CX_LOG_INFO, "coord", "etcd watch on %s: %s", e->eps[idx],
               curl_easy_strerror(msg->data.result));
    }
    if (done)
      break;
    cx_mono now = cx_mono_now();
    cx_mono quiet = w->last_data > w->checked_at ? w->last_data : w->checked_at;
    if (!w->probing && now - quiet > idle)
      watch_probe_start(w, idx);
    if (now - w->last_data > stale) {
      CX_LOG(CX_LOG_INFO, "coord",
             "etcd watch on %s: no message for %lld s though the server "
             "answers; re-watching from revision %" PRId64,
             e->eps[idx], (long long)((now - w->last_data) / 1000000),
             w->next_rev);
      break;
    }
    int wait_ms = e->conf.watch_idle_ms < 500 ? e->conf.watch_idle_ms : 500;
    curl_multi_poll(w->m, NULL, 0, wait_ms, NULL);
  }
  watch_probe_stop(w);
  long status = 0;
  curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
  if (status != 0 && status != 200 && !w->stop) {
    /* An unframed error reply (no newline) is still in the buffer. */
    const char *rest = w->line.data ? w->line.data : "";
    CX_LOG(CX_LOG_WARN, "coord", "etcd watch on %s: HTTP %ld %.200s",
           e->eps[idx], status, rest);
    if (e->conf.cfg.username &&
        (status == 401 || contains(rest, "invalid auth token") ||
         contains(rest, "user name is empty")))
      authenticate(e, idx, NULL);
  }
  curl_multi_remove_handle(w->m, w->h);
  curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, NULL);
out:
  curl_slist_free_all(hdrs);
  jfree(body);
}

static void *watch_main(void *arg)
{
  struct ewatch *w = arg;
  struct etcd *e = w->e;
  int backoff = 100, idx = e->cur;

  while (!w->stop) {
    if (w->resync) {
      set_connected(w, 0);
      if (watch_relist(w) != 0) {
        watch_sleep(w, backoff);
        backoff = backoff < 2000 ? backoff * 2 : 2000;
      }
      continue;
    }
    watch_connect(w, idx);
    if (w->stop)
      break;
    if (w->resync)
      continue;
    set_connected(w, 0);
    if (w->progressed && !w->broken) {
      backoff = 100;
    } else {
      idx = (idx + 1) % e->nep; /* no answer, or a bad one: try another */
      backoff = backoff < 2000 ? backoff * 2 : 2000;
    }
    watch_sleep(w, backoff);
  }
  set_connected(w, 0);
  return NULL;
}

static void ewatch_free(struct ewatch *w)
{
  if (w->m)
    curl_multi_cleanup(w->m);
  if (w->h)
    curl_easy_cleanup(w->h);
  if (w->ph)
    curl_easy_cleanup(w->ph);
  curl_slist_free_all(w->probe_hdrs);
  jfree(w->probe_body);
  cx_buf_free(&w->probe_reply.buf);
  cx_buf_free(&w->line);
  cx_free(w->prefix);
  cx_free(w);
}

static int etcd_watch(void *impl, const struct cx__coord_watch_args *a,
                      void **out, char *err)
{
  struct ewatch *w = cx_calloc(1, sizeof *w);
  if (w == NULL)
    return -ENOMEM;
  w->e = impl;
  w->plen = a->prefix_len;
  w->cbs = a->cbs;
  w->arg = a->arg;
  w->next_rev = a->start_rev;
  w->prefix = cx_malloc(a->prefix_len);
  w->h = curl_easy_init();
  w->ph = curl_easy_init();
  w->m = curl_multi_init();
  w->probe_reply.cap = 64 * 1024; /* a count-only range reply is tiny */
  if (w->prefix == NULL || w->h == NULL || w->ph == NULL || w->m == NULL) {
    ewatch_free(w);
    return -ENOMEM;
  }
  memcpy(w->prefix, a->prefix, a->prefix_len);
  int rc = pthread_create(&w->thread, NULL, watch_main, w);
  if (rc != 0) {
    cx_err_set(err, "watch thread: %s", strerror(rc));
    ewatch_free(w);
    return -rc;
  }
  *out = w;
  return 0;
}

static void etcd_watch_cancel(void *impl)
{
  struct ewatch *w = impl;
  w->stop = 1;
  curl_multi_wakeup(w->m);
  pthread_join(w->thread, NULL);
  ewatch_free(w);
}

/* ---- test hook ---------------------------------------------------------- */

int cx__coord_etcd_replay(const char *data, size_t len, size_t chunk,
                          const struct cx_coord_watch_cbs *cbs, void *arg,
                          struct cx_coord_kvs *range_out)
{
  json_error_t jerr;
  json_t *j = json_loadb(data, len, 0, &jerr);
  int rc = CX_EPROTO;
  if (json_is_object(j))
    rc = parse_range(j, range_out, NULL);
  json_decref(j);

  struct etcd e = {0};
  struct ewatch w = {0};
  e.conf.max_reply_bytes = 1 << 20;
  w.e = &e;
  w.cbs = *cbs;
  w.arg = arg;
  if (chunk == 0)
    chunk = 1;
  for (size_t off = 0; off < len;) {
    size_t n = len - off < chunk ? len - off : chunk;
    if (watch_write((char *)data + off, 1, n, &w) != n)
      break; /* the connection would end here */
    off += n;
    if (w.resync)
      break;
  }
  cx_buf_free(&w.line);
  return rc;
}

const struct cx_coord_ops cx__coord_etcd_ops = {
    .name = "etcd",
    .open = etcd_open,
    .close = etcd_close,
    .range = etcd_range,
    .put = etcd_put,
    .del = etcd_del,
    .txn = etcd_txn,
    .compact = etcd_compact,
    .lease_grant = etcd_lease_grant,
    .lease_keepalive = etcd_lease_keepalive,
    .lease_revoke = etcd_lease_revoke,
    .watch = etcd_watch,
    .watch_cancel = etcd_watch_cancel,
};
