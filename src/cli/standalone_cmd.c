/*
 * `cronix standalone`: the admin and one node in one process, on SQLite and
 * the in-process coordination backend by default, so one machine needs no
 * server at all. The same admin and node code as the distributed roles;
 * only the two backends differ.
 */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/cluster.h"
#include "cli/cli.h"
#include "config/config.h"
#include "coord/coord.h"
#include "cron/cron.h"
#include "node/node.h"
#include "notify/notify.h"
#include "store/store.h"
#include "util/util.h"

static const char standalone_usage[] =
    "usage: cronix standalone [OPTIONS]\n"
    "\n"
    "Runs the dispatch center and one execution node in one process: the\n"
    "HTTP API on server.listen, jobs in SQLite at <data_dir>/cronix.db,\n"
    "coordination in process. On first start it creates user 'admin' and\n"
    "writes its password and an API token to <data_dir>/initial-admin.txt.\n"
    "\n"
    "options:\n";

static void node_metrics(void *arg, struct cx_buf *b)
{
  cx_noded_metrics(arg, b);
}

int cx_cli_standalone(int argc, char **argv)
{
  struct cx_cli_daemon d;
  struct cx_admin *admin = NULL;
  struct cx_noded *node = NULL;
  char err[CX_ERR_LEN] = "";
  int rc =
      cx_cli_daemon_open(&d, argc, argv, "standalone", standalone_usage, 0);

  if (rc != 0 || (rc = cx_cli_bootstrap(&d.cfg, d.store, "standalone")) != 0)
    goto out;
  /* The node first, so the admin's first placement finds it alive. */
  struct cx_noded_opts nopts = {
      .cfg = &d.cfg, .store = d.store, .coord = d.coord, .version = CX_VERSION};
  rc = 1;
  if (cx_noded_create(&nopts, &node, err) != 0 ||
      cx_noded_start(node, err) != 0) {
    fprintf(stderr, "cronix standalone: node: %s\n", err);
    goto out;
  }
  struct cx_admin_opts aopts = {.cfg = &d.cfg,
                                .store = d.store,
                                .coord = d.coord,
                                .live = cx_noded_live(node),
                                .metrics = node_metrics,
                                .metrics_arg = node};
  struct cx_admin_cluster_opts copts = {0};
  if (cx_admin_create(&aopts, &admin, err) != 0 ||
      cx_admin_cluster_set(admin, &copts) != 0 ||
      cx_admin_start(admin, err) != 0) {
    fprintf(stderr, "cronix standalone: admin: %s\n", err);
    goto out;
  }
  const char *scheme = d.cfg.tls_cert[0] ? "https" : "http";
  printf("cronix standalone: API on %s://%s (port %u), node %s\n"
         "  data in %s; credentials of the first admin in "
         "%s/initial-admin.txt\n"
         "  try: curl -s -X POST %s://%s/login -d "
         "'{\"username\":\"admin\",\"password\":\"...\"}'\n",
         scheme, d.cfg.listen, cx_admin_port(admin), cx_noded_uuid(node),
         d.cfg.data_dir, d.cfg.data_dir, scheme, d.cfg.listen);
  fflush(stdout);
  cx_cli_wait_signal(&d.signals, "standalone");
  cx_admin_stop(admin);
  cx_noded_stop(node); /* drains running runs (node.shutdown_grace) */
  rc = 0;
out:
  cx_admin_destroy(admin);
  cx_noded_destroy(node);
  cx_cli_daemon_close(&d);
  return rc < 0 ? 0 : rc;
}
