#!/usr/bin/env bash
# `make bench`: every benchmark next to its peer, in one invocation, on this
# machine. Prints tables and keeps a copy in BUILD/bench/results.txt.
#   BENCH_TIMER_SECONDS   measured seconds per timer-core size (default 30)
#   BENCH_SIZES           timer-core sizes (default "10000 100000 1000000")
#   BENCH_ONLY            run only sections whose name contains this
#   BENCH_TAKEOVER_TRIALS leader takeovers measured (default 20)
#   BENCH_RECONCILE_JOBS  jobs in the reconciliation round (default 20000)
#   BENCH_FAILOVER_TRIALS node failovers per node.ttl (default 50)
#   BENCH_LIGHT_SECONDS, BENCH_BURST_SECONDS, BENCH_STEADY_SECONDS,
#   BENCH_BURST_N, BENCH_STEADY_JOBS  the node run-path scenarios
#                         (node_run_bench; see its header)
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

# node run path (issue 12): standalone and MariaDB + etcd, with the bare
# fork+exec floor measured in the same run.
if want node && [ -x "$build/bench/node_run_bench" ]; then
  say ""
  "$build/bench/node_run_bench" | tee -a "$out"
fi

# cluster (issue 7): leader takeover and reconciliation in process, node
# failover with real `cronix admin` / `cronix node` processes ($build/cronix).
if want cluster && [ -x "$build/bench/cluster_bench" ]; then
  say ""
  say "## cluster: real etcd (1 member) and MariaDB on loopback"
  t=$(mktemp)
  "$build/bench/cluster_bench" takeover "${BENCH_TAKEOVER_TRIALS:-20}" >"$t"
  say "| leader takeover after SIGKILL of the leader admin | trials | p50 ms | p99 ms | max ms |"
  say "|---|---:|---:|---:|---:|"
  say "| leader TTL $(val takeover_ttl_s "$t") s | $(val takeover_trials "$t") | $(val takeover_p50_ms "$t") | $(val takeover_p99_ms "$t") | $(val takeover_max_ms "$t") |"
  "$build/bench/cluster_bench" reconcile "${BENCH_RECONCILE_JOBS:-20000}" >"$t"
  say ""
  say "| reconciliation round | jobs | clean ms | keys deleted | repaired | with repairs ms |"
  say "|---|---:|---:|---:|---:|---:|"
  say "| MariaDB + etcd | $(val reconcile_jobs "$t") | $(val reconcile_clean_ms "$t") | $(val reconcile_drift_keys "$t") | $(val reconcile_drift_repaired "$t") | $(val reconcile_drift_ms "$t") |"
  say ""
  say "Node failover: SIGKILL of a node owning jobs -> each of its jobs' first run elsewhere (30 http jobs \`* * * * * *\`, 3 nodes, 1 admin). Trial delay = its slowest job. Expiry lag: unrenewed leases of the same TTL, key deleted - (grant + TTL)."
  say "| node.ttl | trials | trial p50 ms | trial p99 ms | trial max ms | job p50 ms | job p99 ms | kill->node key deleted p50 / p99 ms | key deleted->last job moved p50 / p99 ms | job moved->request p50 / p99 ms | etcd's own expiry lag p50 / max ms | p99 <= TTL + 1 s |"
  say "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for ttl in 5 2; do
    "$build/bench/cluster_bench" failover "${BENCH_FAILOVER_TRIALS:-50}" "$ttl" >"$t"
    cp "$t" "$build/bench/cluster_failover_ttl$ttl.txt" # every key, kept
    p99=$(val trial_delay_p99_ms "$t")
    met=$(awk -v a="$p99" -v l=$(((ttl + 1) * 1000)) 'BEGIN { print (a != "" && a <= l) ? "met" : "missed" }')
    say "| $ttl s | $(val trials "$t") | $(val trial_delay_p50_ms "$t") | $p99 | $(val trial_delay_max_ms "$t") | $(val job_delay_p50_ms "$t") | $(val job_delay_p99_ms "$t") | $(val kill_to_key_delete_p50_ms "$t") / $(val kill_to_key_delete_p99_ms "$t") | $(val key_delete_to_last_move_p50_ms "$t") / $(val key_delete_to_last_move_p99_ms "$t") | $(val move_to_first_request_p50_ms "$t") / $(val move_to_first_request_p99_ms "$t") | $(val etcd_lease_expiry_lag_p50_ms "$t") / $(val etcd_lease_expiry_lag_max_ms "$t") | $met |"
  done
  rm -f "$t"
fi

# live output (issue 15): real `cronix standalone`, and `cronix admin` +
# `cronix node --listen` on etcd + MariaDB.
if want live && [ -x "$build/bench/live_bench" ]; then
  say ""
  say "## live output: a line written by a job -> the same line at an SSE client of /job/output?follow=1 (200 lines, one per 20 ms); a ~1 MB/s job (48 KiB bursts every 50 ms, ~4 s) with 100 followers"
  say "| setup | latency p50 ms | p99 ms | max ms | job alone ms | job with 100 followers ms | followers ended | bytes per follower avg / missed max | admin CPU s | admin peak RSS MB | node CPU s | node peak RSS MB |"
  say "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for mode in standalone cluster; do
    t=$(mktemp)
    "$build/bench/live_bench" "$build/cronix" "$mode" >"$t"
    say "| $mode | $(val latency_p50_ms "$t") | $(val latency_p99_ms "$t") | $(val latency_max_ms "$t") | $(val job_alone_ms "$t") | $(val job_followed_ms "$t") | $(val followers_ended "$t")/$(val followers "$t") | $(val follower_bytes_avg "$t") / $(val follower_missed_max "$t") | $(val admin_cpu_s "$t") | $(val admin_hwm_mb "$t") | $(val node_cpu_s "$t") | $(val node_hwm_mb "$t") |"
    rm -f "$t"
  done
fi

if want console; then
  say ""
  say "## console: the jobs page with 100 000 jobs in headless Chromium (Performance API; targets: interactive < 300 ms, page change < 150 ms, assets < 200 KB gzipped)"
  CX_CRONIX_BIN=$PWD/$build/cronix /usr/bin/python3 bench/console_bench.py | tee -a "$out"
fi

echo
echo "results kept in $out"
