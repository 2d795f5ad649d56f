//! From label probabilities to entities in raw text: the one decoding of NER outputs, shared by
//! `predict ner` and the server's `/ner`.
//!
//! [`Aggregation`] names the strategies of transformers' token-classification pipeline
//! (`none`, `simple`, `first`, `average`, `max`), implemented as its `gather_pre_entities`,
//! `aggregate` and `group_entities` are (checked against that code on the same probabilities),
//! plus positio's own `words`: text split into words as CoNLL does, each word labelled on its
//! first piece as in fine-tuning, long texts in overlapping windows, a CRF decoded by Viterbi.

use crate::data::tokenizer::Tokenizer;
use crate::tasks::ner::seqeval;
use crate::tasks::scores::argmax;
use crate::Result;
use serde::{Deserialize, Serialize};

/// How word pieces' label probabilities become entities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// Every piece whose most probable label is not `O`, with that label (`entity`, `index`).
    None,
    /// Consecutive pieces of one type joined unless a piece says `B-`; score = their mean.
    #[default]
    Simple,
    /// Words (a piece and its `##` continuations) take their first piece's label, then `simple`.
    First,
    /// Words take the label of their pieces' mean probabilities, then `simple`.
    Average,
    /// Words take the label of their most confident piece, then `simple`.
    Max,
    /// positio's: CoNLL-style words labelled on their first piece, long texts in windows, CRF
    /// Viterbi when the model has one; entities from the IOB2 tags (score = the words' mean).
    Words,
}

/// An entity as transformers' pipeline reports it: `entity` (a piece's label, with its `index`:
/// strategy `none`) or `entity_group` (a type); character offsets into the text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_group: Option<String>,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub word: String,
    pub start: usize,
    pub end: usize,
}

/// One labelled unit before grouping: a piece (`none`, `simple`) or a word.
struct Labelled {
    label: String,
    score: f32,
    index: usize,
    token: String,
    start: usize,
    end: usize,
}

/// A non-special piece with its probabilities, as the pipeline's `gather_pre_entities` makes it.
struct Piece<'a> {
    probs: &'a [f32],
    index: usize,
    token: String,
    start: usize,
    end: usize,
    subword: bool,
}

/// Entities of one text from its encoding (character offsets, special-token mask) and every
/// piece's label probabilities (`probs[i]` for piece `i`, special pieces included).
/// `Aggregation::Words` is not a piece-level strategy: see [`super::NerModel::entities`].
pub fn entities(
    tokenizer: &Tokenizer,
    encoding: &tokenizers::Encoding,
    probs: &[Vec<f32>],
    labels: &[String],
    text: &str,
    strategy: Aggregation,
) -> Result<Vec<Entity>> {
    let chars: Vec<char> = text.chars().collect();
    let span = |a: usize, b: usize| -> String {
        chars[a.min(chars.len())..b.min(chars.len())]
            .iter()
            .collect()
    };
    let unk = tokenizer.token_to_id("[UNK]");
    let word_aware = tokenizer.continuing_subword_prefix().is_some();
    let mut pieces = Vec::new();
    for (index, row) in probs.iter().enumerate() {
        if encoding.get_special_tokens_mask().get(index) != Some(&0) {
            continue;
        }
        let (start, end) = encoding.get_offsets()[index];
        let id = encoding.get_ids()[index];
        let written = span(start, end);
        let (token, subword) = if Some(id) == unk {
            (written, false)
        } else {
            let token = tokenizer.id_to_token(id).unwrap_or_default();
            let subword = if word_aware {
                token.chars().count() != written.chars().count()
            } else {
                // The pipeline's fallback for tokenizers without word continuation marks.
                start > 0 && !span(start - 1, start + 1).contains(' ')
            };
            (token, subword)
        };
        pieces.push(Piece {
            probs: row,
            index,
            token,
            start,
            end,
            subword,
        });
    }
    let best = |probs: &[f32]| {
        let i = argmax(probs);
        (labels[i].clone(), probs[i])
    };
    let units: Vec<Labelled> = match strategy {
        Aggregation::None | Aggregation::Simple => pieces
            .iter()
            .map(|p| {
                let (label, score) = best(p.probs);
                Labelled {
                    label,
                    score,
                    index: p.index,
                    token: p.token.clone(),
                    start: p.start,
                    end: p.end,
                }
            })
            .collect(),
        Aggregation::First | Aggregation::Average | Aggregation::Max => {
            let mut words: Vec<Vec<&Piece>> = Vec::new();
            for p in &pieces {
                match words.last_mut() {
                    Some(w) if p.subword => w.push(p),
                    _ => words.push(vec![p]),
                }
            }
            let mut units = Vec::with_capacity(words.len());
            for w in words {
                let (label, score) = match strategy {
                    Aggregation::First => best(w[0].probs),
                    Aggregation::Max => {
                        // The first piece holding the highest probability, as Python's max.
                        let top = |p: &Piece| p.probs.iter().copied().fold(f32::MIN, f32::max);
                        let mut chosen = w[0];
                        for p in &w[1..] {
                            if top(p) > top(chosen) {
                                chosen = p;
                            }
                        }
                        best(chosen.probs)
                    }
                    _ => {
                        let mean: Vec<f32> = (0..labels.len())
                            .map(|c| w.iter().map(|p| p.probs[c]).sum::<f32>() / w.len() as f32)
                            .collect();
                        best(&mean)
                    }
                };
                units.push(Labelled {
                    label,
                    score,
                    index: w[0].index,
                    token: tokenizer.join_tokens(w.iter().map(|p| p.token.clone()).collect())?,
                    start: w[0].start,
                    end: w[w.len() - 1].end,
                });
            }
            units
        }
        Aggregation::Words => {
            return Err(crate::Error::unsupported(
                "the `words` strategy labels CoNLL words, not pieces (NerModel::entities)",
            ))
        }
    };
    if strategy == Aggregation::None {
        return Ok(units
            .into_iter()
            .filter(|u| u.label != "O")
            .map(|u| Entity {
                entity: Some(u.label),
                entity_group: None,
                score: u.score,
                index: Some(u.index),
                word: u.token,
                start: u.start,
                end: u.end,
            })
            .collect());
    }
    group(tokenizer, units)
}

