//! Unit tests that drive the exported C functions directly (the state is global, so every test
//! takes `LOCK` and starts with `gpusim_reset`).

use std::ffi::{CStr, c_void};
use std::ptr::null_mut;
use std::sync::{Mutex, MutexGuard};

use crate::cuda_api::*;
use crate::hip_api::*;
use crate::inspect::*;

static LOCK: Mutex<()> = Mutex::new(());

/// Takes the test lock, resets the simulator and makes device `device`'s context current.
fn fresh(device: i32) -> MutexGuard<'static, ()> {
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    gpusim_reset();
    gpusim_set_device_count(2);
    assert_eq!(cuInit(0), 0);
    let mut ctx = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { cuDevicePrimaryCtxRetain(&mut ctx, device) }, 0);
    assert_eq!(cuCtxSetCurrent(ctx), 0);
    guard
}

fn stream(flags: u32) -> CUstream {
    let mut s = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { cuStreamCreate(&mut s, flags) }, 0);
    s
}

fn event() -> CUevent {
    let mut e = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { cuEventCreate(&mut e, 0) }, 0);
    e
}

fn alloc(n: usize) -> u64 {
    let mut p = 0;
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { cuMemAlloc_v2(&mut p, n) }, 0);
    p
}

fn races() -> Vec<String> {
    (0..gpusim_race_count())
        .map(|i| {
            let mut buf = vec![0u8; 4096];
            // SAFETY: buffer of the given size.
            let n = unsafe { gpusim_race_report(i, buf.as_mut_ptr().cast(), buf.len()) };
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
        .collect()
}

fn count(name: &CStr) -> u64 {
    // SAFETY: NUL-terminated string.
    unsafe { gpusim_call_count(name.as_ptr()) }
}

/// Producer writes on stream A, consumer reads on stream B, with or without ordering.
#[test]
fn ordering_scenarios_table() {
    #[derive(Debug, Clone, Copy)]
    enum Order {
        Nothing,
        EventWait,
        StreamSync,
        ContextSync,
        EventSync,
    }
    let cases = [
        (Order::Nothing, 1),
        (Order::EventWait, 0),
        (Order::StreamSync, 0),
        (Order::ContextSync, 0),
        (Order::EventSync, 0),
    ];
    for (order, expected) in cases {
        let _g = fresh(0);
        let (a, b) = (stream(1), stream(1));
        let src = alloc(64);
        let dst = alloc(64);
        assert_eq!(cuMemsetD8Async(src, 7, 64, a), 0);
        match order {
            Order::Nothing => {}
            Order::EventWait => {
                let e = event();
                assert_eq!(cuEventRecord(e, a), 0);
                assert_eq!(cuStreamWaitEvent(b, e, 0), 0);
            }
            Order::StreamSync => assert_eq!(cuStreamSynchronize(a), 0),
            Order::ContextSync => assert_eq!(cuCtxSynchronize(), 0),
            Order::EventSync => {
                let e = event();
                assert_eq!(cuEventRecord(e, a), 0);
                assert_eq!(cuEventSynchronize(e), 0);
            }
        }
        assert_eq!(cuMemcpyDtoDAsync_v2(dst, src, 64, b), 0);
        let r = races();
        assert_eq!(r.len(), expected, "{order:?}: {r:?}");
        if expected == 1 {
            assert!(r[0].contains("cuMemsetD8Async#"), "{}", r[0]);
            assert!(r[0].contains("cuMemcpyDtoDAsync_v2#"), "{}", r[0]);
        }
        // The bytes really moved.
        let mut host = [0u8; 64];
        // SAFETY: valid host buffer of 64 bytes.
        let rc = unsafe { cuMemcpyDtoH_v2(host.as_mut_ptr().cast(), dst, 64) };
        assert_eq!(rc, 0);
        assert_eq!(host, [7u8; 64]);
    }
}

/// Legacy default stream vs blocking and non-blocking streams: (producer flags, race?).
#[test]
fn legacy_stream_table() {
    for (flags, producer_on_legacy, expected) in
        [(0, false, 0), (1, false, 1), (0, true, 0), (1, true, 1)]
    {
        let _g = fresh(0);
        let s = stream(flags);
        let buf = alloc(32);
        let other = alloc(32);
        if producer_on_legacy {
            assert_eq!(cuMemsetD8Async(buf, 1, 32, null_mut()), 0);
            assert_eq!(cuMemcpyDtoDAsync_v2(other, buf, 32, s), 0);
        } else {
            assert_eq!(cuMemsetD8Async(buf, 1, 32, s), 0);
            assert_eq!(
                cuMemcpyDtoDAsync_v2(other, buf, 32, STREAM_LEGACY_HANDLE),
                0
            );
        }
        assert_eq!(
            gpusim_race_count(),
            expected,
            "flags {flags} legacy producer {producer_on_legacy}: {:?}",
            races()
        );
    }
}

const STREAM_LEGACY_HANDLE: CUstream = std::ptr::without_provenance_mut(1);
const STREAM_PER_THREAD_HANDLE: CUstream = std::ptr::without_provenance_mut(2);

#[test]
fn counters_and_blocking() {
    let _g = fresh(0);
    let (a, b) = (stream(1), stream(1));
    let e = event();
    gpusim_reset_counters();
    assert_eq!(cuEventRecord(e, a), 0);
    assert_eq!(cuStreamWaitEvent(b, e, 0), 0);
    assert_eq!(count(c"cuEventRecord"), 1);
    assert_eq!(count(c"cuStreamWaitEvent"), 1);
    assert_eq!(gpusim_blocking_count(), 0);
    assert_eq!(cuStreamSynchronize(a), 0);
    assert_eq!(cuEventSynchronize(e), 0);
    let p = alloc(8);
    assert_eq!(cuMemFree_v2(p), 0);
    assert_eq!(gpusim_blocking_count(), 3);
    let mut buf = vec![0u8; 256];
    // SAFETY: buffer of the given size.
    let n = unsafe { gpusim_counters_json(buf.as_mut_ptr().cast(), buf.len()) };
    let json = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(
        json.starts_with('{') && json.contains("\"cuEventRecord\": 1"),
        "{json}"
    );
    assert_eq!(gpusim_live_streams(), 2);
    assert_eq!(gpusim_live_events(), 1);
    assert_eq!(cuEventDestroy_v2(e), 0);
    assert_eq!(cuStreamDestroy_v2(a), 0);
    assert_eq!(gpusim_live_streams(), 1);
    assert_eq!(gpusim_live_events(), 0);
    // A destroyed handle is invalid afterwards.
    assert_eq!(cuStreamSynchronize(a), 400);
}

#[test]
fn bad_addresses_are_errors_not_crashes() {
    let _g = fresh(0);
    let s = stream(0);
    let p = alloc(100);
    let mut host = [0u8; 200];
    // Out of bounds.
    // SAFETY: host buffer is 200 bytes.
    let rc = unsafe { cuMemcpyDtoHAsync_v2(host.as_mut_ptr().cast(), p + 50, 51, s) };
    assert_eq!(rc, 1);
    // Unknown device address.
    assert_eq!(cuMemsetD8Async(0x0002_1234_0000_0000, 0, 4, s), 1);
    // Use after free.
    assert_eq!(cuStreamSynchronize(s), 0);
    assert_eq!(cuMemFree_v2(p), 0);
    assert_eq!(cuMemsetD8Async(p, 0, 4, s), 1);
    // Double free.
    assert_eq!(cuMemFree_v2(p), 1);
    assert_eq!(gpusim_error_count(), 4);
    let mut buf = vec![0u8; 512];
    // SAFETY: buffer of the given size.
    let n = unsafe { gpusim_error_report(2, buf.as_mut_ptr().cast(), buf.len()) };
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.contains("use-after-free"), "{text}");
    assert_eq!(gpusim_race_count(), 0, "{:?}", races());
    // Invalid handles.
    assert_eq!(cuStreamSynchronize(0xdead0 as CUstream), 400);
    assert_eq!(cuEventRecord(0xbeef0 as CUevent, s), 400);
}

#[test]
fn use_after_free_hazard() {
    let _g = fresh(0);
    let s = stream(1);
    let p = alloc(16);
    let mut host = [0u8; 16];
    // SAFETY: host buffer is 16 bytes.
    let rc = unsafe { cuMemcpyDtoHAsync_v2(host.as_mut_ptr().cast(), p, 16, s) };
    assert_eq!(rc, 0);
    assert_eq!(cuMemFree_v2(p), 0);
    let r = races();
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].contains("USE-AFTER-FREE") && r[0].contains("cuMemFree_v2#"),
        "{}",
        r[0]
    );
    // Stream-ordered free after the read on the same stream is fine.
    gpusim_clear_reports();
    let q = alloc(16);
    // SAFETY: host buffer is 16 bytes.
    let rc = unsafe { cuMemcpyDtoHAsync_v2(host.as_mut_ptr().cast(), q, 16, s) };
    assert_eq!(rc, 0);
    assert_eq!(cuMemFreeAsync(q, s), 0);
    assert_eq!(gpusim_race_count(), 0, "{:?}", races());
    assert_eq!(gpusim_live_allocations(), 0);
}

