/*
 * store on SQLite: the shared suite (cases.inc) on a fresh database file in
 * the test's directory, plus what needs no server: URL parsing and
 * redaction, the UTF-8 sanitizer, SQLite-specific failures.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit/store/cases.inc"

static const char *lite_url(void)
{
  static char url[600];
  snprintf(url, sizeof url, "sqlite://%s/cronix.db", cx_test_tmpdir());
  return url;
}

#define DEF(name, secs)                                                        \
  TEST_TIMEOUT(store_##name, secs)                                             \
  {                                                                            \
    case_##name(lite_url());                                                   \
  }
STORE_CASES(DEF)

TEST(store_url_sqlite_paths)
{
  struct cx__url u;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx__url_parse("sqlite:///var/lib/cronix/cronix.db", &u, err), 0);
  ASSERT_EQ(u.scheme, CX__SQLITE);
  ASSERT_STREQ(u.path, "/var/lib/cronix/cronix.db");
  cx__url_free(&u);
  ASSERT_EQ(cx__url_parse("sqlite://var/cronix.db", &u, err), 0);
  ASSERT_STREQ(u.path, "var/cronix.db");
  cx__url_free(&u);
  ASSERT_EQ(cx__url_parse("sqlite://", &u, err), CX_EPARSE);
  ASSERT_CONTAINS(err, "path");
}

TEST(store_url_mysql_full)
{
  struct cx__url u;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx__url_parse("mysql://us%40er:p%3Ass%2Fw@db.example:3307/"
                          "cron%69x?tls=verify&ca=%2Fetc%2Fca.pem&cert=c.pem"
                          "&key=k.pem&connect_timeout=3&read_timeout=9"
                          "&write_timeout=11&pool=8",
                          &u, err),
            0);
  ASSERT_EQ(u.scheme, CX__MYSQL);
  ASSERT_STREQ(u.user, "us@er");
  ASSERT_STREQ(u.pass, "p:ss/w");
  ASSERT_STREQ(u.host, "db.example");
  ASSERT_EQ(u.port, 3307);
  ASSERT_STREQ(u.db, "cronix");
  ASSERT_EQ(u.tls, 2);
  ASSERT_STREQ(u.ca, "/etc/ca.pem");
  ASSERT_STREQ(u.cert, "c.pem");
  ASSERT_STREQ(u.key, "k.pem");
  ASSERT_EQ(u.connect_timeout, 3);
  ASSERT_EQ(u.read_timeout, 9);
  ASSERT_EQ(u.write_timeout, 11);
  ASSERT_EQ(u.pool, 8);
  cx__url_free(&u);
}

TEST(store_url_mysql_defaults_and_forms)
{
  struct cx__url u;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx__url_parse("mysql://localhost/cronix", &u, err), 0);
  ASSERT_EQ(u.port, 3306);
  ASSERT(u.user == NULL && u.pass == NULL);
  ASSERT_EQ(u.tls, 0);
  ASSERT_EQ(u.pool, 4);
  cx__url_free(&u);
  ASSERT_EQ(cx__url_parse("mariadb://root@[::1]:3310/x?tls=required", &u, err),
            0);
  ASSERT_STREQ(u.user, "root");
  ASSERT(u.pass == NULL);
  ASSERT_STREQ(u.host, "::1");
  ASSERT_EQ(u.port, 3310);
  ASSERT_EQ(u.tls, 1);
  cx__url_free(&u);
  /* An empty password is a password. */
  ASSERT_EQ(cx__url_parse("mysql://u:@h/d", &u, err), 0);
  ASSERT_STREQ(u.pass, "");
  cx__url_free(&u);
}

