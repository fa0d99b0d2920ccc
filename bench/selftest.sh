#!/usr/bin/env bash
# bench/selftest.sh OUT — checks of kart-bench itself that a --smoke run
# does not make (make bench-smoke runs it after the smoke run; a few
# seconds): each check can fail.
#  - the Python peers: a shim `python3` put first on $PATH is started once
#    (kart-bench asks it for sys.executable), never per run, and the run's
#    JSON names the interpreter that ran;
#  - --list names every scenario's implementations, the like-for-like peers
#    (raw-poll for kart-poll, spin-futex-rwlock for kart-rwlock), and why
#    an implementation cannot run here;
#  - the run's JSON records the versions (or absence) of readline, libedit
#    and oneTBB beside the other peers;
#  - a case an implementation cannot run here (mqueue over
#    fs.mqueue.msgsize_max) still writes a JSON line saying skipped and why.
set -u
OUT=${1:-build}
BENCH=$OUT/kart-bench
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kart-bench-selftest-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "  ok: $*"; }
fail() { echo "  FAILED: $*"; fails=$((fails + 1)); }
check() { # check WHAT COMMAND...
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

echo "bench/selftest.sh: kart-bench's own checks"
[ -x "$BENCH" ] || { echo "bench/selftest.sh: $BENCH is not built" >&2; exit 1; }

# --- --list ---
"$BENCH" --list >"$tmp/list" 2>&1 || fail "kart-bench --list exits 0"
check "--list: echo has raw-poll, kart-poll's ratios are to it" \
    grep -Eq '^    kart-poll +available.*ratios to raw-poll' "$tmp/list"
check "--list: raw-poll is listed" grep -Eq '^    raw-poll +(available|unavailable here: .+)$' "$tmp/list"
check "--list: kart-rwlock's ratios are to the best of spin-futex-rwlock and pthread-rwlock" \
    grep -Eq '^    kart-rwlock +available.*the best of spin-futex-rwlock,pthread-rwlock' "$tmp/list"
check "--list: kart-select says why it is unavailable" \
    grep -Eq '^    kart-select +unavailable here: .+' "$tmp/list"
n=$(grep -Ec '^[a-z_]+: ' "$tmp/list")
s=$("$BENCH" --help | sed -n 's/^scenarios: //p' | wc -w)
check "--list: every scenario ($s) is listed ($n)" test "$n" -eq "$s" -a "$s" -gt 0

# --- the Python interpreter, resolved once ---
real=$(command -v python3 || true)
if [ -n "$real" ]; then
    mkdir "$tmp/shim"
    cat >"$tmp/shim/python3" <<SHIM
#!/bin/sh
echo started >>"$tmp/shim-starts"
exec "$real" "\$@"
SHIM
    chmod +x "$tmp/shim/python3"
    PATH="$tmp/shim:$PATH" "$BENCH" --smoke --impl python --json "$tmp/py.json" spawn \
        >"$tmp/py.out" 2>&1
    rc=$?
    check "python via a shim: the spawn smoke run passes (rc $rc)" test "$rc" -eq 0
    starts=$(wc -l <"$tmp/shim-starts" 2>/dev/null || echo 0)
    check "python via a shim: the shim started once ($starts)" test "$starts" -eq 1
    check "python via a shim: the python row ran" \
        grep -q '"scenario":"spawn","impl":"python","metric"' "$tmp/py.json"
    interp=$(sed -n 's/.*"python3":{"version":"[^"]*","path":"\([^"]*\)".*/\1/p' "$tmp/py.json")
    check "python via a shim: the JSON names the interpreter ($interp), not the shim" \
        sh -c "[ -x '$interp' ] && [ '$interp' != '$tmp/shim/python3' ]"
    check "python via a shim: the JSON says the shim was asked" \
        grep -q '"python3":{[^}]*"note":"started directly, not through \$PATH.s shim [^"]*/shim/python3 (asked once)' "$tmp/py.json"
    check "python via a shim: the header names the interpreter run" \
        grep -Eq "^  python3 +[0-9].*$interp" "$tmp/py.out"
else
    echo "  skipped: the python checks (no python3)"
fi

# --- readline, libedit, oneTBB versions in the run's JSON ---
"$BENCH" --smoke --impl mqueue --json "$tmp/q.json" queue >"$tmp/q.out" 2>&1
rc=$?
check "queue --impl mqueue smoke run passes (rc $rc)" test "$rc" -eq 0
for p in readline libedit tbb; do
    check "the run's JSON records $p (a version or why it is absent)" \
        grep -Eq "\"$p\":\\{\"(version\":\"[^\"]+|absent\":\"[^\"]+)\"" "$tmp/q.json"
    check "the header records $p" grep -Eq "^  $p +[^ ]" "$tmp/q.out"
done

# --- a case skipped here still has its JSON line ---
max=$(cat /proc/sys/fs/mqueue/msgsize_max 2>/dev/null || echo 0)
if grep -q '"impl":"mqueue",.*"skipped":"POSIX message queues unavailable here' "$tmp/q.json"; then
    # No message queues at all here (mq_open refused): every case says so.
    n=$(grep -c '"impl":"mqueue",.*"skipped":"POSIX message queues unavailable here' "$tmp/q.json")
    check "mqueue unavailable here: a skipped line per case ($n of 6)" test "$n" -eq 6
elif [ "$max" -gt 0 ] && [ "$max" -lt 65536 ]; then
    n=$(grep -c '"impl":"mqueue","params":{"producers":[12],"bytes":65536},"skipped":"fs.mqueue.msgsize_max is' "$tmp/q.json")
    check "mqueue over msgsize_max ($max): a skipped line per 64 KiB case ($n of 2)" test "$n" -eq 2
    check "mqueue's smaller cases ran" grep -q '"impl":"mqueue","metric"' "$tmp/q.json"
else
    echo "  skipped: the mqueue skip check (fs.mqueue.msgsize_max is $max)"
fi

if [ "$fails" -gt 0 ]; then
    echo "bench/selftest.sh: $fails check(s) FAILED"
    exit 1
fi
echo "bench/selftest.sh: all passed"
