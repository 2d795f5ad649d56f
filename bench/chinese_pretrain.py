"""The PyTorch twin of `positio pretrain` on the Chinese corpus (bench/chinese_pretrain.sh): the
same model (pre-LN, RoPE, 4 layers, hidden 256, 4 heads, FFN 1024, dropout 0.1, tied MLM head),
the same tokenizer and corpus packed into 128-token sequences, masked LM at 15 % (80 / 10 / 10,
the loss at the masked positions only), AdamW (lr 1e-3, weight decay 0.01), clipping at 1.0,
batch 32. Attention through `scaled_dot_product_attention` (PyTorch's fused kernel).

    python3 bench/chinese_pretrain.py --tokenizer runs/zh/tokenizer.json \\
        --corpus runs/zh/daily/train.txt --corpus runs/zh/reviews/train.txt [--steps 40]

Prints per-step medians as `RESULT tokens-per-s <v>` and `RESULT chars-per-s <v>` (characters
of the packed text, [CLS] / [SEP] excluded).
"""
import argparse
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from tokenizers import Tokenizer

H, L, NH, FF, EPS, DROP = 256, 4, 4, 1024, 1e-12, 0.1


def rope(x):
    """Rotary embeddings on [batch, heads, len, dim] (halves rotated, base 10,000)."""
    d = x.shape[-1]
    inv = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    angles = torch.arange(x.shape[-2], dtype=torch.float32)[:, None] * inv[None]
    cos, sin = angles.cos().repeat(1, 2), angles.sin().repeat(1, 2)
    a, b = x[..., : d // 2], x[..., d // 2 :]
    return x * cos + torch.cat((-b, a), -1) * sin


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(H, eps=EPS), nn.LayerNorm(H, eps=EPS)
        self.qkv, self.o = nn.Linear(H, 3 * H), nn.Linear(H, H)
        self.f1, self.f2 = nn.Linear(H, FF), nn.Linear(FF, H)

    def forward(self, x):
        b, s, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, s, 3, NH, H // NH).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(rope(q), rope(k), v, dropout_p=DROP if self.training else 0.0)
        x = x + F.dropout(self.o(a.transpose(1, 2).reshape(b, s, H)), DROP, self.training)
        return x + F.dropout(self.f2(F.gelu(self.f1(self.ln2(x)))), DROP, self.training)


class MaskedLM(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.tok, self.typ = nn.Embedding(vocab, H), nn.Embedding(2, H)
        nn.init.normal_(self.tok.weight, std=0.02)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.ln = nn.LayerNorm(H, eps=EPS)
        self.head, self.head_ln = nn.Linear(H, H), nn.LayerNorm(H, eps=EPS)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, ids, positions):
        x = F.dropout(self.tok(ids) + self.typ(torch.zeros_like(ids)), DROP, self.training)
        for block in self.blocks:
            x = block(x)
        x = self.ln(x).reshape(-1, H)[positions]
        return self.head_ln(F.gelu(self.head(x))) @ self.tok.weight.t() + self.bias


def pack(paths, tokenizer, length):
    """Documents (a line each) as ids, each followed by [SEP], cut into [CLS] … [SEP] sequences;
    also the characters the sequences cover."""
    ids, chars = [], []
    sep = tokenizer.token_to_id("[SEP]")
    for path in paths:
        for line in open(path, encoding="utf-8"):
            if line.strip():
                enc = tokenizer.encode(line.strip(), add_special_tokens=False)
                ids.extend(enc.ids + [sep])
                chars.extend([e - s for s, e in enc.offsets] + [0])
    n = length - 2
    return [(ids[i : i + n], sum(chars[i : i + n])) for i in range(0, len(ids) - n + 1, n)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--corpus", action="append", required=True)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--len", type=int, default=128)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    tokenizer = Tokenizer.from_file(args.tokenizer)
    vocab = tokenizer.get_vocab_size()
    cls, sep, mask = (tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[MASK]"))
    sequences = pack(args.corpus, tokenizer, args.len)
    per_token = sum(c for _, c in sequences) / (len(sequences) * args.len)
    print(f"{len(sequences)} sequences of {args.len} tokens; torch {torch.__version__}, {args.threads} threads")
    print(f"RESULT chars-per-token {per_token:.4f}")
    model = MaskedLM(vocab)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1 and "ln" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() > 1 and "ln" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, eps=1e-8)
    g = torch.Generator().manual_seed(42)
    order = torch.randperm(len(sequences), generator=g)
    times, chars_per_step = [], []
    for step in range(args.warmup + args.steps):
        batch = [sequences[i] for i in order[step * args.batch : (step + 1) * args.batch].tolist()]
        start = time.perf_counter()
        ids = torch.tensor([[cls] + s + [sep] for s, _ in batch])
        # 15 % of the non-special positions: 80 % [MASK], 10 % a random token, 10 % unchanged.
        chosen = (torch.rand(ids.shape, generator=g) < 0.15) & (ids != cls) & (ids != sep)
        positions = chosen.flatten().nonzero().squeeze(1)
        targets = ids.flatten()[positions]
        roll = torch.rand(len(positions), generator=g)
        inputs = ids.flatten().clone()
        inputs[positions[roll < 0.8]] = mask
        swap = positions[(roll >= 0.8) & (roll < 0.9)]
        inputs[swap] = torch.randint(vocab, (len(swap),), generator=g)
        loss = F.cross_entropy(model(inputs.view_as(ids), positions), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
            chars_per_step.append(sum(c for _, c in batch))
        if step % 10 == 0:
            print(f"step {step}: loss {loss.item():.4f}, {time.perf_counter() - start:.3f} s")
    ms = statistics.median(times)
    tokens = args.batch * args.len
    chars = statistics.median(c / t for c, t in zip(chars_per_step, times))
    print(f"RESULT tokens-per-s {tokens / ms:.0f}")
    print(f"RESULT chars-per-s {chars:.0f}")
    print(f"RESULT step-ms {ms * 1e3:.1f}")


if __name__ == "__main__":
    main()
