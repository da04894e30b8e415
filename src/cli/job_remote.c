/*
 * `cronix job ...`: the jobs of a server through its API (docs/api.md).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/remote-int.h"
#include "cron/cron.h"
#include "job/job.h"
#include "util/util.h"

#define MAX_NEXT 1000

static const char job_usage[] =
    "usage: cronix job COMMAND [options]\n"
    "\n"
    "  ls [--name S] [--node UUID] [--type cmd|http] [--enabled true|false]\n"
    "                        list jobs (-o wide, -o json)\n"
    "  get ID|NAME           one job\n"
    "  add --name N --spec S --command C [field flags]\n"
    "                        create a job (cronix job add --help)\n"
    "  edit ID|NAME [field flags]\n"
    "                        change the fields given, keep the rest\n"
    "  rm ID|NAME...         delete jobs\n"
    "  pause ID|NAME...      stop firing (kept and placed)\n"
    "  resume ID|NAME...     fire again\n"
    "  run ID|NAME [--node UUID] [--wait] [--wait-timeout D]\n"
    "                        run once now; --wait prints the result\n"
    "  kill ID|NAME [--node UUID]\n"
    "                        kill the job's running processes\n"
    "  logs ID|NAME [-n N] [--status S]   recent runs, newest first\n"
    "  logs --run R          one run with every attempt and its output\n"
    "  logs --run R -f | logs ID|NAME -f\n"
    "                        follow a run's output live (the job's newest\n"
    "                        run) until it ends; exit 1 unless it succeeded\n"
    "  next ID|NAME|--spec EXPR [--tz ZONE] [-n N]\n"
    "                        the next fire times\n"
    "  export [--name S]     the jobs as a jobs file (docs/jobs-as-code.md)\n"
    "  apply -f FILE [--dry-run] [--prune]\n"
    "                        make the server's jobs match a jobs file\n"
    "  import-crontab FILE|- [--node UUID] [--paused] [--tz ZONE] [--dry-run]\n"
    "                        a crontab's lines as jobs\n"
    "\n"
    "client options (every command): --server URL (CRONIX_SERVER),\n"
    "  --token T (CRONIX_TOKEN), --cacert FILE (CRONIX_CACERT),\n"
    "  --api-timeout D (default 60s), -o table|wide|json\n"
    "exit: 0 ok, 1 the server refused, 2 usage, 3 server unreachable\n";

/* ---- job ls ---------------------------------------------------------- */

/* uuid -> hostname of every node, as an object (empty when not allowed). */
static json_t *node_names(struct rc_ctx *c)
{
  json_t *names = json_object(), *list = NULL;
  if (rc_list_all(c, "/node/search", NULL, &list) != 0)
    return names;
  size_t i;
  json_t *n;
  json_array_foreach(list, i, n)
  {
    json_object_set_new(names, rc_str(n, "uuid"),
                        json_string(rc_str(n, "hostname")));
  }
  json_decref(list);
  return names;
}

/* The next fire of job j after now, formatted in its zone; "-" if none. */
static void next_of(const json_t *j, int64_t now, char *buf, size_t cap)
{
  struct cx_cron *cr = NULL;
  struct cx_cron_opts o = {.timezone = rc_str(j, "timezone"),
                           .anchor = rc_int(j, "created")};
  int64_t next;
  snprintf(buf, cap, "-");
  if (!json_is_true(json_object_get(j, "enabled")))
    return;
  if (cx_cron_parse(rc_str(j, "spec"), &o, &cr, NULL) == 0 &&
      cx_cron_next(cr, now, &next) == 0) {
    char when[48], age[24];
    rc_time(next, cx_tz_name(cx_cron_tz(cr)), when, sizeof when);
    rc_age(next, now, age, sizeof age);
    snprintf(buf, cap, "%s (%s)", when, age);
  }
  cx_cron_free(cr);
}

/* "success 5m" for the job's newest run, "-" when it never ran. */
static void last_of(struct rc_ctx *c, int64_t id, int64_t now, char *buf,
                    size_t cap, enum rc_color *color)
{
  json_t *d = NULL;
  json_t *body =
      json_pack("{s:I, s:i}", "job_id", (json_int_t)id, "page_size", 1);
  snprintf(buf, cap, "-");
  *color = RC_PLAIN;
  if (rc_post(c, "/job/log", body, &d) != 0)
    return;
  json_t *run = json_array_get(json_object_get(d, "list"), 0);
  if (run != NULL) {
    char age[32];
    const char *st = rc_str(run, "status");
    rc_age(rc_int(run, "start_time") / 1000, now, age, sizeof age);
    snprintf(buf, cap, "%s %s ago", st, age);
    *color = strcmp(st, "success") == 0   ? RC_GREEN
             : strcmp(st, "running") == 0 ? RC_YELLOW
                                          : RC_RED;
  }
  json_decref(d);
}

static int parse_bool(const char *s, int *out)
{
  if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "1") == 0 ||
      strcmp(s, "on") == 0)
    *out = 1;
  else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 ||
           strcmp(s, "0") == 0 || strcmp(s, "off") == 0)
    *out = 0;
  else
    return -1;
  return 0;
}

