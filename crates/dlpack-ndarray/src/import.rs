//! Import: validated tensors to `ndarray` views, zero-copy.
//!
//! Every view is built from a [`TensorView`] (so from a tensor that passed
//! the core's validation) after these checks, in this order:
//!
//! 1. dtype, host-accessible device and alignment ([`TensorView::element_ptr`]);
//! 2. rank: a fixed dimension type (`Ix0`..`Ix6`) must match `ndim`
//!    ([`Error::NdimMismatch`]); `IxDyn` takes any rank;
//! 3. ndarray's own limits: extents and strides fit `usize`/`isize`, and the
//!    product of the non-zero extents fits `isize`
//!    ([`Error::LayoutOverflow`]);
//! 4. for mutable views only: the tensor is writable (versioned without
//!    `READ_ONLY`, [`Error::ReadOnly`] otherwise) and no two elements share an
//!    address ([`Error::OverlappingElements`]).
//!
//! How the DLPack layout maps onto ndarray's:
//!
//! - Negative strides: ndarray's `from_shape_ptr` takes non-negative strides
//!   only, so the view is built from the lowest address the tensor reaches
//!   with `|stride|`, then each negatively strided axis is inverted
//!   (`invert_axis`), which yields exactly the tensor's strides and first
//!   element.
//! - `byte_offset` is applied by the core (`data + byte_offset` is the first
//!   element).
//! - Size-zero tensors (where `data` may be NULL or anything): an aligned
//!   dangling pointer and ndarray's default strides; the producer's strides carry no
//!   meaning there.
//! - Axes of extent 1: their stride addresses nothing, and producers write
//!   anything there (PyTorch 1, CuPy 0). It is kept when its magnitude is at
//!   most the tensor's reach in elements, else replaced by 0, so that
//!   ndarray's stride arithmetic can never overflow on it.
//! - 0-d tensors (`shape`/`strides` NULL) become 0-d views of one element.

use dlpack_core::managed::{AnyManagedTensor, Managed, ManagedAbi};
use dlpack_core::tensor::TensorView;
use dlpack_core::{Element, Error};
use ndarray::{ArrayView, ArrayViewMut, Axis, Dimension, IxDyn, ShapeBuilder};

/// A read-only `ndarray` view of a validated tensor, zero-copy.
///
/// `D` is a fixed dimension (`Ix0`..`Ix6`, whose rank must match) or `IxDyn`.
///
/// # Errors
///
/// [`Error::DtypeMismatch`] / [`Error::UnsupportedDtype`] when the tensor
/// does not hold `T`s, [`Error::NotHostAccessible`] for device memory,
/// [`Error::Misaligned`], [`Error::NdimMismatch`], or
/// [`Error::LayoutOverflow`] when the layout exceeds ndarray's limits.
///
/// # Examples
///
/// ```
/// use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};
/// use dlpack_core::tensor::{Flags, TensorView};
/// use dlpack_ndarray::import::array_view;
/// use ndarray::{Ix2, array};
///
/// // A 2x3 row-major matrix, viewed with its rows reversed: the first
/// // element is row 1 (byte_offset 12) and the row stride is -3.
/// let data = [1i32, 2, 3, 4, 5, 6];
/// let mut shape = [2i64, 3];
/// let mut strides = [-3i64, 1];
/// let raw = DLTensor {
///     data: data.as_ptr() as *mut _,
///     device: DLDevice::cpu(),
///     ndim: 2,
///     dtype: DLDataType::I32,
///     shape: shape.as_mut_ptr(),
///     strides: strides.as_mut_ptr(),
///     byte_offset: 12,
/// };
/// // SAFETY: `raw` describes `data`; everything outlives the view.
/// let view = unsafe { TensorView::from_raw(&raw, Flags::from_bits(0)) }?;
/// let a = array_view::<i32, Ix2>(&view)?;
/// assert_eq!(a, array![[4, 5, 6], [1, 2, 3]]);
/// assert_eq!(a.strides(), &[-3, 1]);
/// # Ok::<(), dlpack_core::Error>(())
/// ```
pub fn array_view<'a, T: Element, D: Dimension>(
    view: &TensorView<'a>,
) -> Result<ArrayView<'a, T, D>, Error> {
    let Geometry {
        dim,
        abs_strides,
        low,
        any_negative,
        empty,
    } = Geometry::<T, D>::of(view)?;
    // SAFETY: `low` is the lowest address the tensor reaches (an aligned
    // dangling pointer with default strides for size-zero tensors), aligned for
    // T (element_ptr checked the first element; every reach is a multiple of
    // size_of::<T>()). Moving along the axes by |stride| stays within
    // [first + start, first + end), which by the TensorView contract is
    // memory of one allocation holding valid Ts, readable for 'a. Its byte
    // span fits isize (core layout analysis), the non-zero extents' product
    // fits isize (Geometry::of), and the strides passed are non-negative.
    let mut array = unsafe {
        if empty {
            ArrayView::from_shape_ptr(dim, low)
        } else {
            ArrayView::from_shape_ptr(dim.strides(abs_strides), low)
        }
    };
    if any_negative {
        for axis in negative_axes(view) {
            array.invert_axis(Axis(axis));
        }
    }
    Ok(array)
}

