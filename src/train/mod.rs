//! Training machinery shared by every task: the trainer loop (checkpoints, exact resume, NaN
//! guard, interruption), run directories, AdamW with its schedule, and the masking objectives.

pub mod masking;
pub mod optim;
pub mod run_dir;
pub mod schedule;
pub mod trainer;
