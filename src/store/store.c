/*
 * store: opening (back-end dispatch from the URL scheme), the shared
 * validation, and every operation of store.h written once as prepared SQL
 * over the back-end vtable (store-int.h).
 *
 * SQL is made only of constant text: filters that may be absent pick one of
 * a fixed set of statement variants (a bit per filter), never pasted input.
 *
 * Retry policy (CX__Q_RETRY, used by the MySQL back-end after a lost
 * connection): reads; run claims (the claim_token makes a re-sent claim
 * recognisable: a duplicate on our own token is our first insert); run
 * finish, node upsert/status, user update, pause/resume, move (a repeat
 * sets the same values); deletes and purges (a repeat deletes nothing
 * more — a retried delete may then report CX_ENOTFOUND for a row it did
 * delete). Not retried, reported as CX_EUNAVAIL "may have applied": job
 * and user create, job update (the optimistic check would fail on its own
 * first write), token create.
 */
#include "store/store-int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- opening ----------------------------------------------------------- */

int cx__store_open_at(const char *url, int target, struct cx_store **out,
                      char *err)
{
  struct cx__url u;
  struct cx_store *s = NULL;
  int version = 0;
  int rc;
  *out = NULL;
  rc = cx__url_parse(url, &u, err);
  if (rc != 0)
    return rc;
  s = cx_calloc(1, sizeof *s);
  if (s == NULL) {
    rc = -ENOMEM;
    goto err;
  }
  s->ops =
      u.scheme == CX__SQLITE ? &cx__store_sqlite_ops : &cx__store_mysql_ops;
  cx_store_url_redact(url, s->url, sizeof s->url);
  rc = s->ops->open(s, &u, err);
  if (rc != 0)
    goto err;
  rc = s->ops->migrate(s, cx__migrations, cx__migrations_n, target, &version,
                       err);
  if (rc != 0)
    goto err;
  CX_LOG(CX_LOG_DEBUG, "store", "opened %s (schema version %d)", s->url,
         version);
  cx__url_free(&u);
  *out = s;
  return 0;
err:
  if (s != NULL && s->be != NULL)
    s->ops->close(s);
  cx_free(s);
  cx__url_free(&u);
  return rc;
}

int cx_store_open(const char *url, struct cx_store **out, char *err)
{
  return cx__store_open_at(url, cx__migrations[cx__migrations_n - 1].version,
                           out, err);
}

void cx_store_close(struct cx_store *s)
{
  if (s == NULL)
    return;
  cx__batch_stop(s);
  if (s->be != NULL)
    s->ops->close(s);
  cx_free(s);
}

const char *cx_store_backend(const struct cx_store *s)
{
  return s->ops->name;
}

const char *cx_store_url(const struct cx_store *s)
{
  return s->url;
}

int cx_store_ping(struct cx_store *s, char *err)
{
  return s->ops->ping(s, err);
}

/* The store this thread has a transaction open on (cx__store_in_tx). */
static __thread const struct cx_store *tx_here;

int cx_store_tx_begin(struct cx_store *s, char *err)
{
  int rc = s->ops->tx(s, CX__TX_BEGIN, err);
  if (rc == 0)
    tx_here = s;
  return rc;
}

int cx_store_tx_end(struct cx_store *s, int commit, char *err)
{
  int rc = 0;
  if (!commit)
    s->ops->tx(s, CX__TX_ROLLBACK, NULL);
  else
    rc = s->ops->tx(s, CX__TX_COMMIT, err);
  if (tx_here == s)
    tx_here = NULL;
  return rc;
}

int cx__store_in_tx(const struct cx_store *s)
{
  return tx_here == s;
}

/* ---- values, rows and lists -------------------------------------------- */

static struct cx__val vint(int64_t i)
{
  struct cx__val v = {CX__V_INT, i, NULL, 0};
  return v;
}

/* Text, or def when s is NULL. */
static struct cx__val vstr(const char *s, const char *def)
{
  struct cx__val v = {CX__V_TEXT, 0, NULL, 0};
  if (s == NULL)
    s = def;
  if (s == NULL) {
    v.type = CX__V_NULL;
    return v;
  }
  v.s = s;
  v.len = strlen(s);
  return v;
}

static struct cx__val vnull(void)
{
  struct cx__val v = {CX__V_NULL, 0, NULL, 0};
  return v;
}

int64_t cx__col_int(const struct cx__val *v)
{
  if (v->type == CX__V_INT)
    return v->i;
  if (v->type == CX__V_TEXT) {
    /* DECIMAL sums and the like arrive as text. */
    char buf[32];
    size_t n = v->len < sizeof buf - 1 ? v->len : sizeof buf - 1;
    memcpy(buf, v->s, n);
    buf[n] = '\0';
    char *dot = strchr(buf, '.');
    if (dot != NULL)
      *dot = '\0';
    int64_t x = 0;
    if (cx_parse_int64(buf, INT64_MIN, INT64_MAX, &x) == 0)
      return x;
  }
  return 0;
}

/* A fetched text column as a new string ("" for NULL). Sets *oom. */
char *cx__col_str(const struct cx__val *v, int *oom)
{
  char *s = v->type == CX__V_TEXT ? cx_strndup(v->s, v->len) : cx_strdup("");
  if (s == NULL)
    *oom = 1;
  return s;
}

typedef int (*map_fn)(void *item, const struct cx__val *c, int n);

/* Collects rows into a growable array of items of `size` bytes. */
struct collect {
  char *items;
  size_t n, cap, size;
  map_fn map;
  void (*clear)(void *item);
};

static int collect_row(void *ctx, const struct cx__val *c, int n)
{
  struct collect *k = ctx;
  if (k->n == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 16;
    char *p = cx_realloc(k->items, cap * k->size);
    if (p == NULL)
      return -ENOMEM;
    k->items = p;
    k->cap = cap;
  }
  void *item = k->items + k->n * k->size;
  memset(item, 0, k->size);
  int rc = k->map(item, c, n);
  if (rc != 0) {
    k->clear(item);
    return rc;
  }
  k->n++;
  return 0;
}

/* Clears n items of `size` bytes each, then frees the array. */
static void free_items(void *items, size_t n, size_t size,
                       void (*clear)(void *item))
{
  for (size_t i = 0; i < n; i++)
    clear((char *)items + i * size);
  cx_free(items);
}

static void collect_free(struct collect *k)
{
  free_items(k->items, k->n, k->size, k->clear);
  k->items = NULL;
  k->n = 0;
}

/* What a list query collects: item size, row mapper, item destructor. */
struct kind {
  size_t size;
  map_fn map;
  void (*clear)(void *item);
};

static int exec(struct cx_store *s, const struct cx__stmt *q,
                const struct cx__val *p, int np, cx__row_fn fn, void *ctx,
                struct cx__exec_result *res, char *err);

/* Runs q collecting every row as a `kind` item into k (freed on error). */
static int list_query(struct cx_store *s, const struct kind *kd,
                      const struct cx__stmt *q, const struct cx__val *p, int np,
                      struct collect *k, char *err)
{
  k->size = kd->size;
  k->map = kd->map;
  k->clear = kd->clear;
  int rc = exec(s, q, p, np, collect_row, k, NULL, err);
  if (rc != 0)
    collect_free(k);
  return rc;
}

/* Runs q expecting at most one row, copied into out (zeroed first).
 * CX_ENOTFOUND with "<what>: not found" when there is none. */
static int find_one(struct cx_store *s, const struct kind *kd,
                    const struct cx__stmt *q, const struct cx__val *p, int np,
                    void *out, const char *what, char *err)
{
  struct collect k = {0};
  memset(out, 0, kd->size);
  int rc = list_query(s, kd, q, p, np, &k, err);
  if (rc != 0)
    return rc;
  if (k.n == 0) {
    cx_free(k.items);
    cx_err_set(err, "%s: not found", what);
    return CX_ENOTFOUND;
  }
  memcpy(out, k.items, kd->size);
  cx_free(k.items);
  return 0;
}

/* A single integer result (COUNT, MAX, ...); NULL gives *isnull = 1. */
struct one_int {
  int64_t v;
  int rows, isnull;
};

static int one_int_row(void *ctx, const struct cx__val *c, int n)
{
  struct one_int *o = ctx;
  if (n < 1)
    return -EIO;
  o->rows++;
  o->isnull = c[0].type == CX__V_NULL;
  o->v = cx__col_int(&c[0]);
  return 0;
}

static int exec(struct cx_store *s, const struct cx__stmt *q,
                const struct cx__val *p, int np, cx__row_fn fn, void *ctx,
                struct cx__exec_result *res, char *err)
{
  return s->ops->exec(s, q, p, np, fn, ctx, res, err);
}

static int query_int(struct cx_store *s, const struct cx__stmt *q,
                     const struct cx__val *p, int np, struct one_int *o,
                     char *err)
{
  memset(o, 0, sizeof *o);
  return exec(s, q, p, np, one_int_row, o, NULL, err);
}

/* Page arithmetic shared by every search. */
static void page_of(int page, int page_size, int64_t *limit, int64_t *offset)
{
  if (page < 1)
    page = 1;
  if (page_size <= 0)
    page_size = CX_STORE_PAGE_DEFAULT;
  if (page_size > CX_STORE_PAGE_MAX)
    page_size = CX_STORE_PAGE_MAX;
  *limit = page_size;
  *offset = (int64_t)(page - 1) * page_size;
}

/* "%name%" with LIKE's metacharacters escaped by '!' (ESCAPE '!'). */
static char *like_pattern(const char *name)
{
  struct cx_buf b = {0};
  cx_buf_puts(&b, "%");
  for (const char *c = name; *c; c++) {
    if (*c == '%' || *c == '_' || *c == '!')
      cx_buf_puts(&b, "!");
    cx_buf_append(&b, c, 1);
  }
  cx_buf_puts(&b, "%");
  return cx_buf_steal(&b);
}

/* ---- validation -------------------------------------------------------- */

/* Checks one text field: valid UTF-8 without NUL, at most max_chars
 * characters (0 = no limit) and CX_STORE_TEXT_MAX bytes. NULL is fine
 * unless required. */
static int check_text(const char *field, const char *v, size_t max_chars,
                      int required, char *err)
{
  if (v == NULL) {
    if (!required)
      return 0;
    cx_err_set(err, "%s: required", field);
    return CX_EPARSE;
  }
  size_t len = strlen(v);
  if (required && len == 0) {
    cx_err_set(err, "%s: must not be empty", field);
    return CX_EPARSE;
  }
  if (len > CX_STORE_TEXT_MAX) {
    cx_err_set(err, "%s: longer than %d bytes", field, CX_STORE_TEXT_MAX);
    return CX_ETOOBIG;
  }
  if (!cx_utf8_valid(v, len)) {
    cx_err_set(err, "%s: not valid UTF-8", field);
    return CX_EPARSE;
  }
  if (max_chars > 0 && cx_utf8_chars(v, len) > max_chars) {
    cx_err_set(err, "%s: longer than %zu characters", field, max_chars);
    return CX_ETOOBIG;
  }
  return 0;
}

#define CHECK(field, v, max, req)                                              \
  do {                                                                         \
    int cx__rc = check_text((field), (v), (max), (req), err);                  \
    if (cx__rc != 0)                                                           \
      return cx__rc;                                                           \
  } while (0)

/* The lengths are the job module's (one table, cx_job_check_limits): a
 * job the admin validated always fits here; this refuses only a caller
 * that skipped validation. The store adds what its columns need: UTF-8
 * text, the required fields. */
static int job_check(const struct cx_job *j, char *err)
{
  int rc = cx_job_check_limits(j, NULL, err);
  if (rc != 0)
    return rc;
  CHECK("name", j->name, 0, 1);
  CHECK("command", j->command, 0, 1);
  CHECK("spec", j->spec, 0, 1);
  CHECK("run_on", j->run_on, 0, 0);
  CHECK("notify_to_array", j->notify_to_array, 0, 0);
  CHECK("note", j->note, 0, 0);
  CHECK("timezone", j->timezone, 0, 0);
  CHECK("concurrency", j->concurrency, 0, 0);
  CHECK("misfire", j->misfire, 0, 0);
  CHECK("http_method", j->http_method, 0, 0);
  CHECK("http_headers", j->http_headers, 0, 0);
  CHECK("http_body", j->http_body, 0, 0);
  CHECK("env", j->env, 0, 0);
  CHECK("workdir", j->workdir, 0, 0);
  CHECK("run_as", j->run_as, 0, 0);
  if (j->type != CX_JOB_CMD && j->type != CX_JOB_HTTP) {
    cx_err_set(err, "type: must be 1 (cmd) or 2 (http)");
    return CX_EPARSE;
  }
  if (j->allocation < CX_ALLOC_MANUAL || j->allocation > CX_ALLOC_BROADCAST) {
    cx_err_set(err, "allocation: must be 1 (manual), 2 (auto) or 3 "
                    "(broadcast)");
    return CX_EPARSE;
  }
  return 0;
}

