#!/bin/bash
# Experiment 1 runner: alternates send / zc / zcfix, 5 rounds, 64K/256K/1M, loopback and veth.
# Output: results/exp1.log (one "net=.. <send line> <recv line>" per run)
set -u
cd "$(dirname "$0")"; mkdir -p results; LOG=results/exp1.log; : > $LOG
ROUNDS=${ROUNDS:-5}; MB=${MB:-2048}
setup_ns() {
  ip netns add zcA && ip netns add zcB &&
  ip link add zcva type veth peer name zcvb &&
  ip link set zcva netns zcA && ip link set zcvb netns zcB &&
  ip -n zcA addr add 10.77.0.1/24 dev zcva && ip -n zcB addr add 10.77.0.2/24 dev zcvb &&
  ip -n zcA link set zcva up && ip -n zcB link set zcvb up &&
  ip -n zcA link set lo up && ip -n zcB link set lo up
}
cleanup_ns() { ip netns del zcA 2>/dev/null; ip netns del zcB 2>/dev/null; }
trap cleanup_ns EXIT
port=9200
run() { # net mode bsz
  local net=$1 m=$2 b=$3 rx tx host pre_r pre_s
  port=$((port+1))
  if [ $net = lo ]; then host=127.0.0.1; pre_r=""; pre_s=""; else host=10.77.0.2; pre_r="ip netns exec zcB"; pre_s="ip netns exec zcA"; fi
  $pre_r timeout 30 ./zc recv $port $b > results/rx.tmp 2>&1 & local rp=$!
  sleep 0.05
  tx=$($pre_s timeout 30 ./zc send $host $port $m $b $MB 2>&1); wait $rp
  echo "net=$net $tx $(cat results/rx.tmp)" | tr '\n' ' ' >> $LOG; echo >> $LOG
}
echo "load_start: $(uptime)" | tee -a $LOG
for net in lo veth; do
  if [ $net = veth ]; then cleanup_ns; setup_ns || { echo "netns setup failed rc=$?" | tee -a $LOG; continue; }
    ip -n zcA link show zcva | head -1 >> $LOG; fi
  for b in 65536 262144 1048576; do
    for r in $(seq $ROUNDS); do for m in send zc zcfix; do run $net $m $b; done; done
  done
  echo "load_after_$net: $(uptime)" | tee -a $LOG
done
