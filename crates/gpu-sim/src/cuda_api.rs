//! The CUDA driver API (`libcuda.so`) subset, with the exact C signatures of `cuda.h` 12.x.
//!
//! Types: `CUresult` = `u32`, `CUdevice` = `c_int`, `CUdeviceptr` = `u64`, and
//! `CUcontext`/`CUstream`/`CUevent` are opaque pointers. Stream handles: `NULL` and
//! `CU_STREAM_LEGACY` (1) are the legacy default stream of the current context,
//! `CU_STREAM_PER_THREAD` (2) the calling thread's per-thread default stream.
//!
//! Every function except `cuInit`, `cuDriverGetVersion`, `cuGetErrorString` and
//! `cuGetErrorName` returns `CUDA_ERROR_NOT_INITIALIZED` before `cuInit` succeeded.
//!
//! Synchronous copies and memsets run on the legacy stream and wait as the driver documents
//! ("API synchronization behavior"): copies to the host and from pinned memory return when done;
//! pageable host-to-device copies synchronise the legacy stream first and return before the
//! transfer ends; device-to-device copies and memsets of device memory do not wait at all.
//! `cuMemFree_v2` is a host-side operation; queries answer as in the crate docs.
//!
//! Safety: each function has the contract of the CUDA function of the same name: pointers must
//! be null or valid for the documented reads and writes.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_uint, c_void};

use crate::ffi::{HostFn, Launch, cuda, cuda_uninit, launch, write_out};
use crate::memory::{DEVICE_MEMORY_BYTES, MemKind};
use crate::sim::{Backend, SimError, SimResult, context_handle, context_id, with_context_stack};
use crate::stream::StreamKey;

/// `CUresult`.
pub type CUresult = u32;
/// `CUdeviceptr`.
pub type CUdeviceptr = u64;
/// `CUdevice`.
pub type CUdevice = c_int;
/// `CUcontext`.
pub type CUcontext = *mut c_void;
/// `CUstream`.
pub type CUstream = *mut c_void;
/// `CUevent`.
pub type CUevent = *mut c_void;

/// Driver version reported (CUDA 12.8).
pub const DRIVER_VERSION: c_int = 12080;

/// `CU_POINTER_ATTRIBUTE_*` values answered.
mod pointer_attribute {
    pub const CONTEXT: u32 = 1;
    pub const MEMORY_TYPE: u32 = 2;
    pub const DEVICE_POINTER: u32 = 3;
    pub const HOST_POINTER: u32 = 4;
    pub const SYNC_MEMOPS: u32 = 6;
    pub const BUFFER_ID: u32 = 7;
    pub const IS_MANAGED: u32 = 8;
    pub const DEVICE_ORDINAL: u32 = 9;
    pub const RANGE_START_ADDR: u32 = 11;
    pub const RANGE_SIZE: u32 = 12;
    pub const MAPPED: u32 = 13;
}

/// `CU_POINTER_ATTRIBUTE_MEMORY_TYPE` of a kind of memory. The driver answers
/// `CU_MEMORYTYPE_DEVICE` for managed memory (and 1 for `IS_MANAGED`); `CU_MEMORYTYPE_UNIFIED`
/// (4) names only a copy descriptor's side, never a pointer's memory.
fn memory_type(kind: MemKind) -> u32 {
    match kind {
        MemKind::Pinned => 1,                    // CU_MEMORYTYPE_HOST
        MemKind::Device | MemKind::Managed => 2, // CU_MEMORYTYPE_DEVICE
    }
}

/// Device attribute values (`CUdevice_attribute` → value); unknown attributes answer 0.
fn device_attribute(attribute: u32, device: u32, memory_pools: bool) -> c_int {
    match attribute {
        1 => 1024,                        // MAX_THREADS_PER_BLOCK
        2 | 3 => 1024,                    // MAX_BLOCK_DIM_X / Y
        4 => 64,                          // MAX_BLOCK_DIM_Z
        5 => i32::MAX,                    // MAX_GRID_DIM_X
        6 | 7 => 65535,                   // MAX_GRID_DIM_Y / Z
        8 => 49152,                       // MAX_SHARED_MEMORY_PER_BLOCK
        9 => 65536,                       // TOTAL_CONSTANT_MEMORY
        10 => 32,                         // WARP_SIZE
        12 => 65536,                      // MAX_REGISTERS_PER_BLOCK
        13 => 1_500_000,                  // CLOCK_RATE (kHz)
        14 => 512,                        // TEXTURE_ALIGNMENT
        16 => 8,                          // MULTIPROCESSOR_COUNT
        19 => 1,                          // CAN_MAP_HOST_MEMORY
        33 => device as c_int + 1,        // PCI_BUS_ID
        41 => 1,                          // UNIFIED_ADDRESSING
        75 => 8,                          // COMPUTE_CAPABILITY_MAJOR
        76 => 0,                          // COMPUTE_CAPABILITY_MINOR
        83 => 1,                          // MANAGED_MEMORY
        89 => 1,                          // CONCURRENT_MANAGED_ACCESS
        115 => c_int::from(memory_pools), // MEMORY_POOLS_SUPPORTED
        _ => 0,
    }
}

