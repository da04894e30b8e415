/*
 * admin: the job routes (SPEC §4, §5) -- POST /job/add, /job/del,
 * GET /job/find, POST /job/search, /job/log, /job/once, /job/kill,
 * /job/pause, /job/resume -- with placement and publication.
 *
 * Persistence and publication (SPEC §5.3). The store is the truth; the
 * coordination key <prefix>/job/<node>/<id> is its published copy. Every
 * write goes store first, coordination second, and undoes the store write
 * when the coordination write fails, so the only half-made state a crash
 * (of this process, between the two writes) can leave is "a row without
 * its key" -- never "a key without its row":
 *
 *   create   insert row -> put key; put fails: delete row (and, in case
 *            the put did apply after all -- a timeout is ambiguous -- a
 *            best-effort delete of the key), reply 503/1302.
 *   update   store update guarded by `updated` -> one coord txn that
 *            deletes the old key (when the node changes) and puts the new
 *            one; txn fails: write the old row back, reply 503/1302.
 *   del      delete key -> delete row; row delete fails: put the key back.
 *   pause    set enabled -> put key; put fails: set enabled back.
 *
 * What the reconciler (the leader's job, SPEC §10) must repair, and can,
 * because the store is authoritative and every key names its row:
 *   - a row whose key is missing or differs (crash between the writes, or
 *     a compensation that failed too): publish the row;
 *   - a key whose row is gone or names another node (an ambiguous put that
 *     applied after its timeout, while the compensation could not reach
 *     coordination): delete the key;
 *   - two admins interleaving updates of one job across the two stores
 *     (store order A,B; coordination order B,A): rewrite from the row.
 * Within one admin, writes to one job are serialised by a striped lock, so
 * they reach both stores in the same order.
 *
 * Placement: auto = the alive node (key under <prefix>/node/) with the
 * fewest jobs in the store, ties to the lowest uuid (deterministic, and
 * sequential adds still spread because each add changes the counts); an
 * update of an auto job keeps its node while that node is alive (no
 * needless moves). manual = run_on must be alive.
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
#define MAX_UUID 64    /* bytes of a node uuid */
#define JOB_LOCKS 64   /* stripes of the per-job lock */
#define KEY_LEN 512

/* One admin process serialises the writes to one job (store + coord) so
 * they land in the same order in both. Shared by every admin in the
 * process: over-serialising two admins in one test process is harmless. */
