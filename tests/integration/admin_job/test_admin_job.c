/*
 * The job routes over real HTTP (libcurl) against an admin created in this
 * process on port 0, on both backend pairs: SQLite + in-process
 * coordination (standalone's pair) and a real MariaDB + a real etcd
 * started for the test. Every case runs on both (CASE below makes the two
 * tests). Fake nodes are <prefix>/node/<uuid> keys put under a lease.
 *
 * "Unchanged" is checked by a snapshot: every job row (as JSON) plus every
 * key under <prefix>/job/ with its mod revision, taken before and after.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin-int.h" /* cx__admin_alive_seen */
#include "admin/admin.h"
#include "admin/cluster.h"
#include "config/config.h"
#include "coord/coord.h"
#include "cron/cron.h"
#include "job/job.h"
#include "store/store.h"
#include "integration/admin_job/proxy.h"
#include "support/services.h"
#include "support/test.h"

#define PREFIX "/cronix"

struct fx {
  int dist;
  struct cx_svc_etcd etcd;
  struct cx_svc_mariadb db;
  struct cx_proxy *proxy;
  struct cx_config cfg;
  struct cx_store *store;
  struct cx_coord *coord;
  struct cx_admin *admin;
  unsigned port;
  char op[CX_STORE_TOKEN_LEN], viewer[CX_STORE_TOKEN_LEN];
  char boss[CX_STORE_TOKEN_LEN]; /* an admin user's token */
  int64_t lease;
};
static struct fx F;

static void make_user(const char *name, const char *role, char *token)
{
  char err[CX_ERR_LEN];
  struct cx_user u = {0};
  u.username = (char *)name;
  u.password_hash = (char *)"$y$j9T$notused$notused";
  u.role = (char *)role;
  u.email = (char *)"";
  u.feishu_id = (char *)"";
  ASSERT_MSG(cx_store_user_create(F.store, &u, err) == 0, "%s", err);
  ASSERT(cx_store_token_generate(token) == 0);
  ASSERT_MSG(cx_store_token_create(F.store, token, u.id, "api", 0, err) == 0,
             "%s", err);
}

static void setup(int dist)
{
  char err[CX_ERR_LEN], url[1024];
  memset(&F, 0, sizeof F);
  F.dist = dist;
  curl_global_init(CURL_GLOBAL_ALL);
  struct cx_coord_cfg ccfg = {.request_timeout_ms = 1500,
                              .connect_timeout_ms = 1000};
  if (dist) {
    ASSERT_MSG(cx_svc_etcd_start(&F.etcd, NULL, err) == 0, "%s", err);
    ASSERT_MSG(cx_svc_mariadb_start(&F.db, NULL, err) == 0, "%s", err);
    /* The admin reaches etcd through a proxy that can pause etcd at the
     * exact moment a write arrives (see the atomicity cases). */
    ASSERT_MSG(cx_proxy_start(F.etcd.m[0].client_port, &F.proxy, err) == 0,
               "%s", err);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", cx_proxy_port(F.proxy));
    ccfg.endpoints = url;
    ASSERT_MSG(cx_store_open(F.db.url, &F.store, err) == 0, "%s", err);
  } else {
    snprintf(url, sizeof url, "sqlite://%s/cronix.db", cx_test_tmpdir());
    ASSERT_MSG(cx_store_open(url, &F.store, err) == 0, "%s", err);
    ccfg.endpoints = NULL;
  }
  ASSERT_MSG(cx_coord_open(&ccfg, &F.coord, err) == 0, "%s", err);
  ASSERT(cx_config_init(&F.cfg) == 0);
  ASSERT(cx_config_set(&F.cfg, "system.default_timezone", "UTC", err) == 0);
  /* Jobs that alert by email need the channel configured (issue 14). */
  ASSERT(cx_config_set(&F.cfg, "notify.email.smtp_url", "smtp://127.0.0.1:9",
                       err) == 0);
  ASSERT(cx_config_set(&F.cfg, "notify.email.from", "cron@cronix.test", err) ==
         0);
  /* What the daemon does with that setting (src/cli/daemon.c): the zone of
   * jobs with none, else the host's zone leaks into "next" times. */
  ASSERT_MSG(cx_tz_set_default("UTC", err) == 0, "%s", err);
  struct cx_admin_opts o = {.cfg = &F.cfg,
                            .store = F.store,
                            .coord = F.coord,
                            .listen = "127.0.0.1:0"};
  ASSERT_MSG(cx_admin_create(&o, &F.admin, err) == 0, "%s", err);
  /* The API alone: no failover or reconciliation racing the cases. */
  ASSERT(cx_admin_cluster_set(F.admin,
                              &(struct cx_admin_cluster_opts){.off = 1}) == 0);
  ASSERT_MSG(cx_admin_start(F.admin, err) == 0, "%s", err);
  F.port = cx_admin_port(F.admin);
  make_user("op", "operator", F.op);
  make_user("viewer", "viewer", F.viewer);
  make_user("boss", "admin", F.boss);
  ASSERT_MSG(cx_coord_lease_grant(F.coord, 120, 0, NULL, NULL, &F.lease, NULL,
                                  err) == 0,
             "%s", err);
}

static void teardown(void)
{
  cx_admin_destroy(F.admin);
  cx_coord_close(F.coord);
  cx_store_close(F.store);
  cx_config_free(&F.cfg);
  cx_proxy_stop(F.proxy);
  if (F.dist) {
    cx_svc_etcd_destroy(&F.etcd);
    cx_svc_mariadb_destroy(&F.db);
  }
}

/* Each case runs on both pairs. */
#define CASE(name)                                                             \
  static void case_##name(void);                                               \
  TEST_TIMEOUT(admin_job_local_##name, 60)                                     \
  {                                                                            \
    setup(0);                                                                  \
    case_##name();                                                             \
    teardown();                                                                \
  }                                                                            \
  TEST_TIMEOUT(admin_job_dist_##name, 180)                                     \
  {                                                                            \
    setup(1);                                                                  \
    case_##name();                                                             \
    teardown();                                                                \
  }                                                                            \
  static void case_##name(void)

/* Cases that need a real etcd and MariaDB to stop. */
#define DIST_CASE(name) TEST_TIMEOUT(admin_job_dist_##name, 180)

/* ---- fake nodes and coordination ---------------------------------------- */

/* A node key with labels (a JSON object's text), as a node writes it. */
static void node_up_labels(const char *uuid, const char *labels)
{
  char key[256], val[512], err[CX_ERR_LEN];
  snprintf(key, sizeof key, PREFIX "/node/%s", uuid);
  snprintf(val, sizeof val, "{\"uuid\":\"%s\",\"labels\":%s}", uuid, labels);
  ASSERT_MSG(cx_coord_put(F.coord, key, strlen(key), val, strlen(val), F.lease,
                          NULL, err) == 0,
             "%s", err);
}

static void node_up(const char *uuid)
{
  node_up_labels(uuid, "{}");
}

/* Deletes the node's key and waits (up to 10 s) until the admin's alive
 * set, kept by a watch, has seen the deletion: the admin learns of a dead
 * node within a bounded time, not at the same instant. */
static void node_down(const char *uuid)
{
  char key[256], err[CX_ERR_LEN];
  int64_t rev = 0;
  snprintf(key, sizeof key, PREFIX "/node/%s", uuid);
  ASSERT(cx_coord_delete(F.coord, key, strlen(key), NULL, &rev, err) == 0);
  cx_mono until = cx_mono_now() + 10 * 1000000;
  while (cx__admin_alive_seen(F.admin) < rev && cx_mono_now() < until)
    cx_sleep_us(2000);
  ASSERT_MSG(cx__admin_alive_seen(F.admin) >= rev,
             "the admin has not seen revision %lld after 10 s", (long long)rev);
}

/* The value of a key as JSON (NULL when absent); *mod_rev optional. */
static json_t *coord_json(const char *key, int64_t *mod_rev)
{
  char err[CX_ERR_LEN];
  struct cx_coord_kvs kvs;
  int rc = cx_coord_get(F.coord, key, strlen(key), &kvs, err);
  if (rc == CX_ENOTFOUND)
    return NULL;
  ASSERT_MSG(rc == 0, "%s", err);
  json_t *v = json_loadb(kvs.kvs[0].value, kvs.kvs[0].value_len, 0, NULL);
  if (mod_rev)
    *mod_rev = kvs.kvs[0].mod_rev;
  cx_coord_kvs_free(&kvs);
  ASSERT(v != NULL);
  return v;
}

static json_t *job_key_json(const char *node, int64_t id)
{
  char key[256];
  snprintf(key, sizeof key, PREFIX "/job/%s/%lld", node, (long long)id);
  return coord_json(key, NULL);
}

static void assert_key(const char *node, int64_t id)
{
  json_t *k = job_key_json(node, id);
  ASSERT_MSG(k != NULL, "no key for job %lld on %s", (long long)id, node);
  json_decref(k);
}

static size_t count_prefix(const char *prefix)
{
  char err[CX_ERR_LEN];
  struct cx_coord_kvs kvs;
  ASSERT_MSG(cx_coord_range(F.coord, prefix, strlen(prefix), &kvs, err) == 0,
             "%s", err);
  size_t n = kvs.n;
  cx_coord_kvs_free(&kvs);
  return n;
}

static int64_t coord_rev(void)
{
  char err[CX_ERR_LEN];
  struct cx_coord_kvs kvs;
  ASSERT(cx_coord_range(F.coord, "/", 1, &kvs, err) == 0);
  int64_t r = kvs.revision;
  cx_coord_kvs_free(&kvs);
  return r;
}

/* Every job row and every job key, as text. Caller frees. */
static char *snapshot(void)
{
  char err[CX_ERR_LEN];
  struct cx_job_list l = {0};
  struct cx_coord_kvs kvs;
  struct cx_buf b = {0};

  ASSERT_MSG(cx_store_job_list(F.store, NULL, 0, &l, err) == 0, "%s", err);
  for (size_t i = 0; i < l.n; i++) {
    json_t *o = cx_job_to_json(&l.items[i]);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    cx_buf_printf(&b, "row %s\n", s);
    free(s);
    json_decref(o);
  }
  cx_job_list_free(&l);
  ASSERT(cx_coord_range(F.coord, PREFIX "/", strlen(PREFIX "/"), &kvs, err) ==
         0);
  for (size_t i = 0; i < kvs.n; i++)
    if (strstr(kvs.kvs[i].key, "/node/") == NULL)
      cx_buf_printf(&b, "key %s %lld %s\n", kvs.kvs[i].key,
                    (long long)kvs.kvs[i].mod_rev, kvs.kvs[i].value);
  cx_coord_kvs_free(&kvs);
  ASSERT(!cx_buf_failed(&b));
  return b.data ? cx_buf_steal(&b) : cx_strdup("");
}

/* Fails unless the stores still hold exactly the snapshot before (freed). */
static void assert_unchanged(char *before)
{
  char *after = snapshot();
  ASSERT_STREQ(after, before);
  free(before);
  free(after);
}

/* ---- HTTP ------------------------------------------------------------------
 */

struct resp {
  long status;
  struct cx_buf body;
  json_t *json;
};

static size_t on_write(char *p, size_t sz, size_t n, void *ud)
{
  cx_buf_append(ud, p, sz * n);
  return sz * n;
}

/* One request; token NULL = no Authorization header. The reply is kept in
 * a static slot released by the next call. */
static struct resp R;

static struct resp *call_len(const char *method, const char *target,
                             const char *token, const char *body, size_t blen)
{
  char url[4096], auth[128];
  struct curl_slist *hl = NULL;

  cx_buf_free(&R.body);
  json_decref(R.json);
  memset(&R, 0, sizeof R);
  snprintf(url, sizeof url, "http://127.0.0.1:%u%s", F.port, target);
  CURL *c = curl_easy_init();
  ASSERT(c != NULL);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body != NULL) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
  }
  hl = curl_slist_append(hl, "Expect:");
  hl = curl_slist_append(hl, "Content-Type: application/json");
  if (token != NULL) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    hl = curl_slist_append(hl, auth);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &R.body);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &R.status);
  curl_easy_cleanup(c);
  curl_slist_free_all(hl);
  ASSERT_MSG(rc == CURLE_OK, "curl: %s", curl_easy_strerror(rc));
  R.json = R.body.data ? json_loadb(R.body.data, R.body.len, 0, NULL) : NULL;
  ASSERT_MSG(R.json != NULL, "reply is not JSON: %s",
             R.body.data ? R.body.data : "");
  return &R;
}

