/*
 * What the client commands of `cronix` share (src/cli/remote.c): the
 * command line of a client command, the connection to the admin API with
 * its credentials, calls that print the API's refusal, and human output
 * (tables sized to the terminal, colour only on a terminal) or stable
 * JSON.
 *
 * Exit codes of every client command: 0 ok, 1 the server refused (the
 * API's msg and field printed), 2 usage or invalid input, 3 the server
 * cannot be reached. RC_HELP (-1) means --help was printed: exit 0.
 */
#ifndef CX_CLI_REMOTE_INT_H
#define CX_CLI_REMOTE_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RC_HELP (-1)
#define RC_MAX_LIST 256

enum rc_output { RC_OUT_TABLE, RC_OUT_WIDE, RC_OUT_JSON };

struct rc_ctx {
  const char *cmd; /* "job ls": messages start "cronix job ls: " */
  const char *server, *token, *cacert, *timeout;
  enum rc_output output;
  int color; /* stdout is a terminal and NO_COLOR is unset */
  struct cx_client *client;
  char *cred_server, *cred_token, *cred_cacert; /* from the credentials */
};

enum rc_kind {
  RC_FLAG,  /* int *: set to 1 */
  RC_VALUE, /* const char **: the next argument (or --name=value) */
  RC_LIST,  /* struct rc_list *: each occurrence appended */
};
struct rc_list {
  const char *v[RC_MAX_LIST];
  int n;
};
struct rc_opt {
  const char *name;  /* "--node" */
  const char *alias; /* "-n", or NULL */
  enum rc_kind kind;
  void *dst;
};

/* Parses argv[first..] into opts and positional arguments (pos); the
 * client options --server, --token, --cacert, --api-timeout and -o/--output
 * are understood everywhere. Returns 0, RC_HELP after printing usage on
 * stdout, or 2 after printing why on stderr. */
int rc_parse(struct rc_ctx *c, int argc, char **argv, int first,
             const struct rc_opt *opts, struct rc_list *pos, const char *usage);