/// A label's (B/I, type): "B-PER" → (B, PER), "I-PER" → (I, PER), anything else (I, itself),
/// as the pipeline's `get_tag`.
fn split_tag(label: &str) -> (char, &str) {
    if let Some(t) = label.strip_prefix("B-") {
        ('B', t)
    } else if let Some(t) = label.strip_prefix("I-") {
        ('I', t)
    } else {
        ('I', label)
    }
}

/// The pipeline's `group_entities`: consecutive units of one type join unless a unit says B-;
/// a group's type is its first label after the first `-`, its score the mean, its word the
/// tokens joined by the tokenizer's decoder; groups of type `O` are dropped.
fn group(tokenizer: &Tokenizer, units: Vec<Labelled>) -> Result<Vec<Entity>> {
    let mut groups: Vec<Vec<Labelled>> = Vec::new();
    for u in units {
        let joins = groups.last().and_then(|g| g.last()).is_some_and(|last| {
            let ((bi, tag), (_, last_tag)) = (split_tag(&u.label), split_tag(&last.label));
            tag == last_tag && bi != 'B'
        });
        match groups.last_mut() {
            Some(g) if joins => g.push(u),
            _ => groups.push(vec![u]),
        }
    }
    let mut out = Vec::new();
    for g in groups {
        let label = &g[0].label;
        let kind = label.split_once('-').map_or(label.as_str(), |(_, t)| t);
        if kind == "O" {
            continue;
        }
        out.push(Entity {
            entity: None,
            entity_group: Some(kind.to_string()),
            score: g.iter().map(|u| u.score).sum::<f32>() / g.len() as f32,
            index: None,
            word: tokenizer.join_tokens(g.iter().map(|u| u.token.clone()).collect())?,
            start: g[0].start,
            end: g[g.len() - 1].end,
        });
    }
    Ok(out)
}

/// A word of raw text with its character offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Whether `c` is a CJK ideograph, a word of its own as in BERT's tokenizer (its
/// `_is_chinese_char` ranges) and in character-level Chinese NER data.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

/// Splits raw text into words as CoNLL does: on whitespace, with punctuation characters and CJK
/// ideographs as words of their own (a hyphen or apostrophe inside a word stays). Offsets are in
/// characters, not bytes.
pub fn split_words(text: &str) -> Vec<Word> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        // Letters and digits run together; a CJK ideograph stands alone.
        let alnum = |k: usize| chars[k].is_alphanumeric() && !is_cjk(chars[k]);
        let inner = |k: usize| {
            matches!(chars[k], '-' | '\'' | '.' | ',')
                && k > 0
                && k + 1 < chars.len()
                && alnum(k - 1)
                && alnum(k + 1)
        };
        let start = i;
        if alnum(i) {
            while i < chars.len() && (alnum(i) || inner(i)) {
                i += 1;
            }
        } else {
            i += 1;
        }
        words.push(Word {
            text: chars[start..i].iter().collect(),
            start,
            end: i,
        });
    }
    words
}

/// Entities of one sentence of words tagged in IOB2 (strategy `words`): character offsets
/// from the words, score the mean of the words' probabilities.
pub fn entities_of(words: &[Word], tags: &[String], probs: &[f32], source: &str) -> Vec<Entity> {
    let chars: Vec<char> = source.chars().collect();
    seqeval::entities(&[tags.to_vec()])
        .into_iter()
        .map(|(_, kind, a, b)| {
            let (start, end) = (words[a].start, words[b].end);
            let score = probs[a..=b].iter().sum::<f32>() / (b - a + 1) as f32;
            Entity {
                entity: None,
                entity_group: Some(kind),
                score,
                index: None,
                word: chars[start..end].iter().collect(),
                start,
                end,
            }
        })
        .collect()
}
