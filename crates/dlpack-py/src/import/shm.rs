//! Shared-memory tensors (`dlpack.shared_memory`), both ways, over
//! `dlpack-shm`: [`share`] imports any host tensor and copies it into a
//! new segment, [`empty`] allocates one to fill in place, [`open`] maps a
//! segment made by any process (Rust or Python) as a shared tensor.
//! Segments are made and read only by `dlpack_shm`; this file moves values
//! across the Python boundary.

use std::sync::Arc;

use dlpack_core::ffi::DLDataType;
use dlpack_shm::{Handle, Options, Segment};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use crate::error::{kind_err, show, value_err};
use crate::export::shared::SharedTensor;
use crate::import::with_borrowed;
use crate::values::interface::typestr_dtype;

/// The Python exception of a `dlpack_shm` error: a failed system call is
/// the `OSError` subclass of its `errno` (`FileNotFoundError`,
/// `FileExistsError`, ...), every other refusal the exception of its kind
/// (a truncated, foreign or inconsistent segment: `ValueError`; device
/// memory: `TypeError`).
pub(crate) fn shm_err(e: dlpack_shm::Error) -> PyErr {
    match e.errno() {
        Some(errno) => PyOSError::new_err((errno, e.to_string())),
        None => kind_err(e.kind(), e.to_string()),
    }
}

/// A segment made by this process and the creator's (writable) tensor
/// over it.
pub(crate) struct Made {
    pub(crate) name: String,
    pub(crate) nonce: u64,
    pub(crate) tensor: Arc<SharedTensor>,
}

fn made(seg: Segment) -> PyResult<Made> {
    let tensor = SharedTensor::new(seg.tensor().map_err(shm_err)?.into());
    let h = seg.handle();
    Ok(Made {
        name: h.name,
        nonce: h.nonce,
        tensor,
    })
}

/// Copies the host tensor `obj` (anything `asdlpack` takes) into a new
/// segment.
pub(crate) fn share(obj: &Bound<'_, PyAny>, options: &Options) -> PyResult<Made> {
    let seg = with_borrowed(obj, |view| Segment::publish(&view, options))?.map_err(shm_err)?;
    made(seg)
}

/// The dtype of `empty`: a `(code, bits, lanes)` tuple or a NumPy typestr.
pub(crate) fn dtype_arg(dtype: &Bound<'_, PyAny>) -> PyResult<DLDataType> {
    let d = if let Ok((code, bits, lanes)) = dtype.extract::<(u8, u8, u16)>() {
        DLDataType { code, bits, lanes }
    } else if let Ok(s) = dtype.extract::<String>() {
        typestr_dtype(&s).map_err(value_err)?
    } else {
        return Err(value_err(format!(
            "dtype {} is not a (code, bits, lanes) tuple of DLDataType fields or a NumPy typestr",
            show(dtype)
        )));
    };
    d.check_known()
        .and_then(|()| d.storage(false).map(drop))
        .map_err(|e| value_err(format!("dtype {:?}: {e}", (d.code, d.bits, d.lanes))))?;
    Ok(d)
}

/// A new zero-filled, compact tensor of `dtype` and `shape` in a segment.
pub(crate) fn empty(dtype: DLDataType, shape: &[i64], options: &Options) -> PyResult<Made> {
    made(Segment::allocate(dtype, shape, options).map_err(shm_err)?)
}

/// Maps the segment `name` (checking the nonce when given) as a shared
/// tensor, read-only when the segment is.
pub(crate) fn open(name: String, nonce: Option<u64>) -> PyResult<Arc<SharedTensor>> {
    let t = match nonce {
        Some(nonce) => dlpack_shm::open(&Handle { name, nonce }),
        None => dlpack_shm::open_by_name(&name),
    }
    .map_err(shm_err)?;
    Ok(SharedTensor::new(t.into()))
}
