//! The one seam between dlpack-py and the device runtimes (`dlpack-device`,
//! implemented by `dlpack-cuda` and `dlpack-rocm`; features `cuda` and
//! `rocm`).
//!
//! - `runtime`: the registry, device kind → runtime. It is the only place
//!   in this crate where the device features are wired: everything else
//!   asks it, and a build without a feature simply finds no runtime for
//!   that kind.
//! - [`DeviceSync`]: the [`ExportSync`] of a shared tensor on device
//!   memory: the consumer's stream waits for the stream the producer's
//!   pending work is on (the `__cuda_array_interface__` `stream` the data
//!   came with; none: nothing to wait for), and host copies go through the
//!   runtime.
//! - `pointer_device` and `wait_cai_stream`: what
//!   `__cuda_array_interface__` imports ask of the CUDA runtime (device id
//!   from the pointer, the consumer's stream waits on the CAI stream with a
//!   pooled event — never a host sync). The runtime trait is the whole
//!   interface: an import can be handed another one
//!   (`ExtractOptions::cuda`).
//! - [`device_tensor`] ([`cuda_tensor`], [`rocm_tensor`]): device memory
//!   with work pending on its stream as a Python tensor in one call.
//!
//! Failures cross the seam typed (`dlpack_device::Error` inside a
//! [`DeviceError`]), so their `ErrorKind` decides the Python exception.
//! Loading is lazy: the runtimes open `libcuda`/`libamdhip64` on their first
//! call, and nothing here calls them before a device tensor is exchanged.
//! Without a driver they return errors (mapped to `BufferError`), never
//! panic.

use std::sync::Arc;

use dlpack_core::Element;
use dlpack_core::device::StreamKind;
use dlpack_core::export::{Export, Memory};
use dlpack_core::ffi::DLDevice;
use dlpack_core::protocol::{DeviceStream, StreamRequest};
use dlpack_core::sync::{SyncAction, plan_sync};
use dlpack_device::{DeviceMemory, HeldStream, MemoryKind, Owner, Runtime};
use pyo3::prelude::*;

use crate::error::{DeviceError, IntoPyResult};
use crate::object::Tensor;
use crate::owner::Keep;
use crate::shared::{ExportSync, SharedTensor};

/// The runtime of devices of `kind` in this build, if any: the registry.
pub(crate) fn runtime(kind: StreamKind) -> Option<&'static dyn Runtime> {
    match kind {
        #[cfg(feature = "cuda")]
        StreamKind::Cuda => Some(dlpack_device::runtime::<dlpack_cuda::Cuda>()),
        #[cfg(feature = "rocm")]
        StreamKind::Rocm => Some(dlpack_device::runtime::<dlpack_rocm::Hip>()),
        _ => None,
    }
}

/// The runtime of `device`, or why there is none.
pub(crate) fn runtime_of(
    device: DLDevice,
    action: &'static str,
) -> Result<&'static dyn Runtime, DeviceError> {
    runtime(device.device_type.stream_kind()).ok_or(DeviceError::Unsupported { device, action })
}

/// Orders `consumer` after `producer` (raw handles) on `device`; no driver
/// call when they are the same stream.
pub(crate) fn order_after(
    device: DLDevice,
    producer: u64,
    consumer: u64,
) -> Result<(), DeviceError> {
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
    Ok(runtime_of(device, "synchronise streams")?.apply(device, action)?)
}

/// Copies `dst.len()` bytes at device address `src` to `dst`, ordered after
/// the work on `producer` (blocks the host: it is the consumer).
pub(crate) fn copy_to_host(
    device: DLDevice,
    src: u64,
    dst: &mut [u8],
    producer: u64,
) -> Result<(), DeviceError> {
    let rt = runtime_of(device, "copy data to the host")?;
    // SAFETY: callers pass the span of a live, validated device tensor and a
    // stream of its device (or a default stream).
    Ok(unsafe { rt.copy_to_host(device.device_id, src, dst, producer) }?)
}

