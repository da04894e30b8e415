/*
 * notify internals shared by notify.c (queue, workers, message facts and
 * text cleaning), mail.c (SMTP) and feishu.c (webhook). Not part of the
 * module's interface; the unit tests include it to check the builders.
 */
#ifndef CX_NOTIFY_INT_H
#define CX_NOTIFY_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "notify/notify.h"

#define CX__NOTIFY_MAX_FACTS 12
#define CX__NOTIFY_MAX_JOBS_LISTED 50
#define CX__NOTIFY_RL_SEC 5 /* sends per window of ... */
#define CX__NOTIFY_RL_SEC_US 1100000
#define CX__NOTIFY_RL_MIN 100
#define CX__NOTIFY_RL_MIN_US 61000000
#define CX__NOTIFY_REPLY_MAX 65536 /* bytes of a webhook reply kept */

enum cx__notify_kind {
  CX__NOTIFY_RUN,
  CX__NOTIFY_NODE,
  CX__NOTIFY_TEST,
  CX__NOTIFY_DIGEST /* output holds the list of alerts */
};

/* A sliding-window limit for one robot (bots.c): at most max sends in any
 * window_us. max 0 = none. */
#define CX__RL_RING 20
struct cx__rl {
  pthread_mutex_t mu;
  cx_mono ring[CX__RL_RING];
  size_t n, pos, max;
  cx_mono window_us;
};

struct cx__notify_fact {
  const char *label; /* static */
  char *value;       /* owned, clean one-line UTF-8 */
};

/* One message; every string is owned and already clean UTF-8. */
struct cx__notify_msg {
  int type; /* CX_NOTIFY_EMAIL / _FEISHU */
  int kind;
  char *subject; /* one line */
  struct cx__notify_fact facts[CX__NOTIFY_MAX_FACTS];
  size_t n_facts;
  char *link;        /* run link or NULL */
  char *output;      /* output tail (may hold \n and \t) or NULL */
  size_t output_cut; /* bytes of the original output left out before it */
  char **to;         /* valid recipients */
  size_t n_to;
  int zh; /* texts in Chinese (notify.language zh-CN) */
  /* queue state (notify.c) */
  struct cx__notify_msg *prev, *next;
  cx_mono not_before;
  int attempts;
  int in_flight;
};

struct cx_notify {
  /* configuration (owned copies; NULL = unset) */
  char *smtp_url; /* with an EHLO path */
  char *smtp_user, *smtp_pass, *from_hdr, *from_addr, *mail_ca;
  enum cx_notify_starttls starttls;
  int mail_insecure, mail_timeout_ms, smtps;
  char *hook_url, *hook_secret, *hook_ca;
  int hook_timeout_ms, hook_insecure;
  char *ding_url, *ding_secret, *wecom_url, *slack_url, *wh_url, *wh_secret;
  char **wh_headers; /* "Name: value", checked */
  size_t n_wh_headers;
  struct cx__rl rl_bot[4]; /* DingTalk, WeCom, Slack, webhook */
  char *public_url;        /* without a trailing '/' */
  int queue_size, workers, retries, backoff_ms, backoff_max_ms, output_max;
  int zh; /* language zh-CN */

  /* queue */
  pthread_mutex_t mu;
  pthread_cond_t cv; /* CLOCK_MONOTONIC; any change of the queue */
  struct cx__notify_msg *head, *tail; /* oldest first */
  size_t len;
  int stopping;
  atomic_int abort; /* destroy's deadline passed: abort transfers */
  struct cx_notify_stats st;
  pthread_t threads[2];
  int n_threads;

  /* webhook rate limit: start times of the last RL_MIN sends */
  pthread_mutex_t rl_mu;
  cx_mono rl_ring[CX__NOTIFY_RL_MIN];
  size_t rl_n; /* sends recorded, saturating at RL_MIN */
  size_t rl_pos;
};

/* ---- notify.c: text helpers ---- */

/* The label or phrase en in the message's language (zh: Chinese). */
const char *cx__notify_l(int zh, const char *en);

/* Clean one-line text: valid UTF-8 (bad bytes -> U+FFFD), every control
 * character (and DEL) -> ' ', at most max bytes cut on a character
 * boundary. NULL on allocation failure; s NULL gives "". */
char *cx__notify_clean_line(const char *s, size_t max);
/* Clean the last max bytes of output: valid UTF-8, "\r\n" and lone "\r"
 * -> "\n", other controls except \t and \n -> U+FFFD, starting at a line
 * start when a newline lies in the first half of the kept tail. *cut gets
 * the number of original bytes left out. */
