#!/usr/bin/env bash
# Runs each Check suite given as an argument and sums their results into
# one closing line, "tests: N passed, M failed, K skipped". A test that
# cannot run its real check here prints "SKIP: <test>: <why>"
# (tests/skip.h): it is counted as skipped, not passed, and its reason is
# listed under its suite and again, grouped by reason, before the closing
# line. A shell script that exits 77 is skipped (the automake convention).
# Check forks every test and enforces a per-test timeout (CK_DEFAULT_TIMEOUT seconds, raised for
# sanitizer builds, which run several times slower).
#
# TEST_WRAP="valgrind ..." runs each suite under that command
# (make check-valgrind).
#
# TEST_JOBS=N runs N suites at a time (default 1 here; make check passes 2). The suites spend most of
# their time waiting (timeouts, child processes, terminals), not computing:
# a plain run takes about 60 s of CPU in 150 s, so two at a time on two
# cores shortens CI's five runs by minutes. Each suite's report is printed
# whole, in the order given, once it is done.
set -u
: "${CK_DEFAULT_TIMEOUT:=60}"
if [ -n "${SAN:-}" ]; then : "${CK_TIMEOUT_MULTIPLIER:=3}"; export CK_TIMEOUT_MULTIPLIER; fi
[ -z "${CK_TIMEOUT_MULTIPLIER:-}" ] || export CK_TIMEOUT_MULTIPLIER
export CK_DEFAULT_TIMEOUT
: "${TEST_JOBS:=1}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# Runs one suite or script, leaving its output and exit status in $logs.
run_one() {
  local t=$1 name t0=$SECONDS
  name=$(basename "$t")
  # TEST_WRAP runs the suites (not the scripts) under a tool: valgrind.
  if [ -n "${TEST_WRAP:-}" ] && [ "${t%.sh}" = "$t" ]; then
    # shellcheck disable=SC2086 # the wrapper is a command line
    $TEST_WRAP "$t" >"$logs/$name.log" 2>&1
  else
    "$t" >"$logs/$name.log" 2>&1
  fi
  echo $? >"$logs/$name.rc"
  echo $((SECONDS - t0)) >"$logs/$name.s"
}

passed=0 failed=0 skipped=0
# Every SKIP line of every suite, for the summary at the end.
skips=$logs/skips.all
: >"$skips"
# Prints one suite's result from its log and adds it to the totals.
report() {
  local t=$1 name log rc line n f e bad
  name=$(basename "$t")
  log=$logs/$name.log
  rc=$(cat "$logs/$name.rc")
  echo "$(cat "$logs/$name.s") $name" >>"$logs/times"
  # A shell script is one test: its exit status decides.
  if [ "${t%.sh}" != "$t" ]; then
    if [ "$rc" -eq 0 ]; then
      echo "ok   $name"; passed=$((passed + 1))
    elif [ "$rc" -eq 77 ]; then
      echo "skip $name: $(tail -n 1 "$log")"; skipped=$((skipped + 1))
      echo "SKIP: $name: $(tail -n 1 "$log")" >>"$skips"
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
  # Skips: those of tests that ran come out of passed; "(not run)" ones
  # are tests the suite never added.
  local sk nr ran
  sk=$(grep -c '^SKIP: ' "$log")
  nr=$(grep -c '^SKIP: (not run)' "$log")
  ran=$((sk - nr))
  [ "$ran" -le $((n - bad)) ] || ran=$((n - bad))
  passed=$((passed + n - bad - ran))
  failed=$((failed + bad))
  skipped=$((skipped + ran + nr))
  grep '^SKIP: ' "$log" | sed "s|^SKIP: |SKIP: $name: |" >>"$skips"
  [ "$sk" -eq 0 ] || line="$line; skipped: $((ran + nr))"
  if [ "$bad" -gt 0 ] || [ "$rc" -ne 0 ]; then
    echo "FAIL $name: $line"
    grep -vE '^[0-9]+%: Checks' "$log" | grep -E ':[EF]:|error|Error|ERROR|SUMMARY: |WARNING: ThreadSanitizer' | head -n 40
    [ "$bad" -gt 0 ] || { failed=$((failed + 1)); cat "$log"; }
  else
    echo "ok   $name: $line ($(cat "$logs/$name.s") s)"
  fi
  # Notes the suites print themselves (backends run and skipped), and
  # the first skips with their reasons.
  grep -E '^(backends|skipped):' "$log" | sed 's/^/     /'
  if [ "$sk" -gt 0 ]; then
    grep '^SKIP: ' "$log" | head -n 10 | sed 's/^/     /'
    [ "$sk" -le 10 ] || echo "     ... and $((sk - 10)) more"
  fi
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
if [ -s "$skips" ]; then
  # Grouped by reason (the text after the test's name), most frequent first.
  echo "skipped, by reason:"
  sed -E 's/^SKIP: ([^:]+): (\(not run\) |[^:]+: )?/\1: /' "$skips" |
    sort | uniq -c | sort -rn
fi
# Where a run's time goes (CI's budget is tight): the slowest suites.
if [ -s "$logs/times" ]; then
  echo "slowest suites (wall seconds): $(sort -rn "$logs/times" | head -n 8 | awk '{printf "%s %s, ", $2, $1}' | sed 's/, $//')"
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
