//! Strided layouts: element counts, byte reach and contiguity, with checked
//! arithmetic on values that come from untrusted producers.
//!
//! [`analyze`] is a pure function over `shape`, `strides` and the element
//! [`Storage`]; it reads no pointer, so it can be property-tested against a
//! slow reference and fuzzed directly.

use crate::dtype::Storage;
use crate::error::Error;

/// What validation learned about a strided layout.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Number of elements (product of the extents).
    pub elements: u64,
    /// First byte the layout touches, relative to the first element (<= 0:
    /// negative strides reach below it). 0 for a size-zero tensor.
    pub start: i64,
    /// One past the last byte the layout touches, relative to the first
    /// element. 0 for a size-zero tensor.
    pub end: i64,
    /// Whether the elements are compact and row-major (extents of 0 or 1
    /// impose no stride; size-zero tensors are contiguous).
    pub c_contiguous: bool,
}

impl Layout {
    /// Bytes between [`Layout::start`] and [`Layout::end`].
    pub const fn span_bytes(&self) -> u64 {
        self.end.abs_diff(self.start)
    }
}

/// Computes element count, byte reach and contiguity of a layout.
///
/// `strides == None` means compact row-major (what producers before DLPack
/// 1.2 send). Strides of zero-size tensors are ignored, as the standard
/// allows any value there.
///
/// # Errors
///
/// [`Error::NegativeExtent`], [`Error::StridesLength`],
/// [`Error::ElementCountOverflow`] or [`Error::LayoutOverflow`].
///
/// # Examples
///
/// ```
/// use dlpack_core::{dtype::Storage, layout::analyze};
///
/// // A float32 column of a 3x4 row-major matrix, walked backwards.
/// let layout = analyze(&[3], Some(&[-4]), Storage::Bytes(4)).unwrap();
/// assert_eq!((layout.elements, layout.start, layout.end), (3, -32, 4));
/// assert!(!layout.c_contiguous);
/// ```
#[inline]
pub fn analyze(shape: &[i64], strides: Option<&[i64]>, storage: Storage) -> Result<Layout, Error> {
    if let Storage::Bytes(size) = storage {
        if let Some(layout) = compact(shape, strides, size) {
            return Ok(layout);
        }
    }
    analyze_general(shape, strides, storage)
}

/// The layout of a non-empty, compact row-major tensor of whole-byte
/// elements (what NumPy, PyTorch and our own exports send almost always),
/// proven in one pass; `None` for every other layout, including every one
/// that breaks a rule, so that [`analyze_general`] finds and names the error.
///
/// It proves what [`analyze_general`] would: every extent is >= 1 (so none
/// is negative and the tensor is not empty), each stride of an extent > 1
/// equals the product of the later extents (so the elements are compact
/// and the lowest one is the first), and that product, the element count,
/// times the element size fits in `isize` (so no offset overflows).
#[inline]
fn compact(shape: &[i64], strides: Option<&[i64]>, size: u32) -> Option<Layout> {
    let mut elements: i64 = 1;
    match strides {
        None => {
            for &extent in shape.iter().rev() {
                if extent < 1 {
                    return None;
                }
                elements = elements.checked_mul(extent)?;
            }
        }
        Some(strides) => {
            if strides.len() != shape.len() {
                return None;
            }
            for (&extent, &stride) in shape.iter().zip(strides).rev() {
                if extent < 1 || (extent != 1 && stride != elements) {
                    return None;
                }
                elements = elements.checked_mul(extent)?;
            }
        }
    }
    let end = elements.checked_mul(i64::from(size))?;
    if end as u64 > isize::MAX as u64 {
        return None;
    }
    Some(Layout {
        elements: elements as u64,
        start: 0,
        end,
        c_contiguous: true,
    })
}

