/*
 * admin: the job routes (SPEC §4, §5) -- POST /job/add, /job/del,
 * GET /job/find, POST /job/search, /job/log, /job/once, /job/kill,
 * /job/pause, /job/resume -- with placement and publication.
 *
 * The write protocol (placement, store row, coordination key and their
 * compensations) is jobs.c's; the handlers here parse, call it and reply.
 * An update of an auto job keeps its node while that node is alive (no
 * needless moves); manual = run_on must be alive (SPEC §5.2).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin-int.h"
#include "admin/alerts.h"
#include "cron/cron.h"
#include "job/job.h"

#define MAX_IDS 1000   /* ids per /job/del, /job/pause, /job/resume */
#define NEXT_FIRES 5   /* fire times in /job/add and /job/find replies */
#define TRIGGER_TTL 60 /* s: lease of once/kill keys */

static void totals_forget(struct cx_admin *a);

/* ---- JSON of a job ------------------------------------------------------- */

/* Adds "next": the next NEXT_FIRES fire times after now, RFC 3339 in the
 * job's zone ([] if the spec no longer parses or never fires, and for a
 * paused job, which fires at none of them), and "paused" = !enabled. */
static int add_next(json_t *o, const struct cx_job *j)
{
  struct cx_cron_opts opts = {.timezone = j->timezone, .anchor = j->created};
  struct cx_cron *c = NULL;
  json_t *arr = json_array();
  int64_t t = cx_wall_s();

  if (arr == NULL)
    return -ENOMEM;
  if (j->enabled && j->spec != NULL &&
      cx_cron_parse(j->spec, &opts, &c, NULL) == 0) {
    for (int i = 0; i < NEXT_FIRES && cx_cron_next(c, t, &t) == 0; i++) {
      char buf[32];
      if (cx_time_format(t, cx_cron_tz(c), buf, sizeof buf) == 0)
        break;
      json_array_append_new(arr, json_string(buf));
    }
    cx_cron_free(c);
  }
  if (json_object_set_new(o, "next", arr) != 0 ||
      json_object_set_new(o, "paused", json_boolean(!j->enabled)) != 0)
    return -ENOMEM;
  return 0;
}

/* The job as stored with "next" and, when node_state is not NULL, that
 * too; in its viewer form (cx_job_redact_json) when redact. NULL on
 * allocation failure. */
static json_t *job_reply(const struct cx_job *j, const char *node_state,
                         int redact)
{
  json_t *o = cx_job_to_json(j);
  if (o == NULL || add_next(o, j) != 0 ||
      (redact && cx_job_redact_json(o) != 0) ||
      (node_state != NULL &&
       json_object_set_new(o, "node_state", json_string(node_state)) != 0)) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* warn: /job/add's data.warnings (alerts.h), NULL or empty = none. */
static void reply_job(struct cx_http_req *req, const struct cx_job *j,
                      const char *node_state, int redact, json_t *warn)
{
  json_t *o = job_reply(j, node_state, redact);
  if (o != NULL && json_array_size(warn) > 0 &&
      json_object_set(o, "warnings", warn) != 0) {
    json_decref(o);
    o = NULL;
  }
  if (o == NULL)
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
  else
    cx_http_reply_ok(req, o);
}

/* ---- request helpers ----------------------------------------------------- */

/* Reads {ids:[...]} (1..MAX_IDS positive integers) into a new array. */
static int read_ids(struct cx_http_req *req, const json_t *body, int64_t **ids,
                    size_t *n)
{
  json_t *arr = json_object_get(body, "ids");
  if (!json_is_array(arr) || json_array_size(arr) == 0 ||
      json_array_size(arr) > MAX_IDS) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "ids",
                        "ids: required, an array of 1..%d job ids", MAX_IDS);
    return -1;
  }
  *n = json_array_size(arr);
  *ids = cx_malloc(*n * sizeof **ids);
  if (*ids == NULL) {
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < *n; i++) {
    json_t *v = json_array_get(arr, i);
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
      cx_free(*ids);
      cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "ids",
                          "ids[%zu]: must be a positive integer", i);
      return -1;
    }
    (*ids)[i] = json_integer_value(v);
  }
  return 0;
}

/* Replies 404 naming the first id with no job (or the backend error) and
 * returns -1; 0 when every job exists. */
static int ids_exist(struct cx_admin *a, struct cx_http_req *req,
                     const int64_t *ids, size_t n)
{
  char err[CX_ERR_LEN] = "";
  for (size_t i = 0; i < n; i++) {
    struct cx_job j;
    memset(&j, 0, sizeof j);
    int rc = cx_store_job_find(a->store, ids[i], &j, err);
    cx_job_clear(&j);
    if (rc != 0) {
      char what[48];
      snprintf(what, sizeof what, "job %lld", (long long)ids[i]);
      cx__admin_reply_backend_error(req, rc, what, err);
      return -1;
    }
  }
  return 0;
}

