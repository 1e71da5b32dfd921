//! `.safetensors` files → `dlpack.Tensor`s: one map of the file, one
//! read-only tensor per entry, each holding the map (`dlpack-safetensors`).

use std::path::Path;

use dlpack_safetensors::{Error as StError, SafetensorsFile};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::classes::tensor::Tensor;
use crate::error::kind_err;

/// The Python exception of a safetensors error: Python's own `OSError`
/// subclass for I/O (`FileNotFoundError`, ...) with the message naming the
/// file, else the exception of its kind (`ValueError` for a corrupt file,
/// `BufferError` for a tensor that cannot be shared).
pub(crate) fn to_pyerr(err: StError) -> PyErr {
    let msg = err.to_string();
    match err {
        StError::Io { source, .. } => PyErr::from(std::io::Error::new(source.kind(), msg)),
        err => kind_err(err.kind(), msg),
    }
}

/// `{name: Tensor}` of every tensor of the file at `path`, in the file's
/// order; misaligned tensors are copied when `copy_misaligned` is set, else
/// refused (`BufferError`).
pub(crate) fn load<'py>(
    py: Python<'py>,
    path: &Path,
    copy_misaligned: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let file = SafetensorsFile::open(path).map_err(to_pyerr)?;
    let tensors = file.tensors(copy_misaligned).map_err(to_pyerr)?;
    let dict = PyDict::new(py);
    for (name, tensor) in tensors {
        dict.set_item(name, Bound::new(py, Tensor::new(tensor))?)?;
    }
    Ok(dict)
}
