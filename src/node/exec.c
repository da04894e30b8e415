/*
 * node/exec: attempt handles, the head-and-tail output capture, process
 * group helpers and cmd attempts (`shell -c command` in its own session).
 * The design and the choices (vfork-style clone, no spawn lock, pidfd
 * reaping, drain then group cleanup after the shell exits) are described
 * in exec.h.
 */
#include "live/live.h"
#include "node/exec-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

atomic_int cx__exec_no_pidfd;

#define LOG_COMP "exec"

/* The spawned child must not be instrumented (see child_run). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define NO_ASAN __attribute__((no_sanitize_address))
#define ASAN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define NO_ASAN __attribute__((no_sanitize_address))
#define ASAN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#endif
#endif
#ifndef NO_ASAN
#define NO_ASAN
#define ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif
#define READ_CHUNK 65536
#define FALLBACK_POLL_MS 10     /* waitpid polling when pidfd_open fails */
#define GROUP_POLL_US 10000     /* group liveness polling during cleanup */
#define AFTER_KILL_WAIT_MS 2000 /* how long SIGKILLed members may take */

/* ---- handles ------------------------------------------------------------ */

const char *cx_exec_status_name(enum cx_exec_status s)
{
  switch (s) {
  case CX_EXEC_SUCCESS:
    return "success";
  case CX_EXEC_FAILED:
    return "failed";
  case CX_EXEC_TIMEOUT:
    return "timeout";
  case CX_EXEC_KILLED:
    return "killed";
  case CX_EXEC_ERROR:
    return "error";
  }
  return "unknown";
}

int cx_exec_create(struct cx_exec **out)
{
  struct cx_exec *x;

  *out = NULL;
  x = cx_calloc(1, sizeof *x);
  if (x == NULL)
    return -ENOMEM;
  x->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (x->wake_fd < 0) {
    int e = errno;
    cx_free(x);
    return -e;
  }
  atomic_init(&x->kill, 0);
  atomic_init(&x->busy, 0);
  *out = x;
  return 0;
}

void cx_exec_destroy(struct cx_exec *x)
{
  if (x == NULL)
    return;
  close(x->wake_fd);
  cx_free(x);
}

void cx_exec_kill(struct cx_exec *x)
{
  uint64_t one = 1;
  int saved = errno;

  atomic_store(&x->kill, 1);
  /* Full counter (EAGAIN) still leaves the fd readable: nothing to do. */
  if (write(x->wake_fd, &one, sizeof one) < 0) {
  }
  errno = saved;
}

int cx_exec_killed(const struct cx_exec *x)
{
  return atomic_load(&((struct cx_exec *)x)->kill);
}

void cx__exec_wake_drain(struct cx_exec *x)
{
  uint64_t v;
  if (read(x->wake_fd, &v, sizeof v) < 0) {
    /* EAGAIN: already empty. */
  }
}

void cx_exec_result_free(struct cx_exec_result *res)
{
  if (res == NULL)
    return;
  cx_free(res->output);
  res->output = NULL;
  res->output_len = 0;
}

int cx__exec_fail(struct cx_exec_result *res, char *err, int rc,
                  const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(res->error, sizeof res->error, fmt, ap);
  va_end(ap);
  res->status = CX_EXEC_ERROR;
  if (err != NULL)
    cx_err_set(err, "%s", res->error);
  return rc;
}

int cx__exec_begin(struct cx_exec *x, struct cx_exec_result *res, char *err)
{
  int expected = 0;

  memset(res, 0, sizeof *res);
  res->exit_code = -1;
  res->start_ms = res->end_ms = cx_wall_ms();
  res->output = cx_strdup("");
  if (x == NULL)
    return cx__exec_fail(res, err, -EINVAL, "no attempt handle");
  if (!atomic_compare_exchange_strong(&x->busy, &expected, 1))
    return cx__exec_fail(res, err, -EBUSY,
                         "the handle is already running an attempt");
  return 0;
}

void cx__exec_end(struct cx_exec *x)
{
  atomic_store(&x->busy, 0);
}

size_t cx__exec_output_limit(const struct cx_exec_opts *opts)
{
  size_t limit = opts && opts->output_limit ? opts->output_limit
                                            : CX_EXEC_OUTPUT_LIMIT_DEFAULT;
  if (limit < CX_EXEC_OUTPUT_LIMIT_MIN)
    limit = CX_EXEC_OUTPUT_LIMIT_MIN;
  if (limit > CX_EXEC_OUTPUT_LIMIT_MAX)
    limit = CX_EXEC_OUTPUT_LIMIT_MAX;
  return limit;
}

/* ---- output capture ----------------------------------------------------- */

int cx__capture_init(struct cx__capture *c, const struct cx_exec_opts *opts)
{
  size_t limit = cx__exec_output_limit(opts);
  memset(c, 0, sizeof *c);
  c->live = opts ? opts->live : NULL;
  c->buf = cx_malloc(limit + 1);
  if (c->buf == NULL)
    return -ENOMEM;
  c->limit = limit;
  c->head_cap = limit / 2;
  c->ring_cap = limit - c->head_cap;
  return 0;
}

