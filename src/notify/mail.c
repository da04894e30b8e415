/*
 * notify/mail: the email channel. Builds an RFC 5322 message (CRLF line
 * ends, RFC 2047 words for non-ASCII header text, a base64 UTF-8 text
 * body) and sends it with libcurl's SMTP client: one easy handle per
 * attempt, STARTTLS per configuration or smtps://, AUTH when a username is
 * set, one RCPT TO per recipient with CURLOPT_MAIL_RCPT_ALLLOWFAILS so a
 * refused recipient does not stop the others. Header injection cannot
 * happen: every header value is built from cleaned one-line text (no CR,
 * no LF, no controls) or from addresses checked by cx__mail_addr_ok.
 */
#include "notify/notify-int.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <string.h>

#define LOGC "notify"

/* ---- addresses --------------------------------------------------------- */

static int atext(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') ||
         (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

int cx__mail_addr_ok(const char *s)
{
  const char *at = strrchr(s, '@');
  size_t len = strnlen(s, 255), local;

  if (len == 0 || len > 254 || at == NULL || at == s)
    return 0;
  local = (size_t)(at - s);
  if (local > 64 || s[0] == '.' || s[local - 1] == '.')
    return 0;
  for (size_t i = 0; i < local; i++)
    if (!(atext((unsigned char)s[i]) || (s[i] == '.' && s[i + 1] != '.')))
      return 0;
  at++;
  if (*at == '\0' || *at == '.' || at[strlen(at) - 1] == '.')
    return 0;
  for (const char *p = at; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-' || (c == '.' && p[1] != '.')))
      return 0;
  }
  return 1;
}

int cx__mail_parse_from(const char *from, char **name, char **addr)
{
  const char *lt = strchr(from, '<'), *gt;
  char *a = NULL, *nm = NULL;
  size_t nlen;

  *name = *addr = NULL;
  if (lt == NULL) {
    if (!cx__mail_addr_ok(from))
      return CX_EPARSE;
    *addr = cx_strdup(from);
    return *addr ? 0 : -ENOMEM;
  }
  gt = strchr(lt, '>');
  if (gt == NULL || gt[1] != '\0')
    return CX_EPARSE;
  a = cx_strndup(lt + 1, (size_t)(gt - lt - 1));
  if (a == NULL)
    return -ENOMEM;
  if (!cx__mail_addr_ok(a)) {
    cx_free(a);
    return CX_EPARSE;
  }
  nlen = (size_t)(lt - from);
  while (nlen > 0 && from[nlen - 1] == ' ')
    nlen--;
  while (nlen > 0 && *from == ' ') {
    from++;
    nlen--;
  }
  if (nlen >= 2 && from[0] == '"' && from[nlen - 1] == '"') {
    from++;
    nlen -= 2;
  }
  if (nlen > 0) {
    char *raw = cx_strndup(from, nlen);
    nm = raw ? cx__notify_clean_line(raw, CX_NOTIFY_FIELD_MAX) : NULL;
    cx_free(raw);
    if (nm == NULL) {
      cx_free(a);
      return -ENOMEM;
    }
  }
  *name = nm;
  *addr = a;
  return 0;
}

/* ---- building ---------------------------------------------------------- */

static int plain_ascii(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7E)
      return 0;
  return 1;
}

static void b64(struct cx_buf *out, const unsigned char *p, size_t n)
{
  unsigned char tmp[4 * 57 / 3 + 2];

  while (n > 0) {
    size_t k = n > 57 ? 57 : n; /* 57 bytes = one 76-char line */
    int w = EVP_EncodeBlock(tmp, p, (int)k);
    cx_buf_append(out, tmp, (size_t)w);
    p += k;
    n -= k;
    if (n > 0)
      cx_buf_append(out, "\r\n", 2);
  }
}

void cx__mail_header_words(struct cx_buf *out, const char *name,
                           const char *value)
{
  size_t len = strlen(value), i = 0;

  cx_buf_printf(out, "%s: ", name);
  if (plain_ascii(value)) {
    cx_buf_puts(out, value);
    cx_buf_append(out, "\r\n", 2);
    return;
  }
  /* words of at most 39 bytes (52 base64 chars, 64 with the frame), never
   * splitting a UTF-8 character; folded with CRLF SP */
  while (i < len) {
    size_t k = len - i > 39 ? 39 : len - i;
    size_t end = cx_utf8_floor(value, len, i + k);
    k = end > i ? end - i : 1;
    if (i > 0)
      cx_buf_append(out, "\r\n ", 3);
    cx_buf_puts(out, "=?UTF-8?B?");
    b64(out, (const unsigned char *)value + i, k);
    cx_buf_puts(out, "?=");
    i += k;
  }
  cx_buf_append(out, "\r\n", 2);
}

static void rfc5322_date(struct cx_buf *out, int64_t t)
{
  static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed",
                                   "Thu", "Fri", "Sat"};
  static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  struct cx_civil c;

  cx_civil_from_seconds(t, &c);
  cx_buf_printf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
                wd[c.wday], c.day, mon[c.month - 1], c.year, c.hour, c.min,
                c.sec);
}

