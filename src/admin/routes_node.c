/*
 * admin: nodes, statistics, health and metrics (SPEC §4) --
 * POST /node/search, POST /node/del, GET /statis/today, GET /statis/week,
 * GET /healthz, GET /metrics.
 *
 * A node's state is the coordination service's word, not the store's: a
 * node is alive iff <prefix>/node/<uuid> exists (SPEC §7). The store's
 * `status` column lags (the leader updates it on failover), so replies merge
 * the two: every store row, plus any node registered in coordination but not
 * yet in the store, with `status` 1 (alive) or 2 (dead) from coordination,
 * its job count from the store and its running runs counted under
 * <prefix>/proc/<uuid>/. Filtering by status therefore happens after the
 * merge, in memory (nodes number in the tens to hundreds; the store is read
 * in pages of 500, at most MAX_NODES rows).
 *
 * There is no "last heartbeat" to report: a lease keep-alive leaves no time
 * in the key; `up` (registration time, from the key's value when alive) is
 * what there is.
 *
 * Statistics count runs by start time in days of the system default zone
 * (system.default_timezone), every day present, zeros included (the
 * reference dropped empty days and sent counts as strings).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin-int.h"
#include "webui/webui.h"
#include "admin/alerts.h"
#include "admin/cluster.h"
#include "cron/cron.h"

#define MAX_NODES 100000

/* ---- merged node view --------------------------------------------------- */

struct node_view {
  struct cx_node n; /* strings owned */
  int alive;
  int64_t jobs, running;
  json_t *labels; /* from the node key (alive nodes only); NULL = none */
  int drained;    /* <prefix>/drain/<uuid> exists */
};

struct nodes {
  struct node_view *v;
  size_t n, cap;
};

static void nodes_free(struct nodes *ns)
{
  for (size_t i = 0; i < ns->n; i++) {
    cx_node_clear(&ns->v[i].n);
    json_decref(ns->v[i].labels);
  }
  cx_free(ns->v);
  memset(ns, 0, sizeof *ns);
}

static struct node_view *nodes_find(struct nodes *ns, const char *uuid)
{
  for (size_t i = 0; i < ns->n; i++)
    if (strcmp(ns->v[i].n.uuid, uuid) == 0)
      return &ns->v[i];
  return NULL;
}

static struct node_view *nodes_add(struct nodes *ns)
{
  if (ns->n == ns->cap) {
    size_t cap = ns->cap ? ns->cap * 2 : 16;
    struct node_view *v = cx_realloc(ns->v, cap * sizeof *v);
    if (v == NULL)
      return NULL;
    ns->v = v;
    ns->cap = cap;
  }
  struct node_view *nv = &ns->v[ns->n++];
  memset(nv, 0, sizeof *nv);
  return nv;
}

/* A string member of a node key's JSON value, copied ("" if absent). */
static char *value_str(json_t *v, const char *name)
{
  const char *s = json_string_value(json_object_get(v, name));
  return cx_strdup(s ? s : "");
}

/* Reads every node (store + coordination) with its state and counts.
 * Returns 0 or a backend code; *what names the part that failed. */
