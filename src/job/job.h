/*
 * job: a job's JSON form and its validation (SPEC §3, §5.1), shared by the
 * admin (API bodies, replies) and the node (etcd values), so both read a
 * job the same way. The record itself, struct cx_job, is defined here; the
 * store keeps it (store.h) but does not own its shape.
 *
 * JSON field names are the column names. On input every field is checked
 * for type and range; an unknown field is an error (a typo such as
 * "retry_time" must not be silently ignored), except the read-only fields
 * a reply carries (created, updated is used for the optimistic check,
 * next, paused, node_state, nodes), so a /job/find reply can be posted back as
 * an update. paused is read-only: enabled is what pauses a job.
 */
#ifndef CX_JOB_H
#define CX_JOB_H

#include <jansson.h>
#include <stdint.h>

#include "util/util.h"

enum { CX_JOB_CMD = 1, CX_JOB_HTTP = 2 };
/* Broadcast: every alive matching node runs each fire (run_on stays ""). */
enum { CX_ALLOC_MANUAL = 1, CX_ALLOC_AUTO = 2, CX_ALLOC_BROADCAST = 3 };

/* A job: the fields of SPEC §3. JSON-typed fields are JSON text as is
 * (the store does not parse them). On input NULL strings take the default
 * shown; name, type, command, spec and allocation are required (0 / NULL
 * = not given). */
struct cx_job {
  int64_t id; /* set by the store on create */
  char *name; /* 1..128 characters */
  char *command;
  int type; /* CX_JOB_CMD | CX_JOB_HTTP */
  char *spec;
  int timeout;              /* s, 0 = none */
  int retry_times;          /* 0..100 */
  int retry_interval;       /* s */
  int allocation;           /* CX_ALLOC_* */
  char *run_on;             /* node uuid, default "" */
  int notify_status;        /* 1 on failure, 2 off */
  int notify_type;          /* 1 email, 2 Feishu, 3 DingTalk, 4 WeCom, 5 Slack,
                               6 webhook, 0 none */
  char *notify_to_array;    /* JSON array of user ids, default "[]" */
  char *note;               /* <= 1024 characters, default "" */
  int64_t created, updated; /* unix s, set by the store */
  char *timezone;           /* default "" (= system default zone) */
  int enabled;              /* 0 / 1 */
  char *concurrency;        /* default "forbid" */
  char *misfire;            /* default "run_once" */
  int starting_deadline;    /* s */
  char *http_method;        /* default "GET" */
  char *http_headers;       /* JSON object, default "{}" */
  char *http_body;          /* default "" */
  char *env;                /* JSON object, default "{}" */
  char *workdir;            /* default "" */
  /* Which events alert (issue 14): comma-separated names from failed,
   * timeout, killed, lost, missed, recovered, success, max_duration; ""
   * = the defaults (all but success and max_duration). */
  char *notify_events;
  int max_duration;    /* s; > 0: a run still going after it is an event */
  char *run_as;        /* cmd: user to run as, default "" = the node's
                          node.run_as; admin-only, and only a user on
                          the node's node.run_as_allow */
  int limit_memory_mb; /* cmd, per process, 0 = none: RLIMIT_AS */
  int limit_nproc;     /* RLIMIT_NPROC (counts the user's processes) */
  int limit_cpu_s;     /* RLIMIT_CPU, CPU seconds per process */
  int limit_nofile;    /* RLIMIT_NOFILE, open files per process */
  char *node_selector; /* which nodes may run it (cx_selector_check),
                         default "" = any */
  int max_running;     /* broadcast: at most this many nodes run one fire
                          (the rest record it as skipped); 0 = all */
};

/* notify_events: 0 when list names only known events, else CX_EPARSE. */
int cx_job_events_check(const char *list);
/* 1 when job j alerts on event (its notify_events, or the defaults). */
int cx_job_alerts_on(const struct cx_job *j, const char *event);

/* Sets every optional field to its default (enabled = 1, notify_status =
 * 2, starting_deadline = 600, NULL strings) and leaves the required ones
 * unset (type = allocation = 0, NULL name, command, spec). */
void cx_job_init(struct cx_job *j);
/* Frees the strings a store call put in j and zeroes it. Accepts NULL. */
void cx_job_clear(struct cx_job *j);
/* Copies src into dst (dst is overwritten, not freed first). -ENOMEM. */
int cx_job_copy(struct cx_job *dst, const struct cx_job *src);

/* Size of the buffer that receives the name of the offending field. */
#define CX_JOB_FIELD_LEN 64

/* ---- limits --------------------------------------------------------------
 * One row per field in record.c's table; these are its numbers. The store
 * refuses a job over them with the same table (cx_job_check_limits), and
 * its columns (store/migrate.c) hold at least this much, so validation
 * always answers first: a too-long value is the client's 400, never a
 * store failure. Text limits are bytes unless marked characters (UTF-8
 * code points; MySQL's VARCHAR(n) counts those). */
