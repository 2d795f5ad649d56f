"""PyTorch DDP side of bench/distributed_scaling.sh: masked-LM pretraining steps of a BERT
(transformers' BertForMaskedLM, the shape positio trains) on a packed positio corpus, with the
gloo backend, one thread per process, the global batch split across the processes as positio
splits it.

    python bench/ddp_reference.py --packed DIR --layers 6 --hidden 384 --heads 12 --ffn 1536 \
        --batch-size 16 --len 128 --steps 6
    torchrun --nproc_per_node 2 bench/ddp_reference.py … (the same flags)

Prints one line: `RESULT ddp ranks=N step_ms=… allreduce_ms=…` (median over the steps after
two warm-up steps); allreduce_ms is a separate, synchronous all-reduce of a buffer the size of
the gradients, timed after training (DDP overlaps its own with backward).
"""

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.distributed as dist
from transformers import BertConfig, BertForMaskedLM

p = argparse.ArgumentParser()
p.add_argument("--packed", required=True)
p.add_argument("--layers", type=int, required=True)
p.add_argument("--hidden", type=int, required=True)
p.add_argument("--heads", type=int, required=True)
p.add_argument("--ffn", type=int, required=True)
p.add_argument("--batch-size", type=int, required=True)
p.add_argument("--len", type=int, required=True)
p.add_argument("--steps", type=int, default=6)
a = p.parse_args()

torch.set_num_threads(1)
world = int(os.environ.get("WORLD_SIZE", "1"))
rank = int(os.environ.get("RANK", "0"))
if world > 1:
    dist.init_process_group("gloo")

index = json.load(open(os.path.join(a.packed, "corpus.json")))
dtype = np.uint16 if index["token_bytes"] == 2 else np.uint32
stream = np.concatenate(
    [np.fromfile(os.path.join(a.packed, f), dtype=dtype) for f, _ in index["train"]["shards"]]
).astype(np.int64)
vocab = json.load(open(os.path.join(a.packed, "tokenizer.json")))["model"]["vocab"]
cls_id, sep_id, mask_id = vocab["[CLS]"], vocab["[SEP]"], vocab["[MASK]"]

torch.manual_seed(0)
config = BertConfig(
    vocab_size=len(vocab),
    hidden_size=a.hidden,
    num_hidden_layers=a.layers,
    num_attention_heads=a.heads,
    intermediate_size=a.ffn,
    max_position_embeddings=max(512, a.len),
)
model = BertForMaskedLM(config).train()
ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)

body = a.len - 2
local = a.batch_size // world
gen = torch.Generator().manual_seed(1)


def batch(step):
    """Rank `rank`'s rows of the global batch `step`: packed sequences, BERT masking."""
    rows = []
    for r in range(a.batch_size):
        i = (step * a.batch_size + r) % (len(stream) // body)
        rows.append([cls_id] + stream[i * body : (i + 1) * body].tolist() + [sep_id])
    ids = torch.tensor(rows[rank * local : (rank + 1) * local])
    labels = ids.clone()
    chosen = torch.rand(ids.shape, generator=gen) < 0.15
    chosen[:, 0] = chosen[:, -1] = False
    labels[~chosen] = -100
    ids = ids.masked_fill(chosen & (torch.rand(ids.shape, generator=gen) < 0.8), mask_id)
    return ids, labels


times = []
for step in range(a.steps):
    ids, labels = batch(step)
    if world > 1:
        dist.barrier()
    t = time.perf_counter()
    loss = ddp(input_ids=ids, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    times.append(time.perf_counter() - t)

reduce_ms = 0.0
if world > 1:
    n = sum(p.numel() for p in model.parameters())
    buf = torch.zeros(n)
    samples = []
    for _ in range(3):
        dist.barrier()
        t = time.perf_counter()
        dist.all_reduce(buf)
        samples.append(time.perf_counter() - t)
    reduce_ms = 1000 * statistics.median(samples)
if rank == 0:
    step_ms = 1000 * statistics.median(times[2:])
    params = sum(p.numel() for p in model.parameters())
    print(
        f"RESULT ddp ranks={world} params={params} step_ms={step_ms:.1f} allreduce_ms={reduce_ms:.1f}",
        flush=True,
    )
if world > 1:
    dist.destroy_process_group()
