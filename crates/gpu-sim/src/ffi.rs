//! The boundary: no panic crosses it, every out-pointer is checked for null, and the shared
//! launch path for host-function kernels (which must run user code with the lock released).

use std::ffi::{CStr, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::call::Call;
use crate::memory::AccessKind;
use crate::sim::{Backend, KernelFrame, SimError, SimResult, lock, with_kernel};

/// A host function as both APIs declare it (`CUhostFn`, `hipHostFn_t`).
pub type HostFn = Option<unsafe extern "C" fn(*mut c_void)>;

/// Runs `f` with a panic turned into `fallback`.
pub fn guarded<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

fn status(result: SimResult<()>) -> u32 {
    match result {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}

/// A CUDA driver call: counted, requires `cuInit`, returns a `CUresult`.
pub fn cuda(api: &'static str, f: impl FnOnce(&mut Call<'_>) -> SimResult<()>) -> u32 {
    call(Backend::Cuda, api, true, f)
}

/// A CUDA driver call that works before `cuInit`.
pub fn cuda_uninit(api: &'static str, f: impl FnOnce(&mut Call<'_>) -> SimResult<()>) -> u32 {
    call(Backend::Cuda, api, false, f)
}

/// A HIP runtime call: counted, returns a `hipError_t`.
pub fn hip(api: &'static str, f: impl FnOnce(&mut Call<'_>) -> SimResult<()>) -> i32 {
    call(Backend::Hip, api, false, f) as i32
}

