//! Export of cudarc buffers as `kDLCUDA` tensors, and the whole of a
//! producer's `__dlpack__` for them ([`fulfil`]).
//!
//! A [`CudaOwner`] holds the `CudaSlice` (or an `Arc` of it) inside the
//! exported tensor, so the memory lives until the consumer calls the
//! deleter. The free is ordered after the consumer's use: when the consumer
//! named a stream, the owner's drop makes the slice's stream wait for that
//! stream (pooled event, no host wait) before cudarc frees the buffer on the
//! slice's stream (`cuMemFreeAsync`; without memory pools cudarc
//! synchronises the slice's stream and calls `cuMemFree`).
//!
//! Streams are kept as [`HeldStream`]s, resolved when they are received:
//! the deleter may run on any thread, where `2` would name that thread's
//! per-thread default stream, not the one the consumer (or the slice) meant.

use std::mem::ManuallyDrop;
use std::ops::Range;
use std::sync::Arc;

use cudarc::driver::{CudaSlice, DevicePtr, DeviceRepr, SyncOnDrop};
use dlpack_core::Element;
use dlpack_core::device::StreamKind;
use dlpack_core::export::{Export, HostCopy, Memory, TensorOwner};
use dlpack_core::ffi::{DLDevice, DLPACK_FLAG_BITMASK_IS_COPIED, DLPACK_FLAG_BITMASK_READ_ONLY};
use dlpack_core::managed::AnyManagedTensor;
use dlpack_core::protocol::{Abi, DeviceStream, DlpackPlan, StreamRequest, Transfer};
use dlpack_core::sync::{SyncAction, plan_sync};

use crate::driver;
use crate::error::Error;
use crate::raw::{self, HeldStream};

enum Slice<T> {
    Owned(CudaSlice<T>),
    Shared(Arc<CudaSlice<T>>),
}

impl<T> Slice<T> {
    fn get(&self) -> &CudaSlice<T> {
        match self {
            Slice::Owned(s) => s,
            Slice::Shared(s) => s,
        }
    }
}

/// A cudarc buffer (or a range of one) kept alive by an exported tensor.
///
/// Implements [`TensorOwner`], so [`Export::new`] turns it into a managed
/// tensor of device `(kDLCUDA, ordinal of the slice's context)`. An owner
/// made from an `Arc` is read-only (others may hold the buffer).
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
pub struct CudaOwner<T> {
    slice: ManuallyDrop<Slice<T>>,
    range: Range<usize>,
    /// The slice's device address, read once (see [`base_address`]).
    base: u64,
    /// The slice's stream, as the thread that made the owner meant it.
    producer: HeldStream,
    release_after: Option<HeldStream>,
}

impl<T> std::fmt::Debug for CudaOwner<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaOwner")
            .field("ordinal", &self.slice.get().ordinal())
            .field("range", &self.range)
            .field("shared", &matches!(*self.slice, Slice::Shared(_)))
            .field("release_after", &self.release_after)
            .finish()
    }
}

impl<T: Element + DeviceRepr> CudaOwner<T> {
    /// Owns the whole slice.
    pub fn new(slice: CudaSlice<T>) -> Self {
        let range = 0..slice.len();
        let producer = held(slice.stream());
        let base = base_address(&slice);
        CudaOwner {
            slice: ManuallyDrop::new(Slice::Owned(slice)),
            range,
            base,
            producer,
            release_after: None,
        }
    }

    /// Shares a slice: the tensor keeps the `Arc` (and so the buffer) alive
    /// and is read-only.
    pub fn shared(slice: Arc<CudaSlice<T>>) -> Self {
        let range = 0..slice.len();
        let producer = held(slice.stream());
        let base = base_address(&slice);
        CudaOwner {
            slice: ManuallyDrop::new(Slice::Shared(slice)),
            range,
            base,
            producer,
            release_after: None,
        }
    }

    /// Narrows the exported memory to `range` (in elements) of the current
    /// range: the export of a view, keeping the whole buffer alive.
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

    /// Orders the free after `consumer`'s work: when the tensor is released,
    /// the slice's stream waits for everything submitted to `consumer` until
    /// then. [`fulfil`] sets this from the consumer's `stream` argument.
    ///
    /// The stream is resolved here, on the calling thread (the consumer's):
    /// [`DeviceStream::CudaPerThreadDefault`] is this thread's per-thread
    /// default stream even when the tensor is released on another thread.
    pub fn release_after(mut self, consumer: DeviceStream) -> Self {
        let consumer = HeldStream::received(consumer.as_raw());
        self.release_after = (consumer != self.producer).then_some(consumer);
        self
    }

    /// The device of the buffer: `(kDLCUDA, ordinal of its context)`.
    pub fn device(&self) -> DLDevice {
        DLDevice::cuda(self.slice.get().ordinal() as i32)
    }