/* ---- statements -------------------------------------------------------- */

enum {
  Q_SCHEMA_VERSION,
  Q_JOB_INSERT,
  Q_JOB_UPDATE,
  Q_JOB_UPDATED,
  Q_JOB_ENABLE,
  Q_JOB_MOVE,
  Q_JOB_DELETE,
  Q_JOB_FIND,
  Q_JOB_LIST_ALL,
  Q_JOB_LIST_NODE,
  Q_JOB_COUNT_BY_NODE,
  Q_RUN_INSERT,
  Q_RUN_COVERED,
  Q_RUN_BY_TOKEN,
  Q_RUN_FINISH,
  Q_RUN_FIND,
  Q_RUN_PURGE,
  Q_RUN_MARK_LOST,
  Q_RUN_COUNTS,
  Q_RUN_MISSED,
  Q_RUN_LAST_FIRE,
  Q_RUN_SPANS,
  Q_ATTEMPT_PUT,
  Q_ATTEMPT_LIST,
  Q_ATTEMPT_PURGE,
  Q_NODE_UPSERT,
  Q_NODE_ID,
  Q_NODE_STATUS,
  Q_NODE_FIND,
  Q_NODE_SEARCH,
  Q_NODE_COUNT,
  Q_NODE_DELETE,
  Q_USER_INSERT,
  Q_USER_UPDATE,
  Q_USER_DELETE,
  Q_USER_TOKENS_DELETE,
  Q_USER_FIND,
  Q_USER_FIND_NAME,
  Q_USER_SEARCH,
  Q_USER_COUNT,
  Q_TOKEN_INSERT,
  Q_TOKEN_FIND,
  Q_TOKEN_DELETE,
  Q_TOKEN_DELETE_USER,
  Q_TOKEN_PURGE,
  Q_AUDIT_INSERT,
  Q_AUDIT_DELETE,
  Q_AUDIT_PURGE,
  Q_TOKEN_BY_ID,
  Q_TOKEN_DELETE_ID,
  Q_TOKEN_SEARCH,
  Q_TOKEN_COUNT,
  Q_FIXED_END,
  /* Search variants: a bit per optional filter, list then count. */
  Q_JOB_SEARCH = Q_FIXED_END,         /* 16 list + 16 count */
  Q_RUN_SEARCH = Q_JOB_SEARCH + 32,   /* 32 list + 32 count + 32 capped */
  Q_AUDIT_SEARCH = Q_RUN_SEARCH + 96, /* 4 list + 4 count */
  Q_END = Q_AUDIT_SEARCH + 8
};
_Static_assert(Q_END <= CX__STMT_ALERT, "raise CX__STMT_ALERT and _MAX");

#define R CX__Q_RETRY
#define Q1(id, sql, flags)                                                     \
  static const struct cx__stmt q_##id = {Q_##id, {sql, NULL}, flags}
#define Q2(id, lite, my, flags)                                                \
  static const struct cx__stmt q_##id = {Q_##id, {lite, my}, flags}

/* The job's settable columns, once: name, kind (S text with its default,
 * NULL = required; I int; B bool) -- every column list, the bound
 * parameters and the row reader below are made from this table, so they
 * cannot drift. The rows read are "id, created, updated" and then these. */
// clang-format off
#define JOB_FIELDS(S, I, B) \
  S(name, NULL) \
  S(command, NULL) \
  I(type) \
  S(spec, NULL) \
  I(timeout) \
  I(retry_times) \
  I(retry_interval) \
  I(allocation) \
  S(run_on, "") \
  I(notify_status) \
  I(notify_type) \
  S(notify_to_array, "[]") \
  S(note, "") \
  S(timezone, "") \
  B(enabled) \
  S(concurrency, "forbid") \
  S(misfire, "run_once") \
  I(starting_deadline) \
  S(http_method, "GET") \
  S(http_headers, "{}") \
  S(http_body, "") \
  S(env, "{}") \
  S(workdir, "") \
  S(run_as, "") \
  I(limit_memory_mb) \
  I(limit_nproc) \
  I(limit_cpu_s) \
  I(limit_nofile) \
  S(notify_events, "") \
  I(max_duration) \
  S(node_selector, "") \
  I(max_running)
// clang-format on
#define JF_COL(f, ...) ", " #f
#define JF_SET(f, ...) #f " = ?, "
#define JF_INS(f, ...) #f ", "
#define JF_Q(f, ...) "?, "
#define JF_ONE(f, ...) +1
#define JOB_COLS "id, created, updated" JOB_FIELDS(JF_COL, JF_COL, JF_COL)
#define JOB_SET JOB_FIELDS(JF_SET, JF_SET, JF_SET)
enum { JOB_NFIELDS = 0 JOB_FIELDS(JF_ONE, JF_ONE, JF_ONE) };
#define BUMP "updated = CASE WHEN updated < ? THEN ? ELSE updated + 1 END"
#define RUN_COLS                                                               \
  "id, job_id, name, node_uuid, hostname, ip, command, spec, `trigger`,"       \
  " scheduled_at, start_time, end_time, success, status, exit_code,"           \
  " attempts, output, claim_token, missed_count, missed_last, claim_node"
#define NODE_COLS "id, uuid, hostname, ip, pid, version, status, up, down"
#define USER_COLS                                                              \
  "id, username, password_hash, email, feishu_id, role, created, updated,"     \
  " mobile, dingtalk_id, wecom_id, slack_id"

Q1(SCHEMA_VERSION, "SELECT MAX(version) FROM cronix_schema", R);
Q1(JOB_INSERT,
   "INSERT INTO cronix_job (" JOB_FIELDS(
       JF_INS, JF_INS,
       JF_INS) "created, updated) VALUES (" JOB_FIELDS(JF_Q, JF_Q,
                                                       JF_Q) "?, ?)",
   0);
Q1(JOB_UPDATE,
   "UPDATE cronix_job SET " JOB_SET "updated = ? WHERE id = ? AND"
   " updated = ?",
   0);
Q1(JOB_UPDATED, "SELECT updated, run_on FROM cronix_job WHERE id = ?", R);
Q1(JOB_ENABLE, "UPDATE cronix_job SET enabled = ?, " BUMP " WHERE id = ?", R);
Q1(JOB_MOVE,
   "UPDATE cronix_job SET run_on = ?, " BUMP " WHERE id = ? AND run_on = ?", R);
Q1(JOB_DELETE, "DELETE FROM cronix_job WHERE id = ?", R);
Q1(JOB_FIND, "SELECT " JOB_COLS " FROM cronix_job WHERE id = ?", R);
Q1(JOB_LIST_ALL,
   "SELECT " JOB_COLS " FROM cronix_job WHERE (? = 0 OR allocation = ?)"
   " ORDER BY id",
   R);
Q1(JOB_LIST_NODE,
   "SELECT " JOB_COLS " FROM cronix_job WHERE run_on = ? AND"
   " (? = 0 OR allocation = ?) ORDER BY id",
   R);
Q1(JOB_COUNT_BY_NODE,
   "SELECT run_on, COUNT(*) FROM cronix_job GROUP BY run_on ORDER BY run_on",
   R);
Q1(RUN_INSERT,
   "INSERT INTO cronix_job_log (job_id, name, node_uuid, hostname, ip,"
   " command, spec, `trigger`, scheduled_at, start_time, end_time, success,"
   " status, exit_code, attempts, output, claim_token, claim_node)"
   " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
   R);
/* A claim goes in only when no missed range already accounts for its fire:
 * the row before it (of the same claim_node) must not reach it. Whoever
 * wrote the range (the leader for a dead node, a node that took the job
 * over) said that fire will not run, so a late claim of it -- a node that
 * was stopped, not dead, catching up -- is refused like a duplicate. A
 * plain read before the insert, in the claim's transaction: on SQLite the
 * single writer makes the two one step; on InnoDB it is a consistent read
 * that takes no lock (an INSERT ... SELECT took shared next-key locks, and
 * claims of several nodes' group commits then deadlocked). What InnoDB
 * leaves is a range committed between the read and the insert, which
 * range writers avoid by design: they cover only fires nobody may still
 * claim. */
Q1(RUN_COVERED,
   "SELECT missed_last FROM cronix_job_log WHERE job_id = ? AND claim_node = ?"
   " AND scheduled_at < ? ORDER BY scheduled_at DESC LIMIT 1",
   R);
Q1(RUN_BY_TOKEN, "SELECT id FROM cronix_job_log WHERE claim_token = ?", R);
/* notify_pending: the alert outbox flag, set in the run's final write (see
 * migrate.c version 9) for every final status of a job that alerts; the
 * leader decides which are events (a success only after a failure). The
 * status is bound twice because MySQL's SET sees columns already assigned
 * while SQLite's sees the old row. */
#define NOTIFY_JOB                                                             \
  "EXISTS (SELECT 1 FROM cronix_job j WHERE j.id = cronix_job_log.job_id"      \
  " AND j.notify_status = 1)"
/* NOTIFY_JOB reads the job row: on MariaDB without a shared lock only
 * because explicit transactions run at READ COMMITTED (store_mysql.c). */
Q1(RUN_FINISH,
   "UPDATE cronix_job_log SET status = ?, success = ?, exit_code = ?,"
   " end_time = ?, attempts = ?, output = ?, start_time = CASE WHEN ? > 0"
   " THEN ? ELSE start_time END, notify_pending = CASE WHEN ?"
   " IN ('failed', 'timeout', 'killed', 'lost', 'missed', 'success') "
   "AND " NOTIFY_JOB " THEN 1 ELSE 0 END WHERE id = ?",
   R);
Q1(RUN_FIND, "SELECT " RUN_COLS " FROM cronix_job_log WHERE id = ?", R);
/* MariaDB waits at most 2 s for a row lock, as RUN_MARK_LOST: the leader
 * purges on the thread that fails nodes over, and a node stopped inside
 * its group commit holds run rows that a scan of a small table meets (the
 * purge is retried at its next round). */
Q2(RUN_PURGE,
   "DELETE FROM cronix_job_log WHERE id IN (SELECT id FROM cronix_job_log"
   " WHERE start_time < ? ORDER BY start_time LIMIT ?)",
   "SET STATEMENT innodb_lock_wait_timeout = 2 FOR DELETE FROM"
   " cronix_job_log WHERE start_time < ? ORDER BY start_time LIMIT ?",
   R);
/* A missed range [first, last] goes in only when no row of the job lies in
 * it and the row before it does not reach into it: one statement, so
 * SQLite's single writer and InnoDB's locks on the range it reads make the
 * check and the insert one step (two writers of overlapping ranges cannot
 * both succeed). The row is final from the start, so the same statement
 * flags it for the alert outbox when its job alerts (notify_pending, as
 * RUN_FINISH does): a missed range is never recorded without its alert. */
#define MISSED_COLS                                                            \
  "INSERT INTO cronix_job_log (job_id, name, node_uuid, hostname, ip,"         \
  " command, spec, `trigger`, scheduled_at, start_time, end_time, success,"    \
  " status, exit_code, attempts, output, claim_token, missed_count,"           \
  " missed_last, claim_node, notify_pending) SELECT ?,?,?,?,?,?,?,?,?,?,?,0,"  \
  "'missed',0,0,?,?,?,?,?,(SELECT COUNT(*) FROM cronix_job j WHERE j.id = ?"   \
  " AND j.notify_status = 1)"
#define MISSED_FREE                                                            \
  " WHERE NOT EXISTS (SELECT 1 FROM cronix_job_log WHERE job_id = ? AND"       \
  " claim_node = ? AND scheduled_at >= ? AND scheduled_at <= ?) AND NOT"       \
  " EXISTS (SELECT 1 FROM (SELECT missed_last FROM cronix_job_log WHERE"       \
  " job_id = ? AND claim_node = ? AND scheduled_at < ? ORDER BY scheduled_at"  \
  " DESC LIMIT 1) p WHERE p.missed_last >= ?)"
