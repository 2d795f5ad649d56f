#!/usr/bin/env bash
# positio's recurrent encoders against PyTorch's nn.LSTM / nn.GRU (oneDNN / MKL kernels) side by
# side on this machine: the same token tagger (embeddings, LayerNorm, the recurrent stack, a
# 9-label linear layer; cross-entropy and AdamW for the training step) at Study A's sizes
# (BiLSTM 4 layers, BiGRU 5 layers, hidden 256 = 128 per direction, vocabulary 30,522) and
# lengths, TOKENS tokens per batch. Prints the CPU, every median (ms) and the ratio
# torch / positio (> 1: positio is faster).
#
#   PYTHON=/path/to/venv/bin/python bench/recurrent_compare.sh      (needs torch)
#   STEPS=10 LENGTHS="32 128 512" bench/recurrent_compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STEPS=${STEPS:-5}
TOKENS=${TOKENS:-8192}
LENGTHS=${LENGTHS:-"32 64 128 256 512 1024 2048"}
cargo build --release --quiet
P=./target/release/positio
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; torch $("$PY" -c 'import torch; print(torch.__version__, "threads", torch.get_num_threads())')"
echo
echo "| encoder | length × batch | task | positio ms | PyTorch ms | PyTorch / positio |"
echo "|---|---|---|---:|---:|---:|"
for arch in bilstm bigru; do
  layers=4; [ "$arch" = bigru ] && layers=5
  for len in $LENGTHS; do
    batch=$((TOKENS / len))
    for task in tag-forward tag-train; do
      shape=(--arch "$arch" --layers "$layers" --hidden 256 --vocab 30522 --batch "$batch" --len "$len" --steps "$STEPS" --warmup 2)
      ours=$($P bench --task "$task" "${shape[@]}" | awk '/^RESULT/ {print $3}')
      theirs=$("$PY" bench/torch_recurrent.py --task "$task" "${shape[@]}" | awk '/^RESULT/ {print $3}')
      echo "| $arch | $len × $batch | $task | $ours | $theirs | $(python3 -c "print(f'{$theirs / $ours:.2f}×')") |"
    done
  done
done
