# Shared by the benchmark scripts: build, start and stop the servers under test.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$ROOT/target/release/switchyard
SECRET=${SECRET:-bench-secret}
GW_PORT=${GW_PORT:-18081}
GW_TCP_PORT=${GW_TCP_PORT:-19101}
YS_HTTP_PORT=${YS_HTTP_PORT:-19080}
YS_TCP_PORT=${YS_TCP_PORT:-19081}
OUT=${OUT:-$ROOT/var/bench}
mkdir -p "$OUT"

build() { (cd "$ROOT" && cargo build --release -p switchyard >/dev/null); }

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && { exec 3>&- 3<&-; return 0; }
    sleep 0.05
  done
  echo "port $1 never opened" >&2; return 1
}

start_gateway() {   # extra env as arguments: start_gateway VAR=value ...
  JOURNAL=$(mktemp -d /tmp/sy-bench-journal.XXXX)
  env GATEWAY_HOST=127.0.0.1 GATEWAY_PORT=$GW_PORT V3_TCP_ENABLE=true V3_TCP_PORT=$GW_TCP_PORT \
    JWT_HS256_SECRET=$SECRET GATEWAY_JOURNAL_DIR=$JOURNAL RUST_LOG=warn "$@" \
    "$BIN" gateway >"$OUT/gateway.log" 2>&1 &
  GW_PID=$!
  wait_port "$GW_PORT"
}

stop_gateway() { kill -TERM "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; rm -rf "$JOURNAL"; }

start_yardsticks() {
  "$BIN" bench yardstick-http --listen 127.0.0.1:$YS_HTTP_PORT >"$OUT/ys-http.log" 2>&1 &
  YS_HTTP_PID=$!
  "$BIN" bench yardstick-tcp --listen 127.0.0.1:$YS_TCP_PORT >"$OUT/ys-tcp.log" 2>&1 &
  YS_TCP_PID=$!
  wait_port "$YS_HTTP_PORT"; wait_port "$YS_TCP_PORT"
}

stop_yardsticks() { kill "$YS_HTTP_PID" "$YS_TCP_PID" 2>/dev/null || true; wait "$YS_HTTP_PID" "$YS_TCP_PID" 2>/dev/null || true; }

tokens() {  # N tokens for accounts bench-0..bench-N-1
  local n=$1 t=""
  for i in $(seq 0 $((n - 1))); do t="$t $("$BIN" token --account bench-$i --secret "$SECRET")"; done
  echo "$t"
}

metric() { curl -s "http://127.0.0.1:$GW_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
