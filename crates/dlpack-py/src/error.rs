//! Errors at the Python boundary: the core's typed [`Error`] becomes the
//! exception the DLPack standard names for it (`BufferError`, `ValueError`,
//! `TypeError`, `NotImplementedError`), with the core's message, which names
//! the value and the rule.

use dlpack_core::{Error, ErrorKind};
use pyo3::PyErr;
use pyo3::exceptions::{PyBufferError, PyNotImplementedError, PyTypeError, PyValueError};

/// Converts a core error into the Python exception of its
/// [`dlpack_core::ErrorKind`].
///
/// ```
/// use dlpack_core::Error;
/// let err = dlpack_py::error::to_pyerr(Error::ReadOnlyLegacyExport);
/// # let _ = err;
/// ```
pub fn to_pyerr(err: Error) -> PyErr {
    let msg = err.to_string();
    kind_err(err.kind(), msg)
}

/// A Python exception of the given kind with a message.
pub fn kind_err(kind: ErrorKind, msg: String) -> PyErr {
    match kind {
        ErrorKind::Buffer => PyBufferError::new_err(msg),
        ErrorKind::Value => PyValueError::new_err(msg),
        ErrorKind::Type => PyTypeError::new_err(msg),
        ErrorKind::NotImplemented => PyNotImplementedError::new_err(msg),
    }
}

/// `BufferError(msg)`.
pub(crate) fn buffer_err(msg: impl Into<String>) -> PyErr {
    PyBufferError::new_err(msg.into())
}

/// `TypeError(msg)`.
pub(crate) fn type_err(msg: impl Into<String>) -> PyErr {
    PyTypeError::new_err(msg.into())
}

/// `ValueError(msg)`.
pub(crate) fn value_err(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// Extension to turn core results into Python results.
pub trait IntoPyResult<T> {
    /// Maps the error with [`to_pyerr`].
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_pyerr)
    }
}
