/*
 * node/exec internals shared by exec.c (handles, output capture, cmd
 * attempts) and exec_http.c (http attempts). Not part of the module's
 * interface.
 */
#ifndef CX_NODE_EXEC_INT_H
#define CX_NODE_EXEC_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "node/exec.h"

struct cx_exec {
  int wake_fd;     /* eventfd, written by cx_exec_kill */
  atomic_int kill; /* sticky kill request */
  atomic_int busy; /* a run is in progress */
};

/* Head-and-tail capture into one buffer of limit + 1 bytes: the head is
 * buf[0, head_cap), the tail a ring in buf[head_cap, limit). */
struct cx__capture {
  char *buf;
  size_t limit, head_cap, ring_cap;
  size_t head_len, ring_pos, ring_len;
  uint64_t total;
  struct cx_live *live; /* opts.live: fed every byte too; may be NULL */
};

/* Test hook: when set, cmd attempts behave as if pidfd_open() were
 * unavailable (seccomp, old kernels) and poll waitpid(WNOHANG) instead. */
extern atomic_int cx__exec_no_pidfd;

/* Allocates the buffer (opts' clamped limit) and takes opts' live
 * output (opts may be NULL). 0 or -ENOMEM. */
int cx__capture_init(struct cx__capture *c, const struct cx_exec_opts *opts);
void cx__capture_add(struct cx__capture *c, const char *p, size_t n);
/* Puts the assembled output into res (output, output_len, output_total)
 * and leaves c empty. */
void cx__capture_finish(struct cx__capture *c, struct cx_exec_result *res);
void cx__capture_free(struct cx__capture *c);

/* The clamped output limit of opts (NULL = defaults). */
size_t cx__exec_output_limit(const struct cx_exec_opts *opts);

/* Starts a run on x: zeroes res, marks x busy. Returns 0, or -EINVAL /
 * -EBUSY after filling res as an ERROR. */
int cx__exec_begin(struct cx_exec *x, struct cx_exec_result *res, char *err);
void cx__exec_end(struct cx_exec *x);

/* A cmd attempt's own cgroup (exec_cg.c): <cgroup_dir>/run-<pid>-<seq>. */
struct cx__cg {
  char path[CX_EXEC_PATH_MAX + 64]; /* "" = none */
  int procs_fd; /* its cgroup.procs, O_WRONLY|O_CLOEXEC, above stdio; the
                   child writes "0" to it to join before exec */
};

/* Makes the attempt's cgroup under parent. 0, or -errno with the reason in
 * why (CX_ERR_LEN); cg is then empty (path "", procs_fd -1). */
int cx__cg_create(struct cx__cg *cg, const char *parent, char *why);
/* 1 if a live process is in the cgroup (zombies are not listed), 0 if
 * none, < 0 if it cannot be read. */
int cx__cg_alive(const struct cx__cg *cg);
/* Sends sig to every process in the cgroup; SIGKILL through cgroup.kill
 * where the kernel has it (5.14+, v2: atomic, no fork can race it), else
 * pid by pid from cgroup.procs, repeated while new ones appear. */
void cx__cg_signal(const struct cx__cg *cg, int sig);
/* Closes the fd and removes the (empty) cgroup; cg becomes empty. */
void cx__cg_remove(struct cx__cg *cg);

/* Fills res as an ERROR with the message, copies it to err, returns rc. */
int cx__exec_fail(struct cx_exec_result *res, char *err, int rc,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Empties the handle's eventfd after it polled readable. */
void cx__exec_wake_drain(struct cx_exec *x);

/* Checks a name/value list: at most max pairs; names of 1..name_max bytes
 * accepted by name_ok; values of at most value_max bytes, without CR, LF
 * or controls other than TAB when strict_value. what names the field in
 * the message ("env", "http_headers"). 0, CX_EPARSE or CX_ETOOBIG. */
int cx__exec_kv_check(const struct cx_exec_kv *kv, size_t n, size_t max,
                      size_t name_max, size_t value_max,
                      int (*name_ok)(const char *name), int strict_value,
                      const char *what, struct cx_exec_result *res, char *err);

#endif
