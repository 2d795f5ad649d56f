//! Training settings: one declaration gives the `[train]` table of a TOML config (serde,
//! unknown keys refused), the command-line flags that override it (clap, every one optional),
//! and the generic defaults. A task's own recipe (its learning rate, epochs, ...) is its
//! [`RunSettings::recipe`]; `--config FILE` and then the flags are laid over it, for every
//! task the same way ([`resolve`]).
//!
//! Why a macro: the config struct and its flag struct must list the same fields with the same
//! names, types and help; writing them twice is how they drift apart.

use crate::train::schedule::Schedule;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// Declares a settings struct (serde, `deny_unknown_fields`, `Default` from the given values)
/// and its flags struct (clap, each field `Option`), with `apply` laying the given flags over
/// a settings value.
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident, flags $flags:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident: $ty:ty = $default:expr,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        /// Command-line flags, each overriding the same key of the settings.
        #[derive(clap::Args, Debug, Clone, Default)]
        pub struct $flags {
            $( $(#[doc = $doc])* #[arg(long)] pub $field: Option<$ty>, )*
        }

        impl $flags {
            /// Sets every field given on the command line.
            pub(crate) fn apply(&self, settings: &mut $name) {
                $( if let Some(v) = &self.$field { settings.$field = v.clone(); } )*
            }
        }
    };
}

settings! {
    /// Hyper-parameters of the training loop, shared by every task (`[train]` in `run.toml`).
    pub struct TrainConfig, flags TrainFlags {
        /// Examples (sequences, windows, texts) per micro-batch.
        batch_size: usize = 32,
        /// Micro-batches per optimizer step.
        grad_accum: usize = 1,
        /// Peak learning rate.
        lr: f64 = 5e-4,
        /// Peak learning rate of the task head (the parameters outside the pretrained encoder:
        /// classifier, CRF), on the same schedule; 0: the same as `lr`.
        head_lr: f64 = 0.0,
        /// Layer-wise learning-rate decay: with L encoder layers, layer l (0-based) learns at
        /// decay^(L − 1 − l) of the rate, the embeddings at decay^L, the head at its own rate
        /// (1: off; 0.8–0.95 are usual for fine-tuning).
        layer_lr_decay: f64 = 1.0,
        /// Warm-up: a fraction of all steps when below 1, else a number of steps.
        warmup: f64 = 0.06,
        /// Learning-rate decay to 0 after the warm-up: linear or cosine.
        schedule: Schedule = Schedule::Linear,
        /// AdamW weight decay (not on biases and LayerNorm weights).
        weight_decay: f64 = 0.01,
        /// AdamW beta1.
        adam_beta1: f64 = 0.9,
        /// AdamW beta2.
        adam_beta2: f64 = 0.999,
        /// AdamW epsilon.
        adam_eps: f64 = 1e-8,
        /// Clip the global gradient norm to this (0: no clipping).
        max_grad_norm: f64 = 1.0,
        /// Optimizer steps; 0 means `epochs` decides.
        steps: usize = 0,
        /// Passes over the training data, when `steps` is 0.
        epochs: f64 = 1.0,
        /// Evaluate every this many steps (0: at the end of each epoch only).
        eval_every: usize = 0,
        /// Checkpoint every this many steps (0: only when stopping).
        save_every: usize = 500,
        /// Write a metrics line every this many steps.
        log_every: usize = 10,
        /// Seed of the initial weights, the data order, masking and dropout.
        seed: u64 = 42,
        /// Checkpoints kept on disk.
        keep_checkpoints: usize = 2,
    }
}

impl TrainConfig {
    /// A fine-tuning recipe: `lr` for `epochs` with a 10 % warm-up, the rest the defaults.
    pub(crate) fn fine_tuning(lr: f64, epochs: f64) -> Self {
        TrainConfig {
            lr,
            epochs,
            warmup: 0.1,
            ..TrainConfig::default()
        }
    }

