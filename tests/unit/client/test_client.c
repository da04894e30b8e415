/*
 * The API client against a local libmicrohttpd server playing the admin:
 * the envelope decoded with its HTTP status, the token and body sent, and
 * every way a call can fail sorted into the CLI's exit codes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "client/client.h"
#include "support/services.h"
#include "support/test.h"
#include "util/util.h"

struct server {
  struct MHD_Daemon *d;
  int port;
};

struct conn {
  struct cx_buf body;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *text)
{
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* /echo answers what it got: method, Authorization, body, query "q". */
static enum MHD_Result echo(struct MHD_Connection *c, const char *method,
                            struct conn *cn)
{
  const char *auth =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q");
  json_t *o =
      json_pack("{s:i, s:s, s:{s:s, s:s, s:s, s:s}}", "code", 0, "msg", "ok",
                "data", "method", method, "auth", auth ? auth : "", "body",
                cn->body.data ? cn->body.data : "", "q", q ? q : "");
  char *text = json_dumps(o, JSON_COMPACT);
  enum MHD_Result r = reply(c, 200, text);
  free(text);
  json_decref(o);
  return r;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
  (void)cls;
  (void)version;
  struct conn *cn = *con_cls;
  if (cn == NULL) {
    cn = cx_calloc(1, sizeof *cn);
    *con_cls = cn;
    return MHD_YES;
  }
  if (*upload_size > 0) {
    cx_buf_append(&cn->body, upload, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(url, "/echo") == 0)
    return echo(c, method, cn);
  if (strcmp(url, "/refuse") == 0)
    return reply(c, 400,
                 "{\"code\":1001,\"msg\":\"timeout: must be 0..2678400\","
                 "\"field\":\"timeout\"}");
  if (strcmp(url, "/conflict") == 0)
    return reply(c, 409, "{\"code\":1202,\"msg\":\"name taken\"}");
  if (strcmp(url, "/html") == 0)
    return reply(c, 502, "<html><body>Bad Gateway</body></html>");
  if (strcmp(url, "/nocode") == 0)
    return reply(c, 200, "{\"data\":1}");
  if (strcmp(url, "/slow") == 0) {
    cx_sleep_us(3000000);
    return reply(c, 200, "{\"code\":0,\"msg\":\"ok\",\"data\":null}");
  }
  if (strcmp(url, "/redirect") == 0) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Location", "/echo");
    enum MHD_Result ret = MHD_queue_response(c, 302, r);
    MHD_destroy_response(r);
    return ret;
  }
  return reply(c, 404, "{\"code\":1204,\"msg\":\"no such route\"}");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode code)
{
  (void)cls;
  (void)c;
  (void)code;
  struct conn *cn = *con_cls;
  if (cn != NULL) {
    cx_buf_free(&cn->body);
    cx_free(cn);
  }
  *con_cls = NULL;
}

static void server_start(struct server *s)
{
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  memset(s, 0, sizeof *s);
  s->d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
      NULL, handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
  ASSERT(s->d != NULL);
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  ASSERT(info != NULL && info->port > 0);
  s->port = info->port;
}

static struct cx_client *client_for(int port, const char *token,
                                    long timeout_ms)
{
  char url[64], err[CX_ERR_LEN] = "";
  struct cx_client *c = NULL;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  struct cx_client_conf conf = {
      .server = url, .token = token, .timeout_ms = timeout_ms};
  ASSERT_MSG(cx_client_create(&conf, &c, err) == CX_CLIENT_OK, "%s", err);
  return c;
}

TEST(client_post_sends_token_and_body_and_decodes_data)
{
  struct server s;
  struct cx_client_result r;
  server_start(&s);
  struct cx_client *c = client_for(s.port, "t0k3n", 0);
  json_t *body = json_pack("{s:i}", "job_id", 7);
  ASSERT_EQ(cx_client_call(c, "/echo", body, &r), CX_CLIENT_OK);
  ASSERT_EQ(r.http_status, 200);
  ASSERT_EQ(r.code, 0);
  ASSERT_STREQ(json_string_value(json_object_get(r.data, "method")), "POST");
  ASSERT_STREQ(json_string_value(json_object_get(r.data, "auth")),
               "Bearer t0k3n");
  ASSERT_STREQ(json_string_value(json_object_get(r.data, "body")),
               "{\"job_id\":7}");
  cx_client_result_free(&r);
  /* The same handle again, as a GET with an escaped query. */
  char path[128] = "/echo";
  ASSERT_EQ(cx_client_query(path, sizeof path, "q", "a b&c=d/é"), 0);
  ASSERT_STREQ(path, "/echo?q=a%20b%26c%3Dd%2F%C3%A9");
  ASSERT_EQ(cx_client_call(c, path, NULL, &r), CX_CLIENT_OK);
  ASSERT_STREQ(json_string_value(json_object_get(r.data, "method")), "GET");
  ASSERT_STREQ(json_string_value(json_object_get(r.data, "q")), "a b&c=d/é");
  cx_client_result_free(&r);
  json_decref(body);
  cx_client_destroy(c);
  MHD_stop_daemon(s.d);
}

