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

use crate::ffi::{HostFn, Launch, hip, launch, write_out};
use crate::memory::{AddressError, MemKind};
use crate::sim::{Backend, Side, Sim, SimError, SimResult, hip_device, set_hip_device};
use crate::stream::StreamKey;

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

const ERRORS: &[(c_int, &CStr, &CStr)] = &[
    (0, c"hipSuccess", c"no error"),
    (1, c"hipErrorInvalidValue", c"invalid argument"),
    (2, c"hipErrorOutOfMemory", c"out of memory"),
    (3, c"hipErrorNotInitialized", c"initialization error"),
    (
        100,
        c"hipErrorNoDevice",
        c"no ROCm-capable device is detected",
    ),
    (101, c"hipErrorInvalidDevice", c"invalid device ordinal"),
    (201, c"hipErrorInvalidContext", c"invalid device context"),
    (400, c"hipErrorInvalidHandle", c"invalid resource handle"),
    (600, c"hipErrorNotReady", c"device not ready"),
    (
        700,
        c"hipErrorIllegalAddress",
        c"an illegal memory access was encountered",
    ),
    (801, c"hipErrorNotSupported", c"operation not supported"),
    (999, c"hipErrorUnknown", c"unknown error"),
];

fn device(sim: &Sim) -> SimResult<u32> {
    sim.current_device(Backend::Hip)
}

fn stream_key(sim: &mut Sim, api: &str, stream: HipStream) -> SimResult<StreamKey> {
    sim.stream_key_or_report(Backend::Hip, api, stream as u64)
}

fn event_arg(sim: &mut Sim, api: &str, event: HipEvent) -> SimResult<u64> {
    let handle = event as u64;
    if sim.timelines.event(handle).is_some() {
        Ok(handle)
    } else {
        sim.error(format!("{api}: invalid event handle {handle:#x}"));
        Err(SimError::InvalidHandle)
    }
}

// ----- devices --------------------------------------------------------------------------------

