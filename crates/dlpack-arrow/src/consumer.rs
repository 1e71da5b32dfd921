//! DLPack → Arrow: tensors as Arrow arrays, zero-copy.
//!
//! The tensor's memory becomes an Arrow [`Buffer`] with a custom
//! allocation that owns the managed tensor: the producer's deleter runs
//! when the last array (or slice, or clone) using that buffer is dropped,
//! on whatever thread drops it. Arrow never writes to such a buffer, so
//! read-only tensors are honoured.
//!
//! Checks run in this order:
//!
//! 1. the core's validation (when the handle is made); a dtype that is an
//!    Arrow primitive type (`int8` … `uint64`, `float16/32/64`; `bool` only
//!    with a copy, since Arrow booleans are bit-packed) ([`Error::BitPacked`],
//!    [`Error::UnsupportedDtype`]);
//! 2. the rank ([`Error::Rank`]);
//! 3. host-accessible memory, aligned for the element as Arrow requires
//!    ([`Error::Tensor`] with the core's `NotHostAccessible` / `Misaligned`);
//! 4. compact row-major layout ([`Error::NotCompact`]) unless a copy is
//!    allowed ([`ArrowImport::copy`]); a `fixed_shape_tensor` also takes,
//!    without a copy, tensors whose axes after the first are a permutation
//!    of row-major (a transpose, a column-major tensor), as the
//!    extension's `permutation`.
//!
//! Three shapes of the result:
//!
//! - [`ArrowImport::primitive`]: a `PrimitiveArray<T>` of a 1-D tensor;
//!   any `T` whose native type is the tensor's element (so `Date32Type` over
//!   `int32` is the caller's choice);
//! - [`ArrowImport::array`]: an [`ArrayRef`] of any rank ≥ 1: a primitive
//!   array for 1-D, nested `FixedSizeListArray`s for N-d;
//! - [`ArrowImport::fixed_shape_tensor`]: a `FixedSizeListArray` and its
//!   [`Field`] carrying the `arrow.fixed_shape_tensor` extension (shape and
//!   permutation of the axes after the first).

use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, FixedSizeListArray, PrimitiveArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, MutableBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};
use dlpack_core::Element;
use dlpack_core::ffi::{DLDataType, DLManagedTensorVersioned};
use dlpack_core::managed::{Managed, ManagedAbi};
use dlpack_core::tensor::TensorView;

use crate::error::Error;
use crate::extension::TensorMetadata;
use crate::producer::MAX_RANK;

/// Builder of the import of a managed tensor: choose whether a copy is
/// allowed, then the shape of the result.
///
/// # Examples
///
/// ```
/// use arrow_array::Array;
/// use arrow_array::types::Float32Type;
/// use dlpack_arrow::consumer::ArrowImport;
/// use dlpack_core::export::Export;
///
/// let values = vec![1.0f32, 2.0, 3.0];
/// let ptr = values.as_ptr();
/// let t = Export::new(values).versioned()?;
/// let array = ArrowImport::new(t).primitive::<Float32Type>()?;
/// assert_eq!(array.values().as_ptr(), ptr); // zero-copy
/// assert_eq!(array.value(2), 3.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ArrowImport<M: ManagedAbi = DLManagedTensorVersioned> {
    tensor: Managed<M>,
    copy: bool,
}

impl<M: ManagedAbi> ArrowImport<M> {
    /// Starts a zero-copy import of `tensor`.
    pub fn new(tensor: Managed<M>) -> Self {
        ArrowImport {
            tensor,
            copy: false,
        }
    }

    /// Allows a copy where no zero-copy array exists: strided tensors are
    /// copied into a compact buffer, `bool` tensors packed into bits.
    pub fn copy(mut self, copy: bool) -> Self {
        self.copy = copy;
        self
    }