Q2(RUN_MISSED, MISSED_COLS MISSED_FREE, MISSED_COLS " FROM DUAL" MISSED_FREE,
   R);
Q1(RUN_LAST_FIRE,
   "SELECT scheduled_at, missed_last FROM cronix_job_log WHERE job_id = ? AND"
   " claim_node = ? AND scheduled_at <= ? ORDER BY scheduled_at DESC LIMIT 1",
   R);
Q1(RUN_SPANS,
   "SELECT scheduled_at, missed_last FROM cronix_job_log WHERE job_id = ? AND"
   " claim_node = ? AND scheduled_at >= ? AND scheduled_at <= ? ORDER BY"
   " scheduled_at LIMIT ?",
   R);
/* MariaDB waits at most 2 s for a row lock: the rows are the dead node's,
 * and a node stopped inside its group commit holds them until it resumes
 * (the caller retries; the default 50 s would stall the leader). */
#define MARK_LOST                                                              \
  "UPDATE cronix_job_log SET status = 'lost', success = 0, end_time = ?,"      \
  " output = ?, notify_pending = CASE WHEN " NOTIFY_JOB " THEN 1 ELSE 0 END"   \
  " WHERE status = 'running' AND node_uuid = ? AND start_time < ?"
Q2(RUN_MARK_LOST, MARK_LOST,
   "SET STATEMENT innodb_lock_wait_timeout = 2 FOR " MARK_LOST, R);
Q1(RUN_COUNTS,
   "SELECT COUNT(*), COALESCE(SUM(success = 1), 0),"
   " COALESCE(SUM(status IN ('failed', 'timeout', 'killed', 'lost',"
   " 'error')), 0),"
   " COALESCE(SUM(status = 'running'), 0),"
   " COALESCE(SUM(CASE WHEN status = 'missed' THEN missed_count ELSE 0"
   " END), 0)"
   " FROM cronix_job_log WHERE start_time >= ? AND start_time < ?",
   R);
#define ATTEMPT_VALS                                                           \
  " (run_id, attempt, start_time, end_time, status, exit_code, output)"        \
  " VALUES (?,?,?,?,?,?,?)"
Q2(ATTEMPT_PUT,
   "INSERT INTO cronix_job_attempt" ATTEMPT_VALS
   " ON CONFLICT(run_id, attempt) DO UPDATE SET"
   " start_time = excluded.start_time, end_time = excluded.end_time,"
   " status = excluded.status, exit_code = excluded.exit_code,"
   " output = excluded.output",
   "INSERT INTO cronix_job_attempt" ATTEMPT_VALS
   " ON DUPLICATE KEY UPDATE start_time = VALUES(start_time),"
   " end_time = VALUES(end_time), status = VALUES(status),"
   " exit_code = VALUES(exit_code), output = VALUES(output)",
   R);
Q1(ATTEMPT_LIST,
   "SELECT run_id, attempt, start_time, end_time, status, exit_code, output"
   " FROM cronix_job_attempt WHERE run_id = ? ORDER BY attempt",
   R);
Q2(ATTEMPT_PURGE,
   "DELETE FROM cronix_job_attempt WHERE rowid IN (SELECT rowid FROM"
   " cronix_job_attempt WHERE start_time < ? ORDER BY start_time LIMIT ?)",
   "DELETE FROM cronix_job_attempt WHERE start_time < ? ORDER BY start_time"
   " LIMIT ?",
   R);
Q2(NODE_UPSERT,
   "INSERT INTO cronix_node (uuid, hostname, ip, pid, version, status, up,"
   " down) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(uuid) DO UPDATE SET"
   " hostname = excluded.hostname, ip = excluded.ip, pid = excluded.pid,"
   " version = excluded.version, status = excluded.status,"
   " up = excluded.up, down = excluded.down",
   "INSERT INTO cronix_node (uuid, hostname, ip, pid, version, status, up,"
   " down) VALUES (?,?,?,?,?,?,?,?) ON DUPLICATE KEY UPDATE"
   " hostname = VALUES(hostname), ip = VALUES(ip), pid = VALUES(pid),"
   " version = VALUES(version), status = VALUES(status), up = VALUES(up),"
   " down = VALUES(down)",
   R);
Q1(NODE_ID, "SELECT id FROM cronix_node WHERE uuid = ?", R);
Q1(NODE_STATUS,
   "UPDATE cronix_node SET status = ?, up = CASE WHEN ? = 1 THEN ? ELSE up"
   " END, down = CASE WHEN ? = 2 THEN ? ELSE down END WHERE uuid = ?",
   R);
Q1(NODE_FIND, "SELECT " NODE_COLS " FROM cronix_node WHERE uuid = ?", R);
Q1(NODE_SEARCH,
   "SELECT " NODE_COLS " FROM cronix_node WHERE (? = 0 OR status = ?)"
   " ORDER BY id LIMIT ? OFFSET ?",
   R);
Q1(NODE_COUNT, "SELECT COUNT(*) FROM cronix_node WHERE (? = 0 OR status = ?)",
   R);
Q1(NODE_DELETE, "DELETE FROM cronix_node WHERE uuid = ?", R);
Q1(USER_INSERT,
   "INSERT INTO cronix_user (username, password_hash, email, feishu_id,"
   " role, created, updated, mobile, dingtalk_id, wecom_id, slack_id)"
   " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
   0);
Q1(USER_UPDATE,
   "UPDATE cronix_user SET username = ?, password_hash = ?, email = ?,"
   " feishu_id = ?, role = ?, updated = ?, mobile = ?, dingtalk_id = ?,"
   " wecom_id = ?, slack_id = ? WHERE id = ?",
   R);
Q1(USER_DELETE, "DELETE FROM cronix_user WHERE id = ?", R);
Q1(USER_TOKENS_DELETE, "DELETE FROM cronix_token WHERE user_id = ?", R);
Q1(USER_FIND, "SELECT " USER_COLS " FROM cronix_user WHERE id = ?", R);
Q1(USER_FIND_NAME, "SELECT " USER_COLS " FROM cronix_user WHERE username = ?",
   R);
Q1(USER_SEARCH,
   "SELECT " USER_COLS " FROM cronix_user WHERE (? IS NULL OR username LIKE"
   " ? ESCAPE '!') ORDER BY id LIMIT ? OFFSET ?",
   R);
Q1(USER_COUNT,
   "SELECT COUNT(*) FROM cronix_user WHERE (? IS NULL OR username LIKE ?"
   " ESCAPE '!')",
   R);
Q1(TOKEN_INSERT,
   "INSERT INTO cronix_token (hash, user_id, kind, expires, created)"
   " VALUES (?,?,?,?,?)",
   0);
Q1(TOKEN_FIND,
   "SELECT id, user_id, kind, expires, created FROM cronix_token WHERE"
   " hash = ?",
   R);
Q1(TOKEN_DELETE, "DELETE FROM cronix_token WHERE hash = ?", R);
Q1(TOKEN_DELETE_USER,
   "DELETE FROM cronix_token WHERE user_id = ? AND (? IS NULL OR kind = ?)"
   " AND (? IS NULL OR hash <> ?)",
   R);
#define TOKEN_COLS "id, user_id, kind, expires, created"
Q1(TOKEN_BY_ID, "SELECT " TOKEN_COLS " FROM cronix_token WHERE id = ?", R);
Q1(TOKEN_DELETE_ID, "DELETE FROM cronix_token WHERE id = ?", R);
Q1(TOKEN_SEARCH,
   "SELECT " TOKEN_COLS " FROM cronix_token WHERE (? = 0 OR user_id = ?)"
   " AND (expires = 0 OR expires > ?) ORDER BY id LIMIT ? OFFSET ?",
   R);
Q1(TOKEN_COUNT,
   "SELECT COUNT(*) FROM cronix_token WHERE (? = 0 OR user_id = ?)"
   " AND (expires = 0 OR expires > ?)",
   R);
Q1(TOKEN_PURGE, "DELETE FROM cronix_token WHERE expires > 0 AND expires <= ?",
   R);

#define AUDIT_COLS                                                             \
  "id, at, user_id, username, addr, kind, target, before_json, after_json"
Q1(AUDIT_INSERT,
   "INSERT INTO cronix_audit (at, user_id, username, addr, kind, target,"
   " before_json, after_json) VALUES (?,?,?,?,?,?,?,?)",
   0);
Q1(AUDIT_DELETE, "DELETE FROM cronix_audit WHERE id = ?", R);
Q2(AUDIT_PURGE,
   "DELETE FROM cronix_audit WHERE id IN (SELECT id FROM cronix_audit"
   " WHERE at < ? ORDER BY at LIMIT ?)",
   "DELETE FROM cronix_audit WHERE at < ? ORDER BY at LIMIT ?", R);

/* Search variants, built once from constant fragments. */
#define JOB_F_NAME 1
#define JOB_F_TYPE 2
#define JOB_F_RUN_ON 4
#define JOB_F_ENABLED 8
#define RUN_F_JOB 1
#define RUN_F_NODE 2
#define RUN_F_SUCCESS 4
#define RUN_F_STATUS 8
#define RUN_F_TRIGGER 16
#define RUN_F_RANGE 32
/* CX_RUN_FILTER_SET placeholders. */
#define IN_SET "(?,?,?,?,?,?,?,?,?,?)"
_Static_assert(CX_RUN_FILTER_SET == 10, "IN_SET has 10 placeholders");
#define SQL_LEN 768

static struct cx__stmt search_q[Q_END - Q_FIXED_END];
static char search_sql[Q_END - Q_FIXED_END][SQL_LEN];
static pthread_once_t search_once = PTHREAD_ONCE_INIT;

/* Appends constant text to a search statement (no allocation, so the
 * one-time build cannot fail; the texts are build-time constants sized by
 * SQL_LEN, checked by an abort that no input can reach). */
static void sql_cat(char *dst, size_t *len, const char *src)
{
  size_t n = strlen(src);
  if (*len + n >= SQL_LEN)
    abort();
  memcpy(dst + *len, src, n + 1);
  *len += n;
}

static void build_one(int id, const char *head, const char *const *conds,
                      int nconds, unsigned mask, const char *tail)
{
  int k = id - Q_FIXED_END;
  size_t len = 0;
  const char *sep = " WHERE ";
  sql_cat(search_sql[k], &len, head);
  for (int i = 0; i < nconds; i++) {
    if ((mask & (1u << i)) == 0)
      continue;
    sql_cat(search_sql[k], &len, sep);
    sql_cat(search_sql[k], &len, conds[i]);
    sep = " AND ";
  }
  sql_cat(search_sql[k], &len, tail);
  search_q[k].id = id;
  search_q[k].sql[0] = search_sql[k];
  search_q[k].flags = CX__Q_RETRY;
}

/* MySQL walks the unfiltered page on the id-only index (migration 3);
 * left alone it takes the clustered primary key, whose leaves are whole
 * rows. Filtered searches need the rows anyway. */
static const char job_page_mysql[] =
    "SELECT " JOB_COLS " FROM cronix_job JOIN (SELECT id FROM cronix_job"
    " FORCE INDEX (cronix_job_page) ORDER BY id LIMIT ? OFFSET ?) pg"
    " USING (id) ORDER BY id";

