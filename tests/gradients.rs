//! Gradient checks of the model: the attention block under every positional encoding (with
//! padding, bidirectional and causal) against finite differences in f64, and gradients reaching
//! every parameter of the full model.

mod common;
use common::*;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{DType, Int, Tensor, TensorData};
use positio::model::config::{ModelConfig, NormPosition, PositionKind};
use positio::model::encoder::{Batch, EncoderModel};
use positio::model::heads::{LanguageModel, LmTargets};
use positio::model::layers::cast;

fn tiny(position: PositionKind, causal: bool) -> ModelConfig {
    ModelConfig {
        vocab_size: 23,
        hidden_size: 8,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 16,
        max_position_embeddings: 16,
        relative_attention_num_buckets: 8,
        relative_attention_max_distance: 16,
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        position_embedding_type: position,
        causal,
        ..Default::default()
    }
}

/// Two sequences of lengths 5 and 3: the second is padded.
fn padded_batch(device: &burn::tensor::Device) -> Batch {
    Batch::new(&[vec![1, 5, 9, 3, 2], vec![1, 7, 2]], 0, device)
}

#[derive(Clone, Copy, Debug)]
enum Which {
    Query,
    Key,
    Value,
    Output,
    T5Table,
}

fn param(model: &EncoderModel, which: Which) -> Tensor<2> {
    let a = &model.encoder.layer[0].attention;
    match which {
        Which::Query => a.query.weight.val(),
        Which::Key => a.key.weight.val(),
        Which::Value => a.value.weight.val(),
        Which::Output => a.output.weight.val(),
        Which::T5Table => model
            .encoder
            .relative_attention_bias
            .as_ref()
            .unwrap()
            .weight
            .val(),
    }
}

fn with_param(model: &EncoderModel, which: Which, v: &[f64]) -> EncoderModel {
    let mut m = model.clone();
    let dims = param(model, which).dims();
    let t = Param::from_tensor(f64_tensor(
        v.to_vec(),
        dims,
        &model.embeddings.layer_norm.weight.device(),
    ));
    let a = &mut m.encoder.layer[0].attention;
    match which {
        Which::Query => a.query.weight = t,
        Which::Key => a.key.weight = t,
        Which::Value => a.value.weight = t,
        Which::Output => a.output.weight = t,
        Which::T5Table => m.encoder.relative_attention_bias.as_mut().unwrap().weight = t,
    }
    m
}

/// sum(attention(x) * upstream) through the first layer's attention block.
fn attention_loss(
    model: &EncoderModel,
    batch: &Batch,
    x: Tensor<3>,
    upstream: &Tensor<3>,
) -> Tensor<1> {
    let ctx = model.attention_context(batch);
    (model.encoder.layer[0].attention.forward(x, &ctx) * upstream.clone()).sum()
}

fn scalar(t: Tensor<1>) -> f64 {
    to_vec(t)[0]
}

#[test]
fn attention_block_gradients_match_finite_differences_under_every_encoding() {
    let dev = cpu().autodiff();
    let batch = padded_batch(&dev);
    let (b, s, h) = (2, 5, 8);
    let x0 = values(b * s * h, 21, 1.0);
    let upstream = f64_tensor(values(b * s * h, 22, 1.0), [b, s, h], &dev);
    for &position in PositionKind::all() {
        for causal in [false, true] {
            let model = cast(EncoderModel::new(&tiny(position, causal), &dev), DType::F64);
            let x = f64_tensor(x0.clone(), [b, s, h], &dev).require_grad();
            let grads = attention_loss(&model, &batch, x.clone(), &upstream).backward();
            let label = format!("{} causal={causal}", position.name());

            let dx = to_vec(x.grad(&grads).expect("x has a gradient"));
            let f = |xv: &[f64]| {
                scalar(attention_loss(
                    &model,
                    &batch,
                    f64_tensor(xv.to_vec(), [b, s, h], &dev),
                    &upstream,
                ))
            };
            let idx = sample_indices(x0.len(), 20);
            let num = numeric_grad(&f, &x0, &idx, 1e-5);
            let ana: Vec<f64> = idx.iter().map(|&i| dx[i]).collect();
            let err = max_abs_diff(&num, &ana);
            assert!(
                err < 1e-7,
                "{label}: dx vs finite differences, max error {err}"
            );

            let mut params = vec![Which::Query, Which::Key, Which::Value, Which::Output];
            if position == PositionKind::T5Bias {
                params.push(Which::T5Table);
            }
            for which in params {
                let p0 = to_vec(param(&model, which));
                let analytic = to_vec(
                    param(&model, which)
                        .grad(&grads)
                        .unwrap_or_else(|| panic!("{label}: {which:?} has no gradient")),
                );
                let f = |pv: &[f64]| {
                    let m = with_param(&model, which, pv);
                    let x = f64_tensor(x0.clone(), [b, s, h], &dev);
                    scalar(attention_loss(&m, &batch, x, &upstream))
                };
                let idx = sample_indices(p0.len(), 12);
                let num = numeric_grad(&f, &p0, &idx, 1e-5);
                let ana: Vec<f64> = idx.iter().map(|&i| analytic[i]).collect();
                let err = max_abs_diff(&num, &ana);
                assert!(
                    err < 1e-7,
                    "{label}: {which:?} vs finite differences, max error {err}"
                );
                assert!(
                    ana.iter().any(|g| g.abs() > 1e-6),
                    "{label}: {which:?} gradient is all zero"
                );
            }
        }
    }
}

