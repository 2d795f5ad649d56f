//! Reciprocal-rank fusion (Cormack, Clarke & Büttcher 2009): a document's fused score is
//! `Σ 1 / (K + rank)` over the rankings it appears in (rank from 1, K = 60), so a hybrid of
//! BM25 and dense search needs no calibration of their incomparable scores.

use std::collections::HashMap;

/// The constant of the original paper, the one every hybrid search engine defaults to.
pub const K: f64 = 60.0;

/// The fused ranking of `rankings` (each best first), best first; ties keep the order of first
/// appearance.
pub fn reciprocal_rank<T: Copy + Eq + std::hash::Hash>(rankings: &[Vec<T>]) -> Vec<(T, f64)> {
    let mut fused: Vec<(T, f64)> = Vec::new();
    let mut at: HashMap<T, usize> = HashMap::new();
    for ranking in rankings {
        for (rank, &item) in ranking.iter().enumerate() {
            let gain = 1.0 / (K + rank as f64 + 1.0);
            match at.get(&item) {
                Some(&i) => fused[i].1 += gain,
                None => {
                    at.insert(item, fused.len());
                    fused.push((item, gain));
                }
            }
        }
    }
    fused.sort_by(|a, b| b.1.total_cmp(&a.1));
    fused
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
