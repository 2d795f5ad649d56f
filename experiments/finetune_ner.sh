#!/usr/bin/env bash
# One resumable CoNLL-2003 fine-tuning (eng.train, best epoch on eng.testa) and its evaluation:
#
#   experiments/finetune_ner.sh OUT --model DIR [more `positio finetune ner` flags]
#
# Skips a run whose log says it finished and resumes one that has a checkpoint; writes OUT.log
# and OUT/testa.{txt,json,conll}. P is the positio binary (default target/release/positio).
set -euo pipefail
cd "$(dirname "$0")/.."
P=${P:-target/release/positio}
D=../shared/data/conll2003
out=$1
shift
if ! grep -qs '^done:' "$out.log"; then
  resume=(); [ -f "$out/checkpoints/latest" ] && resume=(--resume)
  "$P" finetune ner --train $D/eng.train --dev $D/eng.testa --out "$out" "${resume[@]}" "$@" > "$out.log" 2>&1
fi
"$P" eval ner --model "$out" --data $D/eng.testa --output "$out/testa.conll" --json "$out/testa.json" > "$out/testa.txt"