    /// The stream the buffer's pending work is on (the slice's stream), as
    /// the calling thread names it: when the slice is on the per-thread
    /// default stream of the thread that made the owner, another thread
    /// gets the legacy default stream, which covers it.
    pub fn producer_stream(&self) -> DeviceStream {
        DeviceStream::from_raw(StreamKind::Cuda, self.producer.here())
            .unwrap_or(DeviceStream::CudaLegacyDefault)
    }

    fn device_ptr(&self) -> u64 {
        self.base + (self.range.start * size_of::<T>()) as u64
    }

    fn byte_len(&self) -> usize {
        self.range.len() * size_of::<T>()
    }
}

// SAFETY: the device memory belongs to the CudaSlice, which the owner keeps
// (directly or through an Arc) until it is dropped; moving the owner does not
// move device memory. The range is inside the slice (checked in `range`).
// CudaSlice is Send; T: 'static through Element.
unsafe impl<T: Element + DeviceRepr> TensorOwner for CudaOwner<T> {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: std::ptr::with_exposed_provenance_mut(self.device_ptr() as usize),
            len: self.byte_len(),
            device: self.device(),
            dtype: Some(T::DTYPE),
            read_only: matches!(*self.slice, Slice::Shared(_)),
        }
    }
}

impl<T> CudaOwner<T> {
    /// Orders the free after the consumer's stream; `false` when that could
    /// not be ensured (the buffer must then be leaked, not freed).
    ///
    /// cudarc frees on the handle of the slice's stream *as this thread
    /// names it*; that stream waits for the consumer's stream and — when
    /// the handle means another stream here (a per-thread default stream of
    /// another thread) — for the producer's stream, each resolved on the
    /// thread that named it ([`HeldStream::here`]).
    fn order_release(&self) -> bool {
        let slice = self.slice.get();
        let free_on = raw::canonical_stream(driver::stream_raw(slice.stream().cu_stream()));
        let producer = self.producer.here();
        let consumer = self.release_after.map(|c| c.here());
        let mut after = [consumer, Some(producer)];
        if after[0] == after[1] {
            after[1] = None;
        }
        let ctx = slice.context().cu_ctx();
        after
            .into_iter()
            .flatten()
            .filter(|&s| s != free_on)
            .all(|s| order_free(ctx, s, free_on))
    }
}

/// Makes `free_on` wait for `after` in `ctx` (current); on a driver
/// failure, waits for `after` on the host instead (this error path only).
/// `false` when neither worked.
fn order_free(ctx: cudarc::driver::sys::CUcontext, after: u64, free_on: u64) -> bool {
    let (after, free_on) = (driver::stream_handle(after), driver::stream_handle(free_on));
    driver::order_in_context(ctx, after, free_on).is_ok()
        // SAFETY: the stream was live when the tensor was exported and must
        // outlive it (the consumer's contract), or it is a default stream
        // of the current context.
        || unsafe { cudarc::driver::result::stream::synchronize(after) }.is_ok()
}

/// The device address of `slice`, read once when an owner is made.
///
/// cudarc hands the address out only through its tracked `device_ptr`:
/// with event tracking on (cudarc's default, once a context has more than
/// one stream) that makes the given stream wait for the slice's last
/// tracked write and records a read when the returned guard drops. The
/// wait is kept, on the slice's own stream: a write cudarc tracked on
/// another stream is then ordered before the slice's stream, so the
/// slice's stream holds all the buffer's pending work and the export's one
/// record on it covers everything. The read record is dropped: the
/// consumer's reads happen later on its own stream and are ordered by the
/// export and the release, which cudarc's event cannot see. So each
/// exchange of the owner costs one `cuEventRecord` and one
/// `cuStreamWaitEvent` in both modes (plus, with tracking, this one wait
/// when the owner is made).
fn base_address<T>(slice: &CudaSlice<T>) -> u64 {
    let (ptr, mut record) = slice.device_ptr(slice.stream());
    if let SyncOnDrop::Record(event) = &mut record {
        *event = None;
    }
    ptr
}

/// A cudarc stream held as the calling thread means it.
fn held(stream: &cudarc::driver::CudaStream) -> HeldStream {
    HeldStream::received(driver::stream_raw(stream.cu_stream()))
}

