//! The fuzz targets (`positio::fuzz`) as bounded tests: each runs on its seeds and on
//! mutations of them from a fixed random seed, so a run is repeatable. A panic (or a 5xx from
//! the server) fails the test and leaves the input in `target/fuzz-findings/TARGET-N` to
//! reproduce it (`fuzz/run.sh` replays such files). The long, coverage-guided runs are
//! `fuzz/run.sh`'s.
//!
//! POSITIO_FUZZ_ITERATIONS sets the mutations per target (default 4000: about 15 s in all).

use positio::fuzz::{mutate, Harness, TARGETS};
use positio::rng::Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

fn iterations() -> usize {
    std::env::var("POSITIO_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000)
}

/// Runs `target` on its seeds and `iterations` mutations; the failing inputs, saved.
fn fuzz(harness: &Harness, target: &str, iterations: usize) -> Vec<String> {
    let seeds = harness.seeds(target).unwrap();
    assert!(!seeds.is_empty() || target == "pairs", "{target} has seeds");
    let mut rng = Rng::new(0x5eed ^ target.len() as u64);
    let mut inputs: Vec<Vec<u8>> = seeds.clone();
    let mut findings = Vec::new();
    let base = if seeds.is_empty() {
        vec![Vec::new()]
    } else {
        seeds
    };
    for _ in 0..iterations {
        let a = &base[rng.below(base.len())];
        let b = &base[rng.below(base.len())];
        inputs.push(mutate(&mut rng, a, b));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings");
    for input in &inputs {
        let outcome = catch_unwind(AssertUnwindSafe(|| harness.run(target, input)));
        match outcome {
            Ok(result) => result.unwrap(),
            Err(_) => {
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join(format!("{target}-{}", findings.len()));
                std::fs::write(&path, input).unwrap();
                findings.push(path.display().to_string());
            }
        }
    }
    findings
}

#[test]
fn no_input_crashes_a_reader_or_the_server() {
    let harness =
        Harness::new(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")).unwrap();
    let mut findings = Vec::new();
    for target in TARGETS {
        let started = std::time::Instant::now();
        let found = fuzz(&harness, target, iterations());
        eprintln!(
            "fuzz {target}: {} inputs in {:.1} s, {} findings",
            iterations(),
            started.elapsed().as_secs_f64(),
            found.len()
        );
        findings.extend(found);
    }
    assert!(findings.is_empty(), "inputs that crashed: {findings:?}");
}

/// Inputs that once crashed a target (tests/fixtures/fuzz/TARGET/NAME): each must now be
/// answered without a crash.
#[test]
fn past_findings_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let harness =
        Harness::new(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")).unwrap();
    let mut replayed = 0;
    for target in std::fs::read_dir(&root).unwrap() {
        let target = target.unwrap().path();
        let name = target.file_name().unwrap().to_str().unwrap().to_string();
        for input in std::fs::read_dir(&target).unwrap() {
            let input = input.unwrap().path();
            harness
                .run(&name, &std::fs::read(&input).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
            replayed += 1;
        }
    }
    assert!(replayed >= 4, "{replayed} findings replayed");
}
