/*
 * Attacks on the admin's HTTP listener (issue 13), each against a real
 * `cronix standalone` process: slow clients holding every slot, a head
 * trickled forever, a body sent without credentials, framing a proxy would
 * read differently, login guessing from elsewhere, escape sequences aimed
 * at the log, TLS, and jobs that try to become the scheduler or outlive
 * their timeout. Every case checks the answer AND that nothing
 * changed (no job appeared, the owner can still log in, the log holds no
 * raw control byte). Run the suite with CX_CRONIX_BIN pointing at an older
 * binary to see each door open.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/rawhttp.h"
#include "support/run.h"
#include "support/services.h"
#include "support/test.h"
#include "util/util.h"

static const char *up_set; /* one more --set for the next up(), or NULL */

static struct {
  struct cx_svc_proc proc;
  char dir[CX_SVC_PATH_LEN];
  char base[96];
  char ca[CX_SVC_PATH_LEN + 16]; /* CA file when serving TLS, else "" */
  char tok[256], pw[128];
  unsigned port;
} S;

/* ---- a client ------------------------------------------------------------ */

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
  cx_buf_append(ud, p, sz * n);
  return sz * n;
}

/* One request from source address src (NULL = any), the reply body into
 * *out (may be NULL). Returns the HTTP status, 0 on a transport error. */
static long call(const char *src, const char *method, const char *path,
                 const char *token, const char *body, struct cx_buf *out)
{
  char url[256], auth[300];
  long status = 0;
  struct cx_buf b = {0};
  struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
  CURL *c = curl_easy_init();
  ASSERT(c != NULL);
  snprintf(url, sizeof url, "%s%s", S.base, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (src != NULL)
    curl_easy_setopt(c, CURLOPT_INTERFACE, src);
  if (S.ca[0] != '\0')
    curl_easy_setopt(c, CURLOPT_CAINFO, S.ca);
  if (token != NULL) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    hl = curl_slist_append(hl, auth);
  }
  if (body != NULL)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out ? out : &b);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(hl);
  cx_buf_free(&b);
  if (out != NULL)
    cx_buf_puts(out, "");
  return status;
}

/* Jobs in the store, read with the admin token. */
static int64_t jobs_total(void)
{
  struct cx_buf b = {0};
  ASSERT_EQ(call(NULL, "POST", "/job/search", S.tok, "{}", &b), 200);
  json_t *j = json_loads(b.data, 0, NULL);
  int64_t n =
      json_integer_value(json_object_get(json_object_get(j, "data"), "total"));
  ASSERT(j != NULL);
  json_decref(j);
  cx_buf_free(&b);
  return n;
}

/* POST /login from src; the reply's msg into msg (may be NULL). */
static long login(const char *src, const char *user, const char *pw, char *msg,
                  size_t cap)
{
  struct cx_buf b = {0};
  json_t *req = json_pack("{s:s, s:s}", "username", user, "password", pw);
  char *body = json_dumps(req, JSON_COMPACT);
  long st = call(src, "POST", "/login", NULL, body, &b);
  json_t *j = json_loads(b.data, 0, NULL);
  if (msg != NULL)
    snprintf(msg, cap, "%s",
             json_string_value(json_object_get(j, "msg"))
                 ? json_string_value(json_object_get(j, "msg"))
                 : "");
  json_decref(j);
  json_decref(req);
  free(body);
  cx_buf_free(&b);
  return st;
}

/* ---- the server ---------------------------------------------------------- */

/* Reads "key = value" of <dir>/initial-admin.txt into out; 0 if found. */
static int initial(const char *key, char *out, size_t cap)
{
  char path[CX_SVC_PATH_LEN + 32], line[512];
  size_t kl = strlen(key);
  int found = -1;
  snprintf(path, sizeof path, "%s/initial-admin.txt", S.dir);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    size_t n = strcspn(line, "\r\n");
    line[n] = '\0';
    if (strncmp(line, key, kl) == 0 && strncmp(line + kl, " = ", 3) == 0 &&
        n - kl - 3 < cap) {
      snprintf(out, cap, "%s", line + kl + 3);
      found = 0;
    }
  }
  fclose(f);
  return found;
}

