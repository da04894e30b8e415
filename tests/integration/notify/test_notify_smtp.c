/* notify, email channel, against a real SMTP server on loopback: Debian's
 * aiosmtpd run by smtp_sink.py (next to this file) with /usr/bin/python3.
 * Each test starts its own sink as a child (cx_svc_proc_*), sends, and
 * reads back what the server received: envelope (EHLO name, MAIL FROM,
 * RCPT TO, TLS, AUTH) and the message itself, parsed as RFC 5322. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "notify/notify.h"
#include "support/services.h"
#include "support/smtp_sink.h"
#include "support/test.h"

/* A header's value, unfolded (CRLF SP removed), or NULL. */
static char *header(const char *msg, const char *name)
{
  const char *end = strstr(msg, "\r\n\r\n");
  size_t nl = strlen(name);
  ASSERT(end != NULL);
  for (const char *l = msg; l < end; l = strstr(l, "\r\n") + 2) {
    if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
      struct cx_buf b = {0};
      const char *p = l + nl + 1;
      while (*p == ' ')
        p++;
      for (;;) {
        const char *e = strstr(p, "\r\n");
        cx_buf_append(&b, p, (size_t)(e - p));
        if (e[2] != ' ' && e[2] != '\t')
          break;
        p = e + 2; /* unfolding removes the CRLF only */
      }
      return cx_buf_steal(&b);
    }
  }
  return NULL;
}

static size_t b64dec(const char *in, size_t len, struct cx_buf *out)
{
  unsigned char tmp[128];
  size_t total = 0;
  while (len > 0) {
    size_t k = len > 96 ? 96 : len;
    int w = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)k);
    ASSERT(w >= 0);
    if (k == len && in[k - 1] == '=')
      w -= in[k - 2] == '=' ? 2 : 1;
    cx_buf_append(out, tmp, (size_t)w);
    total += (size_t)w;
    in += k;
    len -= k;
  }
  return total;
}

/* Decodes a Subject made of =?UTF-8?B?...?= words (or plain text). */
static char *decode_subject(const char *v)
{
  struct cx_buf b = {0};
  if (strncmp(v, "=?", 2) != 0) {
    cx_buf_puts(&b, v);
    return cx_buf_steal(&b);
  }
  while ((v = strstr(v, "=?UTF-8?B?")) != NULL) {
    v += 10;
    const char *e = strstr(v, "?=");
    ASSERT(e != NULL);
    b64dec(v, (size_t)(e - v), &b);
    v = e + 2;
  }
  cx_buf_append(&b, "", 0);
  return cx_buf_steal(&b);
}

/* The body, base64-decoded. */
static char *body_text(const char *msg)
{
  struct cx_buf raw = {0}, out = {0};
  for (const char *p = strstr(msg, "\r\n\r\n") + 4; *p; p++)
    if (*p != '\r' && *p != '\n')
      cx_buf_append(&raw, p, 1);
  b64dec(raw.data, raw.len, &out);
  cx_buf_append(&out, "", 0);
  cx_buf_free(&raw);
  return cx_buf_steal(&out);
}

static struct cx_notify *mk(const char *url, const struct cx_notify_conf *base)
{
  struct cx_notify_conf c = {0};
  struct cx_notify *n = NULL;
  char err[CX_ERR_LEN];
  if (base)
    c = *base;
  c.email.smtp_url = url;
  if (c.email.from == NULL)
    c.email.from = "Cronix 调度 <cron@cronix.test>";
  if (c.email.timeout_ms == 0)
    c.email.timeout_ms = 10000;
  c.public_url = "http://cron.test";
  if (c.backoff_ms == 0)
    c.backoff_ms = 20;
  ASSERT_MSG(cx_notify_create(&c, &n, err) == 0, "%s", err);
  return n;
}

static struct cx_notify_run the_run(void)
{
  struct cx_notify_run r = {0};
  r.job_name = "备份-数据库";
  r.job_id = 42;
  r.run_id = 77;
  r.node_uuid = "0b6e-node";
  r.node_host = "host1";
  r.scheduled = 1795000000;
  r.trigger = "schedule";
  r.attempts = 3;
  r.status = "failed";
  r.has_exit_code = 1;
  r.exit_code = 2;
  r.duration_ms = 1500;
  r.output = "starting\n.leading dot line\nerror: disk full\n";
  r.output_len = strlen(r.output);
  return r;
}

static void wait_done(struct cx_notify *n, uint64_t want,
                      struct cx_notify_stats *st)
{
  for (int i = 0; i < 3000; i++) {
    cx_notify_stats_get(n, st);
    if (st->sent + st->failed >= want)
      return;
    cx_sleep_us(10000);
  }
  ASSERT_MSG(0, "messages did not finish");
}

