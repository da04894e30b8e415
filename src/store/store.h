/*
 * store: the SQL store (SPEC §6) behind one interface, with two back-ends
 * picked at run time from the URL scheme: SQLite (standalone) and
 * MySQL/MariaDB (MariaDB Connector/C). Callers never know which one they
 * have; both pass the same test suite.
 *
 * Records are plain structs. A struct the store fills (find, search) owns
 * its strings: release them with the matching *_clear / *_list_free. A
 * struct the caller passes in is only read; its strings stay the caller's.
 * NULL string fields passed in mean "the default" (see each struct).
 *
 * Errors (all functions return 0 or a negative code, see util.h):
 *   CX_EPARSE    a field is invalid (message names it): bad UTF-8, bad value
 *   CX_ETOOBIG   a field is longer than its column allows (message names it;
 *                a job's limits are the job module's: cx_job_check_limits)
 *   CX_ENOTFOUND no such row
 *   CX_EEXISTS    unique key taken (job name, username, node uuid, a claimed
 *                fire: see cx_store_run_claim, where it is a normal outcome)
 *   CX_ECONFLICT optimistic update lost (the row changed since it was read)
 *   CX_EUNAVAIL  the database cannot be reached (after one reconnect);
 *                for writes the message says whether it may have applied
 *   CX_EAUTH     wrong database credentials (at open)
 *   -EIO         any other database error (message has the server's text)
 * The optional `err` buffer (CX_ERR_LEN bytes) receives a message a person
 * can act on. Passwords never appear in it or in the log.
 *
 * Thread-safety: every function taking a struct cx_store may be called from
 * any number of threads at once (SQLite: one connection behind a mutex;
 * MySQL: a pool, one connection per call).
 *
 * Text: every text field must be valid UTF-8 without NUL (CX_EPARSE
 * otherwise) — except a run's `output`, which may hold any bytes: invalid
 * UTF-8 sequences are stored as U+FFFD and NUL bytes as U+2400 (the
 * visible "NUL" symbol), on both back-ends alike, because MySQL's utf8mb4
 * columns reject invalid text in strict mode.
 */
#ifndef CX_STORE_H
#define CX_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "job/job.h" /* struct cx_job */

struct cx_store;

/* Yes/no filters; the zero value means "any". */
enum { CX_STORE_ANY = 0, CX_STORE_YES = 1, CX_STORE_NO = 2 };

/* Page sizes: a page_size <= 0 means the default, above the cap the cap. */
#define CX_STORE_PAGE_DEFAULT 20
#define CX_STORE_PAGE_MAX 500
/* Longest value of a big text column (command, http_body, output, ...). */
#define CX_STORE_TEXT_MAX (1024 * 1024 + 1024)
/* Rows deleted per statement by cx_store_run_purge. */
#define CX_STORE_PURGE_BATCH 1000

/* ---- opening ----------------------------------------------------------- */

/* Opens the store named by url and brings its schema up to date (the
 * migrations in cronix_schema; safe when several processes start at once).
 *   sqlite://PATH   PATH relative ("sqlite://var/cronix.db") or absolute
 *                   ("sqlite:///var/lib/cronix/cronix.db"); taken as is.
 *   mysql://[user[:pass]@]host[:port]/db[?opt=v&...]   (also mariadb://)
 *                   user, pass, db and option values are percent-decoded;
 *                   host may be [v6addr]; port defaults to 3306. Options:
 *                   tls=off|required|verify (verify checks the server's
 *                   certificate and name), ca=, cert=, key= (PEM files),
 *                   connect_timeout=, read_timeout=, write_timeout= (s),
 *                   pool= (connections, 1..64, default 4).
 * On success *out is the store (close it with cx_store_close).
 * Errors: CX_EPARSE (malformed URL, message says what), CX_EAUTH,
 * CX_EUNAVAIL, -EIO, -ENOMEM. */