/* Starts `cronix standalone` (TLS when ca is set, with cert and key) and
 * waits until an authenticated request is answered. */
static void up_with(const char *ca, const char *cert, const char *key)
{
  char err[CX_ERR_LEN] = "", listen[64], log[CX_SVC_PATH_LEN + 16];
  char tls_cert[CX_SVC_PATH_LEN + 32], tls_key[CX_SVC_PATH_LEN + 32];
  int port = 0;
  memset(&S, 0, sizeof S);
  ASSERT_MSG(cx_svc_port_alloc(&port, err) == 0, "%s", err);
  S.port = (unsigned)port;
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  snprintf(S.base, sizeof S.base, "%s://127.0.0.1:%d", ca ? "https" : "http",
           port);
  snprintf(S.dir, sizeof S.dir, "%s/data", cx_test_tmpdir());
  snprintf(log, sizeof log, "%s/cronix.log", cx_test_tmpdir());
  ASSERT_EQ(mkdir(S.dir, 0700), 0);
  const char *argv[16] = {cx_test_cronix_bin(),
                          "standalone",
                          "--data-dir",
                          S.dir,
                          "--listen",
                          listen,
                          "--set",
                          "node.shutdown_grace=1s"};
  size_t n = 8;
  if (ca != NULL) {
    snprintf(S.ca, sizeof S.ca, "%s", ca);
    snprintf(tls_cert, sizeof tls_cert, "server.tls_cert=%s", cert);
    snprintf(tls_key, sizeof tls_key, "server.tls_key=%s", key);
    argv[n++] = "--set";
    argv[n++] = tls_cert;
    argv[n++] = "--set";
    argv[n++] = tls_key;
  }
  if (up_set != NULL) {
    argv[n++] = "--set";
    argv[n++] = up_set;
  }
  argv[n] = NULL;
  ASSERT_MSG(cx_svc_proc_set_argv(&S.proc, "standalone", log, argv, err) == 0,
             "%s", err);
  ASSERT_MSG(cx_svc_proc_start(&S.proc, err) == 0, "%s", err);
  for (int i = 0; i < 600; i++) {
    if (!cx_svc_proc_alive(&S.proc)) {
      cx_svc_log_dump(log, 4000);
      ASSERT_MSG(0, "cronix standalone exited during start");
    }
    if ((S.tok[0] != '\0' || initial("token", S.tok, sizeof S.tok) == 0) &&
        initial("password", S.pw, sizeof S.pw) == 0 &&
        call(NULL, "POST", "/job/search", S.tok, "{}", NULL) == 200)
      return;
    cx_sleep_us(100000);
  }
  cx_svc_log_dump(log, 4000);
  ASSERT_MSG(0, "cronix standalone not ready after 60 s");
}

static void up(void)
{
  up_with(NULL, NULL, NULL);
}

static void down(void)
{
  char err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_svc_proc_stop(&S.proc, 20000, err) == 0, "%s", err);
}

/* ---- slow clients -------------------------------------------------------- */

#define SLOW 600

TEST_TIMEOUT(attack_600_slow_sockets_do_not_lock_out_an_authenticated_client,
             120)
{
  static int fds[SLOW];
  ASSERT_OP(cx_raw_raise_nofile(), >=, SLOW + 100);
  up();
  const char half[] = "GET /job/find?id=1 HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  for (int i = 0; i < SLOW; i++) {
    char src[32];
    snprintf(src, sizeof src, "127.0.1.%d", 1 + i % 5);
    fds[i] = cx_raw_connect(src, S.port);
    ASSERT_MSG(fds[i] >= 0, "connect %d: %s", i, strerror(-fds[i]));
    ASSERT_EQ(cx_raw_send(fds[i], half, sizeof half - 1), 0);
  }
  /* The owner on 127.0.0.1 gets each answer within 2 s. */
  for (int i = 0; i < 5; i++) {
    int64_t t0 = cx_mono_now();
    int64_t n = jobs_total();
    int64_t ms = (cx_mono_now() - t0) / 1000;
    ASSERT_EQ(n, 0);
    ASSERT_MSG(ms < 2000, "answer %d took %lld ms", i, (long long)ms);
  }
  for (int i = 0; i < SLOW; i++)
    close(fds[i]);
  ASSERT(cx_svc_proc_alive(&S.proc));
  down();
}

