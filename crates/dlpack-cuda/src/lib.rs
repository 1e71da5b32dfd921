//! # dlpack-cuda
//!
//! The CUDA side of the DLPack stream contract, on cudarc 0.19 (driver API,
//! loaded at run time): the [`Cuda`] [`Driver`](dlpack_device::Driver) of
//! `dlpack-device`, which holds everything written once for every driver
//! (the event pool, held streams, device views, ordered-free owners, host
//! copies, `fulfil`). This crate names them for CUDA.
//!
//! Layers, as cudarc's:
//!
//! - `sys` / `result` ([`Cuda`], module `driver`): the driver's C calls,
//!   checked, behind the [`Driver`](dlpack_device::Driver) trait.
//! - raw handles ([`Raw`]): streams and devices as integers, for frameworks
//!   not built on cudarc ([`Raw::order_after`], [`Raw::pointer_info`],
//!   [`Raw::copy_to_host`]); [`CudaSync`], the core's
//!   [`StreamSync`](dlpack_core::sync::StreamSync) seam.
//! - `safe` (cudarc's safe types): [`CudaOwner`] over a `CudaSlice` and
//!   [`fulfil`] (the whole `__dlpack__` plan: share with stream ordering,
//!   or copy with `IS_COPIED`), [`order_streams`], [`consumer_stream_arg`];
//!   [`CudaTensorView`]: received CUDA tensors as typed device views on the
//!   device the *pointer* belongs to.
//!
//! Architecture invariant: **never blocks the host** (except the explicit
//! host copy, where the host is the consumer, and the error path of a
//! deleter that could not order its free); **never panics without a
//! driver**: every entry point checks once (cached) that `libcuda.so` is
//! loadable and returns [`Error::DriverNotFound`] otherwise.
//!
//! ```
//! // Without a driver (or with one), this is an error or success, never a panic.
//! match dlpack_cuda::Raw::order_after(0, 0x1000, 0x2000) {
//!     Ok(()) => println!("ordered"),
//!     Err(e) => println!("{e}"),
//! }
//! // A stream value kept for later is resolved on the thread that received it.
//! let consumer = dlpack_cuda::Raw::held(2);
//! assert_eq!(consumer.here(), 2); // this thread's per-thread default stream
//! let elsewhere = std::thread::spawn(move || consumer.here()).join().unwrap();
//! assert_eq!(elsewhere, 1); // another thread: the legacy default stream covers it
//! assert_eq!(dlpack_cuda::Raw::held(0).here(), 1); // the NULL stream is the legacy one
//! assert_eq!(dlpack_cuda::Raw::consumer_stream_arg(0), Some(1));
//! ```
//!
//! A producer's whole `__dlpack__` for a cudarc buffer ([`fulfil`]):
//!
//! ```no_run
//! use dlpack_core::protocol::{plan_dlpack, DlpackRequest};
//! use dlpack_cuda::{fulfil, CudaOwner, ExportLayout};
//!
//! let ctx = cudarc::driver::CudaContext::new(0)?;
//! let stream = ctx.new_stream()?;
//! let owner = CudaOwner::new(stream.clone_htod(&[1u8, 2, 3, 4])?);
//! // The consumer asked for __dlpack__(stream=2, max_version=(1, 3)).
//! let request = DlpackRequest { stream: Some(2), max_version: Some((1, 3)), ..Default::default() };
//! let plan = plan_dlpack(owner.device(), false, &request)?;
//! let tensor = fulfil(owner, ExportLayout::shape(&[2, 2]), &plan)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod driver;
mod safe;

pub use dlpack_device::{
    Error, ExportLayout, HeldStream, MemoryKind, PointerInfo, PoolStats, forget_pooled_events,
    fulfil,
};
pub use driver::Cuda;
pub use safe::{CudaMemory, consumer_stream_arg, device_stream, order_streams};

/// The raw-handle API on CUDA (see [`dlpack_device::Raw`]): streams are
/// integers (`CUstream` values, `1` the legacy and `2` the per-thread
/// default stream; `0` reads as `1`), devices are ordinals.
///
/// ```no_run
/// // A framework's stream handles, e.g. from torch.cuda.current_stream().cuda_stream:
/// let (producer, consumer): (u64, u64) = (0x5555_0000, 0x5555_1000);
/// dlpack_cuda::Raw::order_after(0, producer, consumer)?;
/// // Same stream: nothing to do, and no driver call is made.
/// dlpack_cuda::Raw::order_after(0, producer, producer)?;
/// # Ok::<(), dlpack_cuda::Error>(())
/// ```
pub type Raw = dlpack_device::Raw<Cuda>;
/// The core's [`StreamSync`](dlpack_core::sync::StreamSync) seam on CUDA.
///
/// ```no_run
/// use dlpack_core::ffi::DLDevice;
/// use dlpack_core::protocol::{decode_stream, DeviceStream};
/// use dlpack_core::sync::{plan_sync, StreamSync};
/// use dlpack_cuda::CudaSync;
///
/// // The consumer called __dlpack__(stream=2) on data whose pending work is on 0x1000.
/// let device = DLDevice::cuda(0);
/// let request = decode_stream(device.device_type, Some(2))?;
/// let action = plan_sync(request, Some(DeviceStream::Handle(0x1000)));
/// CudaSync::new().apply(device, action)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type CudaSync = dlpack_device::DeviceSync<Cuda>;
/// A cudarc buffer kept alive by an exported `kDLCUDA` tensor, its free
/// ordered after the consumer's stream.
///
/// ```no_run
/// use dlpack_core::export::Export;
/// use dlpack_cuda::CudaOwner;
///
/// let ctx = cudarc::driver::CudaContext::new(0)?;
/// let stream = ctx.default_stream();
/// let slice = stream.clone_htod(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// let tensor = Export::new(CudaOwner::new(slice)).shape(&[2, 3]).versioned()?;
/// assert_eq!(tensor.view().device(), dlpack_core::ffi::DLDevice::cuda(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type CudaOwner<T> = dlpack_device::Owner<CudaMemory<T>>;
/// A validated tensor of `T`s in CUDA memory, on the device the driver says
/// owns the pointer.
///
/// ```no_run
/// use dlpack_core::managed::ManagedTensorVersioned;
/// use dlpack_cuda::CudaTensorView;
///
/// # fn get(raw: *mut dlpack_core::ffi::DLManagedTensorVersioned) -> Result<(), dlpack_cuda::Error> {
/// // `raw` came from a producer's capsule.
/// let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
/// let view = CudaTensorView::<f32>::new(tensor.view())?;
/// println!("{} floats at {:#x} on {:?}", view.len(), view.device_ptr(), view.device());
/// # Ok(()) }
/// ```
pub type CudaTensorView<'a, T> = dlpack_device::DeviceTensorView<'a, Cuda, T>;

/// cudarc, re-exported so users name the same version.
pub use cudarc;
/// The device runtime, re-exported so users name the same version.
pub use dlpack_device;
