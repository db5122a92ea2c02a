#!/usr/bin/env bash
# Soak with faults: the real stack on a release build — `switchyard gateway` (journal with the
# audit chain, outbox to Kafka), two `switchyard venue-sim` processes over TCP (simA, simB,
# routed by SOR_SYMBOL_ROUTES), a private tansu broker, and `switchyard backoffice` on
# PostgreSQL consuming the bus — under `POST /orders` durable load (`switchyard bench soak
# run`: Durability local, a unique Idempotency-Key per order, 70 % marketable orders that
# fill, 30 % resting ones) at RATE orders/s for SECS seconds, while faults are injected:
#
#   venue disconnects   SIGKILL of a venue-sim and a restart 3 s later on its state, 4 times
#                       (simA at 10 % and 62 % of the run, simB at 35 % and 85 %)
#   broker outages      2 × OUTAGE s (default 20, at most SECS/6): at 20 % the broker process
#                       is frozen (SIGSTOP … SIGCONT: connections hang); at 72 % it is
#                       unreachable (the TCP proxy every broker client goes through is killed
#                       and started again: connections reset, then refused). tansu keeps its
#                       topics in memory only, so a killed broker would come back empty; the
#                       proxy gives the clients a broker restart without that data loss.
#   gateway crash       SIGKILL of the gateway at 50 %, restarted at once on the same journal;
#                       the load generator resends every unanswered order with its key.
#
# Then it lets the bus and the books drain and checks (`switchyard bench soak check`): every
# order acknowledged `local` is in the journal and known to the restarted gateway (lost = 0),
# no key created two orders and no venue holds an order twice (duplicated = 0), the venues'
# fills equal the gateway's, the back office's positions and ledger match the gateway's fills
# and its /reconcile is clean; `switchyard journal verify` checks the journal and audit chain.
# It reports sent/acked/durable/filled/lost/duplicated, the gateway's RSS (from /proc) before
# and after, p99 latency per minute, and writes everything to OUT (default var/soak/<time>).
#
# Usage: scripts/soak.sh [rate] [seconds]          (default 10000 300)
# Environment: CARGO_TARGET_DIR (where the release build goes), OUTAGE (s), DRAIN_MAX (s to wait
# for the bus and the books after the load, 3600), BO_LOG (the back office's RUST_LOG, warn) and
# BO_KAFKA_DEBUG (librdkafka `debug` contexts, e.g. cgrp: with BO_LOG=info,librdkafka=debug), SOAK_KEEP=1 keeps
# the data directory, SOAK_NO_BUILD=1 skips the build, CONNECTIONS (256: one order in flight
# per connection, and at 10 000/s with ~10 ms answers 64 would cap the rate), RESTING_PCT (30).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${1:-10000}
SECS=${2:-300}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/switchyard
SECRET=soak-secret
AUDIT_KEYS=soak-key:soak-audit-secret
GATEWAY_ID=soak-gw
CONNECTIONS=${CONNECTIONS:-256}
RESTING_PCT=${RESTING_PCT:-30}
OUTAGE=${OUTAGE:-20}
DRAIN_MAX=${DRAIN_MAX:-3600}
BO_LOG=${BO_LOG:-warn}
[ "$OUTAGE" -gt $((SECS / 6)) ] && OUTAGE=$((SECS / 6))
[ "$OUTAGE" -lt 1 ] && OUTAGE=1
OUT=${OUT:-$ROOT/var/soak/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
DATA=$(mktemp -d /tmp/sy-soak.XXXX)
mkdir -p "$DATA/pids"
TAG=soak_$$

log() { printf '%s soak: %s\n' "$(date -u +%T)" "$*" | tee -a "$OUT/soak.log" >&2; }

if [ "${SOAK_NO_BUILD:-0}" != 1 ]; then
  log "building the release binary in $TARGET_DIR"
  (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release -p switchyard >/dev/null)
fi
"$ROOT/scripts/services.sh" start
# shellcheck disable=SC1091
source "$ROOT/var/services/env"

# Six free ports, chosen together so that they differ.
read -r GW_PORT VA_PORT VB_PORT TANSU_PORT PROXY_PORT BO_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)