/// [`array_view`] with a dynamic rank.
///
/// # Errors
///
/// As [`array_view`], without the rank check.
///
/// # Examples
///
/// ```
/// use dlpack_core::export::Export;
/// use dlpack_ndarray::import::array_view_dyn;
///
/// let t = Export::new(vec![1u8, 2, 3, 4, 5, 6]).shape(&[3, 2]).versioned()?;
/// let a = array_view_dyn::<u8>(&t.view())?;
/// assert_eq!(a.shape(), &[3, 2]);
/// assert_eq!(a[[2, 1]], 6);
/// # Ok::<(), dlpack_core::Error>(())
/// ```
pub fn array_view_dyn<'a, T: Element>(
    view: &TensorView<'a>,
) -> Result<ArrayView<'a, T, IxDyn>, Error> {
    array_view(view)
}

/// A mutable `ndarray` view of a validated tensor, zero-copy.
///
/// Prefer [`AsArray::as_array_mut`] on an owning handle, which is safe.
///
/// # Safety
///
/// For `'a`, nothing else reads or writes the tensor's elements (no other
/// view of the same tensor exists): the returned view is a unique borrow.
///
/// # Errors
///
/// [`Error::ReadOnly`] when the tensor is
/// read-only or legacy, [`Error::OverlappingElements`] when elements alias,
/// else as [`array_view`].
///
/// # Examples
///
/// ```
/// use dlpack_core::export::Export;
/// use dlpack_ndarray::import::array_view_mut;
/// use ndarray::Ix1;
///
/// let t = Export::new(vec![1.0f64, 2.0, 3.0]).versioned()?;
/// let view = t.view();
/// // SAFETY: `t` is not accessed otherwise while `a` lives.
/// let mut a = unsafe { array_view_mut::<f64, Ix1>(&view) }?;
/// a[1] = 20.0;
/// assert_eq!(view.as_slice::<f64>()?, &[1.0, 20.0, 3.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn array_view_mut<'a, T: Element, D: Dimension>(
    view: &TensorView<'a>,
) -> Result<ArrayViewMut<'a, T, D>, Error> {
    if !view.flags().is_writable() {
        return Err(Error::ReadOnly);
    }
    let Geometry {
        dim,
        abs_strides,
        low,
        any_negative,
        empty,
    } = Geometry::<T, D>::of(view)?;
    check_no_overlap(view)?;
    // SAFETY: as in `array_view`; in addition the producer marked the data
    // writable (versioned, no READ_ONLY), no two indices reach the same
    // element (check_no_overlap), and the caller guarantees that nothing
    // else accesses the elements for 'a.
    let mut array = unsafe {
        if empty {
            ArrayViewMut::from_shape_ptr(dim, low)
        } else {
            ArrayViewMut::from_shape_ptr(dim.strides(abs_strides), low)
        }
    };
    if any_negative {
        for axis in negative_axes(view) {
            array.invert_axis(Axis(axis));
        }
    }
    Ok(array)
}

