/* config: defaults, INI files, environment, precedence, the sample file. */
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "support/test.h"

static const char *write_file(const char *name, const char *text)
{
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", cx_test_tmpdir(), name);
  FILE *f = fopen(path, "w");
  ASSERT(f != NULL);
  fputs(text, f);
  fclose(f);
  return path;
}

TEST(config_defaults_match_spec)
{
  struct cx_config c;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_config_init(&c), 0);
  ASSERT_EQ(cx_config_finish(&c, err), 0);
  ASSERT_STREQ(c.listen, "127.0.0.1:8089");
  ASSERT_STREQ(c.data_dir, "./var");
  ASSERT_STREQ(c.store_url, "sqlite://./var/cronix.db");
  ASSERT_STREQ(c.etcd_endpoints, "");
  ASSERT_STREQ(c.etcd_prefix, "/cronix");
  ASSERT_EQ(c.node_ttl, 5);
  ASSERT_EQ(c.node_max_concurrent, 64);
  ASSERT_STREQ(c.node_shell, "/bin/sh");
  ASSERT_EQ(c.node_output_limit, 64 * 1024);
  ASSERT_EQ(c.node_retry_base, 60);
  ASSERT_EQ(c.cmd_auto_allocation, 0);
  ASSERT_EQ(c.log_retention_days, 30);
  cx_config_free(&c);
}

TEST(config_file_sections_units_quotes_comments)
{
  struct cx_config c;
  char err[CX_ERR_LEN];
  const char *path = write_file(
      "a.ini", "# comment\n; also a comment\n\n[server]\n"
               "listen = 0.0.0.0:9000\n"
               "data_dir = \"/var/lib/cronix\"\n"
               "[node]\r\nttl = 2m\noutput_limit = 1MiB\n"
               "[notify.email]\nsmtp_url = smtps://mail.example:465\n"
               "[system]\ncmd_auto_allocation = yes\n");
  ASSERT_EQ(cx_config_init(&c), 0);
  ASSERT_EQ(cx_config_load_file(&c, path, err), 0);
  ASSERT_EQ(cx_config_finish(&c, err), 0);
  ASSERT_STREQ(c.listen, "0.0.0.0:9000");
  ASSERT_STREQ(c.data_dir, "/var/lib/cronix");
  ASSERT_STREQ(c.store_url, "sqlite:///var/lib/cronix/cronix.db");
  ASSERT_EQ(c.node_ttl, 120);
  ASSERT_EQ(c.node_output_limit, 1 << 20);
  ASSERT_STREQ(c.email_smtp_url, "smtps://mail.example:465");
  ASSERT_EQ(c.cmd_auto_allocation, 1);
  cx_config_free(&c);
}

TEST(config_file_errors_name_file_line_and_setting)
{
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"[server]\nlisten\n", ":2: expected key = value"},
      {"[nosuch]\n", ":1: unknown section [nosuch]"},
      {"[server]\nlistne = x\n", ":2: unknown setting 'server.listne'"},
      {"listen = x\n", ":1: 'listen' outside any [section]"},
      {"[node]\nttl = 1\n", "node.ttl: '1' is not a number"},
      {"[node]\nttl = 5 parsecs\n", "node.ttl"},
      {"[node]\nmax_concurrent = 99999999999999999999\n",
       "node.max_concurrent"},
      {"[node]\nmax_concurrent = 10k\n", "node.max_concurrent"},
      {"[system]\ncmd_auto_allocation = maybe\n", "not a boolean"},
      {"[server\n", ":1: malformed section header"},
      {"[notify]\nemail.smtp_url = x\n", ":2: bad key 'email.smtp_url'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct cx_config c;
    char err[CX_ERR_LEN] = "";
    const char *path = write_file("bad.ini", cases[i].text);
    ASSERT_EQ(cx_config_init(&c), 0);
    ASSERT_MSG(cx_config_load_file(&c, path, err) != 0, "case %zu accepted", i);
    ASSERT_CONTAINS(err, cases[i].want);
    cx_config_free(&c);
  }
}

TEST(config_file_missing_and_huge)
{
  struct cx_config c;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_config_init(&c), 0);
  ASSERT(cx_config_load_file(&c, "/nonexistent/cronix.conf", err) < 0);
  ASSERT_CONTAINS(err, "/nonexistent/cronix.conf");
  char *big = malloc(8192);
  memset(big, 'x', 8191);
  big[8191] = '\0';
  const char *path = write_file("long.ini", big);
  ASSERT(cx_config_load_file(&c, path, err) != 0);
  ASSERT_CONTAINS(err, "line longer");
  free(big);
  cx_config_free(&c);
}