static int nodes_read(struct cx_admin *a, struct nodes *ns, const char **what,
                      char *err)
{
  char key[CX_KEY_LEN];
  struct cx_key k;
  struct cx_coord_kvs live = {0}, procs = {0};
  struct cx_node_jobs *counts = NULL;
  size_t ncounts = 0;
  int rc = 0;

  *what = "nodes";

  memset(ns, 0, sizeof *ns);
  for (int page = 1; rc == 0 && ns->n < MAX_NODES; page++) {
    struct cx_node_list l;
    rc = cx_store_node_search(a->store, 0, page, CX_STORE_PAGE_MAX, &l, err);
    if (rc != 0)
      break;
    size_t got = l.n;
    for (size_t i = 0; i < l.n; i++) {
      struct node_view *nv = nodes_add(ns);
      if (nv == NULL) {
        rc = -ENOMEM;
        break;
      }
      nv->n = l.items[i];
      memset(&l.items[i], 0, sizeof l.items[i]);
    }
    cx_node_list_free(&l);
    if (got < CX_STORE_PAGE_MAX)
      break;
  }
  if (rc == 0) {
    *what = "node jobs";
    rc = cx_store_job_count_by_node(a->store, &counts, &ncounts, err);
  }
  size_t kl = cx_key_dir(key, sizeof key, a->prefix, CX_KEY_NODE, NULL);
  if (rc == 0) {
    *what = "coordination";
    rc = cx_coord_range(a->coord, key, kl, &live, err);
  }
  kl = cx_key_dir(key, sizeof key, a->prefix, CX_KEY_PROC, NULL);
  if (rc == 0)
    rc = cx_coord_range(a->coord, key, kl, &procs, err);
  for (size_t i = 0; rc == 0 && i < live.n; i++) {
    const struct cx_coord_kv *kv = &live.kvs[i];
    if (!cx__admin_key_is(a, CX_KEY_NODE, kv->key, kv->key_len, &k))
      continue;
    const char *uuid = k.uuid;
    struct node_view *nv = nodes_find(ns, uuid);
    json_t *v = json_loadb(live.kvs[i].value, live.kvs[i].value_len, 0, NULL);
    if (nv == NULL) {
      nv = nodes_add(ns);
      if (nv == NULL) {
        rc = -ENOMEM;
      } else {
        nv->n.uuid = cx_strdup(uuid);
        nv->n.hostname = value_str(v, "hostname");
        nv->n.ip = value_str(v, "ip");
        nv->n.version = value_str(v, "version");
        nv->n.pid = (int)json_integer_value(json_object_get(v, "pid"));
        if (nv->n.uuid == NULL || nv->n.hostname == NULL || nv->n.ip == NULL ||
            nv->n.version == NULL)
          rc = -ENOMEM;
      }
    }
    if (nv != NULL) {
      nv->alive = 1;
      json_int_t up = json_integer_value(json_object_get(v, "up"));
      if (up > 0)
        nv->n.up = up;
      json_t *labels = json_object_get(v, "labels");
      if (json_is_object(labels))
        nv->labels = json_incref(labels);
    }
    json_decref(v);
  }
  char **drained = NULL;
  size_t nd = 0;
  if (rc == 0)
    rc = cx__jobs_drained(a, &drained, &nd, err);
  for (size_t i = 0; i < nd; i++) {
    struct node_view *nv = rc == 0 ? nodes_find(ns, drained[i]) : NULL;
    if (nv != NULL)
      nv->drained = 1;
    cx_free(drained[i]);
  }
  cx_free(drained);
  for (size_t i = 0; rc == 0 && i < procs.n; i++) {
    const struct cx_coord_kv *kv = &procs.kvs[i];
    if (!cx__admin_key_is(a, CX_KEY_PROC, kv->key, kv->key_len, &k))
      continue;
    struct node_view *nv = nodes_find(ns, k.uuid);
    if (nv != NULL)
      nv->running++;
  }
  for (size_t i = 0; rc == 0 && i < ncounts; i++) {
    struct node_view *nv = nodes_find(ns, counts[i].run_on);
    if (nv != NULL)
      nv->jobs = counts[i].count;
  }
  cx_node_jobs_free(counts, ncounts);
  cx_coord_kvs_free(&live);
  cx_coord_kvs_free(&procs);
  if (rc != 0)
    nodes_free(ns);
  return rc;
}

/* nodes_read, replying on failure (then -1). */
static int nodes_load(struct cx_admin *a, struct cx_http_req *req,
                      struct nodes *ns)
{
  char err[CX_ERR_LEN] = "";
  const char *what;
  int rc = nodes_read(a, ns, &what, err);
  if (rc == -ENOMEM)
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
  else if (rc != 0)
    cx__admin_reply_backend_error(req, rc, what, err);
  return rc == 0 ? 0 : -1;
}

static json_t *node_json(const struct node_view *nv)
{
  const struct cx_node *n = &nv->n;
  json_t *labels = nv->labels ? json_deep_copy(nv->labels) : json_object();
  return json_pack("{s:I, s:s, s:s, s:s, s:i, s:s, s:i, s:b, s:I, s:I, s:I, "
                   "s:I, s:o, s:s}",
                   "id", (json_int_t)n->id, "uuid", n->uuid, "hostname",
                   n->hostname ? n->hostname : "", "ip", n->ip ? n->ip : "",
                   "pid", n->pid, "version", n->version ? n->version : "",
                   "status", nv->alive ? CX_NODE_UP : CX_NODE_DOWN, "alive",
                   nv->alive, "up", (json_int_t)n->up, "down",
                   (json_int_t)n->down, "job_count", (json_int_t)nv->jobs,
                   "running", (json_int_t)nv->running, "labels", labels,
                   "drain",
                   !nv->drained      ? ""
                   : nv->running > 0 ? "draining"
                                     : "drained");
}

