/*
 * `cronix node`: the execution node as its own process (SPEC §9): opens the
 * store and etcd, runs the node until SIGTERM/SIGINT (then drains and exits
 * 0); SIGHUP re-reads the configuration and applies what a running node can
 * change (node.shell, output_limit, retry_base, kill_grace, shutdown_grace,
 * workdir, log.level).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "coord/coord.h"
#include "cron/cron.h"
#include "node/node.h"
#include "store/store.h"
#include "util/util.h"

static const char node_usage[] =
    "usage: cronix node [OPTIONS]\n"
    "\n"
    "Runs an execution node: registers in etcd, runs the jobs placed on it\n"
    "and records every run in the store. Needs the shared store\n"
    "(--store mysql://...) and etcd (--etcd). SIGTERM drains and exits;\n"
    "SIGHUP reloads the node.* settings.\n"
    "\n"
    "options:\n";

int cx_cli_node(int argc, char **argv)
{
  struct cx_cli_daemon d;
  struct cx_noded *node = NULL;
  char err[CX_ERR_LEN] = "";
  int rc = cx_cli_daemon_open(&d, argc, argv, "node", node_usage, 1);

  if (rc != 0)
    goto out;
  /* Alerts go out from the leader admin with the store's channel settings;
   * a node's [notify.*] would silently do nothing, so say so. */
  if (d.cfg.email_smtp_url[0] != '\0' || d.cfg.feishu_webhook_url[0] != '\0')
    CX_LOG(CX_LOG_WARN, "node",
           "notify.* settings are ignored on a node: alerts are sent by the "
           "leader admin with the channels set through POST /notify/settings");
  struct cx_noded_opts opts = {
      .cfg = &d.cfg, .store = d.store, .coord = d.coord, .version = CX_VERSION};
  if (cx_noded_create(&opts, &node, err) != 0 ||
      cx_noded_start(node, err) != 0) {
    fprintf(stderr, "cronix node: %s\n", err);
    rc = 1;
    goto out;
  }
  printf("cronix node: %s running\n", cx_noded_uuid(node));
  fflush(stdout);
  cx_cli_sd_notify("READY=1");
  for (;;) {
    int sig = 0;
    if (sigwait(&d.signals, &sig) != 0)
      continue;
    if (sig != SIGHUP) {
      CX_LOG(CX_LOG_INFO, "node", "%s: draining and shutting down",
             sig == SIGTERM ? "SIGTERM" : "SIGINT");
      cx_cli_sd_notify("STOPPING=1");
      break;
    }
    struct cx_config ncfg;
    if (cx_cli_load_config(argc, argv, &ncfg) != 0) {
      CX_LOG(CX_LOG_WARN, "node", "SIGHUP: configuration not reloaded");
      continue;
    }
    enum cx_log_level level;
    if (cx_log_level_parse(ncfg.log_level, &level) == 0)
      cx_log_set_level(level);
    cx_noded_reload(node, &ncfg);
    cx_config_free(&ncfg);
    CX_LOG(CX_LOG_INFO, "node",
           "SIGHUP: node settings reloaded (etcd, store and max_concurrent "
           "need a restart)");
  }
  cx_noded_stop(node);
out:
  cx_noded_destroy(node);
  cx_cli_daemon_close(&d);
  return rc < 0 ? 0 : rc;
}
