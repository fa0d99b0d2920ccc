#!/usr/bin/env bash
# scripts/mpi-deadrank.sh PROGRAM — a serving rank of the MPI pool killed
# (SIGKILL) mid-map (tests/mpi/deadrank.c), under mpirun -n 3 as launched
# by default (make check-mpi runs it). Checks what docs/pool_mpi.md ("A
# rank that dies") says the user sees with an MPI that has no ULFM (Open
# MPI 4.1): mpirun ends the whole job within MPI_DEAD_LIMIT seconds (rank
# 0 does not wait forever), exits non-zero, names the rank and the signal
# (MPICH 4.0's hydra names the signal and the pid), and leaves no process
# of the job running. With an MPI that lets the job
# go on and reports the failure, rank 0's future fails with -EHOSTDOWN
# and the program exits 0: that outcome passes too, and says so.
set -u
prog=$1
: "${MPIRUN:=mpirun --oversubscribe}"
: "${MPI_DEAD_LIMIT:=120}"
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp}
export OMPI_MCA_btl_tcp_if_include=${OMPI_MCA_btl_tcp_if_include:-lo}
export OMPI_MCA_oob_tcp_if_include=${OMPI_MCA_oob_tcp_if_include:-lo}
log=$prog.log
start=$(date +%s)
timeout -k 10 "$MPI_DEAD_LIMIT" $MPIRUN -n 3 "$prog" 20000 > "$log" 2>&1
rc=$?
end=$(date +%s.%N)
took=$(($(date +%s) - start))
killed=$(sed -n 's/^killing rank [0-9]* at \([0-9.]*\)$/\1/p' "$log")
after=${killed:+$(echo "$end - $killed" | bc | xargs printf '%.1f')}
fail() {
  echo "  FAIL    mpi-deadrank: $1 ($log)"
  tail -20 "$log"
  exit 1
}
# Nothing of the job may be left: allow a few seconds for the reaping.
for _ in 1 2 3 4 5 6 7 8 9 10; do
  left=$(pgrep -f -x "$prog 20000" | while read -r pid; do
    [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != Z ] && echo "$pid"; done)
  [ -z "$left" ] && break
  sleep 1
done
[ -z "$left" ] || fail "processes of the job left running: $left"
if [ "$rc" -eq 0 ]; then
  grep -q "done err=-112 " "$log" || fail "exit 0 without the -EHOSTDOWN (-112) future"
  echo "  PASS    mpi-deadrank: the job went on, the future failed with -EHOSTDOWN ($took s)"
  exit 0
fi
if [ "$rc" -eq 124 ] || [ "$took" -ge "$MPI_DEAD_LIMIT" ]; then
  fail "still running after $MPI_DEAD_LIMIT s: rank 0 hung"
fi
grep -q "done err=" "$log" && fail "rank 0's future completed, yet the job failed (status $rc)"
# Open MPI names the rank and the signal; MPICH's hydra names the signal
# ("EXIT STRING: Killed (signal 9)") and the process, not the rank (the
# program's own "killing rank 2" line says which).
if grep -q "rank 2 .*exited on signal 9" "$log"; then
  how="rank 2 killed by signal 9"
elif grep -q "EXIT STRING: Killed (signal 9)" "$log" && grep -q "^killing rank 2 " "$log"; then
  how="hydra: a process killed by signal 9, the program's rank 2"
else
  fail "mpirun did not name the dead rank (status $rc)"
fi
echo "  PASS    mpi-deadrank: mpirun ended the job (status $rc, $how, ${after:-?} s after the kill, $took s in all)"
