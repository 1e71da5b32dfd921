//! Device memory with work pending on its stream as a Python tensor in one
//! call ([`device_tensor`], [`cuda_tensor`], [`rocm_tensor`]): the memory's
//! owner orders every consumer after that stream and its free after every
//! consumer, through the device runtime (`dlpack-device`).

use std::sync::Arc;

use dlpack_core::Element;
use dlpack_core::export::{Export, Memory};
use dlpack_core::ffi::DLDevice;
use dlpack_core::protocol::StreamRequest;
use dlpack_device::{DeviceMemory, Owner};
use pyo3::prelude::*;

use crate::classes::tensor::Tensor;
use crate::cpython::owner::Keep;
use crate::error::{DeviceError, IntoPyResult};
use crate::export::shared::SharedTensor;
use crate::sync::ExportSync;

/// The [`ExportSync`] of device memory exported to Python through an
/// [`Owner`] (see [`device_tensor`]): every `__dlpack__(stream=...)` orders
/// the consumer's stream after the memory's and is kept, so the free waits
/// for every consumer.
#[derive(Debug)]
struct OwnerSync<M: DeviceMemory>(Arc<Owner<M>>);

impl<M: DeviceMemory + Sync> ExportSync for OwnerSync<M> {
    fn sync(&self, _device: DLDevice, request: StreamRequest) -> Result<(), DeviceError> {
        Ok(self.0.order_consumer(request)?)
    }

    fn copy_to_host(&self, device: DLDevice, src: u64, dst: &mut [u8]) -> Result<(), DeviceError> {
        let producer = self.0.producer_stream().as_raw();
        // SAFETY: `src..src + dst.len()` is the span of the validated tensor
        // over the owner's live memory, and `producer` the memory's stream.
        Ok(unsafe {
            dlpack_device::Raw::<M::Driver>::copy_to_host(device.device_id, src, dst, producer)
        }?)
    }
}

/// Device memory with work pending on its stream, as a Python tensor of
/// `shape` (compact row-major) in one call: every consumer's
/// `__dlpack__(stream=...)` makes the consumer's stream wait for the
/// memory's stream (one pooled event, the host never waits), and the memory
/// is freed once the tensor and every capsule are released, ordered after
/// every consumer's stream. `dl_device=(kDLCPU, 0)` copies to the host
/// after the pending work. [`cuda_tensor`] and [`rocm_tensor`] name it for
/// cudarc slices and HIP buffers.
///
/// # Errors
///
/// `BufferError` when `shape` does not fit the memory.
pub fn device_tensor<'py, M: DeviceMemory + Sync>(
    py: Python<'py>,
    memory: impl Into<M>,
    shape: &[i64],
) -> PyResult<Bound<'py, Tensor>> {
    let owner = Arc::new(Owner::<M>::new(memory));
    let span = Memory {
        ptr: std::ptr::with_exposed_provenance_mut(owner.device_ptr() as usize),
        len: owner.byte_len(),
        device: owner.device(),
        dtype: Some(M::Elem::DTYPE),
        read_only: owner.memory().shared(),
    };
    // SAFETY: the device memory lives as long as the Owner, which the Keep
    // holds (through the Arc) and which never moves it.
    let keep = unsafe { Keep::new(Arc::clone(&owner), span) };
    let tensor = Export::new(keep)
        .dtype(M::Elem::DTYPE)
        .shape(shape)
        .versioned()
        .py()?;
    let shared = SharedTensor::with_sync(tensor.into(), Arc::new(OwnerSync(owner)));
    Bound::new(py, Tensor::from_shared(shared))
}

/// A cudarc slice with work pending on its stream, as a Python tensor of
/// `shape` whose consumers are ordered after that stream (see
/// [`device_tensor`]).
///
/// ```no_run
/// use dlpack_cuda::cudarc::driver::CudaContext;
/// use pyo3::prelude::*;
///
/// #[pyfunction]
/// fn ones(py: Python<'_>) -> PyResult<Bound<'_, dlpack_py::Tensor>> {
///     let err = |e: dlpack_cuda::cudarc::driver::DriverError| {
///         pyo3::exceptions::PyRuntimeError::new_err(e.to_string())
///     };
///     let stream = CudaContext::new(0).map_err(err)?.new_stream().map_err(err)?;
///     // Work pending on `stream`: torch.from_dlpack(ones()) waits for it on the GPU.
///     let slice = stream.clone_htod(&[1.0f32; 6]).map_err(err)?;
///     dlpack_py::cuda_tensor(py, slice, &[2, 3])
/// }
/// ```
///
/// # Errors
///
/// As [`device_tensor`].
#[cfg(feature = "cuda")]
pub fn cuda_tensor<'py, T>(
    py: Python<'py>,
    slice: dlpack_cuda::cudarc::driver::CudaSlice<T>,
    shape: &[i64],
) -> PyResult<Bound<'py, Tensor>>
where
    T: Element + dlpack_cuda::cudarc::driver::DeviceRepr + Sync,
{
    device_tensor::<dlpack_cuda::CudaMemory<T>>(py, slice, shape)
}

/// A HIP buffer with work pending on its stream, as a Python tensor of
/// `shape` whose consumers are ordered after that stream (see
/// [`device_tensor`]).
///
/// ```no_run
/// use pyo3::prelude::*;
///
/// #[pyfunction]
/// fn zeros(py: Python<'_>, stream: u64) -> PyResult<Bound<'_, dlpack_py::Tensor>> {
///     let buffer = dlpack_rocm::HipBuffer::<f32>::alloc(0, stream, 6)
///         .map_err(dlpack_py::DeviceError::from)?;
///     // SAFETY: the buffer is live; `stream` is its stream.
///     unsafe { dlpack_rocm::Raw::memset_async(0, buffer.device_ptr(), 0, 24, stream) }
///         .map_err(dlpack_py::DeviceError::from)?;
///     dlpack_py::rocm_tensor(py, buffer, &[2, 3])
/// }
/// ```
///
/// # Errors
///
/// As [`device_tensor`].
#[cfg(feature = "rocm")]
pub fn rocm_tensor<'py, T: Element + Sync>(
    py: Python<'py>,
    buffer: dlpack_rocm::HipBuffer<T>,
    shape: &[i64],
) -> PyResult<Bound<'py, Tensor>> {
    device_tensor::<dlpack_rocm::HipBuffer<T>>(py, buffer, shape)
}
