"""A replayable news stream with known negative bursts, and the scoring of a monitor's alerts.

How to run (from the project root, the models of experiments/monitor_models.sh):

    PY=/work/.venv-bench/bin/python
    $PY experiments/monitor_replay.py generate --out runs/replay [--days 3] [--window 600] \
        [--rate 6] [--seed 42] [--bursts 9] \
        [--sentiment runs/monitor/sentiment --topics runs/monitor/topics --entities runs/monitor/entities]
    target/release/positio monitor run --model sentiment=runs/monitor/sentiment \
        --model topics=runs/monitor/topics --model entities=runs/monitor/entities \
        --source runs/replay/stream.jsonl --store runs/replay/store.db \
        --alerts runs/replay/alerts.jsonl --clock event --window 10m
    $PY experiments/monitor_replay.py score --truth runs/replay/bursts.json \
        --alerts runs/replay/alerts.jsonl --json runs/replay/score.json

`generate` writes OUT/stream.jsonl (the items, in time order) and OUT/bursts.json (the truth).
`score` matches the alerts to the bursts and prints recall, false alarms and delays.

Design of the stream (everything drawn from one `random.Random(seed)`, so a seed and the same
data, flags and vetting models give the same files):

- Time: event times from 1987-03-02T00:00:00Z for `--days` days, in tumbling windows of
  `--window` seconds (aligned to multiples of the width in Unix seconds, as the monitor's).
- Background: per window a Poisson number of items (mean `--rate`) at uniform times; each is a
  Reuters-21578 article from the `unused` part (never seen by the topic model; title + text,
  the text cut to `--max-words` words, whitespace normalised, the "Reuter" sign-off removed;
  id "r-<id>") with probability `--reuters-share`, else a Financial PhraseBank 50Agree test
  sentence drawn uniformly (its natural mix: 60 negative, 288 neutral, 136 positive; never
  seen by the sentiment model; id "p-<n>"). So the "all" series has a realistic, noisy
  negative share.
- Targets: topic bursts aim at `--topic-targets` (default crude, grain, money-fx, trade) and
  entity bursts at organisations (`--entity-targets`, default the candidates with the most
  material, e.g. Bundesbank, USDA, Texaco, OPEC), at most `--targets-per-kind` of each.
- History for targeted series: the monitor judges a series only in windows that hold at least
  min-count of its items and only after `warmup` such windows, and a topic or entity rarely
  gets five items in one window at `--rate` 6. So each target gets recurring "stories": every
  8-24 windows (first within the first 4), one window with min-count+1 to min-count+3 items of
  it, half Reuters articles of it (the topic's own or keyword-matched articles; articles
  naming the organisation) and half composed items carrying a PhraseBank sentence drawn
  uniformly (natural sentiment). A composed topic item is the title of a Reuters article of
  the topic, then the sentence, then the article's lead sentence (source "phrasebank"; burst
  items take articles with a negative-sounding title, e.g. "OIL PRICES FALL", when the topic
  has at least 5, since a neutral lead dilutes the sentence for the sentiment model); a
  composed entity item puts the organisation in the sentence ("The Bundesbank said ...",
  "..., OPEC said.", "According to the USDA, ..."). Stories are kept out of the windows around
  a burst on their own series. These items have ids "r-<id>" ("r-<id>.<k>" when an article is
  used again) and "p-<n>", like the background.
- Bursts (`--bursts`, default 3 a day, kinds in turn untargeted, topic, entity): 8-15 extra
  negative items (`--burst-size`), the first at a random time in the first half of a window,
  the rest within 0.2-0.6 of a window after it (`--burst-span`; so some spill into the next
  window); ids "b<k>-<n>".
  untargeted: bare negative PhraseBank test sentences, expected series "all";
  topic: composed topic items with negative sentences, expected series "topic:<t>";
  entity: composed entity items with negative sentences, expected series "entity:<name>".
  Bursts start after 2*(warmup+1) windows (untargeted) or after warmup+2 stories of their
  series (targeted), are at least `--gap` windows apart and at least half a day apart on the
  same series, and end at least 3 windows before the stream does. Material may be reused
  across bursts (new ids).
- Vetting (optional, recommended): with `--sentiment/--topics/--entities` the candidate
  material is first run through those models (with `transformers`, as
  bench/monitor_throughput.py runs them): burst items must be called negative; topic items
  (story and burst) must be tagged with their topic; entity articles and items must yield the
  exact entity name (ORG/PER/LOC); entity targets are then the candidates with the most
  material that passed. Vetting keeps the truth about the spike rule and the pipeline rather
  than about the models' errors; the background is never vetted. A pool where too few
  candidates pass falls back to the unvetted candidates with a warning, recorded under
  "vetting" in bursts.json. Without models the material is chosen by labels and keywords
  only.

bursts.json: {"window", "days", "start", "end", "seed", ..., "bursts": [{"id", "kind",
"series", "target", "start" (the first burst item), "end" (the last), "window_start" (of
the window holding the first item), "items": [ids]}]}, plus the story windows per target and
the vetting report.

Scoring: a burst is found when an alert on its expected series has a window [t, t+window)
that overlaps the burst's span [start, end] or is the window right after the one holding
`end`; delay = t + window - start (the alert is raised when its window closes), in seconds
and in windows, from the earliest such alert. Any other alert that lies in that time range
of a burst and is on "all" or lists burst items among its negative items is "explained by a
burst" (reported separately); the rest are false alarms.
"""
import argparse
import importlib.util
import json
import math
import os
import random
import re
import sys
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REUTERS = os.path.join(ROOT, "..", "shared", "data", "reuters21578", "unused.jsonl")
PHRASEBANK = os.path.join(ROOT, "runs", "classify-data", "phrasebank-50", "test.txt")
EPOCH = 541_641_600  # 1987-03-02T00:00:00Z