extern "C" fn add_one(user: *mut c_void) {
    let ptr = user as u64;
    assert_eq!(gpusim_kernel_read(ptr, 8), 0);
    assert_eq!(gpusim_kernel_write(ptr, 8), 0);
    let view = gpusim_host_view(ptr, 8);
    assert!(!view.is_null());
    for i in 0..8 {
        // SAFETY: the simulator vouches for 8 bytes at `view`.
        unsafe { *view.add(i) += 1 };
    }
}

#[test]
fn host_function_kernels_call_back_in() {
    let _g = fresh(0);
    let s = stream(0);
    let p = alloc(8);
    assert_eq!(cuMemsetD8Async(p, 41, 8, s), 0);
    assert_eq!(cuLaunchHostFunc(s, Some(add_one), p as *mut c_void), 0);
    let mut out = [0u8; 8];
    // SAFETY: out is 8 bytes.
    let rc = unsafe { cuMemcpyDtoHAsync_v2(out.as_mut_ptr().cast(), p, 8, s) };
    assert_eq!(rc, 0);
    assert_eq!(out, [42u8; 8]);
    assert_eq!(gpusim_race_count(), 0, "{:?}", races());
    // The same kernel on an unordered stream races with the kernel (read and write: one report)
    // and with the copy above.
    let t = stream(1);
    assert_eq!(cuLaunchHostFunc(t, Some(add_one), p as *mut c_void), 0);
    assert_eq!(gpusim_race_count(), 2, "{:?}", races());
    // Accesses outside a kernel are errors.
    assert_eq!(gpusim_kernel_read(p, 1), 1);
    // Declared accesses through gpusim_launch_kernel; an invalid range stops the launch.
    let reads = [p + 4];
    let lens = [8usize];
    // SAFETY: arrays of one element; no function.
    let rc = unsafe {
        gpusim_launch_kernel(
            s as u64,
            c"bad".as_ptr(),
            reads.as_ptr(),
            lens.as_ptr(),
            1,
            std::ptr::null(),
            std::ptr::null(),
            0,
            None,
            null_mut(),
            0,
        )
    };
    assert_eq!(rc, 700);
}

