//! Whether this machine can run CUDA: the driver library, its initialisation, the GPU count.
//!
//! Asked before burn touches CUDA: burn's CUDA runtime (cubecl, cudarc) panics with a
//! backtrace when the driver is missing, and a user should read "no CUDA driver found" and get
//! a non-zero exit instead. Compiled into every build (it only loads a library by name), so that
//! the tests exercise it on machines without a GPU.

use crate::{Error, Result};

/// The driver library's names, most specific first.
#[cfg(all(feature = "cuda", windows))]
pub(crate) const DRIVER_LIBRARIES: &[&str] = &["nvcuda.dll"];
#[cfg(all(feature = "cuda", not(windows)))]
pub(crate) const DRIVER_LIBRARIES: &[&str] = &["libcuda.so.1", "libcuda.so"];

/// NVRTC, which compiles positio's GPU kernels at run time (CUDA 13, 12, unversioned).
#[cfg(all(feature = "cuda", windows))]
pub(crate) const NVRTC_LIBRARIES: &[&str] = &["nvrtc64_130_0.dll", "nvrtc64_120_0.dll"];
#[cfg(all(feature = "cuda", not(windows)))]
pub(crate) const NVRTC_LIBRARIES: &[&str] = &["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];

type CuInit = unsafe extern "C" fn(flags: u32) -> i32;
type CuDeviceGetCount = unsafe extern "C" fn(count: *mut i32) -> i32;

/// What a driver error code means, for the codes a missing or broken setup gives.
fn meaning(code: i32) -> &'static str {
    match code {
        3 => "not initialised",
        34 => "CUDA stub library loaded instead of the driver",
        35 => "the driver is older than this CUDA runtime",
        100 => "no CUDA-capable device is detected",
        101 => "invalid device ordinal",
        999 => "unknown error",
        _ => "see cudaError / CUresult in the CUDA documentation",
    }
}

/// The number of GPUs the CUDA driver sees, loading the driver from the first of `libraries`
/// that loads.
pub fn cuda_device_count(libraries: &[&str]) -> Result<usize> {
    // SAFETY: loading the NVIDIA driver library runs only its own initialisers.
    let loaded = libraries.iter().find_map(|name| {
        unsafe { libloading::Library::new(name) }
            .ok()
            .map(|l| (name, l))
    });
    let Some((name, library)) = loaded else {
        return Err(Error::invalid(format!(
            "no CUDA driver found ({} cannot be loaded): install the NVIDIA driver, or run with --device cpu",
            libraries.join(", ")
        )));
    };
    let call = |code: i32, what: &str| -> Result<()> {
        if code == 0 {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "the CUDA driver ({name}) failed {what}: error {code} ({}); run with --device cpu",
                meaning(code)
            )))
        }
    };
    // SAFETY: the symbols have these C signatures in every CUDA driver (cuda.h); a library
    // without them is refused before any call.
    unsafe {
        let not_driver =
            |e: libloading::Error| Error::file(name, format!("not a CUDA driver library: {e}"));
        let init: libloading::Symbol<CuInit> = library.get(b"cuInit\0").map_err(not_driver)?;
        let count: libloading::Symbol<CuDeviceGetCount> =
            library.get(b"cuDeviceGetCount\0").map_err(not_driver)?;
        call(init(0), "to initialise")?;
        let mut n = 0;
        call(count(&mut n), "to count the GPUs")?;
        Ok(n.max(0) as usize)
    }
}

/// An error unless GPU `index` exists among `count`.
pub fn check_index(index: usize, count: usize) -> Result<()> {
    match count {
        0 => Err(Error::config(
            "--device",
            "the CUDA driver sees no GPU on this machine; run with --device cpu",
        )),
        n if index >= n => Err(Error::config(
            "--device",
            format!(
                "no GPU at index {index}: this machine has {n} (cuda:0{})",
                if n > 1 {
                    format!(" … cuda:{}", n - 1)
                } else {
                    String::new()
                }
            ),
        )),
        _ => Ok(()),
    }
}

/// An error unless one of `libraries` (NVRTC's names) loads.
pub fn check_nvrtc(libraries: &[&str]) -> Result<()> {
    // SAFETY: as for the driver; NVRTC's initialisers only set up the library.
    if libraries
        .iter()
        .any(|name| unsafe { libloading::Library::new(name) }.is_ok())
    {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "NVRTC not found ({} cannot be loaded): positio compiles its GPU kernels with it at run time; install the CUDA runtime (e.g. the cuda-nvrtc package), or run with --device cpu",
        libraries.join(", ")
    )))
}

/// An error unless this machine has CUDA GPU `index` and NVRTC.
#[cfg(feature = "cuda")]
pub(crate) fn check_cuda(index: usize) -> Result<()> {
    check_index(index, cuda_device_count(DRIVER_LIBRARIES)?)?;
    check_nvrtc(NVRTC_LIBRARIES)
}
