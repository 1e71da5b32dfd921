//! What opening a file or exporting a tensor refuses, with the refused value.

use core::fmt;
use std::path::PathBuf;

use dlpack_core::ErrorKind;

/// Why a file cannot be read as safetensors, or a tensor cannot be handed
/// out.
///
/// Every variant carries the refused value; `Display` names it and the rule
/// of the format it breaks. [`Error::kind`] gives the Python exception it
/// maps to: a corrupt file is a `ValueError`, a tensor that cannot be
/// shared as asked a `BufferError`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Opening, reading the size of, or mapping the file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is shorter than the 8 bytes of the header length.
    HeaderTooSmall {
        /// The file's length.
        len: u64,
    },
    /// The header length is above the limit the format sets
    /// ([`MAX_HEADER_LEN`](crate::MAX_HEADER_LEN), as the `safetensors`
    /// crate does).
    HeaderTooLarge {
        /// The header length read.
        header_len: u64,
    },
    /// The header length reaches past the end of the file.
    HeaderOutOfRange {
        /// The header length read.
        header_len: u64,
        /// The file's length.
        len: u64,
    },
    /// The header is not valid UTF-8.
    HeaderNotUtf8 {
        /// The offset in the header of the first invalid byte.
        offset: usize,
    },
    /// The header is not the JSON the format asks for.
    Json {
        /// The offset in the header where reading stopped.
        offset: usize,
        /// What was expected there.
        expected: &'static str,
    },
    /// An entry of the header is missing a field, has it twice, or has it
    /// of the wrong JSON type.
    Field {
        /// The tensor's name (or `__metadata__`).
        tensor: String,
        /// The field (`dtype`, `shape`, `data_offsets`, or a metadata key;
        /// empty when the entry itself has the wrong type).
        field: String,
        /// The rule broken.
        rule: &'static str,
    },
    /// Two entries of the header have the same name.
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A `dtype` the format does not define.
    UnknownDtype {
        /// The tensor's name.
        tensor: String,
        /// The dtype given.
        dtype: String,
    },
    /// An extent does not fit DLPack's `int64_t`, or the element count or
    /// bit count of the shape overflows.
    ShapeOverflow {
        /// The tensor's name.
        tensor: String,
        /// The shape given.
        shape: Vec<u64>,
    },
    /// A packed sub-byte tensor whose bits do not fill whole bytes.
    NotWholeBytes {
        /// The tensor's name.
        tensor: String,
        /// Elements × bits per element.
        bits: u64,
    },
    /// `data_offsets` do not span the bytes the dtype and shape need.
    SizeMismatch {
        /// The tensor's name.
        tensor: String,
        /// Bytes the dtype and shape need.
        expected: u64,
        /// `[begin, end)` given.
        offsets: [u64; 2],
    },
    /// `data_offsets` are reversed, or leave a gap or an overlap with the
    /// tensor before them (in offset order, tensors must cover the data
    /// section from 0 without gaps or overlaps).
    InvalidOffsets {
        /// The tensor's name.
        tensor: String,
        /// `[begin, end)` given.
        offsets: [u64; 2],
        /// Where the previous tensor ends (0 for the first).
        expected_begin: u64,
    },
    /// The tensors do not end where the data section (the rest of the file)
    /// ends.
    DataLength {
        /// Bytes the tensors cover.
        covered: u64,
        /// Bytes of the data section.
        data_len: u64,
    },
    /// No tensor of that name.
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// A tensor's data is not aligned for its dtype in memory: it cannot be
    /// shared (consumers such as PyTorch read elements with aligned loads);
    /// [`SafetensorsFile::copy_tensor`](crate::SafetensorsFile::copy_tensor)
    /// makes an aligned copy.
    Misaligned {
        /// The tensor's name.
        tensor: String,
        /// Its address.
        address: usize,
        /// The alignment its dtype needs.
        alignment: usize,
    },
    /// A tensor to write has a dtype the format does not define.
    UnsupportedDtype {
        /// The tensor's name.
        tensor: String,
        /// Its DLPack dtype.
        dtype: dlpack_core::ffi::DLDataType,
    },
    /// The data are little-endian, and this target is not.
    BigEndian,
    /// Building the DLPack tensor failed (the core's error).
    Export(dlpack_core::Error),
}

