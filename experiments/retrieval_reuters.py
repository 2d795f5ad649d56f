"""Reuters-21578 as an answer-matching benchmark: the headline is the question, the article body
its answer (there is no FAQ set offline). From the ModApte training articles
(../shared/data/reuters21578/train.jsonl), seeded:

    python3 experiments/retrieval_reuters.py OUT [--train 3000] [--dev 500] [--distractors 1500]

writes OUT/pairs.jsonl ({"anchor": headline, "positive": body} for the training articles) and
OUT/dev/ in the BEIR layout: the development headlines as queries, each judged relevant (1) to its
own body in qrels/dev.tsv, over a corpus of the development bodies plus other articles that are in
neither split (distractors). Articles without a headline or with a body under 200 characters,
and repeated headlines or bodies, are left out.
"""
import argparse
import json
import os
import random

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--source", default="../shared/data/reuters21578/train.jsonl")
ap.add_argument("--train", type=int, default=3000)
ap.add_argument("--dev", type=int, default=500)
ap.add_argument("--distractors", type=int, default=1500)
ap.add_argument("--seed", type=int, default=13)
a = ap.parse_args()

seen_titles, seen_texts, articles = set(), set(), []
for line in open(a.source, encoding="utf-8"):
    r = json.loads(line)
    title, text = " ".join(r["title"].split()), " ".join(r["text"].split())
    if not title or len(text) < 200 or title in seen_titles or text in seen_texts:
        continue
    seen_titles.add(title)
    seen_texts.add(text)
    articles.append((str(r["id"]), title, text))
random.Random(a.seed).shuffle(articles)
need = a.train + a.dev + a.distractors
assert len(articles) >= need, f"{len(articles)} usable articles, {need} needed"
train = articles[: a.train]
dev = articles[a.train : a.train + a.dev]
distractors = articles[a.train + a.dev : need]

os.makedirs(os.path.join(a.out, "dev", "qrels"), exist_ok=True)
with open(os.path.join(a.out, "pairs.jsonl"), "w", encoding="utf-8") as f:
    for _, title, text in train:
        f.write(json.dumps({"anchor": title, "positive": text}) + "\n")
with open(os.path.join(a.out, "dev", "corpus.jsonl"), "w", encoding="utf-8") as f:
    for i, _, text in dev + distractors:
        f.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
with open(os.path.join(a.out, "dev", "queries.jsonl"), "w", encoding="utf-8") as f:
    for i, title, _ in dev:
        f.write(json.dumps({"_id": f"q{i}", "text": title}) + "\n")
with open(os.path.join(a.out, "dev", "qrels", "dev.tsv"), "w", encoding="utf-8") as f:
    f.write("query-id\tcorpus-id\tscore\n")
    for i, _, _ in dev:
        f.write(f"q{i}\td{i}\t1\n")
print(f"{len(train)} training pairs, {len(dev)} development queries, {len(dev) + len(distractors)} documents in {a.out}")
