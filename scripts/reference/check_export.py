"""Checks that a model positio trains and saves loads in Hugging Face transformers unchanged and
computes the same outputs.

    python3 scripts/reference/check_export.py            # builds positio, trains a small model

Trains a small absolute-position BERT with `positio demo`, then loads the directory as a user
would, with `AutoTokenizer` and `AutoModel` (no missing, unexpected or newly initialised weights:
the pooler is saved) and `BertForMaskedLM`, and compares token ids and the last hidden states
with `positio embed --pooling none`. Exits non-zero on any mismatch.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModel, AutoTokenizer, BertForMaskedLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POSITIO = os.path.join(ROOT, "target", "release", "positio")
TEXTS = ["the cat sees a red ball in the garden .", "a dog", "after dinner , the baker sells three ripe apples at the market ."]

subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
out = tempfile.mkdtemp(prefix="positio-export-")
subprocess.run([POSITIO, "demo", "--position", "absolute", "--steps", "100", "--out", out], check=True, stdout=subprocess.DEVNULL)
lines = subprocess.run([POSITIO, "embed", out, "--pooling", "none"] + sum((["--text", t] for t in TEXTS), []),
                       check=True, capture_output=True, text=True).stdout.splitlines()
ours = [json.loads(line) for line in lines]

config = json.load(open(os.path.join(out, "config.json")))
assert config["model_type"] == "bert", config["model_type"]
tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
auto_tok = AutoTokenizer.from_pretrained(out)
model, base_info = AutoModel.from_pretrained(out, output_loading_info=True)
model.eval()
# Nothing missing or newly initialised (the pooler is saved); the MLM head (`cls.*`) is the only
# thing BertModel has no place for.
extra = [k for k in base_info["unexpected_keys"] if not k.startswith("cls.")]
assert not base_info["missing_keys"] and not extra and not base_info["mismatched_keys"], f"AutoModel loading: {base_info}"
mlm, info = BertForMaskedLM.from_pretrained(out, output_loading_info=True)
# The decoder is tied to the word embeddings (its weight and bias are not stored separately).
# BertForMaskedLM has no pooler (as with Google's BERT checkpoints, which carry one).
unexpected = ([k for k in info["missing_keys"] if "decoder" not in k]
              + [k for k in info["unexpected_keys"] if not k.startswith("bert.pooler.")] + list(info["mismatched_keys"]))
assert not unexpected, f"BertForMaskedLM loading: {info}"

worst = 0.0
for text, o in zip(TEXTS, ours):
    ids = tok.encode(text).ids
    assert ids == o["tokens"], f"token ids differ for {text!r}: {ids} vs {o['tokens']}"
    assert auto_tok(text)["input_ids"] == ids, f"AutoTokenizer ids differ for {text!r}"
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()
    diff = float(np.abs(hidden - np.array(o["hidden"], dtype=np.float32)).max())
    worst = max(worst, diff)
print(f"{out}: transformers loads positio's export; max abs difference of last hidden states {worst:.2e}")
sys.exit(0 if worst < 1e-5 else 1)
