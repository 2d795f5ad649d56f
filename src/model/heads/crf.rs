//! A linear-chain CRF over word labels: learned transition scores, the negative log-likelihood
//! by the forward algorithm, and Viterbi decoding restricted to transitions valid in IOB2
//! (no `I-X` after `O`, after the start, or after a tag of another type).

use crate::data::tags::{entity_type, split_tag};
use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

#[derive(Module, Debug)]
pub struct Crf {
    /// `transitions[i][j]`: score of label `j` following label `i`.
    pub transitions: Param<Tensor<2>>,
    pub start_transitions: Param<Tensor<1>>,
    pub end_transitions: Param<Tensor<1>>,
}

/// Whether a sequence given to the CRF starts and ends its sentence (a window of a long
/// sentence may do neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edges {
    pub starts_sentence: bool,
    pub ends_sentence: bool,
}

/// The score that forbids a transition.
const FORBIDDEN: f32 = -1e4;

/// Which transitions IOB2 allows: `allowed[i][j]` for `labels[i]` → `labels[j]`, and which labels
/// may start a sentence.
pub fn iob2_constraints(labels: &[String]) -> (Vec<Vec<bool>>, Vec<bool>) {
    let inside = |l: &str| split_tag(l).0 == 'I';
    let allowed = labels
        .iter()
        .map(|from| {
            labels
                .iter()
                .map(|to| {
                    !inside(to) || entity_type(from).is_some_and(|ty| Some(ty) == entity_type(to))
                })
                .collect()
        })
        .collect();
    let start = labels.iter().map(|l| !inside(l)).collect();
    (allowed, start)
}

fn mask_tensor(allowed: &[Vec<bool>], device: &Device) -> Tensor<2> {
    let n = allowed.len();
    let v: Vec<f32> = allowed
        .iter()
        .flatten()
        .map(|&a| if a { 0.0 } else { FORBIDDEN })
        .collect();
    Tensor::from_data(TensorData::new(v, [n, n]), device)
}

fn log_sum_exp(x: Tensor<3>, dim: usize) -> Tensor<2> {
    let max = x.clone().max_dim(dim).detach();
    (x - max.clone())
        .exp()
        .sum_dim(dim)
        .log()
        .add(max)
        .squeeze_dim(dim)
}

impl Crf {
    pub fn new(labels: usize, device: &Device) -> Self {
        Crf {
            transitions: Param::from_tensor(Tensor::zeros([labels, labels], device)),
            start_transitions: Param::from_tensor(Tensor::zeros([labels], device)),
            end_transitions: Param::from_tensor(Tensor::zeros([labels], device)),
        }
    }

    /// Mean negative log-likelihood of `gold` `[batch, len]` under `emissions` `[batch, len, labels]`;
    /// each gold sequence's length (at least 1) is its real length, the rest is padding. `edges`
    /// says per sequence whether it starts and ends its sentence: only there do the start / end
    /// scores and the "no `I-` first" constraint apply (a window inside a long sentence may
    /// begin inside an entity).
    pub fn loss(
        &self,
        emissions: Tensor<3>,
        gold: &[Vec<u32>],
        labels: &[String],
        edges: &[Edges],
    ) -> Tensor<1> {
        let [b, t, l] = emissions.dims();
        let device = emissions.device();
        let dtype = emissions.dtype();
        let (allowed, start_ok) = iob2_constraints(labels);
        let trans = self.transitions.val() + mask_tensor(&allowed, &device).cast(dtype);
        let start_mask: Vec<f32> = start_ok
            .iter()
            .map(|&a| if a { 0.0 } else { FORBIDDEN })
            .collect();
        let start = self.start_transitions.val()
            + Tensor::<1>::from_data(TensorData::new(start_mask, [l]), &device).cast(dtype);
        let end = self.end_transitions.val();
        let flags = |f: &dyn Fn(&Edges) -> bool| {
            let v: Vec<f32> = edges.iter().map(|e| f32::from(f(e))).collect();
            Tensor::<2>::from_data(TensorData::new(v, [b, 1]), &device).cast(dtype)
        };
        // `[batch, labels]` start and end scores: zero for a sequence that does not start / end
        // its sentence.
        let start_rows = start.clone().unsqueeze::<2>() * flags(&|e| e.starts_sentence);
        let end_rows = end.clone().unsqueeze::<2>() * flags(&|e| e.ends_sentence);

        // Partition function by the forward algorithm; padded steps keep their alpha.
        let step_mask = |i: usize| {
            let v: Vec<f32> = gold.iter().map(|g| f32::from(i < g.len())).collect();
            Tensor::<2>::from_data(TensorData::new(v, [b, 1]), &device).cast(dtype)
        };
        let emit = |i: usize| emissions.clone().narrow(1, i, 1).reshape([b, l]);
        let mut alpha = start_rows.clone() + emit(0);
        for i in 1..t {
            let next = log_sum_exp(
                alpha.clone().unsqueeze_dim::<3>(2) + trans.clone().unsqueeze::<3>(),
                1,
            ) + emit(i);
            let m = step_mask(i);
            alpha = next * m.clone() + alpha * (m.neg() + 1.0);
        }
        let log_z = log_sum_exp((alpha + end_rows.clone()).unsqueeze_dim::<3>(1), 2).reshape([b]);

        // The gold path's score.
        let padded: Vec<i64> = gold
            .iter()
            .flat_map(|g| (0..t).map(move |i| g.get(i).copied().unwrap_or(0) as i64))
            .collect();
        let tags = Tensor::<2, Int>::from_data(TensorData::new(padded.clone(), [b, t]), &device);
        let valid: Vec<f32> = gold
            .iter()
            .flat_map(|g| (0..t).map(move |i| f32::from(i < g.len())))
            .collect();
        let valid = Tensor::<2>::from_data(TensorData::new(valid, [b, t]), &device).cast(dtype);
        let emitted = (emissions
            .gather(2, tags.clone().reshape([b, t, 1]))
            .reshape([b, t])
            * valid.clone())
        .sum_dim(1)
        .reshape([b]);
        let mut pairs = Vec::with_capacity(b * t.saturating_sub(1));
        for row in padded.chunks(t) {
            pairs.extend(row.windows(2).map(|w| w[0] * l as i64 + w[1]));
        }
        let transitions = if t > 1 {
            let idx = Tensor::<1, Int>::from_data(TensorData::new(pairs, [b * (t - 1)]), &device);
            let scores = trans.reshape([l * l]).select(0, idx).reshape([b, t - 1]);
            (scores * valid.clone().narrow(1, 1, t - 1))
                .sum_dim(1)
                .reshape([b])
        } else {
            Tensor::zeros([b], (&device, dtype))
        };
        let firsts: Vec<i64> = gold.iter().map(|g| g[0] as i64).collect();
        let lasts: Vec<i64> = gold
            .iter()
            .map(|g| *g.last().expect("non-empty") as i64)
            .collect();
        let pick = |rows: Tensor<2>, idx: Vec<i64>| {
            let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [b, 1]), &device);
            rows.gather(1, idx).reshape([b])
        };
        let score = emitted + transitions + pick(start_rows, firsts) + pick(end_rows, lasts);
        (log_z - score).mean()
    }

    /// The transition scores on the host, for decoding.
    pub fn scores(&self) -> CrfScores {
        let host = |d: burn::tensor::TensorData| {
            d.convert::<f32>().try_into_vec::<f32>().unwrap_or_default()
        };
        CrfScores {
            transitions: host(self.transitions.val().into_data()),
            start: host(self.start_transitions.val().into_data()),
            end: host(self.end_transitions.val().into_data()),
        }
    }
}

