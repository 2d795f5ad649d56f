"""Describes the machine a benchmark ran on, and measures its fp32 matrix-product ceiling, so that
speed numbers from different machines (and positio's achieved GFLOP/s) can be put in context.

    python3 bench/machine.py             # description + `RESULT gemm-ceiling-gflops <value>`
    python3 bench/machine.py --shapes    # also torch.mm at the MLM training step's own shapes:
                                         #   `RESULT gemm <m>x<k>x<n>[-AtB|-ABt] <gflops>  # what`
                                         #   (m×k times k×n; -AtB / -ABt: A / B stored transposed)
    python3 bench/machine.py --no-gemm   # description only

GFLOP/s = 2·m·k·n / best time of 10 (after 3 warm-ups), all logical cores (torch.set_num_threads).
"""
import argparse
import datetime
import os
import platform
import time

import torch

ISA = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_fp16"]


def cpuinfo():
    """First processor's `key: value` fields of /proc/cpuinfo ({} where there is none)."""
    info = {}
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if not line.strip():
                if info:
                    break
                continue
            k, _, v = line.partition(":")
            info.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    return info


def gflops(m, k, n, trans_a=False, trans_b=False, warmup=3, reps=10):
    """Best-of-`reps` GFLOP/s of torch.mm for an (m×k)·(k×n) product; with trans_a / trans_b the
    operand is stored transposed (as in backward passes) and handed to mm as a transposed view."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(k, m, generator=g).t() if trans_a else torch.randn(m, k, generator=g)
    b = torch.randn(n, k, generator=g).t() if trans_b else torch.randn(k, n, generator=g)
    out = torch.empty(m, n)
    for _ in range(warmup):
        torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t)
    return 2.0 * m * k * n / best / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", action="store_true", help="also time the MLM training step's GEMM shapes")
    p.add_argument("--no-gemm", action="store_true", help="only describe the machine")
    args = p.parse_args()

    nproc = os.cpu_count()
    torch.set_num_threads(nproc)
    info = cpuinfo()
    flags = set(info.get("flags", "").split())
    print("machine:")
    print(f"  cpu: {info.get('model name', platform.processor() or 'unknown')}")
    print(f"  vendor: {info.get('vendor_id', 'unknown')}")
    print(f"  logical cores: {nproc}")
    print(f"  matrix ISA: {' '.join(f for f in ISA if f in flags) or 'none of ' + ' '.join(ISA)}")
    print(f"  torch: {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"  date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    if args.no_gemm:
        return
    print(f"RESULT gemm-ceiling-gflops {gflops(2048, 2048, 2048):.1f}", flush=True)
    if args.shapes:
        # Batch 16 × 128 = 2048 positions, hidden 256, FFN 1024, vocab 30522 (bench/flops.py's model).
        # Key suffix -AtB / -ABt: that operand is stored transposed and passed as a .t() view.
        shapes = [
            (2048, 256, 30522, False, False, "vocab projection forward, plain operands"),
            (2048, 256, 30522, False, True, "vocab projection forward as run with the tied E (V×H): X·Eᵀ"),
            (2048, 256, 1024, False, False, "FFN up forward"),
            (2048, 1024, 256, False, False, "FFN down forward"),
            (30522, 2048, 256, True, False, "vocab projection weight grad: dYᵀ·X"),
            (2048, 30522, 256, False, False, "vocab projection input grad: dY·E"),
            (2048, 30522, 256, False, True, "A·Bᵀ form of the same product"),
            (4096, 384, 384, False, True, "all-MiniLM-L6-v2 32 × 128: attention projection X·Wᵀ"),
            (4096, 384, 1536, False, True, "all-MiniLM-L6-v2: FFN up X·Wᵀ"),
            (4096, 1536, 384, False, True, "all-MiniLM-L6-v2: FFN down X·Wᵀ"),
        ]
        for m, k, n, ta, tb, what in shapes:
            key = f"{m}x{k}x{n}" + ("-AtB" if ta else "") + ("-ABt" if tb else "")
            print(f"RESULT gemm {key} {gflops(m, k, n, ta, tb):.1f}  # {what}", flush=True)


if __name__ == "__main__":
    main()
