"""Study A's tables and figure from experiments/parallel_study.sh's results: tokens/s of
inference and of a training step per model and length (speed.jsonl), where the Transformer's
throughput falls below the recurrent encoders', a log-log plot (parallel_vs_recurrent.png), and
the CoNLL-2003 NER runs from scratch (ner-*/testa.json, metrics.jsonl) beside the pretrained
all-MiniLM-L6-v2 reference run when it exists (runs/ner/minilm-lr1e-4-e5-crf).

    python experiments/parallel_table.py runs/parallel
(the plot needs matplotlib: pip install -r experiments/requirements-plot.txt)
"""
import json
import os
import sys

runs = sys.argv[1]
speed_path = os.path.join(runs, "speed.jsonl")
cells = [json.loads(l) for l in open(speed_path) if l.strip()] if os.path.exists(speed_path) else []
models = list(dict.fromkeys(c["model"] for c in cells))
lengths = sorted({c["len"] for c in cells})
TASKS = {
    "tag-forward": "inference",
    "tag-train": "training step",
    "latency": "inference of one sequence (batch 1)",
}


def at(model, task, n):
    return next((c for c in cells if c["model"] == model and c["task"] == task and c["len"] == n), None)


for task, title in TASKS.items():
    if not cells:
        break
    first = next(c for c in cells if c["task"] == task)
    shape = "one sequence" if task == "latency" else f"batch × length = {first['batch'] * first['len']} tokens"
    print(f"\n**{title}, tokens/s** ({shape})\n")
    print("| model | " + " | ".join(str(n) for n in lengths) + " |")
    print("|---|" + "---:|" * len(lengths))
    for m in models:
        cell = at
        row = [
            (f"{cell(m, task, n)['tokens_per_s']:,}" + (f" ({cell(m, task, n)['ms']:.0f} ms)" if task == "latency" else ""))
            if cell(m, task, n)
            else "-"
            for n in lengths
        ]
        print(f"| {m} | " + " | ".join(row) + " |")
    # Crossover: from which length on a Transformer is slower than a recurrent encoder.
    for t in [m for m in models if m.startswith("transformer")]:
        for r in [m for m in models if not m.startswith("transformer")]:
            ratios = [(n, at(t, task, n)["tokens_per_s"] / at(r, task, n)["tokens_per_s"]) for n in lengths if at(t, task, n) and at(r, task, n)]
            # The shortest length from which the Transformer stays slower.
            cross = next((n for i, (n, _) in enumerate(ratios) if all(q < 1 for _, q in ratios[i:])), None)
            trend = ", ".join(f"{n}: {q:.2f}×" for n, q in ratios)
            where = f"slower at every length from {cross} on" if cross else "not slower at the longest length"
            print(f"\n{t} / {r}: {trend} — {where}")

if cells:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 5), sharey=True)
    for ax, (task, title) in zip(axes, TASKS.items()):
        for m in models:
            pts = [(n, at(m, task, n)["tokens_per_s"]) for n in lengths if at(m, task, n)]
            ax.plot(*zip(*pts), "-" if m.startswith("transformer") else "--", marker="o", label=m)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length" + (" (one sequence)" if task == "latency" else " (batch × length constant)"))
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("tokens / s")
    axes[0].legend()
    fig.suptitle("Parallel (Transformer) vs recurrent (BiLSTM, BiGRU) encoders, matched size")
    fig.tight_layout()
    out = os.path.join(runs, "parallel_vs_recurrent.png")
    fig.savefig(out, dpi=110)
    print(f"\nwrote {out}")


def ner_row(name, run):
    report = os.path.join(run, "testa.json")
    if not os.path.exists(report):
        return
    r = json.load(open(report))
    rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
    train = [x for x in rows if x["split"] == "train"]
    val = [x for x in rows if x["split"] == "val"]
    config = json.load(open(os.path.join(run, "config.json")))
    arch = config.get("arch", "transformer")
    print(
        f"| {name} | {arch} | {train[-1]['epoch']:.2f} | {train[-1]['elapsed_s']:.0f} | "
        f"{r['entity']['micro']['f1']:.4f} | {r['token']['micro']['f1']:.4f} | {val[-1]['entity_f1']:.4f} |"
    )


print("\n**CoNLL-2003 NER, eng.testa** (best epoch on eng.testa; training seconds from metrics.jsonl)\n")
print("| run | encoder | epochs | training s | entity F1 (best epoch) | token micro F1 | entity F1 (last epoch) |")
print("|---|---|---:|---:|---:|---:|---:|")
for name in ["bilstm", "transformer-absolute"]:
    ner_row(f"{name}-crf from scratch", os.path.join(runs, f"ner-{name}"))
ner_row("all-MiniLM-L6-v2 + CRF (pretrained)", "runs/ner/minilm-lr1e-4-e5-crf")
