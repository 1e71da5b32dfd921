//! Device tuples: `(DLDeviceType(t), id)` as `__dlpack_device__` and the
//! `device` property answer.

use dlpack_core::ffi::DLDevice;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

/// `dlpack.DLDeviceType` members by value (set when the module is loaded).
pub(crate) static DEVICE_TYPE_ENUM: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static DEVICE_MEMBERS: PyOnceLock<Vec<Option<Py<PyAny>>>> = PyOnceLock::new();

/// `(DLDeviceType(t), id)`, with a plain int for unknown types or when the
/// enum is not loaded.
pub(crate) fn device_tuple<'py>(
    py: Python<'py>,
    device: DLDevice,
) -> PyResult<Bound<'py, PyTuple>> {
    let members = DEVICE_MEMBERS.get_or_try_init(py, || -> PyResult<_> {
        let Some(e) = DEVICE_TYPE_ENUM.get(py) else {
            return Ok(Vec::new());
        };
        let e = e.bind(py);
        Ok((0..=20)
            .map(|i| e.call1((i,)).ok().map(Bound::unbind))
            .collect())
    })?;
    let t = device.device_type.0;
    let ty = match usize::try_from(t)
        .ok()
        .and_then(|i| members.get(i))
        .and_then(Option::as_ref)
    {
        Some(m) => m.bind(py).clone(),
        None => t.into_pyobject(py)?.into_any(),
    };
    PyTuple::new(py, [ty, device.device_id.into_pyobject(py)?.into_any()])
}
