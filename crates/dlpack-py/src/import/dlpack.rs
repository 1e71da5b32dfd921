//! Import from a producer: the type's C exchange API table
//! (`managed_tensor_from_py_object_no_sync`), or `__dlpack__` called as a
//! consumer (vectorcall, `max_version=(1, 3)`, the consumer's stream only
//! for devices with streams).

use dlpack_core::ffi::{DLDevice, DLDeviceType};
use dlpack_core::managed::AnyManagedTensor;
use dlpack_core::protocol::Abi;
use pyo3::intern;
use pyo3::prelude::*;

use crate::error::{buffer_err, show, type_err, type_name};
use crate::export::capsule::{consume_capsule, take_raw};
use crate::import::{ExtractOptions, ImportPath, PyTensor};

pub(crate) fn via_exchange(
    obj: &Bound<'_, PyAny>,
    table: &'static dlpack_core::ffi::DLPackExchangeAPI,
) -> PyResult<PyTensor> {
    let Some(f) = table.managed_tensor_from_py_object_no_sync else {
        return Err(type_err(
            "the exchange API table has no managed_tensor_from_py_object_no_sync",
        ));
    };
    let mut out = std::ptr::null_mut();
    // SAFETY: the table belongs to obj's type; the GIL is held.
    let rc = unsafe { f(obj.as_ptr().cast(), &mut out) };
    if rc != 0 || out.is_null() {
        return Err(PyErr::take(obj.py()).unwrap_or_else(|| {
            buffer_err(
                "the producer's managed_tensor_from_py_object_no_sync failed without an exception",
            )
        }));
    }
    // SAFETY: we own the returned versioned tensor.
    let tensor = unsafe { take_raw(Abi::Versioned, out.cast())? };
    let mut t = PyTensor::new(tensor, ImportPath::ExchangeApi);
    let device = t.view().device();
    if device.device_type.stream_kind() != dlpack_core::device::StreamKind::None {
        if let Some(cws) = table.current_work_stream {
            let mut s = std::ptr::null_mut();
            // SAFETY: plain C call with an out pointer.
            if unsafe { cws(device.device_type, device.device_id, &mut s) } == 0 {
                t.work_stream = Some(s);
            } else {
                PyErr::take(obj.py());
            }
        }
    }
    Ok(t)
}

/// Calls `obj.__dlpack__(...)` as a consumer and takes the capsule.
#[inline]
pub(crate) fn via_dlpack(
    obj: &Bound<'_, PyAny>,
    opts: &ExtractOptions<'_>,
) -> PyResult<AnyManagedTensor> {
    if !opts.is_plain() {
        return via_dlpack_kwargs(obj, opts);
    }
    // No stream: no need to ask for the device first (a CUDA producer given
    // no stream orders on the legacy default stream).
    consume_capsule(&crate::cpython::vcall::dlpack_max_version_1_3(obj)?)
}

/// `via_dlpack` with a stream, `dl_device`, `copy` or another `max_version`.
#[inline(never)]
fn via_dlpack_kwargs(
    obj: &Bound<'_, PyAny>,
    opts: &ExtractOptions<'_>,
) -> PyResult<AnyManagedTensor> {
    let py = obj.py();
    let stream = consumer_stream(obj, opts.stream)?
        .map(|s| s.into_pyobject(py))
        .transpose()?;
    let max_version = opts.max_version.into_pyobject(py)?;
    let dl_device = opts
        .dl_device
        .map(|d| (d.device_type.0, d.device_id).into_pyobject(py))
        .transpose()?;
    let copy = opts.copy.map(|c| pyo3::types::PyBool::new(py, c));
    let kwargs = [
        stream.as_deref(),
        Some(max_version.as_any()),
        dl_device.as_ref().map(|d| d.as_any()),
        copy.as_deref().map(|c| c.as_any()),
    ];
    consume_capsule(&crate::cpython::vcall::dlpack_call(obj, kwargs)?)
}

/// The stream to pass: the consumer's, only for devices with streams.
fn consumer_stream(obj: &Bound<'_, PyAny>, stream: Option<i64>) -> PyResult<Option<i64>> {
    let Some(s) = stream else { return Ok(None) };
    let dev = device_of(obj)?;
    Ok(match dev.device_type.stream_kind() {
        dlpack_core::device::StreamKind::None => None,
        _ => Some(s),
    })
}

/// `obj.__dlpack_device__()` as a device (a device id of `None`, as some
/// producers answer for the CPU, reads as 0).
pub(crate) fn device_of(obj: &Bound<'_, PyAny>) -> PyResult<DLDevice> {
    let py = obj.py();
    let got = obj.call_method0(intern!(py, "__dlpack_device__"))?;
    let (t, id): (i32, Option<i32>) = got.extract().map_err(|_| {
        type_err(format!(
            "{}.__dlpack_device__() must return a (device_type, device_id) tuple of ints \
             that fit in int32, got {}",
            type_name(obj),
            show(&got)
        ))
    })?;
    Ok(DLDevice::new(DLDeviceType(t), id.unwrap_or(0)))
}
