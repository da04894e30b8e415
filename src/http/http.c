/*
 * http: libmicrohttpd glue, the router, the request pipeline and the reply
 * envelope (see http.h for the contract).
 *
 * One struct cx_http_req lives per request. Over a socket it is created in
 * MHD's URI-log callback (the only place that sees the raw request target,
 * query string included), driven by the access handler in three steps --
 * begin (headers known: route, query, Content-Length), feed (body chunks)
 * and finish (JSON, handler) -- and freed in the completion callback, which
 * also writes the access-log line and bumps the counters. cx_http_dispatch
 * drives the same three steps from memory.
 *
 * A reply decided before the body is read (404, 405, 413 by Content-Length,
 * a bad query) is sent at once when no body is on its way (none, or the
 * client waits for "100 Continue"); otherwise the body is read and dropped,
 * up to CX_HTTP_MAX_DRAIN bytes, and the reply follows it -- closing on a
 * client still writing would reset the connection before it read our
 * reply. Past that bound the connection is closed. Nothing past the body
 * limit is ever stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http/http.h"

/* Statuses counted per route; the last slot counts every other status. */
static const int k_statuses[] = {200, 400, 401, 403, 404,
                                 405, 409, 413, 500, 503};
#define N_SLOTS (CX_ARRAY_LEN(k_statuses) + 1)

struct route {
  char method[16];
  char path[CX_HTTP_MAX_PATH + 1];
  unsigned flags;
  cx_http_handler fn;
  void *ctx;
  _Atomic uint64_t counts[N_SLOTS];
};

/* One open connection, for the head deadline (see reaper_main). Lives in
 * MHD's socket context from its STARTED to its CLOSED notification, which
 * MHD sends before it closes the socket -- so under conn_mu, fd is the
 * connection's own. */
struct conn {
  int fd;
  cx_mono deadline; /* 0 = none running */
  struct conn *prev, *next;
};

struct cx_http {
  char *host; /* NULL = any address */
  unsigned port_req;
  unsigned threads, timeout_s, max_conns, max_per_ip, head_timeout_s;
  int per_conn;
  size_t max_body;
  char *tls_cert, *tls_key; /* paths; NULL = plain HTTP */
  char *pem_cert, *pem_key; /* their contents while serving */
  cx_http_gate gate;
  void *gate_ctx;
  struct route routes[CX_HTTP_MAX_ROUTES];
  size_t n_routes;
  _Atomic uint64_t unmatched[N_SLOTS];
  struct MHD_Daemon *d;
  unsigned port;
  int started;
  pthread_mutex_t conn_mu; /* conns, reaper_stop */
  pthread_cond_t conn_cv;
  struct conn *conns;
  pthread_t reaper;
  int reaper_on, reaper_stop;
  _Atomic uint64_t reaped;   /* connections closed by the head deadline */
  pthread_mutex_t stream_mu; /* streams */
  struct cx_http_stream *streams;
  atomic_int stopping; /* streams end at their next fill */
};

/* A streamed reply (cx_http_reply_stream). Owned by the request until it
 * is queued, then by the MHD response (freed by its free callback). refs:
 * the owner's, plus one per tick holding it outside stream_mu. */
struct cx_http_stream {
  struct cx_http *h;
  struct MHD_Connection *conn; /* set when queued */
  cx_http_stream_fill fill;
  cx_http_stream_done done;
  void *ctx;
  pthread_mutex_t mu; /* suspended, wake, closed */
  pthread_cond_t cv;  /* thread-per-connection: fill waits on it */
  int suspended, wake, closed;
  atomic_int refs;
  struct cx_http_stream *prev, *next; /* h->streams (listed once queued) */
};

struct param {
  char *name;
  char *value;
};

struct cx_http_req {
  struct cx_http *h;
  const struct route *route;
  char *method;     /* owned copy; NULL before begin */
  char *target;     /* owned copy of the request target, split at '?' */
  const char *path; /* into target */
  const char *query;
  struct param params[CX_HTTP_MAX_PARAMS];
  size_t n_params;
  struct cx_http_header *hdrs; /* array owned, strings borrowed */
  size_t n_hdrs;
  struct cx_buf body;
  size_t body_seen;
  size_t drained; /* body bytes read and dropped after a decided reply */
  int body_over;
  json_t *json;
  char remote[64];
  cx_mono start;
  unsigned char note[CX_HTTP_MAX_NOTE];
  size_t note_len; /* 0 = no note */
  int admitted;    /* the gate let it through (or the route is public) */
  int close;       /* (socket) close the connection after the reply */
  int begun;       /* begin ran */
  int queued;      /* (socket) the reply was handed to MHD */
  struct cx_http_output out;     /* out.status 0 = no reply yet */
  struct cx_http_stream *stream; /* a streamed reply (out has no body) */
};

/* ---- the code table ----------------------------------------------------- */

int cx_http_code_status(int code)
{
  switch (code) {
  case CX_HTTP_OK:
    return 200;
#define CX__HTTP_CODE_STATUS(name, c, status, msg)                             \
  case c:                                                                      \
    return status;
    CX_HTTP_CODE_MAP(CX__HTTP_CODE_STATUS)
#undef CX__HTTP_CODE_STATUS
  }
  return 0;
}

const char *cx_http_code_msg(int code)
{
  switch (code) {
  case CX_HTTP_OK:
    return "ok";
#define CX__HTTP_CODE_MSG(name, c, status, msg)                                \
  case c:                                                                      \
    return msg;
    CX_HTTP_CODE_MAP(CX__HTTP_CODE_MSG)
#undef CX__HTTP_CODE_MSG
  }
  return NULL;
}

/* ---- small text helpers ------------------------------------------------- */

/* Copies s into out as valid UTF-8 of at most max bytes: invalid bytes
 * become '?', the cut falls between characters. */
static void utf8_clean(const char *s, size_t max, struct cx_buf *out)
{
  cx_utf8_clean(out, s, strlen(s), "?", max);
  if (out->data == NULL)
    cx_buf_append(out, "", 0);
}

/* Does s hold a byte that must not reach a header line? */
static int has_ctl(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return 1;
  return 0;
}

/* ---- replies ------------------------------------------------------------ */

static void out_body_clear(struct cx_http_output *o)
{
  cx_free(o->content_type);
  cx_free(o->body);
  o->content_type = NULL;
  o->body = NULL;
  o->body_len = 0;
  o->status = 0;
}

void cx_http_output_free(struct cx_http_output *out)
{
  if (out == NULL)
    return;
  out_body_clear(out);
  for (size_t i = 0; i < out->n_headers; i++) {
    cx_free((char *)out->headers[i].name);
    cx_free((char *)out->headers[i].value);
  }
  out->n_headers = 0;
}

static void stream_unref(struct cx_http_stream *st)
{
  if (st == NULL || atomic_fetch_sub(&st->refs, 1) != 1)
    return;
  pthread_mutex_destroy(&st->mu);
  pthread_cond_destroy(&st->cv);
  cx_free(st);
}

/* Ends a stream for good: its done(ctx) runs, the handle goes. */
static void stream_close(struct cx_http_stream *st)
{
  if (st == NULL)
    return;
  st->done(st->ctx); /* no wake after this returns */
  pthread_mutex_lock(&st->mu);
  st->closed = 1;
  pthread_mutex_unlock(&st->mu);
  stream_unref(st);
}

