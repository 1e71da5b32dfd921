//! The Python classes: [`Tensor`] (a Rust-owned tensor exported to Python)
//! and [`DLPackObject`] (what `dlpack.asdlpack` returns), both speaking the
//! full protocol surface: `__dlpack__`, `__dlpack_device__`, the type
//! attribute `__dlpack_c_exchange_api__` (our static C exchange API table),
//! the buffer protocol and `__array_interface__` for host memory, and
//! `__cuda_array_interface__` for CUDA memory.
//!
//! A `DLPackObject` either shares a tensor it imported (NumPy array, buffer,
//! array interface, capsule), or *forwards* to an existing DLPack producer:
//! each `__dlpack__` call goes to the producer with the same arguments, and
//! the answer is converted between legacy and versioned when the producer
//! answers with the other kind than `max_version` asks for.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::Arc;

use dlpack_core::export::{Export, Memory, legacy_to_versioned, versioned_to_legacy};
use dlpack_core::ffi::{
    DLDevice, DLDeviceType, DLManagedTensorVersioned, DLPackExchangeAPI, DLPackExchangeAPIHeader,
    DLPackVersion, DLTensor,
};
use dlpack_core::managed::{AnyManagedTensor, ManagedTensorVersioned};
use dlpack_core::protocol::{
    Abi, DLPACK_EXCHANGE_API, DlpackRequest, negotiate_version, plan_dlpack,
};
use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyString, PyTuple};
use pyo3::{ffi, intern};

use crate::bufferbase::BufferBase;
use crate::capsule::{RawManaged, consume_capsule, new_capsule};
use crate::error::{IntoPyResult, buffer_err, type_err};
use crate::import::{ExtractOptions, device_of, via_dlpack};
use crate::interface::{dtype_format, dtype_typestr};
use crate::owner::Keep;
use crate::pybuffer::{
    Py_buffer, PyBUF_ANY_CONTIGUOUS, PyBUF_C_CONTIGUOUS, PyBUF_F_CONTIGUOUS, PyBUF_FORMAT,
    PyBUF_ND, PyBUF_STRIDES, PyBUF_WRITABLE,
};
use crate::shared::{ExportSync, SharedTensor, export, share};

/// `dlpack.DLDeviceType` members by value (set when the module is loaded).
pub(crate) static DEVICE_TYPE_ENUM: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static DEVICE_MEMBERS: PyOnceLock<Vec<Option<Py<PyAny>>>> = PyOnceLock::new();

/// `(DLDeviceType(t), id)`, with a plain int for unknown types or when the
/// enum is not loaded.
pub(crate) fn device_tuple<'py>(
    py: Python<'py>,
    device: DLDevice,
) -> PyResult<Bound<'py, PyTuple>> {
    let members = DEVICE_MEMBERS.get_or_try_init(py, || -> PyResult<_> {
        let Some(e) = DEVICE_TYPE_ENUM.get(py) else {
            return Ok(Vec::new());
        };
        let e = e.bind(py);
        Ok((0..=20)
            .map(|i| e.call1((i,)).ok().map(Bound::unbind))
            .collect())
    })?;
    let t = device.device_type.0;
    let ty = match usize::try_from(t)
        .ok()
        .and_then(|i| members.get(i))
        .and_then(Option::as_ref)
    {
        Some(m) => m.bind(py).clone(),
        None => t.into_pyobject(py)?.into_any(),
    };
    PyTuple::new(py, [ty, device.device_id.into_pyobject(py)?.into_any()])
}

/// Host-buffer description of a shared tensor, computed once per object.
struct BufInfo {
    buf: *mut c_void,
    len: isize,
    itemsize: isize,
    readonly: bool,
    format: &'static CStr,
    shape: Box<[isize]>,
    strides: Box<[isize]>,
    c_contiguous: bool,
    f_contiguous: bool,
}

// SAFETY: plain description of memory kept alive by the owning object.
unsafe impl Send for BufInfo {}
// SAFETY: immutable after construction.
unsafe impl Sync for BufInfo {}

static EMPTY_BYTE: u64 = 0;

