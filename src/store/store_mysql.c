/*
 * store: the MySQL/MariaDB back-end, on MariaDB Connector/C.
 *
 * A small pool (url option pool=, default 4) of connections, each used by
 * one thread at a time; each connection keeps its own prepared statements
 * (one per statement id, prepared on first use). Connections are made
 * lazily and remade after a loss: the server restarted, a network cut, a
 * KILL. What happens to the statement then depends on where it failed:
 *
 *   - connecting or preparing: nothing was sent, so the statement runs on
 *     a fresh connection (once);
 *   - executing or fetching: the statement is re-run once on a fresh
 *     connection only if it is marked CX__Q_RETRY (store.c says which and
 *     why); otherwise the caller gets CX_EUNAVAIL "may have applied".
 *     Before a non-retryable statement on a connection idle for a while,
 *     the connection is pinged first, so a server restart between calls
 *     does not turn into an "unknown outcome".
 *
 * Sessions run with utf8mb4, CLIENT_FOUND_ROWS (affected rows = matched
 * rows, so an UPDATE that changes nothing still says "found") and a strict
 * sql_mode (too-long or invalid values are errors, never silently cut).
 * mysql_library_init runs once (pthread_once) before the first
 * connection. Passwords are only handed to mysql_real_connect: every
 * message names user@host:port, never the password.
 */
#include "store/store-int.h"

#include <errmsg.h>
#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define MAX_PARAMS 48 /* a job update binds 33 */
#define MAX_COLS 48   /* a job row has 33 */
#define POOL_WAIT_S 30
#define PING_IDLE_US (1000 * 1000)
/* Reserved statement ids (after store.c's, before CX__STMT_MAX - 1 which
 * is the ping of the SQLite back-end). */
#define Q_MIG_VERSION (CX__STMT_MAX - 3)
#define Q_MIG_INSERT (CX__STMT_MAX - 2)

struct myconn {
  MYSQL *h; /* NULL: not connected */
  MYSQL_STMT *st[CX__STMT_MAX];
  int busy;
  cx_mono last_used;
};

