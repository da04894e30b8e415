/*
 * `cronix admin`: the dispatch center as its own process (store + etcd).
 */
#include <stdio.h>

#include "admin/admin.h"
#include "admin/cluster.h"
#include "cli/cli.h"

static const char admin_usage[] =
    "usage: cronix admin [OPTIONS]\n"
    "\n"
    "Runs the dispatch center: the HTTP API, placement and publication of\n"
    "jobs. Needs a shared store (--store mysql://...) and etcd (--etcd).\n"
    "\n"
    "options:\n";

int cx_cli_admin(int argc, char **argv)
{
  struct cx_cli_daemon d;
  struct cx_admin *admin = NULL;
  char err[CX_ERR_LEN] = "";
  int rc = cx_cli_daemon_open(&d, argc, argv, "admin", admin_usage, 1);

  if (rc != 0 || (rc = cx_cli_bootstrap(&d.cfg, d.store, "admin")) != 0)
    goto out;
  struct cx_admin_opts opts = {
      .cfg = &d.cfg, .store = d.store, .coord = d.coord};
  struct cx_admin_cluster_opts copts = {0};
  if (cx_admin_create(&opts, &admin, err) != 0 ||
      cx_admin_cluster_set(admin, &copts) != 0 ||
      cx_admin_start(admin, err) != 0) {
    fprintf(stderr, "cronix admin: %s\n", err);
    rc = 1;
    goto out;
  }
  printf("cronix admin: API on %s://%s (port %u)\n",
         d.cfg.tls_cert[0] ? "https" : "http", d.cfg.listen,
         cx_admin_port(admin));
  fflush(stdout);
  cx_cli_wait_signal(&d.signals, "admin");
out:
  cx_admin_destroy(admin);
  cx_cli_daemon_close(&d);
  return rc < 0 ? 0 : rc;
}
