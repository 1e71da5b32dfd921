//! Import of `kDLCUDA`, `kDLCUDAManaged` and `kDLCUDAHost` tensors as typed
//! device views, and copies of any CUDA tensor to the host.
//!
//! The device is read from the pointer (`cuPointerGetAttribute`), not
//! trusted from the producer's `device_id`. A [`CudaTensorView`] borrows the
//! validated tensor; it never frees memory (unlike a cudarc `CudaSlice`,
//! which would free what it does not own).

use std::ops::Deref;

use dlpack_core::Element;
use dlpack_core::device::StreamKind;
use dlpack_core::ffi::{DLDevice, DLDeviceType};
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_core::protocol::DeviceStream;
use dlpack_core::tensor::{DeviceView, TensorView};

use crate::driver::{self, MemoryKind};
use crate::error::Error;

/// A validated tensor of `T`s in CUDA memory, on the device the driver says
/// owns the pointer.
///
/// ```no_run
/// use dlpack_core::managed::ManagedTensorVersioned;
/// use dlpack_cuda::CudaTensorView;
///
/// # fn get(raw: *mut dlpack_core::ffi::DLManagedTensorVersioned) -> Result<(), dlpack_cuda::Error> {
/// // `raw` came from a producer's capsule.
/// let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
/// let view = CudaTensorView::<f32>::new(tensor.view())?;
/// println!("{} floats at {:#x} on {:?}", view.len(), view.device_ptr(), view.device());
/// # Ok(()) }
/// ```
#[derive(Copy, Clone, Debug)]
pub struct CudaTensorView<'a, T>(DeviceView<'a, T>);

impl<'a, T> Deref for CudaTensorView<'a, T> {
    type Target = DeviceView<'a, T>;

    /// The accessors (device, memory kind, pointer, shape, strides) are the
    /// core's [`DeviceView`]'s.
    fn deref(&self) -> &DeviceView<'a, T> {
        &self.0
    }
}

impl<'a, T: Element> CudaTensorView<'a, T> {
    /// Checks that `view` holds `T`s in CUDA memory and asks the driver which
    /// device owns it. A size-zero tensor has no pointer to ask about: its
    /// device is taken from the descriptor.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedDevice`] for non-CUDA device types,
    /// [`dlpack_core::Error::DtypeMismatch`] (as [`Error::Core`]),
    /// [`Error::DriverNotFound`], [`Error::UnknownPointer`].
    pub fn new(view: TensorView<'a>) -> Result<Self, Error> {
        let claimed = view.device();
        let claimed_memory = match claimed.device_type {
            DLDeviceType::kDLCUDA => MemoryKind::Device,
            DLDeviceType::kDLCUDAManaged => MemoryKind::Managed,
            DLDeviceType::kDLCUDAHost => MemoryKind::Host,
            _ => return Err(Error::UnsupportedDevice { device: claimed }),
        };
        let checked = DeviceView::<T>::new(view, claimed, claimed_memory)?;
        let located = if view.num_elements() == 0 {
            checked
        } else {
            let info = driver::pointer_info(view.data_ptr() as u64)?;
            let device_type = match info.memory {
                MemoryKind::Device => DLDeviceType::kDLCUDA,
                MemoryKind::Managed => DLDeviceType::kDLCUDAManaged,
                MemoryKind::Host => DLDeviceType::kDLCUDAHost,
            };
            checked.with_location(DLDevice::new(device_type, info.device_ordinal), info.memory)
        };
        Ok(CudaTensorView(located))
    }

    /// Copies the elements (a C-contiguous tensor) to a `Vec`, ordered after
    /// `producer`'s work; blocks until the copy is done.
    ///
    /// # Errors
    ///
    /// [`dlpack_core::Error::NotContiguous`], or a driver failure.
    pub fn to_vec(&self, producer: DeviceStream) -> Result<Vec<T>, Error> {
        if !self.0.is_c_contiguous() {
            return Err(dlpack_core::Error::NotContiguous.into());
        }
        let copy = copy_to_host_with_device(&self.0.tensor(), self.0.device().device_id, producer)?;
        Ok(copy.view().as_slice::<T>()?.to_vec())
    }
}

/// Copies a CUDA tensor (any layout, any element type) to host memory,
/// ordered after `producer`'s pending work, and returns the copy as a
/// versioned tensor on `(kDLCPU, 0)` with `IS_COPIED` set. The device is read
/// from the pointer. Blocks until the copy is done — the host is the
/// consumer.
///
/// This is the `dl_device=(kDLCPU, 0)` path of a producer's `__dlpack__` for
/// memory that is not a cudarc buffer.
///
/// # Safety
///
/// The tensor's memory must be live CUDA memory for the duration of the
/// call (true for a tensor from a validated [`ManagedTensorVersioned`]
/// whose producer kept its contract), and `producer` a live stream of its
/// device.
///
/// # Errors
///
/// [`Error::UnsupportedDevice`] for non-CUDA tensors, or a driver failure.
pub unsafe fn copy_to_host(
    view: &TensorView<'_>,
    producer: DeviceStream,
) -> Result<ManagedTensorVersioned, Error> {
    let device = view.device();
    if device.device_type.stream_kind() != StreamKind::Cuda
        && device.device_type != DLDeviceType::kDLCUDAHost
    {
        return Err(Error::UnsupportedDevice { device });
    }
    let ordinal = if view.num_elements() == 0 {
        device.device_id
    } else {
        driver::pointer_info(view.data_ptr() as u64)?.device_ordinal
    };
    copy_to_host_with_device(view, ordinal, producer)
}

fn copy_to_host_with_device(
    view: &TensorView<'_>,
    ordinal: i32,
    producer: DeviceStream,
) -> Result<ManagedTensorVersioned, Error> {
    dlpack_core::export::copy_to_host(view, |first, bytes| {
        // SAFETY: the validated layout touches exactly these bytes from
        // `first`, which the producer keeps alive while the view lives.
        unsafe { crate::raw::copy_to_host(ordinal, first, bytes, producer.as_raw()) }
    })
}
