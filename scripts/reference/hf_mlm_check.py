"""Trains Hugging Face's BertForMaskedLM on the packed sequences of a positio pretraining run
(its `data/` directory), with the same model size, optimiser, schedule and masking recipe, and
prints the validation loss at the same steps, so that positio's learning curve can be checked
against transformers + PyTorch. Run from the repository root after `pip install torch transformers`:

    python3 scripts/reference/hf_mlm_check.py RUN_DIR --steps 300 --eval-every 100
"""
import argparse
import json
import math
import os

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM, get_linear_schedule_with_warmup

p = argparse.ArgumentParser()
p.add_argument("run")
p.add_argument("--steps", type=int, default=300)
p.add_argument("--eval-every", type=int, default=100)
args = p.parse_args()
torch.set_num_threads(os.cpu_count())
torch.manual_seed(0)

cfg = json.load(open(os.path.join(args.run, "config.json")))
import tomllib  # noqa: E402

run = tomllib.load(open(os.path.join(args.run, "run.toml"), "rb"))
data = json.load(open(os.path.join(args.run, "data", "data.json")))
L = data["max_len"]


def sequences(split):
    toks = np.fromfile(os.path.join(args.run, "data", f"{split}.tokens"), dtype="<u4")
    n = len(toks) // (L - 2)
    body = toks[: n * (L - 2)].reshape(n, L - 2).astype(np.int64)
    return np.concatenate([np.full((n, 1), 2), body, np.full((n, 1), 3)], axis=1)


train, val = sequences("train"), sequences("val")[: run["data"]["eval_sequences"]]
model = BertForMaskedLM(BertConfig(
    vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], num_hidden_layers=cfg["num_hidden_layers"],
    num_attention_heads=cfg["num_attention_heads"], intermediate_size=cfg["intermediate_size"],
    max_position_embeddings=cfg["max_position_embeddings"], hidden_dropout_prob=cfg["hidden_dropout_prob"],
    attention_probs_dropout_prob=cfg["attention_probs_dropout_prob"]))
model.config._attn_implementation = "eager"
t = run["train"]
no_decay = [n for n, _ in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
opt = torch.optim.AdamW([
    {"params": [p for n, p in model.named_parameters() if n not in no_decay], "weight_decay": t["weight_decay"]},
    {"params": [p for n, p in model.named_parameters() if n in no_decay], "weight_decay": 0.0},
], lr=t["lr"], eps=t["adam_eps"])
warmup = round(t["warmup"] * args.steps) if t["warmup"] < 1 else int(t["warmup"])
sched = get_linear_schedule_with_warmup(opt, warmup, args.steps)
g = np.random.default_rng(0)


def mask(batch, rng):
    inputs, labels = batch.copy(), np.full_like(batch, -100)
    special = (batch == 0) | (batch == 2) | (batch == 3)
    sel = (rng.random(batch.shape) < 0.15) & ~special
    labels[sel] = batch[sel]
    r = rng.random(batch.shape)
    inputs[sel & (r < 0.8)] = 4
    rand = sel & (r >= 0.8) & (r < 0.9)
    inputs[rand] = rng.integers(0, cfg["vocab_size"], rand.sum())
    return torch.tensor(inputs), torch.tensor(labels)


def evaluate():
    model.eval()
    rng = np.random.default_rng(1)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(val), 32):
            x, y = mask(val[i:i + 32], rng)
            logits = model(input_ids=x).logits
            k = (y != -100).sum().item()
            total += torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1), ignore_index=-100).item() * k
            count += k
    model.train()
    return total / count


model.train()
order = g.permutation(len(train))
for step in range(1, args.steps + 1):
    idx = order[(step - 1) * 32 % len(order):][:32]
    x, y = mask(train[idx], g)
    loss = model(input_ids=x, labels=y).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), t["max_grad_norm"])
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    if step % args.eval_every == 0:
        v = evaluate()
        print(f"step {step}: train loss {loss.item():.4f}, validation loss {v:.4f}, perplexity {math.exp(v):.1f}", flush=True)
