/*
 * Live output of running jobs (issue 15) on real processes: a job that
 * prints a line every 300 ms for 3 s is followed over server-sent events
 * (GET /job/output?follow=1) from its first line to its end event, a
 * follower resumes from its last event id with nothing missed or
 * repeated, a viewer may follow and no one unauthenticated may; in the
 * cluster the stream comes from the node's listener through the admin,
 * a SIGKILLed node ends it with a "lost" event, and the listener refuses
 * requests without cluster.secret.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "support/rawhttp.h"
#include "util/util.h"

#define TICKER "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.3; done"
#define TICKER_OUT                                                             \
  "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\nline 8\nline "      \
  "9\nline 10\n"

/* A follower: one HTTP/1.0 connection (the reply then ends with the
 * connection: no chunked framing to undo). */
struct sse {
  int fd;
  struct cx_buf in;
  size_t at; /* parsed up to here */
  int status;
};

struct event {
  char name[32];
  long long id; /* -1: none */
  char *data;   /* malloc'd */
};

static unsigned api_port(void)
{
  const char *p = strrchr(E.base, ':');
  return p ? (unsigned)atoi(p + 1) : 0;
}

/* Opens GET path with the bearer token tok (NULL = none) and, when
 * last_id >= 0, Last-Event-ID; reads the reply head. */
static void sse_open(struct sse *s, unsigned port, const char *path,
                     const char *tok, long long last_id)
{
  char req[1024];
  int n =
      snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n", path);
  if (tok != NULL)
    n += snprintf(req + n, sizeof req - (size_t)n,
                  "Authorization: Bearer %s\r\n", tok);
  if (last_id >= 0)
    n += snprintf(req + n, sizeof req - (size_t)n, "Last-Event-ID: %lld\r\n",
                  last_id);
  snprintf(req + n, sizeof req - (size_t)n, "\r\n");
  memset(s, 0, sizeof *s);
  s->fd = cx_raw_connect(NULL, port);
  CHECK(s->fd >= 0, "connect: %s", strerror(-s->fd));
  CHECK(cx_raw_send(s->fd, req, strlen(req)) == 0, "send");
  /* The head. */
  for (;;) {
    char *end = s->in.data ? strstr(s->in.data, "\r\n\r\n") : NULL;
    if (end != NULL) {
      s->at = (size_t)(end + 4 - s->in.data);
      break;
    }
    struct pollfd p = {s->fd, POLLIN, 0};
    CHECK(poll(&p, 1, 20000) == 1, "no reply head within 20 s");
    char b[4096];
    ssize_t r = read(s->fd, b, sizeof b);
    CHECK(r > 0, "connection closed before the reply head");
    cx_buf_append(&s->in, b, (size_t)r);
  }
  s->status = cx_raw_status(s->in.data);
}

static void sse_close(struct sse *s)
{
  if (s->fd >= 0)
    close(s->fd);
  s->fd = -1;
  cx_buf_free(&s->in);
}

/* The next event (comments skipped) within timeout_ms: 1, or 0 when the
 * stream closed or nothing came. */
static int sse_next(struct sse *s, struct event *ev, int timeout_ms)
{
  int64_t until = cx_wall_ms() + timeout_ms;
  for (;;) {
    char *start = s->in.data + s->at;
    char *end = strstr(start, "\n\n");
    if (end != NULL) {
      s->at = (size_t)(end + 2 - s->in.data);
      *end = '\0';
      if (start[0] == ':')
        continue; /* a keep-alive comment */
      memset(ev, 0, sizeof *ev);
      ev->id = -1;
      for (char *line = start; line != NULL && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
          *nl = '\0';
        if (strncmp(line, "event: ", 7) == 0)
          snprintf(ev->name, sizeof ev->name, "%s", line + 7);
        else if (strncmp(line, "id: ", 4) == 0)
          ev->id = atoll(line + 4);
        else if (strncmp(line, "data: ", 6) == 0)
          ev->data = strdup(line + 6);
        line = nl ? nl + 1 : NULL;
      }
      return 1;
    }
    int left = (int)(until - cx_wall_ms());
    if (left <= 0)
      return 0;
    struct pollfd p = {s->fd, POLLIN, 0};
    if (poll(&p, 1, left) != 1)
      return 0;
    char b[4096];
    ssize_t r = read(s->fd, b, sizeof b);
    if (r <= 0)
      return 0;
    cx_buf_append(&s->in, b, (size_t)r);
  }
}

