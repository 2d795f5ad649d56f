"""The Python side of experiments/retrieval_reuters.sh.

    python3 experiments/retrieval_baselines.py bm25 BEIR_DIR SPLIT RUN
        rank-bm25's BM25Okapi (lowercased word tokens, its defaults) over the corpus; writes the
        top 100 per query as a TREC run.
    python3 experiments/retrieval_baselines.py mnrl MODEL PAIRS OUT [EPOCHS BATCH LR]
        sentence-transformers' own fine-tune with MultipleNegativesRankingLoss on the same pairs,
        settings as positio's recipe (batch 32, lr 2e-5, 10 % warm-up, linear decay, weight decay
        0.01, clipping at 1.0, no repeated text in a batch); prints `RESULT st-seconds-per-epoch S`.
    python3 experiments/retrieval_baselines.py table QRELS NAME=RUN ...
        pytrec_eval's means of each run (scripts/reference/trec_measures.py), as a Markdown table.
"""
import json
import os
import re
import subprocess
import sys
import time

cmd = sys.argv[1]
if cmd == "bm25":
    from rank_bm25 import BM25Okapi

    beir, split, out = sys.argv[2:5]
    words = lambda t: re.findall(r"\w+", t.lower())
    docs = [json.loads(l) for l in open(os.path.join(beir, "corpus.jsonl"), encoding="utf-8")]
    queries = [json.loads(l) for l in open(os.path.join(beir, "queries.jsonl"), encoding="utf-8")]
    bm25 = BM25Okapi([words((d.get("title", "") + " " + d["text"]).strip()) for d in docs])
    with open(out, "w") as f:
        for q in queries:
            scores = bm25.get_scores(words(q["text"]))
            best = sorted(range(len(docs)), key=lambda i: -scores[i])[:100]
            for r, i in enumerate(best):
                f.write(f"{q['_id']} Q0 {docs[i]['_id']} {r + 1} {float(scores[i])!r} bm25\n")
elif cmd == "mnrl":
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers, SentenceTransformerTrainingArguments

    model_dir, pairs, out = sys.argv[2:5]
    epochs, batch, lr = (float(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])) if len(sys.argv) > 5 else (1.0, 32, 2e-5)
    torch.set_num_threads(os.cpu_count())
    rows = [json.loads(l) for l in open(pairs, encoding="utf-8")]
    data = Dataset.from_dict({"anchor": [r["anchor"] for r in rows], "positive": [r["positive"] for r in rows]})
    model = SentenceTransformer(model_dir, device="cpu")
    args = SentenceTransformerTrainingArguments(
        output_dir=out + ".trainer", num_train_epochs=epochs, per_device_train_batch_size=batch,
        learning_rate=lr, warmup_ratio=0.1, weight_decay=0.01, max_grad_norm=1.0, seed=42,
        batch_sampler=BatchSamplers.NO_DUPLICATES, logging_steps=10, save_strategy="no", report_to=[],
        use_cpu=True, dataloader_drop_last=False,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                         loss=MultipleNegativesRankingLoss(model))
    t = time.time()
    trainer.train()
    seconds = time.time() - t
    model.save(out)
    print(f"RESULT st-seconds-per-epoch {seconds / epochs:.1f}")
elif cmd == "table":
    qrels = sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    keys = ["ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100"]
    print("| run | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for arg in sys.argv[3:]:
        name, run = arg.split("=", 1)
        out = subprocess.run([sys.executable, os.path.join(here, "..", "scripts", "reference", "trec_measures.py"), run, qrels],
                             check=True, capture_output=True, text=True).stdout
        per = json.loads(out)
        mean = {k: sum(q[k] for q in per.values()) / len(per) for k in keys}
        print(f"| {name} | " + " | ".join(f"{mean[k]:.4f}" for k in keys) + " |")
else:
    sys.exit(__doc__)
