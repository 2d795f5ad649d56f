"""positio from Python: Transformer encoders in Rust.

The objects wrap the same Rust code the `positio` command line and server run (no second
implementation), release the GIL while they compute, and raise `PositioError` with the command
line's messages:

- `Encoder.load(dir)`: `.embed(texts)` (a NumPy float32 array that owns the Rust buffer),
  `.encode(...)` (sentence-transformers' signature), `.tokenize(text)`, `.info()`;
- `Classifier.load(dir).predict(texts)`, `Tagger.load(dir).entities(texts)` (NER, character
  offsets), `Reranker.load(dir).scores(query, passages)`;
- `Index(path)` / `Index.build(path, model, documents)`: `.add`, `.delete`, `.search`;
- `Recommender.load(model, news).rank(history)`;
- `finetune(task, out, model=..., train=..., dev=..., **options)`: the CLI's `finetune`, progress
  on `sys.stderr`, Ctrl-C saves a checkpoint (`resume=True` continues);
- `pretrain(out, data={"corpus": [...]}, model={...}, train={...})`: the CLI's `pretrain`;
- `set_precision("fp32" | "bf16" | "int8")`;
- `SentenceTransformer(path)`: a drop-in for code that only calls `.encode`.
"""

from pathlib import Path

from ._positio import (
    Classifier,
    Encoder,
    Index,
    PositioError,
    Recommender,
    Reranker,
    Tagger,
    __version__,
    set_precision,
)
from ._positio import finetune as _finetune
from ._positio import pretrain as _pretrain

__all__ = [
    "Classifier",
    "Encoder",
    "Index",
    "PositioError",
    "Recommender",
    "Reranker",
    "SentenceTransformer",
    "Tagger",
    "__version__",
    "finetune",
    "pretrain",
    "set_precision",
]


def _plain(value):
    """Paths as strings, inside lists and dicts too (options travel as TOML)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def finetune(task, out, *, resume=False, config=None, device="cpu", **options):
    """Fine-tunes a model as `positio finetune TASK` does; returns the run directory (a Path).

    `task`: "ner", "classify", "embed", "rerank" or "recommend". `options`: keys of the task's
    table (`model`, `train`, `dev`, `max_len`, ...) and of `[train]` (`lr`, `epochs`,
    `batch_size`, `save_every`, ...), as in the run's `run.toml`. Paths may be `Path`s.
    """
    return Path(_finetune(task, str(out), resume=resume, config=None if config is None else str(config),
                          device=device, **_plain(options)))


def pretrain(out, *, resume=False, config=None, device="cpu", **tables):
    """Pretrains as `positio pretrain` does; returns the run directory (a Path).

    `tables`: the tables of a pretraining config as dicts: `data={"corpus": [files]}`,
    `tokenizer={"vocab_size": 8000}`, `model={"position": "rope", "layers": 4, ...}`,
    `objective={"kind": "mlm"}`, `train={"steps": 1000, "lr": 5e-4}`.
    """
    return Path(_pretrain(str(out), resume=resume, config=None if config is None else str(config),
                          device=device, **_plain(tables)))


class SentenceTransformer:
    """The part of sentence_transformers.SentenceTransformer most code uses, on positio:
    `SentenceTransformer(path).encode(sentences, batch_size=32, normalize_embeddings=...)`.
    Embeddings are L2-normalised by default (as the model's `2_Normalize` module does for
    all-MiniLM-L6-v2); `convert_to_numpy` and other sentence-transformers options are accepted
    and ignored (the result is always a NumPy array)."""

    def __init__(self, model_name_or_path, device="cpu"):
        self._encoder = Encoder.load(str(model_name_or_path), device=device)

    def encode(self, sentences, batch_size=32, normalize_embeddings=True, **kwargs):
        return self._encoder.encode(sentences, batch_size=batch_size,
                                    normalize_embeddings=normalize_embeddings, **kwargs)

    def get_sentence_embedding_dimension(self):
        return self._encoder.dimension