static struct resp *call(const char *method, const char *target,
                         const char *token, const char *body)
{
  return call_len(method, target, token, body, body ? strlen(body) : 0);
}

static struct resp *post(const char *path, const char *body)
{
  return call("POST", path, F.op, body);
}

static int64_t rcode(void)
{
  return json_integer_value(json_object_get(R.json, "code"));
}

static const char *rfield(void)
{
  const char *f = json_string_value(json_object_get(R.json, "field"));
  return f ? f : "";
}

static const char *rmsg(void)
{
  const char *f = json_string_value(json_object_get(R.json, "msg"));
  return f ? f : "";
}

static json_t *rdata(void)
{
  return json_object_get(R.json, "data");
}

#define EXPECT(want_status, want_code)                                         \
  ASSERT_MSG(R.status == (want_status) && rcode() == (want_code),              \
             "want %d/%d, got %ld: %s", (want_status), (want_code), R.status,  \
             R.body.data ? R.body.data : "")

static int64_t dint(const char *name)
{
  return json_integer_value(json_object_get(rdata(), name));
}

static const char *dstr(const char *name)
{
  return json_string_value(json_object_get(rdata(), name));
}

/* Adds an http job (auto) called name; returns its id. */
static int64_t add_http(const char *name)
{
  char body[512];
  snprintf(body, sizeof body,
           "{\"name\":\"%s\",\"type\":2,\"command\":\"http://127.0.0.1:1/x\","
           "\"spec\":\"*/5 * * * *\",\"allocation\":2}",
           name);
  post("/job/add", body);
  EXPECT(200, 0);
  return dint("id");
}

static int64_t add_cmd_on(const char *name, const char *node)
{
  char body[512];
  snprintf(body, sizeof body,
           "{\"name\":\"%s\",\"type\":1,\"command\":\"echo hi\","
           "\"spec\":\"0 3 * * *\",\"allocation\":1,\"run_on\":\"%s\","
           "\"note\":\"keep me\",\"timeout\":30}",
           name, node);
  post("/job/add", body);
  EXPECT(200, 0);
  return dint("id");
}

static int store_has(int64_t id)
{
  char err[CX_ERR_LEN];
  struct cx_job j;
  memset(&j, 0, sizeof j);
  int rc = cx_store_job_find(F.store, id, &j, err);
  cx_job_clear(&j);
  ASSERT_MSG(rc == 0 || rc == CX_ENOTFOUND, "%s", err);
  return rc == 0;
}

static int64_t store_count(void)
{
  char err[CX_ERR_LEN];
  struct cx_job_list l = {0};
  struct cx_job_filter f = {0};
  ASSERT_MSG(cx_store_job_search(F.store, &f, &l, err) == 0, "%s", err);
  int64_t n = l.total;
  cx_job_list_free(&l);
  return n;
}

/* Audit rows of kind ("job.add", ...). A change undone by its compensation
 * must leave none (issue 13: no row for a change that did not happen). */
static int64_t audit_count(const char *kind)
{
  char err[CX_ERR_LEN];
  struct cx_audit_list l = {0};
  struct cx_audit_filter f = {0};
  f.kind = kind;
  ASSERT_MSG(cx_store_audit_search(F.store, &f, &l, err) == 0, "%s", err);
  int64_t n = l.total;
  cx_audit_list_free(&l);
  return n;
}

/* ---- /job/add: create ---------------------------------------------------- */

CASE(add_auto_http_publishes_row_and_key)
{
  node_up("n1");
  int64_t id = add_http("web");
  ASSERT_OP(id, >, 0);
  ASSERT_STREQ(dstr("run_on"), "n1");
  ASSERT_OP(dint("created"), >, 0);
  json_t *next = json_object_get(rdata(), "next");
  ASSERT_EQ(json_array_size(next), 5);
  ASSERT_CONTAINS(json_string_value(json_array_get(next, 0)), "+00:00");
  json_t *k = job_key_json("n1", id);
  ASSERT(k != NULL);
  ASSERT_STREQ(json_string_value(json_object_get(k, "name")), "web");
  ASSERT_EQ(json_integer_value(json_object_get(k, "id")), id);
  json_decref(k);
  ASSERT(store_has(id));
}

CASE(add_next_times_in_job_zone)
{
  node_up("n1");
  post("/job/add", "{\"name\":\"tz\",\"type\":2,\"command\":\"http://h/\","
                   "\"spec\":\"0 9 * * *\",\"allocation\":2,"
                   "\"timezone\":\"Asia/Tokyo\"}");
  EXPECT(200, 0);
  const char *t0 =
      json_string_value(json_array_get(json_object_get(rdata(), "next"), 0));
  ASSERT_CONTAINS(t0, "T09:00:00+09:00");
}

CASE(add_auto_picks_least_loaded_then_lowest)
{
  node_up("n2");
  node_up("n1");
  add_cmd_on("pinned", "n1");
  int64_t a = add_http("a");
  ASSERT_STREQ(dstr("run_on"), "n2"); /* n1 has 1, n2 has 0 */
  (void)a;
  add_http("b");
  ASSERT_STREQ(dstr("run_on"), "n1"); /* 1 : 1, lowest uuid */
}

CASE(add_auto_spreads_jobs_evenly)
{
  char name[16];
  int per[3] = {0, 0, 0};
  node_up("n1");
  node_up("n2");
  node_up("n3");
  for (int i = 0; i < 9; i++) {
    snprintf(name, sizeof name, "s%d", i);
    add_http(name);
    per[dstr("run_on")[1] - '1']++;
  }
  ASSERT_EQ(per[0], 3);
  ASSERT_EQ(per[1], 3);
  ASSERT_EQ(per[2], 3);
}

CASE(add_manual_dead_or_unknown_node_is_1003)
{
  node_up("n1");
  char *before = snapshot();
  post("/job/add", "{\"name\":\"x\",\"type\":1,\"command\":\"true\","
                   "\"spec\":\"* * * * *\",\"allocation\":1,"
                   "\"run_on\":\"ghost\"}");
  EXPECT(400, 1003);
  ASSERT_STREQ(rfield(), "run_on");
  post("/job/add", "{\"name\":\"x\",\"type\":1,\"command\":\"true\","
                   "\"spec\":\"* * * * *\",\"allocation\":1,"
                   "\"run_on\":\"../node/n1\"}");
  EXPECT(400, 1003);
  node_down("n1");
  post("/job/add", "{\"name\":\"x\",\"type\":1,\"command\":\"true\","
                   "\"spec\":\"* * * * *\",\"allocation\":1,"
                   "\"run_on\":\"n1\"}");
  EXPECT(400, 1003);
  assert_unchanged(before);
}

/* An http job (auto) with a node_selector; the reply is in R. */
static void add_selected(const char *name, const char *selector)
{
  char body[512];
  snprintf(body, sizeof body,
           "{\"name\":\"%s\",\"type\":2,\"command\":\"http://h/\","
           "\"spec\":\"*/5 * * * *\",\"allocation\":2,"
           "\"node_selector\":\"%s\"}",
           name, selector);
  post("/job/add", body);
}

CASE(add_auto_places_only_on_matching_nodes)
{
  node_up_labels("n1", "{\"zone\":\"a\"}");
  node_up_labels("n2", "{\"zone\":\"b\",\"role\":\"db\"}");
  node_up("n3");
  for (int i = 0; i < 3; i++) { /* n2 fills up, yet stays the only match */
    char name[16];
    snprintf(name, sizeof name, "b%d", i);
    add_selected(name, "zone=b, role=db");
    EXPECT(200, 0);
    ASSERT_STREQ(dstr("run_on"), "n2");
    ASSERT_STREQ(dstr("node_selector"), "zone=b, role=db");
  }
  add_selected("a", "zone in (a,c)");
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("run_on"), "n1");
  add_selected("notdb", "role!=db"); /* n1 has 1 job, n3 none */
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("run_on"), "n3");
  int64_t before = store_count();
  add_selected("nowhere", "zone=c");
  EXPECT(503, 1301);
  ASSERT_CONTAINS(rmsg(), "node_selector");
  add_selected("bad", "zone");
  EXPECT(400, 1001);
  ASSERT_STREQ(rfield(), "node_selector");
  ASSERT_EQ(store_count(), before);
}

CASE(node_search_shows_labels_from_the_node_key)
{
  node_up_labels("n1", "{\"zone\":\"a\",\"role\":\"db\"}");
  node_up("n2");
  post("/node/search", "{}");
  EXPECT(200, 0);
  json_t *list = json_object_get(rdata(), "list");
  ASSERT_EQ(json_array_size(list), 2);
  for (size_t i = 0; i < 2; i++) {
    json_t *n = json_array_get(list, i);
    json_t *l = json_object_get(n, "labels");
    const char *uuid = json_string_value(json_object_get(n, "uuid"));
    ASSERT(json_is_object(l));
    if (strcmp(uuid, "n1") == 0) {
      ASSERT_EQ(json_object_size(l), 2);
      ASSERT_STREQ(json_string_value(json_object_get(l, "role")), "db");
    } else {
      ASSERT_EQ(json_object_size(l), 0);
    }
  }
}

/* A manual cmd job "m" on run_on with a node_selector; the reply is in R. */
static void add_manual_selected(const char *run_on, const char *selector)
{
  char body[512];
  snprintf(body, sizeof body,
           "{\"name\":\"m\",\"type\":1,\"command\":\"true\",\"spec\":"
           "\"* * * * *\",\"allocation\":1,\"run_on\":\"%s\","
           "\"node_selector\":\"%s\"}",
           run_on, selector);
  post("/job/add", body);
}

/* The drain state of node uuid in /node/search ("" when not drained). */
static const char *drain_state(const char *uuid)
{
  static char out[32];
  out[0] = '\0';
  post("/node/search", "{}");
  EXPECT(200, 0);
  json_t *list = json_object_get(rdata(), "list");
  for (size_t i = 0; i < json_array_size(list); i++) {
    json_t *n = json_array_get(list, i);
    if (strcmp(json_string_value(json_object_get(n, "uuid")), uuid) == 0)
      snprintf(out, sizeof out, "%s",
               json_string_value(json_object_get(n, "drain")));
  }
  return out;
}

