//! The seam to the devices on the export side: what a shared tensor needs
//! from device code to order a consumer after its pending work, implemented
//! by the device registry ([`crate::gpu`], over `dlpack-device`'s runtimes)
//! and by a user's own device code. (Imports ask a `dlpack_device::Runtime`
//! directly.) The core decides *whether* and *between which
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

    /// Blocks the host until the pending work on the tensor is done, before
    /// the host reads memory that both the host and the device reach
    /// (managed or page-locked memory read through the buffer protocol,
    /// `__array_interface__`, pickling or a host copy). The default refuses:
    /// a synchroniser that cannot wait would let the host read memory a
    /// stream may still be writing.
    ///
    /// # Errors
    ///
    /// The device layer's error, whose kind decides the Python exception.
    fn host_wait(&self, device: DLDevice) -> Result<(), DeviceError> {
        Err(DeviceError::Unsupported {
            device,
            action: "wait on the host for the work pending on the tensor",
        })
    }
}
