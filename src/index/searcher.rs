//! An index with the models that query it: the embedding model the index records (for dense
//! and hybrid search) and an optional reranker. `positio search` and `eval retrieval --index`
//! run through it; the server does the same steps with its batched models.

use super::{Hit, Index, SearchMode};
use crate::tasks::embedding::Embedder;
use crate::tasks::rerank::Reranker;
use crate::Result;
use burn::tensor::Device;
use std::path::Path;

/// How a search runs.
#[derive(Debug, Clone, Copy)]
pub struct SearchOptions {
    pub mode: SearchMode,
    pub top: usize,
    /// Hits the reranker reorders (when there is one).
    pub rerank_top: usize,
    pub batch_size: usize,
}

pub struct Searcher {
    pub index: Index,
    embedder: Option<Embedder>,
    reranker: Option<Reranker>,
}

impl Searcher {
    /// Opens `dir`; loads its model when `mode` needs embeddings (`model` overrides where it
    /// lies, and must be the same model), and `reranker` when given.
    pub fn open(
        dir: &Path,
        model: Option<&Path>,
        reranker: Option<&Path>,
        mode: SearchMode,
        device: &Device,
    ) -> Result<Searcher> {
        let index = Index::open(dir, device)?;
        let embedder = match mode {
            SearchMode::Bm25 => None,
            _ => Some(Embedder::load(&index.model_dir(model)?, device)?),
        };
        let reranker = reranker.map(|r| Reranker::load(r, device)).transpose()?;
        Ok(Searcher {
            index,
            embedder,
            reranker,
        })
    }

    /// The hits of each query, reranked when the searcher has a reranker.
    pub fn search(&self, queries: &[String], options: &SearchOptions) -> Result<Vec<Vec<Hit>>> {
        let vectors = self
            .embedder
            .as_ref()
            .filter(|_| options.mode != SearchMode::Bm25)
            .map(|e| e.embed(queries, e.pooling, options.batch_size))
            .transpose()?;
        let mut hits = self
            .index
            .search(queries, vectors.as_deref(), options.mode, options.top)?;
        if let Some(reranker) = &self.reranker {
            for (query, hits) in queries.iter().zip(hits.iter_mut()) {
                self.index.rerank(
                    reranker,
                    query,
                    hits,
                    options.rerank_top,
                    options.batch_size,
                )?;
            }
        }
        Ok(hits)
    }
}
