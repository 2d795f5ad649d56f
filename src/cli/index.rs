//! `positio index build|add|delete|info` and `positio search`: the document index.

use super::DeviceArg;
use crate::data::beir;
use crate::index::dense::{DensePolicy, HnswParams};
use crate::index::searcher::{SearchOptions, Searcher};
use crate::index::{self, BuildOptions, SearchMode, Store, WriteSummary};
use crate::{runtime, Error, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub(crate) enum IndexCommand {
    /// Build an index of a corpus (BEIR corpus.jsonl: {"_id", "title", "text"} a line) with an
    /// embedding model: dense vectors (exact, or an HNSW graph from 20,000 documents), BM25,
    /// and the documents themselves.
    Build(BuildArgs),
    /// Add documents (corpus.jsonl) to an index with its own model; a document whose id the
    /// index has replaces it. Atomic: searches see the index before or after, never between.
    Add(AddArgs),
    /// Delete documents by id. Atomic, as add.
    Delete(DeleteArgs),
    /// Describe an index: model, dimension, documents, dense search kind.
    Info(InfoArgs),
    /// Time the HNSW graph alone on raw vectors (experiments/index_1m.py runs it beside
    /// usearch's and hnswlib's Python packages): build seconds and memory, then p50 / p95
    /// single-threaded search latency and recall@k at each --ef; one JSON object.
    Bench(BenchArgs),
}

impl IndexCommand {
    pub fn device(&self) -> Option<DeviceArg> {
        match self {
            IndexCommand::Build(a) => Some(a.device),
            IndexCommand::Add(a) => Some(a.device),
            IndexCommand::Delete(_) | IndexCommand::Info(_) | IndexCommand::Bench(_) => None,
        }
    }

    pub fn run(&self) -> Result<()> {
        let summary = match self {
            IndexCommand::Build(a) => a.run()?,
            IndexCommand::Add(a) => a.run()?,
            IndexCommand::Delete(a) => a.run()?,
            IndexCommand::Info(a) => return a.run(),
            IndexCommand::Bench(a) => return a.run(),
        };
        println!("{}", serde_json::to_string(&summary).expect("serialises"));
        Ok(())
    }
}

/// `--store`: where the index lives, when not in a directory.
#[derive(clap::Args)]
pub(crate) struct StoreArg {
    /// A PostgreSQL database with pgvector (postgres://user[:password]@host[:port]/db): the
    /// index is the table of that name (lowercase letters, digits, _) instead of a directory.
    /// Lexical search there is PostgreSQL's full-text ts_rank (it has no BM25).
    #[arg(long)]
    store: Option<String>,
}

impl StoreArg {
    /// The store of the index named (a directory, or with --store a table) `index`.
    pub(crate) fn of<'a>(&'a self, index: &'a std::path::Path) -> Result<Store<'a>> {
        Store::at(index, self.store.as_deref())
    }

    /// The PostgreSQL URL, when the index lives there.
    pub(crate) fn url(&self) -> Option<&str> {
        self.store.as_deref()
    }
}

#[derive(clap::Args)]
pub(crate) struct BuildArgs {
    /// The embedding model (a sentence-transformers directory, or positio's).
    #[arg(long)]
    model: PathBuf,
    /// The documents: BEIR corpus.jsonl.
    #[arg(long)]
    corpus: PathBuf,
    /// The index directory to create (with --store: the index's name).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    store: StoreArg,
    /// Dense search: auto (exact below 20,000 documents, HNSW from there), exact or hnsw.
    #[arg(long, value_enum, default_value = "auto")]
    dense: DensePolicy,
    /// HNSW neighbours per node (M).
    #[arg(long, default_value_t = HnswParams::default().connectivity)]
    connectivity: usize,
    /// HNSW candidates while inserting (efConstruction).
    #[arg(long, default_value_t = HnswParams::default().expansion_add)]
    expansion_add: usize,
    /// HNSW candidates while searching (ef), the default of every search.
    #[arg(long, default_value_t = HnswParams::default().expansion_search)]
    expansion_search: usize,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    device: DeviceArg,
}

impl BuildArgs {
    fn run(&self) -> Result<WriteSummary> {
        let documents = beir::read_corpus(&self.corpus)?;
        let options = BuildOptions {
            dense: self.dense,
            hnsw: HnswParams {
                connectivity: self.connectivity,
                expansion_add: self.expansion_add,
                expansion_search: self.expansion_search,
            },
            batch_size: self.batch_size,
        };
        let device = runtime::device(self.device.device)?;
        index::build(
            self.store.of(&self.out)?,
            &self.model,
            &documents,
            &options,
            &device,
        )
    }
}

#[derive(clap::Args)]
pub(crate) struct AddArgs {
    /// The index directory (with --store: the index's name).
    index: PathBuf,
    #[command(flatten)]
    store: StoreArg,
    /// The documents: BEIR corpus.jsonl.
    #[arg(long)]
    corpus: PathBuf,
    /// The index's model, where it lies now (when it moved since the build); another model is
    /// refused.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    device: DeviceArg,
}

impl AddArgs {
    fn run(&self) -> Result<WriteSummary> {
        let documents = beir::read_corpus(&self.corpus)?;
        let device = runtime::device(self.device.device)?;
        index::add(
            self.store.of(&self.index)?,
            self.model.as_deref(),
            &documents,
            self.batch_size,
            &device,
        )
    }
}

#[derive(clap::Args)]
pub(crate) struct DeleteArgs {
    /// The index directory (with --store: the index's name).
    index: PathBuf,
    #[command(flatten)]
    store: StoreArg,
    /// An id to delete (repeatable).
    #[arg(long)]
    id: Vec<String>,
    /// A file of ids to delete, one a line.
    #[arg(long)]
    ids: Option<PathBuf>,
}

impl DeleteArgs {
    fn run(&self) -> Result<WriteSummary> {
        let mut ids = self.id.clone();
        if let Some(path) = &self.ids {
            ids.extend(index::read_ids(path)?);
        }
        if ids.is_empty() {
            return Err(Error::config("--id / --ids", "name at least one document"));
        }
        index::delete(self.store.of(&self.index)?, &ids)
    }
}

#[derive(clap::Args)]
pub(crate) struct InfoArgs {
    /// The index directory.
    index: PathBuf,
}

impl InfoArgs {
    fn run(&self) -> Result<()> {
        let index = index::Index::open(&self.index, &runtime::cpu())?;
        println!(
            "{}",
            serde_json::to_string_pretty(&index.manifest).expect("serialises")
        );
        Ok(())
    }
}

/// `positio search`.
#[derive(clap::Args)]
pub(crate) struct SearchArgs {
    /// The index directory (with --store: the index's name).
    index: PathBuf,
    #[command(flatten)]
    store: StoreArg,
    /// A query (repeatable). Without --query or --queries, standard input is read, a query a
    /// line.
    #[arg(long)]
    query: Vec<String>,
    /// A file of queries: BEIR queries.jsonl, or plain text a query a line.
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// dense (embeddings), bm25 (words) or hybrid (both, fused by reciprocal rank).
    #[arg(long, value_enum, default_value = "dense")]
    mode: SearchMode,
    /// A reranker (`finetune rerank`, or a one-label cross-encoder) that reorders the first
    /// --rerank-top results.
    #[arg(long)]
    rerank: Option<PathBuf>,
    /// Results the reranker reads.
    #[arg(long, default_value_t = 20)]
    rerank_top: usize,
    /// HNSW candidates per search (more: higher recall, slower) [default: the index's].
    #[arg(long)]
    ef: Option<usize>,
    /// The index's model where it lies now (when it moved); another model is refused.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl SearchArgs {
    pub fn run(&self) -> Result<()> {
        if self.top == 0 {
            return Err(Error::config("--top", "must be at least 1"));
        }
        let queries = self.queries()?;
        let device = runtime::device(self.device.device)?;
        let mut searcher = Searcher::open(
            self.store.of(&self.index)?,
            self.model.as_deref(),
            self.rerank.as_deref(),
            self.mode,
            &device,
        )?;
        if let Some(ef) = self.ef {
            searcher.index.set_expansion(ef);
        }
        let options = SearchOptions {
            mode: self.mode,
            top: self.top,
            rerank_top: self.rerank_top,
            batch_size: self.batch_size,
        };
        let mut out = std::io::stdout().lock();
        for (query, rows) in queries.iter().zip(searcher.results(&queries, &options)?) {
            let line = serde_json::json!({"query": query, "hits": rows});
            writeln!(out, "{line}").map_err(|e| Error::io("standard output", "write", e))?;
        }
        Ok(())
    }

    fn queries(&self) -> Result<Vec<String>> {
        let mut queries = self.query.clone();
        if let Some(path) = &self.queries {
            let is_jsonl = path.extension().is_some_and(|e| e == "jsonl");
            if is_jsonl {
                queries.extend(beir::read_queries(path)?.into_iter().map(|q| q.text));
            } else {
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
                queries.extend(
                    text.lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(String::from),
                );
            }
        }
        if self.query.is_empty() && self.queries.is_none() {
            let text = std::io::read_to_string(std::io::stdin())
                .map_err(|e| Error::io("standard input", "read", e))?;
            queries.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(String::from),
            );
        }
        if queries.is_empty() {
            return Err(Error::config("--query / --queries", "no query given"));
        }
        Ok(queries)
    }
}

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// The vectors: little-endian f32, `--dim` per row, unit length.
    #[arg(long)]
    vectors: PathBuf,
    /// The queries, as the vectors.
    #[arg(long)]
    queries: PathBuf,
    /// Each query's exact nearest rows: little-endian i32, at least --k per query.
    #[arg(long)]
    truth: PathBuf,
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Neighbours per search.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// HNSW neighbours per node (M).
    #[arg(long, default_value_t = HnswParams::default().connectivity)]
    connectivity: usize,
    /// HNSW candidates while inserting (efConstruction).
    #[arg(long, default_value_t = HnswParams::default().expansion_add)]
    expansion_add: usize,
    /// Search candidates to measure (repeatable).
    #[arg(long, default_values_t = [HnswParams::default().expansion_search])]
    ef: Vec<usize>,
    /// A scratch directory for the graph file.
    #[arg(long)]
    scratch: PathBuf,
}

impl BenchArgs {
    fn run(&self) -> Result<()> {
        let report = index::bench::bench(&index::bench::GraphBench {
            vectors: &self.vectors,
            queries: &self.queries,
            truth: &self.truth,
            dim: self.dim,
            k: self.k,
            params: HnswParams {
                connectivity: self.connectivity,
                expansion_add: self.expansion_add,
                expansion_search: self.ef[0],
            },
            ef: &self.ef,
            scratch: &self.scratch,
        })?;
        println!("{report}");
        Ok(())
    }
}
