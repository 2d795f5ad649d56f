//! Named-entity recognition: fine-tuning as a [`crate::train::trainer::Task`], evaluation with
//! seqeval's scores, and prediction on CoNLL files or raw text.
//!
//! - [`mod@windows`]: word / word-piece alignment, overlapping windows for long sentences.
//! - [`model`]: a batch's loss, and every word's prediction (the one inference path).
//! - [`decode`]: raw text split into words, tags joined into entities.
//! - [`task`]: settings and the training task.
//! - [`seqeval`]: entity- and token-level scores, equal to seqeval's.
//! - [`commands`]: `finetune`, `eval` and `predict`.

pub mod commands;
pub mod decode;
pub mod model;
pub mod seqeval;
pub mod task;
pub mod windows;

pub use decode::{entities_of, split_words, Aggregation, Entity, Word};
pub use model::{NerModel, Tagged};
pub use task::{NerConfig, NerSettings, NerTask};
pub use windows::{windows, word_pieces, Window};
