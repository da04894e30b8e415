/*
 * store internals: the back-end vtable and what store.c shares with the
 * back-ends. Not for use outside src/store (tests may include it for the
 * migration hook).
 *
 * The vtable sits at the level of "run this prepared statement with these
 * values": every operation's SQL and row mapping is written once, in
 * store.c, and each back-end only knows how to talk to its database
 * (connections, statement cache, reconnects, error mapping, migrations'
 * locking). Where the dialects differ a statement carries two texts.
 */
#ifndef CX_STORE_INT_H
#define CX_STORE_INT_H

#include "store/store.h"
#include "util/util.h"

#include <stdint.h>

enum cx__dialect { CX__SQLITE = 0, CX__MYSQL = 1 };

/* A bound value or a fetched column. Text is not necessarily
 * NUL-terminated on input; fetched text always is. */
enum cx__vtype { CX__V_NULL = 0, CX__V_INT, CX__V_TEXT };
struct cx__val {
  int type;
  int64_t i;
  const char *s;
  size_t len;
};

/* A fetched column as an integer (text such as a DECIMAL sum parsed, 0 if
 * not a number) or as a new string ("" for NULL; sets *oom), for row
 * mappers in store.c and alert.c. */
int64_t cx__col_int(const struct cx__val *v);
char *cx__col_str(const struct cx__val *v, int *oom);

/* Statement flags. */
enum {
  /* Safe to execute again after the connection was lost during execution
   * (reads; writes whose second execution changes nothing more). */
  CX__Q_RETRY = 1,
};

/* A statement: id indexes the back-end's per-connection cache. */
struct cx__stmt {
  int id;
  const char *sql[2]; /* by dialect; sql[1] NULL = same as sql[0] */
  int flags;
};
#define CX__STMT_MAX 224
/* Ids from CX__STMT_ALERT up to the reserved ones belong to alert.c. */
#define CX__STMT_ALERT 192
/* Ids from CX__STMT_MAX - CX__STMT_RESERVED up belong to the back-ends
 * (ping, migrations) and to tools such as the benchmark's loader. */
#define CX__STMT_RESERVED 8

struct cx__exec_result {
  int64_t affected;  /* rows changed (matched, for UPDATE) */
  int64_t insert_id; /* last AUTO_INCREMENT / rowid */
};

/* Called for each fetched row; non-zero stops the fetch and is returned. */
typedef int (*cx__row_fn)(void *ctx, const struct cx__val *cols, int ncols);

/* A parsed store URL. Strings are owned (cx__url_free). */
struct cx__url {
  int scheme; /* enum cx__dialect */
  char *path; /* sqlite */
  char *user, *pass, *host, *db;
  unsigned port;
  int tls; /* 0 off, 1 required, 2 verify */
  char *ca, *cert, *key;
  int connect_timeout, read_timeout, write_timeout; /* s */
  int pool;
};

/* One migration: the statements of each dialect, NULL-terminated. */
struct cx__migration {
  int version;
  const char *const *sql[2];
};

struct cx_store_ops {
  const char *name;
  int dialect;
  /* Connects, fills s->be. Messages must not contain the password. */
  int (*open)(struct cx_store *s, const struct cx__url *u, char *err);
  void (*close)(struct cx_store *s);
  /* Applies migrations[i] with version > current, up to target, each
   * recorded in cronix_schema, under a lock held against other processes.
   * *version receives the resulting version. */
  int (*migrate)(struct cx_store *s, const struct cx__migration *m, int n,
                 int target, int *version, char *err);
  /* Runs q with params; rows (if any) go to fn. res may be NULL. */
  int (*exec)(struct cx_store *s, const struct cx__stmt *q,
              const struct cx__val *params, int nparams, cx__row_fn fn,
              void *ctx, struct cx__exec_result *res, char *err);
  int (*ping)(struct cx_store *s, char *err);
  /* Begins, commits or rolls back the calling thread's transaction (see
   * cx_store_tx_begin): while one is open, exec on this thread uses its
   * connection and never retries. Separate from txn_* below: those are the
   * batch writer's, with an explicit handle; both hold the same write
   * connection (SQLite) or a pooled one (MySQL), so they serialise. */
  int (*tx)(struct cx_store *s, int op, char *err);
  /* One transaction on one connection, for group commits (batch.c):
   * txn_begin opens it (*tx is the back-end's handle), txn_exec runs a
   * statement in it (no reconnect: a lost connection is an error),
   * txn_end commits (commit = 1) or rolls back, and always releases the
   * connection. A failed commit leaves the outcome unknown; the caller
   * redoes its work through exec, whose statements are retry-safe. */
  int (*txn_begin)(struct cx_store *s, void **tx, char *err);
  int (*txn_exec)(struct cx_store *s, void *tx, const struct cx__stmt *q,
                  const struct cx__val *params, int nparams, cx__row_fn fn,
                  void *ctx, struct cx__exec_result *res, char *err);
  int (*txn_end)(struct cx_store *s, void *tx, int commit, char *err);
};
enum { CX__TX_BEGIN = 0, CX__TX_COMMIT = 1, CX__TX_ROLLBACK = 2 };