#define CX_JOB_MAX_NAME 128        /* characters, after trimming */
#define CX_JOB_MAX_COMMAND 65536   /* bytes */
#define CX_JOB_MAX_SPEC 1024       /* bytes (the cron parser's limit) */
#define CX_JOB_MAX_RUN_ON 64       /* bytes: a node uuid */
#define CX_JOB_MAX_NOTE 1024       /* characters */
#define CX_JOB_MAX_TIMEZONE 64     /* bytes: an IANA zone name */
#define CX_JOB_MAX_ENUM 16         /* concurrency, misfire, http_method */
#define CX_JOB_MAX_HTTP_BODY 65536 /* bytes */
#define CX_JOB_MAX_WORKDIR 1024    /* bytes: an absolute path */
#define CX_JOB_MAX_RUN_AS 32       /* bytes: a Linux user name */
#define CX_JOB_MAX_SELECTOR CX_LABELS_TEXT /* bytes: node_selector */
#define CX_JOB_MAX_LIMIT (1 << 20)  /* any limit_* (MiB, processes, s, fds) */
#define CX_JOB_MAX_MAP 128          /* env / http_headers entries */
#define CX_JOB_MAX_MAP_KEY 256      /* bytes of an env / header name */
#define CX_JOB_MAX_MAP_VALUE 8192   /* bytes of an env / header value */
#define CX_JOB_MAX_MAP_TEXT 65536   /* bytes of the whole env / headers JSON */
#define CX_JOB_MAX_NOTIFY_TO 100    /* user ids */
#define CX_JOB_MAX_NOTIFY_TEXT 4096 /* bytes of notify_to_array's JSON */
#define CX_JOB_MAX_TIMEOUT (31 * 86400)
#define CX_JOB_MAX_RETRIES 100
#define CX_JOB_MAX_INTERVAL 86400
#define CX_JOB_MAX_DEADLINE (7 * 86400)
#define CX_JOB_MAX_EVENTS 128    /* bytes of notify_events */
#define CX_JOB_MAX_RUNNING 10000 /* max_running */

/* The limit of text field `name` (a JSON member / column name): *max in
 * bytes, or in characters when *chars is 1. CX_ENOTFOUND for a field that
 * is not text. */
int cx_job_limit(const char *name, size_t *max, int *chars);
/* Checks every text field of j against its limit (NULL fields pass).
 * Returns 0, or CX_ETOOBIG with the first field over its limit in field
 * (CX_JOB_FIELD_LEN, may be NULL) and "<field>: longer than N bytes" (or
 * characters) in err. Does not check UTF-8 or anything else. */
int cx_job_check_limits(const struct cx_job *j, char *field, char *err);

/* Which rule a job broke (the admin maps them to SPEC §4's codes). */
enum cx_job_invalid {
  CX_JOB_BAD_FIELD = 1, /* 400/1001 */
  CX_JOB_BAD_SPEC = 2,  /* 400/1002 */
};

/* Fills j (which the caller has cx_job_init'ed) from a JSON object: the
 * fields present replace j's values, so an update can start from the stored
 * job. Does not check required fields or cross-field rules: see
 * cx_job_validate. Returns 0 or CX_EPARSE with the field name in field
 * (CX_JOB_FIELD_LEN) and a message in err; -ENOMEM. */
int cx_job_from_json(const json_t *obj, struct cx_job *j, char *field,
                     char *err);

/* Checks a complete job: required fields (name, command, type, spec,
 * allocation: NULL, "" or 0 is "required"), the limits above, the spec through
 * the cron engine (it must fire after now, in the job's timezone, anchored at
 * created), an http(s) URL for http jobs, the notification settings. Does not
 * check node liveness or the cmd_auto_allocation rule (placement does). Returns
 * 0, or CX_EPARSE with *why, field and err set. */
int cx_job_validate(const struct cx_job *j, int64_t now,
                    enum cx_job_invalid *why, char *field, char *err);

/* The job as JSON (a new reference; NULL on allocation failure). JSON-text
 * fields (notify_to_array, http_headers, env) become arrays/objects and
 * enabled a boolean. */
json_t *cx_job_to_json(const struct cx_job *j);

/* ---- what a viewer may see ----------------------------------------------
 * Secrets a job may carry are hidden from viewers (operators and admins see
 * them): every value of http_headers and env becomes "***", and so does the
 * password of every URL userinfo in the command ("scheme://user:pw@host"
 * -> "scheme://user:***@host"; a userinfo without ':' is kept: it is a
 * user name). Run output and http_body are not touched. */
#define CX_JOB_REDACTED "***"
/* Rewrites o (a cx_job_to_json object) in place into its viewer form.
 * 0 or -ENOMEM (o is then partly redacted: do not show it). */
int cx_job_redact_json(json_t *o);
/* The command text with every URL password replaced (cx_malloc'd; NULL on
 * allocation failure). s NULL = "". For a run log's command as well. */
char *cx_job_redact_command(const char *s);

#endif
