//! `positio eval retrieval`: embeds a BEIR corpus and its queries with a model, searches
//! exhaustively, writes the TREC run and scores it as trec_eval does.

use crate::data::beir::{self, BeirData};
use crate::data::pairs::{self, Pair};
use crate::data::trec::Run;
use crate::index::searcher::{SearchOptions, Searcher};
use crate::index::{SearchMode, Store};
use crate::runtime::{self, DeviceKind};
use crate::tasks::embedding::Embedder;
use crate::tasks::rerank::Reranker;
use crate::tasks::retrieval::metrics::{self, RetrievalReport};
use crate::tasks::retrieval::search::ExactIndex;
use crate::{io, Error, Result};
use std::path::Path;
use std::time::Instant;

/// What `eval retrieval` reads and how it searches.
pub struct RetrievalEval<'a> {
    /// A sentence-embedding model directory (with `index`: where the index's model lies now).
    pub model: Option<&'a Path>,
    /// An index of the corpus to search (`positio index build`, on disk or in PostgreSQL),
    /// instead of exact search over the corpus embedded now; with it, `mode` applies.
    pub index: Option<Store<'a>>,
    pub mode: SearchMode,
    /// A BEIR directory.
    pub data: &'a Path,
    /// The qrels file's name in `qrels/` (without `.tsv`).
    pub split: &'a str,
    /// Documents kept per query in the run.
    pub top: usize,
    /// Texts per forward pass.
    pub batch_size: usize,
    /// A reranker and how many of each query's first documents it reorders.
    pub rerank: Option<(&'a Path, usize)>,
}

/// What `eval retrieval` measured; `Display` prints it as the CLI shows it.
pub struct RetrievalEvaluation {
    pub heading: String,
    pub report: RetrievalReport,
}

impl std::fmt::Display for RetrievalEvaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.heading)?;
        let m = &self.report.mean;
        for (name, v) in [
            ("ndcg@10", m.ndcg_at_10),
            ("mrr@10", m.mrr_at_10),
            ("recall@10", m.recall_at_10),
            ("recall@100", m.recall_at_100),
            ("map@100", m.map_at_100),
        ] {
            writeln!(f, "{name:>12} {v:.4}")?;
        }
        Ok(())
    }
}

/// The `top` best documents of every query of `data` by exact search over `embedder`'s vectors
/// (documents embedded as title and text).
pub fn dense_run(
    embedder: &Embedder,
    data: &BeirData,
    top: usize,
    batch_size: usize,
) -> Result<Run> {
    let passages: Vec<String> = data.corpus.iter().map(beir::Document::passage).collect();
    let doc_vectors = embedder.embed(&passages, embedder.pooling, batch_size)?;
    let texts: Vec<String> = data.queries.iter().map(|q| q.text.clone()).collect();
    let query_vectors = embedder.embed(&texts, embedder.pooling, batch_size)?;
    let ids = data.corpus.iter().map(|d| d.id.clone()).collect();
    let index = ExactIndex::new(ids, &doc_vectors, embedder.device())?;
    let mut run = Run::default();
    for (q, docs) in data.queries.iter().zip(index.search(&query_vectors, top)?) {
        run.insert(&q.id, docs);
    }
    Ok(run)
}

/// Reorders each query's first `k` documents by the reranker's relevance, placed above the rest
/// (their scores become `1 + relevance`, so the run's order is the reranked order).
pub fn rerank_run(
    reranker: &Reranker,
    data: &BeirData,
    run: &mut Run,
    k: usize,
    batch_size: usize,
) -> Result<()> {
    let passages: std::collections::HashMap<&str, String> = data
        .corpus
        .iter()
        .map(|d| (d.id.as_str(), d.passage()))
        .collect();
    for q in &data.queries {
        let Some(docs) = run.queries.get(&q.id) else {
            continue;
        };
        let head: Vec<String> = docs
            .iter()
            .take(k)
            .map(|(d, _)| passages[d.as_str()].clone())
            .collect();
        let scores = reranker.scores(&q.text, &head, batch_size)?;
        let mut docs = docs.clone();
        for ((_, s), r) in docs.iter_mut().zip(&scores) {
            *s = f64::from(*r);
        }
        lift_head(&mut docs, scores.len());
        run.insert(&q.id, docs);
    }
    Ok(())
}

