//! Rust access to gpu-sim's inspection API, for tests.
//!
//! The simulator's state lives in the *loaded copy* of `libgpu_sim.so` that the real loaders
//! (cudarc, a HIP loader) `dlopen` as `libcuda.so` / `libamdhip64.so`. This crate therefore does
//! not link gpu-sim: [`Sim::load`] opens the library by the same names the consumers use
//! (`libcuda.so`, then `libcuda.so.1`, then `libamdhip64.so`) with `RTLD_NOW | RTLD_GLOBAL`, and
//! the dynamic loader hands back the already-loaded object (or loads the one the consumer will
//! get later). All names must be symbolic links to one file (see gpu-sim's crate docs).
//!
//! For test binaries started without the library on `LD_LIBRARY_PATH` (a plain `cargo test`),
//! [`harness`] builds a folder of symlinks next to the test binary and re-runs the test in a
//! child process with `LD_LIBRARY_PATH` set (glibc reads `LD_LIBRARY_PATH` only at start-up).
//!
//! ```no_run
//! use gpu_sim_inspect::harness::{Setup, setup};
//! # fn my_test() {
//! let Setup::Ready(sim) = setup("my_test") else { return };
//! // ... drive the GPU code under test ...
//! assert!(sim.races().is_empty(), "{:?}", sim.races());
//! # }
//! ```

pub mod harness;

use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_void};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};

/// The names tried by [`Sim::load`], in order: the names the real loaders use.
pub const LIBRARY_NAMES: [&str; 3] = ["libcuda.so", "libcuda.so.1", "libamdhip64.so"];

/// The folder named by `GPUSIM_LIB_DIR`, if set: where the simulator (as `libcuda.so` etc., or
/// as `libgpu_sim.so`) was put.
pub fn lib_dir_hint() -> Option<PathBuf> {
    std::env::var_os("GPUSIM_LIB_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Why the simulator could not be loaded.
#[derive(Debug, Clone)]
pub struct LoadError {
    /// Every attempt: (name or path, error).
    pub attempts: Vec<(String, String)>,
    /// `LD_LIBRARY_PATH` at the time.
    pub ld_library_path: Option<String>,
    /// `GPUSIM_LIB_DIR` at the time.
    pub lib_dir: Option<PathBuf>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "gpu-sim is not loadable; tried:")?;
        for (name, error) in &self.attempts {
            writeln!(f, "  {name}: {error}")?;
        }
        writeln!(
            f,
            "LD_LIBRARY_PATH={}",
            self.ld_library_path.as_deref().unwrap_or("(unset)")
        )?;
        writeln!(
            f,
            "GPUSIM_LIB_DIR={}",
            self.lib_dir
                .as_deref()
                .map_or("(unset)".into(), |p| p.display().to_string())
        )?;
        write!(
            f,
            "Build it with `cargo build -p gpu-sim` and put a folder with symlinks libcuda.so, \
             libcuda.so.1, libamdhip64.so -> libgpu_sim.so on LD_LIBRARY_PATH (cargo xtask does)"
        )
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    /// The failed `attempts`, with the loader environment of this moment.
    fn new(attempts: Vec<(String, String)>) -> Self {
        LoadError {
            attempts,
            ld_library_path: std::env::var("LD_LIBRARY_PATH").ok(),
            lib_dir: lib_dir_hint(),
        }
    }
}

/// `CUDA_ERROR_ILLEGAL_ADDRESS` / `hipErrorIllegalAddress`: a kernel touched memory that is not
/// one live allocation.
pub const ILLEGAL_ADDRESS: i32 = 700;

/// A host function as the C API declares it.
pub type KernelFn = unsafe extern "C" fn(*mut c_void);

type LaunchFn = unsafe extern "C" fn(
    u64,
    *const c_char,
    *const u64,
    *const usize,
    usize,
    *const u64,
    *const usize,
    usize,
    Option<KernelFn>,
    *mut c_void,
    i32,
) -> i32;

/// The resolved `gpusim_*` functions.
#[derive(Debug, Clone, Copy)]
struct Api {
    version: extern "C" fn() -> u32,
    reset: extern "C" fn(),
    clear_reports: extern "C" fn(),
    set_device_count: extern "C" fn(u32),
    device_count: extern "C" fn() -> u32,
    set_memory_pools: extern "C" fn(i32),
    set_pending: extern "C" fn(i32),
    race_count: extern "C" fn() -> usize,
    race_report: unsafe extern "C" fn(usize, *mut c_char, usize) -> usize,
    error_count: extern "C" fn() -> usize,
    error_report: unsafe extern "C" fn(usize, *mut c_char, usize) -> usize,
    live_allocations: extern "C" fn() -> usize,
    live_events: extern "C" fn() -> usize,
    live_streams: extern "C" fn() -> usize,
    call_count: unsafe extern "C" fn(*const c_char) -> u64,
    blocking_count: extern "C" fn() -> u64,
    counters_json: unsafe extern "C" fn(*mut c_char, usize) -> usize,
    reset_counters: extern "C" fn(),
    kernel_read: extern "C" fn(u64, usize) -> i32,
    kernel_write: extern "C" fn(u64, usize) -> i32,
    host_view: extern "C" fn(u64, usize) -> *mut u8,
    host_read: extern "C" fn(u64, usize) -> i32,
    host_write: extern "C" fn(u64, usize) -> i32,
    launch_kernel: LaunchFn,
}

/// Which API's stream rules a test kernel follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Stream values are `CUstream`s (0/1 legacy, 2 per-thread).
    Cuda = 0,
    /// Stream values are `hipStream_t`s (0 null stream, 2 per-thread).
    Hip = 1,
}

