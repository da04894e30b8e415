/*
 * notify: failure notifications by email (SMTP, libcurl) and Feishu bot
 * webhooks (SPEC §11).
 *
 *   struct cx_notify_conf c = {0};
 *   c.email.smtp_url = "smtp://mail.example.org:587";
 *   c.email.from = "Cronix <cron@example.org>";
 *   c.feishu.webhook_url = "https://open.feishu.cn/open-apis/bot/v2/hook/T";
 *   c.public_url = "https://cron.example.org";
 *   struct cx_notify *n;
 *   if (cx_notify_create(&c, &n, err) != 0) ...
 *   const char *to[] = {"ops@example.org"};
 *   cx_notify_run_failed(n, CX_NOTIFY_EMAIL, to, 1, &run);  // never blocks
 *   ...
 *   cx_notify_destroy(n, 5000);  // drains for up to 5 s
 *
 * Delivery is asynchronous: enqueueing copies the message into a bounded
 * queue and returns at once; worker threads send. A full queue drops its
 * OLDEST message (counted in `dropped`, logged). Each attempt has a timeout;
 * transient failures (connection refused, timeouts, SMTP 4xx, HTTP 5xx and
 * 429, Feishu code 11232) are retried with exponential backoff, without
 * holding a worker: a message waiting for its retry sits in the queue with
 * a not-before time. Permanent failures (SMTP 5xx, login denied, TLS
 * verification, STARTTLS required but not offered, HTTP 4xx, any other
 * Feishu code such as 19021 "sign match fail") are logged and counted in
 * `failed` at once.
 *
 * Both channels carry the same facts, rendered from one list: job name and
 * id, node hostname and uuid, scheduled time (RFC 3339, UTC), trigger,
 * attempts, final status, exit code or HTTP status, duration, a link to the
 * run (when public_url is set) and the tail of the output (at most
 * output_max bytes, cut on a UTF-8 boundary and, when possible, at a line
 * start). Every text is made valid UTF-8 (invalid bytes become U+FFFD);
 * one-line fields lose their control characters, so no field can inject a
 * mail header or a Feishu mention.
 *
 * Email: an RFC 5322 message with CRLF line ends: Date, From, To, Subject
 * (RFC 2047 "=?UTF-8?B?...?=" words when not plain ASCII), Message-ID,
 * MIME-Version, Content-Type text/plain; charset=UTF-8, and a base64 body
 * (base64 rather than 8bit: job output may hold lines longer than SMTP's
 * 998-byte limit and needs no 8BITMIME from the server). Recipients that
 * are not a plain ASCII addr-spec are skipped with a log line; the server
 * refusing one recipient does not stop the others (MAIL_RCPT_ALLLOWFAILS).
 * The EHLO name is the smtp_url path; when the URL has none, the host name
 * of this machine is used.
 *
 * Feishu: a "post" message (title + paragraphs of text/a/at elements) built
 * with jansson. A post is used rather than a "text" message because text
 * messages parse <at> markup inside the text, which a job name could abuse;
 * post text elements are not parsed. Mentions are "at" elements with the
 * users' feishu ids. With a secret the body carries "timestamp" and "sign"
 * (cx_notify_feishu_sign). The body is kept under 20 000 bytes by cutting
 * the output tail. Sends to the webhook are rate limited to 5 in any 1.1 s
 * and 100 in any 61 s (Feishu allows 5/s and 100/min per bot; the extra
 * tenth of a second absorbs transit jitter so the server never counts 6).
 *
 * Thread-safety: every function may be called from any thread, except that
 * cx_notify_destroy must not race with other calls on the same notifier.
 * libcurl must be initialised (curl_global_init) before threads start, or
 * the first cx_notify_create must come before them; create does it once.
 */
#ifndef CX_NOTIFY_H
#define CX_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* notify_type of a job (SPEC §3). Other values are ignored. */
enum cx_notify_type {
  CX_NOTIFY_EMAIL = 1,
  CX_NOTIFY_FEISHU = 2,
  CX_NOTIFY_DINGTALK = 3, /* DingTalk custom robot */
  CX_NOTIFY_WECOM = 4,    /* WeCom (企业微信) group robot */
  CX_NOTIFY_SLACK = 5,    /* Slack incoming webhook */
  CX_NOTIFY_WEBHOOK = 6,  /* generic JSON webhook (docs/notify-webhook.md) */
};
#define CX_NOTIFY_TYPE_MAX 6

/* STARTTLS on smtp:// URLs (smtps:// is TLS from the first byte). */
enum cx_notify_starttls {
  CX_NOTIFY_STARTTLS_TRY = 0,      /* use it when offered (default) */
  CX_NOTIFY_STARTTLS_REQUIRED = 1, /* fail (permanently) if not offered */
  CX_NOTIFY_STARTTLS_OFF = 2,      /* never (plain text) */
};

