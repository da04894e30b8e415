/*
 * Real etcd and MariaDB servers for integration tests (see services.h for
 * the contract and the reasons behind ports, directories and timings).
 *
 * Layout: generic helpers (clock, files, ports, HTTP), the child process
 * layer (cx_svc_proc_*), then etcd, then MariaDB. Only libc, libcurl and
 * libmariadb are used, so any suite can link this file whatever Cronix
 * modules it links; no memory allocated here outlives a call.
 */
#include "support/services.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <mysql.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ETCD_STOP_GRACE_MS 10000
#define MARIADB_STOP_GRACE_MS 30000
#define KILL_WAIT_MS 10000
#define START_ATTEMPTS 3 /* first starts retried when a port was taken */
#define POLL_MS 50

/* ---- small helpers ------------------------------------------------------- */

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static void set_err(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(char *err, const char *fmt, ...)
{
  va_list ap;
  if (err == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(err, CX_ERR_LEN, fmt, ap);
  va_end(ap);
}

/* snprintf that reports truncation as CX_ETOOBIG. */
static int fmt_to(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fmt_to(char *out, size_t cap, const char *fmt, ...)
{
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(out, cap, fmt, ap);
  va_end(ap);
  return (n < 0 || (size_t)n >= cap) ? CX_ETOOBIG : 0;
}

/* Reads up to cap-1 bytes from the end of a file into out (NUL-ended).
 * Returns the number of bytes read, or -1 if the file cannot be read. */
static long read_tail(const char *path, char *out, size_t cap)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  long n = 0;
  if (fd < 0)
    return -1;
  if (fstat(fd, &st) == 0 && st.st_size > (off_t)(cap - 1))
    lseek(fd, st.st_size - (off_t)(cap - 1), SEEK_SET);
  while ((size_t)n < cap - 1) {
    ssize_t r = read(fd, out + n, cap - 1 - (size_t)n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += r;
  }
  out[n] = '\0';
  close(fd);
  return n;
}

void cx_svc_log_dump(const char *path, size_t max_bytes)
{
  char buf[16384];
  size_t cap = max_bytes + 1 < sizeof buf ? max_bytes + 1 : sizeof buf;
  long n = read_tail(path, buf, cap);
  if (n < 0) {
    fprintf(stderr, "---- %s: cannot read: %s\n", path, strerror(errno));
    return;
  }
  fprintf(stderr, "---- last %ld bytes of %s ----\n%s\n---- end of %s ----\n",
          n, path, buf, path);
  fflush(stderr);
}

static int log_contains(const char *path, const char *needle)
{
  char buf[16384];
  return read_tail(path, buf, sizeof buf) > 0 && strstr(buf, needle) != NULL;
}

/* Fails with "<what>; log <path>: ...<tail>" in err (the tail flattened to
 * one line and cut to what fits) and dumps the log's last 4 KiB to stderr. */
static int fail_with_log(char *err, int rc, const char *log_path,
                         const char *what)
{
  char tail[2048];
  long n = read_tail(log_path, tail, sizeof tail);
  if (n < 0)
    n = 0;
  tail[n] = '\0';
  for (long i = 0; i < n; i++)
    if (tail[i] == '\n' || tail[i] == '\r' || tail[i] == '\t')
      tail[i] = ' ';
  while (n > 0 && tail[n - 1] == ' ')
    tail[--n] = '\0';
  if (err != NULL) {
    size_t used, room;
    set_err(err, "%s; log %s: ", what, log_path);
    used = strlen(err);
    room = CX_ERR_LEN - 1 - used; /* bytes left for the tail */
    if ((size_t)n <= room)
      snprintf(err + used, CX_ERR_LEN - used, "%s", tail);
    else if (room > 3)
      snprintf(err + used, CX_ERR_LEN - used, "...%s",
               tail + n - (long)(room - 3));
  }
  cx_svc_log_dump(log_path, 4096);
  return rc;
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

static void rm_tree(const char *path)
{
  nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The directory all services of this process live under. */
static int base_dir(char *out, size_t cap, char *err)
{
  static char fallback[CX_SVC_PATH_LEN];
  const char *t = getenv("CX_TEST_TMPDIR");
  int rc = 0;

  if (t != NULL && t[0] != '\0') {
    if (fmt_to(out, cap, "%s", t) != 0) {
      set_err(err, "CX_TEST_TMPDIR too long");
      return CX_ETOOBIG;
    }
    return 0;
  }
  pthread_mutex_lock(&lock);
  if (fallback[0] == '\0') {
    const char *tmp = getenv("TMPDIR");
    char tmpl[CX_SVC_PATH_LEN];
    if (fmt_to(tmpl, sizeof tmpl, "%s/cx-svc.XXXXXX",
               tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp") != 0) {
      rc = CX_ETOOBIG;
      set_err(err, "TMPDIR too long");
    } else if (mkdtemp(tmpl) == NULL) {
      rc = -errno;
      set_err(err, "mkdtemp %s: %s", tmpl, strerror(errno));
    } else {
      memcpy(fallback, tmpl, sizeof fallback);
    }
  }
  if (rc == 0 && fmt_to(out, cap, "%s", fallback) != 0) {
    rc = CX_ETOOBIG;
    set_err(err, "service directory path too long");
  }
  pthread_mutex_unlock(&lock);
  return rc;
}

int cx_svc_dir_make(const char *prefix, char *out, size_t cap, char *err)
{
  static int counter;
  char base[CX_SVC_PATH_LEN];
  int rc = base_dir(base, sizeof base, err);
  if (rc != 0)
    return rc;
  for (int tries = 0; tries < 1000; tries++) {
    int k;
    pthread_mutex_lock(&lock);
    k = ++counter;
    pthread_mutex_unlock(&lock);
    if (fmt_to(out, cap, "%s/%s-%d", base, prefix, k) != 0) {
      set_err(err, "directory path for %s too long", prefix);
      return CX_ETOOBIG;
    }
    if (mkdir(out, 0700) == 0)
      return 0;
    if (errno != EEXIST) {
      rc = -errno;
      set_err(err, "mkdir %s: %s", out, strerror(errno));
      return rc;
    }
  }
  set_err(err, "no free directory name for %s under %s", prefix, base);
  return -EEXIST;
}

/* ---- ports --------------------------------------------------------------- */

#define MAX_HANDED 4096
static int handed[MAX_HANDED];
static int nhanded;
static uint64_t rng_state;

static int handed_has(int port)
{
  for (int i = 0; i < nhanded; i++)
    if (handed[i] == port)
      return 1;
  return 0;
}

/* Binds 127.0.0.1:port (0 = any) without SO_REUSEADDR, so a port with
 * connections lingering in TIME_WAIT counts as taken. Returns the bound
 * port, 0 if taken, or -errno. */
static int try_bind(int port)
{
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int got = 0;
  if (fd < 0)
    return -errno;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    got = ntohs(a.sin_port);
  close(fd);
  return got;
}

static int ephemeral_low(void)
{
  int low = 32768, high = 60999;
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
  if (f != NULL) {
    if (fscanf(f, "%d %d", &low, &high) != 2)
      low = 32768;
    fclose(f);
  }
  return low;
}

int cx_svc_port_alloc(int *port, char *err)
{
  int low = ephemeral_low(), result = 0, rc = 0;

  pthread_mutex_lock(&lock);
  if (rng_state == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rng_state = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^
                (uint64_t)ts.tv_sec ^ 0x9e3779b97f4a7c15ULL;
  }
  /* Random ports in [10000, low) first: never used as source ports. */
  for (int i = 0; i < 500 && result == 0 && low > 10100; i++) {
    int cand, r;
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    cand = 10000 + (int)(rng_state % (uint64_t)(low - 10000));
    if (handed_has(cand))
      continue;
    r = try_bind(cand);
    if (r < 0) {
      rc = r;
      break;
    }
    result = r;
  }
  for (int i = 0; i < 100 && result == 0 && rc == 0; i++) {
    int r = try_bind(0);
    if (r < 0)
      rc = r;
    else if (r > 0 && !handed_has(r))
      result = r;
  }
  if (result > 0 && nhanded < MAX_HANDED)
    handed[nhanded++] = result;
  pthread_mutex_unlock(&lock);

  if (rc < 0) {
    set_err(err, "port allocation: socket/bind: %s", strerror(-rc));
    return rc;
  }
  if (result == 0) {
    set_err(err, "port allocation: no free port on 127.0.0.1");
    return -EADDRINUSE;
  }
  *port = result;
  return 0;
}

int cx_svc_port_is_free(int port)
{
  struct sockaddr_in a;
  int one = 1, ok = 0;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 1) == 0)
    ok = 1;
  close(fd);
  return ok;
}

/* ---- HTTP ---------------------------------------------------------------- */

struct sink {
  char *buf;
  size_t cap, len;
  int cut;
};

static size_t sink_write(char *data, size_t size, size_t nmemb, void *arg)
{
  struct sink *s = arg;
  size_t n = size * nmemb;
  if (s->cap > 0) {
    size_t room = s->cap - 1 - s->len;
    size_t take = n < room ? n : room;
    memcpy(s->buf + s->len, data, take);
    s->len += take;
    s->buf[s->len] = '\0';
    if (take < n)
      s->cut = 1;
  } else if (n > 0) {
    s->cut = 1;
  }
  return n;
}

int cx_svc_http(const char *method, const char *url, const char *body,
                long timeout_ms, long *status, char *resp, size_t resp_cap,
                char *err)
{
  return cx_svc_http_auth(method, url, NULL, body, timeout_ms, status, resp,
                          resp_cap, err);
}

int cx_svc_http_auth(const char *method, const char *url, const char *token,
                     const char *body, long timeout_ms, long *status,
                     char *resp, size_t resp_cap, char *err)
{
  struct sink s = {resp, resp_cap, 0, 0};
  char cerr[CURL_ERROR_SIZE] = "";
  struct curl_slist *hdrs = NULL;
  CURL *h;
  CURLcode cc;
  int rc = 0;

  *status = 0;
  if (resp_cap > 0)
    resp[0] = '\0';
  h = curl_easy_init();
  if (h == NULL) {
    set_err(err, "curl_easy_init failed");
    return -ENOMEM;
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  if (token != NULL) {
    char auth[512];
    if (fmt_to(auth, sizeof auth, "Authorization: Bearer %s", token) != 0) {
      curl_easy_cleanup(h);
      set_err(err, "token too long");
      return CX_ETOOBIG;
    }
    hdrs = curl_slist_append(hdrs, auth);
  }
  if (body != NULL) {
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  if (hdrs != NULL)
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  else if (strcmp(method, "POST") == 0 && body == NULL)
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, ""); /* an empty body */

  cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  if (cc != CURLE_OK) {
    set_err(err, "%s %s: %s", method, url,
            cerr[0] != '\0' ? cerr : curl_easy_strerror(cc));
    rc = CX_EUNAVAIL;
  } else {
    if (s.cut) {
      set_err(err, "%s %s: response longer than %zu bytes", method, url,
              resp_cap > 0 ? resp_cap - 1 : 0);
      rc = CX_ETOOBIG;
    }
  }
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return rc;
}

/* ---- child processes ----------------------------------------------------- */

int cx_svc_proc_set_argv(struct cx_svc_proc *p, const char *name,
                         const char *log_path, const char *const *argv,
                         char *err)
{
  size_t used = 0;
  int n = 0;

  if (fmt_to(p->name, sizeof p->name, "%s", name) != 0 ||
      fmt_to(p->log_path, sizeof p->log_path, "%s", log_path) != 0) {
    set_err(err, "%s: name or log path too long", name);
    return CX_ETOOBIG;
  }
  for (; argv[n] != NULL; n++) {
    size_t len = strlen(argv[n]) + 1;
    if (n == CX_SVC_MAX_ARGS || used + len > sizeof p->argbuf) {
      set_err(err, "%s: command line too long (%d args)", name, n);
      p->argv[0] = NULL;
      return CX_ETOOBIG;
    }
    memcpy(p->argbuf + used, argv[n], len);
    p->argv[n] = p->argbuf + used;
    used += len;
  }
  p->argv[n] = NULL;
  return 0;
}

/* Resolves prog like execvp would, before fork (execvp is not safe to
 * call between fork and exec in a threaded process). */
static int find_program(const char *prog, char *out, size_t cap)
{
  const char *path = getenv("PATH");
  if (strchr(prog, '/') != NULL)
    return fmt_to(out, cap, "%s", prog) == 0 && access(out, X_OK) == 0
               ? 0
               : -ENOENT;
  if (path == NULL || path[0] == '\0')
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  while (*path != '\0') {
    const char *end = strchr(path, ':');
    size_t len = end != NULL ? (size_t)(end - path) : strlen(path);
    if (len > 0 && fmt_to(out, cap, "%.*s/%s", (int)len, path, prog) == 0 &&
        access(out, X_OK) == 0)
      return 0;
    path += len;
    if (*path == ':')
      path++;
  }
  return -ENOENT;
}

/* Between fork and exec: async-signal-safe calls only. */
static _Noreturn void child_exec(const char *path, char *const *argv,
                                 int nullfd, int logfd, int errfd, pid_t parent)
{
  struct sigaction dfl;
  sigset_t none;
  int e;

  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
    _exit(127); /* the parent died before PDEATHSIG was armed */
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &dfl, NULL);
  if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
    goto fail;
  for (int fd = 0; fd < 3; fd++)
    fcntl(fd, F_SETFD, 0); /* dup2(x, x) would keep FD_CLOEXEC */
  /* Everything else the test process holds (sockets, database handles)
   * must not leak into the server: mark it close-on-exec. */
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
    for (int fd = 3; fd < 4096; fd++)
      if (fd != errfd)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execv(path, argv);
fail:
  e = errno;
  if (write(errfd, &e, sizeof e) < 0)
    _exit(127);
  _exit(127);
}

int cx_svc_proc_start(struct cx_svc_proc *p, char *err)
{
  char path[PATH_MAX];
  int logfd = -1, nullfd = -1, pfd[2] = {-1, -1}, rc = 0, e = 0;
  sigset_t all, old;
  pid_t parent = getpid(), pid;
  ssize_t n;

  if (cx_svc_proc_alive(p)) {
    set_err(err, "%s: already running (pid %d)", p->name, (int)p->pid);
    return -EALREADY;
  }
  if (p->argv[0] == NULL) {
    set_err(err, "%s: no command set", p->name);
    return -EINVAL;
  }
  rc = find_program(p->argv[0], path, sizeof path);
  if (rc != 0) {
    set_err(err,
            "%s: program %s not found in PATH (install it with "
            "scripts/install-deps.sh test)",
            p->name, p->argv[0]);
    return rc;
  }
  logfd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (logfd < 0 || nullfd < 0 || pipe2(pfd, O_CLOEXEC) != 0) {
    rc = -errno;
    set_err(err, "%s: open %s or pipe: %s", p->name, p->log_path,
            strerror(errno));
    goto out;
  }
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid = fork();
  if (pid == 0)
    child_exec(path, p->argv, nullfd, logfd, pfd[1], parent);
  e = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    rc = -e;
    set_err(err, "%s: fork: %s", p->name, strerror(e));
    goto out;
  }
  close(pfd[1]);
  pfd[1] = -1;
  do
    n = read(pfd[0], &e, sizeof e);
  while (n < 0 && errno == EINTR);
  if (n == (ssize_t)sizeof e) { /* exec failed; the child has exited */
    waitpid(pid, NULL, 0);
    rc = -e;
    set_err(err, "%s: exec %s: %s", p->name, path, strerror(e));
    goto out;
  }
  p->pid = pid;
  p->exited = 0;
  p->status = 0;
out:
  if (logfd >= 0)
    close(logfd);
  if (nullfd >= 0)
    close(nullfd);
  if (pfd[0] >= 0)
    close(pfd[0]);
  if (pfd[1] >= 0)
    close(pfd[1]);
  return rc;
}

int cx_svc_proc_alive(struct cx_svc_proc *p)
{
  int st;
  pid_t r;
  if (p->pid <= 0)
    return 0;
  do
    r = waitpid(p->pid, &st, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0)
    return 1;
  if (r == p->pid) {
    p->status = st;
    p->exited = 1;
  }
  p->pid = 0; /* reaped now, or not our child any more (ECHILD) */
  return 0;
}

static int wait_exit(struct cx_svc_proc *p, int ms)
{
  int64_t deadline = now_ms() + ms;
  for (;;) {
    if (!cx_svc_proc_alive(p))
      return 1;
    if (now_ms() >= deadline)
      return 0;
    sleep_ms(10);
  }
}

int cx_svc_proc_stop(struct cx_svc_proc *p, int grace_ms, char *err)
{
  if (!cx_svc_proc_alive(p))
    return 0;
  kill(p->pid, SIGTERM);
  kill(p->pid, SIGCONT); /* a paused server must run to see SIGTERM */
  if (wait_exit(p, grace_ms))
    return 0;
  kill(p->pid, SIGKILL);
  if (wait_exit(p, KILL_WAIT_MS))
    return 0;
  set_err(err, "%s: pid %d survived SIGKILL for %d ms", p->name, (int)p->pid,
          KILL_WAIT_MS);
  return -ETIMEDOUT;
}

int cx_svc_proc_signal(struct cx_svc_proc *p, int sig, char *err)
{
  if (!cx_svc_proc_alive(p)) {
    set_err(err, "%s: not running", p->name);
    return -ESRCH;
  }
  if (kill(p->pid, sig) != 0) {
    int rc = -errno;
    set_err(err, "%s: kill(%d, %d): %s", p->name, (int)p->pid, sig,
            strerror(errno));
    return rc;
  }
  return 0;
}

/* Fails because p exited while we waited for it to become ready. */
static int fail_exited(struct cx_svc_proc *p, char *err)
{
  char what[160];
  if (WIFSIGNALED(p->status))
    snprintf(what, sizeof what, "%s exited (signal %d) before it was ready",
             p->name, WTERMSIG(p->status));
  else
    snprintf(what, sizeof what, "%s exited (status %d) before it was ready",
             p->name, WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1);
  return fail_with_log(err, CX_EUNAVAIL, p->log_path, what);
}

static int fail_timeout(struct cx_svc_proc *p, int ms, const char *waiting,
                        char *err)
{
  char what[200];
  snprintf(what, sizeof what, "%s not ready after %d ms (%s)", p->name, ms,
           waiting);
  return fail_with_log(err, -ETIMEDOUT, p->log_path, what);
}

static int port_lost(const struct cx_svc_proc *p)
{
  return log_contains(p->log_path, "ddress already in use");
}

/* ---- etcd ---------------------------------------------------------------- */

static int etcd_check_index(const struct cx_svc_etcd *e, int i, char *err)
{
  if (e == NULL || i < 0 || i >= e->n) {
    set_err(err, "etcd member index %d out of range", i);
    return -EINVAL;
  }
  return 0;
}

/* GET path on member i; 1 if the reply is 200 and contains want. */
static int etcd_probe(const struct cx_svc_etcd_member *m, const char *path,
                      const char *want)
{
  char url[128], body[512];
  long status = 0;
  snprintf(url, sizeof url, "%s%s", m->endpoint, path);
  if (cx_svc_http("GET", url, NULL, 1000, &status, body, sizeof body, NULL) !=
      0)
    return 0;
  return status == 200 && strstr(body, want) != NULL;
}

static int etcd_wait(struct cx_svc_etcd *e, int i, int timeout_ms,
                     const char *path, const char *want, char *err)
{
  int64_t deadline = now_ms() + timeout_ms;
  int ready[CX_SVC_ETCD_MAX_MEMBERS] = {0};
  /* With i = -1, the members running now; one stopped on purpose is not
   * waited for, one that dies while we wait fails the wait. */
  for (int k = 0; k < e->n; k++)
    ready[k] = i >= 0 ? k != i : !cx_svc_proc_alive(&e->m[k].proc);
  for (;;) {
    int pending = 0, last = -1;
    for (int k = 0; k < e->n; k++) {
      struct cx_svc_etcd_member *m = &e->m[k];
      if (ready[k])
        continue;
      if (!cx_svc_proc_alive(&m->proc))
        return fail_exited(&m->proc, err);
      if (etcd_probe(m, path, want))
        ready[k] = 1;
      else
        pending++, last = k;
    }
    if (pending == 0)
      return 0;
    if (now_ms() >= deadline) {
      char waiting[96];
      snprintf(waiting, sizeof waiting, "GET %s did not return %s", path, want);
      return fail_timeout(&e->m[last].proc, timeout_ms, waiting, err);
    }
    sleep_ms(POLL_MS);
  }
}

int cx_svc_etcd_wait_healthy(struct cx_svc_etcd *e, int i, int timeout_ms,
                             char *err)
{
  if (i != -1 && etcd_check_index(e, i, err) != 0)
    return -EINVAL;
  return etcd_wait(e, i, timeout_ms, "/health", "\"health\":\"true\"", err);
}

static int valid_token(const char *s, size_t max)
{
  size_t n = strlen(s);
  if (n == 0 || n > max)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '.'))
      return 0;
  return 1;
}

/* Picks ports and writes each member's command line (data dirs empty). */
static int etcd_configure(struct cx_svc_etcd *e,
                          const struct cx_svc_etcd_opts *o, int attempt,
                          char *err)
{
  char cluster[CX_SVC_ETCD_MAX_MEMBERS * 48] = "", token[64];
  int rc;

  snprintf(token, sizeof token, "cx-%d-%lld-%d", (int)getpid(),
           (long long)now_ms(), attempt);
  for (int i = 0; i < e->n; i++) {
    struct cx_svc_etcd_member *m = &e->m[i];
    size_t len = strlen(cluster);
    if ((rc = cx_svc_port_alloc(&m->client_port, err)) != 0 ||
        (rc = cx_svc_port_alloc(&m->peer_port, err)) != 0)
      return rc;
    snprintf(m->name, sizeof m->name, "m%d", i);
    snprintf(m->endpoint, sizeof m->endpoint, "http://127.0.0.1:%d",
             m->client_port);
    snprintf(cluster + len, sizeof cluster - len, "%s%s=http://127.0.0.1:%d",
             i > 0 ? "," : "", m->name, m->peer_port);
  }
  e->endpoints[0] = '\0';
  for (int i = 0; i < e->n; i++) {
    struct cx_svc_etcd_member *m = &e->m[i];
    char mdir[CX_SVC_PATH_LEN], log[CX_SVC_PATH_LEN], name[32];
    char a_name[32], a_data[CX_SVC_PATH_LEN + 64], a_lc[96], a_ac[96], a_lp[96],
        a_ap[96], a_ic[sizeof cluster + 32], a_tok[96], a_ll[48], a_hb[48],
        a_el[48], a_pn[96];
    const char *argv[CX_SVC_MAX_ARGS + 1];
    int n = 0;
    size_t len = strlen(e->endpoints);

    snprintf(e->endpoints + len, sizeof e->endpoints - len, "%s%s",
             i > 0 ? "," : "", m->endpoint);
    if (fmt_to(mdir, sizeof mdir, "%s/%s", e->dir, m->name) != 0 ||
        fmt_to(m->data_dir, sizeof m->data_dir, "%s/data", mdir) != 0 ||
        fmt_to(log, sizeof log, "%s/etcd.log", mdir) != 0) {
      set_err(err, "etcd: directory path too long: %s", e->dir);
      return CX_ETOOBIG;
    }
    if (mkdir(mdir, 0755) != 0 && errno != EEXIST) {
      rc = -errno;
      set_err(err, "mkdir %s: %s", mdir, strerror(errno));
      return rc;
    }
    snprintf(name, sizeof name, "etcd %s", m->name);
    snprintf(a_name, sizeof a_name, "--name=%s", m->name);
    snprintf(a_data, sizeof a_data, "--data-dir=%s", m->data_dir);
    snprintf(a_lc, sizeof a_lc, "--listen-client-urls=%s", m->endpoint);
    snprintf(a_ac, sizeof a_ac, "--advertise-client-urls=%s", m->endpoint);
    snprintf(a_lp, sizeof a_lp, "--listen-peer-urls=http://127.0.0.1:%d",
             m->peer_port);
    snprintf(a_ap, sizeof a_ap,
             "--initial-advertise-peer-urls=http://127.0.0.1:%d", m->peer_port);
    snprintf(a_ic, sizeof a_ic, "--initial-cluster=%s", cluster);
    snprintf(a_tok, sizeof a_tok, "--initial-cluster-token=%s", token);
    snprintf(a_ll, sizeof a_ll, "--log-level=%s",
             o->log_level != NULL ? o->log_level : "warn");
    argv[n++] = "etcd";
    argv[n++] = a_name;
    argv[n++] = a_data;
    argv[n++] = a_lc;
    argv[n++] = a_ac;
    argv[n++] = a_lp;
    argv[n++] = a_ap;
    argv[n++] = a_ic;
    argv[n++] = "--initial-cluster-state=new";
    argv[n++] = a_tok;
    argv[n++] = "--logger=zap";
    argv[n++] = "--log-outputs=stderr";
    argv[n++] = a_ll;
    if (o->heartbeat_ms > 0) {
      snprintf(a_hb, sizeof a_hb, "--heartbeat-interval=%d", o->heartbeat_ms);
      argv[n++] = a_hb;
    }
    if (o->election_ms > 0) {
      snprintf(a_el, sizeof a_el, "--election-timeout=%d", o->election_ms);
      argv[n++] = a_el;
    }
    if (o->progress_notify_interval != NULL) {
      snprintf(a_pn, sizeof a_pn,
               "--experimental-watch-progress-notify-interval=%s",
               o->progress_notify_interval);
      argv[n++] = a_pn;
    }
    argv[n] = NULL;
    rc = cx_svc_proc_set_argv(&m->proc, name, log, argv, err);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static void etcd_kill_all(struct cx_svc_etcd *e)
{
  for (int i = 0; i < e->n; i++) {
    if (cx_svc_proc_alive(&e->m[i].proc)) {
      kill(e->m[i].proc.pid, SIGKILL);
      wait_exit(&e->m[i].proc, KILL_WAIT_MS);
    }
  }
}

int cx_svc_etcd_start(struct cx_svc_etcd *e,
                      const struct cx_svc_etcd_opts *opts, char *err)
{
  struct cx_svc_etcd_opts o = {0};
  int rc = 0;

  if (opts != NULL)
    o = *opts;
  memset(e, 0, sizeof *e);
  e->n = o.members == 0 ? 1 : o.members;
  e->timeout_ms = o.start_timeout_ms > 0 ? o.start_timeout_ms : 30000;
  if (e->n < 1 || e->n > CX_SVC_ETCD_MAX_MEMBERS || o.heartbeat_ms < 0 ||
      o.election_ms < 0 ||
      (o.progress_notify_interval != NULL &&
       !valid_token(o.progress_notify_interval, 16)) ||
      (o.log_level != NULL && !valid_token(o.log_level, 8))) {
    set_err(err,
            "etcd options: members must be 1..%d, intervals >= 0, "
            "durations like \"500ms\"",
            CX_SVC_ETCD_MAX_MEMBERS);
    e->n = 0;
    return -EINVAL;
  }
  rc = cx_svc_dir_make("etcd", e->dir, sizeof e->dir, err);
  if (rc != 0)
    return rc;
  for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    int lost = 0;
    rc = etcd_configure(e, &o, attempt, err);
    for (int i = 0; rc == 0 && i < e->n; i++)
      rc = cx_svc_proc_start(&e->m[i].proc, err);
    if (rc == 0)
      rc = cx_svc_etcd_wait_healthy(e, -1, e->timeout_ms, err);
    if (rc == 0)
      return 0;
    etcd_kill_all(e);
    for (int i = 0; i < e->n; i++)
      lost |= e->m[i].proc.argv[0] != NULL && port_lost(&e->m[i].proc);
    if (!lost || attempt == START_ATTEMPTS)
      break;
    /* A port was taken between allocation and bind: fresh cluster. */
    for (int i = 0; i < e->n; i++) {
      char old[CX_SVC_PATH_LEN + 64];
      snprintf(old, sizeof old, "%s.attempt%d", e->m[i].proc.log_path, attempt);
      rename(e->m[i].proc.log_path, old);
      rm_tree(e->m[i].data_dir);
      memset(&e->m[i].proc, 0, sizeof e->m[i].proc);
    }
  }
  return rc;
}

int cx_svc_etcd_member_start(struct cx_svc_etcd *e, int i, char *err)
{
  int rc = etcd_check_index(e, i, err);
  if (rc != 0)
    return rc;
  rc = cx_svc_proc_start(&e->m[i].proc, err);
  if (rc != 0)
    return rc;
  return etcd_wait(e, i, e->timeout_ms, "/version", "etcdserver", err);
}

int cx_svc_etcd_member_stop(struct cx_svc_etcd *e, int i, char *err)
{
  int rc = etcd_check_index(e, i, err);
  return rc != 0 ? rc
                 : cx_svc_proc_stop(&e->m[i].proc, ETCD_STOP_GRACE_MS, err);
}

int cx_svc_etcd_member_kill(struct cx_svc_etcd *e, int i, char *err)
{
  int rc = etcd_check_index(e, i, err);
  if (rc != 0)
    return rc;
  rc = cx_svc_proc_signal(&e->m[i].proc, SIGKILL, err);
  if (rc == 0 && !wait_exit(&e->m[i].proc, KILL_WAIT_MS)) {
    set_err(err, "%s: survived SIGKILL", e->m[i].proc.name);
    rc = -ETIMEDOUT;
  }
  return rc;
}

int cx_svc_etcd_member_pause(struct cx_svc_etcd *e, int i, char *err)
{
  int rc = etcd_check_index(e, i, err);
  return rc != 0 ? rc : cx_svc_proc_signal(&e->m[i].proc, SIGSTOP, err);
}

int cx_svc_etcd_member_resume(struct cx_svc_etcd *e, int i, char *err)
{
  int rc = etcd_check_index(e, i, err);
  return rc != 0 ? rc : cx_svc_proc_signal(&e->m[i].proc, SIGCONT, err);
}

int cx_svc_etcd_stop(struct cx_svc_etcd *e, char *err)
{
  int rc = 0;
  for (int i = 0; i < e->n; i++) {
    int r = cx_svc_proc_stop(&e->m[i].proc, ETCD_STOP_GRACE_MS, err);
    if (r != 0 && rc == 0)
      rc = r;
  }
  return rc;
}

int cx_svc_etcd_restart(struct cx_svc_etcd *e, char *err)
{
  int rc = cx_svc_etcd_stop(e, err);
  for (int i = 0; rc == 0 && i < e->n; i++)
    rc = cx_svc_proc_start(&e->m[i].proc, err);
  if (rc == 0)
    rc = cx_svc_etcd_wait_healthy(e, -1, e->timeout_ms, err);
  return rc;
}

void cx_svc_etcd_destroy(struct cx_svc_etcd *e)
{
  if (e != NULL)
    etcd_kill_all(e);
}

/* ---- MariaDB ------------------------------------------------------------- */

static int current_user(char *out, size_t cap, char *err)
{
  struct passwd pw, *res = NULL;
  char buf[4096];
  int r = getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res);
  if (r != 0 || res == NULL) {
    set_err(err, "no passwd entry for uid %d", (int)geteuid());
    return r != 0 ? -r : -ENOENT;
  }
  if (fmt_to(out, cap, "%s", pw.pw_name) != 0) {
    set_err(err, "user name too long");
    return CX_ETOOBIG;
  }
  return 0;
}

/* Opens a connection: over the unix socket as root, or over TCP as the
 * test user. NULL on failure, with the client's message in err. */
static MYSQL *mdb_connect(const struct cx_svc_mariadb *m, int as_root,
                          char *err)
{
  unsigned int ctimeout = 2, rwtimeout = 10;
  MYSQL *h = mysql_init(NULL);
  MYSQL *ok;
  if (h == NULL) {
    set_err(err, "mysql_init failed");
    return NULL;
  }
  mysql_options(h, MYSQL_OPT_CONNECT_TIMEOUT, &ctimeout);
  mysql_options(h, MYSQL_OPT_READ_TIMEOUT, &rwtimeout);
  mysql_options(h, MYSQL_OPT_WRITE_TIMEOUT, &rwtimeout);
  if (as_root)
    ok = mysql_real_connect(h, "localhost", "root", "", NULL, 0, m->socket, 0);
  else
    ok = mysql_real_connect(h, m->host, m->user, m->password, m->database,
                            (unsigned)m->port, NULL, 0);
  if (ok == NULL) {
    set_err(err, "connect to MariaDB %s: %s", as_root ? m->socket : m->url,
            mysql_error(h));
    mysql_close(h);
    return NULL;
  }
  return h;
}

MYSQL *cx_svc_mariadb_connect(const struct cx_svc_mariadb *m, char *err)
{
  return mdb_connect(m, 0, err);
}

static int mdb_query(MYSQL *h, const char *sql, char *err)
{
  MYSQL_RES *res;
  if (mysql_query(h, sql) != 0) {
    set_err(err, "MariaDB: %s: %s", sql, mysql_error(h));
    return CX_EPROTO;
  }
  res = mysql_store_result(h);
  if (res != NULL)
    mysql_free_result(res);
  return 0;
}

int cx_svc_mariadb_admin(struct cx_svc_mariadb *m, const char *sql, char *err)
{
  MYSQL *h = mdb_connect(m, 1, err);
  int rc;
  if (h == NULL)
    return CX_EUNAVAIL;
  rc = mdb_query(h, sql, err);
  mysql_close(h);
  return rc;
}

/* Waits until a connection (root over the socket, or the test user over
 * TCP) succeeds, failing early if the server exits. */
static int mdb_wait(struct cx_svc_mariadb *m, int as_root, char *err)
{
  int64_t deadline = now_ms() + m->timeout_ms;
  char last[CX_ERR_LEN] = "";
  for (;;) {
    MYSQL *h;
    if (!cx_svc_proc_alive(&m->proc))
      return fail_exited(&m->proc, err);
    h = mdb_connect(m, as_root, last);
    if (h != NULL) {
      mysql_close(h);
      return 0;
    }
    if (now_ms() >= deadline)
      return fail_timeout(&m->proc, m->timeout_ms, last, err);
    sleep_ms(POLL_MS);
  }
}

/* Runs mariadb-install-db into m->datadir, bounded by m->timeout_ms. */
static int mdb_install(struct cx_svc_mariadb *m, const char *user, char *err)
{
  struct cx_svc_proc inst;
  char a_dd[CX_SVC_PATH_LEN + 64], a_user[96], log[CX_SVC_PATH_LEN];
  char a_tmp[CX_SVC_PATH_LEN + 64];
  /* Its own tmpdir: a starting mariadbd deletes every "#sql*" file in its
   * tmpdir, so servers sharing /tmp destroy each other's temporary tables
   * (seen as "Error on delete of '/tmp/#sql-temptable-...'"). */
  const char *argv[] = {"mariadb-install-db",
                        "--no-defaults",
                        a_dd,
                        a_tmp,
                        "--auth-root-authentication-method=normal",
                        "--skip-test-db",
                        a_user,
                        "--skip-name-resolve",
                        "--innodb-buffer-pool-size=16M",
                        "--innodb-log-file-size=4M",
                        "--skip-log-bin",
                        NULL};
  int rc;

  memset(&inst, 0, sizeof inst);
  snprintf(a_dd, sizeof a_dd, "--datadir=%s", m->datadir);
  snprintf(a_tmp, sizeof a_tmp, "--tmpdir=%s", m->dir);
  snprintf(a_user, sizeof a_user, "--user=%s", user);
  if (fmt_to(log, sizeof log, "%s/install.log", m->dir) != 0) {
    set_err(err, "MariaDB directory path too long");
    return CX_ETOOBIG;
  }
  rc = cx_svc_proc_set_argv(&inst, "mariadb-install-db", log, argv, err);
  if (rc == 0)
    rc = cx_svc_proc_start(&inst, err);
  if (rc != 0)
    return rc;
  if (!wait_exit(&inst, m->timeout_ms)) {
    cx_svc_proc_stop(&inst, 1000, NULL);
    return fail_timeout(&inst, m->timeout_ms, "install did not finish", err);
  }
  if (!WIFEXITED(inst.status) || WEXITSTATUS(inst.status) != 0)
    return fail_with_log(err, CX_EUNAVAIL, log, "mariadb-install-db failed");
  return 0;
}

static int mdb_configure(struct cx_svc_mariadb *m, const char *user, char *err)
{
  char a_dd[CX_SVC_PATH_LEN + 64], a_sock[128], a_port[32], a_user[96],
      a_pid[CX_SVC_PATH_LEN + 64], a_tmp[CX_SVC_PATH_LEN + 64],
      log[CX_SVC_PATH_LEN];
  const char *argv[] = {"mariadbd",
                        "--no-defaults",
                        a_dd,
                        a_sock,
                        a_port,
                        "--bind-address=127.0.0.1",
                        a_user,
                        a_pid,
                        a_tmp,
                        "--skip-log-bin",
                        "--skip-name-resolve",
                        "--innodb-buffer-pool-size=16M",
                        "--innodb-log-file-size=4M",
                        "--innodb-flush-log-at-trx-commit=2",
                        "--character-set-server=utf8mb4",
                        "--collation-server=utf8mb4_general_ci",
                        NULL};
  int rc = cx_svc_port_alloc(&m->port, err);
  if (rc != 0)
    return rc;
  snprintf(m->url, sizeof m->url, "mysql://%s:%s@%s:%d/%s", m->user,
           m->password, m->host, m->port, m->database);
  snprintf(a_dd, sizeof a_dd, "--datadir=%s", m->datadir);
  snprintf(a_sock, sizeof a_sock, "--socket=%s", m->socket);
  snprintf(a_port, sizeof a_port, "--port=%d", m->port);
  snprintf(a_user, sizeof a_user, "--user=%s", user);
  snprintf(a_pid, sizeof a_pid, "--pid-file=%s/mariadbd.pid", m->dir);
  snprintf(a_tmp, sizeof a_tmp, "--tmpdir=%s", m->dir);
  if (fmt_to(log, sizeof log, "%s/mariadbd.log", m->dir) != 0) {
    set_err(err, "MariaDB directory path too long");
    return CX_ETOOBIG;
  }
  return cx_svc_proc_set_argv(&m->proc, "mariadbd", log, argv, err);
}

/* The test database and user; idempotent. */
static int mdb_bootstrap(struct cx_svc_mariadb *m, char *err)
{
  char sql[3][256];
  MYSQL *h = mdb_connect(m, 1, err);
  int rc = 0;
  if (h == NULL)
    return CX_EUNAVAIL;
  snprintf(sql[0], sizeof sql[0],
           "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4",
           m->database);
  snprintf(sql[1], sizeof sql[1],
           "CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", m->user,
           m->password);
  snprintf(sql[2], sizeof sql[2], "GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'%%'",
           m->database, m->user);
  for (int i = 0; rc == 0 && i < 3; i++)
    rc = mdb_query(h, sql[i], err);
  mysql_close(h);
  return rc;
}

#define SHORT_SOCK_DIR "/tmp"
#define SHORT_SOCK_PREFIX SHORT_SOCK_DIR "/cx-mdb-"

/* Fallback sockets of processes that are gone (a killed test cannot clean
 * up after its server) are removed by the next start that needs one. */
static void remove_stale_sockets(void)
{
  const char *name_prefix = SHORT_SOCK_PREFIX + sizeof SHORT_SOCK_DIR;
  DIR *d = opendir(SHORT_SOCK_DIR);
  struct dirent *de;
  if (d == NULL)
    return;
  while ((de = readdir(d)) != NULL) {
    char path[300], *end;
    long pid;
    if (strncmp(de->d_name, name_prefix, strlen(name_prefix)) != 0)
      continue;
    errno = 0;
    pid = strtol(de->d_name + strlen(name_prefix), &end, 10);
    if (errno != 0 || pid <= 0 || pid > INT_MAX || *end != '-')
      continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue;
    snprintf(path, sizeof path, "%s/%s", SHORT_SOCK_DIR, de->d_name);
    unlink(path);
  }
  closedir(d);
}

int cx_svc_mariadb_start(struct cx_svc_mariadb *m,
                         const struct cx_svc_mariadb_opts *opts, char *err)
{
  static int sock_counter;
  char user[64];
  int rc;

  memset(m, 0, sizeof *m);
  m->timeout_ms = opts != NULL && opts->start_timeout_ms > 0
                      ? opts->start_timeout_ms
                      : 60000;
  snprintf(m->host, sizeof m->host, "127.0.0.1");
  snprintf(m->user, sizeof m->user, "cronix");
  snprintf(m->password, sizeof m->password, "secret");
  snprintf(m->database, sizeof m->database, "cronix_test");
  rc = current_user(user, sizeof user, err);
  if (rc == 0)
    rc = cx_svc_dir_make("mariadb", m->dir, sizeof m->dir, err);
  if (rc != 0)
    return rc;
  if (fmt_to(m->datadir, sizeof m->datadir, "%s/data", m->dir) != 0) {
    set_err(err, "MariaDB directory path too long");
    return CX_ETOOBIG;
  }
  /* A unix socket path has at most 107 bytes; with a long TMPDIR or test
   * name, fall back to a short name in /tmp (mariadbd removes it on a
   * clean shutdown and replaces a stale one on start). */
  if (fmt_to(m->socket, sizeof m->socket, "%s/mysqld.sock", m->dir) != 0) {
    int k;
    pthread_mutex_lock(&lock);
    k = ++sock_counter;
    pthread_mutex_unlock(&lock);
    remove_stale_sockets();
    snprintf(m->socket, sizeof m->socket, "%s%d-%d.sock", SHORT_SOCK_PREFIX,
             (int)getpid(), k);
  }
  rc = mdb_install(m, user, err);
  for (int attempt = 1; rc == 0 && attempt <= START_ATTEMPTS; attempt++) {
    rc = mdb_configure(m, user, err);
    if (rc == 0)
      rc = cx_svc_proc_start(&m->proc, err);
    if (rc == 0)
      rc = mdb_wait(m, 1, err);
    if (rc == 0)
      rc = mdb_bootstrap(m, err);
    if (rc == 0)
      rc = mdb_wait(m, 0, err); /* the user can log in over TCP */
    if (rc == 0)
      return 0;
    cx_svc_mariadb_destroy(m);
    if (attempt == START_ATTEMPTS || !port_lost(&m->proc))
      break;
    char old[CX_SVC_PATH_LEN + 64];
    snprintf(old, sizeof old, "%s.attempt%d", m->proc.log_path, attempt);
    rename(m->proc.log_path, old);
    rc = 0;
  }
  return rc;
}

int cx_svc_mariadb_stop(struct cx_svc_mariadb *m, char *err)
{
  return cx_svc_proc_stop(&m->proc, MARIADB_STOP_GRACE_MS, err);
}

int cx_svc_mariadb_restart(struct cx_svc_mariadb *m, char *err)
{
  int rc = cx_svc_mariadb_stop(m, err);
  if (rc == 0)
    rc = cx_svc_proc_start(&m->proc, err);
  if (rc == 0)
    rc = mdb_wait(m, 0, err);
  return rc;
}

int cx_svc_mariadb_kill(struct cx_svc_mariadb *m, char *err)
{
  int rc = cx_svc_proc_signal(&m->proc, SIGKILL, err);
  if (rc == 0 && !wait_exit(&m->proc, KILL_WAIT_MS)) {
    set_err(err, "mariadbd survived SIGKILL");
    rc = -ETIMEDOUT;
  }
  return rc;
}

int cx_svc_mariadb_pause(struct cx_svc_mariadb *m, char *err)
{
  return cx_svc_proc_signal(&m->proc, SIGSTOP, err);
}

int cx_svc_mariadb_resume(struct cx_svc_mariadb *m, char *err)
{
  return cx_svc_proc_signal(&m->proc, SIGCONT, err);
}

void cx_svc_mariadb_destroy(struct cx_svc_mariadb *m)
{
  if (m == NULL)
    return;
  if (cx_svc_proc_alive(&m->proc)) {
    kill(m->proc.pid, SIGKILL);
    wait_exit(&m->proc, KILL_WAIT_MS);
  }
  if (m->socket[0] != '\0' && m->proc.pid == 0)
    unlink(m->socket); /* a killed server leaves its socket file */
}
