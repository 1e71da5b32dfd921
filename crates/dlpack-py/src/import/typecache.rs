//! What a Python type offers, looked up once per type and cached.
//!
//! A small, fixed, lock-free table keyed by the type pointer (compared
//! first): whether it is NumPy's `ndarray`, whether it has `__dlpack__`
//! (and, with the feature `arrow`, `__arrow_c_array__` / `__arrow_c_stream__`),
//! and its DLPack C exchange API table (`__dlpack_c_exchange_api__`, a capsule
//! named `"dlpack_exchange_api"`, or the DLPack 1.2 attribute
//! `__c_dlpack_exchange_api__` as an int or capsule). Cached types are kept
//! alive by a strong reference, so a pointer can never be reused by another
//! type while it is in the table. When the table is full, lookups still work,
//! uncached.

use std::ffi::{CStr, c_void};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use dlpack_core::ffi::{DLPackExchangeAPI, DLPackExchangeAPIHeader};
use dlpack_core::protocol::{DLPACK_EXCHANGE_API, EXCHANGE_API_ATTR, EXCHANGE_API_ATTR_1_2};
use numpy::PyUntypedArray;
use pyo3::prelude::*;
use pyo3::{PyTypeInfo, ffi, intern};

/// What a type offers for import.
#[derive(Copy, Clone, Debug)]
pub struct TypeInfo {
    /// Exactly `numpy.ndarray`.
    pub numpy: bool,
    /// The type has `__dlpack__`.
    pub dlpack: bool,
    /// The type's C exchange API table (major version 1).
    pub exchange: Option<&'static DLPackExchangeAPI>,
    /// The type has `__arrow_c_array__` (feature `arrow`; else false).
    pub arrow_array: bool,
    /// The type has `__arrow_c_stream__` (feature `arrow`; else false).
    pub arrow_stream: bool,
}

const SLOTS: usize = 32;
const NUMPY: usize = 1;
const DLPACK: usize = 2;
const FILLED: usize = 4;
const ARROW_ARRAY: usize = 8;
const ARROW_STREAM: usize = 16;

struct Slot {
    ty: AtomicPtr<ffi::PyTypeObject>,
    bits: AtomicUsize,
    table: AtomicPtr<DLPackExchangeAPI>,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    ty: AtomicPtr::new(ptr::null_mut()),
    bits: AtomicUsize::new(0),
    table: AtomicPtr::new(ptr::null_mut()),
};
static CACHE: [Slot; SLOTS] = [EMPTY; SLOTS];
static USED: AtomicUsize = AtomicUsize::new(0);
/// The slot of the type seen last (`SLOTS`: none yet). A slot, once
/// published, never changes, so a stale index is still a valid entry.
static LAST: AtomicUsize = AtomicUsize::new(SLOTS);

/// The cached [`TypeInfo`] of `obj`'s type.
#[inline]
pub fn type_info(obj: &Bound<'_, PyAny>) -> TypeInfo {
    // SAFETY: obj is live; Py_TYPE reads its type pointer.
    let ty = unsafe { ffi::Py_TYPE(obj.as_ptr()) };
    // Fast path: the type seen last (one pointer compare).
    let last = LAST.load(Ordering::Relaxed);
    if last < SLOTS {
        let slot = &CACHE[last];
        if slot.ty.load(Ordering::Acquire) == ty {
            return slot.info();
        }
    }
    type_info_slow(obj, ty)
}

#[cold]
#[inline(never)]
fn type_info_slow(obj: &Bound<'_, PyAny>, ty: *mut ffi::PyTypeObject) -> TypeInfo {
    let used = USED.load(Ordering::Acquire);
    for (i, slot) in CACHE[..used.min(SLOTS)].iter().enumerate() {
        if slot.ty.load(Ordering::Acquire) == ty {
            LAST.store(i, Ordering::Relaxed);
            return slot.info();
        }
    }
    let info = compute(obj);
    insert(ty, info);
    info
}

impl Slot {
    #[inline]
    fn info(&self) -> TypeInfo {
        let bits = self.bits.load(Ordering::Relaxed);
        let table = self.table.load(Ordering::Relaxed);
        TypeInfo {
            numpy: bits & NUMPY != 0,
            dlpack: bits & DLPACK != 0,
            arrow_array: bits & ARROW_ARRAY != 0,
            arrow_stream: bits & ARROW_STREAM != 0,
            // SAFETY: tables are process-lifetime statics by the standard.
            exchange: unsafe { table.as_ref() },
        }
    }
}

