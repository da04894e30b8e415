/* The test SMTP sink (see smtp_sink.h). */
#include "support/smtp_sink.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "support/test.h"
#include "util/util.h"

#define PYTHON "/usr/bin/python3"

/* The sink script: next to this source file, found from the working
 * directory (the repo root when run by make/CI) or from the build dir. */
static void script_path(char *out, size_t cap)
{
  static const char rel[] = "tests/support/smtp_sink.py";
  const char *bases[] = {".", "..", "../..", "../../.."};
  if (access(rel, R_OK) == 0) {
    snprintf(out, cap, "%s", rel);
    return;
  }
  for (size_t i = 0; i < CX_ARRAY_LEN(bases); i++) {
    snprintf(out, cap, "%s/%s/%s", cx_test_bindir(), bases[i], rel);
    if (access(out, R_OK) == 0)
      return;
  }
  ASSERT_MSG(0, "cannot find %s", rel);
}

static int file_exists(const char *dir, const char *name)
{
  char p[CX_SVC_PATH_LEN + 64];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

/* Starts the sink with extra options (NULL-terminated). */
void cx_test_smtp_start(struct cx_test_smtp *s, const char *const *extra)
{
  char err[CX_ERR_LEN], script[CX_SVC_PATH_LEN], port[16],
      log[CX_SVC_PATH_LEN + 16];
  const char *argv[CX_SVC_MAX_ARGS + 1];
  size_t a = 0;

  if (access(PYTHON, X_OK) != 0)
    cx_test_skip(PYTHON " is missing (install python3-aiosmtpd)");
  memset(s, 0, sizeof *s);
  script_path(script, sizeof script);
  ASSERT_MSG(cx_svc_port_alloc(&s->port, err) == 0, "%s", err);
  ASSERT_MSG(cx_svc_dir_make("smtp", s->dir, sizeof s->dir, err) == 0, "%s",
             err);
  snprintf(port, sizeof port, "%d", s->port);
  snprintf(log, sizeof log, "%s/sink.log", s->dir);
  snprintf(s->url, sizeof s->url, "smtp://127.0.0.1:%d/helo.cronix.test",
           s->port);
  snprintf(s->cert, sizeof s->cert, "%s/cert.pem", s->dir);
  argv[a++] = PYTHON;
  argv[a++] = script;
  argv[a++] = "--port";
  argv[a++] = port;
  argv[a++] = "--dir";
  argv[a++] = s->dir;
  for (size_t i = 0; extra && extra[i]; i++)
    argv[a++] = extra[i];
  argv[a] = NULL;
  ASSERT_MSG(cx_svc_proc_set_argv(&s->proc, "smtp sink", log, argv, err) == 0,
             "%s", err);
  ASSERT_MSG(cx_svc_proc_start(&s->proc, err) == 0, "%s", err);
  for (int i = 0; i < 1500 && !file_exists(s->dir, "ready"); i++) {
    if (!cx_svc_proc_alive(&s->proc)) {
      cx_svc_log_dump(log, 4096);
      ASSERT_MSG(0, "smtp sink exited");
    }
    cx_sleep_us(10000);
  }
  if (!file_exists(s->dir, "ready")) {
    cx_svc_log_dump(log, 4096);
    ASSERT_MSG(0, "smtp sink not ready after 15 s");
  }
}

void cx_test_smtp_stop(struct cx_test_smtp *s)
{
  cx_svc_proc_stop(&s->proc, 5000, NULL);
}

/* Number of messages received so far. */
int cx_test_smtp_count(const struct cx_test_smtp *s)
{
  int n = 0;
  char name[32];
  for (;;) {
    snprintf(name, sizeof name, "%d.env", n + 1);
    if (!file_exists(s->dir, name))
      return n;
    n++;
  }
}

int cx_test_smtp_wait(const struct cx_test_smtp *s, int want, int timeout_ms)
{
  for (int i = 0; i < timeout_ms / 10; i++) {
    if (cx_test_smtp_count(s) >= want)
      break;
    cx_sleep_us(10000);
  }
  return cx_test_smtp_count(s);
}

char *cx_test_smtp_read(const struct cx_test_smtp *s, int k, const char *ext)
{
  char p[CX_SVC_PATH_LEN + 32];
  struct cx_buf b = {0};
  char tmp[4096];
  snprintf(p, sizeof p, "%s/%d.%s", s->dir, k, ext);
  FILE *f = fopen(p, "rb");
  ASSERT_MSG(f != NULL, "open %s", p);
  size_t r;
  while ((r = fread(tmp, 1, sizeof tmp, f)) > 0)
    cx_buf_append(&b, tmp, r);
  fclose(f);
  cx_buf_append(&b, "", 0);
  return cx_buf_steal(&b);
}
