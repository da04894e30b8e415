/*
 * The test runner: main() of every suite binary. See test.h.
 */
#include "support/test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 2048
#define EXIT_SKIP 77

struct test {
  const char *name;
  void (*fn)(void);
  int timeout_s;
};

static struct test tests[MAX_TESTS];
static int ntests;
static char tmpdir[PATH_MAX];
static char bindir[PATH_MAX];

void cx_test_register(const char *name, void (*fn)(void), int timeout_s)
{
  if (ntests == MAX_TESTS) {
    fprintf(stderr, "too many tests (max %d)\n", MAX_TESTS);
    abort();
  }
  tests[ntests].name = name;
  tests[ntests].fn = fn;
  tests[ntests].timeout_s = timeout_s;
  ntests++;
}

void cx_test_fail(const char *file, int line, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "%s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(NULL);
  _exit(1);
}

void cx_test_skip(const char *why)
{
  fprintf(stderr, "skipped: %s\n", why);
  fflush(NULL);
  _exit(EXIT_SKIP);
}

const char *cx_test_tmpdir(void)
{
  return tmpdir;
}

const char *cx_test_bindir(void)
{
  return bindir;
}

const char *cx_test_spec_days_ahead(int days, char *buf, size_t cap)
{
  time_t t = time(NULL) + (time_t)days * 86400;
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(buf, cap, "0 0 0 %d %d * %d", tm.tm_mday, tm.tm_mon + 1,
           tm.tm_year + 1900);
  return buf;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void print_file_tail(const char *path, long max_bytes)
{
  FILE *f = fopen(path, "r");
  char buf[4096];
  size_t n;
  if (f == NULL)
    return;
  if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > max_bytes) {
    fseek(f, -max_bytes, SEEK_END);
    printf("    [... output cut: last %ld bytes follow]\n", max_bytes);
  } else {
    fseek(f, 0, SEEK_SET);
  }
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    fwrite(buf, 1, n, stdout);
  fclose(f);
}

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs one test in a child; returns 0 passed, 1 failed, 2 skipped. */
static int run_one(const struct test *t, const char *suite)
{
  char logpath[PATH_MAX + 16];
  const char *base = getenv("TMPDIR");
  int status = 0, timed_out = 0;
  int64_t start = now_ms();

  snprintf(tmpdir, sizeof tmpdir, "%s/cx-%s.XXXXXX", base ? base : "/tmp",
           t->name);
  if (mkdtemp(tmpdir) == NULL) {
    printf("FAIL %s %s: mkdtemp: %s\n", suite, t->name, strerror(errno));
    return 1;
  }
  snprintf(logpath, sizeof logpath, "%s/test-output.log", tmpdir);
  fflush(NULL);

  pid_t pid = fork();
  if (pid < 0) {
    printf("FAIL %s %s: fork: %s\n", suite, t->name, strerror(errno));
    return 1;
  }
  if (pid == 0) {
    setpgid(0, 0);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    setenv("CX_TEST_TMPDIR", tmpdir, 1);
    t->fn();
    fflush(NULL);
    _exit(0);
  }
  setpgid(pid, pid); /* both sides, so no race with the child's own call */

  int64_t deadline = start + (int64_t)t->timeout_s * 1000;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      break;
    if (r < 0 && errno != EINTR) {
      status = -1;
      break;
    }
    if (now_ms() > deadline) {
      timed_out = 1;
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    usleep(2000);
  }
  /* Whatever the test left running (servers, job processes) dies here. */
  kill(-pid, SIGKILL);

  int64_t ms = now_ms() - start;
  int result;
  if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    printf("ok   %s %s (%" PRId64 " ms)\n", suite, t->name, ms);
    result = 0;
  } else if (!timed_out && WIFEXITED(status) &&
             WEXITSTATUS(status) == EXIT_SKIP) {
    printf("skip %s %s\n", suite, t->name);
    print_file_tail(logpath, 2000);
    result = 2;
  } else {
    if (timed_out)
      printf("FAIL %s %s: timed out after %d s\n", suite, t->name,
             t->timeout_s);
    else if (WIFSIGNALED(status))
      printf("FAIL %s %s: killed by signal %d\n", suite, t->name,
             WTERMSIG(status));
    else
      printf("FAIL %s %s: exit %d (%" PRId64 " ms)\n", suite, t->name,
             WIFEXITED(status) ? WEXITSTATUS(status) : -1, ms);
    print_file_tail(logpath, 16000);
    result = 1;
  }
  /* CX_TEST_KEEP=1 keeps a failed test's directory (logs of the servers
   * and daemons it ran) for a post-mortem; CX_TEST_KEEP=2 every test's
   * (a passing chaos run's logs explain its tail). */
  const char *keep = getenv("CX_TEST_KEEP");
  if (keep && ((result == 1 && keep[0] == '1') || keep[0] == '2'))
    printf("kept %s\n", tmpdir);
  else
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  fflush(stdout);
  return result;
}

static int selected(const char *name, int argc, char **argv)
{
  int any = 0;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-')
      continue;
    any = 1;
    if (argv[i][0] == '=' ? strcmp(name, argv[i] + 1) == 0
                          : strstr(name, argv[i]) != NULL)
      return 1;
  }
  return !any;
}

int cx_test_marked_procs(const char *marker)
{
  char cmd[256], line[64] = "";
  snprintf(cmd, sizeof cmd, "pgrep -f -c '[: ]%s$' || true", marker);
  FILE *p = popen(cmd, "r");
  if (p == NULL)
    return -1;
  if (fgets(line, sizeof line, p) == NULL)
    line[0] = '\0';
  pclose(p);
  return atoi(line);
}

void cx_test_marked_kill(const char *marker)
{
  char cmd[256];
  /* '[x]yz' matches the marker but not this shell's own command line. */
  snprintf(cmd, sizeof cmd,
           "for p in $(pgrep -f '[%c]%s'); do pkill -KILL -P $p; "
           "kill -9 $p; done 2>/dev/null",
           marker[0], marker + 1);
  if (system(cmd) < 0) {
  }
}

int main(int argc, char **argv)
{
  char self[PATH_MAX];
  int passed = 0, failed = 0, skipped = 0;
  const char *suite =
      strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

  snprintf(self, sizeof self, "%s", argv[0]);
  snprintf(bindir, sizeof bindir, "%s", dirname(self));
  signal(SIGPIPE, SIG_IGN);
  /* Daemons the tests start as root run jobs as root, as before node.run_as
   * existed: their jobs write into the tests' private (0700) directories.
   * The cases about job users set node.run_as themselves. */
  if (geteuid() == 0)
    setenv("CRONIX_NODE_RUN_AS", "root", 0);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--list") == 0) {
      for (int j = 0; j < ntests; j++)
        printf("%s\n", tests[j].name);
      return 0;
    }
  }
  for (int i = 0; i < ntests; i++) {
    if (!selected(tests[i].name, argc, argv))
      continue;
    switch (run_one(&tests[i], suite)) {
    case 0:
      passed++;
      break;
    case 2:
      skipped++;
      break;
    default:
      failed++;
    }
  }
  if (skipped)
    printf("%s: %d passed, %d failed, %d skipped\n", suite, passed, failed,
           skipped);
  else
    printf("%s: %d passed, %d failed\n", suite, passed, failed);
  return failed ? 1 : 0;
}
