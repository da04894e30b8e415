/*
 * Smoke tests of the service harness (tests/support/services.h): real etcd
 * and MariaDB start, serve, stop, restart and never outlive a test.
 *
 * Two tests re-execute this binary to run a hidden test that starts both
 * servers and then fails (or crashes), and check afterwards that no process
 * mentioning its directory is left. The hidden test runs only when
 * CX_SMOKE_HIDDEN is set; in a normal run it returns at once and counts as
 * passed (not skipped: CI output must show no skips).
 */
#include "support/services.h"
#include "support/test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <mysql.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HIDDEN_ENV "CX_SMOKE_HIDDEN"
#define HIDDEN_TEST "smoke_zz_hidden_test_fails_with_servers_running"

static struct cx_svc_etcd etcd; /* large: keep it out of the stack */
static struct cx_svc_mariadb db;

static int64_t ms_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_etcd(const struct cx_svc_etcd_opts *opts)
{
  char err[CX_ERR_LEN];
  int rc = cx_svc_etcd_start(&etcd, opts, err);
  ASSERT_MSG(rc == 0, "etcd start: %s (%s)", err, cx_err_name(rc));
}

static void start_mariadb(void)
{
  char err[CX_ERR_LEN];
  int rc = cx_svc_mariadb_start(&db, NULL, err);
  ASSERT_MSG(rc == 0, "MariaDB start: %s (%s)", err, cx_err_name(rc));
}

/* ---- etcd through the v3 JSON gateway ----------------------------------- */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_encode(const char *in, char *out, size_t cap)
{
  size_t n = strlen(in), o = 0;
  const unsigned char *s = (const unsigned char *)in;
  ASSERT((n + 2) / 3 * 4 < cap);
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)s[i] << 16;
    if (i + 1 < n)
      v |= (unsigned)s[i + 1] << 8;
    if (i + 2 < n)
      v |= s[i + 2];
    out[o++] = b64[v >> 18 & 63];
    out[o++] = b64[v >> 12 & 63];
    out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? b64[v & 63] : '=';
  }
  out[o] = '\0';
}

static void b64_decode(const char *in, char *out, size_t cap)
{
  size_t o = 0;
  unsigned v = 0;
  int bits = 0;
  for (; *in != '\0' && *in != '='; in++) {
    const char *p = strchr(b64, *in);
    ASSERT_MSG(p != NULL, "bad base64 character '%c'", *in);
    v = v << 6 | (unsigned)(p - b64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      ASSERT(o + 1 < cap);
      out[o++] = (char)(v >> bits & 0xff);
    }
  }
  out[o] = '\0';
}

static void etcd_put(const char *endpoint, const char *key, const char *val)
{
  char k[256], v[256], body[600], url[128], resp[2048], err[CX_ERR_LEN];
  long status = 0;
  int rc;
  b64_encode(key, k, sizeof k);
  b64_encode(val, v, sizeof v);
  snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
  snprintf(url, sizeof url, "%s/v3/kv/put", endpoint);
  rc = cx_svc_http("POST", url, body, 5000, &status, resp, sizeof resp, err);
  ASSERT_MSG(rc == 0, "put: %s", err);
  ASSERT_MSG(status == 200, "put: HTTP %ld: %s", status, resp);
}

/* Reads key through /v3/kv/range into out; returns 0 or CX_ENOTFOUND. */
static int etcd_get(const char *endpoint, const char *key, char *out,
                    size_t cap)
{
  char k[256], body[300], url[128], resp[4096], err[CX_ERR_LEN];
  long status = 0;
  json_error_t jerr;
  json_t *root, *kvs;
  int rc;
  b64_encode(key, k, sizeof k);
  snprintf(body, sizeof body, "{\"key\":\"%s\"}", k);
  snprintf(url, sizeof url, "%s/v3/kv/range", endpoint);
  rc = cx_svc_http("POST", url, body, 5000, &status, resp, sizeof resp, err);
  ASSERT_MSG(rc == 0, "range: %s", err);
  ASSERT_MSG(status == 200, "range: HTTP %ld: %s", status, resp);
  root = json_loads(resp, 0, &jerr);
  ASSERT_MSG(root != NULL, "range reply is not JSON: %s", resp);
  kvs = json_object_get(root, "kvs");
  if (kvs == NULL) { /* proto3 leaves an empty list out */
    json_decref(root);
    return CX_ENOTFOUND;
  }
  ASSERT_EQ(json_array_size(kvs), 1);
  const char *v =
      json_string_value(json_object_get(json_array_get(kvs, 0), "value"));
  ASSERT_MSG(v != NULL, "kv without a value: %s", resp);
  b64_decode(v, out, cap);
  json_decref(root);
  return 0;
}

