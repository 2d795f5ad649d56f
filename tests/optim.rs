//! The optimiser: AdamW against a scalar reference of PyTorch's formula, the fused kernel
//! against its twin, decay groups, state save/restore, the schedule.

mod common;
use common::*;

use burn::optim::GradientsParams;
use burn::tensor::DType;
use positio::hf::naming::parameter_names;
use positio::kernels::{self, AdamWStep};
use positio::model::config::{ModelConfig, PositionKind};
use positio::model::encoder::Batch;
use positio::model::heads::LanguageModel;
use positio::train::optim::{decays, encoder_layer, in_encoder, AdamW, AdamWConfig};
use positio::train::schedule::{learning_rate, Schedule};

/// PyTorch's AdamW, one scalar at a time.
fn reference(p: &mut [f64], m: &mut [f64], v: &mut [f64], g: &[f64], s: &AdamWStep) {
    for i in 0..p.len() {
        let gi = g[i] * s.grad_scale;
        p[i] *= 1.0 - s.lr * s.weight_decay;
        m[i] = s.beta1 * m[i] + (1.0 - s.beta1) * gi;
        v[i] = s.beta2 * v[i] + (1.0 - s.beta2) * gi * gi;
        let c1 = 1.0 - s.beta1.powi(s.t as i32);
        let c2 = 1.0 - s.beta2.powi(s.t as i32);
        p[i] -= s.lr / c1 * m[i] / (v[i].sqrt() / c2.sqrt() + s.eps);
    }
}

#[test]
fn fused_and_composite_adamw_match_the_reference() {
    let dev = cpu();
    let n = 1000;
    let (mut p, mut m, mut v) = (values(n, 1, 1.0), vec![0.0; n], vec![0.0; n]);
    let (mut pf, mut mf, mut vf) = (
        f64_tensor(p.clone(), [n], &dev),
        f64_tensor(m.clone(), [n], &dev),
        f64_tensor(v.clone(), [n], &dev),
    );
    let (mut pc, mut mc, mut vc) = (pf.clone(), mf.clone(), vf.clone());
    for t in 1..=5u64 {
        let g = values(n, 10 + t, 0.5);
        let s = AdamWStep {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
            t,
            grad_scale: 0.7,
        };
        reference(&mut p, &mut m, &mut v, &g, &s);
        let gt = f64_tensor(g, [n], &dev);
        (pf, mf, vf) = kernels::adamw(pf, gt.clone(), mf, vf, s);
        (pc, mc, vc) = kernels::adamw_composite(pc, gt, mc, vc, s);
    }
    for (name, ours, twin, expected) in [("p", pf, pc, p), ("m", mf, mc, m), ("v", vf, vc, v)] {
        let (ours, twin) = (to_vec(ours), to_vec(twin));
        assert!(
            max_abs_diff(&ours, &expected) < 1e-12,
            "{name}: fused vs reference {}",
            max_abs_diff(&ours, &expected)
        );
        assert!(
            max_abs_diff(&twin, &expected) < 1e-12,
            "{name}: composite vs reference"
        );
    }
}

#[test]
fn no_decay_on_biases_and_layer_norms() {
    assert!(decays("bert.encoder.layer.0.attention.self.query.weight"));
    assert!(decays("bert.embeddings.word_embeddings.weight"));
    assert!(!decays("bert.encoder.layer.0.attention.self.query.bias"));
    assert!(!decays("bert.embeddings.LayerNorm.weight"));
    assert!(!decays("cls.predictions.transform.LayerNorm.weight"));
    assert!(!decays("cls.predictions.bias"));
}

fn tiny() -> ModelConfig {
    ModelConfig {
        vocab_size: 40,
        hidden_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 32,
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        ..ModelConfig::small(40, PositionKind::Rope)
    }
}

fn step(model: LanguageModel, opt: &mut AdamW) -> LanguageModel {
    let dev = cpu().autodiff();
    let batch = Batch::new(&[vec![2, 5, 7, 9, 3], vec![2, 11, 3]], 0, &dev);
    let targets = positio::train::masking::lm_targets(&[1, 2, 6], &[13, 17, 19], &dev);
    let loss = model.loss(&batch, &targets);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    opt.step(model, grads, 1e-2, 1.0)
}

#[test]
fn saved_optimizer_state_resumes_exactly() {
    let dev = cpu().autodiff();
    dev.seed(3);
    let model = LanguageModel::new(&tiny(), &dev);
    let mut opt = AdamW::new(AdamWConfig::default());
    let initial = positio::hf::named_parameters(&model);
    let mut a = step(step(model, &mut opt), &mut opt);
    assert_ne!(
        positio::hf::named_parameters(&a),
        initial,
        "the steps moved the parameters"
    );
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    opt.save(&dir.join("optimizer.safetensors")).unwrap();
    let mut restored = AdamW::new(AdamWConfig::default());
    restored
        .load(&dir.join("optimizer.safetensors"), opt.t, &a)
        .unwrap();
    let b = step(a.clone(), &mut restored);
    a = step(a, &mut opt);
    let pa = positio::hf::named_parameters(&a);
    let pb = positio::hf::named_parameters(&b);
    assert_eq!(
        pa, pb,
        "a step after restoring the state equals the uninterrupted step"
    );
    assert_eq!(parameter_names(&a).len(), pa.len());
}

