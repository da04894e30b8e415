/*
 * Fuzz target: one request through the whole admin -- routes, auth, JSON
 * field checks, the store (SQLite in a temporary directory) and the
 * in-process coordination backend -- via cx_http_dispatch (no sockets).
 *
 * Input: "METHOD TARGET\nBODY". The request carries an admin's bearer
 * token, unless METHOD starts with '!' (no token) or '~' (a viewer's).
 * State persists between inputs (users, nodes, jobs made by earlier ones),
 * as it would on a live admin.
 *
 * Checked on every input: a reply exists with a real HTTP status; a JSON
 * reply is an envelope whose "code" is 0 exactly when the status is 200
 * and whose status matches the code's; no reply ever carries the admin's
 * password hash; nothing leaks or trips ASan/UBSan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin-int.h"

static struct cx_config g_cfg;
static struct cx_store *g_store;
static struct cx_coord *g_coord;
static struct cx_admin *g_admin;
static char g_dir[256];
static char g_admin_auth[96], g_viewer_auth[96];
static char g_root_hash[CX_STORE_HASH_LEN]; /* must never be in a reply */

static void cleanup(void)
{
  char path[512];
  cx_admin_destroy(g_admin);
  cx_coord_close(g_coord);
  cx_store_close(g_store);
  cx_config_free(&g_cfg);
  static const char *const files[] = {"cronix.db", "cronix.db-wal",
                                      "cronix.db-shm", "cronix.db-journal"};
  for (size_t i = 0; i < CX_ARRAY_LEN(files); i++) {
    snprintf(path, sizeof path, "%s/%s", g_dir, files[i]);
    unlink(path);
  }
  rmdir(g_dir);
}

/* A user with a token; the header value goes to auth. */
static void make_user(const char *name, const char *role, char *auth,
                      size_t len)
{
  char tok[CX_STORE_TOKEN_LEN], field[CX_ADMIN_FIELD_LEN];
  int64_t id = 0;
  struct cx_admin_user_spec s = {
      .username = name, .password = "fuzz-password", .role = role};
  if (cx_admin_user_create(g_store, &s, &id, field, NULL) != 0 ||
      cx_store_token_generate(tok) != 0 ||
      cx_store_token_create(g_store, tok, id, "api", 0, NULL) != 0)
    abort();
  snprintf(auth, len, "Bearer %s", tok);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  char url[512];
  (void)argc;
  (void)argv;
  cx_log_set_level(CX_LOG_OFF);
  const char *tmp = getenv("TMPDIR");
  snprintf(g_dir, sizeof g_dir, "%s/cx-fuzz-admin.XXXXXX",
           tmp && tmp[0] ? tmp : "/tmp");
  if (mkdtemp(g_dir) == NULL || cx_config_init(&g_cfg) != 0 ||
      cx_config_set(&g_cfg, "server.data_dir", g_dir, NULL) != 0 ||
      cx_config_finish(&g_cfg, NULL) != 0)
    abort();
  snprintf(url, sizeof url, "sqlite://%s/cronix.db", g_dir);
  struct cx_coord_cfg cc = {0};
  if (cx_store_open(url, &g_store, NULL) != 0 ||
      cx_coord_open(&cc, &g_coord, NULL) != 0)
    abort();
  struct cx_admin_opts o = {
      .cfg = &g_cfg, .store = g_store, .coord = g_coord, .listen = ":0"};
  if (cx_admin_create(&o, &g_admin, NULL) != 0)
    abort();
  atexit(cleanup);
  make_user("root", "admin", g_admin_auth, sizeof g_admin_auth);
  make_user("watcher", "viewer", g_viewer_auth, sizeof g_viewer_auth);
  struct cx_user u;
  if (cx_store_user_find_by_name(g_store, "root", &u, NULL) != 0)
    abort();
  snprintf(g_root_hash, sizeof g_root_hash, "%s", u.password_hash);
  cx_user_clear(&u);
  /* Something for the node routes to find. */
  struct cx_node n = {0};
  n.uuid = "node-1";
  n.hostname = "h";
  n.ip = "127.0.0.1";
  n.version = "0";
  n.status = CX_NODE_UP;
  static const char key[] = "/cronix/node/node-1";
  if (cx_store_node_upsert(g_store, &n, NULL) != 0 ||
      cx_coord_put(g_coord, key, sizeof key - 1, "{}", 2, 0, NULL, NULL) != 0)
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *p = (const char *)data, *end = p + size;
  const char *nl = memchr(p, '\n', size);
  size_t head_len = nl ? (size_t)(nl - p) : size;
  char *head = cx_strndup(p, head_len);
  if (head == NULL)
    abort();
  const char *body = nl ? nl + 1 : end;
  const char *auth = g_admin_auth;
  char *method = head;
  if (method[0] == '!' || method[0] == '~') {
    auth = method[0] == '!' ? NULL : g_viewer_auth;
    method++;
  }
  char *sp = strchr(method, ' ');
  const char *target = "";
  if (sp != NULL) {
    *sp = '\0';
    target = sp + 1;
  }
  struct cx_http_header h = {"Authorization", auth};
  struct cx_http_input in = {.method = method,
                             .uri = target,
                             .headers = &h,
                             .n_headers = auth != NULL,
                             .body = body,
                             .body_len = (size_t)(end - body),
                             .remote = "fuzz"};
  struct cx_http_output out;
  if (cx_http_dispatch(g_admin->http, &in, &out) != 0)
    abort();
  if (out.status < 100 || out.status > 599 || out.body == NULL ||
      out.content_type == NULL)
    abort();
  if (strstr(out.body, g_root_hash) != NULL)
    abort();
  /* Every JSON reply is the API's {code, msg} envelope except documents
   * served as they are: the API description, at /openapi.json and among
   * the console's assets (/ui/assets/<version>/openapi.json). */
  size_t path_len = strcspn(target, "?");
  int is_document = (path_len == sizeof "/openapi.json" - 1 &&
                     memcmp(target, "/openapi.json", path_len) == 0) ||
                    strncmp(target, "/ui/", 4) == 0;
  if (strcmp(out.content_type, CX_HTTP_CT_JSON) == 0 && !is_document) {
    json_t *j = json_loadb(out.body, out.body_len, 0, NULL);
    json_t *code = json_object_get(j, "code");
    int c = (int)json_integer_value(code);
    if (!json_is_integer(code) || !json_is_string(json_object_get(j, "msg")) ||
        (c == 0) != (out.status == 200) ||
        (c != 0 && cx_http_code_status(c) != out.status))
      abort();
    json_decref(j);
  }
  cx_http_output_free(&out);
  cx_free(head);
  return 0;
}
