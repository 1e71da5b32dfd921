//! Export: device memory kept alive by an exported tensor ([`Owner`]),
//! whose free is ordered after the consumer's stream, and the whole of a
//! producer's `__dlpack__` for it ([`fulfil`]).
//!
//! Streams are kept as [`HeldStream`]s, resolved when they are received:
//! the deleter may run on any thread, where `2` would name that thread's
//! per-thread default stream, not the one the consumer (or the memory)
//! meant.

use std::mem::ManuallyDrop;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

use dlpack_core::Element;
use dlpack_core::export::{Export, HostCopy, Memory, PlanSource, TensorOwner};
use dlpack_core::ffi::DLDevice;
use dlpack_core::managed::AnyManagedTensor;
use dlpack_core::protocol::{DeviceStream, DlpackPlan, StreamRequest};
use dlpack_core::sync::{SyncAction, plan_sync};

use crate::driver::Driver;
use crate::error::Error;
use crate::runtime::{Bound, copy_to_host_bound, order_in_context};
use crate::stream::{HeldStream, device_stream};

/// Device memory of driver [`Driver`](DeviceMemory::Driver) that frees
/// itself when dropped, on its own stream (a cudarc `CudaSlice`, a
/// `dlpack_rocm::HipBuffer`). [`Owner`] adds the ordering of that free
/// after the consumer's stream.
///
/// # Safety
///
/// [`base`](DeviceMemory::base)`..+len * size_of::<Elem>()` is device
/// memory of [`context`](DeviceMemory::context)'s device that stays valid
/// and does not move until the value is dropped; dropping it with the
/// context current frees it on [`stream`](DeviceMemory::stream) as the
/// dropping thread names it (after the work submitted there so far).
pub unsafe trait DeviceMemory: Send + 'static {
    /// The driver the memory belongs to.
    type Driver: Driver;
    /// The element type.
    type Elem: Element;
    /// The context the memory and its stream belong to.
    fn context(&self) -> u64;
    /// The device ordinal.
    fn ordinal(&self) -> i32;
    /// The device address of the first element (read once per owner).
    fn base(&self) -> u64;
    /// The number of elements.
    fn len(&self) -> usize;
    /// Whether there are no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The raw stream the memory's pending work is on, and its free will
    /// be, as the calling thread names it.
    fn stream(&self) -> u64;
    /// Whether others may hold the memory too (the export is read-only).
    fn shared(&self) -> bool {
        false
    }
    /// A copy of elements `range` on the same device, enqueued on the
    /// memory's stream (for `copy=True` on the device).
    ///
    /// # Errors
    ///
    /// The failing driver call.
    fn copy_range(&self, range: Range<usize>) -> Result<Self, Error>
    where
        Self: Sized;
}

/// Device memory (or a range of it) kept alive by an exported tensor.
///
/// Implements [`TensorOwner`], so [`Export::new`] turns it into a managed
/// tensor of device `(device type, ordinal of the memory)`. Each consumer
/// stream it is handed ([`order_consumer`](Owner::order_consumer), which
/// [`fulfil`] calls, or [`release_after`](Owner::release_after)) is kept,
/// and the owner's drop makes the memory's stream wait for every one
/// (pooled events, no host wait) before the memory frees itself on its
/// stream. An owner shared by several exports (behind an `Arc`) orders
/// each consumer and frees after all of them.
pub struct Owner<M: DeviceMemory> {
    memory: ManuallyDrop<M>,
    range: Range<usize>,
    base: u64,
    /// The memory's stream, as the thread that made the owner meant it.
    producer: HeldStream,
    /// The consumers' streams, each as its thread meant it.
    release_after: Mutex<Vec<HeldStream>>,
}

impl<M: DeviceMemory> std::fmt::Debug for Owner<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner")
            .field("driver", &<M::Driver as Driver>::NAME)
            .field("ordinal", &self.memory.ordinal())
            .field("range", &self.range)
            .field("shared", &self.memory.shared())
            .field("release_after", &*self.consumers())
            .finish()
    }
}

impl<M: DeviceMemory> Owner<M> {
    /// Owns `memory` (all of it).
    pub fn new(memory: impl Into<M>) -> Self {
        let memory = memory.into();
        Owner {
            range: 0..memory.len(),
            base: memory.base(),
            producer: HeldStream::received::<M::Driver>(memory.stream()),
            release_after: Mutex::new(Vec::new()),
            memory: ManuallyDrop::new(memory),
        }
    }

    /// The memory.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// Narrows the exported memory to `range` (in elements) of the current
    /// range: the export of a view, keeping the whole memory alive.
    ///
    /// # Errors
    ///
    /// [`dlpack_core::Error::OutOfBounds`] when `range` is not inside.
    pub fn range(mut self, range: Range<usize>) -> Result<Self, Error> {
        let len = self.range.len();
        if range.start > range.end || range.end > len {
            let size = size_of::<M::Elem>() as i128;
            return Err(Error::Core(dlpack_core::Error::OutOfBounds {
                start: range.start as i128 * size,
                end: range.end as i128 * size,
                len: len * size_of::<M::Elem>(),
            }));
        }
        self.range = self.range.start + range.start..self.range.start + range.end;
        Ok(self)
    }

