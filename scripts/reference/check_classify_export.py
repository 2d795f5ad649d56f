"""Checks that a sequence classifier positio fine-tuned loads in Hugging Face transformers as a
user would load it, with `AutoTokenizer` and `AutoModelForSequenceClassification` (no missing,
unexpected or newly initialised weights), and scores texts and sentence pairs as
`positio predict classify` does. Exits non-zero on any mismatch.

    python3 scripts/reference/check_classify_export.py RUN_DIR [--pairs]

Needs `pip install torch transformers` and a release build (target/release/positio).
"""
import argparse
import json
import os
import subprocess
import sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POSITIO = os.path.join(ROOT, "target", "release", "positio")
TEXTS = ["Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007 .",
         "The company 's net sales fell sharply , and it warned of further losses .",
         "Shares", "Finnish Talentum reports its operating profit increased to EUR 20.5 mn in 2005 from EUR 9.3 mn in 2004 , and net sales totaled EUR 103.3 mn , up from EUR 96.4 mn ." * 8]
PAIRS = ["Profit rose .", "It was a bad year .", "Sales", "The outlook is unchanged ."]

p = argparse.ArgumentParser()
p.add_argument("run_dir")
p.add_argument("--pairs", action="store_true", help="also score (text, pair) inputs")
args = p.parse_args()

cmd = [POSITIO, "predict", "classify", "--model", args.run_dir] + sum((["--text", t] for t in TEXTS), [])
ours = [json.loads(l) for l in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()]
if args.pairs:
    cmd += sum((["--text-pair", t] for t in PAIRS), [])
    ours += [json.loads(l) for l in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()]

config = json.load(open(os.path.join(args.run_dir, "config.json")))
tok = AutoTokenizer.from_pretrained(args.run_dir)
model, info = AutoModelForSequenceClassification.from_pretrained(args.run_dir, output_loading_info=True)
model.eval()
bad = {k: v for k, v in info.items() if v}
if bad:
    sys.exit(f"loading info not clean: {bad}")
max_len = config.get("window_length", 512)
worst = 0.0
inputs = [(t, None) for t in TEXTS] + ([(t, p) for t, p in zip(TEXTS, PAIRS)] if args.pairs else [])
with torch.no_grad():
    for (text, pair), mine in zip(inputs, ours):
        enc = tok(text, pair, truncation=True, max_length=max_len, return_tensors="pt")
        logits = model(**enc).logits[0]
        probs = torch.sigmoid(logits) if config.get("problem_type") == "multi_label_classification" else torch.softmax(logits, -1)
        theirs = {model.config.id2label[i]: float(p) for i, p in enumerate(probs)}
        for s in mine["scores"]:
            worst = max(worst, abs(s["score"] - theirs[s["label"]]))
        top = max(theirs, key=theirs.get)
        if "label" in mine and mine["label"] != top:
            sys.exit(f"{text!r}: positio says {mine['label']}, transformers {top}")
print(f"{len(inputs)} inputs, labels {list(model.config.id2label.values())}: largest score difference {worst:.2e}")
if worst > 1e-4:
    sys.exit("FAIL: scores differ by more than 1e-4")
print("OK")
