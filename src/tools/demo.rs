//! `positio demo`: the whole pipeline on a small built-in corpus, in seconds, with no download.
//! It trains a tokenizer, pretrains a small encoder with masked-LM, saves it as a Hugging Face
//! directory, reloads it and embeds sentences.

use crate::data::tokenizer::{train_wordpiece, TrainOptions};
use crate::model::config::{ModelConfig, PositionKind};
use crate::model::encoder::Batch;
use crate::model::heads::LanguageModel;
use crate::model::pooling::{l2_normalize, mean_pool};
use crate::rng::Rng;
use crate::runtime::{self, DeviceKind};
use crate::train::masking::{mask_tokens, MaskingConfig, SpecialTokens};
use crate::{hf, Result};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use std::path::PathBuf;

const SUBJECTS: [&str; 10] = [
    "the cat",
    "a dog",
    "my neighbour",
    "the old farmer",
    "our teacher",
    "the young girl",
    "an engineer",
    "the tired pilot",
    "a small child",
    "the baker",
];
const VERBS: [&str; 10] = [
    "sees", "likes", "builds", "paints", "carries", "follows", "sells", "finds", "cleans",
    "watches",
];
const OBJECTS: [&str; 10] = [
    "a red ball",
    "the wooden house",
    "two small boxes",
    "an old boat",
    "the green door",
    "a heavy bag",
    "the blue car",
    "three ripe apples",
    "a long letter",
    "the broken clock",
];
const PLACES: [&str; 8] = [
    "in the garden",
    "near the river",
    "at the market",
    "on the hill",
    "by the station",
    "in the kitchen",
    "under the bridge",
    "behind the school",
];
const TIMES: [&str; 6] = [
    "every morning",
    "on sunday",
    "after dinner",
    "before noon",
    "at night",
    "in winter",
];

