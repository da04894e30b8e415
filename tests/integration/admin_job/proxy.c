/*
 * The trap proxy of proxy.h: an accept thread, and per connection one
 * thread copying requests (parsed, so the trap sees each one) and one
 * copying replies (raw).
 */
#include "integration/admin_job/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 256

struct conn {
  struct cx_proxy *p;
  int cfd, ufd;
  pthread_t up, down;
};

struct cx_proxy {
  int lfd, port, target;
  pthread_t acceptor;
  pthread_mutex_t mu;
  struct conn conns[MAX_CONNS];
  int n;
  char trap_path[64];
  struct cx_svc_proc *trap_proc;
  int trapped;
  int stopping;
};

static int write_all(int fd, const char *b, size_t n)
{
  while (n > 0) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

static void *down_main(void *arg)
{
  struct conn *c = arg;
  char buf[65536];
  for (;;) {
    ssize_t r = recv(c->ufd, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0 || write_all(c->cfd, buf, (size_t)r) != 0)
      break;
  }
  shutdown(c->cfd, SHUT_RDWR);
  shutdown(c->ufd, SHUT_RDWR);
  return NULL;
}

/* Parses requests from the client, fires the trap, forwards. */
static void *up_main(void *arg)
{
  struct conn *c = arg;
  struct cx_proxy *p = c->p;
  size_t cap = 1 << 20, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL)
    goto out;
  for (;;) {
    char *end = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
    if (end == NULL) {
      if (len == cap) {
        char *nb = realloc(buf, cap * 2);
        if (nb == NULL)
          break;
        buf = nb;
        cap *= 2;
      }
      ssize_t r = recv(c->cfd, buf + len, cap - len, 0);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      len += (size_t)r;
      continue;
    }
    size_t head = (size_t)(end - buf) + 4, body = 0;
    for (char *l = buf; l < end; l++) {
      if ((l == buf || l[-1] == '\n') &&
          strncasecmp(l, "Content-Length:", 15) == 0)
        body = strtoul(l + 15, NULL, 10);
    }
    while (len < head + body) {
      if (head + body > cap) {
        char *nb = realloc(buf, head + body);
        if (nb == NULL)
          goto out;
        buf = nb;
        cap = head + body;
      }
      ssize_t r = recv(c->cfd, buf + len, cap - len, 0);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        goto out;
      len += (size_t)r;
    }
    /* "POST /path HTTP/1.1" */
    char *sp = memchr(buf, ' ', head);
    pthread_mutex_lock(&p->mu);
    if (sp != NULL && p->trap_proc != NULL &&
        strncmp(sp + 1, p->trap_path, strlen(p->trap_path)) == 0) {
      char err[CX_ERR_LEN];
      cx_svc_proc_signal(p->trap_proc, SIGSTOP, err);
      p->trap_proc = NULL;
      p->trapped = 1;
    }
    pthread_mutex_unlock(&p->mu);
    if (write_all(c->ufd, buf, head + body) != 0)
      break;
    memmove(buf, buf + head + body, len - head - body);
    len -= head + body;
  }
out:
  free(buf);
  shutdown(c->cfd, SHUT_RDWR);
  shutdown(c->ufd, SHUT_RDWR);
  return NULL;
}

static void *accept_main(void *arg)
{
  struct cx_proxy *p = arg;
  for (;;) {
    int cfd = accept(p->lfd, NULL, NULL);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      return NULL;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)p->target),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->n == MAX_CONNS || ufd < 0 ||
        connect(ufd, (struct sockaddr *)&sa, sizeof sa) != 0) {
      pthread_mutex_unlock(&p->mu);
      close(cfd);
      if (ufd >= 0)
        close(ufd);
      continue;
    }
    struct conn *c = &p->conns[p->n++];
    c->p = p;
    c->cfd = cfd;
    c->ufd = ufd;
    pthread_create(&c->up, NULL, up_main, c);
    pthread_create(&c->down, NULL, down_main, c);
    pthread_mutex_unlock(&p->mu);
  }
}

int cx_proxy_start(int port, struct cx_proxy **out, char *err)
{
  struct cx_proxy *p = calloc(1, sizeof *p);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  if (p == NULL)
    return -ENOMEM;
  pthread_mutex_init(&p->mu, NULL);
  p->target = port;
  p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(p->lfd, 64) != 0 ||
      getsockname(p->lfd, (struct sockaddr *)&sa, &sl) != 0) {
    int rc = -errno;
    cx_err_set(err, "proxy: %s", strerror(errno));
    if (p->lfd >= 0)
      close(p->lfd);
    free(p);
    return rc;
  }
  p->port = ntohs(sa.sin_port);
  pthread_create(&p->acceptor, NULL, accept_main, p);
  *out = p;
  return 0;
}

int cx_proxy_port(const struct cx_proxy *p)
{
  return p->port;
}

void cx_proxy_trap(struct cx_proxy *p, const char *path,
                   struct cx_svc_proc *proc)
{
  pthread_mutex_lock(&p->mu);
  snprintf(p->trap_path, sizeof p->trap_path, "%s", path);
  p->trap_proc = proc;
  p->trapped = 0;
  pthread_mutex_unlock(&p->mu);
}

int cx_proxy_trapped(struct cx_proxy *p)
{
  pthread_mutex_lock(&p->mu);
  int t = p->trapped;
  pthread_mutex_unlock(&p->mu);
  return t;
}

void cx_proxy_stop(struct cx_proxy *p)
{
  if (p == NULL)
    return;
  pthread_mutex_lock(&p->mu);
  p->stopping = 1;
  for (int i = 0; i < p->n; i++) {
    shutdown(p->conns[i].cfd, SHUT_RDWR);
    shutdown(p->conns[i].ufd, SHUT_RDWR);
  }
  pthread_mutex_unlock(&p->mu);
  shutdown(p->lfd, SHUT_RDWR);
  pthread_join(p->acceptor, NULL);
  for (int i = 0; i < p->n; i++) {
    pthread_join(p->conns[i].up, NULL);
    pthread_join(p->conns[i].down, NULL);
    close(p->conns[i].cfd);
    close(p->conns[i].ufd);
  }
  close(p->lfd);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
