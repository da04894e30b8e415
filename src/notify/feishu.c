/*
 * notify/feishu: the Feishu (Lark) custom-bot webhook channel. The body is
 * a "post" message built with jansson from the cleaned facts (never by
 * pasting strings), mentions are "at" elements, and with a secret the body
 * is signed (cx_notify_feishu_sign). The reply is checked by its JSON
 * "code" (or legacy "StatusCode"), not only by the HTTP status. A sliding
 * window of the last 100 send times keeps every 1.1 s window at <= 5
 * sends and every 61 s window at <= 100.
 */
#include "notify/notify-int.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#define LOGC "notify"

int cx_notify_feishu_sign(int64_t timestamp, const char *secret,
                          char out[CX_NOTIFY_SIGN_LEN])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  struct cx_buf key = {0};
  int rc = 0;

  out[0] = '\0';
  if (secret == NULL)
    return CX_EPARSE;
  cx_buf_printf(&key, "%" PRId64 "\n%s", timestamp, secret);
  if (cx_buf_failed(&key))
    return -ENOMEM;
  if (HMAC(EVP_sha256(), key.data, (int)key.len, (const unsigned char *)"", 0,
           md, &mdlen) == NULL ||
      mdlen != 32)
    rc = CX_EPROTO;
  else
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
  cx_buf_free(&key);
  return rc;
}

