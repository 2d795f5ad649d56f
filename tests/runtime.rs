//! Flush-to-zero: after `runtime::init`, the calling thread and every rayon worker (where burn's
//! `flex` backend, `gemm` and positio's kernels compute) flush subnormal floats to zero, so no
//! thread pays the microcode assist that made fine-tuning 13× slower on Intel cores.

use positio::runtime;
use std::hint::black_box;

/// A product whose exact result is subnormal, and a subnormal input times one.
fn subnormal_results() -> (f32, f32) {
    (
        black_box(1e-30f32) * black_box(1e-10f32),
        black_box(1e-40f32) * black_box(1.0f32),
    )
}

#[test]
fn every_compute_thread_flushes_subnormals() {
    // Without the flags both results are subnormal (non-zero): the test would fail.
    let (a, b) = std::thread::spawn(subnormal_results).join().unwrap();
    assert!(
        a > 0.0 && b > 0.0,
        "a fresh thread keeps subnormals: {a:e} {b:e}"
    );

    runtime::init();
    assert_eq!(
        subnormal_results(),
        (0.0, 0.0),
        "the thread that called init"
    );
    let workers = rayon::broadcast(|_| subnormal_results());
    assert_eq!(workers.len(), rayon::current_num_threads());
    for (i, r) in workers.iter().enumerate() {
        assert_eq!(*r, (0.0, 0.0), "rayon worker {i}");
    }
    #[cfg(target_arch = "x86_64")]
    {
        let csr = rayon::broadcast(|_| runtime::float_control());
        assert!(
            csr.iter().all(|c| c & runtime::FTZ_DAZ == runtime::FTZ_DAZ),
            "MXCSR on the workers: {csr:x?}"
        );
    }
}

/// What `--device cuda` answers on a machine without a usable driver or GPU (checked before
/// burn's CUDA runtime, which would panic): the messages, deterministically, on any machine.
#[test]
fn a_missing_cuda_driver_or_gpu_is_a_clear_error() {
    use positio::runtime::cuda_probe::{check_index, check_nvrtc, cuda_device_count};
    let e = cuda_device_count(&["libpositio-no-such-driver.so.1"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no CUDA driver found") && e.contains("--device cpu"),
        "{e}"
    );
    // A library that loads but is not a driver.
    #[cfg(target_os = "linux")]
    {
        let e = cuda_device_count(&["libm.so.6"]).unwrap_err().to_string();
        assert!(e.contains("not a CUDA driver library"), "{e}");
    }
    let e = check_index(0, 0).unwrap_err().to_string();
    assert!(e.contains("sees no GPU"), "{e}");
    let e = check_index(2, 2).unwrap_err().to_string();
    assert!(
        e.contains("no GPU at index 2") && e.contains("cuda:1"),
        "{e}"
    );
    assert!(check_index(1, 2).is_ok());
    let e = check_nvrtc(&["libpositio-no-such-nvrtc.so"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("NVRTC not found"), "{e}");
    #[cfg(target_os = "linux")]
    assert!(check_nvrtc(&["libpositio-no-such-nvrtc.so", "libm.so.6"]).is_ok());
}