void cx__capture_add(struct cx__capture *c, const char *p, size_t n)
{
  char *ring = c->buf + c->head_cap;

  cx_live_add(c->live, p, n);
  c->total += n;
  if (c->head_len < c->head_cap) {
    size_t k = c->head_cap - c->head_len;
    if (k > n)
      k = n;
    memcpy(c->buf + c->head_len, p, k);
    c->head_len += k;
    p += k;
    n -= k;
  }
  if (n == 0)
    return;
  if (n >= c->ring_cap) {
    /* Only the last ring_cap bytes can survive. */
    memcpy(ring, p + (n - c->ring_cap), c->ring_cap);
    c->ring_pos = 0;
    c->ring_len = c->ring_cap;
    return;
  }
  size_t first = c->ring_cap - c->ring_pos;
  if (first > n)
    first = n;
  memcpy(ring + c->ring_pos, p, first);
  memcpy(ring, p + first, n - first);
  c->ring_pos = (c->ring_pos + n) % c->ring_cap;
  c->ring_len = c->ring_len + n > c->ring_cap ? c->ring_cap : c->ring_len + n;
}

static void reverse(char *p, size_t n)
{
  for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
    char t = p[i];
    p[i] = p[j - 1];
    p[j - 1] = t;
  }
}

/* Length of the marker for cut bytes, written to out when out != NULL. */
static size_t marker(uint64_t cut, char *out, size_t cap)
{
  char tmp[64];
  int n = snprintf(tmp, sizeof tmp, "\n[... %llu bytes cut ...]\n",
                   (unsigned long long)cut);
  if (out != NULL && (size_t)n <= cap)
    memcpy(out, tmp, (size_t)n);
  return (size_t)n;
}

void cx__capture_finish(struct cx__capture *c, struct cx_exec_result *res)
{
  char *ring = c->buf + c->head_cap;
  size_t len;

  /* Put the ring in order: rotate left by ring_pos (three reversals). */
  if (c->ring_len == c->ring_cap && c->ring_pos != 0) {
    reverse(ring, c->ring_pos);
    reverse(ring + c->ring_pos, c->ring_cap - c->ring_pos);
    reverse(ring, c->ring_cap);
  }
  if (c->total <= c->limit) {
    len = c->head_len + c->ring_len;
  } else {
    /* The marker replaces the oldest tail bytes, so the output stays at
     * exactly limit bytes. Its length depends on the count it shows:
     * iterate to the fixed point (at most a digit or two of change). */
    uint64_t base = c->total - c->limit;
    size_t m = marker(base, NULL, 0);
    for (int i = 0; i < 4; i++) {
      size_t m2 = marker(base + m, NULL, 0);
      if (m2 == m)
        break;
      m = m2;
    }
    marker(base + m, ring, c->ring_cap);
    len = c->limit;
  }
  c->buf[len] = '\0';
  cx_free(res->output);
  res->output = c->buf;
  res->output_len = len;
  res->output_total = c->total;
  c->buf = NULL;
}

void cx__capture_free(struct cx__capture *c)
{
  cx_free(c->buf);
  c->buf = NULL;
}

/* ---- validation --------------------------------------------------------- */

static int env_name_ok(const char *s)
{
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
    return 0;
  for (s++; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
          (*s >= '0' && *s <= '9') || *s == '_'))
      return 0;
  return 1;
}

int cx__exec_kv_check(const struct cx_exec_kv *kv, size_t n, size_t max,
                      size_t name_max, size_t value_max,
                      int (*name_ok)(const char *name), int strict_value,
                      const char *what, struct cx_exec_result *res, char *err)
{
  if (n > 0 && kv == NULL)
    return cx__exec_fail(res, err, CX_EPARSE, "%s: missing pairs", what);
  if (n > max)
    return cx__exec_fail(res, err, CX_ETOOBIG, "%s: %zu entries (max %zu)",
                         what, n, max);
  for (size_t i = 0; i < n; i++) {
    const char *name = kv[i].name, *value = kv[i].value;
    if (name == NULL || value == NULL)
      return cx__exec_fail(res, err, CX_EPARSE, "%s: entry %zu is null", what,
                           i);
    size_t nl = strnlen(name, name_max + 1);
    if (nl == 0 || nl > name_max)
      return cx__exec_fail(res, err, nl ? CX_ETOOBIG : CX_EPARSE,
                           "%s: name of entry %zu is %s", what, i,
                           nl ? "too long" : "empty");
    if (!name_ok(name))
      return cx__exec_fail(res, err, CX_EPARSE, "%s: invalid name \"%.64s\"",
                           what, name);
    size_t vl = strnlen(value, value_max + 1);
    if (vl > value_max)
      return cx__exec_fail(res, err, CX_ETOOBIG,
                           "%s: value of \"%.64s\" longer than %zu bytes", what,
                           name, value_max);
    for (size_t j = 0; strict_value && j < vl; j++) {
      unsigned char ch = (unsigned char)value[j];
      if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
        return cx__exec_fail(res, err, CX_EPARSE,
                             "%s: value of \"%.64s\" holds control "
                             "character 0x%02x",
                             what, name, ch);
    }
  }
  return 0;
}