    /// Orders the free after `consumer`'s work: when the tensor is released,
    /// the memory's stream waits for everything submitted to `consumer`
    /// until then. [`fulfil`] sets this from the consumer's `stream`.
    ///
    /// The stream is resolved here, on the calling thread (the consumer's):
    /// the per-thread default stream is this thread's even when the tensor
    /// is released on another thread.
    pub fn release_after(self, consumer: DeviceStream) -> Self {
        self.keep_consumer(consumer);
        self
    }

    fn consumers(&self) -> MutexGuard<'_, Vec<HeldStream>> {
        // A list of stream values: poisoning carries no meaning here.
        self.release_after.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn keep_consumer(&self, consumer: DeviceStream) {
        let consumer = HeldStream::received::<M::Driver>(consumer.as_raw());
        let mut consumers = self.consumers();
        if consumer != self.producer && !consumers.contains(&consumer) {
            consumers.push(consumer);
        }
    }

    /// Carries out the stream part of a consumer's `__dlpack__(stream=...)`
    /// (decoded by the core) for this memory: the consumer's stream waits
    /// for the memory's pending work (one pooled event of the memory's
    /// context; nothing for `-1` or the same stream), and the free will
    /// wait for the consumer's stream. Any number of consumers may be
    /// ordered this way.
    ///
    /// # Errors
    ///
    /// The failing driver call.
    pub fn order_consumer(&self, request: StreamRequest) -> Result<(), Error> {
        // In the memory's context: its stream (and so the event recorded on
        // it) may belong to a context other than the device's primary one,
        // which raw handles would assume.
        let producer = self.producer_stream();
        if let SyncAction::Wait { producer, consumer } = plan_sync(request, Some(producer)) {
            let ctx = self.memory.context();
            let _bound = Bound::<M::Driver>::new(ctx)?;
            order_in_context::<M::Driver>(ctx, producer.as_raw(), consumer.as_raw())?;
        }
        if let StreamRequest::Sync(consumer) = request {
            self.keep_consumer(consumer);
        }
        Ok(())
    }

    /// Copies the exported range to `dst` (exactly its length in bytes),
    /// ordered after the memory's pending work, and waits for the copy (the
    /// host is the consumer).
    ///
    /// # Errors
    ///
    /// [`dlpack_core::Error::OutOfBounds`] for a `dst` of another length,
    /// or the failing driver call.
    pub fn copy_to_host(&self, dst: &mut [u8]) -> Result<(), Error> {
        if dst.len() != self.byte_len() {
            return Err(Error::Core(dlpack_core::Error::OutOfBounds {
                start: 0,
                end: dst.len() as i128,
                len: self.byte_len(),
            }));
        }
        let _bound = Bound::<M::Driver>::new(self.memory.context())?;
        // SAFETY: the range is inside the live memory, and the memory's
        // stream is live (the memory holds it); the context is current.
        unsafe { copy_to_host_bound::<M::Driver>(dst, self.device_ptr(), self.memory.stream()) }
    }

    /// The device of the memory: `(device type, ordinal)`.
    pub fn device(&self) -> DLDevice {
        DLDevice::new(
            <M::Driver as Driver>::DEVICE_TYPES.device,
            self.memory.ordinal(),
        )
    }

    /// The stream the memory's pending work is on, as the calling thread
    /// names it: when it is the per-thread default stream of the thread
    /// that made the owner, another thread gets the covering stream.
    pub fn producer_stream(&self) -> DeviceStream {
        device_stream::<M::Driver>(self.producer.here())
    }

    /// The device address of the first element of the range.
    pub fn device_ptr(&self) -> u64 {
        self.base + (self.range.start * size_of::<M::Elem>()) as u64
    }

    /// The number of bytes of the range.
    pub fn byte_len(&self) -> usize {
        self.range.len() * size_of::<M::Elem>()
    }

    /// Orders the free after the consumer's stream; `false` when that could
    /// not be ensured (the memory must then be leaked, not freed).
    ///
    /// The memory frees on its stream *as this thread names it*; that
    /// stream waits for the consumer's stream and — when the handle means
    /// another stream here (a per-thread default stream of another thread)
    /// — for the producer's stream, each resolved on the thread that named
    /// it ([`HeldStream::here`]). On a driver failure the host waits for
    /// the stream instead (this error path only).
    fn order_release(&self) -> bool {
        type D<M> = <M as DeviceMemory>::Driver;
        let free_on = D::<M>::canonical_stream(self.memory.stream());
        let mut after: Vec<u64> = self.consumers().iter().map(HeldStream::here).collect();
        after.push(self.producer.here());
        after.sort_unstable();
        after.dedup();
        let ctx = self.memory.context();
        after
            .into_iter()
            .filter(|&s| D::<M>::canonical_stream(s) != free_on)
            .all(|s| {
                order_in_context::<D<M>>(ctx, s, free_on).is_ok()
                    // SAFETY: the stream was live when the tensor was
                    // exported and must outlive it (the consumer's
                    // contract), or it is a default stream of the context.
                    || unsafe { D::<M>::stream_synchronize(s) }.is_ok()
            })
    }
}

