//! `Index` (`positio index build / add / delete` and `positio search`, on disk or in
//! PostgreSQL) and `Recommender` (`positio recommend`), over the same library calls.

use crate::{error, from_json, on_device, one_or_all, positive, texts_of, PositioError};
use positio::data::beir::Document;
use positio::index::dense::{DensePolicy, HnswParams};
use positio::index::searcher::{SearchOptions, Searcher};
use positio::index::{self, BuildOptions, SearchMode, Store};
use positio::runtime::DeviceKind;
use positio::tasks::recommend::commands::{NewsRanker, Request};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::RwLock;

/// Documents given as dicts with `id`, `text` and optionally `title`.
fn documents(docs: &Bound<'_, PyAny>) -> PyResult<Vec<Document>> {
    let mut out = Vec::new();
    for (i, d) in docs.try_iter()?.enumerate() {
        let d = d?;
        let d = d.cast::<PyDict>().map_err(|_| {
            PositioError::new_err(format!(
                "document {i}: expected a dict with id, text and title"
            ))
        })?;
        let field = |name: &str, required: bool| -> PyResult<String> {
            match d.get_item(name)? {
                Some(v) => v.extract::<String>().map_err(|_| {
                    PositioError::new_err(format!("document {i}: {name} must be a string"))
                }),
                None if required => Err(PositioError::new_err(format!("document {i}: no {name}"))),
                None => Ok(String::new()),
            }
        };
        out.push(Document {
            id: field("id", true)?,
            title: field("title", false)?,
            text: field("text", true)?,
        });
    }
    Ok(out)
}

fn mode_of(mode: &str) -> PyResult<SearchMode> {
    <SearchMode as clap::ValueEnum>::from_str(mode, true).map_err(|_| {
        PositioError::new_err(format!("mode {mode:?}: expected dense, bm25 or hybrid"))
    })
}

/// How an index was opened (what a write reopens it with).
struct Opening {
    path: PathBuf,
    store: Option<String>,
    model: Option<PathBuf>,
    reranker: Option<PathBuf>,
    mode: SearchMode,
    device: DeviceKind,
}

impl Opening {
    fn store(&self) -> PyResult<Store<'_>> {
        Store::at(&self.path, self.store.as_deref()).map_err(error)
    }

    fn open(&self, py: Python<'_>) -> PyResult<Searcher> {
        let store = self.store()?;
        on_device(py, self.device, |d| {
            Searcher::open(
                store,
                self.model.as_deref(),
                self.reranker.as_deref(),
                self.mode,
                d,
            )
        })
    }
}

/// A document index: dense (the model's embeddings, exact or HNSW), BM25 or hybrid search,
/// optionally reranked.
#[pyclass(frozen, module = "positio")]
pub struct Index {
    opening: Opening,
    /// Reopened after each write, so that searches see it.
    searcher: RwLock<Searcher>,
}

impl Index {
    fn reopen(&self, py: Python<'_>) -> PyResult<()> {
        let searcher = self.opening.open(py)?;
        *self.searcher.write().expect("no writer panicked") = searcher;
        Ok(())
    }
}

