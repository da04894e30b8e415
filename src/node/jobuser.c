/*
 * node: who cmd jobs run as, with what environment, in which cgroup.
 *
 * A job must not be able to act as the scheduler: read its database,
 * data directory, or /proc/<node>/environ. So a node running as root
 * runs jobs as an unprivileged user (node.run_as, default "cronix"; root
 * only when the setting says "root"), and a job may name another user
 * (run_as) only from node.run_as_allow. A node that is not root cannot
 * switch: its jobs run as its own user, and any other run_as is an error.
 * Jobs get a small environment (PATH, LANG, LC_*, TZ from the node, then
 * HOME, USER, LOGNAME of their user), never the node's own: CRONIX_*
 * variables carry passwords.
 */
#include "node/node-int.h"

#include "config/config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGC "node"
#define DEFAULT_USER "cronix"

extern char **environ;

/* Node variables a job may see: none of them holds a secret. */
static int env_passes(const char *kv)
{
  static const char *const names[] = {
      "PATH=", "LANG=", "LANGUAGE=", "TZ=", NULL};
  for (int i = 0; names[i]; i++)
    if (strncmp(kv, names[i], strlen(names[i])) == 0)
      return 1;
  return strncmp(kv, "LC_", 3) == 0 && strchr(kv, '=') != NULL;
}

static int lookup(const char *name, uid_t *uid, gid_t *gid, char *home,
                  size_t home_cap, char *why)
{
  struct passwd pw, *res = NULL;
  char buf[4096];
  int rc = getpwnam_r(name, &pw, buf, sizeof buf, &res);
  if (rc != 0 || res == NULL) {
    cx_err_set(why, "user \"%.64s\": %s", name,
               rc ? strerror(rc) : "no such user on this node");
    return rc ? -rc : CX_ENOTFOUND;
  }
  *uid = pw.pw_uid;
  *gid = pw.pw_gid;
  snprintf(home, home_cap, "%s", pw.pw_dir ? pw.pw_dir : "/");
  return 0;
}

static int on_list(const char *list, const char *name)
{
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    const char *e = p;
    while (*e && *e != ',' && *e != ' ')
      e++;
    if ((size_t)(e - p) == n && n > 0 && memcmp(p, name, n) == 0)
      return 1;
    p = e;
  }
  return 0;
}

/* Removes cgroups left by nodes that died (SIGKILL) before removing
 * theirs: cronix-<pid>-<n> of a pid that is gone, and its run-* below.
 * rmdir only ever removes an empty cgroup, so a live one (a pid of
 * another namespace) is safe. */
