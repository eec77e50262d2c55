//! `grade` / `grade_batch`: the verifier ([`hicra_verify::verify`]) for Python. The batch
//! form converts the inputs under the GIL, then releases it and grades in parallel (rayon).

use std::str::FromStr;

use hicra_verify::{Config, ExtractMode, Gold, Verdict, verify};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use rayon::prelude::*;
use serde_json::Value;

use crate::guard::{guarded, panic_message};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(grade, m)?)?;
    m.add_function(wrap_pyfunction!(grade_batch, m)?)?;
    Ok(())
}

/// Reads the extraction mode (`flexible`, `strict-boxed` or `strict`).
fn parse_mode(mode: &str) -> PyResult<Config> {
    ExtractMode::from_str(mode)
        .map(Config::with_mode)
        .map_err(|e| PyValueError::new_err(format!("mode: {e}")))
}

/// A Python gold (str, int, float, or a non-empty list/tuple of those) as the JSON value
/// `hicra grade` would read, so both paths share [`Gold::from_json`]'s rules.
fn gold_json(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(
            "a gold answer must be a str, int, float or list, not a bool",
        ));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(match obj.extract::<i64>() {
            Ok(i) => Value::from(i),
            // Beyond 64 bits: the digits as text, which the verifier reads exactly.
            Err(_) => Value::String(obj.str()?.to_cow()?.into_owned()),
        });
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let x = f.value();
        return serde_json::Number::from_f64(x)
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err(format!("gold answer {x} is not finite")));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items: PyResult<Vec<Value>> = obj.try_iter()?.map(|item| gold_json(&item?)).collect();
        return Ok(Value::Array(items?));
    }
    Err(PyTypeError::new_err(format!(
        "a gold answer must be a str, int, float or list, not {}",
        obj.get_type().name()?
    )))
}

fn to_gold(obj: &Bound<'_, PyAny>) -> PyResult<Gold> {
    Gold::from_json(&gold_json(obj)?).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn verdict_dict<'py>(py: Python<'py>, v: &Verdict) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("correct", v.correct)?;
    d.set_item("extracted", v.extracted.as_deref())?;
    d.set_item("reason", &v.reason)?;
    Ok(d)
}

/// Grades one response against its gold: `{"correct", "extracted", "reason"}`.
#[pyfunction]
#[pyo3(signature = (gold, response, mode = "flexible"))]
fn grade<'py>(
    py: Python<'py>,
    gold: &Bound<'py, PyAny>,
    response: &str,
    mode: &str,
) -> PyResult<Bound<'py, PyDict>> {
    guarded("grade", || {
        let config = parse_mode(mode)?;
        let gold = to_gold(gold).map_err(|e| prefix(py, e, "gold"))?;
        let verdict = py.detach(|| verify(&gold, response, &config));
        verdict_dict(py, &verdict)
    })
}

/// Re-raises `err` with `context: ` before its message (same exception type).
fn prefix(py: Python<'_>, err: PyErr, context: &str) -> PyErr {
    let message = format!("{context}: {}", err.value(py));
    if err.is_instance_of::<PyTypeError>(py) {
        PyTypeError::new_err(message)
    } else {
        PyValueError::new_err(message)
    }
}

/// Grades `responses[i]` against `golds[i]` for every `i`, in parallel with the GIL released.
/// `threads`: size of a dedicated thread pool (default: rayon's global pool, one thread
/// per core or `RAYON_NUM_THREADS`).
#[pyfunction]
#[pyo3(signature = (golds, responses, mode = "flexible", threads = None))]
fn grade_batch<'py>(
    py: Python<'py>,
    golds: &Bound<'py, PyAny>,
    responses: &Bound<'py, PyAny>,
    mode: &str,
    threads: Option<usize>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    guarded("grade_batch", || {
        let config = parse_mode(mode)?;
        let golds: Vec<Gold> = golds
            .try_iter()?
            .enumerate()
            .map(|(i, g)| to_gold(&g?).map_err(|e| prefix(py, e, &format!("golds[{i}]"))))
            .collect::<PyResult<_>>()?;
        let responses: Vec<String> = responses
            .try_iter()?
            .enumerate()
            .map(|(i, r)| {
                r?.extract::<String>()
                    .map_err(|_| PyTypeError::new_err(format!("responses[{i}] must be a str")))
            })
            .collect::<PyResult<_>>()?;
        if golds.len() != responses.len() {
            return Err(PyValueError::new_err(format!(
                "{} golds but {} responses (one gold per response expected)",
                golds.len(),
                responses.len()
            )));
        }
        if threads == Some(0) {
            return Err(PyValueError::new_err("threads must be at least 1"));
        }
        let verdicts = py.detach(|| grade_parallel(&golds, &responses, &config, threads))?;
        verdicts.iter().map(|v| verdict_dict(py, v)).collect()
    })
}

/// The parallel part (no Python objects). A panic inside a worker is reported with the
/// index of the pair.
fn grade_parallel(
    golds: &[Gold],
    responses: &[String],
    config: &Config,
    threads: Option<usize>,
) -> PyResult<Vec<Verdict>> {
    let run = || -> Result<Vec<Verdict>, String> {
        golds
            .par_iter()
            .zip(responses.par_iter())
            .enumerate()
            .map(|(i, (gold, response))| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    verify(gold, response, config)
                }))
                .map_err(|p| format!("pair {i}: {}", panic_message(p.as_ref())))
            })
            .collect()
    };
    let result = match threads {
        None => run(),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| PyValueError::new_err(format!("cannot start {n} threads: {e}")))?
            .install(run),
    };
    result.map_err(|m| {
        crate::guard::RustPanicError::new_err(format!("internal error in grade_batch: {m}"))
    })
}
