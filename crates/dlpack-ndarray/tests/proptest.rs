//! Random shapes and random slicing of an `Array`, exported and imported
//! back: equal values, same strides, same data pointer.

use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_ndarray::{AsArray, IntoDlpack};
use ndarray::{Array, IxDyn, ShapeBuilder, Slice};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    Config {
        cases: if cfg!(miri) { 8 } else { 256 },
        failure_persistence: None,
        rng_seed: if cfg!(miri) {
            RngSeed::Fixed(7)
        } else {
            RngSeed::Random
        },
        ..Config::default()
    }
}

/// Per axis: extent, slice start, step (±1..=3).
fn axes() -> impl Strategy<Value = Vec<(usize, usize, isize)>> {
    prop::collection::vec(
        (0usize..5, 0usize..5, prop_oneof![-3isize..=-1, 1isize..=3]),
        0..5,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sliced_arrays_roundtrip(axes in axes(), fortran in any::<bool>(), legacy in any::<bool>()) {
        let shape: Vec<usize> = axes.iter().map(|a| a.0).collect();
        let len: usize = shape.iter().product();
        let data: Vec<u32> = (0..len as u32).collect();
        let mut a = if fortran {
            Array::from_shape_vec(IxDyn(&shape).f(), data)
        } else {
            Array::from_shape_vec(IxDyn(&shape), data)
        }
        .unwrap();
        a.slice_each_axis_inplace(|ax| {
            let (extent, start, step) = axes[ax.axis.index()];
            Slice::new(start.min(extent) as isize, None, step)
        });
        let expected: Vec<u32> = a.iter().copied().collect();
        let (ptr, strides, shape) = (a.as_ptr(), a.strides().to_vec(), a.shape().to_vec());
        let tensor_shape: Vec<i64> = shape.iter().map(|&e| e as i64).collect();

        let check = |got: ndarray::ArrayViewD<'_, u32>| {
            prop_assert_eq!(got.shape(), &shape[..]);
            prop_assert_eq!(got.iter().copied().collect::<Vec<_>>(), expected.clone());
            if !expected.is_empty() {
                prop_assert_eq!(got.as_ptr(), ptr);
                for (axis, &e) in shape.iter().enumerate() {
                    if e > 1 {
                        prop_assert_eq!(got.strides()[axis], strides[axis]);
                    }
                }
            }
            Ok(())
        };
        if legacy {
            let t = a.into_dlpack_legacy().unwrap();
            prop_assert_eq!(t.view().shape(), &tensor_shape[..]);
            check(t.as_array().unwrap())?;
        } else {
            let raw = a.into_dlpack_versioned().unwrap().into_raw();
            // SAFETY: exported above, consumed once.
            let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
            prop_assert_eq!(t.view().shape(), &tensor_shape[..]);
            check(t.as_array().unwrap())?;
        }
    }
}