fn buf_info(shared: &SharedTensor) -> PyResult<BufInfo> {
    let view = shared.view();
    let device = view.device();
    if !device.device_type.is_host_accessible() {
        return Err(buffer_err(format!(
            "the buffer protocol needs host memory, but the data is on {device:?}"
        )));
    }
    let dtype = view.dtype();
    let format = dtype_format(dtype)
        .ok_or_else(|| buffer_err(format!("dtype {dtype:?} has no buffer-protocol format")))?;
    let itemsize = isize::from(dtype.bits / 8);
    // A foreign tensor's extents and strides are valid for DLPack but may
    // not fit the buffer protocol's byte counts (e.g. 2**62 broadcast
    // complex elements): refused, not wrapped.
    let too_large = || {
        buffer_err(format!(
            "the tensor (shape {:?}, strides {:?}, {itemsize}-byte items) has a length or byte \
             stride that does not fit in Py_ssize_t, which the buffer protocol needs",
            view.shape(),
            view.strides().collect::<Vec<_>>()
        ))
    };
    let len = isize::try_from(view.num_elements())
        .ok()
        .and_then(|n| n.checked_mul(itemsize))
        .ok_or_else(too_large)?;
    let strides = view
        .strides()
        .map(|s| {
            isize::try_from(s)
                .ok()
                .and_then(|s| s.checked_mul(itemsize))
        })
        .collect::<Option<Box<[isize]>>>()
        .ok_or_else(too_large)?;
    let buf = if view.num_elements() == 0 {
        std::ptr::from_ref(&EMPTY_BYTE).cast_mut().cast()
    } else {
        view.data_ptr().cast()
    };
    Ok(BufInfo {
        buf,
        len,
        itemsize,
        readonly: shared.read_only(),
        format,
        shape: view.shape().iter().map(|&d| d as isize).collect(),
        strides,
        c_contiguous: view.is_c_contiguous(),
        f_contiguous: view.is_f_contiguous(),
    })
}

/// Fills a `Py_buffer` for `owner` from `info`, honouring the request flags.
///
/// # Safety
///
/// `view` is a writable `Py_buffer`; `info` lives as long as `owner`.
unsafe fn fill_buffer(
    info: &BufInfo,
    owner: Bound<'_, PyAny>,
    view: *mut Py_buffer,
    flags: c_int,
) -> PyResult<()> {
    if flags & PyBUF_WRITABLE != 0 && info.readonly {
        return Err(buffer_err(
            "the data is read-only; a writable buffer (PyBUF_WRITABLE) cannot be provided",
        ));
    }
    let want = |f: c_int| flags & f == f;
    if want(PyBUF_C_CONTIGUOUS) && !info.c_contiguous {
        return Err(buffer_err(
            "a C-contiguous buffer was requested but the data is not C-contiguous",
        ));
    }
    if want(PyBUF_F_CONTIGUOUS) && !info.f_contiguous {
        return Err(buffer_err(
            "an F-contiguous buffer was requested but the data is not F-contiguous",
        ));
    }
    if want(PyBUF_ANY_CONTIGUOUS) && !(info.c_contiguous || info.f_contiguous) {
        return Err(buffer_err(
            "a contiguous buffer was requested but the data is not contiguous",
        ));
    }
    if !want(PyBUF_STRIDES) && !info.c_contiguous {
        return Err(buffer_err(
            "the data is strided; the consumer must request strides (PyBUF_STRIDES)",
        ));
    }
    // SAFETY: view is writable by the caller's contract; pointers stored
    // here stay valid while `owner` (referenced by view.obj) lives.
    unsafe {
        (*view).buf = info.buf;
        (*view).len = info.len;
        (*view).itemsize = info.itemsize;
        (*view).readonly = c_int::from(info.readonly);
        (*view).ndim = info.shape.len() as c_int;
        (*view).format = if want(PyBUF_FORMAT) {
            info.format.as_ptr().cast_mut()
        } else {
            std::ptr::null_mut()
        };
        (*view).shape = if want(PyBUF_ND) {
            info.shape.as_ptr().cast_mut()
        } else {
            std::ptr::null_mut()
        };
        (*view).strides = if want(PyBUF_STRIDES) {
            info.strides.as_ptr().cast_mut()
        } else {
            std::ptr::null_mut()
        };
        (*view).suboffsets = std::ptr::null_mut();
        (*view).internal = std::ptr::null_mut();
        (*view).obj = owner.into_ptr();
    }
    Ok(())
}

fn array_interface<'py>(
    py: Python<'py>,
    shared: &SharedTensor,
    cuda: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let view = shared.view();
    let device = view.device();
    let ok = if cuda {
        matches!(
            device.device_type,
            DLDeviceType::kDLCUDA | DLDeviceType::kDLCUDAManaged
        )
    } else {
        device.device_type.is_host_accessible()
    };
    if !ok {
        let what = if cuda {
            "__cuda_array_interface__ (CUDA memory only)"
        } else {
            "__array_interface__ (host memory only)"
        };
        return Err(PyAttributeError::new_err(format!(
            "{what}: the data is on {device:?}"
        )));
    }
    let dtype = view.dtype();
    let typestr = dtype_typestr(dtype)
        .ok_or_else(|| buffer_err(format!("dtype {dtype:?} has no NumPy typestr")))?;
    let itemsize = i64::from(dtype.bits / 8);
    let d = PyDict::new(py);
    d.set_item(intern!(py, "shape"), PyTuple::new(py, view.shape())?)?;
    d.set_item(intern!(py, "typestr"), typestr)?;
    d.set_item(
        intern!(py, "data"),
        (view.data_ptr() as usize, shared.read_only()),
    )?;
    if view.is_c_contiguous() {
        d.set_item(intern!(py, "strides"), py.None())?;
    } else {
        // i128: a foreign stride times the item size may exceed 64 bits.
        d.set_item(
            intern!(py, "strides"),
            PyTuple::new(
                py,
                view.strides().map(|s| i128::from(s) * i128::from(itemsize)),
            )?,
        )?;
    }
    d.set_item(intern!(py, "version"), 3)?;
    if cuda {
        d.set_item(intern!(py, "stream"), shared.cai_stream())?;
    }
    Ok(d)
}