static int parse_type(const char *s, int *out)
{
  if (strcmp(s, "cmd") == 0 || strcmp(s, "1") == 0)
    *out = 1;
  else if (strcmp(s, "http") == 0 || strcmp(s, "2") == 0)
    *out = 2;
  else
    return -1;
  return 0;
}

struct ls_ctx {
  struct rc_ctx *c;
  json_t *names; /* node_names */
  int64_t now;
};

static void job_row(struct rc_table *tb, const json_t *j, void *arg)
{
  struct ls_ctx *lc = arg;
  int wide = lc->c->output == RC_OUT_WIDE;
  char id[24], last[64], next[128], node_s[160];
  enum rc_color colors[10] = {0};
  const char *uuid = rc_str(j, "run_on");
  const char *host = rc_str(lc->names, uuid);
  int on = json_is_true(json_object_get(j, "enabled"));
  snprintf(id, sizeof id, "%lld", (long long)rc_int(j, "id"));
  if (wide || host[0] == '\0')
    snprintf(node_s, sizeof node_s, "%s%s%s%s", host, host[0] ? " (" : "", uuid,
             host[0] ? ")" : "");
  else
    snprintf(node_s, sizeof node_s, "%s", host);
  last_of(lc->c, rc_int(j, "id"), lc->now, last, sizeof last, &colors[6]);
  next_of(j, lc->now, next, sizeof next);
  colors[5] = on ? RC_GREEN : RC_YELLOW;
  const char *cells[10] = {id,
                           rc_str(j, "name"),
                           rc_str(j, "spec"),
                           rc_str(j, "timezone"),
                           node_s,
                           on ? "yes" : "paused",
                           last,
                           next,
                           rc_int(j, "type") == 2 ? "http" : "cmd",
                           rc_str(j, "command")};
  rc_table_row(tb, cells, colors);
}

static int job_ls(struct rc_ctx *c, int argc, char **argv)
{
  const char *name = NULL, *node = NULL, *type = NULL, *enabled = NULL;
  const struct rc_opt opts[] = {
      {"--name", NULL, RC_VALUE, &name},
      {"--node", NULL, RC_VALUE, &node},
      {"--type", NULL, RC_VALUE, &type},
      {"--enabled", NULL, RC_VALUE, &enabled},
      {NULL, NULL, 0, NULL},
  };
  int rc = rc_parse(c, argc, argv, 1, opts, NULL, job_usage), t, e;
  if (rc != 0)
    return rc;
  json_t *filter = json_object();
  if (name != NULL)
    json_object_set_new(filter, "name", json_string(name));
  if (node != NULL)
    json_object_set_new(filter, "run_on", json_string(node));
  if (type != NULL) {
    if (parse_type(type, &t) != 0) {
      json_decref(filter);
      return rc_fail(c, 2, "--type must be cmd or http");
    }
    json_object_set_new(filter, "type", json_integer(t));
  }
  if (enabled != NULL) {
    if (parse_bool(enabled, &e) != 0) {
      json_decref(filter);
      return rc_fail(c, 2, "--enabled must be true or false");
    }
    json_object_set_new(filter, "enabled", json_boolean(e));
  }
  struct rc_table tb = {
      .ncol = c->output == RC_OUT_WIDE ? 10 : 8,
      .head = {"ID", "NAME", "SCHEDULE", "ZONE", "NODE", "ENABLED", "LAST",
               "NEXT", "TYPE", "COMMAND"},
      .shrink = {0, 1, 1, 1, 1, 0, 1, 1, 0, 1},
  };
  struct ls_ctx lc = {.c = c, .now = cx_wall_s()};
  if (c->output != RC_OUT_JSON)
    lc.names = node_names(c);
  rc = rc_list_print(c, "/job/search", filter, &tb, job_row, &lc);
  json_decref(filter);
  json_decref(lc.names);
  return rc;
}

/* ---- job get --------------------------------------------------------- */

static int one_id(struct rc_ctx *c, const struct rc_list *pos, int64_t *id)
{
  if (pos->n != 1)
    return rc_fail(c, 2, "one job ID or NAME expected (got %d)", pos->n);
  return rc_job_id(c, pos->v[0], id);
}

static int job_find(struct rc_ctx *c, int64_t id, json_t **job)
{
  char path[64];
  snprintf(path, sizeof path, "/job/find?id=%lld", (long long)id);
  return rc_call(c, path, NULL, job);
}

static void print_value(const char *key, const json_t *v)
{
  if (json_is_string(v)) {
    printf("%-18s %s\n", key, json_string_value(v));
  } else {
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    printf("%-18s %s\n", key, s != NULL ? s : "?");
    free(s);
  }
}