/// [`analyze`] for any layout: checks every rule in turn and names the
/// first one broken.
#[inline(never)]
fn analyze_general(
    shape: &[i64],
    strides: Option<&[i64]>,
    storage: Storage,
) -> Result<Layout, Error> {
    if let Some(strides) = strides {
        if strides.len() != shape.len() {
            return Err(Error::StridesLength {
                ndim: shape.len(),
                strides: strides.len(),
            });
        }
    }
    let mut empty = false;
    for (axis, &extent) in shape.iter().enumerate() {
        if extent < 0 {
            return Err(Error::NegativeExtent { axis, extent });
        }
        empty |= extent == 0;
    }
    if empty {
        return Ok(Layout {
            elements: 0,
            start: 0,
            end: 0,
            c_contiguous: true,
        });
    }
    let mut elements: u64 = 1;
    for &extent in shape {
        elements = elements
            .checked_mul(extent as u64)
            .ok_or(Error::ElementCountOverflow)?;
    }
    // Element offsets (in units of elements) of the lowest and highest
    // element, relative to the first one.
    let (min, max, c_contiguous) = match strides {
        None => {
            let last = i64::try_from(elements - 1).map_err(|_| Error::LayoutOverflow)?;
            (0, last, true)
        }
        Some(strides) => {
            let mut min: i64 = 0;
            let mut max: i64 = 0;
            let mut expected: i64 = 1;
            let mut contiguous = true;
            for (&extent, &stride) in shape.iter().zip(strides).rev() {
                if extent == 1 {
                    continue;
                }
                if stride != expected {
                    contiguous = false;
                }
                // Cannot overflow: the product of extents fits in u64 and
                // each partial product of a non-empty shape is <= it, but it
                // may exceed i64 for absurd shapes; checked anyway.
                expected = expected.checked_mul(extent).unwrap_or(0);
                let reach = (extent - 1)
                    .checked_mul(stride)
                    .ok_or(Error::LayoutOverflow)?;
                if reach < 0 {
                    min = min.checked_add(reach).ok_or(Error::LayoutOverflow)?;
                } else {
                    max = max.checked_add(reach).ok_or(Error::LayoutOverflow)?;
                }
            }
            (min, max, contiguous)
        }
    };
    let (start, end) = match storage {
        Storage::Bytes(size) => {
            let size = i64::from(size);
            let start = min.checked_mul(size).ok_or(Error::LayoutOverflow)?;
            let end = max
                .checked_add(1)
                .and_then(|m| m.checked_mul(size))
                .ok_or(Error::LayoutOverflow)?;
            (start, end)
        }
        Storage::PackedBits(bits) => {
            let bits = i64::from(bits);
            let start_bit = min.checked_mul(bits).ok_or(Error::LayoutOverflow)?;
            let end_bit = max
                .checked_add(1)
                .and_then(|m| m.checked_mul(bits))
                .ok_or(Error::LayoutOverflow)?;
            let end = end_bit.div_euclid(8) + i64::from(end_bit.rem_euclid(8) != 0);
            (start_bit.div_euclid(8), end)
        }
    };
    // Rust slices and pointer offsets need the reach to fit in isize.
    if end
        .checked_sub(start)
        .is_none_or(|len| len as u64 > isize::MAX as u64)
    {
        return Err(Error::LayoutOverflow);
    }
    Ok(Layout {
        elements,
        start,
        end,
        c_contiguous,
    })
}

/// Whether the layout is compact column-major (Fortran order); extents of 0
/// or 1 impose no stride. `strides == None` is row-major, hence F-contiguous
/// only when at most one extent exceeds 1.
pub fn is_f_contiguous(shape: &[i64], strides: Option<&[i64]>) -> bool {
    if shape.contains(&0) {
        return true;
    }
    match strides {
        None => shape.iter().filter(|&&e| e > 1).count() <= 1,
        Some(strides) => {
            let mut expected: i64 = 1;
            for (&extent, &stride) in shape.iter().zip(strides) {
                if extent == 1 {
                    continue;
                }
                if stride != expected {
                    return false;
                }
                expected = match expected.checked_mul(extent) {
                    Some(e) => e,
                    None => return false,
                };
            }
            true
        }
    }
}

