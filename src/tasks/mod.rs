//! What a user trains or runs, each a [`crate::train::trainer::Task`] or an inference service:
//! masked / causal LM pretraining, sentence embeddings, named-entity recognition, sequence
//! classification, news recommendation.

pub mod answer;
pub mod classify;
pub mod embedding;
pub mod ner;
pub(crate) mod perplexity;
pub mod pretrain;
pub mod recommend;
pub mod rerank;
pub mod retrieval;
pub(crate) mod scores;

/// Where an `eval` command writes besides its report on the console.
pub struct EvalOutputs<'a> {
    /// The predictions, in the task's own format (see the command's `--output`).
    pub predictions: Option<&'a std::path::Path>,
    /// The report as JSON.
    pub json: Option<&'a std::path::Path>,
}
