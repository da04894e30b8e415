/*
 * The e2e environments (see e2e.h): starting `cronix standalone`, or
 * MariaDB + etcd + `cronix admin` + `cronix node`, as real processes; the
 * API client; run-log polling; /proc scanning; a tiny HTTP server.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "support/daemon.h"
#include "support/run.h"
#include "util/util.h"

struct e2e E;

void e2e_dump_logs(void)
{
  if (E.main.log_path[0] != '\0')
    cx_svc_log_dump(E.main.log_path, 6000);
  if (E.node.log_path[0] != '\0')
    cx_svc_log_dump(E.node.log_path, 6000);
}

/* ---- API ----------------------------------------------------------------- */

static size_t sink(char *p, size_t size, size_t n, void *ctx)
{
  cx_buf_append(ctx, p, size * n);
  return size * n;
}

/* Performs the call; *status = HTTP status (0 on transport error); the
 * reply text goes to b. */
static void call(const char *path, const char *body, long *status,
                 struct cx_buf *b)
{
  char url[256], auth[256];
  struct curl_slist *h = NULL;
  CURL *c = curl_easy_init();
  CHECK(c != NULL, "curl_easy_init");
  snprintf(url, sizeof url, "%s%s", E.base, path);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", E.tok);
  h = curl_slist_append(h, auth);
  h = curl_slist_append(h, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (body != NULL)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  *status = 0;
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  cx_buf_puts(b, "");
}

static json_t *data_of(const struct cx_buf *b)
{
  json_t *j = json_loads(b->data, 0, NULL);
  json_t *d = j ? json_incref(json_object_get(j, "data")) : NULL;
  json_decref(j);
  return d;
}

/* The reply's data on HTTP 200; else NULL, or (must) a failed test. */
static json_t *request(const char *path, const char *body, int must)
{
  struct cx_buf b = {0};
  long status;
  call(path, body, &status, &b);
  json_t *d = status == 200 ? data_of(&b) : NULL;
  char tail[600];
  snprintf(tail, sizeof tail, "%.500s", b.data ? b.data : "");
  cx_buf_free(&b);
  CHECK(d != NULL || !must, "%s %s: HTTP %ld %s", path, body ? body : "",
        status, tail);
  return d;
}

json_t *e2e_api(const char *path, const char *body)
{
  return request(path, body, 1);
}

json_t *e2e_api_try(const char *path, const char *body)
{
  return request(path, body, 0);
}

int64_t e2e_int(const json_t *o, const char *k)
{
  return json_integer_value(json_object_get(o, k));
}

const char *e2e_str(const json_t *o, const char *k)
{
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

/* ---- environment --------------------------------------------------------- */

/* Starts daemon d as p, or fails the test. */
static void start_daemon(struct cx_svc_proc *p, const struct cx_test_daemon *d)
{
  char err[CX_ERR_LEN] = "";
  CHECK(cx_test_daemon_start(p, d, err) == 0, "%s: %s", d->name, err);
}

/* Waits until the API answers with the token and one alive node is
 * listed; keeps its uuid. */
static void wait_ready(void)
{
  int64_t until = cx_wall_ms() + 60000;
  while (cx_wall_ms() < until) {
    CHECK(cx_svc_proc_alive(&E.main), "%s exited during start", E.main.name);
    if (E.tok[0] == '\0' &&
        cx_test_daemon_token(E.main_dir, E.tok, sizeof E.tok) != 0) {
      cx_sleep_us(100000);
      continue;
    }
    json_t *d = e2e_api_try("/node/search", "{}");
    json_t *first = json_array_get(json_object_get(d, "list"), 0);
    if (first != NULL && json_is_true(json_object_get(first, "alive"))) {
      snprintf(E.node_uuid, sizeof E.node_uuid, "%s", e2e_str(first, "uuid"));
      json_decref(d);
      CHECK(E.node_uuid[0] != '\0', "node without uuid");
      return;
    }
    json_decref(d);
    cx_sleep_us(100000);
  }
  CHECK(0, "environment not ready after 60 s (token %s, node %s)",
        E.tok[0] ? "read" : "missing", E.node_uuid);
}

static const char *const *up_sets; /* e2e_up_with's, for the job runner */

void e2e_node_start(void)
{
  static const char *const sets[] = {"node.ttl=2s", "node.shutdown_grace=2s",
                                     "cluster.secret=" E2E_SECRET, NULL};
  struct cx_test_daemon d = {.cmd = "node",
                             .name = "node",
                             .data_dir = E.node_dir,
                             .listen = "127.0.0.1:0",
                             .store = E.db.url,
                             .etcd = E.etcd.endpoints,
                             .sets = sets,
                             .more = up_sets};
  start_daemon(&E.node, &d);
}

void e2e_up(enum e2e_kind k)
{
  e2e_up_with(k, NULL);
}

void e2e_up_with(enum e2e_kind k, const char *const *sets_in)
{
  char err[CX_ERR_LEN] = "", listen[64];
  int port = 0;
  memset(&E, 0, sizeof E);
  up_sets = sets_in;
  E.kind = k;
  CHECK(cx_svc_port_alloc(&port, err) == 0, "%s", err);
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  snprintf(E.base, sizeof E.base, "http://127.0.0.1:%d", port);
  snprintf(E.main_dir, sizeof E.main_dir, "%s/main", cx_test_tmpdir());
  snprintf(E.node_dir, sizeof E.node_dir, "%s/node", cx_test_tmpdir());
  CHECK(mkdir(E.main_dir, 0700) == 0 && mkdir(E.node_dir, 0700) == 0,
        "mkdir: %s", strerror(errno));
  if (k == E2E_STANDALONE) {
    static const char *const sets[] = {"node.shutdown_grace=2s", NULL};
    struct cx_test_daemon d = {.cmd = "standalone",
                               .name = "standalone",
                               .data_dir = E.main_dir,
                               .listen = listen,
                               .sets = sets,
                               .more = sets_in};
    start_daemon(&E.main, &d);
  } else {
    static const char *const sets[] = {"node.ttl=2s",
                                       "system.cmd_auto_allocation=true",
                                       "cluster.secret=" E2E_SECRET, NULL};
    CHECK(cx_svc_etcd_start(&E.etcd, NULL, err) == 0, "etcd: %s", err);
    CHECK(cx_svc_mariadb_start(&E.db, NULL, err) == 0, "mariadb: %s", err);
    struct cx_test_daemon d = {.cmd = "admin",
                               .name = "admin",
                               .data_dir = E.main_dir,
                               .listen = listen,
                               .store = E.db.url,
                               .etcd = E.etcd.endpoints,
                               .sets = sets};
    start_daemon(&E.main, &d);
    e2e_node_start();
  }
  wait_ready();
}

void e2e_down(void)
{
  char err[CX_ERR_LEN];
  /* node.shutdown_grace is 2 s and node.kill_grace 5 s: a clean stop
   * ends well within 20 s */
  struct cx_svc_proc *ps[2] = {&E.node, &E.main};
  for (int i = 0; i < 2; i++) {
    int was = ps[i]->pid > 0;
    CHECK(cx_svc_proc_stop(ps[i], 20000, err) == 0, "stop: %s", err);
    CHECK(!was || (WIFEXITED(ps[i]->status) && WEXITSTATUS(ps[i]->status) == 0),
          "stop: %s did not exit 0 on SIGTERM within 20 s (wait status %d)",
          ps[i]->name, ps[i]->status);
  }
  if (E.kind == E2E_CLUSTER) {
    cx_svc_mariadb_destroy(&E.db);
    cx_svc_etcd_destroy(&E.etcd);
  }
}

/* ---- jobs and runs ------------------------------------------------------- */

int64_t e2e_job_put(int64_t id, const char *name, const char *spec, int type,
                    const char *command, const char *extra)
{
  json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "name", name, "spec", spec,
                        "type", type, "command", command, "timezone", "UTC");
  CHECK(o != NULL, "json_pack");
  if (E.kind == E2E_STANDALONE) {
    json_object_set_new(o, "allocation", json_integer(1));
    json_object_set_new(o, "run_on", json_string(E.node_uuid));
  } else {
    json_object_set_new(o, "allocation", json_integer(2));
  }
  if (id > 0)
    json_object_set_new(o, "id", json_integer(id));
  if (extra != NULL) {
    json_t *x = json_loads(extra, 0, NULL);
    CHECK(x != NULL, "bad extra JSON in the test: %s", extra);
    json_object_update(o, x);
    json_decref(x);
  }
  char *body = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  json_t *d = e2e_api("/job/add", body);
  free(body);
  int64_t got = e2e_int(d, "id");
  json_decref(d);
  CHECK(got > 0, "/job/add %s: no id", name);
  return got;
}

void e2e_job_action(const char *action, int64_t id)
{
  char path[64], body[96];
  snprintf(path, sizeof path, "/job/%s", action);
  if (strcmp(action, "pause") == 0 || strcmp(action, "resume") == 0)
    snprintf(body, sizeof body, "{\"ids\":[%lld]}", (long long)id);
  else
    snprintf(body, sizeof body, "{\"job_id\":%lld}", (long long)id);
  json_decref(e2e_api(path, body));
}

static json_t *log_page(int64_t id, int page_size, int64_t *total)
{
  char body[128];
  snprintf(body, sizeof body, "{\"job_id\":%lld,\"page_size\":%d}",
           (long long)id, page_size);
  json_t *d = e2e_api("/job/log", body);
  json_t *l = json_incref(json_object_get(d, "list"));
  if (total != NULL)
    *total = e2e_int(d, "total");
  json_decref(d);
  CHECK(json_is_array(l), "/job/log %lld: no list", (long long)id);
  return l;
}

json_t *e2e_runs(int64_t id, int page_size)
{
  return log_page(id, page_size, NULL);
}

int64_t e2e_run_total(int64_t id)
{
  int64_t t = 0;
  json_decref(log_page(id, 1, &t));
  return t;
}

json_t *e2e_wait_run(int64_t id, const char *st, int timeout_s,
                     const char *what)
{
  int64_t until = cx_wall_ms() + (int64_t)timeout_s * 1000;
  json_t *l = NULL;
  while (cx_wall_ms() < until) {
    l = log_page(id, 100, NULL);
    size_t i;
    json_t *r;
    json_array_foreach(l, i, r)
    {
      if (e2e_int(r, "end_time") > 0 &&
          (st == NULL || strcmp(e2e_str(r, "status"), st) == 0)) {
        json_incref(r);
        json_decref(l);
        return r;
      }
    }
    json_decref(l);
    cx_sleep_us(100000);
  }
  l = log_page(id, 5, NULL);
  char *s = json_dumps(l, JSON_COMPACT);
  json_decref(l);
  CHECK(0,
        "%s: job %lld has no finished run with status %s after %d s; "
        "newest runs: %.1500s",
        what, (long long)id, st ? st : "(any)", timeout_s, s ? s : "");
  return NULL;
}

json_t *e2e_wait_runs(int64_t id, int n, int timeout_s, const char *what)
{
  int64_t until = cx_wall_ms() + (int64_t)timeout_s * 1000;
  int done = 0;
  while (cx_wall_ms() < until) {
    json_t *l = log_page(id, 200, NULL);
    size_t i;
    json_t *r;
    done = 0;
    json_array_foreach(l, i, r) done += e2e_int(r, "end_time") > 0;
    if (done >= n)
      return l;
    json_decref(l);
    cx_sleep_us(100000);
  }
  CHECK(0, "%s: job %lld has %d finished runs after %d s, want >= %d", what,
        (long long)id, done, timeout_s, n);
  return NULL;
}

/* ---- processes ----------------------------------------------------------- */

void e2e_marker(int tag, char *buf, size_t cap)
{
  snprintf(buf, cap, "%d.%d", 100 + tag, (int)getpid());
}

int e2e_procs(const char *marker)
{
  char want[64], path[300], cmd[4096];
  int n = 0;
  snprintf(want, sizeof want, "sleep %s", marker);
  DIR *d = opendir("/proc");
  if (d == NULL)
    return 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!isdigit((unsigned char)de->d_name[0]))
      continue;
    snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    ssize_t len = read(fd, cmd, sizeof cmd - 1);
    close(fd);
    if (len <= 0) /* zombies have an empty command line */
      continue;
    for (ssize_t i = 0; i < len; i++)
      if (cmd[i] == '\0')
        cmd[i] = ' ';
    cmd[len] = '\0';
    n += strstr(cmd, want) != NULL;
  }
  closedir(d);
  return n;
}

