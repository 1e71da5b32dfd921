//! The CUDA GPU suite: stream ordering, counts, host copies, device from the
//! pointer, and ordered frees — observed on the gpu-sim simulator (or a
//! real driver, where the simulator-only assertions are skipped: these
//! tests need the simulator's inspection API, so they require it).
//!
//! Each test calls `harness::setup`; without the simulator on
//! `LD_LIBRARY_PATH` it re-runs itself in a child process with it.
#![cfg(feature = "gpu")]

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr};
use dlpack_core::ErrorKind;
use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};
use dlpack_core::protocol::{DeviceStream, DlpackRequest, decode_stream, plan_dlpack};
use dlpack_core::sync::{StreamSync, plan_sync};
use dlpack_core::tensor::{Flags, TensorView};
use dlpack_cuda::{CudaOwner, CudaSync, CudaTensorView, ExportLayout, fulfil};
use gpu_sim_inspect::Sim;
use gpu_sim_inspect::harness::{Setup, setup};

macro_rules! sim_test {
    (fn $name:ident($sim:ident) $body:block) => {
        #[test]
        fn $name() {
            let $sim = match setup(stringify!($name)) {
                Setup::Ready(sim) => sim,
                Setup::Delegated => return,
            };
            // The simulator's reset destroyed the events our pools held.
            dlpack_cuda::forget_pooled_events();
            $body
        }
    };
}

const N: usize = 256;

/// A context without cudarc's own event tracking (which would add records
/// and waits of its own), and two non-blocking streams.
fn context(ordinal: usize) -> (Arc<CudaContext>, Arc<CudaStream>, Arc<CudaStream>) {
    let ctx = CudaContext::new(ordinal).expect("context");
    // SAFETY: the tests order every cross-stream use themselves.
    unsafe { ctx.disable_event_tracking() };
    let a = ctx.new_stream().expect("stream a");
    let b = ctx.new_stream().expect("stream b");
    (ctx, a, b)
}

fn raw(stream: &CudaStream) -> u64 {
    stream.cu_stream() as u64
}

fn ptr_of(slice: &CudaSlice<u8>) -> u64 {
    let (ptr, _record) = slice.device_ptr(slice.stream());
    ptr
}

/// A producer "kernel" writing `value` over the buffer on `stream`.
fn produce(sim: &Sim, stream: u64, ptr: u64, value: u8) {
    sim.launch_kernel(stream, "produce", &[], &[(ptr, N)], |k| {
        assert!(k.store(ptr, &[value; N]));
    })
    .expect("producer kernel");
}

/// A consumer "kernel" reading the buffer on `stream`; returns what it saw.
fn consume(sim: &Sim, stream: u64, ptr: u64) -> Vec<u8> {
    let mut seen = Vec::new();
    sim.launch_kernel(stream, "consume", &[(ptr, N)], &[], |k| {
        seen = k.load(ptr, N).expect("readable");
    })
    .expect("consumer kernel");
    seen
}

/// The consumer's `__dlpack__(stream=...)` decoded and carried out for data
/// whose pending work is on `producer`.
fn exchange(stream_arg: Option<i64>, producer: u64) -> Result<(), dlpack_cuda::Error> {
    let device = DLDevice::cuda(0);
    let request = decode_stream(device.device_type, stream_arg)?;
    CudaSync.apply(
        device,
        plan_sync(request, Some(DeviceStream::Handle(producer))),
    )
}

fn assert_clean(sim: &Sim) {
    assert!(sim.races().is_empty(), "races: {:#?}", sim.races());
    assert!(sim.errors().is_empty(), "errors: {:#?}", sim.errors());
}

