//! Benchmarks of the workspace's hot paths live in `benches/`; run them with
//! `cargo xtask bench` (or `cargo bench -p dlpack-benches`).
//!
//! This library only holds fixtures shared by the benchmarks.

use std::ffi::c_void;
use std::hint::black_box;
use std::time::{Duration, Instant};

use dlpack_core::export::Export;
use dlpack_core::ffi::{DLDataType, DLDevice, DLManagedTensorVersioned, DLTensor};

/// Inputs made (and outputs released) per batch by [`batched`], outside the clock.
pub const BATCH: u64 = 256;

/// Times `routine` over `iters` inputs made by `make`, in batches of [`BATCH`]: each batch's
/// inputs are made before the clock starts and its outputs released after it stops, so the
/// allocator recycles the same blocks as in steady use (timing millions of exports into fresh
/// pages would time page faults) and glibc's heap trimming stays out of the timed loop.
pub fn batched<I, O>(
    iters: u64,
    mut make: impl FnMut() -> I,
    mut routine: impl FnMut(I) -> O,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut outputs = Vec::with_capacity(BATCH as usize);
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        left -= n;
        let inputs: Vec<I> = (0..n).map(|_| make()).collect();
        let start = Instant::now();
        for input in inputs {
            outputs.push(black_box(routine(input)));
        }
        total += start.elapsed();
        outputs.clear();
    }
    total
}

/// A fresh export of 1000 `f32`, as the raw pointer a producer hands over.
pub fn fresh_export() -> *mut DLManagedTensorVersioned {
    Export::new(vec![0f32; 1000])
        .versioned()
        .unwrap()
        .into_raw()
}

/// dlpark 0.10's export of a `Vec<f32>` with `shape` and `strides`, as its user writes it
/// (the benchmarks' peer).
pub fn dlpark_export_vec(v: Vec<f32>, shape: &[i64], strides: &[i64]) -> dlpark::versioned::Dlpack {
    let data = v.as_ptr() as *mut c_void;
    let prepared = dlpark::metadata::Dynamic::new(shape, strides)
        .prepare_as::<dlpark::ffi::DLManagedTensorVersioned>()
        .unwrap();
    let mut initialized = prepared.initialize(Box::new(v));
    initialized.set_data(data);
    initialized.set_dtype(<f32 as dlpark::DlpackElement>::DTYPE);
    initialized.set_device(dlpark::ffi::DLDevice::CPU);
    // SAFETY: data, dtype and device describe the boxed Vec, which the tensor owns as its
    // context; shape and strides were copied in.
    unsafe { initialized.finish() }
}

/// Width and height of the image fixtures: a 64x48 RGB image of `u8`.
pub const IMAGE_WIDTH: u32 = 64;
/// See [`IMAGE_WIDTH`].
pub const IMAGE_HEIGHT: u32 = 48;

/// A fresh 64x48 RGB image of `u8` (the pixels made outside the clock).
pub fn rgb_image() -> image::RgbImage {
    image::RgbImage::from_pixel(IMAGE_WIDTH, IMAGE_HEIGHT, image::Rgb([1, 2, 3]))
}

/// dlpark 0.10's export of an image, as its user writes it: the image boxed, converted to a
/// fixed-rank builder, finished.
pub fn dlpark_export_image(img: image::RgbImage) -> dlpark::versioned::Dlpack {
    let initialized: dlpark::allocation::fixed::Initialized<
        dlpark::ffi::DLManagedTensorVersioned,
        3,
    > = Box::new(img).try_into().unwrap();
    // SAFETY: dlpark's image producer filled every field.
    unsafe { initialized.finish() }
}

/// A fresh export of [`rgb_image`] (height x width x 3 `u8`, with strides), as the raw pointer
/// a producer hands over; both crates can read it as an image.
pub fn fresh_image_export() -> *mut DLManagedTensorVersioned {
    Export::new(vec![7u8; (IMAGE_WIDTH * IMAGE_HEIGHT * 3) as usize])
        .shape(&[i64::from(IMAGE_HEIGHT), i64::from(IMAGE_WIDTH), 3])
        .versioned()
        .unwrap()
        .into_raw()
}

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

/// The tensor `safetensors_open_first_tensor` takes from a [`ModelFile`].
pub const MODEL_FIRST: &str = "layers.0.weight";

/// A model-like `.safetensors` file in a temporary folder: 128 tensors
/// (`layers.<i>.weight`, f32 16 x 16), removed when dropped.
#[derive(Debug)]
pub struct ModelFile(std::path::PathBuf);

impl ModelFile {
    /// Writes the file.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("dlpack-bench-st-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exports: Vec<_> = (0..128)
            .map(|i| {
                dlpack_core::export::Export::new(vec![i as f32; 256])
                    .shape(&[16, 16])
                    .versioned()
                    .unwrap()
            })
            .collect();
        let views: Vec<_> = exports.iter().map(|t| t.view()).collect();
        let names: Vec<String> = (0..128).map(|i| format!("layers.{i}.weight")).collect();
        let named: Vec<_> = names.iter().map(String::as_str).zip(&views).collect();
        let path = dir.join("model.safetensors");
        let bytes = dlpack_safetensors::consumer::serialize(&named, &[("format", "pt")]).unwrap();
        std::fs::write(&path, bytes).unwrap();
        ModelFile(path)
    }

    /// Where it is.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Default for ModelFile {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ModelFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}