/// One call of `api` through `backend`'s ABI: guarded, counted, and (`needs_init`) refused
/// before `cuInit`.
fn call(
    backend: Backend,
    api: &'static str,
    needs_init: bool,
    f: impl FnOnce(&mut Call<'_>) -> SimResult<()>,
) -> u32 {
    guarded(SimError::Unknown.code(), || {
        let mut sim = lock();
        sim.count(api);
        if needs_init && !sim.initialized {
            return SimError::NotInitialized.code();
        }
        status(f(&mut Call::new(&mut sim, backend, api)))
    })
}

/// Declares exported functions of an ABI, each as one line (or block) of translation:
///
/// ```text
/// unsafe fn cuStreamCreate(ph_stream: *mut CUstream, flags: c_uint) -> CUresult => cuda(|c| ...);
/// ```
///
/// expands to `#[unsafe(no_mangle)] pub unsafe extern "C" fn cuStreamCreate(...) -> CUresult`
/// whose body is `cuda("cuStreamCreate", |c| ...)`: the exported symbol, its C signature and
/// the name it is counted and reported under are written once. `fn` without `unsafe` declares a
/// safe function (no pointer arguments).
macro_rules! exports {
    () => {};
    (
        $(#[$attr:meta])*
        unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty
            => $wrap:ident(|$c:pat_param| $body:expr);
        $($rest:tt)*
    ) => {
        $(#[$attr])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            $wrap(stringify!($name), |$c| $body)
        }
        exports!($($rest)*);
    };
    (
        $(#[$attr:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty
            => $wrap:ident(|$c:pat_param| $body:expr);
        $($rest:tt)*
    ) => {
        $(#[$attr])*
        #[unsafe(no_mangle)]
        pub extern "C" fn $name($($arg: $ty),*) -> $ret {
            $wrap(stringify!($name), |$c| $body)
        }
        exports!($($rest)*);
    };
}
pub(crate) use exports;

/// Every error code the simulator returns, and a few more both APIs define, as (code, CUDA
/// name, HIP name, description): `CUresult` and `hipError_t` number and word them alike, but
/// for the vendor's name in [`NO_DEVICE`](SimError::NoDevice)'s description.
#[rustfmt::skip]
const ERRORS: &[(u32, &CStr, &CStr, &CStr)] = &[
    (0, c"CUDA_SUCCESS", c"hipSuccess", c"no error"),
    (1, c"CUDA_ERROR_INVALID_VALUE", c"hipErrorInvalidValue", c"invalid argument"),
    (2, c"CUDA_ERROR_OUT_OF_MEMORY", c"hipErrorOutOfMemory", c"out of memory"),
    (3, c"CUDA_ERROR_NOT_INITIALIZED", c"hipErrorNotInitialized", c"initialization error"),
    (4, c"CUDA_ERROR_DEINITIALIZED", c"hipErrorDeinitialized", c"driver shutting down"),
    (100, c"CUDA_ERROR_NO_DEVICE", c"hipErrorNoDevice", c"no CUDA-capable device is detected"),
    (101, c"CUDA_ERROR_INVALID_DEVICE", c"hipErrorInvalidDevice", c"invalid device ordinal"),
    (201, c"CUDA_ERROR_INVALID_CONTEXT", c"hipErrorInvalidContext", c"invalid device context"),
    (400, c"CUDA_ERROR_INVALID_HANDLE", c"hipErrorInvalidHandle", c"invalid resource handle"),
    (500, c"CUDA_ERROR_NOT_FOUND", c"hipErrorNotFound", c"named symbol not found"),
    (600, c"CUDA_ERROR_NOT_READY", c"hipErrorNotReady", c"device not ready"),
    (700, c"CUDA_ERROR_ILLEGAL_ADDRESS", c"hipErrorIllegalAddress",
        c"an illegal memory access was encountered"),
    (801, c"CUDA_ERROR_NOT_SUPPORTED", c"hipErrorNotSupported", c"operation not supported"),
    (999, c"CUDA_ERROR_UNKNOWN", c"hipErrorUnknown", c"unknown error"),
];

/// The name `cuGetErrorName` / `hipGetErrorName` gives `code` (`None`: an unknown code).
pub fn error_name(backend: Backend, code: u32) -> Option<&'static CStr> {
    let (_, cuda, hip, _) = ERRORS.iter().find(|(c, ..)| *c == code)?;
    Some(match backend {
        Backend::Cuda => cuda,
        Backend::Hip => hip,
    })
}

/// The description `cuGetErrorString` / `hipGetErrorString` gives `code` (`None`: an unknown
/// code).
pub fn error_text(backend: Backend, code: u32) -> Option<&'static CStr> {
    let (_, _, _, text) = ERRORS.iter().find(|(c, ..)| *c == code)?;
    Some(match (backend, code) {
        (Backend::Hip, 100) => c"no ROCm-capable device is detected",
        _ => text,
    })
}

/// Writes `value` to the caller's out-pointer, or fails with `InvalidValue` if it is null.
///
/// # Safety
/// `out` must be null or valid for a write of `T` (the C API's contract).
pub unsafe fn write_out<T>(out: *mut T, value: T) -> SimResult<()> {
    if out.is_null() {
        return Err(SimError::InvalidValue);
    }
    // SAFETY: non-null, and valid for writes by the caller's contract; `write_unaligned`
    // tolerates any alignment.
    unsafe { out.write_unaligned(value) };
    Ok(())
}

/// Copies `text` (UTF-8, NUL-terminated if room) into `buf[..cap]`; returns `text.len()`.
///
/// # Safety
/// `buf` must be null or valid for `cap` bytes of writes.
pub unsafe fn write_text(buf: *mut u8, cap: usize, text: &str) -> usize {
    if !buf.is_null() && cap > 0 {
        let n = text.len().min(cap - 1);
        // SAFETY: `buf` is valid for `cap` bytes and `n + 1 <= cap`; `text` is a separate
        // Rust allocation, so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf, n);
            buf.add(n).write(0);
        }
    }
    text.len()
}

/// One launch of a host-function kernel.
#[derive(Debug)]
pub struct Launch<'a> {
    /// API whose counter is bumped.
    pub api: &'static str,
    /// Display name of the operation (`cuLaunchHostFunc`, or the test's kernel name).
    pub name: &'a str,
    /// Which API's stream rules apply.
    pub backend: Backend,
    /// Stream handle value.
    pub stream: u64,
    /// Byte ranges read.
    pub reads: &'a [(u64, usize)],
    /// Byte ranges written.
    pub writes: &'a [(u64, usize)],
    /// The function and its argument.
    pub func: HostFn,
    /// Passed to `func`.
    pub user: *mut c_void,
    /// Whether `cuInit` must have been called.
    pub needs_init: bool,
}

/// Enqueues the kernel (checking its declared accesses), then runs `func(user)` immediately
/// with the lock released, so it may call back into the simulator.
pub fn launch(launch: Launch<'_>) -> u32 {
    let prepared = guarded(Err(SimError::Unknown), || {
        let mut sim = lock();
        sim.count(launch.api);
        if launch.needs_init && !sim.initialized {
            return Err(SimError::NotInitialized);
        }
        let key = sim.stream_key_or_report(launch.backend, launch.api, launch.stream)?;
        let op = sim.enqueue(launch.name, key)?;
        for &(ptr, len) in launch.reads {
            sim.access(&op, ptr, len, AccessKind::Read)?;
        }
        for &(ptr, len) in launch.writes {
            sim.access(&op, ptr, len, AccessKind::Write)?;
        }
        Ok(KernelFrame {
            op,
            generation: sim.generation,
        })
    });
    let frame = match prepared {
        Ok(frame) => frame,
        Err(e) => return e.code(),
    };
    if let Some(func) = launch.func {
        let user = launch.user;
        // SAFETY: the caller handed us `func` and `user` to be called as `func(user)`; that is
        // the whole contract of `cuLaunchHostFunc` / `hipLaunchHostFunc`.
        with_kernel(frame, || unsafe { func(user) });
    }
    0
}
