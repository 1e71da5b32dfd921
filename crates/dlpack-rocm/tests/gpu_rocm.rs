//! The ROCm GPU suite on the gpu-sim simulator, through the run-time loader
//! (or hip-sys's linked runtime with feature `hip-sys`, when the
//! simulator's `libamdhip64.so.5` comes first on `LD_LIBRARY_PATH`).
#![cfg(feature = "gpu")]

use dlpack_core::ErrorKind;
use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};
use dlpack_core::protocol::{DeviceStream, DlpackRequest, decode_stream, plan_dlpack};
use dlpack_core::sync::{StreamSync, plan_sync};
use dlpack_core::tensor::{Flags, TensorView};
use dlpack_rocm::raw;
use dlpack_rocm::{ExportLayout, HipBuffer, RocmSync, RocmTensorView, fulfil};
use gpu_sim_inspect::harness::{Setup, setup};
use gpu_sim_inspect::{Backend, Sim};

macro_rules! sim_test {
    (fn $name:ident($sim:ident) $body:block) => {
        #[test]
        fn $name() {
            let $sim = match setup(stringify!($name)) {
                Setup::Ready(sim) => sim,
                Setup::Delegated => return,
            };
            dlpack_rocm::forget_pooled_events();
            $body
        }
    };
}

const N: usize = 128;

fn produce(sim: &Sim, stream: u64, ptr: u64, value: u8) {
    sim.launch_kernel_on(Backend::Hip, stream, "produce", &[], &[(ptr, N)], |k| {
        assert!(k.store(ptr, &[value; N]));
    })
    .expect("producer kernel");
}

fn consume(sim: &Sim, stream: u64, ptr: u64) -> Vec<u8> {
    let mut seen = Vec::new();
    sim.launch_kernel_on(Backend::Hip, stream, "consume", &[(ptr, N)], &[], |k| {
        seen = k.load(ptr, N).expect("readable");
    })
    .expect("consumer kernel");
    seen
}

fn exchange(stream_arg: Option<i64>, producer: u64) -> Result<(), dlpack_rocm::Error> {
    let device = DLDevice::rocm(0);
    let request = decode_stream(device.device_type, stream_arg)?;
    RocmSync.apply(
        device,
        plan_sync(request, Some(dlpack_rocm::device_stream(producer))),
    )
}

fn assert_clean(sim: &Sim) {
    assert!(sim.races().is_empty(), "races: {:#?}", sim.races());
    assert!(sim.errors().is_empty(), "errors: {:#?}", sim.errors());
}

sim_test!(
    fn ordered_exchange_has_no_race_and_costs_one_record_one_wait(sim) {
        let (a, b) = (raw::stream_create(0).unwrap(), raw::stream_create(0).unwrap());
        let buf = HipBuffer::<u8>::alloc(0, a, N).unwrap();
        let ptr = buf.device_ptr();
        produce(&sim, a, ptr, 1);
        exchange(Some(b as i64), a).unwrap(); // warm-up
        assert_eq!(consume(&sim, b, ptr), vec![1; N]);
        raw::order_after(0, b, a).unwrap();
        let created = raw::pool_stats(0).created;
        for round in 2..6u8 {
            produce(&sim, a, ptr, round);
            sim.reset_counters();
            exchange(Some(b as i64), a).unwrap();
            println!("round {round}: {:?}", sim.counters());
            assert_eq!(sim.call_count("hipEventRecord"), 1);
            assert_eq!(sim.call_count("hipStreamWaitEvent"), 1);
            assert_eq!(sim.call_count("hipEventCreateWithFlags"), 0);
            assert_eq!(sim.blocking_count(), 0);
            assert_eq!(consume(&sim, b, ptr), vec![round; N]);
            raw::order_after(0, b, a).unwrap();
        }
        assert_eq!(raw::pool_stats(0).created, created);
        assert_clean(&sim);
        // Without an order: a race.
        produce(&sim, a, ptr, 9);
        sim.reset_counters();
        exchange(Some(-1), a).unwrap();
        exchange(Some(a as i64), a).unwrap();
        assert!(sim.counters().is_empty(), "{:?}", sim.counters());
        consume(&sim, b, ptr);
        assert_eq!(sim.races().len(), 1, "{:#?}", sim.races());
        sim.clear_reports();
        raw::order_after(0, b, a).unwrap();
        drop(buf);
    }
);

sim_test!(
    fn default_stream_and_refused_values(sim) {
        let a = raw::stream_create(0).unwrap();
        let buf = HipBuffer::<u8>::alloc(0, a, N).unwrap();
        let ptr = buf.device_ptr();
        for arg in [None, Some(0)] {
            produce(&sim, a, ptr, 4);
            sim.reset_counters();
            exchange(arg, a).unwrap();
            assert_eq!(sim.call_count("hipEventRecord"), 1);
            assert_eq!(consume(&sim, 0, ptr), vec![4; N]);
            raw::order_after(0, 0, a).unwrap();
        }
        assert_clean(&sim);
        for arg in [1, 2] {
            let err = exchange(Some(arg), a).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Value, "{err}");
        }
        assert_eq!(raw::consumer_stream_arg(0), Some(0));
        assert_eq!(raw::consumer_stream_arg(a), Some(a as i64));
        drop(buf);
    }
);