TEST_TIMEOUT(smoke_etcd_put_then_range_returns_value, 120)
{
  char got[64];
  start_etcd(NULL);
  ASSERT_EQ(etcd.n, 1);
  ASSERT_STREQ(etcd.endpoints, etcd.m[0].endpoint);
  ASSERT_EQ(etcd_get(etcd.endpoints, "/cron/smoke", got, sizeof got),
            CX_ENOTFOUND);
  etcd_put(etcd.endpoints, "/cron/smoke", "hello etcd");
  ASSERT_EQ(etcd_get(etcd.endpoints, "/cron/smoke", got, sizeof got), 0);
  ASSERT_STREQ(got, "hello etcd");
  cx_svc_etcd_destroy(&etcd);
}

/* ---- MariaDB over TCP with prepared statements ------------------------- */

static MYSQL *db_connect(void)
{
  char err[CX_ERR_LEN];
  MYSQL *h = cx_svc_mariadb_connect(&db, err);
  ASSERT_MSG(h != NULL, "%s", err);
  return h;
}

static void db_exec(MYSQL *h, const char *sql)
{
  ASSERT_MSG(mysql_query(h, sql) == 0, "%s: %s", sql, mysql_error(h));
}

static void db_insert(MYSQL *h, long long id, const char *name)
{
  const char *sql = "INSERT INTO smoke (id, name) VALUES (?, ?)";
  MYSQL_STMT *st = mysql_stmt_init(h);
  MYSQL_BIND b[2];
  unsigned long len = strlen(name);
  ASSERT(st != NULL);
  ASSERT_MSG(mysql_stmt_prepare(st, sql, strlen(sql)) == 0, "prepare: %s",
             mysql_stmt_error(st));
  memset(b, 0, sizeof b);
  b[0].buffer_type = MYSQL_TYPE_LONGLONG;
  b[0].buffer = &id;
  b[1].buffer_type = MYSQL_TYPE_STRING;
  b[1].buffer = (char *)name;
  b[1].buffer_length = len;
  b[1].length = &len;
  ASSERT(mysql_stmt_bind_param(st, b) == 0);
  ASSERT_MSG(mysql_stmt_execute(st) == 0, "insert: %s", mysql_stmt_error(st));
  ASSERT_EQ(mysql_stmt_affected_rows(st), 1);
  mysql_stmt_close(st);
}

/* Selects the name of row id into out; returns 0 or CX_ENOTFOUND. */
static int db_select(MYSQL *h, long long id, char *out, size_t cap)
{
  const char *sql = "SELECT name FROM smoke WHERE id = ?";
  MYSQL_STMT *st = mysql_stmt_init(h);
  MYSQL_BIND in, res;
  unsigned long len = 0;
  int rc;
  ASSERT(st != NULL);
  ASSERT_MSG(mysql_stmt_prepare(st, sql, strlen(sql)) == 0, "prepare: %s",
             mysql_stmt_error(st));
  memset(&in, 0, sizeof in);
  in.buffer_type = MYSQL_TYPE_LONGLONG;
  in.buffer = &id;
  ASSERT(mysql_stmt_bind_param(st, &in) == 0);
  ASSERT_MSG(mysql_stmt_execute(st) == 0, "select: %s", mysql_stmt_error(st));
  memset(&res, 0, sizeof res);
  res.buffer_type = MYSQL_TYPE_STRING;
  res.buffer = out;
  res.buffer_length = cap;
  res.length = &len;
  ASSERT(mysql_stmt_bind_result(st, &res) == 0);
  ASSERT(mysql_stmt_store_result(st) == 0);
  rc = mysql_stmt_fetch(st);
  ASSERT_MSG(rc == 0 || rc == MYSQL_NO_DATA, "fetch: %d %s", rc,
             mysql_stmt_error(st));
  if (rc == 0) {
    ASSERT(len < cap);
    out[len] = '\0';
    ASSERT_EQ(mysql_stmt_fetch(st), MYSQL_NO_DATA); /* the id is unique */
  }
  mysql_stmt_free_result(st);
  mysql_stmt_close(st);
  return rc == 0 ? 0 : CX_ENOTFOUND;
}

