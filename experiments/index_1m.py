"""The dense index at scale, side by side: positio's graph (usearch's C++ core through the
`usearch` crate, built and searched by the same functions as `positio index`) against the
`usearch` and `hnswlib` Python packages, on the same vectors, parameters and machine.

Vectors with the structure of real embeddings: a mixture of 1,000 Gaussian clusters in 384
dimensions (centres on the unit sphere, spread 0.35 / sqrt(d) around them, then normalised),
queries drawn the same way; uniform random vectors would make every index exhaustive. The
exact 10 nearest neighbours of each query come from a blocked matrix product (numpy).

    python experiments/index_1m.py --n 1000000 --queries 1000 --out /tmp/index_1m
        [--positio target/release/positio] [--m 16] [--ef-construction 128] [--ef 64 128 256]

Prints the CPU, one JSON line per library and a Markdown table with ratios to positio.
Needs numpy, usearch and hnswlib (pip install numpy usearch hnswlib).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def mixture(n, d, centres, rng, spread=0.35):
    """Unit vectors around random unit centres."""
    out = np.empty((n, d), dtype=np.float32)
    block = 100_000
    for start in range(0, n, block):
        m = min(block, n - start)
        which = rng.integers(0, len(centres), m)
        v = centres[which] + rng.standard_normal((m, d), dtype=np.float32) * (spread / np.sqrt(d))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[start:start + m] = v
    return out


def exact_neighbours(data, queries, k):
    best = np.empty((len(queries), k), dtype=np.int32)
    for start in range(0, len(queries), 100):
        q = queries[start:start + 100]
        scores = q @ data.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.take_along_axis(scores, part, 1).argsort(axis=1)[:, ::-1]
        best[start:start + 100] = np.take_along_axis(part, order, 1)
    return best


def prepare(args):
    os.makedirs(args.out, exist_ok=True)
    paths = {name: os.path.join(args.out, name) for name in ["vectors.f32", "queries.f32", "truth.i32"]}
    meta = os.path.join(args.out, "meta.json")
    want = {"n": args.n, "queries": args.queries, "dim": args.dim, "clusters": args.clusters, "seed": args.seed}
    if os.path.exists(meta) and json.load(open(meta)) == want:
        data = np.fromfile(paths["vectors.f32"], dtype=np.float32).reshape(args.n, args.dim)
        queries = np.fromfile(paths["queries.f32"], dtype=np.float32).reshape(args.queries, args.dim)
        truth = np.fromfile(paths["truth.i32"], dtype=np.int32).reshape(args.queries, -1)
        return data, queries, truth, paths
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters, args.dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = mixture(args.n, args.dim, centres, rng)
    queries = mixture(args.queries, args.dim, centres, rng)
    t = time.perf_counter()
    truth = exact_neighbours(data, queries, 10)
    print(f"exact neighbours in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    data.tofile(paths["vectors.f32"])
    queries.tofile(paths["queries.f32"])
    truth.tofile(paths["truth.i32"])
    json.dump(want, open(meta, "w"))
    return data, queries, truth, paths


def timed_searches(search, queries, truth, k=10):
    for q in queries:  # warm-up pass, as positio's
        search(q, k)
    millis, found = [], 0
    for q, exact in zip(queries, truth):
        t = time.perf_counter()
        keys = search(q, k)
        millis.append((time.perf_counter() - t) * 1e3)
        found += len(set(int(x) for x in keys) & set(int(x) for x in exact[:k]))
    millis.sort()
    at = lambda p: millis[round((len(millis) - 1) * p)]
    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "recall": found / (len(queries) * k)}


def run_usearch(data, queries, truth, args):
    from usearch.index import Index
    before = rss()
    t = time.perf_counter()
    index = Index(ndim=args.dim, metric="ip", dtype="f32", connectivity=args.m,
                  expansion_add=args.ef_construction, expansion_search=args.ef[0])
    index.add(np.arange(len(data), dtype=np.uint64), data, threads=os.cpu_count())
    build = time.perf_counter() - t
    extra = rss() - before
    runs = []
    for ef in args.ef:
        index.expansion_search = ef
        r = timed_searches(lambda q, k: index.search(q, k, threads=1).keys, queries, truth)
        runs.append({"ef": ef, **r})
    return {"library": "usearch (Python)", "build_seconds": build, "build_extra_bytes": extra, "search": runs}


def run_hnswlib(data, queries, truth, args):
    import hnswlib
    before = rss()
    t = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=args.dim)
    index.init_index(max_elements=len(data), M=args.m, ef_construction=args.ef_construction)
    index.set_num_threads(os.cpu_count())
    index.add_items(data, np.arange(len(data)))
    build = time.perf_counter() - t
    extra = rss() - before
    index.set_num_threads(1)
    runs = []
    for ef in args.ef:
        index.set_ef(ef)
        r = timed_searches(lambda q, k: index.knn_query(q, k)[0][0], queries, truth)
        runs.append({"ef": ef, **r})
    return {"library": "hnswlib (Python)", "build_seconds": build, "build_extra_bytes": extra, "search": runs}


def run_positio(paths, args):
    cmd = [args.positio, "index", "bench", "--vectors", paths["vectors.f32"], "--queries", paths["queries.f32"],
           "--truth", paths["truth.i32"], "--dim", str(args.dim), "--connectivity", str(args.m),
           "--expansion-add", str(args.ef_construction), "--scratch", os.path.join(args.out, "positio-graph")]
    for ef in args.ef:
        cmd += ["--ef", str(ef)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    r["build_extra_bytes"] = r.pop("build_peak_extra_bytes")
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=128)
    p.add_argument("--ef", type=int, nargs="+", default=[64, 128])
    p.add_argument("--out", default="/tmp/index_1m")
    p.add_argument("--positio", default="target/release/positio")
    p.add_argument("--only", nargs="+", default=["positio", "usearch", "hnswlib"])
    args = p.parse_args()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.n} vectors of {args.dim}, "
          f"{args.clusters} clusters, {args.queries} queries, M={args.m}, efConstruction={args.ef_construction}",
          flush=True)
    data, queries, truth, paths = prepare(args)
    results = []
    for name in args.only:
        if name == "positio":
            r = run_positio(paths, args)
        elif name == "usearch":
            r = run_usearch(data, queries, truth, args)
        else:
            r = run_hnswlib(data, queries, truth, args)
        print(json.dumps(r), flush=True)
        results.append(r)
    base = next((r for r in results if r["library"].startswith("positio")), results[0])
    print("\n| library | build s | build memory MiB | ef | p50 ms | p95 ms | recall@10 | p50 vs positio |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        for s, b in zip(r["search"], base["search"]):
            print(f"| {r['library']} | {r['build_seconds']:.1f} | {r['build_extra_bytes'] / 2**20:.0f} | {s['ef']} | "
                  f"{s['p50_ms']:.3f} | {s['p95_ms']:.3f} | {s['recall']:.4f} | {s['p50_ms'] / b['p50_ms']:.2f}× |")


if __name__ == "__main__":
    main()
