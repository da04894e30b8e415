/* notify: the pure parts without a network: the Feishu signature (doc test
 * vector), text cleaning, RFC 2047 headers, the RFC 5322 message, the
 * Feishu body under hostile input, configuration checks, and "nothing to
 * send" paths. */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify-int.h"
#include "support/test.h"

/* 1 if s[0..n) is valid UTF-8 (strict: no overlongs, no surrogates). */
static int utf8_valid(const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i], k, cp;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF)
      k = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
      k = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
      k = 3, cp = c & 0x07;
    else
      return 0;
    if (i + k >= n)
      return 0;
    for (unsigned j = 1; j <= k; j++) {
      if ((p[i + j] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i + j] & 0x3F);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += k + 1;
  }
  return 1;
}

/* A notifier configured for both channels at unroutable addresses (no
 * message is sent by these tests). */
static struct cx_notify *mk(const char *secret)
{
  struct cx_notify_conf c = {0};
  struct cx_notify *n = NULL;
  char err[CX_ERR_LEN] = "";
  c.email.smtp_url = "smtp://127.0.0.1:1/helo.test";
  c.email.from = "Cronix Ops <cron@example.org>";
  c.feishu.webhook_url = "http://127.0.0.1:1/hook";
  c.feishu.secret = secret;
  c.public_url = "https://cron.example.org/";
  int rc = cx_notify_create(&c, &n, err);
  ASSERT_MSG(rc == 0, "create: %s", err);
  return n;
}

static const char *const one_mail[] = {"ops@example.org"};

TEST(notify_feishu_sign_matches_doc_vector)
{
  char sign[CX_NOTIFY_SIGN_LEN];
  ASSERT_EQ(cx_notify_feishu_sign(1599360473, "demo", sign), 0);
  ASSERT_STREQ(sign, "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8=");
  /* a different secret gives a different signature */
  ASSERT_EQ(cx_notify_feishu_sign(1599360473, "demo2", sign), 0);
  ASSERT(strcmp(sign, "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8=") != 0);
  ASSERT_EQ(cx_notify_feishu_sign(1, NULL, sign), CX_EPARSE);
}

TEST(notify_clean_line_makes_valid_utf8_without_controls)
{
  /* invalid bytes, an overlong '/', a surrogate, controls, DEL */
  const char in[] = "a\xff"
                    "b\xc0\xaf"
                    "c\xed\xa0\x80"
                    "d\r\nBcc: x\x01\x7f"
                    "\xe4\xbd\xa0";
  char *s = cx__notify_clean_line(in, 256);
  ASSERT(s != NULL);
  ASSERT(utf8_valid(s, strlen(s)));
  ASSERT(strchr(s, '\r') == NULL && strchr(s, '\n') == NULL);
  for (const char *p = s; *p; p++)
    ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f);
  ASSERT_CONTAINS(s, "a\xEF\xBF\xBD"
                     "b");
  ASSERT_CONTAINS(s, "\xe4\xbd\xa0"); /* valid text kept */
  cx_free(s);
}

TEST(notify_clean_line_cuts_on_a_character_boundary)
{
  /* 100 x U+4F60 (3 bytes each), cut at 10 bytes -> 3 characters */
  char in[301];
  for (int i = 0; i < 100; i++)
    memcpy(in + 3 * i, "\xe4\xbd\xa0", 3);
  in[300] = '\0';
  char *s = cx__notify_clean_line(in, 10);
  ASSERT(s != NULL);
  ASSERT_EQ(strlen(s), 9);
  ASSERT(utf8_valid(s, 9));
  cx_free(s);
}

