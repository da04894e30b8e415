/*
 * node/exec: runs ONE attempt of a job and reports what happened. No etcd,
 * no store, no scheduling: the node calls this from a worker thread, once
 * per attempt, and records the result (SPEC §3, §9.4-9.6).
 *
 * cmd attempts (cx_exec_run_cmd) run `shell -c command`:
 *   - spawned the way libuv's process.c does (STYLE rule 17), but with
 *     clone(CLONE_VM|CLONE_VFORK) on a stack of the calling thread, as
 *     posix_spawn does, instead of fork(): forking the node (dozens of
 *     threads, hundreds of mappings) cost more than the rest of a run and
 *     serialised concurrent spawns on the memory map. Every fd the parent
 *     makes is O_CLOEXEC and above stdio; all signals are blocked across
 *     the clone; the child (own fd table, cwd and dispositions) resets
 *     every disposition to SIG_DFL and clears its mask, calls setsid()
 *     (its own session and process group, pgid = pid, so kill(-pgid)
 *     reaches every descendant that did not leave the group), takes stdin
 *     from /dev/null and stdout+stderr from one pipe, marks every other
 *     inherited fd close-on-exec (close_range), joins the attempt's cgroup
 *     (opts.cgroup_dir), applies the limits, drops to the job's user
 *     (setgroups(0), setgid, setuid as raw syscalls: cmd.set_user),
 *     sets PR_SET_NO_NEW_PRIVS (always: no setuid program can raise a
 *     job's privileges), chdir()s to the workdir (as the job's user), and
 *     execve()s the shell with an environment built from base_env plus the
 *     job's pairs. A failure in the child is written with its stage into
 *     memory the parent reads once the child is gone (the calling thread
 *     is suspended until the exec or the child's _exit(127)): a missing
 *     shell or workdir is status ERROR with a message, while a command the
 *     shell cannot find is the shell's own exit 127 (status FAILED).
 *     Spawning is not serialised by a lock (libuv takes one): every fd this
 *     module makes is created O_CLOEXEC atomically and the child also runs
 *     close_range(3, ~0, CLOSE_RANGE_CLOEXEC), so no fd made concurrently
 *     by another thread (even without O_CLOEXEC) can leak into a job.
 *   - reaping: only ever waitpid() on the attempt's own pid, woken by a
 *     pidfd (pidfd_open) in poll(), or, where pidfd_open is unavailable,
 *     by polling waitpid(pid, WNOHANG) every 10 ms. Nothing here installs
 *     a SIGCHLD handler or calls wait(-1), so concurrent attempts (and any
 *     other children of the process) are never reaped by the wrong thread.
 *   - the attempt IS the shell. Output is read until the shell exits; then
 *     the pipe is drained until EOF or for at most drain_ms (default
 *     100 ms), so a background process still holding the pipe never holds
 *     the result. Then the group is cleaned up: any process still in the
 *     attempt's process group gets SIGTERM, and SIGKILL if it is still
 *     there after kill_grace_ms. The group is thus always empty when a run
 *     function returns (like systemd's KillMode=control-group). With
 *     opts.cgroup_dir the same holds for the attempt's cgroup, which
 *     setsid() and double forks cannot leave: nothing of the attempt
 *     outlives it. Without one, a process that started its own session
 *     (`setsid prog &`) is not in the group and survives.
 *     "Still there" means alive: zombies do not count (cx_exec_group_alive),
 *     since a slow-reaping pid 1 may keep them for seconds. When the node
 *     itself is pid 1 or a subreaper, the group's orphans are its children
 *     and are reaped with waitid(P_PGID, pgid): only that group's.
 *   - timeout (and cx_exec_kill): SIGTERM to the whole group, SIGKILL after
 *     kill_grace_ms, then the same drain and cleanup; a job that closed
 *     its stdout is still timed and killed (the shell's exit, not the
 *     pipe's EOF, ends the attempt).
 *   - so a run function returns at most drain_ms + kill_grace_ms (+ up to
 *     2 s for SIGKILLed processes to go) after the shell exits, or after
 *     timeout + kill_grace_ms. The one unbounded case is a shell the
 *     kernel cannot kill (stuck in uninterruptible I/O): it is waited for.
 *
 * http attempts (cx_exec_run_http) use libcurl: method, headers, body,
 * timeout; http and https only (also across redirects, which are off
 * unless opts.http_max_redirects > 0); 2xx = success; the response body is
 * captured like a command's output and the HTTP status is the exit code.
 * No status at all (refused, DNS, TLS, reset) is ERROR, not FAILED, so a
 * dead endpoint is told apart from one that answered 500.
 *
 * Output (both kinds) is kept head-and-tail: up to output_limit bytes are
 * kept as they are (binary included; the store sanitises later). Past
 * that, the first half is kept, then a marker line
 * "\n[... N bytes cut ...]\n", then the last bytes, and the whole is
 * exactly output_limit bytes: memory is bounded whatever the job writes.
 *
 * Thread-safety: attempts run concurrently on any threads, each with its
 * own struct cx_exec handle. cx_exec_kill() may be called from any thread
 * (and from a signal handler) while the handle exists.
 */