/// The arguments of a `__dlpack__` call: the values as Python passed them
/// (keyword-only; `None` when absent or `None`), which a forwarding object
/// passes on unchanged, with `max_version` and `copy` decoded; the core's
/// request is [`DlpackArgs::request`].
#[derive(Clone, Copy, Default)]
pub(crate) struct DlpackArgs<'a, 'py> {
    /// `stream`, `max_version`, `dl_device`, `copy` as passed (the order of
    /// [`crate::vcall::KEYWORDS`]).
    pub(crate) passed: crate::vcall::DlpackKwargs<'a, 'py>,
    /// `passed`'s `max_version`, decoded.
    pub(crate) max_version: Option<(i64, i64)>,
    /// `passed`'s `copy`, decoded.
    pub(crate) copy: Option<bool>,
}

impl<'a, 'py> DlpackArgs<'a, 'py> {
    /// Decodes `max_version` and `copy` (`TypeError` for values of the wrong
    /// type); `stream` and `dl_device` are decoded by [`DlpackArgs::request`].
    pub(crate) fn parse(passed: crate::vcall::DlpackKwargs<'a, 'py>) -> PyResult<Self> {
        Ok(DlpackArgs {
            passed,
            max_version: passed[1].map(max_version_of).transpose()?,
            copy: passed[3].map(copy_of).transpose()?,
        })
    }

    /// The arguments of a call to an object that exports only `abi`'s
    /// struct (see [`DLPackObject::exporting_only`]): without `max_version`
    /// for `Abi::Legacy`; unchanged for `Abi::Versioned` if `max_version`
    /// asks for it, else `BufferError`.
    fn only(&self, abi: Abi) -> PyResult<Self> {
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
    fn request(&self) -> PyResult<DlpackRequest> {
        let [stream, _, dl_device, _] = self.passed;
        let stream = match stream {
            None => None,
            Some(s) => Some(crate::error::int_arg::<i64>(
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
                crate::error::show(d),
                crate::capsule::type_name(d)
            ))
        })?;
    let ty: i32 = crate::error::int_arg(&t.get_item(0)?, "dl_device[0] (device_type)", rule)?;
    let id: i32 = crate::error::int_arg(&t.get_item(1)?, "dl_device[1] (device_id)", rule)?;
    Ok(DLDevice::new(DLDeviceType(ty), id))
}

/// Bytes of the elements (as NumPy counts them: broadcast elements too, so
/// a foreign tensor can exceed 64 bits).
fn nbytes(view: &dlpack_core::tensor::TensorView<'_>) -> u128 {
    let n = u128::from(view.num_elements());
    match view.storage() {
        dlpack_core::dtype::Storage::Bytes(b) => n * u128::from(b),
        dlpack_core::dtype::Storage::PackedBits(bits) => (n * u128::from(bits)).div_ceil(8),
    }
}

// ---------------------------------------------------------------------------
// Tensor

/// A Rust-owned tensor exported to Python (`dlpack.Tensor`).
///
/// ```no_run
/// use dlpack_core::export::Export;
/// use dlpack_py::object::Tensor;
/// use pyo3::prelude::*;
/// Python::attach(|py| -> PyResult<()> {
///     let t = Tensor::new(Export::new(vec![1.0f32, 2.0]).versioned().unwrap());
///     let obj = Bound::new(py, t)?;
///     let np = py.import("numpy")?;
///     let a = np.call_method1("from_dlpack", (obj,))?;
///     assert_eq!(a.len()?, 2);
///     Ok(())
/// }).unwrap();
/// ```
#[pyclass(frozen, extends = BufferBase, module = "dlpack", name = "Tensor")]
pub struct Tensor {
    shared: Arc<SharedTensor>,
    buf: PyOnceLock<BufInfo>,
    device: PyOnceLock<Py<PyTuple>>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("shared", &self.shared)
            .finish()
    }
}

impl Tensor {
    /// Wraps an owned tensor.
    pub fn new(tensor: impl Into<AnyManagedTensor>) -> Self {
        Self::from_shared(SharedTensor::new(tensor.into()))
    }