TEST(notify_clean_tail_keeps_the_end_on_utf8_and_line_boundaries)
{
  /* lines "line N <U+4F60>\n"; the tail must be valid, at most max bytes,
   * start at a line, and end with the last line */
  struct cx_buf b = {0};
  size_t cut = 0;
  for (int i = 0; i < 500; i++)
    cx_buf_printf(&b, "line %d \xe4\xbd\xa0\n", i);
  char *t = cx__notify_clean_tail(b.data, b.len, 1000, &cut);
  ASSERT(t != NULL);
  ASSERT_OP(strlen(t), <=, 1000);
  ASSERT_OP(strlen(t), >=, 500);
  ASSERT(utf8_valid(t, strlen(t)));
  ASSERT(strncmp(t, "line ", 5) == 0);
  size_t tl = strlen(t);
  ASSERT(strcmp(t + tl - strlen("line 499 \xe4\xbd\xa0\n"),
                "line 499 \xe4\xbd\xa0\n") == 0);
  ASSERT_EQ(cut, b.len - tl);
  cx_free(t);
  /* CRLF becomes LF, NUL and other controls become U+FFFD, tab stays */
  t = cx__notify_clean_tail("a\r\nb\0c\td\x1b", 9, 100, &cut);
  ASSERT_STREQ(t, "a\nb\xEF\xBF\xBD"
                  "c\td\xEF\xBF\xBD");
  ASSERT_EQ(cut, 0);
  cx_free(t);
  cx_buf_free(&b);
}

/* Decodes "Name: =?UTF-8?B?..?=\r\n =?UTF-8?B?..?=\r\n" (or plain text). */
static char *decode_words(const char *hdr_value)
{
  struct cx_buf out = {0};
  const char *p = hdr_value;
  if (strstr(p, "=?") == NULL) {
    cx_buf_puts(&out, p);
    return cx_buf_steal(&out);
  }
  while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
    p += 10;
    const char *e = strstr(p, "?=");
    ASSERT(e != NULL);
    unsigned char dec[256];
    int k = EVP_DecodeBlock(dec, (const unsigned char *)p, (int)(e - p));
    ASSERT(k >= 0);
    /* EVP_DecodeBlock counts padding as zero bytes */
    if (e - p >= 2 && e[-1] == '=')
      k -= e[-2] == '=' ? 2 : 1;
    cx_buf_append(&out, dec, (size_t)k);
    p = strstr(p, "?=") + 2;
  }
  return cx_buf_steal(&out);
}

TEST(notify_mail_subject_is_rfc2047_and_decodes_back)
{
  const char *subj = "[cronix] job \"备份-数据库-每日全量备份到对象存储\" "
                     "failed on 主机-01";
  struct cx_buf b = {0};
  cx__mail_header_words(&b, "Subject", subj);
  ASSERT(!cx_buf_failed(&b));
  ASSERT(strncmp(b.data, "Subject: =?UTF-8?B?", 19) == 0);
  /* pure ASCII, lines <= 78, CRLF + space folding, CRLF at the end */
  for (size_t i = 0, col = 0; i < b.len; i++, col++) {
    ASSERT((unsigned char)b.data[i] < 0x80);
    if (b.data[i] == '\n') {
      ASSERT(i > 0 && b.data[i - 1] == '\r');
      ASSERT(i + 1 == b.len || b.data[i + 1] == ' ');
      col = 0;
    }
    ASSERT_OP(col, <=, 78);
  }
  ASSERT(b.len >= 2 && strcmp(b.data + b.len - 2, "\r\n") == 0);
  char *dec = decode_words(b.data + 9);
  ASSERT_STREQ(dec, subj);
  cx_free(dec);
  cx_buf_reset(&b);
  cx__mail_header_words(&b, "Subject", "plain ascii");
  ASSERT_STREQ(b.data, "Subject: plain ascii\r\n");
  cx_buf_free(&b);
}

TEST(notify_mail_addr_check_table)
{
  static const struct {
    const char *a;
    int ok;
  } t[] = {
      {"ops@example.org", 1},
      {"a.b+tag@sub.example.co", 1},
      {"", 0},
      {"noat", 0},
      {"@example.org", 0},
      {"a@", 0},
      {"a..b@example.org", 0},
      {".a@example.org", 0},
      {"a@example..org", 0},
      {"a b@example.org", 0},
      {"a@example.org\r\nRCPT TO:<x@y>", 0},
      {"<a@example.org>", 0},
      {"a@exa mple.org", 0},
      {"用户@example.org", 0},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(t); i++)
    ASSERT_MSG(cx__mail_addr_ok(t[i].a) == t[i].ok, "%s: want %d", t[i].a,
               t[i].ok);
}

