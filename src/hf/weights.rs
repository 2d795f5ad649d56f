//! safetensors files: read any float dtype as f32, write f32 atomically, and apply a file's
//! tensors to a module by Hugging Face name with every missing or mis-shaped tensor reported.

use super::naming::{map_named, NamedMapper};
use crate::{Error, Result};
use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The tensors of a safetensors file, converted to f32.
pub struct Weights {
    pub path: PathBuf,
    tensors: HashMap<String, TensorData>,
}

impl Weights {
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let shape = view.shape().to_vec();
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                Dtype::F16 => data
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                Dtype::BF16 => data
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
                    .collect(),
                // Integer buffers (e.g. BERT's `position_ids`) are not parameters.
                _ => continue,
            };
            tensors.insert(name, TensorData::new(values, shape));
        }
        Ok(Weights {
            path: path.to_path_buf(),
            tensors,
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&TensorData> {
        self.tensors.get(name)
    }

    /// The names of the floating-point tensors, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tensors.keys().cloned().collect();
        names.sort();
        names
    }

    /// Writes `params` (name, f32 data) as a safetensors file, atomically.
    pub fn save(params: &[(String, TensorData)], path: &Path) -> Result<()> {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = params
            .iter()
            .map(|(name, data)| {
                let view = safetensors::tensor::TensorView::new(
                    Dtype::F32,
                    data.shape().to_vec(),
                    data.as_bytes(),
                )
                .expect("shape matches data");
                (name.clone(), view)
            })
            .collect();
        let metadata = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
        let bytes = safetensors::serialize(views, metadata)
            .map_err(|e| Error::file(path, format!("cannot serialise: {e}")))?;
        crate::io::write_atomic(path, &bytes)
    }

    /// Replaces every float parameter of `module` by the tensor of the same Hugging Face name
    /// (with `prefix` prepended), checking shapes. Fails naming every missing or mis-shaped tensor.
    pub(crate) fn apply<M: Module>(&self, module: M, prefix: &str) -> Result<M> {
        let (module, m) = map_named(
            module,
            Apply {
                weights: self,
                prefix,
                errors: Vec::new(),
            },
        );
        if m.errors.is_empty() {
            Ok(module)
        } else {
            Err(Error::file(&self.path, m.errors.join("; ")))
        }
    }
}

struct Apply<'a> {
    weights: &'a Weights,
    prefix: &'a str,
    errors: Vec<String>,
}

impl NamedMapper for Apply<'_> {
    fn map<const D: usize>(&mut self, name: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = format!("{}{name}", self.prefix);
        let (id, old, mapper) = param.consume();
        let expected = old.dims().to_vec();
        let value = match self.weights.tensors.get(&name) {
            None => {
                self.errors
                    .push(format!("missing tensor '{name}' (shape {expected:?})"));
                old
            }
            Some(data) if data.shape().as_slice() != expected.as_slice() => {
                self.errors.push(format!(
                    "tensor '{name}' has shape {:?}, the config needs {expected:?}",
                    data.shape().as_slice()
                ));
                old
            }
            Some(data) => Tensor::from_data(data.clone(), (&old.device(), old.dtype()))
                .set_require_grad(old.is_require_grad()),
        };
        Param::from_mapped_value(id, value, mapper)
    }
}
