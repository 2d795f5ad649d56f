//! Training machinery shared by every task: the settings and their flags (`config`), the one
//! epoch sampler, the trainer loop (checkpoints, exact resume, NaN guard, interruption), run
//! directories, AdamW with its schedule, and the masking objectives.

pub mod config;
pub mod masking;
pub mod optim;
pub mod run_dir;
pub mod sampler;
pub mod schedule;
pub mod trainer;
