"""PyTorch twin of `positio bench`: the same BERT-style model, batch and optimizer, timed the same
way (median of --steps after --warmup untimed steps).

    python3 bench/torch_bench.py --task train --mode eager
    python3 bench/torch_bench.py --task train --mode compile
    python3 bench/torch_bench.py --task train --mode hf          # transformers' BertForMaskedLM
    python3 bench/torch_bench.py --task encoder --model DIR       # e.g. all-MiniLM-L6-v2 (eager attention)
    python3 bench/torch_bench.py --task encoder --model DIR --mode sdpa   # attn_implementation="sdpa"
    python3 bench/torch_bench.py --task encoder --model DIR --mode ort    # ONNX export + onnxruntime
    python3 bench/torch_bench.py --task encoder --model DIR --mode ort-int8   # + quantize_dynamic
    python3 bench/torch_bench.py --task finetune --model DIR --data eng.train   # NER fine-tuning steps

Prints `RESULT torch-<mode>-<task> median_ms min_ms max_ms`; `--mode ort` prints
`RESULT ort-encoder ...`, `--mode ort-int8` `RESULT ort-int8-encoder ...`, and `--task finetune` prints `RESULT torch-hf-finetune ...` followed by a
`tokens/s <value>` line (real, non-padding tokens of the timed batches / their total time).

--task encoder runs 32 × 128 (pass --batch 32) deterministic input ids through transformers'
BertModel in eval mode under no_grad; --mode ort exports that model once with torch.onnx.export
(static shapes: the benchmark's batch and length, opset 17) into a temporary directory and runs it
with onnxruntime (intra_op_num_threads = --threads, ORT_ENABLE_ALL); --mode ort-int8 first runs
onnxruntime's quantize_dynamic on the export (per_channel=True, QInt8 weights: ORT's dynamic int8,
which `positio --precision int8` follows). `--save-onnx DIR` keeps the exported files there (for
bench/int8_quality.py).

--task finetune (the spec `positio bench --task finetune` follows): sentences of the CoNLL --data
file in file order (-DOCSTART- skipped), IOB1 tags converted to IOB2, labels O then B-/I- of each
entity type sorted alphabetically; words tokenised with the model's fast tokenizer
(is_split_into_words, [CLS] … [SEP], truncation at --len pieces), a word's label on its first
piece and -100 elsewhere; batch i = sentences [b·i, b·i + b) padded to its longest sequence;
BertForTokenClassification from --model (eager attention, checkpoint dropout, train mode); AdamW
(lr 5e-5, weight decay 0.01 except biases and LayerNorm weights, betas .9/.999, eps 1e-8), gradient
norm clipped at 1.0, constant lr. Step i (forward, loss, backward, clip, optimizer step, zero_grad)
uses batch i: warm-up steps take the first batches, timed steps the following ones.

Importable (bench/torch_profile.py): Bert, Layer, lcg, mlm_inputs, make_train_step, timed.
"""
import argparse
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, H, L, NH, FF, P, EPS = 30522, 256, 4, 4, 1024, 512, 1e-12
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def timed(fn, warmup, steps):
    """Calls fn `warmup` times untimed, then `steps` times; returns the timed durations in ms."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return ts


def mlm_inputs(batch=16, seq=128, loss_fraction=1.0):
    """The benchmark's deterministic MLM batch: (ids, attention_mask, positions, targets)."""
    ids = lcg(batch * seq, V, 42).view(batch, seq)
    attention_mask = torch.ones(batch, seq, dtype=torch.long)
    stride = max(1, round(1 / loss_fraction))
    positions = torch.arange(0, batch * seq, stride)
    targets = lcg(len(positions), V, 7)
    return ids, attention_mask, positions, targets


def make_eager_twin(batch=16, seq=128, loss_fraction=1.0):
    """Seeds torch, builds the eager twin and returns (model, loss_fn) for its MLM loss."""
    torch.manual_seed(0)
    ids, attention_mask, positions, targets = mlm_inputs(batch, seq, loss_fraction)
    model = Bert()
    nn.init.normal_(model.tok.weight, std=0.02)
    nn.init.normal_(model.pos.weight, std=0.02)
    gather = None if loss_fraction >= 1 else positions
    return model, lambda: F.cross_entropy(model(ids, attention_mask, gather), targets)


