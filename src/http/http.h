/*
 * http: the admin's HTTP server (SPEC §4) -- libmicrohttpd underneath, a
 * small exact-path router, request bodies bounded and parsed with jansson,
 * and the reply envelope
 *
 *   success  HTTP 200  {"code":0,"msg":"ok","data":...}
 *   error    HTTP 4xx/5xx  {"code":1001,"msg":"...","field":"name"}
 *            ("field" only when one field is at fault; "data" only when
 *            the caller attached detail, e.g. /healthz)
 *
 * built with jansson (never by pasting strings) and sent as
 * "application/json; charset=utf-8".
 *
 * Life cycle: cx_http_create -> cx_http_route (repeat) -> cx_http_start ->
 * ... -> cx_http_stop -> cx_http_destroy. The route table is frozen by
 * cx_http_start, so serving needs no lock on it.
 *
 * Threads: handlers run on libmicrohttpd's threads, several at once, one
 * request per call. A handler must be thread-safe with respect to its ctx;
 * the request object it is given is its own until it returns and must not
 * be kept. Counters are atomic. Two threading models (opts):
 *   - a pool of opts.threads workers (epoll), each polling its share of
 *     the connections: cheapest per request, but a handler that blocks
 *     (store, etcd) also holds up the other connections of its worker;
 *   - opts.thread_per_connection: one thread per connection (bounded by
 *     max_connections), so a slow handler delays only its own client.
 *
 * The pipeline (route lookup, query and body checks, JSON parsing, handler
 * dispatch, envelope) is also reachable without sockets through
 * cx_http_dispatch, which the fuzz target and unit tests use.
 *
 * Requests the router cannot place get codes SPEC §4 does not list (it has
 * none for them); they are appended to the table below, in its 12xx
 * ("not found"-like) and 13xx ("server side") blocks:
 *   404 / 1204  no such route (not 1201, so a client never mistakes a
 *               missing endpoint for a missing job/node/user)
 *   405 / 1205  route exists, method does not (reply has an Allow header)
 *   500 / 1303  internal error (a handler failed or memory ran out)
 *   501 / 1304  a Transfer-Encoding other than "chunked"
 *
 * Ambiguous framing -- Content-Length together with Transfer-Encoding, two
 * different Content-Lengths, a Content-Length that is not plain digits, an
 * unknown transfer coding -- is refused (400/1001, or 501/1304) before
 * routing, its body unread, and the connection closed: a proxy in front
 * could frame the same bytes differently (request smuggling).
 *
 * Every request gets one access-log line through CX_LOG (component
 * "http"): method, path (without the query string), status, reply bytes,
 * duration in ms and the remote address. Bodies, query strings and
 * headers (Authorization) are never logged.
 */
#ifndef CX_HTTP_H
#define CX_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "util/util.h"

/* ---- the error table (SPEC §4) ---------------------------------------- */

/* Append-only, like CX_ERRNO_MAP: X(name, code, http status, default msg).
 * The default msg is used when a reply passes no message of its own. */
#define CX_HTTP_CODE_MAP(X)                                                    \
  X(BAD_INPUT, 1001, 400, "invalid input")                                     \
  X(BAD_SPEC, 1002, 400, "invalid cron spec")                                  \
  X(NODE_UNAVAIL, 1003, 400, "node not found or not alive")                    \
  X(CMD_AUTO, 1004, 400, "cmd jobs cannot be auto-allocated")                  \
  X(UNAUTHORIZED, 1101, 401, "no or bad credentials")                          \
  X(FORBIDDEN, 1102, 403, "role not allowed")                                  \
  X(NOT_FOUND, 1201, 404, "not found")                                         \
  X(CONFLICT, 1202, 409, "conflict")                                           \
  X(TOO_LARGE, 1203, 413, "body too large")                                    \
  X(NO_ROUTE, 1204, 404, "no such route")                                      \
  X(BAD_METHOD, 1205, 405, "method not allowed")                               \
  X(NO_NODE, 1301, 503, "no alive node to place the job on")                   \
  X(UNAVAIL, 1302, 503, "store or coordination service unavailable")           \
  X(INTERNAL, 1303, 500, "internal error")                                     \
  X(BAD_CODING, 1304, 501, "unsupported transfer coding")

