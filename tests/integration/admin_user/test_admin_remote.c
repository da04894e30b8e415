/* admin routes (cases.inc) on a real MariaDB and a real etcd, started on
 * loopback by each test: what `cronix admin` runs. Plus what only a real
 * server can show: /healthz turning 503 when etcd stops. */
#include <stdio.h>

#include "support/services.h"
#include "support/test.h"

#define CASE(name) TEST_TIMEOUT(admin_remote_##name, 120)

static void backend_start(char *store_url, size_t n1, char *endpoints,
                          size_t n2);

#include "cases.inc"

static struct cx_svc_etcd g_etcd;
static struct cx_svc_mariadb g_db;

static void backend_start(char *store_url, size_t n1, char *endpoints,
                          size_t n2)
{
  char err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_svc_etcd_start(&g_etcd, NULL, err) == 0, "etcd: %s", err);
  ASSERT_MSG(cx_svc_mariadb_start(&g_db, NULL, err) == 0, "mariadb: %s", err);
  snprintf(store_url, n1, "%s", g_db.url);
  snprintf(endpoints, n2, "%s", g_etcd.endpoints);
}

TEST_TIMEOUT(admin_remote_healthz_is_503_while_etcd_is_down, 120)
{
  char err[CX_ERR_LEN] = "";
  char tok[TOKEN_LEN];
  setup();
  mk_user("mon", "viewer", tok);
  json_decref(ok("GET", "/healthz", NULL, NULL));
  ASSERT_MSG(cx_svc_etcd_stop(&g_etcd, err) == 0, "%s", err);
  /* Anonymous: which one fails, not why (no endpoint, no error text). */
  json_t *j = call("GET", "/healthz", NULL, NULL, 503, 1302);
  json_t *d = json_object_get(j, "data");
  ASSERT_STREQ(str(d, "store"), "ok");
  ASSERT_STREQ(str(d, "coord"), "failing");
  ASSERT_EQ(json_object_size(d), 2);
  char *text = json_dumps(j, 0);
  ASSERT(strstr(text, "127.0.0.1") == NULL);
  free(text);
  json_decref(j);
  /* With a token: why. */
  j = call("GET", "/healthz", tok, NULL, 503, 1302);
  d = json_object_get(json_object_get(j, "data"), "detail");
  ASSERT(json_is_true(json_object_get(json_object_get(d, "store"), "ok")));
  ASSERT(json_is_false(json_object_get(json_object_get(d, "coord"), "ok")));
  ASSERT(str(json_object_get(d, "coord"), "error")[0] != '\0');
  json_decref(j);
  /* And back. */
  ASSERT_MSG(cx_svc_etcd_restart(&g_etcd, err) == 0, "%s", err);
  json_decref(ok("GET", "/healthz", NULL, NULL));
  teardown();
}

TEST_TIMEOUT(admin_remote_healthz_is_503_while_mariadb_is_down, 120)
{
  char err[CX_ERR_LEN] = "";
  setup();
  ASSERT_MSG(cx_svc_mariadb_stop(&g_db, err) == 0, "%s", err);
  json_t *j = call("GET", "/healthz", NULL, NULL, 503, 1302);
  json_t *d = json_object_get(j, "data");
  ASSERT_STREQ(str(d, "store"), "failing");
  ASSERT_STREQ(str(d, "coord"), "ok");
  char *text = json_dumps(j, 0);
  ASSERT(strstr(text, "127.0.0.1") == NULL && strstr(text, "mysql") == NULL);
  free(text);
  json_decref(j);
  /* Login while the store is down: 503, not a misleading 401; and no raw
   * error (host, port, user) for a caller nobody knows yet. */
  j = call("POST", "/login", NULL,
           "{\"username\":\"a\",\"password\":\"whatever1\"}", 503, 1302);
  text = json_dumps(j, 0);
  ASSERT_MSG(strstr(text, "127.0.0.1") == NULL, "%s", text);
  free(text);
  json_decref(j);
  /* Nor does a token check while the store is down. */
  j = call("GET", "/user/find", "0123456789abcdef", NULL, 503, 1302);
  text = json_dumps(j, 0);
  ASSERT_MSG(strstr(text, "127.0.0.1") == NULL, "%s", text);
  free(text);
  json_decref(j);
  teardown();
}
