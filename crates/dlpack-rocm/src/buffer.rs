//! [`HipBuffer`]: device memory owned by Rust and exported as `kDLROCM`
//! tensors, and the whole of a producer's `__dlpack__` for it ([`fulfil`]).
//!
//! HIP's `hipFree` is not stream-ordered, so a buffer's drop first makes
//! its stream wait for the consumer's stream (pooled event), then waits for
//! its stream and frees: the only place besides the host copy where this
//! crate blocks the host.
//!
//! Streams are kept as [`HeldStream`]s, resolved when they are received:
//! the drop may run on any thread, where `2` (`hipStreamPerThread`) would
//! name that thread's per-thread default stream, not the one meant.

use std::marker::PhantomData;
use std::ops::Range;

use dlpack_core::Element;
use dlpack_core::export::{Export, Memory, TensorOwner};
use dlpack_core::ffi::{DLDevice, DLPACK_FLAG_BITMASK_IS_COPIED, DLPACK_FLAG_BITMASK_READ_ONLY};
use dlpack_core::managed::AnyManagedTensor;
use dlpack_core::protocol::{Abi, DeviceStream, DlpackPlan, StreamRequest, Transfer};
use dlpack_core::sync::{StreamSync, plan_sync};

use crate::device::{self, handle};
use crate::error::Error;
use crate::hip;
use crate::raw::HeldStream;
use crate::sync::{RocmSync, device_stream};

/// `len` elements of `T` in device memory (`hipMalloc`) of one device, with
/// the stream its pending work is on.
///
/// ```no_run
/// use dlpack_core::export::Export;
/// use dlpack_rocm::HipBuffer;
///
/// let buffer = HipBuffer::<f32>::alloc(0, 0, 6)?; // device 0, null stream
/// let tensor = Export::new(buffer).shape(&[2, 3]).versioned()?;
/// assert_eq!(tensor.view().device(), dlpack_core::ffi::DLDevice::rocm(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct HipBuffer<T> {
    ptr: u64,
    range: Range<usize>,
    device: i32,
    stream: HeldStream,
    release_after: Option<HeldStream>,
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
    /// [`Error::RuntimeNotFound`], [`Error::InvalidOrdinal`], or the failing
    /// `hipMalloc`.
    pub fn alloc(device: i32, stream: u64, len: usize) -> Result<Self, Error> {
        if device < 0 {
            return Err(Error::InvalidOrdinal {
                ordinal: device.into(),
            });
        }
        let api = &hip::runtime()?.api;
        let _on = device::on_device(device)?;
        let mut ptr = std::ptr::null_mut();
        let bytes = len.checked_mul(size_of::<T>()).ok_or(Error::Hip {
            call: "hipMalloc",
            code: 2,
        })?;
        // SAFETY: valid out-pointer; the device is current.
        hip::check("hipMalloc", unsafe { (api.hipMalloc)(&mut ptr, bytes) })?;
        Ok(HipBuffer {
            ptr: ptr as u64,
            range: 0..len,
            device,
            stream: HeldStream::received(stream),
            release_after: None,
            marker: PhantomData,
        })
    }

    /// The device address of the first element of the (narrowed) range.
    pub fn device_ptr(&self) -> u64 {
        self.ptr + (self.range.start * size_of::<T>()) as u64
    }

    /// The number of elements in the range.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// `(kDLROCM, ordinal)`.
    pub fn device(&self) -> DLDevice {
        DLDevice::rocm(self.device)
    }

    /// The raw stream the buffer's work is on, as the calling thread names
    /// it (another thread's per-thread default stream: the null stream,
    /// which covers it).
    pub fn stream(&self) -> u64 {
        self.stream.here()
    }

    /// Narrows the exported memory to `range` (in elements) of the current
    /// range (a view that keeps the whole allocation alive).
    ///
    /// # Errors
    ///
    /// [`dlpack_core::Error::OutOfBounds`] when `range` is not inside.
    pub fn range(mut self, range: Range<usize>) -> Result<Self, Error> {
        let len = self.range.len();
        if range.start > range.end || range.end > len {
            let size = size_of::<T>() as i128;
            return Err(Error::Core(dlpack_core::Error::OutOfBounds {
                start: range.start as i128 * size,
                end: range.end as i128 * size,
                len: len * size_of::<T>(),
            }));
        }
        self.range = self.range.start + range.start..self.range.start + range.end;
        Ok(self)
    }

    /// Orders the free after `consumer`'s work (set by [`fulfil`] from the
    /// consumer's `stream`), resolved on the calling thread (see
    /// [`HeldStream`]).
    pub fn release_after(mut self, consumer: DeviceStream) -> Self {
        let consumer = HeldStream::received(consumer.as_raw());
        self.release_after = (consumer != self.stream).then_some(consumer);
        self
    }

    fn byte_len(&self) -> usize {
        self.range.len() * size_of::<T>()
    }
}

// SAFETY: the device allocation is owned by the buffer until its drop and
// does not move with it; the range is inside it (checked in `range`); T is
// 'static and Send through Element.
unsafe impl<T: Element> TensorOwner for HipBuffer<T> {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: std::ptr::with_exposed_provenance_mut(self.device_ptr() as usize),
            len: self.byte_len(),
            device: self.device(),
            dtype: Some(T::DTYPE),
            read_only: false,
        }
    }
}