/// Places the first `head` documents (scored by a reranker's relevance in (0, 1)) above every
/// document the reranker did not read, in their order: their scores rise by the highest
/// score of the rest (at least 1), so the run's order is the reranked order.
fn lift_head(docs: &mut [(String, f64)], head: usize) {
    let head = head.min(docs.len());
    let floor = docs[head..].iter().map(|(_, s)| *s).fold(1.0, f64::max);
    for (_, score) in &mut docs[..head] {
        *score += floor;
    }
}

/// The run of `data`'s queries through an index (its mode, its reranking).
fn index_run(
    eval: &RetrievalEval,
    index: Store,
    model: Option<&Path>,
    data: &BeirData,
    device: &burn::tensor::Device,
) -> Result<Run> {
    let reranker = eval.rerank.map(|(dir, _)| dir);
    let searcher = Searcher::open(index, model, reranker, eval.mode, device)?;
    let rerank_top = eval.rerank.map_or(0, |(_, k)| k);
    let options = SearchOptions {
        mode: eval.mode,
        top: eval.top.max(rerank_top),
        rerank_top,
        batch_size: eval.batch_size,
    };
    let texts: Vec<String> = data.queries.iter().map(|q| q.text.clone()).collect();
    let mut run = Run::default();
    for (q, hits) in data.queries.iter().zip(searcher.search(&texts, &options)?) {
        let mut docs: Vec<(String, f64)> = hits.into_iter().map(|h| (h.id, h.score)).collect();
        if eval.rerank.is_some() {
            lift_head(&mut docs, rerank_top);
        }
        docs.truncate(eval.top);
        run.insert(&q.id, docs);
    }
    Ok(run)
}

/// Embeds, searches and scores; writes the run (`run`, tag `positio`) and the report as JSON
/// (`json`: the means under their names, `queries`, and `per_query`) when asked.
pub fn evaluate(
    eval: &RetrievalEval,
    run_path: Option<&Path>,
    json: Option<&Path>,
    device: DeviceKind,
) -> Result<RetrievalEvaluation> {
    let device = runtime::device(device)?;
    let data = beir::read(eval.data, eval.split)?;
    let started = Instant::now();
    let (run, searched) = match (eval.index, eval.model) {
        (Some(index), model) => (index_run(eval, index, model, &data, &device)?, "index"),
        (None, Some(model)) => {
            let embedder = Embedder::load(model, &device)?;
            let mut run = dense_run(&embedder, &data, eval.top, eval.batch_size)?;
            if let Some((dir, k)) = eval.rerank {
                let reranker = Reranker::load(dir, &device)?;
                rerank_run(&reranker, &data, &mut run, k, eval.batch_size)?;
            }
            (run, "exact search")
        }
        (None, None) => return Err(Error::config("--model / --index", "give one")),
    };
    let seconds = started.elapsed().as_secs_f64();
    if let Some(path) = run_path {
        run.write(path, "positio")?;
    }
    let report = metrics::evaluate(&run, &data.qrels);
    if let Some(path) = json {
        let mut value = serde_json::to_value(report.mean).expect("serialises");
        let obj = value.as_object_mut().expect("an object");
        obj.insert("queries".into(), report.queries.into());
        obj.insert(
            "per_query".into(),
            serde_json::to_value(&report.per_query).expect("serialises"),
        );
        io::write_atomic(
            path,
            (serde_json::to_string_pretty(&value).expect("serialises") + "\n").as_bytes(),
        )?;
    }
    Ok(RetrievalEvaluation {
        heading: format!(
            "{}: {} documents, {} queries (split {}), {searched}{}, top {}{}; in {seconds:.1} s",
            eval.data.display(),
            data.corpus.len(),
            report.queries,
            eval.split,
            match eval.index {
                Some(_) => format!(" ({:?})", eval.mode).to_lowercase(),
                None => String::new(),
            },
            eval.top,
            match eval.rerank {
                Some((_, k)) => format!(", the first {k} reranked"),
                None => String::new(),
            }
        ),
        report,
    })
}

