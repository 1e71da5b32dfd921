//! The ROCm backend of the device runtime's test suites
//! (`crates/dlpack-device/tests/suite`): raw HIP streams and `HipBuffer`s.

use dlpack_rocm::{HipBuffer, Raw};
use gpu_sim_inspect::Sim;

use crate::suite::{Backend, On};

/// HIP: raw streams of a device, and `HipBuffer`s on them.
pub struct RocmBackend;

impl Backend for RocmBackend {
    type D = dlpack_rocm::Hip;
    type Mem = HipBuffer<u8>;
    /// The device ordinal and stream `a`.
    type Ctx = (i32, u64);
    const SIM: gpu_sim_inspect::Backend = gpu_sim_inspect::Backend::Hip;
    const RECORD: &'static str = "hipEventRecord";
    const WAIT: &'static str = "hipStreamWaitEvent";
    const CREATE: &'static str = "hipEventCreateWithFlags";
    const COPY_TO_HOST: &'static str = "hipMemcpyAsync";
    const SYNC: &'static str = "hipStreamSynchronize";
    const DEFAULT_ARGS: &'static [(i64, u64)] = &[(0, 0)];
    const REFUSED_ARGS: &'static [i64] = &[1, 2];
    const CONSUMER_ARGS: &'static [(u64, Option<i64>)] = &[(0, Some(0)), (1, None), (2, None)];

    fn context(ordinal: usize) -> ((i32, u64), u64, u64) {
        let ordinal = ordinal as i32;
        let (a, b) = (
            Raw::stream_create(ordinal).unwrap(),
            Raw::stream_create(ordinal).unwrap(),
        );
        ((ordinal, a), a, b)
    }

    fn alloc(&(ordinal, a): &(i32, u64), on: On, len: usize) -> HipBuffer<u8> {
        let stream = match on {
            On::A => a,
            On::PerThread => 2,
        };
        HipBuffer::alloc(ordinal, stream, len).unwrap()
    }

    fn free_call(_pools: bool) -> (&'static str, u64) {
        // hipFree is not stream-ordered: the host waits for the stream.
        ("hipFree", 2)
    }

    fn alloc_managed(sim: &Sim, len: usize) -> Option<u64> {
        // SAFETY: symbol signature from hip_runtime_api.h.
        let alloc_managed: unsafe extern "C" fn(*mut u64, usize, u32) -> i32 =
            unsafe { sim.raw_symbol("hipMallocManaged") }.unwrap();
        let mut managed = 0u64;
        // SAFETY: valid out-pointer (the device is current); 1 is
        // hipMemAttachGlobal.
        assert_eq!(unsafe { alloc_managed(&mut managed, len, 1) }, 0);
        Some(managed)
    }
}
