//! Unpickling: the import side of the pickle transport
//! (`crate::export::pickle` writes what this reads). The received bytes are
//! imported through the buffer protocol ([`via_buffer`]: the `Py_buffer`
//! is held for the tensor's life, so an out-of-band buffer is used where it
//! lies, without a copy), then viewed with the recorded shape, strides,
//! dtype and byte offset after checking that they fit inside it.

use std::sync::Arc;

use dlpack_core::ffi::{DLDataType, DLDevice};
use dlpack_core::layout::analyze;
use pyo3::conversion::FromPyObjectOwned;
use pyo3::prelude::*;
use pyo3::types::PyByteArray;

use crate::error::{IntoPyResult, buffer_err, show, value_err};
use crate::export::host::export_host;
use crate::export::pickle::FORMAT;
use crate::export::shared::SharedTensor;
use crate::import::buffer::via_buffer;

/// What `dlpack._native._from_pickle` receives after the data.
#[derive(Debug)]
pub(crate) struct Pickled {
    shape: Vec<i64>,
    strides: Vec<i64>,
    dtype: (u8, u8, u16),
    byte_offset: u64,
    read_only: bool,
    /// The data came in band as `bytes` for a writable tensor (protocols
    /// below 5 have no `bytearray` of their own): copy it once, writable.
    writable_copy: bool,
}

impl Pickled {
    /// Reads the metadata of a pickle; a value of the wrong kind is a
    /// `ValueError` naming it (pickles come from outside).
    pub(crate) fn read(
        shape: &Bound<'_, PyAny>,
        strides: &Bound<'_, PyAny>,
        dtype: &Bound<'_, PyAny>,
        byte_offset: &Bound<'_, PyAny>,
        read_only: &Bound<'_, PyAny>,
        writable_copy: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        fn get<'py, T: FromPyObjectOwned<'py>>(
            v: &Bound<'py, PyAny>,
            what: &str,
            rule: &str,
        ) -> PyResult<T> {
            v.extract()
                .map_err(|_| value_err(format!("pickled {what} {} is not {rule}", show(v))))
        }
        Ok(Pickled {
            shape: get(shape, "shape", "a sequence of 64-bit integers")?,
            strides: get(strides, "strides", "a sequence of 64-bit integers")?,
            dtype: get(
                dtype,
                "dtype",
                "a (code, bits, lanes) tuple of DLDataType fields",
            )?,
            byte_offset: get(byte_offset, "byte_offset", "a non-negative 64-bit integer")?,
            read_only: get(read_only, "read_only", "a bool")?,
            writable_copy: match writable_copy {
                Some(v) => get(v, "writable_copy", "a bool")?,
                None => false,
            },
        })
    }
}

/// The object whose bytes the tensor lies in: `data` itself, or a
/// `bytearray` copy of it when the pickle asks for a writable copy (of a
/// writable tensor's bytes sent in band as `bytes`).
pub(crate) fn received<'py>(data: &Bound<'py, PyAny>, p: &Pickled) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `data` is a live object; the check only reads its type.
    let is_buffer = unsafe { crate::cpython::pybuffer::PyObject_CheckBuffer(data.as_ptr()) } == 1;
    if p.writable_copy && !p.read_only && is_buffer {
        Ok(PyByteArray::from(data)?.into_any())
    } else {
        // Anything but a buffer is refused by `from_pickle`, as without a copy.
        Ok(data.clone())
    }
}

/// The tensor of a pickled one whose bytes are `data`; read-only when it
/// was pickled read-only or `data` is.
pub(crate) fn from_pickle(
    format: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    p: &Pickled,
) -> PyResult<Arc<SharedTensor>> {
    if format.extract::<u32>().ok() != Some(FORMAT) {
        return Err(value_err(format!(
            "pickled dlpack tensor of format {}; this version reads format {FORMAT}",
            show(format)
        )));
    }
    let (code, bits, lanes) = p.dtype;
    let dtype = DLDataType { code, bits, lanes };
    dtype
        .check_known()
        .map_err(|e| value_err(format!("pickled dtype {:?}: {e}", p.dtype)))?;
    let storage = dtype
        .storage(false)
        .map_err(|e| value_err(format!("pickled dtype {:?}: {e}", p.dtype)))?;
    if p.strides.len() != p.shape.len() {
        return Err(value_err(format!(
            "pickled shape {:?} and strides {:?} differ in length",
            p.shape, p.strides
        )));
    }
    let layout = analyze(&p.shape, Some(&p.strides), storage).map_err(|e| {
        value_err(format!(
            "pickled shape {:?} and strides {:?}: {e}",
            p.shape, p.strides
        ))
    })?;
    let bytes = via_buffer(data)?;
    let view = bytes.view();
    if !view.is_c_contiguous() {
        return Err(buffer_err(format!(
            "the pickled tensor's data buffer is not contiguous (shape {:?}, strides {:?})",
            view.shape(),
            view.strides().collect::<Vec<_>>()
        )));
    }
    let len = view.layout().span_bytes();
    let base = view.data_ptr();
    let read_only = p.read_only || !view.flags().is_writable();
    let first = if layout.elements == 0 {
        std::ptr::null_mut()
    } else {
        // The elements reach [offset + start, offset + end) of the buffer.
        let lo = i128::from(p.byte_offset) + i128::from(layout.start);
        let hi = i128::from(p.byte_offset) + i128::from(layout.end);
        if lo < 0 || hi > i128::from(len) {
            return Err(value_err(format!(
                "pickled shape {:?}, strides {:?}, dtype {:?} and byte_offset {} reach bytes \
                 [{lo}, {hi}) of a {len}-byte buffer",
                p.shape, p.strides, p.dtype, p.byte_offset
            )));
        }
        // In bounds: checked just above.
        base.wrapping_add(p.byte_offset as usize)
    };
    let t = export_host(
        bytes,
        first,
        DLDevice::cpu(),
        dtype,
        &p.shape,
        Some(&p.strides),
        read_only,
    )
    .py()?;
    Ok(SharedTensor::new(t.into()))
}