/* ---- process groups ----------------------------------------------------- */

/* Reads the state and process group of /proc/<name>/stat. 0 or -1. */
static int proc_stat(const char *name, char *state, long *pgrp)
{
  char path[64], buf[512];
  int fd, n;

  snprintf(path, sizeof path, "/proc/%s/stat", name);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  n = (int)read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  /* "pid (comm) S ppid pgrp ...": comm may hold ')', so take the last. */
  char *p = strrchr(buf, ')');
  if (p == NULL || p[1] != ' ' || p[2] == '\0')
    return -1;
  *state = p[2];
  char *end;
  errno = 0;
  strtol(p + 3, &end, 10); /* ppid */
  if (errno || end == p + 3)
    return -1;
  p = end;
  *pgrp = strtol(p, &end, 10);
  if (errno || end == p)
    return -1;
  return 0;
}

int cx_exec_group_alive(pid_t pgid)
{
  DIR *d;
  struct dirent *de;
  int alive = 0;

  if (pgid <= 1)
    return -EINVAL;
  if (kill(-pgid, 0) < 0 && errno == ESRCH)
    return 0;
  /* Something answers for the group, maybe only zombies: look closer. */
  d = opendir("/proc");
  if (d == NULL)
    return 1;
  while (!alive && (de = readdir(d)) != NULL) {
    char state;
    long pgrp;
    if (de->d_name[0] < '1' || de->d_name[0] > '9')
      continue;
    if (proc_stat(de->d_name, &state, &pgrp) != 0)
      continue;
    if (pgrp == (long)pgid && state != 'Z' && state != 'X')
      alive = 1;
  }
  closedir(d);
  return alive;
}

/* ---- cmd attempts: spawning --------------------------------------------- */

enum child_stage {
  STAGE_SETSID = 1,
  STAGE_DUP2,
  STAGE_CHDIR,
  STAGE_EXEC,
  STAGE_CGROUP,
  STAGE_RLIMIT,
  STAGE_USER,
  STAGE_NNP
};

struct child_err {
  int stage;
  int err;
};

struct spawn {
  const char *shell;
  const char *workdir;
  char *argv[4];
  char **envp; /* pointers; job pairs point into env_mem */
  char *env_mem;
  int null_fd, out_rd, out_wr;
  int max_fd; /* for the close-on-exec fallback loop */
  int cg_fd;  /* the attempt's cgroup.procs, or -1 */
  int set_user;
  uid_t uid;
  gid_t gid;
  int nrl; /* rlimits to set */
  int rl_res[4];
  struct rlimit rl[4];
  /* Written by the child before it gives up: it shares our memory
   * (CLONE_VM) and we run again only once it has exec'd or exited. */
  volatile struct child_err ce;
};

/* Moves fd to a number above stdio (so the child's dup2 onto 0..2 can
 * never clobber a source), close-on-exec. Returns the fd or -errno. */
static int fd_above_stdio(int fd)
{
  int nfd, e;
  if (fd < 0 || fd > 2)
    return fd;
  nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  e = errno;
  close(fd);
  return nfd < 0 ? -e : nfd;
}

static int pipe_above_stdio(int fds[2])
{
  if (pipe2(fds, O_CLOEXEC) < 0)
    return -errno;
  fds[0] = fd_above_stdio(fds[0]);
  fds[1] = fd_above_stdio(fds[1]);
  if (fds[0] < 0 || fds[1] < 0) {
    int e = fds[0] < 0 ? fds[0] : fds[1];
    if (fds[0] >= 0)
      close(fds[0]);
    if (fds[1] >= 0)
      close(fds[1]);
    fds[0] = fds[1] = -1;
    return e;
  }
  return 0;
}

