//! Calling `obj.__dlpack__(...)` the way the interpreter itself does:
//! `PyObject_VectorcallMethod` with the arguments in an array and a cached
//! tuple of keyword names (one per subset of the four keywords), so no bound
//! method, argument tuple or keyword dict is built per call. Every call the
//! crate makes to a producer's `__dlpack__` goes through [`dlpack_call`]:
//! the import, its pre-1.0 retry, and `DLPackObject`'s forwarding.
//!
//! `PyObject_VectorcallMethod` is in the stable ABI from Python 3.12; it is
//! an exported CPython function with the same signature since 3.9, so on
//! Unix (where an extension's symbols are resolved against the running
//! interpreter) it is used on every supported version (>= 3.9). Elsewhere
//! (Windows' `python3.dll` exports it only from 3.12) the calls fall back to
//! `PyObject_Call` with a keyword dict.

#[cfg(unix)]
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

/// `__dlpack__`'s keywords, in the order their values are passed (here and
/// to our own `__dlpack__`).
pub(crate) const KEYWORDS: [&str; 4] = ["stream", "max_version", "dl_device", "copy"];

/// [`KEYWORDS`] as interned strings, made once.
static KEYWORD_NAMES: PyOnceLock<[Py<PyString>; 4]> = PyOnceLock::new();

/// [`KEYWORDS`] interned: CPython matches keywords by identity first and
/// compares strings only on a miss, and callers pass interned names.
pub(crate) fn keyword_names(py: Python<'_>) -> &[Py<PyString>; 4] {
    KEYWORD_NAMES.get_or_init(py, || KEYWORDS.map(|k| PyString::intern(py, k).unbind()))
}
/// The subset `{max_version}` of [`KEYWORDS`].
const MAX_VERSION_ONLY: usize = 1 << 1;
const _: () = assert!(matches!(KEYWORDS[1].as_bytes(), b"max_version"));

/// The keyword-name tuple of each subset of [`KEYWORDS`] (bit `i` set:
/// `KEYWORDS[i]` passed), built once from [`keyword_names`].
static KWNAMES: [PyOnceLock<Py<PyTuple>>; 16] = [const { PyOnceLock::new() }; 16];
static MAX_VERSION_1_3: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();

/// The `__dlpack__` keyword arguments of one call: `stream`, `max_version`,
/// `dl_device`, `copy`, each passed only when `Some`.
pub(crate) type DlpackKwargs<'a, 'py> = [Option<&'a Bound<'py, PyAny>>; 4];

/// `obj.__dlpack__(**kwargs)` with the keywords that are `Some`, with the
/// fallback real consumers use for a producer from before DLPack 1.0 (see
/// [`retry_without_max_version`]).
pub(crate) fn dlpack_call<'py>(
    obj: &Bound<'py, PyAny>,
    kwargs: DlpackKwargs<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    dlpack_call_once(obj, kwargs).or_else(|err| retry_without_max_version(obj, kwargs, err))
}

/// After `obj.__dlpack__(**kwargs)` failed with `err`: a producer from
/// before DLPack 1.0 rejects the `max_version` keyword with a `TypeError`;
/// it is asked again with `stream` only, unless the call also asked for
/// `dl_device` or `copy`, which such a producer cannot honour.
#[cold]
#[inline(never)]
fn retry_without_max_version<'py>(
    obj: &Bound<'py, PyAny>,
    kwargs: DlpackKwargs<'_, 'py>,
    err: PyErr,
) -> PyResult<Bound<'py, PyAny>> {
    let [stream, max_version, dl_device, copy] = kwargs;
    if max_version.is_none()
        || dl_device.is_some()
        || copy.is_some()
        || !is_keyword_type_error(obj.py(), &err)
    {
        return Err(err);
    }
    dlpack_call_once(obj, [stream, None, None, None])
}

/// Whether `err` is a `TypeError` about keywords (what a function without
/// the keyword raises).
fn is_keyword_type_error(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<pyo3::exceptions::PyTypeError>(py)
        && err.value(py).to_string().contains("keyword")
}

/// `obj.__dlpack__(**kwargs)` with the keywords that are `Some`, once.
fn dlpack_call_once<'py>(
    obj: &Bound<'py, PyAny>,
    kwargs: DlpackKwargs<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut mask = 0;
    let mut values: [&Bound<'py, PyAny>; 4] = [obj; 4];
    let mut n = 0;
    for (i, v) in kwargs.iter().enumerate() {
        if let Some(v) = v {
            mask |= 1 << i;
            values[n] = v;
            n += 1;
        }
    }
    call_dlpack_kw(obj, kwnames(obj.py(), mask)?, &values[..n])
}

/// The cached keyword-name tuple of the subset `mask` of [`KEYWORDS`].
#[inline]
fn kwnames(py: Python<'_>, mask: usize) -> PyResult<&Bound<'_, PyTuple>> {
    let names = KWNAMES[mask].get_or_try_init(py, || {
        let names = keyword_names(py)
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, k)| k.bind(py))
            .collect::<Vec<_>>();
        PyTuple::new(py, names).map(Bound::unbind)
    })?;
    Ok(names.bind(py))
}

/// `obj.__dlpack__(**{kw: value for kw, value in zip(names, values)})`,
/// with `names` a cached tuple of keyword names.
#[inline]
fn call_dlpack_kw<'py>(
    obj: &Bound<'py, PyAny>,
    names: &Bound<'py, PyTuple>,
    values: &[&Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    debug_assert_eq!(names.len(), values.len());
    let py = obj.py();
    let name = pyo3::intern!(py, "__dlpack__");
    #[cfg(unix)]
    {
        let mut args: [*mut ffi::PyObject; 6] = [std::ptr::null_mut(); 6];
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
        // then the keyword values, at most four), args[0] is a scratch slot
        // the callee may use (ARGUMENTS_OFFSET); kwnames is a tuple of str of
        // length values.len() (or NULL); the GIL is held.
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
        let kwargs = pyo3::types::PyDict::new(py);
        for (k, v) in names.iter().zip(values) {
            kwargs.set_item(k, v)?;
        }
        obj.call_method(name, (), Some(&kwargs))
    }
}

/// `obj.__dlpack__(max_version=(1, 3))` (and the pre-1.0 fallback of
/// [`dlpack_call`]): the import's call, made without [`dlpack_call`]'s
/// keyword bookkeeping.
pub(crate) fn dlpack_max_version_1_3<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let value = MAX_VERSION_1_3
        .get_or_try_init(py, || PyTuple::new(py, [1u32, 3]).map(Bound::unbind))?
        .bind(py);
    call_dlpack_kw(obj, kwnames(py, MAX_VERSION_ONLY)?, &[value.as_any()]).or_else(|err| {
        retry_without_max_version(obj, [None, Some(value.as_any()), None, None], err)
    })
}
