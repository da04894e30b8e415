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
