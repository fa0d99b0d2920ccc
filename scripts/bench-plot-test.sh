#!/usr/bin/env bash
# scripts/bench-plot-test.sh — `make bench-plot-check`: scripts/bench-plot
# over tests/fixtures/bench-plot.json, and its refusals of JSON it cannot
# draw; then kart-bench --plot, when build/kart-bench is there.
#
# The fixture is a real `kart-bench --quick` run cut down to two cases of
# echo and two of locks, with two rows edited so that every mark occurs:
# libuv's req_per_s at conns=300 pipeline=16 made client-bound, libevent's
# cpu_us_per_req at conns=50 made a failed measurement (value null, error).
#
# What the charts must show is worked out here from the fixture, by the
# rules of docs/bench.md, and counted in the SVG gnuplot wrote: one filled
# point per ratio whose rounds agreed, one hollow point per "no difference",
# no point for a baseline, a client-bound throughput or an error (the word
# instead), kart's implementations as circles and the peers' as squares.
#
# Without gnuplot it says "skipped" and exits 0 (it is `make bench-plot`'s
# package, not the build's); BENCH_PLOT_REQUIRE=1 makes that a failure.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-build}
fixture=tests/fixtures/bench-plot.json
plot=scripts/bench-plot

if ! command -v gnuplot >/dev/null 2>&1; then
  if [ "${BENCH_PLOT_REQUIRE:-0}" = 1 ]; then
    echo "FAIL: gnuplot is not installed (scripts/deps.sh --plot installs it)"
    exit 1
  fi
  echo "skipped: bench-plot-check: gnuplot is not installed (scripts/deps.sh --plot)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }

# expect NAME STATUS TEXT CMD...: CMD exits STATUS and says TEXT on stderr.
expect() {
  local name=$1 status=$2 text=$3
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" -ne "$status" ]; then
    fail "$name: exit $rc, not $status"; cat "$tmp/err"
  elif [ -n "$text" ] && ! grep -qF -- "$text" "$tmp/err"; then
    fail "$name: stderr lacks '$text':"; cat "$tmp/err"
  else
    ok "$name"
  fi
}

expect "--check finds gnuplot" 0 "" "$plot" --check
expect "no arguments: usage" 2 "usage:" "$plot"
expect "one argument: usage" 2 "usage:" "$plot" "$fixture"
expect "unknown option" 2 "unknown option --frobnicate" "$plot" --frobnicate x y

# The charts of the fixture.
if "$plot" "$fixture" "$tmp/charts" >"$tmp/out" 2>"$tmp/err"; then
  ok "the fixture draws"
  python3 - "$fixture" "$tmp/charts" <<'EOF' >"$tmp/check" 2>&1
import json, os, re, sys
import xml.etree.ElementTree as ET

fixture, d = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(fixture)]
run, rows = lines[0]["run"], lines[1:]
scenarios = sorted({r["scenario"] for r in rows})
problems = []
got = sorted(f for f in os.listdir(d))
if got != [s + ".svg" for s in scenarios]:
    problems.append(f"files {got}, not one per scenario {scenarios}")