static int job_get(struct rc_ctx *c, int argc, char **argv)
{
  struct rc_list pos = {0};
  int64_t id;
  json_t *job = NULL;
  int rc = rc_parse(c, argc, argv, 1, NULL, &pos, job_usage);
  if (rc == 0)
    rc = one_id(c, &pos, &id);
  if (rc == 0)
    rc = job_find(c, id, &job);
  if (rc != 0)
    return rc;
  if (c->output == RC_OUT_JSON) {
    rc_print_json(job);
  } else {
    /* The id, the fields of a jobs file, then what the server adds. */
    static const char *const extra[] = {"next", "node_state", "created",
                                        "updated"};
    print_value("id", json_object_get(job, "id"));
    for (size_t i = 0; i < rc_job_nfields; i++) {
      json_t *v = json_object_get(job, rc_job_fields[i]);
      if (v != NULL)
        print_value(rc_job_fields[i], v);
    }
    for (size_t i = 0; i < CX_ARRAY_LEN(extra); i++) {
      json_t *v = json_object_get(job, extra[i]);
      if (v != NULL)
        print_value(extra[i], v);
    }
  }
  json_decref(job);
  return 0;
}

/* ---- job add / edit -------------------------------------------------- */

enum fkind { F_STR, F_INT, F_DUR, F_TYPE, F_ALLOC, F_BOOL };
struct jfield {
  const char *flag, *key;
  enum fkind kind;
  int64_t max;
};
static const struct jfield fields[] = {
    {"--name", "name", F_STR, 0},
    {"--type", "type", F_TYPE, 0},
    {"--command", "command", F_STR, 0},
    {"--spec", "spec", F_STR, 0},
    {"--node", "run_on", F_STR, 0},
    {"--allocation", "allocation", F_ALLOC, 0},
    {"--timeout", "timeout", F_DUR, 2678400},
    {"--retry-times", "retry_times", F_INT, 100},
    {"--retry-interval", "retry_interval", F_DUR, 86400},
    {"--note", "note", F_STR, 0},
    {"--tz", "timezone", F_STR, 0},
    {"--enabled", "enabled", F_BOOL, 0},
    {"--concurrency", "concurrency", F_STR, 0},
    {"--misfire", "misfire", F_STR, 0},
    {"--starting-deadline", "starting_deadline", F_DUR, 604800},
    {"--http-method", "http_method", F_STR, 0},
    {"--body", "http_body", F_STR, 0},
    {"--workdir", "workdir", F_STR, 0},
    {"--notify-events", "notify_events", F_STR, 0},
    {"--max-duration", "max_duration", F_DUR, 2678400},
    {"--max-running", "max_running", F_INT, CX_JOB_MAX_RUNNING},
    {"--run-as", "run_as", F_STR, 0},
    {"--limit-memory-mb", "limit_memory_mb", F_INT, 1 << 20},
    {"--limit-nproc", "limit_nproc", F_INT, 1 << 20},
    {"--limit-cpu", "limit_cpu_s", F_DUR, 1 << 20},
    {"--limit-nofile", "limit_nofile", F_INT, 1 << 20},
    {"--selector", "node_selector", F_STR, 0},
};
#define NFIELDS CX_ARRAY_LEN(fields)

static const char job_add_usage[] =
    "usage: cronix job add --name N --spec EXPR --command C [options]\n"
    "       cronix job edit ID|NAME [options]   (only the fields given "
    "change)\n"
    "\n"
    "  --name N               unique name\n"
    "  --spec EXPR            cron expression (5, 6 or 7 fields, @daily,\n"
    "                         @every 10m, CRON_TZ=Zone prefix)\n"
    "  --command C            shell line (cmd), or URL (http)\n"
    "  --type cmd|http        default: http when --command is an http(s) URL\n"
    "  --node UUID            run on this node (allocation manual)\n"
    "  --allocation manual|auto|broadcast   default: manual with --node,\n"
    "                         else auto; broadcast: every matching node\n"
    "  --max-running N        broadcast: at most N nodes run a fire (0: all)\n"
    "  --tz ZONE              IANA zone the spec is read in\n"
    "  --timeout D            kill a run after D (90, 90s, 5m, 2h, 1d; 0 "
    "none)\n"
    "  --retry-times N        retries after a failed attempt (0..100)\n"
    "  --retry-interval D     wait between attempts\n"
    "  --concurrency forbid|allow|replace\n"
    "  --misfire run_once|skip\n"
    "  --starting-deadline D  how late a missed fire may still run\n"
    "  --notify CHANNEL       alert through email, feishu, dingtalk, wecom,\n"
    "                         slack or webhook; off: no alerts\n"
    "  --notify-to USER_ID    who is alerted (repeat)\n"
    "  --env NAME=VALUE       environment of a cmd job (repeat)\n"
    "  --workdir DIR          working directory of a cmd job\n"
    "  --http-method M        GET POST PUT PATCH DELETE HEAD OPTIONS\n"
    "  --header 'Name: value' request header of an http job (repeat)\n"
    "  --body TEXT            request body of an http job\n"
    "  --note TEXT            free text\n"
    "  --notify-events LIST   events that alert: failed,timeout,killed,lost,\n"
    "                         missed,recovered,success,max_duration\n"
    "  --max-duration D       a run longer than D is the event max_duration\n"
    "  --run-as USER          cmd: the Unix user (admin only; the node's\n"
    "                         node.run_as_allow must list it)\n"
    "  --limit-memory-mb N    cmd: address space per process (0 = none)\n"
    "  --limit-nproc N        cmd: processes of the run-as user\n"
    "  --limit-cpu D          cmd: CPU time per process\n"
    "  --limit-nofile N       cmd: open files per process\n"
    "  --selector EXPR        node labels the job's node must match:\n"
    "                         'env=prod,disk in (ssd,nvme),gpu!=no'\n"
    "  --enabled true|false   false = paused; --paused is the same\n";

