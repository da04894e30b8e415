/*
 * notify: the queue and its workers, configuration, and the facts both
 * channels render (see notify.h). The queue is a doubly linked list,
 * oldest first; a worker takes the oldest message that is neither in
 * flight nor waiting for its retry time, so a retrying message never holds
 * a worker. Lists are at most queue_size long and scanned linearly, which
 * at the default 1000 costs microseconds per pick.
 */
#include "notify/notify-int.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOGC "notify"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
  curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- UTF-8 cleaning ---------------------------------------------------- */

/* Cleans s[0..len) into out. multiline keeps \n and \t (CR -> LF) and
 * maps other controls to U+FFFD; else every control becomes ' '. */
static void clean(struct cx_buf *out, const char *s, size_t len, int multiline)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;

  while (i < len) {
    size_t k = cx_utf8_next(s + i, len - i, NULL);
    if (k == 0) {
      cx_buf_append(out, CX_UTF8_REPL, 3);
      i++;
      continue;
    }
    if (k == 1 && (p[i] < 0x20 || p[i] == 0x7F)) {
      if (!multiline)
        cx_buf_append(out, " ", 1);
      else if (p[i] == '\n' || p[i] == '\t')
        cx_buf_append(out, p + i, 1);
      else if (p[i] == '\r') {
        if (i + 1 >= len || p[i + 1] != '\n')
          cx_buf_append(out, "\n", 1);
      } else
        cx_buf_append(out, CX_UTF8_REPL, 3);
      i++;
      continue;
    }
    cx_buf_append(out, p + i, k);
    i += k;
  }
}

char *cx__notify_clean_line(const char *s, size_t max)
{
  struct cx_buf b = {0};
  size_t n;

  if (s == NULL)
    s = "";
  n = strnlen(s, max * 4 + 4);
  clean(&b, s, n, 0);
  cx_buf_append(&b, "", 0);
  if (cx_buf_failed(&b)) {
    cx_buf_free(&b);
    return NULL;
  }
  if (b.len > max) {
    b.len = cx_utf8_floor(b.data, b.len, max);
    b.data[b.len] = '\0';
  }
  return cx_buf_steal(&b);
}

char *cx__notify_clean_tail(const char *s, size_t len, size_t max, size_t *cut)
{
  struct cx_buf b = {0};
  size_t start = 0, off = 0;

  *cut = 0;
  if (s == NULL)
    len = 0;
  if (len > max)
    start = len - max;
  /* a cut inside a sequence would leave stray continuation bytes */
  if (start > 0)
    start = cx_utf8_ceil(s, len < start + 3 ? len : start + 3, start);
  clean(&b, s ? s + start : "", len - start, 1);
  cx_buf_append(&b, "", 0);
  if (cx_buf_failed(&b)) {
    cx_buf_free(&b);
    return NULL;
  }
  /* U+FFFD expansion can make it longer than max again: keep the end */
  if (b.len > max) {
    off = cx_utf8_ceil(b.data, b.len, b.len - max);
  }
  /* start at a line when one begins in the first half */
  if (start > 0 || off > 0) {
    const char *nl = memchr(b.data + off, '\n', (b.len - off) / 2);
    if (nl != NULL)
      off = (size_t)(nl - b.data) + 1;
  }
  if (off > 0) {
    memmove(b.data, b.data + off, b.len - off + 1);
    b.len -= off;
  }
  /* bytes left out, counting the cleaned prefix as if original bytes */
  if (start > 0 || off > 0)
    *cut = start + off < len ? start + off : len;
  return cx_buf_steal(&b);
}

void cx__notify_rfc3339(int64_t t, char buf[32])
{
  struct cx_civil c;

  cx_civil_from_seconds(t, &c);
  snprintf(buf, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year, c.month, c.day,
           c.hour, c.min, c.sec);
}

int cx__notify_aborted(const struct cx_notify *n)
{
  return atomic_load(&((struct cx_notify *)n)->abort) != 0;
}

/* ---- messages ---------------------------------------------------------- */

void cx__notify_msg_free(struct cx__notify_msg *m)
{
  if (m == NULL)
    return;
  cx_free(m->subject);
  for (size_t i = 0; i < m->n_facts; i++)
    cx_free(m->facts[i].value);
  cx_free(m->link);
  cx_free(m->output);
  for (size_t i = 0; i < m->n_to; i++)
    cx_free(m->to[i]);
  cx_free(m->to);
  cx_free(m);
}

/* A fact's label in m's language (m must be in scope). */
#define L(en) cx__notify_l(m->zh, en)

static int fact(struct cx__notify_msg *m, const char *label, const char *value)
{
  if (m->n_facts >= CX__NOTIFY_MAX_FACTS)
    return 0;
  m->facts[m->n_facts].value =
      cx__notify_clean_line(value, CX_NOTIFY_FIELD_MAX);
  if (m->facts[m->n_facts].value == NULL)
    return -ENOMEM;
  m->facts[m->n_facts].label = label;
  m->n_facts++;
  return 0;
}

static int factf(struct cx__notify_msg *m, const char *label, const char *fmt,
                 ...) __attribute__((format(printf, 3, 4)));
static int factf(struct cx__notify_msg *m, const char *label, const char *fmt,
                 ...)
{
  char tmp[CX_NOTIFY_FIELD_MAX * 2 + 64];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  return fact(m, label, tmp);
}

/* New message with its validated recipients. */
static const char *type_name(int type)
{
  static const char *const names[] = {"?",     "email", "feishu", "dingtalk",
                                      "wecom", "slack", "webhook"};
  return type >= 1 && type <= CX_NOTIFY_TYPE_MAX ? names[type] : "?";
}