/* Reads an optional yes/no filter (true/false or 1/0) into CX_STORE_*. */
static int read_yesno(struct cx_http_req *req, const json_t *body,
                      const char *name, int *out)
{
  json_t *v = json_object_get(body, name);
  *out = CX_STORE_ANY;
  if (v == NULL || json_is_null(v))
    return 0;
  if (json_is_boolean(v)) {
    *out = json_is_true(v) ? CX_STORE_YES : CX_STORE_NO;
    return 0;
  }
  if (json_is_integer(v) &&
      (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
    *out = json_integer_value(v) ? CX_STORE_YES : CX_STORE_NO;
    return 0;
  }
  cx_http_reply_error(req, CX_HTTP_BAD_INPUT, name, "%s: must be true or false",
                      name);
  return -1;
}

/* Reads an optional set filter: one of the strings in `known`, or an array
 * of 1..CX_RUN_FILTER_SET distinct ones. The values point into body (or
 * known). 0, or -1 after replying 400 naming the field. */
static int read_set(struct cx_http_req *req, const json_t *body,
                    const char *name, const char *const *known,
                    const char **out, int *n)
{
  json_t *v = json_object_get(body, name);
  *n = 0;
  if (v == NULL || json_is_null(v))
    return 0;
  size_t count = json_is_array(v) ? json_array_size(v) : 1;
  if (count == 0 || count > CX_RUN_FILTER_SET)
    goto bad;
  for (size_t i = 0; i < count; i++) {
    json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
    const char *s = json_string_value(e);
    size_t k = 0;
    while (s != NULL && known[k] != NULL && strcmp(known[k], s) != 0)
      k++;
    if (s == NULL || known[k] == NULL)
      goto bad;
    for (int j = 0; j < *n; j++)
      if (out[j] == known[k])
        goto bad;
    out[(*n)++] = known[k];
  }
  return 0;
bad:;
  struct cx_buf b = {0};
  for (size_t k = 0; known[k] != NULL; k++)
    cx_buf_printf(&b, "%s%s", k ? ", " : "", known[k]);
  cx_http_reply_error(req, CX_HTTP_BAD_INPUT, name,
                      "%s: must be one of %s, or an array of distinct ones",
                      name, cx_buf_failed(&b) || !b.data ? "?" : b.data);
  cx_buf_free(&b);
  *n = 0;
  return -1;
}

/* The common part of /job/del, /job/pause, /job/resume: an operator, a
 * body {ids}, and every id naming a job (all or nothing: a missing id is
 * 404 before anything changes). Replies and returns -1 on failure;
 * *ids is the caller's to free on success. */
static int ids_request(struct cx_admin *a, struct cx_http_req *req,
                       int64_t **ids, size_t *n, struct cx__admin_who *who)
{
  static const char *const allowed[] = {"ids", NULL};
  json_t *body = cx_http_req_json(req);
  if (cx__admin_auth(a, req, CX_ROLE_OPERATOR, who) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0 ||
      read_ids(req, body, ids, n))
    return -1;
  if (ids_exist(a, req, *ids, *n) != 0) {
    cx_free(*ids);
    *ids = NULL;
    return -1;
  }
  return 0;
}

static void reply_oom(struct cx_http_req *req)
{
  cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
}

/* ---- POST /job/add ------------------------------------------------------- */

static int set_run_on(struct cx_http_req *req, struct cx_job *j,
                      const char *node)
{
  char *dup = cx_strdup(node);
  if (dup == NULL) {
    reply_oom(req);
    return -1;
  }
  cx_free(j->run_on);
  j->run_on = dup;
  return 0;
}

/* Chooses j->run_on per SPEC §5.2. prev_node: the node of the stored job
 * (update; an auto job stays there while it is alive) or NULL (create).
 * Replies and returns -1 on refusal. */
static int place(struct cx_admin *a, struct cx_http_req *req, struct cx_job *j,
                 const char *prev_node)
{
  char err[CX_ERR_LEN] = "";
  const char *what = "coordination";
  int fit = CX__FIT_DEAD, rc;

  if (j->allocation == CX_ALLOC_MANUAL) {
    if ((rc = cx__jobs_fit(a, j->run_on, j->node_selector, &fit, err)) != 0)
      goto backend;
    if (fit == CX__FIT_DEAD) {
      cx_http_reply_error(req, CX_HTTP_NODE_UNAVAIL, "run_on",
                          "run_on: node %.64s is not registered or not alive",
                          j->run_on);
      return -1;
    }
    if (fit == CX__FIT_DRAINED) {
      cx_http_reply_error(req, CX_HTTP_NODE_UNAVAIL, "run_on",
                          "run_on: node %.64s is drained (/node/undrain)",
                          j->run_on);
      return -1;
    }
    if (fit == CX__FIT_MISMATCH) {
      cx_http_reply_error(req, CX_HTTP_NODE_UNAVAIL, "run_on",
                          "run_on: node %.64s does not match node_selector "
                          "'%.256s'",
                          j->run_on, j->node_selector);
      return -1;
    }
    if (prev_node == NULL)
      cx__jobs_placed(j->run_on);
    return 0;
  }
  if (j->type == CX_JOB_CMD && !a->cfg->cmd_auto_allocation) {
    cx_http_reply_error(req, CX_HTTP_CMD_AUTO, "allocation",
                        "allocation: cmd jobs must name their node "
                        "(allocation 1 + run_on) unless "
                        "system.cmd_auto_allocation is on");
    return -1;
  }
  if (j->allocation == CX_ALLOC_BROADCAST) /* every matching node: no pick */
    return set_run_on(req, j, "");
  if (prev_node != NULL && prev_node[0] != '\0') {
    if ((rc = cx__jobs_fit(a, prev_node, j->node_selector, &fit, err)) != 0)
      goto backend;
    if (fit == CX__FIT_OK)
      return set_run_on(req, j, prev_node);
  }
  struct cx__placement p;
  if ((rc = cx__jobs_placement(a, 0, &p, &what, err)) != 0)
    goto backend;
  long k = cx__jobs_pick(&p, j->node_selector);
  rc = k < 0 ? 0 : set_run_on(req, j, p.alive[k]);
  cx__jobs_placement_free(&p);
  if (k < 0)
    cx_http_reply_error(
        req, CX_HTTP_NO_NODE, NULL, "no alive node%s to place the job on",
        j->node_selector && j->node_selector[0] ? " matching node_selector"
                                                : "");
  return k < 0 ? -1 : rc;
backend:
  cx__admin_reply_backend_error(req, rc == CX_ENOTFOUND ? CX_EUNAVAIL : rc,
                                what, err);
  return -1;
}

static void job_create(struct cx_admin *a, struct cx_http_req *req,
                       const struct cx__admin_who *who, struct cx_job *j,
                       json_t *warn)
{
  char err[CX_ERR_LEN] = "";
  int in_coord = 0;
  struct cx__actor actor = cx__admin_actor(req, who);
  int rc = cx__jobs_create(a, j, &actor, &in_coord, err);
  if (rc == CX_EEXISTS) {
    cx_http_reply_error(req, CX_HTTP_CONFLICT, "name",
                        "name: a job called \"%.128s\" exists", j->name);
  } else if (rc != 0 && !in_coord) {
    cx__admin_reply_backend_error(req, rc, "store", err);
  } else if (rc == -ENOMEM) {
    reply_oom(req);
  } else if (rc != 0) {
    cx_http_reply_error(req, CX_HTTP_UNAVAIL, NULL,
                        "coordination service unavailable, job not created: "
                        "%s",
                        err[0] ? err : cx_strerror(rc));
  } else {
    reply_job(req, j, NULL, 0, warn);
  }
}

/* run_as picks the Unix user a command runs as: only an admin may set
 * it, and only an admin may change a job that has one (a new command
 * would run as that user). 0, or -1 after a 403. */
static int run_as_allowed(struct cx_http_req *req, enum cx_role role,
                          const struct cx_job *j, const struct cx_job *old)
{
  int set =
      (j->run_as && j->run_as[0]) || (old && old->run_as && old->run_as[0]);
  if (!set || role >= CX_ROLE_ADMIN)
    return 0;
  cx_http_reply_error(req, CX_HTTP_FORBIDDEN, "run_as",
                      "run_as: only an admin may set it or change a job "
                      "that has it");
  return -1;
}

static void job_update(struct cx_admin *a, struct cx_http_req *req,
                       const struct cx__admin_who *who, const json_t *body,
                       int64_t id)
{
  char err[CX_ERR_LEN] = "", field[CX_JOB_FIELD_LEN];
  struct cx_job old, j;
  enum cx_job_invalid why;
  json_t *warn = NULL;
  pthread_mutex_t *mu = cx__jobs_lock(id);
  int rc;

  memset(&old, 0, sizeof old);
  memset(&j, 0, sizeof j);
  pthread_mutex_lock(mu);
  rc = cx_store_job_find(a->store, id, &old, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "job", err);
    goto out;
  }
  if (cx_job_copy(&j, &old) != 0) {
    reply_oom(req);
    goto out;
  }
  field[0] = '\0';
  rc = cx_job_from_json(body, &j, field, err);
  if (rc != 0) {
    if (rc == -ENOMEM)
      reply_oom(req);
    else
      cx_http_reply_error(req, CX_HTTP_BAD_INPUT, field, "%s", err);
    goto out;
  }
  if (run_as_allowed(req, who->role, &j, &old) != 0)
    goto out;
  j.id = id;
  j.created = old.created; /* read-only */
  if (json_object_get(body, "updated") == NULL)
    j.updated = old.updated; /* no optimistic check asked for */
  rc = cx_job_validate(&j, cx_wall_s(), &why, field, err);
  if (rc != 0) {
    cx_http_reply_error(
        req, why == CX_JOB_BAD_SPEC ? CX_HTTP_BAD_SPEC : CX_HTTP_BAD_INPUT,
        field, "%s", err);
    goto out;
  }
  if (cx__alerts_job_check(a, req, &j, &warn) != 0 ||
      place(a, req, &j, old.run_on) != 0)
    goto out;
  int in_coord = 0;
  struct cx__actor actor = cx__admin_actor(req, who);
  rc = cx__jobs_update(a, &j, &old, &actor, &in_coord, err);
  if (rc == CX_ECONFLICT && !in_coord) {
    cx_http_reply_error(req, CX_HTTP_CONFLICT, "updated",
                        "updated: job %lld changed since it was read "
                        "(stale update); read it again",
                        (long long)id);
    goto out;
  }
  if (rc == CX_EEXISTS && !in_coord) {
    cx_http_reply_error(req, CX_HTTP_CONFLICT, "name",
                        "name: a job called \"%.128s\" exists", j.name);
    goto out;
  }
  if (rc != 0 && !in_coord) {
    cx__admin_reply_backend_error(req, rc, "job", err);
    goto out;
  }
  if (rc != 0) {
    if (rc == -ENOMEM)
      reply_oom(req);
    else
      cx_http_reply_error(req, CX_HTTP_UNAVAIL, NULL,
                          "coordination service unavailable, job %lld not "
                          "changed: %s",
                          (long long)id, err[0] ? err : cx_strerror(rc));
    goto out;
  }
  reply_job(req, &j, NULL, 0, warn);
out:
  pthread_mutex_unlock(mu);
  json_decref(warn);
  cx_job_clear(&j);
  cx_job_clear(&old);
}