# Title keywords that mark an article of a topic (besides its own topic labels).
TOPIC_KEYWORDS = {
    "crude": (r"\b(CRUDE|OPEC|OIL|OILS|BARRELS?|REFINERY|REFINING|PETROLEUM)\b",
              r"\b(PALM|SOY|SOYBEAN|VEGETABLE|VEG|OILSEEDS?|SUNFLOWER|RAPESEED|COCONUT|LINSEED|"
              r"OLIVE|COTTONSEED|GROUNDNUT|CASTOR|FISH|OILFIELD SERVICES)\b"),
    "grain": (r"\b(GRAIN|GRAINS|WHEAT|CORN|MAIZE|BARLEY|SORGHUM|RICE|OATS|RYE)\b", None),
    "trade": (r"\b(TRADE|TARIFFS?|PROTECTIONISM|PROTECTIONIST|GATT|IMPORT|IMPORTS|EXPORT|EXPORTS|"
              r"SURPLUS|DEFICIT)\b", r"\b(TRADE CENTER|TRADED|TRADING)\b"),
    "money-fx": (r"\b(DOLLAR|YEN|CURRENCY|CURRENCIES|FOREX|STERLING|EXCHANGE RATES?|"
                 r"MONEY MARKET|INTERVENE|INTERVENTION|MARK)\b", None),
    "interest": (r"\b(INTEREST RATES?|PRIME RATE|DISCOUNT RATE|RATE CUT|RATES)\b", None),
    "ship": (r"\b(SHIP|SHIPS|SHIPPING|TANKER|TANKERS|PORT|VESSEL|VESSELS)\b", None),
}
NEGATIVE_TITLE = (r"\b(FALLS?|FELL|CUTS?|DROPS?|DROPPED|LOWERS?|LOWERED|DECLINES?|DECLINED|SLUMPS?|"
                  r"LOSS|LOSSES|WEAK|WEAKER|DOWN|PLUNGES?|SLIPS?|EASES?|EASED|REDUCES?|REDUCED|"
                  r"SHORTFALL|CRISIS|THREAT|WARNS?|CONCERN|FEARS?|STRIKE)\b")
ENTITY_CANDIDATES = ["Bundesbank", "USDA", "Texaco", "OPEC", "Bank of England", "IMF",
                     "World Bank", "GATT", "Federal Reserve", "Chrysler", "IBM"]
KINDS = ("untargeted", "topic", "entity")
MIN_POOL = 8  # fewest distinct vetted candidates a pool needs before it is used