    /// Wraps an owned device tensor with a producer-side stream synchroniser.
    pub fn with_sync(tensor: impl Into<AnyManagedTensor>, sync: Arc<dyn ExportSync>) -> Self {
        Self::from_shared(SharedTensor::with_sync(tensor.into(), sync))
    }

    /// Wraps a shared tensor.
    pub fn from_shared(shared: Arc<SharedTensor>) -> Self {
        Tensor {
            shared,
            buf: PyOnceLock::new(),
            device: PyOnceLock::new(),
        }
    }

    /// Exports an `ndarray` array (or `ArcArray`) without copying.
    ///
    /// # Errors
    ///
    /// As [`dlpack_ndarray::IntoDlpack::into_dlpack_versioned`].
    #[cfg(feature = "ndarray")]
    pub fn from_ndarray(
        array: impl dlpack_ndarray::IntoDlpack,
    ) -> Result<Self, dlpack_core::Error> {
        Ok(Self::new(array.into_dlpack_versioned()?))
    }

    /// The shared tensor.
    pub fn shared(&self) -> &Arc<SharedTensor> {
        &self.shared
    }
}

// ---------------------------------------------------------------------------
// The protocol surface, written once for both classes

/// What the shared protocol surface needs from a class.
trait Surface: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync {
    /// The class name in `repr`.
    const REPR_NAME: &'static str;

    /// The shared tensor (imported once for a forwarded producer).
    fn shared_tensor(&self, py: Python<'_>) -> PyResult<&Arc<SharedTensor>>;

    /// The cached buffer-protocol description.
    fn buf_cell(&self) -> &PyOnceLock<BufInfo>;

    /// `__dlpack__` with decoded arguments.
    fn dlpack<'py>(
        &self,
        py: Python<'py>,
        args: &DlpackArgs<'_, 'py>,
    ) -> PyResult<Bound<'py, PyAny>>;

    /// `__dlpack_device__`.
    fn dlpack_device<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;

    /// The `source` property.
    fn source_object(&self, slf: &Bound<'_, Self>) -> Py<PyAny>;
}

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

    const fn dlpack(f: FastCallKw) -> Self {
        Self::fastcall(
            c"__dlpack__",
            f,
            c"__dlpack__($self, /, *, stream=None, max_version=None, dl_device=None, copy=None)\n--\n\nDLPack export: a fresh PyCapsule per call (\"dltensor_versioned\" when max_version's major is >= 1, else \"dltensor\").",
        )
    }
}

/// A method descriptor of `T` for `def`. `__dlpack__` is called on every
/// exchange, so it is a plain `METH_FASTCALL | METH_KEYWORDS` method that
/// decodes its few keywords itself (pointer comparison with interned names)
/// instead of going through pyo3's generic argument parsing.
fn method_descriptor<T: Surface>(py: Python<'_>, def: &'static MethodDef) -> PyResult<Py<PyAny>> {
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

/// Which `__dlpack__` keyword `name` is: the interned name (pointer
/// comparison, what callers pass in practice), else by value.
#[inline]
fn keyword_index(names: &[Py<PyString>; 4], name: &Bound<'_, PyAny>) -> PyResult<usize> {
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
    crate::vcall::KEYWORDS
        .iter()
        .position(|n| *n == s)
        .ok_or_else(|| {
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
            crate::error::int_arg(&t.get_item(0)?, "max_version[0] (major)", rule)?,
            crate::error::int_arg(&t.get_item(1)?, "max_version[1] (minor)", rule)?,
        )),
        _ => Err(type_err(format!(
            "argument 'max_version': expected {rule}, got {} of type {}",
            crate::error::show(v),
            crate::capsule::type_name(v)
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
            crate::error::show(v),
            crate::capsule::type_name(v)
        ))
    })
}

/// `__dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None)`
/// by vectorcall (see [`method_descriptor`]).
///
/// # Safety
///
/// Called by CPython's method descriptor with an attached thread state:
/// `slf` is an instance of `T`, `args` holds `nargs` positional values
/// followed by one value per name in `kwnames` (a tuple, or NULL).
unsafe extern "C" fn dlpack_fastcall<T: Surface>(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls methods with an attached thread state.
    let py = unsafe { Python::assume_attached() };
    crate::error::c_entry(py, || {
        // SAFETY: borrowed references valid for the call.
        let slf = unsafe { Borrowed::from_ptr(py, slf) };
        // SAFETY: the method descriptor checked that `slf` is an instance of
        // T's type (CPython's `method_check_args` / `descr_check`).
        let this = unsafe { slf.cast_unchecked::<T>() }.get();
        if nargs != 0 {
            return Err(type_err(format!(
                "__dlpack__() takes no positional arguments ({nargs} given)"
            )));
        }
        let mut vals: [Option<Borrowed<'_, '_, PyAny>>; 4] = [None; 4];
        if !kwnames.is_null() {
            let kw = crate::vcall::keyword_names(py);
            // SAFETY: kwnames is a tuple of names (borrowed for the call).
            let names = unsafe { Borrowed::from_ptr(py, kwnames) };
            // SAFETY: CPython passes a tuple.
            let names = unsafe { names.cast_unchecked::<PyTuple>() };
            for (i, name) in names.iter_borrowed().enumerate() {
                let k = keyword_index(kw, &name)?;
                if vals[k].is_some() {
                    return Err(type_err(format!(
                        "__dlpack__() got multiple values for argument '{}'",
                        crate::vcall::KEYWORDS[k]
                    )));
                }
                // SAFETY: one value per keyword name, after the positionals.
                let v = unsafe { Borrowed::from_ptr(py, *args.add(nargs as usize + i)) };
                if !v.is_none() {
                    vals[k] = Some(v);
                }
            }
        }
        let args = DlpackArgs::parse(vals.each_ref().map(|v| v.as_deref()))?;
        this.dlpack(py, &args).map(Bound::into_ptr)
    })
}