static void close_fd(int *fd)
{
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

/* Does entry "K=V" (or "K") of the base environment name a variable the
 * job sets? */
static int env_overridden(const char *entry, const struct cx_exec_cmd *cmd)
{
  const char *eq = strchr(entry, '=');
  size_t kl = eq ? (size_t)(eq - entry) : strlen(entry);
  for (size_t i = 0; i < cmd->nenv; i++)
    if (strlen(cmd->env[i].name) == kl &&
        memcmp(cmd->env[i].name, entry, kl) == 0)
      return 1;
  return 0;
}

/* Builds envp: the base environment minus names the job sets, then the
 * job's pairs (a name given twice: the last one wins). */
static int env_build(struct spawn *sp, const struct cx_exec_opts *opts,
                     const struct cx_exec_cmd *cmd)
{
  char *const *base =
      opts && opts->base_env ? (char *const *)opts->base_env : environ;
  size_t nbase = 0, mem = 0, k = 0;

  while (base != NULL && base[nbase] != NULL)
    nbase++;
  for (size_t i = 0; i < cmd->nenv; i++)
    mem += strlen(cmd->env[i].name) + strlen(cmd->env[i].value) + 2;
  sp->envp = cx_calloc(nbase + cmd->nenv + 1, sizeof *sp->envp);
  sp->env_mem = cx_malloc(mem + 1);
  if (sp->envp == NULL || sp->env_mem == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < nbase; i++)
    if (strchr(base[i], '=') != NULL && !env_overridden(base[i], cmd))
      sp->envp[k++] = base[i];
  char *p = sp->env_mem;
  for (size_t i = 0; i < cmd->nenv; i++) {
    int later = 0;
    for (size_t j = i + 1; j < cmd->nenv && !later; j++)
      later = strcmp(cmd->env[i].name, cmd->env[j].name) == 0;
    if (later)
      continue;
    size_t nl = strlen(cmd->env[i].name), vl = strlen(cmd->env[i].value);
    sp->envp[k++] = p;
    memcpy(p, cmd->env[i].name, nl);
    p[nl] = '=';
    memcpy(p + nl + 1, cmd->env[i].value, vl);
    p[nl + 1 + vl] = '\0';
    p += nl + vl + 2;
  }
  sp->envp[k] = NULL;
  return 0;
}

/* Runs in the child (see child_run). */
NO_ASAN static _Noreturn void child_fail(struct spawn *sp, int stage, int e)
{
  sp->ce.stage = stage;
  sp->ce.err = e;
  _exit(127);
}

NO_ASAN static int dup2_retry(int from, int to)
{
  int r;
  do
    r = dup2(from, to);
  while (r < 0 && errno == EINTR);
  return r;
}

/* The child between clone and exec. It runs on its own small stack but
 * in the parent's memory (CLONE_VM|CLONE_VFORK, like posix_spawn), with
 * the calling thread suspended until it has exec'd or exited; so only
 * async-signal-safe calls (no allocation, no locks, no stdio), nothing
 * written but its own stack and sp->ce, and not instrumented by ASan (its
 * frames would poison shadow memory the parent owns). It has its own fd
 * table, cwd and signal dispositions (no CLONE_FILES/FS/SIGHAND). Every
 * source fd is above 2, so the dup2 calls cannot clobber one another,
 * and dup2 clears FD_CLOEXEC on the new 0, 1 and 2. */
NO_ASAN static int child_run(void *arg)
{
  struct spawn *sp = arg;
  struct sigaction sa;
  sigset_t none;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++)
    sigaction(s, &sa, NULL); /* EINVAL for SIGKILL etc.: ignored */
  if (setsid() < 0)
    child_fail(sp, STAGE_SETSID, errno);
  if (dup2_retry(sp->null_fd, 0) < 0 || dup2_retry(sp->out_wr, 1) < 0 ||
      dup2_retry(sp->out_wr, 2) < 0)
    child_fail(sp, STAGE_DUP2, errno);
  /* Whatever another thread opened without O_CLOEXEC must not reach the
   * job. */
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
    for (int fd = 3; fd < sp->max_fd; fd++)
      fcntl(fd, F_SETFD, FD_CLOEXEC);
  /* Into the cgroup before anything else can fork: "0" is the writer. */
  if (sp->cg_fd >= 0 && write(sp->cg_fd, "0", 1) != 1)
    child_fail(sp, STAGE_CGROUP, errno);
  for (int i = 0; i < sp->nrl; i++)
    if (setrlimit(sp->rl_res[i], &sp->rl[i]) < 0)
      child_fail(sp, STAGE_RLIMIT, errno);
  /* Groups first: after setuid there is no right to change them. Raw
   * syscalls: glibc's wrappers broadcast the change to every thread of a
   * multi-threaded process (setxid), which a child made with
   * clone(CLONE_VM) would try on its parent's threads; the syscalls
   * change this (single-threaded) process only. */
  if (sp->set_user &&
      (syscall(SYS_setgroups, 0, NULL) < 0 ||
       syscall(SYS_setgid, sp->gid) < 0 || syscall(SYS_setuid, sp->uid) < 0))
    child_fail(sp, STAGE_USER, errno);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    child_fail(sp, STAGE_NNP, errno);
  if (sp->workdir != NULL && chdir(sp->workdir) < 0)
    child_fail(sp, STAGE_CHDIR, errno);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execve(sp->shell, sp->argv, sp->envp);
  child_fail(sp, STAGE_EXEC, errno);
}

static void limit_add(struct spawn *sp, int resource, int64_t v, int64_t hard)
{
  if (v <= 0)
    return;
  sp->rl_res[sp->nrl] = resource;
  sp->rl[sp->nrl].rlim_cur = (rlim_t)v;
  sp->rl[sp->nrl].rlim_max = (rlim_t)hard;
  sp->nrl++;
}

