//! Export: `ndarray` arrays to managed tensors, zero-copy.
//!
//! The array is moved into the exported tensor (the core's single
//! allocation holds it next to the header, shape and strides) and its
//! elements are described where they are: any layout ndarray can hold — C
//! or F order, sliced, negative strides, broadcast — travels as is.
//!
//! - [`Array`]: the tensor owns the array; it is writable.
//! - [`ArcArray`]: the tensor holds one reference to the shared data. When
//!   that reference is the only one ([`ArcArray::is_unique`]), the tensor is
//!   writable; when other `ArcArray`s share the data, it is exported
//!   `READ_ONLY`, since they could observe the consumer's writes (and they
//!   never write into it themselves: ndarray copies shared data on write).
//!   Read-only tensors cannot travel as legacy tensors
//!   ([`Error::ReadOnlyLegacyExport`]).
//! - A view of either: [`ArrayExport::select`] runs a closure on a view of
//!   the array (slicing, transposing, broadcasting...) and exports that view
//!   while the array keeps the memory alive.
//!
//! How the memory is described to the core: the owner's memory is the byte
//! range its array reaches (lowest to highest element address); the exported
//! view's first element is `byte_offset` bytes into it, and the core checks
//! that every element the view reaches lies inside that range (a view that
//! does not come from the owner is refused with [`Error::OutOfBounds`]).
//!
//! Cost: one heap allocation per export (the core's block). On 64-bit
//! targets ndarray's shape and strides are read as `i64` where they are; on
//! others they are converted on the stack for up to [`STACK_DIMS`]
//! dimensions, and beyond that one temporary `Vec` is allocated.

use core::fmt;

use dlpack_core::export::{Export, Memory, TensorOwner};
use dlpack_core::ffi::DLDevice;
use dlpack_core::managed::{ManagedTensor, ManagedTensorVersioned};
use dlpack_core::{Element, Error};
use ndarray::{ArcArray, Array, ArrayView, Dimension};

/// Dimensions converted on the stack; more cost one temporary allocation.
pub const STACK_DIMS: usize = 8;

mod sealed {
    pub trait Sealed {}
    impl<T, D> Sealed for ndarray::Array<T, D> {}
    impl<T, D> Sealed for ndarray::ArcArray<T, D> {}
}

/// An `ndarray` array that can own the memory of an exported tensor:
/// [`Array`] and [`ArcArray`]. Sealed.
pub trait ArrayOwner: sealed::Sealed + Send + 'static {
    /// The element type.
    type Elem: Element;
    /// The dimension type.
    type Dim: Dimension;

    /// A view of the whole array.
    fn whole(&self) -> ArrayView<'_, Self::Elem, Self::Dim>;

    /// Whether consumers may write (the owner holds the data alone).
    fn writable(&self) -> bool;

    /// The first element, with write permission when `writable()`.
    #[doc(hidden)]
    fn first_ptr(&mut self) -> *mut Self::Elem;
}

impl<T: Element, D: Dimension + 'static> ArrayOwner for Array<T, D> {
    type Elem = T;
    type Dim = D;

    fn whole(&self) -> ArrayView<'_, T, D> {
        self.view()
    }

    fn writable(&self) -> bool {
        true
    }

    fn first_ptr(&mut self) -> *mut T {
        self.as_mut_ptr()
    }
}

impl<T: Element, D: Dimension + 'static> ArrayOwner for ArcArray<T, D> {
    type Elem = T;
    type Dim = D;

    fn whole(&self) -> ArrayView<'_, T, D> {
        self.view()
    }

    fn writable(&self) -> bool {
        self.is_unique()
    }

    fn first_ptr(&mut self) -> *mut T {
        if self.is_unique() {
            // Unique: as_mut_ptr does not copy (Arc::get_mut succeeds).
            self.as_mut_ptr()
        } else {
            // Shared: as_mut_ptr would copy; the export is read-only.
            self.as_ptr().cast_mut()
        }
    }
}

