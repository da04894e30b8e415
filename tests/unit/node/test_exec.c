/*
 * node/exec: one attempt of a job, with real processes (/bin/sh) and a
 * real HTTP server (libmicrohttpd on 127.0.0.1, started by the test).
 * Timing checks are "at least" bounds only; a hang is caught by the
 * per-test timeout of the runner.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node/exec-int.h"
#include "node/exec.h"
#include "support/test.h"
#include "util/util.h"

/* ---- helpers ------------------------------------------------------------ */

struct spawned {
  atomic_int calls;
  atomic_int pid;
};

static void on_spawn(void *ctx, pid_t pid, pid_t pgid)
{
  struct spawned *s = ctx;
  ASSERT_EQ(pid, pgid);
  atomic_store(&s->pid, pid);
  atomic_fetch_add(&s->calls, 1);
}

/* Runs command with opts (may be NULL) and a timeout; returns run's rc. */
static int run_cmd(const struct cx_exec_opts *opts, const char *command,
                   int64_t timeout_ms, struct cx_exec_result *res)
{
  struct cx_exec *x;
  struct cx_exec_cmd cmd = {.command = command, .timeout_ms = timeout_ms};
  ASSERT_EQ(cx_exec_create(&x), 0);
  int rc = cx_exec_run_cmd(x, opts, &cmd, NULL, NULL, res, NULL);
  cx_exec_destroy(x);
  return rc;
}

static int64_t mono_ms(void)
{
  return cx_mono_now() / 1000;
}

/* ---- cmd: basics -------------------------------------------------------- */

