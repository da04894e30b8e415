/*
 * GET /job/output?run_id=R[&offset=N][&follow=1] (role viewer): a run's
 * output from byte offset N (issue 15).
 *
 * Offsets: while the run is live (running, or ended less than
 * CX_LIVE_LINGER_MS ago), an offset counts every byte the run wrote (all
 * its attempts); once it is only in the store, it counts the bytes of the
 * stored output. The two agree unless the head-and-tail cap cut bytes
 * (then the stored output holds the cut marker where the live stream sent
 * a "cut" event).
 *
 * Without follow: one JSON page (at most CX_OUTPUT_PAGE bytes)
 *   {"run_id","offset","next_offset","missed","output","running","status",
 *    "exit_code"}  -- an offset past the end gives "" (next_offset = it).
 * With follow=1: text/event-stream, one event per chunk:
 *   event: output  data: "<the chunk as a JSON string>"
 *   event: cut     data: {"missed":N}   bytes the cap (or a slow reader,
 *                                       below) skipped before the next chunk
 *   event: end     data: {"status":"...","exit_code":N}   then it closes
 *   event: lost    data: {"status":"lost","exit_code":-1,"node_uuid":"..."}
 *                  instead of end when the run's node went away (its key
 *                  expired) or forgot the run: then it closes
 * Cluster: a run running on another node is read from that node's
 * listener through a copy in this admin (live_proxy.c), with the same
 * offsets; without cluster.secret, or when the node has no listener, the
 * stream waits on the store and sends the stored output when the run
 * ends.
 * Every event's id is the offset after it: a client reconnecting with
 * Last-Event-ID (it wins over offset) or offset=id misses nothing and sees
 * nothing twice. Chunks end on a UTF-8 character boundary (a character
 * split by a read is held back for the next event); bytes that are not
 * UTF-8 are sent as U+FFFD but still count as bytes. A comment line is
 * sent after 15 s of silence, so proxies keep the connection.
 * Slow readers: nothing is buffered per reader beyond the current event
 * and MHD's 16 KiB. The run's live buffer (head-and-tail, the output cap)
 * is all there is: a reader that falls behind its tail gets a "cut" event
 * with the bytes it missed and carries on from the oldest byte kept.
 * Errors: 400/1001 bad run_id, offset, follow or Last-Event-ID; 404/1201
 * no such run; 503/1302 store down.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin-int.h"
#include "coord/coord.h"
#include "keys/keys.h"
#include "live/live.h"
#include "store/store.h"

#define CX_OUTPUT_PAGE (64 * 1024)  /* bytes of output per page or event */
#define KEEPALIVE_US (15 * 1000000) /* silence before a comment line */
#define STORE_POLL_US 1000000       /* a running run with no live output */
#define REMOTE_PAGE_WAIT_MS 1000    /* a page of a remote run's copy */

struct follow {
  struct cx_admin *a;
  struct cx_live *live; /* NULL: the stored output below */
  struct cx_http_stream *hs;
  int64_t run_id;
  uint64_t off;
  struct cx_buf ev; /* the event being handed over, from ev_at */
  size_t ev_at;
  int ended; /* the end event is in ev */
  /* Stored mode. */
  int running; /* the store says running: poll it */
  int remote;  /* live is this admin's copy of another node's window */
  cx_mono polled, last_sent;
  char *out;
  size_t out_len;
  char status[CX_LIVE_STATUS_LEN];
  int exit_code;
  char node[64]; /* the run's node (from the store), for "lost" */
  char chunk[CX_OUTPUT_PAGE];
};

/* The length of chunk[0..n) without a trailing character that the read
 * split (its remaining bytes come in the next read). */
static size_t utf8_whole(const char *p, size_t n)
{
  size_t k = n;
  for (int back = 0; k > 0 && back < 4; back++) {
    unsigned char c = (unsigned char)p[k - 1];
    if ((c & 0xC0) != 0x80) { /* a lead (or ASCII) byte at k - 1 */
      size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      return need > n - (k - 1) && k - 1 > 0 ? k - 1 : n;
    }
    k--;
  }
  return n;
}

/* The chunk as a JSON string (invalid UTF-8 as U+FFFD); NULL = ENOMEM. */
static json_t *text_json(const char *p, size_t n)
{
  struct cx_buf clean = {0};
  cx_utf8_clean(&clean, p, n, CX_UTF8_REPL, SIZE_MAX);
  json_t *s = cx_buf_failed(&clean)
                  ? NULL
                  : json_stringn(clean.data ? clean.data : "", clean.len);
  cx_buf_free(&clean);
  return s;
}

/* Appends the chunk as a JSON string, written directly: every follower
 * encodes every chunk, so this is the stream's hot loop (jansson's
 * json_t + dump costs several copies). Invalid UTF-8 -> \ufffd. */
