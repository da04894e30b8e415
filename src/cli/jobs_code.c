/*
 * Jobs as code: `cronix job export` writes the server's jobs as a jobs
 * file, `cronix job apply -f FILE` makes the server match one. The format
 * is docs/jobs-as-code.md: {"cronix_jobs": 1, "jobs": [job, ...]}, each
 * job keyed by its name and holding the fields of /job/add that describe
 * it (no id, no store-assigned times).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/remote-int.h"
#include "util/util.h"

#define MAX_FILE (64u * 1024 * 1024)
#define FORMAT_VERSION 1

/* Every field a jobs file manages, in the order export writes them. */
const char *const rc_job_fields[] = {
    "name",
    "type",
    "command",
    "spec",
    "timezone",
    "enabled",
    "allocation",
    "run_on",
    "timeout",
    "retry_times",
    "retry_interval",
    "concurrency",
    "misfire",
    "starting_deadline",
    "notify_status",
    "notify_type",
    "notify_to_array",
    "note",
    "env",
    "workdir",
    "http_method",
    "http_headers",
    "http_body",
    "notify_events",
    "max_duration",
    "run_as",
    "limit_memory_mb",
    "limit_nproc",
    "limit_cpu_s",
    "limit_nofile",
    "node_selector",
    "max_running",
};

const size_t rc_job_nfields = CX_ARRAY_LEN(rc_job_fields);

static int is_managed(const char *key)
{
  for (size_t i = 0; i < rc_job_nfields; i++)
    if (strcmp(rc_job_fields[i], key) == 0)
      return 1;
  return 0;
}

/* An auto-placed job's node is the admin's choice, not part of the job. */
static int auto_placed(const json_t *want, const json_t *have)
{
  json_t *a = json_object_get(want, "allocation");
  if (a == NULL)
    a = json_object_get(have, "allocation");
  return a != NULL && json_integer_value(a) != 1; /* auto 2, broadcast 3 */
}

/* The jobs-file form of a job as the API answers it. */
static json_t *exported(const json_t *job)
{
  json_t *o = json_object();
  for (size_t i = 0; i < rc_job_nfields; i++) {
    json_t *v = json_object_get(job, rc_job_fields[i]);
    if (v == NULL ||
        (strcmp(rc_job_fields[i], "run_on") == 0 && auto_placed(job, NULL)))
      continue;
    json_object_set(o, rc_job_fields[i], v);
  }
  return o;
}

static int by_name(const void *a, const void *b)
{
  const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
  return strcmp(rc_str(x, "name"), rc_str(y, "name"));
}

/* A new array of the jobs in list sorted by name. */
static json_t *sorted(const json_t *list)
{
  size_t n = json_array_size(list);
  json_t **v = cx_calloc(n ? n : 1, sizeof *v), *out = json_array();
  for (size_t i = 0; i < n; i++)
    v[i] = json_array_get(list, i);
  qsort(v, n, sizeof *v, by_name);
  for (size_t i = 0; i < n; i++)
    json_array_append(out, v[i]);
  cx_free(v);
  return out;
}

static const char export_usage[] =
    "usage: cronix job export [--name SUBSTRING] > jobs.json\n"
    "\n"
    "Writes the jobs (those whose name contains SUBSTRING) as a jobs file,\n"
    "sorted by name: docs/jobs-as-code.md.\n";

int rc_job_export(struct rc_ctx *c, int argc, char **argv)
{
  const char *name = NULL;
  const struct rc_opt opts[] = {{"--name", NULL, RC_VALUE, &name},
                                {NULL, NULL, 0, NULL}};
  json_t *list = NULL;
  int rc = rc_parse(c, argc, argv, 1, opts, NULL, export_usage);
  if (rc != 0)
    return rc;
  json_t *q = json_object();
  if (name != NULL)
    json_object_set_new(q, "name", json_string(name));
  rc = rc_list_all(c, "/job/search", q, &list);
  json_decref(q);
  if (rc != 0)
    return rc;
  json_t *jobs = json_array(), *s = sorted(list);
  size_t i;
  json_t *j;
  json_array_foreach(s, i, j)
  {
    json_array_append_new(jobs, exported(j));
  }
  json_t *doc =
      json_pack("{s:i, s:o}", "cronix_jobs", FORMAT_VERSION, "jobs", jobs);
  char *text = json_dumps(doc, JSON_INDENT(2));
  if (text != NULL) {
    puts(text);
    free(text);
  }
  json_decref(doc);
  json_decref(s);
  json_decref(list);
  return 0;
}

/* ---- apply ----------------------------------------------------------- */

