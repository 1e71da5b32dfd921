//! The device seam: "order the consumer's stream after the producer's work".
//!
//! The core decides *whether* and *between which streams* to synchronise
//! ([`plan_sync`]); a device crate (`dlpack-cuda`, `dlpack-rocm`) decides
//! *how*, by implementing [`StreamSync`] — typically by recording a pooled
//! event on the producer's stream and making the consumer's stream wait on
//! it, never blocking the host.

use crate::ffi::DLDevice;
use crate::protocol::{DeviceStream, StreamRequest};

/// What a producer must do before handing data to a consumer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SyncAction {
    /// Nothing: the consumer opted out (`-1`), the device has no streams, or
    /// producer and consumer use the same stream.
    Nothing,
    /// Make `consumer` wait for all work submitted so far on `producer`.
    Wait {
        /// The stream the producer's pending work is on.
        producer: DeviceStream,
        /// The stream the consumer will use.
        consumer: DeviceStream,
    },
}

/// Decides the synchronisation for a decoded `stream` request, given the
/// stream the producer's pending work is on (`None`: no pending work).
///
/// Same stream means the same raw handle: the consumer's work is then
/// ordered by the stream itself.
///
/// ```
/// use dlpack_core::protocol::{DeviceStream, StreamRequest};
/// use dlpack_core::sync::{plan_sync, SyncAction};
///
/// let a = DeviceStream::Handle(0x1000);
/// let b = DeviceStream::Handle(0x2000);
/// assert_eq!(plan_sync(StreamRequest::Sync(b), Some(a)), SyncAction::Wait { producer: a, consumer: b });
/// assert_eq!(plan_sync(StreamRequest::Sync(a), Some(a)), SyncAction::Nothing);
/// assert_eq!(plan_sync(StreamRequest::NoSync, Some(a)), SyncAction::Nothing);
/// ```
pub fn plan_sync(request: StreamRequest, producer: Option<DeviceStream>) -> SyncAction {
    match (request, producer) {
        (StreamRequest::Sync(consumer), Some(producer))
            if consumer.as_raw() != producer.as_raw() =>
        {
            SyncAction::Wait { producer, consumer }
        }
        _ => SyncAction::Nothing,
    }
}

/// A device backend that can order one stream after another.
///
/// Implementations must not block the host, and must not panic when no
/// driver is present (return an error instead).
pub trait StreamSync {
    /// The backend's error.
    type Error;

    /// Makes `consumer` wait for all work submitted so far on `producer`,
    /// on `device`.
    ///
    /// # Errors
    ///
    /// When the driver call fails.
    fn order_after(
        &self,
        device: DLDevice,
        producer: DeviceStream,
        consumer: DeviceStream,
    ) -> Result<(), Self::Error>;

    /// Carries out a [`SyncAction`].
    ///
    /// # Errors
    ///
    /// As [`StreamSync::order_after`].
    fn apply(&self, device: DLDevice, action: SyncAction) -> Result<(), Self::Error> {
        match action {
            SyncAction::Nothing => Ok(()),
            SyncAction::Wait { producer, consumer } => self.order_after(device, producer, consumer),
        }
    }
}
