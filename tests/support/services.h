/*
 * Real servers for integration tests: etcd (one member or an N-member
 * cluster) and MariaDB, started on loopback by the test that needs them.
 *
 *   struct cx_svc_etcd etcd;
 *   struct cx_svc_mariadb db;
 *   char err[CX_ERR_LEN];
 *   ASSERT_MSG(cx_svc_etcd_start(&etcd, NULL, err) == 0, "%s", err);
 *   ASSERT_MSG(cx_svc_mariadb_start(&db, NULL, err) == 0, "%s", err);
 *   ... etcd.endpoints ("http://127.0.0.1:P"), db.url
 *       ("mysql://cronix:secret@127.0.0.1:P/cronix_test") ...
 *   cx_svc_mariadb_destroy(&db);
 *   cx_svc_etcd_destroy(&etcd);
 *
 * Where things live. Every server gets its own directory under the test's
 * temporary directory ($CX_TEST_TMPDIR, which the runner sets and removes
 * afterwards; a program without it, e.g. a benchmark, gets one fresh
 * $TMPDIR/cx-svc.XXXXXX per process, left in place). A server's stdout and
 * stderr go to a log file in its directory; when a start fails, the error
 * names the log and quotes its tail, and the last 4 KiB of it are also
 * written to stderr (which the runner shows for a failing test).
 *
 * Nothing outlives the test. Servers stay in the test's process group (the
 * runner kills the group when the test ends, however it ends) and each
 * server child gets PR_SET_PDEATHSIG(SIGKILL) between fork and exec, so it
 * also dies if the process that started it dies. PDEATHSIG is tied to the
 * forking *thread*: start servers from the test's main thread.
 *
 * Ports. cx_svc_port_alloc() picks ports BELOW the kernel's ephemeral range
 * (net.ipv4.ip_local_port_range) and checks each by binding it on
 * 127.0.0.1; it falls back to binding port 0 only if that fails. Ports from
 * the ephemeral range could be taken, while a member is down, as the source
 * port of an outgoing connection (etcd peers reconnect constantly), and the
 * restart on "the same ports" would then fail. A port is never handed out
 * twice in one process. If a first start still loses a port race to another
 * process, the start is retried with fresh ports (up to 3 times).
 *
 * MariaDB setup. mariadb-install-db (--auth-root-authentication-method=
 * normal, --skip-test-db) takes 0.6-0.8 s with the small InnoDB sizes used
 * here (measured on the 2-core CI machine), and mariadbd is ready ~0.15 s
 * after exec, so every start initialises a fresh datadir: a per-machine
 * template directory would save well under a second per test and is not
 * worth its cross-process locking. The server runs with --no-defaults (no
 * /etc/mysql config), utf8mb4 defaults, --skip-log-bin, --skip-name-resolve,
 * innodb_flush_log_at_trx_commit=2 (committed rows survive a killed server,
 * not a killed machine). Root has no password and is reachable only through
 * the unix socket (cx_svc_mariadb_admin); the test user `cronix` (password
 * `secret`) has every privilege on database `cronix_test`, over TCP.
 *
 * Naming: everything is cx_svc_<service>_<verb> so that a later service
 * (e.g. cx_svc_smtp_start, on cx_svc_proc_start) fits in beside these.
 *
 * Link dependencies: libcurl, libmariadb and libc only (no Cronix module).
 * Errors: 0 ok, negative -errno or a CX_E* code; the optional err buffer
 * (CX_ERR_LEN bytes, may be NULL) gets a message naming what failed.
 * Thread-safety: port allocation and directory naming are thread-safe; a
 * given service struct must be used by one thread at a time.
 */
#ifndef CX_SERVICES_H
#define CX_SERVICES_H

#include <stddef.h>
#include <sys/types.h>

#include "util/util.h" /* CX_ERR_LEN and the CX_E* codes (header only) */

#define CX_SVC_PATH_LEN 512
#define CX_SVC_MAX_ARGS 40
#define CX_SVC_ETCD_MAX_MEMBERS 7