/// Lowest and highest element offsets (in elements, relative to the first
/// element) that a non-empty layout reaches.
#[inline]
fn reach(dim: &[usize], strides: &[isize]) -> (isize, isize) {
    let mut low = 0isize;
    let mut high = 0isize;
    let strides = &strides[..dim.len()];
    for axis in 0..dim.len() {
        // Cannot overflow: ndarray keeps every reachable offset within
        // isize (in bytes, hence in elements); extents are >= 1 here.
        let off = (dim[axis] as isize - 1).wrapping_mul(strides[axis]);
        low += off.min(0);
        high += off.max(0);
    }
    (low, high)
}

/// The byte range an owner's whole array reaches: its lowest element, as
/// an offset in elements from the first one, and the length in bytes (0
/// for an empty array). Computed once per export.
#[derive(Copy, Clone, Debug)]
struct Span {
    low: isize,
    len: usize,
}

impl Span {
    fn of<T, D: Dimension>(whole: &ArrayView<'_, T, D>) -> Span {
        if whole.is_empty() {
            return Span { low: 0, len: 0 };
        }
        let (low, high) = reach(whole.shape(), whole.strides());
        Span {
            low,
            len: (high - low + 1) as usize * core::mem::size_of::<T>(),
        }
    }
}

/// The owner as the core sees it: the array, whether it is writable, and
/// the span of the whole array (fixed while the owner holds it).
struct Owner<O> {
    array: O,
    writable: bool,
    span: Span,
}

// SAFETY: `memory` describes the byte range reached by the owned array —
// Array and ArcArray elements live in a heap buffer that does not move when
// the array is moved and that is freed only when the array (or the last
// ArcArray sharing it) is dropped; every byte in that range is an
// initialised element of that buffer. It is reported writable only when the
// owner holds the data alone (an Array, or a unique ArcArray, which nobody
// can clone once it is moved in here), with a pointer obtained through
// `as_mut_ptr`. Arrays of `Send` elements are `Send`; ArcArray of
// `Send + Sync` elements is `Send`.
unsafe impl<O: ArrayOwner> TensorOwner for Owner<O> {
    fn memory(&mut self) -> Memory {
        // wrapping_offset keeps `first`'s provenance; the result is the
        // lowest element of the array, inside its buffer (or `first` itself
        // for an empty array, whose span is zero).
        let ptr = self.array.first_ptr().wrapping_offset(self.span.low);
        Memory {
            ptr: ptr.cast(),
            len: self.span.len,
            device: DLDevice::cpu(),
            dtype: Some(O::Elem::DTYPE),
            read_only: !self.writable,
        }
    }
}

/// Builder of an export of an [`ArrayOwner`] (or of a view of it): choose
/// the view and read-only-ness, then [`ArrayExport::versioned`] or
/// [`ArrayExport::legacy`].
///
/// # Examples
///
/// ```
/// use dlpack_ndarray::{AsArray, export::ArrayExport};
/// use ndarray::{Array2, Ix2, s};
///
/// let a = Array2::from_shape_fn((4, 3), |(i, j)| (10 * i + j) as f32);
/// let expected = a.slice(s![1..;2, ..;-1]).to_owned();
/// // Export every other row, columns reversed; the array keeps the memory.
/// let t = ArrayExport::new(a)
///     .select(|v| v.slice_move(s![1..;2, ..;-1]))
///     .versioned()?;
/// assert_eq!(t.view().shape(), &[2, 3]);
/// assert_eq!(t.view().strides().collect::<Vec<_>>(), [6, -1]);
/// assert_eq!(t.as_array::<f32, Ix2>()?, expected);
/// # Ok::<(), dlpack_core::Error>(())
/// ```
pub struct ArrayExport<O: ArrayOwner, D: Dimension = <O as ArrayOwner>::Dim> {
    owner: O,
    dim: D,
    /// ndarray strides (`isize` stored as `usize`), in elements.
    strides: D,
    /// Bytes from the owner's lowest address to the view's first element;
    /// `None` for an empty view.
    offset: Option<usize>,
    read_only: bool,
    /// What the owner's whole array reaches.
    span: Span,
}

