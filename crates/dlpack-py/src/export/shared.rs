//! A tensor shared by a Python object, and the `__dlpack__` export of it.
//!
//! [`SharedTensor`] holds one validated managed tensor in an `Arc`. Each
//! `__dlpack__` call plans with [`plan_dlpack`] (the whole decision lives in
//! the core), then builds a *fresh* managed tensor — one allocation, through
//! the core's [`Export`] — whose owner is a clone of the `Arc`: no GIL is
//! needed to release it, on any thread. Copies (`copy=True`, or a device
//! change that needs one) gather the elements into a new buffer and set
//! `IS_COPIED`.

use std::fmt;
use std::sync::Arc;

use dlpack_core::export::{Export, Memory, PlanSource, fulfil};
use dlpack_core::ffi::DLDevice;
use dlpack_core::managed::AnyManagedTensor;
use dlpack_core::protocol::{Abi, DlpackRequest, StreamRequest, plan_dlpack};
use dlpack_core::tensor::TensorView;
use pyo3::prelude::*;

use crate::cpython::owner::Keep;
use crate::error::{DeviceError, Error, IntoPyResult, buffer_err};
use crate::export::capsule::RawManaged;
use crate::sync::ExportSync;

/// A validated tensor shared between a Python object and every capsule
/// exported from it.
pub struct SharedTensor {
    tensor: AnyManagedTensor,
    sync: Option<Arc<dyn ExportSync>>,
    cai_stream: Option<i64>,
}

impl fmt::Debug for SharedTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTensor")
            .field("tensor", &self.tensor)
            .field("sync", &self.sync.is_some())
            .field("cai_stream", &self.cai_stream)
            .finish()
    }
}

impl SharedTensor {
    /// Shares `tensor`. Tensors on CUDA/ROCm memory get the device crate's
    /// synchroniser (features `cuda`/`rocm`) with no pending work.
    pub fn new(tensor: AnyManagedTensor) -> Arc<Self> {
        Self::with_cai_stream(tensor, None)
    }

    /// Shares `tensor`, with a producer-side stream synchroniser.
    pub fn with_sync(tensor: AnyManagedTensor, sync: Arc<dyn ExportSync>) -> Arc<Self> {
        Arc::new(SharedTensor {
            tensor,
            sync: Some(sync),
            cai_stream: None,
        })
    }

    /// Shares `tensor`, remembering the CUDA array interface `stream` it came
    /// with (re-exported in `__cuda_array_interface__`): the producer's
    /// pending work is on that stream (`None`: no pending work), which
    /// `__dlpack__(stream=...)` makes the consumer's stream wait on.
    pub fn with_cai_stream(tensor: AnyManagedTensor, stream: Option<i64>) -> Arc<Self> {
        let device = tensor.view().device();
        Arc::new(SharedTensor {
            tensor,
            sync: crate::gpu::default_sync(device, stream),
            cai_stream: stream,
        })
    }

    /// The validated view.
    pub fn view(&self) -> TensorView<'_> {
        self.tensor.view()
    }

    /// Whether the data must not be written through what can say so (a
    /// versioned capsule, the buffer protocol, an array interface): `READ_ONLY`
    /// data, and a legacy tensor, which cannot say that it may be written.
    /// (A legacy tensor may still go out as legacy: see [`export`].)
    pub fn read_only(&self) -> bool {
        !self.tensor.flags().is_writable()
    }

    /// The device of the data.
    pub fn device(&self) -> DLDevice {
        self.view().device()
    }

    /// Readies the data for a read (or write) by the host: memory that the
    /// host and a device both reach (`kDLCUDAManaged`, `kDLCUDAHost`,
    /// `kDLROCMHost`) may have device work pending on the producer's stream,
    /// which the host waits for first. Host memory needs nothing; device
    /// memory is refused by the callers before they get here.
    ///
    /// # Errors
    ///
    /// The device error's kind (`BufferError` when the synchroniser cannot
    /// wait), naming the device.
    pub fn host_access(&self) -> PyResult<()> {
        let device = self.device();
        if device.device_type == dlpack_core::ffi::DLDeviceType::kDLCPU {
            return Ok(());
        }
        match &self.sync {
            Some(sync) => sync.host_wait(device).map_err(|e| {
                PyErr::from(DeviceError::Failed {
                    device,
                    action: "read the data on the host",
                    source: Box::new(e),
                })
            }),
            None => Ok(()),
        }
    }

    /// The CUDA array interface stream the data came with, if any.
    pub fn cai_stream(&self) -> Option<i64> {
        self.cai_stream
    }
}