/* ---- helpers ------------------------------------------------------------- */

/* Returns a TCP port on 127.0.0.1 that was free when checked and that this
 * process has not handed out before, in *port. Errors: -EADDRINUSE when no
 * free port was found, -errno from socket(). */
int cx_svc_port_alloc(int *port, char *err);

/* 1 if a server could bind (with SO_REUSEADDR, as servers do) and listen on
 * 127.0.0.1:port now, i.e. nothing listens there; 0 if not. */
int cx_svc_port_is_free(int port);

/* One HTTP request with libcurl, no proxy. method is "GET", "POST", ...;
 * body may be NULL (no body). The response body goes NUL-terminated into
 * resp[resp_cap] (resp may be NULL when resp_cap is 0); a longer body is
 * cut and the call returns CX_ETOOBIG after filling resp. *status gets the
 * HTTP status (0 if no response header arrived). Errors: CX_EUNAVAIL on a
 * transport failure (refused, timeout; after a timeout resp still holds
 * what arrived, which samples a stream such as a watch), -ENOMEM.
 * libcurl is initialised on first use: make the first call (or any
 * cx_svc_*_start) before starting threads that use libcurl. */
int cx_svc_http(const char *method, const char *url, const char *body,
                long timeout_ms, long *status, char *resp, size_t resp_cap,
                char *err);
/* The same with "Authorization: Bearer <token>" (token NULL: none), for
 * the Cronix admin API. */
int cx_svc_http_auth(const char *method, const char *url, const char *token,
                     const char *body, long timeout_ms, long *status,
                     char *resp, size_t resp_cap, char *err);

/* Makes a new, empty directory <base>/<prefix>-<n> (base as described at
 * the top), mode 0700 (cronix refuses a data dir others can read), and
 * writes its path to out[cap]. */
int cx_svc_dir_make(const char *prefix, char *out, size_t cap, char *err);

/* Writes up to the last max_bytes of a file to stderr, with a header line
 * naming it. Missing files are reported as such. */
void cx_svc_log_dump(const char *path, size_t max_bytes);

/* ---- one child process --------------------------------------------------- */

/* A server child. Zero-initialise (or let a service's start do it); the
 * fields are read-only for callers. */
struct cx_svc_proc {
  pid_t pid;     /* > 0 while started and not yet reaped; 0 otherwise */
  int status;    /* waitpid() status of the last exit (valid if exited) */
  int exited;    /* 1 once a started child has been reaped */
  char name[32]; /* for messages, e.g. "etcd m1" */
  char log_path[CX_SVC_PATH_LEN];  /* stdout+stderr, appended across runs */
  char *argv[CX_SVC_MAX_ARGS + 1]; /* points into argbuf */
  char argbuf[8192];
};

/* Sets the program line of p: argv[0] is looked up in $PATH at start time
 * (or used as is when it holds a '/'). Copies the strings; at most
 * CX_SVC_MAX_ARGS of them. Errors: CX_ETOOBIG. Does not touch pid/status. */
int cx_svc_proc_set_argv(struct cx_svc_proc *p, const char *name,
                         const char *log_path, const char *const *argv,
                         char *err);

/* Forks and execs p->argv with stdin from /dev/null and stdout/stderr
 * appended to p->log_path, every other fd closed, signals reset, and
 * PR_SET_PDEATHSIG(SIGKILL). Returns after a successful exec (reported
 * through a close-on-exec pipe), not after the server is ready. Errors:
 * -EALREADY if running, -ENOENT if the program is not in $PATH, the
 * -errno of a failed open/fork/exec. */
int cx_svc_proc_start(struct cx_svc_proc *p, char *err);

/* 1 if p's child runs (not yet exited); reaps it if it has exited. */
int cx_svc_proc_alive(struct cx_svc_proc *p);