TEST_TIMEOUT(attack_a_head_trickled_forever_is_cut_off, 60)
{
  up();
  int fd = cx_raw_connect("127.0.1.20", S.port);
  ASSERT(fd >= 0);
  ASSERT_EQ(cx_raw_send(fd, "POST /job/add HTTP/1.1\r\nX-A: ", 29), 0);
  /* A byte every 500 ms: the 30 s idle timeout never fires, the 10 s head
   * deadline must. Bounded at 25 s. */
  int closed = 0;
  for (int i = 0; i < 50 && !closed; i++)
    closed = cx_raw_send(fd, "a", 1) != 0 || cx_raw_closed_within(fd, 500);
  ASSERT_MSG(closed, "still connected after 25 s of trickling");
  close(fd);
  ASSERT_EQ(jobs_total(), 0);
  down();
}

/* ---- no body without credentials ----------------------------------------- */

TEST_TIMEOUT(attack_unauthenticated_1mib_post_is_refused_before_its_body, 60)
{
  static const char *const auth[] = {"", "Authorization: Bearer nope\r\n"};
  char buf[4096], req[512];
  up();
  for (size_t i = 0; i < CX_ARRAY_LEN(auth); i++) {
    int fd = cx_raw_connect(NULL, S.port);
    ASSERT(fd >= 0);
    int n = snprintf(req, sizeof req,
                     "POST /job/add HTTP/1.1\r\nHost: x\r\n%sContent-Type: "
                     "application/json\r\nContent-Length: 1048576\r\n\r\n",
                     auth[i]);
    ASSERT_EQ(cx_raw_send(fd, req, (size_t)n), 0);
    /* Not one body byte sent, and the answer is there. */
    size_t got = cx_raw_read_reply(fd, buf, sizeof buf, 10000);
    ASSERT_MSG(got > 0, "case %zu: no answer before the body", i);
    ASSERT_EQ(cx_raw_status(buf), 401);
    ASSERT_CONTAINS(buf, "\"code\":1101");
    ASSERT_MSG(cx_raw_closed_within(fd, 10000), "case %zu: left open", i);
    close(fd);
  }
  ASSERT_EQ(jobs_total(), 0);
  down();
}

/* ---- framing ------------------------------------------------------------- */

TEST_TIMEOUT(attack_ambiguous_framing_is_refused_and_closed, 60)
{
  /* Each body is a valid job both ways it could be read; the request must
   * still be refused, and nothing smuggled after it answered. */
  static const char job[] =
      "{\"name\":\"smuggled\",\"spec\":\"0 0 1 1 *\",\"type\":2,\"command\":"
      "\"http://127.0.0.1:9/\",\"allocation\":2}";
  static const struct {
    const char *framing;
    int status;
  } cases[] = {
      {"Content-Length: %zu\r\nTransfer-Encoding: chunked\r\n", 400},
      {"Content-Length: %zu\r\nContent-Length: 5\r\n", 400},
      {"Transfer-Encoding: gzip, chunked\r\nX-Len: %zu\r\n", 501},
  };
  char req[2048], head[256], buf[4096];
  up();
  for (size_t i = 0; i < CX_ARRAY_LEN(cases); i++) {
    int fd = cx_raw_connect(NULL, S.port);
    ASSERT(fd >= 0);
    snprintf(head, sizeof head, cases[i].framing, sizeof job - 1);
    int n = snprintf(req, sizeof req,
                     "POST /job/add HTTP/1.1\r\nHost: x\r\nAuthorization: "
                     "Bearer %s\r\n%s\r\n%zx\r\n%s\r\n0\r\n\r\n",
                     S.tok, head, sizeof job - 1, job);
    ASSERT_EQ(cx_raw_send(fd, req, (size_t)n), 0);
    ASSERT_OP(cx_raw_read_reply(fd, buf, sizeof buf, 10000), >, 0);
    ASSERT_MSG(cx_raw_status(buf) == cases[i].status,
               "case %zu: wanted %d, got %.300s", i, cases[i].status, buf);
    ASSERT_MSG(cx_raw_closed_within(fd, 10000), "case %zu: left open", i);
    close(fd);
  }
  ASSERT_EQ(jobs_total(), 0);
  down();
}

