/* job: docs/openapi.json's Job and JobInput schemas against the job field
 * table (record.c), so neither can gain a field the other lacks. */
#include <jansson.h>
#include <string.h>

#include "job/job.h"
#include "support/test.h"

static json_t *schema_props(json_t *doc, const char *name)
{
  json_t *p = json_object_get(
      json_object_get(
          json_object_get(json_object_get(doc, "components"), "schemas"), name),
      "properties");
  ASSERT_MSG(json_is_object(p), "docs/openapi.json: no %s properties", name);
  return p;
}

TEST(job_openapi_schemas_list_every_field_of_the_table)
{
  json_error_t jerr;
  json_t *doc = json_load_file("docs/openapi.json", 0, &jerr);
  ASSERT_MSG(doc != NULL, "docs/openapi.json (run from the repo root): %s",
             jerr.text);
  json_t *job = schema_props(doc, "Job"), *in = schema_props(doc, "JobInput");
  struct cx_job j;
  cx_job_init(&j);
  json_t *out = cx_job_to_json(&j);
  ASSERT(out != NULL);
  const char *k;
  json_t *v;
  /* Every field a reply carries is in both schemas. */
  json_object_foreach(out, k, v)
  {
    ASSERT_MSG(json_object_get(job, k) != NULL,
               "the job field %s is missing from the Job schema", k);
    ASSERT_MSG(json_object_get(in, k) != NULL,
               "the job field %s is missing from the JobInput schema", k);
  }
  /* Every field the schemas name is one the table knows (the reply-only
   * ones included): decoding it is never "unknown field". */
  for (int pass = 0; pass < 2; pass++) {
    json_object_foreach(pass ? in : job, k, v)
    {
      json_t *obj = json_pack("{s:n}", k);
      char field[CX_JOB_FIELD_LEN] = "", err[CX_ERR_LEN] = "";
      struct cx_job t;
      cx_job_init(&t);
      cx_job_from_json(obj, &t, field, err);
      ASSERT_MSG(strstr(err, "unknown") == NULL,
                 "docs/openapi.json's %s has %s, which jobs do not have: %s",
                 pass ? "JobInput" : "Job", k, err);
      cx_job_clear(&t);
      json_decref(obj);
      /* A text limit the table has is the schema's maxLength. */
      size_t max;
      int chars;
      json_t *ml = json_object_get(v, "maxLength");
      if (ml != NULL && cx_job_limit(k, &max, &chars) == 0)
        ASSERT_MSG((size_t)json_integer_value(ml) == max,
                   "%s: maxLength %lld, the table says %zu", k,
                   (long long)json_integer_value(ml), max);
    }
  }
  json_decref(out);
  cx_job_clear(&j);
  json_decref(doc);
}