TEST(node_exec_echo_output)
{
  struct cx_exec *x;
  struct cx_exec_result res;
  struct spawned sp = {0};
  struct cx_exec_cmd cmd = {.command = "echo hello; echo oops >&2"};

  ASSERT_EQ(cx_exec_create(&x), 0);
  ASSERT_EQ(cx_exec_run_cmd(x, NULL, &cmd, on_spawn, &sp, &res, NULL), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_EQ(res.exit_code, 0);
  ASSERT_EQ(res.term_signal, 0);
  ASSERT_STREQ(res.output, "hello\noops\n");
  ASSERT_EQ(res.output_len, 11);
  ASSERT_EQ(res.output_total, 11);
  ASSERT_EQ(atomic_load(&sp.calls), 1);
  ASSERT_EQ(atomic_load(&sp.pid), res.pid);
  ASSERT(res.pid > 0);
  ASSERT_EQ(res.pgid, res.pid);
  ASSERT(res.start_ms > 0);
  ASSERT(res.end_ms >= res.start_ms);
  ASSERT_EQ(res.leftovers, 0);
  ASSERT_STREQ(res.error, "");
  cx_exec_result_free(&res);
  cx_exec_destroy(x);
}

TEST(node_exec_exit_code_is_failed)
{
  struct cx_exec_result res;
  ASSERT_EQ(run_cmd(NULL, "echo partial; exit 3", 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_FAILED);
  ASSERT_EQ(res.exit_code, 3);
  ASSERT_EQ(res.term_signal, 0);
  ASSERT_STREQ(res.output, "partial\n");
  cx_exec_result_free(&res);
}

TEST(node_exec_own_signal_recorded)
{
  struct cx_exec_result res;
  ASSERT_EQ(run_cmd(NULL, "kill -USR1 $$", 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_FAILED);
  ASSERT_EQ(res.exit_code, -1);
  ASSERT_EQ(res.term_signal, SIGUSR1);
  cx_exec_result_free(&res);
}

TEST(node_exec_command_not_found_is_127)
{
  struct cx_exec_result res;
  ASSERT_EQ(run_cmd(NULL, "cx-no-such-command-here", 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_FAILED);
  ASSERT_EQ(res.exit_code, 127);
  ASSERT_CONTAINS(res.output, "cx-no-such-command-here");
  ASSERT_CONTAINS(res.output, "not found");
  cx_exec_result_free(&res);
}

TEST(node_exec_missing_shell_is_error)
{
  struct cx_exec *x;
  struct cx_exec_result res;
  struct spawned sp = {0};
  struct cx_exec_opts opts = {.shell = "/nonexistent/cx-shell"};
  struct cx_exec_cmd cmd = {.command = "true"};
  char err[CX_ERR_LEN] = "";

  ASSERT_EQ(cx_exec_create(&x), 0);
  ASSERT_EQ(cx_exec_run_cmd(x, &opts, &cmd, on_spawn, &sp, &res, err), -ENOENT);
  ASSERT_EQ(res.status, CX_EXEC_ERROR);
  ASSERT_EQ(res.exit_code, 127);
  ASSERT_CONTAINS(res.error, "/nonexistent/cx-shell");
  ASSERT_CONTAINS(err, "No such file");
  ASSERT_EQ(atomic_load(&sp.calls), 0);
  ASSERT(res.output != NULL);
  ASSERT_EQ(res.output_len, 0);
  cx_exec_result_free(&res);
  cx_exec_destroy(x);
}

TEST(node_exec_relative_shell_rejected)
{
  struct cx_exec_result res;
  struct cx_exec_opts opts = {.shell = "sh"};
  ASSERT_EQ(run_cmd(&opts, "true", 0, &res), CX_EPARSE);
  ASSERT_EQ(res.status, CX_EXEC_ERROR);
  ASSERT_CONTAINS(res.error, "node.shell");
  cx_exec_result_free(&res);
}

TEST(node_exec_missing_workdir_is_error)
{
  struct cx_exec *x;
  struct cx_exec_result res;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/no-such-dir", cx_test_tmpdir());
  struct cx_exec_cmd cmd = {.command = "echo ran", .workdir = dir};

  ASSERT_EQ(cx_exec_create(&x), 0);
  ASSERT_EQ(cx_exec_run_cmd(x, NULL, &cmd, NULL, NULL, &res, NULL), -ENOENT);
  ASSERT_EQ(res.status, CX_EXEC_ERROR);
  ASSERT_EQ(res.exit_code, 127);
  ASSERT_CONTAINS(res.error, "workdir");
  ASSERT_CONTAINS(res.error, dir);
  ASSERT_EQ(res.output_len, 0); /* "ran" never printed */
  cx_exec_result_free(&res);
  cx_exec_destroy(x);
}

TEST(node_exec_workdir_used)
{
  struct cx_exec *x;
  struct cx_exec_result res;
  char real[PATH_MAX], want[PATH_MAX + 2];
  ASSERT(realpath(cx_test_tmpdir(), real) != NULL);
  snprintf(want, sizeof want, "%s\n", real);
  struct cx_exec_cmd cmd = {.command = "pwd -P", .workdir = cx_test_tmpdir()};

  ASSERT_EQ(cx_exec_create(&x), 0);
  ASSERT_EQ(cx_exec_run_cmd(x, NULL, &cmd, NULL, NULL, &res, NULL), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_STREQ(res.output, want);
  cx_exec_result_free(&res);
  cx_exec_destroy(x);
}

TEST(node_exec_env_passed_and_overrides)
{
  struct cx_exec *x;
  struct cx_exec_result res;
  const char *base[] = {"PATH=/usr/bin:/bin", "KEEP=kept", "FOO=old", NULL};
  struct cx_exec_kv env[] = {
      {"FOO", "new value"}, {"EMPTY", ""}, {"TWICE", "1"}, {"TWICE", "2"}};
  struct cx_exec_opts opts = {.base_env = base};
  struct cx_exec_cmd cmd = {
      .command = "printf '%s|%s|%s|%s|%s' \"$KEEP\" \"$FOO\" "
                 "\"${EMPTY-unset}\" \"$TWICE\" \"$(env | grep -c '^FOO=')\"",
      .env = env,
      .nenv = CX_ARRAY_LEN(env)};

  ASSERT_EQ(cx_exec_create(&x), 0);
  ASSERT_EQ(cx_exec_run_cmd(x, &opts, &cmd, NULL, NULL, &res, NULL), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_STREQ(res.output, "kept|new value||2|1");
  cx_exec_result_free(&res);
  cx_exec_destroy(x);
}

TEST(node_exec_process_environment_inherited)
{
  struct cx_exec_result res;
  ASSERT_EQ(setenv("CX_EXEC_TEST_INHERITED", "from-node", 1), 0);
  ASSERT_EQ(run_cmd(NULL, "printf %s \"$CX_EXEC_TEST_INHERITED\"", 0, &res), 0);
  ASSERT_STREQ(res.output, "from-node");
  cx_exec_result_free(&res);
}

TEST(node_exec_env_bad_name_rejected)
{
  static const char *bad[] = {"1ABC", "A-B", "A=B", "A B", "\xc3\xa9"};
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    struct cx_exec *x;
    struct cx_exec_result res;
    struct cx_exec_kv env[] = {{bad[i], "v"}};
    struct cx_exec_cmd cmd = {.command = "true", .env = env, .nenv = 1};
    ASSERT_EQ(cx_exec_create(&x), 0);
    ASSERT_EQ(cx_exec_run_cmd(x, NULL, &cmd, NULL, NULL, &res, NULL),
              CX_EPARSE);
    ASSERT_EQ(res.status, CX_EXEC_ERROR);
    ASSERT_CONTAINS(res.error, "env");
    ASSERT_EQ(res.pid, 0);
    cx_exec_result_free(&res);
    cx_exec_destroy(x);
  }
}

TEST(node_exec_bad_command_rejected)
{
  struct cx_exec_result res;
  char *big = cx_malloc(CX_EXEC_COMMAND_MAX + 2);
  ASSERT(big != NULL);
  memset(big, ':', CX_EXEC_COMMAND_MAX + 1);
  big[CX_EXEC_COMMAND_MAX + 1] = '\0';
  ASSERT_EQ(run_cmd(NULL, big, 0, &res), CX_ETOOBIG);
  ASSERT_CONTAINS(res.error, "command");
  cx_exec_result_free(&res);
  ASSERT_EQ(run_cmd(NULL, "", 0, &res), CX_EPARSE);
  ASSERT_CONTAINS(res.error, "command");
  cx_exec_result_free(&res);
  ASSERT_EQ(run_cmd(NULL, "true", -1, &res), CX_EPARSE);
  ASSERT_CONTAINS(res.error, "timeout");
  cx_exec_result_free(&res);
  cx_free(big);
}

TEST(node_exec_stdin_is_dev_null)
{
  struct cx_exec_result res;
  /* cat would hang on a terminal or an inherited pipe; /dev/null is EOF. */
  ASSERT_EQ(run_cmd(NULL, "cat; readlink /proc/$$/fd/0", 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_STREQ(res.output, "/dev/null\n");
  cx_exec_result_free(&res);
}

TEST(node_exec_signals_reset_in_child)
{
  struct cx_exec_result res;
  sigset_t set;
  /* The node ignores SIGPIPE and blocks SIGTERM; the job must not. */
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  ASSERT_EQ(run_cmd(NULL,
                    "grep -E '^(SigIgn|SigBlk):' /proc/$$/status | "
                    "tr -d '\\t'",
                    0, &res),
            0);
  /* Signals 32 and 33 are glibc's own (thread cancellation, setxid):
   * sigaction refuses them, so a test runner that ignores them passes that
   * on to every process, ours included. Every other one must be reset. */
  unsigned long long ign = ~0ULL, blk = ~0ULL;
  const char *p = strstr(res.output, "SigIgn:");
  ASSERT(p != NULL && sscanf(p + 7, "%llx", &ign) == 1);
  p = strstr(res.output, "SigBlk:");
  ASSERT(p != NULL && sscanf(p + 7, "%llx", &blk) == 1);
  ASSERT_EQ(ign & ~0x180000000ULL, 0);
  ASSERT_EQ(blk & ~0x180000000ULL, 0);
  cx_exec_result_free(&res);
}

TEST(node_exec_own_session)
{
  struct cx_exec_result res;
  long sid = 0, pgid = 0;
  ASSERT_EQ(run_cmd(NULL, "ps -o sid= -o pgid= -p $$", 0, &res), 0);
  ASSERT_EQ(sscanf(res.output, "%ld %ld", &sid, &pgid), 2);
  ASSERT_EQ(sid, res.pid);
  ASSERT_EQ(pgid, res.pid);
  ASSERT(res.pid != getpgrp());
  cx_exec_result_free(&res);
}

/* ---- cmd: output capture ------------------------------------------------ */

TEST(node_exec_no_output)
{
  struct cx_exec_result res;
  ASSERT_EQ(run_cmd(NULL, "true", 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT(res.output != NULL);
  ASSERT_EQ(res.output_len, 0);
  ASSERT_EQ(res.output_total, 0);
  ASSERT_STREQ(res.output, "");
  cx_exec_result_free(&res);
  cx_exec_result_free(&res); /* twice is fine */
}

/* Checks the cut marker of a capped output and returns the count it
 * shows; the output is head + marker + tail of exactly limit bytes. */
static uint64_t check_cut(const struct cx_exec_result *res, size_t limit)
{
  const char *m = memmem(res->output, res->output_len, "\n[... ", 6);
  ASSERT(m != NULL);
  ASSERT_EQ(m - res->output, limit / 2);
  char *end;
  unsigned long long cut = strtoull(m + 6, &end, 10);
  ASSERT(strncmp(end, " bytes cut ...]\n", 16) == 0);
  size_t mlen = (size_t)(end + 16 - m);
  ASSERT_EQ(res->output_len, limit);
  /* What is shown plus what is cut is everything. */
  ASSERT_EQ(cut + res->output_len - mlen, res->output_total);
  return cut;
}

TEST(node_exec_10mib_output_head_and_tail)
{
  struct cx_exec_result res;
  ASSERT_EQ(run_cmd(NULL,
                    "printf START; head -c 10485760 /dev/zero | tr '\\0' x; "
                    "printf END",
                    0, &res),
            0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_EQ(res.output_total, 10485760 + 8);
  check_cut(&res, CX_EXEC_OUTPUT_LIMIT_DEFAULT);
  ASSERT(memcmp(res.output, "STARTxxx", 8) == 0);
  ASSERT(memcmp(res.output + res.output_len - 6, "xxxEND", 6) == 0);
  ASSERT_EQ(res.output[res.output_len], '\0');
  cx_exec_result_free(&res);
}

TEST(node_exec_urandom_output_bounded)
{
  struct cx_exec_result res;
  struct cx_exec_opts opts = {.output_limit = 4096};
  ASSERT_EQ(run_cmd(&opts, "head -c 3000000 /dev/urandom", 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_EQ(res.output_total, 3000000);
  check_cut(&res, 4096);
  cx_exec_result_free(&res);
}

TEST(node_exec_binary_output_kept)
{
  struct cx_exec_result res;
  static const char want[] = {0, 1, 'a', (char)0xff, (char)0xc3, '\n', 0};
  ASSERT_EQ(run_cmd(NULL, "printf '\\000\\001a\\377\\303\\n\\000'", 0, &res),
            0);
  ASSERT_EQ(res.output_len, sizeof want);
  ASSERT(memcmp(res.output, want, sizeof want) == 0);
  cx_exec_result_free(&res);
}

TEST(node_exec_output_exactly_at_limit_not_cut)
{
  struct cx_exec_result res;
  struct cx_exec_opts opts = {.output_limit = 1000};
  ASSERT_EQ(run_cmd(&opts, "head -c 1000 /dev/zero | tr '\\0' y", 0, &res), 0);
  ASSERT_EQ(res.output_len, 1000);
  ASSERT(memmem(res.output, res.output_len, "cut", 3) == NULL);
  cx_exec_result_free(&res);
  ASSERT_EQ(run_cmd(&opts, "head -c 1001 /dev/zero | tr '\\0' y", 0, &res), 0);
  /* 1 byte over, plus the 24 bytes of "\n[... 25 bytes cut ...]\n". */
  ASSERT_EQ(check_cut(&res, 1000), 25);
  cx_exec_result_free(&res);
}

/* The capture alone, table-driven: every total from 0 to a few times the
 * limit, fed in uneven chunks, against a plain reference. */
TEST(node_exec_capture_matches_reference)
{
  static const size_t limits[] = {256, 257, 1000};
  static const size_t chunks[] = {1, 7, 100, 333, 5000};
  for (size_t li = 0; li < CX_ARRAY_LEN(limits); li++) {
    size_t limit = limits[li];
    for (size_t total = 0; total < 3 * limit + 50; total += 13) {
      for (size_t ci = 0; ci < CX_ARRAY_LEN(chunks); ci++) {
        char *data = cx_malloc(total + 1);
        struct cx__capture cap;
        struct cx_exec_result res = {0};
        for (size_t i = 0; i < total; i++)
          data[i] = (char)('a' + (i * 7 + i / 26) % 26);
        struct cx_exec_opts o = {.output_limit = limit};
        ASSERT_EQ(cx__capture_init(&cap, &o), 0);
        for (size_t off = 0; off < total;) {
          size_t n = chunks[ci] < total - off ? chunks[ci] : total - off;
          cx__capture_add(&cap, data + off, n);
          off += n;
        }
        cx__capture_finish(&cap, &res);
        ASSERT_EQ(res.output_total, total);
        if (total <= limit) {
          ASSERT_EQ(res.output_len, total);
          ASSERT(memcmp(res.output, data, total) == 0);
        } else {
          uint64_t cut = check_cut(&res, limit);
          size_t tail = total - (size_t)cut - limit / 2;
          ASSERT(memcmp(res.output, data, limit / 2) == 0);
          ASSERT(memcmp(res.output + limit - tail, data + total - tail, tail) ==
                 0);
        }
        cx_exec_result_free(&res);
        cx_free(data);
      }
    }
  }
}

/* ---- cmd: timeouts, leftovers, kills ------------------------------------ */

/* Runs command with a timeout and grace (ms); checks that it took at
 * least min_ms, was recorded as a timeout and left no process behind. */
static void run_timeout(const char *command, int64_t timeout_ms,
                        int64_t grace_ms, int64_t min_ms,
                        struct cx_exec_result *res)
{
  struct cx_exec_opts opts = {.kill_grace_ms = grace_ms};
  int64_t t0 = mono_ms();
  ASSERT_EQ(run_cmd(&opts, command, timeout_ms, res), 0);
  ASSERT_OP(mono_ms() - t0, >=, min_ms);
  ASSERT_EQ(res->status, CX_EXEC_TIMEOUT);
  ASSERT(res->pgid > 0);
  ASSERT_EQ(cx_exec_group_alive(res->pgid), 0);
}

TEST(node_exec_timeout_kills_whole_group)
{
  struct cx_exec_result res;
  run_timeout("sleep 100 & sleep 100; wait", 300, 2000, 300, &res);
  ASSERT_EQ(res.term_signal, SIGTERM);
  cx_exec_result_free(&res);
}

TEST(node_exec_timeout_escalates_to_sigkill)
{
  struct cx_exec_result res;
  /* Ignored signals survive exec: both the shell and sleep ignore TERM.
   * The timeout leaves the shell 1.5 s to run its trap, ample even on a
   * loaded machine (the kill test below syncs on a file instead). */
  run_timeout("trap '' TERM; sleep 100 & sleep 100", 1500, 300, 1800, &res);
  ASSERT_EQ(res.term_signal, SIGKILL);
  cx_exec_result_free(&res);
}

TEST(node_exec_closed_stdout_still_timed_out)
{
  struct cx_exec_result res;
  run_timeout("echo before; exec >&- 2>&-; sleep 100", 300, 1000, 300, &res);
  ASSERT_STREQ(res.output, "before\n");
  cx_exec_result_free(&res);
}

TEST(node_exec_background_pipe_holder_does_not_block)
{
  struct cx_exec_result res;
  /* sleep keeps the output pipe open for 100 s after the shell exits: the
   * result must come right away (the test's timeout would catch a hang),
   * and the leftover must be gone. */
  ASSERT_EQ(run_cmd(NULL, "sleep 100 & echo done", 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_STREQ(res.output, "done\n");
  ASSERT_EQ(res.leftovers, 1);
  ASSERT_EQ(cx_exec_group_alive(res.pgid), 0);
  cx_exec_result_free(&res);
}

TEST(node_exec_orphans_reaped_when_subreaper)
{
  struct cx_exec_result res;
  siginfo_t si;
  /* As pid 1 in a container would: the group's orphans come to us. */
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  ASSERT_EQ(run_cmd(NULL, "sleep 100 & sleep 100 & echo done", 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_EQ(res.leftovers, 1);
  /* No child of ours is left in the group, not even a zombie. */
  memset(&si, 0, sizeof si);
  ASSERT_EQ(waitid(P_PGID, (id_t)res.pgid, &si, WEXITED | WNOHANG), -1);
  ASSERT_EQ(errno, ECHILD);
  ASSERT_EQ(kill(-res.pgid, 0), -1);
  cx_exec_result_free(&res);
}

TEST(node_exec_sigchld_ignored_does_not_hang)
{
  struct cx_exec_result res;
  /* With SIGCHLD ignored the kernel reaps the shell itself: the attempt
   * must still end, as failed with the reason, not spin or hang. */
  signal(SIGCHLD, SIG_IGN);
  ASSERT_EQ(run_cmd(NULL, "echo out", 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_FAILED);
  ASSERT_STREQ(res.output, "out\n");
  ASSERT_CONTAINS(res.error, "SIGCHLD");
  cx_exec_result_free(&res);
}

TEST(node_exec_setsid_child_escapes_cleanup)
{
  struct cx_exec_result res;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/daemon.pid", cx_test_tmpdir());
  char cmd[2 * PATH_MAX + 128];
  /* The documented way for a job to leave a process behind. */
  snprintf(cmd, sizeof cmd,
           "setsid sh -c 'echo $$ > %s; exec sleep 100' >/dev/null 2>&1 & "
           "while [ ! -s %s ]; do sleep 0.01; done",
           path, path);
  ASSERT_EQ(run_cmd(NULL, cmd, 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  FILE *f = fopen(path, "r");
  ASSERT(f != NULL);
  long pid = 0;
  ASSERT_EQ(fscanf(f, "%ld", &pid), 1);
  fclose(f);
  ASSERT(pid > 1);
  ASSERT_EQ(cx_exec_group_alive((pid_t)pid), 1);
  kill((pid_t)pid, SIGKILL);
  cx_exec_result_free(&res);
}

struct killer_arg {
  struct cx_exec *x;
  struct cx_exec_cmd cmd;
  struct cx_exec_opts opts;
  struct spawned sp;
  struct cx_exec_result res;
  int rc;
};

static void *run_thread(void *p)
{
  struct killer_arg *a = p;
  a->rc =
      cx_exec_run_cmd(a->x, &a->opts, &a->cmd, on_spawn, &a->sp, &a->res, NULL);
  return NULL;
}

/* Lists the open fds of pid as "0 1 2 ..." into out. */
static void list_fds(pid_t pid, char *out, size_t cap)
{
  char path[64];
  int fds[64], n = 0;
  snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
  DIR *d = opendir(path);
  ASSERT(d != NULL);
  for (struct dirent *de; (de = readdir(d)) != NULL;)
    if (de->d_name[0] != '.' && n < 64)
      fds[n++] = (int)strtol(de->d_name, NULL, 10);
  closedir(d);
  for (int i = 1; i < n; i++) /* insertion sort */
    for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
      int t = fds[j];
      fds[j] = fds[j - 1];
      fds[j - 1] = t;
    }
  out[0] = '\0';
  for (int i = 0; i < n; i++)
    snprintf(out + strlen(out), cap - strlen(out), "%s%d", i ? " " : "",
             fds[i]);
}

/* 1 once pid runs the program named comm. */
static int runs(pid_t pid, const char *comm)
{
  char path[64], buf[64] = "";
  snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  if (fgets(buf, sizeof buf, f) == NULL)
    buf[0] = '\0';
  fclose(f);
  buf[strcspn(buf, "\n")] = '\0';
  return strcmp(buf, comm) == 0;
}

TEST_TIMEOUT(node_exec_only_stdio_fds_inherited, 40)
{
  struct killer_arg a = {0};
  pthread_t t;
  char fds[256];
  /* An fd the node opened without O_CLOEXEC must not reach the job. */
  int leak = dup(2);
  ASSERT(leak > 2);
  a.cmd.command = "exec sleep 100";
  ASSERT_EQ(cx_exec_create(&a.x), 0);
  ASSERT_EQ(pthread_create(&t, NULL, run_thread, &a), 0);
  while (atomic_load(&a.sp.calls) == 0 ||
         !runs((pid_t)atomic_load(&a.sp.pid), "sleep"))
    cx_sleep_us(1000);
  /* The exec closes close-on-exec fds just after the name changes, and
   * sleep's start-up may open a locale file for a moment: wait (up to
   * 10 s) for the steady state. A leaked fd would stay for good. */
  for (int i = 0; i < 1000; i++) {
    list_fds((pid_t)atomic_load(&a.sp.pid), fds, sizeof fds);
    if (strcmp(fds, "0 1 2") == 0)
      break;
    cx_sleep_us(10000);
  }
  cx_exec_kill(a.x);
  ASSERT_EQ(pthread_join(t, NULL), 0);
  ASSERT_STREQ(fds, "0 1 2");
  ASSERT_EQ(a.res.status, CX_EXEC_KILLED);
  ASSERT_EQ(a.res.term_signal, SIGTERM);
  cx_exec_result_free(&a.res);
  cx_exec_destroy(a.x);
  close(leak);
}

TEST(node_exec_kill_from_other_thread)
{
  struct killer_arg a = {0};
  pthread_t t;
  char ready[PATH_MAX], cmd[PATH_MAX + 64];
  snprintf(ready, sizeof ready, "%s/ready", cx_test_tmpdir());
  /* The file says the trap is set (on_spawn comes before the shell has
   * run anything). */
  snprintf(cmd, sizeof cmd, "trap '' TERM; : > %s; sleep 100", ready);
  a.cmd.command = cmd;
  a.opts.kill_grace_ms = 300;
  ASSERT_EQ(cx_exec_create(&a.x), 0);
  ASSERT_EQ(pthread_create(&t, NULL, run_thread, &a), 0);
  while (atomic_load(&a.sp.calls) == 0 || access(ready, F_OK) != 0)
    cx_sleep_us(1000);
  int64_t t0 = mono_ms();
  cx_exec_kill(a.x);
  ASSERT_EQ(pthread_join(t, NULL), 0);
  ASSERT_OP(mono_ms() - t0, >=, 300); /* TERM ignored: waited the grace */
  ASSERT_EQ(a.rc, 0);
  ASSERT_EQ(a.res.status, CX_EXEC_KILLED);
  ASSERT_EQ(a.res.term_signal, SIGKILL);
  ASSERT(cx_exec_killed(a.x));
  ASSERT_EQ(cx_exec_group_alive(a.res.pgid), 0);
  cx_exec_result_free(&a.res);
  cx_exec_destroy(a.x);
}

TEST(node_exec_kill_before_run_is_sticky)
{
  struct cx_exec *x;
  struct cx_exec_result res;
  struct spawned sp = {0};
  struct cx_exec_cmd cmd = {.command = "echo should-not-run"};
  ASSERT_EQ(cx_exec_create(&x), 0);
  ASSERT(!cx_exec_killed(x));
  cx_exec_kill(x);
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(cx_exec_run_cmd(x, NULL, &cmd, on_spawn, &sp, &res, NULL), 0);
    ASSERT_EQ(res.status, CX_EXEC_KILLED);
    ASSERT_EQ(res.pid, 0);
    ASSERT_EQ(res.output_len, 0);
    cx_exec_result_free(&res);
  }
  ASSERT_EQ(atomic_load(&sp.calls), 0);
  cx_exec_destroy(x);
}

TEST(node_exec_handle_reused_for_retries)
{
  struct cx_exec *x;
  struct cx_exec_result res;
  struct cx_exec_cmd cmd = {.command = "echo again"};
  ASSERT_EQ(cx_exec_create(&x), 0);
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(cx_exec_run_cmd(x, NULL, &cmd, NULL, NULL, &res, NULL), 0);
    ASSERT_STREQ(res.output, "again\n");
    cx_exec_result_free(&res);
  }
  cx_exec_destroy(x);
}

#define NCONC 16

TEST(node_exec_16_concurrent_attempts)
{
  struct killer_arg a[NCONC];
  pthread_t t[NCONC];
  char cmds[NCONC][64];
  memset(a, 0, sizeof a);
  for (int i = 0; i < NCONC; i++) {
    snprintf(cmds[i], sizeof cmds[i], "printf 'job %d'; sleep 0.3; exit %d", i,
             i);
    a[i].cmd.command = cmds[i];
    ASSERT_EQ(cx_exec_create(&a[i].x), 0);
  }
  for (int i = 0; i < NCONC; i++)
    ASSERT_EQ(pthread_create(&t[i], NULL, run_thread, &a[i]), 0);
  for (int i = 0; i < NCONC; i++)
    ASSERT_EQ(pthread_join(t[i], NULL), 0);
  for (int i = 0; i < NCONC; i++) {
    char want[32];
    snprintf(want, sizeof want, "job %d", i);
    ASSERT_EQ(a[i].rc, 0);
    ASSERT_EQ(a[i].res.status, i == 0 ? CX_EXEC_SUCCESS : CX_EXEC_FAILED);
    ASSERT_EQ(a[i].res.exit_code, i);
    ASSERT_STREQ(a[i].res.output, want);
    ASSERT_EQ(atomic_load(&a[i].sp.pid), a[i].res.pid);
    for (int j = 0; j < i; j++)
      ASSERT(a[i].res.pid != a[j].res.pid);
    cx_exec_result_free(&a[i].res);
    cx_exec_destroy(a[i].x);
  }
}

TEST(node_exec_without_pidfd_same_outcomes)
{
  struct cx_exec_result res;
  atomic_store(&cx__exec_no_pidfd, 1);
  ASSERT_EQ(run_cmd(NULL, "echo hi; exit 4", 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_FAILED);
  ASSERT_EQ(res.exit_code, 4);
  ASSERT_STREQ(res.output, "hi\n");
  cx_exec_result_free(&res);
  run_timeout("sleep 100 & sleep 100; wait", 300, 2000, 300, &res);
  cx_exec_result_free(&res);
  ASSERT_EQ(run_cmd(NULL, "sleep 100 & echo done", 0, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_EQ(res.leftovers, 1);
  ASSERT_EQ(cx_exec_group_alive(res.pgid), 0);
  cx_exec_result_free(&res);
}

/* Fails each allocation of an attempt in turn: every run either works
 * (status ok, and then the walk ends) or is an ERROR -ENOMEM, with nothing
 * leaked (ASan checks at exit) and no process left behind. */
static void alloc_walk(int (*run)(struct cx_exec *, struct cx_exec_result *),
                       enum cx_exec_status ok)
{
  int worked = 0;
  for (long n = 1; n < 20 && !worked; n++) {
    struct cx_exec *x;
    struct cx_exec_result res;
    ASSERT_EQ(cx_exec_create(&x), 0);
    cx_alloc_fail_after(n);
    int rc = run(x, &res);
    cx_alloc_fail_after(0);
    if (rc == 0) {
      ASSERT_EQ(res.status, ok);
      worked = 1;
    } else {
      ASSERT_EQ(rc, -ENOMEM);
      ASSERT_EQ(res.status, CX_EXEC_ERROR);
      ASSERT_EQ(res.pid, 0);
    }
    cx_exec_result_free(&res);
    cx_exec_destroy(x);
  }
  ASSERT(worked);
}

static int alloc_cmd(struct cx_exec *x, struct cx_exec_result *res)
{
  struct cx_exec_kv env[] = {{"A", "1"}};
  struct cx_exec_cmd cmd = {.command = "echo $A", .env = env, .nenv = 1};
  return cx_exec_run_cmd(x, NULL, &cmd, NULL, NULL, res, NULL);
}

static int alloc_http(struct cx_exec *x, struct cx_exec_result *res)
{
  struct cx_exec_kv hdrs[] = {{"X-A", "1"}, {"X-B", ""}};
  struct cx_exec_http req = {.url = "http://127.0.0.1:1/", /* refused */
                             .headers = hdrs,
                             .nheaders = 2,
                             .timeout_ms = 2000};
  return cx_exec_run_http(x, NULL, &req, res, NULL);
}

TEST(node_exec_allocation_failures_cmd)
{
  alloc_walk(alloc_cmd, CX_EXEC_SUCCESS);
}

TEST(node_exec_allocation_failures_http)
{
  alloc_walk(alloc_http, CX_EXEC_ERROR);
}

TEST(node_exec_group_alive_reports_live_group)
{
  ASSERT_EQ(cx_exec_group_alive(getpgrp()), 1);
  ASSERT_EQ(cx_exec_group_alive(1), -EINVAL);
  ASSERT_EQ(cx_exec_group_alive(0), -EINVAL);
}

/* ---- http: a real server ------------------------------------------------ */

struct conn {
  struct cx_buf body;
};

struct server {
  struct MHD_Daemon *d;
  int port;
  atomic_int slow_started;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code,
                             const char *body, size_t len)
{
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result ret = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result reply_s(struct MHD_Connection *c, unsigned code,
                               const char *body)
{
  return reply(c, code, body, strlen(body));
}

/* /check verifies what an http job sends: method, headers and body. */
static enum MHD_Result check_request(struct MHD_Connection *c,
                                     const char *method, struct conn *cn)
{
  const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Token");
  const char *empty =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Empty");
  const char *ct =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  const char *want_body = "{\"a\":1,\"b\":\"\\u00e9\"}";
  if (strcmp(method, "PUT") != 0)
    return reply_s(c, 400, "method");
  if (tok == NULL || strcmp(tok, "abc def") != 0)
    return reply_s(c, 400, "x-token");
  if (empty == NULL || strcmp(empty, "") != 0)
    return reply_s(c, 400, "x-empty");
  if (ct == NULL || strcmp(ct, "application/json") != 0)
    return reply_s(c, 400, "content-type");
  if (cn->body.len != strlen(want_body) ||
      memcmp(cn->body.data, want_body, cn->body.len) != 0)
    return reply_s(c, 400, "body");
  return reply_s(c, 200, "checked");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
  struct server *s = cls;
  struct conn *cn = *con_cls;
  (void)version;
  if (cn == NULL) {
    cn = cx_calloc(1, sizeof *cn);
    *con_cls = cn;
    return cn ? MHD_YES : MHD_NO;
  }
  if (*upload_size > 0) {
    cx_buf_append(&cn->body, upload, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(url, "/ok") == 0)
    return reply_s(c, 200, "hello");
  if (strcmp(url, "/fail") == 0)
    return reply_s(c, 500, "boom");
  if (strcmp(url, "/slow") == 0) {
    atomic_store(&s->slow_started, 1);
    cx_sleep_us(2000000);
    return reply_s(c, 200, "late");
  }
  if (strcmp(url, "/check") == 0)
    return check_request(c, method, cn);
  if (strcmp(url, "/big") == 0) {
    size_t n = 1 << 20;
    char *b = cx_malloc(n);
    memset(b, 'z', n);
    memcpy(b, "HEAD", 4);
    memcpy(b + n - 4, "TAIL", 4);
    enum MHD_Result r = reply(c, 200, b, n);
    cx_free(b);
    return r;
  }
  if (strcmp(url, "/redirect") == 0) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Location", "/ok");
    enum MHD_Result ret = MHD_queue_response(c, 302, r);
    MHD_destroy_response(r);
    return ret;
  }
  return reply_s(c, 404, "no such path");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode code)
{
  struct conn *cn = *con_cls;
  (void)cls;
  (void)c;
  (void)code;
  if (cn != NULL) {
    cx_buf_free(&cn->body);
    cx_free(cn);
  }
  *con_cls = NULL;
}

static void server_start(struct server *s)
{
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  memset(s, 0, sizeof *s);
  s->d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
      NULL, handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
  ASSERT(s->d != NULL);
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  ASSERT(info != NULL && info->port > 0);
  s->port = info->port;
}

static void server_stop(struct server *s)
{
  MHD_stop_daemon(s->d);
}

static int run_http(const struct cx_exec_opts *opts, struct cx_exec_http *req,
                    struct cx_exec_result *res, char *err)
{
  struct cx_exec *x;
  ASSERT_EQ(cx_exec_create(&x), 0);
  int rc = cx_exec_run_http(x, opts, req, res, err);
  cx_exec_destroy(x);
  return rc;
}

static void url_of(char *out, size_t cap, int port, const char *path)
{
  snprintf(out, cap, "http://127.0.0.1:%d%s", port, path);
}

TEST(node_exec_http_200_success)
{
  struct server s;
  struct cx_exec_result res;
  char url[128];
  server_start(&s);
  url_of(url, sizeof url, s.port, "/ok");
  struct cx_exec_http req = {.url = url};
  ASSERT_EQ(run_http(NULL, &req, &res, NULL), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_EQ(res.exit_code, 200);
  ASSERT_STREQ(res.output, "hello");
  ASSERT_EQ(res.pid, 0);
  cx_exec_result_free(&res);
  server_stop(&s);
}

TEST(node_exec_http_500_failed)
{
  struct server s;
  struct cx_exec_result res;
  char url[128];
  server_start(&s);
  url_of(url, sizeof url, s.port, "/fail");
  struct cx_exec_http req = {.url = url, .method = "POST"};
  ASSERT_EQ(run_http(NULL, &req, &res, NULL), 0);
  ASSERT_EQ(res.status, CX_EXEC_FAILED);
  ASSERT_EQ(res.exit_code, 500);
  ASSERT_STREQ(res.output, "boom");
  cx_exec_result_free(&res);
  server_stop(&s);
}

TEST(node_exec_http_headers_and_body_sent)
{
  struct server s;
  struct cx_exec_result res;
  char url[128];
  const char *body = "{\"a\":1,\"b\":\"\\u00e9\"}";
  struct cx_exec_kv hdrs[] = {{"X-Token", "abc def"},
                              {"X-Empty", ""},
                              {"Content-Type", "application/json"}};
  server_start(&s);
  url_of(url, sizeof url, s.port, "/check");
  struct cx_exec_http req = {.url = url,
                             .method = "PUT",
                             .headers = hdrs,
                             .nheaders = CX_ARRAY_LEN(hdrs),
                             .body = body,
                             .body_len = strlen(body)};
  ASSERT_EQ(run_http(NULL, &req, &res, NULL), 0);
  ASSERT_STREQ(res.output, "checked");
  ASSERT_EQ(res.exit_code, 200);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  cx_exec_result_free(&res);
  server_stop(&s);
}

TEST(node_exec_http_slow_times_out)
{
  struct server s;
  struct cx_exec_result res;
  char url[128];
  server_start(&s);
  url_of(url, sizeof url, s.port, "/slow");
  struct cx_exec_http req = {.url = url, .timeout_ms = 300};
  int64_t t0 = mono_ms();
  ASSERT_EQ(run_http(NULL, &req, &res, NULL), 0);
  ASSERT_OP(mono_ms() - t0, >=, 300);
  ASSERT_EQ(res.status, CX_EXEC_TIMEOUT);
  ASSERT_EQ(res.exit_code, 0);
  ASSERT(res.error[0] != '\0');
  cx_exec_result_free(&res);
  server_stop(&s);
}

/* A socket bound to a free loopback port, listening when asked; the
 * port's URL "/" goes to url. Returns the fd. */
static int loopback_socket(int do_listen, char *url, size_t cap)
{
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT(fd >= 0);
  ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  if (do_listen)
    ASSERT_EQ(listen(fd, 8), 0);
  ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  url_of(url, cap, ntohs(sa.sin_port), "/");
  return fd;
}

TEST(node_exec_http_never_answering_times_out)
{
  struct cx_exec_result res;
  char url[128];
  /* Listens (the kernel completes the handshake) but never accepts. */
  int fd = loopback_socket(1, url, sizeof url);
  struct cx_exec_http req = {.url = url, .timeout_ms = 300};
  ASSERT_EQ(run_http(NULL, &req, &res, NULL), 0);
  ASSERT_EQ(res.status, CX_EXEC_TIMEOUT);
  ASSERT_EQ(res.exit_code, 0);
  cx_exec_result_free(&res);
  close(fd);
}

/* No status ever arrived: ERROR (tried, rc 0), exit_code -1, and the
 * reason -- libcurl's words, the system error and the curl code -- in
 * res.error, so the run log can say why. */
TEST(node_exec_http_connection_refused_is_error_with_reason)
{
  struct cx_exec_result res;
  char url[128];
  /* A port that was just free: bound, then closed without listening. */
  int fd = loopback_socket(0, url, sizeof url);
  struct cx_exec_http req = {.url = url, .timeout_ms = 5000};
  ASSERT_EQ(run_http(NULL, &req, &res, NULL), 0);
  close(fd);
  ASSERT_EQ(res.status, CX_EXEC_ERROR);
  ASSERT_EQ(res.exit_code, -1);
  ASSERT_CONTAINS(res.error, "Connection refused");
  ASSERT_CONTAINS(res.error, "(curl 7)");
  cx_exec_result_free(&res);
}

/* Accepts one connection, reads the request, and resets it (SO_LINGER 0)
 * before any byte of a response. */
static void *reset_one(void *arg)
{
  int lfd = *(int *)arg, c = accept(lfd, NULL, NULL);
  if (c < 0)
    return NULL;
  char buf[4096];
  ssize_t got = read(c, buf, sizeof buf);
  (void)got;
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(c);
  return NULL;
}

TEST(node_exec_http_reset_before_status_is_error_with_reason)
{
  struct cx_exec_result res;
  char url[128];
  pthread_t t;
  int fd = loopback_socket(1, url, sizeof url);
  ASSERT_EQ(pthread_create(&t, NULL, reset_one, &fd), 0);
  struct cx_exec_http req = {.url = url, .timeout_ms = 5000};
  ASSERT_EQ(run_http(NULL, &req, &res, NULL), 0);
  pthread_join(t, NULL);
  close(fd);
  ASSERT_EQ(res.status, CX_EXEC_ERROR);
  ASSERT_EQ(res.exit_code, -1);
  ASSERT_CONTAINS(res.error, "reset");
  ASSERT_CONTAINS(res.error, "(curl 56)");
  cx_exec_result_free(&res);
}

TEST(node_exec_http_body_capped)
{
  struct server s;
  struct cx_exec_result res;
  struct cx_exec_opts opts = {.output_limit = 1024};
  char url[128];
  server_start(&s);
  url_of(url, sizeof url, s.port, "/big");
  struct cx_exec_http req = {.url = url};
  ASSERT_EQ(run_http(&opts, &req, &res, NULL), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_EQ(res.output_total, 1 << 20);
  check_cut(&res, 1024);
  ASSERT(memcmp(res.output, "HEADzz", 6) == 0);
  ASSERT(memcmp(res.output + 1024 - 6, "zzTAIL", 6) == 0);
  cx_exec_result_free(&res);
  server_stop(&s);
}

TEST(node_exec_http_redirects_off_by_default)
{
  struct server s;
  struct cx_exec_result res;
  struct cx_exec_opts follow = {.http_max_redirects = 2};
  char url[128];
  server_start(&s);
  url_of(url, sizeof url, s.port, "/redirect");
  struct cx_exec_http req = {.url = url};
  ASSERT_EQ(run_http(NULL, &req, &res, NULL), 0);
  ASSERT_EQ(res.status, CX_EXEC_FAILED);
  ASSERT_EQ(res.exit_code, 302);
  cx_exec_result_free(&res);
  ASSERT_EQ(run_http(&follow, &req, &res, NULL), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_STREQ(res.output, "hello");
  cx_exec_result_free(&res);
  server_stop(&s);
}

struct http_arg {
  struct cx_exec *x;
  struct cx_exec_http req;
  struct cx_exec_result res;
  int rc;
};

static void *http_thread(void *p)
{
  struct http_arg *a = p;
  a->rc = cx_exec_run_http(a->x, NULL, &a->req, &a->res, NULL);
  return NULL;
}

TEST(node_exec_http_kill_aborts_transfer)
{
  struct server s;
  struct http_arg a = {0};
  pthread_t t;
  char url[128];
  server_start(&s);
  url_of(url, sizeof url, s.port, "/slow");
  a.req.url = url;
  ASSERT_EQ(cx_exec_create(&a.x), 0);
  ASSERT_EQ(pthread_create(&t, NULL, http_thread, &a), 0);
  while (!atomic_load(&s.slow_started))
    cx_sleep_us(1000);
  cx_exec_kill(a.x);
  ASSERT_EQ(pthread_join(t, NULL), 0);
  ASSERT_EQ(a.rc, 0);
  ASSERT_EQ(a.res.status, CX_EXEC_KILLED);
  ASSERT_EQ(a.res.exit_code, 0); /* aborted before the 200 came */
  cx_exec_result_free(&a.res);
  cx_exec_destroy(a.x);
  server_stop(&s);
}

TEST(node_exec_http_bad_input_rejected)
{
  static const struct {
    const char *url, *method, *hname, *hvalue, *field;
    int rc;
  } cases[] = {
      {"ftp://127.0.0.1/x", NULL, NULL, NULL, "url", CX_EPARSE},
      {"file:///etc/passwd", NULL, NULL, NULL, "url", CX_EPARSE},
      {"http://127.0.0.1/a b", NULL, NULL, NULL, "url", CX_EPARSE},
      {"http://127.0.0.1/\r\nX: y", NULL, NULL, NULL, "url", CX_EPARSE},
      {"http://127.0.0.1/", "FETCH", NULL, NULL, "http_method", CX_EPARSE},
      {"http://127.0.0.1/", "get", NULL, NULL, "http_method", CX_EPARSE},
      {"http://127.0.0.1/", NULL, "X-A", "v\r\nX-Evil: 1", "http_headers",
       CX_EPARSE},
      {"http://127.0.0.1/", NULL, "X-A", "v\nw", "http_headers", CX_EPARSE},
      {"http://127.0.0.1/", NULL, "X A", "v", "http_headers", CX_EPARSE},
      {"http://127.0.0.1/", NULL, "X:A", "v", "http_headers", CX_EPARSE},
      {"http://127.0.0.1/", NULL, "", "v", "http_headers", CX_EPARSE},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(cases); i++) {
    struct cx_exec_result res;
    struct cx_exec_kv h = {cases[i].hname, cases[i].hvalue};
    struct cx_exec_http req = {.url = cases[i].url,
                               .method = cases[i].method,
                               .headers = cases[i].hname ? &h : NULL,
                               .nheaders = cases[i].hname ? 1 : 0};
    char err[CX_ERR_LEN] = "";
    ASSERT_EQ(run_http(NULL, &req, &res, err), cases[i].rc);
    ASSERT_EQ(res.status, CX_EXEC_ERROR);
    ASSERT_CONTAINS(res.error, cases[i].field);
    ASSERT_STREQ(err, res.error);
    cx_exec_result_free(&res);
  }
}

TEST(node_exec_status_names)
{
  ASSERT_STREQ(cx_exec_status_name(CX_EXEC_SUCCESS), "success");
  ASSERT_STREQ(cx_exec_status_name(CX_EXEC_FAILED), "failed");
  ASSERT_STREQ(cx_exec_status_name(CX_EXEC_TIMEOUT), "timeout");
  ASSERT_STREQ(cx_exec_status_name(CX_EXEC_KILLED), "killed");
  ASSERT_STREQ(cx_exec_status_name(CX_EXEC_ERROR), "error");
}

/* ---- cmd: who a job runs as, what it may use, what it leaves ------------ */

static void need_root(void)
{
  if (geteuid() != 0)
    cx_test_skip("needs root (to switch users and make cgroups)");
}

static int run_as_nobody(const char *command, struct cx_exec_result *res)
{
  struct cx_exec *x;
  struct cx_exec_cmd cmd = {.command = command,
                            .workdir = "/",
                            .set_user = 1,
                            .uid = 65534,
                            .gid = 65534};
  ASSERT_EQ(cx_exec_create(&x), 0);
  int rc = cx_exec_run_cmd(x, NULL, &cmd, NULL, NULL, res, NULL);
  cx_exec_destroy(x);
  return rc;
}

TEST(node_exec_runs_as_user_without_groups_or_new_privs)
{
  struct cx_exec_result res;
  need_root();
  ASSERT_EQ(run_as_nobody("id -u; id -g; id -G; "
                          "grep NoNewPrivs /proc/self/status",
                          &res),
            0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_STREQ(res.output, "65534\n65534\n65534\nNoNewPrivs:\t1\n");
  cx_exec_result_free(&res);
}

TEST(node_exec_job_cannot_read_the_daemons_environment)
{
  struct cx_exec_result res;
  char cmd[128];
  need_root();
  /* What CRONIX_* settings would put there: readable by the same uid. */
  ASSERT_EQ(setenv("CX_TEST_SECRET", "hunter2-secret", 1), 0);
  snprintf(cmd, sizeof cmd, "cat /proc/%ld/environ", (long)getpid());
  ASSERT_EQ(run_as_nobody(cmd, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_FAILED);
  ASSERT_CONTAINS(res.output, "Permission denied");
  ASSERT(strstr(res.output, "hunter2") == NULL);
  cx_exec_result_free(&res);
  /* and a root-only file stays unread, the file unchanged */
  char path[64], cat[256];
  snprintf(path, sizeof path, "/tmp/cx-secret-%ld", (long)getpid());
  FILE *f = fopen(path, "w");
  ASSERT(f != NULL);
  fputs("admin-token\n", f);
  fclose(f);
  ASSERT_EQ(chmod(path, 0600), 0);
  snprintf(cat, sizeof cat, "cat %s; echo x > %s", path, path);
  ASSERT_EQ(run_as_nobody(cat, &res), 0);
  ASSERT_EQ(res.status, CX_EXEC_FAILED);
  ASSERT(strstr(res.output, "admin-token") == NULL);
  f = fopen(path, "r");
  char line[64] = "";
  ASSERT(f != NULL && fgets(line, sizeof line, f) != NULL);
  fclose(f);
  unlink(path);
  ASSERT_STREQ(line, "admin-token\n");
  cx_exec_result_free(&res);
}

TEST(node_exec_unknown_user_switch_fails_as_error)
{
  struct cx_exec *x;
  struct cx_exec_result res;
  if (geteuid() == 0)
    cx_test_skip("needs a non-root user (setuid must fail)");
  struct cx_exec_cmd cmd = {
      .command = "echo ran", .set_user = 1, .uid = 0, .gid = 0};
  ASSERT_EQ(cx_exec_create(&x), 0);
  ASSERT(cx_exec_run_cmd(x, NULL, &cmd, NULL, NULL, &res, NULL) < 0);
  ASSERT_EQ(res.status, CX_EXEC_ERROR);
  ASSERT_CONTAINS(res.error, "run as uid 0");
  cx_exec_result_free(&res);
  cx_exec_destroy(x);
}

TEST(node_exec_limits_applied)
{
  struct cx_exec *x;
  struct cx_exec_result res;
  struct cx_exec_cmd cmd = {
      .command = "ulimit -n; ulimit -v; ulimit -t; ulimit -p",
      .limits = {.memory_mb = 512, .nproc = 77, .cpu_s = 9, .nofile = 64}};
  ASSERT_EQ(cx_exec_create(&x), 0);
  ASSERT_EQ(cx_exec_run_cmd(x, NULL, &cmd, NULL, NULL, &res, NULL), 0);
  ASSERT_EQ(res.status, CX_EXEC_SUCCESS);
  ASSERT_STREQ(res.output, "64\n524288\n9\n77\n");
  cx_exec_result_free(&res);
  /* a CPU hog is stopped by its CPU seconds */
  struct cx_exec_cmd hog = {.command = "while :; do :; done",
                            .limits = {.cpu_s = 1}};
  ASSERT_EQ(cx_exec_run_cmd(x, NULL, &hog, NULL, NULL, &res, NULL), 0);
  ASSERT_EQ(res.status, CX_EXEC_FAILED);
  ASSERT(res.term_signal == SIGXCPU || res.term_signal == SIGKILL);
  cx_exec_result_free(&res);
  struct cx_exec_cmd bad = {.command = "true", .limits = {.nofile = -1}};
  ASSERT(cx_exec_run_cmd(x, NULL, &bad, NULL, NULL, &res, NULL) < 0);
  ASSERT_CONTAINS(res.error, "limits");
  cx_exec_result_free(&res);
  cx_exec_destroy(x);
}

/* A test cgroup under this process's own (v2, or v1 "pids"). */
static void test_cgroup(int v1, char *dir, size_t cap)
{
  char own[PATH_MAX - 64];
  need_root();
  if (cx_exec_cgroup_find(v1, "pids", own, sizeof own) != 0)
    cx_test_skip(v1 ? "no cgroup v1 pids hierarchy" : "no cgroup2 tree");
  snprintf(dir, cap, "%s/cx-test-%ld-%d", own, (long)getpid(), v1);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    cx_test_skip("cgroup tree not writable");
}

/* A job that leaves two escapees: one in its own session, one double
 * forked (re-parented away from the shell), both tagged with marker, then
 * waits; it is ended by a 1 s timeout or a kill. */
static void escape_case(int v1, int by_kill)
{
  struct killer_arg a = {0};
  char dir[PATH_MAX], marker[64], cmd[1024];
  pthread_t t;
  test_cgroup(v1, dir, sizeof dir);
  snprintf(marker, sizeof marker, "cxmark%ld%d%d", (long)getpid(), v1, by_kill);
  snprintf(cmd, sizeof cmd,
           "setsid sh -c 'sleep 300; : %s' >/dev/null 2>&1 & "
           "(sh -c 'sleep 300; : %s' >/dev/null 2>&1 &) ; sleep 300",
           marker, marker);
  a.cmd.command = cmd;
  a.cmd.timeout_ms = by_kill ? 0 : 1000;
  a.opts.kill_grace_ms = 300;
  a.opts.cgroup_dir = dir;
  ASSERT_EQ(cx_exec_create(&a.x), 0);
  ASSERT_EQ(pthread_create(&t, NULL, run_thread, &a), 0);
  if (by_kill) {
    while (cx_test_marked_procs(marker) < 2)
      cx_sleep_us(10000);
    cx_exec_kill(a.x);
  }
  ASSERT_EQ(pthread_join(t, NULL), 0);
  ASSERT_EQ(a.rc, 0);
  ASSERT_EQ(a.res.status, by_kill ? CX_EXEC_KILLED : CX_EXEC_TIMEOUT);
  int left = cx_test_marked_procs(marker);
  /* cleanup for a failing run, so no sleep 300 stays behind the test */
  if (left)
    cx_test_marked_kill(marker);
  ASSERT_EQ(left, 0);
  /* the run's cgroup is gone, the test's one is empty */
  char procs[PATH_MAX + 32];
  snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
  FILE *f = fopen(procs, "r");
  ASSERT(f != NULL);
  ASSERT_EQ(fgetc(f), EOF);
  fclose(f);
  ASSERT_EQ(rmdir(dir), 0); /* fails if a run-* child is left */
  cx_exec_result_free(&a.res);
  cx_exec_destroy(a.x);
}

TEST(node_exec_cgroup2_timeout_kills_escaped_children)
{
  escape_case(0, 0);
}

TEST(node_exec_cgroup2_kill_kills_escaped_children)
{
  escape_case(0, 1);
}

TEST(node_exec_cgroup1_timeout_kills_escaped_children)
{
  escape_case(1, 0);
}

TEST(node_exec_cgroup1_kill_kills_escaped_children)
{
  escape_case(1, 1);
}
