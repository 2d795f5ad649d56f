//! Process-wide runtime setup: the allocator, flush-to-zero floats on every compute thread,
//! and the compute device (a CUDA device only after [`cuda_probe`] found the driver and GPU).
//!
//! Subnormal (denormal) floats cost Intel cores a ~100-cycle microcode assist per operation;
//! fine-tuning from pretrained weights at small learning rates produces many of them (Adam
//! moments, softmax tails, tiny gradients) and ran ~13× slower on an Intel Xeon. [`init`] sets
//! flush-to-zero and denormals-are-zero on the calling thread and on every thread of rayon's
//! global pool, the only pool that positio, burn's `flex` backend and the `gemm` crate compute
//! on. Results change only for values below 1.2e-38, where f32 has lost its precision anyway.

pub mod cuda_probe;

use crate::kernels::Precision;
use crate::{Error, Result};
/// The compute device [`device`] returns (burn's), named for crates that hold one.
pub use burn::tensor::Device;
use std::sync::Once;

/// burn allocates and frees large activation buffers every step; with the system allocator
/// (or mimalloc's default delayed purging) the process spends ~40 % of a training step in page
/// faults. mimalloc with purging disabled keeps those pages mapped.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

static INIT: Once = Once::new();

/// `mi_option_purge_delay` in mimalloc v2's `mimalloc.h` (libmimalloc-sys names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Configures the allocator and flushes subnormal floats to zero on this thread and on every
/// rayon worker (present and future). Called by `main` first and by [`device`]; idempotent.
pub fn init() {
    INIT.call_once(|| {
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
        flush_subnormals();
        // Workers started from now on set the flags as they start; if the global pool already
        // exists (a library user touched rayon first), set them on its threads instead.
        let mut pool = rayon::ThreadPoolBuilder::new().start_handler(|_| flush_subnormals());
        if let Some(n) = threads_per_rank() {
            pool = pool.num_threads(n);
        }
        let built = pool.build_global();
        if built.is_err() {
            rayon::broadcast(|_| flush_subnormals());
        }
    });
}

/// Compute threads for one of several ranks that an MPI launcher started on this machine
/// (MPICH's `MPI_LOCALNRANKS`, Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`): the cores shared
/// among them, so that ranks do not oversubscribe the cores. `None` (rayon's own choice: all
/// cores, or `RAYON_NUM_THREADS`) when the user set `RAYON_NUM_THREADS` or no launcher did.
fn threads_per_rank() -> Option<usize> {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return None;
    }
    let local: usize = ["MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (local > 1).then(|| (cores / local).max(1))
}

/// Sets flush-to-zero and denormals-are-zero for the calling thread (x86-64: MXCSR bits 15
/// and 6; AArch64: FPCR.FZ). A no-op on other targets.
pub(crate) fn flush_subnormals() {
    #[cfg(target_arch = "x86_64")]
    {
        let csr = float_control();
        // SAFETY: ldmxcsr with the current value plus the FTZ and DAZ bits; no exception is unmasked.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &(csr | FTZ_DAZ), options(nostack, readonly))
        };
    }
    #[cfg(target_arch = "aarch64")]
    {
        let fpcr = float_control();
        // SAFETY: writes FPCR with the FZ bit (24) added.
        unsafe {
            std::arch::asm!("msr fpcr, {}", in(reg) fpcr | (1u64 << 24), options(nomem, nostack))
        };
    }
}

/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) bits.
#[cfg(target_arch = "x86_64")]
pub const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

/// The calling thread's floating-point control register (x86-64: MXCSR).
#[cfg(target_arch = "x86_64")]
pub fn float_control() -> u32 {
    let mut csr = 0u32;
    // SAFETY: stmxcsr writes 4 bytes to a valid local.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
    csr
}

/// The calling thread's floating-point control register (AArch64: FPCR).
#[cfg(target_arch = "aarch64")]
pub fn float_control() -> u64 {
    let fpcr: u64;
    // SAFETY: reads FPCR.
    unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack)) };
    fpcr
}

/// Lets a closed standard output end the process quietly, as `head` after `positio info`
/// expects (the standard library ignores SIGPIPE, and `println!` then panics on the broken pipe).
/// Not for the server, whose sockets must get the error instead of the signal.
pub(crate) fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal, before any thread writes output.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Which compute backend to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// burn's `flex` CPU backend (all cores through rayon).
    Cpu,
    /// A CUDA GPU by index (requires the `cuda` cargo feature).
    Cuda(usize),
}

impl std::str::FromStr for DeviceKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(i)) => Ok(DeviceKind::Cuda(i)),
                _ => Err(Error::config(
                    "--device",
                    format!("unknown device '{s}': use cpu, cuda or cuda:N"),
                )),
            },
        }
    }
}

/// Whether `precision` can run on `device` for a command that trains or not: int8 is for
/// inference, on the CPU (the command line and the Python package ask the same).
pub fn check_precision(precision: Precision, device: DeviceKind, trains: bool) -> Result<()> {
    if precision != Precision::Int8 {
        return Ok(());
    }
    if trains {
        return Err(Error::Unsupported(
            "--precision int8 is for inference (embed, predict, eval, serve, search, …); \
             training runs in fp32 or bf16"
                .into(),
        ));
    }
    if device != DeviceKind::Cpu {
        return Err(Error::Unsupported(
            "--precision int8 runs on the CPU (--device cpu)".into(),
        ));
    }
    Ok(())
}

/// The device for inference (no autodiff).
pub fn device(kind: DeviceKind) -> Result<Device> {
    init();
    match kind {
        DeviceKind::Cpu => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda(i) => {
            cuda_probe::check_cuda(i)?;
            Ok(Device::cuda(i))
        }
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda(_) => Err(Error::unsupported(
            "this positio was built without GPU support: rebuild with `cargo build --release --features cuda` (README: GPU)",
        )),
    }
}

/// The device for training: `kind` with automatic differentiation. Every trainer takes its
/// device from here.
pub(crate) fn training_device(kind: DeviceKind) -> Result<Device> {
    Ok(device(kind)?.autodiff())
}

/// The CPU device, the default everywhere.
pub fn cpu() -> Device {
    device(DeviceKind::Cpu).expect("the CPU backend is always compiled in")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse() {
        assert_eq!("cpu".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        assert_eq!("cuda".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(3));
        for bad in ["tpu", "cuda:", "cuda:-1", "CPU"] {
            let e = bad.parse::<DeviceKind>().unwrap_err();
            assert!(
                matches!(&e, Error::Config { key, .. } if key == "--device"),
                "{e:?}"
            );
            assert!(
                e.to_string().contains(&format!("unknown device '{bad}'")),
                "{e}"
            );
        }
    }
}