    /// Refuses settings the loop cannot run, naming the key.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        if self.grad_accum == 0 {
            return Err(Error::config("grad_accum", "must be at least 1"));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::config(
                "lr",
                format!("must be a positive number, got {}", self.lr),
            ));
        }
        if !(self.head_lr >= 0.0 && self.head_lr.is_finite()) {
            return Err(Error::config(
                "head_lr",
                format!(
                    "must be 0 (the same as lr) or a positive number, got {}",
                    self.head_lr
                ),
            ));
        }
        if !(self.layer_lr_decay > 0.0 && self.layer_lr_decay <= 1.0) {
            return Err(Error::config(
                "layer_lr_decay",
                format!(
                    "must be in (0, 1] (1: no decay), got {}",
                    self.layer_lr_decay
                ),
            ));
        }
        if self.steps == 0 && (self.epochs.is_nan() || self.epochs <= 0.0) {
            return Err(Error::config(
                "epochs",
                "give a positive number of steps or epochs",
            ));
        }
        if self.log_every == 0 {
            return Err(Error::config("log_every", "must be at least 1"));
        }
        Ok(())
    }
}

/// Everything a training command is run with, as saved in the run's `run.toml`: the task's
/// tables and `[train]`.
pub trait RunSettings: Serialize + DeserializeOwned + PartialEq + Default {
    /// What a run starts from before `--config` and flags: the task's defaults and its
    /// training recipe.
    fn recipe() -> Self;
    /// The `[train]` table.
    fn train(&self) -> &TrainConfig;
    fn train_mut(&mut self) -> &mut TrainConfig;
}

/// The settings of a fine-tuning, whose task table names the model to start from and the
/// training and development files.
pub trait FineTuneSettings: RunSettings {
    /// The task's table in `run.toml` (`ner`, `classify`).
    const TABLE: &'static str;
    /// The table's `model`, `train` and `dev`.
    fn inputs_mut(&mut self) -> [&mut String; 3];
    /// Whether a development set is required (else an empty `dev` trains without evaluation
    /// and keeps the last model).
    const DEV_REQUIRED: bool = true;
}

/// Reads settings from a TOML file laid over `base`: keys the file gives replace those of
/// `base`, the others keep `base`'s values. An unknown key or a wrong type is an error naming
/// the file, the key and the line.
pub fn load_over<S: RunSettings>(path: &Path, base: &S) -> Result<S> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
    // First against the schema alone, for errors with a line number ...
    let _: S = toml::from_str(&text).map_err(|e| Error::file(path, toml_error(&e)))?;
    // ... then merged over the base, so that a missing key keeps the recipe's value.
    let given: toml::Table =
        toml::from_str(&text).map_err(|e| Error::file(path, toml_error(&e)))?;
    let mut merged = toml::Table::try_from(base)
        .map_err(|e| Error::file(path, format!("cannot represent the defaults: {e}")))?;
    merge(&mut merged, given);
    S::deserialize(toml::Value::Table(merged)).map_err(|e| Error::file(path, toml_error(&e)))
}

/// The settings of a run: the saved ones when resuming, else the recipe with `--config` laid
/// over it; then `flags` (the command's own overrides, given the settings to change).
pub fn resolve<S: RunSettings>(
    run_dir: &Path,
    config: Option<&Path>,
    resume: bool,
    flags: impl FnOnce(&mut S),
) -> Result<S> {
    let recipe = S::recipe();
    let mut settings = if resume {
        load_over(&run_dir.join(crate::train::run_dir::SETTINGS), &recipe)?
    } else if let Some(path) = config {
        load_over(path, &recipe)?
    } else {
        recipe
    };
    flags(&mut settings);
    settings.train().validate()?;
    Ok(settings)
}

/// `settings` with `over` laid onto them, key by key as [`load_over`] does with a file (for
/// options given as a table: the Python package's keyword arguments); `source` names them in
/// errors. The `[train]` table is validated again.
pub fn overlay<S: RunSettings>(settings: &S, over: toml::Table, source: &str) -> Result<S> {
    let mut merged = toml::Table::try_from(settings)
        .map_err(|e| Error::config(source, format!("cannot represent the settings: {e}")))?;
    merge(&mut merged, over);
    let s = S::deserialize(toml::Value::Table(merged))
        .map_err(|e| Error::config(source, toml_error(&e)))?;
    s.train().validate()?;
    Ok(s)
}