TEST(store_url_malformed_each_explained)
{
  const struct {
    const char *url;
    const char *says;
  } bad[] = {
      {"", "empty"},
      {"postgres://h/d", "unknown scheme"},
      {"cronix.db", "no scheme"},
      {"mysql://u:p@h", "database name"},
      {"mysql://u:p@h/", "database name"},
      {"mysql://u:p@/d", "host"},
      {"mysql://u:p@h:0/d", "port"},
      {"mysql://u:p@h:65536/d", "port"},
      {"mysql://u:p@h:33x/d", "port"},
      {"mysql://u:p@h:/d", "port"},
      {"mysql://u:p@[::1/d", "'['"},
      {"mysql://u:p%zz@h/d", "percent-escape in the password"},
      {"mysql://u:p%00@h/d", "percent-escape"},
      {"mysql://u:p@h/d?tls=maybe", "tls"},
      {"mysql://u:p@h/d?pool=0", "pool"},
      {"mysql://u:p@h/d?connect_timeout=-1", "connect_timeout"},
      {"mysql://u:p@h/d?bogus=1", "unknown option"},
      {"mysql://u:p@h/d?tls", "no value"},
      {"mysql://u:p@h/d?ca=", "ca"},
      {"mysql://u:p@h/a/b", "database name"},
      {"mysql://u:p@h/d\n", "control character"},
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    struct cx__url u;
    char err[CX_ERR_LEN] = "";
    int rc = cx__url_parse(bad[i].url, &u, err);
    ASSERT_MSG(rc == CX_EPARSE, "\"%s\" accepted", bad[i].url);
    ASSERT_MSG(strstr(err, bad[i].says) != NULL, "\"%s\": \"%s\" lacks \"%s\"",
               bad[i].url, err, bad[i].says);
    ASSERT_MSG(strstr(err, "store url") != NULL, "%s", err);
  }
  /* The password never shows up in a message. */
  struct cx__url u;
  char err[CX_ERR_LEN] = "";
  ASSERT_EQ(cx__url_parse("mysql://u:hunter2@h/d?tls=x", &u, err), CX_EPARSE);
  ASSERT(strstr(err, "hunter2") == NULL);
  ASSERT_EQ(cx__url_parse(NULL, &u, err), CX_EPARSE);
}

TEST(store_url_redact_hides_password)
{
  char out[256];
  cx_store_url_redact("mysql://cronix:hunter2@db:3306/cronix?tls=verify", out,
                      sizeof out);
  ASSERT_STREQ(out, "mysql://cronix:***@db:3306/cronix?tls=verify");
  cx_store_url_redact("mysql://a:p@ss@db/c", out, sizeof out);
  ASSERT_STREQ(out, "mysql://a:***@db/c");
  cx_store_url_redact("mysql://cronix@db/c", out, sizeof out);
  ASSERT_STREQ(out, "mysql://cronix@db/c");
  cx_store_url_redact("sqlite:///var/x:y@z.db", out, sizeof out);
  ASSERT_STREQ(out, "sqlite:///var/x:y@z.db");
  cx_store_url_redact("mysql://u:secretpassword@h/d", out, 12);
  ASSERT(strstr(out, "secret") == NULL);
}

TEST(store_utf8_sanitize_maps_nul_and_bad_bytes)
{
  char *out = NULL;
  size_t n = 0;
  ASSERT_EQ(cx__utf8_sanitize("a\0b\xc0\x80\xe4\xb8", 7, &out, &n), 0);
  ASSERT_STREQ(out, "a\xe2\x90\x80"
                    "b\xef\xbf\xbd\xef\xbf\xbd"
                    "\xef\xbf\xbd\xef\xbf\xbd");
  ASSERT_EQ(n, strlen(out));
  cx_free(out);
  ASSERT_EQ(cx__utf8_sanitize("", 0, &out, &n), 0);
  ASSERT_STREQ(out, "");
  ASSERT_EQ(n, 0);
  cx_free(out);
}

