//! The operations both ABIs expose, one body each.
//!
//! A [`Call`] is one call in progress through an ABI: the locked simulator, the ABI it came
//! through ([`Backend`], which decides how special stream handles and "the current device" read)
//! and the exported name (for reports). Every operation (streams, events, allocation, copies,
//! memsets, frees, contexts, pointer queries) is a method here, written against handle values
//! (`u64`), device ordinals and [`Side`]s. [`crate::cuda_api`] and [`crate::hip_api`] are thin
//! layers over it: they translate C argument types, out-parameters ([`Out`]) and the few rules
//! the two APIs document differently, and nothing else.
//!
//! Out-parameters are checked for null *after* the arguments that precede them in the driver's
//! own checks and *before* any effect, so a null out-pointer never leaks a stream, event or
//! allocation.

use std::ffi::c_void;
use std::ops::{Deref, DerefMut};

use crate::ffi::write_out;
use crate::memory::{AddressError, DEVICE_MEMORY_BYTES, MemKind};
use crate::sim::{
    Backend, Fill, Op, PointerInfo, Side, Sim, SimError, SimResult, context_handle, context_id,
    new_event_handle, with_context_stack,
};
use crate::stream::{Context, StreamKey};

/// A value an ABI hands out for a simulator handle or address (`CUstream`, `hipEvent_t`,
/// `CUdeviceptr`, `void*` of pinned memory, ...).
pub trait Handle: Copy {
    /// The ABI's value of handle or address `value`.
    fn from_value(value: u64) -> Self;
}

impl Handle for u64 {
    fn from_value(value: u64) -> Self {
        value
    }
}

impl Handle for *mut c_void {
    fn from_value(value: u64) -> Self {
        value as *mut c_void
    }
}

/// A caller's out-parameter.
#[derive(Debug)]
pub struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Wraps the caller's pointer.
    ///
    /// # Safety
    /// `ptr` must be null or valid for a write of `T` (the C API's contract).
    pub unsafe fn new(ptr: *mut T) -> Self {
        Out(ptr)
    }

    /// `InvalidValue` if the caller passed null.
    pub fn check(&self) -> SimResult<()> {
        if self.0.is_null() {
            Err(SimError::InvalidValue)
        } else {
            Ok(())
        }
    }

    /// Writes `value`, or fails with `InvalidValue` if the caller passed null.
    pub fn put(self, value: T) -> SimResult<()> {
        // SAFETY: null or valid for a write of `T`, by the contract of `Out::new`.
        unsafe { write_out(self.0, value) }
    }
}

impl<H: Handle> Out<H> {
    /// Writes the ABI's value of handle or address `value`.
    pub fn put_handle(self, value: u64) -> SimResult<()> {
        self.put(H::from_value(value))
    }
}

/// Where a copy or memset runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// Asynchronously, on the stream with this handle value.
    Stream(u64),
    /// Synchronously, on the legacy (null) stream of the current context, the host waiting as
    /// said.
    Sync(HostWait),
}

/// When the host waits in a synchronous copy or memset (CUDA driver API, "API synchronization
/// behavior"; HIP's synchronous copies and memsets always wait [`HostWait::After`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostWait {
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

/// What the simulator knows about an address, for pointer-attribute queries.
#[derive(Debug, Clone, Copy)]
pub enum Pointer {
    /// Inside a live allocation.
    Live(PointerInfo),
    /// Inside freed device memory (a stale pointer).
    Freed,
    /// Not simulator memory (plain host memory, or nothing).
    Unknown,
}

/// One call through an ABI (see the module docs).
#[derive(Debug)]
pub struct Call<'a> {
    sim: &'a mut Sim,
    /// The ABI the call came through.
    pub backend: Backend,
    /// The exported function's name, for reports and operation names.
    pub api: &'static str,
}

impl Deref for Call<'_> {
    type Target = Sim;
    fn deref(&self) -> &Sim {
        self.sim
    }
}

impl DerefMut for Call<'_> {
    fn deref_mut(&mut self) -> &mut Sim {
        self.sim
    }
}

