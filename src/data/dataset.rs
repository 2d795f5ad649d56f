//! Pretraining data on disk: documents tokenised once, packed into fixed-length sequences and
//! stored as little-endian u32 token files, so training streams them instead of holding the
//! corpus in memory, and a resumed run reads exactly the same sequences.
//!
//! Documents are concatenated (each followed by [SEP]) and cut into pieces of `max_len - 2`
//! tokens, each wrapped in [CLS] … [SEP]. A document goes to the validation file with probability
//! `val_fraction` (decided by a hash of its index and the seed).

use crate::data::corpus::{CorpusSpec, ReadStats};
use crate::data::tokenizer::Tokenizer;
use crate::rng::Rng;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const CLS: u32 = 2;
pub const SEP: u32 = 3;

/// What `prepare` wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DataSummary {
    pub max_len: usize,
    pub documents: usize,
    pub skipped_lines: usize,
    pub train_tokens: u64,
    pub val_tokens: u64,
    /// A fingerprint of the inputs (corpus spec, tokenizer, length, split), to refuse mixing data.
    pub fingerprint: String,
}

impl DataSummary {
    pub(crate) fn train_sequences(&self) -> usize {
        (self.train_tokens / (self.max_len as u64 - 2)) as usize
    }
    pub(crate) fn val_sequences(&self) -> usize {
        (self.val_tokens / (self.max_len as u64 - 2)) as usize
    }
}

fn fingerprint(
    spec: &CorpusSpec,
    tokenizer: &Tokenizer,
    max_len: usize,
    val_fraction: f64,
    seed: u64,
) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(spec).unwrap_or_default().hash(&mut h);
    tokenizer
        .inner()
        .to_string(false)
        .unwrap_or_default()
        .hash(&mut h);
    (max_len, val_fraction.to_bits(), seed).hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Tokenises the corpus into `dir/train.tokens` and `dir/val.tokens` (reusing them when a
/// previous call with the same inputs completed).
pub(crate) fn prepare(
    spec: &CorpusSpec,
    tokenizer: &Tokenizer,
    max_len: usize,
    val_fraction: f64,
    seed: u64,
    dir: &Path,
) -> Result<DataSummary> {
    if max_len < 8 {
        return Err(Error::config(
            "max_len",
            format!("{max_len} is too short (at least 8)"),
        ));
    }
    let fp = fingerprint(spec, tokenizer, max_len, val_fraction, seed);
    let summary_path = dir.join("data.json");
    if let Ok(text) = std::fs::read_to_string(&summary_path) {
        if let Ok(s) = serde_json::from_str::<DataSummary>(&text) {
            if s.fingerprint == fp {
                return Ok(s);
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", e))?;
    let open = |name: &str| -> Result<(PathBuf, BufWriter<File>)> {
        let p = dir.join(name);
        let f = File::create(&p).map_err(|e| Error::io(&p, "create", e))?;
        Ok((p, BufWriter::with_capacity(1 << 20, f)))
    };
    let (train_path, mut train) = open("train.tokens.tmp")?;
    let (val_path, mut val) = open("val.tokens.tmp")?;
    let (mut train_tokens, mut val_tokens) = (0u64, 0u64);
    let mut pending: Vec<String> = Vec::new();
    let mut doc_index = 0u64;
    let mut flush = |pending: &mut Vec<String>| -> Result<()> {
        let encodings = tokenizer
            .inner()
            .encode_batch(std::mem::take(pending), false)
            .map_err(|e| Error::file(&tokenizer.path, format!("tokenisation failed: {e}")))?;
        for enc in encodings {
            let to_val = Rng::new(seed ^ doc_index.wrapping_mul(0x9E37_79B9_7F4A_7C15)).uniform()
                < val_fraction;
            doc_index += 1;
            let (w, count, path) = if to_val {
                (&mut val, &mut val_tokens, &val_path)
            } else {
                (&mut train, &mut train_tokens, &train_path)
            };
            for &t in enc.get_ids().iter().chain(std::iter::once(&SEP)) {
                w.write_all(&t.to_le_bytes())
                    .map_err(|e| Error::io(path, "write", e))?;
            }
            *count += enc.len() as u64 + 1;
        }
        Ok(())
    };
    let stats: ReadStats = spec.for_each_document(|doc| {
        pending.push(doc);
        if pending.len() >= 2048 {
            flush(&mut pending)?;
        }
        Ok(())
    })?;
    flush(&mut pending)?;
    for (w, p) in [(train, &train_path), (val, &val_path)] {
        w.into_inner()
            .map_err(|e| Error::io(p, "write", e.into_error()))?
            .sync_all()
            .map_err(|e| Error::io(p, "write", e))?;
    }
    for (tmp, name) in [(&train_path, "train.tokens"), (&val_path, "val.tokens")] {
        std::fs::rename(tmp, dir.join(name)).map_err(|e| Error::io(dir.join(name), "write", e))?;
    }
    let summary = DataSummary {
        max_len,
        documents: stats.documents,
        skipped_lines: stats.skipped_lines,
        train_tokens,
        val_tokens,
        fingerprint: fp,
    };
    if summary.train_sequences() == 0 {
        return Err(Error::invalid(format!(
            "the corpus has only {train_tokens} training tokens: not one sequence of {max_len}"
        )));
    }
    crate::io::write_atomic(
        &summary_path,
        serde_json::to_string_pretty(&summary).unwrap().as_bytes(),
    )?;
    Ok(summary)
}

/// Packed sequences read from a token file.
pub(crate) struct Sequences {
    file: File,
    path: PathBuf,
    max_len: usize,
    count: usize,
}

impl Sequences {
    pub fn open(dir: &Path, split: &str, summary: &DataSummary) -> Result<Self> {
        let path = dir.join(format!("{split}.tokens"));
        let file = File::open(&path).map_err(|e| Error::io(&path, "open", e))?;
        let count = if split == "val" {
            summary.val_sequences()
        } else {
            summary.train_sequences()
        };
        Ok(Sequences {
            file,
            path,
            max_len: summary.max_len,
            count,
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Sequence `i`: [CLS] + `max_len - 2` tokens + [SEP].
    pub fn get(&self, i: usize) -> Result<Vec<u32>> {
        let body = self.max_len - 2;
        let mut bytes = vec![0u8; body * 4];
        self.file
            .read_exact_at(&mut bytes, (i * body * 4) as u64)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    Error::file(&self.path, format!("ends before sequence {i}"))
                }
                _ => Error::io(&self.path, "read", e),
            })?;
        Ok(packed(
            bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            self.max_len,
        ))
    }
}

/// A packed sequence as the model reads it: [CLS] + `body` (`max_len - 2` tokens of the
/// document stream) + [SEP].
pub(crate) fn packed(body: impl IntoIterator<Item = u32>, max_len: usize) -> Vec<u32> {
    let mut seq = Vec::with_capacity(max_len);
    seq.push(CLS);
    seq.extend(body);
    seq.push(SEP);
    seq
}
