//! The CUDA GPU suite: the device runtime's suite (written once in
//! `crates/dlpack-device/tests/suite`) run on CUDA through cudarc, plus what
//! only cudarc has (its legacy stream object, its event tracking, contexts
//! that are not primary) — observed on the gpu-sim simulator.
#![cfg(feature = "gpu")]

#[path = "../../dlpack-device/tests/suite/mod.rs"]
mod suite;

mod backend;

use backend::{CudaBackend, raw};
use cudarc::driver::CudaContext;
use dlpack_core::ffi::DLDevice;
use dlpack_core::protocol::{DlpackRequest, plan_dlpack};
use dlpack_cuda::{CudaOwner, ExportLayout, fulfil};
use gpu_sim_inspect::Sim;
use suite::{Backend, N, On, consume, produce};

all_suite_tests!(CudaBackend);

/// A test of what only cudarc has, on the simulator.
macro_rules! cuda_test {
    (fn $name:ident($sim:ident) $body:block) => {
        gpu_sim_inspect::sim_test!(
            fn $name($sim) after_reset {
                // The simulator's reset destroyed the events our pools held.
                dlpack_cuda::forget_pooled_events();
            } $body
        );
    };
}

fn request(stream: i64) -> DlpackRequest {
    DlpackRequest {
        stream: Some(stream),
        max_version: Some((1, 3)),
        ..Default::default()
    }
}

cuda_test!(
    fn cudarc_legacy_stream_orders_with_one_record(sim) {
        let (ctx, a, _b) = CudaBackend::context(0);
        let buf = CudaBackend::alloc(&ctx, On::A, N);
        let ptr = dlpack_device::DeviceMemory::base(&buf);
        assert_eq!(dlpack_cuda::consumer_stream_arg(&ctx.ctx.default_stream()), 1);
        assert_eq!(dlpack_cuda::consumer_stream_arg(&ctx.ctx.per_thread_stream()), 2);
        assert_eq!(dlpack_cuda::consumer_stream_arg(&ctx.a), a as i64);
        // The producer on the legacy default stream (cudarc's NULL stream).
        let legacy = ctx.ctx.default_stream();
        // The allocation's zeroing on a comes first.
        dlpack_cuda::Raw::order_after(0, a, 1).unwrap();
        produce::<CudaBackend>(&sim, 0, ptr, 10);
        sim.reset_counters();
        dlpack_cuda::order_streams(&legacy, &ctx.a).unwrap();
        assert_eq!(sim.call_count("cuEventRecord"), 1);
        assert_eq!(consume::<CudaBackend>(&sim, a, ptr), vec![10; N]);
        sim.assert_clean();
        drop(buf);
    }
);

/// The counts of `suite::export_counts` on a context with cudarc's event
/// tracking on (its default, `CudaContext::new` as in `CudaOwner`'s docs)
/// or off.
fn export_counts(sim: &Sim, tracking: bool) -> [(u64, u64, u64, u64); 2] {
    let (ctx, a, b) = backend::context(0, tracking);
    suite::export_counts::<CudaBackend>(sim, &ctx, a, b)
}

cuda_test!(
    fn warm_export_costs_one_record_one_wait_with_and_without_tracking(sim) {
        let untracked = export_counts(&sim, false);
        let tracked = export_counts(&sim, true);
        println!("tracking off: owner {:?}, exchange {:?}", untracked[0], untracked[1]);
        println!("tracking on:  owner {:?}, exchange {:?}", tracked[0], tracked[1]);
        // The exchange: one record on the producer's stream, one wait on
        // the consumer's, no event created, nothing blocks — in both modes.
        assert_eq!(untracked[1], (1, 1, 0, 0));
        assert_eq!(tracked[1], (1, 1, 0, 0));
        // Making the owner reads the device address once: no call without
        // tracking; with it, cudarc's one wait for tracked writes (which
        // puts all pending work on the slice's stream), and no record.
        assert_eq!(untracked[0], (0, 0, 0, 0));
        assert_eq!(tracked[0], (0, 1, 0, 0));
    }
);

cuda_test!(
    fn export_from_a_context_that_is_not_primary(sim) {
        // A framework's own context (cuCtxCreate): its streams and the events recorded on
        // them belong to it, not to the device's primary context.
        // SAFETY: symbol signature from cuda.h.
        let create: unsafe extern "C" fn(*mut cudarc::driver::sys::CUcontext, u32, i32) -> u32 =
            unsafe { sim.raw_symbol("cuCtxCreate_v2") }.unwrap();
        cudarc::driver::result::init().unwrap();
        let mut raw_ctx = std::ptr::null_mut();
        // SAFETY: valid out-pointer; device 0 exists.
        assert_eq!(unsafe { create(&mut raw_ctx, 0, 0) }, 0);
        // SAFETY: a live context of device 0, handed to cudarc (which destroys it on drop).
        let ctx = unsafe { CudaContext::from_raw_context(0, 0, raw_ctx) }.unwrap();
        // SAFETY: the test orders every cross-stream use itself.
        unsafe { ctx.disable_event_tracking() };
        let (a, b) = (ctx.new_stream().unwrap(), ctx.new_stream().unwrap());
        assert_eq!(a.context().cu_ctx(), raw_ctx);
        let slice = a.alloc_zeros::<u8>(N).unwrap();
        let owner = CudaOwner::new(slice);
        let ptr = owner.device_ptr();
        produce::<CudaBackend>(&sim, raw(&a), ptr, 12);
        let plan = plan_dlpack(DLDevice::cuda(0), false, &request(raw(&b) as i64)).unwrap();
        sim.reset_counters();
        let tensor = fulfil(owner, ExportLayout::default(), &plan).unwrap();
        assert_eq!(sim.call_count("cuEventRecord"), 1);
        assert_eq!(sim.call_count("cuStreamWaitEvent"), 1);
        assert_eq!(consume::<CudaBackend>(&sim, raw(&b), ptr), vec![12; N]);
        std::thread::spawn(move || drop(tensor)).join().unwrap();
        assert_eq!(sim.live_allocations(), 0);
        sim.assert_clean();
    }
);