#[unsafe(no_mangle)]
pub extern "C" fn hipInit(_flags: c_uint) -> HipError {
    hip("hipInit", |sim| {
        if sim.device_count == 0 {
            Err(SimError::NoDevice)
        } else {
            Ok(())
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipGetDeviceCount(count: *mut c_int) -> HipError {
    hip("hipGetDeviceCount", |sim| {
        let n = c_int::try_from(sim.device_count).unwrap_or(c_int::MAX);
        // SAFETY: out-pointer by contract.
        unsafe { write_out(count, n) }?;
        if n == 0 {
            Err(SimError::NoDevice)
        } else {
            Ok(())
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipSetDevice(device_id: c_int) -> HipError {
    hip("hipSetDevice", |sim| {
        let d = u32::try_from(device_id).map_err(|_| SimError::InvalidDevice)?;
        sim.check_device(d)?;
        set_hip_device(d);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipGetDevice(device_id: *mut c_int) -> HipError {
    hip("hipGetDevice", |sim| {
        device(sim)?;
        // SAFETY: out-pointer by contract.
        unsafe { write_out(device_id, hip_device() as c_int) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipDeviceSynchronize() -> HipError {
    hip("hipDeviceSynchronize", |sim| {
        let d = device(sim)?;
        sim.count_blocking();
        sim.timelines.host_join_device(d);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipRuntimeGetVersion(version: *mut c_int) -> HipError {
    hip("hipRuntimeGetVersion", |_| {
        // SAFETY: out-pointer by contract.
        unsafe { write_out(version, HIP_VERSION) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipDriverGetVersion(version: *mut c_int) -> HipError {
    hip("hipDriverGetVersion", |_| {
        // SAFETY: out-pointer by contract.
        unsafe { write_out(version, HIP_VERSION) }
    })
}

// ----- streams --------------------------------------------------------------------------------

fn create_stream(sim: &mut Sim, out: *mut HipStream, flags: c_uint) -> SimResult<()> {
    let d = device(sim)?;
    if out.is_null() {
        return Err(SimError::InvalidValue);
    }
    let handle = sim.create_stream(d, flags);
    // SAFETY: non-null out-pointer by contract.
    unsafe { write_out(out, handle as HipStream) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipStreamCreate(stream: *mut HipStream) -> HipError {
    hip("hipStreamCreate", |sim| create_stream(sim, stream, 0))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipStreamCreateWithFlags(
    stream: *mut HipStream,
    flags: c_uint,
) -> HipError {
    hip("hipStreamCreateWithFlags", |sim| {
        create_stream(sim, stream, flags)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipStreamDestroy(stream: HipStream) -> HipError {
    hip("hipStreamDestroy", |sim| {
        let handle = stream as u64;
        if sim.timelines.destroy_stream(StreamKey::Created(handle)) {
            Ok(())
        } else {
            sim.error(format!(
                "hipStreamDestroy: invalid stream handle {handle:#x}"
            ));
            Err(SimError::InvalidHandle)
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipStreamSynchronize(stream: HipStream) -> HipError {
    hip("hipStreamSynchronize", |sim| {
        let key = stream_key(sim, "hipStreamSynchronize", stream)?;
        sim.count_blocking();
        sim.timelines.host_join_stream(key);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipStreamQuery(stream: HipStream) -> HipError {
    hip("hipStreamQuery", |sim| {
        let key = stream_key(sim, "hipStreamQuery", stream)?;
        let clock = sim.timelines.stream_clock(key);
        sim.query(clock)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipStreamWaitEvent(
    stream: HipStream,
    event: HipEvent,
    _flags: c_uint,
) -> HipError {
    hip("hipStreamWaitEvent", |sim| {
        let key = stream_key(sim, "hipStreamWaitEvent", stream)?;
        let e = event_arg(sim, "hipStreamWaitEvent", event)?;
        sim.timelines.wait(key, e).ok_or(SimError::InvalidHandle)?;
        Ok(())
    })
}

// ----- events ---------------------------------------------------------------------------------

fn create_event(sim: &mut Sim, out: *mut HipEvent, flags: c_uint) -> SimResult<()> {
    let context = device(sim)?; // the device's primary context
    if out.is_null() {
        return Err(SimError::InvalidValue);
    }
    let handle = crate::sim::new_event_handle();
    sim.timelines.create_event(handle, flags, context);
    // SAFETY: non-null out-pointer by contract.
    unsafe { write_out(out, handle as HipEvent) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipEventCreate(event: *mut HipEvent) -> HipError {
    hip("hipEventCreate", |sim| create_event(sim, event, 0))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipEventCreateWithFlags(event: *mut HipEvent, flags: c_uint) -> HipError {
    hip("hipEventCreateWithFlags", |sim| {
        create_event(sim, event, flags)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipEventRecord(event: HipEvent, stream: HipStream) -> HipError {
    hip("hipEventRecord", |sim| {
        let e = event_arg(sim, "hipEventRecord", event)?;
        let key = stream_key(sim, "hipEventRecord", stream)?;
        sim.check_record("hipEventRecord", e, key)?;
        let op = sim.enqueue("hipEventRecord", key)?;
        if !sim.timelines.set_event(e, &op.at, op.info.id) {
            return Err(SimError::InvalidHandle);
        }
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipEventSynchronize(event: HipEvent) -> HipError {
    hip("hipEventSynchronize", |sim| {
        let e = event_arg(sim, "hipEventSynchronize", event)?;
        sim.count_blocking();
        sim.timelines.host_join_event(e);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipEventQuery(event: HipEvent) -> HipError {
    hip("hipEventQuery", |sim| {
        let e = event_arg(sim, "hipEventQuery", event)?;
        let clock = sim.timelines.event_clock(e);
        sim.query(clock)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipEventDestroy(event: HipEvent) -> HipError {
    hip("hipEventDestroy", |sim| {
        let e = event_arg(sim, "hipEventDestroy", event)?;
        sim.timelines.destroy_event(e);
        Ok(())
    })
}

// ----- memory ---------------------------------------------------------------------------------

fn allocate(
    sim: &mut Sim,
    out: *mut *mut c_void,
    size: usize,
    kind: MemKind,
    flags: c_uint,
) -> SimResult<()> {
    let d = device(sim)?;
    if out.is_null() {
        return Err(SimError::InvalidValue);
    }
    let addr = if size == 0 {
        0 // HIP returns success and a null pointer for a zero-size request.
    } else {
        sim.allocate(kind, d, size, flags)?
    };
    // SAFETY: non-null out-pointer by contract.
    unsafe { write_out(out, addr as *mut c_void) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipMalloc(ptr: *mut *mut c_void, size: usize) -> HipError {
    hip("hipMalloc", |sim| {
        allocate(sim, ptr, size, MemKind::Device, 0)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipHostMalloc(
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
) -> HipError {
    hip("hipHostMalloc", |sim| {
        allocate(sim, ptr, size, MemKind::Pinned, flags)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipMallocManaged(
    dev_ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
) -> HipError {
    hip("hipMallocManaged", |sim| {
        allocate(sim, dev_ptr, size, MemKind::Managed, flags)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipFree(ptr: *mut c_void) -> HipError {
    hip("hipFree", |sim| {
        if ptr.is_null() {
            return Ok(());
        }
        sim.count_blocking();
        let op = sim.host_op("hipFree");
        sim.free(&op, ptr as u64, &[MemKind::Device, MemKind::Managed])
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipHostFree(ptr: *mut c_void) -> HipError {
    hip("hipHostFree", |sim| {
        if ptr.is_null() {
            return Ok(());
        }
        sim.count_blocking();
        let op = sim.host_op("hipHostFree");
        sim.free(&op, ptr as u64, &[MemKind::Pinned])
    })
}

/// `hipMemcpyKind` → the two sides.
fn sides(dst: u64, src: u64, kind: c_int) -> SimResult<(Side, Side)> {
    Ok(match kind {
        0 => (Side::Host(dst), Side::Host(src)),
        1 => (Side::Device(dst), Side::Host(src)),
        2 => (Side::Host(dst), Side::Device(src)),
        3 | 1024 => (Side::Device(dst), Side::Device(src)),
        4 => (Side::Any(dst), Side::Any(src)),
        _ => return Err(SimError::InvalidValue),
    })
}

/// A copy or memset: on `stream` (async) or on the null stream followed by a host join (sync).
fn transfer(
    sim: &mut Sim,
    api: &'static str,
    stream: Option<HipStream>,
    run: impl FnOnce(&mut Sim, &crate::sim::Op) -> SimResult<()>,
) -> SimResult<()> {
    let key = match stream {
        Some(s) => stream_key(sim, api, s)?,
        None => StreamKey::Legacy(device(sim)?),
    };
    let op = sim.enqueue(api, key)?;
    let result = run(sim, &op);
    if stream.is_none() {
        sim.count_blocking();
        sim.timelines.host_join_stream(key);
    }
    result
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipMemcpy(
    dst: *mut c_void,
    src: *const c_void,
    size: usize,
    kind: c_int,
) -> HipError {
    hip("hipMemcpy", |sim| {
        let (d, s) = sides(dst as u64, src as u64, kind)?;
        transfer(sim, "hipMemcpy", None, |sim, op| sim.copy(op, d, s, size))
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipMemcpyAsync(
    dst: *mut c_void,
    src: *const c_void,
    size: usize,
    kind: c_int,
    stream: HipStream,
) -> HipError {
    hip("hipMemcpyAsync", |sim| {
        let (d, s) = sides(dst as u64, src as u64, kind)?;
        transfer(sim, "hipMemcpyAsync", Some(stream), |sim, op| {
            sim.copy(op, d, s, size)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipMemcpyHtoD(
    dst: *mut c_void,
    src: *mut c_void,
    size: usize,
) -> HipError {
    hip("hipMemcpyHtoD", |sim| {
        transfer(sim, "hipMemcpyHtoD", None, |sim, op| {
            sim.copy(op, Side::Device(dst as u64), Side::Host(src as u64), size)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipMemcpyDtoH(
    dst: *mut c_void,
    src: *mut c_void,
    size: usize,
) -> HipError {
    hip("hipMemcpyDtoH", |sim| {
        transfer(sim, "hipMemcpyDtoH", None, |sim, op| {
            sim.copy(op, Side::Host(dst as u64), Side::Device(src as u64), size)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipMemcpyHtoDAsync(
    dst: *mut c_void,
    src: *mut c_void,
    size: usize,
    stream: HipStream,
) -> HipError {
    hip("hipMemcpyHtoDAsync", |sim| {
        transfer(sim, "hipMemcpyHtoDAsync", Some(stream), |sim, op| {
            sim.copy(op, Side::Device(dst as u64), Side::Host(src as u64), size)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipMemcpyDtoHAsync(
    dst: *mut c_void,
    src: *mut c_void,
    size: usize,
    stream: HipStream,
) -> HipError {
    hip("hipMemcpyDtoHAsync", |sim| {
        transfer(sim, "hipMemcpyDtoHAsync", Some(stream), |sim, op| {
            sim.copy(op, Side::Host(dst as u64), Side::Device(src as u64), size)
        })
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipMemset(dst: *mut c_void, value: c_int, size: usize) -> HipError {
    hip("hipMemset", |sim| {
        transfer(sim, "hipMemset", None, |sim, op| {
            sim.memset(op, dst as u64, value as u8, size)
        })
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipMemsetAsync(
    dst: *mut c_void,
    value: c_int,
    size: usize,
    stream: HipStream,
) -> HipError {
    hip("hipMemsetAsync", |sim| {
        transfer(sim, "hipMemsetAsync", Some(stream), |sim, op| {
            sim.memset(op, dst as u64, value as u8, size)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn hipPointerGetAttributes(
    attributes: *mut HipPointerAttribute,
    ptr: *const c_void,
) -> HipError {
    hip("hipPointerGetAttributes", |sim| {
        if ptr.is_null() {
            return Err(SimError::InvalidValue);
        }
        let addr = ptr as u64;
        let value = match sim.pointer_info(addr) {
            Some(info) => HipPointerAttribute {
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
            None => {
                if let Err(AddressError::Freed(_)) = sim.memory.resolve(addr, 0) {
                    return Err(SimError::InvalidValue);
                }
                HipPointerAttribute {
                    memory_type: memory_type::UNREGISTERED,
                    device: -1,
                    device_pointer: std::ptr::null_mut(),
                    host_pointer: ptr.cast_mut(),
                    is_managed: 0,
                    allocation_flags: 0,
                }
            }
        };
        // SAFETY: out-pointer to a `hipPointerAttribute_t` by contract.
        unsafe { write_out(attributes, value) }
    })
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

fn error_entry(error: HipError) -> Option<&'static (c_int, &'static CStr, &'static CStr)> {
    ERRORS.iter().find(|(c, _, _)| *c == error)
}

#[unsafe(no_mangle)]
pub extern "C" fn hipGetErrorString(error: HipError) -> *const c_char {
    crate::ffi::guarded(c"unknown error".as_ptr(), || {
        crate::sim::lock().count("hipGetErrorString");
        error_entry(error).map_or(c"unknown error".as_ptr(), |e| e.2.as_ptr())
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn hipGetErrorName(error: HipError) -> *const c_char {
    crate::ffi::guarded(c"hipErrorUnknown".as_ptr(), || {
        crate::sim::lock().count("hipGetErrorName");
        error_entry(error).map_or(c"hipErrorUnknown".as_ptr(), |e| e.1.as_ptr())
    })
}