struct my {
  struct cx__url u; /* our own copy (holds the password) */
  pthread_mutex_t lock;
  pthread_cond_t freed;
  int n;
  struct myconn *conns;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;

static void lib_init(void)
{
  lib_rc = mysql_library_init(0, NULL, NULL);
}

/* ---- errors ------------------------------------------------------------ */

static int is_lost(unsigned e)
{
  switch (e) {
  case CR_SERVER_GONE_ERROR:    /* 2006 */
  case CR_SERVER_LOST:          /* 2013 */
  case CR_SERVER_LOST_EXTENDED: /* 2055 */
  case CR_CONNECTION_ERROR:     /* 2002 */
  case CR_CONN_HOST_ERROR:      /* 2003 */
  case ER_CONNECTION_KILLED:    /* 1927 */
  case ER_SERVER_SHUTDOWN:      /* 1053 */
  case ER_QUERY_INTERRUPTED:    /* 1317 */
  /* An INSERT ... SELECT (a claim, a missed range) whose connection is
   * killed while InnoDB reads the auto-increment value fails with this
   * instead; the connection is gone all the same. */
  case ER_AUTOINC_READ_FAILED: /* 1467 */
    return 1;
  default:
    return 0;
  }
}

/* Maps a server/client error of a statement. */
static int map_error(unsigned e, const char *msg, char *err)
{
  cx_err_set(err, "mysql: %s (%u)", msg, e);
  switch (e) {
  case ER_DUP_ENTRY:
    return CX_EEXISTS;
  case ER_DATA_TOO_LONG:
  case ER_NET_PACKET_TOO_LARGE:
  case CR_NET_PACKET_TOO_LARGE:
    return CX_ETOOBIG;
  case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
  case ER_BAD_NULL_ERROR:
    return CX_EPARSE;
  case ER_LOCK_WAIT_TIMEOUT:
  case ER_LOCK_DEADLOCK:
    return CX_EUNAVAIL;
  case CR_OUT_OF_MEMORY:
    return -ENOMEM;
  default:
    return is_lost(e) ? CX_EUNAVAIL : -EIO;
  }
}

/* ---- connections ------------------------------------------------------- */

static void conn_drop(struct myconn *c)
{
  for (int i = 0; i < CX__STMT_MAX; i++) {
    if (c->st[i] != NULL)
      mysql_stmt_close(c->st[i]);
    c->st[i] = NULL;
  }
  if (c->h != NULL)
    mysql_close(c->h);
  c->h = NULL;
}

static int conn_open(struct my *m, struct myconn *c, char *err)
{
  const struct cx__url *u = &m->u;
  unsigned ct = (unsigned)u->connect_timeout, rt = (unsigned)u->read_timeout,
           wt = (unsigned)u->write_timeout;
  my_bool yes = 1;
  int rc = 0;
  c->h = mysql_init(NULL);
  if (c->h == NULL) {
    cx_err_set(err, "mysql: out of memory");
    return -ENOMEM;
  }
  mysql_options(c->h, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
  mysql_options(c->h, MYSQL_OPT_READ_TIMEOUT, &rt);
  mysql_options(c->h, MYSQL_OPT_WRITE_TIMEOUT, &wt);
  mysql_options(c->h, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  mysql_options(c->h, MYSQL_INIT_COMMAND,
                "SET SESSION sql_mode = 'STRICT_ALL_TABLES,"
                "NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO'");
  if (u->tls >= 1)
    mysql_options(c->h, MYSQL_OPT_SSL_ENFORCE, &yes);
  if (u->tls == 2)
    mysql_options(c->h, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &yes);
  if (u->ca != NULL)
    mysql_options(c->h, MYSQL_OPT_SSL_CA, u->ca);
  if (u->cert != NULL)
    mysql_options(c->h, MYSQL_OPT_SSL_CERT, u->cert);
  if (u->key != NULL)
    mysql_options(c->h, MYSQL_OPT_SSL_KEY, u->key);
  if (mysql_real_connect(c->h, u->host, u->user, u->pass ? u->pass : "", u->db,
                         u->port, NULL, CLIENT_FOUND_ROWS) == NULL) {
    unsigned e = mysql_errno(c->h);
    const char *who = u->user ? u->user : "";
    if (e == ER_ACCESS_DENIED_ERROR || e == ER_DBACCESS_DENIED_ERROR) {
      cx_err_set(err,
                 "mysql: access denied for user \"%s\" to database \"%s\" "
                 "on %s:%u: check user name, password and grants (%u)",
                 who, u->db, u->host, u->port, e);
      rc = CX_EAUTH;
    } else if (e == ER_BAD_DB_ERROR) {
      cx_err_set(err, "mysql: database \"%s\" does not exist on %s:%u", u->db,
                 u->host, u->port);
      rc = CX_EUNAVAIL;
    } else {
      /* mysql_error never contains the password. */
      cx_err_set(err, "mysql: cannot connect as \"%s\" to %s:%u: %s (%u)", who,
                 u->host, u->port, mysql_error(c->h), e);
      rc = CX_EUNAVAIL;
    }
    mysql_close(c->h);
    c->h = NULL;
    return rc;
  }
  /* Do not rely on the library alone: some versions fall back to plain
   * text when the server offers no TLS even with SSL_ENFORCE set. */
  if (u->tls >= 1 && mysql_get_ssl_cipher(c->h) == NULL) {
    cx_err_set(err,
               "mysql: tls=%s but the connection to %s:%u is not "
               "encrypted (does the server have TLS enabled?)",
               u->tls == 2 ? "verify" : "required", u->host, u->port);
    mysql_close(c->h);
    c->h = NULL;
    return CX_EUNAVAIL;
  }
  return 0;
}

static int pool_get(struct my *m, struct myconn **out, char *err)
{
  cx_mono until = cx_mono_now() + (cx_mono)POOL_WAIT_S * 1000000;
  pthread_mutex_lock(&m->lock);
  for (;;) {
    struct myconn *pick = NULL;
    /* Prefer a connected idle connection. */
    for (int i = 0; i < m->n; i++) {
      if (m->conns[i].busy)
        continue;
      if (pick == NULL || (pick->h == NULL && m->conns[i].h != NULL))
        pick = &m->conns[i];
    }
    if (pick != NULL) {
      pick->busy = 1;
      pthread_mutex_unlock(&m->lock);
      *out = pick;
      return 0;
    }
    if (cx_mono_now() >= until) {
      pthread_mutex_unlock(&m->lock);
      cx_err_set(err, "mysql: all %d connections busy for %d s", m->n,
                 POOL_WAIT_S);
      return CX_EUNAVAIL;
    }
    cx_cond_wait_until(&m->freed, &m->lock, until);
  }
}

static void pool_put(struct my *m, struct myconn *c)
{
  c->last_used = cx_mono_now();
  pthread_mutex_lock(&m->lock);
  c->busy = 0;
  pthread_cond_signal(&m->freed);
  pthread_mutex_unlock(&m->lock);
}

/* ---- running one statement on one connection --------------------------- */

/* Where a failure happened: before anything reached the server (safe to
 * redo), or after (only CX__Q_RETRY statements may be redone). */
enum { AT_SEND_NOTHING = 0, AT_SENT = 1 };

struct outcome {
  int rc;
  unsigned e; /* the MySQL error, 0 if none */
  int at;
};

static void fail(struct outcome *o, unsigned e, const char *msg, int at,
                 char *err)
{
  o->e = e;
  o->at = at;
  o->rc = map_error(e, msg, err);
}

static MYSQL_STMT *prepared(struct myconn *c, int id, const char *sql,
                            struct outcome *o, char *err)
{
  MYSQL_STMT *st = c->st[id];
  if (st != NULL)
    return st;
  st = mysql_stmt_init(c->h);
  if (st == NULL) {
    fail(o, CR_OUT_OF_MEMORY, "out of memory", AT_SEND_NOTHING, err);
    return NULL;
  }
  if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
    fail(o, mysql_stmt_errno(st), mysql_stmt_error(st), AT_SEND_NOTHING, err);
    mysql_stmt_close(st);
    return NULL;
  }
  my_bool yes = 1;
  mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &yes);
  c->st[id] = st;
  return st;
}

static int is_int_type(enum enum_field_types t)
{
  return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT ||
         t == MYSQL_TYPE_LONG || t == MYSQL_TYPE_LONGLONG ||
         t == MYSQL_TYPE_INT24 || t == MYSQL_TYPE_YEAR;
}

/* Buffers for one result set. */
struct rows {
  MYSQL_BIND b[MAX_COLS];
  int64_t ints[MAX_COLS];
  char *bufs[MAX_COLS];
  unsigned long lens[MAX_COLS];
  my_bool nulls[MAX_COLS];
  my_bool errs[MAX_COLS];
};

static void rows_free(struct rows *r, int n)
{
  for (int i = 0; i < n; i++)
    cx_free(r->bufs[i]);
}

/* Fetches every row of an executed statement into fn. The whole result is
 * first stored client-side, so a connection lost while reading happens
 * before any row reached fn (and the read can be redone). */
static void fetch_all(MYSQL_STMT *st, MYSQL_RES *meta, cx__row_fn fn, void *ctx,
                      struct outcome *o, char *err)
{
  struct rows r;
  struct cx__val cols[MAX_COLS];
  int n = (int)mysql_num_fields(meta);
  MYSQL_FIELD *f = mysql_fetch_fields(meta);
  memset(&r, 0, sizeof r);
  if (n > MAX_COLS) {
    fail(o, CR_UNKNOWN_ERROR, "too many columns", AT_SENT, err);
    return;
  }
  if (mysql_stmt_store_result(st) != 0) {
    fail(o, mysql_stmt_errno(st), mysql_stmt_error(st), AT_SENT, err);
    return;
  }
  for (int i = 0; i < n; i++) {
    r.b[i].length = &r.lens[i];
    r.b[i].is_null = &r.nulls[i];
    r.b[i].error = &r.errs[i];
    if (is_int_type(f[i].type)) {
      r.b[i].buffer_type = MYSQL_TYPE_LONGLONG;
      r.b[i].buffer = &r.ints[i];
      r.b[i].buffer_length = sizeof r.ints[i];
    } else {
      size_t cap = (size_t)f[i].max_length + 1;
      r.bufs[i] = cx_malloc(cap);
      if (r.bufs[i] == NULL) {
        o->rc = -ENOMEM;
        goto out;
      }
      r.b[i].buffer_type = MYSQL_TYPE_STRING;
      r.b[i].buffer = r.bufs[i];
      r.b[i].buffer_length = cap;
    }
  }
  if (mysql_stmt_bind_result(st, r.b) != 0) {
    fail(o, mysql_stmt_errno(st), mysql_stmt_error(st), AT_SENT, err);
    goto out;
  }
  for (;;) {
    int fr = mysql_stmt_fetch(st);
    if (fr == MYSQL_NO_DATA)
      break;
    if (fr == 1) {
      fail(o, mysql_stmt_errno(st), mysql_stmt_error(st), AT_SENT, err);
      goto out;
    }
    if (fr == MYSQL_DATA_TRUNCATED) {
      /* Cannot happen with max_length-sized buffers; refuse to guess. */
      fail(o, CR_UNKNOWN_ERROR, "column data truncated", AT_SENT, err);
      goto out;
    }
    for (int i = 0; i < n; i++) {
      memset(&cols[i], 0, sizeof cols[i]);
      if (r.nulls[i]) {
        cols[i].type = CX__V_NULL;
      } else if (r.bufs[i] == NULL) {
        cols[i].type = CX__V_INT;
        cols[i].i = r.ints[i];
      } else {
        cols[i].type = CX__V_TEXT;
        r.bufs[i][r.lens[i]] = '\0';
        cols[i].s = r.bufs[i];
        cols[i].len = r.lens[i];
      }
    }
    if (fn != NULL) {
      o->rc = fn(ctx, cols, n);
      if (o->rc != 0)
        goto out;
    }
  }
out:
  rows_free(&r, n);
}

static void run_stmt(struct myconn *c, int id, const char *sql,
                     const struct cx__val *p, int np, cx__row_fn fn, void *ctx,
                     struct cx__exec_result *res, struct outcome *o, char *err)
{
  MYSQL_BIND b[MAX_PARAMS];
  unsigned long lens[MAX_PARAMS];
  memset(o, 0, sizeof *o);
  MYSQL_STMT *st = prepared(c, id, sql, o, err);
  if (st == NULL)
    return;
  if (np > MAX_PARAMS || (unsigned long)np != mysql_stmt_param_count(st)) {
    fail(o, CR_UNKNOWN_ERROR, "parameter count mismatch", AT_SEND_NOTHING, err);
    o->rc = -EINVAL;
    return;
  }
  memset(b, 0, sizeof b);
  for (int i = 0; i < np; i++) {
    if (p[i].type == CX__V_INT) {
      b[i].buffer_type = MYSQL_TYPE_LONGLONG;
      b[i].buffer = (void *)&p[i].i;
    } else if (p[i].type == CX__V_TEXT) {
      b[i].buffer_type = MYSQL_TYPE_STRING;
      b[i].buffer = (void *)p[i].s;
      b[i].buffer_length = p[i].len;
      lens[i] = p[i].len;
      b[i].length = &lens[i];
    } else {
      b[i].buffer_type = MYSQL_TYPE_NULL;
    }
  }
  if (np > 0 && mysql_stmt_bind_param(st, b) != 0) {
    fail(o, mysql_stmt_errno(st), mysql_stmt_error(st), AT_SEND_NOTHING, err);
    return;
  }
  if (mysql_stmt_execute(st) != 0) {
    fail(o, mysql_stmt_errno(st), mysql_stmt_error(st), AT_SENT, err);
    return;
  }
  MYSQL_RES *meta = mysql_stmt_result_metadata(st);
  if (meta != NULL) {
    fetch_all(st, meta, fn, ctx, o, err);
    mysql_free_result(meta);
    mysql_stmt_free_result(st);
    return;
  }
  if (res != NULL) {
    res->affected = (int64_t)mysql_stmt_affected_rows(st);
    res->insert_id = (int64_t)mysql_stmt_insert_id(st);
  }
}

/* Runs a statement with the reconnect policy described at the top. */
static int conn_exec(struct my *m, struct myconn *c, int id, const char *sql,
                     int flags, const struct cx__val *p, int np, cx__row_fn fn,
                     void *ctx, struct cx__exec_result *res, char *err)
{
  struct outcome o;
  for (int attempt = 0;; attempt++) {
    if (c->h != NULL && !(flags & CX__Q_RETRY) &&
        cx_mono_now() - c->last_used > PING_IDLE_US && mysql_ping(c->h) != 0)
      conn_drop(c);
    if (c->h == NULL) {
      int rc = conn_open(m, c, err);
      if (rc != 0)
        return rc;
    }
    run_stmt(c, id, sql, p, np, fn, ctx, res, &o, err);
    c->last_used = cx_mono_now();
    if (o.rc == 0 || !is_lost(o.e))
      return o.rc;
    conn_drop(c);
    int redo = o.at == AT_SEND_NOTHING || (flags & CX__Q_RETRY);
    if (!redo) {
      cx_err_set(err,
                 "mysql: connection lost while writing to %s:%u; the "
                 "write may have been applied",
                 m->u.host, m->u.port);
      return CX_EUNAVAIL;
    }
    if (attempt >= 1)
      return CX_EUNAVAIL;
    CX_LOG(CX_LOG_INFO, "store",
           "mysql: connection to %s:%u lost (%u), "
           "reconnecting",
           m->u.host, m->u.port, o.e);
  }
}

/* ---- the vtable -------------------------------------------------------- */

static char *dup_or_null(const char *s, int *oom)
{
  if (s == NULL)
    return NULL;
  char *d = cx_strdup(s);
  if (d == NULL)
    *oom = 1;
  return d;
}

static int my_open(struct cx_store *s, const struct cx__url *u, char *err)
{
  struct my *m;
  struct myconn *c = NULL;
  int oom = 0, rc;
  pthread_once(&lib_once, lib_init);
  if (lib_rc != 0) {
    cx_err_set(err, "mysql: client library failed to initialise");
    return -EIO;
  }
  m = cx_calloc(1, sizeof *m);
  if (m == NULL)
    return -ENOMEM;
  s->be = m;
  pthread_mutex_init(&m->lock, NULL);
  cx_cond_init_mono(&m->freed);
  m->u = *u;
  m->u.path = NULL;
  m->u.user = dup_or_null(u->user, &oom);
  m->u.pass = dup_or_null(u->pass, &oom);
  m->u.host = dup_or_null(u->host, &oom);
  m->u.db = dup_or_null(u->db, &oom);
  m->u.ca = dup_or_null(u->ca, &oom);
  m->u.cert = dup_or_null(u->cert, &oom);
  m->u.key = dup_or_null(u->key, &oom);
  m->n = u->pool;
  m->conns = cx_calloc((size_t)m->n, sizeof *m->conns);
  if (oom || m->conns == NULL)
    return -ENOMEM;
  /* Connect one now, so a bad URL or password fails at open. */
  rc = pool_get(m, &c, err);
  if (rc != 0)
    return rc;
  rc = conn_open(m, c, err);
  pool_put(m, c);
  return rc;
}

static void my_close(struct cx_store *s)
{
  struct my *m = s->be;
  for (int i = 0; m->conns != NULL && i < m->n; i++)
    conn_drop(&m->conns[i]);
  cx_free(m->conns);
  if (m->u.pass != NULL)
    memset(m->u.pass, 0, strlen(m->u.pass));
  cx__url_free(&m->u);
  pthread_mutex_destroy(&m->lock);
  pthread_cond_destroy(&m->freed);
  cx_free(m);
  s->be = NULL;
}

/* The connection this thread holds in a transaction (cx_store_tx_begin). */
static __thread struct {
  struct my *m;
  struct myconn *c;
} own_tx;

/* A statement inside a transaction on c (a thread's own or a group
 * commit's): no reconnect, no retry (a new connection would be outside
 * it); a lost connection ends it. */
static int tx_exec(struct my *m, struct myconn *c, const struct cx__stmt *q,
                   const char *sql, const struct cx__val *p, int np,
                   cx__row_fn fn, void *ctx, struct cx__exec_result *res,
                   char *err)
{
  struct outcome o;
  if (c->h == NULL) {
    cx_err_set(err, "mysql: connection to %s:%u lost in a transaction",
               m->u.host, m->u.port);
    return CX_EUNAVAIL;
  }
  run_stmt(c, q->id, sql, p, np, fn, ctx, res, &o, err);
  c->last_used = cx_mono_now();
  if (o.rc != 0 && is_lost(o.e)) {
    conn_drop(c);
    cx_err_set(err,
               "mysql: connection to %s:%u lost in a transaction; nothing "
               "of it was committed",
               m->u.host, m->u.port);
    return CX_EUNAVAIL;
  }
  return o.rc;
}

static int my_exec(struct cx_store *s, const struct cx__stmt *q,
                   const struct cx__val *p, int np, cx__row_fn fn, void *ctx,
                   struct cx__exec_result *res, char *err)
{
  struct my *m = s->be;
  struct myconn *c;
  const char *sql = q->sql[CX__MYSQL] ? q->sql[CX__MYSQL] : q->sql[0];
  if (own_tx.m == m)
    return tx_exec(m, own_tx.c, q, sql, p, np, fn, ctx, res, err);
  int rc = pool_get(m, &c, err);
  if (rc != 0)
    return rc;
  rc = conn_exec(m, c, q->id, sql, q->flags, p, np, fn, ctx, res, err);
  pool_put(m, c);
  return rc;
}

static int my_ddl(struct myconn *c, const char *sql, char *err)
{
  if (mysql_real_query(c->h, sql, strlen(sql)) != 0)
    return map_error(mysql_errno(c->h), mysql_error(c->h), err);
  MYSQL_RES *r = mysql_store_result(c->h);
  if (r != NULL)
    mysql_free_result(r);
  return 0;
}

static int lock_row(void *ctx, const struct cx__val *c, int n)
{
  *(int64_t *)ctx = n > 0 && c[0].type == CX__V_INT ? c[0].i : -1;
  return 0;
}

static int my_migrate(struct cx_store *s, const struct cx__migration *mig,
                      int n, int target, int *version, char *err)
{
  struct my *m = s->be;
  struct myconn *c;
  int64_t got = -1, cur = 0;
  int rc = pool_get(m, &c, err);
  if (rc != 0)
    return rc;
  if (c->h == NULL)
    rc = conn_open(m, c, err);
  /* A named lock serialises admins starting at once; the server drops it
   * if this connection dies. */
  if (rc == 0) {
    struct cx__val wait = {CX__V_INT, 60, NULL, 0};
    rc = conn_exec(m, c, Q_MIG_VERSION - 1,
                   "SELECT GET_LOCK('cronix_schema', ?)", 0, &wait, 1, lock_row,
                   &got, NULL, err);
    if (rc == 0 && got != 1) {
      cx_err_set(err, "mysql: schema lock not granted within 60 s");
      rc = CX_EUNAVAIL;
    }
  }
  if (rc != 0)
    goto out;
  rc = my_ddl(c,
              "CREATE TABLE IF NOT EXISTS cronix_schema (version INT NOT NULL"
              " PRIMARY KEY, applied BIGINT NOT NULL) ENGINE=InnoDB",
              err);
  if (rc == 0)
    rc = conn_exec(m, c, Q_MIG_VERSION,
                   "SELECT COALESCE(MAX(version), 0) FROM cronix_schema",
                   CX__Q_RETRY, NULL, 0, lock_row, &cur, NULL, err);
  for (int i = 0; rc == 0 && i < n; i++) {
    if (mig[i].version <= cur || mig[i].version > target)
      continue;
    for (const char *const *q = mig[i].sql[CX__MYSQL]; rc == 0 && *q; q++)
      rc = my_ddl(c, *q, err);
    struct cx__val v[] = {{CX__V_INT, mig[i].version, NULL, 0},
                          {CX__V_INT, cx_wall_s(), NULL, 0}};
    if (rc == 0)
      rc = conn_exec(m, c, Q_MIG_INSERT,
                     "INSERT INTO cronix_schema VALUES (?, ?)", 0, v, 2, NULL,
                     NULL, NULL, err);
    if (rc == 0) {
      CX_LOG(CX_LOG_INFO, "store", "mysql: schema migrated to version %d",
             mig[i].version);
      cur = mig[i].version;
    }
  }
  if (c->h != NULL)
    my_ddl(c, "DO RELEASE_LOCK('cronix_schema')", NULL);
  if (rc == 0)
    *version = (int)cur;
out:
  pool_put(m, c);
  return rc;
}

/* Explicit transactions (the group commit, cx_store_tx_begin) run at READ
 * COMMITTED, so an UPDATE's subquery reads the rows it consults without a
 * shared lock: a run's finish reads its job's alert flag, and under
 * REPEATABLE READ a node stopped inside its group commit kept those job
 * rows locked -- the leader's move of the node's own jobs then waited for
 * it to resume (the chaos run's partition tail). Nothing in a transaction
 * relies on one snapshot across statements (the claim's range check reads
 * the latest committed rows, which is stricter). The missed-range insert,
 * whose check needs InnoDB's locking read, runs outside transactions at
 * the session's REPEATABLE READ. Applies to the next transaction only. */
#define TX_ISOLATION "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"

/* Runs a transaction-control statement; a lost connection is dropped. */
static int tx_control(struct myconn *c, const char *sql, char *err)
{
  if (c->h == NULL)
    return CX_EUNAVAIL;
  int rc = my_ddl(c, sql, err);
  if (rc != 0 && is_lost(mysql_errno(c->h)))
    conn_drop(c);
  return rc;
}

static int my_tx(struct cx_store *s, int op, char *err)
{
  struct my *m = s->be;
  struct myconn *c;
  int rc;
  if (op == CX__TX_BEGIN) {
    if (own_tx.m != NULL) {
      cx_err_set(err, "mysql: a transaction is already open on this thread");
      return -EBUSY;
    }
    if ((rc = pool_get(m, &c, err)) != 0)
      return rc;
    /* As before a non-retryable write: a connection idle for a while is
     * pinged first, and a dead one remade (nothing was sent yet). */
    for (int attempt = 0; attempt < 2; attempt++) {
      if (c->h != NULL && cx_mono_now() - c->last_used > PING_IDLE_US &&
          mysql_ping(c->h) != 0)
        conn_drop(c);
      rc = c->h == NULL ? conn_open(m, c, err) : 0;
      if (rc == 0)
        rc = tx_control(c, TX_ISOLATION, err);
      if (rc == 0)
        rc = tx_control(c, "START TRANSACTION", err);
      if (rc == 0 || c->h != NULL)
        break;
    }
    if (rc != 0) {
      pool_put(m, c);
      return rc;
    }
    own_tx.m = m;
    own_tx.c = c;
    return 0;
  }
  if (own_tx.m != m)
    return -EINVAL;
  c = own_tx.c;
  rc = 0;
  if (op == CX__TX_COMMIT) {
    rc = tx_control(c, "COMMIT", err);
    if (rc != 0 && c->h == NULL) {
      cx_err_set(err,
                 "mysql: connection lost while committing to %s:%u; the "
                 "write may have been applied",
                 m->u.host, m->u.port);
      rc = CX_EUNAVAIL;
    }
  }
  if ((op != CX__TX_COMMIT || rc != 0) && c->h != NULL &&
      tx_control(c, "ROLLBACK", NULL) != 0)
    conn_drop(c);
  own_tx.m = NULL;
  own_tx.c = NULL;
  pool_put(m, c);
  return rc;
}

/* ---- group commit: one transaction on one pooled connection -------------- */

static int my_txn_begin(struct cx_store *s, void **tx, char *err)
{
  struct my *m = s->be;
  struct myconn *c;
  int rc = pool_get(m, &c, err);
  if (rc != 0)
    return rc;
  for (int attempt = 0; attempt < 2; attempt++) {
    /* As conn_exec: a connection idle for a while is checked first, so a
     * server restart between batches costs a reconnect, not a batch. */
    if (c->h != NULL && cx_mono_now() - c->last_used > PING_IDLE_US &&
        mysql_ping(c->h) != 0)
      conn_drop(c);
    if (c->h == NULL && (rc = conn_open(m, c, err)) != 0)
      break;
    rc = my_ddl(c, TX_ISOLATION, err);
    if (rc == 0)
      rc = my_ddl(c, "START TRANSACTION", err);
    if (rc == 0) {
      *tx = c;
      return 0;
    }
    if (!is_lost(mysql_errno(c->h)))
      break;
    conn_drop(c);
  }
  pool_put(m, c);
  return rc;
}

static int my_txn_exec(struct cx_store *s, void *tx, const struct cx__stmt *q,
                       const struct cx__val *p, int np, cx__row_fn fn,
                       void *ctx, struct cx__exec_result *res, char *err)
{
  const char *sql = q->sql[CX__MYSQL] ? q->sql[CX__MYSQL] : q->sql[0];
  return tx_exec(s->be, tx, q, sql, p, np, fn, ctx, res, err);
}

static int my_txn_end(struct cx_store *s, void *tx, int commit, char *err)
{
  struct my *m = s->be;
  struct myconn *c = tx;
  int rc = 0;
  if (c->h == NULL) {
    cx_err_set(err, "mysql: connection lost during the transaction");
    rc = CX_EUNAVAIL;
  } else {
    rc = my_ddl(c, commit ? "COMMIT" : "ROLLBACK", err);
    if (rc != 0 && is_lost(mysql_errno(c->h)))
      conn_drop(c);
    else if (rc != 0 && commit)
      my_ddl(c, "ROLLBACK", NULL);
  }
  c->last_used = cx_mono_now();
  pool_put(m, c);
  return commit ? rc : 0;
}

static int my_ping(struct cx_store *s, char *err)
{
  static const struct cx__stmt q = {
      CX__STMT_MAX - 1, {"SELECT 1", NULL}, CX__Q_RETRY};
  return my_exec(s, &q, NULL, 0, NULL, NULL, NULL, err);
}

const struct cx_store_ops cx__store_mysql_ops = {
    .name = "mysql",
    .dialect = CX__MYSQL,
    .open = my_open,
    .close = my_close,
    .migrate = my_migrate,
    .exec = my_exec,
    .ping = my_ping,
    .tx = my_tx,
    .txn_begin = my_txn_begin,
    .txn_exec = my_txn_exec,
    .txn_end = my_txn_end,
};