enum cx_http_code {
  CX_HTTP_OK = 0,
#define CX__HTTP_CODE_ENUM(name, code, status, msg) CX_HTTP_##name = (code),
  CX_HTTP_CODE_MAP(CX__HTTP_CODE_ENUM)
#undef CX__HTTP_CODE_ENUM
};

/* HTTP status of a code (200 for CX_HTTP_OK); 0 for a code not in the
 * table. Thread-safe. */
int cx_http_code_status(int code);
/* Default message of a code ("ok" for CX_HTTP_OK); NULL for a code not in
 * the table. Thread-safe. */
const char *cx_http_code_msg(int code);

/* Content types of the replies. */
#define CX_HTTP_CT_JSON "application/json; charset=utf-8"
#define CX_HTTP_CT_SSE "text/event-stream; charset=utf-8"
#define CX_HTTP_CT_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"

/* ---- limits ------------------------------------------------------------- */

#define CX_HTTP_MAX_BODY_DEFAULT (1024 * 1024) /* SPEC §4 */
#define CX_HTTP_MAX_QUERY 4096                 /* bytes of raw query string */
#define CX_HTTP_MAX_PARAMS 64                  /* query parameters */
#define CX_HTTP_MAX_MSG 512    /* bytes of an error msg (longer is cut) */
#define CX_HTTP_MAX_ROUTES 128 /* routes per server */
#define CX_HTTP_MAX_PATH 128   /* bytes of a registered route path */
/* A request answered before its body was read (404, 405, 413...) still has
 * up to this many body bytes read and dropped, so the client is not reset
 * while sending and reads the reply; past it the connection is closed. */
#define CX_HTTP_MAX_DRAIN (8 * 1024 * 1024)
#define CX_HTTP_MAX_REPLY_HEADERS 8

/* ---- the server -------------------------------------------------------- */

struct cx_http;     /* opaque: server + routes + counters */
struct cx_http_req; /* opaque: one request, valid during its handler */

struct cx_http_opts {
  /* "host:port", "[v6]:port" or ":port" (all interfaces, IPv6 and IPv4
   * where the host allows). host may be a name; port 0 picks a free port
   * (see cx_http_port). NULL = "127.0.0.1:8089" (SPEC §2). */
  const char *listen;
  unsigned threads;          /* pool size; 0 = 4 (ignored per-connection) */
  int thread_per_connection; /* 1 = a thread per connection, no pool */
  unsigned timeout_s;        /* idle connection timeout; 0 = 30 s */
  unsigned max_connections;  /* concurrent connections; 0 = 512 */
  size_t max_body;           /* request body limit; 0 = 1 MiB */
  /* Concurrent connections from one address (past it, a new one is closed
   * at once); 0 = CX_HTTP_PER_IP_DEFAULT. */
  unsigned max_per_ip;
  /* A request's head must be complete within this many seconds of the
   * connection opening (on a kept-alive connection: of the previous
   * request's end, plus timeout_s) -- an absolute deadline, not reset by
   * trickled bytes; past it the connection is closed. A request the gate
   * has not admitted (public routes, refused ones, no gate) must also have
   * its whole body in by then. 0 = CX_HTTP_HEAD_TIMEOUT_DEFAULT. */
  unsigned head_timeout_s;
  /* PEM certificate chain and private key files: both set = HTTPS only
   * (TLS 1.2+), every reply carrying Strict-Transport-Security; both NULL
   * = plain HTTP. Read by cx_http_start. */
  const char *tls_cert;
  const char *tls_key;
};

#define CX_HTTP_PER_IP_DEFAULT 64
#define CX_HTTP_HEAD_TIMEOUT_DEFAULT 10
#define CX_HTTP_MAX_PEM (256 * 1024) /* bytes of a TLS cert or key file */
#define CX_HTTP_HSTS "max-age=31536000"
/* Bytes a gate may stash in a request (cx_http_req_set_note). */
#define CX_HTTP_MAX_NOTE 256

