"""Checks positio's entity-level scores against Python's seqeval on the same predictions.

    positio eval ner --model DIR --data eng.testa --output preds.conll --json report.json
    python3 scripts/reference/check_seqeval.py preds.conll report.json [eng.testa]

`preds.conll` has `word gold predicted` lines (blank between sentences). Exits non-zero unless
seqeval's micro precision, recall and F1 (and every per-type F1) equal positio's to 4 decimals.
Given the original CoNLL-2003 file (IOB1 tags in the last column), it also counts every IOB2 tag
and entity there with its own conversion and checks the supports of both of positio's reports.
"""
import collections
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


def iob1_to_iob2(tags):
    """An I- tag that starts an entity (after O or another type) becomes B-; B- stays B-."""
    out, prev = [], "O"
    for tag in tags:
        out.append("B-" + tag[2:] if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]) else tag)
        prev = tag
    return out


if len(sys.argv) > 3:
    sentences, current = [], []
    for line in open(sys.argv[3], encoding="utf-8"):
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if current:
                sentences.append(iob1_to_iob2(current))
                current = []
            continue
        current.append(parts[-1])
    if current:
        sentences.append(iob1_to_iob2(current))
    tags = collections.Counter(t for s in sentences for t in s)
    entities = collections.Counter(t[2:] for s in sentences for t in s if t.startswith("B-"))
    token_rows = dict((name, row["support"]) for name, row in json.load(open(report_path))["token"]["rows"])
    entity_rows = dict((name, row["support"]) for name, row in ours["rows"])
    same = sentences == gold and token_rows == dict(tags) and entity_rows == dict(entities)
    ok &= same
    print(f"independent count of {sys.argv[3]}: tags {dict(sorted(tags.items()))}")
    print(f"  entities {dict(sorted(entities.items()))}: {'ok' if same else 'DIFFERENT'}")
sys.exit(0 if ok else 1)