wait_port() {
  for _ in $(seq 1 1200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && { exec 3>&- 3<&-; return 0; }
    sleep 0.05
  done
  log "port $1 never opened"; return 1
}

# --- the processes ---------------------------------------------------------------------------
start_tansu() {
  "$SWITCHYARD_TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$TANSU_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$PROXY_PORT" \
    --storage-engine memory://tansu/ >>"$OUT/tansu.log" 2>&1 &
  TANSU_PID=$!; echo "$TANSU_PID" >"$DATA/pids/tansu"
  wait_port "$TANSU_PORT"
}

start_proxy() {
  "$BIN" bench soak proxy --listen "127.0.0.1:$PROXY_PORT" --to "127.0.0.1:$TANSU_PORT" \
    >>"$OUT/proxy.log" 2>&1 &
  PROXY_PID=$!; echo "$PROXY_PID" >"$DATA/pids/proxy"
  wait_port "$PROXY_PORT"
}

start_venue() {  # name port
  local name=$1 port=$2
  mkdir -p "$DATA/$name"
  env EXCHANGE_TCP_BIND=127.0.0.1 EXCHANGE_TCP_PORT="$port" EXCHANGE_SIM_STATE_DIR="$DATA/$name" \
    EXCHANGE_SIM_MM_SIZE=100000 RUST_LOG=warn "$BIN" venue-sim --name "$name" \
    >>"$OUT/venue-$name.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$DATA/pids/$name"
  eval "VENUE_PID_$name=$pid"
  wait_port "$port"
}

start_gateway() {
  env GATEWAY_HOST=127.0.0.1 GATEWAY_PORT="$GW_PORT" JWT_HS256_SECRET=$SECRET \
    GATEWAY_JOURNAL_DIR="$DATA/journal" GATEWAY_ID=$GATEWAY_ID AUDIT_HMAC_KEYS=$AUDIT_KEYS \
    EXCHANGE_TRANSPORT=tcp EXCHANGE_TCP_HOST=127.0.0.1 SOR_VENUES=simA,simB \
    EXCHANGE_TCP_PORT_SIMA="$VA_PORT" EXCHANGE_TCP_PORT_SIMB="$VB_PORT" \
    SOR_SYMBOL_ROUTES='AAPL=simA,MSFT=simA,NVDA=simB,BTC=simB,ETH=simA|simB,SOL=simA|simB' \
    VENUE_RECONNECT_MAX_MS=500 \
    KAFKA_ENABLE=1 KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$PROXY_PORT" KAFKA_TOPIC=$TAG \
    OUTBOX_BACKOFF_MAX_MS=2000 \
    ORDER_MAX_IN_MEMORY=20000000 ORDER_FINISHED_RETENTION_SEC=7200 \
    RUST_LOG=warn "$BIN" gateway >>"$OUT/gateway.log" 2>&1 &
  GW_PID=$!; echo "$GW_PID" >"$DATA/pids/gateway"
  for _ in $(seq 1 6000); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GW_PORT/health")" = 200 ] && return 0
    kill -0 "$GW_PID" 2>/dev/null || { log "the gateway exited during startup"; return 1; }
    sleep 0.05
  done
  log "the gateway never became healthy"; return 1
}

start_backoffice() {
  env BACKOFFICE_HOST=127.0.0.1 BACKOFFICE_PORT="$BO_PORT" BACKOFFICE_DB_URL="$DB_URL" \
    KAFKA_ENABLE=1 KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$PROXY_PORT" KAFKA_TOPIC=$TAG \
    KAFKA_GROUP_ID=$TAG BACKOFFICE_KAFKA_SESSION_TIMEOUT_MS=6000 \
    BACKOFFICE_KAFKA_HEARTBEAT_INTERVAL_MS=500 JWT_HS256_SECRET=$SECRET RUST_LOG="$BO_LOG" \
    ${BO_KAFKA_DEBUG:+BACKOFFICE_KAFKA_DEBUG=$BO_KAFKA_DEBUG} \
    "$BIN" backoffice >>"$OUT/backoffice.log" 2>&1 &
  BO_PID=$!; echo "$BO_PID" >"$DATA/pids/backoffice"
  wait_port "$BO_PORT"
}