// SAFETY: the device memory belongs to `M`, which the owner keeps until it
// is dropped; moving the owner does not move device memory (the
// `DeviceMemory` contract). The range is inside the memory (checked in
// `range`). `M` is Send; the element type is 'static through Element.
unsafe impl<M: DeviceMemory> TensorOwner for Owner<M> {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: std::ptr::with_exposed_provenance_mut(self.device_ptr() as usize),
            len: self.byte_len(),
            device: self.device(),
            dtype: Some(M::Elem::DTYPE),
            read_only: self.memory.shared(),
        }
    }
}

impl<M: DeviceMemory> Drop for Owner<M> {
    fn drop(&mut self) {
        // The deleter may run on any thread, with no context or another one
        // current; the memory's context is bound for the whole release (the
        // default streams mean nothing without it).
        let Ok(_bound) = Bound::<M::Driver>::new(self.memory.context()) else {
            return; // leaked: freeing in the wrong context could free nothing
        };
        if self.order_release() {
            // SAFETY: dropped exactly once, here; `self.memory` is not used
            // afterwards.
            unsafe { ManuallyDrop::drop(&mut self.memory) };
        }
        // Otherwise the memory is leaked rather than freed while the
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

/// Carries out a producer's [`DlpackPlan`] (from
/// [`plan_dlpack`](dlpack_core::protocol::plan_dlpack)) for device memory,
/// through the core's [`dlpack_core::export::fulfil`]:
///
/// - share: orders the consumer's stream after the memory's stream
///   ([`plan_sync`], then one pooled event of the memory's context; nothing
///   for `-1` or the same stream), and orders the eventual free after the
///   consumer's stream;
/// - copy to `(kDLCPU, 0)`: copies to host memory on the memory's stream,
///   waits for the copy (the host is the consumer), and exports the copy
///   with `IS_COPIED`;
/// - copy on the same device (`copy=True`): a device-to-device copy on the
///   memory's stream, then shared as above, with `IS_COPIED`.
///
/// # Errors
///
/// Driver failures, [`Error::UnsupportedDevice`] for targets other than
/// the memory's device and `(kDLCPU, 0)`, and the core's export errors
/// (layout out of the memory's bounds, read-only data for the legacy ABI).
pub fn fulfil<M: DeviceMemory>(
    owner: Owner<M>,
    layout: ExportLayout<'_>,
    plan: &DlpackPlan,
) -> Result<AnyManagedTensor, Error> {
    dlpack_core::export::fulfil(Source { owner, layout }, plan)
}

/// Device memory with the layout to export it with: what the core's
/// [`fulfil`](dlpack_core::export::fulfil) carries a plan out for.
struct Source<'a, M: DeviceMemory> {
    owner: Owner<M>,
    layout: ExportLayout<'a>,
}

impl<'a, M: DeviceMemory> PlanSource<'a> for Source<'a, M> {
    type Error = Error;
    type Shared = Owner<M>;
    type Host = HostCopy;

    fn device(&self) -> DLDevice {
        self.owner.device()
    }

    fn order_consumer(&self, request: StreamRequest) -> Result<(), Error> {
        self.owner.order_consumer(request)
    }

    fn order_host(&self) -> Result<(), Error> {
        // Device memory (the driver's device type): the core never has the
        // host read it in place, and `copy_to_host` orders its own copy.
        Ok(())
    }

    fn share(self, _device: DLDevice) -> Result<Export<'a, Owner<M>>, Error> {
        Ok(self.layout.apply(Export::new(self.owner)))
    }

    fn copy_to_host(self, _device: DLDevice) -> Result<Export<'a, HostCopy>, Error> {
        let mut host = HostCopy::zeroed(self.owner.byte_len());
        self.owner.copy_to_host(host.bytes_mut())?;
        drop(self.owner);
        Ok(self.layout.apply(Export::new(host)).dtype(M::Elem::DTYPE))
    }

    fn copy_on_device(self) -> Result<Self, Error> {
        let copy = {
            let _bound = Bound::<M::Driver>::new(self.owner.memory.context())?;
            self.owner.memory.copy_range(self.owner.range.clone())?
        };
        drop(self.owner);
        Ok(Source {
            owner: Owner::new(copy),
            layout: self.layout,
        })
    }

    fn refuse(&self, device: DLDevice) -> Error {
        Error::unsupported::<M::Driver>(device)
    }
}