/* The text of an output event's data (a JSON string); appended to out. */
static void data_text(const struct event *ev, struct cx_buf *out)
{
  json_t *j = json_loads(ev->data ? ev->data : "", JSON_DECODE_ANY, NULL);
  CHECK(json_is_string(j), "output event data is not a JSON string: %s",
        ev->data ? ev->data : "(none)");
  cx_buf_append(out, json_string_value(j), json_string_length(j));
  json_decref(j);
}

/* Starts the ticker once and returns its run id (from /job/running). */
static int64_t ticker_start(const char *cmd)
{
  static int made;
  char name[32];
  snprintf(name, sizeof name, "ticker-%d", ++made);
  int64_t job = e2e_job_put(0, name, "0 0 0 1 1 *", 1, cmd, NULL);
  e2e_job_action("once", job);
  char body[64];
  snprintf(body, sizeof body, "{\"job_id\":%lld}", (long long)job);
  for (int i = 0; i < 200; i++) {
    json_t *d = e2e_api("/job/running", body);
    json_t *first = json_array_get(json_object_get(d, "list"), 0);
    int64_t run = first ? e2e_int(first, "run_id") : 0;
    json_decref(d);
    if (run > 0)
      return run;
    usleep(50 * 1000);
  }
  CHECK(0, "/job/running never listed the ticker's run");
  return 0;
}

/* Follows run (GET /job/output?run_id=R&follow=1 plus extra) as tok,
 * expecting status 200. */
static void sse_follow(struct sse *s, int64_t run, const char *extra,
                       const char *tok, long long last_id)
{
  char path[160];
  snprintf(path, sizeof path, "/job/output?run_id=%lld&follow=1%s",
           (long long)run, extra);
  sse_open(s, api_port(), path, tok, last_id);
  CHECK(s->status == 200, "follow %s: status %d", path, s->status);
}

/* Reads events until end/lost (or closed): appends output text, checks
 * ids grow with the bytes, returns the final event's name in last and
 * the number of output events. */
static int follow_all(struct sse *s, long long from, struct cx_buf *out,
                      char *last, size_t cap, long long *last_id)
{
  struct event ev;
  long long pos = from;
  int outputs = 0;
  last[0] = '\0';
  while (sse_next(s, &ev, 20000)) {
    if (strcmp(ev.name, "output") == 0) {
      outputs++;
      size_t before = out->len;
      data_text(&ev, out);
      CHECK(ev.id == pos + (long long)(out->len - before),
            "id %lld after %zu bytes from %lld", ev.id, out->len - before, pos);
      pos = ev.id;
    }
    CHECK(strcmp(ev.name, "cut") != 0, "a cut event in a small output");
    if (strcmp(ev.name, "end") == 0 || strcmp(ev.name, "lost") == 0)
      snprintf(last, cap, "%s %s", ev.name, ev.data ? ev.data : "");
    free(ev.data);
    if (last[0])
      break;
  }
  *last_id = pos;
  return outputs;
}

static void check_follow_to_end(void)
{
  int64_t run = ticker_start(TICKER);
  char last[256];
  struct sse s;
  sse_follow(&s, run, "", E.tok, -1);
  CHECK(strstr(s.in.data, "text/event-stream") != NULL, "follow: not SSE");
  struct cx_buf out = {0};
  long long id;
  /* The run has only begun: its lines come as they are printed, in more
   * than one event. */
  int outputs = follow_all(&s, 0, &out, last, sizeof last, &id);
  CHECK(outputs >= 2, "%d output event(s): not live", outputs);
  cx_buf_append(&out, "", 1);
  CHECK(strcmp(out.data, TICKER_OUT) == 0, "followed output: \"%s\"", out.data);
  CHECK(strstr(last, "end ") == last && strstr(last, "\"success\"") != NULL,
        "final event: %s", last);
  CHECK(id == (long long)strlen(TICKER_OUT), "last id %lld", id);
  /* The server closes after the end event. */
  struct event ev;
  CHECK(sse_next(&s, &ev, 5000) == 0, "an event after the end");
  sse_close(&s);
  cx_buf_free(&out);
}

