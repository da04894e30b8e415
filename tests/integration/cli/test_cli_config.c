/*
 * `cronix config show` as a user runs it: the README's INI examples load
 * verbatim, inline comments end values, and --help is help.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "support/test.h"

void cli_expect(char *const argv[], int status, const char *out_has,
                const char *err_has)
{
  struct cx_test_output o;
  cx_test_run(argv, 10, &o);
  ASSERT_MSG(o.status == status, "%s %s: exit %d, not %d: %s", argv[1],
             argv[2] ? argv[2] : "", o.status, status, o.err);
  if (out_has != NULL)
    ASSERT_CONTAINS(o.out, out_has);
  if (err_has != NULL)
    ASSERT_CONTAINS(o.err, err_has);
  cx_test_output_free(&o);
}

/* Writes text to <tmp>/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text, size_t len)
{
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", cx_test_tmpdir(), name);
  FILE *f = fopen(path, "w");
  ASSERT_MSG(f != NULL, "%s", path);
  ASSERT(fwrite(text, 1, len, f) == len);
  fclose(f);
  return path;
}

/* Runs `cronix config show --config FILE`; the file holds text. */
static void show(const char *text, size_t len, struct cx_test_output *o)
{
  const char *path = write_file("show.ini", text, len);
  cx_test_run(CRONIX("config", "show", "--config", (char *)path), 10, o);
}

TEST(cli_config_readme_ini_blocks_load_verbatim)
{
  /* Every ```ini block of the README must be accepted as it stands: no
   * unknown key, no value that fails to parse. Tests run from the repo
   * root. */
  FILE *f = fopen("README.md", "r");
  ASSERT_MSG(f != NULL, "README.md not found in the working dir");
  char line[4096], block[65536];
  size_t len = 0;
  int in_block = 0, blocks = 0, first_line = 0, lineno = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    lineno++;
    if (!in_block) {
      if (strncmp(line, "```ini", 6) == 0) {
        in_block = 1;
        len = 0;
        first_line = lineno + 1;
      }
      continue;
    }
    if (strncmp(line, "```", 3) != 0) {
      size_t n = strlen(line);
      ASSERT_MSG(len + n < sizeof block, "README block at line %d too long",
                 first_line);
      memcpy(block + len, line, n);
      len += n;
      continue;
    }
    in_block = 0;
    blocks++;
    struct cx_test_output o;
    show(block, len, &o);
    ASSERT_MSG(o.status == 0 && o.err_len == 0,
               "README.md ini block at line %d: exit %d: %s", first_line,
               o.status, o.err);
    cx_test_output_free(&o);
  }
  fclose(f);
  ASSERT_MSG(!in_block, "README.md: unterminated ```ini block");
  ASSERT_OP(blocks, >=, 2);
}

TEST(cli_config_show_strips_inline_comments)
{
  static const char text[] = "[server]\n"
                             "public_url = https://x ; comment\n"
                             "http_threads = 8 # eight\n"
                             "metrics_public = false ; closed\n";
  struct cx_test_output o;
  show(text, sizeof text - 1, &o);
  ASSERT_MSG(o.status == 0, "exit %d: %s", o.status, o.err);
  ASSERT_CONTAINS(o.out, "\npublic_url = https://x\n");
  ASSERT_CONTAINS(o.out, "\nhttp_threads = 8\n");
  ASSERT_CONTAINS(o.out, "\nmetrics_public = false\n");
  cx_test_output_free(&o);
}

TEST(cli_config_show_names_the_bad_line)
{
  static const char text[] = "[notify.email]\nsmtp_starttls = try\n";
  struct cx_test_output o;
  show(text, sizeof text - 1, &o);
  ASSERT_EQ(o.status, 2);
  ASSERT_CONTAINS(o.err, "show.ini:2: unknown setting "
                         "'notify.email.smtp_starttls'");
  cx_test_output_free(&o);
}

TEST(cli_config_show_help_prints_usage)
{
  cli_expect(CRONIX("config", "show", "--help"), 0, "--config FILE", NULL);
  cli_expect(CRONIX("config", "sample", "--help"), 0, "usage: cronix config",
             NULL);
  cli_expect(CRONIX("config", "show", "--bogus"), 2, NULL,
             "cronix config show: unknown option '--bogus'");
}

TEST(cli_node_help_tells_the_truth_about_listen)
{
  /* The node's --listen is node.listen, its live-output listener (issue
   * 15), which needs cluster.secret; a command serving no HTTP at all
   * still refuses it rather than ignoring it. */
  struct cx_test_output o;
  cx_test_run(CRONIX("node", "--help"), 10, &o);
  ASSERT_EQ(o.status, 0);
  ASSERT_CONTAINS(o.out, "--etcd URLS");
  ASSERT_CONTAINS(o.out, "--listen HOST:PORT  node.listen");
  cx_test_output_free(&o);
  cli_expect(
      CRONIX("node", "--listen", "127.0.0.1:1", "--etcd", "http://127.0.0.1:1"),
      2, NULL, "node.listen: set cluster.secret");
  cli_expect(CRONIX("node", "--listen", "127.0.0.1:1", "--set",
                    "cluster.secret=short", "--etcd", "http://127.0.0.1:1"),
             2, NULL, "at least 16 bytes");
  cli_expect(CRONIX("user", "add", "bob", "--role", "viewer", "--listen",
                    "127.0.0.1:1"),
             2, NULL, "--listen: this command serves no HTTP");
  cli_expect(CRONIX("admin", "--help"), 0, "--listen HOST:PORT", NULL);
}
