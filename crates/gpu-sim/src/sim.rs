//! The simulator's global state and the operations both APIs are built from.
//!
//! One `Mutex<Sim>` holds everything; every exported function locks it for the duration of its
//! bookkeeping and never while user code (a host-function kernel) runs. A poisoned mutex is
//! recovered with `into_inner`: a panic is already turned into an error code at the boundary,
//! and the state stays usable.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::memory::{
    Access, AccessKind, AddressError, AllocError, MemKind, MemoryTable, OpInfo, OpRef,
};
use crate::stream::{Context, OpClock, StreamKey, Timelines, context_device, op_name};

/// Errors, numbered as both `CUresult` and `hipError_t` number them (they agree on these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimError {
    /// `CUDA_ERROR_INVALID_VALUE` / `hipErrorInvalidValue`.
    InvalidValue = 1,
    /// `CUDA_ERROR_OUT_OF_MEMORY` / `hipErrorOutOfMemory`.
    OutOfMemory = 2,
    /// `CUDA_ERROR_NOT_INITIALIZED` / `hipErrorNotInitialized`.
    NotInitialized = 3,
    /// `CUDA_ERROR_NO_DEVICE` / `hipErrorNoDevice`.
    NoDevice = 100,
    /// `CUDA_ERROR_INVALID_DEVICE` / `hipErrorInvalidDevice`.
    InvalidDevice = 101,
    /// `CUDA_ERROR_INVALID_CONTEXT` / `hipErrorInvalidContext`.
    InvalidContext = 201,
    /// `CUDA_ERROR_INVALID_HANDLE` / `hipErrorInvalidHandle`.
    InvalidHandle = 400,
    /// `CUDA_ERROR_NOT_READY` / `hipErrorNotReady`.
    NotReady = 600,
    /// `CUDA_ERROR_ILLEGAL_ADDRESS` / `hipErrorIllegalAddress`.
    IllegalAddress = 700,
    /// `CUDA_ERROR_UNKNOWN` / `hipErrorUnknown` (also: a panic inside the simulator).
    Unknown = 999,
}

impl From<AllocError> for SimError {
    /// A zero-size request is `InvalidValue` (both APIs), exhaustion `OutOfMemory`.
    fn from(e: AllocError) -> Self {
        match e {
            AllocError::ZeroSize => SimError::InvalidValue,
            AllocError::OutOfMemory => SimError::OutOfMemory,
        }
    }
}

impl SimError {
    /// The numeric code.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// Result of simulator operations.
pub type SimResult<T> = Result<T, SimError>;

/// Which API a call came through (decides how stream handle values and "current device" are
/// interpreted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// CUDA driver API: current device = the current context's device.
    Cuda,
    /// HIP runtime: current device = `hipSetDevice`'s value (default 0).
    Hip,
}

/// Default device count when `GPUSIM_DEVICE_COUNT` is not set.
pub const DEFAULT_DEVICE_COUNT: u32 = 2;
/// Most reports kept of each kind; later ones are counted but dropped.
const REPORT_LIMIT: usize = 10_000;
/// Base of fake context handles: context `c` (the primary context of device `d` is `d`) is
/// `CONTEXT_HANDLE_BASE + (c+1)*0x100`.
pub const CONTEXT_HANDLE_BASE: u64 = 0x0000_0C70_0000_0000;
const STREAM_HANDLE_BASE: u64 = 0x0000_5700_0000_0000;
const EVENT_HANDLE_BASE: u64 = 0x0000_E700_0000_0000;
/// `CU_STREAM_LEGACY`.
pub const STREAM_LEGACY: u64 = 1;
/// `CU_STREAM_PER_THREAD` / `hipStreamPerThread`.
pub const STREAM_PER_THREAD: u64 = 2;

