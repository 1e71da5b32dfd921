//! Hot paths of dlpack-core and dlpack-ndarray.
//!
//! - export of an owned Vec as a versioned managed tensor (ndim 1 and 4),
//!   including the release by the deleter;
//! - validation of a foreign 4-d tensor;
//! - creation of an ndarray view from a validated tensor.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dlpack_benches::{batched, foreign_4d};
use dlpack_core::export::Export;
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_core::tensor::{Flags, TensorView};

/// Times `routine` alone over `iters` fresh `Vec`s of `len` elements ([`batched`]).
fn time_exports<T>(iters: u64, len: usize, routine: impl Fn(Vec<f32>) -> T) -> Duration {
    batched(iters, || vec![1.0f32; len], routine)
}

fn export(c: &mut Criterion) {
    let mut group = c.benchmark_group("export");
    // Only the export is timed: one allocation for the managed struct,
    // shape, strides and owner. The Vecs are made before the clock starts
    // and the tensors released after it stops.
    group.bench_function("vec_f32_ndim1_versioned", |b| {
        b.iter_custom(|iters| time_exports(iters, 64, |v| Export::new(v).versioned().unwrap()))
    });
    group.bench_function("vec_f32_ndim4_versioned", |b| {
        b.iter_custom(|iters| {
            time_exports(iters, 120, |v| {
                Export::new(v).shape(&[2, 3, 4, 5]).versioned().unwrap()
            })
        })
    });
    group.bench_function("vec_f32_ndim4_legacy", |b| {
        b.iter_custom(|iters| {
            time_exports(iters, 120, |v| {
                Export::new(v).shape(&[2, 3, 4, 5]).legacy().unwrap()
            })
        })
    });
    // The whole life of an exported tensor: export, then release through
    // the deleter (which also frees the Vec's buffer).
    group.bench_function("vec_f32_ndim4_versioned_and_release", |b| {
        b.iter_custom(|iters| {
            time_exports(iters, 120, |v| {
                drop(Export::new(v).shape(&[2, 3, 4, 5]).versioned().unwrap())
            })
        })
    });
    group.finish();
}

fn validate(c: &mut Criterion) {
    let mut data = vec![0f32; 120];
    let (mut shape, mut strides) = ([0; 4], [0; 4]);
    let raw = foreign_4d(&mut data, &mut shape, &mut strides);
    c.bench_function("validate/foreign_f32_ndim4", |b| {
        b.iter(|| {
            // SAFETY: `raw` describes `data`, `shape` and `strides`, alive here.
            let view = unsafe { TensorView::from_raw(black_box(&raw), Flags::from_bits(0)) };
            black_box(view.unwrap().num_elements())
        })
    });
}

fn ndarray_view(c: &mut Criterion) {
    let t: ManagedTensorVersioned = Export::new(vec![0f32; 120])
        .shape(&[2, 3, 4, 5])
        .versioned()
        .unwrap();
    c.bench_function("ndarray/view_f32_ix4", |b| {
        b.iter(|| {
            let view = black_box(&t).view();
            let array = dlpack_ndarray::import::array_view::<f32, ndarray::Ix4>(&view).unwrap();
            black_box(array.len())
        })
    });
    c.bench_function("ndarray/view_f32_ixdyn", |b| {
        b.iter(|| {
            let view = black_box(&t).view();
            let array = dlpack_ndarray::import::array_view_dyn::<f32>(&view).unwrap();
            black_box(array.len())
        })
    });
}

criterion_group!(benches, export, validate, ndarray_view);
criterion_main!(benches);