/// The loaded simulator.
#[derive(Debug)]
pub struct Sim {
    library: Library,
    path: String,
    api: Api,
}

fn read_text(f: impl Fn(*mut c_char, usize) -> usize) -> String {
    let len = f(std::ptr::null_mut(), 0);
    let mut buf = vec![0u8; len + 1];
    let written = f(buf.as_mut_ptr().cast(), buf.len()).min(len);
    buf.truncate(written);
    String::from_utf8_lossy(&buf).into_owned()
}

impl Sim {
    /// Loads the simulator by the names the real loaders use, then (if `GPUSIM_LIB_DIR` is set)
    /// by path from that folder.
    ///
    /// Loading by path alone does not let cudarc find the same object later unless the folder is
    /// also on `LD_LIBRARY_PATH`; prefer [`harness::setup`] in tests.
    pub fn load() -> Result<Sim, LoadError> {
        let mut error = match Sim::load_by_name() {
            Ok(sim) => return Ok(sim),
            Err(e) => e,
        };
        if let Some(dir) = lib_dir_hint() {
            for file in ["libcuda.so", "libgpu_sim.so"] {
                let path = dir.join(file);
                match Sim::open(&path.to_string_lossy()) {
                    Ok(sim) => return Ok(sim),
                    Err(e) => error.attempts.push((path.display().to_string(), e)),
                }
            }
        }
        Err(error)
    }

    /// Loads the simulator by the names the real loaders use only.
    pub fn load_by_name() -> Result<Sim, LoadError> {
        let mut attempts = Vec::new();
        for name in LIBRARY_NAMES {
            match Sim::open(name) {
                Ok(sim) => return Ok(sim),
                Err(e) => attempts.push((name.to_string(), e)),
            }
        }
        Err(LoadError::new(attempts))
    }

    /// Loads the simulator from an explicit path.
    pub fn load_path(path: &Path) -> Result<Sim, LoadError> {
        Sim::open(&path.to_string_lossy())
            .map_err(|e| LoadError::new(vec![(path.display().to_string(), e)]))
    }

