//! [`DeviceSync`]: the core's [`StreamSync`] seam for any [`Driver`].

use std::marker::PhantomData;

use dlpack_core::ffi::DLDevice;
use dlpack_core::protocol::DeviceStream;
use dlpack_core::sync::StreamSync;

use crate::driver::Driver;
use crate::error::Error;
use crate::runtime::Raw;

/// Orders streams of driver `D` with pooled events: one record on the
/// producer's stream and one wait on the consumer's per exchange, nothing
/// for the same stream (or `-1`, which the core's
/// [`plan_sync`](dlpack_core::sync::plan_sync) turns into
/// [`SyncAction::Nothing`](dlpack_core::sync::SyncAction::Nothing)). The
/// host never waits. Backend crates name it `CudaSync` and `RocmSync`.
#[derive(Debug)]
pub struct DeviceSync<D>(PhantomData<D>);

impl<D> DeviceSync<D> {
    /// The synchroniser (a value with no state).
    pub const fn new() -> Self {
        DeviceSync(PhantomData)
    }
}

impl<D> Default for DeviceSync<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D> Clone for DeviceSync<D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D> Copy for DeviceSync<D> {}

impl<D: Driver> StreamSync for DeviceSync<D> {
    type Error = Error;

    fn order_after(
        &self,
        device: DLDevice,
        producer: DeviceStream,
        consumer: DeviceStream,
    ) -> Result<(), Error> {
        if device.device_type.stream_kind() != D::STREAM_KIND {
            return Err(Error::unsupported::<D>(device));
        }
        Raw::<D>::order_after(device.device_id, producer.as_raw(), consumer.as_raw())
    }
}
