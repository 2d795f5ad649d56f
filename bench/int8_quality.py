"""How close int8 sentence embeddings stay to fp32: `positio embed --precision int8` against
ONNX Runtime's dynamic int8 (quantize_dynamic, per_channel=True, QInt8 weights) of the same model,
both compared by cosine with the fp32 embeddings of transformers (mean pooling, L2 norm: what
sentence-transformers computes for all-MiniLM-L6-v2).

    python3 bench/int8_quality.py --model DIR [--conll ../shared/data/conll2003/eng.testa --limit 1000]

Texts: all-MiniLM-L6-v2's reference sentences (tests/fixtures/minilm_parity.safetensors), plus
the first --limit sentences of --conll when given. ORT runs each text alone (batch 1: its
activation scale is per tensor, so a batch would change a text's numbers); positio runs them
in batches (its activation scale is per row). Prints one table row per engine: min, mean and
5th percentile of the cosine, and the share of texts whose nearest neighbour among all texts is
the fp32 one's.
"""

import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
from conll_text import sentences as conll_sentences  # noqa: E402


def reference_sentences():
    raw = open(os.path.join(REPO, "tests", "fixtures", "minilm_parity.safetensors"), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(json.loads(raw[8:8 + n])["__metadata__"]["sentences"])


def mean_pooled(hidden, mask):
    mask = mask[..., None].astype(np.float32)
    v = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fp32_reference(model_dir, texts, tok):
    from transformers import AutoModel

    enc = AutoModel.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for t in texts:
            x = tok(t, return_tensors="pt", truncation=True, max_length=256)
            h = enc(**x).last_hidden_state.numpy()
            out.append(mean_pooled(h, x["attention_mask"].numpy())[0])
    return np.array(out), enc


def ort_int8(enc, texts, tok, threads):
    """Each text alone through ORT's int8 of `enc` (bench/torch_bench.py's export, any shape)."""
    from torch_bench import ort_session

    sess = ort_session(enc, 1, 8, threads, int8=True, dynamic=True)
    out = []
    for t in texts:
        x = tok(t, return_tensors="np", truncation=True, max_length=256)
        feed = {"input_ids": x["input_ids"].astype(np.int64), "attention_mask": x["attention_mask"].astype(np.int64)}
        h = sess.run(["last_hidden_state"], feed)[0]
        out.append(mean_pooled(h, x["attention_mask"])[0])
    return np.array(out)


def positio(binary, model_dir, texts, precision):
    p = subprocess.run([binary, "embed", model_dir, "--precision", precision],
                       input="\n".join(texts) + "\n", capture_output=True, text=True, check=True)
    return np.array([json.loads(line)["embedding"] for line in p.stdout.splitlines()])


def row(name, got, want):
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    # Nearest neighbour among all texts by the fp32 vectors, and by these.
    same = (np.argsort(-(got @ got.T), axis=1)[:, 1] == np.argsort(-(want @ want.T), axis=1)[:, 1]).mean()
    print(f"| {name} | {cos.min():.4f} | {np.percentile(cos, 5):.4f} | {cos.mean():.5f} | {same:.3f} |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--positio", default=os.path.join(REPO, "target", "release", "positio"))
    p.add_argument("--conll", default=None)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    from transformers import AutoTokenizer

    texts = reference_sentences()
    if args.conll:
        texts += conll_sentences(args.conll)[: args.limit]
    # One text a line for `positio embed`: the reference set has none with a newline.
    assert all("\n" not in t for t in texts)
    tok = AutoTokenizer.from_pretrained(args.model)
    torch.set_num_threads(args.threads)
    ref, enc = fp32_reference(args.model, texts, tok)
    print(f"{len(texts)} texts; cosine to transformers fp32 (mean pooling, cut at 256 word pieces)\n")
    print("| engine | min | 5th percentile | mean | same nearest neighbour |")
    print("|---|---|---|---|---|")
    row("positio fp32", positio(args.positio, args.model, texts, "fp32"), ref)
    row("positio int8", positio(args.positio, args.model, texts, "int8"), ref)
    row("ONNX Runtime int8 (quantize_dynamic, per channel)", ort_int8(enc, texts, tok, args.threads), ref)


if __name__ == "__main__":
    main()