/// The memory a view spans, for an [`Export`] on `device`, and the byte
/// offset of the first element within it.
pub(crate) fn span_memory(
    view: &TensorView<'_>,
    device: DLDevice,
    read_only: bool,
) -> (Memory, u64) {
    let layout = view.layout();
    let raw = view.raw();
    let dtype = Some(raw.dtype);
    if layout.elements == 0 {
        let m = Memory {
            ptr: std::ptr::null_mut(),
            len: 0,
            device,
            dtype,
            read_only,
        };
        return (m, 0);
    }
    if raw.device.device_type.has_addressable_data() {
        let first = view.data_ptr();
        let m = Memory {
            ptr: first.wrapping_offset(layout.start as isize).cast(),
            len: layout.span_bytes() as usize,
            device,
            dtype,
            read_only,
        };
        (m, layout.start.unsigned_abs())
    } else {
        let m = Memory {
            ptr: raw.data,
            len: usize::MAX >> 1,
            device,
            dtype,
            read_only,
        };
        (m, raw.byte_offset)
    }
}

/// Builds a managed tensor of `abi` sharing `shared` (no copy), as `device`.
pub(crate) fn share(
    shared: &Arc<SharedTensor>,
    abi: Abi,
    device: DLDevice,
    flags_read_only: bool,
) -> PyResult<RawManaged> {
    build(
        share_export(shared, shared.view(), device, flags_read_only),
        abi,
    )
}

/// The export sharing `view`, the view of `shared` (no copy), as `device`.
pub(crate) fn share_export<'s>(
    shared: &Arc<SharedTensor>,
    view: TensorView<'s>,
    device: DLDevice,
    flags_read_only: bool,
) -> Export<'s, Keep<Arc<SharedTensor>>> {
    let (memory, offset) = span_memory(&view, device, flags_read_only);
    // SAFETY: the memory is the span of a validated tensor owned by the
    // SharedTensor, which the Arc keeps alive and which never moves.
    let owner = unsafe { Keep::new(Arc::clone(shared), memory) };
    let ex = Export::new(owner)
        .dtype(view.dtype())
        .shape(view.shape())
        .byte_offset(offset)
        .subbyte_padded(view.flags().is_subbyte_padded());
    let ex = match view.raw_strides() {
        Some(s) => ex.strides(s),
        None => ex,
    };
    // SAFETY: the view's layout was validated for exactly this shape, these
    // strides and this storage (dtype and padding flag).
    unsafe { ex.with_layout(*view.layout()) }
}

/// Builds `ex` as a managed tensor of `abi`.
pub(crate) fn build<O: dlpack_core::export::TensorOwner>(
    ex: Export<'_, O>,
    abi: Abi,
) -> PyResult<RawManaged> {
    Ok(match abi {
        Abi::Versioned => ex.versioned().py()?.into(),
        Abi::Legacy => ex.legacy().py()?.into(),
    })
}