CASE(drained_node_takes_no_new_jobs_until_undrained)
{
  node_up("n1");
  node_up("n2");
  call("POST", "/node/drain", F.op, "{\"uuid\":\"n1\"}");
  ASSERT_EQ(R.status, 403); /* admins only */
  call("POST", "/node/drain", F.boss, "{\"uuid\":\"ghost\"}");
  ASSERT_EQ(R.status, 404);
  call("POST", "/node/drain", F.boss, "{\"uuid\":\"../x\"}");
  EXPECT(400, 1001);
  call("POST", "/node/drain", F.boss, "{\"uuid\":\"n1\"}");
  EXPECT(200, 0);
  ASSERT_STREQ(drain_state("n1"), "drained"); /* nothing running on it */
  ASSERT_STREQ(drain_state("n2"), "");
  for (int i = 0; i < 3; i++) { /* n1 is empty, yet never picked */
    char name[16];
    snprintf(name, sizeof name, "d%d", i);
    add_http(name);
    ASSERT_STREQ(dstr("run_on"), "n2");
  }
  add_manual_selected("n1", "");
  EXPECT(400, 1003);
  ASSERT_CONTAINS(rmsg(), "drained");
  call("POST", "/node/undrain", F.boss, "{\"uuid\":\"n1\"}");
  EXPECT(200, 0);
  ASSERT_STREQ(drain_state("n1"), "");
  add_http("after");
  ASSERT_STREQ(dstr("run_on"), "n1");
}

CASE(add_manual_on_node_not_matching_selector_is_1003)
{
  node_up_labels("n1", "{\"zone\":\"a\"}");
  char *before = snapshot();
  add_manual_selected("n1", "zone=b");
  EXPECT(400, 1003);
  ASSERT_STREQ(rfield(), "run_on");
  ASSERT_CONTAINS(rmsg(), "node_selector");
  assert_unchanged(before);
  add_manual_selected("n1", "zone=a");
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("run_on"), "n1");
}

CASE(update_selector_moves_an_auto_job_off_a_node_it_excludes)
{
  node_up_labels("n1", "{\"zone\":\"a\"}");
  node_up_labels("n2", "{\"zone\":\"b\"}");
  add_selected("j", "zone=a");
  EXPECT(200, 0);
  int64_t id = dint("id");
  ASSERT_STREQ(dstr("run_on"), "n1");
  char body[256];
  snprintf(body, sizeof body, "{\"id\":%lld,\"node_selector\":\"zone=b\"}",
           (long long)id);
  post("/job/add", body); /* with an id: an update */
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("run_on"), "n2");
  assert_key("n2", id);
  ASSERT(job_key_json("n1", id) == NULL);
}

CASE(add_cmd_auto_refused_unless_configured)
{
  node_up("n1");
  const char *body = "{\"name\":\"c\",\"type\":1,\"command\":\"true\","
                     "\"spec\":\"* * * * *\",\"allocation\":2}";
  post("/job/add", body);
  EXPECT(400, 1004);
  ASSERT_STREQ(rfield(), "allocation");
  ASSERT_EQ(store_count(), 0);
  F.cfg.cmd_auto_allocation = 1;
  post("/job/add", body);
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("run_on"), "n1");
}

CASE(add_no_alive_node_is_1301)
{
  post("/job/add", "{\"name\":\"w\",\"type\":2,\"command\":\"http://h/\","
                   "\"spec\":\"* * * * *\",\"allocation\":2}");
  EXPECT(503, 1301);
  ASSERT_EQ(store_count(), 0);
  ASSERT_EQ(count_prefix(PREFIX "/job/"), 0);
}

CASE(add_bad_spec_is_1002_with_parser_message)
{
  node_up("n1");
  post("/job/add", "{\"name\":\"w\",\"type\":2,\"command\":\"http://h/\","
                   "\"spec\":\"*/0 * * * *\",\"allocation\":2}");
  EXPECT(400, 1002);
  ASSERT_STREQ(rfield(), "spec");
  ASSERT_CONTAINS(rmsg(), "step");
  post("/job/add", "{\"name\":\"w\",\"type\":2,\"command\":\"http://h/\","
                   "\"spec\":\"0 0 30 2 *\",\"allocation\":2}");
  EXPECT(400, 1002);
  ASSERT_EQ(store_count(), 0);
}

/* The console's cron preview (routes_cron.c): the engine's fire times in
 * the zone asked for, and /job/add's refusals for the same input. */
CASE(cron_next_previews_with_job_add_checks)
{
  char *before = snapshot();
  call("POST", "/cron/next", F.viewer,
       "{\"spec\":\"0 30 2 * * *\",\"timezone\":\"Asia/Shanghai\","
       "\"from\":\"2026-03-01T00:00:00Z\",\"count\":3}");
  EXPECT(200, 0);
  json_t *next = json_object_get(rdata(), "next");
  ASSERT_EQ(json_array_size(next), 3);
  ASSERT_STREQ(json_string_value(json_array_get(next, 0)),
               "2026-03-02T02:30:00+08:00");
  ASSERT_STREQ(json_string_value(json_array_get(next, 2)),
               "2026-03-04T02:30:00+08:00");
  ASSERT_STREQ(dstr("timezone"), "Asia/Shanghai");
  /* Unix seconds work too; count defaults to 10; no zone = the default. */
  call("POST", "/cron/next", F.viewer, "{\"spec\":\"@hourly\",\"from\":0}");
  EXPECT(200, 0);
  ASSERT_EQ(json_array_size(json_object_get(rdata(), "next")), 10);
  ASSERT_STREQ(
      json_string_value(json_array_get(json_object_get(rdata(), "next"), 0)),
      "1970-01-01T01:00:00+00:00");
  /* The messages /job/add gives for the same spec. */
  post("/job/add", "{\"name\":\"w\",\"type\":2,\"command\":\"http://h/\","
                   "\"spec\":\"*/0 * * * *\",\"allocation\":2}");
  char add_msg[512];
  snprintf(add_msg, sizeof add_msg, "%s", rmsg());
  call("POST", "/cron/next", F.viewer, "{\"spec\":\"*/0 * * * *\"}");
  EXPECT(400, 1002);
  ASSERT_STREQ(rfield(), "spec");
  ASSERT_STREQ(rmsg(), add_msg);
  call("POST", "/cron/next", F.viewer, "{\"spec\":\"0 0 30 2 *\"}");
  EXPECT(400, 1002);
  call("POST", "/cron/next", F.viewer,
       "{\"spec\":\"@daily\",\"timezone\":\"Mars/Base\"}");
  EXPECT(400, 1001);
  ASSERT_STREQ(rfield(), "timezone");
  static const struct {
    const char *body, *field;
  } bad[] = {
      {"{}", "spec"},
      {"{\"spec\":\"@daily\",\"count\":101}", "count"},
      {"{\"spec\":\"@daily\",\"count\":0}", "count"},
      {"{\"spec\":\"@daily\",\"from\":\"yesterday\"}", "from"},
      {"{\"spec\":\"@daily\",\"from\":1e300}", "from"},
      {"{\"spec\":\"@daily\",\"cout\":3}", "cout"},
      {"{\"spec\":7}", "spec"},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    call("POST", "/cron/next", F.viewer, bad[i].body);
    EXPECT(400, 1001);
    ASSERT_STREQ(rfield(), bad[i].field);
  }
  call("POST", "/cron/next", NULL, "{\"spec\":\"@daily\"}");
  EXPECT(401, 1101);
  assert_unchanged(before); /* a preview writes nothing */
}

CASE(add_bad_fields_are_1001_naming_the_field)
{
  static const struct {
    const char *body, *field;
  } cases[] = {
      {"{\"type\":2,\"command\":\"http://h/\",\"spec\":\"* * * * *\","
       "\"allocation\":2}",
       "name"},
      {"{\"name\":\"a\",\"type\":3,\"command\":\"http://h/\","
       "\"spec\":\"* * * * *\",\"allocation\":2}",
       "type"},
      {"{\"name\":\"a\",\"type\":2,\"command\":\"ftp://h/\","
       "\"spec\":\"* * * * *\",\"allocation\":2}",
       "command"},
      {"{\"name\":\"a\",\"type\":2,\"command\":\"http://h/\","
       "\"spec\":\"* * * * *\",\"allocation\":2,\"retry_times\":101}",
       "retry_times"},
      {"{\"name\":\"a\",\"type\":2,\"command\":\"http://h/\","
       "\"spec\":\"* * * * *\",\"allocation\":2,\"timeout\":-1}",
       "timeout"},
      {"{\"name\":\"a\",\"type\":2,\"command\":\"http://h/\","
       "\"spec\":\"* * * * *\",\"allocation\":2,\"retry_time\":1}",
       "retry_time"},
      {"{\"name\":\"a\",\"type\":2,\"command\":\"http://h/\","
       "\"spec\":\"* * * * *\",\"allocation\":2,\"timezone\":\"Mars/Base\"}",
       "timezone"},
      {"{\"name\":\"a\",\"type\":2,\"command\":\"http://h/\","
       "\"spec\":\"* * * * *\",\"allocation\":7}",
       "allocation"},
      {"{\"name\":\"a\",\"type\":1,\"command\":\"true\","
       "\"spec\":\"* * * * *\",\"allocation\":1}",
       "run_on"},
      {"{\"id\":\"7\",\"name\":\"a\"}", "id"},
  };
  node_up("n1");
  char *before = snapshot();
  for (size_t i = 0; i < CX_ARRAY_LEN(cases); i++) {
    post("/job/add", cases[i].body);
    ASSERT_MSG(R.status == 400 && rcode() == 1001, "case %zu: %ld %s", i,
               R.status, R.body.data);
    ASSERT_MSG(strcmp(rfield(), cases[i].field) == 0, "case %zu: field %s", i,
               rfield());
  }
  assert_unchanged(before);
}

/* run_as picks the Unix user a command runs as: an operator may neither
 * set it nor change a job that has it (a new command would run as that
 * user); each refusal changes nothing. */
CASE(run_as_is_admin_only)
{
  node_up("n1");
  char *before = snapshot();
  post("/job/add", "{\"name\":\"r\",\"type\":1,\"command\":\"id\","
                   "\"spec\":\"0 3 * * *\",\"allocation\":1,"
                   "\"run_on\":\"n1\",\"run_as\":\"root\"}");
  EXPECT(403, 1102);
  ASSERT_STREQ(rfield(), "run_as");
  assert_unchanged(before);
  int64_t plain = add_cmd_on("plain", "n1");
  char body[512];
  before = snapshot();
  snprintf(body, sizeof body, "{\"id\":%lld,\"run_as\":\"root\"}",
           (long long)plain);
  post("/job/add", body);
  EXPECT(403, 1102);
  assert_unchanged(before);
  /* An admin may; the operator then may not edit that job, not even a
   * field other than run_as. */
  call("POST", "/job/add", F.boss,
       "{\"name\":\"backup\",\"type\":1,\"command\":\"id\","
       "\"spec\":\"0 3 * * *\",\"allocation\":1,\"run_on\":\"n1\","
       "\"run_as\":\"backup\",\"limit_nofile\":64}");
  EXPECT(200, 0);
  int64_t id = dint("id");
  ASSERT_STREQ(dstr("run_as"), "backup");
  ASSERT_EQ(dint("limit_nofile"), 64);
  before = snapshot();
  snprintf(body, sizeof body, "{\"id\":%lld,\"command\":\"cat /etc/shadow\"}",
           (long long)id);
  post("/job/add", body);
  EXPECT(403, 1102);
  snprintf(body, sizeof body, "{\"id\":%lld,\"run_as\":\"\"}", (long long)id);
  post("/job/add", body);
  EXPECT(403, 1102);
  assert_unchanged(before);
  /* limits are not a privilege */
  snprintf(body, sizeof body, "{\"id\":%lld,\"limit_cpu_s\":5}",
           (long long)plain);
  post("/job/add", body);
  EXPECT(200, 0);
  ASSERT_EQ(dint("limit_cpu_s"), 5);
}