/* Builds the job object from the flags; 0 or 2 after printing why. */
static int build_job(struct rc_ctx *c, const char *const *vals,
                     const struct rc_list *env, const struct rc_list *hdr,
                     const struct rc_list *notify_to, const char *notify,
                     int paused, json_t *job)
{
  for (size_t i = 0; i < NFIELDS; i++) {
    const struct jfield *f = &fields[i];
    const char *v = vals[i];
    int64_t n;
    int b;
    if (v == NULL)
      continue;
    json_t *x = NULL;
    switch (f->kind) {
    case F_STR:
      x = json_string(v);
      break;
    case F_INT:
      if (cx_parse_int64(v, 0, f->max, &n) == 0)
        x = json_integer(n);
      break;
    case F_DUR:
      if (rc_duration(v, f->max, &n) == 0)
        x = json_integer(n);
      break;
    case F_TYPE:
      if (parse_type(v, &b) == 0)
        x = json_integer(b);
      break;
    case F_ALLOC:
      if (strcmp(v, "manual") == 0 || strcmp(v, "1") == 0)
        x = json_integer(1);
      else if (strcmp(v, "auto") == 0 || strcmp(v, "2") == 0)
        x = json_integer(2);
      else if (strcmp(v, "broadcast") == 0 || strcmp(v, "3") == 0)
        x = json_integer(3);
      break;
    case F_BOOL:
      if (parse_bool(v, &b) == 0)
        x = json_boolean(b);
      break;
    }
    if (x == NULL)
      return rc_fail(c, 2, "%s: bad value '%.100s'%s", f->flag, v,
                     f->kind == F_DUR   ? " (a duration: 90, 90s, 5m, 2h, 1d)"
                     : f->kind == F_STR ? " (not valid UTF-8)"
                                        : "");
    json_object_set_new(job, f->key, x);
  }
  if (paused)
    json_object_set_new(job, "enabled", json_false());
  if (env->n > 0) {
    json_t *o = json_object();
    for (int i = 0; i < env->n; i++) {
      const char *eq = strchr(env->v[i], '=');
      if (eq == NULL || eq == env->v[i]) {
        json_decref(o);
        return rc_fail(c, 2, "--env takes NAME=VALUE, got '%.100s'", env->v[i]);
      }
      char *k = cx_strndup(env->v[i], (size_t)(eq - env->v[i]));
      json_object_set_new(o, k, json_string(eq + 1));
      cx_free(k);
    }
    json_object_set_new(job, "env", o);
  }
  if (hdr->n > 0) {
    json_t *o = json_object();
    for (int i = 0; i < hdr->n; i++) {
      const char *colon = strchr(hdr->v[i], ':');
      if (colon == NULL || colon == hdr->v[i]) {
        json_decref(o);
        return rc_fail(c, 2, "--header takes 'Name: value', got '%.100s'",
                       hdr->v[i]);
      }
      char *k = cx_strndup(hdr->v[i], (size_t)(colon - hdr->v[i]));
      const char *val = colon + 1;
      while (*val == ' ' || *val == '\t')
        val++;
      json_object_set_new(o, k, json_string(val));
      cx_free(k);
    }
    json_object_set_new(job, "http_headers", o);
  }
  if (notify_to->n > 0) {
    json_t *a = json_array();
    for (int i = 0; i < notify_to->n; i++) {
      int64_t uid;
      if (cx_parse_int64(notify_to->v[i], 1, INT64_MAX, &uid) != 0) {
        json_decref(a);
        return rc_fail(c, 2, "--notify-to takes a user id, got '%.100s'",
                       notify_to->v[i]);
      }
      json_array_append_new(a, json_integer(uid));
    }
    json_object_set_new(job, "notify_to_array", a);
  }
  if (notify != NULL) {
    /* notify_type's numbers (SPEC, issue 14); "off" turns alerts off. */
    static const char *const channels[] = {
        "off", "email", "feishu", "dingtalk", "wecom", "slack", "webhook"};
    int type = -1;
    for (int i = 0; i < (int)CX_ARRAY_LEN(channels); i++)
      if (strcmp(notify, channels[i]) == 0)
        type = i;
    if (type < 0)
      return rc_fail(c, 2,
                     "--notify must be email, feishu, dingtalk, wecom, slack, "
                     "webhook or off");
    json_object_set_new(job, "notify_status", json_integer(type ? 1 : 2));
    json_object_set_new(job, "notify_type", json_integer(type));
  }
  return 0;
}

static void print_job_line(const char *what, const json_t *job)
{
  printf("%s job %lld '%s'", what, (long long)rc_int(job, "id"),
         rc_str(job, "name"));
  json_t *next = json_array_get(json_object_get(job, "next"), 0);
  if (json_is_string(next))
    printf(", next %s", json_string_value(next));
  else if (json_is_false(json_object_get(job, "enabled")))
    printf(", paused");
  putchar('\n');
}

