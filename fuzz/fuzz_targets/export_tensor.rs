//! Fuzzes exports: `Export` of a `Vec` with any shape, strides (or none),
//! `byte_offset` and element type, and `ArrayExport` of an ndarray array with
//! any small shape and a view selected from it (axes reversed, stepped).
//!
//! The oracle is computed here in `i128`, independently of the crate: an
//! export succeeds exactly when every extent is >= 0, the strides (if any)
//! have one entry per axis, and every byte the layout reaches lies inside the
//! owner's memory (always, for a size-zero tensor); when a value is too large
//! for the crate's `i64` arithmetic, a refusal is accepted too. An accepted
//! export describes exactly what was asked, is accepted again by
//! `ManagedTensorVersioned::from_raw` with the same layout, and every element
//! is read through it (AddressSanitizer checks each access).
#![no_main]

use dlpack_core::export::Export;
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_core::{Element, dtype::Storage};
use dlpack_ndarray::AsArray;
use dlpack_ndarray::export::ArrayExport;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use ndarray::{ArrayD, IxDyn, Slice};

fn dims(u: &mut Unstructured<'_>, ndim: usize) -> Result<Vec<i64>> {
    (0..ndim)
        .map(|_| {
            Ok(match u.int_in_range(0u8..=11)? {
                0 => u.arbitrary::<i64>()?,
                1 => -i64::from(u.int_in_range(0u8..=8)?),
                _ => i64::from(u.int_in_range(0u8..=6)?),
            })
        })
        .collect()
}

/// What the export of `shape`/`strides`/`byte_offset` over `len` bytes of
/// `size`-byte elements must do: `Some(true)` succeed, `Some(false)` fail,
/// `None` either (values beyond the crate's i64 arithmetic).
fn oracle(
    shape: &[i64],
    strides: Option<&[i64]>,
    byte_offset: u64,
    len: usize,
    size: i128,
) -> Option<bool> {
    if shape.iter().any(|&e| e < 0) || strides.is_some_and(|s| s.len() != shape.len()) {
        return Some(false);
    }
    let big = i128::from(i64::MAX);
    if shape.contains(&0) {
        // Size zero: no byte is reached; the default strides are computed
        // (as products of the extents, 0 read as 1) and may overflow.
        let product = shape
            .iter()
            .try_fold(1i128, |p, &e| p.checked_mul(i128::from(e.max(1))));
        return if strides.is_none() && product.is_none_or(|p| p > big) {
            None
        } else {
            Some(true)
        };
    }
    let mut elements: i128 = 1;
    let (mut low, mut high) = (0i128, 0i128);
    let mut stride: i128 = 1;
    for (axis, &extent) in shape.iter().enumerate().rev() {
        let s = strides.map_or(stride, |s| i128::from(s[axis]));
        let reach = (i128::from(extent) - 1).saturating_mul(s);
        if reach < 0 {
            low = low.saturating_add(reach)
        } else {
            high = high.saturating_add(reach)
        }
        stride = stride.saturating_mul(i128::from(extent));
        elements = elements.saturating_mul(i128::from(extent));
    }
    let (start, end) = (
        low.saturating_mul(size),
        high.saturating_add(1).saturating_mul(size),
    );
    if elements > big || start < -big || end > big {
        return None;
    }
    let first = i128::from(byte_offset);
    Some(first + start >= 0 && first + end <= len as i128)
}

