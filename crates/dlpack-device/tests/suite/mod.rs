//! The GPU suite of the device runtime, written once over [`Backend`] and
//! run once per backend: `crates/dlpack-cuda/tests/gpu_cuda.rs` and
//! `crates/dlpack-rocm/tests/gpu_rocm.rs` include this module and name
//! their tests with [`suite_tests!`]. Stream ordering, driver-call counts,
//! host copies, the device from the pointer and ordered frees, observed on
//! the gpu-sim simulator. Each test is a gpu-sim-inspect `sim_test!`
//! (without the simulator on `LD_LIBRARY_PATH` it re-runs itself in a
//! child process with it), and the kernels and `assert_clean` are
//! gpu-sim-inspect's.
#![allow(dead_code)]

pub mod driver;

use dlpack_core::ErrorKind;
use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};
use dlpack_core::protocol::{DlpackRequest, StreamRequest, decode_stream, plan_dlpack};
use dlpack_core::sync::{StreamSync, plan_sync};
use dlpack_core::tensor::{Flags, TensorView};
use dlpack_device::{
    Bound, DeviceMemory, DeviceSync, DeviceTensorView, Driver, Error, ExportLayout, MemoryKind,
    Owner, Raw, fulfil,
};
use gpu_sim_inspect::{Backend as SimBackend, Sim};

/// Which stream a test's memory is made on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum On {
    /// The context's first created stream (`a`).
    A,
    /// The calling thread's per-thread default stream (`2`).
    PerThread,
}

/// What the suite needs of a backend beyond [`Driver`]: how to make
/// streams and memory the way its users do, and the names the simulator
/// counts its calls under.
pub trait Backend {
    /// The driver.
    type D: Driver;
    /// Memory of `u8`s the backend's users export.
    type Mem: DeviceMemory<Driver = Self::D, Elem = u8>;
    /// What keeps a context and its streams alive.
    type Ctx;
    /// The simulator's ABI for kernels.
    const SIM: SimBackend;
    /// The driver's event record, stream wait, event creation, copy to the
    /// host and stream synchronisation.
    const RECORD: &'static str;
    const WAIT: &'static str;
    const CREATE: &'static str;
    const COPY_TO_HOST: &'static str;
    const SYNC: &'static str;
    /// `__dlpack__(stream=...)` values naming a default stream, with the raw
    /// stream the consumer then works on.
    const DEFAULT_ARGS: &'static [(i64, u64)];
    /// `__dlpack__(stream=...)` values the standard refuses on this device.
    const REFUSED_ARGS: &'static [i64];
    /// Raw consumer streams and the `stream` argument each passes.
    const CONSUMER_ARGS: &'static [(u64, Option<i64>)];