/// `ndarray` views of owning tensor handles.
///
/// Implemented for [`ManagedTensor`](dlpack_core::managed::ManagedTensor),
/// [`ManagedTensorVersioned`](dlpack_core::managed::ManagedTensorVersioned)
/// and [`AnyManagedTensor`]. The views borrow the handle, so the producer's
/// deleter cannot run while they live.
///
/// # Examples
///
/// ```
/// use dlpack_core::export::Export;
/// use dlpack_ndarray::AsArray;
/// use ndarray::{Ix2, array};
///
/// let mut t = Export::new(vec![1i64, 2, 3, 4]).shape(&[2, 2]).versioned()?;
/// t.as_array_mut::<i64, Ix2>()?[[0, 1]] = 7;
/// assert_eq!(t.as_array::<i64, Ix2>()?, array![[1, 7], [3, 4]]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait AsArray {
    /// A read-only view; see [`array_view`].
    ///
    /// # Errors
    ///
    /// As [`array_view`].
    fn as_array<T: Element, D: Dimension>(&self) -> Result<ArrayView<'_, T, D>, Error>;

    /// A mutable view, for writable tensors (versioned, without
    /// `READ_ONLY`); see [`array_view_mut`].
    ///
    /// # Errors
    ///
    /// As [`array_view_mut`]: legacy tensors are refused with
    /// [`Error::ReadOnly`] because they cannot say whether they are writable.
    fn as_array_mut<T: Element, D: Dimension>(&mut self) -> Result<ArrayViewMut<'_, T, D>, Error>;
}

impl<M: ManagedAbi> AsArray for Managed<M> {
    fn as_array<T: Element, D: Dimension>(&self) -> Result<ArrayView<'_, T, D>, Error> {
        array_view(&self.view())
    }

    fn as_array_mut<T: Element, D: Dimension>(&mut self) -> Result<ArrayViewMut<'_, T, D>, Error> {
        let this: &Self = self;
        // SAFETY: the view borrows `self` mutably for its whole life, so no
        // other view of this handle's tensor can be made meanwhile.
        unsafe { array_view_mut(&this.view()) }
    }
}

impl AsArray for AnyManagedTensor {
    fn as_array<T: Element, D: Dimension>(&self) -> Result<ArrayView<'_, T, D>, Error> {
        array_view(&self.view())
    }

    fn as_array_mut<T: Element, D: Dimension>(&mut self) -> Result<ArrayViewMut<'_, T, D>, Error> {
        match self {
            AnyManagedTensor::Legacy(t) => t.as_array_mut(),
            AnyManagedTensor::Versioned(t) => t.as_array_mut(),
        }
    }
}

/// A tensor's layout in ndarray's terms.
struct Geometry<T, D> {
    dim: D,
    /// `|stride|` per axis, in elements.
    abs_strides: D,
    /// Lowest address reached (dangling for size-zero tensors).
    low: *mut T,
    /// Whether some stride is negative (those axes are inverted after
    /// building from the lowest address).
    any_negative: bool,
    /// Size zero: build with ndarray's default strides (it rejects all-zero
    /// custom strides for mutable views even when empty).
    empty: bool,
}

