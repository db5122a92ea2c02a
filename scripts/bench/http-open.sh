#!/usr/bin/env bash
# Open loop over HTTP at a fixed rate: gateway against the yardstick at the same rate,
# interleaved, then the gateway alone at a rate above its comfort (it must keep up or shed).
# Usage: scripts/bench/http-open.sh [rate] [seconds] [overload-rate]
source "$(dirname "$0")/common.sh"
RATE=${1:-10000}; SECS=${2:-60}; OVER=${3:-20000}
build; start_yardsticks
trap 'stop_gateway 2>/dev/null; stop_yardsticks' EXIT
open_run() {  # label port rate
  "$BIN" bench open --transport http --target 127.0.0.1:$2 --rate "$3" --duration "$SECS" \
    --connections 64 --accounts 16 --secret "$SECRET" --json "$OUT/open-$1.json" >/dev/null
  python3 - "$OUT/open-$1.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_us"]
print(f'{sys.argv[2]}: rate={r["target_rate"]} completed={r["completed"]} accepted_rate={r["accepted_rate"]:.4f} '
      f'p50={l["p50"]}us p99={l["p99"]}us p999={l["p999"]}us max={l["max"]}us dropped_late={r["dropped_late"]} reasons={r["reasons"]}')
PY
}
{
  open_run yardstick-$RATE $YS_HTTP_PORT "$RATE"
  start_gateway
  open_run gateway-$RATE $GW_PORT "$RATE"
  echo "gateway server-side: ack_p99_us=$(metric gateway_live_ack_p99_us) ack_accepted_p99_us=$(metric gateway_live_ack_accepted_p99_us) loss_suspect=$(metric gateway_v3_loss_suspect_total) durable_confirm_p99_us=$(metric gateway_v3_durable_confirm_p99_us) fdatasync_p99_us=$(metric gateway_fdatasync_p99_us) fdatasync_time_weighted_p99_us=$(metric gateway_fdatasync_time_weighted_p99_us) accepted_rate=$(metric gateway_v3_accepted_rate)"
  stop_gateway
  open_run yardstick-$RATE-b $YS_HTTP_PORT "$RATE"
  start_gateway
  open_run gateway-$OVER $GW_PORT "$OVER"
  echo "gateway server-side at $OVER/s: ack_p99_us=$(metric gateway_live_ack_p99_us) loss_suspect=$(metric gateway_v3_loss_suspect_total) accepted_rate=$(metric gateway_v3_accepted_rate)"
  stop_gateway
} | tee "$OUT/http-open.txt"
