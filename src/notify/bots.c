/*
 * notify/bots: the group robots and the generic webhook (issue 14):
 *
 *   DingTalk custom robot  POST <webhook_url>[&timestamp=<ms>&sign=<s>]
 *     {"msgtype":"text","text":{"content":...},"at":{"atMobiles":[...],
 *     "atUserIds":[...],"isAtAll":false}}. sign = urlencoded
 *     base64(HMAC-SHA256(secret, "<ms>\n<secret>")). Reply {"errcode":0};
 *     130101 (more than 20 a minute) is transient, 310000 (sign, keyword or
 *     IP refused) an authentication failure. Mentioned people are also
 *     named as "@<mobile or id>" in the text, as DingTalk wants.
 *   WeCom group robot      POST <webhook_url> {"msgtype":"text","text":
 *     {"content":...,"mentioned_list":[...],"mentioned_mobile_list":[...]}}
 *     content at most 2048 bytes. Reply {"errcode":0}; 45009 (frequency
 *     limit) transient, 93000 (bad webhook key) an authentication failure.
 *   Slack incoming webhook POST <webhook_url> {"text":...,"blocks":[...]}:
 *     Block Kit (header, fact fields, mentions, output, link) with the
 *     whole message as "text", the fallback; mentions as <@U123>; &, <
 *     and > escaped so no text of a job can mention or link. Reply 200 "ok";
 * 429 and 5xx transient, other errors (invalid_payload, channel_not_found, ...)
 * permanent. Generic webhook        POST <url>, the JSON of
 * docs/notify-webhook.md, X-Cronix-Signature: sha256=<hex HMAC-SHA256(secret,
 * body)>, extra headers. 2xx accepted; 429 and 5xx transient.
 *
 * Rate limits, per robot, on send times: DingTalk and WeCom 20 in any 61 s
 * (both allow 20 a minute), Slack 1 in any 1.1 s (about 1 a second).
 */
#include "notify/notify-int.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WECOM_TEXT_MAX 2048    /* bytes of a WeCom text message */
#define DING_TEXT_MAX 18000    /* DingTalk's body limit is about 20 000 */
#define SLACK_TEXT_MAX 38000   /* Slack cuts text after 40 000 characters */
#define SLACK_HEADER_MAX 150   /* a header block's text */
#define SLACK_SECTION_MAX 3000 /* a section block's text */
#define SLACK_FIELDS_MAX 10    /* fields of one section block */

enum { RL_DING, RL_WECOM, RL_SLACK, RL_HOOK };

void cx__bot_init(struct cx_notify *n)
{
  static const struct {
    size_t max;
    cx_mono window_us;
  } lim[4] = {{20, 61000000}, {20, 61000000}, {1, 1100000}, {0, 0}};
  for (int i = 0; i < 4; i++) {
    pthread_mutex_init(&n->rl_bot[i].mu, NULL);
    n->rl_bot[i].max = lim[i].max;
    n->rl_bot[i].window_us = lim[i].window_us;
  }
}

void cx__bot_fini(struct cx_notify *n)
{
  for (int i = 0; i < 4; i++)
    pthread_mutex_destroy(&n->rl_bot[i].mu);
}

/* Waits until the robot may send and records the send. */
static int rl_wait(struct cx_notify *n, struct cx__rl *r)
{
  if (r->max == 0)
    return 0;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    cx_mono now = cx_mono_now(), wait = 0;
    size_t oldest = (r->pos + CX__RL_RING - r->max) % CX__RL_RING;
    if (r->n >= r->max && now - r->ring[oldest] < r->window_us)
      wait = r->ring[oldest] + r->window_us - now;
    if (wait == 0) {
      r->ring[r->pos] = now;
      r->pos = (r->pos + 1) % CX__RL_RING;
      if (r->n < CX__RL_RING)
        r->n++;
      break;
    }
    pthread_mutex_unlock(&r->mu);
    cx_sleep_us(wait < 50000 ? wait : 50000);
    if (cx__notify_aborted(n))
      return CX_EUNAVAIL;
    pthread_mutex_lock(&r->mu);
  }
  pthread_mutex_unlock(&r->mu);
  return 0;
}

int cx__bot_rcpt_ok(int type, const char *s)
{
  size_t n = strnlen(s, 257);
  if (n == 0 || n > 256)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 0;
  if (type == CX_NOTIFY_DINGTALK || type == CX_NOTIFY_WECOM)
    return (strncmp(s, "id:", 3) == 0 && n > 3) ||
           (strncmp(s, "mobile:", 7) == 0 && n > 7 &&
            strspn(s + 7, "+-0123456789") == n - 7);
  if (type == CX_NOTIFY_SLACK)
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == n;
  return type == CX_NOTIFY_WEBHOOK;
}

