"""The PyTorch side of bench/gpu_check.sh, runnable where only PyTorch + transformers exist
(the lent GPU machine: no Rust, no internet).

    python bench/gpu_reference.py make --out DIR --shape minilm|base|tiny
        a random-weight BertForMaskedLM (seed 0) with a synthetic 30,522-word WordPiece
        vocabulary, saved with tokenizer.json (nothing downloaded)
    python bench/gpu_reference.py embed --model DIR --texts FILE --device cuda [--dtype bf16]
        mean-pooled, L2-normalised sentence embeddings, one JSON line per text (positio embed's
        format)
    python bench/gpu_reference.py time --task forward|train --model DIR --device cuda
        --batch 32 --len 128 [--mode eager|compile] [--dtype fp32|bf16]
        median ms of 10 steps after 3 warm-ups: `RESULT name median min max`. forward: the
        encoder's last hidden states (SDPA attention); train: BertForMaskedLM from the saved
        weights, on `positio bench --task train`'s deterministic batch (the same LCG ids and
        targets), loss at every position, backward, AdamW as positio's (lr 1e-4, betas 0.9 /
        0.999, eps 1e-8, weight decay 0.01 except biases and LayerNorm, no clipping); bf16:
        torch.autocast with fp32 master weights. Also prints `LOSSES` of every step, warm-up
        included, for the loss-curve parity.
"""
import argparse
import json
import os
import statistics
import time

import torch
from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizerFast

from torch_bench import lcg  # positio bench's deterministic ids (src/tools/bench.rs `ids`)

SHAPES = {  # layers, hidden, heads, ffn
    "tiny": (2, 64, 4, 256),
    "minilm": (6, 384, 12, 1536),
    "base": (12, 768, 12, 3072),
}
VOCAB = 30522


def make(args):
    layers, hidden, heads, ffn = SHAPES[args.shape]
    os.makedirs(args.out, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words += list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-")
    words += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    common = ("the of and to in a is that for it as was with be by on not he this are or his from at "
              "which but have an they you were her she there been one all we their has would when if "
              "so no out up into do can more what its about who other than then some could time "
              "these two may first only new very made after any where most over such our man also "
              "market shares company said percent year bank prices trade government oil").split()
    words += [w for w in common if w not in words]
    i = 0
    while len(words) < VOCAB:
        words.append(f"w{i}")
        i += 1
    vocab = os.path.join(args.out, "vocab.txt")
    with open(vocab, "w") as f:
        f.write("\n".join(words) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=vocab, do_lower_case=True, model_max_length=512)
    tokenizer.save_pretrained(args.out)
    # No dropout: both sides then compute the same deterministic training steps.
    config = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=512,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(args.out)
    print(f"wrote {args.out}: {args.shape} ({layers} layers, hidden {hidden})")


def device_of(args):
    return torch.device(args.device)


def embed(args):
    dev = device_of(args)
    tokenizer = BertTokenizerFast.from_pretrained(args.model)
    model = BertModel.from_pretrained(args.model, add_pooling_layer=False, attn_implementation="sdpa").to(dev).eval()
    texts = [t.rstrip("\n") for t in open(args.texts) if t.strip()]
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    with torch.no_grad(), torch.autocast(dev.type, dtype=dtype, enabled=args.dtype == "bf16"):
        for t in texts:
            enc = tokenizer(t, return_tensors="pt", truncation=True, max_length=512).to(dev)
            h = model(**enc).last_hidden_state.float()
            m = enc["attention_mask"].unsqueeze(-1).float()
            e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)[0]
            print(json.dumps({"text": t, "embedding": e.cpu().tolist()}))


def timed(fn, sync, warmup=3, steps=10):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), min(times), max(times)


def time_task(args):
    dev = device_of(args)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    ids = lcg(args.batch * args.len, VOCAB, 42).view(args.batch, args.len).to(dev)
    mask = torch.ones_like(ids)
    losses = []
    bf16 = args.dtype == "bf16"
    if args.task == "forward":
        model = BertModel.from_pretrained(args.model, add_pooling_layer=False, attn_implementation="sdpa").to(dev).eval()
        run = torch.compile(model) if args.mode == "compile" else model

        def step():
            with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                run(input_ids=ids, attention_mask=mask).last_hidden_state.float().sum().item()
    else:
        model = BertForMaskedLM.from_pretrained(args.model, attn_implementation="sdpa").to(dev).train()
        run = torch.compile(model) if args.mode == "compile" else model
        decay = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or "LayerNorm" in n)]
        rest = [p for n, p in model.named_parameters() if n.endswith(".bias") or "LayerNorm" in n]
        optim = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                  lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
        labels = lcg(args.batch * args.len, VOCAB, 7).view(args.batch, args.len).to(dev)

        def step():
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                loss = run(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optim.step()
            optim.zero_grad(set_to_none=True)
            losses.append(loss.item())
    med, lo, hi = timed(step, sync, args.warmup, args.steps)
    name = f"torch-{args.mode}-{args.task}-{args.dtype}"
    print(f"RESULT {name} {med:.3f} {lo:.3f} {hi:.3f}")
    if losses:
        print("LOSSES " + " ".join(f"{x:.6f}" for x in losses))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", required=True)
    m.add_argument("--shape", choices=list(SHAPES), required=True)
    e = sub.add_parser("embed")
    e.add_argument("--model", required=True)
    e.add_argument("--texts", required=True)
    e.add_argument("--device", default="cuda")
    e.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    t = sub.add_parser("time")
    t.add_argument("--task", choices=["forward", "train"], required=True)
    t.add_argument("--model", required=True)
    t.add_argument("--device", default="cuda")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--len", type=int, default=128)
    t.add_argument("--mode", choices=["eager", "compile"], default="eager")
    t.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    t.add_argument("--steps", type=int, default=10)
    t.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, as positio computes it
    {"make": make, "embed": embed, "time": time_task}[args.command](args)


if __name__ == "__main__":
    main()
