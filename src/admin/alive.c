/*
 * admin: the set of alive nodes (uuids under <prefix>/node/, SPEC §7),
 * kept in memory from a watch so that placement and the once/kill/manual
 * checks cost no coordination round trip.
 *
 * Decisions:
 *   - The set is trusted only while the watch streams (state callback; the
 *     in-process backend never disconnects) and after one full read (a
 *     range at start, or at the first connection when etcd was down then).
 *     Otherwise every check reads the coordination service as before.
 *   - A node missing from the set is confirmed by a direct read before it
 *     is called dead, so a node that registered a moment ago is usable at
 *     once. A node whose key was deleted is seen dead as soon as the watch
 *     delivers the deletion (normally milliseconds; bounded by the watch's
 *     liveness: a silent watch probes its server after watch_idle_ms and
 *     reconnects only if the probe fails, within watch_idle_ms plus the
 *     request timeout; a lost one stops being trusted at once).
 *   - Events at or below the revision of the last full read are already in
 *     it and are skipped.
 *   - Each node's labels (node.labels, in its key's value) are kept beside
 *     its uuid for placement by a job's node_selector. A node key whose
 *     labels do not parse counts as a node without labels.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin-int.h"

/* With mu held. Index of uuid, or -(insertion point) - 1. */
static long set_find(const struct cx__alive *s, const char *uuid)
{
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(s->uuids[mid], uuid);
    if (c == 0)
      return (long)mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -(long)lo - 1;
}

/* A node key's labels as "k=v,k=v" (cx_labels_parse reads it back), ""
 * when it has none or they are not valid. NULL on no memory. */
static char *labels_text(const char *value, size_t len)
{
  char text[CX_LABELS_MAX * (2 * CX_LABEL_MAX + 2) + 1] = "";
  json_t *v = json_loadb(value, len, 0, NULL);
  json_t *lo = json_object_get(v, "labels"), *x;
  const char *k;
  size_t n = 0;
  json_object_foreach(lo, k, x)
  {
    const char *s = json_string_value(x);
    int w = snprintf(text + n, sizeof text - n, "%s%s=%s", n ? "," : "", k,
                     s ? s : "");
    if (s == NULL || w < 0 || (size_t)w >= sizeof text - n) {
      n = 0;
      break;
    }
    n += (size_t)w;
  }
  text[n] = '\0';
  json_decref(v);
  struct cx_labels l;
  return cx_strdup(cx_labels_parse(text, &l, NULL) == 0 ? text : "");
}

/* With mu held. On no memory the set is marked untrusted. */
static void set_add(struct cx__alive *s, const char *uuid, const char *value,
                    size_t len)
{
  long i = set_find(s, uuid);
  char *lab = labels_text(value, len);
  if (lab == NULL) {
    s->synced = 0;
    return;
  }
  if (i >= 0) { /* a re-registration may bring other labels */
    cx_free(s->labels[i]);
    s->labels[i] = lab;
    return;
  }
  size_t at = (size_t)(-i - 1);
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    char **v = cx_realloc(s->uuids, cap * sizeof *v);
    char **l = v ? cx_realloc(s->labels, cap * sizeof *l) : NULL;
    if (v != NULL)
      s->uuids = v;
    if (l == NULL) {
      cx_free(lab);
      s->synced = 0;
      return;
    }
    s->labels = l;
    s->cap = cap;
  }
  char *u = cx_strdup(uuid);
  if (u == NULL) {
    cx_free(lab);
    s->synced = 0;
    return;
  }
  memmove(s->uuids + at + 1, s->uuids + at, (s->n - at) * sizeof *s->uuids);
  memmove(s->labels + at + 1, s->labels + at, (s->n - at) * sizeof *s->labels);
  s->uuids[at] = u;
  s->labels[at] = lab;
  s->n++;
}

static void set_remove(struct cx__alive *s, const char *uuid)
{
  long i = set_find(s, uuid);
  if (i < 0)
    return;
  cx_free(s->uuids[i]);
  cx_free(s->labels[i]);
  memmove(s->uuids + i, s->uuids + i + 1,
          (s->n - (size_t)i - 1) * sizeof *s->uuids);
  memmove(s->labels + i, s->labels + i + 1,
          (s->n - (size_t)i - 1) * sizeof *s->labels);
  s->n--;
}

static void set_clear(struct cx__alive *s)
{
  for (size_t i = 0; i < s->n; i++) {
    cx_free(s->uuids[i]);
    cx_free(s->labels[i]);
  }
  s->n = 0;
}

/* With mu held: the set becomes exactly kvs. */
static void set_load(struct cx_admin *a, const struct cx_coord_kvs *kvs)
{
  struct cx__alive *s = &a->alive;
  struct cx_key k;
  set_clear(s);
  s->synced = 1;
  s->rev = kvs->revision;
  if (s->seen < kvs->revision)
    s->seen = kvs->revision;
  for (size_t i = 0; i < kvs->n; i++)
    if (cx__admin_key_is(a, CX_KEY_NODE, kvs->kvs[i].key, kvs->kvs[i].key_len,
                         &k))
      set_add(s, k.uuid, kvs->kvs[i].value, kvs->kvs[i].value_len);
}