sim_test!(
    fn ordered_exchange_has_no_race_and_costs_one_record_one_wait(sim) {
        let (_ctx, a, b) = context(0);
        let buf = a.alloc_zeros::<u8>(N).unwrap();
        let ptr = ptr_of(&buf);
        // Warm-up: the pool creates its event.
        produce(&sim, raw(&a), ptr, 1);
        exchange(Some(raw(&b) as i64), raw(&a)).unwrap();
        assert_eq!(consume(&sim, raw(&b), ptr), vec![1; N]);
        dlpack_cuda::raw::order_after(0, raw(&b), raw(&a)).unwrap();
        let created = dlpack_cuda::raw::pool_stats(0).unwrap().created;
        for round in 2..6u8 {
            produce(&sim, raw(&a), ptr, round);
            sim.reset_counters();
            exchange(Some(raw(&b) as i64), raw(&a)).unwrap();
            assert_eq!(sim.call_count("cuEventRecord"), 1, "round {round}");
            assert_eq!(sim.call_count("cuStreamWaitEvent"), 1, "round {round}");
            assert_eq!(sim.call_count("cuEventCreate"), 0, "round {round}");
            assert_eq!(sim.blocking_count(), 0, "round {round}");
            println!("round {round}: {:?}", sim.counters());
            assert_eq!(consume(&sim, raw(&b), ptr), vec![round; N]);
            // b read, a writes next: order a after b too (the consumer's
            // contract before handing the buffer back).
            dlpack_cuda::raw::order_after(0, raw(&b), raw(&a)).unwrap();
        }
        assert_eq!(dlpack_cuda::raw::pool_stats(0).unwrap().created, created);
        assert_clean(&sim);
        drop(buf);
    }
);

sim_test!(
    fn minus_one_and_same_stream_make_no_call_and_minus_one_races(sim) {
        let (_ctx, a, b) = context(0);
        let buf = a.alloc_zeros::<u8>(N).unwrap();
        let ptr = ptr_of(&buf);
        produce(&sim, raw(&a), ptr, 7);
        sim.reset_counters();
        exchange(Some(raw(&a) as i64), raw(&a)).unwrap(); // same stream
        exchange(Some(-1), raw(&a)).unwrap(); // consumer opted out
        let counters = sim.counters();
        assert!(counters.is_empty(), "no driver call at all: {counters:?}");
        // Same stream: ordered by the stream itself.
        assert_eq!(consume(&sim, raw(&a), ptr), vec![7; N]);
        assert_clean(&sim);
        // -1, consumer on another stream: the simulator sees the race.
        consume(&sim, raw(&b), ptr);
        let races = sim.races();
        assert_eq!(races.len(), 1, "{races:#?}");
        assert!(races[0].contains("produce#") && races[0].contains("consume#"), "{}", races[0]);
        sim.clear_reports();
        drop(buf);
    }
);

sim_test!(
    fn legacy_and_per_thread_default_streams(sim) {
        let (ctx, a, _b) = context(0);
        let buf = a.alloc_zeros::<u8>(N).unwrap();
        let ptr = ptr_of(&buf);
        assert_eq!(dlpack_cuda::consumer_stream_arg(&ctx.default_stream()), 1);
        assert_eq!(dlpack_cuda::consumer_stream_arg(&ctx.per_thread_stream()), 2);
        assert_eq!(dlpack_cuda::consumer_stream_arg(&a), raw(&a) as i64);
        // The consumer on the legacy default stream (1), then on the
        // per-thread default stream (2); the producer on non-blocking a.
        for (arg, consumer_stream) in [(1i64, 1u64), (2, 2)] {
            produce(&sim, raw(&a), ptr, arg as u8);
            sim.reset_counters();
            exchange(Some(arg), raw(&a)).unwrap();
            assert_eq!(sim.call_count("cuEventRecord"), 1);
            assert_eq!(sim.call_count("cuStreamWaitEvent"), 1);
            assert_eq!(consume(&sim, consumer_stream, ptr), vec![arg as u8; N]);
            dlpack_cuda::raw::order_after(0, consumer_stream, raw(&a)).unwrap();
        }
        // None means the legacy default stream too.
        produce(&sim, raw(&a), ptr, 9);
        exchange(None, raw(&a)).unwrap();
        assert_eq!(consume(&sim, 0, ptr), vec![9; N]);
        dlpack_cuda::raw::order_after(0, 0, raw(&a)).unwrap();
        // The producer on the legacy default stream (cudarc's NULL stream).
        let legacy = ctx.default_stream();
        produce(&sim, 0, ptr, 10);
        sim.reset_counters();
        dlpack_cuda::CudaSync.order_streams(&legacy, &a).unwrap();
        assert_eq!(sim.call_count("cuEventRecord"), 1);
        assert_eq!(consume(&sim, raw(&a), ptr), vec![10; N]);
        assert_clean(&sim);
        // Unordered per-thread consumer: a race.
        produce(&sim, raw(&a), ptr, 11);
        exchange(Some(-1), raw(&a)).unwrap();
        consume(&sim, 2, ptr);
        assert_eq!(sim.races().len(), 1, "{:#?}", sim.races());
        sim.clear_reports();
        drop(buf);
    }
);