    fn open(name: &str) -> Result<Sim, String> {
        // SAFETY: loading gpu-sim runs no initialisers with preconditions; if `name` resolves to
        // another library (a real libcuda), its initialisers are the ones any CUDA program runs.
        let library = unsafe { Library::open(Some(name), RTLD_NOW | RTLD_GLOBAL) }
            .map_err(|e| e.to_string())?;
        macro_rules! sym {
            ($name:literal) => {{
                // SAFETY: the symbol is one of gpu-sim's `extern "C"` functions whose signature
                // is the field's type (both sides are in this repository).
                let s = unsafe { library.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{name} is not gpu-sim (missing {}: {e})", $name))?;
                *s
            }};
        }
        let api = Api {
            version: sym!("gpusim_version"),
            reset: sym!("gpusim_reset"),
            clear_reports: sym!("gpusim_clear_reports"),
            set_device_count: sym!("gpusim_set_device_count"),
            device_count: sym!("gpusim_device_count"),
            set_memory_pools: sym!("gpusim_set_memory_pools"),
            set_pending: sym!("gpusim_set_pending"),
            race_count: sym!("gpusim_race_count"),
            race_report: sym!("gpusim_race_report"),
            error_count: sym!("gpusim_error_count"),
            error_report: sym!("gpusim_error_report"),
            live_allocations: sym!("gpusim_live_allocations"),
            live_events: sym!("gpusim_live_events"),
            live_streams: sym!("gpusim_live_streams"),
            call_count: sym!("gpusim_call_count"),
            blocking_count: sym!("gpusim_blocking_count"),
            counters_json: sym!("gpusim_counters_json"),
            reset_counters: sym!("gpusim_reset_counters"),
            kernel_read: sym!("gpusim_kernel_read"),
            kernel_write: sym!("gpusim_kernel_write"),
            host_view: sym!("gpusim_host_view"),
            host_read: sym!("gpusim_host_read"),
            host_write: sym!("gpusim_host_write"),
            launch_kernel: sym!("gpusim_launch_kernel"),
        };
        Ok(Sim {
            library,
            path: name.to_string(),
            api,
        })
    }

    /// The name or path it was loaded by.
    pub fn loaded_as(&self) -> &str {
        &self.path
    }

    /// Resolves any exported symbol (e.g. `cuMemAlloc_v2`) as a function pointer of type `T`.
    ///
    /// # Safety
    /// `T` must be the exact function-pointer type of the symbol.
    pub unsafe fn raw_symbol<T: Copy>(&self, name: &str) -> Option<T> {
        // SAFETY: the caller guarantees `T` matches the symbol's type.
        unsafe { self.library.get::<T>(name) }.ok().map(|s| *s)
    }

    /// Inspection ABI version.
    pub fn version(&self) -> u32 {
        (self.api.version)()
    }

    /// A fresh simulator: forgets reports and counters, frees all memory, streams and events.
    pub fn reset(&self) {
        (self.api.reset)()
    }

    /// Forgets race and error reports only.
    pub fn clear_reports(&self) {
        (self.api.clear_reports)()
    }

    /// Race and use-after-free hazard reports.
    pub fn races(&self) -> Vec<String> {
        (0..(self.api.race_count)())
            .map(|i| {
                // SAFETY: `read_text` passes a buffer valid for the given capacity.
                read_text(|buf, cap| unsafe { (self.api.race_report)(i, buf, cap) })
            })
            .collect()
    }

    /// Error reports (invalid addresses, use-after-free accesses, invalid handles).
    pub fn errors(&self) -> Vec<String> {
        (0..(self.api.error_count)())
            .map(|i| {
                // SAFETY: `read_text` passes a buffer valid for the given capacity.
                read_text(|buf, cap| unsafe { (self.api.error_report)(i, buf, cap) })
            })
            .collect()
    }

    /// Calls of API function `name` since the last reset.
    pub fn call_count(&self, name: &str) -> u64 {
        let Ok(name) = CString::new(name) else {
            return 0;
        };
        // SAFETY: a valid NUL-terminated string.
        unsafe { (self.api.call_count)(name.as_ptr()) }
    }

    /// Calls that blocked the host since the last reset.
    pub fn blocking_count(&self) -> u64 {
        (self.api.blocking_count)()
    }

    /// All call counters by name.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        // SAFETY: `read_text` passes a buffer valid for the given capacity.
        let json = read_text(|buf, cap| unsafe { (self.api.counters_json)(buf, cap) });
        parse_counters(&json)
    }

    /// Zeroes the call counters and the blocking counter.
    pub fn reset_counters(&self) {
        (self.api.reset_counters)()
    }

    /// Sets the number of simulated devices.
    pub fn set_device_count(&self, n: u32) {
        (self.api.set_device_count)(n)
    }

    /// The number of simulated devices.
    pub fn device_count(&self) -> u32 {
        (self.api.device_count)()
    }

    /// Whether `CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED` answers 1.
    pub fn set_memory_pools(&self, supported: bool) {
        (self.api.set_memory_pools)(i32::from(supported))
    }

    /// Keeps work pending until the host synchronises with it: stream and event queries then
    /// answer "not ready" for work the host has not waited for (until [`Sim::reset`]).
    pub fn set_pending(&self, on: bool) {
        (self.api.set_pending)(i32::from(on))
    }

    /// Live allocations.
    pub fn live_allocations(&self) -> usize {
        (self.api.live_allocations)()
    }

    /// Live events.
    pub fn live_events(&self) -> usize {
        (self.api.live_events)()
    }

    /// Live created streams.
    pub fn live_streams(&self) -> usize {
        (self.api.live_streams)()
    }