static void db_create_table(MYSQL *h)
{
  db_exec(h, "CREATE TABLE smoke (id BIGINT PRIMARY KEY, "
             "name VARCHAR(64) NOT NULL) ENGINE=InnoDB");
}

TEST_TIMEOUT(smoke_mariadb_prepared_insert_then_select_over_tcp, 120)
{
  char got[64], expect_url[160];
  MYSQL *h;
  start_mariadb();
  snprintf(expect_url, sizeof expect_url,
           "mysql://cronix:secret@127.0.0.1:%d/cronix_test", db.port);
  ASSERT_STREQ(db.url, expect_url);
  h = db_connect();
  db_create_table(h);
  ASSERT_EQ(db_select(h, 42, got, sizeof got), CX_ENOTFOUND);
  db_insert(h, 42, "hello mariadb");
  ASSERT_EQ(db_select(h, 42, got, sizeof got), 0);
  ASSERT_STREQ(got, "hello mariadb");
  mysql_close(h);
  cx_svc_mariadb_destroy(&db);
}

/* ---- stop and restart -----------------------------------------------------
 */

/* kill(pid, 0) fails with ESRCH: no such process, not even a zombie. */
static void assert_pid_gone(pid_t pid)
{
  errno = 0;
  ASSERT_MSG(kill(pid, 0) == -1 && errno == ESRCH,
             "pid %d still exists (kill: %s)", (int)pid, strerror(errno));
}

TEST_TIMEOUT(smoke_etcd_stop_ends_process_and_frees_ports, 120)
{
  char err[CX_ERR_LEN];
  pid_t pid;
  start_etcd(NULL);
  pid = etcd.m[0].proc.pid;
  ASSERT_OP(pid, >, 0);
  ASSERT_EQ(kill(pid, 0), 0);
  ASSERT(!cx_svc_port_is_free(etcd.m[0].client_port));
  ASSERT(!cx_svc_port_is_free(etcd.m[0].peer_port));
  ASSERT_MSG(cx_svc_etcd_stop(&etcd, err) == 0, "%s", err);
  ASSERT_EQ(etcd.m[0].proc.pid, 0);
  ASSERT(etcd.m[0].proc.exited);
  assert_pid_gone(pid);
  ASSERT(cx_svc_port_is_free(etcd.m[0].client_port));
  ASSERT(cx_svc_port_is_free(etcd.m[0].peer_port));
}

TEST_TIMEOUT(smoke_mariadb_stop_ends_process_and_frees_port, 120)
{
  char err[CX_ERR_LEN];
  pid_t pid;
  start_mariadb();
  pid = db.proc.pid;
  ASSERT_OP(pid, >, 0);
  ASSERT_EQ(kill(pid, 0), 0);
  ASSERT(!cx_svc_port_is_free(db.port));
  ASSERT_MSG(cx_svc_mariadb_stop(&db, err) == 0, "%s", err);
  ASSERT_EQ(db.proc.pid, 0);
  /* SIGTERM is a clean shutdown: exit status 0, not our SIGKILL. */
  ASSERT_MSG(WIFEXITED(db.proc.status) && WEXITSTATUS(db.proc.status) == 0,
             "mariadbd wait status %d", db.proc.status);
  assert_pid_gone(pid);
  ASSERT(cx_svc_port_is_free(db.port));
}

