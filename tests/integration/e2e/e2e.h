/*
 * End-to-end tests of the execution node through the admin API (issue 5),
 * in two environments with the same cases (cases.inc):
 *
 *   standalone  one real `cronix standalone` process (SQLite, in-process
 *               coordination);
 *   cluster     real `cronix admin` + `cronix node` processes on a real
 *               MariaDB and a real etcd, started on loopback by
 *               tests/support/services.h (node.ttl = 2 s, cmd jobs placed
 *               automatically).
 *
 * Everything is observed through the HTTP API as an operator would: jobs
 * are added with POST /job/add, runs read with POST /job/log, nodes with
 * POST /node/search. The only other observation is /proc, to prove that
 * no process of a killed job survives (each such job sleeps for a unique
 * number of seconds, its marker, so its processes can be told apart from
 * anything else on the machine).
 *
 * Every process started here dies with the test (services.h: PDEATHSIG
 * and the runner's process-group kill); e2e_down() also stops them.
 */
#ifndef CX_E2E_H
#define CX_E2E_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "support/services.h"
#include "support/test.h"

enum e2e_kind { E2E_STANDALONE, E2E_CLUSTER };

struct e2e {
  enum e2e_kind kind;
  struct cx_svc_proc main;  /* standalone, or admin */
  struct cx_svc_proc node;  /* cluster only */
  struct cx_svc_etcd etcd;  /* cluster only */
  struct cx_svc_mariadb db; /* cluster only */
  char base[64];            /* http://127.0.0.1:<port> */
  char tok[160];            /* bearer token of the initial admin */
  char node_uuid[64];
  char main_dir[CX_SVC_PATH_LEN], node_dir[CX_SVC_PATH_LEN];
};

/* cluster.secret of the cluster's admin and node (the node listens for
 * live output on a free loopback port). */
#define E2E_SECRET "e2e-cluster-secret-0123456789"

/* The one environment of the running test. */
extern struct e2e E;

/* Fails the test after writing the logs of every process to stderr (the
 * runner shows them for a failing test). */
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      e2e_dump_logs();                                                         \
      cx_test_fail(__FILE__, __LINE__, __VA_ARGS__);                           \
    }                                                                          \
  } while (0)

void e2e_dump_logs(void);

/* Starts the environment of kind k and waits until its API answers, the
 * initial admin token is readable and the node is alive in /node/search. */
void e2e_up(enum e2e_kind k);
/* e2e_up with settings ("name=value", NULL-terminated; kept, not copied)
 * passed as --set to the process that runs jobs. */
void e2e_up_with(enum e2e_kind k, const char *const *sets);
/* Stops everything e2e_up started (gracefully, bounded). */
void e2e_down(void);
/* (Re)starts the cluster's node process with its usual arguments. */
void e2e_node_start(void);

/* One API call. body NULL = GET. Returns the reply's "data" (a new
 * reference) when the HTTP status is 200; else fails the test, naming
 * path, status and reply. */
json_t *e2e_api(const char *path, const char *body);
/* As e2e_api, but returns NULL on a transport error or non-200 status
 * (for polling while a backend restarts). */
json_t *e2e_api_try(const char *path, const char *body);

/* Adds a job through POST /job/add: name, spec (timezone UTC unless extra
 * says otherwise), type 1 = cmd / 2 = http, command, and extra fields as a
 * JSON object text (NULL for none). Placement: allocation 1 + run_on =
 * the node (standalone), allocation 2 (cluster). id > 0 updates that job.
 * Returns the job id. */
int64_t e2e_job_put(int64_t id, const char *name, const char *spec, int type,
                    const char *command, const char *extra);
/* POST /job/once, /job/kill, /job/pause, /job/resume for one job. */
void e2e_job_action(const char *action, int64_t id);

/* The newest page_size runs of job id (newest first), a new reference
 * to the list array. */
json_t *e2e_runs(int64_t id, int page_size);
/* Total runs of job id per /job/log. */
int64_t e2e_run_total(int64_t id);
/* Waits up to timeout_s for a run of job id with status st (any status
 * when NULL; a run with end_time > 0 either way); returns it (new
 * reference) or fails the test naming what. */
json_t *e2e_wait_run(int64_t id, const char *st, int timeout_s,
                     const char *what);
/* Waits up to timeout_s until job id has >= n finished runs; returns the
 * list (new reference) or fails. */
json_t *e2e_wait_runs(int64_t id, int n, int timeout_s, const char *what);

/* Field access on a run object. */
int64_t e2e_int(const json_t *o, const char *k);
const char *e2e_str(const json_t *o, const char *k);

/* A unique sleep argument for this test process and tag: "<100+tag>.<pid>",
 * so `sleep <marker>` identifies the job's processes. */
void e2e_marker(int tag, char *buf, size_t cap);
/* Number of live (non-zombie) processes whose command line holds
 * "sleep <marker>". */
int e2e_procs(const char *marker);
/* Waits up to timeout_s until e2e_procs(marker) is (want_zero ? 0 : > 0);
 * returns the last count. */
int e2e_wait_procs(const char *marker, int want_zero, int timeout_s);

/* A tiny HTTP server on 127.0.0.1, a thread per connection: GET /ok
 * answers 200 "ok", GET /err 500 "bad!", GET /slow 200 "ok" after 2 s,
 * GET /never nothing for 30 s. */
struct e2e_http {
  int fd, port;
  pthread_t th;
};
void e2e_http_start(struct e2e_http *s);
void e2e_http_stop(struct e2e_http *s);

#endif
