/*
 * store: the alert outbox (cronix_notify_log, the runs' notify_pending
 * flag) and named settings (cronix_setting). See store.h and migrate.c
 * version 9. Kept apart from store.c: its statements take the ids from
 * CX__STMT_ALERT up, and it needs only the vtable.
 *
 * Retry policy (as store.c's header): reads, unflag, claim, update and
 * setting put are safe to repeat; alert add is retried too, since a
 * repeat of our own insert shows as CX_EEXISTS, which the caller reads
 * as "already taken in" -- exactly what happened.
 */
#include "store/store-int.h"

#include <errno.h>
#include <string.h>

enum {
  A_FLAGGED = CX__STMT_ALERT,
  A_UNFLAG,
  A_ADD,
  A_DUE,
  A_CLAIM,
  A_UPDATE,
  A_SEARCH,
  A_SEARCH_EV,
  A_COUNT,
  A_COUNT_EV,
  A_SET_GET,
  A_SET_PUT,
  A_SET_ADD,
  A_PREV,
  A_OVERDUE,
  A_LAST,
  A_END
};
_Static_assert(A_END <= CX__STMT_MAX - CX__STMT_RESERVED, "raise CX__STMT_MAX");

#define R CX__Q_RETRY
#define A_COLS                                                                 \
  "id, ukey, event, run_id, job_id, node_uuid, detail, channel, recipients,"   \
  " state, attempts, answer, created, next_at, done_at"
/* A claim that outlived its sender (the leader died while sending) is due
 * again once next_at, its expiry, passes. */
#define A_IS_DUE "state IN ('pending', 'sending') AND next_at <= ?"

static const struct cx__stmt q_flagged = {
    A_FLAGGED,
    {"SELECT id, job_id, status, start_time FROM cronix_job_log WHERE"
     " notify_pending = 1 ORDER BY id LIMIT ?",
     NULL},
    R};
static const struct cx__stmt q_unflag = {
    A_UNFLAG,
    {"UPDATE cronix_job_log SET notify_pending = 0 WHERE id = ? AND"
     " status = ?",
     NULL},
    R};
static const struct cx__stmt q_add = {
    A_ADD,
    {"INSERT INTO cronix_notify_log (ukey, event, run_id, job_id, node_uuid,"
     " detail, channel, recipients, state, attempts, answer, created,"
     " next_at, done_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
     NULL},
    R};
static const struct cx__stmt q_due = {A_DUE,
                                      {"SELECT " A_COLS
                                       " FROM cronix_notify_log WHERE " A_IS_DUE
                                       " ORDER BY id LIMIT ?",
                                       NULL},
                                      R};
static const struct cx__stmt q_claim = {
    A_CLAIM,
    {"UPDATE cronix_notify_log SET state = 'sending', next_at = ? WHERE"
     " id = ? AND " A_IS_DUE,
     NULL},
    R};
static const struct cx__stmt q_update = {
    A_UPDATE,
    {"UPDATE cronix_notify_log SET state = ?, attempts = ?, answer = ?,"
     " recipients = ?, channel = ?, next_at = ?, done_at = ? WHERE id = ?",
     NULL},
    R};
static const struct cx__stmt q_search = {
    A_SEARCH,
    {"SELECT " A_COLS " FROM cronix_notify_log ORDER BY id DESC"
     " LIMIT ? OFFSET ?",
     NULL},
    R};
static const struct cx__stmt q_search_ev = {
    A_SEARCH_EV,
    {"SELECT " A_COLS " FROM cronix_notify_log WHERE event = ? ORDER BY id"
     " DESC LIMIT ? OFFSET ?",
     NULL},
    R};
static const struct cx__stmt q_count = {
    A_COUNT, {"SELECT COUNT(*) FROM cronix_notify_log", NULL}, R};
static const struct cx__stmt q_count_ev = {
    A_COUNT_EV,
    {"SELECT COUNT(*) FROM cronix_notify_log WHERE event = ?", NULL},
    R};