/* The user and the limits, computed before the fork (the child only
 * makes the calls). */
static void spawn_limits(struct spawn *sp, const struct cx_exec_cmd *cmd)
{
  const struct cx_exec_limits *l = &cmd->limits;
  sp->set_user = cmd->set_user;
  sp->uid = cmd->uid;
  sp->gid = cmd->gid;
  sp->nrl = 0;
  limit_add(sp, RLIMIT_AS, l->memory_mb * 1024 * 1024,
            l->memory_mb * 1024 * 1024);
  limit_add(sp, RLIMIT_NPROC, l->nproc, l->nproc);
  /* The hard limit a second later: SIGXCPU first, which a job may catch
   * to clean up, then SIGKILL. */
  limit_add(sp, RLIMIT_CPU, l->cpu_s, l->cpu_s + 1);
  limit_add(sp, RLIMIT_NOFILE, l->nofile, l->nofile);
}

static void spawn_free(struct spawn *sp)
{
  close_fd(&sp->null_fd);
  close_fd(&sp->out_rd);
  close_fd(&sp->out_wr);
  cx_free(sp->envp);
  cx_free(sp->env_mem);
}

static int wait_retry(pid_t pid, int *st, int flags)
{
  pid_t r;
  do
    r = waitpid(pid, st, flags);
  while (r < 0 && errno == EINTR);
  return (int)r;
}

/* Starts the child: clone(CLONE_VM|CLONE_VFORK) on a stack of our own
 * (this thread's, which is idle until the child has exec'd), as
 * posix_spawn does. fork() of the node cost more than everything else in a
 * run: copying the page tables of a process with ~80 threads and ~400
 * mappings, then tearing them down again at exec, serialised on the
 * process's memory map lock and with copy-on-write faults (TLB shootdowns
 * to every core) in all the other threads afterwards. posix_spawn itself
 * cannot say which step failed (chdir or exec) nor set FD_CLOEXEC on fds
 * another thread leaked, hence our own child. */
#define CHILD_STACK (64 * 1024)

static pid_t spawn_clone(struct spawn *sp)
{
  /* Aligned for any ABI; the stack grows down from its end. */
  _Alignas(64) char stack[CHILD_STACK];
  pid_t pid = clone(child_run, stack + sizeof stack,
                    CLONE_VM | CLONE_VFORK | SIGCHLD, sp);
  /* The child's uninstrumented frames left no poison, but its stack is
   * ours again: say so to ASan in case (a no-op otherwise). */
  ASAN_UNPOISON(stack, sizeof stack);
  return pid;
}

/* Spawns the shell. On success *pid is the running shell and out_rd the
 * read end of its output; on failure res is an ERROR. */
static int spawn_start(struct spawn *sp, pid_t *pid, struct cx_exec_result *res,
                       char *err)
{
  sigset_t all, old;
  int rc, fds[2], e;
  struct rlimit rl;

  sp->max_fd = 65536;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536)
    sp->max_fd = (int)rl.rlim_cur;
  rc = open("/dev/null", O_RDONLY | O_CLOEXEC);
  rc = rc < 0 ? -errno : fd_above_stdio(rc);
  if (rc < 0)
    return cx__exec_fail(res, err, rc, "open /dev/null: %s", strerror(-rc));
  sp->null_fd = rc;
  rc = pipe_above_stdio(fds);
  if (rc < 0)
    return cx__exec_fail(res, err, rc, "output pipe: %s", strerror(-rc));
  sp->out_rd = fds[0];
  sp->out_wr = fds[1];
  if (fcntl(sp->out_rd, F_SETFL, O_NONBLOCK) < 0) {
    rc = -errno;
    return cx__exec_fail(res, err, rc, "output pipe: %s", strerror(errno));
  }

  /* All signals blocked across the clone: no handler of ours runs in the
   * child before it has reset the dispositions. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  sp->ce.stage = 0;
  sp->ce.err = 0;
  res->start_ms = cx_wall_ms();
  *pid = spawn_clone(sp);
  e = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (*pid < 0)
    return cx__exec_fail(res, err, -e, "clone: %s", strerror(e));

  close_fd(&sp->null_fd);
  close_fd(&sp->out_wr);
  if (sp->ce.stage == 0)
    return 0; /* exec'd: CLONE_VFORK returned only after it */

  /* The child failed before exec and has exited with 127. */
  int st = 0;
  struct child_err ce = {sp->ce.stage, sp->ce.err};
  wait_retry(*pid, &st, 0);
  res->pid = res->pgid = 0;
  res->exit_code = 127;
  rc = ce.err > 0 ? -ce.err : -EIO;
  switch (ce.stage) {
  case STAGE_CHDIR:
    return cx__exec_fail(res, err, rc, "workdir \"%.200s\": %s", sp->workdir,
                         strerror(ce.err));
  case STAGE_EXEC:
    return cx__exec_fail(res, err, rc, "shell \"%.200s\": %s", sp->shell,
                         strerror(ce.err));
  case STAGE_USER:
    return cx__exec_fail(res, err, rc, "run as uid %ld gid %ld: %s",
                         (long)sp->uid, (long)sp->gid, strerror(ce.err));
  default:
    return cx__exec_fail(res, err, rc, "child %s: %s",
                         ce.stage == STAGE_SETSID   ? "setsid"
                         : ce.stage == STAGE_CGROUP ? "join cgroup"
                         : ce.stage == STAGE_RLIMIT ? "setrlimit"
                         : ce.stage == STAGE_NNP    ? "no_new_privs"
                                                    : "dup2",
                         strerror(ce.err));
  }
}

