/*
 * Starting cronix daemons for the process suites. See daemon.h.
 */
#include "support/daemon.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "support/run.h"
#include "support/test.h"

static int add(const char **argv, size_t *n, const char *a)
{
  if (*n + 1 >= CX_SVC_MAX_ARGS)
    return -1;
  argv[(*n)++] = a;
  argv[*n] = NULL;
  return 0;
}

static int add2(const char **argv, size_t *n, const char *flag, const char *v)
{
  return v == NULL ? 0 : add(argv, n, flag) || add(argv, n, v) ? -1 : 0;
}

int cx_test_daemon_start(struct cx_svc_proc *p, const struct cx_test_daemon *d,
                         char *err)
{
  const char *argv[CX_SVC_MAX_ARGS + 1];
  char log[CX_SVC_PATH_LEN + 48];
  size_t n = 0;
  int bad = add(argv, &n, cx_test_cronix_bin()) || add(argv, &n, d->cmd) ||
            add2(argv, &n, "--data-dir", d->data_dir) ||
            add2(argv, &n, "--listen", d->listen) ||
            add2(argv, &n, "--store", d->store) ||
            add2(argv, &n, "--etcd", d->etcd);
  for (size_t i = 0; !bad && d->sets && d->sets[i]; i++)
    bad = add2(argv, &n, "--set", d->sets[i]);
  for (size_t i = 0; !bad && d->more && d->more[i]; i++)
    bad = add2(argv, &n, "--set", d->more[i]);
  if (bad) {
    snprintf(err, CX_ERR_LEN, "%s: more than %d arguments", d->name,
             CX_SVC_MAX_ARGS);
    return -E2BIG;
  }
  snprintf(log, sizeof log, "%s/%s.log", cx_test_tmpdir(), d->name);
  int rc = cx_svc_proc_set_argv(p, d->name, log, argv, err);
  return rc != 0 ? rc : cx_svc_proc_start(p, err);
}

int cx_test_daemon_token(const char *dir, char *tok, size_t cap)
{
  char path[CX_SVC_PATH_LEN + 32], line[512];
  int found = -1;
  snprintf(path, sizeof path, "%s/initial-admin.txt", dir);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "token = ", 8) != 0)
      continue;
    size_t n = strcspn(line + 8, "\r\n");
    if (n > 0 && n < cap) {
      memcpy(tok, line + 8, n);
      tok[n] = '\0';
      found = 0;
    }
  }
  fclose(f);
  return found;
}
