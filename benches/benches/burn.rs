//! dlpack-burn: export of `TensorData` and import into `TensorData`, next
//! to what a user writes without this crate: a copy of the elements into
//! `TensorData::new(vec, shape)` (import) or into a `Vec` exported by the
//! core (export). dlpark 0.10 has no burn adapter, so these copies are the
//! reference.
//!
//! Inputs are made and outputs released outside the clock, in batches
//! ([`dlpack_benches::batched`]); so the release of an imported tensor
//! (its deleter) is not timed, nor the drop of the copies.

use std::hint::black_box;

use burn_std::TensorData;
use criterion::{Criterion, criterion_group, criterion_main};
use dlpack_benches::batched;
use dlpack_burn::consumer::copy_tensor_data;
use dlpack_burn::{IntoBurn, IntoDlpack};
use dlpack_core::export::Export;
use dlpack_core::managed::ManagedTensorVersioned;

/// Element counts: a small tensor (the per-call overhead) and a 256 KiB one
/// (where a copy's cost shows).
const SIZES: [(&str, usize); 2] = [("1k", 1000), ("64k", 64 * 1024)];

fn data(len: usize) -> TensorData {
    TensorData::new(vec![1.0f32; len], [len / 8, 8])
}

fn export(c: &mut Criterion) {
    for (name, len) in SIZES {
        let mut group = c.benchmark_group(format!("burn/export_{name}"));
        group.bench_function("ours", |b| {
            b.iter_custom(|iters| {
                batched(
                    iters,
                    || data(len),
                    |d| black_box(d).into_dlpack_versioned().unwrap(),
                )
            })
        });
        group.bench_function("copy", |b| {
            b.iter_custom(|iters| {
                batched(
                    iters,
                    || data(len),
                    |d| {
                        let elements = black_box(&d).as_slice::<f32>().unwrap().to_vec();
                        Export::new(elements)
                            .shape(&[(len / 8) as i64, 8])
                            .versioned()
                            .unwrap()
                    },
                )
            })
        });
        group.finish();
    }
}

fn fresh(len: usize) -> ManagedTensorVersioned {
    let raw = Export::new(vec![1.0f32; len])
        .shape(&[(len / 8) as i64, 8])
        .versioned()
        .unwrap()
        .into_raw();
    // SAFETY: exported here, consumed once.
    unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap()
}

fn import(c: &mut Criterion) {
    for (name, len) in SIZES {
        let mut group = c.benchmark_group(format!("burn/import_{name}"));
        group.bench_function("ours", |b| {
            b.iter_custom(|iters| {
                batched(
                    iters,
                    || fresh(len),
                    |t| black_box(t).into_tensor_data().unwrap(),
                )
            })
        });
        group.bench_function("copy_tensor_data", |b| {
            b.iter_custom(|iters| {
                batched(
                    iters,
                    || fresh(len),
                    |t| (copy_tensor_data(&black_box(&t).view()).unwrap(), t),
                )
            })
        });
        group.bench_function("copy", |b| {
            b.iter_custom(|iters| {
                batched(
                    iters,
                    || fresh(len),
                    |t| {
                        let view = black_box(&t).view();
                        let elements = view.as_slice::<f32>().unwrap().to_vec();
                        (TensorData::new(elements, [len / 8, 8]), t)
                    },
                )
            })
        });
        group.finish();
    }
}

criterion_group!(benches, export, import);
criterion_main!(benches);