impl<T: Element, D: Dimension> Geometry<T, D> {
    fn of(view: &TensorView<'_>) -> Result<Self, Error> {
        let first = view.element_ptr::<T>()?;
        let ndim = view.ndim();
        if let Some(expected) = D::NDIM {
            if expected != ndim {
                return Err(Error::NdimMismatch {
                    expected,
                    found: ndim,
                });
            }
        }
        let empty = view.num_elements() == 0;
        let layout = view.layout();
        // The tensor's reach in elements (0 when empty); bounds the strides
        // kept on extent-1 axes.
        let reach = layout.span_bytes() / core::mem::size_of::<T>() as u64;
        let shape = view.shape();
        let raw_strides = view.raw_strides();
        let mut dim = D::zeros(ndim);
        // A clone of the zeros: for `IxDyn` a copy of its inline array,
        // where a second `zeros` converts a slice again.
        let mut abs_strides = dim.clone();
        // Written through slices: indexing a dynamic-rank `Dim` checks and
        // dispatches on every access.
        let (dim_out, abs_out) = (dim.slice_mut(), abs_strides.slice_mut());
        let mut nonzero_product: usize = 1;
        let mut any_negative = false;
        // Row-major strides when the producer sent none: the product of the
        // later extents (overflow ruled out by the layout analysis).
        let mut row_major: i64 = 1;
        for axis in (0..ndim).rev() {
            let extent = shape[axis];
            let sent = match raw_strides {
                Some(strides) => strides[axis],
                None => row_major,
            };
            row_major = row_major.wrapping_mul(extent.max(1));
            let extent = usize::try_from(extent).map_err(|_| Error::LayoutOverflow)?;
            if extent != 0 {
                nonzero_product = nonzero_product
                    .checked_mul(extent)
                    .filter(|&p| p <= isize::MAX as usize)
                    .ok_or(Error::LayoutOverflow)?;
            }
            let stride = match sent {
                _ if empty => 0,
                s if extent <= 1 && s.unsigned_abs() > reach => 0,
                s => s,
            };
            let stride = isize::try_from(stride).map_err(|_| Error::LayoutOverflow)?;
            dim_out[axis] = extent;
            abs_out[axis] = stride.unsigned_abs();
            any_negative |= stride < 0;
        }
        let low = if empty {
            first
        } else {
            // In bounds: by the TensorView contract the bytes
            // [first + start, first + end) belong to the producer's
            // allocation; start <= 0 is a multiple of size_of::<T>().
            // wrapping_offset keeps the provenance of `first`.
            first
                .cast::<u8>()
                .wrapping_offset(layout.start as isize)
                .cast::<T>()
        };
        Ok(Geometry {
            dim,
            abs_strides,
            low,
            any_negative,
            empty,
        })
    }
}

/// Axes whose stride is negative, to invert after building from the lowest
/// address. [`Geometry::of`] zeroes some strides of extent-1 axes; such an
/// axis may be listed here all the same: inverting an axis of extent 1
/// moves nothing.
fn negative_axes<'v>(view: &'v TensorView<'_>) -> impl Iterator<Item = usize> + 'v {
    view.strides()
        .enumerate()
        .filter(|&(_, s)| s < 0)
        .map(|(axis, _)| axis)
}

/// Refuses layouts where two different indices reach the same element.
///
/// Sufficient condition (ndarray's own for owned arrays): ordered by
/// `|stride|` (ties by axis), each axis of extent > 1 must have a stride
/// larger than the furthest offset that the smaller axes reach together.
/// O(ndim²) without allocation.
fn check_no_overlap(view: &TensorView<'_>) -> Result<(), Error> {
    if view.num_elements() == 0 {
        return Ok(());
    }
    let shape = view.shape();
    let key = |axis: usize| (view.stride(axis).unsigned_abs(), axis);
    for axis in 0..shape.len() {
        if shape[axis] <= 1 {
            continue;
        }
        let below = (0..shape.len())
            .filter(|&other| shape[other] > 1 && key(other) < key(axis))
            .map(|other| key(other).0.saturating_mul(shape[other] as u64 - 1))
            .fold(0u64, u64::saturating_add);
        if key(axis).0 <= below {
            return Err(Error::OverlappingElements {
                axis,
                stride: view.stride(axis),
            });
        }
    }
    Ok(())
}
