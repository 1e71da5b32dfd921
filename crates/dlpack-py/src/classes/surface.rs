//! The protocol surface of both classes, written once: `__dlpack__` by
//! `METH_FASTCALL` ([`dlpack_fastcall`]), `__dlpack_device__`,
//! `__dlpack_c_exchange_api__`, the buffer export (whose slot is on the
//! base, [`crate::classes::base`]), `__array_interface__`,
//! `__cuda_array_interface__` and the read-only properties. A class provides
//! the [`Surface`] trait and invokes [`protocol_surface!`].

use std::ffi::{CStr, c_int, c_void};
use std::sync::Arc;

use dlpack_core::ffi::{DLDevice, DLDeviceType};
use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{ffi, intern};

use crate::classes::object::DLPackObject;
use crate::classes::tensor::Tensor;
use crate::cpython::methoddef::{FastCallKw, MethodDef};
use crate::cpython::pybuffer::{
    Py_buffer, PyBUF_ANY_CONTIGUOUS, PyBUF_C_CONTIGUOUS, PyBUF_F_CONTIGUOUS, PyBUF_FORMAT,
    PyBUF_ND, PyBUF_STRIDES, PyBUF_WRITABLE,
};
use crate::error::{buffer_err, type_err, type_name};
use crate::export::shared::SharedTensor;
use crate::values::args::{DlpackArgs, keyword_index};
use crate::values::interface::{dtype_format, dtype_typestr};

// ---------------------------------------------------------------------------
// The protocol surface, written once for both classes

