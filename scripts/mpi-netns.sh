#!/usr/bin/env bash
# scripts/mpi-netns.sh RANKS PROGRAM [ARGS...] — runs an MPI program (make
# check-mpi-netns: the MPI pool's suite; the pool_mpi bench's peer for
# docs/pool_mpi.md) across two "hosts": network
# namespaces kmpi-a (10.77.0.1) and kmpi-b (10.77.0.2) joined by a veth
# pair, each with a host name of its own (a UTS namespace), Open MPI
# launching the remote ranks through scripts/mpi-netns-agent instead of
# ssh, and only its TCP transport between ranks (btl self,tcp on the veth
# addresses), so that every message crosses the veth pair or loopback as
# TCP. Needs root (ip netns, unshare). Prints the time it took, and the
# program's output with MPI_NETNS_LOG=1; exit status: the program's, or 77
# when namespaces cannot be made here.
set -u
ranks=$1
suite=$(readlink -f "$2")
shift 2
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ] || ! ip netns add kmpi-probe 2>/dev/null; then
  echo "  SKIP    mpi-netns: network namespaces need root here" >&2
  exit 77
fi
ip netns del kmpi-probe
tmp=$(mktemp -d)
cleanup() {
  ip netns del kmpi-a 2>/dev/null
  ip netns del kmpi-b 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
cleanup
tmp=$(mktemp -d)
set -e
ip netns add kmpi-a
ip netns add kmpi-b
ip link add kmpi-va type veth peer name kmpi-vb
ip link set kmpi-va netns kmpi-a
ip link set kmpi-vb netns kmpi-b
ip -n kmpi-a addr add 10.77.0.1/24 dev kmpi-va
ip -n kmpi-b addr add 10.77.0.2/24 dev kmpi-vb
for ns in kmpi-a kmpi-b; do
  ip -n $ns link set lo up
done
ip -n kmpi-a link set kmpi-va up
ip -n kmpi-b link set kmpi-vb up
printf '10.77.0.1 kmpi-a\n10.77.0.2 kmpi-b\n' > "$tmp/hosts"
half=$(((ranks + 1) / 2))
printf '10.77.0.1 slots=%d\n10.77.0.2 slots=%d\n' "$half" "$half" > "$tmp/hostfile"
set +e
export KART_MPI_NETNS_HOSTS=$tmp/hosts
start=$(date +%s.%N)
# mpirun itself runs on "host" kmpi-a; ranks are placed by slot (half on
# each host: rank 0 and the first servers on a, the rest on b).
# mpi_yield_when_idle 1: both "hosts" share this machine's CPUs, which
# Open MPI cannot see (each has slots for its ranks), so it would let its
# ranks spin without yielding, and spinning ranks starve the softirq work
# that carries every packet across the veth pair: a ping-pong of 8 bytes
# took 4 ms one way (the scheduler's tick) and 1 MiB moved at 87 MB/s,
# against 40 us and 2.7 GB/s with yielding (raw TCP between the
# namespaces: 21 us). Open MPI yields by itself on a node it knows is
# oversubscribed, as mpirun -n 3 on two cores is.
ip netns exec kmpi-a unshare --uts sh -c 'hostname kmpi-a; exec "$@"' sh \
  timeout -k 10 "${MPI_TIMEOUT:-300}" mpirun --allow-run-as-root --oversubscribe \
  --hostfile "$tmp/hostfile" -n "$ranks" \
  --mca plm_rsh_agent "$here/mpi-netns-agent" -x KART_MPI_NETNS_HOSTS \
  --mca btl self,tcp --mca btl_tcp_if_include 10.77.0.0/24 --mca mpi_yield_when_idle 1 \
  --mca oob_tcp_if_include 10.77.0.0/24 --mca orte_keep_fqdn_hostnames 1 \
  "$suite" "$@" > "$tmp/log" 2>&1
status=$?
end=$(date +%s.%N)
if [ $status -eq 0 ]; then
  [ -n "${MPI_NETNS_LOG:-}" ] && cat "$tmp/log"
  echo "  PASS    $(basename "$suite") across two namespaces, $ranks ranks ($(echo "$end - $start" | bc) s)"
else
  echo "  FAIL    $(basename "$suite") across two namespaces, $ranks ranks (status $status)"
  tail -40 "$tmp/log"
fi
exit $status
