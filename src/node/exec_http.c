/*
 * node/exec: http attempts with libcurl (see exec.h). One easy handle per
 * attempt, driven through a multi handle so that curl_multi_poll() also
 * watches the attempt handle's eventfd: cx_exec_kill() aborts a transfer
 * at once instead of at the next progress callback. Only http and https
 * are allowed, also for redirects; sockets are made close-on-exec so a
 * concurrently spawned job never inherits one. Proxies follow libcurl's
 * usual environment variables (http_proxy, no_proxy, ...).
 */
#include "node/exec-int.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
  curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* RFC 9110 token characters. */
static int header_name_ok(const char *s)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL)
      continue;
    return 0;
  }
  return 1;
}

static const char *const methods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                      "PATCH", "DELETE", "OPTIONS"};

static int http_check(const struct cx_exec_http *req, const char **method,
                      struct cx_exec_result *res, char *err)
{
  size_t n;

  if (req == NULL || req->url == NULL)
    return cx__exec_fail(res, err, CX_EPARSE, "url: missing");
  n = strnlen(req->url, CX_EXEC_URL_MAX + 1);
  if (n > CX_EXEC_URL_MAX)
    return cx__exec_fail(res, err, CX_ETOOBIG, "url: longer than %d bytes",
                         CX_EXEC_URL_MAX);
  if (strncasecmp(req->url, "http://", 7) != 0 &&
      strncasecmp(req->url, "https://", 8) != 0) {
    char shown[256];
    cx_url_redact(req->url, 0, shown, sizeof shown);
    return cx__exec_fail(res, err, CX_EPARSE,
                         "url \"%s\": only http:// and https:// are allowed",
                         shown);
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)req->url[i];
    if (c <= 0x20 || c == 0x7f)
      return cx__exec_fail(res, err, CX_EPARSE,
                           "url: space or control character at byte %zu", i);
  }
  *method = NULL;
  const char *m = req->method && req->method[0] ? req->method : "GET";
  for (size_t i = 0; i < CX_ARRAY_LEN(methods); i++)
    if (strcmp(m, methods[i]) == 0)
      *method = methods[i];
  if (*method == NULL)
    return cx__exec_fail(res, err, CX_EPARSE,
                         "http_method \"%.32s\": not one of GET HEAD POST PUT "
                         "PATCH DELETE OPTIONS",
                         m);
  if (req->body_len > CX_EXEC_BODY_MAX)
    return cx__exec_fail(res, err, CX_ETOOBIG,
                         "http_body: longer than %d bytes", CX_EXEC_BODY_MAX);
  if (req->body_len > 0 && req->body == NULL)
    return cx__exec_fail(res, err, CX_EPARSE, "http_body: missing");
  if (req->timeout_ms < 0)
    return cx__exec_fail(res, err, CX_EPARSE, "timeout: negative");
  return cx__exec_kv_check(req->headers, req->nheaders, CX_EXEC_HEADERS_MAX,
                           CX_EXEC_HEADER_NAME_MAX, CX_EXEC_HEADER_VALUE_MAX,
                           header_name_ok, 1, "http_headers", res, err);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
  cx__capture_add(ud, p, size * nmemb);
  return size * nmemb;
}

static curl_socket_t open_socket(void *ud, curlsocktype purpose,
                                 struct curl_sockaddr *a)
{
  (void)ud;
  (void)purpose;
  int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* "Name: value", or "Name;" for an empty value (curl's way of sending an
 * empty header; "Name:" would remove it). */
static struct curl_slist *headers_build(const struct cx_exec_http *req,
                                        int *oom)
{
  struct curl_slist *list = NULL, *t;
  int has_expect = 0;

  *oom = 0;
  for (size_t i = 0; i <= req->nheaders; i++) {
    struct cx_buf b = {0};
    if (i < req->nheaders) {
      const struct cx_exec_kv *h = &req->headers[i];
      has_expect |= strcasecmp(h->name, "Expect") == 0;
      if (h->value[0] == '\0')
        cx_buf_printf(&b, "%s;", h->name);
      else
        cx_buf_printf(&b, "%s: %s", h->name, h->value);
    } else if (!has_expect) {
      cx_buf_puts(&b, "Expect:"); /* no 100-continue round trip */
    } else {
      break;
    }
    t = cx_buf_failed(&b) ? NULL : curl_slist_append(list, b.data);
    cx_buf_free(&b);
    if (t == NULL) {
      curl_slist_free_all(list);
      *oom = 1;
      return NULL;
    }
    list = t;
  }
  return list;
}

static int setup(CURL *e, const struct cx_exec_opts *opts,
                 const struct cx_exec_http *req, const char *method,
                 struct curl_slist *hdrs, struct cx__capture *cap, char *errbuf)
{
  int64_t max_ms = opts && opts->http_max_ms > 0 ? opts->http_max_ms
                                                 : CX_EXEC_HTTP_MAX_DEFAULT_MS;
  int64_t t = req->timeout_ms > 0 ? req->timeout_ms : max_ms;
  int redirs = opts ? opts->http_max_redirects : 0;
  CURLcode c = CURLE_OK;

