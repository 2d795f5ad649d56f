"""The table of a model-soup study (experiments/classify_soup.sh): each seed, their mean, the
ensemble that averages the seeds' probabilities (what the soup approximates at N times the
cost), the uniform soup and the greedy one; dev and test accuracy and test macro-F1, all
recomputed here from each model's predictions files.
  python3 experiments/soup_table.py runs/phrasebank/50-mean-e6"""
import glob
import json
import statistics
import sys


def rows(path):
    return [json.loads(line) for line in open(path)]


def accuracy(preds):
    return sum(p["label"] == p["gold"][0] for p in preds) / len(preds)


def macro_f1(preds):
    labels = sorted({p["gold"][0] for p in preds} | {p["label"] for p in preds})
    f1s = []
    for c in labels:
        tp = sum(p["label"] == c and p["gold"][0] == c for p in preds)
        fp = sum(p["label"] == c and p["gold"][0] != c for p in preds)
        fn = sum(p["label"] != c and p["gold"][0] == c for p in preds)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def ensemble(runs, name):
    """Each text's label scores averaged over the runs; the best label."""
    per_run = [rows(f"{r}/{name}") for r in runs]
    out = []
    for texts in zip(*per_run):
        assert len({t["text"] for t in texts}) == 1, "the runs scored other texts"
        score = {}
        for t in texts:
            for s in t["scores"]:
                score[s["label"]] = score.get(s["label"], 0.0) + s["score"] / len(texts)
        out.append({"label": max(score, key=score.get), "gold": texts[0]["gold"]})
    return out


base = sys.argv[1]
seeds = sorted(glob.glob(f"{base}-s[0-9]*"), key=lambda r: int(r.rsplit("-s", 1)[1]))
print("| model | dev accuracy | test accuracy | test macro-F1 |")
print("|---|---:|---:|---:|")
dev, test = [], []
for r in seeds:
    d, t = rows(f"{r}/dev-predictions.jsonl"), rows(f"{r}/predictions.jsonl")
    dev.append(accuracy(d))
    test.append(accuracy(t))
    print(f"| {r} | {dev[-1]:.4f} | {test[-1]:.4f} | {macro_f1(t):.4f} |")
sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
print(f"| mean ± sd of the {len(seeds)} seeds | {statistics.mean(dev):.4f} ± {sd(dev):.4f} | "
      f"{statistics.mean(test):.4f} ± {sd(test):.4f} | |")
d, t = ensemble(seeds, "dev-predictions.jsonl"), ensemble(seeds, "predictions.jsonl")
print(f"| ensemble of the {len(seeds)} (mean probabilities; {len(seeds)}× the cost) | "
      f"{accuracy(d):.4f} | {accuracy(t):.4f} | {macro_f1(t):.4f} |")
for soup, what in [("soup", f"uniform soup of the {len(seeds)}"), ("greedy", "greedy soup")]:
    try:
        d, t = rows(f"{base}-{soup}/dev-predictions.jsonl"), rows(f"{base}-{soup}/predictions.jsonl")
    except FileNotFoundError:
        continue
    if soup == "greedy":
        what += " of " + ", ".join(l.strip().rsplit("-", 1)[1] for l in open(f"{base}-greedy/ingredients"))
    print(f"| {what} | {accuracy(d):.4f} | {accuracy(t):.4f} | {macro_f1(t):.4f} |")
subsets = {}
for r in glob.glob(f"{base}-subsets/*"):
    try:
        t = accuracy(rows(f"{r}/predictions.jsonl"))
    except FileNotFoundError:
        continue
    subsets.setdefault(len(r.rsplit("/", 1)[1].split(".")), []).append(t)
for k in sorted(subsets):
    v = subsets[k]
    print(f"| uniform soups of {k} seeds (all {len(v)} subsets): mean [min, max] | | "
          f"{statistics.mean(v):.4f} [{min(v):.4f}, {max(v):.4f}] | |")

# The development curve of each seed (every evaluation), and its training time.
curves = {}
for r in seeds:
    m = [json.loads(line) for line in open(f"{r}/metrics.jsonl")]
    train = [x for x in m if x["split"] == "train"]
    per_step = train[-1]["epoch"] / train[-1]["step"]
    curves[r] = ([(x["step"] * per_step, x["accuracy"]) for x in m if x["split"] == "val"],
                 train[-1]["elapsed_s"])
epochs = [f"{e:g}" for e, _ in curves[seeds[0]][0]]
print()
print("| dev accuracy at epoch | " + " | ".join(epochs) + " | training |")
print("|---|" + "---:|" * (len(epochs) + 1))
for r, (curve, elapsed) in curves.items():
    best = max(a for _, a in curve)
    cells = [f"**{a:.4f}**" if a == best else f"{a:.4f}" for _, a in curve]
    print(f"| {r.rsplit('-', 1)[1]} | " + " | ".join(cells) + f" | {elapsed:.0f} s |")