/* Prints "cronix CMD: message" on stderr; returns code. */
int rc_fail(const struct rc_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Finds server, token and CA file (flags > CRONIX_SERVER / CRONIX_TOKEN /
 * CRONIX_CACERT > the credentials file; its token only for its own server)
 * and creates the client. Returns 0 or an exit code after printing why. */
int rc_connect(struct rc_ctx *c);
/* One call (body borrowed; NULL = GET). On success *data (may be NULL)
 * gets a new reference of the reply's data. Else prints the API's msg and
 * field, or why the server was not reached, and returns 1 or 3. */
int rc_call(struct rc_ctx *c, const char *path, const json_t *body,
            json_t **data);
/* As rc_call, taking ownership of body. */
int rc_post(struct rc_ctx *c, const char *path, json_t *body, json_t **data);
/* Every item of a paged list route (page_size 500, bounded to 100 pages):
 * *list gets a new array. body is borrowed and may be NULL. */
int rc_list_all(struct rc_ctx *c, const char *path, const json_t *body,
                json_t **list);
void rc_close(struct rc_ctx *c);

/* The credentials file: $XDG_CONFIG_HOME/cronix/credentials, else
 * ~/.config/cronix/credentials. 0 or -1 when there is no home. */
int rc_cred_path(char *buf, size_t cap);

/* Reads one line from stdin (without its newline) into buf; with a
 * terminal on stdin it first prints prompt on stderr and turns echo off
 * when secret. 0, or -1 (end of input, NUL byte or too long). */
int rc_read_line(const char *prompt, int secret, char *buf, size_t cap);

/* ---- output ---------------------------------------------------------- */

/* Writes v on stdout as indented JSON with sorted keys (stable for
 * scripts) and a newline. */
void rc_print_json(const json_t *v);

#define RC_MAX_COLS 16
enum rc_color { RC_PLAIN, RC_GREEN, RC_RED, RC_YELLOW, RC_DIM };
struct rc_table {
  int ncol;
  const char *head[RC_MAX_COLS];
  int shrink[RC_MAX_COLS]; /* may be cut to fit the terminal */
  char **cells;            /* nrows * ncol, owned */
  unsigned char *colors;
  int nrows, cap;
};
/* Appends a row of ncol cells (copied; NULL prints "-"), colors optional. */
void rc_table_row(struct rc_table *t, const char *const *cells,
                  const enum rc_color *colors);
/* Prints the table to stdout sized to the terminal (stdout's width when it
 * is one, else $COLUMNS, else no limit), then frees it. */
void rc_table_print(struct rc_table *t, const struct rc_ctx *c);

/* The end of every list command: with -o json prints list as is, else
 * calls row(t, item, arg) for each item (it adds the item's row) and
 * prints the table. Releases list and returns 0. */
typedef void rc_row_fn(struct rc_table *t, const json_t *item, void *arg);
int rc_print_list(const struct rc_ctx *c, json_t *list, struct rc_table *t,
                  rc_row_fn *row, void *arg);
/* rc_list_all(path, body) then rc_print_list (t must hold no rows yet);
 * or the list's exit code. */
int rc_list_print(struct rc_ctx *c, const char *path, const json_t *body,
                  struct rc_table *t, rc_row_fn *row, void *arg);

/* Helpers on job objects and times. */
const char *rc_str(const json_t *o, const char *key); /* "" when absent */
int64_t rc_int(const json_t *o, const char *key);
/* Formats unix seconds t as "YYYY-MM-DD HH:MM" in zone (NULL/"" = the
 * host's); "-" when t <= 0. */
void rc_time(int64_t t, const char *zone, char *buf, size_t cap);
/* "5s", "3m", "2h", "4d" ago-style age of t (unix s) relative to now. */
void rc_age(int64_t t, int64_t now, char *buf, size_t cap);
/* A run's end_time - start_time in ms; -1 while running or when the
 * values make no sense. */
int64_t rc_run_ms(const json_t *run);
/* Parses a duration "90", "90s", "5m", "2h", "1d" into seconds. 0/-1. */
int rc_duration(const char *s, int64_t max, int64_t *out);

/* Resolves ID|NAME into a job id (a number is an id; else an exact name).
 * 0 or an exit code after printing why. */
int rc_job_id(struct rc_ctx *c, const char *arg, int64_t *id);

/* Resolves an id or an exact `key` (name, username) through the search
 * route path. 0 or an exit code after printing why. */
int rc_resolve(struct rc_ctx *c, const char *arg, const char *path,
               const char *key, int64_t *id);
/* With -o json: prints v, releases it and returns 1; else 0. */
int rc_json_out(const struct rc_ctx *c, json_t *v);
/* The fields of a job a jobs file manages, in their order (jobs_code.c). */
extern const char *const rc_job_fields[];
extern const size_t rc_job_nfields;

/* A new job's type (http when the command is an http(s) URL, else cmd)
 * and allocation (manual with run_on, else auto) when job lacks them. */
void rc_job_defaults(json_t *job);

/* Commands (job_remote.c, jobs_code.c, crontab_import.c, node_remote.c,
 * user_remote.c, remote.c). argv[0] is the subcommand ("ls", ...). */
int rc_job(int argc, char **argv);
int rc_job_export(struct rc_ctx *c, int argc, char **argv);
int rc_job_apply(struct rc_ctx *c, int argc, char **argv);
int rc_job_import_crontab(struct rc_ctx *c, int argc, char **argv);
/* Plans and (unless dry_run) applies a set of jobs keyed by name: creates
 * the missing, changes the different (fields present only), deletes the
 * jobs not in the set when prune. Prints each step. jobs is borrowed. */
int rc_apply_jobs(struct rc_ctx *c, const json_t *jobs, int dry_run, int prune);
int rc_node_remote(int argc, char **argv);
int rc_user_remote(int argc, char **argv);
int rc_token(int argc, char **argv);
int rc_audit(int argc, char **argv);
/* 1 when `cronix user add ARGS` goes through the API: a server is known
 * (--server, --token, CRONIX_SERVER or a login) and no store flag is given. */
int rc_user_add_is_remote(int argc, char **argv);
int rc_login(int argc, char **argv);
int rc_logout(int argc, char **argv);

#endif
