/*
 * docs/openapi.json, the API described for machines: it lists exactly the
 * routes the admin registers (read from the route tables in src/admin),
 * and a real OpenAPI 3.1 validator accepts it.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "support/test.h"

/* Adds "method path" of every {"METHOD", "/path", handler} line in the
 * C files of dir to routes. Returns how many. */
static int scan_routes(const char *dir, json_t *routes)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  ASSERT_MSG(d != NULL, "%s (tests run from the repo root)", dir);
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len < 3 || strcmp(e->d_name + len - 2, ".c") != 0)
      continue;
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    while (fgets(line, sizeof line, f) != NULL) {
      char method[16], route[256];
      if (sscanf(line, " {\"%15[A-Z]\", \"%255[^\"]\",", method, route) == 2 &&
          route[0] == '/') {
        for (char *p = method; *p; p++)
          *p = (char)(*p - 'A' + 'a');
        char key[300];
        snprintf(key, sizeof key, "%s %s", method, route);
        json_object_set_new(routes, key, json_true());
        n++;
      }
    }
    fclose(f);
  }
  closedir(d);
  return n;
}

TEST(cli_openapi_lists_exactly_the_admin_routes)
{
  json_error_t jerr;
  json_t *doc =
      json_load_file("docs/openapi.json", JSON_REJECT_DUPLICATES, &jerr);
  ASSERT_MSG(doc != NULL, "docs/openapi.json: %s", jerr.text);
  ASSERT_STREQ(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
  json_t *routes = json_object();
  ASSERT_OP(scan_routes("src/admin", routes), >=, 20);
  const char *path, *method, *key;
  json_t *item, *v, *o;
  json_object_foreach(json_object_get(doc, "paths"), path, item)
  {
    json_object_foreach(item, method, o)
    {
      char k[300];
      snprintf(k, sizeof k, "%s %s", method, path);
      ASSERT_MSG(json_object_get(routes, k) != NULL,
                 "docs/openapi.json has %s, which the admin does not serve", k);
      ASSERT_MSG(json_object_get(json_object_get(o, "responses"), "200"),
                 "%s: no 200 reply", k);
      json_object_del(routes, k);
    }
  }
  json_object_foreach(routes, key, v)
  {
    ASSERT_MSG(0, "the admin serves %s, which docs/openapi.json lacks", key);
  }
  json_decref(routes);
  json_decref(doc);
}

/* Runs the npm OpenAPI 3.1 validator (tools/openapi, installed from its
 * lock file by scripts/install-deps.sh test) on path. */
static void validate(const char *path, struct cx_test_output *o)
{
  static const char bin[] =
      "tools/openapi/node_modules/@seriousme/openapi-schema-validator/bin/"
      "validate-api-cli.js";
  ASSERT_MSG(access(bin, R_OK) == 0,
             "%s is missing: run scripts/install-deps.sh test (npm ci in "
             "tools/openapi)",
             bin);
  char *const argv[] = {"/usr/bin/env", "node", (char *)bin, (char *)path,
                        NULL};
  cx_test_run(argv, 60, o);
}

TEST(cli_openapi_document_passes_a_validator)
{
  struct cx_test_output o;
  validate("docs/openapi.json", &o);
  ASSERT_MSG(o.status == 0, "validator: %s %s", o.out, o.err);
  ASSERT_CONTAINS(o.out, "\"valid\": true");
  cx_test_output_free(&o);
}

TEST(cli_openapi_validator_refuses_a_broken_document)
{
  /* The check is real: a reply whose description is a number, and a path
   * item with an unknown member, are refused. */
  json_error_t jerr;
  json_t *doc = json_load_file("docs/openapi.json", 0, &jerr);
  ASSERT_MSG(doc != NULL, "%s", jerr.text);
  json_t *paths = json_object_get(doc, "paths");
  json_object_set_new(
      json_object_get(
          json_object_get(
              json_object_get(json_object_get(paths, "/healthz"), "get"),
              "responses"),
          "200"),
      "description", json_integer(5));
  char path[512];
  snprintf(path, sizeof path, "%s/bad.json", cx_test_tmpdir());
  ASSERT(json_dump_file(doc, path, 0) == 0);
  json_decref(doc);
  struct cx_test_output o;
  validate(path, &o);
  ASSERT_MSG(o.status != 0, "a broken document passed: %s", o.out);
  ASSERT_CONTAINS(o.out, "\"valid\": false");
  cx_test_output_free(&o);
}
