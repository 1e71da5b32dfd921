//! Property tests: the checked layout analysis agrees with a slow reference
//! that walks every element with 128-bit arithmetic.

use dlpack_core::dtype::Storage;
use dlpack_core::layout::{analyze, is_f_contiguous};
use proptest::prelude::*;

/// Slow reference: visit every element.
fn reference(shape: &[i64], strides: &[i64], size: i64) -> (u64, i128, i128, bool, bool) {
    let n: i128 = shape.iter().map(|&e| e as i128).product();
    if n == 0 {
        return (0, 0, 0, true, true);
    }
    let (mut lo, mut hi) = (i128::MAX, i128::MIN);
    let mut index = vec![0i64; shape.len()];
    let mut c_order = Vec::new();
    for _ in 0..n {
        let off: i128 = index
            .iter()
            .zip(strides)
            .map(|(&i, &s)| i as i128 * s as i128)
            .sum();
        lo = lo.min(off);
        hi = hi.max(off);
        c_order.push(off);
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    let c_contig = c_order.iter().enumerate().all(|(i, &off)| off == i as i128);
    // F order: the first axis varies fastest.
    let mut f_contig = true;
    let mut index = vec![0i64; shape.len()];
    for i in 0..n {
        let off: i128 = index
            .iter()
            .zip(strides)
            .map(|(&i, &s)| i as i128 * s as i128)
            .sum();
        f_contig &= off == i;
        for axis in 0..shape.len() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    (
        n as u64,
        lo * size as i128,
        (hi + 1) * size as i128,
        c_contig,
        f_contig,
    )
}

fn shape_and_strides() -> impl Strategy<Value = (Vec<i64>, Vec<i64>)> {
    (0usize..5).prop_flat_map(|ndim| {
        (
            prop::collection::vec(0i64..5, ndim),
            prop::collection::vec(-7i64..8, ndim),
        )
    })
}

proptest! {
    // Under miri: few cases, and no failure-persistence file (miri isolates
    // the file system).
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 16 } else { 2000 },
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    #[test]
    fn analysis_matches_reference((shape, strides) in shape_and_strides(), size in 1u32..17) {
        let got = analyze(&shape, Some(&strides), Storage::Bytes(size)).unwrap();
        let (n, start, end, c, f) = reference(&shape, &strides, size as i64);
        prop_assert_eq!(got.elements, n);
        prop_assert_eq!(got.start as i128, start);
        prop_assert_eq!(got.end as i128, end);
        // A layout that visits offsets 0..n in order is compact row-major;
        // the analysis may call it contiguous only then.
        prop_assert_eq!(got.c_contiguous, c);
        prop_assert_eq!(is_f_contiguous(&shape, Some(&strides)), f);
    }

    #[test]
    fn null_strides_equal_row_major(shape in prop::collection::vec(0i64..6, 0..5)) {
        let mut strides = vec![0i64; shape.len()];
        dlpack_core::layout::row_major_strides(&shape, &mut strides).unwrap();
        prop_assert_eq!(
            analyze(&shape, None, Storage::Bytes(4)).unwrap(),
            analyze(&shape, Some(&strides), Storage::Bytes(4)).unwrap()
        );
    }

    #[test]
    fn huge_values_never_panic(
        shape in prop::collection::vec(any::<i64>(), 0..6),
        strides in prop::collection::vec(any::<i64>(), 0..6),
        size in 1u32..32,
    ) {
        let strides = if strides.len() == shape.len() { Some(&strides[..]) } else { None };
        let _ = analyze(&shape, strides, Storage::Bytes(size));
        let _ = analyze(&shape, strides, Storage::PackedBits(4));
    }
}
