//! Import of `kDLROCM` and `kDLROCMHost` tensors as typed device views, and
//! copies of any ROCm tensor to the host.
//!
//! The device is read from the pointer (`hipPointerGetAttributes`), not
//! trusted from the producer's `device_id`. A [`RocmTensorView`] borrows
//! the validated tensor and never frees memory.

use std::ops::Deref;

use dlpack_core::Element;
use dlpack_core::ffi::{DLDevice, DLDeviceType};
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_core::protocol::DeviceStream;
use dlpack_core::tensor::{DeviceView, TensorView};

use crate::device::{self, MemoryKind};
use crate::error::Error;

/// A validated tensor of `T`s in HIP memory, on the device the runtime
/// says owns the pointer.
///
/// ```no_run
/// use dlpack_core::managed::ManagedTensorVersioned;
/// use dlpack_rocm::RocmTensorView;
///
/// # fn get(raw: *mut dlpack_core::ffi::DLManagedTensorVersioned) -> Result<(), dlpack_rocm::Error> {
/// let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
/// let view = RocmTensorView::<f32>::new(tensor.view())?;
/// println!("{} floats at {:#x} on {:?}", view.len(), view.device_ptr(), view.device());
/// # Ok(()) }
/// ```
#[derive(Copy, Clone, Debug)]
pub struct RocmTensorView<'a, T>(DeviceView<'a, T>);

impl<'a, T> Deref for RocmTensorView<'a, T> {
    type Target = DeviceView<'a, T>;

    /// The accessors (device, memory kind, pointer, shape, strides) are the
    /// core's [`DeviceView`]'s.
    fn deref(&self) -> &DeviceView<'a, T> {
        &self.0
    }
}

impl<'a, T: Element> RocmTensorView<'a, T> {
    /// Checks that `view` holds `T`s in HIP memory and asks the runtime which
    /// device owns it (a size-zero tensor keeps the descriptor's device).
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedDevice`], [`Error::Core`] (dtype),
    /// [`Error::RuntimeNotFound`], [`Error::UnknownPointer`].
    pub fn new(view: TensorView<'a>) -> Result<Self, Error> {
        let claimed = view.device();
        let claimed_memory = match claimed.device_type {
            DLDeviceType::kDLROCM => MemoryKind::Device,
            DLDeviceType::kDLROCMHost => MemoryKind::Host,
            _ => return Err(Error::UnsupportedDevice { device: claimed }),
        };
        let checked = DeviceView::<T>::new(view, claimed, claimed_memory)?;
        let located = if view.num_elements() == 0 {
            checked
        } else {
            let info = device::pointer_info(view.data_ptr() as u64)?;
            let device_type = match info.memory {
                MemoryKind::Host => DLDeviceType::kDLROCMHost,
                MemoryKind::Device | MemoryKind::Managed => DLDeviceType::kDLROCM,
            };
            checked.with_location(DLDevice::new(device_type, info.device), info.memory)
        };
        Ok(RocmTensorView(located))
    }

    /// Copies the elements (a C-contiguous tensor) to a `Vec`, ordered after
    /// `producer`'s work; blocks until the copy is done.
    ///
    /// # Errors
    ///
    /// [`dlpack_core::Error::NotContiguous`], or a runtime failure.
    pub fn to_vec(&self, producer: DeviceStream) -> Result<Vec<T>, Error> {
        if !self.0.is_c_contiguous() {
            return Err(dlpack_core::Error::NotContiguous.into());
        }
        let copy = copy_with_device(&self.0.tensor(), self.0.device().device_id, producer)?;
        Ok(copy.view().as_slice::<T>()?.to_vec())
    }
}

/// Copies a ROCm tensor (any layout and element type) to host memory,
/// ordered after `producer`'s work, and returns it as a versioned tensor on
/// `(kDLCPU, 0)` with `IS_COPIED`. Blocks until the copy is done.
///
/// # Safety
///
/// The tensor's memory must be live HIP memory for the call, and `producer`
/// a live stream of its device (or the null stream).
///
/// # Errors
///
/// [`Error::UnsupportedDevice`], or a runtime failure.
pub unsafe fn copy_to_host(
    view: &TensorView<'_>,
    producer: DeviceStream,
) -> Result<ManagedTensorVersioned, Error> {
    let claimed = view.device();
    if !matches!(
        claimed.device_type,
        DLDeviceType::kDLROCM | DLDeviceType::kDLROCMHost
    ) {
        return Err(Error::UnsupportedDevice { device: claimed });
    }
    let ordinal = if view.num_elements() == 0 {
        claimed.device_id
    } else {
        device::pointer_info(view.data_ptr() as u64)?.device
    };
    copy_with_device(view, ordinal, producer)
}

fn copy_with_device(
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
