/*
 * Internal to src/webui: the asset table gen/embed.c generates at build
 * time from web/ (build/.../gen/webui_assets.c).
 */
#ifndef CX_WEBUI_ASSETS_H
#define CX_WEBUI_ASSETS_H

#include <stddef.h>

struct cx__webui_asset {
  const char *path; /* relative to web/, e.g. "js/app.js" */
  const unsigned char *raw, *gz;
  size_t raw_len, gz_len;
  const char *etag; /* "\"<16 hex>\"": a hash of the contents */
};

extern const struct cx__webui_asset cx__webui_assets[];
extern const size_t cx__webui_n_assets;
/* A hash of every path and content: the assets' URL segment. */
extern const char cx__webui_version[];

#endif