static void on_event(void *arg, const struct cx_coord_event *ev)
{
  struct cx_admin *a = arg;
  struct cx_key k;
  if (!cx__admin_key_is(a, CX_KEY_NODE, ev->key, ev->key_len, &k))
    return;
  const char *uuid = k.uuid;
  pthread_mutex_lock(&a->alive.mu);
  if (ev->mod_rev > a->alive.rev) {
    if (ev->type == CX_COORD_EV_PUT)
      set_add(&a->alive, uuid, ev->value, ev->value_len);
    else
      set_remove(&a->alive, uuid);
  }
  if (a->alive.seen < ev->mod_rev)
    a->alive.seen = ev->mod_rev;
  pthread_mutex_unlock(&a->alive.mu);
}

static void on_resync(void *arg, const struct cx_coord_kvs *kvs)
{
  struct cx_admin *a = arg;
  pthread_mutex_lock(&a->alive.mu);
  set_load(a, kvs);
  pthread_mutex_unlock(&a->alive.mu);
}

/* A full read of the node prefix into the set (0 or coordination error). */
static int alive_read(struct cx_admin *a, char *err)
{
  char prefix[CX_KEY_LEN];
  struct cx_coord_kvs kvs = {0};
  size_t pl = cx_key_dir(prefix, sizeof prefix, a->prefix, CX_KEY_NODE, NULL);
  int rc = cx_coord_range(a->coord, prefix, pl, &kvs, err);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&a->alive.mu);
  set_load(a, &kvs);
  pthread_mutex_unlock(&a->alive.mu);
  cx_coord_kvs_free(&kvs);
  return 0;
}

static void on_state(void *arg, int connected)
{
  struct cx_admin *a = arg;
  char err[CX_ERR_LEN];
  pthread_mutex_lock(&a->alive.mu);
  int synced = a->alive.synced;
  a->alive.connected = 0;
  pthread_mutex_unlock(&a->alive.mu);
  /* Connected without a full read yet (etcd was down at start): read now;
   * events already applied are newer and win by revision order. */
  if (connected && !synced && alive_read(a, err) != 0)
    return;
  pthread_mutex_lock(&a->alive.mu);
  a->alive.connected = connected;
  pthread_mutex_unlock(&a->alive.mu);
}

int cx__admin_alive_start(struct cx_admin *a, char *err)
{
  char prefix[CX_KEY_LEN];
  char e2[CX_ERR_LEN];
  size_t pl = cx_key_dir(prefix, sizeof prefix, a->prefix, CX_KEY_NODE, NULL);
  struct cx_coord_watch_cbs cbs = {
      .event = on_event, .resync = on_resync, .state = on_state};
  int local = strcmp(cx_coord_backend(a->coord), "local") == 0;

  if (pl == 0) {
    cx_err_set(err, "etcd.prefix too long");
    return -ENAMETOOLONG;
  }
  pthread_mutex_lock(&a->alive.mu);
  set_clear(&a->alive);
  a->alive.synced = 0;
  a->alive.connected = 0;
  a->alive.rev = 0;
  a->alive.seen = 0;
  pthread_mutex_unlock(&a->alive.mu);
  /* etcd down now: the watch starts from "now" and the first connection
   * reads the whole prefix (on_state). */
  int64_t from = alive_read(a, e2) == 0 ? a->alive.rev + 1 : 0;
  int rc =
      cx_coord_watch(a->coord, prefix, pl, from, &cbs, a, &a->alive.watch, err);
  if (rc != 0)
    return rc;
  if (local) { /* in-process: streaming from the start, never lost */
    pthread_mutex_lock(&a->alive.mu);
    a->alive.connected = 1;
    pthread_mutex_unlock(&a->alive.mu);
  }
  return 0;
}

void cx__admin_alive_stop(struct cx_admin *a)
{
  cx_coord_watch_cancel(a->alive.watch);
  a->alive.watch = NULL;
  pthread_mutex_lock(&a->alive.mu);
  set_clear(&a->alive);
  cx_free(a->alive.uuids);
  cx_free(a->alive.labels);
  a->alive.uuids = NULL;
  a->alive.labels = NULL;
  a->alive.cap = 0;
  a->alive.connected = a->alive.synced = 0;
  pthread_mutex_unlock(&a->alive.mu);
}

int64_t cx__admin_alive_seen(struct cx_admin *a)
{
  pthread_mutex_lock(&a->alive.mu);
  int64_t r = a->alive.seen;
  pthread_mutex_unlock(&a->alive.mu);
  return r;
}

