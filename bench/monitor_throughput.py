"""The Python twin of `positio monitor run`'s annotation and storage, for its items/s.

Runs the monitor's three models through Hugging Face `transformers` the way a Python user
would, in a Python loop over a stream file (one JSON item a line, as `positio monitor run
--source` reads it), and stores every item with its annotation in SQLite, so that the figure
compares with the monitor's end-to-end items/s:

    /work/.venv-bench/bin/python bench/monitor_throughput.py --stream DIR/stream.jsonl \
        --sentiment runs/monitor/sentiment --topics runs/monitor/topics \
        --entities runs/monitor/entities [--batch-size 32] [--limit N] [--threads 2] [--db PATH] \
        [--int8]

Any of the three models may be left out (e.g. while one is still training). Prints the
machine (CPU model, torch and transformers versions, threads), the time per stage and, last,
one JSON line: {"cpu", "torch", "transformers", "threads", "batch_size", "items", "seconds",
"items_per_s", "load_seconds", "wall_seconds", "stages": {...}}. `seconds` / `items_per_s`
cover reading, annotating and storing (the loop); `wall_seconds` adds the imports and model
loading, as timing the whole `positio monitor run` command would.

What each model does, as positio does it:
- sentiment: `pipeline("text-classification", top_k=None)`, texts cut at the word-piece length
  the model was fine-tuned with (`window_length` in its config.json, 128 here; positio's
  `ClassifierModel` cuts there too); label = argmax, negative = P(negative), score =
  P(positive) - P(negative). A mean-pooling sentiment model is computed as the topics model
  below is, with a softmax.
- topics: a mean-pooling classifier (config.json `classifier_pooling: "mean"`, so positio saves
  it with `model_type: "positio"` and `transformers` refuses to load it). It is computed here
  explicitly: `BertModel` (no pooler) on the `bert.*` weights of model.safetensors, the mean of
  the last hidden states over real tokens (attention mask), the `classifier` linear layer, a
  sigmoid, and every label at or above the config's `decision_threshold`. Batched like a
  pipeline (padding to the longest text of each batch, same truncation as sentiment).
- entities: `pipeline("token-classification", aggregation_strategy="first")` (positio labels
  a word by its first piece), with the tokenizer's length set to the model's `window_length`
  and `stride` half of it, so that long texts are read whole in half-overlapping windows as
  positio does; ORG / PER / LOC names (the text's own characters), each once per item.

With `--int8`, every Linear layer of the three models is quantized by torch's
`quantize_dynamic` (qint8), the int8 counterpart of `positio monitor run --precision int8`.

Models read `title + ". " + text` (just `text` without a title), as the monitor's models do.
Nothing is downloaded: HF_HUB_OFFLINE=1 and local directories only.

Storage mirrors the monitor's store: WAL, synchronous=FULL, one transaction per batch, the
`items` table (annotation as JSON), the item's series memberships ("all", "topic:x",
"entity:x") and the per-window counts. The spike rule itself (a few arithmetic operations per
closed window) is not repeated.
"""
import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

WALL0 = time.perf_counter()

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, BertConfig, BertModel, pipeline  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

ENTITY_TYPES = ("ORG", "PER", "LOC")


def read_config(model_dir):
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        return json.load(f)


def max_len_of(config):
    """The word pieces per text positio reads: the fine-tuning length, else the position limit."""
    limit = config.get("max_position_embeddings", 512)
    return min(config.get("window_length") or limit, limit)


def labels_of(config):
    id2label = config.get("id2label") or {}
    return [id2label[str(i)] if str(i) in id2label else id2label[i] for i in range(len(id2label))]


def content(item):
    """What the monitor's models read: the title and the text."""
    title = item.get("title")
    if title and title.strip():
        return f"{title}. {item['text']}"
    return item["text"]


def quantize(module):
    """torch's dynamic int8 quantization of every Linear layer (per-tensor weights, activations
    quantized per batch), the int8 path a PyTorch user has without exporting the model."""
    from torch.ao.quantization import quantize_dynamic

    return quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


