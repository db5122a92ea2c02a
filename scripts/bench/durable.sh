#!/usr/bin/env bash
# The durable path (POST /orders) against the HTTP yardstick, interleaved rounds, then an open
# loop at a fixed rate at `local` durability for group-commit and latency figures.
# Usage: scripts/bench/durable.sh [rounds] [seconds] [open-rate] [open-seconds]
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-3}; SECS=${2:-10}; RATE=${3:-10000}; OSECS=${4:-30}
build; start_yardsticks
# Orders never finish in this run (no venue), so the store must hold all of them.
start_gateway ORDER_MAX_IN_MEMORY=20000000
export TOKENS DURABILITY; TOKENS=$(tokens 16)
trap 'stop_gateway; stop_yardsticks' EXIT
for r in $(seq 1 "$ROUNDS"); do
  for level in volatile local; do
    for target in yardstick gateway; do
      port=$([ $target = yardstick ] && echo $YS_HTTP_PORT || echo $GW_PORT)
      DURABILITY=$level
      line=$(wrk -t1 -c64 -d${SECS}s -s "$ROOT/scripts/bench/wrk-durable.lua" "http://127.0.0.1:$port/orders" | grep wrk_summary)
      echo "round=$r level=$level target=$target $line"
    done
  done
done | tee "$OUT/durable-closed.txt"

# The open loop runs on a fresh gateway: the closed rounds left millions of open orders in
# the store (no venue finishes them), and their hash-table growth is not what is measured here.
stop_gateway; start_gateway ORDER_MAX_IN_MEMORY=20000000
# The raw disk in the same sitting: 4 KiB + fdatasync back to back, next to the journal, appending
# and over zeros laid down in advance (as the journal writes).
for mode in "" --overwrite; do
  "$BIN" bench fsync --dir "$(dirname "$JOURNAL")" --duration 10 $mode | tee -a "$OUT/durable-closed.txt"
done
commits0=$(metric gateway_journal_commits_total); records0=$(metric gateway_journal_records_total)
"$BIN" bench open --target 127.0.0.1:$GW_PORT --rate "$RATE" --duration "$OSECS" --connections 64 \
  --durability local --secret "$SECRET" --json "$OUT/durable-open.json" >/dev/null
commits1=$(metric gateway_journal_commits_total); records1=$(metric gateway_journal_records_total)
python3 - "$OUT/durable-open.json" "$commits0" "$commits1" "$records0" "$records1" "$OSECS" <<'PY' | tee -a "$OUT/durable-closed.txt"
import json, sys
r = json.load(open(sys.argv[1])); c0, c1, n0, n1, secs = map(float, sys.argv[2:])
l = r["latency_us"]
print(f'open local rate={r.get("target_rate")}/s completed={r["completed"]} accepted_rate={r["accepted_rate"]:.4f} '
      f'client p50={l["p50"]}us p99={l["p99"]}us p999={l["p99.9"] if "p99.9" in l else l.get("p999")}us '
      f'fdatasync/s={(c1-c0)/secs:.0f} records/s={(n1-n0)/secs:.0f} reasons={r["reasons"]}')
PY
echo "gateway: fdatasync_p99_us=$(metric gateway_fdatasync_p99_us) durable_ack_p99_us=$(metric gateway_durable_ack_p99_us)" | tee -a "$OUT/durable-closed.txt"