impl<O: ArrayOwner> ArrayExport<O> {
    /// Starts an export of the whole array.
    pub fn new(owner: O) -> Self {
        let whole = owner.whole();
        let (dim, strides, span) = (whole.raw_dim(), strides_of(&whole), Span::of(&whole));
        // The whole array starts at its first element: `-low` elements
        // above its lowest one.
        let offset =
            (span.len != 0).then(|| span.low.unsigned_abs() * core::mem::size_of::<O::Elem>());
        drop(whole);
        ArrayExport {
            owner,
            dim,
            strides,
            offset,
            read_only: false,
            span,
        }
    }
}

impl<O: ArrayOwner, D: Dimension> ArrayExport<O, D> {
    /// Exports the view `select` makes of the whole array instead (slices,
    /// transposes, broadcasts...). The array stays the owner.
    ///
    /// The view must show elements of the array; one that does not (e.g. a
    /// `'static` array) is refused by [`ArrayExport::versioned`] and
    /// [`ArrayExport::legacy`] with [`Error::OutOfBounds`].
    ///
    /// # Examples
    ///
    /// ```
    /// use dlpack_ndarray::export::ArrayExport;
    /// use ndarray::{ArcArray2, Axis};
    ///
    /// let m = ArcArray2::from_shape_vec((2, 3), vec![1u16, 2, 3, 4, 5, 6]).unwrap();
    /// // Export column 2 of the matrix: stride 3, first element at byte 4.
    /// let t = ArrayExport::new(m)
    ///     .select(|v| v.index_axis_move(Axis(1), 2))
    ///     .versioned()?;
    /// assert_eq!(t.view().shape(), &[2]);
    /// assert_eq!(t.view().strides().collect::<Vec<_>>(), [3]);
    /// # Ok::<(), dlpack_core::Error>(())
    /// ```
    pub fn select<D2, F>(self, select: F) -> ArrayExport<O, D2>
    where
        D2: Dimension,
        F: for<'v> FnOnce(ArrayView<'v, O::Elem, O::Dim>) -> ArrayView<'v, O::Elem, D2>,
    {
        let view = select(self.owner.whole());
        let (dim, strides, first) = (view.raw_dim(), strides_of(&view), view.as_ptr());
        let mut export = ArrayExport {
            owner: self.owner,
            dim,
            strides,
            offset: None,
            read_only: self.read_only,
            span: self.span,
        };
        export.offset = export.offset_of_first(first, export.dim.size());
        export
    }

    /// Asks for a `READ_ONLY` export even when the owner could grant write
    /// access. (Shared `ArcArray`s are always read-only.)
    ///
    /// # Examples
    ///
    /// ```
    /// use dlpack_ndarray::export::ArrayExport;
    ///
    /// let t = ArrayExport::new(ndarray::arr1(&[1i8, 2])).read_only(true).versioned()?;
    /// assert!(t.flags().is_read_only());
    /// # Ok::<(), dlpack_core::Error>(())
    /// ```
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Bytes from the owner's lowest address to `first`, for a non-empty
    /// view; a view below the owner gets an offset the core refuses.
    fn offset_of_first(&self, first: *const O::Elem, elements: usize) -> Option<usize> {
        if elements == 0 {
            return None;
        }
        let low_addr = (self.owner.whole().as_ptr() as usize).wrapping_add_signed(
            self.span
                .low
                .wrapping_mul(core::mem::size_of::<O::Elem>() as isize),
        );
        Some((first as usize).wrapping_sub(low_addr))
    }

    /// Builds a `DLManagedTensorVersioned` (writable unless read-only was
    /// asked for or the data is shared).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] when a [`select`](ArrayExport::select)ed view
    /// lies outside the owner's memory; [`Error::LayoutOverflow`] or
    /// [`Error::TooManyDims`] for layouts DLPack cannot describe. The owner is
    /// dropped on error.
    ///
    /// # Examples
    ///
    /// ```
    /// use dlpack_ndarray::export::ArrayExport;
    ///
    /// let t = ArrayExport::new(ndarray::Array::<f64, _>::zeros((2, 3, 4))).versioned()?;
    /// assert_eq!(t.view().shape(), &[2, 3, 4]);
    /// assert!(t.flags().is_writable());
    /// # Ok::<(), dlpack_core::Error>(())
    /// ```
    #[inline]
    pub fn versioned(self) -> Result<ManagedTensorVersioned, Error> {
        self.build(|export| export.versioned())
    }

    /// Builds a legacy `DLManagedTensor`.
    ///
    /// # Errors
    ///
    /// As [`ArrayExport::versioned`], and [`Error::ReadOnlyLegacyExport`]
    /// when the export is read-only (asked for, or a shared `ArcArray`).
    ///
    /// # Examples
    ///
    /// ```
    /// use dlpack_core::Error;
    /// use dlpack_ndarray::export::ArrayExport;
    ///
    /// let a = ndarray::arr2(&[[1u32, 2], [3, 4]]).into_shared();
    /// let t = ArrayExport::new(a.clone()).legacy();
    /// assert_eq!(t.unwrap_err(), Error::ReadOnlyLegacyExport); // `a` shares the data
    /// assert!(ArrayExport::new(a).legacy().is_ok()); // unique now
    /// ```
    #[inline]
    pub fn legacy(self) -> Result<ManagedTensor, Error> {
        self.build(|export| export.legacy())
    }

    // Inlined into `versioned` / `legacy` and so into the caller, as the
    // core's builder is: the owner then moves into the block without
    // passing through this builder in memory.
    #[inline(always)]
    fn build<R>(
        self,
        finish: impl FnOnce(Export<'_, Owner<O>>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let ArrayExport {
            owner,
            dim,
            strides,
            offset,
            read_only,
            span,
        } = self;
        let writable = owner.writable();
        let owner = Owner {
            array: owner,
            writable,
            span,
        };
        with_i64_dims(dim.slice(), strides.slice(), |shape, strides| {
            let byte_offset =
                u64::try_from(offset.unwrap_or(0)).map_err(|_| Error::LayoutOverflow)?;
            finish(
                Export::new(owner)
                    .dtype(O::Elem::DTYPE)
                    .shape(shape)
                    .strides(strides)
                    .byte_offset(byte_offset)
                    .read_only(read_only),
            )
        })
    }
}

