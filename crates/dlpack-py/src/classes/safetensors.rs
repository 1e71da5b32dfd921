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

/// `dlpack.SafetensorsFile(path, *, copy_misaligned=False)`: a
/// `.safetensors` file mapped once, its tensors taken out one at a time
/// (what `safetensors.safe_open` offers), each a read-only `Tensor` that
/// keeps the map alive; a context manager, for code written against
/// `safe_open`.
#[pyclass(frozen, module = "dlpack", name = "SafetensorsFile")]
pub(crate) struct PySafetensorsFile {
    file: SafetensorsFile,
    copy_misaligned: bool,
}

impl PySafetensorsFile {
    fn take(&self, name: &str) -> Result<Tensor, StError> {
        match self.file.tensor(name) {
            Err(StError::Misaligned { .. }) if self.copy_misaligned => {
                self.file.copy_tensor(name).map(Tensor::new)
            }
            other => other.map(Tensor::new),
        }
    }
}

#[pymethods]
impl PySafetensorsFile {
    #[new]
    #[pyo3(signature = (path, *, copy_misaligned=false))]
    fn new(path: std::path::PathBuf, copy_misaligned: bool) -> PyResult<Self> {
        crate::error::guard(|| {
            Ok(PySafetensorsFile {
                file: SafetensorsFile::open(&path).map_err(to_pyerr)?,
                copy_misaligned,
            })
        })
    }

    /// The names, in the order of their data in the file.
    fn keys(&self) -> PyResult<Vec<String>> {
        crate::error::guard(|| Ok(self.file.names().map(String::from).collect()))
    }

    /// The `__metadata__` strings (an empty dict when the file has none).
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        crate::error::guard(|| {
            let dict = PyDict::new(py);
            for (k, v) in self.file.header().metadata() {
                dict.set_item(k, v)?;
            }
            Ok(dict)
        })
    }

    /// The tensor `name` (`ValueError` when there is none).
    fn get_tensor<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, Tensor>> {
        crate::error::guard(|| Bound::new(py, self.take(name).map_err(to_pyerr)?))
    }

    fn __getitem__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, Tensor>> {
        crate::error::guard(|| match self.take(name) {
            Err(StError::NotFound { name }) => Err(pyo3::exceptions::PyKeyError::new_err(name)),
            other => Bound::new(py, other.map_err(to_pyerr)?),
        })
    }

    fn __contains__(&self, name: &str) -> PyResult<bool> {
        crate::error::guard(|| Ok(self.file.header().tensor(name).is_some()))
    }

    fn __len__(&self) -> PyResult<usize> {
        crate::error::guard(|| Ok(self.file.len()))
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        crate::error::guard(|| Ok(slf.clone()))
    }

    /// Nothing to release: tensors taken out keep the map alive, and the
    /// map goes with the last of them and this object.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        crate::error::guard(|| Ok(false))
    }

    fn __repr__(&self) -> PyResult<String> {
        crate::error::guard(|| {
            Ok(format!(
                "SafetensorsFile({} tensors, {} bytes)",
                self.file.len(),
                self.file.bytes().len()
            ))
        })
    }
}
