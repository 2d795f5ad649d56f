//! News recommendation from text: a two-tower model (`model`) fine-tuned on MIND click logs
//! (`task`), evaluated as MIND's `evaluate.py` does (`metrics`), and served (`commands`, the
//! server's `/recommend`). This file is the one inference path they all share: news vectors
//! of texts, user vectors of histories, scores, and the news-vector cache on disk.
//!
//! The cache is a flat file of unit f32 vectors beside the run (a 64-byte header, then one row
//! per news item in `news.tsv` order), memory-mapped, so a user is scored against a million
//! candidates with one pass over mapped memory instead of a million encoder calls. Its name
//! carries a fingerprint of the news file and of the model's weights: either changing makes a
//! new cache, never a stale answer.

pub mod commands;
pub mod metrics;
pub mod model;
pub mod task;

use crate::data::mind::{MindData, NewsSet};
use crate::data::tokenizer::Tokenizer;
use crate::hf::Checkpoint;
use crate::model::encoder::Batch;
use crate::rng::{fnv1a, FNV_OFFSET};
use crate::tasks::embedding::to_vec;
use crate::{kernels, Error, Result};
use burn::tensor::{Device, Tensor, TensorData};
use model::RecommendModel;
use std::io::Write;
use std::path::{Path, PathBuf};

/// News per forward pass when computing news vectors.
const NEWS_BATCH: usize = 64;
/// Users per forward pass of the user tower.
const USER_BATCH: usize = 256;

/// Unit news vectors, one row per news item: in memory, or mapped from a cache file.
pub struct NewsVectors {
    storage: Storage,
    dim: usize,
}

enum Storage {
    Owned(Vec<f32>),
    Mapped(memmap2::Mmap),
}

impl NewsVectors {
    pub fn from_rows(flat: Vec<f32>, dim: usize) -> Self {
        NewsVectors {
            storage: Storage::Owned(flat),
            dim,
        }
    }

    fn flat(&self) -> &[f32] {
        match &self.storage {
            Storage::Owned(v) => v,
            Storage::Mapped(m) => {
                bytemuck::cast_slice(&m[HEADER..HEADER + (m.len() - HEADER) / 4 * 4])
            }
        }
    }

    pub fn len(&self) -> usize {
        self.flat().len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.flat()[i * self.dim..(i + 1) * self.dim]
    }

    /// The `k` rows with the largest dot product with `query`, best first (ties: the earlier
    /// row), skipping `exclude`: one pass over the rows, in parallel blocks.
    pub fn top(&self, query: &[f32], k: usize, exclude: &[usize]) -> Vec<(usize, f32)> {
        use rayon::prelude::*;
        let n = self.len();
        let mut exclude = exclude.to_vec();
        exclude.sort_unstable();
        let exclude = &exclude;
        let block = 65_536;
        let mut best: Vec<(usize, f32)> = (0..n.div_ceil(block))
            .into_par_iter()
            .flat_map_iter(|b| {
                let mut local: Vec<(usize, f32)> = (b * block..((b + 1) * block).min(n))
                    .filter(|i| exclude.binary_search(i).is_err())
                    .map(|i| (i, kernels::dot(query, self.row(i))))
                    .collect();
                keep_best(&mut local, k);
                local
            })
            .collect();
        keep_best(&mut best, k);
        best
    }
}

/// The cache file's header: magic, then dim and rows as little-endian u64, then zeros.
const HEADER: usize = 64;
const MAGIC: &[u8; 8] = b"POSNEWS1";

/// A recommender ready to score: the model in inference mode, its tokenizer and device.
pub struct Recommender {
    pub model: RecommendModel,
    tokenizer: Tokenizer,
    device: Device,
    /// The directory it was loaded from (where news-vector caches go); none in training.
    dir: Option<PathBuf>,
}

