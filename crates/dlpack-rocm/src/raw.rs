//! The raw-handle API: streams as integers (`hipStream_t` values, 0 the
//! null stream), devices as ordinals.
//!
//! Each call makes the device current for its duration (restoring the
//! thread's previous device), takes an event from the device's pool, and
//! never blocks the host — except [`copy_to_host`], whose caller is the
//! consumer.
//!
//! ```no_run
//! let (producer, consumer): (u64, u64) = (0x5555_0000, 0x5555_1000);
//! dlpack_rocm::raw::order_after(0, producer, consumer)?;
//! // Same stream: nothing to do, no runtime call.
//! dlpack_rocm::raw::order_after(0, producer, producer)?;
//! # Ok::<(), dlpack_rocm::Error>(())
//! ```

use std::ffi::c_int;

use crate::device::{self, PointerInfo, PoolStats};
use crate::error::Error;

fn ordinal(device: i32) -> Result<c_int, Error> {
    if device < 0 {
        Err(Error::InvalidOrdinal {
            ordinal: device.into(),
        })
    } else {
        Ok(device)
    }
}

/// The null stream (HIP's legacy default stream) of the current device.
pub const STREAM_NULL: u64 = 0;
/// `hipStreamPerThread`: the *calling thread's* per-thread default stream.
pub const STREAM_PER_THREAD: u64 = 2;

/// A stream value resolved on the thread that received it (the twin of
/// `dlpack_cuda::raw::HeldStream`).
///
/// `2` (`hipStreamPerThread`) names the per-thread default stream of the
/// thread that passes it to the runtime, so a value kept for later (the
/// stream a buffer's free must wait for) means another stream once a
/// deleter runs on another thread. A `HeldStream` keeps which thread's
/// stream was meant, and [`here`](HeldStream::here) names, on whatever
/// thread asks, a stream whose end covers every piece of work submitted to
/// it so far: the stream itself, or — for another thread's per-thread
/// default stream — the null stream, which waits for every blocking stream
/// of its device (per-thread default streams included). Handles of created
/// streams and `0` mean the same on every thread (with the device bound).
///
/// ```
/// use dlpack_rocm::raw::HeldStream;
///
/// let stream = HeldStream::received(2);
/// assert_eq!(stream.here(), 2);
/// let elsewhere = std::thread::spawn(move || stream.here()).join().unwrap();
/// assert_eq!(elsewhere, 0); // another thread: the null stream covers it
/// assert_eq!(HeldStream::received(0x7f00_1000).here(), 0x7f00_1000);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HeldStream {
    raw: u64,
    per_thread_of: Option<std::thread::ThreadId>,
}

impl HeldStream {
    /// Resolves `raw` (a `hipStream_t` value, `0` the null stream, `2`
    /// per-thread) on the calling thread, the one whose per-thread stream
    /// `2` names.
    pub fn received(raw: u64) -> Self {
        HeldStream {
            raw,
            per_thread_of: (raw == STREAM_PER_THREAD).then(|| std::thread::current().id()),
        }
    }

    /// The value as it was received.
    pub fn as_received(&self) -> u64 {
        self.raw
    }

    /// The handle that, on the calling thread, covers all work submitted
    /// to the held stream so far (see the type's docs).
    pub fn here(&self) -> u64 {
        match self.per_thread_of {
            Some(thread) if thread != std::thread::current().id() => STREAM_NULL,
            _ => self.raw,
        }
    }
}

/// Makes `consumer` wait for all work submitted so far on `producer`, both
/// streams of device `device_ordinal`: one `hipEventRecord` and one
/// `hipStreamWaitEvent` with a pooled event. Nothing (no runtime call) when
/// both are the same stream.
///
/// # Errors
///
/// [`Error::RuntimeNotFound`] without a HIP runtime, [`Error::InvalidOrdinal`],
/// or the failing call.
pub fn order_after(device_ordinal: i32, producer: u64, consumer: u64) -> Result<(), Error> {
    if producer == consumer {
        return Ok(());
    }
    let d = ordinal(device_ordinal)?;
    let _on = device::on_device(d)?;
    device::order_on_device(d, producer, consumer)
}

/// The device and kind of memory of an address (`hipPointerGetAttributes`,
/// read in the numbering of the loaded runtime's major version).
///
/// # Errors
///
/// [`Error::RuntimeNotFound`], or [`Error::UnknownPointer`].
pub fn pointer_info(ptr: u64) -> Result<PointerInfo, Error> {
    device::pointer_info(ptr)
}

/// The value a consumer working on HIP stream `raw` passes as
/// `__dlpack__(stream=...)`: the handle (0 for the null stream). `None` for
/// 1 and 2 (`hipStreamPerThread`), which the standard does not allow for
/// ROCm: such a consumer must pass another stream or synchronise itself.
///
/// ```
/// assert_eq!(dlpack_rocm::raw::consumer_stream_arg(0), Some(0));
/// assert_eq!(dlpack_rocm::raw::consumer_stream_arg(0x7f00_1000), Some(0x7f00_1000));
/// assert_eq!(dlpack_rocm::raw::consumer_stream_arg(2), None);
/// ```
pub const fn consumer_stream_arg(raw: u64) -> Option<i64> {
    match raw {
        1 | 2 => None,
        h => Some(h as i64),
    }
}