stop_pid() {  # pid [signal]: only processes this script started, by pid
  local pid=$1 sig=${2:-TERM}
  [ -n "$pid" ] || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  set +e
  [ -n "${SAMPLER_PID:-}" ] && kill "$SAMPLER_PID" 2>/dev/null
  [ -n "${DRIVER_PID:-}" ] && stop_pid "$DRIVER_PID" KILL
  stop_pid "${GW_PID:-}"
  stop_pid "${BO_PID:-}"
  stop_pid "${VENUE_PID_simA:-}"
  stop_pid "${VENUE_PID_simB:-}"
  stop_pid "${PROXY_PID:-}" KILL
  stop_pid "${TANSU_PID:-}" KILL
  psql "$SWITCHYARD_TEST_PG" -q -c "DROP DATABASE IF EXISTS $TAG WITH (FORCE)" >/dev/null 2>&1
  if [ "${SOAK_KEEP:-0}" = 1 ]; then log "data kept in $DATA"; else rm -rf "$DATA"; fi
}
trap cleanup EXIT

metric() { curl -s "http://127.0.0.1:$GW_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
TOKEN=$("$BIN" token --account bench-0 --secret "$SECRET")
bo_stats() { curl -s "http://127.0.0.1:$BO_PORT/stats" -H "Authorization: Bearer $TOKEN"; }
bo_lag() {  # events the back office has not booked yet, over all partitions ("?" if unknown),
  # and how many it has processed: "lag processed"
  bo_stats | python3 -c 'import json,sys
s=json.load(sys.stdin); p=s["positions"]
known = p and all(x["lag"] is not None for x in p)
print(sum(x["lag"] for x in p) if known else "?", s["processed"])' 2>/dev/null || echo "? ?"
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# --- start -----------------------------------------------------------------------------------
log "rate $RATE/s for $SECS s; outages $OUTAGE s; data in $DATA; report in $OUT"
psql "$SWITCHYARD_TEST_PG" -q -c "CREATE DATABASE $TAG"
DB_URL="${SWITCHYARD_TEST_PG%/*}/$TAG"
start_tansu
start_proxy
"$SWITCHYARD_TANSU_BIN" topic create "$TAG" --partitions 3 --broker "tcp://127.0.0.1:$TANSU_PORT" >/dev/null
start_venue simA "$VA_PORT"
start_venue simB "$VB_PORT"
start_gateway
start_backoffice
for _ in $(seq 1 600); do up=$(metric gateway_venues_up); [ "${up%.*}" = 2 ] && break; sleep 0.1; done
# The consumer must have joined its group before the clock starts: one order, booked.
curl -s -XPOST "http://127.0.0.1:$GW_PORT/orders" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -H 'Idempotency-Key: warm-up' \
  -d '{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":1,"price":9000}' >/dev/null
for _ in $(seq 1 240); do
  [ "$(bo_stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["processed"])' 2>/dev/null || echo 0)" -gt 0 ] && break
  sleep 0.5
done

{
  echo "host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -r)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "other processes using CPU at start:"
  ps -eo pcpu,comm --sort=-pcpu | head -8
} >"$OUT/machine.txt"

# Samples every 5 s: gateway/back office/broker/venue RSS (kB), orders in the gateway's
# memory, outbox and back-office backlog, load average, machine CPU busy % (all cores, steal
# included), steal % (time the hypervisor gave to other guests), and the CPU each process of
# the soak used over the interval, in % of one core (pg: the back office's PostgreSQL
# backends, found by its database's name).
(
  cpu() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6, $9}' /proc/stat; }  # total, idle+iowait, steal
  ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
  pg_ticks() {
    local t=0 p
    for p in $(ps -eo pid=,args= | awk -v db="$TAG" '$2 == "postgres:" && index($0, " " db " ") {print $1}'); do
      t=$((t + $(ticks "$p")))
    done
    echo "$t"
  }
  hz=$(getconf CLK_TCK)
  declare -A last
  prev=$(cpu)
  names="gateway backoffice tansu simA simB driver"
  echo "t gw_rss_kb bo_rss_kb tansu_rss_kb simA_rss_kb simB_rss_kb orders_in_memory outbox_lag bo_lag load1 cpu_busy_pct steal_pct cpu%:gw bo tansu simA simB driver pg"
  start=$(date +%s)
  t_prev=$(date +%s%N)
  while sleep 5; do
    now=$(cpu)
    busy=$(echo "$prev $now" | awk '{dt=$4-$1; di=$5-$2; ds=$6-$3; printf "%.0f %.0f", (dt > 0 ? 100*(dt-di)/dt : 0), (dt > 0 ? 100*ds/dt : 0)}')
    prev=$now
    t_now=$(date +%s%N)
    span=$(( (t_now - t_prev) / 10000000 ))  # hundredths of a second
    t_prev=$t_now
    pcts=""
    for name in $names pg; do
      if [ "$name" = pg ]; then key=pg; t=$(pg_ticks); else
        pid=$(cat "$DATA/pids/$name" 2>/dev/null || echo 0); key="$name:$pid"; t=$(ticks "$pid"); fi
      d=$(( t - ${last[$key]:-$t} )); last[$key]=$t
      pcts="$pcts $(( span > 0 ? d * 10000 / hz / span : 0 ))"
    done
    echo "$(( $(date +%s) - start )) $(rss_kb "$(cat "$DATA/pids/gateway")") $(rss_kb "$(cat "$DATA/pids/backoffice")") $(rss_kb "$(cat "$DATA/pids/tansu")") $(rss_kb "$(cat "$DATA/pids/simA")") $(rss_kb "$(cat "$DATA/pids/simB")") $(metric gateway_order_store_in_memory) $(metric gateway_outbox_lag_records) $(bo_lag | cut -d' ' -f1) $(cut -d' ' -f1 /proc/loadavg) $busy$pcts"
  done
) >"$OUT/samples.txt" 2>/dev/null &
SAMPLER_PID=$!

# --- load and faults -------------------------------------------------------------------------
GW_RSS_START=$(rss_kb "$GW_PID")
"$BIN" bench soak run --target "127.0.0.1:$GW_PORT" --secret "$SECRET" --rate "$RATE" \
  --duration "$SECS" --connections "$CONNECTIONS" --resting-pct "$RESTING_PCT" \
  --acked "$OUT/acked.tsv" --json "$OUT/driver.json" >"$OUT/driver.txt" 2>"$OUT/driver.log" &
DRIVER_PID=$!
echo "$DRIVER_PID" >"$DATA/pids/driver"
T0=$(date +%s.%N)
FAULTS="$OUT/faults.txt"
: >"$FAULTS"
fault() { printf '%6.1f s  %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*" | tee -a "$FAULTS" >&2; }
at() {  # sleep until this fraction of the run
  local when
  when=$(echo "$T0 + $1 * $SECS" | bc)
  local left
  left=$(echo "$when - $(date +%s.%N)" | bc)
  if [ "$(echo "$left > 0" | bc)" = 1 ]; then sleep "$left"; fi
}
kill_venue() {  # name port
  local name=$1 port=$2 pid
  pid=$(cat "$DATA/pids/$name")
  fault "venue $name: SIGKILL (pid $pid)"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
  sleep 3
  start_venue "$name" "$port"
  fault "venue $name: restarted (pid $(cat "$DATA/pids/$name"))"
}

at 0.10; kill_venue simA "$VA_PORT"
at 0.20
fault "broker: SIGSTOP (frozen) for $OUTAGE s"
kill -STOP "$TANSU_PID"; sleep "$OUTAGE"; kill -CONT "$TANSU_PID"
fault "broker: SIGCONT"
at 0.35; kill_venue simB "$VB_PORT"
at 0.50
GW_RSS_BEFORE_KILL=$(rss_kb "$GW_PID")
ORDERS_BEFORE_KILL=$(metric gateway_order_store_in_memory)
fault "gateway: SIGKILL (pid $GW_PID, RSS $GW_RSS_BEFORE_KILL kB, $ORDERS_BEFORE_KILL orders in memory)"
kill -KILL "$GW_PID"; wait "$GW_PID" 2>/dev/null || true
K0=$(date +%s.%N)
start_gateway
GW_DOWN=$(printf '%.1f' "$(echo "$(date +%s.%N) - $K0" | bc)")
GW_RSS_AFTER_RESTART=$(rss_kb "$GW_PID")
fault "gateway: restarted and healthy after $GW_DOWN s (pid $GW_PID, RSS $GW_RSS_AFTER_RESTART kB)"
at 0.62; kill_venue simA "$VA_PORT"
at 0.72
fault "broker: unreachable (proxy SIGKILL) for $OUTAGE s"
kill -KILL "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null || true
sleep "$OUTAGE"
start_proxy
fault "broker: reachable again"
at 0.85; kill_venue simB "$VB_PORT"

wait "$DRIVER_PID" || { log "the load generator failed: $(tail -3 "$OUT/driver.log")"; exit 1; }
DRIVER_PID=
fault "load finished"
GW_RSS_LOAD_END=$(rss_kb "$GW_PID")

# --- drain -----------------------------------------------------------------------------------
log "draining: outbox and back office"
# Drained: the outbox has published everything, the back office reports no lag, and it has
# processed nothing new for 15 s (its watermarks are refreshed every 5 s, also when idle: a
# lag of 0 from a watermark older than its last batch is not trusted).
D0=$(date +%s)
last_processed=; stable_since=$(date +%s)
for i in $(seq 1 "$DRAIN_MAX"); do
  lag=$(metric gateway_outbox_lag_records); read -r blag processed < <(bo_lag)
  if [ "$processed" != "$last_processed" ]; then last_processed=$processed; stable_since=$(date +%s); fi
  if [ "${lag%.*}" = 0 ] && [ "$blag" = 0 ] && [ $(( $(date +%s) - stable_since )) -ge 15 ]; then
    break
  fi
  [ $((i % 30)) = 0 ] && log "  outbox lag $lag, back office lag $blag (processed $processed)"
  sleep 1
done
DRAIN_S=$(( $(date +%s) - D0 ))
fault "drained after $DRAIN_S s (outbox lag $(metric gateway_outbox_lag_records), back office lag and processed: $(bo_lag))"
GW_RSS_END=$(rss_kb "$GW_PID")
ORDERS_END=$(metric gateway_order_store_in_memory)
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
curl -s "http://127.0.0.1:$GW_PORT/metrics" >"$OUT/gateway-metrics.txt"
bo_stats >"$OUT/backoffice-stats.json"

# --- check -----------------------------------------------------------------------------------
log "checking"
CHECK_RC=0
"$BIN" journal dump --dir "$DATA/journal" 2>"$OUT/dump.err" |
  "$BIN" bench soak check --acked "$OUT/acked.tsv" --journal - \
    --venue-log "$DATA/simA/venue-simA.jsonl" --venue-log "$DATA/simB/venue-simB.jsonl" \
    --gateway-id $GATEWAY_ID --target "127.0.0.1:$GW_PORT" --backoffice "127.0.0.1:$BO_PORT" \
    --secret "$SECRET" --json "$OUT/check.json" >"$OUT/check.txt" 2>>"$OUT/soak.log" || CHECK_RC=$?
kill "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=
stop_pid "$GW_PID"; GW_PID=
VERIFY_RC=0
env AUDIT_HMAC_KEYS=$AUDIT_KEYS "$BIN" journal verify --dir "$DATA/journal" >"$OUT/verify.json" 2>&1 || VERIFY_RC=$?

# --- report ----------------------------------------------------------------------------------
export RATE SECS OUTAGE GW_RSS_START GW_RSS_BEFORE_KILL GW_RSS_AFTER_RESTART GW_RSS_LOAD_END \
  GW_RSS_END ORDERS_BEFORE_KILL ORDERS_END GW_DOWN DRAIN_S CHECK_RC VERIFY_RC CONNECTIONS RESTING_PCT
python3 - "$OUT" <<'PY' | tee "$OUT/report.md"
import json, os, sys
out = sys.argv[1]; e = os.environ
d = json.load(open(f"{out}/driver.json"))
c = json.load(open(f"{out}/check.json")) if os.path.exists(f"{out}/check.json") else {}
v = open(f"{out}/verify.json").read().strip()
s = c.get("summary", {})
mb = lambda kb: f"{int(kb) / 1024:.0f} MiB"
print(f"## Soak: {e['RATE']}/s for {e['SECS']} s\n")
print(f"- sent {d['sent']} (scheduled {d['scheduled']}, skipped late {d['skipped_late']}), "
      f"acknowledged 202 {d['acked']}, acknowledged durable (local) {d['acked_durable']} "
      f"(after a retry with the same key: {d['acked_after_retry']}), refused {d['refused']} "
      f"{d['refusals'] or ''}, unresolved {d['unresolved']}; answers asked again: "
      f"{d['io_errors']} lost with their connection, {d['durability_wait_timeouts']} × 503 "
      f"DURABILITY_WAIT_TIMEOUT, {d.get('not_durable_replays', 0)} × 202 replay not yet durable")
print(f"- filled (gateway journal) {s.get('filledOrders')} orders, {s.get('filledQty')} qty; "
      f"venues' view {s.get('venueFilledOrders')} orders; fills differing venue/gateway "
      f"{s.get('venueFillMismatches')}; statuses {s.get('byStatus')}")
print(f"- **lost {c.get('lost')}**, **duplicated {c.get('duplicated')}** "
      f"(check exit {e['CHECK_RC']}: {'OK' if c.get('ok') else 'FAILED'})")
g = c.get("gateway") or {}
print(f"- restarted gateway, GET /orders/{{id}} of every acked order: {g.get('checked')} checked, "
      f"{g.get('ok')} ok, {g.get('notFound')} not found, {g.get('mismatched')} mismatched")
b = c.get("backoffice") or {}
print(f"- back office: /reconcile ok for every account: {b.get('reconcileOk')}; positions = gateway fills: "
      f"{b.get('positionsMatch')}; ledger entries = journal's orders + fills: {b.get('ledgerEntriesMatch')} "
      f"({b.get('fillsBooked')} fills booked; the check waited {b.get('waitedS')} s for the books to match)")
print(f"- journal verify (records + audit chain), exit {e['VERIFY_RC']}: {v}")
print(f"- gateway RSS: start {mb(e['GW_RSS_START'])}, before the SIGKILL {mb(e['GW_RSS_BEFORE_KILL'])} "
      f"({e['ORDERS_BEFORE_KILL']} orders in memory), after the restart {mb(e['GW_RSS_AFTER_RESTART'])}, "
      f"end of load {mb(e['GW_RSS_LOAD_END'])}, after the drain {mb(e['GW_RSS_END'])} ({e['ORDERS_END']} orders in memory)")
print(f"- gateway down {float(e['GW_DOWN']):.1f} s (SIGKILL to healthy, journal replay included); "
      f"drain after the load {e['DRAIN_S']} s")
l = d["latency_us"]
print(f"- latency, intended send → 202 (retries and outages included): p50 {l['p50']/1000:.1f} ms, "
      f"p99 {l['p99']/1000:.1f} ms, p99.9 {l['p999']/1000:.1f} ms, max {l['max']/1000:.0f} ms\n")
print("| minute | acked | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|---|")
for m in d["per_minute"]:
    x = m["latency_us"]
    print(f"| {m['minute']} | {m['acked']} | {x['p50']/1000:.1f} ms | {x['p99']/1000:.1f} ms | "
          f"{x['p999']/1000:.1f} ms | {x['max']/1000:.0f} ms |")
rows = [l.split() for l in open(f"{out}/samples.txt").read().splitlines()[1:]]
rows = [r for r in rows if len(r) >= 19 and int(r[0]) <= int(e["SECS"])]
if rows:
    mean = lambda i: sum(float(r[i]) for r in rows) / len(rows)
    names = ["gateway", "back office", "tansu", "simA", "simB", "load generator", "PostgreSQL (back office)"]
    print("\nCPU during the load, mean % of one core: " + ", ".join(
        f"{n} {mean(12 + i):.0f}" for i, n in enumerate(names)) +
        f"; the machine's 2 cores {mean(10):.0f} % busy (steal {mean(11):.0f} %), load average "
        f"{min(float(r[9]) for r in rows):.1f}–{max(float(r[9]) for r in rows):.1f}")
print("\nFaults (seconds from the start of the load):\n\n```")
print(open(f"{out}/faults.txt").read().rstrip())
print("```")
PY
log "report: $OUT/report.md (samples: $OUT/samples.txt, machine: $OUT/machine.txt)"
[ "$CHECK_RC" = 0 ] && [ "$VERIFY_RC" = 0 ]