/// The elements of a host-accessible view copied into a new compact
/// row-major buffer, exported on `device`.
fn host_copy<'s>(view: &TensorView<'s>, device: DLDevice) -> PyResult<Export<'s, HostWords>> {
    if !view.device().device_type.is_host_accessible() {
        return Err(buffer_err(format!(
            "cannot copy data on {:?} to the host: device copies need a device crate \
             (dlpack-cuda / dlpack-rocm), which this build does not include",
            view.device()
        )));
    }
    let bytes = gather(view)?;
    let len = bytes.len();
    let mut words = host_words(len)?;
    // SAFETY: words holds at least len bytes; the regions do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr().cast::<u8>(), len) };
    let memory = Memory {
        ptr: words.as_mut_ptr().cast(),
        len,
        device,
        dtype: Some(view.dtype()),
        read_only: false,
    };
    // SAFETY: the Vec's heap buffer is stable under moves and lives in Keep.
    let owner = unsafe { Keep::new(words, memory) };
    Ok(Export::new(owner)
        .dtype(view.dtype())
        .shape(view.shape())
        .subbyte_padded(view.flags().is_subbyte_padded()))
}

/// A host copy's owner.
type HostWords = Keep<Vec<u64>>;

/// A zeroed host buffer of at least `len` bytes (in words, so any element
/// type is aligned), or a `BufferError` when it cannot be allocated: a
/// foreign tensor may broadcast 2**40 elements over a few bytes, and its
/// copy must be refused, not abort the process.
fn host_words(len: usize) -> PyResult<Vec<u64>> {
    let words = len.div_ceil(8).max(1);
    let mut v = Vec::new();
    v.try_reserve_exact(words)
        .map_err(|_| cannot_allocate(len as u128))?;
    v.resize(words, 0);
    Ok(v)
}

#[cold]
fn cannot_allocate(bytes: u128) -> PyErr {
    buffer_err(format!(
        "cannot copy the tensor: its {bytes} bytes of elements cannot be allocated on the host"
    ))
}

/// The elements of a host-accessible view in row-major order.
pub(crate) fn gather(view: &TensorView<'_>) -> PyResult<Vec<u8>> {
    let layout = view.layout();
    let n = layout.elements as usize;
    if n == 0 {
        return Ok(Vec::new());
    }
    let first = view.data_ptr();
    if layout.c_contiguous {
        let len = layout.span_bytes() as usize;
        // SAFETY: a validated contiguous view spans exactly these bytes from
        // its first element, on host-accessible memory.
        let src = unsafe { std::slice::from_raw_parts(first, len) };
        let mut out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| cannot_allocate(len as u128))?;
        out.extend_from_slice(src);
        return Ok(out);
    }
    let size = match view.storage() {
        dlpack_core::dtype::Storage::Bytes(b) => b as usize,
        dlpack_core::dtype::Storage::PackedBits(_) => {
            return Err(buffer_err(
                "cannot copy a non-contiguous packed sub-byte tensor (elements are not addressable)",
            ));
        }
    };
    let shape = view.shape();
    let strides: Vec<i64> = view.strides().collect();
    let ndim = shape.len();
    let mut out = Vec::new();
    n.checked_mul(size)
        .and_then(|bytes| out.try_reserve_exact(bytes).ok())
        .ok_or_else(|| cannot_allocate(n as u128 * size as u128))?;
    let mut index = vec![0i64; ndim];
    for _ in 0..n {
        let off: i64 = index.iter().zip(&strides).map(|(i, s)| i * s).sum::<i64>() * size as i64;
        // SAFETY: every index is within the shape, so the element lies in
        // the validated span of the view.
        let src = unsafe { std::slice::from_raw_parts(first.wrapping_offset(off as isize), size) };
        out.extend_from_slice(src);
        for axis in (0..ndim).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    Ok(out)
}

/// `__dlpack__` for a shared tensor: the core plans and carries the plan
/// out ([`dlpack_core::export::fulfil`]) over the tensor as a [`Source`].
pub fn export(shared: &Arc<SharedTensor>, req: &DlpackRequest) -> PyResult<RawManaged> {
    let view = shared.view();
    // The core plans with what the tensor said about writing: a legacy
    // tensor goes out legacy as it came, or versioned READ_ONLY.
    let plan = plan_dlpack(view.device(), shared.tensor.flags(), req).py()?;
    let source = Source {
        shared,
        view,
        stream: req.stream.unwrap_or_default(),
    };
    Ok(fulfil(source, &plan)?.into())
}

