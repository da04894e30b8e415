/*
 * The job record: struct cx_job's field table (names, kinds, bounds and
 * every length limit), defaults, copy and release. Kept apart from job.c
 * (JSON and validation, which need the cron engine) so the store can link
 * it, and check its limits, without linking cron.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "job/job-int.h"

static const char *const concurrency_choices[] = {"forbid", "allow", "replace",
                                                  NULL};
static const char *const misfire_choices[] = {"run_once", "skip", NULL};
static const char *const method_choices[] = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", NULL};

#define OFF(f) offsetof(struct cx_job, f)
#define INT(n, f, lo, hi)                                                      \
  {                                                                            \
    n, CX__K_INT, OFF(f), lo, hi, 0, 0, NULL                                   \
  }
#define ID64(n, f, lo)                                                         \
  {                                                                            \
    n, CX__K_ID64, OFF(f), lo, INT64_MAX, 0, 0, NULL                           \
  }
#define STR(n, f, len, chars)                                                  \
  {                                                                            \
    n, CX__K_STR, OFF(f), 0, 0, len, chars, NULL                               \
  }
#define ENUM(n, f, c)                                                          \
  {                                                                            \
    n, CX__K_ENUM, OFF(f), 0, 0, CX_JOB_MAX_ENUM, 0, c                         \
  }
const struct cx__job_field cx__job_fields[] = {
    ID64("id", id, 1),
    STR("name", name, CX_JOB_MAX_NAME, 1),
    STR("command", command, CX_JOB_MAX_COMMAND, 0),
    INT("type", type, CX_JOB_CMD, CX_JOB_HTTP),
    STR("spec", spec, CX_JOB_MAX_SPEC, 0),
    INT("timeout", timeout, 0, CX_JOB_MAX_TIMEOUT),
    INT("retry_times", retry_times, 0, CX_JOB_MAX_RETRIES),
    INT("retry_interval", retry_interval, 0, CX_JOB_MAX_INTERVAL),
    INT("allocation", allocation, CX_ALLOC_MANUAL, CX_ALLOC_BROADCAST),
    STR("run_on", run_on, CX_JOB_MAX_RUN_ON, 0),
    INT("notify_status", notify_status, 1, 2),
    INT("notify_type", notify_type, 0, 6),
    {"notify_to_array", CX__K_IDS, OFF(notify_to_array), 1,
     CX_JOB_MAX_NOTIFY_TO, CX_JOB_MAX_NOTIFY_TEXT, 0, NULL},
    STR("note", note, CX_JOB_MAX_NOTE, 1),
    ID64("created", created, 0),
    ID64("updated", updated, 0),
    STR("timezone", timezone, CX_JOB_MAX_TIMEZONE, 0),
    {"enabled", CX__K_BOOL, OFF(enabled), 0, 1, 0, 0, NULL},
    ENUM("concurrency", concurrency, concurrency_choices),
    ENUM("misfire", misfire, misfire_choices),
    INT("starting_deadline", starting_deadline, 0, CX_JOB_MAX_DEADLINE),
    ENUM("http_method", http_method, method_choices),
    {"http_headers", CX__K_MAP, OFF(http_headers), 0, CX_JOB_MAX_MAP,
     CX_JOB_MAX_MAP_TEXT, 0, NULL},
    STR("http_body", http_body, CX_JOB_MAX_HTTP_BODY, 0),
    {"env", CX__K_MAP, OFF(env), 0, CX_JOB_MAX_MAP, CX_JOB_MAX_MAP_TEXT, 0,
     NULL},
    STR("workdir", workdir, CX_JOB_MAX_WORKDIR, 0),
    STR("notify_events", notify_events, CX_JOB_MAX_EVENTS, 0),
    INT("max_duration", max_duration, 0, CX_JOB_MAX_TIMEOUT),
    STR("run_as", run_as, CX_JOB_MAX_RUN_AS, 0),
    INT("limit_memory_mb", limit_memory_mb, 0, CX_JOB_MAX_LIMIT),
    INT("limit_nproc", limit_nproc, 0, CX_JOB_MAX_LIMIT),
    INT("limit_cpu_s", limit_cpu_s, 0, CX_JOB_MAX_LIMIT),
    INT("limit_nofile", limit_nofile, 0, CX_JOB_MAX_LIMIT),
    STR("node_selector", node_selector, CX_JOB_MAX_SELECTOR, 0),
    INT("max_running", max_running, 0, CX_JOB_MAX_RUNNING),
    /* Reply-only fields: accepted so a reply can be posted back. */
    {"next", CX__K_IGNORED, 0, 0, 0, 0, 0, NULL},
    {"node_state", CX__K_IGNORED, 0, 0, 0, 0, 0, NULL},
    {"nodes", CX__K_IGNORED, 0, 0, 0, 0, 0, NULL},
    {"paused", CX__K_IGNORED, 0, 0, 0, 0, 0, NULL},
};
#undef OFF
#undef INT
#undef ID64
#undef STR
#undef ENUM
const size_t cx__job_nfields = CX_ARRAY_LEN(cx__job_fields);

