//! The HIP runtime (`libamdhip64.so`) subset, with the C signatures of ROCm 6's
//! `hip_runtime_api.h`.
//!
//! Types: `hipError_t` = `c_int`; `hipStream_t`, `hipEvent_t` and device pointers are `void*`.
//! Stream handles: `0` is the null (legacy default) stream of the current device (`hipSetDevice`,
//! default 0, per thread), `hipStreamPerThread` (2) the calling thread's per-thread default
//! stream. HIP needs no `hipInit`.
//!
//! `hipPointerGetAttributes` fills the **ROCm 6 layout** of `hipPointerAttribute_t` (32 bytes):
//!
//! ```c
//! typedef struct hipPointerAttribute_t {
//!     enum hipMemoryType type;   // ROCm 6: Unregistered 0, Host 1, Device 2, Managed 3
//!     int device;
//!     void* devicePointer;
//!     void* hostPointer;
//!     int isManaged;
//!     unsigned allocationFlags;
//! } hipPointerAttribute_t;
//! ```
//!
//! (ROCm 5 called the first field `memoryType` and numbered the enum differently: Host 0,
//! Device 1; a ROCm 5 consumer must translate.) Pinned memory answers `hipMemoryTypeHost`,
//! device memory `hipMemoryTypeDevice`, managed memory `hipMemoryTypeManaged` with
//! `isManaged = 1`. A pointer the simulator does not know answers `hipSuccess` with `type` =
//! `hipMemoryTypeUnregistered` and `device` = -1, as CUDA 11+ and ROCm 6 do for plain host
//! memory; a pointer into freed device memory answers `hipErrorInvalidValue`.
//!
//! Safety: each function has the contract of the HIP function of the same name: pointers must
//! be null or valid for the documented reads and writes.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};

use crate::call::{Call, HostWait, On, Out, Pointer};
use crate::ffi::{HostFn, Launch, error_name, error_text, exports, hip, launch};
use crate::memory::MemKind;
use crate::sim::{Backend, Fill, Side, SimError, SimResult, set_hip_device};

/// `hipError_t`.
pub type HipError = c_int;
/// `hipStream_t`.
pub type HipStream = *mut c_void;
/// `hipEvent_t`.
pub type HipEvent = *mut c_void;

/// Runtime and driver version reported (HIP 6.2.41134).
pub const HIP_VERSION: c_int = 60_241_134;

/// `hipMemoryType` (ROCm 6 numbering).
mod memory_type {
    pub const UNREGISTERED: u32 = 0;
    pub const HOST: u32 = 1;
    pub const DEVICE: u32 = 2;
    pub const MANAGED: u32 = 3;
}

/// ROCm 6 `hipPointerAttribute_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HipPointerAttribute {
    /// `hipMemoryType type`.
    pub memory_type: u32,
    /// `int device`.
    pub device: c_int,
    /// `void* devicePointer`.
    pub device_pointer: *mut c_void,
    /// `void* hostPointer`.
    pub host_pointer: *mut c_void,
    /// `int isManaged`.
    pub is_managed: c_int,
    /// `unsigned allocationFlags`.
    pub allocation_flags: c_uint,
}

// ----- devices --------------------------------------------------------------------------------

