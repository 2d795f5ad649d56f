//! Pretraining from raw text: tokenizer round trip through Python, masking statistics, corpus
//! errors, resume after a kill equals an uninterrupted run, the NaN guard, Ctrl-C, plots.

mod common;
use common::{
    assert_learned, kill_after_checkpoint, positio_command as positio, positio_on_full_disk, tmp,
};

use positio::rng::Rng;
use positio::tools::demo::corpus;
use positio::train::masking::{mask_tokens, next_token_targets, MaskingConfig, SpecialTokens};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A small corpus file of generated sentences, one per line.
fn corpus_file(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("corpus.txt");
    std::fs::write(&path, corpus(n, 5).join("\n")).unwrap();
    path
}

/// Flags of a tiny, fast pretraining run.
fn tiny_run(corpus: &Path, out: &Path, steps: usize) -> Vec<String> {
    [
        "pretrain",
        "--corpus",
        corpus.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--vocab-size",
        "200",
        "--layers",
        "2",
        "--hidden",
        "32",
        "--heads",
        "2",
        "--ffn",
        "64",
        "--max-len",
        "32",
        "--batch-size",
        "8",
        "--lr",
        "3e-3",
        "--steps",
        &steps.to_string(),
        "--save-every",
        "5",
        "--eval-every",
        "10",
        "--log-every",
        "1",
        "--position",
        "rope",
        "--seed",
        "7",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run_ok(args: &[String]) -> String {
    let out = positio().args(args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "positio {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout.into()
}

#[test]
fn tokenizer_round_trips_through_python() {
    let dir = tmp("tok");
    let path = corpus_file(&dir, 500);
    let tok_path = dir.join("tokenizer.json");
    run_ok(
        &[
            "tokenizer",
            "train",
            "--corpus",
            path.to_str().unwrap(),
            "--vocab-size",
            "300",
            "--out",
            tok_path.to_str().unwrap(),
        ]
        .map(String::from),
    );
    let tok = positio::data::tokenizer::Tokenizer::load(&tok_path).unwrap();
    let texts = [
        "The cat sees a red ball .",
        "Unseen wörds: Zürich 😀 東京",
        "after dinner , the baker sells three ripe apples",
    ];
    let ours: Vec<Vec<u32>> = texts.iter().map(|t| tok.encode(t, 512).unwrap()).collect();
    let script = format!(
        r#"
import json, sys
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast
texts = json.loads(sys.argv[1])
t = Tokenizer.from_file({path:?})
hf = PreTrainedTokenizerFast(tokenizer_file={path:?})
print(json.dumps([[t.encode(x).ids for x in texts], [hf(x)["input_ids"] for x in texts], t.token_to_id("[MASK]"), t.get_vocab_size()]))
"#,
        path = tok_path.to_str().unwrap()
    );
    let out = Command::new("python3")
        .args(["-c", &script, &serde_json::to_string(&texts).unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (tk_ids, hf_ids, mask_id, vocab): (Vec<Vec<u32>>, Vec<Vec<u32>>, u32, usize) =
        serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tk_ids, ours, "tokenizers (Python) gives the same ids");
    assert_eq!(
        hf_ids, ours,
        "transformers' PreTrainedTokenizerFast gives the same ids"
    );
    assert_eq!(mask_id, 4);
    assert_eq!(vocab, tok.vocab_size());
    // Cased by default: "The" and "the" differ.
    assert_ne!(tok.encode("The", 8).unwrap(), tok.encode("the", 8).unwrap());
}

fn specials(vocab: usize, continuation: Vec<bool>) -> SpecialTokens {
    SpecialTokens {
        mask_id: 4,
        never: vec![0, 2, 3],
        vocab_size: vocab,
        continuation,
    }
}

#[test]
fn masking_follows_bert_statistics() {
    let vocab = 1000;
    let mut rng = Rng::new(1);
    let seqs: Vec<Vec<u32>> = (0..2000)
        .map(|_| {
            std::iter::once(2)
                .chain((0..98).map(|_| 5 + rng.below(vocab - 5) as u32))
                .chain(std::iter::once(3))
                .collect()
        })
        .collect();
    let m = mask_tokens(
        &seqs,
        100,
        &MaskingConfig::default(),
        &specials(vocab, vec![false; vocab]),
        &mut Rng::new(9),
    );
    let candidates = 2000.0 * 98.0;
    let share = m.positions.len() as f64 / candidates;
    assert!((share - 0.15).abs() < 0.005, "selected {share}");
    let (mut masked, mut kept, mut random) = (0, 0, 0);
    for (&p, &t) in m.positions.iter().zip(&m.targets) {
        let (row, col) = (p / 100, p % 100);
        assert_eq!(seqs[row][col], t, "the target is the original token");
        assert!(col != 0 && col != 99, "[CLS] / [SEP] are never selected");
        match m.inputs[row][col] {
            4 => masked += 1,
            x if x == t => kept += 1,
            _ => random += 1,
        }
    }
    let n = m.positions.len() as f64;
    // A random replacement equal to the original counts as kept (1/995 of the 10 %).
    assert!(
        (masked as f64 / n - 0.8).abs() < 0.01,
        "mask share {}",
        masked as f64 / n
    );
    assert!(
        (random as f64 / n - 0.1).abs() < 0.01,
        "random share {}",
        random as f64 / n
    );
    assert!(
        (kept as f64 / n - 0.1).abs() < 0.01,
        "kept share {}",
        kept as f64 / n
    );
    // Unselected positions are untouched.
    let selected: std::collections::HashSet<usize> = m.positions.iter().copied().collect();
    for (r, s) in seqs.iter().enumerate() {
        for (c, &t) in s.iter().enumerate() {
            if !selected.contains(&(r * 100 + c)) {
                assert_eq!(m.inputs[r][c], t);
            }
        }
    }
}

#[test]
fn whole_word_masking_selects_all_pieces_of_a_word() {
    // Ids 10..20 are word starts, 20..30 are "##" continuations.
    let continuation: Vec<bool> = (0..30).map(|i| i >= 20).collect();
    let mut rng = Rng::new(2);
    let seqs: Vec<Vec<u32>> = (0..500)
        .map(|_| {
            let mut s = vec![2];
            for _ in 0..20 {
                s.push(10 + rng.below(10) as u32);
                for _ in 0..rng.below(3) {
                    s.push(20 + rng.below(10) as u32);
                }
            }
            s.push(3);
            s
        })
        .collect();
    let len = seqs.iter().map(Vec::len).max().unwrap();
    let cfg = MaskingConfig {
        whole_word: true,
        ..Default::default()
    };
    let m = mask_tokens(
        &seqs,
        len,
        &cfg,
        &specials(30, continuation),
        &mut Rng::new(3),
    );
    let selected: std::collections::HashSet<usize> = m.positions.iter().copied().collect();
    let mut words = 0;
    for (r, s) in seqs.iter().enumerate() {
        let mut i = 1;
        while i < s.len() - 1 {
            let mut j = i + 1;
            while j < s.len() - 1 && s[j] >= 20 {
                j += 1;
            }
            let picked: Vec<bool> = (i..j).map(|k| selected.contains(&(r * len + k))).collect();
            assert!(
                picked.iter().all(|&p| p == picked[0]),
                "a word is selected whole or not at all"
            );
            words += usize::from(picked[0]);
            i = j;
        }
    }
    let share = words as f64 / (500.0 * 20.0);
    assert!((share - 0.15).abs() < 0.015, "word share {share}");
}

#[test]
fn causal_targets_are_the_next_tokens() {
    let (p, t) = next_token_targets(&[vec![2, 7, 8, 3], vec![2, 9, 3]], 4);
    assert_eq!(p, vec![0, 1, 2, 4, 5]);
    assert_eq!(t, vec![7, 8, 3, 9, 3]);
}

#[test]
fn bad_corpus_lines_name_file_and_line_or_are_skipped_and_counted() {
    let dir = tmp("bad");
    let text = dir.join("latin1.txt");
    let mut bytes = corpus(50, 1).join("\n").into_bytes();
    bytes.extend(b"\ncaf\xe9 cr\xe8me\n");
    bytes.extend(corpus(50, 2).join("\n").into_bytes());
    std::fs::write(&text, &bytes).unwrap();
    let out = dir.join("run");
    let mut args = tiny_run(&text, &out, 2);
    let fail = positio().args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&fail.stderr);
    assert!(!fail.status.success());
    assert!(
        err.contains(&format!("{}:51:", text.display())) && err.contains("not valid UTF-8"),
        "{err}"
    );
    args.push("--skip-bad-lines".into());
    let _ = std::fs::remove_dir_all(&out);
    let log = run_ok(&args);
    assert!(log.contains("(1 lines skipped)"), "{log}");

    let jsonl = dir.join("docs.jsonl");
    std::fs::write(
        &jsonl,
        "{\"text\": \"the cat sees a dog .\"}\n{\"text\": \"oops\"\n{\"title\": \"no text\"}\n",
    )
    .unwrap();
    let fail = positio()
        .args([
            "tokenizer",
            "train",
            "--corpus",
            jsonl.to_str().unwrap(),
            "--format",
            "jsonl",
            "--out",
            dir.join("t.json").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&fail.stderr);
    assert!(
        !fail.status.success()
            && err.contains(&format!("{}:2:", jsonl.display()))
            && err.contains("malformed JSON"),
        "{err}"
    );
    std::fs::write(
        &jsonl,
        "{\"text\": \"the cat sees a dog .\"}\n{\"title\": \"no text\"}\n",
    )
    .unwrap();
    let fail = positio()
        .args([
            "tokenizer",
            "train",
            "--corpus",
            jsonl.to_str().unwrap(),
            "--format",
            "jsonl",
            "--out",
            dir.join("t.json").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&fail.stderr);
    assert!(
        !fail.status.success()
            && err.contains(&format!("{}:2:", jsonl.display()))
            && err.contains("no field 'text'"),
        "{err}"
    );
    let missing = positio()
        .args([
            "tokenizer",
            "train",
            "--corpus",
            "/nonexistent/x.txt",
            "--out",
            "/tmp/x.json",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&missing.stderr)
        .contains("/nonexistent/x.txt: no such corpus file"));
}

fn weights(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("model.safetensors")).unwrap()
}

#[test]
fn a_killed_run_resumes_to_the_same_weights() {
    let dir = tmp("resume");
    let corpus = corpus_file(&dir, 3000);
    let steps = 60;
    let straight = dir.join("straight");
    run_ok(&tiny_run(&corpus, &straight, steps));

    // The same run, killed (SIGKILL: no chance to save) once a checkpoint exists mid-way.
    let killed = dir.join("killed");
    kill_after_checkpoint(&tiny_run(&corpus, &killed, steps), &killed, 10);
    assert!(
        !killed.join("model.safetensors").exists(),
        "killed before the end"
    );
    let mut args = tiny_run(&corpus, &killed, steps);
    args.push("--resume".into());
    let log = run_ok(&args);
    assert!(log.contains("resuming from"), "{log}");
    let metrics = |d: &Path| std::fs::read_to_string(d.join("metrics.jsonl")).unwrap();
    let losses = |d: &Path| -> Vec<String> {
        metrics(d)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {} {}", v["step"], v["split"], v["loss"])
            })
            .collect()
    };
    assert_eq!(
        losses(&straight),
        losses(&killed),
        "the metrics log has every step once, with the same losses"
    );
    assert!(
        weights(&straight) == weights(&killed),
        "resumed weights differ from uninterrupted weights"
    );
}

/// A checkpoint that cannot be written (the disk full: here a file-size limit, so the write
/// fails with an I/O error) stops the run with a clear error, takes no space and leaves the
/// previous checkpoint as it was; a damaged checkpoint is refused by its checksum, naming the
/// file. Resumed afterwards, the run ends with the uninterrupted run's weights.
#[test]
fn a_failed_or_damaged_checkpoint_leaves_the_previous_one_to_resume_from() {
    let dir = tmp("full-disk");
    let corpus = corpus_file(&dir, 3000);
    let steps = 60;
    let straight = dir.join("straight");
    run_ok(&tiny_run(&corpus, &straight, steps));
    let run = dir.join("run");
    kill_after_checkpoint(&tiny_run(&corpus, &run, steps), &run, 10);
    let checkpoints = run.join("checkpoints");
    let latest = || std::fs::read_to_string(checkpoints.join("latest")).unwrap();
    let before = latest();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(&checkpoints)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let kept = listing();
    let sums =
        std::fs::read_to_string(checkpoints.join(before.trim()).join("checksums.sha256")).unwrap();
    assert!(sums.contains("  optimizer.safetensors\n"), "{sums}");

    let mut resume = tiny_run(&corpus, &run, steps);
    resume.push("--resume".into());
    // 16 KB a file: the metrics log fits, a checkpoint's weights do not.
    let (ok, _, err) = positio_on_full_disk(&resume, 16 * 1024);
    assert!(!ok, "the run cannot have saved its checkpoint");
    assert!(
        err.contains("cannot write checkpoint")
            && err.contains("File too large")
            && err.contains(&format!(
                "the previous checkpoint {}",
                checkpoints.join(before.trim()).display()
            ))
            && err.contains("is intact"),
        "{err}"
    );
    assert_eq!(latest(), before);
    assert_eq!(listing(), kept, "nothing half-written left behind");

    // One flipped byte in the optimizer state: refused, by name.
    let optimizer = checkpoints
        .join(before.trim())
        .join("optimizer.safetensors");
    let good = std::fs::read(&optimizer).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&optimizer, &bad).unwrap();
    let out = positio().args(&resume).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("optimizer.safetensors") && err.contains("damaged"),
        "{err}"
    );
    std::fs::write(&optimizer, &good).unwrap();

    let log = run_ok(&resume);
    assert!(log.contains("resuming from"), "{log}");
    assert!(
        weights(&straight) == weights(&run),
        "resumed weights differ from uninterrupted weights"
    );
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_the_run_resumes() {
    let dir = tmp("sigint");
    let corpus = corpus_file(&dir, 3000);
    let out = dir.join("run");
    let mut args = tiny_run(&corpus, &out, 400);
    args.extend(["--save-every".into(), "1000".into()]);
    let child = positio()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = out.join("metrics.jsonl");
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&metrics).map_or(0, |m| m.lines().count()) < 5 {
        assert!(Instant::now() < deadline, "the run did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    unsafe_sigint(child.id());
    let out_ = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out_.stdout);
    assert_eq!(
        out_.status.code(),
        Some(130),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out_.stderr)
    );
    assert!(
        stdout.contains("interrupted at step") && stdout.contains("checkpoint saved"),
        "{stdout}"
    );
    let latest = std::fs::read_to_string(out.join("checkpoints/latest")).unwrap();
    assert!(latest.starts_with("step-"), "{latest}");
    args.push("--resume".into());
    args.extend(["--steps".into(), "400".into()]);
    let log = run_ok(&args);
    assert!(log.contains("done: 400 steps"), "{log}");
}