static pthread_mutex_t job_locks[JOB_LOCKS] = {[0 ... JOB_LOCKS - 1] =
                                                   PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t *job_lock(int64_t id)
{
  return &job_locks[(uint64_t)id % JOB_LOCKS];
}

static void totals_forget(struct cx_admin *a);

/* ---- keys and nodes ------------------------------------------------------ */

/* A node uuid usable as a key component: 1..64 of [A-Za-z0-9._-]. */
static int uuid_ok(const char *u)
{
  size_t n = u ? strlen(u) : 0;
  if (n == 0 || n > MAX_UUID || strcmp(u, ".") == 0 || strcmp(u, "..") == 0)
    return 0;
  for (; *u; u++)
    if (!((*u >= 'a' && *u <= 'z') || (*u >= 'A' && *u <= 'Z') ||
          (*u >= '0' && *u <= '9') || *u == '.' || *u == '_' || *u == '-'))
      return 0;
  return 1;
}

static size_t job_key(const struct cx_admin *a, char *buf, const char *node,
                      int64_t id)
{
  return cx__admin_key(a, buf, KEY_LEN, "job/%s/%lld", node, (long long)id);
}

/* *alive = 1 when <prefix>/node/<uuid> exists (alive.c keeps the set
 * from a watch). A malformed uuid is simply not alive. Returns 0 or the
 * coordination error. */
static int node_alive(struct cx_admin *a, const char *uuid, int *alive,
                      char *err)
{
  *alive = 0;
  return uuid_ok(uuid) ? cx__admin_node_alive(a, uuid, alive, err) : 0;
}

/* Job counts per node, for auto placement. Counting every job (GROUP BY
 * over the whole table) on each add would cost O(jobs) per add; the counts
 * are read at most every LOAD_TTL_US instead and kept current in between
 * by this process's own placements (load_bump). Other admins' placements
 * and deletions show at the next refresh: the balance may be off for up
 * to LOAD_TTL_US, never longer. Shared by the admins of one process (a
 * different store forces a refresh). */
#define LOAD_TTL_US 2000000
struct load_entry {
  char uuid[MAX_UUID + 1];
  int64_t count;
};
static struct {
  pthread_mutex_t mu;
  const struct cx_store *store;
  cx_mono at;
  struct load_entry *v;
  size_t n, cap;
} load = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* With load.mu held. */
static struct load_entry *load_find(const char *uuid, int add)
{
  for (size_t i = 0; i < load.n; i++)
    if (strcmp(load.v[i].uuid, uuid) == 0)
      return &load.v[i];
  if (!add || strlen(uuid) > MAX_UUID)
    return NULL;
  if (load.n == load.cap) {
    size_t cap = load.cap ? load.cap * 2 : 16;
    struct load_entry *v = cx_realloc(load.v, cap * sizeof *v);
    if (v == NULL)
      return NULL;
    load.v = v;
    load.cap = cap;
  }
  struct load_entry *e = &load.v[load.n++];
  snprintf(e->uuid, sizeof e->uuid, "%s", uuid);
  e->count = 0;
  return e;
}

/* With load.mu held: re-reads the counts when stale. */
static int load_refresh(struct cx_admin *a, char *err)
{
  struct cx_node_jobs *counts = NULL;
  size_t n = 0;
  cx_mono now = cx_mono_now();
  if (load.store == a->store && load.at != 0 && now - load.at < LOAD_TTL_US)
    return 0;
  int rc = cx_store_job_count_by_node(a->store, &counts, &n, err);
  if (rc != 0)
    return rc;
  load.n = 0;
  for (size_t i = 0; i < n; i++) {
    struct load_entry *e = load_find(counts[i].run_on, 1);
    if (e != NULL)
      e->count = counts[i].count;
  }
  cx_node_jobs_free(counts, n);
  load.store = a->store;
  load.at = now;
  return 0;
}

/* Counts one more job on node (a placement this process made). */
static void load_bump(const char *node)
{
  pthread_mutex_lock(&load.mu);
  struct load_entry *e = load_find(node, 1);
  if (e != NULL)
    e->count++;
  pthread_mutex_unlock(&load.mu);
}

/* Forces a re-read at the next placement (after deletions, moves). */
static void load_forget(void)
{
  pthread_mutex_lock(&load.mu);
  load.at = 0;
  pthread_mutex_unlock(&load.mu);
}

/* The alive node with the fewest jobs, ties to the lowest uuid, into out
 * (MAX_UUID + 1 bytes), counted at once as one more job there.
 * CX_ENOTFOUND when no node is alive; *what names the backend of any other
 * failure. */
static int pick_node(struct cx_admin *a, char *out, const char **what,
                     char *err)
{
  char **live = NULL;
  size_t n = 0;
  int64_t best = -1;
  int rc;

  *what = "coordination";
  if ((rc = cx__admin_alive_list(a, &live, &n, err)) != 0)
    return rc;
  if (n == 0) {
    cx_free(live);
    return CX_ENOTFOUND;
  }
  *what = "store";
  pthread_mutex_lock(&load.mu);
  if ((rc = load_refresh(a, err)) != 0)
    goto done;
  rc = CX_ENOTFOUND;
  for (size_t i = 0; i < n; i++) {
    const char *uuid = live[i];
    if (!uuid_ok(uuid))
      continue;
    struct load_entry *e = load_find(uuid, 0);
    int64_t c = e ? e->count : 0;
    if (best < 0 || c < best) { /* sorted: ties keep the lowest */
      best = c;
      snprintf(out, MAX_UUID + 1, "%s", uuid);
      rc = 0;
    }
  }
  if (rc == 0) {
    struct load_entry *e = load_find(out, 1);
    if (e != NULL)
      e->count++;
  }
done:
  pthread_mutex_unlock(&load.mu);
  for (size_t i = 0; i < n; i++)
    cx_free(live[i]);
  cx_free(live);
  return rc;
}

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
 * too. NULL on allocation failure. */
static json_t *job_reply(const struct cx_job *j, const char *node_state)
{
  json_t *o = cx_job_to_json(j);
  if (o == NULL || add_next(o, j) != 0 ||
      (node_state != NULL &&
       json_object_set_new(o, "node_state", json_string(node_state)) != 0)) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* warn: /job/add's data.warnings (alerts.h), NULL or empty = none. */
static void reply_job(struct cx_http_req *req, const struct cx_job *j,
                      const char *node_state, json_t *warn)
{
  json_t *o = job_reply(j, node_state);
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

/* ---- publication --------------------------------------------------------- */

/* Publishes j at <prefix>/job/<j->run_on>/<id>, deleting the key under
 * old_node (may be NULL or "") in the same transaction when it differs. */
static int publish(struct cx_admin *a, const struct cx_job *j,
                   const char *old_node, char *err)
{
  char key[KEY_LEN], old[KEY_LEN];
  struct cx_coord_op ops[2];
  size_t nops = 0;
  int ok = 0;

  size_t kl = job_key(a, key, j->run_on, j->id);
  if (kl == 0) {
    cx_err_set(err, "job key too long");
    return CX_ETOOBIG;
  }
  json_t *o = cx_job_to_json(j);
  char *val = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (val == NULL)
    return -ENOMEM;
  if (old_node != NULL && old_node[0] != '\0' &&
      strcmp(old_node, j->run_on) != 0) {
    size_t ol = job_key(a, old, old_node, j->id);
    if (ol > 0)
      ops[nops++] = (struct cx_coord_op){
          .type = CX_COORD_OP_DELETE, .key = old, .key_len = ol};
  }
  ops[nops++] = (struct cx_coord_op){.type = CX_COORD_OP_PUT,
                                     .key = key,
                                     .key_len = kl,
                                     .value = val,
                                     .value_len = strlen(val)};
  struct cx_coord_txn txn = {.success = ops, .nsuccess = nops};
  int rc = nops == 1
               ? cx_coord_put(a->coord, key, kl, val, strlen(val), 0, NULL, err)
               : cx_coord_txn(a->coord, &txn, &ok, NULL, err);
  free(val); /* json_dumps allocates with jansson's allocator */
  return rc;
}

/* Best-effort removal of a job's key (compensation). */
static void unpublish(struct cx_admin *a, const char *node, int64_t id)
{
  char key[KEY_LEN], err[CX_ERR_LEN];
  size_t kl = node && node[0] ? job_key(a, key, node, id) : 0;
  if (kl > 0 && cx_coord_delete(a->coord, key, kl, NULL, NULL, err) != 0)
    CX_LOG(CX_LOG_ERROR, "admin",
           "job %lld: could not remove key %s (%s); the reconciler must",
           (long long)id, key, err);
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

/* The common part of /job/del, /job/pause, /job/resume: an operator, a
 * body {ids}, and every id naming a job (all or nothing: a missing id is
 * 404 before anything changes). Replies and returns -1 on failure;
 * *ids is the caller's to free on success. */
static int ids_request(struct cx_admin *a, struct cx_http_req *req,
                       int64_t **ids, size_t *n)
{
  static const char *const allowed[] = {"ids", NULL};
  json_t *body = cx_http_req_json(req);
  if (cx__admin_auth(a, req, CX_ROLE_OPERATOR, NULL) != 0 ||
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
  char err[CX_ERR_LEN] = "", uuid[MAX_UUID + 1];
  const char *what = "coordination";
  int alive = 0, rc;

  if (j->allocation == CX_ALLOC_MANUAL) {
    if ((rc = node_alive(a, j->run_on, &alive, err)) != 0)
      goto backend;
    if (!alive) {
      cx_http_reply_error(req, CX_HTTP_NODE_UNAVAIL, "run_on",
                          "run_on: node %.64s is not registered or not alive",
                          j->run_on);
      return -1;
    }
    if (prev_node == NULL)
      load_bump(j->run_on);
    return 0;
  }
  if (j->type == CX_JOB_CMD && !a->cfg->cmd_auto_allocation) {
    cx_http_reply_error(req, CX_HTTP_CMD_AUTO, "allocation",
                        "allocation: cmd jobs must name their node "
                        "(allocation 1 + run_on) unless "
                        "system.cmd_auto_allocation is on");
    return -1;
  }
  if (prev_node != NULL && prev_node[0] != '\0') {
    if ((rc = node_alive(a, prev_node, &alive, err)) != 0)
      goto backend;
    if (alive)
      return set_run_on(req, j, prev_node);
  }
  rc = pick_node(a, uuid, &what, err);
  if (rc == CX_ENOTFOUND) {
    cx_http_reply_error(req, CX_HTTP_NO_NODE, NULL,
                        "no alive node to place the job on");
    return -1;
  }
  if (rc != 0)
    goto backend;
  return set_run_on(req, j, uuid);
backend:
  cx__admin_reply_backend_error(req, rc == CX_ENOTFOUND ? CX_EUNAVAIL : rc,
                                what, err);
  return -1;
}

static void job_create(struct cx_admin *a, struct cx_http_req *req,
                       struct cx_job *j, json_t *warn)
{
  char err[CX_ERR_LEN] = "", cerr[CX_ERR_LEN] = "";

  j->id = 0;
  j->created = j->updated = 0;
  int rc = cx_store_job_create(a->store, j, err);
  if (rc == CX_EEXISTS) {
    cx_http_reply_error(req, CX_HTTP_CONFLICT, "name",
                        "name: a job called \"%.128s\" exists", j->name);
    return;
  }
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "store", err);
    return;
  }
  pthread_mutex_t *mu = job_lock(j->id);
  pthread_mutex_lock(mu);
  rc = publish(a, j, NULL, cerr);
  if (rc != 0) {
    /* Undo the row; the put may still apply late (timeouts are
     * ambiguous), so try to drop the key too. */
    int drc = cx_store_job_delete(a->store, j->id, err);
    if (drc != 0 && drc != CX_ENOTFOUND)
      drc = cx_store_job_delete(a->store, j->id, err);
    if (drc != 0 && drc != CX_ENOTFOUND)
      CX_LOG(CX_LOG_ERROR, "admin",
             "job %lld: unpublished row left in the store (%s); the "
             "reconciler will publish it",
             (long long)j->id, err);
    unpublish(a, j->run_on, j->id);
    pthread_mutex_unlock(mu);
    if (rc == -ENOMEM) {
      reply_oom(req);
      return;
    }
    cx_http_reply_error(req, CX_HTTP_UNAVAIL, NULL,
                        "coordination service unavailable, job not created: "
                        "%s",
                        cerr[0] ? cerr : cx_strerror(rc));
    return;
  }
  pthread_mutex_unlock(mu);
  reply_job(req, j, NULL, warn);
}

static void job_update(struct cx_admin *a, struct cx_http_req *req,
                       const json_t *body, int64_t id)
{
  char err[CX_ERR_LEN] = "", cerr[CX_ERR_LEN] = "", field[CX_JOB_FIELD_LEN];
  struct cx_job old, j;
  enum cx_job_invalid why;
  json_t *warn = NULL;
  pthread_mutex_t *mu = job_lock(id);
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
  rc = cx_store_job_update(a->store, &j, err);
  if (rc == CX_ECONFLICT) {
    cx_http_reply_error(req, CX_HTTP_CONFLICT, "updated",
                        "updated: job %lld changed since it was read "
                        "(stale update); read it again",
                        (long long)id);
    goto out;
  }
  if (rc == CX_EEXISTS) {
    cx_http_reply_error(req, CX_HTTP_CONFLICT, "name",
                        "name: a job called \"%.128s\" exists", j.name);
    goto out;
  }
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "job", err);
    goto out;
  }
  rc = publish(a, &j, old.run_on, cerr);
  if (rc != 0) {
    /* Put the old row back (guarded by the `updated` just written). */
    old.updated = j.updated;
    int brc = cx_store_job_update(a->store, &old, err);
    if (brc != 0)
      CX_LOG(CX_LOG_ERROR, "admin",
             "job %lld: could not restore the row after a failed publish "
             "(%s); the reconciler will publish the stored version",
             (long long)id, err);
    if (rc == -ENOMEM)
      reply_oom(req);
    else
      cx_http_reply_error(req, CX_HTTP_UNAVAIL, NULL,
                          "coordination service unavailable, job %lld not "
                          "changed: %s",
                          (long long)id, cerr[0] ? cerr : cx_strerror(rc));
    goto out;
  }
  if (strcmp(old.run_on, j.run_on) != 0)
    load_forget(); /* the old node has one job less */
  reply_job(req, &j, NULL, warn);
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

  if (cx__admin_auth(a, req, CX_ROLE_OPERATOR, NULL) != 0)
    return;
  if (cx__admin_json_int(req, body, "id", 1, INT64_MAX, &id) < 0)
    return;
  if (id > 0) {
    job_update(a, req, body, id);
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
  job_create(a, req, &j, warn);
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

  if (ids_request(a, req, &ids, &n) != 0)
    return;
  if ((deleted = json_array()) == NULL) {
    reply_oom(req);
    goto out;
  }
  for (; done < n; done++) {
    struct cx_job j;
    pthread_mutex_t *mu = job_lock(ids[done]);
    char key[KEY_LEN], cerr[CX_ERR_LEN] = "";
    int rc;

    memset(&j, 0, sizeof j);
    pthread_mutex_lock(mu);
    rc = cx_store_job_find(a->store, ids[done], &j, err);
    if (rc == CX_ENOTFOUND) { /* deleted meanwhile: fine */
      pthread_mutex_unlock(mu);
      continue;
    }
    if (rc == 0 && j.run_on[0] != '\0') {
      size_t kl = job_key(a, key, j.run_on, j.id);
      rc = cx_coord_delete(a->coord, key, kl, NULL, NULL, cerr);
      if (rc != 0)
        snprintf(err, sizeof err, "%s", cerr);
    }
    if (rc == 0) {
      rc = cx_store_job_delete(a->store, j.id, err);
      if (rc == CX_ENOTFOUND)
        rc = 0;
      else if (rc != 0 && j.run_on[0] != '\0' &&
               publish(a, &j, NULL, cerr) != 0) /* put the key back */
        CX_LOG(CX_LOG_ERROR, "admin",
               "job %lld: row kept, key gone (%s); the reconciler will "
               "republish it",
               (long long)j.id, cerr);
    }
    pthread_mutex_unlock(mu);
    cx_job_clear(&j);
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
  load_forget();
  cx_http_reply_ok(req, json_pack("{s:O}", "deleted", deleted));
out:
  totals_forget(a);
  json_decref(deleted);
  cx_free(ids);
}

/* ---- GET /job/find ------------------------------------------------------- */

static void h_job_find(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  char err[CX_ERR_LEN] = "";
  const char *s = cx_http_req_query(req, "id");
  int64_t id;
  struct cx_job j;
  int alive = 0;

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, NULL) != 0)
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
  if (j.run_on[0] != '\0') {
    rc = node_alive(a, j.run_on, &alive, err);
    if (rc != 0) {
      cx__admin_reply_backend_error(req, rc, "coordination", err);
      cx_job_clear(&j);
      return;
    }
    state = alive ? "alive" : "dead";
  }
  reply_job(req, &j, state, NULL);
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
                           int64_t total, int page, int page_size)
{
  struct cx_buf b = {0};
  cx_buf_printf(&b, "{\"code\":0,\"msg\":\"ok\",\"data\":{\"list\":[");
  for (size_t i = 0; i < l->n && !cx_buf_failed(&b); i++) {
    if (i > 0)
      cx_buf_append(&b, ",", 1);
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
  int64_t type = 0;

  memset(&f, 0, sizeof f);
  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, NULL) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0 ||
      cx__admin_paging(req, body, &f.page, &f.page_size) != 0 ||
      cx__admin_json_str(req, body, "name", 512, &f.name) < 0 ||
      cx__admin_json_int(req, body, "type", 0, CX_JOB_HTTP, &type) < 0 ||
      cx__admin_json_str(req, body, "run_on", MAX_UUID, &f.run_on) < 0 ||
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
  reply_job_page(req, &l, total, f.page, f.page_size);
  cx_job_list_free(&l);
}

/* ---- POST /job/log ------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (len bytes left), 0 if none:
 * no overlong forms, surrogates or code points past U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
  unsigned c = s[0];
  size_t n;
  unsigned cp, min;
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0)
    n = 2, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0)
    n = 3, cp = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0)
    n = 4, cp = c & 0x07, min = 0x10000;
  else
    return 0;
  if (n > len)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

/* A JSON string from bytes that may not be valid UTF-8 (run output,
 * whatever the store held): invalid bytes become U+FFFD. */
static json_t *utf8_string(const char *s, size_t len)
{
  if (s == NULL)
    return json_string("");
  json_t *v = json_stringn(s, len);
  if (v != NULL)
    return v;
  struct cx_buf b = {0};
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    size_t n = utf8_seq(u + i, len - i);
    if (n > 0) {
      cx_buf_append(&b, s + i, n);
      i += n;
    } else {
      cx_buf_puts(&b, "\xEF\xBF\xBD");
      i++;
    }
  }
  v = cx_buf_failed(&b) ? NULL : json_stringn(b.data ? b.data : "", b.len);
  cx_buf_free(&b);
  return v;
}