/// (code, name, description) of every `CUresult` the simulator returns, and a few more.
const ERRORS: &[(u32, &std::ffi::CStr, &std::ffi::CStr)] = &[
    (0, c"CUDA_SUCCESS", c"no error"),
    (1, c"CUDA_ERROR_INVALID_VALUE", c"invalid argument"),
    (2, c"CUDA_ERROR_OUT_OF_MEMORY", c"out of memory"),
    (3, c"CUDA_ERROR_NOT_INITIALIZED", c"initialization error"),
    (4, c"CUDA_ERROR_DEINITIALIZED", c"driver shutting down"),
    (
        100,
        c"CUDA_ERROR_NO_DEVICE",
        c"no CUDA-capable device is detected",
    ),
    (101, c"CUDA_ERROR_INVALID_DEVICE", c"invalid device ordinal"),
    (
        201,
        c"CUDA_ERROR_INVALID_CONTEXT",
        c"invalid device context",
    ),
    (
        400,
        c"CUDA_ERROR_INVALID_HANDLE",
        c"invalid resource handle",
    ),
    (500, c"CUDA_ERROR_NOT_FOUND", c"named symbol not found"),
    (600, c"CUDA_ERROR_NOT_READY", c"device not ready"),
    (
        700,
        c"CUDA_ERROR_ILLEGAL_ADDRESS",
        c"an illegal memory access was encountered",
    ),
    (801, c"CUDA_ERROR_NOT_SUPPORTED", c"operation not supported"),
    (999, c"CUDA_ERROR_UNKNOWN", c"unknown error"),
];

fn current_device(sim: &crate::sim::Sim) -> SimResult<u32> {
    sim.current_device(Backend::Cuda)
}

fn device_arg(sim: &crate::sim::Sim, dev: CUdevice) -> SimResult<u32> {
    u32::try_from(dev)
        .map_err(|_| SimError::InvalidDevice)
        .and_then(|d| sim.check_device(d))
}

fn current_context(sim: &crate::sim::Sim) -> SimResult<crate::stream::Context> {
    sim.current_context(Backend::Cuda)
}

fn context_arg(sim: &crate::sim::Sim, ctx: CUcontext) -> SimResult<crate::stream::Context> {
    context_id(ctx as u64)
        .ok_or(SimError::InvalidContext)
        .and_then(|c| sim.check_context(c))
}

fn event_arg(sim: &mut crate::sim::Sim, api: &str, event: CUevent) -> SimResult<u64> {
    let handle = event as u64;
    if sim.timelines.event(handle).is_some() {
        Ok(handle)
    } else {
        sim.error(format!("{api}: invalid event handle {handle:#x}"));
        Err(SimError::InvalidHandle)
    }
}

// ----- initialisation, devices, contexts -----------------------------------------------------