struct cx__batcher;

struct cx_store {
  const struct cx_store_ops *ops;
  void *be;
  char url[512];             /* redacted */
  struct cx__batcher *batch; /* group commit writer (batch.c) */
};

/* ---- group commit (batch.c) ----
 * Run claims and finishes from every thread go to one writer thread, which
 * takes everything queued and runs it in one transaction, so concurrent
 * callers share one commit (one fsync). A caller is woken with its own
 * result only after that commit returned. While a batch commits, the next
 * one gathers; a writer that was idle waits 1 ms for the calls arriving
 * with the first (fires due at the same instant), no more. A row outcome
 * (0, CX_EEXISTS, CX_ENOTFOUND) does not disturb the batch; any other
 * error rolls the batch back and every call of it is redone alone through
 * ops->exec (all of them are retry-safe), so one bad row fails only its
 * own caller. */

/* One queued call: runs its statements through cx__texec with tx (NULL:
 * alone, each statement committing on its own). Returns the caller's
 * result. */
typedef int (*cx__batch_fn)(struct cx_store *s, void *tx, void *ctx, char *err);
/* Queues fn and waits for its durable result. A thread inside its own
 * transaction (cx_store_tx_begin) runs fn there instead: the writer would
 * wait for the connection that thread holds (SQLite), or commit apart
 * from it (MySQL). */
int cx__batch_run(struct cx_store *s, cx__batch_fn fn, void *ctx, char *err);
/* 1 if the calling thread has a transaction open on s (store.c). */
int cx__store_in_tx(const struct cx_store *s);
/* Runs what is queued, then stops the writer (cx_store_close). */
void cx__batch_stop(struct cx_store *s);
/* ops->txn_exec when tx is set, else ops->exec. */
int cx__texec(struct cx_store *s, void *tx, const struct cx__stmt *q,
              const struct cx__val *p, int np, cx__row_fn fn, void *ctx,
              struct cx__exec_result *res, char *err);

/* Test hooks. hold = 1 keeps the writer from taking calls (they queue);
 * 0 releases it. */
void cx__batch_hold(struct cx_store *s, int hold);
size_t cx__batch_queued(struct cx_store *s);
struct cx__batch_counts {
  uint64_t batches, calls, redone; /* redone: batches rolled back */
};
void cx__batch_counts(struct cx_store *s, struct cx__batch_counts *out);
/* When > 0: the fail_at-th call the writer runs from now on fails with
 * -EIO, in its batch and again when redone alone, as a row the database
 * refuses would (then the hook resets itself). */
extern int cx__batch_fail_at;

extern const struct cx_store_ops cx__store_sqlite_ops;
extern const struct cx_store_ops cx__store_mysql_ops;

int cx__url_parse(const char *url, struct cx__url *u, char *err);
void cx__url_free(struct cx__url *u);

/* Opens like cx_store_open but migrates only up to schema version `target`
 * (tests: to show an upgrade in place from an older version). */
int cx__store_open_at(const char *url, int target, struct cx_store **out,
                      char *err);

/* The migrations, in order (migrate.c). */
extern const struct cx__migration cx__migrations[];
extern const int cx__migrations_n;

/* utf8.c: copies s with invalid sequences as U+FFFD and NUL as U+2400 into a
 * new NUL-terminated string (*out, *outlen). -ENOMEM. */
int cx__utf8_sanitize(const char *s, size_t len, char **out, size_t *outlen);

/* auth.c: SHA-256 of s as 64 hex digits; a new random claim token (128
 * bits, 32 hex digits). */
int cx__token_hash(const char *s, char out[65]);
int cx__claim_token(char out[33]);

#endif
