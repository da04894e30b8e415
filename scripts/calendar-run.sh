#!/usr/bin/env bash
# The calendar run (issue 11): test suites under libfaketime at instants
# where date code breaks -- year end, leap day, DST changes in the host
# zone, the 32-bit time_t rollover. Called by run-tests.sh; its last line is
# "calendar: N passed, N failed" (each test at each instant counts once).
#
#   scripts/calendar-run.sh [BUILD]   (default build/san)
#
# The clock is moved by an offset (FAKETIME="+N"), computed afresh just
# before each case so the case starts at the instant and time then runs on.
# An offset, unlike a fixed start ("@..."), is the same in every process, so
# a cronix the test starts agrees with the test about the time. Monotonic
# clocks stay real: timeouts and the harness's deadlines are unaffected.
# README (Tests) says which suites are in and why the others are not.
set -u
build=${1:-build/san}
passed=0 failed=0

lib=
for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do
  [ -e "$f" ] && { lib=$f; break; }
done
if [ -z "$lib" ]; then
  echo "FAIL calendar: libfaketime not found (apt-get install faketime)"
  echo "calendar: 0 passed, 1 failed"
  exit 1
fi

# key | label | UTC instant | host zone (TZ). Each starts a few seconds
# before the edge it is named for, so the integration cases (which take
# seconds) cross it and the quick unit tests run on its last day.
instants=(
  "ye|year end|2026-12-31 23:59:58|UTC"
  "feb28|leap year Feb 28 -> 29|2028-02-28 23:59:58|UTC"
  "feb29|leap day Feb 29 -> Mar 1|2028-02-29 23:59:58|UTC"
  "bspring|Berlin spring forward|2027-03-28 00:59:55|Europe/Berlin"
  "bfall|Berlin fall back|2027-10-31 00:59:55|Europe/Berlin"
  "nspring|New York spring forward|2027-03-14 06:59:55|America/New_York"
  "nfall|New York fall back|2027-11-07 05:59:55|America/New_York"
  "y2038|32-bit time_t rollover at 03:14:07|2038-01-19 03:14:05|UTC"
)

# suite | selector ("" = the whole suite but for $skip; "=name" = one
# test, "a b" = tests containing a or b) | instant keys ("all"). unit-cron
# reads no clock (callers pass "now"), only the host zone: it runs whole in
# New York (DST day, west of UTC), its host-zone tests in Berlin too.
# The integration cases are those whose checks involve today's date,
# midnight, the next fire or the default zone, on SQLite and the in-process
# coordination or through a `cronix standalone` (no server to start, so
# they are quick); the long ones run where they matter most.
cases=(
  "unit-job||all"
  "unit-sched||all"
  "unit-cron||nfall"
  "unit-cron|host_zone default|bspring"
  "integration-cli||bspring nfall y2038"
  "integration-cluster|=cluster_local_failover_moves_soonest_fire_first|all"
  "integration-cluster|=cluster_local_leader_purges_runs_and_audit_rows_past_retention|all"
  "integration-node|=node_daily_midnight_scheduled_for_next_midnight|all"
  "integration-node|=node_six_field_every_two_seconds_on_the_second|ye y2038"
  "integration-node|=node_timeout_kills_whole_group_and_records_timeout|ye"
  "integration-admin_job|=admin_job_local_add_auto_http_publishes_row_and_key|all"
  "integration-admin_job|=admin_job_local_add_next_times_in_job_zone|all"
  "integration-admin_user|=admin_local_statis_week_has_seven_days_with_zeros_and_today_counts|all"
  "integration-admin_user|=admin_local_statis_days_follow_the_default_zone|all"
  "integration-e2e|=e2e_standalone_every_two_seconds_on_the_second_and_daily_midnight_next|ye feb29 nfall y2038"
)
# Clock-free (explicit instants) and slow: not in the calendar run.
skip="sched_matches_reference_model_1m_entries
sched_matches_reference_model_distinct_instants
sched_memory_per_entry_at_1m"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}:verify_asan_link_order=0"
export CX_CRONIX_BIN=${CX_CRONIX_BIN:-$PWD/$build/cronix}

# run_case INSTANT_EPOCH TZ SUITE SELECTOR
run_case() {
  local at=$1 tz=$2 suite=$3 sel=$4 bin=$build/tests/$3 log out
  if [ ! -x "$bin" ]; then
    echo "FAIL calendar $suite: no $bin"
    failed=$((failed + 1))
    return
  fi
  log=$(mktemp)
  # libfaketime preloaded comes before the ASan runtime, which ASan refuses
  # unless verify_asan_link_order=0 (above); the interceptors still work.
  # shellcheck disable=SC2086 # sel is a list of test names
  TZ=$tz LD_PRELOAD=$lib FAKETIME="+$((at - $(date +%s)))" \
    FAKETIME_DONT_FAKE_MONOTONIC=1 "$bin" $sel >"$log" 2>&1
  grep -v '^ok ' "$log" | grep -v ': [0-9]* passed, [0-9]* failed' || true
  out=$(tail -n 1 "$log")
  rm -f "$log"
  if [[ $out =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]] &&
      [ $((BASH_REMATCH[1] + BASH_REMATCH[2])) -gt 0 ]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
  else
    echo "FAIL calendar $suite $sel: no test ran or no summary"
    failed=$((failed + 1))
  fi
}

shm_before=$(find /dev/shm -maxdepth 1 -name 'faketime_shm_*' 2>/dev/null |
  sed 's/.*_//')
start=$(date +%s)
for entry in "${instants[@]}"; do
  IFS='|' read -r key label utc tz <<<"$entry"
  at=$(date -ud "$utc" +%s)
  p0=$passed f0=$failed
  echo "== calendar: $label: $utc UTC, TZ=$tz"
  for c in "${cases[@]}"; do
    IFS='|' read -r suite sel when <<<"$c"
    case " $when " in *" all "* | *" $key "*) ;; *) continue ;; esac
    if [ -z "$sel" ] && [ -x "$build/tests/$suite" ]; then
      sel=$("$build/tests/$suite" --list | grep -vxF "$skip" | sed 's/^/=/')
    fi
    run_case "$at" "$tz" "$suite" "$sel"
  done
  echo "   $label: $((passed - p0)) passed, $((failed - f0)) failed"
done
# libfaketime 0.9.10 keeps a /dev/shm object per process and leaves it
# behind when the process is killed (as the harness kills what a test left
# running): remove those of ours whose process is gone.
for f in /dev/shm/faketime_shm_*; do
  [ -e "$f" ] || continue
  pid=${f##*_}
  grep -qx "$pid" <<<"$shm_before" && continue
  [ -d "/proc/$pid" ] || rm -f "$f" "/dev/shm/sem.faketime_sem_$pid"
done
echo "calendar run took $(($(date +%s) - start)) s"
echo "calendar: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