/// The buffer export of a [`Surface`] class.
///
/// # Safety
///
/// `view` is a writable `Py_buffer`.
unsafe fn getbuffer<T: Surface>(
    slf: &Bound<'_, T>,
    view: *mut Py_buffer,
    flags: c_int,
) -> PyResult<()> {
    let py = slf.py();
    let this = slf.get();
    let info = this
        .buf_cell()
        .get_or_try_init(py, || buf_info(this.shared_tensor(py)?))?;
    // SAFETY: CPython passes a writable view; info lives in slf, which the
    // view references.
    unsafe { fill_buffer(info, slf.clone().into_any(), view, flags) }
}

/// `bf_getbuffer` of both classes; the slot is their base's
/// ([`crate::bufferbase`]), which only they extend.
///
/// # Safety
///
/// `view` is a writable `Py_buffer`.
pub(crate) unsafe fn getbuffer_any(
    obj: &Bound<'_, PyAny>,
    view: *mut Py_buffer,
    flags: c_int,
) -> PyResult<()> {
    if let Ok(o) = obj.cast::<DLPackObject>() {
        // SAFETY: by the caller's contract.
        return unsafe { getbuffer(o, view, flags) };
    }
    if let Ok(t) = obj.cast::<Tensor>() {
        // SAFETY: by the caller's contract.
        return unsafe { getbuffer(t, view, flags) };
    }
    if let Ok(e) = obj.cast::<crate::testing::BufferExporter>() {
        // SAFETY: by the caller's contract.
        return unsafe { e.get().fill(e.clone().into_any(), view, flags) };
    }
    Err(buffer_err(format!(
        "{} does not export a buffer",
        crate::capsule::type_name(obj)
    )))
}

fn repr<T: Surface>(this: &T, py: Python<'_>) -> PyResult<String> {
    let s = this.shared_tensor(py)?;
    let v = s.view();
    Ok(format!(
        "<dlpack.{} shape={:?} dtype={:?} device={:?} readonly={}>",
        T::REPR_NAME,
        v.shape(),
        v.dtype(),
        v.device(),
        s.read_only()
    ))
}

/// The `#[pymethods]` of a [`Surface`] class: the whole protocol surface.
macro_rules! protocol_surface {
    ($ty:ty, $def:ident) => {
        static $def: MethodDef = MethodDef::dlpack(dlpack_fastcall::<$ty>);

        #[pymethods]
        impl $ty {
            /// DLPack export (see the module docs of `dlpack_py::object`).
            #[classattr]
            #[pyo3(name = "__dlpack__")]
            fn dlpack_method(py: Python<'_>) -> PyResult<Py<PyAny>> {
                crate::error::guard(|| method_descriptor::<$ty>(py, &$def))
            }

            fn __dlpack_device__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                crate::error::guard(|| Surface::dlpack_device(self, py))
            }

            #[classattr]
            fn __dlpack_c_exchange_api__(py: Python<'_>) -> PyResult<Py<PyAny>> {
                crate::error::guard(|| exchange_api_capsule(py))
            }

            /// The wrapped object (a `Tensor` is its own source).
            #[getter]
            fn source(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
                crate::error::guard(|| Ok(slf.get().source_object(slf)))
            }

            /// `__array_interface__` v3 (host memory only).
            #[getter]
            fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                crate::error::guard(|| {
                    array_interface(py, Surface::shared_tensor(self, py)?, false)
                })
            }

            /// `__cuda_array_interface__` v3 with `stream` (CUDA memory only).
            #[getter]
            fn __cuda_array_interface__<'py>(
                &self,
                py: Python<'py>,
            ) -> PyResult<Bound<'py, PyDict>> {
                crate::error::guard(|| array_interface(py, Surface::shared_tensor(self, py)?, true))
            }

            /// Extents.
            #[getter]
            fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
                crate::error::guard(|| {
                    PyTuple::new(py, Surface::shared_tensor(self, py)?.view().shape())
                })
            }

            /// Strides in elements.
            #[getter]
            fn strides<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
                crate::error::guard(|| {
                    PyTuple::new(py, Surface::shared_tensor(self, py)?.view().strides())
                })
            }

            /// `(code, bits, lanes)`.
            #[getter]
            fn dtype(&self, py: Python<'_>) -> PyResult<(u8, u8, u16)> {
                crate::error::guard(|| {
                    let d = Surface::shared_tensor(self, py)?.view().dtype();
                    Ok((d.code, d.bits, d.lanes))
                })
            }

            /// `(device_type, device_id)`.
            #[getter]
            fn device<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
                crate::error::guard(|| device_tuple(py, Surface::shared_tensor(self, py)?.device()))
            }

            /// Whether the data is read-only.
            #[getter]
            fn readonly(&self, py: Python<'_>) -> PyResult<bool> {
                crate::error::guard(|| Ok(Surface::shared_tensor(self, py)?.read_only()))
            }

            /// Bytes of the elements.
            #[getter]
            fn nbytes(&self, py: Python<'_>) -> PyResult<u128> {
                crate::error::guard(|| Ok(nbytes(&Surface::shared_tensor(self, py)?.view())))
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                crate::error::guard(|| repr(self, py))
            }
        }
    };
}