    /// Device 0 as the driver-only group uses it (the backend's defaults,
    /// e.g. cudarc's event tracking on) and two created streams.
    fn driver_context() -> (Self::Ctx, u64, u64) {
        Self::context(0)
    }
    /// Checks, at the end of a driver-only test, that every call the
    /// memory made succeeded (where the backend records failures).
    fn check(ctx: &Self::Ctx) {
        let _ = ctx;
    }
    /// Device `ordinal` (with no context of its own) and two created
    /// streams `a` and `b` of it, with no ordering added behind the
    /// tests' back.
    fn context(ordinal: usize) -> (Self::Ctx, u64, u64);
    /// `len` bytes of memory on `on`.
    fn alloc(ctx: &Self::Ctx, on: On, len: usize) -> Self::Mem;
    /// The call that frees exported memory (with the simulator's memory
    /// pools on or off), and how many host-blocking calls the free makes
    /// (a stream synchronisation and the free itself, where the free is not
    /// stream-ordered).
    fn free_call(pools: bool) -> (&'static str, u64);
    /// Managed memory of `len` bytes on the current device, if the backend
    /// has it.
    fn alloc_managed(sim: &Sim, len: usize) -> Option<u64>;
    /// The pool of the drivers' events is invalid after the simulator's
    /// reset.
    fn forget() {
        dlpack_device::forget_pooled_events();
    }
}

/// Names the suite's tests for backend `$b`, each a `#[test]` that sets up
/// the simulator (or re-runs itself with it) and runs the suite's function
/// of the same name.
#[macro_export]
macro_rules! suite_tests {
    ($b:ty; $($name:ident),* $(,)?) => {$(
        gpu_sim_inspect::sim_test!(
            fn $name(sim) after_reset { <$b as suite::Backend>::forget(); } {
                suite::$name::<$b>(&sim);
            }
        );
    )*};
}

/// Every test of the suite (for [`suite_tests!`]).
#[macro_export]
macro_rules! all_suite_tests {
    ($b:ty) => {
        $crate::suite_tests!($b;
            ordered_exchange_has_no_race_and_costs_one_record_one_wait,
            minus_one_and_same_stream_make_no_call_and_minus_one_races,
            default_streams_and_refused_values,
            dl_device_cpu_copies_to_the_host,
            device_comes_from_the_pointer,
            free_waits_for_the_consumers_stream,
            unordered_free_is_a_use_after_free_hazard,
            per_thread_streams_released_on_another_thread,
            warm_export_costs_one_record_one_wait,
            copy_true_copies_on_the_device,
            shared_owner_frees_after_every_consumer,
            host_wait_orders_host_reads_of_managed_memory,
        );
    };
}

pub const N: usize = 256;

fn device<B: Backend>(ordinal: i32) -> DLDevice {
    DLDevice::new(B::D::DEVICE_TYPES.device, ordinal)
}

/// A producer "kernel" writing `value` over the test's `N` bytes on `stream`.
pub fn produce<B: Backend>(sim: &Sim, stream: u64, ptr: u64, value: u8) {
    sim.produce(B::SIM, stream, ptr, N, value)
        .expect("producer kernel");
}

/// A consumer "kernel" reading the test's `N` bytes on `stream`; returns what it saw.
pub fn consume<B: Backend>(sim: &Sim, stream: u64, ptr: u64) -> Vec<u8> {
    sim.consume(B::SIM, stream, ptr, N)
        .expect("consumer kernel")
}

/// The consumer's `__dlpack__(stream=...)` decoded and carried out for data
/// whose pending work is on `producer`.
pub fn exchange<B: Backend>(stream_arg: Option<i64>, producer: u64) -> Result<(), Error> {
    let device = device::<B>(0);
    let request = decode_stream(device.device_type, stream_arg)?;
    DeviceSync::<B::D>::new().apply(
        device,
        plan_sync(request, Some(Raw::<B::D>::device_stream(producer))),
    )
}

fn request(stream: Option<i64>) -> DlpackRequest {
    DlpackRequest {
        stream,
        max_version: Some((1, 3)),
        ..Default::default()
    }
}

pub fn ordered_exchange_has_no_race_and_costs_one_record_one_wait<B: Backend>(sim: &Sim) {
    let (ctx, a, b) = B::context(0);
    let buf = B::alloc(&ctx, On::A, N);
    let ptr = buf.base();
    // Warm-up: the pool creates its event.
    produce::<B>(sim, a, ptr, 1);
    exchange::<B>(Some(b as i64), a).unwrap();
    assert_eq!(consume::<B>(sim, b, ptr), vec![1; N]);
    Raw::<B::D>::order_after(0, b, a).unwrap();
    let created = Raw::<B::D>::pool_stats(0).unwrap().created;
    for round in 2..6u8 {
        produce::<B>(sim, a, ptr, round);
        sim.reset_counters();
        exchange::<B>(Some(b as i64), a).unwrap();
        println!("round {round}: {:?}", sim.counters());
        assert_eq!(sim.call_count(B::RECORD), 1, "round {round}");
        assert_eq!(sim.call_count(B::WAIT), 1, "round {round}");
        assert_eq!(sim.call_count(B::CREATE), 0, "round {round}");
        assert_eq!(sim.blocking_count(), 0, "round {round}");
        assert_eq!(consume::<B>(sim, b, ptr), vec![round; N]);
        // b read, a writes next: order a after b too (the consumer's
        // contract before handing the buffer back).
        Raw::<B::D>::order_after(0, b, a).unwrap();
    }
    assert_eq!(Raw::<B::D>::pool_stats(0).unwrap().created, created);
    sim.assert_clean();
    drop(buf);
}

pub fn minus_one_and_same_stream_make_no_call_and_minus_one_races<B: Backend>(sim: &Sim) {
    let (ctx, a, b) = B::context(0);
    let buf = B::alloc(&ctx, On::A, N);
    let ptr = buf.base();
    produce::<B>(sim, a, ptr, 7);
    sim.reset_counters();
    exchange::<B>(Some(a as i64), a).unwrap(); // same stream
    exchange::<B>(Some(-1), a).unwrap(); // consumer opted out
    let counters = sim.counters();
    assert!(counters.is_empty(), "no driver call at all: {counters:?}");
    // Same stream: ordered by the stream itself.
    assert_eq!(consume::<B>(sim, a, ptr), vec![7; N]);
    sim.assert_clean();
    // -1, consumer on another stream: the simulator sees the race.
    consume::<B>(sim, b, ptr);
    let races = sim.races();
    assert_eq!(races.len(), 1, "{races:#?}");
    assert!(
        races[0].contains("produce#") && races[0].contains("consume#"),
        "{}",
        races[0]
    );
    sim.clear_reports();
    Raw::<B::D>::order_after(0, b, a).unwrap();
    drop(buf);
}

pub fn default_streams_and_refused_values<B: Backend>(sim: &Sim) {
    let (ctx, a, _b) = B::context(0);
    let buf = B::alloc(&ctx, On::A, N);
    let ptr = buf.base();
    for &(raw, arg) in B::CONSUMER_ARGS {
        assert_eq!(Raw::<B::D>::consumer_stream_arg(raw), arg, "{raw}");
    }
    assert_eq!(Raw::<B::D>::consumer_stream_arg(a), Some(a as i64));
    // The consumer on each default stream; the producer on non-blocking a.
    for &(arg, consumer) in B::DEFAULT_ARGS {
        let value = arg as u8 + 1;
        produce::<B>(sim, a, ptr, value);
        sim.reset_counters();
        exchange::<B>(Some(arg), a).unwrap();
        assert_eq!(sim.call_count(B::RECORD), 1, "{arg}");
        assert_eq!(sim.call_count(B::WAIT), 1, "{arg}");
        assert_eq!(consume::<B>(sim, consumer, ptr), vec![value; N]);
        Raw::<B::D>::order_after(0, consumer, a).unwrap();
    }
    // None means the covering default stream.
    let covering = B::D::COVERING_STREAM;
    produce::<B>(sim, a, ptr, 9);
    exchange::<B>(None, a).unwrap();
    assert_eq!(consume::<B>(sim, covering, ptr), vec![9; N]);
    Raw::<B::D>::order_after(0, covering, a).unwrap();
    sim.assert_clean();
    // Refused values: a ValueError naming the value, and no driver call.
    sim.reset_counters();
    for &arg in B::REFUSED_ARGS {
        let err = exchange::<B>(Some(arg), a).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Value, "{err}");
        assert!(err.to_string().contains(&format!("stream={arg}")), "{err}");
        let err = plan_dlpack(device::<B>(0), false, &request(Some(arg))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Value);
    }
    assert!(sim.counters().keys().all(|k| k != B::RECORD));
    // An unordered consumer on the per-thread default stream: a race.
    produce::<B>(sim, a, ptr, 11);
    exchange::<B>(Some(-1), a).unwrap();
    consume::<B>(sim, 2, ptr);
    assert_eq!(sim.races().len(), 1, "{:#?}", sim.races());
    sim.clear_reports();
    Raw::<B::D>::order_after(0, 2, a).unwrap();
    drop(buf);
}

