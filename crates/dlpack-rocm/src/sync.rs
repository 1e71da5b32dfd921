//! [`RocmSync`]: the HIP implementation of the core's [`StreamSync`] seam.

use dlpack_core::device::StreamKind;
use dlpack_core::ffi::DLDevice;
use dlpack_core::protocol::DeviceStream;
use dlpack_core::sync::StreamSync;

use crate::error::Error;
use crate::raw;

/// Orders HIP streams with pooled events: one `hipEventRecord` and one
/// `hipStreamWaitEvent` per exchange between distinct streams, nothing for
/// the same stream or `-1`; the host never waits.
///
/// ```no_run
/// use dlpack_core::ffi::DLDevice;
/// use dlpack_core::protocol::{decode_stream, DeviceStream};
/// use dlpack_core::sync::{plan_sync, StreamSync};
/// use dlpack_rocm::RocmSync;
///
/// // The consumer called __dlpack__(stream=0) (the null stream).
/// let device = DLDevice::rocm(0);
/// let request = decode_stream(device.device_type, Some(0))?;
/// RocmSync.apply(device, plan_sync(request, Some(DeviceStream::Handle(0x1000))))?;
/// // ROCm refuses 1 and 2 (a ValueError).
/// assert!(decode_stream(device.device_type, Some(1)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct RocmSync;

impl StreamSync for RocmSync {
    type Error = Error;

    fn order_after(
        &self,
        device: DLDevice,
        producer: DeviceStream,
        consumer: DeviceStream,
    ) -> Result<(), Error> {
        if device.device_type.stream_kind() != StreamKind::Rocm {
            return Err(Error::UnsupportedDevice { device });
        }
        raw::order_after(device.device_id, producer.as_raw(), consumer.as_raw())
    }
}

/// The stream a raw HIP handle is, as the core names it (0: the default
/// stream).
pub fn device_stream(raw: u64) -> DeviceStream {
    DeviceStream::from_raw(StreamKind::Rocm, raw).unwrap_or(DeviceStream::RocmDefault)
}
