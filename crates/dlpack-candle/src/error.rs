//! What an export or an import refuses, with the refused value.

use core::fmt;

use dlpack_core::ErrorKind;
use dlpack_core::ffi::DLDataType;

/// Why a candle tensor cannot be exported, or a DLPack tensor cannot become
/// a candle tensor.
///
/// Every variant carries the value that was refused; `Display` names it and
/// the rule. [`Error::kind`] gives the Python exception it maps to.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A rule of the standard (from the core's export or validation),
    /// unchanged.
    Tensor(dlpack_core::Error),
    /// The candle tensor lives on a device this build cannot export
    /// (`"cuda:0"`, `"metal:0"`; CUDA storage needs the `cuda` feature).
    CandleDevice {
        /// candle's name of the device.
        device: String,
    },
    /// A candle dtype newer than this crate's table (candle's `DType` is
    /// non-exhaustive).
    CandleDtype {
        /// The dtype.
        dtype: candle_core::DType,
    },
    /// The DLPack dtype has no candle `DType` (`uint16`, `bool`,
    /// complex, float8 variants candle lacks, vector lanes).
    Dtype {
        /// The tensor's dtype.
        dtype: DLDataType,
    },
    /// A packed sub-byte tensor (`F4`, `F6E2M3`, `F6E3M2`) that is not
    /// compact from a whole byte: its elements are not addressable, so no
    /// other layout can be exported or copied.
    SubByteLayout {
        /// The dtype.
        dtype: DLDataType,
        /// The shape.
        shape: Vec<i64>,
        /// The strides, in elements.
        strides: Vec<i64>,
        /// The offset of the first element, in elements.
        offset: u64,
    },
    /// candle refused to build the tensor (its own error).
    Candle(candle_core::Error),
}

impl Error {
    /// The Python exception this error maps to: a dtype candle lacks is a
    /// `TypeError` (as a dtype mismatch is); the core's errors keep their
    /// kind; the rest are `BufferError`.
    ///
    /// ```
    /// use dlpack_candle::Error;
    /// use dlpack_core::ErrorKind;
    /// use dlpack_core::ffi::DLDataType;
    ///
    /// assert_eq!(Error::Dtype { dtype: DLDataType::U16 }.kind(), ErrorKind::Type);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Tensor(err) => err.kind(),
            Error::Dtype { .. } | Error::CandleDtype { .. } => ErrorKind::Type,
            Error::CandleDevice { .. } | Error::SubByteLayout { .. } | Error::Candle(_) => {
                ErrorKind::Buffer
            }
        }
    }
}

impl From<dlpack_core::Error> for Error {
    fn from(err: dlpack_core::Error) -> Self {
        Error::Tensor(err)
    }
}

impl From<candle_core::Error> for Error {
    fn from(err: candle_core::Error) -> Self {
        Error::Candle(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Tensor(err) => err.fmt(f),
            Error::CandleDevice { device } => write!(
                f,
                "a candle tensor on {device} cannot be exported: this build exports CPU storage \
                 (and CUDA storage with the `cuda` feature)"
            ),
            Error::Dtype { dtype } => write!(f, "candle has no dtype for {dtype:?}"),
            Error::CandleDtype { dtype } => {
                write!(
                    f,
                    "candle's dtype {dtype:?} has no DLPack dtype in this crate's table"
                )
            }
            Error::SubByteLayout {
                dtype,
                shape,
                strides,
                offset,
            } => write!(
                f,
                "a packed {dtype:?} tensor of shape {shape:?}, strides {strides:?} and element \
                 offset {offset} is not compact from a whole byte: packed elements are not \
                 addressable one by one"
            ),
            Error::Candle(err) => write!(f, "candle refused the tensor: {err}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Tensor(err) => Some(err),
            Error::Candle(err) => Some(err),
            _ => None,
        }
    }
}