static int job_add_edit(struct rc_ctx *c, int argc, char **argv, int edit)
{
  const char *vals[NFIELDS] = {0}, *notify = NULL;
  struct rc_list env = {0}, hdr = {0}, notify_to = {0}, pos = {0};
  int paused = 0;
  struct rc_opt opts[NFIELDS + 7];
  size_t k = 0;
  for (size_t i = 0; i < NFIELDS; i++)
    opts[k++] = (struct rc_opt){
        fields[i].flag,
        strcmp(fields[i].flag, "--tz") == 0 ? "--timezone" : NULL, RC_VALUE,
        &vals[i]};
  opts[k++] = (struct rc_opt){"--env", NULL, RC_LIST, &env};
  opts[k++] = (struct rc_opt){"--header", NULL, RC_LIST, &hdr};
  opts[k++] = (struct rc_opt){"--notify-to", NULL, RC_LIST, &notify_to};
  opts[k++] = (struct rc_opt){"--notify", NULL, RC_VALUE, &notify};
  opts[k++] = (struct rc_opt){"--paused", NULL, RC_FLAG, &paused};
  opts[k] = (struct rc_opt){NULL, NULL, 0, NULL};
  int rc = rc_parse(c, argc, argv, 1, opts, edit ? &pos : NULL, job_add_usage);
  if (rc != 0)
    return rc;
  json_t *job = json_object(), *got = NULL;
  rc = build_job(c, vals, &env, &hdr, &notify_to, notify, paused, job);
  if (rc == 0 && edit) {
    int64_t id;
    if (json_object_size(job) == 0)
      rc = rc_fail(c, 2, "nothing to change: give a field flag (--spec ...)");
    else if ((rc = one_id(c, &pos, &id)) == 0)
      json_object_set_new(job, "id", json_integer(id));
  } else if (rc == 0) {
    rc_job_defaults(job);
  }
  if (rc == 0)
    rc = rc_call(c, "/job/add", job, &got);
  json_decref(job);
  if (rc != 0)
    return rc;
  if (c->output == RC_OUT_JSON)
    rc_print_json(got);
  else
    print_job_line(edit ? "changed" : "created", got);
  json_decref(got);
  return 0;
}

/* ---- rm / pause / resume / run / kill -------------------------------- */

static int ids_of(struct rc_ctx *c, const struct rc_list *pos, json_t **ids)
{
  *ids = json_array();
  if (pos->n == 0)
    return rc_fail(c, 2, "which jobs? give IDs or NAMEs");
  for (int i = 0; i < pos->n; i++) {
    int64_t id;
    int rc = rc_job_id(c, pos->v[i], &id);
    if (rc != 0)
      return rc;
    json_array_append_new(*ids, json_integer(id));
  }
  return 0;
}

static int job_many(struct rc_ctx *c, int argc, char **argv, const char *path,
                    const char *done)
{
  struct rc_list pos = {0};
  json_t *ids = NULL, *d = NULL;
  int rc = rc_parse(c, argc, argv, 1, NULL, &pos, job_usage);
  if (rc == 0)
    rc = ids_of(c, &pos, &ids);
  if (rc == 0)
    rc = rc_post(c, path, json_pack("{s:O}", "ids", ids), &d);
  if (rc == 0) {
    if (c->output == RC_OUT_JSON) {
      rc_print_json(d);
    } else {
      size_t i;
      json_t *v;
      json_array_foreach(ids, i, v)
      {
        printf("%s job %lld\n", done, (long long)json_integer_value(v));
      }
    }
  }
  json_decref(ids);
  json_decref(d);
  return rc;
}

/* The id of the job's newest run (0 when none). */
static int newest_run(struct rc_ctx *c, int64_t id, int64_t *run)
{
  json_t *d = NULL;
  int rc = rc_post(
      c, "/job/log",
      json_pack("{s:I, s:i}", "job_id", (json_int_t)id, "page_size", 1), &d);
  *run = rc_int(json_array_get(json_object_get(d, "list"), 0), "id");
  json_decref(d);
  return rc;
}

static void print_run(const json_t *r)
{
  int64_t ms = rc_run_ms(r);
  if (ms < 0)
    ms = 0;
  printf(
      "run %lld of job %lld on %s: %s (exit %lld, %lld attempt%s, "
      "%lld.%03lld s)\n",
      (long long)rc_int(r, "id"), (long long)rc_int(r, "job_id"),
      rc_str(r, "hostname")[0] ? rc_str(r, "hostname") : rc_str(r, "node_uuid"),
      rc_str(r, "status"), (long long)rc_int(r, "exit_code"),
      (long long)rc_int(r, "attempts"), rc_int(r, "attempts") == 1 ? "" : "s",
      (long long)(ms / 1000), (long long)(ms % 1000));
  const char *out = rc_str(r, "output");
  if (out[0] != '\0') {
    fputs(out, stdout);
    if (out[strlen(out) - 1] != '\n')
      putchar('\n');
  }
}

/* Polls the run log for the first once-run newer than `after`, until it
 * ends. Exit 0 when it succeeded, 1 when it did not. */