#[test]
fn host_accesses_need_synchronisation() {
    let _g = fresh(0);
    let s = stream(0);
    let mut pinned = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { cuMemAllocHost_v2(&mut pinned, 64) }, 0);
    let d = alloc(64);
    // SAFETY: pinned is 64 bytes.
    assert_eq!(unsafe { cuMemcpyDtoHAsync_v2(pinned, d, 64, s) }, 0);
    assert_eq!(gpusim_host_read(pinned as u64, 64), 0);
    assert_eq!(gpusim_race_count(), 1, "{:?}", races());
    assert_eq!(cuStreamSynchronize(s), 0);
    assert_eq!(gpusim_host_read(pinned as u64, 64), 0);
    assert_eq!(gpusim_race_count(), 1);
    // Host write before enqueue is ordered before the copy.
    assert_eq!(gpusim_host_write(pinned as u64, 64), 0);
    // SAFETY: pinned is 64 bytes.
    assert_eq!(unsafe { cuMemcpyHtoDAsync_v2(d, pinned, 64, s) }, 0);
    assert_eq!(gpusim_race_count(), 1);
    assert_eq!(cuStreamSynchronize(s), 0);
    assert_eq!(cuMemFreeHost(pinned), 0);
}

#[test]
fn pointer_attributes_table() {
    let _g = fresh(1);
    let dev = alloc(32);
    let mut pinned = null_mut();
    let mut managed = 0u64;
    // SAFETY: valid out-pointers.
    unsafe {
        assert_eq!(cuMemAllocHost_v2(&mut pinned, 32), 0);
        assert_eq!(cuMemAllocManaged(&mut managed, 32, 1), 0);
    }
    // (pointer, memory type, is managed)
    for (ptr, mem_type, managed_flag) in [
        (dev + 5, 2u32, 0u32),
        (pinned as u64, 1, 0),
        (managed, 2, 1), // managed memory: DEVICE with IS_MANAGED, as the driver answers
    ] {
        let (mut t, mut ordinal, mut is_managed, mut ctx) =
            (0u32, -1i32, 9u32, null_mut::<c_void>());
        // SAFETY: each out-pointer has the attribute's type.
        unsafe {
            assert_eq!(cuPointerGetAttribute((&raw mut t).cast(), 2, ptr), 0);
            assert_eq!(cuPointerGetAttribute((&raw mut ordinal).cast(), 9, ptr), 0);
            assert_eq!(
                cuPointerGetAttribute((&raw mut is_managed).cast(), 8, ptr),
                0
            );
            assert_eq!(cuPointerGetAttribute((&raw mut ctx).cast(), 1, ptr), 0);
        }
        assert_eq!((t, ordinal, is_managed), (mem_type, 1, managed_flag));
        let mut current = null_mut();
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { cuCtxGetCurrent(&mut current) }, 0);
        assert_eq!(ctx, current);
    }
    // Unknown pointers: error for the single query, defaults for the multi query.
    let mut t = 0u32;
    let host = [0u8; 4];
    // SAFETY: out-pointer of the attribute's type.
    let rc = unsafe { cuPointerGetAttribute((&raw mut t).cast(), 2, host.as_ptr() as u64) };
    assert_eq!(rc, 1);
    let mut attrs = [2u32, 9];
    let mut ordinal = 5i32;
    let mut data = [(&raw mut t).cast::<c_void>(), (&raw mut ordinal).cast()];
    // SAFETY: arrays of two elements with matching types.
    let rc = unsafe { cuPointerGetAttributes(2, attrs.as_mut_ptr(), data.as_mut_ptr(), dev) };
    assert_eq!((rc, t, ordinal), (0, 2, 1));
    // HIP view of the same allocations.
    let mut attr = HipPointerAttribute {
        memory_type: 99,
        device: 99,
        device_pointer: null_mut(),
        host_pointer: null_mut(),
        is_managed: 9,
        allocation_flags: 9,
    };
    assert_eq!(std::mem::size_of::<HipPointerAttribute>(), 32);
    // SAFETY: valid out-pointer.
    let rc = unsafe { hipPointerGetAttributes(&mut attr, dev as *const c_void) };
    assert_eq!(rc, 0);
    assert_eq!((attr.memory_type, attr.device, attr.is_managed), (2, 1, 0));
    // SAFETY: valid out-pointer.
    let rc = unsafe { hipPointerGetAttributes(&mut attr, managed as *const c_void) };
    assert_eq!(rc, 0);
    assert_eq!(
        (attr.memory_type, attr.is_managed, attr.allocation_flags),
        (3, 1, 1)
    );
    // SAFETY: valid out-pointer.
    let rc = unsafe { hipPointerGetAttributes(&mut attr, host.as_ptr().cast()) };
    assert_eq!(rc, 0);
    assert_eq!((attr.memory_type, attr.device), (0, -1));
}

