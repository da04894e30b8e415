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
#define CX__STMT_MAX 160
/* Ids from CX__STMT_ALERT up to the reserved ones belong to alert.c. */
#define CX__STMT_ALERT 128
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
};

struct cx_store {
  const struct cx_store_ops *ops;
  void *be;
  char url[512]; /* redacted */
};

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

/* UTF-8 helpers (utf8.c). */
/* 1 when s[0..len) is valid UTF-8 (no overlongs, surrogates, > U+10FFFF)
 * and has no NUL byte. */
int cx__utf8_valid(const char *s, size_t len);
/* Characters (code points) of valid UTF-8. */
size_t cx__utf8_chars(const char *s, size_t len);
/* Copies s with invalid sequences as U+FFFD and NUL as U+2400 into a new
 * NUL-terminated string (*out, *outlen). -ENOMEM. */
int cx__utf8_sanitize(const char *s, size_t len, char **out, size_t *outlen);

/* auth.c: SHA-256 of s as 64 hex digits; a new random claim token (128
 * bits, 32 hex digits). */
int cx__token_hash(const char *s, char out[65]);
int cx__claim_token(char out[33]);

#endif
