#!/usr/bin/env bash
# tests/numa/qemu-run.sh — `make check-numa`: boots the machine's Debian
# kernel (linux-image-amd64) under QEMU with TCG as a two-node NUMA machine
# (CPU 0 and 256 MiB on node 0, CPU 1 and 256 MiB on node 1, distance 20)
# and runs static test programs as its init; passes only when every one
# exits 0. Fails loudly: the console log, and why.
#
#   tests/numa/qemu-run.sh WORKDIR INIT PROGRAM...
#
# INIT is the static build of tests/numa/qemu_init.c; each PROGRAM a
# static binary, run in the order given, from /, where tests/numa/topo-*
# are present too (as check_numa expects). Environment: KERNEL (default:
# the newest /boot/vmlinuz-*), QEMU_TIMEOUT (seconds, default 180).
set -u
work=$1 init=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "check-numa: FAIL: $*" >&2; exit 1; }

command -v qemu-system-x86_64 >/dev/null ||
  fail "qemu-system-x86_64 missing (scripts/deps.sh --qemu installs qemu-system-x86)"
kernel=${KERNEL:-$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
[ -n "$kernel" ] && [ -r "$kernel" ] ||
  fail "no readable kernel in /boot (scripts/deps.sh --qemu installs linux-image-amd64; or set KERNEL=)"
[ $# -gt 0 ] || fail "no test programs given"

rm -rf "$work/root"
mkdir -p "$work/root/kart-tests" "$work/root/tests/numa" || fail "cannot make $work/root"
cp "$init" "$work/root/init" || fail "no init program $init"
: >"$work/root/kart-tests/LIST"
for p in "$@"; do
  file "$p" 2>/dev/null | grep -aq 'dynamically linked' && fail "$p is not static"
  cp "$p" "$work/root/kart-tests/" || fail "no test program $p"
  basename "$p" >>"$work/root/kart-tests/LIST"
done
cp -r "$here"/topo-* "$work/root/tests/numa/"
python3 "$here/mkcpio.py" "$work/root" >"$work/initramfs.cpio" || fail "cannot pack the initramfs"

timeout=${QEMU_TIMEOUT:-180}
log=$work/console.log
echo "check-numa: booting $kernel with two NUMA nodes (TCG; limit ${timeout} s): $*"
start=$SECONDS
timeout -k 10 "$timeout" qemu-system-x86_64 \
  -machine q35 -accel tcg -cpu max -m 512 -smp 2 \
  -object memory-backend-ram,id=m0,size=256M -object memory-backend-ram,id=m1,size=256M \
  -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1 \
  -numa dist,src=0,dst=1,val=20 \
  -kernel "$kernel" -initrd "$work/initramfs.cpio" \
  -append 'console=ttyS0 panic=-1 quiet' \
  -nographic -no-reboot </dev/null >"$log" 2>&1
rc=$?
tr -d '\r' <"$log" >"$log.txt"
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
  tail -n 60 "$log.txt"
  fail "QEMU ran past ${timeout} s (log: $log.txt)"
fi
if ! grep -aq '^kart-qemu: result PASS' "$log.txt"; then
  tail -n 80 "$log.txt"
  grep -aq 'kart-qemu: init up' "$log.txt" || fail "the guest never ran the init program (QEMU exit $rc; log: $log.txt)"
  fail "$(grep -a '^kart-qemu: result' "$log.txt" || echo 'no verdict'); log: $log.txt"
fi
grep -aE '^(kart-qemu: |ok   |FAIL |[0-9]+%: Checks)' "$log.txt"
echo "check-numa: PASS ($((SECONDS - start)) s)"
