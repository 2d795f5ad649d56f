"""Writes made-up CoNLL-2003-style files so the NER tests run from the repository alone, without
the real data set.

    python3 scripts/reference/make_conll_fixture.py

Writes tests/fixtures/conll/train.iob1 (700 sentences) and tests/fixtures/conll/dev.iob1 (250
sentences, another seed). Every sentence is invented from the templates and word lists below (no
text of any real data set): news-like lines, uppercase sport headlines, datelines, scores and
standings, results tables, sentences without entities, one-token lines, and sentences of 41-45
tokens with several entities, one of 3-4 tokens starting at word 18-21 (so it crosses the boundary
of ~24-piece windows).

Layout of the original English distribution: `word POS chunk NER` separated by single spaces, one
token a line, a blank line after each sentence, and `-DOCSTART- -X- -X- O` plus a blank line opening
each document (the file starts with one). NER and chunk tags are IOB1: all tokens of an entity are
`I-TYPE`; `B-TYPE` marks only the first token of an entity directly following another entity of
the same type (list templates such as "Routes : Bonn Berlin and Zürich ." make sure this occurs).

Deterministic (`random.Random(seed)`, '\\n' line endings, UTF-8): re-running gives byte-identical
files. Prints, per file, sentence and token counts, the IOB2 tag supports (after converting the
IOB1 tags the way conlleval/seqeval users do) and the file's SHA-256.
"""
import collections
import hashlib
import itertools
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "conll")
# (file name, sentences, seed, list sentences forced per entity type, long sentences forced)
FILES = [("train.iob1", 700, 2003, 2, 14), ("dev.iob1", 250, 4711, 2, 6)]

# ---------------------------------------------------------------- word lists (all invented)

FIRST = ["Tomas", "Anna", "Marek", "Lena", "Pieter", "Ines", "Rafael", "Yusuf", "Kenji", "Olga", "Dario",
         "Hanne", "Sven", "Carla", "Jonas", "Mirela", "Aziz", "Beatrix", "Emil", "Nadia", "Oskar", "Renata",
         "Joaquín", "Zoë", "Grigor", "Amara"]
LAST = ["Keller", "Vries", "Halvorsen", "Dobrev", "Müller", "Castell", "Okonjo", "Brandt", "Lindqvist",
        "Moreau", "Tanaka", "Petrescu", "Ashworth", "Varga", "Nørgaard", "Quispe", "Falk", "Ibarra",
        "Sokolov", "Whitcombe", "Riedl", "Amadi", "Carvalho", "Szabó"]
LONG_PER = [["Pieter", "van", "der", "Berg"], ["Maria", "de", "los", "Santos"], ["Anders", "Bo", "Lindahl"],
            ["Ana", "Lúcia", "Prado"], ["Karl", "Heinz", "Obermann"], ["Ruth", "al", "Hadiri"]]
CITIES = ["Berlin", "Bonn", "Zürich", "Lisbon", "Oslo", "Nairobi", "Kraków", "Lyon", "Osaka", "Perth",
          "Quito", "Tallinn", "Veldmark", "Ostrava", "Valparaíso"]
MULTI_CITIES = [["São", "Paulo"], ["Porto", "Alegre"], ["Port", "Kessel"], ["New", "Tarrow"], ["Santa", "Mira"]]
NATIONS = [("Germany", "German"), ("Norway", "Norwegian"), ("Brazil", "Brazilian"), ("Japan", "Japanese"),
           ("Kenya", "Kenyan"), ("Poland", "Polish"), ("Chile", "Chilean"), ("Estonia", "Estonian"),
           ("Morocco", "Moroccan"), ("Switzerland", "Swiss"), ("Peru", "Peruvian"), ("Portugal", "Portuguese")]
LONG_LOC = [["Rio", "de", "la", "Costa"], ["Upper", "Kessel", "Valley"], ["Gulf", "of", "Tarrow"],
            ["North", "Veldmark", "Plain"], ["Bay", "of", "Santa", "Mira"]]
ORG_SINGLE = ["Kestrel", "Valdor", "Nordbank", "Ferrovia", "Altamar", "Brightwell", "Cortexa"]
ORG_MULTI = [["Kestrel", "Holdings"], ["Valdor", "Mining", "Corp"], ["Banco", "Atlântico"], ["Helvetia", "Rück"],
             ["Northfield", "Bank"], ["Altamar", "Airlines"], ["Brightwell", "Group"]]
