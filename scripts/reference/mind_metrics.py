#!/usr/bin/env python3
"""Writes tests/fixtures/mind/metrics_cases.json: impressions (labels, scores) with the values of
MIND's official evaluate.py (its dcg_score, ndcg_score and mrr_score, copied below) and
scikit-learn's roc_auc_score, for tests/recommend.rs. Cases with tied scores carry only the AUC:
the rank measures' order among ties is numpy's argsort's, which depends on its sort kernel.

  python3 scripts/reference/mind_metrics.py tests/fixtures/mind/metrics_cases.json
  (needs numpy and scikit-learn; run once, the JSON is committed)
"""
import json
import sys

import numpy as np
from sklearn.metrics import roc_auc_score


# MIND's evaluate.py (https://github.com/msnews/MIND/blob/master/evaluate.py).
def dcg_score(y_true, y_score, k=10):
    order = np.argsort(y_score)[::-1]
    y_true = np.take(y_true, order[:k])
    gains = 2 ** y_true - 1
    discounts = np.log2(np.arange(len(y_true)) + 2)
    return np.sum(gains / discounts)


def ndcg_score(y_true, y_score, k=10):
    best = dcg_score(y_true, y_true, k)
    actual = dcg_score(y_true, y_score, k)
    return actual / best


def mrr_score(y_true, y_score):
    order = np.argsort(y_score)[::-1]
    y_true = np.take(y_true, order)
    rr_score = y_true / (np.arange(len(y_true)) + 1)
    return np.sum(rr_score) / np.sum(y_true)


def main():
    rng = np.random.default_rng(3)
    cases = []
    for i in range(60):
        n = int(rng.integers(2, 40))
        labels = (rng.random(n) < rng.uniform(0.1, 0.5)).astype(int)
        labels[rng.integers(n)] = 1
        labels[(np.flatnonzero(labels == 1)[0] + 1) % n] = 0
        ties = i % 3 == 0
        scores = np.round(rng.random(n) * (labels * 0.4 + 0.6), 1 if ties else 4)
        if not ties and len(set(scores)) < n:
            continue
        case = {"labels": labels.tolist(), "scores": scores.tolist(),
                "auc": float(roc_auc_score(labels, scores))}
        if not ties:
            case.update(mrr=float(mrr_score(labels, scores)),
                        ndcg5=float(ndcg_score(labels, scores, 5)),
                        ndcg10=float(ndcg_score(labels, scores, 10)))
        cases.append(case)
    with open(sys.argv[1], "w") as f:
        json.dump(cases, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