impl Recommender {
    /// A recommender directory written by `finetune recommend`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let checkpoint = Checkpoint::open(dir)?;
        let model = RecommendModel::load(&checkpoint, device)?;
        Ok(Recommender {
            model,
            tokenizer: checkpoint.tokenizer()?,
            device: device.clone(),
            dir: Some(dir.to_path_buf()),
        })
    }

    /// A recommender of a model in memory (evaluation during training).
    pub(crate) fn from_parts(model: RecommendModel, tokenizer: Tokenizer, device: &Device) -> Self {
        Recommender {
            model,
            tokenizer,
            device: device.clone(),
            dir: None,
        }
    }

    pub fn dim(&self) -> usize {
        self.model.bert.config.hidden_size
    }

    /// Token ids of news texts, cut at the model's `max_len`.
    pub(crate) fn encode(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|t| self.tokenizer.encode(t, self.model.head.max_len))
            .collect()
    }

    /// Pooled encoder states (before the projection) of token-id sequences, flat `[n, hidden]`,
    /// in length-sorted batches (results do not depend on batching).
    pub(crate) fn pooled(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>> {
        let h = self.dim();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![0.0; ids.len() * h];
        for chunk in order.chunks(NEWS_BATCH) {
            let seqs: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
            let batch = Batch::new(&seqs, self.tokenizer.pad_id, &self.device);
            let v = to_vec(self.model.pooled(&batch))?;
            for (k, &i) in chunk.iter().enumerate() {
                out[i * h..(i + 1) * h].copy_from_slice(&v[k * h..(k + 1) * h]);
            }
        }
        Ok(out)
    }

    /// Unit news vectors of pooled states (the projection applied).
    pub(crate) fn project(&self, pooled: Vec<f32>) -> Result<Vec<f32>> {
        let h = self.dim();
        let n = pooled.len() / h;
        if n == 0 {
            return Ok(Vec::new());
        }
        let t = Tensor::<2>::from_data(TensorData::new(pooled, [n, h]), &self.device);
        to_vec(self.model.news_vectors(t))
    }

    /// Unit news vectors of the texts.
    pub fn news_vectors(&self, texts: &[String]) -> Result<NewsVectors> {
        let pooled = self.pooled(&self.encode(texts)?)?;
        Ok(NewsVectors::from_rows(self.project(pooled)?, self.dim()))
    }

    /// The news vectors of a news set, from the cache file beside the model when one matches
    /// the file and the weights, else computed and cached there (written atomically). Without
    /// a directory (in training) they are computed and kept in memory.
    pub fn cached_news_vectors(&self, news: &NewsSet, source: &Path) -> Result<NewsVectors> {
        let texts: Vec<String> = news.items.iter().map(|n| n.text()).collect();
        let Some(dir) = &self.dir else {
            return self.news_vectors(&texts);
        };
        let path = self.cache_path(dir, source)?;
        if let Some(v) = read_cache(&path, self.dim(), news.len())? {
            return Ok(v);
        }
        tracing::info!(
            "encoding {} news into {} (once: later calls map it)",
            news.len(),
            path.display()
        );
        let vectors = self.news_vectors(&texts)?;
        write_cache(&path, &vectors)?;
        Ok(read_cache(&path, self.dim(), news.len())?.unwrap_or(vectors))
    }

    /// `DIR/news_vectors/<news file fingerprint>-<weights fingerprint>.f32`.
    fn cache_path(&self, dir: &Path, source: &Path) -> Result<PathBuf> {
        let bytes = std::fs::read(source).map_err(|e| Error::io(source, "read", e))?;
        let news = fnv1a(bytes, FNV_OFFSET);
        let weights = dir.join(crate::hf::WEIGHTS);
        let meta = std::fs::metadata(&weights).map_err(|e| Error::io(&weights, "read", e))?;
        let stamp = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let model = fnv1a(
            meta.len()
                .to_le_bytes()
                .into_iter()
                .chain(stamp.to_le_bytes()),
            FNV_OFFSET,
        );
        Ok(dir
            .join("news_vectors")
            .join(format!("{news:016x}-{model:016x}.f32")))
    }

    /// User vectors of histories (rows of `vectors`, oldest first; the last `history_len`
    /// count), pooled as the recommender scores, flat `[users, hidden]`.
    pub fn users(&self, vectors: &NewsVectors, histories: &[&[usize]]) -> Result<Vec<f32>> {
        let h = self.dim();
        let mut out = Vec::with_capacity(histories.len() * h);
        for chunk in histories.chunks(USER_BATCH) {
            let (slots, mask, n) = pad_histories(chunk, self.model.head.history_len);
            let b = chunk.len();
            let mut rows = vec![0.0f32; b * n * h];
            for (k, (&slot, &m)) in slots.iter().zip(&mask).enumerate() {
                if m > 0.0 {
                    rows[k * h..][..h].copy_from_slice(vectors.row(slot));
                }
            }
            let history = Tensor::<3>::from_data(TensorData::new(rows, [b, n, h]), &self.device);
            let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, n]), &self.device);
            let pooling = self.model.head.scoring();
            out.extend(to_vec(self.model.users(history, mask, pooling))?);
        }
        Ok(out)
    }

    /// Scores of `candidates` (rows of `vectors`) for one user vector: `scale · u · v`.
    pub fn scores(&self, user: &[f32], vectors: &NewsVectors, candidates: &[usize]) -> Vec<f32> {
        let scale = self.model.head.scale as f32;
        candidates
            .iter()
            .map(|&c| scale * kernels::dot(user, vectors.row(c)))
            .collect()
    }

    /// The `k` best news of all `vectors` for one user, best first, skipping `exclude` (e.g.
    /// the history), with their scores.
    pub fn top(
        &self,
        user: &[f32],
        vectors: &NewsVectors,
        k: usize,
        exclude: &[usize],
    ) -> Vec<(usize, f32)> {
        let scale = self.model.head.scale as f32;
        let mut best = vectors.top(user, k, exclude);
        for (_, s) in &mut best {
            *s *= scale;
        }
        best
    }

    /// Scores every impression of a data set and averages MIND's measures over the labelled
    /// ones; writes MIND's submission lines (`impression_id [rank,…]`) to `predictions` when
    /// given.
    pub fn evaluate(
        &self,
        data: &MindData,
        vectors: &NewsVectors,
        mut predictions: Option<&mut dyn Write>,
    ) -> Result<metrics::Totals> {
        let histories: Vec<&[usize]> = data.impressions.iter().map(|i| &i.history[..]).collect();
        let users = self.users(vectors, &histories)?;
        let h = self.dim();
        let mut totals = metrics::Totals::default();
        for (imp, user) in data.impressions.iter().zip(users.chunks(h)) {
            let scores = self.scores(user, vectors, &imp.candidates);
            match &imp.labels {
                Some(labels) => totals.add(labels, &scores),
                None => totals.unlabelled += 1,
            }
            if let Some(out) = predictions.as_mut() {
                let ranks: Vec<String> = metrics::ranks(&scores)
                    .iter()
                    .map(usize::to_string)
                    .collect();
                writeln!(out, "{} [{}]", imp.id, ranks.join(","))
                    .map_err(|e| Error::io("predictions", "write", e))?;
            }
        }
        Ok(totals)
    }
}

