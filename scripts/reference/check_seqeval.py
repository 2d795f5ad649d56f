"""Checks positio's entity-level scores against Python's seqeval on the same predictions.

    positio eval ner --model DIR --data eng.testa --output preds.conll --json report.json
    python3 scripts/reference/check_seqeval.py preds.conll report.json

`preds.conll` has `word gold predicted` lines (blank between sentences). Exits non-zero unless
seqeval's micro precision, recall and F1 (and every per-type F1) equal positio's to 4 decimals.
"""
import json
import sys

from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

preds_path, report_path = sys.argv[1], sys.argv[2]
gold, pred = [[]], [[]]
for line in open(preds_path, encoding="utf-8"):
    parts = line.split()
    if not parts:
        if gold[-1]:
            gold.append([])
            pred.append([])
        continue
    gold[-1].append(parts[1])
    pred[-1].append(parts[2])
if not gold[-1]:
    gold.pop()
    pred.pop()

ours = json.load(open(report_path))["entity"]
theirs = {"precision": precision_score(gold, pred), "recall": recall_score(gold, pred), "f1": f1_score(gold, pred)}
per_type = classification_report(gold, pred, output_dict=True)
ok = True
for key, value in theirs.items():
    mine = ours["micro"][key]
    match = round(mine, 4) == round(value, 4)
    ok &= match
    print(f"micro {key:9}: seqeval {value:.4f}  positio {mine:.4f}  {'ok' if match else 'DIFFERENT'}")
for name, scores in ours["rows"]:
    value = per_type[name]["f1-score"]
    match = round(scores["f1"], 4) == round(value, 4) and scores["support"] == per_type[name]["support"]
    ok &= match
    print(f"{name:6} f1       : seqeval {value:.4f}  positio {scores['f1']:.4f}  {'ok' if match else 'DIFFERENT'}")
print(f"{sum(map(len, gold))} tokens in {len(gold)} sentences")
sys.exit(0 if ok else 1)
