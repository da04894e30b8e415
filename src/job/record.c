/*
 * The job record: struct cx_job's defaults and release. Kept apart from
 * job.c (JSON and validation, which need the cron engine) so the store can
 * link it without linking cron.
 */
#include <string.h>

#include "job/job.h"

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
  char **f[] = {&j->name,        &j->command,         &j->spec,
                &j->run_on,      &j->notify_to_array, &j->note,
                &j->timezone,    &j->concurrency,     &j->misfire,
                &j->http_method, &j->http_headers,    &j->http_body,
                &j->env,         &j->workdir};
  for (size_t i = 0; i < CX_ARRAY_LEN(f); i++)
    cx_free(*f[i]);
  memset(j, 0, sizeof *j);
}
