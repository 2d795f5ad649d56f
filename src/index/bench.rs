//! `positio index bench`: the dense graph alone on raw vectors, for the side-by-side with
//! usearch's and hnswlib's Python packages (`experiments/index_1m.py` writes the vectors, the
//! queries and their exact neighbours, runs all three, and prints the table). The graph is
//! built and searched by the same functions as `index build` and `search`.

use super::dense::{self, HnswParams};
use crate::{Error, Result};
use std::path::Path;
use std::time::Instant;

/// Reads a little-endian f32 matrix of `dim` columns.
fn read_f32(path: &Path, dim: usize) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    if dim == 0 || bytes.len() % (4 * dim) != 0 {
        return Err(Error::file(
            path,
            format!("{} bytes: not rows of {dim} f32 values", bytes.len()),
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect())
}

/// A value of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// What to measure.
pub struct GraphBench<'a> {
    pub vectors: &'a Path,
    pub queries: &'a Path,
    /// Each query's exact `k` nearest rows (little-endian i32, `[queries, k]`).
    pub truth: &'a Path,
    pub dim: usize,
    pub k: usize,
    pub params: HnswParams,
    /// Search candidates to try, one measurement each.
    pub ef: &'a [usize],
    /// Where the graph is written (a scratch directory).
    pub scratch: &'a Path,
}

/// Builds the graph of every vector (keys: row numbers), then times single-threaded top-`k`
/// searches at each `ef`: one JSON object with build seconds, peak memory added by the build,
/// the file's size, and per `ef` the p50 / p95 milliseconds and recall@k against the truth.
pub fn bench(b: &GraphBench) -> Result<serde_json::Value> {
    let vectors = read_f32(b.vectors, b.dim)?;
    let queries = read_f32(b.queries, b.dim)?;
    let truth_bytes = std::fs::read(b.truth).map_err(|e| Error::io(b.truth, "read", e))?;
    let truth: Vec<u64> = truth_bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as u64)
        .collect();
    let n_queries = queries.len() / b.dim;
    if truth.len() < n_queries * b.k {
        return Err(Error::file(
            b.truth,
            format!(
                "{} neighbours for {n_queries} queries of {}",
                truth.len(),
                b.k
            ),
        ));
    }
    let truth_k = truth.len() / n_queries;
    let n_vectors = vectors.len() / b.dim;
    let keyed: Vec<(u64, &[f32])> = vectors
        .chunks_exact(b.dim)
        .enumerate()
        .map(|(i, v)| (i as u64, v))
        .collect();
    std::fs::create_dir_all(b.scratch).map_err(|e| Error::io(b.scratch, "create", e))?;
    let rss_before = status_bytes("VmRSS:");
    let started = Instant::now();
    dense::write_graph(b.scratch, None, b.dim, b.params, &[], &keyed)?;
    let build_seconds = started.elapsed().as_secs_f64();
    let build_peak_extra = status_bytes("VmHWM:").saturating_sub(rss_before);
    drop(keyed);
    drop(vectors);
    let graph = dense::open_graph(b.scratch, b.dim, b.params)?;
    let file_bytes = std::fs::metadata(b.scratch.join("hnsw.usearch")).map_or(0, |m| m.len());
    let mut runs = Vec::new();
    for &ef in b.ef {
        graph.change_expansion_search(ef);
        // One untimed pass: the memory-mapped pages a search visits are read once.
        for q in queries.chunks_exact(b.dim) {
            dense::neighbours(&graph, q, b.k)?;
        }
        let mut millis = Vec::with_capacity(n_queries);
        let mut found = 0usize;
        for (i, q) in queries.chunks_exact(b.dim).enumerate() {
            let t = Instant::now();
            let hits = dense::neighbours(&graph, q, b.k)?;
            millis.push(t.elapsed().as_secs_f64() * 1e3);
            let exact = &truth[i * truth_k..i * truth_k + b.k];
            found += hits.iter().filter(|(key, _)| exact.contains(key)).count();
        }
        millis.sort_by(f64::total_cmp);
        let at = |p: f64| millis[((millis.len() - 1) as f64 * p).round() as usize];
        runs.push(serde_json::json!({
            "ef": ef,
            "p50_ms": at(0.5),
            "p95_ms": at(0.95),
            "recall": found as f64 / (n_queries * b.k) as f64,
        }));
    }
    Ok(serde_json::json!({
        "library": "positio (usearch graph)",
        "vectors": n_vectors,
        "queries": n_queries,
        "build_seconds": build_seconds,
        "build_peak_extra_bytes": build_peak_extra,
        "file_bytes": file_bytes,
        "threads": rayon::current_num_threads(),
        "search": runs,
    }))
}
