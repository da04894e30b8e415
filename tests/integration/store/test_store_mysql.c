/*
 * store on a real MariaDB (started by the test-services harness on a free
 * loopback port, fresh for each test): the shared suite (cases.inc), and
 * what only a server can show: restarts and killed connections with no
 * acknowledged write lost, wrong credentials, a server that is down, TLS
 * options reaching the client library.
 */
#include <errno.h>
#include <stdio.h>

#include "support/services.h"
#include "unit/store/cases.inc"

static struct cx_svc_mariadb db;
static int db_started;

static const char *my_url(void)
{
  char err[CX_ERR_LEN] = "";
  if (!db_started) {
    int rc = cx_svc_mariadb_start(&db, NULL, err);
    ASSERT_MSG(rc == 0, "mariadb: %s", err);
    db_started = 1;
  }
  return db.url;
}

#define DEF(name, secs)                                                        \
  TEST_TIMEOUT(store_mysql_##name, secs)                                       \
  {                                                                            \
    case_##name(my_url());                                                     \
  }
STORE_CASES(DEF)

TEST_TIMEOUT(store_mysql_backend_named_and_url_redacted, 60)
{
  struct cx_store *s;
  OPEN_OK(my_url(), &s);
  ASSERT_STREQ(cx_store_backend(s), "mysql");
  ASSERT_CONTAINS(cx_store_url(s), ":***@");
  ASSERT(strstr(cx_store_url(s), db.password) == NULL);
  cx_store_close(s);
}

TEST_TIMEOUT(store_mysql_wrong_password_is_auth_error, 60)
{
  struct cx_store *s = NULL;
  char url[256], err[CX_ERR_LEN] = "";
  my_url();
  snprintf(url, sizeof url, "mysql://%s:WrongHunter2@%s:%d/%s", db.user,
           db.host, db.port, db.database);
  ASSERT_EQ(cx_store_open(url, &s, err), CX_EAUTH);
  ASSERT(s == NULL);
  ASSERT_CONTAINS(err, "access denied");
  ASSERT_CONTAINS(err, db.user);
  ASSERT(strstr(err, "WrongHunter2") == NULL);
  /* An unknown user: the same kind of error. */
  snprintf(url, sizeof url, "mysql://nobody:pw@%s:%d/%s", db.host, db.port,
           db.database);
  ASSERT_EQ(cx_store_open(url, &s, err), CX_EAUTH);
}

TEST_TIMEOUT(store_mysql_server_down_is_unavailable, 60)
{
  struct cx_store *s = NULL;
  char url[256], err[CX_ERR_LEN] = "";
  int port;
  ASSERT_EQ(cx_svc_port_alloc(&port, err), 0);
  snprintf(url, sizeof url,
           "mysql://u:Secret99@127.0.0.1:%d/x?connect_timeout=2", port);
  cx_mono t0 = cx_mono_now();
  ASSERT_EQ(cx_store_open(url, &s, err), CX_EUNAVAIL);
  ASSERT_OP(cx_mono_now() - t0, <, 20 * 1000 * 1000);
  ASSERT_CONTAINS(err, "127.0.0.1");
  ASSERT(strstr(err, "Secret99") == NULL);
}

TEST_TIMEOUT(store_mysql_tls_required_reaches_the_client, 60)
{
  /* The harness server has no certificate: demanding TLS must fail to
   * connect (proof the option is passed through), with a clear error. */
  struct cx_store *s = NULL;
  char url[256], err[CX_ERR_LEN] = "";
  my_url();
  snprintf(url, sizeof url, "mysql://%s:%s@%s:%d/%s?tls=required", db.user,
           db.password, db.host, db.port, db.database);
  int rc = cx_store_open(url, &s, err);
  ASSERT_MSG(rc != 0, "TLS demanded from a server without TLS: opened");
  ASSERT(s == NULL);
  ASSERT(strstr(err, db.password) == NULL);
  ASSERT_CONTAINS(err, "not encrypted");
  /* verify with a CA file that does not exist: refused as well. */
  snprintf(url, sizeof url,
           "mysql://%s:%s@%s:%d/%s?tls=verify&ca=/nonexistent/ca.pem", db.user,
           db.password, db.host, db.port, db.database);
  ASSERT_OP(cx_store_open(url, &s, err), <, 0);
  ASSERT(s == NULL);
}

TEST_TIMEOUT(store_mysql_unknown_database_is_clear, 60)
{
  struct cx_store *s = NULL;
  char url[256], err[CX_ERR_LEN] = "";
  my_url();
  snprintf(url, sizeof url, "mysql://%s:%s@%s:%d/no_such_db", db.user,
           db.password, db.host, db.port);
  int rc = cx_store_open(url, &s, err);
  ASSERT_OP(rc, <, 0);
  ASSERT_CONTAINS(err, "no_such_db");
}

TEST_TIMEOUT(store_mysql_restart_loses_no_acknowledged_write, 180)
{
  struct cx_store *s;
  char err[CX_ERR_LEN] = "";
  int64_t ids[60];
  OPEN_OK(my_url(), &s);
  int64_t job = create_job(s, "survivor", "A", CX_JOB_CMD, 1, CX_ALLOC_AUTO);
  for (int i = 0; i < 30; i++)
    ids[i] = claim(s, job, 1700000000 + i * 60, 1000 + i, "A");
  ASSERT_MSG(cx_svc_mariadb_restart(&db, err) == 0, "restart: %s", err);
  /* Every pooled connection is now dead: reads and retryable writes
   * reconnect on their own, and a non-retryable write pings first. */
  for (int i = 30; i < 60; i++)
    ids[i] = claim(s, job, 1700000000 + i * 60, 1000 + i, "A");
  create_job(s, "after-restart", "A", CX_JOB_CMD, 1, CX_ALLOC_AUTO);
  for (int i = 0; i < 60; i++) {
    struct cx_run r;
    OK(cx_store_run_find(s, ids[i], &r, err));
    ASSERT_EQ(r.scheduled_at, 1700000000 + i * 60);
    cx_run_clear(&r);
  }
  struct cx_run_filter f = {.job_id = job};
  struct cx_run_list l;
  OK(cx_store_run_search(s, &f, &l, err));
  ASSERT_EQ(l.total, 60);
  cx_run_list_free(&l);
  cx_store_close(s);
}

struct writer {
  struct cx_store *s;
  int64_t job;
  volatile int *stop;
  int64_t acked[4096];
  int64_t sched[4096];
  int nacked, nfailed;
};

static void *write_loop(void *arg)
{
  struct writer *w = arg;
  for (int i = 0; !*w->stop && i < 4096; i++) {
    struct cx_run r;
    int64_t id;
    char err[CX_ERR_LEN];
    fill_run(&r, w->job, 1700000000 + i, cx_wall_ms(), "A");
    int rc = cx_store_run_claim(w->s, &r, &id, err);
    if (rc == 0) {
      w->sched[w->nacked] = 1700000000 + i;
      w->acked[w->nacked++] = id;
    } else {
      w->nfailed++;
      cx_sleep_us(20 * 1000);
    }
  }
  return NULL;
}

TEST_TIMEOUT(store_mysql_restart_under_load_loses_no_acknowledged_write, 180)
{
  struct cx_store *s;
  char err[CX_ERR_LEN] = "";
  static struct writer w;
  volatile int stop = 0;
  pthread_t t;
  OPEN_OK(my_url(), &s);
  w.s = s;
  w.job = create_job(s, "load", "A", CX_JOB_CMD, 1, CX_ALLOC_AUTO);
  w.stop = &stop;
  ASSERT_EQ(pthread_create(&t, NULL, write_loop, &w), 0);
  cx_sleep_us(300 * 1000);
  ASSERT_MSG(cx_svc_mariadb_restart(&db, err) == 0, "restart: %s", err);
  cx_sleep_us(300 * 1000);
  stop = 1;
  pthread_join(t, NULL);
  ASSERT_OP(w.nacked, >, 0);
  /* Every acknowledged claim is there, with its own fire time. */
  for (int i = 0; i < w.nacked; i++) {
    struct cx_run r;
    OK(cx_store_run_find(s, w.acked[i], &r, err));
    ASSERT_EQ(r.scheduled_at, w.sched[i]);
    cx_run_clear(&r);
  }
  struct cx_run_filter f = {.job_id = w.job};
  struct cx_run_list l;
  OK(cx_store_run_search(s, &f, &l, err));
  ASSERT_OP(l.total, >=, w.nacked);
  cx_run_list_free(&l);
  cx_store_close(s);
}

/* Kills every connection of the test user from the server side. */
static int kill_conns(char *err)
{
  return cx_svc_mariadb_admin(&db,
                              "BEGIN NOT ATOMIC FOR c IN (SELECT id FROM "
                              "information_schema.processlist WHERE "
                              "user = 'cronix') DO KILL CONNECTION c.id; "
                              "END FOR; END",
                              err);
}

static void kill_all(void)
{
  char err[CX_ERR_LEN] = "";
  int rc = kill_conns(err);
  ASSERT_MSG(rc == 0, "kill: %s", err);
}

TEST_TIMEOUT(store_mysql_killed_connections_reconnect, 120)
{
  struct cx_store *s;
  char err[CX_ERR_LEN] = "";
  OPEN_OK(my_url(), &s);
  int64_t job = create_job(s, "k", "A", CX_JOB_CMD, 1, CX_ALLOC_AUTO);
  claim(s, job, 1700000000, 1, "A");
  /* Kill every connection of the test user from the server side. */
  kill_all();
  struct cx_job got;
  OK(cx_store_job_find(s, job, &got, err));
  cx_job_clear(&got);
  claim(s, job, 1700000060, 2, "A");
  /* A non-retryable write after the kill: the ping finds the dead
   * connection first, so it still succeeds. */
  kill_all();
  cx_sleep_us(1200 * 1000); /* idle long enough for the ping */
  create_job(s, "k2", "A", CX_JOB_CMD, 1, CX_ALLOC_AUTO);
  cx_store_close(s);
}

struct killer {
  volatile int *stop;
  int kills;
};

static void *kill_loop(void *arg)
{
  struct killer *k = arg;
  char err[CX_ERR_LEN];
  while (!*k->stop) {
    if (kill_conns(err) == 0)
      k->kills++;
    cx_sleep_us(2 * 1000);
  }
  return NULL;
}

TEST_TIMEOUT(store_mysql_claims_under_connection_kills_stay_exact, 180)
{
  /* Connections are killed every few ms while claims of fresh fires go
   * on. A claim re-sent after a kill may find its own first insert: the
   * claim token must turn that into success, never "already claimed".
   * Every acknowledged claim is stored once, with its own fire. */
  struct cx_store *s;
  char err[CX_ERR_LEN] = "";
  static int64_t acked[1000], sched[1000];
  int nacked = 0, unavail = 0, claimed_by_other = 0;
  volatile int stop = 0;
  struct killer k = {&stop, 0};
  pthread_t t;
  OPEN_OK(my_url(), &s);
  int64_t job = create_job(s, "killed", "A", CX_JOB_CMD, 1, CX_ALLOC_AUTO);
  ASSERT_EQ(pthread_create(&t, NULL, kill_loop, &k), 0);
  for (int i = 0; i < 1000; i++) {
    struct cx_run r;
    int64_t id;
    fill_run(&r, job, 1700000000 + i * 60, i, "A");
    int rc = cx_store_run_claim(s, &r, &id, err);
    if (rc == 0) {
      sched[nacked] = 1700000000 + i * 60;
      acked[nacked++] = id;
    } else if (rc == CX_EEXISTS) {
      claimed_by_other++;
    } else {
      ASSERT_MSG(rc == CX_EUNAVAIL, "claim: %s (%s)", cx_err_name(rc), err);
      unavail++;
    }
  }
  stop = 1;
  pthread_join(t, NULL);
  ASSERT_OP(k.kills, >, 0);
  ASSERT_EQ(claimed_by_other, 0);
  ASSERT_OP(nacked, >, 0);
  for (int i = 0; i < nacked; i++) {
    struct cx_run r;
    OK(cx_store_run_find(s, acked[i], &r, err));
    ASSERT_EQ(r.scheduled_at, sched[i]);
    cx_run_clear(&r);
  }
  struct cx_run_filter f = {.job_id = job};
  struct cx_run_list l;
  OK(cx_store_run_search(s, &f, &l, err));
  /* Rows = acknowledged + possibly some whose reply was lost twice. */
  ASSERT_OP(l.total, >=, nacked);
  ASSERT_OP(l.total, <=, nacked + unavail);
  cx_run_list_free(&l);
  cx_store_close(s);
}

TEST_TIMEOUT(store_mysql_down_then_back, 120)
{
  struct cx_store *s;
  char err[CX_ERR_LEN] = "";
  struct cx_job got;
  OPEN_OK(my_url(), &s);
  int64_t job = create_job(s, "dn", "A", CX_JOB_CMD, 1, CX_ALLOC_AUTO);
  ASSERT_MSG(cx_svc_mariadb_stop(&db, err) == 0, "stop: %s", err);
  ASSERT_EQ(cx_store_job_find(s, job, &got, err), CX_EUNAVAIL);
  ASSERT_CONTAINS(err, "mysql");
  ASSERT(strstr(err, db.password) == NULL);
  struct cx_run r;
  int64_t id;
  fill_run(&r, job, 1700000000, 1, "A");
  ASSERT_EQ(cx_store_run_claim(s, &r, &id, err), CX_EUNAVAIL);
  ASSERT_EQ(cx_store_ping(s, err), CX_EUNAVAIL);
  ASSERT_MSG(cx_svc_mariadb_restart(&db, err) == 0, "restart: %s", err);
  OK(cx_store_ping(s, err));
  OK(cx_store_job_find(s, job, &got, err));
  cx_job_clear(&got);
  /* The same claim (same token) now goes through exactly once. */
  OK(cx_store_run_claim(s, &r, &id, err));
  cx_store_close(s);
}

/* A transaction that finishes a run leaves the run's job row unlocked:
 * the leader moving that job must not wait for its commit. A node stopped
 * inside its group commit (SIGSTOP, a frozen VM) would otherwise hold up
 * the move of its own jobs until it resumed -- the chaos run's partition
 * tail. The finish's alert flag reads the job row; under REPEATABLE READ
 * an UPDATE's subquery takes a shared lock on what it reads. The test
 * holds the transaction open with cx_store_tx_begin, which begins like
 * the group commit (store_mysql.c, TX_ISOLATION). */
TEST_TIMEOUT(store_mysql_open_finish_does_not_lock_the_job_row, 60)
{
  struct cx_store *node, *leader;
  char err[CX_ERR_LEN] = "", url[300];
  OPEN_OK(my_url(), &node);
  /* a lock wait longer than 3 s shows as an error, not a hang */
  snprintf(url, sizeof url, "%s?read_timeout=3", my_url());
  OPEN_OK(url, &leader);
  int64_t job = create_job(node, "held", "A", CX_JOB_CMD, 1, CX_ALLOC_AUTO);
  int64_t id = claim(node, job, 1700000000, 1700000000000, "A");
  struct cx_run r;
  memset(&r, 0, sizeof r);
  r.id = id;
  r.status = (char *)"success";
  r.success = 1;
  r.end_time = 1700000001000;
  r.attempts = 1;
  OK(cx_store_tx_begin(node, err)); /* the group commit, left open */
  OK(cx_store_run_finish(node, &r, err));
  int64_t t0 = cx_mono_now();
  int rc = cx_store_job_move(leader, job, "A", "B", err);
  int64_t waited_ms = (cx_mono_now() - t0) / 1000;
  ASSERT_MSG(rc == 0, "move: %s (after %lld ms)", err, (long long)waited_ms);
  OK(cx_store_tx_end(node, 1, err));
  struct cx_job got;
  OK(cx_store_job_find(leader, job, &got, err));
  ASSERT_STREQ(got.run_on, "B");
  cx_job_clear(&got);
  cx_store_close(leader);
  cx_store_close(node);
}
