"""PyTorch twin of `positio bench --task tag-train / tag-forward`: the same token tagger
(word + segment embeddings, LayerNorm, an encoder, a 9-label linear layer; cross-entropy at
every position, AdamW) with nn.LSTM / nn.GRU (oneDNN / MKL kernels) or a Transformer encoder
(nn.TransformerEncoder, post-LN, GELU, learned absolute positions), at the same shapes.

    python bench/torch_recurrent.py --arch bilstm --layers 4 --hidden 256 --batch 64 --len 128 --task tag-train

Prints `RESULT torch-<task> median_ms min_ms max_ms`, as positio's bench does.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--arch", choices=["transformer", "lstm", "gru", "bilstm", "bigru"], required=True)
p.add_argument("--task", choices=["tag-train", "tag-forward"], required=True)
p.add_argument("--layers", type=int, default=4)
p.add_argument("--hidden", type=int, default=256)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--ffn", type=int, default=1024)
p.add_argument("--vocab", type=int, default=8000)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--len", type=int, default=128)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=3)
a = p.parse_args()
torch.manual_seed(0)
LABELS = 9


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        h = a.hidden
        self.word = nn.Embedding(a.vocab, h)
        self.segment = nn.Embedding(2, h)
        self.position = nn.Embedding(max(512, a.len), h) if a.arch == "transformer" else None
        self.norm = nn.LayerNorm(h, eps=1e-12)
        if a.arch == "transformer":
            layer = nn.TransformerEncoderLayer(h, a.heads, a.ffn, dropout=0.0, activation="gelu", batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, a.layers, enable_nested_tensor=False)
        else:
            cell = nn.LSTM if a.arch.endswith("lstm") else nn.GRU
            bi = a.arch.startswith("bi")
            self.encoder = cell(h, h // 2 if bi else h, num_layers=a.layers, bidirectional=bi, batch_first=True)
        self.classifier = nn.Linear(h, LABELS)

    def forward(self, ids):
        x = self.word(ids) + self.segment(torch.zeros_like(ids))
        if self.position is not None:
            x = x + self.position(torch.arange(ids.shape[1]))[None]
        x = self.norm(x)
        x = self.encoder(x)
        if isinstance(x, tuple):
            x = x[0]
        return self.classifier(x)


model = Tagger()
ids = torch.randint(0, a.vocab, (a.batch, a.len))
labels = torch.randint(0, LABELS, (a.batch * a.len,))
optim = torch.optim.AdamW(model.parameters(), lr=1e-4)


def step():
    if a.task == "tag-forward":
        with torch.inference_mode():
            model(ids)
        return
    optim.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(ids).reshape(-1, LABELS), labels)
    loss.backward()
    optim.step()
    loss.item()


if a.task == "tag-forward":
    model.eval()
for _ in range(a.warmup):
    step()
ms = []
for _ in range(a.steps):
    t = time.perf_counter()
    step()
    ms.append((time.perf_counter() - t) * 1e3)
print(f"RESULT torch-{a.task} {statistics.median(ms):.1f} {min(ms):.1f} {max(ms):.1f}")