static json_t *run_json(const struct cx_run *r)
{
  json_t *o = json_pack(
      "{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:s, "
      "s:i, s:i}",
      "id", (json_int_t)r->id, "job_id", (json_int_t)r->job_id, "name",
      r->name ? r->name : "", "node_uuid", r->node_uuid ? r->node_uuid : "",
      "hostname", r->hostname ? r->hostname : "", "ip", r->ip ? r->ip : "",
      "command", r->command ? r->command : "", "spec", r->spec ? r->spec : "",
      "trigger", r->trigger ? r->trigger : "", "start_time",
      (json_int_t)r->start_time, "end_time", (json_int_t)r->end_time, "success",
      r->success, "status", r->status ? r->status : "", "exit_code",
      r->exit_code, "attempts", r->attempts);
  if (o == NULL)
    return NULL;
  json_t *sa =
      r->has_scheduled_at ? json_integer(r->scheduled_at) : json_null();
  json_t *out = utf8_string(r->output, r->output ? r->output_len : 0);
  if (sa == NULL || out == NULL ||
      json_object_set_new(o, "scheduled_at", sa) != 0 ||
      json_object_set_new(o, "output", out) != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static json_t *enc_run_json(const void *r)
{
  return run_json(r);
}

/* A time bound of /job/log: unix ms, or an RFC 3339 string. */
static int read_time_ms(struct cx_http_req *req, const json_t *body,
                        const char *name, int64_t *out)
{
  json_t *v = json_object_get(body, name);
  if (json_is_string(v)) {
    int64_t t;
    if (cx_time_parse(json_string_value(v), &t) != 0 || t < 0 ||
        t > INT64_MAX / 1000) {
      cx_http_reply_error(req, CX_HTTP_BAD_INPUT, name,
                          "%s: not an RFC 3339 time", name);
      return -1;
    }
    *out = t * 1000;
    return 0;
  }
  return cx__admin_json_int(req, body, name, 0, INT64_MAX / 2, out) < 0 ? -1
                                                                        : 0;
}

static void h_job_log(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"page",      "page_size", "job_id",
                                        "node_uuid", "success",   "from",
                                        "to",        NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  char err[CX_ERR_LEN] = "";
  struct cx_run_filter f;
  struct cx_run_list l = {0};

  memset(&f, 0, sizeof f);
  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, NULL) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0 ||
      cx__admin_paging(req, body, &f.page, &f.page_size) != 0 ||
      cx__admin_json_int(req, body, "job_id", 1, INT64_MAX, &f.job_id) < 0 ||
      cx__admin_json_str(req, body, "node_uuid", MAX_UUID, &f.node_uuid) < 0 ||
      read_yesno(req, body, "success", &f.success) != 0 ||
      read_time_ms(req, body, "from", &f.from) != 0 ||
      read_time_ms(req, body, "to", &f.to) != 0)
    return;
  if (f.node_uuid != NULL && f.node_uuid[0] == '\0')
    f.node_uuid = NULL;
  int rc = cx_store_run_search(a->store, &f, &l, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "store", err);
    return;
  }
  reply_items(req, l.items, l.n, sizeof *l.items, enc_run_json, l.total, f.page,
              f.page_size);
  cx_run_list_free(&l);
}