impl Error {
    /// The Python exception this error maps to: `BufferError` for a tensor
    /// that cannot be shared as asked ([`Error::Misaligned`],
    /// [`Error::BigEndian`]), the core's kind for its errors, `ValueError`
    /// for the rest (a corrupt file, a name not found; an I/O error is
    /// raised as Python's own `OSError` by dlpack-py).
    ///
    /// ```
    /// use dlpack_core::ErrorKind;
    /// use dlpack_safetensors::Error;
    ///
    /// assert_eq!(Error::HeaderTooSmall { len: 3 }.kind(), ErrorKind::Value);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Misaligned { .. } | Error::BigEndian => ErrorKind::Buffer,
            Error::UnsupportedDtype { .. } => ErrorKind::Type,
            Error::Export(err) => err.kind(),
            _ => ErrorKind::Value,
        }
    }
}

impl From<dlpack_core::Error> for Error {
    fn from(err: dlpack_core::Error) -> Self {
        Error::Export(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => {
                write!(f, "cannot open or map {}: {source}", path.display())
            }
            Error::HeaderTooSmall { len } => write!(
                f,
                "a file of {len} bytes is not safetensors: the header length takes 8 bytes"
            ),
            Error::HeaderTooLarge { header_len } => write!(
                f,
                "header length {header_len} is above the format's limit of {} bytes",
                crate::MAX_HEADER_LEN
            ),
            Error::HeaderOutOfRange { header_len, len } => write!(
                f,
                "header length {header_len} reaches past the end of the file \
                 (8 + {header_len} > {len} bytes)"
            ),
            Error::HeaderNotUtf8 { offset } => {
                write!(
                    f,
                    "the header is not UTF-8 (invalid byte at offset {offset})"
                )
            }
            Error::Json { offset, expected } => write!(
                f,
                "the header is not valid safetensors JSON: expected {expected} at byte {offset}"
            ),
            Error::Field {
                tensor,
                field,
                rule,
            } if field.is_empty() => write!(f, "entry {tensor:?} {rule}"),
            Error::Field {
                tensor,
                field,
                rule,
            } => write!(f, "entry {tensor:?}: field {field:?} {rule}"),
            Error::DuplicateName { name } => {
                write!(f, "the header names {name:?} twice: names must be unique")
            }
            Error::UnknownDtype { tensor, dtype } => write!(
                f,
                "tensor {tensor:?} has dtype {dtype:?}, which the safetensors format does not \
                 define"
            ),
            Error::ShapeOverflow { tensor, shape } => write!(
                f,
                "tensor {tensor:?} has shape {shape:?}: an extent above 2^63 - 1 or a size that \
                 overflows"
            ),
            Error::NotWholeBytes { tensor, bits } => write!(
                f,
                "tensor {tensor:?} holds {bits} bits of packed elements, not a whole number of \
                 bytes"
            ),
            Error::SizeMismatch {
                tensor,
                expected,
                offsets: [begin, end],
            } => write!(
                f,
                "tensor {tensor:?}: data_offsets [{begin}, {end}) span {} bytes, but its shape \
                 and dtype need {expected}",
                end.wrapping_sub(*begin)
            ),
            Error::InvalidOffsets {
                tensor,
                offsets: [begin, end],
                expected_begin,
            } => write!(
                f,
                "tensor {tensor:?}: data_offsets [{begin}, {end}) must begin at \
                 {expected_begin}, where the previous tensor ends, and not end before they \
                 begin (tensors cover the data without gaps or overlaps)"
            ),
            Error::DataLength { covered, data_len } => write!(
                f,
                "the tensors cover {covered} bytes of data, but the data section after the \
                 header has {data_len}"
            ),
            Error::NotFound { name } => write!(f, "no tensor named {name:?} in the file"),
            Error::Misaligned {
                tensor,
                address,
                alignment,
            } => write!(
                f,
                "tensor {tensor:?} starts at {address:#x}, which is not aligned to the \
                 {alignment} bytes of its dtype: it cannot be shared without a copy"
            ),
            Error::UnsupportedDtype { tensor, dtype } => write!(
                f,
                "tensor {tensor:?} has dtype {dtype:?}, which the safetensors format cannot hold"
            ),
            Error::BigEndian => f.write_str(
                "safetensors data are little-endian: they cannot be shared on a big-endian target",
            ),
            Error::Export(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Export(err) => Some(err),
            _ => None,
        }
    }
}
