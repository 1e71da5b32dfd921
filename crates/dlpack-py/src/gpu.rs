//! Device memory (CUDA through `dlpack-cuda`, ROCm through `dlpack-rocm`;
//! features `cuda` and `rocm`).
//!
//! - [`DeviceSync`]: the [`ExportSync`] of a shared tensor on CUDA/ROCm
//!   memory: the consumer's stream waits for the stream the producer's
//!   pending work is on (the `__cuda_array_interface__` `stream` the data
//!   came with; none: nothing to wait for), and host copies go through the
//!   device crate.
//! - [`DriverHooks`]: the [`CudaHooks`] of `__cuda_array_interface__`
//!   imports (device id from the pointer, the consumer's stream waits on the
//!   CAI stream with a pooled event — never a host sync).
//! - `DeviceBuffer` and the stream helpers of `dlpack._testing` (a small
//!   helper for tests: device memory on the simulator or a real GPU).
//!
//! Loading is lazy: the device crates open `libcuda`/`libamdhip64` on their
//! first call, and nothing here calls them before a CUDA/ROCm tensor is
//! exchanged. Without a driver they return errors (mapped to `BufferError`),
//! never panic.

use std::sync::{Arc, Mutex};

use dlpack_core::device::StreamKind;
use dlpack_core::export::{Export, Memory};
use dlpack_core::ffi::{DLDataType, DLDevice, DLDeviceType};
use dlpack_core::protocol::{DeviceStream, StreamRequest};
use dlpack_core::sync::{SyncAction, plan_sync};
use pyo3::exceptions::{PyAttributeError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::classes::tensor::Tensor;
use crate::cpython::owner::Keep;
use crate::error::{DeviceError, IntoPyResult, value_err};
use crate::export::shared::SharedTensor;
use crate::sync::{CudaHooks, ExportSync};
use crate::values::device::device_tuple;

/// A raw stream value held as the thread that received it meant it: the
/// device crates' `HeldStream` (`2`, a per-thread default stream, is the
/// receiving thread's, whichever thread later orders work after it).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Held {
    #[cfg(feature = "cuda")]
    Cuda(dlpack_cuda::raw::HeldStream),
    #[cfg(feature = "rocm")]
    Rocm(dlpack_rocm::raw::HeldStream),
    /// A device this build has no crate for (never handed to a driver).
    Raw(u64),
}

impl Held {
    /// Resolves `raw`, a stream of a `kind` device, on the calling thread.
    fn received(kind: StreamKind, raw: u64) -> Held {
        match kind {
            #[cfg(feature = "cuda")]
            StreamKind::Cuda => Held::Cuda(dlpack_cuda::raw::HeldStream::received(raw)),
            #[cfg(feature = "rocm")]
            StreamKind::Rocm => Held::Rocm(dlpack_rocm::raw::HeldStream::received(raw)),
            _ => Held::Raw(raw),
        }
    }

    /// The handle that covers the held stream's work on the calling thread.
    fn here(self) -> u64 {
        match self {
            #[cfg(feature = "cuda")]
            Held::Cuda(h) => h.here(),
            #[cfg(feature = "rocm")]
            Held::Rocm(h) => h.here(),
            Held::Raw(raw) => raw,
        }
    }

