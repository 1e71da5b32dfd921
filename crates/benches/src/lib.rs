//! Benchmarks of the workspace's hot paths live in `benches/`; run them with
//! `cargo xtask bench` (or `cargo bench -p dlpack-benches`).
//!
//! This library only holds fixtures shared by the benchmarks.

use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};

/// A foreign-looking 4-d float32 tensor (2x3x4x5, strided) over `data`,
/// with `shape` and `strides` kept alive by the caller.
pub fn foreign_4d(data: &mut [f32], shape: &mut [i64; 4], strides: &mut [i64; 4]) -> DLTensor {
    *shape = [2, 3, 4, 5];
    *strides = [60, 20, 5, 1];
    assert!(data.len() >= 120, "the fixture needs 120 elements");
    DLTensor {
        data: data.as_mut_ptr().cast(),
        device: DLDevice::cpu(),
        ndim: 4,
        dtype: DLDataType::F32,
        shape: shape.as_mut_ptr(),
        strides: strides.as_mut_ptr(),
        byte_offset: 0,
    }
}
