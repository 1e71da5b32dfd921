//! `dlpack.Capsule`: pydlpack's object wrapper of the `PyCapsule` C API
//! (`new`, `is_valid`, `get/set_pointer`, `get/set_name`,
//! `get/set_context`, `get/set_destructor`).
//!
//! Two rules pydlpack leaves to luck are kept here:
//! - CPython stores a capsule's name pointer, not a copy: every name given
//!   to [`Capsule`] is interned once for the life of the process, so a
//!   capsule never outlives its name.
//! - A Python destructor runs while the capsule is being freed (its
//!   reference count is zero): it receives a `Capsule` that reads the dying
//!   capsule by address without taking a reference (which would resurrect
//!   it), and that refuses every call once the destructor has returned.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, c_char, c_void};
use std::sync::{Mutex, PoisonError};

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::error::type_name;
use crate::error::{type_err, value_err};

/// Names given to capsules, kept for the life of the process.
static NAMES: Mutex<Option<HashSet<&'static CStr>>> = Mutex::new(None);

/// Python destructors by capsule address, set by [`Capsule::set_destructor`].
static DESTRUCTORS: Mutex<Option<HashMap<usize, Py<PyAny>>>> = Mutex::new(None);

/// The C string of a capsule name (`str`, `bytes` or `None`), interned.
fn intern_name(name: Option<&Bound<'_, PyAny>>) -> PyResult<*const c_char> {
    let Some(name) = name.filter(|n| !n.is_none()) else {
        return Ok(std::ptr::null());
    };
    let bytes: Vec<u8> = if let Ok(s) = name.cast::<PyString>() {
        s.to_cow()?.as_bytes().to_vec()
    } else if let Ok(b) = name.cast::<PyBytes>() {
        b.as_bytes().to_vec()
    } else {
        return Err(type_err(format!(
            "a capsule name is a str, bytes or None, got {}",
            type_name(name)
        )));
    };
    let c = CString::new(bytes)
        .map_err(|_| value_err("a capsule name cannot contain a NUL character"))?;
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(n) = names.get(c.as_c_str()) {
        return Ok(n.as_ptr());
    }
    let leaked: &'static CStr = Box::leak(c.into_boxed_c_str());
    names.insert(leaked);
    Ok(leaked.as_ptr())
}

fn destructors<R>(f: impl FnOnce(&mut HashMap<usize, Py<PyAny>>) -> R) -> R {
    let mut map = DESTRUCTORS.lock().unwrap_or_else(PoisonError::into_inner);
    f(map.get_or_insert_with(HashMap::new))
}

/// What a [`Capsule`] holds.
#[derive(Debug)]
enum Held {
    /// A reference to a live capsule.
    Live(Py<PyAny>),
    /// The address of a capsule whose destructor is running.
    Dying(usize),
    /// A capsule that was freed.
    Freed,
}

/// `dlpack.Capsule`: a `PyCapsule` and the C API calls on it.
#[pyclass(module = "dlpack", name = "Capsule")]
#[derive(Debug)]
pub struct Capsule {
    held: Held,
}

/// The address-or-`None` of a `void*`, as ctypes reads one.
fn address(p: *mut c_void) -> Option<usize> {
    (!p.is_null()).then_some(p as usize)
}

impl Capsule {
    fn raw(&self, py: Python<'_>) -> PyResult<*mut ffi::PyObject> {
        match &self.held {
            Held::Live(c) => Ok(c.as_ptr()),
            Held::Dying(p) => Ok(*p as *mut ffi::PyObject),
            Held::Freed => {
                let _ = py;
                Err(value_err(
                    "the capsule was freed: a Capsule passed to a destructor is valid only while \
                     the destructor runs",
                ))
            }
        }
    }

    /// A status of the C API: 0 is success, anything else raises the error
    /// it set.
    fn check(py: Python<'_>, status: i32) -> PyResult<()> {
        if status == 0 {
            Ok(())
        } else {
            Err(PyErr::take(py)
                .unwrap_or_else(|| PyValueError::new_err("the PyCapsule call failed")))
        }
    }
}

#[pymethods]
impl Capsule {
    /// Wraps an existing `PyCapsule` (`TypeError` for anything else).
    #[new]
    fn py_new(capsule: &Bound<'_, PyAny>) -> PyResult<Self> {
        crate::error::guard(|| {
            // SAFETY: capsule is live; the GIL is held.
            if unsafe { ffi::PyCapsule_CheckExact(capsule.as_ptr()) } == 0 {
                return Err(type_err(format!(
                    "expected a PyCapsule, got an object of type {}",
                    type_name(capsule)
                )));
            }
            Ok(Capsule {
                held: Held::Live(capsule.clone().unbind()),
            })
        })
    }

