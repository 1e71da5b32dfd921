//! The ROCm GPU suite: the device runtime's suite (written once in
//! `crates/dlpack-device/tests/suite`) run on HIP, through the run-time
//! loader (or hip-sys's linked runtime with feature `hip-sys`, when the
//! simulator's `libamdhip64.so.5` comes first on `LD_LIBRARY_PATH`).
#![cfg(feature = "gpu")]

#[path = "../../dlpack-device/tests/suite/mod.rs"]
mod suite;

mod backend;

use backend::RocmBackend;

all_suite_tests!(RocmBackend);
