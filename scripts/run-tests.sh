#!/usr/bin/env bash
# Runs each Check suite given as an argument and sums their results into
# one closing line, "N passed, N failed". Check forks every test and
# enforces a per-test timeout (CK_DEFAULT_TIMEOUT seconds, raised for
# sanitizer builds, which run several times slower).
set -u
: "${CK_DEFAULT_TIMEOUT:=60}"
if [ -n "${SAN:-}" ]; then : "${CK_TIMEOUT_MULTIPLIER:=3}"; export CK_TIMEOUT_MULTIPLIER; fi
export CK_DEFAULT_TIMEOUT
passed=0 failed=0 broken=0
for t in "$@"; do
  name=$(basename "$t")
  log=$(mktemp)
  # A shell script is one test: its exit status decides.
  if [ "${t%.sh}" != "$t" ]; then
    if "$t" >"$log" 2>&1; then
      echo "ok   $name"; passed=$((passed + 1))
    else
      echo "FAIL $name"; cat "$log"; failed=$((failed + 1))
    fi
    rm -f "$log"
    continue
  fi
  "$t" >"$log" 2>&1
  rc=$?
  # Check's summary: "NN%: Checks: N, Failures: F, Errors: E"
  line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "FAIL $name: no Check summary (exit $rc)"
    cat "$log"
    broken=$((broken + 1))
    failed=$((failed + 1))
  else
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
  fi
  rm -f "$log"
done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
