//! Retrieval commands: `positio finetune embed` (contrastive fine-tuning of an embedding model),
//! `positio mine-negatives` (hard negatives for its pairs), `positio finetune rerank` (a
//! cross-encoder) and `positio eval retrieval` (quality on a BEIR directory).

use super::index::StoreArg;
use super::{DeviceArg, FineTuningInputs, TrainingArgs};
use crate::index::SearchMode;
use crate::tasks::embedding::{self, task::EmbedSettings};
use crate::tasks::rerank::{self, RerankSettings};
use crate::tasks::retrieval::commands::{self, Mining, MiningSource, RetrievalEval};
use crate::train::trainer::Outcome;
use crate::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A sentence-embedding model directory (sentence-transformers' or positio's); the corpus
    /// is embedded and searched exactly. With --index: where the index's model lies now.
    #[arg(long, required_unless_present = "index")]
    model: Option<PathBuf>,
    /// Search this index of the corpus (`positio index build`) instead, by --mode.
    #[arg(long)]
    index: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArg,
    /// With --index: dense, bm25 or hybrid.
    #[arg(long, value_enum, default_value = "dense", requires = "index")]
    mode: SearchMode,
    /// A BEIR directory: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv.
    #[arg(long)]
    data: PathBuf,
    /// The judgements to score against: qrels/SPLIT.tsv.
    #[arg(long, default_value = "test")]
    split: String,
    /// Documents retrieved per query.
    #[arg(long, default_value_t = 100)]
    top: usize,
    /// Write the run here as TREC's six columns (qid Q0 docid rank score tag).
    #[arg(long)]
    run: Option<PathBuf>,
    /// Write the scores as JSON here: ndcg@10, mrr@10, recall@10, recall@100, map@100, and
    /// per_query.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// A reranker (`finetune rerank`, or a one-label cross-encoder) that reorders each query's
    /// first --rerank-top documents.
    #[arg(long)]
    rerank: Option<PathBuf>,
    /// Documents per query the reranker reads.
    #[arg(long, default_value_t = 20)]
    rerank_top: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl EvalArgs {
    pub fn run(&self) -> Result<()> {
        if self.top == 0 {
            return Err(Error::config("--top", "must be at least 1"));
        }
        let index = match (&self.index, self.store.url()) {
            (Some(index), _) => Some(self.store.of(index)?),
            (None, Some(_)) => return Err(Error::config("--store", "names where --index lives")),
            (None, None) => None,
        };
        let eval = RetrievalEval {
            model: self.model.as_deref(),
            index,
            mode: self.mode,
            data: &self.data,
            split: &self.split,
            top: self.top,
            batch_size: self.batch_size,
            rerank: self.rerank.as_deref().map(|r| (r, self.rerank_top)),
        };
        let evaluation = commands::evaluate(
            &eval,
            self.run.as_deref(),
            self.json.as_deref(),
            self.device.device,
        )?;
        print!("{evaluation}");
        Ok(())
    }
}