sim_test!(
    fn stream_zero_is_refused_on_cuda(sim) {
        let (_ctx, a, _b) = context(0);
        let err = exchange(Some(0), raw(&a)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Value, "{err}");
        assert!(err.to_string().contains("stream=0"), "{err}");
        let request = DlpackRequest {
            stream: Some(0),
            max_version: Some((1, 3)),
            ..Default::default()
        };
        let err = plan_dlpack(DLDevice::cuda(0), false, &request).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Value);
        assert!(sim.counters().keys().all(|k| k != "cuEventRecord"));
    }
);

sim_test!(
    fn dl_device_cpu_copies_to_the_host(sim) {
        let (_ctx, a, _b) = context(0);
        let slice = a.alloc_zeros::<u8>(N).unwrap();
        let ptr = ptr_of(&slice);
        sim.launch_kernel(raw(&a), "iota", &[], &[(ptr, N)], |k| {
            let bytes: Vec<u8> = (0..N).map(|i| i as u8).collect();
            assert!(k.store(ptr, &bytes));
        })
        .unwrap();
        let request = DlpackRequest {
            max_version: Some((1, 3)),
            dl_device: Some(DLDevice::cpu()),
            ..Default::default()
        };
        let plan = plan_dlpack(DLDevice::cuda(0), false, &request).unwrap();
        sim.reset_counters();
        let tensor = fulfil(CudaOwner::new(slice), ExportLayout::shape(&[16, 16]), &plan).unwrap();
        assert_eq!(sim.call_count("cuMemcpyDtoHAsync_v2"), 1);
        assert_eq!(sim.call_count("cuStreamSynchronize"), 1);
        assert_eq!(sim.blocking_count(), 1, "the host copy is the one blocking call");
        let view = tensor.view();
        assert_eq!(view.device(), DLDevice::cpu());
        assert!(tensor.flags().is_copied() && !tensor.flags().is_read_only());
        assert_eq!(view.shape(), &[16, 16]);
        let expected: Vec<u8> = (0..N).map(|i| i as u8).collect();
        assert_eq!(view.as_slice::<u8>().unwrap(), &expected[..]);
        assert_clean(&sim);
        // A strided device tensor (every other row, received from elsewhere)
        // copied to the host through dlpack_cuda::copy_to_host.
        let buf = a.alloc_zeros::<u8>(N).unwrap();
        let p = ptr_of(&buf);
        sim.launch_kernel(raw(&a), "iota", &[], &[(p, N)], |k| {
            let bytes: Vec<u8> = (0..N).map(|i| (255 - i) as u8).collect();
            assert!(k.store(p, &bytes));
        })
        .unwrap();
        let (mut shape, mut strides) = ([8i64, 16], [32i64, 1]);
        let raw_tensor = DLTensor {
            data: std::ptr::with_exposed_provenance_mut(p as usize),
            device: DLDevice::cuda(0),
            ndim: 2,
            dtype: DLDataType::U8,
            shape: shape.as_mut_ptr(),
            strides: strides.as_mut_ptr(),
            byte_offset: 0,
        };
        // SAFETY: shape and strides outlive the view; the data is device memory.
        let view = unsafe { TensorView::from_raw(&raw_tensor, Flags::from_bits(0)) }.unwrap();
        // SAFETY: `buf` is live and `a` is its stream.
        let host = unsafe { dlpack_cuda::copy_to_host(&view, DeviceStream::Handle(raw(&a))) }.unwrap();
        let host_view = host.view();
        assert!(host.flags().is_copied());
        assert_eq!(host_view.strides().collect::<Vec<_>>(), [32, 1]);
        let first = host_view.data_ptr();
        // SAFETY: row 7, column 15 is inside the copy (strided layout).
        let last = unsafe { *first.add(7 * 32 + 15) };
        assert_eq!(last, (255 - (7 * 32 + 15)) as u8);
        assert_clean(&sim);
        drop(buf);
    }
);

