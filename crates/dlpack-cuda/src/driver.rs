//! The only module that calls the CUDA driver (through cudarc's `sys` and
//! `result` layers): presence of the driver, primary contexts, the event
//! pool, pointer attributes and the one blocking call (the host copy).
//!
//! Handles (`CUcontext`, `CUevent`, `CUstream`) are kept as integers in the
//! caches: they are opaque to Rust and never dereferenced here.
//!
//! Invariant: every function checks [`is_driver_present`] (through
//! [`ensure_init`]) before its first driver call, because cudarc's lazy
//! loader panics when `libcuda.so` is missing.

use std::mem::MaybeUninit;
use std::sync::{Mutex, MutexGuard, OnceLock};

use cudarc::driver::result::{self, DriverError};
use cudarc::driver::sys;

use crate::error::Error;

/// Whether `libcuda.so` (or a stand-in such as gpu-sim) can be loaded. The
/// answer is computed once and cached for the life of the process.
pub fn is_driver_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: `is_culib_present` only tries to open the library by its usual
    // names (dlopen/dlclose); it calls no driver function.
    *PRESENT.get_or_init(|| unsafe { sys::is_culib_present() })
}

/// Loads the driver and calls `cuInit` once (a failed `cuInit`, e.g. no
/// device, is retried on the next call and reported each time).
pub(crate) fn ensure_init() -> Result<(), Error> {
    static INIT: OnceLock<()> = OnceLock::new();
    if INIT.get().is_some() {
        return Ok(());
    }
    if !is_driver_present() {
        return Err(Error::DriverNotFound);
    }
    result::init().map_err(|e| Error::driver("cuInit", e))?;
    let _ = INIT.set(());
    Ok(())
}

/// The stream handle the driver takes for a raw value (0x1 legacy, 0x2
/// per-thread, or a `CUstream`).
pub(crate) fn stream_handle(raw: u64) -> sys::CUstream {
    std::ptr::without_provenance_mut(raw as usize)
}

/// The raw value of a driver stream handle.
pub(crate) fn stream_raw(stream: sys::CUstream) -> u64 {
    stream as usize as u64
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data are plain caches: a panic elsewhere cannot leave them
    // half-updated in a way that matters, so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The primary context of a device, retained once and kept for the life of
/// the process (as the CUDA runtime does).
pub(crate) fn primary_context(ordinal: i32) -> Result<sys::CUcontext, Error> {
    static PRIMARY: Mutex<Vec<(i32, usize)>> = Mutex::new(Vec::new());
    ensure_init()?;
    let mut known = lock(&PRIMARY);
    if let Some(&(_, ctx)) = known.iter().find(|(o, _)| *o == ordinal) {
        return Ok(std::ptr::without_provenance_mut(ctx));
    }
    let device = result::device::get(ordinal).map_err(|e| Error::driver("cuDeviceGet", e))?;
    // SAFETY: `device` came from cuDeviceGet; the retained reference is never
    // released (the context lives as long as the process).
    let ctx = unsafe { result::primary_ctx::retain(device) }
        .map_err(|e| Error::driver("cuDevicePrimaryCtxRetain", e))?;
    known.push((ordinal, ctx as usize));
    Ok(ctx)
}

/// Makes a context current on this thread for the guard's lifetime, then
/// restores the previous one (so the caller's current device is unchanged).
pub(crate) struct Bound {
    previous: Option<sys::CUcontext>,
}

pub(crate) fn bind(ctx: sys::CUcontext) -> Result<Bound, Error> {
    let current = result::ctx::get_current().map_err(|e| Error::driver("cuCtxGetCurrent", e))?;
    if current == Some(ctx) {
        return Ok(Bound { previous: None });
    }
    // SAFETY: `ctx` is a live context (a retained primary context, or the
    // context of a live cudarc object).
    unsafe { result::ctx::set_current(ctx) }.map_err(|e| Error::driver("cuCtxSetCurrent", e))?;
    Ok(Bound {
        previous: Some(current.unwrap_or(std::ptr::null_mut())),
    })
}

impl Drop for Bound {
    fn drop(&mut self) {
        if let Some(previous) = self.previous {
            // SAFETY: `previous` was current a moment ago (or NULL, which
            // unbinds); restoring it cannot invalidate anything we hold.
            let _ = unsafe { result::ctx::set_current(previous) };
        }
    }
}

/// Idle events of one context, all created with `CU_EVENT_DISABLE_TIMING`.
struct Pool {
    ctx: usize,
    idle: Vec<usize>,
    created: u64,
}

static POOLS: Mutex<Vec<Pool>> = Mutex::new(Vec::new());

/// What an event pool holds: idle events and how many were ever created.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Events waiting in the pool.
    pub idle: usize,
    /// Events this pool ever created (`cuEventCreate` calls).
    pub created: u64,
}

pub(crate) fn pool_stats(ctx: sys::CUcontext) -> PoolStats {
    lock(&POOLS)
        .iter()
        .find(|p| p.ctx == ctx as usize)
        .map_or_else(PoolStats::default, |p| PoolStats {
            idle: p.idle.len(),
            created: p.created,
        })
}