/* A request's stream that was never queued (another reply replaced it, or
 * the request ended first). */
static void stream_drop(struct cx_http_req *r)
{
  stream_close(r->stream);
  r->stream = NULL;
}

/* Installs a reply, taking ownership of body (cx_malloc'd, NUL-ended). */
static int set_reply(struct cx_http_req *r, int status, const char *ctype,
                     char *body, size_t len)
{
  char *ct = cx_strdup(ctype);
  if (ct == NULL) {
    cx_free(body);
    return -ENOMEM;
  }
  out_body_clear(&r->out);
  stream_drop(r);
  r->out.status = status;
  r->out.content_type = ct;
  r->out.body = body;
  r->out.body_len = len;
  return 0;
}

/* Last resort when memory runs out: out.status 500 with a NULL body is
 * sent as this constant. */
static const char k_internal[] = "{\"code\":1303,\"msg\":\"internal error\"}";

static void set_internal(struct cx_http_req *r)
{
  char *b = cx_strdup(k_internal);
  if (b == NULL || set_reply(r, 500, CX_HTTP_CT_JSON, b, strlen(k_internal))) {
    out_body_clear(&r->out);
    r->out.status = 500; /* body NULL: the socket path sends k_internal */
  }
}

static int dump_cb(const char *buf, size_t size, void *data)
{
  struct cx_buf *b = data;
  cx_buf_append(b, buf, size);
  return cx_buf_failed(b) ? -1 : 0;
}

/* Serialises and installs an envelope. Takes ownership of data. */
static int reply_envelope(struct cx_http_req *r, int code, const char *msg,
                          const char *field, json_t *data, int with_data)
{
  struct cx_buf b = {0}, clean = {0};
  int rc = -ENOMEM;
  int status = cx_http_code_status(code);
  json_t *o = json_object();
  if (status == 0) { /* not in the table: a programming error */
    code = CX_HTTP_INTERNAL;
    status = 500;
    msg = NULL;
    field = NULL;
  }
  if (msg == NULL)
    msg = cx_http_code_msg(code);
  utf8_clean(msg, CX_HTTP_MAX_MSG, &clean);
  if (o == NULL || cx_buf_failed(&clean))
    goto err;
  if (json_object_set_new(o, "code", json_integer(code)) ||
      json_object_set_new(o, "msg", json_string(clean.data)))
    goto err;
  if (field != NULL) {
    struct cx_buf f = {0};
    utf8_clean(field, CX_HTTP_MAX_MSG, &f);
    int bad = cx_buf_failed(&f) ||
              json_object_set_new(o, "field", json_string(f.data));
    cx_buf_free(&f);
    if (bad)
      goto err;
  }
  if (with_data || data != NULL) {
    json_t *d = data ? data : json_null();
    data = NULL;
    if (json_object_set_new(o, "data", d))
      goto err;
  }
  if (json_dump_callback(o, dump_cb, &b, JSON_COMPACT) != 0 ||
      cx_buf_failed(&b))
    goto err;
  size_t len = b.len;
  rc = set_reply(r, status, CX_HTTP_CT_JSON, cx_buf_steal(&b), len);
err:
  json_decref(data);
  json_decref(o);
  cx_buf_free(&b);
  cx_buf_free(&clean);
  if (rc != 0)
    set_internal(r);
  return rc;
}

int cx_http_reply_ok(struct cx_http_req *req, json_t *data)
{
  return reply_envelope(req, CX_HTTP_OK, "ok", NULL, data, 1);
}

static int reply_errorv(struct cx_http_req *req, int code, const char *field,
                        json_t *data, const char *fmt, va_list ap)
{
  char msg[CX_HTTP_MAX_MSG + 1];
  if (fmt != NULL)
    vsnprintf(msg, sizeof msg, fmt, ap);
  if (code == CX_HTTP_OK) /* an error must not say ok */
    code = CX_HTTP_INTERNAL;
  return reply_envelope(req, code, fmt ? msg : NULL, field, data, 0);
}

int cx_http_reply_error(struct cx_http_req *req, int code, const char *field,
                        const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = reply_errorv(req, code, field, NULL, fmt, ap);
  va_end(ap);
  return rc;
}

int cx_http_reply_error_data(struct cx_http_req *req, int code,
                             const char *field, json_t *data, const char *fmt,
                             ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = reply_errorv(req, code, field, data, fmt, ap);
  va_end(ap);
  return rc;
}

int cx_http_reply_raw(struct cx_http_req *req, int status,
                      const char *content_type, const void *body, size_t len)
{
  if (status < 100 || status > 599 || content_type == NULL ||
      has_ctl(content_type) || (body == NULL && len > 0))
    return CX_EPARSE;
  char *copy = cx_malloc(len + 1);
  if (copy == NULL) {
    set_internal(req);
    return -ENOMEM;
  }
  if (len > 0)
    memcpy(copy, body, len);
  copy[len] = '\0';
  int rc = set_reply(req, status, content_type, copy, len);
  if (rc != 0)
    set_internal(req);
  return rc;
}

int cx_http_reply_stream(struct cx_http_req *req, int status,
                         const char *content_type, cx_http_stream_fill fill,
                         cx_http_stream_done done, void *ctx,
                         struct cx_http_stream **handle)
{
  int rc = cx_http_reply_raw(req, status, content_type, "", 0);
  if (rc != 0) {
    done(ctx);
    return rc;
  }
  struct cx_http_stream *st = cx_calloc(1, sizeof *st);
  if (st == NULL) {
    done(ctx);
    set_internal(req);
    return -ENOMEM;
  }
  st->h = req->h;
  st->fill = fill;
  st->done = done;
  st->ctx = ctx;
  pthread_mutex_init(&st->mu, NULL);
  cx_cond_init_mono(&st->cv);
  atomic_init(&st->refs, 1);
  req->stream = st;
  if (handle != NULL)
    *handle = st;
  return 0;
}

void cx_http_stream_wake(struct cx_http_stream *st)
{
  pthread_mutex_lock(&st->mu);
  if (st->suspended && !st->closed) {
    st->suspended = 0;
    MHD_resume_connection(st->conn);
  } else {
    st->wake = 1;
    pthread_cond_signal(&st->cv);
  }
  pthread_mutex_unlock(&st->mu);
}

int cx_http_reply_header(struct cx_http_req *req, const char *name,
                         const char *value)
{
  struct cx_http_output *o = &req->out;
  if (name == NULL || value == NULL || name[0] == '\0' || has_ctl(name) ||
      has_ctl(value) || strpbrk(name, ": ") != NULL)
    return CX_EPARSE;
  if (o->n_headers >= CX_HTTP_MAX_REPLY_HEADERS)
    return CX_ETOOBIG;
  char *n = cx_strdup(name), *v = cx_strdup(value);
  if (n == NULL || v == NULL) {
    cx_free(n);
    cx_free(v);
    return -ENOMEM;
  }
  o->headers[o->n_headers].name = n;
  o->headers[o->n_headers].value = v;
  o->n_headers++;
  return 0;
}

/* ---- request accessors -------------------------------------------------- */