static int json_text(struct cx_buf *b, const char *p, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  size_t i = 0, plain = 0;
  cx_buf_append(b, "\"", 1);
  while (i < n) {
    unsigned char c = (unsigned char)p[i];
    size_t k = c >= 0x20 && c < 0x80 && c != '"' && c != '\\'
                   ? 1
                   : (c >= 0x80 ? cx_utf8_next(p + i, n - i, NULL) : 0);
    if (k > 0) {
      i += k;
      continue;
    }
    cx_buf_append(b, p + plain, i - plain);
    char esc[8] = {'\\', 0};
    size_t el = 2;
    if (c == '"' || c == '\\')
      esc[1] = (char)c;
    else if (c == '\n')
      esc[1] = 'n';
    else if (c == '\t')
      esc[1] = 't';
    else if (c == '\r')
      esc[1] = 'r';
    else if (c < 0x20) {
      memcpy(esc + 1, "u00", 3);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      el = 6;
    } else {
      memcpy(esc + 1, "ufffd", 5); /* a byte that starts no character */
      el = 6;
    }
    cx_buf_append(b, esc, el);
    plain = ++i;
  }
  cx_buf_append(b, p + plain, n - plain);
  cx_buf_append(b, "\"", 1);
  return cx_buf_failed(b) ? -ENOMEM : 0;
}

/* Reads what follows f->off into f->chunk: from the live buffer or the
 * stored output. Returns the bytes read; *missed, *ended, *total set. */
static size_t next_chunk(struct follow *f, uint64_t *missed, int *ended)
{
  size_t got = 0;
  *missed = 0;
  if (f->live != NULL) {
    struct cx_live_state st;
    got = cx_live_read(f->live, &f->off, f->chunk, sizeof f->chunk, &st);
    *missed = st.missed;
    *ended = st.ended && f->off >= st.total;
    if (got > 0 && !(st.ended && f->off >= st.total)) {
      size_t whole = utf8_whole(f->chunk, got);
      f->off -= got - whole;
      got = whole;
      *ended = 0;
    }
    if (st.ended) {
      snprintf(f->status, sizeof f->status, "%s", st.status);
      f->exit_code = st.exit_code;
    }
    return got;
  }
  if (f->off < f->out_len) {
    got = f->out_len - f->off < sizeof f->chunk ? f->out_len - f->off
                                                : sizeof f->chunk;
    memcpy(f->chunk, f->out + f->off, got);
    got = f->off + got < f->out_len ? utf8_whole(f->chunk, got) : got;
    f->off += got;
  }
  *ended = !f->running && f->off >= f->out_len;
  return got;
}

static void stored_set(struct follow *f, struct cx_run *r)
{
  cx_free(f->out);
  f->out = r->output;
  f->out_len = r->output ? r->output_len : 0;
  r->output = NULL;
  f->running = r->status && strcmp(r->status, "running") == 0;
  snprintf(f->status, sizeof f->status, "%s", r->status ? r->status : "");
  f->exit_code = r->exit_code;
}

/* A run the store says is running but has no live output here (it runs
 * on another node): re-read it now and then until it ends. */
static void stored_poll(struct follow *f)
{
  cx_mono now = cx_mono_now();
  if (!f->running || now - f->polled < STORE_POLL_US)
    return;
  f->polled = now;
  struct cx_run r;
  char err[CX_ERR_LEN];
  memset(&r, 0, sizeof r);
  if (cx_store_run_find(f->a->store, f->run_id, &r, err) == 0)
    stored_set(f, &r);
  cx_run_clear(&r);
}

/* Formats the next event(s) into f->ev: 1 if there is one, 0 if nothing
 * is new, -1 out of memory. */
static int next_event(struct follow *f)
{
  uint64_t missed;
  int ended;
  if (f->live == NULL)
    stored_poll(f);
  uint64_t before = f->off;
  size_t got = next_chunk(f, &missed, &ended);
  cx_buf_reset(&f->ev);
  f->ev_at = 0;
  if (missed > 0)
    cx_buf_printf(&f->ev,
                  "event: cut\nid: %" PRIu64 "\ndata: {\"missed\":%" PRIu64
                  "}\n\n",
                  before + missed, missed);
  if (got > 0) {
    cx_buf_printf(&f->ev, "event: output\nid: %" PRIu64 "\ndata: ", f->off);
    if (json_text(&f->ev, f->chunk, got) != 0)
      return -1;
    cx_buf_append(&f->ev, "\n\n", 2);
  } else if (ended) {
    int lost = strcmp(f->status, "lost") == 0;
    json_t *o =
        json_pack("{s:s, s:i}", "status", f->status, "exit_code", f->exit_code);
    if (o != NULL && lost && f->node[0] &&
        json_object_set_new(o, "node_uuid", json_string(f->node)) != 0) {
      json_decref(o);
      o = NULL;
    }
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (t == NULL)
      return -1;
    cx_buf_printf(&f->ev, "event: %s\nid: %" PRIu64 "\ndata: %s\n\n",
                  lost ? "lost" : "end", f->off, t);
    free(t);
    f->ended = 1;
  } else if (missed == 0) {
    if (cx_mono_now() - f->last_sent < KEEPALIVE_US)
      return 0;
    cx_buf_printf(&f->ev, ": keep-alive\n\n");
  }
  return cx_buf_failed(&f->ev) ? -1 : 1;
}