/// Where `mine-negatives` looks for negatives.
pub enum MiningSource<'a> {
    /// Among the pairs' own answers, embedded by this model and searched exactly.
    Model(&'a Path),
    /// Among an index's documents, searched by `mode` (`model`: where the index's model lies
    /// now).
    Index {
        store: Store<'a>,
        model: Option<&'a Path>,
        mode: SearchMode,
    },
}

/// What `mine-negatives` reads and how it picks.
pub struct Mining<'a> {
    pub source: MiningSource<'a>,
    /// The pairs to add negatives to.
    pub pairs: &'a Path,
    /// Negatives per pair.
    pub count: usize,
    /// The most similar non-positive answers passed over first (likely unlabelled positives).
    pub skip: usize,
    /// Texts per forward pass.
    pub batch_size: usize,
}

/// What `mine-negatives` found.
pub struct Mined {
    /// The pairs with their negatives.
    pub pairs: Vec<Pair>,
    /// How many texts were searched (distinct answers, or indexed documents).
    pub searched: usize,
    /// Pairs that got fewer than `count` negatives.
    pub short: usize,
}

/// Hard negatives for training pairs: each anchor is searched among the distinct answers of
/// the file (embedded by a model) or an index's documents; the most similar texts that are
/// not the pair's own answer (nor equal to it), after the `skip` most similar, become its
/// negatives (existing ones are replaced).
pub fn mine_negatives(mining: &Mining, device: DeviceKind) -> Result<Mined> {
    let device = runtime::device(device)?;
    let mut pairs = pairs::read(mining.pairs)?;
    let anchors: Vec<String> = pairs.iter().map(|p| p.anchor.clone()).collect();
    // The pair's own answer may rank anywhere in the first skip + count + 1; an index may
    // also hold copies of it.
    let depth = mining.skip + mining.count + 1;
    let (candidates, searched): (Vec<Vec<String>>, usize) = match &mining.source {
        MiningSource::Model(model) => {
            let embedder = Embedder::load(model, &device)?;
            let mut answers: Vec<String> = pairs.iter().map(|p| p.positive.clone()).collect();
            answers.sort();
            answers.dedup();
            if answers.len() <= mining.count + mining.skip {
                return Err(Error::file(
                    mining.pairs,
                    format!(
                        "{} distinct answers: too few to skip {} and take {} per pair",
                        answers.len(),
                        mining.skip,
                        mining.count
                    ),
                ));
            }
            let vectors = embedder.embed(&answers, embedder.pooling, mining.batch_size)?;
            let ids = (0..answers.len()).map(|i| i.to_string()).collect();
            let index = ExactIndex::new(ids, &vectors, &device)?;
            let queries = embedder.embed(&anchors, embedder.pooling, mining.batch_size)?;
            let hits = index.search_slots(&queries, depth)?;
            let texts = hits
                .iter()
                .map(|hits| {
                    hits.iter()
                        .map(|&(slot, _)| answers[slot].clone())
                        .collect()
                })
                .collect();
            (texts, answers.len())
        }
        MiningSource::Index { store, model, mode } => {
            let searcher = Searcher::open(*store, *model, None, *mode, &device)?;
            let options = SearchOptions {
                mode: *mode,
                top: depth + 4,
                rerank_top: 0,
                batch_size: mining.batch_size,
            };
            let mut texts = Vec::with_capacity(anchors.len());
            for hits in searcher.search(&anchors, &options)? {
                let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
                let docs = searcher.index.documents(&ids)?;
                texts.push(docs.iter().map(beir::Document::passage).collect());
            }
            (texts, searcher.index.count()?)
        }
    };
    let mut short = 0;
    for (pair, found) in pairs.iter_mut().zip(candidates) {
        let own = pair.positive.trim();
        pair.negatives = found
            .into_iter()
            .filter(|t| t.trim() != own)
            .skip(mining.skip)
            .take(mining.count)
            .collect();
        short += usize::from(pair.negatives.len() < mining.count);
    }
    Ok(Mined {
        pairs,
        searched,
        short,
    })
}