for s in scenarios:
    path = os.path.join(d, s + ".svg")
    text = open(path, encoding="utf-8").read()
    try:
        ET.fromstring(text)
    except ET.ParseError as e:
        problems.append(f"{s}: not well-formed XML: {e}")
    mine = [r for r in rows if r["scenario"] == s and "skipped" not in r]
    texts = re.findall(r"<text>([^<]*)</text>", text)
    # Where the figures come from.
    m, b = run["machine"], run["build"]
    date = run["date"].replace("T", " ").replace("Z", " UTC")
    for want in (date, f"seed {run['seed']}", m["cpu"], m["kernel"], b["git"], s + ":"):
        if not any(want in t for t in texts):
            problems.append(f"{s}: no text holds {want!r}")
    # One panel per metric, titled with its direction.
    for metric in {(r["metric"], r["unit"], r["better"]) for r in mine}:
        title = f"{metric[0]} ({metric[1]}): {metric[2]} is better"
        if title not in texts:
            problems.append(f"{s}: no panel titled {title!r}")
    # Every case's parameters, under every panel.
    npanels = len({r["metric"] for r in mine})
    for r in mine:
        for k, v in r["params"].items():
            if texts.count(f"{k}={v}") < npanels:
                problems.append(f"{s}: {k}={v} is not under every panel")
    # The points, by kind.
    drawn = [
        r for r in mine
        if r.get("baseline") not in (None, r["impl"])
        and r["value"] is not None and not r.get("client_bound")
    ]
    baselines = {r["baseline"] for r in mine if "baseline" in r}
    in_key = sorted({r["impl"] for r in mine} - baselines)
    kart = lambda r: r["impl"].startswith("kart")
    want = {
        # gnuplot's SVG names point type N gpPt(N-1): 7 filled circle, 6
        # hollow circle, 5 filled square, 4 hollow square. The key has one
        # filled point per implementation, and one filled and one hollow
        # circle for the two kinds.
        "gpPt6": sum(kart(r) and not r["no_difference"] for r in drawn)
        + sum(i.startswith("kart") for i in in_key) + 1,
        "gpPt5": sum(kart(r) and r["no_difference"] for r in drawn) + 1,
        "gpPt4": sum(not kart(r) and not r["no_difference"] for r in drawn)
        + sum(not i.startswith("kart") for i in in_key),
        "gpPt3": sum(not kart(r) and r["no_difference"] for r in drawn),
    }
    for pt, n in want.items():
        # (gnuplot puts a white disc under a point over an error bar.)
        have = len(re.findall(rf"<use xlink:href='#{pt}' transform=[^>]* color='(?!#FFFFFF)", text))
        if have != n:
            problems.append(f"{s}: {have} points {pt}, not {n}")
    # Words instead of points.
    for word, pred in (
        ("client-bound", lambda r: r.get("client_bound") and r["value"] is not None),
        ("error", lambda r: r["value"] is None),
    ):
        n = sum(1 for r in mine if pred(r))
        if texts.count(word) != n:
            problems.append(f"{s}: {texts.count(word)} '{word}', not {n}")
    # The key names every implementation drawn and no baseline.
    for i in in_key:
        if not any(t == i or t.startswith(i + " vs ") for t in texts):
            problems.append(f"{s}: {i} is not in the key")
    for bl in baselines:
        if bl in texts:
            problems.append(f"{s}: the baseline {bl} has a key entry")
    skipped = sorted({r["impl"] for r in rows if r["scenario"] == s and "skipped" in r})
    for i in skipped:
        if not any("Skipped here" in t and i in t for t in texts):
            problems.append(f"{s}: skipped {i} is not named")
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
  if [ $? -eq 0 ]; then ok "the charts show the fixture's points, marks, titles"; else
    fail "the charts:"; cat "$tmp/check"; fi
  # The same JSON draws the same bytes (the committed charts do not churn).
  "$plot" "$fixture" "$tmp/again" >/dev/null 2>&1
  if cmp -s "$tmp/charts/echo.svg" "$tmp/again/echo.svg"; then ok "drawing is deterministic"; else
    fail "two drawings of one JSON differ"; fi
  "$plot" "$fixture" "$tmp/one" locks >/dev/null 2>&1
  if [ "$(ls "$tmp/one")" = locks.svg ]; then ok "a scenario named draws alone"; else
    fail "scenario locks alone: $(ls "$tmp/one")"; fi
else
  fail "the fixture does not draw:"; cat "$tmp/err"
fi

# The committed charts: one per scenario of the JSON beside them, each
# shown by docs/bench.md, none left from another run.
if python3 - <<'EOF' >"$tmp/docs" 2>&1; then
import json, os, sys
d = "docs/bench"
lines = [json.loads(l) for l in open(os.path.join(d, "bench.json"))]
want = {r["scenario"] for r in lines[1:]}
have = {f[:-4] for f in os.listdir(d) if f.endswith(".svg")}
page = open("docs/bench.md", encoding="utf-8").read()
problems = [f"no chart for {s}" for s in sorted(want - have)]
problems += [f"{s}.svg is not from docs/bench/bench.json" for s in sorted(have - want)]
problems += [f"docs/bench.md does not show {s}" for s in sorted(want) if f"(bench/{s}.svg)" not in page]
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
  ok "docs/bench/: a chart per scenario of its bench.json, each in docs/bench.md"
else
  fail "docs/bench/:"; cat "$tmp/docs"
fi

# What it refuses, each with the line and field named: the fixture edited
# by each line's Python (on `lines`, a list of dicts, the run's first), all
# written by one python3 (it starts slowly on a loaded machine).
cat >"$tmp/bad.list" <<'EOF'
a field missing	:3 (locks/kart): no "ratio_max"	del lines[2]["ratio_max"]
the run's date missing	:1: run: no "date"	del lines[0]["run"]["date"]
the machine missing	:1: run: no "machine"	del lines[0]["run"]["machine"]
a number as a string	"ratio" is "1.2", not a number	lines[5]["ratio"] = "1.2"
an infinite ratio	"ratio_max" is Infinity, not a number	lines[4]["ratio_max"] = float("inf")
true as a count	"cpus" is true, not an integer	lines[0]["run"]["machine"]["cpus"] = True
a negative ratio	"ratio_min" is -1: a ratio is 0 or above	lines[4]["ratio_min"] = -1
a ratio outside its range	lies outside its range	lines[4]["ratio"] = lines[4]["ratio_max"] * 2
better neither way	"better" is "sideways"	lines[3]["better"] = "sideways"
a value missing	no "value" (a number, or null with "error")	del lines[3]["value"]
null without an error	no "error"	lines[3]["value"] = None
not JSON	:4: not JSON	lines[3] = '{"scenario": \n'
not an object	:2: a JSON list, not an object	lines[1] = "[1, 2]\n"
no run line	the first line is not the run	del lines[0]
two run lines	a second run line	lines.insert(5, lines[0])
a result twice	locks/kart: two results for ns_per_op at threads=1	lines.insert(2, lines[1])
a smoke run	a --smoke run is a check, not a measurement	lines[0]["run"]["mode"] = "smoke"
the run alone	the run has no results	del lines[1:]
an empty file	empty: no run line, no results	lines.clear()
EOF
python3 - "$fixture" "$tmp" <<'EOF'
import json, sys
for n, case in enumerate(open(sys.argv[2] + "/bad.list", encoding="utf-8")):
    name, text, edit = case.rstrip("\n").split("\t")
    lines = [json.loads(l) for l in open(sys.argv[1])]
    exec(edit)
    with open(f"{sys.argv[2]}/bad{n}.json", "w") as f:
        for l in lines:
            f.write(l if isinstance(l, str) else json.dumps(l) + "\n")
