//! The C exchange API table of our classes (DLPack 1.3, producer side):
//! the type attribute `__dlpack_c_exchange_api__` of `Tensor` and
//! `DLPackObject`.

use std::ffi::{CStr, c_char, c_int, c_void};

use dlpack_core::export::{Export, Memory};
use dlpack_core::ffi::{
    DLDevice, DLDeviceType, DLManagedTensorVersioned, DLPackExchangeAPI, DLPackExchangeAPIHeader,
    DLPackVersion, DLTensor,
};
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_core::protocol::{Abi, DLPACK_EXCHANGE_API};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::classes::object::shared_of;
use crate::classes::tensor::Tensor;
use crate::cpython::owner::Keep;
use crate::error::{IntoPyResult, type_err};
use crate::export::capsule::RawManaged;
use crate::export::shared::share;

struct Table(DLPackExchangeAPI);
// SAFETY: the table is immutable and its prev_api is NULL.
unsafe impl Sync for Table {}

static TABLE: Table = Table(DLPackExchangeAPI {
    header: DLPackExchangeAPIHeader {
        version: DLPackVersion::CURRENT,
        prev_api: std::ptr::null_mut(),
    },
    managed_tensor_allocator: Some(ex_allocator),
    managed_tensor_from_py_object_no_sync: Some(ex_from_py_object),
    managed_tensor_to_py_object_no_sync: Some(ex_to_py_object),
    dltensor_from_py_object_no_sync: Some(ex_dltensor_from_py_object),
    current_work_stream: Some(ex_current_work_stream),
});

/// A pointer to this crate's static C exchange API table.
pub fn exchange_api() -> &'static DLPackExchangeAPI {
    &TABLE.0
}

pub(crate) fn exchange_api_capsule(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let name: &'static CStr = DLPACK_EXCHANGE_API;
    let p = std::ptr::from_ref(&TABLE.0).cast_mut().cast::<c_void>();
    // SAFETY: the table is a static; the name is static; no destructor.
    let cap = unsafe { ffi::PyCapsule_New(p, name.as_ptr(), None) };
    if cap.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: new reference.
    Ok(unsafe { Bound::from_owned_ptr(py, cap) }.unbind())
}

unsafe extern "C" fn ex_from_py_object(
    obj: *mut c_void,
    out: *mut *mut DLManagedTensorVersioned,
) -> c_int {
    // SAFETY: exchange API functions are called with an attached thread state.
    let py = unsafe { Python::assume_attached() };
    crate::error::c_status(py, || {
        // SAFETY: obj is a live object of one of our types (borrowed).
        let obj = unsafe { Bound::from_borrowed_ptr(py, obj.cast()) };
        let s = shared_of(&obj)?;
        match share(&s, Abi::Versioned, s.device(), s.read_only())? {
            RawManaged::Versioned(p) => {
                // SAFETY: out is a valid out pointer.
                unsafe { *out = p };
                Ok(())
            }
            other => {
                // SAFETY: we own it.
                unsafe { crate::export::capsule::release_raw(other) };
                Err(type_err("internal: expected a versioned tensor"))
            }
        }
    })
}

unsafe extern "C" fn ex_dltensor_from_py_object(obj: *mut c_void, out: *mut DLTensor) -> c_int {
    // SAFETY: called with an attached thread state.
    let py = unsafe { Python::assume_attached() };
    crate::error::c_status(py, || {
        // SAFETY: obj is a live object (borrowed).
        let obj = unsafe { Bound::from_borrowed_ptr(py, obj.cast()) };
        let s = shared_of(&obj)?;
        // SAFETY: the descriptor lives in the shared tensor, which obj keeps
        // alive; out is writable.
        unsafe { *out = *s.view().raw() };
        Ok(())
    })
}

unsafe extern "C" fn ex_to_py_object(
    tensor: *mut DLManagedTensorVersioned,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: called with an attached thread state.
    let py = unsafe { Python::assume_attached() };
    crate::error::c_status(py, || {
        // SAFETY: ownership of the tensor is stolen (released on failure).
        let t = unsafe { ManagedTensorVersioned::from_raw(tensor) }.py()?;
        let obj = Bound::new(py, Tensor::new(t))?;
        // SAFETY: out is writable; we hand over a new reference.
        unsafe { *out = obj.into_ptr().cast() };
        Ok(())
    })
}

unsafe extern "C" fn ex_allocator(
    prototype: *mut DLTensor,
    out: *mut *mut DLManagedTensorVersioned,
    error_ctx: *mut c_void,
    set_error: Option<unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char)>,
) -> c_int {
    // SAFETY: the caller passes a valid prototype (dtype, ndim, shape, device).
    let r = std::panic::catch_unwind(|| allocate(unsafe { &*prototype }));
    let msg = match r {
        Ok(Ok(t)) => {
            // SAFETY: out is writable.
            unsafe { *out = t.into_raw() };
            return 0;
        }
        Ok(Err(msg)) => msg,
        Err(_) => c"internal error in dlpack (please report): a panic in managed_tensor_allocator",
    };
    if let Some(f) = set_error {
        // SAFETY: SetError takes C strings valid for the call.
        unsafe { f(error_ctx, c"BufferError".as_ptr(), msg.as_ptr()) };
    }
    -1
}

/// A zeroed, compact tensor shaped as `p` on the host (the allocator of our
/// exchange API table), or why not.
fn allocate(p: &DLTensor) -> Result<ManagedTensorVersioned, &'static CStr> {
    if p.device.device_type != DLDeviceType::kDLCPU
        || p.ndim < 0
        || (p.ndim > 0 && p.shape.is_null())
    {
        return Err(c"this producer allocates only on kDLCPU, with ndim >= 0 and a shape");
    }
    let shape = if p.ndim == 0 {
        &[][..]
    } else {
        // SAFETY: a non-NULL shape of ndim entries (checked above; the
        // caller's contract).
        unsafe { std::slice::from_raw_parts(p.shape, p.ndim as usize) }
    };
    let storage = p
        .dtype
        .storage(false)
        .map_err(|_| c"the prototype's dtype has no byte size")?;
    let layout = dlpack_core::layout::analyze(shape, None, storage)
        .map_err(|_| c"the prototype's shape overflows")?;
    let bytes = usize::try_from(layout.span_bytes()).map_err(|_| c"the prototype is too large")?;
    let mut words: Vec<u64> = Vec::new();
    // An allocation that fails is an error here, not an abort.
    words
        .try_reserve_exact(bytes.div_ceil(8).max(1))
        .map_err(|_| c"out of memory for the prototype's size")?;
    words.resize(words.capacity(), 0);
    let memory = Memory {
        ptr: words.as_mut_ptr().cast(),
        len: bytes,
        device: DLDevice::cpu(),
        dtype: Some(p.dtype),
        read_only: false,
    };
    // SAFETY: the Vec's buffer is stable and lives in the owner.
    let owner = unsafe { Keep::new(words, memory) };
    Export::new(owner)
        .dtype(p.dtype)
        .shape(shape)
        .versioned()
        .map_err(|_| c"the prototype cannot be allocated")
}

unsafe extern "C" fn ex_current_work_stream(
    _t: DLDeviceType,
    _id: i32,
    out: *mut *mut c_void,
) -> c_int {
    // No panic: one write.
    // SAFETY: out is writable. Our tensors have no pending device work.
    unsafe { *out = std::ptr::null_mut() };
    0
}
