//! The crate's one error type. Every refusal names the value and the rule;
//! [`Error::kind`] maps it onto the core's [`ErrorKind`] (and so onto the
//! Python exception the DLPack standard names).

use alloc::string::String;
use core::fmt;

use dlpack_core::error::ErrorKind;
use dlpack_core::ffi::DLDevice;

/// Why a segment could not be made, opened or read.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The segment is shorter than what its header (or the format) needs.
    Truncated {
        /// The bytes the segment has.
        segment_len: u64,
        /// The bytes needed.
        needed: u64,
        /// What needed them.
        what: &'static str,
    },
    /// The segment does not start with [`crate::format::MAGIC`]: it was not
    /// made by this format.
    Foreign {
        /// The first eight bytes found.
        magic: [u8; 8],
    },
    /// A format version this crate does not read.
    Version {
        /// The version found.
        found: u32,
    },
    /// A header field breaks a rule of the format.
    Inconsistent {
        /// The field.
        field: &'static str,
        /// Its value.
        value: i128,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// Shape, strides and byte offset reach bytes outside the payload.
    OutOfPayload {
        /// Offset of element 0 in the payload.
        byte_offset: u64,
        /// The bytes reached, relative to the payload.
        reach: (i128, i128),
        /// Bytes of payload.
        payload_len: u64,
    },
    /// The header's nonce is not the handle's: the name now belongs to
    /// another segment.
    NonceMismatch {
        /// The segment's name.
        name: String,
        /// The handle's nonce.
        expected: u64,
        /// The header's.
        found: u64,
    },
    /// Shape, strides or dtype of a segment's header refused by the core's
    /// validation (a bad value in the segment).
    Header(dlpack_core::Error),
    /// Shape, strides or dtype given by the caller refused by the core's
    /// validation.
    Tensor(dlpack_core::Error),
    /// Only host memory can be published.
    NotHost {
        /// The tensor's device.
        device: DLDevice,
    },
    /// A segment name this crate does not accept.
    InvalidName {
        /// The name.
        name: String,
        /// The rule.
        rule: &'static str,
    },
    /// A handle's text that does not parse.
    InvalidHandle {
        /// The text.
        text: String,
        /// The rule.
        rule: &'static str,
    },
    /// A writable view was asked of a read-only segment.
    ReadOnly {
        /// The segment's name.
        name: String,
    },
    /// A system call failed.
    Os {
        /// What was being done (`shm_open`, `mmap`, ...).
        op: &'static str,
        /// The segment's name.
        name: String,
        /// The `errno` value.
        errno: i32,
    },
}

impl Error {
    pub(crate) fn inconsistent(field: &'static str, value: i128, rule: &'static str) -> Self {
        Error::Inconsistent { field, value, rule }
    }

    /// The exception kind: a segment that is not ours, or not consistent, is
    /// a bad value (`ValueError`); a writable view of a read-only segment
    /// and device memory are `BufferError` / `TypeError` as for any DLPack
    /// export. [`Error::Os`] has no kind of its own: callers raise it as
    /// the OS error it is (see [`Error::errno`]), `Buffer` here.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Tensor(e) => e.kind(),
            Error::NotHost { .. } => ErrorKind::Type,
            Error::ReadOnly { .. } | Error::Os { .. } => ErrorKind::Buffer,
            _ => ErrorKind::Value,
        }
    }

    /// The `errno` of a failed system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Os { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated {
                segment_len,
                needed,
                what,
            } => write!(
                f,
                "truncated shared-memory segment: {segment_len} bytes, but {what} needs \
                 {needed} bytes"
            ),
            Error::Foreign { magic } => write!(
                f,
                "not a dlpack shared-memory segment: it starts with {magic:02x?}, the format's \
                 magic is \"DLPKSHM\\0\""
            ),
            Error::Version { found } => write!(
                f,
                "shared-memory segment of format version {found}; this version reads version {}",
                crate::format::VERSION
            ),
            Error::Inconsistent { field, value, rule } => write!(
                f,
                "inconsistent shared-memory segment: {field} {value} {rule}"
            ),
            Error::OutOfPayload {
                byte_offset,
                reach,
                payload_len,
            } => write!(
                f,
                "inconsistent shared-memory segment: with byte offset {byte_offset} the \
                 elements reach bytes [{}, {}) of a {payload_len}-byte payload; they must lie \
                 inside it",
                reach.0, reach.1
            ),
            Error::NonceMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "shared-memory segment {name:?} holds nonce {found:016x}, the handle \
                 {expected:016x}: the name now belongs to another segment"
            ),
            Error::Header(e) => write!(f, "inconsistent shared-memory segment: {e}"),
            Error::Tensor(e) => write!(f, "shared-memory tensor: {e}"),
            Error::NotHost { device } => write!(
                f,
                "cannot publish a tensor on {device:?} in shared memory: only host memory can \
                 be shared; copy it to the host first (e.g. __dlpack__(dl_device=(1, 0), \
                 copy=True))"
            ),
            Error::InvalidName { name, rule } => {
                write!(f, "invalid shared-memory name {name:?}: {rule}")
            }
            Error::InvalidHandle { text, rule } => {
                write!(f, "invalid shared-memory handle {text:?}: {rule}")
            }
            Error::ReadOnly { name } => write!(
                f,
                "shared-memory segment {name:?} is read-only: no writable view of it"
            ),
            Error::Os { op, name, errno } => write!(
                f,
                "{op} of shared-memory segment {name:?} failed: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    /// An OS error keeps its `errno` (so `NotFound` stays `NotFound`);
    /// every other refusal is `InvalidData`.
    fn from(e: Error) -> Self {
        match e.errno() {
            Some(errno) => std::io::Error::from_raw_os_error(errno),
            None => std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }
    }
}
