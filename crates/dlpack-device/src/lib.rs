//! # dlpack-device
//!
//! The device side of the DLPack stream contract, written once over a small
//! [`Driver`] trait that `dlpack-cuda` (cudarc) and `dlpack-rocm` (HIP)
//! implement. The core ([`dlpack_core::protocol`], [`dlpack_core::sync`])
//! decides *whether* and *between which streams* to synchronise; this crate
//! decides *how*, for any driver:
//!
//! - [`Raw`]: streams and devices as integers, for frameworks not built on
//!   a driver crate: [`Raw::order_after`] (one pooled event: one record on
//!   the producer's stream, one wait on the consumer's, nothing for the
//!   same stream), [`Raw::pointer_info`], [`Raw::copy_to_host`],
//!   [`Raw::pool_stats`]. The event pool keeps one list per context, of
//!   events created once with timing disabled and returned as soon as the
//!   wait is enqueued: a warm exchange creates no event and never blocks
//!   the host.
//! - [`HeldStream`]: a stream value resolved on the thread that received
//!   it (the per-thread default stream is that thread's).
//! - [`DeviceSync`]: the core's [`StreamSync`](dlpack_core::sync::StreamSync)
//!   seam.
//! - [`DeviceTensorView`] and [`copy_to_host`]: received tensors as typed
//!   device views on the device the *pointer* belongs to, and host copies
//!   with `IS_COPIED`.
//! - [`Owner`] and [`fulfil`]: device memory ([`DeviceMemory`]) exported
//!   with its free ordered after the consumer's stream, and the whole
//!   `__dlpack__` plan (share with stream ordering, or copy).
//! - [`Runtime`] / [`runtime`]: one driver's [`Raw`] API as a trait object,
//!   for a registry that picks the driver from a device type at run time.
//!
//! Architecture invariant: no driver of its own (every call goes through
//! [`Driver`]), no Python; never blocks the host except for an explicit
//! host copy (the host is the consumer) and drivers whose free is not
//! stream-ordered; never panics without a driver — every entry point
//! loads the driver first and returns [`Error::DriverNotFound`].

mod driver;
mod dynamic;
mod error;
mod owner;
mod runtime;
mod stream;
mod sync;
mod view;

pub use dlpack_core::device::MemoryKind;
pub use driver::{DeviceTypes, Driver, PointerInfo};
pub use dynamic::{Runtime, runtime};
pub use error::Error;
pub use owner::{DeviceMemory, ExportLayout, Owner, fulfil};
pub use runtime::{Bound, PoolStats, Raw, forget_pooled_events, order_in_context};
pub use stream::{HeldStream, consumer_stream_arg, device_stream};
pub use sync::DeviceSync;
pub use view::{DeviceTensorView, copy_to_host};
