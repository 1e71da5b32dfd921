//! The dlpark anchor of `bench_exchange.py`: what a `#[pyfunction]` taking a tensor adds to the
//! call when dlpark imports it, measured over a no-op `#[pyfunction]` of the same module.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The call floor: one int in, one int out.
#[pyfunction]
fn noop(x: i64) -> i64 {
    x
}

/// Imports `obj` the way dlpark recommends for ordinary ingestion (`python::from_dlpack`: the
/// DLPack C exchange API when the type has one, else `__dlpack__(max_version=...)`) and returns
/// its number of dimensions.
#[pyfunction]
fn take(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let tensor = dlpark::python::from_dlpack(obj.as_borrowed(), None, None)?;
    let view = tensor
        .validate()
        .map_err(|err| PyValueError::new_err(err.to_string()))?;
    Ok(view.ndim())
}

#[pymodule]
fn dlpark_anchor(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(noop, m)?)?;
    m.add_function(wrap_pyfunction!(take, m)?)?;
    Ok(())
}
