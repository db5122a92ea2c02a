#!/usr/bin/env bash
# The crash test of the durable path, longer: SIGKILL at random moments under POST /orders
# load, CYCLES times (default 200), checking after every restart that every order answered at
# `local` is present, no key created two orders, and the journal verifies.
# Usage: scripts/crash-soak.sh [cycles]
set -euo pipefail
cd "$(dirname "$0")/.."
CRASH_CYCLES=${1:-200} cargo test --release -p switchyard --test orders_crash -- --nocapture
