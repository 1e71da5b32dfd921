//! `dlpack._testing`'s device helpers: `DeviceBuffer` (device memory on the
//! simulator or a real GPU, exported with the full protocol) and the stream
//! helpers. Written over the device registry ([`crate::gpu::runtime`]), so
//! they serve every runtime this build has. Not part of the public API.

use std::sync::{Arc, Mutex};

use dlpack_core::device::StreamKind;
use dlpack_core::export::{Export, Memory};
use dlpack_core::ffi::{DLDataType, DLDevice};
use dlpack_core::protocol::{DeviceStream, StreamRequest};
use dlpack_core::sync::plan_sync;
use dlpack_device::{HeldStream, Runtime};
use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::classes::tensor::Tensor;
use crate::cpython::owner::Keep;
use crate::error::{DeviceError, IntoPyResult, value_err};
use crate::export::shared::SharedTensor;
use crate::gpu::{copy_to_host, order_after};
use crate::sync::ExportSync;
use crate::values::device::device_tuple;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The runtime a `backend` argument names ("cuda", "rocm" or "hip"), when
/// this build has it.
fn backend(name: &str) -> PyResult<Option<&'static dyn Runtime>> {
    let kind = match name {
        "cuda" => StreamKind::Cuda,
        "rocm" | "hip" => StreamKind::Rocm,
        other => {
            return Err(value_err(format!(
                "backend must be \"cuda\" or \"rocm\", got {other:?}"
            )));
        }
    };
    Ok(crate::gpu::runtime(kind))
}

/// The runtime a `backend` argument names, or a `BufferError` saying this
/// build has none for `action`.
fn runtime(name: &str, device: i32, action: &'static str) -> PyResult<&'static dyn Runtime> {
    backend(name)?.ok_or_else(|| {
        let ty = if name == "cuda" {
            dlpack_core::ffi::DLDeviceType::kDLCUDA
        } else {
            dlpack_core::ffi::DLDeviceType::kDLROCM
        };
        DeviceError::Unsupported {
            device: DLDevice::new(ty, device),
            action,
        }
        .into()
    })
}

/// Device memory of a `DeviceBuffer`: freed when the buffer and every
/// tensor exported from it are gone, stream-ordered after every consumer
/// stream it was exported to.
#[derive(Debug)]
struct DevMem {
    runtime: &'static dyn Runtime,
    device: DLDevice,
    ptr: u64,
    len: usize,
    /// The buffer's own stream (its default, and the one it is freed on),
    /// as the thread that made the buffer meant it.
    home: HeldStream,
    /// The stream of the last write, as the writing thread meant it.
    last_write: Mutex<Option<HeldStream>>,
    /// Every consumer stream the memory was exported to, as each consumer's
    /// thread meant it.
    consumers: Mutex<Vec<HeldStream>>,
}

impl DevMem {
    fn alloc(
        runtime: &'static dyn Runtime,
        device: i32,
        len: usize,
        home: Option<u64>,
    ) -> PyResult<DevMem> {
        let home = home.unwrap_or_else(|| runtime.covering_stream());
        let ptr = runtime.alloc(device, len).map_err(DeviceError::from)?;
        Ok(DevMem {
            runtime,
            device: DLDevice::new(runtime.device_types().device, device),
            ptr,
            len,
            home: runtime.held(home),
            last_write: Mutex::new(None),
            consumers: Mutex::new(Vec::new()),
        })
    }

    /// The buffer's own stream, as this thread names it.
    fn default_stream(&self) -> u64 {
        self.home.here()
    }

    /// The stream of the last write, as this thread names it.
    fn last_write(&self) -> Option<u64> {
        lock(&self.last_write).map(|s| s.here())
    }

    fn set_last_write(&self, stream: u64) {
        *lock(&self.last_write) = Some(self.runtime.held(stream));
    }
}

impl ExportSync for DevMem {
    fn sync(&self, device: DLDevice, request: StreamRequest) -> Result<(), DeviceError> {
        let kind = device.device_type.stream_kind();
        if let StreamRequest::Sync(c) = request {
            let c = self.runtime.held(c.as_raw());
            let mut consumers = lock(&self.consumers);
            if !consumers.contains(&c) {
                consumers.push(c);
            }
        }
        let producer = self
            .last_write()
            .and_then(|s| DeviceStream::from_raw(kind, s));
        Ok(self.runtime.apply(device, plan_sync(request, producer))?)
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
        // SAFETY: the pointer came from the runtime's alloc and is freed
        // once, here; every use is ordered before the free stream's end.
        let _ = unsafe { self.runtime.free(self.device.device_id, self.ptr, free_on) };
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
            let rt = runtime(backend, device, "allocate device memory")?;
            let mem = Arc::new(DevMem::alloc(rt, device, nbytes, stream)?);
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
        crate::error::guard(|| Ok(lock(&self.mem.last_write).map(|s| s.as_received())))
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
            // SAFETY: the range is inside our live allocation.
            unsafe { self.mem.runtime.copy_from_host(dev, self.mem.ptr, data, s) }
                .map_err(DeviceError::from)?;
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
            copy_to_host(self.mem.device, self.mem.ptr, &mut out, s)?;
            Ok(PyBytes::new(py, &out))
        })
    }

    /// A "kernel": sets every byte to `value` on `stream` (asynchronous);
    /// the buffer's pending work is then on `stream`.
    fn fill_on(&self, stream: u64, value: u8) -> PyResult<()> {
        crate::error::guard(|| {
            let dev = self.mem.device.device_id;
            let (ptr, len) = (self.mem.ptr, self.mem.len);
            // SAFETY: our live allocation, on a stream the caller names.
            unsafe { self.mem.runtime.memset_async(dev, ptr, value, len, stream) }
                .map_err(DeviceError::from)?;
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
            if self.mem.runtime.stream_kind() != StreamKind::Cuda {
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
    crate::error::guard(|| Ok(self::backend(backend)?.is_some_and(|rt| rt.is_present())))
}

/// Creates a non-blocking stream; returns its raw handle.
#[pyfunction]
#[pyo3(signature = (device=0, backend="cuda"))]
fn stream_create(device: i32, backend: &str) -> PyResult<u64> {
    crate::error::guard(|| {
        let rt = runtime(backend, device, "create a stream")?;
        Ok(rt.stream_create(device).map_err(DeviceError::from)?)
    })
}

/// Destroys a stream made by `stream_create`.
#[pyfunction]
#[pyo3(signature = (stream, device=0, backend="cuda"))]
fn stream_destroy(stream: u64, device: i32, backend: &str) -> PyResult<()> {
    crate::error::guard(|| {
        let rt = runtime(backend, device, "destroy a stream")?;
        // SAFETY: the caller hands over a stream it made and no longer uses
        // (a testing helper; a stale handle is the simulator's to report).
        Ok(unsafe { rt.stream_destroy(device, stream) }.map_err(DeviceError::from)?)
    })
}

/// Forgets pooled events (after the simulator's reset invalidated them).
#[pyfunction]
fn forget_pooled_events() -> PyResult<()> {
    crate::error::guard(|| {
        dlpack_device::forget_pooled_events();
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
