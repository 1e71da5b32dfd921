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
//!   `NO_DEVICE`). One primary context per device; the current context (CUDA) and current device
//!   (HIP) are per thread.
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
//! Modelling choices worth knowing:
//! * All host threads share one host timeline (the simulator cannot see host-side locks).
//! * `cuMemFree_v2`/`hipFree` are host operations ordered after what the host has synchronised
//!   with, not implicit device synchronisations, so freeing memory a stream may still use is
//!   reported.
//! * Synchronous copies and memsets (`cuMemcpyHtoD_v2`, `cuMemsetD8_v2`, `hipMemcpy`,
//!   `hipMemset`, ...) run on the legacy default stream and then order the host after them.
//! * A successful `cuStreamQuery`/`cuEventQuery` (always, here) orders the host like a
//!   synchronize, but does not count as blocking.
//! * Pageable host memory passed to copies is not tracked (only pinned/managed memory is).
//!
//! ## Inspection
//!
//! The `gpusim_*` functions ([`inspect`]) reset the simulator, return race and error reports,
//! count calls and let tests write "kernels" as host functions that declare and perform their
//! accesses. Tests use them through the `gpu-sim-inspect` crate (Rust) or `python/gpusim.py`,
//! both of which load the library by the same name the real loaders use, so they see the same
//! state.

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
