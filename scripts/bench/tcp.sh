#!/usr/bin/env bash
# Binary TCP: closed loop (16 connections) and pipelined (4 connections × 32 in flight),
# gateway against the TCP yardstick, interleaved rounds.
# Usage: scripts/bench/tcp.sh [rounds] [closed-seconds] [pipelined-seconds]
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-3}; CSECS=${2:-10}; PSECS=${3:-30}
build; start_yardsticks
trap 'stop_gateway; stop_yardsticks' EXIT
# A fresh gateway and journal per round: one pipelined run journals ~3 GB, and three on one
# journal once filled the disk (docs/reliability.md, "A full journal volume").
GW_PID=""; JOURNAL=""
exec > >(tee "$OUT/tcp.txt")
summary() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_us"]
print(f'{sys.argv[2]}: rps={r["rps"]:.0f} completed={r["completed"]} accepted_rate={r["accepted_rate"]:.4f} '
      f'p50={l["p50"]}us p99={l["p99"]}us order_violations={r.get("order_violations")} reasons={r["reasons"]}')
PY
}
for r in $(seq 1 "$ROUNDS"); do
  [ -n "$GW_PID" ] && stop_gateway
  start_gateway
  for target in yardstick gateway; do
    port=$([ $target = yardstick ] && echo $YS_TCP_PORT || echo $GW_TCP_PORT)
    "$BIN" bench closed --transport tcp --target 127.0.0.1:$port --connections 16 --duration "$CSECS" \
      --accounts 16 --secret "$SECRET" --json "$OUT/tcp-closed-$target-$r.json" >/dev/null
    summary "$OUT/tcp-closed-$target-$r.json" "round=$r closed16 $target"
  done
  for target in yardstick gateway; do
    port=$([ $target = yardstick ] && echo $YS_TCP_PORT || echo $GW_TCP_PORT)
    "$BIN" bench pipelined --target 127.0.0.1:$port --connections 4 --window 32 --duration "$PSECS" \
      --secret "$SECRET" --json "$OUT/tcp-pipe-$target-$r.json" >/dev/null
    summary "$OUT/tcp-pipe-$target-$r.json" "round=$r pipelined4x32 $target"
  done
  echo "round=$r gateway server-side: ack_p99_us=$(metric gateway_live_ack_p99_us) accepted_rate=$(metric gateway_v3_accepted_rate) loss_suspect=$(metric gateway_v3_loss_suspect_total)"
done