CASE(add_name_taken_is_1202)
{
  node_up("n1");
  add_http("dup");
  char *before = snapshot();
  post("/job/add", "{\"name\":\"dup\",\"type\":2,\"command\":\"http://h/\","
                   "\"spec\":\"* * * * *\",\"allocation\":2}");
  EXPECT(409, 1202);
  ASSERT_STREQ(rfield(), "name");
  assert_unchanged(before);
}

/* SPEC §3: name, type, command, spec and allocation are required. A new
 * job missing one (absent or null) is 400/1001 naming it, and nothing is
 * stored or published. type and allocation used to default to 1 and 2:
 * a job without type became a cmd job (and was refused as 1004), one
 * without allocation was auto-placed and created. */
CASE(add_each_required_field_missing_is_1001_naming_it)
{
  static const char *const required[] = {"name", "type", "command", "spec",
                                         "allocation"};
  node_up("n1");
  char *before = snapshot();
  for (size_t i = 0; i < CX_ARRAY_LEN(required); i++) {
    for (int as_null = 0; as_null < 2; as_null++) {
      json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:i}", "name", "req", "type",
                            CX_JOB_HTTP, "command", "http://h/", "spec",
                            "* * * * *", "allocation", CX_ALLOC_AUTO);
      if (as_null)
        json_object_set_new(o, required[i], json_null());
      else
        json_object_del(o, required[i]);
      char *body = json_dumps(o, JSON_COMPACT);
      json_decref(o);
      post("/job/add", body);
      free(body);
      ASSERT_MSG(R.status == 400 && rcode() == 1001,
                 "without %s (null %d): %ld %s", required[i], as_null, R.status,
                 R.body.data);
      ASSERT_STREQ(rfield(), required[i]);
      ASSERT_CONTAINS(rmsg(), "required");
    }
  }
  assert_unchanged(before);
}

/* Log lines written while capturing (cx_log_set_fd to a file). */
static int log_fd = -1;
static char log_path[512];

static void log_capture(void)
{
  snprintf(log_path, sizeof log_path, "%s/captured.log", cx_test_tmpdir());
  log_fd = open(log_path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
  ASSERT(log_fd >= 0);
  cx_log_set_fd(log_fd);
}

/* Ends the capture; returns what was logged (caller frees). */
static char *log_captured(void)
{
  cx_log_set_fd(2);
  struct cx_buf b = {0};
  char chunk[4096];
  ssize_t n;
  ASSERT(lseek(log_fd, 0, SEEK_SET) == 0);
  while ((n = read(log_fd, chunk, sizeof chunk)) > 0)
    cx_buf_append(&b, chunk, (size_t)n);
  close(log_fd);
  log_fd = -1;
  ASSERT(!cx_buf_failed(&b));
  return b.data ? cx_buf_steal(&b) : cx_strdup("");
}

/* Every text field has one limit, the job module's, which the store uses
 * too: a value over it is the client's error (400/1001 naming the field),
 * on create and on update, and nothing is stored or logged as an error.
 * It used to pass validation and be refused by the store: 503/1302 "store
 * unavailable" with an ERROR log (workdir over the column's 1024, a
 * timezone over its 64 -- a real zone padded with slashes). */
CASE(add_overlong_text_fields_are_1001_naming_them)
{
  char workdir[2001], tz[66];
  workdir[0] = '/';
  memset(workdir + 1, 'w', sizeof workdir - 2);
  workdir[sizeof workdir - 1] = '\0';
  /* "Asia" + 56 slashes + "Tokyo": 65 bytes that name a real zone. */
  snprintf(tz, sizeof tz, "Asia%.*sTokyo", 56,
           "////////////////////////////////////////////////////////////");
  ASSERT_EQ(strlen(tz), 65);
  node_up("n1");
  int64_t id = add_cmd_on("long", "n1");
  const struct {
    const char *field, *value;
  } cases[] = {{"workdir", workdir}, {"timezone", tz}};
  char *before = snapshot();
  log_capture();
  for (size_t i = 0; i < CX_ARRAY_LEN(cases); i++) {
    for (int update = 0; update < 2; update++) {
      json_t *o =
          json_pack("{s:s, s:i, s:s, s:s, s:i, s:s}", "name", "long2", "type",
                    CX_JOB_CMD, "command", "true", "spec", "0 3 * * *",
                    "allocation", CX_ALLOC_MANUAL, "run_on", "n1");
      if (update)
        json_object_set_new(o, "id", json_integer(id));
      json_object_set_new(o, cases[i].field, json_string(cases[i].value));
      char *body = json_dumps(o, JSON_COMPACT);
      json_decref(o);
      post("/job/add", body);
      free(body);
      ASSERT_MSG(R.status == 400 && rcode() == 1001, "%s (update %d): %ld %s",
                 cases[i].field, update, R.status, R.body.data);
      ASSERT_STREQ(rfield(), cases[i].field);
      ASSERT_CONTAINS(rmsg(), "longer than");
    }
  }
  char *logged = log_captured();
  ASSERT_MSG(strstr(logged, " ERROR ") == NULL, "logged: %s", logged);
  free(logged);
  assert_unchanged(before);
}

/* ---- /job/add: update ---------------------------------------------------- */

CASE(update_keeps_absent_fields_and_republishes)
{
  char body[256];
  node_up("n1");
  int64_t id = add_cmd_on("u", "n1");
  snprintf(body, sizeof body, "{\"id\":%lld,\"spec\":\"*/7 * * * *\"}",
           (long long)id);
  post("/job/add", body);
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("note"), "keep me");
  ASSERT_EQ(dint("timeout"), 30);
  ASSERT_STREQ(dstr("spec"), "*/7 * * * *");
  ASSERT_EQ(json_array_size(json_object_get(rdata(), "next")), 5);
  json_t *k = job_key_json("n1", id);
  ASSERT_STREQ(json_string_value(json_object_get(k, "spec")), "*/7 * * * *");
  ASSERT_STREQ(json_string_value(json_object_get(k, "note")), "keep me");
  json_decref(k);
}

/* An update (id given) changes only the fields it names: every other
 * field, the required ones included, keeps its stored value -- also
 * `enabled` of a paused job. */
CASE(update_naming_one_field_keeps_every_other)
{
  char body[256], target[64];
  node_up("n1");
  post("/job/add",
       "{\"name\":\"keep\",\"type\":1,\"command\":\"echo hi\","
       "\"spec\":\"0 3 * * *\",\"allocation\":1,\"run_on\":\"n1\","
       "\"timeout\":30,\"retry_times\":2,\"retry_interval\":5,"
       "\"notify_status\":1,\"notify_type\":1,\"notify_to_array\":[2],"
       "\"note\":\"n\",\"timezone\":\"Asia/Shanghai\",\"enabled\":false,"
       "\"concurrency\":\"allow\",\"misfire\":\"skip\","
       "\"starting_deadline\":60,\"env\":{\"A\":\"1\"},\"workdir\":\"/tmp\"}");
  EXPECT(200, 0);
  int64_t id = dint("id");
  snprintf(target, sizeof target, "/job/find?id=%lld", (long long)id);
  call("GET", target, F.viewer, NULL);
  EXPECT(200, 0);
  json_t *before = json_incref(rdata());
  snprintf(body, sizeof body, "{\"id\":%lld,\"note\":\"changed\"}",
           (long long)id);
  post("/job/add", body);
  EXPECT(200, 0);
  call("GET", target, F.viewer, NULL);
  EXPECT(200, 0);
  json_t *after = rdata();
  ASSERT_STREQ(json_string_value(json_object_get(after, "note")), "changed");
  const char *k;
  json_t *v;
  json_object_foreach(before, k, v)
  {
    if (strcmp(k, "note") == 0 || strcmp(k, "updated") == 0 ||
        strcmp(k, "next") == 0) /* from the clock */
      continue;
    ASSERT_MSG(json_equal(v, json_object_get(after, k)),
               "update of note changed %s", k);
  }
  json_decref(before);
}

CASE(update_find_reply_posted_back_works)
{
  char target[64];
  node_up("n1");
  int64_t id = add_cmd_on("rt", "n1");
  snprintf(target, sizeof target, "/job/find?id=%lld", (long long)id);
  call("GET", target, F.viewer, NULL);
  EXPECT(200, 0);
  json_t *d = json_incref(rdata());
  json_object_set_new(d, "note", json_string("changed"));
  char *s = json_dumps(d, JSON_COMPACT);
  json_decref(d);
  post("/job/add", s);
  free(s);
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("note"), "changed");
}

CASE(update_stale_is_1202)
{
  char body[256];
  node_up("n1");
  int64_t id = add_cmd_on("s", "n1");
  int64_t upd = dint("updated");
  snprintf(body, sizeof body, "{\"id\":%lld,\"note\":\"a\",\"updated\":%lld}",
           (long long)id, (long long)upd);
  post("/job/add", body);
  EXPECT(200, 0);
  char *before = snapshot();
  post("/job/add", body); /* same, now stale `updated` */
  EXPECT(409, 1202);
  ASSERT_STREQ(rfield(), "updated");
  assert_unchanged(before);
}

CASE(update_missing_job_is_1201)
{
  post("/job/add", "{\"id\":999999,\"note\":\"x\"}");
  EXPECT(404, 1201);
}

CASE(update_move_between_nodes_is_one_txn)
{
  char body[256];
  node_up("n1");
  node_up("n2");
  int64_t id = add_cmd_on("mv", "n1");
  int64_t rev0 = coord_rev();
  snprintf(body, sizeof body, "{\"id\":%lld,\"run_on\":\"n2\"}", (long long)id);
  post("/job/add", body);
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("run_on"), "n2");
  ASSERT(job_key_json("n1", id) == NULL);
  int64_t mod = 0;
  char key[128];
  snprintf(key, sizeof key, PREFIX "/job/n2/%lld", (long long)id);
  json_decref(coord_json(key, &mod));
  /* The delete of the old key and the put of the new one happened at one
   * revision: the store moved by exactly one. */
  ASSERT_EQ(coord_rev(), rev0 + 1);
  ASSERT_EQ(mod, rev0 + 1);
}

CASE(update_to_dead_node_is_1003_and_changes_nothing)
{
  char body[256];
  node_up("n1");
  int64_t id = add_cmd_on("mv2", "n1");
  char *before = snapshot();
  snprintf(body, sizeof body, "{\"id\":%lld,\"run_on\":\"n9\"}", (long long)id);
  post("/job/add", body);
  EXPECT(400, 1003);
  assert_unchanged(before);
}