class Sentiment:
    """A single-label classifier with a "negative" label: through the text-classification
    pipeline ([CLS] pooling, a BertForSequenceClassification checkpoint), or written out as
    MeanPoolClassifier when the model pools by the mean (transformers has no such class)."""

    def __init__(self, model_dir, batch_size, int8=False):
        config = read_config(model_dir)
        labels = [l.lower() for l in labels_of(config)]
        if "negative" not in labels or config.get("problem_type") == "multi_label_classification":
            sys.exit(f"{model_dir}: not a sentiment model (labels {labels})")
        self.max_len = max_len_of(config)
        self.batch_size = batch_size
        self.labels = labels_of(config)
        if config.get("classifier_pooling", "cls") == "mean":
            self.pipe, self.mean = None, MeanPoolClassifier(model_dir, batch_size, int8)
        else:
            self.mean = None
            self.pipe = pipeline("text-classification", model=model_dir, top_k=None, device="cpu")
            if int8:
                self.pipe.model = quantize(self.pipe.model)

    def scores(self, texts):
        """Per text, [{"label", "score"}] for every label."""
        if self.mean is not None:
            return [[{"label": l, "score": x} for l, x in zip(self.labels, p)]
                    for p in self.mean.probabilities(list(texts))]
        return self.pipe(list(texts), batch_size=self.batch_size, truncation=True,
                         max_length=self.max_len)

    def __call__(self, texts):
        out = []
        results = self.scores(texts)
        assert len(results) == len(texts), "one result per text"
        for scores in results:
            p = {s["label"].lower(): s["score"] for s in scores}
            best = max(scores, key=lambda s: s["score"])["label"]
            out.append({
                "sentiment": best,
                "negative": p["negative"],
                "score": p.get("positive", 0.0) - p["negative"],
            })
        return out


class MeanPoolClassifier(torch.nn.Module):
    """positio's mean-pooling multi-label classifier, written out: BERT encoder, masked mean of
    the last hidden states, linear head, sigmoid, the model's own decision threshold."""

    def __init__(self, model_dir, batch_size, int8=False):
        super().__init__()
        from safetensors.torch import load_file

        c = read_config(model_dir)
        pooling = c.get("classifier_pooling", "cls")
        problems = []
        if pooling != "mean":
            problems.append(f"classifier_pooling is {pooling!r}, not 'mean'")
        for key, want in (("position_embedding_type", "absolute"), ("norm_position", "post"),
                          ("arch", "transformer")):
            if c.get(key, want) != want:
                problems.append(f"{key} is {c[key]!r}: BertModel would compute another model")
        if c.get("causal") or c.get("is_decoder"):
            problems.append("a causal encoder")
        if problems:
            sys.exit(f"{model_dir}: " + "; ".join(problems))
        self.labels = labels_of(c)
        self.multi_label = c.get("problem_type") == "multi_label_classification"
        self.threshold = c.get("decision_threshold", 0.5)
        self.max_len = max_len_of(c)
        self.batch_size = batch_size
        keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "hidden_act", "max_position_embeddings", "type_vocab_size",
                "layer_norm_eps", "pad_token_id")
        self.bert = BertModel(BertConfig(**{k: c[k] for k in keys if k in c}), add_pooling_layer=False)
        weights = load_file(os.path.join(model_dir, "model.safetensors"))
        encoder = {k[len("bert."):]: v for k, v in weights.items() if k.startswith("bert.")}
        result = self.bert.load_state_dict(encoder, strict=False)
        missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
        unexpected = [k for k in result.unexpected_keys if not k.startswith("pooler.")]
        if missing or unexpected:
            sys.exit(f"{model_dir}: weights do not fit BertModel: missing {missing[:5]}, "
                     f"unexpected {unexpected[:5]}")
        w = weights["classifier.weight"]
        self.classifier = torch.nn.Linear(w.shape[1], w.shape[0])
        self.classifier.load_state_dict({"weight": w, "bias": weights["classifier.bias"]})
        if w.shape[0] != len(self.labels):
            sys.exit(f"{model_dir}: {w.shape[0]} classifier rows for {len(self.labels)} labels")
        # model_type "positio" is no AutoConfig type, but tokenizer_config.json names the class.
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.eval()
        if int8:
            self.bert, self.classifier = quantize(self.bert), quantize(self.classifier)

    @torch.inference_mode()
    def probabilities(self, texts):
        out = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(texts[i:i + self.batch_size], padding=True, truncation=True,
                                 max_length=self.max_len, return_tensors="pt")
            hidden = self.bert(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                               token_type_ids=enc.get("token_type_ids")).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            logits = self.classifier(pooled)
            probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, -1)
            out.extend(probs.tolist())
        return out

    def __call__(self, texts):
        out = []
        for p in self.probabilities(texts):
            if self.multi_label:
                chosen = [self.labels[c] for c, x in enumerate(p) if x >= self.threshold]
            else:
                chosen = [self.labels[max(range(len(p)), key=p.__getitem__)]]
            out.append({"topics": chosen})
        return out


