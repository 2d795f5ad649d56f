//! Exact dense search: every query against every document by the dot product of unit vectors
//! (cosine similarity), the top `k` kept. The reference an approximate index is measured
//! against, and the right choice below a few hundred thousand documents. The products run as
//! one matrix product per block of queries on the model's device (positio's CPU GEMM).

use crate::{Error, Result};
use burn::tensor::{Device, Tensor, TensorData};

/// Queries per matrix product (bounds the `[queries, documents]` score block in memory).
const QUERY_BLOCK: usize = 256;

/// Unit-norm document vectors, searched exhaustively.
pub struct ExactIndex {
    /// `[documents, dim]` on the device; `None` when there are no documents.
    vectors: Option<Tensor<2>>,
    ids: Vec<String>,
    dim: usize,
}

impl ExactIndex {
    /// An index of `vectors` (one per id, all of one dimension).
    pub fn new(ids: Vec<String>, vectors: &[Vec<f32>], device: &Device) -> Result<Self> {
        let dim = vectors.first().map_or(0, Vec::len);
        if ids.len() != vectors.len() || dim == 0 {
            return Err(Error::shape(
                "document vectors",
                format!("{} non-empty vectors", ids.len()),
                vectors.len(),
            ));
        }
        if let Some(v) = vectors.iter().find(|v| v.len() != dim) {
            return Err(Error::shape("document vector", dim, v.len()));
        }
        let flat: Vec<f32> = vectors.concat();
        let vectors = Tensor::<2>::from_data(TensorData::new(flat, [ids.len(), dim]), device);
        Ok(ExactIndex {
            vectors: Some(vectors),
            ids,
            dim,
        })
    }

    /// An index of no documents (every search finds nothing).
    pub fn empty(dim: usize) -> Self {
        ExactIndex {
            vectors: None,
            ids: Vec::new(),
            dim,
        }
    }

    /// The `k` best documents of each query as `(id, score)`, best first (ties: trec_eval's
    /// order, the larger id first: [`crate::data::trec::trec_order`]).
    pub fn search(&self, queries: &[Vec<f32>], k: usize) -> Result<Vec<Vec<(String, f64)>>> {
        Ok(self
            .search_slots(queries, k)?
            .into_iter()
            .map(|hits| {
                hits.into_iter()
                    .map(|(slot, score)| (self.ids[slot].clone(), score))
                    .collect()
            })
            .collect())
    }

    /// As [`ExactIndex::search`], with documents as their positions in `ids`.
    pub fn search_slots(&self, queries: &[Vec<f32>], k: usize) -> Result<Vec<Vec<(usize, f64)>>> {
        let mut out = Vec::with_capacity(queries.len());
        let n = self.ids.len();
        if let Some(q) = queries.iter().find(|q| q.len() != self.dim) {
            return Err(Error::shape("query vector", self.dim, q.len()));
        }
        let Some(vectors) = &self.vectors else {
            return Ok(vec![Vec::new(); queries.len()]);
        };
        for block in queries.chunks(QUERY_BLOCK) {
            let q = Tensor::<2>::from_data(
                TensorData::new(block.concat(), [block.len(), self.dim]),
                &vectors.device(),
            );
            let scores = q.matmul(vectors.clone().transpose());
            let scores: Vec<f32> = scores
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| Error::invalid(format!("cannot read scores: {e:?}")))?;
            for row in scores.chunks(n) {
                out.push(self.best(row, k));
            }
        }
        Ok(out)
    }

    /// The `k` highest of one query's scores.
    fn best(&self, scores: &[f32], k: usize) -> Vec<(usize, f64)> {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        // trec_order on (id, score), without building the pairs.
        let by_rank = |&a: &usize, &b: &usize| {
            scores[b]
                .total_cmp(&scores[a])
                .then_with(|| self.ids[b].cmp(&self.ids[a]))
        };
        let k = k.min(order.len());
        if k < order.len() {
            order.select_nth_unstable_by(k, by_rank);
            order.truncate(k);
        }
        order.sort_by(by_rank);
        order
            .into_iter()
            .map(|i| (i, f64::from(scores[i])))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_nearest_in_trec_order() {
        let device = crate::runtime::cpu();
        let ids: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let v = |x: f32, y: f32| vec![x, y];
        let docs = [v(1.0, 0.0), v(0.0, 1.0), v(0.6, 0.8), v(0.0, 1.0)];
        let index = ExactIndex::new(ids, &docs, &device).unwrap();
        let hits = index.search(&[v(0.0, 1.0), v(1.0, 0.0)], 3).unwrap();
        let names = |h: &Vec<(String, f64)>| h.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>();
        // b and d tie at 1.0: the larger id first, as trec_eval ranks them.
        assert_eq!(names(&hits[0]), ["d", "b", "c"]);
        assert_eq!(names(&hits[1]), ["a", "c", "d"]);
        assert!((hits[1][1].1 - 0.6).abs() < 1e-6);
        let e = index.search(&[vec![1.0]], 1).err().unwrap().to_string();
        assert!(e.contains("query vector: expected 2, got 1"), "{e}");
    }
}
