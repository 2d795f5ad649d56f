//! Sentence embeddings as sentence-transformers computes them: mean of the last hidden states
//! over real tokens, then L2-normalised.

use crate::data::tokenizer::Tokenizer;
use crate::model::encoder::{Batch, EncoderModel};
use crate::model::pooling::{l2_normalize, mean_pool};
use crate::{hf, Error, Result};
use burn::tensor::Device;
use burn::tensor::Tensor;
use std::path::Path;

/// One text's token ids and last hidden states (`[tokens][hidden]`, no padding).
pub type TokenStates = (Vec<u32>, Vec<Vec<f32>>);

pub struct Embedder {
    pub model: EncoderModel,
    pub tokenizer: Tokenizer,
    /// Longest input in word pieces; longer texts are truncated.
    pub max_len: usize,
    device: Device,
}

/// sentence-transformers' own limit, when the directory has one (`sentence_bert_config.json`).
fn sentence_transformers_max_len(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join("sentence_bert_config.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::file(&path, format!("cannot read: {e}")))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::file(&path, format!("malformed JSON: {e}")))?;
    Ok(v.get("max_seq_length")
        .and_then(|m| m.as_u64())
        .map(|m| m as usize))
}

impl Embedder {
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let checkpoint = hf::Checkpoint::open(dir)?;
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
            device: device.clone(),
        })
    }

    /// Unit-norm mean-pooled embeddings of `texts`, in order, `batch_size` texts at a time.
    pub fn embed(&self, texts: &[String], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        self.run(texts, batch_size, |hidden, batch| {
            l2_normalize(mean_pool(hidden, batch))
        })
    }

    /// Unit-norm embeddings of the [CLS] position.
    pub fn embed_cls(&self, texts: &[String], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        self.run(texts, batch_size, |hidden, _| {
            let [b, _, h] = hidden.dims();
            l2_normalize(hidden.narrow(1, 0, 1).reshape([b, h]))
        })
    }

    /// Token ids and last hidden states of each text.
    pub fn token_states(&self, texts: &[String], batch_size: usize) -> Result<Vec<TokenStates>> {
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

    fn run(
        &self,
        texts: &[String],
        batch_size: usize,
        pool: impl Fn(Tensor<3>, &Batch) -> Tensor<2>,
    ) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch_size.max(1)) {
            let batch = Batch::new(&self.encode(chunk)?, self.tokenizer.pad_id, &self.device);
            let emb = pool(self.model.forward(&batch), &batch);
            let [b, h] = emb.dims();
            let v = to_vec(emb.reshape([-1]))?;
            out.extend((0..b).map(|i| v[i * h..(i + 1) * h].to_vec()));
        }
        Ok(out)
    }
}

fn to_vec(t: Tensor<1>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::invalid(format!("cannot read tensor: {e:?}")))
}
