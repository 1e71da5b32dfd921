//! The CUDA group that needs only a driver — the real one, or gpu-sim standing in for it:
//! exchanges whose results are read back through the driver, no inspection API. `cargo xtask
//! test-gpu` runs it against the real driver (with `DLPACK_REQUIRE_DRIVER=1`, so a missing
//! driver fails instead of skipping); `cargo xtask test` runs it on the simulator.
#![cfg(feature = "gpu")]

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaStream, DevicePtr};
use dlpack_core::ffi::DLDevice;
use dlpack_core::protocol::{DlpackRequest, plan_dlpack};
use dlpack_cuda::{CudaOwner, ExportLayout, fulfil};

const N: usize = 1 << 16;

/// Whether a driver is here; without one, a skip — or a failure when the run requires one.
fn driver() -> bool {
    if dlpack_cuda::is_driver_present() && cudarc::driver::result::init().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("DLPACK_REQUIRE_DRIVER").is_none(),
        "DLPACK_REQUIRE_DRIVER is set, but no CUDA driver could be loaded and initialised"
    );
    eprintln!("skipped: no CUDA driver (libcuda.so) here");
    false
}

/// Device 0's primary context with cudarc's defaults (event tracking on) and two streams.
fn streams() -> (Arc<CudaContext>, Arc<CudaStream>, Arc<CudaStream>) {
    let ctx = CudaContext::new(0).expect("context");
    let (a, b) = (ctx.new_stream().unwrap(), ctx.new_stream().unwrap());
    (ctx, a, b)
}

fn raw(stream: &CudaStream) -> u64 {
    stream.cu_stream() as u64
}

fn request(stream: i64) -> DlpackRequest {
    DlpackRequest {
        stream: Some(stream),
        max_version: Some((1, 3)),
        ..Default::default()
    }
}

/// Fills `len` bytes at `ptr` with `value` on `stream` (a "kernel" any driver has).
fn fill(ptr: u64, len: usize, value: u8, stream: u64) {
    // SAFETY: `ptr..ptr+len` is a live buffer of device 0; the stream is live (or 1/2).
    unsafe { dlpack_cuda::raw::memset_async(0, ptr, value, len, stream) }.unwrap();
}

/// The bytes at `ptr`, read on `stream` (ordered after its work) and waited for.
fn read(ptr: u64, len: usize, stream: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    // SAFETY: as in `fill`.
    unsafe { dlpack_cuda::raw::copy_to_host(0, ptr, &mut out, stream) }.unwrap();
    out
}

#[test]
fn the_consumer_sees_the_producers_writes() {
    if !driver() {
        return;
    }
    let (ctx, a, b) = streams();
    for value in 1..=4u8 {
        let slice = a.alloc_zeros::<u8>(N).unwrap();
        let ptr = slice.device_ptr(&a).0;
        fill(ptr, N, value, raw(&a));
        let plan = plan_dlpack(DLDevice::cuda(0), false, &request(raw(&b) as i64)).unwrap();
        let tensor = fulfil(
            CudaOwner::new(slice),
            ExportLayout::shape(&[256, 256]),
            &plan,
        )
        .unwrap();
        assert_eq!(tensor.view().data_ptr() as u64, ptr);
        assert_eq!(read(ptr, N, raw(&b)), vec![value; N], "round {value}");
        drop(tensor);
    }
    ctx.check_err().unwrap();
}

#[test]
fn per_thread_consumer_released_on_another_thread() {
    if !driver() {
        return;
    }
    let (ctx, a, _b) = streams();
    for round in 0..8u8 {
        let slice = a.alloc_zeros::<u8>(N).unwrap();
        let ptr = slice.device_ptr(&a).0;
        fill(ptr, N, round, raw(&a));
        let plan = plan_dlpack(DLDevice::cuda(0), false, &request(2)).unwrap();
        let tensor = fulfil(CudaOwner::new(slice), ExportLayout::default(), &plan).unwrap();
        // The consumer works on its per-thread default stream, then the tensor is released on
        // another thread, which must not free before this thread's stream is done.
        fill(ptr, N, round.wrapping_add(100), 2);
        assert_eq!(read(ptr, N, 2), vec![round.wrapping_add(100); N]);
        std::thread::spawn(move || drop(tensor)).join().unwrap();
    }
    a.synchronize().unwrap();
    ctx.synchronize().unwrap();
    // Every free the deleters made succeeded (cudarc records a failed free here).
    ctx.check_err().unwrap();
}

#[test]
fn dl_device_cpu_copies_to_the_host() {
    if !driver() {
        return;
    }
    let (ctx, a, _b) = streams();
    let slice = a.alloc_zeros::<u8>(N).unwrap();
    let ptr = slice.device_ptr(&a).0;
    fill(ptr, N, 42, raw(&a));
    let request = DlpackRequest {
        max_version: Some((1, 3)),
        dl_device: Some(DLDevice::cpu()),
        ..Default::default()
    };
    let plan = plan_dlpack(DLDevice::cuda(0), false, &request).unwrap();
    let tensor = fulfil(CudaOwner::new(slice), ExportLayout::default(), &plan).unwrap();
    assert_eq!(tensor.view().device(), DLDevice::cpu());
    assert!(tensor.flags().is_copied());
    assert_eq!(tensor.view().as_slice::<u8>().unwrap(), &vec![42; N][..]);
    ctx.check_err().unwrap();
}

#[test]
fn the_device_comes_from_the_pointer() {
    if !driver() {
        return;
    }
    let (_ctx, a, _b) = streams();
    let slice = a.alloc_zeros::<f32>(64).unwrap();
    let ptr = slice.device_ptr(&a).0;
    let info = dlpack_cuda::raw::pointer_info(ptr).unwrap();
    assert_eq!(
        (info.device_ordinal, info.memory),
        (0, dlpack_cuda::MemoryKind::Device)
    );
    let host = [0u8; 8];
    assert!(dlpack_cuda::raw::pointer_info(host.as_ptr() as u64).is_err());
}