static void h_node_search(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"page", "page_size", "status", NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  int page, size;
  int64_t status = 0;
  struct nodes ns;

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, NULL) < 0 ||
      cx__admin_json_only(req, body, allowed) < 0 ||
      cx__admin_paging(req, body, &page, &size) < 0 ||
      cx__admin_json_int(req, body, "status", 0, 2, &status) < 0 ||
      nodes_load(a, req, &ns) < 0)
    return;
  json_t *list = json_array();
  int64_t total = 0, first = (int64_t)(page - 1) * size;
  for (size_t i = 0; list != NULL && i < ns.n; i++) {
    const struct node_view *nv = &ns.v[i];
    int st = nv->alive ? CX_NODE_UP : CX_NODE_DOWN;
    if (status != 0 && st != status)
      continue;
    if (total >= first && total < first + size &&
        json_array_append_new(list, node_json(nv)) != 0) {
      json_decref(list);
      list = NULL;
    }
    total++;
  }
  nodes_free(&ns);
  if (list == NULL) {
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    return;
  }
  cx__admin_reply_page(req, list, total, page, size);
}

/* POST /node/drain and /node/undrain {uuid}: puts or deletes
 * <prefix>/drain/<uuid> (no lease: a drain outlives restarts, for rolling
 * upgrades) and wakes the leader, which moves the node's auto jobs away;
 * placement leaves a drained node out. */
static void node_drain(struct cx_http_req *req, struct cx_admin *a, int on)
{
  json_t *body = cx_http_req_json(req);
  const char *uuid = NULL;
  char err[CX_ERR_LEN] = "", key[CX_KEY_LEN], what[96], val[64];
  struct cx_node n = {0};

  if (cx__admin_auth(a, req, CX_ROLE_ADMIN, NULL) < 0)
    return;
  if (json_object_size(body) == 1 &&
      cx__admin_json_str(req, body, "uuid", 64, &uuid) < 0)
    return;
  if (uuid == NULL || !cx_key_uuid_ok(uuid)) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "uuid",
                        "body must be {\"uuid\": \"<node uuid>\"}: 1..64 of "
                        "letters, digits, '.', '_', '-'");
    return;
  }
  snprintf(what, sizeof what, "node %s", uuid);
  int known = 0;
  int rc = cx_store_node_find(a->store, uuid, &n, err);
  cx_node_clear(&n);
  known = rc == 0;
  if (rc == CX_ENOTFOUND) /* registered in etcd, not yet in the store? */
    rc = cx__admin_node_alive(a, uuid, &known, err);
  if (rc == 0 && !known) {
    rc = CX_ENOTFOUND;
    cx_err_set(err, "no node %s", uuid);
  }
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, what, err);
    return;
  }
  size_t kl =
      cx_key_build(key, sizeof key, a->prefix, CX_KEY_DRAIN, uuid, 0, NULL);
  snprintf(val, sizeof val, "{\"at\":%lld}", (long long)cx_wall_s());
  rc = on ? cx_coord_put(a->coord, key, kl, val, strlen(val), 0, NULL, err)
          : cx_coord_delete(a->coord, key, kl, NULL, NULL, err);
  if (rc != 0 && !(rc == CX_ENOTFOUND && !on)) {
    cx__admin_reply_backend_error(req, rc, "coordination", err);
    return;
  }
  CX_LOG(CX_LOG_INFO, "admin", "node %s %s", uuid,
         on ? "drained: its auto jobs move away" : "undrained");
  cx__jobs_load_forget();
  cx__cluster_kick(a);
  cx_http_reply_ok(req, NULL);
}

static void h_node_drain(struct cx_http_req *req, void *ctx)
{
  node_drain(req, ctx, 1);
}

static void h_node_undrain(struct cx_http_req *req, void *ctx)
{
  node_drain(req, ctx, 0);
}

