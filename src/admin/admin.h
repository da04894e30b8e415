/*
 * admin: the dispatch center (SPEC §4, §5, §10): the HTTP API, placement
 * and publication of jobs, users and sessions. It sees the store and the
 * coordination service only through their interfaces, so the same code
 * runs in `cronix admin` (MariaDB + etcd) and `cronix standalone` (SQLite +
 * in-process coordination).
 */
#ifndef CX_ADMIN_H
#define CX_ADMIN_H

#include "config/config.h"
#include "coord/coord.h"
#include "store/store.h"

struct cx_admin;
struct cx_live_table;

struct cx_admin_opts {
  const struct cx_config *cfg; /* borrowed; lives longer than the admin */
  struct cx_store *store;      /* borrowed */
  struct cx_coord *coord;      /* borrowed */
  const char *listen;          /* NULL = cfg->listen ("host:0" for tests) */
  /* borrowed, optional: the live output of runs running in this process
   * (standalone: the node's, cx_noded_live) for /job/output. */
  struct cx_live_table *live;
  /* Optional: appends more metrics to GET /metrics (standalone: the
   * node's queue depth and lateness, cx_noded_metrics). */
  void (*metrics)(void *arg, struct cx_buf *b);
  void *metrics_arg;
};

/* Creates the admin and registers its routes (nothing listens yet).
 * Returns 0 or a negative code with a message in err. */
int cx_admin_create(const struct cx_admin_opts *opts, struct cx_admin **out,
                    char *err);
/* Starts serving HTTP. */
int cx_admin_start(struct cx_admin *a, char *err);
/* The port the API listens on (after start). */
unsigned cx_admin_port(const struct cx_admin *a);
/* Stops serving; in-flight requests finish first. */
void cx_admin_stop(struct cx_admin *a);
/* Accepts NULL. Stops first if needed. */
void cx_admin_destroy(struct cx_admin *a);

/* First start (SPEC §4): when the store has no users, creates user `admin`
 * with a random password and a token of kind "initial" that expires after
 * token_ttl seconds (0 = never) and is revoked when that user's password
 * changes; writes <data_dir>/initial-admin.txt (a new file, mode 0600,
 * O_EXCL|O_NOFOLLOW: an existing file or symlink there is refused; lines
 * `username = admin`, `password = ...`, `token = ...`, `token_expires =
 * RFC 3339 UTC or never`, then a comment) and sets *created = 1. With users
 * present it does nothing (*created = 0). */
int cx_admin_bootstrap(struct cx_store *store, const char *data_dir,
                       int64_t token_ttl, int *created, char *err);

/* A user to create (cronix user add, POST /user/add); strings borrowed.
 * username (1..64 characters, valid UTF-8, no control characters, no
 * leading/trailing space), password (8..1024 bytes) and role (admin,
 * operator, viewer) are required; email (name@domain) and feishu_id
 * (letters, digits, '_', '-'; <= 128) may be NULL or "", as may the ids
 * below. */
struct cx_admin_user_spec {
  const char *username, *password, *email, *feishu_id, *role;
  /* Optional, where the robots mention the user (issue 14): mobile
   * (digits, '+', '-'; <= 32), dingtalk_id, wecom_id (<= 128), slack_id
   * (a member id such as U123ABC; <= 64). */
  const char *mobile, *dingtalk_id, *wecom_id, *slack_id;
};

/* Size of the buffer that receives the name of an offending field. */
#define CX_ADMIN_FIELD_LEN 32

/* Checks spec with the rules of /user/add and stores the user with a slow
 * salted password hash; *id (optional) gets its id. Returns 0; CX_EPARSE
 * with the field's name in field (CX_ADMIN_FIELD_LEN bytes) and a message
 * in err; CX_EEXISTS (username taken, field "username"); the store's errors
 * otherwise. Thread-safe. */
int cx_admin_user_create(struct cx_store *store,
                         const struct cx_admin_user_spec *spec, int64_t *id,
                         char *field, char *err);
/* The checks of cx_admin_user_create alone, without a store: 0 or
 * CX_EPARSE with field and err set as there. Thread-safe. */
int cx_admin_user_check(const struct cx_admin_user_spec *spec, char *field,
                        char *err);

#endif