fn export_vec<T: Element + Copy + Default>(u: &mut Unstructured<'_>) -> Result<()> {
    let size = size_of::<T>() as i128;
    let count = usize::from(u.int_in_range(0u8..=64)?);
    let ndim = usize::from(u.int_in_range(0u8..=5)?);
    let shape = dims(u, ndim)?;
    let strides = if u.ratio(1, 3)? {
        None
    } else {
        let n = if u.ratio(1, 16)? {
            usize::from(u.int_in_range(0u8..=6)?)
        } else {
            ndim
        };
        Some(dims(u, n)?)
    };
    let byte_offset: u64 = if u.ratio(1, 16)? {
        u.arbitrary()?
    } else {
        u64::from(u.int_in_range(0u8..=64)?)
    };
    let data = vec![T::default(); count];
    let base = data.as_ptr() as usize;
    let len = count * size as usize;
    let expected = oracle(&shape, strides.as_deref(), byte_offset, len, size);
    let mut export = Export::new(data).shape(&shape).byte_offset(byte_offset);
    if let Some(strides) = &strides {
        export = export.strides(strides);
    }
    let result = export.versioned();
    match (&result, expected) {
        (Ok(_), Some(false)) => panic!(
            "accepted an export the rules refuse: {shape:?} {strides:?} +{byte_offset} over {len} bytes"
        ),
        (Err(err), Some(true)) => panic!(
            "refused a valid export ({err}): {shape:?} {strides:?} +{byte_offset} over {len} bytes"
        ),
        _ => {}
    }
    let Ok(tensor) = result else { return Ok(()) };
    let view = tensor.view();
    assert_eq!(view.shape(), &shape[..]);
    if let (Some(strides), false) = (&strides, shape.contains(&0)) {
        assert_eq!(view.strides().collect::<Vec<_>>(), *strides);
    }
    let layout = *view.layout();
    if layout.elements != 0 {
        // Every byte reached lies in the Vec's buffer.
        let first = view.data_ptr() as usize;
        assert_eq!(first, base + byte_offset as usize);
        assert!(byte_offset as i128 + i128::from(layout.start) >= 0);
        assert!(byte_offset as i128 + i128::from(layout.end) <= len as i128);
    }
    // Read every element through the strides (ASan checks each read).
    let Storage::Bytes(size) = view.storage() else {
        unreachable!()
    };
    let strides_now: Vec<i64> = view.strides().collect();
    let mut index = vec![0i64; view.ndim()];
    for _ in 0..layout.elements.min(4096) {
        let off = index
            .iter()
            .zip(&strides_now)
            .map(|(i, s)| i * s)
            .sum::<i64>()
            * i64::from(size);
        // SAFETY: inside the validated reach, inside the Vec.
        std::hint::black_box(unsafe { view.data_ptr().offset(off as isize).read() });
        for axis in (0..index.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    // A consumer validates it again and finds the same layout.
    // SAFETY: a fresh export, handed over once.
    let back = unsafe { ManagedTensorVersioned::from_raw(tensor.into_raw()) }
        .expect("our export validates");
    assert_eq!(*back.view().layout(), layout);
    Ok(())
}

fn export_array(u: &mut Unstructured<'_>) -> Result<()> {
    let ndim = usize::from(u.int_in_range(0u8..=4)?);
    let shape: Vec<usize> = (0..ndim)
        .map(|_| u.int_in_range(0usize..=5))
        .collect::<Result<_>>()?;
    let n: usize = shape.iter().product();
    let array = ArrayD::from_shape_vec(IxDyn(&shape), (0..n as u32).collect::<Vec<u32>>()).unwrap();
    let steps: Vec<isize> = (0..ndim)
        .map(|_| Ok(*u.choose(&[1isize, -1, 2, -2, 3])?))
        .collect::<Result<_>>()?;
    let expected = {
        let mut v = array.view();
        for (axis, &step) in steps.iter().enumerate() {
            v.slice_axis_inplace(ndarray::Axis(axis), Slice::new(0, None, step));
        }
        v.to_owned()
    };
    let tensor = ArrayExport::new(array)
        .select(|mut v| {
            for (axis, &step) in steps.iter().enumerate() {
                v.slice_axis_inplace(ndarray::Axis(axis), Slice::new(0, None, step));
            }
            v
        })
        .versioned()
        .expect("a view of the owner exports");
    let back = tensor.as_array::<u32, IxDyn>().expect("our export views");
    assert_eq!(back, expected);
    Ok(())
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    match u.int_in_range(0u8..=3)? {
        0 => export_vec::<u8>(u),
        1 => export_vec::<f32>(u),
        2 => export_vec::<f64>(u),
        _ => export_array(u),
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