static const struct cx__stmt q_set_get = {
    A_SET_GET, {"SELECT value FROM cronix_setting WHERE name = ?", NULL}, R};
static const struct cx__stmt q_set_put = {
    A_SET_PUT,
    {"INSERT INTO cronix_setting (name, value, updated) VALUES (?,?,?)"
     " ON CONFLICT(name) DO UPDATE SET value = excluded.value,"
     " updated = excluded.updated",
     "INSERT INTO cronix_setting (name, value, updated) VALUES (?,?,?)"
     " ON DUPLICATE KEY UPDATE value = VALUES(value),"
     " updated = VALUES(updated)"},
    R};
/* The run before a given one (earlier start, or the same start and a
 * lower id), on the (job_id, start_time) index. */
static const struct cx__stmt q_prev = {
    A_PREV,
    {"SELECT status FROM cronix_job_log WHERE job_id = ? AND start_time <= ?"
     " AND (start_time < ? OR id < ?) AND status NOT IN ('running',"
     " 'skipped') ORDER BY start_time DESC, id DESC LIMIT 1",
     NULL},
    R};
/* Runs still going past their job's max_duration (few rows are running:
 * the status index finds them). */
static const struct cx__stmt q_overdue = {
    A_OVERDUE,
    {"SELECT l.id, l.job_id, l.status, l.start_time FROM cronix_job_log l"
     " JOIN cronix_job j ON j.id = l.job_id WHERE l.status = 'running' AND"
     " j.notify_status = 1 AND j.max_duration > 0 AND"
     " l.start_time < ? - j.max_duration * 1000 ORDER BY l.id LIMIT ?",
     NULL},
    R};
/* The newest alert whose ukey lies in [?, ?): a prefix's range, on the
 * ukey's unique index (both back-ends), so no scan of the log. */
static const struct cx__stmt q_last = {
    A_LAST,
    {"SELECT " A_COLS " FROM cronix_notify_log WHERE ukey >= ? AND ukey < ?"
     " ORDER BY id DESC LIMIT 1",
     NULL},
    R};
static const struct cx__stmt q_set_add = {
    A_SET_ADD,
    {"INSERT INTO cronix_setting (name, value, updated) VALUES (?,?,?)", NULL},
    R};

/* ---- values ------------------------------------------------------------ */

static struct cx__val num(int64_t i)
{
  struct cx__val v = {.type = CX__V_INT, .i = i};
  return v;
}

/* Text; NULL binds as "". */
static struct cx__val txt(const char *s)
{
  struct cx__val v = {.type = CX__V_TEXT, .s = s ? s : ""};
  v.len = strlen(v.s);
  return v;
}

/* Text that came from outside (a server's answer): stored as valid UTF-8
 * of at most max bytes, so neither back-end refuses the row. */
static int clean(const char *s, size_t max, char **out)
{
  size_t len = s ? strnlen(s, max) : 0, outlen;
  return cx__utf8_sanitize(s ? s : "", len, out, &outlen);
}

/* ---- alerts ------------------------------------------------------------ */

void cx_alert_clear(struct cx_alert *a)
{
  if (a == NULL)
    return;
  char **f[] = {&a->ukey,       &a->event, &a->node_uuid, &a->detail,
                &a->recipients, &a->state, &a->answer};
  for (size_t i = 0; i < CX_ARRAY_LEN(f); i++)
    cx_free(*f[i]);
  memset(a, 0, sizeof *a);
}

void cx_alert_list_free(struct cx_alert_list *l)
{
  if (l == NULL)
    return;
  for (size_t i = 0; i < l->n; i++)
    cx_alert_clear(&l->items[i]);
  cx_free(l->items);
  memset(l, 0, sizeof *l);
}