static void h_job_add(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  char err[CX_ERR_LEN] = "", field[CX_JOB_FIELD_LEN] = "";
  enum cx_job_invalid why;
  int64_t id = 0;
  struct cx_job j;
  json_t *warn = NULL;
  struct cx__admin_who who;

  if (cx__admin_auth(a, req, CX_ROLE_OPERATOR, &who) != 0)
    return;
  if (cx__admin_json_int(req, body, "id", 1, INT64_MAX, &id) < 0)
    return;
  if (id > 0) {
    job_update(a, req, &who, body, id);
    totals_forget(a);
    return;
  }
  cx_job_init(&j);
  int rc = cx_job_from_json(body, &j, field, err);
  if (rc != 0) {
    if (rc == -ENOMEM)
      reply_oom(req);
    else
      cx_http_reply_error(req, CX_HTTP_BAD_INPUT, field, "%s", err);
    goto out;
  }
  if (run_as_allowed(req, who.role, &j, NULL) != 0)
    goto out;
  j.created = j.updated = 0;
  rc = cx_job_validate(&j, cx_wall_s(), &why, field, err);
  if (rc != 0) {
    cx_http_reply_error(
        req, why == CX_JOB_BAD_SPEC ? CX_HTTP_BAD_SPEC : CX_HTTP_BAD_INPUT,
        field, "%s", err);
    goto out;
  }
  if (cx__alerts_job_check(a, req, &j, &warn) != 0 ||
      place(a, req, &j, NULL) != 0)
    goto out;
  job_create(a, req, &who, &j, warn);
  totals_forget(a);
out:
  json_decref(warn);
  cx_job_clear(&j);
}