/// Handle values are never reused, not even across `gpusim_reset`, so a stale handle is
/// always detected.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);
static NEXT_THREAD_TOKEN: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD_TOKEN: u64 = NEXT_THREAD_TOKEN.fetch_add(1, Ordering::Relaxed);
    /// The CUDA context stack of this thread (context ids, see [`Context`]).
    static CONTEXT_STACK: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// HIP's current device of this thread.
    static HIP_DEVICE: Cell<u32> = const { Cell::new(0) };
    /// Kernels (host functions) running on this thread, innermost last.
    static KERNELS: RefCell<Vec<KernelFrame>> = const { RefCell::new(Vec::new()) };
}

/// An operation in flight: its description and its place in the order.
#[derive(Debug, Clone)]
pub struct Op {
    /// Id and name.
    pub info: OpRef,
    /// Epoch and clock.
    pub at: OpClock,
}

/// A running host-function kernel, so `gpusim_kernel_*` can attribute accesses to it.
#[derive(Debug, Clone)]
pub struct KernelFrame {
    /// The kernel's operation.
    pub op: Op,
    /// The generation of the simulator it was launched in (stale after a reset).
    pub generation: u64,
}

/// The handle of context `context` (the primary context of device `d` is `d`).
pub fn context_handle(context: Context) -> u64 {
    CONTEXT_HANDLE_BASE + (u64::from(context) + 1) * 0x100
}

/// The context id of a handle (not checked against live contexts).
pub fn context_id(handle: u64) -> Option<Context> {
    let rel = handle.checked_sub(CONTEXT_HANDLE_BASE)?;
    if rel % 0x100 != 0 || rel == 0 {
        return None;
    }
    u32::try_from(rel / 0x100 - 1).ok()
}

/// A fresh handle value for a stream.
pub fn new_stream_handle() -> u64 {
    STREAM_HANDLE_BASE + NEXT_HANDLE.fetch_add(1, Ordering::Relaxed) * 0x10
}

/// A fresh handle value for an event.
pub fn new_event_handle() -> u64 {
    EVENT_HANDLE_BASE + NEXT_HANDLE.fetch_add(1, Ordering::Relaxed) * 0x10
}

/// The calling thread's token.
pub fn thread_token() -> u64 {
    THREAD_TOKEN.with(|t| *t)
}

/// Runs `f` on the calling thread's CUDA context stack.
pub fn with_context_stack<R>(f: impl FnOnce(&mut Vec<u32>) -> R) -> R {
    CONTEXT_STACK.with(|s| f(&mut s.borrow_mut()))
}

/// HIP's current device of the calling thread.
pub fn hip_device() -> u32 {
    HIP_DEVICE.with(Cell::get)
}

/// Sets HIP's current device of the calling thread.
pub fn set_hip_device(device: u32) {
    HIP_DEVICE.with(|d| d.set(device));
}

/// The innermost kernel running on this thread.
pub fn current_kernel() -> Option<KernelFrame> {
    KERNELS.with(|k| k.borrow().last().cloned())
}

/// Runs `f` with `frame` as the current kernel of this thread.
pub fn with_kernel<R>(frame: KernelFrame, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            KERNELS.with(|k| k.borrow_mut().pop());
        }
    }
    KERNELS.with(|k| k.borrow_mut().push(frame));
    let _pop = Pop;
    f()
}

/// What a memset writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// `n` bytes of this value (`cuMemsetD8`, `hipMemset`).
    Bytes(u8),
    /// `n` 32-bit words of this value (`cuMemsetD32`).
    Words(u32),
}

/// How the caller names one side of a copy.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    /// A device address (must be inside a live allocation; pinned and managed count, as with
    /// unified addressing).
    Device(u64),
    /// A host pointer: tracked if inside a pinned/managed allocation, otherwise plain pageable
    /// memory that the simulator cannot check.
    Host(u64),
    /// `hipMemcpyDefault`: whatever the address is.
    Any(u64),
}

/// A resolved side of a copy.
#[derive(Debug, Clone, Copy)]
enum Resolved {
    /// Inside a tracked allocation.
    Tracked {
        base: u64,
        offset: u64,
        ptr: *mut u8,
    },
    /// Untracked host memory.
    Raw(*mut u8),
}

