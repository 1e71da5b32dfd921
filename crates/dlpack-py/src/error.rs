//! Errors at the Python boundary: the core's typed [`CoreError`](dlpack_core::Error) becomes the
//! exception the DLPack standard names for it (`BufferError`, `ValueError`,
//! `TypeError`, `NotImplementedError`), with the core's message, which names
//! the value and the rule.

use dlpack_core::{Error as CoreError, ErrorKind};
use pyo3::PyErr;
use pyo3::exceptions::{PyBufferError, PyNotImplementedError, PyTypeError, PyValueError};

/// Converts a core error into the Python exception of its
/// [`dlpack_core::ErrorKind`].
pub(crate) fn to_pyerr(err: CoreError) -> PyErr {
    let msg = err.to_string();
    kind_err(err.kind(), msg)
}

/// The Python exception of an [`ErrorKind`] with a message: how an
/// adapter crate raises its own typed errors (`dlpack_image::python`).
///
/// ```
/// use dlpack_core::ErrorKind;
/// pyo3::Python::attach(|py| {
///     let err = dlpack_py::kind_err(ErrorKind::Type, "3 channels, not 4".into());
///     assert!(err.is_instance_of::<pyo3::exceptions::PyTypeError>(py));
/// });
/// ```
pub fn kind_err(kind: ErrorKind, msg: String) -> PyErr {
    match kind {
        ErrorKind::Buffer => PyBufferError::new_err(msg),
        ErrorKind::Value => PyValueError::new_err(msg),
        ErrorKind::Type => PyTypeError::new_err(msg),
        ErrorKind::NotImplemented => PyNotImplementedError::new_err(msg),
    }
}

/// `BufferError(msg)`.
pub(crate) fn buffer_err(msg: impl Into<String>) -> PyErr {
    PyBufferError::new_err(msg.into())
}

/// `TypeError(msg)`.
pub(crate) fn type_err(msg: impl Into<String>) -> PyErr {
    PyTypeError::new_err(msg.into())
}

/// `ValueError(msg)`.
pub(crate) fn value_err(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// Extension to turn core results into Python results.
pub(crate) trait IntoPyResult<T> {
    /// Maps the error with [`to_pyerr`].
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, CoreError> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_pyerr)
    }
}

/// How a foreign value is named in a message: its `repr`, cut to 80
/// characters; the type's name when `repr` itself fails (its error is
/// dropped). Never raises.
pub(crate) fn show(v: &pyo3::Bound<'_, pyo3::PyAny>) -> String {
    use pyo3::types::PyAnyMethods;
    use pyo3::types::PyStringMethods;
    match v.repr() {
        Ok(r) => {
            let s = r.to_string_lossy();
            match s.char_indices().nth(80) {
                Some((cut, _)) => format!("{}...", &s[..cut]),
                None => s.into_owned(),
            }
        }
        Err(_) => format!("<{} object>", type_name(v)),
    }
}

/// The qualified name of an object's type, for messages.
pub(crate) fn type_name(obj: &pyo3::Bound<'_, pyo3::PyAny>) -> String {
    use pyo3::types::{PyAnyMethods, PyTypeMethods};
    obj.get_type()
        .fully_qualified_name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "<unknown>".to_owned())
}

/// A foreign int where an `i64` (or narrower, by `T`) is needed: the value,
/// or `TypeError` (not an int) / `ValueError` (out of range) naming `what`
/// and `rule`.
pub(crate) fn int_arg<T>(
    v: &pyo3::Bound<'_, pyo3::PyAny>,
    what: &str,
    rule: &str,
) -> pyo3::PyResult<T>
where
    for<'a, 'py> T: pyo3::FromPyObject<'a, 'py>,
{
    use pyo3::types::PyAnyMethods;
    v.extract::<T>().map_err(|_| {
        if v.is_instance_of::<pyo3::types::PyInt>() {
            value_err(format!("{what}={} is out of range: {rule}", show(v)))
        } else {
            type_err(format!(
                "{what} must be {rule}, got {} of type {}",
                show(v),
                type_name(v)
            ))
        }
    })
}

