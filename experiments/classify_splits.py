"""Writes the fixed splits the sequence-classification experiments and benchmarks use, under
runs/classify-data/ (or the directory given), from ../shared/data:

- phrasebank-50/ and phrasebank-all/: Financial PhraseBank Sentences_50Agree.txt (Latin-1, kept
  in Latin-1: positio reads it with --encoding latin-1) and Sentences_AllAgree.txt (UTF-8),
  stratified 80 / 10 / 10 train / dev / test by label, seed 42, `sentence@label` lines;
- sst2/: SST-2 train.tsv split 95 / 5 (seed 42) into train.tsv / dev.tsv, same header;
- reuters/: Reuters-21578 ModApte training articles restricted to the standard 90 categories
  (those with at least one ModApte training and one test document; Yang & Liu 1999), articles
  with none of them dropped as is customary, 90 / 10 train / dev (seed 42), JSON Lines with the
  `topics` list filtered to the 90; and the ModApte test articles as test.jsonl, the same way,
  when DATA/reuters21578/test.jsonl exists (it is held out here).

    python3 experiments/classify_splits.py [OUT_DIR]
"""
import json
import os
import random
import sys

DATA = os.environ.get("DATA", "../shared/data")
OUT = sys.argv[1] if len(sys.argv) > 1 else "runs/classify-data"

# The 90 ModApte categories with at least one training and one test document.
REUTERS_90 = """acq alum barley bop carcass castor-oil cocoa coconut coconut-oil coffee copper copra-cake corn
cotton cotton-oil cpi cpu crude dfl dlr dmk earn fuel gas gnp gold grain groundnut groundnut-oil heat hog
housing income instal-debt interest ipi iron-steel jet jobs l-cattle lead lei lin-oil livestock lumber
meal-feed money-fx money-supply naphtha nat-gas nickel nkr nzdlr oat oilseed orange palladium palm-oil
palmkernel pet-chem platinum potato propane rand rape-oil rapeseed reserves retail rice rubber rye ship
silver sorghum soy-meal soy-oil soybean strategic-metal sugar sun-meal sun-oil sunseed tea tin trade
veg-oil wheat wpi yen zinc""".split()
assert len(REUTERS_90) == 90, len(REUTERS_90)


def phrasebank(name, encoding, out):
    path = os.path.join(DATA, "financial_phrasebank", name)
    lines = [l for l in open(path, encoding=encoding).read().splitlines() if l.strip()]
    by_label = {}
    for line in lines:
        by_label.setdefault(line.rsplit("@", 1)[1].strip(), []).append(line)
    rng = random.Random(42)
    parts = {"train": [], "dev": [], "test": []}
    for label in sorted(by_label):
        items = by_label[label]
        rng.shuffle(items)
        n = len(items)
        a, b = round(0.8 * n), round(0.9 * n)
        parts["train"] += items[:a]
        parts["dev"] += items[a:b]
        parts["test"] += items[b:]
    os.makedirs(out, exist_ok=True)
    for part, items in parts.items():
        rng.shuffle(items)
        with open(os.path.join(out, f"{part}.txt"), "w", encoding=encoding) as f:
            f.write("\n".join(items) + "\n")
    return {k: len(v) for k, v in parts.items()}


def sst2(out):
    lines = open(os.path.join(DATA, "sst2", "train.tsv"), encoding="utf-8").read().splitlines()
    header, rows = lines[0], [l for l in lines[1:] if l.strip()]
    rng = random.Random(42)
    rng.shuffle(rows)
    cut = round(0.95 * len(rows))
    os.makedirs(out, exist_ok=True)
    for part, items in [("train", rows[:cut]), ("dev", rows[cut:])]:
        with open(os.path.join(out, f"{part}.tsv"), "w", encoding="utf-8") as f:
            f.write("\n".join([header] + items) + "\n")
    return {"train": cut, "dev": len(rows) - cut}


def reuters(out):
    keep = set(REUTERS_90)
    docs = []
    for line in open(os.path.join(DATA, "reuters21578", "train.jsonl"), encoding="utf-8"):
        d = json.loads(line)
        topics = sorted(t for t in d["topics"] if t in keep)
        if topics and (d["title"] or d["text"]).strip():
            docs.append({"id": d["id"], "title": d["title"], "text": d["text"], "topics": topics})
    rng = random.Random(42)
    rng.shuffle(docs)
    cut = round(0.9 * len(docs))
    train, dev = docs[:cut], docs[cut:]
    # A category seen only in the development part (a category with one training article) moves
    # that article to the training part: the classifier cannot learn a label it never sees.
    seen = {t for d in train for t in d["topics"]}
    moved = [d for d in dev if not set(d["topics"]) <= seen]
    train += moved
    dev = [d for d in dev if d not in moved]
    parts = [("train", train), ("dev", dev)]
    # The held-out ModApte test articles, when present (not laid in ../shared/data): the same
    # layout, topics filtered to the 90, articles without any of them dropped as customary, and
    # articles with neither title nor body kept (the model predicts them from [CLS] [SEP]).
    held_out = os.path.join(DATA, "reuters21578", "test.jsonl")
    if os.path.exists(held_out):
        test = []
        for line in open(held_out, encoding="utf-8"):
            d = json.loads(line)
            topics = sorted(t for t in d["topics"] if t in keep)
            if topics:
                test.append({"id": d["id"], "title": d["title"], "text": d["text"], "topics": topics})
        parts.append(("test", test))
    os.makedirs(out, exist_ok=True)
    for part, items in parts:
        with open(os.path.join(out, f"{part}.jsonl"), "w", encoding="utf-8") as f:
            for d in items:
                f.write(json.dumps(d) + "\n")
    sizes = {part: len(items) for part, items in parts}
    return {**sizes, "moved to train": len(moved)}


if __name__ == "__main__":
    print("phrasebank-50", phrasebank("Sentences_50Agree.txt", "latin-1", os.path.join(OUT, "phrasebank-50")))
    print("phrasebank-all", phrasebank("Sentences_AllAgree.txt", "utf-8", os.path.join(OUT, "phrasebank-all")))
    print("sst2", sst2(os.path.join(OUT, "sst2")))
    print("reuters", reuters(os.path.join(OUT, "reuters")))