/* ---- cmd attempts: waiting ---------------------------------------------- */

static int64_t now_ms(void)
{
  return cx_mono_now() / 1000;
}

/* Reads what is available (a bounded amount per call, so the loop stays
 * responsive to a flood). Returns 1 at EOF (fd closed), else 0. */
static int pipe_read(int *fd, struct cx__capture *cap)
{
  char buf[READ_CHUNK];
  for (int i = 0; i < 64; i++) {
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n > 0) {
      cx__capture_add(cap, buf, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return 0;
    close_fd(fd); /* EOF, or an error that will not go away */
    return 1;
  }
  return 0;
}

struct run_state {
  struct cx_exec *x;
  pid_t pid;
  int pidfd;
  int out_fd;
  int64_t grace_ms, drain_ms;
  int64_t deadline; /* mono ms of the timeout, INT64_MAX = none */
  int64_t kill_at;  /* mono ms of the SIGKILL, INT64_MAX = not yet due */
  int stopping;     /* SIGTERM sent to the group */
  int killed9;      /* SIGKILL sent to the group */
  enum cx_exec_status reason; /* TIMEOUT or KILLED once stopping */
  int lost;                   /* the exit status could not be had */
  struct cx__cg *cg;          /* the attempt's cgroup (path "" = none) */
};

/* The group first (no pid of it can be reused while the shell is
 * unreaped), then whatever of the cgroup left the group. */
static void group_signal(struct run_state *s, int sig)
{
  if (kill(-s->pid, sig) < 0 && errno != ESRCH)
    CX_LOG(CX_LOG_WARN, LOG_COMP, "kill(-%ld, %d): %s", (long)s->pid, sig,
           strerror(errno));
  cx__cg_signal(s->cg, sig);
}

/* 1 while anything of the attempt is alive: its group or its cgroup. */
static int run_alive(const struct run_state *s)
{
  return cx_exec_group_alive(s->pid) > 0 || cx__cg_alive(s->cg) > 0;
}

static void start_stopping(struct run_state *s, enum cx_exec_status why,
                           int64_t now)
{
  if (s->stopping)
    return;
  s->stopping = 1;
  s->reason = why;
  group_signal(s, SIGTERM);
  s->kill_at = now + s->grace_ms;
}

/* Waits for the shell to exit, reading its output, enforcing the timeout
 * and kill requests. Fills *st with the wait status. */
static void wait_shell(struct run_state *s, struct cx__capture *cap, int *st)
{
  for (;;) {
    int64_t now = now_ms();
    if (!s->stopping && atomic_load(&s->x->kill))
      start_stopping(s, CX_EXEC_KILLED, now);
    if (!s->stopping && now >= s->deadline)
      start_stopping(s, CX_EXEC_TIMEOUT, now);
    if (s->stopping && !s->killed9 && now >= s->kill_at) {
      group_signal(s, SIGKILL);
      s->killed9 = 1;
    }
    pid_t r = (pid_t)wait_retry(s->pid, st, WNOHANG);
    if (r == s->pid)
      return;
    if (r < 0) {
      /* ECHILD: reaped elsewhere (SIGCHLD set to SIG_IGN, or a wait(-1)
       * in other code). The exit status is lost; the shell is gone. */
      CX_LOG(CX_LOG_ERROR, LOG_COMP, "waitpid(%ld): %s", (long)s->pid,
             strerror(errno));
      s->lost = 1;
      return;
    }

    int64_t wait = -1;
    if (!s->stopping && s->deadline != INT64_MAX)
      wait = s->deadline - now;
    if (s->stopping && !s->killed9 && (wait < 0 || s->kill_at - now < wait))
      wait = s->kill_at - now;
    if (s->pidfd < 0 && (wait < 0 || wait > FALLBACK_POLL_MS))
      wait = FALLBACK_POLL_MS;
    if (wait > 1000 || wait < 0)
      wait = wait < 0 && s->pidfd >= 0 ? -1 : 1000;

    struct pollfd pf[3];
    int n = 0, i_out = -1, i_wake;
    if (s->out_fd >= 0) {
      i_out = n;
      pf[n++] = (struct pollfd){.fd = s->out_fd, .events = POLLIN};
    }
    if (s->pidfd >= 0)
      pf[n++] = (struct pollfd){.fd = s->pidfd, .events = POLLIN};
    i_wake = n;
    pf[n++] = (struct pollfd){.fd = s->x->wake_fd, .events = POLLIN};
    int pr = poll(pf, (nfds_t)n, (int)wait);
    if (pr < 0 && errno != EINTR) {
      /* Only ENOMEM is plausible: back off and keep going. */
      cx_sleep_us(10000);
      continue;
    }
    if (pr <= 0)
      continue;
    if (i_out >= 0 && pf[i_out].revents)
      pipe_read(&s->out_fd, cap);
    if (pf[i_wake].revents)
      cx__exec_wake_drain(s->x);
  }
}

/* After the shell exited: read what is already in the pipe, until EOF or
 * drain_ms, whichever comes first. */
static void drain_pipe(struct run_state *s, struct cx__capture *cap)
{
  int64_t until = now_ms() + s->drain_ms;
  while (s->out_fd >= 0) {
    if (pipe_read(&s->out_fd, cap))
      break;
    int64_t left = until - now_ms();
    if (left <= 0)
      break;
    struct pollfd pf = {.fd = s->out_fd, .events = POLLIN};
    if (poll(&pf, 1, (int)left) == 0)
      break;
  }
  close_fd(&s->out_fd);
}

/* When the node is pid 1 (a container without an init) or a child
 * subreaper, the orphans of the group become its children: reap those,
 * and only those (P_PGID: nobody else's children are in this group). */
static void reap_orphans(pid_t pgid)
{
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PGID, (id_t)pgid, &si, WEXITED | WNOHANG) < 0) {
      if (errno == EINTR)
        continue;
      return; /* ECHILD: none of ours in the group */
    }
    if (si.si_pid == 0)
      return; /* some alive, none exited yet */
  }
}