static void h_node_del(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  const char *uuid = NULL;
  char err[CX_ERR_LEN] = "", key[CX_KEY_LEN], what[96];
  struct cx_node n = {0};
  struct cx_coord_kvs kvs;
  struct cx__admin_who who;

  if (cx__admin_auth(a, req, CX_ROLE_ADMIN, &who) < 0)
    return;
  if (json_object_size(body) != 1 || json_object_get(body, "uuid") == NULL) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "uuid",
                        "body must be {\"uuid\": \"<node uuid>\"}");
    return;
  }
  if (cx__admin_json_str(req, body, "uuid", 64, &uuid) < 0)
    return;
  if (!cx_key_uuid_ok(uuid)) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "uuid",
                        "uuid: 1..64 of letters, digits, '.', '_', '-'");
    return;
  }
  snprintf(what, sizeof what, "node %s", uuid);
  int rc = cx_store_node_find(a->store, uuid, &n, err);
  cx_node_clear(&n);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, what, err);
    return;
  }
  size_t kl =
      cx_key_build(key, sizeof key, a->prefix, CX_KEY_NODE, uuid, 0, NULL);
  rc = cx_coord_get(a->coord, key, kl, &kvs, err);
  if (rc == 0) {
    cx_coord_kvs_free(&kvs);
    cx_http_reply_error(req, CX_HTTP_CONFLICT, "uuid",
                        "node %s is alive; only a dead node can be deleted",
                        uuid);
    return;
  }
  if (rc != CX_ENOTFOUND) {
    cx__admin_reply_backend_error(req, rc, what, err);
    return;
  }
  /* The node's jobs keep run_on = uuid in the store and their keys under
   * <prefix>/job/<uuid>/ until the leader places them (cluster.c): the
   * leader is woken here; on another admin its next reconciliation (at
   * most a minute) does it. */
  struct cx__actor actor = cx__admin_actor(req, &who);
  if ((rc = cx_store_tx_begin(a->store, err)) == 0) {
    rc = cx_store_node_delete(a->store, uuid, err);
    rc = cx__admin_audit_commit(a, rc, &actor, "node.del", what, NULL, NULL,
                                err);
  }
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, what, err);
    return;
  }
  CX_LOG(CX_LOG_INFO, "admin", "deleted dead node %s", uuid);
  cx__cluster_kick(a);
  cx_http_reply_ok(req, NULL);
}

/* ---- statistics --------------------------------------------------------- */

/* The instant (unix s) of local midnight starting the day that is `back`
 * days before the day containing now (-1 = tomorrow), in tz; *civil gets
 * that date. */
static int64_t day_start(const struct cx_tz *tz, int64_t now, int back,
                         struct cx_civil *civil)
{
  int64_t local = now + cx_tz_offset(tz, now);
  int64_t day = (local >= 0 ? local / 86400 : (local - 86399) / 86400) - back;
  int64_t mid = day * 86400;
  /* Local midnight -> UTC; refine once for an offset change at midnight. */
  int64_t t = mid - cx_tz_offset(tz, mid - cx_tz_offset(tz, now));
  t = mid - cx_tz_offset(tz, t);
  cx_civil_from_seconds(mid, civil);
  return t;
}

static json_t *counts_json(const char *date, const struct cx_run_counts *c)
{
  return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "date", date, "total",
                   (json_int_t)c->total, "success", (json_int_t)c->success,
                   "failed", (json_int_t)c->failed, "running",
                   (json_int_t)c->running, "missed", (json_int_t)c->missed);
}

static const struct cx_tz *default_tz(const struct cx_admin *a)
{
  const struct cx_tz *tz = NULL;
  if (cx_tz_get(a->cfg->default_timezone, &tz, NULL) != 0)
    tz = NULL; /* UTC */
  return tz;
}

/* Runs per day for the `days` days ending today, oldest first. */
static int run_days(struct cx_admin *a, int days, json_t **out, char *err)
{
  const struct cx_tz *tz = default_tz(a);
  int64_t now = cx_wall_s();
  json_t *arr = json_array();
  if (arr == NULL)
    return -ENOMEM;
  for (int back = days - 1; back >= 0; back--) {
    struct cx_civil c0, c1;
    struct cx_run_counts rc = {0};
    int64_t from = day_start(tz, now, back, &c0);
    int64_t to = day_start(tz, now, back - 1, &c1); /* next midnight */
    int r = cx_store_run_counts(a->store, from * 1000, to * 1000, &rc, err);
    if (r != 0) {
      json_decref(arr);
      return r;
    }
    char date[16];
    snprintf(date, sizeof date, "%04d-%02d-%02d", c0.year % 10000, c0.month,
             c0.day);
    if (json_array_append_new(arr, counts_json(date, &rc)) != 0) {
      json_decref(arr);
      return -ENOMEM;
    }
  }
  *out = arr;
  return 0;
}

