//! DLPack capsules: creation with a static name and a plain `extern "C"`
//! destructor, consumption (validate the name, rename exactly once, take
//! ownership), and inspection without consuming.
//!
//! Rules (DLPack Python specification, "PyCapsule names"):
//!
//! | struct | fresh name | consumed name |
//! |---|---|---|
//! | `DLManagedTensor` | `"dltensor"` | `"used_dltensor"` |
//! | `DLManagedTensorVersioned` | `"dltensor_versioned"` | `"used_dltensor_versioned"` |
//!
//! - The name decides the struct; nothing is guessed from the bytes.
//! - The destructor calls the tensor's deleter only while the capsule still
//!   carries a fresh name; a consumer renames it to `used_*` when it takes
//!   ownership, after which only the consumer releases the tensor; it then
//!   also clears the capsule's destructor, which has nothing left to do.
//! - A consumer renames *before* anything can fail after taking ownership,
//!   and [`ManagedTensor::from_raw`](dlpack_core::managed::Managed::from_raw)
//!   calls the deleter itself when it refuses the tensor, so no path frees
//!   twice or leaks. A failure *before* the rename leaves the capsule fresh,
//!   and its destructor frees the tensor.

use std::ffi::{CStr, c_void};
use std::ptr;

use dlpack_core::ffi::{DLManagedTensor, DLManagedTensorVersioned, DLPackVersion, DLTensor};
use dlpack_core::managed::{AnyManagedTensor, ManagedTensor, ManagedTensorVersioned};
use dlpack_core::protocol::{
    Abi, DLTENSOR, DLTENSOR_VERSIONED, USED_DLTENSOR, USED_DLTENSOR_VERSIONED,
};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{IntoPyResult, type_err, type_name, value_err};

/// A raw managed tensor of either ABI, owned by whoever holds it (its
/// deleter not yet called).
#[derive(Debug)]
pub enum RawManaged {
    /// A `DLManagedTensor*`.
    Legacy(*mut DLManagedTensor),
    /// A `DLManagedTensorVersioned*`.
    Versioned(*mut DLManagedTensorVersioned),
}

impl From<ManagedTensor> for RawManaged {
    fn from(t: ManagedTensor) -> Self {
        RawManaged::Legacy(t.into_raw())
    }
}

impl From<ManagedTensorVersioned> for RawManaged {
    fn from(t: ManagedTensorVersioned) -> Self {
        RawManaged::Versioned(t.into_raw())
    }
}

impl From<AnyManagedTensor> for RawManaged {
    fn from(t: AnyManagedTensor) -> Self {
        match t {
            AnyManagedTensor::Legacy(t) => t.into(),
            AnyManagedTensor::Versioned(t) => t.into(),
        }
    }
}

/// The destructor of every capsule this crate creates: frees the tensor only
/// if the capsule was not consumed (still named `dltensor[_versioned]`).
///
/// It never raises and never disturbs a pending exception: `PyCapsule_IsValid`
/// sets no error, and the pointer is read only under the matching name.
unsafe extern "C" fn capsule_destructor(capsule: *mut ffi::PyObject) {
    // No panic: FFI calls and the tensor's own (C) deleter only.
    // SAFETY: called by CPython with the GIL held on a live capsule object.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, Abi::Versioned.capsule_name().as_ptr()) == 1 {
            let p = ffi::PyCapsule_GetPointer(capsule, Abi::Versioned.capsule_name().as_ptr());
            let p = p.cast::<DLManagedTensorVersioned>();
            if let Some(deleter) = (*p).deleter {
                deleter(p);
            }
        } else if ffi::PyCapsule_IsValid(capsule, Abi::Legacy.capsule_name().as_ptr()) == 1 {
            let p = ffi::PyCapsule_GetPointer(capsule, Abi::Legacy.capsule_name().as_ptr());
            let p = p.cast::<DLManagedTensor>();
            if let Some(deleter) = (*p).deleter {
                deleter(p);
            }
        }
    }
}

