//! Export → import round trips over every element type, ranks 0..=8 and the
//! layouts ndarray produces: values, shape, strides and the data pointer
//! (zero-copy) must survive, for versioned and legacy tensors, `Array` and
//! `ArcArray` owners, and through `into_raw`/`from_raw`.

use std::fmt::Debug;

use dlpack_core::managed::{AnyManagedTensor, ManagedTensor, ManagedTensorVersioned};
use dlpack_core::{Element, Error};
use dlpack_ndarray::export::ArrayExport;
use dlpack_ndarray::{AsArray, IntoDlpack};
use ndarray::{
    ArcArray, Array, ArrayD, ArrayView, Axis, Dimension, Ix0, Ix1, Ix2, Ix3, Ix4, Ix5, Ix6, IxDyn,
    ShapeBuilder, Slice,
};

#[derive(Copy, Clone, Debug, PartialEq)]
enum Layout {
    C,
    F,
    Sliced,
    Negative,
    SlicedNegative,
    ZeroSize,
}

const LAYOUTS: [Layout; 6] = [
    Layout::C,
    Layout::F,
    Layout::Sliced,
    Layout::Negative,
    Layout::SlicedNegative,
    Layout::ZeroSize,
];

/// Extents 3, 2, 3, 2, ... (small, so rank 8 stays at 1296 elements).
fn base_shape(ndim: usize) -> Vec<usize> {
    (0..ndim)
        .map(|axis| if axis % 2 == 0 { 3 } else { 2 })
        .collect()
}

fn make<T: Element>(ndim: usize, layout: Layout, value_at: fn(usize) -> T) -> ArrayD<T> {
    let mut shape = base_shape(ndim);
    if layout == Layout::ZeroSize {
        if ndim == 0 {
            // A 0-d array always has one element; use a 1-d empty one.
            shape = vec![0];
        } else {
            shape[ndim / 2] = 0;
        }
    }
    let len = shape.iter().product();
    let data: Vec<T> = (0..len).map(value_at).collect();
    let mut a = match layout {
        Layout::F | Layout::ZeroSize => Array::from_shape_vec(IxDyn(&shape).f(), data),
        _ => Array::from_shape_vec(IxDyn(&shape), data),
    }
    .unwrap();
    match layout {
        Layout::Sliced => a.slice_each_axis_inplace(|_| Slice::new(0, None, 2)),
        Layout::Negative => {
            for axis in (0..ndim).step_by(2) {
                a.invert_axis(Axis(axis));
            }
        }
        Layout::SlicedNegative => a.slice_each_axis_inplace(|ax| {
            Slice::new(0, None, if ax.axis.index() % 2 == 0 { -2 } else { 2 })
        }),
        _ => {}
    }
    a
}

/// What the original array looked like before it was moved into a tensor.
struct Expected<T> {
    shape: Vec<usize>,
    strides: Vec<isize>,
    ptr: *const T,
    values: Vec<T>,
}

impl<T: Element + PartialEq + Debug> Expected<T> {
    fn of<D: Dimension>(a: &ArrayView<'_, T, D>) -> Self {
        Expected {
            shape: a.shape().to_vec(),
            strides: a.strides().to_vec(),
            ptr: a.as_ptr(),
            values: a.iter().copied().collect(),
        }
    }

    fn check<D: Dimension>(&self, got: &ArrayView<'_, T, D>, what: &str) {
        assert_eq!(got.shape(), &self.shape[..], "{what}: shape");
        let values: Vec<T> = got.iter().copied().collect();
        assert_eq!(values, self.values, "{what}: values");
        if !self.values.is_empty() {
            assert_eq!(got.as_ptr(), self.ptr, "{what}: not zero-copy");
            for (axis, (&extent, (&g, &e))) in self
                .shape
                .iter()
                .zip(got.strides().iter().zip(&self.strides))
                .enumerate()
            {
                if extent > 1 {
                    assert_eq!(g, e, "{what}: stride of axis {axis}");
                }
            }
        }
    }
}

/// The same view with every fixed rank ndarray has, and IxDyn.
fn check_all_dims<T: Element + PartialEq + Debug>(
    t: &impl AsArray,
    expected: &Expected<T>,
    what: &str,
) {
    expected.check(&t.as_array::<T, IxDyn>().unwrap(), what);
    match expected.shape.len() {
        0 => expected.check(&t.as_array::<T, Ix0>().unwrap(), what),
        1 => expected.check(&t.as_array::<T, Ix1>().unwrap(), what),
        2 => expected.check(&t.as_array::<T, Ix2>().unwrap(), what),
        3 => expected.check(&t.as_array::<T, Ix3>().unwrap(), what),
        4 => expected.check(&t.as_array::<T, Ix4>().unwrap(), what),
        5 => expected.check(&t.as_array::<T, Ix5>().unwrap(), what),
        6 => expected.check(&t.as_array::<T, Ix6>().unwrap(), what),
        _ => {}
    }
}

