//! Scenario tests: drive the simulator through its C ABI the way a real program drives the
//! CUDA driver / HIP runtime, and check what it reports.
//!
//! Each test is a `gpu_sim_inspect::sim_test!`: without the library on `LD_LIBRARY_PATH` it
//! re-runs itself in a child process with it (see `gpu_sim_inspect::harness`).

mod common;

use std::ffi::c_void;
use std::ptr::null_mut;

use common::{Cuda, Hip, HipPointerAttribute, Ptr};
use gpu_sim_inspect::sim_test;
use gpu_sim_inspect::{Backend, ILLEGAL_ADDRESS};

const NON_BLOCKING: u32 = 1;
const LEGACY: *mut c_void = std::ptr::without_provenance_mut(1);
const PER_THREAD: *mut c_void = std::ptr::without_provenance_mut(2);

sim_test!(
    fn a_unordered_producer_consumer_races(sim) {
        let cu = Cuda::resolve(&sim);
        cu.init(0);
        let (a, b) = (cu.stream(NON_BLOCKING), cu.stream(NON_BLOCKING));
        let buf = cu.alloc(256);
        let out = cu.alloc(256);
        // SAFETY: valid device addresses and streams.
        unsafe {
            assert_eq!((cu.cuMemsetD8Async)(buf, 3, 256, a), 0);
            assert_eq!((cu.cuMemcpyDtoDAsync_v2)(out, buf, 256, b), 0);
        }
        let races = sim.races();
        assert_eq!(races.len(), 1, "{races:#?}");
        assert!(races[0].contains("cuMemsetD8Async#"), "{}", races[0]);
        assert!(races[0].contains("cuMemcpyDtoDAsync_v2#"), "{}", races[0]);
        assert!(races[0].contains(&format!("{buf:#x}")), "{}", races[0]);
        assert!(sim.errors().is_empty());
    }
);

sim_test!(
    fn a_kernel_variant_races_and_computes(sim) {
        let cu = Cuda::resolve(&sim);
        cu.init(0);
        let (a, b) = (cu.stream(NON_BLOCKING), cu.stream(NON_BLOCKING));
        let buf = cu.alloc(16);
        sim.launch_kernel(a as u64, "fill", &[], &[(buf, 16)], |k| {
            assert!(k.store(buf, &[10; 16]));
        })
        .unwrap();
        let mut seen = Vec::new();
        sim.launch_kernel(b as u64, "consume", &[(buf, 16)], &[], |k| {
            seen = k.load(buf, 16).unwrap();
        })
        .unwrap();
        assert_eq!(seen, vec![10; 16], "the kernel really ran");
        let races = sim.races();
        assert_eq!(races.len(), 1, "{races:#?}");
        assert!(races[0].contains("fill#") && races[0].contains("consume#"));
    }
);

sim_test!(
    fn b_event_wait_orders_the_consumer(sim) {
        let cu = Cuda::resolve(&sim);
        cu.init(0);
        let (a, b) = (cu.stream(NON_BLOCKING), cu.stream(NON_BLOCKING));
        let buf = cu.alloc(256);
        let out = cu.alloc(256);
        let e = cu.event();
        // SAFETY: valid handles and addresses.
        unsafe {
            assert_eq!((cu.cuMemsetD8Async)(buf, 3, 256, a), 0);
            assert_eq!((cu.cuEventRecord)(e, a), 0);
            assert_eq!((cu.cuStreamWaitEvent)(b, e, 0), 0);
            assert_eq!((cu.cuMemcpyDtoDAsync_v2)(out, buf, 256, b), 0);
        }
        sim.assert_clean();
        // Waiting on the event before it is recorded does not order anything.
        let c = cu.stream(NON_BLOCKING);
        let late = cu.event();
        // SAFETY: valid handles and addresses.
        unsafe {
            assert_eq!((cu.cuStreamWaitEvent)(c, late, 0), 0);
            assert_eq!((cu.cuMemsetD8Async)(out, 1, 256, a), 0);
            assert_eq!((cu.cuEventRecord)(late, a), 0);
            assert_eq!((cu.cuMemsetD8Async)(out, 2, 256, c), 0);
        }
        assert_eq!(sim.races().len(), 2, "{:#?}", sim.races());
    }
);

