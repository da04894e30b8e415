/* Raw HTTP/1.1 test client (see rawhttp.h). */
#include "support/rawhttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cx_raw_connect(const char *src, unsigned port)
{
  struct sockaddr_in a = {0};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (src != NULL) {
    struct sockaddr_in s = {0};
    s.sin_family = AF_INET;
    if (inet_pton(AF_INET, src, &s.sin_addr) != 1) {
      close(fd);
      return -EINVAL;
    }
    if (bind(fd, (struct sockaddr *)&s, sizeof s) != 0) {
      int e = errno;
      close(fd);
      return -e;
    }
  }
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int cx_raw_send(int fd, const char *s, size_t len)
{
  while (len > 0) {
    ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    s += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Is buf (n bytes) a whole reply: head, then Content-Length bytes? */
static int reply_complete(const char *buf, size_t n)
{
  const char *end = strstr(buf, "\r\n\r\n");
  if (end == NULL)
    return 0;
  size_t head = (size_t)(end - buf) + 4, clen = 0;
  for (const char *p = buf; p < end; p = strstr(p, "\r\n") + 2) {
    if (strncasecmp(p, "Content-Length:", 15) == 0)
      clen = strtoul(p + 15, NULL, 10);
    if (strstr(p, "\r\n") == NULL)
      break;
  }
  return n >= head + clen;
}

size_t cx_raw_read_reply(int fd, char *buf, size_t cap, int timeout_ms)
{
  size_t n = 0;
  long long until = now_ms() + timeout_ms;
  buf[0] = '\0';
  while (n + 1 < cap && !reply_complete(buf, n)) {
    long long left = until - now_ms();
    struct pollfd p = {fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, (int)left) <= 0)
      break;
    ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    n += (size_t)k;
    buf[n] = '\0';
  }
  return n;
}

int cx_raw_status(const char *reply)
{
  int st = 0;
  if (sscanf(reply, "HTTP/1.%*d %d", &st) != 1)
    return 0;
  return st;
}

int cx_raw_closed_within(int fd, int timeout_ms)
{
  char buf[4096];
  long long until = now_ms() + timeout_ms;
  for (;;) {
    long long left = until - now_ms();
    struct pollfd p = {fd, POLLIN, 0};
    if (left <= 0)
      return 0;
    int r = poll(&p, 1, (int)left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return 0;
    ssize_t k = recv(fd, buf, sizeof buf, 0);
    if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
      return 1;
  }
}

long cx_raw_raise_nofile(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -1;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return (long)rl.rlim_cur;
}