fn roundtrip_case<T: Element + PartialEq + Debug>(
    ndim: usize,
    layout: Layout,
    value_at: fn(usize) -> T,
) {
    let what = format!("{:?} ndim {ndim} {layout:?}", T::DTYPE);

    // Array, versioned, consumed through the raw C pointer.
    let a = make(ndim, layout, value_at);
    let expected = Expected::of(&a.view());
    let raw = a.into_dlpack_versioned().unwrap().into_raw();
    // SAFETY: `raw` comes from an export and is consumed once.
    let mut t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    assert!(t.flags().is_writable(), "{what}");
    check_all_dims(&t, &expected, &what);
    // Writable and non-overlapping: a mutable view is granted and sees the
    // same elements.
    let m = t.as_array_mut::<T, IxDyn>().unwrap();
    expected.check(&m.view(), &format!("{what} (mut)"));

    // Array, legacy, as AnyManagedTensor.
    let a = make(ndim, layout, value_at);
    let expected = Expected::of(&a.view());
    let raw = a.into_dlpack_legacy().unwrap().into_raw();
    // SAFETY: as above.
    let t = AnyManagedTensor::from(unsafe { ManagedTensor::from_raw(raw) }.unwrap());
    check_all_dims(&t, &expected, &format!("{what} (legacy)"));

    // ArcArray held alone: writable; shared: read-only and no legacy export.
    let shared: ArcArray<T, IxDyn> = make(ndim, layout, value_at).into_shared();
    let expected = Expected::of(&shared.view());
    let watcher = shared.clone();
    assert_eq!(
        ArrayExport::new(shared.clone()).legacy().unwrap_err(),
        Error::ReadOnlyLegacyExport
    );
    let t = shared.into_dlpack_versioned().unwrap();
    assert!(t.flags().is_read_only(), "{what}");
    check_all_dims(&t, &expected, &format!("{what} (shared)"));
    drop(t);
    assert!(watcher.is_unique(), "{what}: export not released");
    let t = watcher.into_dlpack_versioned().unwrap();
    assert!(t.flags().is_writable(), "{what}");
    check_all_dims(&t, &expected, &format!("{what} (unique arc)"));
}

fn roundtrip_type<T: Element + PartialEq + Debug>(
    ndims: std::ops::RangeInclusive<usize>,
    value_at: fn(usize) -> T,
) {
    for ndim in ndims {
        for layout in LAYOUTS {
            roundtrip_case(ndim, layout, value_at);
        }
    }
}

macro_rules! all_types {
    ($ndims:expr) => {{
        roundtrip_type::<i8>($ndims, |i| i as i8);
        roundtrip_type::<i16>($ndims, |i| -(i as i16));
        roundtrip_type::<i32>($ndims, |i| i as i32 * 1000);
        roundtrip_type::<i64>($ndims, |i| -(i as i64) << 40);
        roundtrip_type::<u8>($ndims, |i| i as u8);
        roundtrip_type::<u16>($ndims, |i| i as u16 * 7);
        roundtrip_type::<u32>($ndims, |i| i as u32 * 100_000);
        roundtrip_type::<u64>($ndims, |i| (i as u64) << 40);
        roundtrip_type::<f32>($ndims, |i| i as f32 * 0.5);
        roundtrip_type::<f64>($ndims, |i| i as f64 * -0.25);
        roundtrip_type::<bool>($ndims, |i| i % 3 == 0);
        #[cfg(feature = "half")]
        {
            roundtrip_type::<half::f16>($ndims, |i| half::f16::from_f32(i as f32));
            roundtrip_type::<half::bf16>($ndims, |i| half::bf16::from_f32(-(i as f32)));
        }
        #[cfg(feature = "num-complex")]
        {
            use num_complex::Complex;
            roundtrip_type::<Complex<f32>>($ndims, |i| Complex::new(i as f32, -(i as f32)));
            roundtrip_type::<Complex<f64>>($ndims, |i| Complex::new(-(i as f64), 0.5));
        }
    }};
}

/// Every dtype × ranks 0..=8 × every layout.
#[test]
#[cfg_attr(miri, ignore)]
fn roundtrip_all_types_all_ranks() {
    all_types!(0..=8);
}

/// The reduced set that miri runs: every dtype at rank 1 (ranks 0..=2
/// natively).
#[test]
fn roundtrip_all_types_low_ranks() {
    all_types!(if cfg!(miri) { 1..=1 } else { 0..=2 });
}

/// Ranks 0, 2 and 3 for one type, under miri too (NULL shape for 0-d,
/// strided reach in several dimensions).
#[test]
fn roundtrip_ranks_0_2_3_f32() {
    roundtrip_type::<f32>(0..=0, |i| i as f32);
    roundtrip_type::<f32>(2..=3, |i| i as f32);
}

/// The views `select_views_roundtrip` exports.
fn pick<'v>(what: &str, v: ArrayView<'v, i32, Ix2>) -> ArrayView<'v, i32, IxDyn> {
    use ndarray::s;
    match what {
        "transpose" => v.reversed_axes().into_dyn(),
        "column" => v.index_axis_move(Axis(1), 3).into_dyn(),
        "reverse both" => v.slice_move(s![..;-1, ..;-2]).into_dyn(),
        "scalar" => v.slice_move(s![2, 4]).into_dyn(),
        _ => v.slice_move(s![1..1, ..]).into_dyn(),
    }
}

/// Views selected from an owner: the owner keeps the memory, the tensor
/// describes only the view, without copying.
#[test]
fn select_views_roundtrip() {
    use ndarray::s;
    let a = Array::from_shape_fn((4, 5), |(i, j)| (10 * i + j) as i32);
    for what in ["transpose", "column", "reverse both", "scalar", "empty"] {
        let owner = a.clone();
        let expected = Expected::of(&pick(what, owner.view()));
        let t = ArrayExport::new(owner)
            .select(|v| pick(what, v))
            .versioned()
            .unwrap();
        expected.check(&t.as_array::<i32, IxDyn>().unwrap(), what);
    }
    // Zero-copy: the view's first element is the owner's element.
    let shared = a.into_shared();
    let expected_ptr = shared.slice(s![..;-1, 1..]).as_ptr();
    let t = ArrayExport::new(shared)
        .select(|v| v.slice_move(s![..;-1, 1..]))
        .versioned()
        .unwrap();
    assert_eq!(t.as_array::<i32, Ix2>().unwrap().as_ptr(), expected_ptr);
    assert_eq!(t.view().strides().collect::<Vec<_>>(), [-5, 1]);
}
