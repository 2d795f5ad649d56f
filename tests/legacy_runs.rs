//! Run directories written before the shared training entry (tests/fixtures/legacy, made by
//! positio at bfd5ef0): NER and classification runs killed mid-epoch resume to exactly the
//! weights the old uninterrupted runs ended with; a pretraining run, whose data order changed,
//! is refused with an error that says what to do.

mod common;
use common::{positio, tmp};
use std::path::Path;

/// Copies a fixture run directory into a scratch directory.
fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn old_ner_and_classification_runs_resume_to_the_same_weights() {
    let fixtures = Path::new("tests/fixtures/legacy");
    for task in ["ner", "classify"] {
        let dir = tmp(task);
        let run = dir.join("run");
        copy(&fixtures.join(format!("{task}_run")), &run);
        let (ok, stdout, stderr) =
            positio(&["finetune", task, "--out", run.to_str().unwrap(), "--resume"]);
        assert!(ok, "{task}: {stdout}\n{stderr}");
        assert!(stdout.contains("resuming from"), "{task}: {stdout}");
        let latest = std::fs::read_to_string(run.join("checkpoints/latest")).unwrap();
        let resumed = std::fs::read(
            run.join("checkpoints")
                .join(latest.trim())
                .join("model.safetensors"),
        );
        let expected = std::fs::read(fixtures.join(format!("{task}_run_final.safetensors")));
        assert!(
            resumed.unwrap() == expected.unwrap(),
            "{task}: the resumed run ended with other weights than the uninterrupted old run"
        );
    }
}

#[test]
fn an_old_pretraining_run_is_refused_with_what_to_do() {
    let dir = tmp("pretrain");
    let run = dir.join("run");
    copy(Path::new("tests/fixtures/legacy/pretrain_run"), &run);
    let (ok, _, stderr) = positio(&["pretrain", "--out", run.to_str().unwrap(), "--resume"]);
    assert!(
        !ok,
        "an old pretraining checkpoint must not continue in another data order"
    );
    assert!(
        stderr.contains("state.json")
            && stderr.contains("before the shared epoch sampler")
            && stderr.contains("--init-from"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
