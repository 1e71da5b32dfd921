//! [`HipBuffer`]: device memory owned by Rust (`hipMalloc`), the
//! [`DeviceMemory`] that `dlpack_device::Owner` exports as `kDLROCM`
//! tensors ([`HipOwner`](crate::HipOwner)).
//!
//! HIP's `hipFree` is not stream-ordered, so a buffer's drop waits for its
//! stream, then frees: the only place besides the host copy where this
//! crate blocks the host. The owner orders that stream after the
//! consumer's first (pooled event).

use std::marker::PhantomData;
use std::ops::Range;

use dlpack_core::Element;
use dlpack_device::{Bound, DeviceMemory, Driver, Error, HeldStream};

use crate::driver::Hip;

/// `len` elements of `T` in device memory (`hipMalloc`) of one device, with
/// the stream its pending work is on.
///
/// ```no_run
/// use dlpack_core::export::Export;
/// use dlpack_rocm::{HipBuffer, HipOwner};
///
/// let buffer = HipBuffer::<f32>::alloc(0, 0, 6)?; // device 0, null stream
/// let tensor = Export::new(HipOwner::new(buffer)).shape(&[2, 3]).versioned()?;
/// assert_eq!(tensor.view().device(), dlpack_core::ffi::DLDevice::rocm(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct HipBuffer<T> {
    ptr: u64,
    len: usize,
    device: i32,
    stream: HeldStream,
    marker: PhantomData<T>,
}

// SAFETY: the buffer is plain device memory addressed by an integer; the
// runtime may be called from any thread (the drop binds the device).
unsafe impl<T: Send> Send for HipBuffer<T> {}
// SAFETY: shared references only read the handle values.
unsafe impl<T: Sync> Sync for HipBuffer<T> {}

impl<T: Element> HipBuffer<T> {
    /// Allocates `len` elements on device `device`, whose work will be
    /// submitted to `stream` (a `hipStream_t` of that device, 0, or
    /// `hipStreamPerThread` — resolved here: the calling thread's).
    ///
    /// # Errors
    ///
    /// [`Error::DriverNotFound`], [`Error::InvalidOrdinal`], or the failing
    /// `hipMalloc`.
    pub fn alloc(device: i32, stream: u64, len: usize) -> Result<Self, Error> {
        let _on = Bound::<Hip>::device(device)?;
        let bytes = len.checked_mul(size_of::<T>()).ok_or(Error::Driver {
            call: "hipMalloc",
            code: 2,
            name: "hipErrorOutOfMemory".into(),
            invalid_device: false,
        })?;
        Ok(HipBuffer {
            ptr: Hip::alloc(bytes)?,
            len,
            device,
            stream: HeldStream::received::<Hip>(stream),
            marker: PhantomData,
        })
    }

    /// The device address of the first element.
    pub fn device_ptr(&self) -> u64 {
        self.ptr
    }
}

// SAFETY: the allocation is owned by the buffer until its drop, which binds
// the device and frees it after its stream (as the dropping thread names it)
// is done; it does not move with the buffer.
unsafe impl<T: Element> DeviceMemory for HipBuffer<T> {
    type Driver = Hip;
    type Elem = T;

    fn context(&self) -> u64 {
        self.device as u64
    }

    fn ordinal(&self) -> i32 {
        self.device
    }

    fn base(&self) -> u64 {
        self.ptr
    }

    fn len(&self) -> usize {
        self.len
    }

    /// The stream the buffer's work is on, as the calling thread names it
    /// (another thread's per-thread default stream: the null stream, which
    /// covers it).
    fn stream(&self) -> u64 {
        self.stream.here()
    }

    fn copy_range(&self, range: Range<usize>) -> Result<Self, Error> {
        let copy = HipBuffer::<T>::alloc(self.device, self.stream.here(), range.len())?;
        let _on = Bound::<Hip>::device(self.device)?;
        // SAFETY: both ranges are inside live allocations of this device
        // (`range` was checked by the owner); the stream is the buffer's.
        unsafe {
            Hip::copy_device_async(
                copy.ptr,
                self.ptr + (range.start * size_of::<T>()) as u64,
                range.len() * size_of::<T>(),
                self.stream.here(),
            )?;
        }
        Ok(copy)
    }
}

impl<T> Drop for HipBuffer<T> {
    fn drop(&mut self) {
        if self.ptr == 0 {
            return;
        }
        let Ok(_on) = Bound::<Hip>::device(self.device) else {
            return; // leak rather than free on the wrong device
        };
        // SAFETY: the stream is live (the buffer's contract); the pointer is
        // the one hipMalloc returned, freed once (nothing when the wait
        // failed: leaked rather than freed while in use).
        let _ = unsafe { Hip::free(self.ptr, self.stream.here()) };
    }
}
