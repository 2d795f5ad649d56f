//! Named-entity recognition: word / word-piece alignment with overlapping windows, fine-tuning
//! as a [`Task`], evaluation and prediction.
//!
//! Each word is labelled on its first word piece (the other pieces are not scored). A sentence
//! longer than the model's window is split into overlapping windows at word boundaries; every
//! word is owned by the window where it has the most context on both sides, and is trained and
//! predicted there, so nothing is truncated.

use crate::data::conll::{self, Sentence};
use crate::data::tags::{label_set, Scheme};
use crate::data::tokenizer::Tokenizer;
use crate::model::config::ModelConfig;
use crate::model::encoder::Batch;
use crate::model::heads::crf::Edges;
use crate::model::heads::TokenClassifier;
use crate::train::config::{RunSettings, TrainConfig};
use crate::train::masking::lm_targets;
use crate::train::sampler::{Position, Sampling};
use crate::train::trainer::{LegacyPosition, Metrics, Task};
use crate::{hf, Error, Result};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use seqeval::{entity_report, token_report, Report};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub mod commands;
pub mod seqeval;

/// One model input: a window of a sentence and the words it owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub sentence: usize,
    /// Word-piece ids with [CLS] and [SEP].
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
/// becomes [UNK] so that it still gets a prediction.
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

/// Splits one sentence's words into windows of at most `max_len` ids ([CLS] and [SEP] included).
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
pub fn all_windows(
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

/// A batch of windows: inputs, flat positions of the owned words' first pieces, and where each
/// position's word is.
pub struct WindowBatch {
    batch: Batch,
    positions: Vec<usize>,
    words: Vec<(usize, usize)>,
    /// Owned words per window (for the CRF's sequences).
    lengths: Vec<usize>,
    /// Sentence starts and ends (for the CRF's sequences).
    edges: Vec<Edges>,
}

pub fn make_batch(windows: &[&Window], pad: u32, device: &Device) -> WindowBatch {
    let len = windows.iter().map(|w| w.ids.len()).max().unwrap_or(0);
    let seqs: Vec<Vec<u32>> = windows.iter().map(|w| w.ids.clone()).collect();
    let mut positions = Vec::new();
    let mut words = Vec::new();
    for (r, w) in windows.iter().enumerate() {
        positions.extend(w.first_piece.iter().map(|&p| r * len + p));
        words.extend(w.words.iter().map(|&word| (w.sentence, word)));
    }
    WindowBatch {
        batch: Batch::new(&seqs, pad, device),
        positions,
        words,
        lengths: windows.iter().map(|w| w.words.len()).collect(),
        edges: windows.iter().map(|w| w.edges).collect(),
    }
}

/// Loss of a batch: cross-entropy on the first pieces, or the CRF's negative log-likelihood.
pub fn loss(
    model: &TokenClassifier,
    wb: &WindowBatch,
    gold: &[u32],
    labels: &[String],
) -> Tensor<1> {
    let device = wb.batch.input_ids.device();
    let t = lm_targets(&wb.positions, gold, &device);
    let emissions = model.emissions(&wb.batch, t.positions);
    match &model.crf {
        None => crate::kernels::cross_entropy(emissions, t.targets),
        Some(crf) => {
            // Emissions per window, padded to the longest: [windows, words, labels].
            let longest = wb.lengths.iter().copied().max().unwrap_or(1);
            let l = labels.len();
            let mut index = Vec::with_capacity(wb.lengths.len() * longest);
            let mut sequences = Vec::with_capacity(wb.lengths.len());
            let mut offset = 0;
            for &n in &wb.lengths {
                index.extend((0..longest).map(|i| (offset + i.min(n - 1)) as i64));
                sequences.push(gold[offset..offset + n].to_vec());
                offset += n;
            }
            let idx = Tensor::<1, burn::tensor::Int>::from_data(
                burn::tensor::TensorData::new(index, [wb.lengths.len() * longest]),
                &device,
            );
            let padded = emissions
                .select(0, idx)
                .reshape([wb.lengths.len(), longest, l]);
            crf.loss(padded, &sequences, labels, &wb.edges)
        }
    }
}

/// Predicted label indices and their probabilities, per sentence and word.
pub fn predict_windows(
    model: &TokenClassifier,
    windows: &[Window],
    sentence_lengths: &[usize],
    labels: &[String],
    pad: u32,
    batch_size: usize,
) -> (Vec<Vec<u32>>, Vec<Vec<f32>>) {
    let device = model.classifier.weight.device();
    let l = labels.len();
    // Each word's label distribution and emission row, gathered from the window that owns it.
    let mut probs: Vec<Vec<Vec<f32>>> = sentence_lengths
        .iter()
        .map(|&n| vec![Vec::new(); n])
        .collect();
    let mut scores = probs.clone();
    // Similar lengths together: less padding (results do not depend on the batching).
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by_key(|&i| windows[i].ids.len());
    let rows = |t: Tensor<2>| {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default()
    };
    for chunk in order.chunks(batch_size.max(1)) {
        let ws: Vec<&Window> = chunk.iter().map(|&i| &windows[i]).collect();
        let wb = make_batch(&ws, pad, &device);
        let t = lm_targets(&wb.positions, &vec![0; wb.positions.len()], &device);
        let emissions = model.emissions(&wb.batch, t.positions);
        let p = rows(softmax(emissions.clone(), 1));
        let e = if model.crf.is_some() {
            rows(emissions)
        } else {
            Vec::new()
        };
        for (k, &(s, w)) in wb.words.iter().enumerate() {
            probs[s][w] = p[k * l..(k + 1) * l].to_vec();
            if !e.is_empty() {
                scores[s][w] = e[k * l..(k + 1) * l].to_vec();
            }
        }
    }
    // Greedy per word; with a CRF, Viterbi over each whole sentence (its windows' emissions
    // joined), so an entity across a window boundary stays one valid IOB2 entity.
    let argmax = |row: &Vec<f32>| {
        row.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i as u32)
    };
    let tags: Vec<Vec<u32>> = match &model.crf {
        None => probs
            .iter()
            .map(|s| s.iter().map(argmax).collect())
            .collect(),
        Some(crf) => {
            let whole = vec![
                Edges {
                    starts_sentence: true,
                    ends_sentence: true
                };
                scores.len()
            ];
            crf.decode(&scores, labels, &whole)
        }
    };
    let chosen = tags
        .iter()
        .zip(&probs)
        .map(|(t, p)| t.iter().zip(p).map(|(&i, row)| row[i as usize]).collect())
        .collect();
    (tags, chosen)
}

