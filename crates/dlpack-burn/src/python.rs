//! burn data to and from Python tensors, through `dlpack-py` (feature
//! `python`).
//!
//! - [`to_python`]: `TensorData` (or a burn `Tensor`, or a
//!   [`DataExport`](crate::producer::DataExport)) becomes a `dlpack.Tensor`
//!   object, which `numpy.from_dlpack`, `torch.from_dlpack`, JAX, CuPy, ...
//!   import without a copy.
//! - [`from_python`]: any Python tensor (`__dlpack__`, the buffer
//!   protocol, the array interfaces) becomes `TensorData` over its memory,
//!   zero-copy ([`into_tensor_data`](crate::consumer::into_tensor_data));
//!   [`copy_from_python`] takes any layout and copies once.
//!
//! Errors reach Python as the exception the DLPack standard names for them
//! (`BufferError`, `TypeError`, `ValueError`): [`Error`] converts into
//! `PyErr`, so `?` works in a `#[pyfunction]`.
//!
//! ```
//! use burn_std::TensorData;
//! use pyo3::prelude::*;
//!
//! Python::attach(|py| -> PyResult<()> {
//!     let data = TensorData::new(vec![1u8, 2, 3], [3]);
//!     let np = py.import("numpy")?;
//!     let array = np.call_method1("from_dlpack", (dlpack_burn::python::to_python(py, data)?,))?;
//!     assert_eq!(array.call_method0("sum")?.extract::<u64>()?, 6);
//!     let back = dlpack_burn::python::from_python(&array)?;
//!     assert_eq!(back.as_slice::<u8>().unwrap(), &[1, 2, 3]);
//!     Ok(())
//! })?;
//! # Ok::<(), PyErr>(())
//! ```

use burn_std::TensorData;
use dlpack_core::ErrorKind;
use dlpack_py::{ExtractOptions, Tensor, extract};
use pyo3::exceptions::{PyBufferError, PyNotImplementedError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::consumer::{any_into_tensor_data, copy_tensor_data};
use crate::error::Error;
use crate::producer::IntoDlpack;

/// A `dlpack.Tensor` over burn data (or a tensor's data), zero-copy: the
/// object owns the bytes until the last consumer releases them.
///
/// # Errors
///
/// The export's [`Error`] as a Python exception (`BufferError` for
/// quantized data), or pyo3's error making the object.
pub fn to_python(py: Python<'_>, value: impl IntoDlpack) -> PyResult<Bound<'_, PyAny>> {
    let tensor = value.into_dlpack_versioned()?;
    Ok(Bound::new(py, Tensor::new(tensor))?.into_any())
}

/// `TensorData` over a Python tensor's memory, zero-copy.
///
/// # Errors
///
/// dlpack-py's import errors (`TypeError` for an object that is no
/// tensor), then those of [`into_tensor_data`](crate::consumer::into_tensor_data)
/// as Python exceptions (`BufferError` for a transposed tensor, a dtype
/// burn lacks, device memory).
pub fn from_python(obj: &Bound<'_, PyAny>) -> PyResult<TensorData> {
    let tensor = extract(obj, &ExtractOptions::default())?;
    Ok(any_into_tensor_data(tensor.into_tensor())?)
}

/// New `TensorData` holding a copy of a Python tensor's elements, from any
/// layout (see [`copy_tensor_data`]).
///
/// # Errors
///
/// As [`from_python`], without the refusal of other layouts.
pub fn copy_from_python(obj: &Bound<'_, PyAny>) -> PyResult<TensorData> {
    let tensor = extract(obj, &ExtractOptions::default())?;
    Ok(copy_tensor_data(&tensor.view())?)
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        let message = err.to_string();
        match err.kind() {
            ErrorKind::Buffer => PyBufferError::new_err(message),
            ErrorKind::Value => PyValueError::new_err(message),
            ErrorKind::Type => PyTypeError::new_err(message),
            ErrorKind::NotImplemented => PyNotImplementedError::new_err(message),
        }
    }
}
