//! AdamW over a whole model, with its state keyed by parameter name so that it can be saved in
//! a checkpoint and restored exactly, global-norm gradient clipping, no weight decay on biases
//! and LayerNorm weights (as BERT), an optional larger learning rate for the task head (the
//! parameters outside the pretrained encoder, which start from scratch), and optional layer-wise
//! learning-rate decay (lower layers, which hold the most general features, move less: ULMFiT's
//! discriminative fine-tuning, ELECTRA's and DeBERTa's recipes).

use crate::hf::naming::{map_named, parameter_names, NamedMapper};
use crate::hf::Weights;
use crate::kernels::{adamw, AdamWStep};
use crate::{Error, Result};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// The task head's learning rate as a multiple of the scheduled one (1: the same).
    pub head_lr_scale: f64,
    /// Layer-wise decay: with L encoder layers, layer l (0-based) learns at decay^(L − 1 − l)
    /// of the scheduled rate, the embeddings at decay^L, the pooler at 1, the head at
    /// `head_lr_scale` (1: off).
    pub layer_lr_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            head_lr_scale: 1.0,
            layer_lr_decay: 1.0,
        }
    }
}

/// Whether a parameter belongs to the pretrained encoder (`bert.…`, or a bare encoder's
/// `embeddings.…`, `encoder.…`, `pooler.…`) rather than to a task head (classifier, CRF,
/// masked-LM head).
pub fn in_encoder(name: &str) -> bool {
    ["bert.", "embeddings.", "encoder.", "pooler."]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The index of the encoder layer a parameter belongs to (`….encoder.layer.N.…`), if any.
pub fn encoder_layer(name: &str) -> Option<usize> {
    let (_, rest) = name.split_once("encoder.layer.")?;
    rest.split('.').next()?.parse().ok()
}

/// The multiple of the scheduled learning rate a parameter learns at, in a model with `layers`
/// encoder layers: the head's scale outside the encoder; inside it `layer_lr_decay` raised to
/// the parameter's distance from the top (the pooler 0, layer l `layers − 1 − l`, everything
/// below the first layer, embeddings and shared position biases, `layers`).
pub fn lr_scale(name: &str, layers: usize, config: &AdamWConfig) -> f64 {
    if !in_encoder(name) {
        return config.head_lr_scale;
    }
    if config.layer_lr_decay == 1.0 || name.contains("pooler.") {
        return 1.0;
    }
    let below_top = match encoder_layer(name) {
        Some(l) => layers.saturating_sub(l + 1),
        None => layers,
    };
    config.layer_lr_decay.powi(below_top as i32)
}

/// Whether a parameter is decayed: not biases, not LayerNorm weights.
pub fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains("LayerNorm") || name.contains("layer_norm"))
}

/// First and second moments per parameter name, and the number of updates made.
pub struct AdamW {
    pub config: AdamWConfig,
    pub t: u64,
    /// Encoder layers of the model being trained, counted at the first step.
    layers: Option<usize>,
    moments: BTreeMap<String, (Tensor<1>, Tensor<1>)>,
}

/// The L2 norm of all gradients together (`clip_grad_norm_`'s total norm).
pub(crate) fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    struct Sum<'a> {
        grads: &'a GradientsParams,
        total: f64,
    }
    impl ModuleVisitor for Sum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.total += g.square().sum().into_scalar::<f64>();
            }
        }
    }
    let mut s = Sum { grads, total: 0.0 };
    module.visit(&mut s);
    s.total.sqrt()
}

/// The factor that scales gradients of global norm `norm` down to `max_norm`
/// (`clip_grad_norm_`'s rule; 1 when `max_norm` is 0, i.e. no clipping).
pub(crate) fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    if max_norm > 0.0 && norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        AdamW {
            config,
            t: 0,
            layers: None,
            moments: BTreeMap::new(),
        }
    }

    /// One update of every parameter that has a gradient; `grad_scale` multiplies the gradients
    /// first (clipping, accumulation averaging).
    pub fn step<M: Module>(
        &mut self,
        model: M,
        mut grads: GradientsParams,
        lr: f64,
        grad_scale: f64,
    ) -> M {
        self.t += 1;
        let layers = *self.layers.get_or_insert_with(|| {
            parameter_names(&model)
                .iter()
                .filter_map(|(_, name)| encoder_layer(name))
                .max()
                .map_or(0, |l| l + 1)
        });
        map_named(
            model,
            Update {
                opt: self,
                grads: &mut grads,
                lr,
                layers,
                grad_scale,
            },
        )
        .0
    }

    /// Saves the moments (`m.NAME`, `v.NAME`) as safetensors.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut params = Vec::with_capacity(2 * self.moments.len());
        for (name, (m, v)) in &self.moments {
            params.push((format!("m.{name}"), m.clone().into_data().convert::<f32>()));
            params.push((format!("v.{name}"), v.clone().into_data().convert::<f32>()));
        }
        Weights::save(&params, path)
    }

    /// Restores moments saved by [`AdamW::save`] for `model`'s parameters.
    pub fn load<M: Module>(&mut self, path: &Path, t: u64, model: &M) -> Result<()> {
        let weights = Weights::load(path)?;
        let device = first_device(model);
        self.moments.clear();
        for (_, name) in parameter_names(model) {
            let get = |k: String| -> Result<Tensor<1>> {
                let data: &TensorData = weights
                    .get(&k)
                    .ok_or_else(|| Error::file(path, format!("missing optimizer state '{k}'")))?;
                let n = data.num_elements();
                Ok(Tensor::<1>::from_data(data.clone(), &device).reshape([n]))
            };
            if weights.contains(&format!("m.{name}")) {
                let (m, v) = (get(format!("m.{name}"))?, get(format!("v.{name}"))?);
                self.moments.insert(name, (m, v));
            }
        }
        self.t = t;
        Ok(())
    }
}

fn first_device<M: Module>(model: &M) -> burn::tensor::Device {
    model
        .devices()
        .into_iter()
        .next()
        .map(|d| d.inner())
        .unwrap_or_else(crate::runtime::cpu)
}

struct Update<'a> {
    opt: &'a mut AdamW,
    grads: &'a mut GradientsParams,
    lr: f64,
    layers: usize,
    grad_scale: f64,
}

impl NamedMapper for Update<'_> {
    fn map<const D: usize>(&mut self, name: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return param;
        };
        let name = name.to_string();
        let (id, value, mapper) = param.consume();
        let shape = value.dims();
        let flat = |t: Tensor<D>| t.reshape([-1]);
        let p = flat(value.inner());
        let n = p.dims()[0];
        let (m, v) = self.opt.moments.remove(&name).unwrap_or_else(|| {
            (
                Tensor::zeros([n], (&p.device(), p.dtype())),
                Tensor::zeros([n], (&p.device(), p.dtype())),
            )
        });
        let c = self.opt.config;
        let step = AdamWStep {
            lr: self.lr * lr_scale(&name, self.layers, &c),
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: if decays(&name) { c.weight_decay } else { 0.0 },
            t: self.opt.t,
            grad_scale: self.grad_scale,
        };
        let (p, m, v) = adamw(p, flat(grad.inner()), m, v, step);
        self.opt.moments.insert(name, (m, v));
        let p = p.reshape(shape).autodiff().require_grad();
        Param::from_mapped_value(id, p, mapper)
    }
}
