//! An index with the models that query it: the embedding model the index records (for dense
//! and hybrid search) and an optional reranker, over either store. `positio search` and
//! `eval retrieval --index` run through it; the server does the same steps with its batched
//! models.

use super::postgres::PgIndex;
use super::{resolve_model, Hit, Index, ModelIdentity, SearchMode, Store};
use crate::data::beir::Document;
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

/// An index on disk or in PostgreSQL.
enum Backend {
    Disk(Box<Index>),
    Postgres(Box<PgIndex>),
}

pub struct Searcher {
    backend: Backend,
    embedder: Option<Embedder>,
    reranker: Option<Reranker>,
}

impl Searcher {
    /// Opens the index; loads its model when `mode` needs embeddings (`model` overrides where
    /// it lies, and must be the same model), and `reranker` when given.
    pub fn open(
        store: Store,
        model: Option<&Path>,
        reranker: Option<&Path>,
        mode: SearchMode,
        device: &Device,
    ) -> Result<Searcher> {
        let backend = match store {
            Store::Disk(dir) => Backend::Disk(Box::new(Index::open(dir, device)?)),
            Store::Postgres { url, name } => Backend::Postgres(Box::new(PgIndex::open(url, name)?)),
        };
        let recorded: &ModelIdentity = match &backend {
            Backend::Disk(index) => &index.manifest.model,
            Backend::Postgres(index) => &index.entry.model,
        };
        let embedder = match mode {
            SearchMode::Bm25 => None,
            _ => Some(Embedder::load(&resolve_model(recorded, model)?, device)?),
        };
        let reranker = reranker.map(|r| Reranker::load(r, device)).transpose()?;
        Ok(Searcher {
            backend,
            embedder,
            reranker,
        })
    }

    /// HNSW candidates per search (exact search ignores it).
    pub fn set_expansion(&mut self, ef: usize) {
        match &mut self.backend {
            Backend::Disk(index) => index.set_expansion(ef),
            Backend::Postgres(index) => index.set_expansion(ef),
        }
    }

    /// The stored documents of `ids`, in that order.
    pub fn documents(&self, ids: &[&str]) -> Result<Vec<Document>> {
        match &self.backend {
            Backend::Disk(index) => index.documents(ids),
            Backend::Postgres(index) => index.documents(ids),
        }
    }

    /// The hits of each query, reranked when the searcher has a reranker.
    pub fn search(&self, queries: &[String], options: &SearchOptions) -> Result<Vec<Vec<Hit>>> {
        let vectors = self
            .embedder
            .as_ref()
            .filter(|_| options.mode != SearchMode::Bm25)
            .map(|e| e.embed(queries, e.pooling, options.batch_size))
            .transpose()?;
        let (vectors, mode, top) = (vectors.as_deref(), options.mode, options.top);
        let mut hits = match &self.backend {
            Backend::Disk(index) => index.search(queries, vectors, mode, top)?,
            Backend::Postgres(index) => index.search(queries, vectors, mode, top)?,
        };
        if let Some(reranker) = &self.reranker {
            for (query, hits) in queries.iter().zip(hits.iter_mut()) {
                let k = options.rerank_top.min(hits.len());
                let ids: Vec<&str> = hits[..k].iter().map(|h| h.id.as_str()).collect();
                let passages: Vec<String> = self
                    .documents(&ids)?
                    .iter()
                    .map(Document::passage)
                    .collect();
                let relevance = reranker.scores(query, &passages, options.batch_size)?;
                Index::reorder(hits, &relevance);
            }
        }
        Ok(hits)
    }
}
