//! `hicra._native`: the Rust half of the Python package `hicra`.
//!
//! It exposes the same code the `hicra` binary runs, not a second implementation:
//! [`hicra_rl::hicra::apply_hicra`] (module [`advantages`]), [`hicra_hier::GramSet`] and the
//! hierarchy metrics (module [`grams`]), [`hicra_verify::verify`] (module [`verify`]), and
//! the run analysis of `hicra analyze`, [`hicra_rl::analysis`] (module [`analysis`]).
//! The Python modules in `python/hicra/` wrap these with numpy/torch handling and the TRL
//! and verl integrations. Every entry point runs under [`guard::guarded`], so a Rust panic
//! reaches Python as `hicra.RustPanicError`, never as an abort.

use pyo3::prelude::*;

mod advantages;
mod analysis;
mod grams;
mod guard;
mod offsets;
mod verify;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RustPanicError", m.py().get_type::<guard::RustPanicError>())?;
    m.add_function(wrap_pyfunction!(guard::debug_panic, m)?)?;
    verify::register(m)?;
    grams::register(m)?;
    advantages::register(m)?;
    analysis::register(m)?;
    Ok(())
}
