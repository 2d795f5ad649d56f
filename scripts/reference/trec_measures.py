"""Per-query retrieval measures of a TREC run by pytrec_eval (trec_eval), as BEIR reports them.

    python3 scripts/reference/trec_measures.py RUN QRELS.tsv

RUN: six columns `qid Q0 docid rank score tag`; QRELS.tsv: BEIR's header then
`query-id corpus-id score`. Prints one JSON object: query id -> {"ndcg@10", "mrr@10",
"recall@10", "recall@100", "map@100"}. MRR@10 is trec_eval's recip_rank on the run cut to its ten
best documents in trec_eval's order (score descending, then document id descending).
"""
import json
import sys

import pytrec_eval

run_path, qrels_path = sys.argv[1], sys.argv[2]
run = {}
for line in open(run_path, encoding="utf-8"):
    if line.strip():
        q, _, d, _, score, _ = line.split()
        run.setdefault(q, {})[d] = float(score)
qrels = {}
with open(qrels_path, encoding="utf-8") as f:
    next(f)
    for line in f:
        if line.strip():
            q, d, grade = line.rstrip("\n").split("\t")
            qrels.setdefault(q, {})[d] = int(grade)

measures = {"ndcg_cut.10", "recall.10,100", "map_cut.100"}
scores = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
top10 = {
    q: dict(sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:10])
    for q, docs in run.items()
}
rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
out = {
    q: {
        "ndcg@10": s["ndcg_cut_10"],
        "mrr@10": rr[q]["recip_rank"],
        "recall@10": s["recall_10"],
        "recall@100": s["recall_100"],
        "map@100": s["map_cut_100"],
    }
    for q, s in scores.items()
}
json.dump(out, sys.stdout, indent=1, sort_keys=True)
