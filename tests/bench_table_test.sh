#!/usr/bin/env bash
# Description: scripts/bench-table (`make bench-table`, the README's
# benchmark tables) over tests/fixtures/bench-plot.json: one table per
# scenario and metric with a cell for each implementation, "~" exactly
# where the JSON says no difference, "client-bound" where it says so, the
# README's marked block replaced and nothing else in the file touched, and
# clear refusals (no markers, not JSON, no run header). Run by `make check`.
set -eu
cd "$(dirname "$0")/.."
fixture=tests/fixtures/bench-plot.json
table=scripts/bench-table
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "bench_table_test: $*"; failed=$((failed + 1)); }

"$table" "$fixture" >"$tmp/all.md" || fail "exit $? on the fixture"
# Expected counts come from the fixture itself, by another route (python's json).
read -r want_tables want_tilde want_cb < <(python3 - "$fixture" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][1:]
m = [r for r in rows if r.get("metric")]
print(len({(r["scenario"], r["metric"]) for r in m}),
      sum(1 for r in m if r.get("no_difference") and not r.get("client_bound")),
      sum(1 for r in m if r.get("client_bound")))
PY
)
got_tables=$(grep -c '^| case |' "$tmp/all.md" || true)
[ "$got_tables" = "$want_tables" ] || fail "tables: $got_tables, want $want_tables"
got_tilde=$(grep -o '~ |' "$tmp/all.md" | wc -l)
[ "$got_tilde" = "$want_tilde" ] || fail "'~' cells: $got_tilde, want $want_tilde"
got_cb=$(grep -o 'client-bound |' "$tmp/all.md" | wc -l)
[ "$got_cb" = "$want_cb" ] || fail "client-bound cells: $got_cb, want $want_cb"
# Every row of a table has as many cells as its header.
awk -F'|' '/^\| case \|/ {n = NF; next} /^\|---/ {next} /^\|/ && NF != n {bad++} END {exit bad > 0}' \
  "$tmp/all.md" || fail "a row with a different number of cells than its header"
grep -q '^Run .*seed' "$tmp/all.md" || fail "no run line (date, seed, machine)"

"$table" --headline "$fixture" >"$tmp/head.md" || fail "--headline: exit $?"
scen=$(python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1]) if l.strip()][1:]; print(len({x['scenario'] for x in r if x.get('metric')}))" "$fixture")
[ "$(grep -c '^| case |' "$tmp/head.md")" = "$scen" ] || fail "--headline: not one table per scenario"

printf 'before\n<!-- bench-table begin -->\nold\n<!-- bench-table end -->\nafter\n' >"$tmp/README.md"
"$table" --readme "$tmp/README.md" "$fixture" || fail "--readme: exit $?"
grep -q '^old$' "$tmp/README.md" && fail "--readme: the old block is still there"
[ "$(head -n 1 "$tmp/README.md")" = before ] || fail "--readme: the text before the block changed"
[ "$(tail -n 1 "$tmp/README.md")" = after ] || fail "--readme: the text after the block changed"
cmp -s <(sed -n '/begin -->/,/<!-- bench-table end/p' "$tmp/README.md" | sed '1d;$d') "$tmp/head.md" ||
  fail "--readme: the block is not the headline tables"

printf 'no markers\n' >"$tmp/plain.md"
if "$table" --readme "$tmp/plain.md" "$fixture" 2>"$tmp/err"; then fail "no markers: accepted"; fi
grep -q 'marker\|bench-table begin' "$tmp/err" || fail "no markers: unclear error: $(cat "$tmp/err")"
[ "$(cat "$tmp/plain.md")" = "no markers" ] || fail "no markers: the file was changed"
printf '{"run":{}}\nnot json\n' >"$tmp/bad.json"
if "$table" "$tmp/bad.json" 2>"$tmp/err"; then fail "not JSON: accepted"; fi
grep -q ':2: not JSON' "$tmp/err" || fail "not JSON: no line number: $(cat "$tmp/err")"
printf '{"scenario":"x"}\n' >"$tmp/nohead.json"
if "$table" "$tmp/nohead.json" 2>/dev/null; then fail "no run header: accepted"; fi

[ "$failed" = 0 ] || exit 1
echo "bench_table_test: ok"
