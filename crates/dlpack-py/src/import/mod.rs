//! Import: any Python object becomes an owned, validated Rust tensor, by the
//! fastest honest path.
//!
//! | order | path | when |
//! |---|---|---|
//! | 1 | `numpy` | exactly `numpy.ndarray`: its fields are read directly, the owner holds the array |
//! | 2 | `exchange_api` | the type has a DLPack C exchange API table (cached per type) and no stream, `dl_device` or `copy` was asked for |
//! | 3 | `capsule` | a bare `"dltensor"`/`"dltensor_versioned"` capsule (consumed once) |
//! | 4 | `dlpack` | `__dlpack__(max_version=(1, 3), stream=...)`, with the legacy retry on a keyword `TypeError` |
//! | 5 | `buffer` | the buffer protocol (the `Py_buffer` is held for the tensor's life) |
//! | 6 | `array_interface` | `__array_interface__` v3 / v2 |
//! | 7 | `cuda_array_interface` | `__cuda_array_interface__` v3 / v2, its `stream` honoured through the CUDA runtime or recorded |
//! | 8 | `arrow` | feature `arrow`: `__arrow_c_array__`, then `__arrow_c_stream__` (one chunk), read-only, no copy; when the *type* has them, tried right after the buffer protocol (before the instance lookups of 6 and 7) |
//!
//! [`ExtractOptions::protocol`] forces one path. The borrowed variant
//! [`with_borrowed`] avoids the owning handle for the duration of a call
//! (NumPy fields, or the exchange API's `dltensor_from_py_object_no_sync`).

#[cfg(feature = "arrow")]
pub(crate) mod arrow;
pub(crate) mod buffer;
pub(crate) mod classify;
pub(crate) mod dlpack;
pub(crate) mod interface;
pub(crate) mod numpy;
pub(crate) mod pickle;
#[cfg(all(feature = "shm", unix))]
pub(crate) mod shm;
pub(crate) mod typecache;

use std::ffi::c_void;
use std::fmt;

use dlpack_core::ffi::{DLDevice, DLTensor};
use dlpack_core::managed::AnyManagedTensor;
use dlpack_core::tensor::{Flags, TensorView};
use pyo3::prelude::*;

use crate::error::{IntoPyResult, buffer_err, type_err, type_name, value_err};
use crate::export::capsule::consume_capsule;
use crate::import::classify::{Kind, classify};

/// How a tensor was imported.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ImportPath {
    /// The producer type's C exchange API table.
    ExchangeApi,
    /// `__dlpack__`.
    Dlpack,
    /// The buffer protocol.
    Buffer,
    /// `__array_interface__`.
    ArrayInterface,
    /// `__cuda_array_interface__`.
    CudaArrayInterface,
    /// A bare DLPack capsule.
    Capsule,
    /// A NumPy array's own fields.
    Numpy,
    /// The Arrow PyCapsule interface (`__arrow_c_array__` or
    /// `__arrow_c_stream__`; feature `arrow`).
    Arrow,
}

impl ImportPath {
    /// The path's name as in `dlpack._testing.import_info` (`"dlpack"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            ImportPath::ExchangeApi => "exchange_api",
            ImportPath::Dlpack => "dlpack",
            ImportPath::Buffer => "buffer",
            ImportPath::ArrayInterface => "array_interface",
            ImportPath::CudaArrayInterface => "cuda_array_interface",
            ImportPath::Capsule => "capsule",
            ImportPath::Numpy => "numpy",
            ImportPath::Arrow => "arrow",
        }
    }
}

/// A protocol to force instead of the automatic order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `__dlpack__` (or the exchange API when nothing else was asked).
    Dlpack,
    /// The buffer protocol.
    Buffer,
    /// `__array_interface__`.
    ArrayInterface,
    /// `__cuda_array_interface__`.
    CudaArrayInterface,
    /// A bare capsule.
    Capsule,
}

impl Protocol {
    /// Parses `"dlpack"`, `"buffer"`, `"array_interface"`,
    /// `"cuda_array_interface"` or `"capsule"`.
    pub fn parse(s: &str) -> PyResult<Protocol> {
        Ok(match s {
            "dlpack" => Protocol::Dlpack,
            "buffer" => Protocol::Buffer,
            "array_interface" => Protocol::ArrayInterface,
            "cuda_array_interface" => Protocol::CudaArrayInterface,
            "capsule" => Protocol::Capsule,
            other => {
                return Err(value_err(format!(
                    "protocol={other:?} is not one of \"dlpack\", \"buffer\", \"array_interface\", \
                     \"cuda_array_interface\", \"capsule\" (or None)"
                )));
            }
        })
    }
}