def rfc3339(t):
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(stamp):
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def warn(msg):
    print(f"warning: {msg}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Data


def read_phrasebank(path):
    """(sentence, label) pairs; the file is Latin-1 (as the original) unless it is valid UTF-8."""
    raw = open(path, "rb").read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    out = []
    for line in text.splitlines():
        if "@" in line.strip():
            sentence, label = line.strip().rsplit("@", 1)
            out.append((sentence.strip(), label.strip().lower()))
    return out


def clean_text(text, max_words):
    text = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())
    text = re.sub(r"\s*\bREUTERS?\b.{0,4}$", "", text, flags=re.IGNORECASE)
    words = text.split()
    return " ".join(words[:max_words])


def read_reuters(path, max_words):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            text = clean_text(row.get("text") or "", max_words)
            if len(text.split()) < 8:
                continue
            out.append({"id": row["id"], "topics": row.get("topics") or [],
                        "title": " ".join((row.get("title") or "").split()), "text": text})
    return out


def lead(text, max_words=40):
    """The article's first sentence (at most max_words words)."""
    m = re.search(r"^(.+?[a-z0-9)][.])\s+[A-Z]", text)
    first = m.group(1) if m else text
    words = first.split()[:max_words]
    return " ".join(words)


STARTERS = {"the", "a", "an", "operating", "net", "sales", "in", "as", "profit", "pretax",
            "pre-tax", "earnings", "its", "this", "however", "also", "according", "last", "there",
            "shares", "both", "after", "at", "by", "during", "for", "on", "compared",
            "consolidated", "revenue", "revenues", "turnover", "loss", "losses", "orders",
            "production", "demand", "prices", "some", "total", "these", "that", "it", "they"}


def lower_first(sentence):
    first = sentence.split(" ", 1)[0]
    if first.lower() in STARTERS and first[1:].islower():
        return first[0].lower() + sentence[len(first[0]):]
    return sentence


def strip_end(sentence):
    return re.sub(r"\s*[.!]\s*$", "", sentence)


def entity_sentence(name, article, sentence, template):
    """A PhraseBank sentence put in the mouth of `name` (with "the" when the name takes it)."""
    mid = f"the {name}" if article else name
    start = f"The {name}" if article else name
    if template == 0:
        return f"{start} said {lower_first(sentence)}"
    if template == 1:
        return f"{strip_end(sentence)} , {mid} said ."
    return f"According to {mid} , {lower_first(sentence)}"


def topic_item(article, sentence):
    return {"title": article["title"], "text": f"{sentence} {lead(article['text'])}"}


def content(item):
    title = item.get("title")
    return f"{title}. {item['text']}" if title and title.strip() else item["text"]


def name_pattern(name):
    return re.compile(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])")


def takes_article(name, articles):
    """Whether the name mostly comes with "the" (the Bundesbank) or without (OPEC)."""
    pat = name_pattern(name)
    with_the = total = 0
    for a in articles:
        for m in pat.finditer(a["text"]):
            total += 1
            with_the += a["text"][max(0, m.start() - 4):m.start()].lower() == "the "
    return total > 0 and with_the * 2 > total


# ---------------------------------------------------------------------------------------------
# Vetting through transformers (bench/monitor_throughput.py's model code)


