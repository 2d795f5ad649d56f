//! Parity with Hugging Face transformers and sentence-transformers on a real checkpoint
//! (all-MiniLM-L6-v2). The reference outputs come from scripts/reference/minilm_parity.py.

mod common;
use common::*;

use positio::data::tokenizer::Tokenizer;
use positio::hf;
use positio::model::encoder::Batch;
use positio::tasks::embedding::Embedder;

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn hidden_of(t: burn::tensor::Tensor<3>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

#[test]
fn tokenizer_ids_match_transformers() {
    let fx = Fixture::open("minilm_parity.safetensors");
    let sentences: Vec<String> = serde_json::from_str(&fx.metadata("sentences")).unwrap();
    let tok = Tokenizer::load(&minilm_dir().join("tokenizer.json")).unwrap();
    for (i, s) in sentences.iter().enumerate() {
        let ids: Vec<i64> = tok
            .encode(s, 512)
            .unwrap()
            .iter()
            .map(|&t| t as i64)
            .collect();
        assert_eq!(
            ids,
            fx.i64(&format!("ids.{i}")),
            "token ids of sentence {i}"
        );
    }
}

#[test]
fn last_hidden_state_matches_bert_model() {
    let fx = Fixture::open("minilm_parity.safetensors");
    let dev = cpu();
    let model = hf::load_encoder(&minilm_dir(), &dev).unwrap();
    let sentences: Vec<String> = serde_json::from_str(&fx.metadata("sentences")).unwrap();
    let mut worst = 0f32;
    for (i, sentence) in sentences.iter().enumerate() {
        let ids: Vec<u32> = fx
            .i64(&format!("ids.{i}"))
            .iter()
            .map(|&t| t as u32)
            .collect();
        let out = hidden_of(model.forward(&Batch::new(&[ids], 0, &dev)));
        let d = max_diff(&out, &fx.f32(&format!("hidden.{i}")));
        assert!(
            d < 1e-4,
            "sentence {i} ({:?}…): max abs diff {d}",
            &sentence.chars().take(20).collect::<String>()
        );
        worst = worst.max(d);
    }
    eprintln!("worst max abs diff over single sentences: {worst:e}");
}

#[test]
fn padded_batch_of_mixed_lengths_matches_bert_model() {
    let fx = Fixture::open("minilm_parity.safetensors");
    let dev = cpu();
    let model = hf::load_encoder(&minilm_dir(), &dev).unwrap();
    let [b, s] = fx.shape("batch.ids")[..] else {
        panic!()
    };
    let ids = fx.i64("batch.ids");
    let mask = fx.i64("batch.mask");
    let seqs: Vec<Vec<u32>> = (0..b)
        .map(|r| {
            (0..s)
                .filter(|&c| mask[r * s + c] == 1)
                .map(|c| ids[r * s + c] as u32)
                .collect()
        })
        .collect();
    assert!(
        seqs.iter().map(Vec::len).min() < seqs.iter().map(Vec::len).max(),
        "batch has mixed lengths"
    );
    let out = hidden_of(model.forward(&Batch::new(&seqs, 0, &dev)));
    let reference = fx.f32("batch.hidden");
    // Only real tokens are compared: the states at padding positions carry no meaning and are
    // ill-conditioned (transformers' own f32 and f64 runs differ there by 7e-5).
    let h = out.len() / (b * s);
    let valid = |i: &usize| mask[*i / h] == 1;
    let ours: Vec<f32> = (0..out.len()).filter(valid).map(|i| out[i]).collect();
    let theirs: Vec<f32> = (0..out.len()).filter(valid).map(|i| reference[i]).collect();
    let d = max_diff(&ours, &theirs);
    eprintln!("padded batch max abs diff over real tokens: {d:e}");
    assert!(d < 1e-4, "padded batch: max abs diff {d}");
}

#[test]
fn sentence_embeddings_match_sentence_transformers() {
    let fx = Fixture::open("minilm_parity.safetensors");
    let sentences: Vec<String> = serde_json::from_str(&fx.metadata("sentences")).unwrap();
    let embedder = Embedder::load(&minilm_dir(), &cpu()).unwrap();
    assert_eq!(
        embedder.max_len as i64,
        fx.i64("st.max_seq_length")[0],
        "truncation length"
    );
    let ours: Vec<f32> = embedder
        .embed(&sentences, embedder.pooling, 3)
        .unwrap()
        .concat();
    let d = max_diff(&ours, &fx.f32("st.embedding"));
    eprintln!("sentence embedding max abs diff: {d:e}");
    assert!(d < 1e-5, "embeddings: max abs diff {d}");
}