pub fn dl_device_cpu_copies_to_the_host<B: Backend>(sim: &Sim) {
    let (ctx, a, _b) = B::context(0);
    let mem = B::alloc(&ctx, On::A, N);
    let ptr = mem.base();
    sim.launch_kernel_on(B::SIM, a, "iota", &[], &[(ptr, N)], |k| {
        let bytes: Vec<u8> = (0..N).map(|i| i as u8).collect();
        assert!(k.store(ptr, &bytes));
    })
    .unwrap();
    let request = DlpackRequest {
        max_version: Some((1, 3)),
        dl_device: Some(DLDevice::cpu()),
        ..Default::default()
    };
    let plan = plan_dlpack(device::<B>(0), false, &request).unwrap();
    sim.reset_counters();
    let tensor = fulfil(
        Owner::<B::Mem>::new(mem),
        ExportLayout::shape(&[16, 16]),
        &plan,
    )
    .unwrap();
    // The host copy is the one blocking call, but for a free that is not
    // stream-ordered (hipFree: the device memory is released after the copy).
    let free_blocks = B::free_call(true).1;
    assert_eq!(sim.call_count(B::COPY_TO_HOST), 1);
    assert_eq!(sim.call_count(B::SYNC), 1 + u64::from(free_blocks > 0));
    assert_eq!(
        sim.blocking_count(),
        1 + free_blocks,
        "the host copy blocks"
    );
    let view = tensor.view();
    assert_eq!(view.device(), DLDevice::cpu());
    assert!(tensor.flags().is_copied() && !tensor.flags().is_read_only());
    assert_eq!(view.shape(), &[16, 16]);
    let expected: Vec<u8> = (0..N).map(|i| i as u8).collect();
    assert_eq!(view.as_slice::<u8>().unwrap(), &expected[..]);
    sim.assert_clean();
    // A strided device tensor (every other row, received from elsewhere)
    // copied to the host through dlpack_device::copy_to_host.
    let buf = B::alloc(&ctx, On::A, N);
    let p = buf.base();
    sim.launch_kernel_on(B::SIM, a, "iota", &[], &[(p, N)], |k| {
        let bytes: Vec<u8> = (0..N).map(|i| (255 - i) as u8).collect();
        assert!(k.store(p, &bytes));
    })
    .unwrap();
    let (mut shape, mut strides) = ([8i64, 16], [32i64, 1]);
    let raw_tensor = DLTensor {
        data: std::ptr::with_exposed_provenance_mut(p as usize),
        device: device::<B>(0),
        ndim: 2,
        dtype: DLDataType::U8,
        shape: shape.as_mut_ptr(),
        strides: strides.as_mut_ptr(),
        byte_offset: 0,
    };
    // SAFETY: shape and strides outlive the view; the data is device memory.
    let view = unsafe { TensorView::from_raw(&raw_tensor, Flags::from_bits(0)) }.unwrap();
    // SAFETY: `buf` is live and `a` is its stream.
    let host = unsafe { dlpack_device::copy_to_host::<B::D>(&view, Raw::<B::D>::device_stream(a)) }
        .unwrap();
    let host_view = host.view();
    assert!(host.flags().is_copied());
    assert_eq!(host_view.strides().collect::<Vec<_>>(), [32, 1]);
    let first = host_view.data_ptr();
    // SAFETY: row 7, column 15 is inside the copy (strided layout).
    let last = unsafe { *first.add(7 * 32 + 15) };
    assert_eq!(last, (255 - (7 * 32 + 15)) as u8);
    sim.assert_clean();
    drop(buf);
}