    /// A `PrimitiveArray<T>` of a 1-D tensor of `T`'s native element.
    ///
    /// # Errors
    ///
    /// The core's `DtypeMismatch` when the dtype is not `T::Native`'s, and
    /// the [module](self)'s rules 2 to 4. The tensor is dropped on error.
    pub fn primitive<T>(self) -> Result<PrimitiveArray<T>, Error>
    where
        T: ArrowPrimitiveType,
        T::Native: Element,
    {
        let view = self.tensor.view();
        view.check_element::<T::Native>()?;
        let len = rank_one(&view)?;
        let buffer = self.values(None)?;
        Ok(PrimitiveArray::new(ScalarBuffer::new(buffer, 0, len), None))
    }

    /// An Arrow array of a tensor of rank ≥ 1: a primitive array of a 1-D
    /// tensor, nested `FixedSizeListArray`s (one per axis after the first)
    /// of an N-d one; `bool` tensors become a `BooleanArray` (a copy).
    ///
    /// # Errors
    ///
    /// The [module](self)'s rules 1 to 4. The tensor is dropped on error.
    ///
    /// # Examples
    ///
    /// ```
    /// use arrow_array::Array;
    /// use arrow_array::cast::AsArray;
    /// use dlpack_arrow::consumer::ArrowImport;
    /// use dlpack_core::export::Export;
    ///
    /// let t = Export::new(vec![1i64, 2, 3, 4, 5, 6]).shape(&[3, 2]).versioned()?;
    /// let array = ArrowImport::new(t).array()?;
    /// let rows = array.as_fixed_size_list();
    /// assert_eq!((rows.len(), rows.value_length()), (3, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn array(self) -> Result<ArrayRef, Error> {
        let view = self.tensor.view();
        let data_type = arrow_type(view.dtype(), self.copy)?;
        if view.ndim() == 0 || view.ndim() > MAX_RANK {
            return Err(rank(&view, "1 to 32"));
        }
        let shape: Vec<i64> = view.shape().to_vec();
        let elements = view.num_elements() as usize;
        let mut array = leaf(&data_type, self.values(None)?, elements);
        let mut item = data_type;
        for &extent in shape[1..].iter().rev() {
            let size = list_size(extent)?;
            let field = Arc::new(Field::new_list_field(item, false));
            // Each inner level holds len * size values; its length is the
            // product of the outer extents (exact: checked by the core).
            let len = if extent == 0 {
                outer(&shape)
            } else {
                array.len() / extent as usize
            };
            let list = FixedSizeListArray::try_new_with_length(field, size, array, None, len)
                .map_err(extension_error)?;
            item = list.data_type().clone();
            array = Arc::new(list);
        }
        Ok(array)
    }

    /// A `FixedSizeListArray` of the tensor's axis-0 slices, and its field
    /// carrying the `arrow.fixed_shape_tensor` extension type: shape (the
    /// physical, row-major one) and, for a tensor whose axes after the first
    /// are stored in another order, the permutation that gives the logical
    /// axes back, without a copy.
    ///
    /// # Errors
    ///
    /// The [module](self)'s rules 1 to 4 (rank ≥ 1). The tensor is dropped
    /// on error.
    ///
    /// # Examples
    ///
    /// ```
    /// use arrow_array::Array;
    /// use dlpack_arrow::consumer::ArrowImport;
    /// use dlpack_core::export::Export;
    ///
    /// // Two 2 x 3 tensors, each stored column-major (a transpose).
    /// let t = Export::new(vec![0u16; 12]).shape(&[2, 2, 3]).strides(&[6, 1, 2]).versioned()?;
    /// let (field, array) = ArrowImport::new(t).fixed_shape_tensor()?;
    /// assert_eq!(field.extension_type_name(), Some("arrow.fixed_shape_tensor"));
    /// // Stored as 3 x 2; logical axis i is stored axis permutation[i].
    /// assert_eq!(
    ///     field.metadata()["ARROW:extension:metadata"],
    ///     r#"{"shape":[3,2],"permutation":[1,0]}"#
    /// );
    /// assert_eq!(array.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fixed_shape_tensor(self) -> Result<(Field, FixedSizeListArray), Error> {
        let view = self.tensor.view();
        let data_type = arrow_type(view.dtype(), self.copy)?;
        if view.ndim() == 0 || view.ndim() > MAX_RANK {
            return Err(rank(&view, "1 to 32"));
        }
        let shape = view.shape();
        let inner = &shape[1..];
        let mut size: u64 = 1;
        for &extent in inner {
            // Cannot overflow: the core checked the element count fits.
            size *= extent as u64;
        }
        let size_i32 = i32::try_from(size).map_err(|_| Error::TooLarge { list_size: size })?;
        let order = permuted_order(&view, size);
        let len = shape[0] as usize;
        let elements = view.num_elements() as usize;
        let extension = TensorMetadata {
            shape: physical_of(order.as_deref(), inner),
            permutation: permutation_of(order.as_deref()),
        };
        let values = leaf(&data_type, self.values(order.as_deref())?, elements);
        let item = Arc::new(Field::new_list_field(data_type, false));
        let list = FixedSizeListArray::try_new_with_length(item, size_i32, values, None, len)
            .map_err(extension_error)?;
        let field = extension.field("tensor", list.data_type().clone());
        Ok((field, list))
    }

    /// The values as one compact Arrow buffer: the tensor's own memory
    /// (kept alive by the buffer), or, when allowed, a compact copy. A
    /// `bool` tensor's bytes (always copied by the caller's request).
    /// `order`: the axes after the first are stored in this order
    /// (a permutation of row-major) and must be taken as they are.
    fn values(self, order: Option<&[usize]>) -> Result<Buffer, Error> {
        let view = self.tensor.view();
        let elements = view.num_elements();
        let elem = element_size(view.dtype());
        host_aligned(&view, elem)?;
        if elements == 0 {
            return Ok(Buffer::from(MutableBuffer::new(0)));
        }
        let bytes = elements as usize * elem;
        let compact = view.is_c_contiguous() || order.is_some();
        if view.dtype() == DLDataType::BOOL {
            // Arrow booleans are bits: pack the bytes, in row-major order.
            let gathered;
            let bytes = if compact {
                // SAFETY: compact run of `bytes` readable bytes from the
                // first element (TensorView contract, host checked above).
                unsafe { core::slice::from_raw_parts(view.data_ptr(), bytes) }
            } else {
                gathered = gather(&view, elem);
                gathered.as_slice()
            };
            let bits = BooleanBuffer::collect_bool(bytes.len(), |i| bytes[i] != 0);
            return Ok(bits.into_inner());
        }
        if compact {
            let data = NonNull::new(view.data_ptr())
                .ok_or(Error::Tensor(dlpack_core::Error::NullData { elements }))?;
            let owner: Arc<dyn arrow_buffer::alloc::Allocation> =
                Arc::new(AssertUnwindSafe(self.tensor));
            // SAFETY: `data` is the first of `bytes` initialised bytes of
            // host memory (compact layout, checked above), which stay valid
            // and unmoved until the tensor's deleter runs, i.e. until
            // `owner`, which the buffer keeps, is dropped. Arrow only reads
            // them.
            return Ok(unsafe { Buffer::from_custom_allocation(data, bytes, owner) });
        }
        if !self.copy {
            return Err(not_compact(&view));
        }
        Ok(gather(&view, elem).into())
    }
}