/* ---- login --------------------------------------------------------------- */

TEST_TIMEOUT(attack_guessing_admin_from_elsewhere_does_not_lock_the_owner_out,
             120)
{
  char msg[512];
  up();
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(login("127.0.1.30", "admin", "guess-guess", NULL, 0), 401);
  /* The guesser is now refused, even with the right password... */
  ASSERT_EQ(login("127.0.1.30", "admin", S.pw, msg, sizeof msg), 401);
  ASSERT_CONTAINS(msg, "too many failed logins");
  /* ... and the owner, elsewhere, is not. */
  ASSERT_EQ(login("127.0.0.1", "admin", S.pw, msg, sizeof msg), 200);
  ASSERT_EQ(jobs_total(), 0);
  down();
}

TEST_TIMEOUT(attack_spraying_names_from_one_address_is_throttled, 180)
{
  char msg[512], name[32];
  up();
  for (int i = 0; i < 20; i++) {
    snprintf(name, sizeof name, "user%d", i);
    ASSERT_EQ(login("127.0.1.31", name, "Spring2026!", msg, sizeof msg), 401);
    ASSERT_CONTAINS(msg, "wrong username or password");
  }
  /* The 21st name from that address is refused unchecked... */
  ASSERT_EQ(login("127.0.1.31", "user20", "Spring2026!", msg, sizeof msg), 401);
  ASSERT_CONTAINS(msg, "too many failed logins from this address");
  /* ... even the right password for admin from there ... */
  ASSERT_EQ(login("127.0.1.31", "admin", S.pw, msg, sizeof msg), 401);
  /* ... while other addresses are untouched. */
  ASSERT_EQ(login("127.0.1.32", "admin", S.pw, msg, sizeof msg), 200);
  ASSERT_EQ(login("127.0.0.1", "admin", S.pw, msg, sizeof msg), 200);
  down();
}

TEST_TIMEOUT(attack_escape_sequences_in_a_username_do_not_reach_the_log, 60)
{
  char log[CX_SVC_PATH_LEN + 16], text[1 << 16];
  up();
  ASSERT_EQ(login(NULL, "x\x1b[2J\x1b]0;owned\x07y", "guess-guess", NULL, 0),
            401);
  down(); /* the log is complete once it exited */
  snprintf(log, sizeof log, "%s/cronix.log", cx_test_tmpdir());
  FILE *f = fopen(log, "r");
  ASSERT(f != NULL);
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  ASSERT_CONTAINS(text, "login failed for 'x\\x1b[2J\\x1b]0;owned\\x07y'");
  for (size_t i = 0; i < n; i++)
    ASSERT_MSG(text[i] == '\n' ||
                   ((unsigned char)text[i] >= 0x20 && text[i] != 0x7f),
               "control byte 0x%02x at offset %zu of the log",
               (unsigned char)text[i], i);
}

/* ---- TLS ----------------------------------------------------------------- */

static void run_ok(char *const argv[])
{
  struct cx_test_output o;
  cx_test_run(argv, 60, &o);
  ASSERT_MSG(o.status == 0, "%s failed (%d): %s", argv[0], o.status, o.err);
  cx_test_output_free(&o);
}

/* openssl req: a new P-256 key into key, and into out a certificate
 * (self_signed) or a signing request for subj. */
