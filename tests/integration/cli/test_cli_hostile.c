/*
 * The client against a fake admin (libmicrohttpd in the test) whose
 * replies are well-formed envelopes with hostile values: extreme times
 * and counts, wrong types, control characters. The commands must print
 * something sane and exit 0, never crash (the sanitizer build aborts on
 * signed overflow).
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "support/test.h"

static const char node_reply[] =
    "{\"code\":0,\"msg\":\"ok\",\"data\":{\"total\":2,\"list\":["
    "{\"uuid\":\"u1\",\"hostname\":\"h\\u001b[2J\",\"alive\":true,"
    "\"up\":-9223372036854775808,\"job_count\":9223372036854775807},"
    "{\"uuid\":7,\"alive\":false,\"down\":9223372036854775807}]}}";
static const char log_reply[] =
    "{\"code\":0,\"msg\":\"ok\",\"data\":{\"total\":2,\"list\":["
    "{\"id\":1,\"start_time\":-9223372036854775808,"
    "\"end_time\":9223372036854775807,\"status\":\"failed\"},"
    "{\"id\":2,\"start_time\":9223372036854775807,\"end_time\":1,"
    "\"status\":[],\"output\":\"\"}]}}";
static const char job_reply[] =
    "{\"code\":0,\"msg\":\"ok\",\"data\":{\"total\":1,\"list\":["
    "{\"id\":1,\"name\":\"j\",\"spec\":\"@every 1s\",\"enabled\":true,"
    "\"created\":-9223372036854775808,\"timezone\":\"../../etc\"}]}}";

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
  (void)cls;
  (void)method;
  (void)version;
  (void)upload;
  if (*con_cls == NULL) {
    *con_cls = c;
    return MHD_YES;
  }
  if (*upload_size > 0) {
    *upload_size = 0;
    return MHD_YES;
  }
  const char *text = strcmp(url, "/node/search") == 0 ? node_reply
                     : strcmp(url, "/job/log") == 0   ? log_reply
                                                      : job_reply;
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ret;
}

TEST(cli_client_survives_hostile_values_from_the_server)
{
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct MHD_Daemon *d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
      NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_END);
  ASSERT(d != NULL);
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", info->port);
  setenv("HOME", cx_test_tmpdir(), 1);
  cli_expect(CRONIX("node", "ls", "--server", url, "-o", "wide"), 0, "u1",
             NULL);
  cli_expect(CRONIX("job", "logs", "1", "--server", url), 0, "RUN", NULL);
  cli_expect(CRONIX("job", "ls", "--server", url, "-o", "wide"), 0, "@every",
             NULL);
  MHD_stop_daemon(d);
}
