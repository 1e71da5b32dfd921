//! Arrow → DLPack: arrays as read-only managed tensors, zero-copy.
//!
//! What becomes a tensor:
//!
//! - a `PrimitiveArray` of an integer (`Int8` … `UInt64`) or float
//!   (`Float16`, `Float32`, `Float64`) type: a 1-D tensor of its values;
//! - a `FixedSizeListArray` of those, nested to any depth: an N-d tensor,
//!   shape `[len, size, inner size, ...]`;
//! - with its [`Field`](ArrowExport::field), a `FixedSizeListArray` of the
//!   canonical `arrow.fixed_shape_tensor` extension type: a tensor of shape
//!   `[len] + logical shape`, whose strides follow the extension's
//!   `permutation` (no copy: the permutation becomes strides).
//!
//! The tensor holds one reference to the Arrow buffer of the values (an
//! `Arc` increment): the array may be dropped before the consumer is done.
//! Arrow buffers are shared and immutable, so every zero-copy export is
//! `READ_ONLY` (as pyarrow's own `__dlpack__`); the legacy ABI cannot say
//! that, so only versioned tensors are made.
//!
//! Refused, with a typed [`Error`]:
//!
//! - nulls at any level ([`Error::Nulls`]), always: DLPack has no validity
//!   mask, and a fill value would invent data;
//! - booleans ([`Error::BitPacked`]) unless a copy is allowed
//!   ([`ArrowExport::copy`]), which unpacks them to one byte each (dtype
//!   `bool`, writable, `IS_COPIED`);
//! - dates, times, timestamps and durations ([`Error::UnsupportedType`])
//!   unless their integers are asked for ([`ArrowExport::temporal_as_int`]):
//!   the unit and time zone do not travel;
//! - decimals, intervals, strings, structs, variable-size lists and the
//!   rest ([`Error::UnsupportedType`]): no DLPack element type holds them.
//!
//! Cost: one heap allocation per export (the core's block); the shape is
//! built on the stack.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, DurationMicrosecondType, DurationMillisecondType,
    DurationNanosecondType, DurationSecondType, Float16Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType};
use arrow_buffer::Buffer;
use arrow_schema::{DataType, Field, TimeUnit};
use dlpack_core::export::{Export, Memory, TensorOwner};
use dlpack_core::ffi::{DLDataType, DLDevice};
use dlpack_core::managed::ManagedTensorVersioned;

use crate::error::{Error, temporal_int};
use crate::extension::TensorMetadata;

/// The deepest nesting of lists (rank) an export handles.
pub const MAX_RANK: usize = 32;

/// An Arrow buffer as the owner of an exported tensor.
struct Owner(Buffer);

// SAFETY: an Arrow `Buffer` is an `Arc` of immutable bytes: they stay at the
// same address while any clone lives, wherever the `Buffer` is moved, and
// are freed when the last clone is dropped (from any thread: Buffer is Send
// and Sync). They are reported read-only: other clones may read them.
unsafe impl TensorOwner for Owner {
    #[inline]
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: self.0.as_ptr().cast_mut().cast(),
            len: self.0.len(),
            device: DLDevice::cpu(),
            dtype: None,
            read_only: true,
        }
    }
}

/// Builder of the export of an Arrow array: choose the options, then
/// [`ArrowExport::versioned`].
///
/// # Examples
///
/// ```
/// use arrow_array::{BooleanArray, Int32Array};
/// use dlpack_arrow::Error;
/// use dlpack_arrow::producer::ArrowExport;
///
/// let a = Int32Array::from(vec![1, 2, 3]);
/// let t = ArrowExport::new(&a).versioned()?;
/// assert_eq!(t.view().as_slice::<i32>()?, &[1, 2, 3]);
/// assert!(t.flags().is_read_only());
///
/// let b = BooleanArray::from(vec![true, false]);
/// assert_eq!(ArrowExport::new(&b).versioned().unwrap_err(), Error::BitPacked);
/// let t = ArrowExport::new(&b).copy(true).versioned()?;
/// assert_eq!(t.view().as_slice::<bool>()?, &[true, false]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ArrowExport<'a> {
    array: &'a dyn Array,
    field: Option<&'a Field>,
    copy: bool,
    temporal_as_int: bool,
}