impl<O: ArrayOwner, D: Dimension> fmt::Debug for ArrayExport<O, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let strides: &[usize] = self.strides.slice();
        f.debug_struct("ArrayExport")
            .field("dtype", &O::Elem::DTYPE)
            .field("shape", &self.dim.slice())
            .field(
                "strides",
                &strides.iter().map(|&s| s as isize).collect::<Vec<_>>(),
            )
            .field("offset", &self.offset)
            .field("read_only", &self.read_only)
            .field("owner_writable", &self.owner.writable())
            .finish()
    }
}

/// ndarray strides of a view as a dimension value (`isize as usize`).
fn strides_of<T, D: Dimension>(view: &ArrayView<'_, T, D>) -> D {
    let mut strides = D::zeros(view.ndim());
    for (out, &s) in strides.slice_mut().iter_mut().zip(view.strides()) {
        *out = s as usize;
    }
    strides
}

/// Runs `f` with shape and strides as `i64`s: on 64-bit targets the same
/// memory read as `i64` (no copy), elsewhere converted on the stack for up
/// to [`STACK_DIMS`] dimensions.
///
/// The values are not trusted either way: the core's layout analysis checks
/// every extent and stride (an extent above `i64::MAX` would read as
/// negative and be refused), as it does for a foreign tensor.
#[cfg(target_pointer_width = "64")]
#[inline]
fn with_i64_dims<R>(
    dim: &[usize],
    strides: &[usize],
    f: impl FnOnce(&[i64], &[i64]) -> Result<R, Error>,
) -> Result<R, Error> {
    /// `values` read as `i64`s.
    fn as_i64(values: &[usize]) -> &[i64] {
        // SAFETY: on a 64-bit target `usize` and `i64` have the same size
        // and alignment, and every bit pattern is a valid `i64`; the slice
        // borrows the same memory for the same lifetime, read-only.
        unsafe { core::slice::from_raw_parts(values.as_ptr().cast::<i64>(), values.len()) }
    }
    // ndarray keeps strides as `isize` stored in `usize`: read as `i64`
    // they are the signed strides.
    f(as_i64(dim), as_i64(strides))
}

