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
status=0
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