static void openssl_req(const char *key, const char *out, const char *subj,
                        int self_signed)
{
  const char *args[] = {
      "req",    "-newkey", "ec",    "-pkeyopt", "ec_paramgen_curve:prime256v1",
      "-nodes", "-keyout", key,     "-out",     out,
      "-subj",  subj,      "-x509", "-days",    "3650"};
  char *argv[CX_ARRAY_LEN(args) + 2];
  size_t n = self_signed ? CX_ARRAY_LEN(args) : CX_ARRAY_LEN(args) - 3;
  argv[0] = "/usr/bin/openssl";
  for (size_t i = 0; i < n; i++)
    argv[i + 1] = (char *)args[i];
  argv[n + 1] = NULL;
  run_ok(argv);
}

/* A test CA and a server certificate for 127.0.0.1 signed by it. */
static void make_ca(const char *d)
{
  char p[6][CX_SVC_PATH_LEN + 32];
  const char *names[] = {"ca.key",     "ca.pem",     "server.key",
                         "server.csr", "server.pem", "ext.cnf"};
  for (int i = 0; i < 6; i++)
    snprintf(p[i], sizeof p[i], "%s/%s", d, names[i]);
  FILE *f = fopen(p[5], "w");
  ASSERT(f != NULL);
  fputs("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n",
        f);
  fclose(f);
  openssl_req(p[0], p[1], "/CN=cronix test CA", 1);
  openssl_req(p[2], p[3], "/CN=127.0.0.1", 0);
  char *sign[] = {"/usr/bin/openssl",
                  "x509",
                  "-req",
                  "-in",
                  p[3],
                  "-CA",
                  p[1],
                  "-CAkey",
                  p[0],
                  "-CAcreateserial",
                  "-out",
                  p[4],
                  "-days",
                  "3650",
                  "-extfile",
                  p[5],
                  NULL};
  run_ok(sign);
}

/* The curl command line: GET url, reply head and body on stdout, trusting
 * only the CA file cacert (NULL = curl's default store). */
static void curl_get(const char *cacert, const char *url,
                     struct cx_test_output *o)
{
  char *argv[] = {"/usr/bin/curl", "-sS",          "--noproxy", "*",
                  "--max-time",    "20",           "-D",        "-",
                  "--cacert",      (char *)cacert, (char *)url, NULL};
  if (cacert == NULL) {
    argv[8] = (char *)url;
    argv[9] = NULL;
  }
  cx_test_run(argv, 30, o);
}

TEST_TIMEOUT(attack_tls_listener_serves_https_with_hsts_and_refuses_plain, 90)
{
  char d[CX_SVC_PATH_LEN], ca[CX_SVC_PATH_LEN + 16], cert[CX_SVC_PATH_LEN + 16],
      key[CX_SVC_PATH_LEN + 16], url[128], plain[128];
  snprintf(d, sizeof d, "%s", cx_test_tmpdir());
  make_ca(d);
  snprintf(ca, sizeof ca, "%s/ca.pem", d);
  snprintf(cert, sizeof cert, "%s/server.pem", d);
  snprintf(key, sizeof key, "%s/server.key", d);
  up_with(ca, cert, key);
  snprintf(url, sizeof url, "%s/healthz", S.base);
  snprintf(plain, sizeof plain, "http://127.0.0.1:%u/healthz", S.port);

  /* curl trusting the test CA: served, with HSTS. */
  struct cx_test_output o;
  curl_get(ca, url, &o);
  ASSERT_MSG(o.status == 0, "curl: %d %s", o.status, o.err);
  ASSERT_CONTAINS(o.out, "HTTP/1.1 200");
  ASSERT_CONTAINS(o.out, "Strict-Transport-Security: max-age=31536000");
  cx_test_output_free(&o);
  /* Trusting another CA (none): the handshake fails. */
  curl_get("/dev/null", url, &o);
  ASSERT_MSG(o.status != 0 && strstr(o.out, "HTTP/") == NULL,
             "untrusted: %d %s", o.status, o.out);
  cx_test_output_free(&o);
  /* Plain HTTP on the same port gets no HTTP answer. */
  curl_get(NULL, plain, &o);
  ASSERT_MSG(o.status != 0 && strstr(o.out, "HTTP/1.1 200") == NULL,
             "plain: %d %s", o.status, o.out);
  cx_test_output_free(&o);
  /* The API works over it, and unauthenticated still means 401. */
  ASSERT_EQ(jobs_total(), 0);
  ASSERT_EQ(call(NULL, "POST", "/job/search", NULL, "{}", NULL), 401);
  down();
}

