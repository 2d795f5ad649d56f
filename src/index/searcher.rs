//! An index with the models that query it: the embedding model the index records (for dense
//! and hybrid search) and an optional reranker, over either store ([`OpenIndex`]).
//! `positio search`, `mine-negatives --index` and `eval retrieval --index` run through it; the
//! server does the same steps on an [`OpenIndex`] with its batched models.

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

/// An opened index, on disk or in PostgreSQL.
pub enum OpenIndex {
    Disk(Box<Index>),
    Postgres(Box<PgIndex>),
}

impl OpenIndex {
    pub fn open(store: Store, device: &Device) -> Result<OpenIndex> {
        Ok(match store {
            Store::Disk(dir) => OpenIndex::Disk(Box::new(Index::open(dir, device)?)),
            Store::Postgres { url, name } => {
                OpenIndex::Postgres(Box::new(PgIndex::open(url, name)?))
            }
        })
    }

    /// The model the index was built with.
    pub fn model(&self) -> &ModelIdentity {
        match self {
            OpenIndex::Disk(index) => &index.manifest.model,
            OpenIndex::Postgres(index) => &index.entry.model,
        }
    }

    /// How many documents the index holds.
    pub fn count(&self) -> Result<usize> {
        match self {
            OpenIndex::Disk(index) => Ok(index.len()),
            OpenIndex::Postgres(index) => index.count(),
        }
    }

    /// HNSW candidates per search (exact search ignores it).
    pub fn set_expansion(&mut self, ef: usize) {
        match self {
            OpenIndex::Disk(index) => index.set_expansion(ef),
            OpenIndex::Postgres(index) => index.set_expansion(ef),
        }
    }

    /// The stored documents of `ids`, in that order.
    pub fn documents(&self, ids: &[&str]) -> Result<Vec<Document>> {
        match self {
            OpenIndex::Disk(index) => index.documents(ids),
            OpenIndex::Postgres(index) => index.documents(ids),
        }
    }

    /// What a reranker reads of the first `k` hits: each document's title and text.
    pub fn passages(&self, hits: &[Hit], k: usize) -> Result<Vec<String>> {
        let ids: Vec<&str> = hits.iter().take(k).map(|h| h.id.as_str()).collect();
        Ok(self
            .documents(&ids)?
            .iter()
            .map(Document::passage)
            .collect())
    }

    /// The `top` hits of each query: `texts` for lexical search, their unit `vectors` (from
    /// the index's model) for dense search, both for hybrid.
    pub fn search(
        &self,
        texts: &[String],
        vectors: Option<&[Vec<f32>]>,
        mode: SearchMode,
        top: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        match self {
            OpenIndex::Disk(index) => index.search(texts, vectors, mode, top),
            OpenIndex::Postgres(index) => index.search(texts, vectors, mode, top),
        }
    }
}

pub struct Searcher {
    pub index: OpenIndex,
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
        let index = OpenIndex::open(store, device)?;
        let embedder = match mode {
            SearchMode::Bm25 => None,
            _ => Some(Embedder::load(
                &resolve_model(index.model(), model)?,
                device,
            )?),
        };
        let reranker = reranker.map(|r| Reranker::load(r, device)).transpose()?;
        Ok(Searcher {
            index,
            embedder,
            reranker,
        })
    }

    /// What `positio search` answers for each query: its best `options.top` hits (the
    /// reranker, when there is one, reads at least its `rerank_top`), each as `{rank, id,
    /// score, title, text}`.
    pub fn results(
        &self,
        queries: &[String],
        options: &SearchOptions,
    ) -> Result<Vec<Vec<serde_json::Value>>> {
        let top = options.top;
        let read = SearchOptions {
            top: if self.reranker.is_some() {
                top.max(options.rerank_top)
            } else {
                top
            },
            ..*options
        };
        let mut out = Vec::with_capacity(queries.len());
        for hits in self.search(queries, &read)? {
            let hits = &hits[..hits.len().min(top)];
            let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
            let docs = self.index.documents(&ids)?;
            out.push(
                hits.iter()
                    .zip(docs)
                    .enumerate()
                    .map(|(rank, (hit, doc))| {
                        serde_json::json!({
                            "rank": rank + 1, "id": hit.id, "score": hit.score,
                            "title": doc.title, "text": doc.text,
                        })
                    })
                    .collect(),
            );
        }
        Ok(out)
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
        let mut hits = self.index.search(queries, vectors, mode, top)?;
        if let Some(reranker) = &self.reranker {
            for (query, hits) in queries.iter().zip(hits.iter_mut()) {
                let passages = self.index.passages(hits, options.rerank_top)?;
                let relevance = reranker.scores(query, &passages, options.batch_size)?;
                Index::reorder(hits, &relevance);
            }
        }
        Ok(hits)
    }
}
