//! Pickling (`__reduce_ex__`) of a shared host tensor: the export side of
//! the pickle transport; `crate::import::pickle` is the other side.
//!
//! The reduce tuple is `(dlpack._native._from_pickle, (FORMAT, data, shape,
//! strides, (code, bits, lanes), byte_offset, read_only))`. `data` is the
//! tensor's *byte span* (the bytes from the lowest to one past the highest
//! element it reaches), `byte_offset` the position of element 0 in it, and
//! the strides are the tensor's own: so every layout (negative strides,
//! broadcast zero strides, padding between rows) travels as it is, and with
//! protocol 5 the span is a `pickle.PickleBuffer` over the tensor's own
//! memory, which a transport that takes buffers out of band sends without a
//! copy (a compact copy would lose that for every non-contiguous tensor).
//! The cost: bytes inside the span that no element uses travel too. With
//! protocols below 5 the span is copied in band as `bytes`, and a writable
//! tensor adds an eighth argument, `writable_copy=True`, for the receiver to
//! copy the bytes once into a `bytearray`: so the copy is writable exactly
//! when the source is. (A `bytearray` sent below protocol 5 would cost a copy
//! more on each side: pickle reduces it to `bytes` and rebuilds it.)
//!
//! Device memory is refused, never copied to the host behind the caller's
//! back: the message says how to copy it.

use std::sync::Arc;

use dlpack_core::ffi::{DLDataType, DLDataTypeCode};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyTuple};

use crate::error::{IntoPyResult, type_err};
use crate::export::host::export_host;
use crate::export::shared::SharedTensor;

/// The version of the reduce tuple's argument layout (the first argument).
pub(crate) const FORMAT: u32 = 1;

static RECONSTRUCT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static PICKLE_BUFFER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `__reduce_ex__(protocol)` of a tensor shared by one of our objects;
/// `wrap` makes the Python object (speaking the buffer protocol) over the
/// flat bytes of the span, for `pickle.PickleBuffer`.
pub(crate) fn reduce<'py>(
    py: Python<'py>,
    shared: &Arc<SharedTensor>,
    protocol: i64,
    wrap: impl FnOnce(Arc<SharedTensor>) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let view = shared.view();
    let device = view.device();
    if !device.device_type.is_host_accessible() {
        return Err(type_err(format!(
            "cannot pickle a tensor on {device:?}: pickling sends host memory, and device \
             memory is never copied to the host implicitly; copy it first, e.g. \
             dlpack.asdlpack(t.__dlpack__(max_version=(1, 3), dl_device=(1, 0), copy=True)) \
             (kDLCPU, 0) or \
             numpy.from_dlpack(t, device=\"cpu\", copy=True)"
        )));
    }
    shared.host_access()?;
    let layout = *view.layout();
    let dtype = view.dtype();
    let read_only = shared.read_only();
    let (first, span, offset) = if layout.elements == 0 {
        (std::ptr::null_mut(), 0usize, 0u64)
    } else {
        let span = usize::try_from(layout.span_bytes()).map_err(|_| {
            type_err("cannot pickle: the tensor's byte span exceeds the address space")
        })?;
        (
            view.data_ptr().wrapping_offset(layout.start as isize),
            span,
            layout.start.unsigned_abs(),
        )
    };
    let in_band = span == 0 || protocol < 5;
    let data: Bound<'py, PyAny> = if in_band {
        let bytes: &[u8] = if span == 0 {
            &[]
        } else {
            // SAFETY: host-accessible memory of `span` bytes from `first`
            // (the layout validated when the tensor was taken in), kept
            // alive by `shared` for this call.
            unsafe { std::slice::from_raw_parts(first.cast_const(), span) }
        };
        PyBytes::new(py, bytes).into_any()
    } else {
        let flat = export_host(
            Arc::clone(shared),
            first,
            device,
            DLDataType::new(DLDataTypeCode::kDLUInt, 8, 1),
            &[span as i64],
            None,
            read_only,
        )
        .py()?;
        let obj = wrap(SharedTensor::new(flat.into()))?;
        let pb = PICKLE_BUFFER.get_or_try_init(py, || {
            py.import("pickle")?
                .getattr("PickleBuffer")
                .map(Bound::unbind)
        })?;
        pb.bind(py).call1((obj,))?
    };
    let reconstruct = RECONSTRUCT.get_or_try_init(py, || {
        py.import("dlpack._native")?
            .getattr("_from_pickle")
            .map(Bound::unbind)
    })?;
    let shape = PyTuple::new(py, view.shape())?;
    let strides = PyTuple::new(py, view.strides())?;
    let dtype = (dtype.code, dtype.bits, dtype.lanes);
    // A writable tensor's bytes in band (`bytes`: read-only) arrive writable
    // (as from protocol 5 in band, which sends a `bytearray`).
    let args = if in_band && !read_only {
        (FORMAT, data, shape, strides, dtype, offset, read_only, true)
            .into_pyobject(py)?
            .into_any()
    } else {
        (FORMAT, data, shape, strides, dtype, offset, read_only)
            .into_pyobject(py)?
            .into_any()
    };
    PyTuple::new(py, [reconstruct.bind(py).clone().into_any(), args])
}
