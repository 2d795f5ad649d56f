//! Pretraining data on disk: a corpus tokenised once into *packed shards* (`positio corpus
//! pack`, or a run's own `data/`), read back as fixed-length sequences by training.
//!
//! A packed directory holds `corpus.json` (the index: token width, tokenizer fingerprint,
//! documents, each shard's token count), `tokenizer.json`, and the shards `train-NNNNN.bin` /
//! `val-NNNNN.bin`: token ids as little-endian u16 (vocabularies up to 65,536, as nanoGPT's
//! `train.bin`) or u32. Documents are concatenated, each followed by [SEP]; a document goes to
//! the validation split with probability `val_fraction` (a hash of its index and the seed).
//! Sequence `i` of length `L` is [CLS] + tokens `i·(L-2)…(i+1)·(L-2)` of the split's stream +
//! [SEP], so the length is chosen at training time and a sequence may span two shards.
//!
//! Reading is `pread` of the bytes one sequence needs, not a memory map: a mapped file's
//! touched pages count in the process's resident memory, and a stream over a corpus larger
//! than memory must keep that flat. The directory is written under a temporary name and
//! renamed when complete, so a pack is never seen half-written.

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

/// The index file of a packed directory.
pub const INDEX: &str = "corpus.json";

/// How to pack a corpus.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PackOptions {
    /// Bytes per shard (the last one holds the rest).
    pub shard_bytes: u64,
    pub val_fraction: f64,
    pub seed: u64,
}

/// One split's shards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub tokens: u64,
    /// (file name, tokens) in stream order.
    pub shards: Vec<(String, u64)>,
}

/// `corpus.json`: what a packed directory holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackIndex {
    /// Bytes per token id: 2 (u16) or 4 (u32).
    pub token_bytes: usize,
    /// A fingerprint of the tokenizer, to refuse a model whose vocabulary differs.
    pub tokenizer: String,
    pub documents: usize,
    pub skipped_lines: usize,
    pub val_fraction: f64,
    pub seed: u64,
    /// A fingerprint of the inputs (corpus spec, tokenizer, split), to reuse a complete pack.
    pub fingerprint: String,
    pub train: Split,
    pub val: Split,
}

impl PackIndex {
    /// Reads `dir/corpus.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(INDEX);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, "read", e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::file(
                &path,
                format!("not a packed corpus index (positio corpus pack): {e}"),
            )
        })
    }

    pub fn split(&self, name: &str) -> &Split {
        if name == "val" {
            &self.val
        } else {
            &self.train
        }
    }
}