def make_train_step(model, loss_fn):
    """One AdamW training step of `loss_fn` (zero_grad, backward, step) as a callable."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, eps=1e-8)

    def step():
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def read_conll(path):
    """CoNLL-2003 (IOB1) sentences in file order as (words, IOB2 tags), -DOCSTART- skipped."""
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


def finetune(args):
    """Times NER fine-tuning steps (see the module docstring); returns (times_ms, tokens_per_s)."""
    from transformers import AutoTokenizer, BertForTokenClassification

    sents = read_conll(args.data)
    types = sorted({t[2:] for _, ts in sents for t in ts if t != "O"})
    labels = ["O"] + [f"{p}-{t}" for t in types for p in "BI"]
    label_id = {l: i for i, l in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(args.model)
    b, n = args.batch, args.warmup + args.steps
    if len(sents) < b * n:
        raise SystemExit(f"{args.data}: {len(sents)} sentences, {b * n} needed for {n} batches of {b}")

    batches = []
    for i in range(n):
        rows = []
        for words, tags in sents[b * i:b * i + b]:
            enc = tok(words, is_split_into_words=True, truncation=True, max_length=args.len)
            lab, prev = [], None
            for w in enc.word_ids():
                lab.append(-100 if w is None or w == prev else label_id[tags[w]])
                prev = w
            rows.append((enc["input_ids"], lab))
        width = max(len(ids) for ids, _ in rows)
        pad = lambda xs, v: xs + [v] * (width - len(xs))
        batches.append({
            "input_ids": torch.tensor([pad(ids, tok.pad_token_id) for ids, _ in rows]),
            "attention_mask": torch.tensor([pad([1] * len(ids), 0) for ids, _ in rows]),
            "labels": torch.tensor([pad(lab, -100) for _, lab in rows]),
        })

    torch.manual_seed(0)
    model = BertForTokenClassification.from_pretrained(
        args.model, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_id,
        attn_implementation="eager")
    model.train()
    no_decay = lambda name: "bias" in name or "LayerNorm.weight" in name
    groups = [
        {"params": [p for k, p in model.named_parameters() if not no_decay(k)], "weight_decay": 0.01},
        {"params": [p for k, p in model.named_parameters() if no_decay(k)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=5e-5, betas=(0.9, 0.999), eps=1e-8)
    it = iter(batches)

    def step():
        loss = model(**next(it)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    ts = timed(step, args.warmup, args.steps)
    tokens = sum(int(x["attention_mask"].sum()) for x in batches[args.warmup:])
    return ts, tokens / (sum(ts) / 1e3)


def ort_session(enc, batch, seq, threads, int8=False, keep=None, dynamic=False):
    """Exports `enc` (a BertModel) to ONNX with static shapes `batch` × `seq` (`dynamic`: any
    batch and length) into `keep` or a temporary directory, `int8`: then through onnxruntime's
    quantize_dynamic (per channel, QInt8 weights); returns an onnxruntime session."""
    import tempfile

    import onnxruntime as ort

    class Wrapped(nn.Module):  # keyword call, tensor output: what the exporters handle
        def __init__(self):
            super().__init__()
            self.enc = enc

        def forward(self, input_ids, attention_mask):
            return self.enc(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    folder = keep or tempfile.mkdtemp(prefix="positio-ort-")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "encoder.onnx")
    wrapped = Wrapped().eval()
    ids = torch.zeros(batch, seq, dtype=torch.long)
    inputs = (ids, torch.ones_like(ids))
    common = dict(input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"], opset_version=17)
    if dynamic:
        common["dynamic_axes"] = {name: {0: "batch", 1: "sequence"}
                                  for name in ["input_ids", "attention_mask", "last_hidden_state"]}
    try:  # the dynamo exporter is the default in recent torch (needs onnxscript)
        torch.onnx.export(wrapped, inputs, path, **common)
    except Exception as e:  # noqa: BLE001 - any exporter failure: use the TorchScript exporter
        print(f"torch.onnx.export (default exporter) failed ({type(e).__name__}); using dynamo=False",
              file=__import__("sys").stderr)
        torch.onnx.export(wrapped, inputs, path, dynamo=False, **common)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = os.path.join(folder, "encoder-int8.onnx")
        quantize_dynamic(path, quantized, per_channel=True, weight_type=QuantType.QInt8)
        path = quantized
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="train", choices=["train", "forward", "encoder", "finetune"])
    p.add_argument("--mode", default="eager", choices=["eager", "compile", "hf", "sdpa", "ort", "ort-int8"])
    p.add_argument("--batch", type=int, default=None, help="default 16 (32 for --task finetune)")
    p.add_argument("--len", type=int, default=128)
    p.add_argument("--loss-fraction", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--model", default=None)
    p.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "conll2003", "eng.train"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--save-onnx", default=None, help="keep the ONNX export(s) in this directory")
    args = p.parse_args()
    if args.batch is None:
        args.batch = 32 if args.task == "finetune" else 16
    if args.mode in ("sdpa", "ort", "ort-int8") and args.task != "encoder":
        p.error(f"--mode {args.mode} is only for --task encoder")
    if args.task == "finetune" and args.mode not in ("eager", "hf"):
        p.error("--task finetune runs transformers' BertForTokenClassification (eager attention) only")
    if args.task in ("encoder", "finetune") and not args.model:
        p.error(f"--task {args.task} needs --model DIR")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, S = args.batch, args.len
    ids, attention_mask, positions, targets = mlm_inputs(B, S, args.loss_fraction)
    name = f"torch-{args.mode}-{args.task}"
    timed_ = lambda fn: timed(fn, args.warmup, args.steps)

    if args.task == "finetune":
        ts, tps = finetune(args)
        print(f"RESULT torch-hf-finetune {statistics.median(ts):.1f} {min(ts):.1f} {max(ts):.1f}")
        print(f"tokens/s {tps:.0f}")
        return
    if args.task == "encoder":
        from transformers import AutoModel

        attn = "sdpa" if args.mode == "sdpa" else "eager"
        enc = AutoModel.from_pretrained(args.model, attn_implementation=attn).eval()
        ids = lcg(B * S, enc.config.vocab_size, 42).view(B, S)
        if args.mode in ("ort", "ort-int8"):
            name = f"{args.mode}-encoder"
            sess = ort_session(enc, B, S, args.threads, int8=args.mode == "ort-int8", keep=args.save_onnx)
            feed = {"input_ids": ids.numpy(), "attention_mask": attention_mask.numpy()}
            ts = timed_(lambda: sess.run(["last_hidden_state"], feed))
        else:
            if args.mode == "compile":
                enc = torch.compile(enc)
            with torch.no_grad():
                ts = timed_(lambda: enc(input_ids=ids, attention_mask=attention_mask).last_hidden_state)
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
            ts = timed_(make_train_step(model, lambda: model(input_ids=ids, attention_mask=attention_mask, labels=labels).loss))
        else:
            model.eval()
            with torch.no_grad():
                ts = timed_(lambda: model(input_ids=ids, attention_mask=attention_mask).logits)
    else:
        model, loss_fn = make_eager_twin(B, S, args.loss_fraction)
        if args.mode == "compile":
            loss_fn = torch.compile(loss_fn)
        if args.task == "train":
            ts = timed_(make_train_step(model, loss_fn))
        else:
            model.eval()
            fwd = torch.compile(model) if args.mode == "compile" else model
            with torch.no_grad():
                ts = timed_(lambda: fwd(ids, attention_mask))

    print(f"RESULT {name} {statistics.median(ts):.1f} {min(ts):.1f} {max(ts):.1f}")


if __name__ == "__main__":
    main()
