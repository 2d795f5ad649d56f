//! [`Collective`] over MPI through the `mpi` crate (rsmpi), which binds the system's MPI
//! (MPICH, Open MPI, a cluster's vendor MPI) rather than reimplementing it: ring and tree
//! all-reduce, shared-memory transport between ranks of one machine and the cluster's
//! interconnect come from the MPI the user already runs.
//!
//! MPI is initialised with `MPI_THREAD_FUNNELED`: only the thread that started it (the
//! trainer's) calls MPI; the compute threads never do.

use super::Collective;
use crate::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;

struct Mpi {
    world: SimpleCommunicator,
}

// SAFETY: the communicator is a handle that MPI allows any thread to use under
// MPI_THREAD_FUNNELED as long as calls come from the initialising thread, which is the only
// thread positio calls it from (the training loop); `Send`/`Sync` only let the handle sit in
// the process-wide group.
unsafe impl Send for Mpi {}
unsafe impl Sync for Mpi {}

/// Held for its drop (MPI_Finalize).
struct Runtime {
    _universe: Universe,
}
// SAFETY: the universe is only dropped (MPI_Finalize) by the thread that made it, at the end of
// the command (`distributed::stop_on`).
unsafe impl Send for Runtime {}

pub(super) fn start() -> Result<(Box<dyn Collective>, Box<dyn Send>)> {
    let (universe, _) = mpi::initialize_with_threading(Threading::Funneled)
        .ok_or_else(|| Error::invalid("MPI was already initialised in this process"))?;
    let world = universe.world();
    Ok((
        Box::new(Mpi { world }),
        Box::new(Runtime {
            _universe: universe,
        }),
    ))
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum(&self, values: &[f32]) -> Vec<f32> {
        let mut sum = vec![0f32; values.len()];
        self.world
            .all_reduce_into(values, &mut sum[..], SystemOperation::sum());
        sum
    }

    fn all_reduce_f64(&self, values: &mut [f64]) {
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn all_gather_u64(&self, value: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.size()];
        self.world.all_gather_into(&value, &mut all[..]);
        all
    }

    fn barrier(&self) {
        self.world.barrier();
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