/// The [`ExportSync`] of device memory whose pending work is on one stream
/// (or on none).
#[derive(Debug)]
pub struct DeviceSync {
    runtime: &'static dyn Runtime,
    producer: Option<HeldStream>,
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
        let producer = self
            .producer
            .map_or(self.runtime.covering_stream(), |s| s.here());
        copy_to_host(device, src, dst, producer)
    }
}

/// The synchroniser a shared tensor on `device` gets by default: pending
/// work on `producer` (the CAI `stream`, resolved on the calling thread),
/// when this build has a runtime for the device.
pub(crate) fn default_sync(device: DLDevice, producer: Option<i64>) -> Option<Arc<dyn ExportSync>> {
    let runtime = runtime(device.device_type.stream_kind())?;
    Some(Arc::new(DeviceSync {
        runtime,
        producer: producer.map(|s| runtime.held(s as u64)),
    }) as Arc<dyn ExportSync>)
}

/// The CUDA runtime of this build, if any: what `__cuda_array_interface__`
/// imports use by default.
pub(crate) fn cuda_runtime() -> Option<&'static dyn Runtime> {
    runtime(StreamKind::Cuda)
}

/// The device owning a device pointer of `rt` (its pointer attributes),
/// if the driver is here and knows it. Managed memory is
/// `kDLCUDAManaged`; device and page-locked memory are `kDLCUDA`, as
/// `__cuda_array_interface__` describes them.
pub(crate) fn pointer_device(rt: &dyn Runtime, ptr: u64) -> Option<DLDevice> {
    if !rt.is_present() {
        return None;
    }
    let info = rt.pointer_info(ptr).ok()?;
    let types = rt.device_types();
    let ty = match info.memory {
        MemoryKind::Managed => types.managed,
        _ => types.device,
    };
    Some(DLDevice::new(ty, info.device_ordinal))
}

/// Makes `consumer` (an import's stream option; `None`: the legacy default
/// stream) wait for the work on the producer's CAI `stream`, through `rt`.
pub(crate) fn wait_cai_stream(
    rt: &dyn Runtime,
    device: DLDevice,
    producer: i64,
    consumer: Option<i64>,
) -> Result<(), DeviceError> {
    let kind = rt.stream_kind();
    let (Some(p), Some(c)) = (
        DeviceStream::from_raw(kind, producer as u64),
        DeviceStream::from_raw(kind, consumer.unwrap_or(1) as u64),
    ) else {
        return Ok(());
    };
    let action = plan_sync(StreamRequest::Sync(c), Some(p));
    if action == SyncAction::Nothing {
        return Ok(());
    }
    Ok(rt.apply(device, action)?)
}

/// The [`ExportSync`] of device memory exported to Python through an
/// [`Owner`] (see [`device_tensor`]): every `__dlpack__(stream=...)` orders
/// the consumer's stream after the memory's and is kept, so the free waits
/// for every consumer.
#[derive(Debug)]
struct OwnerSync<M: DeviceMemory>(Arc<Owner<M>>);

impl<M: DeviceMemory + Sync> ExportSync for OwnerSync<M> {
    fn sync(&self, _device: DLDevice, request: StreamRequest) -> Result<(), DeviceError> {
        Ok(self.0.order_consumer(request)?)
    }

    fn copy_to_host(&self, device: DLDevice, src: u64, dst: &mut [u8]) -> Result<(), DeviceError> {
        let producer = self.0.producer_stream().as_raw();
        // SAFETY: `src..src + dst.len()` is the span of the validated tensor
        // over the owner's live memory, and `producer` the memory's stream.
        Ok(unsafe {
            dlpack_device::Raw::<M::Driver>::copy_to_host(device.device_id, src, dst, producer)
        }?)
    }
}

