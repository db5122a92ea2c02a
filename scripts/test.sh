#!/usr/bin/env bash
# Runs every test of Switchyard on a fresh machine: installs what the tests need, starts the
# services they use, then format check, lints, unit + property + integration tests.
# Usage: scripts/test.sh            (CI calls exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

log "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
cargo --version

# Real services on loopback: a Kafka-protocol broker (tansu) and PostgreSQL, installed if
# missing, stopped again when the tests end. Tests find them through SWITCHYARD_TEST_KAFKA and
# SWITCHYARD_TEST_PG. (The gateway and venue simulators are started by the tests themselves,
# as real processes on ephemeral ports.)
log "services"
scripts/services.sh start
trap 'scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
source var/services/env

log "format"
cargo fmt --all -- --check

log "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests"
cargo test --workspace --locked 2>&1 | tee /tmp/switchyard-test.log

log "fuzz"
# Every parser that reads untrusted bytes under libFuzzer, a few seconds per target (fuzz/,
# docs/reliability.md#fuzzing): about 1-2 min to build from scratch, then 10 s per target.
scripts/fuzz.sh "${SWITCHYARD_FUZZ_SECONDS:-10}"

# Print one summary line the way a reader wants it.
passed=$(grep -Eo '[0-9]+ passed' /tmp/switchyard-test.log | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' /tmp/switchyard-test.log | awk '{s+=$1} END {print s+0}')
echo "${passed} passed, ${failed} failed"
