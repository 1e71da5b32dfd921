//! `dlpack.buffer.Buffer`: pydlpack's view of an object through the buffer
//! protocol — a `Py_buffer` requested with the caller's `PyBUF_*` flags,
//! held until the `Buffer` is freed, and its fields as Python values.

use std::ffi::{CStr, c_int};

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::cpython::owner::HeldBuffer;

/// `dlpack.buffer.Buffer(obj, flags=PyBUF_SIMPLE)`.
#[pyclass(frozen, module = "dlpack.buffer", name = "Buffer")]
#[derive(Debug)]
pub struct Buffer {
    held: HeldBuffer,
}

/// `n` entries at `p` (`None` for NULL).
///
/// # Safety
///
/// A non-NULL `p` points to `n` readable values.
unsafe fn entries<'py>(
    py: Python<'py>,
    p: *const pyo3::ffi::Py_ssize_t,
    n: c_int,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    if p.is_null() {
        return Ok(None);
    }
    let n = usize::try_from(n).unwrap_or(0);
    // SAFETY: by the caller's contract.
    PyTuple::new(py, unsafe { std::slice::from_raw_parts(p, n) }).map(Some)
}

#[pymethods]
impl Buffer {
    /// Requests a view of `obj` with `flags`; the exporter's error if it
    /// refuses (e.g. `BufferError` for `PyBUF_WRITABLE` on read-only data).
    #[new]
    #[pyo3(signature = (obj, flags = 0))]
    fn new(obj: &Bound<'_, PyAny>, flags: c_int) -> PyResult<Self> {
        crate::error::guard(|| {
            Ok(Buffer {
                held: HeldBuffer::request(obj, flags)?,
            })
        })
    }

    /// The exporting object.
    #[getter]
    fn obj(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        crate::error::guard(|| {
            Ok({
                let p = self.held.view().obj;
                if p.is_null() {
                    return Ok(py.None());
                }
                // SAFETY: the view holds a reference to its exporter.
                unsafe { Bound::from_borrowed_ptr(py, p) }.unbind()
            })
        })
    }

    /// Dimensions.
    #[getter]
    fn ndim(&self) -> PyResult<c_int> {
        crate::error::guard(|| Ok(self.held.view().ndim))
    }

    /// Extents (`None` when not requested: no `PyBUF_ND`).
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        crate::error::guard(|| {
            let v = self.held.view();
            // SAFETY: the exporter filled ndim entries, or NULL.
            unsafe { entries(py, v.shape, v.ndim) }
        })
    }

    /// Strides in bytes (`None` when not requested: no `PyBUF_STRIDES`).
    #[getter]
    fn strides<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        crate::error::guard(|| {
            let v = self.held.view();
            // SAFETY: as above.
            unsafe { entries(py, v.strides, v.ndim) }
        })
    }

    /// PIL-style suboffsets (`None` for plain memory).
    #[getter]
    fn suboffsets<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        crate::error::guard(|| {
            let v = self.held.view();
            // SAFETY: as above.
            unsafe { entries(py, v.suboffsets, v.ndim) }
        })
    }

    /// Bytes per item.
    #[getter]
    fn itemsize(&self) -> PyResult<isize> {
        crate::error::guard(|| Ok(self.held.view().itemsize))
    }

    /// Bytes of the whole buffer.
    #[getter]
    fn len(&self) -> PyResult<isize> {
        crate::error::guard(|| Ok(self.held.view().len))
    }

    /// Whether the exporter gave read-only memory.
    #[getter]
    fn readonly(&self) -> PyResult<bool> {
        crate::error::guard(|| Ok(self.held.view().readonly != 0))
    }

    /// The address of the first byte (`None` for NULL).
    #[getter]
    fn pointer(&self) -> PyResult<Option<usize>> {
        crate::error::guard(|| {
            Ok({
                let p = self.held.view().buf;
                (!p.is_null()).then_some(p as usize)
            })
        })
    }

    /// The PEP 3118 format (`None` when not requested: no `PyBUF_FORMAT`).
    #[getter]
    fn format(&self) -> PyResult<Option<String>> {
        crate::error::guard(|| {
            Ok({
                let f = self.held.view().format;
                if f.is_null() {
                    return Ok(None);
                }
                // SAFETY: a non-NULL format is a C string owned by the view.
                Some(unsafe { CStr::from_ptr(f) }.to_string_lossy().into_owned())
            })
        })
    }

    fn __repr__(&self) -> PyResult<String> {
        crate::error::guard(|| {
            Ok({
                let v = self.held.view();
                format!(
                    "<dlpack.buffer.Buffer ndim={} itemsize={} len={} readonly={}>",
                    v.ndim,
                    v.itemsize,
                    v.len,
                    v.readonly != 0
                )
            })
        })
    }
}
