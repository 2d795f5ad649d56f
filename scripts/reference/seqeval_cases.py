"""Random tag sequences (well- and ill-formed: I- after O, type switches, IOBES) scored by
seqeval, kept as tests/fixtures/seqeval_cases.json for the Rust metrics test (CI needs no
Python). Run from the repository root after `pip install seqeval`:

    python3 scripts/reference/seqeval_cases.py
"""
import json
import random

from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

random.seed(0)
TYPES = ["PER", "LOC", "ORG", "MISC"]


def sentence(n, prefixes):
    return [random.choice(["O", "O", "O"] + [f"{p}-{t}" for p in prefixes for t in TYPES]) for _ in range(n)]


cases = []
for k in range(200):
    prefixes = ["B", "I", "E", "S"] if k % 4 == 3 else ["B", "I"]
    lengths = [random.randint(1, 12) for _ in range(random.randint(1, 6))]
    gold = [sentence(n, prefixes) for n in lengths]
    # Predictions: the gold tags with some changed, so that scores are neither 0 nor 1.
    pred = [[t if random.random() < 0.7 else random.choice(["O"] + [f"{p}-{ty}" for p in prefixes for ty in TYPES]) for t in s] for s in gold]
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    cases.append({
        "gold": gold,
        "pred": pred,
        "precision": float(precision_score(gold, pred, zero_division=0)),
        "recall": float(recall_score(gold, pred, zero_division=0)),
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "per_type": {t: [float(report[t]["f1-score"]), int(report[t]["support"])] for t in report if t in TYPES},
    })
json.dump(cases, open("tests/fixtures/seqeval_cases.json", "w"))
print(f"wrote tests/fixtures/seqeval_cases.json: {len(cases)} cases")
