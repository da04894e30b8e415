/*
 * A real SMTP server for tests: Debian's aiosmtpd, run by
 * tests/support/smtp_sink.py with /usr/bin/python3 as a child of
 * the test. Every received message is kept as <dir>/<k>.eml (the message)
 * and <k>.env (envelope: EHLO name, MAIL FROM, RCPT TO, TLS, AUTH), k from 1.
 */
#ifndef CX_TEST_SMTP_SINK_H
#define CX_TEST_SMTP_SINK_H

#include <stddef.h>

#include "support/services.h"

struct cx_test_smtp {
  struct cx_svc_proc proc;
  char dir[CX_SVC_PATH_LEN];
  int port;
  char url[128]; /* smtp://127.0.0.1:P/helo.cronix.test */
  char cert[CX_SVC_PATH_LEN + 16];
};

/* Starts a sink on a free loopback port; extra = more smtp_sink.py options
 * (NULL-terminated, may be NULL), e.g. {"--starttls", NULL}. Fails the test
 * when it cannot start. */
void cx_test_smtp_start(struct cx_test_smtp *s, const char *const *extra);
void cx_test_smtp_stop(struct cx_test_smtp *s);
/* Messages received so far. */
int cx_test_smtp_count(const struct cx_test_smtp *s);
/* Waits up to timeout_ms for want messages; returns the count. */
int cx_test_smtp_wait(const struct cx_test_smtp *s, int want, int timeout_ms);
/* Message k's file with extension ext ("eml", "env"), NUL-terminated;
 * free with cx_free. */
char *cx_test_smtp_read(const struct cx_test_smtp *s, int k, const char *ext);

#endif
