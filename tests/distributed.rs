//! Data-parallel training over MPI (`--features mpi`, `mpiexec -n 2` on this machine): two
//! ranks train the model one process trains (pretraining, classification, NER), on disjoint
//! shards that together make the epoch;
//! a killed rank stops the job at once and the run resumes to the uninterrupted run's weights;
//! a two-rank checkpoint resumes on one process.
#![cfg(feature = "mpi")]

mod common;
use common::tmp;
use positio::tools::demo::corpus;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One job at a time: MPI ranks poll while they wait, and several jobs at once on a small
/// machine would mostly wait for each other.
static ONE_JOB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_job() -> std::sync::MutexGuard<'static, ()> {
    ONE_JOB.lock().unwrap_or_else(|e| e.into_inner())
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_positio")
}

/// A small pretraining run with dropout on (0.1 on states and attention, the default).
fn args(corpus: &Path, out: &Path, steps: usize) -> Vec<String> {
    let mut a: Vec<String> = [
        "pretrain",
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
        "16",
        "--lr",
        "3e-3",
        "--save-every",
        "5",
        "--log-every",
        "1",
        "--val-fraction",
        "0",
        "--seed",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend([
        "--corpus".into(),
        corpus.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--steps".into(),
        steps.to_string(),
    ]);
    a
}

fn corpus_file(dir: &Path) -> PathBuf {
    let path = dir.join("corpus.txt");
    std::fs::write(&path, corpus(600, 5).join("\n")).unwrap();
    path
}

/// Runs positio alone (`ranks` 0) or under `mpiexec -n ranks … --distributed mpi`.
fn command(ranks: usize, args: &[String]) -> Command {
    if ranks == 0 {
        let mut c = Command::new(binary());
        c.args(args);
        return c;
    }
    let mut c = Command::new("mpiexec");
    c.args(["-n", &ranks.to_string(), binary()])
        .args(args)
        .args(["--distributed", "mpi"]);
    c
}

fn run_ok(ranks: usize, args: &[String]) -> String {
    let out = command(ranks, args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{args:?} on {ranks} ranks:\n{stdout}\n{stderr}"
    );
    stdout.into()
}

/// The largest difference between two models' parameters.
fn max_difference(a: &Path, b: &Path) -> f32 {
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&a).unwrap(),
        safetensors::SafeTensors::deserialize(&b).unwrap(),
    );
    let floats = |bytes: &[u8]| -> Vec<f32> { bytemuck::pod_collect_to_vec(bytes) };
    let mut names = a.names();
    names.sort();
    let mut b_names = b.names();
    b_names.sort();
    assert_eq!(names, b_names);
    names
        .iter()
        .map(|n| {
            let (x, y) = (
                floats(a.tensor(n).unwrap().data()),
                floats(b.tensor(n).unwrap().data()),
            );
            x.iter()
                .zip(&y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max)
        })
        .fold(0.0, f32::max)
}

fn train_losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "train")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut f: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    f.sort();
    f
}

#[test]
fn two_ranks_train_the_model_one_process_trains() {
    let _one = one_job();
    let dir = tmp("dp-same");
    let corpus = corpus_file(&dir);
    let (one, two) = (dir.join("one"), dir.join("two"));
    run_ok(0, &args(&corpus, &one, 5));
    let log = run_ok(2, &args(&corpus, &two, 5));
    assert!(log.contains("2 ranks"), "{log}");
    let diff = max_difference(
        &one.join("model.safetensors"),
        &two.join("model.safetensors"),
    );
    assert!(diff < 1e-5, "parameters differ by {diff}");
    let (a, b) = (train_losses(&one), train_losses(&two));
    assert_eq!(a.len(), 5);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-5, "losses {a:?} vs {b:?}");
    }
    assert_eq!(
        files(&one),
        files(&two),
        "rank 0 writes what one process writes"
    );
}