pub fn device_comes_from_the_pointer<B: Backend>(sim: &Sim) {
    assert!(sim.device_count() >= 2);
    let (ctx1, a1, _b1) = B::context(1);
    let mem = B::alloc(&ctx1, On::A, 64 * 4);
    let ptr = mem.base();
    // SAFETY: the memory is live; a1 is its stream.
    unsafe { Raw::<B::D>::memset_async(1, ptr, 0, 64 * 4, a1) }.unwrap();
    // The producer claims device 0.
    let mut shape = [64i64];
    let raw_tensor = DLTensor {
        data: std::ptr::with_exposed_provenance_mut(ptr as usize),
        device: device::<B>(0),
        ndim: 1,
        dtype: DLDataType::F32,
        shape: shape.as_mut_ptr(),
        strides: std::ptr::null_mut(),
        byte_offset: 0,
    };
    // SAFETY: shape outlives the view.
    let view = unsafe { TensorView::from_raw(&raw_tensor, Flags::from_bits(0)) }.unwrap();
    let located = DeviceTensorView::<B::D, f32>::new(view).unwrap();
    assert_eq!(located.device(), device::<B>(1));
    assert_eq!(located.claimed_device(), device::<B>(0));
    assert_eq!(located.memory(), MemoryKind::Device);
    assert_eq!(located.len(), 64);
    assert_eq!(located.device_ptr(), ptr);
    assert!(
        DeviceTensorView::<B::D, i32>::new(view).is_err(),
        "dtype is checked"
    );
    assert_eq!(
        located.to_vec(Raw::<B::D>::device_stream(a1)).unwrap(),
        vec![0.0; 64]
    );
    // Export: device_id from the memory's device.
    let tensor = dlpack_core::export::Export::new(Owner::<B::Mem>::new(mem))
        .versioned()
        .unwrap();
    assert_eq!(tensor.view().device(), device::<B>(1));
    let info = Raw::<B::D>::pointer_info(ptr).unwrap();
    assert_eq!((info.device_ordinal, info.memory), (1, MemoryKind::Device));
    // Managed memory is recognised.
    let managed = {
        let _on = Bound::<B::D>::device(1).unwrap();
        B::alloc_managed(sim, 64)
    };
    if let Some(managed) = managed {
        let info = Raw::<B::D>::pointer_info(managed).unwrap();
        assert_eq!((info.device_ordinal, info.memory), (1, MemoryKind::Managed));
    }
    assert!(matches!(
        Raw::<B::D>::pointer_info(0x10),
        Err(Error::UnknownPointer { .. })
    ));
    let _ = sim.errors();
    drop(tensor);
    assert!(sim.races().is_empty(), "{:#?}", sim.races());
}