/* ---- HTTP --------------------------------------------------------------- */

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
  struct cx_buf *b = ud;
  size_t k = size * nmemb;
  if (b->len + k > CX__NOTIFY_REPLY_MAX)
    return 0; /* too long: abort the transfer */
  cx_buf_append(b, p, k);
  return cx_buf_failed(b) ? 0 : k;
}

static int xfer_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c,
                   curl_off_t d)
{
  (void)a, (void)b, (void)c, (void)d;
  return cx__notify_aborted(ud);
}

int cx__hook_post(struct cx_notify *n, const char *what, const char *url,
                  const char *body, struct curl_slist *hdr, long *status,
                  struct cx_buf *reply, char *err)
{
  char ebuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *h0 = NULL;
  CURL *h = curl_easy_init();
  *status = 0;
  if (hdr == NULL)
    hdr = h0 = curl_slist_append(NULL, "Content-Type: application/json; "
                                       "charset=utf-8");
  if (h == NULL || hdr == NULL) {
    curl_easy_cleanup(h);
    curl_slist_free_all(h0);
    cx_err_set(err, "%s: out of memory", what);
    return -ENOMEM;
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, reply);
  curl_easy_setopt(
      h, CURLOPT_CONNECTTIMEOUT_MS,
      (long)(n->hook_timeout_ms < 10000 ? n->hook_timeout_ms : 10000));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)n->hook_timeout_ms);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, n->hook_insecure ? 0L : 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, n->hook_insecure ? 0L : 2L);
  if (n->hook_ca)
    curl_easy_setopt(h, CURLOPT_CAINFO, n->hook_ca);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xfer_cb);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, n);
  CURLcode cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  curl_easy_cleanup(h);
  curl_slist_free_all(h0);
  cx_buf_puts(reply, "");
  if (cc == CURLE_OK)
    return 0;
  cx_err_set(err, "%s: %s", what, ebuf[0] ? ebuf : curl_easy_strerror(cc));
  return cc == CURLE_WRITE_ERROR ? CX_EPROTO : CX_EUNAVAIL;
}

/* ---- signatures --------------------------------------------------------- */

static int hmac256(const char *key, const void *msg, size_t len,
                   unsigned char md[32])
{
  unsigned int mdlen = 0;
  if (HMAC(EVP_sha256(), key, (int)strlen(key), msg, len, md, &mdlen) == NULL ||
      mdlen != 32)
    return CX_EPROTO;
  return 0;
}

int cx__dingtalk_sign(int64_t ts_ms, const char *secret, char *out, size_t cap)
{
  unsigned char md[32], b64[48];
  char msg[600];
  if (secret == NULL || strlen(secret) > 512 || cap < 3 * sizeof b64)
    return CX_EPARSE;
  int len = snprintf(msg, sizeof msg, "%" PRId64 "\n%s", ts_ms, secret);
  int rc = hmac256(secret, msg, (size_t)len, md);
  if (rc != 0)
    return rc;
  EVP_EncodeBlock(b64, md, 32);
  size_t k = 0; /* percent-encode base64's + / = */
  for (const unsigned char *p = b64; *p; p++) {
    if (*p == '+' || *p == '/' || *p == '=')
      k += (size_t)snprintf(out + k, cap - k, "%%%02X", *p);
    else
      out[k++] = (char)*p;
  }
  out[k] = '\0';
  return 0;
}

/* ---- bodies ------------------------------------------------------------- */

/* Cuts b to at most max bytes, on a UTF-8 character boundary. */
static void cut(struct cx_buf *b, size_t max)
{
  if (b->len <= max)
    return;
  size_t k = max;
  while (k > 0 && ((unsigned char)b->data[k] & 0xC0) == 0x80)
    k--;
  b->len = k;
  b->data[k] = '\0';
}

/* subject, blank line, the shared plain text, then extra (mentions). */
static int plain(const struct cx__notify_msg *m, struct cx_buf *b)
{
  cx_buf_printf(b, "%s\n\n", m->subject);
  int rc = cx__notify_text(m, 1, b);
  cx_buf_puts(b, "");
  return rc != 0 ? rc : cx_buf_failed(b) ? -ENOMEM : 0;
}

