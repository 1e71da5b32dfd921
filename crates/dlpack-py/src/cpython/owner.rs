//! Owners of tensor memory that live inside exported managed tensors, and
//! how they let go of Python objects safely.
//!
//! Deleters run on any thread, at any time, possibly after interpreter
//! shutdown began. [`PyObjectRef`] and [`HeldBuffer`] therefore release
//! their Python object only when the interpreter is initialised and a thread
//! state can be attached ([`Python::try_attach`], which takes the GIL if this
//! thread does not hold it); otherwise they leak it on purpose (touching a
//! finalised interpreter would crash). Owners that need no Python at all
//! (`Arc` of a Rust tensor, `Vec`) are preferred wherever possible.

use std::ptr::NonNull;

use dlpack_core::export::{Memory, TensorOwner};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::cpython::live::LiveToken;
use crate::cpython::pybuffer::{Py_buffer, PyBUF_RECORDS_RO, PyBuffer_Release, PyObject_GetBuffer};

/// Whether Python objects may be released from here: the interpreter is
/// initialised (not finalised). Attaching may still be refused while it is
/// shutting down; callers then leak.
fn interpreter_alive() -> bool {
    // SAFETY: Py_IsInitialized may be called at any time, without the GIL.
    unsafe { ffi::Py_IsInitialized() != 0 }
}

/// A strong reference to a Python object that may be dropped on any thread,
/// with or without the GIL, during or after shutdown.
#[derive(Debug)]
pub struct PyObjectRef(NonNull<ffi::PyObject>);

// SAFETY: the reference is only used (decref'd) with an attached thread state.
unsafe impl Send for PyObjectRef {}
// SAFETY: &PyObjectRef exposes no access to the object.
unsafe impl Sync for PyObjectRef {}

impl PyObjectRef {
    /// Takes a new strong reference to `obj`.
    pub fn new(obj: &Bound<'_, PyAny>) -> Self {
        let p = obj.clone().into_ptr();
        // SAFETY: into_ptr of a live object is non-NULL.
        PyObjectRef(unsafe { NonNull::new_unchecked(p) })
    }
}

impl Drop for PyObjectRef {
    fn drop(&mut self) {
        let p = self.0.as_ptr();
        if !interpreter_alive() {
            return; // leak: the interpreter is gone
        }
        // SAFETY: attached (GIL held); we own one reference.
        Python::try_attach(|_| unsafe { ffi::Py_DecRef(p) });
    }
}

/// A `Py_buffer` held for the whole life of a tensor that points into it,
/// released (with the GIL) only when the tensor is released. Holding the
/// view also blocks resizing of exporters such as `bytearray`.
///
/// The `Py_buffer` is boxed: exporters may point `shape`/`strides` into the
/// struct itself, so it must not move while the view is held.
pub struct HeldBuffer(Box<Py_buffer>);

impl std::fmt::Debug for HeldBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldBuffer")
            .field("buf", &self.0.buf)
            .field("len", &self.0.len)
            .finish()
    }
}

// SAFETY: the view is released only with an attached thread state; the
// memory it describes is shared by the DLPack contract.
unsafe impl Send for HeldBuffer {}
// SAFETY: &HeldBuffer only reads plain fields.
unsafe impl Sync for HeldBuffer {}

impl HeldBuffer {
    /// Requests a view with the `PyBUF_*` `flags`; the exporter's error as
    /// it raised it.
    pub fn request(obj: &Bound<'_, PyAny>, flags: std::ffi::c_int) -> PyResult<Self> {
        // SAFETY: an all-zero Py_buffer is a valid "empty" value to fill.
        let mut view: Box<Py_buffer> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: obj is live, the GIL is held, view is writable and pinned.
        let rc = unsafe { PyObject_GetBuffer(obj.as_ptr(), &mut *view, flags) };
        if rc != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        Ok(HeldBuffer(view))
    }

    /// Requests a strided, formatted view (`PyBUF_RECORDS_RO`; writability is
    /// reported by the exporter in `readonly`).
    pub fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::request(obj, PyBUF_RECORDS_RO).map_err(|err| {
            let py = obj.py();
            // The exporter refused its own content (e.g. NumPy: "cannot
            // include dtype 'M' in a buffer"): a BufferError, as the spec asks
            // for data that cannot be exported; a missing buffer protocol
            // stays a TypeError.
            if err.is_instance_of::<pyo3::exceptions::PyValueError>(py) {
                let e = crate::error::buffer_err(format!(
                    "the buffer exporter refused: {}",
                    err.value(py)
                ));
                e.set_cause(py, Some(err));
                return e;
            }
            err
        })
    }

    /// The filled view.
    pub fn view(&self) -> &Py_buffer {
        &self.0
    }
}

impl Drop for HeldBuffer {
    fn drop(&mut self) {
        if !interpreter_alive() {
            return; // leak: the interpreter is gone
        }
        let view: *mut Py_buffer = &mut *self.0;
        // SAFETY: the view was filled by PyObject_GetBuffer and is released
        // once, with the GIL.
        Python::try_attach(|_| unsafe { PyBuffer_Release(view) });
    }
}

/// An owner of memory described up front: `keep` keeps `memory` alive, and a
/// [`LiveToken`] counts the tensor in [`live_tensors`](crate::cpython::live::live_tensors).
#[derive(Debug)]
pub struct Keep<K> {
    /// Held for its drop: it keeps `memory` alive.
    _keep: K,
    memory: Memory,
    _live: LiveToken,
}

// SAFETY: Memory holds raw pointers into memory kept alive by `keep`, which is
// Send; the pointers are not thread-affine (DLPack memory is shared).
unsafe impl<K: Send> Send for Keep<K> {}

impl<K: Send + 'static> Keep<K> {
    /// Describes `memory` as kept alive by `keep`.
    ///
    /// # Safety
    ///
    /// `memory` stays valid (and, unless `read_only`, writable) for as long
    /// as `keep` is alive, and does not move when `keep` moves.
    pub unsafe fn new(keep: K, memory: Memory) -> Self {
        Keep {
            _keep: keep,
            memory,
            _live: LiveToken::new(),
        }
    }
}

// SAFETY: by the contract of Keep::new.
unsafe impl<K: Send + 'static> TensorOwner for Keep<K> {
    fn memory(&mut self) -> Memory {
        self.memory
    }
}
