"""The sentiment baseline of the Chinese study (experiments/chinese.sh): character n-gram TF-IDF
+ logistic regression (scikit-learn), C chosen on the development part, scored on the test part.

    python3 experiments/chinese_tfidf.py runs/zh/reviews      (prints one JSON object)

Characters 1–3-grams (Chinese has no spaces: word n-grams would need a segmenter), sublinear tf.
"""
import csv
import json
import sys

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], [r["label"] for r in rows]


root = sys.argv[1]
(train_x, train_y), (dev_x, dev_y), (test_x, test_y) = (read(f"{root}/{p}.tsv") for p in ("train", "dev", "test"))
vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
train_m = vectorizer.fit_transform(train_x)
dev_m, test_m = vectorizer.transform(dev_x), vectorizer.transform(test_x)
dev_scores = {}
for c in (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64):
    model = LogisticRegression(C=c, max_iter=2000).fit(train_m, train_y)
    dev_scores[c] = accuracy_score(dev_y, model.predict(dev_m))
best = max(dev_scores, key=dev_scores.get)
model = LogisticRegression(C=best, max_iter=2000).fit(train_m, train_y)
pred = model.predict(test_m)
print(json.dumps({
    "model": "char 1-3-gram TF-IDF + logistic regression",
    "features": len(vectorizer.vocabulary_),
    "C": best,
    "dev_accuracy": dev_scores[best],
    "test_accuracy": accuracy_score(test_y, pred),
    "test_macro_f1": f1_score(test_y, pred, average="macro"),
}))
