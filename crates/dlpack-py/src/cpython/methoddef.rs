//! `METH_FASTCALL | METH_KEYWORDS` functions and methods: a `PyMethodDef`
//! in a static, and the method descriptor of a class for one. pyo3 compiles
//! `#[pyfunction]`s and methods with arguments to `METH_VARARGS` under
//! `abi3` before Python 3.10 (a tuple per call); the exchange's entry points
//! (`__dlpack__`, `asdlpack`) are declared here instead.

use std::ffi::{CStr, c_int};

use pyo3::prelude::*;
use pyo3::{PyTypeInfo, ffi};

/// A `PyMethodDef` in a static (CPython only reads it).
pub(crate) struct MethodDef(pub(crate) ffi::PyMethodDef);

// SAFETY: immutable after construction; CPython only reads method defs.
unsafe impl Sync for MethodDef {}

/// A `METH_FASTCALL | METH_KEYWORDS` function (`_PyCFunctionFastWithKeywords`).
pub(crate) type FastCallKw = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// `METH_FASTCALL`: in the limited API from Python 3.10 (so pyo3 declares it
/// under `abi3` only from there, and compiles `#[pyfunction]`s and methods
/// with arguments to `METH_VARARGS` below it: a tuple per call), and
/// understood with this value and calling convention by every CPython >= 3.7.
const METH_FASTCALL: c_int = 0x0080;

impl MethodDef {
    /// A `METH_FASTCALL | METH_KEYWORDS` function or method; `doc` starts
    /// with the text signature (`name(args)\n--\n\n`).
    pub(crate) const fn fastcall(name: &'static CStr, f: FastCallKw, doc: &'static CStr) -> Self {
        MethodDef(ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                // SAFETY: C's `(PyCFunction)(void(*)(void))f`: the union field
                // only stores the pointer; CPython calls it with the signature
                // that ml_flags names (METH_FASTCALL | METH_KEYWORDS).
                PyCFunction: unsafe { std::mem::transmute::<FastCallKw, ffi::PyCFunction>(f) },
            },
            ml_flags: METH_FASTCALL | ffi::METH_KEYWORDS,
            ml_doc: doc.as_ptr(),
        })
    }
}

/// A method descriptor of `T` for `def` (a class attribute: `__dlpack__` is
/// called on every exchange, so it is a plain `METH_FASTCALL |
/// METH_KEYWORDS` method that decodes its few keywords itself instead of
/// going through pyo3's generic argument parsing).
pub(crate) fn method_descriptor<T: PyTypeInfo>(
    py: Python<'_>,
    def: &'static MethodDef,
) -> PyResult<Py<PyAny>> {
    // Called while pyo3 fills the type's dict: the type object exists.
    let ty = py.get_type::<T>();
    // SAFETY: `def` is a static that outlives the descriptor; the type is live.
    let d =
        unsafe { ffi::PyDescr_NewMethod(ty.as_type_ptr(), std::ptr::from_ref(&def.0).cast_mut()) };
    if d.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new reference.
    Ok(unsafe { Bound::from_owned_ptr(py, d) }.unbind())
}