int cx__mail_build(const struct cx_notify *n, const struct cx__notify_msg *m,
                   int64_t now_s, struct cx_buf *out)
{
  struct cx_buf body = {0};
  char rnd[25];
  const char *domain = strrchr(n->from_addr, '@') + 1;

  rfc5322_date(out, now_s);
  if (n->from_hdr && plain_ascii(n->from_hdr)) {
    cx_buf_puts(out, "From: \"");
    for (const char *p = n->from_hdr; *p; p++) {
      if (*p == '"' || *p == '\\')
        cx_buf_append(out, "\\", 1);
      cx_buf_append(out, p, 1);
    }
    cx_buf_printf(out, "\" <%s>\r\n", n->from_addr);
  } else if (n->from_hdr) {
    struct cx_buf nm = {0};
    cx__mail_header_words(&nm, "From", n->from_hdr);
    if (cx_buf_failed(&nm)) {
      cx_buf_free(&nm);
      return -ENOMEM;
    }
    cx_buf_append(out, nm.data, nm.len - 2); /* without its CRLF */
    cx_buf_printf(out, " <%s>\r\n", n->from_addr);
    cx_buf_free(&nm);
  } else {
    cx_buf_printf(out, "From: %s\r\n", n->from_addr);
  }
  cx_buf_puts(out, "To: ");
  for (size_t i = 0; i < m->n_to; i++)
    cx_buf_printf(out, "%s%s", i ? ",\r\n " : "", m->to[i]);
  cx_buf_append(out, "\r\n", 2);
  cx__mail_header_words(out, "Subject", m->subject);
  if (cx_random_hex(rnd, 12) != 0)
    snprintf(rnd, sizeof rnd, "%024d", 0);
  cx_buf_printf(out, "Message-ID: <%s.%" PRId64 ".cronix@%s>\r\n", rnd, now_s,
                domain);
  cx_buf_puts(out, "MIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=UTF-8\r\n"
                   "Content-Transfer-Encoding: base64\r\n"
                   "Auto-Submitted: auto-generated\r\n"
                   "\r\n");
  if (cx__notify_text(m, 1, &body) != 0) {
    cx_buf_free(&body);
    return -ENOMEM;
  }
  b64(out, (const unsigned char *)(body.data ? body.data : ""), body.len);
  cx_buf_append(out, "\r\n", 2);
  cx_buf_free(&body);
  return cx_buf_failed(out) ? -ENOMEM : 0;
}

/* ---- sending ----------------------------------------------------------- */

struct rd {
  const char *p;
  size_t left;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
  struct rd *r = ud;
  size_t k = size * nitems < r->left ? size * nitems : r->left;

  memcpy(buf, r->p, k);
  r->p += k;
  r->left -= k;
  return k;
}

/* Server replies as they come (CURLINFO_HEADER_IN): the last one is kept
 * for the answer; refused recipients are logged. */
struct dbg {
  char last[CX_NOTIFY_ANSWER_LEN];
  int refused;
};

static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size,
                    void *ud)
{
  struct dbg *d = ud;
  size_t k = size;

  (void)h;
  if (type != CURLINFO_HEADER_IN)
    return 0;
  while (k > 0 && (data[k - 1] == '\r' || data[k - 1] == '\n'))
    k--;
  if (k >= sizeof d->last)
    k = sizeof d->last - 1;
  for (size_t i = 0; i < k; i++) /* keep it printable for logs */
    d->last[i] = (data[i] >= 0x20 && data[i] < 0x7F) ? data[i] : '?';
  d->last[k] = '\0';
  if (k >= 3 && data[0] == '5' && data[1] == '5' && data[2] >= '0' &&
      data[2] <= '3') {
    d->refused++;
    CX_LOG(CX_LOG_WARN, LOGC, "smtp server refused: %s", d->last);
  }
  return 0;
}

