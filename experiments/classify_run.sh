#!/usr/bin/env bash
# One classification run, skipped when its model is already there:
#   experiments/classify_run.sh RUN_DIR EVAL_FILE -- finetune flags...
# Fine-tunes with `positio finetune classify --out RUN_DIR flags...`, then evaluates the kept
# model on EVAL_FILE (the held-out part) into RUN_DIR/eval.json, RUN_DIR/eval.txt and each text's
# scores into RUN_DIR/predictions.jsonl, passing on
# the reading flags (--encoding, --format, columns).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$1 EVAL=$2
shift 3
READ=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --encoding | --format | --text-column | --field | --text-pair-column | --label-column) READ+=("${args[i]}" "${args[i + 1]}") ;;
  esac
done
P=./target/release/positio
if [[ ! -f $RUN/model.safetensors ]]; then
  if [[ -f $RUN/run.toml ]]; then $P finetune classify --out "$RUN" --resume "$@" > "$RUN/train.log"
  else mkdir -p "$(dirname "$RUN")"; $P finetune classify --out "$RUN" "$@" > "$RUN.log" && mv "$RUN.log" "$RUN/train.log"; fi
fi
$P eval classify --model "$RUN" --data "$EVAL" --json "$RUN/eval.json" --output "$RUN/predictions.jsonl" \
  "${READ[@]}" > "$RUN/eval.txt"
echo "$RUN: $(grep -E '^ +accuracy|micro avg' "$RUN/eval.txt" | head -1)"