#[test]
fn per_thread_default_streams_are_distinct() {
    let _g = fresh(0);
    let p = alloc(16);
    assert_eq!(cuMemsetD8Async(p, 1, 16, STREAM_PER_THREAD_HANDLE), 0);
    // Same thread, same stream: ordered.
    assert_eq!(cuMemsetD8Async(p, 2, 16, STREAM_PER_THREAD_HANDLE), 0);
    assert_eq!(gpusim_race_count(), 0);
    let mut ctx = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { cuCtxGetCurrent(&mut ctx) }, 0);
    let ctx_addr = ctx as u64;
    std::thread::spawn(move || {
        assert_eq!(cuCtxSetCurrent(ctx_addr as CUcontext), 0);
        assert_eq!(cuMemsetD8Async(p, 3, 16, STREAM_PER_THREAD_HANDLE), 0);
    })
    .join()
    .unwrap();
    assert_eq!(gpusim_race_count(), 1, "{:?}", races());
}

#[test]
fn hip_event_ordering_and_errors() {
    let _g = fresh(0);
    assert_eq!(hipSetDevice(1), 0);
    let (mut a, mut b, mut e) = (null_mut(), null_mut(), null_mut());
    let mut p = null_mut();
    // SAFETY: valid out-pointers.
    unsafe {
        assert_eq!(hipStreamCreateWithFlags(&mut a, 1), 0);
        assert_eq!(hipStreamCreateWithFlags(&mut b, 1), 0);
        assert_eq!(hipEventCreate(&mut e), 0);
        assert_eq!(hipMalloc(&mut p, 64), 0);
    }
    let mut host = [0u8; 64];
    assert_eq!(hipMemsetAsync(p, 9, 64, a), 0);
    assert_eq!(hipEventRecord(e, a), 0);
    assert_eq!(hipStreamWaitEvent(b, e, 0), 0);
    // SAFETY: host is 64 bytes.
    let rc = unsafe { hipMemcpyAsync(host.as_mut_ptr().cast(), p, 64, 2, b) };
    assert_eq!(rc, 0);
    assert_eq!(gpusim_race_count(), 0, "{:?}", races());
    assert_eq!(hipStreamSynchronize(b), 0);
    assert_eq!(host, [9u8; 64]);
    assert_eq!(hipSetDevice(7), 101);
    // SAFETY: static strings.
    unsafe {
        assert_eq!(
            CStr::from_ptr(hipGetErrorName(101)),
            c"hipErrorInvalidDevice"
        );
        assert_eq!(CStr::from_ptr(hipGetErrorString(1)), c"invalid argument");
    }
    assert_eq!(hipFree(p), 0);
    assert_eq!(hipSetDevice(0), 0);
}

