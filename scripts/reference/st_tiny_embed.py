"""A tiny sentence-transformers model written by `positio finetune embed`, and the embeddings
sentence-transformers computes with it, for the Rust test that the directory positio writes is
one SentenceTransformer loads and embeds with exactly as positio does (no PyTorch in CI: the
embeddings are committed). Run from the repository root after
`pip install torch sentence-transformers` and `cargo build --release`:

    python3 scripts/reference/st_tiny_embed.py

Writes tests/fixtures/st_tiny/ (the model, without the run's checkpoints and logs) and
tests/fixtures/st_tiny/reference.json ({"texts": [...], "embeddings": [[...], ...]}).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import torch
from sentence_transformers import SentenceTransformer
from transformers import BertConfig, BertModel, BertTokenizerFast

BEIR = "tests/fixtures/retrieval/beir"
OUT = "tests/fixtures/st_tiny"
docs = {}
for line in open(f"{BEIR}/corpus.jsonl"):
    d = json.loads(line)
    docs[d["_id"]] = (d["title"] + " " + d["text"]).strip()
queries = {json.loads(l)["_id"]: json.loads(l)["text"] for l in open(f"{BEIR}/queries.jsonl")}
pairs = []
for line in list(open(f"{BEIR}/qrels/test.tsv"))[1:]:
    q, d, grade = line.split()
    pairs.append({"anchor": queries[q], "positive": docs[d]})

with tempfile.TemporaryDirectory() as tmp:
    words = sorted({w for t in list(docs.values()) + list(queries.values()) for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)}
    base = os.path.join(tmp, "base")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).eval().save_pretrained(base, safe_serialization=True)
    BertTokenizerFast(vocab=vocab, do_lower_case=True).save_pretrained(base)
    train = os.path.join(tmp, "pairs.jsonl")
    with open(train, "w") as f:
        f.writelines(json.dumps(p) + "\n" for p in pairs)
    run = os.path.join(tmp, "run")
    subprocess.run(["target/release/positio", "finetune", "embed", "--model", base, "--train", train,
                    "--batch-size", "4", "--epochs", "2", "--lr", "1e-3", "--out", run], check=True)
    shutil.rmtree(OUT, ignore_errors=True)
    shutil.copytree(run, OUT, ignore=shutil.ignore_patterns("checkpoints", "metrics.jsonl", "run.toml"))
    open(os.path.join(OUT, "2_Normalize", ".gitkeep"), "w").close()  # git keeps no empty folder

texts = [p["anchor"] for p in pairs[:6]] + ["an unseen text about oil and gold", "zzz"]
model = SentenceTransformer(OUT, device="cpu")
emb = model.encode(texts, convert_to_numpy=True)
with open(os.path.join(OUT, "reference.json"), "w") as f:
    json.dump({"texts": texts, "embeddings": emb.tolist(), "modules": [str(type(m).__name__) for m in model]}, f)
print(model, emb.shape)

# sentence-transformers' MultipleNegativesRankingLoss on one batch of every pair with a hard
# negative (the corpus' other documents), dropout off: what positio's first logged loss must be
# with the same model and data.
from sentence_transformers.losses import MultipleNegativesRankingLoss

distinct, seen = [], set()
for p in pairs:  # one batch without a repeated text, as positio's sampler makes it
    if p["anchor"] not in seen and p["positive"] not in seen:
        seen.update((p["anchor"], p["positive"]))
        distinct.append(p)
others = [t for t in docs.values() if t not in seen]
hard = [dict(p, negative=others[i]) for i, p in enumerate(distinct)]
model.eval()
features = [model.tokenize([h[k] for h in hard]) for k in ("anchor", "positive", "negative")]
with torch.no_grad():
    loss = MultipleNegativesRankingLoss(model)(features, None).item()
with open(os.path.join(OUT, "mnrl_reference.json"), "w") as f:
    json.dump({"pairs": hard, "loss": loss}, f, indent=1)
print("MNRL loss", loss)
