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

/// Borrows `obj` for the call through its type's DLPack C exchange API (dlpark's
/// `ExchangeApi::with_tensor_view_no_sync`: `dltensor_from_py_object_no_sync`, no allocation),
/// like `dlpack._testing.take_borrowed`; types without the API go through [`take`].
#[pyfunction]
fn take_borrowed(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    match dlpark::python::consumer::exchange::ExchangeApi::from_object(obj.as_borrowed())? {
        Some(api) => api.with_tensor_view_no_sync(obj.as_borrowed(), |t, _stream| t.ndim as usize),
        None => take(obj),
    }
}

#[pymodule]
fn dlpark_anchor(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(noop, m)?)?;
    m.add_function(wrap_pyfunction!(take, m)?)?;
    m.add_function(wrap_pyfunction!(take_borrowed, m)?)?;
    Ok(())
}
