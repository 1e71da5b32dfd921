//! The ROCm group that needs only a HIP runtime — the real one, or gpu-sim standing in for it:
//! exchanges whose results are read back through the runtime, no inspection API. `cargo xtask
//! test-gpu` runs it against the real runtime (with `DLPACK_REQUIRE_DRIVER=1`, so a missing
//! runtime fails instead of skipping); `cargo xtask test` runs it on the simulator.
#![cfg(feature = "gpu")]

use dlpack_core::ffi::DLDevice;
use dlpack_core::protocol::{DlpackRequest, plan_dlpack};
use dlpack_rocm::raw;
use dlpack_rocm::{ExportLayout, HipBuffer, fulfil};

const N: usize = 1 << 16;

/// Whether a HIP runtime is here; without one, a skip — or a failure when the run requires one.
fn runtime() -> bool {
    if dlpack_rocm::is_runtime_present() && raw::device_count().is_ok_and(|n| n > 0) {
        return true;
    }
    assert!(
        std::env::var_os("DLPACK_REQUIRE_DRIVER").is_none(),
        "DLPACK_REQUIRE_DRIVER is set, but no HIP runtime with a device could be loaded"
    );
    eprintln!(
        "skipped: no HIP runtime with a device here (libamdhip64.so, or a ROCm device, missing)"
    );
    false
}

fn fill(ptr: u64, value: u8, stream: u64) {
    // SAFETY: `ptr..ptr+N` is a live buffer of device 0; the stream is live (or 0).
    unsafe { raw::memset_async(0, ptr, value, N, stream) }.unwrap();
}

fn read(ptr: u64, stream: u64) -> Vec<u8> {
    let mut out = vec![0u8; N];
    // SAFETY: as in `fill`.
    unsafe { raw::copy_to_host(0, ptr, &mut out, stream) }.unwrap();
    out
}

#[test]
fn the_consumer_sees_the_producers_writes() {
    if !runtime() {
        return;
    }
    let (a, b) = (
        raw::stream_create(0).unwrap(),
        raw::stream_create(0).unwrap(),
    );
    for value in 1..=4u8 {
        let buf = HipBuffer::<u8>::alloc(0, a, N).unwrap();
        let ptr = buf.device_ptr();
        fill(ptr, value, a);
        let request = DlpackRequest {
            stream: Some(b as i64),
            max_version: Some((1, 3)),
            ..Default::default()
        };
        let plan = plan_dlpack(DLDevice::rocm(0), false, &request).unwrap();
        let tensor = fulfil(buf, ExportLayout::shape(&[256, 256]), &plan).unwrap();
        assert_eq!(read(ptr, b), vec![value; N], "round {value}");
        drop(tensor);
    }
    // SAFETY: the streams are idle and unused from here on.
    unsafe {
        raw::stream_destroy(a).unwrap();
        raw::stream_destroy(b).unwrap();
    }
}

#[test]
fn per_thread_buffer_released_on_another_thread() {
    if !runtime() {
        return;
    }
    let b = raw::stream_create(0).unwrap();
    for round in 0..8u8 {
        // The buffer's work is on this thread's hipStreamPerThread (2).
        let buf = HipBuffer::<u8>::alloc(0, 2, N).unwrap();
        let ptr = buf.device_ptr();
        fill(ptr, round, 2);
        let request = DlpackRequest {
            stream: Some(b as i64),
            max_version: Some((1, 3)),
            ..Default::default()
        };
        let plan = plan_dlpack(DLDevice::rocm(0), false, &request).unwrap();
        let tensor = fulfil(buf, ExportLayout::default(), &plan).unwrap();
        assert_eq!(read(ptr, b), vec![round; N]);
        std::thread::spawn(move || drop(tensor)).join().unwrap();
    }
    // SAFETY: the stream is idle and unused from here on.
    unsafe { raw::stream_destroy(b) }.unwrap();
}

#[test]
fn dl_device_cpu_copies_to_the_host() {
    if !runtime() {
        return;
    }
    let buf = HipBuffer::<u8>::alloc(0, 0, N).unwrap();
    fill(buf.device_ptr(), 42, 0);
    let request = DlpackRequest {
        max_version: Some((1, 3)),
        dl_device: Some(DLDevice::cpu()),
        ..Default::default()
    };
    let plan = plan_dlpack(DLDevice::rocm(0), false, &request).unwrap();
    let tensor = fulfil(buf, ExportLayout::default(), &plan).unwrap();
    assert_eq!(tensor.view().device(), DLDevice::cpu());
    assert_eq!(tensor.view().as_slice::<u8>().unwrap(), &vec![42; N][..]);
}