class Vetter:
    def __init__(self, args):
        self.models = {}
        self.report = {}
        roles = {r: getattr(args, r) for r in ("sentiment", "topics", "entities") if getattr(args, r)}
        if not roles:
            return
        spec = importlib.util.spec_from_file_location(
            "monitor_throughput", os.path.join(ROOT, "bench", "monitor_throughput.py"))
        mt = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mt)
        mt.torch.set_num_threads(args.threads)
        self.mt = mt
        self.models = mt.load_models(batch_size=32, **roles)
        self.cache = {}

    def has(self, role):
        return role in self.models

    def run(self, role, texts):
        """The model's part of the annotation for each text (cached)."""
        todo = [t for t in dict.fromkeys(texts) if (role, t) not in self.cache]
        if todo:
            for t, a in zip(todo, self.models[role](todo)):
                self.cache[(role, t)] = a
        return [self.cache[(role, t)] for t in texts]

    def keep(self, pool_name, candidates, checks, distinct=None):
        """The candidates (items) that pass every check; `checks` are (role, predicate on the
        model's output). Falls back to all candidates when fewer than MIN_POOL distinct pass."""
        checks = [(r, f) for r, f in checks if self.has(r)]
        if not checks:
            return candidates
        ok = [True] * len(candidates)
        texts = [content(c) for c in candidates]
        for role, pred in checks:
            for i, a in enumerate(self.run(role, texts)):
                ok[i] = ok[i] and pred(a)
        passed = [c for c, o in zip(candidates, ok) if o]
        key = distinct or (lambda c: content(c))
        n_distinct = len({key(c) for c in passed})
        entry = {"candidates": len(candidates), "passed": len(passed),
                 "checks": [r for r, _ in checks]}
        if n_distinct < MIN_POOL:
            warn(f"{pool_name}: only {len(passed)} of {len(candidates)} candidates pass "
                 f"{entry['checks']}; using them unvetted")
            entry["used"] = "unvetted"
            self.report[pool_name] = entry
            return candidates
        entry["used"] = "vetted"
        self.report[pool_name] = entry
        print(f"vetting {pool_name}: {len(passed)}/{len(candidates)} pass", file=sys.stderr)
        return passed


def is_negative(a):
    return (a.get("sentiment") or "").lower() == "negative"


# ---------------------------------------------------------------------------------------------
# generate


def poisson(rng, mean):
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def topic_articles(reuters, topic):
    pattern, exclude = TOPIC_KEYWORDS.get(topic, (None, None))
    out = []
    for a in reuters:
        if topic in a["topics"]:
            out.append(a)
        elif pattern and re.search(pattern, a["title"]) and not (exclude and re.search(exclude, a["title"])):
            out.append(a)
    return out


