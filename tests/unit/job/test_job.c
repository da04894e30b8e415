/* job: JSON decoding with per-field errors, validation, encoding. */
#include <jansson.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "job/job.h"
#include "support/test.h"

#define NOW 1795000000 /* 2026-11-19 */

static json_t *parse(const char *text)
{
  json_error_t e;
  json_t *v = json_loads(text, JSON_ALLOW_NUL, &e);
  ASSERT_MSG(v != NULL, "bad test JSON: %s", e.text);
  return v;
}

/* Decodes text into a fresh job; returns the decode result. */
static int decode(const char *text, struct cx_job *j, char *field, char *err)
{
  json_t *v = parse(text);
  cx_job_init(j);
  field[0] = err[0] = '\0';
  int rc = cx_job_from_json(v, j, field, err);
  json_decref(v);
  return rc;
}

static const char seed_job[] =
    "{\"name\":\"  backup \",\"command\":\"echo hi\",\"type\":1,"
    "\"spec\":\"0 0 0 * * *\",\"allocation\":1,\"run_on\":\"node-a\","
    "\"timeout\":60,\"retry_times\":3,\"retry_interval\":0,"
    "\"notify_status\":1,\"notify_type\":1,\"notify_to_array\":[1,2],"
    "\"note\":\"nightly\",\"timezone\":\"Asia/Shanghai\",\"enabled\":true,"
    "\"concurrency\":\"Replace\",\"misfire\":\"skip\","
    "\"starting_deadline\":30,\"env\":{\"A\":\"1\"},\"workdir\":\"/tmp\"}";

TEST(job_decode_seed_example_and_validate)
{
  struct cx_job j;
  char field[CX_JOB_FIELD_LEN], err[CX_ERR_LEN];
  enum cx_job_invalid why;
  ASSERT_EQ(decode(seed_job, &j, field, err), 0);
  ASSERT_STREQ(j.name, "backup"); /* trimmed */
  ASSERT_EQ(j.type, CX_JOB_CMD);
  ASSERT_EQ(j.retry_times, 3);
  ASSERT_STREQ(j.notify_to_array, "[1,2]");
  ASSERT_STREQ(j.concurrency, "replace"); /* normalised */
  ASSERT_STREQ(j.env, "{\"A\":\"1\"}");
  ASSERT_EQ(cx_job_validate(&j, NOW, &why, field, err), 0);
  cx_job_clear(&j);
}

