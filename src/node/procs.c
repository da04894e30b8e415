/*
 * node/procs: the running-process keys of SPEC §7
 * (<prefix>/proc/<uuid>/<job_id>/<pid or r<run>>), written by one thread
 * off the run path. A run never waits on etcd: during an etcd election or a
 * member restart the keys are late, the runs are not (a run that waited on
 * its proc key held a worker, and a node's queue of fires grew behind it).
 * Operations go out in order; a delete whose put has not been sent yet
 * cancels both. The queue is bounded: past CX__PROC_QUEUE_MAX a put is
 * dropped (logged), a delete is always kept. Keys are under the
 * node's lease, so whatever is left when the node stops goes with its
 * revoke.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "coord/coord.h"
#include "node/node-int.h"

#define LOGC "node"
#define CX__PROC_QUEUE_MAX 65536

struct cx__procop {
  struct cx__procop *next;
  int del;
  int64_t lease;
  size_t key_len, val_len;
  char *key, *val;
};

static void op_free(struct cx__procop *op)
{
  if (op == NULL)
    return;
  cx_free(op->key);
  cx_free(op->val);
  cx_free(op);
}

/* A put (val != NULL) or a delete of key, or NULL when out of memory. */
static struct cx__procop *op_new(const char *key, size_t key_len,
                                 const char *val, size_t val_len)
{
  struct cx__procop *op = cx_calloc(1, sizeof *op);
  if (op == NULL || (op->key = cx_malloc(key_len)) == NULL ||
      (val != NULL && (op->val = cx_malloc(val_len ? val_len : 1)) == NULL)) {
    op_free(op);
    CX_LOG(CX_LOG_WARN, LOGC, "proc key %.*s: out of memory", (int)key_len,
           key);
    return NULL;
  }
  memcpy(op->key, key, key_len);
  op->key_len = key_len;
  if (val != NULL)
    memcpy(op->val, val, val_len);
  op->val_len = val_len;
  op->del = val == NULL;
  return op;
}

static void *procs_main(void *arg)
{
  struct cx_noded *n = arg;
  char err[CX_ERR_LEN];
  pthread_mutex_lock(&n->pmu);
  for (;;) {
    while (n->phead == NULL && !n->pquit)
      pthread_cond_wait(&n->pcond, &n->pmu);
    if (n->pquit)
      break;
    struct cx__procop *op = n->phead;
    n->phead = op->next;
    if (n->phead == NULL)
      n->ptail = NULL;
    n->plen--;
    pthread_mutex_unlock(&n->pmu);
    int rc;
    err[0] = '\0';
    if (op->del)
      rc = cx_coord_delete(n->coord, op->key, op->key_len, NULL, NULL, err);
    else
      rc = cx_coord_put(n->coord, op->key, op->key_len, op->val, op->val_len,
                        op->lease, NULL, err);
    if (rc != 0)
      CX_LOG(CX_LOG_WARN, LOGC, "proc key %.*s not %s: %s", (int)op->key_len,
             op->key, op->del ? "deleted" : "written", err);
    op_free(op);
    pthread_mutex_lock(&n->pmu);
  }
  pthread_mutex_unlock(&n->pmu);
  return NULL;
}

int cx__noded_procs_start(struct cx_noded *n, char *err)
{
  int rc = pthread_create(&n->pthread, NULL, procs_main, n);
  if (rc != 0) {
    cx_err_set(err, "proc key thread: %s", strerror(rc));
    return -rc;
  }
  n->pstarted = 1;
  return 0;
}

void cx__noded_procs_stop(struct cx_noded *n)
{
  pthread_mutex_lock(&n->pmu);
  n->pquit = 1;
  pthread_cond_broadcast(&n->pcond);
  pthread_mutex_unlock(&n->pmu);
  if (n->pstarted)
    pthread_join(n->pthread, NULL);
  n->pstarted = 0;
  while (n->phead) {
    struct cx__procop *op = n->phead;
    n->phead = op->next;
    op_free(op);
  }
  n->ptail = NULL;
  n->plen = 0;
}

static void enqueue(struct cx_noded *n, struct cx__procop *op)
{
  op->next = NULL;
  if (n->ptail)
    n->ptail->next = op;
  else
    n->phead = op;
  n->ptail = op;
  n->plen++;
  pthread_cond_signal(&n->pcond);
}

void cx__noded_proc_put(struct cx_noded *n, const char *key, size_t key_len,
                        const char *val, size_t val_len, int64_t lease)
{
  struct cx__procop *op = op_new(key, key_len, val, val_len);
  if (op == NULL)
    return;
  op->lease = lease;
  pthread_mutex_lock(&n->pmu);
  if (n->plen >= CX__PROC_QUEUE_MAX || n->pquit) {
    pthread_mutex_unlock(&n->pmu);
    CX_LOG(CX_LOG_WARN, LOGC, "proc key %.*s dropped: %d writes queued",
           (int)key_len, key, CX__PROC_QUEUE_MAX);
    op_free(op);
    return;
  }
  enqueue(n, op);
  pthread_mutex_unlock(&n->pmu);
}

void cx__noded_proc_del(struct cx_noded *n, const char *key, size_t key_len)
{
  pthread_mutex_lock(&n->pmu);
  /* Its put still waiting: neither needs to reach etcd. */
  struct cx__procop *prev = NULL;
  for (struct cx__procop *op = n->phead; op; prev = op, op = op->next) {
    if (!op->del && op->key_len == key_len &&
        memcmp(op->key, key, key_len) == 0) {
      if (prev)
        prev->next = op->next;
      else
        n->phead = op->next;
      if (n->ptail == op)
        n->ptail = prev;
      n->plen--;
      pthread_mutex_unlock(&n->pmu);
      op_free(op);
      return;
    }
  }
  pthread_mutex_unlock(&n->pmu);
  struct cx__procop *op = op_new(key, key_len, NULL, 0);
  if (op == NULL)
    return; /* the key goes with the lease at the latest */
  pthread_mutex_lock(&n->pmu);
  if (n->pquit) {
    pthread_mutex_unlock(&n->pmu);
    op_free(op);
    return;
  }
  enqueue(n, op);
  pthread_mutex_unlock(&n->pmu);
}