TEST(client_error_envelope_is_refused_with_msg_field_and_status)
{
  struct server s;
  struct cx_client_result r;
  server_start(&s);
  struct cx_client *c = client_for(s.port, NULL, 0);
  ASSERT_EQ(cx_client_call(c, "/refuse", NULL, &r), CX_CLIENT_REFUSED);
  ASSERT_EQ(r.http_status, 400);
  ASSERT_EQ(r.code, 1001);
  ASSERT_STREQ(r.msg, "timeout: must be 0..2678400");
  ASSERT_STREQ(r.field, "timeout");
  cx_client_result_free(&r);
  ASSERT_EQ(cx_client_call(c, "/conflict", NULL, &r), CX_CLIENT_REFUSED);
  ASSERT_EQ(r.http_status, 409);
  ASSERT_EQ(r.code, 1202);
  ASSERT_STREQ(r.field, "");
  cx_client_result_free(&r);
  ASSERT_EQ(cx_client_call(c, "/nowhere", NULL, &r), CX_CLIENT_REFUSED);
  ASSERT_EQ(r.code, 1204);
  cx_client_result_free(&r);
  cx_client_destroy(c);
  MHD_stop_daemon(s.d);
}

TEST(client_reply_that_is_not_the_api_is_unreachable)
{
  struct server s;
  struct cx_client_result r;
  server_start(&s);
  struct cx_client *c = client_for(s.port, "x", 0);
  ASSERT_EQ(cx_client_call(c, "/html", NULL, &r), CX_CLIENT_UNREACHABLE);
  ASSERT_EQ(r.http_status, 502);
  ASSERT_CONTAINS(r.msg, "not the Cronix API");
  cx_client_result_free(&r);
  ASSERT_EQ(cx_client_call(c, "/nocode", NULL, &r), CX_CLIENT_UNREACHABLE);
  cx_client_result_free(&r);
  /* A redirect is not followed (the token would go along): unreachable. */
  ASSERT_EQ(cx_client_call(c, "/redirect", NULL, &r), CX_CLIENT_UNREACHABLE);
  ASSERT_EQ(r.http_status, 302);
  cx_client_result_free(&r);
  cx_client_destroy(c);
  MHD_stop_daemon(s.d);
}

TEST(client_closed_port_and_timeout_are_unreachable)
{
  struct server s;
  struct cx_client_result r;
  char err[CX_ERR_LEN];
  int port = 0;
  ASSERT_EQ(cx_svc_port_alloc(&port, err), 0);
  struct cx_client *c = client_for(port, NULL, 0);
  ASSERT_EQ(cx_client_call(c, "/echo", NULL, &r), CX_CLIENT_UNREACHABLE);
  ASSERT_EQ(r.http_status, 0);
  ASSERT(r.msg[0] != '\0');
  cx_client_result_free(&r);
  cx_client_destroy(c);

  server_start(&s);
  c = client_for(s.port, NULL, 300);
  ASSERT_EQ(cx_client_call(c, "/slow", NULL, &r), CX_CLIENT_UNREACHABLE);
  ASSERT_CONTAINS(r.msg, "timed out");
  cx_client_result_free(&r);
  cx_client_destroy(c);
  MHD_stop_daemon(s.d);
}

TEST(client_bad_conf_is_usage)
{
  struct cx_client *c = (struct cx_client *)1;
  char err[CX_ERR_LEN];
  const char *bad[] = {"",          "127.0.0.1:8089", "ftp://x",    "http://",
                       "http:///x", "http://h/?q=1",  "http://h #x"};
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    struct cx_client_conf conf = {.server = bad[i]};
    ASSERT_MSG(cx_client_create(&conf, &c, err) == CX_CLIENT_USAGE, "%s",
               bad[i]);
    ASSERT(c == NULL);
    ASSERT_CONTAINS(err, "server");
  }
  struct cx_client_conf conf = {.server = "http://h", .token = "a b"};
  ASSERT_EQ(cx_client_create(&conf, &c, err), CX_CLIENT_USAGE);
  ASSERT_CONTAINS(err, "token");
  char small[12] = "/x";
  ASSERT_EQ(cx_client_query(small, sizeof small, "name", "long value"),
            -ENOSPC);
  ASSERT_STREQ(small, "/x");
}