int e2e_wait_procs(const char *marker, int want_zero, int timeout_s)
{
  int64_t until = cx_wall_ms() + (int64_t)timeout_s * 1000;
  int n = e2e_procs(marker);
  while ((want_zero ? n != 0 : n == 0) && cx_wall_ms() < until) {
    cx_sleep_us(20000);
    n = e2e_procs(marker);
  }
  return n;
}

/* ---- HTTP server --------------------------------------------------------- */

/* One connection: answers by path after reading the request. */
static void *http_conn(void *arg)
{
  int c = (int)(intptr_t)arg;
  char buf[4096];
  ssize_t n = read(c, buf, sizeof buf - 1);
  const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                     "Connection: close\r\n\r\nok";
  if (n > 0) {
    buf[n] = '\0';
    if (strncmp(buf, "GET /err", 8) == 0)
      resp = "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n"
             "Connection: close\r\n\r\nbad!";
    else if (strncmp(buf, "GET /slow", 9) == 0)
      cx_sleep_us(2000000);
    else if (strncmp(buf, "GET /never", 10) == 0) {
      cx_sleep_us(30000000); /* longer than the job's timeout */
      resp = "";
    }
    ssize_t w = write(c, resp, strlen(resp));
    (void)w;
  }
  close(c);
  return NULL;
}