static void build_search(void)
{
  static const char *const job_conds[] = {
      "LOWER(name) LIKE LOWER(?) ESCAPE '!'", "type = ?", "run_on = ?",
      "enabled = ?"};
  /* The time range is always bound ([INT64_MIN, INT64_MAX) when open) so
   * the (job_id, start_time) and (start_time) indexes serve the order. */
  static const char *const run_conds[] = {
      "job_id = ?",           "node_uuid = ?",
      "success = ?",          "status IN " IN_SET,
      "`trigger` IN " IN_SET, "start_time >= ? AND start_time < ?"};
  for (unsigned m = 0; m < 16; m++) {
    /* Deferred join: the OFFSET walk reads ids only; whole rows are read
     * for the page alone. */
    build_one(Q_JOB_SEARCH + (int)m,
              "SELECT " JOB_COLS " FROM cronix_job JOIN (SELECT id FROM"
              " cronix_job",
              job_conds, 4, m,
              " ORDER BY id LIMIT ? OFFSET ?) pg USING (id) ORDER BY id");
    build_one(Q_JOB_SEARCH + 16 + (int)m, "SELECT COUNT(*) FROM cronix_job",
              job_conds, 4, m, "");
  }
  search_q[Q_JOB_SEARCH - Q_FIXED_END].sql[CX__MYSQL] = job_page_mysql;
  static const char *const audit_conds[] = {
      "username = ?", "kind LIKE ? ESCAPE '!'", "at >= ? AND at < ?"};
  for (unsigned m = 0; m < 4; m++) {
    build_one(Q_AUDIT_SEARCH + (int)m,
              "SELECT " AUDIT_COLS " FROM cronix_audit", audit_conds, 3, m | 4,
              " ORDER BY at DESC, id DESC LIMIT ? OFFSET ?");
    build_one(Q_AUDIT_SEARCH + 4 + (int)m, "SELECT COUNT(*) FROM cronix_audit",
              audit_conds, 3, m | 4, "");
  }
  for (unsigned m = 0; m < 32; m++) {
    build_one(Q_RUN_SEARCH + (int)m, "SELECT " RUN_COLS " FROM cronix_job_log",
              run_conds, 6, m | RUN_F_RANGE,
              " ORDER BY start_time DESC, id DESC LIMIT ? OFFSET ?");
    build_one(Q_RUN_SEARCH + 32 + (int)m, "SELECT COUNT(*) FROM cronix_job_log",
              run_conds, 6, m | RUN_F_RANGE, "");
    build_one(Q_RUN_SEARCH + 64 + (int)m,
              "SELECT COUNT(*) FROM (SELECT 1 FROM cronix_job_log", run_conds,
              6, m | RUN_F_RANGE, " LIMIT ?) capped");
  }
}

static const struct cx__stmt *search_stmt(int id)
{
  pthread_once(&search_once, build_search);
  return &search_q[id - Q_FIXED_END];
}

/* ---- schema ------------------------------------------------------------ */

int cx_store_schema_version(struct cx_store *s, int *version, char *err)
{
  struct one_int o;
  int rc = query_int(s, &q_SCHEMA_VERSION, NULL, 0, &o, err);
  if (rc == 0)
    *version = (int)o.v;
  return rc;
}

/* ---- jobs -------------------------------------------------------------- */

static void job_clear_v(void *p)
{
  cx_job_clear(p);
}

void cx_job_list_free(struct cx_job_list *l)
{
  if (l == NULL)
    return;
  free_items(l->items, l->n, sizeof *l->items, job_clear_v);
  memset(l, 0, sizeof *l);
}

#define JF_RS(f, d) j->f = cx__col_str(&c[k++], &oom);
#define JF_RI(f) j->f = (int)cx__col_int(&c[k++]);
static int job_from_row(void *item, const struct cx__val *c, int n)
{
  struct cx_job *j = item;
  int oom = 0, k = 3;
  if (n != 3 + JOB_NFIELDS)
    return -EIO;
  j->id = cx__col_int(&c[0]);
  j->created = cx__col_int(&c[1]);
  j->updated = cx__col_int(&c[2]);
  JOB_FIELDS(JF_RS, JF_RI, JF_RI)
  return oom ? -ENOMEM : 0;
}

static const struct kind job_kind = {sizeof(struct cx_job), job_from_row,
                                     job_clear_v};

/* The settable fields, in JOB_FIELDS order. */
#define JF_PS(f, d) p[k++] = vstr(j->f, d);
#define JF_PI(f) p[k++] = vint(j->f);
#define JF_PB(f) p[k++] = vint(j->f ? 1 : 0);
static int job_params(const struct cx_job *j, struct cx__val *p)
{
  int k = 0;
  JOB_FIELDS(JF_PS, JF_PI, JF_PB)
  return k;
}

static void name_taken(int rc, const char *what, const char *name, char *err)
{
  if (rc == CX_EEXISTS)
    cx_err_set(err, "%s: \"%.128s\" is taken", what, name);
}

int cx_store_job_create(struct cx_store *s, struct cx_job *j, char *err)
{
  struct cx__val p[JOB_NFIELDS + 2];
  struct cx__exec_result res;
  int rc = job_check(j, err);
  if (rc != 0)
    return rc;
  int64_t now = cx_wall_s();
  int k = job_params(j, p);
  p[k++] = vint(now);
  p[k++] = vint(now);
  rc = exec(s, &q_JOB_INSERT, p, k, NULL, NULL, &res, err);
  name_taken(rc, "name", j->name, err);
  if (rc != 0)
    return rc;
  j->id = res.insert_id;
  j->created = now;
  j->updated = now;
  return 0;
}

/* After an UPDATE matched nothing: absent (CX_ENOTFOUND) or changed. */
static int job_missing_or_stale(struct cx_store *s, int64_t id, char *err)
{
  struct one_int o;
  struct cx__val p = vint(id);
  int rc = query_int(s, &q_JOB_UPDATED, &p, 1, &o, err);
  if (rc != 0)
    return rc;
  if (o.rows == 0) {
    cx_err_set(err, "job %lld: not found", (long long)id);
    return CX_ENOTFOUND;
  }
  cx_err_set(err, "job %lld: changed since it was read (updated %lld)",
             (long long)id, (long long)o.v);
  return CX_ECONFLICT;
}

int cx_store_job_update(struct cx_store *s, struct cx_job *j, char *err)
{
  struct cx__val p[JOB_NFIELDS + 3];
  struct cx__exec_result res;
  int rc = job_check(j, err);
  if (rc != 0)
    return rc;
  int64_t now = cx_wall_s();
  int64_t next = now > j->updated ? now : j->updated + 1;
  int k = job_params(j, p);
  p[k++] = vint(next);
  p[k++] = vint(j->id);
  p[k++] = vint(j->updated);
  rc = exec(s, &q_JOB_UPDATE, p, k, NULL, NULL, &res, err);
  name_taken(rc, "name", j->name, err);
  if (rc != 0)
    return rc;
  if (res.affected == 0)
    return job_missing_or_stale(s, j->id, err);
  j->updated = next;
  return 0;
}

static int not_found(int64_t affected, const char *what, int64_t id, char *err)
{
  if (affected > 0)
    return 0;
  cx_err_set(err, "%s %lld: not found", what, (long long)id);
  return CX_ENOTFOUND;
}

int cx_store_job_set_enabled(struct cx_store *s, int64_t id, int enabled,
                             char *err)
{
  int64_t now = cx_wall_s();
  struct cx__val p[] = {vint(enabled ? 1 : 0), vint(now), vint(now), vint(id)};
  struct cx__exec_result res;
  int rc = exec(s, &q_JOB_ENABLE, p, 4, NULL, NULL, &res, err);
  return rc != 0 ? rc : not_found(res.affected, "job", id, err);
}

struct job_where {
  int rows;
  char *run_on;
};

static int job_where_row(void *ctx, const struct cx__val *c, int n)
{
  struct job_where *w = ctx;
  int oom = 0;
  if (n != 2)
    return -EIO;
  w->rows++;
  cx_free(w->run_on);
  w->run_on = cx__col_str(&c[1], &oom);
  return oom ? -ENOMEM : 0;
}

int cx_store_job_move(struct cx_store *s, int64_t id, const char *from_node,
                      const char *to_node, char *err)
{
  CHECK("run_on", to_node, 64, 0);
  CHECK("from_node", from_node, 64, 0);
  int64_t now = cx_wall_s();
  struct cx__val p[] = {vstr(to_node, ""), vint(now), vint(now), vint(id),
                        vstr(from_node, "")};
  struct cx__exec_result res;
  struct job_where w = {0, NULL};
  int rc = exec(s, &q_JOB_MOVE, p, 5, NULL, NULL, &res, err);
  if (rc != 0 || res.affected > 0)
    return rc;
  /* Nothing matched: gone, moved elsewhere, or our own earlier (retried)
   * move already put it there. */
  struct cx__val q = vint(id);
  rc = exec(s, &q_JOB_UPDATED, &q, 1, job_where_row, &w, NULL, err);
  if (rc == 0 && w.rows == 0) {
    cx_err_set(err, "job %lld: not found", (long long)id);
    rc = CX_ENOTFOUND;
  } else if (rc == 0 && strcmp(w.run_on, to_node ? to_node : "") != 0) {
    cx_err_set(err, "job %lld: on node \"%s\", not \"%s\"", (long long)id,
               w.run_on, from_node ? from_node : "");
    rc = CX_ECONFLICT;
  }
  cx_free(w.run_on);
  return rc;
}

int cx_store_job_delete(struct cx_store *s, int64_t id, char *err)
{
  struct cx__val p = vint(id);
  struct cx__exec_result res;
  int rc = exec(s, &q_JOB_DELETE, &p, 1, NULL, NULL, &res, err);
  return rc != 0 ? rc : not_found(res.affected, "job", id, err);
}

int cx_store_job_find(struct cx_store *s, int64_t id, struct cx_job *out,
                      char *err)
{
  struct cx__val p = vint(id);
  return find_one(s, &job_kind, &q_JOB_FIND, &p, 1, out, "job", err);
}

int cx_store_job_search(struct cx_store *s, const struct cx_job_filter *f,
                        struct cx_job_list *out, char *err)
{
  struct cx__val p[6];
  struct collect k = {0};
  struct one_int o;
  char *pat = NULL;
  unsigned mask = 0;
  int np = 0, rc;
  int64_t limit, offset;
  memset(out, 0, sizeof *out);
  CHECK("name", f->name, 0, 0);
  CHECK("run_on", f->run_on, 0, 0);
  if (f->name != NULL && f->name[0] != '\0') {
    pat = like_pattern(f->name);
    if (pat == NULL)
      return -ENOMEM;
    mask |= JOB_F_NAME;
    p[np++] = vstr(pat, NULL);
  }
  if (f->type != 0) {
    mask |= JOB_F_TYPE;
    p[np++] = vint(f->type);
  }
  if (f->run_on != NULL) {
    mask |= JOB_F_RUN_ON;
    p[np++] = vstr(f->run_on, NULL);
  }
  if (f->enabled != CX_STORE_ANY) {
    mask |= JOB_F_ENABLED;
    p[np++] = vint(f->enabled == CX_STORE_YES);
  }
  if (!f->skip_total) {
    rc = query_int(s, search_stmt(Q_JOB_SEARCH + 16 + (int)mask), p, np, &o,
                   err);
    if (rc != 0)
      goto err;
    out->total = o.v;
  }
  page_of(f->page, f->page_size, &limit, &offset);
  p[np++] = vint(limit);
  p[np++] = vint(offset);
  rc = list_query(s, &job_kind, search_stmt(Q_JOB_SEARCH + (int)mask), p, np,
                  &k, err);
  if (rc != 0)
    goto err;
  out->items = (struct cx_job *)k.items;
  out->n = k.n;
  if (f->skip_total)
    out->total = (int64_t)k.n < limit && (k.n > 0 || offset == 0)
                     ? offset + (int64_t)k.n
                     : -1;
err:
  cx_free(pat);
  return rc;
}

int cx_store_job_list(struct cx_store *s, const char *run_on, int allocation,
                      struct cx_job_list *out, char *err)
{
  struct collect k = {0};
  struct cx__val p[3];
  int rc;
  memset(out, 0, sizeof *out);
  CHECK("run_on", run_on, 0, 0);
  if (run_on != NULL) {
    p[0] = vstr(run_on, NULL);
    p[1] = vint(allocation);
    p[2] = vint(allocation);
    rc = list_query(s, &job_kind, &q_JOB_LIST_NODE, p, 3, &k, err);
  } else {
    p[0] = vint(allocation);
    p[1] = vint(allocation);
    rc = list_query(s, &job_kind, &q_JOB_LIST_ALL, p, 2, &k, err);
  }
  if (rc != 0)
    return rc;
  out->items = (struct cx_job *)k.items;
  out->n = k.n;
  out->total = (int64_t)k.n;
  return 0;
}

static int node_jobs_row(void *item, const struct cx__val *c, int n)
{
  struct cx_node_jobs *v = item;
  int oom = 0;
  if (n != 2)
    return -EIO;
  v->run_on = cx__col_str(&c[0], &oom);
  v->count = cx__col_int(&c[1]);
  return oom ? -ENOMEM : 0;
}

static void node_jobs_clear(void *item)
{
  struct cx_node_jobs *v = item;
  cx_free(v->run_on);
  v->run_on = NULL;
}

