//! # dlpack-rocm
//!
//! The ROCm/HIP side of the DLPack stream contract: the same surface as
//! `dlpack-cuda`, on the HIP runtime.
//!
//! By default `libamdhip64` is loaded at run time (`libamdhip64.so`, then
//! `.so.6`, then `.so.5`) through a small hand-written table of the HIP
//! functions this crate needs, each resolved once, so the crate builds with
//! no ROCm installed. With the `hip-sys` feature the same table points at
//! hip-sys's linked bindings instead (HIP headers needed at build time).
//!
//! Layers, from raw to safe:
//!
//! - [`raw`]: streams and devices as integers ([`raw::order_after`],
//!   [`raw::pointer_info`], [`raw::copy_to_host`]).
//! - [`RocmSync`]: the core's [`StreamSync`](dlpack_core::sync::StreamSync)
//!   seam: one pooled event recorded on the producer's stream and waited on
//!   by the consumer's, nothing for the same stream or `-1`.
//! - [`HipBuffer`] and [`fulfil`]: device memory exported as `kDLROCM`
//!   tensors, with the whole `__dlpack__` plan (share, or copy to the host
//!   with `IS_COPIED`).
//! - [`RocmTensorView`] and [`copy_to_host`]: received ROCm tensors as
//!   typed device views on the device the *pointer* belongs to.
//!
//! ROCm's stream rules (the core's `decode_stream`): `None` and `0` are the
//! default stream; `1` and `2` are refused with a `ValueError`.
//!
//! Architecture invariant: **never blocks the host** (except the explicit
//! host copy, and a [`HipBuffer`]'s drop, because `hipFree` is not
//! stream-ordered); **never panics without a runtime**: every entry point
//! returns [`Error::RuntimeNotFound`] when `libamdhip64` is absent.
//!
//! ```
//! // With or without a HIP runtime: an error or success, never a panic.
//! match dlpack_rocm::raw::order_after(0, 0x1000, 0x2000) {
//!     Ok(()) => println!("ordered"),
//!     Err(e) => println!("{e}"),
//! }
//! ```

mod buffer;
mod device;
mod error;
mod hip;
mod import;
pub mod raw;
mod sync;

pub use buffer::{ExportLayout, HipBuffer, fulfil};
pub use device::{MemoryKind, PointerInfo, PoolStats, forget_pooled_events};
pub use error::Error;
#[cfg(not(feature = "hip-sys"))]
pub use hip::LIBRARY_NAMES;
pub use hip::is_runtime_present;
pub use import::{RocmTensorView, copy_to_host};
pub use sync::{RocmSync, device_stream};
