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