sim_test!(
    fn c_host_synchronisation_orders_later_work(sim) {
        let cu = Cuda::resolve(&sim);
        cu.init(0);
        let (a, b) = (cu.stream(NON_BLOCKING), cu.stream(NON_BLOCKING));
        let buf = cu.alloc(64);
        let mut host = [0u8; 64];
        // SAFETY: valid handles and addresses; `host` is 64 bytes.
        unsafe {
            assert_eq!((cu.cuMemsetD8Async)(buf, 5, 64, a), 0);
            assert_eq!((cu.cuStreamSynchronize)(a), 0);
            assert_eq!(
                (cu.cuMemcpyDtoHAsync_v2)(host.as_mut_ptr().cast(), buf, 64, b),
                0
            );
            assert_eq!((cu.cuStreamSynchronize)(b), 0);
        }
        assert_eq!(host, [5; 64]);
        sim.assert_clean();
    }
);

sim_test!(
    fn d_legacy_stream_syncs_with_blocking_streams_only(sim) {
        let cu = Cuda::resolve(&sim);
        cu.init(0);
        let blocking = cu.stream(0);
        let non_blocking = cu.stream(NON_BLOCKING);
        let (x, y) = (cu.alloc(32), cu.alloc(32));
        let (dx, dy) = (cu.alloc(32), cu.alloc(32));
        // SAFETY: valid handles and addresses.
        unsafe {
            assert_eq!((cu.cuMemsetD8Async)(x, 1, 32, blocking), 0);
            assert_eq!((cu.cuMemsetD8Async)(y, 1, 32, non_blocking), 0);
            // Both consumers on the legacy default stream (NULL and CU_STREAM_LEGACY).
            assert_eq!((cu.cuMemcpyDtoDAsync_v2)(dx, x, 32, null_mut()), 0);
            assert_eq!((cu.cuMemcpyDtoDAsync_v2)(dy, y, 32, LEGACY), 0);
        }
        let races = sim.races();
        assert_eq!(races.len(), 1, "{races:#?}");
        assert!(races[0].contains(&format!("{y:#x}")), "{}", races[0]);
        // And the other direction: legacy work, then the streams.
        sim.clear_reports();
        let (p, q) = (cu.alloc(8), cu.alloc(8));
        // SAFETY: valid handles and addresses.
        unsafe {
            assert_eq!((cu.cuMemsetD8Async)(p, 1, 8, null_mut()), 0);
            assert_eq!((cu.cuMemsetD8Async)(q, 1, 8, null_mut()), 0);
            assert_eq!((cu.cuMemsetD8Async)(p, 2, 8, blocking), 0);
            assert_eq!((cu.cuMemsetD8Async)(q, 2, 8, non_blocking), 0);
        }
        let races = sim.races();
        assert_eq!(races.len(), 1, "{races:#?}");
        assert!(races[0].contains(&format!("{q:#x}")), "{}", races[0]);
    }
);