const char *cx_http_req_method(const struct cx_http_req *req)
{
  return req->method ? req->method : "";
}

const char *cx_http_req_path(const struct cx_http_req *req)
{
  return req->path ? req->path : "";
}

const char *cx_http_req_remote(const struct cx_http_req *req)
{
  return req->remote[0] ? req->remote : "-";
}

const char *cx_http_req_header(const struct cx_http_req *req, const char *name)
{
  for (size_t i = 0; i < req->n_hdrs; i++)
    if (req->hdrs[i].name && strcasecmp(req->hdrs[i].name, name) == 0)
      return req->hdrs[i].value;
  return NULL;
}

size_t cx_http_req_query_count(const struct cx_http_req *req)
{
  return req->n_params;
}

int cx_http_req_query_at(const struct cx_http_req *req, size_t i,
                         const char **name, const char **value)
{
  if (i >= req->n_params)
    return CX_ENOTFOUND;
  if (name)
    *name = req->params[i].name;
  if (value)
    *value = req->params[i].value;
  return 0;
}

const char *cx_http_req_query(const struct cx_http_req *req, const char *name)
{
  for (size_t i = 0; i < req->n_params; i++)
    if (strcmp(req->params[i].name, name) == 0)
      return req->params[i].value;
  return NULL;
}

const char *cx_http_req_body(const struct cx_http_req *req, size_t *len)
{
  if (len)
    *len = req->body.data ? req->body.len : 0;
  return req->body.data ? req->body.data : "";
}

json_t *cx_http_req_json(const struct cx_http_req *req)
{
  return req->json;
}

int cx_http_req_set_note(struct cx_http_req *req, const void *p, size_t len)
{
  if (len > sizeof req->note)
    return CX_ETOOBIG;
  if (len > 0)
    memcpy(req->note, p, len);
  req->note_len = len;
  return 0;
}

const void *cx_http_req_note(const struct cx_http_req *req, size_t *len)
{
  if (len)
    *len = req->note_len;
  return req->note_len ? req->note : NULL;
}

/* ---- the pipeline ------------------------------------------------------- */

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes s[0..n) ('+' = space, %XX) into a new string. Returns 0,
 * CX_EPARSE (bad escape, %00, invalid UTF-8) or -ENOMEM. */
static int query_decode(const char *s, size_t n, char **out)
{
  char *d = cx_malloc(n + 1);
  size_t j = 0;
  if (d == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '+')
      c = ' ';
    else if (c == '%') {
      int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
      int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
        cx_free(d);
        return CX_EPARSE;
      }
      c = (char)(hi << 4 | lo);
      i += 2;
    }
    d[j++] = c;
  }
  d[j] = '\0';
  if (!cx_utf8_valid(d, j)) {
    cx_free(d);
    return CX_EPARSE;
  }
  *out = d;
  return 0;
}

/* Splits and decodes r->query into r->params; replies 400 on bad input. */
static int parse_query(struct cx_http_req *r)
{
  const char *q = r->query;
  size_t qlen = strlen(q);
  if (qlen > CX_HTTP_MAX_QUERY) {
    cx_http_reply_error(r, CX_HTTP_BAD_INPUT, NULL,
                        "query string too long (%zu bytes, max %d)", qlen,
                        CX_HTTP_MAX_QUERY);
    return -1;
  }
  while (*q) {
    size_t seg = strcspn(q, "&");
    if (seg > 0) {
      const char *eq = memchr(q, '=', seg);
      size_t nlen = eq ? (size_t)(eq - q) : seg;
      struct param *p = &r->params[r->n_params];
      int rc;
      if (r->n_params >= CX_HTTP_MAX_PARAMS) {
        cx_http_reply_error(r, CX_HTTP_BAD_INPUT, NULL,
                            "too many query parameters (max %d)",
                            CX_HTTP_MAX_PARAMS);
        return -1;
      }
      if (nlen == 0) {
        cx_http_reply_error(r, CX_HTTP_BAD_INPUT, NULL,
                            "query parameter with an empty name");
        return -1;
      }
      rc = query_decode(q, nlen, &p->name);
      if (rc == 0) {
        rc = eq ? query_decode(eq + 1, seg - nlen - 1, &p->value)
                : query_decode("", 0, &p->value);
        if (rc != 0) {
          cx_free(p->name);
          p->name = NULL;
        }
      }
      if (rc == -ENOMEM) {
        set_internal(r);
        return -1;
      }
      if (rc != 0) {
        cx_http_reply_error(r, CX_HTTP_BAD_INPUT, NULL,
                            "query parameter %zu: bad percent-escape, %%00 "
                            "or invalid UTF-8",
                            r->n_params + 1);
        return -1;
      }
      r->n_params++;
    }
    q += seg;
    if (*q == '&')
      q++;
  }
  return 0;
}

static struct cx_http_req *req_new(struct cx_http *h, const char *uri)
{
  struct cx_http_req *r = cx_calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  r->h = h;
  r->start = cx_mono_now();
  r->target = cx_strdup(uri ? uri : "");
  if (r->target == NULL) {
    cx_free(r);
    return NULL;
  }
  char *qm = strchr(r->target, '?');
  if (qm != NULL)
    *qm = '\0';
  r->path = r->target;
  r->query = qm ? qm + 1 : "";
  return r;
}

static void req_free(struct cx_http_req *r)
{
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n_params; i++) {
    cx_free(r->params[i].name);
    cx_free(r->params[i].value);
  }
  cx_free(r->hdrs);
  cx_buf_free(&r->body);
  json_decref(r->json);
  cx_free(r->method);
  cx_free(r->target);
  cx_http_output_free(&r->out);
  stream_drop(r);
  cx_free(r);
}

/* Refuses framing that two HTTP parsers could read differently (a proxy
 * and this server: request smuggling): Content-Length with
 * Transfer-Encoding, Content-Lengths that differ or are not plain digits,
 * any transfer coding but a single "chunked". Replies and returns -1;
 * the connection is then closed, its body unread. */
static int check_framing(struct cx_http_req *r)
{
  const char *cl = NULL, *te = NULL;
  size_t n_te = 0;
  for (size_t i = 0; i < r->n_hdrs; i++) {
    const char *name = r->hdrs[i].name, *v = r->hdrs[i].value;
    if (name == NULL || v == NULL)
      continue;
    if (strcasecmp(name, "Content-Length") == 0) {
      if (v[0] == '\0' || v[strspn(v, "0123456789")] != '\0') {
        cx_http_reply_error(r, CX_HTTP_BAD_INPUT, NULL,
                            "Content-Length is not a decimal number");
        goto refused;
      }
      if (cl != NULL && strcmp(cl, v) != 0) {
        cx_http_reply_error(r, CX_HTTP_BAD_INPUT, NULL,
                            "two different Content-Length headers");
        goto refused;
      }
      cl = v;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
      te = v;
      n_te++;
    }
  }
  if (te != NULL && cl != NULL) {
    cx_http_reply_error(r, CX_HTTP_BAD_INPUT, NULL,
                        "both Content-Length and Transfer-Encoding");
    goto refused;
  }
  if (te != NULL && (n_te > 1 || strcasecmp(te, "chunked") != 0)) {
    cx_http_reply_error(r, CX_HTTP_BAD_CODING, NULL,
                        "only Transfer-Encoding: chunked is supported");
    goto refused;
  }
  return 0;
refused:
  r->close = 1;
  return -1;
}