char *cx__notify_clean_tail(const char *s, size_t len, size_t max, size_t *cut);
/* The plain-text body shared by both channels (facts, link, output). */
int cx__notify_text(const struct cx__notify_msg *m, int with_output,
                    struct cx_buf *out);
/* Builds a message (facts etc.) from a run / node / test; recipients are
 * validated for the type (invalid ones are logged and skipped). Returns
 * NULL with *rc set (CX_EPARSE when no recipient is left, -ENOMEM). */
struct cx__notify_msg *cx__notify_msg_run(const struct cx_notify *n, int type,
                                          const char *const *to, size_t n_to,
                                          const struct cx_notify_run *run,
                                          int *rc);
struct cx__notify_msg *cx__notify_msg_node(const struct cx_notify *n, int type,
                                           const char *const *to, size_t n_to,
                                           const struct cx_notify_node *node,
                                           int *rc);
void cx__notify_msg_free(struct cx__notify_msg *m);
/* Formats t (UTC) as "2026-11-24T09:30:42Z" into buf[32]. */
void cx__notify_rfc3339(int64_t t, char buf[32]);
/* Curl progress callback body: nonzero once n->abort is set. */
int cx__notify_aborted(const struct cx_notify *n);

/* ---- mail.c ---- */

/* 1 if s is a plain ASCII addr-spec we are willing to put on the wire. */
int cx__mail_addr_ok(const char *s);
/* Builds the RFC 5322 message for m, dated now_s. */
int cx__mail_build(const struct cx_notify *n, const struct cx__notify_msg *m,
                   int64_t now_s, struct cx_buf *out);
/* One attempt. 0 = accepted, CX_EUNAVAIL = transient, CX_EAUTH /
 * CX_EPROTO = permanent. answer gets the server's last reply line. */
int cx__mail_send(struct cx_notify *n, const struct cx__notify_msg *m,
                  char *answer, size_t cap, char *err);
/* Parses from (either "addr" or "Name <addr>") into the header value and
 * the bare address; CX_EPARSE when invalid. */
int cx__mail_parse_from(const char *from, char **hdr, char **addr);
/* Appends "Name: value" to out, value in RFC 2047 B words (folded) when it
 * is not plain printable ASCII. */
void cx__mail_header_words(struct cx_buf *out, const char *name,
                           const char *value);

/* ---- bots.c: DingTalk, WeCom, Slack, generic webhook ---- */

/* 1 if s is a recipient bots.c accepts for type (see notify.h). */
int cx__bot_rcpt_ok(int type, const char *s);
/* Frees a json_dumps result with jansson's own free function (main may
 * install other allocators than malloc). */
void cx__json_free(char *s);
/* Sets up and tears down n->rl_bot. */
void cx__bot_init(struct cx_notify *n);
void cx__bot_fini(struct cx_notify *n);
/* One attempt for m (type 3..6), after the robot's rate limit. Codes as
 * mail. */
int cx__bot_send(struct cx_notify *n, const struct cx__notify_msg *m,
                 char *answer, size_t cap, char *err);
/* DingTalk's sign: urlencoded base64(HMAC-SHA256(key = secret, message =
 * "<timestamp ms>\n<secret>")) into out (3 * CX_NOTIFY_SIGN_LEN). */
int cx__dingtalk_sign(int64_t ts_ms, const char *secret, char *out, size_t cap);
/* POSTs body to url with the webhook TLS options and headers hdr (may be
 * NULL): *status the HTTP status, reply the body (at most
 * CX__NOTIFY_REPLY_MAX). CX_EUNAVAIL on a transport failure, CX_EPROTO
 * when the reply is too long, -ENOMEM; err says which. */
struct curl_slist;
int cx__hook_post(struct cx_notify *n, const char *what, const char *url,
                  const char *body, struct curl_slist *hdr, long *status,
                  struct cx_buf *reply, char *err);

/* ---- feishu.c ---- */

/* 1 if s looks like a feishu user id (open_id/user_id/union_id). */
int cx__feishu_id_ok(const char *s);
/* The JSON body for m, signed at timestamp ts when n has a secret, at
 * most max bytes (the output is cut to fit), from json_dumps: free it with
 * jansson's free function. NULL with *rc on failure. */
char *cx__feishu_body(const struct cx_notify *n, const struct cx__notify_msg *m,
                      int64_t ts, size_t max, int *rc);
/* One attempt, after waiting for the rate limiter. Same codes as mail. */
int cx__feishu_send(struct cx_notify *n, const struct cx__notify_msg *m,
                    char *answer, size_t cap, char *err);

#endif