TEST(job_decode_rejects_each_bad_field_by_name)
{
  static const struct {
    const char *json, *field, *msg;
  } cases[] = {
      {"{\"type\":\"1\"}", "type", "integer"},
      {"{\"type\":3}", "type", "out of range"},
      {"{\"timeout\":-1}", "timeout", "out of range"},
      {"{\"timeout\":99999999999999999}", "timeout", "out of range"},
      {"{\"retry_times\":101}", "retry_times", "out of range"},
      {"{\"allocation\":0}", "allocation", "out of range"},
      {"{\"name\":5}", "name", "string"},
      {"{\"name\":\"a\\u0000b\"}", "name", "NUL"},
      {"{\"name\":\"a\\nb\"}", "name", "control"},
      {"{\"note\":1.5}", "note", "string"},
      {"{\"enabled\":\"yes\"}", "enabled", "true or false"},
      {"{\"concurrency\":\"sometimes\"}", "concurrency", "forbid, allow"},
      {"{\"misfire\":\"later\"}", "misfire", "run_once, skip"},
      {"{\"http_method\":\"FETCH\"}", "http_method", "GET"},
      {"{\"notify_to_array\":[1,\"2\"]}", "notify_to_array", "positive"},
      {"{\"notify_to_array\":[0]}", "notify_to_array", "positive"},
      {"{\"notify_to_array\":{}}", "notify_to_array", "array"},
      {"{\"env\":{\"1A\":\"x\"}}", "env", "invalid name"},
      {"{\"env\":{\"A\":1}}", "env", "string"},
      {"{\"env\":[]}", "env", "object"},
      {"{\"http_headers\":{\"X-A\":\"a\\r\\nInjected: 1\"}}", "http_headers",
       "line break"},
      {"{\"http_headers\":{\"Bad Header\":\"x\"}}", "http_headers",
       "invalid name"},
      {"{\"retry_time\":3}", "retry_time", "unknown field"},
      {"{\"id\":0}", "id", "out of range"},
      {"{\"id\":\"7\"}", "id", "integer"},
      {"{\"limit_nofile\":-1}", "limit_nofile", "out of range"},
      {"{\"limit_memory_mb\":1048577}", "limit_memory_mb", "out of range"},
      {"{\"run_as\":7}", "run_as", "string"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct cx_job j;
    char field[CX_JOB_FIELD_LEN], err[CX_ERR_LEN];
    ASSERT_MSG(decode(cases[i].json, &j, field, err) == CX_EPARSE,
               "case %zu (%s) accepted", i, cases[i].json);
    ASSERT_STREQ(field, cases[i].field);
    ASSERT_CONTAINS(err, cases[i].msg);
    cx_job_clear(&j);
  }
}

TEST(job_decode_length_limits_count_characters)
{
  struct cx_job j;
  char field[CX_JOB_FIELD_LEN], err[CX_ERR_LEN];
  /* 128 three-byte characters are fine; 129 are not. */
  char json[2048] = "{\"name\":\"";
  for (int i = 0; i < 128; i++)
    strcat(json, "\xe4\xbb\xbb");
  strcat(json, "\"}");
  ASSERT_EQ(decode(json, &j, field, err), 0);
  cx_job_clear(&j);
  json[strlen(json) - 2] = '\0';
  strcat(json, "x\"}");
  ASSERT_EQ(decode(json, &j, field, err), CX_EPARSE);
  ASSERT_STREQ(field, "name");
  cx_job_clear(&j);
}

/* Every string field's limit comes from one table (cx_job_limit reads
 * it): a value at the limit decodes, one unit over is refused naming the
 * field. Limits in characters count a 2-byte character once. */
TEST(job_limits_one_table_for_decode_validate_and_store)
{
  static const struct {
    const char *field;
    size_t max;
    int chars;
  } want[] = {
      {"name", CX_JOB_MAX_NAME, 1},
      {"command", CX_JOB_MAX_COMMAND, 0},
      {"spec", CX_JOB_MAX_SPEC, 0},
      {"run_on", CX_JOB_MAX_RUN_ON, 0},
      {"note", CX_JOB_MAX_NOTE, 1},
      {"timezone", CX_JOB_MAX_TIMEZONE, 0},
      {"http_body", CX_JOB_MAX_HTTP_BODY, 0},
      {"workdir", CX_JOB_MAX_WORKDIR, 0},
      {"run_as", CX_JOB_MAX_RUN_AS, 0},
      {"node_selector", CX_JOB_MAX_SELECTOR, 0},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(want); i++) {
    size_t max = 0;
    int chars = -1;
    ASSERT_EQ(cx_job_limit(want[i].field, &max, &chars), 0);
    ASSERT_EQ(max, want[i].max);
    ASSERT_EQ(chars, want[i].chars);
    /* At the limit (in 2-byte characters where characters count). */
    const char *unit = chars ? "\xc3\xa9" : "a";
    for (size_t extra = 0; extra < 2; extra++) {
      struct cx_buf v = {0};
      for (size_t k = 0; k < max + extra; k++)
        cx_buf_puts(&v, unit);
      json_t *o = json_object();
      json_object_set_new(o, want[i].field, json_string(v.data));
      struct cx_job j;
      char field[CX_JOB_FIELD_LEN] = "", err[CX_ERR_LEN] = "";
      cx_job_init(&j);
      int rc = cx_job_from_json(o, &j, field, err);
      if (extra == 0) {
        ASSERT_MSG(rc == 0, "%s at its limit: %s", want[i].field, err);
      } else {
        ASSERT_EQ(rc, CX_EPARSE);
        ASSERT_STREQ(field, want[i].field);
        ASSERT_CONTAINS(err, "longer than");
      }
      cx_job_clear(&j);
      json_decref(o);
      cx_buf_free(&v);
    }
  }
  size_t max;
  int chars;
  ASSERT_EQ(cx_job_limit("timeout", &max, &chars), CX_ENOTFOUND);
  ASSERT_EQ(cx_job_limit("no_such", &max, &chars), CX_ENOTFOUND);
}

/* The least a valid cmd job has. */
static void minimal_cmd_job(struct cx_job *j)
{
  cx_job_init(j);
  j->name = (char *)"a";
  j->type = CX_JOB_CMD;
  j->command = (char *)"true";
  j->spec = (char *)"* * * * *";
  j->allocation = CX_ALLOC_AUTO;
}

/* A job built in code (the store's view): cx_job_check_limits names the
 * first field over its limit with CX_ETOOBIG, and cx_job_validate refuses
 * it as a bad field. */
TEST(job_check_limits_names_the_field)
{
  char dir[CX_JOB_MAX_WORKDIR + 2];
  dir[0] = '/';
  memset(dir + 1, 'd', sizeof dir - 2);
  dir[sizeof dir - 1] = '\0';
  struct cx_job j;
  minimal_cmd_job(&j);
  char field[CX_JOB_FIELD_LEN] = "", err[CX_ERR_LEN] = "";
  enum cx_job_invalid why = 0;
  ASSERT_EQ(cx_job_check_limits(&j, field, err), 0);
  ASSERT_EQ(cx_job_validate(&j, NOW, &why, field, err), 0);
  j.workdir = dir;
  ASSERT_EQ(cx_job_check_limits(&j, field, err), CX_ETOOBIG);
  ASSERT_STREQ(field, "workdir");
  ASSERT_CONTAINS(err, "workdir: longer than 1024 bytes");
  ASSERT_EQ(cx_job_validate(&j, NOW, &why, field, err), CX_EPARSE);
  ASSERT_STREQ(field, "workdir");
  ASSERT_EQ(why, CX_JOB_BAD_FIELD);
  dir[CX_JOB_MAX_WORKDIR] = '\0'; /* exactly the limit */
  ASSERT_EQ(cx_job_check_limits(&j, field, err), 0);
}

/* env and http_headers: entries, name and value sizes, and the whole JSON
 * text (what the store keeps and the node reads) each have a limit. */
TEST(job_map_limits)
{
  struct cx_job j;
  char field[CX_JOB_FIELD_LEN], err[CX_ERR_LEN];
  char *value = cx_malloc(CX_JOB_MAX_MAP_VALUE + 2);
  memset(value, 'v', CX_JOB_MAX_MAP_VALUE + 1);
  value[CX_JOB_MAX_MAP_VALUE + 1] = '\0';
  for (const char *const *m =
           (const char *const[]){"env", "http_headers", NULL};
       *m; m++) {
    /* One value over its limit. */
    json_t *o = json_pack("{s:{s:s}}", *m, "A", value);
    cx_job_init(&j);
    ASSERT_EQ(cx_job_from_json(o, &j, field, err), CX_EPARSE);
    ASSERT_STREQ(field, *m);
    ASSERT_CONTAINS(err, "8192");
    cx_job_clear(&j);
    json_decref(o);
    /* Values each within theirs, together over the text limit. */
    value[CX_JOB_MAX_MAP_VALUE] = '\0';
    json_t *map = json_object();
    for (int k = 0; k * CX_JOB_MAX_MAP_VALUE <= CX_JOB_MAX_MAP_TEXT; k++) {
      char key[16];
      snprintf(key, sizeof key, "K%d", k);
      json_object_set_new(map, key, json_string(value));
    }
    o = json_object();
    json_object_set_new(o, *m, map);
    cx_job_init(&j);
    ASSERT_EQ(cx_job_from_json(o, &j, field, err), CX_EPARSE);
    ASSERT_STREQ(field, *m);
    ASSERT_CONTAINS(err, "longer than 65536 bytes");
    cx_job_clear(&j);
    json_decref(o);
    value[CX_JOB_MAX_MAP_VALUE] = 'v';
  }
  cx_free(value);
}

TEST(job_decode_null_keeps_current_value)
{
  struct cx_job j;
  char field[CX_JOB_FIELD_LEN], err[CX_ERR_LEN];
  ASSERT_EQ(decode("{\"concurrency\":null,\"timeout\":null}", &j, field, err),
            0);
  ASSERT(j.concurrency == NULL); /* still the default: unset */
  ASSERT_EQ(j.timeout, 0);
  cx_job_clear(&j);
}

TEST(job_validate_required_and_cross_field_rules)
{
  static const struct {
    const char *json, *field;
    enum cx_job_invalid why;
  } cases[] = {
      {"{\"command\":\"x\",\"type\":1,\"spec\":\"* * * * *\","
       "\"allocation\":2}",
       "name", CX_JOB_BAD_FIELD},
      {"{\"name\":\"   \",\"command\":\"x\",\"type\":1,\"spec\":\"* * * * *\","
       "\"allocation\":2}",
       "name", CX_JOB_BAD_FIELD},
      {"{\"name\":\"a\",\"type\":1,\"spec\":\"* * * * *\",\"allocation\":2}",
       "command", CX_JOB_BAD_FIELD},
      {"{\"name\":\"a\",\"command\":\"x\",\"type\":1,\"allocation\":2}", "spec",
       CX_JOB_BAD_FIELD},
      {"{\"name\":\"a\",\"command\":\"x\",\"type\":1,\"spec\":\"* * * * *\","
       "\"allocation\":1}",
       "run_on", CX_JOB_BAD_FIELD},
      {"{\"name\":\"a\",\"command\":\"ftp://x\",\"type\":2,"
       "\"spec\":\"* * * * *\",\"allocation\":2}",
       "command", CX_JOB_BAD_FIELD},
      {"{\"name\":\"a\",\"command\":\"http:// x\",\"type\":2,"
       "\"spec\":\"* * * * *\",\"allocation\":2}",
       "command", CX_JOB_BAD_FIELD},
      {"{\"name\":\"a\",\"command\":\"x\",\"type\":1,\"spec\":\"61 * * * *\","
       "\"allocation\":2}",
       "spec", CX_JOB_BAD_SPEC},
      {"{\"name\":\"a\",\"command\":\"x\",\"type\":1,\"spec\":\"0 0 30 2 *\","
       "\"allocation\":2}",
       "spec", CX_JOB_BAD_SPEC},
      {"{\"name\":\"a\",\"command\":\"x\",\"type\":1,\"spec\":\"* * * * *\","
       "\"allocation\":2,\"timezone\":\"Mars/Base\"}",
       "timezone", CX_JOB_BAD_FIELD},
      {"{\"name\":\"a\",\"command\":\"x\",\"type\":1,\"spec\":\"* * * * *\","
       "\"allocation\":2,\"notify_status\":1}",
       "notify_type", CX_JOB_BAD_FIELD},
      {"{\"name\":\"a\",\"command\":\"x\",\"type\":1,\"spec\":\"* * * * *\","
       "\"allocation\":2,\"workdir\":\"relative\"}",
       "workdir", CX_JOB_BAD_FIELD},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct cx_job j;
    char field[CX_JOB_FIELD_LEN], err[CX_ERR_LEN];
    enum cx_job_invalid why = 0;
    ASSERT_EQ(decode(cases[i].json, &j, field, err), 0);
    j.type = j.type ? j.type : 0;
    ASSERT_MSG(cx_job_validate(&j, NOW, &why, field, err) == CX_EPARSE,
               "case %zu valid", i);
    ASSERT_STREQ(field, cases[i].field);
    ASSERT_EQ(why, cases[i].why);
    cx_job_clear(&j);
  }
}

/* The five required fields of SPEC §3 have no defaults: a new job missing
 * any one of them (absent or null) is refused naming it. type and
 * allocation used to default to 1 and 2 before validation. */
TEST(job_validate_run_as_is_a_user_name)
{
  static const char *const bad[] = {"-root", "a b",   "a/b",
                                    "a;id",  "$(id)", "\xc3\xa9"};
  struct cx_job j;
  char field[CX_JOB_FIELD_LEN] = "", err[CX_ERR_LEN] = "";
  enum cx_job_invalid why = 0;
  minimal_cmd_job(&j);
  j.run_as = (char *)"backup-1.x_y";
  ASSERT_EQ(cx_job_validate(&j, NOW, &why, field, err), 0);
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    j.run_as = (char *)bad[i];
    ASSERT_EQ(cx_job_validate(&j, NOW, &why, field, err), CX_EPARSE);
    ASSERT_STREQ(field, "run_as");
  }
}