int cx_store_open(const char *url, struct cx_store **out, char *err);
/* Closes the store and frees it. Accepts NULL. No call may be running. */
void cx_store_close(struct cx_store *s);
/* "sqlite" or "mysql". */
const char *cx_store_backend(const struct cx_store *s);
/* The URL with any password replaced by "***", for logs (borrowed). */
const char *cx_store_url(const struct cx_store *s);
/* Writes url with its password replaced by "***" into out (always
 * NUL-terminated, truncated to outlen). Usable before opening. */
void cx_store_url_redact(const char *url, char *out, size_t outlen);
/* The schema version in use (the number of migrations applied). */
int cx_store_schema_version(struct cx_store *s, int *version, char *err);
/* A cheap round trip to the database (for /healthz). */
int cx_store_ping(struct cx_store *s, char *err);

/* ---- jobs (cronix_job) ------------------------------------------------- */

struct cx_job_list {
  struct cx_job *items;
  size_t n;
  int64_t total; /* rows matching the filter, across all pages */
};

/* Job search filter; zero-initialise, then set what you need. */
struct cx_job_filter {
  int page;           /* from 1; <= 0 means 1 */
  int page_size;      /* <= 0 default 20; capped at 500 */
  const char *name;   /* substring (ASCII case-insensitive), NULL = any */
  int type;           /* 0 = any */
  const char *run_on; /* NULL = any */
  int enabled;        /* CX_STORE_ANY | CX_STORE_YES | CX_STORE_NO */
  /* 1 = skip the COUNT (the caller knows the total): out->total is then
   * exact only when the page is short and not past the end (the rows
   * before it plus its own), else -1. */
  int skip_total;
};

/* Count of jobs on one node (cx_store_job_count_by_node). */
struct cx_node_jobs {
  char *run_on;
  int64_t count;
};

void cx_job_list_free(struct cx_job_list *l);

/* Creates a job; on success j->id, j->created and j->updated are set (the
 * rest of j is unchanged). CX_EEXISTS when the name is taken. A write lost
 * with the connection is not retried (CX_EUNAVAIL: it may have applied). */
int cx_store_job_create(struct cx_store *s, struct cx_job *j, char *err);
/* Replaces every field of job j->id, provided its `updated` still equals
 * j->updated (optimistic check). On success j->updated is the new value,
 * which always grows (old + 1 if the clock has not moved on).
 * CX_ENOTFOUND, CX_ECONFLICT (stale), CX_EEXISTS (name taken). */
int cx_store_job_update(struct cx_store *s, struct cx_job *j, char *err);
/* Sets `enabled` of one job (pause/resume), bumping `updated`. */
int cx_store_job_set_enabled(struct cx_store *s, int64_t id, int enabled,
                             char *err);
/* Moves a job to another node (failover), only if it is still on
 * from_node: CX_ECONFLICT otherwise. Bumps `updated`. */
int cx_store_job_move(struct cx_store *s, int64_t id, const char *from_node,
                      const char *to_node, char *err);
/* Deletes a job (its run log stays). CX_ENOTFOUND if absent. */
int cx_store_job_delete(struct cx_store *s, int64_t id, char *err);
/* Fills *out (to be released with cx_job_clear). CX_ENOTFOUND. */
int cx_store_job_find(struct cx_store *s, int64_t id, struct cx_job *out,
                      char *err);
/* One page of jobs matching f, ordered by id; out->total counts them all
 * (see skip_total). The page walks the id index only and reads whole rows
 * just for the page itself (a deferred join), so deep pages stay cheap. */
int cx_store_job_search(struct cx_store *s, const struct cx_job_filter *f,
                        struct cx_job_list *out, char *err);
/* Every job on node run_on, or (run_on NULL) every job; allocation 0 =
 * any, else only that allocation. Ordered by id, not paged: for failover
 * and reconciliation. */
int cx_store_job_list(struct cx_store *s, const char *run_on, int allocation,
                      struct cx_job_list *out, char *err);
/* Job counts grouped by run_on (nodes without jobs are absent). Free *out
 * with cx_node_jobs_free(*out, *n). */
int cx_store_job_count_by_node(struct cx_store *s, struct cx_node_jobs **out,
                               size_t *n, char *err);
void cx_node_jobs_free(struct cx_node_jobs *v, size_t n);

/* ---- run log (cronix_job_log) ------------------------------------------ */

