#!/usr/bin/env bash
# Builds the CUDA binary here and packs it for the lent GPU machine (no Rust there; at most
# 64 MiB carried per call): stripped and xz-compressed into runs/gpu/positio.xz (~10 MB).
#   bench/gpu_pack.sh
# Then, with the device tool: carry ["runs/gpu"], command
#   xz -d -k runs/gpu/positio.xz && POSITIO=runs/gpu/positio OUT=$OUT bash bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --features cuda
mkdir -p runs/gpu
strip -o runs/gpu/positio target/release/positio
xz -T0 -9 -f runs/gpu/positio
ls -l runs/gpu/positio.xz
