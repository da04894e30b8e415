/*
 * What the daemon commands (admin, node, standalone) share: loading the
 * configuration, the data dir and default zone, opening the store, the
 * coordination backend and the notifier, the first admin user, signals.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/admin.h"
#include "cli/cli.h"
#include "config/config.h"
#include "coord/coord.h"
#include "cron/cron.h"
#include "store/store.h"
#include "util/util.h"

/* Refuses (exit code 2, after saying why and what to do) a data dir or
 * database file that another user owns or that group or other may read:
 * they hold the database, the node id, the spool and the first admin's
 * credentials. */
static int private_ok(const char *cmd, const char *what, const char *path,
                      int dir)
{
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "cronix %s: %s %s: %s\n", cmd, what, path, strerror(errno));
    return 1;
  }
  if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
    fprintf(stderr, "cronix %s: %s %s: not a %s\n", cmd, what, path,
            dir ? "directory" : "regular file");
    return 2;
  }
  if (st.st_uid != geteuid()) {
    fprintf(stderr,
            "cronix %s: refusing to start: %s %s belongs to uid %u, not to "
            "this user (uid %u); chown it or run cronix as its owner\n",
            cmd, what, path, (unsigned)st.st_uid, (unsigned)geteuid());
    return 2;
  }
  if ((st.st_mode & 077) != 0) {
    fprintf(stderr,
            "cronix %s: refusing to start: %s %s is open to group/other "
            "(mode %04o) and holds credentials; run: chmod %s %s\n",
            cmd, what, path, (unsigned)(st.st_mode & 07777),
            dir ? "700" : "600", path);
    return 2;
  }
  return 0;
}

/* With a SQLite store, its file as private_ok (the store creates a new
 * one 0600). */
static int private_store(const struct cx_config *cfg, const char *cmd)
{
  const char *path = cfg->store_url + 9;
  struct stat st;
  if (strncmp(cfg->store_url, "sqlite://", 9) != 0 || path[0] == '\0' ||
      strcmp(path, ":memory:") == 0 || stat(path, &st) != 0)
    return 0; /* no file yet, or none to be: the store's open says why */
  return private_ok(cmd, "database", path, 0);
}

int cx_cli_prepare(const struct cx_config *cfg, const char *cmd)
{
  char err[CX_ERR_LEN];
  enum cx_log_level level = CX_LOG_INFO;

  cx_log_level_parse(cfg->log_level, &level); /* checked by config_finish */
  cx_log_set_level(level);
  if (cx_tz_set_default(cfg->default_timezone, err) != 0) {
    fprintf(stderr, "cronix %s: system.default_timezone: %s\n", cmd, err);
    return 2;
  }
  if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "cronix %s: server.data_dir %s: %s\n", cmd, cfg->data_dir,
            strerror(errno));
    return 1;
  }
  int rc = private_ok(cmd, "server.data_dir", cfg->data_dir, 1);
  return rc != 0 ? rc : private_store(cfg, cmd);
}

int cx_cli_open_backends(const struct cx_config *cfg, const char *cmd,
                         struct cx_store **store, struct cx_coord **coord)
{
  char err[CX_ERR_LEN], redacted[1024];
  struct cx_coord_cfg ccfg = {
      .endpoints = cfg->etcd_endpoints,
      .username = cfg->etcd_username[0] ? cfg->etcd_username : NULL,
      .password = cfg->etcd_password[0] ? cfg->etcd_password : NULL,
      .ca_file = cfg->etcd_ca[0] ? cfg->etcd_ca : NULL,
      .cert_file = cfg->etcd_cert[0] ? cfg->etcd_cert : NULL,
      .key_file = cfg->etcd_key[0] ? cfg->etcd_key : NULL,
  };