/// Options of [`extract`].
#[derive(Clone, Copy)]
pub struct ExtractOptions<'a> {
    /// The consumer's stream for CUDA/ROCm producers (`__dlpack__(stream=)`);
    /// passed only when the producer's device has streams.
    pub stream: Option<i64>,
    /// `max_version` to ask for; default `(1, 3)`.
    pub max_version: (u32, u32),
    /// `dl_device` to ask for.
    pub dl_device: Option<DLDevice>,
    /// `copy` to ask for.
    pub copy: Option<bool>,
    /// Force one protocol.
    pub protocol: Option<Protocol>,
    /// The CUDA runtime `__cuda_array_interface__` imports ask for the
    /// device of the pointer and order the consumer's stream with (`None`:
    /// this build's, if it has one; then the stream is waited on only for
    /// memory the driver knows, and otherwise left in
    /// [`PyTensor::cai_stream`] for the caller to honour).
    pub cuda: Option<&'a dyn dlpack_device::Runtime>,
}

impl Default for ExtractOptions<'_> {
    fn default() -> Self {
        ExtractOptions {
            stream: None,
            max_version: (1, 3),
            dl_device: None,
            copy: None,
            protocol: None,
            cuda: None,
        }
    }
}

impl fmt::Debug for ExtractOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtractOptions")
            .field("stream", &self.stream)
            .field("max_version", &self.max_version)
            .field("dl_device", &self.dl_device)
            .field("copy", &self.copy)
            .field("protocol", &self.protocol)
            .field("cuda", &self.cuda.is_some())
            .finish()
    }
}

impl ExtractOptions<'_> {
    pub(crate) fn is_plain(&self) -> bool {
        self.stream.is_none()
            && self.dl_device.is_none()
            && self.copy.is_none()
            && self.max_version == (1, 3)
    }
}

/// An imported tensor: owned, validated, released exactly once on drop
/// (from any thread).
#[derive(Debug)]
pub struct PyTensor {
    tensor: AnyManagedTensor,
    path: ImportPath,
    pub(crate) cai_stream: Option<i64>,
    pub(crate) work_stream: Option<*mut c_void>,
}

// SAFETY: work_stream is an opaque handle value, never dereferenced here.
unsafe impl Send for PyTensor {}
// SAFETY: as above.
unsafe impl Sync for PyTensor {}