impl<T> Drop for HipBuffer<T> {
    fn drop(&mut self) {
        if self.ptr == 0 {
            return;
        }
        let Ok(rt) = hip::runtime() else {
            return; // cannot happen: the buffer was allocated through it
        };
        let Ok(_on) = device::on_device(self.device) else {
            return; // leak rather than free on the wrong device
        };
        let stream = self.stream.here();
        if let Some(consumer) = self.release_after.map(|c| c.here())
            && consumer != stream
            && device::order_on_device(self.device, consumer, stream).is_err()
        {
            // SAFETY: the consumer's stream must outlive the tensor.
            let waited = unsafe { (rt.api.hipStreamSynchronize)(handle(consumer)) };
            if waited != 0 {
                return; // leak rather than free memory still in use
            }
        }
        // SAFETY: the stream is live (the buffer's contract); hipFree gets
        // the pointer hipMalloc returned, once.
        unsafe {
            if (rt.api.hipStreamSynchronize)(handle(stream)) == 0 {
                let _ = (rt.api.hipFree)(handle(self.ptr));
            }
        }
    }
}

/// How an exported tensor describes its memory: extents, strides (in
/// elements; compact row-major when `None`) and a byte offset from the
/// owner's first byte.
#[derive(Copy, Clone, Debug, Default)]
pub struct ExportLayout<'a> {
    /// The extents (`None`: 1-D over the whole owner).
    pub shape: Option<&'a [i64]>,
    /// The strides in elements.
    pub strides: Option<&'a [i64]>,
    /// Bytes from the owner's base to the first element.
    pub byte_offset: u64,
}

impl<'a> ExportLayout<'a> {
    /// A compact row-major layout of `shape`.
    pub const fn shape(shape: &'a [i64]) -> Self {
        ExportLayout {
            shape: Some(shape),
            strides: None,
            byte_offset: 0,
        }
    }

    fn apply<O: TensorOwner>(&self, mut export: Export<'a, O>) -> Export<'a, O> {
        if let Some(shape) = self.shape {
            export = export.shape(shape);
        }
        if let Some(strides) = self.strides {
            export = export.strides(strides);
        }
        export.byte_offset(self.byte_offset)
    }
}

fn build<O: TensorOwner>(export: Export<'_, O>, abi: Abi) -> Result<AnyManagedTensor, Error> {
    Ok(match abi {
        Abi::Versioned => export.versioned()?.into(),
        Abi::Legacy => export.legacy()?.into(),
    })
}

/// Carries out a producer's [`DlpackPlan`] for a [`HipBuffer`]: share (the
/// consumer's stream ordered after the buffer's, and the free after the
/// consumer's), or copy to `(kDLCPU, 0)` (on the buffer's stream, then
/// waited for; exported with `IS_COPIED`).
///
/// ```no_run
/// use dlpack_core::protocol::{plan_dlpack, DlpackRequest};
/// use dlpack_rocm::{fulfil, ExportLayout, HipBuffer};
///
/// let buffer = HipBuffer::<u8>::alloc(0, 0, 4)?;
/// let request = DlpackRequest { stream: Some(0), max_version: Some((1, 3)), ..Default::default() };
/// let plan = plan_dlpack(buffer.device(), false, &request)?;
/// let tensor = fulfil(buffer, ExportLayout::shape(&[2, 2]), &plan)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// Runtime failures, [`Error::UnsupportedDevice`] for other targets
/// (including `copy=True` on the device), and the core's export errors.
pub fn fulfil<T: Element>(
    buffer: HipBuffer<T>,
    layout: ExportLayout<'_>,
    plan: &DlpackPlan,
) -> Result<AnyManagedTensor, Error> {
    match plan.transfer {
        Transfer::Share { device } if device == buffer.device() => {
            let producer = device_stream(buffer.stream());
            RocmSync.apply(buffer.device(), plan_sync(plan.stream, Some(producer)))?;
            let buffer = match plan.stream {
                StreamRequest::Sync(consumer) => buffer.release_after(consumer),
                _ => buffer,
            };
            let export = layout
                .apply(Export::new(buffer))
                .read_only(plan.flags & DLPACK_FLAG_BITMASK_READ_ONLY != 0)
                .copied(plan.flags & DLPACK_FLAG_BITMASK_IS_COPIED != 0);
            build(export, plan.abi)
        }
        Transfer::Copy { device } if device == DLDevice::cpu() => {
            let mut host = dlpack_core::export::HostCopy::zeroed(buffer.byte_len());
            // SAFETY: the range is inside the live allocation, and the
            // buffer's stream is live.
            unsafe {
                crate::raw::copy_to_host(
                    buffer.device,
                    buffer.device_ptr(),
                    host.bytes_mut(),
                    buffer.stream(),
                )?;
            }
            drop(buffer);
            let export = layout.apply(Export::new(host)).dtype(T::DTYPE).copied(true);
            build(export, plan.abi)
        }
        other => Err(Error::UnsupportedDevice {
            device: other.device(),
        }),
    }
}
