/*
 * The service files: each systemd unit passes `systemd-analyze verify`
 * (with ExecStart pointed at the binary under test, since /usr/bin/cronix
 * is not installed here), and the man page renders without a warning.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "support/test.h"

static void run_sh(const char *script, struct cx_test_output *o)
{
  char *const argv[] = {"/bin/sh",
                        "-c",
                        (char *)script,
                        "sh",
                        (char *)cx_test_cronix_bin(),
                        (char *)cx_test_tmpdir(),
                        NULL};
  cx_test_run(argv, 120, o);
}

TEST_TIMEOUT(cli_systemd_units_verify, 120)
{
  struct cx_test_output o;
  run_sh("command -v systemd-analyze >/dev/null || exit 77\n"
         "n=0\n"
         "for u in contrib/systemd/cronix-*.service; do\n"
         "  b=$(basename \"$u\")\n"
         "  sed \"s|/usr/bin/cronix|$1|\" \"$u\" > \"$2/$b\" || exit 1\n"
         "  grep -q '^Type=notify$' \"$2/$b\" || { echo \"$b: not "
         "Type=notify\"; exit 1; }\n"
         "  grep -q '^KillMode=mixed$' \"$2/$b\" || { echo \"$b: no "
         "KillMode=mixed\"; exit 1; }\n"
         "  systemd-analyze verify --man=no \"$2/$b\" || exit 1\n"
         "  n=$((n + 1))\n"
         "done\n"
         "[ \"$n\" = 3 ] || { echo \"$n units\"; exit 1; }\n",
         &o);
  if (o.status == 77) {
    cx_test_output_free(&o);
    cx_test_skip("systemd-analyze is not installed");
  }
  ASSERT_MSG(o.status == 0 && o.err_len == 0, "exit %d: %s%s", o.status, o.out,
             o.err);
  cx_test_output_free(&o);
}

TEST(cli_man_page_renders_cleanly)
{
  struct cx_test_output o;
  run_sh("command -v groff >/dev/null || exit 77\n"
         "groff -man -Tutf8 -ww -z contrib/man/cronix.1\n",
         &o);
  if (o.status == 77) {
    cx_test_output_free(&o);
    cx_test_skip("groff is not installed");
  }
  ASSERT_MSG(o.status == 0 && o.err_len == 0, "exit %d: %s", o.status, o.err);
  cx_test_output_free(&o);
}