impl<'a> Call<'a> {
    /// A call of `api` through `backend`'s ABI.
    pub fn new(sim: &'a mut Sim, backend: Backend, api: &'static str) -> Self {
        Call { sim, backend, api }
    }

    // ----- devices and contexts -----------------------------------------------------------

    /// `cuInit` / `hipInit`: fails without devices. Only CUDA's marks the driver initialised
    /// (HIP needs no init call).
    pub fn init(&mut self) -> SimResult<()> {
        if self.sim.device_count == 0 {
            return Err(SimError::NoDevice);
        }
        if self.backend == Backend::Cuda {
            self.sim.initialized = true;
        }
        Ok(())
    }

    /// A device ordinal argument (`CUdevice`, HIP's `int deviceId`).
    pub fn device(&self, ordinal: i32) -> SimResult<u32> {
        u32::try_from(ordinal)
            .map_err(|_| SimError::InvalidDevice)
            .and_then(|d| self.sim.check_device(d))
    }

    /// The calling thread's current device.
    pub fn current_device(&self) -> SimResult<u32> {
        self.sim.current_device(self.backend)
    }

    /// The calling thread's current context (HIP: its device's primary context).
    pub fn current_context(&self) -> SimResult<Context> {
        self.sim.current_context(self.backend)
    }

    /// `cuCtxSynchronize` (every stream of the current context) / `hipDeviceSynchronize`
    /// (every stream of the current device): blocks the host.
    pub fn synchronize_current(&mut self) -> SimResult<()> {
        let context = self.current_context()?;
        self.sim.count_blocking();
        match self.backend {
            Backend::Cuda => self.sim.timelines.host_join_context(context),
            Backend::Hip => self
                .sim
                .timelines
                .host_join_device(crate::stream::context_device(context)),
        }
        Ok(())
    }

    /// A context handle argument of a live context.
    pub fn context(&self, handle: u64) -> SimResult<Context> {
        context_id(handle)
            .ok_or(SimError::InvalidContext)
            .and_then(|c| self.sim.check_context(c))
    }

    /// `cuDevicePrimaryCtxRetain`.
    pub fn retain_primary(&mut self, ordinal: i32, out: Out<impl Handle>) -> SimResult<()> {
        let device = self.device(ordinal)?;
        out.put_handle(context_handle(device))?;
        *self.sim.primary_retains.entry(device).or_insert(0) += 1;
        Ok(())
    }

