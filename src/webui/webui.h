/*
 * webui: the web console (issue 16) -- the files of the top-level web/
 * folder, gzipped into the binary at build time (gen/embed.c writes them
 * as C arrays), served by the admin's HTTP server:
 *
 *   GET /, /ui        302 to ui/ (relative, so a sub-path proxy keeps its
 *                     prefix)
 *   GET /ui/assets/<version>/<file>
 *                     one asset; <version> is a hash of all assets, so the
 *                     names change with the contents and are cached for a
 *                     year ("immutable"); gzip when the client takes it;
 *                     ETag / If-None-Match -> 304
 *   GET /ui/<other>   the app shell (index.html) for every page URL, with a
 *                     <base> pointing back at /ui/ relatively (so links
 *                     and API calls stay relative behind a proxy);
 *                     no-cache
 *
 * and the API description docs/openapi.json, built in the same way
 * (cx_webui_reply_openapi; the admin routes GET /openapi.json to it).
 *
 * Every reply carries a strict Content-Security-Policy (scripts and styles
 * only from this origin, no inline script, frame-ancestors 'none'),
 * X-Content-Type-Options nosniff and Referrer-Policy no-referrer. The
 * routes are public: the assets hold no data; the API checks every call.
 */
#ifndef CX_WEBUI_H
#define CX_WEBUI_H

#include "http/http.h"

/* Registers the routes above on h (before cx_http_start). web_root NULL =
 * the built-in assets; else files are read from that directory on every
 * request (development: edit and reload; never cached). Returns 0 or
 * cx_http_route's error. The string is borrowed and must outlive h. */
int cx_webui_register(struct cx_http *h, const char *web_root);

/* Replies with the API description (docs/openapi.json, built in like the
 * assets; application/json, ETag, gzip when taken). The admin serves it
 * at GET /openapi.json. */
void cx_webui_reply_openapi(struct cx_http_req *req);

/* Total bytes of the built-in assets, gzipped (the bench prints it). */
size_t cx_webui_gzip_total(void);

#endif