/// `IntoPyObject` of a class: pyo3 derives it only for classes without
/// `extends`, and these extend their buffer base.
macro_rules! into_pyobject {
    ($ty:ty) => {
        impl<'py> IntoPyObject<'py> for $ty {
            type Target = Self;
            type Output = Bound<'py, Self>;
            type Error = PyErr;

            fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, Self>> {
                Bound::new(py, self)
            }
        }
    };
}

into_pyobject!(Tensor);
into_pyobject!(DLPackObject);

// The buffer protocol is not here: pyo3 emits `bf_getbuffer` under `abi3`
// only from Python 3.11, so the slot is on the classes' base type
// (`crate::bufferbase`), which calls `getbuffer_any`.
protocol_surface!(Tensor, TENSOR_DLPACK);
protocol_surface!(DLPackObject, DLPACK_OBJECT_DLPACK);

impl Surface for Tensor {
    const REPR_NAME: &'static str = "Tensor";

    fn shared_tensor(&self, _py: Python<'_>) -> PyResult<&Arc<SharedTensor>> {
        Ok(&self.shared)
    }

    fn buf_cell(&self) -> &PyOnceLock<BufInfo> {
        &self.buf
    }

    fn dlpack<'py>(
        &self,
        py: Python<'py>,
        args: &DlpackArgs<'_, 'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dlpack_call(py, args)
    }

    fn dlpack_device<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = cached_device(py, &self.device, self.shared.device())?;
        Ok(t.bind(py).clone().into_any())
    }

    fn source_object(&self, slf: &Bound<'_, Self>) -> Py<PyAny> {
        slf.clone().into_any().unbind()
    }
}

impl Surface for DLPackObject {
    const REPR_NAME: &'static str = "DLPackObject";

    fn shared_tensor(&self, py: Python<'_>) -> PyResult<&Arc<SharedTensor>> {
        DLPackObject::shared_tensor(self, py)
    }

    fn buf_cell(&self) -> &PyOnceLock<BufInfo> {
        &self.buf
    }

    fn dlpack<'py>(
        &self,
        py: Python<'py>,
        args: &DlpackArgs<'_, 'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        DLPackObject::dlpack(self, py, args)
    }

    fn dlpack_device<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        DLPackObject::dlpack_device(self, py)
    }

    fn source_object(&self, slf: &Bound<'_, Self>) -> Py<PyAny> {
        let _ = slf;
        self.source.clone_ref(slf.py())
    }
}

impl Tensor {
    /// `__dlpack__` with Python arguments.
    pub(crate) fn dlpack_call<'py>(
        &self,
        py: Python<'py>,
        args: &DlpackArgs<'_, 'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = args.request()?;
        new_capsule(py, export(&self.shared, &req)?)
    }
}

// ---------------------------------------------------------------------------
// DLPackObject

enum Inner {
    Shared(Arc<SharedTensor>),
    /// Exactly a `numpy.ndarray` (the source): `__dlpack__` shares the
    /// array's fields as they are at each call, like NumPy's own, without
    /// calling it; the other views import the array once.
    Numpy(PyOnceLock<Arc<SharedTensor>>),
    Forward {
        device: PyOnceLock<(DLDevice, Py<PyTuple>)>,
        shared: PyOnceLock<Arc<SharedTensor>>,
    },
}

