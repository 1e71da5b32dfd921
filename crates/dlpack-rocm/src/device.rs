//! Checked HIP calls: the current device, the event pool, stream ordering,
//! pointer attributes, and the one blocking call (the host copy). All
//! unsafe calls into the runtime table live here and in [`crate::buffer`].
//!
//! Handles (`hipStream_t`, `hipEvent_t`) are kept as integers in the caches:
//! they are opaque and never dereferenced here.

use std::ffi::c_int;
use std::sync::{Mutex, MutexGuard};

use crate::error::Error;
use crate::hip::{self, EVENT_DISABLE_TIMING, MEMCPY_DEVICE_TO_HOST, PointerAttribute, Ptr};

pub(crate) fn handle(raw: u64) -> Ptr {
    std::ptr::without_provenance_mut(raw as usize)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain caches: poisoning carries no meaning here.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes `device` current on this thread for the guard's lifetime, then
/// restores the previous device.
pub(crate) struct OnDevice {
    previous: Option<c_int>,
}

pub(crate) fn on_device(device: c_int) -> Result<OnDevice, Error> {
    let api = &hip::runtime()?.api;
    let mut current = -1;
    // SAFETY: valid out-pointer.
    hip::check("hipGetDevice", unsafe { (api.hipGetDevice)(&mut current) })?;
    if current == device {
        return Ok(OnDevice { previous: None });
    }
    // SAFETY: plain value argument.
    hip::check("hipSetDevice", unsafe { (api.hipSetDevice)(device) })?;
    Ok(OnDevice {
        previous: Some(current),
    })
}

impl Drop for OnDevice {
    fn drop(&mut self) {
        if let (Some(previous), Ok(rt)) = (self.previous, hip::runtime()) {
            // SAFETY: plain value argument; `previous` was current before.
            let _ = unsafe { (rt.api.hipSetDevice)(previous) };
        }
    }
}

struct Pool {
    device: c_int,
    idle: Vec<usize>,
    created: u64,
}

static POOLS: Mutex<Vec<Pool>> = Mutex::new(Vec::new());

/// What an event pool holds: idle events and how many were ever created.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Events waiting in the pool.
    pub idle: usize,
    /// Events this pool ever created (`hipEventCreateWithFlags` calls).
    pub created: u64,
}

pub(crate) fn pool_stats(device: c_int) -> PoolStats {
    lock(&POOLS)
        .iter()
        .find(|p| p.device == device)
        .map_or_else(PoolStats::default, |p| PoolStats {
            idle: p.idle.len(),
            created: p.created,
        })
}

fn take_event(device: c_int) -> Result<Ptr, Error> {
    {
        let mut pools = lock(&POOLS);
        let i = match pools.iter().position(|p| p.device == device) {
            Some(i) => i,
            None => {
                pools.push(Pool {
                    device,
                    idle: Vec::new(),
                    created: 0,
                });
                pools.len() - 1
            }
        };
        if let Some(event) = pools[i].idle.pop() {
            return Ok(handle(event as u64));
        }
        pools[i].created += 1;
    }
    let api = &hip::runtime()?.api;
    let mut event = std::ptr::null_mut();
    // SAFETY: valid out-pointer; `device` is current (the caller's guard).
    hip::check("hipEventCreateWithFlags", unsafe {
        (api.hipEventCreateWithFlags)(&mut event, EVENT_DISABLE_TIMING)
    })?;
    Ok(event)
}

fn give_back(device: c_int, event: Ptr) {
    if let Some(pool) = lock(&POOLS).iter_mut().find(|p| p.device == device) {
        pool.idle.push(event as usize);
    }
}

/// Makes `consumer` wait for the work submitted so far on `producer` (both
/// streams of `device`, which must be current): one `hipEventRecord` and one
/// `hipStreamWaitEvent` with a pooled event; the host does not wait.
pub(crate) fn order_on_device(device: c_int, producer: u64, consumer: u64) -> Result<(), Error> {
    let api = &hip::runtime()?.api;
    let event = take_event(device)?;
    // SAFETY: `event` is a live event of this device (the pool never
    // destroys events it hands out); the streams are live by the caller's
    // contract (0 is the null stream).
    let done = unsafe {
        hip::check(
            "hipEventRecord",
            (api.hipEventRecord)(event, handle(producer)),
        )
        .and_then(|()| {
            hip::check(
                "hipStreamWaitEvent",
                (api.hipStreamWaitEvent)(handle(consumer), event, 0),
            )
        })
    };
    match done {
        // The wait is enqueued; re-recording the event later does not
        // change it, so the event serves the next exchange at once.
        Ok(()) => give_back(device, event),
        // SAFETY: the event is ours alone; keep a broken one out of the pool.
        Err(_) => unsafe {
            let _ = (api.hipEventDestroy)(event);
        },
    }
    done
}