static int wait_run(struct rc_ctx *c, int64_t job, int64_t after,
                    const char *node, int64_t timeout_s)
{
  cx_mono until = cx_mono_now() + (cx_mono)timeout_s * 1000000000;
  for (;;) {
    json_t *d = NULL, *found = NULL;
    int rc = rc_post(
        c, "/job/log",
        json_pack("{s:I, s:i}", "job_id", (json_int_t)job, "page_size", 50),
        &d);
    if (rc != 0)
      return rc;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(d, "list"), i, r)
    {
      if (rc_int(r, "id") > after &&
          strcmp(rc_str(r, "trigger"), "once") == 0 &&
          strcmp(rc_str(r, "node_uuid"), node) == 0)
        found = r; /* newest first: the last match is the oldest */
    }
    if (found != NULL && strcmp(rc_str(found, "status"), "running") != 0) {
      if (c->output == RC_OUT_JSON)
        rc_print_json(found);
      else
        print_run(found);
      rc = json_is_true(json_object_get(found, "success")) ? 0 : 1;
      if (rc != 0)
        fprintf(stderr, "cronix job run: the run ended %s\n",
                rc_str(found, "status"));
      json_decref(d);
      return rc;
    }
    json_decref(d);
    if (timeout_s > 0 && cx_mono_now() > until)
      return rc_fail(c, 1, "no result within the --wait-timeout");
    cx_sleep_us(300000);
  }
}

static int job_run_kill(struct rc_ctx *c, int argc, char **argv, int run)
{
  struct rc_list pos = {0};
  const char *node = NULL, *wait_timeout = NULL;
  int wait = 0;
  const struct rc_opt opts[] = {
      {"--node", NULL, RC_VALUE, &node},
      {run ? "--wait" : "--no-such", NULL, RC_FLAG, &wait},
      {run ? "--wait-timeout" : "--no-such", NULL, RC_VALUE, &wait_timeout},
      {NULL, NULL, 0, NULL},
  };
  int64_t id, before = 0, wt = 0;
  json_t *d = NULL;
  int rc = rc_parse(c, argc, argv, 1, opts, &pos, job_usage);
  if (rc != 0)
    return rc;
  if (wait_timeout != NULL && rc_duration(wait_timeout, 31 * 86400, &wt) != 0)
    return rc_fail(c, 2, "--wait-timeout: a duration like 90s or 10m");
  if ((rc = one_id(c, &pos, &id)) != 0)
    return rc;
  if (wait && (rc = newest_run(c, id, &before)) != 0)
    return rc;
  json_t *body = json_pack("{s:I}", "job_id", (json_int_t)id);
  if (node != NULL)
    json_object_set_new(body, "node_uuid", json_string(node));
  rc = rc_post(c, run ? "/job/once" : "/job/kill", body, &d);
  if (rc != 0)
    return rc;
  char uuid[128];
  snprintf(uuid, sizeof uuid, "%s", rc_str(d, "node_uuid"));
  if (!wait) {
    if (c->output == RC_OUT_JSON)
      rc_print_json(d);
    else
      printf("%s job %lld on node %s (request %s)\n",
             run ? "asked to run" : "asked to kill", (long long)id, uuid,
             rc_str(d, "request_id"));
  }
  json_decref(d);
  return wait ? wait_run(c, id, before, uuid, wt) : 0;
}

/* ---- logs ------------------------------------------------------------ */

static int run_detail(struct rc_ctx *c, const char *run)
{
  char path[96];
  int64_t id;
  json_t *d = NULL;
  if (cx_parse_int64(run, 1, INT64_MAX, &id) != 0)
    return rc_fail(c, 2, "--run takes a run id");
  snprintf(path, sizeof path, "/job/run?id=%lld", (long long)id);
  int rc = rc_call(c, path, NULL, &d);
  if (rc != 0)
    return rc;
  if (c->output == RC_OUT_JSON) {
    rc_print_json(d);
  } else {
    size_t i;
    json_t *a;
    json_t *attempts = json_object_get(d, "attempt_list");
    print_run(d);
    if (json_array_size(attempts) > 1) {
      json_array_foreach(attempts, i, a)
      {
        printf("-- attempt %lld: %s (exit %lld)\n",
               (long long)rc_int(a, "attempt"), rc_str(a, "status"),
               (long long)rc_int(a, "exit_code"));
        fputs(rc_str(a, "output"), stdout);
      }
    }
  }
  json_decref(d);
  return 0;
}

static void run_row(struct rc_table *tb, const json_t *r, void *arg)
{
  (void)arg;
  char rid[24], started[64], dur[32], ex[24], att[24];
  enum rc_color colors[8] = {0};
  int64_t st = rc_int(r, "start_time"), ms = rc_run_ms(r);
  snprintf(rid, sizeof rid, "%lld", (long long)rc_int(r, "id"));
  rc_time(st / 1000, NULL, started, sizeof started);
  if (ms >= 0 && rc_int(r, "end_time") > 0)
    snprintf(dur, sizeof dur, "%lld.%03llds", (long long)(ms / 1000),
             (long long)(ms % 1000));
  else
    snprintf(dur, sizeof dur, "-");
  snprintf(ex, sizeof ex, "%lld", (long long)rc_int(r, "exit_code"));
  snprintf(att, sizeof att, "%lld", (long long)rc_int(r, "attempts"));
  const char *s = rc_str(r, "status");
  colors[5] = strcmp(s, "success") == 0   ? RC_GREEN
              : strcmp(s, "running") == 0 ? RC_YELLOW
                                          : RC_RED;
  const char *cells[8] = {
      rid, started, dur, rc_str(r, "hostname"), rc_str(r, "trigger"),
      s,   ex,      att};
  rc_table_row(tb, cells, colors);
}