/// Copies `dst.len()` bytes at `src` (memory of device `device_ordinal`) to
/// `dst` on `producer` (ordered after its pending work), then waits for the
/// copy. Blocks the host — the host is the consumer here.
///
/// # Safety
///
/// `src..src + dst.len()` must be live HIP memory and `producer` a live
/// stream of that device (or 0).
///
/// # Errors
///
/// [`Error::RuntimeNotFound`], [`Error::InvalidOrdinal`], or the failing
/// call.
pub unsafe fn copy_to_host(
    device_ordinal: i32,
    src: u64,
    dst: &mut [u8],
    producer: u64,
) -> Result<(), Error> {
    let d = ordinal(device_ordinal)?;
    let _on = device::on_device(d)?;
    // SAFETY: the caller's contract; the device is current.
    unsafe { device::copy_to_host_blocking(dst, src, producer) }
}

/// What the event pool of device `device_ordinal` holds.
pub fn pool_stats(device_ordinal: i32) -> PoolStats {
    device::pool_stats(device_ordinal)
}

/// The number of HIP devices.
///
/// # Errors
///
/// [`Error::RuntimeNotFound`], or the failing `hipGetDeviceCount`
/// (`hipErrorNoDevice` without a device).
pub fn device_count() -> Result<i32, Error> {
    let api = &crate::hip::runtime()?.api;
    let mut n = 0;
    // SAFETY: valid out-pointer.
    crate::hip::check("hipGetDeviceCount", unsafe {
        (api.hipGetDeviceCount)(&mut n)
    })?;
    Ok(n)
}

/// Creates a non-blocking stream on device `device_ordinal`
/// (`hipStreamCreateWithFlags(hipStreamNonBlocking)`); destroy it with
/// [`stream_destroy`].
///
/// # Errors
///
/// [`Error::RuntimeNotFound`], [`Error::InvalidOrdinal`], or the failing
/// call.
pub fn stream_create(device_ordinal: i32) -> Result<u64, Error> {
    let d = ordinal(device_ordinal)?;
    let api = &crate::hip::runtime()?.api;
    let _on = device::on_device(d)?;
    let mut stream = std::ptr::null_mut();
    // SAFETY: valid out-pointer; the device is current.
    crate::hip::check("hipStreamCreateWithFlags", unsafe {
        (api.hipStreamCreateWithFlags)(&mut stream, 1)
    })?;
    Ok(stream as u64)
}

/// Destroys a stream made by [`stream_create`].
///
/// # Safety
///
/// `stream` is a live stream that nothing uses afterwards.
///
/// # Errors
///
/// [`Error::RuntimeNotFound`], or the failing call.
pub unsafe fn stream_destroy(stream: u64) -> Result<(), Error> {
    let api = &crate::hip::runtime()?.api;
    // SAFETY: the caller's contract.
    crate::hip::check("hipStreamDestroy", unsafe {
        (api.hipStreamDestroy)(device::handle(stream))
    })
}

/// Sets `len` bytes at `ptr` to `value`, enqueued on `stream`.
///
/// # Safety
///
/// `ptr..ptr + len` is live device memory of device `device_ordinal`, and
/// `stream` a live stream of it (or 0).
///
/// # Errors
///
/// [`Error::RuntimeNotFound`], [`Error::InvalidOrdinal`], or the failing
/// call.
pub unsafe fn memset_async(
    device_ordinal: i32,
    ptr: u64,
    value: u8,
    len: usize,
    stream: u64,
) -> Result<(), Error> {
    let d = ordinal(device_ordinal)?;
    let api = &crate::hip::runtime()?.api;
    let _on = device::on_device(d)?;
    // SAFETY: the caller's contract; the device is current.
    crate::hip::check("hipMemsetAsync", unsafe {
        (api.hipMemsetAsync)(
            device::handle(ptr),
            c_int::from(value),
            len,
            device::handle(stream),
        )
    })
}

/// Copies `src` to device address `dst`, enqueued on `stream`
/// (`hipMemcpyAsync`, host to device), then waits for the copy (`src` is
/// pageable host memory the caller may free on return): blocks the host.
///
/// # Safety
///
/// `dst..dst + src.len()` is live device memory of device
/// `device_ordinal`, and `stream` a live stream of it (or 0).
///
/// # Errors
///
/// [`Error::RuntimeNotFound`], [`Error::InvalidOrdinal`], or the failing
/// call.
pub unsafe fn copy_from_host(
    device_ordinal: i32,
    dst: u64,
    src: &[u8],
    stream: u64,
) -> Result<(), Error> {
    if src.is_empty() {
        return Ok(());
    }
    let d = ordinal(device_ordinal)?;
    let api = &crate::hip::runtime()?.api;
    let _on = device::on_device(d)?;
    // SAFETY: the caller's contract; `src` is readable for its length and
    // outlives the copy (waited for below); the device is current.
    unsafe {
        crate::hip::check(
            "hipMemcpyAsync",
            (api.hipMemcpyAsync)(
                device::handle(dst),
                src.as_ptr().cast(),
                src.len(),
                1,
                device::handle(stream),
            ),
        )?;
        crate::hip::check(
            "hipStreamSynchronize",
            (api.hipStreamSynchronize)(device::handle(stream)),
        )
    }
}