/* ---- jobs that try to become the scheduler ------------------------------- */

/* POST path with token; data of a 200 reply (new reference), else fails. */
static json_t *api_ok(const char *path, const char *token, const char *body)
{
  struct cx_buf b = {0};
  long st = call(NULL, "POST", path, token, body, &b);
  json_t *j = json_loads(b.data ? b.data : "", 0, NULL);
  ASSERT_MSG(st == 200 && j != NULL, "%s: %ld %s", path, st,
             b.data ? b.data : "");
  json_t *d = json_incref(json_object_get(j, "data"));
  json_decref(j);
  cx_buf_free(&b);
  return d;
}

/* A new operator "op"; its token into tok. */
static void operator_login(char *tok, size_t cap)
{
  json_decref(api_ok("/user/add", S.tok,
                     "{\"username\":\"op\",\"password\":\"op-pass-123\","
                     "\"role\":\"operator\"}"));
  json_t *d = api_ok("/login", NULL,
                     "{\"username\":\"op\",\"password\":\"op-pass-123\"}");
  snprintf(tok, cap, "%s", json_string_value(json_object_get(d, "token")));
  json_decref(d);
}

static char *slurp(const char *path)
{
  struct cx_buf b = {0};
  char buf[4096];
  FILE *f = fopen(path, "r");
  ASSERT(f != NULL);
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    cx_buf_append(&b, buf, n);
  fclose(f);
  return b.data ? cx_buf_steal(&b) : cx_strdup("");
}

/* The first finished run of job id (waits up to 30 s); a new reference. */
static json_t *wait_run(int64_t id)
{
  char body[96];
  snprintf(body, sizeof body, "{\"job_id\":%lld}", (long long)id);
  for (int i = 0; i < 300; i++) {
    json_t *d = api_ok("/job/log", S.tok, body);
    json_t *r = json_array_get(json_object_get(d, "list"), 0);
    const char *st = json_string_value(json_object_get(r, "status"));
    if (st != NULL && strcmp(st, "running") != 0) {
      json_incref(r);
      json_decref(d);
      return r;
    }
    json_decref(d);
    cx_sleep_us(100000);
  }
  ASSERT_MSG(0, "job %lld: no finished run in 30 s", (long long)id);
  return NULL;
}

/* An operator's job on `cronix standalone` running as root: it may not
 * pick root with run_as, and as node.run_as it can neither read the first
 * admin's token nor promote its author through the database. */
