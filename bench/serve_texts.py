"""Request bodies for bench/serve_load.sh: a realistic mix of lengths, three CoNLL-2003
sentences (eng.testa) for every Reuters paragraph (ModApte train), in a fixed order.

    python3 bench/serve_texts.py CONLL REUTERS OUTDIR [--count 4000]

Writes OUTDIR/texts.txt (one text a line), OUTDIR/tei.jsonl ({"inputs": text}),
OUTDIR/openai.jsonl ({"input": [text], "model": ...} for infinity-emb, model name from
--openai-model) and OUTDIR/ner.jsonl (CoNLL sentences only, {"inputs": text}).
"""
import argparse
import json
import os

import conll_text

parser = argparse.ArgumentParser()
parser.add_argument("conll")
parser.add_argument("reuters")
parser.add_argument("out")
parser.add_argument("--count", type=int, default=4000)
parser.add_argument("--openai-model", default="model")
args = parser.parse_args()

sentences = conll_text.sentences(args.conll)
paragraphs = []
for line in open(args.reuters, encoding="utf-8"):
    text = json.loads(line)["text"]
    for p in text.split("\n    "):
        p = " ".join(p.split())
        if len(p.split()) >= 20:
            paragraphs.append(p)

texts, s, p = [], 0, 0
while len(texts) < args.count:
    if len(texts) % 4 == 3:
        texts.append(paragraphs[p % len(paragraphs)])
        p += 1
    else:
        texts.append(sentences[s % len(sentences)])
        s += 1
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "texts.txt"), "w") as f:
    f.writelines(t + "\n" for t in texts)
with open(os.path.join(args.out, "tei.jsonl"), "w") as f:
    f.writelines(json.dumps({"inputs": t}) + "\n" for t in texts)
with open(os.path.join(args.out, "openai.jsonl"), "w") as f:
    f.writelines(json.dumps({"input": [t], "model": args.openai_model}) + "\n" for t in texts)
with open(os.path.join(args.out, "ner.jsonl"), "w") as f:
    f.writelines(json.dumps({"inputs": t}) + "\n" for t in sentences[: args.count])
words = [len(t.split()) for t in texts]
print(f"{len(texts)} texts, {sum(words) / len(words):.1f} words on average, longest {max(words)}")
