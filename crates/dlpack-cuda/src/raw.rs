//! The raw-handle API, for frameworks that are not built on cudarc: streams
//! are integers (`CUstream`/`cudaStream_t` values, with `1` the legacy and
//! `2` the per-thread default stream; `0` is read as the legacy default
//! stream, as the driver does), devices are ordinals.
//!
//! Each call binds the device's primary context for its duration (and
//! restores the thread's previous context), takes an event from the
//! context's pool, and never blocks the host — except [`copy_to_host`],
//! whose caller is the consumer.
//!
//! ```no_run
//! // A framework's stream handles, e.g. from torch.cuda.current_stream().cuda_stream:
//! let (producer, consumer): (u64, u64) = (0x5555_0000, 0x5555_1000);
//! dlpack_cuda::raw::order_after(0, producer, consumer)?;
//! // Same stream: nothing to do, and no driver call is made.
//! dlpack_cuda::raw::order_after(0, producer, producer)?;
//! # Ok::<(), dlpack_cuda::Error>(())
//! ```

use dlpack_core::device::StreamKind;
use dlpack_core::protocol::DeviceStream;

use crate::driver::{self, PointerInfo, PoolStats};
use crate::error::Error;

/// The raw handle with `0` (the NULL stream, legacy by default in the
/// driver API) folded into `1`, so that "same stream" is decided on one
/// spelling.
pub const fn canonical_stream(raw: u64) -> u64 {
    if raw == 0 { 1 } else { raw }
}

/// `CU_STREAM_LEGACY`: the legacy default stream of the current context.
pub const STREAM_LEGACY: u64 = 1;
/// `CU_STREAM_PER_THREAD`: the *calling thread's* per-thread default stream.
pub const STREAM_PER_THREAD: u64 = 2;

/// A stream value resolved on the thread that received it.
///
/// `2` (`CU_STREAM_PER_THREAD`) names the per-thread default stream of the
/// thread that passes it to the driver, so a value kept for later (the
/// consumer's stream an exported tensor's free must wait for) means another
/// stream once a deleter runs it on another thread. A `HeldStream` keeps
/// which thread's stream was meant, and [`here`](HeldStream::here) names,
/// on whatever thread asks, a stream whose end covers every piece of work
/// submitted to it so far: the stream itself, or — for another thread's
/// per-thread default stream, which no handle names from here — the legacy
/// default stream, which waits for every blocking stream of its context
/// (per-thread default streams included) before anything enqueued on it.
/// Handles of created streams and `1` mean the same on every thread.
///
/// ```
/// use dlpack_cuda::raw::HeldStream;
///
/// let consumer = HeldStream::received(2);
/// assert_eq!(consumer.here(), 2); // the same thread: its own per-thread stream
/// let elsewhere = std::thread::spawn(move || consumer.here()).join().unwrap();
/// assert_eq!(elsewhere, 1); // another thread: the legacy default stream covers it
/// assert_eq!(HeldStream::received(0).here(), 1); // the NULL stream is the legacy one
/// assert_eq!(HeldStream::received(0x7f00_1000).here(), 0x7f00_1000);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HeldStream {
    raw: u64,
    per_thread_of: Option<std::thread::ThreadId>,
}

impl HeldStream {
    /// Resolves `raw` (a `CUstream` value, `0`/`1` legacy, `2` per-thread)
    /// on the calling thread, the one whose per-thread stream `2` names.
    pub fn received(raw: u64) -> Self {
        let raw = canonical_stream(raw);
        HeldStream {
            raw,
            per_thread_of: (raw == STREAM_PER_THREAD).then(|| std::thread::current().id()),
        }
    }

    /// The value as it was received (canonical: `0` reads as `1`).
    pub fn as_received(&self) -> u64 {
        self.raw
    }

    /// The handle that, on the calling thread, covers all work submitted
    /// to the held stream so far (see the type's docs).
    pub fn here(&self) -> u64 {
        match self.per_thread_of {
            Some(thread) if thread != std::thread::current().id() => STREAM_LEGACY,
            _ => self.raw,
        }
    }
}