impl Resolved {
    fn ptr(self) -> *mut u8 {
        match self {
            Resolved::Tracked { ptr, .. } | Resolved::Raw(ptr) => ptr,
        }
    }
}

/// Pointer facts answered by attribute queries.
#[derive(Debug, Clone, Copy)]
pub struct PointerInfo {
    /// Kind of memory.
    pub kind: MemKind,
    /// Owning device.
    pub device: u32,
    /// First address of the allocation.
    pub base: u64,
    /// Size of the allocation.
    pub size: usize,
    /// Allocation flags.
    pub flags: u32,
}

/// The whole simulator.
#[derive(Debug)]
pub struct Sim {
    /// Number of simulated devices.
    pub device_count: u32,
    /// Answer to `CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED`.
    pub memory_pools: bool,
    /// Work stays pending until the host synchronises with it: stream and event queries answer
    /// "not ready" for work the host has not waited for (`GPUSIM_PENDING=1`,
    /// `gpusim_set_pending`). Off: queries answer "complete" (execution is eager).
    pub pending_until_sync: bool,
    /// `cuInit` succeeded (kept across `gpusim_reset`: it is process state).
    pub initialized: bool,
    /// Bumped by every reset.
    pub generation: u64,
    /// Clocks of host, streams and events.
    pub timelines: Timelines,
    /// Allocations.
    pub memory: MemoryTable,
    /// Race and use-after-free hazard reports.
    pub races: Vec<String>,
    /// (earlier op, later op) pairs already reported: one report per pair of operations.
    reported_pairs: HashSet<(u64, u64)>,
    /// Error reports (bad addresses, use-after-free accesses, bad handles).
    pub errors: Vec<String>,
    /// Calls per API function.
    pub counters: BTreeMap<&'static str, u64>,
    /// Calls that block the host.
    pub blocking: u64,
    /// Retain counts of primary contexts.
    pub primary_retains: BTreeMap<u32, u32>,
    /// Live contexts made by `cuCtxCreate` (primary contexts always exist).
    pub created_contexts: std::collections::BTreeSet<Context>,
    next_context_serial: u32,
    next_op: u64,
    verbose: bool,
}

fn env_u32(name: &str) -> Option<u32> {
    std::env::var(name).ok()?.trim().parse().ok()
}

impl Sim {
    fn new(generation: u64, initialized: bool) -> Self {
        Sim {
            device_count: env_u32("GPUSIM_DEVICE_COUNT").unwrap_or(DEFAULT_DEVICE_COUNT),
            memory_pools: env_u32("GPUSIM_MEMORY_POOLS").is_none_or(|v| v != 0),
            pending_until_sync: env_u32("GPUSIM_PENDING").is_some_and(|v| v != 0),
            initialized,
            generation,
            timelines: Timelines::default(),
            memory: MemoryTable::default(),
            races: Vec::new(),
            reported_pairs: HashSet::new(),
            errors: Vec::new(),
            counters: BTreeMap::new(),
            blocking: 0,
            primary_retains: BTreeMap::new(),
            created_contexts: std::collections::BTreeSet::new(),
            next_context_serial: 1,
            next_op: 1,
            verbose: std::env::var_os("GPUSIM_VERBOSE").is_some_and(|v| v != "0"),
        }
    }

    /// Forgets everything except process-level facts (`cuInit` was called).
    pub fn reset(&mut self) {
        *self = Sim::new(self.generation + 1, self.initialized);
    }

    /// Forgets race and error reports.
    pub fn clear_reports(&mut self) {
        self.races.clear();
        self.errors.clear();
        self.reported_pairs.clear();
    }

    /// Counts one call of `api`.
    pub fn count(&mut self, api: &'static str) {
        *self.counters.entry(api).or_insert(0) += 1;
    }

