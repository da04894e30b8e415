/*
 * The console's routes (webui.h). The built-in assets come from the table
 * gen/embed.c generates; with a web root the same names are read from disk.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "webui/assets.h"
#include "webui/webui.h"

#define MAX_FILE (8 * 1024 * 1024) /* bytes of one file under a web root */
#define SHELL "index.html"
#define OPENAPI "openapi.json" /* docs/openapi.json, named by the Makefile */
#define ASSETS_DIR "assets/"

static const char k_csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

static int secure_headers(struct cx_http_req *req, const char *cache)
{
  if (cx_http_reply_header(req, "Content-Security-Policy", k_csp) != 0 ||
      cx_http_reply_header(req, "X-Content-Type-Options", "nosniff") != 0 ||
      cx_http_reply_header(req, "Referrer-Policy", "no-referrer") != 0 ||
      cx_http_reply_header(req, "Cache-Control", cache) != 0)
    return -1;
  return 0;
}

static const char *content_type(const char *path)
{
  static const struct {
    const char *ext, *type;
  } types[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".json", "application/json; charset=utf-8"},
      {".ico", "image/x-icon"},
  };
  const char *dot = strrchr(path, '.');
  for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
    if (strcmp(dot, types[i].ext) == 0)
      return types[i].type;
  return "application/octet-stream";
}