/// IOB2 tags and their probabilities, per sentence and word.
pub type Tagged = (Vec<Vec<String>>, Vec<Vec<f32>>);

/// A fine-tuned NER model with its tokenizer and labels.
pub struct NerModel {
    pub model: TokenClassifier,
    pub tokenizer: Tokenizer,
    pub labels: Vec<String>,
    pub max_len: usize,
}

impl NerModel {
    /// Loads a fine-tuned model; windows are `max_len` word pieces if given, else the length
    /// the model was fine-tuned with (`window_length` in its config), else its position limit.
    pub fn load(dir: &Path, max_len: Option<usize>, device: &Device) -> Result<Self> {
        Self::from_checkpoint(&hf::Checkpoint::open(dir)?, max_len, device)
    }

    /// The NER model of an opened checkpoint.
    pub fn from_checkpoint(
        checkpoint: &hf::Checkpoint,
        max_len: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let labels = checkpoint.config.labels().ok_or_else(|| {
            Error::file(
                checkpoint.dir.join(hf::CONFIG),
                "no id2label: not a token-classification model",
            )
        })?;
        let model = checkpoint.token_classifier(labels.len(), device)?;
        let limit = model.bert.max_len().unwrap_or(512);
        let max_len = max_len
            .or(checkpoint.config.window_length)
            .unwrap_or(512)
            .min(limit);
        Ok(NerModel {
            model,
            tokenizer: checkpoint.tokenizer()?,
            labels,
            max_len,
        })
    }

    /// IOB2 tags and their probabilities for each sentence of words.
    pub fn tag(&self, sentences: &[Sentence], batch_size: usize) -> Result<Tagged> {
        let windows = all_windows(&self.tokenizer, sentences, self.max_len)?;
        let lengths: Vec<usize> = sentences.iter().map(|s| s.words.len()).collect();
        let (ids, probs) = predict_windows(
            &self.model,
            &windows,
            &lengths,
            &self.labels,
            self.tokenizer.pad_id,
            batch_size,
        );
        Ok((
            ids.iter()
                .map(|s| s.iter().map(|&i| self.labels[i as usize].clone()).collect())
                .collect(),
            probs,
        ))
    }
}

