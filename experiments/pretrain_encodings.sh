#!/usr/bin/env bash
# Pretrains the same small encoder on Reuters-21578 once per positional encoding, with the same
# tokenizer, data order and budget, then prints the comparison table of docs/RESULTS.md.
#
#   experiments/pretrain_encodings.sh [RUNS_DIR]     (default runs/encodings; ~2 h on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/encodings}
STEPS=${STEPS:-2500}
DATA=../shared/data/reuters21578
cargo build --release --quiet
mkdir -p "$RUNS"
# A copy, so that rebuilding the project during the runs does not change them.
cp target/release/positio "$RUNS/positio"
P=$RUNS/positio
CORPUS=(--corpus "$DATA/train.jsonl" --corpus "$DATA/unused.jsonl" --format jsonl --field title --field text)
[ -f "$RUNS/tokenizer.json" ] || $P tokenizer train "${CORPUS[@]}" --vocab-size 16000 --out "$RUNS/tokenizer.json"
for pos in absolute sinusoidal rope alibi t5_bias none; do
  out="$RUNS/$pos"
  [ -f "$out/model.safetensors" ] && continue
  resume=(); [ -f "$out/checkpoints/latest" ] && resume=(--resume)
  $P pretrain "${CORPUS[@]}" --tokenizer "$RUNS/tokenizer.json" --out "$out" "${resume[@]}" \
    --position "$pos" --norm pre --layers 4 --hidden 256 --heads 4 --ffn 1024 --max-len 128 \
    --batch-size 32 --lr 1e-3 --warmup 0.06 --steps "$STEPS" --eval-every 250 --save-every 250 --seed 42 \
    > "$out.log" 2>&1 || { echo "$pos failed: see $out.log"; exit 1; }
  $P plot "$out" > /dev/null
done
python3 experiments/encodings_table.py "$RUNS"