TEST_TIMEOUT(smoke_etcd_data_survives_restart, 120)
{
  char err[CX_ERR_LEN], got[64];
  pid_t before;
  int port;
  start_etcd(NULL);
  before = etcd.m[0].proc.pid;
  port = etcd.m[0].client_port;
  etcd_put(etcd.endpoints, "/cron/durable", "kept");
  ASSERT_MSG(cx_svc_etcd_restart(&etcd, err) == 0, "restart: %s", err);
  assert_pid_gone(before);
  ASSERT_OP(etcd.m[0].proc.pid, >, 0);
  ASSERT_EQ(etcd.m[0].client_port, port);
  ASSERT_EQ(etcd_get(etcd.endpoints, "/cron/durable", got, sizeof got), 0);
  ASSERT_STREQ(got, "kept");
  cx_svc_etcd_destroy(&etcd);
}

TEST_TIMEOUT(smoke_mariadb_row_survives_restart, 120)
{
  char err[CX_ERR_LEN], got[64];
  pid_t before;
  int port;
  MYSQL *h;
  start_mariadb();
  before = db.proc.pid;
  port = db.port;
  h = db_connect();
  db_create_table(h);
  db_insert(h, 7, "kept");
  mysql_close(h);
  ASSERT_MSG(cx_svc_mariadb_restart(&db, err) == 0, "restart: %s", err);
  assert_pid_gone(before);
  ASSERT_EQ(db.port, port);
  h = db_connect();
  ASSERT_EQ(db_select(h, 7, got, sizeof got), 0);
  ASSERT_STREQ(got, "kept");
  mysql_close(h);
  cx_svc_mariadb_destroy(&db);
}

TEST_TIMEOUT(smoke_mariadb_committed_row_survives_crash, 120)
{
  char err[CX_ERR_LEN], got[64];
  MYSQL *h;
  start_mariadb();
  h = db_connect();
  db_create_table(h);
  db_insert(h, 9, "committed"); /* autocommit */
  mysql_close(h);
  ASSERT_MSG(cx_svc_mariadb_kill(&db, err) == 0, "%s", err);
  ASSERT(WIFSIGNALED(db.proc.status) && WTERMSIG(db.proc.status) == SIGKILL);
  ASSERT_MSG(cx_svc_mariadb_restart(&db, err) == 0, "restart: %s", err);
  h = db_connect();
  ASSERT_EQ(db_select(h, 9, got, sizeof got), 0);
  ASSERT_STREQ(got, "committed");
  mysql_close(h);
  cx_svc_mariadb_destroy(&db);
}

/* ---- clusters and failure helpers --------------------------------------- */

