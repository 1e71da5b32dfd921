//! # dlpack-cuda
//!
//! The CUDA side of the DLPack stream contract, on cudarc 0.19 (driver API,
//! loaded at run time).
//!
//! The core ([`dlpack_core::protocol`], [`dlpack_core::sync`]) decides
//! *whether* and *between which streams* to synchronise; this crate decides
//! *how*: record an event on the producer's stream and make the consumer's
//! stream wait on it, with events taken from a per-context pool (created
//! with `CU_EVENT_DISABLE_TIMING`, returned as soon as the wait is
//! enqueued), so a warm exchange costs exactly one `cuEventRecord` and one
//! `cuStreamWaitEvent`, and nothing at all for the same stream or `-1`.
//!
//! Layers, from raw to safe:
//!
//! - [`raw`]: streams and devices as integers, for frameworks not built on
//!   cudarc ([`raw::order_after`], [`raw::pointer_info`],
//!   [`raw::copy_to_host`]).
//! - [`CudaSync`]: the core's [`StreamSync`](dlpack_core::sync::StreamSync)
//!   seam, plus [`CudaSync::order_streams`] for cudarc streams;
//!   [`consumer_stream_arg`] for the consumer's `__dlpack__(stream=...)`.
//! - [`CudaOwner`] and [`fulfil`]: cudarc buffers exported as `kDLCUDA`
//!   tensors (the whole `__dlpack__` plan: share with stream ordering, or copy
//!   to the host with `IS_COPIED`).
//! - [`CudaTensorView`] and [`copy_to_host`]: received CUDA tensors as typed
//!   device views on the device the *pointer* belongs to.
//!
//! Architecture invariant: **never blocks the host** (except the explicit
//! host copy, where the host is the consumer, and the error path of a
//! deleter that could not order its free); **never panics without a
//! driver**: every entry point checks once (cached) that `libcuda.so` is
//! loadable and returns [`Error::DriverNotFound`] otherwise.
//!
//! ```
//! // Without a driver (or with one), this is an error or success, never a panic.
//! match dlpack_cuda::raw::order_after(0, 0x1000, 0x2000) {
//!     Ok(()) => println!("ordered"),
//!     Err(e) => println!("{e}"),
//! }
//! ```

mod driver;
mod error;
mod export;
mod import;
pub mod raw;
mod sync;

pub use driver::{MemoryKind, PointerInfo, PoolStats, forget_pooled_events, is_driver_present};
pub use error::Error;
pub use export::{CudaOwner, ExportLayout, fulfil};
pub use import::{CudaTensorView, copy_to_host};
pub use sync::{CudaSync, consumer_stream_arg, device_stream};

/// cudarc, re-exported so users name the same version.
pub use cudarc;