/* One run. On input (claim) NULL strings are "" except status ("running")
 * and trigger ("cron"). */
struct cx_run {
  int64_t id;
  int64_t job_id;
  char *name, *node_uuid, *hostname, *ip, *command, *spec;
  char *trigger;                /* cron | once | retry | misfire | missed */
  int has_scheduled_at;         /* 0: scheduled_at is NULL (once runs) */
  int64_t scheduled_at;         /* the cron fire time, unix s */
  int64_t start_time, end_time; /* unix ms; end_time 0 = not finished */
  int success;                  /* 1 / 0 */
  char *status; /* running|success|failed|timeout|killed|skipped|lost|
                   error (an http request that got no status; a job
                   that could not be started)|missed (fires no node ran,
                   see cx_store_run_missed) */
  int exit_code;
  int attempts;
  char *output;      /* any bytes (see the top of this file); NUL-terminated */
  size_t output_len; /* on input: bytes of output to store */
  /* Idempotency key of the claim: 32 hex digits. Leave it empty and the
   * store makes one; a node flushing its spool sets the one it kept, so a
   * record sent twice is stored once. Filled on return either way. */
  char claim_token[33];
  /* A missed row stands for missed_count fires from scheduled_at to
   * missed_last (unix s) inclusive; 0 on every other row. */
  int64_t missed_count, missed_last;
  /* 1: a broadcast job's row (allocation 3): its fire is claimed per node,
   * the claim key being (job_id, scheduled_at, node_uuid) instead of
   * (job_id, scheduled_at); stored as claim_node = node_uuid, '' on every
   * other row (schema version 11). */
  int per_node;
};

struct cx_run_list {
  struct cx_run *items;
  size_t n;
  int64_t total;    /* matching rows (see count_limit) */
  int total_capped; /* 1: more than count_limit rows match; total = cap */
};

/* Values a run-log filter may list for one column. */
#define CX_RUN_FILTER_SET 10

/* Run-log filter; zero-initialise, then set what you need. */
struct cx_run_filter {
  int page, page_size;   /* as for jobs */
  int64_t job_id;        /* 0 = any */
  const char *node_uuid; /* NULL = any */
  int success;           /* CX_STORE_ANY | CX_STORE_YES | CX_STORE_NO */
  int64_t from, to;      /* start_time range in ms, [from, to); 0 = open */
  /* status IN statuses[0..nstatuses), trigger IN triggers[0..ntriggers);
   * 0 = any; at most CX_RUN_FILTER_SET each (more: CX_EPARSE). The store
   * matches the strings as given: the caller checks them. */
  const char *const *statuses;
  int nstatuses;
  const char *const *triggers;
  int ntriggers;
  /* 0: total counts every matching row (exact; on MySQL that costs a scan
   * of the matches, ~0.2 s per million rows). N > 0: count at most N, and
   * set total_capped when there are more (a UI shows "N+"). */
  int64_t count_limit;
};

struct cx_run_counts {
  int64_t total, success, failed, running; /* rows */
  int64_t missed; /* fires recorded as missed (a range row counts each) */
};

void cx_run_clear(struct cx_run *r);
void cx_run_list_free(struct cx_run_list *l);

/* Claims a fire: inserts r as a new row. With r->has_scheduled_at, the
 * pair (job_id, scheduled_at) -- with r->per_node, the triple (job_id,
 * scheduled_at, node_uuid) -- is unique across the cluster: if another
 * claim has it, returns CX_EEXISTS ("already claimed" — a normal outcome,
 * not an error to log). Runs without scheduled_at never conflict.
 * On success *id is the run's id (and r->claim_token is set).
 * Safe to retry: the same claim_token is recognised as the same claim, so
 * a claim re-sent after a lost connection (by the store, once, or by the
 * caller) returns the first row's id instead of CX_EEXISTS. The row is
 * then left as it was: a node flushing a finished run from its spool
 * follows up with cx_store_run_finish on the returned id. */
int cx_store_run_claim(struct cx_store *s, struct cx_run *r, int64_t *id,
                       char *err);
