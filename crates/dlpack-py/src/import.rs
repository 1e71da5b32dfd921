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
//!
//! [`ExtractOptions::protocol`] forces one path. The borrowed variant
//! [`with_borrowed`] avoids the owning handle for the duration of a call
//! (NumPy fields, or the exchange API's `dltensor_from_py_object_no_sync`).

use std::ffi::{CStr, c_void};
use std::fmt;

use dlpack_core::Error;
use dlpack_core::export::{Export, Memory};
use dlpack_core::ffi::{DLDataType, DLDevice, DLDeviceType, DLTensor};
use dlpack_core::layout::analyze;
use dlpack_core::managed::{AnyManagedTensor, ManagedTensorVersioned};
use dlpack_core::protocol::Abi;
use dlpack_core::tensor::{Flags, TensorView};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{ffi, intern};

use crate::capsule::{consume_capsule, take_raw, type_name};
use crate::error::{IntoPyResult, buffer_err, int_arg, show, type_err, value_err};
use crate::interface::{format_dtype, typestr_dtype};
use crate::owner::{HeldBuffer, Keep, PyObjectRef};
use crate::typecache::type_info;

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
    fn is_plain(&self) -> bool {
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
    cai_stream: Option<i64>,
    work_stream: Option<*mut c_void>,
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

    fn new(tensor: AnyManagedTensor, path: ImportPath) -> Self {
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

/// Builds an owning tensor over host-addressable memory whose first element
/// is at `first`, kept alive by `keep`.
pub(crate) fn export_host<K: Send + 'static>(
    keep: K,
    first: *mut u8,
    device: DLDevice,
    dtype: DLDataType,
    shape: &[i64],
    strides: Option<&[i64]>,
    read_only: bool,
) -> Result<ManagedTensorVersioned, Error> {
    host_export(keep, first, device, dtype, shape, strides, read_only)?.versioned()
}

/// The export of host-addressable memory whose first element is at `first`,
/// kept alive by `keep`, laid out and checked, to build as either ABI.
#[inline(always)]
pub(crate) fn host_export<'a, K: Send + 'static>(
    keep: K,
    first: *mut u8,
    device: DLDevice,
    dtype: DLDataType,
    shape: &'a [i64],
    strides: Option<&'a [i64]>,
    read_only: bool,
) -> Result<Export<'a, Keep<K>>, Error> {
    let storage = dtype.storage(false)?;
    let layout = analyze(shape, strides, storage)?;
    let (ptr, len, offset) = if layout.elements == 0 {
        (std::ptr::null_mut(), 0, 0)
    } else {
        (
            first.wrapping_offset(layout.start as isize),
            layout.span_bytes() as usize,
            layout.start.unsigned_abs(),
        )
    };
    let memory = Memory {
        ptr: ptr.cast(),
        len,
        device,
        dtype: Some(dtype),
        read_only,
    };
    // SAFETY: callers pass memory that `keep` keeps alive and in place.
    let owner = unsafe { Keep::new(keep, memory) };
    let ex = Export::new(owner)
        .dtype(dtype)
        .shape(shape)
        .byte_offset(offset)
        .read_only(read_only);
    // SAFETY: `layout` is analyze(shape, strides, storage of dtype,
    // unpadded), exactly what the export is built with.
    let ex = unsafe { ex.with_layout(layout) };
    Ok(match strides {
        Some(s) => ex.strides(s),
        None => ex,
    })
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
/// use dlpack_py::import::{extract, ExtractOptions};
/// # use pyo3::prelude::*;
/// # fn f(obj: &Bound<'_, PyAny>) -> PyResult<()> {
/// let t = extract(obj, &ExtractOptions::default())?;
/// println!("{} dims via {}", t.view().ndim(), t.path().name());
/// # Ok(()) }
/// ```
pub fn extract(obj: &Bound<'_, PyAny>, opts: &ExtractOptions<'_>) -> PyResult<PyTensor> {
    if let Some(p) = opts.protocol {
        return extract_forced(obj, p, opts);
    }
    let info = type_info(obj);
    if info.numpy && opts.dl_device.is_none() && opts.copy != Some(true) {
        // SAFETY: the type is exactly numpy.ndarray.
        let t = unsafe { crate::numpy::numpy_owned(obj)? };
        return Ok(PyTensor::new(t.into(), ImportPath::Numpy));
    }
    if let Some(table) = info.exchange {
        if opts.stream.is_none() && opts.dl_device.is_none() && opts.copy.is_none() {
            return via_exchange(obj, table);
        }
    }
    if is_capsule(obj) {
        return Ok(PyTensor::new(consume_capsule(obj)?, ImportPath::Capsule));
    }
    if info.dlpack {
        return Ok(PyTensor::new(via_dlpack(obj, opts)?, ImportPath::Dlpack));
    }
    // SAFETY: obj is live.
    if unsafe { crate::pybuffer::PyObject_CheckBuffer(obj.as_ptr()) } != 0 {
        return Ok(PyTensor::new(via_buffer(obj)?.into(), ImportPath::Buffer));
    }
    let py = obj.py();
    if let Ok(d) = obj.getattr(intern!(py, "__array_interface__")) {
        return via_array_interface(obj, &d, false, opts, false);
    }
    if let Ok(d) = obj.getattr(intern!(py, "__cuda_array_interface__")) {
        return via_array_interface(obj, &d, true, opts, false);
    }
    if obj.hasattr(intern!(py, "__dlpack__"))? {
        return Ok(PyTensor::new(via_dlpack(obj, opts)?, ImportPath::Dlpack));
    }
    Err(type_err(format!(
        "cannot import an object of type {}: it has no __dlpack__, buffer protocol, \
         __array_interface__ or __cuda_array_interface__, and is not a DLPack capsule",
        type_name(obj)
    )))
}

fn extract_forced(
    obj: &Bound<'_, PyAny>,
    p: Protocol,
    opts: &ExtractOptions<'_>,
) -> PyResult<PyTensor> {
    let py = obj.py();
    match p {
        Protocol::Dlpack => Ok(PyTensor::new(via_dlpack(obj, opts)?, ImportPath::Dlpack)),
        Protocol::Buffer => Ok(PyTensor::new(via_buffer(obj)?.into(), ImportPath::Buffer)),
        Protocol::ArrayInterface => {
            let d = obj
                .getattr(intern!(py, "__array_interface__"))
                .map_err(|_| {
                    type_err(format!(
                        "protocol=\"array_interface\": {} has no __array_interface__",
                        type_name(obj)
                    ))
                })?;
            via_array_interface(obj, &d, false, opts, false)
        }
        Protocol::CudaArrayInterface => {
            let d = obj
                .getattr(intern!(py, "__cuda_array_interface__"))
                .map_err(|_| {
                    type_err(format!(
                        "protocol=\"cuda_array_interface\": {} has no __cuda_array_interface__",
                        type_name(obj)
                    ))
                })?;
            via_array_interface(obj, &d, true, opts, false)
        }
        Protocol::Capsule => Ok(PyTensor::new(consume_capsule(obj)?, ImportPath::Capsule)),
    }
}

pub(crate) fn is_capsule(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: obj is live.
    unsafe { ffi::PyCapsule_CheckExact(obj.as_ptr()) != 0 }
}

fn via_exchange(
    obj: &Bound<'_, PyAny>,
    table: &'static dlpack_core::ffi::DLPackExchangeAPI,
) -> PyResult<PyTensor> {
    let Some(f) = table.managed_tensor_from_py_object_no_sync else {
        return Err(type_err(
            "the exchange API table has no managed_tensor_from_py_object_no_sync",
        ));
    };
    let mut out = std::ptr::null_mut();
    // SAFETY: the table belongs to obj's type; the GIL is held.
    let rc = unsafe { f(obj.as_ptr().cast(), &mut out) };
    if rc != 0 || out.is_null() {
        return Err(PyErr::take(obj.py()).unwrap_or_else(|| {
            buffer_err(
                "the producer's managed_tensor_from_py_object_no_sync failed without an exception",
            )
        }));
    }
    // SAFETY: we own the returned versioned tensor.
    let tensor = unsafe { take_raw(Abi::Versioned, out.cast())? };
    let mut t = PyTensor::new(tensor, ImportPath::ExchangeApi);
    let device = t.view().device();
    if device.device_type.stream_kind() != dlpack_core::device::StreamKind::None {
        if let Some(cws) = table.current_work_stream {
            let mut s = std::ptr::null_mut();
            // SAFETY: plain C call with an out pointer.
            if unsafe { cws(device.device_type, device.device_id, &mut s) } == 0 {
                t.work_stream = Some(s);
            } else {
                PyErr::take(obj.py());
            }
        }
    }
    Ok(t)
}

/// Calls `obj.__dlpack__(...)` as a consumer and takes the capsule.
#[inline]
pub(crate) fn via_dlpack(
    obj: &Bound<'_, PyAny>,
    opts: &ExtractOptions<'_>,
) -> PyResult<AnyManagedTensor> {
    if !opts.is_plain() {
        return via_dlpack_kwargs(obj, opts);
    }
    // No stream: no need to ask for the device first (a CUDA producer given
    // no stream orders on the legacy default stream).
    consume_capsule(&crate::vcall::dlpack_max_version_1_3(obj)?)
}

/// `via_dlpack` with a stream, `dl_device`, `copy` or another `max_version`.
#[inline(never)]
fn via_dlpack_kwargs(
    obj: &Bound<'_, PyAny>,
    opts: &ExtractOptions<'_>,
) -> PyResult<AnyManagedTensor> {
    let py = obj.py();
    let stream = consumer_stream(obj, opts.stream)?
        .map(|s| s.into_pyobject(py))
        .transpose()?;
    let max_version = opts.max_version.into_pyobject(py)?;
    let dl_device = opts
        .dl_device
        .map(|d| (d.device_type.0, d.device_id).into_pyobject(py))
        .transpose()?;
    let copy = opts.copy.map(|c| pyo3::types::PyBool::new(py, c));
    let kwargs = [
        stream.as_deref(),
        Some(max_version.as_any()),
        dl_device.as_ref().map(|d| d.as_any()),
        copy.as_deref().map(|c| c.as_any()),
    ];
    consume_capsule(&crate::vcall::dlpack_call(obj, kwargs)?)
}

/// The stream to pass: the consumer's, only for devices with streams.
fn consumer_stream(obj: &Bound<'_, PyAny>, stream: Option<i64>) -> PyResult<Option<i64>> {
    let Some(s) = stream else { return Ok(None) };
    let dev = device_of(obj)?;
    Ok(match dev.device_type.stream_kind() {
        dlpack_core::device::StreamKind::None => None,
        _ => Some(s),
    })
}

/// `obj.__dlpack_device__()` as a device (a device id of `None`, as some
/// producers answer for the CPU, reads as 0).
pub(crate) fn device_of(obj: &Bound<'_, PyAny>) -> PyResult<DLDevice> {
    let py = obj.py();
    let got = obj.call_method0(intern!(py, "__dlpack_device__"))?;
    let (t, id): (i32, Option<i32>) = got.extract().map_err(|_| {
        type_err(format!(
            "{}.__dlpack_device__() must return a (device_type, device_id) tuple of ints \
             that fit in int32, got {}",
            type_name(obj),
            show(&got)
        ))
    })?;
    Ok(DLDevice::new(DLDeviceType(t), id.unwrap_or(0)))
}

/// Imports through the buffer protocol; the view is held for the tensor's
/// life.
pub(crate) fn via_buffer(obj: &Bound<'_, PyAny>) -> PyResult<ManagedTensorVersioned> {
    let held = HeldBuffer::get(obj)?;
    let v = held.view();
    if !v.suboffsets.is_null() {
        return Err(buffer_err(
            "the buffer has suboffsets (indirect, PIL-style memory), which DLPack cannot describe",
        ));
    }
    let format = if v.format.is_null() {
        None
    } else {
        // SAFETY: a non-NULL format is a NUL-terminated string owned by the view.
        // Bytes that are not UTF-8 read as U+FFFD, which no format has.
        Some(unsafe { CStr::from_ptr(v.format) }.to_string_lossy())
    };
    let dtype = format_dtype(format.as_deref(), v.itemsize).map_err(buffer_err)?;
    // PyBUF_MAX_NDIM: CPython's own limit for buffers.
    let ndim = usize::try_from(v.ndim)
        .ok()
        .filter(|&n| n <= 64)
        .ok_or_else(|| {
            buffer_err(format!(
                "the buffer has ndim {}; the buffer protocol allows 0 to 64",
                v.ndim
            ))
        })?;
    let (shape, strides) = buffer_dims(v, ndim)?;
    let first = v.buf.cast::<u8>();
    let read_only = v.readonly != 0;
    export_host(
        held,
        first,
        DLDevice::cpu(),
        dtype,
        &shape,
        Some(&strides),
        read_only,
    )
    .py()
}

fn buffer_dims(v: &crate::pybuffer::Py_buffer, ndim: usize) -> PyResult<(Vec<i64>, Vec<i64>)> {
    if ndim == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    if v.shape.is_null() {
        // Only possible without PyBUF_ND: a flat run of bytes.
        return Ok((
            vec![v.len.max(0) as i64 / v.itemsize.max(1) as i64],
            vec![1],
        ));
    }
    // SAFETY: the exporter provides ndim shape entries (PyBUF_ND requested).
    let shape: Vec<i64> = unsafe { std::slice::from_raw_parts(v.shape, ndim) }
        .iter()
        .map(|&d| d as i64)
        .collect();
    let strides = if v.strides.is_null() {
        let mut s = vec![0i64; ndim];
        dlpack_core::layout::row_major_strides(&shape, &mut s).py()?;
        s
    } else {
        // SAFETY: as above, PyBUF_STRIDES requested.
        let bytes = unsafe { std::slice::from_raw_parts(v.strides, ndim) };
        byte_strides_to_elements(bytes.iter().map(|&b| b as i64), &shape, v.itemsize as i64)?
    };
    Ok((shape, strides))
}

fn byte_strides_to_elements(
    bytes: impl Iterator<Item = i64>,
    shape: &[i64],
    itemsize: i64,
) -> PyResult<Vec<i64>> {
    bytes
        .zip(shape)
        .enumerate()
        .map(|(axis, (b, &extent))| {
            if itemsize <= 0 || (b % itemsize != 0 && extent > 1) {
                Err(buffer_err(format!(
                    "stride {b} bytes on axis {axis} is not a multiple of the item size {itemsize}; \
                     DLPack strides count elements"
                )))
            } else {
                Ok(b / itemsize.max(1))
            }
        })
        .collect()
}

/// Imports from an `__array_interface__` (or, with `cuda`, a
/// `__cuda_array_interface__`) dictionary. With `defer_stream`, the CAI
/// `stream` is only recorded (for a producer that makes its consumers wait
/// on it later), not waited on.
pub(crate) fn via_array_interface(
    obj: &Bound<'_, PyAny>,
    d: &Bound<'_, PyAny>,
    cuda: bool,
    opts: &ExtractOptions<'_>,
    defer_stream: bool,
) -> PyResult<PyTensor> {
    let what = if cuda {
        "__cuda_array_interface__"
    } else {
        "__array_interface__"
    };
    let d = d.cast::<PyDict>().map_err(|_| {
        type_err(format!(
            "{what} must be a dict, got {} of type {}",
            show(d),
            type_name(d)
        ))
    })?;
    let get = |k: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        Ok(d.get_item(k)?.filter(|v| !v.is_none()))
    };
    let version: i64 = int_arg(
        &get("version")?.ok_or_else(|| type_err(format!("{what} has no \"version\"")))?,
        &format!("{what}[\"version\"]"),
        "an int (2 or 3)",
    )?;
    if !((2..=3).contains(&version) || (cuda && version == 1)) {
        return Err(buffer_err(format!(
            "{what} version {version} is not supported (2 or 3)"
        )));
    }
    if let Some(mask) = get("mask")? {
        return Err(buffer_err(format!(
            "{what} has a mask ({}); masked arrays cannot be described by DLPack",
            show(&mask)
        )));
    }
    let typestr = get("typestr")?.ok_or_else(|| type_err(format!("{what} has no \"typestr\"")))?;
    let typestr = typestr
        .cast::<pyo3::types::PyString>()
        .map_err(|_| {
            type_err(format!(
                "{what} typestr must be a str such as \"<f4\", got {} of type {}",
                show(&typestr),
                type_name(&typestr)
            ))
        })?
        .to_string_lossy();
    let dtype = typestr_dtype(&typestr).map_err(buffer_err)?;
    if let Some(descr) = get("descr")? {
        let simple = descr
            .extract::<Vec<(String, String)>>()
            .map(|v| v.len() == 1 && v[0].0.is_empty())
            .unwrap_or(false);
        if !simple {
            return Err(buffer_err(format!(
                "{what} descr {} is not [('', typestr)]: structured types cannot be described \
                 by DLPack",
                show(&descr)
            )));
        }
    }
    let shape = int_tuple(
        &get("shape")?.ok_or_else(|| type_err(format!("{what} has no \"shape\"")))?,
        what,
        "shape",
    )?;
    let itemsize = i64::from(dtype.bits / 8);
    let strides = match get("strides")? {
        None => None,
        Some(s) => {
            let b = int_tuple(&s, what, "strides")?;
            if b.len() != shape.len() {
                return Err(buffer_err(format!(
                    "{what} strides has {} entries but shape has {}",
                    b.len(),
                    shape.len()
                )));
            }
            Some(byte_strides_to_elements(b.into_iter(), &shape, itemsize)?)
        }
    };
    let data = get("data")?;
    let pointer = match &data {
        Some(t) if t.is_instance_of::<PyTuple>() => Some(data_pointer(t, what)?),
        _ => None,
    };
    if cuda {
        let (p, ro) = pointer.ok_or_else(|| {
            type_err(format!(
                "__cuda_array_interface__ \"data\" must be a (pointer, read_only) tuple, got {}",
                data.as_ref().map_or_else(|| "None".to_owned(), show)
            ))
        })?;
        let stream = match get("stream")? {
            None => None,
            Some(s) => {
                let rule =
                    "None, 1 (legacy default), 2 (per-thread default) or a stream handle > 2";
                let v: i64 = int_arg(&s, "__cuda_array_interface__ stream", rule)?;
                if v <= 0 {
                    return Err(value_err(format!(
                        "__cuda_array_interface__ stream={v} is not allowed (0 is ambiguous, \
                         negative values are no stream): use {rule}"
                    )));
                }
                Some(v)
            }
        };
        let hooks: Option<&dyn dlpack_device::Runtime> = match opts.cuda {
            Some(h) => Some(h),
            None => crate::gpu::cuda_runtime(),
        };
        let found = hooks
            .filter(|_| p != 0)
            .and_then(|h| crate::gpu::pointer_device(h, p as u64));
        let device = found.unwrap_or(DLDevice::new(DLDeviceType::kDLCUDA, 0));
        let mut cai_stream = stream;
        // The default hooks wait only on memory the driver knows (without a
        // driver, or for an address it does not know, the stream is left to
        // the caller in `cai_stream`); hooks given by the caller always wait.
        if !defer_stream && (opts.cuda.is_some() || found.is_some()) {
            if let (Some(s), Some(h)) = (stream, hooks) {
                crate::gpu::wait_cai_stream(h, device, s, opts.stream).map_err(|e| {
                    crate::error::DeviceError::Stream {
                        what: "__cuda_array_interface__",
                        stream: s,
                        device,
                        source: Box::new(e),
                    }
                })?;
                cai_stream = None;
            }
        }
        let t = export_host(
            PyObjectRef::new(obj),
            p as *mut u8,
            device,
            dtype,
            &shape,
            strides.as_deref(),
            ro,
        )
        .py()?;
        let mut t = PyTensor::new(t.into(), ImportPath::CudaArrayInterface);
        t.cai_stream = cai_stream;
        return Ok(t);
    }
    let t = match (pointer, data) {
        (Some((p, ro)), _) => export_host(
            PyObjectRef::new(obj),
            p as *mut u8,
            DLDevice::cpu(),
            dtype,
            &shape,
            strides.as_deref(),
            ro,
        )
        .py()?,
        (None, source) => {
            let source = source.unwrap_or_else(|| obj.clone());
            let offset: i64 = match get("offset")? {
                None => 0,
                Some(o) => int_arg(&o, &format!("{what} offset"), "an int (bytes)")?,
            };
            // SAFETY: source is live.
            if unsafe { crate::pybuffer::PyObject_CheckBuffer(source.as_ptr()) } == 0 {
                return Err(type_err(format!(
                    "{what} \"data\" must be a (pointer, read_only) tuple or an object with the \
                     buffer protocol (or absent, when the object has it), got {} of type {}",
                    show(&source),
                    type_name(&source)
                )));
            }
            let held = HeldBuffer::get(&source)?;
            let v = held.view();
            let layout = analyze(&shape, strides.as_deref(), dtype.storage(false).py()?).py()?;
            let span = offset
                .checked_add(layout.start)
                .zip(offset.checked_add(layout.end));
            let in_bounds = matches!(span, Some((start, end)) if start >= 0 && end <= v.len as i64);
            if layout.elements != 0 && !in_bounds {
                return Err(buffer_err(format!(
                    "{what} offset {offset} and layout bytes {}..{} reach outside the data \
                     buffer, which holds {} bytes",
                    layout.start, layout.end, v.len
                )));
            }
            let first = v.buf.cast::<u8>().wrapping_offset(offset as isize);
            let ro = v.readonly != 0;
            export_host(
                (held, PyObjectRef::new(obj)),
                first,
                DLDevice::cpu(),
                dtype,
                &shape,
                strides.as_deref(),
                ro,
            )
            .py()?
        }
    };
    Ok(PyTensor::new(t.into(), ImportPath::ArrayInterface))
}

