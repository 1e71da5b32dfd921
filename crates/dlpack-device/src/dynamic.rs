//! [`Runtime`]: the runtime of one driver behind a trait object, for code
//! that picks the driver from a device type at run time (a registry of
//! device type → runtime, as `dlpack-py` keeps one).

use std::marker::PhantomData;

use dlpack_core::device::StreamKind;
use dlpack_core::ffi::DLDevice;
use dlpack_core::sync::{StreamSync, SyncAction};

use crate::driver::{DeviceTypes, Driver, PointerInfo};
use crate::error::Error;
use crate::runtime::Raw;
use crate::stream::HeldStream;
use crate::sync::DeviceSync;

/// The [`Raw`] API of one driver as a trait object (see [`runtime`]).
pub trait Runtime: Send + Sync + std::fmt::Debug {
    /// The driver's name (`"CUDA"`, `"HIP"`).
    fn name(&self) -> &'static str;
    /// Which stream rules of the standard apply.
    fn stream_kind(&self) -> StreamKind;
    /// The driver's device types.
    fn device_types(&self) -> DeviceTypes;
    /// The stream that covers every blocking stream of a context (the one
    /// to use when no stream is pending).
    fn covering_stream(&self) -> u64;
    /// Whether the driver library can be loaded.
    fn is_present(&self) -> bool;
    /// A stream value held as the calling thread means it.
    fn held(&self, raw: u64) -> HeldStream;
    /// Carries out a sync action of the core for `device` ([`StreamSync`]).
    ///
    /// # Errors
    ///
    /// As [`DeviceSync`].
    fn apply(&self, device: DLDevice, action: SyncAction) -> Result<(), Error>;
    /// [`Raw::order_after`].
    ///
    /// # Errors
    ///
    /// As there.
    fn order_after(&self, ordinal: i32, producer: u64, consumer: u64) -> Result<(), Error>;
    /// [`Raw::pointer_info`].
    ///
    /// # Errors
    ///
    /// As there.
    fn pointer_info(&self, ptr: u64) -> Result<PointerInfo, Error>;
    /// [`Raw::copy_to_host`].
    ///
    /// # Safety
    ///
    /// As there.
    ///
    /// # Errors
    ///
    /// As there.
    unsafe fn copy_to_host(
        &self,
        ordinal: i32,
        src: u64,
        dst: &mut [u8],
        producer: u64,
    ) -> Result<(), Error>;
    /// [`Raw::host_wait`].
    ///
    /// # Safety
    ///
    /// As there.
    ///
    /// # Errors
    ///
    /// As there.
    unsafe fn host_wait(&self, ordinal: i32, stream: u64) -> Result<(), Error>;
    /// [`Raw::copy_from_host`].
    ///
    /// # Safety
    ///
    /// As there.
    ///
    /// # Errors
    ///
    /// As there.
    unsafe fn copy_from_host(
        &self,
        ordinal: i32,
        dst: u64,
        src: &[u8],
        stream: u64,
    ) -> Result<(), Error>;
    /// [`Raw::memset_async`].
    ///
    /// # Safety
    ///
    /// As there.
    ///
    /// # Errors
    ///
    /// As there.
    unsafe fn memset_async(
        &self,
        ordinal: i32,
        ptr: u64,
        value: u8,
        len: usize,
        stream: u64,
    ) -> Result<(), Error>;
    /// [`Raw::stream_create`].
    ///
    /// # Errors
    ///
    /// As there.
    fn stream_create(&self, ordinal: i32) -> Result<u64, Error>;
    /// [`Raw::stream_destroy`].
    ///
    /// # Safety
    ///
    /// As there.
    ///
    /// # Errors
    ///
    /// As there.
    unsafe fn stream_destroy(&self, ordinal: i32, stream: u64) -> Result<(), Error>;
    /// [`Raw::alloc`].
    ///
    /// # Errors
    ///
    /// As there.
    fn alloc(&self, ordinal: i32, len: usize) -> Result<u64, Error>;
    /// [`Raw::free`].
    ///
    /// # Safety
    ///
    /// As there.
    ///
    /// # Errors
    ///
    /// As there.
    unsafe fn free(&self, ordinal: i32, ptr: u64, stream: u64) -> Result<(), Error>;
}

/// The runtime of driver `D` as a trait object.
pub fn runtime<D: Driver>() -> &'static dyn Runtime {
    &Raw::<D>(PhantomData)
}

impl<D: Driver> Runtime for Raw<D> {
    fn name(&self) -> &'static str {
        D::NAME
    }

    fn stream_kind(&self) -> StreamKind {
        D::STREAM_KIND
    }

    fn device_types(&self) -> DeviceTypes {
        D::DEVICE_TYPES
    }

    fn covering_stream(&self) -> u64 {
        D::COVERING_STREAM
    }

    fn is_present(&self) -> bool {
        D::is_present()
    }

    fn held(&self, raw: u64) -> HeldStream {
        HeldStream::received::<D>(raw)
    }

    fn apply(&self, device: DLDevice, action: SyncAction) -> Result<(), Error> {
        DeviceSync::<D>::new().apply(device, action)
    }

    fn order_after(&self, ordinal: i32, producer: u64, consumer: u64) -> Result<(), Error> {
        Raw::<D>::order_after(ordinal, producer, consumer)
    }

    fn pointer_info(&self, ptr: u64) -> Result<PointerInfo, Error> {
        Raw::<D>::pointer_info(ptr)
    }

    unsafe fn copy_to_host(
        &self,
        ordinal: i32,
        src: u64,
        dst: &mut [u8],
        producer: u64,
    ) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { Raw::<D>::copy_to_host(ordinal, src, dst, producer) }
    }

    unsafe fn host_wait(&self, ordinal: i32, stream: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { Raw::<D>::host_wait(ordinal, stream) }
    }

    unsafe fn copy_from_host(
        &self,
        ordinal: i32,
        dst: u64,
        src: &[u8],
        stream: u64,
    ) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { Raw::<D>::copy_from_host(ordinal, dst, src, stream) }
    }

    unsafe fn memset_async(
        &self,
        ordinal: i32,
        ptr: u64,
        value: u8,
        len: usize,
        stream: u64,
    ) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { Raw::<D>::memset_async(ordinal, ptr, value, len, stream) }
    }

    fn stream_create(&self, ordinal: i32) -> Result<u64, Error> {
        Raw::<D>::stream_create(ordinal)
    }

    unsafe fn stream_destroy(&self, ordinal: i32, stream: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { Raw::<D>::stream_destroy(ordinal, stream) }
    }

    fn alloc(&self, ordinal: i32, len: usize) -> Result<u64, Error> {
        Raw::<D>::alloc(ordinal, len)
    }

    unsafe fn free(&self, ordinal: i32, ptr: u64, stream: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { Raw::<D>::free(ordinal, ptr, stream) }
    }
}