/* ---- POST /job/once, /job/kill ------------------------------------------- */

/* A random request id: 32 hex digits (128 bits). */
static int request_id(char *out /* 33 bytes */)
{
  char tok[CX_STORE_TOKEN_LEN];
  int rc = cx_store_token_generate(tok);
  if (rc == 0)
    snprintf(out, 33, "%.32s", tok);
  return rc;
}

/* Writes <prefix>/<kind>/<node>/<job_id> = {request_id, at} under a fresh
 * TRIGGER_TTL lease. */
static void trigger(struct cx_http_req *req, struct cx_admin *a,
                    const char *kind)
{
  static const char *const allowed[] = {"job_id", "node_uuid", NULL};
  json_t *body = cx_http_req_json(req);
  char err[CX_ERR_LEN] = "", key[KEY_LEN], rid[33];
  const char *node = NULL;
  int64_t job_id = 0, lease = 0;
  struct cx_job j;
  int alive = 0, rc;

  memset(&j, 0, sizeof j);
  if (cx__admin_auth(a, req, CX_ROLE_OPERATOR, NULL) != 0 ||
      cx__admin_json_only(req, body, allowed) != 0 ||
      cx__admin_json_str(req, body, "node_uuid", MAX_UUID, &node) < 0)
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
  if (node[0] == '\0') {
    cx_http_reply_error(req, CX_HTTP_NODE_UNAVAIL, "node_uuid",
                        "job %lld is not placed on any node; name one in "
                        "node_uuid",
                        (long long)job_id);
    goto out;
  }
  if ((rc = node_alive(a, node, &alive, err)) != 0) {
    cx__admin_reply_backend_error(req, rc, "coordination", err);
    goto out;
  }
  if (!alive) {
    cx_http_reply_error(req, CX_HTTP_NODE_UNAVAIL, "node_uuid",
                        "node_uuid: node %.64s is not registered or not alive",
                        node);
    goto out;
  }
  size_t kl = cx__admin_key(a, key, sizeof key, "%s/%s/%lld", kind, node,
                            (long long)job_id);
  if (request_id(rid) != 0 || kl == 0) {
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
  trigger(req, ctx, "once");
}

static void h_job_kill(struct cx_http_req *req, void *ctx)
{
  trigger(req, ctx, "kill");
}

/* ---- POST /job/pause, /job/resume ---------------------------------------- */

static void set_enabled(struct cx_http_req *req, struct cx_admin *a,
                        int enabled)
{
  char err[CX_ERR_LEN] = "";
  int64_t *ids = NULL;
  size_t n = 0;
  json_t *list = NULL;

  if (ids_request(a, req, &ids, &n) != 0)
    return;
  if ((list = json_array()) == NULL) {
    reply_oom(req);
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    struct cx_job j;
    char cerr[CX_ERR_LEN] = "";
    pthread_mutex_t *mu = job_lock(ids[i]);
    int was = 1, rc;

    memset(&j, 0, sizeof j);
    pthread_mutex_lock(mu);
    rc = cx_store_job_find(a->store, ids[i], &j, err);
    if (rc == 0) {
      was = j.enabled;
      rc = cx_store_job_set_enabled(a->store, ids[i], enabled, err);
    }
    if (rc == 0) {
      cx_job_clear(&j);
      rc = cx_store_job_find(a->store, ids[i], &j, err);
    }
    if (rc == 0 && j.run_on[0] != '\0' &&
        (rc = publish(a, &j, NULL, cerr)) != 0) {
      snprintf(err, sizeof err, "%s", cerr);
      char berr[CX_ERR_LEN];
      if (cx_store_job_set_enabled(a->store, ids[i], was, berr) != 0)
        CX_LOG(CX_LOG_ERROR, "admin",
               "job %lld: enabled left at %d unpublished (%s); the "
               "reconciler will publish it",
               (long long)ids[i], enabled, berr);
    }
    pthread_mutex_unlock(mu);
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
