"""Hugging Face twin of `positio finetune classify` (single-label): the same checkpoint, data,
batch size, maximum length, AdamW, linear warm-up / decay and gradient clipping, in a plain
PyTorch loop (no Trainer overhead), with transformers' defaults a user gets: SDPA attention,
shuffled batches padded to their longest text (DataCollatorWithPadding). Prints the training
time of each epoch and the development accuracy.

    python3 bench/hf_classify.py --model DIR --train train.tsv --dev dev.tsv --epochs 1
    python3 bench/hf_classify.py --model DIR --train train.txt --dev dev.txt --encoding latin-1
"""
import argparse
import os
import random
import time

import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, get_linear_schedule_with_warmup

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--train", required=True)
p.add_argument("--dev", required=True)
p.add_argument("--encoding", default="utf-8")
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--lr", type=float, default=5e-5)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--warmup", type=float, default=0.1)
p.add_argument("--weight-decay", type=float, default=0.01)
p.add_argument("--max-len", type=int, default=128)
p.add_argument("--seed", type=int, default=42)
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--no-eval", action="store_true")
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
random.seed(args.seed)


def read(path):
    """(text, label) pairs of a `sentence<TAB>label` TSV with a header, or `sentence@label` lines."""
    lines = [l for l in open(path, encoding=args.encoding).read().splitlines() if l.strip()]
    if path.endswith(".tsv"):
        return [tuple(l.split("\t")[:2]) for l in lines[1:]]
    return [tuple(l.rsplit("@", 1)) for l in lines]


train, dev = read(args.train), read(args.dev)
labels = sorted({l for _, l in train}, key=lambda l: (not l.lstrip("-").isdigit(), int(l) if l.lstrip("-").isdigit() else 0, l))
label_id = {l: i for i, l in enumerate(labels)}
tok = AutoTokenizer.from_pretrained(args.model)


def encode(rows):
    return [dict(tok(t, truncation=True, max_length=args.max_len), labels=label_id[l]) for t, l in rows]


train_items, dev_items = encode(train), encode(dev)
model = AutoModelForSequenceClassification.from_pretrained(
    args.model, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_id)
collate = DataCollatorWithPadding(tok)
g = torch.Generator().manual_seed(args.seed)
loader = DataLoader(train_items, batch_size=args.batch_size, shuffle=True, collate_fn=collate, generator=g)
no_decay = ["bias", "LayerNorm.weight"]
groups = [
    {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)], "weight_decay": args.weight_decay},
    {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
]
opt = torch.optim.AdamW(groups, lr=args.lr, eps=1e-8)
total = len(loader) * args.epochs
sched = get_linear_schedule_with_warmup(opt, int(args.warmup * total), total)


def evaluate():
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(dev_items), 64):
            batch = collate(dev_items[i:i + 64])
            gold = batch.pop("labels")
            correct += (model(**batch).logits.argmax(-1) == gold).sum().item()
    model.train()
    return correct / len(dev_items)


model.train()
tokens = sum(len(x["input_ids"]) for x in train_items)
for epoch in range(args.epochs):
    start = time.perf_counter()
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    acc = "" if args.no_eval else f", dev accuracy {evaluate():.4f}"
    print(f"RESULT hf-epoch {epoch + 1} {seconds:.1f} s, {tokens / seconds:.0f} tokens/s{acc}", flush=True)
