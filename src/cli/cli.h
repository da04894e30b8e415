/*
 * cli: the `cronix` command line. Each subcommand is one function taking the
 * arguments from its own name on (argv[0] = "cron", ...) and returning the
 * process exit code: 0 success, 1 runtime failure, 2 usage or invalid input.
 */
#ifndef CX_CLI_H
#define CX_CLI_H

#define CX_VERSION "0.1.0"

/* `cronix cron next|check ...` */
int cx_cli_cron(int argc, char **argv);

#endif