TEST(store_sqlite_open_failure_is_clear)
{
  struct cx_store *s = NULL;
  char err[CX_ERR_LEN] = "", url[700];
  snprintf(url, sizeof url, "sqlite://%s/no/such/dir/x.db", cx_test_tmpdir());
  ASSERT_EQ(cx_store_open(url, &s, err), CX_EUNAVAIL);
  ASSERT(s == NULL);
  ASSERT_CONTAINS(err, "no/such/dir");
  /* Not a database. */
  char path[600];
  snprintf(path, sizeof path, "%s/junk.db", cx_test_tmpdir());
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT(fd >= 0);
  for (int i = 0; i < 64; i++)
    ASSERT_EQ(write(fd, "this is not sqlite ", 19), 19);
  close(fd);
  snprintf(url, sizeof url, "sqlite://%s", path);
  int rc = cx_store_open(url, &s, err);
  ASSERT_OP(rc, <, 0);
  ASSERT_CONTAINS(err, "junk.db");
  cx_store_close(NULL);
}

TEST(store_sqlite_new_database_files_are_private)
{
  /* It holds users and token hashes: 0600 whatever the umask, and its
   * WAL and shared-memory files follow. */
  struct cx_store *s;
  char err[CX_ERR_LEN] = "", url[720], path[700];
  struct stat st;
  mode_t old = umask(022);
  snprintf(path, sizeof path, "%s/private.db", cx_test_tmpdir());
  snprintf(url, sizeof url, "sqlite://%s", path);
  ASSERT_MSG(cx_store_open(url, &s, err) == 0, "%s", err);
  umask(old);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);
  snprintf(path, sizeof path, "%s/private.db-wal", cx_test_tmpdir());
  if (stat(path, &st) == 0)
    ASSERT_EQ(st.st_mode & 0777, 0600);
  cx_store_close(s);
}

TEST(store_sqlite_backend_named)
{
  struct cx_store *s;
  OPEN_OK(lite_url(), &s);
  ASSERT_STREQ(cx_store_backend(s), "sqlite");
  ASSERT_CONTAINS(cx_store_url(s), "cronix.db");
  cx_store_close(s);
}

TEST(store_sqlite_two_handles_share_the_file)
{
  /* Two opens of one file (two processes in real life): the migration is
   * applied once, and writes through one are seen by the other. */
  struct cx_store *a, *b;
  char err[CX_ERR_LEN] = "";
  OPEN_OK(lite_url(), &a);
  OPEN_OK(lite_url(), &b);
  int64_t id = create_job(a, "shared", "n", CX_JOB_CMD, 1, CX_ALLOC_AUTO);
  struct cx_job got;
  OK(cx_store_job_find(b, id, &got, err));
  ASSERT_STREQ(got.name, "shared");
  cx_job_clear(&got);
  int64_t r = claim(b, id, 1700000000, 1, "n");
  struct cx_run run;
  int64_t x;
  fill_run(&run, id, 1700000000, 1, "m");
  ASSERT_EQ(cx_store_run_claim(a, &run, &x, err), CX_EEXISTS);
  ASSERT_OP(r, >, 0);
  cx_store_close(a);
  cx_store_close(b);
}

TEST(store_sqlite_survives_allocation_failures)
{
  /* Every allocation failing in turn: each call returns an error or
   * succeeds; nothing crashes or leaks (ASan checks the latter). */
  struct cx_store *s;
  OPEN_OK(lite_url(), &s);
  int64_t job = create_job(s, "oom", "n", CX_JOB_CMD, 1, CX_ALLOC_AUTO);
  claim(s, job, 1700000000, 1, "n");
  for (long n = 1; n < 40; n++) {
    struct cx_job got;
    struct cx_run_list l;
    struct cx_run_filter f = {0};
    char err[CX_ERR_LEN];
    cx_alloc_fail_after(n);
    int rc1 = cx_store_job_find(s, job, &got, err);
    int rc2 = cx_store_run_search(s, &f, &l, err);
    cx_alloc_fail_after(0);
    if (rc1 == 0)
      cx_job_clear(&got);
    else
      ASSERT_EQ(rc1, -ENOMEM);
    if (rc2 == 0)
      cx_run_list_free(&l);
    else
      ASSERT_EQ(rc2, -ENOMEM);
  }
  cx_store_close(s);
}