/* Reads FILE ("-" = stdin) into a new string (NUL-terminated). */
static char *read_all(struct rc_ctx *c, const char *path, size_t *len)
{
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
  struct cx_buf b = {0};
  char chunk[65536];
  size_t n;
  if (f == NULL) {
    rc_fail(c, 2, "%s: %s", path, strerror(errno));
    return NULL;
  }
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (b.len + n > MAX_FILE) {
      rc_fail(c, 2, "%s: larger than %u bytes", path, MAX_FILE);
      cx_buf_free(&b);
      b.data = NULL;
      break;
    }
    cx_buf_append(&b, chunk, n);
  }
  int bad = ferror(f);
  if (f != stdin)
    fclose(f);
  if (bad) {
    rc_fail(c, 2, "%s: read error", path);
    cx_buf_free(&b);
    return NULL;
  }
  cx_buf_puts(&b, "");
  *len = b.len;
  return b.data != NULL ? cx_buf_steal(&b) : NULL;
}

/* Checks the jobs of a file: objects with a unique non-empty name and
 * managed fields only. 0 or 2 after printing which job and field. */
static int check_jobs(struct rc_ctx *c, const char *path, const json_t *jobs)
{
  size_t i;
  json_t *j;
  json_t *seen = json_object();
  int rc = 0;
  json_array_foreach(jobs, i, j)
  {
    const char *key;
    json_t *v;
    const char *name = rc_str(j, "name");
    if (!json_is_object(j) || name[0] == '\0') {
      rc = rc_fail(c, 2, "%s: jobs[%zu]: an object with a \"name\" expected",
                   path, i);
      break;
    }
    if (json_object_get(seen, name) != NULL) {
      rc = rc_fail(c, 2, "%s: jobs[%zu]: the name '%s' is used twice", path, i,
                   name);
      break;
    }
    json_object_set_new(seen, name, json_true());
    json_object_foreach(j, key, v)
    {
      if (!is_managed(key)) {
        rc = rc_fail(c, 2, "%s: job '%s': %s: not a field of a jobs file%s",
                     path, name, key,
                     strcmp(key, "id") == 0 ? " (jobs are keyed by name)" : "");
        break;
      }
    }
    if (rc != 0)
      break;
  }
  json_decref(seen);
  return rc;
}

/* A value for a diff line, cut to fit. */
static void show(const json_t *v, char *buf, size_t cap)
{
  char *s = v != NULL
                ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS)
                : NULL;
  snprintf(buf, cap, "%s", s != NULL ? s : "(unset)");
  if (s != NULL && strlen(s) >= cap && cap > 4)
    memcpy(buf + cap - 4, "...", 4);
  free(s);
}

/* The members of want that differ from have, as an object. */
static json_t *changes(const json_t *want, const json_t *have)
{
  json_t *diff = json_object(), *v;
  const char *key;
  json_object_foreach((json_t *)want, key, v)
  {
    json_t *cur = json_object_get(have, key);
    json_t *norm = NULL;
    if (strcmp(key, "name") == 0 ||
        (strcmp(key, "run_on") == 0 && auto_placed(want, have)))
      continue;
    if (strcmp(key, "enabled") == 0 && json_is_integer(v))
      v = norm = json_boolean(json_integer_value(v) != 0);
    if (!json_equal(v, cur))
      json_object_set(diff, key, v);
    json_decref(norm);
  }
  return diff;
}

void rc_job_defaults(json_t *job)
{
  const char *cmd = rc_str(job, "command");
  int http =
      strncmp(cmd, "http://", 7) == 0 || strncmp(cmd, "https://", 8) == 0;
  if (json_object_get(job, "type") == NULL)
    json_object_set_new(job, "type", json_integer(http ? 2 : 1));
  if (json_object_get(job, "allocation") == NULL)
    json_object_set_new(
        job, "allocation",
        json_integer(json_object_get(job, "run_on") != NULL ? 1 : 2));
}

static json_t *create_body(const json_t *want)
{
  json_t *b = json_deep_copy(want);
  rc_job_defaults(b);
  return b;
}

