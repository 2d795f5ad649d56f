"""PyTorch twin of `positio bench`: the same BERT-style model, batch and optimizer, timed the same
way (median of --steps after --warmup untimed steps).

    python3 bench/torch_bench.py --task train --mode eager
    python3 bench/torch_bench.py --task train --mode compile
    python3 bench/torch_bench.py --task train --mode hf          # transformers' BertForMaskedLM
    python3 bench/torch_bench.py --task encoder --model DIR       # e.g. all-MiniLM-L6-v2

Prints `RESULT torch-<mode>-<task> median_ms min_ms max_ms`.
"""
import argparse
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--task", default="train", choices=["train", "forward", "encoder"])
p.add_argument("--mode", default="eager", choices=["eager", "compile", "hf"])
p.add_argument("--batch", type=int, default=16)
p.add_argument("--len", type=int, default=128)
p.add_argument("--loss-fraction", type=float, default=1.0)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--model", default=None)
p.add_argument("--threads", type=int, default=os.cpu_count())
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
V, H, L, NH, FF, P, EPS = 30522, 256, 4, 4, 1024, 512, 1e-12
B, S = args.batch, args.len


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(H, H) for _ in range(4))
        self.ln1 = nn.LayerNorm(H, eps=EPS)
        self.f1, self.f2 = nn.Linear(H, FF), nn.Linear(FF, H)
        self.ln2 = nn.LayerNorm(H, eps=EPS)

    def forward(self, x, mask):
        b, s, _ = x.shape
        heads = lambda t: t.view(b, s, NH, H // NH).transpose(1, 2)
        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(H // NH) + mask
        a = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, H)
        x = self.ln1(x + self.o(a))
        return self.ln2(x + self.f2(F.gelu(self.f1(x))))


class Bert(nn.Module):
    """Embeddings (word + position + type) + LayerNorm, post-LN blocks, tied MLM head."""

    def __init__(self):
        super().__init__()
        self.tok, self.pos, self.typ = nn.Embedding(V, H), nn.Embedding(P, H), nn.Embedding(2, H)
        self.ln = nn.LayerNorm(H, eps=EPS)
        self.layers = nn.ModuleList(Layer() for _ in range(L))
        self.head, self.head_ln = nn.Linear(H, H), nn.LayerNorm(H, eps=EPS)
        self.dec_bias = nn.Parameter(torch.zeros(V))

    def forward(self, ids, attention_mask, positions=None):
        b, s = ids.shape
        mask = (1.0 - attention_mask[:, None, None, :].float()) * -1e30
        x = self.tok(ids) + self.pos(torch.arange(s))[None] + self.typ(torch.zeros_like(ids))
        x = self.ln(x)
        for layer in self.layers:
            x = layer(x, mask)
        x = x.reshape(b * s, H)
        if positions is not None:
            x = x[positions]
        x = self.head_ln(F.gelu(self.head(x)))
        return x @ self.tok.weight.t() + self.dec_bias


def lcg(count, n, seed):
    out, s = [], seed
    for _ in range(count):
        s = (s * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out.append((s >> 33) % n)
    return torch.tensor(out)


def timed(fn):
    for _ in range(args.warmup):
        fn()
    ts = []
    for _ in range(args.steps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return ts


def train_steps(model, loss_fn):
    """Times AdamW training steps of `loss_fn`."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, eps=1e-8)

    def step():
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return timed(step)


ids = lcg(B * S, V, 42).view(B, S)
attention_mask = torch.ones(B, S, dtype=torch.long)
stride = max(1, round(1 / args.loss_fraction))
positions = torch.arange(0, B * S, stride)
targets = lcg(len(positions), V, 7)
name = f"torch-{args.mode}-{args.task}"

if args.task == "encoder":
    from transformers import AutoModel

    enc = AutoModel.from_pretrained(args.model, attn_implementation="eager").eval()
    if args.mode == "compile":
        enc = torch.compile(enc)
    ids = lcg(B * S, enc.config.vocab_size, 42).view(B, S)
    with torch.no_grad():
        ts = timed(lambda: enc(input_ids=ids, attention_mask=attention_mask).last_hidden_state)
elif args.mode == "hf":
    from transformers import BertConfig, BertForMaskedLM

    cfg = BertConfig(vocab_size=V, hidden_size=H, num_hidden_layers=L, num_attention_heads=NH,
                     intermediate_size=FF, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForMaskedLM(cfg)
    model.config._attn_implementation = "eager"
    labels = torch.full((B * S,), -100)
    labels[positions] = targets
    labels = labels.view(B, S)
    if args.task == "train":
        ts = train_steps(model, lambda: model(input_ids=ids, attention_mask=attention_mask, labels=labels).loss)
    else:
        model.eval()
        with torch.no_grad():
            ts = timed(lambda: model(input_ids=ids, attention_mask=attention_mask).logits)
else:
    model = Bert()
    nn.init.normal_(model.tok.weight, std=0.02)
    nn.init.normal_(model.pos.weight, std=0.02)
    gather = None if args.loss_fraction >= 1 else positions
    loss_fn = lambda: F.cross_entropy(model(ids, attention_mask, gather), targets)
    if args.mode == "compile":
        loss_fn = torch.compile(loss_fn)
    if args.task == "train":
        ts = train_steps(model, loss_fn)
    else:
        model.eval()
        fwd = torch.compile(model) if args.mode == "compile" else model
        with torch.no_grad():
            ts = timed(lambda: fwd(ids, attention_mask))

print(f"RESULT {name} {statistics.median(ts):.1f} {min(ts):.1f} {max(ts):.1f}")
