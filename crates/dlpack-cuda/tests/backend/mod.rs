//! The CUDA backend of the device runtime's test suites
//! (`crates/dlpack-device/tests/suite`): cudarc contexts, streams and
//! slices, as users of this crate make them.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaStream};
use dlpack_cuda::{Cuda, CudaMemory};
use gpu_sim_inspect::Sim;

use crate::suite::{Backend, On};

/// CUDA through cudarc: for the simulated suite, a context without
/// cudarc's own event tracking (which would add records and waits of its
/// own); for the driver-only group, cudarc's defaults.
pub struct CudaBackend;

/// A context and its two non-blocking streams.
pub struct Ctx {
    pub ctx: Arc<CudaContext>,
    pub a: Arc<CudaStream>,
    pub _b: Arc<CudaStream>,
}

pub fn raw(stream: &CudaStream) -> u64 {
    stream.cu_stream() as u64
}

/// Device `ordinal`'s primary context, with cudarc's event tracking on (its
/// default) or off (the tests then order every cross-stream use
/// themselves), and two non-blocking streams.
pub fn context(ordinal: usize, tracking: bool) -> (Ctx, u64, u64) {
    let ctx = CudaContext::new(ordinal).expect("context");
    if !tracking {
        // SAFETY: the tests order every cross-stream use themselves.
        unsafe { ctx.disable_event_tracking() };
    }
    let a = ctx.new_stream().expect("stream a");
    let b = ctx.new_stream().expect("stream b");
    assert_eq!(ctx.is_managing_stream_synchronization(), tracking);
    let (ra, rb) = (raw(&a), raw(&b));
    (Ctx { ctx, a, _b: b }, ra, rb)
}

impl Backend for CudaBackend {
    type D = Cuda;
    type Mem = CudaMemory<u8>;
    type Ctx = Ctx;
    const SIM: gpu_sim_inspect::Backend = gpu_sim_inspect::Backend::Cuda;
    const RECORD: &'static str = "cuEventRecord";
    const WAIT: &'static str = "cuStreamWaitEvent";
    const CREATE: &'static str = "cuEventCreate";
    const COPY_TO_HOST: &'static str = "cuMemcpyDtoHAsync_v2";
    const SYNC: &'static str = "cuStreamSynchronize";
    const DEFAULT_ARGS: &'static [(i64, u64)] = &[(1, 1), (2, 2)];
    const REFUSED_ARGS: &'static [i64] = &[0];
    const CONSUMER_ARGS: &'static [(u64, Option<i64>)] =
        &[(0, Some(1)), (1, Some(1)), (2, Some(2))];

    fn context(ordinal: usize) -> (Ctx, u64, u64) {
        context(ordinal, false)
    }

    fn driver_context() -> (Ctx, u64, u64) {
        context(0, true)
    }

    fn check(ctx: &Ctx) {
        ctx.a.synchronize().unwrap();
        ctx.ctx.synchronize().unwrap();
        // Every free the deleters made succeeded (cudarc records a failed
        // free here).
        ctx.ctx.check_err().unwrap();
    }

    fn alloc(ctx: &Ctx, on: On, len: usize) -> CudaMemory<u8> {
        let stream = match on {
            On::A => ctx.a.clone(),
            On::PerThread => ctx.ctx.per_thread_stream(),
        };
        stream.alloc_zeros::<u8>(len).unwrap().into()
    }

    fn free_call(pools: bool) -> (&'static str, u64) {
        if pools {
            ("cuMemFreeAsync", 0)
        } else {
            ("cuMemFree_v2", 2)
        }
    }

    fn alloc_managed(sim: &Sim, len: usize) -> Option<u64> {
        // SAFETY: symbol signature from cuda.h.
        let alloc_managed: unsafe extern "C" fn(*mut u64, usize, u32) -> u32 =
            unsafe { sim.raw_symbol("cuMemAllocManaged") }.unwrap();
        let mut managed = 0u64;
        // SAFETY: valid out-pointer (the device's context is current).
        assert_eq!(unsafe { alloc_managed(&mut managed, len, 1) }, 0);
        Some(managed)
    }
}
