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

int cx_cli_standalone(int argc, char **argv)
{
  struct cx_config cfg;
  struct cx_store *store = NULL;
  struct cx_coord *coord = NULL;
  struct cx_notify *notify = NULL;
  struct cx_admin *admin = NULL;
  struct cx_noded *node = NULL;
  char err[CX_ERR_LEN] = "";
  sigset_t set;
  int rc;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      printf("%s%s", standalone_usage, cx_cli_config_flags_help);
      return 0;
    }
  }
  if ((rc = cx_cli_load_config(argc, argv, &cfg)) != 0)
    return rc;
  cx_cli_block_signals(&set);
  if ((rc = cx_cli_prepare(&cfg, "standalone")) != 0 ||
      (rc = cx_cli_open_backends(&cfg, "standalone", &store, &coord)) != 0 ||
      (rc = cx_cli_notify_open(&cfg, "standalone", &notify)) != 0 ||
      (rc = cx_cli_bootstrap(&cfg, store, "standalone")) != 0)
    goto out;

  /* The node first, so the admin's first placement finds it alive. */
  struct cx_noded_opts nopts = {.cfg = &cfg,
                                .store = store,
                                .coord = coord,
                                .notify = notify,
                                .version = CX_VERSION};
  rc = 1;
  if (cx_noded_create(&nopts, &node, err) != 0 ||
      cx_noded_start(node, err) != 0) {
    fprintf(stderr, "cronix standalone: node: %s\n", err);
    goto out;
  }
  struct cx_admin_opts aopts = {
      .cfg = &cfg, .store = store, .coord = coord, .notify = notify};
  struct cx_admin_cluster_opts copts = {.notify = notify};
  if (cx_admin_create(&aopts, &admin, err) != 0 ||
      cx_admin_cluster_set(admin, &copts) != 0 ||
      cx_admin_start(admin, err) != 0) {
    fprintf(stderr, "cronix standalone: admin: %s\n", err);
    goto out;
  }
  printf("cronix standalone: API on http://%s (port %u), node %s\n"
         "  data in %s; credentials of the first admin in "
         "%s/initial-admin.txt\n"
         "  try: curl -s -X POST http://%s/login -d "
         "'{\"username\":\"admin\",\"password\":\"...\"}'\n",
         cfg.listen, cx_admin_port(admin), cx_noded_uuid(node), cfg.data_dir,
         cfg.data_dir, cfg.listen);
  fflush(stdout);
  cx_cli_wait_signal(&set, "standalone");
  cx_admin_stop(admin);
  cx_noded_stop(node); /* drains running runs (node.shutdown_grace) */
  rc = 0;
out:
  cx_admin_destroy(admin);
  cx_noded_destroy(node);
  cx_notify_destroy(notify, 5000);
  cx_coord_close(coord);
  cx_store_close(store);
  cx_config_free(&cfg);
  cx_tz_cleanup();
  return rc;
}
