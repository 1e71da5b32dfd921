//! [`Hip`]: the [`Driver`] of the HIP runtime, over the function table of
//! [`crate::hip`]. All unsafe calls into the runtime live here.
//!
//! A context is a device ordinal (HIP binds devices, not contexts, to
//! threads: `hipSetDevice`).

use std::ffi::c_int;

use dlpack_core::device::{MemoryKind, StreamKind};
use dlpack_core::ffi::DLDeviceType;
use dlpack_device::{DeviceTypes, Driver, Error, PointerInfo};

use crate::hip::{
    self, EVENT_DISABLE_TIMING, MEMCPY_DEVICE_TO_DEVICE, MEMCPY_DEVICE_TO_HOST,
    MEMCPY_HOST_TO_DEVICE, PointerAttribute, Ptr, check,
};

/// The HIP runtime (`libamdhip64`, loaded at run time, or linked through
/// hip-sys). A context is a device ordinal.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Hip;

/// A handle as the runtime takes it.
pub(crate) fn handle(raw: u64) -> Ptr {
    std::ptr::without_provenance_mut(raw as usize)
}

fn api() -> Result<&'static hip::Api, Error> {
    Ok(&hip::runtime()?.api)
}

/// The memory kind for a `hipMemoryType` value, in the numbering of the
/// runtime's major version (ROCm 6: Unregistered 0, Host 1, Device 2,
/// Managed 3; ROCm 5: Host 0, Device 1, Array 2, Unified 3, Managed 4).
pub(crate) fn memory_kind(
    runtime_version: c_int,
    memory_type: u32,
    is_managed: c_int,
) -> Option<MemoryKind> {
    if is_managed != 0 {
        return Some(MemoryKind::Managed);
    }
    let rocm6 = runtime_version >= 60_000_000;
    match (rocm6, memory_type) {
        (true, 1) | (false, 0) => Some(MemoryKind::Host),
        (true, 2) | (false, 1 | 2) => Some(MemoryKind::Device),
        (true, 3) | (false, 3 | 4) => Some(MemoryKind::Managed),
        _ => None,
    }
}

// SAFETY: each call is the HIP runtime function its docs name; records and
// waits are asynchronous, and a wait enqueued on an event is unaffected by
// later records (the runtime's documented semantics).
unsafe impl Driver for Hip {
    const NAME: &'static str = "HIP";
    const STREAM_KIND: StreamKind = StreamKind::Rocm;
    const DEVICE_TYPES: DeviceTypes = DeviceTypes {
        device: DLDeviceType::kDLROCM,
        managed: DLDeviceType::kDLROCM,
        host: DLDeviceType::kDLROCMHost,
    };
    const COVERING_STREAM: u64 = 0;

    fn load() -> Result<(), Error> {
        hip::runtime().map(|_| ())
    }

    fn device_count() -> Result<i32, Error> {
        let mut n = 0;
        // SAFETY: valid out-pointer.
        check("hipGetDeviceCount", unsafe {
            (api()?.hipGetDeviceCount)(&mut n)
        })?;
        Ok(n)
    }

    fn primary_context(ordinal: i32) -> Result<u64, Error> {
        Ok(ordinal as u64)
    }

    fn current_context() -> Result<Option<u64>, Error> {
        let mut current = -1;
        // SAFETY: valid out-pointer.
        check("hipGetDevice", unsafe {
            (api()?.hipGetDevice)(&mut current)
        })?;
        Ok(u64::try_from(current).ok())
    }

    unsafe fn set_current_context(ctx: Option<u64>) -> Result<(), Error> {
        match ctx {
            // SAFETY: plain value argument.
            Some(d) => check("hipSetDevice", unsafe { (api()?.hipSetDevice)(d as c_int) }),
            None => Ok(()),
        }
    }

    fn event_create() -> Result<u64, Error> {
        let mut event = std::ptr::null_mut();
        // SAFETY: valid out-pointer; the device is current.
        check("hipEventCreateWithFlags", unsafe {
            (api()?.hipEventCreateWithFlags)(&mut event, EVENT_DISABLE_TIMING)
        })?;
        Ok(event as u64)
    }

    unsafe fn event_record(event: u64, stream: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        check("hipEventRecord", unsafe {
            (api()?.hipEventRecord)(handle(event), handle(stream))
        })
    }

    unsafe fn stream_wait_event(stream: u64, event: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        check("hipStreamWaitEvent", unsafe {
            (api()?.hipStreamWaitEvent)(handle(stream), handle(event), 0)
        })
    }

    unsafe fn event_destroy(event: u64) {
        if let Ok(api) = api() {
            // SAFETY: the caller's contract.
            let _ = unsafe { (api.hipEventDestroy)(handle(event)) };
        }
    }

    unsafe fn stream_synchronize(stream: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        check("hipStreamSynchronize", unsafe {
            (api()?.hipStreamSynchronize)(handle(stream))
        })
    }

    fn stream_create() -> Result<u64, Error> {
        let mut stream = std::ptr::null_mut();
        // SAFETY: valid out-pointer; the device is current; 1 is
        // hipStreamNonBlocking.
        check("hipStreamCreateWithFlags", unsafe {
            (api()?.hipStreamCreateWithFlags)(&mut stream, 1)
        })?;
        Ok(stream as u64)
    }