#[test]
fn no_device_and_error_strings() {
    let _g = fresh(0);
    gpusim_set_device_count(0);
    assert_eq!(cuInit(0), 100);
    assert_eq!(hipInit(0), 100);
    let mut n = 5;
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { hipGetDeviceCount(&mut n) }, 100);
    assert_eq!(n, 0);
    let mut s = std::ptr::null();
    // SAFETY: valid out-pointer; the result is a static string.
    unsafe {
        assert_eq!(cuGetErrorString(100, &mut s), 0);
        assert_eq!(CStr::from_ptr(s), c"no CUDA-capable device is detected");
        assert_eq!(cuGetErrorName(700, &mut s), 0);
        assert_eq!(CStr::from_ptr(s), c"CUDA_ERROR_ILLEGAL_ADDRESS");
        assert_eq!(cuGetErrorName(12345, &mut s), 1);
    }
    gpusim_set_device_count(2);
}

#[test]
fn both_abis_name_and_describe_error_codes_alike() {
    let _g = fresh(0);
    // (code, CUDA name, HIP name, CUDA text, HIP text)
    let cases: &[(i32, &CStr, &CStr, &CStr, &CStr)] = &[
        (0, c"CUDA_SUCCESS", c"hipSuccess", c"no error", c"no error"),
        (
            4,
            c"CUDA_ERROR_DEINITIALIZED",
            c"hipErrorDeinitialized",
            c"driver shutting down",
            c"driver shutting down",
        ),
        (
            100,
            c"CUDA_ERROR_NO_DEVICE",
            c"hipErrorNoDevice",
            c"no CUDA-capable device is detected",
            c"no ROCm-capable device is detected",
        ),
        (
            600,
            c"CUDA_ERROR_NOT_READY",
            c"hipErrorNotReady",
            c"device not ready",
            c"device not ready",
        ),
    ];
    for &(code, cuda_name, hip_name, cuda_text, hip_text) in cases {
        let (mut name, mut text) = (std::ptr::null(), std::ptr::null());
        // SAFETY: valid out-pointers; the results are static strings.
        unsafe {
            assert_eq!(cuGetErrorName(code as u32, &mut name), 0);
            assert_eq!(cuGetErrorString(code as u32, &mut text), 0);
            assert_eq!(CStr::from_ptr(name), cuda_name);
            assert_eq!(CStr::from_ptr(text), cuda_text);
            assert_eq!(CStr::from_ptr(hipGetErrorName(code)), hip_name);
            assert_eq!(CStr::from_ptr(hipGetErrorString(code)), hip_text);
        }
    }
    // Unknown codes: CUDA refuses them, HIP names them "unknown".
    let mut text = std::ptr::null();
    // SAFETY: valid out-pointer; the results are static strings.
    unsafe {
        assert_eq!(cuGetErrorString(12345, &mut text), 1);
        assert!(text.is_null());
        assert_eq!(CStr::from_ptr(hipGetErrorName(-1)), c"hipErrorUnknown");
        assert_eq!(CStr::from_ptr(hipGetErrorString(12345)), c"unknown error");
    }
}