/* Headers are known: framing, route, method, the gate, Content-Length,
 * query. Any reply set here is sent without reading the body.
 * content_length < 0 = unknown. */
static void req_begin(struct cx_http_req *r, const char *method,
                      int64_t content_length)
{
  struct cx_http *h = r->h;
  char allow[128] = "";
  size_t alen = 0;
  r->begun = 1;
  r->method = cx_strdup(method ? method : "");
  if (r->method == NULL) {
    set_internal(r);
    return;
  }
  if (check_framing(r) != 0)
    return;
  /* Exact routes first; prefix routes only for a path none of them has. */
  for (size_t i = 0, pass = 0; pass < 2 && r->route == NULL && alen == 0;
       i = 0, pass++)
    for (; i < h->n_routes; i++) {
      const struct route *rt = &h->routes[i];
      int prefix = (rt->flags & CX_HTTP_F_PREFIX) != 0;
      if (prefix != (int)pass ||
          (prefix ? strncmp(rt->path, r->path, strlen(rt->path))
                  : strcmp(rt->path, r->path)) != 0)
        continue;
      if (strcmp(rt->method, r->method) == 0) {
        r->route = rt;
        break;
      }
      int n = snprintf(allow + alen, sizeof allow - alen, "%s%s",
                       alen ? ", " : "", rt->method);
      if (n > 0 && (size_t)n < sizeof allow - alen)
        alen += (size_t)n;
    }
  if (r->route == NULL) {
    if (alen == 0) {
      cx_http_reply_error(r, CX_HTTP_NO_ROUTE, NULL, "no such route: %.*s",
                          CX_HTTP_MAX_PATH, r->path);
    } else {
      cx_http_reply_error(r, CX_HTTP_BAD_METHOD, NULL,
                          "method %.16s not allowed here (allowed: %s)",
                          r->method, allow);
      if (cx_http_reply_header(r, "Allow", allow) != 0)
        set_internal(r);
    }
    return;
  }
  if (h->gate != NULL && !(r->route->flags & CX_HTTP_F_PUBLIC)) {
    if (h->gate(r, h->gate_ctx) != 0) {
      if (r->out.status == 0)
        set_internal(r);
      r->close = 1; /* refused: not one body byte is read */
      return;
    }
    r->admitted = 1;
  }
  if (content_length >= 0 && (uint64_t)content_length > h->max_body) {
    cx_http_reply_error(r, CX_HTTP_TOO_LARGE, NULL,
                        "body too large (%" PRId64 " bytes, limit %zu)",
                        content_length, h->max_body);
    return;
  }
  parse_query(r); /* replies itself on bad input */
}

/* A body chunk arrived. Returns 1 when the body has just gone over the
 * limit (nothing more is stored). */
static int req_feed(struct cx_http_req *r, const char *data, size_t len)
{
  if (r->out.status != 0 || r->body_over)
    return 0;
  if (len > r->h->max_body - r->body_seen) {
    r->body_over = 1;
    r->body_seen = r->h->max_body + 1;
    cx_buf_free(&r->body);
    return 1;
  }
  r->body_seen += len;
  if (r->route->flags & CX_HTTP_F_BODY)
    cx_buf_append(&r->body, data, len);
  return 0;
}