/// Exports a buffer written on `a` to a consumer on `b` with `stream=-1`,
/// lets the consumer read on `b` (ordered by the consumer itself), then
/// releases the tensor (the deleter frees the buffer).
fn export_unordered_release<B: Backend>(sim: &Sim, pools: bool) {
    sim.set_memory_pools(pools);
    let (ctx, a, b) = B::context(0);
    let mem = B::alloc(&ctx, On::A, N);
    let ptr = mem.base();
    produce::<B>(sim, a, ptr, 3);
    let plan = plan_dlpack(device::<B>(0), false, &request(Some(-1))).unwrap();
    let tensor = fulfil(Owner::<B::Mem>::new(mem), ExportLayout::default(), &plan).unwrap();
    let view = tensor.view();
    assert_eq!(view.device(), device::<B>(0));
    assert_eq!(view.data_ptr() as u64, ptr);
    // With -1 the consumer orders its own read (the producer did nothing),
    // but nothing orders the free after that read.
    Raw::<B::D>::order_after(0, a, b).unwrap();
    assert_eq!(consume::<B>(sim, b, ptr), vec![3; N]);
    sim.reset_counters();
    drop(tensor); // the consumer's deleter
    let (free, blocks) = B::free_call(pools);
    assert_eq!(sim.call_count(free), 1);
    if blocks == 0 {
        assert_eq!(sim.blocking_count(), 0, "{free} does not block");
    }
    assert_eq!(sim.live_allocations(), 0);
}

pub fn free_waits_for_the_consumers_stream<B: Backend>(sim: &Sim) {
    for pools in [true, false] {
        sim.reset();
        B::forget();
        sim.set_memory_pools(pools);
        let (ctx, a, b) = B::context(0);
        let mem = B::alloc(&ctx, On::A, N);
        let ptr = mem.base();
        produce::<B>(sim, a, ptr, 3);
        let plan = plan_dlpack(device::<B>(0), false, &request(Some(b as i64))).unwrap();
        let tensor = fulfil(Owner::<B::Mem>::new(mem), ExportLayout::default(), &plan).unwrap();
        assert_eq!(consume::<B>(sim, b, ptr), vec![3; N]);
        sim.reset_counters();
        drop(tensor);
        assert_eq!(sim.call_count(B::RECORD), 1, "b recorded for the free");
        assert_eq!(sim.call_count(B::WAIT), 1, "a waits for b");
        let (free, blocks) = B::free_call(pools);
        assert_eq!(sim.call_count(free), 1);
        if blocks == 0 {
            assert_eq!(sim.blocking_count(), 0);
        }
        assert_eq!(sim.live_allocations(), 0);
        sim.assert_clean();
    }
}