TEST_TIMEOUT(smoke_etcd_cluster_serves_with_one_member_stopped, 120)
{
  struct cx_svc_etcd_opts o = {.members = 3};
  char err[CX_ERR_LEN], got[64];
  start_etcd(&o);
  ASSERT_EQ(etcd.n, 3);
  for (int i = 0; i < 3; i++)
    ASSERT_CONTAINS(etcd.endpoints, etcd.m[i].endpoint);
  etcd_put(etcd.m[0].endpoint, "/cron/a", "1");
  ASSERT_EQ(etcd_get(etcd.m[2].endpoint, "/cron/a", got, sizeof got), 0);
  ASSERT_STREQ(got, "1");

  ASSERT_MSG(cx_svc_etcd_member_stop(&etcd, 1, err) == 0, "%s", err);
  ASSERT_EQ(etcd.m[1].proc.pid, 0);
  ASSERT_MSG(cx_svc_etcd_wait_healthy(&etcd, -1, 30000, err) == 0, "%s",
             err); /* the two left still have a quorum */
  etcd_put(etcd.m[2].endpoint, "/cron/b", "2");

  ASSERT_MSG(cx_svc_etcd_member_start(&etcd, 1, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_etcd_wait_healthy(&etcd, 1, 30000, err) == 0, "%s", err);
  /* Linearizable read through the restarted member sees the write it
   * missed while it was down. */
  ASSERT_EQ(etcd_get(etcd.m[1].endpoint, "/cron/b", got, sizeof got), 0);
  ASSERT_STREQ(got, "2");
  cx_svc_etcd_destroy(&etcd);
}

TEST_TIMEOUT(smoke_etcd_paused_member_answers_again_after_resume, 120)
{
  char err[CX_ERR_LEN], url[128], body[256];
  long status = 0;
  start_etcd(NULL);
  snprintf(url, sizeof url, "%s/health", etcd.m[0].endpoint);
  ASSERT_MSG(cx_svc_etcd_member_pause(&etcd, 0, err) == 0, "%s", err);
  /* The kernel still accepts the connection; nobody answers. */
  ASSERT_EQ(cx_svc_http("GET", url, NULL, 500, &status, body, sizeof body, err),
            CX_EUNAVAIL);
  ASSERT_MSG(cx_svc_etcd_member_resume(&etcd, 0, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_etcd_wait_healthy(&etcd, 0, 30000, err) == 0, "%s", err);
  cx_svc_etcd_destroy(&etcd);
}

TEST_TIMEOUT(smoke_etcd_progress_notify_interval_reaches_etcd, 120)
{
  struct cx_svc_etcd_opts o = {.progress_notify_interval = "100ms"};
  char url[128], resp[16384], err[CX_ERR_LEN];
  const char *body = "{\"create_request\":{\"key\":\"L2Nyb24v\","
                     "\"range_end\":\"L2Nyb24w\",\"progress_notify\":true}}";
  long status = 0;
  int created = 0, progress = 0;
  start_etcd(&o);
  snprintf(url, sizeof url, "%s/v3/watch", etcd.m[0].endpoint);
  /* A watch stream never ends by itself: sample it for 5 s. With etcd's
   * default interval (10 minutes) no progress message would come. */
  ASSERT_EQ(
      cx_svc_http("POST", url, body, 5000, &status, resp, sizeof resp, err),
      CX_EUNAVAIL);
  ASSERT_EQ(status, 200); /* the stream began, then the timeout cut it */
  for (char *line = resp, *nl; *line != '\0'; line = nl + 1) {
    nl = strchr(line, '\n');
    if (nl == NULL)
      break;
    *nl = '\0';
    if (strstr(line, "\"created\":true") != NULL)
      created++;
    else if (strstr(line, "\"result\":{\"header\"") != NULL &&
             strstr(line, "\"events\"") == NULL)
      progress++;
  }
  ASSERT_EQ(created, 1);
  ASSERT_OP(progress, >=, 1);
  cx_svc_etcd_destroy(&etcd);
}

TEST_TIMEOUT(smoke_etcd_start_failure_quotes_server_log, 120)
{
  struct cx_svc_etcd_opts o = {.log_level = "bogus"}; /* etcd exits */
  char err[CX_ERR_LEN], tail[24];
  long n;
  int rc = cx_svc_etcd_start(&etcd, &o, err), fd;
  ASSERT_EQ(rc, CX_EUNAVAIL);
  ASSERT_CONTAINS(err, "etcd m0 exited");
  ASSERT_CONTAINS(err, etcd.m[0].proc.log_path);
  ASSERT_EQ(etcd.m[0].proc.pid, 0);
  /* The error ends with the end of the log (newlines flattened). */
  fd = open(etcd.m[0].proc.log_path, O_RDONLY);
  ASSERT(fd >= 0);
  ASSERT(lseek(fd, -(off_t)(sizeof tail - 1), SEEK_END) >= 0);
  n = read(fd, tail, sizeof tail - 1);
  close(fd);
  ASSERT_EQ(n, (long)sizeof tail - 1);
  tail[n] = '\0';
  while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == ' '))
    tail[--n] = '\0';
  for (char *p = tail; *p != '\0'; p++)
    if (*p == '\n' || *p == '\t' || *p == '\r')
      *p = ' ';
  ASSERT_OP(n, >, 8);
  ASSERT_CONTAINS(err, tail);
}