/// The result of `dlpack.asdlpack(obj)`: a DLPack producer over `obj`.
#[pyclass(frozen, extends = BufferBase, freelist = 16, module = "dlpack", name = "DLPackObject")]
pub struct DLPackObject {
    source: Py<PyAny>,
    inner: Inner,
    buf: PyOnceLock<BufInfo>,
    device: PyOnceLock<Py<PyTuple>>,
    /// The one ABI `__dlpack__` answers with (`asdlpack(obj, impl_cls=...)`),
    /// or `None` to follow `max_version`.
    only: Option<Abi>,
}

impl std::fmt::Debug for DLPackObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DLPackObject")
            .field("forward", &matches!(self.inner, Inner::Forward { .. }))
            .finish()
    }
}

impl DLPackObject {
    /// An object sharing an imported tensor; `source` is what it came from.
    pub fn shared(source: Py<PyAny>, shared: Arc<SharedTensor>) -> Self {
        Self::with_inner(source, Inner::Shared(shared))
    }

    /// An object over a NumPy array (exactly `numpy.ndarray`, whose dtype
    /// and byte order DLPack can describe, checked by the caller).
    pub(crate) fn numpy(array: Py<PyAny>) -> Self {
        Self::with_inner(array, Inner::Numpy(PyOnceLock::new()))
    }

    /// An object forwarding every `__dlpack__` call to `producer`.
    pub fn forward(producer: Py<PyAny>) -> Self {
        let inner = Inner::Forward {
            device: PyOnceLock::new(),
            shared: PyOnceLock::new(),
        };
        Self::with_inner(producer, inner)
    }

    fn with_inner(source: Py<PyAny>, inner: Inner) -> Self {
        DLPackObject {
            source,
            inner,
            buf: PyOnceLock::new(),
            device: PyOnceLock::new(),
            only: None,
        }
    }

    /// The same object answering `__dlpack__` only with `only`'s ABI
    /// (pydlpack's `impl_cls`), or by `max_version` for `None`: with
    /// `Abi::Legacy` every call gets a `"dltensor"` capsule (as from a
    /// producer older than DLPack 1.0; consumers read the capsule's name),
    /// with `Abi::Versioned` a call that asks for the legacy ABI
    /// (`max_version` absent or older than 1.0) is refused with
    /// `BufferError`, as the spec lets a producer without a legacy path do.
    /// The C exchange API (DLPack 1.3, versioned by definition) is the same
    /// for both.
    pub(crate) fn exporting_only(mut self, only: Option<Abi>) -> Self {
        self.only = only;
        self
    }

    /// The ABI set by [`DLPackObject::exporting_only`].
    pub(crate) fn only(&self) -> Option<Abi> {
        self.only
    }

    /// The shared tensor; a forwarded producer is imported once (with the
    /// legacy default stream for CUDA, recorded as the CAI `stream`).
    pub(crate) fn shared_tensor(&self, py: Python<'_>) -> PyResult<&Arc<SharedTensor>> {
        match &self.inner {
            Inner::Shared(s) => Ok(s),
            Inner::Numpy(shared) => shared.get_or_try_init(py, || {
                // SAFETY: Inner::Numpy holds exactly a numpy.ndarray.
                let t = unsafe { crate::numpy::numpy_owned(self.source.bind(py))? };
                Ok(SharedTensor::new(t.into()))
            }),
            Inner::Forward { shared, .. } => shared.get_or_try_init(py, || {
                let src = self.source.bind(py);
                // Without __dlpack_device__, the producer orders its work as
                // for a call without a stream.
                let kind = producer_device(src)?.map(|d| d.device_type.stream_kind());
                let (stream, cai) = match kind.unwrap_or(dlpack_core::device::StreamKind::None) {
                    dlpack_core::device::StreamKind::Cuda => (Some(1), Some(1)),
                    dlpack_core::device::StreamKind::Rocm => (Some(0), None),
                    dlpack_core::device::StreamKind::None => (None, None),
                };
                let opts = ExtractOptions {
                    stream,
                    ..ExtractOptions::default()
                };
                let t = via_dlpack(src, &opts)?;
                Ok(SharedTensor::with_cai_stream(t, cai))
            }),
        }
    }

