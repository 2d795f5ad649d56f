//! The one epoch sampler every task trains with: each epoch a seeded shuffle of the training
//! examples cut into batches, optionally length-bucketed, with a position (epoch, batch) that
//! a checkpoint saves so a resumed run continues with exactly the batches it would have seen.
//!
//! Length bucketing: the shuffled order is cut into pools of [`POOL_BATCHES`] batches, each
//! pool is sorted by length and cut into batches, and the batches are shuffled again, so a
//! batch is padded only to a length close to its examples' own.
//!
//! A stream (`Sampling::stream`, pretraining on a packed corpus of any size) holds no
//! per-example state at all: each epoch's order is a keyed pseudo-random permutation computed
//! per index (`Permutation`), so memory stays constant whatever the number of examples.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// Batches per length-sorted pool.
pub const POOL_BATCHES: usize = 50;

/// How a task wants its training examples drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Each example's length in tokens (for bucketing; also the example count).
    pub lengths: Vec<usize>,
    /// Group examples of similar length into batches.
    pub bucketed: bool,
    /// Only full batches (the rest of an epoch is dropped, as PyTorch's `drop_last`), unless
    /// there are fewer examples than one batch; otherwise an epoch's last batch may be short.
    pub drop_last: bool,
    /// Keys of each example (e.g. hashes of its texts): a batch never holds two examples that
    /// share one, as sentence-transformers' `NoDuplicatesBatchSampler` ensures for in-batch
    /// negatives. Empty: no constraint.
    pub distinct: Vec<Vec<u64>>,
    /// Instead of `lengths`: this many examples of one length, in a permutation computed per
    /// index, full batches only (see the module's documentation).
    pub stream: Option<usize>,
}

impl Sampling {
    /// `count` examples shuffled each epoch; the last batch of an epoch may be short, as in
    /// PyTorch's DataLoader.
    pub(crate) fn shuffled(count: usize) -> Self {
        Sampling {
            lengths: vec![0; count],
            bucketed: false,
            drop_last: false,
            distinct: Vec::new(),
            stream: None,
        }
    }

    /// `count` examples of one length, a new permutation each epoch, full batches only, with
    /// no memory per example.
    pub(crate) fn stream(count: usize) -> Self {
        Sampling {
            drop_last: true,
            stream: Some(count),
            ..Sampling::shuffled(0)
        }
    }

    /// Examples shuffled each epoch, batched so that no two in a batch share a key (`keys`: one
    /// list per example). An example that would repeat a key waits for a later batch of the
    /// same epoch.
    pub fn without_duplicates(keys: Vec<Vec<u64>>) -> Self {
        Sampling {
            lengths: vec![0; keys.len()],
            distinct: keys,
            ..Sampling::shuffled(0)
        }
    }

    /// Examples of these lengths, shuffled and length-bucketed.
    pub(crate) fn bucketed(lengths: Vec<usize>) -> Self {
        Sampling {
            lengths,
            bucketed: true,
            drop_last: false,
            distinct: Vec::new(),
            stream: None,
        }
    }
}

/// A bijection of `0..n` keyed by a seed: a four-round Feistel network over the smallest even
/// number of bits that covers `n`, walking values `>= n` on through the network until they
/// fall in range (cycle walking; the domain is under 4n, so a few rounds on average).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Permutation {
    n: u64,
    half_bits: u32,
    key: u64,
}

impl Permutation {
    pub fn new(n: u64, key: u64) -> Self {
        let bits = 64 - n.max(2).saturating_sub(1).leading_zeros();
        Permutation {
            n,
            half_bits: bits.div_ceil(2),
            key,
        }
    }

    /// The position of `i` (in `0..n`) in the permuted order.
    pub fn apply(&self, i: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let mut x = i;
        loop {
            let (mut left, mut right) = (x >> self.half_bits, x & mask);
            for round in 0..4u64 {
                let f = crate::rng::splitmix64(right ^ self.key.wrapping_add(round << 56)) & mask;
                (left, right) = (right, left ^ f);
            }
            x = (left << self.half_bits) | right;
            if x < self.n {
                return x;
            }
        }
    }
}

/// Where the sampler is: the epoch and the next batch of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    pub epoch: u64,
    /// Batches of this epoch already drawn.
    pub batch: usize,
}

pub struct EpochSampler {
    sampling: Sampling,
    batch_size: usize,
    seed: u64,
    position: Position,
    batches: Vec<Vec<usize>>,
}

impl EpochSampler {
    pub fn new(sampling: Sampling, batch_size: usize, seed: u64) -> Self {
        let mut sampler = EpochSampler {
            sampling,
            batch_size: batch_size.max(1),
            seed,
            position: Position::default(),
            batches: Vec::new(),
        };
        if sampler.sampling.stream.is_none() {
            sampler.batches = sampler.plan(0);
        }
        sampler
    }

