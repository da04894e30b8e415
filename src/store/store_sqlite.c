/*
 * store: the SQLite back-end (standalone mode).
 *
 * One connection, opened SQLITE_OPEN_FULLMUTEX, behind our own mutex: each
 * exec holds it from bind to the last row, so the statement cache (one
 * sqlite3_stmt per statement id) is never shared, and there is exactly one
 * writer. WAL journal (readers in other processes don't block us), a busy
 * timeout for other processes (e.g. `cronix user add` next to a running
 * standalone), synchronous=FULL so an acknowledged run record survives a
 * power cut. No foreign keys: run logs outlive their jobs on purpose, and
 * user deletion removes tokens explicitly (store.c).
 *
 * The writer connection's lock is a ticket lock (first come, first
 * served): the group-commit writer (batch.c) takes it back to back, and a
 * plain mutex let it win every time, so the admin API's writes (a job
 * delete during a burst of runs) waited for tens of seconds. A group
 * commit is one BEGIN IMMEDIATE ... COMMIT on the writer connection; so
 * is a thread's own transaction (cx_store_tx_begin), which holds the
 * ticket until its end and runs all of that thread's statements, reads
 * included, on the writer connection. The two simply take turns.
 *
 * Reads (statements beginning with SELECT) go to READERS more connections,
 * opened at the first read, each behind its own mutex with its own
 * statement cache: WAL lets them read while the main connection writes,
 * so reads (the API's searches, token checks) do not queue behind one
 * another or behind writes. Every write commits before its exec returns,
 * so a read that starts afterwards sees it. A reader that cannot be
 * opened leaves reads on the main connection.
 *
 * Checkpoints (copying the WAL back into the database, with its fsyncs)
 * run on a thread of their own with its own connection, every
 * CKPT_PERIOD_MS (PASSIVE: never waiting for a reader or the writer), not
 * in the commit that happens to cross SQLite's auto-checkpoint size: that
 * commit (a group commit of run claims) used to wait for the whole
 * checkpoint, the tail of a light load's start latency. Durability is
 * unchanged: every commit still fsyncs the WAL (synchronous=FULL); the
 * WAL is checkpointed on close as before.
 */
#include "store/store-int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
#define MAX_COLS 48 /* a job row has 33 */

#define READERS 2
#define CKPT_PERIOD_MS 1000

struct conn {
  sqlite3 *db;
  pthread_mutex_t lock;
  sqlite3_stmt *cache[CX__STMT_MAX];
};

/* First come, first served. */
struct ticket {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned long next, serving;
};

static void ticket_init(struct ticket *t)
{
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  t->next = t->serving = 0;
}

static void ticket_destroy(struct ticket *t)
{
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
}

static void ticket_lock(struct ticket *t)
{
  pthread_mutex_lock(&t->mu);
  unsigned long mine = t->next++;
  while (t->serving != mine)
    pthread_cond_wait(&t->cv, &t->mu);
  pthread_mutex_unlock(&t->mu);
}

static void ticket_unlock(struct ticket *t)
{
  pthread_mutex_lock(&t->mu);
  t->serving++;
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

struct lite {
  sqlite3 *db;
  struct ticket lock;
  sqlite3_stmt *cache[CX__STMT_MAX];
  char *path;
  pthread_once_t rd_once;
  struct conn rd[READERS];
  int nrd; /* readers opened */
  unsigned next;
  /* the checkpointer: its connection, thread, and stop flag under ck_mu */
  sqlite3 *ck_db;
  pthread_t ck_th;
  int ck_init, ck_running, ck_stop;
  pthread_mutex_t ck_mu;
  pthread_cond_t ck_cv;
};

/* Maps an SQLite result code to a Cronix code and message. */
static int lite_error(sqlite3 *db, int rc, const char *what, char *err)
{
  int base = rc & 0xff;
  const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    cx_err_set(err, "sqlite: %s: %s", what, msg);
    return CX_EEXISTS;
  }
  cx_err_set(err, "sqlite: %s: %s", what, msg);
  switch (base) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_CANTOPEN:
  case SQLITE_READONLY:
    return CX_EUNAVAIL;
  case SQLITE_NOMEM:
    return -ENOMEM;
  case SQLITE_TOOBIG:
    return CX_ETOOBIG;
  case SQLITE_FULL:
    return -ENOSPC;
  case SQLITE_CONSTRAINT:
    return CX_EPARSE;
  default:
    return -EIO;
  }
}