    /// A stream or event query: "complete" (and the host ordered after the queried work, as a
    /// successful query does) unless work stays pending until a sync and the host has not
    /// waited for all of it (`clock` is the queried work; `None`: nothing to wait for).
    pub fn query(&mut self, clock: Option<crate::clock::VectorClock>) -> SimResult<()> {
        let Some(clock) = clock else {
            return Ok(());
        };
        if self.pending_until_sync && !self.timelines.host_has_waited_for(&clock) {
            return Err(SimError::NotReady);
        }
        self.timelines.host_join(&clock);
        Ok(())
    }

    /// Counts one host-blocking call.
    pub fn count_blocking(&mut self) {
        self.blocking += 1;
    }

    /// Records an error report.
    pub fn error(&mut self, message: String) {
        if self.verbose {
            eprintln!("gpu-sim error: {message}");
        }
        if self.errors.len() < REPORT_LIMIT {
            self.errors.push(message);
        }
    }

    /// Records a race report.
    pub fn race(&mut self, message: String) {
        if self.verbose {
            eprintln!("gpu-sim race: {message}");
        }
        if self.races.len() < REPORT_LIMIT {
            self.races.push(message);
        }
    }

    fn next_op_info(&mut self, api: &str, where_: &str, device: Option<u32>) -> OpRef {
        let id = self.next_op;
        self.next_op += 1;
        Arc::new(OpInfo {
            id,
            name: op_name(api, id, where_, device),
        })
    }

    // ----- devices and streams -----------------------------------------------------------------

    /// Checks a device ordinal.
    pub fn check_device(&self, device: u32) -> SimResult<u32> {
        if self.device_count == 0 {
            Err(SimError::NoDevice)
        } else if device < self.device_count {
            Ok(device)
        } else {
            Err(SimError::InvalidDevice)
        }
    }

    /// The calling thread's current device for `backend`.
    pub fn current_device(&self, backend: Backend) -> SimResult<u32> {
        self.current_context(backend).map(context_device)
    }

    /// The calling thread's current context for `backend` (HIP: its device's primary context).
    pub fn current_context(&self, backend: Backend) -> SimResult<Context> {
        match backend {
            Backend::Cuda => {
                let context =
                    with_context_stack(|s| s.last().copied()).ok_or(SimError::InvalidContext)?;
                self.check_context(context)
            }
            Backend::Hip => self.check_device(hip_device()),
        }
    }

    /// Checks that `context` is live: a primary context of an existing device, or a context
    /// made by `cuCtxCreate` and not destroyed.
    pub fn check_context(&self, context: Context) -> SimResult<Context> {
        let device_ok = self.check_device(context_device(context)).is_ok();
        let live = context == context_device(context) || self.created_contexts.contains(&context);
        if device_ok && live {
            Ok(context)
        } else {
            Err(SimError::InvalidContext)
        }
    }

    /// `cuCtxCreate`: a new context of `device`.
    pub fn create_context(&mut self, device: u32) -> SimResult<Context> {
        let device = self.check_device(device)?;
        let context = (self.next_context_serial << 8) | device;
        self.next_context_serial += 1;
        self.created_contexts.insert(context);
        Ok(context)
    }

    /// Decodes a stream handle value.
    pub fn stream_key(&mut self, backend: Backend, handle: u64) -> SimResult<StreamKey> {
        let key = match (backend, handle) {
            (Backend::Cuda, 0 | STREAM_LEGACY) | (Backend::Hip, 0) => {
                StreamKey::Legacy(self.current_context(backend)?)
            }
            (_, STREAM_PER_THREAD) => StreamKey::PerThread {
                thread: thread_token(),
                context: self.current_context(backend)?,
            },
            (_, h) => StreamKey::Created(h),
        };
        if self.timelines.has_stream(key) {
            Ok(key)
        } else {
            Err(SimError::InvalidHandle)
        }
    }

    /// Like [`Sim::stream_key`], recording an error report naming `api` on failure.
    pub fn stream_key_or_report(
        &mut self,
        backend: Backend,
        api: &str,
        handle: u64,
    ) -> SimResult<StreamKey> {
        self.stream_key(backend, handle).inspect_err(|e| {
            if *e == SimError::InvalidHandle {
                self.error(format!("{api}: invalid stream handle {handle:#x}"));
            }
        })
    }