/// Runs `f` with shape and strides as `i64`s, converted on the stack for up
/// to [`STACK_DIMS`] dimensions.
#[cfg(not(target_pointer_width = "64"))]
fn with_i64_dims<R>(
    dim: &[usize],
    strides: &[usize],
    f: impl FnOnce(&[i64], &[i64]) -> Result<R, Error>,
) -> Result<R, Error> {
    fn fill(
        dim: &[usize],
        strides: &[usize],
        shape_out: &mut [i64],
        strides_out: &mut [i64],
    ) -> Result<(), Error> {
        for (out, &extent) in shape_out.iter_mut().zip(dim) {
            *out = i64::try_from(extent).map_err(|_| Error::LayoutOverflow)?;
        }
        for (out, &stride) in strides_out.iter_mut().zip(strides) {
            *out = i64::try_from(stride as isize).map_err(|_| Error::LayoutOverflow)?;
        }
        Ok(())
    }
    let ndim = dim.len();
    if ndim <= STACK_DIMS {
        let mut shape = [0i64; STACK_DIMS];
        let mut strides_buf = [0i64; STACK_DIMS];
        fill(dim, strides, &mut shape[..ndim], &mut strides_buf[..ndim])?;
        f(&shape[..ndim], &strides_buf[..ndim])
    } else {
        let mut buf = vec![0i64; 2 * ndim];
        let (shape, strides_buf) = buf.split_at_mut(ndim);
        fill(dim, strides, shape, strides_buf)?;
        f(shape, strides_buf)
    }
}

/// Conversion of an owned array (or an [`ArrayExport`]) into a managed
/// tensor, zero-copy.
///
/// # Examples
///
/// ```
/// use dlpack_ndarray::{AsArray, IntoDlpack};
/// use ndarray::{Array, Ix2, ShapeBuilder};
///
/// // Fortran order travels as strides [1, 3].
/// let a = Array::from_shape_vec((3, 2).f(), vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
/// let ptr = a.as_ptr();
/// let t = a.into_dlpack_versioned()?;
/// assert_eq!(t.view().strides().collect::<Vec<_>>(), [1, 3]);
/// let back = t.as_array::<f32, Ix2>()?;
/// assert_eq!(back.as_ptr(), ptr); // zero-copy
/// assert_eq!(back[[0, 1]], 4.0);
/// # Ok::<(), dlpack_core::Error>(())
/// ```
pub trait IntoDlpack {
    /// Builds a `DLManagedTensorVersioned`.
    ///
    /// # Errors
    ///
    /// As [`ArrayExport::versioned`].
    fn into_dlpack_versioned(self) -> Result<ManagedTensorVersioned, Error>;

    /// Builds a legacy `DLManagedTensor`.
    ///
    /// # Errors
    ///
    /// As [`ArrayExport::legacy`].
    fn into_dlpack_legacy(self) -> Result<ManagedTensor, Error>;
}

impl<T: Element, D: Dimension + 'static> IntoDlpack for Array<T, D> {
    fn into_dlpack_versioned(self) -> Result<ManagedTensorVersioned, Error> {
        ArrayExport::new(self).versioned()
    }

    fn into_dlpack_legacy(self) -> Result<ManagedTensor, Error> {
        ArrayExport::new(self).legacy()
    }
}

impl<T: Element, D: Dimension + 'static> IntoDlpack for ArcArray<T, D> {
    fn into_dlpack_versioned(self) -> Result<ManagedTensorVersioned, Error> {
        ArrayExport::new(self).versioned()
    }

    fn into_dlpack_legacy(self) -> Result<ManagedTensor, Error> {
        ArrayExport::new(self).legacy()
    }
}

impl<O: ArrayOwner, D: Dimension> IntoDlpack for ArrayExport<O, D> {
    fn into_dlpack_versioned(self) -> Result<ManagedTensorVersioned, Error> {
        self.versioned()
    }

    fn into_dlpack_legacy(self) -> Result<ManagedTensor, Error> {
        self.legacy()
    }
}