static int alert_row(void *ctx, const struct cx__val *c, int n)
{
  struct cx_alert_list *l = ctx;
  int oom = 0;
  if (n < 15)
    return -EIO;
  if ((l->n & (l->n + 1)) == 0 || l->n == 0) { /* grow at 0, 1, 3, 7, ... */
    struct cx_alert *p = cx_realloc(l->items, (l->n * 2 + 2) * sizeof *p);
    if (p == NULL)
      return -ENOMEM;
    l->items = p;
  }
  struct cx_alert *a = &l->items[l->n];
  memset(a, 0, sizeof *a);
  a->id = cx__col_int(&c[0]);
  a->ukey = cx__col_str(&c[1], &oom);
  a->event = cx__col_str(&c[2], &oom);
  a->run_id = cx__col_int(&c[3]);
  a->job_id = cx__col_int(&c[4]);
  a->node_uuid = cx__col_str(&c[5], &oom);
  a->detail = cx__col_str(&c[6], &oom);
  a->channel = (int)cx__col_int(&c[7]);
  a->recipients = cx__col_str(&c[8], &oom);
  a->state = cx__col_str(&c[9], &oom);
  a->attempts = (int)cx__col_int(&c[10]);
  a->answer = cx__col_str(&c[11], &oom);
  a->created = cx__col_int(&c[12]);
  a->next_at = cx__col_int(&c[13]);
  a->done_at = cx__col_int(&c[14]);
  if (oom) {
    cx_alert_clear(a);
    return -ENOMEM;
  }
  l->n++;
  return 0;
}

static int list(struct cx_store *s, const struct cx__stmt *q,
                const struct cx__val *p, int np, struct cx_alert_list *out,
                char *err)
{
  memset(out, 0, sizeof *out);
  int rc = s->ops->exec(s, q, p, np, alert_row, out, NULL, err);
  if (rc != 0)
    cx_alert_list_free(out);
  return rc;
}

struct flags {
  struct cx_alert_flag *v;
  size_t n, max;
};

static int flag_row(void *ctx, const struct cx__val *c, int n)
{
  struct flags *f = ctx;
  if (n < 4)
    return -EIO;
  if (f->n == f->max)
    return 0;
  struct cx_alert_flag *x = &f->v[f->n++];
  x->run_id = cx__col_int(&c[0]);
  x->job_id = cx__col_int(&c[1]);
  x->start_time = cx__col_int(&c[3]);
  size_t len = c[2].type == CX__V_TEXT ? c[2].len : 0;
  if (len >= sizeof x->status)
    len = sizeof x->status - 1;
  memcpy(x->status, len ? c[2].s : "", len);
  x->status[len] = '\0';
  return 0;
}

int cx_store_alert_flagged(struct cx_store *s, struct cx_alert_flag *out,
                           size_t max, size_t *n, char *err)
{
  struct flags f = {out, 0, max};
  struct cx__val p = num((int64_t)max);
  *n = 0;
  int rc = s->ops->exec(s, &q_flagged, &p, 1, flag_row, &f, NULL, err);
  if (rc == 0)
    *n = f.n;
  return rc;
}

static int status_row(void *ctx, const struct cx__val *c, int n)
{
  char *out = ctx;
  size_t len = n >= 1 && c[0].type == CX__V_TEXT ? c[0].len : 0;
  if (len > 16)
    len = 16;
  memcpy(out, len ? c[0].s : "", len);
  out[len] = '\0';
  return 0;
}

int cx_store_alert_prev_status(struct cx_store *s,
                               const struct cx_alert_flag *f, char status[17],
                               char *err)
{
  struct cx__val p[] = {num(f->job_id), num(f->start_time), num(f->start_time),
                        num(f->run_id)};
  status[0] = '\0';
  return s->ops->exec(s, &q_prev, p, 4, status_row, status, NULL, err);
}

int cx_store_alert_overdue(struct cx_store *s, int64_t now_ms,
                           struct cx_alert_flag *out, size_t max, size_t *n,
                           char *err)
{
  struct flags f = {out, 0, max};
  struct cx__val p[] = {num(now_ms), num((int64_t)max)};
  *n = 0;
  int rc = s->ops->exec(s, &q_overdue, p, 2, flag_row, &f, NULL, err);
  if (rc == 0)
    *n = f.n;
  return rc;
}