impl<'a> ArrowExport<'a> {
    /// Starts an export of `array`: zero-copy, no copy allowed, temporal
    /// types refused, no extension type.
    pub fn new(array: &'a dyn Array) -> Self {
        ArrowExport {
            array,
            field: None,
            copy: false,
            temporal_as_int: false,
        }
    }

    /// The array's field: when it carries the `arrow.fixed_shape_tensor`
    /// extension type, the tensor takes its shape and permutation (other
    /// fields change nothing).
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use arrow_array::{Array, FixedSizeListArray, Float32Array};
    /// use arrow_schema::extension::FixedShapeTensor;
    /// use arrow_schema::{DataType, Field};
    /// use dlpack_arrow::producer::ArrowExport;
    ///
    /// // One tensor of logical shape (3, 2), stored as its (2, 3) transpose.
    /// let ext = FixedShapeTensor::try_new(DataType::Float32, [2, 3], None, Some(vec![1, 0]))?;
    /// let item = Arc::new(Field::new("item", DataType::Float32, false));
    /// let values = Arc::new(Float32Array::from(vec![0., 1., 2., 3., 4., 5.]));
    /// let list = FixedSizeListArray::try_new(item.clone(), 6, values, None)?;
    /// let field = Field::new("t", list.data_type().clone(), false).with_extension_type(ext);
    /// let t = ArrowExport::new(&list).field(&field).versioned()?;
    /// assert_eq!(t.view().shape(), &[1, 3, 2]);
    /// assert_eq!(t.view().strides().collect::<Vec<_>>(), [6, 1, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn field(mut self, field: &'a Field) -> Self {
        self.field = Some(field);
        self
    }

    /// Allows a copy where no zero-copy tensor exists: booleans are
    /// unpacked to one byte each (dtype `bool`). Nulls are refused even so.
    pub fn copy(mut self, copy: bool) -> Self {
        self.copy = copy;
        self
    }

    /// Exports dates, times, timestamps and durations as the integers Arrow
    /// stores (`Date32`/`Time32` as `int32`, the others as `int64`); the
    /// unit and time zone are the caller's to keep.
    pub fn temporal_as_int(mut self, temporal_as_int: bool) -> Self {
        self.temporal_as_int = temporal_as_int;
        self
    }

    /// Builds a read-only `DLManagedTensorVersioned` over the array's
    /// values (writable when a copy was made).
    ///
    /// # Errors
    ///
    /// See the [module](self) list; [`Error::Extension`] when the field's
    /// `arrow.fixed_shape_tensor` metadata is malformed or does not match
    /// the array; [`Error::Rank`] for lists nested deeper than
    /// [`MAX_RANK`].
    pub fn versioned(self) -> Result<ManagedTensorVersioned, Error> {
        let mut shape = [0i64; MAX_RANK];
        let mut leaf = self.array;
        refuse_nulls(leaf)?;
        // An array length fits i64 (it counts elements of an allocation).
        shape[0] = leaf.len() as i64;
        let mut rank = 1;
        while let DataType::FixedSizeList(..) = leaf.data_type() {
            if rank == MAX_RANK {
                return Err(Error::Rank {
                    shape: shape.to_vec(),
                    expected: "at most 32",
                });
            }
            let list = leaf.as_fixed_size_list();
            shape[rank] = i64::from(list.value_length());
            rank += 1;
            // Sliced to exactly len * size values.
            leaf = list.values().as_ref();
            refuse_nulls(leaf)?;
        }
        if let Some(field) = self.field
            && let Some(metadata) = TensorMetadata::of(field)?
        {
            let (ndim, mut logical, strides) = tensor_strides(&metadata, self.array, rank)?;
            logical[0] = shape[0];
            return self.finish(leaf, &logical[..=ndim], Some(&strides[..=ndim]));
        }
        self.finish(leaf, &shape[..rank], None)
    }

    fn finish(
        self,
        leaf: &dyn Array,
        shape: &[i64],
        strides: Option<&[i64]>,
    ) -> Result<ManagedTensorVersioned, Error> {
        let (dtype, buffer) = match leaf_values(leaf, self.temporal_as_int) {
            Ok(found) => found,
            Err(Error::BitPacked) if self.copy => {
                let bits = leaf.as_boolean().values();
                let bytes: Vec<u8> = bits.iter().map(u8::from).collect();
                let mut export = Export::new(bytes)
                    .dtype(DLDataType::BOOL)
                    .shape(shape)
                    .copied(true);
                if let Some(strides) = strides {
                    export = export.strides(strides);
                }
                return Ok(export.versioned()?);
            }
            Err(err) => return Err(err),
        };
        let mut export = Export::new(Owner(buffer)).dtype(dtype).shape(shape);
        if let Some(strides) = strides {
            export = export.strides(strides);
        }
        Ok(export.versioned()?)
    }
}