def generate(args):
    rng = random.Random(args.seed)
    W = args.window
    n_windows = args.days * 86400 // W
    if n_windows < 4 * (args.warmup + 2):
        sys.exit(f"{args.days} days of {W} s windows are too short for warm-up {args.warmup}")
    reuters = read_reuters(args.reuters, args.max_words)
    phrasebank = read_phrasebank(args.phrasebank)
    negatives = [s for s, l in phrasebank if l == "negative"]
    print(f"{len(reuters)} Reuters articles, {len(phrasebank)} PhraseBank sentences "
          f"({len(negatives)} negative)", file=sys.stderr)
    vet = Vetter(args)
    n_bursts = args.bursts if args.bursts is not None else 3 * args.days
    kinds = [KINDS[i % 3] for i in range(n_bursts)]
    n_targets = {k: min(args.targets_per_kind, kinds.count(k)) for k in ("topic", "entity")}

    # -- material for the targets --------------------------------------------------------
    def sample(seq, n):
        seq = list(seq)
        return seq if len(seq) <= n else rng.sample(seq, n)

    material = {}  # series -> {"articles", "story", "burst", ...}
    topics = [t.strip() for t in args.topic_targets.split(",") if t.strip()][:n_targets["topic"]]
    for t in topics:
        series = f"topic:{t}"
        arts = sample(topic_articles(reuters, t), args.pool)
        if not arts:
            sys.exit(f"no Reuters article of topic {t}")
        tagged = lambda a, t=t: t in a["topics"]  # noqa: E731
        arts = vet.keep(f"{series} articles", [dict(a, kind="article") for a in arts],
                        [("topics", tagged)])
        story = [dict(topic_item(rng.choice(arts), s), kind="composed")
                 for s, _ in sample(phrasebank, args.pool)]
        story = vet.keep(f"{series} story items", story, [("topics", tagged)])
        # Burst items lean on articles with a negative-sounding title when there are some: a
        # neutral lead dilutes the negative sentence for the sentiment model.
        gloomy = [a for a in arts if re.search(NEGATIVE_TITLE, a["title"])]
        burst_arts = gloomy if len(gloomy) >= 5 else arts
        burst = [dict(topic_item(rng.choice(burst_arts), s), kind="composed")
                 for s in negatives for _ in range(2)]
        burst = vet.keep(f"{series} burst items", burst, [("topics", tagged), ("sentiment", is_negative)])
        material[series] = {"kind": "topic", "target": t, "articles": arts, "story": story, "burst": burst}

    if n_targets["entity"]:
        if args.entity_targets:
            names = [e.strip() for e in args.entity_targets.split(",") if e.strip()]
        else:
            names = ENTITY_CANDIDATES
        found = {}
        for name in names:
            pat = name_pattern(name)
            arts = [a for a in reuters if pat.search(a["text"]) or pat.search(a["title"])]
            if not arts:
                continue
            arts = sample(arts, args.pool)
            if vet.has("entities"):
                outs = vet.run("entities", [content(a) for a in arts])
                arts = [a for a, o in zip(arts, outs) if name in o["entities"]]
            found[name] = arts
        # With an NER model: the names with the most articles it finds them in; else the
        # candidates in their order (chosen for their plain, suffix-free surface forms).
        if vet.has("entities") and not args.entity_targets:
            ranked = sorted(found, key=lambda n: -len(found[n]))
        else:
            ranked = [n for n in names if n in found]
        if not args.entity_targets:
            ranked = [n for n in ranked if len(found[n]) >= MIN_POOL]
        chosen = ranked[:n_targets["entity"]]
        if len(chosen) < n_targets["entity"]:
            sys.exit(f"too few entity targets with material: {ranked}")
        for name in chosen:
            series = f"entity:{name}"
            article = takes_article(name, found[name])
            arts = [dict(a, kind="article") for a in found[name]]
            if vet.has("entities"):
                vet.report[f"{series} articles"] = {"passed": len(arts), "used": "vetted",
                                                    "checks": ["entities"]}
            named = lambda a, n=name: n in a["entities"]  # noqa: E731
            story = [{"text": entity_sentence(name, article, s, rng.randrange(3)), "kind": "composed"}
                     for s, _ in sample(phrasebank, args.pool)]
            story = vet.keep(f"{series} story items", story, [("entities", named)])
            burst = [{"text": entity_sentence(name, article, s, k), "kind": "composed"}
                     for s in negatives for k in range(3)]
            burst = vet.keep(f"{series} burst items", burst, [("entities", named), ("sentiment", is_negative)])
            if len(arts) < MIN_POOL:
                warn(f"{series}: only {len(arts)} articles name it; stories use composed items")
            material[series] = {"kind": "entity", "target": name, "articles": arts, "story": story,
                                "burst": burst}

    bare = [{"text": s, "kind": "composed"} for s in negatives]
    bare = vet.keep("untargeted burst items", bare, [("sentiment", is_negative)])

    # -- stories (history for the targeted series) -------------------------------------------
    stories = {}
    for series in material:
        w, ws = rng.randint(1, 4), []
        while w < n_windows:
            ws.append(w)
            w += rng.randint(8, 24)
        stories[series] = ws

    # -- burst schedule ------------------------------------------------------------------------
    targets = {"topic": [s for s in material if s.startswith("topic:")],
               "entity": [s for s in material if s.startswith("entity:")]}
    plan, counters = [], {"topic": 0, "entity": 0}
    for k in kinds:
        if k == "untargeted":
            plan.append((k, "all"))
        else:
            plan.append((k, targets[k][counters[k] % len(targets[k])]))
            counters[k] += 1
    same_gap = math.ceil(43200 / W)
    last = n_windows - 3

    def earliest(series):
        if series == "all":
            return 2 * (args.warmup + 1)
        ws = stories[series]
        return ws[min(args.warmup + 1, len(ws) - 1)] + 2

    order = sorted(range(n_bursts), key=lambda i: -earliest(plan[i][1]))
    placed = None
    for _ in range(5000):
        at = {}
        for i in order:
            series = plan[i][1]
            lo = earliest(series)
            options = [w for w in range(lo, last + 1)
                       if all(abs(w - v) >= args.gap for v in at.values())
                       and all(abs(w - at[j]) >= same_gap for j in at if plan[j][1] == series)]
            if not options:
                break
            at[i] = rng.choice(options)
        if len(at) == n_bursts:
            placed = at
            break
    if placed is None:
        sys.exit(f"cannot place {n_bursts} bursts in {args.days} days (gap {args.gap} windows, "
                 f"half a day on one series): use fewer --bursts or more --days")
    burst_windows = sorted(placed.values())
    plan = [plan[i] for i in sorted(placed, key=placed.get)]
    for (kind, series), w in zip(plan, burst_windows):
        if series in stories:
            stories[series] = [s for s in stories[series] if not (w - 1 <= s <= w + 2)]

    # -- items -----------------------------------------------------------------------------------
    items = []  # (time, seq, item)
    uses = {}
    counter = {"p": 0}

    def reuters_id(a):
        uses[a["id"]] = uses.get(a["id"], 0) + 1
        k = uses[a["id"]]
        return f"r-{a['id']}" if k == 1 else f"r-{a['id']}.{k}"

    def add(t, item):
        items.append((t, len(items), dict(item, time=rfc3339(t))))

    def make(m, source):
        """A stream item (id first) from material `m`."""
        if m.get("kind") == "article":
            out = {"id": reuters_id(m), "title": m["title"], "text": m["text"], "source": "reuters"}
        else:
            counter["p"] += 1
            out = {"id": f"p-{counter['p']}"}
            if m.get("title"):
                out["title"] = m["title"]
            out.update(text=m["text"], source=source)
        return out

    # Background Reuters: shuffled, without the targets' articles.
    reserved = {a["id"] for m in material.values() for a in m["articles"]}
    pool = [a for a in reuters if a["id"] not in reserved]
    rng.shuffle(pool)
    cursor = 0
    background = 0
    for w in range(n_windows):
        for _ in range(poisson(rng, args.rate)):
            t = EPOCH + w * W + rng.randrange(W)
            if rng.random() < args.reuters_share:
                a = pool[cursor % len(pool)]
                cursor += 1
                add(t, make(dict(a, kind="article"), "reuters"))
            else:
                s, _ = rng.choice(phrasebank)
                add(t, make({"text": s}, "phrasebank"))
            background += 1

    story_items = 0
    cursors = {s: 0 for s in material}
    for series, ws in stories.items():
        m = material[series]
        arts = list(m["articles"])
        rng.shuffle(arts)
        for w in ws:
            for _ in range(rng.randint(args.min_count + 1, args.min_count + 3)):
                t = EPOCH + w * W + rng.randrange(W)
                if arts and rng.random() < 0.5:
                    a = arts[cursors[series] % len(arts)]
                    cursors[series] += 1
                    add(t, make(a, "reuters"))
                else:
                    add(t, make(rng.choice(m["story"]), "phrasebank"))
                story_items += 1

    bursts = []
    for k, ((kind, series), w) in enumerate(zip(plan, burst_windows), 1):
        source = bare if series == "all" else material[series]["burst"]
        n = rng.randint(*args.burst_size)
        chosen = rng.sample(source, n) if len(source) >= n else [rng.choice(source) for _ in range(n)]
        t0 = EPOCH + w * W + rng.randrange(W // 2)
        span = int(rng.uniform(*args.burst_span) * W)
        times = [t0] + sorted(t0 + rng.randrange(span + 1) for _ in range(n - 1))
        ids = []
        for j, (t, m) in enumerate(zip(times, chosen), 1):
            item = {"id": f"b{k}-{j}"}
            if m.get("title"):
                item["title"] = m["title"]
            item.update(text=m["text"], source="phrasebank")
            add(t, item)
            ids.append(item["id"])
        bursts.append({
            "id": f"b{k}", "kind": kind, "series": series,
            "target": None if series == "all" else material[series]["target"],
            "start": rfc3339(times[0]), "end": rfc3339(times[-1]),
            "window_start": rfc3339(EPOCH + w * W), "items": ids,
        })

    items.sort(key=lambda x: (x[0], x[1]))
    ids = [x[2]["id"] for x in items]
    assert len(set(ids)) == len(ids), "ids must be unique"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "stream.jsonl"), "w", encoding="utf-8") as f:
        for _, _, item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    truth = {
        "window": W, "days": args.days, "start": rfc3339(EPOCH),
        "end": rfc3339(EPOCH + n_windows * W), "seed": args.seed, "rate": args.rate,
        "monitor": {"warmup": args.warmup, "min_count": args.min_count},
        "items": len(items), "background_items": background, "story_items": story_items,
        "burst_items": sum(len(b["items"]) for b in bursts),
        "stories": {s: [rfc3339(EPOCH + w * W) for w in ws] for s, ws in stories.items()},
        "vetting": {"models": {r: getattr(args, r) for r in ("sentiment", "topics", "entities")
                               if getattr(args, r)}, "pools": vet.report},
        "bursts": bursts,
    }
    with open(os.path.join(args.out, "bursts.json"), "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{len(items)} items ({background} background, {story_items} in stories, "
          f"{truth['burst_items']} in {len(bursts)} bursts) over {n_windows} windows "
          f"-> {os.path.join(args.out, 'stream.jsonl')}")
    for b in bursts:
        print(f"  {b['id']:>4} {b['kind']:<10} {b['series']:<24} {b['start']} .. {b['end']} "
              f"{len(b['items'])} items")


