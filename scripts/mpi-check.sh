#!/usr/bin/env bash
# scripts/mpi-check.sh SUITE — runs the MPI pool's suite (make check-mpi)
# under mpirun with 2, 3 and 4 ranks on this machine (--oversubscribe:
# more ranks than cores), each run bounded by a timeout. MPIRUN: the
# mpirun command and flags (the Makefile passes them); MPI_RANKS: the
# rank counts to run (default "2 3 4").
set -u
suite=$1
: "${MPIRUN:=mpirun --oversubscribe}"
: "${MPI_RANKS:=2 3 4}"
: "${MPI_TIMEOUT:=300}"
# Open MPI: the shared-memory and TCP transports only (no InfiniBand
# probing on machines that have none), on loopback.
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp}
export OMPI_MCA_btl_tcp_if_include=${OMPI_MCA_btl_tcp_if_include:-lo}
export OMPI_MCA_oob_tcp_if_include=${OMPI_MCA_oob_tcp_if_include:-lo}
root=$(cd "$(dirname "$0")/.." && pwd)
so=$(dirname "$(dirname "$suite")")/libkart-mpi.so.1
status=0
hdr=$(grep -o 'KART_API [^(]*(' "$root/include/kart/pool_mpi.h" | grep -o 'kart_[a-z_]*(' | tr -d '(' | sort)
map=$(grep -o '^ *kart_[a-z_]*;' "$root/mpi/libkart-mpi.map" | tr -d ' ;' | sort)
if [ -f "$so" ]; then
  exp=$(nm -D --defined-only "$so" | awk '$3 ~ /^kart_mpi_/ { print $3 }' | grep '@@KART_MPI_0.2$' |
    sed 's/@.*//' | sort)
else
  exp=$map
fi
if [ "$hdr" = "$map" ] && [ "$map" = "$exp" ]; then
  echo "  PASS    libkart-mpi exports: $(echo "$map" | wc -l) symbols at KART_MPI_0.2"
else
  echo "  FAIL    libkart-mpi exports: header, map and $so differ"
  diff <(echo "$hdr") <(echo "$map")
  diff <(echo "$map") <(echo "$exp")
  status=1
fi
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/mpi/lsan.supp:print_suppressions=0}
# Full stacks for the leak reports, so that the suppressions (by library)
# match allocations made deep inside Open MPI.
export ASAN_OPTIONS=${ASAN_OPTIONS:-fast_unwind_on_malloc=0}
# Under ThreadSanitizer, Open MPI's own lock order is not reported
# (tests/mpi/tsan.supp).
export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$root/tests/mpi/tsan.supp}
for n in $MPI_RANKS; do
  start=$(date +%s)
  if timeout -k 10 "$MPI_TIMEOUT" $MPIRUN -n "$n" "$suite" > "$suite.$n.log" 2>&1; then
    echo "  PASS    check_pool_mpi, $n ranks ($(($(date +%s) - start)) s)"
  else
    echo "  FAIL    check_pool_mpi, $n ranks: $suite.$n.log"
    tail -40 "$suite.$n.log"
    status=1
  fi
done
exit $status
