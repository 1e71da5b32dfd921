//! `__arrow_c_array__` of our objects: a host tensor as an Arrow array
//! through the Arrow PyCapsule interface, without a copy.
//!
//! The tensor is shared (a managed tensor holding the object's
//! `SharedTensor`), wrapped by dlpack-arrow in an Arrow buffer that owns
//! it, and handed over with arrow-rs's C data interface structs in an
//! `"arrow_schema"` and an `"arrow_array"` capsule: a 1-D tensor as a
//! primitive array, an N-d one as the canonical `arrow.fixed_shape_tensor`
//! (a `FixedSizeList` storage; tensors whose inner axes are a permutation
//! of row-major keep it as the extension's `permutation`).

use std::ffi::{CStr, c_void};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use arrow_array::Array;
use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_schema::Field;
use dlpack_arrow::consumer::ArrowImport;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::error::{buffer_err, kind_err};
use crate::export::shared::{SharedTensor, share_export};

const SCHEMA: &CStr = c"arrow_schema";
const ARRAY: &CStr = c"arrow_array";

/// `(schema capsule, array capsule)` of the tensor of `shared`.
///
/// # Errors
///
/// `BufferError` for device memory, `bool` tensors (Arrow booleans are
/// bit-packed), layouts that are not compact row-major (up to a permutation
/// of the inner axes), misaligned data; `TypeError` for 0-d tensors and
/// dtypes without an Arrow type.
pub(crate) fn arrow_c_array<'py>(
    py: Python<'py>,
    shared: &Arc<SharedTensor>,
) -> PyResult<Bound<'py, PyTuple>> {
    let view = shared.view();
    let arrow = |err: dlpack_arrow::Error| kind_err(err.kind(), err.to_string());
    let tensor = share_export(shared, view, view.device(), true)
        .versioned()
        .map_err(crate::error::to_pyerr)?;
    let (field, array) = if view.ndim() == 1 {
        let array = ArrowImport::new(tensor).array().map_err(arrow)?;
        (Field::new("", array.data_type().clone(), false), array)
    } else {
        let (field, list) = ArrowImport::new(tensor)
            .fixed_shape_tensor()
            .map_err(arrow)?;
        (field, Arc::new(list) as arrow_array::ArrayRef)
    };
    let schema = FFI_ArrowSchema::try_from(&field)
        .map_err(|err| buffer_err(format!("the Arrow C data interface: {err}")))?;
    let array = FFI_ArrowArray::new(&array.to_data());
    let schema = capsule(py, Box::new(schema), SCHEMA, drop_schema)?;
    let array = capsule(py, Box::new(array), ARRAY, drop_array)?;
    PyTuple::new(py, [schema, array])
}

/// A capsule named `name` holding `value`, freed by `destructor`.
fn capsule<'py, T>(
    py: Python<'py>,
    value: Box<T>,
    name: &'static CStr,
    destructor: unsafe extern "C" fn(*mut ffi::PyObject),
) -> PyResult<Bound<'py, PyAny>> {
    let ptr = Box::into_raw(value);
    // SAFETY: `name` is static, `ptr` a live allocation the destructor
    // frees; the GIL is held.
    let raw = unsafe { ffi::PyCapsule_New(ptr.cast::<c_void>(), name.as_ptr(), Some(destructor)) };
    if raw.is_null() {
        // SAFETY: not handed to Python; freed once here.
        drop(unsafe { Box::from_raw(ptr) });
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new reference, owned from here.
    Ok(unsafe { Bound::from_owned_ptr(py, raw) })
}

/// Frees the struct a capsule named `name` holds, releasing it unless its
/// consumer moved it out (release set to NULL), as the C data interface
/// asks (arrow-rs's `Drop` of the struct calls its release callback).
///
/// # Safety
///
/// `capsule` is one of [`capsule`]'s, made with `name` and a `Box<T>`.
unsafe fn free<T>(capsule: *mut ffi::PyObject, name: &CStr) {
    // SAFETY: the capsule is being destroyed, with the name it was made with.
    let ptr = unsafe { ffi::PyCapsule_GetPointer(capsule, name.as_ptr()) };
    if ptr.is_null() {
        // SAFETY: clear the error GetPointer set; the GIL is held.
        unsafe { ffi::PyErr_Clear() };
        return;
    }
    // SAFETY: made by Box::into_raw in `capsule`, freed once here.
    drop(unsafe { Box::from_raw(ptr.cast::<T>()) });
}

/// The destructor of our `"arrow_schema"` capsules; a panic does not cross
/// it.
unsafe extern "C" fn drop_schema(capsule: *mut ffi::PyObject) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: our "arrow_schema" capsules hold a Box<FFI_ArrowSchema>.
        unsafe { free::<FFI_ArrowSchema>(capsule, SCHEMA) }
    }));
}

/// The destructor of our `"arrow_array"` capsules; a panic does not cross
/// it.
unsafe extern "C" fn drop_array(capsule: *mut ffi::PyObject) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: our "arrow_array" capsules hold a Box<FFI_ArrowArray>.
        unsafe { free::<FFI_ArrowArray>(capsule, ARRAY) }
    }));
}
