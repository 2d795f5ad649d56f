"""A tiny Hugging Face BertForTokenClassification checkpoint (random weights, CoNLL labels) and
its logits on two sentences, written to tests/fixtures/hf_tiny_ner/ for the Rust test that
positio loads Hugging Face token-classification models and computes the same scores. Run from
the repository root after `pip install torch transformers`:

    python3 scripts/reference/hf_tiny_ner.py
"""
import json
import os

import torch
from safetensors.numpy import save_file
from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

OUT = "tests/fixtures/hf_tiny_ner"
os.makedirs(OUT, exist_ok=True)
labels = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
words = "[PAD] [UNK] [CLS] [SEP] [MASK] eu rejects german call to boycott british lamb . peter black ##burn , the".split()
with open(os.path.join(OUT, "vocab.txt"), "w") as f:
    f.write("\n".join(words) + "\n")
tok = BertTokenizerFast(vocab_file=os.path.join(OUT, "vocab.txt"), do_lower_case=True)
torch.manual_seed(0)
config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                    max_position_embeddings=64, num_labels=len(labels), id2label=dict(enumerate(labels)),
                    label2id={l: i for i, l in enumerate(labels)})
model = BertForTokenClassification(config).eval()
model.save_pretrained(OUT, safe_serialization=True)
tok.save_pretrained(OUT)
os.remove(os.path.join(OUT, "vocab.txt"))
sentences = [["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."], ["Peter", "Blackburn", ",", "the", "zzz"]]
out = {}
with torch.no_grad():
    for i, s in enumerate(sentences):
        enc = tok(s, is_split_into_words=True, return_tensors="pt")
        out[f"ids.{i}"] = enc["input_ids"][0].numpy()
        out[f"logits.{i}"] = model(**enc).logits[0].numpy()
save_file(out, os.path.join(OUT, "reference.safetensors"), metadata={"sentences": json.dumps(sentences)})
print("wrote", sorted(os.listdir(OUT)))