    /// Inside a kernel: records a read of `[ptr, ptr+len)`.
    pub fn kernel_read(&self, ptr: u64, len: usize) -> Result<(), i32> {
        status((self.api.kernel_read)(ptr, len))
    }

    /// Inside a kernel: records a write of `[ptr, ptr+len)`.
    pub fn kernel_write(&self, ptr: u64, len: usize) -> Result<(), i32> {
        status((self.api.kernel_write)(ptr, len))
    }

    /// The host bytes behind simulator memory `[ptr, ptr+len)` (no access recorded).
    pub fn host_view(&self, ptr: u64, len: usize) -> Option<NonNull<u8>> {
        NonNull::new((self.api.host_view)(ptr, len))
    }

    /// Records a host read of `[ptr, ptr+len)` now.
    pub fn host_read(&self, ptr: u64, len: usize) -> Result<(), i32> {
        status((self.api.host_read)(ptr, len))
    }

    /// Records a host write of `[ptr, ptr+len)` now.
    pub fn host_write(&self, ptr: u64, len: usize) -> Result<(), i32> {
        status((self.api.host_write)(ptr, len))
    }

    /// Launches a test kernel on CUDA stream `stream` (see [`Sim::launch_kernel_on`]).
    pub fn launch_kernel(
        &self,
        stream: u64,
        name: &str,
        reads: &[(u64, usize)],
        writes: &[(u64, usize)],
        f: impl FnOnce(&KernelCtx<'_>),
    ) -> Result<(), i32> {
        self.launch_kernel_on(Backend::Cuda, stream, name, reads, writes, f)
    }

    /// Launches a test kernel: the declared `reads` and `writes` are checked and recorded as
    /// one operation on `stream`, then `f` runs immediately as that operation (it may record
    /// more accesses and touch the bytes through [`KernelCtx`]). A panic in `f` is resumed here.
    pub fn launch_kernel_on<F: FnOnce(&KernelCtx<'_>)>(
        &self,
        backend: Backend,
        stream: u64,
        name: &str,
        reads: &[(u64, usize)],
        writes: &[(u64, usize)],
        f: F,
    ) -> Result<(), i32> {
        struct Payload<'a, F> {
            f: Option<F>,
            ctx: KernelCtx<'a>,
            panic: Option<Box<dyn std::any::Any + Send>>,
        }
        unsafe extern "C" fn trampoline<F: FnOnce(&KernelCtx<'_>)>(user: *mut c_void) {
            // SAFETY: `user` is the `Payload<F>` that `launch_kernel_on` passed, alive and not
            // otherwise borrowed for the duration of the call.
            let payload = unsafe { &mut *user.cast::<Payload<'_, F>>() };
            if let Some(f) = payload.f.take() {
                let ctx = &payload.ctx;
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(ctx))) {
                    payload.panic = Some(p);
                }
            }
        }
        let name = CString::new(name.replace('\0', " ")).unwrap_or_default();
        let (read_ptrs, read_lens): (Vec<u64>, Vec<usize>) = reads.iter().copied().unzip();
        let (write_ptrs, write_lens): (Vec<u64>, Vec<usize>) = writes.iter().copied().unzip();
        let mut payload = Payload {
            f: Some(f),
            ctx: KernelCtx { sim: self },
            panic: None,
        };
        // SAFETY: the arrays hold the given number of elements; the trampoline matches the
        // payload type; the payload outlives the call (kernels run synchronously).
        let rc = unsafe {
            (self.api.launch_kernel)(
                stream,
                name.as_ptr(),
                read_ptrs.as_ptr(),
                read_lens.as_ptr(),
                read_ptrs.len(),
                write_ptrs.as_ptr(),
                write_lens.as_ptr(),
                write_ptrs.len(),
                Some(trampoline::<F>),
                (&raw mut payload).cast(),
                backend as i32,
            )
        };
        if let Some(p) = payload.panic.take() {
            resume_unwind(p);
        }
        status(rc)
    }
}

/// Test kernels and checks every GPU suite needs, written once.
impl Sim {
    /// Launches a kernel named `produce` on `stream` that writes `value` over `[ptr, ptr+len)`
    /// (declared as its write, so an unordered use of those bytes races with `produce#...`).
    pub fn produce(
        &self,
        backend: Backend,
        stream: u64,
        ptr: u64,
        len: usize,
        value: u8,
    ) -> Result<(), i32> {
        let mut stored = true;
        self.launch_kernel_on(backend, stream, "produce", &[], &[(ptr, len)], |k| {
            stored = k.store(ptr, &vec![value; len]);
        })?;
        if stored { Ok(()) } else { Err(ILLEGAL_ADDRESS) }
    }