/* Records the end (or progress) of run r->id: status, success, exit_code,
 * end_time, attempts, output, and start_time when r->start_time > 0 (the
 * node sends the moment the run's process was spawned or its request
 * sent; the claim holds the moment it was claimed). Idempotent.
 * CX_ENOTFOUND.
 * Claims and finishes of concurrent callers share one transaction (group
 * commit, one fsync); each returns only once its own row is durable, and
 * one caller's failure (a duplicate claim, a refused row) is not
 * another's. */
int cx_store_run_finish(struct cx_store *s, const struct cx_run *r, char *err);
int cx_store_run_find(struct cx_store *s, int64_t id, struct cx_run *out,
                      char *err);
/* One page of runs, newest first (start_time, then id, descending). */
int cx_store_run_search(struct cx_store *s, const struct cx_run_filter *f,
                        struct cx_run_list *out, char *err);
/* Deletes runs that started more than days days before now_ms, in
 * statements of at most CX_STORE_PURGE_BATCH rows; stops after max_rows
 * (0 = no limit) so a caller can spread the work. *deleted (optional)
 * counts the run rows removed. Attempts (cronix_job_attempt) that started
 * before the same cutoff go too, in the same way and with their own
 * max_rows budget (not counted in *deleted). */
int cx_store_run_purge(struct cx_store *s, int days, int64_t now_ms,
                       int64_t max_rows, int64_t *deleted, char *err);
/* Records fires of job r->job_id that no node ran as one row of status
 * "missed" (whatever r->status says): r->missed_count fires from
 * r->scheduled_at (has_scheduled_at must be 1) to r->missed_last, the
 * reason in r->output; start_time/end_time when it was noticed. It goes in
 * only if no row of the job lies in [scheduled_at, missed_last] and the
 * row before does not reach into it (one atomic statement): two writers
 * of overlapping ranges cannot both succeed (CX_EEXISTS, a normal outcome,
 * for the second). A fire inside a range is not claimable by
 * cx_store_run_claim only if it is its first: callers write a range only
 * of fires nobody may still claim (see src/node). A fresh claim_token is
 * made; a re-send after a lost connection is recognised by it. CX_EPARSE
 * when the count does not fit the range. With r->per_node only the rows of
 * the same node (claim_node) count: a broadcast job's nodes account their
 * fires apart. The row is flagged for the alert outbox
 * (cx_store_alert_flagged) in the same statement when the job has
 * notify_status 1. */
int cx_store_run_missed(struct cx_store *s, struct cx_run *r, int64_t *id,
                        char *err);
/* Makes r (its other fields kept) the missed row of count fires from
 * first to last (unix s): trigger "cron", status "missed", the range. */
void cx_run_set_missed(struct cx_run *r, int64_t first, int64_t last,
                       int64_t count);
/* The latest fire recorded for job_id (claim_node: "" or NULL for a
 * single-node job, a node uuid for that node's rows of a broadcast job)
 * at or before at_most (unix s): the
 * scheduled_at of the latest row up to at_most, or the end of its range
 * for a missed row. CX_ENOTFOUND when there is none. */
int cx_store_run_last_fire(struct cx_store *s, int64_t job_id,
                           const char *claim_node, int64_t at_most, int64_t *at,
                           char *err);
/* The fires a row accounts for: one, or a missed row's range. */
struct cx_run_span {
  int64_t first, last;
};
#define CX_STORE_SPANS_MAX 100000
/* The spans of the rows of job_id (and claim_node, as above) with scheduled_at
 * in [from, to], by scheduled_at, at most max (1..CX_STORE_SPANS_MAX) of them,
 * into *out
 * (*n entries; free with cx_free): to find fires without a row. */
int cx_store_run_spans(struct cx_store *s, int64_t job_id,
                       const char *claim_node, int64_t from, int64_t to,
                       size_t max, struct cx_run_span **out, size_t *n,
                       char *err);
/* Marks the runs of node_uuid still "running" that started before
 * started_before (ms) as "lost" (success 0, end_time now, output why): the
 * node died, so nobody will record how they ended. A run that was in fact
 * still going (a partitioned node) overwrites this when it finishes.
 * *marked (optional) gets the number of runs marked. Safe to retry. On
 * MariaDB it waits at most 2 s for rows another connection has locked (the
 * node's own transaction, stalled with the node): CX_EUNAVAIL, retry. */