# ---------------------------------------------------------------------------------------------
# score


def score(args):
    truth = json.load(open(args.truth, encoding="utf-8"))
    W = truth["window"]
    days = truth["days"]
    alerts = []
    with open(args.alerts, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                a = json.loads(line)
                a["_t"] = unix(a["time"])
                a["_n"] = n
                alerts.append(a)
    bursts = truth["bursts"]
    for b in bursts:
        s, e = unix(b["start"]), unix(b["end"])
        b["_s"] = s
        b["_lo"] = s - s % W  # first window overlapping the span
        b["_hi"] = e - e % W + W  # the window right after the one holding the end
        b["_items"] = set(b["items"])
    rows, matched = [], set()
    for b in bursts:
        hits = [a for a in alerts if a["series"] == b["series"] and b["_lo"] <= a["_t"] <= b["_hi"]]
        for a in hits:
            matched.add(a["_n"])
        first = min(hits, key=lambda a: a["_t"]) if hits else None
        delay = first["_t"] + W - b["_s"] if first else None
        rows.append({
            "id": b["id"], "kind": b["kind"], "series": b["series"], "start": b["start"],
            "end": b["end"], "items": len(b["items"]), "found": first is not None,
            "alert": first["time"] if first else None,
            "delay_s": delay, "delay_windows": round(delay / W, 3) if first else None,
            "z": round(first["z"], 2) if first else None,
            "value": round(first["value"], 3) if first else None,
            "baseline": round(first["baseline"], 3) if first else None,
            "burst_items_in_alert": len(b["_items"] & set(first["items"])) if first else None,
            "alerts": len(hits),
        })
    explained, false_alarms = [], []
    for a in alerts:
        if a["_n"] in matched:
            continue
        by = [b["id"] for b in bursts if b["_lo"] <= a["_t"] <= b["_hi"]
              and (a["series"] == "all" or b["_items"] & set(a.get("items", [])))]
        entry = {"time": a["time"], "series": a["series"], "value": round(a["value"], 3),
                 "baseline": round(a["baseline"], 3), "z": round(a["z"], 2), "count": a["count"]}
        if by:
            explained.append(dict(entry, bursts=by))
        else:
            false_alarms.append(entry)
    found = [r for r in rows if r["found"]]
    delays = [r["delay_s"] for r in found]
    per_kind = {}
    for k in KINDS:
        ks = [r for r in rows if r["kind"] == k]
        if ks:
            per_kind[k] = {"found": sum(r["found"] for r in ks), "total": len(ks)}
    result = {
        "truth": args.truth, "alerts_file": args.alerts, "window": W, "days": days,
        "bursts": len(rows), "found": len(found),
        "recall": round(len(found) / len(rows), 4) if rows else None,
        "per_kind": per_kind, "alerts": len(alerts), "matched_alerts": len(matched),
        "explained_alerts": len(explained), "false_alarms": len(false_alarms),
        "false_alarms_per_day": round(len(false_alarms) / days, 3) if days else None,
        "mean_delay_s": round(sum(delays) / len(delays), 1) if delays else None,
        "max_delay_s": max(delays) if delays else None,
        "mean_delay_windows": round(sum(delays) / len(delays) / W, 3) if delays else None,
        "max_delay_windows": round(max(delays) / W, 3) if delays else None,
        "per_burst": rows, "explained": explained, "false_alarm_list": false_alarms,
    }
    print(f"{'burst':>5}  {'kind':<10}  {'series':<24}  {'start':<20}  {'n':>2}  {'found':<5}  "
          f"{'alert window':<20}  {'delay s':>7}  {'windows':>7}  {'z':>6}")
    for r in rows:
        print(f"{r['id']:>5}  {r['kind']:<10}  {r['series']:<24}  {r['start']:<20}  {r['items']:>2}  "
              f"{'yes' if r['found'] else 'no':<5}  {r['alert'] or '-':<20}  "
              f"{r['delay_s'] if r['found'] else '-':>7}  "
              f"{r['delay_windows'] if r['found'] else '-':>7}  {r['z'] if r['found'] else '-':>6}")
    kinds = ", ".join(f"{k} {v['found']}/{v['total']}" for k, v in per_kind.items())
    print(f"\nbursts found: {len(found)}/{len(rows)} (recall {result['recall']}; {kinds})")
    print(f"alerts: {len(alerts)} ({len(matched)} on a burst's series, {len(explained)} explained "
          f"by a burst, {len(false_alarms)} false alarms = {result['false_alarms_per_day']} per "
          f"simulated day)")
    if delays:
        print(f"delay: mean {result['mean_delay_s']} s ({result['mean_delay_windows']} windows), "
              f"max {result['max_delay_s']} s ({result['max_delay_windows']} windows)")
    for fa in false_alarms:
        print(f"  false alarm: {fa['time']} {fa['series']} value {fa['value']} baseline "
              f"{fa['baseline']} z {fa['z']} count {fa['count']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1, ensure_ascii=False)
            f.write("\n")


def pair(kind):
    def parse(text):
        lo, hi = (kind(x) for x in text.split(","))
        if not 0 < lo <= hi:
            raise argparse.ArgumentTypeError(f"{text!r}: expected MIN,MAX with 0 < MIN <= MAX")
        return lo, hi
    return parse


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write OUT/stream.jsonl and OUT/bursts.json")
    g.add_argument("--out", required=True)
    g.add_argument("--days", type=int, default=3)
    g.add_argument("--window", type=int, default=600, help="window width in seconds")
    g.add_argument("--rate", type=float, default=6.0, help="background items per window (mean)")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--bursts", type=int, help="number of bursts (default 3 a day)")
    g.add_argument("--reuters", default=REUTERS, help="Reuters-21578 unused.jsonl")
    g.add_argument("--phrasebank", default=PHRASEBANK, help="PhraseBank test split (sentence@label)")
    g.add_argument("--reuters-share", type=float, default=0.7,
                   help="share of Reuters articles in the background (the rest PhraseBank)")
    g.add_argument("--max-words", type=int, default=200, help="Reuters texts cut to this many words")
    g.add_argument("--topic-targets", default="crude,grain,money-fx,trade")
    g.add_argument("--entity-targets", help="comma-separated names (default: chosen by material)")
    g.add_argument("--targets-per-kind", type=int, default=2)
    g.add_argument("--warmup", type=int, default=6, help="the monitor's --warmup")
    g.add_argument("--min-count", type=int, default=5, help="the monitor's --min-count")
    g.add_argument("--gap", type=int, default=12, help="fewest windows between two bursts")
    g.add_argument("--burst-size", type=pair(int), default=(8, 15), metavar="MIN,MAX",
                   help="items per burst (uniform)")
    g.add_argument("--burst-span", type=pair(float), default=(0.2, 0.6), metavar="MIN,MAX",
                   help="time from a burst's first item to its last, in windows (uniform)")
    g.add_argument("--pool", type=int, default=300, help="candidates drawn per pool")
    g.add_argument("--sentiment", help="vet burst material with this sentiment model")
    g.add_argument("--topics", help="vet topic material with this topic model")
    g.add_argument("--entities", help="vet entity material with this NER model")
    g.add_argument("--threads", type=int, default=2, help="torch threads for vetting")
    s = sub.add_parser("score", help="match alerts to bursts")
    s.add_argument("--truth", required=True, help="bursts.json")
    s.add_argument("--alerts", required=True, help="the monitor's alerts (JSON lines)")
    s.add_argument("--json", help="write the scores here")
    args = p.parse_args()
    generate(args) if args.command == "generate" else score(args)


if __name__ == "__main__":
    main()