static int xfer_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c,
                   curl_off_t d)
{
  (void)a, (void)b, (void)c, (void)d;
  return cx__notify_aborted(ud);
}

static int classify(CURLcode cc, long code, const char *ebuf, const char *last,
                    char *err)
{
  if (cc == CURLE_LOGIN_DENIED) {
    cx_err_set(err, "smtp login denied (%ld): %s", code, last);
    return CX_EAUTH;
  }
  if (cc == CURLE_ABORTED_BY_CALLBACK) {
    cx_err_set(err, "smtp: aborted at shutdown");
    return CX_EUNAVAIL;
  }
  if (code >= 500 && code < 600) {
    cx_err_set(err, "smtp server refused (%ld): %s", code, last);
    return CX_EPROTO;
  }
  if (code >= 400 && code < 500) {
    cx_err_set(err, "smtp server deferred (%ld): %s", code, last);
    return CX_EUNAVAIL;
  }
  switch (cc) {
  case CURLE_COULDNT_CONNECT:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_WEIRD_SERVER_REPLY:
    cx_err_set(err, "smtp: %s", ebuf);
    return CX_EUNAVAIL;
  default:
    cx_err_set(err, "smtp: %s", ebuf);
    return CX_EPROTO;
  }
}

int cx__mail_send(struct cx_notify *n, const struct cx__notify_msg *m,
                  char *answer, size_t cap, char *err)
{
  struct cx_buf msg = {0};
  struct curl_slist *rcpt = NULL;
  struct dbg d = {.last = ""};
  char ebuf[CURL_ERROR_SIZE] = "", from[300];
  struct rd r;
  CURL *h = NULL;
  CURLcode cc;
  long code = 0;
  int rc = -ENOMEM;

  if (cx__mail_build(n, m, cx_wall_s(), &msg) != 0)
    goto done;
  for (size_t i = 0; i < m->n_to; i++) {
    struct curl_slist *t = curl_slist_append(rcpt, m->to[i]);
    if (t == NULL)
      goto done;
    rcpt = t;
  }
  h = curl_easy_init();
  if (h == NULL)
    goto done;
  snprintf(from, sizeof from, "<%s>", n->from_addr);
  r.p = msg.data;
  r.left = msg.len;
  curl_easy_setopt(h, CURLOPT_URL, n->smtp_url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
  curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(h, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
  curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
  curl_easy_setopt(h, CURLOPT_READDATA, &r);
  curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg.len);
  if (!n->smtps)
    curl_easy_setopt(
        h, CURLOPT_USE_SSL,
        n->starttls == CX_NOTIFY_STARTTLS_REQUIRED ? (long)CURLUSESSL_ALL
        : n->starttls == CX_NOTIFY_STARTTLS_OFF    ? (long)CURLUSESSL_NONE
                                                   : (long)CURLUSESSL_TRY);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, n->mail_insecure ? 0L : 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, n->mail_insecure ? 0L : 2L);
  if (n->mail_ca)
    curl_easy_setopt(h, CURLOPT_CAINFO, n->mail_ca);
  if (n->smtp_user) {
    curl_easy_setopt(h, CURLOPT_USERNAME, n->smtp_user);
    curl_easy_setopt(h, CURLOPT_PASSWORD, n->smtp_pass ? n->smtp_pass : "");
  }
  curl_easy_setopt(
      h, CURLOPT_CONNECTTIMEOUT_MS,
      (long)(n->mail_timeout_ms < 10000 ? n->mail_timeout_ms : 10000));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)n->mail_timeout_ms);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
  curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
  curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
  curl_easy_setopt(h, CURLOPT_DEBUGDATA, &d);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xfer_cb);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, n);
  cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (ebuf[0] == '\0')
    snprintf(ebuf, sizeof ebuf, "%s", curl_easy_strerror(cc));
  if (cc == CURLE_OK) {
    rc = 0;
    if (d.refused > 0)
      CX_LOG(CX_LOG_WARN, LOGC,
             "smtp: %d recipient(s) of %zu refused; the "
             "others accepted",
             d.refused, m->n_to);
  } else {
    rc = classify(cc, code, ebuf, d.last[0] ? d.last : ebuf, err);
  }
  if (answer && cap)
    snprintf(answer, cap, "%s", d.last[0] ? d.last : ebuf);
done:
  if (rc == -ENOMEM)
    cx_err_set(err, "smtp: out of memory");
  curl_easy_cleanup(h);
  curl_slist_free_all(rcpt);
  cx_buf_free(&msg);
  return rc;
}