int cx__feishu_id_ok(const char *s)
{
  size_t n = strnlen(s, 129);

  if (n == 0 || n > 128)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

/* ---- body -------------------------------------------------------------- */

/* Appends a paragraph [{"tag":"text","text":t}]; 0 or -1. */
static int para_text(json_t *paras, const char *t)
{
  json_t *el = json_pack("[{s:s, s:s}]", "tag", "text", "text", t);

  return el == NULL ? -1 : json_array_append_new(paras, el);
}

/* The body with the output cut to its last keep bytes. */
static char *body_once(const struct cx_notify *n,
                       const struct cx__notify_msg *m, int64_t ts, size_t keep)
{
  json_t *root = NULL, *paras = NULL, *at = NULL;
  struct cx_buf b = {0};
  char *out = NULL;
  char sign[CX_NOTIFY_SIGN_LEN];

  paras = json_array();
  if (paras == NULL)
    goto done;
  for (size_t i = 0; i < m->n_facts; i++) {
    cx_buf_reset(&b);
    cx_buf_printf(&b, "%s: %s", m->facts[i].label, m->facts[i].value);
    if (cx_buf_failed(&b) || para_text(paras, b.data))
      goto done;
  }
  if (m->link) {
    char lab[32];
    snprintf(lab, sizeof lab, "%s: ",
             cx__notify_l(m->zh, m->kind == CX__NOTIFY_RUN ? "Run" : "Link"));
    json_t *el =
        json_pack("[{s:s, s:s}, {s:s, s:s, s:s}]", "tag", "text", "text", lab,
                  "tag", "a", "text", m->link, "href", m->link);
    if (el == NULL || json_array_append_new(paras, el))
      goto done;
  }
  if (m->output) {
    size_t len = strlen(m->output), off = 0, cut = m->output_cut;
    if (len > keep) {
      off = cx_utf8_ceil(m->output, len, len - keep);
      cut += off;
    }
    cx_buf_reset(&b);
    if (m->kind == CX__NOTIFY_NODE)
      cx_buf_printf(&b, "%s:\n", cx__notify_l(m->zh, "Jobs"));
    else if (m->kind == CX__NOTIFY_DIGEST)
      cx_buf_printf(&b, "%s:\n", cx__notify_l(m->zh, "Alerts"));
    else if (cut > 0) {
      cx_buf_printf(&b,
                    cx__notify_l(m->zh, "Output (last %zu bytes, %zu earlier "
                                        "bytes left out)"),
                    len - off, cut);
      cx_buf_puts(&b, ":\n");
    } else
      cx_buf_printf(&b, "%s:\n", cx__notify_l(m->zh, "Output"));
    cx_buf_puts(&b, m->output + off);
    if (cx_buf_failed(&b) || para_text(paras, b.data))
      goto done;
  }
  at = json_array();
  if (at == NULL)
    goto done;
  for (size_t i = 0; i < m->n_to; i++)
    if (json_array_append_new(
            at, json_pack("{s:s, s:s}", "tag", "at", "user_id", m->to[i])))
      goto done;
  if (json_array_append_new(paras, at))
    goto done;
  at = NULL;
  root = json_pack("{s:s, s:{s:{s:{s:s, s:O}}}}", "msg_type", "post", "content",
                   "post", "zh_cn", "title", m->subject, "content", paras);
  if (root == NULL)
    goto done;
  if (n->hook_secret) {
    char tss[24];
    snprintf(tss, sizeof tss, "%" PRId64, ts);
    if (cx_notify_feishu_sign(ts, n->hook_secret, sign) != 0 ||
        json_object_set_new(root, "timestamp", json_string(tss)) ||
        json_object_set_new(root, "sign", json_string(sign)))
      goto done;
  }
  out = json_dumps(root, JSON_COMPACT);
done:
  json_decref(at);
  json_decref(paras);
  json_decref(root);
  cx_buf_free(&b);
  return out;
}

char *cx__feishu_body(const struct cx_notify *n, const struct cx__notify_msg *m,
                      int64_t ts, size_t max, int *rc)
{
  size_t keep = m->output ? strlen(m->output) : 0;

  for (int tries = 0; tries < 16; tries++) {
    char *s = body_once(n, m, ts, keep);
    size_t len;
    if (s == NULL) {
      *rc = -ENOMEM;
      return NULL;
    }
    len = strlen(s);
    if (len <= max) {
      *rc = 0;
      return s;
    }
    cx__json_free(s);
    if (keep == 0)
      break;
    /* cut by the excess (escaping may expand a byte up to 6 times, so
     * this can take a few rounds), and by at least a quarter */
    {
      size_t step = len - max + 64;
      if (step < keep / 4)
        step = keep / 4;
      keep = step >= keep ? 0 : keep - step;
    }
  }
  *rc = CX_ETOOBIG;
  return NULL;
}

/* ---- rate limit -------------------------------------------------------- */

/* Waits until a send is allowed and records it. CX_EUNAVAIL if the
 * notifier is aborted meanwhile. */
static int rl_acquire(struct cx_notify *n)
{
  pthread_mutex_lock(&n->rl_mu);
  for (;;) {
    cx_mono now = cx_mono_now(), wait = 0;
    if (n->rl_n >= CX__NOTIFY_RL_SEC) {
      cx_mono t =
          n->rl_ring[(n->rl_pos + CX__NOTIFY_RL_MIN - CX__NOTIFY_RL_SEC) %
                     CX__NOTIFY_RL_MIN];
      if (now - t < CX__NOTIFY_RL_SEC_US)
        wait = t + CX__NOTIFY_RL_SEC_US - now;
    }
    if (n->rl_n >= CX__NOTIFY_RL_MIN) {
      cx_mono t = n->rl_ring[n->rl_pos]; /* the oldest of the last 100 */
      if (now - t < CX__NOTIFY_RL_MIN_US &&
          t + CX__NOTIFY_RL_MIN_US - now > wait)
        wait = t + CX__NOTIFY_RL_MIN_US - now;
    }
    if (wait == 0) {
      n->rl_ring[n->rl_pos] = now;
      n->rl_pos = (n->rl_pos + 1) % CX__NOTIFY_RL_MIN;
      if (n->rl_n < CX__NOTIFY_RL_MIN)
        n->rl_n++;
      break;
    }
    pthread_mutex_unlock(&n->rl_mu);
    cx_sleep_us(wait < 50000 ? wait : 50000);
    if (cx__notify_aborted(n))
      return CX_EUNAVAIL;
    pthread_mutex_lock(&n->rl_mu);
  }
  pthread_mutex_unlock(&n->rl_mu);
  return 0;
}

/* ---- sending ----------------------------------------------------------- */

/* Interprets a 2xx reply body. */
static int reply_code(const struct cx_buf *r, char *err)
{
  json_t *root = json_loadb(r->data ? r->data : "", r->len, 0, NULL);
  json_t *c, *msg;
  json_int_t code;
  const char *text = "";
  int rc;

  if (root == NULL || !json_is_object(root)) {
    cx_err_set(err, "feishu: reply is not a JSON object");
    json_decref(root);
    return CX_EPROTO;
  }
  c = json_object_get(root, "code");
  if (!json_is_integer(c))
    c = json_object_get(root, "StatusCode");
  msg = json_object_get(root, "msg");
  if (!json_is_string(msg))
    msg = json_object_get(root, "StatusMessage");
  if (json_is_string(msg))
    text = json_string_value(msg);
  if (!json_is_integer(c)) {
    cx_err_set(err, "feishu: reply has no code");
    json_decref(root);
    return CX_EPROTO;
  }
  code = json_integer_value(c);
  if (code == 0)
    rc = 0;
  else if (code == 11232)
    rc = CX_EUNAVAIL;
  else if (code == 19021)
    rc = CX_EAUTH;
  else
    rc = CX_EPROTO;
  if (rc != 0)
    cx_err_set(err, "feishu: code %lld: %.200s%s", (long long)code, text,
               code == 11232   ? " (rate limited)"
               : code == 19021 ? " (signature or timestamp rejected)"
                               : "");
  json_decref(root);
  return rc;
}

int cx__feishu_send(struct cx_notify *n, const struct cx__notify_msg *m,
                    char *answer, size_t cap, char *err)
{
  struct cx_buf reply = {0};
  char *body = NULL;
  long status = 0;
  int rc;

  if ((rc = rl_acquire(n)) != 0) {
    cx_err_set(err, "feishu: aborted at shutdown");
    return rc;
  }
  body = cx__feishu_body(n, m, cx_wall_s(), CX_NOTIFY_FEISHU_BODY_MAX, &rc);
  if (body == NULL) {
    cx_err_set(err, "feishu: cannot build the body: %s", cx_strerror(rc));
    return rc == CX_ETOOBIG ? CX_EPROTO : rc;
  }
  rc =
      cx__hook_post(n, "feishu", n->hook_url, body, NULL, &status, &reply, err);
  if (answer && cap)
    snprintf(answer, cap, "%.*s", (int)(reply.len < cap ? reply.len : cap),
             reply.data ? reply.data : "");
  if (rc != 0) {
    /* cx__hook_post said what */
  } else if (status == 429 || status >= 500) {
    cx_err_set(err, "feishu: HTTP %ld", status);
    rc = CX_EUNAVAIL;
  } else if (status < 200 || status > 299) {
    cx_err_set(err, "feishu: HTTP %ld", status);
    rc = status == 401 || status == 403 ? CX_EAUTH : CX_EPROTO;
  } else {
    rc = reply_code(&reply, err);
  }
  cx__json_free(body);
  cx_buf_free(&reply);
  return rc;
}