/* ---- POST /job/del ------------------------------------------------------- */

static void h_job_del(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  char err[CX_ERR_LEN] = "";
  int64_t *ids = NULL;
  size_t n = 0, done = 0;
  json_t *deleted = NULL;
  struct cx__admin_who who;

  if (ids_request(a, req, &ids, &n, &who) != 0)
    return;
  struct cx__actor actor = cx__admin_actor(req, &who);
  if ((deleted = json_array()) == NULL) {
    reply_oom(req);
    goto out;
  }
  for (; done < n; done++) {
    int rc = cx__jobs_delete(a, ids[done], &actor, err);
    if (rc == CX_ENOTFOUND) /* deleted meanwhile: fine */
      continue;
    if (rc != 0) {
      cx_http_reply_error(req, CX_HTTP_UNAVAIL, NULL,
                          "store or coordination service unavailable: jobs "
                          "deleted before the failure: %zu of %zu, job %lld "
                          "not deleted: %s",
                          json_array_size(deleted), n, (long long)ids[done],
                          err);
      goto out;
    }
    json_array_append_new(deleted, json_integer(ids[done]));
  }
  cx__jobs_load_forget();
  cx_http_reply_ok(req, json_pack("{s:O}", "deleted", deleted));
out:
  totals_forget(a);
  json_decref(deleted);
  cx_free(ids);
}

/* ---- GET /job/find ------------------------------------------------------- */

/* /job/find of a broadcast job: "nodes", the uuids it runs on now (alive,
 * not drained, matching; in shard order), node_state "broadcast". */
static void reply_bcast(struct cx_admin *a, struct cx_http_req *req,
                        const struct cx_job *j, int redact)
{
  char err[CX_ERR_LEN] = "";
  char **nodes = NULL;
  size_t nn = 0;
  int rc = cx__jobs_bcast_nodes(a, j->node_selector, &nodes, &nn, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc == CX_ENOTFOUND ? CX_EUNAVAIL : rc,
                                  "coordination", err);
    return;
  }
  json_t *o = job_reply(j, "broadcast", redact), *list = json_array();
  for (size_t i = 0; i < nn; i++) {
    if (list != NULL && json_array_append_new(list, json_string(nodes[i]))) {
      json_decref(list);
      list = NULL;
    }
    cx_free(nodes[i]);
  }
  cx_free(nodes);
  if (o == NULL || list == NULL || json_object_set_new(o, "nodes", list) != 0) {
    json_decref(o);
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    return;
  }
  cx_http_reply_ok(req, o);
}

static void h_job_find(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  char err[CX_ERR_LEN] = "";
  const char *s = cx_http_req_query(req, "id");
  int64_t id;
  struct cx_job j;
  struct cx__admin_who who;
  int alive = 0;

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, &who) != 0)
    return;
  if (s == NULL || cx_parse_int64(s, 1, INT64_MAX, &id) != 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "id",
                        "id: required, a positive integer");
    return;
  }
  memset(&j, 0, sizeof j);
  int rc = cx_store_job_find(a->store, id, &j, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "job", err);
    return;
  }
  const char *state = "unassigned";
  if (j.allocation == CX_ALLOC_BROADCAST) {
    reply_bcast(a, req, &j, who.role < CX_ROLE_OPERATOR);
    cx_job_clear(&j);
    return;
  }
  if (j.run_on[0] != '\0') {
    rc = cx__admin_node_alive(a, j.run_on, &alive, err);
    if (rc != 0) {
      cx__admin_reply_backend_error(req, rc, "coordination", err);
      cx_job_clear(&j);
      return;
    }
    state = alive ? "alive" : "dead";
  }
  reply_job(req, &j, state, who.role < CX_ROLE_OPERATOR, NULL);
  cx_job_clear(&j);
}

/* Replies one page of n items (each size bytes) encoded by enc. */
static void reply_items(struct cx_http_req *req, const void *items, size_t n,
                        size_t size, json_t *(*enc)(const void *),
                        int64_t total, int page, int page_size)
{
  json_t *list = json_array();
  for (size_t i = 0; list != NULL && i < n; i++)
    if (json_array_append_new(list, enc((const char *)items + i * size)) != 0) {
      json_decref(list);
      list = NULL;
    }
  if (list == NULL)
    reply_oom(req);
  else
    cx__admin_reply_page(req, list, total, page, page_size);
}

/* ---- POST /job/search ---------------------------------------------------- */

/* Totals of /job/search per filter, cached for TOTAL_TTL_US: counting every
 * matching row on each page costs O(jobs). Every job write through this
 * admin (add, update, del, pause, resume) invalidates them at once
 * (job_gen); another admin process's writes show within TOTAL_TTL_US. A
 * short page corrects the total from its own rows. */
#define TOTAL_TTL_US 1000000

