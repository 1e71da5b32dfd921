//! Python reach (feature `python`), in dlpack-image's shape, through
//! `dlpack-py`'s public API only.
//!
//! - [`to_python`]: a candle tensor becomes a `dlpack.Tensor` that
//!   `numpy.from_dlpack` / `torch.from_dlpack` import without a copy (the
//!   export of [`export`](crate::export): any layout, `READ_ONLY`, the
//!   storage kept alive by the Python object and the arrays made from it).
//! - [`copy_from_python`]: any Python tensor (NumPy, PyTorch, JAX, ...;
//!   any strides) copied into a new candle tensor
//!   ([`copy_into_tensor`](crate::copy_into_tensor)); NumPy arrays are read
//!   in place, without an owning handle.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use dlpack_candle::python::{copy_from_python, to_python};
//! use pyo3::prelude::*;
//!
//! Python::attach(|py| -> PyResult<()> {
//!     let t = Tensor::arange(0f32, 6., &Device::Cpu).unwrap().reshape((2, 3)).unwrap();
//!     let np = py.import("numpy")?;
//!     let a = np.call_method1("from_dlpack", (to_python(py, &t)?,))?;
//!     assert_eq!(a.getattr("shape")?.extract::<(usize, usize)>()?, (2, 3));
//!     let back = copy_from_python(&a.call_method0("transpose")?)?; // a copy, strides followed
//!     assert_eq!(back.dims(), &[3, 2]);
//!     Ok(())
//! })
//! .unwrap();
//! ```

use core::fmt;

use candle_core::Tensor;
use pyo3::prelude::*;

/// Why a Python object did not become a candle tensor.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The object speaks no protocol `dlpack-py` imports, or its producer
    /// raised: the Python exception, unchanged.
    Python(PyErr),
    /// The imported tensor cannot become a candle tensor (dtype, device,
    /// layout), or a candle tensor cannot be exported: the crate's error.
    Candle(crate::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Python(err) => err.fmt(f),
            Error::Candle(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Python(err) => Some(err),
            Error::Candle(err) => Some(err),
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
        Error::Candle(err)
    }
}

/// The exception of the crate error's [`kind`](crate::Error::kind), with
/// its message; a Python exception unchanged.
impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        match err {
            Error::Python(err) => err,
            Error::Candle(err) => dlpack_py::kind_err(err.kind(), err.to_string()),
        }
    }
}

/// A candle tensor as a Python object that speaks DLPack, zero-copy and
/// read-only (see [`export`](crate::export)).
///
/// # Errors
///
/// The exception of [`crate::Error::kind`] for a tensor that cannot be
/// exported (not on the CPU); the Python error if the object cannot be
/// made.
pub fn to_python<'py>(py: Python<'py>, tensor: &Tensor) -> PyResult<Bound<'py, dlpack_py::Tensor>> {
    let managed = crate::export(tensor).map_err(Error::Candle)?;
    Bound::new(py, dlpack_py::Tensor::new(managed))
}

/// A new candle tensor holding a copy of a Python tensor's elements, from
/// any strides.
///
/// # Errors
///
/// [`Error::Candle`] for a dtype candle lacks, device memory, or a packed
/// layout that is not compact; [`Error::Python`] when the object cannot be
/// imported.
pub fn copy_from_python(obj: &Bound<'_, PyAny>) -> Result<Tensor, Error> {
    Ok(dlpack_py::with_borrowed(obj, |view| {
        crate::copy_into_tensor(&view)
    })??)
}