int cx_store_run_mark_lost(struct cx_store *s, const char *node_uuid,
                           int64_t started_before, const char *why,
                           int64_t *marked, char *err);
/* Counts of runs that started in [from_ms, to_ms) (/statis). */
int cx_store_run_counts(struct cx_store *s, int64_t from_ms, int64_t to_ms,
                        struct cx_run_counts *out, char *err);

/* ---- attempts (cronix_job_attempt) ------------------------------------- */

/* One attempt of a run: a run retried k times had k + 1 attempts. */
struct cx_run_attempt {
  int64_t run_id;
  int attempt;                  /* 1, 2, ... */
  int64_t start_time, end_time; /* unix ms */
  char *status;                 /* success|failed|timeout|killed|error */
  int exit_code;
  char *output;      /* any bytes, stored like a run's output */
  size_t output_len; /* on input: bytes of output to store */
};

void cx_run_attempt_clear(struct cx_run_attempt *a);
/* Clears n attempts and frees the array (NULL allowed). */
void cx_run_attempts_free(struct cx_run_attempt *v, size_t n);

/* Records attempt a->attempt of run a->run_id, or replaces it when that
 * pair is already there: a re-sent attempt (a retried write, a spool
 * flushed twice) is stored once. The run row is not checked. status
 * 1..16 characters. CX_EPARSE / CX_ETOOBIG for a bad field. */
int cx_store_run_attempt_put(struct cx_store *s, const struct cx_run_attempt *a,
                             char *err);
/* The attempts of run run_id, by attempt number, into *out (*n entries;
 * free with cx_run_attempts_free). A run that never retried has no
 * attempt rows (the node writes them only once a run retries, sparing
 * every other run a write): when a finished run with attempts = 1 has
 * none, its one attempt is made from the run row. A run still in its
 * first attempt, or recorded before attempts were kept, may list none.
 * CX_ENOTFOUND when run run_id does not exist. */
int cx_store_run_attempt_list(struct cx_store *s, int64_t run_id,
                              struct cx_run_attempt **out, size_t *n,
                              char *err);

/* ---- nodes (cronix_node) ----------------------------------------------- */

enum { CX_NODE_UP = 1, CX_NODE_DOWN = 2 };

struct cx_node {
  int64_t id;
  char *uuid, *hostname, *ip;
  int pid;
  char *version;
  int status;       /* CX_NODE_UP | CX_NODE_DOWN */
  int64_t up, down; /* unix s of the last change to each state */
};

struct cx_node_list {
  struct cx_node *items;
  size_t n;
  int64_t total;
};

void cx_node_clear(struct cx_node *n);
void cx_node_list_free(struct cx_node_list *l);

/* Inserts or updates (by uuid) every field of n; n->id is set. */
int cx_store_node_upsert(struct cx_store *s, struct cx_node *n, char *err);
/* Sets status and, for CX_NODE_UP `up` / for CX_NODE_DOWN `down`, to at.
 * CX_ENOTFOUND. */
int cx_store_node_set_status(struct cx_store *s, const char *uuid, int status,
                             int64_t at, char *err);
int cx_store_node_find(struct cx_store *s, const char *uuid,
                       struct cx_node *out, char *err);
/* Nodes ordered by id; status 0 = any. */
int cx_store_node_search(struct cx_store *s, int status, int page,
                         int page_size, struct cx_node_list *out, char *err);
int cx_store_node_delete(struct cx_store *s, const char *uuid, char *err);

/* ---- users (cronix_user) and tokens (cronix_token) --------------------- */

struct cx_user {
  int64_t id;
  char *username;      /* 1..64 characters */
  char *password_hash; /* from cx_store_password_hash */
  char *email, *feishu_id;
  char *role; /* admin | operator | viewer */
  /* Where the robots mention them (issue 14); "" = none. */
  char *mobile, *dingtalk_id, *wecom_id, *slack_id;
  int64_t created, updated;
};