class Entities:
    """ORG / PER / LOC names through the token-classification pipeline, whole texts in windows."""

    def __init__(self, model_dir, batch_size, int8=False):
        config = read_config(model_dir)
        window = max_len_of(config)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        tokenizer.model_max_length = window
        self.batch_size = batch_size
        self.stride = window // 2
        self.pipe = pipeline("token-classification", model=model_dir, tokenizer=tokenizer,
                             aggregation_strategy="first", device="cpu")
        if int8:
            self.pipe.model = quantize(self.pipe.model)

    def __call__(self, texts):
        out = []
        results = self.pipe(list(texts), batch_size=self.batch_size, stride=self.stride)
        assert len(results) == len(texts), "one list of entities per text"
        for text, found in zip(texts, results):
            names = []
            for e in found:
                name = text[e["start"]:e["end"]].strip() if e.get("start") is not None else e["word"].strip()
                if e.get("entity_group") in ENTITY_TYPES and name and name not in names:
                    names.append(name)
            out.append({"entities": names})
        return out


def load_models(sentiment=None, topics=None, entities=None, batch_size=32, int8=False):
    """The models that are given, by role."""
    models = {}
    if sentiment:
        models["sentiment"] = Sentiment(sentiment, batch_size, int8)
    if topics:
        models["topics"] = MeanPoolClassifier(topics, batch_size, int8)
    if entities:
        models["entities"] = Entities(entities, batch_size, int8)
    return models


def annotate(models, texts, stages=None):
    """One annotation dict per text, as the monitor's `Annotation` (absent parts empty)."""
    out = [{"sentiment": None, "negative": None, "score": None, "topics": [], "entities": []}
           for _ in texts]
    for role in ("sentiment", "topics", "entities"):
        if role not in models:
            continue
        t0 = time.perf_counter()
        for a, part in zip(out, models[role](texts)):
            a.update(part)
        if stages is not None:
            stages[role] = stages.get(role, 0.0) + time.perf_counter() - t0
    return out


SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, time INTEGER NOT NULL, source TEXT, title TEXT, text TEXT NOT NULL,
    annotation TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
    series TEXT NOT NULL, item TEXT NOT NULL, time INTEGER NOT NULL, negative INTEGER NOT NULL,
    PRIMARY KEY (series, item));
CREATE TABLE IF NOT EXISTS windows (
    series TEXT NOT NULL, start INTEGER NOT NULL, count INTEGER NOT NULL,
    negative INTEGER NOT NULL, sentiment REAL NOT NULL, expected REAL NOT NULL,
    PRIMARY KEY (series, start));