static struct cx_notify_run hostile_run(const char *out, size_t out_len)
{
  struct cx_notify_run r = {0};
  r.job_name = "x\"y\\z\r\nBcc: evil@example.net\n<at user_id=\"all\">\x01\xff";
  r.job_id = 42;
  r.run_id = 77;
  r.node_uuid = "6f1c-uuid";
  r.node_host = "host\r\nX-Evil: 1";
  r.scheduled = 1795000000;
  r.trigger = "schedule";
  r.attempts = 3;
  r.status = "failed";
  r.has_exit_code = 1;
  r.exit_code = 2;
  r.duration_ms = 1234;
  r.output = out;
  r.output_len = out_len;
  return r;
}

TEST(notify_mail_message_has_headers_and_no_injection)
{
  struct cx_notify *n = mk(NULL);
  struct cx_notify_run r = hostile_run("out\n", 4);
  const char *const to[] = {"a@example.org", "b@example.org"};
  int rc;
  struct cx__notify_msg *m =
      cx__notify_msg_run(n, CX_NOTIFY_EMAIL, to, 2, &r, &rc);
  ASSERT(m != NULL);
  struct cx_buf b = {0};
  ASSERT_EQ(cx__mail_build(n, m, 1795000000, &b), 0);
  /* the header block: every line ends in CRLF, starts with a known name or
   * a folding space */
  char *end = strstr(b.data, "\r\n\r\n");
  ASSERT(end != NULL);
  static const char *const names[] = {"Date: ",
                                      "From: ",
                                      "To: ",
                                      "Subject: ",
                                      "Message-ID: <",
                                      "MIME-Version: 1.0",
                                      "Content-Type: text/plain; charset=UTF-8",
                                      "Content-Transfer-Encoding: base64",
                                      "Auto-Submitted: auto-generated"};
  int seen[CX_ARRAY_LEN(names)] = {0};
  for (char *line = b.data; line < end + 2;) {
    char *eol = strstr(line, "\r\n");
    ASSERT(eol != NULL);
    for (char *p = line; p < eol; p++)
      ASSERT(*p != '\r' && *p != '\n');
    if (line[0] != ' ') {
      int known = 0;
      for (size_t i = 0; i < CX_ARRAY_LEN(names); i++)
        if (strncmp(line, names[i], strlen(names[i])) == 0)
          known = 1, seen[i]++;
      ASSERT_MSG(known, "unexpected header line: %.*s", (int)(eol - line),
                 line);
    }
    line = eol + 2;
  }
  for (size_t i = 0; i < CX_ARRAY_LEN(names); i++)
    ASSERT_MSG(seen[i] == 1, "%s seen %d times", names[i], seen[i]);
  ASSERT_CONTAINS(b.data, "Date: Wed, 18 Nov 2026 11:06:40 +0000\r\n");
  ASSERT_CONTAINS(b.data, "From: \"Cronix Ops\" <cron@example.org>\r\n");
  ASSERT_CONTAINS(b.data, "To: a@example.org,\r\n b@example.org\r\n");
  ASSERT_CONTAINS(b.data, "@example.org>\r\n");
  cx_buf_free(&b);
  cx__notify_msg_free(m);
  cx_notify_destroy(n, 0);
}

TEST(notify_mail_body_decodes_to_the_facts)
{
  struct cx_notify *n = mk(NULL);
  struct cx_notify_run r = hostile_run("line1\nlast line\n", 16);
  int rc;
  struct cx__notify_msg *m =
      cx__notify_msg_run(n, CX_NOTIFY_EMAIL, one_mail, 1, &r, &rc);
  ASSERT(m != NULL);
  struct cx_buf b = {0}, dec = {0};
  ASSERT_EQ(cx__mail_build(n, m, 1795000000, &b), 0);
  char *p = strstr(b.data, "\r\n\r\n") + 4;
  /* decode line by line */
  while (*p) {
    char *eol = strstr(p, "\r\n");
    ASSERT(eol != NULL);
    ASSERT_OP(eol - p, <=, 76);
    unsigned char tmp[80];
    int k = EVP_DecodeBlock(tmp, (unsigned char *)p, (int)(eol - p));
    ASSERT(k >= 0);
    if (eol - p >= 2 && eol[-1] == '=')
      k -= eol[-2] == '=' ? 2 : 1;
    cx_buf_append(&dec, tmp, (size_t)k);
    p = eol + 2;
  }
  ASSERT(utf8_valid(dec.data, dec.len));
  ASSERT_CONTAINS(dec.data, "(id 42)");
  ASSERT_CONTAINS(dec.data, "Node: host  X-Evil: 1 (6f1c-uuid)\n");
  ASSERT_CONTAINS(dec.data, "Scheduled: 2026-11-18T11:06:40Z\n");
  ASSERT_CONTAINS(dec.data, "Trigger: schedule\n");
  ASSERT_CONTAINS(dec.data, "Attempts: 3\n");
  ASSERT_CONTAINS(dec.data, "Status: failed\n");
  ASSERT_CONTAINS(dec.data, "Exit code: 2\n");
  ASSERT_CONTAINS(dec.data, "Duration: 1.234 s\n");
  ASSERT_CONTAINS(dec.data, "Run: https://cron.example.org/runs/77\n");
  ASSERT_CONTAINS(dec.data, "Output:\nline1\nlast line\n");
  cx_buf_free(&b);
  cx_buf_free(&dec);
  cx__notify_msg_free(m);
  cx_notify_destroy(n, 0);
}