#[test]
fn synchronous_calls_wait_as_the_driver_documents() {
    let _g = fresh(0);
    let d = alloc(64);
    let e = alloc(64);
    let mut pinned = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { cuMemAllocHost_v2(&mut pinned, 64) }, 0);
    let mut host = vec![7u8; 64];
    let (pinned, pageable) = (pinned as usize, host.as_mut_ptr() as usize);
    type Call = Box<dyn Fn() -> u32>;
    fn htod(dst: u64, src: usize) -> u32 {
        // SAFETY: `src` is 64 valid host bytes (the test's pinned or pageable buffer).
        unsafe { cuMemcpyHtoD_v2(dst, src as *const c_void, 64) }
    }
    fn dtoh(dst: usize, src: u64) -> u32 {
        // SAFETY: `dst` is 64 valid host bytes (the test's pageable buffer).
        unsafe { cuMemcpyDtoH_v2(dst as *mut c_void, src, 64) }
    }
    // (call, the memory it writes, host-blocking calls, the host is ordered after it)
    #[rustfmt::skip]
    let rows: Vec<(&str, Call, u64, u64, bool)> = vec![
        ("memset D8 of device memory", Box::new(move || cuMemsetD8_v2(d, 1, 64)), d, 0, false),
        ("memset D32 of device memory", Box::new(move || cuMemsetD32_v2(d, 1, 16)), d, 0, false),
        ("copy device to device", Box::new(move || cuMemcpyDtoD_v2(e, d, 64)), e, 0, false),
        ("copy pageable host to device", Box::new(move || htod(d, pageable)), d, 1, false),
        ("copy pinned host to device", Box::new(move || htod(d, pinned)), d, 1, true),
        ("copy device to pageable host", Box::new(move || dtoh(pageable, d)), d, 1, true),
    ];
    for (what, call, written, blocking, host_after) in rows {
        gpusim_reset_counters();
        assert_eq!(call(), 0, "{what}");
        assert_eq!(gpusim_blocking_count(), blocking, "{what}");
        // The host touches the memory next: a race unless the call ordered the host after it.
        let before = gpusim_race_count();
        assert_eq!(gpusim_host_write(written, 64), 0);
        assert_eq!(
            gpusim_race_count() > before,
            !host_after,
            "{what}: {:?}",
            races()
        );
        assert_eq!(cuCtxSynchronize(), 0);
        gpusim_clear_reports();
    }
    assert_eq!(cuMemFreeHost(pinned as *mut c_void), 0);
}