/* SIGTERM (and SIGCONT, in case it is paused), then waits up to grace_ms
 * for the exit; then SIGKILL. Always reaps the child before returning 0;
 * a no-op returning 0 when nothing runs. Errors: -ETIMEDOUT if even SIGKILL
 * did not end it within 10 s (p->pid is then kept). */
int cx_svc_proc_stop(struct cx_svc_proc *p, int grace_ms, char *err);

/* Sends sig to the running child (e.g. SIGSTOP/SIGCONT/SIGKILL) without
 * waiting. Errors: -ESRCH if nothing runs. */
int cx_svc_proc_signal(struct cx_svc_proc *p, int sig, char *err);

/* ---- etcd ---------------------------------------------------------------- */

/* Options for cx_svc_etcd_start; NULL or all-zero means the defaults. */
struct cx_svc_etcd_opts {
  int members; /* cluster size, 1..CX_SVC_ETCD_MAX_MEMBERS; 0 means 1 */
  /* --experimental-watch-progress-notify-interval, e.g. "500ms"; NULL
   * keeps etcd's default (10m). */
  const char *progress_notify_interval;
  int heartbeat_ms;      /* --heartbeat-interval; 0 = etcd's 100 */
  int election_ms;       /* --election-timeout; 0 = etcd's 1000 */
  int start_timeout_ms;  /* bound on each wait for readiness; 0 = 30000 */
  const char *log_level; /* etcd --log-level; NULL = "warn" */
};

struct cx_svc_etcd_member {
  char name[16]; /* "m0", "m1", ... */
  int client_port;
  int peer_port;
  char endpoint[64]; /* "http://127.0.0.1:<client_port>" */
  char data_dir[CX_SVC_PATH_LEN];
  struct cx_svc_proc proc;
};

/* Caller-allocated (it is large: keep it static or in the test's frame);
 * every field is read-only for callers. */
struct cx_svc_etcd {
  int n;                     /* number of members */
  int timeout_ms;            /* readiness bound in use */
  char dir[CX_SVC_PATH_LEN]; /* <tmp>/etcd-<k>; member i in dir/m<i> */
  char endpoints[CX_SVC_ETCD_MAX_MEMBERS * 64]; /* comma-separated */
  struct cx_svc_etcd_member m[CX_SVC_ETCD_MAX_MEMBERS];
};

/* Starts a new cluster of opts->members members (a fresh data dir each;
 * e is overwritten, so it must not hold running members) and waits until every
 * member answers GET /health with "health":"true" (bounded by
 * start_timeout_ms). On failure everything started is killed and the error
 * quotes the failing member's log. Errors: -EINVAL (bad options), -ENOENT (no
 * etcd binary), -ETIMEDOUT, CX_EUNAVAIL (a member exited), -errno. */
int cx_svc_etcd_start(struct cx_svc_etcd *e,
                      const struct cx_svc_etcd_opts *opts, char *err);

/* Stops every running member gracefully (SIGTERM, 10 s, SIGKILL) and reaps
 * it. Data dirs and ports are kept for a restart. */
int cx_svc_etcd_stop(struct cx_svc_etcd *e, char *err);

/* Stops the running members, starts all of them again on the same data
 * dirs and ports, and waits until all are healthy. */
int cx_svc_etcd_restart(struct cx_svc_etcd *e, char *err);

/* Member-level control for failure tests; i is 0..n-1 (else -EINVAL).
 * member_start starts a stopped member with its old data dir and ports
 * and waits only until it serves HTTP (GET /version), since a member
 * alone may have no quorum; use cx_svc_etcd_wait_healthy for "has a
 * leader". member_stop is graceful, member_kill is SIGKILL (a crash) and
 * reaps; pause/resume send SIGSTOP/SIGCONT (the member stays "running"). */
int cx_svc_etcd_member_start(struct cx_svc_etcd *e, int i, char *err);
int cx_svc_etcd_member_stop(struct cx_svc_etcd *e, int i, char *err);
int cx_svc_etcd_member_kill(struct cx_svc_etcd *e, int i, char *err);
int cx_svc_etcd_member_pause(struct cx_svc_etcd *e, int i, char *err);
int cx_svc_etcd_member_resume(struct cx_svc_etcd *e, int i, char *err);