int rc_apply_jobs(struct rc_ctx *c, const json_t *jobs, int dry_run, int prune)
{
  json_t *list = NULL;
  int rc = rc_list_all(c, "/job/search", NULL, &list);
  if (rc != 0)
    return rc;
  json_t *have = json_object(), *wanted = json_object(), *del = json_array();
  size_t i;
  json_t *j;
  int created = 0, changed = 0, deleted = 0, same = 0;
  const char *verb = dry_run ? "would " : "";
  json_array_foreach(list, i, j)
  {
    json_object_set(have, rc_str(j, "name"), j);
  }
  json_array_foreach(jobs, i, j)
  {
    const char *name = rc_str(j, "name");
    json_t *cur = json_object_get(have, name), *got = NULL;
    json_object_set_new(wanted, name, json_true());
    if (cur == NULL) {
      printf("%screate '%s'\n", verb, name);
      created++;
      if (!dry_run && (rc = rc_post(c, "/job/add", create_body(j), &got)) != 0)
        break;
      json_decref(got);
      continue;
    }
    json_t *diff = changes(j, cur);
    if (json_object_size(diff) == 0) {
      same++;
      json_decref(diff);
      continue;
    }
    printf("%schange '%s' (id %lld)\n", verb, name,
           (long long)rc_int(cur, "id"));
    const char *key;
    json_t *v;
    json_object_foreach(diff, key, v)
    {
      char from[256], to[256];
      show(json_object_get(cur, key), from, sizeof from);
      show(v, to, sizeof to);
      printf("    %s: %s -> %s\n", key, from, to);
    }
    changed++;
    if (!dry_run) {
      /* Only the differing members, and the optimistic check: a job
       * changed by someone else since it was read is not overwritten. */
      json_object_set(diff, "id", json_object_get(cur, "id"));
      json_object_set(diff, "updated", json_object_get(cur, "updated"));
      rc = rc_call(c, "/job/add", diff, &got);
      json_decref(got);
    }
    json_decref(diff);
    if (rc != 0)
      break;
  }
  if (rc == 0 && prune) {
    json_array_foreach(list, i, j)
    {
      if (json_object_get(wanted, rc_str(j, "name")) != NULL)
        continue;
      printf("%sdelete '%s' (id %lld)\n", verb, rc_str(j, "name"),
             (long long)rc_int(j, "id"));
      json_array_append(del, json_object_get(j, "id"));
      deleted++;
    }
    if (!dry_run && json_array_size(del) > 0)
      rc = rc_post(c, "/job/del", json_pack("{s:O}", "ids", del), NULL);
  }
  if (rc == 0 && dry_run)
    printf("dry run: %d to create, %d to change, %d to delete, %d "
           "unchanged\n",
           created, changed, deleted, same);
  else if (rc == 0)
    printf("done: %d created, %d changed, %d deleted, %d unchanged\n", created,
           changed, deleted, same);
  else
    fprintf(stderr,
            "cronix %s: stopped at the first refusal; the steps "
            "printed before it were applied\n",
            c->cmd);
  json_decref(del);
  json_decref(wanted);
  json_decref(have);
  json_decref(list);
  return rc;
}

static const char apply_usage[] =
    "usage: cronix job apply -f FILE|- [--dry-run] [--prune]\n"
    "\n"
    "Makes the server's jobs match FILE (docs/jobs-as-code.md), keyed by\n"
    "name: creates the jobs it lacks, changes the fields that differ (a\n"
    "field the file leaves out is left alone), and with --prune deletes the\n"
    "jobs the file does not name. --dry-run prints the plan, field by\n"
    "field, and changes nothing. Applying the same file twice changes\n"
    "nothing the second time.\n";

int rc_job_apply(struct rc_ctx *c, int argc, char **argv)
{
  const char *file = NULL;
  int dry = 0, prune = 0;
  const struct rc_opt opts[] = {
      {"--file", "-f", RC_VALUE, &file},
      {"--dry-run", NULL, RC_FLAG, &dry},
      {"--prune", NULL, RC_FLAG, &prune},
      {NULL, NULL, 0, NULL},
  };
  size_t len;
  json_error_t jerr;
  int rc = rc_parse(c, argc, argv, 1, opts, NULL, apply_usage);
  if (rc != 0)
    return rc;
  if (file == NULL)
    return rc_fail(c, 2, "-f FILE is required");
  char *text = read_all(c, file, &len);
  if (text == NULL)
    return 2;
  json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  cx_free(text);
  if (doc == NULL)
    return rc_fail(c, 2, "%s:%d:%d: %s", file, jerr.line, jerr.column,
                   jerr.text);
  json_t *jobs = json_is_array(doc) ? doc : json_object_get(doc, "jobs");
  json_t *ver = json_object_get(doc, "cronix_jobs");
  if (!json_is_array(jobs))
    rc = rc_fail(c, 2, "%s: a \"jobs\" array expected", file);
  else if (ver != NULL && json_integer_value(ver) != FORMAT_VERSION)
    rc = rc_fail(c, 2, "%s: cronix_jobs %lld: only version %d is known", file,
                 (long long)json_integer_value(ver), FORMAT_VERSION);
  else if ((rc = check_jobs(c, file, jobs)) == 0)
    rc = rc_apply_jobs(c, jobs, dry, prune);
  json_decref(doc);
  return rc;
}