#ifndef CX_NODE_EXEC_H
#define CX_NODE_EXEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/util.h"

struct cx_live;

#define CX_EXEC_OUTPUT_LIMIT_DEFAULT (64 * 1024)
#define CX_EXEC_OUTPUT_LIMIT_MIN 256
#define CX_EXEC_OUTPUT_LIMIT_MAX (64 * 1024 * 1024)
#define CX_EXEC_KILL_GRACE_DEFAULT_MS 5000
#define CX_EXEC_DRAIN_DEFAULT_MS 100
/* An http attempt with timeout 0 still ends after this (1 h). */
#define CX_EXEC_HTTP_MAX_DEFAULT_MS (3600 * 1000)
#define CX_EXEC_HTTP_MAX_REDIRECTS 20

/* Input bounds; longer input is refused with CX_ETOOBIG naming the field. */
#define CX_EXEC_COMMAND_MAX (64 * 1024) /* below Linux's 128 KiB per arg */
#define CX_EXEC_PATH_MAX 4096           /* shell, workdir */
#define CX_EXEC_ENV_MAX 256             /* job env pairs */
#define CX_EXEC_ENV_NAME_MAX 128
#define CX_EXEC_ENV_VALUE_MAX (32 * 1024)
#define CX_EXEC_URL_MAX 8192
#define CX_EXEC_HEADERS_MAX 100
#define CX_EXEC_HEADER_NAME_MAX 256
#define CX_EXEC_HEADER_VALUE_MAX 8192
#define CX_EXEC_BODY_MAX (1024 * 1024)

/* How an attempt ended. */
enum cx_exec_status {
  CX_EXEC_SUCCESS = 0, /* exit 0 / a 2xx response */
  CX_EXEC_FAILED,      /* non-zero exit, died of a signal of its own, or
                          a non-2xx response: the target answered */
  CX_EXEC_TIMEOUT,     /* the attempt's timeout passed; it was killed */
  CX_EXEC_KILLED,      /* cx_exec_kill() ended it (or came before it) */
  CX_EXEC_ERROR        /* no answer to judge: it could not be tried (bad
                          input, missing shell or workdir, no fds/memory;
                          the run function returns < 0), or an http
                          request failed before any status (refused, DNS,
                          TLS, reset, empty reply; returns 0); the reason
                          is in result.error */
};

/* "success", "failed", "timeout", "killed", "error" (static storage). */
const char *cx_exec_status_name(enum cx_exec_status s);

/* A name/value pair: a job's env variable or an http header. */
struct cx_exec_kv {
  const char *name;
  const char *value;
};

/* Node-wide settings. Zero-initialise and set what differs; 0/NULL fields
 * take the defaults named. The struct is read, never kept. */