void cx__json_free(char *s)
{
  json_malloc_t m;
  json_free_t f;
  if (s == NULL)
    return;
  json_get_alloc_funcs(&m, &f);
  f(s);
}

static char *dumps(json_t *o)
{
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s; /* cx__json_free */
}

/* DingTalk and WeCom: mentions split by prefix into ids and mobiles. */
static void split(const struct cx__notify_msg *m, json_t *ids, json_t *mob,
                  struct cx_buf *names)
{
  for (size_t i = 0; i < m->n_to; i++) {
    const char *r = m->to[i];
    int is_id = strncmp(r, "id:", 3) == 0;
    const char *v = r + (is_id ? 3 : 7);
    json_array_append_new(is_id ? ids : mob, json_string(v));
    if (names != NULL)
      cx_buf_printf(names, " @%s", v);
  }
}

static char *body_dingtalk(const struct cx__notify_msg *m)
{
  struct cx_buf t = {0}, names = {0};
  json_t *ids = json_array(), *mob = json_array();
  char *s = NULL;
  split(m, ids, mob, &names);
  cx_buf_puts(&names, "");
  if (plain(m, &t) == 0 && !cx_buf_failed(&names)) {
    cut(&t, DING_TEXT_MAX - names.len);
    cx_buf_append(&t, names.data ? names.data : "", names.len);
    cx_buf_puts(&t, "");
    s = dumps(json_pack("{s:s, s:{s:s%}, s:{s:o, s:o, s:b}}", "msgtype", "text",
                        "text", "content", t.data, t.len, "at", "atMobiles",
                        mob, "atUserIds", ids, "isAtAll", 0));
    ids = mob = NULL;
  }
  json_decref(ids);
  json_decref(mob);
  cx_buf_free(&t);
  cx_buf_free(&names);
  return s;
}

static char *body_wecom(const struct cx__notify_msg *m)
{
  struct cx_buf t = {0};
  json_t *ids = json_array(), *mob = json_array();
  char *s = NULL;
  split(m, ids, mob, NULL);
  if (plain(m, &t) == 0) {
    cut(&t, WECOM_TEXT_MAX);
    s = dumps(json_pack("{s:s, s:{s:s%, s:o, s:o}}", "msgtype", "text", "text",
                        "content", t.data, t.len, "mentioned_list", ids,
                        "mentioned_mobile_list", mob));
    ids = mob = NULL;
  }
  json_decref(ids);
  json_decref(mob);
  cx_buf_free(&t);
  return s;
}

/* Slack's three escapes (&, <, >) of n bytes of s, appended to b. */
static void slack_escape(struct cx_buf *b, const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '&')
      cx_buf_puts(b, "&amp;");
    else if (c == '<')
      cx_buf_puts(b, "&lt;");
    else if (c == '>')
      cx_buf_puts(b, "&gt;");
    else
      cx_buf_append(b, &c, 1);
  }
}

/* Where the tail of s (n bytes) starts whose escaped form fits in max
 * bytes: on a character boundary, and at a line start when one is near. */
static size_t slack_tail(const char *s, size_t n, size_t max)
{
  size_t i = n, len = 0;
  while (i > 0) {
    char c = s[i - 1];
    size_t w = c == '&' ? 5 : c == '<' || c == '>' ? 4 : 1;
    if (len + w > max)
      break;
    len += w;
    i--;
  }
  if (i == 0)
    return 0;
  while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
    i++;
  const char *nl = memchr(s + i, '\n', n - i < 200 ? n - i : 200);
  return nl != NULL ? (size_t)(nl - s) + 1 : i;
}

/* A mrkdwn text object holding b's text (cx_buf_puts'd). */
static json_t *slack_mrkdwn(const struct cx_buf *b)
{
  return json_pack("{s:s, s:s%}", "type", "mrkdwn", "text",
                   b->data ? b->data : "", b->len);
}

/* Block Kit (docs.slack.dev/block-kit): a header (plain_text, at most
 * 150 characters), the facts as sections of at most 10 mrkdwn fields
 * ("*Label*\nvalue", escaped), the mentions, the output tail in a code
 * block (a section's text is at most 3000 characters) and the run link;
 * "text" is the fallback notifications and old clients show: the whole
 * message, escaped, mentions first. Job text never reaches mrkdwn
 * unescaped, so no output can mention @channel or forge a link. */
