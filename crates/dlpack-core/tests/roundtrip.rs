//! Round trips through the raw C structs for every element type the core
//! maps, ndim 0 to 8, and C, F, sliced, negative-stride and size-zero
//! layouts: export a Vec, hand the raw pointer over, take it back with
//! `from_raw`, and read every element through the validated view.

use dlpack_core::Element;
use dlpack_core::export::Export;
use dlpack_core::managed::{ManagedTensor, ManagedTensorVersioned};
use dlpack_core::tensor::TensorView;

#[derive(Copy, Clone, Debug)]
enum Kind {
    C,
    F,
    Sliced,
    Reversed,
    Empty,
}

/// A layout over a parent buffer: shape, element strides, the offset of the
/// first element, and how many elements the parent buffer has.
struct Case {
    shape: Vec<i64>,
    strides: Vec<i64>,
    first: i64,
    parent_len: usize,
}

fn row_major(shape: &[i64]) -> Vec<i64> {
    let mut strides = vec![0; shape.len()];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        strides[i] = s;
        s *= shape[i].max(1);
    }
    strides
}

fn layout(kind: Kind, ndim: usize) -> Case {
    // Extents 2 and 3 alternate; a size-zero case puts a 0 in the middle.
    let mut shape: Vec<i64> = (0..ndim).map(|i| 2 + (i % 2) as i64).collect();
    let count = |s: &[i64]| s.iter().product::<i64>() as usize;
    match kind {
        Kind::C => Case {
            strides: row_major(&shape),
            first: 0,
            parent_len: count(&shape),
            shape,
        },
        Kind::F => {
            let mut strides = vec![0; ndim];
            let mut s = 1;
            for i in 0..ndim {
                strides[i] = s;
                s *= shape[i];
            }
            Case {
                strides,
                first: 0,
                parent_len: count(&shape),
                shape,
            }
        }
        Kind::Sliced => {
            // Every other element along each axis of a parent twice as large.
            let parent: Vec<i64> = shape.iter().map(|e| e * 2).collect();
            let strides = row_major(&parent).iter().map(|s| s * 2).collect();
            Case {
                strides,
                first: 0,
                parent_len: count(&parent),
                shape,
            }
        }
        Kind::Reversed => {
            let strides: Vec<i64> = row_major(&shape).iter().map(|s| -s).collect();
            let n = count(&shape);
            Case {
                strides,
                first: n as i64 - 1,
                parent_len: n,
                shape,
            }
        }
        Kind::Empty => {
            if ndim > 0 {
                shape[ndim / 2] = 0;
            }
            Case {
                strides: row_major(&shape),
                first: 0,
                parent_len: count(&shape),
                shape,
            }
        }
    }
}

