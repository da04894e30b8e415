/*
 * cli: the `cronix` command line. Each subcommand is one function taking the
 * arguments from its own name on (argv[0] = "cron", ...) and returning the
 * process exit code: 0 success, 1 runtime failure, 2 usage or invalid input.
 */
#ifndef CX_CLI_H
#define CX_CLI_H

#define CX_VERSION "0.1.0"

struct cx_config;

/* `cronix cron next|check ...` */
int cx_cli_cron(int argc, char **argv);
/* `cronix config sample|show ...` */
int cx_cli_config(int argc, char **argv);
/* `cronix user add NAME --role ROLE ...` */
int cx_cli_user(int argc, char **argv);

/* Fills cfg from defaults, --config FILE, CRONIX_* variables and the
 * common flags in argv[1..] (argv[0] names the command, for messages and
 * for which flags it takes: "node" and "user add" refuse --listen).
 * Returns 0, or the exit code after printing why (cfg is then freed). */
int cx_cli_load_config(int argc, char **argv, struct cx_config *cfg);
/* `cronix admin ...` */
int cx_cli_admin(int argc, char **argv);
/* `cronix standalone ...` (src/cli/standalone_cmd.c) */
int cx_cli_standalone(int argc, char **argv);
/* `cronix node ...` (src/cli/node_cmd.c) */
int cx_cli_node(int argc, char **argv);

/* What a daemon command holds (src/cli/daemon.c). */
#include <signal.h>

#include "config/config.h"
struct cx_cli_daemon {
  struct cx_config cfg;
  struct cx_store *store;
  struct cx_coord *coord;
  sigset_t signals; /* blocked; wait with cx_cli_wait_signal */
  int cfg_loaded;
};
/* Prints usage for --help (returns -1: exit 0), loads the configuration,
 * requires etcd when need_etcd, blocks signals, prepares data_dir and the
 * default zone, opens the store, the coordination backend and the
 * notifier. Returns 0 to go on, or the exit code after printing why.
 * Always pair with cx_cli_daemon_close. */
int cx_cli_daemon_open(struct cx_cli_daemon *d, int argc, char **argv,
                       const char *cmd, const char *usage, int need_etcd);
void cx_cli_daemon_close(struct cx_cli_daemon *d);

/* Start-up steps shared by the daemon commands (src/cli/daemon.c).
 * Each prints why it failed and returns an exit code (0 = go on). */
struct cx_store;
struct cx_coord;
/* Log level, default zone, data_dir (made 0700; refused when another
 * user owns it or group/other may read it) and the SQLite file (refused
 * likewise). */
int cx_cli_prepare(const struct cx_config *cfg, const char *cmd);
/* Opens the store and the coordination backend named by cfg. */
int cx_cli_open_backends(const struct cx_config *cfg, const char *cmd,
                         struct cx_store **store, struct cx_coord **coord);
/* Creates the first admin user if there is none and says where. */
int cx_cli_bootstrap(const struct cx_config *cfg, struct cx_store *store,
                     const char *cmd);
/* Blocks SIGTERM, SIGINT and SIGHUP in this thread and every thread it
 * starts later (call before starting any); ignores SIGPIPE. */
void cx_cli_block_signals(sigset_t *set);
/* Tells systemd (Type=notify) the daemon's state, e.g. "READY=1" or
 * "STOPPING=1", on $NOTIFY_SOCKET (a path, or '@' for the abstract
 * namespace); nothing when it is unset. */
void cx_cli_sd_notify(const char *state);
/* Says READY=1, waits for SIGTERM or SIGINT (returned, after saying
 * STOPPING=1); logs SIGHUP and goes on. */
int cx_cli_wait_signal(const sigset_t *set, const char *cmd);

/* Prints the help of the flags cx_cli_load_config understands for cmd
 * (its argv[0]: "admin", "node", "user add", ...; --listen only where the
 * command serves HTTP). */
#include <stdio.h>
void cx_cli_config_flags_print(FILE *f, const char *cmd);

#endif