/// `positio finetune embed`.
#[derive(clap::Args)]
pub struct FinetuneArgs {
    #[command(flatten)]
    inputs: FineTuningInputs,
    /// The development qrels of --dev: qrels/SPLIT.tsv [default: dev].
    #[arg(long)]
    dev_split: Option<String>,
    /// Word pieces per text [default: the model's max_seq_length].
    #[arg(long)]
    max_len: Option<usize>,
    /// Similarity scale of the loss [default: 20].
    #[arg(long)]
    scale: Option<f64>,
    /// Gradient cache: embed this many texts at a time, so a large --batch-size trains in the
    /// memory of a small one with the same gradients [default: 0, the whole batch at once].
    #[arg(long)]
    mini_batch: Option<usize>,
    #[command(flatten)]
    pub run: TrainingArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl FinetuneArgs {
    pub fn run(&self) -> Result<Outcome> {
        let settings = self.inputs.resolve(&self.run, |run: &mut EmbedSettings| {
            let e = &mut run.embed;
            e.dev_split = self.dev_split.clone().unwrap_or(e.dev_split.clone());
            e.max_len = self.max_len.unwrap_or(e.max_len);
            e.scale = self.scale.unwrap_or(e.scale);
            e.mini_batch = self.mini_batch.unwrap_or(e.mini_batch);
        })?;
        let run = &self.run;
        embedding::commands::finetune(&settings, &run.out, run.resume, self.device.device)
    }
}

/// `positio mine-negatives`.
#[derive(clap::Args)]
pub struct MineArgs {
    /// An embedding model directory (e.g. the one about to be fine-tuned): the pairs' own
    /// answers are embedded and searched exactly. With --index: where the index's model lies
    /// now.
    #[arg(long, required_unless_present = "index")]
    model: Option<PathBuf>,
    /// Search this index (`positio index build`) instead, by --mode: negatives come from its
    /// documents (title and text).
    #[arg(long)]
    index: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArg,
    /// With --index: dense, bm25 (lexical negatives, as BM25-mined sets) or hybrid.
    #[arg(long, value_enum, default_value = "dense", requires = "index")]
    mode: SearchMode,
    /// Training pairs (JSON Lines or TSV, as `finetune embed` reads).
    #[arg(long)]
    train: PathBuf,
    /// Where to write the pairs with their negatives (JSON Lines).
    #[arg(long)]
    out: PathBuf,
    /// Negatives per pair.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// The most similar other answers passed over first: they are often unlabelled positives.
    #[arg(long, default_value_t = 0)]
    skip: usize,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl MineArgs {
    pub fn run(&self) -> Result<()> {
        if self.count == 0 {
            return Err(Error::config("--count", "must be at least 1"));
        }
        let source = match (&self.index, &self.model) {
            (Some(index), model) => MiningSource::Index {
                store: self.store.of(index)?,
                model: model.as_deref(),
                mode: self.mode,
            },
            (None, _) if self.store.url().is_some() => {
                return Err(Error::config("--store", "names where --index lives"))
            }
            (None, Some(model)) => MiningSource::Model(model),
            (None, None) => return Err(Error::config("--model / --index", "give one")),
        };
        let mining = Mining {
            source,
            pairs: &self.train,
            count: self.count,
            skip: self.skip,
            batch_size: self.batch_size,
        };
        let mined = commands::mine_negatives(&mining, self.device.device)?;
        crate::data::pairs::write_jsonl(&self.out, &mined.pairs)?;
        eprintln!(
            "{} pairs, {} negatives each, mined among {} {}{}: {}",
            mined.pairs.len(),
            self.count,
            mined.searched,
            if self.index.is_some() {
                "indexed documents"
            } else {
                "answers"
            },
            match mined.short {
                0 => String::new(),
                n => format!(" ({n} pairs got fewer: the index ran out of other documents)"),
            },
            self.out.display()
        );
        Ok(())
    }
}

/// `positio finetune rerank`.
#[derive(clap::Args)]
pub struct RerankArgs {
    #[command(flatten)]
    inputs: FineTuningInputs,
    /// Negatives per pair drawn from other pairs' answers when the file has none [default: 3].
    #[arg(long)]
    negatives: Option<usize>,
    /// Word pieces per (query, passage) [default: 256].
    #[arg(long)]
    max_len: Option<usize>,
    #[command(flatten)]
    pub run: TrainingArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl RerankArgs {
    pub fn run(&self) -> Result<Outcome> {
        let settings = self.inputs.resolve(&self.run, |run: &mut RerankSettings| {
            let r = &mut run.rerank;
            r.negatives = self.negatives.unwrap_or(r.negatives);
            r.max_len = self.max_len.unwrap_or(r.max_len);
        })?;
        let run = &self.run;
        rerank::finetune(&settings, &run.out, run.resume, self.device.device)
    }
}
