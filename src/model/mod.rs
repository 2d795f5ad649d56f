//! The network: configuration, encoder stack, attention, layers, positional encodings and task
//! heads. Modules are named after the checkpoint keys they load (candle's `bert.rs` style).

pub mod attention;
pub mod block;
pub mod config;
pub mod embeddings;
pub mod encoder;
pub mod heads;
pub mod layers;
pub mod pooling;
pub mod position;
pub mod recurrent;
