"""Writes the small made-up labelled files of tests/fixtures/classify/ (TSV, CSV with quoting
and sentence pairs, multi-label JSON Lines, PhraseBank-style lines in Latin-1 and in UTF-8).
Run from the repository root: python3 scripts/reference/make_classify_fixture.py
"""
import json
import os
import random

OUT = "tests/fixtures/classify"
os.makedirs(OUT, exist_ok=True)
rng = random.Random(3)
pos = ["profit rose sharply in the quarter .", "net sales rose .", "shares of the company rose sharply .",
       "the company said profit rose in the quarter ."]
neg = ["profit fell sharply .", "net sales fell in the quarter .", "the company said loss of eur million .",
       "shares fell sharply ."]
neu = ["the company said .", "shares of the company .", "net sales in the quarter .", "eur million in the quarter ."]
rows = []
for _ in range(48):
    label, source = rng.choice([("positive", pos), ("negative", neg), ("neutral", neu)])
    rows.append((rng.choice(source), label))
for name, part in [("train.tsv", rows[:36]), ("dev.tsv", rows[36:])]:
    with open(os.path.join(OUT, name), "w") as f:
        f.write("sentence\tlabel\n" + "".join(f"{s}\t{l}\n" for s, l in part))
with open(os.path.join(OUT, "dev_unknown_label.tsv"), "w") as f:
    f.write("sentence\tlabel\nprofit rose .\tpositive\nshares fell .\tbullish\n")
with open(os.path.join(OUT, "pairs.csv"), "w") as f:
    f.write('premise,hypothesis,gold\n"Profit rose, sharply.","Profit fell.",contradiction\n'
            '"Net sales rose ""sharply"".",Sales rose.,entailment\n')
with open(os.path.join(OUT, "topics.jsonl"), "w") as f:
    f.write(json.dumps({"title": "PROFIT", "text": "profit rose", "topics": ["earn"]}) + "\n\n")
    f.write(json.dumps({"title": "OIL", "text": "crude fell", "topics": ["crude", "trade"]}) + "\n")
    f.write(json.dumps({"title": "NONE", "text": "the company said", "topics": []}) + "\n")
with open(os.path.join(OUT, "latin1.txt"), "wb") as f:
    f.write(b"Profit rose .@positive\nSales at K\xf6nig fell .@negative\n")
with open(os.path.join(OUT, "utf8.txt"), "w", encoding="utf-8") as f:
    f.write("Sales at K\u00f6nig fell .@negative\nProfit rose .@positive\n")
