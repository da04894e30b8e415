/*
 * Installing: `make install` into a staging DESTDIR puts every file at its
 * FHS path, and `make deb` builds a Debian package that `dpkg -i` installs
 * on this machine (a test machine, run as root: the package's maintainer
 * scripts, user creation and unit enabling only run for real on a real
 * root; a `dpkg --root` chroot would need a whole Debian inside), whose
 * units pass `systemd-analyze verify` where they are installed, and that
 * `dpkg --purge` removes again. The package test skips rather than touch
 * a machine where cronix is installed already.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "support/test.h"

/* sh -c script with $1 = the cronix under test, $2 = the test's dir. */
static void run_sh(const char *script, int timeout_s, struct cx_test_output *o)
{
  char *const argv[] = {"/bin/sh",
                        "-c",
                        (char *)script,
                        "sh",
                        (char *)cx_test_cronix_bin(),
                        (char *)cx_test_tmpdir(),
                        NULL};
  cx_test_run(argv, timeout_s, o);
}

TEST_TIMEOUT(cli_make_install_puts_files_at_fhs_paths, 120)
{
  struct cx_test_output o;
  /* The binary under test is installed as it is (-o: never rebuilt). */
  run_sh(
      "b=$(dirname \"$1\"); d=$2/stage\n"
      "inst() { make -s --no-print-directory install BUILD=\"$b\" "
      "-o \"$b/cronix\" DESTDIR=\"$d\" PREFIX=/usr/local >/dev/null; }\n"
      "inst || exit 1\n"
      "for f in usr/local/bin/cronix etc/cronix/cronix.conf \\\n"
      "  usr/local/share/man/man1/cronix.1 \\\n"
      "  usr/local/lib/systemd/system/cronix-standalone.service \\\n"
      "  usr/local/lib/systemd/system/cronix-admin.service \\\n"
      "  usr/local/lib/systemd/system/cronix-node.service \\\n"
      "  usr/local/share/bash-completion/completions/cronix \\\n"
      "  usr/local/share/zsh/site-functions/_cronix; do\n"
      "  [ -f \"$d/$f\" ] || { echo \"missing /$f\"; exit 1; }\n"
      "done\n"
      "[ -d \"$d/var/lib/cronix\" ] || { echo 'no /var/lib/cronix'; exit 1; }\n"
      "[ \"$(stat -c %a \"$d/etc/cronix/cronix.conf\")\" = 640 ] || "
      "{ echo 'cronix.conf not 0640'; exit 1; }\n"
      "grep -q '^ExecStart=/usr/local/bin/cronix node --config "
      "/etc/cronix/cronix.conf --data-dir /var/lib/cronix$' \\\n"
      "  \"$d/usr/local/lib/systemd/system/cronix-node.service\" || "
      "{ echo 'ExecStart not rewritten'; exit 1; }\n"
      "\"$d/usr/local/bin/cronix\" version | grep -q '^cronix ' || exit 1\n"
      "echo '# edited' >> \"$d/etc/cronix/cronix.conf\"\n"
      "inst || exit 1\n"
      "grep -q '^# edited$' \"$d/etc/cronix/cronix.conf\" || "
      "{ echo 'a second install overwrote cronix.conf'; exit 1; }\n",
      110, &o);
  ASSERT_MSG(o.status == 0, "exit %d: %s%s", o.status, o.out, o.err);
  cx_test_output_free(&o);
}

TEST_TIMEOUT(cli_deb_package_installs_verifies_and_purges, 1200)
{
  struct cx_test_output o;
  run_sh(
      "[ \"$(id -u)\" = 0 ] || exit 77\n"
      "if dpkg -s cronix >/dev/null 2>&1 || [ -e /usr/bin/cronix ]; then\n"
      "  exit 76\n"
      "fi\n"
      "fail() { echo \"$*\"; exit 1; }\n"
      "make -s --no-print-directory deb DEB_DIR=\"$2/deb\" >\"$2/make.log\" "
      "2>&1 || { tail -n 40 \"$2/make.log\"; exit 1; }\n"
      "deb=$(ls \"$2\"/deb/cronix_*_$(dpkg --print-architecture).deb) || "
      "fail 'no package'\n"
      /* Units enabled but never started by the maintainer scripts. */
      "dpkg-deb -e \"$deb\" \"$2/ctl\" || exit 1\n"
      "grep -q 'deb-systemd-invoke.*start' \"$2/ctl/postinst\" && "
      "fail 'postinst starts a unit'\n"
      "grep -qx /etc/cronix/cronix.conf \"$2/ctl/conffiles\" || "
      "fail 'cronix.conf is no conffile'\n"
      "trap 'dpkg --purge cronix >/dev/null 2>&1' EXIT\n"
      /* Another process may hold the dpkg lock for a while. */
      "i=0\n"
      "until dpkg -i \"$deb\" >\"$2/dpkg.log\" 2>&1; do\n"
      "  grep -q 'lock' \"$2/dpkg.log\" && [ $i -lt 20 ] || "
      "{ cat \"$2/dpkg.log\"; exit 1; }\n"
      "  i=$((i + 1)); sleep 15\n"
      "done\n"
      "/usr/bin/cronix version | grep -q '^cronix ' || fail 'cronix version'\n"
      "getent passwd cronix >/dev/null || fail 'no user cronix'\n"
      "[ \"$(stat -c %a:%U:%G /etc/cronix/cronix.conf)\" = 640:root:cronix ] "
      "|| fail \"cronix.conf is $(stat -c %a:%U:%G /etc/cronix/cronix.conf)\"\n"
      "[ \"$(stat -c %U /var/lib/cronix)\" = cronix ] || "
      "fail '/var/lib/cronix not owned by cronix'\n"
      "for u in standalone admin node; do\n"
      "  systemd-analyze verify --man=no "
      "/lib/systemd/system/cronix-$u.service || fail \"verify $u\"\n"
      "done\n"
      "w=/etc/systemd/system/multi-user.target.wants\n"
      "[ -L $w/cronix-standalone.service ] || fail 'standalone not enabled'\n"
      "[ -e $w/cronix-admin.service ] && fail 'admin enabled'\n"
      "[ -f /usr/share/man/man1/cronix.1.gz ] || fail 'no man page'\n"
      "[ -f /usr/share/bash-completion/completions/cronix ] || "
      "fail 'no bash completion'\n"
      "dpkg --purge cronix >\"$2/purge.log\" 2>&1 || "
      "{ cat \"$2/purge.log\"; exit 1; }\n"
      "trap - EXIT\n"
      "for f in /usr/bin/cronix /etc/cronix /var/lib/cronix "
      "$w/cronix-standalone.service; do\n"
      "  [ -e $f ] && fail \"$f left after purge\"\n"
      "done\n"
      "exit 0\n",
      1190, &o);
  if (o.status == 77 || o.status == 76) {
    int st = o.status;
    cx_test_output_free(&o);
    cx_test_skip(st == 77 ? "dpkg -i needs root"
                          : "cronix is installed on this machine already");
  }
  ASSERT_MSG(o.status == 0 && o.err_len == 0, "exit %d: %s%s", o.status, o.out,
             o.err);
  cx_test_output_free(&o);
}
