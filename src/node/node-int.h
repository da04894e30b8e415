/*
 * node internals shared by node.c (table, pool, runs), node_coord.c
 * (registration, watches, maintenance) and spool.c (run records, spool).
 * Not part of the module's interface.
 */
#ifndef CX_NODE_INT_H
#define CX_NODE_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "keys/keys.h"
#include "node/exec.h"
#include "node/node.h"
#include "store/store.h"

struct cx_coord_kvs;
struct cx_coord_watch;
struct cx_sched;
struct cx_cron;
struct cx__procop;

/* A job as published, parsed once; shared (refcounted) by the table and
 * the runs that use it, so an update never changes a running run. */
struct cx__ndef {
  atomic_int refs;
  struct cx_job job;
  struct cx_cron *cron;
  json_t *envj, *hdrj; /* own the strings env/hdr point into */
  struct cx_exec_kv *env, *hdr;
  size_t nenv, nhdr;
  int64_t *notify_to;
  size_t nnotify;
};

struct cx__nslot {
  struct cx__nslot *next;
  int64_t id;
  uint64_t gen;       /* rebuild generation that last saw it */
  int active;         /* its runs queued or running (RUN and MISFIRE items) */
  int64_t fire_lease; /* the lease of its first cron fire queued ... */
  int64_t fire_first; /* ... and that fire (s): a gap ends before it */
  struct cx__ndef *def;
};

/* RUN: a cron fire; MISFIRE: on arrival, the latest fire due (misfire
 * run_once); SKIP: a forbid skip to record; GAP: on arrival, the missed
 * rows of the fires due before (not a run of its job). */
enum { CX__ITEM_RUN = 1, CX__ITEM_MISFIRE, CX__ITEM_SKIP, CX__ITEM_GAP };

/* One fire on its way through the pool. A run that failed with retries
 * left goes back on the timer (retry_key) instead of holding a worker
 * through the wait, and comes back through the queue for its next
 * attempt, still the same run (same claim, same row). */
struct cx__nitem {
  struct cx__nitem *next;          /* queue */
  struct cx__nitem *anext, *aprev; /* active list (RUN, MISFIRE) */
  int kind;
  struct cx__ndef *def;
  const char *trigger; /* static string */
  int has_sched;
  int64_t sched_s;
  int64_t gap_to; /* GAP: fires up to here (s) are accounted */
  int64_t queued_ms;
  int64_t lease; /* the node's lease when fired: runs only under it */
  struct cx_exec *x;
  struct cx_live *live; /* its output as it comes (claimed runs) */
  int killed;           /* under n->mu */
  /* The run, from its claim on (only the worker holding the item touches
   * these, except where marked). */
  int started, claimed;
  int attempt;                 /* attempts done */
  struct cx_run run;           /* its row; strings borrowed (def, node) */
  struct cx_exec_result res;   /* the last attempt */
  struct cx_run_attempt *pend; /* attempts not stored yet, in order */
  size_t npend;
  int64_t retry_key;    /* under n->mu: its timer entry (< 0) while waiting */
  int finish;           /* under n->mu: record it as it is, no more attempts */
  int orphan;           /* under n->mu: its job left this node: no retry */
  int retry_cancelled;  /* under n->mu: a kill ended its wait for a retry */
  const char *kill_why; /* under n->mu: why it was killed (static) */
  const char *skip_why; /* SKIP: why (static); NULL = concurrency forbid */
  /* Broadcast runs: this node's place among the nodes running the fire
   * (CRONIX_SHARD_INDEX / _TOTAL); total 0 = not a broadcast run. */
  int shard_index, shard_total;
};

/* Settings that SIGHUP may change; copied per run. */
struct cx__nsettings {
  char shell[1024];
  int64_t output_limit;
  int64_t retry_base_s;
  int64_t kill_grace_s;
  int64_t shutdown_grace_s;
  char workdir[1024];
};

/* Who cmd jobs run as, their base environment and cgroup (jobuser.c);
 * fixed at create. */
#define CX__NUSER_ENV_MAX 64
struct cx__nuser {
  int root;      /* the node runs as root: it switches each job's user */
  char name[64]; /* the default user: node.run_as, or the node's own */
  uid_t uid;
  gid_t gid;
  char home[1024];
  char allow[1024];                 /* node.run_as_allow */
  char *env[CX__NUSER_ENV_MAX + 1]; /* node's PATH, LANG, LC_*, TZ */
  char cgroup[4096];                /* runs' parent cgroup; "" = none */
};