#define SLOT(j, f) ((char **)((char *)(j) + (f)->offset))

int cx__job_is_text(const struct cx__job_field *f)
{
  return f->kind == CX__K_STR || f->kind == CX__K_ENUM ||
         f->kind == CX__K_IDS || f->kind == CX__K_MAP;
}

int cx__job_fits(const struct cx__job_field *f, const char *v, size_t len)
{
  if (!f->chars)
    return len <= f->text_max;
  size_t n = 0;
  for (size_t i = 0; i < len && n <= f->text_max; i++)
    n += ((unsigned char)v[i] & 0xC0) != 0x80;
  return n <= f->text_max;
}

void cx__job_too_long(const struct cx__job_field *f, char *field, char *err)
{
  if (field != NULL)
    snprintf(field, CX_JOB_FIELD_LEN, "%s", f->name);
  cx_err_set(err, "%s: longer than %zu %s", f->name, f->text_max,
             f->chars ? "characters" : "bytes");
}

int cx_job_limit(const char *name, size_t *max, int *chars)
{
  for (size_t i = 0; i < cx__job_nfields; i++) {
    const struct cx__job_field *f = &cx__job_fields[i];
    if (strcmp(f->name, name) == 0 && cx__job_is_text(f)) {
      *max = f->text_max;
      *chars = f->chars;
      return 0;
    }
  }
  return CX_ENOTFOUND;
}

int cx_job_check_limits(const struct cx_job *j, char *field, char *err)
{
  for (size_t i = 0; i < cx__job_nfields; i++) {
    const struct cx__job_field *f = &cx__job_fields[i];
    const char *v = cx__job_is_text(f) ? *SLOT(j, f) : NULL;
    if (v != NULL && !cx__job_fits(f, v, strlen(v))) {
      cx__job_too_long(f, field, err);
      return CX_ETOOBIG;
    }
  }
  return 0;
}

void cx_job_init(struct cx_job *j)
{
  /* type and allocation stay 0: required fields have no default, so a job
   * that never names them fails cx_job_validate instead of silently
   * becoming a cmd job or an auto-placed one. */
  memset(j, 0, sizeof *j);
  j->notify_status = 2;
  j->enabled = 1;
  j->starting_deadline = 600;
}

void cx_job_clear(struct cx_job *j)
{
  if (j == NULL)
    return;
  for (size_t i = 0; i < cx__job_nfields; i++)
    if (cx__job_is_text(&cx__job_fields[i]))
      cx_free(*SLOT(j, &cx__job_fields[i]));
  memset(j, 0, sizeof *j);
}

int cx_job_copy(struct cx_job *dst, const struct cx_job *src)
{
  *dst = *src;
  for (size_t i = 0; i < cx__job_nfields; i++) {
    const struct cx__job_field *f = &cx__job_fields[i];
    char **slot = SLOT(dst, f);
    if (!cx__job_is_text(f) || *slot == NULL)
      continue;
    if ((*slot = cx_strdup(*slot)) == NULL) {
      /* Undo: free what was copied so far, leave dst empty. */
      for (size_t k = 0; k < i; k++)
        if (cx__job_is_text(&cx__job_fields[k]))
          cx_free(*SLOT(dst, &cx__job_fields[k]));
      memset(dst, 0, sizeof *dst);
      return -ENOMEM;
    }
  }
  return 0;
}