/// A failure of the device layer (stream ordering, device copies), typed
/// so that its [`ErrorKind`] reaches the Python exception: an invalid
/// device ordinal is a `ValueError`, a failing driver call a
/// `BufferError`, as the device crate says.
///
/// ```
/// use dlpack_core::{Error, ErrorKind};
/// use dlpack_py::DeviceError;
/// let e = DeviceError::from(Error::NotContiguous);
/// assert_eq!(e.kind(), ErrorKind::Buffer);
/// let err: pyo3::PyErr = e.into(); // a BufferError with the same message
/// # let _ = err;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DeviceError {
    /// From a device runtime (`dlpack-device`: CUDA, ROCm).
    Device(dlpack_device::Error),
    /// A rule of the standard (from `dlpack-core`).
    Core(CoreError),
    /// Nothing in this build can do `action` for memory of `device` (its
    /// device crate is not compiled in, or the tensor has no synchroniser).
    Unsupported {
        /// The tensor's device.
        device: dlpack_core::ffi::DLDevice,
        /// What was asked, e.g. `"copy data to the host"`.
        action: &'static str,
    },
    /// `action` failed for memory of `device` (the device layer's error,
    /// whose kind this keeps).
    Failed {
        /// The tensor's device.
        device: dlpack_core::ffi::DLDevice,
        /// What was asked, e.g. `"copy data to the host"`.
        action: &'static str,
        /// Why it failed.
        source: Box<DeviceError>,
    },
    /// Ordering streams for a stream value given by Python failed: the
    /// value, and the device layer's error (whose kind this keeps).
    Stream {
        /// Where the value came from, e.g. `"__dlpack__"`.
        what: &'static str,
        /// The stream value.
        stream: i64,
        /// The tensor's device.
        device: dlpack_core::ffi::DLDevice,
        /// Why it failed.
        source: Box<DeviceError>,
    },
}

impl DeviceError {
    /// The Python exception this error maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DeviceError::Device(e) => e.kind(),
            DeviceError::Core(e) => e.kind(),
            DeviceError::Unsupported { .. } => ErrorKind::Buffer,
            DeviceError::Stream { source, .. } | DeviceError::Failed { source, .. } => {
                source.kind()
            }
        }
    }
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceError::Device(e) => std::fmt::Display::fmt(e, f),
            DeviceError::Core(e) => std::fmt::Display::fmt(e, f),
            DeviceError::Unsupported { device, action } => write!(
                f,
                "cannot {action} for memory on {device:?}: this build has no device crate for it"
            ),
            DeviceError::Failed {
                device,
                action,
                source,
            } => write!(f, "cannot {action} for memory on {device:?}: {source}"),
            DeviceError::Stream {
                what,
                stream,
                device,
                source,
            } => write!(
                f,
                "{what}: stream={stream} cannot be ordered after the producer's work on \
                 {device:?} (a stream must be a live stream of the tensor's device): {source}"
            ),
        }
    }
}

impl std::error::Error for DeviceError {}

impl From<dlpack_device::Error> for DeviceError {
    fn from(e: dlpack_device::Error) -> Self {
        DeviceError::Device(e)
    }
}

impl From<CoreError> for DeviceError {
    fn from(e: CoreError) -> Self {
        DeviceError::Core(e)
    }
}

impl From<DeviceError> for PyErr {
    fn from(e: DeviceError) -> Self {
        kind_err(e.kind(), e.to_string())
    }
}

/// The error of this crate's public API: a failure that keeps its kind up
/// to the Python exception (`BufferError`, `ValueError`, `TypeError` or
/// `NotImplementedError`, as the DLPack standard names them), from the core,
/// a device crate, or Python itself. It converts into [`PyErr`], so `?`
/// works in a `#[pyfunction]` that returns `Result<T, dlpack_py::Error>`,
/// on core, device and Python errors alike.
///
/// ```
/// use dlpack_py::prelude::*;
///
/// /// The sum of a float64 tensor from any Python producer.
/// #[pyfunction]
/// fn total(t: PyTensor) -> Result<f64, dlpack_py::Error> {
///     // A core error keeps its kind: a wrong dtype is a TypeError.
///     Ok(t.view().as_slice::<f64>()?.iter().sum())
/// }
///
/// Python::attach(|py| -> PyResult<()> {
///     let f = wrap_pyfunction!(total, py)?;
///     let np = py.import("numpy")?;
///     let a = np.call_method1("arange", (4.0,))?;
///     assert_eq!(f.call1((a,))?.extract::<f64>()?, 6.0);
///     let ints = np.call_method1("arange", (4,))?;
///     let err = f.call1((ints,)).unwrap_err();
///     assert!(err.is_instance_of::<pyo3::exceptions::PyTypeError>(py));
///     Ok(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A value or rule the core refused.
    Core(CoreError),
    /// The device layer.
    Device(DeviceError),
    /// A Python exception (from Python code or pyo3).
    Python(PyErr),
}