"""


def unix_seconds(stamp):
    from datetime import datetime

    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def store(conn, batch, annotations, width):
    """One transaction: the items, their series memberships and window counts."""
    added = 0
    with conn:
        for item, a in zip(batch, annotations):
            t = unix_seconds(item["time"])
            cur = conn.execute(
                "INSERT OR IGNORE INTO items (id, time, source, title, text, annotation) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (item["id"], t, item.get("source"), item.get("title"), item["text"], json.dumps(a)))
            if cur.rowcount == 0:
                continue
            added += 1
            negative = int((a["sentiment"] or "").lower() == "negative")
            start = t - t % width
            series = ["all"] + [f"topic:{x}" for x in a["topics"]] + [f"entity:{x}" for x in a["entities"]]
            for s in series:
                conn.execute("INSERT INTO memberships (series, item, time, negative) VALUES (?, ?, ?, ?)",
                             (s, item["id"], t, negative))
                conn.execute(
                    "INSERT INTO windows (series, start, count, negative, sentiment, expected) "
                    "VALUES (?, ?, 1, ?, ?, ?) "
                    "ON CONFLICT (series, start) DO UPDATE SET count = count + 1, "
                    "negative = negative + excluded.negative, sentiment = sentiment + excluded.sentiment, "
                    "expected = expected + excluded.expected",
                    (s, start, negative, a["score"] or 0.0, a["negative"] or 0.0))
    return added


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stream", required=True, help="items, one JSON object a line")
    p.add_argument("--sentiment")
    p.add_argument("--topics")
    p.add_argument("--entities")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, help="at most this many items")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--int8", action="store_true",
                   help="quantize every Linear layer to int8 (torch's quantize_dynamic)")
    p.add_argument("--window", type=int, default=600, help="window width in seconds (storage)")
    p.add_argument("--db", help="SQLite file (default: a temporary one, removed at the end)")
    args = p.parse_args()
    if not (args.sentiment or args.topics or args.entities):
        p.error("give at least one of --sentiment, --topics, --entities")
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    if args.int8:
        import warnings

        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantiz.*")
    models = load_models(args.sentiment, args.topics, args.entities, args.batch_size, args.int8)
    load_seconds = time.perf_counter() - t0

    tmp = None
    if args.db:
        db = args.db
    else:
        tmp = tempfile.TemporaryDirectory(prefix="monitor-throughput-")
        db = os.path.join(tmp.name, "store.sqlite")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SCHEMA)

    stages = {}
    items = stored = malformed = 0
    start = time.perf_counter()

    def flush(batch):
        nonlocal stored
        annotations = annotate(models, [content(i) for i in batch], stages)
        t = time.perf_counter()
        stored += store(conn, batch, annotations, args.window)
        stages["storage"] = stages.get("storage", 0.0) + time.perf_counter() - t

    batch = []
    with open(args.stream, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            if args.limit is not None and items >= args.limit:
                break
            try:
                item = json.loads(line)
                if not isinstance(item, dict) or not item.get("id") or "time" not in item \
                        or not isinstance(item.get("text"), str):
                    raise ValueError("not an item")
                unix_seconds(item["time"])
            except ValueError:
                malformed += 1
                continue
            items += 1
            batch.append(item)
            if len(batch) == args.batch_size:
                flush(batch)
                batch = []
    if batch:
        flush(batch)
    seconds = time.perf_counter() - start
    conn.close()
    if tmp is not None:
        tmp.cleanup()

    result = {
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "int8": args.int8,
        "models": {r: getattr(args, r) for r in ("sentiment", "topics", "entities") if getattr(args, r)},
        "items": items,
        "stored": stored,
        "malformed": malformed,
        "seconds": round(seconds, 3),
        "items_per_s": round(items / seconds, 2) if seconds > 0 else None,
        "load_seconds": round(load_seconds, 3),
        "wall_seconds": round(time.perf_counter() - WALL0, 3),
        "stages": {k: round(v, 3) for k, v in stages.items()},
    }
    print(f"CPU: {result['cpu']}")
    print(f"torch {result['torch']}, transformers {result['transformers']}, {result['threads']} threads, "
          f"batch size {args.batch_size}")
    print("stages (s): " + ", ".join(f"{k} {v}" for k, v in result["stages"].items()))
    print(f"{items} items in {seconds:.2f} s: {result['items_per_s']} items/s "
          f"(model loading {load_seconds:.2f} s, wall {result['wall_seconds']:.2f} s)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