    /// A new capsule holding `pointer` (not 0) under `name` (str, bytes or
    /// None), with an optional Python `destructor(capsule)`.
    #[classmethod]
    #[pyo3(signature = (pointer, name, destructor=None))]
    fn new(
        cls: &Bound<'_, pyo3::types::PyType>,
        pointer: usize,
        name: Option<&Bound<'_, PyAny>>,
        destructor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        crate::error::guard(|| {
            let py = cls.py();
            let name = intern_name(name)?;
            // SAFETY: name is NULL or an interned C string that lives forever;
            // CPython refuses a NULL pointer with ValueError.
            let c = unsafe { ffi::PyCapsule_New(pointer as *mut c_void, name, None) };
            if c.is_null() {
                return Err(PyErr::fetch(py));
            }
            // SAFETY: a new reference.
            let c = unsafe { Bound::from_owned_ptr(py, c) };
            let this = Capsule {
                held: Held::Live(c.unbind()),
            };
            if let Some(d) = destructor.filter(|d| !d.is_none()) {
                this.set_destructor(py, Some(d))?;
            }
            Ok(this)
        })
    }

    /// The wrapped capsule (`None` once it is being freed).
    #[getter]
    fn capsule(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        crate::error::guard(|| {
            Ok({
                match &self.held {
                    Held::Live(c) => c.clone_ref(py),
                    _ => py.None(),
                }
            })
        })
    }