static void check_resume(void)
{
  int64_t run = ticker_start(TICKER);
  char path[128], last[256];
  struct sse s;
  struct event ev;
  struct cx_buf out = {0};
  long long id = 0;
  sse_follow(&s, run, "", E.tok, -1);
  /* Two output events, then hang up mid-run. */
  for (int got = 0; got < 2;) {
    CHECK(sse_next(&s, &ev, 20000), "no output event");
    if (strcmp(ev.name, "output") == 0) {
      data_text(&ev, &out);
      id = ev.id;
      got++;
    }
    free(ev.data);
  }
  CHECK(id == (long long)out.len, "id %lld after %zu bytes", id, out.len);
  sse_close(&s);
  usleep(700 * 1000); /* the job prints meanwhile */
  /* Resume with Last-Event-ID (it wins over offset=0 in the URL). */
  sse_follow(&s, run, "&offset=0", E.tok, id);
  follow_all(&s, id, &out, last, sizeof last, &id);
  sse_close(&s);
  cx_buf_append(&out, "", 1);
  CHECK(strcmp(out.data, TICKER_OUT) == 0,
        "resumed output (missed or repeated bytes): \"%s\"", out.data);
  CHECK(strstr(last, "end ") == last, "final event: %s", last);
  /* And with offset=, after the run: the stored output from there. */
  snprintf(path, sizeof path, "/job/output?run_id=%lld&offset=7",
           (long long)run);
  json_t *d = e2e_api(path, NULL);
  CHECK(strcmp(e2e_str(d, "output"), TICKER_OUT + 7) == 0 &&
            e2e_int(d, "next_offset") == (int64_t)strlen(TICKER_OUT),
        "page from 7: \"%s\"", e2e_str(d, "output"));
  json_decref(d);
  cx_buf_free(&out);
}

static void check_roles(void)
{
  int64_t run = ticker_start(TICKER);
  char path[128];
  snprintf(path, sizeof path, "/job/output?run_id=%lld&follow=1",
           (long long)run);
  struct sse s;
  sse_open(&s, api_port(), path, NULL, -1);
  CHECK(s.status == 401, "unauthenticated follow: status %d", s.status);
  sse_close(&s);
  sse_open(&s, api_port(), path, "not-a-token", -1);
  CHECK(s.status == 401, "bad token follow: status %d", s.status);
  sse_close(&s);
  json_decref(e2e_api("/user/add", "{\"username\":\"watcher\",\"password\":"
                                   "\"watcher-pass-1\",\"role\":\"viewer\"}"));
  json_t *login = e2e_api("/login", "{\"username\":\"watcher\",\"password\":"
                                    "\"watcher-pass-1\"}");
  char vtok[160];
  snprintf(vtok, sizeof vtok, "%s", e2e_str(login, "token"));
  json_decref(login);
  sse_open(&s, api_port(), path, vtok, -1);
  CHECK(s.status == 200, "viewer follow: status %d", s.status);
  struct event ev;
  int outputs = 0;
  while (sse_next(&s, &ev, 20000)) {
    outputs += strcmp(ev.name, "output") == 0;
    int end = strcmp(ev.name, "end") == 0;
    free(ev.data);
    if (end)
      break;
  }
  CHECK(outputs > 0, "viewer: no output event");
  sse_close(&s);
  snprintf(path, sizeof path, "/job/output?run_id=%lld", (long long)run + 999);
  sse_open(&s, api_port(), path, E.tok, -1);
  CHECK(s.status == 404 && strstr(s.in.data, "1201") != NULL, "unknown run: %d",
        s.status);
  sse_close(&s);
}

TEST_TIMEOUT(e2e_output_standalone_follow_from_first_line_to_end, 90)
{
  e2e_up(E2E_STANDALONE);
  check_follow_to_end();
  e2e_down();
}

TEST_TIMEOUT(e2e_output_standalone_resume_misses_and_repeats_nothing, 90)
{
  e2e_up(E2E_STANDALONE);
  check_resume();
  e2e_down();
}

TEST_TIMEOUT(e2e_output_standalone_viewer_follows_anonymous_cannot, 90)
{
  e2e_up(E2E_STANDALONE);
  check_roles();
  e2e_down();
}

TEST_TIMEOUT(e2e_output_cluster_follow_and_resume_through_the_admin, 180)
{
  e2e_up(E2E_CLUSTER);
  check_follow_to_end();
  check_resume();
  e2e_down();
}