CASE(update_auto_keeps_alive_node)
{
  char body[256];
  node_up("n1");
  int64_t id = add_http("keep");
  node_up("n0"); /* now lower and emptier, but the job stays */
  snprintf(body, sizeof body, "{\"id\":%lld,\"note\":\"x\"}", (long long)id);
  post("/job/add", body);
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("run_on"), "n1");
  node_down("n1");
  post("/job/add", body);
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("run_on"), "n0");
  ASSERT(job_key_json("n1", id) == NULL);
  assert_key("n0", id);
}

/* ---- /job/del ------------------------------------------------------------ */

CASE(del_removes_rows_and_keys)
{
  char body[128];
  node_up("n1");
  int64_t a = add_http("d1"), b = add_http("d2"), c = add_http("d3");
  snprintf(body, sizeof body, "{\"ids\":[%lld,%lld]}", (long long)a,
           (long long)b);
  post("/job/del", body);
  EXPECT(200, 0);
  ASSERT_EQ(json_array_size(json_object_get(rdata(), "deleted")), 2);
  ASSERT(!store_has(a) && !store_has(b) && store_has(c));
  ASSERT(job_key_json("n1", a) == NULL && job_key_json("n1", b) == NULL);
  assert_key("n1", c);
}

CASE(del_missing_id_is_1201_and_deletes_nothing)
{
  char body[128];
  node_up("n1");
  int64_t a = add_http("d1");
  char *before = snapshot();
  snprintf(body, sizeof body, "{\"ids\":[%lld,424242]}", (long long)a);
  post("/job/del", body);
  EXPECT(404, 1201);
  assert_unchanged(before);
  post("/job/del", "{\"ids\":[]}");
  EXPECT(400, 1001);
  post("/job/del", "{\"ids\":[0]}");
  EXPECT(400, 1001);
  post("/job/del", "{\"ids\":\"1\"}");
  EXPECT(400, 1001);
}

/* ---- /job/find ----------------------------------------------------------- */

CASE(find_gives_next_and_node_state)
{
  char target[64];
  node_up("n1");
  int64_t id = add_http("f");
  snprintf(target, sizeof target, "/job/find?id=%lld", (long long)id);
  call("GET", target, F.viewer, NULL);
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("node_state"), "alive");
  ASSERT_EQ(json_array_size(json_object_get(rdata(), "next")), 5);
  ASSERT_STREQ(dstr("name"), "f");
  node_down("n1");
  call("GET", target, F.viewer, NULL);
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("node_state"), "dead");
  call("GET", "/job/find?id=987654", F.viewer, NULL);
  EXPECT(404, 1201);
  call("GET", "/job/find?id=abc", F.viewer, NULL);
  EXPECT(400, 1001);
  call("GET", "/job/find?id=99999999999999999999999", F.viewer, NULL);
  EXPECT(400, 1001);
  call("GET", "/job/find", F.viewer, NULL);
  EXPECT(400, 1001);
}

/* A paused job (enabled false) does not fire, so /job/find shows no next
 * fire times and says it is paused; resumed, the times come back. The
 * reply still posts back as an update (paused is read-only, like next).
 * It used to list five fire times that would never happen. */
CASE(find_paused_job_has_no_next_times)
{
  char body[64], target[64];
  node_up("n1");
  int64_t id = add_http("sleepy");
  ASSERT(json_is_false(json_object_get(rdata(), "paused")));
  snprintf(body, sizeof body, "{\"ids\":[%lld]}", (long long)id);
  snprintf(target, sizeof target, "/job/find?id=%lld", (long long)id);
  post("/job/pause", body);
  EXPECT(200, 0);
  call("GET", target, F.viewer, NULL);
  EXPECT(200, 0);
  ASSERT(json_is_false(json_object_get(rdata(), "enabled")));
  ASSERT(json_is_true(json_object_get(rdata(), "paused")));
  json_t *next = json_object_get(rdata(), "next");
  ASSERT(json_is_array(next));
  ASSERT_EQ(json_array_size(next), 0);
  /* Posted back as it is: accepted, still paused. */
  char *s = json_dumps(rdata(), JSON_COMPACT);
  post("/job/add", s);
  free(s);
  EXPECT(200, 0);
  ASSERT(json_is_true(json_object_get(rdata(), "paused")));
  ASSERT_EQ(json_array_size(json_object_get(rdata(), "next")), 0);
  post("/job/resume", body);
  EXPECT(200, 0);
  call("GET", target, F.viewer, NULL);
  EXPECT(200, 0);
  ASSERT(json_is_false(json_object_get(rdata(), "paused")));
  ASSERT_EQ(json_array_size(json_object_get(rdata(), "next")), 5);
}

/* ---- /job/search --------------------------------------------------------- */

CASE(search_pages_in_id_order_with_filters)
{
  char name[32];
  node_up("n1");
  int64_t first = 0;
  for (int i = 0; i < 25; i++) {
    snprintf(name, sizeof name, "%s-%02d", i % 2 ? "odd" : "even", i);
    int64_t id = add_http(name);
    if (i == 0)
      first = id;
  }
  call("POST", "/job/search", F.viewer, "{\"page\":2,\"page_size\":10}");
  EXPECT(200, 0);
  json_t *list = json_object_get(rdata(), "list");
  ASSERT_EQ(json_array_size(list), 10);
  ASSERT_EQ(dint("total"), 25);
  ASSERT_EQ(dint("page"), 2);
  ASSERT_EQ(dint("page_size"), 10);
  for (size_t i = 0; i < 10; i++)
    ASSERT_EQ(
        json_integer_value(json_object_get(json_array_get(list, i), "id")),
        first + 10 + (int64_t)i);
  call("POST", "/job/search", F.viewer, "{\"page\":3,\"page_size\":10}");
  ASSERT_EQ(json_array_size(json_object_get(rdata(), "list")), 5);
  call("POST", "/job/search", F.viewer, "{\"name\":\"odd\"}");
  EXPECT(200, 0);
  ASSERT_EQ(dint("total"), 12);
  ASSERT_EQ(dint("page_size"), 20);
  call("POST", "/job/search", F.viewer, "{\"page_size\":100000}");
  EXPECT(200, 0);
  ASSERT_EQ(dint("page_size"), 500);
  ASSERT_EQ(json_array_size(json_object_get(rdata(), "list")), 25);
  char body[64];
  snprintf(body, sizeof body, "{\"ids\":[%lld]}", (long long)first);
  post("/job/pause", body);
  EXPECT(200, 0);
  call("POST", "/job/search", F.viewer, "{\"enabled\":false}");
  ASSERT_EQ(dint("total"), 1);
  call("POST", "/job/search", F.viewer, "{\"run_on\":\"n1\",\"type\":2}");
  ASSERT_EQ(dint("total"), 25);
  call("POST", "/job/search", F.viewer, "{\"run_on\":\"n2\"}");
  ASSERT_EQ(dint("total"), 0);
  call("POST", "/job/search", F.viewer, "{\"page\":0}");
  EXPECT(400, 1001);
  call("POST", "/job/search", F.viewer, "{\"page_size\":-5}");
  EXPECT(400, 1001);
  call("POST", "/job/search", F.viewer, "{\"type\":\"2\"}");
  EXPECT(400, 1001);
  call("POST", "/job/search", F.viewer, "{\"enabled\":\"yes\"}");
  EXPECT(400, 1001);
  call("POST", "/job/search", F.viewer, "{\"nmae\":\"x\"}");
  EXPECT(400, 1001);
}

/* ---- /job/log ------------------------------------------------------------ */

static int64_t add_run(int64_t job_id, const char *node, int64_t start_ms,
                       int success, const char *out, size_t out_len)
{
  char err[CX_ERR_LEN];
  struct cx_run r;
  int64_t id;
  memset(&r, 0, sizeof r);
  r.job_id = job_id;
  r.name = (char *)"j";
  r.node_uuid = (char *)node;
  r.has_scheduled_at = 1;
  r.scheduled_at = start_ms / 1000;
  r.start_time = start_ms;
  ASSERT_MSG(cx_store_run_claim(F.store, &r, &id, err) == 0, "%s", err);
  r.id = id;
  r.end_time = start_ms + 5;
  r.success = success;
  r.status = (char *)(success ? "success" : "failed");
  r.exit_code = success ? 0 : 3;
  r.attempts = 1;
  r.output = (char *)out;
  r.output_len = out_len;
  ASSERT_MSG(cx_store_run_finish(F.store, &r, err) == 0, "%s", err);
  return id;
}

CASE(log_pages_newest_first_with_filters)
{
  char body[256];
  node_up("n1");
  int64_t job = add_http("logged");
  static const char bin[] = "ok\xff\xfe\0end\xc3";
  int64_t base = 1700000000000;
  add_run(job, "n1", base, 1, "first", 5);
  add_run(job, "n2", base + 60000, 0, bin, sizeof bin - 1);
  add_run(job + 1000, "n1", base + 120000, 1, "other", 5);
  snprintf(body, sizeof body, "{\"job_id\":%lld}", (long long)job);
  call("POST", "/job/log", F.viewer, body);
  EXPECT(200, 0);
  ASSERT_EQ(dint("total"), 2);
  json_t *list = json_object_get(rdata(), "list");
  json_t *e0 = json_array_get(list, 0);
  ASSERT_EQ(json_integer_value(json_object_get(e0, "start_time")),
            base + 60000);
  ASSERT_EQ(json_integer_value(json_object_get(e0, "scheduled_at")),
            (base + 60000) / 1000);
  ASSERT_STREQ(json_string_value(json_object_get(e0, "status")), "failed");
  ASSERT_EQ(json_integer_value(json_object_get(e0, "exit_code")), 3);
  ASSERT(json_is_false(json_object_get(e0, "success")));
  ASSERT_STREQ(json_string_value(json_object_get(e0, "node_uuid")), "n2");
  const char *o = json_string_value(json_object_get(e0, "output"));
  ASSERT(o != NULL);
  ASSERT(strncmp(o, "ok", 2) == 0);
  ASSERT_CONTAINS(o, "end");
  snprintf(body, sizeof body, "{\"job_id\":%lld,\"success\":true}",
           (long long)job);
  call("POST", "/job/log", F.viewer, body);
  ASSERT_EQ(dint("total"), 1);
  call("POST", "/job/log", F.viewer, "{\"node_uuid\":\"n1\"}");
  ASSERT_EQ(dint("total"), 2);
  snprintf(body, sizeof body, "{\"from\":%lld,\"to\":%lld}",
           (long long)base + 1, (long long)base + 120000);
  call("POST", "/job/log", F.viewer, body);
  ASSERT_EQ(dint("total"), 1);
  call("POST", "/job/log", F.viewer,
       "{\"from\":\"2023-11-14T22:14:00Z\",\"page_size\":1,\"page\":2}");
  EXPECT(200, 0);
  ASSERT_EQ(dint("total"), 2);
  ASSERT_EQ(json_array_size(json_object_get(rdata(), "list")), 1);
  call("POST", "/job/log", F.viewer, "{\"from\":\"yesterday\"}");
  EXPECT(400, 1001);
  call("POST", "/job/log", F.viewer, "{\"job_id\":-1}");
  EXPECT(400, 1001);
}