static void cgroup_sweep(const char *base)
{
  DIR *d = opendir(base);
  if (d == NULL)
    return;
  for (struct dirent *de; (de = readdir(d)) != NULL;) {
    char dir[4096 + 300];
    long pid = 0;
    if (sscanf(de->d_name, "cronix-%ld-", &pid) != 1 || pid <= 0 ||
        (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
      continue;
    snprintf(dir, sizeof dir, "%s/%s", base, de->d_name);
    DIR *r = opendir(dir);
    for (struct dirent *re; r && (re = readdir(r)) != NULL;) {
      char run[4096 + 600];
      if (strncmp(re->d_name, "run-", 4) != 0)
        continue;
      snprintf(run, sizeof run, "%s/%s", dir, re->d_name);
      rmdir(run);
    }
    if (r)
      closedir(r);
    if (rmdir(dir) == 0)
      CX_LOG(CX_LOG_INFO, LOGC, "removed %s (left by a node that died)", dir);
  }
  closedir(d);
}

/* A cgroup of the node's own for its runs (node.cgroup auto), checked by
 * running `true` in it: mkdir alone does not prove a process may join. */
static void cgroup_setup(struct cx__nuser *u, const char *setting)
{
  char base[4096];
  if (strcmp(setting, "off") == 0)
    return;
  if (strcmp(setting, "auto") != 0) {
    snprintf(base, sizeof base, "%s", setting);
  } else if (cx_exec_cgroup_find(0, NULL, base, sizeof base) != 0 &&
             cx_exec_cgroup_find(1, "pids", base, sizeof base) != 0) {
    CX_LOG(CX_LOG_WARN, LOGC,
           "no cgroup tree found: a run's processes that leave its "
           "session are not killed with it");
    return;
  }
  cgroup_sweep(base);
  /* pid and a count: nodes in one process (tests) get one each. */
  static atomic_int seq;
  int n = snprintf(u->cgroup, sizeof u->cgroup, "%s/cronix-%ld-%d", base,
                   (long)getpid(), atomic_fetch_add(&seq, 1) + 1);
  if (n < 0 || (size_t)n >= sizeof u->cgroup ||
      (mkdir(u->cgroup, 0755) != 0 && errno != EEXIST)) {
    CX_LOG(CX_LOG_WARN, LOGC,
           "cgroup %s: %s: a run's processes that leave its session are "
           "not killed with it",
           u->cgroup, strerror(errno));
    u->cgroup[0] = '\0';
    return;
  }
  struct cx_exec *x;
  struct cx_exec_result res = {0};
  struct cx_exec_opts o = {.cgroup_dir = u->cgroup};
  struct cx_exec_cmd c = {.command = "true", .workdir = "/"};
  x = NULL;
  int ok = cx_exec_create(&x) == 0 &&
           cx_exec_run_cmd(x, &o, &c, NULL, NULL, &res, NULL) == 0 &&
           res.status == CX_EXEC_SUCCESS;
  if (!ok)
    CX_LOG(CX_LOG_WARN, LOGC, "cgroup %s unusable (%s): not used", u->cgroup,
           res.error);
  cx_exec_result_free(&res);
  cx_exec_destroy(x);
  if (!ok) {
    rmdir(u->cgroup);
    u->cgroup[0] = '\0';
  } else {
    CX_LOG(CX_LOG_INFO, LOGC, "runs get their own cgroup under %s", u->cgroup);
  }
}

int cx__nuser_init(struct cx__nuser *u, const struct cx_config *cfg, char *err)
{
  char why[CX_ERR_LEN];
  const char *want = cfg->node_run_as;
  size_t k = 0;
  int rc;

  memset(u, 0, sizeof *u);
  u->root = geteuid() == 0;
  snprintf(u->allow, sizeof u->allow, "%s", cfg->node_run_as_allow);
  if (u->root) {
    const char *name = want[0] ? want : DEFAULT_USER;
    rc = lookup(name, &u->uid, &u->gid, u->home, sizeof u->home, why);
    if (rc != 0) {
      cx_err_set(err,
                 "node.run_as: %s; this node runs as root and will not run "
                 "jobs as root unless node.run_as = root says so: create "
                 "the user (useradd --system --no-create-home --shell "
                 "/usr/sbin/nologin %s) or set node.run_as",
                 why, name);
      return rc;
    }
    snprintf(u->name, sizeof u->name, "%s", name);
  } else {
    struct passwd pw, *res = NULL;
    char buf[4096];
    u->uid = geteuid();
    u->gid = getegid();
    if (getpwuid_r(u->uid, &pw, buf, sizeof buf, &res) == 0 && res) {
      snprintf(u->name, sizeof u->name, "%s", pw.pw_name);
      snprintf(u->home, sizeof u->home, "%s", pw.pw_dir ? pw.pw_dir : "/");
    } else {
      snprintf(u->name, sizeof u->name, "%ld", (long)u->uid);
      snprintf(u->home, sizeof u->home, "/");
    }
    if (want[0] && strcmp(want, u->name) != 0) {
      cx_err_set(err,
                 "node.run_as = %.64s: this node runs as \"%s\", not root, "
                 "and cannot switch users; leave node.run_as empty",
                 want, u->name);
      return CX_EPARSE;
    }
  }
  for (char **e = environ; e && *e && k < CX__NUSER_ENV_MAX; e++)
    if (env_passes(*e) && (u->env[k] = cx_strdup(*e)) != NULL)
      k++;
  u->env[k] = NULL;
  cgroup_setup(u, cfg->node_cgroup);
  CX_LOG(CX_LOG_INFO, LOGC, "cmd jobs run as %s (uid %ld)%s", u->name,
         (long)u->uid, u->root ? "" : ", the node's own user");
  return 0;
}

void cx__nuser_fini(struct cx__nuser *u)
{
  for (int i = 0; u->env[i]; i++)
    cx_free(u->env[i]);
  u->env[0] = NULL;
  if (u->cgroup[0] && rmdir(u->cgroup) != 0 && errno != ENOENT)
    CX_LOG(CX_LOG_WARN, LOGC, "rmdir %s: %s", u->cgroup, strerror(errno));
  u->cgroup[0] = '\0';
}

int cx__nuser_job(const struct cx__nuser *u, const char *run_as,
                  struct cx__jobuser *out, char *why)
{
  const char *name = u->name;
  char home[1024];
  size_t k = 0;

  memset(out, 0, sizeof *out);
  out->uid = u->uid;
  out->gid = u->gid;
  snprintf(home, sizeof home, "%s", u->home);
  if (run_as != NULL && run_as[0] && strcmp(run_as, u->name) != 0) {
    if (!u->root) {
      cx_err_set(why,
                 "run_as \"%.64s\": this node runs as \"%s\", not root, and "
                 "runs jobs as that user only",
                 run_as, u->name);
      return CX_EPARSE;
    }
    if (!on_list(u->allow, run_as)) {
      cx_err_set(why, "run_as \"%.64s\": not in this node's node.run_as_allow",
                 run_as);
      return CX_EPARSE;
    }
    int rc = lookup(run_as, &out->uid, &out->gid, home, sizeof home, why);
    if (rc != 0)
      return rc;
    name = run_as;
  }
  out->set_user = u->root;
  for (; u->env[k]; k++)
    out->envp[k] = u->env[k];
  snprintf(out->home, sizeof out->home, "HOME=%s", home);
  snprintf(out->user, sizeof out->user, "USER=%s", name);
  snprintf(out->logname, sizeof out->logname, "LOGNAME=%s", name);
  out->envp[k++] = out->home;
  out->envp[k++] = out->user;
  out->envp[k++] = out->logname;
  out->envp[k] = NULL;
  return 0;
}