sim_test!(
    fn dl_device_cpu_copies_to_the_host(sim) {
        let a = raw::stream_create(0).unwrap();
        let buf = HipBuffer::<u8>::alloc(0, a, N).unwrap();
        let ptr = buf.device_ptr();
        sim.launch_kernel_on(Backend::Hip, a, "iota", &[], &[(ptr, N)], |k| {
            assert!(k.store(ptr, &(0..N as u8).collect::<Vec<_>>()));
        })
        .unwrap();
        let request = DlpackRequest {
            max_version: Some((1, 3)),
            dl_device: Some(DLDevice::cpu()),
            ..Default::default()
        };
        let plan = plan_dlpack(DLDevice::rocm(0), false, &request).unwrap();
        sim.reset_counters();
        let tensor = fulfil(buf, ExportLayout::shape(&[8, 16]), &plan).unwrap();
        assert_eq!(sim.call_count("hipMemcpyAsync"), 1);
        let view = tensor.view();
        assert_eq!(view.device(), DLDevice::cpu());
        assert!(tensor.flags().is_copied());
        assert_eq!(view.as_slice::<u8>().unwrap(), &(0..N as u8).collect::<Vec<_>>()[..]);
        assert_clean(&sim);
    }
);

sim_test!(
    fn device_comes_from_the_pointer(sim) {
        let a1 = raw::stream_create(1).unwrap();
        let buf = HipBuffer::<f32>::alloc(1, a1, 32).unwrap();
        let mut shape = [32i64];
        let raw_tensor = DLTensor {
            data: std::ptr::with_exposed_provenance_mut(buf.device_ptr() as usize),
            device: DLDevice::rocm(0), // the producer claims device 0
            ndim: 1,
            dtype: DLDataType::F32,
            shape: shape.as_mut_ptr(),
            strides: std::ptr::null_mut(),
            byte_offset: 0,
        };
        // SAFETY: shape outlives the view.
        let view = unsafe { TensorView::from_raw(&raw_tensor, Flags::from_bits(0)) }.unwrap();
        let rocm = RocmTensorView::<f32>::new(view).unwrap();
        assert_eq!(rocm.device(), DLDevice::rocm(1));
        assert_eq!(rocm.claimed_device(), DLDevice::rocm(0));
        assert_eq!(rocm.memory(), dlpack_rocm::MemoryKind::Device);
        // SAFETY: the buffer is live; a1 is its stream.
        unsafe { raw::memset_async(1, buf.device_ptr(), 0, 32 * 4, a1) }.unwrap();
        assert_eq!(rocm.to_vec(DeviceStream::Handle(a1)).unwrap(), vec![0.0; 32]);
        let tensor = dlpack_core::export::Export::new(buf).versioned().unwrap();
        assert_eq!(tensor.view().device(), DLDevice::rocm(1));
        drop(tensor);
        assert_clean(&sim);
    }
);

/// Exports a buffer written on `a` to a consumer on `b`, lets it read on
/// `b`, and releases the tensor. With `ordered`, the consumer passes
/// `stream=b`; otherwise `-1` (and orders its own read).
fn export_consume_release(sim: &Sim, ordered: bool) {
    let (a, b) = (
        raw::stream_create(0).unwrap(),
        raw::stream_create(0).unwrap(),
    );
    let buf = HipBuffer::<u8>::alloc(0, a, N).unwrap();
    let ptr = buf.device_ptr();
    produce(sim, a, ptr, 5);
    let request = DlpackRequest {
        stream: Some(if ordered { b as i64 } else { -1 }),
        max_version: Some((1, 3)),
        ..Default::default()
    };
    let plan = plan_dlpack(DLDevice::rocm(0), false, &request).unwrap();
    let tensor = fulfil(buf, ExportLayout::default(), &plan).unwrap();
    if !ordered {
        raw::order_after(0, a, b).unwrap();
    }
    assert_eq!(consume(sim, b, ptr), vec![5; N]);
    sim.reset_counters();
    drop(tensor);
    assert_eq!(sim.call_count("hipFree"), 1);
    assert_eq!(sim.live_allocations(), 0);
}

sim_test!(
    fn free_waits_for_the_consumers_stream(sim) {
        export_consume_release(&sim, true);
        assert_eq!(sim.call_count("hipStreamWaitEvent"), 1);
        assert_clean(&sim);
    }
);

sim_test!(
    fn unordered_free_is_a_use_after_free_hazard(sim) {
        export_consume_release(&sim, false);
        let races = sim.races();
        assert_eq!(races.len(), 1, "{races:#?}");
        assert!(races[0].contains("USE-AFTER-FREE") && races[0].contains("consume#"), "{}", races[0]);
    }
);

sim_test!(
    fn per_thread_buffer_released_on_another_thread(sim) {
        // The buffer's work is on this thread's per-thread default stream
        // (hipStreamPerThread, 2); the consumer passes its stream b. After
        // the export the producer reads the buffer again on its stream (as
        // it may), and the tensor is released on another thread: the free
        // must wait for *this* thread's per-thread stream.
        let b = raw::stream_create(0).unwrap();
        let buf = HipBuffer::<u8>::alloc(0, 2, N).unwrap();
        let ptr = buf.device_ptr();
        produce(&sim, 2, ptr, 8);
        let request = DlpackRequest {
            stream: Some(b as i64),
            max_version: Some((1, 3)),
            ..Default::default()
        };
        let plan = plan_dlpack(DLDevice::rocm(0), false, &request).unwrap();
        let tensor = fulfil(buf, ExportLayout::default(), &plan).unwrap();
        assert_eq!(consume(&sim, b, ptr), vec![8; N]);
        assert_eq!(consume(&sim, 2, ptr), vec![8; N]);
        std::thread::spawn(move || drop(tensor)).join().unwrap();
        assert_eq!(sim.live_allocations(), 0);
        assert_clean(&sim);
    }
);