static struct cx__notify_msg *msg_new(int type, int kind, const char *const *to,
                                      size_t n_to, int *rc)
{
  struct cx__notify_msg *m = cx_calloc(1, sizeof *m);
  size_t cap = n_to < CX_NOTIFY_MAX_RCPT ? n_to : CX_NOTIFY_MAX_RCPT;

  *rc = -ENOMEM;
  if (m == NULL)
    return NULL;
  m->type = type;
  m->kind = kind;
  m->to = cx_calloc(cap + 1, sizeof *m->to);
  if (m->to == NULL)
    goto err;
  for (size_t i = 0; to != NULL && i < n_to; i++) {
    const char *r = to[i];
    int ok =
        r != NULL && (type == CX_NOTIFY_EMAIL    ? cx__mail_addr_ok(r)
                      : type == CX_NOTIFY_FEISHU ? cx__feishu_id_ok(r)
                                                 : cx__bot_rcpt_ok(type, r));
    if (!ok) {
      char *shown = cx__notify_clean_line(r ? r : "(none)", 80);
      CX_LOG(CX_LOG_WARN, LOGC,
             "recipient %zu \"%s\" is not a valid %s: "
             "skipped",
             i, shown ? shown : "?", type_name(type));
      cx_free(shown);
      continue;
    }
    if (m->n_to >= cap) {
      CX_LOG(CX_LOG_WARN, LOGC, "more than %d recipients: the rest skipped",
             CX_NOTIFY_MAX_RCPT);
      break;
    }
    m->to[m->n_to] = cx_strdup(r);
    if (m->to[m->n_to] == NULL)
      goto err;
    m->n_to++;
  }
  if (m->n_to == 0 && type <= CX_NOTIFY_FEISHU) { /* robots: the group */
    *rc = CX_EPARSE;
    goto err;
  }
  *rc = 0;
  return m;
err:
  cx__notify_msg_free(m);
  return NULL;
}

static int set_output(const struct cx_notify *n, struct cx__notify_msg *m,
                      const char *out, size_t len)
{
  if (out == NULL || len == 0)
    return 0;
  m->output =
      cx__notify_clean_tail(out, len, (size_t)n->output_max, &m->output_cut);
  return m->output ? 0 : -ENOMEM;
}

/* The subject's words for an event of struct cx_notify_run. */
const char *cx__notify_l(int zh, const char *en)
{
  static const char *const t[][2] = {
      {"Job", "任务"},
      {"Node", "节点"},
      {"Scheduled", "计划时间"},
      {"Trigger", "触发方式"},
      {"Attempts", "尝试次数"},
      {"Status", "状态"},
      {"Exit code", "退出码"},
      {"HTTP status", "HTTP 状态码"},
      {"Duration", "耗时"},
      {"Node id", "节点 ID"},
      {"Last seen", "最后在线"},
      {"Jobs affected", "受影响的任务数"},
      {"Test", "测试"},
      {"notification settings work", "通知设置可用"},
      {"Sent by", "发送方"},
      {"Sent at", "发送时间"},
      {"Run", "运行记录"},
      {"Link", "链接"},
      {"Output", "输出"},
      {"Jobs", "任务"},
      {"Alerts", "告警"},
      {"failed", "失败"},
      {"timed out", "超时"},
      {"was killed", "被终止"},
      {"was lost with its node", "随节点丢失"},
      {"missed its fire", "错过执行"},
      {"Missed fires", "错过的执行"},
      {"is back up", "已恢复上线"},
      {"recovered", "已恢复"},
      {"succeeded", "成功"},
      {"has run longer than its max_duration", "运行时间超过 max_duration"},
      {"Output (last %zu bytes, %zu earlier bytes left out)",
       "输出（最后 %zu 字节，之前 %zu 字节略去）"},
  };
  for (size_t i = 0; zh && i < CX_ARRAY_LEN(t); i++)
    if (strcmp(en, t[i][0]) == 0)
      return t[i][1];
  return en;
}

/* The subject's words for an event of struct cx_notify_run. */
static const char *event_text(int zh, const char *ev)
{
  static const char *const t[][2] = {
      {"timeout", "timed out"},
      {"killed", "was killed"},
      {"lost", "was lost with its node"},
      {"missed", "missed its fire"},
      {"recovered", "recovered"},
      {"success", "succeeded"},
      {"max_duration", "has run longer than its max_duration"}};
  for (size_t i = 0; ev != NULL && i < CX_ARRAY_LEN(t); i++)
    if (strcmp(ev, t[i][0]) == 0)
      return cx__notify_l(zh, t[i][1]);
  return cx__notify_l(zh, "failed");
}

