//! The HIP runtime functions this crate calls, as one table of C function
//! pointers ([`Api`]), resolved once.
//!
//! Default: `libamdhip64` is opened at run time with `libloading`
//! (`libamdhip64.so`, then `.so.6`, then `.so.5`), so the crate builds
//! without ROCm; when no name loads, [`api`] returns
//! [`Error::DriverNotFound`] every time (the search runs once). Feature
//! `hip-sys`: the table points at thin wrappers over hip-sys's linked
//! bindings instead.
//!
//! Types follow ROCm's `hip_runtime_api.h`: `hipError_t` is `int`, streams,
//! events and device pointers are `void*`.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;

use dlpack_device::Error;

/// `hipStream_t`, `hipEvent_t`, device pointers.
pub(crate) type Ptr = *mut c_void;

/// `hipEventDisableTiming`.
pub(crate) const EVENT_DISABLE_TIMING: c_uint = 0x2;
/// `hipMemcpyHostToDevice`.
pub(crate) const MEMCPY_HOST_TO_DEVICE: c_int = 1;
/// `hipMemcpyDeviceToHost`.
pub(crate) const MEMCPY_DEVICE_TO_HOST: c_int = 2;
/// `hipMemcpyDeviceToDevice`.
pub(crate) const MEMCPY_DEVICE_TO_DEVICE: c_int = 3;

/// `hipPointerAttribute_t` (the layout of ROCm 5 and 6 is the same; the
/// numbering of the memory type differs, see [`crate::driver`]).
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub(crate) struct PointerAttribute {
    pub memory_type: u32,
    pub device: c_int,
    pub device_pointer: Ptr,
    pub host_pointer: Ptr,
    pub is_managed: c_int,
    pub allocation_flags: c_uint,
}

macro_rules! api {
    ($($name:ident : fn($($arg:ty),*) -> $ret:ty;)*) => {
        /// The resolved entry points.
        #[allow(non_snake_case)]
        #[derive(Copy, Clone, Debug)]
        pub(crate) struct Api {
            $(pub $name: unsafe extern "C" fn($($arg),*) -> $ret,)*
        }

        #[cfg(not(feature = "hip-sys"))]
        impl Api {
            /// Resolves every symbol from `lib`.
            ///
            /// # Safety
            ///
            /// `lib` is a HIP runtime whose functions have the C signatures
            /// above.
            unsafe fn resolve(lib: &libloading::Library) -> Result<Api, String> {
                Ok(Api {$(
                    // SAFETY: the field's type is the function's C signature
                    // (the caller's contract); the library is never unloaded
                    // (kept in a static), so the pointer stays valid.
                    $name: unsafe {
                        *lib.get::<unsafe extern "C" fn($($arg),*) -> $ret>(
                            concat!(stringify!($name), "\0").as_bytes(),
                        )
                        .map_err(|e| format!("{}: {e}", stringify!($name)))?
                    },
                )*})
            }
        }
    };
}

api! {
    hipGetDeviceCount: fn(*mut c_int) -> c_int;
    hipGetDevice: fn(*mut c_int) -> c_int;
    hipSetDevice: fn(c_int) -> c_int;
    hipRuntimeGetVersion: fn(*mut c_int) -> c_int;
    hipStreamCreateWithFlags: fn(*mut Ptr, c_uint) -> c_int;
    hipStreamDestroy: fn(Ptr) -> c_int;
    hipStreamSynchronize: fn(Ptr) -> c_int;
    hipStreamWaitEvent: fn(Ptr, Ptr, c_uint) -> c_int;
    hipEventCreateWithFlags: fn(*mut Ptr, c_uint) -> c_int;
    hipEventRecord: fn(Ptr, Ptr) -> c_int;
    hipEventDestroy: fn(Ptr) -> c_int;
    hipMalloc: fn(*mut Ptr, usize) -> c_int;
    hipFree: fn(Ptr) -> c_int;
    hipMemcpyAsync: fn(Ptr, *const c_void, usize, c_int, Ptr) -> c_int;
    hipMemsetAsync: fn(Ptr, c_int, usize, Ptr) -> c_int;
    hipPointerGetAttributes: fn(*mut PointerAttribute, *const c_void) -> c_int;
}

/// The names tried, in order.
#[cfg(not(feature = "hip-sys"))]
pub const LIBRARY_NAMES: [&str; 3] = ["libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.5"];

/// What loading found: the table and the runtime's version.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Runtime {
    pub api: Api,
    /// `hipRuntimeGetVersion` (e.g. 60241134 for 6.2), 0 if it failed.
    pub version: c_int,
}

#[cfg(not(feature = "hip-sys"))]
fn load() -> Result<Runtime, String> {
    let mut tried = Vec::new();
    for name in LIBRARY_NAMES {
        // SAFETY: opening the HIP runtime runs its initialisers, which have
        // no preconditions.
        match unsafe { libloading::Library::new(name) } {
            Ok(lib) => {
                // The library stays loaded for the life of the process: the
                // table points into it.
                let lib: &'static libloading::Library = Box::leak(Box::new(lib));
                // SAFETY: a HIP runtime exports these functions with the C
                // signatures of the table.
                let api = unsafe { Api::resolve(lib) }.map_err(|e| format!("{name}: {e}"))?;
                return Ok(Runtime {
                    api,
                    version: runtime_version(&api),
                });
            }
            Err(e) => tried.push(format!("{name}: {e}")),
        }
    }
    Err(tried.join("; "))
}

#[cfg(feature = "hip-sys")]
fn load() -> Result<Runtime, String> {
    let api = linked::api();
    Ok(Runtime {
        api,
        version: runtime_version(&api),
    })
}

