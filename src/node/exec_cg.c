/*
 * node/exec: one cgroup per cmd attempt (see exec.h, opts.cgroup_dir). A
 * process group is left by setsid() and a double fork re-parents to init,
 * but nothing a job can do without privilege takes a process out of its
 * cgroup, so the cgroup is the run: it is listed, signalled and killed as
 * a whole. Works on a cgroup2 tree and on any v1 hierarchy (both list
 * members in cgroup.procs; only v2 has cgroup.kill).
 */
#include "node/exec-int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_COMP "exec"
#define PROCS_READ_MAX (1024 * 1024) /* a bounded look at cgroup.procs */
#define KILL_ROUNDS 100 /* pid-by-pid SIGKILL passes (no cgroup.kill) */
#define RMDIR_TRIES 50  /* x 10 ms: exiting members leave a moment late */

static atomic_ullong cg_seq;

int cx__cg_create(struct cx__cg *cg, const char *parent, char *why)
{
  char file[sizeof cg->path + 32];
  int fd;

  cg->path[0] = '\0';
  cg->procs_fd = -1;
  int n = snprintf(cg->path, sizeof cg->path, "%s/run-%ld-%llu", parent,
                   (long)getpid(), atomic_fetch_add(&cg_seq, 1) + 1);
  if (n < 0 || (size_t)n >= sizeof cg->path) {
    cg->path[0] = '\0';
    cx_err_set(why, "cgroup_dir: too long");
    return -ENAMETOOLONG;
  }
  if (mkdir(cg->path, 0755) < 0) {
    int e = errno;
    cx_err_set(why, "cgroup %.300s: %s", cg->path, strerror(e));
    cg->path[0] = '\0';
    return -e;
  }
  snprintf(file, sizeof file, "%s/cgroup.procs", cg->path);
  fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd >= 0 && fd <= 2) {
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    fd = nfd;
  }
  if (fd < 0) {
    int e = errno;
    cx_err_set(why, "cgroup %.300s: %s", file, strerror(e));
    rmdir(cg->path);
    cg->path[0] = '\0';
    return -e;
  }
  cg->procs_fd = fd;
  return 0;
}

