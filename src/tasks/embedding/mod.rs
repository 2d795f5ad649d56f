//! Sentence embeddings as sentence-transformers computes them: mean of the last hidden states
//! over real tokens (or the \[CLS\] state), then L2-normalised; and their fine-tuning on
//! (anchor, positive) pairs (`task`: the contrastive loss; `commands`: `finetune embed`), which
//! writes a directory sentence-transformers loads.

pub mod commands;
pub mod task;

use crate::data::tokenizer::Tokenizer;
use crate::model::encoder::{Batch, EncoderModel};
use crate::model::pooling::{l2_normalize, mean_pool};
use crate::{hf, io, Error, Result};
use burn::tensor::Device;
use burn::tensor::Tensor;
use std::path::Path;

/// One text's token ids and last hidden states (`[tokens][hidden]`, no padding).
pub(crate) type TokenStates = (Vec<u32>, Vec<Vec<f32>>);

/// How token states become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SentencePooling {
    /// Mean over real tokens (sentence-transformers' default).
    Mean,
    /// The \[CLS\] token's state.
    Cls,
}

pub struct Embedder {
    pub model: EncoderModel,
    pub tokenizer: Tokenizer,
    /// Longest input in word pieces; longer texts are truncated.
    pub max_len: usize,
    /// The directory's own pooling (`1_Pooling/config.json`), mean when it has none.
    pub pooling: SentencePooling,
    device: Device,
}

/// sentence-transformers' own limit, when the directory has one: `max_seq_length` of
/// `sentence_bert_config.json` (up to version 5), else, in a sentence-transformers directory
/// (`modules.json`), the tokenizer's `model_max_length` (version 6 keeps it there).
fn sentence_transformers_max_len(dir: &Path) -> Result<Option<usize>> {
    let number = |v: Option<serde_json::Value>, key: &str| {
        v.and_then(|v| v.get(key).and_then(serde_json::Value::as_u64))
            .filter(|&m| m < 1 << 20) // transformers' "no limit" is a huge sentinel
            .map(|m| m as usize)
    };
    if let Some(m) = number(
        read_json(&dir.join("sentence_bert_config.json"))?,
        "max_seq_length",
    ) {
        return Ok(Some(m));
    }
    if !dir.join("modules.json").exists() {
        return Ok(None);
    }
    Ok(number(
        read_json(&dir.join("tokenizer_config.json"))?,
        "model_max_length",
    ))
}

/// sentence-transformers' pooling module (`1_Pooling/config.json`): `"pooling_mode": "mean"` or
/// `"cls"` (version 6), or the flags `pooling_mode_mean_tokens` / `pooling_mode_cls_token`
/// (earlier versions); mean without the file. Other modes are refused rather than approximated.
fn sentence_transformers_pooling(dir: &Path) -> Result<SentencePooling> {
    let path = dir.join("1_Pooling").join("config.json");
    let Some(v) = read_json(&path)? else {
        return Ok(SentencePooling::Mean);
    };
    if let Some(mode) = v.get("pooling_mode") {
        return match mode.as_str() {
            Some("mean") => Ok(SentencePooling::Mean),
            Some("cls") => Ok(SentencePooling::Cls),
            _ => Err(Error::file(
                &path,
                format!("pooling_mode {mode}: positio pools by \"mean\" or \"cls\" only"),
            )),
        };
    }
    let on = |key: &str| v.get(key).and_then(|b| b.as_bool()).unwrap_or(false);
    match (on("pooling_mode_cls_token"), on("pooling_mode_mean_tokens")) {
        (true, false) => Ok(SentencePooling::Cls),
        (false, true) => Ok(SentencePooling::Mean),
        _ => Err(Error::file(
            &path,
            "positio pools by mean or [CLS] only: set exactly one of pooling_mode_mean_tokens, pooling_mode_cls_token",
        )),
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::file(path, format!("malformed JSON: {e}")))
}

/// Sentence vectors `[batch, hidden]` of a batch, before normalisation: the one pooling of
/// inference and fine-tuning.
pub(crate) fn sentence_vectors(
    model: &EncoderModel,
    batch: &Batch,
    pooling: SentencePooling,
) -> Tensor<2> {
    let hidden = model.forward(batch);
    let [b, _, h] = hidden.dims();
    match pooling {
        SentencePooling::Mean => mean_pool(hidden, batch),
        SentencePooling::Cls => hidden.narrow(1, 0, 1).reshape([b, h]),
    }
}

/// Writes the files that make a model directory a sentence-transformers model (Transformer,
/// Pooling, Normalize), so that `SentenceTransformer(dir)` embeds as [`Embedder`] does.
pub(crate) fn write_sentence_transformers(
    dir: &Path,
    hidden: usize,
    pooling: SentencePooling,
    max_len: usize,
) -> Result<()> {
    let json = |v: serde_json::Value| serde_json::to_string_pretty(&v).expect("serialises") + "\n";
    let modules = serde_json::json!([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
    ]);
    let pooling_config = serde_json::json!({
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": pooling == SentencePooling::Cls,
        "pooling_mode_mean_tokens": pooling == SentencePooling::Mean,
        "pooling_mode_max_tokens": false,
        "pooling_mode_mean_sqrt_len_tokens": false,
        "pooling_mode_weightedmean_tokens": false,
        "pooling_mode_lasttoken": false,
        "include_prompt": true
    });
    let sbert = serde_json::json!({"max_seq_length": max_len, "do_lower_case": false});
    for sub in ["1_Pooling", "2_Normalize"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| Error::io(dir.join(sub), "create", e))?;
    }
    io::write_atomic(&dir.join("modules.json"), json(modules).as_bytes())?;
    io::write_atomic(
        &dir.join("1_Pooling/config.json"),
        json(pooling_config).as_bytes(),
    )?;
    io::write_atomic(
        &dir.join("sentence_bert_config.json"),
        json(sbert).as_bytes(),
    )
}