/* Route flags. */
enum {
  /* Keep the raw body for cx_http_req_body (otherwise it is read and
   * dropped). The size limit applies either way: past it the body is no
   * longer stored, the answer is 413/1203 -- at once for a client that
   * waits for "100 Continue", after reading and dropping the rest for
   * bodies up to CX_HTTP_MAX_DRAIN -- and larger bodies get their
   * connection closed. */
  CX_HTTP_F_BODY = 1 << 0,
  /* The body must be a JSON object (implies CX_HTTP_F_BODY): the pipeline
   * parses it before the handler runs and answers 400/1001 itself when it
   * is malformed (msg gives line and column), not an object, not UTF-8 or
   * has duplicate keys. An empty body counts as {}. */
  CX_HTTP_F_JSON = 1 << 1 | CX_HTTP_F_BODY,
  /* The gate (cx_http_set_gate) is not consulted: anyone may call it. */
  CX_HTTP_F_PUBLIC = 1 << 2,
  /* The path is a prefix ("/ui/"): the route answers every path that starts
   * with it and that no exact route has (a web app's deep links). */
  CX_HTTP_F_PREFIX = 1 << 3,
};

/* A handler answers through one of the cx_http_reply_* calls (the last one
 * made wins). Returning without a reply sends 500/1303. */
typedef void (*cx_http_handler)(struct cx_http_req *req, void *ctx);

/* Creates a server (not yet listening) from opts (NULL = all defaults; the
 * listen string is copied). Returns 0 and *out, CX_EPARSE for a bad listen
 * string or -ENOMEM, with a message in err. Thread-safe. */
int cx_http_create(const struct cx_http_opts *opts, struct cx_http **out,
                   char *err);

/* Registers handler fn(req, ctx) for exact method ("GET", "POST", ...) and
 * path ("/job/add"; no query). Only before cx_http_start, from one thread.
 * Returns 0; CX_EPARSE for a bad method/path or a duplicate
 * (method, path); CX_ETOOBIG past CX_HTTP_MAX_ROUTES; -EBUSY once started.
 * ctx is borrowed and must outlive the server. */
int cx_http_route(struct cx_http *h, const char *method, const char *path,
                  unsigned flags, cx_http_handler fn, void *ctx);

/* The gate: called once per request to a route without CX_HTTP_F_PUBLIC,
 * when its head is in and before one byte of its body is read (also for
 * cx_http_dispatch). It returns 0 to admit the request, or replies (401,
 * 403, 503 ...) and returns -1: that reply is sent at once, the body is
 * never read and the connection is closed. It runs on the serving threads,
 * like a handler. Only before cx_http_start; NULL fn removes it. */
typedef int (*cx_http_gate)(struct cx_http_req *req, void *ctx);
int cx_http_set_gate(struct cx_http *h, cx_http_gate fn, void *ctx);

/* Binds and starts serving. Returns 0, or -errno / CX_EUNAVAIL (with a
 * message in err) when the address cannot be bound. Not thread-safe with
 * respect to cx_http_stop on the same server. */
int cx_http_start(struct cx_http *h, char *err);

/* The bound port (useful with ":0"); 0 when not started. Thread-safe. */
unsigned cx_http_port(const struct cx_http *h);

/* Stops listening, closes every connection and waits for running handlers
 * to return (a stopped server cannot be started again; cx_http_dispatch
 * still works). Idempotent; NULL is ignored. Not thread-safe with respect to
 * cx_http_start. */
void cx_http_stop(struct cx_http *h);

/* Stops (if needed) and frees. NULL is ignored. */
void cx_http_destroy(struct cx_http *h);

/* ---- counters ----------------------------------------------------------- */

