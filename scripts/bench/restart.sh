#!/usr/bin/env bash
# Restart time over a journal of N accepted orders: fill it through the TCP ingress,
# stop the gateway cleanly, then time from process start to the first accepted order.
# Usage: scripts/bench/restart.sh [orders]
source "$(dirname "$0")/common.sh"
N=${1:-1000000}
build
start_gateway V3_DURABLE_CONFIRM_SOFT_REJECT_AGE_US=2000000 V3_DURABLE_CONFIRM_HARD_REJECT_AGE_US=3000000 V3_LOSS_GAP_TIMEOUT_MS=10000
KEEP=$JOURNAL
# Pipelined load until the journal holds N orders.
"$BIN" bench pipelined --target 127.0.0.1:$GW_TCP_PORT --connections 4 --window 64 --duration 600 \
  --secret "$SECRET" --json "$OUT/restart-fill.json" >/dev/null &
FILL=$!
while [ "$(metric gateway_journal_records_total | cut -d. -f1)" -lt "$N" ]; do sleep 0.5; done
kill -TERM $FILL; wait $FILL 2>/dev/null || true
kill -TERM "$GW_PID"; wait "$GW_PID" || true
"$BIN" journal verify --dir "$KEEP" | tee "$OUT/restart-verify.json"
records=$("$BIN" journal dump --dir "$KEEP" --limit 0 2>&1 >/dev/null | awk '{print $3}')
TOKEN=$("$BIN" token --account restart-probe --secret "$SECRET")
t0=$(date +%s%N)
env GATEWAY_HOST=127.0.0.1 GATEWAY_PORT=$GW_PORT V3_TCP_ENABLE=true V3_TCP_PORT=$GW_TCP_PORT \
  JWT_HS256_SECRET=$SECRET GATEWAY_JOURNAL_DIR=$KEEP RUST_LOG=info "$BIN" gateway >"$OUT/restart.log" 2>&1 &
GW_PID=$!
until curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$GW_PORT/v3/orders" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":1,"price":1}' 2>/dev/null | grep -q 202; do sleep 0.01; done
t1=$(date +%s%N)
echo "journal records=$records; restart to first accepted order: $(( (t1 - t0) / 1000000 )) ms" | tee "$OUT/restart.txt"
grep "journal replayed" "$OUT/restart.log" | sed 's/\x1b\[[0-9;]*m//g' | tee -a "$OUT/restart.txt"
kill -TERM "$GW_PID"; wait "$GW_PID" || true
rm -rf "$KEEP"