TEST_TIMEOUT(attack_an_operators_job_cannot_read_the_admin_token_or_promote, 90)
{
  char op[256], cmd[4 * CX_SVC_PATH_LEN], path[CX_SVC_PATH_LEN + 32];
  if (geteuid() != 0)
    cx_test_skip("needs root (the node switches users only as root)");
  up_set = "node.run_as=nobody";
  up();
  up_set = NULL;
  operator_login(op, sizeof op);
  json_t *nodes = api_ok("/node/search", S.tok, "{}");
  const char *node = json_string_value(json_object_get(
      json_array_get(json_object_get(nodes, "list"), 0), "uuid"));
  ASSERT(node != NULL);
  snprintf(path, sizeof path, "%s/initial-admin.txt", S.dir);
  char *before = slurp(path);
  /* run_as root: refused, nothing created */
  json_t *req = json_pack("{s:s, s:i, s:s, s:s, s:i, s:s, s:s}", "name", "r",
                          "type", 1, "command", "id", "spec", "0 0 1 1 *",
                          "allocation", 1, "run_on", node, "run_as", "root");
  char *body = json_dumps(req, JSON_COMPACT);
  ASSERT_EQ(call(NULL, "POST", "/job/add", op, body, NULL), 403);
  ASSERT_EQ(jobs_total(), 0);
  free(body);
  json_decref(req);
  /* the job as the node's job user */
  snprintf(cmd, sizeof cmd,
           "id -u; cat %s; sqlite3 %s/cronix.db \"update cronix_user set "
           "role='admin' where username='op'\"; echo x >> %s; "
           "cat /proc/%ld/environ; exit 0",
           path, S.dir, path, (long)S.proc.pid);
  req = json_pack("{s:s, s:i, s:s, s:s, s:i, s:s}", "name", "steal", "type", 1,
                  "command", cmd, "spec", "0 0 1 1 *", "allocation", 1,
                  "run_on", node);
  body = json_dumps(req, JSON_COMPACT);
  json_t *job = api_ok("/job/add", op, body);
  int64_t id = json_integer_value(json_object_get(job, "id"));
  free(body);
  json_decref(req);
  json_decref(job);
  char once[64];
  snprintf(once, sizeof once, "{\"job_id\":%lld}", (long long)id);
  json_decref(api_ok("/job/once", op, once));
  json_t *run = wait_run(id);
  const char *out = json_string_value(json_object_get(run, "output"));
  ASSERT(out != NULL);
  ASSERT_MSG(strncmp(out, "65534\n", 6) == 0, "output: %s", out);
  ASSERT_CONTAINS(out, "Permission denied");
  ASSERT_MSG(strstr(out, S.tok) == NULL, "the admin token leaked: %s", out);
  ASSERT_MSG(strstr(out, S.pw) == NULL, "the admin password leaked: %s", out);
  json_decref(run);
  json_decref(nodes);
  /* nothing changed: the file, and op is still an operator */
  char *after = slurp(path);
  ASSERT_STREQ(after, before);
  free(after);
  free(before);
  json_t *u = api_ok("/user/search", S.tok, "{\"username\":\"op\"}");
  json_t *first = json_array_get(json_object_get(u, "list"), 0);
  ASSERT_STREQ(json_string_value(json_object_get(first, "role")), "operator");
  json_decref(u);
  down();
}

/* A job whose child leaves its session and another that double-forks:
 * the 1 s timeout ends them all. */
TEST_TIMEOUT(attack_an_escaping_child_does_not_survive_the_timeout, 60)
{
  char marker[64], body[1024];
  up();
  json_t *nodes = api_ok("/node/search", S.tok, "{}");
  const char *node = json_string_value(json_object_get(
      json_array_get(json_object_get(nodes, "list"), 0), "uuid"));
  snprintf(marker, sizeof marker, "cxatk%ld", (long)getpid());
  snprintf(body, sizeof body,
           "{\"name\":\"escape\",\"type\":1,\"timeout\":1,"
           "\"spec\":\"0 0 1 1 *\",\"allocation\":1,\"run_on\":\"%s\","
           "\"command\":\"setsid sh -c 'sleep 300; : %s' >/dev/null 2>&1 & "
           "(sh -c 'sleep 300; : %s' >/dev/null 2>&1 &); sleep 300\"}",
           node, marker, marker);
  json_decref(nodes);
  json_t *job = api_ok("/job/add", S.tok, body);
  int64_t id = json_integer_value(json_object_get(job, "id"));
  json_decref(job);
  snprintf(body, sizeof body, "{\"job_id\":%lld}", (long long)id);
  json_decref(api_ok("/job/once", S.tok, body));
  json_t *run = wait_run(id);
  ASSERT_STREQ(json_string_value(json_object_get(run, "status")), "timeout");
  json_decref(run);
  int left = cx_test_marked_procs(marker);
  if (left)
    cx_test_marked_kill(marker);
  ASSERT_EQ(left, 0);
  down();
}
