#!/usr/bin/env bash
# Idle CPU: start the gateway, send a burst, then measure its CPU time over a quiet window.
# Usage: scripts/bench/idle.sh [seconds]
source "$(dirname "$0")/common.sh"
SECS=${1:-30}
build; start_gateway
trap 'stop_gateway' EXIT
"$BIN" bench closed --transport tcp --target 127.0.0.1:$GW_TCP_PORT --connections 4 --duration 2 \
  --secret "$SECRET" >/dev/null
sleep 1
ticks() { awk '{print $14 + $15}' /proc/$GW_PID/stat; }
a=$(ticks); sleep "$SECS"; b=$(ticks)
hz=$(getconf CLK_TCK)
python3 -c "print(f'idle CPU over $SECS s: {($b-$a)/$hz:.3f} s = {100*($b-$a)/$hz/$SECS:.2f} % of one core')" | tee "$OUT/idle.txt"