/* Leaves the group empty: SIGTERM (unless already stopping), SIGKILL at
 * kill_at, then a bounded wait for the SIGKILLed. Returns 1 if anything
 * of the group was still alive when the shell had gone. */
static int cleanup_group(struct run_state *s)
{
  reap_orphans(s->pid);
  if (!run_alive(s))
    return 0;
  int64_t now = now_ms();
  if (!s->stopping) {
    group_signal(s, SIGTERM);
    s->stopping = 1;
    s->kill_at = now + s->grace_ms;
  }
  int64_t give_up = INT64_MAX;
  for (;;) {
    if (!run_alive(s))
      break;
    now = now_ms();
    if (!s->killed9 && (now >= s->kill_at || atomic_load(&s->x->kill))) {
      group_signal(s, SIGKILL);
      s->killed9 = 1;
    }
    if (s->killed9 && give_up == INT64_MAX)
      give_up = now + AFTER_KILL_WAIT_MS;
    if (now >= give_up) {
      CX_LOG(CX_LOG_WARN, LOG_COMP,
             "process group %ld still alive %d ms after SIGKILL", (long)s->pid,
             AFTER_KILL_WAIT_MS);
      break;
    }
    cx_sleep_us(GROUP_POLL_US);
    reap_orphans(s->pid);
  }
  reap_orphans(s->pid);
  return 1;
}

static int cmd_check(const struct cx_exec_opts *opts,
                     const struct cx_exec_cmd *cmd, const char **shell,
                     struct cx_exec_result *res, char *err)
{
  size_t n;

  *shell = opts && opts->shell && opts->shell[0] ? opts->shell : "/bin/sh";
  if (cmd == NULL || cmd->command == NULL)
    return cx__exec_fail(res, err, CX_EPARSE, "command: missing");
  n = strnlen(cmd->command, CX_EXEC_COMMAND_MAX + 1);
  if (n == 0)
    return cx__exec_fail(res, err, CX_EPARSE, "command: empty");
  if (n > CX_EXEC_COMMAND_MAX)
    return cx__exec_fail(res, err, CX_ETOOBIG, "command: longer than %d bytes",
                         CX_EXEC_COMMAND_MAX);
  if ((*shell)[0] != '/')
    return cx__exec_fail(res, err, CX_EPARSE,
                         "node.shell \"%.200s\": not an absolute path", *shell);
  if (strnlen(*shell, CX_EXEC_PATH_MAX + 1) > CX_EXEC_PATH_MAX)
    return cx__exec_fail(res, err, CX_ETOOBIG, "node.shell: too long");
  if (cmd->workdir != NULL &&
      strnlen(cmd->workdir, CX_EXEC_PATH_MAX + 1) > CX_EXEC_PATH_MAX)
    return cx__exec_fail(res, err, CX_ETOOBIG, "workdir: too long");
  if (cmd->timeout_ms < 0)
    return cx__exec_fail(res, err, CX_EPARSE, "timeout: negative");
  if (cmd->limits.memory_mb < 0 || cmd->limits.nproc < 0 ||
      cmd->limits.cpu_s < 0 || cmd->limits.nofile < 0)
    return cx__exec_fail(res, err, CX_EPARSE, "limits: negative");
  if (cmd->limits.memory_mb > CX_EXEC_LIMIT_MAX ||
      cmd->limits.nproc > CX_EXEC_LIMIT_MAX ||
      cmd->limits.cpu_s > CX_EXEC_LIMIT_MAX ||
      cmd->limits.nofile > CX_EXEC_LIMIT_MAX)
    return cx__exec_fail(res, err, CX_EPARSE, "limits: above %lld",
                         (long long)CX_EXEC_LIMIT_MAX);
  return cx__exec_kv_check(cmd->env, cmd->nenv, CX_EXEC_ENV_MAX,
                           CX_EXEC_ENV_NAME_MAX, CX_EXEC_ENV_VALUE_MAX,
                           env_name_ok, 0, "env", res, err);
}

