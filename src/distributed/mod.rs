//! The process group of data-parallel training: which rank this process is, how many there
//! are, and the few collective operations the trainer needs (sum a gradient buffer, sum a few
//! counters, gather one number from every rank, wait for all).
//!
//! The engine is one users already run, not a protocol of ours: MPI (`--distributed mpi`,
//! built with `--features mpi`, started with `mpiexec -n N positio …`). The group is
//! process-wide, as MPI itself is: the command line [`start`]s it before a training command,
//! the trainer asks [`group`], and [`stop_on`] ends it (a process without a group is one rank of
//! one). What the trainer does with it (sharding batches, weighting and averaging gradients,
//! checking parameters) is in `train::data_parallel`.

#[cfg(feature = "mpi")]
mod mpi;

use crate::rng::{fnv1a, FNV_OFFSET};
use crate::{Error, Result};
use std::sync::{Mutex, OnceLock};

/// How ranks talk to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// MPI (needs a build with `--features mpi`; start every rank with `mpiexec -n N`).
    Mpi,
}

/// Collective operations over all ranks. Every rank calls them in the same order with buffers
/// of the same length.
pub(crate) trait Collective: Send + Sync {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// The element-wise sum of `values` over the ranks.
    fn all_reduce_sum(&self, values: &[f32]) -> Vec<f32>;
    /// Sums `values` element-wise over the ranks, in place.
    fn all_reduce_f64(&self, values: &mut [f64]);
    /// Every rank's `value`, in rank order.
    fn all_gather_u64(&self, value: u64) -> Vec<u64>;
    /// Returns when every rank has called it.
    fn barrier(&self);
    /// Stops every rank of the job with `code` (MPI_Abort).
    fn abort(&self, code: i32) -> !;
}

/// This process's place in the job.
pub struct Group {
    collective: Option<Box<dyn Collective>>,
}

impl Group {
    /// One process alone.
    const SINGLE: Group = Group { collective: None };

    pub fn rank(&self) -> usize {
        self.collective.as_ref().map_or(0, |c| c.rank())
    }

    pub fn size(&self) -> usize {
        self.collective.as_ref().map_or(1, |c| c.size())
    }

    /// Whether this rank writes the run directory, checkpoints and logs (rank 0).
    pub fn is_writer(&self) -> bool {
        self.rank() == 0
    }

    /// The collective operations, when there is more than this process.
    pub(crate) fn collective(&self) -> Option<&dyn Collective> {
        self.collective.as_deref().filter(|c| c.size() > 1)
    }

    /// Logs (rank 0) each rank's process id and host, so that an MPI launcher's report of a
    /// dead process id names its rank. Every rank calls it.
    pub fn log_ranks(&self) {
        let Some(c) = self.collective() else {
            return;
        };
        let pids = c.all_gather_u64(std::process::id() as u64);
        let hosts = c.all_gather_u64(fnv1a(hostname().bytes(), FNV_OFFSET));
        if self.is_writer() {
            let ranks: Vec<String> = pids
                .iter()
                .zip(&hosts)
                .enumerate()
                .map(|(r, (p, h))| {
                    let place = if *h == hosts[0] {
                        ""
                    } else {
                        " (another host)"
                    };
                    format!("rank {r} pid {p}{place}")
                })
                .collect();
            tracing::info!(
                "{} ranks, rank 0 on {}: {}",
                pids.len(),
                hostname(),
                ranks.join(", ")
            );
        }
    }

    /// Waits for every rank (nothing alone).
    pub fn barrier(&self) {
        if let Some(c) = self.collective() {
            c.barrier();
        }
    }
}

static GROUP: OnceLock<Group> = OnceLock::new();
/// Keeps MPI initialised while the command runs; dropping it finalises MPI.
static RUNTIME: Mutex<Option<Box<dyn Send>>> = Mutex::new(None);

/// The process group: the one [`start`] made, else this process alone.
pub fn group() -> &'static Group {
    GROUP.get().unwrap_or(&Group::SINGLE)
}

/// Joins the job `backend` names (once per process).
pub fn start(backend: Backend) -> Result<&'static Group> {
    if let Some(g) = GROUP.get() {
        return Ok(g);
    }
    match backend {
        #[cfg(feature = "mpi")]
        Backend::Mpi => {
            let (collective, runtime) = mpi::start()?;
            *RUNTIME
                .lock()
                .map_err(|_| Error::invalid("MPI state poisoned"))? = Some(runtime);
            Ok(GROUP.get_or_init(|| Group {
                collective: Some(collective),
            }))
        }
        #[cfg(not(feature = "mpi"))]
        Backend::Mpi => Err(Error::unsupported(
            "--distributed mpi needs positio built with `--features mpi` (and an MPI: Debian's mpich, libmpich-dev, libclang-dev)",
        )),
    }
}

/// Ends the job's communication after a command: MPI_Finalize when it succeeded; when it
/// failed on this rank, nothing (`main` reports the error, then [`abort_job`] stops the others,
/// which would otherwise wait for this rank forever).
pub fn stop_on<T>(outcome: &Result<T>) {
    if outcome.is_ok() {
        if let Ok(mut runtime) = RUNTIME.lock() {
            runtime.take();
        }
    }
}

/// Stops every rank of the job with `code` when this one failed (MPI_Abort); nothing when
/// there is no group.
pub fn abort_job(code: i32) {
    if let Some(c) = group().collective() {
        c.abort(code);
    }
}

/// "rank R: " in a job of several ranks, else nothing: what `main` puts before an error.
pub fn rank_prefix() -> String {
    let g = group();
    if g.size() > 1 {
        format!("rank {} of {}: ", g.rank(), g.size())
    } else {
        String::new()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

/// Rank `rank`'s contiguous share of `n` items split over `size` ranks: `start..end`, sizes
/// differing by at most one.
pub fn share(n: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    (rank * n / size)..((rank + 1) * n / size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_disjoint_contiguous_and_cover_everything() {
        for n in [0, 1, 7, 16, 33] {
            for size in 1..=5 {
                let parts: Vec<_> = (0..size).map(|r| share(n, r, size)).collect();
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts[size - 1].end, n);
                for w in parts.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
                assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
            }
        }
    }

    #[test]
    fn a_process_alone_is_rank_zero_of_one() {
        let g = Group::SINGLE;
        assert_eq!((g.rank(), g.size(), g.is_writer()), (0, 1, true));
        assert!(g.collective().is_none());
    }
}