/* The whole request is in: check and parse the body, run the handler. */
static void req_finish(struct cx_http_req *r)
{
  unsigned flags;
  if (r->out.status != 0)
    return;
  if (r->body_over) {
    cx_http_reply_error(r, CX_HTTP_TOO_LARGE, NULL,
                        "body too large (limit %zu bytes)", r->h->max_body);
    return;
  }
  if (cx_buf_failed(&r->body)) {
    set_internal(r);
    return;
  }
  flags = r->route->flags;
  if ((flags & CX_HTTP_F_JSON) == CX_HTTP_F_JSON) {
    json_error_t e;
    if (r->body.len == 0)
      r->json = json_object();
    else
      r->json = json_loadb(r->body.data, r->body.len,
                           JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (r->json == NULL) {
      if (r->body.len == 0) {
        set_internal(r);
        return;
      }
      cx_http_reply_error(r, CX_HTTP_BAD_INPUT, NULL,
                          "malformed JSON at line %d, column %d: %s", e.line,
                          e.column, e.text);
      return;
    }
    if (!json_is_object(r->json)) {
      cx_http_reply_error(r, CX_HTTP_BAD_INPUT, NULL,
                          "the body must be a JSON object");
      return;
    }
  }
  r->route->fn(r, r->route->ctx);
  if (r->out.status == 0)
    cx_http_reply_error(r, CX_HTTP_INTERNAL, NULL,
                        "handler for %s %s gave no reply", r->route->method,
                        r->route->path);
}

static size_t status_slot(int status)
{
  for (size_t i = 0; i < CX_ARRAY_LEN(k_statuses); i++)
    if (k_statuses[i] == status)
      return i;
  return N_SLOTS - 1;
}

/* Copies s for a log line: printable ASCII only, at most max bytes. */
static void log_safe(char *dst, size_t cap, const char *s, size_t max)
{
  size_t j = 0;
  for (; s && *s && j + 1 < cap && j < max; s++)
    dst[j++] = (*s > 0x20 && *s < 0x7f) ? *s : '?';
  dst[j] = '\0';
  if (j == 0 && cap > 1) {
    dst[0] = '-';
    dst[1] = '\0';
  }
}

/* Counts a reply under its route and status (when it is handed over, so a
 * client that has read its reply finds it counted). */
static void req_count(struct cx_http_req *r)
{
  _Atomic uint64_t *c =
      r->route ? ((struct route *)r->route)->counts : r->h->unmatched;
  atomic_fetch_add_explicit(&c[status_slot(r->out.status)], 1,
                            memory_order_relaxed);
}

/* Writes the access-log line of a request; why says how a request ended
 * that was not answered normally (NULL = it was). */
static void req_log(struct cx_http_req *r, const char *why)
{
  char method[24], path[CX_HTTP_MAX_PATH + 40];
  int status = r->out.status;
  log_safe(method, sizeof method, r->method, 16);
  log_safe(path, sizeof path, r->path, CX_HTTP_MAX_PATH + 32);
  int64_t ms = (cx_mono_now() - r->start) / 1000;
  if (status != 0 && why == NULL)
    CX_LOG(CX_LOG_INFO, "http", "%s %s %d %zu bytes %" PRId64 " ms from %s",
           method, path, status,
           r->out.body ? r->out.body_len : sizeof k_internal - 1, ms,
           cx_http_req_remote(r));
  else if (status != 0)
    CX_LOG(CX_LOG_INFO, "http", "%s %s %d not sent (%s) %" PRId64 " ms from %s",
           method, path, status, why, ms, cx_http_req_remote(r));
  else
    CX_LOG(CX_LOG_INFO, "http", "%s %s - (%s) %" PRId64 " ms from %s", method,
           path, why ? why : "no reply", ms, cx_http_req_remote(r));
}

/* ---- in-memory dispatch ------------------------------------------------- */

/* Without a socket a stream is read until it ends or has nothing more now
 * (then it is cut there), up to CX_HTTP_MAX_DRAIN bytes. */
static void stream_drain(struct cx_http_req *r)
{
  struct cx_buf b = {0};
  char chunk[4096];
  ssize_t n;
  while (b.len < CX_HTTP_MAX_DRAIN &&
         (n = r->stream->fill(r->stream->ctx, chunk, sizeof chunk)) > 0)
    cx_buf_append(&b, chunk, (size_t)n);
  stream_drop(r);
  if (cx_buf_failed(&b)) {
    cx_buf_free(&b);
    set_internal(r);
    return;
  }
  size_t len = b.len;
  char *body = cx_buf_steal(&b);
  cx_free(r->out.body);
  r->out.body = body;
  r->out.body_len = len;
}

int cx_http_dispatch(struct cx_http *h, const struct cx_http_input *in,
                     struct cx_http_output *out)
{
  struct cx_http_req *r;
  memset(out, 0, sizeof *out);
  r = req_new(h, in->uri);
  if (r == NULL)
    return -ENOMEM;
  if (in->remote)
    log_safe(r->remote, sizeof r->remote, in->remote, sizeof r->remote);
  if (in->n_headers > 0) {
    r->hdrs = cx_calloc(in->n_headers, sizeof *r->hdrs);
    if (r->hdrs == NULL) {
      req_free(r);
      return -ENOMEM;
    }
    memcpy(r->hdrs, in->headers, in->n_headers * sizeof *r->hdrs);
    r->n_hdrs = in->n_headers;
  }
  req_begin(r, in->method, (int64_t)in->body_len);
  if (r->out.status == 0) {
    req_feed(r, in->body, in->body_len);
    req_finish(r);
  }
  if (r->stream != NULL)
    stream_drain(r);
  req_count(r);
  req_log(r, NULL);
  *out = r->out;
  memset(&r->out, 0, sizeof r->out);
  req_free(r);
  if (out->body == NULL) { /* the out-of-memory 500 */
    out->body = cx_strdup(k_internal);
    out->content_type = cx_strdup(CX_HTTP_CT_JSON);
    out->body_len = sizeof k_internal - 1;
    if (out->body == NULL || out->content_type == NULL) {
      cx_http_output_free(out);
      return -ENOMEM;
    }
  }
  return 0;
}

/* ---- libmicrohttpd glue ------------------------------------------------- */

/* The head deadline. MHD's own timeout is idle time, which a client
 * trickling a byte every few seconds never reaches; so every connection
 * is tracked (on_conn) with an absolute deadline, and a reaper thread shuts
 * down the socket of one past it -- MHD then sees the connection end and
 * cleans up as for a client that left. The deadline runs from accept (or,
 * on a kept-alive connection, from the end of the previous request, plus
 * the idle timeout) until the gate admits the request; a request it does
 * not admit must have arrived whole by then. */

static struct conn *conn_of(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

/* Sets a connection's deadline (0 = none) under conn_mu. */
static void conn_set_deadline(struct cx_http *h, struct MHD_Connection *c,
                              cx_mono deadline)
{
  struct conn *k = conn_of(c);
  if (k == NULL)
    return;
  pthread_mutex_lock(&h->conn_mu);
  k->deadline = deadline;
  pthread_mutex_unlock(&h->conn_mu);
}

static void on_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                    enum MHD_ConnectionNotificationCode code)
{
  struct cx_http *h = cls;
  struct conn *k = *socket_context;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL || (k = cx_calloc(1, sizeof *k)) == NULL)
      return; /* untracked: MHD's idle timeout still applies */
    k->fd = ci->connect_fd;
    pthread_mutex_lock(&h->conn_mu);
    k->deadline = cx_mono_now() + (cx_mono)h->head_timeout_s * 1000000;
    k->next = h->conns;
    if (h->conns)
      h->conns->prev = k;
    h->conns = k;
    pthread_mutex_unlock(&h->conn_mu);
    *socket_context = k;
  } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && k != NULL) {
    pthread_mutex_lock(&h->conn_mu);
    if (k->prev)
      k->prev->next = k->next;
    else
      h->conns = k->next;
    if (k->next)
      k->next->prev = k->prev;
    pthread_mutex_unlock(&h->conn_mu);
    cx_free(k);
    *socket_context = NULL;
  }
}

static void streams_wake_all(struct cx_http *h);

static void *reaper_main(void *arg)
{
  struct cx_http *h = arg;
  cx_mono last_log = 0, last_tick = 0;
  uint64_t unlogged = 0;
  pthread_mutex_lock(&h->conn_mu);
  while (!h->reaper_stop) {
    cx_mono now = cx_mono_now();
    if (now - last_tick >= CX_HTTP_STREAM_TICK_MS * 1000) {
      pthread_mutex_unlock(&h->conn_mu);
      streams_wake_all(h);
      pthread_mutex_lock(&h->conn_mu);
      last_tick = now;
    }
    for (struct conn *k = h->conns; k != NULL; k = k->next) {
      if (k->deadline != 0 && now >= k->deadline) {
        shutdown(k->fd, SHUT_RDWR);
        k->deadline = 0;
        unlogged++;
        atomic_fetch_add_explicit(&h->reaped, 1, memory_order_relaxed);
      }
    }
    if (unlogged > 0 && now - last_log >= 10 * 1000000) {
      /* at most one line per 10 s, however many slow clients there are */
      pthread_mutex_unlock(&h->conn_mu);
      CX_LOG(CX_LOG_WARN, "http",
             "closed %" PRIu64 " connection(s) whose request did not arrive "
             "within %u s",
             unlogged, h->head_timeout_s);
      pthread_mutex_lock(&h->conn_mu);
      unlogged = 0;
      last_log = now;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 200 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&h->conn_cv, &h->conn_mu, &ts);
  }
  pthread_mutex_unlock(&h->conn_mu);
  return NULL;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
  struct cx_http_req *r = req_new(cls, uri);
  const union MHD_ConnectionInfo *ci;
  if (r == NULL)
    return NULL;
  ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (ci != NULL && ci->client_addr != NULL) {
    const struct sockaddr *sa = ci->client_addr;
    socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
    if (getnameinfo(sa, sl, r->remote, sizeof r->remote, NULL, 0,
                    NI_NUMERICHOST) != 0)
      r->remote[0] = '\0';
  }
  return r;
}

struct hdr_walk {
  struct cx_http_req *r;
  size_t cap;
};

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind,
                                 const char *key, const char *value)
{
  struct hdr_walk *w = cls;
  (void)kind;
  if (w->r->n_hdrs >= w->cap)
    return MHD_NO;
  w->r->hdrs[w->r->n_hdrs].name = key;
  w->r->hdrs[w->r->n_hdrs].value = value ? value : "";
  w->r->n_hdrs++;
  return MHD_YES;
}

