/*
 * The node's live-output listener (issue 15): node.listen serves the
 * admins, and only them, the output of the runs running here.
 *
 *   GET /live/output?run_id=R&offset=N[&wait_ms=W]
 *   Authorization: Bearer <cluster.secret>
 *
 * Reply 200, application/octet-stream: the bytes from N (at most
 * CX_LIVE_SERVE_CHUNK), after waiting up to W ms (<= 5000) for some when
 * there are none yet. Headers say where they sit:
 *   X-Cronix-Offset  the offset of the first byte sent (N + missed)
 *   X-Cronix-Missed  bytes the head-and-tail cap dropped before them
 *   X-Cronix-Total   bytes the run has written
 *   X-Cronix-End     "<status> <exit code>" once the run has ended and
 *                    the reply reaches its last byte
 * 404 when the run is not live here (never ran here, or ended more than
 * CX_LIVE_LINGER_MS ago); 401 without the secret (compared in constant
 * time); 400 bad parameters. A thread per connection (a waiting request
 * holds one), at most CX_LIVE_SERVE_CONNS connections.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "http/http.h"
#include "live/live.h"
#include "node/node-int.h"

#define CX_LIVE_SERVE_CHUNK (64 * 1024)
#define CX_LIVE_SERVE_CONNS 64
#define CX_LIVE_SERVE_WAIT_MAX 5000

/* Constant-time equality of a and the secret (no early exit on the first
 * differing byte, nor on length). */
static int secret_eq(const char *a, const char *secret)
{
  size_t la = strlen(a), ls = strlen(secret);
  unsigned char d = la != ls;
  for (size_t i = 0; i < ls; i++)
    d |= (unsigned char)(secret[i] ^ (i < la ? a[i] : 0));
  return d == 0;
}

static int gate(struct cx_http_req *req, void *ctx)
{
  struct cx_noded *n = ctx;
  const char *h = cx_http_req_header(req, "Authorization");
  if (h != NULL && strncmp(h, "Bearer ", 7) == 0 &&
      secret_eq(h + 7, n->live_secret))
    return 0;
  cx_http_reply_header(req, "WWW-Authenticate", "Bearer");
  cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, NULL,
                      "the cluster secret is required");
  return -1;
}

static int query_int(struct cx_http_req *req, const char *name, int64_t min,
                     int64_t max, int64_t def, int64_t *out)
{
  const char *s = cx_http_req_query(req, name);
  *out = def;
  if (s == NULL)
    return 0;
  if (cx_parse_int64(s, min, max, out) == 0)
    return 0;
  cx_http_reply_error(req, CX_HTTP_BAD_INPUT, name,
                      "%s: an integer in [%" PRId64 ", %" PRId64 "]", name, min,
                      max);
  return -1;
}

static void h_live_output(struct cx_http_req *req, void *ctx)
{
  struct cx_noded *n = ctx;
  int64_t id, off, wait;
  if (query_int(req, "run_id", 1, INT64_MAX, 0, &id) != 0 ||
      query_int(req, "offset", 0, INT64_MAX, 0, &off) != 0 ||
      query_int(req, "wait_ms", 0, CX_LIVE_SERVE_WAIT_MAX, 0, &wait) != 0)
    return;
  if (id == 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "run_id", "run_id: required");
    return;
  }
  struct cx_live *l = cx_live_find(n->live, id);
  if (l == NULL) {
    cx_http_reply_error(req, CX_HTTP_NOT_FOUND, "run_id",
                        "run %" PRId64 " is not live here", id);
    return;
  }
  if (wait > 0)
    cx_live_wait(l, (uint64_t)off, wait);
  char *buf = cx_malloc(CX_LIVE_SERVE_CHUNK);
  if (buf == NULL) {
    cx_live_unref(l);
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    return;
  }
  struct cx_live_state st;
  uint64_t at = (uint64_t)off;
  size_t got = cx_live_read(l, &at, buf, CX_LIVE_SERVE_CHUNK, &st);
  cx_live_unref(l);
  char v[64];
  snprintf(v, sizeof v, "%" PRIu64, at - got);
  cx_http_reply_header(req, "X-Cronix-Offset", v);
  snprintf(v, sizeof v, "%" PRIu64, st.missed);
  cx_http_reply_header(req, "X-Cronix-Missed", v);
  snprintf(v, sizeof v, "%" PRIu64, st.total);
  cx_http_reply_header(req, "X-Cronix-Total", v);
  if (st.ended && at >= st.total) {
    snprintf(v, sizeof v, "%s %d", st.status, st.exit_code);
    cx_http_reply_header(req, "X-Cronix-End", v);
  }
  cx_http_reply_raw(req, 200, "application/octet-stream", buf, got);
  cx_free(buf);
}

/* The URL the admins reach the listener at: its host, or the node's ip
 * when it listens on every address. */
static void advertise(struct cx_noded *n, const char *listen, unsigned port)
{
  char host[256] = "";
  const char *colon = strrchr(listen, ':');
  size_t hl = colon ? (size_t)(colon - listen) : 0;
  if (hl > 0 && hl < sizeof host)
    memcpy(host, listen, hl);
  if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 ||
      strcmp(host, "[::]") == 0)
    snprintf(host, sizeof host, "%s", n->ip);
  snprintf(n->live_url, sizeof n->live_url, "http://%s:%u", host, port);
}

int cx__noded_live_start(struct cx_noded *n, const char *listen,
                         const char *secret, char *err)
{
  if (listen == NULL || listen[0] == '\0')
    return 0;
  if (secret == NULL || strlen(secret) < 16) {
    cx_err_set(err, "node.listen: set cluster.secret (at least 16 bytes)");
    return CX_EPARSE;
  }
  if (secret != n->live_secret)
    snprintf(n->live_secret, sizeof n->live_secret, "%s", secret);
  struct cx_http_opts o = {.listen = listen,
                           .thread_per_connection = 1,
                           .max_connections = CX_LIVE_SERVE_CONNS,
                           .timeout_s = 30};
  int rc = cx_http_create(&o, &n->live_http, err);
  if (rc == 0)
    rc =
        cx_http_route(n->live_http, "GET", "/live/output", 0, h_live_output, n);
  if (rc == 0)
    rc = cx_http_set_gate(n->live_http, gate, n);
  if (rc == 0)
    rc = cx_http_start(n->live_http, err);
  if (rc != 0) {
    cx_http_destroy(n->live_http);
    n->live_http = NULL;
    return rc;
  }
  advertise(n, listen, cx_http_port(n->live_http));
  return 0;
}

void cx__noded_live_stop(struct cx_noded *n)
{
  cx_http_destroy(n->live_http);
  n->live_http = NULL;
}
