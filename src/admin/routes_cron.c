/*
 * POST /cron/next (role viewer): the next fire times of a cron expression,
 * from the nodes' own engine, for the console's preview while a job is
 * typed (JavaScript parsers disagree with ours on L, W, # and DST).
 *
 * Body: spec (required, <= CX_JOB_MAX_SPEC bytes), timezone (optional IANA
 * zone; absent or "" = system.default_timezone), from (optional: unix s or
 * an RFC 3339 string; default now), count (1..100, default 10). The checks
 * are those of /job/add: an unknown zone is 400/1001 naming `timezone`, a
 * bad spec or one that never fires again after `from` is 400/1002 naming
 * `spec`, with the same messages.
 * Reply: {"next": ["RFC 3339 in the zone", ...], "timezone": "zone used"};
 * fewer than count when the schedule ends.
 */
#include <string.h>

#include "admin/admin-int.h"
#include "cron/cron.h"
#include "job/job.h"

#define NEXT_MAX 100
#define NEXT_DEFAULT 10

/* `from`: unix seconds or RFC 3339; 0 = absent, 1 = set, -1 = replied. */
static int read_from(struct cx_http_req *req, const json_t *body, int64_t *out)
{
  const json_t *v = json_object_get(body, "from");
  if (v == NULL || json_is_null(v))
    return 0;
  if (json_is_string(v)) {
    if (json_string_length(v) <= 64 &&
        cx_time_parse(json_string_value(v), out) == 0)
      return 1;
  } else if (json_is_integer(v)) {
    json_int_t t = json_integer_value(v);
    /* Years 1..9999 as the engine counts them. */
    if (t >= -62135596800LL && t <= 253402300799LL) {
      *out = (int64_t)t;
      return 1;
    }
  }
  cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "from",
                      "from: unix seconds (years 1..9999) or an RFC 3339 time");
  return -1;
}

static void h_cron_next(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"spec", "timezone", "from", "count",
                                        NULL};
  struct cx_admin *a = ctx;
  const json_t *body = cx_http_req_json(req);
  const char *spec = NULL, *zone = NULL;
  int64_t from = cx_wall_s(), count = NEXT_DEFAULT;
  char err[CX_ERR_LEN] = "";

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, NULL) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0 ||
      cx__admin_json_str(req, body, "spec", CX_JOB_MAX_SPEC, &spec) < 0 ||
      cx__admin_json_str(req, body, "timezone", CX_JOB_MAX_TIMEZONE, &zone) <
          0 ||
      cx__admin_json_int(req, body, "count", 1, NEXT_MAX, &count) < 0 ||
      read_from(req, body, &from) < 0)
    return;
  if (spec == NULL || spec[0] == '\0') {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "spec", "spec: required");
    return;
  }
  if (zone != NULL && zone[0] != '\0') {
    const struct cx_tz *tz;
    if (cx_tz_get(zone, &tz, err) != 0) {
      cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "timezone", "timezone: %s",
                          err);
      return;
    }
  }
  /* The job does not exist yet: @every counts from `from`, as it would
   * from the `created` of a job saved now. */
  struct cx_cron_opts opts = {.timezone = zone, .anchor = from};
  struct cx_cron *c = NULL;
  if (cx_cron_check(spec, &opts, from, err) != 0 ||
      cx_cron_parse(spec, &opts, &c, err) != 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_SPEC, "spec", "spec: %s", err);
    return;
  }
  json_t *list = json_array();
  int64_t t = from;
  for (int64_t i = 0; list != NULL && i < count && cx_cron_next(c, t, &t) == 0;
       i++) {
    char buf[32];
    if (cx_time_format(t, cx_cron_tz(c), buf, sizeof buf) == 0 ||
        json_array_append_new(list, json_string(buf)) != 0)
      break;
  }
  const char *used = cx_tz_name(cx_cron_tz(c));
  json_t *o =
      list ? json_pack("{s:o, s:s}", "next", list, "timezone", used ? used : "")
           : NULL;
  cx_cron_free(c);
  if (o == NULL)
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
  else
    cx_http_reply_ok(req, o);
}

int cx__admin_routes_cron(struct cx_admin *a)
{
  static const struct cx__admin_route routes[] = {
      {"POST", "/cron/next", h_cron_next},
  };
  return cx__admin_register(a, routes, CX_ARRAY_LEN(routes));
}