TEST(job_validate_node_selector)
{
  static const char *const good[] = {"", "zone=a", "zone=a, role!=db",
                                     "zone in (a,b)"};
  static const char *const bad[] = {"zone", "zone==a", "zone in (a", "zone=a;b",
                                    "zone=a role=b"};
  struct cx_job j;
  char field[CX_JOB_FIELD_LEN] = "", err[CX_ERR_LEN] = "";
  enum cx_job_invalid why = 0;
  minimal_cmd_job(&j);
  for (size_t i = 0; i < CX_ARRAY_LEN(good); i++) {
    j.node_selector = (char *)good[i];
    ASSERT_MSG(cx_job_validate(&j, NOW, &why, field, err) == 0, "%s: %s",
               good[i], err);
  }
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    j.node_selector = (char *)bad[i];
    ASSERT_MSG(cx_job_validate(&j, NOW, &why, field, err) == CX_EPARSE, "%s",
               bad[i]);
    ASSERT_STREQ(field, "node_selector");
    ASSERT_EQ(why, CX_JOB_BAD_FIELD);
    ASSERT_CONTAINS(err, "node_selector");
  }
}

TEST(job_validate_each_required_field_missing_is_named)
{
  static const char *const required[] = {"name", "type", "command", "spec",
                                         "allocation"};
  for (size_t i = 0; i < CX_ARRAY_LEN(required); i++) {
    for (int as_null = 0; as_null < 2; as_null++) {
      json_t *o = parse("{\"name\":\"a\",\"type\":2,"
                        "\"command\":\"http://h/\",\"spec\":\"* * * * *\","
                        "\"allocation\":2}");
      if (as_null)
        json_object_set_new(o, required[i], json_null());
      else
        json_object_del(o, required[i]);
      struct cx_job j;
      char field[CX_JOB_FIELD_LEN] = "", err[CX_ERR_LEN] = "";
      enum cx_job_invalid why = 0;
      cx_job_init(&j);
      ASSERT_EQ(cx_job_from_json(o, &j, field, err), 0);
      ASSERT_MSG(cx_job_validate(&j, NOW, &why, field, err) == CX_EPARSE,
                 "a job without %s (null: %d) is valid", required[i], as_null);
      ASSERT_STREQ(field, required[i]);
      ASSERT_EQ(why, CX_JOB_BAD_FIELD);
      ASSERT_CONTAINS(err, "required");
      cx_job_clear(&j);
      json_decref(o);
    }
  }
}