struct cx_exec_opts {
  const char *shell;           /* absolute path; NULL = "/bin/sh" */
  size_t output_limit;         /* 0 = 64 KiB; clamped to [MIN, MAX] */
  int64_t kill_grace_ms;       /* SIGTERM -> SIGKILL; 0 = 5000 */
  int64_t drain_ms;            /* read after the shell exits; 0 = 100 */
  const char *const *base_env; /* "K=V" list, NULL-terminated; NULL =
                                  the process environment (environ), which
                                  then must not change (setenv) while
                                  attempts start */
  int64_t http_max_ms;         /* cap for http timeout 0; 0 = 1 h */
  int http_max_redirects;      /* 0 = don't follow; else up to this (<= 20) */
  struct cx_live *live;        /* optional: also gets every output byte as
                                  it is read (live output, issue 15) */
  const char *cgroup_dir;      /* a cgroup directory (v2, or a v1 hierarchy)
                                  this process may make children in: each
                                  cmd attempt then runs in its own child
                                  cgroup, and a timeout, kill or the end of
                                  the attempt ends every process in it, also
                                  those that left the session or double-
                                  forked. NULL = process group only. */
};

#define CX_EXEC_LIMIT_MAX (INT64_C(1) << 30) /* any one limit */

/* Per-attempt resource limits (setrlimit in the child); 0 = unchanged. */
struct cx_exec_limits {
  int64_t memory_mb; /* RLIMIT_AS, MiB of address space per process */
  int64_t nproc;     /* RLIMIT_NPROC: processes of the job's uid in all */
  int64_t cpu_s;     /* RLIMIT_CPU: CPU seconds per process (SIGXCPU at
                        the limit, SIGKILL one second later) */
  int64_t nofile;    /* RLIMIT_NOFILE: open files per process */
};

/* A cmd attempt. */
struct cx_exec_cmd {
  const char *command;          /* required, 1..CX_EXEC_COMMAND_MAX bytes */
  const struct cx_exec_kv *env; /* nenv pairs, names [A-Za-z_][A-Za-z0-9_]*,
                                   override the node's of the same name */
  size_t nenv;
  const char *workdir; /* NULL or "" = the node's cwd */
  int64_t timeout_ms;  /* 0 = none */
  int set_user;        /* 1: the child drops every supplementary group,
                          then setgid(gid), setuid(uid) before exec (the
                          caller resolves the user; needs root) */
  uid_t uid;
  gid_t gid;
  struct cx_exec_limits limits;
};

/* An http attempt. */
struct cx_exec_http {
  const char *url;                  /* http:// or https:// */
  const char *method;               /* NULL = "GET"; GET HEAD POST PUT
                                       PATCH DELETE OPTIONS */
  const struct cx_exec_kv *headers; /* nheaders pairs; token names, values
                                       without CR, LF or other controls
                                       (TAB allowed) */
  size_t nheaders;
  const char *body; /* body_len bytes (NULL when 0); without a
                       Content-Type header libcurl sends a body as
                       application/x-www-form-urlencoded */
  size_t body_len;
  int64_t timeout_ms; /* whole request; 0 = opts.http_max_ms */
};

/* What happened. Owned by the caller; cx_exec_result_free() releases the
 * output. */
struct cx_exec_result {
  enum cx_exec_status status;
  int exit_code;   /* cmd: the shell's exit status (0..255), 127 when the
                      child could not exec/chdir, -1 if it died of a
                      signal or never ran; http: the HTTP status, -1
                      for ERROR (no status), 0 for a timeout before
                      one */
  int term_signal; /* cmd: the signal that ended the shell, else 0 */
  int64_t start_ms, end_ms; /* wall clock, ms since the epoch */
  char *output;             /* captured output, NUL-terminated (the NUL is not
                               counted); may hold NULs; NULL only after an
                               ERROR -ENOMEM */
  size_t output_len;        /* <= the output limit */
  uint64_t output_total;    /* bytes the job wrote in all */
  pid_t pid, pgid;          /* cmd: the shell (pgid == pid); http: 0 */
  int leftovers;            /* cmd: 1 if processes of the group were still there
                               after the shell exited (they were then killed) */
  char error[CX_ERR_LEN];   /* why, for ERROR ("... Connection refused
                               (curl 7)" for http); also libcurl's reason
                               for an http TIMEOUT or a transfer cut after
                               the status (FAILED), or why a cmd's exit
                               status is unknown (FAILED: SIGCHLD ignored
                               by the process); else "" */
};