struct cx_user_list {
  struct cx_user *items;
  size_t n;
  int64_t total;
};

void cx_user_clear(struct cx_user *u);
void cx_user_list_free(struct cx_user_list *l);

/* Hashes a password with yescrypt (libcrypt, a fresh random salt) into out
 * (CX_STORE_HASH_LEN bytes). -EINVAL for an empty or > 1024 byte password.
 * Slow on purpose (tens of ms). */
#define CX_STORE_HASH_LEN 256
int cx_store_password_hash(const char *password, char *out, char *err);
/* 1 when password matches hash, 0 otherwise (also for a malformed hash).
 * Compares in constant time. */
int cx_store_password_verify(const char *password, const char *hash);

/* Creates a user (u->id, created, updated set). CX_EEXISTS if the name is
 * taken. Not retried after a lost connection. */
int cx_store_user_create(struct cx_store *s, struct cx_user *u, char *err);
/* Replaces username, password_hash, email, feishu_id and role of u->id. */
int cx_store_user_update(struct cx_store *s, struct cx_user *u, char *err);
/* Deletes the user and every token of the user. */
int cx_store_user_delete(struct cx_store *s, int64_t id, char *err);
int cx_store_user_find(struct cx_store *s, int64_t id, struct cx_user *out,
                       char *err);
int cx_store_user_find_by_name(struct cx_store *s, const char *username,
                               struct cx_user *out, char *err);
/* Users ordered by id; name = substring filter or NULL. */
int cx_store_user_search(struct cx_store *s, const char *name, int page,
                         int page_size, struct cx_user_list *out, char *err);
int cx_store_user_count(struct cx_store *s, int64_t *n, char *err);

/* Tokens are stored only as the SHA-256 of the token text. */
struct cx_token {
  int64_t id;
  int64_t user_id;
  char kind[16];   /* "session" | "api" | "initial" (the first admin's) */
  int64_t expires; /* unix s, 0 = never */
  int64_t created;
};

/* Writes a new random token (256 bits, hex) into out (65 bytes). */
#define CX_STORE_TOKEN_LEN 65
int cx_store_token_generate(char *out);
/* Stores the hash of token for user_id. kind "session", "api" or
 * "initial". */
int cx_store_token_create(struct cx_store *s, const char *token,
                          int64_t user_id, const char *kind, int64_t expires,
                          char *err);
/* Finds the token; CX_ENOTFOUND when unknown or expired at now (unix s). */
int cx_store_token_lookup(struct cx_store *s, const char *token, int64_t now,
                          struct cx_token *out, char *err);
/* Deletes one token (logout). CX_ENOTFOUND. */
int cx_store_token_delete(struct cx_store *s, const char *token, char *err);
/* Deletes every token of user_id of the given kind ("session", "api" or
 * "initial";
 * NULL = both) except keep_token (NULL = keep none), e.g. to end a user's
 * other sessions when the password changes. *deleted (optional) counts the
 * tokens removed; a user with none to delete is not an error (0 rows).
 * Errors: CX_EPARSE (bad kind, or keep_token not 1..1024 bytes),
 * CX_EUNAVAIL, -EIO. Safe to retry. */
int cx_store_token_delete_user(struct cx_store *s, int64_t user_id,
                               const char *kind, const char *keep_token,
                               int64_t *deleted, char *err);
/* One token by id (never its text or hash: only the hash is stored).
 * CX_ENOTFOUND. */
int cx_store_token_find(struct cx_store *s, int64_t id, struct cx_token *out,
                        char *err);
/* Deletes one token by id (revocation). CX_ENOTFOUND. */
int cx_store_token_delete_id(struct cx_store *s, int64_t id, char *err);
struct cx_token_list {
  struct cx_token *items;
  size_t n;
  int64_t total; /* matching tokens on all pages */
};
/* The tokens not expired at now, ordered by id; user_id > 0 keeps only
 * that user's. Free with cx_token_list_free. */
int cx_store_token_search(struct cx_store *s, int64_t user_id, int64_t now,
                          int page, int page_size, struct cx_token_list *out,
                          char *err);
