"""Summarises the classification runs (runs/phrasebank, runs/reuters, runs/sst2: each run's
eval.json and metrics.jsonl) as the Markdown table of docs/RESULTS.md."""
import glob
import json
import os

print("| run | evaluated on | accuracy | macro-F1 | micro-F1 | best dev (step) | training time |")
print("|---|---|---|---|---|---|---|")
for run in sorted(glob.glob("runs/phrasebank/*") + glob.glob("runs/reuters/*") + glob.glob("runs/sst2/*")):
    path = os.path.join(run, "eval.json")
    if not os.path.exists(path):
        continue
    r = json.load(open(path))
    rep = r["report"]
    avg = {a["name"]: a for a in rep["averages"]}
    rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
    vals = [x for x in rows if x["split"] == "val"]
    key = "micro_f1" if "micro_f1" in vals[-1] else "accuracy"
    best = max(vals, key=lambda x: x[key])
    train = max(x["elapsed_s"] for x in rows if x["split"] == "train")
    micro = avg.get("micro avg", {}).get("f1", rep["accuracy"])
    print(f"| {run} | {os.path.basename(r['data'])} ({rep['texts']}) | {rep['accuracy']:.4f} | "
          f"{avg['macro avg']['f1']:.4f} | {micro:.4f} | {key} {best[key]:.4f} (step {best['step']}) | {train:.0f} s |")
