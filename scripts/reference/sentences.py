"""The sentences the parity fixtures are computed on: short and long, ASCII and not."""

LONG = " ".join(
    [
        "The Reuters news agency reported on Tuesday that shareholders of the company approved",
        "the merger after months of negotiations, while analysts in London, Frankfurt and Tokyo",
        "debated whether the combined group could cut costs by the 1.2 billion dollars promised.",
    ]
    * 9
)

SENTENCES = [
    "Hello world",
    "a",
    "Café crème brûlée, naïve façade — déjà vu in São Paulo.",
    "Emoji 😀🚀🎉 and CJK: 東京は日本の首都です。北京欢迎你！서울",
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn",
    LONG,
    "Positional encodings tell a parallel encoder where each token stands.",
]