/* Job totals and node states for the dashboard, into obj. */
static int dashboard(struct cx_admin *a, json_t *obj, char *err)
{
  struct cx_job_filter f = {.page = 1, .page_size = 1};
  struct cx_job_list l;
  int64_t jobs, enabled;
  int rc = cx_store_job_search(a->store, &f, &l, err);
  if (rc != 0)
    return rc;
  jobs = l.total;
  cx_job_list_free(&l);
  f.enabled = CX_STORE_YES;
  if ((rc = cx_store_job_search(a->store, &f, &l, err)) != 0)
    return rc;
  enabled = l.total;
  cx_job_list_free(&l);
  json_object_set_new(obj, "jobs_total", json_integer(jobs));
  json_object_set_new(obj, "jobs_enabled", json_integer(enabled));
  return 0;
}

static void statis(struct cx_http_req *req, struct cx_admin *a, int days)
{
  char err[CX_ERR_LEN] = "";
  json_t *arr = NULL;
  struct nodes ns;

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, NULL) < 0)
    return;
  int rc = run_days(a, days, &arr, err);
  json_t *data = rc == 0 ? json_object() : NULL;
  if (rc == 0 && data == NULL)
    rc = -ENOMEM;
  if (rc == 0)
    rc = dashboard(a, data, err);
  if (rc != 0) {
    json_decref(arr);
    json_decref(data);
    if (rc == -ENOMEM)
      cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    else
      cx__admin_reply_backend_error(req, rc, "statistics", err);
    return;
  }
  if (nodes_load(a, req, &ns) < 0) {
    json_decref(arr);
    json_decref(data);
    return;
  }
  int64_t alive = 0, running = 0;
  for (size_t i = 0; i < ns.n; i++) {
    alive += ns.v[i].alive;
    running += ns.v[i].running;
  }
  json_object_set_new(data, "nodes_alive", json_integer(alive));
  json_object_set_new(data, "nodes_dead", json_integer((int64_t)ns.n - alive));
  json_object_set_new(data, "procs_running", json_integer(running));
  json_object_set_new(data, "timezone", json_string(cx_tz_name(default_tz(a))));
  nodes_free(&ns);
  if (days == 1) {
    json_t *today = json_array_get(arr, 0);
    json_object_update(data, today);
    json_decref(arr);
  } else {
    json_object_set_new(data, "days", arr);
  }
  cx_http_reply_ok(req, data);
}

static void h_statis_today(struct cx_http_req *req, void *ctx)
{
  statis(req, ctx, 1);
}

static void h_statis_week(struct cx_http_req *req, void *ctx)
{
  statis(req, ctx, 7);
}

/* ---- health ------------------------------------------------------------- */

/* Probes store and coordination. data gets "ok" or "failing" for each (all
 * an anonymous caller sees: a raw error can name hosts, users and
 * versions); detail, when not NULL, gets backend and error for each (for
 * an authenticated caller). Failures are logged with their error. Returns
 * 1 when both answer. */
static int probe(struct cx_admin *a, json_t *data, json_t *detail)
{
  char err[CX_ERR_LEN] = "", cerr[CX_ERR_LEN] = "", key[CX_KEY_LEN];
  struct cx_coord_kvs kvs;
  int sok = cx_store_ping(a->store, err) == 0;
  size_t kl =
      cx_key_build(key, sizeof key, a->prefix, CX_KEY_LEADER, NULL, 0, NULL);
  int crc = cx_coord_get(a->coord, key, kl, &kvs, cerr);
  if (crc == 0)
    cx_coord_kvs_free(&kvs);
  int cok = crc == 0 || crc == CX_ENOTFOUND;
  if (!sok)
    CX_LOG(CX_LOG_WARN, "admin", "healthz: store failing: %s", err);
  if (!cok)
    CX_LOG(CX_LOG_WARN, "admin", "healthz: coordination failing: %s", cerr);
  json_object_set_new(data, "store", json_string(sok ? "ok" : "failing"));
  json_object_set_new(data, "coord", json_string(cok ? "ok" : "failing"));
  if (detail != NULL) {
    json_object_set_new(detail, "store",
                        json_pack("{s:b, s:s, s:s}", "ok", sok, "backend",
                                  cx_store_backend(a->store), "error",
                                  sok ? "" : err));
    json_object_set_new(detail, "coord",
                        json_pack("{s:b, s:s, s:s}", "ok", cok, "backend",
                                  cx_coord_backend(a->coord), "error",
                                  cok ? "" : cerr));
    json_object_set_new(data, "detail", json_incref(detail));
  }
  return sok && cok;
}

