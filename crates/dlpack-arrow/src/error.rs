//! What an export or an import refuses, with the refused value.

use core::fmt;

use arrow_schema::DataType;
use dlpack_core::ErrorKind;
use dlpack_core::ffi::DLDataType;

/// Why an Arrow array cannot become a tensor, or a tensor an Arrow array.
///
/// Every variant carries the value that was refused; `Display` names it and
/// the rule. [`Error::kind`] gives the Python exception it maps to, as the
/// core's errors do.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The tensor breaks a rule of the standard (NULL pointers, bad
    /// extents, ...) or is not host memory of the element type asked for
    /// (dtype, device, alignment): the core's error, unchanged.
    Tensor(dlpack_core::Error),
    /// The array (or a child of a nested list) has nulls. DLPack has no
    /// validity mask, and filling the slots would invent values: refused
    /// even when a copy is allowed.
    Nulls {
        /// The Arrow type of the array holding the nulls.
        data_type: DataType,
        /// How many of its slots are null.
        count: usize,
    },
    /// Arrow booleans are bit-packed, which no DLPack consumer reads;
    /// allowing a copy unpacks them into one byte each (dtype `bool`).
    BitPacked,
    /// The Arrow type has no DLPack element type: strings, decimals,
    /// intervals, structs, variable-size lists, ...; and dates, times,
    /// timestamps and durations unless their integers are asked for
    /// ([`ArrowExport::temporal_as_int`](crate::producer::ArrowExport::temporal_as_int)).
    UnsupportedType {
        /// The refused Arrow type.
        data_type: DataType,
    },
    /// The tensor's element type has no Arrow primitive type (bfloat16,
    /// complex, float8, vectors of lanes, ...).
    UnsupportedDtype {
        /// The refused dtype.
        dtype: DLDataType,
    },
    /// The rank does not fit what was asked for: a primitive array is 1-D,
    /// a list of tensors at least 1-D.
    Rank {
        /// The tensor's shape.
        shape: Vec<i64>,
        /// The ranks that fit.
        expected: &'static str,
    },
    /// The elements are not compact in row-major order (a slice with a
    /// step, a transpose, a broadcast): Arrow buffers are compact. Allowing
    /// a copy makes a compact one; a tensor whose axes after the first are
    /// a permutation of row-major imports without a copy as a
    /// `fixed_shape_tensor` with that permutation.
    NotCompact {
        /// The tensor's shape.
        shape: Vec<i64>,
        /// Its strides, in elements.
        strides: Vec<i64>,
    },
    /// An extent does not fit the `i32` that Arrow counts list sizes with.
    TooLarge {
        /// The list size that does not fit.
        list_size: u64,
    },
    /// The field's `arrow.fixed_shape_tensor` metadata is malformed or does
    /// not match the array (Arrow's message).
    Extension {
        /// What Arrow reported.
        message: String,
    },
}

impl Error {
    /// The Python exception this error maps to: a type the other side
    /// cannot hold and a wrong rank are `TypeError`, malformed extension
    /// metadata is `ValueError`, the rest `BufferError`; the core's errors
    /// keep their own kind.
    ///
    /// ```
    /// use dlpack_arrow::Error;
    /// use dlpack_core::ErrorKind;
    ///
    /// assert_eq!(Error::BitPacked.kind(), ErrorKind::Buffer);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Tensor(err) => err.kind(),
            Error::UnsupportedType { .. } | Error::UnsupportedDtype { .. } | Error::Rank { .. } => {
                ErrorKind::Type
            }
            Error::Extension { .. } => ErrorKind::Value,
            Error::Nulls { .. }
            | Error::BitPacked
            | Error::NotCompact { .. }
            | Error::TooLarge { .. } => ErrorKind::Buffer,
        }
    }
}

impl From<dlpack_core::Error> for Error {
    fn from(err: dlpack_core::Error) -> Self {
        Error::Tensor(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Tensor(err) => err.fmt(f),
            Error::Nulls { data_type, count } => write!(
                f,
                "the {data_type} array has {count} null(s): DLPack has no validity mask \
                 (fill or drop the nulls first)"
            ),
            Error::BitPacked => f.write_str(
                "Arrow booleans are bit-packed, which DLPack cannot describe; \
                 allow a copy to unpack them to one byte each",
            ),
            Error::UnsupportedType { data_type } => {
                write!(f, "the Arrow type {data_type} has no DLPack element type")?;
                if temporal_int(data_type).is_some() {
                    f.write_str("; ask for temporal_as_int to export its integers")?;
                }
                Ok(())
            }
            Error::UnsupportedDtype { dtype } => write!(
                f,
                "the dtype (code {:?}, {} bits, {} lanes) has no Arrow primitive type",
                dtype.code, dtype.bits, dtype.lanes
            ),
            Error::Rank { shape, expected } => write!(
                f,
                "a tensor of shape {shape:?} cannot become this Arrow array: \
                 it must have {expected} dimension(s)"
            ),
            Error::NotCompact { shape, strides } => write!(
                f,
                "strides {strides:?} of a tensor of shape {shape:?} are not compact row-major, \
                 which Arrow buffers are; allow a copy to make a compact one"
            ),
            Error::TooLarge { list_size } => write!(
                f,
                "a list size of {list_size} elements is more than Arrow's i32 list sizes hold"
            ),
            Error::Extension { message } => {
                write!(f, "bad arrow.fixed_shape_tensor extension: {message}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Tensor(err) => Some(err),
            _ => None,
        }
    }
}

/// The integer dtype under a date, time, timestamp or duration type.
pub(crate) fn temporal_int(data_type: &DataType) -> Option<DLDataType> {
    match data_type {
        DataType::Date32 | DataType::Time32(_) => Some(DLDataType::I32),
        DataType::Date64
        | DataType::Time64(_)
        | DataType::Timestamp(..)
        | DataType::Duration(_) => Some(DLDataType::I64),
        _ => None,
    }
}
