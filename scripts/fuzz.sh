#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ with libFuzzer, each for SECONDS (default 10), from the seed
# corpus in fuzz/seeds/ (copied: a run never writes into the repository). Exits non-zero on the
# first crash, leaving the input under $FUZZ_OUT/artifacts/<target>/.
#
#   scripts/fuzz.sh               # every target, 10 s each (scripts/test.sh runs this)
#   scripts/fuzz.sh 600 key vary  # two targets, 10 minutes each
#   FUZZ_ASAN=1 scripts/fuzz.sh   # with AddressSanitizer, through cargo-fuzz (needs -Z flags)
#
# On stable Rust the targets are built with the compiler's own coverage instrumentation
# (sancov, the flags cargo-fuzz passes) and no sanitizer: the code under test forbids `unsafe`,
# and a panic or abort is a crash to libFuzzer either way. See TESTING.md.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${1:-10}"
shift || true
ALL=(cache_control ages_and_dates vary etag key stored envelope)
TARGETS=("$@")
[ "${#TARGETS[@]}" -eq 0 ] && TARGETS=("${ALL[@]}")
OUT="${FUZZ_OUT:-$(mktemp -d)}"
mkdir -p "$OUT"

if [ "${FUZZ_ASAN:-0}" = 1 ]; then
    RUSTC_BOOTSTRAP=1 cargo fuzz build -O >/dev/null
    BIN=fuzz/target/x86_64-unknown-linux-gnu/release
else
    export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
    # With --target, the flags reach the fuzzed code and not build scripts or proc macros.
    HOST=$(rustc -vV | awk '/^host:/ {print $2}')
    cargo build -q --release --manifest-path fuzz/Cargo.toml --target "$HOST" \
        --target-dir fuzz/target/stable
    unset RUSTFLAGS
    BIN=fuzz/target/stable/$HOST/release
fi

for t in "${TARGETS[@]}"; do
    corpus="$OUT/corpus/$t"
    artifacts="$OUT/artifacts/$t/"
    mkdir -p "$corpus" "$artifacts"
    [ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    log="$OUT/$t.log"
    if ! "$BIN/$t" "$corpus" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        -artifact_prefix="$artifacts" >"$log" 2>&1; then
        echo "fuzz: $t CRASHED; input in $artifacts, log $log" >&2
        tail -30 "$log" >&2
        exit 1
    fi
    runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    printf 'fuzz: %-15s %4ss  %10s runs  %s  0 crashes\n' "$t" "$SECONDS_EACH" "$runs" "$cov"
done
