/* Running programs from tests: fork/exec with captured stdout and stderr. */
#include "support/run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/test.h"

static void append(char **buf, size_t *len, const char *data, size_t n)
{
  char *p = realloc(*buf, *len + n + 1);
  if (p == NULL)
    cx_test_fail(__FILE__, __LINE__, "out of memory");
  memcpy(p + *len, data, n);
  *len += n;
  p[*len] = '\0';
  *buf = p;
}

void cx_test_run(char *const argv[], int timeout_s, struct cx_test_output *o)
{
  int out_pipe[2], err_pipe[2];
  struct timespec start, now;

  memset(o, 0, sizeof *o);
  o->out = calloc(1, 1);
  o->err = calloc(1, 1);
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
    cx_test_fail(__FILE__, __LINE__, "pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    cx_test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execv(argv[0], argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  clock_gettime(CLOCK_MONOTONIC, &start);
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2, killed = 0;
  while (open_fds > 0) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    long left_ms =
        (long)timeout_s * 1000 - ((now.tv_sec - start.tv_sec) * 1000 +
                                  (now.tv_nsec - start.tv_nsec) / 1000000);
    if (left_ms <= 0) {
      kill(pid, SIGKILL);
      killed = 1;
      break;
    }
    if (poll(fds, 2, (int)left_ms) < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
        continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        if (i == 0)
          append(&o->out, &o->out_len, buf, (size_t)n);
        else
          append(&o->err, &o->err_len, buf, (size_t)n);
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      }
    }
  }
  for (int i = 0; i < 2; i++)
    if (fds[i].fd >= 0)
      close(fds[i].fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (killed)
    o->status = 128 + SIGKILL;
  else if (WIFEXITED(status))
    o->status = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    o->status = 128 + WTERMSIG(status);
  else
    o->status = -1;
}

void cx_test_output_free(struct cx_test_output *o)
{
  free(o->out);
  free(o->err);
  memset(o, 0, sizeof *o);
}

const char *cx_test_cronix_bin(void)
{
  static char path[PATH_MAX];
  const char *env = getenv("CX_CRONIX_BIN");
  if (env != NULL && env[0] != '\0')
    return env;
  snprintf(path, sizeof path, "%s/../cronix", cx_test_bindir());
  return path;
}