/// A 1-D tensor as an Arrow array; [`ArrowImport::array`] without a copy.
///
/// # Errors
///
/// As [`ArrowImport::array`].
///
/// ```
/// use arrow_array::Array;
/// use dlpack_core::export::Export;
///
/// let t = Export::new(vec![7u8; 4]).versioned()?;
/// let array = dlpack_arrow::consumer::to_array(t)?;
/// assert_eq!(array.len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_array<M: ManagedAbi>(tensor: Managed<M>) -> Result<ArrayRef, Error> {
    ArrowImport::new(tensor).array()
}

#[cold]
fn extension_error(err: arrow_schema::ArrowError) -> Error {
    Error::Extension {
        message: err.to_string(),
    }
}

/// The physical (stored, row-major) shape of the axes after the first.
fn physical_of(order: Option<&[usize]>, inner: &[i64]) -> Vec<usize> {
    match order {
        Some(order) => order.iter().map(|&axis| inner[axis] as usize).collect(),
        None => inner.iter().map(|&extent| extent as usize).collect(),
    }
}

/// The extension's permutation for a storage order; none for row-major.
fn permutation_of(order: Option<&[usize]>) -> Option<Vec<usize>> {
    let order = order?;
    if order.iter().enumerate().all(|(k, &axis)| k == axis) {
        return None;
    }
    let mut permutation = vec![0; order.len()];
    for (k, &axis) in order.iter().enumerate() {
        permutation[axis] = k;
    }
    Some(permutation)
}

