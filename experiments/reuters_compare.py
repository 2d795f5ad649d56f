"""Reuters-21578 topics on the development split of experiments/classify_splits.py: positio's
fine-tuned models against TF-IDF + LinearSVC, scored the same way by scikit-learn.

    python experiments/reuters_compare.py DATA_DIR [RUN_DIR ...]

DATA_DIR holds train.jsonl and dev.jsonl (runs/classify-data/reuters). Each RUN_DIR holds
predictions.jsonl on dev.jsonl, written by `positio eval classify --output`
(experiments/classify_run.sh). For each it prints:
- micro / macro F1 of positio's own decisions (at the thresholds saved with the model), recomputed
  by scikit-learn over all 90 labels (zero_division=0, as positio's report);
- when the model has per-label thresholds, the same at its one global threshold, and an honest
  estimate of what they are worth on unseen
  articles: the development articles are split in two halves (seed 42); thresholds are tuned on
  one half by positio's rule (0.05 … 0.95, the best F1 per label, ties nearest the global
  threshold, labels with fewer than 3 positives keep the global one) and applied to the other,
  both ways, and the pooled decisions are scored. Thresholds tuned on the whole development split
  and scored on it are optimistic; this number is not.
The baseline: one-vs-rest LinearSVC (C = 1) on TF-IDF of word 1–2-grams (sublinear tf,
min_df 2) of title + text, trained on train.jsonl.
"""
import json
import os
import random
import sys

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.svm import LinearSVC

MIN_POSITIVES = 3
GRID = [step / 20 for step in range(1, 20)]


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def scores(gold, predicted):
    micro = f1_score(gold, predicted, average="micro", zero_division=0)
    macro = f1_score(gold, predicted, average="macro", zero_division=0)
    return micro, macro


def tune(probs, gold, global_t):
    """positio's per-label rule (tune_label_thresholds) on one part."""
    out = []
    for c in range(probs.shape[1]):
        positives = int(gold[:, c].sum())
        if positives < MIN_POSITIVES:
            out.append(global_t)
            continue
        best = (global_t, -1.0)
        for t in GRID:
            picked = probs[:, c] >= t
            f1 = 2 * (picked & (gold[:, c] == 1)).sum() / (picked.sum() + positives)
            nearer = abs(t - global_t) < abs(best[0] - global_t)
            if f1 > best[1] + 1e-12 or (abs(f1 - best[1]) <= 1e-12 and nearer):
                best = (t, f1)
        out.append(best[0])
    return np.array(out)


def main():
    data, runs = sys.argv[1], sys.argv[2:]
    train, dev = read(os.path.join(data, "train.jsonl")), read(os.path.join(data, "dev.jsonl"))
    mlb = MultiLabelBinarizer()
    y_train = mlb.fit_transform([d["topics"] for d in train])
    y_dev = mlb.transform([d["topics"] for d in dev])
    labels = list(mlb.classes_)
    print(f"{len(train)} training and {len(dev)} development articles, {len(labels)} labels "
          f"({int((y_dev.sum(0) > 0).sum())} of them in dev)")

    text = lambda d: d["title"] + "\n" + d["text"]
    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    x_train = tfidf.fit_transform(map(text, train))
    svm = OneVsRestClassifier(LinearSVC(C=1.0)).fit(x_train, y_train)
    micro, macro = scores(y_dev, svm.predict(tfidf.transform(map(text, dev))))
    print("| model | dev micro-F1 | dev macro-F1 | global threshold only (micro / macro) "
          "| per-label thresholds cross-fitted (micro / macro) |")
    print("|---|---|---|---|---|")
    print(f"| TF-IDF 1–2-grams + LinearSVC (C = 1) | {micro:.4f} | {macro:.4f} | — | — |")

    for run in runs:
        rows = read(os.path.join(run, "predictions.jsonl"))
        assert len(rows) == len(dev), f"{run}: {len(rows)} predictions for {len(dev)} articles"
        gold = mlb.transform([r["gold"] for r in rows])
        predicted = mlb.transform([r["labels"] for r in rows])
        probs = np.zeros(gold.shape)
        for i, r in enumerate(rows):
            for s in r["scores"]:
                probs[i, labels.index(s["label"])] = s["score"]
        micro, macro = scores(gold, predicted)
        config = json.load(open(os.path.join(run, "config.json")))
        per_label = config.get("decision_thresholds")
        crossed, single = "—", "—"
        if per_label:
            global_t = config["decision_threshold"]
            single = "{:.4f} / {:.4f}".format(*scores(gold, (probs >= global_t).astype(int)))
            order = list(range(len(rows)))
            random.Random(42).shuffle(order)
            halves = [np.array(order[: len(order) // 2]), np.array(order[len(order) // 2:])]
            decided = np.zeros(gold.shape, dtype=int)
            for tune_on, apply_to in [(0, 1), (1, 0)]:
                t = tune(probs[halves[tune_on]], gold[halves[tune_on]], global_t)
                decided[halves[apply_to]] = probs[halves[apply_to]] >= t
            crossed = "{:.4f} / {:.4f}".format(*scores(gold, decided))
        print(f"| positio {run} | {micro:.4f} | {macro:.4f} | {single} | {crossed} |")


if __name__ == "__main__":
    main()
