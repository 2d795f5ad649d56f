#!/usr/bin/env bash
# Study B: positions beyond the training length. Trains one small causal LM per positional
# encoding on the Reuters-21578 ModApte training text at length 128 (same tokenizer, data order,
# budget and seed), then measures token-level perplexity on held-out Reuters text (unused.jsonl,
# articles outside the ModApte split) at lengths 128 … 2048, and RoPE with linear position
# interpolation and NTK-aware scaling at factors 2, 4, 8. One `positio eval lm` process per cell,
# so that each cell's peak memory is its own. Resumable: rerun it after an interruption.
#
#   experiments/length_study.sh [RUNS_DIR]           (default runs/length)
#   PHASE=train experiments/length_study.sh          (only the trainings; PHASE=eval only the cells,
#                                                    ENCODINGS="rope alibi" only those runs' cells)
#   STEPS=300 TOKENS=65536 experiments/length_study.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/length}
STEPS=${STEPS:-300}
TOKENS=${TOKENS:-65536}
PHASE=${PHASE:-all}
LENGTHS=${LENGTHS:-"128 256 512 1024 2048"}
ENCODINGS=${ENCODINGS:-"absolute sinusoidal rope alibi t5_bias none"}
DATA=../shared/data/reuters21578
mkdir -p "$RUNS"
if [ "$PHASE" != eval ] || [ ! -x "$RUNS/positio" ]; then
  cargo build --release --quiet
  # A copy, so that rebuilding the project during the runs does not change them.
  cp target/release/positio "$RUNS/positio"
fi
P=$RUNS/positio
TRAIN=(--corpus "$DATA/train.jsonl" --format jsonl --field title --field text)
HELD_OUT=(--data "$DATA/unused.jsonl" --format jsonl --field title --field text)

if [ "$PHASE" != eval ]; then
  [ -f "$RUNS/tokenizer.json" ] || $P tokenizer train "${TRAIN[@]}" --vocab-size 16000 --out "$RUNS/tokenizer.json"
  for pos in absolute sinusoidal rope alibi t5_bias none; do
    out="$RUNS/$pos"
    [ -f "$out/model.safetensors" ] && continue
    resume=(); [ -f "$out/checkpoints/latest" ] && resume=(--resume)
    $P pretrain "${TRAIN[@]}" --tokenizer "$RUNS/tokenizer.json" --out "$out" "${resume[@]}" \
      --objective clm --position "$pos" --norm pre --layers 4 --hidden 256 --heads 4 --ffn 1024 \
      --max-len 128 --batch-size 32 --lr 1e-3 --warmup 0.06 --steps "$STEPS" --eval-every 150 \
      --save-every 150 --seed 42 > "$out.log" 2>&1 || { echo "$pos failed: see $out.log"; exit 1; }
  done
fi

if [ "$PHASE" != train ]; then
  cells=$RUNS/cells.jsonl
  touch "$cells"
  cell() { # NAME MODEL LEN [scaling args]; skipped when $cells has it already
    local name=$1 model=$2 len=$3
    shift 3
    grep -q "\"len\": $len,.*\"run\": \"$name\"}" "$cells" && return 0
    $P eval lm --model "$model" "${HELD_OUT[@]}" --len "$len" --tokens "$TOKENS" "$@" |
      python3 -c "import json,sys; r=json.load(sys.stdin); r['run']='$name'; print(json.dumps(r))" | tee -a "$cells"
  }
  for pos in $ENCODINGS; do
    for len in $LENGTHS; do cell "$pos" "$RUNS/$pos" "$len"; done
  done
  for kind in linear ntk; do
    for f in 2 4 8; do
      for len in $LENGTHS; do cell "rope-$kind-$f" "$RUNS/rope" "$len" --rope-scaling "$kind" --factor "$f"; done
    done
  done
  "$(experiments/plot_venv.sh)" experiments/length_table.py "$cells" "$RUNS/length.png"
fi