/* 1 and *total when key has a fresh total; else 0 and *gen to fill with. */
static int total_get(struct cx_admin *a, const char *key, int64_t *total,
                     uint64_t *gen)
{
  cx_mono now = cx_mono_now();
  int hit = 0;
  pthread_mutex_lock(&a->total_mu);
  *gen = a->job_gen;
  for (size_t i = 0; i < CX_ARRAY_LEN(a->totals) && !hit; i++) {
    struct cx__total_entry *e = &a->totals[i];
    if (e->at != 0 && e->gen == a->job_gen && now - e->at < TOTAL_TTL_US &&
        strcmp(e->key, key) == 0) {
      *total = e->total;
      hit = 1;
    }
  }
  pthread_mutex_unlock(&a->total_mu);
  return hit;
}

static void total_put(struct cx_admin *a, const char *key, int64_t total,
                      uint64_t gen)
{
  pthread_mutex_lock(&a->total_mu);
  if (gen == a->job_gen) {
    struct cx__total_entry *e = NULL;
    for (size_t i = 0; i < CX_ARRAY_LEN(a->totals) && e == NULL; i++)
      if (strcmp(a->totals[i].key, key) == 0)
        e = &a->totals[i];
    if (e == NULL)
      e = &a->totals[a->totals_next++ % CX_ARRAY_LEN(a->totals)];
    snprintf(e->key, sizeof e->key, "%s", key);
    e->total = total;
    e->gen = gen;
    e->at = cx_mono_now();
  }
  pthread_mutex_unlock(&a->total_mu);
}

/* The compact JSON text of each job, by (id, created, updated): encoding
 * a page of jobs through jansson was half the cost of a search. Every
 * write of a job moves `updated` forward (store.h), so a row read from the
 * store with the same id, created and updated has the same text; nothing
 * needs invalidating, and stale entries are simply overwritten. Bounded:
 * one entry per slot, JSON_SLOTS slots of at most JSON_MAX bytes each. */
#define JSON_SLOTS 4096
#define JSON_MAX 4096
struct json_slot {
  int64_t id, created, updated;
  char *text; /* cx_malloc'd, NUL-terminated; NULL = empty */
  size_t len;
};
static struct {
  pthread_mutex_t mu[16];
  struct json_slot slot[JSON_SLOTS];
} jcache = {.mu = {[0 ... 15] = PTHREAD_MUTEX_INITIALIZER}};

/* Appends the viewer form of j to b (never cached: viewers are few, and
 * the cache then holds one form only). */
static void append_job_viewer(struct cx_buf *b, const struct cx_job *j)
{
  json_t *o = cx_job_to_json(j);
  char *text = o != NULL && cx_job_redact_json(o) == 0
                   ? json_dumps(o, JSON_COMPACT)
                   : NULL;
  json_decref(o);
  if (text == NULL) {
    b->failed = 1;
    return;
  }
  cx_buf_puts(b, text);
  free(text); /* jansson's allocator */
}

/* Appends the JSON of j to b, from the cache or freshly encoded. */
static void append_job_json(struct cx_buf *b, const struct cx_job *j)
{
  size_t k = (size_t)((uint64_t)j->id % JSON_SLOTS);
  pthread_mutex_t *mu = &jcache.mu[k % 16];
  struct json_slot *e = &jcache.slot[k];
  pthread_mutex_lock(mu);
  if (e->text != NULL && e->id == j->id && e->created == j->created &&
      e->updated == j->updated) {
    cx_buf_append(b, e->text, e->len);
    pthread_mutex_unlock(mu);
    return;
  }
  pthread_mutex_unlock(mu);
  json_t *o = cx_job_to_json(j);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (text == NULL) {
    b->failed = 1;
    return;
  }
  size_t len = strlen(text);
  cx_buf_append(b, text, len);
  char *copy = len <= JSON_MAX ? cx_strdup(text) : NULL;
  json_free_t jfree = NULL;
  json_get_alloc_funcs(NULL, &jfree);
  jfree(text); /* json_dumps allocates with jansson's allocator */
  if (copy == NULL)
    return;
  pthread_mutex_lock(mu);
  cx_free(e->text);
  e->id = j->id;
  e->created = j->created;
  e->updated = j->updated;
  e->text = copy;
  e->len = len;
  pthread_mutex_unlock(mu);
}

/* Replies the §4 page envelope of l, composed as text (same bytes as
 * cx__admin_reply_page over cx_job_to_json). */
static void reply_job_page(struct cx_http_req *req, const struct cx_job_list *l,
                           int64_t total, int page, int page_size, int redact)
{
  struct cx_buf b = {0};
  cx_buf_printf(&b, "{\"code\":0,\"msg\":\"ok\",\"data\":{\"list\":[");
  for (size_t i = 0; i < l->n && !cx_buf_failed(&b); i++) {
    if (i > 0)
      cx_buf_append(&b, ",", 1);
    if (redact)
      append_job_viewer(&b, &l->items[i]);
    else
      append_job_json(&b, &l->items[i]);
  }
  cx_buf_printf(&b, "],\"total\":%lld,\"page\":%d,\"page_size\":%d}}",
                (long long)total, page, page_size);
  if (cx_buf_failed(&b))
    reply_oom(req);
  else
    cx_http_reply_raw(req, 200, CX_HTTP_CT_JSON, b.data, b.len);
  cx_buf_free(&b);
}

/* Every job write through this admin calls this (whatever its outcome). */
static void totals_forget(struct cx_admin *a)
{
  pthread_mutex_lock(&a->total_mu);
  a->job_gen++;
  pthread_mutex_unlock(&a->total_mu);
}