/// The last `keep` (at least 1) clicks of each history, padded to the longest (at least one
/// slot): each slot's news row (0 for padding) and mask (1 real, 0 padding), `[b · n]` each,
/// and `n`. What training and inference both feed the user tower.
pub(crate) fn pad_histories(histories: &[&[usize]], keep: usize) -> (Vec<usize>, Vec<f32>, usize) {
    let keep = keep.max(1);
    let recent: Vec<&[usize]> = histories
        .iter()
        .map(|hist| &hist[hist.len().saturating_sub(keep)..])
        .collect();
    let n = recent.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
    let mut slots = Vec::with_capacity(recent.len() * n);
    let mut mask = Vec::with_capacity(recent.len() * n);
    for hist in &recent {
        for j in 0..n {
            slots.push(hist.get(j).copied().unwrap_or(0));
            mask.push(if j < hist.len() { 1.0 } else { 0.0 });
        }
    }
    (slots, mask, n)
}

/// Keeps the `k` highest scores, best first (ties: the earlier news first): a selection, then
/// a sort of the `k` kept.
fn keep_best(v: &mut Vec<(usize, f32)>, k: usize) {
    let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if k == 0 {
        v.clear();
        return;
    }
    if v.len() > k {
        v.select_nth_unstable_by(k - 1, order);
        v.truncate(k);
    }
    v.sort_by(order);
}

/// A cache file, mapped, if it exists and holds `rows` vectors of `dim`.
pub(crate) fn read_cache(path: &Path, dim: usize, rows: usize) -> Result<Option<NewsVectors>> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(None);
    };
    // SAFETY: the cache is only ever replaced by an atomic rename, never written in place, so
    // the mapped file does not change under us.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, "map", e))?;
    let u64_at = |o: usize| u64::from_le_bytes(map[o..o + 8].try_into().expect("8 bytes"));
    let ok = map.len() == HEADER + rows * dim * 4
        && &map[..8] == MAGIC
        && u64_at(8) == dim as u64
        && u64_at(16) == rows as u64;
    if !ok {
        return Ok(None);
    }
    Ok(Some(NewsVectors {
        storage: Storage::Mapped(map),
        dim,
    }))
}

/// Writes a cache file atomically (a temporary file renamed over it).
pub(crate) fn write_cache(path: &Path, vectors: &NewsVectors) -> Result<()> {
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..16].copy_from_slice(&(vectors.dim as u64).to_le_bytes());
    header[16..24].copy_from_slice(&(vectors.len() as u64).to_le_bytes());
    crate::io::write_atomic_with(path, |w| {
        w.write_all(&header)?;
        w.write_all(bytemuck::cast_slice(vectors.flat()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keeps_the_best_and_skips_excluded() {
        let mut v = vec![(3, 0.5), (1, 0.9), (2, 0.5), (0, 0.1)];
        keep_best(&mut v, 3);
        assert_eq!(v, vec![(1, 0.9), (2, 0.5), (3, 0.5)]);
    }

    #[test]
    fn a_cache_file_reads_back_and_a_wrong_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cache.f32");
        let v = NewsVectors::from_rows(vec![1.0, 0.0, 0.6, 0.8, 0.0, 1.0], 2);
        write_cache(&path, &v).unwrap();
        let back = read_cache(&path, 2, 3).unwrap().expect("matches");
        assert_eq!(back.row(1), &[0.6, 0.8]);
        assert_eq!(back.len(), 3);
        assert!(
            read_cache(&path, 2, 4).unwrap().is_none(),
            "other news count"
        );
        assert!(read_cache(&path, 3, 2).unwrap().is_none(), "other dim");
        assert!(read_cache(&dir.path().join("none"), 2, 3)
            .unwrap()
            .is_none());
    }
}