ORG_LONG = [["Union", "of", "Coastal", "Farmers"], ["Ministry", "of", "Ports"], ["Bank", "of", "Veldmark"],
            ["Council", "for", "Northern", "Trade"], ["Kessel", "Port", "Authority"]]
TEAMS = [["Kessel", "United"], ["Dunmore", "Rovers"], ["Tarrow", "Athletic"], ["Lakeside"], ["Veldmark"],
         ["Sporting", "Mira"], ["Ostrava", "City"], ["Real", "Valdora"], ["Grünwald"]]
EVENTS = [["Northern", "Cup"], ["Harbour", "Open"], ["Coastal", "Games"], ["Lakeland", "Trophy"],
          ["Winter", "Classic"], ["Veldmark", "Marathon"]]
LONG_EVENTS = [["Grand", "Prix", "of", "Kessel"], ["Northern", "Cup", "Final"], ["Treaty", "of", "Santa", "Mira"],
               ["Lakeland", "Trophy", "Series"]]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
SPORTS = ["SOCCER", "TENNIS", "RUGBY", "CYCLING", "ATHLETICS", "GOLF", "CRICKET"]
FUNCTION_WORDS = {"of": "IN", "for": "IN", "de": "IN", "la": "DT", "der": "DT", "van": "IN", "los": "DT", "al": "DT"}

# ---------------------------------------------------------------- tokens, phrases, sentences

_entity_ids = itertools.count()


def ent(typ, words, pos=None):
    """Tokens of one entity: (word, POS, (type, id))."""
    eid = next(_entity_ids)
    return [(w, pos or FUNCTION_WORDS.get(w, "NNP"), (typ, eid)) for w in words]


def toks(spec):
    """'word/POS word/POS' -> tokens without entity."""
    out = []
    for item in spec.split():
        word, pos = item.rsplit("/", 1)
        out.append((word, pos, None))
    return out


def phrase(chunk, *parts):
    tokens = []
    for p in parts:
        tokens += toks(p) if isinstance(p, str) else p
    return (chunk, tokens)


def NP(*p): return phrase("NP", *p)
def VP(*p): return phrase("VP", *p)
def PP(*p): return phrase("PP", *p)
def ADVP(*p): return phrase("ADVP", *p)
def ADJP(*p): return phrase("ADJP", *p)
def SBAR(*p): return phrase("SBAR", *p)
def O(*p): return phrase("O", *p)


def P(mark):
    """One punctuation token outside any chunk."""
    pos = {",": ",", ".": ".", "(": "(", ")": ")", '"': '"', ":": ":", "-": ":", "--": ":"}[mark]
    return ("O", [(mark, pos, None)])


def sentence_length(phrases):
    return sum(len(t) for _, t in phrases)


def finish(phrases):
    """Phrases -> [(word, POS, chunk, NER)] with IOB1 chunk and NER tags."""
    rows, prev_chunk, prev_ent = [], "O", None
    for chunk, tokens in phrases:
        for i, (word, pos, e) in enumerate(tokens):
            if chunk == "O":
                ctag = "O"
            elif i == 0 and prev_chunk == chunk:
                ctag = "B-" + chunk
            else:
                ctag = "I-" + chunk
            if e is None:
                ntag = "O"
            elif prev_ent is not None and prev_ent[0] == e[0] and prev_ent[1] != e[1]:
                ntag = "B-" + e[0]
            else:
                ntag = "I-" + e[0]
            rows.append((word, pos, ctag, ntag))
            prev_ent = e
        prev_chunk = chunk
    return rows


def upper(phrases):
    return [(c, [(w.upper(), p, e) for w, p, e in t]) for c, t in phrases]