static int lite_simple(sqlite3 *db, const char *sql, char *err)
{
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    int e = lite_error(db, sqlite3_extended_errcode(db), "schema", err);
    sqlite3_free(msg);
    return e;
  }
  return 0;
}

static void ckpt_start(struct lite *l);

static int lite_open(struct cx_store *s, const struct cx__url *u, char *err)
{
  struct lite *l = cx_calloc(1, sizeof *l);
  int rc;
  if (l == NULL)
    return -ENOMEM;
  ticket_init(&l->lock);
  pthread_once_t once = PTHREAD_ONCE_INIT;
  l->rd_once = once;
  s->be = l;
  if ((l->path = cx_strdup(u->path)) == NULL)
    return -ENOMEM;
  /* A new database is private from its first byte (it holds users and
   * token hashes); SQLite gives -wal and -shm the database's mode. An
   * existing file or a symlink is left to the open below. */
  int fd =
      strcmp(u->path, ":memory:") == 0
          ? -1
          : open(u->path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 0600);
  if (fd >= 0)
    close(fd);
  rc = sqlite3_open_v2(
      u->path, &l->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
  if (rc != SQLITE_OK) {
    cx_err_set(err, "sqlite: cannot open \"%s\": %s", u->path,
               l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
    return CX_EUNAVAIL;
  }
  sqlite3_extended_result_codes(l->db, 1);
  sqlite3_busy_timeout(l->db, BUSY_TIMEOUT_MS);
  rc = lite_simple(l->db, "PRAGMA journal_mode=WAL", err);
  if (rc == 0)
    rc = lite_simple(l->db, "PRAGMA synchronous=FULL", err);
  if (rc != 0) /* typically "file is not a database" */
    cx_err_set(err, "sqlite: cannot use \"%s\": %s", u->path,
               sqlite3_errmsg(l->db));
  else
    ckpt_start(l);
  return rc;
}

static void *ckpt_main(void *arg)
{
  struct lite *l = arg;
  pthread_mutex_lock(&l->ck_mu);
  while (!l->ck_stop) {
    cx_cond_wait_ms(&l->ck_cv, &l->ck_mu, CKPT_PERIOD_MS);
    if (l->ck_stop)
      break;
    pthread_mutex_unlock(&l->ck_mu);
    sqlite3_wal_checkpoint_v2(l->ck_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                              NULL);
    pthread_mutex_lock(&l->ck_mu);
  }
  pthread_mutex_unlock(&l->ck_mu);
  return NULL;
}

/* Moves checkpoints off the writer (see the top). If the checkpointer
 * cannot start, SQLite's auto-checkpoint stays on. */
static void ckpt_start(struct lite *l)
{
  pthread_mutex_init(&l->ck_mu, NULL);
  cx_cond_init_mono(&l->ck_cv);
  l->ck_init = 1;
  if (strcmp(l->path, ":memory:") == 0 ||
      sqlite3_open_v2(l->path, &l->ck_db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                      NULL) != SQLITE_OK ||
      lite_simple(l->ck_db, "PRAGMA synchronous=FULL", NULL) != 0) {
    sqlite3_close_v2(l->ck_db);
    l->ck_db = NULL;
    return;
  }
  sqlite3_busy_timeout(l->ck_db, BUSY_TIMEOUT_MS);
  if (pthread_create(&l->ck_th, NULL, ckpt_main, l) != 0) {
    sqlite3_close_v2(l->ck_db);
    l->ck_db = NULL;
    return;
  }
  l->ck_running = 1;
  lite_simple(l->db, "PRAGMA wal_autocheckpoint=0", NULL);
}

static void ckpt_stop(struct lite *l)
{
  if (!l->ck_init)
    return;
  if (l->ck_running) {
    pthread_mutex_lock(&l->ck_mu);
    l->ck_stop = 1;
    pthread_cond_broadcast(&l->ck_cv);
    pthread_mutex_unlock(&l->ck_mu);
    pthread_join(l->ck_th, NULL);
    l->ck_running = 0;
  }
  sqlite3_close_v2(l->ck_db);
  l->ck_db = NULL;
  pthread_mutex_destroy(&l->ck_mu);
  pthread_cond_destroy(&l->ck_cv);
}

static void lite_close(struct cx_store *s)
{
  struct lite *l = s->be;
  ckpt_stop(l);
  for (int i = 0; i < CX__STMT_MAX; i++)
    sqlite3_finalize(l->cache[i]);
  sqlite3_close_v2(l->db);
  for (int r = 0; r < l->nrd; r++) {
    for (int i = 0; i < CX__STMT_MAX; i++)
      sqlite3_finalize(l->rd[r].cache[i]);
    sqlite3_close_v2(l->rd[r].db);
    pthread_mutex_destroy(&l->rd[r].lock);
  }
  cx_free(l->path);
  ticket_destroy(&l->lock);
  cx_free(l);
  s->be = NULL;
}

static int lite_migrate(struct cx_store *s, const struct cx__migration *m,
                        int n, int target, int *version, char *err)
{
  struct lite *l = s->be;
  sqlite3_stmt *st = NULL;
  int rc, cur = 0;
  ticket_lock(&l->lock);
  /* BEGIN IMMEDIATE takes the write lock: a second process starting at the
   * same time waits (busy timeout) and then sees the new version. */
  rc = lite_simple(l->db, "BEGIN IMMEDIATE", err);
  if (rc != 0)
    goto out;
  rc = lite_simple(l->db,
                   "CREATE TABLE IF NOT EXISTS cronix_schema (version INTEGER"
                   " PRIMARY KEY, applied INTEGER NOT NULL)",
                   err);
  if (rc != 0)
    goto err;
  if (sqlite3_prepare_v2(l->db,
                         "SELECT COALESCE(MAX(version), 0) FROM "
                         "cronix_schema",
                         -1, &st, NULL) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW) {
    rc = lite_error(l->db, sqlite3_extended_errcode(l->db), "schema", err);
    goto err;
  }
  cur = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  st = NULL;
  for (int i = 0; i < n; i++) {
    if (m[i].version <= cur || m[i].version > target)
      continue;
    for (const char *const *q = m[i].sql[CX__SQLITE]; *q; q++) {
      rc = lite_simple(l->db, *q, err);
      if (rc != 0)
        goto err;
    }
    if (sqlite3_prepare_v2(l->db, "INSERT INTO cronix_schema VALUES (?, ?)", -1,
                           &st, NULL) != SQLITE_OK) {
      rc = lite_error(l->db, sqlite3_extended_errcode(l->db), "schema", err);
      goto err;
    }
    sqlite3_bind_int(st, 1, m[i].version);
    sqlite3_bind_int64(st, 2, cx_wall_s());
    if (sqlite3_step(st) != SQLITE_DONE) {
      rc = lite_error(l->db, sqlite3_extended_errcode(l->db), "schema", err);
      goto err;
    }
    sqlite3_finalize(st);
    st = NULL;
    CX_LOG(CX_LOG_INFO, "store", "sqlite: schema migrated to version %d",
           m[i].version);
    cur = m[i].version;
  }
  rc = lite_simple(l->db, "COMMIT", err);
  if (rc == 0)
    *version = cur;
  goto out;
err:
  sqlite3_finalize(st);
  sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
out:
  ticket_unlock(&l->lock);
  return rc;
}

static int lite_bind(sqlite3_stmt *st, const struct cx__val *p, int np)
{
  int rc = SQLITE_OK;
  for (int i = 0; i < np && rc == SQLITE_OK; i++) {
    switch (p[i].type) {
    case CX__V_INT:
      rc = sqlite3_bind_int64(st, i + 1, p[i].i);
      break;
    case CX__V_TEXT:
      rc = sqlite3_bind_text64(st, i + 1, p[i].s, p[i].len, SQLITE_STATIC,
                               SQLITE_UTF8);
      break;
    default:
      rc = sqlite3_bind_null(st, i + 1);
    }
  }
  return rc;
}

/* The store whose readers open_readers opens (pthread_once passes no
 * argument; the init runs on the calling thread). */
static __thread struct lite *opening;

static void open_readers(void)
{
  struct lite *l = opening;
  for (int i = 0; i < READERS; i++) {
    struct conn *c = &l->rd[i];
    if (sqlite3_open_v2(l->path, &c->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
      CX_LOG(CX_LOG_WARN, "store", "sqlite: no reader connection: %s",
             c->db ? sqlite3_errmsg(c->db) : "out of memory");
      sqlite3_close_v2(c->db);
      c->db = NULL;
      break;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    pthread_mutex_init(&c->lock, NULL);
    l->nrd++;
  }
}

/* The store whose write connection this thread holds in a transaction
 * (cx_store_tx_begin): its statements, reads included, go there without
 * locking again (the lock is already this thread's). */
static __thread struct lite *tx_of;

/* The connection for q: a free reader for a SELECT (else any reader), the
 * main connection for the rest. Returned locked: *rd is the reader's
 * mutex, NULL for the main connection (its ticket lock). Returns 1, or 0
 * when this thread's own transaction holds the main connection already:
 * then every statement, reads included, runs there (so the transaction
 * reads its own writes) and nothing is locked again, which would wait for
 * its own ticket. */
static int pick_conn(struct lite *l, const struct cx__stmt *q, sqlite3 **db,
                     pthread_mutex_t **rd, sqlite3_stmt ***cache)
{
  *db = l->db;
  *rd = NULL;
  *cache = l->cache;
  if (tx_of == l)
    return 0;
  if (strncmp(q->sql[0], "SELECT", 6) == 0) {
    opening = l;
    pthread_once(&l->rd_once, open_readers);
    if (l->nrd > 0) {
      unsigned start = __atomic_fetch_add(&l->next, 1, __ATOMIC_RELAXED);
      struct conn *c = &l->rd[start % (unsigned)l->nrd];
      for (int i = 0; i < l->nrd; i++) {
        struct conn *t = &l->rd[(start + (unsigned)i) % (unsigned)l->nrd];
        if (pthread_mutex_trylock(&t->lock) == 0) {
          *db = t->db;
          *rd = &t->lock;
          *cache = t->cache;
          return 1;
        }
      }
      *db = c->db;
      *rd = &c->lock;
      *cache = c->cache;
      pthread_mutex_lock(*rd);
      return 1;
    }
  }
  ticket_lock(&l->lock);
  return 1;
}

/* Runs q on db (locked by the caller) with its statement cache. */
static int conn_run(sqlite3 *db, sqlite3_stmt **cache, const struct cx__stmt *q,
                    const struct cx__val *p, int np, cx__row_fn fn, void *ctx,
                    struct cx__exec_result *res, char *err)
{
  struct cx__val cols[MAX_COLS];
  int rc = 0, src;
  sqlite3_stmt *st = cache[q->id];
  if (st == NULL) {
    src = sqlite3_prepare_v3(db, q->sql[0], -1, SQLITE_PREPARE_PERSISTENT, &st,
                             NULL);
    if (src != SQLITE_OK)
      return lite_error(db, src, "prepare", err);
    cache[q->id] = st;
  }
  src = lite_bind(st, p, np);
  if (src != SQLITE_OK) {
    rc = lite_error(db, src, "bind", err);
    goto done;
  }
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    int n = sqlite3_column_count(st);
    if (n > MAX_COLS)
      n = MAX_COLS;
    for (int i = 0; i < n; i++) {
      int t = sqlite3_column_type(st, i);
      cols[i].type = t == SQLITE_NULL      ? CX__V_NULL
                     : t == SQLITE_INTEGER ? CX__V_INT
                                           : CX__V_TEXT;
      cols[i].i = cols[i].type == CX__V_INT ? sqlite3_column_int64(st, i) : 0;
      cols[i].s = NULL;
      cols[i].len = 0;
      if (cols[i].type == CX__V_TEXT) {
        cols[i].s = (const char *)sqlite3_column_text(st, i);
        cols[i].len = (size_t)sqlite3_column_bytes(st, i);
        if (cols[i].s == NULL) {
          rc = -ENOMEM;
          goto done;
        }
      }
    }
    if (fn != NULL) {
      rc = fn(ctx, cols, n);
      if (rc != 0)
        goto done;
    }
  }
  if (src != SQLITE_DONE) {
    rc = lite_error(db, sqlite3_extended_errcode(db), "exec", err);
    goto done;
  }
  if (res != NULL) {
    res->affected = sqlite3_changes64(db);
    res->insert_id = sqlite3_last_insert_rowid(db);
  }
done:
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc;
}

static int lite_exec(struct cx_store *s, const struct cx__stmt *q,
                     const struct cx__val *p, int np, cx__row_fn fn, void *ctx,
                     struct cx__exec_result *res, char *err)
{
  struct lite *l = s->be;
  sqlite3 *db;
  pthread_mutex_t *rd;
  sqlite3_stmt **cache;
  int locked = pick_conn(l, q, &db, &rd, &cache);
  int rc = conn_run(db, cache, q, p, np, fn, ctx, res, err);
  if (locked && rd != NULL)
    pthread_mutex_unlock(rd);
  else if (locked)
    ticket_unlock(&l->lock);
  return rc;
}

static int lite_tx(struct cx_store *s, int op, char *err)
{
  struct lite *l = s->be;
  int rc = 0;
  if (op == CX__TX_BEGIN) {
    if (tx_of != NULL) {
      cx_err_set(err, "sqlite: a transaction is already open on this thread");
      return -EBUSY;
    }
    /* The main connection's ticket, held to the end: other threads'
     * writes and the group commit (lite_txn_begin) queue behind it in
     * order. IMMEDIATE: take the write lock now, so the transaction cannot
     * fail half-way on another process's lock. */
    ticket_lock(&l->lock);
    rc = lite_simple(l->db, "BEGIN IMMEDIATE", err);
    if (rc != 0) {
      ticket_unlock(&l->lock);
      return rc;
    }
    tx_of = l;
    return 0;
  }
  if (tx_of != l)
    return -EINVAL;
  if (op == CX__TX_COMMIT)
    rc = lite_simple(l->db, "COMMIT", err);
  if (op != CX__TX_COMMIT || rc != 0)
    sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
  tx_of = NULL;
  ticket_unlock(&l->lock);
  return rc;
}

/* A group commit holds the writer connection from BEGIN to COMMIT. */
static int lite_txn_begin(struct cx_store *s, void **tx, char *err)
{
  struct lite *l = s->be;
  ticket_lock(&l->lock);
  int rc = lite_simple(l->db, "BEGIN IMMEDIATE", err);
  if (rc != 0) {
    ticket_unlock(&l->lock);
    return rc;
  }
  *tx = l;
  return 0;
}

static int lite_txn_exec(struct cx_store *s, void *tx, const struct cx__stmt *q,
                         const struct cx__val *p, int np, cx__row_fn fn,
                         void *ctx, struct cx__exec_result *res, char *err)
{
  struct lite *l = tx;
  (void)s;
  return conn_run(l->db, l->cache, q, p, np, fn, ctx, res, err);
}

static int lite_txn_end(struct cx_store *s, void *tx, int commit, char *err)
{
  struct lite *l = tx;
  int rc = 0;
  (void)s;
  if (commit)
    rc = lite_simple(l->db, "COMMIT", err);
  if (!commit || rc != 0)
    sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
  ticket_unlock(&l->lock);
  return rc;
}

static int lite_ping(struct cx_store *s, char *err)
{
  static const struct cx__stmt q = {
      CX__STMT_MAX - 1, {"SELECT 1", NULL}, CX__Q_RETRY};
  return lite_exec(s, &q, NULL, 0, NULL, NULL, NULL, err);
}

const struct cx_store_ops cx__store_sqlite_ops = {
    .name = "sqlite",
    .dialect = CX__SQLITE,
    .open = lite_open,
    .close = lite_close,
    .migrate = lite_migrate,
    .exec = lite_exec,
    .ping = lite_ping,
    .tx = lite_tx,
    .txn_begin = lite_txn_begin,
    .txn_exec = lite_txn_exec,
    .txn_end = lite_txn_end,
};
