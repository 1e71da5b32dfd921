//! What a conversion refuses, with the refused value.

use core::fmt;

use burn_std::{DType, DataError};
use dlpack_core::ErrorKind;
use dlpack_core::ffi::DLDataType;

/// Why a tensor cannot become burn data, or burn data a DLPack tensor.
///
/// Every variant carries the refused value; `Display` names it and the
/// rule. [`Error::kind`] gives the Python exception it maps to, as the
/// core's errors do.
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The tensor breaks a rule of the standard (NULL data with elements,
    /// bad extents, ...), is not in host memory, or its first element is
    /// not aligned for its dtype: the core's error, unchanged.
    Tensor(dlpack_core::Error),
    /// The DLPack dtype has no burn dtype (complex, float8/6/4, vectors).
    NoBurnDtype {
        /// The tensor's dtype.
        dtype: DLDataType,
    },
    /// The burn dtype has no DLPack dtype: quantized data (`QFloat`, packed
    /// values followed by their scales) and `Bool(BoolStore::U32)`.
    NoDlpackDtype {
        /// The data's dtype.
        dtype: DType,
    },
    /// The elements are not compact in row-major order (a transpose, a
    /// slice with steps, a broadcast, negative strides): `TensorData` holds
    /// compact row-major bytes only.
    /// [`copy_tensor_data`](crate::consumer::copy_tensor_data) copies them.
    NotCompact {
        /// The tensor's shape.
        shape: Vec<i64>,
        /// Its strides, in elements.
        strides: Vec<i64>,
        /// The strides a compact row-major tensor of that shape has.
        compact: Vec<i64>,
    },
    /// The dtype does not belong to the tensor kind asked for (`Float`:
    /// floats; `Int`: signed and unsigned integers; `Bool`: bool).
    Kind {
        /// The data's dtype.
        dtype: DType,
        /// The kind asked for.
        kind: &'static str,
    },
    /// The burn device cannot hold the dtype (the ndarray backend has no
    /// `f16` or `bf16` tensors).
    DeviceDtype {
        /// The data's dtype.
        dtype: DType,
        /// The device, as burn prints it.
        device: String,
    },
    /// The copy's bytes cannot be allocated (a broadcast tensor, stride 0,
    /// can describe far more elements than memory holds).
    CopyTooLarge {
        /// The bytes the copy needs.
        bytes: usize,
    },
    /// burn refused the data it was handed (not expected: the length is
    /// checked before).
    Data(DataError),
    /// Reading a burn tensor back to host data failed.
    Read {
        /// burn's message.
        message: String,
    },
}

impl Error {
    /// The Python exception this error maps to: a dtype that does not fit
    /// the kind asked for is a `TypeError` (as the core's dtype mismatch
    /// is); the rest `BufferError`, and the core's errors keep their own
    /// kind.
    ///
    /// ```
    /// use dlpack_burn::Error;
    /// use dlpack_core::ErrorKind;
    /// use dlpack_core::ffi::DLDataType;
    ///
    /// assert_eq!(Error::NoBurnDtype { dtype: DLDataType::C64 }.kind(), ErrorKind::Buffer);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Tensor(err) => err.kind(),
            Error::Kind { .. } => ErrorKind::Type,
            Error::NoBurnDtype { .. }
            | Error::NoDlpackDtype { .. }
            | Error::NotCompact { .. }
            | Error::DeviceDtype { .. }
            | Error::CopyTooLarge { .. }
            | Error::Data(_)
            | Error::Read { .. } => ErrorKind::Buffer,
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
            Error::NoBurnDtype { dtype } => write!(
                f,
                "burn has no dtype for {dtype:?} (it has float64/32/16, bfloat16, int64..int8, \
                 uint64..uint8 and bool)"
            ),
            Error::NoDlpackDtype { dtype } => write!(
                f,
                "burn dtype {dtype:?} has no DLPack dtype (quantized data and bool stored as u32 \
                 cannot be exchanged; dequantize or cast first)"
            ),
            Error::NotCompact {
                shape,
                strides,
                compact,
            } => write!(
                f,
                "strides {strides:?} of a tensor of shape {shape:?} are not compact row-major \
                 ({compact:?}), which TensorData needs; copy_tensor_data makes a compact copy"
            ),
            Error::Kind { dtype, kind } => {
                write!(f, "dtype {dtype:?} is not one of a {kind} tensor")
            }
            Error::DeviceDtype { dtype, device } => {
                write!(f, "device {device} has no tensors of dtype {dtype:?}")
            }
            Error::CopyTooLarge { bytes } => write!(
                f,
                "a copy of the tensor needs {bytes} bytes, which cannot be allocated"
            ),
            Error::Data(err) => write!(f, "burn refused the data: {err}"),
            Error::Read { message } => write!(f, "reading the burn tensor failed: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Tensor(err) => Some(err),
            Error::Data(err) => Some(err),
            _ => None,
        }
    }
}
