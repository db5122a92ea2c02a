#!/usr/bin/env bash
# Fuzzes every parser of Switchyard that reads untrusted bytes: builds the libFuzzer targets
# under fuzz/ and runs each for a bounded time, one after another (docs/reliability.md#fuzzing).
#
# Usage: scripts/fuzz.sh [seconds-per-target] [target...]     (default 20 s, every target)
#
# Prints one line per target (executions, crashes) and writes them to var/fuzz/summary.txt;
# exits non-zero if any target found a crash (the input is kept under fuzz/artifacts/<target>/;
# replay it with `fuzz/target/<host>/release/<target> <file>`). Corpora grown by a run are kept
# in var/fuzz/corpus/<target> and reused by the next; the seeds in fuzz/corpus are never written.
#
# Toolchain: the stable one. cargo-fuzz (installed from crates.io if missing) builds with
# `--sanitizer none`, which needs no nightly flag: coverage instrumentation, debug assertions and
# overflow checks are stable codegen options. AddressSanitizer needs `-Zsanitizer`, which stable
# rustc accepts only with RUSTC_BOOTSTRAP=1: FUZZ_SANITIZER=address sets it for the build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

secs="${1:-20}"
[[ $# -gt 0 ]] && shift
all=(v3_frame http_body jwt journal_segments journal_records venue_msg bus_event)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")
sanitizer="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (once; kept in ~/.cargo/bin)"
    cargo install cargo-fuzz --locked
fi

# The fuzz workspace builds into fuzz/target whatever CARGO_TARGET_DIR says: its flags differ
# from the main workspace's, and sharing a target dir would rebuild both every time.
build=(cargo fuzz build --sanitizer "$sanitizer" --target-dir "$root/fuzz/target")
[[ $sanitizer != none ]] && export RUSTC_BOOTSTRAP=1
start=$(date +%s)
echo "== building fuzz targets (sanitizer: $sanitizer)"
"${build[@]}"
built=$(date +%s)
host=$(rustc -vV | sed -n 's/^host: //p')
bin="$root/fuzz/target/$host/release"

# Journal recovery writes and syncs segment files: give it tmpfs when there is one.
scratch=$(mktemp -d /dev/shm/switchyard-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export SWITCHYARD_FUZZ_TMP=$scratch

mkdir -p var/fuzz
summary=var/fuzz/summary.txt
{
    echo "# scripts/fuzz.sh $secs s per target, sanitizer $sanitizer, $(date -u +%FT%TZ)"
    echo "# $(cargo fuzz --version 2>/dev/null), $(rustc --version)"
    printf '%-18s %14s %8s  %s\n' target executions crashes artifact
} >"$summary"
failed=0
for t in "${targets[@]}"; do
    [[ -x $bin/$t ]] || { echo "unknown fuzz target: $t" >&2; exit 2; }
    mkdir -p "var/fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="var/fuzz/$t.log"
    opts=(-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="fuzz/artifacts/$t/")
    case $t in
        http_body | jwt | venue_msg | bus_event) opts+=(-dict=fuzz/dict/json.dict) ;;
    esac
    rc=0
    "$bin/$t" "${opts[@]}" "var/fuzz/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [[ -n $execs ]] || execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    crashes=$(grep -c 'Test unit written to' "$log" || true)
    if [[ $rc -ne 0 && $crashes -eq 0 ]]; then
        crashes=1 # died without writing its input (killed, or the harness itself failed)
        artifact="see $log"
    fi
    [[ $crashes -gt 0 ]] && failed=1
    line=$(printf '%-18s %14s %8s  %s' "$t" "${execs:-0}" "$crashes" "${artifact:--}")
    echo "$line"
    echo "$line" >>"$summary"
    if [[ $crashes -gt 0 ]]; then
        grep -m1 -A6 -E 'panicked|ERROR: libFuzzer|==ERROR' "$log" >&2 || tail -20 "$log" >&2
    fi
done
end=$(date +%s)
echo "# build $((built - start)) s, fuzzing $((end - built)) s" >>"$summary"
echo "fuzz: build $((built - start)) s, fuzzing $((end - built)) s; summary in $summary"
exit "$failed"
