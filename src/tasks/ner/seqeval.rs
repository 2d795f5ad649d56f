//! Evaluation as the field reports it.
//!
//! - Entity level (conlleval / seqeval, default mode): an entity counts only when its type and
//!   both boundaries match. Entities are read from the tags with seqeval's chunking rules, so an
//!   `I-` tag after `O` (an ill-formed prediction) starts an entity exactly as seqeval decides.
//! - Token level: per-tag precision / recall / F1 / support over IOB2 tags, then micro, macro and
//!   weighted averages (scikit-learn's `classification_report`).

use crate::data::tags::split_tag;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// An entity: (sentence, type, first word, last word).
pub type Entity = (usize, String, usize, usize);

/// seqeval's `end_of_chunk`.
fn ends(prev: char, tag: char, prev_type: &str, ty: &str) -> bool {
    matches!(
        (prev, tag),
        ('E', _) | ('S', _) | ('B', 'B' | 'S' | 'O') | ('I', 'B' | 'S' | 'O')
    ) || (prev != 'O' && prev != '.' && prev_type != ty)
}

/// seqeval's `start_of_chunk`.
fn starts(prev: char, tag: char, prev_type: &str, ty: &str) -> bool {
    matches!(
        (prev, tag),
        (_, 'B') | (_, 'S') | ('E' | 'S' | 'O', 'E' | 'I')
    ) || (tag != 'O' && tag != '.' && prev_type != ty)
}

/// The entities of each sentence's tags (any of IOB1 / IOB2 / IOBES).
pub fn entities(sentences: &[Vec<String>]) -> Vec<Entity> {
    let mut out = Vec::new();
    for (s, tags) in sentences.iter().enumerate() {
        let (mut prev, mut prev_type) = ('O', "");
        let mut begin = 0;
        for (i, tag) in tags
            .iter()
            .map(String::as_str)
            .chain(std::iter::once("O"))
            .enumerate()
        {
            let (t, ty) = split_tag(tag);
            if ends(prev, t, prev_type, ty) {
                out.push((s, prev_type.to_string(), begin, i - 1));
            }
            if starts(prev, t, prev_type, ty) {
                begin = i;
            }
            (prev, prev_type) = (t, ty);
        }
    }
    out
}

/// Precision, recall, F1 and support of one row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

impl Scores {
    fn from_counts(tp: usize, predicted: usize, gold: usize) -> Self {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (p, r) = (ratio(tp, predicted), ratio(tp, gold));
        Scores {
            precision: p,
            recall: r,
            f1: if p + r == 0.0 {
                0.0
            } else {
                2.0 * p * r / (p + r)
            },
            support: gold,
        }
    }

    fn average(rows: &[Scores], weighted: bool) -> Self {
        let total: usize = rows.iter().map(|r| r.support).sum();
        let w = |r: &Scores| {
            if weighted {
                r.support as f64 / total.max(1) as f64
            } else {
                1.0 / rows.len().max(1) as f64
            }
        };
        Scores {
            precision: rows.iter().map(|r| w(r) * r.precision).sum(),
            recall: rows.iter().map(|r| w(r) * r.recall).sum(),
            f1: rows.iter().map(|r| w(r) * r.f1).sum(),
            support: total,
        }
    }
}

/// A classification report: one row per label, then the averages.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub rows: Vec<(String, Scores)>,
    pub micro: Scores,
    pub macro_avg: Scores,
    pub weighted: Scores,
}

impl Report {
    /// The report in scikit-learn's layout, three decimals.
    pub fn table(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(l, _)| l.len())
            .chain([12])
            .max()
            .unwrap_or(12);
        let mut s = format!(
            "{:>width$} {:>9} {:>9} {:>9} {:>9}\n\n",
            "", "precision", "recall", "f1-score", "support"
        );
        let line = |name: &str, r: &Scores| {
            format!(
                "{name:>width$} {:>9.3} {:>9.3} {:>9.3} {:>9}\n",
                r.precision, r.recall, r.f1, r.support
            )
        };
        for (label, r) in &self.rows {
            s += &line(label, r);
        }
        s += "\n";
        s += &line("micro avg", &self.micro);
        s += &line("macro avg", &self.macro_avg);
        s += &line("weighted avg", &self.weighted);
        s
    }
}

/// Entity-level report (per type, micro / macro / weighted).
pub fn entity_report(gold: &[Vec<String>], predicted: &[Vec<String>]) -> Report {
    let g: BTreeSet<Entity> = entities(gold).into_iter().collect();
    let p: BTreeSet<Entity> = entities(predicted).into_iter().collect();
    let types: BTreeSet<&String> = g.iter().chain(p.iter()).map(|e| &e.1).collect();
    let rows: Vec<(String, Scores)> = types
        .iter()
        .map(|ty| {
            let count = |set: &BTreeSet<Entity>| set.iter().filter(|e| &&e.1 == ty).count();
            let tp = g.iter().filter(|e| &&e.1 == ty && p.contains(*e)).count();
            (
                ty.to_string(),
                Scores::from_counts(tp, count(&p), count(&g)),
            )
        })
        .collect();
    let tp = g.intersection(&p).count();
    let scores: Vec<Scores> = rows.iter().map(|(_, s)| *s).collect();
    Report {
        micro: Scores::from_counts(tp, p.len(), g.len()),
        macro_avg: Scores::average(&scores, false),
        weighted: Scores::average(&scores, true),
        rows,
    }
}

/// Sort key of a tag for the token report: by type, `B` before `I`, `O` last.
fn tag_order(tag: &str) -> (bool, &str, char) {
    let (p, ty) = split_tag(tag);
    (tag == "O", ty, p)
}

/// Token-level report over tags (one row per tag, `O` included).
pub fn token_report(gold: &[Vec<String>], predicted: &[Vec<String>]) -> Report {
    let mut counts: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new(); // (tp, predicted, gold)
    let (mut correct, mut total) = (0, 0);
    for (gs, ps) in gold.iter().zip(predicted) {
        for (g, p) in gs.iter().zip(ps) {
            counts.entry(g.clone()).or_default().2 += 1;
            counts.entry(p.clone()).or_default().1 += 1;
            if g == p {
                counts.entry(g.clone()).or_default().0 += 1;
                correct += 1;
            }
            total += 1;
        }
    }
    let mut labels: Vec<&String> = counts.keys().collect();
    labels.sort_by_key(|l| tag_order(l));
    let rows: Vec<(String, Scores)> = labels
        .iter()
        .map(|l| {
            let (tp, p, g) = counts[*l];
            (l.to_string(), Scores::from_counts(tp, p, g))
        })
        .collect();
    let scores: Vec<Scores> = rows.iter().map(|(_, s)| *s).collect();
    Report {
        micro: Scores::from_counts(correct, total, total),
        macro_avg: Scores::average(&scores, false),
        weighted: Scores::average(&scores, true),
        rows,
    }
}