static void h_job_search(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"page",   "page_size", "name", "type",
                                        "run_on", "enabled",   NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  char err[CX_ERR_LEN] = "";
  struct cx_job_filter f;
  struct cx_job_list l = {0};
  struct cx__admin_who who;
  int64_t type = 0;

  memset(&f, 0, sizeof f);
  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, &who) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0 ||
      cx__admin_paging(req, body, &f.page, &f.page_size) != 0 ||
      cx__admin_json_str(req, body, "name", 512, &f.name) < 0 ||
      cx__admin_json_int(req, body, "type", 0, CX_JOB_HTTP, &type) < 0 ||
      cx__admin_json_str(req, body, "run_on", CX_KEY_UUID_MAX, &f.run_on) < 0 ||
      read_yesno(req, body, "enabled", &f.enabled) != 0)
    return;
  f.type = (int)type;
  if (f.name != NULL && f.name[0] == '\0')
    f.name = NULL;
  if (f.run_on != NULL && f.run_on[0] == '\0')
    f.run_on = NULL;
  char key[sizeof a->totals[0].key];
  int64_t total = -1;
  uint64_t gen = 0;
  int keyed = snprintf(key, sizeof key, "%d|%d|%s|%s", f.type, f.enabled,
                       f.run_on ? f.run_on : "",
                       f.name ? f.name : "") < (int)sizeof key;
  if (keyed)
    f.skip_total = total_get(a, key, &total, &gen);
  int rc = cx_store_job_search(a->store, &f, &l, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "store", err);
    return;
  }
  if (!f.skip_total || l.total >= 0) /* counted, or exact from a short page */
    total = l.total;
  if (keyed && !f.skip_total)
    total_put(a, key, total, gen);
  reply_job_page(req, &l, total, f.page, f.page_size,
                 who.role < CX_ROLE_OPERATOR);
  cx_job_list_free(&l);
}

/* ---- POST /job/log ------------------------------------------------------- */

/* A JSON string from bytes that may not be valid UTF-8 (run output,
 * whatever the store held): invalid bytes become U+FFFD. */
json_t *cx__admin_json_bytes(const char *s, size_t len)
{
  if (s == NULL)
    return json_string("");
  json_t *v = json_stringn(s, len);
  if (v != NULL)
    return v;
  struct cx_buf b = {0};
  cx_utf8_clean(&b, s, len, CX_UTF8_REPL, SIZE_MAX);
  v = cx_buf_failed(&b) ? NULL : json_stringn(b.data ? b.data : "", b.len);
  cx_buf_free(&b);
  return v;
}

json_t *cx__admin_run_json(const struct cx_run *r, int redact)
{
  char *cmd = redact ? cx_job_redact_command(r->command) : NULL;
  if (redact && cmd == NULL)
    return NULL;
  json_t *o = json_pack(
      "{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:s, "
      "s:i, s:i}",
      "id", (json_int_t)r->id, "job_id", (json_int_t)r->job_id, "name",
      r->name ? r->name : "", "node_uuid", r->node_uuid ? r->node_uuid : "",
      "hostname", r->hostname ? r->hostname : "", "ip", r->ip ? r->ip : "",
      "command",
      cmd          ? cmd
      : r->command ? r->command
                   : "",
      "spec", r->spec ? r->spec : "", "trigger", r->trigger ? r->trigger : "",
      "start_time", (json_int_t)r->start_time, "end_time",
      (json_int_t)r->end_time, "success", r->success, "status",
      r->status ? r->status : "", "exit_code", r->exit_code, "attempts",
      r->attempts);
  cx_free(cmd);
  if (o == NULL)
    return NULL;
  json_t *sa =
      r->has_scheduled_at ? json_integer(r->scheduled_at) : json_null();
  json_t *out = cx__admin_json_bytes(r->output, r->output ? r->output_len : 0);
  if (sa == NULL || out == NULL ||
      json_object_set_new(o, "scheduled_at", sa) != 0 ||
      json_object_set_new(o, "output", out) != 0 ||
      json_object_set_new(o, "missed_count", json_integer(r->missed_count)) ||
      json_object_set_new(o, "missed_last", json_integer(r->missed_last))) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static json_t *enc_run_json(const void *r)
{
  return cx__admin_run_json(r, 0);
}

static json_t *enc_run_viewer(const void *r)
{
  return cx__admin_run_json(r, 1);
}

static void h_job_log(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {
      "page", "page_size", "job_id", "node_uuid", "success",
      "from", "to",        "status", "trigger",   NULL};
  static const char *const statuses[] = {
      "running", "success", "failed", "timeout", "killed",
      "skipped", "lost",    "error",  "missed",  NULL};
  static const char *const triggers[] = {"cron",    "once",   "retry",
                                         "misfire", "missed", NULL};
  const char *sv[CX_RUN_FILTER_SET], *tv[CX_RUN_FILTER_SET];
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  char err[CX_ERR_LEN] = "";
  struct cx_run_filter f;
  struct cx_run_list l = {0};
  struct cx__admin_who who;

  memset(&f, 0, sizeof f);
  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, &who) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0 ||
      cx__admin_paging(req, body, &f.page, &f.page_size) != 0 ||
      cx__admin_json_int(req, body, "job_id", 1, INT64_MAX, &f.job_id) < 0 ||
      cx__admin_json_str(req, body, "node_uuid", CX_KEY_UUID_MAX,
                         &f.node_uuid) < 0 ||
      read_yesno(req, body, "success", &f.success) != 0 ||
      cx__admin_json_time_ms(req, body, "from", &f.from) != 0 ||
      cx__admin_json_time_ms(req, body, "to", &f.to) != 0 ||
      read_set(req, body, "status", statuses, sv, &f.nstatuses) != 0 ||
      read_set(req, body, "trigger", triggers, tv, &f.ntriggers) != 0)
    return;
  f.statuses = sv;
  f.triggers = tv;
  if (f.node_uuid != NULL && f.node_uuid[0] == '\0')
    f.node_uuid = NULL;
  int rc = cx_store_run_search(a->store, &f, &l, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "store", err);
    return;
  }
  reply_items(req, l.items, l.n, sizeof *l.items,
              who.role < CX_ROLE_OPERATOR ? enc_run_viewer : enc_run_json,
              l.total, f.page, f.page_size);
  cx_run_list_free(&l);
}

