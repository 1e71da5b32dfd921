//! Without a driver, every entry point of the device runtime returns an
//! error — `Error::DriverNotFound` when the library is missing — never a
//! panic. Written once over [`Driver`]; each backend runs it from a test
//! that re-runs itself in a child process whose `LD_LIBRARY_PATH` does not
//! hold the simulator ([`in_child_without_simulator`]).

use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};
use dlpack_core::protocol::DeviceStream;
use dlpack_core::sync::StreamSync;
use dlpack_core::tensor::{Flags, TensorView};
use dlpack_device::{DeviceSync, DeviceTensorView, Driver, Error, Raw};

const CHILD: &str = "DLPACK_DEVICE_NO_DRIVER_CHILD";

/// Runs test `name` again in a child process without the simulator on the
/// loader path; `true` when the caller is that child and must check.
pub fn in_child_without_simulator(name: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([name, "--exact", "--nocapture"])
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("GPUSIM_LIB_DIR")
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("1 passed"));
    false
}

/// Every entry point of the runtime of `D` errs (never panics) without a
/// driver with a device; `DriverNotFound` when the library is missing.
pub fn every_entry_point_errors_without_a_driver<D: Driver>() {
    let present = Raw::<D>::is_present();
    println!(
        "{} library present without the simulator: {present}",
        D::NAME
    );
    if present && Raw::<D>::device_count().is_ok_and(|n| n > 0) {
        println!(
            "a {} device is installed on this machine: nothing to check",
            D::NAME
        );
        return;
    }
    let device = DLDevice::new(D::DEVICE_TYPES.device, 0);
    let mut shape = [4i64];
    let t = DLTensor {
        data: std::ptr::without_provenance_mut(0x1000),
        device,
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
        Raw::<D>::order_after(0, 0x1000, 0x2000).err(),
        Raw::<D>::pointer_info(0x1000).err(),
        Raw::<D>::device_count().err(),
        Raw::<D>::stream_create(0).err(),
        Raw::<D>::alloc(0, 4).err(),
        DeviceSync::<D>::new()
            .order_after(
                device,
                DeviceStream::Handle(0x1000),
                DeviceStream::Handle(0x2000),
            )
            .err(),
        DeviceTensorView::<D, f32>::new(view).err(),
        // SAFETY: never reaches memory without a driver (or a device).
        unsafe { Raw::<D>::copy_to_host(0, 0x1000, &mut host, 0x1000) }.err(),
        // SAFETY: as above.
        unsafe { dlpack_device::copy_to_host::<D>(&view, DeviceStream::Handle(0x1000)) }.err(),
    ];
    // Without the library, not even the pools' statistics are read (with
    // a library and no device, HIP's pools of device 0 are merely empty).
    if !present {
        assert!(matches!(
            Raw::<D>::pool_stats(0),
            Err(Error::DriverNotFound { .. })
        ));
    }
    for (i, e) in results.into_iter().enumerate() {
        let e = e.unwrap_or_else(|| panic!("entry point {i} succeeded without a device"));
        println!("{i}: {e}");
        if !present {
            assert!(matches!(e, Error::DriverNotFound { .. }), "{i}: {e:?}");
        }
    }
}
