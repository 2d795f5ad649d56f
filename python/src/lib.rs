//! The extension module `positio._positio`: thin PyO3 wrappers over the library's own code
//! paths (the ones the command line and the server call), never a second implementation.
//! Compute runs with the GIL released; results that the command line prints as JSON come back
//! as the same dicts (one serialisation through `json.loads`, so the shapes cannot drift);
//! embeddings come back as NumPy arrays that own the Rust buffer. Every library error becomes a
//! `positio.PositioError` with the command line's message.

mod models;
mod search;
mod train;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::str::FromStr;

pyo3::create_exception!(
    _positio,
    PositioError,
    PyException,
    "An error from positio, with the message the command line prints."
);

/// A library error as a Python exception.
pub(crate) fn error(e: positio::Error) -> PyErr {
    PositioError::new_err(e.to_string())
}

/// The compute device named as on the command line (`cpu`, `cuda`, `cuda:N`), checked with
/// the precision as the command line checks it (int8: inference, on the CPU).
pub(crate) fn device_for(name: &str, trains: bool) -> PyResult<positio::runtime::DeviceKind> {
    let kind = positio::runtime::DeviceKind::from_str(name).map_err(error)?;
    positio::runtime::check_precision(positio::kernels::precision(), kind, trains)
        .map_err(error)?;
    Ok(kind)
}

/// [`device_for`] an inference.
pub(crate) fn device(name: &str) -> PyResult<positio::runtime::DeviceKind> {
    device_for(name, false)
}

/// `work` on the device `kind` with the GIL released (loading a model, embedding documents);
/// a library error becomes a `PositioError`.
pub(crate) fn on_device<T: Send>(
    py: Python<'_>,
    kind: positio::runtime::DeviceKind,
    work: impl FnOnce(&positio::runtime::Device) -> positio::Result<T> + Send,
) -> PyResult<T> {
    py.detach(|| work(&positio::runtime::device(kind)?))
        .map_err(error)
}

/// Texts given as one string or a list of strings, and whether it was one.
pub(crate) fn texts_of(texts: &Bound<'_, PyAny>) -> PyResult<(Vec<String>, bool)> {
    match texts.extract::<String>() {
        Ok(one) => Ok((vec![one], true)),
        Err(_) => Ok((texts.extract::<Vec<String>>()?, false)),
    }
}

/// A count option that must be at least 1 (`batch_size`, `top`).
pub(crate) fn positive(name: &str, value: usize) -> PyResult<usize> {
    if value == 0 {
        return Err(PositioError::new_err(format!("{name}: must be at least 1")));
    }
    Ok(value)
}

/// JSON (what the command line prints) as Python objects.
pub(crate) fn from_json(py: Python<'_>, value: &impl serde::Serialize) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| PositioError::new_err(format!("cannot represent the result: {e}")))?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// The first result when the call was given one input (a string), else the list of all.
pub(crate) fn one_or_all<T: serde::Serialize>(
    py: Python<'_>,
    results: &[T],
    one: bool,
) -> PyResult<Py<PyAny>> {
    match (one, results.first()) {
        (true, Some(first)) => from_json(py, first),
        _ => from_json(py, &results),
    }
}

/// Sets the precision of matrix products for every later call, as `--precision` does:
/// "fp32", "bf16" or "int8" (int8: CPU inference only; `finetune` refuses it).
#[pyfunction]
fn set_precision(precision: &str) -> PyResult<()> {
    use positio::kernels::Precision;
    let p = match precision {
        "fp32" => Precision::Fp32,
        "bf16" => Precision::Bf16,
        "int8" => Precision::Int8,
        other => {
            return Err(PositioError::new_err(format!(
                "precision {other:?}: expected \"fp32\", \"bf16\" or \"int8\""
            )))
        }
    };
    positio::kernels::set_precision(p);
    Ok(())
}

#[pymodule]
fn _positio(m: &Bound<'_, PyModule>) -> PyResult<()> {
    positio::runtime::init();
    // Ctrl-C belongs to Python: `finetune` turns a KeyboardInterrupt into a clean stop.
    positio::train::trainer::handle_signals(false);
    m.add("PositioError", m.py().get_type::<PositioError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(set_precision, m)?)?;
    m.add_class::<models::Encoder>()?;
    m.add_class::<models::Classifier>()?;
    m.add_class::<models::Tagger>()?;
    m.add_class::<models::Reranker>()?;
    m.add_class::<search::Index>()?;
    m.add_class::<search::Recommender>()?;
    m.add_function(wrap_pyfunction!(train::finetune, m)?)?;
    m.add_function(wrap_pyfunction!(train::pretrain, m)?)?;
    Ok(())
}