#[test]
fn queries_report_pending_work_until_a_sync() {
    let _g = fresh(0);
    let s = stream(1);
    let e = event();
    let d = alloc(64);
    for pending in [true, false] {
        gpusim_set_pending(i32::from(pending));
        assert_eq!(cuMemsetD8Async(d, 1, 64, s), 0);
        assert_eq!(cuEventRecord(e, s), 0);
        let busy = if pending { 600 } else { 0 }; // CUDA_ERROR_NOT_READY
        assert_eq!(cuStreamQuery(s), busy, "pending={pending}");
        assert_eq!(cuEventQuery(e), busy, "pending={pending}");
        // A not-ready answer does not order the host after the work.
        let before = gpusim_race_count();
        assert_eq!(gpusim_host_write(d, 64), 0);
        assert_eq!(gpusim_race_count() > before, pending, "{:?}", races());
        gpusim_clear_reports();
        assert_eq!(cuStreamSynchronize(s), 0);
        assert_eq!((cuStreamQuery(s), cuEventQuery(e)), (0, 0));
    }
    // HIP answers the same way (hipErrorNotReady = 600).
    gpusim_set_pending(1);
    let mut h = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { hipStreamCreateWithFlags(&mut h, 1) }, 0);
    assert_eq!(hipMemsetAsync(d as *mut c_void, 0, 64, h), 0);
    assert_eq!(hipStreamQuery(h), 600);
    assert_eq!(hipStreamSynchronize(h), 0);
    assert_eq!(hipStreamQuery(h), 0);
    assert_eq!(hipStreamDestroy(h), 0);
}

fn alloc_async(n: usize, s: CUstream) -> u64 {
    let mut p = 0;
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { cuMemAllocAsync(&mut p, n, s) }, 0);
    p
}

#[test]
fn an_allocation_is_an_access_and_pool_addresses_are_reused() {
    let _g = fresh(0);
    let (a, b) = (stream(1), stream(1));
    // Used on b before the allocation on a is ordered: a race with the allocation.
    let p = alloc_async(64, a);
    assert_eq!(cuMemsetD8Async(p, 1, 64, b), 0);
    let r = races();
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].contains("cuMemAllocAsync#"), "{}", r[0]);
    gpusim_clear_reports();
    // Ordered through an event: no race.
    let q = alloc_async(64, a);
    let e = event();
    assert_eq!(cuEventRecord(e, a), 0);
    assert_eq!(cuStreamWaitEvent(b, e, 0), 0);
    assert_eq!(cuMemsetD8Async(q, 1, 64, b), 0);
    assert_eq!(races(), Vec::<String>::new());
    // A block freed on a is handed out again to a later allocation ordered after the free
    // (same stream) — not to one on b, which is not.
    assert_eq!(cuEventRecord(e, b), 0);
    assert_eq!(cuStreamWaitEvent(a, e, 0), 0);
    assert_eq!(cuMemFreeAsync(q, a), 0);
    let elsewhere = alloc_async(64, b);
    assert_ne!(elsewhere, q);
    let again = alloc_async(64, a);
    assert_eq!(again, q, "the pool reuses the freed address");
    assert_eq!(races(), Vec::<String>::new());
    // A stale use of the old pointer on b (not ordered after the free) now races with the
    // new owner's allocation.
    assert_eq!(cuMemsetD8Async(q, 2, 64, b), 0);
    let r = races();
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].contains("cuMemAllocAsync#") && r[0].contains("cuMemsetD8Async#"),
        "{r:?}"
    );
    gpusim_clear_reports();
    assert_eq!(cuCtxSynchronize(), 0);
    for (ptr, s) in [(p, a), (elsewhere, b), (again, a)] {
        assert_eq!(cuMemFreeAsync(ptr, s), 0);
    }
}

