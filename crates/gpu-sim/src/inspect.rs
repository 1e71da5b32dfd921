//! The inspection API: `gpusim_*` functions for tests (wrapped by the `gpu-sim-inspect` crate
//! and by `python/gpusim.py`).
//!
//! Text results use one convention: `f(..., buf, cap) -> usize` writes at most `cap - 1` bytes
//! of UTF-8 plus a NUL into `buf` (nothing if `buf` is null or `cap` is 0) and returns the full
//! length without the NUL, so a caller asks with `cap = 0` first and then with `len + 1`.
//!
//! Status results (`i32`) are 0 on success or a `CUresult`/`hipError_t`-style code.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{CStr, c_char, c_void};

use crate::ffi::{HostFn, Launch, guarded, launch, write_text};
use crate::memory::AccessKind;
use crate::sim::{Backend, Sim, SimError, current_kernel, lock};

/// Version of this inspection ABI.
pub const ABI_VERSION: u32 = 1;

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Version of the inspection ABI (1).
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_version() -> u32 {
    ABI_VERSION
}

/// Forgets races, errors and counters, frees all memory, streams and events, and re-reads
/// `GPUSIM_DEVICE_COUNT` / `GPUSIM_MEMORY_POOLS`: a fresh simulator. (`cuInit` stays done.)
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_reset() {
    guarded((), || lock().reset());
}

/// Forgets race and error reports only.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_clear_reports() {
    guarded((), || {
        lock().clear_reports();
    });
}

/// Sets the number of simulated devices (0: `cuInit`/`hipInit` report no device).
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_set_device_count(n: u32) {
    guarded((), || lock().device_count = n);
}

/// The number of simulated devices.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_device_count() -> u32 {
    guarded(0, || lock().device_count)
}

/// Sets the answer to `CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED` (non-zero: supported).
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_set_memory_pools(supported: i32) {
    guarded((), || lock().memory_pools = supported != 0);
}

/// Keeps work pending until the host synchronises with it (non-zero) or not: with it, stream
/// and event queries answer "not ready" (`CUDA_ERROR_NOT_READY` / `hipErrorNotReady`) for work
/// the host has not waited for. Reset to `GPUSIM_PENDING` by `gpusim_reset`.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_set_pending(on: i32) {
    guarded((), || lock().pending_until_sync = on != 0);
}

/// Number of race (and use-after-free hazard) reports.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_race_count() -> usize {
    guarded(0, || lock().races.len())
}

/// Race report `index` as text (see the module docs for the buffer convention).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gpusim_race_report(index: usize, buf: *mut c_char, cap: usize) -> usize {
    // SAFETY: `buf` is null or valid for `cap` bytes by contract.
    unsafe { report(|sim| &sim.races, index, buf, cap) }
}

/// Number of error reports.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_error_count() -> usize {
    guarded(0, || lock().errors.len())
}

/// Error report `index` as text.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gpusim_error_report(index: usize, buf: *mut c_char, cap: usize) -> usize {
    // SAFETY: `buf` is null or valid for `cap` bytes by contract.
    unsafe { report(|sim| &sim.errors, index, buf, cap) }
}

/// Writes report `index` of the list `which` picks into `buf` (empty if there is none).
///
/// # Safety
/// `buf` must be null or valid for `cap` bytes of writes.
unsafe fn report(
    which: fn(&Sim) -> &Vec<String>,
    index: usize,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    guarded(0, || {
        let text = which(&lock()).get(index).cloned().unwrap_or_default();
        // SAFETY: `buf` is null or valid for `cap` bytes by this function's contract.
        unsafe { write_text(buf.cast(), cap, &text) }
    })
}

/// `{"races": [...], "errors": [...]}`; when it fits in `cap` the reports are also cleared
/// (taken), otherwise nothing changes and the needed length is returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gpusim_take_reports_json(buf: *mut c_char, cap: usize) -> usize {
    guarded(0, || {
        let mut sim = lock();
        let mut out = String::from("{\"races\": [");
        for (i, r) in sim.races.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            json_string(&mut out, r);
        }
        out.push_str("], \"errors\": [");
        for (i, e) in sim.errors.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            json_string(&mut out, e);
        }
        out.push_str("]}");
        if !buf.is_null() && cap > out.len() {
            sim.clear_reports();
        }
        // SAFETY: `buf` is null or valid for `cap` bytes by contract.
        unsafe { write_text(buf.cast(), cap, &out) }
    })
}

/// Live allocations (device, pinned and managed).
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_live_allocations() -> usize {
    guarded(0, || lock().memory.live_count())
}

/// Live events.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_live_events() -> usize {
    guarded(0, || lock().timelines.event_count())
}

/// Live created streams (implicit default streams are not counted).
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_live_streams() -> usize {
    guarded(0, || lock().timelines.created_stream_count())
}

/// Calls of the API function `name` (a NUL-terminated C string) since the last reset.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gpusim_call_count(name: *const c_char) -> u64 {
    if name.is_null() {
        return 0;
    }
    // SAFETY: non-null NUL-terminated string by contract.
    let name = unsafe { CStr::from_ptr(name) };
    guarded(0, || {
        let Ok(name) = name.to_str() else { return 0 };
        lock().counters.get(name).copied().unwrap_or(0)
    })
}