CASE(log_filters_by_status_and_trigger)
{
  char body[256];
  node_up("n1");
  int64_t job = add_http("statuses");
  int64_t base = 1700000000000;
  add_run(job, "n1", base, 1, "a", 1);
  add_run(job, "n1", base + 1000, 0, "b", 1);
  add_run(job, "n1", base + 2000, 0, "c", 1);
  snprintf(body, sizeof body, "{\"job_id\":%lld,\"status\":\"failed\"}",
           (long long)job);
  call("POST", "/job/log", F.viewer, body);
  EXPECT(200, 0);
  ASSERT_EQ(dint("total"), 2);
  snprintf(body, sizeof body,
           "{\"job_id\":%lld,\"status\":[\"success\",\"timeout\"],"
           "\"trigger\":[\"cron\"]}",
           (long long)job);
  call("POST", "/job/log", F.viewer, body);
  EXPECT(200, 0);
  ASSERT_EQ(dint("total"), 1);
  snprintf(body, sizeof body, "{\"job_id\":%lld,\"trigger\":\"once\"}",
           (long long)job);
  call("POST", "/job/log", F.viewer, body);
  EXPECT(200, 0);
  ASSERT_EQ(dint("total"), 0);
  static const char *const bad[][2] = {
      {"{\"status\":\"FAILED\"}", "status"},
      {"{\"status\":[]}", "status"},
      {"{\"status\":[\"failed\",\"failed\"]}", "status"},
      {"{\"status\":[1]}", "status"},
      {"{\"status\":\"failed' OR 1=1 --\"}", "status"},
      {"{\"status\":[\"running\",\"success\",\"failed\",\"timeout\","
       "\"killed\",\"skipped\",\"lost\",\"error\",\"missed\",\"x\",\"y\"]}",
       "status"},
      {"{\"trigger\":\"manual\"}", "trigger"},
      {"{\"trigger\":{}}", "trigger"},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    call("POST", "/job/log", F.viewer, bad[i][0]);
    EXPECT(400, 1001);
    ASSERT_STREQ(rfield(), bad[i][1]);
  }
}

/* ---- GET /cluster ---------------------------------------------------------
 */

CASE(cluster_names_the_leader)
{
  char err[CX_ERR_LEN];
  call("GET", "/cluster", F.viewer, NULL);
  EXPECT(200, 0);
  ASSERT(json_is_null(json_object_get(rdata(), "leader")));
  ASSERT(json_is_false(json_object_get(rdata(), "self")));
  if (!F.dist)
    ASSERT_STREQ(dstr("mode"), "standalone");
  /* the value an admin's campaign writes (cluster.c) */
  static const char key[] = PREFIX "/leader", val[] = "adm-1.lan:4242:0a1b2c";
  ASSERT_MSG(cx_coord_put(F.coord, key, strlen(key), val, strlen(val), F.lease,
                          NULL, err) == 0,
             "%s", err);
  call("GET", "/cluster", F.viewer, NULL);
  EXPECT(200, 0);
  json_t *l = json_object_get(rdata(), "leader");
  ASSERT_STREQ(json_string_value(json_object_get(l, "id")), val);
  ASSERT_STREQ(json_string_value(json_object_get(l, "hostname")), "adm-1.lan");
  ASSERT_STREQ(json_string_value(json_object_get(l, "pid")), "4242");
  call("GET", "/cluster", NULL, NULL);
  EXPECT(401, 1101);
}

/* ---- GET /job/run -------------------------------------------------------- */

static void put_attempt(int64_t run, int k, const char *status, int exit_code,
                        const char *out, size_t out_len)
{
  char err[CX_ERR_LEN];
  struct cx_run_attempt t = {.run_id = run,
                             .attempt = k,
                             .start_time = 1700000000000 + k * 61000,
                             .end_time = 1700000000000 + k * 61000 + 7,
                             .status = (char *)status,
                             .exit_code = exit_code,
                             .output = (char *)out,
                             .output_len = out_len};
  ASSERT_MSG(cx_store_run_attempt_put(F.store, &t, err) == 0, "%s", err);
}

CASE(run_shows_the_run_and_every_attempt)
{
  char path[128];
  static const char bin[] = "x\xff\0y";
  node_up("n1");
  int64_t job = add_http("retried");
  int64_t run = add_run(job, "n1", 1700000061000, 0, "last", 4);
  put_attempt(run, 1, "error", -1, "Connection refused (curl 7)", 27);
  put_attempt(run, 2, "failed", 503, bin, sizeof bin - 1);
  snprintf(path, sizeof path, "/job/run?id=%lld", (long long)run);
  call("GET", path, F.viewer, NULL);
  EXPECT(200, 0);
  ASSERT_EQ(dint("id"), run);
  ASSERT_EQ(dint("job_id"), job);
  ASSERT_STREQ(dstr("status"), "failed");
  ASSERT_STREQ(dstr("output"), "last");
  json_t *l = json_object_get(rdata(), "attempt_list");
  ASSERT_EQ(json_array_size(l), 2);
  json_t *a1 = json_array_get(l, 0), *a2 = json_array_get(l, 1);
  ASSERT_EQ(json_integer_value(json_object_get(a1, "attempt")), 1);
  ASSERT_STREQ(json_string_value(json_object_get(a1, "status")), "error");
  ASSERT_EQ(json_integer_value(json_object_get(a1, "exit_code")), -1);
  ASSERT_EQ(json_integer_value(json_object_get(a1, "start_time")),
            1700000061000);
  ASSERT_EQ(json_integer_value(json_object_get(a1, "end_time")), 1700000061007);
  ASSERT_STREQ(json_string_value(json_object_get(a1, "output")),
               "Connection refused (curl 7)");
  ASSERT_EQ(json_integer_value(json_object_get(a2, "attempt")), 2);
  ASSERT_EQ(json_integer_value(json_object_get(a2, "exit_code")), 503);
  const char *o = json_string_value(json_object_get(a2, "output"));
  ASSERT(o != NULL && o[0] == 'x');
  /* A run that never retried lists its one attempt: the run itself. */
  int64_t once = add_run(job, "n1", 1700000200000, 1, "fine", 4);
  snprintf(path, sizeof path, "/job/run?id=%lld", (long long)once);
  call("GET", path, F.viewer, NULL);
  EXPECT(200, 0);
  l = json_object_get(rdata(), "attempt_list");
  ASSERT_EQ(json_array_size(l), 1);
  ASSERT_STREQ(
      json_string_value(json_object_get(json_array_get(l, 0), "output")),
      "fine");
  /* Errors. */
  call("GET", "/job/run?id=987654", F.viewer, NULL);
  EXPECT(404, 1201);
  call("GET", "/job/run?id=x", F.viewer, NULL);
  EXPECT(400, 1001);
  ASSERT_STREQ(rfield(), "id");
  call("GET", "/job/run", F.viewer, NULL);
  EXPECT(400, 1001);
  call("GET", path, NULL, NULL);
  EXPECT(401, 1101);
}

/* ---- /job/once, /job/kill ------------------------------------------------ */

static void trigger_case(const char *route, const char *kind)
{
  char body[256], key[256];
  node_up("n1");
  node_up("n2");
  int64_t id = add_cmd_on("t", "n1");
  snprintf(body, sizeof body, "{\"job_id\":%lld}", (long long)id);
  post(route, body);
  EXPECT(200, 0);
  const char *rid = dstr("request_id");
  ASSERT(rid != NULL && strlen(rid) == 32);
  char rid_copy[40];
  snprintf(rid_copy, sizeof rid_copy, "%s", rid);
  snprintf(key, sizeof key, PREFIX "/%s/n1/%lld", kind, (long long)id);
  json_t *v = coord_json(key, NULL);
  ASSERT(v != NULL);
  ASSERT_STREQ(json_string_value(json_object_get(v, "request_id")), rid_copy);
  ASSERT_OP(json_integer_value(json_object_get(v, "at")), >, 0);
  json_decref(v);
  /* under a lease */
  char err[CX_ERR_LEN];
  struct cx_coord_kvs kvs;
  ASSERT(cx_coord_get(F.coord, key, strlen(key), &kvs, err) == 0);
  ASSERT_OP(kvs.kvs[0].lease, !=, 0);
  int64_t ttl = 0;
  ASSERT(cx_coord_lease_keepalive(F.coord, kvs.kvs[0].lease, &ttl, err) == 0);
  ASSERT_OP(ttl, <=, 60);
  ASSERT_OP(ttl, >, 0);
  cx_coord_kvs_free(&kvs);
  snprintf(body, sizeof body, "{\"job_id\":%lld,\"node_uuid\":\"n2\"}",
           (long long)id);
  post(route, body);
  EXPECT(200, 0);
  snprintf(key, sizeof key, PREFIX "/%s/n2/%lld", kind, (long long)id);
  v = coord_json(key, NULL);
  ASSERT(v != NULL);
  json_decref(v);
  snprintf(body, sizeof body, "{\"job_id\":%lld,\"node_uuid\":\"n7\"}",
           (long long)id);
  post(route, body);
  EXPECT(400, 1003);
  ASSERT_STREQ(rfield(), "node_uuid");
  post(route, "{\"job_id\":777777}");
  EXPECT(404, 1201);
  post(route, "{}");
  EXPECT(400, 1001);
  call("POST", route, F.viewer, body);
  EXPECT(403, 1102);
  node_down("n1");
  snprintf(body, sizeof body, "{\"job_id\":%lld}", (long long)id);
  post(route, body);
  EXPECT(400, 1003);
}

CASE(once_writes_leased_trigger_key)
{
  trigger_case("/job/once", "once");
}

CASE(kill_writes_leased_trigger_key)
{
  trigger_case("/job/kill", "kill");
}

/* ---- /job/pause, /job/resume --------------------------------------------- */

CASE(pause_resume_set_enabled_in_store_and_key)
{
  char body[64], target[64];
  node_up("n1");
  int64_t id = add_http("p");
  snprintf(body, sizeof body, "{\"ids\":[%lld]}", (long long)id);
  post("/job/pause", body);
  EXPECT(200, 0);
  json_t *k = job_key_json("n1", id);
  ASSERT(json_is_false(json_object_get(k, "enabled")));
  json_decref(k);
  snprintf(target, sizeof target, "/job/find?id=%lld", (long long)id);
  call("GET", target, F.viewer, NULL);
  ASSERT(json_is_false(json_object_get(rdata(), "enabled")));
  post("/job/resume", body);
  EXPECT(200, 0);
  k = job_key_json("n1", id);
  ASSERT(json_is_true(json_object_get(k, "enabled")));
  json_decref(k);
  post("/job/pause", "{\"ids\":[31337]}");
  EXPECT(404, 1201);
}

/* ---- roles and credentials ----------------------------------------------- */

CASE(roles_and_credentials)
{
  node_up("n1");
  const char *body = "{\"name\":\"r\",\"type\":2,\"command\":\"http://h/\","
                     "\"spec\":\"* * * * *\",\"allocation\":2}";
  call("POST", "/job/add", F.viewer, body);
  EXPECT(403, 1102);
  call("POST", "/job/add", NULL, body);
  EXPECT(401, 1101);
  call("POST", "/job/add", "0123456789abcdef", body);
  EXPECT(401, 1101);
  call("POST", "/job/del", F.viewer, "{\"ids\":[1]}");
  EXPECT(403, 1102);
  call("POST", "/job/pause", F.viewer, "{\"ids\":[1]}");
  EXPECT(403, 1102);
  call("POST", "/job/search", NULL, "{}");
  EXPECT(401, 1101);
  call("GET", "/job/find?id=1", NULL, NULL);
  EXPECT(401, 1101);
  ASSERT_EQ(store_count(), 0);
  call("POST", "/job/search", F.viewer, "{}");
  EXPECT(200, 0);
  call("POST", "/job/log", F.viewer, "{}");
  EXPECT(200, 0);
}

