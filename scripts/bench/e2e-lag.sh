#!/usr/bin/env bash
# End-to-end lag at a fixed order rate: POST /orders (durability local) → journal → outbox →
# tansu → `switchyard backoffice` consumer → PostgreSQL commit. Orders go to a venue-sim that
# acknowledges them (AAPL bids below its market rest): three events per order on the bus
# (OrderAccepted, OrderSent, ExecutionReport), the first booked into the ledger. The back
# office measures each event from its journal record time to its own commit (`/stats`
# eventLagMs); the script prints that, the client latency and the outbox figures.
# Usage: scripts/bench/e2e-lag.sh [rate] [seconds]
source "$(dirname "$0")/common.sh"
RATE=${1:-10000}; SECS=${2:-30}
VENUE_PORT=${VENUE_PORT:-19901}; BO_PORT=${BO_PORT:-18082}
build
"$ROOT/scripts/services.sh" start
# shellcheck disable=SC1091
source "$ROOT/var/services/env"
TAG=e2e_$$
psql "$SWITCHYARD_TEST_PG" -q -c "CREATE DATABASE $TAG"
DB_URL="${SWITCHYARD_TEST_PG%/*}/$TAG"
"$SWITCHYARD_TANSU_BIN" topic create "$TAG" --partitions 3 --broker "tcp://$SWITCHYARD_TEST_KAFKA" >/dev/null
VENUE_STATE=$(mktemp -d /tmp/sy-bench-venue.XXXX)
env EXCHANGE_TCP_BIND=127.0.0.1 EXCHANGE_TCP_PORT=$VENUE_PORT EXCHANGE_SIM_STATE_DIR="$VENUE_STATE" \
  RUST_LOG=warn "$BIN" venue-sim --name simA >"$OUT/venue.log" 2>&1 &
VENUE_PID=$!
wait_port "$VENUE_PORT"
start_gateway KAFKA_ENABLE=1 KAFKA_BOOTSTRAP_SERVERS="$SWITCHYARD_TEST_KAFKA" KAFKA_TOPIC=$TAG \
  EXCHANGE_TRANSPORT=tcp SOR_VENUES=simA EXCHANGE_TCP_PORT=$VENUE_PORT ORDER_MAX_IN_MEMORY=20000000
env BACKOFFICE_HOST=127.0.0.1 BACKOFFICE_PORT=$BO_PORT BACKOFFICE_DB_URL="$DB_URL" KAFKA_ENABLE=1 \
  KAFKA_BOOTSTRAP_SERVERS="$SWITCHYARD_TEST_KAFKA" KAFKA_TOPIC=$TAG KAFKA_GROUP_ID=$TAG \
  BACKOFFICE_KAFKA_SESSION_TIMEOUT_MS=6000 BACKOFFICE_KAFKA_HEARTBEAT_INTERVAL_MS=500 BACKOFFICE_BATCH_MAX=${BO_BATCH:-5000} \
  JWT_HS256_SECRET=$SECRET RUST_LOG=warn "$BIN" backoffice >"$OUT/backoffice.log" 2>&1 &
BO_PID=$!
cleanup() {
  kill "$BO_PID" "$VENUE_PID" 2>/dev/null; wait "$BO_PID" "$VENUE_PID" 2>/dev/null || true
  stop_gateway; rm -rf "$VENUE_STATE"
  psql "$SWITCHYARD_TEST_PG" -q -c "DROP DATABASE IF EXISTS $TAG WITH (FORCE)" || true
}
trap cleanup EXIT
wait_port "$BO_PORT"
TOKEN=$("$BIN" token --account bench-0 --secret "$SECRET")
bo_stat() {  # a field of the back office's /stats
  curl -s "http://127.0.0.1:$BO_PORT/stats" -H "Authorization: Bearer $TOKEN" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}
# The consumer must have joined its group before the clock starts: one order, booked.
curl -s -XPOST "http://127.0.0.1:$GW_PORT/orders" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -H 'Idempotency-Key: warm-up' \
  -d '{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":1,"price":15000}' >/dev/null
for _ in $(seq 1 120); do [ "$(bo_stat processed)" -gt 0 ] && break; sleep 0.5; done

# Where a backlog builds: the outbox's (journal → broker) and the back office's (broker →
# books), sampled every second.
(
  while sleep 1; do
    behind=$(curl -s "http://127.0.0.1:$BO_PORT/stats" -H "Authorization: Bearer $TOKEN" |
      python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(p["lag"] or 0 for p in s["positions"]))' 2>/dev/null)
    echo "t=$SECONDS outbox_lag_records=$(metric gateway_outbox_lag_records) backoffice_lag_events=$behind"
  done
) >"$OUT/e2e-backlog.txt" &
SAMPLER=$!
"$BIN" bench open --target 127.0.0.1:$GW_PORT --rate "$RATE" --duration "$SECS" --connections 64 \
  --durability local --secret "$SECRET" --json "$OUT/e2e-open.json" >/dev/null
# Let the bus and the books drain, then read the figures.
for _ in $(seq 1 600); do
  published=$(metric gateway_outbox_published_total)
  [ "$(bo_stat processed)" -ge "${published%.*}" ] && break
  sleep 0.5
done
kill "$SAMPLER" 2>/dev/null || true
curl -s "http://127.0.0.1:$BO_PORT/stats" -H "Authorization: Bearer $TOKEN" >"$OUT/e2e-backoffice-stats.json"
python3 - "$OUT/e2e-open.json" "$OUT/e2e-backoffice-stats.json" "$RATE" "$SECS" <<'PY' | tee "$OUT/e2e-lag.txt"
import json, sys
o = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2])); rate, secs = sys.argv[3], sys.argv[4]
l = o["latency_us"]; e = s["eventLagMs"]
print(f'rate={rate}/s for {secs}s: completed={o["completed"]} accepted_rate={o["accepted_rate"]:.4f} '
      f'client p50={l["p50"]}us p99={l["p99"]}us')
print(f'end-to-end (journal record -> back-office commit) over {e["count"]} events: '
      f'p50={e["p50"]}ms p99={e["p99"]}ms p99.9={e["p999"]}ms max={e["max"]}ms; '
      f'books: processed={s["processed"]} booked={s["booked"]} duplicates={s["duplicates"]}')
PY
echo "outbox: published=$(metric gateway_outbox_published_total) batches=$(metric gateway_outbox_batches_total) errors=$(metric gateway_outbox_errors_total)" | tee -a "$OUT/e2e-lag.txt"