int cx__admin_node_labels(struct cx_admin *a, const char *uuid, int *alive,
                          struct cx_labels *labels, char *err)
{
  char key[CX_KEY_LEN];
  struct cx_coord_kvs kvs;
  size_t kl;
  char *text = NULL;

  *alive = 0;
  if (labels != NULL)
    labels->n = 0;
  kl = cx_key_build(key, sizeof key, a->prefix, CX_KEY_NODE, uuid, 0, NULL);
  if (kl == 0) /* not a node uuid: never alive */
    return 0;
  pthread_mutex_lock(&a->alive.mu);
  long i =
      a->alive.connected && a->alive.synced ? set_find(&a->alive, uuid) : -1;
  if (i >= 0 && labels != NULL &&
      (text = cx_strdup(a->alive.labels[i])) == NULL)
    i = -1; /* no memory: read it below */
  pthread_mutex_unlock(&a->alive.mu);
  int rc = 0;
  if (i < 0) {
    rc = cx_coord_get(a->coord, key, kl, &kvs, err);
    if (rc == 0 && labels != NULL && kvs.n > 0)
      text = labels_text(kvs.kvs[0].value, kvs.kvs[0].value_len);
    if (rc == 0)
      cx_coord_kvs_free(&kvs);
  }
  if (rc == 0) {
    *alive = 1;
    if (labels != NULL && text != NULL)
      cx_labels_parse(text, labels, NULL);
  }
  cx_free(text);
  return rc == CX_ENOTFOUND ? 0 : rc;
}

int cx__admin_node_alive(struct cx_admin *a, const char *uuid, int *alive,
                         char *err)
{
  return cx__admin_node_labels(a, uuid, alive, NULL, err);
}

static void strs_free(char **v, size_t n)
{
  for (size_t i = 0; v != NULL && i < n; i++)
    cx_free(v[i]);
  cx_free(v);
}

/* Sorts uuids and their labels together (by uuid). */
static void sort_pairs(char **v, char **l, size_t n)
{
  for (size_t i = 1; i < n; i++)
    for (size_t k = i; k > 0 && strcmp(v[k - 1], v[k]) > 0; k--) {
      char *t = v[k];
      v[k] = v[k - 1];
      v[k - 1] = t;
      t = l[k];
      l[k] = l[k - 1];
      l[k - 1] = t;
    }
}

int cx__admin_alive_list(struct cx_admin *a, int fresh, char ***out,
                         char ***labels, size_t *n, char *err)
{
  char **v = NULL, **l = NULL;
  size_t k = 0;
  int rc = 0;

  *out = NULL;
  if (labels != NULL)
    *labels = NULL;
  *n = 0;
  pthread_mutex_lock(&a->alive.mu);
  int use = !fresh && a->alive.connected && a->alive.synced && a->alive.n > 0;
  if (use) {
    v = cx_calloc(a->alive.n, sizeof *v);
    l = cx_calloc(a->alive.n, sizeof *l);
    for (; v != NULL && l != NULL && k < a->alive.n; k++)
      if ((v[k] = cx_strdup(a->alive.uuids[k])) == NULL ||
          (l[k] = cx_strdup(a->alive.labels[k])) == NULL) {
        k++;
        break;
      }
    if (v == NULL || l == NULL || (k > 0 && l[k - 1] == NULL))
      rc = -ENOMEM;
  }
  pthread_mutex_unlock(&a->alive.mu);
  if (!use) { /* not trusted, or empty (a node may have just registered) */
    char prefix[CX_KEY_LEN];
    struct cx_key key;
    struct cx_coord_kvs kvs = {0};
    size_t pl = cx_key_dir(prefix, sizeof prefix, a->prefix, CX_KEY_NODE, NULL);
    if ((rc = cx_coord_range(a->coord, prefix, pl, &kvs, err)) != 0)
      return rc;
    v = kvs.n ? cx_calloc(kvs.n, sizeof *v) : NULL;
    l = kvs.n ? cx_calloc(kvs.n, sizeof *l) : NULL;
    if (kvs.n > 0 && (v == NULL || l == NULL))
      rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < kvs.n; i++) {
      const struct cx_coord_kv *kv = &kvs.kvs[i];
      if (!cx__admin_key_is(a, CX_KEY_NODE, kv->key, kv->key_len, &key))
        continue;
      v[k] = cx_strdup(key.uuid);
      l[k] = labels_text(kv->value, kv->value_len);
      k++;
      if (v[k - 1] == NULL || l[k - 1] == NULL)
        rc = -ENOMEM;
    }
    cx_coord_kvs_free(&kvs);
    if (rc == 0)
      sort_pairs(v, l, k);
  }
  if (rc != 0 || labels == NULL) {
    strs_free(l, k);
    l = NULL;
  }
  if (rc != 0) {
    strs_free(v, k);
    return rc;
  }
  *out = v;
  if (labels != NULL)
    *labels = l;
  *n = k;
  return 0;
}
