//! Training machinery shared by every task: the settings and their flags (`config`), the one
//! epoch sampler, the trainer loop (checkpoints, exact resume, NaN guard, interruption), run
//! directories, AdamW with its schedule, the masking objectives, and the data-parallel side of
//! the loop (shards, gradient all-reduce).

pub mod config;
pub(crate) mod data_parallel;
pub mod masking;
pub mod optim;
pub mod run_dir;
pub mod sampler;
pub mod schedule;
pub mod trainer;
