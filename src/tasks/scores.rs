//! A head's logits turned into probabilities and decisions, in one place so that `predict`,
//! `eval`, fine-tuning's evaluation and the server cannot disagree: one softmax, one sigmoid,
//! and one argmax whose tie rule is the first maximum (as numpy's and PyTorch's).

/// Probabilities over classes (max-subtracted, so large logits do not overflow).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Independent per-class probabilities (multi-label heads).
pub fn sigmoid(logits: &[f32]) -> Vec<f32> {
    logits.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect()
}

/// The index of the largest score; on a tie the first (lowest index) wins. 0 when empty.
pub(crate) fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if s.total_cmp(&scores[best]).is_gt() {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[0.5, 0.5]), 0);
        assert_eq!(argmax(&[-3.0, -1.0, -2.0]), 1);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn softmax_is_stable_and_sums_to_one() {
        let p = softmax(&[1000.0, 1000.0, 0.0]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6 && p[2] == 0.0);
        let q = softmax(&[0.3, -1.2, 2.0]);
        assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        // Same order as the logits.
        assert!(q[2] > q[0] && q[0] > q[1]);
    }

    #[test]
    fn sigmoid_is_one_half_at_zero() {
        assert_eq!(sigmoid(&[0.0]), vec![0.5]);
        assert!(sigmoid(&[40.0])[0] > 0.999_999 && sigmoid(&[-40.0])[0] < 1e-6);
    }
}
