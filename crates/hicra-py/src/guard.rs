//! The FFI boundary guard: runs Rust code so that a panic becomes a Python exception
//! (`RustPanicError`, a `RuntimeError`) carrying the panic message.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::create_exception;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

create_exception!(
    _native,
    RustPanicError,
    PyRuntimeError,
    "A bug inside hicra's Rust code (a panic), turned into a Python exception."
);

/// Runs `f`, turning a panic into `RustPanicError` naming `what`.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(RustPanicError::new_err(format!(
            "internal error in {what}: {}",
            panic_message(payload.as_ref())
        ))),
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// Panics inside the guard on purpose: lets the tests check that a Rust panic arrives in
/// Python as an exception (no real entry point is known to panic).
#[pyfunction]
pub fn debug_panic(message: &str) -> PyResult<()> {
    guarded("debug_panic", || panic!("{message}"))
}
