/* Placeholder until the parser lands: every entry point says so. */
#include "cron/cron.h"

int cx_cron_parse(const char *expr, const struct cx_cron_opts *opts,
                  struct cx_cron **out, char *err)
{
  (void)expr;
  (void)opts;
  *out = NULL;
  cx_err_set(err, "cron parser not built yet");
  return CX_ENOTIMPL;
}

void cx_cron_free(struct cx_cron *c)
{
  (void)c;
}

int cx_cron_next(const struct cx_cron *c, int64_t after, int64_t *next)
{
  (void)c;
  (void)after;
  (void)next;
  return CX_ENOTIMPL;
}

int cx_cron_check(const char *expr, const struct cx_cron_opts *opts,
                  int64_t now, char *err)
{
  (void)now;
  struct cx_cron *c;
  return cx_cron_parse(expr, opts, &c, err);
}

const struct cx_tz *cx_cron_tz(const struct cx_cron *c)
{
  (void)c;
  return NULL;
}

int cx_cron_is_fixed_time(const struct cx_cron *c)
{
  (void)c;
  return 0;
}
