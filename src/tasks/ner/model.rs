//! The NER model at work: the loss of a batch of windows, and the prediction of every word of
//! a set of sentences (windows joined back, CRF Viterbi over whole sentences), shared by
//! fine-tuning's evaluation, `eval`, `predict` and the server.

use crate::data::conll::Sentence;
use crate::data::tokenizer::Tokenizer;
use crate::model::encoder::{indices, Batch};
use crate::model::heads::crf::Edges;
use crate::model::heads::TokenClassifier;
use crate::tasks::ner::decode::{entities, entities_of, split_words, Aggregation, Entity, Word};
use crate::tasks::ner::windows::{all_windows, make_batch, Window, WindowBatch};
use crate::tasks::scores::{argmax, softmax};
use crate::{hf, Error, Result};
use burn::tensor::{Device, Tensor};
use std::path::Path;

/// Loss of a batch: cross-entropy on the first pieces, or the CRF's negative log-likelihood.
pub fn loss(
    model: &TokenClassifier,
    wb: &WindowBatch,
    gold: &[u32],
    labels: &[String],
) -> Tensor<1> {
    let device = wb.batch.input_ids.device();
    let emissions = model.emissions(&wb.batch, indices(&wb.positions, &device));
    match &model.crf {
        None => {
            let gold: Vec<usize> = gold.iter().map(|&g| g as usize).collect();
            crate::kernels::cross_entropy(emissions, indices(&gold, &device))
        }
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
    for chunk in order.chunks(batch_size.max(1)) {
        let ws: Vec<&Window> = chunk.iter().map(|&i| &windows[i]).collect();
        let wb = make_batch(&ws, pad, &device);
        // [owned words of the batch, labels]
        let emissions = model.emissions(&wb.batch, indices(&wb.positions, &device));
        let e = emissions
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        for (k, &(s, w)) in wb.words.iter().enumerate() {
            let row = &e[k * l..(k + 1) * l];
            probs[s][w] = softmax(row);
            if model.crf.is_some() {
                scores[s][w] = row.to_vec();
            }
        }
    }
    // Greedy per word; with a CRF, Viterbi over each whole sentence (its windows' emissions
    // joined), so an entity across a window boundary stays one valid IOB2 entity.
    let tags: Vec<Vec<u32>> = match &model.crf {
        None => probs
            .iter()
            .map(|s| s.iter().map(|row| argmax(row) as u32).collect())
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

    /// The most word pieces one text may have in the piece-level strategies (the model's
    /// position limit; longer texts are cut, as the server and the pipeline do).
    pub fn input_limit(&self) -> usize {
        self.model.bert.max_len().unwrap_or(512)
    }

    /// Every piece's label probabilities for a batch of id sequences (special pieces
    /// included): `[sequence][piece][label]`. The forward pass of `predict ner` and `/ner`.
    pub fn piece_probabilities(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<Vec<f32>>>> {
        let device = self.model.classifier.weight.device();
        let batch = Batch::new(ids, self.tokenizer.pad_id, &device);
        let [_, len] = batch.dims();
        let positions: Vec<usize> = ids
            .iter()
            .enumerate()
            .flat_map(|(b, seq)| (0..seq.len()).map(move |t| b * len + t))
            .collect();
        // [pieces of the batch, labels]
        let emissions = self.model.emissions(&batch, indices(&positions, &device));
        let values = emissions
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| Error::invalid(format!("cannot read the emissions: {e:?}")))?;
        let mut rows = values.chunks(self.labels.len()).map(softmax);
        Ok(ids
            .iter()
            .map(|seq| rows.by_ref().take(seq.len()).collect())
            .collect())
    }

    /// Entities of raw texts by `strategy` (see [`Aggregation`]), `batch_size` texts or
    /// windows per forward pass.
    pub fn entities(
        &self,
        texts: &[String],
        strategy: Aggregation,
        batch_size: usize,
    ) -> Result<Vec<Vec<Entity>>> {
        if strategy == Aggregation::Words {
            let words: Vec<Vec<Word>> = texts.iter().map(|t| split_words(t)).collect();
            let sentences: Vec<Sentence> = words
                .iter()
                .map(|w| Sentence {
                    words: w.iter().map(|w| w.text.clone()).collect(),
                    tags: vec!["O".into(); w.len()],
                    line: 0,
                })
                .collect();
            let (tags, probs) = self.tag(&sentences, batch_size)?;
            return Ok((0..texts.len())
                .map(|i| entities_of(&words[i], &tags[i], &probs[i], &texts[i]))
                .collect());
        }
        let limit = self.input_limit();
        let encodings = texts
            .iter()
            .map(|t| Ok(self.tokenizer.encode_full(t, None, limit)?.encoding))
            .collect::<Result<Vec<_>>>()?;
        // Similar lengths together: less padding (results do not depend on the batching).
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let ids: Vec<Vec<u32>> = chunk
                .iter()
                .map(|&i| encodings[i].get_ids().to_vec())
                .collect();
            for (&i, probs) in chunk.iter().zip(self.piece_probabilities(&ids)?) {
                out[i] = entities(
                    &self.tokenizer,
                    &encodings[i],
                    &probs,
                    &self.labels,
                    &texts[i],
                    strategy,
                )?;
            }
        }
        Ok(out)
    }
}
