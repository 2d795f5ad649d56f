"""Summarises experiments/chinese.sh's runs as the Markdown tables of docs/RESULTS.md: NER on the
People's Daily test part (entity micro P / R / F1 and F1 per type, from each run's
`eval ner --json`), sentiment on the reviews' test part (accuracy and macro F1, from
`eval classify --json` and the TF-IDF baseline's JSON), each with its training time.

    python3 experiments/chinese_table.py [runs/zh]
"""
import json
import os
import sys

runs = sys.argv[1] if len(sys.argv) > 1 else "runs/zh"


def load(*path):
    p = os.path.join(runs, *path)
    return json.load(open(p)) if os.path.exists(p) else None


def minutes(run):
    p = os.path.join(runs, run, "metrics.jsonl")
    if not os.path.exists(p):
        return "–"
    rows = [json.loads(line) for line in open(p)]
    return f"{max(r.get('elapsed_s', 0) for r in rows) / 60:.1f} min"


print("| NER model (People's Daily test) | precision | recall | entity micro F1 | PER | LOC | ORG | best dev F1 | training |")
print("|---|---|---|---|---|---|---|---|---|")
for run, name in [("ner-bilstm-crf", "BiLSTM-CRF from scratch"),
                  ("ner-transformer-crf", "Transformer-CRF from scratch"),
                  ("ner-pretrained", "pretrained Transformer, linear head"),
                  ("ner-pretrained-crf", "pretrained Transformer + CRF")]:
    report = load(run, "test.json")
    if not report:
        continue
    micro = report["entity"]["micro"]
    per = dict(report["entity"]["rows"])
    rows = [json.loads(line) for line in open(os.path.join(runs, run, "metrics.jsonl"))]
    dev = max(r["entity_f1"] for r in rows if r["split"] == "val")
    print(f"| {name} | {micro['precision']:.4f} | {micro['recall']:.4f} | **{micro['f1']:.4f}** | "
          + " | ".join(f"{per[t]['f1']:.4f}" for t in ("PER", "LOC", "ORG"))
          + f" | {dev:.4f} | {minutes(run)} |")

print()
print("| sentiment model (reviews test, 1,737 texts) | accuracy | macro F1 | training |")
print("|---|---|---|---|")
tfidf = load("sentiment-tfidf.json")
if tfidf:
    print(f"| {tfidf['model']} (C = {tfidf['C']} chosen on dev) | {tfidf['test_accuracy']:.4f} | "
          f"{tfidf['test_macro_f1']:.4f} | – |")
for run, name in [("sentiment-bilstm", "BiLSTM from scratch"),
                  ("sentiment-transformer", "Transformer from scratch"),
                  ("sentiment-pretrained", "pretrained Transformer")]:
    report = load(run, "test.json")
    if not report:
        continue
    r = report["report"]
    macro = next(a["f1"] for a in r["averages"] if a["name"] == "macro avg")
    print(f"| {name} | **{r['accuracy']:.4f}** | {macro:.4f} | {minutes(run)} |")
