/* job: notify_events, the events a job alerts on (issue 14). */
#include <string.h>

#include "job/job.h"
#include "support/test.h"

TEST(job_events_default_to_everything_but_success_and_max_duration)
{
  struct cx_job j;
  cx_job_init(&j);
  static const char *const on[] = {"failed", "timeout", "killed",
                                   "lost",   "missed",  "recovered"};
  for (size_t i = 0; i < CX_ARRAY_LEN(on); i++)
    ASSERT_MSG(cx_job_alerts_on(&j, on[i]), "%s", on[i]);
  ASSERT(!cx_job_alerts_on(&j, "success"));
  ASSERT(!cx_job_alerts_on(&j, "max_duration"));
  j.notify_events = (char *)"";
  ASSERT(cx_job_alerts_on(&j, "failed"));
}

TEST(job_events_list_names_exactly_what_alerts)
{
  struct cx_job j;
  cx_job_init(&j);
  j.notify_events = (char *)" success,max_duration , timeout";
  ASSERT(cx_job_alerts_on(&j, "success"));
  ASSERT(cx_job_alerts_on(&j, "max_duration"));
  ASSERT(cx_job_alerts_on(&j, "timeout"));
  ASSERT(!cx_job_alerts_on(&j, "failed"));
  ASSERT(!cx_job_alerts_on(&j, "time")); /* whole names only */
  ASSERT_EQ(cx_job_events_check("failed,recovered"), 0);
  ASSERT_EQ(cx_job_events_check("failed,exploded"), CX_EPARSE);
  ASSERT_EQ(cx_job_events_check("fail"), CX_EPARSE);
}

TEST(job_events_unknown_name_is_refused_naming_the_field)
{
  char field[CX_JOB_FIELD_LEN] = "", err[CX_ERR_LEN] = "";
  enum cx_job_invalid why;
  struct cx_job j;
  cx_job_init(&j);
  j.name = (char *)"a";
  j.command = (char *)"true";
  j.type = CX_JOB_CMD;
  j.spec = (char *)"* * * * *";
  j.allocation = CX_ALLOC_AUTO;
  j.notify_events = (char *)"failed,sometimes";
  ASSERT(cx_job_validate(&j, 1700000000, &why, field, err) != 0);
  ASSERT_STREQ(field, "notify_events");
  j.notify_events = (char *)"failed,success";
  ASSERT_EQ(cx_job_validate(&j, 1700000000, &why, field, err), 0);
}