/* The API description (docs/openapi.json, built in by src/webui): public,
 * it holds no data. */
static void h_openapi(struct cx_http_req *req, void *ctx)
{
  (void)ctx;
  cx_webui_reply_openapi(req);
}

/* No token: the two words only. With a token (any role; a bad one is
 * refused like anywhere else), also the backends and their errors. */
static void h_healthz(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  int authed = cx_http_req_header(req, "Authorization") != NULL;
  if (authed && cx__admin_auth(a, req, CX_ROLE_VIEWER, NULL) < 0)
    return;
  json_t *data = json_object();
  json_t *detail = authed ? json_object() : NULL;
  if (data == NULL || (authed && detail == NULL)) {
    json_decref(data);
    json_decref(detail);
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    return;
  }
  int up = probe(a, data, detail);
  json_decref(detail);
  if (up)
    cx_http_reply_ok(req, data);
  else
    cx_http_reply_error_data(req, CX_HTTP_UNAVAIL, NULL, data,
                             "store or coordination service unavailable");
}

/* ---- GET /cluster -------------------------------------------------------- */

/* {mode, leader, self}: mode "standalone" (in-process coordination) or
 * "cluster" (etcd); leader is the admin holding <prefix>/leader, whose
 * value cluster.c writes as "hostname:pid:random" ({id, hostname, pid}),
 * or null when no admin leads right now; self is 1 when this admin is it. */
static void h_cluster(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  char key[CX_KEY_LEN], err[CX_ERR_LEN] = "";
  struct cx_coord_kvs kvs = {0};
  struct cx_admin_cluster_stats st;
  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, NULL) != 0)
    return;
  size_t klen =
      cx_key_build(key, sizeof key, a->prefix, CX_KEY_LEADER, NULL, 0, NULL);
  int rc = cx_coord_get(a->coord, key, klen, &kvs, err);
  if (rc != 0 && rc != CX_ENOTFOUND) {
    cx__admin_reply_backend_error(req, rc, "coordination", err);
    return;
  }
  cx_admin_cluster_stats(a, &st);
  const char *ep = a->cfg->etcd_endpoints;
  json_t *leader = json_null();
  if (rc == 0 && kvs.n == 1) {
    const char *v = kvs.kvs[0].value;
    size_t n = kvs.kvs[0].value_len, r = n, p;
    while (r > 0 && v[r - 1] != ':') /* r - 1: the last ':' */
      r--;
    p = r > 0 ? r - 1 : 0;
    while (p > 0 && v[p - 1] != ':') /* p - 1: the one before it */
      p--;
    int split = r > 0 && p > 0;
    json_decref(leader);
    leader = json_pack(
        "{s:o, s:o, s:o}", "id", cx__admin_json_bytes(v, n), "hostname",
        cx__admin_json_bytes(v, split ? p - 1 : n), "pid",
        cx__admin_json_bytes(v + (split ? p : n), split ? r - 1 - p : 0));
  }
  cx_coord_kvs_free(&kvs);
  json_t *o =
      leader == NULL
          ? NULL
          : json_pack("{s:s, s:o, s:b}", "mode",
                      ep != NULL && ep[0] != '\0' ? "cluster" : "standalone",
                      "leader", leader, "self", st.leader);
  if (o == NULL)
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
  else
    cx_http_reply_ok(req, o);
}

/* ---- metrics (Prometheus text format 0.0.4) ---------------------------- */

/* Appends s as a label value: backslash, double quote and newline escaped. */
static void label(struct cx_buf *b, const char *s)
{
  for (; *s; s++) {
    if (*s == '\\')
      cx_buf_puts(b, "\\\\");
    else if (*s == '"')
      cx_buf_puts(b, "\\\"");
    else if (*s == '\n')
      cx_buf_puts(b, "\\n");
    else
      cx_buf_append(b, s, 1);
  }
}