static ssize_t follow_fill(void *ctx, char *buf, size_t max)
{
  struct follow *f = ctx;
  if (f->ev_at >= f->ev.len) {
    if (f->ended)
      return CX_HTTP_STREAM_END;
    int rc = next_event(f);
    if (rc < 0)
      return CX_HTTP_STREAM_END;
    if (rc == 0)
      return 0;
  }
  size_t n = f->ev.len - f->ev_at < max ? f->ev.len - f->ev_at : max;
  memcpy(buf, f->ev.data + f->ev_at, n);
  f->ev_at += n;
  f->last_sent = cx_mono_now();
  return (ssize_t)n;
}

static void on_live(void *arg)
{
  struct follow *f = arg;
  cx_http_stream_wake(f->hs);
}

static void follow_free(void *ctx)
{
  struct follow *f = ctx;
  if (f->live != NULL) {
    cx_live_unwatch(f->live, on_live, f);
    cx_live_unref(f->live);
  }
  cx_buf_free(&f->ev);
  cx_free(f->out);
  cx_free(f);
}

/* The JSON page (no follow). */
static void reply_page(struct cx_http_req *req, struct follow *f)
{
  uint64_t start = f->off, missed;
  int ended;
  if (f->remote) /* a copy just made has nothing yet: give it a moment */
    cx_live_wait(f->live, f->off, REMOTE_PAGE_WAIT_MS);
  size_t got = next_chunk(f, &missed, &ended);
  json_t *text = text_json(f->chunk, got);
  int running = f->live ? !ended && !f->status[0] : f->running;
  json_t *o =
      text ? json_pack("{s:I, s:I, s:I, s:I, s:o, s:b, s:s, s:i}", "run_id",
                       (json_int_t)f->run_id, "offset", (json_int_t)start,
                       "next_offset", (json_int_t)f->off, "missed",
                       (json_int_t)missed, "output", text, "running", running,
                       "status", running ? "running" : f->status, "exit_code",
                       f->exit_code)
           : NULL;
  if (o == NULL)
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
  else
    cx_http_reply_ok(req, o);
}

/* offset (or Last-Event-ID, which wins) into *off: 0 or -1 (replied). */
static int parse_offset(struct cx_http_req *req, uint64_t *off)
{
  const char *id = cx_http_req_header(req, "Last-Event-ID");
  const char *s = id ? id : cx_http_req_query(req, "offset");
  const char *field = id ? "Last-Event-ID" : "offset";
  int64_t v = 0;
  *off = 0;
  if (s == NULL || (id != NULL && s[0] == '\0'))
    return 0;
  if (cx_parse_int64(s, 0, INT64_MAX, &v) != 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, field,
                        "%s: a byte offset (an integer >= 0)", field);
    return -1;
  }
  *off = (uint64_t)v;
  return 0;
}

