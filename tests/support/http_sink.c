/* The test HTTP sink (http_sink.h). */
#include "support/http_sink.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/services.h"
#include "support/test.h"

static enum MHD_Result kv(void *cls, enum MHD_ValueKind kind, const char *k,
                          const char *v)
{
  struct cx_buf *b = cls;
  if (kind == MHD_GET_ARGUMENT_KIND)
    cx_buf_printf(b, "%s%s=%s", b->len ? "&" : "", k, v ? v : "");
  else
    cx_buf_printf(b, "%s: %s\n", k, v ? v : "");
  return MHD_YES;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *data,
                               size_t *data_size, void **con_cls)
{
  struct cx_test_sink *s = cls;
  struct cx_buf *body = *con_cls;
  (void)version;
  if (body == NULL) {
    *con_cls = calloc(1, sizeof *body);
    return MHD_YES;
  }
  if (*data_size > 0) {
    cx_buf_append(body, data, *data_size);
    *data_size = 0;
    return MHD_YES;
  }
  unsigned status = 200;
  const char *reply = "{\"errcode\":0,\"errmsg\":\"ok\"}";
  pthread_mutex_lock(s->mu);
  if (s->n < CX_TEST_SINK_MAX) {
    struct cx_test_sink_req *r = &s->r[s->n];
    struct cx_buf q = {0}, h = {0};
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, kv, &q);
    MHD_get_connection_values(c, MHD_HEADER_KIND, kv, &h);
    cx_buf_puts(&q, "");
    cx_buf_puts(&h, "");
    cx_buf_puts(body, "");
    r->query = cx_buf_steal(&q);
    r->headers = cx_buf_steal(&h);
    r->body = cx_strdup(body->data ? body->data : "");
    r->at = cx_mono_now();
    if (s->status[s->n])
      status = s->status[s->n];
    if (s->reply[s->n])
      reply = s->reply[s->n];
    s->n++;
  }
  pthread_mutex_unlock(s->mu);
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      strlen(reply), (void *)reply, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void done_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
  struct cx_buf *b = *con_cls;
  (void)cls, (void)c, (void)toe;
  if (b != NULL) {
    cx_buf_free(b);
    free(b);
  }
  *con_cls = NULL;
}

void cx_test_sink_start(struct cx_test_sink *s)
{
  char err[CX_ERR_LEN];
  memset(s, 0, sizeof *s);
  s->mu = calloc(1, sizeof(pthread_mutex_t));
  ASSERT(s->mu != NULL);
  pthread_mutex_init(s->mu, NULL);
  ASSERT_MSG(cx_svc_port_alloc(&s->port, err) == 0, "%s", err);
  s->d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
      (uint16_t)s->port, NULL, NULL, handler, s, MHD_OPTION_NOTIFY_COMPLETED,
      done_cb, NULL, MHD_OPTION_END);
  ASSERT(s->d != NULL);
}

void cx_test_sink_stop(struct cx_test_sink *s)
{
  if (s->d == NULL)
    return;
  MHD_stop_daemon(s->d);
  s->d = NULL;
  for (size_t i = 0; i < s->n; i++) {
    cx_free(s->r[i].query);
    cx_free(s->r[i].headers);
    cx_free(s->r[i].body);
  }
  pthread_mutex_destroy(s->mu);
  free(s->mu);
}

void cx_test_sink_script(struct cx_test_sink *s, size_t i, unsigned status,
                         const char *reply)
{
  pthread_mutex_lock(s->mu);
  s->status[i] = status;
  s->reply[i] = reply;
  pthread_mutex_unlock(s->mu);
}

size_t cx_test_sink_wait(struct cx_test_sink *s, size_t want, int timeout_ms)
{
  cx_mono end = cx_mono_now() + (cx_mono)timeout_ms * 1000;
  for (;;) {
    pthread_mutex_lock(s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(s->mu);
    if (n >= want || cx_mono_now() > end)
      return n;
    cx_sleep_us(20000);
  }
}

char *cx_test_sink_arg(const struct cx_test_sink *s, size_t i, const char *k,
                       char *out, size_t cap)
{
  size_t kl = strlen(k);
  const char *q = s->r[i].query;
  out[0] = '\0';
  while (q && *q) {
    const char *amp = strchr(q, '&');
    size_t len = amp ? (size_t)(amp - q) : strlen(q);
    if (len > kl && strncmp(q, k, kl) == 0 && q[kl] == '=')
      snprintf(out, cap, "%.*s", (int)(len - kl - 1), q + kl + 1);
    q = amp ? amp + 1 : NULL;
  }
  return out;
}
