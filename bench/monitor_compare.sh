#!/usr/bin/env bash
# The news monitor's throughput end to end, side by side in one run on the same machine:
# `positio monitor run` with three models (sentiment, topics, entities) against the same three
# models through `transformers` pipelines in a Python loop (bench/monitor_throughput.py), on the
# same items (the first N of a replay stream), both storing every item with its annotation in
# SQLite. Each precision of PRECISIONS (default "fp32 int8") is one pair of runs: fp32 as the
# models were trained, int8 with every Linear layer quantized on both sides (`--precision int8`
# against torch's `quantize_dynamic`). Prints the CPU, every timing (whole command, models
# loaded included), the ratios, how alike the two sides annotate, and how alike positio's int8
# and fp32 annotations are.
#
#   PYTHON=/path/to/venv/python [PRECISIONS="fp32 int8"] bash bench/monitor_compare.sh [STREAM] [N]
#
# STREAM defaults to runs/replay/stream.jsonl (experiments/monitor_replay.py generate), the
# models to runs/monitor/{sentiment,topics,entities} (experiments/monitor_models.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STREAM=${1:-runs/replay/stream.jsonl}
N=${2:-1000}
M=runs/monitor
OUT=runs/monitor-compare
rm -rf "$OUT" && mkdir -p "$OUT"
head -n "$N" "$STREAM" > "$OUT/items.jsonl"
cargo build --release --quiet
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; $(date -u +%FT%TZ)"
for precision in ${PRECISIONS:-fp32 int8}; do
  int8=(); [[ $precision == int8 ]] && int8=(--int8)
  start=$(date +%s.%N)
  target/release/positio monitor run --model sentiment=$M/sentiment --model topics=$M/topics \
    --model entities=$M/entities --source "$OUT/items.jsonl" --store "$OUT/positio-$precision.db" \
    --alerts "$OUT/alerts-$precision.jsonl" --clock event --window 10m --batch-size 32 \
    --precision "$precision" > "$OUT/positio-$precision.json" 2> "$OUT/positio-$precision.log"
  positio_s=$(echo "$(date +%s.%N) - $start" | bc -l)
  echo "$precision: positio $(cat "$OUT/positio-$precision.json") in ${positio_s} s"
  "$PY" bench/monitor_throughput.py --stream "$OUT/items.jsonl" --sentiment $M/sentiment \
    --topics $M/topics --entities $M/entities --batch-size 32 --threads 2 \
    --db "$OUT/python-$precision.db" "${int8[@]}" > "$OUT/python-$precision.txt" 2>&1
  tail -n 1 "$OUT/python-$precision.txt" > "$OUT/python-$precision.json"
  "$PY" - "$OUT" "$precision" "$positio_s" "$N" <<'PY'
import json, sys
out, precision, positio_s, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
py = json.load(open(f"{out}/python-{precision}.json"))
print(f"{precision}: transformers {py['transformers']}, torch {py['torch']}, {py['threads']} threads: "
      f"{py['items']} items in {py['wall_seconds']:.1f} s whole ({py['seconds']:.1f} s loop; "
      f"stages {py['stages']})")
print(f"{precision}: items/s positio {n / positio_s:.2f}, transformers {py['items'] / py['wall_seconds']:.2f} "
      f"(loop only {py['items_per_s']:.2f}); ratio {py['wall_seconds'] / positio_s:.2f}x")
PY
done
# How alike two stores annotate the same items, item by item.
"$PY" - "$OUT" ${PRECISIONS:-fp32 int8} <<'PY'
import json, os, sqlite3, sys
out, precisions = sys.argv[1], sys.argv[2:]
def annotations(db):
    return {i: json.loads(a) for i, a in sqlite3.connect(db).execute("SELECT id, annotation FROM items")}
def agreement(x, y, name):
    a, b = annotations(f"{out}/{x}.db"), annotations(f"{out}/{y}.db")
    ids = sorted(set(a) & set(b))
    same = lambda f: sum(f(a[i]) == f(b[i]) for i in ids) / len(ids)
    print(f"{name}, {len(ids)} items: sentiment label {same(lambda x: x.get('sentiment')):.4f}, "
          f"topic sets {same(lambda x: sorted(x.get('topics') or [])):.4f}, "
          f"entity sets {same(lambda x: sorted(x.get('entities') or [])):.4f}; "
          f"max |P(negative) difference| {max(abs((a[i].get('negative') or 0) - (b[i].get('negative') or 0)) for i in ids):.2e}")
for p in precisions:
    agreement(f"positio-{p}", f"python-{p}", f"positio against transformers, {p}")
if "fp32" in precisions and "int8" in precisions:
    agreement("positio-int8", "positio-fp32", "positio int8 against fp32")
    agreement("python-int8", "python-fp32", "transformers int8 against fp32")
PY