/* MHD's content reader: the stream's bytes, or -- nothing now -- the
 * connection parked (suspended) until cx_http_stream_wake or the next
 * tick; with a thread per connection (no suspending there), a wait on
 * the stream's condition for up to a tick. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
  struct cx_http_stream *st = cls;
  (void)pos;
  if (atomic_load(&st->h->stopping))
    return MHD_CONTENT_READER_END_OF_STREAM;
  pthread_mutex_lock(&st->mu);
  st->wake = 0;
  pthread_mutex_unlock(&st->mu);
  ssize_t n = st->fill(st->ctx, buf, max);
  if (n > 0)
    return n;
  if (n < 0)
    return MHD_CONTENT_READER_END_OF_STREAM;
  pthread_mutex_lock(&st->mu);
  if (!st->wake) {
    if (st->h->per_conn) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_nsec += CX_HTTP_STREAM_TICK_MS * 1000000L;
      ts.tv_sec += ts.tv_nsec / 1000000000L;
      ts.tv_nsec %= 1000000000L;
      pthread_cond_timedwait(&st->cv, &st->mu, &ts);
    } else {
      st->suspended = 1;
      MHD_suspend_connection(st->conn);
    }
  }
  pthread_mutex_unlock(&st->mu);
  return 0;
}

static void stream_free(void *cls)
{
  struct cx_http_stream *st = cls;
  struct cx_http *h = st->h;
  pthread_mutex_lock(&h->stream_mu);
  if (st->prev != NULL)
    st->prev->next = st->next;
  else if (h->streams == st)
    h->streams = st->next;
  if (st->next != NULL)
    st->next->prev = st->prev;
  st->prev = st->next = NULL;
  pthread_mutex_unlock(&h->stream_mu);
  stream_close(st);
}

/* Wakes every parked stream (the tick, and stop). Each is held by a
 * reference while stream_mu is not, so its free cannot race the resume. */
static void streams_wake_all(struct cx_http *h)
{
  size_t n = 0, i = 0;
  pthread_mutex_lock(&h->stream_mu);
  for (struct cx_http_stream *st = h->streams; st != NULL; st = st->next)
    n++;
  struct cx_http_stream **v = n ? cx_calloc(n, sizeof *v) : NULL;
  for (struct cx_http_stream *st = h->streams; v && st; st = st->next) {
    atomic_fetch_add(&st->refs, 1);
    v[i++] = st;
  }
  pthread_mutex_unlock(&h->stream_mu);
  for (size_t k = 0; k < i; k++) {
    pthread_mutex_lock(&v[k]->mu);
    if (v[k]->suspended && !v[k]->closed) {
      v[k]->suspended = 0;
      MHD_resume_connection(v[k]->conn);
    }
    pthread_mutex_unlock(&v[k]->mu);
    stream_unref(v[k]);
  }
  cx_free(v);
}

static enum MHD_Result queue_reply(struct MHD_Connection *c,
                                   struct cx_http_req *r)
{
  struct MHD_Response *resp;
  enum MHD_Result ok;
  const struct cx_http_output *o = &r->out;
  struct cx_http_stream *st = r->stream;
  if (st != NULL)
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                             stream_read, st, stream_free);
  else if (o->body != NULL)
    resp = MHD_create_response_from_buffer(o->body_len, o->body,
                                           MHD_RESPMEM_MUST_COPY);
  else
    resp = MHD_create_response_from_buffer(
        sizeof k_internal - 1, (void *)k_internal, MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    return MHD_NO;
  ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                               o->content_type ? o->content_type
                                               : CX_HTTP_CT_JSON);
  for (size_t i = 0; ok == MHD_YES && i < o->n_headers; i++)
    ok = MHD_add_response_header(resp, o->headers[i].name, o->headers[i].value);
  if (ok == MHD_YES && r->close)
    ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  if (ok == MHD_YES && r->h->pem_cert != NULL)
    ok = MHD_add_response_header(
        resp, MHD_HTTP_HEADER_STRICT_TRANSPORT_SECURITY, CX_HTTP_HSTS);
  if (ok == MHD_YES && st != NULL) {
    /* From here on the response owns the stream (stream_free). */
    r->stream = NULL;
    st->conn = c;
    pthread_mutex_lock(&r->h->stream_mu);
    st->next = r->h->streams;
    if (st->next != NULL)
      st->next->prev = st;
    r->h->streams = st;
    pthread_mutex_unlock(&r->h->stream_mu);
  } else if (st != NULL) {
    MHD_destroy_response(resp); /* frees the stream: it is no longer ours */
    r->stream = NULL;
    return MHD_NO;
  }
  if (ok == MHD_YES)
    ok = MHD_queue_response(c, (unsigned)o->status, resp);
  MHD_destroy_response(resp);
  if (ok == MHD_YES) {
    r->queued = 1;
    req_count(r);
  }
  return ok;
}

/* A reply was decided before the body (404, 405, 413, bad query). Sending
 * it at once and closing would make the kernel reset a connection the
 * client is still writing to -- and most clients then report the reset, not
 * our reply. So: answer at once when no body is coming or the client waits
 * for "100 Continue" (it then sends nothing); otherwise read and drop a
 * body of up to CX_HTTP_MAX_DRAIN bytes and answer after it. Larger ones
 * are answered at once (and may see a reset). */
