//! Without a CUDA driver, every entry point returns
//! `Error::DriverNotFound`, never a panic (the device runtime's
//! `suite/no_driver.rs`, run on CUDA in a child process without the
//! simulator).

#[path = "../../dlpack-device/tests/suite/no_driver.rs"]
mod no_driver;

#[test]
fn every_entry_point_errors_without_a_driver() {
    if no_driver::in_child_without_simulator("every_entry_point_errors_without_a_driver") {
        no_driver::every_entry_point_errors_without_a_driver::<dlpack_cuda::Cuda>();
    }
}