#[pymethods]
impl Index {
    /// Opens an index directory (or, with `store="postgres://…"`, the table `path` of that
    /// database) for search in `mode` ("dense", "bm25" or "hybrid"); `reranker` reorders the
    /// first hits; `model` says where the index's model lies now if it moved.
    #[new]
    #[pyo3(signature = (path, *, mode = "dense", reranker = None, model = None, store = None, device = "cpu"))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        mode: &str,
        reranker: Option<PathBuf>,
        model: Option<PathBuf>,
        store: Option<String>,
        device: &str,
    ) -> PyResult<Self> {
        let opening = Opening {
            path,
            store,
            model,
            reranker,
            mode: mode_of(mode)?,
            device: crate::device(device)?,
        };
        let searcher = RwLock::new(opening.open(py)?);
        Ok(Index { opening, searcher })
    }

    /// Builds a new index of `documents` (dicts with `id`, `text`, optional `title`) embedded by
    /// `model` (`positio index build`); `dense` is "auto", "exact" or "hnsw". Returns what
    /// `index build` reports.
    #[staticmethod]
    #[pyo3(signature = (path, model, documents, *, dense = "auto", batch_size = 64, store = None, device = "cpu"))]
    #[allow(clippy::too_many_arguments)]
    fn build(
        py: Python<'_>,
        path: PathBuf,
        model: PathBuf,
        documents: &Bound<'_, PyAny>,
        dense: &str,
        batch_size: usize,
        store: Option<String>,
        device: &str,
    ) -> PyResult<Py<PyAny>> {
        let docs = self::documents(documents)?;
        let dense = <DensePolicy as clap::ValueEnum>::from_str(dense, true).map_err(|_| {
            PositioError::new_err(format!("dense {dense:?}: expected auto, exact or hnsw"))
        })?;
        let options = BuildOptions {
            dense,
            hnsw: HnswParams::default(),
            batch_size: positive("batch_size", batch_size)?,
        };
        let store = Store::at(&path, store.as_deref()).map_err(error)?;
        let summary = on_device(py, crate::device(device)?, |d| {
            index::build(store, &model, &docs, &options, d)
        })?;
        from_json(py, &summary)
    }

    /// Adds `documents` (a document whose id the index has replaces it), embedded by the
    /// index's model (`positio index add`); returns what `index add` reports.
    #[pyo3(signature = (documents, *, batch_size = 64))]
    fn add(
        &self,
        py: Python<'_>,
        documents: &Bound<'_, PyAny>,
        batch_size: usize,
    ) -> PyResult<Py<PyAny>> {
        let docs = self::documents(documents)?;
        let batch_size = positive("batch_size", batch_size)?;
        let o = &self.opening;
        let store = o.store()?;
        let summary = on_device(py, o.device, |d| {
            index::add(store, o.model.as_deref(), &docs, batch_size, d)
        })?;
        self.reopen(py)?;
        from_json(py, &summary)
    }

    /// Deletes documents by id (`positio index delete`).
    fn delete(&self, py: Python<'_>, ids: Vec<String>) -> PyResult<Py<PyAny>> {
        let store = self.opening.store()?;
        let summary = py.detach(|| index::delete(store, &ids)).map_err(error)?;
        self.reopen(py)?;
        from_json(py, &summary)
    }

    /// The best `top` hits of a query (a list of dicts `rank`, `id`, `score`, `title`,
    /// `text`, as `positio search` prints them), or of each query of a list.
    #[pyo3(signature = (queries, *, top = 10, rerank_top = 20, batch_size = 64))]
    fn search(
        &self,
        py: Python<'_>,
        queries: &Bound<'_, PyAny>,
        top: usize,
        rerank_top: usize,
        batch_size: usize,
    ) -> PyResult<Py<PyAny>> {
        let (queries, one) = texts_of(queries)?;
        let options = SearchOptions {
            mode: self.opening.mode,
            top: positive("top", top)?,
            rerank_top,
            batch_size: positive("batch_size", batch_size)?,
        };
        let searcher = self.searcher.read().expect("no writer panicked");
        let results = py
            .detach(|| searcher.results(&queries, &options))
            .map_err(error)?;
        one_or_all(py, &results, one)
    }

    /// Documents in the index.
    fn __len__(&self) -> PyResult<usize> {
        self.searcher
            .read()
            .expect("no writer panicked")
            .index
            .count()
            .map_err(error)
    }
}

/// A news recommender (`finetune recommend`) with its news (`news.tsv`, MIND's format): ranks
/// news for a user given by the ids of the news they clicked.
#[pyclass(frozen, module = "positio")]
pub struct Recommender {
    ranker: NewsRanker,
}

#[pymethods]
impl Recommender {
    #[staticmethod]
    #[pyo3(signature = (model, news, *, device = "cpu"))]
    fn load(py: Python<'_>, model: PathBuf, news: PathBuf, device: &str) -> PyResult<Self> {
        let ranker = on_device(py, crate::device(device)?, |d| {
            NewsRanker::load(&model, &news, d)
        })?;
        Ok(Recommender { ranker })
    }

    /// `candidates` ranked for the user whose clicks are `history` (news ids), or, without
    /// candidates, the best `top` of all news: dicts `rank`, `id`, `score`, `title` as
    /// `positio recommend` prints them.
    #[pyo3(signature = (history, *, candidates = None, top = 10))]
    fn rank(
        &self,
        py: Python<'_>,
        history: Vec<String>,
        candidates: Option<Vec<String>>,
        top: usize,
    ) -> PyResult<Py<PyAny>> {
        let top = positive("top", top)?;
        if candidates.as_ref().is_some_and(Vec::is_empty) {
            return Err(PositioError::new_err(
                "candidates: give at least one news id",
            ));
        }
        let request = Request {
            history: &history,
            candidates: candidates.as_deref(),
            top,
        };
        let ranked = py.detach(|| self.ranker.rank(&request)).map_err(error)?;
        from_json(py, &ranked)
    }
}
