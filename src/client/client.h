/*
 * client: the admin API as the `cronix` command line calls it (libcurl +
 * jansson). One handle holds the server's base URL, the bearer token, the
 * TLS CA file and the timeouts, and keeps its connection between calls.
 *
 * Every reply of the API is the envelope {"code","msg","data","field"}
 * (docs/api.md); a call decodes it into a cx_client_result together with
 * the HTTP status, and sorts the outcome into the command line's exit
 * codes:
 *
 *   CX_CLIENT_OK           HTTP 2xx and code 0: data holds the reply
 *   CX_CLIENT_REFUSED      the server answered with an error envelope
 *                          (msg and field say why)
 *   CX_CLIENT_USAGE        the caller's input could not make a request
 *                          (a bad URL, a path that is not "/...")
 *   CX_CLIENT_UNREACHABLE  no answer, or an answer that is not the API's
 *                          envelope (a proxy's HTML page, a cut reply):
 *                          msg says what happened
 */
#ifndef CX_CLIENT_H
#define CX_CLIENT_H

#include <jansson.h>
#include <stddef.h>

enum cx_client_outcome {
  CX_CLIENT_OK = 0,
  CX_CLIENT_REFUSED = 1,
  CX_CLIENT_USAGE = 2,
  CX_CLIENT_UNREACHABLE = 3,
};

/* Replies larger than this are refused as unreachable (a paged list of
 * 500 jobs at their largest fits). */
#define CX_CLIENT_MAX_REPLY (256u * 1024 * 1024)

struct cx_client_conf {
  const char *server;      /* http://host:port or https://..., required */
  const char *token;       /* bearer token; NULL or "" sends none */
  const char *cacert;      /* PEM CA file for https; NULL = system store */
  long connect_timeout_ms; /* 0 = 10 s */
  long timeout_ms;         /* whole call; 0 = 60 s */
};

struct cx_client;

struct cx_client_result {
  long http_status; /* 0 when no reply came */
  long code;        /* the envelope's code (0 = ok) */
  char msg[1024];   /* the envelope's msg, or what went wrong */
  char field[256];  /* the envelope's field, "" when none */
  json_t *data;     /* owned: the envelope's data (NULL when absent) */
};

/* Checks conf (the server must be an http:// or https:// URL without a
 * query or fragment) and creates a handle; strings are copied. Returns
 * CX_CLIENT_OK, CX_CLIENT_USAGE (err says why) or -ENOMEM. */
int cx_client_create(const struct cx_client_conf *conf, struct cx_client **out,
                     char *err);
void cx_client_destroy(struct cx_client *c);

/* One call: body NULL = GET path (path may carry a query built with
 * cx_client_query), else POST path with body as JSON (borrowed). Fills r
 * (free with cx_client_result_free) and returns its outcome. */
int cx_client_call(struct cx_client *c, const char *path, const json_t *body,
                   struct cx_client_result *r);
void cx_client_result_free(struct cx_client_result *r);

/* Appends "name=value" to a path, %-escaping the value, with '?' or '&'
 * as needed. Returns 0 or -ENOSPC when it does not fit in cap. */
int cx_client_query(char *path, size_t cap, const char *name,
                    const char *value);

#endif
