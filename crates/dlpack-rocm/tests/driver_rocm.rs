//! The ROCm group that needs only a HIP runtime (the device runtime's
//! `suite::driver`, run on HIP): the real one under `cargo xtask test-gpu`,
//! or gpu-sim standing in for it.
#![cfg(feature = "gpu")]

#[path = "../../dlpack-device/tests/suite/mod.rs"]
mod suite;

mod backend;

driver_tests!(backend::RocmBackend);
