#!/usr/bin/env bash
# Closed loop over HTTP, wrk -t1, gateway against the yardstick, interleaved rounds.
# Usage: scripts/bench/http-closed.sh [rounds] [seconds]
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-3}; SECS=${2:-10}
build; start_yardsticks; start_gateway
export TOKENS; TOKENS=$(tokens 16)
trap 'stop_gateway; stop_yardsticks' EXIT
for r in $(seq 1 "$ROUNDS"); do
  for c in 16 64; do
    for target in yardstick gateway; do
      port=$([ $target = yardstick ] && echo $YS_HTTP_PORT || echo $GW_PORT)
      line=$(wrk -t1 -c$c -d${SECS}s -s "$ROOT/scripts/bench/wrk-orders.lua" "http://127.0.0.1:$port/v3/orders" | grep wrk_summary)
      echo "round=$r conns=$c target=$target $line"
    done
  done
done | tee "$OUT/http-closed.txt"
echo "gateway: accepted_total=$(metric gateway_v3_accepted_total) accepted_rate=$(metric gateway_v3_accepted_rate) ack_p99_us=$(metric gateway_live_ack_p99_us) ack_accepted_p99_us=$(metric gateway_live_ack_accepted_p99_us)" | tee -a "$OUT/http-closed.txt"