pub fn unordered_free_is_a_use_after_free_hazard<B: Backend>(sim: &Sim) {
    for pools in [true, false] {
        sim.reset();
        B::forget();
        export_unordered_release::<B>(sim, pools);
        let races = sim.races();
        assert_eq!(races.len(), 1, "pools={pools}: {races:#?}");
        assert!(
            races[0].contains("USE-AFTER-FREE") && races[0].contains("consume#"),
            "{}",
            races[0]
        );
    }
}

/// Exports memory written on `on` to a consumer that passed `stream_arg`
/// and reads on `consumer` (a raw handle as the consumer's thread names
/// it); with `reread`, the producer reads the memory again on its own
/// stream after the export (as it may). Then the tensor is released on
/// another thread.
fn release_on_another_thread<B: Backend>(
    sim: &Sim,
    on: On,
    stream_arg: i64,
    consumer: u64,
    value: u8,
    reread: bool,
) {
    let (ctx, a, _b) = B::context(0);
    let mem = B::alloc(&ctx, on, N);
    let producer = if on == On::A { a } else { 2 };
    let ptr = mem.base();
    produce::<B>(sim, producer, ptr, value);
    let plan = plan_dlpack(device::<B>(0), false, &request(Some(stream_arg))).unwrap();
    let tensor = fulfil(Owner::<B::Mem>::new(mem), ExportLayout::default(), &plan).unwrap();
    assert_eq!(consume::<B>(sim, consumer, ptr), vec![value; N]);
    if reread {
        assert_eq!(consume::<B>(sim, producer, ptr), vec![value; N]);
    }
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

pub fn per_thread_streams_released_on_another_thread<B: Backend>(sim: &Sim) {
    let per_thread = B::D::PER_THREAD_STREAM;
    let covering = B::D::COVERING_STREAM;
    for pools in [true, false] {
        sim.reset();
        B::forget();
        sim.set_memory_pools(pools);
        if let Some(arg) = Raw::<B::D>::consumer_stream_arg(per_thread) {
            // The consumer works on its per-thread default stream: the free
            // must wait for *this* thread's per-thread stream, whichever
            // thread runs the deleter.
            release_on_another_thread::<B>(sim, On::A, arg, per_thread, 4, false);
            sim.assert_clean();
            // The memory itself on this thread's per-thread stream, and the
            // consumer on it too (no exchange sync): the memory frees on
            // "2" of the releasing thread, which must still wait for this
            // thread's.
            release_on_another_thread::<B>(sim, On::PerThread, arg, per_thread, 6, false);
            sim.assert_clean();
        }
        // The covering default stream means the same stream on every thread.
        let arg = Raw::<B::D>::consumer_stream_arg(covering).unwrap();
        release_on_another_thread::<B>(sim, On::A, arg, covering, 5, false);
        sim.assert_clean();
        // The memory's work on this thread's per-thread stream, the consumer
        // on b; the producer reads again on its stream after the export.
        let (_ctx, _a, b) = B::context(0);
        release_on_another_thread::<B>(sim, On::PerThread, b as i64, b, 8, true);
        sim.assert_clean();
    }
}

/// Driver calls of one warm export of memory to a consumer on another
/// stream (`fulfil` with `stream=b`): `(records, waits, creates,
/// blocking)` for making the owner and for the exchange.
pub fn export_counts<B: Backend>(
    sim: &Sim,
    ctx: &B::Ctx,
    a: u64,
    b: u64,
) -> [(u64, u64, u64, u64); 2] {
    let plan = plan_dlpack(device::<B>(0), false, &request(Some(b as i64))).unwrap();
    let counts = |sim: &Sim| {
        (
            sim.call_count(B::RECORD) + sim.call_count("cuEventRecordWithFlags"),
            sim.call_count(B::WAIT),
            sim.call_count(B::CREATE),
            sim.blocking_count(),
        )
    };
    let mut out = [(0, 0, 0, 0); 2];
    for round in 0..3u8 {
        let mem = B::alloc(ctx, On::A, N);
        let ptr = mem.base();
        produce::<B>(sim, a, ptr, round);
        sim.reset_counters();
        let owner = Owner::<B::Mem>::new(mem);
        let made = counts(sim);
        sim.reset_counters();
        let tensor = fulfil(owner, ExportLayout::default(), &plan).unwrap();
        let exchange = counts(sim);
        assert_eq!(consume::<B>(sim, b, ptr), vec![round; N]);
        drop(tensor);
        if round > 0 {
            out = [made, exchange]; // warm: the event pool is filled
        }
    }
    sim.assert_clean();
    out
}

pub fn warm_export_costs_one_record_one_wait<B: Backend>(sim: &Sim) {
    let (ctx, a, b) = B::context(0);
    let [made, exchange] = export_counts::<B>(sim, &ctx, a, b);
    println!("owner {made:?}, exchange {exchange:?}");
    // The exchange: one record on the producer's stream, one wait on the
    // consumer's, no event created, nothing blocks; making the owner costs
    // no call.
    assert_eq!(exchange, (1, 1, 0, 0));
    assert_eq!(made, (0, 0, 0, 0));
}

pub fn copy_true_copies_on_the_device<B: Backend>(sim: &Sim) {
    let (ctx, a, b) = B::context(0);
    let mem = B::alloc(&ctx, On::A, N);
    let ptr = mem.base();
    produce::<B>(sim, a, ptr, 13);
    let request = DlpackRequest {
        stream: Some(b as i64),
        max_version: Some((1, 3)),
        copy: Some(true),
        ..Default::default()
    };
    let plan = plan_dlpack(device::<B>(0), false, &request).unwrap();
    let tensor = fulfil(Owner::<B::Mem>::new(mem), ExportLayout::default(), &plan).unwrap();
    let view = tensor.view();
    assert_eq!(view.device(), device::<B>(0));
    assert!(tensor.flags().is_copied());
    let copy = view.data_ptr() as u64;
    assert_ne!(copy, ptr, "a new allocation");
    assert_eq!(consume::<B>(sim, b, copy), vec![13; N]);
    drop(tensor);
    assert_eq!(sim.live_allocations(), 0);
    sim.assert_clean();
}

pub fn shared_owner_frees_after_every_consumer<B: Backend>(sim: &Sim) {
    // One owner exported to several consumers (as a Python tensor is): each
    // consumer's stream is ordered after the memory's, and the free waits
    // for all of them.
    let (ctx, a, b) = B::context(0);
    let (_ctx2, c, _) = B::context(0);
    let mem = B::alloc(&ctx, On::A, N);
    let ptr = mem.base();
    produce::<B>(sim, a, ptr, 21);
    let owner = Owner::<B::Mem>::new(mem);
    for consumer in [b, c, b] {
        let stream = Raw::<B::D>::device_stream(consumer);
        owner.order_consumer(StreamRequest::Sync(stream)).unwrap();
        assert_eq!(consume::<B>(sim, consumer, ptr), vec![21; N]);
    }
    sim.reset_counters();
    drop(owner);
    assert_eq!(
        sim.call_count(B::RECORD),
        2,
        "one record per consumer stream"
    );
    assert_eq!(sim.call_count(B::WAIT), 2);
    assert_eq!(sim.live_allocations(), 0);
    sim.assert_clean();
}

/// Managed memory written on stream `a`: a host read races with the write
/// until [`Raw::host_wait`] has waited for `a` (one host-blocking call).
pub fn host_wait_orders_host_reads_of_managed_memory<B: Backend>(sim: &Sim) {
    let (_ctx, a, _b) = B::context(0);
    let managed = {
        let _on = Bound::<B::D>::device(0).unwrap();
        B::alloc_managed(sim, N)
    };
    let Some(ptr) = managed else {
        return; // the backend has no managed memory
    };
    // The witness: without the wait the simulator reports the host read.
    produce::<B>(sim, a, ptr, 1);
    sim.host_read(ptr, N).unwrap();
    assert_eq!(sim.races().len(), 1, "{:#?}", sim.races());
    sim.clear_reports();
    produce::<B>(sim, a, ptr, 2);
    sim.reset_counters();
    // SAFETY: `a` is a live stream of device 0.
    unsafe { Raw::<B::D>::host_wait(0, a) }.unwrap();
    assert_eq!(sim.blocking_count(), 1);
    sim.host_read(ptr, N).unwrap();
    assert!(sim.races().is_empty(), "{:#?}", sim.races());
}
