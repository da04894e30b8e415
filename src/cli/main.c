/*
 * cronix: the one binary. Parses the command line and hands over to the
 * module that does the work; no logic of its own beyond wiring.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/remote-int.h"
#include "cron/cron.h"
#include "util/util.h"

static const char usage[] =
    "usage: cronix <command> [options]\n"
    "\n"
    "commands:\n"
    "  standalone              admin + one node in one process (SQLite)\n"
    "  admin                   dispatch center: HTTP API, placement, failover\n"
    "  node                    executor: runs the jobs placed on it\n"
    "  cron next EXPR [--from RFC3339] [--count N] [--tz ZONE]\n"
    "                          print the next N fire times (default 5)\n"
    "  cron check EXPR [--tz ZONE]\n"
    "                          validate an expression (exit 0, or 2 + reason)\n"
    "  config sample           print every setting, documented\n"
    "  config show [OPTIONS]   print the effective settings\n"
    "  user add NAME --role admin|operator|viewer --store URL\n"
    "                          create a user directly in the store\n"
    "\n"
    "client commands (the API of a running admin; --server URL or\n"
    "CRONIX_SERVER, --token T or CRONIX_TOKEN, or a login):\n"
    "  login --server URL [--username U] [--password-stdin]\n"
    "  logout\n"
    "  job ls|get|add|edit|rm|pause|resume|run|kill|logs|next\n"
    "  job export|apply|import-crontab    crontab import FILE|-\n"
    "  node ls|rm|drain|undrain    user ls|add|rm|passwd    token ls|rm\n"
    "  audit ls\n"
    "exit codes: 0 ok, 1 refused by the server, 2 usage, 3 unreachable\n"
    "  version                 print the version\n"
    "\n"
    "`cronix COMMAND --help` describes one command.\n";

int main(int argc, char **argv)
{
  if (argc < 2) {
    fputs(usage, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  /* libcurl's global state is set up once, before any thread starts. */
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
      strcmp(cmd, "help") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("cronix %s\n", CX_VERSION);
    return 0;
  }
  if (strcmp(cmd, "cron") == 0)
    return cx_cli_cron(argc - 1, argv + 1);
  if (strcmp(cmd, "config") == 0)
    return cx_cli_config(argc - 1, argv + 1);
  const char *sub = argc > 2 ? argv[2] : "";
  if (strcmp(cmd, "user") == 0) {
    if (strcmp(sub, "ls") == 0 || strcmp(sub, "rm") == 0 ||
        strcmp(sub, "passwd") == 0 ||
        (strcmp(sub, "add") == 0 && rc_user_add_is_remote(argc - 2, argv + 2)))
      return rc_user_remote(argc - 1, argv + 1);
    return cx_cli_user(argc - 1, argv + 1);
  }
  if (strcmp(cmd, "node") == 0) {
    if (strcmp(sub, "ls") == 0 || strcmp(sub, "rm") == 0 ||
        strcmp(sub, "drain") == 0 || strcmp(sub, "undrain") == 0)
      return rc_node_remote(argc - 1, argv + 1);
    return cx_cli_node(argc - 1, argv + 1);
  }
  if (strcmp(cmd, "job") == 0)
    return rc_job(argc - 1, argv + 1);
  if (strcmp(cmd, "token") == 0)
    return rc_token(argc - 1, argv + 1);
  if (strcmp(cmd, "audit") == 0)
    return rc_audit(argc - 1, argv + 1);
  /* `cronix crontab import ...` = `cronix job import-crontab ...` */
  if (strcmp(cmd, "crontab") == 0 && strcmp(sub, "import") == 0) {
    argv[2] = (char *)"import-crontab";
    argv[1] = (char *)"job";
    return rc_job(argc - 1, argv + 1);
  }
  if (strcmp(cmd, "login") == 0)
    return rc_login(argc - 1, argv + 1);
  if (strcmp(cmd, "logout") == 0)
    return rc_logout(argc - 1, argv + 1);
  if (strcmp(cmd, "admin") == 0)
    return cx_cli_admin(argc - 1, argv + 1);
  if (strcmp(cmd, "standalone") == 0)
    return cx_cli_standalone(argc - 1, argv + 1);
  fprintf(stderr, "cronix: unknown command '%s'\n\n%s", cmd, usage);
  return 2;
}