/* Limits. Longer inputs are cut (texts) or rejected (URLs, ids). */
#define CX_NOTIFY_MAX_RCPT 100     /* recipients per message; more skipped */
#define CX_NOTIFY_FIELD_MAX 256    /* job name, hostname, status, ... */
#define CX_NOTIFY_OUTPUT_MAX 16384 /* ceiling for conf.output_max */
#define CX_NOTIFY_ANSWER_LEN 512   /* cx_notify_send_test answer */
#define CX_NOTIFY_FEISHU_BODY_MAX 20000
#define CX_NOTIFY_SIGN_LEN 64    /* buffer for a base64 HMAC-SHA256 + NUL */
#define CX_NOTIFY_MAX_HEADERS 20 /* extra headers of the generic webhook */

/* Configuration. Strings are copied by cx_notify_create; NULL or "" means
 * unset, a zero number means the default. A channel without its URL is
 * off: messages for it are skipped with a log line. The settings that
 * fill it (src/config's table, README "Notifications"):
 * notify.email.{smtp_url, starttls, username, password, from, tls_verify,
 * ca_file}, notify.feishu.{webhook_url, secret}, notify.{timeout,
 * retries, queue_size} and server.public_url; the other members (workers,
 * backoff, output_max, per-channel timeouts and Feishu TLS options) have
 * no setting and keep their defaults. tls_verify = false is
 * tls_insecure = 1 here, so that a zeroed struct verifies. */
struct cx_notify_conf {
  struct {
    const char *smtp_url; /* smtp://host[:port][/ehlo] or smtps://... */
    const char *username, *password; /* AUTH when username is set */
    const char *from; /* "addr@x" or "Name <addr@x>"; required with url */
    enum cx_notify_starttls starttls;
    int tls_insecure;    /* 1 = do not verify the server's certificate */
    const char *ca_file; /* PEM bundle to verify against (else system) */
    int timeout_ms;      /* per attempt; default 30000 */
  } email;
  struct {
    const char *webhook_url; /* http(s)://... */
    const char *secret;      /* signing secret; unset = unsigned */
    int timeout_ms;          /* per attempt; default 10000 */
    int tls_insecure;        /* 1 = do not verify (tests, private CAs) */
    const char *ca_file;
  } feishu;
  /* The robots of bots.c share feishu's timeout_ms, tls_insecure and
   * ca_file. Recipients ("to") per type: DingTalk and WeCom "id:<user
   * id>" or "mobile:<number>" (mentioned), Slack a member id "U123ABC"
   * (mentioned as <@U123ABC>), webhook any one-line text (listed in the
   * body); for these four "to" may be empty: the group still gets it. */
  struct {
    const char *webhook_url; /* https://oapi.dingtalk.com/robot/send?... */
    const char *secret;      /* "SEC..." signing secret; unset = unsigned */
  } dingtalk;
  struct {
    const char *webhook_url; /* https://qyapi.weixin.qq.com/...?key=... */
  } wecom;
  struct {
    const char *webhook_url; /* https://hooks.slack.com/services/... */
  } slack;
  struct {
    const char *url;    /* http(s)://... */
    const char *secret; /* X-Cronix-Signature: sha256=<hex HMAC of body> */
    const char *const *headers; /* extra "Name: value" lines */
    size_t n_headers;           /* at most CX_NOTIFY_MAX_HEADERS */
  } webhook;
  const char *public_url; /* e.g. https://cron.example.org: run links */
  const char *language;   /* "en" (NULL, "") or "zh-CN": the texts */
  int queue_size;         /* messages; default 1000, max 1000000 */
  int workers;            /* sending threads, 1..2; default 1 */
  int retries;            /* after the first attempt; default 3, max 20 */
  int backoff_ms;         /* first retry delay, doubling; default 1000 */
  int backoff_max_ms;     /* cap on the delay; default 60000 */
  int output_max;         /* output tail bytes; default 2048 */
};

/* A run's event (a final failure, or a recovery). Only job_name is
 * required; NULL strings and
 * negative numbers are "unknown" and left out of the message. */
struct cx_notify_run {
  /* What happened, for the subject: failed (NULL), timeout, killed, lost,
   * missed, recovered. */
  const char *event;
  const char *job_name;
  int64_t job_id;
  int64_t run_id; /* for the link: <public_url>/runs/<run_id> */
  const char *node_uuid;
  const char *node_host;
  int64_t scheduled;   /* seconds since the epoch, UTC; <0 unknown */
  const char *trigger; /* "schedule", "manual", "retry", ... */
  int attempts;        /* attempts made, including the first */
  const char *status;  /* e.g. "failed", "timeout", "killed" */
  int has_exit_code;   /* exit_code is meaningful */
  int exit_code;
  int http_status; /* > 0 for http jobs */
  int64_t duration_ms;
  const char *output; /* captured output (any bytes), may be NULL */
  size_t output_len;
  /* A missed row's range: missed_count fires from scheduled to
   * missed_last (seconds); 0 = not a range. */
  int64_t missed_count, missed_last;
};

/* A node that stopped renewing its lease (or, with up, came back). */
struct cx_notify_node {
  const char *node_uuid;
  const char *hostname;
  int64_t last_seen;       /* seconds since the epoch; <0 unknown */
  const char *const *jobs; /* names of the jobs it held (NULL = none) */
  size_t n_jobs;           /* at most 50 are listed, then "and N more" */
  int up;                  /* 1: the node is back up; 0: it is down */
};

