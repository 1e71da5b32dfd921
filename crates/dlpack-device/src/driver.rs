//! [`Driver`]: what a GPU driver must provide for the stream contract, and
//! nothing more. Implemented by `dlpack-cuda` (over cudarc's `sys` /
//! `result` levels) and by `dlpack-rocm` (over the HIP runtime); everything
//! else in this crate is written once over it.
//!
//! Handles (contexts, streams, events, device addresses) cross the trait as
//! integers: they are opaque and never dereferenced by this crate.

use dlpack_core::device::{MemoryKind, StreamKind};
use dlpack_core::ffi::DLDeviceType;

use crate::error::Error;

/// What the driver says about an address.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PointerInfo {
    /// The ordinal of the device that owns the memory.
    pub device_ordinal: i32,
    /// The kind of memory.
    pub memory: MemoryKind,
}

/// The calls a driver (CUDA's driver API, the HIP runtime) provides.
///
/// A *context* is what must be current on a thread for streams and events
/// to mean something: a `CUcontext` for CUDA, the device ordinal for HIP.
/// Every call but [`load`](Driver::load) may assume that `load` succeeded
/// before (the runtime calls it first).
///
/// # Safety
///
/// Implementations must call the driver functions the docs name, with the
/// documented semantics: in particular [`event_record`](Driver::event_record)
/// and [`stream_wait_event`](Driver::stream_wait_event) never block the host,
/// and a wait enqueued on an event is not changed by re-recording the event
/// (the event pool relies on it).
pub unsafe trait Driver: Copy + Default + std::fmt::Debug + Send + Sync + 'static {
    /// The driver's name in messages: `"CUDA"`, `"HIP"`.
    const NAME: &'static str;
    /// Which stream rules of the standard apply.
    const STREAM_KIND: StreamKind;
    /// The device type of each kind of memory of this driver.
    const DEVICE_TYPES: DeviceTypes;
    /// The stream that, on any thread of a context, covers every blocking
    /// stream of it, per-thread default streams included: CUDA's legacy
    /// default stream (`1`), HIP's null stream (`0`).
    const COVERING_STREAM: u64;
    /// The per-thread default stream's special value (`2` for both).
    const PER_THREAD_STREAM: u64 = 2;

    /// The one spelling of a raw stream value (CUDA reads `0` as `1`), so
    /// that "same stream" is decided on it.
    fn canonical_stream(raw: u64) -> u64 {
        raw
    }

    /// Loads and initialises the driver once.
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`] when the library cannot be loaded.
    fn load() -> Result<(), Error>;
    /// Whether the driver library can be loaded (cached).
    fn is_present() -> bool {
        Self::load().is_ok()
    }
    /// The number of devices.
    fn device_count() -> Result<i32, Error>;

    /// The context of device `ordinal` that raw handles are assumed to
    /// belong to (CUDA: the primary context, retained for the process).
    fn primary_context(ordinal: i32) -> Result<u64, Error>;
    /// The context current on this thread (`None`: none).
    fn current_context() -> Result<Option<u64>, Error>;
    /// Makes `ctx` current on this thread (`None`: unbinds, where the
    /// driver can).
    ///
    /// # Safety
    ///
    /// `ctx` is a live context.
    unsafe fn set_current_context(ctx: Option<u64>) -> Result<(), Error>;

    /// Creates an event with timing disabled, in the current context.
    fn event_create() -> Result<u64, Error>;
    /// Records `event` on `stream`.
    ///
    /// # Safety
    ///
    /// Both are live handles of the current context (or special streams).
    unsafe fn event_record(event: u64, stream: u64) -> Result<(), Error>;
    /// Makes `stream` wait for `event`'s last record, without blocking the
    /// host.
    ///
    /// # Safety
    ///
    /// As [`event_record`](Driver::event_record).
    unsafe fn stream_wait_event(stream: u64, event: u64) -> Result<(), Error>;
    /// Destroys `event`.
    ///
    /// # Safety
    ///
    /// `event` is live and not used afterwards.
    unsafe fn event_destroy(event: u64);

    /// Blocks the host until `stream`'s work is done.
    ///
    /// # Safety
    ///
    /// `stream` is live in the current context (or a special stream).
    unsafe fn stream_synchronize(stream: u64) -> Result<(), Error>;
    /// Creates a non-blocking stream in the current context.
    fn stream_create() -> Result<u64, Error>;
    /// Destroys a stream.
    ///
    /// # Safety
    ///
    /// `stream` is live and not used afterwards.
    unsafe fn stream_destroy(stream: u64) -> Result<(), Error>;

    /// The device and kind of memory of an address.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPointer`] when the driver does not know it.
    fn pointer_info(ptr: u64) -> Result<PointerInfo, Error>;

    /// Enqueues a copy of `dst.len()` bytes at device address `src` to
    /// `dst` on `stream` (the caller waits for it).
    ///
    /// # Safety
    ///
    /// `src..src + dst.len()` is live memory the driver can read, the
    /// stream is live, and `dst` stays valid until the copy is done.
    unsafe fn copy_to_host_async(dst: &mut [u8], src: u64, stream: u64) -> Result<(), Error>;
    /// Enqueues a copy of `src` to device address `dst` on `stream` (the
    /// caller waits for it).
    ///
    /// # Safety
    ///
    /// As [`copy_to_host_async`](Driver::copy_to_host_async), reversed.
    unsafe fn copy_from_host_async(dst: u64, src: &[u8], stream: u64) -> Result<(), Error>;
    /// Enqueues a device-to-device copy of `len` bytes on `stream`.
    ///
    /// # Safety
    ///
    /// Both ranges are live device memory of the current context.
    unsafe fn copy_device_async(dst: u64, src: u64, len: usize, stream: u64) -> Result<(), Error>;
    /// Enqueues setting `len` bytes at `ptr` to `value` on `stream`.
    ///
    /// # Safety
    ///
    /// `ptr..ptr + len` is live device memory; the stream is live.
    unsafe fn memset_async(ptr: u64, value: u8, len: usize, stream: u64) -> Result<(), Error>;
    /// Allocates `len` bytes (at least one) of device memory in the current
    /// context.
    fn alloc(len: usize) -> Result<u64, Error>;
    /// Frees `ptr` once the work submitted so far on `stream` is done:
    /// stream-ordered where the driver can (`cuMemFreeAsync`); otherwise
    /// (`hipFree`) the host waits for `stream`, then frees.
    ///
    /// # Safety
    ///
    /// `ptr` came from [`alloc`](Driver::alloc), is freed once, and every
    /// use of it is ordered before the current end of `stream`.
    unsafe fn free(ptr: u64, stream: u64) -> Result<(), Error>;
}

/// The device types of one driver's memory kinds (and so which device
/// types it accepts).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DeviceTypes {
    /// Device memory (`kDLCUDA`, `kDLROCM`).
    pub device: DLDeviceType,
    /// Managed memory (`kDLCUDAManaged`; ROCm has none: its device type).
    pub managed: DLDeviceType,
    /// Page-locked host memory (`kDLCUDAHost`, `kDLROCMHost`).
    pub host: DLDeviceType,
}

impl DeviceTypes {
    /// The device type of `memory`.
    pub const fn of(&self, memory: MemoryKind) -> DLDeviceType {
        match memory {
            MemoryKind::Device => self.device,
            MemoryKind::Managed => self.managed,
            MemoryKind::Host => self.host,
        }
    }

    /// The memory a device type claims, if it is one of this driver's.
    pub fn memory(&self, device_type: DLDeviceType) -> Option<MemoryKind> {
        if device_type == self.device {
            Some(MemoryKind::Device)
        } else if device_type == self.managed {
            Some(MemoryKind::Managed)
        } else if device_type == self.host {
            Some(MemoryKind::Host)
        } else {
            None
        }
    }
}