static json_t *slack_blocks(const struct cx__notify_msg *m)
{
  json_t *blocks = json_array(), *fields = NULL;
  struct cx_buf t = {0};
  cx_buf_puts(&t, m->subject);
  cut(&t, SLACK_HEADER_MAX);
  json_array_append_new(blocks,
                        json_pack("{s:s, s:{s:s, s:s%}}", "type", "header",
                                  "text", "type", "plain_text", "text",
                                  t.data ? t.data : "", t.len));
  for (size_t i = 0; i < m->n_facts; i++) {
    if (i % SLACK_FIELDS_MAX == 0) {
      fields = json_array();
      json_array_append_new(
          blocks, json_pack("{s:s, s:o}", "type", "section", "fields", fields));
    }
    cx_buf_reset(&t);
    cx_buf_puts(&t, "*");
    slack_escape(&t, m->facts[i].label, strlen(m->facts[i].label));
    cx_buf_puts(&t, "*\n");
    slack_escape(&t, m->facts[i].value, strlen(m->facts[i].value));
    json_array_append_new(fields, slack_mrkdwn(&t));
  }
  if (m->n_to > 0) {
    cx_buf_reset(&t);
    for (size_t i = 0; i < m->n_to; i++)
      cx_buf_printf(&t, "%s<@%s>", i ? " " : "", m->to[i]);
    json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section",
                                            "text", slack_mrkdwn(&t)));
  }
  if (m->output != NULL && m->output[0] != '\0') {
    size_t n = strlen(m->output), from;
    from = slack_tail(m->output, n, SLACK_SECTION_MAX - 8);
    cx_buf_reset(&t);
    slack_escape(&t, m->output + from, n - from);
    struct cx_buf code = {0};
    cx_buf_printf(&code, "```%s```", t.data ? t.data : "");
    json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section",
                                            "text", slack_mrkdwn(&code)));
    cx_buf_free(&code);
  }
  if (m->link != NULL) {
    cx_buf_reset(&t);
    slack_escape(&t, m->link, strlen(m->link));
    json_array_append_new(blocks, json_pack("{s:s, s:[o]}", "type", "context",
                                            "elements", slack_mrkdwn(&t)));
  }
  if (cx_buf_failed(&t)) {
    json_decref(blocks);
    blocks = NULL;
  }
  cx_buf_free(&t);
  return blocks;
}

static char *body_slack(const struct cx__notify_msg *m)
{
  struct cx_buf t = {0}, e = {0};
  char *s = NULL;
  if (plain(m, &t) == 0) {
    cut(&t, SLACK_TEXT_MAX);
    for (size_t i = 0; i < m->n_to; i++)
      cx_buf_printf(&e, "<@%s> ", m->to[i]);
    slack_escape(&e, t.data, t.len);
    cx_buf_puts(&e, "");
    json_t *blocks = slack_blocks(m);
    if (!cx_buf_failed(&e) && blocks != NULL)
      s = dumps(
          json_pack("{s:s%, s:o}", "text", e.data, e.len, "blocks", blocks));
    else
      json_decref(blocks);
  }
  cx_buf_free(&t);
  cx_buf_free(&e);
  return s;
}

static char *body_webhook(const struct cx__notify_msg *m)
{
  static const char *const kinds[] = {"run", "node", "test", "digest"};
  char ts[32];
  json_t *facts = json_array(), *to = json_array();
  for (size_t i = 0; facts && i < m->n_facts; i++)
    json_array_append_new(facts,
                          json_pack("{s:s, s:s}", "label", m->facts[i].label,
                                    "value", m->facts[i].value));
  for (size_t i = 0; to && i < m->n_to; i++)
    json_array_append_new(to, json_string(m->to[i]));
  cx__notify_rfc3339(cx_wall_s(), ts);
  return dumps(json_pack("{s:i, s:s, s:s, s:o, s:s?, s:s?, s:I, s:o, s:s}",
                         "version", 1, "kind", kinds[m->kind], "subject",
                         m->subject, "facts", facts, "link", m->link, "output",
                         m->output, "output_cut", (json_int_t)m->output_cut,
                         "recipients", to, "sent_at", ts));
}

/* ---- replies ------------------------------------------------------------ */