/// `settings` if their task table names the model and the training file (and the development
/// file where the task needs one); else an error naming the missing one as `names` does
/// (`--model`, `--train`, `--dev` on the command line).
pub fn require_inputs<S: FineTuneSettings>(mut settings: S, names: [&str; 3]) -> Result<S> {
    let missing = settings
        .inputs_mut()
        .iter()
        .zip(names)
        .take(if S::DEV_REQUIRED { 3 } else { 2 })
        .find(|(v, _)| v.is_empty())
        .map(|(_, name)| name);
    match missing {
        Some(name) => Err(Error::config(
            name,
            format!("required: give it, or a config with it in [{}]", S::TABLE),
        )),
        None => Ok(settings),
    }
}

/// toml's message on one line ("TOML parse error at line 3, column 1 | ... unknown field").
fn toml_error(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lays `over` onto `base`, table by table.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        name: String,
        width: usize,
    }

    impl Default for Demo {
        fn default() -> Self {
            Demo {
                name: String::new(),
                width: 3,
            }
        }
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct DemoRun {
        demo: Demo,
        train: TrainConfig,
    }

    impl RunSettings for DemoRun {
        fn recipe() -> Self {
            let mut run = DemoRun::default();
            run.train.lr = 1e-4;
            run.train.epochs = 5.0;
            run
        }
        fn train(&self) -> &TrainConfig {
            &self.train
        }
        fn train_mut(&mut self) -> &mut TrainConfig {
            &mut self.train
        }
    }

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_file_overrides_only_the_keys_it_gives() {
        let (_dir, path) = file("[train]\nbatch_size = 8\n[demo]\nname = \"x\"\n");
        let run = load_over(&path, &DemoRun::recipe()).unwrap();
        assert_eq!(run.train.batch_size, 8);
        assert_eq!(
            run.train.lr, 1e-4,
            "the recipe's value, not the generic default"
        );
        assert_eq!(run.train.epochs, 5.0);
        assert_eq!((run.demo.name.as_str(), run.demo.width), ("x", 3));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name_and_line() {
        let (_dir, path) = file("[train]\nbatch_size = 8\nlearning_rate = 0.1\n");
        let e = load_over(&path, &DemoRun::recipe())
            .unwrap_err()
            .to_string();
        assert!(e.contains("learning_rate") && e.contains("line 3"), "{e}");
        let (_dir, path) = file("[trian]\nlr = 0.1\n");
        let e = load_over(&path, &DemoRun::recipe())
            .unwrap_err()
            .to_string();
        assert!(e.contains("trian"), "{e}");
        let (_dir, path) = file("[train]\nlr = \"fast\"\n");
        let e = load_over(&path, &DemoRun::recipe())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn flags_override_the_file_and_settings_are_validated() {
        let (dir, path) = file("[train]\nlr = 0.5\nseed = 7\n");
        let flags = TrainFlags {
            lr: Some(0.25),
            ..Default::default()
        };
        let run: DemoRun = resolve(dir.path(), Some(&path), false, |s: &mut DemoRun| {
            flags.apply(&mut s.train)
        })
        .unwrap();
        assert_eq!((run.train.lr, run.train.seed), (0.25, 7));
        let bad = TrainFlags {
            batch_size: Some(0),
            ..Default::default()
        };
        let e = resolve(dir.path(), None, false, |s: &mut DemoRun| {
            bad.apply(&mut s.train)
        })
        .unwrap_err();
        assert!(matches!(e, Error::Config { ref key, .. } if key == "batch_size"));
    }

    #[test]
    fn a_saved_run_reads_back_equal() {
        let mut run = DemoRun::recipe();
        run.demo.name = "ner".into();
        run.train.schedule = Schedule::Cosine;
        let (_dir, path) = file(&toml::to_string_pretty(&run).unwrap());
        assert_eq!(load_over(&path, &DemoRun::recipe()).unwrap(), run);
    }
}