/// The Arrow type of a dtype.
fn arrow_type(dtype: DLDataType, copy: bool) -> Result<DataType, Error> {
    dtype.check_known()?;
    Ok(match dtype {
        DLDataType::I8 => DataType::Int8,
        DLDataType::I16 => DataType::Int16,
        DLDataType::I32 => DataType::Int32,
        DLDataType::I64 => DataType::Int64,
        DLDataType::U8 => DataType::UInt8,
        DLDataType::U16 => DataType::UInt16,
        DLDataType::U32 => DataType::UInt32,
        DLDataType::U64 => DataType::UInt64,
        DLDataType::F16 => DataType::Float16,
        DLDataType::F32 => DataType::Float32,
        DLDataType::F64 => DataType::Float64,
        DLDataType::BOOL if copy => DataType::Boolean,
        DLDataType::BOOL => return Err(Error::BitPacked),
        dtype => return Err(Error::UnsupportedDtype { dtype }),
    })
}

/// Bytes per element of a dtype `arrow_type` accepted.
fn element_size(dtype: DLDataType) -> usize {
    usize::from(dtype.bits / 8) * usize::from(dtype.lanes)
}

/// The leaf array over a compact buffer of `len` elements.
fn leaf(data_type: &DataType, buffer: Buffer, len: usize) -> ArrayRef {
    fn primitive<T: ArrowPrimitiveType>(buffer: Buffer, len: usize) -> ArrayRef {
        Arc::new(PrimitiveArray::<T>::new(
            ScalarBuffer::new(buffer, 0, len),
            None,
        ))
    }
    match data_type {
        DataType::Int8 => primitive::<Int8Type>(buffer, len),
        DataType::Int16 => primitive::<Int16Type>(buffer, len),
        DataType::Int32 => primitive::<Int32Type>(buffer, len),
        DataType::Int64 => primitive::<Int64Type>(buffer, len),
        DataType::UInt8 => primitive::<UInt8Type>(buffer, len),
        DataType::UInt16 => primitive::<UInt16Type>(buffer, len),
        DataType::UInt32 => primitive::<UInt32Type>(buffer, len),
        DataType::UInt64 => primitive::<UInt64Type>(buffer, len),
        DataType::Float16 => primitive::<Float16Type>(buffer, len),
        DataType::Float32 => primitive::<Float32Type>(buffer, len),
        DataType::Float64 => primitive::<Float64Type>(buffer, len),
        DataType::Boolean => Arc::new(BooleanArray::new(BooleanBuffer::new(buffer, 0, len), None)),
        _ => unreachable!("arrow_type yields only the types above"),
    }
}

/// The length of a 1-D tensor.
fn rank_one(view: &TensorView<'_>) -> Result<usize, Error> {
    match *view.shape() {
        // The extent fits usize: the core checked the layout fits isize.
        [len] => Ok(len as usize),
        _ => Err(rank(view, "1")),
    }
}

