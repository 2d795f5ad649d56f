//! positio: Transformer encoders with every mainstream positional encoding, in Rust.
//!
//! The model code is backend-free (burn's dispatch `Tensor`); `runtime::device` picks the
//! CPU (`flex`) or, with the `cuda` feature, the GPU backend. Fused CPU kernels with
//! hand-written backward passes live in `kernels`, each beside its composite twin.

pub mod attention;
pub mod bench;
pub mod config;
pub mod conll;
pub mod corpus;
pub mod crf;
pub mod dataset;
pub mod demo;
pub mod embed;
pub mod encoder;
pub mod error;
pub mod finetune;
pub mod heads;
pub mod hf;
pub mod io;
pub mod kernels;
pub mod layers;
pub mod metrics;
pub mod ner;
pub mod objectives;
pub mod optim;
pub mod plot;
pub mod position;
pub mod pretrain;
pub mod rng;
pub mod runtime;
pub mod tokenizer;
pub mod trainer;
pub mod wordpiece;

pub use error::{Error, Result};
