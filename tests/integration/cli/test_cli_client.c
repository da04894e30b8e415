/*
 * `cronix` as a client of a real `cronix standalone` (SQLite, one node):
 * login and the credentials file, the job commands, exit codes 1/2/3, jobs
 * as code (export -> apply is a no-op; --dry-run changes nothing; --prune
 * deletes) and crontab import, all observed through the cronix binary the
 * way an operator runs it. HOME is the test's own directory, so the
 * credentials file of the machine is never touched.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli.h"
#include "support/services.h"
#include "support/test.h"
#include "util/util.h"

static struct {
  struct cx_svc_proc proc;
  char url[64], token[160], password[80], node[64], dir[CX_SVC_PATH_LEN];
} S;

#define FAIL_LOG(...)                                                          \
  do {                                                                         \
    cx_svc_log_dump(S.proc.log_path, 4000);                                    \
    cx_test_fail(__FILE__, __LINE__, __VA_ARGS__);                             \
  } while (0)

/* Runs `cronix ARGS` and returns its output (free with
 * cx_test_output_free); the client finds the server in CRONIX_SERVER. */
static void run(char *const argv[], struct cx_test_output *o)
{
  cx_test_run(argv, 60, o);
}

/* Runs `cronix ARGS` expecting status; returns stdout (malloc'd). */
static char *expect(char *const argv[], int status)
{
  struct cx_test_output o;
  run(argv, &o);
  if (o.status != status)
    FAIL_LOG("cronix %s %s: exit %d, not %d\nstdout: %s\nstderr: %s", argv[1],
             argv[2] ? argv[2] : "", o.status, status, o.out, o.err);
  char *out = strdup(o.out);
  cx_test_output_free(&o);
  return out;
}

static json_t *expect_json(char *const argv[])
{
  char *out = expect(argv, 0);
  json_error_t e;
  json_t *j = json_loads(out, 0, &e);
  if (j == NULL)
    FAIL_LOG("not JSON (%s): %s", e.text, out);
  free(out);
  return j;
}

/* Reads "key = value" from initial-admin.txt into dst. */
static int admin_value(const char *key, char *dst, size_t cap)
{
  char path[CX_SVC_PATH_LEN + 32], line[512];
  size_t klen = strlen(key);
  snprintf(path, sizeof path, "%s/initial-admin.txt", S.dir);
  FILE *f = fopen(path, "r");
  int found = -1;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, key, klen) == 0 && strncmp(line + klen, " = ", 3) == 0) {
      line[strcspn(line, "\r\n")] = '\0';
      snprintf(dst, cap, "%s", line + klen + 3);
      found = 0;
    }
  }
  fclose(f);
  return found;
}