TEST(job_validate_spec_message_comes_from_the_parser)
{
  struct cx_job j;
  char field[CX_JOB_FIELD_LEN], err[CX_ERR_LEN];
  enum cx_job_invalid why;
  ASSERT_EQ(decode("{\"name\":\"a\",\"command\":\"x\",\"type\":1,"
                   "\"spec\":\"* * * * fry\",\"allocation\":2}",
                   &j, field, err),
            0);
  ASSERT_EQ(cx_job_validate(&j, NOW, &why, field, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "spec: ");
  ASSERT_CONTAINS(err, "fry");
  cx_job_clear(&j);
}

TEST(job_json_round_trip)
{
  struct cx_job j, k;
  char field[CX_JOB_FIELD_LEN], err[CX_ERR_LEN];
  ASSERT_EQ(decode(seed_job, &j, field, err), 0);
  j.id = 42;
  j.created = NOW;
  j.updated = NOW + 5;
  json_t *o = cx_job_to_json(&j);
  ASSERT(o != NULL);
  ASSERT(json_is_array(json_object_get(o, "notify_to_array")));
  ASSERT(json_is_true(json_object_get(o, "enabled")));
  ASSERT_STREQ(json_string_value(json_object_get(o, "http_method")), "GET");
  ASSERT_EQ(json_integer_value(json_object_get(o, "id")), 42);
  /* Reply-only fields may come back in. */
  json_object_set_new(o, "next", json_array());
  cx_job_init(&k);
  ASSERT_EQ(cx_job_from_json(o, &k, field, err), 0);
  ASSERT_EQ(k.id, 42);
  ASSERT_EQ(k.updated, NOW + 5);
  ASSERT_STREQ(k.name, j.name);
  ASSERT_STREQ(k.env, j.env);
  ASSERT_STREQ(k.notify_to_array, j.notify_to_array);
  ASSERT_STREQ(k.timezone, "Asia/Shanghai");
  json_decref(o);
  struct cx_job c;
  ASSERT_EQ(cx_job_copy(&c, &k), 0);
  ASSERT(c.name != k.name);
  ASSERT_STREQ(c.name, k.name);
  cx_job_clear(&c);
  cx_job_clear(&k);
  cx_job_clear(&j);
}

TEST(job_decode_survives_allocation_failures)
{
  json_t *v = parse(seed_job);
  for (long n = 1; n < 40; n++) {
    struct cx_job j;
    char field[CX_JOB_FIELD_LEN], err[CX_ERR_LEN];
    cx_job_init(&j);
    cx_alloc_fail_after(n);
    int rc = cx_job_from_json(v, &j, field, err);
    cx_alloc_fail_after(0);
    ASSERT(rc == 0 || rc == -ENOMEM);
    cx_job_clear(&j);
  }
  json_decref(v);
}

/* What a viewer sees: URL passwords, header and env values hidden; the
 * rest (and user names in URLs) unchanged. Table-driven. */
TEST(job_redact_command_hides_url_passwords)
{
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"https://u:secret@example.com/x?a=1", "https://u:***@example.com/x?a=1"},
      {"http://user@example.com/", "http://user@example.com/"},
      {"http://example.com/a@b", "http://example.com/a@b"},
      {"curl -s 'ftp://a:b:c@h:21/f' http://x:y@z",
       "curl -s 'ftp://a:***@h:21/f' http://x:***@z"},
      {"http://u:p%40x@host", "http://u:***@host"},
      {"https://u:p#x@host/", "https://u:***@host/"}, /* '#' in a password */
      {"http://u:p@x@host/?q=@", "http://u:***@host/?q=@"},
      {"no url here: @ : //", "no url here: @ : //"},
      {"://:@", "://:***@"},
      {"", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *r = cx_job_redact_command(cases[i].in);
    ASSERT(r != NULL);
    ASSERT_STREQ(r, cases[i].out);
    cx_free(r);
  }
}

TEST(job_redact_json_hides_header_and_env_values)
{
  json_t *o = parse("{\"command\":\"https://a:pw@h/\",\"http_headers\":"
                    "{\"Authorization\":\"Bearer t0k\",\"X\":\"1\"},"
                    "\"env\":{\"DB_PASS\":\"hunter2\"},\"http_body\":\"b\","
                    "\"name\":\"n\"}");
  ASSERT_EQ(cx_job_redact_json(o), 0);
  char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  ASSERT_STREQ(s, "{\"command\":\"https://a:***@h/\",\"env\":{\"DB_PASS\":"
                  "\"***\"},\"http_body\":\"b\",\"http_headers\":{"
                  "\"Authorization\":\"***\",\"X\":\"***\"},\"name\":\"n\"}");
  free(s);
  json_decref(o);
}