TEST(smoke_port_alloc_hands_out_distinct_free_ports)
{
  enum { N = 300 };
  int ports[N];
  char err[CX_ERR_LEN];
  for (int i = 0; i < N; i++) {
    ASSERT_MSG(cx_svc_port_alloc(&ports[i], err) == 0, "%s", err);
    ASSERT_OP(ports[i], >, 0);
    ASSERT_OP(ports[i], <, 65536);
    ASSERT(cx_svc_port_is_free(ports[i]));
    for (int j = 0; j < i; j++)
      ASSERT_MSG(ports[i] != ports[j], "port %d handed out twice", ports[i]);
  }
}

/* ---- nothing outlives a test ------------------------------------------- */

/* Hidden: run by the two tests below through a re-executed binary, and
 * registered only there (HIDDEN_ENV set), so a normal run neither lists it
 * nor counts it as passed. */
static void smoke_zz_hidden_test_fails_with_servers_running(void)
{
  const char *mode = getenv(HIDDEN_ENV);
  start_etcd(NULL);
  start_mariadb();
  printf("hidden: started etcd=%d mariadbd=%d\n", (int)etcd.m[0].proc.pid,
         (int)db.proc.pid);
  fflush(stdout);
  if (strcmp(mode, "crash") == 0)
    abort();
  ASSERT_MSG(0, "deliberate failure with servers running");
}

__attribute__((constructor)) static void hidden_register(void)
{
  if (getenv(HIDDEN_ENV) != NULL)
    cx_test_register(HIDDEN_TEST,
                     smoke_zz_hidden_test_fails_with_servers_running, 120);
}

/* Number of live processes (not zombies) whose command line contains
 * needle; describes the first in who. */
static int procs_mentioning(const char *needle, char *who, size_t cap)
{
  DIR *d = opendir("/proc");
  struct dirent *de;
  int count = 0;
  ASSERT(d != NULL);
  while ((de = readdir(d)) != NULL) {
    char path[300], buf[8192];
    ssize_t n;
    int fd;
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
    fd = open(path, O_RDONLY);
    if (fd < 0)
      continue;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
      continue; /* zombies and kernel threads have no command line */
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] == '\0')
        buf[i] = ' ';
    buf[n] = '\0';
    if (strstr(buf, needle) != NULL) {
      if (count++ == 0)
        snprintf(who, cap, "pid %.20s: %.200s", de->d_name, buf);
    }
  }
  closedir(d);
  return count;
}

/* Reaps every child that is ours to reap (we are a subreaper) for up to
 * ms; returns once there are none left. */
static void reap_orphans(int ms)
{
  int64_t deadline = ms_now() + ms;
  for (;;) {
    pid_t r = waitpid(-1, NULL, WNOHANG);
    if (r < 0 && errno == ECHILD)
      return;
    if (r <= 0) {
      ASSERT_MSG(ms_now() < deadline, "children still running after %d ms", ms);
      usleep(20000);
    }
  }
}

static long pid_after(const char *text, const char *label)
{
  const char *p = strstr(text, label);
  int64_t v = 0;
  char num[16] = "";
  ASSERT_MSG(p != NULL, "no \"%s\" in: %s", label, text);
  p += strlen(label);
  for (size_t i = 0; i + 1 < sizeof num && p[i] >= '0' && p[i] <= '9'; i++)
    num[i] = p[i], num[i + 1] = '\0';
  ASSERT_MSG(cx_parse_int64(num, 1, INT32_MAX, &v) == 0, "bad pid after %s",
             label);
  return (long)v;
}

