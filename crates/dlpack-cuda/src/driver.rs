//! [`Cuda`]: the [`Driver`] of the CUDA driver API, over cudarc's `sys`
//! (raw bindings) and `result` (checked calls) levels. The only module that
//! calls the driver's C functions.
//!
//! Invariant: every call is made after [`Driver::load`] succeeded, because
//! cudarc's lazy loader panics when `libcuda.so` is missing.

use std::mem::MaybeUninit;
use std::sync::{Mutex, OnceLock};

use cudarc::driver::result::{self, DriverError};
use cudarc::driver::sys;
use dlpack_core::device::{MemoryKind, StreamKind};
use dlpack_core::ffi::DLDeviceType;
use dlpack_device::{DeviceTypes, Driver, Error, PointerInfo};

/// The CUDA driver API (`libcuda.so`, loaded at run time by cudarc). A
/// context is a `CUcontext`; raw handles belong to a device's primary
/// context.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cuda;

/// A failed driver call as the runtime's error.
pub(crate) fn err(call: &'static str, e: DriverError) -> Error {
    Error::Driver {
        call,
        code: e.0 as i32,
        name: format!("{:?}", e.0),
        invalid_device: e.0 == sys::CUresult::CUDA_ERROR_INVALID_DEVICE,
    }
}

/// The stream handle the driver takes for a raw value (0x1 legacy, 0x2
/// per-thread, or a `CUstream`).
pub(crate) fn stream(raw: u64) -> sys::CUstream {
    std::ptr::without_provenance_mut(raw as usize)
}

fn event(raw: u64) -> sys::CUevent {
    std::ptr::without_provenance_mut(raw as usize)
}

fn context(raw: u64) -> sys::CUcontext {
    std::ptr::without_provenance_mut(raw as usize)
}

/// The raw value of a driver handle.
pub(crate) fn raw<T>(handle: *mut T) -> u64 {
    handle as usize as u64
}

fn attribute<T: Copy>(ptr: u64, attr: sys::CUpointer_attribute) -> Result<T, DriverError> {
    let mut value = MaybeUninit::<T>::uninit();
    // SAFETY: `value` has room for the attribute's type (the caller names
    // the type the driver documents for `attr`); the driver only reads `ptr`
    // as an address.
    unsafe {
        sys::cuPointerGetAttribute(value.as_mut_ptr().cast(), attr, ptr).result()?;
        Ok(value.assume_init())
    }
}

// SAFETY: each call is the CUDA driver function its docs name; records and
// waits are asynchronous, and a wait enqueued on an event is unaffected by
// later records (the driver's documented semantics).
unsafe impl Driver for Cuda {
    const NAME: &'static str = "CUDA";
    const STREAM_KIND: StreamKind = StreamKind::Cuda;
    const DEVICE_TYPES: DeviceTypes = DeviceTypes {
        device: DLDeviceType::kDLCUDA,
        managed: DLDeviceType::kDLCUDAManaged,
        host: DLDeviceType::kDLCUDAHost,
    };
    const COVERING_STREAM: u64 = 1;

    fn canonical_stream(raw: u64) -> u64 {
        if raw == 0 { 1 } else { raw }
    }

    fn load() -> Result<(), Error> {
        static INIT: OnceLock<()> = OnceLock::new();
        if INIT.get().is_some() {
            return Ok(());
        }
        if !Self::is_present() {
            return Err(Error::not_found::<Cuda>("libcuda.so"));
        }
        // A failed cuInit (e.g. no device) is retried on the next call.
        result::init().map_err(|e| err("cuInit", e))?;
        let _ = INIT.set(());
        Ok(())
    }

    fn is_present() -> bool {
        static PRESENT: OnceLock<bool> = OnceLock::new();
        // SAFETY: `is_culib_present` only tries to open the library by its
        // usual names (dlopen/dlclose); it calls no driver function.
        *PRESENT.get_or_init(|| unsafe { sys::is_culib_present() })
    }

    fn device_count() -> Result<i32, Error> {
        result::device::get_count().map_err(|e| err("cuDeviceGetCount", e))
    }

