//! cudarc's `safe` level: [`CudaMemory`] (a `CudaSlice`, owned or shared,
//! as the runtime's [`DeviceMemory`]) and stream ordering between cudarc
//! streams.

use std::ops::Range;
use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, DevicePtr, DeviceRepr, SyncOnDrop};
use dlpack_core::Element;
use dlpack_core::protocol::DeviceStream;
use dlpack_device::{Bound, DeviceMemory, Driver, Error, order_in_context};

use crate::driver::{Cuda, err, raw};

/// A cudarc buffer kept by an exported tensor ([`CudaOwner`](crate::CudaOwner)):
/// owned (freed by cudarc on the slice's stream when the tensor is
/// released) or shared through an `Arc` (exported read-only: others may
/// hold it).
#[derive(Debug)]
pub enum CudaMemory<T> {
    /// The tensor owns the slice.
    Owned(CudaSlice<T>),
    /// The tensor holds one reference to the slice.
    Shared(Arc<CudaSlice<T>>),
}

impl<T> CudaMemory<T> {
    /// The slice.
    pub fn slice(&self) -> &CudaSlice<T> {
        match self {
            CudaMemory::Owned(s) => s,
            CudaMemory::Shared(s) => s,
        }
    }
}

impl<T> From<CudaSlice<T>> for CudaMemory<T> {
    fn from(slice: CudaSlice<T>) -> Self {
        CudaMemory::Owned(slice)
    }
}

impl<T> From<Arc<CudaSlice<T>>> for CudaMemory<T> {
    fn from(slice: Arc<CudaSlice<T>>) -> Self {
        CudaMemory::Shared(slice)
    }
}

// SAFETY: the device memory belongs to the CudaSlice, which this value
// keeps (directly or through an Arc) until it is dropped; cudarc frees it on
// the slice's stream as the dropping thread names it (cuMemFreeAsync; without
// memory pools cudarc synchronises that stream and calls cuMemFree).
unsafe impl<T: Element + DeviceRepr> DeviceMemory for CudaMemory<T> {
    type Driver = Cuda;
    type Elem = T;

    fn context(&self) -> u64 {
        raw(self.slice().context().cu_ctx())
    }

    fn ordinal(&self) -> i32 {
        self.slice().ordinal() as i32
    }

    /// The slice's device address, read once per owner.
    ///
    /// cudarc hands the address out only through its tracked `device_ptr`:
    /// with event tracking on (cudarc's default, once a context has more
    /// than one stream) that makes the given stream wait for the slice's
    /// last tracked write and records a read when the returned guard drops.
    /// The wait is kept, on the slice's own stream: a write cudarc tracked
    /// on another stream is then ordered before the slice's stream, so the
    /// slice's stream holds all the buffer's pending work and the export's
    /// one record on it covers everything. The read record is dropped: the
    /// consumer's reads happen later on its own stream and are ordered by
    /// the export and the release, which cudarc's event cannot see. So each
    /// exchange costs one `cuEventRecord` and one `cuStreamWaitEvent` in
    /// both modes (plus, with tracking, this one wait when the owner is
    /// made).
    fn base(&self) -> u64 {
        let slice = self.slice();
        let (ptr, mut record) = slice.device_ptr(slice.stream());
        if let SyncOnDrop::Record(event) = &mut record {
            *event = None;
        }
        ptr
    }

    fn len(&self) -> usize {
        self.slice().len()
    }

    fn stream(&self) -> u64 {
        Cuda::canonical_stream(raw(self.slice().stream().cu_stream()))
    }

    fn shared(&self) -> bool {
        matches!(self, CudaMemory::Shared(_))
    }

    fn copy_range(&self, range: Range<usize>) -> Result<Self, Error> {
        let slice = self.slice();
        let view = slice.slice(range);
        slice
            .stream()
            .clone_dtod(&view)
            .map(CudaMemory::Owned)
            .map_err(|e| err("cuMemcpyDtoDAsync_v2", e))
    }
}

/// Makes cudarc stream `consumer` wait for the work submitted so far on
/// `producer`, with a pooled event of the producer's context (no event is
/// created once the pool is warm). Nothing when they are the same stream.
///
/// # Errors
///
/// The failing driver call.
pub fn order_streams(producer: &CudaStream, consumer: &CudaStream) -> Result<(), Error> {
    let (p, c) = (raw(producer.cu_stream()), raw(consumer.cu_stream()));
    if Cuda::canonical_stream(p) == Cuda::canonical_stream(c) {
        return Ok(());
    }
    let ctx = raw(producer.context().cu_ctx());
    let _bound = Bound::<Cuda>::new(ctx)?;
    order_in_context::<Cuda>(ctx, p, c)
}

/// The stream a cudarc stream is, as the core names it: the NULL stream is
/// the legacy default stream, `0x2` the per-thread default stream.
pub fn device_stream(stream: &CudaStream) -> DeviceStream {
    dlpack_device::device_stream::<Cuda>(raw(stream.cu_stream()))
}

/// The value a consumer working on `stream` passes to a producer's
/// `__dlpack__(stream=...)`: the stream's handle, `1` for the NULL stream
/// (never `0`), `2` for the per-thread default stream.
///
/// ```no_run
/// let ctx = cudarc::driver::CudaContext::new(0)?;
/// assert_eq!(dlpack_cuda::consumer_stream_arg(&ctx.default_stream()), 1);
/// assert_eq!(dlpack_cuda::consumer_stream_arg(&ctx.per_thread_stream()), 2);
/// # Ok::<(), cudarc::driver::DriverError>(())
/// ```
pub fn consumer_stream_arg(stream: &CudaStream) -> i64 {
    // Every CUDA stream has a value (the NULL stream is spelled 1).
    dlpack_device::consumer_stream_arg::<Cuda>(raw(stream.cu_stream())).unwrap_or(1)
}