TEST_TIMEOUT(notify_email_arrives_with_facts_headers_and_recipients, 60)
{
  struct cx_test_smtp s;
  static const char *const plain[] = {NULL};
  cx_test_smtp_start(&s, plain);
  struct cx_notify_conf c = {0};
  c.email.starttls = CX_NOTIFY_STARTTLS_OFF;
  struct cx_notify *n = mk(s.url, &c);
  const char *const to[] = {"alice@cronix.test", "no email here",
                            "bob@cronix.test"};
  struct cx_notify_run r = the_run();
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_EMAIL, to, 3, &r), 0);
  cx_notify_destroy(n, 10000);          /* drains: the message is sent by now */
  ASSERT_EQ(cx_test_smtp_count(&s), 1); /* exactly one */

  char *env = cx_test_smtp_read(&s, 1, "env");
  ASSERT_CONTAINS(env, "helo: helo.cronix.test\n");
  ASSERT_CONTAINS(env, "from: cron@cronix.test\n");
  ASSERT_CONTAINS(env, "rcpt: alice@cronix.test\nrcpt: bob@cronix.test\n");
  ASSERT(strstr(env, "no email") == NULL);
  ASSERT_CONTAINS(env, "tls: no\n");

  char *msg = cx_test_smtp_read(&s, 1, "eml");
  char *v = header(msg, "Subject");
  char *subj = decode_subject(v);
  ASSERT_STREQ(subj, "[cronix] job \"备份-数据库\" failed on host1");
  char *from = header(msg, "From"), *to_h = header(msg, "To"),
       *date = header(msg, "Date"), *mid = header(msg, "Message-ID"),
       *ct = header(msg, "Content-Type"),
       *cte = header(msg, "Content-Transfer-Encoding");
  ASSERT(from && to_h && date && mid && ct && cte);
  ASSERT_CONTAINS(from, "<cron@cronix.test>");
  ASSERT_CONTAINS(from, "=?UTF-8?B?");
  ASSERT_STREQ(to_h, "alice@cronix.test, bob@cronix.test");
  /* RFC 5322 date: "Www, DD Mmm YYYY HH:MM:SS +0000" */
  ASSERT_EQ(strlen(date), 31);
  ASSERT(date[3] == ',' && strcmp(date + 25, " +0000") == 0);
  ASSERT(mid[0] == '<' && mid[strlen(mid) - 1] == '>' && strchr(mid, '@'));
  ASSERT_STREQ(ct, "text/plain; charset=UTF-8");
  ASSERT_STREQ(cte, "base64");
  ASSERT(header(msg, "MIME-Version") != NULL);

  char *body = body_text(msg);
  ASSERT_CONTAINS(body, "Job: 备份-数据库 (id 42)\n");
  ASSERT_CONTAINS(body, "Node: host1 (0b6e-node)\n");
  ASSERT_CONTAINS(body, "Scheduled: 2026-11-18T11:06:40Z\n");
  ASSERT_CONTAINS(body, "Trigger: schedule\n");
  ASSERT_CONTAINS(body, "Attempts: 3\n");
  ASSERT_CONTAINS(body, "Status: failed\n");
  ASSERT_CONTAINS(body, "Exit code: 2\n");
  ASSERT_CONTAINS(body, "Duration: 1.500 s\n");
  ASSERT_CONTAINS(body, "Run: http://cron.test/runs/77\n");
  ASSERT_CONTAINS(body, "\n.leading dot line\nerror: disk full\n");
  free(body);
  free(from), free(to_h), free(date), free(mid), free(ct), free(cte);
  free(subj);
  free(v);
  free(msg);
  free(env);
  cx_test_smtp_stop(&s);
}

TEST_TIMEOUT(notify_email_starttls_verified_with_the_ca_file, 60)
{
  struct cx_test_smtp s;
  static const char *const opt[] = {"--require-starttls", NULL};
  cx_test_smtp_start(&s, opt);
  struct cx_notify_conf c = {0};
  c.email.starttls = CX_NOTIFY_STARTTLS_REQUIRED;
  c.email.ca_file = s.cert;
  struct cx_notify *n = mk(s.url, &c);
  const char *const to[] = {"ops@cronix.test"};
  char answer[CX_NOTIFY_ANSWER_LEN], err[CX_ERR_LEN];
  int rc = cx_notify_send_test(n, CX_NOTIFY_EMAIL, to, 1, answer, sizeof answer,
                               err);
  ASSERT_MSG(rc == 0, "%s", err);
  ASSERT_CONTAINS(answer, "250");
  ASSERT_CONTAINS(answer, "queued as sink-1");
  char *env = cx_test_smtp_read(&s, 1, "env");
  ASSERT_CONTAINS(env, "tls: yes\n");
  free(env);
  cx_notify_destroy(n, 1000);
  cx_test_smtp_stop(&s);
}

