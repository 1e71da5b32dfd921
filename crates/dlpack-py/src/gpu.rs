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
//! - The one-call conversions of device memory to a Python tensor
//!   (`device_tensor`, `cuda_tensor`, `rocm_tensor`) are in the classes
//!   layer (`crate::classes::device`), over this registry's runtimes.
//!
//! Failures cross the seam typed (`dlpack_device::Error` inside a
//! [`DeviceError`]), so their `ErrorKind` decides the Python exception.
//! Loading is lazy: the runtimes open `libcuda`/`libamdhip64` on their first
//! call, and nothing here calls them before a device tensor is exchanged.
//! Without a driver they return errors (mapped to `BufferError`), never
//! panic.

use std::sync::Arc;

use dlpack_core::device::StreamKind;
use dlpack_core::ffi::DLDevice;
use dlpack_core::protocol::{DeviceStream, StreamRequest};
use dlpack_core::sync::{SyncAction, plan_sync};
use dlpack_device::{HeldStream, MemoryKind, Runtime};

use crate::error::DeviceError;
use crate::sync::ExportSync;

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

    fn host_wait(&self, device: DLDevice) -> Result<(), DeviceError> {
        let Some(producer) = self.producer else {
            return Ok(()); // no pending work
        };
        // SAFETY: the producer stream is the tensor's, live while the tensor
        // (and so this synchroniser) is.
        Ok(unsafe { self.runtime.host_wait(device.device_id, producer.here()) }?)
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
