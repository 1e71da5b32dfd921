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

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};

use crate::call::{Call, HostWait, On, Out};
use crate::ffi::{
    HostFn, Launch, cuda, cuda_uninit, error_name, error_text, exports, launch, write_out,
};
use crate::memory::{DEVICE_MEMORY_BYTES, MemKind};
use crate::sim::{Backend, Fill, PointerInfo, Side, SimError, SimResult, context_handle};

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

// ----- initialisation, devices, contexts -----------------------------------------------------

exports! {
    fn cuInit(_flags: c_uint) -> CUresult => cuda_uninit(|c| c.init());

    unsafe fn cuDriverGetVersion(version: *mut c_int) -> CUresult => cuda_uninit(|_| {
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(version) }.put(DRIVER_VERSION)
    });

    unsafe fn cuDeviceGetCount(count: *mut c_int) -> CUresult => cuda(|c| {
        let n = c_int::try_from(c.device_count).unwrap_or(c_int::MAX);
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(count) }.put(n)
    });

    unsafe fn cuDeviceGet(device: *mut CUdevice, ordinal: c_int) -> CUresult => cuda(|c| {
        let d = c.device(ordinal)?;
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(device) }.put(d as CUdevice)
    });

    unsafe fn cuDeviceGetAttribute(
        pi: *mut c_int,
        attrib: c_uint,
        dev: CUdevice,
    ) -> CUresult => cuda(|c| {
        let d = c.device(dev)?;
        let value = device_attribute(attrib, d, c.memory_pools);
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(pi) }.put(value)
    });

    unsafe fn cuDeviceGetName(
        name: *mut c_char,
        len: c_int,
        dev: CUdevice,
    ) -> CUresult => cuda(|c| {
        let d = c.device(dev)?;
        let cap = usize::try_from(len).map_err(|_| SimError::InvalidValue)?;
        if name.is_null() {
            return Err(SimError::InvalidValue);
        }
        let text = format!("gpu-sim simulated device {d}");
        // SAFETY: `name` is valid for `len` bytes by contract.
        unsafe { crate::ffi::write_text(name.cast(), cap, &text) };
        Ok(())
    });

    unsafe fn cuDeviceTotalMem_v2(bytes: *mut usize, dev: CUdevice) -> CUresult => cuda(|c| {
        c.device(dev)?;
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(bytes) }.put(DEVICE_MEMORY_BYTES as usize)
    });

    unsafe fn cuDevicePrimaryCtxRetain(
        pctx: *mut CUcontext,
        dev: CUdevice,
    ) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        c.retain_primary(dev, unsafe { Out::new(pctx) })
    });

    fn cuDevicePrimaryCtxRelease_v2(dev: CUdevice) -> CUresult => cuda(|c| c.release_primary(dev));

    unsafe fn cuCtxCreate_v2(
        pctx: *mut CUcontext,
        _flags: c_uint,
        dev: CUdevice,
    ) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        c.create_context(dev, unsafe { Out::new(pctx) })
    });

    fn cuCtxDestroy_v2(ctx: CUcontext) -> CUresult => cuda(|c| c.destroy_context(ctx as u64));

    unsafe fn cuCtxGetCurrent(pctx: *mut CUcontext) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(pctx) }.put_handle(c.current_context_handle())
    });

    fn cuCtxSetCurrent(ctx: CUcontext) -> CUresult => cuda(|c| c.set_current_context(ctx as u64));

    fn cuCtxPushCurrent_v2(ctx: CUcontext) -> CUresult => cuda(|c| c.push_context(ctx as u64));

    unsafe fn cuCtxPopCurrent_v2(pctx: *mut CUcontext) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        c.pop_context(unsafe { Out::new(pctx) })
    });

    unsafe fn cuCtxGetDevice(device: *mut CUdevice) -> CUresult => cuda(|c| {
        let d = c.current_device()?;
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(device) }.put(d as CUdevice)
    });

    fn cuCtxSynchronize() -> CUresult => cuda(|c| c.synchronize_current());

    // ----- streams ----------------------------------------------------------------------------

    unsafe fn cuStreamCreate(ph_stream: *mut CUstream, flags: c_uint) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        c.create_stream(flags, unsafe { Out::new(ph_stream) })
    });

    unsafe fn cuStreamCreateWithPriority(
        ph_stream: *mut CUstream,
        flags: c_uint,
        _priority: c_int,
    ) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        c.create_stream(flags, unsafe { Out::new(ph_stream) })
    });

    fn cuStreamDestroy_v2(stream: CUstream) -> CUresult
        => cuda(|c| c.destroy_stream(stream as u64));

    fn cuStreamSynchronize(stream: CUstream) -> CUresult
        => cuda(|c| c.synchronize_stream(stream as u64));

    fn cuStreamQuery(stream: CUstream) -> CUresult => cuda(|c| c.query_stream(stream as u64));

    fn cuStreamWaitEvent(stream: CUstream, event: CUevent, _flags: c_uint) -> CUresult
        => cuda(|c| c.wait_event(stream as u64, event as u64));

    unsafe fn cuStreamGetCtx(stream: CUstream, pctx: *mut CUcontext) -> CUresult => cuda(|c| {
        let context = c.stream_context(stream as u64)?;
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(pctx) }.put_handle(context)
    });

    // ----- events -----------------------------------------------------------------------------

    unsafe fn cuEventCreate(ph_event: *mut CUevent, flags: c_uint) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        c.create_event(flags, unsafe { Out::new(ph_event) })
    });

    fn cuEventRecord(event: CUevent, stream: CUstream) -> CUresult
        => cuda(|c| c.record_event(event as u64, stream as u64));

    fn cuEventRecordWithFlags(event: CUevent, stream: CUstream, _flags: c_uint) -> CUresult
        => cuda(|c| c.record_event(event as u64, stream as u64));

    fn cuEventSynchronize(event: CUevent) -> CUresult
        => cuda(|c| c.synchronize_event(event as u64));

    fn cuEventQuery(event: CUevent) -> CUresult => cuda(|c| c.query_event(event as u64));

    fn cuEventDestroy_v2(event: CUevent) -> CUresult => cuda(|c| c.destroy_event(event as u64));

    unsafe fn cuEventElapsedTime(
        ms: *mut f32,
        start: CUevent,
        end: CUevent,
    ) -> CUresult => cuda(|c| {
        let elapsed = c.elapsed_ms(start as u64, end as u64)?;
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(ms) }.put(elapsed)
    });

    // ----- memory -----------------------------------------------------------------------------

    unsafe fn cuMemAlloc_v2(dptr: *mut CUdeviceptr, bytesize: usize) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        c.allocate(MemKind::Device, bytesize, 0, unsafe { Out::new(dptr) })
    });

    unsafe fn cuMemAllocAsync(
        dptr: *mut CUdeviceptr,
        bytesize: usize,
        stream: CUstream,
    ) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        c.allocate_async(bytesize, stream as u64, unsafe { Out::new(dptr) })
    });

    fn cuMemFree_v2(dptr: CUdeviceptr) -> CUresult => cuda(|c| c.free_device(dptr));

    fn cuMemFreeAsync(dptr: CUdeviceptr, stream: CUstream) -> CUresult
        => cuda(|c| c.free_async(dptr, stream as u64));

    unsafe fn cuMemAllocHost_v2(pp: *mut *mut c_void, bytesize: usize) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        c.allocate(MemKind::Pinned, bytesize, 0, unsafe { Out::new(pp) })
    });

    unsafe fn cuMemHostAlloc(
        pp: *mut *mut c_void,
        bytesize: usize,
        flags: c_uint,
    ) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        c.allocate(MemKind::Pinned, bytesize, flags, unsafe { Out::new(pp) })
    });

    fn cuMemFreeHost(p: *mut c_void) -> CUresult => cuda(|c| c.free_pinned(p as u64));

    unsafe fn cuMemAllocManaged(
        dptr: *mut CUdeviceptr,
        bytesize: usize,
        flags: c_uint,
    ) -> CUresult => cuda(|c| {
        // SAFETY: out-pointer by contract.
        c.allocate(MemKind::Managed, bytesize, flags, unsafe { Out::new(dptr) })
    });

    unsafe fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> CUresult => cuda(|c| {
        let (free_bytes, total_bytes) = c.memory_info()?;
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(free) }.put(free_bytes)?;
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(total) }.put(total_bytes)
    });
}