exports! {
    fn hipInit(_flags: c_uint) -> HipError => hip(|c| c.init());

    unsafe fn hipGetDeviceCount(count: *mut c_int) -> HipError => hip(|c| {
        let n = c_int::try_from(c.device_count).unwrap_or(c_int::MAX);
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(count) }.put(n)?;
        if n == 0 {
            Err(SimError::NoDevice)
        } else {
            Ok(())
        }
    });

    fn hipSetDevice(device_id: c_int) -> HipError => hip(|c| {
        set_hip_device(c.device(device_id)?);
        Ok(())
    });

    unsafe fn hipGetDevice(device_id: *mut c_int) -> HipError => hip(|c| {
        let d = c.current_device()?;
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(device_id) }.put(d as c_int)
    });

    fn hipDeviceSynchronize() -> HipError => hip(|c| c.synchronize_current());

    unsafe fn hipRuntimeGetVersion(version: *mut c_int) -> HipError => hip(|_| {
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(version) }.put(HIP_VERSION)
    });

    unsafe fn hipDriverGetVersion(version: *mut c_int) -> HipError => hip(|_| {
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(version) }.put(HIP_VERSION)
    });

    // ----- streams ----------------------------------------------------------------------------

    unsafe fn hipStreamCreate(stream: *mut HipStream) -> HipError => hip(|c| {
        // SAFETY: out-pointer by contract.
        c.create_stream(0, unsafe { Out::new(stream) })
    });

    unsafe fn hipStreamCreateWithFlags(
        stream: *mut HipStream,
        flags: c_uint,
    ) -> HipError => hip(|c| {
        // SAFETY: out-pointer by contract.
        c.create_stream(flags, unsafe { Out::new(stream) })
    });

    fn hipStreamDestroy(stream: HipStream) -> HipError => hip(|c| c.destroy_stream(stream as u64));

    fn hipStreamSynchronize(stream: HipStream) -> HipError
        => hip(|c| c.synchronize_stream(stream as u64));

    fn hipStreamQuery(stream: HipStream) -> HipError => hip(|c| c.query_stream(stream as u64));

    fn hipStreamWaitEvent(stream: HipStream, event: HipEvent, _flags: c_uint) -> HipError
        => hip(|c| c.wait_event(stream as u64, event as u64));

    // ----- events -----------------------------------------------------------------------------

    unsafe fn hipEventCreate(event: *mut HipEvent) -> HipError => hip(|c| {
        // SAFETY: out-pointer by contract.
        c.create_event(0, unsafe { Out::new(event) })
    });

    unsafe fn hipEventCreateWithFlags(event: *mut HipEvent, flags: c_uint) -> HipError => hip(|c| {
        // SAFETY: out-pointer by contract.
        c.create_event(flags, unsafe { Out::new(event) })
    });

    fn hipEventRecord(event: HipEvent, stream: HipStream) -> HipError
        => hip(|c| c.record_event(event as u64, stream as u64));

    fn hipEventSynchronize(event: HipEvent) -> HipError
        => hip(|c| c.synchronize_event(event as u64));

    fn hipEventQuery(event: HipEvent) -> HipError => hip(|c| c.query_event(event as u64));

    fn hipEventDestroy(event: HipEvent) -> HipError => hip(|c| c.destroy_event(event as u64));

    // ----- memory -----------------------------------------------------------------------------

    unsafe fn hipMalloc(ptr: *mut *mut c_void, size: usize) -> HipError => hip(|c| {
        // SAFETY: out-pointer by contract.
        c.allocate(MemKind::Device, size, 0, unsafe { Out::new(ptr) })
    });

    unsafe fn hipHostMalloc(
        ptr: *mut *mut c_void,
        size: usize,
        flags: c_uint,
    ) -> HipError => hip(|c| {
        // SAFETY: out-pointer by contract.
        c.allocate(MemKind::Pinned, size, flags, unsafe { Out::new(ptr) })
    });

    unsafe fn hipMallocManaged(
        dev_ptr: *mut *mut c_void,
        size: usize,
        flags: c_uint,
    ) -> HipError => hip(|c| {
        // SAFETY: out-pointer by contract.
        c.allocate(MemKind::Managed, size, flags, unsafe { Out::new(dev_ptr) })
    });

    /// HIP frees of a null pointer succeed and do nothing.
    fn hipFree(ptr: *mut c_void) -> HipError => hip(|c| {
        if ptr.is_null() {
            return Ok(());
        }
        c.free_device(ptr as u64)
    });

    fn hipHostFree(ptr: *mut c_void) -> HipError => hip(|c| {
        if ptr.is_null() {
            return Ok(());
        }
        c.free_pinned(ptr as u64)
    });
}

/// `hipMemcpyKind` values of the copies with the direction in their name.
mod memcpy_kind {
    pub const HOST_TO_DEVICE: i32 = 1;
    pub const DEVICE_TO_HOST: i32 = 2;
}

/// Every HIP copy: `hipMemcpyKind` → the two sides, then the one copy body.
fn memcpy(
    c: &mut Call<'_>,
    on: On,
    dst: *const c_void,
    src: *const c_void,
    n: usize,
    kind: c_int,
) -> SimResult<()> {
    let (dst, src) = (dst as u64, src as u64);
    let (dst, src) = match kind {
        0 => (Side::Host(dst), Side::Host(src)),
        1 => (Side::Device(dst), Side::Host(src)),
        2 => (Side::Host(dst), Side::Device(src)),
        3 | 1024 => (Side::Device(dst), Side::Device(src)),
        4 => (Side::Any(dst), Side::Any(src)),
        _ => return Err(SimError::InvalidValue),
    };
    c.memcpy(on, dst, src, n)
}

/// HIP's synchronous copies and memsets run on the null stream and return when done.
const SYNC: On = On::Sync(HostWait::After);

