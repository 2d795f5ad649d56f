#!/usr/bin/env bash
# The news monitor's throughput end to end, side by side in one run on the same machine:
# `positio monitor run` with three models (sentiment, topics, entities) against the same three
# models through `transformers` pipelines in a Python loop (bench/monitor_throughput.py), on the
# same items (the first N of a replay stream), both storing every item with its annotation in
# SQLite. Prints the CPU, both timings (whole command, models loaded included) and the ratio.
#
#   PYTHON=/path/to/venv/python bash bench/monitor_compare.sh [STREAM] [N]
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
start=$(date +%s.%N)
target/release/positio monitor run --model sentiment=$M/sentiment --model topics=$M/topics \
  --model entities=$M/entities --source "$OUT/items.jsonl" --store "$OUT/positio.db" \
  --alerts "$OUT/alerts.jsonl" --clock event --window 10m --batch-size 32 > "$OUT/positio.json" 2> "$OUT/positio.log"
positio_s=$(echo "$(date +%s.%N) - $start" | bc -l)
echo "positio: $(cat "$OUT/positio.json") in ${positio_s} s"
"$PY" bench/monitor_throughput.py --stream "$OUT/items.jsonl" --sentiment $M/sentiment \
  --topics $M/topics --entities $M/entities --batch-size 32 --threads 2 --db "$OUT/python.db" \
  > "$OUT/python.txt" 2>&1
tail -n 1 "$OUT/python.txt" > "$OUT/python.json"
"$PY" - "$OUT" "$positio_s" "$N" <<'PY'
import json, sys
out, positio_s, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
py = json.load(open(f"{out}/python.json"))
print(f"transformers {py['transformers']}, torch {py['torch']}, {py['threads']} threads: "
      f"{py['items']} items in {py['wall_seconds']:.1f} s whole ({py['seconds']:.1f} s loop)")
print(f"items/s: positio {n / positio_s:.2f}, transformers {py['items'] / py['wall_seconds']:.2f} "
      f"(loop only {py['items_per_s']:.2f}); ratio {py['wall_seconds'] / positio_s:.2f}x")
PY
# The two annotate the same items the same way: agreement item by item.
"$PY" - "$OUT" <<'PY'
import json, sqlite3, sys
out = sys.argv[1]
def annotations(db):
    return {i: json.loads(a) for i, a in sqlite3.connect(db).execute("SELECT id, annotation FROM items")}
a, b = annotations(f"{out}/positio.db"), annotations(f"{out}/python.db")
ids = sorted(set(a) & set(b))
same = lambda f: sum(f(a[i]) == f(b[i]) for i in ids) / len(ids)
print(f"agreement on {len(ids)} items: sentiment label {same(lambda x: x.get('sentiment')):.4f}, "
      f"topic sets {same(lambda x: sorted(x.get('topics') or [])):.4f}, "
      f"entity sets {same(lambda x: sorted(x.get('entities') or [])):.4f}; "
      f"max |P(negative) difference| {max(abs((a[i].get('negative') or 0) - (b[i].get('negative') or 0)) for i in ids):.2e}")
PY
