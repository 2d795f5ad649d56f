"""Fixtures for the sequence-classification tests, written to tests/fixtures/hf_tiny_classify/:

- single/ and multi/: tiny Hugging Face BertForSequenceClassification checkpoints (random
  weights; 3 labels single-label, 4 labels multi-label with problem_type
  multi_label_classification) and reference.safetensors with transformers' token ids, segment
  ids and logits for single texts and sentence pairs;
- report_cases.json: gold / predicted labels and scikit-learn's classification_report,
  accuracy, confusion matrix, subset accuracy and Hamming loss for them.

Run from the repository root after `pip install torch transformers scikit-learn`:

    python3 scripts/reference/hf_tiny_classify.py
"""
import json
import os
import random

import numpy as np
import torch
from safetensors.numpy import save_file
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix, hamming_loss)
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

OUT = "tests/fixtures/hf_tiny_classify"
WORDS = ("[PAD] [UNK] [CLS] [SEP] [MASK] profit rose fell sharply the company shares of in "
         "quarter net sales loss eur million . , a and to said ##s ##ed").split()
TEXTS = ["Profit rose sharply in the quarter .", "The company said net sales fell .", "shares"]
PAIRS = [("Profit rose .", "Net sales fell sharply in the quarter , the company said ."),
         ("Shares of the company fell .", "loss")]


def checkpoint(name, labels, problem_type):
    out = os.path.join(OUT, name)
    os.makedirs(out, exist_ok=True)
    vocab = os.path.join(out, "vocab.txt")
    with open(vocab, "w") as f:
        f.write("\n".join(WORDS) + "\n")
    tok = BertTokenizerFast(vocab_file=vocab, do_lower_case=True)
    torch.manual_seed(len(labels))
    config = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=len(labels),
                        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
                        problem_type=problem_type)
    model = BertForSequenceClassification(config).eval()
    # Non-zero token-type and pooler weights, so that segment ids and the pooler matter.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    os.remove(vocab)
    ref = {}
    with torch.no_grad():
        for i, t in enumerate(TEXTS):
            enc = tok(t, return_tensors="pt")
            ref[f"single.ids.{i}"] = enc["input_ids"][0].numpy()
            ref[f"single.logits.{i}"] = model(**enc).logits[0].numpy()
        for i, (a, b) in enumerate(PAIRS):
            enc = tok(a, b, return_tensors="pt")
            ref[f"pair.ids.{i}"] = enc["input_ids"][0].numpy()
            ref[f"pair.types.{i}"] = enc["token_type_ids"][0].numpy()
            ref[f"pair.logits.{i}"] = model(**enc).logits[0].numpy()
        # A pair truncated to 12 word pieces (longest first, as the tokenizer does by default).
        a, b = PAIRS[0]
        enc = tok(a, b, truncation=True, max_length=12, return_tensors="pt")
        ref["truncated.ids"] = enc["input_ids"][0].numpy()
        ref["truncated.types"] = enc["token_type_ids"][0].numpy()
    save_file(ref, os.path.join(out, "reference.safetensors"),
              metadata={"texts": json.dumps(TEXTS), "pairs": json.dumps(PAIRS)})


def report_cases():
    rng = random.Random(7)
    labels = ["negative", "neutral", "positive", "unused"]
    gold = [rng.choice(labels[:3]) for _ in range(60)]
    pred = [g if rng.random() < 0.6 else rng.choice(labels) for g in gold]
    single = {
        "labels": labels, "gold": gold, "predicted": pred,
        "report": classification_report(gold, pred, labels=labels, output_dict=True, zero_division=0),
        "accuracy": accuracy_score(gold, pred),
        "confusion": confusion_matrix(gold, pred, labels=labels).tolist(),
    }
    topics = ["acq", "crude", "earn", "grain", "trade"]
    g = np.array([[rng.random() < 0.3 for _ in topics] for _ in range(50)], dtype=int)
    p = np.array([[(x if rng.random() < 0.75 else 1 - x) for x in row] for row in g], dtype=int)
    g[0] = 0  # a text without any label, and one predicted without any
    p[1] = 0
    multi = {
        "labels": topics, "gold": g.tolist(), "predicted": p.tolist(),
        "report": classification_report(g, p, target_names=topics, output_dict=True, zero_division=0),
        "subset_accuracy": accuracy_score(g, p),
        "hamming_loss": hamming_loss(g, p),
    }
    with open(os.path.join(OUT, "report_cases.json"), "w") as f:
        json.dump({"single": single, "multi": multi}, f, indent=1)


os.makedirs(OUT, exist_ok=True)
checkpoint("single", ["negative", "neutral", "positive"], "single_label_classification")
checkpoint("multi", ["acq", "crude", "earn", "grain"], "multi_label_classification")
report_cases()
print("wrote", sorted(os.listdir(OUT)))
