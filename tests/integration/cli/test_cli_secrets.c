/*
 * Secrets never leave the process in the cli's output: `config show`
 * masks URL passwords and webhook tokens and hides passwords and signing
 * secrets; an error that names the store prints its URL masked.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "support/test.h"

/* Every secret below contains "SEKRIT"; none may show up anywhere. */
static void assert_no_secret(const struct cx_test_output *o)
{
  ASSERT_MSG(strstr(o->out, "SEKRIT") == NULL, "stdout leaks: %s", o->out);
  ASSERT_MSG(strstr(o->err, "SEKRIT") == NULL, "stderr leaks: %s", o->err);
}

TEST(cli_config_show_masks_every_secret)
{
  struct cx_test_output o;
  cx_test_run(
      CRONIX("config", "show", "--store", "mysql://cx:SEKRIT1,x@db:3306/cronix",
             "--etcd", "http://e1:2379,http://root:SEKRIT2@e2:2379", "--set",
             "etcd.password=SEKRIT3", "--set",
             "notify.email.smtp_url=smtp://mailer:SEKRIT4@mail:587", "--set",
             "notify.email.password=SEKRIT5", "--set",
             "notify.feishu.webhook_url=https://open.feishu.cn/open-apis/bot/"
             "v2/hook/SEKRIT6",
             "--set", "notify.feishu.secret=SEKRIT7", "--set",
             "server.public_url=https://ops:SEKRIT8@cron.example.org"),
      10, &o);
  ASSERT_MSG(o.status == 0, "exit %d: %s", o.status, o.err);
  assert_no_secret(&o);
  /* What is not secret stays readable, so the output is still useful. */
  ASSERT_CONTAINS(o.out, "\nurl = mysql://cx:***@db:3306/cronix\n");
  ASSERT_CONTAINS(o.out,
                  "\nendpoints = http://e1:2379,http://root:***@e2:2379\n");
  ASSERT_CONTAINS(o.out, "\nsmtp_url = smtp://mailer:***@mail:587\n");
  ASSERT_CONTAINS(o.out, "\nwebhook_url = "
                         "https://open.feishu.cn/open-apis/bot/v2/hook/***\n");
  ASSERT_CONTAINS(o.out, "\npassword = (set, hidden)\n");
  ASSERT_CONTAINS(o.out, "\nsecret = (set, hidden)\n");
  ASSERT_CONTAINS(o.out, "\npublic_url = https://ops:***@cron.example.org\n");
  cx_test_output_free(&o);
}

TEST(cli_user_add_store_error_masks_the_password)
{
  /* Port 1 on loopback refuses at once: the connection fails and the
   * message names the store, with the password masked. Nothing is made. */
  struct cx_test_output o;
  cx_test_run(CRONIX("user", "add", "bob", "--role", "viewer", "--store",
                     "mysql://cx:SEKRIT@127.0.0.1:1/cronix"),
              30, &o);
  ASSERT_EQ(o.status, 1);
  assert_no_secret(&o);
  ASSERT_CONTAINS(o.err, "mysql://cx:***@127.0.0.1:1/cronix");
  ASSERT(strstr(o.out, "username = bob") == NULL);
  cx_test_output_free(&o);
}

TEST(cli_etcd_endpoint_errors_mask_the_password)
{
  /* A bad endpoint is refused before anything starts; the message names
   * it masked. */
  struct cx_test_output o;
  char dir[512];
  snprintf(dir, sizeof dir, "%s/data", cx_test_tmpdir());
  cx_test_run(CRONIX("node", "--data-dir", dir, "--store", "sqlite://:memory:",
                     "--etcd", "http://root:SEKRIT@127.0.0.1:1/x"),
              30, &o);
  ASSERT_OP(o.status, !=, 0);
  assert_no_secret(&o);
  ASSERT_CONTAINS(o.err, "root:***@127.0.0.1:1");
  cx_test_output_free(&o);
}