    fn primary_context(ordinal: i32) -> Result<u64, Error> {
        static PRIMARY: Mutex<Vec<(i32, u64)>> = Mutex::new(Vec::new());
        let mut known = PRIMARY.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&(_, ctx)) = known.iter().find(|(o, _)| *o == ordinal) {
            return Ok(ctx);
        }
        let device = result::device::get(ordinal).map_err(|e| err("cuDeviceGet", e))?;
        // SAFETY: `device` came from cuDeviceGet; the retained reference is
        // never released (the context lives as long as the process, as the
        // CUDA runtime's does).
        let ctx = unsafe { result::primary_ctx::retain(device) }
            .map_err(|e| err("cuDevicePrimaryCtxRetain", e))?;
        known.push((ordinal, raw(ctx)));
        Ok(raw(ctx))
    }

    fn current_context() -> Result<Option<u64>, Error> {
        Ok(result::ctx::get_current()
            .map_err(|e| err("cuCtxGetCurrent", e))?
            .map(raw))
    }

    unsafe fn set_current_context(ctx: Option<u64>) -> Result<(), Error> {
        // SAFETY: the caller's contract (NULL unbinds).
        unsafe { result::ctx::set_current(context(ctx.unwrap_or(0))) }
            .map_err(|e| err("cuCtxSetCurrent", e))
    }

    fn event_create() -> Result<u64, Error> {
        result::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING)
            .map(raw)
            .map_err(|e| err("cuEventCreate", e))
    }

    unsafe fn event_record(e: u64, s: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { result::event::record(event(e), stream(s)) }.map_err(|e| err("cuEventRecord", e))
    }

    unsafe fn stream_wait_event(s: u64, e: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe {
            result::stream::wait_event(
                stream(s),
                event(e),
                sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
            )
        }
        .map_err(|e| err("cuStreamWaitEvent", e))
    }

    unsafe fn event_destroy(e: u64) {
        // SAFETY: the caller's contract.
        let _ = unsafe { result::event::destroy(event(e)) };
    }

    unsafe fn stream_synchronize(s: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { result::stream::synchronize(stream(s)) }.map_err(|e| err("cuStreamSynchronize", e))
    }

    fn stream_create() -> Result<u64, Error> {
        result::stream::create(result::stream::StreamKind::NonBlocking)
            .map(raw)
            .map_err(|e| err("cuStreamCreate", e))
    }

    unsafe fn stream_destroy(s: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { result::stream::destroy(stream(s)) }.map_err(|e| err("cuStreamDestroy_v2", e))
    }

    fn pointer_info(ptr: u64) -> Result<PointerInfo, Error> {
        use sys::CUpointer_attribute as A;
        let unknown = |e: DriverError| Error::UnknownPointer {
            driver: Self::NAME,
            ptr,
            code: e.0 as i32,
        };
        let device_ordinal: i32 =
            attribute(ptr, A::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL).map_err(unknown)?;
        let memory_type: u32 =
            attribute(ptr, A::CU_POINTER_ATTRIBUTE_MEMORY_TYPE).map_err(unknown)?;
        let is_managed: u32 =
            attribute(ptr, A::CU_POINTER_ATTRIBUTE_IS_MANAGED).map_err(unknown)?;
        let memory = match (is_managed, memory_type) {
            (m, _) if m != 0 => MemoryKind::Managed,
            (_, 1) => MemoryKind::Host,
            _ => MemoryKind::Device,
        };
        Ok(PointerInfo {
            device_ordinal,
            memory,
        })
    }

    unsafe fn copy_to_host_async(dst: &mut [u8], src: u64, s: u64) -> Result<(), Error> {
        // SAFETY: `dst` is writable for its length; the rest is the caller's
        // contract.
        unsafe { sys::cuMemcpyDtoHAsync_v2(dst.as_mut_ptr().cast(), src, dst.len(), stream(s)) }
            .result()
            .map_err(|e| err("cuMemcpyDtoHAsync_v2", e))
    }

    unsafe fn copy_from_host_async(dst: u64, src: &[u8], s: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { result::memcpy_htod_async(dst, src, stream(s)) }
            .map_err(|e| err("cuMemcpyHtoDAsync_v2", e))
    }

    unsafe fn copy_device_async(dst: u64, src: u64, len: usize, s: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { result::memcpy_dtod_async(dst, src, len, stream(s)) }
            .map_err(|e| err("cuMemcpyDtoDAsync_v2", e))
    }

    unsafe fn memset_async(ptr: u64, value: u8, len: usize, s: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { result::memset_d8_async(ptr, value, len, stream(s)) }
            .map_err(|e| err("cuMemsetD8Async", e))
    }

    fn alloc(len: usize) -> Result<u64, Error> {
        // SAFETY: a plain allocation in the current context.
        unsafe { result::malloc_sync(len.max(1)) }.map_err(|e| err("cuMemAlloc_v2", e))
    }

    unsafe fn free(ptr: u64, s: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe { result::free_async(ptr, stream(s)) }.map_err(|e| err("cuMemFreeAsync", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Raw;

    #[test]
    fn stream_values_for_the_consumer() {
        #[rustfmt::skip]
        let rows: &[(u64, u64, i64)] = &[
            // raw,   canonical, __dlpack__(stream=)
            (0,       1,         1),
            (1,       1,         1),
            (2,       2,         2),
            (0x1000,  0x1000,    0x1000),
        ];
        for &(raw, canonical, arg) in rows {
            assert_eq!(Cuda::canonical_stream(raw), canonical, "canonical {raw}");
            assert_eq!(Raw::consumer_stream_arg(raw), Some(arg), "arg {raw}");
        }
    }

    #[test]
    fn same_stream_needs_no_driver() {
        // Works with or without a driver: no call is made.
        assert!(Raw::order_after(0, 0x1000, 0x1000).is_ok());
        assert!(Raw::order_after(0, 0, 1).is_ok());
    }
}