/* Called on the running thread right after the shell was exec'd (never
 * when the spawn failed), e.g. to write the proc key. The group may
 * already be gone when it runs. */
typedef void (*cx_exec_spawn_cb)(void *ctx, pid_t pid, pid_t pgid);

struct cx_exec; /* opaque attempt handle */

/* Makes a handle in *out. One handle runs one attempt at a time; it can be
 * reused for the next attempt (e.g. the retries of one run). Returns 0,
 * -ENOMEM, or -errno from eventfd(). */
int cx_exec_create(struct cx_exec **out);

/* Frees the handle (NULL allowed). No run may be in progress on it, and no
 * other thread may call cx_exec_kill() on it any more. */
void cx_exec_destroy(struct cx_exec *x);

/* Asks the attempt running on x to stop (SIGTERM to the group, SIGKILL
 * after the grace; an http transfer is aborted at once); the result is
 * KILLED. The request is sticky: a run started later on x returns KILLED
 * at once without spawning. Only the running thread sends signals, so a
 * kill can never hit a reused pid. Thread-safe and async-signal-safe. */
void cx_exec_kill(struct cx_exec *x);

/* 1 if cx_exec_kill() was called on x. Thread-safe. */
int cx_exec_killed(const struct cx_exec *x);

/* Runs one cmd attempt on the calling thread and waits for its end. opts
 * may be NULL (all defaults); on_spawn may be NULL. res is always filled
 * (free it with cx_exec_result_free, even after an error).
 * Returns 0 when the attempt was tried (status SUCCESS, FAILED, TIMEOUT or
 * KILLED; http also ERROR, see cx_exec_run_http), or negative with status ERROR
 * and the reason in res->error and err (optional, CX_ERR_LEN): CX_EPARSE /
 * CX_ETOOBIG for bad input naming the field, -ENOENT / -EACCES / ... when the
 * shell or the workdir could not be used (exit_code 127), -EMFILE, -ENOMEM,
 * -EAGAIN (fork). When it returns an error, on_spawn was not called.
 * Thread-safe (distinct x). */
int cx_exec_run_cmd(struct cx_exec *x, const struct cx_exec_opts *opts,
                    const struct cx_exec_cmd *cmd, cx_exec_spawn_cb on_spawn,
                    void *ctx, struct cx_exec_result *res, char *err);

/* Runs one http attempt; like cx_exec_run_cmd (no callback). A request
 * that failed before any status (refused, DNS, TLS, reset) returns 0 with
 * status ERROR, exit_code -1 and the reason in res->error; a timeout is
 * TIMEOUT. Errors (status ERROR, < 0): CX_EPARSE / CX_ETOOBIG for bad
 * input, -ENOMEM, CX_EUNAVAIL when libcurl cannot be set up. Thread-safe. */
int cx_exec_run_http(struct cx_exec *x, const struct cx_exec_opts *opts,
                     const struct cx_exec_http *req, struct cx_exec_result *res,
                     char *err);

/* Frees res->output (res may be NULL; safe to call twice). */
void cx_exec_result_free(struct cx_exec_result *res);

/* 1 if a live (not zombie) process is in process group pgid, 0 if none,
 * reading /proc when kill(-pgid, 0) alone cannot tell (zombies count as
 * present for kill(), and orphans may stay zombies a while when pid 1 is
 * slow to reap). Thread-safe. */
int cx_exec_group_alive(pid_t pgid);

/* The directory of this process's own cgroup: on the cgroup2 tree
 * (v1 = 0), or on the v1 hierarchy that has controller (v1 = 1, e.g.
 * "pids"), from /proc/self/mountinfo and /proc/self/cgroup. Returns 0, or
 * -ENOENT (not mounted / not found), -ENAMETOOLONG. Whether it is writable
 * is the caller's to try. */
int cx_exec_cgroup_find(int v1, const char *controller, char *out, size_t cap);

#endif