    /// `cuDevicePrimaryCtxRelease`.
    pub fn release_primary(&mut self, ordinal: i32) -> SimResult<()> {
        let device = self.device(ordinal)?;
        match self.sim.primary_retains.get_mut(&device) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Ok(())
            }
            _ => Err(SimError::InvalidContext),
        }
    }

    /// `cuCtxCreate`: a new context, pushed onto the calling thread's stack.
    pub fn create_context(&mut self, ordinal: i32, out: Out<impl Handle>) -> SimResult<()> {
        let device = self.device(ordinal)?;
        out.check()?;
        let context = self.sim.create_context(device)?;
        with_context_stack(|s| s.push(context));
        out.put_handle(context_handle(context))
    }

    /// `cuCtxDestroy`: only contexts made by `cuCtxCreate` (a primary context is released).
    pub fn destroy_context(&mut self, handle: u64) -> SimResult<()> {
        let context = self.context(handle)?;
        if !self.sim.created_contexts.remove(&context) {
            self.sim.error(format!(
                "{}: {handle:#x} is a primary context (release it instead)",
                self.api
            ));
            return Err(SimError::InvalidContext);
        }
        with_context_stack(|s| s.retain(|&c| c != context));
        Ok(())
    }

    /// `cuCtxSetCurrent`: replaces the top of the thread's stack (null pops it).
    pub fn set_current_context(&mut self, handle: u64) -> SimResult<()> {
        if handle == 0 {
            with_context_stack(|s| s.pop());
            return Ok(());
        }
        let context = self.context(handle)?;
        with_context_stack(|s| match s.last_mut() {
            Some(top) => *top = context,
            None => s.push(context),
        });
        Ok(())
    }

    /// `cuCtxPushCurrent`.
    pub fn push_context(&mut self, handle: u64) -> SimResult<()> {
        let context = self.context(handle)?;
        with_context_stack(|s| s.push(context));
        Ok(())
    }

    /// `cuCtxPopCurrent`: the popped context's handle goes to `out` unless it is null.
    pub fn pop_context(&mut self, out: Out<impl Handle>) -> SimResult<()> {
        let popped = with_context_stack(|s| s.pop()).ok_or(SimError::InvalidContext)?;
        if out.check().is_ok() {
            out.put_handle(context_handle(popped))?;
        }
        Ok(())
    }

    /// `cuCtxGetCurrent`: the top of the thread's stack, or 0.
    pub fn current_context_handle(&self) -> u64 {
        with_context_stack(|s| s.last().copied()).map_or(0, context_handle)
    }

    // ----- streams ------------------------------------------------------------------------

    /// A stream handle argument, decoded by this ABI's rules (legacy, per-thread and null
    /// streams); an unknown handle is reported naming the call.
    pub fn stream(&mut self, handle: u64) -> SimResult<StreamKey> {
        self.sim
            .stream_key_or_report(self.backend, self.api, handle)
    }

    /// `cuStreamCreate*` / `hipStreamCreate*`: a stream of the current context.
    pub fn create_stream(&mut self, flags: u32, out: Out<impl Handle>) -> SimResult<()> {
        let context = self.current_context()?;
        out.check()?;
        let handle = self.sim.create_stream(context, flags);
        out.put_handle(handle)
    }

    /// `cuStreamDestroy` / `hipStreamDestroy`: created streams only.
    pub fn destroy_stream(&mut self, handle: u64) -> SimResult<()> {
        if self
            .sim
            .timelines
            .destroy_stream(StreamKey::Created(handle))
        {
            Ok(())
        } else {
            self.sim.error(format!(
                "{}: invalid stream handle {handle:#x} (implicit streams cannot be destroyed)",
                self.api
            ));
            Err(SimError::InvalidHandle)
        }
    }

    /// `cuStreamSynchronize` / `hipStreamSynchronize`: blocks the host.
    pub fn synchronize_stream(&mut self, handle: u64) -> SimResult<()> {
        let key = self.stream(handle)?;
        self.sim.count_blocking();
        self.sim.timelines.host_join_stream(key);
        Ok(())
    }

    /// `cuStreamQuery` / `hipStreamQuery` (see [`Sim::query`]).
    pub fn query_stream(&mut self, handle: u64) -> SimResult<()> {
        let key = self.stream(handle)?;
        let clock = self.sim.timelines.stream_clock(key);
        self.sim.query(clock)
    }

    /// `cuStreamWaitEvent` / `hipStreamWaitEvent`.
    pub fn wait_event(&mut self, stream: u64, event: u64) -> SimResult<()> {
        let key = self.stream(stream)?;
        let event = self.event(event)?;
        self.sim
            .timelines
            .wait(key, event)
            .ok_or(SimError::InvalidHandle)?;
        Ok(())
    }

    /// `cuStreamGetCtx`: the handle of the stream's context.
    pub fn stream_context(&mut self, stream: u64) -> SimResult<u64> {
        let key = self.stream(stream)?;
        let context = self
            .sim
            .timelines
            .context_of(key)
            .ok_or(SimError::InvalidHandle)?;
        Ok(context_handle(context))
    }

    // ----- events -------------------------------------------------------------------------

    /// An event handle argument of a live event; an unknown one is reported naming the call.
    pub fn event(&mut self, handle: u64) -> SimResult<u64> {
        if self.sim.timelines.event(handle).is_some() {
            Ok(handle)
        } else {
            self.sim
                .error(format!("{}: invalid event handle {handle:#x}", self.api));
            Err(SimError::InvalidHandle)
        }
    }

    /// `cuEventCreate` / `hipEventCreate*`: an event of the current context.
    pub fn create_event(&mut self, flags: u32, out: Out<impl Handle>) -> SimResult<()> {
        let context = self.current_context()?;
        out.check()?;
        let handle = new_event_handle();
        self.sim.timelines.create_event(handle, flags, context);
        out.put_handle(handle)
    }

    /// `cuEventRecord*` / `hipEventRecord`: on a stream of the event's own context.
    pub fn record_event(&mut self, event: u64, stream: u64) -> SimResult<()> {
        let event = self.event(event)?;
        let key = self.stream(stream)?;
        self.sim.check_record(self.api, event, key)?;
        let op = self.sim.enqueue(self.api, key)?;
        if self.sim.timelines.set_event(event, &op.at, op.info.id) {
            Ok(())
        } else {
            Err(SimError::InvalidHandle)
        }
    }

    /// `cuEventSynchronize` / `hipEventSynchronize`: blocks the host.
    pub fn synchronize_event(&mut self, event: u64) -> SimResult<()> {
        let event = self.event(event)?;
        self.sim.count_blocking();
        self.sim.timelines.host_join_event(event);
        Ok(())
    }

    /// `cuEventQuery` / `hipEventQuery` (see [`Sim::query`]).
    pub fn query_event(&mut self, event: u64) -> SimResult<()> {
        let event = self.event(event)?;
        let clock = self.sim.timelines.event_clock(event);
        self.sim.query(clock)
    }

    /// `cuEventDestroy` / `hipEventDestroy`.
    pub fn destroy_event(&mut self, event: u64) -> SimResult<()> {
        let event = self.event(event)?;
        self.sim.timelines.destroy_event(event);
        Ok(())
    }

    /// `cuEventElapsedTime`: milliseconds between two recorded events with timing, on a fake
    /// clock of one microsecond per operation.
    pub fn elapsed_ms(&mut self, start: u64, end: u64) -> SimResult<f32> {
        let start = self.event(start)?;
        let end = self.event(end)?;
        let stamp = |sim: &Sim, handle: u64| {
            sim.timelines
                .event(handle)
                .filter(|e| e.flags & 2 == 0) // CU_EVENT_DISABLE_TIMING / hipEventDisableTiming
                .and_then(|e| e.recorded.as_ref().map(|r| r.1))
        };
        match (stamp(self.sim, start), stamp(self.sim, end)) {
            (Some(t0), Some(t1)) => Ok(((t1 as f64 - t0 as f64) / 1000.0) as f32),
            _ => Err(SimError::InvalidHandle),
        }
    }

    // ----- memory -------------------------------------------------------------------------

    /// `cuMemAlloc`, `cuMemAllocHost`, `cuMemHostAlloc`, `cuMemAllocManaged`, `hipMalloc`,
    /// `hipHostMalloc`, `hipMallocManaged`: `size` bytes of `kind` memory of the current device.
    /// A zero size is `InvalidValue` for CUDA, a null pointer and success for HIP.
    pub fn allocate(
        &mut self,
        kind: MemKind,
        size: usize,
        flags: u32,
        out: Out<impl Handle>,
    ) -> SimResult<()> {
        let device = self.current_device()?;
        out.check()?;
        let addr = if size == 0 && self.backend == Backend::Hip {
            0
        } else {
            self.sim.memory.allocate(kind, device, size, flags)?
        };
        out.put_handle(addr)
    }

    /// `cuMemAllocAsync`: device memory of the stream's device, allocated (and written) by an
    /// operation on the stream, from the stream-ordered pool when a free is ordered before it.
    pub fn allocate_async(
        &mut self,
        size: usize,
        stream: u64,
        out: Out<impl Handle>,
    ) -> SimResult<()> {
        let key = self.stream(stream)?;
        out.check()?;
        let device = self
            .sim
            .timelines
            .device_of(key)
            .ok_or(SimError::InvalidHandle)?;
        let op = self.sim.enqueue(self.api, key)?;
        let addr = self.sim.allocate_ordered(&op, device, size)?;
        out.put_handle(addr)
    }

    /// `cuMemFree` / `hipFree`: device or managed memory, freed by the host (blocking).
    pub fn free_device(&mut self, addr: u64) -> SimResult<()> {
        self.free_on_host(addr, &[MemKind::Device, MemKind::Managed])
    }

    /// `cuMemFreeHost` / `hipHostFree`: pinned memory, freed by the host (blocking).
    pub fn free_pinned(&mut self, addr: u64) -> SimResult<()> {
        self.free_on_host(addr, &[MemKind::Pinned])
    }

    fn free_on_host(&mut self, addr: u64, allowed: &[MemKind]) -> SimResult<()> {
        self.sim.count_blocking();
        let op = self.sim.host_op(self.api);
        self.sim.free(&op, addr, allowed)
    }

    /// `cuMemFreeAsync`: frees on the stream, into the stream-ordered pool.
    pub fn free_async(&mut self, addr: u64, stream: u64) -> SimResult<()> {
        let key = self.stream(stream)?;
        let op = self.sim.enqueue(self.api, key)?;
        self.sim.free_to_pool(&op, addr)
    }

    /// `cuMemGetInfo`: (free, total) device memory of the current device.
    pub fn memory_info(&self) -> SimResult<(usize, usize)> {
        let device = self.current_device()?;
        let used = self.sim.memory.device_bytes_used(device);
        Ok((
            (DEVICE_MEMORY_BYTES - used) as usize,
            DEVICE_MEMORY_BYTES as usize,
        ))
    }

    /// Whether `addr` is inside pinned (page-locked) host memory.
    pub fn is_pinned(&self, addr: u64) -> bool {
        self.sim
            .memory
            .resolve(addr, 0)
            .ok()
            .and_then(|(base, _)| self.sim.memory.at_base(base))
            .is_some_and(|a| a.summary.kind == MemKind::Pinned)
    }

    /// Every copy (`cuMemcpy*`, `hipMemcpy*`): `n` bytes from `src` to `dst`, run `on` a stream
    /// or synchronously.
    pub fn memcpy(&mut self, on: On, dst: Side, src: Side, n: usize) -> SimResult<()> {
        self.transfer(on, |sim, op| sim.copy(op, dst, src, n))
    }

    /// Every memset (`cuMemsetD8*`, `cuMemsetD32*`, `hipMemset*`): `n` elements of `fill` at
    /// device address `dst`, run `on` a stream or synchronously.
    pub fn memset(&mut self, on: On, dst: u64, fill: Fill, n: usize) -> SimResult<()> {
        self.transfer(on, |sim, op| sim.fill(op, dst, fill, n))
    }

    /// One copy or memset: enqueued on its stream, the host waiting as [`HostWait`] says for a
    /// synchronous one.
    fn transfer(
        &mut self,
        on: On,
        run: impl FnOnce(&mut Sim, &Op) -> SimResult<()>,
    ) -> SimResult<()> {
        let key = match on {
            On::Stream(handle) => self.stream(handle)?,
            On::Sync(_) => StreamKey::Legacy(self.current_context()?),
        };
        if on == On::Sync(HostWait::Before) {
            self.sim.count_blocking();
            self.sim.timelines.host_join_stream(key);
        }
        let op = self.sim.enqueue(self.api, key)?;
        let result = run(self.sim, &op);
        if on == On::Sync(HostWait::After) {
            self.sim.count_blocking();
            self.sim.timelines.host_join_stream(key);
        }
        result
    }

    // ----- pointers -----------------------------------------------------------------------

    /// What the simulator knows about `addr`.
    pub fn pointer(&self, addr: u64) -> Pointer {
        match self.sim.pointer_info(addr) {
            Some(info) => Pointer::Live(info),
            None => match self.sim.memory.resolve(addr, 0) {
                Err(AddressError::Freed(_)) => Pointer::Freed,
                _ => Pointer::Unknown,
            },
        }
    }
}