exports! {
    unsafe fn hipMemcpy(dst: *mut c_void, src: *const c_void, size: usize, kind: c_int) -> HipError
        => hip(|c| memcpy(c, SYNC, dst, src, size, kind));

    unsafe fn hipMemcpyAsync(
        dst: *mut c_void,
        src: *const c_void,
        size: usize,
        kind: c_int,
        stream: HipStream,
    ) -> HipError => hip(|c| memcpy(c, On::Stream(stream as u64), dst, src, size, kind));

    unsafe fn hipMemcpyHtoD(dst: *mut c_void, src: *mut c_void, size: usize) -> HipError
        => hip(|c| memcpy(c, SYNC, dst, src, size, memcpy_kind::HOST_TO_DEVICE));

    unsafe fn hipMemcpyDtoH(dst: *mut c_void, src: *mut c_void, size: usize) -> HipError
        => hip(|c| memcpy(c, SYNC, dst, src, size, memcpy_kind::DEVICE_TO_HOST));

    unsafe fn hipMemcpyHtoDAsync(
        dst: *mut c_void,
        src: *mut c_void,
        size: usize,
        stream: HipStream,
    ) -> HipError => hip(|c| {
        memcpy(c, On::Stream(stream as u64), dst, src, size, memcpy_kind::HOST_TO_DEVICE)
    });

    unsafe fn hipMemcpyDtoHAsync(
        dst: *mut c_void,
        src: *mut c_void,
        size: usize,
        stream: HipStream,
    ) -> HipError => hip(|c| {
        memcpy(c, On::Stream(stream as u64), dst, src, size, memcpy_kind::DEVICE_TO_HOST)
    });

    fn hipMemset(dst: *mut c_void, value: c_int, size: usize) -> HipError
        => hip(|c| c.memset(SYNC, dst as u64, Fill::Bytes(value as u8), size));

    fn hipMemsetAsync(
        dst: *mut c_void,
        value: c_int,
        size: usize,
        stream: HipStream,
    ) -> HipError => hip(|c| {
        let on = On::Stream(stream as u64);
        c.memset(on, dst as u64, Fill::Bytes(value as u8), size)
    });

    unsafe fn hipPointerGetAttributes(
        attributes: *mut HipPointerAttribute,
        ptr: *const c_void,
    ) -> HipError => hip(|c| {
        if ptr.is_null() {
            return Err(SimError::InvalidValue);
        }
        let value = match c.pointer(ptr as u64) {
            Pointer::Live(info) => HipPointerAttribute {
                memory_type: match info.kind {
                    MemKind::Device => memory_type::DEVICE,
                    MemKind::Pinned => memory_type::HOST,
                    MemKind::Managed => memory_type::MANAGED,
                },
                device: info.device as c_int,
                device_pointer: ptr.cast_mut(),
                host_pointer: if info.kind == MemKind::Device {
                    std::ptr::null_mut()
                } else {
                    ptr.cast_mut()
                },
                is_managed: c_int::from(info.kind == MemKind::Managed),
                allocation_flags: info.flags,
            },
            Pointer::Freed => return Err(SimError::InvalidValue),
            Pointer::Unknown => HipPointerAttribute {
                memory_type: memory_type::UNREGISTERED,
                device: -1,
                device_pointer: std::ptr::null_mut(),
                host_pointer: ptr.cast_mut(),
                is_managed: 0,
                allocation_flags: 0,
            },
        };
        // SAFETY: out-pointer to a `hipPointerAttribute_t` by contract.
        unsafe { Out::new(attributes) }.put(value)
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn hipLaunchHostFunc(
    stream: HipStream,
    func: HostFn,
    user_data: *mut c_void,
) -> HipError {
    launch(Launch {
        api: "hipLaunchHostFunc",
        name: "hipLaunchHostFunc",
        backend: Backend::Hip,
        stream: stream as u64,
        reads: &[],
        writes: &[],
        func,
        user: user_data,
        needs_init: false,
    }) as HipError
}

#[unsafe(no_mangle)]
pub extern "C" fn hipGetErrorString(error: HipError) -> *const c_char {
    crate::ffi::guarded(c"unknown error".as_ptr(), || {
        crate::sim::lock().count("hipGetErrorString");
        let code = u32::try_from(error).ok();
        code.and_then(|code| error_text(Backend::Hip, code))
            .map_or(c"unknown error".as_ptr(), CStr::as_ptr)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipGetErrorName(error: HipError) -> *const c_char {
    crate::ffi::guarded(c"hipErrorUnknown".as_ptr(), || {
        crate::sim::lock().count("hipGetErrorName");
        let code = u32::try_from(error).ok();
        code.and_then(|code| error_name(Backend::Hip, code))
            .map_or(c"hipErrorUnknown".as_ptr(), CStr::as_ptr)
    })
}
