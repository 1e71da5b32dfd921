//! The CUDA group that needs only a driver (the device runtime's
//! `suite::driver`, run on CUDA through cudarc with its defaults): the real
//! one under `cargo xtask test-gpu`, or gpu-sim standing in for it.
#![cfg(feature = "gpu")]

#[path = "../../dlpack-device/tests/suite/mod.rs"]
mod suite;

mod backend;

driver_tests!(backend::CudaBackend);