/* Starts a cronix process (argv after the binary) logging to <tmp>/name.log. */
static void start(struct cx_svc_proc *p, const char *name,
                  const char *const *args)
{
  char err[CX_ERR_LEN], log[CX_SVC_PATH_LEN + 16];
  const char *argv[24] = {cx_test_cronix_bin()};
  for (int i = 0; args[i] != NULL && i < 22; i++)
    argv[i + 1] = args[i];
  snprintf(log, sizeof log, "%s/%s.log", cx_test_tmpdir(), name);
  ASSERT_MSG(cx_svc_proc_set_argv(p, name, log, argv, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_proc_start(p, err) == 0, "%s", err);
}

static void wait_ready(void);

/* Starts the standalone, waits for its admin token and its alive node,
 * and points the client at it (CRONIX_SERVER, CRONIX_TOKEN). */
static void up(void)
{
  char err[CX_ERR_LEN], listen[64];
  int port;
  memset(&S, 0, sizeof S);
  ASSERT_MSG(cx_svc_port_alloc(&port, err) == 0, "%s", err);
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  snprintf(S.url, sizeof S.url, "http://127.0.0.1:%d", port);
  snprintf(S.dir, sizeof S.dir, "%s/sa", cx_test_tmpdir());
  ASSERT(mkdir(S.dir, 0700) == 0);
  const char *args[] = {"standalone",
                        "--data-dir",
                        S.dir,
                        "--listen",
                        listen,
                        "--set",
                        "node.labels=zone=a,disk=ssd",
                        NULL};
  start(&S.proc, "standalone", args);
  wait_ready();
}

static void wait_ready(void)
{
  /* A home of our own: the client must not read or write the real one. */
  setenv("HOME", cx_test_tmpdir(), 1);
  unsetenv("XDG_CONFIG_HOME");
  unsetenv("CRONIX_TOKEN");
  unsetenv("CRONIX_CACERT");
  setenv("CRONIX_SERVER", S.url, 1);
  setenv("NO_COLOR", "1", 1);
  int64_t until = cx_wall_ms() + 60000;
  while (cx_wall_ms() < until) {
    if (!cx_svc_proc_alive(&S.proc))
      FAIL_LOG("%s exited during start", S.proc.name);
    if (S.token[0] == '\0' &&
        (admin_value("token", S.token, sizeof S.token) != 0 ||
         admin_value("password", S.password, sizeof S.password) != 0)) {
      S.token[0] = '\0';
      cx_sleep_us(100000);
      continue;
    }
    setenv("CRONIX_TOKEN", S.token, 1);
    struct cx_test_output o;
    run(CRONIX("node", "ls", "--state", "alive", "-o", "json"), &o);
    json_t *l = o.status == 0 ? json_loads(o.out, 0, NULL) : NULL;
    cx_test_output_free(&o);
    json_t *first = json_array_get(l, 0);
    if (first != NULL) {
      snprintf(S.node, sizeof S.node, "%s",
               json_string_value(json_object_get(first, "uuid")));
      json_decref(l);
      return;
    }
    json_decref(l);
    cx_sleep_us(200000);
  }
  FAIL_LOG("%s not ready within 60 s", S.proc.name);
}

static void down(void)
{
  char err[CX_ERR_LEN];
  ASSERT_MSG(cx_svc_proc_stop(&S.proc, 20000, err) == 0, "%s", err);
}

static const char *write_file(const char *name, const char *text)
{
  static char path[CX_SVC_PATH_LEN + 64];
  snprintf(path, sizeof path, "%s/%s", cx_test_tmpdir(), name);
  FILE *f = fopen(path, "w");
  ASSERT_MSG(f != NULL, "%s", path);
  fputs(text, f);
  fclose(f);
  return path;
}

static char *file_text(const char *path)
{
  FILE *f = fopen(path, "r");
  ASSERT_MSG(f != NULL, "%s", path);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return strdup(buf);
}

/* Runs a shell line (for stdin and redirections); returns its status. */
static int shell(const char *line)
{
  int st = system(line);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static json_t *job_json(const char *id_or_name)
{
  return expect_json(CRONIX("job", "get", (char *)id_or_name, "-o", "json"));
}

static const char *jstr(const json_t *o, const char *k)
{
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static int64_t jint(const json_t *o, const char *k)
{
  return json_integer_value(json_object_get(o, k));
}

TEST_TIMEOUT(cli_client_login_logout_and_the_credentials_file, 120)
{
  char cred[CX_SVC_PATH_LEN + 96], dir[CX_SVC_PATH_LEN + 64], line[1024];
  struct stat st;
  up();
  /* Only the login's own session from here on. */
  unsetenv("CRONIX_TOKEN");
  unsetenv("CRONIX_SERVER");
  const char *pw = write_file("pw", S.password);
  snprintf(line, sizeof line,
           "'%s' login --server %s --username admin --password-stdin < '%s'",
           cx_test_cronix_bin(), S.url, pw);
  ASSERT_EQ(shell(line), 0);
  snprintf(dir, sizeof dir, "%s/.config/cronix", cx_test_tmpdir());
  snprintf(cred, sizeof cred, "%s/credentials", dir);
  ASSERT_EQ(stat(cred, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);
  ASSERT_EQ(stat(dir, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0700);
  char *text = file_text(cred);
  ASSERT_CONTAINS(text, S.url);
  char *tok = strstr(text, "token = ");
  ASSERT(tok != NULL);
  char session[160];
  snprintf(session, sizeof session, "%.64s", tok + 8);
  free(text);
  /* The stored session is used without --server or --token. */
  free(expect(CRONIX("job", "ls"), 0));
  /* ... but never sent to another server. */
  struct cx_test_output o;
  run(CRONIX("job", "ls", "--server", "http://127.0.0.1:1"), &o);
  ASSERT_EQ(o.status, 3);
  cx_test_output_free(&o);

  /* token ls marks the session in use; a second session can be revoked
   * with token rm, and is then refused. */
  json_t *toks = expect_json(CRONIX("token", "ls", "-o", "json"));
  size_t i;
  json_t *t;
  int current = 0;
  json_array_foreach(toks, i, t)
  {
    current += json_is_true(json_object_get(t, "current"));
  }
  ASSERT_EQ(current, 1);
  json_decref(toks);

  free(expect(CRONIX("logout"), 0));
  ASSERT(stat(cred, &st) != 0 && errno == ENOENT);
  /* Logged out: no server known (usage), and the old session is revoked
   * on the server (refused). */
  run(CRONIX("job", "ls"), &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "no server");
  cx_test_output_free(&o);
  run(CRONIX("job", "ls", "--server", S.url, "--token", session), &o);
  ASSERT_EQ(o.status, 1);
  cx_test_output_free(&o);
  /* A wrong password: refused, and no credentials written. */
  write_file("pw", "wrong-password");
  ASSERT_EQ(shell(line), 1);
  ASSERT(stat(cred, &st) != 0);
  down();
}

TEST_TIMEOUT(cli_client_exit_codes, 120)
{
  struct cx_test_output o;
  char err[CX_ERR_LEN], dead[64];
  int port;
  up();
  /* 2: usage, before any request. */
  run(CRONIX("job", "ls", "--bogus"), &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "unknown option '--bogus'");
  cx_test_output_free(&o);
  run(CRONIX("job", "add", "--name", "x", "--timeout", "soon"), &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "--timeout");
  cx_test_output_free(&o);
  run(CRONIX("job", "ls", "--server", "not-a-url"), &o);
  ASSERT_EQ(o.status, 2);
  cx_test_output_free(&o);
  /* 1: the server refused; its msg and field are printed. */
  run(CRONIX("job", "add", "--name", "bad", "--spec", "61 * * * *", "--command",
             "true", "--node", S.node),
      &o);
  ASSERT_EQ(o.status, 1);
  ASSERT_CONTAINS(o.err, "spec");
  ASSERT_CONTAINS(o.err, "minute");
  cx_test_output_free(&o);
  run(CRONIX("job", "ls", "--token", "0000"), &o);
  ASSERT_EQ(o.status, 1);
  cx_test_output_free(&o);
  run(CRONIX("job", "get", "999"), &o);
  ASSERT_EQ(o.status, 1);
  cx_test_output_free(&o);
  /* 3: nothing listens there. */
  ASSERT_MSG(cx_svc_port_alloc(&port, err) == 0, "%s", err);
  snprintf(dead, sizeof dead, "http://127.0.0.1:%d", port);
  run(CRONIX("job", "ls", "--server", dead), &o);
  ASSERT_EQ(o.status, 3);
  ASSERT_CONTAINS(o.err, "cannot reach the server");
  cx_test_output_free(&o);
  /* token rm revokes the token in use: the next call is refused. */
  json_t *toks = expect_json(CRONIX("token", "ls", "-o", "json"));
  size_t i;
  json_t *t;
  char id[24] = "";
  json_array_foreach(toks, i, t)
  {
    if (json_is_true(json_object_get(t, "current")))
      snprintf(id, sizeof id, "%lld", (long long)jint(t, "id"));
  }
  json_decref(toks);
  ASSERT(id[0] != '\0');
  free(expect(CRONIX("token", "rm", id), 0));
  run(CRONIX("job", "ls"), &o);
  ASSERT_EQ(o.status, 1);
  cx_test_output_free(&o);
  down();
}

TEST_TIMEOUT(cli_client_job_add_edit_run_rm_round_trip, 180)
{
  up();
  char *out =
      expect(CRONIX("job", "add", "--name", "greet", "--spec", "0 3 * * *",
                    "--command", "echo hello-$WHO", "--node", S.node, "--tz",
                    "Asia/Tokyo", "--timeout", "5m", "--retry-times", "2",
                    "--env", "WHO=world", "--note", "first"),
             0);
  ASSERT_CONTAINS(out, "created job");
  free(out);
  json_t *ls = expect_json(CRONIX("job", "ls", "-o", "json"));
  ASSERT_EQ(json_array_size(ls), 1);
  json_t *j = json_array_get(ls, 0);
  ASSERT_STREQ(jstr(j, "name"), "greet");
  ASSERT_STREQ(jstr(j, "timezone"), "Asia/Tokyo");
  ASSERT_EQ(jint(j, "timeout"), 300);
  ASSERT_EQ(jint(j, "retry_times"), 2);
  ASSERT_EQ(jint(j, "allocation"), 1);
  ASSERT_STREQ(jstr(json_object_get(j, "env"), "WHO"), "world");
  char id[24];
  snprintf(id, sizeof id, "%lld", (long long)jint(j, "id"));
  json_decref(ls);

  /* edit changes the fields given, keeps the rest (to a spec that fires
   * once, half a year from now: never during the test, whatever the date) */
  char later[64];
  cx_test_spec_days_ahead(180, later, sizeof later);
  free(expect(CRONIX("job", "edit", "greet", "--spec", later), 0));
  j = job_json(id);
  ASSERT_STREQ(jstr(j, "spec"), later);
  ASSERT_STREQ(jstr(j, "note"), "first");
  ASSERT_EQ(jint(j, "timeout"), 300);
  json_decref(j);
  /* pause / resume by name and id */
  free(expect(CRONIX("job", "pause", "greet"), 0));
  j = job_json("greet");
  ASSERT(json_is_false(json_object_get(j, "enabled")));
  json_decref(j);
  free(expect(CRONIX("job", "resume", id), 0));
  /* the table, cut to the terminal width */
  setenv("COLUMNS", "60", 1);
  unsetenv("NO_COLOR"); /* not a terminal: no colour all the same */
  out = expect(CRONIX("job", "ls"), 0);
  unsetenv("COLUMNS");
  ASSERT(strchr(out, '\033') == NULL);
  ASSERT_CONTAINS(out, "ID");
  for (char *p = out; *p;) {
    size_t n = strcspn(p, "\n");
    ASSERT_MSG(cx_utf8_chars(p, n) <= 60, "line wider than 60: %.*s", (int)n,
               p);
    p += n + (p[n] != '\0');
  }
  free(out);
  /* run --wait prints the run's output and exits 0 */
  out = expect(CRONIX("job", "run", "greet", "--wait"), 0);
  ASSERT_CONTAINS(out, "success");
  ASSERT_CONTAINS(out, "hello-world");
  free(out);
  json_t *logs = expect_json(CRONIX("job", "logs", id, "-o", "json"));
  ASSERT_EQ(json_array_size(logs), 1);
  ASSERT_STREQ(jstr(json_array_get(logs, 0), "trigger"), "once");
  json_decref(logs);
  /* a failing run: --wait exits 1; logs --status failed shows it */
  free(expect(
      CRONIX("job", "edit", id, "--command", "exit 3", "--retry-times", "0"),
      0));
  free(expect(CRONIX("job", "run", id, "--wait"), 1));
  logs = expect_json(
      CRONIX("job", "logs", id, "--status", "failed", "-o", "json"));
  ASSERT_EQ(json_array_size(logs), 1);
  ASSERT_EQ(jint(json_array_get(logs, 0), "exit_code"), 3);
  json_decref(logs);
  /* next without a server, and for the job */
  out = expect(
      CRONIX("job", "next", "--spec", "0 12 * * *", "--tz", "UTC", "-n", "2"),
      0);
  ASSERT_CONTAINS(out, "T12:00:00+00:00\n");
  free(out);
  /* rm */
  free(expect(CRONIX("job", "rm", "greet"), 0));
  ls = expect_json(CRONIX("job", "ls", "-o", "json"));
  ASSERT_EQ(json_array_size(ls), 0);
  json_decref(ls);
  down();
}

/* Every job of a jobs file holds every field of docs/openapi.json's
 * JobInput but what the store assigns, and job "a" the values given. */
static void expect_every_field(const char *exported)
{
  static const char *const not_in_file[] = {"id",   "created",    "updated",
                                            "next", "node_state", "paused"};
  json_t *doc = json_loads(exported, 0, NULL);
  json_t *api = json_load_file("docs/openapi.json", 0, NULL);
  ASSERT(doc != NULL && api != NULL);
  json_t *props = json_object_get(
      json_object_get(
          json_object_get(json_object_get(api, "components"), "schemas"),
          "JobInput"),
      "properties");
  json_t *a = json_array_get(json_object_get(doc, "jobs"), 0);
  const char *k;
  json_t *v;
  json_object_foreach(props, k, v)
  {
    int skip = 0;
    for (size_t i = 0; i < CX_ARRAY_LEN(not_in_file); i++)
      skip |= strcmp(k, not_in_file[i]) == 0;
    ASSERT_MSG(skip || json_object_get(a, k) != NULL,
               "job export lacks the field %s", k);
  }
  ASSERT_EQ(json_object_size(a),
            json_object_size(props) - CX_ARRAY_LEN(not_in_file));
  ASSERT_STREQ(jstr(a, "node_selector"), "zone=a,disk in (ssd,nvme)");
  ASSERT_STREQ(jstr(a, "run_as"), "nobody");
  ASSERT_STREQ(jstr(a, "notify_events"), "failed,timeout");
  ASSERT_EQ(jint(a, "limit_memory_mb"), 512);
  ASSERT_EQ(jint(a, "limit_nproc"), 64);
  ASSERT_EQ(jint(a, "limit_cpu_s"), 60);
  ASSERT_EQ(jint(a, "limit_nofile"), 256);
  ASSERT_EQ(jint(a, "max_duration"), 7200);
  json_decref(api);
  json_decref(doc);
}

TEST_TIMEOUT(cli_client_export_apply_round_trip, 180)
{
  up();
  free(expect(CRONIX("job", "add", "--name", "a", "--spec", "0 1 * * *",
                     "--command", "true", "--node", S.node, "--env", "X=1",
                     "--selector", "zone=a,disk in (ssd,nvme)", "--run-as",
                     "nobody", "--limit-memory-mb", "512", "--limit-nproc",
                     "64", "--limit-cpu", "1m", "--limit-nofile", "256",
                     "--notify-events", "failed,timeout", "--max-duration",
                     "2h"),
              0));
  free(expect(CRONIX("job", "add", "--name", "b", "--spec", "0 2 * * *",
                     "--command", "true", "--node", S.node, "--paused",
                     "--header", "X-A: 1", "--concurrency", "allow"),
              0));
  char path[CX_SVC_PATH_LEN + 64], line[2 * CX_SVC_PATH_LEN + 128];
  snprintf(path, sizeof path, "%s/jobs.json", cx_test_tmpdir());
  snprintf(line, sizeof line, "'%s' job export > '%s'", cx_test_cronix_bin(),
           path);
  ASSERT_EQ(shell(line), 0);
  char *exported = file_text(path);
  ASSERT_CONTAINS(exported, "\"cronix_jobs\": 1");
  expect_every_field(exported);
  /* Applying the export changes nothing. */
  char *out = expect(CRONIX("job", "apply", "-f", path), 0);
  ASSERT_CONTAINS(out, "0 created, 0 changed, 0 deleted, 2 unchanged");
  free(out);

  /* A new version: b changed, c added, a left out. */
  json_t *doc = json_loads(exported, 0, NULL);
  json_t *jobs = json_object_get(doc, "jobs");
  ASSERT_EQ(json_array_size(jobs), 2);
  json_t *b = json_array_get(jobs, 1);
  ASSERT_STREQ(jstr(b, "name"), "b");
  json_object_set_new(b, "spec", json_string("0 3 * * *"));
  json_object_set_new(b, "retry_times", json_integer(4));
  json_t *c = json_deep_copy(b);
  json_object_set_new(c, "name", json_string("c"));
  json_array_append_new(jobs, c);
  json_array_remove(jobs, 0);
  ASSERT_EQ(json_dump_file(doc, path, JSON_INDENT(2)), 0);
  json_decref(doc);

  /* --dry-run prints the plan field by field and changes nothing. */
  out = expect(CRONIX("job", "apply", "-f", path, "--dry-run", "--prune"), 0);
  ASSERT_CONTAINS(out, "would create 'c'");
  ASSERT_CONTAINS(out, "would change 'b'");
  ASSERT_CONTAINS(out, "spec: \"0 2 * * *\" -> \"0 3 * * *\"");
  ASSERT_CONTAINS(out, "retry_times: 0 -> 4");
  ASSERT_CONTAINS(out, "would delete 'a'");
  free(out);
  snprintf(line, sizeof line, "'%s' job export > '%s.after'",
           cx_test_cronix_bin(), path);
  ASSERT_EQ(shell(line), 0);
  char after[CX_SVC_PATH_LEN + 80];
  snprintf(after, sizeof after, "%s.after", path);
  char *now = file_text(after);
  ASSERT_STREQ(now, exported);
  free(now);

  /* Without --prune a stays; with it, a goes. Twice = no-op. */
  out = expect(CRONIX("job", "apply", "-f", path), 0);
  ASSERT_CONTAINS(out, "1 created, 1 changed, 0 deleted, 0 unchanged");
  free(out);
  out = expect(CRONIX("job", "apply", "-f", path, "--prune"), 0);
  ASSERT_CONTAINS(out, "0 created, 0 changed, 1 deleted, 2 unchanged");
  free(out);
  out = expect(CRONIX("job", "apply", "-f", path, "--prune"), 0);
  ASSERT_CONTAINS(out, "0 created, 0 changed, 0 deleted, 2 unchanged");
  free(out);
  json_t *cj = job_json("c");
  ASSERT_STREQ(jstr(cj, "spec"), "0 3 * * *");
  ASSERT_STREQ(jstr(cj, "concurrency"), "allow");
  ASSERT_STREQ(jstr(json_object_get(cj, "http_headers"), "X-A"), "1");
  ASSERT(json_is_false(json_object_get(cj, "enabled")));
  json_decref(cj);
  /* A typo in a file is refused before anything happens. */
  const char *bad =
      write_file("bad.json", "{\"jobs\":[{\"name\":\"z\",\"retry_time\":1}]}");
  struct cx_test_output o;
  run(CRONIX("job", "apply", "-f", (char *)bad), &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "retry_time");
  cx_test_output_free(&o);
  free(exported);
  down();
}

/* Broadcast placement and every alert channel are reachable from the flags;
 * a channel the CLI does not know is a usage error naming the choices. */
TEST_TIMEOUT(cli_client_broadcast_and_channel_flags, 120)
{
  up();
  free(
      expect(CRONIX("job", "add", "--name", "everywhere", "--spec", "0 0 * * *",
                    "--type", "http", "--command", "http://127.0.0.1:9/clean",
                    "--allocation", "broadcast", "--max-running", "2"),
             0));
  json_t *j = job_json("everywhere");
  ASSERT_EQ(jint(j, "allocation"), 3);
  ASSERT_EQ(jint(j, "max_running"), 2);
  json_decref(j);
  struct cx_test_output o;
  run(CRONIX("job", "edit", "everywhere", "--notify", "pager"), &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "dingtalk, wecom, slack, webhook or off");
  cx_test_output_free(&o);
  /* slack is a channel name the CLI maps to notify_type 5; the server then
   * refuses it because no Slack webhook is configured here. */
  run(CRONIX("job", "edit", "everywhere", "--notify", "slack"), &o);
  ASSERT_EQ(o.status, 1);
  ASSERT_CONTAINS(o.err, "notify_type");
  cx_test_output_free(&o);
  down();
}

/* The newest run of job name (0 when none yet). */
static int64_t newest_run_of(const char *name)
{
  json_t *l = expect_json(CRONIX("job", "logs", (char *)name, "-o", "json"));
  int64_t id = jint(json_array_get(l, 0), "id");
  json_decref(l);
  return id;
}

TEST_TIMEOUT(cli_client_logs_follow_status_audit_and_node_columns, 180)
{
  up();
  /* logs -f: a run's lines as they come, then its end. */
  free(expect(CRONIX("job", "add", "--name", "ticker", "--spec", "0 1 * * *",
                     "--command",
                     "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.3; done",
                     "--node", S.node),
              0));
  free(expect(CRONIX("job", "run", "ticker"), 0));
  int64_t run_id = 0;
  for (int i = 0; i < 100 && run_id == 0; i++) {
    run_id = newest_run_of("ticker");
    if (run_id == 0)
      cx_sleep_us(100000);
  }
  ASSERT_MSG(run_id > 0, "the once run never showed in the run log");
  char rid[24];
  snprintf(rid, sizeof rid, "%lld", (long long)run_id);
  struct cx_test_output o;
  run(CRONIX("job", "logs", "--run", rid, "-f"), &o);
  ASSERT_MSG(o.status == 0, "logs -f: exit %d: %s %s", o.status, o.out, o.err);
  ASSERT_STREQ(o.out, "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\ntick 6\n");
  ASSERT_CONTAINS(o.err, "ended success");
  cx_test_output_free(&o);
  /* A finished run follows to its end at once; `logs NAME -f` = newest. */
  run(CRONIX("job", "logs", "ticker", "-f"), &o);
  ASSERT_EQ(o.status, 0);
  ASSERT_CONTAINS(o.out, "tick 6\n");
  cx_test_output_free(&o);

  /* --status failed: only the unsuccessful runs; -f on one exits 1. */
  free(expect(CRONIX("job", "add", "--name", "bad", "--spec", "0 1 * * *",
                     "--command", "echo oops; exit 3", "--node", S.node),
              0));
  free(expect(CRONIX("job", "run", "bad", "--wait"), 1));
  json_t *l = expect_json(
      CRONIX("job", "logs", "bad", "--status", "failed", "-o", "json"));
  ASSERT_EQ(json_array_size(l), 1);
  ASSERT_EQ(jint(json_array_get(l, 0), "exit_code"), 3);
  json_decref(l);
  l = expect_json(
      CRONIX("job", "logs", "ticker", "--status", "failed", "-o", "json"));
  ASSERT_EQ(json_array_size(l), 0);
  json_decref(l);
  run(CRONIX("job", "logs", "bad", "-f"), &o);
  ASSERT_EQ(o.status, 1);
  ASSERT_CONTAINS(o.out, "oops");
  ASSERT_CONTAINS(o.err, "exit 3");
  cx_test_output_free(&o);

  /* audit ls: the adds above, by kind; a user with no rows has none. */
  char *out = expect(CRONIX("audit", "ls", "--kind", "job."), 0);
  ASSERT_CONTAINS(out, "KIND");
  ASSERT_CONTAINS(out, "job.add");
  free(out);
  l = expect_json(
      CRONIX("audit", "ls", "--kind", "job.add", "-n", "1", "-o", "json"));
  ASSERT_EQ(json_array_size(l), 1);
  ASSERT_STREQ(jstr(json_array_get(l, 0), "kind"), "job.add");
  json_decref(l);
  l = expect_json(CRONIX("audit", "ls", "--since", "1h", "--user",
                         "nobody-such", "-o", "json"));
  ASSERT_EQ(json_array_size(l), 0);
  json_decref(l);
  out = expect(CRONIX("audit", "ls", "--since", "1h", "-o", "wide"), 0);
  ASSERT_CONTAINS(out, "AFTER");
  ASSERT_CONTAINS(out, "\"name\":\"ticker\"");
  free(out);
  free(expect(CRONIX("audit", "ls", "--since", "soon"), 2));

  /* node ls: the labels, and the drain state. */
  out = expect(CRONIX("node", "ls"), 0);
  ASSERT_CONTAINS(out, "LABELS");
  ASSERT_CONTAINS(out, "zone=a,disk=ssd");
  free(out);
  free(expect(CRONIX("node", "drain", S.node), 0));
  out = expect(CRONIX("node", "ls"), 0);
  ASSERT_CONTAINS(out, "alive/drain");
  free(out);
  free(expect(CRONIX("node", "undrain", S.node), 0));
  down();
}

TEST_TIMEOUT(cli_client_import_crontab, 180)
{
  up();
  const char *tab =
      write_file("crontab", "# a comment\n"
                            "MAILTO=ops@example.org\n"
                            "PATH = /usr/bin:/bin\n"
                            "CRON_TZ=Asia/Tokyo\n"
                            "# Name: nightly-backup\n"
                            "0 2 * * * /usr/local/bin/backup --full\n"
                            "@reboot /usr/bin/startup\n"
                            "*/15 * * * * 5min-report\n"
                            "SHELL=/bin/bash\n"
                            "@daily cat -n 100\\%%line one%line two\n");
  struct cx_test_output o;
  run(CRONIX("job", "import-crontab", (char *)tab, "--dry-run"), &o);
  ASSERT_MSG(o.status == 0, "exit %d: %s %s", o.status, o.out, o.err);
  ASSERT_CONTAINS(o.out, "line 2: warning: MAILTO ignored");
  ASSERT_CONTAINS(o.out, "line 6: job 'nightly-backup': 0 2 * * * in "
                         "Asia/Tokyo, next ");
  ASSERT_CONTAINS(o.out, "line 7: skipped: @reboot");
  ASSERT_CONTAINS(o.out, "would create 'nightly-backup'");
  ASSERT_CONTAINS(o.out, "dry run: 3 to create");
  cx_test_output_free(&o);
  json_t *ls = expect_json(CRONIX("job", "ls", "-o", "json"));
  ASSERT_EQ(json_array_size(ls), 0);
  json_decref(ls);

  char *out = expect(CRONIX("job", "import-crontab", (char *)tab), 0);
  ASSERT_CONTAINS(out, "done: 3 created");
  free(out);
  out = expect(CRONIX("job", "import-crontab", (char *)tab), 0);
  ASSERT_CONTAINS(out, "done: 0 created, 0 changed, 0 deleted, 3 unchanged");
  free(out);

  ls = expect_json(CRONIX("job", "ls", "-o", "json"));
  ASSERT_EQ(json_array_size(ls), 3);
  json_t *nb = json_array_get(ls, 0), *rep = json_array_get(ls, 1),
         *daily = json_array_get(ls, 2);
  ASSERT_STREQ(jstr(nb, "name"), "nightly-backup");
  ASSERT_STREQ(jstr(nb, "spec"), "0 2 * * *");
  ASSERT_STREQ(jstr(nb, "timezone"), "Asia/Tokyo");
  ASSERT_STREQ(jstr(nb, "command"), "/usr/local/bin/backup --full");
  ASSERT_STREQ(jstr(nb, "run_on"), S.node);
  ASSERT_STREQ(jstr(json_object_get(nb, "env"), "PATH"), "/usr/bin:/bin");
  ASSERT(json_object_get(json_object_get(nb, "env"), "MAILTO") == NULL);
  /* A command starting with a digit is the command, not a sixth field;
   * the derived name is stable (it did not change on the second import). */
  ASSERT_STREQ(jstr(rep, "spec"), "*/15 * * * *");
  ASSERT_STREQ(jstr(rep, "command"), "5min-report");
  ASSERT(strncmp(jstr(rep, "name"), "5min-report-cron-", 17) == 0);
  /* SHELL wraps; % is stdin with newlines; \% a literal %. */
  ASSERT_STREQ(jstr(daily, "spec"), "@daily");
  ASSERT_STREQ(jstr(daily, "command"),
               "printf '%s' 'line one\nline two' | exec '/bin/bash' -c "
               "'cat -n 100%'");
  json_decref(ls);
  /* A bad line: nothing is imported, and the line is named. */
  const char *bad = write_file("bad", "1 2 3 * echo\n* * * * * ok\n");
  run(CRONIX("job", "import-crontab", (char *)bad), &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.out, "line 1: error:");
  cx_test_output_free(&o);
  ls = expect_json(CRONIX("job", "ls", "-o", "json"));
  ASSERT_EQ(json_array_size(ls), 3);
  json_decref(ls);
  /* --system: /etc/cron.d lines have a user field. */
  const char *crond = write_file("crond", "17 * * * * root cd / && run-parts "
                                          "--report /etc/cron.hourly\n"
                                          "1 1 * * * www-data\n");
  run(CRONIX("job", "import-crontab", (char *)crond, "--system"), &o);
  ASSERT_EQ(o.status, 2); /* line 2: no command after the user */
  ASSERT_CONTAINS(o.out, "line 2: error: no command");
  cx_test_output_free(&o);
  crond = write_file("crond", "17 * * * * root cd / && run-parts --report "
                              "/etc/cron.hourly\n");
  out = expect(CRONIX("job", "import-crontab", (char *)crond, "--system"), 0);
  ASSERT_CONTAINS(out, "1 created");
  free(out);
  ls = expect_json(CRONIX("job", "ls", "-o", "json", "--name", "run-parts"));
  ASSERT_EQ(json_array_size(ls), 1);
  ASSERT_STREQ(jstr(json_array_get(ls, 0), "command"),
               "cd / && run-parts --report /etc/cron.hourly");
  ASSERT_STREQ(jstr(json_array_get(ls, 0), "note"), "crontab user: root");
  json_decref(ls);
  down();
}

TEST_TIMEOUT(cli_client_bash_completion_offers_real_commands, 120)
{
  /* The completion's job commands are the binary's: each has --help. */
  char *const argv[] = {
      "/bin/bash", "-c",
      "source contrib/completion/cronix.bash && COMP_WORDS=(cronix job '') "
      "&& COMP_CWORD=2 && _cronix && echo \"${COMPREPLY[*]}\"",
      NULL};
  struct cx_test_output o;
  cx_test_run(argv, 30, &o);
  ASSERT_MSG(o.status == 0, "bash: %s", o.err);
  ASSERT_CONTAINS(o.out, "import-crontab");
  char *save = NULL, *words = strdup(o.out);
  int n = 0;
  for (char *w = strtok_r(words, " \n", &save); w != NULL;
       w = strtok_r(NULL, " \n", &save), n++)
    cli_expect(CRONIX("job", w, "--help"), 0, "usage: cronix", NULL);
  ASSERT_OP(n, >=, 14);
  free(words);
  cx_test_output_free(&o);
}

TEST_TIMEOUT(cli_client_users_nodes_and_hostile_values, 120)
{
  up();
  /* user add through the API prints a generated password once */
  char *out = expect(CRONIX("user", "add", "ops", "--role", "operator",
                            "--email", "ops@example.org"),
                     0);
  ASSERT_CONTAINS(out, "username = ops\npassword = ");
  free(out);
  json_t *users = expect_json(CRONIX("user", "ls", "-o", "json"));
  ASSERT_EQ(json_array_size(users), 2);
  ASSERT_STREQ(jstr(json_array_get(users, 1), "role"), "operator");
  json_decref(users);
  char line[512];
  const char *pw = write_file("newpw", "a-brand-new-password\n");
  snprintf(line, sizeof line,
           "'%s' user passwd ops --password-stdin < '%s' 2>/dev/null",
           cx_test_cronix_bin(), pw);
  ASSERT_EQ(shell(line), 0);
  /* the new password logs in */
  snprintf(line, sizeof line,
           "'%s' login --server %s --username ops --password-stdin < '%s' "
           "2>/dev/null",
           cx_test_cronix_bin(), S.url, pw);
  ASSERT_EQ(shell(line), 0);
  free(expect(CRONIX("user", "rm", "ops"), 0));
  users = expect_json(CRONIX("user", "ls", "-o", "json"));
  ASSERT_EQ(json_array_size(users), 1);
  json_decref(users);
  /* node ls: the standalone's node, alive; rm of an alive node refused */
  out = expect(CRONIX("node", "ls"), 0);
  ASSERT_CONTAINS(out, S.node);
  ASSERT_CONTAINS(out, "alive");
  free(out);
  struct cx_test_output o;
  run(CRONIX("node", "rm", S.node), &o);
  ASSERT_EQ(o.status, 1);
  cx_test_output_free(&o);
  /* node drain / undrain: the drain shows in node ls -o json */
  out = expect(CRONIX("node", "drain", S.node), 0);
  ASSERT_CONTAINS(out, "drained node");
  free(out);
  json_t *nodes = expect_json(CRONIX("node", "ls", "-o", "json"));
  const char *dr =
      json_string_value(json_object_get(json_array_get(nodes, 0), "drain"));
  ASSERT(dr != NULL && strncmp(dr, "drain", 5) == 0);
  json_decref(nodes);
  free(expect(CRONIX("node", "undrain", S.node), 0));
  nodes = expect_json(CRONIX("node", "ls", "-o", "json"));
  ASSERT_STREQ(
      json_string_value(json_object_get(json_array_get(nodes, 0), "drain")),
      "");
  json_decref(nodes);
  /* a value with terminal escapes and a newline is shown inert */
  free(expect(CRONIX("job", "add", "--name", "esc", "--spec", "0 1 * * *",
                     "--command", "printf '\033]0;pwned\007'\necho x", "--node",
                     S.node),
              0));
  unsetenv("NO_COLOR");
  out = expect(CRONIX("job", "ls", "-o", "wide"), 0);
  ASSERT(strchr(out, '\033') == NULL && strchr(out, '\007') == NULL);
  ASSERT_CONTAINS(out, "printf '?]0;pwned?'?echo x");
  free(out);
  down();
}

/* GET /openapi.json (no token: it is public) is docs/openapi.json, plain
 * and gzipped. */
static void expect_openapi_served(void)
{
  char url[96];
  snprintf(url, sizeof url, "%s/openapi.json", S.url);
  json_t *file = json_load_file("docs/openapi.json", 0, NULL);
  ASSERT(file != NULL);
  for (int gz = 0; gz < 2; gz++) {
    char *const plain[] = {"/usr/bin/curl", "-fsS", url, NULL};
    char *const zipped[] = {"/usr/bin/curl", "-fsS", "--compressed", url, NULL};
    struct cx_test_output o;
    cx_test_run(gz ? zipped : plain, 30, &o);
    ASSERT_MSG(o.status == 0, "GET /openapi.json: %s", o.err);
    json_t *served = json_loads(o.out, 0, NULL);
    ASSERT_MSG(json_equal(served, file),
               "GET /openapi.json%s is not docs/openapi.json",
               gz ? " (gzip)" : "");
    json_decref(served);
    cx_test_output_free(&o);
  }
  json_decref(file);
}

TEST_TIMEOUT(cli_client_job_ls_against_admin_mariadb_etcd, 300)
{
  /* The same client against the distributed roles: a real MariaDB, a
   * real etcd, `cronix admin` and `cronix node`; the job is placed by the
   * admin (allocation auto). */
  struct cx_svc_etcd etcd;
  struct cx_svc_mariadb db;
  struct cx_svc_proc node;
  char err[CX_ERR_LEN], listen[64], ndir[CX_SVC_PATH_LEN + 8];
  int port;
  memset(&S, 0, sizeof S);
  memset(&node, 0, sizeof node);
  ASSERT_MSG(cx_svc_etcd_start(&etcd, NULL, err) == 0, "etcd: %s", err);
  ASSERT_MSG(cx_svc_mariadb_start(&db, NULL, err) == 0, "mariadb: %s", err);
  ASSERT_MSG(cx_svc_port_alloc(&port, err) == 0, "%s", err);
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  snprintf(S.url, sizeof S.url, "http://127.0.0.1:%d", port);
  snprintf(S.dir, sizeof S.dir, "%s/admin", cx_test_tmpdir());
  snprintf(ndir, sizeof ndir, "%s/node", cx_test_tmpdir());
  ASSERT(mkdir(S.dir, 0700) == 0 && mkdir(ndir, 0700) == 0);
  const char *admin[] = {"admin",
                         "--data-dir",
                         S.dir,
                         "--listen",
                         listen,
                         "--store",
                         db.url,
                         "--etcd",
                         etcd.endpoints,
                         "--set",
                         "node.ttl=2s",
                         "--set",
                         "system.cmd_auto_allocation=true",
                         NULL};
  const char *nodeargs[] = {
      "node",   "--data-dir",   ndir,    "--store",     db.url,
      "--etcd", etcd.endpoints, "--set", "node.ttl=2s", NULL};
  start(&S.proc, "admin", admin);
  start(&node, "node", nodeargs);
  wait_ready();

  free(expect(CRONIX("job", "add", "--name", "placed", "--spec", "0 4 * * *",
                     "--command", "echo from-the-cluster", "--tz", "UTC"),
              0));
  json_t *ls = expect_json(CRONIX("job", "ls", "-o", "json"));
  ASSERT_EQ(json_array_size(ls), 1);
  ASSERT_EQ(jint(json_array_get(ls, 0), "allocation"), 2);
  ASSERT_STREQ(jstr(json_array_get(ls, 0), "run_on"), S.node);
  json_decref(ls);
  char *out = expect(CRONIX("job", "ls", "--enabled", "true"), 0);
  ASSERT_CONTAINS(out, "placed");
  ASSERT_CONTAINS(out, "0 4 * * *");
  ASSERT_CONTAINS(out, "UTC");
  free(out);
  out = expect(CRONIX("job", "run", "placed", "--wait"), 0);
  ASSERT_CONTAINS(out, "from-the-cluster");
  free(out);
  out = expect(CRONIX("job", "ls"), 0);
  ASSERT_CONTAINS(out, "success");
  free(out);
  expect_openapi_served();

  ASSERT_MSG(cx_svc_proc_stop(&node, 20000, err) == 0, "%s", err);
  down();
  cx_svc_mariadb_destroy(&db);
  cx_svc_etcd_destroy(&etcd);
}

/* Writes `cronix ARGS -o json`'s output to <tmp>/name and returns the
 * path (static buffer per slot). */
static const char *json_to_file(int slot, const char *name, char *const argv[])
{
  static char paths[8][CX_SVC_PATH_LEN + 64];
  char *out = expect(argv, 0);
  snprintf(paths[slot], sizeof paths[slot], "%s/%s", cx_test_tmpdir(), name);
  FILE *f = fopen(paths[slot], "w");
  ASSERT(f != NULL);
  fputs(out, f);
  fclose(f);
  free(out);
  return paths[slot];
}

TEST_TIMEOUT(cli_openapi_schemas_match_real_replies, 120)
{
  /* The document describes what the server really answers, and the
   * server serves it. */
  up();
  expect_openapi_served();
  free(expect(CRONIX("job", "add", "--name", "s", "--spec", "0 1 * * *",
                     "--command", "echo hi", "--node", S.node, "--env", "A=1"),
              0));
  free(expect(CRONIX("job", "run", "s", "--wait"), 0));
  char *const check[] = {
      "/usr/bin/env",
      "python3",
      "tests/integration/cli/openapi_check.py",
      "docs/openapi.json",
      "Job",
      (char *)json_to_file(0, "get.json",
                           CRONIX("job", "get", "s", "-o", "json")),
      "Job",
      (char *)json_to_file(1, "ls.json", CRONIX("job", "ls", "-o", "json")),
      "Run",
      (char *)json_to_file(2, "logs.json",
                           CRONIX("job", "logs", "s", "-o", "json")),
      "RunDetail",
      (char *)json_to_file(3, "run.json",
                           CRONIX("job", "logs", "--run", "1", "-o", "json")),
      "Node",
      (char *)json_to_file(4, "nodes.json", CRONIX("node", "ls", "-o", "json")),
      "User",
      (char *)json_to_file(5, "users.json", CRONIX("user", "ls", "-o", "json")),
      "Token",
      (char *)json_to_file(6, "tokens.json",
                           CRONIX("token", "ls", "-o", "json")),
      NULL};
  struct cx_test_output o;
  cx_test_run(check, 60, &o);
  if (o.status != 0 && strstr(o.err, "No module named") != NULL) {
    cx_test_output_free(&o);
    down();
    cx_test_skip("python3 jsonschema is not installed");
  }
  ASSERT_MSG(o.status == 0, "%s%s", o.out, o.err);
  cx_test_output_free(&o);
  down();
}
