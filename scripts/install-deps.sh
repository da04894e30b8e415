#!/usr/bin/env bash
# Installs the Debian packages Cronix needs for one purpose, and only those
# that are missing, so both README commands can call it every time.
#   scripts/install-deps.sh build   compile and run cronix
#   scripts/install-deps.sh test    + real etcd, MariaDB, clang/libFuzzer,
#                                   libfaketime (the calendar run),
#                                   headless Chromium + selenium (tests/ui),
#                                   debhelper (the package test), Node.js
#                                   and the npm OpenAPI validator
#                                   (tools/openapi, from its lock file)
#   scripts/install-deps.sh bench   + Go and robfig/cron for the peer bench
#   scripts/install-deps.sh deb     + debhelper and dpkg-dev (make deb)
# Purposes add up: `install-deps.sh test bench`.
# Works as root or through sudo; does nothing (and needs neither) when all
# packages are present.
set -euo pipefail

build_pkgs=(gcc make pkg-config libcurl4-openssl-dev libmicrohttpd-dev
  libjansson-dev libsqlite3-dev libmariadb-dev libssl-dev libcrypt-dev
  tzdata ca-certificates)
test_pkgs=(etcd-server etcd-client mariadb-server mariadb-client clang
  libclang-rt-14-dev curl python3 python3-aiosmtpd openssl procps faketime
  python3-jsonschema systemd groff-base chromium chromium-driver
  python3-selenium)
bench_pkgs=(golang-go golang-github-robfig-cron-dev)
deb_pkgs=(debhelper dpkg-dev fakeroot)

want=("${build_pkgs[@]}")
testing=0
for purpose in "$@"; do
  case "$purpose" in
  build) ;;
  test) want+=("${test_pkgs[@]}" "${deb_pkgs[@]}"); testing=1
    # Debian's nodejs and npm, unless a Node.js with npm is there already
    # (e.g. from NodeSource, whose nodejs bundles npm and conflicts with
    # Debian's npm).
    command -v npm >/dev/null 2>&1 || want+=(nodejs npm) ;;
  bench) want+=("${bench_pkgs[@]}") ;;
  deb) want+=("${deb_pkgs[@]}") ;;
  *) echo "install-deps: unknown purpose '$purpose' (build|test|bench|deb)" >&2
     exit 2 ;;
  esac
done

# A node running as root runs cmd jobs as this unprivileged system user
# (node.run_as's default) and refuses to start without it. Made only by
# root: a node started by another user runs jobs as that user.
if [ "$(id -u)" = 0 ] && ! getent passwd cronix >/dev/null; then
  echo "install-deps: adding system user cronix (cmd jobs run as it)"
  useradd --system --no-create-home --shell /usr/sbin/nologin cronix
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
      grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# The OpenAPI 3.1 validator (Debian has none): the exact versions of
# tools/openapi/package-lock.json, installed again only when the lock
# changes.
npm_tools() {
  [ "$testing" = 1 ] || return 0
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tools/openapi"
  if [ ! -e "$dir/node_modules/.package-lock.json" ] ||
      [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "install-deps: npm ci in tools/openapi"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  npm_tools
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
  >/dev/null
npm_tools
echo "install-deps: done"