struct cx__notify_msg *cx__notify_msg_run(const struct cx_notify *n, int type,
                                          const char *const *to, size_t n_to,
                                          const struct cx_notify_run *r,
                                          int *rc)
{
  struct cx__notify_msg *m;
  char *name = NULL, *host = NULL, ts[32];
  int e = 0;

  if (r == NULL || r->job_name == NULL) {
    *rc = CX_EPARSE;
    return NULL;
  }
  m = msg_new(type, CX__NOTIFY_RUN, to, n_to, rc);
  if (m == NULL)
    return NULL;
  m->zh = n->zh;
  name = cx__notify_clean_line(r->job_name, CX_NOTIFY_FIELD_MAX);
  host = cx__notify_clean_line(r->node_host ? r->node_host : r->node_uuid,
                               CX_NOTIFY_FIELD_MAX);
  if (name == NULL || host == NULL)
    goto nomem;
  {
    struct cx_buf s = {0};
    if (n->zh)
      cx_buf_printf(&s, "[cronix] 任务「%s」%s", name, event_text(1, r->event));
    else
      cx_buf_printf(&s, "[cronix] job \"%s\" %s", name,
                    event_text(0, r->event));
    if (host[0])
      cx_buf_printf(&s, n->zh ? "（%s）" : " on %s", host);
    if (cx_buf_failed(&s))
      goto nomem;
    m->subject = cx_buf_steal(&s);
  }
  if (r->job_id >= 0)
    e |= factf(m, L("Job"), "%s (id %" PRId64 ")", name, r->job_id);
  else
    e |= fact(m, L("Job"), name);
  if (r->node_host && r->node_uuid)
    e |= factf(m, L("Node"), "%.256s (%.64s)", r->node_host, r->node_uuid);
  else if (host[0])
    e |= fact(m, L("Node"), host);
  if (r->scheduled >= 0) {
    cx__notify_rfc3339(r->scheduled, ts);
    e |= fact(m, L("Scheduled"), ts);
  }
  if (r->missed_count > 0 && r->scheduled >= 0 &&
      r->missed_last >= r->scheduled) { /* the range a missed row holds */
    char last[32];
    cx__notify_rfc3339(r->missed_last, last);
    e |= factf(m, L("Missed fires"), "%" PRId64 " (%s .. %s)", r->missed_count,
               ts, last);
  }
  if (r->trigger)
    e |= fact(m, L("Trigger"), r->trigger);
  if (r->attempts > 0)
    e |= factf(m, L("Attempts"), "%d", r->attempts);
  e |= fact(m, L("Status"), r->status ? r->status : "failed");
  if (r->has_exit_code)
    e |= factf(m, L("Exit code"), "%d", r->exit_code);
  if (r->http_status > 0)
    e |= factf(m, L("HTTP status"), "%d", r->http_status);
  if (r->duration_ms >= 0)
    e |= factf(m, L("Duration"), "%" PRId64 ".%03d s", r->duration_ms / 1000,
               (int)(r->duration_ms % 1000));
  if (e)
    goto nomem;
  if (n->public_url && r->run_id >= 0) {
    struct cx_buf s = {0};
    cx_buf_printf(&s, "%s/runs/%" PRId64, n->public_url, r->run_id);
    if (cx_buf_failed(&s))
      goto nomem;
    m->link = cx_buf_steal(&s);
  }
  if (set_output(n, m, r->output, r->output_len))
    goto nomem;
  cx_free(name);
  cx_free(host);
  return m;
nomem:
  cx_free(name);
  cx_free(host);
  cx__notify_msg_free(m);
  *rc = -ENOMEM;
  return NULL;
}

struct cx__notify_msg *cx__notify_msg_node(const struct cx_notify *n, int type,
                                           const char *const *to, size_t n_to,
                                           const struct cx_notify_node *d,
                                           int *rc)
{
  struct cx__notify_msg *m;
  struct cx_buf s = {0}, jobs = {0};
  char *host = NULL, ts[32];
  int e = 0;

  if (d == NULL || (d->node_uuid == NULL && d->hostname == NULL)) {
    *rc = CX_EPARSE;
    return NULL;
  }
  m = msg_new(type, CX__NOTIFY_NODE, to, n_to, rc);
  if (m == NULL)
    return NULL;
  m->zh = n->zh;
  host = cx__notify_clean_line(d->hostname ? d->hostname : d->node_uuid,
                               CX_NOTIFY_FIELD_MAX);
  if (host == NULL)
    goto nomem;
  if (d->up)
    cx_buf_printf(&s,
                  n->zh ? "[cronix] 节点 %s 已恢复上线"
                        : "[cronix] node %s is back up",
                  host);
  else
    cx_buf_printf(
        &s, n->zh ? "[cronix] 节点 %s 已下线" : "[cronix] node %s is down",
        host);
  if (cx_buf_failed(&s))
    goto nomem;
  m->subject = cx_buf_steal(&s);
  e |= fact(m, L("Node"), host);
  if (d->node_uuid)
    e |= fact(m, L("Node id"), d->node_uuid);
  if (d->last_seen >= 0) {
    cx__notify_rfc3339(d->last_seen, ts);
    e |= fact(m, L("Last seen"), ts);
  }
  if (!d->up)
    e |= factf(m, L("Jobs affected"), "%zu", d->n_jobs);
  if (e)
    goto nomem;
  /* the job names go where the output goes: one per line */
  for (size_t i = 0; d->jobs && i < d->n_jobs; i++) {
    char *j;
    if (i == CX__NOTIFY_MAX_JOBS_LISTED) {
      cx_buf_printf(&jobs, "... and %zu more\n", d->n_jobs - i);
      break;
    }
    j = cx__notify_clean_line(d->jobs[i], CX_NOTIFY_FIELD_MAX);
    if (j == NULL)
      goto nomem;
    cx_buf_printf(&jobs, "%s\n", j);
    cx_free(j);
  }
  if (cx_buf_failed(&jobs))
    goto nomem;
  if (jobs.len > 0)
    m->output = cx_buf_steal(&jobs);
  if (n->public_url) {
    cx_buf_printf(&s, "%s/nodes", n->public_url);
    if (cx_buf_failed(&s))
      goto nomem;
    m->link = cx_buf_steal(&s);
  }
  cx_free(host);
  return m;
nomem:
  cx_buf_free(&s);
  cx_buf_free(&jobs);
  cx_free(host);
  cx__notify_msg_free(m);
  *rc = -ENOMEM;
  return NULL;
}

static struct cx__notify_msg *msg_test(const struct cx_notify *n, int type,
                                       const char *const *to, size_t n_to,
                                       int *rc)
{
  struct cx__notify_msg *m = msg_new(type, CX__NOTIFY_TEST, to, n_to, rc);
  char host[256] = "", ts[32];

  if (m == NULL)
    return NULL;
  if (gethostname(host, sizeof host - 1) != 0)
    host[0] = '\0';
  cx__notify_rfc3339(cx_wall_s(), ts);
  m->zh = n->zh;
  m->subject =
      cx_strdup(n->zh ? "[cronix] 测试通知" : "[cronix] test notification");
  if (m->subject == NULL ||
      fact(m, L("Test"), cx__notify_l(m->zh, "notification settings work")) ||
      fact(m, L("Sent by"), host) || fact(m, L("Sent at"), ts) ||
      (n->public_url && (m->link = cx_strdup(n->public_url)) == NULL)) {
    cx__notify_msg_free(m);
    *rc = -ENOMEM;
    return NULL;
  }
  return m;
}