static void run_hidden_and_check_leftovers(const char *mode,
                                           const char *expect_fail)
{
  char inner[PATH_MAX], out[PATH_MAX], bin[PATH_MAX], text[16384], who[256];
  int64_t deadline = ms_now() + 100000;
  int status = 0, fd;
  ssize_t n;
  pid_t pid, r;

  /* Servers orphaned by the inner test process are re-parented to us, so
   * we can reap them and then see their pids gone (not zombies). */
  ASSERT(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  snprintf(inner, sizeof inner, "%s/inner", cx_test_tmpdir());
  snprintf(out, sizeof out, "%s/inner.out", cx_test_tmpdir());
  snprintf(bin, sizeof bin, "%s/integration-smoke", cx_test_bindir());
  ASSERT(mkdir(inner, 0755) == 0);
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
      _exit(126);
    setenv(HIDDEN_ENV, mode, 1);
    setenv("TMPDIR", inner, 1);
    execl(bin, bin, HIDDEN_TEST, (char *)NULL);
    _exit(127);
  }
  for (;;) {
    r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      break;
    ASSERT_MSG(r == 0, "waitpid: %s", strerror(errno));
    ASSERT_MSG(ms_now() < deadline, "inner run did not finish");
    usleep(20000);
  }
  fd = open(out, O_RDONLY);
  ASSERT(fd >= 0);
  n = read(fd, text, sizeof text - 1);
  close(fd);
  ASSERT(n > 0);
  text[n] = '\0';
  /* The inner runner saw exactly this test fail, after both servers ran. */
  ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 1,
             "inner status %d: %s", status, text);
  ASSERT_CONTAINS(text, "FAIL integration-smoke " HIDDEN_TEST);
  ASSERT_CONTAINS(text, expect_fail);
  ASSERT_CONTAINS(text, "0 passed, 1 failed");
  long etcd_pid = pid_after(text, "etcd=");
  long db_pid = pid_after(text, "mariadbd=");

  reap_orphans(20000);
  ASSERT_MSG(procs_mentioning(inner, who, sizeof who) == 0, "left behind: %s",
             who);
  assert_pid_gone((pid_t)etcd_pid);
  assert_pid_gone((pid_t)db_pid);
}

TEST_TIMEOUT(smoke_failed_test_leaves_no_server_behind, 120)
{
  run_hidden_and_check_leftovers("fail", "deliberate failure");
}

TEST_TIMEOUT(smoke_crashed_test_leaves_no_server_behind, 120)
{
  run_hidden_and_check_leftovers("crash", "killed by signal 6");
}

/* PR_SET_PDEATHSIG: servers die with the process that started them, even
 * outside the runner's process group. */
TEST_TIMEOUT(smoke_servers_die_when_their_starter_dies, 120)
{
  int pfd[2], status;
  long pids[2] = {0, 0};
  pid_t starter;
  int64_t deadline;

  ASSERT(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  ASSERT(pipe(pfd) == 0);
  starter = fork();
  ASSERT(starter >= 0);
  if (starter == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive this test */
    setpgid(0, 0); /* out of reach of the runner's group kill */
    close(pfd[0]);
    start_etcd(NULL);
    start_mariadb();
    pids[0] = etcd.m[0].proc.pid;
    pids[1] = db.proc.pid;
    if (write(pfd[1], pids, sizeof pids) != (ssize_t)sizeof pids)
      _exit(1);
    for (;;)
      pause();
  }
  close(pfd[1]);
  ASSERT_EQ(read(pfd[0], pids, sizeof pids), (long)sizeof pids);
  close(pfd[0]);
  for (int i = 0; i < 2; i++)
    ASSERT_EQ(kill((pid_t)pids[i], 0), 0);
  ASSERT_EQ(getpgid((pid_t)pids[0]), starter); /* not in our group */

  ASSERT_EQ(kill(starter, SIGKILL), 0);
  ASSERT_EQ(waitpid(starter, &status, 0), starter);
  /* Orphaned, each server is re-parented to us; it must have died of the
   * SIGKILL that PDEATHSIG sends, with nobody else signalling it. */
  deadline = ms_now() + 20000;
  for (int i = 0; i < 2; i++) {
    for (;;) {
      pid_t r = waitpid((pid_t)pids[i], &status, WNOHANG);
      if (r == (pid_t)pids[i])
        break;
      ASSERT_MSG(ms_now() < deadline, "pid %ld still running", pids[i]);
      usleep(20000);
    }
    ASSERT_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
               "pid %ld: wait status %d", pids[i], status);
    assert_pid_gone((pid_t)pids[i]);
  }
}
