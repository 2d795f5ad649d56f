//! Unit tests of the positional encodings themselves.

mod common;
use common::*;

use positio::model::config::{RopeScaling, RopeScalingKind};
use positio::model::position::{alibi_slopes, apply_rope, sinusoidal_table, t5_bucket, Rope};

#[test]
fn sinusoidal_values_at_chosen_positions() {
    let (len, d) = (50, 16);
    let t = sinusoidal_table(len, d);
    let at = |p: usize, i: usize| t[p * d + i] as f64;
    // Position 0: sin(0) = 0 on even dimensions, cos(0) = 1 on odd ones.
    for i in 0..d {
        assert_eq!(at(0, i), if i % 2 == 0 { 0.0 } else { 1.0 });
    }
    // PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d)), by hand:
    assert!((at(1, 0) - 1f64.sin()).abs() < 1e-7);
    assert!((at(1, 1) - 1f64.cos()).abs() < 1e-7);
    // d = 16, i = 2: 10000^(4/16) = 10; position 7 → angle 0.7.
    assert!((at(7, 4) - 0.7f64.sin()).abs() < 1e-7);
    assert!((at(7, 5) - 0.7f64.cos()).abs() < 1e-7);
    // i = 4: 10000^(8/16) = 100; position 49 → angle 0.49.
    assert!((at(49, 8) - 0.49f64.sin()).abs() < 1e-7);
    assert!((at(49, 9) - 0.49f64.cos()).abs() < 1e-7);
    // The last pair: i = 7, 10000^(14/16).
    let a = 33.0 / 10000f64.powf(14.0 / 16.0);
    assert!((at(33, 15) - a.cos()).abs() < 1e-7);
}

/// q·k after rotating q to position m and k to position n.
fn rotated_dot(rope: &Rope, q: &[f64], k: &[f64], m: usize, n: usize) -> f64 {
    let dev = cpu();
    let d = q.len();
    let len = m.max(n) + 1;
    let (cos, sin) = rope.tables(len, &dev);
    let place = |v: &[f64], p: usize| {
        let mut x = vec![0.0; len * d];
        x[p * d..(p + 1) * d].copy_from_slice(v);
        to_vec(apply_rope(f64_tensor(x, [1, 1, len, d], &dev), &cos, &sin))[p * d..(p + 1) * d]
            .to_vec()
    };
    let (qr, kr) = (place(q, m), place(k, n));
    qr.iter().zip(&kr).map(|(a, b)| a * b).sum()
}

#[test]
fn rope_scores_depend_only_on_the_offset() {
    let d = 16;
    let (q, k) = (values(d, 11, 1.0), values(d, 12, 1.0));
    for scaling in [
        None,
        Some(RopeScaling {
            kind: RopeScalingKind::Linear,
            factor: 4.0,
        }),
        Some(RopeScaling {
            kind: RopeScalingKind::Ntk,
            factor: 4.0,
        }),
    ] {
        let rope = Rope::new(d, 10000.0, scaling);
        for offset in [0usize, 1, 5, 37] {
            let base = rotated_dot(&rope, &q, &k, offset, 0);
            for shift in [3usize, 20, 90] {
                let shifted = rotated_dot(&rope, &q, &k, offset + shift, shift);
                assert!(
                    (base - shifted).abs() < 1e-5,
                    "{scaling:?}: offset {offset}, shift {shift}: {base} vs {shifted}"
                );
            }
        }
        // ... and does depend on it.
        assert!((rotated_dot(&rope, &q, &k, 1, 0) - rotated_dot(&rope, &q, &k, 7, 0)).abs() > 1e-3);
    }
    // Rotation preserves norms.
    let rope = Rope::new(d, 10000.0, None);
    assert!((rotated_dot(&rope, &q, &q, 9, 9) - q.iter().map(|v| v * v).sum::<f64>()).abs() < 1e-5);
}

#[test]
fn rope_context_extension_rescales_angles() {
    let d = 8;
    let plain = Rope::new(d, 10000.0, None);
    let linear = Rope::new(
        d,
        10000.0,
        Some(RopeScaling {
            kind: RopeScalingKind::Linear,
            factor: 2.0,
        }),
    );
    let ntk = Rope::new(
        d,
        10000.0,
        Some(RopeScaling {
            kind: RopeScalingKind::Ntk,
            factor: 2.0,
        }),
    );
    // Position interpolation: position 2p scaled equals position p unscaled, in every pair.
    for i in 0..d / 2 {
        assert!((linear.angle(10, i) - plain.angle(5, i)).abs() < 1e-12);
    }
    // NTK: the base becomes theta * factor^(d/(d-2)); the first pair (frequency 1) is unchanged,
    // the last one slows down by exactly factor: theta'^(-(d-2)/d) = theta^(-(d-2)/d) / factor.
    assert!((ntk.angle(10, 0) - plain.angle(10, 0)).abs() < 1e-12);
    assert!((ntk.angle(10, d / 2 - 1) - plain.angle(10, d / 2 - 1) / 2.0).abs() < 1e-12);
}

#[test]
fn alibi_slopes_follow_the_paper() {
    let eight: Vec<f64> = (1..=8).map(|i| 1.0 / 2f64.powi(i)).collect();
    assert_eq!(alibi_slopes(8), eight);
    // 12 heads: the 8 slopes of 8 heads, then every other slope of 16 heads: 2^-0.5, 2^-1.5, ...
    let mut twelve = eight.clone();
    twelve.extend([0.5, 1.5, 2.5, 3.5].iter().map(|e| 2f64.powf(-e)));
    let got = alibi_slopes(12);
    assert_eq!(got.len(), 12);
    for (a, b) in got.iter().zip(&twelve) {
        assert!((a - b).abs() < 1e-15, "{got:?} vs {twelve:?}");
    }
    // 4 heads: 2^-2, 2^-4, 2^-6, 2^-8.
    assert_eq!(alibi_slopes(4), vec![0.25, 0.0625, 0.015625, 0.00390625]);
}

#[test]
fn t5_buckets_match_the_reference_function() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/t5_buckets.json");
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let rel: Vec<i64> = serde_json::from_value(fx["relative_positions"].clone()).unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let bidirectional = case["bidirectional"].as_bool().unwrap();
        let nb = case["num_buckets"].as_u64().unwrap() as usize;
        let md = case["max_distance"].as_u64().unwrap() as usize;
        let expected: Vec<usize> = serde_json::from_value(case["buckets"].clone()).unwrap();
        let got: Vec<usize> = rel
            .iter()
            .map(|&r| t5_bucket(r, bidirectional, nb, md))
            .collect();
        assert_eq!(
            got, expected,
            "bidirectional {bidirectional}, {nb} buckets, max distance {md}"
        );
    }
}