/* ---- POST /job/once, /job/kill ------------------------------------------- */

/* A broadcast job's once (or kill) with no node named: the key for every
 * node it runs on now, under one TRIGGER_TTL lease, one audit row. */
static void trigger_all(struct cx_http_req *req, struct cx_admin *a,
                        enum cx_key_kind kind, const struct cx_job *j,
                        const struct cx__admin_who *who)
{
  char err[CX_ERR_LEN] = "", key[CX_KEY_LEN], rid[33], target[32];
  char **nodes = NULL;
  size_t nn = 0;
  int64_t lease = 0;
  int rc = cx__jobs_bcast_nodes(a, j->node_selector, &nodes, &nn, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc == CX_ENOTFOUND ? CX_EUNAVAIL : rc,
                                  "coordination", err);
    return;
  }
  json_t *list = json_array(), *v = NULL;
  for (size_t i = 0; list != NULL && i < nn; i++)
    if (json_array_append_new(list, json_string(nodes[i])) != 0) {
      json_decref(list);
      list = NULL;
    }
  if (nn == 0) {
    cx_http_reply_error(req, CX_HTTP_NODE_UNAVAIL, "node_uuid",
                        "no alive node%s runs broadcast job %lld",
                        j->node_selector && j->node_selector[0]
                            ? " matching its node_selector"
                            : "",
                        (long long)j->id);
    goto out;
  }
  if (list == NULL || cx_random_hex(rid, 16) != 0 ||
      (v = json_pack("{s:s, s:I}", "request_id", rid, "at",
                     (json_int_t)cx_wall_s())) == NULL) {
    reply_oom(req);
    goto out;
  }
  snprintf(target, sizeof target, "job %lld", (long long)j->id);
  struct cx__actor actor = cx__admin_actor(req, who);
  json_t *after = json_pack("{s:O, s:s}", "nodes", list, "request_id", rid);
  rc = after == NULL
           ? -ENOMEM
           : cx__admin_audit(a, &actor,
                             kind == CX_KEY_ONCE ? "job.once" : "job.kill",
                             target, NULL, after, NULL, err);
  json_decref(after);
  if (rc == 0)
    rc = cx_coord_lease_grant(a->coord, TRIGGER_TTL, 0, NULL, NULL, &lease,
                              NULL, err);
  char *val = rc == 0 ? json_dumps(v, JSON_COMPACT) : NULL;
  for (size_t i = 0; rc == 0 && i < nn; i++) {
    size_t kl =
        cx_key_build(key, sizeof key, a->prefix, kind, nodes[i], j->id, NULL);
    rc = val == NULL ? -ENOMEM
                     : cx_coord_put(a->coord, key, kl, val, strlen(val), lease,
                                    NULL, err);
  }
  free(val);
  if (rc != 0)
    cx__admin_reply_backend_error(req, rc == CX_ENOTFOUND ? CX_EUNAVAIL : rc,
                                  "coordination", err);
  else
    cx_http_reply_ok(req, json_pack("{s:s, s:I, s:s, s:O}", "request_id", rid,
                                    "job_id", (json_int_t)j->id, "node_uuid",
                                    "", "nodes", list));
out:
  json_decref(v);
  json_decref(list);
  for (size_t i = 0; i < nn; i++)
    cx_free(nodes[i]);
  cx_free(nodes);
}

/* Writes <prefix>/<kind>/<node>/<job_id> = {request_id, at} under a fresh
 * TRIGGER_TTL lease. */
static void trigger(struct cx_http_req *req, struct cx_admin *a,
                    enum cx_key_kind kind)
{
  static const char *const allowed[] = {"job_id", "node_uuid", NULL};
  json_t *body = cx_http_req_json(req);
  char err[CX_ERR_LEN] = "", key[CX_KEY_LEN], rid[33];
  const char *node = NULL;
  int64_t job_id = 0, lease = 0, row = 0;
  struct cx_job j;
  struct cx__admin_who who;
  int alive = 0, rc;