fn insert(ty: *mut ffi::PyTypeObject, info: TypeInfo) {
    // Writers hold the GIL (or, free-threaded, may race to a duplicate entry,
    // which is harmless); the slot is published by the Release store of USED.
    let i = USED.load(Ordering::Acquire);
    if i >= SLOTS {
        return;
    }
    let slot = &CACHE[i];
    // SAFETY: keep the type alive while it is in the table (forever).
    unsafe { ffi::Py_IncRef(ty.cast()) };
    let flag = |on: bool, bit: usize| if on { bit } else { 0 };
    let bits = FILLED
        | flag(info.numpy, NUMPY)
        | flag(info.dlpack, DLPACK)
        | flag(info.arrow_array, ARROW_ARRAY)
        | flag(info.arrow_stream, ARROW_STREAM);
    slot.bits.store(bits, Ordering::Relaxed);
    slot.table.store(
        info.exchange
            .map_or(ptr::null_mut(), |t| ptr::from_ref(t).cast_mut()),
        Ordering::Relaxed,
    );
    slot.ty.store(ty, Ordering::Release);
    USED.store(i + 1, Ordering::Release);
    LAST.store(i, Ordering::Relaxed);
}

fn compute(obj: &Bound<'_, PyAny>) -> TypeInfo {
    let py = obj.py();
    let ty = obj.get_type();
    let numpy = is_numpy_type(&ty);
    let dlpack = ty.hasattr(intern!(py, "__dlpack__")).unwrap_or(false);
    let exchange = exchange_table(&ty);
    // Looked up on the type: an instance lookup may run a costly
    // `__getattr__` (polars' costs ~10 µs per missing name).
    let arrow = |name| cfg!(feature = "arrow") && ty.hasattr(name).unwrap_or(false);
    TypeInfo {
        numpy,
        dlpack,
        exchange,
        arrow_array: arrow(intern!(py, "__arrow_c_array__")),
        arrow_stream: arrow(intern!(py, "__arrow_c_stream__")),
    }
}

fn is_numpy_type(ty: &Bound<'_, pyo3::types::PyType>) -> bool {
    let py = ty.py();
    let module = ty
        .getattr(intern!(py, "__module__"))
        .ok()
        .and_then(|m| m.extract::<String>().ok());
    let name = ty.name().ok().map(|n| n.to_string());
    if module.as_deref() != Some("numpy") || name.as_deref() != Some("ndarray") {
        return false;
    }
    PyUntypedArray::type_object_raw(py) == ty.as_ptr().cast()
}

/// Looks up a type's exchange API table (1.3 attribute first, a capsule;
/// then 1.2's, a capsule or an int address),
/// checks `header.version.major == 1` (walking `prev_api`), and requires the
/// mandatory `managed_tensor_from_py_object_no_sync`.
pub fn exchange_table(ty: &Bound<'_, pyo3::types::PyType>) -> Option<&'static DLPackExchangeAPI> {
    let py = ty.py();
    for attr in [EXCHANGE_API_ATTR, EXCHANGE_API_ATTR_1_2] {
        let Ok(name) = attr.to_str() else { continue };
        let Ok(value) = ty.getattr(pyo3::types::PyString::intern(py, name)) else {
            continue;
        };
        // DLPack 1.3's attribute is a capsule; only 1.2's may be an int
        // address (which no consumer can check: it is trusted).
        let p = table_pointer(&value, attr == EXCHANGE_API_ATTR_1_2);
        if p.is_null() {
            continue;
        }
        // SAFETY: the producer publishes a process-lifetime table at p.
        if let Some(t) = unsafe { supported_table(p.cast()) } {
            return Some(t);
        }
    }
    None
}

fn table_pointer(value: &Bound<'_, PyAny>, int_allowed: bool) -> *mut c_void {
    let name: &CStr = DLPACK_EXCHANGE_API;
    // SAFETY: value is live; IsValid sets no error.
    unsafe {
        if ffi::PyCapsule_IsValid(value.as_ptr(), name.as_ptr()) == 1 {
            return ffi::PyCapsule_GetPointer(value.as_ptr(), name.as_ptr());
        }
    }
    if int_allowed && value.is_instance_of::<pyo3::types::PyInt>() {
        if let Ok(addr) = value.extract::<usize>() {
            return addr as *mut c_void;
        }
    }
    ptr::null_mut()
}

/// Walks the header chain to a table of major version 1.
///
/// # Safety
///
/// `p` points to a valid table header chain that lives forever.
unsafe fn supported_table(
    mut p: *mut DLPackExchangeAPIHeader,
) -> Option<&'static DLPackExchangeAPI> {
    while !p.is_null() {
        // SAFETY: by the caller's contract.
        let header = unsafe { &*p };
        if header.version.major == 1 {
            // SAFETY: a major-1 header heads a full DLPackExchangeAPI.
            let table = unsafe { &*p.cast::<DLPackExchangeAPI>() };
            return table.managed_tensor_from_py_object_no_sync.map(|_| table);
        }
        p = header.prev_api;
    }
    None
}
