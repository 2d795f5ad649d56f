"""Study B's table and figure from experiments/length_study.sh's cells (one JSON line per
`positio eval lm` call): perplexity per run and evaluation length, the change from the training
length (128), peak memory, and a log-log plot of perplexity against length.

    python experiments/length_table.py runs/length/cells.jsonl runs/length/length.png
(the plot needs matplotlib: pip install -r experiments/requirements-plot.txt)
"""
import json
import sys

cells = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
runs = list(dict.fromkeys(c["run"] for c in cells))
lengths = sorted({c["len"] for c in cells})


def at(run, n):
    return next((c for c in cells if c["run"] == run and c["len"] == n), None)


print("| run | " + " | ".join(f"ppl @ {n}" for n in lengths) + " | change at 8× (1024) | scaled: change at factor × 128 | peak memory at 2048 |")
print("|---|" + "---:|" * (len(lengths) + 3))
rope_base = at("rope", 128)


def change(cell, base):
    if cell and base and cell["perplexity"] and base["perplexity"]:
        return f"{100 * (cell['perplexity'] / base['perplexity'] - 1):+.1f} %"
    return "n/a"


for run in runs:
    row = []
    for n in lengths:
        c = at(run, n)
        row.append("n/a" if c is None or c["perplexity"] is None else f"{c['perplexity']:.1f}")
    eight = change(at(run, 1024), at(run, 128))
    # A scaled RoPE run against the unscaled model at its training length (the target).
    scaled = "-"
    if run.startswith("rope-"):
        factor = int(run.rsplit("-", 1)[1])
        scaled = f"{change(at(run, 128 * factor), rope_base)} (at {128 * factor})"
    m = at(run, 2048)
    mem = f"{m['peak_rss_mib']:.0f} MiB" if m and m["perplexity"] else "-"
    print(f"| {run} | " + " | ".join(row) + f" | {eight} | {scaled} | {mem} |")

if len(sys.argv) > 2:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    colors = plt.cm.tab20.colors  # one colour per run (the default cycle has only 10)
    for i, run in enumerate(runs):
        pts = [(n, at(run, n)["perplexity"]) for n in lengths if at(run, n) and at(run, n)["perplexity"]]
        if pts:
            style = "--" if run.startswith("rope-") else "-"
            ax.plot(*zip(*pts), style, marker="o", label=run, color=colors[(2 * i) % 20 if i < 10 else (2 * i + 1) % 20])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.axvline(128, color="grey", lw=0.8)
    ax.set_xlabel("evaluation length (tokens; trained at 128)")
    ax.set_ylabel("perplexity per word piece (held-out Reuters)")
    ax.set_title("Causal LMs beyond their training length")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print(f"wrote {sys.argv[2]}")
