"""Summarises runs/encodings/*/metrics.jsonl (pretraining) and runs/encodings/ner-*/metrics.jsonl
(CoNLL-2003 fine-tuning, best epoch on eng.testa) as the Markdown table of docs/RESULTS.md."""
import json
import os
import sys
import tomllib

runs = sys.argv[1] if len(sys.argv) > 1 else "runs/encodings"


def rows(path):
    return [json.loads(line) for line in open(path)] if os.path.exists(path) else []


print("| encoding | val loss | val perplexity | masked-token accuracy | wall time | tokens/s "
      "| NER dev entity F1 | NER dev token F1 |")
print("|---|---|---|---|---|---|---|---|")
for pos in ["absolute", "sinusoidal", "rope", "alibi", "t5_bias", "none"]:
    pre = rows(os.path.join(runs, pos, "metrics.jsonl"))
    vals = [r for r in pre if r["split"] == "val"]
    if not vals:
        continue
    val = vals[-1]
    train = [r for r in pre if r["split"] == "train"]
    with open(os.path.join(runs, pos, "run.toml"), "rb") as f:
        run = tomllib.load(f)
    tokens = train[-1]["step"] * run["train"]["batch_size"] * run["train"]["grad_accum"] * run["data"]["max_len"]
    wall = train[-1]["elapsed_s"]
    ner = [r for r in rows(os.path.join(runs, f"ner-{pos}", "metrics.jsonl")) if r["split"] == "val"]
    best = max(ner, key=lambda r: r["entity_f1"]) if ner else None
    scores = f"{best['entity_f1']:.4f} | {best['token_f1']:.4f}" if best else "– | –"
    print(f"| {pos} | {val['loss']:.3f} | {val['perplexity']:.1f} | {val['masked_accuracy']:.3f} | "
          f"{wall / 60:.1f} min | {tokens / wall:.0f} | {scores} |")
