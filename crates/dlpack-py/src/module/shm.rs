//! The native functions behind `dlpack.shared_memory` (the Python module
//! `python/dlpack/shared_memory.py` is the public surface): each is a thin
//! call of `crate::import::shm`.

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::classes::object::DLPackObject;
use crate::import::shm::{Made, dtype_arg, shm_err};

fn options(name: Option<String>, read_only: bool) -> dlpack_shm::Options {
    dlpack_shm::Options {
        name,
        read_only,
        unlink_on_drop: false,
    }
}

/// `(name, nonce, DLPackObject)` of a segment this process made.
fn made_tuple<'py>(py: Python<'py>, m: Made) -> PyResult<Bound<'py, PyTuple>> {
    let source = m.name.clone().into_pyobject(py)?.into_any().unbind();
    let obj = Bound::new(py, DLPackObject::shared(source, m.tensor))?;
    (m.name, m.nonce, obj).into_pyobject(py)
}

/// Copies the host tensor `obj` into a new segment: `(name, nonce,
/// DLPackObject)`, the object being the creator's writable view.
#[pyfunction]
#[pyo3(name = "_shm_share", signature = (obj, name=None, read_only=false))]
pub(crate) fn shm_share<'py>(
    obj: &Bound<'py, PyAny>,
    name: Option<String>,
    read_only: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    crate::error::guard(|| {
        let m = crate::import::shm::share(obj, &options(name, read_only))?;
        made_tuple(obj.py(), m)
    })
}

/// Allocates a zero-filled tensor in a new segment: as `_shm_share`.
#[pyfunction]
#[pyo3(name = "_shm_empty", signature = (shape, dtype, name=None, read_only=false))]
pub(crate) fn shm_empty<'py>(
    py: Python<'py>,
    shape: Vec<i64>,
    dtype: &Bound<'py, PyAny>,
    name: Option<String>,
    read_only: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    crate::error::guard(|| {
        let dtype = dtype_arg(dtype)?;
        let m = crate::import::shm::empty(dtype, &shape, &options(name, read_only))?;
        made_tuple(py, m)
    })
}

/// Opens a segment (any process's) as a `DLPackObject` over a new mapping.
#[pyfunction]
#[pyo3(name = "_shm_open", signature = (name, nonce=None))]
pub(crate) fn shm_open(
    py: Python<'_>,
    name: String,
    nonce: Option<u64>,
) -> PyResult<Bound<'_, DLPackObject>> {
    crate::error::guard(|| {
        let source = name.clone().into_pyobject(py)?.into_any().unbind();
        let t = crate::import::shm::open(name, nonce)?;
        Bound::new(py, DLPackObject::shared(source, t))
    })
}

/// Removes a segment's name (mappings stay valid).
#[pyfunction]
#[pyo3(name = "_shm_unlink")]
pub(crate) fn shm_unlink(name: String) -> PyResult<()> {
    crate::error::guard(|| dlpack_shm::unlink(&name).map_err(shm_err))
}

/// Removes the generated names whose creator died; returns them.
#[pyfunction]
#[pyo3(name = "_shm_cleanup_stale")]
pub(crate) fn shm_cleanup_stale() -> PyResult<Vec<String>> {
    crate::error::guard(|| dlpack_shm::cleanup_stale().map_err(shm_err))
}

/// The generated names of segments made by process `pid`.
#[pyfunction]
#[pyo3(name = "_shm_names_of")]
pub(crate) fn shm_names_of(pid: u32) -> PyResult<Vec<String>> {
    crate::error::guard(|| dlpack_shm::names_of(pid).map_err(shm_err))
}

/// Registers the functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(shm_share, m)?)?;
    m.add_function(wrap_pyfunction!(shm_empty, m)?)?;
    m.add_function(wrap_pyfunction!(shm_open, m)?)?;
    m.add_function(wrap_pyfunction!(shm_unlink, m)?)?;
    m.add_function(wrap_pyfunction!(shm_cleanup_stale, m)?)?;
    m.add_function(wrap_pyfunction!(shm_names_of, m)?)?;
    m.add("_SHM_NAME_PREFIX", dlpack_shm::NAME_PREFIX)?;
    Ok(())
}