/* ---- bad input ------------------------------------------------------------
 */

CASE(bad_input_gets_its_code_and_changes_nothing)
{
  static const struct {
    const char *path, *body;
    int status, code;
  } cases[] = {
      {"/job/add", "{\"name\":", 400, 1001},
      {"/job/add", "{\"name\":\"a\",}", 400, 1001},
      {"/job/add", "[1,2]", 400, 1001},
      {"/job/add", "nul", 400, 1001},
      {"/job/add", "{\"name\":\"a\",\"name\":\"b\"}", 400, 1001},
      {"/job/add", "{\"name\":5,\"type\":2}", 400, 1001},
      {"/job/add", "{\"name\":\"a\",\"type\":2.5}", 400, 1001},
      {"/job/add", "{\"name\":\"a\",\"type\":99999999999999999999999}", 400,
       1001},
      {"/job/add", "{\"name\":\"a\",\"timeout\":-5}", 400, 1001},
      {"/job/add", "{\"id\":-3}", 400, 1001},
      {"/job/add", "{\"id\":9223372036854775807}", 404, 1201},
      {"/job/add",
       "{\"name\":\"x'; DROP TABLE cronix_job; --\",\"type\":2,"
       "\"command\":\"http://h/\",\"spec\":\"* * * * *\",\"allocation\":2,"
       "\"run_on\":\"\",\"note\":\"x\\u0000y\"}",
       400, 1001},
      {"/job/add",
       "{\"name\":\"a\\u0007b\",\"type\":2,\"command\":\"http://h/\","
       "\"spec\":\"* * * * *\",\"allocation\":2}",
       400, 1001},
      {"/job/add", "{\"name\":\"\xc3\x28\"}", 400, 1001},
      {"/job/add",
       "{\"name\":\"a\",\"type\":2,\"command\":\"http://h/\","
       "\"spec\":\"* * * * * * * *\",\"allocation\":2}",
       400, 1002},
      {"/job/search", "{\"page\":1e400}", 400, 1001},
      {"/job/search", "{\"page\":-1}", 400, 1001},
      {"/job/search", "{\"name\":[\"a\"]}", 400, 1001},
      {"/job/log", "{\"job_id\":\"1 OR 1=1\"}", 400, 1001},
      {"/job/log", "{\"to\":18446744073709551616}", 400, 1001},
      {"/job/once", "{\"job_id\":1,\"node_uuid\":7}", 400, 1001},
      {"/job/kill", "{\"job_id\":true}", 400, 1001},
      {"/job/pause", "{\"ids\":[1,\"2\"]}", 400, 1001},
      {"/job/resume", "{}", 400, 1001},
      {"/job/del", "{\"ids\":[-1]}", 400, 1001},
  };
  node_up("n1");
  add_http("existing");
  char *before = snapshot();
  for (size_t i = 0; i < CX_ARRAY_LEN(cases); i++) {
    post(cases[i].path, cases[i].body);
    ASSERT_MSG(R.status == cases[i].status && rcode() == cases[i].code,
               "case %zu (%s %s): %ld %s", i, cases[i].path, cases[i].body,
               R.status, R.body.data);
  }
  /* Truncated bodies of a valid request. */
  const char *full = "{\"name\":\"t\",\"type\":2,\"command\":\"http://h/\","
                     "\"spec\":\"* * * * *\",\"allocation\":2}";
  for (size_t n = 1; n < strlen(full); n += 7) {
    call_len("POST", "/job/add", F.op, full, n);
    EXPECT(400, 1001);
  }
  /* 2 MiB body. */
  size_t big = 2 * 1024 * 1024;
  char *b = malloc(big + 64);
  ASSERT(b != NULL);
  memcpy(b, "{\"name\":\"", 9);
  memset(b + 9, 'a', big);
  memcpy(b + 9 + big, "\"}", 3);
  call_len("POST", "/job/add", F.op, b, big + 11);
  EXPECT(413, 1203);
  free(b);
  assert_unchanged(before);
}

/* An unknown body member is answered the same way on every job route (as
 * on the user and node routes): 400/1001, `field` = the member's name,
 * "<name>: unknown field". Most job routes used to leave `field` out. */
CASE(unknown_fields_are_1001_naming_them_on_every_route)
{
  static const char *const paths[] = {"/job/add",   "/job/del",   "/job/search",
                                      "/job/log",   "/job/once",  "/job/kill",
                                      "/job/pause", "/job/resume"};
  node_up("n1");
  int64_t id = add_http("known");
  char *before = snapshot();
  for (size_t i = 0; i < CX_ARRAY_LEN(paths); i++) {
    char body[128];
    snprintf(body, sizeof body, "{\"ids\":[%lld],\"retry_time\":1}",
             (long long)id);
    if (strcmp(paths[i], "/job/add") == 0 ||
        strcmp(paths[i], "/job/once") == 0 ||
        strcmp(paths[i], "/job/kill") == 0)
      snprintf(body, sizeof body, "{\"%s\":%lld,\"retry_time\":1}",
               strcmp(paths[i], "/job/add") == 0 ? "id" : "job_id",
               (long long)id);
    else if (strcmp(paths[i], "/job/search") == 0 ||
             strcmp(paths[i], "/job/log") == 0)
      snprintf(body, sizeof body, "{\"page\":1,\"retry_time\":1}");
    post(paths[i], body);
    ASSERT_MSG(R.status == 400 && rcode() == 1001, "%s: %ld %s", paths[i],
               R.status, R.body.data);
    ASSERT_MSG(strcmp(rfield(), "retry_time") == 0, "%s: field '%s' in %s",
               paths[i], rfield(), R.body.data);
    ASSERT_STREQ(rmsg(), "retry_time: unknown field");
  }
  assert_unchanged(before);
}

CASE(sql_looking_and_multibyte_names_are_stored_verbatim)
{
  node_up("n1");
  const char *names[] = {"x'); DROP TABLE cronix_job; --", "任务-日报 🚀",
                         "Ünïcødé \\\" quote"};
  for (size_t i = 0; i < CX_ARRAY_LEN(names); i++) {
    json_t *o =
        json_pack("{s:s, s:i, s:s, s:s, s:i}", "name", names[i], "type", 2,
                  "command", "http://h/", "spec", "* * * * *", "allocation", 2);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    post("/job/add", s);
    free(s);
    EXPECT(200, 0);
    ASSERT_STREQ(dstr("name"), names[i]);
    json_t *k = job_key_json("n1", dint("id"));
    ASSERT_STREQ(json_string_value(json_object_get(k, "name")), names[i]);
    json_decref(k);
  }
  ASSERT_EQ(store_count(), 3);
}

/* ---- atomicity against real services --------------------------------------
 */

static const char *const add_body =
    "{\"name\":\"atomic\",\"type\":2,\"command\":\"http://h/\","
    "\"spec\":\"* * * * *\",\"allocation\":2}";

DIST_CASE(etcd_down_before_add_is_1302_and_nothing_stored)
{
  char err[CX_ERR_LEN];
  setup(1);
  node_up("n1");
  ASSERT(cx_svc_etcd_stop(&F.etcd, err) == 0);
  post("/job/add", add_body);
  EXPECT(503, 1302);
  ASSERT_EQ(store_count(), 0);
  ASSERT_MSG(cx_svc_etcd_restart(&F.etcd, err) == 0, "%s", err);
  ASSERT_EQ(count_prefix(PREFIX "/job/"), 0);
  teardown();
}

DIST_CASE(mariadb_down_before_add_is_1302_and_nothing_published)
{
  char err[CX_ERR_LEN];
  setup(1);
  node_up("n1");
  ASSERT(cx_svc_mariadb_stop(&F.db, err) == 0);
  post("/job/add", add_body);
  EXPECT(503, 1302);
  ASSERT_EQ(count_prefix(PREFIX "/job/"), 0);
  ASSERT_MSG(cx_svc_mariadb_restart(&F.db, err) == 0, "%s", err);
  ASSERT_EQ(store_count(), 0);
  teardown();
}

/* etcd is paused (SIGSTOP) the moment the put arrives, after the row was
 * written: the put times out, the row is rolled back. */
DIST_CASE(etcd_paused_at_put_rolls_the_row_back)
{
  char err[CX_ERR_LEN];
  setup(1);
  node_up("n1");
  cx_proxy_trap(F.proxy, "/v3/kv/put", &F.etcd.m[0].proc);
  post("/job/add", add_body);
  EXPECT(503, 1302);
  ASSERT(cx_proxy_trapped(F.proxy));
  ASSERT_EQ(store_count(), 0);
  ASSERT(cx_svc_proc_signal(&F.etcd.m[0].proc, SIGCONT, err) == 0);
  ASSERT_MSG(cx_svc_etcd_wait_healthy(&F.etcd, 0, 20000, err) == 0, "%s", err);
  ASSERT_EQ(store_count(), 0);
  ASSERT_EQ(audit_count("job."), 0);
  /* Nothing else changed and the API works again. */
  post("/job/add", add_body);
  EXPECT(200, 0);
  ASSERT_EQ(audit_count("job.add"), 1);
  teardown();
}

/* A move whose txn cannot reach etcd leaves the job where it was, in both
 * stores. */
DIST_CASE(etcd_paused_at_move_keeps_the_job_in_place)
{
  char err[CX_ERR_LEN], body[128];
  setup(1);
  node_up("n1");
  node_up("n2");
  int64_t id = add_cmd_on("mv", "n1");
  char *before = snapshot();
  cx_proxy_trap(F.proxy, "/v3/kv/txn", &F.etcd.m[0].proc);
  snprintf(body, sizeof body, "{\"id\":%lld,\"run_on\":\"n2\"}", (long long)id);
  post("/job/add", body);
  EXPECT(503, 1302);
  ASSERT(cx_proxy_trapped(F.proxy));
  ASSERT(cx_svc_proc_signal(&F.etcd.m[0].proc, SIGCONT, err) == 0);
  ASSERT_MSG(cx_svc_etcd_wait_healthy(&F.etcd, 0, 20000, err) == 0, "%s", err);
  struct cx_job j;
  memset(&j, 0, sizeof j);
  ASSERT(cx_store_job_find(F.store, id, &j, err) == 0);
  ASSERT_STREQ(j.run_on, "n1");
  cx_job_clear(&j);
  ASSERT_EQ(audit_count("job.update"), 0);
  /* The txn either never applied or applied whole: never both keys, never
   * none. */
  json_t *k1 = job_key_json("n1", id), *k2 = job_key_json("n2", id);
  ASSERT((k1 != NULL) != (k2 != NULL));
  json_decref(k1);
  json_decref(k2);
  if (k1 != NULL) {
    char *after = snapshot();
    /* the row was written back (updated bumped): compare the keys only */
    ASSERT(strstr(after, "key " PREFIX "/job/n1/") != NULL);
    free(after);
  }
  free(before);
  teardown();
}