int cx_store_alert_unflag(struct cx_store *s, const struct cx_alert_flag *f,
                          char *err)
{
  struct cx__val p[] = {num(f->run_id), txt(f->status)};
  return s->ops->exec(s, &q_unflag, p, 2, NULL, NULL, NULL, err);
}

int cx_store_alert_add(struct cx_store *s, struct cx_alert *a, char *err)
{
  char *detail = NULL, *answer = NULL;
  struct cx__exec_result res = {0};
  if (a->ukey == NULL || a->ukey[0] == '\0' || strlen(a->ukey) > 191 ||
      a->event == NULL || strlen(a->event) > 16) {
    cx_err_set(err, "alert: ukey (1..191 bytes) and event (<= 16) required");
    return CX_EPARSE;
  }
  int rc = clean(a->detail, CX_STORE_TEXT_MAX, &detail);
  if (rc == 0)
    rc = clean(a->answer, 4096, &answer);
  if (rc != 0)
    goto out;
  if (a->created == 0)
    a->created = cx_wall_ms();
  struct cx__val p[] = {txt(a->ukey),
                        txt(a->event),
                        num(a->run_id),
                        num(a->job_id),
                        txt(a->node_uuid),
                        txt(detail),
                        num(a->channel),
                        txt(a->recipients ? a->recipients : "[]"),
                        txt(a->state ? a->state : "pending"),
                        num(a->attempts),
                        txt(answer),
                        num(a->created),
                        num(a->next_at),
                        num(a->done_at)};
  rc = s->ops->exec(s, &q_add, p, (int)CX_ARRAY_LEN(p), NULL, NULL, &res, err);
  if (rc == 0)
    a->id = res.insert_id;
out:
  cx_free(detail);
  cx_free(answer);
  return rc;
}

int cx_store_alert_due(struct cx_store *s, int64_t now_ms, int max,
                       struct cx_alert_list *out, char *err)
{
  struct cx__val p[] = {num(now_ms), num(max > 0 ? max : 1)};
  return list(s, &q_due, p, 2, out, err);
}

int cx_store_alert_claim(struct cx_store *s, int64_t id, int64_t now_ms,
                         int64_t until_ms, int *got, char *err)
{
  struct cx__val p[] = {num(until_ms), num(id), num(now_ms)};
  struct cx__exec_result res = {0};
  *got = 0;
  int rc = s->ops->exec(s, &q_claim, p, 3, NULL, NULL, &res, err);
  if (rc == 0)
    *got = res.affected == 1;
  return rc;
}

int cx_store_alert_update(struct cx_store *s, const struct cx_alert *a,
                          char *err)
{
  char *answer = NULL, *rcpt = NULL;
  struct cx__exec_result res = {0};
  int rc = clean(a->answer, 4096, &answer);
  if (rc == 0)
    rc = clean(a->recipients ? a->recipients : "[]", CX_STORE_TEXT_MAX, &rcpt);
  if (rc == 0) {
    struct cx__val p[] = {txt(a->state),   num(a->attempts), txt(answer),
                          txt(rcpt),       num(a->channel),  num(a->next_at),
                          num(a->done_at), num(a->id)};
    rc = s->ops->exec(s, &q_update, p, (int)CX_ARRAY_LEN(p), NULL, NULL, &res,
                      err);
  }
  cx_free(answer);
  cx_free(rcpt);
  if (rc == 0 && res.affected == 0) {
    cx_err_set(err, "alert %lld: not found", (long long)a->id);
    rc = CX_ENOTFOUND;
  }
  return rc;
}

