#!/usr/bin/env bash
# Drill: the journal's volume fills up under load. Mounts a small tmpfs (needs root), starts a
# release gateway with its journal there, drives pipelined binary TCP at full speed until the
# volume is full, and prints what the clients were told and what the journal kept.
#
# Usage: sudo scripts/disk-full.sh [size-MB] [seconds] [extra gateway env VAR=value ...]
#   scripts/disk-full.sh 400 15                              # default reserve (512 MiB > 400: refuses at once)
#   scripts/disk-full.sh 400 15 JOURNAL_DISK_RESERVE_MB=64   # fills to the reserve, then refuses
#   scripts/disk-full.sh 400 15 JOURNAL_DISK_RESERVE_MB=0    # no reserve: the failed-commit hold
# Results of a run are in docs/reliability.md ("A full journal volume").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/switchyard
SIZE=${1:-400}; SECS=${2:-15}; shift $(($# < 2 ? $# : 2))
MNT=$(mktemp -d /tmp/sy-diskfull.XXXX)
HTTP=18481; TCP=19481; SECRET=drill
(cd "$ROOT" && cargo build --release -p switchyard >/dev/null)
mount -t tmpfs -o size="${SIZE}m" tmpfs "$MNT"
cleanup() { kill "${GW:-0}" 2>/dev/null || true; wait "${GW:-0}" 2>/dev/null || true; umount "$MNT"; rmdir "$MNT"; }
trap cleanup EXIT
env GATEWAY_HOST=127.0.0.1 GATEWAY_PORT=$HTTP V3_TCP_ENABLE=true V3_TCP_PORT=$TCP \
  JWT_HS256_SECRET=$SECRET GATEWAY_JOURNAL_DIR="$MNT/journal" RUST_LOG=warn "$@" \
  "$BIN" gateway >"$MNT.log" 2>&1 &
GW=$!
for _ in $(seq 1 100); do curl -sf -o /dev/null "127.0.0.1:$HTTP/health" && break; sleep 0.1; done
"$BIN" bench pipelined --target "127.0.0.1:$TCP" --connections 4 --window 32 --duration "$SECS" \
  --secret "$SECRET" --json "$MNT.json" >/dev/null 2>&1
python3 - "$MNT.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f'client: {r["completed"]} frames answered, {r["status_counts"].get("202", 0)} accepted, refusals {r["reasons"]}')
PY
df -h "$MNT" | tail -1
curl -s "127.0.0.1:$HTTP/metrics" | grep -E '^gateway_(v3_durable_accepted_total|v3_durable_rejected_total|v3_durable_write_error_total|v3_loss_suspect_total|v3_global_killed_total|journal_available|journal_disk_free_bytes) '
echo "health: $(curl -s "127.0.0.1:$HTTP/health")"
echo "log lines: $(wc -l <"$MNT.log")"; head -c 2000 "$MNT.log"
rm -f "$MNT.log" "$MNT.json"
