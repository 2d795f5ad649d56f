//! `positio.finetune(task, out, **options)`: the CLI's `finetune <task>` from Python. Options
//! are keys of the task's table or of `[train]` (as in `run.toml`); they are laid over the
//! recipe (or `config`, or the saved settings when resuming) with the library's own overlay.
//! Training runs on a worker thread with the GIL released; the calling thread waits, turning
//! a KeyboardInterrupt into the clean stop Ctrl-C gives on the command line (checkpoint saved,
//! `resume=True` continues). Progress lines go to Python's `sys.stderr`, so a notebook shows
//! them.

use crate::{error, PositioError};
use positio::runtime::DeviceKind;
use positio::train::config::{self, FineTuneSettings};
use positio::train::trainer::Outcome;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes what it is given to Python's `sys.stderr` (a line at a time: tracing writes whole
/// events).
struct PythonStderr;

impl std::io::Write for PythonStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf).into_owned();
        Python::attach(|py| {
            let stderr = py.import("sys")?.getattr("stderr")?;
            stderr.call_method1("write", (text,))?;
            stderr.call_method0("flush").map(|_| ())
        })
        .map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the library's progress lines (tracing, INFO) to `sys.stderr`; a host that installed
/// its own subscriber keeps it.
fn log_to_python() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_ansi(false)
        .with_writer(|| PythonStderr)
        .try_init();
}

/// A Python value (plain: numbers, strings, lists, dicts) as TOML, through its JSON.
fn toml_value(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<toml::Value> {
    let text: String = py
        .import("json")?
        .call_method1("dumps", (value,))
        .map_err(|_| PositioError::new_err(format!("{key}: not a plain value")))?
        .extract()?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| toml::Value::try_from(v).ok())
        .ok_or_else(|| PositioError::new_err(format!("{key}: not a TOML value (None?)")))
}

/// Keyword options as a TOML table: a key of the recipe's `[train]` goes there, any other
/// to the task's table.
fn options_table<S: FineTuneSettings>(
    py: Python<'_>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<toml::Table> {
    let mut table = toml::Table::new();
    let Some(options) = options else {
        return Ok(table);
    };
    let recipe = toml::Table::try_from(S::recipe())
        .map_err(|e| PositioError::new_err(format!("cannot represent the recipe: {e}")))?;
    let keys = |t: &str| -> Vec<String> {
        recipe
            .get(t)
            .and_then(toml::Value::as_table)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (train_keys, task_keys) = (keys("train"), keys(S::TABLE));
    let json = py.import("json")?;
    for (key, value) in options.iter() {
        let key: String = key.extract()?;
        let text: String = json
            .call_method1("dumps", (value,))
            .map_err(|_| PositioError::new_err(format!("{key}: not a plain value")))?
            .extract()?;
        let value: toml::Value = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| toml::Value::try_from(v).ok())
            .ok_or_else(|| PositioError::new_err(format!("{key}: not a TOML value")))?;
        // A key of `[train]` only goes there; any other to the task's table, whose schema
        // refuses (naming the valid keys) what it does not know.
        let t = if train_keys.contains(&key) && !task_keys.contains(&key) {
            "train"
        } else {
            S::TABLE
        };
        table
            .entry(t)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("a table")
            .insert(key, value);
    }
    Ok(table)
}

/// What `finetune` was asked, whatever the task.
#[derive(Clone, Copy)]
struct Call<'a, 'py> {
    py: Python<'py>,
    out: &'a Path,
    resume: bool,
    config: Option<&'a Path>,
    device: DeviceKind,
    options: Option<&'a Bound<'py, PyDict>>,
}

/// One task's fine-tuning: settings resolved as the CLI does, then run on a worker thread.
fn run<S: FineTuneSettings + Send + 'static>(
    call: &Call,
    finetune: fn(&S, &Path, bool, DeviceKind) -> positio::Result<Outcome>,
) -> PyResult<Outcome> {
    let Call {
        py,
        out,
        resume,
        config,
        device,
        options,
    } = *call;
    let over = options_table::<S>(py, options)?;
    let settings = config::resolve::<S>(out, config, resume, |_| {})
        .and_then(|s| config::overlay(&s, over, "finetune options"))
        .and_then(|s| config::require_inputs(s, ["model", "train", "dev"]))
        .map_err(error)?;
    let out = out.to_path_buf();
    in_background(py, move || finetune(&settings, &out, resume, device))
}

