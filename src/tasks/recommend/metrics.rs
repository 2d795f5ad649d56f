//! Ranking quality per impression, as MIND's official `evaluate.py` computes it, averaged over
//! impressions: AUC (scikit-learn's `roc_auc_score`: the Mann–Whitney statistic, ties counted
//! half), MRR (`Σ clicked / rank` over the clicks), nDCG@k (gains `2^y − 1`, discounts
//! `log2(rank + 1)`, divided by the ideal DCG@k). The ranking sorts by score, best first; equal
//! scores rank the later candidate first, which is what `evaluate.py`'s
//! `np.argsort(scores)[::-1]` does on MIND-sized lists.

/// The candidates' positions, best score first (ties: the later candidate first).
pub fn ranking(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(b.cmp(&a)));
    order
}

/// Each candidate's 1-based rank, in candidate order (MIND's submission format).
pub fn ranks(scores: &[f32]) -> Vec<usize> {
    let mut ranks = vec![0; scores.len()];
    for (r, i) in ranking(scores).into_iter().enumerate() {
        ranks[i] = r + 1;
    }
    ranks
}

/// ROC AUC of one impression; `None` when it has only clicks or only non-clicks (undefined:
/// scikit-learn raises).
pub fn auc(labels: &[u8], scores: &[f32]) -> Option<f64> {
    let positives = labels.iter().filter(|&&y| y > 0).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Average ranks (1-based, ascending score), ties sharing the mean of their ranks.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += mean_rank * order[i..=j].iter().filter(|&&k| labels[k] > 0).count() as f64;
        i = j + 1;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * n))
}

/// Mean reciprocal rank of the clicks.
pub fn mrr(labels: &[u8], scores: &[f32]) -> f64 {
    let clicks: f64 = labels.iter().map(|&y| f64::from(y)).sum();
    if clicks == 0.0 {
        return 0.0;
    }
    let rr: f64 = ranking(scores)
        .iter()
        .enumerate()
        .map(|(r, &i)| f64::from(labels[i]) / (r + 1) as f64)
        .sum();
    rr / clicks
}

/// DCG of the top `k` of `order` (gains `2^y − 1`).
fn dcg(labels: &[u8], order: &[usize], k: usize) -> f64 {
    order
        .iter()
        .take(k)
        .enumerate()
        .map(|(r, &i)| (2f64.powi(i32::from(labels[i])) - 1.0) / ((r + 2) as f64).log2())
        .sum()
}

/// nDCG@k of one impression (0 when nothing was clicked).
pub fn ndcg(labels: &[u8], scores: &[f32], k: usize) -> f64 {
    let mut ideal: Vec<usize> = (0..labels.len()).collect();
    ideal.sort_by(|&a, &b| labels[b].cmp(&labels[a]).then(b.cmp(&a)));
    let best = dcg(labels, &ideal, k);
    if best == 0.0 {
        return 0.0;
    }
    dcg(labels, &ranking(scores), k) / best
}

/// Running means of the four measures over impressions.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    auc: f64,
    mrr: f64,
    ndcg5: f64,
    ndcg10: f64,
    /// Impressions averaged.
    pub counted: usize,
    /// Impressions left out: all clicked or none clicked (AUC undefined).
    pub skipped: usize,
    /// Impressions without click labels (a test set), ranked but not measured.
    pub unlabelled: usize,
}

impl Totals {
    pub fn add(&mut self, labels: &[u8], scores: &[f32]) {
        let Some(auc) = auc(labels, scores) else {
            self.skipped += 1;
            return;
        };
        self.auc += auc;
        self.mrr += mrr(labels, scores);
        self.ndcg5 += ndcg(labels, scores, 5);
        self.ndcg10 += ndcg(labels, scores, 10);
        self.counted += 1;
    }

    /// `auc`, `mrr`, `ndcg@5`, `ndcg@10`, each the mean over counted impressions.
    pub fn means(&self) -> Vec<(String, f64)> {
        let n = self.counted.max(1) as f64;
        vec![
            ("auc".into(), self.auc / n),
            ("mrr".into(), self.mrr / n),
            ("ndcg@5".into(), self.ndcg5 / n),
            ("ndcg@10".into(), self.ndcg10 / n),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        // Scores rank the candidates 2, 0, 3, 1; clicks on 0 and 1.
        let labels = [1, 1, 0, 0];
        let scores = [0.8, 0.1, 0.9, 0.3];
        assert_eq!(ranking(&scores), vec![2, 0, 3, 1]);
        assert_eq!(ranks(&scores), vec![2, 4, 1, 3]);
        // Pairs (click, non-click) ordered right: (0,3) only of (0,2) (0,3) (1,2) (1,3).
        assert_eq!(auc(&labels, &scores), Some(0.25));
        assert!((mrr(&labels, &scores) - (1.0 / 2.0 + 1.0 / 4.0) / 2.0).abs() < 1e-12);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let ideal = 1.0 + 1.0 / 3f64.log2();
        assert!((ndcg(&labels, &scores, 10) - dcg / ideal).abs() < 1e-12);
        assert!((ndcg(&labels, &scores, 2) - (1.0 / 3f64.log2()) / ideal).abs() < 1e-12);
        // Ties count half; an impression of one class has no AUC.
        assert_eq!(auc(&[1, 0], &[0.5, 0.5]), Some(0.5));
        assert_eq!(auc(&[1, 1], &[0.5, 0.2]), None);
        let mut totals = Totals::default();
        totals.add(&[1, 1], &[0.5, 0.2]);
        totals.add(&[0, 1], &[0.1, 0.9]);
        assert_eq!((totals.counted, totals.skipped), (1, 1));
        assert_eq!(totals.means()[0], ("auc".into(), 1.0));
    }
}