/* Calls fn once per (route, status) pair with a non-zero count, routes in
 * registration order. method and path are NULL for requests no route
 * matched (404/1204 and requests cut short before routing). status is one
 * of 200 400 401 403 404 405 409 413 500 503, or 0 for any other status.
 * A request is counted when its reply is handed to the server, so one
 * answered request is counted once, before its client can read the reply;
 * requests never answered (timeouts, aborts, bodies past
 * CX_HTTP_MAX_DRAIN) are not. Counts are read atomically one by one (not a
 * consistent snapshot). Thread-safe. */
typedef void (*cx_http_stat_fn)(const char *method, const char *path,
                                int status, uint64_t count, void *ctx);
void cx_http_stats_each(const struct cx_http *h, cx_http_stat_fn fn, void *ctx);

/* ---- the request, for handlers ----------------------------------------- */

/* All strings returned are borrowed from req and valid until the handler
 * returns; all are NUL-terminated and, for query values, valid UTF-8. */
const char *cx_http_req_method(const struct cx_http_req *req);
const char *cx_http_req_path(const struct cx_http_req *req);
/* Numeric remote address ("127.0.0.1", "::1"), or "-" when unknown. */
const char *cx_http_req_remote(const struct cx_http_req *req);
/* First request header with this name (case-insensitive), or NULL. */
const char *cx_http_req_header(const struct cx_http_req *req, const char *name);
/* Query parameters, percent- and '+'-decoded, in the order sent (repeated
 * keys appear repeatedly). The pipeline has already answered 400/1001 for
 * malformed escapes, %00, invalid UTF-8, more than CX_HTTP_MAX_PARAMS
 * parameters or a query over CX_HTTP_MAX_QUERY bytes. */
size_t cx_http_req_query_count(const struct cx_http_req *req);
/* i-th parameter; returns 0, or CX_ENOTFOUND when i is out of range. */
int cx_http_req_query_at(const struct cx_http_req *req, size_t i,
                         const char **name, const char **value);
/* Value of the first parameter called name, or NULL. A parameter with no
 * '=' has the value "". */
const char *cx_http_req_query(const struct cx_http_req *req, const char *name);
/* Raw body (CX_HTTP_F_BODY routes; others: "" and 0). NUL-terminated. */
const char *cx_http_req_body(const struct cx_http_req *req, size_t *len);
/* Parsed body of a CX_HTTP_F_JSON route: a borrowed JSON object (never
 * NULL for such routes); NULL for other routes. */
json_t *cx_http_req_json(const struct cx_http_req *req);

/* A note the gate leaves for the handler (e.g. who was authenticated):
 * len bytes are copied (CX_ETOOBIG past CX_HTTP_MAX_NOTE). cx_http_req_note
 * returns it and its length, or NULL when none was set. */
int cx_http_req_set_note(struct cx_http_req *req, const void *p, size_t len);
const void *cx_http_req_note(const struct cx_http_req *req, size_t *len);

/* ---- replies ------------------------------------------------------------ */

/* 200 {"code":0,"msg":"ok","data":data}. Takes ownership of data (NULL =
 * JSON null). Returns 0 or -ENOMEM (the request then gets 500/1303). */
int cx_http_reply_ok(struct cx_http_req *req, json_t *data);

/* Error reply with code's HTTP status: {"code":code,"msg":msg,"field":field}
 * where msg is printf-formatted (NULL fmt = the code's default message),
 * cut at CX_HTTP_MAX_MSG bytes, invalid UTF-8 replaced by '?'; field may be
 * NULL (omitted). A code not in the table is sent as 500/1303. Returns 0
 * or -ENOMEM. */
