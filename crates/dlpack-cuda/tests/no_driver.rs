//! Without a CUDA driver, every entry point returns
//! `Error::DriverNotFound`, never a panic. The test re-runs itself in a
//! child process whose `LD_LIBRARY_PATH` does not hold the simulator.

use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};
use dlpack_core::protocol::DeviceStream;
use dlpack_core::sync::StreamSync;
use dlpack_core::tensor::{Flags, TensorView};
use dlpack_cuda::Error;

const CHILD: &str = "DLPACK_CUDA_NO_DRIVER_CHILD";

#[test]
fn every_entry_point_errors_without_a_driver() {
    if std::env::var_os(CHILD).is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "every_entry_point_errors_without_a_driver",
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
    if dlpack_cuda::is_driver_present() {
        println!("a CUDA driver is installed on this machine: nothing to check");
        return;
    }
    let mut shape = [4i64];
    let t = DLTensor {
        data: std::ptr::without_provenance_mut(0x1000),
        device: DLDevice::cuda(0),
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
        dlpack_cuda::raw::order_after(0, 0x1000, 0x2000).err(),
        dlpack_cuda::raw::pointer_info(0x1000).err(),
        dlpack_cuda::raw::pool_stats(0).err(),
        dlpack_cuda::CudaSync
            .order_after(
                DLDevice::cuda(0),
                DeviceStream::Handle(1),
                DeviceStream::Handle(2),
            )
            .err(),
        dlpack_cuda::CudaTensorView::<f32>::new(view).err(),
        // SAFETY: never reaches memory without a driver.
        unsafe { dlpack_cuda::raw::copy_to_host(0, 0x1000, &mut host, 0) }.err(),
        // SAFETY: as above.
        unsafe { dlpack_cuda::copy_to_host(&view, DeviceStream::CudaLegacyDefault) }.err(),
    ];
    for (i, e) in results.into_iter().enumerate() {
        let e = e.unwrap_or_else(|| panic!("entry point {i} succeeded without a driver"));
        assert!(matches!(e, Error::DriverNotFound), "{i}: {e:?}");
        println!("{i}: {e}");
    }
}
