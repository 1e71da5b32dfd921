//! # gpu-sim: a simulated CUDA driver and HIP runtime that checks stream ordering
//!
//! A `cdylib` (`libgpu_sim.so`) that stands in for the CUDA driver (`libcuda.so`) and the HIP
//! runtime (`libamdhip64.so`) on machines without a GPU. It is test infrastructure: it is never
//! shipped.
//!
//! ## How it is loaded
//!
//! The build orchestrator (`cargo xtask`) builds this crate and places `libgpu_sim.so` in one
//! folder under the names `libcuda.so`, `libcuda.so.1`, `libamdhip64.so`, `libamdhip64.so.5` and
//! `libamdhip64.so.6`, and puts that folder on `LD_LIBRARY_PATH` before the test process starts.
//! cudarc 0.19 (features `std`, `driver`, `dynamic-loading`, `cuda-12080`) then `dlopen`s
//! `libcuda.so` and resolves each `cu*` symbol lazily, on its first call; a HIP loader does the
//! same with `libamdhip64.so`.
//!
//! **The names must be symbolic links (or hard links) to one file, not copies.** The simulator's
//! state lives in the loaded object; glibc recognises an already-loaded object by its file
//! (device and inode), so every name resolves to the same object and the same state only if the
//! names share the file. Copies would give CUDA and HIP (and the inspection wrapper, which loads
//! `libcuda.so`) separate simulators.
//!
//! ## What it simulates
//!
//! * **Devices**: `GPUSIM_DEVICE_COUNT` devices (default 2, read at first use and at
//!   `gpusim_reset`; `gpusim_set_device_count` changes it; 0 makes `cuInit`/`hipInit` fail with
//!   `NO_DEVICE`). One primary context per device, and more with `cuCtxCreate_v2`
//!   (`cuCtxDestroy_v2`); the current context (CUDA) and current device (HIP) are per thread.
//! * **Contexts**: streams and events belong to the context they were made in (HIP: the device's
//!   primary context); the legacy and per-thread default streams are per context. Recording an
//!   event on a stream of another context is `CUDA_ERROR_INVALID_HANDLE` (reported), as on the
//!   driver; waiting on an event of another context is allowed, as the driver documents for
//!   `cuStreamWaitEvent`.
//! * **Memory**: device memory is host heap memory behind fake device addresses (see
//!   [`memory`]); pinned and managed memory are real host pointers. Every copy and memset is
//!   bounds-checked against the allocation containing the address; a bad address returns
//!   `INVALID_VALUE` (copies, memsets) or `ILLEGAL_ADDRESS` (kernel accesses) and is recorded as
//!   an error report. `CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED` answers 1 (so cudarc uses
//!   `cuMemAllocAsync`/`cuMemFreeAsync`) unless `GPUSIM_MEMORY_POOLS=0` or
//!   `gpusim_set_memory_pools(0)`.
//! * **Ordering**: every stream, every event and the host carry vector clocks ([`clock`]); the
//!   rules are listed in [`stream`]. Memsets, copies and host-function kernels record the bytes
//!   they read and write; an access that conflicts with an earlier one it is not ordered after
//!   is a race, reported with both operations and the byte range. Frees conflict like writes
//!   (use-after-free hazard), and a later access to freed memory is an error.
//! * **Execution is eager**: every operation takes effect (bytes are copied, kernels run) when
//!   it is enqueued, and all checks happen then, so detection is deterministic. Only the
//!   ordering *model* is asynchronous.
//! * **Counters**: calls per exported API function and host-blocking calls (synchronize calls,
//!   synchronous copies and memsets, `cuMemFree_v2`/`hipFree`, `cuMemFreeHost`/`hipHostFree`).
//!
//! * **Synchronous CUDA calls** wait as the driver documents ("API synchronization
//!   behavior"), no more: `cuMemsetD8_v2`/`cuMemsetD32_v2` of device or managed memory and
//!   `cuMemcpyDtoD_v2` return without ordering the host; `cuMemcpyHtoD_v2` from pageable
//!   memory synchronises the legacy stream first and returns before the transfer ends; copies to
//!   the host and from pinned memory return when done.
//! * **Allocations are accesses**: `cuMemAllocAsync` writes the block on its stream, so a use on
//!   another stream not ordered after it is a race. `cuMemFreeAsync` returns device blocks to a
//!   stream-ordered pool, and `cuMemAllocAsync` hands a block's address out again (with its
//!   history) once the free is ordered before it, so a stale use of the old pointer races with
//!   the new owner.
//! * **Queries**: with `GPUSIM_PENDING=1` (or `gpusim_set_pending`) work stays pending until the
//!   host synchronises with it, and `cuStreamQuery`/`cuEventQuery`/`hipStreamQuery`/
//!   `hipEventQuery` answer "not ready" (600) for work the host has not waited for; a "ready"
//!   answer orders the host like a synchronize (not counted as blocking).
//! * **Managed memory** answers `CU_POINTER_ATTRIBUTE_MEMORY_TYPE` with `CU_MEMORYTYPE_DEVICE`
//!   and `IS_MANAGED` 1, as the driver does.
//!
//! Deviations from the driver that stay, and why:
//! * All host threads share one host timeline: the simulator cannot see the locks host threads
//!   use among themselves, so it does not invent races between them.
//! * `cuMemFree_v2`/`hipFree` are host operations ordered after what the host has synchronised
//!   with, not implicit device synchronisations: stricter than the driver, so freeing memory a
//!   stream may still use is reported.
//! * Without pending mode, queries answer "complete" (execution is eager), so code that polls
//!   still terminates; the not-ready paths need `GPUSIM_PENDING=1`.
//! * `hipStreamSynchronize(0)` / `cuStreamSynchronize` of a legacy stream wait for that stream
//!   only, not for every blocking stream of the device as HIP documents for the null stream:
//!   stricter, so code relying on it is reported (no code here does; an event recorded on the
//!   null stream covers the blocking streams in both models).
//! * HIP's synchronous `hipMemcpy`/`hipMemset` keep running on the null stream and ordering the
//!   host after them (HIP documents them as host-synchronous for most memory kinds).
//! * Pageable host memory passed to copies is not tracked (only pinned/managed memory is), so a
//!   host write racing a pageable copy's staging is not seen (the driver stages it before
//!   returning anyway).
//! * Memory belongs to a device, not to a context: `CU_POINTER_ATTRIBUTE_CONTEXT` answers the
//!   device's primary context even for memory allocated in another context (allocation APIs
//!   are per device here; no test depends on the allocating context).
//! * A freed device block is reused only for an allocation of the same size on the same device,
//!   ordered after the free (the driver's default pool policy follows stream order and event
//!   dependencies; opportunistic reuse of an unordered but completed free is not modelled,
//!   because "completed" has no meaning under eager execution).
//!
//! ## Shape: one body per operation, two thin ABIs
//!
//! Every operation (streams, events, allocations and frees, copies and memsets, contexts,
//! pointer queries) has one body, a method of [`call::Call`]: one call in progress, holding the
//! locked simulator, the ABI it came through and the exported name. [`cuda_api`] (the CUDA
//! driver ABI) and [`hip_api`] (the HIP runtime ABI) only translate: C argument types, special
//! stream handles (legacy, per-thread, null), out-parameters ([`call::Out`]), error codes (one
//! table in [`ffi`] names each code for both), and the few rules the two APIs document
//! differently. Each export is one `exports!` entry ([`ffi`]) that names its symbol and C
//! signature once. Below `call`: [`sim`] (state, op
//! enqueueing, copies, frees), [`stream`] (timelines and the ordering rules), [`memory`]
//! (allocations and access shadows), [`clock`] (vector clocks).
//!
//! ## Inspection
//!
//! The `gpusim_*` functions ([`inspect`]) reset the simulator, return race and error reports,
//! count calls and let tests write "kernels" as host functions that declare and perform their
//! accesses. Tests use them through the `gpu-sim-inspect` crate (Rust) or `python/gpusim.py`,
//! both of which load the library by the same name the real loaders use, so they see the same
//! state.

pub mod call;
pub mod clock;
pub mod cuda_api;
pub mod ffi;
pub mod hip_api;
pub mod inspect;
pub mod memory;
pub mod sim;
pub mod stream;

#[cfg(test)]
mod tests;