/// Offsets (relative to the first element) of every element, in row-major
/// order of the logical index.
fn offsets(shape: &[i64], strides: &[i64]) -> Vec<i64> {
    let n: i64 = shape.iter().product();
    let mut out = Vec::with_capacity(n as usize);
    let mut index = vec![0i64; shape.len()];
    for _ in 0..n {
        out.push(index.iter().zip(strides).map(|(i, s)| i * s).sum());
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

fn read_all<T: Element>(view: &TensorView<'_>) -> Vec<T> {
    let first = view.element_ptr::<T>().unwrap();
    let strides: Vec<i64> = view.strides().collect();
    offsets(view.shape(), &strides)
        .into_iter()
        // SAFETY: every offset lies within the validated layout.
        .map(|off| unsafe { *first.offset(off as isize) })
        .collect()
}

fn check<T: Element + PartialEq + std::fmt::Debug>(make: impl Fn(usize) -> T) {
    let max_ndim = if cfg!(miri) { 3 } else { 8 };
    for kind in [Kind::C, Kind::F, Kind::Sliced, Kind::Reversed, Kind::Empty] {
        for ndim in 0..=max_ndim {
            let case = layout(kind, ndim);
            let parent: Vec<T> = (0..case.parent_len).map(&make).collect();
            let expected: Vec<T> = offsets(&case.shape, &case.strides)
                .into_iter()
                .map(|off| parent[(case.first + off) as usize])
                .collect();
            let base = parent.as_ptr() as usize;
            let size = std::mem::size_of::<T>();
            let first_addr = base + case.first as usize * size;
            let byte_offset = (case.first as usize * size) as u64;
            let what = format!("{:?} {kind:?} ndim {ndim}", T::DTYPE);

            for legacy in [false, true] {
                let export = Export::new(parent.clone())
                    .shape(&case.shape)
                    .strides(&case.strides)
                    .byte_offset(byte_offset);
                let got = if legacy {
                    let raw = export.legacy().unwrap().into_raw();
                    // SAFETY: raw came from into_raw; ownership returns.
                    let t = unsafe { ManagedTensor::from_raw(raw) }.unwrap();
                    check_view(&t.view(), &case, &what);
                    read_all::<T>(&t.view())
                } else {
                    let raw = export.versioned().unwrap().into_raw();
                    // SAFETY: raw came from into_raw; ownership returns.
                    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
                    check_view(&t.view(), &case, &what);
                    read_all::<T>(&t.view())
                };
                assert_eq!(got, expected, "{what} legacy={legacy}");
            }

            // Zero-copy: the first element is where the owner put it.
            let t = Export::new(parent)
                .shape(&case.shape)
                .strides(&case.strides)
                .byte_offset(byte_offset)
                .versioned()
                .unwrap();
            if !expected.is_empty() {
                assert_eq!(t.view().data_ptr() as usize, first_addr, "{what}");
            } else {
                assert!(t.dl_tensor().data.is_null(), "{what}");
            }
        }
    }
}

fn check_view(view: &TensorView<'_>, case: &Case, what: &str) {
    assert_eq!(view.shape(), &case.shape[..], "{what}");
    assert_eq!(view.strides().collect::<Vec<_>>(), case.strides, "{what}");
    assert_eq!(view.ndim(), case.shape.len(), "{what}");
}

#[test]
fn every_integer_type() {
    check(|i| i as i8);
    check(|i| (i as i16).wrapping_mul(-3));
    check(|i| (i as i32).wrapping_mul(1000));
    check(|i| (i as i64).wrapping_mul(-(1 << 40)));
    check(|i| i as u8);
    check(|i| (i as u16).wrapping_mul(7));
    check(|i| (i as u32).wrapping_mul(70000));
    check(|i| (i as u64).wrapping_mul(1 << 50));
}

#[test]
fn every_float_and_bool_type() {
    check(|i| i as f32 * 0.5);
    check(|i| i as f64 * -0.25);
    check(|i| i % 3 == 0);
}

#[cfg(feature = "half")]
#[test]
fn half_types() {
    check(|i| half::f16::from_f32(i as f32));
    check(|i| half::bf16::from_f32(i as f32 * 2.0));
}

#[cfg(feature = "num-complex")]
#[test]
fn complex_types() {
    check(|i| num_complex::Complex::new(i as f32, -(i as f32)));
    check(|i| num_complex::Complex::new(i as f64 * 0.5, 1.0));
}

/// `Export::with_layout` (a layout analysed beforehand) builds the same
/// tensor as a plain export, for compact, strided, negative and empty
/// layouts, and still checks bounds against the owner.
#[test]
fn with_layout_matches_plain_export() {
    use dlpack_core::dtype::Storage;
    use dlpack_core::layout::analyze;
    type Case<'a> = (&'a [i64], Option<&'a [i64]>, u64);
    let cases: &[Case<'_>] = &[
        (&[2, 3], None, 0),
        (&[3, 2], Some(&[1, 3]), 0),
        (&[3], Some(&[-2]), 16),
        (&[0, 4], Some(&[7, 9]), 0),
        (&[], None, 0),
        (&[1, 1, 6], Some(&[99, 5, 1]), 0),
    ];
    for &(shape, strides, offset) in cases {
        let layout = analyze(shape, strides, Storage::Bytes(4)).unwrap();
        let build = |hint: bool| {
            let mut ex = Export::new(vec![0f32; 6]).shape(shape).byte_offset(offset);
            if let Some(s) = strides {
                ex = ex.strides(s);
            }
            if hint {
                // SAFETY: the layout was analysed for this shape, strides and f32.
                ex = unsafe { ex.with_layout(layout) };
            }
            ex.versioned()
        };
        let (plain, hinted) = (build(false).unwrap(), build(true).unwrap());
        let (a, b) = (plain.view(), hinted.view());
        assert_eq!(a.layout(), b.layout());
        assert_eq!(a.shape(), b.shape());
        assert_eq!(
            a.strides().collect::<Vec<_>>(),
            b.strides().collect::<Vec<_>>()
        );
        assert_eq!(a.raw().byte_offset, b.raw().byte_offset);
        assert_eq!(a.raw().data.is_null(), b.raw().data.is_null());
    }
    // Out of bounds is still refused with a supplied layout.
    let layout = analyze(&[7], None, Storage::Bytes(4)).unwrap();
    // SAFETY: the layout was analysed for this shape and f32.
    let r = unsafe { Export::new(vec![0f32; 6]).shape(&[7]).with_layout(layout) }.versioned();
    assert!(matches!(r, Err(dlpack_core::Error::OutOfBounds { .. })));
}