int cx__notify_text(const struct cx__notify_msg *m, int with_output,
                    struct cx_buf *out)
{
  for (size_t i = 0; i < m->n_facts; i++)
    cx_buf_printf(out, "%s: %s\n", m->facts[i].label, m->facts[i].value);
  if (m->link)
    cx_buf_printf(out, "%s: %s\n",
                  L(m->kind == CX__NOTIFY_RUN ? "Run" : "Link"), m->link);
  if (with_output && m->output) {
    if (m->kind == CX__NOTIFY_NODE)
      cx_buf_printf(out, "\n%s:\n", L("Jobs"));
    else if (m->kind == CX__NOTIFY_DIGEST)
      cx_buf_printf(out, "\n%s:\n", L("Alerts"));
    else if (m->output_cut > 0) {
      cx_buf_puts(out, "\n");
      cx_buf_printf(out,
                    L("Output (last %zu bytes, %zu earlier bytes left out)"),
                    strlen(m->output), m->output_cut);
      cx_buf_puts(out, ":\n");
    } else
      cx_buf_printf(out, "\n%s:\n", L("Output"));
    cx_buf_puts(out, m->output);
    if (m->output[0] && m->output[strlen(m->output) - 1] != '\n')
      cx_buf_puts(out, "\n");
  }
  return cx_buf_failed(out) ? -ENOMEM : 0;
}

/* ---- configuration ----------------------------------------------------- */

static int dup_opt(const char *s, char **out)
{
  *out = NULL;
  if (s == NULL || s[0] == '\0')
    return 0;
  *out = cx_strdup(s);
  return *out ? 0 : -ENOMEM;
}

static int num(int v, int def, int lo, int hi, const char *name, int *out,
               char *err)
{
  if (v == 0)
    v = def;
  if (v < lo || v > hi) {
    cx_err_set(err, "notify.%s: %d is outside %d..%d", name, v, lo, hi);
    return CX_EPARSE;
  }
  *out = v;
  return 0;
}

/* Checks a URL for control characters and length and its scheme. */
static int url_ok(const char *u, const char *const *schemes, size_t n_sch,
                  const char *name, char *err)
{
  size_t len = strnlen(u, 2049);
  int sch = 0;

  if (len > 2048) {
    cx_err_set(err, "notify.%s: longer than 2048 bytes", name);
    return CX_EPARSE;
  }
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7F) {
      cx_err_set(err, "notify.%s: contains a space or control character", name);
      return CX_EPARSE;
    }
  for (size_t i = 0; i < n_sch; i++)
    if (strncasecmp(u, schemes[i], strlen(schemes[i])) == 0 &&
        u[strlen(schemes[i])] != '\0' && u[strlen(schemes[i])] != '/')
      sch = 1;
  if (!sch) {
    /* Masked: a webhook's path holds its token, a URL may hold a
     * password; the scheme, which is what is wrong, stays readable. */
    char shown[256];
    cx_url_redact(u, CX_URL_REDACT_PATH, shown, sizeof shown);
    cx_err_set(err, "notify.%s: \"%s\" must start with %s%s%s", name, shown,
               schemes[0], n_sch > 1 ? " or " : "",
               n_sch > 1 ? schemes[1] : "");
    return CX_EPARSE;
  }
  return 0;
}

/* 1 when the host of URL u ("scheme://[user@]host[:port][/...]") is the
 * loopback: mail that never leaves this machine. */
static int host_is_loopback(const char *u)
{
  const char *h = strstr(u, "://") + 3;
  size_t n = strcspn(h, "/?");
  const char *at = NULL;
  for (size_t i = 0; i < n; i++)
    if (h[i] == '@')
      at = h + i;
  if (at != NULL) {
    n -= (size_t)(at + 1 - h);
    h = at + 1;
  }
  size_t hl = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/?");
  if (hl > n)
    hl = n;
  return (hl == 9 && strncasecmp(h, "localhost", 9) == 0) ||
         (hl == 5 && strncmp(h, "[::1]", 5) == 0) ||
         (hl >= 4 && strncmp(h, "127.", 4) == 0);
}

/* AUTH must never cross the network in plain text: with a user name (a
 * setting or the URL's user info), smtp:// needs starttls = required;
 * "try" is refused because whoever sits between can strip the STARTTLS
 * offer, and "off" is allowed only to a loopback relay. */
static int smtp_auth_safe(const struct cx_notify_conf *c, char *err)
{
  const char *u = c->email.smtp_url;
  const char *auth = strstr(u, "://") + 3;
  int user = (c->email.username != NULL && c->email.username[0] != '\0') ||
             memchr(auth, '@', strcspn(auth, "/?")) != NULL;
  if (!user || strncasecmp(u, "smtps://", 8) == 0 ||
      c->email.starttls == CX_NOTIFY_STARTTLS_REQUIRED ||
      (c->email.starttls == CX_NOTIFY_STARTTLS_OFF && host_is_loopback(u)))
    return 0;
  cx_err_set(err,
             "notify.email.starttls: '%s' with a username could send the "
             "password in plain text; set starttls = required or use "
             "smtps://",
             c->email.starttls == CX_NOTIFY_STARTTLS_OFF ? "off" : "try");
  return CX_EPARSE;
}

