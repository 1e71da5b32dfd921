//! The arguments of `__dlpack__` as Python passes them: keyword names
//! (pointer comparison with the interned names, else by value),
//! `max_version` (a `(major, minor)` tuple; the constant tuples consumers
//! pass are remembered by identity), `copy`, `dl_device` and `stream`, each
//! decoded with a `TypeError`/`ValueError` that names the value and the
//! rule.

use dlpack_core::ffi::{DLDevice, DLDeviceType};
use dlpack_core::protocol::{Abi, DlpackRequest, negotiate_version};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyInt, PyString, PyTuple};

use crate::cpython::vcall::{DlpackKwargs, KEYWORDS};
use crate::error::{IntoPyResult, buffer_err, int_arg, show, type_err, type_name};

/// The arguments of a `__dlpack__` call: the values as Python passed them
/// (keyword-only; `None` when absent or `None`), which a forwarding object
/// passes on unchanged, with `max_version` and `copy` decoded; the core's
/// request is [`DlpackArgs::request`].
#[derive(Clone, Copy, Default)]
pub(crate) struct DlpackArgs<'a, 'py> {
    /// `stream`, `max_version`, `dl_device`, `copy` as passed (the order of
    /// [`KEYWORDS`]).
    pub(crate) passed: DlpackKwargs<'a, 'py>,
    /// `passed`'s `max_version`, decoded.
    pub(crate) max_version: Option<(i64, i64)>,
    /// `passed`'s `copy`, decoded.
    pub(crate) copy: Option<bool>,
}

impl<'a, 'py> DlpackArgs<'a, 'py> {
    /// Decodes `max_version` and `copy` (`TypeError` for values of the wrong
    /// type); `stream` and `dl_device` are decoded by [`DlpackArgs::request`].
    pub(crate) fn parse(passed: DlpackKwargs<'a, 'py>) -> PyResult<Self> {
        Ok(DlpackArgs {
            passed,
            max_version: passed[1].map(max_version_of).transpose()?,
            copy: passed[3].map(copy_of).transpose()?,
        })
    }

    /// The arguments of a call to an object that exports only `abi`'s
    /// struct (see `DLPackObject::exporting_only`): without `max_version`
    /// for `Abi::Legacy`; unchanged for `Abi::Versioned` if `max_version`
    /// asks for it, else `BufferError`.
    pub(crate) fn only(&self, abi: Abi) -> PyResult<Self> {
        match abi {
            Abi::Legacy => {
                let mut passed = self.passed;
                passed[1] = None;
                Ok(DlpackArgs {
                    passed,
                    max_version: None,
                    copy: self.copy,
                })
            }
            Abi::Versioned => match negotiate_version(self.max_version).py()? {
                Abi::Versioned => Ok(*self),
                Abi::Legacy => Err(buffer_err(format!(
                    "__dlpack__(max_version={}) asks for the legacy DLManagedTensor, but this \
                     object exports only DLManagedTensorVersioned (asdlpack(..., \
                     impl_cls=DLManagedTensorVersioned)); a consumer passes max_version=(1, 0) \
                     or newer to receive it",
                    match self.max_version {
                        None => "None".to_owned(),
                        Some((a, b)) => format!("({a}, {b})"),
                    }
                ))),
            },
        }
    }

    /// The request the core plans with; `TypeError` for a `stream` or
    /// `dl_device` of the wrong type.
    pub(crate) fn request(&self) -> PyResult<DlpackRequest> {
        let [stream, _, dl_device, _] = self.passed;
        let stream = match stream {
            None => None,
            Some(s) => Some(int_arg::<i64>(
                s,
                "stream",
                "None or an int that fits in int64 (a stream handle, -1, 1 or 2)",
            )?),
        };
        let dl_device = match dl_device {
            None => None,
            Some(d) => Some(dl_device_of(d)?),
        };
        Ok(DlpackRequest {
            stream,
            max_version: self.max_version,
            dl_device,
            copy: self.copy,
        })
    }
}

/// `dl_device`: a `(device_type, device_id)` tuple of ints that fit in
/// `int32`.
fn dl_device_of(d: &Bound<'_, PyAny>) -> PyResult<DLDevice> {
    let rule = "a (device_type, device_id) tuple of ints that fit in int32";
    let t = d
        .cast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .ok_or_else(|| {
            type_err(format!(
                "dl_device must be {rule}, got {} of type {}",
                show(d),
                type_name(d)
            ))
        })?;
    let ty: i32 = int_arg(&t.get_item(0)?, "dl_device[0] (device_type)", rule)?;
    let id: i32 = int_arg(&t.get_item(1)?, "dl_device[1] (device_id)", rule)?;
    Ok(DLDevice::new(DLDeviceType(ty), id))
}