    fn dlpack<'py>(
        &self,
        py: Python<'py>,
        args: &DlpackArgs<'_, 'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let restricted;
        let args = match self.only {
            None => args,
            Some(abi) => {
                restricted = args.only(abi)?;
                &restricted
            }
        };
        match &self.inner {
            Inner::Shared(s) => {
                let req = args.request()?;
                new_capsule(py, export(s, &req)?)
            }
            Inner::Numpy(_) => {
                let req = args.request()?;
                // SAFETY: Inner::Numpy holds exactly a numpy.ndarray.
                match unsafe { crate::numpy::numpy_dlpack(self.source.bind(py), &req)? } {
                    Some(raw) => new_capsule(py, raw),
                    None => new_capsule(py, export(self.shared_tensor(py)?, &req)?),
                }
            }
            Inner::Forward { device, .. } => {
                // Validate against the producer's device first (stream
                // values, dl_device, copy, max_version), so that the errors
                // are the spec's whatever the producer would say.
                let (device, _) = self.forward_device(py, device)?;
                let req = args.request()?;
                plan_dlpack(device, false, &req).py()?;
                forward_dlpack(self.source.bind(py), args)
            }
        }
    }

    fn dlpack_device<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = match &self.inner {
            Inner::Shared(s) => cached_device(py, &self.device, s.device())?,
            Inner::Numpy(_) => cached_device(py, &self.device, DLDevice::cpu())?,
            Inner::Forward { device, .. } => self.forward_device(py, device)?.1,
        };
        Ok(t.bind(py).clone().into_any())
    }

    /// The forwarded producer's device (asked once, into `cell`; a `None`
    /// device id reads as 0), and its `(DLDeviceType, id)` tuple.
    fn forward_device<'a>(
        &self,
        py: Python<'_>,
        cell: &'a PyOnceLock<(DLDevice, Py<PyTuple>)>,
    ) -> PyResult<(DLDevice, &'a Py<PyTuple>)> {
        let (d, t) = cell.get_or_try_init(py, || -> PyResult<_> {
            let d = match producer_device(self.source.bind(py))? {
                Some(d) => d,
                None => self.shared_tensor(py)?.device(),
            };
            Ok((d, device_tuple(py, d)?.unbind()))
        })?;
        Ok((*d, t))
    }
}

/// `producer.__dlpack_device__()`, or `None` for a producer without one
/// (older than the standard's Python protocol, as pydlpack's suite wraps
/// TensorFlow's `to_dlpack`): its device is then read from the tensor it
/// exports.
fn producer_device(producer: &Bound<'_, PyAny>) -> PyResult<Option<DLDevice>> {
    match device_of(producer) {
        Ok(d) => Ok(Some(d)),
        Err(e)
            if e.is_instance_of::<PyAttributeError>(producer.py())
                && !producer.hasattr(intern!(producer.py(), "__dlpack_device__"))? =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The `(DLDeviceType, id)` tuple of `device`, made once into `cell`.
fn cached_device<'a>(
    py: Python<'_>,
    cell: &'a PyOnceLock<Py<PyTuple>>,
    device: DLDevice,
) -> PyResult<&'a Py<PyTuple>> {
    cell.get_or_try_init(py, || device_tuple(py, device).map(Bound::unbind))
}

/// Forwards a `__dlpack__` call to `producer` with the same arguments, and
/// converts the answer when its ABI is not the one `max_version` asks for.
fn forward_dlpack<'py>(
    producer: &Bound<'py, PyAny>,
    args: &DlpackArgs<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = producer.py();
    let want = negotiate_version(args.max_version).py()?;
    let cap = crate::vcall::dlpack_call(producer, args.passed)?;
    if !crate::import::is_capsule(&cap) {
        return Err(type_err(format!(
            "the producer's __dlpack__ returned {}, not a PyCapsule",
            crate::capsule::type_name(&cap)
        )));
    }
    // SAFETY: cap is a capsule; GetName returns its name pointer (or NULL).
    let got = unsafe { ffi::PyCapsule_GetName(cap.as_ptr()) };
    let got = if got.is_null() {
        None
    } else {
        // SAFETY: non-NULL capsule names are C strings.
        Abi::from_capsule_name(unsafe { CStr::from_ptr(got) })
    };
    if got == Some(want) {
        return Ok(cap);
    }
    let tensor = consume_capsule(&cap)?;
    let raw: RawManaged = match (tensor, want) {
        (AnyManagedTensor::Legacy(t), Abi::Versioned) => legacy_to_versioned(t, 0).py()?.into(),
        (AnyManagedTensor::Versioned(t), Abi::Legacy) => versioned_to_legacy(t).py()?.into(),
        (t, _) => t.into(),
    };
    new_capsule(py, raw)
}

/// The `Arc<SharedTensor>` behind one of our objects.
pub(crate) fn shared_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<SharedTensor>> {
    if let Ok(t) = obj.cast::<Tensor>() {
        return Ok(Arc::clone(&t.get().shared));
    }
    if let Ok(o) = obj.cast::<DLPackObject>() {
        return o.get().shared_tensor(obj.py()).map(Arc::clone);
    }
    Err(type_err(format!(
        "expected a dlpack.Tensor or dlpack.DLPackObject, got {}",
        crate::capsule::type_name(obj)
    )))
}

// ---------------------------------------------------------------------------
// The C exchange API table of our types (producer side)

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

fn exchange_api_capsule(py: Python<'_>) -> PyResult<Py<PyAny>> {
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
                unsafe { crate::capsule::release_raw(other) };
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
