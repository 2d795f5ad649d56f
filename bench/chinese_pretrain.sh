#!/usr/bin/env bash
# Pretraining throughput on the Chinese corpus, positio against its PyTorch twin
# (bench/chinese_pretrain.py), one after the other on this machine: the same model, tokenizer,
# corpus, batch and optimizer. Characters/s = tokens/s × characters per token of the packed
# corpus (the same for both: one tokenizer).
#
#   bench/chinese_pretrain.sh [RUNS_DIR]     (default runs/zh, made by experiments/chinese.sh)
#   STEPS=40 PYTHON=/path/to/venv/bin/python bench/chinese_pretrain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/zh}
STEPS=${STEPS:-40}
PY=${PYTHON:-python3}
cargo build --release --quiet
P=./target/release/positio
"$PY" bench/machine.py --no-gemm
CORPUS=(--corpus "$RUNS/daily/train.txt" --corpus "$RUNS/reviews/train.txt")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# positio: `pretrain` itself; the median of its logged tokens/s (every 10 steps) after the first.
$P pretrain "${CORPUS[@]}" --tokenizer "$RUNS/tokenizer.json" --out "$out/run" \
  --position rope --norm pre --layers 4 --hidden 256 --heads 4 --ffn 1024 --max-len 128 \
  --batch-size 32 --lr 1e-3 --warmup 0.06 --steps "$((STEPS + 10))" --eval-every 0 --save-every 0 --seed 42 \
  > "$out/positio.log" 2>&1
POSITIO=$(grep -o '[0-9]* tokens/s' "$out/positio.log" | tail -n +2 | awk '{print $1}' | sort -n |
  awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}')
TWIN=$("$PY" bench/chinese_pretrain.py --tokenizer "$RUNS/tokenizer.json" "${CORPUS[@]}" --steps "$STEPS")
echo "$TWIN"
PER=$(echo "$TWIN" | awk '/^RESULT chars-per-token/ {print $3}')
TORCH=$(echo "$TWIN" | awk '/^RESULT tokens-per-s/ {print $3}')
awk -v p="$POSITIO" -v t="$TORCH" -v c="$PER" 'BEGIN {
  printf "| engine | tokens/s | characters/s |\n|---|---:|---:|\n"
  printf "| positio | %.0f | %.0f |\n| PyTorch twin | %.0f | %.0f |\n", p, p * c, t, t * c
  printf "positio / PyTorch: %.2f×\n", p / t }'