/// Fine-tuning settings specific to NER (`[ner]` of a TOML config and of the run's
/// `run.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NerConfig {
    /// The model to start from: any BERT directory.
    pub model: String,
    /// Training file (CoNLL columns).
    pub train: String,
    /// Development file, for model selection.
    pub dev: String,
    /// A CRF layer over the emissions.
    pub crf: bool,
    /// Word pieces per window, [CLS] and [SEP] included.
    pub max_len: usize,
    /// 0-based tag column (default: the last).
    pub tag_column: Option<usize>,
    /// Tag scheme of the files (default: detected).
    pub scheme: Option<Scheme>,
}

impl Default for NerConfig {
    fn default() -> Self {
        NerConfig {
            model: String::new(),
            train: String::new(),
            dev: String::new(),
            crf: false,
            max_len: 128,
            tag_column: None,
            scheme: None,
        }
    }
}

/// What a NER fine-tuning run is started with (saved as `run.toml`, checked on resume).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NerSettings {
    pub ner: NerConfig,
    pub train: TrainConfig,
}

impl RunSettings for NerSettings {
    /// 5 epochs at 1e-4 with 10 % warm-up: better than transformers' usual 3 at 5e-5 on
    /// CoNLL-2003 (docs/RESULTS.md).
    fn recipe() -> Self {
        let mut run = NerSettings::default();
        run.train.lr = 1e-4;
        run.train.epochs = 5.0;
        run.train.warmup = 0.1;
        run
    }
    fn train_mut(&mut self) -> &mut TrainConfig {
        &mut self.train
    }
}

/// NER fine-tuning as a [`Task`]: shuffled windows, selection by development entity F1.
pub struct NerTask {
    pub labels: Vec<String>,
    config: ModelConfig,
    tokenizer: Tokenizer,
    train: Vec<Window>,
    train_gold: Vec<Vec<u32>>,
    dev: Vec<Sentence>,
    dev_windows: Vec<Window>,
    device: Device,
    pub last_reports: Option<(Report, Report)>,
}

impl NerTask {
    /// Reads the data and prepares the model: a base encoder gets a fresh head for the labels of
    /// the training data; a token-classification model with the same labels keeps its head.
    pub fn prepare(cfg: &NerConfig, device: &Device) -> Result<(NerTask, TokenClassifier)> {
        // Data: the label set comes from the training file; the development file may not add
        // labels.
        let (train, _) = conll::read_iob2(Path::new(&cfg.train), cfg.tag_column, cfg.scheme)?;
        let (dev, _) = conll::read_iob2(Path::new(&cfg.dev), cfg.tag_column, cfg.scheme)?;
        let labels = label_set(train.iter().flat_map(|s| &s.tags));
        let unknown: Vec<&String> = dev
            .iter()
            .flat_map(|s| &s.tags)
            .filter(|t| !labels.contains(t))
            .collect();
        if let Some(t) = unknown.first() {
            return Err(Error::file(
                &cfg.dev,
                format!("tag {t} does not occur in the training data"),
            ));
        }
        // Tokenizer and model, from one reading of the checkpoint.
        let checkpoint = hf::Checkpoint::open(Path::new(&cfg.model))?;
        let tokenizer = checkpoint.tokenizer()?;
        let mut config = checkpoint.config.clone();
        let keep_head = config.labels().as_ref() == Some(&labels) && config.crf() == cfg.crf;
        let model = if keep_head {
            checkpoint.token_classifier(labels.len(), device)?
        } else {
            TokenClassifier::new(checkpoint.encoder(device)?, labels.len(), cfg.crf, device)
        };
        let max_len = cfg.max_len.min(model.bert.max_len().unwrap_or(usize::MAX));
        config.set_labels(&labels);
        config.set_crf(cfg.crf);
        config.window_length = Some(max_len);
        config.architectures = vec!["BertForTokenClassification".into()];
        // Windows of at most `max_len` word pieces, with the gold label of each word.
        let train_windows = all_windows(&tokenizer, &train, max_len)?;
        let index = |t: &String| labels.iter().position(|l| l == t).expect("label in set") as u32;
        let train_gold = train_windows
            .iter()
            .map(|w| {
                w.words
                    .iter()
                    .map(|&i| index(&train[w.sentence].tags[i]))
                    .collect()
            })
            .collect();
        let dev_windows = all_windows(&tokenizer, &dev, max_len)?;
        let task = NerTask {
            labels,
            config,
            tokenizer,
            train: train_windows,
            train_gold,
            dev,
            dev_windows,
            device: device.clone(),
            last_reports: None,
        };
        Ok((task, model))
    }
}