impl<T> Drop for CudaOwner<T> {
    fn drop(&mut self) {
        // The deleter may run on any thread, with no context or another one
        // current; cudarc's free does not bind the slice's context (and the
        // default streams 1 and 2 mean nothing without it), so it is bound
        // for the whole release.
        let Ok(_bound) = driver::bind(self.slice.get().context().cu_ctx()) else {
            return; // leaked: freeing in the wrong context could free nothing
        };
        if self.order_release() {
            // SAFETY: dropped exactly once, here; `self.slice` is not used
            // afterwards.
            unsafe { ManuallyDrop::drop(&mut self.slice) };
        }
        // Otherwise the buffer is leaked rather than freed while the
        // consumer's stream may still use it.
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

/// Carries out a producer's [`DlpackPlan`] (from
/// [`plan_dlpack`](dlpack_core::protocol::plan_dlpack)) for a cudarc buffer:
///
/// - share: orders the consumer's stream after the slice's stream
///   ([`plan_sync`], then one pooled event of the slice's context, as
///   [`CudaSync`](crate::CudaSync) does; nothing for `-1` or the same stream),
///   and orders the eventual free after the consumer's stream;
/// - copy to `(kDLCPU, 0)`: copies to host memory on the slice's stream,
///   waits for the copy (the host is the consumer), and exports the copy
///   with `IS_COPIED`;
/// - copy on the same device (`copy=True`): a device-to-device copy on the
///   slice's stream, then shared as above, with `IS_COPIED`.
///
/// ```no_run
/// use dlpack_core::protocol::{plan_dlpack, DlpackRequest};
/// use dlpack_cuda::{fulfil, CudaOwner, ExportLayout};
///
/// let ctx = cudarc::driver::CudaContext::new(0)?;
/// let stream = ctx.new_stream()?;
/// let owner = CudaOwner::new(stream.clone_htod(&[1u8, 2, 3, 4])?);
/// // The consumer asked for __dlpack__(stream=2, max_version=(1, 3)).
/// let request = DlpackRequest { stream: Some(2), max_version: Some((1, 3)), ..Default::default() };
/// let plan = plan_dlpack(owner.device(), false, &request)?;
/// let tensor = fulfil(owner, ExportLayout::shape(&[2, 2]), &plan)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// Driver failures, [`Error::UnsupportedDevice`] for targets other than
/// the buffer's device and `(kDLCPU, 0)`, and the core's export errors
/// (layout out of the buffer's bounds, read-only data for the legacy ABI).
pub fn fulfil<T: Element + DeviceRepr>(
    owner: CudaOwner<T>,
    layout: ExportLayout<'_>,
    plan: &DlpackPlan,
) -> Result<AnyManagedTensor, Error> {
    let source = owner.device();
    match plan.transfer {
        Transfer::Share { device } if device == source => share(owner, layout, plan),
        Transfer::Copy { device } if device == DLDevice::cpu() => {
            let host = copy_owner_to_host(&owner)?;
            drop(owner);
            let export = layout.apply(Export::new(host)).dtype(T::DTYPE).copied(true);
            build(export, plan.abi)
        }
        Transfer::Copy { device } if device == source => {
            let slice = owner.slice.get();
            let stream = slice.stream().clone();
            let view = slice.slice(owner.range.clone());
            let copy = stream
                .clone_dtod(&view)
                .map_err(|e| Error::driver("cuMemcpyDtoDAsync_v2", e))?;
            drop(owner);
            share(CudaOwner::new(copy), layout, plan)
        }
        other => Err(Error::UnsupportedDevice {
            device: other.device(),
        }),
    }
}

fn share<T: Element + DeviceRepr>(
    mut owner: CudaOwner<T>,
    layout: ExportLayout<'_>,
    plan: &DlpackPlan,
) -> Result<AnyManagedTensor, Error> {
    let producer = owner.producer_stream();
    // In the slice's context: its stream (and so the event recorded on it) may belong to a
    // context other than the device's primary one, which raw handles would assume.
    if let SyncAction::Wait { producer, consumer } = plan_sync(plan.stream, Some(producer)) {
        let ctx = owner.slice.get().context().cu_ctx();
        let _bound = driver::bind(ctx)?;
        let (p, c) = (
            raw::canonical_stream(producer.as_raw()),
            raw::canonical_stream(consumer.as_raw()),
        );
        if p != c {
            driver::order_in_context(ctx, driver::stream_handle(p), driver::stream_handle(c))?;
        }
    }
    if let StreamRequest::Sync(consumer) = plan.stream {
        owner = owner.release_after(consumer);
    }
    let export = layout
        .apply(Export::new(owner))
        .read_only(plan.flags & DLPACK_FLAG_BITMASK_READ_ONLY != 0)
        .copied(plan.flags & DLPACK_FLAG_BITMASK_IS_COPIED != 0);
    build(export, plan.abi)
}

fn copy_owner_to_host<T: Element + DeviceRepr>(owner: &CudaOwner<T>) -> Result<HostCopy, Error> {
    let mut host = HostCopy::zeroed(owner.byte_len());
    let slice = owner.slice.get();
    let ctx = slice.context().cu_ctx();
    let _bound = driver::bind(ctx)?;
    // SAFETY: the range is inside the live slice, and the slice's stream is
    // live (the slice holds it).
    unsafe {
        driver::copy_to_host_blocking(
            host.bytes_mut(),
            owner.device_ptr(),
            slice.stream().cu_stream(),
        )?;
    }
    Ok(host)
}