TEST(config_env_overrides_file_and_flags_override_env)
{
  struct cx_config c;
  char err[CX_ERR_LEN];
  const char *path =
      write_file("p.ini", "[node]\nttl = 7\nshell = /bin/bash\n");
  setenv("CRONIX_NODE_TTL", "9s", 1);
  setenv("CRONIX_NOTIFY_FEISHU_SECRET", "s3", 1);
  ASSERT_EQ(cx_config_init(&c), 0);
  ASSERT_EQ(cx_config_load_file(&c, path, err), 0);
  ASSERT_EQ(cx_config_load_env(&c, err), 0);
  ASSERT_EQ(c.node_ttl, 9);
  ASSERT_STREQ(c.node_shell, "/bin/bash");
  ASSERT_STREQ(c.feishu_secret, "s3");
  ASSERT_EQ(cx_config_set(&c, "node.ttl", "11", err), 0);
  ASSERT_EQ(c.node_ttl, 11);
  setenv("CRONIX_NODE_TTL", "zero", 1);
  ASSERT(cx_config_load_env(&c, err) != 0);
  ASSERT_CONTAINS(err, "CRONIX_NODE_TTL");
  cx_config_free(&c);
}

TEST(config_env_names)
{
  char buf[64];
  cx_config_env_name("notify.email.smtp_url", buf, sizeof buf);
  ASSERT_STREQ(buf, "CRONIX_NOTIFY_EMAIL_SMTP_URL");
  cx_config_env_name("system.cmd_auto_allocation", buf, sizeof buf);
  ASSERT_STREQ(buf, "CRONIX_SYSTEM_CMD_AUTO_ALLOCATION");
}

TEST(config_finish_rejects_bad_enums)
{
  struct cx_config c;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_config_init(&c), 0);
  ASSERT_EQ(cx_config_set(&c, "log.level", "loud", err), 0);
  ASSERT(cx_config_finish(&c, err) != 0);
  ASSERT_CONTAINS(err, "log.level");
  cx_config_free(&c);
}

TEST(config_finish_checks_node_labels)
{
  struct cx_config c;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_config_init(&c), 0);
  ASSERT_EQ(cx_config_set(&c, "node.labels", "zone=a, role=db", err), 0);
  ASSERT_EQ(cx_config_finish(&c, err), 0);
  ASSERT_EQ(cx_config_set(&c, "node.labels", "zone=a, role", err), 0);
  ASSERT(cx_config_finish(&c, err) != 0);
  ASSERT_CONTAINS(err, "node.labels");
  cx_config_free(&c);
}

TEST(config_rejects_control_characters)
{
  struct cx_config c;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_config_init(&c), 0);
  ASSERT(cx_config_set(&c, "node.shell", "/bin/sh\x1b", err) != 0);
  ASSERT_CONTAINS(err, "node.shell");
  cx_config_free(&c);
}

TEST(config_write_hides_secrets)
{
  struct cx_config c;
  char err[CX_ERR_LEN], *text = NULL;
  size_t len = 0;
  ASSERT_EQ(cx_config_init(&c), 0);
  ASSERT_EQ(cx_config_set(&c, "etcd.password", "hunter2", err), 0);
  ASSERT_EQ(cx_config_set(&c, "notify.feishu.secret", "s3cr3t", err), 0);
  FILE *f = open_memstream(&text, &len);
  cx_config_write(&c, f);
  fclose(f);
  ASSERT(strstr(text, "hunter2") == NULL);
  ASSERT(strstr(text, "s3cr3t") == NULL);
  ASSERT_CONTAINS(text, "password = (set, hidden)");
  free(text);
  cx_config_free(&c);
}

TEST(config_sample_file_is_current_and_loads)
{
  /* The committed sample must be exactly what the table generates, and
   * loading it must give the defaults. Tests run from the repo root. */
  char *want = NULL, got[65536];
  size_t len = 0;
  FILE *f = open_memstream(&want, &len);
  cx_config_write_sample(f);
  fclose(f);
  FILE *s = fopen("cronix.conf.sample", "r");
  ASSERT_MSG(s != NULL, "cronix.conf.sample not found in the working dir");
  size_t n = fread(got, 1, sizeof got - 1, s);
  fclose(s);
  got[n] = '\0';
  ASSERT_MSG(strcmp(got, want) == 0,
             "cronix.conf.sample is stale: run `build/cronix config sample "
             "> cronix.conf.sample`");
  free(want);
  struct cx_config c;
  char err[CX_ERR_LEN];
  ASSERT_EQ(cx_config_init(&c), 0);
  ASSERT_EQ(cx_config_load_file(&c, "cronix.conf.sample", err), 0);
  ASSERT_EQ(c.node_ttl, 5);
  cx_config_free(&c);
}