/// What the shared protocol surface needs from a class.
pub(crate) trait Surface:
    pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync
{
    /// The class name in `repr`.
    const REPR_NAME: &'static str;

    /// The shared tensor (imported once for a forwarded producer).
    fn shared_tensor(&self, py: Python<'_>) -> PyResult<&Arc<SharedTensor>>;

    /// A tensor with the same description as the shared one, for the
    /// getters that do not reach the data (`shape`, `dtype`, `repr`, ...):
    /// getting it never synchronises with the producer's stream.
    fn meta_tensor(&self, py: Python<'_>) -> PyResult<&Arc<SharedTensor>> {
        self.shared_tensor(py)
    }

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

/// Host-buffer description of a shared tensor, computed once per object.
pub(crate) struct BufInfo {
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

/// Refuses a buffer export of memory the host cannot read.
fn host_only(device: DLDevice) -> PyResult<()> {
    if device.device_type.is_host_accessible() {
        Ok(())
    } else {
        Err(buffer_err(format!(
            "the buffer protocol needs host memory, but the data is on {device:?}"
        )))
    }
}

fn buf_info(shared: &SharedTensor) -> PyResult<BufInfo> {
    let view = shared.view();
    host_only(view.device())?;
    shared.host_access()?;
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

pub(crate) fn array_interface<'py>(
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
    if !cuda {
        shared.host_access()?;
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

/// Bytes of the elements (as NumPy counts them: broadcast elements too, so
/// a foreign tensor can exceed 64 bits).
pub(crate) fn nbytes(view: &dlpack_core::tensor::TensorView<'_>) -> u128 {
    let n = u128::from(view.num_elements());
    match view.storage() {
        dlpack_core::dtype::Storage::Bytes(b) => n * u128::from(b),
        dlpack_core::dtype::Storage::PackedBits(bits) => (n * u128::from(bits)).div_ceil(8),
    }
}

/// The `__dlpack__` method def of a class.
pub(crate) const fn dlpack_def(f: FastCallKw) -> MethodDef {
    MethodDef::fastcall(
        c"__dlpack__",
        f,
        c"__dlpack__($self, /, *, stream=None, max_version=None, dl_device=None, copy=None)\n--\n\nDLPack export: a fresh PyCapsule per call (\"dltensor_versioned\" when max_version's major is >= 1, else \"dltensor\").",
    )
}

/// `__dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None)`
/// by vectorcall (see [`crate::cpython::methoddef::method_descriptor`]).
///
/// # Safety
///
/// Called by CPython's method descriptor with an attached thread state:
/// `slf` is an instance of `T`, `args` holds `nargs` positional values
/// followed by one value per name in `kwnames` (a tuple, or NULL).
pub(crate) unsafe extern "C" fn dlpack_fastcall<T: Surface>(
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
            let kw = crate::cpython::vcall::keyword_names(py);
            // SAFETY: kwnames is a tuple of names (borrowed for the call).
            let names = unsafe { Borrowed::from_ptr(py, kwnames) };
            // SAFETY: CPython passes a tuple.
            let names = unsafe { names.cast_unchecked::<PyTuple>() };
            for (i, name) in names.iter_borrowed().enumerate() {
                let k = keyword_index(kw, &name)?;
                if vals[k].is_some() {
                    return Err(type_err(format!(
                        "__dlpack__() got multiple values for argument '{}'",
                        crate::cpython::vcall::KEYWORDS[k]
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
    let info = match this.buf_cell().get(py) {
        Some(info) => info,
        None => {
            // The device first, from `__dlpack_device__`: a forwarding object would otherwise
            // import its producer's device memory (a capsule on the legacy stream, which
            // orders the producer's work) only to refuse it. Consumers such as mpi4py ask for
            // a buffer before they ask for `__dlpack__(stream=-1)`.
            let (device_type, id): (i32, i32) = this.dlpack_device(py)?.extract()?;
            host_only(DLDevice::new(DLDeviceType(device_type), id))?;
            this.buf_cell()
                .get_or_try_init(py, || buf_info(this.shared_tensor(py)?))?
        }
    };
    // SAFETY: CPython passes a writable view; info lives in slf, which the
    // view references.
    unsafe { fill_buffer(info, slf.clone().into_any(), view, flags) }
}

/// `bf_getbuffer` of both classes; the slot is their base's
/// ([`crate::classes::base`]), which only they extend.
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
    if let Some(ext) = crate::classes::base::extension() {
        if ext.is_type(obj) {
            // SAFETY: by the caller's contract.
            return unsafe { (ext.getbuffer)(obj, view, flags) };
        }
    }
    Err(buffer_err(format!(
        "{} does not export a buffer",
        type_name(obj)
    )))
}

pub(crate) fn repr<T: Surface>(this: &T, py: Python<'_>) -> PyResult<String> {
    let s = this.meta_tensor(py)?;
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
        static $def: crate::cpython::methoddef::MethodDef =
            crate::classes::surface::dlpack_def(crate::classes::surface::dlpack_fastcall::<$ty>);

        #[pymethods]
        impl $ty {
            /// DLPack export (see the module docs of `dlpack_py::classes`).
            #[classattr]
            #[pyo3(name = "__dlpack__")]
            fn dlpack_method(py: Python<'_>) -> PyResult<Py<PyAny>> {
                crate::error::guard(|| {
                    crate::cpython::methoddef::method_descriptor::<$ty>(py, &$def)
                })
            }

            fn __dlpack_device__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                crate::error::guard(|| Surface::dlpack_device(self, py))
            }

            #[classattr]
            fn __dlpack_c_exchange_api__(py: Python<'_>) -> PyResult<Py<PyAny>> {
                crate::error::guard(|| crate::classes::exchange::exchange_api_capsule(py))
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
                    crate::classes::surface::array_interface(
                        py,
                        Surface::shared_tensor(self, py)?,
                        false,
                    )
                })
            }

            /// `__cuda_array_interface__` v3 with `stream` (CUDA memory only).
            #[getter]
            fn __cuda_array_interface__<'py>(
                &self,
                py: Python<'py>,
            ) -> PyResult<Bound<'py, PyDict>> {
                crate::error::guard(|| {
                    crate::classes::surface::array_interface(
                        py,
                        Surface::shared_tensor(self, py)?,
                        true,
                    )
                })
            }

            /// Extents.
            #[getter]
            fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
                crate::error::guard(|| {
                    PyTuple::new(py, Surface::meta_tensor(self, py)?.view().shape())
                })
            }

            /// Strides in elements.
            #[getter]
            fn strides<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
                crate::error::guard(|| {
                    PyTuple::new(py, Surface::meta_tensor(self, py)?.view().strides())
                })
            }

            /// `(code, bits, lanes)`.
            #[getter]
            fn dtype(&self, py: Python<'_>) -> PyResult<(u8, u8, u16)> {
                crate::error::guard(|| {
                    let d = Surface::meta_tensor(self, py)?.view().dtype();
                    Ok((d.code, d.bits, d.lanes))
                })
            }

            /// `(device_type, device_id)`.
            #[getter]
            fn device<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
                crate::error::guard(|| {
                    crate::values::device::device_tuple(
                        py,
                        Surface::meta_tensor(self, py)?.device(),
                    )
                })
            }

            /// Whether the data is read-only.
            #[getter]
            fn readonly(&self, py: Python<'_>) -> PyResult<bool> {
                crate::error::guard(|| Ok(Surface::meta_tensor(self, py)?.read_only()))
            }

            /// Bytes of the elements.
            #[getter]
            fn nbytes(&self, py: Python<'_>) -> PyResult<u128> {
                crate::error::guard(|| {
                    Ok(crate::classes::surface::nbytes(
                        &Surface::meta_tensor(self, py)?.view(),
                    ))
                })
            }

            /// Pickling: host memory as a `pickle.PickleBuffer` (protocol 5,
            /// out of band when the transport takes buffers) or `bytes`;
            /// see `crate::export::pickle`.
            fn __reduce_ex__<'py>(
                &self,
                py: Python<'py>,
                protocol: i64,
            ) -> PyResult<Bound<'py, PyTuple>> {
                crate::error::guard(|| {
                    // Device memory is refused from its description, before
                    // anything imports (and synchronises) it.
                    let meta = Surface::meta_tensor(self, py)?;
                    let shared = if meta.device().device_type.is_host_accessible() {
                        Surface::shared_tensor(self, py)?
                    } else {
                        meta
                    };
                    crate::export::pickle::reduce(py, shared, protocol, |s| {
                        let t = crate::classes::tensor::Tensor::from_shared(s);
                        Ok(Bound::new(py, t)?.into_any())
                    })
                })
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                crate::error::guard(|| crate::classes::surface::repr(self, py))
            }

            /// The Arrow PyCapsule interface: a host tensor as an Arrow
            /// array (1-D: primitive; N-d: `arrow.fixed_shape_tensor`),
            /// no copy. `requested_schema` is not honoured (the spec lets
            /// a producer ignore it).
            #[cfg(feature = "arrow")]
            #[pyo3(signature = (requested_schema = None))]
            fn __arrow_c_array__<'py>(
                &self,
                py: Python<'py>,
                requested_schema: Option<Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
                crate::error::guard(|| {
                    let _ = requested_schema;
                    crate::export::arrow::arrow_c_array(py, Surface::shared_tensor(self, py)?)
                })
            }
        }
    };
}

pub(crate) use protocol_surface;

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

pub(crate) use into_pyobject;