int cx_http_reply_error(struct cx_http_req *req, int code, const char *field,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The same with a "data" member (ownership of data is taken; NULL = none),
 * for errors that carry detail such as /healthz's 503. */
int cx_http_reply_error_data(struct cx_http_req *req, int code,
                             const char *field, json_t *data, const char *fmt,
                             ...) __attribute__((format(printf, 5, 6)));

/* A non-envelope reply (for /metrics): status, content type (copied) and
 * len bytes of body (copied). Returns 0, CX_EPARSE for a bad status or a
 * content type with control characters, or -ENOMEM. */
int cx_http_reply_raw(struct cx_http_req *req, int status,
                      const char *content_type, const void *body, size_t len);

/* A streamed reply (server-sent events, long downloads): status and
 * content type now, the body as fill produces it, sent chunked.
 *   fill(ctx, buf, max) runs on a serving thread whenever the client can
 *   take bytes: it returns how many it wrote into buf (> 0), 0 when it has
 *   nothing now, or CX_HTTP_STREAM_END to finish the reply. After a 0 the
 *   connection is parked -- holding no thread -- until
 *   cx_http_stream_wake(handle) or the next tick (every
 *   CX_HTTP_STREAM_TICK_MS), so fill can also send keep-alives, notice
 *   that its source is gone, and a client that left is noticed.
 *   (Thread-per-connection servers wait on the connection's thread
 *   instead.) What MHD buffers per connection is bounded (16 KiB): a
 *   client that reads slowly only gets fill called less often.
 *   done(ctx) runs exactly once when the reply is over (ended, client
 *   gone, server stopping -- fill then sees no more calls --, or the reply
 *   replaced or never sent); after it returns the handle is invalid, so
 *   whatever calls cx_http_stream_wake must be stopped inside done.
 * *handle (optional) gets the handle. On error done(ctx) has run and the
 * request gets 500. Through cx_http_dispatch the body is what fill gives
 * until it ends or returns 0. Returns 0, CX_EPARSE or -ENOMEM. */
#define CX_HTTP_STREAM_END ((ssize_t)-1)
#define CX_HTTP_STREAM_TICK_MS 500
struct cx_http_stream;
typedef ssize_t (*cx_http_stream_fill)(void *ctx, char *buf, size_t max);
typedef void (*cx_http_stream_done)(void *ctx);
int cx_http_reply_stream(struct cx_http_req *req, int status,
                         const char *content_type, cx_http_stream_fill fill,
                         cx_http_stream_done done, void *ctx,
                         struct cx_http_stream **handle);
/* Tells a stream that fill has bytes again. Thread-safe; valid from
 * cx_http_reply_stream until done(ctx) returns. */
void cx_http_stream_wake(struct cx_http_stream *s);

/* Adds a header to the reply (e.g. "WWW-Authenticate"); both copied. Kept
 * across later cx_http_reply_* calls. Returns 0, CX_EPARSE for an empty
 * name or control characters (no header injection), CX_ETOOBIG past
 * CX_HTTP_MAX_REPLY_HEADERS, or -ENOMEM. */
int cx_http_reply_header(struct cx_http_req *req, const char *name,
                         const char *value);

/* ---- the pipeline without sockets ----------------------------------------
 * Runs one request through exactly what a socket request goes through
 * (minus the socket): route lookup, limits, query and JSON checks, the
 * handler, the envelope, the counters and the access log. Usable whether or
 * not the server was started; thread-safe like serving. */

struct cx_http_header {
  const char *name;
  const char *value;
};

struct cx_http_input {
  const char *method;                   /* "GET" */
  const char *uri;                      /* request target: path[?query] */
  const struct cx_http_header *headers; /* may be NULL when n_headers 0 */
  size_t n_headers;
  const void *body; /* may be NULL when body_len is 0 */
  size_t body_len;
  const char *remote; /* NULL = "-" */
};

struct cx_http_output {
  int status;
  char *content_type;
  char *body; /* NUL-terminated; body_len excludes the NUL */
  size_t body_len;
  struct cx_http_header headers[CX_HTTP_MAX_REPLY_HEADERS]; /* owned */
  size_t n_headers;
};

/* Fills *out (caller-owned struct; free its contents with
 * cx_http_output_free). Returns 0, or -ENOMEM when not even the 500 reply
 * could be built (*out is then empty). */
int cx_http_dispatch(struct cx_http *h, const struct cx_http_input *in,
                     struct cx_http_output *out);
void cx_http_output_free(struct cx_http_output *out);

#endif
