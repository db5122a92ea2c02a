#!/usr/bin/env bash
# Memory of the durable path (issue 3): resident memory per open order and per idempotency
# key, and whether it comes back once the orders finish and age out.
#
#   1. gateway on a fresh journal, finished orders kept $RETENTION s, keys $TTL s;
#   2. warm-up: $WARMUP_SMALL orders (RSS "start-small", informational), then up to $WARMUP
#      orders, all cancelled, aged out and their keys expired: threads, arenas, connection
#      buffers and every bounded cache (the stream hub's replay log: SSE_REPLAY_MAX_EVENTS,
#      SSE_REPLAY_MAX_BYTES; each order publishes 2 events and its cancel 2 more) are at their
#      working size and no order or key is left: RSS = the starting level;
#   3. $N orders at `volatile` durability (wrk -t1 -c$CONNS, one account, stopped once
#      gateway_order_store_in_memory >= N), then RSS with N open orders;
#   4. cancel every order (wrk-cancel.lua over their ids); wait until the finished orders left
#      memory while their keys are still live: RSS with keys only;
#   5. wait until every key expired and was collected: RSS after age-out.
# bytes/open order = (RSS open - RSS start) / orders added, key included;
# bytes/key        = (RSS keys only - RSS after age-out) / keys alive at step 4.
# TTL must outlast steps 3-4 (checked: no key may be collected before step 4's reading).
# Usage: scripts/bench/memory.sh [orders] [connections] [cancel-connections]
# Extra gateway environment: GW_ENV="VAR=value ...". Raw output: var/bench/memory.txt.
source "$(dirname "$0")/common.sh"
N=${1:-1000000}; CONNS=${2:-64}; CANCEL_CONNS=${3:-128}
WARMUP_SMALL=${WARMUP_SMALL:-5000}; WARMUP=${WARMUP:-60000}; RETENTION=${RETENTION:-5}; TTL=${TTL:-90}
build
start_gateway ORDER_FINISHED_RETENTION_SEC=$RETENTION IDEMPOTENCY_TTL_SEC=$TTL ${GW_ENV:-}
WRK_PID=
trap '[ -n "$WRK_PID" ] && kill $WRK_PID 2>/dev/null; stop_gateway' EXIT
TOKEN=$("$BIN" token --account bench-0 --secret "$SECRET")
REPORT=$OUT/memory.txt
: >"$REPORT"

status_kb() { awk -v k="$1:" '$1 == k {print $2}' /proc/$GW_PID/status; }
rss() { status_kb VmRSS; }
snap() {  # label: one line of RSS and store figures
  printf '%-14s t=%4ds VmRSS=%7d kB RssAnon=%7d kB RssFile=%6d kB VmHWM=%7d kB in_memory=%s keys_created=%s keys_gc=%s orders_gc=%s hub_events=%s hub_bytes=%s\n' \
    "$1" $((SECONDS - T0)) "$(rss)" "$(status_kb RssAnon)" "$(status_kb RssFile)" "$(status_kb VmHWM)" \
    "$(metric gateway_order_store_in_memory)" "$(metric gateway_idempotency_creates_total)" \
    "$(metric gateway_order_store_gc_keys_total)" "$(metric gateway_order_store_gc_orders_total)" \
    "$(metric gateway_sse_replay_log_events)" "$(metric gateway_sse_replay_log_bytes)" | tee -a "$REPORT"
}
num() { printf '%.0f' "${1:-0}"; }   # metrics may print 1e+06
wait_for() {  # description, timeout s, shell condition
  local deadline=$((SECONDS + $2))
  until eval "$3"; do
    [ $SECONDS -ge $deadline ] && { echo "timed out waiting for $1" | tee -a "$REPORT"; return 1; }
    sleep 0.5
  done
}
# Orders at volatile durability until the store holds $1 of them; wrk is stopped then.
orders_until() {
  TOKENS=$TOKEN DURABILITY=volatile wrk -t1 -c"$2" -d600s -s "$ROOT/scripts/bench/wrk-durable.lua" \
    "http://127.0.0.1:$GW_PORT/orders" >"$OUT/memory-wrk.txt" 2>&1 &
  WRK_PID=$!
  while [ "$(num "$(metric gateway_order_store_in_memory)")" -lt "$1" ]; do
    kill -0 $WRK_PID 2>/dev/null || { echo "wrk ended early" >&2; cat "$OUT/memory-wrk.txt" >&2; return 1; }
    sleep 0.1
  done
  kill -INT $WRK_PID; wait $WRK_PID || true; WRK_PID=
  grep wrk_summary "$OUT/memory-wrk.txt" | tee -a "$REPORT"
}
drained() { [ "$(num "$(metric gateway_durable_inflight)")" -eq 0 ]; }
# Cancels the orders with counters $1..$2 (one answer per id; wrk is stopped when all are in).
cancel_range() {
  local done=$OUT/memory-cancel.done; rm -f "$done"
  TOKEN=$TOKEN FIRST=$1 LAST=$2 DONE_FILE=$done wrk -t1 -c"$CANCEL_CONNS" -d600s --timeout 10s \
    -s "$ROOT/scripts/bench/wrk-cancel.lua" "http://127.0.0.1:$GW_PORT" >"$OUT/memory-wrk.txt" 2>&1 &
  WRK_PID=$!
  wait_for "cancels to be answered" 590 "[ -e '$done' ] || ! kill -0 $WRK_PID 2>/dev/null"
  kill -INT $WRK_PID 2>/dev/null || true; wait $WRK_PID || true; WRK_PID=
  grep wrk_cancel "$OUT/memory-wrk.txt" | tee -a "$REPORT"
}
# The last order counter handed out: ids are taken before the shard queue can refuse an order.
last_id() {
  echo $(( $(num "$(metric gateway_idempotency_creates_total)") + $(num "$(metric gateway_reject_queue_full_total)") ))
}
orders_gone() {
  wait_for "finished orders to leave memory" $((RETENTION + 60)) \
    '[ "$(num "$(metric gateway_order_store_in_memory)")" -eq 0 ]'
}
keys_gone() {  # every key created so far expired and collected
  local created; created=$(num "$(metric gateway_idempotency_creates_total)")
  wait_for "keys to expire and be collected" $((TTL + 60)) \
    "[ \"\$(num \"\$(metric gateway_order_store_gc_keys_total)\")\" -ge $created ]"
}
settle() { sleep 4; }   # one more GC round over every partition (3.2 s), and what follows it

