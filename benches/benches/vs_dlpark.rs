//! dlpack-core / dlpack-ndarray side by side with dlpark 0.10, the other
//! Rust DLPack crate, on every operation both offer.
//!
//! Each operation is one criterion group with two functions, `ours` and
//! `dlpark`, measured in the same run over the same inputs, so both see the
//! same machine state; `cargo xtask bench` prints the ratio table from the
//! medians (BENCHMARKS.md keeps it).
//!
//! Heap behaviour: inputs are made in batches of [`dlpack_benches::BATCH`] before the clock
//! starts and outputs are released after it stops (unless releasing is the
//! operation), so the allocator recycles the same blocks as in steady use.
//! Where releasing is the operation, a batch is freed on the clock, and with
//! glibc's defaults whether that shrinks the heap depends on the groups that
//! ran before; `cargo xtask bench` therefore runs criterion with
//! `GLIBC_TUNABLES=glibc.malloc.trim_threshold=4294967295:glibc.malloc.top_pad=67108864`
//! (no trimming; set it by hand for a bare `cargo bench`).
//!
//! What each side does is what its user writes for the operation: dlpark's
//! export is `Dynamic::new(shape, strides).prepare_as().initialize(Box<owner>)`
//! plus the scalar fields, its import `Managed::from_raw` plus `validate()`,
//! its view `ArrayViewD::try_from_dlpack`; for images, its export is
//! `fixed::Initialized::try_from(Box<ImageBuffer>)` and its view
//! `ImageBuffer<P, &[T]>::try_from_dlpack`; for candle, its export is
//! `dynamic::Initialized::try_from(Box<Tensor>)`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dlpack_benches::{
    MODEL_FIRST, ModelFile, batched, dlpark_export_image, dlpark_export_vec, fresh_export,
    fresh_image_export, rgb_image,
};
use dlpack_core::export::Export;
use dlpack_core::ffi::DLManagedTensorVersioned;
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_image::{AsImage, IntoDlpack};
use dlpark::TryFromDlpack;
use dlpark::allocation::dynamic;
use image::{ImageBuffer, Rgb};
use ndarray::{Array2, ArrayViewD};

/// Row-major strides of `shape`, in elements.
fn compact_strides(shape: &[i64]) -> Vec<i64> {
    let mut strides = vec![1i64; shape.len()];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * shape[axis + 1];
    }
    strides
}

/// Export → versioned managed tensor → release, for a `Vec<f32>` of
/// `shape` (the release is on the clock: it is half of an export's life).
fn export_vec(c: &mut Criterion, name: &str, shape: &'static [i64]) {
    let len = shape.iter().product::<i64>() as usize;
    let strides = compact_strides(shape);
    let mut group = c.benchmark_group(format!("vs_dlpark/{name}"));
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                || vec![1.0f32; len],
                |v| drop(Export::new(v).shape(black_box(shape)).versioned().unwrap()),
            )
        })
    });
    group.bench_function("dlpark", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                || vec![1.0f32; len],
                |v| drop(dlpark_export_vec(v, black_box(shape), black_box(&strides))),
            )
        })
    });
    group.finish();
}

fn export_vec_1d(c: &mut Criterion) {
    export_vec(c, "export_vec_1000_and_release", &[1000]);
}

fn export_vec_3d(c: &mut Criterion) {
    export_vec(c, "export_vec_10x10x10_and_release", &[10, 10, 10]);
}

/// Export of an owned `Array2<f32>` 100×10 → release.
fn export_array2(c: &mut Criterion) {
    let make = || Array2::<f32>::ones((100, 10));
    let mut group = c.benchmark_group("vs_dlpark/export_array2_100x10_and_release");
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            batched(iters, make, |a| {
                drop(
                    dlpack_ndarray::export::ArrayExport::new(a)
                        .versioned()
                        .unwrap(),
                )
            })
        })
    });
    group.bench_function("dlpark", |b| {
        b.iter_custom(|iters| {
            batched(iters, make, |a| {
                let initialized: dynamic::Initialized<dlpark::ffi::DLManagedTensorVersioned> =
                    Box::new(a).try_into().unwrap();
                // SAFETY: dlpark's ndarray producer filled every field.
                drop(unsafe { initialized.finish() })
            })
        })
    });
    group.finish();
}

/// A raw versioned tensor over `data` (1000 f32, 1-d) with no deleter: the
/// import's own work (take ownership, validate, drop) and nothing else.
struct Foreign {
    _data: Vec<f32>,
    _shape: Box<[i64; 1]>,
    _strides: Box<[i64; 1]>,
    managed: Box<DLManagedTensorVersioned>,
}

