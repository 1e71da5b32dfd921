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
        })
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
