//! Around the tasks: the end-to-end demo, learning-curve plots, benchmarks, and the HTTP load
//! generator (with its minimal client) for the server benchmarks.

pub mod bench;
pub mod demo;
pub mod http;
pub mod load;
pub mod plot;