    /// Creates a stream of `context`; returns its handle.
    pub fn create_stream(&mut self, context: Context, flags: u32) -> u64 {
        let handle = new_stream_handle();
        self.timelines.create_stream(handle, context, flags);
        handle
    }

    /// An event may be recorded only on a stream of its own context (`cuEventRecord`: "hEvent
    /// and hStream must be from the same context", else `CUDA_ERROR_INVALID_HANDLE`); a wait may
    /// use an event of another context or device.
    pub fn check_record(&mut self, api: &str, event: u64, key: StreamKey) -> SimResult<()> {
        let event_context = self.timelines.event(event).map(|e| e.context);
        let stream_context = self.timelines.context_of(key);
        match (event_context, stream_context) {
            (Some(e), Some(s)) if e != s => {
                self.error(format!(
                    "{api}: event {event:#x} of context {:#x} recorded on a stream of context {:#x}",
                    context_handle(e),
                    context_handle(s)
                ));
                Err(SimError::InvalidHandle)
            }
            _ => Ok(()),
        }
    }

    /// Enqueues an operation of `api` on `key`.
    pub fn enqueue(&mut self, api: &str, key: StreamKey) -> SimResult<Op> {
        let (label, device) = self
            .timelines
            .describe(key)
            .ok_or(SimError::InvalidHandle)?;
        let info = self.next_op_info(api, &label, Some(device));
        let at = self.timelines.enqueue(key).ok_or(SimError::InvalidHandle)?;
        Ok(Op { info, at })
    }

    /// A host-side operation of `api`.
    pub fn host_op(&mut self, api: &str) -> Op {
        let info = self.next_op_info(api, "host", None);
        let at = self.timelines.host_op();
        Op { info, at }
    }

    // ----- memory --------------------------------------------------------------------------

    /// `cuMemAllocAsync`: `size` bytes of device memory on `device`, allocated by `op` (enqueued
    /// on its stream). A block of the stream-ordered pool is reused when its free is ordered
    /// before `op`; the allocation is an access (a write by `op`), so a use on another stream
    /// that is not ordered after it is a race.
    pub fn allocate_ordered(&mut self, op: &Op, device: u32, size: usize) -> SimResult<u64> {
        let base = match self.memory.allocate_pooled(device, size, &op.at.clock) {
            Some(base) => base,
            None => self.memory.allocate(MemKind::Device, device, size, 0)?,
        };
        self.record(base, 0, size, AccessKind::Write, op);
        Ok(base)
    }

    /// Facts about the live allocation containing `addr`.
    pub fn pointer_info(&self, addr: u64) -> Option<PointerInfo> {
        self.memory.containing(addr).map(|a| PointerInfo {
            kind: a.summary.kind,
            device: a.summary.device,
            base: a.summary.base,
            size: a.summary.size,
            flags: a.flags,
        })
    }

    /// Records `kind` access of `op` to `[offset, offset+len)` of the allocation at `base`.
    fn record(&mut self, base: u64, offset: u64, len: usize, kind: AccessKind, op: &Op) {
        let Some(alloc) = self.memory.get_mut(base) else {
            return;
        };
        let access = Access {
            epoch: op.at.epoch,
            op: op.info.clone(),
            kind,
        };
        let conflicts = alloc
            .shadow
            .access(offset, offset + len as u64, &access, &op.at.clock);
        let summary = alloc.summary;
        for conflict in conflicts {
            let pair = (conflict.earlier.op.id, conflict.later.op.id);
            if self.races.len() < REPORT_LIMIT && self.reported_pairs.insert(pair) {
                self.race(conflict.describe(&summary));
            }
        }
    }