/// Calls that blocked the host since the last reset.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_blocking_count() -> u64 {
    guarded(0, || lock().blocking)
}

/// All call counters as `{"cuEventRecord": 3, ...}` (sorted by name).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gpusim_counters_json(buf: *mut c_char, cap: usize) -> usize {
    guarded(0, || {
        let sim = lock();
        let mut out = String::from("{");
        for (i, (name, count)) in sim.counters.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            json_string(&mut out, name);
            out.push_str(&format!(": {count}"));
        }
        out.push('}');
        drop(sim);
        // SAFETY: `buf` is null or valid for `cap` bytes by contract.
        unsafe { write_text(buf.cast(), cap, &out) }
    })
}

/// Zeroes the call counters and the blocking counter.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_reset_counters() {
    guarded((), || {
        let mut sim = lock();
        sim.counters.clear();
        sim.blocking = 0;
    });
}

fn kernel_access(ptr: u64, len: usize, kind: AccessKind) -> i32 {
    guarded(SimError::Unknown.code() as i32, || {
        let mut sim = lock();
        let Some(frame) = current_kernel().filter(|f| f.generation == sim.generation) else {
            sim.error(format!(
                "gpusim_kernel_{}({ptr:#x}, {len}) called outside a host-function kernel",
                if kind == AccessKind::Read {
                    "read"
                } else {
                    "write"
                }
            ));
            return SimError::InvalidValue.code() as i32;
        };
        match sim.access(&frame.op, ptr, len, kind) {
            Ok(()) => 0,
            Err(e) => e.code() as i32,
        }
    })
}

/// Inside a host-function kernel: records that it reads `[ptr, ptr+len)`.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_kernel_read(ptr: u64, len: usize) -> i32 {
    kernel_access(ptr, len, AccessKind::Read)
}

/// Inside a host-function kernel: records that it writes `[ptr, ptr+len)`.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_kernel_write(ptr: u64, len: usize) -> i32 {
    kernel_access(ptr, len, AccessKind::Write)
}

/// The host bytes behind `[ptr, ptr+len)` of simulator memory, or null if that is not inside
/// one live allocation (also reported as an error). Records no access.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_host_view(ptr: u64, len: usize) -> *mut u8 {
    guarded(std::ptr::null_mut(), || {
        lock().host_view(ptr, len).unwrap_or(std::ptr::null_mut())
    })
}

fn host_access(api: &'static str, ptr: u64, len: usize, kind: AccessKind) -> i32 {
    guarded(SimError::Unknown.code() as i32, || {
        let mut sim = lock();
        let op = sim.host_op(api);
        match sim.access(&op, ptr, len, kind) {
            Ok(()) => 0,
            Err(e) => e.code() as i32,
        }
    })
}

/// Records that the host reads `[ptr, ptr+len)` (pinned, managed or device memory) now.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_host_read(ptr: u64, len: usize) -> i32 {
    host_access("gpusim_host_read", ptr, len, AccessKind::Read)
}

/// Records that the host writes `[ptr, ptr+len)` now.
#[unsafe(no_mangle)]
pub extern "C" fn gpusim_host_write(ptr: u64, len: usize) -> i32 {
    host_access("gpusim_host_write", ptr, len, AccessKind::Write)
}

/// Launches a test kernel on `stream`: declares its reads and writes (checked for races now),
/// then runs `func(user)` immediately (it may call `gpusim_kernel_*` and `gpusim_host_view`).
/// `backend` 0 interprets `stream` as a `CUstream`, 1 as a `hipStream_t`. Returns 0 or an error
/// code (700 if a declared range is not valid memory; the function then does not run).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gpusim_launch_kernel(
    stream: u64,
    name: *const c_char,
    reads_ptr: *const u64,
    reads_len: *const usize,
    n_reads: usize,
    writes_ptr: *const u64,
    writes_len: *const usize,
    n_writes: usize,
    func: HostFn,
    user: *mut c_void,
    backend: i32,
) -> i32 {
    let ranges = |ptrs: *const u64, lens: *const usize, n: usize| -> Option<Vec<(u64, usize)>> {
        if n == 0 {
            return Some(Vec::new());
        }
        if ptrs.is_null() || lens.is_null() {
            return None;
        }
        // SAFETY: both arrays hold `n` elements by contract.
        Some(
            (0..n)
                .map(|i| unsafe { (ptrs.add(i).read(), lens.add(i).read()) })
                .collect(),
        )
    };
    let (Some(reads), Some(writes)) = (
        ranges(reads_ptr, reads_len, n_reads),
        ranges(writes_ptr, writes_len, n_writes),
    ) else {
        return SimError::InvalidValue.code() as i32;
    };
    let name = if name.is_null() {
        "kernel".to_string()
    } else {
        // SAFETY: non-null NUL-terminated string by contract.
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    };
    let backend = if backend == 1 {
        Backend::Hip
    } else {
        Backend::Cuda
    };
    launch(Launch {
        api: "gpusim_launch_kernel",
        name: &name,
        backend,
        stream,
        reads: &reads,
        writes: &writes,
        func,
        user,
        needs_init: false,
    }) as i32
}
