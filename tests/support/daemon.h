/*
 * Starting `cronix` daemons (admin, node, standalone) as real processes
 * for the process suites (e2e, alerts): one place that builds their
 * command line and reads the initial admin's token, so the suites that
 * start a cluster do not each carry a copy.
 *
 *   static const char *const sets[] = {"node.ttl=2s", NULL};
 *   struct cx_test_daemon d = {.cmd = "node", .name = "node",
 *                              .data_dir = dir, .store = db.url,
 *                              .etcd = etcd.endpoints, .sets = sets};
 *   CHECK(cx_test_daemon_start(&proc, &d, err) == 0, "%s", err);
 *
 * The process is a struct cx_svc_proc (services.h): it dies with the test,
 * and its stdout and stderr go to <test tmpdir>/<name>.log.
 */
#ifndef CX_TEST_DAEMON_H
#define CX_TEST_DAEMON_H

#include <stddef.h>

#include "support/services.h"

struct cx_test_daemon {
  const char *cmd;          /* "admin", "node" or "standalone" */
  const char *name;         /* process name, and its log's */
  const char *data_dir;     /* --data-dir */
  const char *listen;       /* --listen, NULL = not passed */
  const char *store, *etcd; /* --store, --etcd, NULL = not passed */
  /* "name=value" settings passed as --set, each list NULL-terminated
   * (either may be NULL): the suite's own, then a test's extras. */
  const char *const *sets, *const *more;
};

/* Starts p running cx_test_cronix_bin() as d says. Returns 0, or an
 * error (err says which: too many arguments, exec failed). Returns once
 * the program runs, not once it serves. */
int cx_test_daemon_start(struct cx_svc_proc *p, const struct cx_test_daemon *d,
                         char *err);

/* The bootstrap token the first admin wrote to <dir>/initial-admin.txt
 * (its "token = " line), into tok[cap]: 0, or -1 while not (yet) there. */
int cx_test_daemon_token(const char *dir, char *tok, size_t cap);

#endif