sim_test!(
    fn e_allocations_report_their_device(sim) {
        let cu = Cuda::resolve(&sim);
        let hip = Hip::resolve(&sim);
        let ctx1 = cu.init(1);
        let p = cu.alloc(128);
        let (mut ordinal, mut mem_type, mut ctx) = (-1i32, 0u32, null_mut::<c_void>());
        // SAFETY: out-pointers of each attribute's type.
        unsafe {
            assert_eq!(
                (cu.cuPointerGetAttribute)((&raw mut ordinal).cast(), 9, p + 17),
                0
            );
            assert_eq!((cu.cuPointerGetAttribute)((&raw mut mem_type).cast(), 2, p), 0);
            assert_eq!((cu.cuPointerGetAttribute)((&raw mut ctx).cast(), 1, p), 0);
        }
        assert_eq!((ordinal, mem_type, ctx), (1, 2, ctx1));
        // HIP allocation on device 1, seen by both APIs.
        let mut h = null_mut();
        let mut attr = HipPointerAttribute {
            memory_type: 0,
            device: -1,
            device_pointer: null_mut(),
            host_pointer: null_mut(),
            is_managed: -1,
            allocation_flags: 0,
        };
        // SAFETY: valid out-pointers.
        unsafe {
            assert_eq!((hip.hipSetDevice)(1), 0);
            assert_eq!((hip.hipMalloc)(&mut h, 64), 0);
            assert_eq!((hip.hipPointerGetAttributes)(&mut attr, h), 0);
        }
        assert_eq!((attr.memory_type, attr.device, attr.is_managed), (2, 1, 0));
        assert_eq!(attr.device_pointer, h);
        // SAFETY: valid out-pointers.
        unsafe {
            assert_eq!((hip.hipPointerGetAttributes)(&mut attr, p as *const c_void), 0);
            assert_eq!(
                (cu.cuPointerGetAttribute)((&raw mut ordinal).cast(), 9, h as u64),
                0
            );
            assert_eq!((hip.hipSetDevice)(0), 0);
        }
        assert_eq!((attr.device, ordinal), (1, 1));
        assert_eq!(sim.live_allocations(), 2);
    }
);

sim_test!(
    fn f_hip_unordered_and_ordered(sim) {
        let hip = Hip::resolve(&sim);
        let (mut a, mut b, mut e) = (null_mut(), null_mut(), null_mut());
        let (mut buf, mut out) = (null_mut(), null_mut());
        // SAFETY: valid out-pointers, handles and addresses.
        unsafe {
            assert_eq!((hip.hipStreamCreateWithFlags)(&mut a, NON_BLOCKING), 0);
            assert_eq!((hip.hipStreamCreateWithFlags)(&mut b, NON_BLOCKING), 0);
            assert_eq!((hip.hipEventCreate)(&mut e), 0);
            assert_eq!((hip.hipMalloc)(&mut buf, 64), 0);
            assert_eq!((hip.hipMalloc)(&mut out, 64), 0);
            // (a) unordered
            assert_eq!((hip.hipMemsetAsync)(buf, 1, 64, a), 0);
            assert_eq!((hip.hipMemcpyAsync)(out, buf, 64, 3, b), 0);
        }
        let races = sim.races();
        assert_eq!(races.len(), 1, "{races:#?}");
        assert!(races[0].contains("hipMemsetAsync#") && races[0].contains("hipMemcpyAsync#"));
        sim.clear_reports();
        // (b) ordered with record + wait; then a DtoH read back on b. Fresh buffers: the read
        // of `buf` on b above is still unordered with stream a.
        let mut host = [0u8; 64];
        // SAFETY: as above; `host` is 64 bytes.
        unsafe {
            assert_eq!((hip.hipMalloc)(&mut buf, 64), 0);
            assert_eq!((hip.hipMalloc)(&mut out, 64), 0);
            assert_eq!((hip.hipMemsetAsync)(buf, 2, 64, a), 0);
            assert_eq!((hip.hipEventRecord)(e, a), 0);
            assert_eq!((hip.hipStreamWaitEvent)(b, e, 0), 0);
            assert_eq!((hip.hipMemcpyAsync)(out, buf, 64, 3, b), 0);
            assert_eq!(
                (hip.hipMemcpyAsync)(host.as_mut_ptr().cast(), out, 64, 2, b),
                0
            );
            assert_eq!((hip.hipStreamSynchronize)(b), 0);
        }
        assert_eq!(host, [2; 64]);
        sim.assert_clean();
    }
);