#[test]
fn streams_and_events_belong_to_a_context() {
    let _g = fresh(0);
    let mut primary = null_mut();
    let mut other = null_mut();
    // SAFETY: valid out-pointers.
    unsafe {
        assert_eq!(cuCtxGetCurrent(&mut primary), 0);
        assert_eq!(cuCtxCreate_v2(&mut other, 0, 0), 0); // pushed: current now
    }
    assert_ne!(primary, other);
    let s_other = stream(1);
    let mut ctx = null_mut();
    // SAFETY: valid out-pointers.
    unsafe {
        assert_eq!(cuStreamGetCtx(s_other, &mut ctx), 0);
        assert_eq!(ctx, other);
        assert_eq!(cuCtxPopCurrent_v2(&mut ctx), 0);
    }
    let e_primary = event();
    let s_primary = stream(1);
    // Recording an event of one context on a stream of another: CUDA_ERROR_INVALID_HANDLE.
    let errors = gpusim_error_count();
    assert_eq!(cuEventRecord(e_primary, s_other), 400);
    assert_eq!(gpusim_error_count(), errors + 1);
    // Waiting on it from a stream of another context is allowed.
    assert_eq!(cuEventRecord(e_primary, s_primary), 0);
    assert_eq!(cuStreamWaitEvent(s_other, e_primary, 0), 0);
    // The legacy stream is per context: the other context's legacy stream does not wait for
    // a blocking stream of the primary one.
    let d = alloc(64);
    let blocking = stream(0);
    assert_eq!(cuMemsetD8Async(d, 1, 64, blocking), 0);
    assert_eq!(cuCtxPushCurrent_v2(other), 0);
    assert_eq!(cuMemsetD8Async(d, 2, 64, 1 as CUstream), 0);
    assert_eq!(races().len(), 1, "{:?}", races());
    gpusim_clear_reports();
    // Contexts made by cuCtxCreate are destroyed; primary contexts are not.
    assert_eq!(cuCtxDestroy_v2(other), 0);
    assert_eq!(cuCtxDestroy_v2(primary), 201);
    assert_eq!(cuCtxSetCurrent(other), 201);
    gpusim_clear_reports();
}

#[test]
fn a_null_out_pointer_is_refused_before_any_effect_in_both_abis() {
    let _g = fresh(0);
    // (call, ABI's code) for every creating call of both ABIs, each with a null out-pointer.
    // SAFETY: a null out-pointer is part of each call's contract (refused with 1).
    let cases: [(&str, i64); 10] = unsafe {
        [
            ("cuStreamCreate", cuStreamCreate(null_mut(), 0).into()),
            ("hipStreamCreate", hipStreamCreate(null_mut()).into()),
            ("cuEventCreate", cuEventCreate(null_mut(), 0).into()),
            ("hipEventCreate", hipEventCreate(null_mut()).into()),
            ("cuMemAlloc_v2", cuMemAlloc_v2(null_mut(), 64).into()),
            ("hipMalloc", hipMalloc(null_mut(), 64).into()),
            (
                "cuMemAllocHost_v2",
                cuMemAllocHost_v2(null_mut(), 64).into(),
            ),
            ("hipHostMalloc", hipHostMalloc(null_mut(), 64, 0).into()),
            (
                "cuMemAllocManaged",
                cuMemAllocManaged(null_mut(), 64, 1).into(),
            ),
            (
                "hipMallocManaged",
                hipMallocManaged(null_mut(), 64, 1).into(),
            ),
        ]
    };
    for (call, code) in cases {
        assert_eq!(code, 1, "{call}");
    }
    let mut s = null_mut();
    // SAFETY: null out-pointer (refused) and a valid one.
    unsafe {
        assert_eq!(cuMemAllocAsync(null_mut(), 64, stream(1)), 1);
        assert_eq!(hipStreamCreate(&mut s), 0);
    }
    assert_eq!(gpusim_live_allocations(), 0);
    assert_eq!(gpusim_live_events(), 0);
    // The stream made for cuMemAllocAsync and the HIP one: nothing leaked by the refusals.
    assert_eq!(gpusim_live_streams(), 2);
    assert_eq!(hipStreamDestroy(s), 0);
}
