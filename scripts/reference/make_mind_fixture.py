#!/usr/bin/env python3
"""Writes tests/fixtures/mind/{train,dev}: a tiny click log in MIND's layout for the recommender
tests. Five topics, news texts drawn from each topic's words (all in st_tiny's vocabulary); each
user follows one topic, clicks news of it in every impression and never the others. Dev has its
own news (unseen texts, other ids) and users. Deterministic (seeded): rerun to regenerate.

  python3 scripts/reference/make_mind_fixture.py tests/fixtures/mind
"""
import os
import random
import sys

TOPICS = {
    "oil": "oil opec crude barrel brent energy fuel output inventories".split(),
    "gold": "gold bullion mines mining london vienna".split(),
    "grain": "wheat corn grain harvest farmers crop agriculture sugar coffee".split(),
    "rates": "fed rates interest inflation reserve central bank policy".split(),
    "merger": "merger takeover bid acquisition hostile offer rival board".split(),
}
COMMON = "the prices rose fell in to of year month report expected sharply".split()


def text(rng, topic, n):
    words = rng.sample(TOPICS[topic], 3) + rng.sample(COMMON, 2)
    rng.shuffle(words)
    return " ".join(words[:n])


def write(out, prefix, rng, news_per_topic, users, impressions_per_user):
    os.makedirs(out, exist_ok=True)
    news = []  # (id, topic)
    with open(os.path.join(out, "news.tsv"), "w") as f:
        for topic in TOPICS:
            for _ in range(news_per_topic):
                nid = f"{prefix}{len(news) + 1}"
                news.append((nid, topic))
                cols = [nid, "", "", text(rng, topic, 5), text(rng, topic, 4), "", "[]", "[]"]
                f.write("\t".join(cols) + "\n")
    by_topic = {t: [n for n, tt in news if tt == t] for t in TOPICS}
    imp = 0
    with open(os.path.join(out, "behaviors.tsv"), "w") as f:
        for u in range(users):
            topic = rng.choice(sorted(TOPICS))
            history = rng.sample(by_topic[topic], rng.randint(0 if u % 7 == 0 else 2, 4))
            for _ in range(impressions_per_user):
                imp += 1
                clicks = rng.sample(by_topic[topic], 2)
                others = rng.sample([n for n, t in news if t != topic], 5)
                shown = [f"{n}-1" for n in clicks] + [f"{n}-0" for n in others]
                rng.shuffle(shown)
                f.write(f"{imp}\tU{prefix}{u}\t11/15/2019 8:00:00 AM\t{' '.join(history)}\t{' '.join(shown)}\n")


def main():
    root = sys.argv[1]
    rng = random.Random(7)
    write(os.path.join(root, "train"), "N", rng, news_per_topic=8, users=24, impressions_per_user=2)
    write(os.path.join(root, "dev"), "D", rng, news_per_topic=4, users=12, impressions_per_user=1)


if __name__ == "__main__":
    main()
