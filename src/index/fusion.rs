//! Reciprocal-rank fusion (Cormack, Clarke & Büttcher 2009): a document's fused score is
//! `Σ 1 / (K + rank)` over the rankings it appears in (rank from 1, K = 60), so a hybrid of
//! BM25 and dense search needs no calibration of their incomparable scores.

use std::collections::HashMap;

/// The constant of the original paper, the one every hybrid search engine defaults to.
pub const K: f64 = 60.0;

/// The fused ranking of `rankings` (each best first), best first; ties keep the order of first
/// appearance.
pub fn reciprocal_rank<T: Clone + Eq + std::hash::Hash>(rankings: &[Vec<T>]) -> Vec<(T, f64)> {
    let mut fused: Vec<(T, f64)> = Vec::new();
    let mut at: HashMap<T, usize> = HashMap::new();
    for ranking in rankings {
        for (rank, item) in ranking.iter().enumerate() {
            let gain = 1.0 / (K + rank as f64 + 1.0);
            match at.get(item) {
                Some(&i) => fused[i].1 += gain,
                None => {
                    at.insert(item.clone(), fused.len());
                    fused.push((item.clone(), gain));
                }
            }
        }
    }
    fused.sort_by(|a, b| b.1.total_cmp(&a.1));
    fused
}

/// How deep each ranking of a search in `mode` goes for `top` results: hybrid fuses the first
/// 100 of each (at least `top`), so that a document ranked low by one side can still win.
pub fn depth(mode: super::SearchMode, top: usize) -> usize {
    match mode {
        super::SearchMode::Hybrid => top.max(100),
        _ => top,
    }
}

/// One ranking from a dense and a lexical one: whichever there is, or both fused.
pub fn combine<T: Clone + Eq + std::hash::Hash>(
    dense: Option<Vec<(T, f64)>>,
    lexical: Option<Vec<(T, f64)>>,
) -> Vec<(T, f64)> {
    match (dense, lexical) {
        (Some(d), None) => d,
        (None, Some(l)) => l,
        (Some(d), Some(l)) => {
            let items = |r: Vec<(T, f64)>| r.into_iter().map(|(t, _)| t).collect();
            reciprocal_rank(&[items(d), items(l)])
        }
        (None, None) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_in_both_rankings_wins() {
        let fused = reciprocal_rank(&[vec!['a', 'b', 'c'], vec!['c', 'd']]);
        let order: String = fused.iter().map(|(c, _)| *c).collect();
        assert_eq!(order, "cabd");
        assert!((fused[0].1 - (1.0 / 63.0 + 1.0 / 61.0)).abs() < 1e-12);
        assert!((fused[1].1 - 1.0 / 61.0).abs() < 1e-12);
    }
}
