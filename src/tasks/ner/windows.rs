//! Word / word-piece alignment for NER: each word is labelled on its first word piece, and a
//! sentence longer than the model's window is split into overlapping windows at word
//! boundaries. Every word is owned by the window where it has the most context on both sides,
//! and is trained and predicted there, so nothing is truncated.

use crate::data::conll::Sentence;
use crate::data::tokenizer::Tokenizer;
use crate::model::encoder::Batch;
use crate::model::heads::crf::Edges;
use crate::{Error, Result};
use burn::tensor::Device;

/// One model input: a window of a sentence and the words it owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub sentence: usize,
    /// Word-piece ids with \[CLS\] and \[SEP\].
    pub ids: Vec<u32>,
    /// Owned words (indices into the sentence), in order.
    pub words: Vec<usize>,
    /// Position of each owned word's first piece in `ids`.
    pub first_piece: Vec<usize>,
    /// Whether the owned words start / end the sentence (the CRF's start and end scores
    /// apply only there).
    pub edges: Edges,
}

/// Word pieces of each word; a word the tokenizer drops entirely (e.g. a control character)
/// becomes \[UNK\] so that it still gets a prediction.
pub fn word_pieces(tokenizer: &Tokenizer, words: &[String]) -> Result<Vec<Vec<u32>>> {
    let unk = tokenizer.token_to_id("[UNK]").unwrap_or(0);
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let enc = tokenizer
        .inner()
        .encode(tokenizers::InputSequence::from(refs), false)
        .map_err(|e| Error::invalid(format!("cannot tokenize {words:?}: {e}")))?;
    let mut pieces = vec![Vec::new(); words.len()];
    for (id, w) in enc.get_ids().iter().zip(enc.get_word_ids()) {
        if let Some(w) = w {
            pieces[*w as usize].push(*id);
        }
    }
    for p in &mut pieces {
        if p.is_empty() {
            p.push(unk);
        }
    }
    Ok(pieces)
}

/// Splits one sentence's words into windows of at most `max_len` ids (\[CLS\] and \[SEP\] included).
pub fn windows(
    sentence: usize,
    pieces: &[Vec<u32>],
    max_len: usize,
    cls: u32,
    sep: u32,
) -> Vec<Window> {
    let budget = max_len.saturating_sub(2).max(1);
    let n = pieces.len();
    // Word spans [start, end) whose pieces fit the budget (a single over-long word is cut).
    let mut spans = Vec::new();
    let mut start = 0;
    loop {
        let mut end = start;
        let mut used = 0;
        while end < n && (used + pieces[end].len() <= budget || end == start) {
            used += pieces[end].len();
            end += 1;
        }
        spans.push((start, end));
        if end >= n {
            break;
        }
        // Overlap by half the window: the next one starts at the middle word.
        let next = start + (end - start) / 2;
        start = next.max(start + 1);
    }
    // Each word belongs to the span where it is furthest from an edge.
    let mut owner = vec![0usize; n];
    for (w, o) in owner.iter_mut().enumerate() {
        let mut best = (i64::MIN, 0);
        for (k, &(s, e)) in spans.iter().enumerate() {
            if s <= w && w < e {
                let margin = (w - s).min(e - 1 - w) as i64;
                if margin > best.0 {
                    best = (margin, k);
                }
            }
        }
        *o = best.1;
    }
    spans
        .iter()
        .enumerate()
        .filter_map(|(k, &(s, e))| {
            let mut ids = vec![cls];
            let mut first = vec![0; e - s];
            for (i, w) in (s..e).enumerate() {
                first[i] = ids.len();
                ids.extend(&pieces[w]);
            }
            // Only a single word longer than the whole window can overflow: keep its start.
            ids.truncate(budget + 1);
            ids.push(sep);
            let owned: Vec<usize> = (s..e).filter(|&w| owner[w] == k).collect();
            if owned.is_empty() {
                return None;
            }
            let first_piece = owned.iter().map(|&w| first[w - s]).collect();
            let edges = Edges {
                starts_sentence: owned[0] == 0,
                ends_sentence: owned.last() == Some(&(n - 1)),
            };
            Some(Window {
                sentence,
                ids,
                words: owned,
                first_piece,
                edges,
            })
        })
        .collect()
}

/// All windows of a set of sentences.
pub(crate) fn all_windows(
    tokenizer: &Tokenizer,
    sentences: &[Sentence],
    max_len: usize,
) -> Result<Vec<Window>> {
    let cls = tokenizer
        .token_to_id("[CLS]")
        .ok_or_else(|| Error::file(&tokenizer.path, "no [CLS] token"))?;
    let sep = tokenizer
        .token_to_id("[SEP]")
        .ok_or_else(|| Error::file(&tokenizer.path, "no [SEP] token"))?;
    let mut out = Vec::new();
    for (i, s) in sentences.iter().enumerate() {
        out.extend(windows(
            i,
            &word_pieces(tokenizer, &s.words)?,
            max_len,
            cls,
            sep,
        ));
    }
    Ok(out)
}

/// A batch of windows for training: inputs and the flat positions of the owned words' first
/// pieces.
pub struct WindowBatch {
    pub(crate) batch: Batch,
    pub(crate) positions: Vec<usize>,
    /// Owned words per window (for the CRF's sequences).
    pub(crate) lengths: Vec<usize>,
    /// Sentence starts and ends (for the CRF's sequences).
    pub(crate) edges: Vec<Edges>,
}

pub(crate) fn make_batch(windows: &[&Window], pad: u32, device: &Device) -> WindowBatch {
    let len = windows.iter().map(|w| w.ids.len()).max().unwrap_or(0);
    let seqs: Vec<Vec<u32>> = windows.iter().map(|w| w.ids.clone()).collect();
    let mut positions = Vec::new();
    for (r, w) in windows.iter().enumerate() {
        positions.extend(w.first_piece.iter().map(|&p| r * len + p));
    }
    WindowBatch {
        batch: Batch::new(&seqs, pad, device),
        positions,
        lengths: windows.iter().map(|w| w.words.len()).collect(),
        edges: windows.iter().map(|w| w.edges).collect(),
    }
}