    /// Launches a kernel named `consume` on `stream` that reads `[ptr, ptr+len)` (declared as
    /// its read) and returns the bytes it saw.
    pub fn consume(
        &self,
        backend: Backend,
        stream: u64,
        ptr: u64,
        len: usize,
    ) -> Result<Vec<u8>, i32> {
        let mut seen = None;
        self.launch_kernel_on(backend, stream, "consume", &[(ptr, len)], &[], |k| {
            seen = k.load(ptr, len);
        })?;
        seen.ok_or(ILLEGAL_ADDRESS)
    }

    /// Panics, listing them, if the simulator has any race or error report.
    #[track_caller]
    pub fn assert_clean(&self) {
        let (races, errors) = (self.races(), self.errors());
        assert!(races.is_empty(), "races: {races:#?}");
        assert!(errors.is_empty(), "errors: {errors:#?}");
    }
}

fn status(code: i32) -> Result<(), i32> {
    if code == 0 { Ok(()) } else { Err(code) }
}

/// What a test kernel can do while it runs.
#[derive(Debug)]
pub struct KernelCtx<'a> {
    sim: &'a Sim,
}

impl KernelCtx<'_> {
    /// Records a read of `[ptr, ptr+len)` by this kernel.
    pub fn read(&self, ptr: u64, len: usize) -> Result<(), i32> {
        self.sim.kernel_read(ptr, len)
    }

    /// Records a write of `[ptr, ptr+len)` by this kernel.
    pub fn write(&self, ptr: u64, len: usize) -> Result<(), i32> {
        self.sim.kernel_write(ptr, len)
    }

    /// Reads `len` bytes at `ptr` (recorded as a read); `None` if not valid memory.
    pub fn load(&self, ptr: u64, len: usize) -> Option<Vec<u8>> {
        self.read(ptr, len).ok()?;
        let view = self.sim.host_view(ptr, len)?;
        // SAFETY: the simulator vouches that `len` bytes at `view` belong to one live
        // allocation; the copy ends before any other call can free it (same thread).
        Some(unsafe { std::slice::from_raw_parts(view.as_ptr(), len) }.to_vec())
    }

    /// Writes `bytes` at `ptr` (recorded as a write); `false` if not valid memory.
    pub fn store(&self, ptr: u64, bytes: &[u8]) -> bool {
        if self.write(ptr, bytes.len()).is_err() {
            return false;
        }
        let Some(view) = self.sim.host_view(ptr, bytes.len()) else {
            return false;
        };
        // SAFETY: as in `load`, `bytes.len()` bytes at `view` are live simulator memory, and
        // `bytes` is a separate Rust borrow, so the ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), view.as_ptr(), bytes.len()) };
        true
    }

    /// The raw host address behind `[ptr, ptr+len)` (no access recorded).
    pub fn host_view(&self, ptr: u64, len: usize) -> Option<NonNull<u8>> {
        self.sim.host_view(ptr, len)
    }
}

/// Parses `{"name": 1, ...}` as written by `gpusim_counters_json` (names are identifiers).
fn parse_counters(json: &str) -> BTreeMap<String, u64> {
    let body = json.trim().trim_start_matches('{').trim_end_matches('}');
    body.split(',')
        .filter_map(|entry| {
            let (name, value) = entry.split_once(':')?;
            let name = name.trim().trim_matches('"').to_string();
            let value = value.trim().parse().ok()?;
            Some((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counters() {
        let cases: &[(&str, &[(&str, u64)])] = &[
            ("{}", &[]),
            (
                "{\"cuEventRecord\": 3, \"cuInit\": 1}",
                &[("cuEventRecord", 3), ("cuInit", 1)],
            ),
        ];
        for (json, expected) in cases {
            let parsed = parse_counters(json);
            let expected: BTreeMap<String, u64> =
                expected.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            assert_eq!(parsed, expected, "{json}");
        }
    }

    #[test]
    fn load_error_names_the_search() {
        let e = LoadError {
            attempts: vec![("libcuda.so".into(), "not found".into())],
            ld_library_path: None,
            lib_dir: None,
        };
        let text = e.to_string();
        assert!(text.contains("libcuda.so: not found") && text.contains("LD_LIBRARY_PATH"));
    }
}