# ---------------------------------------------------------------- random pieces


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def pick(self, xs):
        return self.r.choice(xs)

    def per(self, size=None):
        r = self.r
        size = size or r.choices([1, 2, 3], [3, 10, 1])[0]
        if size == 1:
            return ent("PER", [self.pick(LAST)])
        if size == 2:
            return ent("PER", [self.pick(FIRST), self.pick(LAST)])
        return ent("PER", self.pick([p for p in LONG_PER if len(p) == size] or LONG_PER))

    def city(self, multi=None):
        multi = self.r.random() < 0.2 if multi is None else multi
        return ent("LOC", self.pick(MULTI_CITIES) if multi else [self.pick(CITIES)])

    def country(self):
        return ent("LOC", [self.pick(NATIONS)[0]])

    def loc(self):
        return self.city() if self.r.random() < 0.6 else self.country()

    def nat(self):
        return ent("MISC", [self.pick(NATIONS)[1]], "JJ")

    def org(self):
        return ent("ORG", self.pick(ORG_MULTI) if self.r.random() < 0.5 else [self.pick(ORG_SINGLE)])

    def team(self):
        return ent("ORG", self.pick(TEAMS))

    def event(self):
        return ent("MISC", self.pick(EVENTS))

    def n(self, lo=2, hi=900):
        return f"{self.r.randint(lo, hi)}/CD"

    def dec(self):
        return f"{self.r.randint(0, 9)}.{self.r.randint(0, 99):02d}/CD"

    def price(self):
        return f"{self.r.randint(1, 9)},{self.r.randint(0, 999):03d}.{self.r.randint(0, 99):02d}/CD"

    def day(self):
        return self.pick(DAYS) + "/NNP"

    def date(self):
        return f"1996-{self.r.randint(8, 12):02d}-{self.r.randint(1, 28):02d}/CD"

    def score(self):
        return f"{self.r.randint(0, 4)}-{self.r.randint(0, 4)}/CD"

    # ------------------------------------------------------------ document openers

    def headline(self):
        r, sport = self.r, self.pick(SPORTS) + "/NN"
        options = [
            lambda: [NP(sport), P("-"), NP(self.team()), VP("hold/VBP"), NP(self.team()), PP("to/TO"), NP("draw/NN"), P(".")],
            lambda: [NP(sport), P("-"), NP(self.per(1)), VP("wins/VBZ"), PP("in/IN"), NP(self.city()), P(".")],
            lambda: [NP(self.country(), "shares/NNS"), VP("close/VBP"), ADVP("higher/RBR"), P(".")],
            lambda: [NP(sport), P("-"), NP(self.country()), VP("name/VBP"), NP("squad/NN"), PP("for/IN"), NP(self.event()), P(".")],
            lambda: [NP(self.org()), VP("to/TO cut/VB"), NP(self.n(), "jobs/NNS"), P(".")],
            lambda: [NP(sport), P("-"), NP(self.team()), VP("get/VBP"), NP("late/JJ winner/NN"), P(".")],
            lambda: [NP(self.nat(), "rates/NNS"), VP("seen/VBN"), ADJP("steady/JJ"), P(".")],
            lambda: [NP(sport), P("-"), NP(self.per(1)), VP("beats/VBZ"), NP(self.per(1)), PP("in/IN"), NP("final/NN")],
        ]
        return upper(self.pick(options)())

    def dateline(self):
        """`CITY 1996-08-22` or `CITY , COUNTRY 1996-08-22`, the date inside the last noun phrase."""
        c = self.city()
        if len(c) == 1 and self.r.random() < 0.5:
            phrases = upper([NP(c), P(","), NP(self.country())])
        else:
            phrases = upper([NP(c)])
        phrases[-1][1].extend(toks(self.date()))
        return phrases

    # ------------------------------------------------------------ body sentences

    def short(self):
        options = [
            lambda: [NP(self.per()), VP("said/VBD"), P(".")],
            lambda: [NP(self.org(), "shares/NNS"), VP("fell/VBD"), NP(self.dec(), "percent/NN"), P(".")],
            lambda: [NP(self.team()), NP(self.n(0, 4)), NP(self.team()), NP(self.n(0, 4))],
            lambda: [NP(self.team()), NP(self.n(10, 12), self.n(0, 9), self.n(0, 4), self.n(0, 4), self.n(5, 30), self.n(5, 30), self.n(3, 30))],
            lambda: [NP(f"{self.r.randint(1, 9)}./CD"), NP(self.per()), P("("), NP(self.country()), P(")"),
                     NP(f"{self.r.randint(1, 3)}:{self.r.randint(0, 59):02d}.{self.r.randint(0, 99):02d}/CD")],
            lambda: [NP(self.per(1)), P("("), NP(self.country()), P(")"), VP("beat/VBD"), NP(self.per(1)), NP(self.score(), self.score())],
            lambda: [P("--"), NP(self.city(), "newsroom/NN"), NP(f"+{self.r.randint(30, 49)}/CD {self.r.randint(10, 99)}/CD {self.r.randint(100000, 999999)}/CD")],
            lambda: [NP(self.per()), VP("was/VBD not/RB available/JJ"), PP("for/IN"), NP("comment/NN"), P(".")],
            lambda: [NP(self.city()), VP("won/VBD"), NP(self.score()), P(".")],
            lambda: [NP("Attendance/NN"), P(":"), NP(f"{self.r.randint(1, 60)},{self.r.randint(0, 999):03d}/CD")],
        ]
        return self.pick(options)()

    def no_entity(self):
        options = [
            lambda: [NP("Trading/NN"), VP("was/VBD"), ADJP("thin/JJ"), P(".")],
            lambda: [NP("Prices/NNS"), VP("rose/VBD"), NP(self.dec(), "percent/NN"), PP("in/IN"), NP("the/DT week/NN"), P(".")],
            lambda: [NP("The/DT index/NN"), VP("closed/VBD"), NP(self.dec(), "points/NNS"), ADVP("lower/RBR"), PP("at/IN"), NP(self.price()), P(".")],
            lambda: [NP("No/DT further/JJ details/NNS"), VP("were/VBD given/VBN"), P(".")],
            lambda: [NP("Half-time/NN"), NP(self.score()), P(".")],
            lambda: [P('"'), NP("We/PRP"), VP("are/VBP"), ADJP("very/RB happy/JJ"), P(","), P('"'), NP("he/PRP"), VP("said/VBD"), P(".")],
            lambda: [NP("Police/NNS"), VP("said/VBD"), NP(self.n(2, 40), "people/NNS"), VP("were/VBD hurt/VBN"), P(".")],
        ]
        return self.pick(options)()

    def one_token(self):
        options = [lambda: [P("--")], lambda: [NP("Summary/NN")], lambda: [NP("Results/NNS")],
                   lambda: [NP(self.country())], lambda: [NP(ent("ORG", [self.pick(ORG_SINGLE)]))]]
        return self.pick(options)()

    def medium(self):
        options = [
            lambda: [NP(self.org()), VP("said/VBD"), PP("on/IN"), NP(self.day()), NP("it/PRP"), VP("would/MD cut/VB"),
                     NP(self.n(), "jobs/NNS"), PP("in/IN"), NP(self.city()), P(".")],
            lambda: [NP(self.per()), P(","), SBAR("who/WP"), VP("joined/VBD"), NP(self.org()), PP("in/IN"), NP("1994/CD"), P(","),
                     VP("will/MD lead/VB"), NP("the/DT", self.nat(), "delegation/NN"), P(".")],
            lambda: [NP(self.team()), VP("beat/VBD"), NP(self.team()), NP(self.score()), PP("in/IN"), NP("the/DT", self.event()),
                     PP("on/IN"), NP(self.day()), P(".")],
            lambda: [NP(self.per()), VP("scored/VBD"), ADVP("twice/RB"), PP("for/IN"), NP(self.team()), P(".")],
            lambda: [NP(self.country(), "'s/POS"), NP(self.city(), "airport/NN"), VP("was/VBD closed/VBN"), PP("for/IN"),
                     NP(self.n(2, 12), "hours/NNS"), P(".")],
            lambda: [NP("The/DT", self.org(), "index/NN"), VP("rose/VBD"), NP(self.dec(), "percent/NN"), PP("to/TO"), NP(self.price()), P(".")],
            lambda: [NP("Police/NNS"), PP("in/IN"), NP(self.city()), VP("said/VBD"), NP(self.n(2, 40), "people/NNS"),
                     VP("were/VBD arrested/VBN"), PP("after/IN"), NP("the/DT", self.event()), P(".")],
            lambda: [P('"'), NP("It/PRP"), VP("was/VBD"), NP("a/DT hard/JJ week/NN"), P(","), P('"'), NP(self.per()), VP("told/VBD"),
                     NP(self.org()), PP("in/IN"), NP(self.loc()), P(".")],
            lambda: [NP(self.nat(), "officials/NNS"), VP("met/VBD"), NP(self.per()), PP("in/IN"), NP(self.loc()), PP("on/IN"),
                     NP(self.pick(MONTHS) + "/NNP", self.n(1, 28)), P(".")],
        ]
        return self.pick(options)()

    def adjacent(self, typ):
        """A list whose neighbouring items are entities of one type (IOB1 B- tags)."""
        r = self.r
        if typ == "LOC":
            a, b, c = r.sample(CITIES, 3)
            return [NP("Routes/NNS"), P(":"), NP(ent("LOC", [a])), NP(ent("LOC", [b])), O("and/CC"), NP(ent("LOC", [c])), P(".")]
        if typ == "PER":
            return [NP("Squad/NN"), P(":"), NP(self.per(2)), NP(self.per(2)), P(","), NP(self.per(2)), NP(self.per(1)), P(".")]
        if typ == "ORG":
            a, b, c = r.sample(TEAMS, 3)
            return [NP("Standings/NNS"), P(":"), NP(ent("ORG", a)), NP(ent("ORG", b)), NP(ent("ORG", c)), P(".")]
        a, b = r.sample(NATIONS, 2)
        return [NP(ent("MISC", [a[1]], "JJ"), ent("MISC", [b[1]], "JJ"), "talks/NNS"), VP("resumed/VBD"), PP("in/IN"),
                NP(self.city()), P(".")]

    def long(self):
        """41-45 tokens, several entities, a 3-4-token entity starting at word 18-21."""
        r = self.r
        while True:
            start, total = r.randint(18, 21), r.randint(41, 45)
            head = [NP(self.per(2)), P(","), NP("the/DT", self.nat(), "trade/NN minister/NN"), P(","), VP("said/VBD")]
            fill = start - 17  # head so far 9 tokens, "on Tuesday that" 3, the middle part 5
            later = fill in (1, 4) or (fill == 3 and r.random() < 0.5)
            if later:
                head.append(ADVP("later/RB"))
            rest = fill - (1 if later else 0)
            if rest:
                head += [PP("in/IN"), NP(self.city(multi=(rest == 3)))]
            head += [PP("on/IN"), NP(self.day()), SBAR("that/IN")]
            typ = r.choice(["ORG", "PER", "LOC", "MISC"])
            if typ == "ORG":
                mid = [NP("the/DT government/NN"), VP("would/MD ask/VB"), NP("the/DT", ent("ORG", self.pick(ORG_LONG)))]
            elif typ == "PER":
                mid = [NP("the/DT government/NN"), VP("would/MD name/VB"), NP("envoy/NN", ent("PER", self.pick(LONG_PER)))]
            elif typ == "LOC":
                mid = [NP("the/DT new/JJ line/NN"), VP("would/MD reach/VB"), NP(ent("LOC", self.pick(LONG_LOC)))]
            else:
                mid = [NP("the/DT team/NN"), VP("would/MD skip/VB"), NP("the/DT", ent("MISC", self.pick(LONG_EVENTS)))]
            s = head + mid
            clauses = [
                lambda: [VP("before/IN"), NP(self.pick(MONTHS) + "/NNP", self.n(1, 28))],
                lambda: [P(","), SBAR("while/IN"), NP(self.org(), "shares/NNS"), VP("rose/VBD"), NP(self.dec(), "percent/NN")],
                lambda: [PP("in/IN"), NP(self.loc())],
                lambda: [P(","), NP(self.n(), "people/NNS"), VP("were/VBD told/VBN")],
                lambda: [O("and/CC"), VP("talk/VB"), PP("to/TO"), NP(self.per())],
                lambda: [PP("after/IN"), NP("the/DT", self.event())],
                lambda: [P(","), PP("according/VBG to/TO"), NP(self.org())],
                lambda: [ADVP("again/RB")],
                lambda: [PP("at/IN"), NP(self.price(), "points/NNS")],
            ]
            while sentence_length(s) < total - 1:
                s += self.pick(clauses)()
            s.append(P("."))
            if 41 <= sentence_length(s) <= 45:
                return s

    def body(self):
        kind = self.r.choices(["short", "medium", "none", "one", "long", "adjacent"], [52, 30, 12, 3, 1, 2])[0]
        if kind == "long":
            return self.long()
        if kind == "adjacent":
            return self.adjacent(self.pick(["LOC", "PER", "ORG", "MISC"]))
        return {"short": self.short, "medium": self.medium, "none": self.no_entity, "one": self.one_token}[kind]()


