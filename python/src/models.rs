//! The model objects: `Encoder` (sentence embeddings, tokens, info; `encode` for code written
//! against sentence-transformers), `Classifier`, `Tagger` (NER) and `Reranker`. Each loads a
//! model directory once and calls what `positio embed` / `predict` / `search --rerank` call.

use crate::{error, from_json, on_device, one_or_all, positive, texts_of};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use positio::data::labelled::Example;
use positio::hf::FromCheckpoint;
use positio::tasks::classify::{commands::predictions, ClassifierModel};
use positio::tasks::embedding::{Embedder, SentencePooling};
use positio::tasks::ner::{Aggregation, NerModel};
use pyo3::prelude::*;
use std::path::PathBuf;

/// A sentence encoder (`positio embed`): a model directory such as all-MiniLM-L6-v2's.
#[pyclass(frozen, module = "positio")]
pub struct Encoder {
    embedder: Embedder,
    dir: PathBuf,
}

#[pymethods]
impl Encoder {
    /// Loads a model directory (Hugging Face layout; sentence-transformers' pooling and
    /// maximum length are read when present).
    #[staticmethod]
    #[pyo3(signature = (dir, *, device = "cpu"))]
    fn load(py: Python<'_>, dir: PathBuf, device: &str) -> PyResult<Self> {
        let embedder = on_device(py, crate::device(device)?, |d| Embedder::load(&dir, d))?;
        Ok(Encoder { embedder, dir })
    }

    /// Sentence embeddings, one row per text (float32, `[texts, hidden]`), in the model's
    /// pooling (or `pooling="mean"` / `"cls"`); L2-normalised unless `normalize=False`.
    #[pyo3(signature = (texts, *, batch_size = 32, normalize = true, pooling = None))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        batch_size: usize,
        normalize: bool,
        pooling: Option<&str>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (texts, _) = texts_of(texts)?;
        let batch_size = positive("batch_size", batch_size)?;
        let pooling = match pooling {
            None => self.embedder.pooling,
            Some("mean") => SentencePooling::Mean,
            Some("cls") => SentencePooling::Cls,
            Some(other) => {
                return Err(crate::PositioError::new_err(format!(
                    "pooling {other:?}: expected \"mean\" or \"cls\""
                )))
            }
        };
        let width = self.embedder.model.config.hidden_size;
        let flat = py
            .detach(|| {
                let rows = self
                    .embedder
                    .sentence_vectors(&texts, pooling, batch_size, normalize)?;
                Ok::<_, positio::Error>(rows.concat())
            })
            .map_err(error)?;
        // The array owns the Rust buffer: no copy into Python.
        PyArray1::from_vec(py, flat).reshape([texts.len(), width])
    }

    /// sentence-transformers' `SentenceTransformer.encode`, for code written against it:
    /// a 2-D float32 array for a list, a 1-D one for a single string.
    #[pyo3(signature = (sentences, batch_size = 32, normalize_embeddings = true, **_ignored))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
        batch_size: usize,
        normalize_embeddings: bool,
        _ignored: Option<&Bound<'py, pyo3::types::PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let one = texts_of(sentences)?.1;
        let rows = self.embed(py, sentences, batch_size, normalize_embeddings, None)?;
        if one {
            Ok(rows.get_item(0)?)
        } else {
            Ok(rows.into_any())
        }
    }

    /// Word-piece ids of `text` as the model reads it ([CLS] ... [SEP], cut at its length).
    fn tokenize(&self, text: &str) -> PyResult<Vec<u32>> {
        self.embedder
            .tokenizer
            .encode(text, self.embedder.max_len)
            .map_err(error)
    }

    /// What the model is: its `config.json` (as positio reads it), parameters, maximum length
    /// in word pieces, pooling, vocabulary size and directory.
    fn info(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let e = &self.embedder;
        from_json(
            py,
            &serde_json::json!({
                "dir": self.dir,
                "config": e.model.config,
                "parameters": e.model.num_params(),
                "max_length": (e.max_len != usize::MAX).then_some(e.max_len),
                "pooling": e.pooling,
                "vocab_size": e.tokenizer.vocab_size(),
            }),
        )
    }

    /// The embedding width.
    #[getter]
    fn dimension(&self) -> usize {
        self.embedder.model.config.hidden_size
    }

    fn __repr__(&self) -> String {
        format!("positio.Encoder({:?})", self.dir)
    }
}

/// A fine-tuned text classifier (`positio predict classify`).
#[pyclass(frozen, module = "positio")]
pub struct Classifier {
    model: ClassifierModel,
}

#[pymethods]
impl Classifier {
    /// Loads a fine-tuned classifier (cutting texts at `max_length` word pieces if given, else
    /// at the length it was fine-tuned with).
    #[staticmethod]
    #[pyo3(signature = (dir, *, max_length = None, device = "cpu"))]
    fn load(
        py: Python<'_>,
        dir: PathBuf,
        max_length: Option<usize>,
        device: &str,
    ) -> PyResult<Self> {
        let model = on_device(py, crate::device(device)?, |d| {
            ClassifierModel::load(&dir, max_length, d)
        })?;
        Ok(Classifier { model })
    }