T0=$SECONDS
echo "memory.sh N=$N conns=$CONNS cancel_conns=$CANCEL_CONNS warmup=$WARMUP_SMALL/$WARMUP retention=${RETENTION}s ttl=${TTL}s ${GW_ENV:-} $(date -u +%FT%TZ)" | tee -a "$REPORT"
snap boot

# 2. warm-up
orders_until "$WARMUP_SMALL" 2
wait_for "journal drained" 30 drained; sleep 2
snap start-small
RSS_SMALL=$(rss); M_SMALL=$(num "$(metric gateway_order_store_in_memory)")
orders_until "$WARMUP" "$CONNS"
wait_for "journal drained" 30 drained
W_LAST=$(last_id)
cancel_range 1 "$W_LAST"
orders_gone; keys_gone; settle
snap start
RSS_START=$(rss); M0=$(num "$(metric gateway_order_store_in_memory)")

# 3. N open orders
orders_until "$N" "$CONNS"
wait_for "journal drained" 60 drained; sleep 2
snap open
RSS_OPEN=$(rss); M1=$(num "$(metric gateway_order_store_in_memory)")

# 4. all cancelled and aged out, keys still live
KEYS0=$(num "$(metric gateway_order_store_gc_keys_total)")
LAST=$(last_id)
cancel_range $((W_LAST + 1)) "$LAST"
snap canceled
orders_gone; settle
snap keys-only
RSS_KEYS=$(rss)
KEYS=$(( $(num "$(metric gateway_idempotency_creates_total)") - $(num "$(metric gateway_order_store_gc_keys_total)") ))
[ "$(num "$(metric gateway_order_store_gc_keys_total)")" -eq "$KEYS0" ] ||
  echo "WARNING: keys expired before the keys-only reading; raise TTL" | tee -a "$REPORT"

# 5. keys expired too
keys_gone; settle
snap aged-out
RSS_END=$(rss)

python3 - "$RSS_SMALL" "$M_SMALL" "$RSS_START" "$RSS_OPEN" "$RSS_KEYS" "$RSS_END" "$M0" "$M1" "$KEYS" <<'PY' | tee -a "$REPORT"
import sys
a = sys.argv[1:]
small, m_small = int(a[0]) * 1024, int(a[1])
s, o, k, e = (int(x) * 1024 for x in a[2:6])
m0, m1, keys = map(int, a[6:9])
print(f"RSS after {m_small} warm-up orders (still open) {small/2**20:.1f} MiB")
print(f"RSS start {s/2**20:.1f} MiB (warm-up finished and aged out, {m0} orders in memory)")
print(f"RSS with {m1} open orders {o/2**20:.1f} MiB")
print(f"bytes per open order (key included) {(o - s) / max(m1 - m0, 1):.0f}")
print(f"RSS with {keys} keys and no orders {k/2**20:.1f} MiB; bytes per key {(k - e) / max(keys, 1):.0f}")
print(f"RSS after age-out {e/2**20:.1f} MiB; ratio to start {e / s:.3f} (target <= 1.2); "
      f"to the small warm-up {e / small:.3f}")
PY