/* A pause whose publication times out is undone in the store. */
DIST_CASE(etcd_paused_at_pause_keeps_the_job_enabled)
{
  char err[CX_ERR_LEN], body[64];
  setup(1);
  node_up("n1");
  int64_t id = add_http("p");
  cx_proxy_trap(F.proxy, "/v3/kv/put", &F.etcd.m[0].proc);
  snprintf(body, sizeof body, "{\"ids\":[%lld]}", (long long)id);
  post("/job/pause", body);
  EXPECT(503, 1302);
  ASSERT(cx_proxy_trapped(F.proxy));
  ASSERT(cx_svc_proc_signal(&F.etcd.m[0].proc, SIGCONT, err) == 0);
  struct cx_job j;
  memset(&j, 0, sizeof j);
  ASSERT(cx_store_job_find(F.store, id, &j, err) == 0);
  ASSERT_EQ(j.enabled, 1);
  cx_job_clear(&j);
  ASSERT_EQ(audit_count("job.pause"), 0);
  teardown();
}

/* A delete that cannot reach etcd keeps the row (and its key). */
DIST_CASE(etcd_down_at_del_keeps_row_and_key)
{
  char err[CX_ERR_LEN], body[64];
  setup(1);
  node_up("n1");
  int64_t id = add_http("d");
  ASSERT(cx_svc_etcd_stop(&F.etcd, err) == 0);
  snprintf(body, sizeof body, "{\"ids\":[%lld]}", (long long)id);
  post("/job/del", body);
  EXPECT(503, 1302);
  ASSERT(store_has(id));
  ASSERT_EQ(audit_count("job.del"), 0);
  ASSERT_MSG(cx_svc_etcd_restart(&F.etcd, err) == 0, "%s", err);
  assert_key("n1", id);
  teardown();
}

/* ---- caches: search totals and alive nodes --------------------------------
 */

static int64_t search_total(void)
{
  call("POST", "/job/search", F.viewer, "{\"page\":1,\"page_size\":2}");
  EXPECT(200, 0);
  return dint("total");
}

/* Totals are cached per filter; a write through this admin shows at once
 * (the page is full, so the total can only come from the count/cache). */
CASE(search_total_follows_a_local_add_and_delete_at_once)
{
  char body[64];
  node_up("n1");
  for (int i = 0; i < 3; i++) {
    snprintf(body, sizeof body, "t-%d", i);
    add_http(body);
  }
  ASSERT_EQ(search_total(), 3);
  int64_t id = add_http("t-new");
  ASSERT_EQ(search_total(), 4);
  snprintf(body, sizeof body, "{\"ids\":[%lld]}", (long long)id);
  post("/job/del", body);
  EXPECT(200, 0);
  ASSERT_EQ(search_total(), 3);
  call("POST", "/job/search", F.viewer, "{\"page\":2,\"page_size\":2}");
  ASSERT_EQ(dint("total"), 3);
  ASSERT_EQ(json_array_size(json_object_get(rdata(), "list")), 1);
}

/* A job written by another admin (straight into the store here) shows in
 * the total within the cache's second. */
CASE(search_total_sees_another_writer_within_a_bounded_time)
{
  char err[CX_ERR_LEN];
  node_up("n1");
  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "o-%d", i);
    add_http(name);
  }
  ASSERT_EQ(search_total(), 3);
  struct cx_job j;
  cx_job_init(&j);
  j.name = (char *)"elsewhere";
  j.type = CX_JOB_CMD;
  j.command = (char *)"echo hi";
  j.spec = (char *)"0 3 * * *";
  j.allocation = CX_ALLOC_MANUAL;
  j.run_on = (char *)"n1";
  ASSERT_MSG(cx_store_job_create(F.store, &j, err) == 0, "%s", err);
  cx_mono until = cx_mono_now() + 10 * 1000000;
  while (search_total() != 4 && cx_mono_now() < until)
    cx_sleep_us(50000);
  ASSERT_EQ(search_total(), 4);
}

/* Placement reads alive nodes from a watch: a node whose key is deleted is
 * dead for manual and auto placement within a bounded time. */
CASE(placement_sees_a_deleted_node_dead_within_a_bounded_time)
{
  node_up("n1");
  node_up("n2");
  add_cmd_on("on-n2", "n2"); /* n2 alive */
  add_cmd_on("on-n1-a", "n1");
  add_cmd_on("on-n1-b", "n1"); /* n1 has more jobs: auto prefers n2 */
  node_down("n2");
  cx_mono until = cx_mono_now() + 10 * 1000000;
  int refused = 0;
  for (int i = 0; !refused && cx_mono_now() < until; i++) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"probe-%d\",\"type\":1,\"command\":\"echo hi\","
             "\"spec\":\"0 3 * * *\",\"allocation\":1,\"run_on\":\"n2\"}",
             i);
    post("/job/add", body);
    refused = R.status != 200;
    if (!refused)
      cx_sleep_us(20000);
  }
  ASSERT_MSG(refused, "n2 still alive for manual placement after 10 s");
  EXPECT(400, 1003);
  ASSERT_STREQ(rfield(), "run_on");
  /* Auto placement no longer picks n2 (it has the fewest jobs). */
  for (int i = 0; i < 3; i++) {
    char name[32];
    snprintf(name, sizeof name, "auto-%d", i);
    add_http(name);
    ASSERT_STREQ(dstr("run_on"), "n1");
  }
}

/* A node that registers after the admin started is usable at once (a miss
 * in the watched set is confirmed by a read, not trusted). */
CASE(a_node_registered_a_moment_ago_is_alive_at_once)
{
  node_up("fresh");
  add_cmd_on("at-once", "fresh");
}

/* ---- broadcast jobs (allocation 3, issue 18) ------------------------------
 */

static json_t *bcast_key_json(int64_t id)
{
  char key[256];
  snprintf(key, sizeof key, PREFIX "/bcast/%lld", (long long)id);
  return coord_json(key, NULL);
}

/* A broadcast cmd job needs system.cmd_auto_allocation like any auto-placed
 * cmd job; once allowed it is published once, under <prefix>/bcast/<id>,
 * with run_on "" and no node key at all. */
CASE(broadcast_cmd_needs_cmd_auto_and_publishes_one_bcast_key)
{
  node_up("n1");
  node_up("n2");
  const char *body = "{\"name\":\"logs\",\"type\":1,\"command\":\"rm -f "
                     "/tmp/x.log\",\"spec\":\"0 0 * * *\",\"allocation\":3}";
  post("/job/add", body);
  EXPECT(400, 1004);
  ASSERT_STREQ(rfield(), "allocation");
  ASSERT_EQ(store_count(), 0);
  F.cfg.cmd_auto_allocation = 1;
  post("/job/add", body);
  EXPECT(200, 0);
  int64_t id = dint("id");
  ASSERT_STREQ(dstr("run_on"), "");
  ASSERT_EQ(dint("allocation"), 3);
  json_t *k = bcast_key_json(id);
  ASSERT_MSG(k != NULL, "no bcast key");
  ASSERT_EQ(json_integer_value(json_object_get(k, "allocation")), 3);
  json_decref(k);
  ASSERT_EQ(count_prefix(PREFIX "/job/"), 0);
}

/* max_running: 0..10000, and only for broadcast jobs; allocation 4 does
 * not exist. */
CASE(broadcast_max_running_bounds)
{
  node_up("n1");
  static const struct {
    int alloc;
    long max_running;
    int status, code;
    const char *field;
  } v[] = {
      {3, -1, 400, 1001, "max_running"}, {3, 10001, 400, 1001, "max_running"},
      {2, 1, 400, 1001, "max_running"},  {4, 0, 400, 1001, "allocation"},
      {3, 10000, 200, 0, NULL},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(v); i++) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"b%zu\",\"type\":2,\"command\":\"http://h/\","
             "\"spec\":\"* * * * *\",\"allocation\":%d,\"max_running\":%ld}",
             i, v[i].alloc, v[i].max_running);
    post("/job/add", body);
    EXPECT(v[i].status, v[i].code);
    if (v[i].field)
      ASSERT_STREQ(rfield(), v[i].field);
  }
  ASSERT_EQ(dint("max_running"), 10000);
}

/* /job/find lists the nodes a broadcast job runs on (alive, matching, not
 * drained; sorted); /job/once without a node writes a once key for each;
 * turning it auto moves it to one node's key and drops the bcast key;
 * deleting removes every key. */
CASE(broadcast_find_once_update_delete)
{
  char target[64], body[512];
  node_up_labels("n1", "{\"role\":\"web\"}");
  node_up_labels("n2", "{\"role\":\"db\"}");
  node_up_labels("n3", "{\"role\":\"web\"}");
  post("/job/add", "{\"name\":\"b\",\"type\":2,\"command\":\"http://h/\","
                   "\"spec\":\"* * * * *\",\"allocation\":3,"
                   "\"node_selector\":\"role=web\",\"max_running\":1}");
  EXPECT(200, 0);
  int64_t id = dint("id");
  snprintf(target, sizeof target, "/job/find?id=%lld", (long long)id);
  call("GET", target, F.viewer, NULL);
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("node_state"), "broadcast");
  json_t *nodes = json_object_get(rdata(), "nodes");
  ASSERT_EQ(json_array_size(nodes), 2);
  ASSERT_STREQ(json_string_value(json_array_get(nodes, 0)), "n1");
  ASSERT_STREQ(json_string_value(json_array_get(nodes, 1)), "n3");
  snprintf(body, sizeof body, "{\"job_id\":%lld}", (long long)id);
  post("/job/once", body);
  EXPECT(200, 0);
  ASSERT_EQ(json_array_size(json_object_get(rdata(), "nodes")), 2);
  ASSERT_EQ(count_prefix(PREFIX "/once/n1/"), 1);
  ASSERT_EQ(count_prefix(PREFIX "/once/n3/"), 1);
  ASSERT_EQ(count_prefix(PREFIX "/once/n2/"), 0);
  /* the one named */
  snprintf(body, sizeof body, "{\"job_id\":%lld,\"node_uuid\":\"n2\"}",
           (long long)id);
  post("/job/once", body);
  EXPECT(200, 0);
  ASSERT_EQ(count_prefix(PREFIX "/once/n2/"), 1);
  /* broadcast -> auto: one node key, the bcast key gone */
  snprintf(body, sizeof body,
           "{\"id\":%lld,\"allocation\":2,\"max_running\":0}", (long long)id);
  post("/job/add", body);
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("run_on"), "n1");
  assert_key("n1", id);
  ASSERT(bcast_key_json(id) == NULL);
  /* and back */
  snprintf(body, sizeof body, "{\"id\":%lld,\"allocation\":3}", (long long)id);
  post("/job/add", body);
  EXPECT(200, 0);
  ASSERT_STREQ(dstr("run_on"), "");
  ASSERT(job_key_json("n1", id) == NULL);
  json_t *k = bcast_key_json(id);
  ASSERT(k != NULL);
  json_decref(k);
  snprintf(body, sizeof body, "{\"ids\":[%lld]}", (long long)id);
  post("/job/del", body);
  EXPECT(200, 0);
  ASSERT(bcast_key_json(id) == NULL);
  ASSERT_EQ(store_count(), 0);
}
