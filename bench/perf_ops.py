"""Groups `perf report --sort symbol --stdio` lines (read from stdin) into op families and prints
a Markdown table: family, share of CPU samples, top symbols. Used by bench/positio_profile.sh."""
import re
import sys

FAMILIES = [
    ("matrix products: gemm crate micro-kernels", r"gemm_f32::microkernel"),
    ("matrix products: gemm crate packing and dispatch", r"gemm_common|gemm_f32::gemm"),
    ("memory copies and fills (bias rows, attention head gathers, burn-flex output buffers: zero-filled, then copied to re-align)", r"__memmove|__memset|__memcpy"),
    ("fused softmax cross-entropy, forward + backward", r"kernels::cross_entropy"),
    ("fused attention (softmax, masks, gather), forward + backward", r"kernels::attention"),
    ("fused bias + GELU, forward + backward", r"kernels::activation"),
    ("fused LayerNorm, forward + backward", r"kernels::layer_norm"),
    ("fused AdamW", r"kernels::adamw"),
    ("burn element-wise ops (residual adds, scaling, reductions)", r"burn_flex::zip|macerator|burn_flex::ops|burn_flex::reduce"),
    ("layout copies (transposes to contiguous)", r"copy_2d_tiled|to_contiguous|strided"),
    ("OS: scheduling, page clearing, syscalls", r"^\[k\]|\[k\]"),
]

totals = {name: 0.0 for name, _ in FAMILIES}
top = {name: [] for name, _ in FAMILIES}
other, other_top = 0.0, []
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\[[.k]\])\s+(.*?)\s*(?:-\s+-\s*)?$", line)
    if not m:
        continue
    share, kind, sym = float(m.group(1)), m.group(2), m.group(3).strip()
    key = f"{kind} {sym}"
    for name, pattern in FAMILIES:
        if re.search(pattern, key):
            totals[name] += share
            top[name].append((share, sym))
            break
    else:
        other += share
        other_top.append((share, sym))

print("| op family | share of CPU samples | largest symbols |")
print("|---|---|---|")
rows = sorted(((t, n) for n, t in totals.items()), reverse=True)
for t, name in rows:
    if t < 0.05:
        continue
    syms = ", ".join(f"`{s[:60]}` {p:.1f}" for p, s in sorted(top[name], reverse=True)[:2])
    print(f"| {name} | {t:.1f} % | {syms} |")
syms = ", ".join(f"`{s[:60]}` {p:.1f}" for p, s in sorted(other_top, reverse=True)[:3])
print(f"| everything else | {other:.1f} % | {syms} |")
