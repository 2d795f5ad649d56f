//! Self-supervised objectives: which positions a language-modelling loss is computed at, what
//! the model sees there, and what it must predict.

use crate::model::encoder::indices;
use crate::model::heads::LmTargets;
use crate::rng::Rng;
use burn::tensor::Device;

/// BERT's masking recipe (Devlin et al. 2019).
#[derive(Debug, Clone, Copy)]
pub struct MaskingConfig {
    /// Share of (non-special) tokens selected for prediction.
    pub probability: f64,
    /// Of the selected: share replaced by \[MASK\] ...
    pub mask_share: f64,
    /// ... share replaced by a random token (the rest stay unchanged).
    pub random_share: f64,
    /// Select whole words (a word piece and its `##` continuations) together.
    pub whole_word: bool,
}

impl Default for MaskingConfig {
    fn default() -> Self {
        MaskingConfig {
            probability: 0.15,
            mask_share: 0.8,
            random_share: 0.1,
            whole_word: false,
        }
    }
}

/// Token ids the masking needs to know about.
#[derive(Debug, Clone)]
pub struct SpecialTokens {
    pub mask_id: u32,
    /// Ids never selected (e.g. \[CLS\], \[SEP\], \[PAD\]).
    pub never: Vec<u32>,
    pub vocab_size: usize,
    /// For whole-word masking: whether each id continues the previous word (`##` pieces).
    pub continuation: Vec<bool>,
}

/// Masked sequences and their targets (flat positions into the padded batch).
#[derive(Debug, Clone, PartialEq)]
pub struct Masked {
    pub inputs: Vec<Vec<u32>>,
    pub positions: Vec<usize>,
    pub targets: Vec<u32>,
}

impl Masked {
    pub fn targets(&self, device: &Device) -> LmTargets {
        lm_targets(&self.positions, &self.targets, device)
    }
}

pub fn lm_targets(positions: &[usize], targets: &[u32], device: &Device) -> LmTargets {
    let targets: Vec<usize> = targets.iter().map(|&t| t as usize).collect();
    LmTargets {
        positions: indices(positions, device),
        targets: indices(&targets, device),
    }
}

/// Applies BERT masking to a batch; `len` is the padded length the positions index into.
/// At least one token per batch is selected, so the loss is always defined.
pub fn mask_tokens(
    seqs: &[Vec<u32>],
    len: usize,
    cfg: &MaskingConfig,
    special: &SpecialTokens,
    rng: &mut Rng,
) -> Masked {
    let mut inputs = seqs.to_vec();
    let (mut positions, mut targets) = (Vec::new(), Vec::new());
    // One draw per selected unit: a whole word is masked, randomised or kept together.
    let mut select = |seq: &mut [u32], unit: &[usize], row: usize, rng: &mut Rng| {
        let r = rng.uniform();
        for &i in unit {
            positions.push(row * len + i);
            targets.push(seq[i]);
            if r < cfg.mask_share {
                seq[i] = special.mask_id;
            } else if r < cfg.mask_share + cfg.random_share {
                seq[i] = rng.below(special.vocab_size) as u32;
            }
        }
    };
    let mut candidates = Vec::new();
    let mut any = false;
    for (row, seq) in seqs.iter().enumerate() {
        // Units of selection: single tokens, or whole words.
        let mut units: Vec<Vec<usize>> = Vec::new();
        for (i, &t) in seq.iter().enumerate() {
            if special.never.contains(&t) {
                continue;
            }
            let continues = cfg.whole_word
                && special
                    .continuation
                    .get(t as usize)
                    .copied()
                    .unwrap_or(false);
            match units.last_mut() {
                Some(unit) if continues && unit.last() == Some(&(i - 1)) => unit.push(i),
                _ => units.push(vec![i]),
            }
        }
        for unit in units {
            let selected = rng.uniform() < cfg.probability;
            candidates.push((row, unit.clone()));
            if selected {
                select(&mut inputs[row], &unit, row, rng);
                any = true;
            }
        }
    }
    if !any && !candidates.is_empty() {
        let (row, unit) = candidates[rng.below(candidates.len())].clone();
        select(&mut inputs[row], &unit, row, rng);
    }
    // Sorted positions keep the gather cache-friendly and make the output canonical.
    let mut order: Vec<usize> = (0..positions.len()).collect();
    order.sort_by_key(|&i| positions[i]);
    Masked {
        inputs,
        positions: order.iter().map(|&i| positions[i]).collect(),
        targets: order.iter().map(|&i| targets[i]).collect(),
    }
}

/// Causal LM: every position but the last of each sequence predicts the next token.
pub fn next_token_targets(seqs: &[Vec<u32>], len: usize) -> (Vec<usize>, Vec<u32>) {
    let (mut positions, mut targets) = (Vec::new(), Vec::new());
    for (row, seq) in seqs.iter().enumerate() {
        for i in 0..seq.len().saturating_sub(1) {
            positions.push(row * len + i);
            targets.push(seq[i + 1]);
        }
    }
    (positions, targets)
}