static void h_job_output(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  const char *s = cx_http_req_query(req, "run_id");
  const char *fs = cx_http_req_query(req, "follow");
  int64_t id;
  uint64_t off;

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, NULL) != 0)
    return;
  if (s == NULL || cx_parse_int64(s, 1, INT64_MAX, &id) != 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "run_id",
                        "run_id: required, a positive integer (a run id)");
    return;
  }
  if (fs != NULL && strcmp(fs, "0") != 0 && strcmp(fs, "1") != 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "follow", "follow: 0 or 1");
    return;
  }
  if (parse_offset(req, &off) != 0)
    return;
  struct follow *f = cx_calloc(1, sizeof *f);
  if (f == NULL) {
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    return;
  }
  f->a = a;
  f->run_id = id;
  f->off = off;
  f->exit_code = -1;
  f->live = cx_live_find(a->live, id);
  if (f->live == NULL) {
    char err[CX_ERR_LEN] = "";
    struct cx_run r;
    memset(&r, 0, sizeof r);
    int rc = cx_store_run_find(a->store, id, &r, err);
    if (rc != 0) {
      cx_run_clear(&r);
      follow_free(f);
      cx__admin_reply_backend_error(req, rc, "run", err);
      return;
    }
    stored_set(f, &r);
    f->polled = cx_mono_now();
    snprintf(f->node, sizeof f->node, "%s", r.node_uuid ? r.node_uuid : "");
    cx_run_clear(&r);
    if (f->running) { /* on another node: its copy here, or lost */
      int lost = 0;
      f->live = cx__admin_live_remote(a, id, f->node, &lost);
      f->remote = f->live != NULL;
      if (lost) {
        f->running = 0;
        snprintf(f->status, sizeof f->status, "lost");
      }
    }
  }
  if (fs == NULL || strcmp(fs, "1") != 0) {
    reply_page(req, f);
    follow_free(f);
    return;
  }
  f->last_sent = cx_mono_now();
  if (cx_http_reply_stream(req, 200, CX_HTTP_CT_SSE, follow_fill, follow_free,
                           f, &f->hs) != 0)
    return; /* follow_free ran */
  cx_http_reply_header(req, "Cache-Control", "no-cache");
  if (f->live != NULL && cx_live_watch(f->live, on_live, f) != 0)
    cx_http_reply_error(req, CX_HTTP_UNAVAIL, "run_id",
                        "too many followers of run %" PRId64, id);
}

/* ---- POST /job/running ---------------------------------------------------
 * Body {"job_id"?: N, "node_uuid"?: "..."} (role viewer): the runs running
 * now, read from the proc keys the nodes keep while an attempt runs (the
 * same source as /node/search's counts, so standalone and cluster agree,
 * and a node that died takes its keys with its lease). A run waiting
 * between two attempts has no proc key and is not listed; neither is a
 * run the node could not claim in the store (no run id to follow).
 * Reply {"list":[{"run_id","job_id","node_uuid","pid","start",
 * "scheduled_at","attempt"}], "total"}, ordered by node, job. */
static void h_job_running(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"job_id", "node_uuid", NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  const char *node = NULL;
  int64_t job_id = 0;
  char err[CX_ERR_LEN] = "", key[CX_KEY_LEN];
  struct cx_coord_kvs procs = {0};
  struct cx_key k;

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, NULL) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0 ||
      cx__admin_json_int(req, body, "job_id", 1, INT64_MAX, &job_id) < 0 ||
      cx__admin_json_str(req, body, "node_uuid", CX_KEY_UUID_MAX, &node) < 0)
    return;
  if (node != NULL && node[0] == '\0')
    node = NULL;
  if (node != NULL && !cx_key_uuid_ok(node)) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "node_uuid",
                        "node_uuid: not a node uuid");
    return;
  }
  size_t kl = cx_key_dir(key, sizeof key, a->prefix, CX_KEY_PROC, node);
  int rc = kl ? cx_coord_range(a->coord, key, kl, &procs, err) : -ENOMEM;
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "coordination", err);
    return;
  }
  json_t *list = json_array();
  for (size_t i = 0; list != NULL && i < procs.n; i++) {
    const struct cx_coord_kv *kv = &procs.kvs[i];
    if (!cx__admin_key_is(a, CX_KEY_PROC, kv->key, kv->key_len, &k) ||
        (job_id > 0 && k.id != job_id))
      continue;
    json_t *v = json_loadb(kv->value, kv->value_len, 0, NULL);
    json_int_t run = json_integer_value(json_object_get(v, "run_id"));
    json_t *e =
        run > 0
            ? json_pack("{s:I, s:I, s:s, s:I, s:I, s:I, s:I}", "run_id", run,
                        "job_id", (json_int_t)k.id, "node_uuid", k.uuid, "pid",
                        json_integer_value(json_object_get(v, "pid")), "start",
                        json_integer_value(json_object_get(v, "start")),
                        "scheduled_at",
                        json_integer_value(json_object_get(v, "scheduled_at")),
                        "attempt",
                        json_integer_value(json_object_get(v, "attempt")))
            : NULL;
    json_decref(v);
    if (run > 0 && (e == NULL || json_array_append_new(list, e) != 0)) {
      json_decref(list);
      list = NULL;
    }
  }
  cx_coord_kvs_free(&procs);
  json_t *o = list ? json_pack("{s:o, s:I}", "list", list, "total",
                               (json_int_t)json_array_size(list))
                   : NULL;
  if (o == NULL)
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
  else
    cx_http_reply_ok(req, o);
}

int cx__admin_routes_output(struct cx_admin *a)
{
  static const struct cx__admin_route routes[] = {
      {"GET", "/job/output", h_job_output},
      {"POST", "/job/running", h_job_running},
  };
  return cx__admin_register(a, routes, CX_ARRAY_LEN(routes));
}