impl Embedder {
    /// An embedder of a model in memory (e.g. during fine-tuning).
    pub(crate) fn from_parts(
        model: EncoderModel,
        tokenizer: Tokenizer,
        max_len: usize,
        pooling: SentencePooling,
        device: &Device,
    ) -> Self {
        Embedder {
            model,
            tokenizer,
            max_len,
            pooling,
            device: device.clone(),
        }
    }

    /// The device the model runs on.
    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::from_checkpoint(&hf::Checkpoint::open(dir)?, device)
    }

    /// The embedder of an opened checkpoint (with its directory's sentence-transformers files).
    pub(crate) fn from_checkpoint(checkpoint: &hf::Checkpoint, device: &Device) -> Result<Self> {
        let dir = checkpoint.dir.as_path();
        let model = checkpoint.encoder(device)?;
        let tokenizer = checkpoint.tokenizer()?;
        let model_max = model.max_len().unwrap_or(usize::MAX);
        let max_len = sentence_transformers_max_len(dir)?
            .unwrap_or(model_max)
            .min(model_max);
        Ok(Embedder {
            model,
            tokenizer,
            max_len,
            pooling: sentence_transformers_pooling(dir)?,
            device: device.clone(),
        })
    }

    /// Unit-norm sentence embeddings of `texts`, in order, `batch_size` texts at a time (in
    /// length-sorted batches, so that little is padded; results do not depend on batching).
    pub fn embed(
        &self,
        texts: &[String],
        pooling: SentencePooling,
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>> {
        self.sentence_vectors(texts, pooling, batch_size, true)
    }

    /// The same, L2-normalised only if `normalize`.
    pub fn sentence_vectors(
        &self,
        texts: &[String],
        pooling: SentencePooling,
        batch_size: usize,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>> {
        let ids = self.encode(texts)?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
            for (&i, v) in chunk.iter().zip(self.pool(&batch, pooling, normalize)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Sentence vectors of one batch of token-id sequences (L2-normalised if `normalize`).
    pub(crate) fn pool(
        &self,
        ids: &[Vec<u32>],
        pooling: SentencePooling,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>> {
        let batch = Batch::new(ids, self.tokenizer.pad_id, &self.device);
        let mut emb = sentence_vectors(&self.model, &batch, pooling);
        let [_, h] = emb.dims();
        if normalize {
            emb = l2_normalize(emb);
        }
        let v = to_vec(emb.reshape([-1]))?;
        Ok(v.chunks(h).map(<[f32]>::to_vec).collect())
    }

    /// Token ids and last hidden states of each text.
    pub(crate) fn token_states(
        &self,
        texts: &[String],
        batch_size: usize,
    ) -> Result<Vec<TokenStates>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch_size.max(1)) {
            let ids = self.encode(chunk)?;
            let batch = Batch::new(&ids, self.tokenizer.pad_id, &self.device);
            let hidden = self.model.forward(&batch);
            let [_, s, h] = hidden.dims();
            let v = to_vec(hidden.reshape([-1]))?;
            for (i, seq) in ids.into_iter().enumerate() {
                let states = (0..seq.len())
                    .map(|t| v[(i * s + t) * h..][..h].to_vec())
                    .collect();
                out.push((seq, states));
            }
        }
        Ok(out)
    }

    fn encode(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|t| self.tokenizer.encode(t, self.max_len))
            .collect()
    }
}

/// A tensor's values, flat, as f32 (for the inference paths that hand vectors out).
pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::invalid(format!("cannot read tensor: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::test_file as write;

    #[test]
    fn reads_both_generations_of_sentence_transformers_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(
            sentence_transformers_pooling(d).unwrap(),
            SentencePooling::Mean
        );
        write(d, "1_Pooling/config.json", r#"{"pooling_mode": "cls"}"#);
        assert_eq!(
            sentence_transformers_pooling(d).unwrap(),
            SentencePooling::Cls
        );
        write(d, "1_Pooling/config.json", r#"{"pooling_mode": "max"}"#);
        let e = sentence_transformers_pooling(d).unwrap_err().to_string();
        assert!(e.contains("pooling_mode \"max\""), "{e}");
        write(
            d,
            "1_Pooling/config.json",
            r#"{"pooling_mode_mean_tokens": true}"#,
        );
        assert_eq!(
            sentence_transformers_pooling(d).unwrap(),
            SentencePooling::Mean
        );

        write(d, "tokenizer_config.json", r#"{"model_max_length": 256}"#);
        assert_eq!(
            sentence_transformers_max_len(d).unwrap(),
            None,
            "not a sentence-transformers directory"
        );
        write(d, "modules.json", "[]");
        assert_eq!(sentence_transformers_max_len(d).unwrap(), Some(256));
        write(
            d,
            "tokenizer_config.json",
            r#"{"model_max_length": 1000000000000000019884624838656}"#,
        );
        assert_eq!(
            sentence_transformers_max_len(d).unwrap(),
            None,
            "transformers' no-limit sentinel"
        );
        write(d, "sentence_bert_config.json", r#"{"max_seq_length": 128}"#);
        assert_eq!(sentence_transformers_max_len(d).unwrap(), Some(128));
    }
}
