/*
 * The data dir as an attacker on the same host meets it: `cronix
 * standalone` refuses a data dir or database that group/other can read,
 * makes its own files private, and never follows or overwrites a file
 * planted where the first admin's credentials go. Each refusal also leaves
 * everything as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "support/services.h"
#include "support/test.h"
#include "util/util.h"

/* <tmp>/name, made with mode (chmod'ed: the umask does not interfere). */
static const char *mkdir_mode(const char *name, mode_t mode)
{
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", cx_test_tmpdir(), name);
  ASSERT_MSG(mkdir(path, 0700) == 0, "mkdir %s: %s", path, strerror(errno));
  ASSERT_EQ(chmod(path, mode), 0);
  return path;
}

static mode_t mode_of(const char *dir, const char *name)
{
  char path[600];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  ASSERT_MSG(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
  return st.st_mode & 07777;
}

static int exists(const char *dir, const char *name)
{
  char path[600];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return lstat(path, &st) == 0;
}

/* Runs `cronix standalone` on dir; it must exit (a refusal), not serve. */
static void refused(const char *dir, int status, const char *err_has)
{
  cli_expect(CRONIX("standalone", "--data-dir", (char *)dir, "--listen",
                    "127.0.0.1:0"),
             status, NULL, err_has);
}

TEST(cli_standalone_refuses_a_data_dir_others_can_read)
{
  const char *dir = mkdir_mode("open", 0755);
  refused(dir, 2, "chmod 700");
  /* Nothing made, nothing changed. */
  ASSERT(!exists(dir, "cronix.db"));
  ASSERT(!exists(dir, "initial-admin.txt"));
  ASSERT_EQ(mode_of(dir, "."), 0755);
}

TEST(cli_standalone_refuses_a_database_others_can_read)
{
  char path[600];
  const char *dir = mkdir_mode("private", 0700);
  snprintf(path, sizeof path, "%s/cronix.db", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT(fd >= 0);
  close(fd);
  ASSERT_EQ(chmod(path, 0644), 0);
  refused(dir, 2, "chmod 600");
  ASSERT_EQ(mode_of(dir, "cronix.db"), 0644);
  ASSERT(!exists(dir, "initial-admin.txt"));
  struct stat st;
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_EQ(st.st_size, 0); /* not opened as a database */
}

TEST(cli_standalone_never_follows_a_planted_credentials_symlink)
{
  /* Whoever could plant a symlink there would get the first admin's
   * password written to a file of their choosing (or truncate one). */
  char link[600], target[600];
  const char *dir = mkdir_mode("planted", 0700);
  snprintf(link, sizeof link, "%s/initial-admin.txt", dir);
  snprintf(target, sizeof target, "%s/stolen.txt", cx_test_tmpdir());
  int fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0644);
  ASSERT(fd >= 0 && write(fd, "mine\n", 5) == 5);
  close(fd);
  ASSERT_EQ(symlink(target, link), 0);
  refused(dir, 1, "initial-admin.txt already exists");
  char buf[64] = "";
  fd = open(target, O_RDONLY);
  ASSERT(fd >= 0);
  ASSERT_EQ(read(fd, buf, sizeof buf - 1), 5);
  close(fd);
  ASSERT_STREQ(buf, "mine\n");
  struct stat st;
  ASSERT_EQ(lstat(link, &st), 0);
  ASSERT(S_ISLNK(st.st_mode));
}

TEST_TIMEOUT(cli_standalone_makes_a_private_data_dir_and_files, 90)
{
  char dir[600], log[600], err[CX_ERR_LEN] = "", path[700], text[1024] = "";
  struct cx_svc_proc p;
  memset(&p, 0, sizeof p);
  snprintf(dir, sizeof dir, "%s/fresh", cx_test_tmpdir());
  snprintf(log, sizeof log, "%s/standalone.log", cx_test_tmpdir());
  const char *argv[] = {cx_test_cronix_bin(), "standalone",  "--data-dir", dir,
                        "--listen",           "127.0.0.1:0", NULL};
  ASSERT_MSG(cx_svc_proc_set_argv(&p, "standalone", log, argv, err) == 0, "%s",
             err);
  ASSERT_MSG(cx_svc_proc_start(&p, err) == 0, "%s", err);
  /* Ready when the credentials file holds its token line (written at
   * once with the rest). */
  snprintf(path, sizeof path, "%s/initial-admin.txt", dir);
  int64_t until = cx_wall_ms() + 60000;
  const char *tok = NULL;
  while ((tok = strstr(text, "\ntoken = ")) == NULL ||
         strchr(tok + 1, '\n') == NULL) {
    if (!cx_svc_proc_alive(&p) || cx_wall_ms() > until)
      cx_svc_log_dump(log, 4096);
    ASSERT_MSG(cx_svc_proc_alive(&p), "standalone exited");
    ASSERT_MSG(cx_wall_ms() < until, "no initial-admin.txt after 60 s");
    cx_sleep_us(100000);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
      text[fread(text, 1, sizeof text - 1, f)] = '\0';
      fclose(f);
    }
  }
  ASSERT_EQ(mode_of(dir, "."), 0700);
  ASSERT_EQ(mode_of(dir, "cronix.db"), 0600);
  ASSERT_EQ(mode_of(dir, "initial-admin.txt"), 0600);
  ASSERT_CONTAINS(text, "\ntoken_expires = "); /* 24 h by default */
  ASSERT(strstr(text, "token_expires = never") == NULL);
  ASSERT_MSG(cx_svc_proc_stop(&p, 10000, err) == 0, "%s", err);
}
