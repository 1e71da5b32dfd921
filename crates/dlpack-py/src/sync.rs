//! The seam to the devices: what import and export need from a device
//! runtime, implemented by the device registry ([`crate::gpu`]) and by a
//! user's own device code. The core decides *whether* and *between which
//! streams* to order work; these traits say *how*.

use dlpack_core::ffi::DLDevice;
use dlpack_core::protocol::StreamRequest;

use crate::error::DeviceError;

/// The producer side of stream synchronisation for exported device tensors
/// (implemented by a device crate such as `dlpack-cuda`): make the
/// consumer's stream wait for the work pending on the tensor.
pub trait ExportSync: Send + Sync + 'static {
    /// Orders `request` (decoded by the core from `__dlpack__(stream=...)`)
    /// after the pending work on the tensor on `device`.
    ///
    /// # Errors
    ///
    /// The device layer's error, whose kind decides the Python exception.
    fn sync(&self, device: DLDevice, request: StreamRequest) -> Result<(), DeviceError>;

    /// Copies `dst.len()` bytes at device address `src` (memory of `device`)
    /// to `dst`, after the pending work on the tensor; the host waits for
    /// the copy (it is the consumer). The default refuses.
    ///
    /// # Errors
    ///
    /// The device layer's error, whose kind decides the Python exception.
    fn copy_to_host(&self, device: DLDevice, src: u64, dst: &mut [u8]) -> Result<(), DeviceError> {
        let _ = (src, dst);
        Err(DeviceError::Unsupported {
            device,
            action: "copy data to the host",
        })
    }
}

/// The CUDA side of imports from `__cuda_array_interface__`, provided by a
/// device crate (`dlpack-cuda`). Without hooks, CAI imports use device id 0
/// unless told otherwise and record the producer's `stream` in
/// [`PyTensor::cai_stream`](crate::import::PyTensor::cai_stream) for the caller to honour.
pub trait CudaHooks {
    /// The device owning a device pointer (`cuPointerGetAttribute`), if known.
    fn pointer_device(&self, ptr: u64) -> Option<DLDevice>;
    /// Makes `consumer` (the import's stream option; `None`: the legacy
    /// default stream) wait for the work on the producer's CAI `stream`.
    ///
    /// # Errors
    ///
    /// The device layer's error, whose kind decides the Python exception.
    fn wait_cai_stream(
        &self,
        device: DLDevice,
        producer: i64,
        consumer: Option<i64>,
    ) -> Result<(), DeviceError>;
}
