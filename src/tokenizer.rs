//! WordPiece tokenisation through Hugging Face's `tokenizers` (the same `tokenizer.json`
//! Python loads), with positio choosing truncation and padding per batch.

use crate::{Error, Result};
use tokenizers::PostProcessor;
use std::path::{Path, PathBuf};

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    pub path: PathBuf,
    pub pad_id: u32,
}

impl Tokenizer {
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::file(path, "missing: a model directory needs tokenizer.json"));
        }
        let mut inner = tokenizers::Tokenizer::from_file(path).map_err(|e| Error::file(path, format!("not a valid tokenizer: {e}")))?;
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| inner.token_to_id("[PAD]"))
            .unwrap_or(0);
        // The file's own padding / truncation (e.g. fixed 128) would silently change inputs:
        // positio pads to the longest sequence of each batch and truncates to the model's limit.
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::file(path, format!("cannot reset truncation: {e}")))?;
        Ok(Tokenizer { inner, path: path.to_path_buf(), pad_id })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token ids with the special tokens ([CLS] … [SEP]), truncated to `max_len` (keeping the
    /// final [SEP]).
    pub fn encode(&self, text: &str, max_len: usize) -> Result<Vec<u32>> {
        let mut enc = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::invalid(format!("cannot tokenize {text:?}: {e}")))?;
        if enc.len() > max_len {
            let added = self.inner.get_post_processor().map_or(0, |p| p.added_tokens(false));
            enc = self
                .inner
                .encode(text, false)
                .map_err(|e| Error::invalid(format!("cannot tokenize {text:?}: {e}")))?;
            enc.truncate(max_len.saturating_sub(added), 0, tokenizers::TruncationDirection::Right);
            enc = self
                .inner
                .post_process(enc, None, true)
                .map_err(|e| Error::invalid(format!("cannot add special tokens: {e}")))?;
        }
        Ok(enc.get_ids().to_vec())
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}