fn hash(text: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// A fingerprint of a tokenizer's whole definition.
pub fn tokenizer_fingerprint(tokenizer: &Tokenizer) -> String {
    hash(&tokenizer.inner().to_string(false).unwrap_or_default())
}

fn fingerprint(spec: &CorpusSpec, tokenizer: &Tokenizer, opts: &PackOptions) -> String {
    hash(&format!(
        "{}|{}|{}|{}|{}",
        serde_json::to_string(spec).unwrap_or_default(),
        tokenizer_fingerprint(tokenizer),
        opts.val_fraction.to_bits(),
        opts.seed,
        opts.shard_bytes
    ))
}

/// Writes one split's token stream into shards of at most `shard_bytes`.
struct ShardWriter {
    dir: PathBuf,
    name: &'static str,
    token_bytes: usize,
    shard_tokens: u64,
    split: Split,
    current: Option<(PathBuf, BufWriter<File>, u64)>,
}

impl ShardWriter {
    fn new(dir: &Path, name: &'static str, token_bytes: usize, shard_bytes: u64) -> Self {
        ShardWriter {
            dir: dir.to_path_buf(),
            name,
            token_bytes,
            shard_tokens: (shard_bytes / token_bytes as u64).max(1),
            split: Split::default(),
            current: None,
        }
    }

    fn push(&mut self, token: u32) -> Result<()> {
        if self.current.is_none() {
            let file = format!("{}-{:05}.bin", self.name, self.split.shards.len());
            let path = self.dir.join(&file);
            let f = File::create(&path).map_err(|e| Error::io(&path, "create", e))?;
            self.split.shards.push((file, 0));
            self.current = Some((path, BufWriter::with_capacity(1 << 20, f), 0));
        }
        let (path, w, n) = self.current.as_mut().expect("a shard is open");
        let written = if self.token_bytes == 2 {
            w.write_all(&(token as u16).to_le_bytes())
        } else {
            w.write_all(&token.to_le_bytes())
        };
        written.map_err(|e| Error::io(&*path, "write", e))?;
        *n += 1;
        self.split.tokens += 1;
        if *n == self.shard_tokens {
            self.close()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if let Some((path, w, n)) = self.current.take() {
            w.into_inner()
                .map_err(|e| Error::io(&path, "write", e.into_error()))?
                .sync_all()
                .map_err(|e| Error::io(&path, "write", e))?;
            self.split.shards.last_mut().expect("open shard").1 = n;
        }
        Ok(())
    }
}

/// Tokenises the corpus into a packed directory `dir` (reusing it when a pack of the same
/// inputs is complete there); logs progress when `progress`.
pub fn pack(
    spec: &CorpusSpec,
    tokenizer: &Tokenizer,
    opts: &PackOptions,
    dir: &Path,
    progress: bool,
) -> Result<PackIndex> {
    let fp = fingerprint(spec, tokenizer, opts);
    if let Ok(index) = PackIndex::read(dir) {
        if index.fingerprint == fp {
            return Ok(index);
        }
    }
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, "create", e))?;
    let token_bytes = if tokenizer.vocab_size() <= 1 << 16 {
        2
    } else {
        4
    };
    let mut train = ShardWriter::new(&tmp, "train", token_bytes, opts.shard_bytes);
    let mut val = ShardWriter::new(&tmp, "val", token_bytes, opts.shard_bytes);
    let mut pending: Vec<String> = Vec::new();
    let mut doc_index = 0u64;
    let mut reported = 0u64;
    let mut flush = |pending: &mut Vec<String>| -> Result<()> {
        let encodings = tokenizer
            .inner()
            .encode_batch(std::mem::take(pending), false)
            .map_err(|e| Error::file(&tokenizer.path, format!("tokenisation failed: {e}")))?;
        for enc in encodings {
            let to_val = Rng::new(opts.seed ^ doc_index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .uniform()
                < opts.val_fraction;
            doc_index += 1;
            let w = if to_val { &mut val } else { &mut train };
            for &t in enc.get_ids().iter().chain(std::iter::once(&SEP)) {
                w.push(t)?;
            }
        }
        let tokens = train.split.tokens + val.split.tokens;
        if progress && tokens >= reported + 100_000_000 {
            reported = tokens;
            tracing::info!("packed {doc_index} documents, {tokens} tokens");
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
    train.close()?;
    val.close()?;
    let index = PackIndex {
        token_bytes,
        tokenizer: tokenizer_fingerprint(tokenizer),
        documents: stats.documents,
        skipped_lines: stats.skipped_lines,
        val_fraction: opts.val_fraction,
        seed: opts.seed,
        fingerprint: fp,
        train: train.split,
        val: val.split,
    };
    tokenizer.save(&tmp.join(crate::hf::TOKENIZER))?;
    crate::io::write_atomic(
        &tmp.join(INDEX),
        serde_json::to_string_pretty(&index)
            .expect("index serialises")
            .as_bytes(),
    )?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, "write", e))?;
    Ok(index)
}

/// Fixed-length sequences of one split of a packed directory, read on demand.
pub(crate) struct Sequences {
    /// (file, path, first token of the shard in the stream).
    shards: Vec<(File, PathBuf, u64)>,
    token_bytes: usize,
    max_len: usize,
    count: usize,
}

impl Sequences {
    /// The `split` ("train" or "val") of the pack in `dir`, cut into sequences of `max_len`.
    pub fn open(dir: &Path, index: &PackIndex, split: &str, max_len: usize) -> Result<Self> {
        if max_len < 8 {
            return Err(Error::config(
                "max_len",
                format!("{max_len} is too short (at least 8)"),
            ));
        }
        let s = index.split(split);
        let mut shards = Vec::with_capacity(s.shards.len());
        let mut start = 0u64;
        for (name, tokens) in &s.shards {
            let path = dir.join(name);
            let file = File::open(&path).map_err(|e| Error::io(&path, "open", e))?;
            let len = file
                .metadata()
                .map_err(|e| Error::io(&path, "read", e))?
                .len();
            if len != tokens * index.token_bytes as u64 {
                return Err(Error::file(
                    &path,
                    format!(
                        "{len} bytes, but {} says {tokens} tokens of {} bytes: the pack is damaged; pack the corpus again",
                        dir.join(INDEX).display(),
                        index.token_bytes
                    ),
                ));
            }
            shards.push((file, path, start));
            start += tokens;
        }
        Ok(Sequences {
            shards,
            token_bytes: index.token_bytes,
            max_len,
            count: (s.tokens / (max_len as u64 - 2)) as usize,
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Sequence `i`: [CLS] + `max_len - 2` tokens + [SEP].
    pub fn get(&self, i: usize) -> Result<Vec<u32>> {
        let body = (self.max_len - 2) as u64;
        let (mut at, end) = (i as u64 * body, (i as u64 + 1) * body);
        let mut tokens = Vec::with_capacity(body as usize);
        while at < end {
            // The shard holding token `at`, and how much of the sequence it holds.
            let k = self.shards.partition_point(|s| s.2 <= at) - 1;
            let (file, path, start) = &self.shards[k];
            let shard_end = self.shards.get(k + 1).map_or(u64::MAX, |s| s.2);
            let n = (end.min(shard_end) - at) as usize;
            let mut bytes = vec![0u8; n * self.token_bytes];
            file.read_exact_at(&mut bytes, (at - start) * self.token_bytes as u64)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => {
                        Error::file(path, format!("ends before sequence {i}"))
                    }
                    _ => Error::io(path, "read", e),
                })?;
            if self.token_bytes == 2 {
                tokens.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32),
                );
            } else {
                tokens.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
            }
            at += n as u64;
        }
        Ok(packed(tokens, self.max_len))
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

/// Parses a size such as `1GB`, `512MB`, `64k` or `1000000` (bytes; K, M, G are powers of 1024,
/// with or without a trailing `B`).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim().to_ascii_uppercase();
    let t = t.strip_suffix('B').unwrap_or(&t);
    let (digits, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let scale: u64 = match unit {
        "" => 1,
        "K" | "KI" => 1 << 10,
        "M" | "MI" => 1 << 20,
        "G" | "GI" => 1 << 30,
        "T" | "TI" => 1 << 40,
        _ => 0,
    };
    match digits.trim().parse::<u64>() {
        Ok(n) if scale > 0 && n > 0 => Ok(n * scale),
        _ => Err(Error::config(
            "--shard-size",
            format!("'{text}' is not a size (e.g. 1GB, 512MB, 1000000)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_size("512mb").unwrap(), 512 << 20);
        assert_eq!(parse_size("64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        for bad in ["", "GB", "1XB", "-3", "0"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