/* DingTalk and WeCom answer {"errcode": N, "errmsg": "..."}. */
static int errcode(const char *what, const struct cx_buf *r, long busy,
                   long auth, char *err)
{
  json_t *o = json_loads(r->data ? r->data : "", 0, NULL);
  json_t *c = json_object_get(o, "errcode");
  const char *msg = json_string_value(json_object_get(o, "errmsg"));
  int rc;
  if (!json_is_integer(c)) {
    cx_err_set(err, "%s: reply has no errcode", what);
    rc = CX_EPROTO;
  } else if (json_integer_value(c) == 0) {
    rc = 0;
  } else {
    long code = (long)json_integer_value(c);
    rc = code == busy ? CX_EUNAVAIL : code == auth ? CX_EAUTH : CX_EPROTO;
    cx_err_set(err, "%s: errcode %ld: %.200s%s", what, code, msg ? msg : "",
               code == busy   ? " (rate limited)"
               : code == auth ? " (refused: secret, key or address)"
                              : "");
  }
  json_decref(o);
  return rc;
}

/* ---- sending ------------------------------------------------------------ */

int cx__bot_send(struct cx_notify *n, const struct cx__notify_msg *m,
                 char *answer, size_t cap, char *err)
{
  static const char *const what[] = {"dingtalk", "wecom", "slack", "webhook"};
  int k = m->type - CX_NOTIFY_DINGTALK, rc;
  struct cx_buf url = {0}, reply = {0};
  struct curl_slist *hdr = NULL;
  char *body = NULL;
  long status = 0;
  if (k < 0 || k > 3) {
    cx_err_set(err, "notify_type %d is not a robot", m->type);
    return CX_EPARSE;
  }
  if ((rc = rl_wait(n, &n->rl_bot[k])) != 0) {
    cx_err_set(err, "%s: aborted at shutdown", what[k]);
    return rc;
  }
  body = k == RL_DING    ? body_dingtalk(m)
         : k == RL_WECOM ? body_wecom(m)
         : k == RL_SLACK ? body_slack(m)
                         : body_webhook(m);
  const char *const base[] = {n->ding_url, n->wecom_url, n->slack_url,
                              n->wh_url};
  cx_buf_puts(&url, base[k]);
  rc = body == NULL ? -ENOMEM : 0;
  if (rc == 0 && k == RL_DING && n->ding_secret != NULL) {
    char sign[200];
    int64_t ts = cx_wall_ms();
    rc = cx__dingtalk_sign(ts, n->ding_secret, sign, sizeof sign);
    cx_buf_printf(&url, "%ctimestamp=%" PRId64 "&sign=%s",
                  strchr(base[k], '?') ? '&' : '?', ts, sign);
  }
  if (rc == 0 && k == RL_HOOK) {
    unsigned char md[32];
    char line[96];
    hdr = curl_slist_append(NULL, "Content-Type: application/json; "
                                  "charset=utf-8");
    if (n->wh_secret != NULL &&
        (rc = hmac256(n->wh_secret, body, strlen(body), md)) == 0) {
      int len = snprintf(line, sizeof line, "X-Cronix-Signature: sha256=");
      for (int i = 0; i < 32; i++)
        len += snprintf(line + len, sizeof line - (size_t)len, "%02x", md[i]);
      hdr = curl_slist_append(hdr, line);
    }
    for (size_t i = 0; i < n->n_wh_headers; i++)
      hdr = curl_slist_append(hdr, n->wh_headers[i]);
    if (hdr == NULL)
      rc = -ENOMEM;
  }
  cx_buf_puts(&url, "");
  if (rc == 0 && cx_buf_failed(&url))
    rc = -ENOMEM;
  if (rc == 0)
    rc = cx__hook_post(n, what[k], url.data, body, hdr, &status, &reply, err);
  if (answer && cap)
    snprintf(answer, cap, "%s", reply.data ? reply.data : "");
  if (rc == 0 && (status == 429 || status >= 500)) {
    cx_err_set(err, "%s: HTTP %ld", what[k], status);
    rc = CX_EUNAVAIL;
  } else if (rc == 0 && (status < 200 || status > 299)) {
    cx_err_set(err, "%s: HTTP %ld: %.200s", what[k], status,
               reply.data ? reply.data : "");
    rc = status == 401 || status == 403 ? CX_EAUTH : CX_EPROTO;
  } else if (rc == 0 && k == RL_DING) {
    rc = errcode("dingtalk", &reply, 130101, 310000, err);
  } else if (rc == 0 && k == RL_WECOM) {
    rc = errcode("wecom", &reply, 45009, 93000, err);
  } else if (rc == -ENOMEM) {
    cx_err_set(err, "%s: out of memory", what[k]);
  }
  cx__json_free(body);
  curl_slist_free_all(hdr);
  cx_buf_free(&url);
  cx_buf_free(&reply);
  return rc;
}