/* `logs --run R -f`: prints run R's output as it comes, from the start,
 * until the run ends (GET /job/output pages from an offset: live from the
 * node's window while it runs, then the stored output). A gap the window
 * overwrote is told on stderr. Exit 0 when the run succeeded, 1 when it
 * did not (its status on stderr). */
static int follow_run(struct rc_ctx *c, int64_t run)
{
  int64_t offset = 0;
  for (;;) {
    char path[128];
    json_t *d = NULL;
    snprintf(path, sizeof path, "/job/output?run_id=%lld&offset=%lld",
             (long long)run, (long long)offset);
    int rc = rc_call(c, path, NULL, &d);
    if (rc != 0)
      return rc;
    const char *out = rc_str(d, "output");
    int64_t next = rc_int(d, "next_offset"), missed = rc_int(d, "missed");
    int running = json_is_true(json_object_get(d, "running"));
    if (missed > 0)
      fprintf(stderr, "[... %lld bytes missed ...]\n", (long long)missed);
    fputs(out, stdout);
    fflush(stdout);
    if (next <= offset && !running) {
      const char *st = rc_str(d, "status");
      int ok = strcmp(st, "success") == 0;
      fprintf(stderr, "cronix job logs: run %lld ended %s (exit %lld)\n",
              (long long)run, st, (long long)rc_int(d, "exit_code"));
      json_decref(d);
      return ok ? 0 : 1;
    }
    int more = next > offset;
    offset = next > offset ? next : offset;
    json_decref(d);
    if (!more)
      cx_sleep_us(250000);
  }
}

static int job_logs(struct rc_ctx *c, int argc, char **argv)
{
  struct rc_list pos = {0};
  const char *n_s = NULL, *status = NULL, *run = NULL;
  int follow = 0;
  const struct rc_opt opts[] = {
      {"--count", "-n", RC_VALUE, &n_s},
      {"--status", NULL, RC_VALUE, &status},
      {"--run", NULL, RC_VALUE, &run},
      {"--follow", "-f", RC_FLAG, &follow},
      {NULL, NULL, 0, NULL},
  };
  int64_t id = 0, n = 20, rid = 0;
  int rc = rc_parse(c, argc, argv, 1, opts, &pos, job_usage);
  if (rc != 0)
    return rc;
  if (run != NULL && pos.n != 0)
    return rc_fail(c, 2, "--run R takes no job");
  if (run != NULL && cx_parse_int64(run, 1, INT64_MAX, &rid) != 0)
    return rc_fail(c, 2, "--run takes a run id");
  if (follow) {
    /* -f: the given run, else the job's newest. */
    if (run == NULL && ((rc = one_id(c, &pos, &id)) != 0 ||
                        (rc = newest_run(c, id, &rid)) != 0))
      return rc;
    if (rid == 0)
      return rc_fail(c, 1, "job %lld has not run yet", (long long)id);
    return follow_run(c, rid);
  }
  if (run != NULL)
    return run_detail(c, run);
  if (n_s != NULL && cx_parse_int64(n_s, 1, 500, &n) != 0)
    return rc_fail(c, 2, "-n must be 1..500");
  if ((rc = one_id(c, &pos, &id)) != 0)
    return rc;
  json_t *q = json_pack("{s:I}", "job_id", (json_int_t)id), *all = NULL;
  /* "failed" means every unsuccessful end; other statuses are matched
   * exactly among the runs the server returns. */
  int exact = status != NULL && strcmp(status, "failed") != 0;
  if (status != NULL && !exact)
    json_object_set_new(q, "success", json_false());
  else if (status != NULL && strcmp(status, "success") == 0)
    json_object_set_new(q, "success", json_true());
  static const char *const statuses[] = {"running", "success", "failed",
                                         "timeout", "killed",  "skipped",
                                         "lost",    "error"};
  int known = status == NULL;
  for (size_t i = 0; i < CX_ARRAY_LEN(statuses) && !known; i++)
    known = strcmp(statuses[i], status) == 0;
  if (!known) {
    json_decref(q);
    return rc_fail(c, 2,
                   "--status must be one of running success failed "
                   "timeout killed skipped lost error");
  }
  json_object_set_new(q, "page_size", json_integer(exact ? 500 : n));
  json_t *d = NULL;
  rc = rc_post(c, "/job/log", q, &d);
  if (rc != 0)
    return rc;
  all = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(d, "list"), i, r)
  {
    if ((int64_t)json_array_size(all) < n &&
        (!exact || strcmp(rc_str(r, "status"), status) == 0))
      json_array_append(all, r);
  }
  json_decref(d);
  struct rc_table tb = {
      .ncol = 8,
      .head = {"RUN", "STARTED", "DURATION", "NODE", "TRIGGER", "STATUS",
               "EXIT", "ATTEMPTS"},
      .shrink = {0, 0, 0, 1, 0, 0, 0, 0},
  };
  return rc_print_list(c, all, &tb, run_row, NULL);
}