int cx_store_alert_last(struct cx_store *s, const char *prefix,
                        struct cx_alert *out, char *err)
{
  char hi[200];
  size_t n = prefix ? strlen(prefix) : 0;
  struct cx_alert_list l = {0};
  memset(out, 0, sizeof *out);
  if (n == 0 || n >= sizeof hi || (unsigned char)prefix[n - 1] == 0x7f) {
    cx_err_set(err, "alert: prefix of 1..%zu bytes required", sizeof hi - 1);
    return CX_EPARSE;
  }
  memcpy(hi, prefix, n + 1); /* the first string past every prefix match */
  hi[n - 1]++;
  struct cx__val p[] = {txt(prefix), txt(hi)};
  int rc = list(s, &q_last, p, 2, &l, err);
  if (rc == 0 && l.n == 0) {
    cx_err_set(err, "no alert with ukey %s...", prefix);
    rc = CX_ENOTFOUND;
  } else if (rc == 0) {
    *out = l.items[0];
    l.n = 0;
  }
  cx_alert_list_free(&l);
  return rc;
}

static int count_row(void *ctx, const struct cx__val *c, int n)
{
  if (n < 1)
    return -EIO;
  *(int64_t *)ctx = cx__col_int(&c[0]);
  return 0;
}

int cx_store_alert_search(struct cx_store *s, const char *event, int page,
                          int page_size, struct cx_alert_list *out, char *err)
{
  int64_t total = 0;
  if (page < 1)
    page = 1;
  if (page_size <= 0)
    page_size = CX_STORE_PAGE_DEFAULT;
  if (page_size > CX_STORE_PAGE_MAX)
    page_size = CX_STORE_PAGE_MAX;
  struct cx__val p[] = {txt(event), num(page_size),
                        num((int64_t)(page - 1) * page_size)};
  int ev = event != NULL, rc;
  rc = s->ops->exec(s, ev ? &q_count_ev : &q_count, p, ev, count_row, &total,
                    NULL, err);
  if (rc == 0)
    rc = list(s, ev ? &q_search_ev : &q_search, p + !ev, 2 + ev, out, err);
  if (rc == 0)
    out->total = total;
  return rc;
}

/* ---- settings ---------------------------------------------------------- */

static int setting_check(const char *name, const char *value, char *err)
{
  if (name == NULL || name[0] == '\0' || strlen(name) > 64) {
    cx_err_set(err, "setting name: 1..64 bytes");
    return CX_EPARSE;
  }
  if (value != NULL && (strlen(value) > CX_STORE_TEXT_MAX ||
                        !cx_utf8_valid(value, strlen(value)))) {
    cx_err_set(err, "setting %s: not UTF-8 text within %d bytes", name,
               CX_STORE_TEXT_MAX);
    return CX_ETOOBIG;
  }
  return 0;
}

static int value_row(void *ctx, const struct cx__val *c, int n)
{
  int oom = 0;
  if (n < 1)
    return -EIO;
  cx_free(*(char **)ctx);
  *(char **)ctx = cx__col_str(&c[0], &oom);
  return oom ? -ENOMEM : 0;
}

int cx_store_setting_get(struct cx_store *s, const char *name, char **value,
                         char *err)
{
  *value = NULL;
  int rc = setting_check(name, NULL, err);
  struct cx__val p = txt(name);
  if (rc == 0)
    rc = s->ops->exec(s, &q_set_get, &p, 1, value_row, value, NULL, err);
  if (rc != 0) {
    cx_free(*value);
    *value = NULL;
  } else if (*value == NULL) {
    cx_err_set(err, "setting %s: not found", name);
    rc = CX_ENOTFOUND;
  }
  return rc;
}

static int setting_write(struct cx_store *s, const struct cx__stmt *q,
                         const char *name, const char *value, char *err)
{
  int rc = setting_check(name, value ? value : "", err);
  if (rc != 0)
    return rc;
  struct cx__val p[] = {txt(name), txt(value), num(cx_wall_ms())};
  return s->ops->exec(s, q, p, 3, NULL, NULL, NULL, err);
}

int cx_store_setting_put(struct cx_store *s, const char *name,
                         const char *value, char *err)
{
  return setting_write(s, &q_set_put, name, value, err);
}

int cx_store_setting_add(struct cx_store *s, const char *name,
                         const char *value, char *err)
{
  return setting_write(s, &q_set_add, name, value, err);
}
