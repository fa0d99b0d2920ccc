#!/usr/bin/env bash
# Runs each Check suite given as an argument and sums their results into
# one closing line, "N passed, N failed". Check forks every test and
# enforces a per-test timeout (CK_DEFAULT_TIMEOUT seconds, raised for
# sanitizer builds, which run several times slower).
#
# TEST_JOBS=N runs N suites at a time (default 1). The suites spend most of
# their time waiting (timeouts, child processes, terminals), not computing:
# a plain run takes about 60 s of CPU in 150 s, so two at a time on two
# cores shortens CI's five runs by minutes. Each suite's report is printed
# whole, in the order given, once it is done.
set -u
: "${CK_DEFAULT_TIMEOUT:=60}"
if [ -n "${SAN:-}" ]; then : "${CK_TIMEOUT_MULTIPLIER:=3}"; export CK_TIMEOUT_MULTIPLIER; fi
export CK_DEFAULT_TIMEOUT
: "${TEST_JOBS:=1}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# Runs one suite or script, leaving its output and exit status in $logs.
run_one() {
  local t=$1 name
  name=$(basename "$t")
  "$t" >"$logs/$name.log" 2>&1
  echo $? >"$logs/$name.rc"
}

passed=0 failed=0
# Prints one suite's result from its log and adds it to the totals.
report() {
  local t=$1 name log rc line n f e bad
  name=$(basename "$t")
  log=$logs/$name.log
  rc=$(cat "$logs/$name.rc")
  # A shell script is one test: its exit status decides.
  if [ "${t%.sh}" != "$t" ]; then
    if [ "$rc" -eq 0 ]; then
      echo "ok   $name"; passed=$((passed + 1))
    else
      echo "FAIL $name"; cat "$log"; failed=$((failed + 1))
    fi
    return
  fi
  # Check's summary: "NN%: Checks: N, Failures: F, Errors: E"
  line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "FAIL $name: no Check summary (exit $rc)"
    cat "$log"
    failed=$((failed + 1))
    return
  fi
  n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
  f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
  e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
  bad=$((f + e))
  passed=$((passed + n - bad))
  failed=$((failed + bad))
  if [ "$bad" -gt 0 ] || [ "$rc" -ne 0 ]; then
    echo "FAIL $name: $line"
    grep -vE '^[0-9]+%: Checks' "$log" | grep -E ':[EF]:|error|Error|ERROR|SUMMARY: |WARNING: ThreadSanitizer' | head -n 40
    [ "$bad" -gt 0 ] || { failed=$((failed + 1)); cat "$log"; }
  else
    echo "ok   $name: $line"
  fi
  # Notes the suites print themselves (backends run and skipped).
  grep -E '^(backends|skipped):' "$log" | sed 's/^/     /'
}

if [ "$TEST_JOBS" -le 1 ]; then
  for t in "$@"; do
    run_one "$t"
    report "$t"
  done
else
  running=0
  for t in "$@"; do
    if [ "$running" -ge "$TEST_JOBS" ]; then
      wait -n
      running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
  done
  wait
  for t in "$@"; do
    report "$t"
  done
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