/// Makes `consumer` wait for all work submitted so far on `producer`, both
/// streams of device `device_ordinal`: one `cuEventRecord` on the producer
/// and one `cuStreamWaitEvent` on the consumer, with a pooled event. Nothing
/// (no driver call at all) when both name the same stream.
///
/// # Errors
///
/// [`Error::DriverNotFound`] without a driver, [`Error::InvalidOrdinal`],
/// or the failing driver call.
pub fn order_after(device_ordinal: i32, producer: u64, consumer: u64) -> Result<(), Error> {
    let (producer, consumer) = (canonical_stream(producer), canonical_stream(consumer));
    if producer == consumer {
        return Ok(());
    }
    if device_ordinal < 0 {
        return Err(Error::InvalidOrdinal {
            ordinal: device_ordinal.into(),
        });
    }
    let ctx = driver::primary_context(device_ordinal)?;
    let _bound = driver::bind(ctx)?;
    driver::order_in_context(
        ctx,
        driver::stream_handle(producer),
        driver::stream_handle(consumer),
    )
}

/// The device and kind of memory of a device address, as the driver
/// reports them (`cuPointerGetAttribute`).
///
/// # Errors
///
/// [`Error::DriverNotFound`], or [`Error::UnknownPointer`] for addresses the
/// driver does not know.
pub fn pointer_info(ptr: u64) -> Result<PointerInfo, Error> {
    driver::pointer_info(ptr)
}

/// The value a consumer passes as `__dlpack__(stream=...)` for its stream
/// `raw`: the handle itself, and `1` (legacy default) for the NULL stream —
/// never `0`, which the standard forbids for CUDA.
///
/// ```
/// assert_eq!(dlpack_cuda::raw::consumer_stream_arg(0), 1);
/// assert_eq!(dlpack_cuda::raw::consumer_stream_arg(2), 2);
/// assert_eq!(dlpack_cuda::raw::consumer_stream_arg(0x7f00_1000), 0x7f00_1000);
/// ```
pub const fn consumer_stream_arg(raw: u64) -> i64 {
    match DeviceStream::from_raw(StreamKind::Cuda, raw) {
        Some(stream) => stream.as_dlpack_arg(),
        None => 1,
    }
}

/// Copies `dst.len()` bytes at device address `src` (memory of device
/// `device_ordinal`) to `dst`, enqueued on `producer` (so it is ordered
/// after the producer's pending work), then waits for the copy. This blocks
/// the host — the host is the consumer here.
///
/// # Safety
///
/// `src..src + dst.len()` must be live memory that the driver can read
/// (device, managed or page-locked host memory), and `producer` a live
/// stream of that device (or 0/1/2).
///
/// # Errors
///
/// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing
/// driver call.
pub unsafe fn copy_to_host(
    device_ordinal: i32,
    src: u64,
    dst: &mut [u8],
    producer: u64,
) -> Result<(), Error> {
    if device_ordinal < 0 {
        return Err(Error::InvalidOrdinal {
            ordinal: device_ordinal.into(),
        });
    }
    let ctx = driver::primary_context(device_ordinal)?;
    let _bound = driver::bind(ctx)?;
    // SAFETY: the caller's contract; the device's context is current.
    unsafe { driver::copy_to_host_blocking(dst, src, driver::stream_handle(producer)) }
}

/// What the event pool of device `device_ordinal`'s primary context holds.
///
/// # Errors
///
/// [`Error::DriverNotFound`] or a failing driver call.
pub fn pool_stats(device_ordinal: i32) -> Result<PoolStats, Error> {
    if device_ordinal < 0 {
        return Err(Error::InvalidOrdinal {
            ordinal: device_ordinal.into(),
        });
    }
    Ok(driver::pool_stats(driver::primary_context(device_ordinal)?))
}

/// Binds the primary context of `device_ordinal` for the guard's lifetime.
fn on_device(device_ordinal: i32) -> Result<driver::Bound, Error> {
    if device_ordinal < 0 {
        return Err(Error::InvalidOrdinal {
            ordinal: device_ordinal.into(),
        });
    }
    let ctx = driver::primary_context(device_ordinal)?;
    driver::bind(ctx)
}

/// Creates a non-blocking stream on device `device_ordinal`
/// (`cuStreamCreate(CU_STREAM_NON_BLOCKING)`); destroy it with
/// [`stream_destroy`]. (The same helper as `dlpack_rocm::raw::stream_create`,
/// for frameworks and tests that handle streams as integers.)
///
/// # Errors
///
/// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing call.
pub fn stream_create(device_ordinal: i32) -> Result<u64, Error> {
    let _bound = on_device(device_ordinal)?;
    let stream = cudarc::driver::result::stream::create(
        cudarc::driver::result::stream::StreamKind::NonBlocking,
    )
    .map_err(|e| Error::driver("cuStreamCreate", e))?;
    Ok(driver::stream_raw(stream))
}