void cx_token_list_free(struct cx_token_list *l);
/* Deletes every token with 0 < expires <= now; *deleted optional. */
int cx_store_token_purge(struct cx_store *s, int64_t now, int64_t *deleted,
                         char *err);

/* ---- transactions ------------------------------------------------------ */

/* Makes several writes one: between cx_store_tx_begin and cx_store_tx_end
 * every call of THIS thread on s runs on one connection inside one
 * transaction (SQLite: the write connection, held, so other threads' writes
 * wait and their reads see the state before; MySQL: one pooled connection,
 * InnoDB), run claims and finishes included (they skip the group commit).
 * Calls of other threads are unaffected. Used to write a change
 * and its audit row together (cx_store_audit_add), so neither exists
 * without the other. Inside a transaction nothing is retried after a lost
 * connection: the call fails with CX_EUNAVAIL and the transaction is gone
 * (end it with commit = 0). Keep them short: no network calls inside.
 * Nesting is refused (-EBUSY). Every successful begin must be followed by
 * exactly one end on the same thread. */
int cx_store_tx_begin(struct cx_store *s, char *err);
/* commit 1: COMMIT (a lost connection then gives CX_EUNAVAIL, "may have
 * applied"); on failure the transaction is rolled back. commit 0:
 * ROLLBACK (always ends it; returns 0). */
int cx_store_tx_end(struct cx_store *s, int commit, char *err);

/* ---- audit log (cronix_audit) ------------------------------------------ */

/* One recorded change. Strings: on input borrowed, NULL = ""; filled by
 * the store, owned (cx_audit_clear). before/after are JSON texts (already
 * redacted by the caller) or "". */
struct cx_audit {
  int64_t id;
  int64_t at;      /* unix ms; 0 on input = now */
  int64_t user_id; /* 0 = nobody known (a failed login) */
  char *username;  /* who; <= 256 characters */
  char *addr;      /* the client's address; <= 64 characters */
  char *kind;      /* what: "job.add", "login.fail", ...; 1..32 chars */
  char *target;    /* on what: "job 7", "user 3"; <= 255 characters */
  char *before, *after;
};

struct cx_audit_list {
  struct cx_audit *items;
  size_t n;
  int64_t total;
};

/* Audit filter; zero-initialise, then set what you need. */
struct cx_audit_filter {
  int page, page_size;  /* as for jobs */
  const char *username; /* exact, NULL = any */
  const char *kind;     /* exact, or a prefix ending in '.' ("job."); NULL
                           = any */
  int64_t from, to;     /* `at` range in ms, [from, to); 0 = open */
};

void cx_audit_clear(struct cx_audit *a);
void cx_audit_list_free(struct cx_audit_list *l);
/* Appends a row; a->id gets its id (and a->at, when 0, the time used).
 * CX_EPARSE / CX_ETOOBIG naming a bad field. Not retried after a lost
 * connection (CX_EUNAVAIL: it may have applied). */
int cx_store_audit_add(struct cx_store *s, struct cx_audit *a, char *err);
/* Removes row id: only for undoing a change together with its row (the
 * job protocol's compensations). CX_ENOTFOUND. */
int cx_store_audit_delete(struct cx_store *s, int64_t id, char *err);
/* One page of rows matching f, newest first (at, then id, descending). */
int cx_store_audit_search(struct cx_store *s, const struct cx_audit_filter *f,
                          struct cx_audit_list *out, char *err);
/* Deletes rows older than days days before now_ms, like
 * cx_store_run_purge (batches, max_rows budget, *deleted optional). */
int cx_store_audit_purge(struct cx_store *s, int days, int64_t now_ms,
                         int64_t max_rows, int64_t *deleted, char *err);

/* ---- alerts (cronix_notify_log) and settings (cronix_setting) ---------- */

/* One alert: an event to tell people about, and how telling them went.
 * The leader admin (src/admin/alerts.c) is the only writer after the run
 * flag: see migrate.c version 9 for the outbox. alert.c. */