#[test]
fn ranks_see_disjoint_shards_that_together_make_the_epoch() {
    let _one = one_job();
    let dir = tmp("dp-shards");
    let corpus = corpus_file(&dir);
    let trace = |name: &str, ranks: usize| {
        let prefix = dir.join(name);
        let mut a = args(&corpus, &dir.join(format!("run-{name}")), 0);
        a.extend(["--epochs".into(), "1".into()]);
        let status = command(ranks, &a)
            .env("POSITIO_TRACE_EXAMPLES", &prefix)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        (0..ranks.max(1))
            .map(|r| {
                std::fs::read_to_string(format!("{}.rank{r}", prefix.display()))
                    .unwrap()
                    .lines()
                    .map(|l| {
                        let mut n = l.split(' ').map(|x| x.parse::<usize>().unwrap());
                        (n.next().unwrap(), n.collect::<Vec<usize>>())
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let alone = trace("alone", 0).remove(0);
    let ranks = trace("ranks", 2);
    assert!(alone.len() > 5, "an epoch of several steps");
    assert_eq!(ranks[0].len(), alone.len());
    assert_eq!(ranks[1].len(), alone.len());
    let mut epoch = Vec::new();
    for (step, (whole, batch)) in alone.iter().enumerate() {
        let (r0, r1) = (&ranks[0][step], &ranks[1][step]);
        assert_eq!((r0.0, r1.0), (*whole, *whole));
        assert_eq!(
            (r0.1.len(), r1.1.len()),
            (8, 8),
            "step {whole}: half the batch each"
        );
        assert!(
            r0.1.iter().all(|e| !r1.1.contains(e)),
            "step {whole}: shared examples"
        );
        let mut both = [r0.1.clone(), r1.1.clone()].concat();
        let mut single = batch.clone();
        both.sort_unstable();
        single.sort_unstable();
        assert_eq!(
            both, single,
            "step {whole}: the ranks' union is one process's batch"
        );
        epoch.extend(both);
    }
    let n = epoch.len();
    epoch.sort_unstable();
    epoch.dedup();
    assert_eq!(epoch.len(), n, "no example twice in the epoch");
}

/// Polls `what` until it holds or `limit` has passed; whether it held.
fn wait_for(mut what: impl FnMut() -> bool, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if what() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_killed_rank_stops_the_job_and_the_run_resumes() {
    let _one = one_job();
    let dir = tmp("dp-kill");
    let corpus = corpus_file(&dir);
    // Long enough (seconds) that the kill lands mid-run.
    let steps = 3000;
    let straight = dir.join("straight");
    run_ok(2, &args(&corpus, &straight, steps));

    let run = dir.join("run");
    let log = dir.join("log.txt");
    let mut job = command(2, &args(&corpus, &run, steps))
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let latest = run.join("checkpoints/latest");
    assert!(
        wait_for(|| latest.exists(), Duration::from_secs(60)),
        "no checkpoint"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let pid: i32 = text
        .split("rank 1 pid ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("rank 1's pid is logged: {text}"));
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let killed = Instant::now();
    let exited = wait_for(
        || job.try_wait().unwrap().is_some(),
        Duration::from_secs(10),
    );
    if !exited {
        let _ = job.kill();
        panic!("the job still runs 10 s after rank 1 died");
    }
    let status = job.wait_with_output().unwrap();
    assert!(
        !status.status.success(),
        "a job that lost a rank exits non-zero"
    );
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&status.stderr),
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        report.contains(&format!("{pid}")),
        "MPI names the dead process: {report}"
    );
    eprintln!(
        "the job stopped {:?} after rank 1 was killed",
        killed.elapsed()
    );
    assert!(
        !run.join("model.safetensors").exists(),
        "killed before the end"
    );

    let mut resume = args(&corpus, &run, steps);
    resume.push("--resume".into());
    let out = run_ok(2, &resume);
    assert!(out.contains("resuming from"), "{out}");
    let diff = max_difference(
        &straight.join("model.safetensors"),
        &run.join("model.safetensors"),
    );
    assert!(
        diff < 1e-6,
        "the resumed run differs from the uninterrupted one by {diff}"
    );
    assert_eq!(train_losses(&run).len(), steps, "every step logged once");
}

#[test]
fn a_two_rank_checkpoint_resumes_on_one_process() {
    let _one = one_job();
    let dir = tmp("dp-resume-one");
    let corpus = corpus_file(&dir);
    let (straight, run) = (dir.join("straight"), dir.join("run"));
    run_ok(0, &args(&corpus, &straight, 10));
    run_ok(2, &args(&corpus, &run, 10));
    // Back to the two-rank run's step-5 checkpoint, then on to step 10 alone.
    std::fs::write(run.join("checkpoints/latest"), "step-00000005").unwrap();
    std::fs::remove_file(run.join("model.safetensors")).unwrap();
    let mut resume = args(&corpus, &run, 10);
    resume.push("--resume".into());
    let out = run_ok(0, &resume);
    assert!(out.contains("resuming from"), "{out}");
    let diff = max_difference(
        &straight.join("model.safetensors"),
        &run.join("model.safetensors"),
    );
    assert!(diff < 1e-5, "parameters differ by {diff}");
}

#[test]
fn fine_tuning_on_two_ranks_matches_one_process() {
    let _one = one_job();
    let dir = tmp("dp-finetune");
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let fixture = |p: &str| f.join(p).display().to_string();
    // Classification: length-bucketed batches, each rank padding its shard to its own longest
    // text; NER: dropout before selecting the word pieces of each window.
    let tasks = [
        (
            "classify",
            vec![
                fixture("hf_tiny_classify/single"),
                fixture("classify/train.tsv"),
                fixture("classify/dev.tsv"),
            ],
        ),
        (
            "ner",
            vec![
                fixture("hf_tiny_ner"),
                fixture("conll/train.iob1"),
                fixture("conll/dev.iob1"),
            ],
        ),
    ];
    for (task, files) in tasks {
        let run = |name: &str, ranks: usize| {
            let out = dir.join(format!("{task}-{name}"));
            let mut a: Vec<String> = vec!["finetune".into(), task.into()];
            for (flag, file) in ["--model", "--train", "--dev"].iter().zip(&files) {
                a.extend([flag.to_string(), file.clone()]);
            }
            a.extend(["--epochs", "1", "--batch-size", "8", "--out"].map(String::from));
            a.push(out.display().to_string());
            run_ok(ranks, &a);
            out.join("model.safetensors")
        };
        let diff = max_difference(&run("one", 0), &run("two", 2));
        assert!(diff < 1e-5, "{task}: parameters differ by {diff}");
    }
}