/// An event of `ctx`'s pool (created if the pool is empty). `ctx` must be
/// current.
fn take_event(ctx: sys::CUcontext) -> Result<sys::CUevent, Error> {
    {
        let mut pools = lock(&POOLS);
        let pool = match pools.iter().position(|p| p.ctx == ctx as usize) {
            Some(i) => &mut pools[i],
            None => {
                pools.push(Pool {
                    ctx: ctx as usize,
                    idle: Vec::new(),
                    created: 0,
                });
                pools.last_mut().expect("just pushed")
            }
        };
        if let Some(event) = pool.idle.pop() {
            return Ok(std::ptr::without_provenance_mut(event));
        }
        pool.created += 1;
    }
    result::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING)
        .map_err(|e| Error::driver("cuEventCreate", e))
}

fn give_back(ctx: sys::CUcontext, event: sys::CUevent) {
    let mut pools = lock(&POOLS);
    if let Some(pool) = pools.iter_mut().find(|p| p.ctx == ctx as usize) {
        pool.idle.push(event as usize);
    }
}

/// Makes `consumer` wait for the work submitted so far on `producer`, with
/// one pooled event: `cuEventRecord` + `cuStreamWaitEvent`, no host wait.
/// `ctx` must be current and own both streams (or they are the special
/// handles 0x1/0x2).
pub(crate) fn order_in_context(
    ctx: sys::CUcontext,
    producer: sys::CUstream,
    consumer: sys::CUstream,
) -> Result<(), Error> {
    let event = take_event(ctx)?;
    // SAFETY: `event` is a live event of the current context (from the pool,
    // which never destroys events it hands out); the streams are live by the
    // caller's contract.
    let done = unsafe {
        result::event::record(event, producer)
            .map_err(|e| Error::driver("cuEventRecord", e))
            .and_then(|()| {
                result::stream::wait_event(
                    consumer,
                    event,
                    sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
                )
                .map_err(|e| Error::driver("cuStreamWaitEvent", e))
            })
    };
    match done {
        // The wait is enqueued: re-recording the event later does not affect
        // it, so the event can serve the next exchange at once.
        Ok(()) => give_back(ctx, event),
        // SAFETY: the event is ours alone (taken from the pool); destroying
        // it keeps a possibly broken event out of the pool.
        Err(_) => unsafe {
            let _ = result::event::destroy(event);
        },
    }
    done
}

/// What the driver says about an address.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PointerInfo {
    /// The ordinal of the device that owns the memory.
    pub device_ordinal: i32,
    /// The kind of memory.
    pub memory: MemoryKind,
}

pub use dlpack_core::device::MemoryKind;

fn attribute<T: Copy>(ptr: u64, attr: sys::CUpointer_attribute) -> Result<T, DriverError> {
    let mut value = MaybeUninit::<T>::uninit();
    // SAFETY: `value` has room for the attribute's type (the caller names
    // the type the driver documents for `attr`); the driver only reads `ptr`
    // as an address.
    unsafe {
        sys::cuPointerGetAttribute(value.as_mut_ptr().cast(), attr, ptr).result()?;
        Ok(value.assume_init())
    }
}

/// Asks the driver which device owns `ptr` and what kind of memory it is
/// (`CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL`, `MEMORY_TYPE`, `IS_MANAGED`).
pub fn pointer_info(ptr: u64) -> Result<PointerInfo, Error> {
    use sys::CUpointer_attribute as A;
    ensure_init()?;
    let unknown = |source| Error::UnknownPointer { ptr, source };
    let device_ordinal: i32 =
        attribute(ptr, A::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL).map_err(unknown)?;
    let memory_type: u32 = attribute(ptr, A::CU_POINTER_ATTRIBUTE_MEMORY_TYPE).map_err(unknown)?;
    let is_managed: u32 = attribute(ptr, A::CU_POINTER_ATTRIBUTE_IS_MANAGED).map_err(unknown)?;
    let memory = match (is_managed, memory_type) {
        (m, _) if m != 0 => MemoryKind::Managed,
        (_, 1) => MemoryKind::Host,
        _ => MemoryKind::Device,
    };
    Ok(PointerInfo {
        device_ordinal,
        memory,
    })
}

/// Copies `dst.len()` bytes from device address `src` to `dst` on `stream`
/// and waits for it: the one host-blocking operation of this crate. The
/// right context must be current.
///
/// # Safety
///
/// `src..src + dst.len()` is readable memory known to the driver, and the
/// stream is live.
pub(crate) unsafe fn copy_to_host_blocking(
    dst: &mut [u8],
    src: u64,
    stream: sys::CUstream,
) -> Result<(), Error> {
    if dst.is_empty() {
        return Ok(());
    }
    // SAFETY: `dst` is writable for its length; the rest is the caller's
    // contract.
    unsafe {
        sys::cuMemcpyDtoHAsync_v2(dst.as_mut_ptr().cast(), src, dst.len(), stream)
            .result()
            .map_err(|e| Error::driver("cuMemcpyDtoHAsync_v2", e))?;
        // The host is the consumer: it must wait for the copy before `dst`
        // is read (and before `dst` may be freed).
        result::stream::synchronize(stream).map_err(|e| Error::driver("cuStreamSynchronize", e))
    }
}

/// Forgets every pooled event *without destroying it*: for use after the
/// events were invalidated behind the pool's back (a device reset such as
/// `cuDevicePrimaryCtxReset`, or the gpu-sim simulator's reset between
/// tests). The pools refill on the next exchange.
pub fn forget_pooled_events() {
    lock(&POOLS).clear();
}
