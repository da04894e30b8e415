/* webui: the console's routes through the HTTP pipeline in memory --
 * redirects, the shell's relative base, assets with gzip / ETag / cache,
 * the security headers, and a web root that serves no file outside it. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "support/test.h"
#include "webui/webui.h"

static struct cx_http *server(const char *root)
{
  struct cx_http *h = NULL;
  char err[CX_ERR_LEN];
  ASSERT(cx_http_create(NULL, &h, err) == 0);
  ASSERT(cx_webui_register(h, root) == 0);
  return h;
}

static void get(struct cx_http *h, const char *uri, const char *hname,
                const char *hvalue, struct cx_http_output *out)
{
  struct cx_http_header hd[] = {{hname, hvalue}};
  struct cx_http_input in = {"GET", uri, hd, hname ? 1 : 0, NULL, 0, NULL};
  ASSERT_EQ(cx_http_dispatch(h, &in, out), 0);
}

static const char *header(const struct cx_http_output *o, const char *name)
{
  for (size_t i = 0; i < o->n_headers; i++)
    if (strcasecmp(o->headers[i].name, name) == 0)
      return o->headers[i].value;
  return NULL;
}

/* The assets folder the shell names, e.g. "assets/0123abcd/". */
static void assets_dir(const char *shell, char *dir, size_t len)
{
  const char *p = strstr(shell, "assets/");
  ASSERT(p != NULL);
  const char *end = strchr(p + strlen("assets/"), '/');
  ASSERT(end != NULL);
  snprintf(dir, len, "%.*s", (int)(end + 1 - p), p);
}

TEST(webui_redirects_to_ui_relative)
{
  struct cx_http *h = server(NULL);
  struct cx_http_output o;
  static const char *const uris[] = {"/", "/ui"};
  for (size_t i = 0; i < 2; i++) {
    get(h, uris[i], NULL, NULL, &o);
    ASSERT_EQ(o.status, 302);
    ASSERT_STREQ(header(&o, "Location"), "ui/");
    cx_http_output_free(&o);
  }
  cx_http_destroy(h);
}

TEST(webui_shell_for_every_page_with_relative_base_and_csp)
{
  struct cx_http *h = server(NULL);
  struct cx_http_output o;
  static const struct {
    const char *uri, *base;
  } pages[] = {
      {"/ui/", "<base href=\"./\">"},
      {"/ui/jobs", "<base href=\"./\">"},
      {"/ui/jobs/12", "<base href=\"../\">"},
      {"/ui/jobs/?page=2", "<base href=\"../\">"},
      {"/ui/runs/7/x", "<base href=\"../../\">"},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(pages); i++) {
    get(h, pages[i].uri, NULL, NULL, &o);
    ASSERT_EQ(o.status, 200);
    ASSERT_STREQ(o.content_type, "text/html; charset=utf-8");
    ASSERT_CONTAINS(o.body, pages[i].base);
    ASSERT(strstr(o.body, "__BASE__") == NULL &&
           strstr(o.body, "__ASSETS__") == NULL);
    ASSERT_STREQ(header(&o, "Cache-Control"), "no-cache");
    const char *csp = header(&o, "Content-Security-Policy");
    ASSERT(csp != NULL);
    ASSERT_CONTAINS(csp, "script-src 'self'");
    ASSERT_CONTAINS(csp, "frame-ancestors 'none'");
    ASSERT(strstr(csp, "unsafe") == NULL);
    ASSERT_STREQ(header(&o, "X-Content-Type-Options"), "nosniff");
    cx_http_output_free(&o);
  }
  /* The API is not shadowed: only /ui/... is the console's. */
  get(h, "/job/find", NULL, NULL, &o);
  ASSERT_EQ(o.status, 404);
  cx_http_output_free(&o);
  cx_http_destroy(h);
}