/// A CRF's scores copied to the host: what Viterbi decoding needs, shareable across threads
/// (the server decodes on its request side, away from the model's thread).
#[derive(Debug, Clone, PartialEq)]
pub struct CrfScores {
    /// `transitions[i * labels + j]`: score of label `j` following label `i`.
    pub transitions: Vec<f32>,
    pub start: Vec<f32>,
    pub end: Vec<f32>,
}

impl CrfScores {
    /// The best label sequence for each `[len, labels]` emission matrix, under the IOB2
    /// constraints (the start constraint and scores only where `edges` says the sequence
    /// starts its sentence, the end scores only where it ends it). Emissions may be shifted by
    /// a constant per position (log-probabilities instead of logits): the path is the same.
    pub fn decode(
        &self,
        emissions: &[Vec<Vec<f32>>],
        labels: &[String],
        edges: &[Edges],
    ) -> Vec<Vec<u32>> {
        let (allowed, start_ok) = iob2_constraints(labels);
        let (trans, start, end) = (&self.transitions, &self.start, &self.end);
        let l = labels.len();
        let (free, zeros) = (vec![true; l], vec![0.0; l]);
        emissions
            .iter()
            .zip(edges)
            .map(|(e, edge)| {
                let (s, ok) = if edge.starts_sentence {
                    (start, &start_ok)
                } else {
                    (&zeros, &free)
                };
                let end = if edge.ends_sentence { end } else { &zeros };
                viterbi(e, trans, s, end, &allowed, ok, l)
            })
            .collect()
    }
}

/// Constrained Viterbi over one sequence.
pub fn viterbi(
    emissions: &[Vec<f32>],
    trans: &[f32],
    start: &[f32],
    end: &[f32],
    allowed: &[Vec<bool>],
    start_ok: &[bool],
    l: usize,
) -> Vec<u32> {
    if emissions.is_empty() {
        return Vec::new();
    }
    let neg = f32::NEG_INFINITY;
    let mut score: Vec<f32> = (0..l)
        .map(|j| {
            if start_ok[j] {
                start[j] + emissions[0][j]
            } else {
                neg
            }
        })
        .collect();
    let mut back: Vec<Vec<u32>> = Vec::with_capacity(emissions.len());
    for e in &emissions[1..] {
        let mut next = vec![neg; l];
        let mut from = vec![0u32; l];
        for j in 0..l {
            for i in 0..l {
                if allowed[i][j] && score[i] > neg {
                    let s = score[i] + trans[i * l + j];
                    if s > next[j] {
                        next[j] = s;
                        from[j] = i as u32;
                    }
                }
            }
            next[j] += e[j];
        }
        back.push(from);
        score = next;
    }
    let mut best = (0..l)
        .max_by(|&a, &b| (score[a] + end[a]).total_cmp(&(score[b] + end[b])))
        .unwrap_or(0) as u32;
    let mut path = vec![best];
    for from in back.iter().rev() {
        best = from[best as usize];
        path.push(best);
    }
    path.reverse();
    path
}