/* Waits up to timeout_ms until member i (or, with i = -1, every running
 * member) answers GET /health with "health":"true". Errors: -ETIMEDOUT,
 * CX_EUNAVAIL if a member exited meanwhile. */
int cx_svc_etcd_wait_healthy(struct cx_svc_etcd *e, int i, int timeout_ms,
                             char *err);

/* Kills (SIGKILL) and reaps every member; files stay. Accepts NULL and an
 * already stopped cluster. */
void cx_svc_etcd_destroy(struct cx_svc_etcd *e);

/* ---- MariaDB ------------------------------------------------------------- */

struct cx_svc_mariadb_opts {
  int start_timeout_ms; /* bound on install and on readiness; 0 = 60000 */
};

/* Caller-allocated; every field is read-only for callers. */
struct cx_svc_mariadb {
  char host[16];     /* "127.0.0.1" */
  int port;          /* TCP port */
  char user[16];     /* "cronix" */
  char password[16]; /* "secret" */
  char database[32]; /* "cronix_test" */
  char url[128];     /* mysql://user:password@host:port/database */
  /* Unix socket for root (see _admin): dir/mysqld.sock, or, when that
   * path would pass the 107-byte limit, /tmp/cx-mdb-<pid>-<k>.sock (a
   * later start removes such files whose process is gone). */
  char socket[108];
  char dir[CX_SVC_PATH_LEN];     /* <tmp>/mariadb-<k> */
  char datadir[CX_SVC_PATH_LEN]; /* dir/data */
  int timeout_ms;
  struct cx_svc_proc proc;
};

/* Initialises a fresh datadir with mariadb-install-db, runs mariadbd in
 * the foreground on 127.0.0.1:<free port>, waits until it accepts
 * connections, creates database cronix_test and user cronix, and checks
 * that the user can log in over TCP. Errors: -ENOENT (binaries missing),
 * -ETIMEDOUT, CX_EUNAVAIL (server exited; the error quotes its log),
 * CX_EPROTO (setup SQL failed), -errno. */
int cx_svc_mariadb_start(struct cx_svc_mariadb *m,
                         const struct cx_svc_mariadb_opts *opts, char *err);

/* Graceful shutdown (SIGTERM, 30 s, SIGKILL), reaped; datadir kept. */
int cx_svc_mariadb_stop(struct cx_svc_mariadb *m, char *err);

/* Starts the stopped server again on the same datadir, socket and port and
 * waits until the test user can log in over TCP. Stops it first if it is
 * running. */
int cx_svc_mariadb_restart(struct cx_svc_mariadb *m, char *err);

/* SIGKILL (a crash) and reap; SIGSTOP / SIGCONT. */
int cx_svc_mariadb_kill(struct cx_svc_mariadb *m, char *err);
int cx_svc_mariadb_pause(struct cx_svc_mariadb *m, char *err);
int cx_svc_mariadb_resume(struct cx_svc_mariadb *m, char *err);

/* Runs one SQL statement as root over the unix socket (e.g. KILL, SET
 * GLOBAL, inspecting grants); a result set is read and discarded. Errors:
 * CX_EUNAVAIL (cannot connect), CX_EPROTO (the statement failed; err has
 * the server's message). */
int cx_svc_mariadb_admin(struct cx_svc_mariadb *m, const char *sql, char *err);

/* A client connection as the test user over TCP (libmariadb's MYSQL;
 * close with mysql_close): connect timeout 2 s, reads and writes 10 s.
 * NULL on failure, with the client's message in err. */
struct st_mysql *cx_svc_mariadb_connect(const struct cx_svc_mariadb *m,
                                        char *err);

/* Kills (SIGKILL) and reaps the server; files stay. Accepts NULL. */
void cx_svc_mariadb_destroy(struct cx_svc_mariadb *m);

#endif
