//! Process-wide runtime setup: the allocator and the compute device.

use crate::{Error, Result};
use burn::tensor::Device;
use std::sync::Once;

/// burn allocates and frees large activation buffers every step; with the system allocator
/// (or mimalloc's default delayed purging) the process spends ~40 % of a training step in page
/// faults. mimalloc with purging disabled keeps those pages mapped.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

static INIT: Once = Once::new();

/// `mi_option_purge_delay` in mimalloc v2's `mimalloc.h` (libmimalloc-sys names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Configures the allocator. Called by [`device`]; idempotent.
pub fn init() {
    INIT.call_once(|| unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    });
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
                _ => Err(Error::invalid(format!("unknown device '{s}': use cpu, cuda or cuda:N"))),
            },
        }
    }
}

/// The device for inference (no autodiff).
pub fn device(kind: DeviceKind) -> Result<Device> {
    init();
    match kind {
        DeviceKind::Cpu => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda(i) => Ok(Device::cuda(i)),
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda(_) => Err(Error::invalid(
            "this positio was built without GPU support: rebuild with `--features cuda`",
        )),
    }
}

/// The CPU device, the default everywhere.
pub fn cpu() -> Device {
    device(DeviceKind::Cpu).expect("the CPU backend is always compiled in")
}