/* Inits c and loads text into it as a config file, which must succeed. */
static void load_text(struct cx_config *c, const char *text)
{
  char err[CX_ERR_LEN] = "";
  const char *path = write_file("t.ini", text);
  ASSERT_EQ(cx_config_init(c), 0);
  ASSERT_MSG(cx_config_load_file(c, path, err) == 0, "%s\n%s", err, text);
}

TEST(config_file_inline_comments_end_values)
{
  /* ` ;` or ` #` after a value starts a comment, for every type; a value
   * made only of a comment is empty. */
  struct cx_config c;
  load_text(&c, "[server]\n"
                "public_url = https://cron.example.org   ; run links\n"
                "http_threads = 8 # workers\n"
                "metrics_public = false\t; closed\n"
                "[node]\n"
                "ttl = 10s   ; lease\n"
                "workdir =   ; data_dir\n"
                "[notify.feishu]\n"
                "secret = # unsigned\n");
  ASSERT_STREQ(c.public_url, "https://cron.example.org");
  ASSERT_EQ(c.http_threads, 8);
  ASSERT_EQ(c.metrics_public, 0);
  ASSERT_EQ(c.node_ttl, 10);
  ASSERT_STREQ(c.node_workdir, "");
  ASSERT_STREQ(c.feishu_secret, "");
  cx_config_free(&c);
}

TEST(config_file_hash_without_space_and_quoted_stay_in_value)
{
  struct cx_config c;
  load_text(&c, "[server]\n"
                "public_url = http://x/#a ; the fragment stays\n"
                "[notify.email]\n"
                "password = \"pa ss #1 ;x\"  # quoted: all kept\n"
                "from = 'Cron \"ops\" <c@x>'\n"
                "username = a;b#c\n");
  ASSERT_STREQ(c.public_url, "http://x/#a");
  ASSERT_STREQ(c.email_password, "pa ss #1 ;x");
  ASSERT_STREQ(c.email_from, "Cron \"ops\" <c@x>");
  ASSERT_STREQ(c.email_username, "a;b#c");
  cx_config_free(&c);
}

TEST(config_file_bad_quotes_are_errors)
{
  static const char *const bad[] = {
      "[node]\nshell = \"/bin/sh\n",
      "[node]\nshell = \"/bin/sh\" -x\n",
  };
  for (size_t i = 0; i < CX_ARRAY_LEN(bad); i++) {
    struct cx_config c;
    char err[CX_ERR_LEN] = "";
    const char *path = write_file("q.ini", bad[i]);
    ASSERT_EQ(cx_config_init(&c), 0);
    ASSERT_MSG(cx_config_load_file(&c, path, err) != 0, "case %zu accepted", i);
    ASSERT_CONTAINS(err, ":2: ");
    cx_config_free(&c);
  }
}

TEST(config_write_reads_back_values_with_comment_marks)
{
  /* `config show` output is itself a config file: values that hold a
   * comment mark or edge spaces come out quoted. */
  struct cx_config c, d;
  char err[CX_ERR_LEN] = "", *text = NULL;
  size_t len = 0;
  ASSERT_EQ(cx_config_init(&c), 0);
  ASSERT_EQ(cx_config_set(&c, "node.shell", "/bin/sh ;x", err), 0);
  ASSERT_EQ(cx_config_set(&c, "node.workdir", "#dir", err), 0);
  ASSERT_EQ(cx_config_set(&c, "server.public_url", " http://x/#a", err), 0);
  ASSERT_EQ(cx_config_set(&c, "notify.email.from", "\"a\" #b", err), 0);
  FILE *f = open_memstream(&text, &len);
  cx_config_write(&c, f);
  fclose(f);
  load_text(&d, text);
  ASSERT_STREQ(d.node_shell, "/bin/sh ;x");
  ASSERT_STREQ(d.node_workdir, "#dir");
  ASSERT_STREQ(d.public_url, " http://x/#a");
  ASSERT_STREQ(d.email_from, "\"a\" #b");
  free(text);
  cx_config_free(&c);
  cx_config_free(&d);
}