void cx_node_jobs_free(struct cx_node_jobs *v, size_t n)
{
  free_items(v, v ? n : 0, sizeof *v, node_jobs_clear);
}

int cx_store_job_count_by_node(struct cx_store *s, struct cx_node_jobs **out,
                               size_t *n, char *err)
{
  struct collect k = {0};
  k.size = sizeof(struct cx_node_jobs);
  k.map = node_jobs_row;
  k.clear = node_jobs_clear;
  *out = NULL;
  *n = 0;
  int rc = exec(s, &q_JOB_COUNT_BY_NODE, NULL, 0, collect_row, &k, NULL, err);
  if (rc != 0) {
    collect_free(&k);
    return rc;
  }
  *out = (struct cx_node_jobs *)k.items;
  *n = k.n;
  return 0;
}

/* ---- run log ----------------------------------------------------------- */

void cx_run_clear(struct cx_run *r)
{
  if (r == NULL)
    return;
  char **f[] = {&r->name, &r->node_uuid, &r->hostname, &r->ip,    &r->command,
                &r->spec, &r->trigger,   &r->status,   &r->output};
  for (size_t i = 0; i < CX_ARRAY_LEN(f); i++)
    cx_free(*f[i]);
  memset(r, 0, sizeof *r);
}

static void run_clear_v(void *p)
{
  cx_run_clear(p);
}

void cx_run_list_free(struct cx_run_list *l)
{
  if (l == NULL)
    return;
  free_items(l->items, l->n, sizeof *l->items, run_clear_v);
  memset(l, 0, sizeof *l);
}

static int run_from_row(void *item, const struct cx__val *c, int n)
{
  struct cx_run *r = item;
  int oom = 0;
  if (n != 21)
    return -EIO;
  r->id = cx__col_int(&c[0]);
  r->job_id = cx__col_int(&c[1]);
  r->name = cx__col_str(&c[2], &oom);
  r->node_uuid = cx__col_str(&c[3], &oom);
  r->hostname = cx__col_str(&c[4], &oom);
  r->ip = cx__col_str(&c[5], &oom);
  r->command = cx__col_str(&c[6], &oom);
  r->spec = cx__col_str(&c[7], &oom);
  r->trigger = cx__col_str(&c[8], &oom);
  r->has_scheduled_at = c[9].type != CX__V_NULL;
  r->scheduled_at = cx__col_int(&c[9]);
  r->start_time = cx__col_int(&c[10]);
  r->end_time = cx__col_int(&c[11]);
  r->success = (int)cx__col_int(&c[12]);
  r->status = cx__col_str(&c[13], &oom);
  r->exit_code = (int)cx__col_int(&c[14]);
  r->attempts = (int)cx__col_int(&c[15]);
  r->output = cx__col_str(&c[16], &oom);
  r->output_len = c[16].type == CX__V_TEXT ? c[16].len : 0;
  if (c[17].type == CX__V_TEXT && c[17].len < sizeof r->claim_token) {
    memcpy(r->claim_token, c[17].s, c[17].len);
    r->claim_token[c[17].len] = '\0';
  }
  r->missed_count = cx__col_int(&c[18]);
  r->missed_last = cx__col_int(&c[19]);
  r->per_node = c[20].type == CX__V_TEXT && c[20].len > 0;
  return oom ? -ENOMEM : 0;
}

static const struct kind run_kind = {sizeof(struct cx_run), run_from_row,
                                     run_clear_v};

static int run_check(const struct cx_run *r, char *err)
{
  CHECK("name", r->name, CX_JOB_MAX_NAME, 0);
  CHECK("node_uuid", r->node_uuid, 64, 0);
  CHECK("hostname", r->hostname, 255, 0);
  CHECK("ip", r->ip, 64, 0);
  CHECK("command", r->command, 0, 0);
  CHECK("spec", r->spec, CX_JOB_MAX_SPEC, 0);
  CHECK("trigger", r->trigger, 16, 0);
  CHECK("status", r->status, 16, 0);
  if (r->output_len > CX_STORE_TEXT_MAX) {
    cx_err_set(err, "output: longer than %d bytes", CX_STORE_TEXT_MAX);
    return CX_ETOOBIG;
  }
  return 0;
}

/* An output as stored: sanitized (see store.h). *tofree gets the copy. */
static int output_bytes_val(const char *output, size_t output_len,
                            struct cx__val *v, char **tofree, char *err)
{
  size_t len = output ? output_len : 0;
  *tofree = NULL;
  if (len > CX_STORE_TEXT_MAX) {
    cx_err_set(err, "output: longer than %d bytes", CX_STORE_TEXT_MAX);
    return CX_ETOOBIG;
  }
  if (len == 0) {
    *v = vstr("", NULL);
    return 0;
  }
  if (memchr(output, 0, len) == NULL && cx_utf8_valid(output, len)) {
    v->type = CX__V_TEXT;
    v->s = output;
    v->len = len;
    return 0;
  }
  int rc = cx__utf8_sanitize(output, len, tofree, &v->len);
  if (rc != 0)
    return rc;
  if (v->len > 3 * (size_t)CX_STORE_TEXT_MAX) {
    cx_err_set(err, "output: too long once sanitized");
    cx_free(*tofree);
    *tofree = NULL;
    return CX_ETOOBIG;
  }
  v->type = CX__V_TEXT;
  v->s = *tofree;
  return 0;
}

static int output_val(const struct cx_run *r, struct cx__val *v, char **tofree,
                      char *err)
{
  return output_bytes_val(r->output, r->output_len, v, tofree, err);
}

/* A claim or finish on its way through the group commit (batch.c). */
struct run_call {
  struct cx__val p[21];
  const struct cx_run *r;
  int64_t id;
};

static int claim_call(struct cx_store *s, void *tx, void *ctx, char *err)
{
  struct run_call *c = ctx;
  struct cx__exec_result res;
  struct one_int o = {0};
  int rc;
  if (c->r->has_scheduled_at) {
    rc = cx__texec(s, tx, &q_RUN_COVERED, &c->p[18], 3, one_int_row, &o, NULL,
                   err);
    if (rc != 0)
      return rc;
    if (o.rows > 0 && o.v >= c->r->scheduled_at) {
      cx_err_set(err, "job %lld fire %lld: already recorded as missed",
                 (long long)c->r->job_id, (long long)c->r->scheduled_at);
      return CX_EEXISTS;
    }
    o = (struct one_int){0};
  }
  rc = cx__texec(s, tx, &q_RUN_INSERT, c->p, 18, NULL, NULL, &res, err);
  if (rc == 0) {
    c->id = res.insert_id;
    return 0;
  }
  if (rc != CX_EEXISTS)
    return rc;
  /* A duplicate: our own claim sent twice (same token) is a success. */
  rc = cx__texec(s, tx, &q_RUN_BY_TOKEN, &c->p[16], 1, one_int_row, &o, NULL,
                 err);
  if (rc != 0)
    return rc;
  if (o.rows > 0) {
    c->id = o.v;
    return 0;
  }
  cx_err_set(err, "job %lld fire %lld: already claimed",
             (long long)c->r->job_id, (long long)c->r->scheduled_at);
  return CX_EEXISTS;
}

/* The row's claim key part: its node for a broadcast job's row, else "". */
static const char *claim_node_of(const struct cx_run *r)
{
  return r->per_node && r->node_uuid ? r->node_uuid : "";
}

/* p[0..10]: a new row's job_id .. end_time, as RUN_INSERT and RUN_MISSED
 * take them. */
static void run_head_vals(const struct cx_run *r, struct cx__val *p)
{
  p[0] = vint(r->job_id);
  p[1] = vstr(r->name, "");
  p[2] = vstr(r->node_uuid, "");
  p[3] = vstr(r->hostname, "");
  p[4] = vstr(r->ip, "");
  p[5] = vstr(r->command, "");
  p[6] = vstr(r->spec, "");
  p[7] = vstr(r->trigger, "cron");
  p[8] = r->has_scheduled_at ? vint(r->scheduled_at) : vnull();
  p[9] = vint(r->start_time);
  p[10] = vint(r->end_time);
}

int cx_store_run_claim(struct cx_store *s, struct cx_run *r, int64_t *id,
                       char *err)
{
  struct run_call c = {.r = r};
  struct cx__val *p = c.p;
  char *out = NULL;
  int rc = run_check(r, err);
  if (rc != 0)
    return rc;
  if (r->claim_token[0] == '\0') {
    rc = cx__claim_token(r->claim_token);
    if (rc != 0)
      return rc;
  } else if (strnlen(r->claim_token, sizeof r->claim_token) != 32 ||
             strspn(r->claim_token, "0123456789abcdef") != 32) {
    cx_err_set(err, "claim_token: must be 32 lowercase hex digits");
    return CX_EPARSE;
  }
  rc = output_val(r, &p[15], &out, err);
  if (rc != 0)
    return rc;
  run_head_vals(r, p);
  p[11] = vint(r->success ? 1 : 0);
  p[12] = vstr(r->status, "running");
  p[13] = vint(r->exit_code);
  p[14] = vint(r->attempts);
  p[16] = vstr(r->claim_token, NULL);
  p[17] = vstr(claim_node_of(r), "");
  p[18] = vint(r->job_id); /* RUN_COVERED: no missed range reaches it */
  p[19] = p[17];
  p[20] = p[8];
  rc = cx__batch_run(s, claim_call, &c, err);
  cx_free(out);
  if (rc == 0)
    *id = c.id;
  return rc;
}

static int finish_call(struct cx_store *s, void *tx, void *ctx, char *err)
{
  struct run_call *c = ctx;
  struct cx__exec_result res;
  int rc = cx__texec(s, tx, &q_RUN_FINISH, c->p, 10, NULL, NULL, &res, err);
  return rc != 0 ? rc : not_found(res.affected, "run", c->r->id, err);
}

int cx_store_run_finish(struct cx_store *s, const struct cx_run *r, char *err)
{
  struct run_call c = {.r = r};
  struct cx__val *p = c.p;
  char *out = NULL;
  CHECK("status", r->status, 16, 1);
  int rc = run_check(r, err);
  if (rc == 0)
    rc = output_val(r, &p[5], &out, err);
  if (rc != 0)
    return rc;
  p[0] = vstr(r->status, NULL);
  p[1] = vint(r->success ? 1 : 0);
  p[2] = vint(r->exit_code);
  p[3] = vint(r->end_time);
  p[4] = vint(r->attempts);
  p[6] = vint(r->start_time);
  p[7] = vint(r->start_time);
  p[8] = p[0];
  p[9] = vint(r->id);
  rc = cx__batch_run(s, finish_call, &c, err);
  cx_free(out);
  return rc;
}

int cx_store_run_mark_lost(struct cx_store *s, const char *node_uuid,
                           int64_t started_before, const char *why,
                           int64_t *marked, char *err)
{
  CHECK("node_uuid", node_uuid, 64, 1);
  CHECK("why", why, 4096, 0);
  struct cx__val p[] = {vint(cx_wall_ms()), vstr(why, ""), vstr(node_uuid, ""),
                        vint(started_before)};
  struct cx__exec_result res;
  int rc = exec(s, &q_RUN_MARK_LOST, p, 4, NULL, NULL, &res, err);
  if (rc == 0 && marked != NULL)
    *marked = res.affected;
  return rc;
}

int cx_store_run_find(struct cx_store *s, int64_t id, struct cx_run *out,
                      char *err)
{
  struct cx__val p = vint(id);
  return find_one(s, &run_kind, &q_RUN_FIND, &p, 1, out, "run", err);
}

/* Binds the n (1..CX_RUN_FILTER_SET) values of an IN_SET at p[np]; the
 * spare placeholders repeat the first value. Returns the new np. */
static int bind_set(struct cx__val *p, int np, const char *const *v, int n)
{
  for (int i = 0; i < CX_RUN_FILTER_SET; i++)
    p[np++] = vstr(v[i < n ? i : 0], NULL);
  return np;
}