def generate(n_sentences, seed, adjacent_each, long_count):
    g = Gen(seed)
    r = g.r
    # Slots: each document opens with an optional headline and dateline, then body sentences.
    slots = []
    while len(slots) < n_sentences:
        size = r.randint(10, 20)
        doc = []
        if r.random() < 0.5:
            doc.append("headline")
        if r.random() < 0.7:
            doc.append("dateline")
        doc += ["body"] * (size - len(doc))
        doc[0] = ("doc", doc[0])
        slots += doc
    slots = slots[:n_sentences]
    body = [i for i, s in enumerate(slots) if (s[1] if isinstance(s, tuple) else s) == "body"]
    forced = [("adjacent", t) for t in ["LOC", "PER", "ORG", "MISC"] for _ in range(adjacent_each)] + [("long", None)] * long_count
    forced_at = dict(zip(r.sample(body, len(forced)), forced))
    docs = []
    for i, slot in enumerate(slots):
        if isinstance(slot, tuple):
            docs.append([])
            slot = slot[1]
        if i in forced_at:
            kind, typ = forced_at[i]
            phrases = g.adjacent(typ) if kind == "adjacent" else g.long()
        else:
            phrases = {"headline": g.headline, "dateline": g.dateline, "body": g.body}[slot]()
        docs[-1].append(finish(phrases))
    return docs