sim_test!(
    fn g_free_while_a_read_is_pending(sim) {
        let cu = Cuda::resolve(&sim);
        cu.init(0);
        let s = cu.stream(NON_BLOCKING);
        let buf = cu.alloc(64);
        let mut host = [0u8; 64];
        // SAFETY: valid handles; `host` is 64 bytes.
        unsafe {
            assert_eq!(
                (cu.cuMemcpyDtoHAsync_v2)(host.as_mut_ptr().cast(), buf, 64, s),
                0
            );
            assert_eq!((cu.cuMemFree_v2)(buf), 0);
        }
        let races = sim.races();
        assert_eq!(races.len(), 1, "{races:#?}");
        assert!(
            races[0].contains("USE-AFTER-FREE")
                && races[0].contains("cuMemcpyDtoHAsync_v2#")
                && races[0].contains("cuMemFree_v2#"),
            "{}",
            races[0]
        );
        // Any later access to the freed memory is an error.
        // SAFETY: valid stream; the address is checked by the simulator.
        assert_eq!(unsafe { (cu.cuMemsetD8Async)(buf, 0, 1, s) }, 1);
        let errors = sim.errors();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains("use-after-free"), "{}", errors[0]);
        assert_eq!(sim.live_allocations(), 0);
    }
);

sim_test!(
    fn h_out_of_bounds_copy_is_an_error(sim) {
        let cu = Cuda::resolve(&sim);
        cu.init(0);
        let s = cu.stream(0);
        let buf = cu.alloc(100);
        let host = vec![0u8; 4096];
        // SAFETY: `host` is 4096 bytes; the device range is checked by the simulator.
        let rc = unsafe { (cu.cuMemcpyHtoDAsync_v2)(buf + 1, host.as_ptr().cast(), 100, s) };
        assert_eq!(rc, 1, "CUDA_ERROR_INVALID_VALUE");
        // SAFETY: as above.
        let rc = unsafe { (cu.cuMemcpyHtoD_v2)(buf + 4096, host.as_ptr().cast(), 4) };
        assert_eq!(rc, 1);
        let errors = sim.errors();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].contains("runs past the end"), "{}", errors[0]);
        assert!(errors[1].contains("not inside any allocation"), "{}", errors[1]);
        assert!(sim.races().is_empty());
        // Kernels touching bad memory get ILLEGAL_ADDRESS and do not run.
        let mut ran = false;
        let rc = sim.launch_kernel(s as u64, "oob", &[(buf + 96, 8)], &[], |_| ran = true);
        assert_eq!(rc, Err(700));
        assert!(!ran);
    }
);

sim_test!(
    fn i_counters_count_records_waits_and_blocking_calls(sim) {
        let cu = Cuda::resolve(&sim);
        cu.init(0);
        let (a, b) = (cu.stream(NON_BLOCKING), cu.stream(NON_BLOCKING));
        let e = cu.event();
        let buf = cu.alloc(16);
        sim.reset_counters();
        // SAFETY: valid handles and addresses.
        unsafe {
            assert_eq!((cu.cuMemsetD8Async)(buf, 1, 16, a), 0);
            assert_eq!((cu.cuEventRecord)(e, a), 0);
            assert_eq!((cu.cuStreamWaitEvent)(b, e, 0), 0);
        }
        assert_eq!(sim.call_count("cuEventRecord"), 1);
        assert_eq!(sim.call_count("cuStreamWaitEvent"), 1);
        assert_eq!(sim.call_count("cuEventCreate"), 0);
        assert_eq!(sim.blocking_count(), 0, "nothing blocked the host yet");
        let mut host = [0u8; 16];
        // SAFETY: valid handles; `host` is 16 bytes.
        unsafe {
            assert_eq!((cu.cuStreamSynchronize)(b), 0);
            assert_eq!((cu.cuMemcpyDtoH_v2)(host.as_mut_ptr().cast(), buf, 16), 0);
            assert_eq!((cu.cuCtxSynchronize)(), 0);
            assert_eq!((cu.cuMemFree_v2)(buf), 0);
        }
        assert_eq!(sim.blocking_count(), 4);
        let counters = sim.counters();
        assert_eq!(counters.get("cuEventRecord"), Some(&1));
        assert_eq!(counters.get("cuMemsetD8Async"), Some(&1));
        assert_eq!(counters.get("cuMemFree_v2"), Some(&1));
        assert_eq!((sim.live_streams(), sim.live_events()), (2, 1));
        // SAFETY: valid handles.
        unsafe {
            assert_eq!((cu.cuEventDestroy_v2)(e), 0);
            assert_eq!((cu.cuStreamDestroy_v2)(a), 0);
        }
        assert_eq!((sim.live_streams(), sim.live_events()), (1, 0));
        sim.assert_clean();
    }
);