int cx_store_run_search(struct cx_store *s, const struct cx_run_filter *f,
                        struct cx_run_list *out, char *err)
{
  struct cx__val p[8 + 2 * CX_RUN_FILTER_SET];
  struct collect k = {0};
  struct one_int o;
  unsigned mask = 0;
  int np = 0, rc;
  int64_t limit, offset;
  memset(out, 0, sizeof *out);
  CHECK("node_uuid", f->node_uuid, 0, 0);
  if (f->nstatuses < 0 || f->nstatuses > CX_RUN_FILTER_SET ||
      f->ntriggers < 0 || f->ntriggers > CX_RUN_FILTER_SET) {
    cx_err_set(err, "status/trigger: at most %d values", CX_RUN_FILTER_SET);
    return CX_EPARSE;
  }
  if (f->job_id != 0) {
    mask |= RUN_F_JOB;
    p[np++] = vint(f->job_id);
  }
  if (f->node_uuid != NULL) {
    mask |= RUN_F_NODE;
    p[np++] = vstr(f->node_uuid, NULL);
  }
  if (f->success != CX_STORE_ANY) {
    mask |= RUN_F_SUCCESS;
    p[np++] = vint(f->success == CX_STORE_YES);
  }
  if (f->nstatuses > 0) {
    mask |= RUN_F_STATUS;
    np = bind_set(p, np, f->statuses, f->nstatuses);
  }
  if (f->ntriggers > 0) {
    mask |= RUN_F_TRIGGER;
    np = bind_set(p, np, f->triggers, f->ntriggers);
  }
  p[np++] = vint(f->from != 0 ? f->from : INT64_MIN);
  p[np++] = vint(f->to != 0 ? f->to : INT64_MAX);
  if (f->count_limit > 0) {
    /* Count one more than the cap to know whether there are more. */
    p[np] = vint(f->count_limit + 1);
    rc = query_int(s, search_stmt(Q_RUN_SEARCH + 64 + (int)mask), p, np + 1, &o,
                   err);
    if (rc == 0 && o.v > f->count_limit) {
      o.v = f->count_limit;
      out->total_capped = 1;
    }
  } else {
    rc = query_int(s, search_stmt(Q_RUN_SEARCH + 32 + (int)mask), p, np, &o,
                   err);
  }
  if (rc != 0)
    return rc;
  out->total = o.v;
  page_of(f->page, f->page_size, &limit, &offset);
  p[np++] = vint(limit);
  p[np++] = vint(offset);
  rc = list_query(s, &run_kind, search_stmt(Q_RUN_SEARCH + (int)mask), p, np,
                  &k, err);
  if (rc != 0)
    return rc;
  out->items = (struct cx_run *)k.items;
  out->n = k.n;
  return 0;
}

/* Deletes rows of q (params: cutoff, batch) in batches, at most max_rows
 * (0 = no limit); *total counts them. */
static int purge_batches(struct cx_store *s, const struct cx__stmt *q,
                         int64_t cutoff, int64_t max_rows, int64_t *total,
                         char *err)
{
  int rc = 0;
  *total = 0;
  for (;;) {
    int64_t batch = CX_STORE_PURGE_BATCH;
    if (max_rows > 0 && max_rows - *total < batch)
      batch = max_rows - *total;
    if (batch <= 0)
      break;
    struct cx__val p[] = {vint(cutoff), vint(batch)};
    struct cx__exec_result res;
    rc = exec(s, q, p, 2, NULL, NULL, &res, err);
    if (rc != 0)
      break;
    *total += res.affected;
    if (res.affected < batch)
      break;
  }
  return rc;
}

int cx_store_run_purge(struct cx_store *s, int days, int64_t now_ms,
                       int64_t max_rows, int64_t *deleted, char *err)
{
  int64_t total = 0, attempts = 0;
  if (days < 0 || days > 100000) {
    cx_err_set(err, "days: must be 0..100000");
    return CX_EPARSE;
  }
  int64_t cutoff = now_ms - (int64_t)days * 86400 * 1000;
  int rc = purge_batches(s, &q_RUN_PURGE, cutoff, max_rows, &total, err);
  if (rc == 0)
    rc = purge_batches(s, &q_ATTEMPT_PURGE, cutoff, max_rows, &attempts, err);
  if (deleted != NULL)
    *deleted = total;
  return rc;
}

/* The fires a missed row may stand for: one row per gap, however long. */
#define MISSED_COUNT_MAX ((int64_t)1 << 40)

void cx_run_set_missed(struct cx_run *r, int64_t first, int64_t last,
                       int64_t count)
{
  r->trigger = "cron";
  r->status = "missed";
  r->has_scheduled_at = 1;
  r->scheduled_at = first;
  r->missed_last = last;
  r->missed_count = count;
}

int cx_store_run_missed(struct cx_store *s, struct cx_run *r, int64_t *id,
                        char *err)
{
  struct cx__val p[25];
  struct cx__exec_result res;
  char *out = NULL;
  int rc = run_check(r, err);
  if (rc != 0)
    return rc;
  if (!r->has_scheduled_at || r->missed_last < r->scheduled_at ||
      r->missed_count < 1 || r->missed_count > MISSED_COUNT_MAX ||
      r->missed_count - 1 > r->missed_last - r->scheduled_at) {
    cx_err_set(err, "missed_count: %lld fires do not fit in [%lld, %lld]",
               (long long)r->missed_count, (long long)r->scheduled_at,
               (long long)r->missed_last);
    return CX_EPARSE;
  }
  rc = cx__claim_token(r->claim_token);
  if (rc == 0)
    rc = output_val(r, &p[11], &out, err);
  if (rc != 0)
    return rc;
  run_head_vals(r, p);
  p[12] = vstr(r->claim_token, NULL);
  p[13] = vint(r->missed_count);
  p[14] = vint(r->missed_last);
  p[15] = vstr(claim_node_of(r), "");
  p[16] = vint(r->job_id); /* notify_pending: does the job alert? */
  p[17] = vint(r->job_id);
  p[18] = vstr(claim_node_of(r), "");
  p[19] = vint(r->scheduled_at);
  p[20] = vint(r->missed_last);
  p[21] = vint(r->job_id);
  p[22] = vstr(claim_node_of(r), "");
  p[23] = vint(r->scheduled_at);
  p[24] = vint(r->scheduled_at);
  rc = exec(s, &q_RUN_MISSED, p, 25, NULL, NULL, &res, err);
  cx_free(out);
  if (rc == 0 && res.affected > 0) {
    *id = res.insert_id;
    return 0;
  }
  if (rc != 0 && rc != CX_EEXISTS)
    return rc;
  /* Sent twice after a lost connection: the first one stands. */
  struct one_int o;
  rc = query_int(s, &q_RUN_BY_TOKEN, &p[12], 1, &o, err);
  if (rc != 0)
    return rc;
  if (o.rows > 0) {
    *id = o.v;
    return 0;
  }
  cx_err_set(err, "job %lld fires %lld..%lld: already recorded",
             (long long)r->job_id, (long long)r->scheduled_at,
             (long long)r->missed_last);
  return CX_EEXISTS;
}

static int last_fire_row(void *ctx, const struct cx__val *c, int n)
{
  int64_t *at = ctx;
  if (n != 2)
    return -EIO;
  int64_t first = cx__col_int(&c[0]), last = cx__col_int(&c[1]);
  *at = last > first ? last : first;
  return 0;
}

int cx_store_run_last_fire(struct cx_store *s, int64_t job_id,
                           const char *claim_node, int64_t at_most, int64_t *at,
                           char *err)
{
  struct cx__val p[] = {vint(job_id), vstr(claim_node, ""), vint(at_most)};
  int64_t v = INT64_MIN;
  int rc = exec(s, &q_RUN_LAST_FIRE, p, 3, last_fire_row, &v, NULL, err);
  if (rc != 0)
    return rc;
  if (v == INT64_MIN) {
    cx_err_set(err, "job %lld: no fire recorded", (long long)job_id);
    return CX_ENOTFOUND;
  }
  *at = v;
  return 0;
}

struct spans {
  struct cx_run_span *v;
  size_t n, cap;
};

static int span_row(void *ctx, const struct cx__val *c, int n)
{
  struct spans *o = ctx;
  if (n != 2)
    return -EIO;
  if (o->n == o->cap)
    return 0; /* the LIMIT holds it; a defensive stop */
  int64_t first = cx__col_int(&c[0]), last = cx__col_int(&c[1]);
  o->v[o->n].first = first;
  o->v[o->n].last = last > first ? last : first;
  o->n++;
  return 0;
}

int cx_store_run_spans(struct cx_store *s, int64_t job_id,
                       const char *claim_node, int64_t from, int64_t to,
                       size_t max, struct cx_run_span **out, size_t *n,
                       char *err)
{
  struct spans o = {0};
  *out = NULL;
  *n = 0;
  if (max == 0 || max > CX_STORE_SPANS_MAX) {
    cx_err_set(err, "max: 1..%d spans", CX_STORE_SPANS_MAX);
    return CX_EPARSE;
  }
  o.cap = max;
  o.v = cx_calloc(max, sizeof *o.v);
  if (o.v == NULL)
    return -ENOMEM;
  struct cx__val p[] = {vint(job_id), vstr(claim_node, ""), vint(from),
                        vint(to), vint((int64_t)max)};
  int rc = exec(s, &q_RUN_SPANS, p, 5, span_row, &o, NULL, err);
  if (rc != 0) {
    cx_free(o.v);
    return rc;
  }
  *out = o.v;
  *n = o.n;
  return 0;
}

static int counts_row(void *ctx, const struct cx__val *c, int n)
{
  struct cx_run_counts *o = ctx;
  if (n != 5)
    return -EIO;
  o->total = cx__col_int(&c[0]);
  o->success = cx__col_int(&c[1]);
  o->failed = cx__col_int(&c[2]);
  o->running = cx__col_int(&c[3]);
  o->missed = cx__col_int(&c[4]);
  return 0;
}

int cx_store_run_counts(struct cx_store *s, int64_t from_ms, int64_t to_ms,
                        struct cx_run_counts *out, char *err)
{
  struct cx__val p[] = {vint(from_ms), vint(to_ms)};
  memset(out, 0, sizeof *out);
  return exec(s, &q_RUN_COUNTS, p, 2, counts_row, out, NULL, err);
}

/* ---- attempts ---------------------------------------------------------- */

void cx_run_attempt_clear(struct cx_run_attempt *a)
{
  if (a == NULL)
    return;
  cx_free(a->status);
  cx_free(a->output);
  memset(a, 0, sizeof *a);
}

static void attempt_clear_v(void *p)
{
  cx_run_attempt_clear(p);
}

void cx_run_attempts_free(struct cx_run_attempt *v, size_t n)
{
  if (v != NULL)
    free_items(v, n, sizeof *v, attempt_clear_v);
}

static int attempt_from_row(void *item, const struct cx__val *c, int n)
{
  struct cx_run_attempt *a = item;
  int oom = 0;
  if (n != 7)
    return -EIO;
  a->run_id = cx__col_int(&c[0]);
  a->attempt = (int)cx__col_int(&c[1]);
  a->start_time = cx__col_int(&c[2]);
  a->end_time = cx__col_int(&c[3]);
  a->status = cx__col_str(&c[4], &oom);
  a->exit_code = (int)cx__col_int(&c[5]);
  a->output = cx__col_str(&c[6], &oom);
  a->output_len = c[6].type == CX__V_TEXT ? c[6].len : 0;
  return oom ? -ENOMEM : 0;
}

static const struct kind attempt_kind = {sizeof(struct cx_run_attempt),
                                         attempt_from_row, attempt_clear_v};

int cx_store_run_attempt_put(struct cx_store *s, const struct cx_run_attempt *a,
                             char *err)
{
  struct cx__val p[7];
  char *out = NULL;
  CHECK("status", a->status, 16, 1);
  if (a->attempt < 1 || a->run_id < 1) {
    cx_err_set(err, "%s: must be positive",
               a->attempt < 1 ? "attempt" : "run_id");
    return CX_EPARSE;
  }
  int rc = output_bytes_val(a->output, a->output_len, &p[6], &out, err);
  if (rc != 0)
    return rc;
  p[0] = vint(a->run_id);
  p[1] = vint(a->attempt);
  p[2] = vint(a->start_time);
  p[3] = vint(a->end_time);
  p[4] = vstr(a->status, NULL);
  p[5] = vint(a->exit_code);
  rc = exec(s, &q_ATTEMPT_PUT, p, 7, NULL, NULL, NULL, err);
  cx_free(out);
  return rc;
}