/* ---- next ------------------------------------------------------------ */

static int job_next(struct rc_ctx *c, int argc, char **argv)
{
  struct rc_list pos = {0};
  const char *spec = NULL, *tz = NULL, *n_s = NULL;
  const struct rc_opt opts[] = {
      {"--spec", NULL, RC_VALUE, &spec},
      {"--tz", NULL, RC_VALUE, &tz},
      {"--count", "-n", RC_VALUE, &n_s},
      {NULL, NULL, 0, NULL},
  };
  int64_t n = 5, id, anchor;
  json_t *job = NULL;
  char err[CX_ERR_LEN];
  int rc = rc_parse(c, argc, argv, 1, opts, &pos, job_usage);
  if (rc != 0)
    return rc;
  if (n_s != NULL && cx_parse_int64(n_s, 1, MAX_NEXT, &n) != 0)
    return rc_fail(c, 2, "-n must be 1..%d", MAX_NEXT);
  anchor = cx_wall_s();
  if (spec == NULL) {
    if ((rc = one_id(c, &pos, &id)) != 0 || (rc = job_find(c, id, &job)) != 0)
      return rc;
    spec = rc_str(job, "spec");
    if (tz == NULL)
      tz = rc_str(job, "timezone");
    anchor = rc_int(job, "created");
    if (!json_is_true(json_object_get(job, "enabled")))
      fprintf(stderr,
              "cronix job next: job %lld is paused: it fires at none "
              "of these times until resumed\n",
              (long long)id);
  } else if (pos.n != 0) {
    return rc_fail(c, 2, "give a job or --spec, not both");
  }
  struct cx_cron_opts o = {.timezone = tz, .anchor = anchor};
  struct cx_cron *cr = NULL;
  if (cx_cron_parse(spec, &o, &cr, err) != 0) {
    json_decref(job);
    return rc_fail(c, 2, "%s", err);
  }
  json_t *times = json_array();
  int64_t after = cx_wall_s(), next;
  for (int64_t i = 0; i < n && cx_cron_next(cr, after, &next) == 0; i++) {
    char line[64];
    cx_time_format(next, cx_cron_tz(cr), line, sizeof line);
    json_array_append_new(times, json_string(line));
    after = next;
  }
  if (c->output == RC_OUT_JSON) {
    rc_print_json(times);
  } else {
    size_t i;
    json_t *t;
    json_array_foreach(times, i, t)
    {
      puts(json_string_value(t));
    }
    if (json_array_size(times) == 0)
      fprintf(stderr, "cronix job next: never fires again\n");
  }
  json_decref(times);
  cx_cron_free(cr);
  json_decref(job);
  return 0;
}

/* ---- dispatch -------------------------------------------------------- */

int rc_job(int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : NULL;
  char cmd[64];
  if (sub == NULL) {
    fputs(job_usage, stderr);
    return 2;
  }
  if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
      strcmp(sub, "help") == 0) {
    fputs(job_usage, stdout);
    return 0;
  }
  snprintf(cmd, sizeof cmd, "job %.40s", sub);
  struct rc_ctx c = {.cmd = cmd};
  int rc;
  argc--, argv++;
  if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
    rc = job_ls(&c, argc, argv);
  else if (strcmp(sub, "get") == 0)
    rc = job_get(&c, argc, argv);
  else if (strcmp(sub, "add") == 0)
    rc = job_add_edit(&c, argc, argv, 0);
  else if (strcmp(sub, "edit") == 0)
    rc = job_add_edit(&c, argc, argv, 1);
  else if (strcmp(sub, "rm") == 0)
    rc = job_many(&c, argc, argv, "/job/del", "deleted");
  else if (strcmp(sub, "pause") == 0)
    rc = job_many(&c, argc, argv, "/job/pause", "paused");
  else if (strcmp(sub, "resume") == 0)
    rc = job_many(&c, argc, argv, "/job/resume", "resumed");
  else if (strcmp(sub, "run") == 0)
    rc = job_run_kill(&c, argc, argv, 1);
  else if (strcmp(sub, "kill") == 0)
    rc = job_run_kill(&c, argc, argv, 0);
  else if (strcmp(sub, "logs") == 0)
    rc = job_logs(&c, argc, argv);
  else if (strcmp(sub, "next") == 0)
    rc = job_next(&c, argc, argv);
  else if (strcmp(sub, "export") == 0)
    rc = rc_job_export(&c, argc, argv);
  else if (strcmp(sub, "apply") == 0)
    rc = rc_job_apply(&c, argc, argv);
  else if (strcmp(sub, "import-crontab") == 0)
    rc = rc_job_import_crontab(&c, argc, argv);
  else
    rc = rc_fail(&c, 2, "unknown command (cronix job --help lists them)");
  rc_close(&c);
  cx_tz_cleanup();
  return rc == RC_HELP ? 0 : rc;
}
