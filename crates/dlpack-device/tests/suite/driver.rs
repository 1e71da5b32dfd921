//! The group that needs only a driver — the real one, or gpu-sim standing
//! in for it: exchanges whose results are read back through the driver, no
//! inspection API. `cargo xtask test-gpu` runs it against the real driver
//! (with `DLPACK_REQUIRE_DRIVER=1`, so a missing driver fails instead of
//! skipping); `cargo xtask test` runs it on the simulator. Backends name
//! the tests with [`driver_tests!`].

use dlpack_core::protocol::{DlpackRequest, plan_dlpack};
use dlpack_device::{DeviceMemory, Driver, ExportLayout, MemoryKind, Owner, Raw, fulfil};

use super::{Backend, On};

const N: usize = 1 << 16;

/// Names the driver-only tests for backend `$b`.
#[macro_export]
macro_rules! driver_tests {
    ($b:ty) => {
        $crate::driver_tests!($b;
            the_consumer_sees_the_producers_writes,
            per_thread_streams_released_on_another_thread,
            dl_device_cpu_copies_to_the_host,
            the_device_comes_from_the_pointer,
        );
    };
    ($b:ty; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            if suite::driver::present::<$b>() {
                suite::driver::$name::<$b>();
            }
        }
    )*};
}

/// Whether a driver with a device is here; without one, a skip — or a
/// failure when the run requires one.
pub fn present<B: Backend>() -> bool {
    if Raw::<B::D>::device_count().is_ok_and(|n| n > 0) {
        return true;
    }
    assert!(
        std::env::var_os("DLPACK_REQUIRE_DRIVER").is_none(),
        "DLPACK_REQUIRE_DRIVER is set, but no {} driver with a device could be loaded",
        B::D::NAME
    );
    eprintln!("skipped: no {} driver with a device here", B::D::NAME);
    false
}

fn device<B: Backend>() -> dlpack_core::ffi::DLDevice {
    dlpack_core::ffi::DLDevice::new(B::D::DEVICE_TYPES.device, 0)
}

fn request(stream: i64) -> DlpackRequest {
    DlpackRequest {
        stream: Some(stream),
        max_version: Some((1, 3)),
        ..Default::default()
    }
}

/// Fills `N` bytes at `ptr` with `value` on `stream` (a "kernel" any driver
/// has).
fn fill<B: Backend>(ptr: u64, value: u8, stream: u64) {
    // SAFETY: `ptr..ptr+N` is a live buffer of device 0; the stream is live
    // (or a default stream).
    unsafe { Raw::<B::D>::memset_async(0, ptr, value, N, stream) }.unwrap();
}

/// The bytes at `ptr`, read on `stream` (ordered after its work) and
/// waited for.
fn read<B: Backend>(ptr: u64, stream: u64) -> Vec<u8> {
    let mut out = vec![0u8; N];
    // SAFETY: as in `fill`.
    unsafe { Raw::<B::D>::copy_to_host(0, ptr, &mut out, stream) }.unwrap();
    out
}

pub fn the_consumer_sees_the_producers_writes<B: Backend>() {
    let (ctx, a, b) = B::driver_context();
    for value in 1..=4u8 {
        let mem = B::alloc(&ctx, On::A, N);
        let owner = Owner::<B::Mem>::new(mem);
        let ptr = owner.device_ptr();
        fill::<B>(ptr, value, a);
        let plan = plan_dlpack(device::<B>(), false, &request(b as i64)).unwrap();
        let tensor = fulfil(owner, ExportLayout::shape(&[256, 256]), &plan).unwrap();
        assert_eq!(tensor.view().data_ptr() as u64, ptr);
        assert_eq!(read::<B>(ptr, b), vec![value; N], "round {value}");
        drop(tensor);
    }
    B::check(&ctx);
}

pub fn per_thread_streams_released_on_another_thread<B: Backend>() {
    let (ctx, a, b) = B::driver_context();
    let per_thread = B::D::PER_THREAD_STREAM;
    for round in 0..8u8 {
        // The consumer works on its per-thread default stream (where the
        // standard has a value for it), then the tensor is released on
        // another thread, which must not free before this thread's stream
        // is done.
        if let Some(arg) = Raw::<B::D>::consumer_stream_arg(per_thread) {
            let owner = Owner::<B::Mem>::new(B::alloc(&ctx, On::A, N));
            let ptr = owner.device_ptr();
            fill::<B>(ptr, round, a);
            let plan = plan_dlpack(device::<B>(), false, &request(arg)).unwrap();
            let tensor = fulfil(owner, ExportLayout::default(), &plan).unwrap();
            fill::<B>(ptr, round.wrapping_add(100), per_thread);
            assert_eq!(read::<B>(ptr, per_thread), vec![round.wrapping_add(100); N]);
            std::thread::spawn(move || drop(tensor)).join().unwrap();
        }
        // The memory's work on this thread's per-thread stream, the
        // consumer on b.
        let owner = Owner::<B::Mem>::new(B::alloc(&ctx, On::PerThread, N));
        let ptr = owner.device_ptr();
        fill::<B>(ptr, round, per_thread);
        let plan = plan_dlpack(device::<B>(), false, &request(b as i64)).unwrap();
        let tensor = fulfil(owner, ExportLayout::default(), &plan).unwrap();
        assert_eq!(read::<B>(ptr, b), vec![round; N]);
        std::thread::spawn(move || drop(tensor)).join().unwrap();
    }
    B::check(&ctx);
}

pub fn dl_device_cpu_copies_to_the_host<B: Backend>() {
    let (ctx, a, _b) = B::driver_context();
    let owner = Owner::<B::Mem>::new(B::alloc(&ctx, On::A, N));
    fill::<B>(owner.device_ptr(), 42, a);
    let request = DlpackRequest {
        max_version: Some((1, 3)),
        dl_device: Some(dlpack_core::ffi::DLDevice::cpu()),
        ..Default::default()
    };
    let plan = plan_dlpack(device::<B>(), false, &request).unwrap();
    let tensor = fulfil(owner, ExportLayout::default(), &plan).unwrap();
    assert_eq!(tensor.view().device(), dlpack_core::ffi::DLDevice::cpu());
    assert!(tensor.flags().is_copied());
    assert_eq!(tensor.view().as_slice::<u8>().unwrap(), &vec![42; N][..]);
    B::check(&ctx);
}

pub fn the_device_comes_from_the_pointer<B: Backend>() {
    let (ctx, _a, _b) = B::driver_context();
    let mem = B::alloc(&ctx, On::A, 64);
    let info = Raw::<B::D>::pointer_info(mem.base()).unwrap();
    assert_eq!((info.device_ordinal, info.memory), (0, MemoryKind::Device));
    let host = [0u8; 8];
    assert!(Raw::<B::D>::pointer_info(host.as_ptr() as u64).is_err());
}