/// Which `__dlpack__` keyword `name` is: the interned name (pointer
/// comparison, what callers pass in practice), else by value.
#[inline]
pub(crate) fn keyword_index(names: &[Py<PyString>; 4], name: &Bound<'_, PyAny>) -> PyResult<usize> {
    match names.iter().position(|n| n.as_ptr() == name.as_ptr()) {
        Some(i) => Ok(i),
        None => keyword_index_by_value(name),
    }
}

/// [`keyword_index`] for a keyword that is not the interned name.
#[cold]
#[inline(never)]
fn keyword_index_by_value(name: &Bound<'_, PyAny>) -> PyResult<usize> {
    let s = name
        .cast::<PyString>()
        .map_err(|_| type_err("__dlpack__() keywords must be strings"))?;
    // Lossy: a name that is not valid text is no keyword either.
    let s = s.to_string_lossy();
    let s = &*s;
    KEYWORDS.iter().position(|n| *n == s).ok_or_else(|| {
        type_err(format!(
            "__dlpack__() got an unexpected keyword argument '{s}'"
        ))
    })
}

/// A `max_version` tuple held, and its value.
type KnownMaxVersion = (Py<PyTuple>, (i64, i64));

/// `max_version` tuples seen before, with their values: consumers pass the
/// same constant tuple on every call (NumPy, for one), and an exact tuple of
/// exact ints is immutable, so holding it makes its identity its value.
static MAX_VERSIONS: [PyOnceLock<KnownMaxVersion>; 4] = [
    PyOnceLock::new(),
    PyOnceLock::new(),
    PyOnceLock::new(),
    PyOnceLock::new(),
];

/// `max_version`: a `(major, minor)` tuple of ints.
fn max_version_of(v: &Bound<'_, PyAny>) -> PyResult<(i64, i64)> {
    for c in &MAX_VERSIONS {
        match c.get(v.py()) {
            Some((t, mv)) if t.as_ptr() == v.as_ptr() => return Ok(*mv),
            Some(_) => {}
            None => break,
        }
    }
    if let Ok(t) = v.cast_exact::<PyTuple>()
        && t.len() == 2
    {
        // SAFETY: index 0 and 1 of a tuple of length 2.
        let (a, b) = unsafe {
            (
                t.get_borrowed_item_unchecked(0),
                t.get_borrowed_item_unchecked(1),
            )
        };
        if a.is_exact_instance_of::<PyInt>() && b.is_exact_instance_of::<PyInt>() {
            // SAFETY: exact ints; -1 with an error set is checked below.
            let (ma, mi) = unsafe {
                (
                    ffi::PyLong_AsLongLong(a.as_ptr()),
                    ffi::PyLong_AsLongLong(b.as_ptr()),
                )
            };
            if (ma != -1 && mi != -1) || PyErr::take(v.py()).is_none() {
                let py = v.py();
                if let Some(slot) = MAX_VERSIONS.iter().find(|c| c.get(py).is_none()) {
                    let _ = slot.set(py, (t.clone().unbind(), (ma, mi)));
                }
                return Ok((ma, mi));
            }
        }
    }
    let rule = "a (major, minor) tuple of ints";
    match v.cast::<PyTuple>() {
        Ok(t) if t.len() == 2 => Ok((
            int_arg(&t.get_item(0)?, "max_version[0] (major)", rule)?,
            int_arg(&t.get_item(1)?, "max_version[1] (minor)", rule)?,
        )),
        _ => Err(type_err(format!(
            "argument 'max_version': expected {rule}, got {} of type {}",
            show(v),
            type_name(v)
        ))),
    }
}

/// `copy`: None (absent) or a bool.
fn copy_of(v: &Bound<'_, PyAny>) -> PyResult<bool> {
    let p = v.as_ptr();
    // SAFETY: comparing with the bool singletons.
    unsafe {
        if p == ffi::Py_True() {
            return Ok(true);
        }
        if p == ffi::Py_False() {
            return Ok(false);
        }
    }
    v.extract::<bool>().map_err(|_| {
        type_err(format!(
            "argument 'copy': expected None or a bool, got {} of type {}",
            show(v),
            type_name(v)
        ))
    })
}