int cx_store_run_attempt_list(struct cx_store *s, int64_t run_id,
                              struct cx_run_attempt **out, size_t *n, char *err)
{
  struct collect k = {0};
  struct cx_run r;
  struct cx__val p = vint(run_id);
  *out = NULL;
  *n = 0;
  int rc = cx_store_run_find(s, run_id, &r, err);
  if (rc != 0)
    return rc;
  rc = list_query(s, &attempt_kind, &q_ATTEMPT_LIST, &p, 1, &k, err);
  if (rc == 0 && k.n == 0 && r.attempts == 1 && r.end_time > 0) {
    /* A run of one attempt: the run row is that attempt. */
    struct cx_run_attempt *a = cx_calloc(1, sizeof *a);
    if (a == NULL) {
      rc = -ENOMEM;
    } else {
      a->run_id = r.id;
      a->attempt = 1;
      a->start_time = r.start_time;
      a->end_time = r.end_time;
      a->status = r.status;
      a->exit_code = r.exit_code;
      a->output = r.output;
      a->output_len = r.output_len;
      r.status = r.output = NULL;
      k.items = (char *)a;
      k.n = 1;
    }
  }
  cx_run_clear(&r);
  if (rc != 0)
    return rc;
  *out = (struct cx_run_attempt *)k.items;
  *n = k.n;
  return 0;
}

/* ---- nodes ------------------------------------------------------------- */

void cx_node_clear(struct cx_node *n)
{
  if (n == NULL)
    return;
  cx_free(n->uuid);
  cx_free(n->hostname);
  cx_free(n->ip);
  cx_free(n->version);
  memset(n, 0, sizeof *n);
}

static void node_clear_v(void *p)
{
  cx_node_clear(p);
}

void cx_node_list_free(struct cx_node_list *l)
{
  if (l == NULL)
    return;
  free_items(l->items, l->n, sizeof *l->items, node_clear_v);
  memset(l, 0, sizeof *l);
}

static int node_from_row(void *item, const struct cx__val *c, int n)
{
  struct cx_node *o = item;
  int oom = 0;
  if (n != 9)
    return -EIO;
  o->id = cx__col_int(&c[0]);
  o->uuid = cx__col_str(&c[1], &oom);
  o->hostname = cx__col_str(&c[2], &oom);
  o->ip = cx__col_str(&c[3], &oom);
  o->pid = (int)cx__col_int(&c[4]);
  o->version = cx__col_str(&c[5], &oom);
  o->status = (int)cx__col_int(&c[6]);
  o->up = cx__col_int(&c[7]);
  o->down = cx__col_int(&c[8]);
  return oom ? -ENOMEM : 0;
}

static const struct kind node_kind = {sizeof(struct cx_node), node_from_row,
                                      node_clear_v};

int cx_store_node_upsert(struct cx_store *s, struct cx_node *n, char *err)
{
  CHECK("uuid", n->uuid, 64, 1);
  CHECK("hostname", n->hostname, 255, 0);
  CHECK("ip", n->ip, 64, 0);
  CHECK("version", n->version, 64, 0);
  struct cx__val p[] = {vstr(n->uuid, NULL),  vstr(n->hostname, ""),
                        vstr(n->ip, ""),      vint(n->pid),
                        vstr(n->version, ""), vint(n->status),
                        vint(n->up),          vint(n->down)};
  struct one_int o;
  int rc = exec(s, &q_NODE_UPSERT, p, 8, NULL, NULL, NULL, err);
  if (rc == 0)
    rc = query_int(s, &q_NODE_ID, p, 1, &o, err);
  if (rc == 0)
    n->id = o.v;
  return rc;
}

int cx_store_node_set_status(struct cx_store *s, const char *uuid, int status,
                             int64_t at, char *err)
{
  CHECK("uuid", uuid, 64, 1);
  if (status != CX_NODE_UP && status != CX_NODE_DOWN) {
    cx_err_set(err, "status: must be 1 (up) or 2 (down)");
    return CX_EPARSE;
  }
  struct cx__val p[] = {vint(status), vint(status), vint(at),
                        vint(status), vint(at),     vstr(uuid, NULL)};
  struct cx__exec_result res;
  int rc = exec(s, &q_NODE_STATUS, p, 6, NULL, NULL, &res, err);
  if (rc == 0 && res.affected == 0) {
    cx_err_set(err, "node \"%.64s\": not found", uuid);
    rc = CX_ENOTFOUND;
  }
  return rc;
}

int cx_store_node_find(struct cx_store *s, const char *uuid,
                       struct cx_node *out, char *err)
{
  memset(out, 0, sizeof *out);
  CHECK("uuid", uuid, 64, 1);
  struct cx__val p = vstr(uuid, NULL);
  return find_one(s, &node_kind, &q_NODE_FIND, &p, 1, out, "node", err);
}

int cx_store_node_search(struct cx_store *s, int status, int page,
                         int page_size, struct cx_node_list *out, char *err)
{
  struct collect k = {0};
  struct one_int o;
  int64_t limit, offset;
  memset(out, 0, sizeof *out);
  page_of(page, page_size, &limit, &offset);
  struct cx__val p[] = {vint(status), vint(status), vint(limit), vint(offset)};
  int rc = query_int(s, &q_NODE_COUNT, p, 2, &o, err);
  if (rc == 0)
    rc = list_query(s, &node_kind, &q_NODE_SEARCH, p, 4, &k, err);
  if (rc != 0)
    return rc;
  out->items = (struct cx_node *)k.items;
  out->n = k.n;
  out->total = o.v;
  return 0;
}

int cx_store_node_delete(struct cx_store *s, const char *uuid, char *err)
{
  CHECK("uuid", uuid, 64, 1);
  struct cx__val p = vstr(uuid, NULL);
  struct cx__exec_result res;
  int rc = exec(s, &q_NODE_DELETE, &p, 1, NULL, NULL, &res, err);
  if (rc == 0 && res.affected == 0) {
    cx_err_set(err, "node \"%.64s\": not found", uuid);
    rc = CX_ENOTFOUND;
  }
  return rc;
}

/* ---- users and tokens -------------------------------------------------- */

void cx_user_clear(struct cx_user *u)
{
  if (u == NULL)
    return;
  cx_free(u->username);
  cx_free(u->password_hash);
  cx_free(u->email);
  cx_free(u->feishu_id);
  cx_free(u->role);
  cx_free(u->mobile);
  cx_free(u->dingtalk_id);
  cx_free(u->wecom_id);
  cx_free(u->slack_id);
  memset(u, 0, sizeof *u);
}

static void user_clear_v(void *p)
{
  cx_user_clear(p);
}

void cx_user_list_free(struct cx_user_list *l)
{
  if (l == NULL)
    return;
  free_items(l->items, l->n, sizeof *l->items, user_clear_v);
  memset(l, 0, sizeof *l);
}

static int user_from_row(void *item, const struct cx__val *c, int n)
{
  struct cx_user *u = item;
  int oom = 0;
  if (n != 12)
    return -EIO;
  u->id = cx__col_int(&c[0]);
  u->username = cx__col_str(&c[1], &oom);
  u->password_hash = cx__col_str(&c[2], &oom);
  u->email = cx__col_str(&c[3], &oom);
  u->feishu_id = cx__col_str(&c[4], &oom);
  u->role = cx__col_str(&c[5], &oom);
  u->created = cx__col_int(&c[6]);
  u->updated = cx__col_int(&c[7]);
  u->mobile = cx__col_str(&c[8], &oom);
  u->dingtalk_id = cx__col_str(&c[9], &oom);
  u->wecom_id = cx__col_str(&c[10], &oom);
  u->slack_id = cx__col_str(&c[11], &oom);
  return oom ? -ENOMEM : 0;
}

static const struct kind user_kind = {sizeof(struct cx_user), user_from_row,
                                      user_clear_v};

static int user_check(const struct cx_user *u, char *err)
{
  CHECK("username", u->username, 64, 1);
  CHECK("password_hash", u->password_hash, 255, 1);
  CHECK("email", u->email, 255, 0);
  CHECK("feishu_id", u->feishu_id, 128, 0);
  CHECK("role", u->role, 16, 1);
  CHECK("mobile", u->mobile, 32, 0);
  CHECK("dingtalk_id", u->dingtalk_id, 128, 0);
  CHECK("wecom_id", u->wecom_id, 128, 0);
  CHECK("slack_id", u->slack_id, 64, 0);
  return 0;
}

int cx_store_user_create(struct cx_store *s, struct cx_user *u, char *err)
{
  int rc = user_check(u, err);
  if (rc != 0)
    return rc;
  int64_t now = cx_wall_s();
  struct cx__val p[] = {vstr(u->username, NULL),
                        vstr(u->password_hash, NULL),
                        vstr(u->email, ""),
                        vstr(u->feishu_id, ""),
                        vstr(u->role, NULL),
                        vint(now),
                        vint(now),
                        vstr(u->mobile, ""),
                        vstr(u->dingtalk_id, ""),
                        vstr(u->wecom_id, ""),
                        vstr(u->slack_id, "")};
  struct cx__exec_result res;
  rc = exec(s, &q_USER_INSERT, p, 11, NULL, NULL, &res, err);
  name_taken(rc, "username", u->username, err);
  if (rc != 0)
    return rc;
  u->id = res.insert_id;
  u->created = u->updated = now;
  return 0;
}

int cx_store_user_update(struct cx_store *s, struct cx_user *u, char *err)
{
  int rc = user_check(u, err);
  if (rc != 0)
    return rc;
  int64_t now = cx_wall_s();
  struct cx__val p[] = {vstr(u->username, NULL),
                        vstr(u->password_hash, NULL),
                        vstr(u->email, ""),
                        vstr(u->feishu_id, ""),
                        vstr(u->role, NULL),
                        vint(now),
                        vstr(u->mobile, ""),
                        vstr(u->dingtalk_id, ""),
                        vstr(u->wecom_id, ""),
                        vstr(u->slack_id, ""),
                        vint(u->id)};
  struct cx__exec_result res;
  rc = exec(s, &q_USER_UPDATE, p, 11, NULL, NULL, &res, err);
  name_taken(rc, "username", u->username, err);
  if (rc == 0)
    rc = not_found(res.affected, "user", u->id, err);
  if (rc == 0)
    u->updated = now;
  return rc;
}

int cx_store_user_delete(struct cx_store *s, int64_t id, char *err)
{
  struct cx__val p = vint(id);
  struct cx__exec_result res;
  /* Tokens first: a user without a row can then never authenticate even
   * if the second statement fails. */
  int rc = exec(s, &q_USER_TOKENS_DELETE, &p, 1, NULL, NULL, NULL, err);
  if (rc == 0)
    rc = exec(s, &q_USER_DELETE, &p, 1, NULL, NULL, &res, err);
  return rc != 0 ? rc : not_found(res.affected, "user", id, err);
}

int cx_store_user_find(struct cx_store *s, int64_t id, struct cx_user *out,
                       char *err)
{
  struct cx__val p = vint(id);
  return find_one(s, &user_kind, &q_USER_FIND, &p, 1, out, "user", err);
}

int cx_store_user_find_by_name(struct cx_store *s, const char *username,
                               struct cx_user *out, char *err)
{
  memset(out, 0, sizeof *out);
  CHECK("username", username, 64, 1);
  struct cx__val p = vstr(username, NULL);
  return find_one(s, &user_kind, &q_USER_FIND_NAME, &p, 1, out, "user", err);
}

int cx_store_user_search(struct cx_store *s, const char *name, int page,
                         int page_size, struct cx_user_list *out, char *err)
{
  struct collect k = {0};
  struct one_int o;
  int64_t limit, offset;
  char *pat = NULL;
  memset(out, 0, sizeof *out);
  CHECK("name", name, 0, 0);
  if (name != NULL && name[0] != '\0') {
    pat = like_pattern(name);
    if (pat == NULL)
      return -ENOMEM;
  }
  page_of(page, page_size, &limit, &offset);
  struct cx__val p[] = {vstr(pat, NULL), vstr(pat, NULL), vint(limit),
                        vint(offset)};
  int rc = query_int(s, &q_USER_COUNT, p, 2, &o, err);
  if (rc == 0)
    rc = list_query(s, &user_kind, &q_USER_SEARCH, p, 4, &k, err);
  cx_free(pat);
  if (rc != 0)
    return rc;
  out->items = (struct cx_user *)k.items;
  out->n = k.n;
  out->total = o.v;
  return 0;
}

