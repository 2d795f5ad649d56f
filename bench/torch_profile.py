"""Where the PyTorch eager twin's time goes: torch.profiler (CPU activities) over its full-loss MLM
training step (batch 16 × 128, loss at all positions, AdamW) — the same model and step as
`bench/torch_bench.py --task train --mode eager`, imported from there. 3 warm-up steps, then 5
profiled ones; prints, as Markdown, the total step time and the top ops by self CPU time (op, calls
per step, self ms per step, share of the step's wall time).

    python3 bench/torch_profile.py [--warmup 3] [--steps 5] [--top 25] [--threads N]
"""
import argparse
import os
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import make_eager_twin, make_train_step  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    model, loss_fn = make_eager_twin(16, 128, 1.0)
    step = make_train_step(model, loss_fn)
    for _ in range(args.warmup):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        for _ in range(args.steps):
            step()
        wall_ms = (time.perf_counter() - t) * 1e3 / args.steps

    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    self_total = sum(e.self_cpu_time_total for e in rows) / 1e3 / args.steps
    print(f"## PyTorch eager twin, MLM training step (16 × 128, loss at all positions), {args.threads} threads\n")
    print(f"step time under the profiler: {wall_ms:.1f} ms (mean of {args.steps} after {args.warmup} warm-ups); "
          f"self CPU time of all ops: {self_total:.1f} ms per step\n")
    print("| op | calls / step | self ms / step | share of step |")
    print("|---|---|---|---|")
    for e in rows[:args.top]:
        ms = e.self_cpu_time_total / 1e3 / args.steps
        print(f"| `{e.key}` | {e.count / args.steps:g} | {ms:.2f} | {100 * ms / wall_ms:.1f} % |")


if __name__ == "__main__":
    main()