TEST_TIMEOUT(notify_email_starttls_without_verification_works, 60)
{
  struct cx_test_smtp s;
  static const char *const opt[] = {"--starttls", NULL};
  cx_test_smtp_start(&s, opt);
  struct cx_notify_conf c = {0};
  c.email.tls_insecure = 1; /* try: STARTTLS is offered, so it is used */
  struct cx_notify *n = mk(s.url, &c);
  const char *const to[] = {"ops@cronix.test"};
  struct cx_notify_run r = the_run();
  struct cx_notify_stats st;
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_EMAIL, to, 1, &r), 0);
  wait_done(n, 1, &st);
  ASSERT_EQ(st.sent, 1);
  char *env = cx_test_smtp_read(&s, 1, "env");
  ASSERT_CONTAINS(env, "tls: yes\n");
  free(env);
  cx_notify_destroy(n, 1000);
  cx_test_smtp_stop(&s);
}

TEST_TIMEOUT(notify_email_unverifiable_certificate_fails_cleanly, 60)
{
  struct cx_test_smtp s;
  static const char *const opt[] = {"--starttls", NULL};
  cx_test_smtp_start(&s, opt);
  struct cx_notify_conf c = {0};
  c.retries = 3;
  struct cx_notify *n = mk(s.url, &c); /* verify on, no CA file */
  const char *const to[] = {"ops@cronix.test"};
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_notify_send_test(n, CX_NOTIFY_EMAIL, to, 1, NULL, 0, err),
            CX_EPROTO);
  ASSERT_CONTAINS(err, "certificate");
  struct cx_notify_run r = the_run();
  struct cx_notify_stats st;
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_EMAIL, to, 1, &r), 0);
  wait_done(n, 1, &st);
  ASSERT_EQ(st.failed, 1); /* permanent: not retried */
  ASSERT_EQ(st.retried, 0);
  ASSERT_EQ(cx_test_smtp_count(&s), 0);
  cx_notify_destroy(n, 1000);
  cx_test_smtp_stop(&s);
}

TEST_TIMEOUT(notify_email_required_starttls_not_offered_is_permanent, 60)
{
  struct cx_test_smtp s;
  static const char *const plain[] = {NULL};
  cx_test_smtp_start(&s, plain);
  struct cx_notify_conf c = {0};
  c.email.starttls = CX_NOTIFY_STARTTLS_REQUIRED;
  struct cx_notify *n = mk(s.url, &c);
  const char *const to[] = {"ops@cronix.test"};
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_notify_send_test(n, CX_NOTIFY_EMAIL, to, 1, NULL, 0, err),
            CX_EPROTO);
  ASSERT_EQ(cx_test_smtp_count(&s), 0);
  cx_notify_destroy(n, 1000);
  cx_test_smtp_stop(&s);
}

TEST_TIMEOUT(notify_email_smtps_implicit_tls, 60)
{
  struct cx_test_smtp s;
  static const char *const opt[] = {"--implicit-tls", NULL};
  cx_test_smtp_start(&s, opt);
  char url[160];
  snprintf(url, sizeof url, "smtps://127.0.0.1:%d/helo.cronix.test", s.port);
  struct cx_notify_conf c = {0};
  c.email.ca_file = s.cert;
  struct cx_notify *n = mk(url, &c);
  const char *const to[] = {"ops@cronix.test"};
  char err[CX_ERR_LEN];
  int rc = cx_notify_send_test(n, CX_NOTIFY_EMAIL, to, 1, NULL, 0, err);
  ASSERT_MSG(rc == 0, "%s", err);
  ASSERT_EQ(cx_test_smtp_count(&s), 1);
  cx_notify_destroy(n, 1000);
  cx_test_smtp_stop(&s);
}

TEST_TIMEOUT(notify_email_auth_login_and_denial, 60)
{
  struct cx_test_smtp s;
  static const char *const opt[] = {"--auth", "mailer:pa55", NULL};
  cx_test_smtp_start(&s, opt);
  struct cx_notify_conf c = {0};
  c.email.starttls = CX_NOTIFY_STARTTLS_OFF;
  c.email.username = "mailer";
  c.email.password = "pa55";
  struct cx_notify *n = mk(s.url, &c);
  const char *const to[] = {"ops@cronix.test"};
  char err[CX_ERR_LEN];
  int rc = cx_notify_send_test(n, CX_NOTIFY_EMAIL, to, 1, NULL, 0, err);
  ASSERT_MSG(rc == 0, "%s", err);
  char *env = cx_test_smtp_read(&s, 1, "env");
  ASSERT_CONTAINS(env, "auth: mailer\n");
  free(env);
  cx_notify_destroy(n, 1000);
  c.email.password = "wrong";
  n = mk(s.url, &c);
  ASSERT_EQ(cx_notify_send_test(n, CX_NOTIFY_EMAIL, to, 1, NULL, 0, err),
            CX_EAUTH);
  ASSERT_EQ(cx_test_smtp_count(&s), 1);
  cx_notify_destroy(n, 1000);
  cx_test_smtp_stop(&s);
}