EOF
n=0
while IFS=$'\t' read -r name text _; do
  expect "$name" 1 "$text" "$plot" "$tmp/bad$n.json" "$tmp/bad$n"
  if ls "$tmp/bad$n"/*.svg >/dev/null 2>&1; then fail "$name: wrote a chart all the same"; fi
  n=$((n + 1))
done <"$tmp/bad.list"
# A ratio of 0 (a metric a scenario says may be 0: kart-shm's server CPU)
# has no place on a log axis: it is drawn as a word, not refused.
python3 - "$fixture" "$tmp/zero.json" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
lines[4]["ratio"] = lines[4]["ratio_min"] = 0
with open(sys.argv[2], "w") as f:
    f.writelines(json.dumps(l) + "\n" for l in lines)
EOF
if "$plot" "$tmp/zero.json" "$tmp/zero" >"$tmp/zero.out" 2>&1 && grep -q "0x (0 in range)" "$tmp/zero"/*.svg; then
  ok "a ratio of 0: drawn as the word \"0x (0 in range)\""
else
  fail "a ratio of 0:"; cat "$tmp/zero.out"
fi
expect "a missing file" 1 "No such file or directory" "$plot" "$tmp/nonexistent.json" "$tmp/x"
expect "a scenario not in the JSON" 1 "no results for scenario pool" "$plot" "$fixture" "$tmp/x" pool
printf '\xff\xfe\n' >"$tmp/binary.json"
expect "not UTF-8" 1 "not UTF-8 text" "$plot" "$tmp/binary.json" "$tmp/x"

# No gnuplot on PATH, python3 alone: said, for --check and for drawing.
mkdir -p "$tmp/nopath"
ln -s "$(python3 -c 'import sys; print(sys.executable)')" "$tmp/nopath/python3"
expect "--check without gnuplot" 1 "gnuplot is not installed; on Debian: apt-get install gnuplot-nox" \
  env PATH="$tmp/nopath" "$plot" --check
expect "drawing without gnuplot" 1 "gnuplot is not installed" \
  env PATH="$tmp/nopath" "$plot" "$fixture" "$tmp/x"

# kart-bench --plot: its refusals, then a short real run drawn.
kb=$OUT/kart-bench
if [ -x "$kb" ]; then
  expect "kart-bench --smoke --plot" 2 "--plot draws measurements: --smoke takes none" \
    "$kb" --smoke --plot "$tmp/kb" mmap
  expect "kart-bench --json - --plot" 2 "--plot reads the JSON from a file" \
    "$kb" --json - --plot "$tmp/kb" mmap
  expect "kart-bench --plot, no script" 1 "--plot cannot run $tmp/none" \
    env KART_BENCH_PLOT="$tmp/none" "$kb" --quick --plot "$tmp/kb" mmap
  expect "kart-bench --plot, no gnuplot" 1 "gnuplot is not installed" \
    env PATH="$tmp/nopath" "$kb" --quick --plot "$tmp/kb" mmap
  printf '#!/bin/sh\n[ "$1" = --check ] && exit 0\necho cannot draw >&2; exit 1\n' >"$tmp/fails"
  chmod +x "$tmp/fails"
  expect "kart-bench --plot, the drawing fails" 1 "--plot: no charts drawn in $tmp/kb" \
    env KART_BENCH_PLOT="$tmp/fails" "$kb" --quick --rounds 2 --impl kart,plain-mmap --plot "$tmp/kb" mmap
  if "$kb" --quick --rounds 2 --impl kart,plain-mmap --plot "$tmp/kb" mmap >"$tmp/out" 2>&1 &&
    [ -s "$tmp/kb/bench.json" ] && [ -s "$tmp/kb/mmap.svg" ]; then
    ok "kart-bench --plot DIR: DIR/bench.json and DIR/mmap.svg"
  else
    fail "kart-bench --plot DIR:"; tail -20 "$tmp/out"; ls -l "$tmp/kb"
  fi
else
  echo "skipped: kart-bench --plot ($kb is not built)"
fi

echo "bench-plot-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
