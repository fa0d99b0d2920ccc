#!/bin/bash
# Experiments 2 and 3 runner.  Variants alternate within each round; fresh port per run
# (io_uring tears down the listening socket asynchronously after the server exits).
# Output: results/exp2.log, results/exp3.log: "tag=.. variant=.. <client line> <server line>"
set -u
cd "$(dirname "$0")"; mkdir -p results
ROUNDS=${ROUNDS:-5}; SECS=${SECS:-3}; port=${PORT0:-10000}
run() { # log tag variant-flags client-load
  local log=$1 tag=$2 flags=$3 load=$4
  port=$((port+1))
  timeout 30 ./echo $port $flags > results/srv.tmp 2>&1 & local sp=$!
  sleep 0.05
  local cl; cl=$(timeout 30 ./client 127.0.0.1 $port $load $SECS 2>&1); local rc=$?
  wait $sp; local src=$?
  echo "tag=$tag variant='$flags' crc=$rc src=$src $cl $(cat results/srv.tmp)" | tr '\n' ' ' >> $log; echo >> $log
}
if [ "${EXP:-23}" != 3 ]; then
  L=results/exp2.log; : > $L
  echo "load_start: $(uptime)" >> $L
  for load in "50 128 1" "1 64 1"; do
    for r in $(seq $ROUNDS); do  # all four variants alternate within a round
      for v in "" "-d" "-t" "-d -t"; do run $L "c=${load// /_}" "$v" "$load"; done
    done
  done
  echo "load_end: $(uptime)" >> $L
fi
if [ "${EXP:-23}" != 2 ]; then
  L=results/exp3.log; : > $L
  echo "load_start: $(uptime)" >> $L
  if [ -n "${LOADS3:-}" ]; then loads3=("$LOADS3"); else loads3=("50 16384 1" "50 128 16" "50 16384 4"); fi
  for load in "${loads3[@]}"; do
    for r in $(seq $ROUNDS); do
      for v in "" "-b 1" "-b 2" ${EXTRA3:+"$EXTRA3"}; do run $L "c=${load// /_}" "$v" "$load"; done
    done
  done
  echo "load_end: $(uptime)" >> $L
fi