def render(docs):
    lines = []
    for doc in docs:
        lines += ["-DOCSTART- -X- -X- O", ""]
        for rows in doc:
            lines += [" ".join(row) for row in rows] + [""]
    return "\n".join(lines) + "\n"


def iob1_to_iob2(tags):
    out, prev = [], "O"
    for tag in tags:
        out.append("B-" + tag[2:] if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]) else tag)
        prev = tag
    return out


def stats(text):
    """Sentences, tokens and IOB2 tag counts of a written file (read back from its text)."""
    sentences, current = [], []
    for line in text.split("\n"):
        parts = line.split(" ")
        if not line or parts[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
            current = []
            continue
        assert len(parts) == 4 and all(parts), line
        current.append(parts)
    if current:
        sentences.append(current)
    counts, iob1_b, long_crossing = collections.Counter(), 0, 0
    for s in sentences:
        tags = [p[3] for p in s]
        for i, tag in enumerate(tags):
            if tag.startswith("B-"):
                assert i > 0 and tags[i - 1][2:] == tag[2:], ("B- must follow the same type", s)
                iob1_b += 1
        iob2 = iob1_to_iob2(tags)
        counts.update(iob2)
        if len(s) > 40:
            for i, tag in enumerate(iob2):
                if tag.startswith("B-") and 18 <= i <= 21 and i + 2 < len(s) and iob2[i + 2] == "I-" + tag[2:]:
                    long_crossing += 1
                    break
    return sentences, counts, iob1_b, long_crossing


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, n, seed, adjacent_each, long_count in FILES:
        text = render(generate(n, seed, adjacent_each, long_count))
        path = os.path.join(OUT_DIR, name)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        data = text.encode("utf-8")
        sentences, counts, iob1_b, crossing = stats(text)
        lengths = [len(s) for s in sentences]
        print(f"{os.path.relpath(path, ROOT)}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
        print(f"  {len(sentences)} sentences, {sum(lengths)} tokens, lengths {min(lengths)}-{max(lengths)}, "
              f"{sum(l > 40 for l in lengths)} over 40 ({crossing} with an entity of 3+ tokens from word 18-21), "
              f"{sum(l == 1 for l in lengths)} of one token, {text.count('-DOCSTART-')} documents")
        print(f"  IOB1 B- tags (adjacent same-type entities): {iob1_b}")
        types = ["PER", "LOC", "ORG", "MISC"]
        print("  IOB2 supports: " + ", ".join(f"{p}-{t} {counts[p + '-' + t]}" for t in types for p in "BI") + f", O {counts['O']}")
        print("  entities: " + ", ".join(f"{t} {counts['B-' + t]}" for t in types) + f", total {sum(counts['B-' + t] for t in types)}")


if __name__ == "__main__":
    main()