static void *http_main(void *arg)
{
  struct e2e_http *s = arg;
  for (;;) {
    int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
      return NULL;
    pthread_t t;
    if (pthread_create(&t, NULL, http_conn, (void *)(intptr_t)c) == 0)
      pthread_detach(t);
    else
      close(c);
  }
}

void e2e_http_start(struct e2e_http *s)
{
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t al = sizeof a;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(s->fd >= 0, "socket: %s", strerror(errno));
  CHECK(bind(s->fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            listen(s->fd, 16) == 0 &&
            getsockname(s->fd, (struct sockaddr *)&a, &al) == 0,
        "http server: %s", strerror(errno));
  s->port = ntohs(a.sin_port);
  CHECK(pthread_create(&s->th, NULL, http_main, s) == 0, "pthread_create");
}

void e2e_http_stop(struct e2e_http *s)
{
  shutdown(s->fd, SHUT_RDWR);
  close(s->fd);
  pthread_join(s->th, NULL);
}

/* Rows of the run list l that account for fire t: its own, or a missed
 * row whose range holds it. */
static int rows_for(const json_t *l, int64_t t)
{
  size_t i;
  const json_t *r;
  int k = 0;
  json_array_foreach(l, i, r)
  {
    const json_t *sa = json_object_get(r, "scheduled_at");
    if (!json_is_integer(sa))
      continue;
    int64_t first = json_integer_value(sa);
    if (first == t)
      k++;
    else if (strcmp(e2e_str(r, "status"), "missed") == 0 && first < t &&
             e2e_int(r, "missed_last") >= t)
      k++;
  }
  return k;
}

/* Checks that each second in [from, to] has exactly one row of job id
 * (a `* * * * * *` job); returns how many of them are missed. Polls for
 * up to 20 s until each has at least one (the node writes the gap's rows
 * on its way up). */
long e2e_each_second_once(int64_t id, int64_t from, int64_t to)
{
  json_t *l = NULL;
  int64_t t = from;
  for (int w = 0; w < 200; w++) {
    json_decref(l);
    l = e2e_runs(id, 500);
    for (t = from; t <= to && rows_for(l, t) > 0; t++)
      ;
    if (t > to)
      break;
    cx_sleep_us(100000);
  }
  for (t = from; t <= to; t++) {
    int k = rows_for(l, t);
    CHECK(k == 1, "fire %lld (%+lld s): %d rows", (long long)t,
          (long long)(t - from), k);
  }
  long missed = 0;
  size_t i;
  json_t *r;
  json_array_foreach(l, i, r)
  {
    if (strcmp(e2e_str(r, "status"), "missed") != 0)
      continue;
    int64_t first = e2e_int(r, "scheduled_at"),
            last = e2e_int(r, "missed_last");
    CHECK(e2e_int(r, "missed_count") == last - first + 1, "missed_count");
    CHECK(strstr(e2e_str(r, "output"), "missed: ") != NULL, "reason");
    CHECK(e2e_int(r, "success") == 0, "success");
    for (int64_t s = first; s <= last; s++)
      missed += s >= from && s <= to;
  }
  json_decref(l);
  return missed;
}
