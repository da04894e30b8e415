/*
 * The admin's copy of a remote run's live output (issue 15, cluster).
 *
 * For a run running on another node, the first follower makes a mirror (a
 * live output in the admin's own table, same offsets as the node's) and a
 * fetcher thread that long-polls the node's listener (node.listen, its URL
 * in the node key's "live") with cluster.secret, appending what comes
 * into the mirror. Every follower of the run in this admin then reads the
 * mirror: one node connection per followed run, however many followers.
 * The fetcher ends the mirror with the run's end, or with status "lost"
 * when the node's key is gone (its lease expired: SIGKILL, crash,
 * partition) or the node no longer knows a run the store says is running
 * (it restarted). Admin stop waits for the fetchers (each request
 * returns within about FETCH_WAIT_MS). A fetcher runs until its run ends
 * even when its followers have left (bounded by the runs followed).
 */
#include <curl/curl.h>
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/admin-int.h"
#include "coord/coord.h"
#include "keys/keys.h"
#include "live/live.h"
#include "store/store.h"

#define FETCH_WAIT_MS 1000 /* the node waits this long for new bytes */
#define FETCH_BODY_MAX (256 * 1024)
#define FETCH_RETRY_MS 300 /* after a transport error */

struct fetch {
  struct cx_admin *a;
  struct cx_live *mirror; /* a reference */
  int64_t run_id;
  char node[CX_KEY_UUID_MAX + 1];
  char url[512];
  struct cx_buf body;
  char offset[32], end[64];
};

/* The node's listener URL from its key: 0 with url set ("" = it has no
 * listener), CX_ENOTFOUND when the key is gone, or a coordination error. */
static int node_url(struct cx_admin *a, const char *node, char *url, size_t cap)
{
  char key[CX_KEY_LEN], err[CX_ERR_LEN];
  struct cx_coord_kvs kvs = {0};
  url[0] = '\0';
  size_t kl =
      cx_key_build(key, sizeof key, a->prefix, CX_KEY_NODE, node, 0, NULL);
  if (kl == 0)
    return CX_EPARSE;
  int rc = cx_coord_get(a->coord, key, kl, &kvs, err);
  if (rc == 0 && kvs.n == 0)
    rc = CX_ENOTFOUND;
  if (rc == 0) {
    json_t *v = json_loadb(kvs.kvs[0].value, kvs.kvs[0].value_len, 0, NULL);
    const char *u = json_string_value(json_object_get(v, "live"));
    if (u != NULL && (strncmp(u, "http://", 7) == 0) && strlen(u) < cap)
      snprintf(url, cap, "%s", u);
    json_decref(v);
  }
  cx_coord_kvs_free(&kvs);
  return rc;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
  struct fetch *f = ctx;
  if (f->body.len + size * n > FETCH_BODY_MAX)
    return 0;
  cx_buf_append(&f->body, p, size * n);
  return cx_buf_failed(&f->body) ? 0 : size * n;
}

/* Keeps the two headers that place the bytes. */
static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
  struct fetch *f = ctx;
  size_t len = size * n;
  static const struct {
    const char *name;
    size_t off;
  } want[] = {{"X-Cronix-Offset:", offsetof(struct fetch, offset)},
              {"X-Cronix-End:", offsetof(struct fetch, end)}};
  for (size_t i = 0; i < CX_ARRAY_LEN(want); i++) {
    size_t nl = strlen(want[i].name);
    if (len > nl && strncasecmp(p, want[i].name, nl) == 0) {
      char *dst = (char *)f + want[i].off;
      size_t vl = len - nl;
      const char *v = p + nl;
      while (vl > 0 && (*v == ' ' || *v == '\t'))
        v++, vl--;
      while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
      if (vl < 32)
        snprintf(dst, 32, "%.*s", (int)vl, v);
    }
  }
  return len;
}

/* One long poll. Returns the HTTP status, or 0 on a transport error. */
static long poll_node(struct fetch *f, CURL *c, uint64_t from)
{
  char url[700], auth[300];
  snprintf(url, sizeof url,
           "%s/live/output?run_id=%" PRId64 "&offset=%" PRIu64 "&wait_ms=%d",
           f->url, f->run_id, from, FETCH_WAIT_MS);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s",
           f->a->cfg->cluster_secret);
  struct curl_slist *h = curl_slist_append(NULL, auth);
  cx_buf_reset(&f->body);
  f->offset[0] = f->end[0] = '\0';
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)FETCH_WAIT_MS + 4000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  return status;
}

/* The run's stored status when it is no longer running; "" otherwise. */
static void stored_end(struct fetch *f, char *status, size_t cap, int *code)
{
  struct cx_run r;
  char err[CX_ERR_LEN];
  memset(&r, 0, sizeof r);
  status[0] = '\0';
  if (cx_store_run_find(f->a->store, f->run_id, &r, err) == 0 && r.status &&
      strcmp(r.status, "running") != 0) {
    snprintf(status, cap, "%s", r.status);
    *code = r.exit_code;
  }
  cx_run_clear(&r);
}

static int stopping(struct cx_admin *a)
{
  pthread_mutex_lock(&a->proxy.mu);
  int s = a->proxy.stop;
  pthread_mutex_unlock(&a->proxy.mu);
  return s;
}