    /// Whether the capsule holds a pointer under exactly this name.
    #[pyo3(signature = (name))]
    fn is_valid(&self, py: Python<'_>, name: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        crate::error::guard(|| {
            let c = self.raw(py)?;
            let name = intern_name(name)?;
            // SAFETY: c is a live (or dying, not yet freed) capsule.
            Ok(unsafe { ffi::PyCapsule_IsValid(c, name) } == 1)
        })
    }

    /// The pointer, if `name` is the capsule's name (`ValueError` otherwise).
    #[pyo3(signature = (name))]
    fn get_pointer(&self, py: Python<'_>, name: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
        crate::error::guard(|| {
            let c = self.raw(py)?;
            let name = intern_name(name)?;
            // SAFETY: as above.
            let p = unsafe { ffi::PyCapsule_GetPointer(c, name) };
            if p.is_null() {
                return Err(PyErr::fetch(py));
            }
            Ok(p as usize)
        })
    }

    /// Replaces the pointer (not 0).
    fn set_pointer(&self, py: Python<'_>, pointer: usize) -> PyResult<()> {
        crate::error::guard(|| {
            let c = self.raw(py)?;
            // SAFETY: as above; CPython refuses NULL with ValueError.
            Self::check(py, unsafe {
                ffi::PyCapsule_SetPointer(c, pointer as *mut c_void)
            })
        })
    }

    /// The capsule's name (`None` for a capsule without one).
    fn get_name(&self, py: Python<'_>) -> PyResult<Option<String>> {
        crate::error::guard(|| {
            let c = self.raw(py)?;
            // SAFETY: as above; the name lives as long as the capsule.
            let n = unsafe { ffi::PyCapsule_GetName(c) };
            if n.is_null() {
                return match PyErr::take(py) {
                    Some(e) => Err(e),
                    None => Ok(None),
                };
            }
            // SAFETY: a non-NULL name is a C string.
            Ok(Some(
                unsafe { CStr::from_ptr(n) }.to_string_lossy().into_owned(),
            ))
        })
    }

    /// Renames the capsule (`None` removes the name).
    #[pyo3(signature = (name))]
    fn set_name(&self, py: Python<'_>, name: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        crate::error::guard(|| {
            let c = self.raw(py)?;
            let name = intern_name(name)?;
            // SAFETY: as above; the interned name lives forever.
            Self::check(py, unsafe { ffi::PyCapsule_SetName(c, name) })
        })
    }

    /// The context pointer (`None` for NULL).
    fn get_context(&self, py: Python<'_>) -> PyResult<Option<usize>> {
        crate::error::guard(|| {
            let c = self.raw(py)?;
            // SAFETY: as above.
            let p = unsafe { ffi::PyCapsule_GetContext(c) };
            if p.is_null() {
                if let Some(e) = PyErr::take(py) {
                    return Err(e);
                }
            }
            Ok(address(p))
        })
    }

    /// Sets the context pointer (`None` or 0 for NULL).
    #[pyo3(signature = (context))]
    fn set_context(&self, py: Python<'_>, context: Option<usize>) -> PyResult<()> {
        crate::error::guard(|| {
            let c = self.raw(py)?;
            let p = context.unwrap_or(0) as *mut c_void;
            // SAFETY: as above.
            Self::check(py, unsafe { ffi::PyCapsule_SetContext(c, p) })
        })
    }

    /// The destructor: the Python callable set with `set_destructor`, else
    /// the address of the C destructor, or `None`.
    fn get_destructor(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        crate::error::guard(|| {
            let c = self.raw(py)?;
            // SAFETY: as above.
            let d = unsafe { ffi::PyCapsule_GetDestructor(c) };
            let Some(d) = d else {
                if let Some(e) = PyErr::take(py) {
                    return Err(e);
                }
                return Ok(None);
            };
            if std::ptr::fn_addr_eq(d, run_python_destructor as ffi::PyCapsule_Destructor) {
                if let Some(f) = destructors(|m| m.get(&(c as usize)).map(|f| f.clone_ref(py))) {
                    return Ok(Some(f));
                }
            }
            Ok(Some((d as usize).into_pyobject(py)?.into_any().unbind()))
        })
    }

    /// Sets a Python `destructor(capsule)` called when the capsule is freed
    /// (`None` removes the destructor).
    #[pyo3(signature = (destructor))]
    fn set_destructor(
        &self,
        py: Python<'_>,
        destructor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        crate::error::guard(|| {
            let c = self.raw(py)?;
            let f = destructor.filter(|d| !d.is_none());
            if let Some(f) = f {
                if !f.is_callable() {
                    return Err(type_err(format!(
                        "a capsule destructor is a callable or None, got {}",
                        type_name(f)
                    )));
                }
            }
            let func: Option<ffi::PyCapsule_Destructor> = f.map(|_| run_python_destructor as _);
            // SAFETY: as above; the function never unwinds.
            Self::check(py, unsafe { ffi::PyCapsule_SetDestructor(c, func) })?;
            let old = destructors(|m| match f {
                Some(f) => m.insert(c as usize, f.clone().unbind()),
                None => m.remove(&(c as usize)),
            });
            drop(old);
            Ok(())
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::error::guard(|| {
            Ok({
                match self.get_name(py) {
                    Ok(Some(n)) => format!("<dlpack.Capsule name={n:?}>"),
                    Ok(None) => "<dlpack.Capsule name=None>".to_owned(),
                    Err(_) => "<dlpack.Capsule (freed)>".to_owned(),
                }
            })
        })
    }
}

/// The C destructor of capsules with a Python destructor: calls it with a
/// dying [`Capsule`] (no reference taken), then marks that wrapper freed.
/// Errors are reported as unraisable; a pending exception is kept.
unsafe extern "C" fn run_python_destructor(capsule: *mut ffi::PyObject) {
    // A panic anywhere in the body is caught here, never unwound into CPython.
    let caught = std::panic::catch_unwind(|| {
        // SAFETY: CPython calls capsule destructors with the GIL held.
        unsafe { destroy(capsule) }
    });
    if let Err(payload) = caught {
        // SAFETY: as above.
        let py = unsafe { Python::assume_attached() };
        crate::error::panic_err(payload).write_unraisable(py, None);
    }
}

/// The body of [`run_python_destructor`]: calls the Python destructor set
/// for `capsule`, with a `Capsule` valid only during the call.
///
/// # Safety
///
/// Called with the GIL held, on a capsule being destroyed.
unsafe fn destroy(capsule: *mut ffi::PyObject) {
    // SAFETY: CPython calls capsule destructors with the GIL held.
    let py = unsafe { Python::assume_attached() };
    let Some(f) = destructors(|m| m.remove(&(capsule as usize))) else {
        return;
    };
    let pending = PyErr::take(py);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> PyResult<()> {
        let w = Bound::new(
            py,
            Capsule {
                held: Held::Dying(capsule as usize),
            },
        )?;
        let result = f.call1(py, (w.clone(),));
        if let Ok(mut w) = w.try_borrow_mut() {
            w.held = Held::Freed;
        }
        result.map(drop)
    }));
    match run {
        Ok(Ok(())) => {}
        Ok(Err(e)) => e.write_unraisable(py, Some(f.bind(py))),
        Err(_) => pyo3::exceptions::PySystemError::new_err(
            "a panic in dlpack.Capsule's destructor call (a bug in dlpack)",
        )
        .write_unraisable(py, None),
    }
    if let Some(e) = pending {
        e.restore(py);
    }
}
