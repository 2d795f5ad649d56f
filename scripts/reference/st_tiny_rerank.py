"""A tiny cross-encoder written by `positio finetune rerank` (from tests/fixtures/st_tiny, on the
pairs of the small BEIR fixture) and the scores sentence-transformers' CrossEncoder gives with it,
for the Rust test that the two agree (no PyTorch in CI: the scores are committed). Run from the
repository root after `pip install torch sentence-transformers` and `cargo build --release`:

    python3 scripts/reference/st_tiny_rerank.py
"""
import json
import os
import shutil
import subprocess
import tempfile

from sentence_transformers import CrossEncoder

BEIR = "tests/fixtures/retrieval/beir"
OUT = "tests/fixtures/rerank_tiny"
docs = {}
for line in open(f"{BEIR}/corpus.jsonl"):
    d = json.loads(line)
    docs[d["_id"]] = (d["title"] + " " + d["text"]).strip()
queries = {json.loads(l)["_id"]: json.loads(l)["text"] for l in open(f"{BEIR}/queries.jsonl")}
pairs = [(queries[q], docs[d]) for q, d, _ in (l.split() for l in list(open(f"{BEIR}/qrels/test.tsv"))[1:])]

with tempfile.TemporaryDirectory() as tmp:
    train = os.path.join(tmp, "pairs.jsonl")
    with open(train, "w") as f:
        f.writelines(json.dumps({"anchor": q, "positive": p}) + "\n" for q, p in pairs)
    run = os.path.join(tmp, "run")
    subprocess.run(["target/release/positio", "finetune", "rerank", "--model", "tests/fixtures/st_tiny", "--train", train,
                    "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--max-len", "64", "--out", run], check=True)
    shutil.rmtree(OUT, ignore_errors=True)
    shutil.copytree(run, OUT, ignore=shutil.ignore_patterns("checkpoints", "metrics.jsonl", "run.toml"))

query = queries["q1"]
passages = list(docs.values())
model = CrossEncoder(OUT, device="cpu")
scores = model.predict([(query, p) for p in passages]).tolist()
with open(os.path.join(OUT, "reference.json"), "w") as f:
    json.dump({"query": query, "passages": passages, "scores": scores}, f, indent=1)
print(model, len(scores))
