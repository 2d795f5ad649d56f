//! Nearest neighbours by cosine similarity of unit vectors: exact (every document, positio's
//! GEMM: [`ExactIndex`]) below [`EXACT_BELOW`] documents, and an HNSW graph from `usearch`
//! above (measured against hnsw_rs in docs/RESULTS.md: faster to build and search at the same
//! recall, with deletion, and a memory-mapped view, so a search opens a large index without
//! reading it). The graph's labels are the documents' keys; its distance is `1 - cosine`,
//! computed by positio's own SIMD dot product (`kernels::dot`): usearch is built
//! without its numkong kernels, whose C build alone took ~3 CPU-minutes of every cold build,
//! for no measured loss in search speed (docs/RESULTS.md).

use super::documents::Table;
use crate::tasks::retrieval::search::ExactIndex;
use crate::{Error, Result};
use burn::tensor::Device;
use rayon::prelude::*;
use std::path::Path;
use usearch::{IndexOptions, MetricKind, ScalarKind};

/// Below this many documents `auto` searches exactly: as fast as a graph, and never misses.
pub const EXACT_BELOW: usize = 20_000;
const GRAPH: &str = "hnsw.usearch";

/// How the dense side searches.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DensePolicy {
    /// Exact below 20,000 documents, HNSW from there.
    Auto,
    Exact,
    Hnsw,
}

/// HNSW's parameters (usearch's names), recorded in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HnswParams {
    /// Neighbours per node (M).
    pub connectivity: usize,
    /// Candidates while inserting (efConstruction).
    pub expansion_add: usize,
    /// Candidates while searching (ef); a search may raise it.
    pub expansion_search: usize,
}

/// The defaults: M 16, efConstruction 128, ef 128 — over a million 384-d vectors with the
/// structure of real embeddings, recall@10 0.974 at a p50 of 0.75 ms on 2 cores (ef 64: 0.935
/// at 0.57 ms; docs/RESULTS.md).
impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 128,
        }
    }
}

impl DensePolicy {
    pub fn uses_graph(self, documents: usize) -> bool {
        match self {
            DensePolicy::Auto => documents >= EXACT_BELOW,
            DensePolicy::Exact => false,
            DensePolicy::Hnsw => true,
        }
    }
}

fn usearch_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::file(path, format!("HNSW index: {e}"))
}

/// A graph of `dim`-wide vectors whose distance is positio's `1 - a·b`; `read` (load or view
/// a file into it) runs first, since reading restores the file's built-in metric.
fn graph(
    path: &Path,
    dim: usize,
    params: HnswParams,
    read: impl FnOnce(&usearch::Index) -> std::result::Result<(), String>,
) -> Result<usearch::Index> {
    let mut index =
        usearch::Index::new(&options(dim, params)).map_err(|e| usearch_error(path, e))?;
    read(&index).map_err(|e| usearch_error(path, e))?;
    let dim = index.dimensions();
    index.change_metric::<f32>(Box::new(move |a, b| {
        // SAFETY: usearch passes two vectors of the index's `dim` floats.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, dim),
                std::slice::from_raw_parts(b, dim),
            )
        };
        1.0 - crate::kernels::dot(a, b)
    }));
    Ok(index)
}

fn options(dim: usize, params: HnswParams) -> IndexOptions {
    IndexOptions {
        dimensions: dim,
        metric: MetricKind::IP,
        quantization: ScalarKind::F32,
        connectivity: params.connectivity,
        expansion_add: params.expansion_add,
        expansion_search: params.expansion_search,
        multi: false,
    }
}

