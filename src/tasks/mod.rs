//! What a user trains or runs, each a [`crate::train::trainer::Task`] or an inference service:
//! masked / causal LM pretraining, sentence embeddings, named-entity recognition, sequence
//! classification.

pub mod classify;
pub mod embedding;
pub mod ner;
pub mod perplexity;
pub mod pretrain;
pub mod scores;