  *store = NULL;
  *coord = NULL;
  cx_store_url_redact(cfg->store_url, redacted, sizeof redacted);
  if (cx_store_open(cfg->store_url, store, err) != 0) {
    fprintf(stderr, "cronix %s: store %s: %s\n", cmd, redacted, err);
    return 1;
  }
  CX_LOG(CX_LOG_INFO, cmd, "store %s (%s)", redacted, cx_store_backend(*store));
  cx_url_redact(cfg->etcd_endpoints[0] ? cfg->etcd_endpoints : "in-process",
                CX_URL_REDACT_LIST, redacted, sizeof redacted);
  if (cx_coord_open(&ccfg, coord, err) != 0) {
    fprintf(stderr, "cronix %s: coordination %s: %s\n", cmd, redacted, err);
    cx_store_close(*store);
    *store = NULL;
    return 1;
  }
  CX_LOG(CX_LOG_INFO, cmd, "coordination %s (%s)", redacted,
         cx_coord_backend(*coord));
  return 0;
}

int cx_cli_bootstrap(const struct cx_config *cfg, struct cx_store *store,
                     const char *cmd)
{
  char err[CX_ERR_LEN];
  int created = 0;
  if (cx_admin_bootstrap(store, cfg->data_dir, cfg->initial_token_ttl, &created,
                         err) != 0) {
    fprintf(stderr, "cronix %s: creating the first admin user: %s\n", cmd, err);
    return 1;
  }
  if (created)
    printf("first start: created user 'admin'; its password and a token are "
           "in %s/initial-admin.txt (mode 0600): log in, change the "
           "password, then delete that file\n",
           cfg->data_dir);
  return 0;
}

void cx_cli_block_signals(sigset_t *set)
{
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, set, NULL);
  signal(SIGPIPE, SIG_IGN);
}

void cx_cli_sd_notify(const char *state)
{
  const char *path = getenv("NOTIFY_SOCKET");
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t n = path != NULL ? strlen(path) : 0;
  if (n == 0 || n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
    return;
  memcpy(sa.sun_path, path, n);
  if (sa.sun_path[0] == '@')
    sa.sun_path[0] = '\0'; /* abstract namespace */
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return;
  /* Best effort: a supervisor that does not listen changes nothing. */
  if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
    CX_LOG(CX_LOG_WARN, "cli", "sd_notify %s: %s", state, strerror(errno));
  close(fd);
}

int cx_cli_wait_signal(const sigset_t *set, const char *cmd)
{
  cx_cli_sd_notify("READY=1");
  for (;;) {
    int sig = 0;
    if (sigwait(set, &sig) != 0)
      continue;
    if (sig == SIGHUP) {
      CX_LOG(CX_LOG_INFO, cmd,
             "SIGHUP: settings are read at start; restart to apply changes");
      continue;
    }
    CX_LOG(CX_LOG_INFO, cmd, "%s: shutting down",
           sig == SIGTERM ? "SIGTERM" : "SIGINT");
    cx_cli_sd_notify("STOPPING=1");
    return sig;
  }
}

int cx_cli_daemon_open(struct cx_cli_daemon *d, int argc, char **argv,
                       const char *cmd, const char *usage, int need_etcd)
{
  int rc;

  memset(d, 0, sizeof *d);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(usage, stdout);
      cx_cli_config_flags_print(stdout, cmd);
      return -1;
    }
  }
  if ((rc = cx_cli_load_config(argc, argv, &d->cfg)) != 0)
    return rc;
  d->cfg_loaded = 1;
  if (need_etcd && d->cfg.etcd_endpoints[0] == '\0') {
    fprintf(stderr,
            "cronix %s: etcd.endpoints is empty: it needs etcd (--etcd "
            "http://127.0.0.1:2379); for one machine use `cronix "
            "standalone`\n",
            cmd);
    return 2;
  }
  cx_cli_block_signals(&d->signals);
  if ((rc = cx_cli_prepare(&d->cfg, cmd)) != 0 ||
      (rc = cx_cli_open_backends(&d->cfg, cmd, &d->store, &d->coord)) != 0)
    return rc;
  return 0;
}

void cx_cli_daemon_close(struct cx_cli_daemon *d)
{
  cx_coord_close(d->coord);
  cx_store_close(d->store);
  if (d->cfg_loaded)
    cx_config_free(&d->cfg);
  cx_tz_cleanup();
  memset(d, 0, sizeof *d);
}
