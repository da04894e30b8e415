/*
 * A local HTTP server for tests that stands in for a webhook service
 * (libmicrohttpd, a thread per connection, on a free loopback port). It
 * keeps every request whole (method, path, decoded query, headers, body,
 * arrival time) and answers each with a scripted status and body.
 */
#ifndef CX_TEST_HTTP_SINK_H
#define CX_TEST_HTTP_SINK_H

#include <stddef.h>

#include "util/util.h"

#define CX_TEST_SINK_MAX 16

struct cx_test_sink_req {
  char method[8], path[128];
  char *query;   /* "k=v&..." as decoded by the server, in order */
  char *headers; /* "Name: value\n"... */
  char *body;
  cx_mono at;
};

struct cx_test_sink {
  void *d; /* struct MHD_Daemon */
  int port;
  void *mu;                            /* pthread_mutex_t, owned */
  unsigned status[CX_TEST_SINK_MAX];   /* scripted replies; 0 = 200 */
  const char *reply[CX_TEST_SINK_MAX]; /* NULL = {"errcode":0,...} */
  size_t n;                            /* requests received */
  struct cx_test_sink_req r[CX_TEST_SINK_MAX];
};

/* Starts s on a free port (fails the test when it cannot). */
void cx_test_sink_start(struct cx_test_sink *s);
/* Stops it and frees the requests. */
void cx_test_sink_stop(struct cx_test_sink *s);
/* Request i's reply: status and body (borrowed, must outlive s). */
void cx_test_sink_script(struct cx_test_sink *s, size_t i, unsigned status,
                         const char *reply);
/* Requests received so far; waits up to timeout_ms for want of them. */
size_t cx_test_sink_wait(struct cx_test_sink *s, size_t want, int timeout_ms);
/* Value of query argument k of request i into out ("" if absent). */
char *cx_test_sink_arg(const struct cx_test_sink *s, size_t i, const char *k,
                       char *out, size_t cap);

#endif