struct cx_alert {
  int64_t id;
  char *ukey;  /* unique: "run:<run_id>:<event>",
                  "node:<uuid>:<down|up>:<session>:<ch>" */
  char *event; /* a run's event, node_down or node_up */
  int64_t run_id, job_id;
  char *node_uuid;
  char *detail;     /* node_down: JSON array of the job names it held */
  int channel;      /* notify_type */
  char *recipients; /* JSON array of the addresses it went to */
  char *state;      /* pending | sending | sent | failed | skipped */
  int attempts;
  char *answer; /* the server's last reply, or what went wrong */
  int64_t created, next_at, done_at; /* unix ms */
};

struct cx_alert_list {
  struct cx_alert *items;
  size_t n;
  int64_t total;
};

void cx_alert_clear(struct cx_alert *a);
void cx_alert_list_free(struct cx_alert_list *l);

/* A run whose final record may be an event (cx_store_run_finish and
 * cx_store_run_mark_lost set the flag when the job has notify_status 1 and
 * the status is failed, timeout, killed, lost, missed or success). */
struct cx_alert_flag {
  int64_t run_id, job_id;
  int64_t start_time; /* ms */
  char status[17];
};
/* Up to max flagged runs, oldest first, into out[max]; *n the count. */
int cx_store_alert_flagged(struct cx_store *s, struct cx_alert_flag *out,
                           size_t max, size_t *n, char *err);
/* The status of the job's final run before f's ("" when none): a success
 * after a failure is a recovery. */
int cx_store_alert_prev_status(struct cx_store *s,
                               const struct cx_alert_flag *f, char status[17],
                               char *err);
/* Up to max runs still "running" at now_ms longer than their alerting
 * job's max_duration, into out (status "running"); *n the count. */
int cx_store_alert_overdue(struct cx_store *s, int64_t now_ms,
                           struct cx_alert_flag *out, size_t max, size_t *n,
                           char *err);
/* Clears run f->run_id's flag if its status is still f->status (a finish
 * that changed the status since keeps its own flag). */
int cx_store_alert_unflag(struct cx_store *s, const struct cx_alert_flag *f,
                          char *err);
/* Inserts a as a new alert (state "pending" unless set; created now when
 * 0); a->id is set. CX_EEXISTS when an alert with a->ukey exists: the
 * event was already taken in. Safe to retry. */
int cx_store_alert_add(struct cx_store *s, struct cx_alert *a, char *err);
/* Alerts to send now: state pending, or sending with an expired claim,
 * and next_at <= now_ms; oldest first, at most max. */
int cx_store_alert_due(struct cx_store *s, int64_t now_ms, int max,
                       struct cx_alert_list *out, char *err);
/* Claims alert id for sending until until_ms (state "sending"), if it is
 * still due at now_ms: *got = 1 when this caller has it. */
int cx_store_alert_claim(struct cx_store *s, int64_t id, int64_t now_ms,
                         int64_t until_ms, int *got, char *err);
/* Records a's state, attempts, answer, recipients, channel, next_at and
 * done_at. CX_ENOTFOUND. */
int cx_store_alert_update(struct cx_store *s, const struct cx_alert *a,
                          char *err);
/* The newest alert (highest id) whose ukey starts with prefix (plain
 * bytes, no wildcards), into *out (free with cx_alert_clear): e.g. the
 * last node event of a node, "node:<uuid>:". CX_ENOTFOUND when none. */
int cx_store_alert_last(struct cx_store *s, const char *prefix,
                        struct cx_alert *out, char *err);
/* A page of alerts, newest first; event NULL = any. */
int cx_store_alert_search(struct cx_store *s, const char *event, int page,
                          int page_size, struct cx_alert_list *out, char *err);

/* Named settings, each a JSON text (at most CX_STORE_TEXT_MAX bytes).
 * get: *value (free with cx_free) or CX_ENOTFOUND. put: insert or
 * replace. add: insert only, CX_EEXISTS when present (first-start seed
 * that never overwrites an edit). */
int cx_store_setting_get(struct cx_store *s, const char *name, char **value,
                         char *err);
int cx_store_setting_put(struct cx_store *s, const char *name,
                         const char *value, char *err);
int cx_store_setting_add(struct cx_store *s, const char *name,
                         const char *value, char *err);

#endif