static void *fetch_main(void *arg)
{
  struct fetch *f = arg;
  CURL *c = curl_easy_init();
  const char *why = NULL;
  int failures = 0;
  while (c != NULL && !stopping(f->a)) {
    struct cx_live_state st;
    uint64_t at = UINT64_MAX;
    cx_live_read(f->mirror, &at, NULL, 0, &st);
    long status = poll_node(f, c, st.total);
    if (status == 200) {
      failures = 0;
      uint64_t off = strtoull(f->offset, NULL, 10);
      cx_live_add_at(f->mirror, off, f->body.data, f->body.len);
      if (f->end[0]) {
        char s[CX_LIVE_STATUS_LEN];
        int code = -1;
        if (sscanf(f->end, "%15s %d", s, &code) >= 1) {
          cx_live_end(f->mirror, s, code);
          break;
        }
      }
      continue;
    }
    if (status == 404) { /* ended long ago, or the node restarted */
      char s[CX_LIVE_STATUS_LEN];
      int code = -1;
      stored_end(f, s, sizeof s, &code);
      if (s[0]) {
        cx_live_end(f->mirror, s, code);
        break;
      }
      why = "the node no longer runs it (restarted?)";
      break;
    }
    if (status == 401) {
      why = "the node refused cluster.secret";
      break;
    }
    /* Transport error: gone for good once its key is (lease expired). */
    int rc = node_url(f->a, f->node, f->url, sizeof f->url);
    if (rc == CX_ENOTFOUND) {
      why = "its node left the cluster";
      break;
    }
    if (rc == 0 && f->url[0] == '\0') {
      why = "its node has no listener any more";
      break;
    }
    if (++failures > 100) {
      why = "its node's listener does not answer";
      break;
    }
    pthread_mutex_lock(&f->a->proxy.mu);
    if (!f->a->proxy.stop)
      cx_cond_wait_ms(&f->a->proxy.cv, &f->a->proxy.mu, FETCH_RETRY_MS);
    pthread_mutex_unlock(&f->a->proxy.mu);
  }
  if (why != NULL) {
    CX_LOG(CX_LOG_WARN, "admin", "live output of run %" PRId64 ": lost: %s",
           f->run_id, why);
    cx_live_end(f->mirror, "lost", -1);
  } else {
    struct cx_live_state st;
    uint64_t at = UINT64_MAX;
    cx_live_read(f->mirror, &at, NULL, 0, &st);
    if (!st.ended)
      cx_live_end(f->mirror, "lost", -1); /* admin stopping, or no curl */
  }
  if (c != NULL)
    curl_easy_cleanup(c);
  cx_buf_free(&f->body);
  cx_live_unref(f->mirror);
  struct cx_admin *a = f->a;
  cx_free(f);
  pthread_mutex_lock(&a->proxy.mu);
  a->proxy.n--;
  pthread_cond_broadcast(&a->proxy.cv);
  pthread_mutex_unlock(&a->proxy.mu);
  return NULL;
}

struct cx_live *cx__admin_live_remote(struct cx_admin *a, int64_t run_id,
                                      const char *node, int *lost)
{
  char url[512];
  int created;
  *lost = 0;
  if (a->cfg->cluster_secret[0] == '\0' || a->proxy.mirrors == NULL ||
      node == NULL || !cx_key_uuid_ok(node))
    return NULL;
  int rc = node_url(a, node, url, sizeof url);
  if (rc == CX_ENOTFOUND)
    *lost = 1;
  if (rc != 0 || url[0] == '\0')
    return NULL;
  struct cx_live *m = cx_live_get(a->proxy.mirrors, run_id,
                                  (size_t)a->cfg->node_output_limit, &created);
  if (m == NULL || !created)
    return m;
  struct fetch *f = cx_calloc(1, sizeof *f);
  pthread_attr_t at;
  pthread_t th;
  pthread_mutex_lock(&a->proxy.mu);
  int ok = f != NULL && !a->proxy.stop;
  if (ok) {
    f->a = a;
    f->run_id = run_id;
    snprintf(f->node, sizeof f->node, "%s", node);
    snprintf(f->url, sizeof f->url, "%s", url);
    f->mirror = m;
    cx_live_ref(m);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    ok = pthread_create(&th, &at, fetch_main, f) == 0;
    pthread_attr_destroy(&at);
    if (ok)
      a->proxy.n++;
    else
      cx_live_unref(m);
  }
  pthread_mutex_unlock(&a->proxy.mu);
  if (!ok) {
    cx_free(f);
    cx_live_end(m, "lost", -1); /* no fetcher: say so rather than hang */
  }
  return m;
}

int cx__admin_proxy_init(struct cx_admin *a)
{
  pthread_mutex_init(&a->proxy.mu, NULL);
  cx_cond_init_mono(&a->proxy.cv);
  return cx_live_table_create(&a->proxy.mirrors);
}

void cx__admin_proxy_stop(struct cx_admin *a)
{
  pthread_mutex_lock(&a->proxy.mu);
  a->proxy.stop = 1;
  pthread_cond_broadcast(&a->proxy.cv);
  while (a->proxy.n > 0)
    cx_cond_wait_ms(&a->proxy.cv, &a->proxy.mu, 100);
  pthread_mutex_unlock(&a->proxy.mu);
}

void cx__admin_proxy_free(struct cx_admin *a)
{
  cx__admin_proxy_stop(a);
  cx_live_table_destroy(a->proxy.mirrors);
  a->proxy.mirrors = NULL;
  pthread_mutex_destroy(&a->proxy.mu);
  pthread_cond_destroy(&a->proxy.cv);
}
