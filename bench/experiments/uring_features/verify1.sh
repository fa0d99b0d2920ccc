#!/bin/bash
# Full byte-by-byte verification of every exp1 variant (ordered sends, MAXSEND=1), 256 MB each.
set -u; cd "$(dirname "$0")"; L=results/verify1.log; : > $L
ip netns add zcA && ip netns add zcB && ip link add zcva type veth peer name zcvb &&
ip link set zcva netns zcA && ip link set zcvb netns zcB &&
ip -n zcA addr add 10.77.0.1/24 dev zcva && ip -n zcB addr add 10.77.0.2/24 dev zcvb &&
ip -n zcA link set zcva up && ip -n zcB link set zcvb up || echo "netns setup failed" >> $L
trap 'ip netns del zcA; ip netns del zcB' EXIT
p=14000
for net in lo veth; do for b in 65536 262144 1048576; do for m in send zc zcfix; do p=$((p+1))
  if [ $net = lo ]; then h=127.0.0.1; R=""; S=""; else h=10.77.0.2; R="ip netns exec zcB"; S="ip netns exec zcA"; fi
  $R timeout 30 ./zc recv $p $b verify > results/v.tmp 2>&1 & sleep 0.05
  tx=$($S timeout 30 ./zc send $h $p $m $b 256); wait
  echo "net=$net mode=$m bsz=$b $(grep -o 'bytes=[0-9]* bad=[0-9]*' results/v.tmp) sender: $(echo $tx | grep -o 'bytes=[0-9]*')" >> $L
done; done; done; rm -f results/v.tmp