/// `shape` or `strides` of an array interface: a sequence of ints that fit
/// in `int64`.
fn int_tuple(v: &Bound<'_, PyAny>, what: &str, key: &str) -> PyResult<Vec<i64>> {
    let items: Vec<Bound<'_, PyAny>> = v.extract().map_err(|_| {
        type_err(format!(
            "{what} {key} must be a tuple of ints, got {} of type {}",
            show(v),
            type_name(v)
        ))
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            int_arg(
                x,
                &format!("{what} {key}[{i}]"),
                "an int that fits in int64",
            )
        })
        .collect()
}

/// The `(pointer, read_only)` tuple of an array interface's `data`.
fn data_pointer(t: &Bound<'_, PyAny>, what: &str) -> PyResult<(usize, bool)> {
    let rule = "a (pointer, read_only) tuple of an int in [0, 2**64) and a bool";
    let bad = || type_err(format!("{what} \"data\" must be {rule}, got {}", show(t)));
    let t = t.cast::<PyTuple>().map_err(|_| bad())?;
    if t.len() != 2 {
        return Err(bad());
    }
    let p = int_arg(&t.get_item(0)?, &format!("{what} data pointer"), rule)?;
    let ro = t.get_item(1)?.extract::<bool>().map_err(|_| bad())?;
    Ok((p, ro))
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
/// dlpack_py::import::with_borrowed(obj, |view| view.ndim())
/// # }
/// ```
pub fn with_borrowed<R>(
    obj: &Bound<'_, PyAny>,
    f: impl FnOnce(TensorView<'_>) -> R,
) -> PyResult<R> {
    let info = type_info(obj);
    if info.numpy {
        // SAFETY: exactly numpy.ndarray; the view lives for the call.
        return unsafe { crate::numpy::with_numpy_view(obj, f) };
    }
    if let Some(get) = info
        .exchange
        .and_then(|t| t.dltensor_from_py_object_no_sync)
    {
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
    let t = extract(obj, &ExtractOptions::default())?;
    Ok(f(t.view()))
}
