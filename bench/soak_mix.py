"""The request mix of bench/serve_soak.sh: every route of `positio serve`, with a share of
requests made to be refused (malformed JSON, wrong schema, unknown fields, too many inputs,
oversized bodies, unknown routes, wrong methods).

    python3 bench/soak_mix.py CONLL OUT.jsonl [--bad 0.05] [--payload-limit 1000000] [--count 2000]

CONLL: a CoNLL file whose sentences are the texts (tests/fixtures/conll/dev.iob1 will do; the
soak script uses CoNLL-2003 when ../shared has it). Lines follow `positio load --mix`:
{"method", "path", "body" | "raw", "valid"}. The order is shuffled with a fixed seed, so the bad
requests are spread over the run.
"""
import argparse
import json
import random

import conll_text

parser = argparse.ArgumentParser()
parser.add_argument("conll")
parser.add_argument("out")
parser.add_argument("--bad", type=float, default=0.05)
parser.add_argument("--payload-limit", type=int, default=1_000_000)
parser.add_argument("--max-client-batch-size", type=int, default=32)
parser.add_argument("--count", type=int, default=2000)
args = parser.parse_args()

sentences = conll_text.sentences(args.conll)
rng = random.Random(7)


def texts(n):
    return [rng.choice(sentences) for _ in range(n)]


def batch():
    return rng.choice([1, 1, 2, 4, 8, 16])


news = [f"D{i}" for i in range(1, 21)]
good = [
    lambda: ("POST", "/embed", {"inputs": texts(batch())}),
    lambda: ("POST", "/embed", {"inputs": texts(1)[0], "normalize": False}),
    lambda: ("POST", "/v1/embeddings", {"input": texts(batch()), "model": "minilm"}),
    lambda: ("POST", "/predict", {"inputs": texts(batch()), "model": "single"}),
    lambda: ("POST", "/ner", {"inputs": texts(batch())}),
    lambda: ("POST", "/tokenize", {"inputs": texts(batch()), "model": "minilm"}),
    lambda: ("POST", "/rerank", {"query": texts(1)[0], "texts": texts(batch())}),
    lambda: ("POST", "/search", {"query": texts(1)[0], "top_k": 5}),
    lambda: ("POST", "/answer", {"inputs": texts(batch())}),
    lambda: ("POST", "/recommend", {"history": rng.sample(news, 3), "top": 5}),
    lambda: ("GET", "/v1/models", None),
    lambda: ("GET", "/health", None),
    lambda: ("GET", "/info", None),
    lambda: ("GET", "/metrics", None),
]
oversized = " " * (args.payload_limit + 1)
bad = [
    lambda: ("POST", "/embed", '{"inputs": ', "raw"),
    lambda: ("POST", "/embed", r'{"inputs": "\ud800"}', "raw"),  # a lone surrogate escape
    lambda: ("POST", "/embed", {"inputs": 5}, "body"),
    lambda: ("POST", "/embed", {"inputs": "x", "normalise": True}, "body"),
    lambda: ("POST", "/embed", {"inputs": []}, "body"),
    lambda: ("POST", "/embed", {"inputs": texts(args.max_client_batch_size + 1)}, "body"),
    lambda: ("POST", "/embed", oversized, "raw"),
    lambda: ("POST", "/ner", {"inputs": "x", "model": "nope"}, "body"),
    lambda: ("POST", "/search", {"query": "x", "mode": "fuzzy"}, "body"),
    lambda: ("POST", "/recommend", {"history": ["Q1"]}, "body"),
    lambda: ("POST", "/nothing", {}, "body"),
    lambda: ("GET", "/embed", None, "body"),
]
lines = []
n_bad = round(args.count * args.bad)
for i in range(args.count - n_bad):
    method, path, body = good[i % len(good)]()
    line = {"method": method, "path": path}
    if body is not None:
        line["body"] = body
    lines.append(line)
for i in range(n_bad):
    method, path, body, kind = bad[i % len(bad)]()
    line = {"method": method, "path": path, "valid": False}
    if body is not None:
        line[kind] = body
    lines.append(line)
rng.shuffle(lines)
with open(args.out, "w", encoding="utf-8") as f:
    for line in lines:
        f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
print(f"{len(lines)} requests ({n_bad} to be refused) -> {args.out}")