sim_test!(
    fn j_per_thread_default_streams_are_distinct(sim) {
        let cu = Cuda::resolve(&sim);
        let ctx = cu.init(0) as u64;
        let buf = cu.alloc(32);
        // SAFETY: valid address; the per-thread stream exists implicitly.
        assert_eq!(unsafe { (cu.cuMemsetD8Async)(buf, 1, 32, PER_THREAD) }, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { (cu.cuMemsetD8Async)(buf, 2, 32, PER_THREAD) }, 0);
        assert!(sim.races().is_empty(), "same thread, same stream");
        std::thread::scope(|scope| {
            scope.spawn(|| {
                // SAFETY: the context handle came from this simulator.
                unsafe {
                    assert_eq!((cu.cuCtxSetCurrent)(ctx as *mut c_void), 0);
                    assert_eq!((cu.cuMemsetD8Async)(buf, 3, 32, PER_THREAD), 0);
                }
            });
        });
        let races = sim.races();
        assert_eq!(races.len(), 1, "{races:#?}");
        assert!(races[0].contains("per-thread default stream of thread"));
        // Per-thread default streams are blocking: the legacy stream orders them.
        sim.clear_reports();
        // SAFETY: as above.
        unsafe {
            assert_eq!((cu.cuMemsetD8Async)(buf, 4, 32, null_mut()), 0);
            assert_eq!((cu.cuMemsetD8Async)(buf, 5, 32, PER_THREAD), 0);
        }
        // The legacy stream waited for both threads' per-thread streams, and the per-thread
        // stream waited for the legacy stream.
        sim.assert_clean();
    }
);

sim_test!(
    fn host_reads_of_pinned_memory_need_a_sync(sim) {
        let cu = Cuda::resolve(&sim);
        cu.init(0);
        let s = cu.stream(NON_BLOCKING);
        let dev = cu.alloc(8);
        // SAFETY: symbol signature from cuda.h.
        let alloc_host: unsafe extern "C" fn(*mut *mut c_void, usize) -> u32 =
            unsafe { sim.raw_symbol("cuMemAllocHost_v2") }.unwrap();
        let mut pinned = null_mut();
        // SAFETY: valid out-pointer; `pinned` then holds 8 bytes.
        unsafe {
            assert_eq!(alloc_host(&mut pinned, 8), 0);
            assert_eq!((cu.cuMemcpyDtoHAsync_v2)(pinned, dev, 8, s), 0);
        }
        sim.host_read(pinned as u64, 8).unwrap();
        assert_eq!(sim.races().len(), 1, "{:#?}", sim.races());
        // SAFETY: valid stream.
        assert_eq!(unsafe { (cu.cuStreamSynchronize)(s) }, 0);
        sim.host_read(pinned as u64, 8).unwrap();
        assert_eq!(sim.races().len(), 1);
    }
);