sim_test!(
    fn device_comes_from_the_pointer(sim) {
        assert!(sim.device_count() >= 2);
        let (_ctx1, a1, _b1) = context(1);
        let slice = a1.alloc_zeros::<f32>(64).unwrap();
        let ptr = {
            let (ptr, _record) = slice.device_ptr(&a1);
            ptr
        };
        // The producer claims device 0.
        let mut shape = [64i64];
        let raw_tensor = DLTensor {
            data: std::ptr::with_exposed_provenance_mut(ptr as usize),
            device: DLDevice::cuda(0),
            ndim: 1,
            dtype: DLDataType::F32,
            shape: shape.as_mut_ptr(),
            strides: std::ptr::null_mut(),
            byte_offset: 0,
        };
        // SAFETY: shape outlives the view.
        let view = unsafe { TensorView::from_raw(&raw_tensor, Flags::from_bits(0)) }.unwrap();
        let cuda = CudaTensorView::<f32>::new(view).unwrap();
        assert_eq!(cuda.device(), DLDevice::cuda(1));
        assert_eq!(cuda.claimed_device(), DLDevice::cuda(0));
        assert_eq!(cuda.memory(), dlpack_cuda::MemoryKind::Device);
        assert_eq!(cuda.len(), 64);
        assert_eq!(cuda.device_ptr(), ptr);
        assert!(CudaTensorView::<i32>::new(view).is_err(), "dtype is checked");
        assert_eq!(cuda.to_vec(DeviceStream::Handle(raw(&a1))).unwrap(), vec![0.0; 64]);
        // Export: device_id from the context's ordinal.
        let tensor = dlpack_core::export::Export::new(CudaOwner::new(slice))
            .versioned()
            .unwrap();
        assert_eq!(tensor.view().device(), DLDevice::cuda(1));
        // Managed and pinned memory are recognised.
        let info = dlpack_cuda::raw::pointer_info(ptr).unwrap();
        assert_eq!((info.device_ordinal, info.memory), (1, dlpack_cuda::MemoryKind::Device));
        // SAFETY: symbol signatures from cuda.h.
        let alloc_managed: unsafe extern "C" fn(*mut u64, usize, u32) -> u32 =
            unsafe { sim.raw_symbol("cuMemAllocManaged") }.unwrap();
        let mut managed = 0u64;
        // SAFETY: valid out-pointer (the context of device 1 is current).
        assert_eq!(unsafe { alloc_managed(&mut managed, 64, 1) }, 0);
        let info = dlpack_cuda::raw::pointer_info(managed).unwrap();
        assert_eq!((info.device_ordinal, info.memory), (1, dlpack_cuda::MemoryKind::Managed));
        assert!(matches!(
            dlpack_cuda::raw::pointer_info(0x10),
            Err(dlpack_cuda::Error::UnknownPointer { .. })
        ));
        let _ = sim.errors();
        drop(tensor);
        assert!(sim.races().is_empty(), "{:#?}", sim.races());
    }
);

/// Exports a buffer written on `a` to a consumer on `b` with `stream=-1`,
/// lets the consumer read on `b`, then releases the
/// tensor (the deleter frees the buffer).
fn export_unordered_release(sim: &Sim, pools: bool) {
    sim.set_memory_pools(pools);
    let (_ctx, a, b) = context(0);
    let slice = a.alloc_zeros::<u8>(N).unwrap();
    let ptr = ptr_of(&slice);
    produce(sim, raw(&a), ptr, 3);
    let request = DlpackRequest {
        stream: Some(-1),
        max_version: Some((1, 3)),
        ..Default::default()
    };
    let plan = plan_dlpack(DLDevice::cuda(0), false, &request).unwrap();
    let tensor = fulfil(CudaOwner::new(slice), ExportLayout::default(), &plan).unwrap();
    let view = tensor.view();
    assert_eq!(view.device(), DLDevice::cuda(0));
    assert_eq!(view.data_ptr() as u64, ptr);
    // With -1 the consumer orders its own read (the producer did nothing),
    // but nothing orders the free after that read.
    dlpack_cuda::raw::order_after(0, raw(&a), raw(&b)).unwrap();
    assert_eq!(consume(sim, raw(&b), ptr), vec![3; N]);
    sim.reset_counters();
    drop(tensor); // the consumer's deleter
    if pools {
        assert_eq!(sim.call_count("cuMemFreeAsync"), 1);
        assert_eq!(sim.blocking_count(), 0, "cuMemFreeAsync does not block");
    } else {
        assert_eq!(sim.call_count("cuMemFree_v2"), 1);
    }
    assert_eq!(sim.live_allocations(), 0);
}