static void reply_text(struct cx_http_req *req, int status, const char *msg)
{
  secure_headers(req, "no-store");
  cx_http_reply_raw(req, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

static const struct cx__webui_asset *asset_find(const char *path)
{
  for (size_t i = 0; i < cx__webui_n_assets; i++)
    if (strcmp(cx__webui_assets[i].path, path) == 0)
      return &cx__webui_assets[i];
  return NULL;
}

/* A file name under a web root: letters, digits, '.', '_', '-' and single
 * '/' between names; no "..", no hidden files. */
static int safe_rel(const char *p)
{
  if (p[0] == '\0' || p[0] == '/')
    return 0;
  for (const char *s = p; *s; s++) {
    char c = *s;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
             c == '/';
    if (!ok || (c == '/' && (s[1] == '/' || s[1] == '\0')) ||
        (c == '.' && (s == p || s[-1] == '/')))
      return 0;
  }
  return 1;
}

/* Reads root/rel whole (at most MAX_FILE bytes); NULL when it cannot. */
static char *read_file(const char *root, const char *rel, size_t *len)
{
  char path[4096];
  if (!safe_rel(rel) ||
      snprintf(path, sizeof path, "%s/%s", root, rel) >= (int)sizeof path)
    return NULL;
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  struct cx_buf b = {0};
  char chunk[16384];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= MAX_FILE)
    cx_buf_append(&b, chunk, n);
  int bad = ferror(f) || b.len > MAX_FILE || cx_buf_failed(&b);
  fclose(f);
  if (bad || b.data == NULL) {
    cx_buf_free(&b);
    return NULL;
  }
  *len = b.len;
  return b.data;
}

static int accepts_gzip(struct cx_http_req *req)
{
  const char *ae = cx_http_req_header(req, "Accept-Encoding");
  return ae != NULL && strstr(ae, "gzip") != NULL &&
         strstr(ae, "gzip;q=0") == NULL;
}

/* The shell for a page at depth `depth` below /ui/: index.html with
 * __BASE__ -> "./" or "../" repeated, __ASSETS__ -> the assets' folder. */
static void reply_shell(struct cx_http_req *req, const char *root,
                        const char *rel)
{
  size_t len = 0;
  char *own = NULL;
  const char *src;
  if (root != NULL) {
    src = own = read_file(root, SHELL, &len);
  } else {
    const struct cx__webui_asset *a = asset_find(SHELL);
    src = a ? (const char *)a->raw : NULL;
    len = a ? a->raw_len : 0;
  }
  if (src == NULL) {
    reply_text(req, 500, "the console's index.html is missing\n");
    return;
  }
  char base[3 * 32 + 3] = "./";
  size_t depth = 0, bl = 0;
  for (const char *s = rel; *s; s++)
    depth += *s == '/';
  if (depth > 32) {
    cx_free(own);
    reply_text(req, 404, "no such page\n");
    return;
  }
  for (size_t i = 0; i < depth; i++, bl += 3)
    memcpy(base + bl, "../", 4);
  char assets[64];
  snprintf(assets, sizeof assets, ASSETS_DIR "%s/",
           root ? "dev" : cx__webui_version);
  struct cx_buf out = {0};
  for (size_t i = 0; i < len;) {
    if (len - i >= 8 && memcmp(src + i, "__BASE__", 8) == 0) {
      cx_buf_append(&out, base, strlen(base));
      i += 8;
    } else if (len - i >= 10 && memcmp(src + i, "__ASSETS__", 10) == 0) {
      cx_buf_append(&out, assets, strlen(assets));
      i += 10;
    } else {
      cx_buf_append(&out, src + i, 1);
      i++;
    }
  }
  cx_free(own);
  if (out.data == NULL || cx_buf_failed(&out)) {
    reply_text(req, 500, "out of memory\n");
    return;
  }
  secure_headers(req, "no-cache");
  cx_http_reply_raw(req, 200, content_type(SHELL), out.data, out.len);
  cx_buf_free(&out);
}

/* One built-in asset with the given Cache-Control: ETag and
 * If-None-Match -> 304, gzipped when the client takes it. */
static void reply_builtin(struct cx_http_req *req,
                          const struct cx__webui_asset *a, const char *cache)
{
  secure_headers(req, cache);
  cx_http_reply_header(req, "ETag", a->etag);
  cx_http_reply_header(req, "Vary", "Accept-Encoding");
  const char *inm = cx_http_req_header(req, "If-None-Match");
  if (inm != NULL && strcmp(inm, a->etag) == 0) {
    cx_http_reply_raw(req, 304, content_type(a->path), "", 0);
    return;
  }
  if (accepts_gzip(req)) {
    cx_http_reply_header(req, "Content-Encoding", "gzip");
    cx_http_reply_raw(req, 200, content_type(a->path), a->gz, a->gz_len);
  } else {
    cx_http_reply_raw(req, 200, content_type(a->path), a->raw, a->raw_len);
  }
}

static void reply_asset(struct cx_http_req *req, const char *root,
                        const char *rel)
{
  /* rel = "<version>/<file>" */
  const char *slash = strchr(rel, '/');
  if (slash == NULL) {
    reply_text(req, 404, "no such asset\n");
    return;
  }
  const char *file = slash + 1;
  if (root != NULL) {
    size_t len;
    char *data = read_file(root, file, &len);
    if (data == NULL) {
      reply_text(req, 404, "no such asset\n");
      return;
    }
    secure_headers(req, "no-cache");
    cx_http_reply_raw(req, 200, content_type(file), data, len);
    cx_free(data);
    return;
  }
  const struct cx__webui_asset *a = asset_find(file);
  if (a == NULL || strcmp(file, SHELL) == 0) {
    reply_text(req, 404, "no such asset\n");
    return;
  }
  /* An old version's URL gets today's file, but not for a year. */
  size_t vl = (size_t)(slash - rel);
  int current = vl == strlen(cx__webui_version) &&
                memcmp(rel, cx__webui_version, vl) == 0;
  reply_builtin(req, a,
                current ? "public, max-age=31536000, immutable" : "no-cache");
}

void cx_webui_reply_openapi(struct cx_http_req *req)
{
  const struct cx__webui_asset *a = asset_find(OPENAPI);
  if (a == NULL) {
    reply_text(req, 500, "the API description is missing\n");
    return;
  }
  reply_builtin(req, a, "no-cache");
}

static void h_ui(struct cx_http_req *req, void *ctx)
{
  const char *root = ctx;
  const char *rel = cx_http_req_path(req) + strlen("/ui/");
  if (strncmp(rel, ASSETS_DIR, strlen(ASSETS_DIR)) == 0)
    reply_asset(req, root, rel + strlen(ASSETS_DIR));
  else
    reply_shell(req, root, rel);
}

/* "/" and "/ui": to ui/ relative to where the client stands. */
static void h_redirect(struct cx_http_req *req, void *ctx)
{
  (void)ctx;
  secure_headers(req, "no-cache");
  cx_http_reply_header(req, "Location", "ui/");
  cx_http_reply_raw(req, 302, "text/plain; charset=utf-8", "", 0);
}

int cx_webui_register(struct cx_http *h, const char *web_root)
{
  void *root = (void *)(uintptr_t)web_root; /* read only by the handlers */
  int rc;
  if ((rc = cx_http_route(h, "GET", "/", CX_HTTP_F_PUBLIC, h_redirect, NULL)) !=
          0 ||
      (rc = cx_http_route(h, "GET", "/ui", CX_HTTP_F_PUBLIC, h_redirect,
                          NULL)) != 0 ||
      (rc = cx_http_route(h, "GET", "/ui/", CX_HTTP_F_PUBLIC | CX_HTTP_F_PREFIX,
                          h_ui, root)) != 0)
    return rc;
  return 0;
}

size_t cx_webui_gzip_total(void)
{
  size_t n = 0;
  for (size_t i = 0; i < cx__webui_n_assets; i++)
    n += cx__webui_assets[i].gz_len;
  return n;
}