TEST(notify_feishu_body_is_valid_json_for_hostile_input)
{
  struct cx_notify *n = mk("s3cret");
  size_t big = 1 << 20;
  char *out = malloc(big);
  ASSERT(out != NULL);
  for (size_t i = 0; i < big; i++) /* every byte value, incl. NUL */
    out[i] = (char)(i * 7 % 256);
  memcpy(out + big - 8, "THE-END\n", 8);
  struct cx_notify_run r = hostile_run(out, big);
  const char *const to[] = {"ou_abc123", "bad id", "ou_def456"};
  int rc;
  struct cx__notify_msg *m =
      cx__notify_msg_run(n, CX_NOTIFY_FEISHU, to, 3, &r, &rc);
  ASSERT(m != NULL);
  ASSERT_EQ(m->n_to, 2);
  /* a small limit forces the output cut */
  char *body = cx__feishu_body(n, m, 1599360473, 3000, &rc);
  ASSERT_MSG(body != NULL, "rc %d", rc);
  ASSERT_OP(strlen(body), <=, 3000);
  json_error_t je;
  json_t *root = json_loads(body, 0, &je);
  ASSERT_MSG(root != NULL, "%s", je.text);
  ASSERT_STREQ(json_string_value(json_object_get(root, "msg_type")), "post");
  ASSERT_STREQ(json_string_value(json_object_get(root, "timestamp")),
               "1599360473");
  char sign[CX_NOTIFY_SIGN_LEN];
  cx_notify_feishu_sign(1599360473, "s3cret", sign);
  ASSERT_STREQ(json_string_value(json_object_get(root, "sign")), sign);
  json_t *post = json_object_get(
      json_object_get(json_object_get(root, "content"), "post"), "zh_cn");
  ASSERT(json_is_string(json_object_get(post, "title")));
  json_t *paras = json_object_get(post, "content");
  ASSERT(json_is_array(paras));
  int ats = 0, end_seen = 0, ok_name = 0;
  size_t i, j;
  json_t *para, *el;
  json_array_foreach(paras, i, para) json_array_foreach(para, j, el)
  {
    const char *tag = json_string_value(json_object_get(el, "tag"));
    const char *text = json_string_value(json_object_get(el, "text"));
    if (strcmp(tag, "at") == 0) {
      const char *id = json_string_value(json_object_get(el, "user_id"));
      ASSERT(strcmp(id, "ou_abc123") == 0 || strcmp(id, "ou_def456") == 0);
      ats++;
    }
    if (text && strstr(text, "THE-END"))
      end_seen = 1;
    if (text && strstr(text, "x\"y\\z  Bcc: evil@example.net <at user_id="))
      ok_name = 1;
  }
  ASSERT_EQ(ats, 2);
  ASSERT(end_seen);
  ASSERT(ok_name); /* kept as text (escaped by jansson), one line */
  json_decref(root);
  free(body);
  cx__notify_msg_free(m);
  free(out);
  cx_notify_destroy(n, 0);
}

