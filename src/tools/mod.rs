//! Around the tasks: the end-to-end demo, learning-curve plots, and benchmarks.

pub mod bench;
pub mod demo;
pub mod plot;
