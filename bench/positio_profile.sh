#!/usr/bin/env bash
# Where positio's time goes, op family by op family: `perf record` (CPU samples on both threads)
# over `positio bench` after start-up and warm-up (perf -D skips the first DELAY_MS), summarised
# by bench/perf_ops.py as a Markdown table (share of samples per op family and the top symbols).
# The counterpart of bench/torch_profile.py for PyTorch. Needs `perf` (linux-perf).
#
#   bench/positio_profile.sh                       # MLM training step, loss at all positions
#   bench/positio_profile.sh --task encoder --model DIR --batch 32 --len 128
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
DELAY_MS=${DELAY_MS:-4000}
DATA=$(mktemp)
perf record -q -D "$DELAY_MS" -F 999 -o "$DATA" ./target/release/positio bench --steps 12 --warmup 3 "$@" | grep RESULT
perf report -i "$DATA" --sort symbol --stdio 2>/dev/null | python3 bench/perf_ops.py
rm -f "$DATA"