/// Writes the graph of a new generation: the previous graph with `removed` keys taken out and
/// `added` put in, or (no previous graph) a new one of `added` alone.
pub fn write_graph(
    generation: &Path,
    previous: Option<&Path>,
    dim: usize,
    params: HnswParams,
    removed: &[u64],
    added: &[(u64, &[f32])],
) -> Result<()> {
    let path = generation.join(GRAPH);
    let index = match previous {
        Some(previous) => {
            let from = previous.join(GRAPH);
            graph(&from, dim, params, |i| {
                i.load(&from.to_string_lossy()).map_err(|e| e.to_string())
            })?
        }
        None => graph(&path, dim, params, |_| Ok(()))?,
    };
    if let Some(previous) = previous {
        let from = previous.join(GRAPH);
        for &key in removed {
            index.remove(key).map_err(|e| usearch_error(&from, e))?;
        }
    }
    let threads = rayon::current_num_threads();
    index
        .reserve_capacity_and_threads(index.size() + added.len(), threads)
        .map_err(|e| usearch_error(&path, e))?;
    added
        .par_iter()
        .try_for_each(|(key, v)| index.add(*key, v))
        .map_err(|e| usearch_error(&path, e))?;
    index
        .save(&path.to_string_lossy())
        .map_err(|e| usearch_error(&path, e))
}

/// A generation's dense side, open for searching.
pub enum Dense {
    Exact(Box<ExactIndex>),
    Graph(usearch::Index),
}

impl Dense {
    /// Opens the graph when the generation has one (memory-mapped), else loads the vectors.
    pub fn open(
        generation: &Path,
        table: &Table,
        dim: usize,
        graph: Option<HnswParams>,
        device: &Device,
    ) -> Result<Dense> {
        let Some(params) = graph else {
            let vectors = table.vectors(dim)?;
            if vectors.is_empty() {
                return Ok(Dense::Exact(Box::new(ExactIndex::empty(dim))));
            }
            let exact = ExactIndex::new(table.ids.clone(), &vectors, device)?;
            return Ok(Dense::Exact(Box::new(exact)));
        };
        let index = open_graph(generation, dim, params)?;
        if index.size() != table.len() {
            return Err(Error::file(
                generation.join(GRAPH),
                format!(
                    "corrupt index: the graph holds {} vectors, the table {}",
                    index.size(),
                    table.len()
                ),
            ));
        }
        Ok(Dense::Graph(index))
    }

    /// Raises (or lowers) the graph's search candidates; exact search ignores it.
    pub fn set_expansion(&self, ef: usize) {
        if let Dense::Graph(index) = self {
            index.change_expansion_search(ef);
        }
    }

    /// The `k` nearest documents of each query as `(slot, cosine)`, best first.
    pub fn search(
        &self,
        table: &Table,
        queries: &[Vec<f32>],
        k: usize,
    ) -> Result<Vec<Vec<(usize, f64)>>> {
        match self {
            Dense::Exact(index) => index.search_slots(queries, k),
            Dense::Graph(index) => queries
                .iter()
                .map(|q| {
                    neighbours(index, q, k)?
                        .into_iter()
                        .map(|(key, score)| {
                            let slot = table.slot_of_key(key).ok_or_else(|| {
                                Error::invalid(format!(
                                    "corrupt index: the graph names key {key}, which no document has"
                                ))
                            })?;
                            Ok((slot, score))
                        })
                        .collect()
                })
                .collect(),
        }
    }
}

/// A generation's graph, memory-mapped (searches read only the pages they visit).
pub fn open_graph(generation: &Path, dim: usize, params: HnswParams) -> Result<usearch::Index> {
    let path = generation.join(GRAPH);
    let index = graph(&path, dim, params, |i| {
        i.view(&path.to_string_lossy()).map_err(|e| e.to_string())
    })?;
    if index.dimensions() != dim {
        return Err(Error::file(
            &path,
            format!(
                "corrupt index: the graph holds vectors of {}, the manifest says {dim}",
                index.dimensions()
            ),
        ));
    }
    index.change_expansion_search(params.expansion_search);
    Ok(index)
}

/// The `k` nearest keys of `query` in `graph`, with their cosine, best first.
pub fn neighbours(graph: &usearch::Index, query: &[f32], k: usize) -> Result<Vec<(u64, f64)>> {
    let found = graph
        .search(query, k)
        .map_err(|e| Error::invalid(format!("HNSW search: {e}")))?;
    Ok(found
        .keys
        .iter()
        .zip(&found.distances)
        .map(|(&key, &d)| (key, 1.0 - f64::from(d)))
        .collect())
}