/// Runs a training on a worker thread while this one waits with the GIL released, turning a
/// KeyboardInterrupt into [`request_stop`](positio::train::trainer::request_stop) (the
/// checkpoint is saved, then the interrupt is raised).
fn in_background(
    py: Python<'_>,
    train: impl FnOnce() -> positio::Result<Outcome> + Send + 'static,
) -> PyResult<Outcome> {
    log_to_python();
    let worker = std::thread::spawn(train);
    let mut interrupt: Option<PyErr> = None;
    while !worker.is_finished() {
        py.detach(|| std::thread::sleep(Duration::from_millis(50)));
        if let Err(e) = py.check_signals() {
            // Asked again at every poll: a request made before the trainer started its loop
            // (which clears the flag) would otherwise be lost.
            interrupt.get_or_insert(e);
        }
        if interrupt.is_some() {
            positio::train::trainer::request_stop();
        }
    }
    let outcome = worker
        .join()
        .map_err(|_| PositioError::new_err("the training thread panicked"))?
        .map_err(error)?;
    match interrupt {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

/// The run directory, or the KeyboardInterrupt of a stopped run.
fn finished(outcome: Outcome, out: PathBuf) -> PyResult<PathBuf> {
    match outcome {
        Outcome::Done => Ok(out),
        Outcome::Interrupted => Err(pyo3::exceptions::PyKeyboardInterrupt::new_err(format!(
            "stopped: a checkpoint is in {}; call again with resume=True to continue",
            out.display()
        ))),
    }
}

/// Pretrains as `positio pretrain` does (masked or causal LM) and returns the run directory.
/// `tables`: the tables of its `--config` as dicts (`data={"corpus": [...]}`,
/// `tokenizer={...}`, `model={"position": "rope", "layers": 4, ...}`, `objective={...}`,
/// `train={"steps": ...}`), laid over the defaults (or `config`, or the saved settings when
/// resuming). Ctrl-C saves a checkpoint and raises KeyboardInterrupt.
#[pyfunction]
#[pyo3(signature = (out, *, resume = false, config = None, device = "cpu", **tables))]
pub fn pretrain(
    py: Python<'_>,
    out: PathBuf,
    resume: bool,
    config: Option<PathBuf>,
    device: &str,
    tables: Option<&Bound<'_, PyDict>>,
) -> PyResult<PathBuf> {
    use positio::tasks::pretrain::{self, PretrainConfig};
    let device = crate::device_for(device, true)?;
    let mut over = toml::Table::new();
    if let Some(tables) = tables {
        for (name, value) in tables.iter() {
            let name: String = name.extract()?;
            match toml_value(py, &name, &value)? {
                t @ toml::Value::Table(_) => over.insert(name, t),
                _ => {
                    return Err(PositioError::new_err(format!(
                        "{name}: a table (dict), as [{name}] in a pretraining config"
                    )))
                }
            };
        }
    }
    let settings = config::resolve::<PretrainConfig>(&out, config.as_deref(), resume, |_| {})
        .and_then(|s| config::overlay(&s, over, "pretrain options"))
        .and_then(|s| s.data.require_source().map(|()| s))
        .map_err(error)?;
    let dir = out.clone();
    let outcome = in_background(py, move || {
        let summary = pretrain::run(&settings, &dir, resume, true, device)?;
        Ok(pretrain::report(&summary, &dir))
    })?;
    finished(outcome, out)
}

/// Fine-tunes a model as `positio finetune TASK` does and returns the run directory. `task`:
/// "ner", "classify", "embed", "rerank" or "recommend"; `options`: keys of the task's table
/// (`model`, `train`, `dev`, ...) and of `[train]` (`lr`, `epochs`, `batch_size`, ...);
/// `config`: a TOML file laid under them; `resume=True` continues the run in `out`. Ctrl-C
/// saves a checkpoint and raises KeyboardInterrupt.
#[pyfunction]
#[pyo3(signature = (task, out, *, resume = false, config = None, device = "cpu", **options))]
pub fn finetune(
    py: Python<'_>,
    task: &str,
    out: PathBuf,
    resume: bool,
    config: Option<PathBuf>,
    device: &str,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<PathBuf> {
    use positio::tasks::{classify, embedding, ner, recommend, rerank};
    let call = Call {
        py,
        out: &out,
        resume,
        config: config.as_deref(),
        device: crate::device_for(device, true)?,
        options,
    };
    let outcome = match task {
        "ner" => run(&call, ner::commands::finetune),
        "classify" => run(&call, classify::commands::finetune),
        "embed" => run(&call, embedding::commands::finetune),
        "rerank" => run(&call, rerank::finetune),
        "recommend" => run(&call, recommend::commands::finetune),
        other => Err(PositioError::new_err(format!(
            "task {other:?}: expected ner, classify, embed, rerank or recommend"
        ))),
    }?;
    finished(outcome, out)
}