  memset(&j, 0, sizeof j);
  if (cx__admin_auth(a, req, CX_ROLE_OPERATOR, &who) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0 ||
      cx__admin_json_str(req, body, "node_uuid", CX_KEY_UUID_MAX, &node) < 0)
    return;
  rc = cx__admin_json_int(req, body, "job_id", 1, INT64_MAX, &job_id);
  if (rc < 0)
    return;
  if (rc == 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "job_id",
                        "job_id: required, a positive integer");
    return;
  }
  if ((rc = cx_store_job_find(a->store, job_id, &j, err)) != 0) {
    cx__admin_reply_backend_error(req, rc, "job", err);
    return;
  }
  if (node == NULL || node[0] == '\0')
    node = j.run_on;
  if (node[0] == '\0' && j.allocation == CX_ALLOC_BROADCAST) {
    trigger_all(req, a, kind, &j, &who);
    goto out;
  }
  if (node[0] == '\0') {
    cx_http_reply_error(req, CX_HTTP_NODE_UNAVAIL, "node_uuid",
                        "job %lld is not placed on any node; name one in "
                        "node_uuid",
                        (long long)job_id);
    goto out;
  }
  if ((rc = cx__admin_node_alive(a, node, &alive, err)) != 0) {
    cx__admin_reply_backend_error(req, rc, "coordination", err);
    goto out;
  }
  if (!alive) {
    cx_http_reply_error(req, CX_HTTP_NODE_UNAVAIL, "node_uuid",
                        "node_uuid: node %.64s is not registered or not alive",
                        node);
    goto out;
  }
  size_t kl =
      cx_key_build(key, sizeof key, a->prefix, kind, node, job_id, NULL);
  if (cx_random_hex(rid, 16) != 0 || kl == 0) { /* 128 bits */
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "no request id");
    goto out;
  }
  json_t *v =
      json_pack("{s:s, s:I}", "request_id", rid, "at", (json_int_t)cx_wall_s());
  char *val = v ? json_dumps(v, JSON_COMPACT) : NULL;
  json_decref(v);
  if (val == NULL) {
    reply_oom(req);
    goto out;
  }
  /* Not a store write: the row first, deleted again if the key is not
   * written, so the trigger never happens without its row. */
  char target[32];
  snprintf(target, sizeof target, "job %lld", (long long)job_id);
  json_t *after = json_pack("{s:s, s:s}", "node_uuid", node, "request_id", rid);
  struct cx__actor actor = cx__admin_actor(req, &who);
  rc = after == NULL
           ? -ENOMEM
           : cx__admin_audit(a, &actor,
                             kind == CX_KEY_ONCE ? "job.once" : "job.kill",
                             target, NULL, after, &row, err);
  json_decref(after);
  if (rc != 0) {
    free(val);
    cx__admin_reply_backend_error(req, rc, "audit log", err);
    goto out;
  }
  rc = cx_coord_lease_grant(a->coord, TRIGGER_TTL, 0, NULL, NULL, &lease, NULL,
                            err);
  if (rc == 0) {
    rc = cx_coord_put(a->coord, key, kl, val, strlen(val), lease, NULL, err);
    if (rc != 0) {
      char rerr[CX_ERR_LEN];
      cx_coord_lease_revoke(a->coord, lease, rerr);
    }
  }
  free(val);
  if (rc != 0) {
    char aerr[CX_ERR_LEN];
    if (cx_store_audit_delete(a->store, row, aerr) != 0)
      CX_LOG(CX_LOG_ERROR, "admin",
             "job %lld: audit row %lld of a trigger that failed is left: %s",
             (long long)job_id, (long long)row, aerr);
    cx__admin_reply_backend_error(req, rc == CX_ENOTFOUND ? CX_EUNAVAIL : rc,
                                  "coordination", err);
    goto out;
  }
  cx_http_reply_ok(req,
                   json_pack("{s:s, s:I, s:s}", "request_id", rid, "job_id",
                             (json_int_t)job_id, "node_uuid", node));
out:
  cx_job_clear(&j);
}

static void h_job_once(struct cx_http_req *req, void *ctx)
{
  trigger(req, ctx, CX_KEY_ONCE);
}

static void h_job_kill(struct cx_http_req *req, void *ctx)
{
  trigger(req, ctx, CX_KEY_KILL);
}

/* ---- POST /job/pause, /job/resume ---------------------------------------- */

static void set_enabled(struct cx_http_req *req, struct cx_admin *a,
                        int enabled)
{
  char err[CX_ERR_LEN] = "";
  int64_t *ids = NULL;
  size_t n = 0;
  json_t *list = NULL;
  struct cx__admin_who who;

  if (ids_request(a, req, &ids, &n, &who) != 0)
    return;
  struct cx__actor actor = cx__admin_actor(req, &who);
  if ((list = json_array()) == NULL) {
    reply_oom(req);
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    struct cx_job j;
    memset(&j, 0, sizeof j);
    int rc = cx__jobs_set_enabled(a, ids[i], enabled, &actor, &j, err);
    if (rc == CX_ENOTFOUND) { /* deleted meanwhile */
      cx_job_clear(&j);
      continue;
    }
    if (rc != 0) {
      cx_job_clear(&j);
      cx_http_reply_error(req, CX_HTTP_UNAVAIL, NULL,
                          "store or coordination service unavailable: job "
                          "%lld not changed (%zu before it were): %s",
                          (long long)ids[i], json_array_size(list), err);
      goto out;
    }
    json_array_append_new(list, cx_job_to_json(&j));
    cx_job_clear(&j);
  }
  cx_http_reply_ok(req, json_pack("{s:O}", "list", list));
out:
  totals_forget(a);
  json_decref(list);
  cx_free(ids);
}

static void h_job_pause(struct cx_http_req *req, void *ctx)
{
  set_enabled(req, ctx, 0);
}

static void h_job_resume(struct cx_http_req *req, void *ctx)
{
  set_enabled(req, ctx, 1);
}

int cx__admin_routes_jobs(struct cx_admin *a)
{
  static const struct {
    const char *method, *path;
    cx_http_handler fn;
  } routes[] = {
      {"POST", "/job/add", h_job_add},
      {"POST", "/job/del", h_job_del},
      {"GET", "/job/find", h_job_find},
      {"POST", "/job/search", h_job_search},
      {"POST", "/job/log", h_job_log},
      {"POST", "/job/once", h_job_once},
      {"POST", "/job/kill", h_job_kill},
      {"POST", "/job/pause", h_job_pause},
      {"POST", "/job/resume", h_job_resume},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(routes); i++) {
    unsigned flags = strcmp(routes[i].method, "POST") == 0 ? CX_HTTP_F_JSON : 0;
    int rc = cx_http_route(a->http, routes[i].method, routes[i].path, flags,
                           routes[i].fn, a);
    if (rc != 0)
      return rc;
  }
  return 0;
}