/// How a synchronous copy waits when `host` is its host side: pinned (page-locked) memory makes
/// it synchronous, pageable memory lets it return once the source is staged.
fn host_side_wait(c: &Call<'_>, host: u64) -> On {
    On::Sync(if c.is_pinned(host) {
        HostWait::After
    } else {
        HostWait::Before
    })
}

/// How a synchronous memset of `dst` waits: only pinned host memory makes it synchronous.
fn memset_wait(c: &Call<'_>, dst: u64) -> On {
    On::Sync(if c.is_pinned(dst) {
        HostWait::After
    } else {
        HostWait::Never
    })
}

exports! {
    unsafe fn cuMemcpyHtoD_v2(
        dst: CUdeviceptr,
        src: *const c_void,
        n: usize,
    ) -> CUresult => cuda(|c| {
        let on = host_side_wait(c, src as u64);
        c.memcpy(on, Side::Device(dst), Side::Host(src as u64), n)
    });

    unsafe fn cuMemcpyDtoH_v2(
        dst: *mut c_void,
        src: CUdeviceptr,
        n: usize,
    ) -> CUresult => cuda(|c| {
        let on = On::Sync(HostWait::After);
        c.memcpy(on, Side::Host(dst as u64), Side::Device(src), n)
    });

    fn cuMemcpyDtoD_v2(dst: CUdeviceptr, src: CUdeviceptr, n: usize) -> CUresult => cuda(|c| {
        let on = On::Sync(HostWait::Never);
        c.memcpy(on, Side::Device(dst), Side::Device(src), n)
    });

    unsafe fn cuMemcpyHtoDAsync_v2(
        dst: CUdeviceptr,
        src: *const c_void,
        n: usize,
        stream: CUstream,
    ) -> CUresult => cuda(|c| {
        let on = On::Stream(stream as u64);
        c.memcpy(on, Side::Device(dst), Side::Host(src as u64), n)
    });

    unsafe fn cuMemcpyDtoHAsync_v2(
        dst: *mut c_void,
        src: CUdeviceptr,
        n: usize,
        stream: CUstream,
    ) -> CUresult => cuda(|c| {
        let on = On::Stream(stream as u64);
        c.memcpy(on, Side::Host(dst as u64), Side::Device(src), n)
    });

    fn cuMemcpyDtoDAsync_v2(
        dst: CUdeviceptr,
        src: CUdeviceptr,
        n: usize,
        stream: CUstream,
    ) -> CUresult => cuda(|c| {
        let on = On::Stream(stream as u64);
        c.memcpy(on, Side::Device(dst), Side::Device(src), n)
    });

    fn cuMemsetD8_v2(dst: CUdeviceptr, value: u8, n: usize) -> CUresult
        => cuda(|c| c.memset(memset_wait(c, dst), dst, Fill::Bytes(value), n));

    fn cuMemsetD8Async(dst: CUdeviceptr, value: u8, n: usize, stream: CUstream) -> CUresult
        => cuda(|c| c.memset(On::Stream(stream as u64), dst, Fill::Bytes(value), n));

    fn cuMemsetD32_v2(dst: CUdeviceptr, value: c_uint, n: usize) -> CUresult
        => cuda(|c| c.memset(memset_wait(c, dst), dst, Fill::Words(value), n));

    fn cuMemsetD32Async(dst: CUdeviceptr, value: c_uint, n: usize, stream: CUstream) -> CUresult
        => cuda(|c| c.memset(On::Stream(stream as u64), dst, Fill::Words(value), n));
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
    info: Option<PointerInfo>,
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

exports! {
    unsafe fn cuPointerGetAttribute(
        data: *mut c_void,
        attribute: c_uint,
        ptr: CUdeviceptr,
    ) -> CUresult => cuda(|c| {
        let info = c.pointer_info(ptr);
        // SAFETY: `data` is valid for the attribute's type by contract.
        unsafe { write_attribute(data, attribute, ptr, info, true) }
    });

    unsafe fn cuPointerGetAttributes(
        num_attributes: c_uint,
        attributes: *mut c_uint,
        data: *mut *mut c_void,
        ptr: CUdeviceptr,
    ) -> CUresult => cuda(|c| {
        if num_attributes > 0 && (attributes.is_null() || data.is_null()) {
            return Err(SimError::InvalidValue);
        }
        let info = c.pointer_info(ptr);
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
    });
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

exports! {
    unsafe fn cuGetErrorString(
        error: CUresult,
        p_str: *mut *const c_char,
    ) -> CUresult => cuda_uninit(|_| {
        let text = error_text(Backend::Cuda, error);
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(p_str) }.put(text.map_or(std::ptr::null(), CStr::as_ptr))?;
        text.map(|_| ()).ok_or(SimError::InvalidValue)
    });

    unsafe fn cuGetErrorName(
        error: CUresult,
        p_str: *mut *const c_char,
    ) -> CUresult => cuda_uninit(|_| {
        let name = error_name(Backend::Cuda, error);
        // SAFETY: out-pointer by contract.
        unsafe { Out::new(p_str) }.put(name.map_or(std::ptr::null(), CStr::as_ptr))?;
        name.map(|_| ()).ok_or(SimError::InvalidValue)
    });
}