#[unsafe(no_mangle)]
pub extern "C" fn cuInit(_flags: c_uint) -> CUresult {
    cuda_uninit("cuInit", |sim| {
        if sim.device_count == 0 {
            return Err(SimError::NoDevice);
        }
        sim.initialized = true;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDriverGetVersion(version: *mut c_int) -> CUresult {
    cuda_uninit("cuDriverGetVersion", |_| {
        // SAFETY: out-pointer by contract.
        unsafe { write_out(version, DRIVER_VERSION) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetCount(count: *mut c_int) -> CUresult {
    cuda("cuDeviceGetCount", |sim| {
        let n = c_int::try_from(sim.device_count).unwrap_or(c_int::MAX);
        // SAFETY: out-pointer by contract.
        unsafe { write_out(count, n) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGet(device: *mut CUdevice, ordinal: c_int) -> CUresult {
    cuda("cuDeviceGet", |sim| {
        let d = device_arg(sim, ordinal)?;
        // SAFETY: out-pointer by contract.
        unsafe { write_out(device, d as CUdevice) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetAttribute(
    pi: *mut c_int,
    attrib: c_uint,
    dev: CUdevice,
) -> CUresult {
    cuda("cuDeviceGetAttribute", |sim| {
        let d = device_arg(sim, dev)?;
        let value = device_attribute(attrib, d, sim.memory_pools);
        // SAFETY: out-pointer by contract.
        unsafe { write_out(pi, value) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, dev: CUdevice) -> CUresult {
    cuda("cuDeviceGetName", |sim| {
        let d = device_arg(sim, dev)?;
        let cap = usize::try_from(len).map_err(|_| SimError::InvalidValue)?;
        if name.is_null() {
            return Err(SimError::InvalidValue);
        }
        let text = format!("gpu-sim simulated device {d}");
        // SAFETY: `name` is valid for `len` bytes by contract.
        unsafe { crate::ffi::write_text(name.cast(), cap, &text) };
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, dev: CUdevice) -> CUresult {
    cuda("cuDeviceTotalMem_v2", |sim| {
        device_arg(sim, dev)?;
        // SAFETY: out-pointer by contract.
        unsafe { write_out(bytes, DEVICE_MEMORY_BYTES as usize) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(pctx: *mut CUcontext, dev: CUdevice) -> CUresult {
    cuda("cuDevicePrimaryCtxRetain", |sim| {
        let d = device_arg(sim, dev)?;
        // SAFETY: out-pointer by contract.
        unsafe { write_out(pctx, context_handle(d) as CUcontext) }?;
        *sim.primary_retains.entry(d).or_insert(0) += 1;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDevicePrimaryCtxRelease_v2(dev: CUdevice) -> CUresult {
    cuda("cuDevicePrimaryCtxRelease_v2", |sim| {
        let d = device_arg(sim, dev)?;
        match sim.primary_retains.get_mut(&d) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Ok(())
            }
            _ => Err(SimError::InvalidContext),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxCreate_v2(
    pctx: *mut CUcontext,
    _flags: c_uint,
    dev: CUdevice,
) -> CUresult {
    cuda("cuCtxCreate_v2", |sim| {
        let d = device_arg(sim, dev)?;
        if pctx.is_null() {
            return Err(SimError::InvalidValue);
        }
        let context = sim.create_context(d)?;
        // The new context is pushed onto the calling thread's stack.
        with_context_stack(|s| s.push(context));
        // SAFETY: non-null out-pointer by contract.
        unsafe { write_out(pctx, context_handle(context) as CUcontext) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxDestroy_v2(ctx: CUcontext) -> CUresult {
    cuda("cuCtxDestroy_v2", |sim| {
        let context = context_arg(sim, ctx)?;
        if !sim.created_contexts.remove(&context) {
            sim.error(format!(
                "cuCtxDestroy_v2: {:#x} is a primary context (release it instead)",
                ctx as u64
            ));
            return Err(SimError::InvalidContext);
        }
        with_context_stack(|s| s.retain(|&c| c != context));
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxGetCurrent(pctx: *mut CUcontext) -> CUresult {
    cuda("cuCtxGetCurrent", |_| {
        let current = with_context_stack(|s| s.last().copied());
        let handle = current.map_or(std::ptr::null_mut(), |d| context_handle(d) as CUcontext);
        // SAFETY: out-pointer by contract.
        unsafe { write_out(pctx, handle) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxSetCurrent(ctx: CUcontext) -> CUresult {
    cuda("cuCtxSetCurrent", |sim| {
        if ctx.is_null() {
            with_context_stack(|s| s.pop());
            return Ok(());
        }
        let d = context_arg(sim, ctx)?;
        with_context_stack(|s| match s.last_mut() {
            Some(top) => *top = d,
            None => s.push(d),
        });
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxPushCurrent_v2(ctx: CUcontext) -> CUresult {
    cuda("cuCtxPushCurrent_v2", |sim| {
        let d = context_arg(sim, ctx)?;
        with_context_stack(|s| s.push(d));
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxPopCurrent_v2(pctx: *mut CUcontext) -> CUresult {
    cuda("cuCtxPopCurrent_v2", |_| {
        let popped = with_context_stack(|s| s.pop()).ok_or(SimError::InvalidContext)?;
        if !pctx.is_null() {
            // SAFETY: non-null out-pointer by contract.
            unsafe { write_out(pctx, context_handle(popped) as CUcontext) }?;
        }
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxGetDevice(device: *mut CUdevice) -> CUresult {
    cuda("cuCtxGetDevice", |sim| {
        let d = current_device(sim)?;
        // SAFETY: out-pointer by contract.
        unsafe { write_out(device, d as CUdevice) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxSynchronize() -> CUresult {
    cuda("cuCtxSynchronize", |sim| {
        let c = current_context(sim)?;
        sim.count_blocking();
        sim.timelines.host_join_context(c);
        Ok(())
    })
}

// ----- streams --------------------------------------------------------------------------------

fn create_stream(sim: &mut crate::sim::Sim, out: *mut CUstream, flags: c_uint) -> SimResult<()> {
    let c = current_context(sim)?;
    if out.is_null() {
        return Err(SimError::InvalidValue);
    }
    let handle = sim.create_stream(c, flags);
    // SAFETY: non-null out-pointer by contract.
    unsafe { write_out(out, handle as CUstream) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamCreate(ph_stream: *mut CUstream, flags: c_uint) -> CUresult {
    cuda("cuStreamCreate", |sim| create_stream(sim, ph_stream, flags))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamCreateWithPriority(
    ph_stream: *mut CUstream,
    flags: c_uint,
    _priority: c_int,
) -> CUresult {
    cuda("cuStreamCreateWithPriority", |sim| {
        create_stream(sim, ph_stream, flags)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamDestroy_v2(stream: CUstream) -> CUresult {
    cuda("cuStreamDestroy_v2", |sim| {
        let handle = stream as u64;
        if sim.timelines.destroy_stream(StreamKey::Created(handle)) {
            Ok(())
        } else {
            sim.error(format!(
                "cuStreamDestroy_v2: invalid stream handle {handle:#x} (implicit streams cannot be destroyed)"
            ));
            Err(SimError::InvalidHandle)
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamSynchronize(stream: CUstream) -> CUresult {
    cuda("cuStreamSynchronize", |sim| {
        let key = sim.stream_key_or_report(Backend::Cuda, "cuStreamSynchronize", stream as u64)?;
        sim.count_blocking();
        sim.timelines.host_join_stream(key);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamQuery(stream: CUstream) -> CUresult {
    cuda("cuStreamQuery", |sim| {
        let key = sim.stream_key_or_report(Backend::Cuda, "cuStreamQuery", stream as u64)?;
        let clock = sim.timelines.stream_clock(key);
        sim.query(clock)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamWaitEvent(stream: CUstream, event: CUevent, _flags: c_uint) -> CUresult {
    cuda("cuStreamWaitEvent", |sim| {
        let key = sim.stream_key_or_report(Backend::Cuda, "cuStreamWaitEvent", stream as u64)?;
        let e = event_arg(sim, "cuStreamWaitEvent", event)?;
        sim.timelines.wait(key, e).ok_or(SimError::InvalidHandle)?;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamGetCtx(stream: CUstream, pctx: *mut CUcontext) -> CUresult {
    cuda("cuStreamGetCtx", |sim| {
        let key = sim.stream_key_or_report(Backend::Cuda, "cuStreamGetCtx", stream as u64)?;
        let c = sim
            .timelines
            .context_of(key)
            .ok_or(SimError::InvalidHandle)?;
        // SAFETY: out-pointer by contract.
        unsafe { write_out(pctx, context_handle(c) as CUcontext) }
    })
}

// ----- events ---------------------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventCreate(ph_event: *mut CUevent, flags: c_uint) -> CUresult {
    cuda("cuEventCreate", |sim| {
        let c = current_context(sim)?;
        if ph_event.is_null() {
            return Err(SimError::InvalidValue);
        }
        let handle = crate::sim::new_event_handle();
        sim.timelines.create_event(handle, flags, c);
        // SAFETY: non-null out-pointer by contract.
        unsafe { write_out(ph_event, handle as CUevent) }
    })
}

fn record(
    sim: &mut crate::sim::Sim,
    api: &'static str,
    event: CUevent,
    stream: CUstream,
) -> SimResult<()> {
    let e = event_arg(sim, api, event)?;
    let key = sim.stream_key_or_report(Backend::Cuda, api, stream as u64)?;
    sim.check_record(api, e, key)?;
    let op = sim.enqueue(api, key)?;
    if !sim.timelines.set_event(e, &op.at, op.info.id) {
        return Err(SimError::InvalidHandle);
    }
    Ok(())
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventRecord(event: CUevent, stream: CUstream) -> CUresult {
    cuda("cuEventRecord", |sim| {
        record(sim, "cuEventRecord", event, stream)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventRecordWithFlags(
    event: CUevent,
    stream: CUstream,
    _flags: c_uint,
) -> CUresult {
    cuda("cuEventRecordWithFlags", |sim| {
        record(sim, "cuEventRecordWithFlags", event, stream)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventSynchronize(event: CUevent) -> CUresult {
    cuda("cuEventSynchronize", |sim| {
        let e = event_arg(sim, "cuEventSynchronize", event)?;
        sim.count_blocking();
        sim.timelines.host_join_event(e);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventQuery(event: CUevent) -> CUresult {
    cuda("cuEventQuery", |sim| {
        let e = event_arg(sim, "cuEventQuery", event)?;
        let clock = sim.timelines.event_clock(e);
        sim.query(clock)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventDestroy_v2(event: CUevent) -> CUresult {
    cuda("cuEventDestroy_v2", |sim| {
        let e = event_arg(sim, "cuEventDestroy_v2", event)?;
        sim.timelines.destroy_event(e);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventElapsedTime(
    ms: *mut f32,
    start: CUevent,
    end: CUevent,
) -> CUresult {
    cuda("cuEventElapsedTime", |sim| {
        let s = event_arg(sim, "cuEventElapsedTime", start)?;
        let e = event_arg(sim, "cuEventElapsedTime", end)?;
        let stamp = |h: u64| {
            sim.timelines
                .event(h)
                .filter(|ev| ev.flags & 2 == 0) // CU_EVENT_DISABLE_TIMING
                .and_then(|ev| ev.recorded.as_ref().map(|r| r.1))
        };
        let (Some(t0), Some(t1)) = (stamp(s), stamp(e)) else {
            return Err(SimError::InvalidHandle);
        };
        // A fake clock: one microsecond per operation id.
        let elapsed = (t1 as f64 - t0 as f64) / 1000.0;
        // SAFETY: out-pointer by contract.
        unsafe { write_out(ms, elapsed as f32) }
    })
}

// ----- memory ---------------------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAlloc_v2(dptr: *mut CUdeviceptr, bytesize: usize) -> CUresult {
    cuda("cuMemAlloc_v2", |sim| {
        let d = current_device(sim)?;
        if dptr.is_null() {
            return Err(SimError::InvalidValue);
        }
        let addr = sim.allocate(MemKind::Device, d, bytesize, 0)?;
        // SAFETY: non-null out-pointer by contract.
        unsafe { write_out(dptr, addr) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAllocAsync(
    dptr: *mut CUdeviceptr,
    bytesize: usize,
    stream: CUstream,
) -> CUresult {
    cuda("cuMemAllocAsync", |sim| {
        let key = sim.stream_key_or_report(Backend::Cuda, "cuMemAllocAsync", stream as u64)?;
        if dptr.is_null() {
            return Err(SimError::InvalidValue);
        }
        let d = sim
            .timelines
            .device_of(key)
            .ok_or(SimError::InvalidHandle)?;
        let op = sim.enqueue("cuMemAllocAsync", key)?;
        let addr = sim.allocate_ordered(&op, d, bytesize)?;
        // SAFETY: non-null out-pointer by contract.
        unsafe { write_out(dptr, addr) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemFree_v2(dptr: CUdeviceptr) -> CUresult {
    cuda("cuMemFree_v2", |sim| {
        sim.count_blocking();
        let op = sim.host_op("cuMemFree_v2");
        sim.free(&op, dptr, &[MemKind::Device, MemKind::Managed])
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemFreeAsync(dptr: CUdeviceptr, stream: CUstream) -> CUresult {
    cuda("cuMemFreeAsync", |sim| {
        let key = sim.stream_key_or_report(Backend::Cuda, "cuMemFreeAsync", stream as u64)?;
        let op = sim.enqueue("cuMemFreeAsync", key)?;
        sim.free_to_pool(&op, dptr)
    })
}

fn alloc_host(
    sim: &mut crate::sim::Sim,
    pp: *mut *mut c_void,
    size: usize,
    flags: u32,
) -> SimResult<()> {
    let d = current_device(sim)?;
    if pp.is_null() {
        return Err(SimError::InvalidValue);
    }
    let addr = sim.allocate(MemKind::Pinned, d, size, flags)?;
    // SAFETY: non-null out-pointer by contract.
    unsafe { write_out(pp, addr as *mut c_void) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAllocHost_v2(pp: *mut *mut c_void, bytesize: usize) -> CUresult {
    cuda("cuMemAllocHost_v2", |sim| alloc_host(sim, pp, bytesize, 0))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemHostAlloc(
    pp: *mut *mut c_void,
    bytesize: usize,
    flags: c_uint,
) -> CUresult {
    cuda("cuMemHostAlloc", |sim| alloc_host(sim, pp, bytesize, flags))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemFreeHost(p: *mut c_void) -> CUresult {
    cuda("cuMemFreeHost", |sim| {
        sim.count_blocking();
        let op = sim.host_op("cuMemFreeHost");
        sim.free(&op, p as u64, &[MemKind::Pinned])
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAllocManaged(
    dptr: *mut CUdeviceptr,
    bytesize: usize,
    flags: c_uint,
) -> CUresult {
    cuda("cuMemAllocManaged", |sim| {
        let d = current_device(sim)?;
        if dptr.is_null() {
            return Err(SimError::InvalidValue);
        }
        let addr = sim.allocate(MemKind::Managed, d, bytesize, flags)?;
        // SAFETY: non-null out-pointer by contract.
        unsafe { write_out(dptr, addr) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> CUresult {
    cuda("cuMemGetInfo_v2", |sim| {
        let d = current_device(sim)?;
        let used = sim.memory.device_bytes_used(d);
        // SAFETY: out-pointers by contract.
        unsafe {
            write_out(free, (DEVICE_MEMORY_BYTES - used) as usize)?;
            write_out(total, DEVICE_MEMORY_BYTES as usize)
        }
    })
}

/// When the host waits in a synchronous copy or memset (CUDA driver API, "API synchronization
/// behavior").
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum HostWait {
    /// Returns once the operation is done (copies to the host, from pinned memory, memsets of
    /// pinned memory): the host is ordered after it, and the call blocks.
    After,
    /// Pageable host memory to the device: the legacy stream is synchronised *before* the copy
    /// starts, and the call returns once the source is staged, possibly before the transfer
    /// ends (the host is not ordered after it).
    Before,
    /// Device to device copies and memsets of device or managed memory: no host-side
    /// synchronisation at all.
    Never,
}

/// A copy or memset: on `stream` (async), or on the legacy stream with the host synchronised as
/// `wait` says (sync).
fn transfer(
    sim: &mut crate::sim::Sim,
    api: &'static str,
    stream: Result<CUstream, HostWait>,
    run: impl FnOnce(&mut crate::sim::Sim, &crate::sim::Op) -> SimResult<()>,
) -> SimResult<()> {
    let key = match stream {
        Ok(s) => sim.stream_key_or_report(Backend::Cuda, api, s as u64)?,
        Err(_) => StreamKey::Legacy(current_context(sim)?),
    };
    if stream == Err(HostWait::Before) {
        sim.count_blocking();
        sim.timelines.host_join_stream(key);
    }
    let op = sim.enqueue(api, key)?;
    let result = run(sim, &op);
    if stream == Err(HostWait::After) {
        sim.count_blocking();
        sim.timelines.host_join_stream(key);
    }
    result
}

/// How a synchronous call waits when `host` is its host side: pinned (page-locked) memory makes
/// it synchronous, pageable memory lets it return once the source is staged.
fn host_side_wait(sim: &crate::sim::Sim, host: u64) -> HostWait {
    let pinned = sim
        .memory
        .resolve(host, 0)
        .ok()
        .and_then(|(base, _)| sim.memory.at_base(base))
        .is_some_and(|a| a.summary.kind == MemKind::Pinned);
    if pinned {
        HostWait::After
    } else {
        HostWait::Before
    }
}

/// How a synchronous memset of `dst` waits: only pinned host memory makes it synchronous.
fn memset_wait(sim: &crate::sim::Sim, dst: u64) -> HostWait {
    match host_side_wait(sim, dst) {
        HostWait::After => HostWait::After,
        _ => HostWait::Never,
    }
}

use crate::sim::Side;

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyHtoD_v2(
    dst: CUdeviceptr,
    src: *const c_void,
    n: usize,
) -> CUresult {
    cuda("cuMemcpyHtoD_v2", |sim| {
        let wait = host_side_wait(sim, src as u64);
        transfer(sim, "cuMemcpyHtoD_v2", Err(wait), |sim, op| {
            sim.copy(op, Side::Device(dst), Side::Host(src as u64), n)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyDtoH_v2(dst: *mut c_void, src: CUdeviceptr, n: usize) -> CUresult {
    cuda("cuMemcpyDtoH_v2", |sim| {
        transfer(sim, "cuMemcpyDtoH_v2", Err(HostWait::After), |sim, op| {
            sim.copy(op, Side::Host(dst as u64), Side::Device(src), n)
        })
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoD_v2(dst: CUdeviceptr, src: CUdeviceptr, n: usize) -> CUresult {
    cuda("cuMemcpyDtoD_v2", |sim| {
        transfer(sim, "cuMemcpyDtoD_v2", Err(HostWait::Never), |sim, op| {
            sim.copy(op, Side::Device(dst), Side::Device(src), n)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyHtoDAsync_v2(
    dst: CUdeviceptr,
    src: *const c_void,
    n: usize,
    stream: CUstream,
) -> CUresult {
    cuda("cuMemcpyHtoDAsync_v2", |sim| {
        transfer(sim, "cuMemcpyHtoDAsync_v2", Ok(stream), |sim, op| {
            sim.copy(op, Side::Device(dst), Side::Host(src as u64), n)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyDtoHAsync_v2(
    dst: *mut c_void,
    src: CUdeviceptr,
    n: usize,
    stream: CUstream,
) -> CUresult {
    cuda("cuMemcpyDtoHAsync_v2", |sim| {
        transfer(sim, "cuMemcpyDtoHAsync_v2", Ok(stream), |sim, op| {
            sim.copy(op, Side::Host(dst as u64), Side::Device(src), n)
        })
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoDAsync_v2(
    dst: CUdeviceptr,
    src: CUdeviceptr,
    n: usize,
    stream: CUstream,
) -> CUresult {
    cuda("cuMemcpyDtoDAsync_v2", |sim| {
        transfer(sim, "cuMemcpyDtoDAsync_v2", Ok(stream), |sim, op| {
            sim.copy(op, Side::Device(dst), Side::Device(src), n)
        })
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD8_v2(dst: CUdeviceptr, value: u8, n: usize) -> CUresult {
    cuda("cuMemsetD8_v2", |sim| {
        let wait = memset_wait(sim, dst);
        transfer(sim, "cuMemsetD8_v2", Err(wait), |sim, op| {
            sim.memset(op, dst, value, n)
        })
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD8Async(
    dst: CUdeviceptr,
    value: u8,
    n: usize,
    stream: CUstream,
) -> CUresult {
    cuda("cuMemsetD8Async", |sim| {
        transfer(sim, "cuMemsetD8Async", Ok(stream), |sim, op| {
            sim.memset(op, dst, value, n)
        })
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD32_v2(dst: CUdeviceptr, value: c_uint, n: usize) -> CUresult {
    cuda("cuMemsetD32_v2", |sim| {
        let wait = memset_wait(sim, dst);
        transfer(sim, "cuMemsetD32_v2", Err(wait), |sim, op| {
            sim.memset32(op, dst, value, n)
        })
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD32Async(
    dst: CUdeviceptr,
    value: c_uint,
    n: usize,
    stream: CUstream,
) -> CUresult {
    cuda("cuMemsetD32Async", |sim| {
        transfer(sim, "cuMemsetD32Async", Ok(stream), |sim, op| {
            sim.memset32(op, dst, value, n)
        })
    })
}

// ----- pointer attributes ---------------------------------------------------------------------

/// Writes one attribute of `ptr` to `data`. `info` is `None` for memory the simulator does not
/// know; `strict` makes that an error (cuPointerGetAttribute) instead of default values
/// (cuPointerGetAttributes).
///
/// # Safety
/// `data` must be valid for a write of the attribute's type.
unsafe fn write_attribute(
    data: *mut c_void,
    attribute: u32,
    ptr: CUdeviceptr,
    info: Option<crate::sim::PointerInfo>,
    strict: bool,
) -> SimResult<()> {
    use pointer_attribute as a;
    if info.is_none() && strict {
        return Err(SimError::InvalidValue);
    }
    // SAFETY: `data` is valid for the attribute's type by the caller's contract.
    unsafe {
        match attribute {
            a::CONTEXT => write_out(
                data.cast::<CUcontext>(),
                info.map_or(std::ptr::null_mut(), |i| {
                    context_handle(i.device) as CUcontext
                }),
            ),
            a::MEMORY_TYPE => {
                write_out(data.cast::<u32>(), info.map_or(0, |i| memory_type(i.kind)))
            }
            a::DEVICE_POINTER => write_out(data.cast::<CUdeviceptr>(), info.map_or(0, |_| ptr)),
            a::HOST_POINTER => match info {
                Some(i) if i.kind == MemKind::Device => {
                    if strict {
                        Err(SimError::InvalidValue)
                    } else {
                        write_out(data.cast::<*mut c_void>(), std::ptr::null_mut())
                    }
                }
                Some(_) => write_out(data.cast::<*mut c_void>(), ptr as *mut c_void),
                None => write_out(data.cast::<*mut c_void>(), std::ptr::null_mut()),
            },
            a::SYNC_MEMOPS => write_out(data.cast::<u32>(), 0),
            a::BUFFER_ID => write_out(data.cast::<u64>(), info.map_or(0, |i| i.base)),
            a::IS_MANAGED => write_out(
                data.cast::<u32>(),
                u32::from(info.is_some_and(|i| i.kind == MemKind::Managed)),
            ),
            a::DEVICE_ORDINAL => {
                write_out(data.cast::<c_int>(), info.map_or(-2, |i| i.device as c_int))
            }
            a::RANGE_START_ADDR => {
                write_out(data.cast::<CUdeviceptr>(), info.map_or(0, |i| i.base))
            }
            a::RANGE_SIZE => write_out(data.cast::<usize>(), info.map_or(0, |i| i.size)),
            a::MAPPED => write_out(data.cast::<u32>(), u32::from(info.is_some())),
            _ => Err(SimError::InvalidValue),
        }
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuPointerGetAttribute(
    data: *mut c_void,
    attribute: c_uint,
    ptr: CUdeviceptr,
) -> CUresult {
    cuda("cuPointerGetAttribute", |sim| {
        let info = sim.pointer_info(ptr);
        // SAFETY: `data` is valid for the attribute's type by contract.
        unsafe { write_attribute(data, attribute, ptr, info, true) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuPointerGetAttributes(
    num_attributes: c_uint,
    attributes: *mut c_uint,
    data: *mut *mut c_void,
    ptr: CUdeviceptr,
) -> CUresult {
    cuda("cuPointerGetAttributes", |sim| {
        if num_attributes > 0 && (attributes.is_null() || data.is_null()) {
            return Err(SimError::InvalidValue);
        }
        let info = sim.pointer_info(ptr);
        for i in 0..num_attributes as usize {
            // SAFETY: both arrays hold `num_attributes` elements by contract; each data slot is
            // valid for its attribute's type.
            unsafe {
                let attribute = attributes.add(i).read();
                let slot = data.add(i).read();
                write_attribute(slot, attribute, ptr, info, false)?;
            }
        }
        Ok(())
    })
}

// ----- host functions and errors ----------------------------------------------------------------

#[unsafe(no_mangle)]
pub extern "C" fn cuLaunchHostFunc(
    stream: CUstream,
    func: HostFn,
    user_data: *mut c_void,
) -> CUresult {
    launch(Launch {
        api: "cuLaunchHostFunc",
        name: "cuLaunchHostFunc",
        backend: Backend::Cuda,
        stream: stream as u64,
        reads: &[],
        writes: &[],
        func,
        user: user_data,
        needs_init: true,
    })
}

fn error_entry(
    code: CUresult,
) -> Option<&'static (u32, &'static std::ffi::CStr, &'static std::ffi::CStr)> {
    ERRORS.iter().find(|(c, _, _)| *c == code)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorString(error: CUresult, p_str: *mut *const c_char) -> CUresult {
    cuda_uninit("cuGetErrorString", |_| {
        let entry = error_entry(error);
        let text = entry.map_or(std::ptr::null(), |e| e.2.as_ptr());
        // SAFETY: out-pointer by contract.
        unsafe { write_out(p_str, text) }?;
        entry.map(|_| ()).ok_or(SimError::InvalidValue)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorName(error: CUresult, p_str: *mut *const c_char) -> CUresult {
    cuda_uninit("cuGetErrorName", |_| {
        let entry = error_entry(error);
        let text = entry.map_or(std::ptr::null(), |e| e.1.as_ptr());
        // SAFETY: out-pointer by contract.
        unsafe { write_out(p_str, text) }?;
        entry.map(|_| ()).ok_or(SimError::InvalidValue)
    })
}
