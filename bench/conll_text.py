"""The sentences of a CoNLL file as plain texts (words joined by spaces), for the server
benchmarks' request bodies (bench/serve_texts.py, bench/soak_mix.py)."""


def sentences(path):
    out, words = [], []
    for line in open(path, encoding="utf-8"):
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if words:
                out.append(" ".join(words))
            words = []
        else:
            words.append(parts[0])
    if words:
        out.append(" ".join(words))
    return out