    /// Batches in one epoch.
    pub(crate) fn batches_per_epoch(&self) -> usize {
        match self.sampling.stream {
            // Full batches, or one short batch when there are fewer examples than a batch.
            Some(n) => (n / self.batch_size).max(1),
            None => self.batches.len().max(1),
        }
    }

    /// The next batch (example indices), starting a new epoch after the last one.
    pub(crate) fn next_batch(&mut self) -> Vec<usize> {
        if let Some(n) = self.sampling.stream {
            if self.position.batch >= self.batches_per_epoch() {
                self.position = Position {
                    epoch: self.position.epoch + 1,
                    batch: 0,
                };
            }
            let order = Permutation::new(n as u64, self.epoch_key(self.position.epoch));
            let start = self.position.batch * self.batch_size;
            self.position.batch += 1;
            return (start..(start + self.batch_size).min(n))
                .map(|j| order.apply(j as u64) as usize)
                .collect();
        }
        if self.position.batch >= self.batches.len() {
            self.restore(Position {
                epoch: self.position.epoch + 1,
                batch: 0,
            });
        }
        self.position.batch += 1;
        self.batches
            .get(self.position.batch - 1)
            .cloned()
            .unwrap_or_default()
    }

    fn epoch_key(&self, epoch: u64) -> u64 {
        Rng::new(self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
    }

    pub fn position(&self) -> Position {
        self.position
    }

    /// Continues from a saved position.
    pub fn restore(&mut self, position: Position) {
        if self.sampling.stream.is_some() {
            self.position = position;
            return;
        }
        if position.epoch != self.position.epoch || self.batches.is_empty() {
            self.batches = self.plan(position.epoch);
        }
        self.position = position;
    }

    /// Epoch `epoch`'s batches.
    fn plan(&self, epoch: u64) -> Vec<Vec<usize>> {
        let lengths = &self.sampling.lengths;
        let size = self.batch_size;
        let mut rng = Rng::new(self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let keys = &self.sampling.distinct;
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        rng.shuffle(&mut order);
        if !keys.is_empty() {
            let mut batches = distinct_batches(order, keys, size);
            if self.sampling.drop_last && batches.len() > 1 {
                batches.retain(|b| b.len() == size);
            }
            return batches;
        }
        if self.sampling.drop_last && order.len() >= size {
            order.truncate(order.len() - order.len() % size);
        }
        if !self.sampling.bucketed {
            return order.chunks(size).map(<[usize]>::to_vec).collect();
        }
        let mut batches: Vec<Vec<usize>> = Vec::new();
        for pool in order.chunks(size * POOL_BATCHES) {
            let mut pool = pool.to_vec();
            pool.sort_by_key(|&i| lengths[i]);
            batches.extend(pool.chunks(size).map(<[usize]>::to_vec));
        }
        rng.shuffle(&mut batches);
        batches
    }
}

/// Cuts `order` into batches of `size` in which no key repeats: each batch takes the first
/// examples of what remains whose keys are all new to it; the others keep their order for the
/// next batch.
fn distinct_batches(order: Vec<usize>, keys: &[Vec<u64>], size: usize) -> Vec<Vec<usize>> {
    let mut remaining: std::collections::VecDeque<usize> = order.into();
    let mut batches = Vec::new();
    while !remaining.is_empty() {
        let mut batch = Vec::with_capacity(size);
        let mut seen = std::collections::HashSet::new();
        let mut waiting = Vec::new();
        while batch.len() < size {
            let Some(i) = remaining.pop_front() else {
                break;
            };
            if keys[i].iter().any(|k| seen.contains(k)) {
                waiting.push(i);
            } else {
                seen.extend(keys[i].iter().copied());
                batch.push(i);
            }
        }
        for &i in waiting.iter().rev() {
            remaining.push_front(i);
        }
        batches.push(batch);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling(n: usize, bucketed: bool, drop_last: bool) -> Sampling {
        Sampling {
            lengths: (0..n).map(|i| (i * 7919) % 97).collect(),
            bucketed,
            drop_last,
            distinct: Vec::new(),
            stream: None,
        }
    }

    #[test]
    fn permutations_are_bijections_that_differ_by_key() {
        for n in [1u64, 2, 3, 7, 64, 1000, 4097] {
            let p = Permutation::new(n, 11);
            let mut seen: Vec<u64> = (0..n).map(|i| p.apply(i)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
        let (a, b) = (Permutation::new(1000, 1), Permutation::new(1000, 2));
        assert_ne!(
            (0..20).map(|i| a.apply(i)).collect::<Vec<_>>(),
            (0..20).map(|i| b.apply(i)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_stream_draws_full_batches_of_every_example_once_and_resumes() {
        let mut s = EpochSampler::new(Sampling::stream(103), 10, 5);
        assert_eq!(s.batches_per_epoch(), 10);
        let first = epoch(&mut s);
        let second = epoch(&mut s);
        assert_ne!(first, second, "a new order each epoch");
        for e in [&first, &second] {
            assert!(e.iter().all(|b| b.len() == 10));
            let mut all = e.concat();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), 100, "no example twice in an epoch");
        }
        let mut resumed = EpochSampler::new(Sampling::stream(103), 10, 5);
        resumed.restore(Position { epoch: 1, batch: 4 });
        assert_eq!(resumed.next_batch(), second[4]);
        let mut few = EpochSampler::new(Sampling::stream(4), 10, 5);
        assert_eq!(
            few.next_batch().len(),
            4,
            "one short batch rather than none"
        );
    }

    #[test]
    fn no_batch_repeats_a_key_and_every_example_comes_once() {
        // 100 examples over 30 keys (each example has two): many would collide at random.
        let keys: Vec<Vec<u64>> = (0..100u64).map(|i| vec![i % 30, 100 + i % 7]).collect();
        let mut s = EpochSampler::new(Sampling::without_duplicates(keys.clone()), 5, 3);
        let batches = epoch(&mut s);
        let mut all: Vec<usize> = batches.concat();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        for b in &batches {
            let mut k: Vec<u64> = b.iter().flat_map(|&i| keys[i].clone()).collect();
            let n = k.len();
            k.sort_unstable();
            k.dedup();
            assert_eq!(k.len(), n, "a key repeats in {b:?}");
        }
        let mut again = EpochSampler::new(Sampling::without_duplicates(keys), 5, 3);
        assert_eq!(
            epoch(&mut again),
            batches,
            "the same seed gives the same batches"
        );
    }

    fn epoch(s: &mut EpochSampler) -> Vec<Vec<usize>> {
        (0..s.batches_per_epoch()).map(|_| s.next_batch()).collect()
    }

    #[test]
    fn every_example_once_per_epoch() {
        for bucketed in [false, true] {
            let mut s = EpochSampler::new(sampling(1003, bucketed, false), 32, 7);
            assert_eq!(s.batches_per_epoch(), 32);
            for _ in 0..3 {
                let mut seen: Vec<usize> = epoch(&mut s).concat();
                seen.sort();
                assert_eq!(seen, (0..1003).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn epochs_differ_and_seeds_reproduce() {
        let mut a = EpochSampler::new(sampling(100, false, false), 10, 1);
        let mut b = EpochSampler::new(sampling(100, false, false), 10, 1);
        let (a0, a1) = (epoch(&mut a), epoch(&mut a));
        assert_ne!(a0, a1);
        assert_eq!((a0, a1), (epoch(&mut b), epoch(&mut b)));
        let mut c = EpochSampler::new(sampling(100, false, false), 10, 2);
        assert_ne!(
            epoch(&mut c),
            epoch(&mut EpochSampler::new(sampling(100, false, false), 10, 1))
        );
    }

    #[test]
    fn short_last_batch_or_only_full_batches() {
        let mut keep = EpochSampler::new(sampling(25, false, false), 10, 3);
        let sizes: Vec<usize> = epoch(&mut keep).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let mut drop = EpochSampler::new(sampling(25, false, true), 10, 3);
        let sizes: Vec<usize> = epoch(&mut drop).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10]);
        // Fewer examples than a batch: one short batch rather than none.
        let mut few = EpochSampler::new(sampling(4, false, true), 10, 3);
        assert_eq!(few.next_batch().len(), 4);
    }

    #[test]
    fn bucketed_batches_hold_similar_lengths() {
        let s = sampling(3200, true, false);
        let lengths = s.lengths.clone();
        let mut sampler = EpochSampler::new(s, 16, 5);
        let spread = |b: &Vec<usize>| {
            let l: Vec<usize> = b.iter().map(|&i| lengths[i]).collect();
            l.iter().max().unwrap() - l.iter().min().unwrap()
        };
        let batches = epoch(&mut sampler);
        let mean = batches.iter().map(spread).sum::<usize>() as f64 / batches.len() as f64;
        assert!(
            mean < 10.0,
            "mean spread {mean} within a batch (lengths 0..97)"
        );
    }

    #[test]
    fn restored_position_continues_exactly() {
        let mut whole = EpochSampler::new(sampling(57, true, false), 8, 11);
        let straight: Vec<Vec<usize>> = (0..20).map(|_| whole.next_batch()).collect();
        let mut first = EpochSampler::new(sampling(57, true, false), 8, 11);
        let mut resumed: Vec<Vec<usize>> = (0..9).map(|_| first.next_batch()).collect();
        let saved = serde_json::to_string(&first.position()).unwrap();
        let mut second = EpochSampler::new(sampling(57, true, false), 8, 11);
        second.restore(serde_json::from_str(&saved).unwrap());
        resumed.extend((9..20).map(|_| second.next_batch()));
        assert_eq!(straight, resumed);
    }
}