#[test]
fn padding_does_not_change_real_tokens() {
    // The same sequence alone and padded in a batch gives the same states on its tokens.
    let dev = cpu();
    for &position in PositionKind::all() {
        for causal in [false, true] {
            let model = cast(EncoderModel::new(&tiny(position, causal), &dev), DType::F64);
            let alone = to_vec(model.forward(&Batch::new(&[vec![1, 7, 2]], 0, &dev)));
            let padded = to_vec(model.forward(&padded_batch(&dev)));
            let second: Vec<f64> = padded[5 * 8..5 * 8 + 3 * 8].to_vec();
            assert!(
                max_abs_diff(&alone, &second) < 1e-10,
                "{} causal={causal}",
                position.name()
            );
        }
    }
}

#[test]
fn causal_attention_ignores_the_future() {
    let dev = cpu();
    for &position in PositionKind::all() {
        let model = cast(EncoderModel::new(&tiny(position, true), &dev), DType::F64);
        let a = to_vec(model.forward(&Batch::new(&[vec![1, 5, 9, 3, 2]], 0, &dev)));
        let b = to_vec(model.forward(&Batch::new(&[vec![1, 5, 9, 11, 17]], 0, &dev)));
        // The first three positions only see the (identical) first three tokens.
        assert!(
            max_abs_diff(&a[..3 * 8], &b[..3 * 8]) < 1e-12,
            "{}",
            position.name()
        );
        assert!(
            max_abs_diff(&a[3 * 8..], &b[3 * 8..]) > 1e-6,
            "{}",
            position.name()
        );
    }
}

/// Collects the gradient norm of every parameter.
struct GradNorms<'a> {
    grads: &'a burn::tensor::Gradients,
    out: Vec<(String, Option<f64>)>,
    path: Vec<String>,
}

impl ModuleVisitor for GradNorms<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.into());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let norm = param
            .val()
            .grad(self.grads)
            .map(|g| to_vec(g).iter().map(|v| v * v).sum::<f64>().sqrt());
        self.out.push((self.path.join("."), norm));
    }
}

#[test]
fn every_parameter_receives_a_gradient() {
    let dev = cpu().autodiff();
    for &position in PositionKind::all() {
        for norm in [NormPosition::Post, NormPosition::Pre] {
            for causal in [false, true] {
                let config = ModelConfig {
                    norm_position: norm,
                    ..tiny(position, causal)
                };
                let model = LanguageModel::new(&config, &dev);
                let batch = Batch::new(&[vec![1, 5, 9, 3, 2, 4], vec![1, 7, 2, 8]], 0, &dev);
                let positions =
                    Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 2, 4, 7, 9], [5]), &dev);
                let targets = Tensor::<1, Int>::from_data(
                    TensorData::new(vec![3i64, 11, 4, 6, 19], [5]),
                    &dev,
                );
                let loss = model.loss(&batch, &LmTargets { positions, targets });
                let grads = loss.backward();
                let mut v = GradNorms {
                    grads: &grads,
                    out: Vec::new(),
                    path: Vec::new(),
                };
                model.visit(&mut v);
                assert!(v.out.len() > 20);
                // BERT's pooler is saved for Hugging Face's `BertModel` but not on the LM's path.
                for (name, g) in v.out.into_iter().filter(|(n, _)| !n.contains("pooler")) {
                    let label = format!("{} {norm:?} causal={causal}: {name}", position.name());
                    let g = g.unwrap_or_else(|| panic!("{label} has no gradient"));
                    assert!(g > 0.0 && g.is_finite(), "{label}: gradient norm {g}");
                }
            }
        }
    }
}