/// A shared tensor as the core carries a plan out for it: shared through
/// a clone of the `Arc`, ordered and copied from a device through its
/// [`ExportSync`], copied on the host by gathering its elements.
struct Source<'s> {
    shared: &'s Arc<SharedTensor>,
    view: TensorView<'s>,
    /// `__dlpack__`'s `stream`, named in a failure to order it.
    stream: i64,
}

impl<'s> PlanSource<'s> for Source<'s> {
    type Error = Error;
    type Shared = Keep<Arc<SharedTensor>>;
    type Host = HostWords;

    fn device(&self) -> DLDevice {
        self.view.device()
    }

    fn order_consumer(&self, request: StreamRequest) -> Result<(), Error> {
        if let (StreamRequest::Sync(_), Some(sync)) = (request, &self.shared.sync) {
            let device = self.device();
            sync.sync(device, request)
                .map_err(|e| DeviceError::Stream {
                    what: "__dlpack__",
                    stream: self.stream,
                    device,
                    source: Box::new(e),
                })?;
        }
        Ok(())
    }

    fn order_host(&self) -> Result<(), Error> {
        Ok(self.shared.host_access()?)
    }

    fn share(self, device: DLDevice) -> Result<Export<'s, Self::Shared>, Error> {
        // The plan's READ_ONLY flag is set by the core.
        Ok(share_export(self.shared, self.view, device, false))
    }

    fn copy_to_host(self, device: DLDevice) -> Result<Export<'s, HostWords>, Error> {
        if self.device().device_type.is_host_accessible() {
            return Ok(host_copy(&self.view, device)?);
        }
        match &self.shared.sync {
            Some(sync) => copy_from_device(&self.view, sync.as_ref(), device),
            None => Ok(host_copy(&self.view, device)?),
        }
    }

    fn copy_on_device(self) -> Result<Self, Error> {
        Err(Error::Python(buffer_err(format!(
            "cannot copy data on {:?} on its device (copy=True): this tensor can only be \
             copied to the host (dl_device=(1, 0))",
            self.device()
        ))))
    }

    fn refuse(&self, to: DLDevice) -> Error {
        let from = self.device();
        Error::Core(dlpack_core::Error::UnsupportedTargetDevice { from, to })
    }
}

/// The span of a device tensor copied to the host through its synchroniser
/// (after the tensor's pending work), exported on `target` with the same
/// shape, strides and offset.
fn copy_from_device<'s>(
    view: &TensorView<'s>,
    sync: &dyn ExportSync,
    target: DLDevice,
) -> Result<Export<'s, HostWords>, Error> {
    let device = view.device();
    if !device.device_type.has_addressable_data() {
        return Err(Error::Python(buffer_err(format!(
            "cannot copy data on {device:?} to the host: its data is not an address"
        ))));
    }
    let (memory, offset) = span_memory(view, device, false);
    let len = memory.len;
    let mut words = host_words(len)?;
    if len > 0 {
        // SAFETY: words holds at least len bytes, initialised.
        let dst = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
        sync.copy_to_host(device, memory.ptr.addr() as u64, dst)
            .map_err(|e| DeviceError::Failed {
                device,
                action: "copy data to the host",
                source: Box::new(e),
            })?;
    }
    let host = Memory {
        ptr: words.as_mut_ptr().cast(),
        len,
        device: target,
        dtype: Some(view.dtype()),
        read_only: false,
    };
    // SAFETY: the Vec's heap buffer is stable under moves and lives in Keep.
    let owner = unsafe { Keep::new(words, host) };
    let ex = Export::new(owner)
        .dtype(view.dtype())
        .shape(view.shape())
        .byte_offset(offset)
        .subbyte_padded(view.flags().is_subbyte_padded());
    Ok(match view.raw_strides() {
        Some(s) => ex.strides(s),
        None => ex,
    })
}
