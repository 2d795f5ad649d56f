//! A deterministic WordPiece vocabulary trainer (BPE merges over words, continuation pieces
//! marked `##`, as Hugging Face's trainer builds them). The `tokenizers` crate's own trainer
//! breaks ties between equally frequent pairs in hash-map order, so two runs on the same corpus
//! can produce different vocabularies; here ties go to the lexicographically smaller piece.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

const PREFIX: &str = "##";

/// A candidate merge in the priority queue: highest count first, then smallest merged piece.
#[derive(PartialEq, Eq)]
struct Candidate {
    count: u64,
    merged: Reverse<String>,
    pair: (u32, u32),
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.count
            .cmp(&other.count)
            .then_with(|| self.merged.cmp(&other.merged))
            .then_with(|| other.pair.cmp(&self.pair))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Pieces {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Pieces {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    fn merged(&self, (a, b): (u32, u32)) -> String {
        let right = &self.names[b as usize];
        format!(
            "{}{}",
            self.names[a as usize],
            right.strip_prefix(PREFIX).unwrap_or(right)
        )
    }
}

/// The vocabulary (specials first, then single characters, then merges in order) for words with
/// their counts. Stops at `vocab_size` pieces or when no pair occurs `min_frequency` times.
pub fn train(
    word_counts: &BTreeMap<String, u64>,
    vocab_size: usize,
    min_frequency: u64,
    specials: &[&str],
) -> Vec<String> {
    let mut pieces = Pieces {
        names: Vec::new(),
        ids: HashMap::new(),
    };
    let mut vocab: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    // Words as piece ids: the first character, then "##"-continuations.
    let mut words: Vec<(Vec<u32>, u64)> = Vec::with_capacity(word_counts.len());
    let mut alphabet = BTreeSet::new();
    for (word, &count) in word_counts {
        let ids: Vec<u32> = word
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let piece = if i == 0 {
                    c.to_string()
                } else {
                    format!("{PREFIX}{c}")
                };
                alphabet.insert(piece.clone());
                pieces.id(&piece)
            })
            .collect();
        words.push((ids, count));
    }
    vocab.extend(
        alphabet
            .into_iter()
            .filter(|p| !specials.contains(&p.as_str())),
    );

    let mut counts: HashMap<(u32, u32), u64> = HashMap::new();
    let mut where_: HashMap<(u32, u32), BTreeSet<usize>> = HashMap::new();
    for (w, (ids, count)) in words.iter().enumerate() {
        for pair in ids.windows(2) {
            let p = (pair[0], pair[1]);
            *counts.entry(p).or_default() += count;
            where_.entry(p).or_default().insert(w);
        }
    }
    let mut heap: BinaryHeap<Candidate> = counts
        .iter()
        .map(|(&pair, &count)| Candidate {
            count,
            merged: Reverse(pieces.merged(pair)),
            pair,
        })
        .collect();
    let mut in_vocab: std::collections::HashSet<String> = vocab.iter().cloned().collect();

    while vocab.len() < vocab_size {
        let Some(top) = heap.pop() else { break };
        let current = counts.get(&top.pair).copied().unwrap_or(0);
        if current != top.count {
            // Stale entry: requeue with the pair's current count.
            if current > 0 {
                heap.push(Candidate {
                    count: current,
                    ..top
                });
            }
            continue;
        }
        if current < min_frequency.max(1) {
            break;
        }
        let merged = top.merged.0;
        let new_id = pieces.id(&merged);
        if in_vocab.insert(merged.clone()) {
            vocab.push(merged);
        }
        let (a, b) = top.pair;
        let affected: Vec<usize> = where_
            .remove(&top.pair)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        let mut touched = BTreeSet::new();
        for w in affected {
            let (ids, count) = &mut words[w];
            for pair in ids.windows(2) {
                let p = (pair[0], pair[1]);
                if let Some(c) = counts.get_mut(&p) {
                    *c -= *count;
                }
                if let Some(s) = where_.get_mut(&p) {
                    s.remove(&w);
                }
                touched.insert(p);
            }
            let mut merged_ids = Vec::with_capacity(ids.len());
            let mut i = 0;
            while i < ids.len() {
                if i + 1 < ids.len() && ids[i] == a && ids[i + 1] == b {
                    merged_ids.push(new_id);
                    i += 2;
                } else {
                    merged_ids.push(ids[i]);
                    i += 1;
                }
            }
            *ids = merged_ids;
            for pair in ids.windows(2) {
                let p = (pair[0], pair[1]);
                *counts.entry(p).or_default() += *count;
                where_.entry(p).or_default().insert(w);
                touched.insert(p);
            }
        }
        counts.remove(&top.pair);
        for p in touched {
            if let Some(&c) = counts.get(&p) {
                if c > 0 && p != top.pair {
                    heap.push(Candidate {
                        count: c,
                        merged: Reverse(pieces.merged(p)),
                        pair: p,
                    });
                }
            }
        }
    }
    vocab
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(words: &[(&str, u64)]) -> BTreeMap<String, u64> {
        words.iter().map(|(w, c)| (w.to_string(), *c)).collect()
    }

    #[test]
    fn merges_the_most_frequent_pairs_first_and_breaks_ties_by_name() {
        let words = counts(&[
            ("hug", 10),
            ("pug", 5),
            ("pun", 12),
            ("bun", 4),
            ("hugs", 5),
        ]);
        let expected = [
            "[UNK]", "##g", "##n", "##s", "##u", "b", "h", "p", "##ug", "##un", "hug", "pun",
            "hugs", "pug", "bun",
        ];
        assert_eq!(train(&words, 100, 1, &["[UNK]"]), expected);
        // The vocabulary size and the minimum frequency stop the merges.
        assert_eq!(train(&words, 10, 1, &["[UNK]"]), &expected[..10]);
        assert_eq!(train(&words, 100, 6, &["[UNK]"]), &expected[..12]);
    }
}
