//! The NER model at work: the loss of a batch of windows, and the prediction of every word of
//! a set of sentences (windows joined back, CRF Viterbi over whole sentences), shared by
//! fine-tuning's evaluation, `eval`, `predict` and the server.

use crate::data::conll::Sentence;
use crate::data::tokenizer::Tokenizer;
use crate::model::encoder::{indices, Batch};
use crate::model::heads::crf::{CrfScores, Edges};
use crate::model::heads::TokenClassifier;
use crate::tasks::ner::decode::{entities, entities_of, split_words, Aggregation, Entity, Word};
use crate::tasks::ner::windows::{all_windows, Window, WindowBatch};
use crate::tasks::scores::{argmax, softmax};
use crate::{hf, Error, Result};
use burn::tensor::{Device, Tensor};

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

/// Every piece's label probabilities for id sequences (`[sequence][piece][label]`, special
/// pieces included), `batch_size` sequences of similar lengths per forward pass: the one
/// forward pass of NER inference (`eval`, `predict`, the server, fine-tuning's evaluation).
pub(crate) fn piece_probabilities(
    model: &TokenClassifier,
    ids: &[Vec<u32>],
    pad: u32,
    batch_size: usize,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let device = model.classifier.weight.device();
    let labels = model.classifier.d_out();
    let mut out = vec![Vec::new(); ids.len()];
    // Similar lengths together: less padding (results do not depend on the batching).
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    for chunk in order.chunks(batch_size.max(1)) {
        let seqs: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
        let batch = Batch::new(&seqs, pad, &device);
        let [_, len] = batch.dims();
        let positions: Vec<usize> = seqs
            .iter()
            .enumerate()
            .flat_map(|(b, seq)| (0..seq.len()).map(move |t| b * len + t))
            .collect();
        // [pieces of the batch, labels]
        let emissions = model.emissions(&batch, indices(&positions, &device));
        let values = emissions
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| Error::invalid(format!("cannot read the emissions: {e:?}")))?;
        let mut rows = values.chunks(labels).map(softmax);
        for (&i, seq) in chunk.iter().zip(&seqs) {
            out[i] = rows.by_ref().take(seq.len()).collect();
        }
    }
    Ok(out)
}

/// Each word's label probabilities, per sentence and word, from the windows' piece
/// probabilities (`window_probs[k]` for `windows[k]`): a word is read at its first piece in the
/// window that owns it.
pub(crate) fn word_probabilities(
    windows: &[Window],
    window_probs: &[Vec<Vec<f32>>],
    sentence_lengths: &[usize],
) -> Vec<Vec<Vec<f32>>> {
    let mut probs: Vec<Vec<Vec<f32>>> = sentence_lengths
        .iter()
        .map(|&n| vec![Vec::new(); n])
        .collect();
    for (w, pieces) in windows.iter().zip(window_probs) {
        for (&word, &piece) in w.words.iter().zip(&w.first_piece) {
            probs[w.sentence][word] = pieces[piece].clone();
        }
    }
    probs
}

/// IOB2 tags and their probabilities, per sentence and word: the most probable label, or
/// with a CRF the Viterbi path over each whole sentence (its windows joined, so an entity
/// across a window boundary stays one valid IOB2 entity), on log-probabilities — the
/// emissions less a constant per word, so the same path.
pub(crate) fn decode_words(
    probs: &[Vec<Vec<f32>>],
    crf: Option<&CrfScores>,
    labels: &[String],
) -> Tagged {
    let tags: Vec<Vec<u32>> = match crf {
        None => probs
            .iter()
            .map(|s| s.iter().map(|row| argmax(row) as u32).collect())
            .collect(),
        Some(crf) => {
            let log: Vec<Vec<Vec<f32>>> = probs
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|row| row.iter().map(|p| p.max(f32::MIN_POSITIVE).ln()).collect())
                        .collect()
                })
                .collect();
            let whole = Edges {
                starts_sentence: true,
                ends_sentence: true,
            };
            crf.decode(&log, labels, &vec![whole; log.len()])
        }
    };
    let chosen = tags
        .iter()
        .zip(probs)
        .map(|(t, p)| t.iter().zip(p).map(|(&i, row)| row[i as usize]).collect())
        .collect();
    let names = tags
        .iter()
        .map(|t| t.iter().map(|&i| labels[i as usize].clone()).collect())
        .collect();
    (names, chosen)
}

