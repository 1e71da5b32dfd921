//! Import: received tensors as typed device views on the device the
//! *pointer* belongs to, and copies of any device tensor to the host.
//!
//! The device is read from the pointer (the driver's pointer attributes),
//! not trusted from the producer's `device_id`. A [`DeviceTensorView`]
//! borrows the validated tensor; it never frees memory.

use std::marker::PhantomData;
use std::ops::Deref;

use dlpack_core::Element;
use dlpack_core::ffi::DLDevice;
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_core::protocol::DeviceStream;
use dlpack_core::tensor::{DeviceView, TensorView};

use crate::driver::Driver;
use crate::error::Error;
use crate::runtime::Raw;

/// A validated tensor of `T`s in memory of driver `D`, on the device the
/// driver says owns the pointer. Backend crates name it `CudaTensorView`
/// and `RocmTensorView`.
#[derive(Debug)]
pub struct DeviceTensorView<'a, D, T> {
    view: DeviceView<'a, T>,
    driver: PhantomData<D>,
}

impl<D, T: Copy> Clone for DeviceTensorView<'_, D, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D, T: Copy> Copy for DeviceTensorView<'_, D, T> {}

impl<'a, D, T> Deref for DeviceTensorView<'a, D, T> {
    type Target = DeviceView<'a, T>;

    /// The accessors (device, memory kind, pointer, shape, strides) are the
    /// core's [`DeviceView`]'s.
    fn deref(&self) -> &DeviceView<'a, T> {
        &self.view
    }
}

impl<'a, D: Driver, T: Element> DeviceTensorView<'a, D, T> {
    /// Checks that `view` holds `T`s in memory of `D` and asks the driver
    /// which device owns it. A size-zero tensor has no pointer to ask
    /// about: its device is taken from the descriptor.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedDevice`] for other device types,
    /// [`dlpack_core::Error::DtypeMismatch`] (as [`Error::Core`]),
    /// [`Error::DriverNotFound`], [`Error::UnknownPointer`].
    pub fn new(view: TensorView<'a>) -> Result<Self, Error> {
        let claimed = view.device();
        let Some(claimed_memory) = D::DEVICE_TYPES.memory(claimed.device_type) else {
            return Err(Error::unsupported::<D>(claimed));
        };
        let checked = DeviceView::<T>::new(view, claimed, claimed_memory)?;
        let located = if view.num_elements() == 0 {
            checked
        } else {
            let info = Raw::<D>::pointer_info(view.data_ptr() as u64)?;
            let device_type = D::DEVICE_TYPES.of(info.memory);
            checked.with_location(DLDevice::new(device_type, info.device_ordinal), info.memory)
        };
        Ok(DeviceTensorView {
            view: located,
            driver: PhantomData,
        })
    }

    /// Copies the elements (a C-contiguous tensor) to a `Vec`, ordered after
    /// `producer`'s work; blocks until the copy is done.
    ///
    /// # Errors
    ///
    /// [`dlpack_core::Error::NotContiguous`], or a driver failure.
    pub fn to_vec(&self, producer: DeviceStream) -> Result<Vec<T>, Error> {
        if !self.view.is_c_contiguous() {
            return Err(dlpack_core::Error::NotContiguous.into());
        }
        let copy =
            copy_with_device::<D>(&self.view.tensor(), self.view.device().device_id, producer)?;
        Ok(copy.view().as_slice::<T>()?.to_vec())
    }
}

/// Copies a tensor in memory of driver `D` (any layout, any element type)
/// to host memory, ordered after `producer`'s pending work, and returns the
/// copy as a versioned tensor on `(kDLCPU, 0)` with `IS_COPIED` set. The
/// device is read from the pointer. Blocks until the copy is done — the
/// host is the consumer.
///
/// # Safety
///
/// The tensor's memory must be live memory of `D` for the duration of the
/// call (true for a tensor from a validated [`ManagedTensorVersioned`]
/// whose producer kept its contract), and `producer` a live stream of its
/// device.
///
/// # Errors
///
/// [`Error::UnsupportedDevice`] for other devices, or a driver failure.
pub unsafe fn copy_to_host<D: Driver>(
    view: &TensorView<'_>,
    producer: DeviceStream,
) -> Result<ManagedTensorVersioned, Error> {
    let device = view.device();
    if D::DEVICE_TYPES.memory(device.device_type).is_none() {
        return Err(Error::unsupported::<D>(device));
    }
    let ordinal = if view.num_elements() == 0 {
        device.device_id
    } else {
        Raw::<D>::pointer_info(view.data_ptr() as u64)?.device_ordinal
    };
    copy_with_device::<D>(view, ordinal, producer)
}

fn copy_with_device<D: Driver>(
    view: &TensorView<'_>,
    ordinal: i32,
    producer: DeviceStream,
) -> Result<ManagedTensorVersioned, Error> {
    dlpack_core::export::copy_to_host(view, |first, bytes| {
        // SAFETY: the validated layout touches exactly these bytes from
        // `first`, which the producer keeps alive while the view lives.
        unsafe { Raw::<D>::copy_to_host(ordinal, first, bytes, producer.as_raw()) }
    })
}