/* smtp_url with an EHLO name: when the URL has no path, the host name. */
static int smtp_url_make(struct cx_notify *n, const char *u)
{
  const char *host = strstr(u, "://") + 3;
  const char *slash = strchr(host, '/');
  char name[256] = "";
  struct cx_buf b = {0};

  if (slash != NULL && slash[1] != '\0') {
    n->smtp_url = cx_strdup(u);
    return n->smtp_url ? 0 : -ENOMEM;
  }
  if (gethostname(name, sizeof name - 1) != 0)
    name[0] = '\0';
  for (char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
      *p = '-';
  cx_buf_append(&b, u, slash ? (size_t)(slash - u) : strlen(u));
  cx_buf_printf(&b, "/%s", name[0] ? name : "localhost");
  if (cx_buf_failed(&b)) {
    cx_buf_free(&b);
    return -ENOMEM;
  }
  n->smtp_url = cx_buf_steal(&b);
  return 0;
}

static void conf_free(struct cx_notify *n)
{
  cx_free(n->smtp_url);
  cx_free(n->smtp_user);
  cx_free(n->smtp_pass);
  cx_free(n->from_hdr);
  cx_free(n->from_addr);
  cx_free(n->mail_ca);
  cx_free(n->hook_url);
  cx_free(n->hook_secret);
  cx_free(n->hook_ca);
  cx_free(n->public_url);
  char **more[] = {&n->ding_url,  &n->ding_secret, &n->wecom_url,
                   &n->slack_url, &n->wh_url,      &n->wh_secret};
  for (size_t i = 0; i < CX_ARRAY_LEN(more); i++)
    cx_free(*more[i]);
  for (size_t i = 0; i < n->n_wh_headers; i++)
    cx_free(n->wh_headers[i]);
  cx_free(n->wh_headers);
}

/* An extra webhook header: "Name: value", a token name, no CR/LF/NUL, not
 * one the channel sets itself. */
static int header_ok(const char *h, char *err)
{
  size_t k = strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789-_");
  if (k == 0 || h[k] != ':' || strlen(h) > 1024 || strpbrk(h, "\r\n") != NULL) {
    cx_err_set(err,
               "notify.webhook.headers: \"%.80s\" is not \"Name: value\" "
               "on one line",
               h);
    return CX_EPARSE;
  }
  if ((k == 12 && strncasecmp(h, "Content-Type", 12) == 0) ||
      (k == 18 && strncasecmp(h, "X-Cronix-Signature", 18) == 0)) {
    cx_err_set(err, "notify.webhook.headers: %.*s is set by Cronix", (int)k, h);
    return CX_EPARSE;
  }
  return 0;
}

/* The robots' settings (bots.c). */
static int conf_bots(struct cx_notify *n, const struct cx_notify_conf *c,
                     char *err)
{
  static const char *const http_sch[] = {"http://", "https://"};
  const struct {
    const char *url, *name;
    char **dst;
  } urls[] = {{c->dingtalk.webhook_url, "dingtalk.webhook_url", &n->ding_url},
              {c->wecom.webhook_url, "wecom.webhook_url", &n->wecom_url},
              {c->slack.webhook_url, "slack.webhook_url", &n->slack_url},
              {c->webhook.url, "webhook.url", &n->wh_url}};
  int rc;
  for (size_t i = 0; i < CX_ARRAY_LEN(urls); i++) {
    if (urls[i].url == NULL || urls[i].url[0] == '\0')
      continue;
    if ((rc = url_ok(urls[i].url, http_sch, 2, urls[i].name, err)) != 0)
      return rc;
    if (dup_opt(urls[i].url, urls[i].dst))
      return -ENOMEM;
  }
  if (c->webhook.n_headers > CX_NOTIFY_MAX_HEADERS) {
    cx_err_set(err, "notify.webhook.headers: more than %d",
               CX_NOTIFY_MAX_HEADERS);
    return CX_EPARSE;
  }
  n->wh_headers = cx_calloc(c->webhook.n_headers + 1, sizeof *n->wh_headers);
  if (n->wh_headers == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < c->webhook.n_headers; i++) {
    if ((rc = header_ok(c->webhook.headers[i], err)) != 0)
      return rc;
    if ((n->wh_headers[i] = cx_strdup(c->webhook.headers[i])) == NULL)
      return -ENOMEM;
    n->n_wh_headers++;
  }
  if (dup_opt(c->dingtalk.secret, &n->ding_secret) ||
      dup_opt(c->webhook.secret, &n->wh_secret))
    return -ENOMEM;
  return 0;
}

static int conf_load(struct cx_notify *n, const struct cx_notify_conf *c,
                     char *err)
{
  static const char *const smtp_sch[] = {"smtp://", "smtps://"};
  static const char *const http_sch[] = {"http://", "https://"};
  int rc;

  if ((rc = num(c->queue_size, 1000, 1, 1000000, "queue_size", &n->queue_size,
                err)) ||
      (rc = num(c->workers, 1, 1, 2, "workers", &n->workers, err)) ||
      (rc = num(c->retries, 3, 0, 20, "retries", &n->retries, err)) ||
      (rc = num(c->backoff_ms, 1000, 1, 3600000, "backoff_ms", &n->backoff_ms,
                err)) ||
      (rc = num(c->backoff_max_ms, 60000, 1, 86400000, "backoff_max_ms",
                &n->backoff_max_ms, err)) ||
      (rc = num(c->output_max, 2048, 64, CX_NOTIFY_OUTPUT_MAX, "output_max",
                &n->output_max, err)) ||
      (rc = num(c->email.timeout_ms, 30000, 100, 600000, "email.timeout_ms",
                &n->mail_timeout_ms, err)) ||
      (rc = num(c->feishu.timeout_ms, 10000, 100, 600000, "feishu.timeout_ms",
                &n->hook_timeout_ms, err)))
    return rc;
  if (c->email.starttls < CX_NOTIFY_STARTTLS_TRY ||
      c->email.starttls > CX_NOTIFY_STARTTLS_OFF) {
    cx_err_set(err, "notify.email.smtp_starttls: must be try, required or "
                    "off");
    return CX_EPARSE;
  }
  n->starttls = c->email.starttls;
  if (c->language && c->language[0] && strcmp(c->language, "en") != 0 &&
      strcmp(c->language, "zh-CN") != 0) {
    cx_err_set(err, "notify.language: \"%.40s\" is not en or zh-CN",
               c->language);
    return CX_EPARSE;
  }
  n->zh = c->language && strcmp(c->language, "zh-CN") == 0;
  n->mail_insecure = c->email.tls_insecure != 0;
  n->hook_insecure = c->feishu.tls_insecure != 0;
  if (c->email.smtp_url && c->email.smtp_url[0]) {
    if ((rc = url_ok(c->email.smtp_url, smtp_sch, 2, "email.smtp_url", err)) ||
        (rc = smtp_auth_safe(c, err)))
      return rc;
    n->smtps = strncasecmp(c->email.smtp_url, "smtps://", 8) == 0;
    if (c->email.from == NULL || c->email.from[0] == '\0') {
      cx_err_set(err, "notify.email.from: required with smtp_url");
      return CX_EPARSE;
    }
    rc = cx__mail_parse_from(c->email.from, &n->from_hdr, &n->from_addr);
    if (rc == CX_EPARSE)
      cx_err_set(err,
                 "notify.email.from: \"%.200s\" is not an address or "
                 "\"Name <address>\"",
                 c->email.from);
    if (rc || (rc = smtp_url_make(n, c->email.smtp_url)))
      return rc;
  }
  if (c->feishu.webhook_url && c->feishu.webhook_url[0] &&
      (rc = url_ok(c->feishu.webhook_url, http_sch, 2, "feishu.webhook_url",
                   err)))
    return rc;
  if (c->public_url && c->public_url[0] &&
      (rc = url_ok(c->public_url, http_sch, 2, "server.public_url", err)))
    return rc;
  if (dup_opt(c->email.username, &n->smtp_user) ||
      dup_opt(c->email.password, &n->smtp_pass) ||
      dup_opt(c->email.ca_file, &n->mail_ca) ||
      dup_opt(c->feishu.webhook_url, &n->hook_url) ||
      dup_opt(c->feishu.secret, &n->hook_secret) ||
      dup_opt(c->feishu.ca_file, &n->hook_ca) ||
      dup_opt(c->public_url, &n->public_url))
    return -ENOMEM;
  if (n->public_url) {
    size_t l = strlen(n->public_url);
    while (l > 0 && n->public_url[l - 1] == '/')
      n->public_url[--l] = '\0';
  }
  return conf_bots(n, c, err);
}

/* ---- queue and workers -------------------------------------------------- */

static void q_unlink(struct cx_notify *n, struct cx__notify_msg *m)
{
  if (m->prev)
    m->prev->next = m->next;
  else
    n->head = m->next;
  if (m->next)
    m->next->prev = m->prev;
  else
    n->tail = m->prev;
  m->prev = m->next = NULL;
  n->len--;
}

static int send_one(struct cx_notify *n, const struct cx__notify_msg *m,
                    char *answer, size_t cap, char *err)
{
  if (m->type == CX_NOTIFY_EMAIL)
    return cx__mail_send(n, m, answer, cap, err);
  if (m->type == CX_NOTIFY_FEISHU)
    return cx__feishu_send(n, m, answer, cap, err);
  return cx__bot_send(n, m, answer, cap, err);
}

static cx_mono backoff_us(const struct cx_notify *n, int attempts)
{
  int64_t ms = n->backoff_ms;

  for (int i = 1; i < attempts && ms < n->backoff_max_ms; i++)
    ms *= 2;
  if (ms > n->backoff_max_ms)
    ms = n->backoff_max_ms;
  return (cx_mono)ms * 1000;
}

static void *worker(void *arg)
{
  struct cx_notify *n = arg;

  pthread_mutex_lock(&n->mu);
  for (;;) {
    struct cx__notify_msg *m, *pick = NULL;
    cx_mono now = cx_mono_now(), next = INT64_MAX;
    char answer[CX_NOTIFY_ANSWER_LEN] = "", err[CX_ERR_LEN] = "";
    int rc;

    if (atomic_load(&n->abort))
      break;
    for (m = n->head; m != NULL; m = m->next) {
      if (m->in_flight)
        continue;
      if (m->not_before <= now) {
        pick = m;
        break;
      }
      if (m->not_before < next)
        next = m->not_before;
    }
    if (pick == NULL) {
      if (n->stopping && n->head == NULL)
        break;
      if (next == INT64_MAX) {
        pthread_cond_wait(&n->cv, &n->mu);
        continue;
      }
      cx_cond_wait_until(&n->cv, &n->mu, next);
      continue;
    }
    pick->in_flight = 1;
    pick->attempts++;
    pthread_mutex_unlock(&n->mu);
    rc = send_one(n, pick, answer, sizeof answer, err);
    pthread_mutex_lock(&n->mu);
    pick->in_flight = 0;
    if (rc == 0) {
      n->st.sent++;
      CX_LOG(CX_LOG_INFO, LOGC, "%s sent (\"%s\", %zu recipient(s)): %s",
             type_name(pick->type), pick->subject, pick->n_to, answer);
      q_unlink(n, pick);
      cx__notify_msg_free(pick);
    } else if (rc == CX_EUNAVAIL && pick->attempts <= n->retries &&
               !atomic_load(&n->abort)) {
      cx_mono d = backoff_us(n, pick->attempts);
      n->st.retried++;
      pick->not_before = cx_mono_now() + d;
      CX_LOG(CX_LOG_WARN, LOGC,
             "%s attempt %d of %d failed (%s); retry in "
             "%" PRId64 " ms",
             type_name(pick->type), pick->attempts, n->retries + 1, err,
             d / 1000);
    } else {
      n->st.failed++;
      CX_LOG(CX_LOG_ERROR, LOGC, "%s \"%s\" LOST after %d attempt(s): %s",
             type_name(pick->type), pick->subject, pick->attempts, err);
      q_unlink(n, pick);
      cx__notify_msg_free(pick);
    }
    n->st.pending = n->len;
    pthread_cond_broadcast(&n->cv);
  }
  pthread_mutex_unlock(&n->mu);
  return NULL;
}

static int enqueue(struct cx_notify *n, struct cx__notify_msg *m)
{
  pthread_mutex_lock(&n->mu);
  if (n->stopping) {
    pthread_mutex_unlock(&n->mu);
    cx__notify_msg_free(m);
    return CX_EUNAVAIL;
  }
  if (n->len >= (size_t)n->queue_size) {
    struct cx__notify_msg *old = n->head;
    while (old != NULL && old->in_flight)
      old = old->next;
    n->st.dropped++;
    if (old == NULL) { /* everything is in flight: the new one goes */
      CX_LOG(CX_LOG_ERROR, LOGC, "queue full (%d): %s \"%s\" dropped",
             n->queue_size, type_name(m->type), m->subject);
      pthread_mutex_unlock(&n->mu);
      cx__notify_msg_free(m);
      return 0;
    }
    CX_LOG(CX_LOG_ERROR, LOGC,
           "queue full (%d): oldest %s \"%s\" dropped "
           "(%" PRIu64 " dropped so far)",
           n->queue_size, type_name(old->type), old->subject, n->st.dropped);
    q_unlink(n, old);
    cx__notify_msg_free(old);
  }
  m->prev = n->tail;
  if (n->tail)
    n->tail->next = m;
  else
    n->head = m;
  n->tail = m;
  n->len++;
  n->st.queued++;
  n->st.pending = n->len;
  pthread_cond_broadcast(&n->cv);
  pthread_mutex_unlock(&n->mu);
  return 0;
}

/* 1 when type's channel is configured; else 0 with err saying so. */
static int channel_on(const struct cx_notify *n, int type, char *err)
{
  static const char *const setting[] = {"",
                                        "email.smtp_url",
                                        "feishu.webhook_url",
                                        "dingtalk.webhook_url",
                                        "wecom.webhook_url",
                                        "slack.webhook_url",
                                        "webhook.url"};
  const char *url[] = {NULL,         n->smtp_url,  n->hook_url, n->ding_url,
                       n->wecom_url, n->slack_url, n->wh_url};
  if (type < 1 || type > CX_NOTIFY_TYPE_MAX) {
    cx_err_set(err, "notify_type %d is not 1..%d", type, CX_NOTIFY_TYPE_MAX);
    return 0;
  }
  if (url[type] != NULL)
    return 1;
  cx_err_set(err, "notify.%s is not configured", setting[type]);
  return 0;
}

static void skip(struct cx_notify *n, const char *what, const char *why)
{
  CX_LOG(CX_LOG_WARN, LOGC, "%s: nothing sent: %s", what, why);
  pthread_mutex_lock(&n->mu);
  n->st.skipped++;
  pthread_mutex_unlock(&n->mu);
}

int cx_notify_run_failed(struct cx_notify *n, int type, const char *const *to,
                         size_t n_to, const struct cx_notify_run *run)
{
  char err[CX_ERR_LEN] = "";
  struct cx__notify_msg *m;
  int rc;

  if (n == NULL || run == NULL || run->job_name == NULL)
    return CX_EPARSE;
  if (!channel_on(n, type, err)) {
    skip(n, "run failure", err);
    return 0;
  }
  m = cx__notify_msg_run(n, type, to, n_to, run, &rc);
  if (m == NULL) {
    if (rc != CX_EPARSE)
      return rc;
    skip(n, "run failure", "no valid recipient");
    return 0;
  }
  return enqueue(n, m);
}

int cx_notify_node_down(struct cx_notify *n, int type, const char *const *to,
                        size_t n_to, const struct cx_notify_node *node)
{
  char err[CX_ERR_LEN] = "";
  struct cx__notify_msg *m;
  int rc;

  if (n == NULL || node == NULL ||
      (node->node_uuid == NULL && node->hostname == NULL))
    return CX_EPARSE;
  if (!channel_on(n, type, err)) {
    skip(n, "node down", err);
    return 0;
  }
  m = cx__notify_msg_node(n, type, to, n_to, node, &rc);
  if (m == NULL) {
    if (rc != CX_EPARSE)
      return rc;
    skip(n, "node down", "no valid recipient");
    return 0;
  }
  return enqueue(n, m);
}

/* One attempt at m now, in this thread; counts the outcome and frees m. */
static int send_now(struct cx_notify *n, struct cx__notify_msg *m, char *answer,
                    size_t cap, char *err)
{
  char ans[CX_NOTIFY_ANSWER_LEN] = "";
  int rc = send_one(n, m, ans, sizeof ans, err);
  if (rc == 0)
    cx_err_set(err, "accepted");
  if (answer && cap)
    snprintf(answer, cap, "%s", ans);
  pthread_mutex_lock(&n->mu);
  if (rc == 0)
    n->st.sent++;
  else
    n->st.failed++;
  pthread_mutex_unlock(&n->mu);
  cx__notify_msg_free(m);
  return rc;
}

/* The checks shared by the synchronous sends: channel on, message built. */
static int sync_msg(int type, const struct cx__notify_msg *m, int rc, char *err)
{
  if (m != NULL)
    return 0;
  if (rc == CX_EPARSE)
    cx_err_set(err, "no valid %s among the recipients", type_name(type));
  return rc;
}

int cx_notify_send_run(struct cx_notify *n, int type, const char *const *to,
                       size_t n_to, const struct cx_notify_run *run,
                       char *answer, size_t cap, char *err)
{
  int rc = 0;
  if (answer && cap)
    answer[0] = '\0';
  if (n == NULL || run == NULL || run->job_name == NULL)
    return CX_EPARSE;
  if (!channel_on(n, type, err))
    return CX_EPARSE;
  struct cx__notify_msg *m = cx__notify_msg_run(n, type, to, n_to, run, &rc);
  if ((rc = sync_msg(type, m, rc, err)) != 0)
    return rc;
  return send_now(n, m, answer, cap, err);
}

int cx_notify_send_node(struct cx_notify *n, int type, const char *const *to,
                        size_t n_to, const struct cx_notify_node *node,
                        char *answer, size_t cap, char *err)
{
  int rc = 0;
  if (answer && cap)
    answer[0] = '\0';
  if (n == NULL || node == NULL ||
      (node->node_uuid == NULL && node->hostname == NULL))
    return CX_EPARSE;
  if (!channel_on(n, type, err))
    return CX_EPARSE;
  struct cx__notify_msg *m = cx__notify_msg_node(n, type, to, n_to, node, &rc);
  if ((rc = sync_msg(type, m, rc, err)) != 0)
    return rc;
  return send_now(n, m, answer, cap, err);
}

int cx_notify_send_digest(struct cx_notify *n, int type, const char *const *to,
                          size_t n_to, size_t count, size_t distinct,
                          const char *list, char *answer, size_t cap, char *err)
{
  int rc = 0;
  char subject[128];
  if (answer && cap)
    answer[0] = '\0';
  if (n == NULL || list == NULL)
    return CX_EPARSE;
  if (!channel_on(n, type, err))
    return CX_EPARSE;
  struct cx__notify_msg *m = msg_new(type, CX__NOTIFY_DIGEST, to, n_to, &rc);
  if ((rc = sync_msg(type, m, rc, err)) != 0)
    return rc;
  m->zh = n->zh;
  if (n->zh)
    snprintf(subject, sizeof subject, "[cronix] 一分钟内 %zu 条告警（%zu 项）",
             count, distinct);
  else
    snprintf(subject, sizeof subject,
             "[cronix] %zu alerts in a minute (%zu distinct)", count, distinct);
  m->subject = cx__notify_clean_line(subject, CX_NOTIFY_FIELD_MAX);
  m->output = cx__notify_clean_tail(list, strlen(list), CX_NOTIFY_OUTPUT_MAX,
                                    &m->output_cut);
  if (m->subject == NULL || m->output == NULL ||
      (n->public_url && (m->link = cx_strdup(n->public_url)) == NULL)) {
    cx__notify_msg_free(m);
    return -ENOMEM;
  }
  return send_now(n, m, answer, cap, err);
}

int cx_notify_channel_on(const struct cx_notify *n, int type)
{
  char err[CX_ERR_LEN];
  return n != NULL && channel_on(n, type, err);
}

int cx_notify_send_test(struct cx_notify *n, int type, const char *const *to,
                        size_t n_to, char *answer, size_t cap, char *err)
{
  int rc = 0;
  if (answer && cap)
    answer[0] = '\0';
  if (n == NULL)
    return CX_EPARSE;
  if (!channel_on(n, type, err))
    return CX_EPARSE;
  struct cx__notify_msg *m = msg_test(n, type, to, n_to, &rc);
  if ((rc = sync_msg(type, m, rc, err)) != 0)
    return rc;
  return send_now(n, m, answer, cap, err);
}

void cx_notify_stats_get(struct cx_notify *n, struct cx_notify_stats *out)
{
  pthread_mutex_lock(&n->mu);
  *out = n->st;
  out->pending = n->len;
  pthread_mutex_unlock(&n->mu);
}

int cx_notify_create(const struct cx_notify_conf *conf, struct cx_notify **out,
                     char *err)
{
  struct cx_notify *n;
  int rc, mu = 0, cv = 0, rl = 0;

  *out = NULL;
  if (conf == NULL) {
    cx_err_set(err, "notify: no configuration");
    return CX_EPARSE;
  }
  pthread_once(&curl_once, curl_init);
  if (curl_rc != CURLE_OK) {
    cx_err_set(err, "notify: curl_global_init failed");
    return CX_EUNAVAIL;
  }
  n = cx_calloc(1, sizeof *n);
  if (n == NULL)
    return -ENOMEM;
  atomic_init(&n->abort, 0);
  if ((rc = conf_load(n, conf, err)) != 0)
    goto err;
  if ((rc = -pthread_mutex_init(&n->mu, NULL)) != 0)
    goto err;
  mu = 1;
  if ((rc = -pthread_mutex_init(&n->rl_mu, NULL)) != 0)
    goto err;
  cx__bot_init(n);
  rl = 1;
  if ((rc = cx_cond_init_mono(&n->cv)) != 0)
    goto err;
  cv = 1;
  for (int i = 0; i < n->workers; i++) {
    if ((rc = -pthread_create(&n->threads[i], NULL, worker, n)) != 0) {
      cx_err_set(err, "notify: cannot start a worker: %s", cx_strerror(rc));
      goto err;
    }
    n->n_threads++;
  }
  *out = n;
  return 0;
err:
  if (n->n_threads > 0) {
    pthread_mutex_lock(&n->mu);
    n->stopping = 1;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    for (int i = 0; i < n->n_threads; i++)
      pthread_join(n->threads[i], NULL);
  }
  if (cv)
    pthread_cond_destroy(&n->cv);
  if (rl) {
    cx__bot_fini(n);
    pthread_mutex_destroy(&n->rl_mu);
  }
  if (mu)
    pthread_mutex_destroy(&n->mu);
  conf_free(n);
  cx_free(n);
  return rc;
}

void cx_notify_destroy(struct cx_notify *n, int drain_ms)
{
  cx_mono deadline;
  size_t left = 0;

  if (n == NULL)
    return;
  deadline = cx_mono_now() + (cx_mono)(drain_ms > 0 ? drain_ms : 0) * 1000;
  pthread_mutex_lock(&n->mu);
  n->stopping = 1;
  pthread_cond_broadcast(&n->cv);
  while (n->head != NULL && cx_mono_now() < deadline)
    cx_cond_wait_until(&n->cv, &n->mu, deadline);
  atomic_store(&n->abort, 1);
  pthread_cond_broadcast(&n->cv);
  pthread_mutex_unlock(&n->mu);
  for (int i = 0; i < n->n_threads; i++)
    pthread_join(n->threads[i], NULL);
  while (n->head != NULL) {
    struct cx__notify_msg *m = n->head;
    q_unlink(n, m);
    cx__notify_msg_free(m);
    left++;
  }
  if (left > 0) {
    n->st.dropped += left;
    CX_LOG(CX_LOG_ERROR, LOGC,
           "shutdown: %zu unsent notification(s) "
           "dropped after %d ms",
           left, drain_ms);
  }
  pthread_cond_destroy(&n->cv);
  cx__bot_fini(n);
  pthread_mutex_destroy(&n->rl_mu);
  pthread_mutex_destroy(&n->mu);
  conf_free(n);
  cx_free(n);
}
