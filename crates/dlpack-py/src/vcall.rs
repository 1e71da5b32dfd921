//! Calling `obj.__dlpack__(...)` the way the interpreter itself does:
//! `PyObject_VectorcallMethod` with the arguments in an array and a cached
//! tuple of keyword names, so no bound method, argument tuple or keyword
//! dict is built per call.
//!
//! `PyObject_VectorcallMethod` is in the stable ABI from Python 3.12; it is
//! an exported CPython function with the same signature since 3.9, so on
//! Unix (where an extension's symbols are resolved against the running
//! interpreter) it is used on every supported version (>= 3.9). Elsewhere
//! (Windows' `python3.dll` exports it only from 3.12) the calls fall back to
//! `PyObject_Call` with a keyword dict.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple};

#[cfg(unix)]
unsafe extern "C" {
    fn PyObject_VectorcallMethod(
        name: *mut ffi::PyObject,
        args: *const *mut ffi::PyObject,
        nargsf: usize,
        kwnames: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject;
}

/// `PY_VECTORCALL_ARGUMENTS_OFFSET`: `args[-1]` may be used by the callee.
#[cfg(unix)]
const ARGUMENTS_OFFSET: usize = 1 << (usize::BITS - 1);

static MAX_VERSION_NAMES: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
static MAX_VERSION_1_3: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();

/// `obj.<name>(**{kw: value for kw, value in kwargs})`, with `names` the
/// cached tuple of keyword names (same order as `values`).
fn call_method_kw<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    names: &Bound<'py, PyTuple>,
    values: &[&Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    debug_assert_eq!(names.len(), values.len());
    #[cfg(unix)]
    {
        let py = obj.py();
        let mut args: [*mut ffi::PyObject; 4] = [std::ptr::null_mut(); 4];
        args[1] = obj.as_ptr();
        for (slot, v) in args[2..].iter_mut().zip(values) {
            *slot = v.as_ptr();
        }
        let kwnames = if values.is_empty() {
            std::ptr::null_mut()
        } else {
            names.as_ptr()
        };
        // SAFETY: args[1..2 + values.len()] are borrowed live objects (self,
        // then the keyword values), args[0] is a scratch slot the callee may
        // use (ARGUMENTS_OFFSET); kwnames is a tuple of str of length
        // values.len() (or NULL); the GIL is held.
        let r = unsafe {
            PyObject_VectorcallMethod(
                name.as_ptr(),
                args.as_ptr().add(1),
                1 | ARGUMENTS_OFFSET,
                kwnames,
            )
        };
        // SAFETY: a new reference or NULL with an exception set.
        unsafe { Bound::from_owned_ptr_or_err(py, r) }
    }
    #[cfg(not(unix))]
    {
        let kwargs = pyo3::types::PyDict::new(obj.py());
        for (k, v) in names.iter().zip(values) {
            kwargs.set_item(k, v)?;
        }
        obj.call_method(name, (), Some(&kwargs))
    }
}

/// `obj.__dlpack__(max_version=(1, 3))`.
pub(crate) fn dlpack_max_version_1_3<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let names = MAX_VERSION_NAMES
        .get_or_try_init(py, || {
            // Interned, like the function's parameter names: CPython matches
            // keywords by identity first and compares strings only on a miss.
            PyTuple::new(py, [PyString::intern(py, "max_version")]).map(Bound::unbind)
        })?
        .bind(py);
    let value = MAX_VERSION_1_3
        .get_or_try_init(py, || PyTuple::new(py, [1u32, 3]).map(Bound::unbind))?
        .bind(py);
    call_method_kw(
        obj,
        pyo3::intern!(py, "__dlpack__"),
        names,
        &[value.as_any()],
    )
}

/// `obj.__dlpack__()`.
pub(crate) fn dlpack_no_args<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    call_method_kw(
        obj,
        pyo3::intern!(py, "__dlpack__"),
        &PyTuple::empty(py),
        &[],
    )
}
