//! Import through the buffer protocol (PEP 3118): the `Py_buffer` is held
//! for the tensor's life; its format names the dtype.

use std::ffi::CStr;

use dlpack_core::ffi::DLDevice;
use dlpack_core::managed::ManagedTensorVersioned;
use pyo3::prelude::*;

use crate::cpython::owner::HeldBuffer;
use crate::cpython::pybuffer::Py_buffer;
use crate::error::{IntoPyResult, buffer_err};
use crate::export::host::export_host;
use crate::values::interface::format_dtype;

/// Imports through the buffer protocol; the view is held for the tensor's
/// life.
pub(crate) fn via_buffer(obj: &Bound<'_, PyAny>) -> PyResult<ManagedTensorVersioned> {
    let held = HeldBuffer::get(obj)?;
    let v = held.view();
    if !v.suboffsets.is_null() {
        return Err(buffer_err(
            "the buffer has suboffsets (indirect, PIL-style memory), which DLPack cannot describe",
        ));
    }
    let format = if v.format.is_null() {
        None
    } else {
        // SAFETY: a non-NULL format is a NUL-terminated string owned by the view.
        // Bytes that are not UTF-8 read as U+FFFD, which no format has.
        Some(unsafe { CStr::from_ptr(v.format) }.to_string_lossy())
    };
    let dtype = format_dtype(format.as_deref(), v.itemsize).map_err(buffer_err)?;
    // PyBUF_MAX_NDIM: CPython's own limit for buffers.
    let ndim = usize::try_from(v.ndim)
        .ok()
        .filter(|&n| n <= 64)
        .ok_or_else(|| {
            buffer_err(format!(
                "the buffer has ndim {}; the buffer protocol allows 0 to 64",
                v.ndim
            ))
        })?;
    let (shape, strides) = buffer_dims(v, ndim)?;
    let first = v.buf.cast::<u8>();
    let read_only = v.readonly != 0;
    export_host(
        held,
        first,
        DLDevice::cpu(),
        dtype,
        &shape,
        Some(&strides),
        read_only,
    )
    .py()
}

fn buffer_dims(v: &Py_buffer, ndim: usize) -> PyResult<(Vec<i64>, Vec<i64>)> {
    if ndim == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    if v.shape.is_null() {
        // Only possible without PyBUF_ND: a flat run of bytes.
        return Ok((
            vec![v.len.max(0) as i64 / v.itemsize.max(1) as i64],
            vec![1],
        ));
    }
    // SAFETY: the exporter provides ndim shape entries (PyBUF_ND requested).
    let shape: Vec<i64> = unsafe { std::slice::from_raw_parts(v.shape, ndim) }
        .iter()
        .map(|&d| d as i64)
        .collect();
    let strides = if v.strides.is_null() {
        let mut s = vec![0i64; ndim];
        dlpack_core::layout::row_major_strides(&shape, &mut s).py()?;
        s
    } else {
        // SAFETY: as above, PyBUF_STRIDES requested.
        let bytes = unsafe { std::slice::from_raw_parts(v.strides, ndim) };
        byte_strides_to_elements(bytes.iter().map(|&b| b as i64), &shape, v.itemsize as i64)?
    };
    Ok((shape, strides))
}

pub(crate) fn byte_strides_to_elements(
    bytes: impl Iterator<Item = i64>,
    shape: &[i64],
    itemsize: i64,
) -> PyResult<Vec<i64>> {
    bytes
        .zip(shape)
        .enumerate()
        .map(|(axis, (b, &extent))| {
            if itemsize <= 0 || (b % itemsize != 0 && extent > 1) {
                Err(buffer_err(format!(
                    "stride {b} bytes on axis {axis} is not a multiple of the item size {itemsize}; \
                     DLPack strides count elements"
                )))
            } else {
                Ok(b / itemsize.max(1))
            }
        })
        .collect()
}