int cx_exec_run_cmd(struct cx_exec *x, const struct cx_exec_opts *opts,
                    const struct cx_exec_cmd *cmd, cx_exec_spawn_cb on_spawn,
                    void *ctx, struct cx_exec_result *res, char *err)
{
  struct spawn sp = {.null_fd = -1, .out_rd = -1, .out_wr = -1, .cg_fd = -1};
  struct cx__cg cg = {.procs_fd = -1};
  struct cx__capture cap = {0};
  struct run_state s;
  const char *shell;
  pid_t pid = -1;
  int rc, st = 0;

  rc = cx__exec_begin(x, res, err);
  if (rc < 0)
    return rc;
  rc = cmd_check(opts, cmd, &shell, res, err);
  if (rc < 0)
    goto out;
  if (atomic_load(&x->kill)) {
    res->status = CX_EXEC_KILLED;
    goto out;
  }
  if (cx__capture_init(&cap, opts) < 0 || env_build(&sp, opts, cmd) < 0) {
    rc = cx__exec_fail(res, err, -ENOMEM, "out of memory");
    goto out;
  }
  sp.shell = shell;
  sp.workdir = cmd->workdir && cmd->workdir[0] ? cmd->workdir : NULL;
  sp.argv[0] = (char *)shell;
  sp.argv[1] = "-c";
  sp.argv[2] = (char *)cmd->command;
  sp.argv[3] = NULL;
  spawn_limits(&sp, cmd);
  if (opts != NULL && opts->cgroup_dir != NULL && opts->cgroup_dir[0]) {
    char why[CX_ERR_LEN];
    /* Not fatal: the process group still bounds what stays behind. */
    if (cx__cg_create(&cg, opts->cgroup_dir, why) < 0)
      CX_LOG(CX_LOG_WARN, LOG_COMP, "no cgroup for this attempt: %s", why);
    sp.cg_fd = cg.procs_fd;
  }
  rc = spawn_start(&sp, &pid, res, err);
  if (rc < 0)
    goto out;

  res->pid = res->pgid = pid;
  memset(&s, 0, sizeof s);
  s.x = x;
  s.pid = pid;
  s.out_fd = sp.out_rd;
  sp.out_rd = -1;
  s.pidfd = atomic_load(&cx__exec_no_pidfd)
                ? -1
                : (int)syscall(SYS_pidfd_open, pid, 0);
  s.grace_ms = opts && opts->kill_grace_ms > 0 ? opts->kill_grace_ms
                                               : CX_EXEC_KILL_GRACE_DEFAULT_MS;
  s.drain_ms =
      opts && opts->drain_ms > 0 ? opts->drain_ms : CX_EXEC_DRAIN_DEFAULT_MS;
  s.deadline = cmd->timeout_ms > 0 ? now_ms() + cmd->timeout_ms : INT64_MAX;
  s.kill_at = INT64_MAX;
  s.cg = &cg;
  if (on_spawn != NULL)
    on_spawn(ctx, pid, pid);

  wait_shell(&s, &cap, &st);
  drain_pipe(&s, &cap);
  res->leftovers = cleanup_group(&s);
  close_fd(&s.pidfd);

  if (s.lost) {
    snprintf(res->error, sizeof res->error,
             "exit status lost: pid %ld was reaped elsewhere (is SIGCHLD "
             "ignored?)",
             (long)pid);
  } else if (WIFEXITED(st)) {
    res->exit_code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    res->term_signal = WTERMSIG(st);
  }
  if (s.reason == CX_EXEC_TIMEOUT || s.reason == CX_EXEC_KILLED)
    res->status = s.reason;
  else if (!s.lost && WIFEXITED(st) && WEXITSTATUS(st) == 0)
    res->status = CX_EXEC_SUCCESS;
  else
    res->status = CX_EXEC_FAILED;
  rc = 0;
out:
  if (cap.buf != NULL)
    cx__capture_finish(&cap, res);
  spawn_free(&sp);
  cx__cg_remove(&cg);
  res->end_ms = cx_wall_ms();
  cx__exec_end(x);
  return rc;
}