/* Counters since create; a snapshot, each read under the queue lock. */
struct cx_notify_stats {
  uint64_t queued;  /* accepted into the queue */
  uint64_t sent;    /* delivered (server said yes) */
  uint64_t failed;  /* given up: permanent error or retries exhausted */
  uint64_t dropped; /* pushed out of a full queue, or left at shutdown */
  uint64_t retried; /* attempts that were rescheduled */
  uint64_t skipped; /* nothing to send: no valid recipient / channel off */
  uint64_t pending; /* in the queue now (waiting or in flight) */
};

struct cx_notify;

/* Checks conf, copies it, starts the workers. On success *out owns the
 * notifier (free with cx_notify_destroy). Errors: CX_EPARSE with err
 * naming the field (bad URL scheme, from missing/invalid, numbers out of
 * range), -ENOMEM, -errno from pthread_create. */
int cx_notify_create(const struct cx_notify_conf *conf, struct cx_notify **out,
                     char *err);

/* Stops accepting, lets the workers send what is queued for up to
 * drain_ms (retries keep their backoff), then aborts transfers in
 * flight, counts what is left as dropped (logged) and frees everything.
 * Accepts NULL. */
void cx_notify_destroy(struct cx_notify *n, int drain_ms);

/* Enqueues a run-failure message of the given type to the recipients
 * (email addresses for CX_NOTIFY_EMAIL, feishu ids for CX_NOTIFY_FEISHU).
 * Everything is copied; never blocks on the network. No recipient, an
 * unknown type or a channel that is not configured: nothing is queued, a
 * line is logged, `skipped` counts it and 0 is returned ("nothing
 * fails"). Errors: CX_EPARSE (run or job_name NULL), CX_EUNAVAIL (the
 * notifier is shutting down), -ENOMEM. */
int cx_notify_run_failed(struct cx_notify *n, int type, const char *const *to,
                         size_t n_to, const struct cx_notify_run *run);

/* The same for a node-death alert (to = the admins' addresses or ids). */
int cx_notify_node_down(struct cx_notify *n, int type, const char *const *to,
                        size_t n_to, const struct cx_notify_node *node);

/* Sends one test message now, in the calling thread, with one attempt (no
 * retry; the Feishu rate limit is honoured), for POST /notify/test. answer
 * (may be NULL; cap bytes, CX_NOTIFY_ANSWER_LEN is enough) gets the
 * server's last reply: the SMTP reply line or the webhook's JSON body.
 * Returns 0 when the server accepted it. Errors: CX_EPARSE (unknown type,
 * no valid recipient, channel not configured: err says which),
 * CX_EUNAVAIL (transient: refused, timeout, 4xx SMTP, 5xx/429/11232),
 * CX_EAUTH (login denied, signature rejected), CX_EPROTO (other permanent
 * refusals), -ENOMEM. err says what happened in either case. */
int cx_notify_send_test(struct cx_notify *n, int type, const char *const *to,
                        size_t n_to, char *answer, size_t cap, char *err);

/* Synchronous sends for the leader's outbox (src/admin/alerts.c): one
 * attempt now, in the calling thread (the Feishu rate limit is honoured),
 * no queue and no retry -- the caller keeps the event and decides. Same
 * recipients as cx_notify_run_failed / cx_notify_node_down, same return
 * codes and answer as cx_notify_send_test; sent / failed count them. */
int cx_notify_send_run(struct cx_notify *n, int type, const char *const *to,
                       size_t n_to, const struct cx_notify_run *run,
                       char *answer, size_t cap, char *err);
int cx_notify_send_node(struct cx_notify *n, int type, const char *const *to,
                        size_t n_to, const struct cx_notify_node *node,
                        char *answer, size_t cap, char *err);
/* A digest: count alerts (distinct lines) in one message, the leader's
 * burst control. list: the alerts, one per line (its last
 * CX_NOTIFY_OUTPUT_MAX bytes are kept). Same codes as cx_notify_send_run. */
int cx_notify_send_digest(struct cx_notify *n, int type, const char *const *to,
                          size_t n_to, size_t count, size_t distinct,
                          const char *list, char *answer, size_t cap,
                          char *err);
/* 1 when n (may be NULL) has the channel of type configured. */
int cx_notify_channel_on(const struct cx_notify *n, int type);

/* Copies the counters (for /metrics); n must not be NULL. */
void cx_notify_stats_get(struct cx_notify *n, struct cx_notify_stats *out);

/* Feishu signature: base64(HMAC-SHA256(key = "<timestamp>\n<secret>",
 * message = "")) into out[CX_NOTIFY_SIGN_LEN]. Returns 0, or CX_EPARSE
 * (secret NULL), CX_EPROTO (OpenSSL failed). Thread-safe. */
int cx_notify_feishu_sign(int64_t timestamp, const char *secret,
                          char out[CX_NOTIFY_SIGN_LEN]);

#endif