/// A generated corpus: simple English sentences whose word order carries the meaning, so a model
/// needs positions to fill in masked words.
pub fn corpus(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut pick = |words: &[&'static str]| words[rng.below(words.len())];
    (0..n)
        .map(|i| {
            let (s, v, o, p, t) = (
                pick(&SUBJECTS),
                pick(&VERBS),
                pick(&OBJECTS),
                pick(&PLACES),
                pick(&TIMES),
            );
            match i % 3 {
                0 => format!("{s} {v} {o} {p} {t} ."),
                1 => format!("{t} , {s} {v} {o} {p} ."),
                _ => format!("{p} , {s} {v} {o} ."),
            }
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub out: PathBuf,
    pub position: PositionKind,
    pub steps: usize,
    pub seed: u64,
    pub device: DeviceKind,
}

/// What the demo measured.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub params: usize,
    pub first_loss: f32,
    pub last_loss: f32,
    pub accuracy_before: f64,
    pub accuracy_after: f64,
}

/// Masked-token accuracy of `model` on `seqs` (a fixed masking).
fn masked_accuracy(
    model: &LanguageModel,
    seqs: &[Vec<u32>],
    special: &SpecialTokens,
    seed: u64,
) -> f64 {
    let device = model.bert.embeddings.layer_norm.weight.device();
    let mut rng = Rng::new(seed);
    let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
    let m = mask_tokens(
        seqs,
        len,
        &MaskingConfig {
            mask_share: 1.0,
            random_share: 0.0,
            ..Default::default()
        },
        special,
        &mut rng,
    );
    let batch = Batch::new(&m.inputs, 0, &device);
    let t = m.targets(&device);
    let predicted = model.logits(&batch, t.positions).argmax(1).reshape([-1]);
    let correct = predicted.equal(t.targets).int().sum().into_scalar::<i64>();
    correct as f64 / m.targets.len() as f64
}

pub fn run(opts: &DemoOptions) -> Result<DemoReport> {
    let train = corpus(4000, opts.seed);
    let held_out = corpus(200, opts.seed + 1);
    println!(
        "1/5 tokenizer: training WordPiece on {} generated sentences",
        train.len()
    );
    let tokenizer = train_wordpiece(
        train.iter(),
        TrainOptions {
            vocab_size: 200,
            cased: false,
            min_frequency: 2,
        },
    )?;
    let encode = |texts: &[String]| {
        texts
            .iter()
            .map(|t| tokenizer.encode(t, 64))
            .collect::<Result<Vec<_>>>()
    };
    let (train_ids, held_ids) = (encode(&train)?, encode(&held_out)?);
    println!("    vocabulary {} word pieces", tokenizer.vocab_size());

    let config = ModelConfig {
        vocab_size: tokenizer.vocab_size(),
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 128,
        max_position_embeddings: 64,
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        architectures: vec!["BertForMaskedLM".into()],
        ..ModelConfig::small(tokenizer.vocab_size(), opts.position)
    };
    let device = runtime::training_device(opts.device)?;
    device.seed(opts.seed);
    crate::kernels::seed_dropout(opts.seed);
    let mut model = LanguageModel::new(&config, &device);
    println!(
        "2/5 model: {} layers, hidden {}, {} heads, {} positions, {} parameters",
        config.num_hidden_layers,
        config.hidden_size,
        config.num_attention_heads,
        opts.position.name(),
        model.num_params()
    );

    let special = SpecialTokens {
        mask_id: 4,
        never: vec![0, 2, 3],
        vocab_size: tokenizer.vocab_size(),
        continuation: tokenizer.continuation_flags(),
    };
    let accuracy_before = masked_accuracy(&model.valid(), &held_ids, &special, 7);
    println!(
        "3/5 masked-LM pretraining, {} steps of 32 sentences",
        opts.steps
    );
    let mut optim = AdamWConfig::new()
        .with_weight_decay(0.01)
        .with_epsilon(1e-8)
        .init();
    let mut rng = Rng::new(opts.seed);
    let bar = indicatif::ProgressBar::new(opts.steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "    {bar:40} {pos}/{len} steps, loss {msg}, {elapsed} elapsed, ETA {eta}",
        )
        .unwrap(),
    );
    let (mut first_loss, mut last_loss) = (f32::NAN, f32::NAN);
    for step in 0..opts.steps {
        let rows: Vec<Vec<u32>> = (0..32)
            .map(|_| train_ids[rng.below(train_ids.len())].clone())
            .collect();
        let len = rows.iter().map(Vec::len).max().unwrap();
        let m = mask_tokens(&rows, len, &MaskingConfig::default(), &special, &mut rng);
        let loss = model.loss(&Batch::new(&m.inputs, 0, &device), &m.targets(&device));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = 2e-3 * (1.0 - step as f64 / opts.steps as f64);
        model = optim.step(lr, model.clone(), grads);
        last_loss = loss.into_scalar::<f32>();
        if step == 0 {
            first_loss = last_loss;
        }
        bar.set_message(format!("{last_loss:.3}"));
        bar.inc(1);
    }
    bar.finish();
    let trained = model.valid();
    let accuracy_after = masked_accuracy(&trained, &held_ids, &special, 7);
    println!("    loss {first_loss:.3} → {last_loss:.3}; held-out masked-token accuracy {:.1} % → {:.1} %", 100.0 * accuracy_before, 100.0 * accuracy_after);

    let dir = &opts.out;
    hf::save(&trained, &config, dir, None)?;
    hf::save_tokenizer(&tokenizer, &config, dir)?;
    let inference = runtime::device(opts.device)?;
    let reloaded = hf::load_encoder(dir, &inference)?;
    let probe = Batch::new(&held_ids[..4], 0, &inference);
    let same = trained.bert.forward(&probe).into_data() == reloaded.forward(&probe).into_data();
    println!(
        "4/5 saved {} (config.json, model.safetensors, tokenizer.json); reloaded: {}",
        dir.display(),
        if same {
            "identical outputs"
        } else {
            "OUTPUTS DIFFER"
        }
    );
    if !same {
        return Err(crate::Error::file(
            dir,
            "the reloaded model does not reproduce the trained one",
        ));
    }

    let sentences = [
        "the cat sees a red ball in the garden .",
        "a dog sees a red ball in the garden .",
        "the baker sells three ripe apples at the market .",
    ];
    let ids = sentences
        .iter()
        .map(|s| tokenizer.encode(s, 64))
        .collect::<Result<Vec<_>>>()?;
    let batch = Batch::new(&ids, 0, &inference);
    let emb = l2_normalize(mean_pool(reloaded.forward(&batch), &batch));
    let sim = emb
        .clone()
        .matmul(emb.transpose())
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    println!("5/5 sentence embeddings (cosine similarity):");
    for (i, s) in sentences.iter().enumerate() {
        println!("    [{i}] {s}");
    }
    println!("    sim[0,1] = {:.3}   sim[0,2] = {:.3}", sim[1], sim[2]);
    Ok(DemoReport {
        params: model.num_params(),
        first_loss,
        last_loss,
        accuracy_before,
        accuracy_after,
    })
}
