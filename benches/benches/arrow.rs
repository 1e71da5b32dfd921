//! dlpack-arrow: export and import of a 1M-element Arrow array (dlpark has
//! no Arrow adapter, so these have no counterpart).
//!
//! - export of a `Float32Array` as a read-only versioned tensor, and its
//!   release (an `Arc` increment and one allocation: no copy, so the time
//!   does not grow with the length);
//! - import of a fresh tensor as a `PrimitiveArray<Float32Type>` (the Arrow
//!   buffer takes ownership of the tensor), and its release.

use std::hint::black_box;

use arrow_array::Float32Array;
use arrow_array::types::Float32Type;
use criterion::{Criterion, criterion_group, criterion_main};
use dlpack_arrow::ToDlpack;
use dlpack_arrow::consumer::ArrowImport;
use dlpack_benches::batched;

const LEN: usize = 1 << 20;

fn export(c: &mut Criterion) {
    let array = Float32Array::from(vec![1.0f32; LEN]);
    c.bench_function("arrow/export_f32_1m_and_release", |b| {
        b.iter(|| drop(black_box(&array).to_dlpack_versioned().unwrap()))
    });
}

fn import(c: &mut Criterion) {
    let array = Float32Array::from(vec![1.0f32; LEN]);
    c.bench_function("arrow/import_f32_1m_and_release", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                || array.to_dlpack_versioned().unwrap(),
                |t| {
                    drop(black_box(
                        ArrowImport::new(t).primitive::<Float32Type>().unwrap(),
                    ))
                },
            )
        })
    });
}

criterion_group!(benches, export, import);
criterion_main!(benches);