TEST(notify_create_rejects_bad_settings_naming_the_field)
{
  struct cx_notify *n = NULL;
  char err[CX_ERR_LEN];
  struct cx_notify_conf c = {0};
  c.email.smtp_url = "http://mail.example.org";
  c.email.from = "cron@example.org";
  ASSERT_EQ(cx_notify_create(&c, &n, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "notify.email.smtp_url");
  c.email.smtp_url = "smtp://mail.example.org";
  c.email.from = NULL;
  ASSERT_EQ(cx_notify_create(&c, &n, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "notify.email.from");
  c.email.from = "Name <not an address>";
  ASSERT_EQ(cx_notify_create(&c, &n, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "notify.email.from");
  c.email.from = "cron@example.org";
  c.feishu.webhook_url = "ftp://x";
  ASSERT_EQ(cx_notify_create(&c, &n, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "notify.feishu.webhook_url");
  c.feishu.webhook_url = NULL;
  c.workers = 3;
  ASSERT_EQ(cx_notify_create(&c, &n, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "notify.workers");
  ASSERT(n == NULL);
  c.workers = 2;
  ASSERT_EQ(cx_notify_create(&c, &n, err), 0);
  cx_notify_destroy(n, 0);
}

TEST(notify_smtp_auth_over_plain_text_is_refused_at_create)
{
  /* url, username, starttls, accepted? */
  static const struct {
    const char *url, *user;
    enum cx_notify_starttls tls;
    int ok;
  } cases[] = {
      /* "try" with a user: a stripped STARTTLS offer would leak the
       * password; refused, like "off" to another host. */
      {"smtp://mail.example.org:587", "cronix", CX_NOTIFY_STARTTLS_TRY, 0},
      {"smtp://cronix:pw@mail.example.org:587", NULL, CX_NOTIFY_STARTTLS_TRY,
       0},
      {"smtp://mail.example.org:587", "cronix", CX_NOTIFY_STARTTLS_OFF, 0},
      {"smtp://127.0.0.1@mail.example.org:25", "u", CX_NOTIFY_STARTTLS_OFF, 0},
      /* Encrypted, no AUTH at all, or a relay on this machine: fine. */
      {"smtp://mail.example.org:587", "cronix", CX_NOTIFY_STARTTLS_REQUIRED, 1},
      {"smtps://mail.example.org:465", "cronix", CX_NOTIFY_STARTTLS_TRY, 1},
      {"smtp://mail.example.org:25", NULL, CX_NOTIFY_STARTTLS_TRY, 1},
      {"smtp://mail.example.org:25", "", CX_NOTIFY_STARTTLS_OFF, 1},
      {"smtp://127.0.0.1:25", "cronix", CX_NOTIFY_STARTTLS_OFF, 1},
      {"smtp://u@localhost:25/helo", "cronix", CX_NOTIFY_STARTTLS_OFF, 1},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(cases); i++) {
    struct cx_notify *n = NULL;
    char err[CX_ERR_LEN] = "";
    struct cx_notify_conf c = {0};
    c.email.smtp_url = cases[i].url;
    c.email.username = cases[i].user;
    c.email.password = "pw";
    c.email.starttls = cases[i].tls;
    c.email.from = "cron@example.org";
    int rc = cx_notify_create(&c, &n, err);
    ASSERT_MSG(rc == (cases[i].ok ? 0 : CX_EPARSE), "case %zu (%s): %d %s", i,
               cases[i].url, rc, err);
    if (!cases[i].ok) {
      ASSERT(n == NULL);
      ASSERT_CONTAINS(err, "notify.email.starttls");
      ASSERT_CONTAINS(err, "required");
    }
    cx_notify_destroy(n, 0);
  }
}

TEST(notify_nothing_to_send_queues_nothing_and_fails_nothing)
{
  struct cx_notify *n = mk(NULL);
  struct cx_notify_run r = hostile_run(NULL, 0);
  const char *const bad[] = {"not-an-address", NULL};
  const char *const ids[] = {"ou_1"};
  struct cx_notify_stats st;
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_EMAIL, NULL, 0, &r), 0);
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_EMAIL, bad, 2, &r), 0);
  ASSERT_EQ(cx_notify_run_failed(n, CX_NOTIFY_FEISHU, NULL, 0, &r), 0);
  ASSERT_EQ(cx_notify_run_failed(n, 7, ids, 1, &r), 0);
  ASSERT_EQ(cx_notify_run_failed(n, 0, ids, 1, &r), 0);
  cx_notify_stats_get(n, &st);
  ASSERT_EQ(st.queued, 0);
  ASSERT_EQ(st.skipped, 5);
  ASSERT_EQ(st.failed + st.sent + st.dropped + st.pending, 0);
  /* a channel that is not configured */
  struct cx_notify_conf c = {0};
  struct cx_notify *off = NULL;
  ASSERT_EQ(cx_notify_create(&c, &off, NULL), 0);
  ASSERT_EQ(cx_notify_run_failed(off, CX_NOTIFY_FEISHU, ids, 1, &r), 0);
  cx_notify_stats_get(off, &st);
  ASSERT_EQ(st.skipped, 1);
  ASSERT_EQ(st.queued, 0);
  char err[CX_ERR_LEN];
  ASSERT_EQ(
      cx_notify_send_test(off, CX_NOTIFY_EMAIL, one_mail, 1, NULL, 0, err),
      CX_EPARSE);
  ASSERT_CONTAINS(err, "notify.email.smtp_url");
  cx_notify_destroy(off, 0);
  cx_notify_destroy(n, 0);
}

TEST(notify_node_down_lists_jobs_capped)
{
  struct cx_notify *n = mk(NULL);
  const char *jobs[60];
  char names[60][16];
  for (int i = 0; i < 60; i++) {
    snprintf(names[i], sizeof names[i], "job-%d", i);
    jobs[i] = names[i];
  }
  struct cx_notify_node d = {"uuid-1", "web-3", 1795000000, jobs, 60, 0};
  int rc;
  struct cx__notify_msg *m =
      cx__notify_msg_node(n, CX_NOTIFY_EMAIL, one_mail, 1, &d, &rc);
  ASSERT(m != NULL);
  struct cx_buf t = {0};
  ASSERT_EQ(cx__notify_text(m, 1, &t), 0);
  ASSERT_STREQ(m->subject, "[cronix] node web-3 is down");
  ASSERT_CONTAINS(t.data, "Node id: uuid-1\n");
  ASSERT_CONTAINS(t.data, "Jobs affected: 60\n");
  ASSERT_CONTAINS(t.data, "job-49\n... and 10 more\n");
  ASSERT(strstr(t.data, "job-50\n") == NULL);
  cx_buf_free(&t);
  cx__notify_msg_free(m);
  cx_notify_destroy(n, 0);
}

/* Every allocation of building a message and its two renderings fails in
 * turn: each step reports -ENOMEM (or succeeds), never crashes or leaks
 * (the sanitizer build checks leaks at exit). */
TEST(notify_build_survives_each_allocation_failing)
{
  struct cx_notify *n = mk("s");
  const char *const to[] = {"ou_a", "ou_b"};
  const char *jobs[] = {"j1", "j2"};
  struct cx_notify_run r = hostile_run("some output\nlast\n", 17);
  struct cx_notify_node d = {"u", "h", 1, jobs, 2, 0};
  int completed = 0;
  for (long k = 1; k < 400 && !completed; k++) {
    int rc = 0, rc2 = 0;
    struct cx_buf b = {0};
    cx_alloc_fail_after(k);
    struct cx__notify_msg *m =
        cx__notify_msg_run(n, CX_NOTIFY_FEISHU, to, 2, &r, &rc);
    struct cx__notify_msg *m2 =
        cx__notify_msg_node(n, CX_NOTIFY_FEISHU, to, 2, &d, &rc2);
    char *body = m ? cx__feishu_body(n, m, 1, 20000, &rc) : NULL;
    int mb = m2 ? cx__mail_build(n, m2, 1, &b) : -ENOMEM;
    cx_alloc_fail_after(0);
    ASSERT(m != NULL || rc == -ENOMEM);
    ASSERT(m2 != NULL || rc2 == -ENOMEM);
    ASSERT(mb == 0 || mb == -ENOMEM);
    completed = m && m2 && body && mb == 0;
    free(body);
    cx_buf_free(&b);
    cx__notify_msg_free(m);
    cx__notify_msg_free(m2);
  }
  ASSERT(completed);
  cx_notify_destroy(n, 0);
}