impl Task for NerTask {
    type Model = TokenClassifier;

    /// Shuffled windows; the last batch of an epoch may be short, as in PyTorch's DataLoader.
    fn sampling(&self) -> Sampling {
        Sampling {
            lengths: self.train.iter().map(|w| w.ids.len()).collect(),
            bucketed: false,
            drop_last: false,
        }
    }

    fn loss(&mut self, model: &TokenClassifier, picked: &[usize]) -> Result<(Tensor<1>, usize)> {
        let ws: Vec<&Window> = picked.iter().map(|&i| &self.train[i]).collect();
        let gold: Vec<u32> = picked
            .iter()
            .flat_map(|&i| self.train_gold[i].iter().copied())
            .collect();
        let wb = make_batch(&ws, self.tokenizer.pad_id, &self.device);
        let tokens = ws.iter().map(|w| w.ids.len()).sum();
        Ok((loss(model, &wb, &gold, &self.labels), tokens))
    }

    fn evaluate(&mut self, model: &TokenClassifier) -> Result<Metrics> {
        let lengths: Vec<usize> = self.dev.iter().map(|s| s.words.len()).collect();
        let (ids, _) = predict_windows(
            model,
            &self.dev_windows,
            &lengths,
            &self.labels,
            self.tokenizer.pad_id,
            64,
        );
        let predicted: Vec<Vec<String>> = ids
            .iter()
            .map(|s| s.iter().map(|&i| self.labels[i as usize].clone()).collect())
            .collect();
        let gold: Vec<Vec<String>> = self.dev.iter().map(|s| s.tags.clone()).collect();
        let (entity, token) = (
            entity_report(&gold, &predicted),
            token_report(&gold, &predicted),
        );
        let metrics = vec![
            ("entity_precision".into(), entity.micro.precision),
            ("entity_recall".into(), entity.micro.recall),
            ("entity_f1".into(), entity.micro.f1),
            ("token_f1".into(), token.micro.f1),
        ];
        self.last_reports = Some((entity, token));
        Ok(metrics)
    }

    fn selection(&self) -> Option<(&'static str, bool)> {
        Some(("entity_f1", true))
    }

    /// Before the shared sampler, NER saved the epoch and the windows drawn in it, in the
    /// same order as now.
    fn legacy_position(&self, state: &serde_json::Value, batch_size: usize) -> Result<Position> {
        let legacy: LegacyPosition = serde_json::from_value(state.clone())
            .map_err(|e| Error::invalid(format!("data position: {e}")))?;
        Ok(Position {
            epoch: legacy.epoch,
            batch: legacy.cursor.div_ceil(batch_size.max(1)),
        })
    }

    fn save_model(&self, model: &TokenClassifier, dir: &Path) -> Result<()> {
        hf::save(model, &self.config, dir, Some(&self.tokenizer.path))
    }

    fn load_model(&self, dir: &Path) -> Result<TokenClassifier> {
        hf::load_token_classifier(dir, self.labels.len(), &self.device)
    }
}

/// A word of raw text with its character offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Splits raw text into words as CoNLL does: on whitespace, with punctuation characters as words
/// of their own (a hyphen or apostrophe inside a word stays). Offsets are in characters.
pub fn split_words(text: &str) -> Vec<Word> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let inner = |k: usize| {
            matches!(chars[k], '-' | '\'' | '.' | ',')
                && k > 0
                && k + 1 < chars.len()
                && chars[k - 1].is_alphanumeric()
                && chars[k + 1].is_alphanumeric()
        };
        let start = i;
        if chars[i].is_alphanumeric() {
            while i < chars.len() && (chars[i].is_alphanumeric() || inner(i)) {
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

/// An entity found in text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    pub text: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub start: usize,
    pub end: usize,
    pub score: f32,
}

/// Entities of one tagged sentence of words (IOB2 tags; character offsets from the words).
pub fn entities_of(words: &[Word], tags: &[String], probs: &[f32], source: &str) -> Vec<Found> {
    let chars: Vec<char> = source.chars().collect();
    seqeval::entities(&[tags.to_vec()])
        .into_iter()
        .map(|(_, kind, a, b)| {
            let (start, end) = (words[a].start, words[b].end);
            let score = probs[a..=b].iter().sum::<f32>() / (b - a + 1) as f32;
            Found {
                text: chars[start..end].iter().collect(),
                kind,
                start,
                end,
                score,
            }
        })
        .collect()
}
