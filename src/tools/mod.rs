//! Around the tasks: the end-to-end demo, learning-curve plots, benchmarks, and the HTTP load
//! generator (with its minimal client) for the server benchmarks.

pub(crate) mod bench;
pub mod demo;
pub mod http;
pub(crate) mod load;
pub(crate) mod plot;