#[test]
fn optimizer_runs_in_f64() {
    let dev = cpu().autodiff();
    let model = positio::model::layers::cast(LanguageModel::new(&tiny(), &dev), DType::F64);
    let mut opt = AdamW::new(AdamWConfig::default());
    let model = step(model, &mut opt);
    assert_eq!(model.head.bias.val().dtype(), DType::F64);
    assert_eq!(
        model.bert.encoder.layer[0]
            .attention
            .query
            .weight
            .val()
            .dtype(),
        DType::F64
    );
}

#[test]
fn schedule_warms_up_then_decays_to_zero() {
    let lr = |s, cos: bool| {
        learning_rate(
            s,
            100,
            10,
            1.0,
            if cos {
                Schedule::Cosine
            } else {
                Schedule::Linear
            },
        )
    };
    assert!((lr(0, false) - 0.1).abs() < 1e-12);
    assert!((lr(9, false) - 1.0).abs() < 1e-12);
    assert!((lr(10, false) - 1.0).abs() < 1e-12);
    assert!((lr(55, false) - 0.5).abs() < 1e-12);
    assert!((lr(55, true) - 0.5).abs() < 1e-12);
    assert!(
        (lr(32, true) - 0.5 * (1.0 + (std::f64::consts::PI * 22.0 / 90.0).cos())).abs() < 1e-12
    );
    assert!(lr(100, false).abs() < 1e-12 && lr(100, true).abs() < 1e-12);
}

#[test]
fn the_head_and_layer_learning_rates_scale_their_parameters() {
    assert!(in_encoder("bert.encoder.layer.0.output.dense.weight"));
    assert!(in_encoder("embeddings.word_embeddings.weight"));
    assert!(!in_encoder("classifier.weight") && !in_encoder("crf.transitions"));
    assert!(!in_encoder("cls.predictions.bias"));
    assert_eq!(
        encoder_layer("bert.encoder.layer.11.output.dense.weight"),
        Some(11)
    );
    assert_eq!(encoder_layer("encoder.layer.x.output"), None);
    assert_eq!(
        encoder_layer("bert.embeddings.word_embeddings.weight"),
        None
    );
    let dev = cpu().autodiff();
    dev.seed(3);
    let model = LanguageModel::new(
        &ModelConfig {
            num_hidden_layers: 3,
            ..tiny()
        },
        &dev,
    );
    let initial = positio::hf::named_parameters(&model);
    let moved = |head_lr_scale: f64, layer_lr_decay: f64| {
        let mut opt = AdamW::new(AdamWConfig {
            weight_decay: 0.0,
            head_lr_scale,
            layer_lr_decay,
            ..AdamWConfig::default()
        });
        positio::hf::named_parameters(&step(model.clone(), &mut opt))
    };
    let (same, scaled) = (moved(1.0, 1.0), moved(10.0, 0.5));
    let (mut heads, mut per_layer) = (0, [0; 4]);
    for (name, start) in &initial {
        let values = |d: &burn::tensor::TensorData| d.try_to_vec::<f32>().unwrap();
        let delta = |after: &Vec<(String, burn::tensor::TensorData)>| -> Vec<f64> {
            let (_, v) = after.iter().find(|(n, _)| n == name).unwrap();
            let (v, start) = (values(v), values(start));
            v.iter()
                .zip(&start)
                .map(|(a, b)| f64::from(a - b))
                .collect()
        };
        let (d1, d_scaled) = (delta(&same), delta(&scaled));
        // The first AdamW step is linear in the learning rate when nothing decays: the head at
        // 10×, the top layer (2) at 1, layer 1 at 0.5, layer 0 at 0.25, the embeddings at 0.125.
        let factor = if !in_encoder(name) {
            heads += 1;
            10.0
        } else if name.contains("encoder.layer.2.") {
            per_layer[3] += 1;
            1.0
        } else if name.contains("encoder.layer.1.") {
            per_layer[2] += 1;
            0.5
        } else if name.contains("encoder.layer.0.") {
            per_layer[1] += 1;
            0.25
        } else {
            per_layer[0] += 1;
            0.125
        };
        let expected: Vec<f64> = d1.iter().map(|d| d * factor).collect();
        assert!(max_abs_diff(&d_scaled, &expected) < 1e-5, "{name}");
    }
    assert!(heads > 0, "the language model has a head");
    assert!(per_layer.iter().all(|&n| n > 0), "{per_layer:?}");
}
