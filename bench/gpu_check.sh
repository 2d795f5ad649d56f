#!/usr/bin/env bash
# positio on a GPU, side by side with PyTorch on the same GPU, in one run (issue: GPU). Made for
# the lent NVIDIA H200 (PyTorch + transformers there, no Rust, no internet): carry a CUDA build
# of positio (`cargo build --release --features cuda`, stripped and compressed) and this
# repository (bench/gpu_pack.sh does the first part and says how), then run this script; it
# writes $OUT/gpu_check.jsonl, .json and .md.
#
#   POSITIO=./positio OUT=$OUT bench/gpu_check.sh                  # on the GPU machine
#   DEVICE=cpu SHAPES=tiny BATCHES="2x32" bench/gpu_check.sh        # dry run on any machine
#
# For each shape (random weights made by transformers there, bench/gpu_reference.py make):
#  1. parity: `positio embed --device $DEVICE [--precision bf16]` against transformers in fp32
#     on the same device (sentence embeddings, max abs difference; tolerance fp32 1e-3, bf16 3e-2),
#     and the MLM loss of every training step (same weights, batch and AdamW) against PyTorch
#     eager in the same precision (tolerance fp32 1e-3, bf16 3e-2);
#  2. speed: encoder inference and an MLM training step (loss at every position, AdamW), batch ×
#     length from $BATCHES, positio against PyTorch eager (SDPA attention) and torch.compile;
#     median ms of 10 steps after 3 warm-ups, tokens/s, ratios, and the achieved share of
#     $PEAK_TFLOPS (the H200's measured dense bf16 matrix rate, ~790).
# bf16: positio --precision bf16 and PyTorch autocast (bf16 products, fp32 master weights).
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
SHAPES=${SHAPES:-"minilm base"}
BATCHES=${BATCHES:-"32x128 8x512"}
OUT=${OUT:-runs/gpu_check}
P=${POSITIO:-target/release/positio}
PY=${PYTHON:-python3}
PEAK_TFLOPS=${PEAK_TFLOPS:-790}
STEPS=${STEPS:-10}
mkdir -p "$OUT/models"
RESULTS=$OUT/gpu_check.jsonl
: > "$RESULTS"
TORCH_DEVICE=$DEVICE
[ "$DEVICE" = cpu ] || TORCH_DEVICE=cuda:${DEVICE#cuda:}
[ "$TORCH_DEVICE" = "cuda:cuda" ] && TORCH_DEVICE=cuda:0

record() { # KEY=VALUE ... → one JSON line
  "$PY" -c 'import json,sys; print(json.dumps(dict(a.split("=",1) for a in sys.argv[1:])))' "$@" | tee -a "$RESULTS"
}
median_of() { awk '/^RESULT/ {print $3; exit}'; }

"$PY" - << 'PYEOF' > "$OUT/texts.txt"
texts = [
    "the market fell as oil prices rose",
    "shares of the company were up two percent in early trade",
    "a",
    "the government said it would not change its trade policy this year " * 6,
    "bank prices were made by the first man who could",
]
print("\n".join(texts))
PYEOF
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null | sed 's/^/gpu: /' || true
"$PY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.version.cuda)'

for shape in $SHAPES; do
  M=$OUT/models/$shape
  [ -f "$M/config.json" ] || "$PY" bench/gpu_reference.py make --out "$M" --shape "$shape" || continue
  # 1. Parity of sentence embeddings, fp32 and bf16, against transformers in fp32.
  "$PY" bench/gpu_reference.py embed --model "$M" --texts "$OUT/texts.txt" --device "$TORCH_DEVICE" > "$OUT/ref-$shape.jsonl"
  for dtype in fp32 bf16; do
    tol=1e-3; [ $dtype = bf16 ] && tol=3e-2
    if "$P" embed "$M" --device "$DEVICE" --precision $dtype --pooling mean < "$OUT/texts.txt" > "$OUT/ours-$shape-$dtype.jsonl" 2> "$OUT/embed-$shape.err"; then
      diff=$("$PY" -c '
import json, sys
a = [json.loads(l)["embedding"] for l in open(sys.argv[1])]
b = [json.loads(l)["embedding"] for l in open(sys.argv[2])]
assert len(a) == len(b)
print(max(abs(x - y) for u, v in zip(a, b) for x, y in zip(u, v)))' "$OUT/ours-$shape-$dtype.jsonl" "$OUT/ref-$shape.jsonl")
      record kind=parity shape="$shape" dtype=$dtype max_abs_diff="$diff" tolerance=$tol
    else
      record kind=parity shape="$shape" dtype=$dtype error="$(head -c 300 "$OUT/embed-$shape.err")"
    fi
  done
  # 2. Speed.
  for bl in $BATCHES; do
    b=${bl%x*}; l=${bl#*x}
    for task in forward train; do
      ptask=encoder; [ $task = train ] && ptask=train
      for dtype in fp32 bf16; do
        "$P" bench --task $ptask --model "$M" --batch "$b" --len "$l" --steps "$STEPS" --device "$DEVICE" --precision $dtype > "$OUT/positio.out" 2> "$OUT/bench.err"
        ms=$(median_of < "$OUT/positio.out")
        record kind=speed shape="$shape" task=$task batch="$b" len="$l" dtype=$dtype system=positio ms="${ms:-nan}"
        grep '^losses' "$OUT/positio.out" | cut -d' ' -f2- > "$OUT/losses-positio-$dtype.txt" || true
      done
      for mode in eager compile; do
        for dtype in fp32 bf16; do
          "$PY" bench/gpu_reference.py time --task $task --model "$M" --device "$TORCH_DEVICE" --batch "$b" --len "$l" --mode $mode --dtype $dtype --steps "$STEPS" > "$OUT/torch.out" 2> "$OUT/torch.err"
          ms=$(median_of < "$OUT/torch.out")
          record kind=speed shape="$shape" task=$task batch="$b" len="$l" dtype=$dtype system=torch-$mode ms="${ms:-nan}"
          if [ $task = train ] && [ $mode = eager ]; then
            grep '^LOSSES' "$OUT/torch.out" | cut -d' ' -f2- > "$OUT/losses-torch-$dtype.txt" || true
            # Loss-curve parity: the same weights, batch and optimizer, step by step.
            diff=$("$PY" -c '
import sys
a = open(sys.argv[1]).read().split(); b = open(sys.argv[2]).read().split()
print(max(abs(float(x) - float(y)) for x, y in zip(a, b)) if a and len(a) == len(b) else "nan")' "$OUT/losses-positio-$dtype.txt" "$OUT/losses-torch-$dtype.txt")
            tol=1e-3; [ $dtype = bf16 ] && tol=3e-2
            record kind=parity shape="$shape" dtype=$dtype what="MLM loss, $((STEPS + 3)) steps, $b x $l" max_abs_diff="$diff" tolerance=$tol
          fi
        done
      done
    done
  done
done

"$PY" - "$RESULTS" "$OUT" "$PEAK_TFLOPS" << 'PYEOF'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out, peak = sys.argv[2], float(sys.argv[3])
SHAPES = {"tiny": (2, 64, 256), "minilm": (6, 384, 1536), "base": (12, 768, 3072)}
def flops(shape, task, b, l):
    layers, h, f = SHAPES[shape]
    n = b * l
    per_layer = 2 * n * (4 * h * h + 2 * h * f) + 4 * b * l * l * h
    fwd = layers * per_layer + (2 * n * h * 30522 if task == "train" else 0)
    return fwd * (3 if task == "train" else 1)
md = ["| shape | task | batch × len | dtype | system | ms | tokens/s | × torch eager fp32 | share of peak |", "|---|---|---|---|---|---:|---:|---:|---:|"]
for r in rows:
    if r["kind"] == "parity":
        md.insert(0, f"parity {r['shape']} {r['dtype']} {r.get('what', 'sentence embeddings')}: max |diff| {r.get('max_abs_diff', r.get('error'))} (tolerance {r.get('tolerance', '-')})\n")
        continue
    ms = float(r["ms"])
    b, l = int(r["batch"]), int(r["len"])
    base = next((float(x["ms"]) for x in rows if x["kind"] == "speed" and x["shape"] == r["shape"] and x["task"] == r["task"] and x["batch"] == r["batch"] and x["len"] == r["len"] and x["system"] == "torch-eager" and x["dtype"] == "fp32"), math.nan)
    r["tokens_per_s"] = b * l / ms * 1e3 if ms == ms else math.nan
    r["vs_torch_eager_fp32"] = base / ms if ms == ms else math.nan
    r["share_of_peak"] = flops(r["shape"], r["task"], b, l) / (ms / 1e3) / (peak * 1e12) if ms == ms else math.nan
    md.append(f"| {r['shape']} | {r['task']} | {b} × {l} | {r['dtype']} | {r['system']} | {ms:.2f} | {r['tokens_per_s']:.0f} | {r['vs_torch_eager_fp32']:.2f} | {100 * r['share_of_peak']:.1f} % |")
json.dump(rows, open(f"{out}/gpu_check.json", "w"), indent=1)
open(f"{out}/gpu_check.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PYEOF