sim_test!(
    fn free_waits_for_the_consumers_stream(sim) {
        for pools in [true, false] {
            sim.reset();
            dlpack_cuda::forget_pooled_events();
            sim.set_memory_pools(pools);
            let (_ctx, a, b) = context(0);
            let slice = a.alloc_zeros::<u8>(N).unwrap();
            let ptr = ptr_of(&slice);
            produce(&sim, raw(&a), ptr, 3);
            let request = DlpackRequest {
                stream: Some(raw(&b) as i64),
                max_version: Some((1, 3)),
                ..Default::default()
            };
            let plan = plan_dlpack(DLDevice::cuda(0), false, &request).unwrap();
            let tensor = fulfil(CudaOwner::new(slice), ExportLayout::default(), &plan).unwrap();
            assert_eq!(consume(&sim, raw(&b), ptr), vec![3; N]);
            sim.reset_counters();
            drop(tensor);
            assert_eq!(sim.call_count("cuEventRecord"), 1, "b recorded for the free");
            assert_eq!(sim.call_count("cuStreamWaitEvent"), 1, "a waits for b");
            if pools {
                assert_eq!(sim.call_count("cuMemFreeAsync"), 1);
                assert_eq!(sim.blocking_count(), 0);
            } else {
                assert_eq!(sim.call_count("cuMemFree_v2"), 1);
            }
            assert_eq!(sim.live_allocations(), 0);
            assert_clean(&sim);
        }
    }
);

sim_test!(
    fn unordered_free_is_a_use_after_free_hazard(sim) {
        for pools in [true, false] {
            sim.reset();
            dlpack_cuda::forget_pooled_events();
            export_unordered_release(&sim, pools);
            let races = sim.races();
            assert_eq!(races.len(), 1, "pools={pools}: {races:#?}");
            assert!(races[0].contains("USE-AFTER-FREE") && races[0].contains("consume#"), "{}", races[0]);
        }
    }
);

/// Makes a stream of a context.
type MakeStream = fn(&Arc<CudaContext>) -> Arc<CudaStream>;

/// Exports a buffer written on `producer` (the context's non-blocking
/// stream `a` when `None`) to a consumer that passed `stream_arg` and reads
/// on `consumer` (a raw handle as the consumer's thread names it), then
/// releases the tensor on another thread.
fn release_on_another_thread(
    sim: &Sim,
    producer: Option<MakeStream>,
    stream_arg: i64,
    consumer: u64,
    value: u8,
) {
    let (ctx, a, _b) = context(0);
    let stream = producer.map_or(a, |make| make(&ctx));
    let slice = stream.alloc_zeros::<u8>(N).unwrap();
    let ptr = ptr_of(&slice);
    produce(sim, raw(&stream), ptr, value);
    let request = DlpackRequest {
        stream: Some(stream_arg),
        max_version: Some((1, 3)),
        ..Default::default()
    };
    let plan = plan_dlpack(DLDevice::cuda(0), false, &request).unwrap();
    let tensor = fulfil(CudaOwner::new(slice), ExportLayout::default(), &plan).unwrap();
    assert_eq!(consume(sim, consumer, ptr), vec![value; N]);
    // Deleters may run on any thread: the last reference may be dropped by
    // a worker, a garbage collector or another Python thread.
    std::thread::spawn(move || drop(tensor)).join().unwrap();
    assert_eq!(
        sim.live_allocations(),
        0,
        "{stream_arg} {:?} {:?}",
        sim.counters(),
        sim.errors()
    );
}

