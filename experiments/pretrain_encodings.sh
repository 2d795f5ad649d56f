#!/usr/bin/env bash
# Pretrains the same small encoder on Reuters-21578 once per positional encoding, with the same
# tokenizer, data order and budget, fine-tunes each on CoNLL-2003 NER the same way, then prints
# the comparison table of docs/RESULTS.md. Resumable: rerun it after an interruption.
#
#   experiments/pretrain_encodings.sh [RUNS_DIR]     (default runs/encodings; ~95 min on 2 cores)
#   STEPS=2500 experiments/pretrain_encodings.sh runs/encodings-2500   (a longer budget)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/encodings}
STEPS=${STEPS:-1000}
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
  if [ ! -f "$out/model.safetensors" ]; then
    resume=(); [ -f "$out/checkpoints/latest" ] && resume=(--resume)
    $P pretrain "${CORPUS[@]}" --tokenizer "$RUNS/tokenizer.json" --out "$out" "${resume[@]}" \
      --position "$pos" --norm pre --layers 4 --hidden 256 --heads 4 --ffn 1024 --max-len 128 \
      --batch-size 32 --lr 1e-3 --warmup 0.06 --steps "$STEPS" --eval-every 250 --save-every 250 --seed 42 \
      > "$out.log" 2>&1 || { echo "$pos failed: see $out.log"; exit 1; }
    $P plot "$out" > /dev/null
  fi
  # The same fine-tuning recipe for every encoding (a small model from scratch: 3e-4, 3 epochs).
  P=$P experiments/finetune_ner.sh "$RUNS/ner-$pos" --model "$out" \
    --epochs 3 --lr 3e-4 --batch-size 32 --warmup 0.1 --max-len 128 --seed 42 \
    || { echo "NER on $pos failed: see $RUNS/ner-$pos.log"; exit 1; }
done
python3 experiments/encodings_table.py "$RUNS"