/// Destroys a stream made by [`stream_create`].
///
/// # Safety
///
/// `stream` is a live stream of device `device_ordinal` that nothing uses
/// afterwards.
///
/// # Errors
///
/// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing call.
pub unsafe fn stream_destroy(device_ordinal: i32, stream: u64) -> Result<(), Error> {
    let _bound = on_device(device_ordinal)?;
    // SAFETY: the caller's contract.
    unsafe { cudarc::driver::result::stream::destroy(driver::stream_handle(stream)) }
        .map_err(|e| Error::driver("cuStreamDestroy_v2", e))
}

/// Allocates `len` bytes of device memory on device `device_ordinal`
/// (`cuMemAlloc_v2`); free it with [`free_async`].
///
/// # Errors
///
/// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing call.
pub fn alloc(device_ordinal: i32, len: usize) -> Result<u64, Error> {
    let _bound = on_device(device_ordinal)?;
    // SAFETY: a plain allocation; the context is current.
    unsafe { cudarc::driver::result::malloc_sync(len.max(1)) }
        .map_err(|e| Error::driver("cuMemAlloc_v2", e))
}

/// Frees `ptr` (from [`alloc`]) once the work submitted so far on `stream`
/// is done (`cuMemFreeAsync`): stream-ordered, the host does not wait.
///
/// # Safety
///
/// `ptr` came from [`alloc`] on this device and is freed once; every use of
/// it is ordered before the current end of `stream`.
///
/// # Errors
///
/// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing call.
pub unsafe fn free_async(device_ordinal: i32, ptr: u64, stream: u64) -> Result<(), Error> {
    let _bound = on_device(device_ordinal)?;
    // SAFETY: the caller's contract.
    unsafe { cudarc::driver::result::free_async(ptr, driver::stream_handle(stream)) }
        .map_err(|e| Error::driver("cuMemFreeAsync", e))
}

/// Sets `len` bytes at `ptr` to `value`, enqueued on `stream`
/// (`cuMemsetD8Async`).
///
/// # Safety
///
/// `ptr..ptr + len` is live device memory of device `device_ordinal`, and
/// `stream` a live stream of it (or 1/2).
///
/// # Errors
///
/// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing call.
pub unsafe fn memset_async(
    device_ordinal: i32,
    ptr: u64,
    value: u8,
    len: usize,
    stream: u64,
) -> Result<(), Error> {
    let _bound = on_device(device_ordinal)?;
    // SAFETY: the caller's contract; the context is current.
    unsafe {
        cudarc::driver::result::memset_d8_async(ptr, value, len, driver::stream_handle(stream))
    }
    .map_err(|e| Error::driver("cuMemsetD8Async", e))
}

/// Copies `src` to device address `dst`, enqueued on `stream`
/// (`cuMemcpyHtoDAsync_v2`), then waits for the copy (`src` is pageable
/// host memory that the caller may free on return): blocks the host.
///
/// # Safety
///
/// `dst..dst + src.len()` is live device memory of device
/// `device_ordinal`, and `stream` a live stream of it (or 1/2).
///
/// # Errors
///
/// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing call.
pub unsafe fn copy_from_host(
    device_ordinal: i32,
    dst: u64,
    src: &[u8],
    stream: u64,
) -> Result<(), Error> {
    if src.is_empty() {
        return Ok(());
    }
    let _bound = on_device(device_ordinal)?;
    let handle = driver::stream_handle(stream);
    // SAFETY: the caller's contract; `src` is readable for its length and
    // outlives the copy (we wait for it below).
    unsafe {
        cudarc::driver::result::memcpy_htod_async(dst, src, handle)
            .map_err(|e| Error::driver("cuMemcpyHtoDAsync_v2", e))?;
        cudarc::driver::result::stream::synchronize(handle)
            .map_err(|e| Error::driver("cuStreamSynchronize", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_values_for_the_consumer() {
        #[rustfmt::skip]
        let rows: &[(u64, u64, i64)] = &[
            // raw,   canonical, __dlpack__(stream=)
            (0,       1,         1),
            (1,       1,         1),
            (2,       2,         2),
            (0x1000,  0x1000,    0x1000),
        ];
        for &(raw, canonical, arg) in rows {
            assert_eq!(canonical_stream(raw), canonical, "canonical {raw}");
            assert_eq!(consumer_stream_arg(raw), arg, "arg {raw}");
        }
    }

    #[test]
    fn same_stream_needs_no_driver() {
        // Works with or without a driver: no call is made.
        assert!(order_after(0, 0x1000, 0x1000).is_ok());
        assert!(order_after(0, 0, 1).is_ok());
    }
}