    fn resolve(&self, side: Side, len: usize) -> Result<Resolved, AddressError> {
        let tracked = |addr: u64| {
            self.memory.resolve(addr, len).map(|(base, offset)| {
                let ptr = self
                    .memory
                    .at_base(base)
                    .map_or(std::ptr::null_mut(), |a| a.host_ptr(offset));
                Resolved::Tracked { base, offset, ptr }
            })
        };
        match side {
            Side::Device(addr) => tracked(addr),
            Side::Host(addr) | Side::Any(addr) => match tracked(addr) {
                Ok(r) => Ok(r),
                Err(AddressError::Null) => Err(AddressError::Null),
                Err(e @ AddressError::OutOfBounds(_)) => Err(e),
                // A freed device range is an error; a freed host range may have been
                // reused by the host allocator, so it is plain host memory again.
                Err(AddressError::Freed(t))
                    if matches!(side, Side::Any(_)) && t.summary.kind == MemKind::Device =>
                {
                    Err(AddressError::Freed(t))
                }
                Err(_)
                    if matches!(side, Side::Any(_))
                        && addr >= crate::memory::DEVICE_ADDRESS_BASE =>
                {
                    Err(AddressError::Unknown)
                }
                Err(_) => Ok(Resolved::Raw(addr as *mut u8)),
            },
        }
    }

    fn resolve_or_report(
        &mut self,
        op: &Op,
        role: &str,
        side: Side,
        len: usize,
    ) -> SimResult<Resolved> {
        self.resolve(side, len).map_err(|e| {
            let addr = match side {
                Side::Device(a) | Side::Host(a) | Side::Any(a) => a,
            };
            self.error(format!(
                "{}: {role} {}",
                op.info.name,
                e.describe(addr, len)
            ));
            SimError::InvalidValue
        })
    }

    /// Copies `len` bytes as operation `op` (already enqueued): checks both sides, records the
    /// accesses, then moves the bytes.
    pub fn copy(&mut self, op: &Op, dst: Side, src: Side, len: usize) -> SimResult<()> {
        if len == 0 {
            return Ok(());
        }
        let d = self.resolve_or_report(op, "destination", dst, len)?;
        let s = self.resolve_or_report(op, "source", src, len)?;
        if let Resolved::Tracked { base, offset, .. } = s {
            self.record(base, offset, len, AccessKind::Read, op);
        }
        if let Resolved::Tracked { base, offset, .. } = d {
            self.record(base, offset, len, AccessKind::Write, op);
        }
        // SAFETY: tracked sides are in bounds of live allocations (checked by `resolve`); raw
        // sides are host pointers the caller promised, by the C API's contract, to be valid for
        // `len` bytes. `copy` allows overlap.
        unsafe { std::ptr::copy(s.ptr(), d.ptr(), len) };
        Ok(())
    }

    /// Writes `n` elements of `fill` at device address `dst` as operation `op` (already
    /// enqueued): checks the range, records the write, then sets the bytes.
    pub fn fill(&mut self, op: &Op, dst: u64, fill: Fill, n: usize) -> SimResult<()> {
        let width = match fill {
            Fill::Bytes(_) => 1,
            Fill::Words(_) => 4,
        };
        let len = n.checked_mul(width).ok_or(SimError::InvalidValue)?;
        if len == 0 {
            return Ok(());
        }
        let d = self.resolve_or_report(op, "destination", Side::Device(dst), len)?;
        if let Resolved::Tracked { base, offset, .. } = d {
            self.record(base, offset, len, AccessKind::Write, op);
        }
        // SAFETY: `d` is inside a live allocation for `len` bytes (checked by `resolve`), and
        // no Rust reference to those bytes exists while this slice lives.
        let bytes = unsafe { std::slice::from_raw_parts_mut(d.ptr(), len) };
        match fill {
            Fill::Bytes(value) => bytes.fill(value),
            Fill::Words(value) => {
                for (byte, value) in bytes.iter_mut().zip(value.to_ne_bytes().iter().cycle()) {
                    *byte = *value;
                }
            }
        }
        Ok(())
    }