/* Reads cgroup.procs into a malloc'ed buffer (NUL-terminated). */
static char *procs_read(const struct cx__cg *cg)
{
  char file[sizeof cg->path + 32];
  snprintf(file, sizeof file, "%s/cgroup.procs", cg->path);
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = cx_malloc(cap);
  while (buf != NULL) {
    if (len + 1 >= cap) {
      char *nb = cap >= PROCS_READ_MAX ? NULL : cx_realloc(buf, cap * 2);
      if (nb == NULL)
        break; /* bounded: what was read so far */
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + len, cap - 1 - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  close(fd);
  if (buf != NULL)
    buf[len] = '\0';
  return buf;
}

/* Signals every pid listed; returns how many were listed (-1: unreadable). */
static int procs_signal(const struct cx__cg *cg, int sig)
{
  char *buf = procs_read(cg), *p, *end;
  int n = 0;
  if (buf == NULL)
    return -1;
  for (p = buf;; p = end) {
    long pid = strtol(p, &end, 10);
    if (end == p)
      break;
    if (pid > 1 && sig != 0)
      kill((pid_t)pid, sig);
    n++;
  }
  cx_free(buf);
  return n;
}

int cx__cg_alive(const struct cx__cg *cg)
{
  if (cg->path[0] == '\0')
    return 0;
  int n = procs_signal(cg, 0);
  return n < 0 ? -EIO : n > 0;
}

/* Writes "1" to cgroup.kill; 0, or -1 where there is none. */
static int cg_kill_file(const struct cx__cg *cg)
{
  char file[sizeof cg->path + 32];
  snprintf(file, sizeof file, "%s/cgroup.kill", cg->path);
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t r;
  do
    r = write(fd, "1", 1);
  while (r < 0 && errno == EINTR);
  close(fd);
  return r == 1 ? 0 : -1;
}

void cx__cg_signal(const struct cx__cg *cg, int sig)
{
  if (cg->path[0] == '\0')
    return;
  if (sig == SIGKILL && cg_kill_file(cg) == 0)
    return;
  /* Without cgroup.kill a forking job may add members between the read
   * and the kill: repeat until a pass finds nobody (SIGKILL), or once. */
  for (int round = 0; round < (sig == SIGKILL ? KILL_ROUNDS : 1); round++)
    if (procs_signal(cg, sig) <= 0)
      break;
}

void cx__cg_remove(struct cx__cg *cg)
{
  if (cg->procs_fd >= 0)
    close(cg->procs_fd);
  cg->procs_fd = -1;
  if (cg->path[0] == '\0')
    return;
  for (int i = 0; i < RMDIR_TRIES; i++) {
    if (rmdir(cg->path) == 0 || errno == ENOENT)
      break;
    if (errno != EBUSY) {
      CX_LOG(CX_LOG_WARN, LOG_COMP, "rmdir %s: %s", cg->path, strerror(errno));
      break;
    }
    if (i + 1 == RMDIR_TRIES)
      CX_LOG(CX_LOG_WARN, LOG_COMP, "rmdir %s: still busy", cg->path);
    cx_sleep_us(10000);
  }
  cg->path[0] = '\0';
}

/* 1 if comma list has item. */
static int has_item(const char *list, const char *item)
{
  size_t n = strlen(item);
  for (const char *p = list; p != NULL && *p;) {
    const char *c = strchr(p, ',');
    size_t len = c ? (size_t)(c - p) : strlen(p);
    if (len == n && memcmp(p, item, n) == 0)
      return 1;
    p = c ? c + 1 : NULL;
  }
  return 0;
}

/* This process's path in the hierarchy: "0::/x" (v2) or "N:ctl,..:/x". */
static int own_path(int v1, const char *controller, char *out, size_t cap)
{
  FILE *f = fopen("/proc/self/cgroup", "re");
  char line[4096];
  int rc = -ENOENT;
  if (f == NULL)
    return -errno;
  while (rc == -ENOENT && fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL)
      continue;
    *c2 = '\0';
    int match = v1 ? has_item(c1 + 1, controller)
                   : strcmp(line, "0:") == 0 && c1[1] == '\0';
    if (match)
      rc = snprintf(out, cap, "%s", c2 + 1) < (int)cap ? 0 : -ENAMETOOLONG;
  }
  fclose(f);
  return rc;
}

int cx_exec_cgroup_find(int v1, const char *controller, char *out, size_t cap)
{
  char path[4096], line[8192];
  int rc = own_path(v1, controller, path, sizeof path);
  if (rc < 0)
    return rc;
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL)
    return -errno;
  rc = -ENOENT;
  while (rc == -ENOENT && fgets(line, sizeof line, f) != NULL) {
    /* id parent dev root mountpoint opts [tags] - fstype source super */
    char *fld[6], *save = NULL, *p = line;
    int i;
    for (i = 0; i < 6 && (fld[i] = strtok_r(p, " ", &save)) != NULL; i++)
      p = NULL;
    if (i < 6)
      continue;
    char *t;
    while ((t = strtok_r(NULL, " ", &save)) != NULL && strcmp(t, "-") != 0) {
    }
    char *fstype = strtok_r(NULL, " ", &save);
    (void)strtok_r(NULL, " ", &save);
    char *super = strtok_r(NULL, " \n", &save);
    if (fstype == NULL || super == NULL)
      continue;
    if (v1 ? strcmp(fstype, "cgroup") != 0 || !has_item(super, controller)
           : strcmp(fstype, "cgroup2") != 0)
      continue;
    /* The mount shows the tree from root (fld[3]) down: our path must be
     * under it (a cgroup namespace shows "/" for both). */
    const char *root = fld[3], *rel = path;
    size_t rl = strlen(root);
    if (strcmp(root, "/") != 0) {
      if (strncmp(path, root, rl) != 0 || (path[rl] != '/' && path[rl]))
        continue;
      rel = path + rl;
    }
    if (strcmp(rel, "/") == 0)
      rel = "";
    int n = snprintf(out, cap, "%s%s", fld[4], rel);
    rc = n >= 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
  }
  fclose(f);
  return rc;
}