int cx_store_user_count(struct cx_store *s, int64_t *n, char *err)
{
  struct one_int o;
  struct cx__val p[] = {vnull(), vnull()};
  int rc = query_int(s, &q_USER_COUNT, p, 2, &o, err);
  if (rc == 0)
    *n = o.v;
  return rc;
}

static int token_hash_of(const char *token, char hash[65], char *err)
{
  if (token == NULL || token[0] == '\0' || strlen(token) > 1024) {
    cx_err_set(err, "token: must be 1..1024 bytes");
    return CX_EPARSE;
  }
  return cx__token_hash(token, hash);
}

/* The kinds of token: a login's "session", a script's "api", the first
 * admin's "initial" (revoked with a password change). */
static int token_kind_ok(const char *kind, char *err)
{
  if (kind != NULL &&
      (strcmp(kind, "session") == 0 || strcmp(kind, "api") == 0 ||
       strcmp(kind, "initial") == 0))
    return 0;
  cx_err_set(err, "kind: must be session, api or initial");
  return CX_EPARSE;
}

int cx_store_token_create(struct cx_store *s, const char *token,
                          int64_t user_id, const char *kind, int64_t expires,
                          char *err)
{
  char hash[65];
  int rc = token_hash_of(token, hash, err);
  if (rc != 0)
    return rc;
  if ((rc = token_kind_ok(kind, err)) != 0)
    return rc;
  struct cx__val p[] = {vstr(hash, NULL), vint(user_id), vstr(kind, NULL),
                        vint(expires), vint(cx_wall_s())};
  return exec(s, &q_TOKEN_INSERT, p, 5, NULL, NULL, NULL, err);
}

static int token_row(void *ctx, const struct cx__val *c, int n)
{
  struct cx_token *t = ctx;
  if (n != 5)
    return -EIO;
  t->id = cx__col_int(&c[0]);
  t->user_id = cx__col_int(&c[1]);
  size_t len = c[2].type == CX__V_TEXT ? c[2].len : 0;
  if (len >= sizeof t->kind)
    len = sizeof t->kind - 1;
  if (len > 0)
    memcpy(t->kind, c[2].s, len);
  t->kind[len] = '\0';
  t->expires = cx__col_int(&c[3]);
  t->created = cx__col_int(&c[4]);
  return 0;
}

int cx_store_token_lookup(struct cx_store *s, const char *token, int64_t now,
                          struct cx_token *out, char *err)
{
  char hash[65];
  memset(out, 0, sizeof *out);
  int rc = token_hash_of(token, hash, err);
  if (rc != 0)
    return rc;
  struct cx__val p = vstr(hash, NULL);
  rc = exec(s, &q_TOKEN_FIND, &p, 1, token_row, out, NULL, err);
  if (rc != 0)
    return rc;
  if (out->id == 0 || (out->expires > 0 && out->expires <= now)) {
    memset(out, 0, sizeof *out);
    cx_err_set(err, "token: unknown or expired");
    return CX_ENOTFOUND;
  }
  return 0;
}

int cx_store_token_delete(struct cx_store *s, const char *token, char *err)
{
  char hash[65];
  int rc = token_hash_of(token, hash, err);
  if (rc != 0)
    return rc;
  struct cx__val p = vstr(hash, NULL);
  struct cx__exec_result res;
  rc = exec(s, &q_TOKEN_DELETE, &p, 1, NULL, NULL, &res, err);
  if (rc == 0 && res.affected == 0) {
    cx_err_set(err, "token: not found");
    rc = CX_ENOTFOUND;
  }
  return rc;
}

int cx_store_token_delete_user(struct cx_store *s, int64_t user_id,
                               const char *kind, const char *keep_token,
                               int64_t *deleted, char *err)
{
  char hash[65];
  int rc = 0;
  if (deleted != NULL)
    *deleted = 0;
  if (kind != NULL && (rc = token_kind_ok(kind, err)) != 0)
    return rc;
  if (keep_token != NULL && (rc = token_hash_of(keep_token, hash, err)) != 0)
    return rc;
  /* A NULL kind or keep_token binds SQL NULL: that condition holds. */
  struct cx__val k = vstr(kind, NULL);
  struct cx__val h = vstr(keep_token != NULL ? hash : NULL, NULL);
  struct cx__val p[] = {vint(user_id), k, k, h, h};
  struct cx__exec_result res;
  rc = exec(s, &q_TOKEN_DELETE_USER, p, 5, NULL, NULL, &res, err);
  if (rc == 0 && deleted != NULL)
    *deleted = res.affected;
  return rc;
}

/* A token's row holds no pointer: nothing to clear. */
static void token_clear_v(void *p)
{
  (void)p;
}

static const struct kind token_kind = {sizeof(struct cx_token), token_row,
                                       token_clear_v};

int cx_store_token_find(struct cx_store *s, int64_t id, struct cx_token *out,
                        char *err)
{
  struct cx__val p = vint(id);
  return find_one(s, &token_kind, &q_TOKEN_BY_ID, &p, 1, out, "token", err);
}

int cx_store_token_delete_id(struct cx_store *s, int64_t id, char *err)
{
  struct cx__val p = vint(id);
  struct cx__exec_result res;
  int rc = exec(s, &q_TOKEN_DELETE_ID, &p, 1, NULL, NULL, &res, err);
  return rc != 0 ? rc : not_found(res.affected, "token", id, err);
}

int cx_store_token_search(struct cx_store *s, int64_t user_id, int64_t now,
                          int page, int page_size, struct cx_token_list *out,
                          char *err)
{
  struct collect k = {0};
  struct one_int o;
  int64_t limit, offset;
  memset(out, 0, sizeof *out);
  page_of(page, page_size, &limit, &offset);
  struct cx__val p[] = {vint(user_id), vint(user_id), vint(now), vint(limit),
                        vint(offset)};
  int rc = query_int(s, &q_TOKEN_COUNT, p, 3, &o, err);
  if (rc == 0)
    rc = list_query(s, &token_kind, &q_TOKEN_SEARCH, p, 5, &k, err);
  if (rc != 0)
    return rc;
  out->items = (struct cx_token *)k.items;
  out->n = k.n;
  out->total = o.v;
  return 0;
}

void cx_token_list_free(struct cx_token_list *l)
{
  if (l == NULL)
    return;
  cx_free(l->items);
  memset(l, 0, sizeof *l);
}

int cx_store_token_purge(struct cx_store *s, int64_t now, int64_t *deleted,
                         char *err)
{
  struct cx__val p = vint(now);
  struct cx__exec_result res;
  int rc = exec(s, &q_TOKEN_PURGE, &p, 1, NULL, NULL, &res, err);
  if (rc == 0 && deleted != NULL)
    *deleted = res.affected;
  return rc;
}

/* ---- audit log --------------------------------------------------------- */

void cx_audit_clear(struct cx_audit *a)
{
  if (a == NULL)
    return;
  char **f[] = {&a->username, &a->addr,   &a->kind,
                &a->target,   &a->before, &a->after};
  for (size_t i = 0; i < CX_ARRAY_LEN(f); i++)
    cx_free(*f[i]);
  memset(a, 0, sizeof *a);
}

static void audit_clear_v(void *p)
{
  cx_audit_clear(p);
}

void cx_audit_list_free(struct cx_audit_list *l)
{
  if (l == NULL)
    return;
  free_items(l->items, l->n, sizeof *l->items, audit_clear_v);
  memset(l, 0, sizeof *l);
}

static int audit_from_row(void *item, const struct cx__val *c, int n)
{
  struct cx_audit *a = item;
  int oom = 0;
  if (n != 9)
    return -EIO;
  a->id = cx__col_int(&c[0]);
  a->at = cx__col_int(&c[1]);
  a->user_id = cx__col_int(&c[2]);
  a->username = cx__col_str(&c[3], &oom);
  a->addr = cx__col_str(&c[4], &oom);
  a->kind = cx__col_str(&c[5], &oom);
  a->target = cx__col_str(&c[6], &oom);
  a->before = cx__col_str(&c[7], &oom);
  a->after = cx__col_str(&c[8], &oom);
  return oom ? -ENOMEM : 0;
}

static const struct kind audit_kind = {sizeof(struct cx_audit), audit_from_row,
                                       audit_clear_v};

/* kind: 1..32 of [a-z0-9._] (the column is ASCII). */
static int audit_kind_ok(const char *k)
{
  size_t n = k ? strlen(k) : 0;
  if (n == 0 || n > 32)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') ||
          k[i] == '.' || k[i] == '_'))
      return 0;
  return 1;
}

int cx_store_audit_add(struct cx_store *s, struct cx_audit *a, char *err)
{
  CHECK("username", a->username, 256, 0);
  CHECK("addr", a->addr, 64, 0);
  CHECK("target", a->target, 255, 0);
  CHECK("before", a->before, 0, 0);
  CHECK("after", a->after, 0, 0);
  if (!audit_kind_ok(a->kind)) {
    cx_err_set(err, "kind: 1..32 of a-z, 0-9, '.' and '_'");
    return CX_EPARSE;
  }
  if (a->at == 0)
    a->at = cx_wall_ms();
  struct cx__val p[] = {vint(a->at),           vint(a->user_id),
                        vstr(a->username, ""), vstr(a->addr, ""),
                        vstr(a->kind, NULL),   vstr(a->target, ""),
                        vstr(a->before, ""),   vstr(a->after, "")};
  struct cx__exec_result res;
  int rc = exec(s, &q_AUDIT_INSERT, p, 8, NULL, NULL, &res, err);
  if (rc == 0)
    a->id = res.insert_id;
  return rc;
}

int cx_store_audit_delete(struct cx_store *s, int64_t id, char *err)
{
  struct cx__val p = vint(id);
  struct cx__exec_result res;
  int rc = exec(s, &q_AUDIT_DELETE, &p, 1, NULL, NULL, &res, err);
  return rc != 0 ? rc : not_found(res.affected, "audit row", id, err);
}

int cx_store_audit_search(struct cx_store *s, const struct cx_audit_filter *f,
                          struct cx_audit_list *out, char *err)
{
  struct cx__val p[6];
  struct collect k = {0};
  struct one_int o;
  struct cx_buf pat = {0};
  unsigned mask = 0;
  int np = 0, rc;
  int64_t limit, offset;
  memset(out, 0, sizeof *out);
  CHECK("username", f->username, 256, 0);
  CHECK("kind", f->kind, 32, 0);
  if (f->username != NULL) {
    mask |= 1;
    p[np++] = vstr(f->username, NULL);
  }
  if (f->kind != NULL) {
    /* Exact, or a prefix when it ends in '.'; LIKE's metacharacters
     * escaped either way. */
    for (const char *c = f->kind; *c; c++) {
      if (*c == '%' || *c == '_' || *c == '!')
        cx_buf_puts(&pat, "!");
      cx_buf_append(&pat, c, 1);
    }
    size_t kl = strlen(f->kind);
    if (kl > 0 && f->kind[kl - 1] == '.')
      cx_buf_puts(&pat, "%");
    if (cx_buf_failed(&pat))
      return -ENOMEM;
    mask |= 2;
    p[np++] = vstr(pat.data ? pat.data : "", NULL);
  }
  p[np++] = vint(f->from > 0 ? f->from : INT64_MIN);
  p[np++] = vint(f->to > 0 ? f->to : INT64_MAX);
  rc =
      query_int(s, search_stmt(Q_AUDIT_SEARCH + 4 + (int)mask), p, np, &o, err);
  if (rc != 0)
    goto out;
  out->total = o.v;
  page_of(f->page, f->page_size, &limit, &offset);
  p[np++] = vint(limit);
  p[np++] = vint(offset);
  rc = list_query(s, &audit_kind, search_stmt(Q_AUDIT_SEARCH + (int)mask), p,
                  np, &k, err);
  if (rc == 0) {
    out->items = (struct cx_audit *)k.items;
    out->n = k.n;
  }
out:
  cx_buf_free(&pat);
  return rc;
}

int cx_store_audit_purge(struct cx_store *s, int days, int64_t now_ms,
                         int64_t max_rows, int64_t *deleted, char *err)
{
  int64_t total = 0;
  if (days < 0 || days > 100000) {
    cx_err_set(err, "days: must be 0..100000");
    return CX_EPARSE;
  }
  int64_t cutoff = now_ms - (int64_t)days * 86400 * 1000;
  int rc = purge_batches(s, &q_AUDIT_PURGE, cutoff, max_rows, &total, err);
  if (deleted != NULL)
    *deleted = total;
  return rc;
}