/* One job's user: what exec needs. */
struct cx__jobuser {
  int set_user;
  uid_t uid;
  gid_t gid;
  char home[1030], user[80], logname[80];  /* HOME=, USER=, LOGNAME= */
  const char *envp[CX__NUSER_ENV_MAX + 4]; /* base env for exec */
};

/* lateness.c: start lateness histogram and the falling-behind warning;
 * zero-initialised with the node. Bucket CX__LATE_BUCKETS is +Inf. */
#define CX__LATE_BUCKETS 12
struct cx__late {
  atomic_ullong bucket[CX__LATE_BUCKETS + 1];
  atomic_llong sum_ms;
  atomic_ullong late_since; /* runs over the threshold since the warning */
  atomic_llong worst_since; /* the worst of them, ms */
  atomic_llong warned_ms;   /* mono ms of the last warning, 0 = never */
};

struct cx_noded {
  struct cx_store *store;
  struct cx_live_table *live; /* running runs' output (live_owned: ours) */
  int live_owned;
  struct cx_http *live_http; /* node.listen (live_serve.c); NULL = none */
  char live_url[300];        /* advertised in the node key; "" = none */
  char live_secret[256];     /* cluster.secret */
  char live_listen[256];     /* node.listen, read at create */
  struct cx_labels labels;   /* node.labels, read at create; in the key */
  struct cx_coord *coord;
  char uuid[37];
  char hostname[256];
  char ip[64];
  char version[64];
  char prefix[512];
  char data_dir[2048];
  int64_t ttl;
  int nworkers;
  void (*fire_hook)(void *, int64_t, int64_t, int64_t);
  void *fire_hook_arg;

  pthread_mutex_t setmu;
  struct cx__nsettings set;

  pthread_mutex_t mu;
  pthread_cond_t qcond, idle, mcond;
  struct cx__nslot **buckets;
  size_t nbuckets, njobs;
  uint64_t gen;
  struct cx__nitem *qhead, *qtail;
  struct cx__nitem *active;
  size_t nactive;
  int64_t retry_seq;      /* timer keys of waiting retries: -1, -2, ... */
  struct cx__nitem *gaps; /* GAP items to queue each second (via next) */
  struct cx_noded_stats st;
  int stopping, workers_quit, maint_quit;

  atomic_int fenced;        /* lease lost, not yet re-registered */
  atomic_int drained;       /* <prefix>/drain/<uuid> seen (/node/drain) */
  atomic_llong lease;       /* current lease id (0 = none) */
  pthread_mutex_t lease_mu; /* one lease check at a time */
  int row_ok;               /* node row upserted */
  struct cx_coord_watch *wjob, *wonce, *wkill, *wbcast;

  struct cx_sched *sched;
  pthread_t *workers;
  int nstarted;
  pthread_t sched_thread, maint_thread;
  int sched_started, maint_started, started, stopped;

  /* proc keys (procs.c) */
  pthread_mutex_t pmu;
  pthread_cond_t pcond;
  struct cx__procop *phead, *ptail;
  size_t plen;
  int pquit, pstarted;
  pthread_t pthread;

  struct cx__nuser user;
  struct cx__late late;

  /* spool */
  pthread_mutex_t spmu;
  int sp_fd;
  char sp_path[2100];
  uint64_t sp_pending, sp_spooled, sp_flushed;
};

/* node.c */
void cx__noded_settings(struct cx_noded *n, struct cx__nsettings *out);
/* Queues the gap accountings of jobs that arrived, and again those that
 * found the store unavailable (the maintenance thread, each second). */
void cx__noded_gaps_retry(struct cx_noded *n);
void cx__noded_job_put(struct cx_noded *n, int64_t id, const char *val,
                       size_t len, int arriving);
/* Drops job id when it came from the same kind of key: bcast 1 = a
 * <prefix>/bcast/<id> key (a broadcast job), 0 = this node's job key. The
 * two are separate watches, so a job turning broadcast (or back) may see
 * the new key's put before the old key's delete; the delete must not drop
 * the new version. */