    /// Records a kernel's or the host's access to `[addr, addr+len)` (must be tracked memory).
    pub fn access(&mut self, op: &Op, addr: u64, len: usize, kind: AccessKind) -> SimResult<()> {
        match self.memory.resolve(addr, len) {
            Ok((base, offset)) => {
                self.record(base, offset, len, kind, op);
                Ok(())
            }
            Err(e) => {
                let what = match kind {
                    AccessKind::Read => "reads",
                    AccessKind::Write => "writes",
                    AccessKind::Free => "frees",
                };
                self.error(format!("{} {what} {}", op.info.name, e.describe(addr, len)));
                Err(SimError::IllegalAddress)
            }
        }
    }

    /// The host address behind `[addr, addr+len)` of tracked memory (no access recorded).
    pub fn host_view(&mut self, addr: u64, len: usize) -> Option<*mut u8> {
        match self.memory.resolve(addr, len) {
            Ok((base, offset)) => self.memory.at_base(base).map(|a| a.host_ptr(offset)),
            Err(e) => {
                self.error(format!("gpusim_host_view: {}", e.describe(addr, len)));
                None
            }
        }
    }

    /// Frees the allocation starting at `addr` as operation `op`. `allowed` lists the kinds
    /// this free function accepts.
    pub fn free(&mut self, op: &Op, addr: u64, allowed: &[MemKind]) -> SimResult<()> {
        self.free_into(op, addr, allowed, false)
    }

    /// `cuMemFreeAsync`: frees like [`free`](Self::free); device memory goes back to the
    /// stream-ordered pool, from which `cuMemAllocAsync` may hand its address out again.
    pub fn free_to_pool(&mut self, op: &Op, addr: u64) -> SimResult<()> {
        self.free_into(op, addr, &[MemKind::Device, MemKind::Managed], true)
    }

    fn free_into(
        &mut self,
        op: &Op,
        addr: u64,
        allowed: &[MemKind],
        pooled: bool,
    ) -> SimResult<()> {
        let summary = match self.memory.at_base(addr) {
            Some(a) if allowed.contains(&a.summary.kind) => a.summary,
            Some(a) => {
                let summary = a.summary;
                self.error(format!(
                    "{}: {summary} cannot be freed by this function",
                    op.info.name
                ));
                return Err(SimError::InvalidValue);
            }
            None => {
                let why = match self.memory.resolve(addr, 0) {
                    Ok(_) => format!("{addr:#x} is not the start of an allocation"),
                    Err(AddressError::Freed(t)) => format!(
                        "double free: {addr:#x} ({}) was already freed by {}",
                        t.summary, t.freed_by
                    ),
                    Err(e) => e.describe(addr, 0),
                };
                self.error(format!("{}: {why}", op.info.name));
                return Err(SimError::InvalidValue);
            }
        };
        self.record(addr, 0, summary.size, AccessKind::Free, op);
        if pooled && summary.kind == MemKind::Device {
            self.memory
                .release_pooled(addr, op.info.name.clone(), op.at.clock.clone());
        } else {
            self.memory.release(addr, op.info.name.clone());
        }
        Ok(())
    }
}

static STATE: Mutex<Option<Sim>> = Mutex::new(None);

/// Locks the global state (recovering from poisoning) and creates it on first use.
pub fn lock() -> SimGuard {
    let mut guard = STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.get_or_insert_with(|| Sim::new(0, false));
    SimGuard { guard }
}

/// The locked simulator (always initialised by [`lock`]).
#[derive(Debug)]
pub struct SimGuard {
    guard: MutexGuard<'static, Option<Sim>>,
}

impl std::ops::Deref for SimGuard {
    type Target = Sim;
    fn deref(&self) -> &Sim {
        self.guard.as_ref().expect("initialised in lock()")
    }
}

impl std::ops::DerefMut for SimGuard {
    fn deref_mut(&mut self) -> &mut Sim {
        self.guard.as_mut().expect("initialised in lock()")
    }
}