impl Error {
    /// The Python exception kind of a core or device error (`None` for a
    /// Python exception, which is its own).
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Error::Core(e) => Some(e.kind()),
            Error::Device(e) => Some(e.kind()),
            Error::Python(_) => None,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Core(e) => std::fmt::Display::fmt(e, f),
            Error::Device(e) => std::fmt::Display::fmt(e, f),
            Error::Python(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Core(e) => Some(e),
            Error::Device(e) => Some(e),
            Error::Python(e) => Some(e),
        }
    }
}

impl From<CoreError> for Error {
    fn from(e: CoreError) -> Self {
        Error::Core(e)
    }
}

impl From<DeviceError> for Error {
    fn from(e: DeviceError) -> Self {
        Error::Device(e)
    }
}

impl From<PyErr> for Error {
    fn from(e: PyErr) -> Self {
        Error::Python(e)
    }
}

/// The exception of the error's kind, with its message; a Python
/// exception unchanged.
impl From<Error> for PyErr {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(e) => to_pyerr(e),
            Error::Device(e) => e.into(),
            Error::Python(e) => e,
        }
    }
}

/// Runs the body of a Python entry point (`#[pyfunction]`, `#[pymethods]`,
/// `#[pymodule]`): its result, or — should it ever panic, which is a bug —
/// a `SystemError` naming the bug (see [`panic_err`]) instead of pyo3's
/// `PanicException`, a `BaseException` that `except Exception` misses.
/// Every entry point of the crate goes through this (or [`c_entry`] /
/// [`c_status`] for hand-written C entry points); a test reads the sources
/// and fails on one that does not.
#[inline(always)]
pub(crate) fn guard<T>(f: impl FnOnce() -> pyo3::PyResult<T>) -> pyo3::PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(panic_err(payload)),
    }
}

/// The `SystemError` of a caught panic: "internal error in dlpack (please
/// report): <the panic's message>".
#[cold]
#[inline(never)]
pub(crate) fn panic_err(payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let msg = if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else {
        "a panic without a message"
    };
    pyo3::exceptions::PySystemError::new_err(format!(
        "internal error in dlpack (please report): {msg}"
    ))
}

/// The body of a hand-written C entry point that returns an object
/// (`METH_FASTCALL` functions and methods): runs `f`, returns its new
/// reference, or sets its error (a panic: [`panic_err`]) and returns NULL.
/// No panic unwinds into CPython.
///
/// CPython calls these with its thread state attached, but pyo3 does not
/// know it (its trampolines are not on the way), so a `Py<T>` that `f`
/// drops is queued for release at pyo3's next entry point instead of
/// released. Error paths drop some (a replaced `PyErr` holds an exception
/// whose traceback holds the caller's frames): on an error the queue is
/// emptied before returning ([`release_deferred`]). Success paths drop
/// `Bound`s only, released at once; attaching on every call would cost a
/// `PyGILState_Ensure`/`Release` pair per exchange.
#[inline(always)]
pub(crate) fn c_entry(
    py: pyo3::Python<'_>,
    f: impl FnOnce() -> pyo3::PyResult<*mut pyo3::ffi::PyObject>,
) -> *mut pyo3::ffi::PyObject {
    match guard(f) {
        Ok(p) => p,
        Err(e) => {
            e.restore(py);
            release_deferred();
            std::ptr::null_mut()
        }
    }
}

/// The body of a hand-written C entry point that returns a status (`0` or
/// `-1` with a Python error set): the exchange API's functions, buffer
/// slots. A panic becomes [`panic_err`]'s error; references dropped on an
/// error path are released before returning, as in [`c_entry`].
#[inline(always)]
pub(crate) fn c_status(
    py: pyo3::Python<'_>,
    f: impl FnOnce() -> pyo3::PyResult<()>,
) -> std::ffi::c_int {
    match guard(f) {
        Ok(()) => 0,
        Err(e) => {
            e.restore(py);
            release_deferred();
            -1
        }
    }
}