/// Sends SIGINT (as Ctrl-C does) through the `kill` command.
fn unsafe_sigint(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let dir = tmp("nan");
    let corpus = corpus_file(&dir, 2000);
    let out = dir.join("run");
    let mut args = tiny_run(&corpus, &out, 200);
    // A learning rate that makes the weights overflow within a few steps, with no clipping.
    args.extend(["--lr", "1e7", "--max-grad-norm", "0", "--warmup", "0"].map(String::from));
    let res = positio().args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "the run must stop");
    assert!(err.contains("is not finite"), "{err}");
    assert!(
        err.contains("last good checkpoint") || err.contains("no checkpoint had been written yet"),
        "{err}"
    );
    if let Ok(name) = std::fs::read_to_string(out.join("checkpoints/latest")) {
        let ckpt = out.join("checkpoints").join(name.trim());
        // The kept checkpoint is loadable and finite.
        let model = positio::hf::load_language_model(&ckpt, &common::cpu()).unwrap();
        let w = common::to_vec(model.bert.embeddings.word_embeddings.weight.val());
        assert!(w.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn resolved_configuration_is_saved_and_plots_are_drawn() {
    let dir = tmp("plot");
    let corpus = corpus_file(&dir, 1000);
    let out = dir.join("run");
    run_ok(&tiny_run(&corpus, &out, 20));
    let toml = std::fs::read_to_string(out.join("run.toml")).unwrap();
    let cfg: positio::tasks::pretrain::PretrainConfig = toml::from_str(&toml).unwrap();
    assert_eq!(cfg.train.steps, 20);
    assert_eq!(
        cfg.model.position,
        Some(positio::model::config::PositionKind::Rope)
    );
    // The output is a model directory the other commands accept.
    let info = run_ok(&["info".into(), out.to_str().unwrap().into()]);
    assert!(info.contains("rope"), "{info}");
    let log = run_ok(&["plot".into(), out.to_str().unwrap().into()]);
    assert!(log.contains("curves.png"));
    let png = std::fs::read(out.join("curves.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000);
    // A second run into the same directory is refused rather than mixed in.
    let again = positio()
        .args(tiny_run(&corpus, &out, 20))
        .output()
        .unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--resume"));
}

#[test]
fn causal_lm_pretraining_learns() {
    let dir = tmp("clm");
    let corpus = corpus_file(&dir, 2000);
    let out = dir.join("run");
    let mut args = tiny_run(&corpus, &out, 60);
    args.extend(["--objective", "clm", "--eval-every", "60"].map(String::from));
    run_ok(&args);
    let (_, val) = assert_learned(&out, 1.0);
    assert!(val["next_token_accuracy"].as_f64().unwrap() > 0.2);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["causal"], true);
    assert_eq!(config["is_decoder"], true);
}

#[test]
fn a_toml_configuration_is_read_and_flags_override_it() {
    let dir = tmp("toml");
    let corpus = corpus_file(&dir, 800);
    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        format!(
            "[data]\ncorpus = [{:?}]\nmax_len = 24\n\n[tokenizer]\nvocab_size = 150\n\n[model]\nposition = \"alibi\"\nnorm = \"pre\"\nlayers = 1\nhidden = 16\nheads = 2\nffn = 32\n\n[train]\nbatch_size = 4\ngrad_accum = 2\nsteps = 6\nlr = 1e-3\nschedule = \"cosine\"\n",
            corpus.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = dir.join("run");
    run_ok(
        &[
            "pretrain",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--steps",
            "4",
            "--log-every",
            "1",
        ]
        .map(String::from),
    );
    let saved: positio::tasks::pretrain::PretrainConfig =
        toml::from_str(&std::fs::read_to_string(out.join("run.toml")).unwrap()).unwrap();
    assert_eq!(saved.train.steps, 4, "the flag overrides the file");
    assert_eq!(saved.train.grad_accum, 2);
    assert_eq!(
        saved.train.schedule,
        positio::train::schedule::Schedule::Cosine
    );
    assert_eq!(
        saved.model.position,
        Some(positio::model::config::PositionKind::Alibi)
    );
    assert_eq!(saved.model.norm, positio::model::config::NormPosition::Pre);
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"train\"")).count(),
        4
    );
    // An unknown key is an error naming the file.
    std::fs::write(&config, "[train]\nbatchsize = 4\n").unwrap();
    let res = positio()
        .args([
            "pretrain",
            "--config",
            config.to_str().unwrap(),
            "--out",
            dir.join("x").to_str().unwrap(),
            "--corpus",
            corpus.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        !res.status.success()
            && err.contains(config.to_str().unwrap())
            && err.contains("batchsize"),
        "{err}"
    );
}

/// `eval lm`: perplexity of a causal LM on held-out text at its training length and beyond
/// (RoPE scaled), "n/a" past a learned position table, clear refusals otherwise.
#[test]
fn eval_lm_measures_perplexity_at_any_length() {
    let dir = tmp("eval-lm");
    let training = corpus_file(&dir, 2000);
    let held_out = dir.join("held-out.txt");
    std::fs::write(&held_out, corpus(300, 11).join("\n")).unwrap();
    let rope = dir.join("rope");
    let mut args = tiny_run(&training, &rope, 60);
    args.extend(["--objective", "clm"].map(String::from));
    run_ok(&args);
    let eval = |model: &Path, extra: &[&str]| -> (bool, serde_json::Value, String) {
        let mut a = vec![
            "eval",
            "lm",
            "--model",
            model.to_str().unwrap(),
            "--data",
            held_out.to_str().unwrap(),
            "--tokens",
            "3000",
        ];
        a.extend(extra);
        let out = positio().args(&a).output().unwrap();
        (
            out.status.success(),
            serde_json::from_slice(&out.stdout).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, at32, err) = eval(&rope, &["--len", "32"]);
    assert!(ok, "{err}");
    let nll = at32["nll"].as_f64().unwrap();
    assert!((at32["perplexity"].as_f64().unwrap() - nll.exp()).abs() < 1e-9 * nll.exp());
    assert!((at32["bits_per_token"].as_f64().unwrap() - nll / std::f64::consts::LN_2).abs() < 1e-9);
    // 3000 tokens in windows of 30 text tokens: 100 sequences, 31 predictions each.
    assert_eq!(at32["sequences"], 100);
    assert_eq!(at32["predictions"], 3100);
    // Trained: far below the ~200 of an untrained model with a 200-piece vocabulary.
    assert!(at32["perplexity"].as_f64().unwrap() < 60.0, "{at32}");
    // Beyond the training length, with and without NTK scaling: numbers, same text.
    for extra in [
        vec!["--len", "128"],
        vec!["--len", "128", "--rope-scaling", "ntk", "--factor", "4"],
    ] {
        let (ok, r, err) = eval(&rope, &extra);
        assert!(ok, "{err}");
        assert!(r["perplexity"].as_f64().unwrap().is_finite(), "{r}");
        assert!(r["peak_rss_mib"].as_f64().unwrap() > 0.0);
    }
    let (_, scaled, _) = eval(
        &rope,
        &["--len", "128", "--rope-scaling", "linear", "--factor", "4"],
    );
    assert_eq!(scaled["rope_scaling"]["type"], "linear");
    let (ok, _, err) = eval(&rope, &["--len", "64", "--rope-scaling", "ntk"]);
    assert!(!ok && err.contains("--factor"), "{err}");

    // A learned absolute table (512 positions, as BERT's; trained on the first 32): numbers up
    // to its end, n/a beyond, not an error.
    let absolute = dir.join("absolute");
    let mut args = tiny_run(&training, &absolute, 5);
    args.extend(["--objective", "clm", "--position", "absolute"].map(String::from));
    run_ok(&args);
    let (ok, r, err) = eval(&absolute, &["--len", "64"]);
    assert!(ok && r["perplexity"].as_f64().is_some(), "{err}");
    let (ok, r, err) = eval(&absolute, &["--len", "600"]);
    assert!(ok, "{err}");
    assert!(
        r["perplexity"].is_null() && r["note"].as_str().unwrap().starts_with("n/a"),
        "{r}"
    );
    let (ok, _, err) = eval(
        &absolute,
        &["--len", "64", "--rope-scaling", "ntk", "--factor", "2"],
    );
    assert!(!ok && err.contains("RoPE"), "{err}");
    // A bidirectional model is refused.
    let (ok, _, err) = eval(Path::new("tests/fixtures/hf_tiny_ner"), &["--len", "16"]);
    assert!(!ok && err.contains("causal"), "{err}");
}