impl Foreign {
    fn new() -> Self {
        let mut data = vec![0f32; 1000];
        let mut shape = Box::new([1000i64]);
        // DLPack >= 1.2 tensors carry strides (dlpark refuses NULL ones).
        let mut strides = Box::new([1i64]);
        // SAFETY: an all-zero DLManagedTensorVersioned is valid (null
        // pointers, no deleter); every field read is set below.
        let mut managed: Box<DLManagedTensorVersioned> = Box::new(unsafe { std::mem::zeroed() });
        managed.version.major = 1;
        managed.version.minor = 3;
        managed.dl_tensor.data = data.as_mut_ptr().cast();
        managed.dl_tensor.device = dlpack_core::ffi::DLDevice::cpu();
        managed.dl_tensor.ndim = 1;
        managed.dl_tensor.dtype = dlpack_core::ffi::DLDataType::F32;
        managed.dl_tensor.shape = shape.as_mut_ptr();
        managed.dl_tensor.strides = strides.as_mut_ptr();
        Foreign {
            _data: data,
            _shape: shape,
            _strides: strides,
            managed,
        }
    }

    fn raw(&mut self) -> *mut DLManagedTensorVersioned {
        &mut *self.managed
    }
}

/// Take ownership of a raw versioned tensor and validate it (no deleter).
fn import_raw(c: &mut Criterion) {
    let mut foreign = Foreign::new();
    let raw = foreign.raw();
    let mut group = c.benchmark_group("vs_dlpark/import_raw_and_validate");
    group.bench_function("ours", |b| {
        b.iter(|| {
            // SAFETY: `raw` is a valid tensor with no deleter, alive here.
            let t = unsafe { ManagedTensorVersioned::from_raw(black_box(raw)) }.unwrap();
            black_box(t.view().num_elements())
        })
    });
    group.bench_function("dlpark", |b| {
        b.iter(|| {
            // SAFETY: as above; dlpark's ffi struct has the same C layout.
            let t = unsafe { dlpark::versioned::Dlpack::from_raw(black_box(raw.cast())) }.unwrap();
            let n = t.validate().unwrap().shape().len();
            black_box(n)
        })
    });
    group.finish();
}

/// Take ownership of a fresh export, validate it and release it through its
/// real deleter (the same producer for both sides).
fn import_fresh(c: &mut Criterion) {
    let mut group = c.benchmark_group("vs_dlpark/import_fresh_export_and_release");
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            batched(iters, fresh_export, |raw| {
                // SAFETY: `raw` is a fresh export, owned from here on.
                let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
                black_box(t.view().num_elements());
            })
        })
    });
    group.bench_function("dlpark", |b| {
        b.iter_custom(|iters| {
            batched(iters, fresh_export, |raw| {
                // SAFETY: as above; same C layout.
                let t = unsafe { dlpark::versioned::Dlpack::from_raw(raw.cast()) }.unwrap();
                black_box(t.validate().unwrap().shape().len());
            })
        })
    });
    group.finish();
}

/// `ArrayViewD<f32>` of an imported tensor (held, so only the view is timed).
fn view_dyn(c: &mut Criterion) {
    let ours = {
        // SAFETY: a fresh export, owned from here on.
        unsafe { ManagedTensorVersioned::from_raw(fresh_export()) }.unwrap()
    };
    // SAFETY: a fresh export, owned from here on.
    let theirs = unsafe { dlpark::versioned::Dlpack::from_raw(fresh_export().cast()) }.unwrap();
    let mut group = c.benchmark_group("vs_dlpark/ndarray_view_dyn");
    group.bench_function("ours", |b| {
        b.iter(|| {
            let view = black_box(&ours).view();
            let array = dlpack_ndarray::import::array_view_dyn::<f32>(&view).unwrap();
            black_box(array.len())
        })
    });
    group.bench_function("dlpark", |b| {
        b.iter(|| {
            // SAFETY: the tensor's memory is alive and unaliased mutably.
            let array =
                unsafe { ArrayViewD::<f32>::try_from_dlpack(black_box(&theirs), ()) }.unwrap();
            black_box(array.len())
        })
    });
    group.finish();
}

/// Import a fresh export, view it as `ArrayViewD<f32>`, read it, release it.
fn import_view_drop(c: &mut Criterion) {
    let mut group = c.benchmark_group("vs_dlpark/import_view_and_release");
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            batched(iters, fresh_export, |raw| {
                // SAFETY: `raw` is a fresh export, owned from here on.
                let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
                let view = t.view();
                let array = dlpack_ndarray::import::array_view_dyn::<f32>(&view).unwrap();
                black_box(array.len());
            })
        })
    });
    group.bench_function("dlpark", |b| {
        b.iter_custom(|iters| {
            batched(iters, fresh_export, |raw| {
                // SAFETY: as above; same C layout.
                let t = unsafe { dlpark::versioned::Dlpack::from_raw(raw.cast()) }.unwrap();
                // SAFETY: the tensor's memory is alive while `t` is.
                let array = unsafe { ArrayViewD::<f32>::try_from_dlpack(&t, ()) }.unwrap();
                black_box(array.len());
            })
        })
    });
    group.finish();
}

