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
 * common flags in argv[1..] (argv[0] names the command, for messages).
 * Returns 0, or the exit code after printing why (cfg is then freed). */
int cx_cli_load_config(int argc, char **argv, struct cx_config *cfg);
/* Help text of the flags cx_cli_load_config understands. */
extern const char cx_cli_config_flags_help[];

#endif