sim_test!(
    fn one_simulator_behind_every_name(sim) {
        // The HIP loader's name resolves to the object cudarc's name resolved to.
        sim.set_device_count(3);
        // SAFETY: opening the simulator by another of its names.
        let hip = unsafe {
            libloading::os::unix::Library::open(
                Some("libamdhip64.so.6"),
                libloading::os::unix::RTLD_NOW,
            )
        }
        .expect("libamdhip64.so.6 on the loader path");
        // SAFETY: hipGetDeviceCount's C signature.
        let count: libloading::os::unix::Symbol<unsafe extern "C" fn(*mut i32) -> i32> =
            unsafe { hip.get(b"hipGetDeviceCount\0") }.unwrap();
        let mut n = 0;
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { count(&mut n) }, 0);
        assert_eq!(n, 3);
        assert_eq!(sim.call_count("hipGetDeviceCount"), 1);
        sim.set_device_count(2);
        assert_eq!(sim.version(), 1);
    }
);

sim_test!(
    fn hip_kernel_on_null_stream(sim) {
        let hip = Hip::resolve(&sim);
        let mut buf = null_mut();
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { (hip.hipMalloc)(&mut buf, 4) }, 0);
        let addr = buf as u64;
        sim.launch_kernel_on(Backend::Hip, 0, "inc", &[(addr, 4)], &[(addr, 4)], |k| {
            let v = k.load(addr, 4).unwrap();
            assert!(k.store(addr, &v.iter().map(|b| b + 1).collect::<Vec<_>>()));
        })
        .unwrap();
        let view = sim.host_view(addr, 4).unwrap();
        // SAFETY: 4 live bytes.
        assert_eq!(unsafe { std::slice::from_raw_parts(view.as_ptr(), 4) }, &[1; 4]);
        // hipFree does not wait for the null stream: synchronise first.
        // SAFETY: valid stream and pointer.
        unsafe {
            assert_eq!((hip.hipStreamSynchronize)(null_mut()), 0);
            assert_eq!((hip.hipFree)(buf), 0);
        }
        sim.assert_clean();
    }
);

sim_test!(
    fn produce_and_consume_kernels_race_unless_ordered(sim) {
        let (cu, hip) = (Cuda::resolve(&sim), Hip::resolve(&sim));
        cu.init(0);
        let (a, b) = (cu.stream(NON_BLOCKING), cu.stream(NON_BLOCKING));
        let (mut ha, mut hb) = (null_mut(), null_mut());
        let mut hbuf = null_mut();
        // SAFETY: valid out-pointers.
        unsafe {
            assert_eq!((hip.hipStreamCreateWithFlags)(&mut ha, NON_BLOCKING), 0);
            assert_eq!((hip.hipStreamCreateWithFlags)(&mut hb, NON_BLOCKING), 0);
            assert_eq!((hip.hipMalloc)(&mut hbuf, 32), 0);
        }
        let cases = [
            (Backend::Cuda, a as u64, b as u64, cu.alloc(32)),
            (Backend::Hip, ha as u64, hb as u64, hbuf as u64),
        ];
        for (backend, first, second, buf) in cases {
            let synchronize = |stream: u64| {
                // SAFETY: a valid stream of the ABI.
                let rc = unsafe {
                    match backend {
                        Backend::Cuda => (cu.cuStreamSynchronize)(stream as Ptr) as i32,
                        Backend::Hip => (hip.hipStreamSynchronize)(stream as Ptr),
                    }
                };
                assert_eq!(rc, 0);
            };
            // Ordered through the host: clean.
            sim.produce(backend, first, buf, 32, 4).unwrap();
            synchronize(first);
            assert_eq!(sim.consume(backend, second, buf, 32).unwrap(), vec![4; 32]);
            sim.assert_clean();
            synchronize(second);
            // Unordered: one race naming both kernels.
            sim.produce(backend, first, buf, 32, 9).unwrap();
            assert_eq!(sim.consume(backend, second, buf, 32).unwrap(), vec![9; 32]);
            let races = sim.races();
            assert_eq!(races.len(), 1, "{backend:?}: {races:#?}");
            assert!(races[0].contains("produce#") && races[0].contains("consume#"));
            // Memory that is not one allocation: the kernel does not run.
            assert_eq!(sim.consume(backend, second, buf + 16, 32), Err(ILLEGAL_ADDRESS));
            sim.clear_reports();
        }
    }
);