/// Device memory with work pending on its stream, as a Python tensor of
/// `shape` (compact row-major) in one call: every consumer's
/// `__dlpack__(stream=...)` makes the consumer's stream wait for the
/// memory's stream (one pooled event, the host never waits), and the memory
/// is freed once the tensor and every capsule are released, ordered after
/// every consumer's stream. `dl_device=(kDLCPU, 0)` copies to the host
/// after the pending work. [`cuda_tensor`] and [`rocm_tensor`] name it for
/// cudarc slices and HIP buffers.
///
/// # Errors
///
/// `BufferError` when `shape` does not fit the memory.
pub fn device_tensor<'py, M: DeviceMemory + Sync>(
    py: Python<'py>,
    memory: impl Into<M>,
    shape: &[i64],
) -> PyResult<Bound<'py, Tensor>> {
    let owner = Arc::new(Owner::<M>::new(memory));
    let span = Memory {
        ptr: std::ptr::with_exposed_provenance_mut(owner.device_ptr() as usize),
        len: owner.byte_len(),
        device: owner.device(),
        dtype: Some(M::Elem::DTYPE),
        read_only: owner.memory().shared(),
    };
    // SAFETY: the device memory lives as long as the Owner, which the Keep
    // holds (through the Arc) and which never moves it.
    let keep = unsafe { Keep::new(Arc::clone(&owner), span) };
    let tensor = Export::new(keep)
        .dtype(M::Elem::DTYPE)
        .shape(shape)
        .versioned()
        .py()?;
    let shared = SharedTensor::with_sync(tensor.into(), Arc::new(OwnerSync(owner)));
    Bound::new(py, Tensor::from_shared(shared))
}

/// A cudarc slice with work pending on its stream, as a Python tensor of
/// `shape` whose consumers are ordered after that stream (see
/// [`device_tensor`]).
///
/// ```no_run
/// use dlpack_cuda::cudarc::driver::CudaContext;
/// use pyo3::prelude::*;
///
/// #[pyfunction]
/// fn ones(py: Python<'_>) -> PyResult<Bound<'_, dlpack_py::object::Tensor>> {
///     let err = |e: dlpack_cuda::cudarc::driver::DriverError| {
///         pyo3::exceptions::PyRuntimeError::new_err(e.to_string())
///     };
///     let stream = CudaContext::new(0).map_err(err)?.new_stream().map_err(err)?;
///     // Work pending on `stream`: torch.from_dlpack(ones()) waits for it on the GPU.
///     let slice = stream.clone_htod(&[1.0f32; 6]).map_err(err)?;
///     dlpack_py::gpu::cuda_tensor(py, slice, &[2, 3])
/// }
/// ```
///
/// # Errors
///
/// As [`device_tensor`].
#[cfg(feature = "cuda")]
pub fn cuda_tensor<'py, T>(
    py: Python<'py>,
    slice: dlpack_cuda::cudarc::driver::CudaSlice<T>,
    shape: &[i64],
) -> PyResult<Bound<'py, Tensor>>
where
    T: Element + dlpack_cuda::cudarc::driver::DeviceRepr + Sync,
{
    device_tensor::<dlpack_cuda::CudaMemory<T>>(py, slice, shape)
}

/// A HIP buffer with work pending on its stream, as a Python tensor of
/// `shape` whose consumers are ordered after that stream (see
/// [`device_tensor`]).
///
/// ```no_run
/// use pyo3::prelude::*;
///
/// #[pyfunction]
/// fn zeros(py: Python<'_>, stream: u64) -> PyResult<Bound<'_, dlpack_py::object::Tensor>> {
///     let buffer = dlpack_rocm::HipBuffer::<f32>::alloc(0, stream, 6)
///         .map_err(dlpack_py::error::DeviceError::from)?;
///     // SAFETY: the buffer is live; `stream` is its stream.
///     unsafe { dlpack_rocm::Raw::memset_async(0, buffer.device_ptr(), 0, 24, stream) }
///         .map_err(dlpack_py::error::DeviceError::from)?;
///     dlpack_py::gpu::rocm_tensor(py, buffer, &[2, 3])
/// }
/// ```
///
/// # Errors
///
/// As [`device_tensor`].
#[cfg(feature = "rocm")]
pub fn rocm_tensor<'py, T: Element + Sync>(
    py: Python<'py>,
    buffer: dlpack_rocm::HipBuffer<T>,
    shape: &[i64],
) -> PyResult<Bound<'py, Tensor>> {
    device_tensor::<dlpack_rocm::HipBuffer<T>>(py, buffer, shape)
}