static int may_drain(struct cx_http_req *r, int64_t content_length)
{
  const char *expect = cx_http_req_header(r, "Expect");
  int chunked = cx_http_req_header(r, "Transfer-Encoding") != NULL;
  if (expect != NULL && strcasecmp(expect, "100-continue") == 0)
    return 0;
  if (content_length > 0)
    return (uint64_t)content_length <= CX_HTTP_MAX_DRAIN;
  return content_length < 0 && chunked;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c,
                                 const char *url, const char *method,
                                 const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
  struct cx_http_req *r = *con_cls;
  (void)cls;
  (void)url;
  (void)version;
  if (r == NULL)
    return MHD_NO; /* out of memory in on_uri */
  if (!r->begun) {
    int n = MHD_get_connection_values(c, MHD_HEADER_KIND, NULL, NULL);
    const char *cl;
    int64_t len = -1;
    if (n > 0) {
      struct hdr_walk w = {r, (size_t)n};
      r->hdrs = cx_calloc((size_t)n, sizeof *r->hdrs);
      if (r->hdrs == NULL)
        return MHD_NO;
      MHD_get_connection_values(c, MHD_HEADER_KIND, on_header, &w);
    }
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl == NULL || cx_parse_int64(cl, 0, INT64_MAX, &len) != 0)
      len = -1;
    req_begin(r, method, len);
    if (r->admitted)
      conn_set_deadline(r->h, c, 0);
    if (r->out.status != 0 && (r->close || !may_drain(r, len)))
      return queue_reply(c, r);
    return MHD_YES;
  }
  if (*upload_size > 0) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (r->queued)
      return MHD_YES;
    if (r->out.status != 0) { /* decided: drop the body, answer at its end */
      r->drained += n;
      return r->drained > CX_HTTP_MAX_DRAIN ? MHD_NO : MHD_YES;
    }
    if (req_feed(r, upload, n)) {
      req_finish(r); /* sets the 413 */
      r->drained = r->body_seen;
    }
    return MHD_YES;
  }
  if (r->queued)
    return MHD_YES;
  /* All of it arrived in time: a slow handler (a store timing out under
   * /healthz) must not be cut by the deadline. */
  conn_set_deadline(r->h, c, 0);
  req_finish(r);
  return queue_reply(c, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
  struct cx_http_req *r = *con_cls;
  static const char *const why[] = {
      [MHD_REQUEST_TERMINATED_COMPLETED_OK] = "completed",
      [MHD_REQUEST_TERMINATED_WITH_ERROR] = "error",
      [MHD_REQUEST_TERMINATED_TIMEOUT_REACHED] = "timeout",
      [MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN] = "shutdown",
      [MHD_REQUEST_TERMINATED_READ_ERROR] = "read error",
      [MHD_REQUEST_TERMINATED_CLIENT_ABORT] = "client abort",
  };
  struct cx_http *h = cls;
  /* The next request on this connection: idle time, then its head. */
  conn_set_deadline(h, c,
                    cx_mono_now() +
                        (cx_mono)(h->timeout_s + h->head_timeout_s) * 1000000);
  if (r == NULL)
    return;
  if (r->queued && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
    req_log(r, NULL);
  else
    req_log(r, (unsigned)toe < CX_ARRAY_LEN(why) && why[toe] ? why[toe]
                                                             : "closed");
  req_free(r);
  *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
  char line[512];
  (void)cls;
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  CX_LOG(CX_LOG_WARN, "http", "libmicrohttpd: %s", line);
}

/* ---- the server --------------------------------------------------------- */

/* Splits "host:port", "[v6]:port" or ":port". */
static int parse_listen(const char *s, char **host, unsigned *port, char *err)
{
  const char *h, *he, *p;
  int64_t v;
  *host = NULL;
  if (s[0] == '[') {
    he = strchr(s, ']');
    if (he == NULL || he[1] != ':') {
      cx_err_set(err, "listen: '%s': expected [address]:port", s);
      return CX_EPARSE;
    }
    h = s + 1;
    p = he + 2;
  } else {
    he = strrchr(s, ':');
    if (he == NULL || memchr(s, ':', (size_t)(he - s)) != NULL) {
      cx_err_set(err, "listen: '%s': expected host:port, [v6]:port or :port",
                 s);
      return CX_EPARSE;
    }
    h = s;
    p = he + 1;
  }
  if (cx_parse_int64(p, 0, 65535, &v) != 0) {
    cx_err_set(err, "listen: '%s': port must be 0..65535", s);
    return CX_EPARSE;
  }
  *port = (unsigned)v;
  if (he > h) {
    *host = cx_strndup(h, (size_t)(he - h));
    if (*host == NULL)
      return -ENOMEM;
  }
  return 0;
}

int cx_http_create(const struct cx_http_opts *opts, struct cx_http **out,
                   char *err)
{
  struct cx_http_opts o = {0};
  struct cx_http *h;
  int rc;
  if (opts != NULL)
    o = *opts;
  h = cx_calloc(1, sizeof *h);
  if (h == NULL) {
    cx_err_set(err, "out of memory");
    return -ENOMEM;
  }
  rc = parse_listen(o.listen ? o.listen : "127.0.0.1:8089", &h->host,
                    &h->port_req, err);
  if (rc != 0) {
    if (rc == -ENOMEM)
      cx_err_set(err, "out of memory");
    cx_free(h);
    return rc;
  }
  h->threads = o.threads ? o.threads : 4;
  h->per_conn = o.thread_per_connection != 0;
  if (h->per_conn)
    h->threads = 1; /* the listener; connections get their own */
  h->timeout_s = o.timeout_s ? o.timeout_s : 30;
  h->max_conns = o.max_connections ? o.max_connections : 512;
  h->max_body = o.max_body ? o.max_body : CX_HTTP_MAX_BODY_DEFAULT;
  h->max_per_ip = o.max_per_ip ? o.max_per_ip : CX_HTTP_PER_IP_DEFAULT;
  h->head_timeout_s =
      o.head_timeout_s ? o.head_timeout_s : CX_HTTP_HEAD_TIMEOUT_DEFAULT;
  if ((o.tls_cert == NULL) != (o.tls_key == NULL)) {
    cx_err_set(err, "TLS needs both a certificate and a key file");
    rc = CX_EPARSE;
  } else if (o.tls_cert != NULL &&
             ((h->tls_cert = cx_strdup(o.tls_cert)) == NULL ||
              (h->tls_key = cx_strdup(o.tls_key)) == NULL)) {
    cx_err_set(err, "out of memory");
    rc = -ENOMEM;
  }
  if (rc != 0) {
    cx_free(h->tls_cert);
    cx_free(h->host);
    cx_free(h);
    return rc;
  }
  pthread_mutex_init(&h->conn_mu, NULL);
  pthread_mutex_init(&h->stream_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->conn_cv, &ca);
  pthread_condattr_destroy(&ca);
  *out = h;
  return 0;
}

int cx_http_set_gate(struct cx_http *h, cx_http_gate fn, void *ctx)
{
  if (h->started)
    return -EBUSY;
  h->gate = fn;
  h->gate_ctx = ctx;
  return 0;
}

int cx_http_route(struct cx_http *h, const char *method, const char *path,
                  unsigned flags, cx_http_handler fn, void *ctx)
{
  struct route *rt;
  if (h->started)
    return -EBUSY;
  if (method == NULL || path == NULL || fn == NULL || method[0] == '\0' ||
      strlen(method) >= sizeof rt->method || path[0] != '/' ||
      strlen(path) > CX_HTTP_MAX_PATH || strchr(path, '?') || has_ctl(method) ||
      has_ctl(path))
    return CX_EPARSE;
  for (size_t i = 0; i < h->n_routes; i++)
    if (strcmp(h->routes[i].method, method) == 0 &&
        strcmp(h->routes[i].path, path) == 0)
      return CX_EPARSE;
  if (h->n_routes >= CX_HTTP_MAX_ROUTES)
    return CX_ETOOBIG;
  rt = &h->routes[h->n_routes++];
  snprintf(rt->method, sizeof rt->method, "%s", method);
  snprintf(rt->path, sizeof rt->path, "%s", path);
  rt->flags = flags;
  rt->fn = fn;
  rt->ctx = ctx;
  return 0;
}

/* TLS 1.2 and 1.3 only, GnuTLS's default suites otherwise. */
static const char k_tls_priorities[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";

static struct MHD_Daemon *start_daemon(struct cx_http *h, unsigned flags,
                                       const struct sockaddr *sa)
{
  struct MHD_OptionItem ops[16];
  size_t n = 0;
#define OPT(o, v, p) ops[n++] = (struct MHD_OptionItem){(o), (intptr_t)(v), (p)}
  OPT(MHD_OPTION_URI_LOG_CALLBACK, on_uri, h);
  OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, h);
  OPT(MHD_OPTION_NOTIFY_CONNECTION, on_conn, h);
  OPT(MHD_OPTION_CONNECTION_TIMEOUT, h->timeout_s, NULL);
  OPT(MHD_OPTION_CONNECTION_LIMIT, h->max_conns, NULL);
  OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, h->max_per_ip, NULL);
  if (h->threads > 1)
    OPT(MHD_OPTION_THREAD_POOL_SIZE, h->threads, NULL);
  if (sa != NULL)
    OPT(MHD_OPTION_SOCK_ADDR, 0, (void *)sa);
  if (h->pem_cert != NULL) {
    flags |= MHD_USE_TLS;
    OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, h->pem_cert);
    OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, h->pem_key);
    OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)k_tls_priorities);
  }
  OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
  return MHD_start_daemon(flags, (uint16_t)h->port_req, NULL, NULL, on_access,
                          h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
                          MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
}

