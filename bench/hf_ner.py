"""Hugging Face twin of `positio finetune ner`: the same checkpoint, data, first-word-piece
labelling, batch size, AdamW and linear warm-up / decay, in a plain PyTorch loop (no Trainer
overhead). Prints the training time of each epoch and the development scores (seqeval).

    python3 bench/hf_ner.py --model DIR --train eng.train --dev eng.testa --epochs 1
"""
import argparse
import os
import random
import time

import torch
from seqeval.metrics import f1_score
from torch.utils.data import DataLoader
from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification, get_linear_schedule_with_warmup

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--train", required=True)
p.add_argument("--dev", required=True)
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
    """CoNLL-2003 (IOB1) sentences, tags converted to IOB2."""
    sents, words, tags = [], [], []
    for line in open(path, encoding="utf-8"):
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if words:
                sents.append((words, tags))
                words, tags = [], []
            continue
        words.append(parts[0])
        tags.append(parts[-1])
    if words:
        sents.append((words, tags))
    out = []
    for w, t in sents:
        iob2, prev = [], "O"
        for tag in t:
            if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
                iob2.append("B-" + tag[2:])
            else:
                iob2.append(tag)
            prev = tag
        out.append((w, iob2))
    return out


train, dev = read(args.train), read(args.dev)
types = sorted({t[2:] for _, ts in train for t in ts if t != "O"})
labels = ["O"] + [f"{p}-{t}" for t in types for p in "BI"]
label_id = {l: i for i, l in enumerate(labels)}
tok = AutoTokenizer.from_pretrained(args.model)


def encode(sents):
    items = []
    for words, tags in sents:
        enc = tok(words, is_split_into_words=True, truncation=True, max_length=args.max_len)
        lab, prev = [], None
        for w in enc.word_ids():
            lab.append(-100 if w is None or w == prev else label_id[tags[w]])
            prev = w
        items.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": lab})
    return items


train_items, dev_items = encode(train), encode(dev)
model = AutoModelForTokenClassification.from_pretrained(
    args.model, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_id, attn_implementation="eager"
)
collate = DataCollatorForTokenClassification(tok)
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
    preds, golds = [], []
    with torch.no_grad():
        for i in range(0, len(dev_items), 64):
            batch = collate(dev_items[i:i + 64])
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.argmax(-1)
            for lg, lb in zip(logits.tolist(), batch["labels"].tolist()):
                preds.append([labels[p] for p, l in zip(lg, lb) if l != -100])
                golds.append([labels[l] for l in lb if l != -100])
    model.train()
    return f1_score(golds, preds)


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
    f1 = "" if args.no_eval else f", dev entity F1 {evaluate():.4f} (truncated at {args.max_len} pieces)"
    print(f"RESULT hf-epoch {epoch + 1} {seconds:.1f} s, {tokens / seconds:.0f} tokens/s{f1}", flush=True)
