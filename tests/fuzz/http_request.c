/*
 * Fuzz target: one HTTP request through the admin's request pipeline
 * (cx_http_dispatch: route lookup, query decoding, body limit, JSON
 * parsing, handler dispatch, envelope), without sockets.
 *
 * Input: "METHOD\nTARGET\nName: value\n...\n\nBODY" -- the first line is
 * the method, the second the request target, then header lines up to an
 * empty line, and everything after it is the body. Missing parts are empty.
 *
 * Checked on every input: a reply exists, its status is a real HTTP status,
 * a JSON reply is an envelope object whose "code" is 0 exactly when the
 * status is 200 and whose "msg" is a string, and nothing leaks or trips
 * ASan/UBSan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

static struct cx_http *g_http;

/* Echoes what the pipeline decoded, through the reply helpers. */
static void h_query(struct cx_http_req *req, void *ctx)
{
  json_t *q = json_array();
  (void)ctx;
  for (size_t i = 0; i < cx_http_req_query_count(req); i++) {
    const char *n, *v;
    cx_http_req_query_at(req, i, &n, &v);
    json_array_append_new(q, json_pack("[ss]", n, v));
  }
  const char *auth = cx_http_req_header(req, "Authorization");
  if (auth != NULL && strncmp(auth, "Bearer ", 7) != 0) {
    json_decref(q);
    cx_http_reply_header(req, "WWW-Authenticate", "Bearer");
    cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, NULL, "bad token '%s'",
                        auth);
    return;
  }
  cx_http_reply_ok(req, q);
}

static void h_json(struct cx_http_req *req, void *ctx)
{
  json_t *body = cx_http_req_json(req);
  json_t *name = json_object_get(body, "name");
  (void)ctx;
  if (name != NULL && !json_is_string(name)) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "name",
                        "name must be a string");
    return;
  }
  if (name != NULL)
    cx_http_reply_error(req, CX_HTTP_CONFLICT, "name", "name '%s' taken",
                        json_string_value(name));
  else
    cx_http_reply_ok(req, json_incref(body));
}

static void h_raw(struct cx_http_req *req, void *ctx)
{
  size_t len;
  const char *b = cx_http_req_body(req, &len);
  (void)ctx;
  /* Echo the raw bytes as a non-envelope reply, then maybe replace it. */
  cx_http_reply_raw(req, 200, CX_HTTP_CT_PROMETHEUS, b, len);
  if (len > 0 && b[0] == 'x')
    cx_http_reply_error_data(req, CX_HTTP_UNAVAIL, NULL,
                             json_pack("{s:s%}", "raw", b, len), NULL);
}

static void h_silent(struct cx_http_req *req, void *ctx)
{
  (void)req;
  (void)ctx;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  struct cx_http_opts o = {.max_body = 4096};
  (void)argc;
  (void)argv;
  cx_log_set_level(CX_LOG_OFF);
  if (cx_http_create(&o, &g_http, NULL) != 0 ||
      cx_http_route(g_http, "GET", "/job/find", 0, h_query, NULL) != 0 ||
      cx_http_route(g_http, "POST", "/job/add", CX_HTTP_F_JSON, h_json, NULL) !=
          0 ||
      cx_http_route(g_http, "PUT", "/job/add", CX_HTTP_F_BODY, h_raw, NULL) !=
          0 ||
      cx_http_route(g_http, "POST", "/raw", CX_HTTP_F_BODY, h_raw, NULL) != 0 ||
      cx_http_route(g_http, "GET", "/silent", 0, h_silent, NULL) != 0)
    abort();
  return 0;
}

/* Next '\n'-terminated line of [*p, end) as a new string (NULL at end). */
static char *take_line(const char **p, const char *end)
{
  const char *s = *p, *nl;
  if (s >= end)
    return NULL;
  nl = memchr(s, '\n', (size_t)(end - s));
  size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
  char *line = malloc(n + 1);
  if (line == NULL)
    abort();
  memcpy(line, s, n);
  line[n] = '\0';
  *p = nl ? nl + 1 : end;
  return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *p = (const char *)data, *end = p + size;
  char *method = take_line(&p, end), *target = take_line(&p, end);
  char *lines[16];
  struct cx_http_header hdrs[16];
  size_t nh = 0;
  for (;;) {
    char *l = take_line(&p, end);
    if (l == NULL)
      break;
    if (l[0] == '\0' || nh == 16) {
      free(l);
      break;
    }
    char *colon = strchr(l, ':');
    lines[nh] = l;
    hdrs[nh].name = l;
    hdrs[nh].value = "";
    if (colon != NULL) {
      *colon = '\0';
      hdrs[nh].value = colon[1] == ' ' ? colon + 2 : colon + 1;
    }
    nh++;
  }
  struct cx_http_input in = {method ? method : "",
                             target ? target : "",
                             hdrs,
                             nh,
                             p,
                             (size_t)(end - p),
                             "fuzz"};
  struct cx_http_output out;
  if (cx_http_dispatch(g_http, &in, &out) != 0)
    abort(); /* only -ENOMEM is allowed, and nothing fails allocation here */
  if (out.status < 100 || out.status > 599 || out.body == NULL ||
      out.content_type == NULL || strlen(out.body) > out.body_len)
    abort();
  if (strcmp(out.content_type, CX_HTTP_CT_JSON) == 0) {
    json_t *j = json_loadb(out.body, out.body_len, JSON_ALLOW_NUL, NULL);
    json_t *code = json_object_get(j, "code");
    if (!json_is_object(j) || !json_is_integer(code) ||
        !json_is_string(json_object_get(j, "msg")) ||
        (json_integer_value(code) == 0) != (out.status == 200) ||
        (out.status != 200 &&
         cx_http_code_status((int)json_integer_value(code)) != out.status))
      abort();
    json_decref(j);
  }
  cx_http_output_free(&out);
  for (size_t i = 0; i < nh; i++)
    free(lines[i]);
  free(method);
  free(target);
  return 0;
}