/// Releases the references pyo3 queued because it did not know the thread
/// was attached: attaching through pyo3 empties its queue (the thread is
/// attached already, so this only pairs `PyGILState_Ensure`/`Release`).
#[cold]
#[inline(never)]
fn release_deferred() {
    pyo3::Python::attach(|_| ());
}

#[cfg(test)]
mod tests {
    /// The crate's sources (every `.rs` file under `src`, in the layer
    /// folders too), by path relative to `src`.
    fn sources() -> Vec<(String, String)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
        let mut paths = Vec::new();
        walk(dir, &mut paths);
        let mut out: Vec<(String, String)> = paths
            .iter()
            .map(|p| {
                let name = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                (name, std::fs::read_to_string(p).unwrap())
            })
            .collect();
        out.sort();
        // The files that define entry points are all read (a layout change
        // that hid them from this test would make it pass vacuously).
        for f in [
            "classes/surface.rs",
            "classes/base.rs",
            "classes/exchange.rs",
            "classes/capsule.rs",
            "module/functions.rs",
            "module/mod.rs",
            "export/capsule.rs",
            "testing.rs",
            "testing/device.rs",
        ] {
            assert!(out.iter().any(|(n, _)| n == f), "{f} is not read");
        }
        out
    }

    /// The text of the body of the `fn` at `at` (after its opening brace).
    fn body_after(src: &str, at: usize) -> &str {
        let mut depth = 0i32;
        for (i, c) in src[at..].char_indices() {
            match c {
                '(' | '<' => depth += 1,
                ')' => depth -= 1,
                '>' if !src[at..at + i].ends_with('-') => depth -= 1,
                '{' if depth == 0 => return src[at + i + 1..].trim_start(),
                _ => {}
            }
        }
        ""
    }

    /// Architecture rule: every Python entry point of the crate catches
    /// panics (a panic is a `SystemError`, never `PanicException` or an
    /// abort): `#[pyfunction]`, `#[pymodule]` and every method of a
    /// `#[pymethods]` block start with `guard`, and every `extern "C"`
    /// function defined here with `c_entry` / `c_status` / `catch_unwind`,
    /// or says why it cannot panic (`// No panic: ...`).
    #[test]
    fn every_entry_point_catches_panics() {
        let mut missing = Vec::new();
        for (file, src) in sources() {
            let lines: Vec<&str> = src.lines().collect();
            let offsets: Vec<usize> = lines
                .iter()
                .scan(0, |o, l| {
                    let here = *o;
                    *o += l.len() + 1;
                    Some(here)
                })
                .collect();
            let mut in_methods: Option<String> = None;
            let mut pending = false;
            for (n, line) in lines.iter().enumerate() {
                let t = line.trim_start();
                let indent = &line[..line.len() - t.len()];
                if let Some(end) = &in_methods {
                    if *line == end.as_str() {
                        in_methods = None;
                    }
                }
                if t.starts_with("#[pyfunction]") || t.starts_with("#[pymodule]") {
                    pending = true;
                }
                if t.starts_with("#[pymethods]") {
                    in_methods = Some(format!("{indent}}}"));
                }
                let is_fn = t.starts_with("fn ")
                    || t.starts_with("pub fn ")
                    || t.starts_with("pub(crate) fn ");
                if is_fn && (pending || in_methods.is_some()) {
                    pending = false;
                    let body = body_after(&src, offsets[n]);
                    if !(body.starts_with("crate::error::guard(") || body.starts_with("guard(")) {
                        missing.push(format!("{file}:{}: {t}", n + 1));
                    }
                }
                let is_c =
                    t.contains("extern \"C\" fn ") && !t.contains('=') && !t.contains("Option<");
                if is_c {
                    let body = body_after(&src, offsets[n]);
                    let head: String = body.lines().take(4).collect::<Vec<_>>().join("\n");
                    if !["c_entry(", "c_status(", "catch_unwind(", "// No panic:"]
                        .iter()
                        .any(|k| head.contains(k))
                    {
                        missing.push(format!("{file}:{}: {t}", n + 1));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "entry points that do not catch panics:\n{}",
            missing.join("\n")
        );
    }
}