/// Wraps a managed tensor in a fresh capsule named after its ABI, whose
/// destructor frees it unless a consumer renames the capsule.
///
/// On failure (out of memory) the tensor is released before returning.
pub fn new_capsule(py: Python<'_>, raw: RawManaged) -> PyResult<Bound<'_, PyAny>> {
    let (ptr, name): (*mut c_void, &'static CStr) = match raw {
        RawManaged::Legacy(p) => (p.cast(), Abi::Legacy.capsule_name()),
        RawManaged::Versioned(p) => (p.cast(), Abi::Versioned.capsule_name()),
    };
    // SAFETY: `ptr` is a valid, owned, non-NULL managed tensor; `name` is a
    // static C string (CPython stores the pointer, not a copy).
    let cap = unsafe { ffi::PyCapsule_New(ptr, name.as_ptr(), Some(capsule_destructor)) };
    if cap.is_null() {
        // SAFETY: still owned by us; the capsule was not created.
        unsafe { release_raw(raw) };
        return Err(PyErr::fetch(py));
    }
    // SAFETY: PyCapsule_New returned a new reference.
    Ok(unsafe { Bound::from_owned_ptr(py, cap) })
}

/// Calls the deleter of a raw managed tensor, if any.
///
/// # Safety
///
/// `raw` is owned by the caller and not used afterwards.
pub unsafe fn release_raw(raw: RawManaged) {
    // SAFETY: by the caller's contract.
    unsafe {
        match raw {
            RawManaged::Legacy(p) => {
                if let Some(d) = (*p).deleter {
                    d(p)
                }
            }
            RawManaged::Versioned(p) => {
                if let Some(d) = (*p).deleter {
                    d(p)
                }
            }
        }
    }
}

/// The ABI and pointer of an unconsumed DLPack capsule, or `None` for
/// anything else (which [`not_fresh`] then explains). The hot half of
/// every capsule import: a type check, a name compare and `GetPointer`.
#[inline]
fn fresh_capsule(obj: &Bound<'_, PyAny>) -> Option<(Abi, *mut c_void)> {
    // SAFETY: obj is a live object; the GIL is held.
    if unsafe { ffi::PyCapsule_CheckExact(obj.as_ptr()) } == 0 {
        return None;
    }
    // SAFETY: obj is a capsule; the name pointer is valid while it lives.
    let raw = unsafe { ffi::PyCapsule_GetName(obj.as_ptr()) };
    // Our own capsules (and many producers') use static names: compare the
    // pointers first, then the bytes.
    let abi = if ptr::eq(raw, DLTENSOR_VERSIONED.as_ptr()) {
        Abi::Versioned
    } else if ptr::eq(raw, DLTENSOR.as_ptr()) {
        Abi::Legacy
    } else if raw.is_null() {
        return None;
    } else {
        // SAFETY: non-NULL capsule names are NUL-terminated C strings.
        Abi::from_capsule_name(unsafe { CStr::from_ptr(raw) })?
    };
    // SAFETY: we pass the capsule's own name, so CPython's name check (a
    // strcmp, even for the same pointer) matches and GetPointer succeeds
    // (capsules never hold NULL).
    let p = unsafe { ffi::PyCapsule_GetPointer(obj.as_ptr(), raw) };
    Some((abi, p))
}

/// Why `obj` is not an unconsumed DLPack capsule: `ValueError` for a
/// consumed one, `TypeError` for anything else.
#[cold]
#[inline(never)]
fn not_fresh(obj: &Bound<'_, PyAny>) -> PyErr {
    // SAFETY: obj is a live object; the GIL is held.
    if unsafe { ffi::PyCapsule_CheckExact(obj.as_ptr()) } == 0 {
        return type_err(format!(
            "expected a DLPack PyCapsule, got an object of type {}",
            type_name(obj)
        ));
    }
    // SAFETY: obj is a capsule; the name pointer is valid while it lives.
    let raw = unsafe { ffi::PyCapsule_GetName(obj.as_ptr()) };
    if raw.is_null() {
        // GetName on a capsule sets no error for a NULL name.
        return type_err(
            "the PyCapsule has no name; a DLPack capsule is named \"dltensor\" or \"dltensor_versioned\"",
        );
    }
    // SAFETY: raw is non-NULL, NUL-terminated.
    let name = unsafe { CStr::from_ptr(raw) };
    if name == USED_DLTENSOR || name == USED_DLTENSOR_VERSIONED {
        return value_err(format!(
            "the DLPack capsule was already consumed (it is named {name:?}); a capsule can be consumed only once"
        ));
    }
    type_err(format!(
        "the PyCapsule is named {name:?}; a DLPack capsule is named \"dltensor\" (DLManagedTensor) \
         or \"dltensor_versioned\" (DLManagedTensorVersioned)"
    ))
}

/// Takes ownership of the tensor in a DLPack capsule: checks the name,
/// renames the capsule to `used_*` exactly once, then validates the tensor
/// (a versioned major other than 1 is released and refused with
/// `BufferError`).
///
/// # Errors
///
/// `ValueError` for a capsule that was already consumed, `TypeError` for
/// anything that is not a DLPack capsule, `BufferError` for a tensor that
/// breaks the standard (it is released first).
///
/// ```no_run
/// # use pyo3::prelude::*;
/// # fn f(cap: &Bound<'_, PyAny>) -> PyResult<()> {
/// let tensor = dlpack_py::capsule::consume_capsule(cap)?;
/// println!("{:?}", tensor.view().shape());
/// # Ok(()) }
/// ```
#[inline]
pub fn consume_capsule(obj: &Bound<'_, PyAny>) -> PyResult<AnyManagedTensor> {
    let Some((abi, p)) = fresh_capsule(obj) else {
        return Err(not_fresh(obj));
    };
    // SAFETY: obj is a capsule; the used name is static.
    if unsafe { ffi::PyCapsule_SetName(obj.as_ptr(), abi.used_capsule_name().as_ptr()) } != 0 {
        // Nothing was taken: the capsule keeps its fresh name.
        return Err(PyErr::fetch(obj.py()));
    }
    // The capsule no longer owns the tensor, so its destructor has nothing
    // left to do: drop it (as PyTorch's from_dlpack does). Producers'
    // destructors often probe a consumed capsule with PyCapsule_GetPointer,
    // which raises and clears a ValueError on every release. Cannot fail for
    // a valid capsule (and the destructor would then see the used name).
    // SAFETY: obj is a live capsule; a NULL destructor is allowed.
    unsafe { ffi::PyCapsule_SetDestructor(obj.as_ptr(), None) };
    // SAFETY: we own the tensor now (renamed); from_raw takes it over in
    // every outcome.
    unsafe { take_raw(abi, p) }
}

/// Takes ownership of a raw managed tensor of the given ABI.
///
/// # Safety
///
/// `p` is a valid, owned managed tensor of ABI `abi`.
#[inline]
pub(crate) unsafe fn take_raw(abi: Abi, p: *mut c_void) -> PyResult<AnyManagedTensor> {
    // SAFETY: by the caller's contract.
    unsafe {
        match abi {
            Abi::Legacy => ManagedTensor::from_raw(p.cast()).map(AnyManagedTensor::Legacy),
            Abi::Versioned => {
                ManagedTensorVersioned::from_raw(p.cast()).map(AnyManagedTensor::Versioned)
            }
        }
    }
    .py()
}

/// Decodes an unconsumed capsule without consuming it (`dlpack.capsule_info`).
pub fn capsule_info<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let py = obj.py();
    let (abi, p) = fresh_capsule(obj).ok_or_else(|| not_fresh(obj))?;
    let d = PyDict::new(py);
    // SAFETY: a fresh capsule holds a live managed tensor of its ABI; we only
    // read the header fields, and the version first.
    let (t, version, flags): (&DLTensor, Option<DLPackVersion>, u64) = unsafe {
        match abi {
            Abi::Legacy => {
                d.set_item("name", "dltensor")?;
                (&(*p.cast::<DLManagedTensor>()).dl_tensor, None, 0)
            }
            Abi::Versioned => {
                d.set_item("name", "dltensor_versioned")?;
                let m = p.cast::<DLManagedTensorVersioned>();
                let v = ptr::addr_of!((*m).version).read();
                if v.major != 1 {
                    d.set_item("version", (v.major, v.minor))?;
                    return Ok(d);
                }
                (&(*m).dl_tensor, Some(v), (*m).flags)
            }
        }
    };
    d.set_item("version", version.map(|v| (v.major, v.minor)))?;
    d.set_item("flags", flags)?;
    d.set_item("device", (t.device.device_type.0, t.device.device_id))?;
    d.set_item("dtype", (t.dtype.code, t.dtype.bits, t.dtype.lanes))?;
    let ndim = usize::try_from(t.ndim).unwrap_or(0);
    let dims = |p: *mut i64| -> Option<Vec<i64>> {
        if p.is_null() {
            None
        } else {
            // SAFETY: the producer guarantees ndim readable entries.
            Some(unsafe { std::slice::from_raw_parts(p, ndim) }.to_vec())
        }
    };
    let shape = dims(t.shape).unwrap_or_default();
    d.set_item("shape", pyo3::types::PyTuple::new(py, shape)?)?;
    match dims(t.strides) {
        Some(s) => d.set_item("strides", pyo3::types::PyTuple::new(py, s)?)?,
        None => d.set_item("strides", py.None())?,
    }
    d.set_item("byte_offset", t.byte_offset)?;
    d.set_item("data", t.data as usize)?;
    Ok(d)
}