  if (redirs > CX_EXEC_HTTP_MAX_REDIRECTS)
    redirs = CX_EXEC_HTTP_MAX_REDIRECTS;
#define SET(opt, val)                                                          \
  do {                                                                         \
    if (c == CURLE_OK)                                                         \
      c = curl_easy_setopt(e, opt, val);                                       \
  } while (0)
  SET(CURLOPT_ERRORBUFFER, errbuf);
  SET(CURLOPT_URL, req->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, redirs > 0 ? 1L : 0L);
  SET(CURLOPT_MAXREDIRS, (long)redirs);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_TIMEOUT_MS, (long)t);
  SET(CURLOPT_USERAGENT, "cronix");
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, cap);
  SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
  SET(CURLOPT_HTTPHEADER, hdrs);
  if (strcmp(method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "GET") == 0 && req->body_len == 0) {
    SET(CURLOPT_HTTPGET, 1L);
  } else {
    if (strcmp(method, "POST") != 0)
      SET(CURLOPT_CUSTOMREQUEST, method);
    if (req->body_len > 0 || strcmp(method, "POST") == 0) {
      SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
      SET(CURLOPT_POSTFIELDS, req->body_len ? req->body : "");
    }
  }
#undef SET
  return c == CURLE_OK ? 0 : -1;
}

/* A transfer that ended in a libcurl error. Before any status arrived
 * (refused, DNS, TLS, reset, no reply) there is no answer to judge:
 * ERROR with exit_code -1. A timeout stays TIMEOUT; an error after the
 * status line (a body cut short) is FAILED with that status. The reason
 * is libcurl's detail, the system error when there is one, and the curl
 * code: "Failed to connect to ... : Connection refused (curl 7)". */
static void transfer_error(CURL *e, CURLcode cc, const char *errbuf, long code,
                           struct cx_exec_result *res)
{
  long os_errno = 0;
  char sysbuf[96];
  const char *sys = "", *sep = "";
  const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(cc);
  curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
  if (os_errno > 0 && os_errno < 4096) {
    sys = strerror_r((int)os_errno, sysbuf, sizeof sysbuf);
    if (strstr(detail, sys) == NULL)
      sep = ": ";
    else
      sys = "";
  }
  snprintf(res->error, sizeof res->error, "%.160s%s%.60s (curl %d)", detail,
           sep, sys, (int)cc);
  if (cc == CURLE_OPERATION_TIMEDOUT) {
    res->status = CX_EXEC_TIMEOUT;
  } else if (code > 0) {
    res->status = CX_EXEC_FAILED;
  } else {
    res->status = CX_EXEC_ERROR;
    res->exit_code = -1;
  }
}

int cx_exec_run_http(struct cx_exec *x, const struct cx_exec_opts *opts,
                     const struct cx_exec_http *req, struct cx_exec_result *res,
                     char *err)
{
  struct cx__capture cap = {0};
  struct curl_slist *hdrs = NULL;
  char errbuf[CURL_ERROR_SIZE] = "";
  const char *method = NULL;
  CURL *e = NULL;
  CURLM *m = NULL;
  CURLcode cc = CURLE_OK;
  int rc, oom, killed = 0, added = 0;

  rc = cx__exec_begin(x, res, err);
  if (rc < 0)
    return rc;
  rc = http_check(req, &method, res, err);
  if (rc < 0)
    goto out;
  if (atomic_load(&x->kill)) {
    res->status = CX_EXEC_KILLED;
    goto out;
  }
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK) {
    rc = cx__exec_fail(res, err, CX_EUNAVAIL, "libcurl init: %s",
                       curl_easy_strerror(curl_init_rc));
    goto out;
  }
  if (cx__capture_init(&cap, opts) < 0) {
    rc = cx__exec_fail(res, err, -ENOMEM, "out of memory");
    goto out;
  }
  hdrs = headers_build(req, &oom);
  if (oom) {
    rc = cx__exec_fail(res, err, -ENOMEM, "out of memory");
    goto out;
  }
  e = curl_easy_init();
  m = curl_multi_init();
  if (e == NULL || m == NULL ||
      setup(e, opts, req, method, hdrs, &cap, errbuf) < 0 ||
      curl_multi_add_handle(m, e) != CURLM_OK) {
    rc = cx__exec_fail(res, err, CX_EUNAVAIL, "libcurl setup failed");
    goto out;
  }
  added = 1;

  res->start_ms = cx_wall_ms();
  for (;;) {
    int running = 0;
    if (atomic_load(&x->kill)) {
      killed = 1;
      break;
    }
    CURLMcode mc = curl_multi_perform(m, &running);
    if (mc != CURLM_OK) {
      rc = cx__exec_fail(res, err, CX_EUNAVAIL, "libcurl: %s",
                         curl_multi_strerror(mc));
      goto out;
    }
    if (running == 0)
      break;
    struct curl_waitfd wfd = {.fd = x->wake_fd, .events = CURL_WAIT_POLLIN};
    mc = curl_multi_poll(m, &wfd, 1, 1000, NULL);
    if (mc != CURLM_OK) {
      rc = cx__exec_fail(res, err, CX_EUNAVAIL, "libcurl: %s",
                         curl_multi_strerror(mc));
      goto out;
    }
    if (wfd.revents)
      cx__exec_wake_drain(x);
  }
  if (!killed) {
    CURLMsg *msg;
    int left;
    cc = CURLE_FAILED_INIT;
    while ((msg = curl_multi_info_read(m, &left)) != NULL)
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == e)
        cc = msg->data.result;
  }
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  res->exit_code = (int)code;
  if (killed) {
    res->status = CX_EXEC_KILLED;
  } else if (cc == CURLE_OK) {
    res->status = code >= 200 && code <= 299 ? CX_EXEC_SUCCESS : CX_EXEC_FAILED;
  } else {
    transfer_error(e, cc, errbuf, code, res);
  }
  rc = 0;
out:
  if (added)
    curl_multi_remove_handle(m, e);
  if (m != NULL)
    curl_multi_cleanup(m);
  if (e != NULL)
    curl_easy_cleanup(e);
  curl_slist_free_all(hdrs);
  if (cap.buf != NULL)
    cx__capture_finish(&cap, res);
  res->end_ms = cx_wall_ms();
  cx__exec_end(x);
  return rc;
}