impl PyTensor {
    /// The validated view.
    pub fn view(&self) -> TensorView<'_> {
        self.tensor.view()
    }
    /// The owned tensor.
    pub fn tensor(&self) -> &AnyManagedTensor {
        &self.tensor
    }
    /// Mutable access (for [`AnyManagedTensor::as_mut_slice`]).
    pub fn tensor_mut(&mut self) -> &mut AnyManagedTensor {
        &mut self.tensor
    }
    /// Takes the owned tensor.
    pub fn into_tensor(self) -> AnyManagedTensor {
        self.tensor
    }
    /// How it was imported.
    pub fn path(&self) -> ImportPath {
        self.path
    }
    /// The `stream` of a `__cuda_array_interface__` import that was not
    /// waited on through the CUDA runtime (the caller must order its work after it).
    pub fn cai_stream(&self) -> Option<i64> {
        self.cai_stream
    }
    /// The producer's `current_work_stream` for exchange-API imports of
    /// device tensors (no synchronisation was done: launch on this stream).
    pub fn work_stream(&self) -> Option<*mut c_void> {
        self.work_stream
    }
    /// Whether the data must not be written (legacy tensors count as
    /// read-only here: they cannot say otherwise).
    pub fn read_only(&self) -> bool {
        !self.tensor.flags().is_writable()
    }

    pub(crate) fn new(tensor: AnyManagedTensor, path: ImportPath) -> Self {
        PyTensor {
            tensor,
            path,
            cai_stream: None,
            work_stream: None,
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for PyTensor {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        extract(&obj, &ExtractOptions::default())
    }
}

/// Imports `obj` (see the module docs for the order of paths).
///
/// # Errors
///
/// `TypeError` naming the type when no path applies; the producer's
/// exceptions unchanged; `BufferError` for content DLPack cannot describe;
/// `ValueError` for a capsule consumed twice.
///
/// ```no_run
/// use dlpack_py::{extract, ExtractOptions};
/// # use pyo3::prelude::*;
/// # fn f(obj: &Bound<'_, PyAny>) -> PyResult<()> {
/// let t = extract(obj, &ExtractOptions::default())?;
/// println!("{} dims via {}", t.view().ndim(), t.path().name());
/// # Ok(()) }
/// ```
pub fn extract(obj: &Bound<'_, PyAny>, opts: &ExtractOptions<'_>) -> PyResult<PyTensor> {
    match classify(obj, opts.protocol)? {
        Some(kind) => extract_kind(obj, kind, opts),
        None => Err(cannot_import(obj)),
    }
}

/// The `TypeError` of an object that speaks no protocol.
#[cold]
fn cannot_import(obj: &Bound<'_, PyAny>) -> PyErr {
    type_err(format!(
        "cannot import an object of type {}: it has no __dlpack__, buffer protocol, \
         __array_interface__ or __cuda_array_interface__, and is not a DLPack capsule",
        type_name(obj)
    ))
}

/// Imports `obj`, which speaks `kind`.
#[inline(always)]
fn extract_kind(
    obj: &Bound<'_, PyAny>,
    kind: Kind<'_>,
    opts: &ExtractOptions<'_>,
) -> PyResult<PyTensor> {
    match kind {
        Kind::Numpy if opts.dl_device.is_none() && opts.copy != Some(true) => {
            // SAFETY: the type is exactly numpy.ndarray.
            let t = unsafe { numpy::numpy_owned(obj)? };
            Ok(PyTensor::new(t.into(), ImportPath::Numpy))
        }
        Kind::Dlpack {
            exchange: Some(table),
        } if opts.stream.is_none() && opts.dl_device.is_none() && opts.copy.is_none() => {
            dlpack::via_exchange(obj, table)
        }
        Kind::Numpy | Kind::Dlpack { .. } => Ok(PyTensor::new(
            dlpack::via_dlpack(obj, opts)?,
            ImportPath::Dlpack,
        )),
        Kind::Capsule => Ok(PyTensor::new(consume_capsule(obj)?, ImportPath::Capsule)),
        Kind::Buffer => Ok(PyTensor::new(
            buffer::via_buffer(obj)?.into(),
            ImportPath::Buffer,
        )),
        Kind::ArrayInterface(d) => interface::via_array_interface(obj, &d, false, opts, false),
        Kind::CudaArrayInterface(d) => interface::via_array_interface(obj, &d, true, opts, false),
        #[cfg(feature = "arrow")]
        Kind::Arrow { stream } => Ok(PyTensor::new(
            arrow::via_arrow(obj, stream)?.into(),
            ImportPath::Arrow,
        )),
    }
}

/// Runs `f` on a view of `obj` valid for the call, without taking an owning
/// handle when the object allows it: NumPy arrays (fields read directly) and
/// exchange-API producers with `dltensor_from_py_object_no_sync`; any other
/// object is imported with [`extract`] and released after `f`. The bare
/// `DLTensor` of the exchange API carries no flags, so its view's
/// [`Flags`] are [`Flags::LEGACY`] (writability unknown, not writable).
///
/// ```no_run
/// # use pyo3::prelude::*;
/// # fn f(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
/// dlpack_py::with_borrowed(obj, |view| view.ndim())
/// # }
/// ```
pub fn with_borrowed<R>(
    obj: &Bound<'_, PyAny>,
    f: impl FnOnce(TensorView<'_>) -> R,
) -> PyResult<R> {
    let kind = match classify(obj, None)? {
        Some(kind) => kind,
        None => return Err(cannot_import(obj)),
    };
    let table = match kind {
        Kind::Numpy => {
            // SAFETY: exactly numpy.ndarray; the view lives for the call.
            return unsafe { numpy::with_numpy_view(obj, f) };
        }
        Kind::Dlpack {
            exchange: Some(table),
        } => table.dltensor_from_py_object_no_sync,
        _ => None,
    };
    if let Some(get) = table {
        // SAFETY: an all-zero DLTensor is a valid value to fill.
        let mut t: DLTensor = unsafe { std::mem::zeroed() };
        // SAFETY: the table belongs to obj's type; the GIL is held.
        if unsafe { get(obj.as_ptr().cast(), &mut t) } != 0 {
            return Err(PyErr::take(obj.py()).unwrap_or_else(|| {
                buffer_err("dltensor_from_py_object_no_sync failed without an exception")
            }));
        }
        // A bare DLTensor carries no flags: like a legacy tensor, it cannot
        // say that the data may be written.
        // SAFETY: valid until control returns to the producer (after f).
        let view = unsafe { TensorView::from_raw(&t, Flags::LEGACY) }.py()?;
        return Ok(f(view));
    }
    let t = extract_kind(obj, kind, &ExtractOptions::default())?;
    Ok(f(t.view()))
}