#[cold]
fn rank(view: &TensorView<'_>, expected: &'static str) -> Error {
    Error::Rank {
        shape: view.shape().to_vec(),
        expected,
    }
}

#[cold]
fn not_compact(view: &TensorView<'_>) -> Error {
    Error::NotCompact {
        shape: view.shape().to_vec(),
        strides: view.strides().collect(),
    }
}

fn list_size(extent: i64) -> Result<i32, Error> {
    i32::try_from(extent).map_err(|_| Error::TooLarge {
        list_size: extent as u64,
    })
}

/// The length of a list level whose size is 0 (its values say nothing):
/// the product of the extents before it.
fn outer(shape: &[i64]) -> usize {
    let mut len = 1usize;
    for &extent in &shape[..shape.len() - 1] {
        len = len.saturating_mul(extent as usize);
    }
    len
}

/// Rule 3: host memory, the first element aligned to its size.
fn host_aligned(view: &TensorView<'_>, elem: usize) -> Result<(), Error> {
    let device = view.device();
    if !device.device_type.is_host_accessible() {
        return Err(Error::Tensor(dlpack_core::Error::NotHostAccessible {
            device,
        }));
    }
    let address = view.data_ptr() as usize;
    if view.num_elements() != 0 && !address.is_multiple_of(elem) {
        return Err(Error::Tensor(dlpack_core::Error::Misaligned {
            address,
            align: elem,
        }));
    }
    Ok(())
}

/// The order in which the axes after the first are stored, when the whole
/// tensor is one compact block whose first axis is outermost and whose
/// other axes are a permutation of row-major: `order[k]` is the logical
/// axis (0-based, after the first) stored k-th from the outside.
fn permuted_order(view: &TensorView<'_>, list_size: u64) -> Option<Vec<usize>> {
    let shape = view.shape();
    let strides: Vec<i64> = view.strides().collect();
    if view.num_elements() == 0 {
        return Some((0..shape.len() - 1).collect());
    }
    // The first axis: outermost, stride list_size (free when extent 1).
    if shape[0] != 1 && strides[0] as u64 != list_size {
        return None;
    }
    let mut order: Vec<usize> = (0..shape.len() - 1).collect();
    // Axes of extent 1 do not constrain the layout: keep them where they
    // are by sorting them as if they had their row-major place.
    order.sort_by_key(|&axis| {
        let stride = if shape[axis + 1] == 1 {
            i64::MAX
        } else {
            strides[axis + 1]
        };
        core::cmp::Reverse(stride)
    });
    // The sort is stable; extent-1 axes go first, where they are free.
    let mut expected = 1i64;
    for &axis in order.iter().rev() {
        let extent = shape[axis + 1];
        if extent != 1 && strides[axis + 1] != expected {
            return None;
        }
        expected = expected.checked_mul(extent)?;
    }
    Some(order)
}

/// A compact row-major copy of a strided tensor, Arrow-aligned.
fn gather(view: &TensorView<'_>, elem: usize) -> MutableBuffer {
    let shape = view.shape();
    let strides: Vec<i64> = view.strides().collect();
    let elements = view.num_elements() as usize;
    let mut out = MutableBuffer::with_capacity(elements * elem);
    let base = view.data_ptr();
    let mut index = vec![0i64; shape.len()];
    let mut offset = 0i64;
    for _ in 0..elements {
        // SAFETY: `offset` is the element offset of an index inside the
        // shape: its `elem` bytes lie inside the layout's reach, readable
        // host memory for the view's lifetime (TensorView contract, host
        // checked by the caller). Cannot overflow: the core checked the
        // layout's byte reach fits isize.
        let bytes = unsafe {
            core::slice::from_raw_parts(base.offset(offset as isize * elem as isize), elem)
        };
        out.extend_from_slice(bytes);
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            offset += strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            offset -= strides[axis] * shape[axis];
            index[axis] = 0;
        }
    }
    out
}
