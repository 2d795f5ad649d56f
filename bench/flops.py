"""Analytic matrix-product FLOPs of one MLM training step of the benchmark model (`positio bench
--task train` / `bench/torch_bench.py --task train`), so compare.sh can turn step times into
achieved GFLOP/s and a share of the machine's GEMM ceiling (bench/machine.py).

Model: vocab V 30522, hidden H 256, 4 layers, 4 heads, FFN F 1024, batch B 16 × S 128 (N = B·S
positions), tied decoder. Counting 2·m·k·n per matrix product (embeddings, LayerNorm, softmax,
GELU, loss and optimizer are not counted):

    forward  = L · [ 4 · 2·N·H·H              (Q, K, V, output projections)
                   + 2 · 2·B·S·S·H            (QKᵀ and A·V over all heads: 2·B·heads·S·S·(H/heads) each)
                   + 2 · 2·N·H·F ]            (FFN up and down)
             + 2·M·H·H + 2·M·H·V              (decoder transform dense, tied vocab projection)
    backward = 2 · forward                    (input and weight gradients of every product)
    step     = 3 · forward

M = positions with a loss: every round(1/f)-th of the N positions for loss fraction f, as both
benchmarks gather them (M = N at f = 1; M = 293 of 2048 at f = 0.15).
At f = 1: forward 46.23 GFLOP, step 138.7 GFLOP.

    python3 bench/flops.py [--loss-fraction 0.15]          # prints `RESULT mlm-step-flops <FLOPs>`
    python3 bench/flops.py --ms 1234 --ceiling 100         # also achieved GFLOP/s and % of ceiling
"""
import argparse
import math


def step_flops(loss_fraction=1.0, batch=16, seq=128, vocab=30522, hidden=256, layers=4, ffn=1024):
    """(forward, step) matrix-product FLOPs; see the module docstring."""
    n = batch * seq
    m = math.ceil(n / max(1, round(1 / loss_fraction)))
    layer = 4 * 2 * n * hidden * hidden + 2 * 2 * batch * seq * seq * hidden + 2 * 2 * n * hidden * ffn
    forward = layers * layer + 2 * m * hidden * hidden + 2 * m * hidden * vocab
    return forward, 3 * forward


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--loss-fraction", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--len", type=int, default=128)
    p.add_argument("--ms", type=float, default=None, help="step time: also print achieved GFLOP/s")
    p.add_argument("--ceiling", type=float, default=None, help="GEMM ceiling GFLOP/s: also print the share")
    args = p.parse_args()
    forward, step = step_flops(args.loss_fraction, args.batch, args.len)
    print(f"forward {forward / 1e9:.2f} GFLOP, step (3 × forward) {step / 1e9:.2f} GFLOP")
    print(f"RESULT mlm-step-flops {step}")
    if args.ms:
        g = step / (args.ms / 1e3) / 1e9
        share = f" {100 * g / args.ceiling:.1f} %" if args.ceiling else ""
        print(f"RESULT gflops {g:.1f}{share}")


if __name__ == "__main__":
    main()