sim_test!(
    fn per_thread_consumer_released_on_another_thread(sim) {
        let per_thread: MakeStream = |ctx| ctx.per_thread_stream();
        for pools in [true, false] {
            sim.reset();
            dlpack_cuda::forget_pooled_events();
            sim.set_memory_pools(pools);
            // The consumer works on its per-thread default stream (2): the
            // free must wait for *this* thread's per-thread stream, whichever
            // thread runs the deleter.
            release_on_another_thread(&sim, None, 2, 2, 4);
            assert_clean(&sim);
            // The legacy default stream (1) means the same stream on every
            // thread of the context.
            release_on_another_thread(&sim, None, 1, 1, 5);
            assert_clean(&sim);
            // The buffer itself on this thread's per-thread stream, and the
            // consumer on it too (no exchange sync): cudarc frees on "2" of
            // the releasing thread, which must still wait for this thread's.
            release_on_another_thread(&sim, Some(per_thread), 2, 2, 6);
            assert_clean(&sim);
        }
    }
);

/// Driver calls of one warm export of a cudarc buffer to a consumer on
/// another stream (`fulfil` with `stream=b`), with cudarc's event tracking
/// on (its default, `CudaContext::new` as in `CudaOwner`'s docs) or off:
/// `(records, waits, creates, blocking)` for making the owner and for the
/// exchange.
fn export_counts(sim: &Sim, tracking: bool) -> [(u64, u64, u64, u64); 2] {
    let ctx = CudaContext::new(0).expect("context");
    if !tracking {
        // SAFETY: this test orders every cross-stream use itself.
        unsafe { ctx.disable_event_tracking() };
    }
    let (a, b) = (ctx.new_stream().unwrap(), ctx.new_stream().unwrap());
    assert_eq!(ctx.is_managing_stream_synchronization(), tracking);
    let request = DlpackRequest {
        stream: Some(raw(&b) as i64),
        max_version: Some((1, 3)),
        ..Default::default()
    };
    let plan = plan_dlpack(DLDevice::cuda(0), false, &request).unwrap();
    let counts = |sim: &Sim| {
        (
            sim.call_count("cuEventRecord") + sim.call_count("cuEventRecordWithFlags"),
            sim.call_count("cuStreamWaitEvent"),
            sim.call_count("cuEventCreate"),
            sim.blocking_count(),
        )
    };
    let mut out = [(0, 0, 0, 0); 2];
    for round in 0..3u8 {
        let slice = a.alloc_zeros::<u8>(N).unwrap();
        let ptr = {
            let (ptr, _record) = slice.device_ptr(&a);
            ptr
        };
        produce(sim, raw(&a), ptr, round);
        sim.reset_counters();
        let owner = CudaOwner::new(slice);
        let made = counts(sim);
        sim.reset_counters();
        let tensor = fulfil(owner, ExportLayout::default(), &plan).unwrap();
        let exchange = counts(sim);
        assert_eq!(consume(sim, raw(&b), ptr), vec![round; N]);
        drop(tensor);
        if round > 0 {
            out = [made, exchange]; // warm: the event pool is filled
        }
    }
    assert_clean(sim);
    out
}

sim_test!(
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

sim_test!(
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
        let ptr = ptr_of(&slice);
        produce(&sim, raw(&a), ptr, 12);
        let request = DlpackRequest {
            stream: Some(raw(&b) as i64),
            max_version: Some((1, 3)),
            ..Default::default()
        };
        let plan = plan_dlpack(DLDevice::cuda(0), false, &request).unwrap();
        sim.reset_counters();
        let tensor = fulfil(CudaOwner::new(slice), ExportLayout::default(), &plan).unwrap();
        assert_eq!(sim.call_count("cuEventRecord"), 1);
        assert_eq!(sim.call_count("cuStreamWaitEvent"), 1);
        assert_eq!(consume(&sim, raw(&b), ptr), vec![12; N]);
        std::thread::spawn(move || drop(tensor)).join().unwrap();
        assert_eq!(sim.live_allocations(), 0);
        assert_clean(&sim);
    }
);
