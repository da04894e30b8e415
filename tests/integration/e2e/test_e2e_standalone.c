/*
 * The e2e cases (cases.inc) on one real `cronix standalone` process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "util/util.h"

#define E2E_ENV E2E_STANDALONE
#define E2E_NAME standalone
#include "cases.inc"

/* The whole file (small), or NULL. Caller frees. */
static char *slurp(const char *path)
{
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return NULL;
  char *buf = calloc(1, 65536);
  if (buf != NULL && fread(buf, 1, 65535, f) == 0 && ferror(f)) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  return buf;
}

/* Through the API, on `cronix standalone` as root with node.run_as: a job
 * runs unprivileged and cannot read the first admin's credentials in the
 * data directory, nor change them. */
TEST_TIMEOUT(e2e_standalone_cmd_job_runs_unprivileged, 60)
{
  static const char *const sets[] = {"node.run_as=nobody", "node.workdir=/",
                                     NULL};
  char cmd[4 * CX_SVC_PATH_LEN + 256], path[CX_SVC_PATH_LEN + 32];
  if (geteuid() != 0)
    cx_test_skip("needs root (the node switches users only as root)");
  e2e_up_with(E2E_STANDALONE, sets);
  snprintf(path, sizeof path, "%s/initial-admin.txt", E.main_dir);
  char *before = slurp(path);
  CHECK(before != NULL, "cannot read %s", path);
  snprintf(cmd, sizeof cmd,
           "id -u; cat %s; echo x >> %s; sqlite3 %s/cronix.db "
           "\"update cronix_user set role='admin'\"; exit 0",
           path, path, E.main_dir);
  int64_t id = e2e_job_put(0, "whoami", NEVER, 1, cmd, NULL);
  e2e_job_action("once", id);
  json_t *r = e2e_wait_run(id, "success", 20, "unprivileged");
  const char *out = e2e_str(r, "output");
  CHECK(strncmp(out, "65534\n", 6) == 0, "id -u: %s", out);
  CHECK(strstr(out, "Permission denied") != NULL, "no refusal: %s", out);
  CHECK(strstr(out, E.tok) == NULL, "the admin token leaked: %s", out);
  json_decref(r);
  char *after = slurp(path);
  CHECK(after != NULL && strcmp(before, after) == 0,
        "initial-admin.txt changed");
  free(before);
  free(after);
  e2e_down();
}
