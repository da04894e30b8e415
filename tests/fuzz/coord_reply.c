/*
 * libFuzzer target: what an etcd gateway (or anything pretending to be one)
 * may send back. The input is parsed as a range reply and fed, in chunks
 * whose size comes from the first byte, to a watch's newline-framed stream
 * parser. Checked: no crash or leak; every kv and event handed out is
 * consistent (NUL-terminated at its length, revisions positive, events in
 * non-decreasing revision order).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
  int64_t last_rev;
};

static void check(int ok)
{
  if (!ok)
    abort();
}

static void on_event(void *arg, const struct cx_coord_event *ev)
{
  struct seen *s = arg;
  check(ev->key != NULL && ev->value != NULL);
  check(ev->key[ev->key_len] == '\0' && ev->value[ev->value_len] == '\0');
  check(ev->type == CX_COORD_EV_PUT || ev->value_len == 0);
  check(ev->mod_rev > 0 && ev->mod_rev >= s->last_rev);
  s->last_rev = ev->mod_rev;
}

static void on_resync(void *arg, const struct cx_coord_kvs *kvs)
{
  (void)arg;
  (void)kvs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  cx_log_set_level(CX_LOG_OFF);
  size_t chunk = (size_t)data[0] % 64 + 1;
  struct seen s = {0};
  struct cx_coord_watch_cbs cbs = {on_event, on_resync, NULL};
  struct cx_coord_kvs kvs = {0};
  int rc = cx__coord_etcd_replay((const char *)data + 1, size - 1, chunk, &cbs,
                                 &s, &kvs);
  for (size_t i = 0; i < kvs.n; i++) {
    const struct cx_coord_kv *kv = &kvs.kvs[i];
    check(kv->key[kv->key_len] == '\0' && kv->value[kv->value_len] == '\0');
  }
  check(rc == 0 || rc == CX_EPROTO || rc == -ENOMEM);
  cx_coord_kvs_free(&kvs);
  return 0;
}
