/*
 * keys: the coordination key layout of SPEC §7, built and parsed in one
 * place for the admin and the node alike:
 *
 *   <prefix>/job/<uuid>/<id>          a job published to node <uuid>
 *   <prefix>/node/<uuid>              a node alive (under its lease)
 *   <prefix>/proc/<uuid>/<id>/<tail>  a running process of job <id>
 *   <prefix>/once/<uuid>/<id>         run job <id> once now
 *   <prefix>/kill/<uuid>/<id>         kill job <id>'s runs
 *   <prefix>/leader                   the admin leader (cluster.c)
 *   <prefix>/drain/<uuid>             node <uuid> is drained (no lease)
 *   <prefix>/bcast/<id>               a broadcast job (allocation 3): every
 *                                     node watches the directory and runs
 *                                     the jobs whose node_selector its
 *                                     labels match
 *
 * <prefix> is the configured etcd prefix without a trailing '/'. The module
 * owns the node uuid rule too (cx_key_uuid_ok): a key whose uuid breaks it
 * is not a Cronix key. Pure functions, thread-safe.
 */
#ifndef CX_KEYS_H
#define CX_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of a node uuid, at most (a node makes 36-byte RFC 4122 ones). */
#define CX_KEY_UUID_MAX 64
/* Room for any key under a prefix of up to 511 bytes (the node keeps 511,
 * the admin 255). */
#define CX_KEY_LEN 1024

enum cx_key_kind {
  CX_KEY_JOB,
  CX_KEY_NODE,
  CX_KEY_PROC,
  CX_KEY_ONCE,
  CX_KEY_KILL,
  CX_KEY_LEADER,
  CX_KEY_DRAIN,
  CX_KEY_BCAST
};

/* A parsed key. uuid is "" for the leader and bcast keys; id is the job id of
 * job, proc, once, kill and bcast keys (0 otherwise); tail/tail_len the last
 * part of a proc key (pid or "r<run id>"), pointing into the parsed key. */
struct cx_key {
  enum cx_key_kind kind;
  char uuid[CX_KEY_UUID_MAX + 1];
  int64_t id;
  const char *tail;
  size_t tail_len;
};

/* 1 if u is a node uuid usable as a key part: 1..CX_KEY_UUID_MAX bytes of
 * [A-Za-z0-9._-], and neither "." nor "..". 0 otherwise (NULL included). */
int cx_key_uuid_ok(const char *u);

/* The key for kind into buf (cap bytes, NUL-terminated); its length, or 0
 * when it does not fit or a part is invalid (a uuid failing
 * cx_key_uuid_ok, an id < 1 where one is needed, an empty or '/'-holding
 * tail). uuid, id and tail are used only by the kinds that have them
 * (bcast: id only). */
size_t cx_key_build(char *buf, size_t cap, const char *prefix,
                    enum cx_key_kind kind, const char *uuid, int64_t id,
                    const char *tail);
/* The watch/range prefix "<prefix>/<kind>/" (uuid NULL) or
 * "<prefix>/<kind>/<uuid>/" into buf; its length, or 0 as above. Not for
 * the leader kind; bcast takes uuid NULL only. */
size_t cx_key_dir(char *buf, size_t cap, const char *prefix,
                  enum cx_key_kind kind, const char *uuid);

/* Parses key[0..len) (not necessarily NUL-terminated) under prefix into
 * out. 0, or CX_EPARSE for anything but one of the layouts above exactly:
 * another prefix, a missing part, a trailing '/', a uuid failing
 * cx_key_uuid_ok, an id that is not 1..INT64_MAX in plain decimal (no
 * sign, no leading zero: a parsed key is the one cx_key_build makes), a
 * NUL byte. */
int cx_key_parse(const char *prefix, const char *key, size_t len,
                 struct cx_key *out);

#endif