/// What the runtime says about an address.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PointerInfo {
    /// The ordinal of the device that owns the memory.
    pub device: i32,
    /// The kind of memory.
    pub memory: MemoryKind,
}

pub use dlpack_core::device::MemoryKind;

/// The memory kind for a `hipMemoryType` value, in the numbering of the
/// runtime's major version (ROCm 6: Unregistered 0, Host 1, Device 2,
/// Managed 3; ROCm 5: Host 0, Device 1, Array 2, Unified 3, Managed 4).
pub(crate) fn memory_kind(
    runtime_version: c_int,
    memory_type: u32,
    is_managed: c_int,
) -> Option<MemoryKind> {
    if is_managed != 0 {
        return Some(MemoryKind::Managed);
    }
    let rocm6 = runtime_version >= 60_000_000;
    match (rocm6, memory_type) {
        (true, 1) | (false, 0) => Some(MemoryKind::Host),
        (true, 2) | (false, 1 | 2) => Some(MemoryKind::Device),
        (true, 3) | (false, 3 | 4) => Some(MemoryKind::Managed),
        _ => None,
    }
}

/// Asks the runtime which device owns `ptr` (`hipPointerGetAttributes`).
pub(crate) fn pointer_info(ptr: u64) -> Result<PointerInfo, Error> {
    let rt = hip::runtime()?;
    let mut attr = PointerAttribute {
        memory_type: 0,
        device: -1,
        device_pointer: std::ptr::null_mut(),
        host_pointer: std::ptr::null_mut(),
        is_managed: 0,
        allocation_flags: 0,
    };
    // SAFETY: `attr` is a writable hipPointerAttribute_t; the runtime only
    // reads `ptr` as an address.
    let code = unsafe { (rt.api.hipPointerGetAttributes)(&mut attr, handle(ptr)) };
    if code != 0 {
        return Err(Error::UnknownPointer { ptr, code });
    }
    match memory_kind(rt.version, attr.memory_type, attr.is_managed) {
        Some(memory) if attr.device >= 0 => Ok(PointerInfo {
            device: attr.device,
            memory,
        }),
        // Unregistered host memory: not HIP memory.
        _ => Err(Error::UnknownPointer { ptr, code: 1 }),
    }
}

/// Copies `dst.len()` bytes at `src` to `dst` on `stream`, then waits: the
/// one host-blocking operation. The right device must be current.
///
/// # Safety
///
/// `src..src + dst.len()` is live HIP memory, and the stream is live.
pub(crate) unsafe fn copy_to_host_blocking(
    dst: &mut [u8],
    src: u64,
    stream: u64,
) -> Result<(), Error> {
    if dst.is_empty() {
        return Ok(());
    }
    let api = &hip::runtime()?.api;
    // SAFETY: `dst` is writable for its length; the rest is the caller's
    // contract.
    unsafe {
        hip::check(
            "hipMemcpyAsync",
            (api.hipMemcpyAsync)(
                dst.as_mut_ptr().cast(),
                handle(src),
                dst.len(),
                MEMCPY_DEVICE_TO_HOST,
                handle(stream),
            ),
        )?;
        hip::check(
            "hipStreamSynchronize",
            (api.hipStreamSynchronize)(handle(stream)),
        )
    }
}

/// Forgets every pooled event *without destroying it*: for use after the
/// events were invalidated behind the pool's back (`hipDeviceReset`, or the
/// gpu-sim simulator's reset between tests).
pub fn forget_pooled_events() {
    lock(&POOLS).clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_type_numbering_per_major_version() {
        #[rustfmt::skip]
        let rows: &[(c_int, u32, c_int, Option<MemoryKind>)] = &[
            // version,    type, managed, kind
            (60_241_134,   0,    0,       None),
            (60_241_134,   1,    0,       Some(MemoryKind::Host)),
            (60_241_134,   2,    0,       Some(MemoryKind::Device)),
            (60_241_134,   3,    1,       Some(MemoryKind::Managed)),
            (50_221_153,   0,    0,       Some(MemoryKind::Host)),
            (50_221_153,   1,    0,       Some(MemoryKind::Device)),
            (50_221_153,   4,    1,       Some(MemoryKind::Managed)),
            (50_221_153,   9,    0,       None),
        ];
        for &(version, ty, managed, kind) in rows {
            assert_eq!(
                memory_kind(version, ty, managed),
                kind,
                "{version} {ty} {managed}"
            );
        }
    }
}
