"""Summarises runs/encodings/*/metrics.jsonl as the Markdown table of docs/RESULTS.md."""
import json
import os
import sys

runs = sys.argv[1] if len(sys.argv) > 1 else "runs/encodings"
print("| encoding | val loss | val perplexity | masked-token accuracy | wall time | tokens/s |")
print("|---|---|---|---|---|---|")
for pos in ["absolute", "sinusoidal", "rope", "alibi", "t5_bias", "none"]:
    path = os.path.join(runs, pos, "metrics.jsonl")
    if not os.path.exists(path):
        continue
    rows = [json.loads(line) for line in open(path)]
    val = [r for r in rows if r["split"] == "val"][-1]
    train = [r for r in rows if r["split"] == "train"]
    tokens = train[-1]["step"] * 32 * 128
    wall = train[-1]["elapsed_s"]
    print(f"| {pos} | {val['loss']:.3f} | {val['perplexity']:.1f} | {val['masked_accuracy']:.3f} | "
          f"{wall / 60:.1f} min | {tokens / wall:.0f} |")
