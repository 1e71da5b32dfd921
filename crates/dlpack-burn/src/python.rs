//! Python reach (feature `python`), in the shape every adapter crate of the
//! workspace gives it, through `dlpack-py`'s public API only.
//!
//! - [`to_python`]: `TensorData` (or a burn `Tensor`, or a
//!   [`DataExport`](crate::producer::DataExport)) becomes a `dlpack.Tensor`,
//!   which `numpy.from_dlpack`, `torch.from_dlpack`, JAX, ... import without
//!   a copy: the object owns the bytes as long as any consumer's array over
//!   them lives.
//! - [`from_python`]: any Python tensor (`__dlpack__`, the buffer protocol,
//!   the array interfaces) becomes `TensorData` over its memory, zero-copy
//!   ([`into_tensor_data`](crate::consumer::into_tensor_data)); the Python
//!   object may go away first.
//! - [`copy_from_python`]: the one that copies, from any layout (a
//!   transpose, a step), reading the Python tensor in place for the call.
//!
//! Refusals are [`Error::Burn`] with the crate's typed [`crate::Error`];
//! an object no import path accepts is [`Error::Python`]. `Error` (and
//! [`crate::Error`]) convert into the Python exception the kind names
//! (`BufferError` for a layout, a dtype burn lacks or device memory), so
//! `?` works in a `#[pyfunction]`.
//!
//! ```
//! use burn_std::TensorData;
//! use dlpack_burn::python::{from_python, to_python};
//! use pyo3::prelude::*;
//!
//! Python::attach(|py| -> PyResult<()> {
//!     let data = TensorData::new(vec![1u8, 2, 3, 4, 5, 6], [2, 3]);
//!     let np = py.import("numpy")?;
//!     let a = np.call_method1("from_dlpack", (to_python(py, data)?,))?;
//!     assert_eq!(a.getattr("shape")?.extract::<(usize, usize)>()?, (2, 3));
//!     let back = from_python(&a)?; // the same bytes, no copy
//!     assert_eq!(back.as_slice::<u8>().unwrap(), &[1, 2, 3, 4, 5, 6]);
//!     Ok(())
//! })
//! .unwrap();
//! ```

use core::fmt;

use burn_std::TensorData;
use dlpack_py::{ExtractOptions, Tensor, extract, with_borrowed};
use pyo3::prelude::*;

use crate::consumer::{any_into_tensor_data, copy_tensor_data};
use crate::producer::IntoDlpack;

/// Why a Python object did not become burn data.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The object speaks no protocol `dlpack-py` imports, or its producer
    /// raised: the Python exception, unchanged.
    Python(PyErr),
    /// The imported tensor cannot become `TensorData` (dtype, device,
    /// layout): the crate's typed error.
    Burn(crate::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Python(err) => err.fmt(f),
            Error::Burn(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Python(err) => Some(err),
            Error::Burn(err) => Some(err),
        }
    }
}

impl From<PyErr> for Error {
    fn from(err: PyErr) -> Self {
        Error::Python(err)
    }
}

impl From<crate::Error> for Error {
    fn from(err: crate::Error) -> Self {
        Error::Burn(err)
    }
}

/// The exception of the burn error's kind, with its message; a Python
/// exception unchanged.
impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        match err {
            Error::Python(err) => err,
            Error::Burn(err) => err.into(),
        }
    }
}

/// The exception of [`crate::Error::kind`], with the error's message.
impl From<crate::Error> for PyErr {
    fn from(err: crate::Error) -> PyErr {
        dlpack_py::kind_err(err.kind(), err.to_string())
    }
}

/// burn data (or a tensor's data) as a `dlpack.Tensor`, in one call and
/// without copying. Writable unless the bytes are shared or the export is
/// read-only ([`DataExport::read_only`](crate::producer::DataExport::read_only)),
/// which NumPy honours.
///
/// # Errors
///
/// The export's [`crate::Error`] as a `BufferError` (quantized data, bools
/// stored as `u32`); the Python error if the object cannot be made.
pub fn to_python(py: Python<'_>, value: impl IntoDlpack) -> PyResult<Bound<'_, Tensor>> {
    let tensor = value.into_dlpack_versioned()?;
    Bound::new(py, Tensor::new(tensor))
}

/// `TensorData` over a Python tensor's memory, zero-copy: the bytes are
/// the producer's, kept alive until the last `Bytes` over them is dropped
/// (then the producer's deleter runs, from any thread).
///
/// # Errors
///
/// [`Error::Burn`] for a tensor [`into_tensor_data`](crate::consumer::into_tensor_data)
/// refuses; [`Error::Python`] when the object cannot be imported. The
/// imported tensor is released on error.
pub fn from_python(obj: &Bound<'_, PyAny>) -> Result<TensorData, Error> {
    let tensor = extract(obj, &ExtractOptions::default())?;
    Ok(any_into_tensor_data(tensor.into_tensor())?)
}

/// New `TensorData` holding a copy of a Python tensor's elements, from any
/// layout (the explicit way to take what [`from_python`] refuses with
/// [`crate::Error::NotCompact`]).
///
/// # Errors
///
/// As [`from_python`], without [`crate::Error::NotCompact`].
pub fn copy_from_python(obj: &Bound<'_, PyAny>) -> Result<TensorData, Error> {
    Ok(with_borrowed(obj, |view| copy_tensor_data(&view))??)
}