static void stat_line(const char *method, const char *path, int status,
                      uint64_t count, void *ctx)
{
  struct cx_buf *b = ctx;
  cx_buf_puts(b, "cronix_http_requests_total{method=\"");
  label(b, method ? method : "");
  cx_buf_puts(b, "\",route=\"");
  label(b, path ? path : "(unrouted)");
  cx_buf_printf(b, "\",status=\"%d\"} %llu\n", status,
                (unsigned long long)count);
}

static void family(struct cx_buf *b, const char *name, const char *type,
                   const char *help)
{
  cx_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void h_metrics(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  struct cx_buf b = {0};
  char err[CX_ERR_LEN] = "";
  struct nodes ns;

  if (!a->cfg->metrics_public &&
      cx__admin_auth(a, req, CX_ROLE_VIEWER, NULL) < 0)
    return;
  family(&b, "cronix_http_requests_total", "counter",
         "HTTP requests answered, by route and status.");
  cx_http_stats_each(a->http, stat_line, &b);

  json_t *health = json_object();
  if (health != NULL)
    probe(a, health, NULL);
  const char *st = json_string_value(json_object_get(health, "store")),
             *co = json_string_value(json_object_get(health, "coord"));
  family(&b, "cronix_up", "gauge",
         "1 when the component answered this scrape, else 0.");
  cx_buf_printf(&b, "cronix_up{component=\"store\"} %d\n",
                st != NULL && strcmp(st, "ok") == 0);
  cx_buf_printf(&b, "cronix_up{component=\"coord\"} %d\n",
                co != NULL && strcmp(co, "ok") == 0);
  json_decref(health);

  json_t *dash = json_object();
  if (dash != NULL && dashboard(a, dash, err) == 0) {
    family(&b, "cronix_jobs", "gauge", "Jobs in the store, by state.");
    int64_t total = json_integer_value(json_object_get(dash, "jobs_total"));
    int64_t en = json_integer_value(json_object_get(dash, "jobs_enabled"));
    cx_buf_printf(&b, "cronix_jobs{state=\"enabled\"} %lld\n", (long long)en);
    cx_buf_printf(&b, "cronix_jobs{state=\"paused\"} %lld\n",
                  (long long)(total - en));
  }
  json_decref(dash);

  const char *what;
  if (nodes_read(a, &ns, &what, err) == 0) {
    int64_t alive = 0;
    for (size_t i = 0; i < ns.n; i++)
      alive += ns.v[i].alive;
    family(&b, "cronix_nodes", "gauge", "Known nodes, by state.");
    cx_buf_printf(&b, "cronix_nodes{state=\"alive\"} %lld\n", (long long)alive);
    cx_buf_printf(&b, "cronix_nodes{state=\"dead\"} %lld\n",
                  (long long)((int64_t)ns.n - alive));
    nodes_free(&ns);
  }

  json_t *days = NULL;
  if (run_days(a, 1, &days, err) == 0) {
    json_t *d = json_array_get(days, 0);
    static const char *const k[] = {"success", "failed", "running", "missed"};
    family(&b, "cronix_runs_today", "gauge",
           "Runs started today (system default zone), by status.");
    for (size_t i = 0; i < CX_ARRAY_LEN(k); i++)
      cx_buf_printf(&b, "cronix_runs_today{status=\"%s\"} %lld\n", k[i],
                    (long long)json_integer_value(json_object_get(d, k[i])));
    json_decref(days);
  }
  cx__cluster_metrics(a, &b);
  cx__alerts_metrics(a, &b);
  if (a->metrics != NULL)
    a->metrics(a->metrics_arg, &b);
  if (cx_buf_failed(&b)) {
    cx_buf_free(&b);
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
    return;
  }
  cx_http_reply_raw(req, 200, CX_HTTP_CT_PROMETHEUS, b.data ? b.data : "",
                    b.len);
  cx_buf_free(&b);
}

int cx__admin_routes_nodes(struct cx_admin *a)
{
  static const struct cx__admin_route routes[] = {
      {"POST", "/node/search", h_node_search},
      {"POST", "/node/drain", h_node_drain},
      {"POST", "/node/undrain", h_node_undrain},
      {"POST", "/node/del", h_node_del},
      {"GET", "/statis/today", h_statis_today},
      {"GET", "/statis/week", h_statis_week},
      {"GET", "/healthz", h_healthz},
      {"GET", "/metrics", h_metrics},
      {"GET", "/openapi.json", h_openapi},
      {"GET", "/cluster", h_cluster},
  };
  return cx__admin_register(a, routes, CX_ARRAY_LEN(routes));
}
