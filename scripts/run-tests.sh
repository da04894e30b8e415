#!/usr/bin/env bash
# Runs every test suite binary under BUILD/tests and the brief fuzz runs,
# then prints one total line "N passed, N failed" (the line CI reads).
# Exits non-zero if anything failed or a suite crashed.
set -u
build=${1:-build/san}
passed=0 failed=0 skipped=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CX_CRONIX_BIN=$PWD/$build/cronix
# The chaos test runs CX_CHAOS_SECONDS (default 120) here; `make chaos` longer.
export CX_CHAOS_REPORT=$PWD/$build/chaos-report.txt
rm -f "$CX_CHAOS_REPORT"

# Adds the "N passed, N failed[, N skipped]" last line of log to the totals;
# a run that exited non-zero with no failure counted, or printed no summary,
# counts as one failure.
count() {
  local what=$1 rc=$2 log=$3 out
  out=$(tail -n 1 "$log")
  if [[ $out =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    skipped=$((skipped + ${BASH_REMATCH[4]:-0}))
    if [ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then
      echo "FAIL $what exited $rc" >&2; failed=$((failed + 1))
    fi
  else
    echo "FAIL $what ended without a summary (exit $rc)" >&2
    failed=$((failed + 1))
  fi
}

for bin in "$build"/tests/unit-* "$build"/tests/integration-* "$build"/tests/chaos; do
  [ -x "$bin" ] || continue
  log=$(mktemp)
  "$bin" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  # The chaos test's summary table (per fault kind), pass or fail.
  if [ "${bin##*/}" = chaos ] && [ -s "$CX_CHAOS_REPORT" ]; then
    cat "$CX_CHAOS_REPORT"
  fi
  count "$bin" "$rc" "$log"
  rm -f "$log"
done

# The web console in headless Chromium (tests/ui, python3-selenium).
log=$(mktemp)
/usr/bin/python3 tests/ui/test_console.py 2>&1 | tee "$log"
count "ui tests" "${PIPESTATUS[0]}" "$log"
rm -f "$log"
# The same console against cronix admin + node on MariaDB + etcd.
log=$(mktemp)
/usr/bin/python3 tests/ui/test_console.py --cluster 2>&1 | tee "$log"
count "ui tests (cluster)" "${PIPESTATUS[0]}" "$log"
rm -f "$log"

# The calendar run: date-sensitive suites and cases under libfaketime at
# year end, leap days, DST changes and 2038 (README, Tests).
log=$(mktemp)
bash scripts/calendar-run.sh "$build" 2>&1 | tee "$log"
count "calendar run" "${PIPESTATUS[0]}" "$log"
rm -f "$log"

# Brief fuzz runs: each target for FUZZ_BRIEF seconds counts as one test.
for f in "$build"/fuzz/*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus=$(mktemp -d)
  seeds=tests/fuzz/corpus/$name
  if "$f" -max_total_time="${FUZZ_BRIEF:-20}" -print_final_stats=1 "$corpus" \
      $( [ -d "$seeds" ] && echo "$seeds") >"$corpus.log" 2>&1; then
    echo "ok   fuzz $name ($(grep -o 'stat::number_of_executed_units: [0-9]*' \
      "$corpus.log" | awk '{print $2}') runs)"
    passed=$((passed + 1))
  else
    echo "FAIL fuzz $name"; tail -n 40 "$corpus.log"
    failed=$((failed + 1))
  fi
  rm -rf "$corpus" "$corpus.log"
done

if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
