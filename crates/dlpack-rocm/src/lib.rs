//! # dlpack-rocm
//!
//! The ROCm/HIP side of the DLPack stream contract: the [`Hip`]
//! [`Driver`](dlpack_device::Driver) of `dlpack-device`, which holds
//! everything written once for every driver (the event pool, held streams,
//! device views, ordered-free owners, host copies, `fulfil`), and
//! [`HipBuffer`], device memory owned by Rust. The API has the shape of
//! `dlpack-cuda`'s.
//!
//! By default `libamdhip64` is loaded at run time (`libamdhip64.so`, then
//! `.so.6`, then `.so.5`) through a small hand-written table of the HIP
//! functions this crate needs, each resolved once, so the crate builds with
//! no ROCm installed. With the `hip-sys` feature the same table points at
//! hip-sys's linked bindings instead (HIP headers needed at build time).
//!
//! ROCm's stream rules (the core's `decode_stream`): `None` and `0` are the
//! default stream; `1` and `2` are refused with a `ValueError`.
//!
//! Architecture invariant: **never blocks the host** (except the explicit
//! host copy, and a [`HipBuffer`]'s drop, because `hipFree` is not
//! stream-ordered); **never panics without a runtime**: every entry point
//! returns [`Error::DriverNotFound`] when `libamdhip64` is absent.
//!
//! ```
//! // With or without a HIP runtime: an error or success, never a panic.
//! match dlpack_rocm::Raw::order_after(0, 0x1000, 0x2000) {
//!     Ok(()) => println!("ordered"),
//!     Err(e) => println!("{e}"),
//! }
//! let stream = dlpack_rocm::Raw::held(2);
//! let elsewhere = std::thread::spawn(move || stream.here()).join().unwrap();
//! assert_eq!(elsewhere, 0); // another thread: the null stream covers it
//! assert_eq!(dlpack_rocm::Raw::consumer_stream_arg(0), Some(0));
//! assert_eq!(dlpack_rocm::Raw::consumer_stream_arg(2), None); // refused on ROCm
//! ```
//!
//! A producer's whole `__dlpack__` for a [`HipBuffer`] ([`fulfil`]):
//!
//! ```no_run
//! use dlpack_core::protocol::{plan_dlpack, DlpackRequest};
//! use dlpack_rocm::{fulfil, ExportLayout, HipBuffer, HipOwner};
//!
//! let owner = HipOwner::new(HipBuffer::<u8>::alloc(0, 0, 4)?);
//! let request = DlpackRequest { stream: Some(0), max_version: Some((1, 3)), ..Default::default() };
//! let plan = plan_dlpack(owner.device(), false, &request)?;
//! let tensor = fulfil(owner, ExportLayout::shape(&[2, 2]), &plan)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod buffer;
mod driver;
mod hip;

pub use buffer::HipBuffer;
pub use dlpack_device::{
    Error, ExportLayout, HeldStream, MemoryKind, PointerInfo, PoolStats, forget_pooled_events,
    fulfil,
};
pub use driver::Hip;
#[cfg(not(feature = "hip-sys"))]
pub use hip::LIBRARY_NAMES;

/// The raw-handle API on HIP (see [`dlpack_device::Raw`]): streams are
/// integers (`hipStream_t` values, `0` the null stream), devices are
/// ordinals.
///
/// ```no_run
/// let (producer, consumer): (u64, u64) = (0x5555_0000, 0x5555_1000);
/// dlpack_rocm::Raw::order_after(0, producer, consumer)?;
/// // Same stream: nothing to do, no runtime call.
/// dlpack_rocm::Raw::order_after(0, producer, producer)?;
/// # Ok::<(), dlpack_rocm::Error>(())
/// ```
pub type Raw = dlpack_device::Raw<Hip>;
/// The core's [`StreamSync`](dlpack_core::sync::StreamSync) seam on HIP.
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
/// RocmSync::new().apply(device, plan_sync(request, Some(DeviceStream::Handle(0x1000))))?;
/// // ROCm refuses 1 and 2 (a ValueError).
/// assert!(decode_stream(device.device_type, Some(1)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type RocmSync = dlpack_device::DeviceSync<Hip>;
/// A [`HipBuffer`] kept alive by an exported `kDLROCM` tensor, its free
/// ordered after the consumer's stream.
pub type HipOwner<T> = dlpack_device::Owner<HipBuffer<T>>;
/// A validated tensor of `T`s in HIP memory, on the device the runtime says
/// owns the pointer.
///
/// ```no_run
/// use dlpack_core::managed::ManagedTensorVersioned;
/// use dlpack_rocm::RocmTensorView;
///
/// # fn get(raw: *mut dlpack_core::ffi::DLManagedTensorVersioned) -> Result<(), dlpack_rocm::Error> {
/// let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
/// let view = RocmTensorView::<f32>::new(tensor.view())?;
/// println!("{} floats at {:#x} on {:?}", view.len(), view.device_ptr(), view.device());
/// # Ok(()) }
/// ```
pub type RocmTensorView<'a, T> = dlpack_device::DeviceTensorView<'a, Hip, T>;

/// The device runtime, re-exported so users name the same version.
pub use dlpack_device;
