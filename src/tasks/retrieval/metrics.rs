//! Retrieval metrics as trec_eval (and so pytrec_eval and BEIR) computes them, from a run and
//! graded judgements: nDCG@10, MRR@10, recall@10, recall@100 and MAP@100.
//!
//! trec_eval's rules, which these follow to the letter: a run's documents are ranked by score
//! (ties: larger document id first, [`crate::data::trec::trec_order`]); a document is relevant when its grade is
//! above 0; nDCG's gain is the grade itself with a `log2(rank + 1)` discount and the ideal
//! ranking of all judged grades; recall and MAP divide by all relevant documents of the query;
//! a query is scored when it is both in the run and the judgements, and the means are over those
//! queries. MRR@10 is trec_eval's `recip_rank` on the run cut at 10, as BEIR reports it.
//! Written here rather than bound from C: five measures are a page of code, and the tests check
//! them against pytrec_eval on the same run and judgements.

use crate::data::beir::Qrels;
use crate::data::trec::Run;
use serde::Serialize;
use std::collections::BTreeMap;

/// One query's scores, or their means. The JSON keys are the names the field reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RetrievalScores {
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    #[serde(rename = "mrr@10")]
    pub mrr_at_10: f64,
    #[serde(rename = "recall@10")]
    pub recall_at_10: f64,
    #[serde(rename = "recall@100")]
    pub recall_at_100: f64,
    #[serde(rename = "map@100")]
    pub map_at_100: f64,
}

impl RetrievalScores {
    fn values(&self) -> [f64; 5] {
        [
            self.ndcg_at_10,
            self.mrr_at_10,
            self.recall_at_10,
            self.recall_at_100,
            self.map_at_100,
        ]
    }

    fn from_values(v: [f64; 5]) -> Self {
        RetrievalScores {
            ndcg_at_10: v[0],
            mrr_at_10: v[1],
            recall_at_10: v[2],
            recall_at_100: v[3],
            map_at_100: v[4],
        }
    }
}

/// Per-query scores and their means.
#[derive(Debug, Clone, Serialize)]
pub struct RetrievalReport {
    /// Queries scored (in both the run and the judgements).
    pub queries: usize,
    pub mean: RetrievalScores,
    pub per_query: BTreeMap<String, RetrievalScores>,
}

/// Scores `run` against `qrels`.
pub fn evaluate(run: &Run, qrels: &Qrels) -> RetrievalReport {
    let per_query: BTreeMap<String, RetrievalScores> = run
        .queries
        .iter()
        .filter_map(|(q, docs)| {
            let judged = qrels.get(q)?;
            let grades: Vec<i64> = docs
                .iter()
                .map(|(d, _)| judged.get(d).copied().unwrap_or(0).max(0))
                .collect();
            Some((q.clone(), query_scores(&grades, judged)))
        })
        .collect();
    let n = per_query.len();
    let mut sums = [0.0; 5];
    for s in per_query.values() {
        for (sum, v) in sums.iter_mut().zip(s.values()) {
            *sum += v;
        }
    }
    let mean = RetrievalScores::from_values(sums.map(|s| if n == 0 { 0.0 } else { s / n as f64 }));
    RetrievalReport {
        queries: n,
        mean,
        per_query,
    }
}

/// The measures of one query from the grades of its retrieved documents in rank order.
fn query_scores(grades: &[i64], judged: &BTreeMap<String, i64>) -> RetrievalScores {
    let relevant = judged.values().filter(|&&g| g > 0).count();
    let mut ideal: Vec<i64> = judged.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let dcg = |g: &[i64]| -> f64 {
        g.iter()
            .take(10)
            .enumerate()
            .map(|(i, &gain)| gain as f64 / ((i + 2) as f64).log2())
            .sum()
    };
    let ideal_dcg = dcg(&ideal);
    let recall_at = |k: usize| {
        let found = grades.iter().take(k).filter(|&&g| g > 0).count();
        if relevant == 0 {
            0.0
        } else {
            found as f64 / relevant as f64
        }
    };
    let first = grades.iter().take(10).position(|&g| g > 0);
    let mut hits = 0;
    let mut precision_sum = 0.0;
    for (i, &g) in grades.iter().take(100).enumerate() {
        if g > 0 {
            hits += 1;
            precision_sum += hits as f64 / (i + 1) as f64;
        }
    }
    RetrievalScores {
        ndcg_at_10: if ideal_dcg > 0.0 {
            dcg(grades) / ideal_dcg
        } else {
            0.0
        },
        mrr_at_10: first.map_or(0.0, |r| 1.0 / (r + 1) as f64),
        recall_at_10: recall_at(10),
        recall_at_100: recall_at(100),
        map_at_100: if relevant == 0 {
            0.0
        } else {
            precision_sum / relevant as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qrels(rows: &[(&str, &str, i64)]) -> Qrels {
        let mut q = Qrels::new();
        for &(qid, d, g) in rows {
            q.entry(qid.into()).or_default().insert(d.into(), g);
        }
        q
    }

    #[test]
    fn hand_computed_query() {
        // Ranked: a (grade 2), x (unjudged), b (0), c (1); judged relevant: a, c, e (grade 1).
        let mut run = Run::default();
        let docs = [("a", 0.9), ("x", 0.8), ("b", 0.7), ("c", 0.6)];
        run.insert("q", docs.iter().map(|&(d, s)| (d.to_string(), s)).collect());
        let judged = qrels(&[("q", "a", 2), ("q", "b", 0), ("q", "c", 1), ("q", "e", 1)]);
        let r = evaluate(&run, &judged);
        let dcg = 2.0 + 1.0 / 5f64.log2();
        let ideal = 2.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        let s = r.mean;
        assert!((s.ndcg_at_10 - dcg / ideal).abs() < 1e-12);
        assert_eq!(s.mrr_at_10, 1.0);
        assert!((s.recall_at_10 - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.map_at_100 - (1.0 + 2.0 / 4.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn only_queries_in_both_count_and_cutoffs_hold() {
        let mut run = Run::default();
        // The relevant document at rank 11: outside @10, inside @100.
        let docs: Vec<(String, f64)> = (0..20)
            .map(|i| (format!("d{i:02}"), 1.0 - i as f64 / 100.0))
            .collect();
        run.insert("q1", docs);
        run.insert("unjudged", vec![("d00".into(), 1.0)]);
        let r = evaluate(&run, &qrels(&[("q1", "d10", 1), ("q2", "d00", 1)]));
        assert_eq!(r.queries, 1);
        let s = r.per_query["q1"];
        assert_eq!((s.ndcg_at_10, s.mrr_at_10, s.recall_at_10), (0.0, 0.0, 0.0));
        assert_eq!(s.recall_at_100, 1.0);
        assert!((s.map_at_100 - 1.0 / 11.0).abs() < 1e-12);
    }
}