void cx__noded_job_del(struct cx_noded *n, int64_t id, int bcast);
/* Replaces the jobs of one kind (bcast as above) with the listing's. A
 * broadcast job is taken only when its node_selector matches this node's
 * labels. */
void cx__noded_rebuild(struct cx_noded *n, const struct cx_coord_kvs *kvs,
                       int arriving, int bcast);
/* A broadcast job's value: taken when its selector matches this node's
 * labels, dropped otherwise. */
void cx__noded_bcast_put(struct cx_noded *n, int64_t id, const char *val,
                         size_t len, int arriving);
int cx__noded_once(struct cx_noded *n, int64_t id);
/* Runs j now, once, on this node without holding it (no table entry, no
 * schedule): /job/once may name any alive node (SPEC §4). Recorded with
 * this node's uuid, trigger once. 0, or the refusal of a bad job (then
 * recorded like a bad job value), -ENOMEM. */
int cx__noded_once_job(struct cx_noded *n, const struct cx_job *j);
int cx__noded_kill(struct cx_noded *n, int64_t id);

/* node_coord.c */
/* The job id of key if it is n's key of kind (job, once, kill), else 0. */
int64_t cx__noded_key_id(const struct cx_noded *n, enum cx_key_kind kind,
                         const char *key, size_t key_len);
int cx__noded_register(struct cx_noded *n, char *err);
/* The nodes that run a fire of broadcast job j: the alive ones (node
 * keys) whose labels match its node_selector, minus the drained ones,
 * sorted by uuid (this node always counted). This node's 0-based place in
 * *index, their number in *total. 0, or the coordination error. */
int cx__noded_shard(struct cx_noded *n, const struct cx_job *j, int *index,
                    int *total, char *err);

/* live_serve.c: the live-output listener on listen (NULL or "" = none),
 * checking secret (>= 16 bytes, else CX_EPARSE). 0 or the http error. */
struct cx_http;
int cx__noded_live_start(struct cx_noded *n, const char *listen,
                         const char *secret, char *err);
void cx__noded_live_stop(struct cx_noded *n);
void cx__noded_unregister(struct cx_noded *n);
int cx__noded_watch_all(struct cx_noded *n, int arriving, char *err);
void cx__noded_unwatch(struct cx_noded *n);
void *cx__noded_maint_main(void *arg);
/* 1 when the node may start a run now: not fenced and its lease known held
 * (past the last renewal's TTL it asks etcd once; a lease found gone fences
 * the node). May block for one coord request; not under n->mu. */
int cx__noded_lease_held(struct cx_noded *n);

/* procs.c: proc keys written in order by one thread, never waited on */
int cx__noded_procs_start(struct cx_noded *n, char *err);
void cx__noded_procs_stop(struct cx_noded *n); /* drops what is queued */
void cx__noded_proc_put(struct cx_noded *n, const char *key, size_t key_len,
                        const char *val, size_t val_len, int64_t lease);
void cx__noded_proc_del(struct cx_noded *n, const char *key, size_t key_len);

/* jobuser.c */
/* Resolves node.run_as (and refuses to start without a safe user: see
 * cx_noded_create) and makes the node's cgroup. 0 or < 0 with err. */
int cx__nuser_init(struct cx__nuser *u, const struct cx_config *cfg, char *err);
void cx__nuser_fini(struct cx__nuser *u);
/* The user a job with run_as ("" or NULL = the default) runs as, and its
 * environment. 0, or CX_EPARSE / -errno with the reason in why. */
int cx__nuser_job(const struct cx__nuser *u, const char *run_as,
                  struct cx__jobuser *out, char *why);

/* lateness.c: records one run's start lateness (ms), warns if late. */
void cx__noded_late_observe(struct cx_noded *n, int64_t job_id,
                            int64_t late_ms);

/* spool.c */
int cx__noded_spool_open(struct cx_noded *n, char *err);
void cx__noded_spool_close(struct cx_noded *n);
/* Writes a finished record: claim (with r->claim_token) + finish, or
 * finish only when claimed, then the natt attempts given (their run_id
 * is set here); all of it to the spool when the store is down. 0 when
 * stored or spooled. */
int cx__noded_record(struct cx_noded *n, struct cx_run *r, int claimed,
                     struct cx_run_attempt *att, size_t natt);
void cx__noded_record_bad(struct cx_noded *n, int64_t id, const char *why);
void cx__noded_token(char out[33]);

#endif
