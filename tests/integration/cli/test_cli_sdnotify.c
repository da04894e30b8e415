/*
 * Type=notify: a daemon says READY=1 on $NOTIFY_SOCKET once its API
 * answers, and STOPPING=1 when SIGTERM starts its shutdown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "support/services.h"
#include "support/test.h"

static void expect_datagram(int fd, const char *want)
{
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
  ASSERT_MSG(n > 0, "no %s within 60 s: %s", want, strerror(errno));
  buf[n] = '\0';
  ASSERT_STREQ(buf, want);
}

TEST_TIMEOUT(cli_standalone_tells_systemd_ready_and_stopping, 120)
{
  char err[CX_ERR_LEN], listen[64], url[96], dir[CX_SVC_PATH_LEN + 8],
      log[CX_SVC_PATH_LEN + 16];
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int port;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s/notify", cx_test_tmpdir());
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT(fd >= 0);
  ASSERT_MSG(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "%s",
             strerror(errno));
  struct timeval tv = {.tv_sec = 60};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setenv("NOTIFY_SOCKET", sa.sun_path, 1);

  ASSERT_MSG(cx_svc_port_alloc(&port, err) == 0, "%s", err);
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  snprintf(url, sizeof url, "http://%s/healthz", listen);
  snprintf(dir, sizeof dir, "%s/sa", cx_test_tmpdir());
  snprintf(log, sizeof log, "%s/sa.log", cx_test_tmpdir());
  ASSERT(mkdir(dir, 0700) == 0);
  struct cx_svc_proc p;
  memset(&p, 0, sizeof p);
  const char *argv[] = {cx_test_cronix_bin(), "standalone", "--data-dir", dir,
                        "--listen",           listen,       NULL};
  ASSERT_MSG(cx_svc_proc_set_argv(&p, "standalone", log, argv, err) == 0, "%s",
             err);
  ASSERT_MSG(cx_svc_proc_start(&p, err) == 0, "%s", err);
  expect_datagram(fd, "READY=1");
  /* Ready means serving: the API answers at once. */
  long status = 0;
  char body[512];
  cx_svc_http("GET", url, NULL, 5000, &status, body, sizeof body, err);
  ASSERT_MSG(status == 200 || status == 503, "healthz: %ld %s", status, err);
  ASSERT_MSG(cx_svc_proc_stop(&p, 20000, err) == 0, "%s", err);
  expect_datagram(fd, "STOPPING=1");
  close(fd);
}
