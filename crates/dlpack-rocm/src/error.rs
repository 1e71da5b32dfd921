//! The crate's error type.

use std::ffi::c_int;
use std::fmt;

use dlpack_core::ErrorKind;
use dlpack_core::ffi::DLDevice;

/// Everything this crate refuses or fails at.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No HIP runtime (`libamdhip64.so`, `.so.6`, `.so.5`) could be loaded.
    RuntimeNotFound {
        /// Each name tried, with the loader's answer.
        tried: String,
    },
    /// A HIP call failed.
    Hip {
        /// The function that failed, e.g. `"hipEventRecord"`.
        call: &'static str,
        /// Its `hipError_t`.
        code: c_int,
    },
    /// A rule of the DLPack standard (from `dlpack-core`).
    Core(dlpack_core::Error),
    /// The device type is not one this crate handles (`kDLROCM`,
    /// `kDLROCMHost`).
    UnsupportedDevice {
        /// The device given.
        device: DLDevice,
    },
    /// The runtime does not know the pointer (not HIP memory, or freed).
    UnknownPointer {
        /// The address asked about.
        ptr: u64,
        /// The `hipError_t` (1, `hipErrorInvalidValue`, for unregistered
        /// host memory).
        code: c_int,
    },
    /// A negative device ordinal.
    InvalidOrdinal {
        /// The ordinal given.
        ordinal: i64,
    },
}

impl Error {
    /// The Python exception this error maps to: `ValueError` for a bad
    /// device (a negative ordinal, or `hipErrorInvalidDevice`), the core's
    /// kind for its rules, `BufferError` for the rest.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Core(e) => e.kind(),
            Error::InvalidOrdinal { .. } => ErrorKind::Value,
            // hipErrorInvalidDevice
            Error::Hip { code: 101, .. } => ErrorKind::Value,
            _ => ErrorKind::Buffer,
        }
    }
}

impl From<dlpack_core::Error> for Error {
    fn from(e: dlpack_core::Error) -> Self {
        Error::Core(e)
    }
}

/// The names of the `hipError_t` values this crate is likely to see (no
/// call into the runtime is needed to print an error).
fn hip_error_name(code: c_int) -> &'static str {
    match code {
        1 => "hipErrorInvalidValue",
        2 => "hipErrorOutOfMemory",
        3 => "hipErrorNotInitialized",
        100 => "hipErrorNoDevice",
        101 => "hipErrorInvalidDevice",
        201 => "hipErrorInvalidContext",
        400 => "hipErrorInvalidHandle",
        600 => "hipErrorNotReady",
        700 => "hipErrorIllegalAddress",
        801 => "hipErrorNotSupported",
        _ => "hipError",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::RuntimeNotFound { tried } => write!(
                f,
                "the HIP runtime is not loadable (tried {tried}): install ROCm, or put a folder \
                 holding libamdhip64.so (e.g. the gpu-sim simulator's) on LD_LIBRARY_PATH"
            ),
            Error::Hip { call, code } => {
                write!(f, "{call} failed: {} ({code})", hip_error_name(*code))
            }
            Error::Core(e) => fmt::Display::fmt(e, f),
            Error::UnsupportedDevice { device } => {
                write!(
                    f,
                    "device {device:?} is not a ROCm device (kDLROCM or kDLROCMHost)"
                )
            }
            Error::UnknownPointer { ptr, code } => write!(
                f,
                "the HIP runtime does not know the pointer {ptr:#x} (not HIP memory, or freed): {} ({code})",
                hip_error_name(*code)
            ),
            Error::InvalidOrdinal { ordinal } => {
                write!(
                    f,
                    "device ordinal {ordinal} is not a valid HIP device ordinal"
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Core(e) => Some(e),
            _ => None,
        }
    }
}
