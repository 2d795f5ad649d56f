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


print("| run | " + " | ".join(f"ppl @ {n}" for n in lengths) + " | Δ at 8× (1024) | peak memory at 2048 |")
print("|---|" + "---:|" * (len(lengths) + 2))
for run in runs:
    row, base = [], at(run, 128)
    for n in lengths:
        c = at(run, n)
        row.append("n/a" if c is None or c["perplexity"] is None else f"{c['perplexity']:.1f}")
    c8 = at(run, 1024)
    if base and base["perplexity"] and c8 and c8["perplexity"]:
        delta = f"{100 * (c8['perplexity'] / base['perplexity'] - 1):+.1f} %"
    else:
        delta = "n/a"
    m = at(run, 2048)
    mem = f"{m['peak_rss_mib']:.0f} MiB" if m else "-"
    print(f"| {run} | " + " | ".join(row) + f" | {delta} | {mem} |")

if len(sys.argv) > 2:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    for run in runs:
        pts = [(n, at(run, n)["perplexity"]) for n in lengths if at(run, n) and at(run, n)["perplexity"]]
        if pts:
            style = "--" if run.startswith("rope-") else "-"
            ax.plot(*zip(*pts), style, marker="o", label=run)
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