    /// `predict classify`'s answer for each text (a dict: `label`, or `labels` when
    /// multi-label, and every label's `score`, highest first); `pairs` gives each text its
    /// second text. One text in, one dict out.
    #[pyo3(signature = (texts, *, pairs = None, batch_size = 64, threshold = None))]
    fn predict(
        &self,
        py: Python<'_>,
        texts: &Bound<'_, PyAny>,
        pairs: Option<&Bound<'_, PyAny>>,
        batch_size: usize,
        threshold: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let (texts, one) = texts_of(texts)?;
        let pairs: Vec<Option<String>> = match pairs {
            None => vec![None; texts.len()],
            Some(p) => {
                let p = texts_of(p)?.0;
                if p.len() != texts.len() {
                    return Err(crate::PositioError::new_err(format!(
                        "pairs: {} for {} texts",
                        p.len(),
                        texts.len()
                    )));
                }
                p.into_iter().map(Some).collect()
            }
        };
        let examples: Vec<Example> = texts
            .into_iter()
            .zip(pairs)
            .enumerate()
            .map(|(i, (text, pair))| Example {
                text,
                pair,
                labels: Vec::new(),
                line: i + 1,
            })
            .collect();
        let batch_size = positive("batch_size", batch_size)?;
        let out = py
            .detach(|| predictions(&self.model, &examples, batch_size, threshold))
            .map_err(error)?;
        one_or_all(py, &out, one)
    }

    /// The labels, in the model's order.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.model.labels.clone()
    }
}

/// A fine-tuned NER model (`positio predict ner`): entities with character offsets.
#[pyclass(frozen, module = "positio")]
pub struct Tagger {
    model: NerModel,
}

#[pymethods]
impl Tagger {
    #[staticmethod]
    #[pyo3(signature = (dir, *, max_length = None, device = "cpu"))]
    fn load(
        py: Python<'_>,
        dir: PathBuf,
        max_length: Option<usize>,
        device: &str,
    ) -> PyResult<Self> {
        let model = on_device(py, crate::device(device)?, |d| {
            NerModel::load(&dir, max_length, d)
        })?;
        Ok(Tagger { model })
    }

    /// The entities of each text as `predict ner` gives them (dicts with `entity_group`,
    /// `score`, `word`, `start`, `end`: character offsets into the text), grouped by
    /// `aggregation_strategy` as transformers' pipeline does ("simple", the default, "none",
    /// "first", "average", "max", or "words"). One text in, one list out.
    #[pyo3(signature = (texts, *, aggregation_strategy = "simple", batch_size = 64))]
    fn entities(
        &self,
        py: Python<'_>,
        texts: &Bound<'_, PyAny>,
        aggregation_strategy: &str,
        batch_size: usize,
    ) -> PyResult<Py<PyAny>> {
        let (texts, one) = texts_of(texts)?;
        let strategy = <Aggregation as clap::ValueEnum>::from_str(aggregation_strategy, true)
            .map_err(|_| {
                crate::PositioError::new_err(format!(
                    "aggregation_strategy {aggregation_strategy:?}: expected none, simple, first, average, max or words"
                ))
            })?;
        let batch_size = positive("batch_size", batch_size)?;
        let out = py
            .detach(|| self.model.entities(&texts, strategy, batch_size))
            .map_err(error)?;
        one_or_all(py, &out, one)
    }

    /// The tags, in the model's order.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.model.labels.clone()
    }
}

/// A cross-encoder reranker (`finetune rerank`, `search --rerank`): the relevance of each
/// passage to a query.
#[pyclass(frozen, module = "positio")]
pub struct Reranker {
    model: positio::tasks::rerank::Reranker,
}

#[pymethods]
impl Reranker {
    #[staticmethod]
    #[pyo3(signature = (dir, *, device = "cpu"))]
    fn load(py: Python<'_>, dir: PathBuf, device: &str) -> PyResult<Self> {
        let model = on_device(py, crate::device(device)?, |d| {
            positio::tasks::rerank::Reranker::load(&dir, d)
        })?;
        Ok(Reranker { model })
    }

    /// Relevance scores in [0, 1] of `passages` to `query`, in the passages' order.
    #[pyo3(signature = (query, passages, *, batch_size = 32))]
    fn scores(
        &self,
        py: Python<'_>,
        query: &str,
        passages: Vec<String>,
        batch_size: usize,
    ) -> PyResult<Vec<f32>> {
        let batch_size = positive("batch_size", batch_size)?;
        py.detach(|| self.model.scores(query, &passages, batch_size))
            .map_err(error)
    }

    /// `passages` ranked by relevance to `query`: `(index, score)` pairs, best first.
    #[pyo3(signature = (query, passages, *, batch_size = 32))]
    fn rank(
        &self,
        py: Python<'_>,
        query: &str,
        passages: Vec<String>,
        batch_size: usize,
    ) -> PyResult<Vec<(usize, f32)>> {
        let scores = self.scores(py, query, passages, batch_size)?;
        let mut ranked: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(ranked)
    }
}