/// Row-major strides of `shape`, written into `out` (same length).
///
/// # Errors
///
/// [`Error::LayoutOverflow`] when a stride does not fit in `i64`.
pub fn row_major_strides(shape: &[i64], out: &mut [i64]) -> Result<(), Error> {
    debug_assert_eq!(shape.len(), out.len());
    let mut stride: i64 = 1;
    for (o, &extent) in out.iter_mut().zip(shape).rev() {
        *o = stride;
        stride = stride
            .checked_mul(extent.max(1))
            .ok_or(Error::LayoutOverflow)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn malformed_layouts() {
        let b4 = Storage::Bytes(4);
        assert_eq!(
            analyze(&[2, -1], None, b4),
            Err(Error::NegativeExtent {
                axis: 1,
                extent: -1
            })
        );
        assert_eq!(
            analyze(&[2, 3], Some(&[1]), b4),
            Err(Error::StridesLength {
                ndim: 2,
                strides: 1
            })
        );
        assert_eq!(
            analyze(&[1 << 32, 1 << 32], None, b4),
            Err(Error::ElementCountOverflow)
        );
        assert_eq!(
            analyze(&[1 << 31, 1 << 31], None, b4),
            Err(Error::LayoutOverflow)
        );
        assert_eq!(
            analyze(&[3], Some(&[i64::MAX]), b4),
            Err(Error::LayoutOverflow)
        );
        assert_eq!(
            analyze(&[3], Some(&[i64::MIN]), b4),
            Err(Error::LayoutOverflow)
        );
        assert_eq!(
            analyze(&[2], Some(&[i64::MAX / 4]), b4),
            Err(Error::LayoutOverflow)
        );
    }

    #[test]
    fn size_zero_ignores_strides() {
        let l = analyze(
            &[1 << 62, 0, 7],
            Some(&[i64::MIN, 5, i64::MAX]),
            Storage::Bytes(8),
        )
        .unwrap();
        assert_eq!(
            l,
            Layout {
                elements: 0,
                start: 0,
                end: 0,
                c_contiguous: true
            }
        );
    }

    #[test]
    fn scalar_layout() {
        let l = analyze(&[], None, Storage::Bytes(8)).unwrap();
        assert_eq!(
            l,
            Layout {
                elements: 1,
                start: 0,
                end: 8,
                c_contiguous: true
            }
        );
        assert_eq!(analyze(&[], Some(&[]), Storage::Bytes(8)).unwrap(), l);
    }

    #[test]
    fn packed_sub_byte_reach() {
        // 5 float4 values packed: 20 bits -> 3 bytes.
        let l = analyze(&[5], None, Storage::PackedBits(4)).unwrap();
        assert_eq!((l.start, l.end), (0, 3));
        // 4 float6 values: 24 bits -> 3 bytes.
        let l = analyze(&[4], Some(&[1]), Storage::PackedBits(6)).unwrap();
        assert_eq!((l.start, l.end), (0, 3));
        // Reversed 3 float4: element offsets -2..=0 -> bits -8..4 -> bytes -1..1.
        let l = analyze(&[3], Some(&[-1]), Storage::PackedBits(4)).unwrap();
        assert_eq!((l.start, l.end), (-1, 1));
    }

    #[test]
    fn contiguity_skips_unit_extents() {
        // PyTorch normalises strides of extent-1 axes to 1; CuPy uses 0.
        assert!(
            analyze(&[1, 3], Some(&[1, 1]), Storage::Bytes(4))
                .unwrap()
                .c_contiguous
        );
        assert!(
            analyze(&[1, 3], Some(&[0, 1]), Storage::Bytes(4))
                .unwrap()
                .c_contiguous
        );
        assert!(
            !analyze(&[2, 3], Some(&[1, 2]), Storage::Bytes(4))
                .unwrap()
                .c_contiguous
        );
        assert!(is_f_contiguous(&[2, 3], Some(&[1, 2])));
        assert!(!is_f_contiguous(&[2, 3], Some(&[3, 1])));
        assert!(is_f_contiguous(&[1, 3], None));
        assert!(!is_f_contiguous(&[2, 3], None));
    }

    /// The one-pass proof of [`compact`] agrees with [`analyze_general`]
    /// wherever it answers, and answers for the compact layouts.
    #[test]
    fn compact_agrees_with_the_general_analysis() {
        let shapes: &[&[i64]] = &[
            &[],
            &[1],
            &[7],
            &[0],
            &[-1],
            &[2, 3],
            &[1, 3],
            &[3, 1],
            &[2, 0, 3],
            &[2, -3],
            &[1 << 31, 1 << 31],
            &[1 << 32, 1 << 32],
            &[i64::MAX],
            &[4, 5, 6, 7],
        ];
        for &shape in shapes {
            let mut row_major = vec![0; shape.len()];
            let _ = row_major_strides(shape, &mut row_major);
            let mut unit_zero = row_major.clone();
            for (s, &e) in unit_zero.iter_mut().zip(shape) {
                if e == 1 {
                    *s = 0;
                }
            }
            let reversed: Vec<i64> = row_major.iter().map(|s| -s).collect();
            let short: Vec<i64> = row_major.iter().skip(1).copied().collect();
            let candidates: [Option<&[i64]>; 5] = [
                None,
                Some(&row_major),
                Some(&unit_zero),
                Some(&reversed),
                Some(&short),
            ];
            for strides in candidates {
                for size in [1, 2, 4, 8, 16] {
                    let general = analyze_general(shape, strides, Storage::Bytes(size));
                    if let Some(fast) = compact(shape, strides, size) {
                        assert_eq!(Ok(fast), general, "{shape:?} {strides:?} {size}");
                    }
                    assert_eq!(
                        analyze(shape, strides, Storage::Bytes(size)),
                        general,
                        "{shape:?} {strides:?} {size}"
                    );
                    let is_compact = general.is_ok_and(|l| l.c_contiguous && l.elements != 0);
                    let sent_compact = strides.is_none_or(|s| s == row_major || s == unit_zero);
                    if is_compact && sent_compact {
                        assert!(
                            compact(shape, strides, size).is_some(),
                            "{shape:?} {strides:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn row_major() {
        let mut out = [0; 3];
        row_major_strides(&[2, 3, 4], &mut out).unwrap();
        assert_eq!(out, [12, 4, 1]);
        row_major_strides(&[2, 0, 4], &mut out).unwrap();
        assert_eq!(out, [4, 4, 1]);
        let mut out = [0; 3];
        assert_eq!(
            row_major_strides(&[1 << 40, 1 << 40, 1 << 40], &mut out),
            Err(Error::LayoutOverflow)
        );
    }
}
