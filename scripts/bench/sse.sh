#!/usr/bin/env bash
# SSE fan-out (issue 3): $CLIENTS clients, each reading its own account's GET /stream, while
# POST /orders runs open loop at $RATE/s round-robin over the same accounts (bench-0..N-1).
# Every order answered 202 must arrive on its account's stream as order_update + order_durable,
# once each, in order; the gateway's delivery-delay p99 (publish -> frame written) must be
# <= 20 ms. Summary in var/bench/sse.txt, full report (per client too) in var/bench/sse.json.
#
# Ports default to 18181/19181 so that this can run next to the other scripts (18081/19101);
# the gateway's log goes to var/bench/sse-gateway/gateway.log for the same reason.
# Usage: scripts/bench/sse.sh [clients] [rate] [seconds] [durability]
GW_PORT=${GW_PORT:-18181}
GW_TCP_PORT=${GW_TCP_PORT:-19181}
source "$(dirname "$0")/common.sh"
CLIENTS=${1:-200}; RATE=${2:-5000}; SECS=${3:-30}; LEVEL=${4:-volatile}
REPORT=$OUT/sse.txt

# One fd per stream and per order connection, plus the journal's: raise the soft limit if low.
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096 2>/dev/null || true

build
mkdir -p "$OUT/sse-gateway"
# The connection limits are the defaults, spelled out: CLIENTS streams + 32 order connections
# must stay well under both.
OUT=$OUT/sse-gateway start_gateway GATEWAY_MAX_CONNECTIONS=10000 SSE_MAX_CLIENTS=10000 ${GW_ENV:-}
trap 'stop_gateway' EXIT

{
  echo "sse.sh $(date -u +%FT%TZ) commit $(git -C "$ROOT" rev-parse --short HEAD) nproc $(nproc) fd-limit $(ulimit -n)"
  echo "command: switchyard bench sse --target 127.0.0.1:$GW_PORT --secret \$SECRET --clients $CLIENTS --rate $RATE --duration $SECS --durability $LEVEL --json $OUT/sse.json"
  "$BIN" bench sse --target 127.0.0.1:$GW_PORT --secret "$SECRET" --clients "$CLIENTS" \
    --rate "$RATE" --duration "$SECS" --durability "$LEVEL" --json "$OUT/sse.json"
  echo "gateway: fdatasync_p50_us=$(metric gateway_fdatasync_p50_us) fdatasync_p99_us=$(metric gateway_fdatasync_p99_us) durable_ack_p99_us=$(metric gateway_durable_ack_p99_us) sse_dispatch_queue_depth=$(metric gateway_sse_dispatch_queue_depth) rss_kb=$(awk '$1 == "VmRSS:" {print $2}' /proc/$GW_PID/status)"
} 2>&1 | tee "$REPORT"
