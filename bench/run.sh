#!/usr/bin/env bash
# `make bench`: every benchmark next to its peer, in one invocation, on this
# machine. Prints tables and keeps a copy in BUILD/bench/results.txt.
#   BENCH_TIMER_SECONDS   measured seconds per timer-core size (default 30)
#   BENCH_SIZES           timer-core sizes (default "10000 100000 1000000")
#   BENCH_ONLY            run only sections whose name contains this
set -euo pipefail
build=${1:-build}
secs=${BENCH_TIMER_SECONDS:-30}
sizes=${BENCH_SIZES:-"10000 100000 1000000"}
only=${BENCH_ONLY:-}
out=$build/bench/results.txt
mkdir -p "$build/bench"
: >"$out"

say() { echo "$@" | tee -a "$out"; }
want() { [ -z "$only" ] || [[ $1 == *"$only"* ]]; }
val() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.1fx", a / b; else print "-" }'; }

# The Go peer harness builds offline against Debian's robfig/cron package.
robfig=$build/bench/robfig_bench
export GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local
export GOCACHE=${GOCACHE:-$PWD/$build/bench/gocache}
(cd bench/go && go build -o "../../$robfig" .)

say "# Cronix benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -m)"
say "# command: make bench (BENCH_TIMER_SECONDS=$secs BENCH_SIZES=\"$sizes\")"

if want cron; then
  say ""
  say "## cron: parse and next-fire over bench/exprs.txt ($(grep -cv '^#' bench/exprs.txt) expressions, UTC)"
  c=$(mktemp) g=$(mktemp)
  "$build/bench/cron_bench" bench/exprs.txt >"$c"
  TZ=UTC "$robfig" exprs bench/exprs.txt >"$g"
  say "| op | cronix ns/op | robfig/cron v3 ns/op | cronix speed-up |"
  say "|---|---:|---:|---:|"
  for k in parse next; do
    a=$(val ${k}_ns_per_op "$c") b=$(val ${k}_ns_per_op "$g")
    say "| $k | $a | $b | $(ratio "$b" "$a") |"
  done
  rm -f "$c" "$g"
fi

if want timer && [ -x "$build/bench/sched_bench" ]; then
  say ""
  say "## timer core: N entries firing once a minute at a random second, ${secs} s measured"
  say "| entries | impl | fires/s (expected) | CPU µs/fire | CPU % | bytes/entry | lateness p50 ms | p99 ms |"
  say "|---:|---|---:|---:|---:|---:|---:|---:|"
  for n in $sizes; do
    c=$(mktemp) g=$(mktemp)
    "$build/bench/sched_bench" "$n" "$secs" >"$c"
    TZ=UTC "$robfig" timer "$n" "$secs" >"$g"
    for f in "$c" "$g"; do
      name=cronix; [ "$f" = "$g" ] && name=robfig/cron
      say "| $n | $name | $(val fires_per_s "$f") ($(val expected_fires_per_s "$f")) | $(val cpu_us_per_fire "$f") | $(val cpu_percent "$f") | $(val mem_bytes_per_entry "$f") | $(val lateness_p50_ms "$f") | $(val lateness_p99_ms "$f") |"
    done
    say "| $n | ratio | | robfig/cronix CPU per fire: $(ratio "$(val cpu_us_per_fire "$g")" "$(val cpu_us_per_fire "$c")") | | | | |"
    rm -f "$c" "$g"
  done
fi

for b in store coord api node; do
  if want "$b" && [ -x "$build/bench/${b}_bench" ]; then
    say ""
    "$build/bench/${b}_bench" | tee -a "$out"
  fi
done

echo
echo "results kept in $out"