/* Reads a PEM file of at most CX_HTTP_MAX_PEM bytes into *out. */
static int read_pem(const char *what, const char *path, char **out, char *err)
{
  struct cx_buf b = {0};
  char chunk[4096];
  ssize_t n;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    cx_err_set(err, "%s '%s': %s", what, path, strerror(e));
    return -e;
  }
  while ((n = read(fd, chunk, sizeof chunk)) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || b.len + (size_t)n > CX_HTTP_MAX_PEM) {
      int e = n < 0 ? errno : 0;
      cx_err_set(err, "%s '%s': %s", what, path,
                 e ? strerror(e) : "larger than 256 KiB");
      close(fd);
      cx_buf_free(&b);
      return e ? -e : CX_ETOOBIG;
    }
    cx_buf_append(&b, chunk, (size_t)n);
  }
  close(fd);
  cx_buf_append(&b, "", 0); /* NUL-terminated */
  if (cx_buf_failed(&b)) {
    cx_buf_free(&b);
    cx_err_set(err, "out of memory");
    return -ENOMEM;
  }
  if (strstr(b.data, "-----BEGIN ") == NULL) {
    cx_err_set(err, "%s '%s': not a PEM file", what, path);
    cx_buf_free(&b);
    return CX_EPARSE;
  }
  *out = cx_buf_steal(&b);
  return 0;
}

static void pem_free(struct cx_http *h)
{
  if (h->pem_key != NULL) /* a private key: do not leave it in freed memory */
    explicit_bzero(h->pem_key, strlen(h->pem_key));
  cx_free(h->pem_key);
  cx_free(h->pem_cert);
  h->pem_key = h->pem_cert = NULL;
}

static int tls_load(struct cx_http *h, char *err)
{
  int rc;
  if (h->tls_cert == NULL)
    return 0;
  if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
    cx_err_set(err, "TLS configured but this libmicrohttpd has no TLS");
    return CX_EUNAVAIL;
  }
  if ((rc = read_pem("tls_cert", h->tls_cert, &h->pem_cert, err)) != 0 ||
      (rc = read_pem("tls_key", h->tls_key, &h->pem_key, err)) != 0)
    pem_free(h);
  return rc;
}

int cx_http_start(struct cx_http *h, char *err)
{
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  if (h->per_conn)
    flags |= MHD_USE_THREAD_PER_CONNECTION;
  else
    flags |= MHD_ALLOW_SUSPEND_RESUME; /* streamed replies park */
  const union MHD_DaemonInfo *di;
  int rc;
  if (h->started)
    return -EBUSY;
  if ((rc = tls_load(h, err)) != 0)
    return rc;
  if (h->host == NULL) {
    h->d = start_daemon(h, flags | MHD_USE_DUAL_STACK, NULL);
    if (h->d == NULL) /* no IPv6 on this host: IPv4 only */
      h->d = start_daemon(h, flags, NULL);
  } else {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int g = getaddrinfo(h->host, NULL, &hints, &ai);
    if (g != 0 || ai == NULL) {
      cx_err_set(err, "listen: cannot resolve '%s': %s", h->host,
                 gai_strerror(g));
      pem_free(h);
      return CX_EPARSE;
    }
    if (ai->ai_family == AF_INET6) {
      ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port =
          htons((uint16_t)h->port_req);
      flags |= MHD_USE_IPv6;
    } else {
      ((struct sockaddr_in *)ai->ai_addr)->sin_port =
          htons((uint16_t)h->port_req);
    }
    h->d = start_daemon(h, flags, ai->ai_addr);
    freeaddrinfo(ai);
  }
  if (h->d == NULL) {
    if (h->pem_cert != NULL)
      cx_err_set(err,
                 "cannot serve HTTPS on %s:%u (address in use, or a bad "
                 "certificate or key: see the log)",
                 h->host ? h->host : "*", h->port_req);
    else
      cx_err_set(err, "cannot listen on %s:%u (address in use or not local?)",
                 h->host ? h->host : "*", h->port_req);
    pem_free(h);
    return CX_EUNAVAIL;
  }
  h->reaper_stop = 0;
  if (pthread_create(&h->reaper, NULL, reaper_main, h) != 0) {
    cx_err_set(err, "cannot start the connection reaper thread");
    MHD_stop_daemon(h->d);
    h->d = NULL;
    pem_free(h);
    return -EAGAIN;
  }
  h->reaper_on = 1;
  di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  h->port = di ? di->port : h->port_req;
  h->started = 1;
  CX_LOG(CX_LOG_INFO, "http", "listening on %s%s%s:%u%s (%s%u)",
         h->host && strchr(h->host, ':') ? "[" : "", h->host ? h->host : "*",
         h->host && strchr(h->host, ':') ? "]" : "", h->port,
         h->pem_cert ? " with TLS" : "",
         h->per_conn ? "thread per connection, max " : "threads: ",
         h->per_conn ? h->max_conns : h->threads);
  return 0;
}

unsigned cx_http_port(const struct cx_http *h)
{
  return h && h->d ? h->port : 0;
}

void cx_http_stop(struct cx_http *h)
{
  if (h == NULL || h->d == NULL)
    return;
  /* Streams end at their next fill: wake the parked ones (MHD will not
   * stop with connections suspended). */
  atomic_store(&h->stopping, 1);
  streams_wake_all(h);
  MHD_stop_daemon(h->d);
  h->d = NULL;
  h->port = 0;
  if (h->reaper_on) {
    pthread_mutex_lock(&h->conn_mu);
    h->reaper_stop = 1;
    pthread_cond_signal(&h->conn_cv);
    pthread_mutex_unlock(&h->conn_mu);
    pthread_join(h->reaper, NULL);
    h->reaper_on = 0;
  }
  pem_free(h);
}

void cx_http_destroy(struct cx_http *h)
{
  if (h == NULL)
    return;
  cx_http_stop(h);
  pthread_mutex_destroy(&h->conn_mu);
  pthread_cond_destroy(&h->conn_cv);
  pthread_mutex_destroy(&h->stream_mu);
  cx_free(h->tls_cert);
  cx_free(h->tls_key);
  cx_free(h->host);
  cx_free(h);
}

void cx_http_stats_each(const struct cx_http *h, cx_http_stat_fn fn, void *ctx)
{
  struct cx_http *m = (struct cx_http *)h; /* atomics are read-only here */
  for (size_t i = 0; i <= h->n_routes; i++) {
    _Atomic uint64_t *c = i < h->n_routes ? m->routes[i].counts : m->unmatched;
    for (size_t s = 0; s < N_SLOTS; s++) {
      uint64_t v = atomic_load_explicit(&c[s], memory_order_relaxed);
      if (v == 0)
        continue;
      if (i < h->n_routes)
        fn(h->routes[i].method, h->routes[i].path,
           s < CX_ARRAY_LEN(k_statuses) ? k_statuses[s] : 0, v, ctx);
      else
        fn(NULL, NULL, s < CX_ARRAY_LEN(k_statuses) ? k_statuses[s] : 0, v,
           ctx);
    }
  }
}