TEST(webui_assets_gzip_etag_and_long_cache)
{
  struct cx_http *h = server(NULL);
  struct cx_http_output o;
  char dir[64], uri[128];
  get(h, "/ui/", NULL, NULL, &o);
  assets_dir(o.body, dir, sizeof dir);
  cx_http_output_free(&o);

  snprintf(uri, sizeof uri, "/ui/%sapp.js", dir);
  get(h, uri, NULL, NULL, &o); /* no Accept-Encoding: the raw file */
  ASSERT_EQ(o.status, 200);
  ASSERT_STREQ(o.content_type, "text/javascript; charset=utf-8");
  ASSERT(header(&o, "Content-Encoding") == NULL);
  ASSERT_CONTAINS(o.body, "import");
  ASSERT_STREQ(header(&o, "Cache-Control"),
               "public, max-age=31536000, immutable");
  char etag[64];
  snprintf(etag, sizeof etag, "%s", header(&o, "ETag"));
  ASSERT(etag[0] == '"');
  size_t raw = o.body_len;
  cx_http_output_free(&o);

  get(h, uri, "Accept-Encoding", "gzip, deflate, br", &o);
  ASSERT_EQ(o.status, 200);
  ASSERT_STREQ(header(&o, "Content-Encoding"), "gzip");
  ASSERT(o.body_len > 2 && o.body_len < raw &&
         (unsigned char)o.body[0] == 0x1f && (unsigned char)o.body[1] == 0x8b);
  cx_http_output_free(&o);

  get(h, uri, "If-None-Match", etag, &o);
  ASSERT_EQ(o.status, 304);
  ASSERT_EQ(o.body_len, 0);
  cx_http_output_free(&o);

  /* An old version's URL still works but is not cached for a year. */
  get(h, "/ui/assets/000000000000/app.js", NULL, NULL, &o);
  ASSERT_EQ(o.status, 200);
  ASSERT_STREQ(header(&o, "Cache-Control"), "no-cache");
  cx_http_output_free(&o);

  static const char *const missing[] = {"/ui/assets/x/none.js", "/ui/assets/x",
                                        "/ui/assets/x/index.html",
                                        "/ui/assets/x/../app.js"};
  for (size_t i = 0; i < CX_ARRAY_LEN(missing); i++) {
    get(h, missing[i], NULL, NULL, &o);
    ASSERT_MSG(o.status == 404, "%s: %d", missing[i], o.status);
    cx_http_output_free(&o);
  }
  ASSERT(cx_webui_gzip_total() > 0);
  cx_http_destroy(h);
}

static void put(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  ASSERT(f != NULL);
  fputs(text, f);
  fclose(f);
}

TEST(webui_web_root_serves_only_files_inside_it)
{
  char root[512], p[600];
  snprintf(root, sizeof root, "%s/web", cx_test_tmpdir());
  ASSERT(mkdir(root, 0755) == 0);
  snprintf(p, sizeof p, "%s/index.html", root);
  put(p, "<base href=\"__BASE__\"><script src=\"__ASSETS__a.js\"></script>");
  snprintf(p, sizeof p, "%s/a.js", root);
  put(p, "export const a = 1;\n");
  snprintf(p, sizeof p, "%s/.secret", root);
  put(p, "hidden");
  snprintf(p, sizeof p, "%s/outside.txt", cx_test_tmpdir());
  put(p, "outside");

  struct cx_http *h = server(root);
  struct cx_http_output o;
  get(h, "/ui/jobs/3", NULL, NULL, &o);
  ASSERT_EQ(o.status, 200);
  ASSERT_STREQ(o.body,
               "<base href=\"../\"><script src=\"assets/dev/a.js\"></script>");
  cx_http_output_free(&o);
  get(h, "/ui/assets/dev/a.js", NULL, NULL, &o);
  ASSERT_EQ(o.status, 200);
  ASSERT_STREQ(o.body, "export const a = 1;\n");
  ASSERT_STREQ(header(&o, "Cache-Control"), "no-cache");
  cx_http_output_free(&o);
  static const char *const refused[] = {
      "/ui/assets/dev/../outside.txt", "/ui/assets/dev/.secret",
      "/ui/assets/dev//a.js",          "/ui/assets/dev/%2e%2e/outside.txt",
      "/ui/assets/dev/sub/../a.js",    "/ui/assets/dev/",
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(refused); i++) {
    get(h, refused[i], NULL, NULL, &o);
    ASSERT_MSG(o.status == 404, "%s: %d", refused[i], o.status);
    cx_http_output_free(&o);
  }
  cx_http_destroy(h);
}

static void h_openapi(struct cx_http_req *req, void *ctx)
{
  (void)ctx;
  cx_webui_reply_openapi(req);
}

TEST(webui_openapi_document_with_etag_and_gzip)
{
  /* cx_webui_reply_openapi: docs/openapi.json as built in. */
  struct cx_http *h = server(NULL);
  ASSERT(cx_http_route(h, "GET", "/openapi.json", CX_HTTP_F_PUBLIC, h_openapi,
                       NULL) == 0);
  struct cx_http_output o;
  get(h, "/openapi.json", NULL, NULL, &o);
  ASSERT_EQ(o.status, 200);
  ASSERT_STREQ(o.content_type, "application/json; charset=utf-8");
  ASSERT_CONTAINS(o.body, "\"openapi\": \"3.1.0\"");
  ASSERT_STREQ(header(&o, "Cache-Control"), "no-cache");
  char etag[64];
  snprintf(etag, sizeof etag, "%s", header(&o, "ETag"));
  ASSERT(etag[0] == '"');
  cx_http_output_free(&o);
  get(h, "/openapi.json", "If-None-Match", etag, &o);
  ASSERT_EQ(o.status, 304);
  cx_http_output_free(&o);
  get(h, "/openapi.json", "Accept-Encoding", "gzip", &o);
  ASSERT_EQ(o.status, 200);
  ASSERT_STREQ(header(&o, "Content-Encoding"), "gzip");
  cx_http_output_free(&o);
  cx_http_destroy(h);
}