    /// The value as it was received.
    fn as_received(self) -> u64 {
        match self {
            #[cfg(feature = "cuda")]
            Held::Cuda(h) => h.as_received(),
            #[cfg(feature = "rocm")]
            Held::Rocm(h) => h.as_received(),
            Held::Raw(raw) => raw,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether this build can synchronise and copy memory of `device` (its
/// device crate is compiled in).
pub(crate) fn supported(device: DLDevice) -> bool {
    match device.device_type.stream_kind() {
        StreamKind::Cuda => cfg!(feature = "cuda"),
        StreamKind::Rocm => cfg!(feature = "rocm"),
        StreamKind::None => false,
    }
}

/// The stream to use when none is pending: CUDA's legacy default stream,
/// ROCm's null stream.
fn default_stream(kind: StreamKind) -> u64 {
    if kind == StreamKind::Cuda { 1 } else { 0 }
}

/// Orders `consumer` after `producer` (raw handles) on `device`, through the
/// device crate; no driver call when they are the same stream.
fn order_after(device: DLDevice, producer: u64, consumer: u64) -> Result<(), DeviceError> {
    let kind = device.device_type.stream_kind();
    let (Some(p), Some(c)) = (
        DeviceStream::from_raw(kind, producer),
        DeviceStream::from_raw(kind, consumer),
    ) else {
        return Ok(());
    };
    apply(device, plan_sync(StreamRequest::Sync(c), Some(p)))
}

fn apply(device: DLDevice, action: SyncAction) -> Result<(), DeviceError> {
    if action == SyncAction::Nothing {
        return Ok(());
    }
    match device.device_type.stream_kind() {
        #[cfg(feature = "cuda")]
        StreamKind::Cuda => {
            use dlpack_core::sync::StreamSync;
            Ok(dlpack_cuda::CudaSync.apply(device, action)?)
        }
        #[cfg(feature = "rocm")]
        StreamKind::Rocm => {
            use dlpack_core::sync::StreamSync;
            Ok(dlpack_rocm::RocmSync.apply(device, action)?)
        }
        _ => Err(DeviceError::Unsupported {
            device,
            action: "synchronise streams",
        }),
    }
}

/// Copies `dst.len()` bytes at device address `src` to `dst`, ordered after
/// the work on `producer` (blocks the host: it is the consumer).
fn copy_to_host(
    device: DLDevice,
    src: u64,
    dst: &mut [u8],
    producer: u64,
) -> Result<(), DeviceError> {
    match device.device_type.stream_kind() {
        #[cfg(feature = "cuda")]
        StreamKind::Cuda => {
            // SAFETY: callers pass the span of a live, validated device tensor
            // and a stream of its device (or a default stream).
            Ok(unsafe { dlpack_cuda::raw::copy_to_host(device.device_id, src, dst, producer) }?)
        }
        #[cfg(feature = "rocm")]
        StreamKind::Rocm => {
            // SAFETY: as above.
            Ok(unsafe { dlpack_rocm::raw::copy_to_host(device.device_id, src, dst, producer) }?)
        }
        _ => {
            let _ = (src, dst, producer);
            Err(DeviceError::Unsupported {
                device,
                action: "copy data to the host",
            })
        }
    }
}

/// The [`ExportSync`] of device memory whose pending work is on one stream
/// (or on none).
#[derive(Debug)]
pub struct DeviceSync {
    producer: Option<Held>,
}

impl DeviceSync {
    /// Pending work on `producer` (a raw stream value as in `__dlpack__`,
    /// resolved on the calling thread; `None`: no pending work) of a `kind`
    /// device.
    fn new(kind: StreamKind, producer: Option<u64>) -> Arc<Self> {
        Arc::new(DeviceSync {
            producer: producer.map(|s| Held::received(kind, s)),
        })
    }
}

impl ExportSync for DeviceSync {
    fn sync(&self, device: DLDevice, request: StreamRequest) -> Result<(), DeviceError> {
        let kind = device.device_type.stream_kind();
        let producer = self
            .producer
            .and_then(|s| DeviceStream::from_raw(kind, s.here()));
        apply(device, plan_sync(request, producer))
    }

    fn copy_to_host(&self, device: DLDevice, src: u64, dst: &mut [u8]) -> Result<(), DeviceError> {
        let kind = device.device_type.stream_kind();
        let producer = self.producer.map_or(default_stream(kind), Held::here);
        copy_to_host(device, src, dst, producer)
    }
}

/// The synchroniser a shared tensor on `device` gets by default: pending
/// work on `producer` (the CAI `stream`), when this build supports the
/// device.
pub(crate) fn default_sync(device: DLDevice, producer: Option<i64>) -> Option<Arc<dyn ExportSync>> {
    if !supported(device) {
        return None;
    }
    let producer = producer.map(|s| s as u64);
    let kind = device.device_type.stream_kind();
    Some(DeviceSync::new(kind, producer) as Arc<dyn ExportSync>)
}

/// [`CudaHooks`] through `dlpack-cuda` (the driver is loaded on first use).
#[derive(Copy, Clone, Debug, Default)]
pub struct DriverHooks;

impl CudaHooks for DriverHooks {
    fn pointer_device(&self, ptr: u64) -> Option<DLDevice> {
        #[cfg(feature = "cuda")]
        {
            if !dlpack_cuda::is_driver_present() {
                return None;
            }
            let info = dlpack_cuda::raw::pointer_info(ptr).ok()?;
            let ty = match info.memory {
                dlpack_cuda::MemoryKind::Managed => DLDeviceType::kDLCUDAManaged,
                _ => DLDeviceType::kDLCUDA,
            };
            Some(DLDevice::new(ty, info.device_ordinal))
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = ptr;
            None
        }
    }

    fn wait_cai_stream(
        &self,
        device: DLDevice,
        producer: i64,
        consumer: Option<i64>,
    ) -> Result<(), DeviceError> {
        order_after(device, producer as u64, consumer.unwrap_or(1) as u64)
    }
}

/// The default [`CudaHooks`] of this build (`None` without `cuda`).
pub(crate) fn default_hooks() -> Option<&'static dyn CudaHooks> {
    if cfg!(feature = "cuda") {
        Some(&DriverHooks)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// dlpack._testing: DeviceBuffer and stream helpers

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Backend {
    Cuda,
    Rocm,
}

impl Backend {
    fn parse(s: &str) -> PyResult<Backend> {
        match s {
            "cuda" => Ok(Backend::Cuda),
            "rocm" | "hip" => Ok(Backend::Rocm),
            other => Err(value_err(format!(
                "backend must be \"cuda\" or \"rocm\", got {other:?}"
            ))),
        }
    }

    fn kind(self) -> StreamKind {
        match self {
            Backend::Cuda => StreamKind::Cuda,
            Backend::Rocm => StreamKind::Rocm,
        }
    }

    fn device(self, id: i32) -> DLDevice {
        match self {
            Backend::Cuda => DLDevice::new(DLDeviceType::kDLCUDA, id),
            Backend::Rocm => DLDevice::new(DLDeviceType::kDLROCM, id),
        }
    }
}

fn rt_err(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// A device crate's error as the Python exception of its kind.
fn dev_err(e: impl Into<DeviceError>) -> PyErr {
    e.into().into()
}

/// Device memory of a `DeviceBuffer`: freed when the buffer and every
/// tensor exported from it are gone, stream-ordered after every consumer
/// stream it was exported to.
#[derive(Debug)]
struct DevMem {
    backend: Backend,
    device: DLDevice,
    ptr: u64,
    len: usize,
    /// The buffer's own stream (its default, and the one it is freed on),
    /// as the thread that made the buffer meant it.
    home: Held,
    /// The stream of the last write, as the writing thread meant it.
    last_write: Mutex<Option<Held>>,
    /// Every consumer stream the memory was exported to, as each consumer's
    /// thread meant it.
    consumers: Mutex<Vec<Held>>,
    #[cfg(feature = "rocm")]
    hip: Option<dlpack_rocm::HipBuffer<u8>>,
}

impl DevMem {
    fn alloc(backend: Backend, device: i32, len: usize, home: Option<u64>) -> PyResult<DevMem> {
        let dev = backend.device(device);
        let home = home.unwrap_or_else(|| default_stream(backend.kind()));
        let mem = |ptr| DevMem {
            backend,
            device: dev,
            ptr,
            len,
            home: Held::received(backend.kind(), home),
            last_write: Mutex::new(None),
            consumers: Mutex::new(Vec::new()),
            #[cfg(feature = "rocm")]
            hip: None,
        };
        match backend {
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(mem(dlpack_cuda::raw::alloc(device, len).map_err(dev_err)?)),
            #[cfg(feature = "rocm")]
            Backend::Rocm => {
                let buf = dlpack_rocm::HipBuffer::<u8>::alloc(device, home, len.max(1))
                    .map_err(dev_err)?;
                let mut m = mem(buf.device_ptr());
                m.hip = Some(buf);
                Ok(m)
            }
            #[allow(unreachable_patterns)]
            _ => {
                let _ = mem;
                Err(rt_err(format!("this build has no {backend:?} support")))
            }
        }
    }

    /// The buffer's own stream, as this thread names it.
    fn default_stream(&self) -> u64 {
        self.home.here()
    }

    /// The stream of the last write, as this thread names it.
    fn last_write(&self) -> Option<u64> {
        lock(&self.last_write).map(Held::here)
    }

    fn set_last_write(&self, stream: u64) {
        *lock(&self.last_write) = Some(Held::received(self.backend.kind(), stream));
    }
}

impl ExportSync for DevMem {
    fn sync(&self, device: DLDevice, request: StreamRequest) -> Result<(), DeviceError> {
        let kind = device.device_type.stream_kind();
        if let StreamRequest::Sync(c) = request {
            let c = Held::received(kind, c.as_raw());
            let mut consumers = lock(&self.consumers);
            if !consumers.contains(&c) {
                consumers.push(c);
            }
        }
        let producer = self
            .last_write()
            .and_then(|s| DeviceStream::from_raw(kind, s));
        apply(device, plan_sync(request, producer))
    }

    fn copy_to_host(&self, device: DLDevice, src: u64, dst: &mut [u8]) -> Result<(), DeviceError> {
        let producer = self.last_write().unwrap_or_else(|| self.default_stream());
        copy_to_host(device, src, dst, producer)
    }
}

impl Drop for DevMem {
    fn drop(&mut self) {
        // The free runs on the buffer's stream, after the last write and
        // after every consumer stream's work submitted until now, each
        // stream as the thread that named it meant it (this drop may run on
        // any thread).
        let free_on = self.default_stream();
        let consumers = std::mem::take(self.consumers.get_mut().unwrap_or_else(|p| p.into_inner()));
        let last_write = *self.last_write.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut ordered = true;
        for s in last_write.into_iter().chain(consumers) {
            ordered &= order_after(self.device, s.here(), free_on).is_ok();
        }
        if !ordered {
            return; // leak rather than free memory a stream may still use
        }
        match self.backend {
            #[cfg(feature = "cuda")]
            Backend::Cuda => {
                // SAFETY: the pointer came from raw::alloc and is freed once,
                // here; every use is ordered before the free stream's end.
                let _ = unsafe {
                    dlpack_cuda::raw::free_async(self.device.device_id, self.ptr, free_on)
                };
            }
            #[cfg(feature = "rocm")]
            Backend::Rocm => drop(self.hip.take()),
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
}

/// A testing helper: `nbytes` bytes of device memory (`uint8`, 1-D) on
/// device `device` of `backend` ("cuda" or "rocm"), exported with the full
/// protocol. Its pending work is on the stream of its last write
/// (`upload`, `fill_on`), which `__dlpack__(stream=...)` makes the
/// consumer's stream wait on; the memory is freed on the buffer's own
/// `stream` (default: the default stream), stream-ordered after every
/// consumer stream, when the buffer and all tensors exported from it are
/// gone. Not part of the public API.
#[pyclass(frozen, module = "dlpack._testing", name = "DeviceBuffer")]
#[derive(Debug)]
pub struct DeviceBuffer {
    mem: Arc<DevMem>,
    tensor: Py<Tensor>,
}

impl DeviceBuffer {
    fn stream_or_default(&self, stream: Option<u64>) -> u64 {
        stream.unwrap_or_else(|| self.mem.default_stream())
    }
}

#[pymethods]
impl DeviceBuffer {
    #[new]
    #[pyo3(signature = (nbytes, device=0, backend="cuda", stream=None))]
    fn new(
        py: Python<'_>,
        nbytes: usize,
        device: i32,
        backend: &str,
        stream: Option<u64>,
    ) -> PyResult<Self> {
        crate::error::guard(|| {
            let backend = Backend::parse(backend)?;
            let mem = Arc::new(DevMem::alloc(backend, device, nbytes, stream)?);
            let memory = Memory {
                ptr: std::ptr::with_exposed_provenance_mut(mem.ptr as usize),
                len: nbytes,
                device: mem.device,
                dtype: Some(DLDataType::U8),
                read_only: false,
            };
            // SAFETY: the device allocation lives as long as the DevMem, which
            // the owner keeps; it never moves.
            let owner = unsafe { Keep::new(Arc::clone(&mem), memory) };
            let t = Export::new(owner)
                .dtype(DLDataType::U8)
                .shape(&[nbytes as i64])
                .versioned()
                .py()?;
            let sync: Arc<dyn ExportSync> = Arc::clone(&mem) as Arc<dyn ExportSync>;
            let shared = SharedTensor::with_sync(t.into(), sync);
            let tensor = Py::new(py, Tensor::from_shared(shared))?;
            Ok(DeviceBuffer { mem, tensor })
        })
    }

    /// The device address.
    #[getter]
    fn ptr(&self) -> PyResult<u64> {
        crate::error::guard(|| Ok(self.mem.ptr))
    }

    /// Bytes.
    #[getter]
    fn nbytes(&self) -> PyResult<usize> {
        crate::error::guard(|| Ok(self.mem.len))
    }

    /// `(device_type, device_id)`.
    #[getter]
    fn device<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        crate::error::guard(|| device_tuple(py, self.mem.device))
    }

    /// The stream of the last write (None before any).
    #[getter]
    fn stream(&self) -> PyResult<Option<u64>> {
        crate::error::guard(|| Ok(lock(&self.mem.last_write).map(Held::as_received)))
    }

    /// The exported tensor (a `dlpack.Tensor` sharing this memory).
    #[getter]
    fn tensor(&self, py: Python<'_>) -> PyResult<Py<Tensor>> {
        crate::error::guard(|| Ok(self.tensor.clone_ref(py)))
    }

    /// Copies `data` (bytes-like, at most `nbytes`) to the start of the
    /// buffer on `stream` (default: the default stream) and waits for it.
    #[pyo3(signature = (data, stream=None))]
    fn upload(&self, data: &[u8], stream: Option<u64>) -> PyResult<()> {
        crate::error::guard(|| {
            if data.len() > self.mem.len {
                return Err(value_err(format!(
                    "upload: {} bytes do not fit in {} bytes",
                    data.len(),
                    self.mem.len
                )));
            }
            let s = self.stream_or_default(stream);
            let dev = self.mem.device.device_id;
            let r = match self.mem.backend {
                #[cfg(feature = "cuda")]
                Backend::Cuda => {
                    // SAFETY: the range is inside our live allocation.
                    unsafe { dlpack_cuda::raw::copy_from_host(dev, self.mem.ptr, data, s) }
                        .map_err(dev_err)
                }
                #[cfg(feature = "rocm")]
                Backend::Rocm => {
                    // SAFETY: as above.
                    unsafe { dlpack_rocm::raw::copy_from_host(dev, self.mem.ptr, data, s) }
                        .map_err(dev_err)
                }
                #[allow(unreachable_patterns)]
                _ => {
                    let _ = (dev, data);
                    Err(rt_err("unsupported backend"))
                }
            };
            r?;
            self.mem.set_last_write(s);
            Ok(())
        })
    }

    /// The bytes of the buffer, copied on `stream` (default: the stream of
    /// the last write) and waited for.
    #[pyo3(signature = (stream=None))]
    fn download<'py>(&self, py: Python<'py>, stream: Option<u64>) -> PyResult<Bound<'py, PyBytes>> {
        crate::error::guard(|| {
            let s = stream
                .or_else(|| self.mem.last_write())
                .unwrap_or_else(|| self.mem.default_stream());
            let mut out = vec![0u8; self.mem.len];
            copy_to_host(self.mem.device, self.mem.ptr, &mut out, s).map_err(dev_err)?;
            Ok(PyBytes::new(py, &out))
        })
    }

    /// A "kernel": sets every byte to `value` on `stream` (asynchronous);
    /// the buffer's pending work is then on `stream`.
    fn fill_on(&self, stream: u64, value: u8) -> PyResult<()> {
        crate::error::guard(|| {
            let dev = self.mem.device.device_id;
            let (ptr, len) = (self.mem.ptr, self.mem.len);
            let r = match self.mem.backend {
                #[cfg(feature = "cuda")]
                Backend::Cuda => {
                    // SAFETY: our live allocation, on a stream the caller names.
                    unsafe { dlpack_cuda::raw::memset_async(dev, ptr, value, len, stream) }
                        .map_err(dev_err)
                }
                #[cfg(feature = "rocm")]
                Backend::Rocm => {
                    // SAFETY: as above.
                    unsafe { dlpack_rocm::raw::memset_async(dev, ptr, value, len, stream) }
                        .map_err(dev_err)
                }
                #[allow(unreachable_patterns)]
                _ => {
                    let _ = (dev, ptr, len, value);
                    Err(rt_err("unsupported backend"))
                }
            };
            r?;
            self.mem.set_last_write(stream);
            Ok(())
        })
    }

    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__<'py>(
        &self,
        py: Python<'py>,
        stream: Option<&Bound<'py, PyAny>>,
        max_version: Option<&Bound<'py, PyAny>>,
        dl_device: Option<&Bound<'py, PyAny>>,
        copy: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::error::guard(|| {
            let args =
                crate::values::args::DlpackArgs::parse([stream, max_version, dl_device, copy])?;
            self.tensor.bind(py).get().dlpack_call(py, &args)
        })
    }

    fn __dlpack_device__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        crate::error::guard(|| device_tuple(py, self.mem.device))
    }

    /// `__cuda_array_interface__` v3 (CUDA only), `stream` = the stream of
    /// the last write.
    #[getter]
    fn __cuda_array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        crate::error::guard(|| {
            if self.mem.backend != Backend::Cuda {
                return Err(PyAttributeError::new_err(
                    "__cuda_array_interface__: a ROCm buffer",
                ));
            }
            let d = PyDict::new(py);
            d.set_item("shape", (self.mem.len,))?;
            d.set_item("typestr", "|u1")?;
            d.set_item("data", (self.mem.ptr, false))?;
            d.set_item("strides", py.None())?;
            d.set_item("version", 3)?;
            d.set_item("stream", self.mem.last_write().map(|s| s.max(1)))?;
            Ok(d)
        })
    }

    fn __repr__(&self) -> PyResult<String> {
        crate::error::guard(|| {
            Ok({
                format!(
                    "<dlpack._testing.DeviceBuffer {:?} nbytes={} ptr={:#x}>",
                    self.mem.device, self.mem.len, self.mem.ptr
                )
            })
        })
    }
}

/// Whether the driver/runtime of `backend` can be loaded.
#[pyfunction]
#[pyo3(signature = (backend="cuda"))]
fn driver_present(backend: &str) -> PyResult<bool> {
    crate::error::guard(|| {
        Ok(match Backend::parse(backend)? {
            #[cfg(feature = "cuda")]
            Backend::Cuda => dlpack_cuda::is_driver_present(),
            #[cfg(feature = "rocm")]
            Backend::Rocm => dlpack_rocm::is_runtime_present(),
            #[allow(unreachable_patterns)]
            _ => false,
        })
    })
}

/// Creates a non-blocking stream; returns its raw handle.
#[pyfunction]
#[pyo3(signature = (device=0, backend="cuda"))]
fn stream_create(device: i32, backend: &str) -> PyResult<u64> {
    crate::error::guard(|| match Backend::parse(backend)? {
        #[cfg(feature = "cuda")]
        Backend::Cuda => dlpack_cuda::raw::stream_create(device).map_err(dev_err),
        #[cfg(feature = "rocm")]
        Backend::Rocm => dlpack_rocm::raw::stream_create(device).map_err(dev_err),
        #[allow(unreachable_patterns)]
        _ => {
            let _ = device;
            Err(rt_err("unsupported backend"))
        }
    })
}

/// Destroys a stream made by `stream_create`.
#[pyfunction]
#[pyo3(signature = (stream, device=0, backend="cuda"))]
fn stream_destroy(stream: u64, device: i32, backend: &str) -> PyResult<()> {
    crate::error::guard(|| {
        match Backend::parse(backend)? {
            #[cfg(feature = "cuda")]
            Backend::Cuda => {
                // SAFETY: the caller hands over a stream it made and no longer uses
                // (a testing helper; a stale handle is the simulator's to report).
                unsafe { dlpack_cuda::raw::stream_destroy(device, stream) }.map_err(dev_err)
            }
            #[cfg(feature = "rocm")]
            // SAFETY: as above.
            Backend::Rocm => unsafe { dlpack_rocm::raw::stream_destroy(stream) }.map_err(dev_err),
            #[allow(unreachable_patterns)]
            _ => {
                let _ = (stream, device);
                Err(rt_err("unsupported backend"))
            }
        }
    })
}

/// Forgets pooled events (after the simulator's reset invalidated them).
#[pyfunction]
fn forget_pooled_events() -> PyResult<()> {
    crate::error::guard(|| {
        #[cfg(feature = "cuda")]
        dlpack_cuda::forget_pooled_events();
        #[cfg(feature = "rocm")]
        dlpack_rocm::forget_pooled_events();
        Ok(())
    })
}

/// Registers the device helpers in `dlpack._testing`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<DeviceBuffer>()?;
    m.add_function(wrap_pyfunction!(driver_present, m)?)?;
    m.add_function(wrap_pyfunction!(stream_create, m)?)?;
    m.add_function(wrap_pyfunction!(stream_destroy, m)?)?;
    m.add_function(wrap_pyfunction!(forget_pooled_events, m)?)?;
    Ok(())
}
