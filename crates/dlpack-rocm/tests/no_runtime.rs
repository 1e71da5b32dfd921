//! Without a HIP runtime, every entry point returns an error, never a
//! panic. The test re-runs itself in a child process whose
//! `LD_LIBRARY_PATH` does not hold the simulator.

use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};
use dlpack_core::tensor::{Flags, TensorView};

const CHILD: &str = "DLPACK_ROCM_NO_RUNTIME_CHILD";

#[test]
fn every_entry_point_errors_without_a_runtime() {
    if std::env::var_os(CHILD).is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "every_entry_point_errors_without_a_runtime",
                "--exact",
                "--nocapture",
            ])
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("GPUSIM_LIB_DIR")
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && stdout.contains("1 passed"));
        return;
    }
    let present = dlpack_rocm::is_runtime_present();
    println!("HIP runtime present without the simulator: {present}");
    let mut shape = [4i64];
    let t = DLTensor {
        data: std::ptr::without_provenance_mut(0x1000),
        device: DLDevice::rocm(0),
        ndim: 1,
        dtype: DLDataType::F32,
        shape: shape.as_mut_ptr(),
        strides: std::ptr::null_mut(),
        byte_offset: 0,
    };
    // SAFETY: shape outlives the view; nothing reads the data.
    let view = unsafe { TensorView::from_raw(&t, Flags::from_bits(0)) }.unwrap();
    let mut host = [0u8; 4];
    let results = [
        dlpack_rocm::raw::order_after(0, 0x1000, 0x2000).err(),
        dlpack_rocm::raw::pointer_info(0x1000).err(),
        dlpack_rocm::raw::device_count().err(),
        dlpack_rocm::raw::stream_create(0).err(),
        dlpack_rocm::HipBuffer::<f32>::alloc(0, 0, 4).err(),
        dlpack_rocm::RocmTensorView::<f32>::new(view).err(),
        // SAFETY: never reaches memory without a runtime (or a device).
        unsafe { dlpack_rocm::raw::copy_to_host(0, 0x1000, &mut host, 0) }.err(),
    ];
    for (i, e) in results.into_iter().enumerate() {
        let e = e.unwrap_or_else(|| panic!("entry point {i} succeeded without a device"));
        println!("{i}: {e}");
        if !present {
            assert!(
                matches!(e, dlpack_rocm::Error::RuntimeNotFound { .. }),
                "{i}: {e:?}"
            );
        }
    }
}