/// Export of an owned 64x48 RGB `u8` image → release.
fn export_image(c: &mut Criterion) {
    let mut group = c.benchmark_group("vs_dlpark/export_image_rgb8_64x48_and_release");
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            batched(iters, rgb_image, |img| {
                drop(img.into_dlpack_versioned().unwrap())
            })
        })
    });
    group.bench_function("dlpark", |b| {
        b.iter_custom(|iters| batched(iters, rgb_image, |img| drop(dlpark_export_image(img))))
    });
    group.finish();
}

/// `ImageBuffer<Rgb<u8>, &[u8]>` of an imported 64x48 image tensor (held, so
/// only the view is timed).
fn image_view(c: &mut Criterion) {
    // SAFETY: a fresh export, owned from here on.
    let ours = unsafe { ManagedTensorVersioned::from_raw(fresh_image_export()) }.unwrap();
    // SAFETY: as above; same C layout.
    let theirs =
        unsafe { dlpark::versioned::Dlpack::from_raw(fresh_image_export().cast()) }.unwrap();
    let mut group = c.benchmark_group("vs_dlpark/image_view_rgb8");
    group.bench_function("ours", |b| {
        b.iter(|| {
            let img = black_box(&ours).as_image::<Rgb<u8>>().unwrap();
            black_box(img.width())
        })
    });
    group.bench_function("dlpark", |b| {
        b.iter(|| {
            // SAFETY: the tensor's memory is alive while `theirs` is.
            let img =
                unsafe { ImageBuffer::<Rgb<u8>, &[u8]>::try_from_dlpack(black_box(&theirs), ()) }
                    .unwrap();
            black_box(img.width())
        })
    });
    group.finish();
}

/// Import a fresh image export, view it as an `ImageBuffer`, release it.
fn import_image_view_drop(c: &mut Criterion) {
    let mut group = c.benchmark_group("vs_dlpark/import_image_view_and_release");
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            batched(iters, fresh_image_export, |raw| {
                // SAFETY: `raw` is a fresh export, owned from here on.
                let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
                black_box(t.as_image::<Rgb<u8>>().unwrap().width());
            })
        })
    });
    group.bench_function("dlpark", |b| {
        b.iter_custom(|iters| {
            batched(iters, fresh_image_export, |raw| {
                // SAFETY: as above; same C layout.
                let t = unsafe { dlpark::versioned::Dlpack::from_raw(raw.cast()) }.unwrap();
                // SAFETY: the tensor's memory is alive while `t` is.
                let img = unsafe { ImageBuffer::<Rgb<u8>, &[u8]>::try_from_dlpack(&t, ()) };
                black_box(img.unwrap().width());
            })
        })
    });
    group.finish();
}

/// Open (map, parse and check the header) a 128-tensor file, take the
/// first tensor as a read-only DLPack tensor, release both (unmap).
fn safetensors_open(c: &mut Criterion) {
    let file = ModelFile::new();
    let path = file.path();
    let mut group = c.benchmark_group("vs_dlpark/safetensors_open_first_tensor");
    group.bench_function("ours", |b| {
        b.iter(|| {
            let f = dlpack_safetensors::SafetensorsFile::open(black_box(path)).unwrap();
            black_box(f.tensor(MODEL_FIRST).unwrap());
        })
    });
    group.bench_function("dlpark", |b| {
        b.iter(|| {
            let f = dlpark::interop::safetensors::SafeTensorFile::open(black_box(path)).unwrap();
            black_box(f.tensor(MODEL_FIRST).unwrap());
        })
    });
    group.finish();
}

/// Export of a candle CPU tensor (64x48 `f32`, and its transposed view) →
/// release. Both sides keep the tensor alive with a clone of it (dlpark
/// boxes the clone; ours holds it in the core's one block).
fn export_candle(c: &mut Criterion) {
    use candle_core::{Device, Tensor};
    let t = Tensor::arange(0f32, 64. * 48., &Device::Cpu)
        .unwrap()
        .reshape((64, 48))
        .unwrap();
    for (name, tensor) in [("contiguous", t.clone()), ("transposed", t.t().unwrap())] {
        let mut group = c.benchmark_group(format!(
            "vs_dlpark/export_candle_f32_64x48_{name}_and_release"
        ));
        group.bench_function("ours", |b| {
            b.iter(|| drop(dlpack_candle::export(black_box(&tensor)).unwrap()))
        });
        group.bench_function("dlpark", |b| {
            b.iter(|| {
                let initialized: dynamic::Initialized<dlpark::ffi::DLManagedTensorVersioned> =
                    Box::new(black_box(&tensor).clone()).try_into().unwrap();
                // SAFETY: dlpark's candle producer filled every field.
                drop(unsafe { initialized.finish() })
            })
        });
        group.finish();
    }
}

criterion_group!(
    benches,
    safetensors_open,
    export_candle,
    export_vec_1d,
    export_vec_3d,
    export_array2,
    import_raw,
    import_fresh,
    view_dyn,
    import_view_drop,
    export_image,
    image_view,
    import_image_view_drop
);
criterion_main!(benches);