/// Predicted IOB2 tags and their probabilities, per sentence and word, of sentences cut into
/// `windows`.
pub(crate) fn predict_windows(
    model: &TokenClassifier,
    windows: &[Window],
    sentence_lengths: &[usize],
    labels: &[String],
    pad: u32,
    batch_size: usize,
) -> Result<Tagged> {
    let ids: Vec<Vec<u32>> = windows.iter().map(|w| w.ids.clone()).collect();
    let pieces = piece_probabilities(model, &ids, pad, batch_size)?;
    let crf = model.crf.as_ref().map(|c| c.scores());
    let probs = word_probabilities(windows, &pieces, sentence_lengths);
    Ok(decode_words(&probs, crf.as_ref(), labels))
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

/// Windows are `max_len` word pieces if given, else the length the model was fine-tuned
/// with (`window_length` in its config), else its position limit.
impl hf::FromCheckpoint for NerModel {
    fn from_checkpoint(
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
}

impl NerModel {
    /// IOB2 tags and their probabilities for each sentence of words.
    pub fn tag(&self, sentences: &[Sentence], batch_size: usize) -> Result<Tagged> {
        let windows = all_windows(&self.tokenizer, sentences, self.max_len)?;
        let lengths: Vec<usize> = sentences.iter().map(|s| s.words.len()).collect();
        predict_windows(
            &self.model,
            &windows,
            &lengths,
            &self.labels,
            self.tokenizer.pad_id,
            batch_size,
        )
    }

    /// The most word pieces one text may have in the piece-level strategies (the model's
    /// position limit; longer texts are cut, as the server and the pipeline do).
    pub fn input_limit(&self) -> usize {
        self.model.bert.max_len().unwrap_or(512)
    }

    /// Every piece's label probabilities for a batch of id sequences (special pieces
    /// included): `[sequence][piece][label]`. The forward pass of `predict ner` and `/ner`.
    pub fn piece_probabilities(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<Vec<f32>>>> {
        piece_probabilities(&self.model, ids, self.tokenizer.pad_id, ids.len())
    }

    /// What the `words` strategy needs besides the piece probabilities.
    pub(crate) fn word_decoding(&self) -> WordDecoding {
        WordDecoding {
            window: self.max_len,
            labels: self.labels.clone(),
            crf: self.model.crf.as_ref().map(|c| c.scores()),
        }
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
            let job = WordJob::new(&self.tokenizer, texts, self.max_len)?;
            let pieces =
                piece_probabilities(&self.model, &job.ids(), self.tokenizer.pad_id, batch_size)?;
            return Ok(job.entities(&pieces, &self.word_decoding(), texts));
        }
        let limit = self.input_limit();
        let encodings = texts
            .iter()
            .map(|t| Ok(self.tokenizer.encode_full(t, None, limit)?.encoding))
            .collect::<Result<Vec<_>>>()?;
        let ids: Vec<Vec<u32>> = encodings.iter().map(|e| e.get_ids().to_vec()).collect();
        let probs = piece_probabilities(&self.model, &ids, self.tokenizer.pad_id, batch_size)?;
        let mut out = Vec::with_capacity(texts.len());
        for ((encoding, probs), text) in encodings.iter().zip(&probs).zip(texts) {
            out.push(entities(
                &self.tokenizer,
                encoding,
                probs,
                &self.labels,
                text,
                strategy,
            )?);
        }
        Ok(out)
    }
}

/// What decoding words needs besides the piece probabilities: the window length, the labels
/// and the CRF's scores (on the host, so that the server can decode away from the model's
/// thread).
#[derive(Debug, Clone)]
pub struct WordDecoding {
    /// Word pieces per window (the length the model was fine-tuned with).
    pub window: usize,
    pub labels: Vec<String>,
    pub crf: Option<CrfScores>,
}

/// Raw texts prepared for the `words` strategy: split into words as CoNLL does, the words cut
/// into windows of the model's window length. The forward pass of the windows' ids runs
/// wherever the caller runs it (`predict` in batches, the server in its queue); [`Self::entities`]
/// then decodes exactly as `eval` does.
pub(crate) struct WordJob {
    words: Vec<Vec<Word>>,
    windows: Vec<Window>,
}

impl WordJob {
    pub fn new(tokenizer: &Tokenizer, texts: &[String], window: usize) -> Result<Self> {
        let words: Vec<Vec<Word>> = texts.iter().map(|t| split_words(t)).collect();
        let sentences: Vec<Sentence> = words
            .iter()
            .map(|w| Sentence {
                words: w.iter().map(|w| w.text.clone()).collect(),
                tags: vec!["O".into(); w.len()],
                line: 0,
            })
            .collect();
        let windows = all_windows(tokenizer, &sentences, window)?;
        Ok(WordJob { words, windows })
    }

    /// The windows' ids, for the forward pass.
    pub fn ids(&self) -> Vec<Vec<u32>> {
        self.windows.iter().map(|w| w.ids.clone()).collect()
    }

    /// Entities per text from the windows' piece probabilities (in the order of [`Self::ids`]).
    pub fn entities(
        &self,
        window_probs: &[Vec<Vec<f32>>],
        decoding: &WordDecoding,
        texts: &[String],
    ) -> Vec<Vec<Entity>> {
        let lengths: Vec<usize> = self.words.iter().map(Vec::len).collect();
        let probs = word_probabilities(&self.windows, window_probs, &lengths);
        let (tags, chosen) = decode_words(&probs, decoding.crf.as_ref(), &decoding.labels);
        (0..texts.len())
            .map(|i| entities_of(&self.words[i], &tags[i], &chosen[i], &texts[i]))
            .collect()
    }
}
