//! Hot paths of dlpack-core and dlpack-ndarray.
//!
//! - export of an owned Vec as a versioned managed tensor (ndim 1 and 4),
//!   including the release by the deleter;
//! - validation of a foreign 4-d tensor;
//! - creation of an ndarray view from a validated tensor.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dlpack_benches::foreign_4d;
use dlpack_core::export::Export;
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_core::tensor::{Flags, TensorView};

fn export(c: &mut Criterion) {
    let mut group = c.benchmark_group("export");
    // The Vec is made, and the exported tensor dropped, outside the timed
    // region (iter_batched), so the first two cases time the export alone:
    // one allocation for the managed struct, shape, strides and owner. The
    // third adds the release through the deleter.
    group.bench_function("vec_f32_ndim1_versioned", |b| {
        b.iter_batched(
            || vec![1.0f32; 1024],
            |v| black_box(Export::new(v).versioned().unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("vec_f32_ndim4_versioned", |b| {
        b.iter_batched(
            || vec![1.0f32; 120],
            |v| black_box(Export::new(v).shape(&[2, 3, 4, 5]).versioned().unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("vec_f32_ndim4_versioned_and_release", |b| {
        b.iter_batched(
            || vec![1.0f32; 120],
            |v| {
                drop(black_box(
                    Export::new(v).shape(&[2, 3, 4, 5]).versioned().unwrap(),
                ))
            },
            criterion::BatchSize::SmallInput,
        )
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