/// Conversion of an Arrow array into a read-only managed tensor,
/// zero-copy; [`ArrowExport`] with its defaults.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// use arrow_array::{FixedSizeListArray, UInt8Array};
/// use arrow_schema::{DataType, Field};
/// use dlpack_arrow::ToDlpack;
///
/// // Two rows of three bytes: a (2, 3) tensor.
/// let item = Arc::new(Field::new("item", DataType::UInt8, false));
/// let values = Arc::new(UInt8Array::from(vec![1, 2, 3, 4, 5, 6]));
/// let rows = FixedSizeListArray::try_new(item, 3, values, None)?;
/// let t = rows.to_dlpack_versioned()?;
/// assert_eq!(t.view().shape(), &[2, 3]);
/// assert_eq!(t.view().as_slice::<u8>()?, &[1, 2, 3, 4, 5, 6]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ToDlpack {
    /// Builds a read-only `DLManagedTensorVersioned`.
    ///
    /// # Errors
    ///
    /// As [`ArrowExport::versioned`].
    fn to_dlpack_versioned(&self) -> Result<ManagedTensorVersioned, Error>;
}

impl<A: Array> ToDlpack for A {
    #[inline]
    fn to_dlpack_versioned(&self) -> Result<ManagedTensorVersioned, Error> {
        ArrowExport::new(self).versioned()
    }
}

fn refuse_nulls(array: &dyn Array) -> Result<(), Error> {
    match array.null_count() {
        0 => Ok(()),
        count => Err(nulls(array, count)),
    }
}

#[cold]
fn nulls(array: &dyn Array, count: usize) -> Error {
    Error::Nulls {
        data_type: array.data_type().clone(),
        count,
    }
}

/// The dtype and the values buffer (sliced to the array) of a leaf.
#[inline]
fn leaf_values(leaf: &dyn Array, temporal_as_int: bool) -> Result<(DLDataType, Buffer), Error> {
    fn values<T: ArrowPrimitiveType>(leaf: &dyn Array, dtype: DLDataType) -> (DLDataType, Buffer) {
        (dtype, leaf.as_primitive::<T>().values().inner().clone())
    }
    let data_type = leaf.data_type();
    Ok(match data_type {
        DataType::Int8 => values::<Int8Type>(leaf, DLDataType::I8),
        DataType::Int16 => values::<Int16Type>(leaf, DLDataType::I16),
        DataType::Int32 => values::<Int32Type>(leaf, DLDataType::I32),
        DataType::Int64 => values::<Int64Type>(leaf, DLDataType::I64),
        DataType::UInt8 => values::<UInt8Type>(leaf, DLDataType::U8),
        DataType::UInt16 => values::<UInt16Type>(leaf, DLDataType::U16),
        DataType::UInt32 => values::<UInt32Type>(leaf, DLDataType::U32),
        DataType::UInt64 => values::<UInt64Type>(leaf, DLDataType::U64),
        DataType::Float16 => values::<Float16Type>(leaf, DLDataType::F16),
        DataType::Float32 => values::<Float32Type>(leaf, DLDataType::F32),
        DataType::Float64 => values::<Float64Type>(leaf, DLDataType::F64),
        DataType::Boolean => return Err(Error::BitPacked),
        _ if temporal_as_int && temporal_int(data_type).is_some() => temporal(leaf)?,
        _ => {
            return Err(Error::UnsupportedType {
                data_type: data_type.clone(),
            });
        }
    })
}