/* The port of the node's live listener, from its log line. */
static unsigned node_listener_port(void)
{
  char path[CX_SVC_PATH_LEN + 16], line[512];
  snprintf(path, sizeof path, "%s/node.log", cx_test_tmpdir());
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "node log: %s", strerror(errno));
  unsigned port = 0;
  while (fgets(line, sizeof line, f)) {
    const char *p = strstr(line, "http: listening on 127.0.0.1:");
    if (p != NULL)
      port = (unsigned)atoi(p + strlen("http: listening on 127.0.0.1:"));
  }
  fclose(f);
  CHECK(port > 0, "the node logged no listener");
  return port;
}

TEST_TIMEOUT(e2e_output_cluster_node_listener_wants_the_secret, 120)
{
  e2e_up(E2E_CLUSTER);
  int64_t run = ticker_start(TICKER);
  unsigned port = node_listener_port();
  char path[128];
  snprintf(path, sizeof path, "/live/output?run_id=%lld", (long long)run);
  struct sse s;
  sse_open(&s, port, path, NULL, -1);
  CHECK(s.status == 401, "listener without the secret: %d", s.status);
  sse_close(&s);
  sse_open(&s, port, path, "0123456789abcdef-wrong", -1);
  CHECK(s.status == 401, "listener with a wrong secret: %d", s.status);
  sse_close(&s);
  sse_open(&s, port, path, E2E_SECRET, -1);
  CHECK(s.status == 200 && strstr(s.in.data, "X-Cronix-Offset: 0") != NULL,
        "listener with the secret: %d", s.status);
  sse_close(&s);
  e2e_down();
}

TEST_TIMEOUT(e2e_output_cluster_sigkilled_node_ends_the_stream_lost, 180)
{
  e2e_up(E2E_CLUSTER);
  int64_t run = ticker_start("echo begun; sleep 60");
  char err[CX_ERR_LEN];
  struct sse s;
  struct event ev;
  sse_follow(&s, run, "", E.tok, -1);
  CHECK(sse_next(&s, &ev, 20000) && strcmp(ev.name, "output") == 0,
        "no first output event");
  free(ev.data);
  CHECK(cx_svc_proc_signal(&E.node, SIGKILL, err) == 0, "%s", err);
  char last[256] = "";
  /* node.ttl is 2 s: the key expires, the stream says lost. */
  while (sse_next(&s, &ev, 30000)) {
    if (strcmp(ev.name, "output") != 0)
      snprintf(last, sizeof last, "%s %s", ev.name, ev.data ? ev.data : "");
    free(ev.data);
    if (last[0])
      break;
  }
  CHECK(strncmp(last, "lost ", 5) == 0 && strstr(last, E.node_uuid) != NULL,
        "after SIGKILL: \"%s\"", last);
  sse_close(&s);
  /* Reap the killed node, so e2e_down stops the admin alone. */
  CHECK(cx_svc_proc_stop(&E.node, 5000, err) == 0, "%s", err);
  e2e_down();
}

/* Bytes that are not plain text: quotes, backslashes, controls and
 * UTF-8 come through as JSON text; a byte that starts no character is
 * U+FFFD but still counts as one byte of offset. */
TEST_TIMEOUT(e2e_output_standalone_any_bytes_become_json_text, 90)
{
  e2e_up(E2E_STANDALONE);
  int64_t run = ticker_start("printf 'caf\\303\\251 \\001 \\377 q\\042 "
                             "b\\134 t\\t end\\n'; sleep 1");
  struct sse s;
  struct event ev;
  struct cx_buf out = {0};
  long long id = -1;
  int end = 0;
  sse_follow(&s, run, "", E.tok, -1);
  while (!end && sse_next(&s, &ev, 20000)) {
    if (strcmp(ev.name, "output") == 0) {
      data_text(&ev, &out);
      id = ev.id;
    }
    end = strcmp(ev.name, "end") == 0;
    free(ev.data);
  }
  sse_close(&s);
  CHECK(end, "no end event");
  static const char want[] = "caf\xc3\xa9 \x01 \xef\xbf\xbd q\" b\\ t\t end\n";
  CHECK(out.len == sizeof want - 1 && memcmp(out.data, want, out.len) == 0,
        "text: \"%.*s\"", (int)out.len, out.data);
  CHECK(id == 23, "offset after the output: %lld, want the 23 bytes written",
        id);
  cx_buf_free(&out);
  e2e_down();
}