fn runtime_version(api: &Api) -> c_int {
    let mut version = 0;
    // SAFETY: valid out-pointer.
    if unsafe { (api.hipRuntimeGetVersion)(&mut version) } != 0 {
        return 0;
    }
    version
}

/// The HIP runtime, loaded on first use.
///
/// # Errors
///
/// [`Error::DriverNotFound`] when no library name loads (or a symbol is
/// missing), with what was tried.
pub(crate) fn runtime() -> Result<&'static Runtime, Error> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(load)
        .as_ref()
        .map_err(|tried| Error::not_found::<crate::Hip>(tried.clone()))
}

/// Maps a `hipError_t` to a `Result`.
pub(crate) fn check(call: &'static str, code: c_int) -> Result<(), Error> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::Driver {
            call,
            code,
            name: error_name(code).to_owned(),
            invalid_device: code == ERROR_INVALID_DEVICE,
        })
    }
}

/// `hipErrorInvalidDevice`.
pub(crate) const ERROR_INVALID_DEVICE: c_int = 101;

/// The names of the `hipError_t` values this crate is likely to see (no
/// call into the runtime is needed to print an error).
fn error_name(code: c_int) -> &'static str {
    match code {
        1 => "hipErrorInvalidValue",
        2 => "hipErrorOutOfMemory",
        3 => "hipErrorNotInitialized",
        100 => "hipErrorNoDevice",
        101 => "hipErrorInvalidDevice",
        201 => "hipErrorInvalidContext",
        400 => "hipErrorInvalidHandle",
        600 => "hipErrorNotReady",
        700 => "hipErrorIllegalAddress",
        801 => "hipErrorNotSupported",
        _ => "hipError",
    }
}

#[cfg(feature = "hip-sys")]
mod linked {
    //! Wrappers over hip-sys's linked bindings with the table's C
    //! signatures: enums become `int`s, typed handles `void*`.
    //!
    //! hip-sys models `hipError_t` as a Rust enum: a runtime returning a
    //! code outside HIP 5.4's list would be undefined behaviour in Rust.
    //! The codes the simulator and Debian's runtime return are all listed.
    #![allow(non_snake_case)]

    use std::ffi::{c_int, c_uint, c_void};

    use hip_sys::hiprt as h;

    use super::{Api, PointerAttribute, Ptr};

    macro_rules! wrap {
        ($($name:ident($($arg:ident : $t:ty),*) => $call:expr;)*) => {$(
            unsafe extern "C" fn $name($($arg: $t),*) -> c_int {
                // SAFETY: forwards the caller's arguments, which satisfy the
                // HIP function's contract (the table's callers ensure it).
                (unsafe { $call }) as c_int
            }
        )*};
    }

    fn kind(k: c_int) -> h::hipMemcpyKind {
        match k {
            0 => h::hipMemcpyKind::hipMemcpyHostToHost,
            1 => h::hipMemcpyKind::hipMemcpyHostToDevice,
            2 => h::hipMemcpyKind::hipMemcpyDeviceToHost,
            3 => h::hipMemcpyKind::hipMemcpyDeviceToDevice,
            _ => h::hipMemcpyKind::hipMemcpyDefault,
        }
    }

    wrap! {
        hipGetDeviceCount(n: *mut c_int) => h::hipGetDeviceCount(n);
        hipGetDevice(d: *mut c_int) => h::hipGetDevice(d);
        hipSetDevice(d: c_int) => h::hipSetDevice(d);
        hipRuntimeGetVersion(v: *mut c_int) => h::hipRuntimeGetVersion(v);
        hipStreamCreateWithFlags(s: *mut Ptr, f: c_uint) => h::hipStreamCreateWithFlags(s.cast(), f);
        hipStreamDestroy(s: Ptr) => h::hipStreamDestroy(s.cast());
        hipStreamSynchronize(s: Ptr) => h::hipStreamSynchronize(s.cast());
        hipStreamWaitEvent(s: Ptr, e: Ptr, f: c_uint) => h::hipStreamWaitEvent(s.cast(), e.cast(), f);
        hipEventCreateWithFlags(e: *mut Ptr, f: c_uint) => h::hipEventCreateWithFlags(e.cast(), f);
        hipEventRecord(e: Ptr, s: Ptr) => h::hipEventRecord(e.cast(), s.cast());
        hipEventDestroy(e: Ptr) => h::hipEventDestroy(e.cast());
        hipMalloc(p: *mut Ptr, n: usize) => h::hipMalloc(p, n);
        hipFree(p: Ptr) => h::hipFree(p);
        hipMemcpyAsync(d: Ptr, s: *const c_void, n: usize, k: c_int, st: Ptr) =>
            h::hipMemcpyAsync(d, s, n, kind(k), st.cast());
        hipMemsetAsync(d: Ptr, v: c_int, n: usize, s: Ptr) => h::hipMemsetAsync(d, v, n, s.cast());
        // The struct layouts match (ROCm 5 and 6); our struct reads the memory
        // type as an integer, so no enum value is ever materialised.
        hipPointerGetAttributes(a: *mut PointerAttribute, p: *const c_void) =>
            h::hipPointerGetAttributes(a.cast(), p);
    }

    pub(super) fn api() -> Api {
        Api {
            hipGetDeviceCount,
            hipGetDevice,
            hipSetDevice,
            hipRuntimeGetVersion,
            hipStreamCreateWithFlags,
            hipStreamDestroy,
            hipStreamSynchronize,
            hipStreamWaitEvent,
            hipEventCreateWithFlags,
            hipEventRecord,
            hipEventDestroy,
            hipMalloc,
            hipFree,
            hipMemcpyAsync,
            hipMemsetAsync,
            hipPointerGetAttributes,
        }
    }
}
