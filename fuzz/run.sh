#!/usr/bin/env bash
# Coverage-guided fuzzing of positio's readers, parsers and server routes (src/fuzz.rs) with
# libFuzzer, on stable Rust: the targets built with the instrumentation flags cargo-fuzz passes
# (sanitizer coverage: inline 8-bit counters, PC table, comparison tracing) but no sanitizer,
# which would need a nightly compiler. Each target runs SECONDS (default 120) from its corpus in
# fuzz/corpus/TARGET (seeded from the fixtures the first time; kept, so runs build on each
# other); crashes, hangs (> 10 s) and out-of-memory inputs land in fuzz/findings/. Prints one
# line per target: executions, corpus size, findings.
#
#   fuzz/run.sh                   # every target, 2 minutes each
#   SECONDS_PER_TARGET=600 fuzz/run.sh conll safetensors
#   fuzz/run.sh --replay FILE TARGET   # run one input (a finding) once
set -euo pipefail
cd "$(dirname "$0")/.."
PER=${SECONDS_PER_TARGET:-120}
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros (as cargo-fuzz does):
# instrumented, they would not link.
HOST=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --quiet --manifest-path fuzz/Cargo.toml --target-dir target/fuzz --target "$HOST"
BIN=target/fuzz/$HOST/release/positio-fuzz
if [ "${1:-}" = "--replay" ]; then
  POSITIO_FUZZ_TARGET=$3 exec "$BIN" "$2"
fi
if [ $# -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(grep -o '^    "[a-z-]*",$' src/fuzz.rs | tr -d ' ",')
fi
mkdir -p fuzz/findings
grep -m1 "model name" /proc/cpuinfo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $PER s per target"
for t in "${TARGETS[@]}"; do
  log=fuzz/findings/$t.log
  POSITIO_FUZZ_TARGET=$t POSITIO_FUZZ_SEEDS=fuzz/corpus/$t "$BIN" "fuzz/corpus/$t" \
    -max_total_time="$PER" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
    -artifact_prefix="fuzz/findings/$t-" -print_final_stats=1 > "$log" 2>&1 || true
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  found=$(find fuzz/findings -maxdepth 1 -name "$t-*" -type f | wc -l)
  echo "$t: $execs executions, corpus $(find "fuzz/corpus/$t" -type f | wc -l) inputs, $found findings"
done