TEST_TIMEOUT(notify_email_refused_recipient_does_not_block_others, 60)
{
  struct cx_test_smtp s;
  static const char *const opt[] = {"--reject-rcpt", "gone@cronix.test", NULL};
  cx_test_smtp_start(&s, opt);
  struct cx_notify_conf c = {0};
  c.email.starttls = CX_NOTIFY_STARTTLS_OFF;
  struct cx_notify *n = mk(s.url, &c);
  const char *const to[] = {"a@cronix.test", "gone@cronix.test",
                            "b@cronix.test"};
  struct cx_notify_run r = the_run();
  struct cx_notify_stats st;
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_EMAIL, to, 3, &r), 0);
  wait_done(n, 1, &st);
  ASSERT_EQ(st.sent, 1);
  char *env = cx_test_smtp_read(&s, 1, "env");
  ASSERT_CONTAINS(env, "rcpt: a@cronix.test\nrcpt: b@cronix.test\n");
  ASSERT(strstr(env, "gone@") == NULL);
  free(env);
  cx_notify_destroy(n, 1000);
  cx_test_smtp_stop(&s);
}

TEST_TIMEOUT(notify_email_server_down_retries_then_logged_loss, 60)
{
  char err[CX_ERR_LEN], url[128], logp[CX_SVC_PATH_LEN];
  int port;
  ASSERT_MSG(cx_svc_port_alloc(&port, err) == 0, "%s", err);
  snprintf(url, sizeof url, "smtp://127.0.0.1:%d/helo.cronix.test", port);
  snprintf(logp, sizeof logp, "%s/notify.log", cx_test_tmpdir());
  int fd = open(logp, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT(fd >= 0);
  cx_log_set_fd(fd);
  struct cx_notify_conf c = {0};
  c.retries = 2;
  struct cx_notify *n = mk(url, &c);
  const char *const to[] = {"ops@cronix.test"};
  struct cx_notify_run r = the_run();
  struct cx_notify_stats st;
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_EMAIL, to, 1, &r), 0);
  wait_done(n, 1, &st);
  ASSERT_EQ(st.failed, 1);
  ASSERT_EQ(st.retried, 2);
  ASSERT_EQ(st.sent, 0);
  ASSERT_EQ(st.pending, 0);
  cx_notify_destroy(n, 1000);
  cx_log_set_fd(2);
  close(fd);
  struct cx_buf b = {0};
  char tmp[4096];
  FILE *f = fopen(logp, "r");
  size_t k;
  while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
    cx_buf_append(&b, tmp, k);
  fclose(f);
  cx_buf_append(&b, "", 0);
  ASSERT_CONTAINS(b.data, "attempt 1 of 3 failed");
  ASSERT_CONTAINS(b.data, "attempt 2 of 3 failed");
  ASSERT_CONTAINS(b.data, "LOST after 3 attempt(s)");
  cx_buf_free(&b);
}

TEST_TIMEOUT(notify_email_node_down_alert_arrives, 60)
{
  struct cx_test_smtp s;
  static const char *const plain[] = {NULL};
  cx_test_smtp_start(&s, plain);
  struct cx_notify *n = mk(s.url, NULL);
  const char *const admins[] = {"admin@cronix.test"};
  const char *const jobs[] = {"backup", "report"};
  struct cx_notify_node d = {"0b6e-node", "host1", 1795000000, jobs, 2, 0};
  ASSERT_EQ(cx_notify_node_down(n, CX_NOTIFY_EMAIL, admins, 1, &d), 0);
  cx_notify_destroy(n, 10000);
  ASSERT_EQ(cx_test_smtp_wait(&s, 1, 1000), 1);
  char *msg = cx_test_smtp_read(&s, 1, "eml");
  char *subj = header(msg, "Subject");
  ASSERT_STREQ(subj, "[cronix] node host1 is down");
  char *body = body_text(msg);
  ASSERT_CONTAINS(body, "Node id: 0b6e-node\n");
  ASSERT_CONTAINS(body, "Jobs affected: 2\n");
  ASSERT_CONTAINS(body, "Jobs:\nbackup\nreport\n");
  free(body);
  free(subj);
  free(msg);
  cx_test_smtp_stop(&s);
}