/// The integers under a temporal leaf.
fn temporal(leaf: &dyn Array) -> Result<(DLDataType, Buffer), Error> {
    fn values<T: ArrowPrimitiveType>(leaf: &dyn Array, dtype: DLDataType) -> (DLDataType, Buffer) {
        (dtype, leaf.as_primitive::<T>().values().inner().clone())
    }
    use DLDataType as D;
    use TimeUnit::*;
    Ok(match leaf.data_type() {
        DataType::Date32 => values::<Date32Type>(leaf, D::I32),
        DataType::Date64 => values::<Date64Type>(leaf, D::I64),
        DataType::Time32(Second) => values::<Time32SecondType>(leaf, D::I32),
        DataType::Time32(Millisecond) => values::<Time32MillisecondType>(leaf, D::I32),
        DataType::Time64(Microsecond) => values::<Time64MicrosecondType>(leaf, D::I64),
        DataType::Time64(Nanosecond) => values::<Time64NanosecondType>(leaf, D::I64),
        DataType::Timestamp(Second, _) => values::<TimestampSecondType>(leaf, D::I64),
        DataType::Timestamp(Millisecond, _) => values::<TimestampMillisecondType>(leaf, D::I64),
        DataType::Timestamp(Microsecond, _) => values::<TimestampMicrosecondType>(leaf, D::I64),
        DataType::Timestamp(Nanosecond, _) => values::<TimestampNanosecondType>(leaf, D::I64),
        DataType::Duration(Second) => values::<DurationSecondType>(leaf, D::I64),
        DataType::Duration(Millisecond) => values::<DurationMillisecondType>(leaf, D::I64),
        DataType::Duration(Microsecond) => values::<DurationMicrosecondType>(leaf, D::I64),
        DataType::Duration(Nanosecond) => values::<DurationNanosecondType>(leaf, D::I64),
        // Time32 of micro/nanoseconds and Time64 of (milli)seconds are not
        // valid Arrow types.
        data_type => {
            return Err(Error::UnsupportedType {
                data_type: data_type.clone(),
            });
        }
    })
}

/// The tensor's logical shape and strides of a `fixed_shape_tensor` array:
/// `(ndim, [_, logical extents], [list size, strides])` (`ndim` extents
/// after the first axis, whose extent the caller fills in).
fn tensor_strides(
    metadata: &TensorMetadata,
    array: &dyn Array,
    rank: usize,
) -> Result<(usize, [i64; MAX_RANK], [i64; MAX_RANK]), Error> {
    let extension = |message: String| Error::Extension { message };
    let physical = &metadata.shape;
    let DataType::FixedSizeList(_, size) = array.data_type() else {
        return Err(extension(format!(
            "the storage must be a FixedSizeList, found {}",
            array.data_type()
        )));
    };
    let list_size = physical
        .iter()
        .try_fold(1usize, |product, &extent| product.checked_mul(extent));
    if rank != 2 || usize::try_from(*size).ok() != list_size {
        return Err(extension(format!(
            "shape {physical:?} does not match the storage type {}",
            array.data_type()
        )));
    }
    let ndim = physical.len();
    if ndim + 1 > MAX_RANK {
        return Err(Error::Rank {
            shape: physical.iter().map(|&e| e as i64).collect(),
            expected: "at most 31",
        });
    }
    // Row-major strides of the physical shape.
    let mut physical_strides = [0i64; MAX_RANK];
    let mut stride = 1i64;
    for axis in (0..ndim).rev() {
        physical_strides[axis] = stride;
        // Cannot overflow: the product of all extents is the list size,
        // an i32.
        stride *= physical[axis] as i64;
    }
    let mut logical = [0i64; MAX_RANK];
    let mut strides = [0i64; MAX_RANK];
    strides[0] = i64::from(*size);
    for axis in 0..ndim {
        // `permutation` is a permutation of 0..ndim (TensorMetadata::of).
        let from = metadata.permutation.as_ref().map_or(axis, |p| p[axis]);
        logical[axis + 1] = physical[from] as i64;
        strides[axis + 1] = physical_strides[from];
    }
    Ok((ndim, logical, strides))
}