    unsafe fn stream_destroy(stream: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        check("hipStreamDestroy", unsafe {
            (api()?.hipStreamDestroy)(handle(stream))
        })
    }

    fn pointer_info(ptr: u64) -> Result<PointerInfo, Error> {
        let rt = hip::runtime()?;
        let mut attr = PointerAttribute {
            memory_type: 0,
            device: -1,
            device_pointer: std::ptr::null_mut(),
            host_pointer: std::ptr::null_mut(),
            is_managed: 0,
            allocation_flags: 0,
        };
        // SAFETY: `attr` is a writable hipPointerAttribute_t; the runtime
        // only reads `ptr` as an address.
        let code = unsafe { (rt.api.hipPointerGetAttributes)(&mut attr, handle(ptr)) };
        let unknown = |code| Error::UnknownPointer {
            driver: Self::NAME,
            ptr,
            code,
        };
        if code != 0 {
            return Err(unknown(code));
        }
        match memory_kind(rt.version, attr.memory_type, attr.is_managed) {
            Some(memory) if attr.device >= 0 => Ok(PointerInfo {
                device_ordinal: attr.device,
                memory,
            }),
            // Unregistered host memory: not HIP memory (hipErrorInvalidValue).
            _ => Err(unknown(1)),
        }
    }

    unsafe fn copy_to_host_async(dst: &mut [u8], src: u64, stream: u64) -> Result<(), Error> {
        // SAFETY: `dst` is writable for its length; the rest is the caller's
        // contract.
        check("hipMemcpyAsync", unsafe {
            (api()?.hipMemcpyAsync)(
                dst.as_mut_ptr().cast(),
                handle(src),
                dst.len(),
                MEMCPY_DEVICE_TO_HOST,
                handle(stream),
            )
        })
    }

    unsafe fn copy_from_host_async(dst: u64, src: &[u8], stream: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        check("hipMemcpyAsync", unsafe {
            (api()?.hipMemcpyAsync)(
                handle(dst),
                src.as_ptr().cast(),
                src.len(),
                MEMCPY_HOST_TO_DEVICE,
                handle(stream),
            )
        })
    }

    unsafe fn copy_device_async(dst: u64, src: u64, len: usize, stream: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        check("hipMemcpyAsync", unsafe {
            (api()?.hipMemcpyAsync)(
                handle(dst),
                handle(src),
                len,
                MEMCPY_DEVICE_TO_DEVICE,
                handle(stream),
            )
        })
    }

    unsafe fn memset_async(ptr: u64, value: u8, len: usize, stream: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        check("hipMemsetAsync", unsafe {
            (api()?.hipMemsetAsync)(handle(ptr), c_int::from(value), len, handle(stream))
        })
    }

    fn alloc(len: usize) -> Result<u64, Error> {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid out-pointer; the device is current.
        check("hipMalloc", unsafe {
            (api()?.hipMalloc)(&mut ptr, len.max(1))
        })?;
        Ok(ptr as u64)
    }

    /// `hipFree` is not stream-ordered: the host waits for `stream`, then
    /// frees (nothing is freed when the wait fails).
    unsafe fn free(ptr: u64, stream: u64) -> Result<(), Error> {
        // SAFETY: the caller's contract.
        unsafe {
            Self::stream_synchronize(stream)?;
            check("hipFree", (api()?.hipFree)(handle(ptr)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Raw;

    #[test]
    fn stream_values_for_the_consumer() {
        #[rustfmt::skip]
        let rows: &[(u64, Option<i64>)] = &[
            // raw,   __dlpack__(stream=)
            (0,       Some(0)),
            (1,       None),
            (2,       None),
            (0x1000,  Some(0x1000)),
        ];
        for &(raw, arg) in rows {
            assert_eq!(Raw::consumer_stream_arg(raw), arg, "arg {raw}");
        }
        // Same stream: no call, with or without a runtime.
        assert!(Raw::order_after(0, 0x1000, 0x1000).is_ok());
    }

    #[test]
    fn memory_type_numbering_per_major_version() {
        #[rustfmt::skip]
        let rows: &[(c_int, u32, c_int, Option<MemoryKind>)] = &[
            // version,    type, managed, kind
            (60_241_134,   0,    0,       None),
            (60_241_134,   1,    0,       Some(MemoryKind::Host)),
            (60_241_134,   2,    0,       Some(MemoryKind::Device)),
            (60_241_134,   3,    1,       Some(MemoryKind::Managed)),
            (50_221_153,   0,    0,       Some(MemoryKind::Host)),
            (50_221_153,   1,    0,       Some(MemoryKind::Device)),
            (50_221_153,   4,    1,       Some(MemoryKind::Managed)),
            (50_221_153,   9,    0,       None),
        ];
        for &(version, ty, managed, kind) in rows {
            assert_eq!(
                memory_kind(version, ty, managed),
                kind,
                "{version} {ty} {managed}"
            );
        }
    }
}
